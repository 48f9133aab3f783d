"""Run layers on the simulated core: case files for the cocotb bench and the runner around it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from host.buffers import ConvLayer
from hw.config import SenseConfig
from sim import harness

__all__ = ["save_cases", "load_cases", "run_core"]

_FIELDS = ("x", "w", "bias", "mult", "shift")


def save_cases(path, layers: list[ConvLayer], ready=1.0) -> None:
    """Write layers (and, per layer, the probability that the output consumer is ready in a
    cycle) for the core bench."""
    readies = list(ready) if isinstance(ready, (list, tuple)) else [float(ready)] * len(layers)
    if len(readies) != len(layers):
        raise ValueError(f"ready has {len(readies)} entries for {len(layers)} layers")
    arrays = {}
    meta = []
    for i, (layer, r) in enumerate(zip(layers, readies)):
        for f in _FIELDS:
            arrays[f"{i}_{f}"] = getattr(layer, f)
        meta.append({"stride": layer.stride, "pad": layer.pad, "relu": bool(layer.relu),
                     "name": layer.name, "ifm_stationary": bool(layer.ifm_stationary),
                     "image_rows": list(layer.image_rows) if layer.image_rows else None,
                     "ready": float(r)})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=Path(path).parent)
    os.close(fd)
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_cases(path) -> list[tuple[ConvLayer, float]]:
    """(layer, ready probability) pairs written by `save_cases`."""
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        out = []
        for i, m in enumerate(meta):
            ready = m.pop("ready")
            m["image_rows"] = tuple(m["image_rows"]) if m.get("image_rows") else None
            out.append((ConvLayer(**{f: z[f"{i}_{f}"] for f in _FIELDS}, **m), ready))
        return out


def run_core(config: SenseConfig, layers: list[ConvLayer], *, ready=1.0, seed: int = 1,
             name: str = "core") -> dict:
    """Build (once) and simulate the core on `layers`; returns the bench's results dict.

    ready: probability that the output consumer accepts a row in a cycle (1.0 = always), one
    value or one per layer."""
    for layer in layers:
        layer.check(config)
    build = harness.build("core", config)
    work = build.build_dir / "cases"
    work.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{os.getpid()}"
    cases, results = work / f"{stem}.npz", work / f"{stem}.json"
    save_cases(cases, layers, ready)
    results.unlink(missing_ok=True)
    harness.run(build, "sim.benches.core_bench", name=name,
            env={"SENSE_CASES": str(cases), "SENSE_RESULTS": str(results),
                 "SENSE_SEED": str(seed)})
    return json.loads(results.read_text())
