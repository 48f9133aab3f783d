"""`sense eval`: accuracy of a model as float, int8 dense and int8 balanced-sparse through the
golden model, on labelled inputs. Vectorised in batches: the integer network runs whole batches
through `host.golden` (tens of thousands of digits images per minute)."""

from __future__ import annotations

import time

import numpy as np

from host.quant import quantize, quantize_input, run_int
from host.nn import Network, forward

__all__ = ["evaluate", "as_float_inputs", "BATCH"]

#: Images per golden-model batch (bounds the memory of the im2col windows).
BATCH = 256


def as_float_inputs(x: np.ndarray, scale: float | None, offset: float) -> np.ndarray:
    """Inputs as the model takes them: float arrays as they are; uint8 images times `scale`
    plus `offset` (the model's own preprocessing, which the user states)."""
    if x.dtype == np.uint8:
        if scale is None:
            raise ValueError("the inputs are uint8 images: give the model's scaling with "
                             "--scale S (and --offset O): float = uint8 * S + O")
        return x.astype(np.float64) * scale + offset
    return x.astype(np.float64)


def _batched(fn, x):
    return np.concatenate([fn(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])


def evaluate(net: Network, x: np.ndarray, y: np.ndarray, calib: np.ndarray, group: int,
             pruned: bool = False) -> dict:
    """Top-1 accuracy of the float network, the int8 dense network and the int8 balanced-sparse
    network (M = `group`; `pruned`: the weights already follow the pattern) on (x, y)."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} labels")
    y = np.asarray(y).reshape(-1).astype(np.int64)
    out = {"images": int(len(y)), "calibration_images": int(len(calib)), "group": group}
    t = time.perf_counter()
    if not pruned:
        out["float"] = float((_batched(lambda b: forward(net, b), x).argmax(1) == y).mean())
        q = quantize(net, calib)
        out["int8_dense"] = float((_batched(lambda b: run_int(q, quantize_input(q, b)), x)
                                   .argmax(1) == y).mean())
    else:
        out["float_pruned"] = float((_batched(lambda b: forward(net, b), x).argmax(1) == y)
                                    .mean())
    q = quantize(net, calib, group=group, pruned=pruned)
    out["int8_sparse"] = float((_batched(lambda b: run_int(q, quantize_input(q, b)), x)
                                .argmax(1) == y).mean())
    out["seconds"] = time.perf_counter() - t
    out["images_per_minute"] = 60 * len(y) * (2 if not pruned else 1) / out["seconds"]
    return out
