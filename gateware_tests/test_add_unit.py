"""The residual add unit (hw.soc.add_unit) in the Amaranth simulator against
host.golden.residual_add: edge values and random lanes, every shift class, ReLU on and off,
with back-pressure on its output and gaps in its input. (Whole ADD layers through the
accelerator are in test_system.py.)"""

import numpy as np
import pytest

from host.golden import residual_add
from hw.config import BEAT_BYTES
from hw.soc.add_unit import CHUNK_BEATS, AddUnit
from sim.amaranth_sim import run_testbench


def _beats(x):
    return [int.from_bytes(x[i:i + BEAT_BYTES].astype(np.int8).tobytes(), "little")
            for i in range(0, len(x), BEAT_BYTES)]


def _run_chunk(a, b, mult_a, mult_b, shift, relu, rng, stall=0.0):
    """Load `a`, stream `b`, collect the output beats and the write command."""
    dut = AddUnit()
    out, cmds = [], []

    async def bench(ctx):
        ctx.set(dut.mult_a, mult_a)
        ctx.set(dut.mult_b, mult_b)
        ctx.set(dut.shift, shift)
        ctx.set(dut.relu, relu)
        for i, beat in enumerate(_beats(a)):
            ctx.set(dut.a_en, 1)
            ctx.set(dut.a_addr, i)
            ctx.set(dut.a_data, beat)
            await ctx.tick()
        ctx.set(dut.a_en, 0)
        ctx.set(dut.start, 1)
        ctx.set(dut.base, 0x1230)
        ctx.set(dut.length, len(a))
        await ctx.tick()
        ctx.set(dut.start, 0)
        pending = _beats(b)
        for _ in range(20 * len(pending) + 50):
            ctx.set(dut.data.ready, int(rng.random() >= stall))
            ctx.set(dut.cmd.ready, 1)
            send = bool(pending) and rng.random() >= stall
            ctx.set(dut.b.valid, int(send))
            if send:
                ctx.set(dut.b.payload, pending[0])
            b_taken = send and ctx.get(dut.b.ready)
            if ctx.get(dut.cmd.valid):
                cmds.append((ctx.get(dut.cmd.payload.addr), ctx.get(dut.cmd.payload.length)))
            if ctx.get(dut.data.valid) and ctx.get(dut.data.ready):
                out.append(ctx.get(dut.data.payload))
            await ctx.tick()
            if b_taken:
                pending.pop(0)
            if not pending and not ctx.get(dut.busy):
                break
        assert not ctx.get(dut.busy), "the unit is still busy after its chunk"

    run_testbench(dut, bench)
    got = np.frombuffer(b"".join(v.to_bytes(BEAT_BYTES, "little") for v in out), np.int8)
    return got[:len(a)], cmds


@pytest.mark.parametrize("mult_a,mult_b,shift,relu,stall", [
    (65535, 65535, 16, False, 0.0),     # both multipliers at their maximum: saturation
    (40000, 13000, 16, True, 0.3),      # typical ratios, ReLU, back-pressure and gaps
    (1, 1, 1, False, 0.0),              # the smallest shift: a + b, rounded half up
    (300, 65535, 27, False, 0.2),       # the shift from which every result is 0
    (65535, 1, 47, True, 0.0),          # the largest shift
])
def test_add_unit_matches_the_golden_add(mult_a, mult_b, shift, relu, stall):
    rng = np.random.default_rng(shift)
    n = 3 * BEAT_BYTES
    a = rng.integers(-128, 128, n).astype(np.int8)
    b = rng.integers(-128, 128, n).astype(np.int8)
    a[:4], b[:4] = [-128, 127, -128, 0], [-128, 127, 127, 0]
    got, cmds = _run_chunk(a, b, mult_a, mult_b, shift, relu, rng, stall)
    want = residual_add(a, b, mult_a, mult_b, shift, relu)
    assert (got == want).all(), np.nonzero(got != want)
    assert cmds and set(cmds) == {(0x1230, n)}


def test_add_unit_a_whole_chunk():
    rng = np.random.default_rng(3)
    n = CHUNK_BEATS * BEAT_BYTES
    a = rng.integers(-128, 128, n).astype(np.int8)
    b = rng.integers(-128, 128, n).astype(np.int8)
    got, _ = _run_chunk(a, b, 23000, 31000, 15, False, rng, stall=0.1)
    assert (got == residual_add(a, b, 23000, 31000, 15, False)).all()
