"""Cycle model of the core (hw/core/core.py), exact for a consumer that is always ready.

The formula, derived from the RTL and documented in docs/architecture.md ("Cycle formula"):

* Tiles run k tile outer, pixel tile inner (or pixel tile outer with ``ifm_stationary``):
  N = ceil(K / rows) * ceil(OH * OW / cols) tiles, each with G = R * S * C_pad / M groups.
* A group costs c = 1 cycle when it is skipped (its IFM is zero for every pixel of the tile) and
  c = M/2 cycles (sparse; M dense) when issued. T_n = sum of c over tile n's groups.
* The IFM decoder has a read stage and a candidate stage: the store reads a group (its words
  appear on the block RAMs' outputs the next cycle and stay there), and the candidate stage takes
  them into registers when it is free or consumes its group in that cycle; the skip decision and
  the weight address start from those registers. R_n is the cycle the candidate stage takes tile
  n's first group (its first operation issues the cycle after).
* Start: 4 cycles of set-up, then the pixel walker fills tile 0's columns (cols cycles):
  L_0 = cols + 4 (tile 0 loaded), R_0 = L_0 + 2 (its first group read, then taken).
* Tile n's last operation issues at E_n = max(R_n + T_n, P_{n-2}, E_{n-1} + rows), where P_{n-2}
  is the first cycle after tile n-2 has been drained: tiles alternate between two result banks,
  and tile n may not finish before its bank is free; and a grid column's result memory takes
  one PE per cycle, so tiles finish at least rows cycles apart.
* Tile n's results: the corner PE finishes at C_n = E_n + rows + cols + 1, and row 0 of the last
  column rows - 1 cycles before it; the drain of its bank starts the cycle after that, at
  D_n = max(C_n - rows + 2, P_{n-1}) (after the previous tile's drain), and reads one row per
  cycle, the tile's rows that are output channels of the layer (e_n = min(rows, K - k0)):
  P_n = D_n + e_n.
* The walker loads the next tile when the store reads this tile's last group, which is when
  the candidate stage takes the group before it, and needs cols + 1 cycles per tile:
  L_{n+1} = max(R_n + T_n - c_last(n) - c_prev(n), L_n + cols + 1), c_prev the cost of the
  second-to-last group (for a tile of one group, the cycle the previous tile's last group was
  taken, R_{n-1} + T_{n-1} - c_last(n-1), instead of the first term);
  R_{n+1} = max(E_n, L_{n+1} + 2).
* The output stage is `OUTPUT_STAGES` (5) deep: cycles = P_{N-1} + 4.

So a layer whose tiles are long enough (T_n >= rows and >= cols + 1, and two tiles together
>= rows + cols + 3) costs sum(T_n) + 2 * cols + e + 13 cycles (e: the last tile's channels):
compute plus a fixed fill and drain (`fill_drain_cycles`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from host.buffers import (ConvLayer, band_geometry, descriptor_window, fits_half_store,
                          k_tile_words, layer_bands, pool_bands, pool_map, pool_rows_geometry,
                          window_count)
from host.sparse import pad_channels
from hw.config import BEAT_BYTES, BURST_BOUNDARY, MAX_BURST, SenseConfig
from hw.core.ifm_store import SETTLE, STRIDES, load_pieces, load_row_pieces, pair_row_pieces
from hw.layouts import (DESCRIPTOR_BYTES, POOL_KINDS, LayerDescriptor, LayerFlags, LayerHints,
                        LayerKind, psum_row_bytes, record_bytes, weight_word_layout)
from hw.soc.add_unit import CHUNK_BEATS
from hw.core.output_stage import STAGES
from hw.soc.pool import ROW_BANKS, ROW_DEPTH, TAIL_STAGES
from hw.soc.output_writer import SEPARATOR_CYCLES, whole_tile_writes, writer_sides
from hw.soc.psum import PSUM_WRITE_CYCLES, psum_row_beats

__all__ = ["pool_bands_choice", "schedule_choice", "pool_prefetch", "skip_mask", "core_cycles", "tile_cycles", "tail_costs", "fill_drain_cycles", "useful_macs",
           "layer_estimate", "SETUP_CYCLES", "OUTPUT_STAGES", "RUN_STATES", "READ_OVERHEAD",
           "add_estimate", "pool_pass", "pool_reads", "pool_row_reuse", "pool_estimate", "concat_estimate"]

SETUP_CYCLES = 4    # start, and three cycles computing the walker's step products
OUTPUT_STAGES = STAGES   # hw.core.output_stage: its pipeline, drained row to int8 row


def skip_mask(layer: ConvLayer, config: SenseConfig, band_rows: int | None = None) -> np.ndarray:
    """(pixel tiles, G) bool: True where group g of the pixel tile is zero for every pixel, so the
    IFM decoder skips it. Groups in reduction order (kh, kw, channel group); pixel tiles as the
    walker makes them (`ConvLayer.tiles`). With `band_rows`, the output rows are cut into bands
    of that many rows and each band's pixels are tiled on their own (a tiled layer, host.plan)."""
    m = config.group
    x = pad_channels(layer.x, m, axis=0)
    c, h, w = x.shape
    _, _, r, s = layer.w.shape
    oh, ow = layer.out_shape()
    # (stacked images, `ConvLayer.image_rows`: each image padded on its own)
    h, oh = layer.image_rows or (h, oh)
    n = x.shape[1] // h
    nonzero = (x.reshape(c // m, m, n, h, w) != 0).any(axis=1)        # (Gc, N, H, W)
    p, st = layer.pad, layer.stride
    # Pad generously so every window (including rows/cols beyond the map) is in range.
    big = np.zeros((c // m, n, p + oh * st + r, p + ow * st + s), bool)
    big[:, :, p:p + h, p:p + w] = nonzero
    starts = [p0 for p0, _ in layer.tiles(config, band_rows or 0)]
    groups = []
    for kh in range(r):
        for kw in range(s):
            tap = big[:, :, kh:kh + oh * st:st, kw:kw + ow * st:st][:, :, :oh, :ow]
            groups.append(np.logical_or.reduceat(tap.reshape(c // m, n * oh * ow), starts,
                                                 axis=1))
    any_nonzero = np.concatenate(groups, axis=0)                       # (G, tiles)
    return ~any_nonzero.T


def core_cycles(layer: ConvLayer, config: SenseConfig, tile_write=None,
                weights_in=None) -> dict:
    """Cycles the core takes for `layer` (consumer always ready), with the figures behind them.

    tile_write: optional function (pixel tile, k tile) -> (cycles the accelerator's output writer
    needs once the tile is in, whether the tile completes a writer slot). The writer holds two
    slots; a tile's rows wait for the slot completed two slots before. Adds "writer_end": when
    the writer finishes the last slot.
    weights_in: optional function k tile -> the cycle its last weight word is in the buffer (the
    accelerator streams them); a tile's last operation waits for it."""
    mask = skip_mask(layer, config)                       # (pixel tiles, G)
    cost = np.where(mask, 1, config.cycles_per_group)     # (pixel tiles, G)
    k_tiles = -(-layer.w.shape[0] // config.rows)
    out = tile_cycles(cost.sum(axis=1), tail_costs(cost), k_tiles, config, layer.ifm_stationary,
                      tile_write, weights_in, channels=layer.w.shape[0])
    groups = mask.size * k_tiles
    skipped = int(mask.sum()) * k_tiles
    out.update(groups_issued=groups - skipped, groups_skipped=skipped,
               slots_issued=(groups - skipped) * config.cycles_per_group)
    return out


def fill_drain_cycles(config: SenseConfig) -> int:
    """The fixed cost of a run of long tiles beyond their compute (module docstring), with a
    full last tile: 2 * cols + rows + 8 + OUTPUT_STAGES (13 with the output stage's five)."""
    return 2 * config.cols + config.rows + 8 + OUTPUT_STAGES


def tail_costs(cost) -> np.ndarray:
    """Per pixel tile (rows of the (tiles, G) group costs `cost`): the costs of its last two
    groups, (second-to-last, last), the second-to-last 0 when the tile has one group."""
    cost = np.asarray(cost)
    tail = np.zeros((cost.shape[0], 2), dtype=np.int64)
    tail[:, 1] = cost[:, -1]
    if cost.shape[1] > 1:
        tail[:, 0] = cost[:, -2]
    return tail


def tile_cycles(per_tile, tail_cost, k_tiles: int, config: SenseConfig, ifm_stationary: bool,
                tile_write=None, weights_in=None, psum=None, channels: int | None = None,
                writes_from: int = 0, tile_ready=None) -> dict:
    """The core's tile recurrence (module docstring) for pixel tiles costing `per_tile` cycles
    each (the costs of their last two groups `tail_cost`, `tail_costs`), times `k_tiles`
    output-channel tiles, in the given
    loop order; `tile_write` and `weights_in` as in `core_cycles`. `psum` (an input-channel
    block, `block_estimate`): (cycles per drained row written as partial sums, or 1; the cycle
    the first partial sums are in, or 0). `channels`: the layer's output channels K (default:
    k_tiles * rows, every row a channel). `writes_from`: the cycle before which the writer
    sends no beat (a fused add whose residual waits for the weights: `residual_waits`).
    `tile_ready`: optional function pixel tile -> the cycle the decoder may take it (its input
    rows are in: `load_follows`)."""
    rows, cols = config.rows, config.cols
    if channels is None:
        channels = k_tiles * rows
    load = cols + SETUP_CYCLES
    read = load + 2
    taken = 0                 # when the candidate stage took the last group before this tile
    drained = [0, 0]          # P_{n-2}, P_{n-1}
    tail = np.asarray(tail_cost).reshape(-1, 2).tolist()
    pixel_tiles = list(zip(np.asarray(per_tile).tolist(), tail))
    if ifm_stationary:
        order = [(p, kt) for p in range(len(pixel_tiles)) for kt in range(k_tiles)]
    else:
        order = [(p, kt) for kt in range(k_tiles) for p in range(len(pixel_tiles))]
    written = [0, 0]          # when the writer finished tiles n-2 and n-1
    last_issued = -rows       # E_{n-1}
    for p, kt in order:
        t, (before_last, last) = pixel_tiles[p]
        if tile_ready is not None:
            gate = tile_ready(p)
            if gate > load:
                load = gate
                read = max(read, load + 2)
        issue_last = max(read + t, drained[0], last_issued + rows)
        if weights_in is not None:
            issue_last = max(issue_last, weights_in(kt) + 2)
        corner = issue_last + rows + cols + 1
        drain_start = max(corner - rows + 2, drained[1])
        if tile_write is not None:
            drain_start = max(drain_start, written[0] - OUTPUT_STAGES)
        shift = min(rows, channels - kt * rows)
        if psum is not None:
            per_row, first_in = psum
            drain_start = max(drain_start, first_in)
            shift *= per_row
        drained = [drained[1], drain_start + shift]
        if tile_write is not None:
            cost, completes = tile_write(p, kt)
            if completes:
                start = max(drained[1] + OUTPUT_STAGES, written[1], writes_from)
                written = [written[1], start + cost]
        last_issued = issue_last
        # The walker loads the next tile when the store reads this tile's last group: the cycle
        # the candidate stage takes the group before it (that of the tile before when this tile
        # has one group).
        take_last = read + t - last
        load = max(take_last - before_last if before_last else taken, load + cols + 1)
        taken = take_last
        read = max(issue_last, load + 2)
    return {
        "cycles": drained[1] + OUTPUT_STAGES - 1,
        "tiles": len(pixel_tiles) * k_tiles,
        "compute_cycles": int(np.sum(per_tile)) * k_tiles,
        "writer_end": written[1],
    }


def useful_macs(layer: ConvLayer, config: SenseConfig) -> int:
    """MACs the grid spends on real work: issued slots times the PEs whose row is a real output
    channel and whose column is a real pixel (padding rows and columns of partial tiles excluded).
    PE utilisation = useful_macs / (rows * cols * cycles)."""
    mask = skip_mask(layer, config)                                   # (pixel tiles, G)
    slots = (~mask).sum(axis=1) * config.cycles_per_group             # issued slots per tile
    k = layer.w.shape[0]
    cols_valid = np.array([count for _, count in layer.tiles(config)])
    k_tiles = -(-k // config.rows)
    rows_valid = np.minimum(config.rows, k - np.arange(k_tiles) * config.rows)
    return int(rows_valid.sum() * (slots * cols_valid).sum())


# -- the whole accelerator (hw/soc/accelerator.py) ----------------------------------------------

# The first two overheads below are fitted to the RTL by scripts/fit_perf_model.py (simulated
# DRAM, cocotbext-axi's AxiRam, answering at once); docs/results/perf-model-fit.json has the
# errors. BURST_OVERHEAD is 0 since the DMA writer sends a burst's AW while the burst before
# it is written (issue 15); before, each extra burst of a write command cost a cycle, which
# showed on the zcu102 accelerator's whole-tile writes (32 bursts a command: ResNet-50's
# layer1 blocks simulated at 64x32 were -4.7 % off with 0, +0.02 % with 1).
#: Cycles of a DMA read from the command to the sequencer's next state, beyond one per beat
#: (command, AR, the DRAM's latency, the last beat).
READ_OVERHEAD = 8
#: Cycles per output write command beyond one per beat (command, AW, next command).
SEGMENT_OVERHEAD = 4
#: Cycles per extra burst of a multi-burst write (0: the next AW overlaps the burst before).
BURST_OVERHEAD = 0
#: Sequencer states per layer that move no data (descriptor address, window verdicts, checks,
#: start, end).
LAYER_STATES = 10
#: Sequencer states of each band of a conv / FC layer that move no data (BAND_A..C, the
#: store's set-up, BAND_END); after the first band the input also waits for the store's
#: constants (the first band's wait hides behind the parameter load).
BAND_STATES = 5
BAND_SETUP_WAIT = SETTLE + 1
#: Band prefetch: cycles from the band's weights being in to its successor's first band state
#: (PREFETCH_LEAD: RUN's exit), and from the later of the core's end and the successor's load to
#: its start (PREFETCH_SWITCH: RUN_WAIT, in place of BAND_END and the successor's band states).
#: Counted from the sequencer; checked on the VGG-style system network (scripts/check_model.py)
#: and the tiled bench layer (`sense bench accel`).
PREFETCH_LEAD = 1
PREFETCH_SWITCH = 1
#: States of each band of the pool pass that move no data: POOL_BAND_A..C, POOL_SETUP, the
#: pool unit's PLACE.
POOL_BAND_STATES = 5
#: Pool band prefetch: cycles from a band's pool start to its successor's first band state
#: (POOL_PREFETCH_LEAD: POOL's first cycle), and from the later of the unit's end and the
#: successor's load to the successor's start (POOL_SWITCH). POOL_SWITCH is fitted on
#: `sim.networks.banded_pooling_network` (RTL 111,687 cycles in the store-filling bands,
#: 108,610 in prefetched ones, model +0.01 %; every prefetched band there is bound by the
#: pooling): POOL_WAIT and POOL_GO are two cycles, the rest is what the band terms leave
#: untraced (POOL_TAIL, which the model counts before the walk). Checked on GoogLeNet and
#: ResNet-50 whole (scripts/simulate_network.py).
POOL_PREFETCH_LEAD = 1
POOL_SWITCH = 7
#: Input-channel blocks: cycles between one block's run and the next (BAND_END, RUN_START), and
#: from a block's weights being in to its first partial sums at the output stage (the read
#: command, the DMA's address and the first beat). Counted, not fitted; checked on the
#: channel-block system network (scripts/check_model.py).
BLOCK_STATES = 2
PSUM_READ_LEAD = 4
#: The weight port (`SenseConfig.weight_port`): a band's first block's weights are queued in
#: BAND_A, its band's states, parameters (the first band) and input load (`gap`) before the core
#: starts, less WEIGHT_LEAD cycles; a later block's are queued in RUN_START, WEIGHT_QUEUE cycle
#: before their command leaves. Counted from the sequencer; checked on the system networks
#: (scripts/check_model.py, config `small-wp`).
WEIGHT_LEAD = 0
WEIGHT_QUEUE = 1
#: Split weights (the weight port, a layer in one band without blocks or a fused add): the even
#: k tiles come on the weight port from BAND_A, the odd ones on the read channel from the core's
#: start (queued like a later block's: WEIGHT_QUEUE), one command per k tile, SPLIT_GAP cycles
#: between a stream's tiles.
SPLIT_GAP = 0
#: Load following (`load_follows`): the cycles from the input's read command (INPUT) to the
#: core's start (RUN_START), and from that command to the decoder taking a tile whose rows'
#: last piece is the n-th of the load, beyond n (a read's latency, READ_OVERHEAD). Counted, not
#: fitted: on the system networks with the weight port (scripts/check_model.py) any values from
#: 0 to 2 and 6 to 12 give a mean error within 0.05 % of these.
FOLLOW_STATES = 1
FOLLOW_LEAD = READ_OVERHEAD
#: Start of a run: start, base check (two states: the window verdict is registered), header
#: check.
RUN_STATES = 4


#: ADD layers (hw/soc/add_unit.py, the sequencer's ADD_* states): sequencer states of the layer
#: beyond the descriptor read; cycles of each chunk beyond two per beat (its two reads): chunk
#: state, both read commands and the DRAM's latency, the add pipeline, the write's AW, the last
#: write's response. Fitted on add-only networks (scripts/fit_add_model.py), checked on the
#: residual networks of gateware_tests/test_system.py.
ADD_LAYER_STATES = 1
#: (13 + a cycle per 16-beat burst before the add unit registered its sums; 14 + one per burst
#: until the DMA writer overlapped a burst's AW with the burst before: issue 15)
ADD_CHUNK_OVERHEAD = 15
#: A CONCAT's sequencer states beyond its descriptor read (address, checks, layer end); an ADD
#: done by its producer (FUSE_ADD) takes the same path.
CONCAT_STATES = 9
#: A layer whose input the IFM store still holds (INPUT_KEPT): cycles in place of the load's
#: read command, latency and pieces (INPUT / POOL_INPUT go straight to the start). Fitted on
#: `sim.networks.kept_input_network` (two 1x1 convs and a max-pool kept, in both orders):
#: with 4 the model's error equals that of the same images with the flags cleared (-35
#: cycles of 10,227); 0 gave -47.
KEPT_STATES = 4
#: A fused add (a conv with FUSE_ADD): cycles each output write command takes beyond the
#: unfused one's (the residual's read runs beside the write's command and address phase; what
#: is left of its latency and of the add unit's stages). Fitted (scripts/fit_add_model.py) on a
#: 1x1 expansion whose one-beat segment writes set its pace: 2 gives -3.7 % there, where the
#: unfused layer's model is -4.3 %; 3 gives about +4 %. Whole pixel-tile writes hide it.
FUSE_OVERHEAD = 2
#: A pooling layer's (MAXPOOL, AVGPOOL, GAP) sequencer states beyond its descriptor read, its
#: divisor load and its pool pass (address, checks, layer end); an AVGPOOL's or GAP's divisor
#: load costs its entries plus DIVISOR_OVERHEAD (the read command and its latency: fitted, less
#: than READ_OVERHEAD because the store's set-up overlaps it).
POOL_LAYER_STATES = 13
DIVISOR_OVERHEAD = 5
#: Cycles of a pool band beyond its set-up, load, sizing and taps: fitted
#: (scripts/fit_add_model.py) on the pooling-only networks. It should be the finished-window
#: stages (hw.soc.pool.TAIL_STAGES, the registered taps among them), the beat queue and the
#: write's response; that it is 13 cycles less means the terms above over-count a band by that
#: much, not yet traced to a state. (14 less before the beat queue, when every beat also
#: stalled the walk; 12 before a finished beat could go straight to the output register.)
POOL_TAIL = TAIL_STAGES - 13
#: A pair load (LayerHints.PAIR_LOAD): cycles from the read channel's first block to the weight
#: port's, once the weights are in (its command through the weight port's gather and reader).
PAIR_LAG = 4


def pool_pass(d: LayerDescriptor, config: SenseConfig) -> dict:
    """The pool pass (hw.soc.pool.PoolUnit) of descriptor `d` over its map in DRAM, band by band
    (`host.buffers.pool_bands`): per band three cycles of band arithmetic, the IFM store's
    set-up (POOL_SETUP, then SETTLE + 1 cycles until its constants are valid), the band's map
    rows loaded a piece a cycle, the unit's sizing (one cycle per output row or column, one to
    place the band), one cycle per read of each line of channel groups (`pool_reads`: a window
    row's taps `pool_taps` pixels at a time) and one per beat written (and one to send a last
    partial beat). With pool band prefetch (`pool_prefetch`) a band's states, set-up and load
    run while the band before is pooled: the later of the two ends, then POOL_SWITCH."""
    m = config.group
    map_h, map_w, groups = pool_map(d, config)
    win = descriptor_window(d)
    kw, sw, (_, pl, _, pr) = win.kernel[1], win.stride[1], win.pads
    ow = window_count(map_w, kw, sw, pl, pr, win.ceil_mode)
    row_bytes = map_w * groups * m
    cycles, read_bytes, words_total = 1, 0, 0         # (POOL_LOAD)
    lines = -(-groups // config.ifm_words_per_line)     # a pixel's lines, one read each
    # (a pooling layer's input the store still holds: INPUT_KEPT, one band; never a conv's
    # read-back of its output)
    kept = d.has(LayerFlags.INPUT_KEPT) and int(d.kind) in POOL_KINDS
    prefetch = pool_prefetch(d, config)
    reuse = pool_row_reuse(win, ow, lines, int(d.kind) in (LayerKind.AVGPOOL.value,
                                                            LayerKind.GAP.value))
    walk_before = None
    for py, y0, rows, top, _, n in pool_bands(d, config):
        words = n * ow * groups
        # (a band whose output starts inside a beat: its words are packed from that lane)
        lead = py * ow * groups % config.ifm_words_per_line
        lane = (y0 * row_bytes) % BEAT_BYTES
        if kept:
            load = KEPT_STATES
        else:
            read_bytes += -(-(lane + rows * row_bytes) // BEAT_BYTES) * BEAT_BYTES
            load = READ_OVERHEAD + (
                pair_row_pieces(rows, map_w, lines, config.ifm_banks // 2, PAIR_LAG)[-1]
                if pair_eligible(d, config, pool=True)
                else load_pieces(rows * map_w, groups * m, lane))
        before = POOL_BAND_STATES + SETTLE + 1 + load + POOL_TAIL
        # (a finished beat waits beside the output register: the walk never stalls for one)
        walk = (max(n, ow) + 2 + lines * pool_reads(n, ow, map_w, win, top, config.pool_taps,
                                                    reuse)
                + ((lead + words) % config.ifm_words_per_line != 0) + SEGMENT_OVERHEAD)
        if prefetch and walk_before is not None:
            cycles += max(walk_before, POOL_PREFETCH_LEAD + before) + POOL_SWITCH
        elif walk_before is not None:
            cycles += walk_before + before
        else:
            cycles += before
        walk_before = walk
        words_total += words
    cycles += walk_before
    return {"cycles": cycles, "dram_read_bytes": read_bytes, "dram_write_bytes": words_total * m}


def pool_prefetch(d: LayerDescriptor, config: SenseConfig) -> bool:
    """Whether the gateware prefetches the pool pass's bands (hw/soc/accelerator.py, POOL): in
    bands (`exec.pool_band_rows`) that fit half the IFM store."""
    per = d.g("exec.pool_band_rows")
    return bool(per) and len(pool_bands(d, config)) > 1 and \
        fits_half_store(pool_rows_geometry(d, config, per)[0], config)


def _pair_choice(best: tuple, cycles, config: SenseConfig) -> tuple:
    """(descriptor, cycles) `best` or, if the model finds the layer faster so (a conv's bands
    and its pool pass together), the same with the PAIR_LOAD hint turned the other way
    (`pair_eligible`); `cycles(descriptor)` is the conv's without its pool pass, or a pooling
    layer's pool pass."""
    d = best[0]
    other = d.replace(hints=int(d.hints) ^ LayerHints.PAIR_LOAD.value)
    on = other if int(other.hints) & LayerHints.PAIR_LOAD.value else d
    pools = d.pool or int(d.kind) in POOL_KINDS
    if not (pair_eligible(on, config) or pools and pair_eligible(on, config, pool=True)):
        return best
    other_cycles = cycles(other)

    def pool(desc):
        return pool_pass(desc, config)["cycles"] if desc.pool else 0
    if other_cycles + pool(other) < best[1] + pool(d):
        return other, other_cycles
    return best


def pool_bands_choice(d: LayerDescriptor, config: SenseConfig) -> LayerDescriptor:
    """`d` with the pool band rows (`exec.pool_band_rows`) the performance model finds fastest:
    the packer's (`host.buffers.pool_band_rows`: the whole map, or the most rows that fit the
    IFM store) or bands that fit half the store, which the gateware prefetches
    (`pool_prefetch`: each band's map loads while the band before is pooled); a pooling
    layer's with the PAIR_LOAD hint where that is faster (`_pair_choice`)."""
    d = _pool_bands(d, config)
    if int(d.kind) not in POOL_KINDS:
        return d
    return _pair_choice((d, pool_pass(d, config)["cycles"]),
                        lambda desc: pool_pass(desc, config)["cycles"], config)[0]


def _pool_bands(d: LayerDescriptor, config: SenseConfig) -> LayerDescriptor:
    best = (pool_pass(d, config)["cycles"], d)
    win = descriptor_window(d)
    if win.stride[0] > win.kernel[0]:           # (bands do not take it)
        return d
    for per in range(1, pool_map(d, config)[0]):
        if not fits_half_store(pool_rows_geometry(d, config, per)[0], config):
            break
        banded = d.replace(graph={**d.graph, "exec.pool_band_rows": per})
        if len(pool_bands(banded, config)) < 2:
            break
        best = min(best, (pool_pass(banded, config)["cycles"], banded), key=lambda t: t[0])
    return best[1]


def pool_reads(rows: int, cols: int, map_w: int, win, top: int, taps: int,
               reuse: bool = False) -> int:
    """Reads of the pool unit's window walk for one line of every window of `rows` x `cols`
    pooled pixels over a map `map_w` wide whose band starts `top` padding rows above: each
    window row reads its taps `taps` pixel indices at a time, in groups aligned to `taps`, so
    one whose first tap has pixel index i takes ((i mod taps) + kw - 1) // taps + 1 reads.
    With row reuse (`pool_row_reuse`) a pooled row after the first reads its windows' last
    `sh` rows only."""
    (kh, kw), (sh, sw), (_, pl, _, _) = win.kernel, win.stride, win.pads
    y = np.arange(rows)[:, None] * sh - top + np.arange(kh)[None, :]          # (oy, wy)
    x = np.arange(cols) * sw - pl                                              # (ox,)
    first = (y.reshape(-1, 1) * map_w + x[None, :]) % taps
    reads = ((first + kw - 1) // taps + 1).reshape(rows, kh, cols)
    if reuse:
        reads[1:, :kh - sh] = 0
    return int(reads.sum())


def pool_row_reuse(win, cols: int, lines: int, average: bool) -> bool:
    """Whether the pool unit reuses window rows (hw.soc.pool.ROW_BANKS): a maximum with a
    vertical stride of 1 and 2 .. ROW_BANKS window rows, or a stride of 2 and 3 rows, whose
    pooled row's lines (`cols` pooled columns of `lines` lines) fit ROW_DEPTH."""
    (kh, _), (sh, _) = win.kernel, win.stride
    overlap = (sh == 1 and kh >= 2) or (sh == 2 and kh == 3)
    return not average and overlap and kh <= ROW_BANKS and cols * lines <= ROW_DEPTH


def pool_estimate(d: LayerDescriptor, config: SenseConfig) -> dict:
    """A MAXPOOL, AVGPOOL or GAP layer: its descriptor read and checked, an average's divisors
    loaded, then the pool pass on its input."""
    pool = pool_pass(d, config)
    entries = d.param_size // BEAT_BYTES
    divisors = entries + DIVISOR_OVERHEAD if entries else 0
    return {"cycles": READ_OVERHEAD + DESCRIPTOR_BYTES // BEAT_BYTES + POOL_LAYER_STATES
            + divisors + pool["cycles"],
            "dram_read_bytes": DESCRIPTOR_BYTES + d.param_size + pool["dram_read_bytes"],
            "dram_write_bytes": pool["dram_write_bytes"], "macs": 0, "groups_skipped": 0}


def concat_estimate() -> dict:
    """A CONCAT layer: its descriptor is read and checked; its producers wrote its tensor."""
    return {"cycles": READ_OVERHEAD + DESCRIPTOR_BYTES // BEAT_BYTES + CONCAT_STATES,
            "dram_read_bytes": DESCRIPTOR_BYTES, "dram_write_bytes": 0, "macs": 0,
            "groups_skipped": 0}


def add_estimate(d: LayerDescriptor, config: SenseConfig) -> dict:
    """Cycles and DRAM bytes of an ADD layer: chunks of at most CHUNK_BEATS beats, each the
    first input's chunk read into the add unit, then the second input's streamed through it
    while the sums are written. An ADD its producer did (FUSE_ADD) only reads its
    descriptor."""
    if d.has(LayerFlags.FUSE_ADD):
        return concat_estimate()
    tensor = d.in_h * d.in_w * d.in_groups * config.group
    cycles = READ_OVERHEAD + DESCRIPTOR_BYTES // BEAT_BYTES + ADD_LAYER_STATES
    read_bytes = DESCRIPTOR_BYTES
    chunk = CHUNK_BEATS * BEAT_BYTES
    for start in range(0, tensor, chunk):
        beats = -(-min(chunk, tensor - start) // BEAT_BYTES)
        cycles += ADD_CHUNK_OVERHEAD + 2 * beats
        read_bytes += 2 * beats * BEAT_BYTES
    return {"cycles": cycles, "dram_read_bytes": read_bytes, "dram_write_bytes": tensor,
            "macs": 0, "groups_skipped": 0}


def channel_blocks_of(d: LayerDescriptor) -> list[tuple[int, int]]:
    """The input-channel blocks of a conv / FC layer as (first, end) channel groups: one block
    of every group unless `graph.exec.c_blocks` > 1."""
    per = d.g("exec.c_block_groups") if d.g("exec.c_blocks") > 1 else d.in_groups
    return [(g0, min(g0 + per, d.in_groups)) for g0 in range(0, d.in_groups, per)]


def _bursts(addr: int, beats: int) -> int:
    """AXI bursts the DMA splits `beats` beats from beat-aligned `addr` into (hw.soc.dma: at most 16
    beats, never across 4 KiB)."""
    n = 0
    addr -= addr % BEAT_BYTES
    while beats > 0:
        size = min(MAX_BURST, beats, (BURST_BOUNDARY - addr % BURST_BOUNDARY) // BEAT_BYTES)
        addr += BEAT_BYTES * size
        beats -= size
        n += 1
    return n


def _residual_bytes(d: LayerDescriptor, config: SenseConfig, tiles, kpad: int, stride: int,
                    whole: bool) -> int:
    """DRAM bytes a fused add reads: the beats covering every write command's range."""
    if whole:
        return sum(count for _, count in tiles) * kpad
    total = 0
    for p0, count in tiles:
        for kt in range(d.k_tiles):
            k0 = kt * config.rows
            seg = kpad - k0 if k0 + config.rows >= d.out_channels else config.rows
            for j in range(count):
                a = d.g("exec.in2_offset") + (p0 + j) * stride + k0
                total += (a % BEAT_BYTES + seg + BEAT_BYTES - 1) // BEAT_BYTES * BEAT_BYTES
    return total


def load_follows(d: LayerDescriptor, config: SenseConfig, prefetched: bool) -> bool:
    """Whether a band's input loads while its core runs, each tile taken once its rows are in
    (hw/soc/accelerator.py `_follows`): with the weight port, a band that loads its input
    (not kept, not a prefetched band) when the read channel has nothing else to carry: no
    input-channel blocks, no split weights, no fused add in one band (its residual), nor with
    the write port in bands (side 0's residual)."""
    return (config.weight_port and not prefetched and not d.has(LayerFlags.INPUT_KEPT)
            and len(channel_blocks_of(d)) == 1 and not splits_weights(d, config)
            and not (d.has(LayerFlags.FUSE_ADD)
                     and (len(layer_bands(d)) == 1 or config.write_port)))


def residual_waits(config: SenseConfig, bands: int) -> bool:
    """Whether the model makes a fused add's writes wait for the band's weights: with the weight
    port, a layer in bands reads its residual there once its weights are in (the read channel
    is the next band's; hw/soc/accelerator.py), where one in one band reads it on the read
    channel from the start. The writer may start with the last weight beat: the residual's
    read latency hides in FUSE_OVERHEAD (counting 0 to 12 cycles more moved the 16x16 blocks of
    scripts/check_model_blocks.py by at most 0.002 %). On one port the residual follows the
    weights on the read channel too, but counting that wait made the system networks' fused
    adds worse (two-chunk-add +0.11 % -> +0.31 %, scripts/check_model.py), so it is not
    counted. With the write port side 1's residual is on the weight port, in one band or in
    bands: its writes wait (the model lets side 0's wait too)."""
    return config.weight_port and (bands > 1 or config.write_port)


def pair_eligible(d: LayerDescriptor, config: SenseConfig, pool: bool = False) -> bool:
    """Whether the gateware loads `d`'s conv bands (`pool`: its pool bands' maps) as pair loads
    (hw/soc/accelerator.py `_pair_load`): hinted (LayerHints.PAIR_LOAD), the weight port, two
    IFM banks or more, pixels of whole beats; a conv's input at stride 1 with OW <= W (its
    pixel indices its DRAM order), no input gather or join, no fused add, no input-channel
    blocks, no split weights, and all its weights in the weight buffer (the weight port is
    free once they are in)."""
    if not (config.weight_port and config.ifm_banks >= 2
            and int(d.hints) & LayerHints.PAIR_LOAD.value):
        return False
    wpl = config.ifm_words_per_line
    if pool:        # (the map read back: a pooling layer's input, or the conv's output)
        src = d.in_offset if int(d.kind) in POOL_KINDS else d.out_offset
        return pool_map(d, config)[2] % wpl == 0 and src % BEAT_BYTES == 0
    resident = d.k_tiles * k_tile_words(d, config) <= config.weight_depth
    return (int(d.kind) == LayerKind.CONV.value and d.stride == 1 and d.out_w <= d.in_w
            and d.in_groups % wpl == 0 and d.in_offset % BEAT_BYTES == 0 and not d.in_step
            and not d.in_split and not d.has(LayerFlags.FUSE_ADD)
            and len(channel_blocks_of(d)) == 1 and resident and not splits_weights(d, config))


def _band_load(d: LayerDescriptor, config: SenseConfig, i: int, band, band_tiles,
               prefetched: bool, weight_bytes: int = 0):
    """Band `i`'s input (`band`: host.buffers.layer_bands; a pair load, `pair_eligible`, with
    the layer's `weight_bytes` before it on the weight port): its DRAM beats, the cycles from its
    first band state to the core's start, and when the load follows the core
    (`load_follows`) the function pixel tile -> ready cycle (`_rows_ready`), else None. (Bands
    after the first: their states and the store's set-up before the input loads; a kept input
    is not loaded.)"""
    y, _, start, rows, top = band
    pixel_bytes = d.in_groups * config.group
    lane = (d.in_offset + start * d.in_w * pixel_bytes) % BEAT_BYTES
    in_beats = -(-(lane + rows * d.in_w * pixel_bytes) // BEAT_BYTES)
    states = BAND_STATES + (0 if i == 0 else BAND_SETUP_WAIT)
    if d.has(LayerFlags.INPUT_KEPT):     # (one band: the store still holds it)
        return in_beats, states + KEPT_STATES, None
    if pair_eligible(d, config):
        # a pair load: the odd blocks once the weights are in (the first band's, queued at
        # its start, stream while its states and parameters go by; `weight_bytes`)
        wait = max(0, weight_bytes // BEAT_BYTES - BAND_STATES - d.out_channels) if i == 0 else 0
        pieces = pair_row_pieces(rows, d.in_w, pixel_bytes // BEAT_BYTES,
                                 config.ifm_banks // 2, PAIR_LAG + wait)
    else:
        pieces = load_row_pieces(rows, d.in_w, pixel_bytes, lane)
    if not load_follows(d, config, prefetched):
        return in_beats, states + READ_OVERHEAD + pieces[-1], None
    # the core starts with the load; a tile waits for the rows its windows read
    return in_beats, states + FOLLOW_STATES, _rows_ready(d, band_tiles, y, top, pieces, rows)


def _rows_ready(d: LayerDescriptor, band_tiles, y: int, top: int, row_pieces, rows: int):
    """For load following: pixel tile p of the band (or None: the whole input) -> the cycle,
    from the core's start, the decoder may take it (its last needed input row is in)."""
    def ready(p):
        if p is None:
            need = rows
        else:
            p0, count = band_tiles[p]
            oy = (p0 + count - 1) // d.out_w - y
            need = min(oy * d.stride - top + d.kernel_h, rows)
        return FOLLOW_LEAD - FOLLOW_STATES + row_pieces[max(need, 1) - 1]
    return ready


def split_eligible(d: LayerDescriptor, config: SenseConfig) -> bool:
    """Whether the gateware can split the layer's weight reads between its two read ports
    (hw/soc/accelerator.py, BAND_A): the weight port, a CONV / FC in one band, without
    input-channel blocks or a fused add (the read channel is free while the core runs), two k
    tiles or more."""
    single_band = d.g("exec.band_rows") == 0 or d.g("exec.band_rows") >= d.out_h
    return (config.weight_port and int(d.kind) in (LayerKind.CONV.value, LayerKind.FC.value)
            and d.g("exec.c_blocks") <= 1 and not d.has(LayerFlags.FUSE_ADD) and single_band
            and d.k_tiles > 1)


def split_modelled(d: LayerDescriptor, config: SenseConfig) -> bool:
    """Whether the weight ring leaves both split streams free, as the model assumes: all the
    layer's weights fit it, or it holds three k tiles (the core's, and the next one of each
    stream). With less, the stream two tiles ahead waits for the core to release words: VGG-16's
    fc6 (12,544 words a k tile in a ring of 16,384) ran 10 % slower in RTL than modelled."""
    kt_words = k_tile_words(d, config)
    return (d.k_tiles * kt_words <= config.weight_depth
            or 3 * kt_words <= config.weight_depth)


def splits_weights(d: LayerDescriptor, config: SenseConfig) -> bool:
    """Whether the gateware splits the layer's weight reads: eligible and hinted
    (LayerHints.SPLIT_WEIGHTS, set by the packer where the model finds it faster)."""
    return split_eligible(d, config) and bool(int(d.hints) & LayerHints.SPLIT_WEIGHTS.value)


def schedule_choice(d: LayerDescriptor, layer: ConvLayer, config: SenseConfig,
                    split: bool = True, bands: bool = True) -> tuple[LayerDescriptor, int]:
    """(descriptor, cycles): `d` (a conv / FC) as the packer schedules it, and the model's cycles
    for it without its max-pool pass. The SPLIT_WEIGHTS hint is set where the gateware can split
    the weight reads (`split_eligible`), the model holds (`split_modelled`) and it is faster
    (never without `split`). With `bands`, a layer in one band whose input the store does not
    already hold is cut into the bands fitting half the IFM store that are fastest, if any is
    faster: the gateware loads each band while the one before computes (band prefetch), so the
    input's load overlaps the layer's computing and writing; a layer the planner already cut
    into bands (its input exceeds the store) gets the fastest band height that fits half the
    store, if it is faster than the planner's. (A conv with a fused add in bands reads its
    residual on the weight port once its weights are in, and its writes wait until then:
    `residual_waits`. Before the model counted that wait, it chose bands for ResNet-50's
    layer3.1 conv3 on a 16x16 grid that took 482,063 RTL cycles against 470,209 in one band.)
    The packer (`host.image.pack_image`) and the planner (`host.plan`) both choose with this."""
    def cycles(desc):
        return layer_estimate(desc.replace(flags=int(desc.flags) & ~LayerFlags.POOL.value),
                              layer, config)["cycles"]

    def hinted(desc):
        plain = desc.replace(hints=int(desc.hints) & ~LayerHints.SPLIT_WEIGHTS.value)
        best = (plain, cycles(plain))
        if split and split_eligible(desc, config) and split_modelled(desc, config):
            hint = desc.replace(hints=int(desc.hints) | LayerHints.SPLIT_WEIGHTS.value)
            best = min(best, (hint, cycles(hint)), key=lambda t: t[1])
        return _pair_choice(best, cycles, config)

    best = hinted(d)
    if (not bands or d.g("exec.c_blocks") > 1 or d.pool
            or d.out_h < 2 or d.has(LayerFlags.INPUT_KEPT) or d.stride not in STRIDES
            or not config.weight_port and d.has(LayerFlags.FUSE_ADD)):
        return best
    for n in range(1, d.out_h):
        banded = d.replace(graph={**d.graph, "exec.band_rows": n})
        if not fits_half_store(band_geometry(banded, config), config):
            break
        best = min(best, hinted(banded), key=lambda t: t[1])
    return best


def _slot_write(d, config: SenseConfig, tile, k0: int, kpad: int, stride: int,
                whole: bool) -> int:
    """Cycles the output writer takes for one slot (`tile` = (first pixel, pixels) of a pixel
    tile, the k tile at channel `k0`; whole mode: the pixel tile's k tiles all): its separator
    division, then per drain side (hw.soc.output_writer.writer_sides) a command per pixel
    segment or one for its pixels, the sides at once on two write channels (a fused add's
    through two add units), or (one side) one after the other."""
    beat = BEAT_BYTES
    fuse = FUSE_OVERHEAD if d.has(LayerFlags.FUSE_ADD) else 0
    sides = writer_sides(config)
    p0, count = tile
    # The driver puts the activation region on a 4 KiB boundary (host.driver.ACT_ALIGN).
    addr = d.out_offset + d.g("exec.out_c_offset") + p0 * stride + k0
    seg = kpad - k0 if k0 + config.rows >= d.out_channels else config.rows
    costs = []
    for lo, hi in sides:
        n = min(max(count - lo, 0), hi - lo)
        if n == 0:
            continue
        a0 = addr + lo * stride
        if whole:
            beats = n * kpad // beat
            costs.append(SEGMENT_OVERHEAD + fuse + beats
                         + BURST_OVERHEAD * (_bursts(a0, beats) - 1))
            continue
        costs.append(sum(SEGMENT_OVERHEAD + fuse + ((a0 + j * stride) % beat + seg + beat - 1)
                         // beat for j in range(n)))
    at_once = len(sides) > 1
    # separator rows: every slot first divides its first pixel index
    return ((SEPARATOR_CYCLES if d.sep_slot else 0)
            + (max(costs) if at_once else sum(costs)))


def layer_estimate(d: LayerDescriptor, layer: ConvLayer, config: SenseConfig,
                   skip: bool = True) -> dict:
    """Cycles, DRAM bytes, MACs and skipped groups of one layer of a run: `d` its descriptor,
    `layer` its weights and input
    (zero-group skipping depends on the data; `skip` False: as if no group were ever skipped,
    the cost of weight sparsity alone). DRAM bytes, MACs and skipped groups are exact;
    cycles are the core's exact recurrence plus the DMA phases (READ_OVERHEAD,
    SEGMENT_OVERHEAD, BURST_OVERHEAD) with DRAM that answers at once. A layer in bands
    (`graph.exec.band_rows`, host.buffers.layer_bands) runs band after band: each loads its input
    rows, then the core computes its output rows (the parameters, and weights that fit the
    weight buffer, load with the first band only)."""
    m = config.group
    beat = BEAT_BYTES
    ifm_stationary = d.ifm_stationary
    layer = dataclasses.replace(layer, ifm_stationary=ifm_stationary)
    k = d.out_channels
    kpad = -(-k // m) * m
    band_rows = d.g("exec.band_rows")
    pixels = d.out_h * d.out_w
    tiles = layer.tiles(config, band_rows)
    mask = skip_mask(layer, config, band_rows) & skip
    cost = np.where(mask, 1, config.cycles_per_group)
    # A concat's channel range: pixels `stride` bytes apart, from channel out_c_offset.
    stride = d.g("exec.out_c_total") or kpad
    whole = whole_tile_writes(config, k, d.k_tiles, ifm_stationary, stride != kpad)
    # A fused add: every write command's range of the residual is read while it is written.
    fuse = FUSE_OVERHEAD if d.has(LayerFlags.FUSE_ADD) else 0
    word_beats = record_bytes(weight_word_layout(config), beat) // beat
    kt_words = k_tile_words(d, config)
    weight_bytes = d.k_tiles * kt_words * word_beats * beat
    resident = d.k_tiles * kt_words <= config.weight_depth
    blocks = channel_blocks_of(d)
    blocked = len(blocks) > 1
    taps = d.kernel_h * d.kernel_w

    slot_costs = {}

    def tile_write(p, kt):
        k0 = kt * config.rows
        if whole and k0 + config.rows < k:
            return 0, False
        # (a slot's cost depends on its DRAM address only modulo the burst boundary)
        p0, count = band_tiles[p]
        key = ((p0 * stride + k0) % BURST_BOUNDARY, count, k0)
        if key not in slot_costs:
            slot_costs[key] = _slot_write(d, config, band_tiles[p], k0, kpad, stride, whole)
        return slot_costs[key], True

    def weights_in(kt):
        # The weight block streams at one beat per cycle from the core's start.
        return READ_OVERHEAD + (kt + 1) * kt_words * word_beats

    cycles = (READ_OVERHEAD + DESCRIPTOR_BYTES // beat) + LAYER_STATES + (READ_OVERHEAD + k)
    read_bytes = DESCRIPTOR_BYTES + beat * k
    core = {"slots_issued": 0, "groups_skipped": 0}
    first_tile = 0
    bands = layer_bands(d)
    # Band prefetch (hw/soc/accelerator.py, RUN): with resident weights and bands that fit half
    # the IFM store, band i + 1 is loaded while band i computes, from when band i's weights are in.
    # (not with a fused add on one port: the read channel carries its residual; with the weight
    # port the residual reads take that port once the weights are in; with the write port too
    # the read channel carries side 0's residual)
    prefetch = resident and not blocked and len(bands) > 1 \
        and (not fuse or config.weight_port and not config.write_port) \
        and fits_half_store(band_geometry(d, config), config)
    split = splits_weights(d, config)
    write_bytes = pixels * kpad
    if fuse:
        # (the residual's ranges are the output's, in whole beats: `write_bytes` when every
        # command is whole beats, as in the whole-tile writes the packer fuses)
        read_bytes += _residual_bytes(d, config, tiles, kpad, stride, whole)
    prev = None                      # (run cycles, weights-in cycles) of the band before
    for i, band in enumerate(bands):
        y, n = band[:2]
        n_tiles = sum(1 for p0, _ in tiles[first_tile:] if p0 < (y + n) * d.out_w)
        band_tiles = tiles[first_tile:first_tile + n_tiles]
        band_cost = cost[first_tile:first_tile + n_tiles]
        first_tile += n_tiles
        in_beats, gap, ready = _band_load(d, config, i, band, band_tiles, prefetch and i > 0,
                                          weight_bytes)
        read_bytes += 0 if d.has(LayerFlags.INPUT_KEPT) else in_beats * beat
        streamed = i == 0 or not resident or blocked
        if streamed:
            read_bytes += weight_bytes
        # How much earlier than the core's start a block's weight read begins (the weight port).
        lead = [0] * len(blocks)
        if config.weight_port:
            lead = [-WEIGHT_QUEUE] * len(blocks)
            lead[0] = gap + (READ_OVERHEAD + k if i == 0 else 0) - WEIGHT_LEAD
        run = 0
        for b, (g0, g1) in enumerate(blocks):
            # an input-channel block: its groups' columns, its weights, its partial sums
            block_cost = band_cost.reshape(n_tiles, taps, d.in_groups)[:, :, g0:g1] \
                .reshape(n_tiles, -1)
            block_words = taps * (g1 - g0) * config.cycles_per_group

            def block_weights_in(kt, words=block_words, early=lead[b]):
                if split:          # this k tile's stream: its own tiles, one after another
                    early = early if kt % 2 == 0 else -WEIGHT_QUEUE
                    return (READ_OVERHEAD + (kt // 2 + 1) * words * word_beats
                            + kt // 2 * SPLIT_GAP - early)
                return READ_OVERHEAD + (kt + 1) * words * word_beats - early

            last = b == len(blocks) - 1
            psum = None
            if blocked:
                psum_bytes = n_tiles * k * psum_row_bytes(config)
                read_bytes += psum_bytes if b else 0
                write_bytes += 0 if last else psum_bytes
                first_in = block_weights_in(d.k_tiles - 1) + PSUM_READ_LEAD if b else 0
                psum = (1 if last else PSUM_WRITE_CYCLES + psum_row_beats(config), first_in)
            # A fused add whose residual shares a port with the weights: no write before
            # they are all in (residual_waits).
            writes_from = (block_weights_in(d.k_tiles - 1)
                           if fuse and streamed and residual_waits(config, len(bands)) else 0)
            block_core = tile_cycles(block_cost.sum(axis=1), tail_costs(block_cost), d.k_tiles,
                                     config, ifm_stationary, tile_write if last else None,
                                     block_weights_in if streamed else None, psum, k,
                                     writes_from=writes_from, tile_ready=ready)
            run += max(block_core["cycles"], block_core["writer_end"]) + (BLOCK_STATES if b else 0)
        if ready is not None:           # (the band ends once its whole input is in, too)
            run = max(run, ready(None))
        if prefetch and prev is not None:
            # the band before ran `prev[0]`; this band's states and load started `prev[1]`
            # cycles into it: the later of the two ends, then RUN_WAIT
            cycles += max(prev[0], prev[1] + PREFETCH_LEAD + gap) - prev[0] \
                + PREFETCH_SWITCH + run
        else:
            cycles += gap + run
        # (the weight port: the next band's load does not wait for this band's weights, only,
        # when this band's load follows its core, for that load)
        prev = (run, weights_in(d.k_tiles - 1) if streamed and not config.weight_port
                else ready(None) if ready is not None else 0)
        band_mask = mask[first_tile - n_tiles:first_tile]
        core["slots_issued"] += int((~band_mask).sum()) * d.k_tiles * config.cycles_per_group
        core["groups_skipped"] += int(band_mask.sum()) * d.k_tiles
    if d.pool:
        pool = pool_pass(d, config)
        cycles += pool["cycles"]
        read_bytes += pool["dram_read_bytes"]
        write_bytes += pool["dram_write_bytes"]
    return {"cycles": int(cycles), "dram_read_bytes": read_bytes, "dram_write_bytes": write_bytes,
            "macs": core["slots_issued"] * config.pes, "groups_skipped": core["groups_skipped"]}
