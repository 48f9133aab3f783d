"""The processing element against the golden model, for every group size and the dense baseline."""

import shutil

import pytest

from hw.config import SenseConfig
from sim import harness

CONFIGS = [pytest.param(SenseConfig(group=m), id=f"M{m}") for m in (2, 4, 8, 16)] + [
    pytest.param(SenseConfig(group=4, sparse=False), id="dense")] + [
    pytest.param(SenseConfig(group=m, dsp_pairs=True), id=f"pair-M{m}") for m in (2, 16)] + [
    pytest.param(SenseConfig(group=4, sparse=False, dsp_pairs=True), id="pair-dense")] + [
    # Narrow accumulators (acc_width): the bench's longest sums (64 groups of -128 * -128) are
    # 2^21 (M = 4) and 2^22 (M = 8): 23 and 24 bits are the narrowest widths that hold them.
    pytest.param(SenseConfig(group=4, dsp_pairs=True, acc_width=23), id="pair-M4-acc23"),
    pytest.param(SenseConfig(group=8, acc_width=24), id="M8-acc24")]


@pytest.mark.parametrize("config", CONFIGS)
def test_pe(config):
    build = harness.build("pe", config)
    harness.run(build, "sim.benches.pe_bench", env={"SENSE_SEED": str(config.group)},
            name=f"pe-{config.key()}")


@pytest.mark.skipif(shutil.which("iverilog") is None,
                    reason="optional second simulator: iverilog not installed")
def test_pe_icarus():
    config = SenseConfig(group=8)
    build = harness.build("pe", config, sim="icarus")
    harness.run(build, "sim.benches.pe_bench", env={"SENSE_SEED": "11", "SENSE_PE_TILES": "100"},
            name="pe-icarus")
