"""hw.core.requant (the shared round-shift-saturate of the output stage, the pool pass and the add
unit) in the Amaranth simulator against Python's arithmetic (round half up, as host.golden): every shift from 0 to past
the value's width, values at and around every saturation edge, and random values, ReLU on and
off."""

import random

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.core.requant import ShiftControls, round_shift_saturate
from sim.amaranth_sim import run_testbench


class _Lanes(wiring.Component):
    """Two lanes sharing one ShiftControls, as the real users do."""

    def __init__(self, width):
        self._width = width
        super().__init__({"a": In(signed(width)), "b": In(signed(width)),
                          "shift": In(unsigned(6)), "relu": In(1),
                          "ya": Out(signed(8)), "yb": Out(signed(8))})

    def elaborate(self, platform):
        m = Module()
        ctl = ShiftControls(m, self.shift, self._width)
        m.d.comb += [self.ya.eq(round_shift_saturate(m, self.a, ctl, self.relu, name="a")),
                     self.yb.eq(round_shift_saturate(m, self.b, ctl, self.relu, name="b"))]
        # a clock domain for the simulator's testbench ticks
        dummy = Signal()
        m.d.sync += dummy.eq(~dummy)
        return m


def _expect(value, shift, relu):
    y = max(-128, min(127, (value + ((1 << shift) >> 1)) >> shift))
    return max(0, y) if relu else y


def _cases(width, rng):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    for shift in range(64):
        edges = [lo, hi, 0, -1, 1]
        for edge in (127, 128, -128, -129):
            base = edge << shift if shift < width + 1 else 0
            edges += [base - 1, base, base + 1, base + (1 << max(shift, 1)) - 1]
        edges += [rng.randint(lo, hi) for _ in range(6)]
        edges += [rng.randint(-(1 << min(width - 1, shift + 9)), (1 << min(width - 1, shift + 9)))
                  for _ in range(6)]
        for v in edges:
            yield shift, max(lo, min(hi, v))


@pytest.mark.parametrize("width", [26, 29, 40, 41, 48, 49])
def test_shift_saturate_matches_python(width):
    rng = random.Random(width)
    dut = _Lanes(width)
    cases = list(_cases(width, rng))
    bad = []

    async def bench(ctx):
        for i, (shift, v) in enumerate(cases):
            w = cases[(i * 7 + 3) % len(cases)][1]
            relu = i % 3 == 0
            ctx.set(dut.a, v)
            ctx.set(dut.b, w)
            ctx.set(dut.shift, shift)
            ctx.set(dut.relu, relu)
            await ctx.delay(1e-9)
            got = (ctx.get(dut.ya), ctx.get(dut.yb))
            want = (_expect(v, shift, relu), _expect(w, shift, relu))
            if got != want:
                bad.append((v, w, shift, relu, got, want))

    run_testbench(dut, bench)
    assert not bad, f"{len(bad)} of {len(cases)} differ, first: {bad[:3]}"
