"""The whole-network compiler pass and performance estimate (SPEC section 8).

For every layer of a `host.nn.Network` graph the planner chooses a tiling that fits the on-chip
buffers of a `Target` (row bands with halos, output-channel blocks, input-channel blocks), the
tile loop order that minimises predicted time, and computes the layer's DRAM traffic exactly and
its cycles with the performance model (`host.perf`). It also assigns every activation a DRAM
offset with liveness-based reuse (`allocate`).

How cycles are predicted (docs/architecture.md, "Whole-network estimate"):

* A convolution or fully-connected layer that today's hardware runs as it is (one tile in each
  dimension; `host.buffers.buffer_problem` finds nothing), on today's DRAM port (one beat per
  cycle), gets `host.perf.layer_estimate`, the model fitted to the RTL: the same figure, not a
  second model.
* A tiled layer (the next hardware, issue 14): its compute is the core's exact tile recurrence
  (`host.perf.tile_cycles`) over the pixel tiles of every band, its DRAM time is bytes over the
  port's bytes per cycle plus a latency per transfer, and the two overlap (double-buffered bands
  and weight blocks) except for the first load and the last store.
* Residual add, pooling and global average pooling stream their input at one 16-byte beat per
  cycle (the output path of the next hardware); a concat costs nothing (its producers write
  channel ranges of one tensor).
* Zero skipping: the input is assumed dense (no all-zero groups except padding) unless
  `ifm_skip` gives the fraction of channel groups that are zero (whole channel groups of an
  input zeroed, the effect channel clustering aims for); the figure must come from calibration
  data (random weights give unrealistic zeros).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from host import golden
from host import perf
from host.buffers import ConvLayer, buffer_problem, layer_bands
from host.nn import Network, load_key, run_shape
from hw.config import BEAT_BYTES, SenseConfig
from hw.core.pixel_walker import tile_count
from hw.layouts import DESCRIPTOR_BYTES, LayerDescriptor, LayerFlags, LayerKind, psum_row_bytes, \
    record_bytes, weight_word_layout

__all__ = ["Target", "plan_network", "allocate", "layer_tiling", "IFM_LAYOUTS"]

IFM_LAYOUTS = ("shared", "copies")
#: Bytes the streaming units (add, pooling) take per cycle: one beat.
STREAM_BYTES = BEAT_BYTES


@dataclass(frozen=True)
class Target:
    """The hardware an estimate is for: a configuration, how its IFM memory is organised, and the
    DRAM port(s). ifm "copies" is the design before issue 14 (every column held a copy of the
    input, so the distinct capacity is ifm_kib / cols); "shared" holds ifm_kib of distinct data
    (the study's choice, built as the IFM store). DRAM: `ports` AXI ports of `port_bits` at the clock, and
    `latency` cycles from a transfer's command to its first beat. With `fuse_add`, a residual
    add whose one input comes from a conv read by nothing else runs in that conv's output path:
    the conv reads the other input and writes the sum (one tensor read and two written less).
    With `resident`, an output that only the next layer reads and that fits half the IFM memory
    stays on chip (written into the other half, which the next layer then reads): no DRAM
    traffic for it. Both need only "shared" IFM memory (distinct data). With `prefetch`, a
    tiled layer's first band and weight block are fetched while the previous layer computes
    (its DRAM time still counts, but not as a stall before the first tile)."""

    config: SenseConfig
    ifm: str = "shared"
    ports: int = 1
    port_bits: int = 128
    latency: int = perf.READ_OVERHEAD
    fuse_add: bool = True
    resident: bool = True
    prefetch: bool = True

    def __post_init__(self):
        if self.ifm not in IFM_LAYOUTS:
            raise ValueError(f"ifm must be one of {', '.join(IFM_LAYOUTS)}, not {self.ifm!r}")
        if self.ports < 1 or self.port_bits % 8 or self.port_bits < 8:
            raise ValueError("ports must be >= 1 and port_bits a multiple of 8")

    @property
    def ifm_bytes(self) -> int:
        kib = self.config.ifm_kib * 1024
        return kib if self.ifm == "shared" else kib // self.config.cols

    @property
    def weight_word(self) -> int:
        return record_bytes(weight_word_layout(self.config), BEAT_BYTES)

    @property
    def weight_bytes(self) -> int:
        return self.config.weight_depth * self.weight_word

    @property
    def bytes_per_cycle(self) -> float:
        return self.ports * self.port_bits / 8

    @property
    def gb_per_s(self) -> float:
        return self.bytes_per_cycle * self.config.clock_mhz / 1000

    def describe(self) -> dict:
        c = self.config
        return {"grid": f"{c.rows}x{c.cols}", "group": c.group, "sparse": c.sparse,
                "clock_mhz": c.clock_mhz, "ifm": self.ifm, "ifm_bytes": self.ifm_bytes,
                "weight_bytes": self.weight_bytes, "ports": self.ports,
                "port_bits": self.port_bits, "dram_gb_per_s": self.gb_per_s,
                "dram_latency_cycles": self.latency, "fuse_add": self.fuse_add,
                "resident": self.resident, "prefetch": self.prefetch,
                "peak_gops": c.peak_gops}


def _pad(n: int, m: int) -> int:
    return -(-n // m) * m


def _act_bytes(shape, m: int) -> int:
    c, h, w = shape
    return h * w * _pad(c, m)


# -- convolution and fully-connected layers -----------------------------------------------------

@dataclass
class _Geometry:
    k: int
    c: int
    h: int
    w: int
    r: int
    s: int
    stride: int
    pad: int
    oh: int
    ow: int
    pool: tuple | None
    fc: bool
    batch: int


def _geometry(layer, in_shape, batch) -> _Geometry:
    c, h, w = in_shape
    if layer.kind == "fc":
        return _Geometry(layer.weight.shape[0], c, h, w, h, w, 1, 0, 1, 1, None, True, batch)
    k, _, r, s = layer.weight.shape
    return _Geometry(k, c, h, w, r, s, layer.stride, layer.pad,
                     golden.output_size(h, r, layer.stride, layer.pad),
                     golden.output_size(w, s, layer.stride, layer.pad), layer.pool, False, 1)


def _descriptor(g: _Geometry, layer, config: SenseConfig, order: str) -> LayerDescriptor:
    pool = g.pool or (0, 0, 0)
    flags = (LayerFlags.RELU.value * bool(layer.relu) | LayerFlags.POOL.value * bool(g.pool)
             | LayerFlags.IFM_STATIONARY.value * (order == "ifm"))
    return LayerDescriptor(
        kind=(LayerKind.FC if g.fc else LayerKind.CONV).value, flags=flags, in_channels=g.c,
        in_groups=-(-g.c // config.group), in_h=g.h, in_w=g.w, out_channels=g.k, out_h=g.oh,
        out_w=g.ow, kernel_h=g.r, kernel_w=g.s, stride=g.stride, pad=g.pad,
        pool_kernel=pool[0], pool_stride=pool[1], pool_pad=pool[2],
        k_tiles=-(-g.k // config.rows),
        p_tiles=tile_count(g.w, g.stride, g.oh, g.ow, config.cols))


def _input(g: _Geometry, m: int, ifm_skip: float) -> np.ndarray:
    """The modelled input: nonzero everywhere except a fraction `ifm_skip` of channel groups,
    spread evenly (whole groups zero: what the decoder can skip)."""
    x = np.ones((g.c, g.h, g.w), np.int8)
    groups = -(-g.c // m)
    dead = int(round(ifm_skip * groups))
    if dead:
        for grp in np.linspace(0, groups - 1, dead).round().astype(int):
            x[grp * m:(grp + 1) * m] = 0
    return x


def _conv_layer(g: _Geometry, x) -> ConvLayer:
    w = np.broadcast_to(np.int8(0), (g.k, g.c, g.r, g.s))
    zeros = np.zeros(g.k, np.int32)
    return ConvLayer(x=x, w=w, bias=zeros, mult=zeros, shift=zeros + 1, stride=g.stride,
                     pad=g.pad)


def _tile_costs(g: _Geometry, config: SenseConfig, x, band_rows):
    """Per pixel tile: cycles, costs of its last two groups, valid columns, issued slots."""
    cpg = config.cycles_per_group
    if g.fc:                                   # batch images are the pixels of one tile row
        mask = perf.skip_mask(_conv_layer(g, x), config)           # (1, G): one image's input
        tiles = -(-g.batch // config.cols)
        mask = np.repeat(mask, tiles, axis=0)
        valid = np.minimum(config.cols, g.batch - np.arange(tiles) * config.cols)
    else:
        layer = _conv_layer(g, x)
        mask = perf.skip_mask(layer, config, band_rows)
        valid = np.array([count for _, count in layer.tiles(config, band_rows)])
    cost = np.where(mask, 1, cpg)
    return cost.sum(axis=1), perf.tail_costs(cost), valid, (~mask).sum(axis=1) * cpg


def _band_input_rows(g: _Geometry, y0: int, y1: int) -> int:
    """Input rows (inside the map; padding is not loaded) that output rows y0..y1-1 read."""
    top = y0 * g.stride - g.pad
    bottom = (y1 - 1) * g.stride - g.pad + g.r
    return max(0, min(bottom, g.h) - max(top, 0))


def _tilings(g: _Geometry, t: Target):
    """Candidate tilings (band_rows, k_block tiles, c_blocks) that fit the buffers: the fewest
    input-channel blocks whose weights fit (one k tile streamed through the ring without blocks;
    every k tile of a block with them, as the gateware needs), with bands of every input
    channel (the gateware's blocks split the weights, not the input); bands of the whole map
    (if the input fits) and of every power of two of rows up to the largest band that fits half
    the IFM memory (double-buffered). Only when nothing fits that way, a design the gateware
    does not run (the packer refuses it, naming the layer; the architecture study's small-IFM
    and big-grid options use it): blocks that split the input too, and blocks of k tiles
    within an input-channel block."""
    for gateware in (True, False):
        for cb, kb, c_blk in _weight_blocks(g, t, gateware):
            if g.fc:
                return [(1, kb, cb)]
            bands = _bands_that_fit(g, t, g.w * (_pad(g.c, t.config.group) if gateware else c_blk))
            if bands:
                return [(b, kb, cb) for b in sorted(bands)]
    raise ValueError(f"no tiling fits: the input rows of one output row of a {g.r}x{g.s} kernel "
                     f"over {g.c}x{g.w} exceed the IFM memory ({t.ifm_bytes} bytes), and Sense "
                     f"does not split rows by width")


def _weight_blocks(g: _Geometry, t: Target, gateware: bool = True):
    """(c_blocks, k_block tiles, channels per block) whose weights fit, fewest blocks first
    (`gateware`: as the gateware runs them, else also k blocks within channel blocks)."""
    cfg = t.config
    m = cfg.group
    k_tiles = -(-g.k // cfg.rows)
    for cb in range(1, -(-g.c // m) + 1):
        c_blk = _pad(-(-g.c // cb), m)
        wk = g.r * g.s * c_blk // m * cfg.cycles_per_group * t.weight_word   # one k tile's
        if k_tiles * wk <= t.weight_bytes:
            yield cb, k_tiles, c_blk
        elif cb == 1 and wk <= t.weight_bytes:
            # streamed through the weight ring, a k tile at a time (double-buffered when two
            # fit)
            yield cb, max(1, (t.weight_bytes // 2) // wk), c_blk
        elif not gateware and wk <= t.weight_bytes // 2:
            yield cb, (t.weight_bytes // 2) // wk, c_blk
        # (else: an input-channel block's weights must all fit: the gateware reads them
        # before the block's partial sums)


def _bands_that_fit(g: _Geometry, t: Target, row: int) -> set:
    """Band heights whose input rows (`row` bytes each) fit the IFM memory: half of it
    (double-buffered) if any does, else all of it."""
    cols = t.config.cols
    for capacity in (t.ifm_bytes // 2, t.ifm_bytes):     # double-, else single-buffered
        largest = 0
        while largest < g.oh and _rows_needed(g, largest + 1) * row <= capacity:
            largest += 1
        # Powers of two, and multiples of the band that fills whole pixel tiles.
        aligned = cols // np.gcd(g.ow, cols)
        bands = {b for b in (1 << i for i in range(12)) if b <= largest}
        bands |= {aligned << i for i in range(12) if aligned << i <= largest}
        if largest:
            bands.add(largest)
        if g.h * row <= t.ifm_bytes:
            bands.add(g.oh)
        if bands:
            return bands
    return set()


def _rows_needed(g: _Geometry, band: int) -> int:
    return min((band - 1) * g.stride + g.r, g.h + 2 * g.pad)


def _weight_layer(layer, in_shape, out_shape, t: Target, batch: int, ifm_skip: float,
                  chip=(False, False)) -> dict:
    """The best tiling and order of a conv / fc layer (module docstring); chip: whether its input
    and its output stay on chip (`Target.resident`)."""
    cfg = t.config
    g = _geometry(layer, in_shape, batch)
    x = _input(g, cfg.group, ifm_skip)
    best = None
    tilings = _tilings(g, t)
    if chip[0]:                             # the whole input is on chip already: one band
        tilings = [(g.oh, kb, cb) for _, kb, cb in tilings[:1]]
    elif batch == 1 and t.bytes_per_cycle == BEAT_BYTES \
            and buffer_problem(_descriptor(g, layer, cfg, "weight"), cfg) is None:
        tilings = [(g.oh, -(-g.k // cfg.rows), 1)]   # today's hardware runs it whole: its model
    for band, kb, cb in tilings:
        for order in ("weight", "ifm"):
            est = _tiled(g, layer, in_shape, out_shape, t, x, (band, kb, cb), order, chip)
            if best is None or (est["cycles"], est["dram_read_bytes"]) < \
                    (best["cycles"], best["dram_read_bytes"]):
                best = est
    return best


def _tiled(g, layer, in_shape, out_shape, t: Target, x, tiling, order, chip) -> dict:
    """Traffic and cycles of one tiling (band rows, k-block tiles, c blocks) in one order."""
    band, kb, cb = tiling
    cfg = t.config
    m, cpg = cfg.group, cfg.cycles_per_group
    k_tiles = -(-g.k // cfg.rows)
    bands = [(y0, min(y0 + band, g.oh)) for y0 in range(0, g.oh, band)]
    k_blocks = -(-k_tiles // kb)
    groups = g.r * g.s * -(-g.c // m)
    weights = k_tiles * groups * cpg * t.weight_word
    row = g.w * _pad(g.c, m)
    ifm_pass = (sum(_band_input_rows(g, y0, y1) for y0, y1 in bands) * row if not g.fc
                else _act_bytes(in_shape, m) * g.batch)
    out_bytes = (_act_bytes(out_shape, m) if not g.fc else _pad(g.k, m)) * g.batch
    if chip[0]:
        ifm_pass = 0
    if chip[1]:
        out_bytes = 0
    per_tile, tail, valid, slots = _tile_costs(g, cfg, x, band)
    # int32 partial sums out and in: a row of psum_row_bytes per output channel and pixel tile
    psum = 2 * psum_row_bytes(cfg) * g.k * len(valid) * (cb - 1)
    rows_valid = np.minimum(cfg.rows, g.k - np.arange(k_tiles) * cfg.rows)
    useful = int(rows_valid.sum() * (slots * valid).sum())
    if cb > 1:          # band outer, then the band's blocks, each with its weights
        reads = ifm_pass + weights * len(bands)
    elif order == "weight":
        reads = weights + ifm_pass * (1 if len(bands) == 1 else k_blocks)
    else:
        reads = ifm_pass + weights * (1 if k_blocks == 1 else len(bands))
    reads += psum // 2 + BEAT_BYTES * g.k + DESCRIPTOR_BYTES
    writes = out_bytes + psum // 2
    core = perf.tile_cycles(per_tile, tail, k_tiles, cfg, order == "ifm", channels=g.k)
    compute = core["cycles"] + (cb - 1) * perf.fill_drain_cycles(cfg)
    d = _descriptor(g, layer, cfg, order)
    if len(bands) == 1 and k_blocks == 1 and cb == 1 and g.batch == 1 and not any(chip) \
            and t.bytes_per_cycle == BEAT_BYTES and buffer_problem(d, cfg) is None:
        # Today's hardware runs this layer as it is: its fitted model, nothing else, on the
        # descriptor the packer writes (its pool pass in the bands the packer chooses, its
        # SPLIT_WEIGHTS hint or prefetch bands where the model finds them faster).
        d = perf.pool_bands_choice(d, cfg) if g.pool else d
        d, _ = perf.schedule_choice(d, _conv_layer(g, np.ones_like(x)), cfg)
        est = perf.layer_estimate(d, _conv_layer(g, x), cfg)
        cycles, model = est["cycles"], "perf.layer_estimate"
        band = d.g("exec.band_rows") or g.oh
        bands = layer_bands(d)
        reads, writes = est["dram_read_bytes"], est["dram_write_bytes"]
    else:
        first = (_band_input_rows(g, *bands[0]) * row if not g.fc else ifm_pass) * (not chip[0]) \
            + min(weights, kb * groups * cpg * t.weight_word)
        transfers = len(bands) * k_blocks * cb * 2 + 2
        dram = (reads + writes) / t.bytes_per_cycle + transfers * t.latency
        if len(bands) > 1 and _rows_needed(g, band) * row * 2 > t.ifm_bytes:
            first = reads - weights       # single-buffered bands: every IFM load is exposed
        if t.prefetch and t.ifm == "shared":
            first = 0                     # fetched during the previous layer's compute
        # The output streams out tile by tile: only the last pixel tile's write is exposed.
        exposed = (first + out_bytes / len(valid)) / t.bytes_per_cycle + 2 * t.latency
        setup = perf.LAYER_STATES + (0 if t.prefetch and t.ifm == "shared"
                                     else perf.READ_OVERHEAD + g.k)
        cycles = int(np.ceil(setup + exposed + max(compute, dram - exposed)))
        model = "tiled"
    util = useful / (cfg.pes * cycles)
    dram_cycles = (reads + writes) / t.bytes_per_cycle
    est = dict(kind=layer.kind, order=order, cycles=cycles, compute_cycles=compute,
               dram_read_bytes=int(reads), dram_write_bytes=int(writes), model=model,
               macs=g.k * g.c * g.r * g.s * g.oh * g.ow * g.batch, useful_macs=useful,
               pe_util=util, bands=len(bands), band_rows=band, k_blocks=k_blocks,
               k_block_tiles=kb, c_blocks=cb)
    est["limit"] = _limit(est, dram_cycles, util, valid, rows_valid, cfg)
    return est


def layer_tiling(kind, weight, stride, pad, pool, relu, in_shape, out_shape,
                 target: Target) -> dict:
    """The planner's choice for one conv / fc layer given by its fields (weight: conv (K, C, R, S),
    fc (K, C*H*W) or (K, C, H, W)): the estimate dict of `plan_network`'s layers."""
    from types import SimpleNamespace

    if kind == "fc":
        weight = weight.reshape(weight.shape[0], -1)
    layer = SimpleNamespace(kind=kind, weight=weight, stride=stride, pad=pad, pool=pool,
                            relu=relu)
    return _weight_layer(layer, in_shape, out_shape, target, 1, 0.0)


def _limit(est, dram_cycles, util, valid, rows_valid, cfg) -> str:
    """What bounds a layer: DRAM, partial tiles (tiling), fill/drain, or compute."""
    if dram_cycles > est["compute_cycles"]:
        return "DRAM"
    fill = np.mean(valid) / cfg.cols * np.mean(rows_valid) / cfg.rows
    if fill < 0.9:
        return "tiling"
    if util < 0.85:
        return "fill/drain"
    return "compute"


# -- the other layer kinds --------------------------------------------------------------------------

def _stream_layer(layer, ins, out_shape, t: Target, kept: bool = False) -> dict:
    """An add, concat or pooling layer streamed once over DRAM (`kept`: a pooling layer whose
    input the IFM memory still holds reads only its descriptor)."""
    m = t.config.group
    if layer.kind == "concat":
        reads = writes = 0
        cycles = 0
    else:
        reads = (0 if kept else sum(_act_bytes(s, m) for s in ins)) + DESCRIPTOR_BYTES
        writes = _act_bytes(out_shape, m)
        stream = max(reads, writes) / STREAM_BYTES
        dram = (reads + writes) / t.bytes_per_cycle + (len(ins) + 1) * t.latency
        cycles = int(np.ceil(perf.LAYER_STATES + max(stream, dram)))
    limit = "DRAM" if reads + writes else "none (layout)"
    return dict(kind=layer.kind, order="-", cycles=cycles, compute_cycles=0,
                dram_read_bytes=reads, dram_write_bytes=writes, model="stream", macs=0,
                useful_macs=0, pe_util=0.0, bands=1, band_rows=out_shape[1], k_blocks=1,
                c_blocks=1, limit=limit)


# -- the network -------------------------------------------------------------------------------

def allocate(net, group: int, sizes: list | None = None, fused: dict | None = None) -> dict:
    """DRAM offsets of every activation (tensor 0 the network input, tensor i + 1 layer i's
    output) with liveness-based reuse: a tensor's bytes are free again after its last reader. A
    concat's inputs are channel ranges of its output (one tensor). `net` is a Network or
    QNetwork; `sizes` (bytes per tensor) default to the activation layout of its shapes. Returns
    offsets (4 KiB aligned), the size needed, and the size without reuse. `fused` ({add: conv},
    `host.image.fusable_adds`): the add's output is written while the conv runs, so it lives
    from the conv on (apart from the conv's input bands)."""
    n = len(net.layers)
    if sizes is None:
        shapes = [tuple(net.input_shape)] + net.out_shapes()
        sizes = [_act_bytes(s, group) for s in shapes]
    owner = list(range(n + 1))                                   # tensor -> tensor it lives in
    for i, layer in enumerate(net.layers):
        if layer.kind == "concat":
            for j in net.sources(i):
                owner[j + 1] = i + 1

    def root(t):
        while owner[t] != t:
            t = owner[t]
        return t

    start = {t: t - 1 for t in range(n + 1)}                     # written by layer t - 1
    for add, conv in (fused or {}).items():
        start[add + 1] = min(start[add + 1], conv)
    end = {t: t - 1 for t in range(n + 1)}
    end[n] = n                                                   # the output outlives the run
    for i in range(n):
        for j in net.sources(i):
            end[j + 1] = max(end[j + 1], i)
    life = {}
    for t in range(n + 1):
        r = root(t)
        lo, hi = life.get(r, (start[t], end[t]))
        life[r] = (min(lo, start[t]), max(hi, end[t]))
    sizes = {r: sizes[r] for r in life}
    placed = []                                                  # (offset, size, lo, hi)
    offsets = {}
    for r in sorted(life, key=lambda r: -sizes[r]):
        lo, hi = life[r]
        size = -(-sizes[r] // 4096) * 4096
        clashes = sorted((o, s) for o, s, a, b in placed if not (hi < a or b < lo))
        offset = 0
        for o, s in clashes:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, lo, hi))
        offsets[r] = offset
    total = max((o + s for o, s, _, _ in placed), default=0)
    return {"offsets": {t: offsets[root(t)] for t in range(n + 1)},
            "bytes": total, "bytes_without_reuse": sum(-(-s // 4096) * 4096
                                                       for s in sizes.values())}


def plan_network(net: Network, target: Target, batch: int = 1, ifm_skip: float = 0.0,
                 fused: dict | None = None, kept: set | None = None) -> dict:
    """Per-layer plan and estimate of `net` on `target`, and the totals per image (module
    docstring). Fully-connected layers run once per batch of `batch` images (the images are the
    pixels of their tiles); everything else once per image. `fused` ({add: conv}: an image's
    fused adds, `host.image.fusable_adds`) and `kept` (an image's INPUT_KEPT layers) replace
    the target's own rules."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    if not 0 <= ifm_skip < 1:
        raise ValueError(f"ifm_skip must lie in [0, 1), not {ifm_skip}")
    cfg = target.config
    layers = []
    users = net.consumers()
    shared = target.ifm == "shared"      # both need distinct on-chip storage
    if fused is None:
        fused = _fused_adds(net, users) if target.fuse_add and shared else {}
    resident = _resident(net, users, target, fused) if target.resident and shared else set()
    if kept is None:
        kept = _kept_inputs(net, target) if shared else set()
    for i, (layer, ins, out) in enumerate(zip(net.layers, net.in_shapes(), net.out_shapes())):
        if layer.has_weights:
            chip = (net.sources(i)[0] in resident or i in kept, i in resident)
            est = _weight_layer(layer, run_shape(layer, ins), out, target,
                                batch if layer.kind == "fc" else 1, ifm_skip, chip)
        else:
            est = _stream_layer(layer, ins, out, target, i in kept)
        per = batch if layer.kind == "fc" else 1
        est.update(name=layer.name, per_images=per)
        layers.append(est)
    for add, conv in fused.items():
        _fuse(layers[conv], layers[add], target)
    alloc = allocate(net, cfg.group)
    total = _totals(layers, cfg, lambda e: True)
    conv = _totals(layers, cfg, lambda e: e["kind"] == "conv")
    return {"network": net.name, "target": target.describe(), "batch": batch,
            "ifm_skip": ifm_skip, "layers": layers, "total": total, "conv": conv,
            "activation_bytes": alloc["bytes"],
            "activation_bytes_without_reuse": alloc["bytes_without_reuse"]}


def _kept_inputs(net: Network, t: Target) -> set:
    """Convs and pooling layers whose input the IFM memory still holds: the layer before (a
    conv without max-pool, or a pooling layer) loaded the same tensor with the same placement
    (`host.nn.load_key`), small enough for half the IFM memory (the gateware's INPUT_KEPT, for
    a tensor both load in one piece)."""
    shapes = net.in_shapes()
    keep = set()
    for i in range(1, len(net.layers)):
        key, before = load_key(net, i, shapes), net.layers[i - 1]
        if key is not None and key == load_key(net, i - 1, shapes) \
                and not (before.kind == "conv" and before.pool) \
                and _act_bytes(shapes[i][0], t.config.group) <= t.ifm_bytes // 2:
            keep.add(i)
    return keep


def _resident(net: Network, users, t: Target, fused) -> set:
    """Layers whose output stays on chip: a conv (not fused with an add) read only by the next
    layer, itself a conv, with the output small enough for half the IFM memory."""
    keep = set()
    outs = net.out_shapes()
    for i, layer in enumerate(net.layers[:-1]):
        nxt = net.layers[i + 1]
        if layer.kind == "conv" and i not in fused.values() and users[i] == [i + 1] \
                and nxt.kind == "conv" and net.sources(i + 1) == [i] \
                and _act_bytes(outs[i], t.config.group) <= t.ifm_bytes // 2:
            keep.add(i)
    return keep


def _fused_adds(net: Network, users) -> dict:
    """add layer -> the conv whose output path computes it (its input read by nothing else)."""
    fused = {}
    for i, layer in enumerate(net.layers):
        if layer.kind != "add":
            continue
        for j in net.sources(i):
            if j >= 0 and net.layers[j].kind == "conv" and not net.layers[j].pool \
                    and users[j] == [i] and j not in fused.values():
                fused[i] = j
                break
    return fused


def _fuse(conv: dict, add: dict, t: Target):
    """Move an add into its conv's output path: the conv reads the other input besides."""
    other = add["dram_read_bytes"] - DESCRIPTOR_BYTES - add["dram_write_bytes"]
    conv["dram_read_bytes"] += other
    extra = other / t.bytes_per_cycle
    slack = max(conv["compute_cycles"] - (conv["dram_read_bytes"] + conv["dram_write_bytes"])
                / t.bytes_per_cycle, 0) if conv["model"] == "tiled" else 0
    conv["cycles"] += int(np.ceil(max(extra - slack, 0)))
    conv["pe_util"] = conv["useful_macs"] / (t.config.pes * conv["cycles"])
    if conv["dram_read_bytes"] + conv["dram_write_bytes"] > conv["compute_cycles"] * \
            t.bytes_per_cycle:
        conv["limit"] = "DRAM"
    conv["fused"] = add["name"]
    add.update(cycles=0, dram_read_bytes=0, dram_write_bytes=0, model="fused",
               limit=f"fused into {conv['name']}")


def _totals(layers, cfg: SenseConfig, keep) -> dict:
    chosen = [e for e in layers if keep(e)]
    cycles = sum(e["cycles"] / e["per_images"] for e in chosen)
    macs = sum(e["macs"] / e["per_images"] for e in chosen)
    dram = sum((e["dram_read_bytes"] + e["dram_write_bytes"]) / e["per_images"] for e in chosen)
    weighted = [e for e in chosen if e["macs"]]
    mac_util = (sum(e["macs"] * e["pe_util"] for e in weighted)
                / max(sum(e["macs"] for e in weighted), 1))
    seconds = cycles / (cfg.clock_mhz * 1e6)
    return {"cycles_per_image": cycles, "images_per_s": 1 / seconds if seconds else 0.0,
            "gmacs_per_image": macs / 1e9, "gops_dense": 2 * macs / seconds / 1e9 if seconds
            else 0.0, "dram_mb_per_image": dram / 1e6, "pe_util_mac_weighted": mac_util,
            "pe_util_time": (sum(e["useful_macs"] / e["per_images"] for e in chosen)
                             / max(cfg.pes * cycles, 1))}


def with_config(target: Target, **changes) -> Target:
    return dataclasses.replace(target, config=target.config.replace(**changes))
