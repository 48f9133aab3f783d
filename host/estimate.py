"""Whole-run estimates from a memory image: the performance model (`host.perf`) applied to every
layer of the image, on the activations the golden model computes for an input. Separate from
`host.perf` so that the packer (`host.image`) can plan with the model and the model can read
images without an import cycle."""

from __future__ import annotations

import numpy as np

from host import perf
from host.buffers import ConvLayer
from host.image import HEADER_BYTES, layer_table, unpack_image
from host.nn import joined
from host.quant import run_int
from hw.config import BEAT_BYTES, SenseConfig
from hw.layouts import POOL_KINDS, LayerKind

__all__ = ["accelerator_estimate"]




def accelerator_estimate(image: bytes, x: np.ndarray, config: SenseConfig, acts=None,
                         per_layer: list | None = None, skip: bool = True) -> dict:
    """Cycles and DRAM bytes of one run of `image` on input `x` (C, H, W) int8: `layer_estimate`
    for every layer, on the activations the golden model computes (`acts`: every layer's
    output for x[None], when already computed), plus the run's start. `per_layer`, a list,
    receives every layer's estimate. `skip` False: no zero group skipped (weight sparsity
    alone, `host.perf.layer_estimate`)."""
    _, descs = layer_table(image, config)
    qnet = unpack_image(image, config)
    x = np.asarray(x, np.int8)
    first = qnet.accel_input(x)             # (the first layer's input: blocked, host.s2d)
    if acts is None:
        acts = run_int(qnet, x[None], return_all=True)
    total = {"cycles": perf.RUN_STATES + perf.READ_OVERHEAD + HEADER_BYTES // BEAT_BYTES,
             "dram_read_bytes": HEADER_BYTES,
             "dram_write_bytes": 0, "macs": 0, "groups_skipped": 0}
    for i, (d, q) in enumerate(zip(descs, qnet.layers)):
        if int(d.kind) == LayerKind.ADD.value:
            est = perf.add_estimate(d, config)
        elif int(d.kind) == LayerKind.CONCAT.value:
            est = perf.concat_estimate()
        elif int(d.kind) in POOL_KINDS:
            est = perf.pool_estimate(d, config)
        else:
            xs = [first if src < 0 else acts[src][0] for src in qnet.sources(i)]
            xin, stride = xs[0], q.stride
            if q.join:                      # a joined conv: both inputs, as it runs
                xin = joined([a[None] for a in xs], q.join)[0]
            elif d.in_step:                 # an input gather: the stride-1 view it runs
                xin, stride = xin[:, ::stride, ::stride], 1
            layer = ConvLayer(x=xin, w=q.w, bias=q.bias, mult=q.mult, shift=q.shift,
                              stride=stride, pad=q.pad, relu=q.relu,
                              image_rows=q.image_rows)
            est = perf.layer_estimate(d, layer, config, skip)
        for key, value in est.items():
            total[key] += value
        if per_layer is not None:
            per_layer.append(est)
    return total
