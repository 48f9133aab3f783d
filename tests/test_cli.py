import subprocess
import sys

import pytest

from sim import harness


def sense(*args):
    return subprocess.run([sys.executable, "-m", "sense", *args], capture_output=True,
                          text=True)


def test_version_and_help():
    r = sense("--version")
    assert r.returncode == 0 and r.stdout.startswith("sense ")
    r = sense("--help")
    assert r.returncode == 0 and "elaborate" in r.stdout
    r = sense("elaborate", "--help")
    assert r.returncode == 0 and "--group" in r.stdout and "--dense" in r.stdout
    for args in (["bench", "core"], ["bench", "pack"], ["pack"], ["inspect"]):
        r = sense(*args, "--help")
        assert r.returncode == 0 and "usage: sense" in r.stdout, args


def test_no_command_prints_help():
    r = sense()
    assert r.returncode == 2 and "usage: sense" in r.stdout


@pytest.mark.parametrize("args,top", [
    (["--config", "small"], "sense_accelerator"),
    (["--rows", "3", "--cols", "5", "--group", "16", "--block", "core"], "sense_core"),
    (["--group", "8", "--dense", "--block", "core"], "sense_core"),
    # zcu102's grid on 8x8 PEs: the same PE and edge modules as 64x32, linted in a tenth of
    # the time (Amaranth writes one module per instance)
    (["--config", "zcu102", "--rows", "8", "--cols", "8", "--block", "grid"], "sense_grid"),
    (["--config", "zcu102", "--block", "pe"], "sense_pe"),
])
def test_elaborate_writes_verilog_that_verilator_lints(tmp_path, args, top):
    out = tmp_path / "x.v"
    r = sense("elaborate", *args, "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert f"module {top}(" in text
    harness.lint(out, top)


@pytest.mark.parametrize("args,message", [
    (["--group", "3"], "group (M) must be one of 2, 4, 8, 16, not 3"),
    (["--rows", "0"], "rows must be an integer from 1 to 64, not 0"),
    (["--config", "huge"], "config must be one of small, ulx3s, zcu102, not 'huge'"),
])
def test_elaborate_bad_config_exits_nonzero_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "x.v"
    r = sense("elaborate", *args, "-o", str(out))
    assert r.returncode == 1
    assert message in r.stderr
    assert not out.exists()


def test_elaborate_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = sense("elaborate", "-o", str(blocker / "x.v"))
    assert r.returncode == 1 and "error" in r.stderr


def test_lint_reports_problems(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output b); assign b = c; endmodule\n")
    with pytest.raises(harness.SimulationFailed, match="lint"):
        harness.lint(bad, "bad")


def test_atomic_write_permissions_and_no_leftovers(tmp_path):
    import os

    from hw.files import atomic_write

    path = atomic_write(tmp_path / "a" / "f.bin", b"abc")
    assert path.read_bytes() == b"abc"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]
