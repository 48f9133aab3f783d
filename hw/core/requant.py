"""Round, shift and saturate to int8: the last step of every requantization (the output stage,
the pool pass, the residual add).

``sat_int8((p + (1 << (shift - 1))) >> shift)`` (arithmetic shift, round half up; no rounding
term for shift 0), with an optional ReLU, of a wide product ``p``. A full barrel shifter of the
wide value costs about six LUTs per bit of it, and the rounding term one adder bit per bit; only
a few result bits and one overflow flag are needed, so this is built as

* the identity ``(p + 2^(s-1)) >> s == ((2p >> s) + 1) >> 1`` (also for s = 0): the rounding
  becomes an increment of a narrow value;
* a window select of ``q = (2p >> s)[0:10]`` (sign-extended past the top), in two steps: a
  byte-granular select of a 17-bit window, then a bit select inside it;
* an overflow test: ``2p >> s`` fits the 10-bit window exactly when every bit of ``2p`` from
  ``s + 9`` up equals its sign bit. The mask of those bits depends on the shift only;
* ``(q + 1) >> 1`` (at most 9 bits) saturated to int8.

The shift is the same for every lane of a row or beat (one channel's, or one layer's), so its
clamp and its mask are made once (`ShiftControls`) and shared by all lanes.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, signed

__all__ = ["ShiftControls", "round_shift_saturate"]

#: Bits of the window taken from 2p >> s: the rounded result needs 9, plus the rounding bit.
_WINDOW = 10


class ShiftControls:
    """The shift of one row for products of ``width`` bits, clamped to ``width`` (a larger
    shift leaves only sign bits of 2p, and the result 0), and the mask of the bits of 2p that
    must equal its sign for 2p >> shift to fit the window (bit i set when i >= shift + 9).
    Combinational, built in ``m``; with ``en`` registered instead (taken from ``shift`` when
    ``en`` is high), so that the lanes' select and overflow test start from registers: the
    caller gives the shift one stage early (the output stage) or holds it (a layer's shift)."""

    def __init__(self, m, shift, width: int, name: str = "rq", en=None):
        self.width = width
        self.shift = Signal(range(width + 1), name=f"{name}_shift")
        self.mask = Signal(width + 1, name=f"{name}_mask")
        clamped = Mux(shift > width, width, shift)
        mask = Cat(*(clamped + _WINDOW - 1 <= i for i in range(width + 1)))
        if en is None:
            m.d.comb += [self.shift.eq(clamped), self.mask.eq(mask)]
        else:
            with m.If(en):
                m.d.sync += [self.shift.eq(clamped), self.mask.eq(mask)]


def round_shift_saturate(m, value, controls: ShiftControls, relu, name: str = "rq", en=None):
    """int8 ``relu?(sat_int8((value + (1 << (shift - 1))) >> shift))`` of the signed ``value``
    (``controls.width`` bits, no rounding term added) as a new signal; ``relu`` may be a
    constant or a signal. With ``en``, a pipeline stage inside it: the window, the overflow
    flag and the sign are registered (taken when ``en`` is high), and the rounding and
    saturation work on those registers, so the result comes a cycle later (``relu`` must hold
    still over that cycle: a layer's flag)."""
    width = controls.width
    assert len(value) == width, (len(value), width)
    sign = value[width - 1]
    twice = Cat(Const(0, 1), value)                      # 2p, width + 1 bits
    span = _WINDOW + 7
    ext = Cat(twice, sign.replicate(span))               # bits past the top are the sign
    coarse = Signal(span, name=f"{name}_coarse")
    window = Signal(signed(_WINDOW), name=f"{name}_window")
    sh = controls.shift
    with m.Switch(sh[3:]):
        for k in range(width // 8 + 1):
            with m.Case(k):
                m.d.comb += coarse.eq(ext[8 * k:8 * k + span])
    with m.Switch(sh[:3]):
        for k in range(8):
            with m.Case(k):
                m.d.comb += window.eq(coarse[k:k + _WINDOW])
    over = Signal(name=f"{name}_over")
    m.d.comb += over.eq(((twice ^ sign.replicate(width + 1)) & controls.mask).any())
    if en is not None:
        staged = (Signal(signed(_WINDOW), name=f"{name}_window_q"),
                  Signal(name=f"{name}_over_q"), Signal(name=f"{name}_sign_q"))
        with m.If(en):
            m.d.sync += [staged[0].eq(window), staged[1].eq(over), staged[2].eq(sign)]
        window, over, sign = staged
    rounded = Signal(signed(_WINDOW), name=f"{name}_rounded")   # (q + 1) >> 1: -256 .. 256
    m.d.comb += rounded.eq((window + 1) >> 1)
    out = Signal(signed(8), name=f"{name}_out")
    relu = Const(relu, 1) if isinstance(relu, (bool, int)) else relu
    with m.If(sign & relu):
        m.d.comb += out.eq(0)
    with m.Elif(over | (rounded > 127) | (rounded < -128)):
        m.d.comb += out.eq(Mux(sign, -128, 127))
    with m.Else():
        m.d.comb += out.eq(rounded[:8])
    return out
