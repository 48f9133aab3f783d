"""Contents of the core's on-chip buffers for one layer, in exactly the order the core reads them.

* IFM: the input tensor's DRAM bytes (`to_activation`: per pixel its padded channels), which
  the IFM store places itself (hw.core.ifm_store: each pixel in one bank, once).
* Weights: one word per (k tile, group, slot): one (value, position) entry per grid row, row i
  for output channel ``kt * rows + i`` (0 beyond the last channel). Sparse: the M/2 kept weights of
  the group in ascending position order; dense baseline: all M weights, position implied by slot.
* Parameters: bias, mult, shift per output channel.
* Output: one row per (output channel, pixel tile): ``cols`` int8 for pixels ``p0 + j``, of
  which the first ``count`` are real (the tiles: `ConvLayer.tiles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host import golden
from host.sparse import (
    check_balanced,
    compress,
    group_counts,
    groups_of,
    pad_channels,
    ungroup,
)
from hw.config import SenseConfig
from hw.core.ifm_store import STRIDES, ifm_geometry, ifm_seg
from hw.core.pixel_walker import pixel_tiles
from hw.layouts import (
    BEAT_BYTES,
    CHANNEL_BITS,
    DIM_BITS,
    KERNEL_BITS,
    LayerFlags,
    LayerKind,
    POOL_KINDS,
    layer_layout,
    pack,
    pack_array,
    param_layout,
    record_bytes,
    weight_word_layout,
)

__all__ = ["ConvLayer", "descriptor_window", "pool_fit_problem", "pool_rows_geometry", "pool_map", "pool_bands", "pool_band_rows", "window_count", "layer_limit_problem", "buffer_problem", "k_tile_words", "layer_bands", "band_geometry", "fits_half_store", "ifm_words", "weight_words", "param_words", "layer_fields",
           "assemble_output", "to_activation", "from_activation", "activation_beats"]


@dataclass
class ConvLayer:
    """One quantized layer as the core runs it. x (C, H, W) int8 is one image; w (K, C, R, S) int8
    must be balanced-sparse for a sparse configuration (any weights run on the dense baseline)."""

    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    stride: int = 1
    pad: int = 0
    relu: bool = True
    name: str = "layer"
    ifm_stationary: bool = False    # tile order: pixel tile outer (True) or k tile outer
    # x is a batch's images stacked without separator rows (host.batch): (input rows, output
    # rows) of each image, padded on its own; None: x is one image
    image_rows: tuple | None = None

    def out_shape(self):
        _, h, wd = self.x.shape
        _, _, r, s = self.w.shape
        return (golden.output_size(h, r, self.stride, self.pad),
                golden.output_size(wd, s, self.stride, self.pad))

    def reference(self) -> np.ndarray:
        """The golden model's output (K, OH, OW) int8."""
        acc = golden.conv2d(self.x[None], self.w, stride=self.stride, padding=self.pad,
                            image_rows=self.image_rows[0] if self.image_rows else None)
        y = golden.requantize(golden.add_bias(acc, self.bias), self.mult, self.shift)[0]
        return golden.relu(y) if self.relu else y

    def geometry(self, config: SenseConfig):
        """The input's placement in the IFM store (`hw.core.ifm_store.ifm_geometry`)."""
        c, h, wd = self.x.shape
        return ifm_geometry(h, wd, -(-c // config.group), self.stride, self.pad,
                            self.out_shape()[1], config)

    def tiles(self, config: SenseConfig, band_rows: int = 0):
        """The core's pixel tiles [(first pixel, valid pixels)] (`pixel_tiles`)."""
        oh, ow = self.out_shape()
        seg = ifm_seg(self.x.shape[2], self.stride, ow)
        return pixel_tiles(oh, ow, config.cols, seg, band_rows)

    def check(self, config: SenseConfig) -> None:
        """Refuse a layer the core cannot hold or compute exactly, naming the limit."""
        c, h, wd = self.x.shape
        k, wc, r, s = self.w.shape
        oh, ow = self.out_shape()
        problem = layer_limit_problem(self.x.shape, self.w, self.stride, self.pad,
                                      self.bias, config)
        if problem:
            raise ValueError(f"{self.name}: {problem}")
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.name}: kernel {r}x{s} does not fit the {h}x{wd} input")
        if config.sparse:
            check_balanced(pad_channels(self.w, config.group, axis=1), config.group, self.name)
        geometry = self.geometry(config)
        if not geometry.fits(config):
            raise ValueError(f"{self.name}: input needs {geometry.lines} lines of each IFM bank, "
                             f"the configuration has {config.ifm_bank_lines}")
        wwords = len(weight_slots(self, config))
        if wwords > config.weight_depth:
            raise ValueError(f"{self.name}: weights need {wwords} weight buffer words, the "
                             f"configuration has {config.weight_depth}")


def layer_limit_problem(in_shape, w, stride, pad, bias, config: SenseConfig, pool=None):
    """What makes a layer (input shape, int8 weights `w` (K, C, R, S), ...) impossible for the
    hardware (a field beyond its width, channels that do not match, a sum that could leave int32
    or the grid's `acc_width`-bit accumulators), as a message; None when it fits."""
    c, h, wd = in_shape
    k, wc, r, s = w.shape
    if wc != c:
        return f"weights expect {wc} input channels, the input has {c}"
    limits = [("input height", h, (1 << DIM_BITS) - 1), ("input width", wd, (1 << DIM_BITS) - 1),
              ("kernel height", r, (1 << KERNEL_BITS) - 1),
              ("kernel width", s, (1 << KERNEL_BITS) - 1),
              ("stride", stride, (1 << KERNEL_BITS) - 1), ("padding", pad, (1 << KERNEL_BITS) - 1),
              ("output channels", k, min(config.max_channels, (1 << CHANNEL_BITS) - 1))]
    if pool:
        limits += [("pool kernel", pool[0], 255), ("pool stride", pool[1], 255),
                   ("pool padding", pool[2], 255)]
    for what, value, hi in limits:
        if value > hi:
            return f"{what} {value} exceeds the hardware limit {hi}"
    if stride not in STRIDES:
        return (f"stride {stride} is not one the IFM store places "
                f"({', '.join(map(str, STRIDES))})")
    reduction = r * s * padded(c, config.group)
    bound = golden.acc_bound(reduction, int(np.abs(np.asarray(bias, np.int64)).max(initial=0)))
    if bound > golden.INT32_MAX:
        return (f"the accumulator could reach {bound}, beyond int32; the reduction "
                f"({reduction}) or the bias is too large")
    grid = golden.grid_acc_bound(w)
    if grid >= 1 << (config.acc_width - 1):
        return (f"a sum of products could reach {grid} (128 times the output channel's "
                f"largest sum of |weights|), beyond the grid's {config.acc_width}-bit "
                f"accumulators (acc_width; the widest is 32)")
    return None


def k_tile_words(d, config: SenseConfig) -> int:
    """Weight words of one k tile of a CONV / FC (every channel group, every tap;
    `LayerCheck.kt_words` in the gateware)."""
    return d.kernel_h * d.kernel_w * d.in_groups * config.cycles_per_group


def buffer_problem(d, config: SenseConfig) -> str | None:
    """What of a layer (its `hw.layouts.LayerDescriptor`) does not fit the on-chip buffers of
    `config`, as a message naming the buffer, the bytes needed and the bytes there are; None
    when it fits. The same four rules as the gateware's `LayerCheck` (TOO_LARGE)."""
    m = config.group
    store = (f"the IFM store holds {config.ifm_kib} KiB ({config.ifm_banks} banks of "
             f"{config.ifm_bank_lines} lines of {BEAT_BYTES} bytes)")
    if d.stride not in STRIDES:
        return f"stride {d.stride} is not one the IFM store places"
    g = band_geometry(d, config)
    if not g.fits(config):
        what = (f"its input ({d.in_channels}x{d.in_h}x{d.in_w})" if g.yn * d.stride >= d.in_h
                else f"a band of {d.g('exec.band_rows')} output rows of its input "
                     f"({d.in_channels}x{d.in_h}x{d.in_w})")
        return (f"{what} needs {g.lines} lines of each IFM bank "
                f"({g.lines * config.ifm_banks * BEAT_BYTES} bytes placed for stride "
                f"{d.stride}); {store}")
    if d.pool:
        problem = pool_fit_problem(d, config)
        if problem:
            return f"with max-pool, {problem}; {store}"
    word = record_bytes(weight_word_layout(config), BEAT_BYTES)
    tile_words = k_tile_words(d, config)
    held = f"the weight buffer holds {config.weight_depth * word} bytes ({config.weight_depth} " \
           f"words of {word})"
    if d.g("exec.c_blocks") > 1:
        block = (d.k_tiles * d.kernel_h * d.kernel_w * d.g("exec.c_block_groups")
                 * config.cycles_per_group)
        if block > config.weight_depth:
            return (f"an input-channel block's weights ({d.g('exec.c_block_groups')} channel "
                    f"groups) need {block * word} bytes; {held}")
        return None
    if tile_words > config.weight_depth:
        return f"one k tile's weights need {tile_words * word} bytes; {held}"
    if d.ifm_stationary and d.k_tiles * tile_words > config.weight_depth:
        return (f"in the IFM-stationary order all its weights ({d.k_tiles * tile_words * word} "
                f"bytes) stay on chip; {held}")
    if d.has(LayerFlags.FUSE_ADD) and d.k_tiles * tile_words > config.weight_depth:
        return (f"with a fused add all its weights ({d.k_tiles * tile_words * word} bytes) are "
                f"read before the residual; {held}")
    return None


def pool_rows_geometry(d, config: SenseConfig, per: int):
    """The IFM store's placement of the largest band of `per` pooled rows of the pool pass's
    map (0: the whole map): (per - 1) * stride + kernel map rows, at most the map's."""
    map_h, map_w, groups = pool_map(d, config)
    win = descriptor_window(d)
    rows = map_h if per == 0 else min((per - 1) * win.stride[0] + win.kernel[0], map_h)
    return ifm_geometry(rows, map_w, groups, 1, 0, map_w, config), rows


def pool_fit_problem(d, config: SenseConfig) -> str | None:
    """Why the pool pass of `d` cannot hold its map (or a band of it, `exec.pool_band_rows`)
    in the IFM store, or None."""
    map_h, map_w, groups = pool_map(d, config)
    per = d.g("exec.pool_band_rows")
    g, rows = pool_rows_geometry(d, config, per)
    if g.fits(config):
        return None
    what = "its map" if rows == map_h else f"a band of {per} pooled rows of its map"
    return (f"{what} ({groups * config.group}x{map_h}x{map_w}, read back into the IFM store) "
            f"needs {g.lines} lines of each IFM bank, the store has {config.ifm_bank_lines}")


def descriptor_window(d) -> golden.Window:
    """The window of a pooling descriptor (MAXPOOL, AVGPOOL: its window fields; GAP: the whole
    input; a conv's fused max-pool: the square fields). ValueError if malformed."""
    kind = int(d.kind)
    if kind == LayerKind.GAP.value:
        return golden.Window.of((d.in_h, d.in_w), 1)
    if kind in (LayerKind.MAXPOOL.value, LayerKind.AVGPOOL.value):
        dil = d.g("exec.pool_dilation")
        return golden.Window.of((d.pool_kernel, d.g("exec.pool_kernel_w")),
                                (d.pool_stride, d.g("exec.pool_stride_w")),
                                (d.pool_pad, d.g("exec.pool_pad_l"), d.g("exec.pool_pad_b"),
                                 d.g("exec.pool_pad_r")),
                                ((dil & 15) + 1, (dil >> 4) + 1), d.has(LayerFlags.CEIL))
    return golden.Window.of(d.pool_kernel, d.pool_stride, d.pool_pad)


def window_count(n: int, k: int, s: int, before: int, after: int, ceil: bool) -> int:
    """Windows of size k, stride s on an axis of n values with `before` / `after` padding, as
    hw.soc.pool counts them (floor, or ceil_mode: a window may reach past the padding but must
    start inside the values or the padding before them)."""
    count, end, span = 0, k, n + before + after
    while (end < span + s and end - k < n + before) if ceil else end <= span:
        count, end = count + 1, end + s
    return count


def pool_map(d, config: SenseConfig) -> tuple[int, int, int]:
    """(rows, columns, channel groups) of the map the pool pass of descriptor `d` pools: a
    pooling layer's input, or a conv's output before its fused max-pool."""
    if int(d.kind) in POOL_KINDS:
        return d.in_h, d.in_w, d.in_groups
    return d.out_h, d.out_w, -(-d.out_channels // config.group)


def pool_bands(d, config: SenseConfig) -> list[tuple[int, int, int, int, bool, int]]:
    """The bands the pool pass of `d` runs in, as the sequencer's POOL_BAND states compute
    them: (first pooled row, first map row, map rows, padding rows above, last, pooled rows)."""
    map_h, _, _ = pool_map(d, config)
    win = descriptor_window(d)
    (kh, _), (sh, _), (pt, _, pb, _) = win.kernel, win.stride, win.pads
    per = d.g("exec.pool_band_rows")
    bands, py = [], 0
    while True:
        ys = py * sh - pt
        ye = ys + (map_h + pt if per == 0 else (per - 1) * sh + kh)
        y0, y1, last = max(ys, 0), min(ye, map_h), ye >= map_h
        n = window_count(y1 - y0, kh, sh, y0 - ys, pb if last else 0, win.ceil_mode)
        bands.append((py, y0, y1 - y0, y0 - ys, last, n))
        if last:
            return bands
        py += n


def pool_band_rows(d, config: SenseConfig) -> int | None:
    """`exec.pool_band_rows` for `d`'s pool pass: 0 when its whole map fits the IFM store,
    else the most pooled rows whose map rows fit (None: not even one row's do, or the window's
    stride exceeds its kernel, which bands do not take)."""
    win = descriptor_window(d)

    def fits(per):
        return pool_rows_geometry(d, config, per)[0].fits(config)

    if fits(0):
        return 0
    if win.stride[0] > win.kernel[0] or not fits(1):
        return None
    per = 1
    while fits(per + 1):
        per += 1
    return per


def store_key(d, config: SenseConfig):
    """What a layer loads into the IFM store when it loads it in one piece, as the gateware
    records it (hw.soc.accelerator: the range's address and bytes, the store's geometry): a
    conv / FC in one band and one input-channel block, or a pooling layer in one pool band;
    None otherwise. A layer whose key equals the one before's `kept_key` may skip its load
    (flag INPUT_KEPT)."""
    m = config.group
    if int(d.kind) in POOL_KINDS:
        bands = pool_bands(d, config)
        if len(bands) != 1:
            return None
        _, y0, rows, _, _, _ = bands[0]
        return (d.in_offset + y0 * d.in_w * d.in_groups * m, rows * d.in_w * d.in_groups * m,
                rows, d.in_w, d.in_groups, 1, 0, 0, d.in_w)
    if int(d.kind) not in (LayerKind.CONV.value, LayerKind.FC.value) or \
            d.g("exec.c_blocks") > 1 or len(layer_bands(d)) != 1 or d.in_step:
        return None     # (a gathered input is no plain range: the gateware never keeps it)
    _, _, start, rows, top = layer_bands(d)[0]
    row_bytes = d.in_w * d.in_groups * m
    return (d.in_offset + start * row_bytes, rows * row_bytes, rows, d.in_w, d.in_groups,
            d.stride, d.pad, top, d.out_w)


def kept_key(d, config: SenseConfig):
    """What the IFM store holds after layer `d` (its `store_key`), or None: a conv's fused
    max-pool reads its output back into the store."""
    if int(d.kind) not in POOL_KINDS and d.pool:
        return None
    return store_key(d, config)


def layer_bands(d) -> list[tuple[int, int, int, int, int]]:
    """The bands a conv / FC descriptor runs in, as the accelerator's BAND states compute them:
    (first output row, output rows, first input row, input rows, padding rows above)."""
    per = d.g("exec.band_rows") or d.out_h
    bands = []
    for y in range(0, d.out_h, per):
        n = min(per, d.out_h - y)
        y0 = y * d.stride - d.pad
        start, end = max(0, y0), min(d.in_h, y0 + (n - 1) * d.stride + d.kernel_h)
        bands.append((y, n, start, end - start, start - y0))
    return bands


def band_geometry(d, config: SenseConfig):
    """The IFM store placement of a descriptor's largest band input (the whole input when it
    runs in one band): what LayerCheck's TOO_LARGE rule compares with the store."""
    rows = d.g("exec.band_rows")
    banded = 0 < rows < d.out_h
    in_h = min(d.in_h, (rows - 1) * d.stride + d.kernel_h) if banded else d.in_h
    return ifm_geometry(in_h, d.in_w, d.in_groups, d.stride, d.pad, d.out_w, config,
                        pad_top=0 if banded else d.pad)


def fits_half_store(geometry, config: SenseConfig) -> bool:
    """Whether a band placed as `geometry` (`band_geometry`, `pool_rows_geometry`) fits half the
    IFM store: the gateware then loads the next band into the other half while this one
    computes or is pooled (band prefetch; LayerCheck's `half_fits` / `pool_half_fits`)."""
    return geometry.lines <= config.ifm_bank_lines // 2


def padded(channels, group):
    return -(-channels // group) * group


def ifm_words(x: np.ndarray, config: SenseConfig) -> np.ndarray:
    """(C, H, W) int8 -> (H * W * G_c, M) int8 in IFM buffer order (also the DRAM layout of an
    activation tensor: its bytes are `to_activation`)."""
    xp = pad_channels(x, config.group, axis=0)
    c, h, w = xp.shape
    return np.ascontiguousarray(xp.transpose(1, 2, 0)).reshape(h * w * c // config.group,
                                                                config.group)


def to_activation(x: np.ndarray, config: SenseConfig) -> bytes:
    """(C, H, W) int8 -> the tensor's bytes in the activation region (docs/memory-image.md)."""
    return ifm_words(np.asarray(x, np.int8), config).tobytes()


def from_activation(data: bytes, shape, config: SenseConfig) -> np.ndarray:
    """Inverse of `to_activation`: the first act_bytes(shape) bytes of `data` -> (C, H, W) int8."""
    c, h, w = shape
    cp = padded(c, config.group)
    a = np.frombuffer(bytes(data[:h * w * cp]), np.int8).reshape(h, w, cp)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[:c])


def activation_beats(x: np.ndarray, config: SenseConfig) -> list[int]:
    """(C, H, W) int8 -> the tensor's DRAM beats (16 bytes each, the last zero-filled) as integers:
    what the IFM store's loader takes."""
    data = to_activation(x, config)
    data += bytes(-len(data) % BEAT_BYTES)
    return [int.from_bytes(data[i:i + BEAT_BYTES], "little")
            for i in range(0, len(data), BEAT_BYTES)]


def weight_slots(layer: ConvLayer, config: SenseConfig):
    """(words, rows, 2) int16 of (value, position) in weight buffer order."""
    return weight_slots_of(layer.w, config, name=layer.name)


def weight_slots_of(w: np.ndarray, config: SenseConfig, mask=None, name: str = "layer"):
    """Weight buffer order for (K, C, R, S) int8 weights: (k tile, group, slot) words of one
    (value, position) per row. `mask` (kept weights, like `w`) keeps kept zeros in their slots;
    without it the kept slots are the nonzero weights, topped up with the lowest positions."""
    m, rows = config.group, config.rows
    w = pad_channels(w, m, axis=1)
    k = w.shape[0]
    k_tiles = -(-k // rows)
    if k == k_tiles * rows:
        wk = w
    else:
        wk = np.zeros((k_tiles * rows,) + w.shape[1:], np.int8)
        wk[:k] = w
    if config.sparse:
        mk = None
        if mask is not None:
            if k == k_tiles * rows:
                mk = pad_channels(mask.astype(bool), m, axis=1)
            else:
                mk = np.zeros(wk.shape, bool)
                mk[:k] = pad_channels(mask, m, axis=1)
                # Rows beyond the last channel keep the first M/2 positions of every group.
                first = np.zeros(m, bool)
                first[: m // 2] = True
                extra = groups_of(mk[k:], m)
                extra[...] = first
                mk[k:] = ungroup(extra, mk[k:].shape)
            # Padded channels: top each group up to M/2 with its lowest unkept positions.
            gm = groups_of(mk, m)
            need = m // 2 - group_counts(gm)
            if (need < 0).any():
                check_balanced(wk, m, name, mk)
            if need.any():
                rank = np.cumsum(~gm, axis=-1)
                gm |= (~gm) & (rank <= need[..., None])
                mk = ungroup(gm, mk.shape)
        values, positions = compress(wk, m, mask=mk, name=name)     # (Kp, G, M/2)
    else:
        values = groups_of(wk, m)                                    # (Kp, G, M)
        positions = np.broadcast_to(np.arange(m, dtype=np.uint8), values.shape)
    g, slots = values.shape[1:]
    # (kt, row, g, slot) -> (kt, g, slot, row)
    v = values.reshape(k_tiles, rows, g, slots).transpose(0, 2, 3, 1).reshape(-1, rows)
    p = positions.reshape(k_tiles, rows, g, slots).transpose(0, 2, 3, 1).reshape(-1, rows)
    return np.stack([v.astype(np.int16), p.astype(np.int16)], axis=-1)


def channel_block_order(k_tiles: int, taps: int, in_groups: int, block_groups: int,
                        slots: int) -> np.ndarray:
    """The order of a layer's weight words (`weight_slots_of`: k tile, tap, channel group,
    slot) in input-channel blocks of `block_groups` channel groups (the last may have fewer):
    block by block, each in the layer's order over its own groups (what the core reads for one
    block). Word i of the blocked weights is word order[i] of the layer's."""
    index = np.arange(k_tiles * taps * in_groups * slots).reshape(k_tiles, taps, in_groups, slots)
    return np.concatenate([index[:, :, g0:g0 + block_groups].ravel()
                           for g0 in range(0, in_groups, block_groups)])


def weight_records(slots: np.ndarray, config: SenseConfig) -> np.ndarray:
    """Weight slots (see `weight_slots_of`) as weight words: (words, bytes) uint8, each word
    `weight_word_layout` padded to whole AXI beats, exactly as the memory image stores them."""
    planes = np.ascontiguousarray(slots.transpose(2, 1, 0))   # (value/pos, row, word)
    leaves = {}
    for row in range(config.rows):
        leaves[(row, "value")] = planes[0, row]
        if config.pos_width:
            leaves[(row, "pos")] = planes[1, row]
    # int8 values and positions < M by construction: no range check needed.
    return pack_array(weight_word_layout(config), leaves, len(slots), align=BEAT_BYTES,
                      check=False)


def weight_words(layer: ConvLayer, config: SenseConfig) -> list[int]:
    """Weight buffer words as integers of weight_word_layout (the image's bytes, read back)."""
    records = weight_records(weight_slots(layer, config), config)
    return [int.from_bytes(r.tobytes(), "little") for r in records]


def param_words(layer: ConvLayer, config: SenseConfig) -> list[int]:
    layout = param_layout(config)
    return [pack(layout, {"bias": int(b), "mult": int(mu), "shift": int(s)})
            for b, mu, s in zip(layer.bias, layer.mult, layer.shift)]


def layer_fields(layer: ConvLayer, config: SenseConfig) -> dict:
    c, h, w = layer.x.shape
    k, _, r, s = layer.w.shape
    oh, ow = layer.out_shape()
    return {"in_groups": padded(c, config.group) // config.group, "in_h": h, "in_w": w,
            "out_h": oh, "out_w": ow, "out_channels": k, "kernel_h": r, "kernel_w": s,
            "stride": layer.stride, "pad": layer.pad, "pad_top": layer.pad,
            "relu": int(layer.relu),
            "ifm_stationary": int(layer.ifm_stationary),
            # the whole layer as one input-channel block
            "cg0": 0, "psum_in": 0, "psum_out": 0,
            # (stacked images: rows per image; the run starts at an image's first row)
            "img_h": layer.image_rows[0] if layer.image_rows else 0,
            "img_oh": layer.image_rows[1] if layer.image_rows else 0, "oyl0": 0}


def layer_word(layer: ConvLayer, config: SenseConfig) -> int:
    return pack(layer_layout(config), layer_fields(layer, config))


def assemble_output(rows, layer: ConvLayer, config: SenseConfig) -> np.ndarray:
    """Output rows [(channel, first pixel, count, data)] -> (K, OH, OW) int8. Raises ValueError
    when a row is missing, repeated, or has the wrong pixel count."""
    k = layer.w.shape[0]
    oh, ow = layer.out_shape()
    pixels = oh * ow
    tiles = dict(layer.tiles(config))
    index = {p0: i for i, p0 in enumerate(tiles)}
    out = np.zeros((k, pixels + config.cols), np.int8)
    seen = np.zeros((k, len(tiles)), bool)
    for channel, p0, count, data in rows:
        if not (0 <= channel < k and p0 in index):
            raise ValueError(f"output row for channel {channel}, pixel {p0} is out of range")
        if seen[channel, index[p0]]:
            raise ValueError(f"output row for channel {channel}, pixel {p0} came twice")
        if count != tiles[p0]:
            raise ValueError(f"output row for channel {channel}, pixel {p0} has count {count}, "
                             f"expected {tiles[p0]}")
        seen[channel, index[p0]] = True
        out[channel, p0:p0 + count] = np.asarray(data[:count], np.int8)
    if not seen.all():
        missing = np.argwhere(~seen)[0]
        raise ValueError(f"{int((~seen).sum())} output rows missing, first channel {missing[0]}, "
                         f"tile {missing[1]}")
    return out[:, :pixels].reshape(k, oh, ow)
