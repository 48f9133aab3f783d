"""The self-test system (accelerator + block-RAM memory + checker, what `sense build --board
ulx3s` puts on the ECP5) in RTL simulation: it runs the bundled digits network on its own and
passes; with a wrong expected output it fails; a wrong image ends in the accelerator's error."""

import json

import pytest

from host.selftest import bundled_selftest
from hw.config import SenseConfig
from hw.regmap import ErrorCode, register
from hw.soc.selftest import SelfTest
from sim import harness

CONFIG = SenseConfig.preset("small")


def run_selftest(st, name, tmp_path):
    build = harness.build("selftest", st.config, component=st, tag=st.key(), ports_only=True)
    results = tmp_path / "results.json"
    harness.run(build, "sim.benches.selftest_bench", name=name, env={"SENSE_RESULTS": str(results)})
    return json.loads(results.read_text())["runs"]


@pytest.fixture(scope="module")
def digits():
    return bundled_selftest(CONFIG)


def test_selftest_passes_and_reruns(digits, tmp_path):
    first, again = run_selftest(digits, "pass", tmp_path)
    assert first["passed"] and not first["failed"] and first["runs"] == 1, first
    assert again["passed"] and again["runs"] == 2, again
    # The rerun writes only CTRL; the first run also the eight base/window words.
    assert again["cycles"] < first["cycles"]


def test_selftest_detects_a_wrong_output(digits, tmp_path):
    expected = bytearray(digits.expected)
    last = max(i for i, m in enumerate(digits.mask) if m)     # the last checked byte
    expected[last] ^= 0x01
    st = digits.changed(expected=bytes(expected))
    runs = run_selftest(st, "wrong-output", tmp_path)
    assert runs[0]["failed"] and not runs[0]["passed"] and runs[0]["error_code"] == 0, runs


def test_selftest_reports_the_accelerators_error(digits, tmp_path):
    memory = bytearray(digits.memory)
    memory[0] ^= 0xFF                                         # the image magic
    st = digits.changed(memory=bytes(memory))
    runs = run_selftest(st, "bad-magic", tmp_path)
    assert runs[0]["failed"] and runs[0]["error_code"] == ErrorCode.BAD_MAGIC, runs


def test_selftest_refuses_bad_arguments(digits):
    with pytest.raises(ValueError, match="CTRL.start"):
        SelfTest(CONFIG, memory=b"", mem_size=64, writes=[(register("CTRL").offset, 2)],
                 check_offset=0, expected=b"\0")
    with pytest.raises(ValueError, match="outside the memory"):
        SelfTest(CONFIG, memory=b"", mem_size=64, writes=digits.writes, check_offset=60,
                 expected=b"\0" * 8)
