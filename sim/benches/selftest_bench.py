"""cocotb bench for the self-test system (hw.soc.selftest.SelfTest): no driver, no models of memory;
the design runs the network on its own. Reset, wait for ``passed`` or ``failed`` (at most
SENSE_TIMEOUT cycles), pulse ``rerun`` and wait again. Results (SENSE_RESULTS, JSON): per run
the outcome, STATUS's error code and the cycles from reset (or from the rerun pulse)."""

import json
import os

import cocotb
from cocotb.triggers import FallingEdge

from sim.benches.util import start_clock_and_reset


async def wait_outcome(dut, timeout):
    for cycle in range(1, timeout + 1):
        await FallingEdge(dut.clk)
        if int(dut.passed.value) or int(dut.failed.value):
            return {"passed": bool(int(dut.passed.value)), "failed": bool(int(dut.failed.value)),
                    "error_code": int(dut.error_code.value), "runs": int(dut.runs.value),
                    "cycles": cycle}
    return {"passed": False, "failed": False, "timeout": True, "cycles": timeout}


@cocotb.test()
async def selftest(dut):
    timeout = int(os.environ.get("SENSE_TIMEOUT", "200000"))
    dut.rerun.value = 0
    await start_clock_and_reset(dut)
    runs = [await wait_outcome(dut, timeout)]
    if not runs[0].get("timeout"):
        dut.rerun.value = 1
        await FallingEdge(dut.clk)
        dut.rerun.value = 0
        runs.append(await wait_outcome(dut, timeout))
    with open(os.environ["SENSE_RESULTS"], "w") as f:
        json.dump({"runs": runs}, f)
