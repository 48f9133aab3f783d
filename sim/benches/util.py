"""Helpers shared by the cocotb benches: clock/reset, random int8 tensors with edge values."""

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge


async def start_clock_and_reset(dut, cycles=3, period_ns=10):
    """Start `dut.clk`, hold `dut.rst` for `cycles` cycles, return on a falling edge."""
    Clock(dut.clk, period_ns, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


def random_int8(rng, shape, extremes=0.1, zeros=0.0):
    """Uniform int8 with a fraction of -128/127 and a fraction of zeros."""
    x = rng.integers(-128, 128, size=shape).astype(np.int16)
    edge = rng.random(shape) < extremes
    x[edge] = rng.choice(np.array([-128, 127]), size=int(edge.sum()))
    x[rng.random(shape) < zeros] = 0
    return x.astype(np.int8)
