"""Run memory images on the simulated accelerator (sim.benches.system_bench) from Python."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np

from hw.config import SenseConfig
from hw.files import atomic_write
from hw.soc.memsystem import MEM_SYSTEM_BYTES
from sim import harness

__all__ = ["run_system", "RunError", "DEFAULT_MEM"]

DEFAULT_MEM = 1 << 22     # 4 MiB of simulated DRAM for the buffer


class RunError(RuntimeError):
    """A "run" step ended with the accelerator's (or the driver's) error; one line."""


def _bar(path: Path, stop: threading.Event, stream) -> None:
    """Follow the bench's progress file ("done total") with a tqdm bar: rate and ETA on a
    terminal, nothing when the output is not one."""
    from tqdm import tqdm

    bar = None
    try:
        while True:
            try:
                done, total = map(int, path.read_text().split())
            except (OSError, ValueError):
                done, total = 0, None
            if total and bar is None:
                bar = tqdm(total=total, unit="image", file=stream, disable=None, leave=True,
                           desc="  simulating")
            if bar is not None and done > bar.n:
                bar.update(done - bar.n)
            if stop.is_set():
                return
            stop.wait(0.3)
    finally:
        if bar is not None:
            bar.close()


#: The most memory a run can have with dram "design": the in-design DRAM less its two 4 KiB
#: guard pages.
DESIGN_MEM = MEM_SYSTEM_BYTES - 2 * 0x1000


def run_system(config: SenseConfig, steps: list[dict], *, pause: float = 0.0,
               monitor: bool = False, seed: int = 1, mem_size: int = DEFAULT_MEM,
               timeout: int = 10_000_000, name: str = "system", progress: bool = False,
               dram: str = "cocotb") -> dict:
    """Build (once) and simulate the accelerator on `steps` (see sim.benches.system_bench). Step
    images and inputs may be given as bytes / arrays ("image", "x"); they are written to files
    here. Returns the bench's results; run steps get their outputs under "outputs".

    dram "cocotb": cocotbext-axi's AxiRam in Python answers every beat (random stalls, the bus
    monitor, fault steps); "design": `hw.soc.memsystem.MemSystem`, the DRAM inside the
    simulated design (run and refuse steps; many times faster)."""
    if dram not in ("cocotb", "design"):
        raise ValueError(f"dram must be cocotb or design, not {dram!r}")
    names = [step.get("name", f"step{i}") for i, step in enumerate(steps)]
    for name in names:
        if names.count(name) > 1:       # each run's outputs go to a file named after it
            raise ValueError(f"two steps are named {name!r}; step names must differ")
    if dram == "design" and mem_size > DESIGN_MEM:
        raise ValueError(f"the in-design DRAM holds {DESIGN_MEM} bytes, not "
                         f"{mem_size}")
    if dram == "design":
        build = harness.build("memsystem", config, ports_only=True)
    else:
        build = harness.build("accelerator", config, ports_only=True)
    work = build.build_dir / "jobs" / f"{name}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    job_steps = []
    for i, step in enumerate(steps):
        step = dict(step)
        for key in ("image", "suffix"):
            if isinstance(step.get(key), (bytes, bytearray)):
                path = work / f"step{i}-{key}.bin"
                atomic_write(path, bytes(step[key]))
                step[key] = str(path)
        if "x" in step:
            path = work / f"step{i}.npz"
            np.savez(path, x=np.asarray(step.pop("x"), np.int8))
            step["inputs"] = str(path)
        step.setdefault("name", f"step{i}")
        job_steps.append(step)
    results = work / "results.json"
    progress_file = work / "progress"
    results.unlink(missing_ok=True)
    progress_file.unlink(missing_ok=True)
    job = {"steps": job_steps, "pause": pause, "monitor": monitor, "seed": seed,
           "mem_size": mem_size, "timeout": timeout, "dram": dram}
    if progress:
        job["progress"] = str(progress_file)
    atomic_write(work / "job.json", json.dumps(job).encode())
    stop = threading.Event()
    bar = None
    if progress:
        bar = threading.Thread(target=_bar, args=(progress_file, stop, sys.stderr), daemon=True)
        bar.start()
    try:
        harness.run(build, "sim.benches.system_bench", name=name,
                env={"SENSE_JOB": str(work / "job.json"), "SENSE_RESULTS": str(results)})
    finally:
        stop.set()
        if bar:
            bar.join()
    out = json.loads(results.read_text())
    for step in out["steps"]:
        npy = Path(f"{results}.{step['name']}.npy")
        if step["op"] in ("run", "batch") and step.get("error"):
            raise RunError(f"{step['name']}: {step['error']}")
        if step["op"] in ("run", "batch") and npy.exists():
            step["outputs"] = np.load(npy)
    return out
