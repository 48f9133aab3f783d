"""The processing element against the golden model, for every group size and the dense baseline."""

import shutil
from pathlib import Path

import pytest

from hw import sim
from hw.config import SenseConfig

HERE = Path(__file__).parent

CONFIGS = [pytest.param(SenseConfig(group=m), id=f"M{m}") for m in (2, 4, 8, 16)] + [
    pytest.param(SenseConfig(group=4, sparse=False), id="dense")]


@pytest.mark.parametrize("config", CONFIGS)
def test_pe(config):
    build = sim.build("pe", config)
    sim.run(build, "pe_bench", module_dir=HERE, env={"SENSE_SEED": str(config.group)},
            name=f"pe-{config.key()}")


@pytest.mark.skipif(shutil.which("iverilog") is None,
                    reason="optional second simulator: iverilog not installed")
def test_pe_icarus():
    config = SenseConfig(group=8)
    build = sim.build("pe", config, sim="icarus")
    sim.run(build, "pe_bench", module_dir=HERE, env={"SENSE_SEED": "11", "SENSE_PE_TILES": "100"},
            name="pe-icarus")
