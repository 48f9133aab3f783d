"""Packed data shared by gateware and host: one definition, used by both.

The gateware uses these `data.Layout`s for its ports and memories; the host (packer, testbenches)
packs and unpacks integers with `pack` / `unpack`, which read the same layouts' field offsets, so
the two sides cannot drift apart.
"""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from .config import SenseConfig

__all__ = ["weight_op_layout", "ifm_layout", "pack", "unpack"]


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


def _fields(layout):
    if isinstance(layout, data.StructLayout):
        return [(name, field) for name, field in layout]
    if isinstance(layout, data.ArrayLayout):
        return [(i, layout[i]) for i in range(layout.length)]
    raise TypeError(f"layout must be a StructLayout or ArrayLayout, not {layout!r}")


def pack(layout, values) -> int:
    """Pack a dict (StructLayout) or sequence (ArrayLayout) of ints into the layout's bits.

    Signed fields take negative values; every value is range-checked against its field.
    """
    bits = 0
    for key, field in _fields(layout):
        value = int(values[key])
        shape = Shape.cast(field.shape)
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
        if not lo <= value <= hi:
            raise ValueError(f"field {key!r} must lie in {lo}..{hi}, not {value}")
        bits |= (value & ((1 << field.width) - 1)) << field.offset
    return bits


def unpack(layout, bits: int):
    """Inverse of `pack`: a dict (StructLayout) or list (ArrayLayout) of ints."""
    out = {}
    for key, field in _fields(layout):
        raw = (int(bits) >> field.offset) & ((1 << field.width) - 1)
        if Shape.cast(field.shape).signed and raw >> (field.width - 1):
            raw -= 1 << field.width
        out[key] = raw
    if isinstance(layout, data.ArrayLayout):
        return [out[i] for i in range(layout.length)]
    return out
