"""Packed data shared by gateware and host: one definition, used by both.

The gateware uses these `data.Layout`s for its ports and memories; the host (packer, testbenches)
packs and unpacks integers with `pack` / `unpack`, which read the same layouts' field offsets, so
the two sides cannot drift apart.
"""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from .config import SenseConfig

__all__ = ["weight_op_layout", "ifm_layout", "ifm_word_layout", "weight_entry_layout",
           "weight_word_layout", "param_layout", "layer_layout", "acc_row_layout",
           "ofm_row_layout", "pack", "unpack", "DIM_BITS", "CHANNEL_BITS", "KERNEL_BITS"]

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
        "bias": signed(config.acc_width),
        "mult": unsigned(16),
        "shift": unsigned(6),
    })


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
        "relu": unsigned(1),
    })


def _row_header(config):
    return {
        "channel": unsigned(CHANNEL_BITS),
        "tile": unsigned(2 * DIM_BITS),
        "count": unsigned(config.cols.bit_length()),
    }


def acc_row_layout(config: SenseConfig) -> data.StructLayout:
    """One drained row of the grid: output channel, pixel tile, valid pixels, cols accumulators."""
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
