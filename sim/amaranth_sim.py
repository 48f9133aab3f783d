"""The Amaranth simulator for the small controllers that have contracts of their own (the pixel
walker, the weight loader, the layer check, the add unit): no Verilog, a second each."""

from amaranth.sim import Simulator

__all__ = ["run_testbench"]


def run_testbench(dut, bench, period: float = 1e-8) -> None:
    """Run the async testbench `bench(ctx)` against `dut` on a clock of `period` seconds."""
    sim = Simulator(dut)
    sim.add_clock(period)
    sim.add_testbench(bench)
    sim.run()
