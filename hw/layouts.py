"""Packed data shared by gateware and host: one definition, used by both.

The gateware uses these `data.Layout`s for its ports and memories; the host (packer, testbenches)
packs and unpacks integers with `pack` / `unpack`, which read the same layouts' field offsets, so
the two sides cannot drift apart.
"""

from __future__ import annotations

import dataclasses

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, enum

from hw.config import BEAT_BYTES, BLOCK_ALIGN, INT32_BITS, SenseConfig

__all__ = ["weight_op_layout", "ifm_layout", "ifm_word_layout", "ifm_line_layout", "ifm_taps_layout",
           "weight_entry_layout",
           "weight_word_layout", "param_layout", "layer_layout", "acc_row_layout",
           "ofm_row_layout", "pack", "unpack", "DIM_BITS", "CHANNEL_BITS", "KERNEL_BITS",
           "param_entry_layout", "image_header_layout", "layer_descriptor_layout", "leaf_fields",
           "record_bytes", "pack_array", "unpack_array", "BEAT_BYTES", "BLOCK_ALIGN", "LayerKind",
           "LayerFlags", "LayerHints", "FLAGS_KNOWN", "flag_set", "LayerDescriptor", "DESCRIPTOR_BYTES", "KINDS_RUN", "POOL_KINDS",
           "ADD_EXEC_FIELDS", "CONCAT_EXEC_FIELDS", "BAND_EXEC_FIELDS", "POOL_EXEC_FIELDS",
           "MAX_SHIFT",
           "graph_layout"]

DIM_BITS = 12      # feature-map height / width and channel groups: up to 4095
CHANNEL_BITS = 16  # output channels of a layer (bounded further by config.max_channels)
KERNEL_BITS = 4    # kernel size, stride and padding: up to 15


def weight_op_layout(config: SenseConfig) -> data.StructLayout:
    """One weight operation flowing along a PE row, one per cycle.

    value: the int8 weight (0 in a bubble);
    pos:   its position inside the group of M IFM values (log2 M bits; absent in the dense
           baseline, where each column carries a single IFM value);
    first: this operation starts a new output (the accumulator loads instead of adding);
    last:  this operation completes the output (the PE signals `done` with the sum).
    """
    fields = {"value": signed(config.data_width)}
    if config.pos_width:
        fields["pos"] = unsigned(config.pos_width)
    fields["first"] = unsigned(1)
    fields["last"] = unsigned(1)
    return data.StructLayout(fields)


def ifm_layout(config: SenseConfig) -> data.ArrayLayout:
    """The IFM values flowing down one PE column per cycle: the M values of one group (sparse),
    or one value (dense baseline)."""
    return data.ArrayLayout(signed(config.data_width), config.lanes)


def ifm_word_layout(config: SenseConfig) -> data.ArrayLayout:
    """One IFM buffer word: the M int8 channels of one channel group at one pixel."""
    return data.ArrayLayout(signed(config.data_width), config.group)


def ifm_line_layout(config: SenseConfig) -> data.ArrayLayout:
    """One IFM bank line: the 16 / M words (channel groups) of one 128-bit AXI beat."""
    return data.ArrayLayout(ifm_word_layout(config), config.ifm_words_per_line)


def ifm_taps_layout(config: SenseConfig) -> data.ArrayLayout:
    """The pool pass's read: one IFM line of each of `pool_taps` consecutive pixels."""
    return data.ArrayLayout(ifm_line_layout(config), config.pool_taps)


def weight_entry_layout(config: SenseConfig) -> data.StructLayout:
    """One stored weight of one row: int8 value and its position in the group (sparse only)."""
    fields = {"value": signed(config.data_width)}
    if config.pos_width:
        fields["pos"] = unsigned(config.pos_width)
    return data.StructLayout(fields)


def weight_word_layout(config: SenseConfig) -> data.ArrayLayout:
    """One weight buffer word: one slot for every row (row 0 in the low bits)."""
    return data.ArrayLayout(weight_entry_layout(config), config.rows)


def param_layout(config: SenseConfig) -> data.StructLayout:
    """Per-output-channel parameters: int32 bias and requantization mult (u16) and shift (1..47)."""
    return data.StructLayout({
        "bias": signed(INT32_BITS),
        "mult": unsigned(16),
        "shift": unsigned(6),
    })


# -- the memory image (SPEC section 5; bytes documented in docs/memory-image.md) -----------------



class LayerKind(enum.Enum, shape=8):
    """A layer descriptor's `kind` (docs/memory-image.md; SPEC section 8 for the whole-network
    kinds). Today's gateware runs every kind (a CONCAT moves no data: its producers write
    channel ranges of its tensor)."""
    CONV = 0
    FC = 1            # a convolution whose kernel covers its input
    ADD = 2           # residual add of two tensors (graph.add_mult_a/b, add_shift)
    MAXPOOL = 3       # pooling window on its own (pool_* fields and graph.pool_*)
    AVGPOOL = 4
    GAP = 5           # global average pooling
    CONCAT = 6        # moves no data: names the tensor its producers wrote channel ranges of


#: The kinds today's gateware runs.
KINDS_RUN = (LayerKind.CONV, LayerKind.FC, LayerKind.ADD, LayerKind.MAXPOOL, LayerKind.AVGPOOL,
             LayerKind.GAP, LayerKind.CONCAT)
#: The pooling layer kinds (values): the pool pass runs them on their input.
POOL_KINDS = (LayerKind.MAXPOOL.value, LayerKind.AVGPOOL.value, LayerKind.GAP.value)
#: The graph.exec fields an ADD layer sets (every other exec field of a layer this gateware
#: runs is zero).
ADD_EXEC_FIELDS = ("in2_offset", "add_shift", "add_mult_a", "add_mult_b")
#: The graph.exec fields a CONV / FC layer may set: the channel range of a concat's tensor it
#: writes.
CONCAT_EXEC_FIELDS = ("out_c_offset", "out_c_total")
#: A pooling layer's window fields beyond the square ones (`pool_kernel`, ...: height, top).
POOL_EXEC_FIELDS = ("pool_kernel_w", "pool_stride_w", "pool_pad_b", "pool_pad_l", "pool_pad_r",
                    "pool_dilation", "pool_scale", "pool_band_rows")
#: Fields of a conv / FC layer run in bands and input-channel blocks (`k_block` only at its
#: plain value: all k tiles in one block).
BAND_EXEC_FIELDS = ("band_rows", "k_block", "c_blocks", "pool_band_rows", "psum_offset",
                    "c_block_groups")
#: The largest requantization shift (parameter entries, ADD layers); the smallest is 1.
MAX_SHIFT = 47


class LayerFlags(enum.Flag, shape=8):
    """A layer descriptor's `flags` bits (docs/memory-image.md)."""
    RELU = 1
    POOL = 2          # max-pool after requantization (pool_kernel, pool_stride, pool_pad)
    IFM_STATIONARY = 4  # tile loop order: pixel tile outer (else k tile outer)
    COUNT_PAD = 8       # average pooling: the divisor counts the explicit padding
    CEIL = 16           # pooling window: ceil_mode (output size rounded up)
    # The fused residual add (issue 15): a CONV writes add(its output, the tensor at
    # exec.in2_offset) to its output, with the ADD fields; the ADD it replaces keeps its
    # descriptor with this flag and moves no data.
    FUSE_ADD = 32
    ADD_RELU = 64       # a conv with FUSE_ADD: ReLU after the add (RELU stays the conv's own)
    # The IFM store still holds this layer's input as the layer before left it (same range,
    # same placement, one band each): the load is skipped if the gateware's record of its
    # last load agrees (`host.buffers.store_key`).
    INPUT_KEPT = 128


class LayerHints(enum.Flag, shape=8):
    """A descriptor's `hints` bits: how the packer asks the hardware to run a layer where the
    hardware can; hardware that cannot ignores them and computes the same result
    (docs/memory-image.md)."""
    # The weight port reads the even k tiles, the read channel the odd ones (hardware with
    # `weight_port`, for a CONV / FC in one band without input-channel blocks or a fused add,
    # `host.perf.split_eligible`).
    SPLIT_WEIGHTS = 1
    # A band's input (a conv's, at stride 1 with OW <= W, its weights all in the buffer, no
    # gather, join, fused add or input-channel blocks) and a pool band's map, of whole-beat
    # pixels, load in blocks of B / 2 pixels alternately on the read channel and the weight port
    # (hardware with `weight_port`, `host.perf.pair_eligible`).
    PAIR_LOAD = 2


#: Every flag bit the hardware knows; a descriptor with another bit set is refused.
FLAGS_KNOWN = (LayerFlags.RELU | LayerFlags.POOL | LayerFlags.IFM_STATIONARY
               | LayerFlags.COUNT_PAD | LayerFlags.CEIL | LayerFlags.FUSE_ADD
               | LayerFlags.ADD_RELU | LayerFlags.INPUT_KEPT)


def flag_set(flags, flag: LayerFlags):
    """Gateware: whether `flag` is set in a descriptor's `flags` field (a 1-bit value)."""
    return (flags.as_value() & flag.value) != 0


def param_entry_layout(config: SenseConfig) -> data.StructLayout:
    """One output channel's entry of a parameter block: one AXI beat. The hardware keeps
    `param`; `w_scale` (float32 bits) is the weight scale, kept for the host."""
    inner = param_layout(config)
    return data.StructLayout({
        "param": inner,
        "reserved0": unsigned(64 - inner.size),
        "w_scale": unsigned(32),
        "reserved1": unsigned(32),
    })


def image_header_layout() -> data.StructLayout:
    """The image header: 64 bytes. `crc32` covers every byte after the header (SPEC section 5);
    `header_crc32` covers the header's first 56 bytes, so no header field goes unchecked."""
    return data.StructLayout({
        "magic": unsigned(32),
        "version": unsigned(16),
        "header_size": unsigned(16),
        "rows": unsigned(8),
        "cols": unsigned(8),
        "group": unsigned(8),
        "flags": unsigned(8),           # bit 0: sparse
        "ifm_kib": unsigned(16),
        "weight_kib": unsigned(16),
        "ofm_kib": unsigned(16),
        "layer_count": unsigned(16),
        "max_channels_log2": unsigned(8),
        "host_ops": unsigned(8),        # bit 0: softmax after the last layer
        "input_c": unsigned(16),
        "input_h": unsigned(16),
        "input_w": unsigned(16),
        "table_offset": unsigned(32),
        "table_size": unsigned(32),
        "data_offset": unsigned(32),
        "data_size": unsigned(32),
        "image_size": unsigned(32),
        "act_size": unsigned(32),       # bytes of activation memory a run needs
        "input_scale": unsigned(32),    # float32 bits
        "header_crc32": unsigned(32),
        "crc32": unsigned(32),
    })


def graph_layout() -> data.StructLayout:
    """The second half of a descriptor: what whole networks add (SPEC section 8). `exec` fields
    change what the hardware does; all zero means a plain layer (one band, every k tile in one
    weight block, one input-channel block, a whole output tensor of its own), which is all
    today's gateware runs (it refuses anything else with UNSUPPORTED). `links` is for the host
    (the graph's wiring, shown by `sense inspect`); the hardware ignores it."""
    return data.StructLayout({
        "exec": data.StructLayout({
            "in2_offset": unsigned(32),     # ADD: the second input's activation offset
            "out_c_offset": unsigned(16),   # first channel written in the output tensor (concat)
            "out_c_total": unsigned(16),    # channels per pixel of the output tensor (0: own)
            "band_rows": unsigned(16),      # output rows per band (0: one band)
            "k_block": unsigned(16),        # k tiles per weight block (0: all of them)
            "c_blocks": unsigned(8),        # input-channel blocks (0: one)
            "pool_kernel_w": unsigned(8),   # pooling layers: window width, stride, padding,
            "pool_stride_w": unsigned(8),   # dilations (0: as the square window fields)
            "pool_pad_b": unsigned(8),
            "pool_pad_l": unsigned(8),
            "pool_pad_r": unsigned(8),
            "pool_dilation": unsigned(8),   # (dh - 1) | (dw - 1) << 4
            "add_shift": unsigned(8),       # ADD: shared shift
            "add_mult_a": unsigned(16),     # ADD: multipliers of the two inputs
            "add_mult_b": unsigned(16),
            "pool_scale": unsigned(32),     # AVGPOOL / GAP: input / output scale (float32 bits)
            "pool_band_rows": unsigned(16),  # the pool pass: pooled rows per band (0: one band)
            "psum_offset": unsigned(32),    # input-channel blocks: int32 partial-sum scratch
            "c_block_groups": unsigned(16),  # input-channel blocks: channel groups per block
        }),
        "links": data.StructLayout({
            "in_layer": unsigned(16),       # producer of the input: layer index + 1, 0 = image
            "in2_layer": unsigned(16),      # ADD: producer of the second input
            "tensor_channels": unsigned(16),  # channels of the tensor this layer writes
            "concat": unsigned(16),         # the concat (index + 1) whose tensor it writes into
            # AVGPOOL: the divisor's count for every window (0: each window's own); the
            # parameter block's entries already divide by it (a batch's stacked GAP, host.batch)
            "pool_count": unsigned(16),
            # CONV: a batch's images stacked without separator rows (host.batch): input and
            # output rows per image (each image padded on its own; 0: the map is one image),
            # and band_rows mod image_out_rows (the step of a band's first row in its image)
            "image_rows": unsigned(16),
            "image_out_rows": unsigned(16),
            "image_step": unsigned(16),
            "reserved": unsigned(128),
        }),
    })


def layer_descriptor_layout() -> data.StructLayout:
    """One layer's descriptor: 128 bytes (eight AXI beats). Offsets of weight and parameter
    blocks are from the image start; activation offsets are from the activation base."""
    return data.StructLayout({
        "kind": LayerKind,
        "flags": LayerFlags,
        "in_channels": unsigned(16),
        "in_groups": unsigned(16),
        "in_h": unsigned(16),
        "in_w": unsigned(16),
        "out_channels": unsigned(16),
        "out_h": unsigned(16),          # convolution output, before max-pool
        "out_w": unsigned(16),
        "kernel_h": unsigned(8),
        "kernel_w": unsigned(8),
        "stride": unsigned(8),
        "pad": unsigned(8),
        "pool_kernel": unsigned(8),
        "pool_stride": unsigned(8),
        "pool_pad": unsigned(8),
        "hints": LayerHints,
        "k_tiles": unsigned(16),
        "p_tiles": unsigned(16),
        "weight_offset": unsigned(32),
        "weight_size": unsigned(32),
        "param_offset": unsigned(32),
        "param_size": unsigned(32),
        "in_offset": unsigned(32),
        "out_offset": unsigned(32),
        "out_scale": unsigned(32),      # float32 bits
        # A batch's images stacked in one map (host.batch): output pixels per image slot (at
        # least cols; 0: no separators) and the first of them that the image owns; the rest of
        # every slot (separator rows) is written as zeros.
        "sep_slot": unsigned(16),
        "sep_valid": unsigned(16),
        # An input gather (a 1x1 convolution with stride s, host.image `gather_step`): the
        # descriptor describes a stride-1 layer over every s-th pixel of every s-th row of the
        # input in DRAM; in_step is s (0: none), in_pitch the DRAM bytes / 16 from one gathered
        # row to the next (s input rows).
        "in_step": unsigned(8),
        "in_pitch": unsigned(16),
        # A joined conv (host.join): the input pixel is in_split beats from the tensor at
        # in_offset (a plain range), then the rest from the tensor at exec.in2_offset, read at
        # every in_step-th pixel (1: each), in_pitch beats a row, as a gather (0: no join).
        "in_split": unsigned(8),
        "graph": graph_layout(),
    })


#: Bytes of one layer descriptor in the image (eight AXI beats).
DESCRIPTOR_BYTES = 128


class _Descriptor:
    """Methods of `LayerDescriptor` (its fields come from `layer_descriptor_layout`)."""

    def to_bytes(self) -> bytes:
        """The descriptor's bytes, as the hardware parses them (every field range-checked)."""
        layout = layer_descriptor_layout()
        values = _zeros(layout)
        for name, value in dataclasses.asdict(self).items():
            if name != "graph":
                values[name] = int(value)
        for dotted, value in self.graph.items():
            *path, leaf = dotted.split(".")
            node = values["graph"]
            for key in path:
                node = node[key]
            if leaf not in node:
                raise ValueError(f"descriptor has no graph field {dotted!r}")
            node[leaf] = int(value)
        return pack(layout, values).to_bytes(DESCRIPTOR_BYTES, "little")

    @classmethod
    def from_bytes(cls, raw: bytes):
        """Parse the bytes; `kind` and `flags` stay integers (check them with `layer_kind` and
        `unknown_flags`), so a corrupt image can be reported rather than fail to parse."""
        values = unpack(layer_descriptor_layout(), int.from_bytes(raw[:DESCRIPTOR_BYTES], "little"))
        graph = {f"{part}.{name}": v for part, fields in values["graph"].items()
                 for name, v in fields.items() if name != "reserved" and v}
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)
                      if f.name != "graph"}, graph=graph)

    def g(self, name: str) -> int:
        """A graph field by its dotted name ("exec.band_rows"), 0 when unset."""
        return int(self.graph.get(name, 0))

    @property
    def plain(self) -> bool:
        """Runs on today's gateware: a CONV/FC kind with no graph.exec field but a concat's
        channel range (`CONCAT_EXEC_FIELDS`, not with a fused max-pool), bands and input-channel
        blocks (`BAND_EXEC_FIELDS`, no weight blocks), a joined conv's second input
        (``exec.in2_offset`` with ``in_split``), an ADD with only its own
        (`ADD_EXEC_FIELDS`), a MAXPOOL, AVGPOOL or GAP with an undilated window (a MAXPOOL
        without COUNT_PAD), or a CONCAT (moves no data)."""
        kind = int(self.kind)
        if kind == LayerKind.ADD.value:
            allowed = {f"exec.{n}" for n in ADD_EXEC_FIELDS}
        elif kind in (LayerKind.CONV.value, LayerKind.FC.value):
            allowed = {f"exec.{n}" for n in BAND_EXEC_FIELDS}
            if not self.pool:
                allowed |= {f"exec.{n}" for n in CONCAT_EXEC_FIELDS}
            if self.has(LayerFlags.FUSE_ADD):
                # a fused add: its fields, not with a max-pool, a concat's range or blocks
                if self.pool or self.g("exec.out_c_total") or self.g("exec.c_blocks") > 1:
                    return False
                allowed |= {f"exec.{n}" for n in ADD_EXEC_FIELDS}
            elif self.in_split:
                allowed.add("exec.in2_offset")      # a joined conv's second input
            if self.g("exec.k_block") and self.g("exec.k_block") < self.k_tiles:
                return False
        elif kind in POOL_KINDS:
            allowed = {f"exec.{n}" for n in POOL_EXEC_FIELDS}
            if self.g("exec.pool_dilation") or (kind == LayerKind.MAXPOOL.value
                                                and self.has(LayerFlags.COUNT_PAD)):
                return False
        else:
            allowed = set()
        return (kind in [k.value for k in KINDS_RUN]
                and not any(v for k, v in self.graph.items()
                            if k.startswith("exec.") and k not in allowed))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def with_image_step(self):
        """Stacked images without separator rows (``links.image_out_rows``): the descriptor
        with ``links.image_step``, the band step in an image's output rows (band_rows mod
        image_out_rows), set from its bands; the descriptor itself otherwise."""
        rows = self.g("links.image_out_rows")
        if not rows:
            return self
        graph = {k: v for k, v in self.graph.items() if k != "links.image_step"}
        step = self.g("exec.band_rows") % rows
        return self.replace(graph={**graph, **({"links.image_step": step} if step else {})})

    @property
    def layer_kind(self) -> LayerKind:
        return LayerKind(int(self.kind))

    @property
    def unknown_flags(self) -> int:
        return int(self.flags) & ~FLAGS_KNOWN.value

    def has(self, flag: LayerFlags) -> bool:
        return bool(int(self.flags) & flag.value)

    @property
    def relu(self) -> bool:
        return self.has(LayerFlags.RELU)

    @property
    def pool(self) -> bool:
        return self.has(LayerFlags.POOL)

    @property
    def ifm_stationary(self) -> bool:
        return self.has(LayerFlags.IFM_STATIONARY)


#: One layer's descriptor as the host sees it: the fields of `layer_descriptor_layout` (the
#: reserved ones left out), all defaulting to 0. The planner and packer build it, the image
#: holds its bytes (`to_bytes`), the driver, the performance model and `sense inspect` read it
#: back (`from_bytes`), and the gateware parses the same bytes with the same layout.
LayerDescriptor = dataclasses.make_dataclass(
    "LayerDescriptor",
    [(name, int, dataclasses.field(default=0)) for name, _ in layer_descriptor_layout()
     if not name.startswith("reserved") and name != "graph"]
    + [("graph", dict, dataclasses.field(default_factory=dict))],
    bases=(_Descriptor,), frozen=True)
LayerDescriptor.__module__ = __name__


def _zeros(layout) -> dict:
    """A nested dict of zeros for every field of a StructLayout."""
    return {key: _zeros(field.shape) if isinstance(field.shape, data.Layout) else 0
            for key, field in _fields(layout)}


def leaf_fields(layout, prefix=()):
    """(path, bit offset, width, signed) of every leaf field of a (nested) layout."""
    for key, field in _fields(layout):
        if isinstance(field.shape, data.Layout):
            for path, off, width, sgn in leaf_fields(field.shape, prefix + (key,)):
                yield path, field.offset + off, width, sgn
        else:
            yield prefix + (key,), field.offset, field.width, Shape.cast(field.shape).signed


def record_bytes(layout, align=1) -> int:
    """Bytes one record of `layout` occupies, rounded up to a multiple of `align`."""
    nbytes = -(-layout.size // 8)
    return -(-nbytes // align) * align


def pack_array(layout, leaves: dict, count: int, align: int = 1, check: bool = True):
    """Vectorised `pack`: `leaves` maps leaf paths (see `leaf_fields`) to integer arrays of
    `count` records (missing leaves are 0). Returns a (count, record_bytes) uint8 array, each
    record little-endian as `pack(...).to_bytes(...)` would give it. `check=False` skips the range
    checks for callers whose values are in range by construction."""
    import numpy as np

    nbytes = record_bytes(layout, align)
    lanes = np.zeros((count, -(-nbytes // 8)), np.uint64)
    for path, off, width, sgn in leaf_fields(layout):
        if path not in leaves:
            continue
        v = np.asarray(leaves[path]).reshape(count)
        if check and v.size:
            lo = -(1 << (width - 1)) if sgn else 0
            hi = (1 << (width - 1)) - 1 if sgn else (1 << width) - 1
            if v.min() < lo or v.max() > hi:
                raise ValueError(f"field {'.'.join(map(str, path))} must lie in {lo}..{hi}, "
                                 f"not {v.min()}..{v.max()}")
        u = np.asarray(v, np.int64).view(np.uint64) & np.uint64((1 << width) - 1)
        lane, shift = divmod(off, 64)
        lanes[:, lane] |= u << np.uint64(shift)
        if shift + width > 64:
            lanes[:, lane + 1] |= u >> np.uint64(64 - shift)
    if lanes.dtype.byteorder == ">":  # the image is little-endian whatever the host is
        lanes = lanes.byteswap()
    return lanes.view(np.uint8).reshape(count, -1)[:, :nbytes]


def unpack_array(layout, records) -> dict:
    """Inverse of `pack_array`: leaf path -> int64 array (signed fields sign-extended)."""
    import numpy as np

    bits = np.unpackbits(np.asarray(records, np.uint8), axis=1, bitorder="little")
    out = {}
    for path, off, width, sgn in leaf_fields(layout):
        weights = np.int64(1) << np.arange(width, dtype=np.int64)
        v = bits[:, off:off + width].astype(np.int64) @ weights
        if sgn:
            v = np.where(v >= 1 << (width - 1), v - (1 << width), v)
        out[path] = v
    return out


def layer_layout(config: SenseConfig) -> data.StructLayout:
    """What the core needs to know of one convolution layer (FC = 1x1 conv on a 1x1 map).

    in_groups is the input channel count padded to a multiple of M, divided by M. Stride and
    padding are the same in both directions.
    """
    return data.StructLayout({
        "in_groups": unsigned(DIM_BITS),
        "in_h": unsigned(DIM_BITS),
        "in_w": unsigned(DIM_BITS),
        "out_h": unsigned(DIM_BITS),
        "out_w": unsigned(DIM_BITS),
        "out_channels": unsigned(CHANNEL_BITS),
        "kernel_h": unsigned(KERNEL_BITS),
        "kernel_w": unsigned(KERNEL_BITS),
        "stride": unsigned(KERNEL_BITS),
        "pad": unsigned(KERNEL_BITS),
        "pad_top": unsigned(KERNEL_BITS),  # padding rows above the input (a band: 0 but first)
        "relu": unsigned(1),
        "ifm_stationary": unsigned(1),   # tile order: 0 k tile outer, 1 pixel tile outer
        # Input-channel blocks: the groups cg0 .. in_groups - 1 of the stored input are this
        # run's (the weights are the block's); psum_in: each drained row adds a row of int32
        # partial sums (`Core.psum_in`); psum_out: rows leave as int32 partial sums on
        # `Core.psum_out` instead of being requantized.
        "cg0": unsigned(DIM_BITS),
        "psum_in": unsigned(1),
        "psum_out": unsigned(1),
        # A batch's images stacked in one map without separator rows (host.batch): each image
        # has img_h input and img_oh output rows and its own padding; oyl0 is the run's first
        # output row within its image (0 / 0 / 0: the map is one image).
        "img_h": unsigned(DIM_BITS),
        "img_oh": unsigned(DIM_BITS),
        "oyl0": unsigned(DIM_BITS),
    })


def _row_header(config):
    return {
        "channel": unsigned(CHANNEL_BITS),
        "p0": unsigned(2 * DIM_BITS),       # the tile's first output pixel (raster index)
        "count": unsigned(config.cols.bit_length()),
        "k0": unsigned(CHANNEL_BITS + 1),   # first output channel of the row's k tile
        "last": unsigned(1),                # the tile's last row (channel k0)
    }


def psum_row_layout(config: SenseConfig) -> data.ArrayLayout:
    """One row of int32 partial sums (cols accumulators of one output channel of one pixel
    tile, sign-extended from the grid's `acc_width`): an input-channel block's drained row, as
    it goes to DRAM and comes back."""
    return data.ArrayLayout(signed(INT32_BITS), config.cols)


def psum_row_bytes(config: SenseConfig) -> int:
    """Bytes of one partial-sum row in DRAM: whole beats (the rows of a band, in drain order,
    are consecutive; the bytes past the cols accumulators are padding)."""
    return -(-psum_row_layout(config).size // (8 * BEAT_BYTES)) * BEAT_BYTES


def acc_row_layout(config: SenseConfig) -> data.StructLayout:
    """One drained row of the grid: output channel, pixel tile, valid pixels, cols accumulators
    (`acc_width` bits each)."""
    return data.StructLayout({**_row_header(config),
                              "acc": data.ArrayLayout(signed(config.acc_width), config.cols)})


def ofm_row_layout(config: SenseConfig) -> data.StructLayout:
    """One output row: output channel, pixel tile, valid pixels (from column 0), cols int8."""
    return data.StructLayout({**_row_header(config),
                              "data": data.ArrayLayout(signed(config.data_width), config.cols)})


def _fields(layout):
    if isinstance(layout, data.StructLayout):
        return [(name, field) for name, field in layout]
    if isinstance(layout, data.ArrayLayout):
        return [(i, layout[i]) for i in range(layout.length)]
    raise TypeError(f"layout must be a StructLayout or ArrayLayout, not {layout!r}")


def pack(layout, values) -> int:
    """Pack a dict (StructLayout) or sequence (ArrayLayout) of ints into the layout's bits.

    Nested layouts take nested dicts / sequences. Signed fields take negative values; every value
    is range-checked against its field.
    """
    bits = 0
    for key, field in _fields(layout):
        if isinstance(field.shape, data.Layout):
            bits |= pack(field.shape, values[key]) << field.offset
            continue
        value = int(values[key])
        shape = Shape.cast(field.shape)
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
        if not lo <= value <= hi:
            raise ValueError(f"field {key!r} must lie in {lo}..{hi}, not {value}")
        bits |= (value & ((1 << field.width) - 1)) << field.offset
    return bits


def unpack(layout, bits: int):
    """Inverse of `pack`: a dict (StructLayout) or list (ArrayLayout) of ints, nested likewise."""
    out = {}
    for key, field in _fields(layout):
        raw = (int(bits) >> field.offset) & ((1 << field.width) - 1)
        if isinstance(field.shape, data.Layout):
            out[key] = unpack(field.shape, raw)
            continue
        if Shape.cast(field.shape).signed and raw >> (field.width - 1):
            raw -= 1 << field.width
        out[key] = raw
    if isinstance(layout, data.ArrayLayout):
        return [out[i] for i in range(layout.length)]
    return out
