"""Run layers on the simulated core: case files for the cocotb bench and the runner around it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from hw.config import SenseConfig

from .buffers import ConvLayer

__all__ = ["save_cases", "load_cases", "run_core", "layer_for_input", "random_layer"]

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
            out.append((ConvLayer(**{f: z[f"{i}_{f}"] for f in _FIELDS}, **m), ready))
        return out


def run_core(config: SenseConfig, layers: list[ConvLayer], *, ready=1.0, seed: int = 1,
             name: str = "core") -> dict:
    """Build (once) and simulate the core on `layers`; returns the bench's results dict.

    ready: probability that the output consumer accepts a row in a cycle (1.0 = always), one
    value or one per layer."""
    from hw import sim

    for layer in layers:
        layer.check(config)
    build = sim.build("core", config)
    work = build.build_dir / "cases"
    work.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{os.getpid()}"
    cases, results = work / f"{stem}.npz", work / f"{stem}.json"
    save_cases(cases, layers, ready)
    results.unlink(missing_ok=True)
    sim.run(build, "hw.tb.core_bench", name=name,
            env={"SENSE_CASES": str(cases), "SENSE_RESULTS": str(results),
                 "SENSE_SEED": str(seed)})
    return json.loads(results.read_text())


def layer_for_input(rng, group: int, x: np.ndarray, *, k: int, r: int, stride: int = 1,
                    pad: int = 0, relu: bool = True, bias_range: int = 5000,
                    name: str = "layer") -> ConvLayer:
    """A quantized layer on input `x` (C, H, W) with random balanced-sparse (M=`group`) weights,
    random bias, and requantization scales chosen so that outputs use the whole int8 range."""
    from . import golden
    from .sparse import pad_channels, prune_balanced

    c = x.shape[0]
    wt = rng.integers(-128, 128, size=(k, c, r, r)).astype(np.int8)
    # Prune with the channels padded to a multiple of M, then drop the padding: groups keep at
    # most M/2 nonzero weights, which is all the pattern asks of the real channels.
    wt = prune_balanced(pad_channels(wt, group, axis=1), group)[0][:, :c]
    bias = rng.integers(-bias_range, bias_range, size=k).astype(np.int32)
    acc = golden.add_bias(golden.conv2d(x[None], wt, stride=stride, padding=pad), bias)
    spread = np.maximum(np.abs(acc).max(axis=(0, 2, 3)), 1).astype(np.float64)
    mult, shift = golden.scale_to_mult_shift(110.0 / spread)
    return ConvLayer(x=x, w=wt, bias=bias, mult=mult, shift=shift, stride=stride, pad=pad,
                     relu=relu, name=name)


def random_layer(rng, config: SenseConfig, *, c: int, k: int, h: int, w: int, r: int = 3,
                 stride: int = 1, pad: int = 0, zero_density: float = 0.5,
                 dead_channels: float = 0.0, relu: bool = True, name: str = "layer") -> ConvLayer:
    """A random layer for M of `config`: uniform int8 input with a fraction `zero_density` of
    zeros (independently) and a fraction `dead_channels` of channels zero everywhere."""
    x = rng.integers(-128, 128, size=(c, h, w)).astype(np.int8)
    x[rng.random(x.shape) < zero_density] = 0
    x[rng.random(c) < dead_channels] = 0
    return layer_for_input(rng, config.group, x, k=k, r=r, stride=stride, pad=pad, relu=relu,
                           name=name)
