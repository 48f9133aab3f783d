"""`sense bench core`: the sparse core against the dense baseline of the same grid, in RTL.

Every figure comes from the RTL simulation (cycles, counters, bit-exactness) except the PE
utilisation's numerator, useful MACs, which host.perf.useful_macs counts from the layer.
"""

from __future__ import annotations

import sys

import numpy as np

from hw.config import SenseConfig

from . import golden
from .buffers import ConvLayer, weight_slots
from .corerun import layer_for_input, run_core
from .perf import core_cycles, useful_macs
from .sparse import pad_channels

__all__ = ["relu_activations", "bench_layers", "fit_buffers", "bench_core", "bench_accel",
           "one_layer_network"]


def relu_activations(rng, c, h, w, dead=0.1) -> np.ndarray:
    """int8 activations as a ReLU layer produces them: the output of a real 3x3 convolution of a
    random image, shifted per channel so that each channel has its own zero density (20 % to
    90 %, and a fraction `dead` of channels zero everywhere), then ReLU and requantization. Zeros
    are correlated in space and by channel, as in a trained network."""
    image = rng.integers(-128, 128, size=(1, 8, h, w)).astype(np.int8)
    kernel = rng.integers(-128, 128, size=(c, 8, 3, 3)).astype(np.int8)
    acc = golden.conv2d(image, kernel, padding=1)[0].astype(np.float64)   # (c, h, w)
    q = rng.uniform(0.2, 0.9, size=c)
    q[rng.random(c) < dead] = 1.0
    threshold = np.array([np.quantile(acc[i], q[i]) for i in range(c)])
    y = np.maximum(acc - threshold[:, None, None], 0)
    y = np.rint(y / max(y.max(), 1) * 127)
    return y.astype(np.int8)


def bench_layers(group: int, seed: int = 7) -> list[ConvLayer]:
    """The benchmark's layers. Weights are balanced-sparse for M=`group` (the dense baseline runs
    the same weights, zeros included)."""
    rng = np.random.default_rng(seed)
    dense_input = rng.integers(1, 128, size=(64, 16, 16)).astype(np.int8)
    def layer(name, x, k, r, stride, pad):
        return layer_for_input(rng, group, x, k=k, r=r, stride=stride, pad=pad,
                               bias_range=20000, name=name)

    return [
        layer("conv3x3_64to64_16x16_relu_input", relu_activations(rng, 64, 16, 16), 64, 3, 1, 1),
        layer("conv3x3_64to64_16x16_dense_input", dense_input, 64, 3, 1, 1),
        layer("conv1x1_64to128_16x16_relu_input", relu_activations(rng, 64, 16, 16), 128, 1, 1, 0),
        layer("conv5x5s2_32to64_16x16_relu_input", relu_activations(rng, 32, 16, 16), 64, 5, 2, 2),
    ]


def fit_buffers(config: SenseConfig, layers) -> SenseConfig:
    """The configuration with IFM and weight buffers grown (powers of two) to hold every layer."""
    def kib_for(nbytes):
        kib = 1
        while kib * 1024 < nbytes:
            kib *= 2
        return kib

    ifm = max(pad_channels(layer.x, config.group, axis=0).size for layer in layers)
    ifm_kib = max(config.ifm_kib, kib_for(ifm * config.cols))
    weight_words = max(len(weight_slots(layer, config.replace(sparse=False))) for layer in layers)
    weight_kib = max(config.weight_kib, kib_for(weight_words * config.rows))
    return config.replace(ifm_kib=ifm_kib, weight_kib=weight_kib)


def bench_core(config: SenseConfig, *, seed: int = 7, log=sys.stderr) -> dict:
    """Run the bench layers on the sparse core and on its dense baseline; return the report."""
    sparse_cfg = fit_buffers(config.replace(sparse=True), bench_layers(config.group, seed))
    dense_cfg = sparse_cfg.replace(sparse=False)
    layers = bench_layers(config.group, seed)
    print(f"bench core: {sparse_cfg.rows}x{sparse_cfg.cols} grid, M={sparse_cfg.group}; building "
          f"and simulating the sparse core (first build of a configuration takes minutes)",
          file=log, flush=True)
    sparse = run_core(sparse_cfg, layers, name="bench-sparse")
    print("bench core: sparse done; now the dense baseline", file=log, flush=True)
    dense = run_core(dense_cfg, layers, name="bench-dense")
    report = []
    for layer, s, d in zip(layers, sparse["layers"], dense["layers"]):
        model = core_cycles(layer, sparse_cfg)
        groups = s["groups_issued"] + s["groups_skipped"]
        k, c, r, _ = layer.w.shape
        report.append({
            "layer": layer.name,
            "shape": {"in_channels": c, "out_channels": k, "in_hw": list(layer.x.shape[1:]),
                      "kernel": r, "stride": layer.stride, "pad": layer.pad},
            "ifm_zero_fraction": float((layer.x == 0).mean()),
            "cycles_sparse": s["cycles"],
            "cycles_dense": d["cycles"],
            "cycles_model_sparse": model["cycles"],
            "cycles_model_dense": core_cycles(layer, dense_cfg)["cycles"],
            "speedup": d["cycles"] / s["cycles"],
            "pe_utilization": useful_macs(layer, sparse_cfg) / (sparse_cfg.pes * s["cycles"]),
            "pe_utilization_dense": useful_macs(layer, dense_cfg) / (dense_cfg.pes * d["cycles"]),
            "groups_skipped_fraction": s["groups_skipped"] / groups if groups else 0.0,
            "groups_skipped_fraction_dense": (d["groups_skipped"]
                                              / max(1, d["groups_issued"] + d["groups_skipped"])),
            "bit_exact": bool(s["bit_exact"] and d["bit_exact"]),
            "sim_cycles_per_second": s["cycles"] / s["run_seconds"],
            "sim_cycles_per_second_dense": d["cycles"] / d["run_seconds"],
        })
    return {"bench": "core", "config": sparse_cfg.to_dict(), "dense_config": dense_cfg.to_dict(),
            "seed": seed, "layers": report}


def resnet50_shapes():
    """(name, (K, C, R, S), input (C, H, W), stride, pad) of every ResNet-50 layer (25.5 M
    weights), the FC as a 1x1 convolution over the pooled 1x1 map."""
    layers = [("conv1", (64, 3, 7, 7), (3, 224, 224), 2, 3)]
    c_in, size = 64, 56
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 0) else 1
            name = f"layer{stage + 1}.{b}"
            layers.append((f"{name}.conv1", (width, c_in, 1, 1), (c_in, size, size), 1, 0))
            layers.append((f"{name}.conv2", (width, width, 3, 3), (width, size, size), stride, 1))
            out_size = size // stride
            layers.append((f"{name}.conv3", (4 * width, width, 1, 1), (width, out_size, out_size),
                           1, 0))
            if b == 0:
                layers.append((f"{name}.downsample", (4 * width, c_in, 1, 1),
                               (c_in, size, size), stride, 0))
            c_in, size = 4 * width, out_size
    layers.append(("fc", (1000, 2048, 1, 1), (2048, 1, 1), 1, 0))
    return layers


def bench_pack(config: SenseConfig, seed: int = 0) -> dict:
    """Time balanced pruning plus packing (weight slots, weight words, parameters, descriptor,
    header, CRC) of random int8 weights with ResNet-50's shapes, one single-layer image per layer
    (ResNet-50 is not a chain). Throughput is counted in MB of dense int8 weights."""
    import time

    from .image import pack_image
    from .quant import QLayer, QNetwork
    from .sparse import prune_balanced

    rng = np.random.default_rng(seed)
    shapes = resnet50_shapes()
    weights = [rng.integers(-127, 128, size=shape, dtype=np.int8) for _, shape, *_ in shapes]
    params = sum(w.size for w in weights)
    image_bytes = 0
    t0 = time.perf_counter()
    for (name, shape, in_shape, stride, pad), w in zip(shapes, weights):
        k = shape[0]
        mask = None
        if config.sparse:
            w, mask = prune_balanced(pad_channels(w, config.group, axis=1), config.group)
            w, mask = w[:, :shape[1]], mask[:, :shape[1]]
        layer = QLayer("conv", name, w, np.zeros(k, np.int32), np.full(k, 1 << 15, np.int32),
                       np.full(k, 16, np.int32), stride, pad, True, None, 1.0, np.ones(k), 1.0,
                       mask)
        qnet = QNetwork(in_shape, [layer], 1.0, [], config.group if config.sparse else None)
        image_bytes += len(pack_image(qnet, config))
    seconds = time.perf_counter() - t0
    return {"bench": "pack", "model": "resnet50 shapes, random int8", "layers": len(shapes),
            "params": int(params), "seconds": seconds, "mb_per_s": params / 1e6 / seconds,
            "image_bytes": image_bytes, "config": config.to_dict()}


def one_layer_network(layer: ConvLayer, group: int):
    """A ConvLayer as a one-layer quantized network (input scale 1), for the memory image."""
    from .quant import QLayer, QNetwork

    q = QLayer("conv", layer.name, layer.w, layer.bias, layer.mult, layer.shift, layer.stride,
               layer.pad, layer.relu)
    return QNetwork(tuple(layer.x.shape), [q], 1.0, [], group, layer.name)


def bench_accel(config: SenseConfig, *, seed: int = 7, order: str = "auto",
                log=sys.stderr) -> dict:
    """The bench layers as one-layer networks on the whole accelerator (DMA, descriptor walk,
    weight streaming, output writer) in RTL: cycles from the RTL counters, PE utilisation with
    the DMA included, and the core alone (host.perf, exact) for comparison."""
    from .image import describe, pack_image
    from .perf import accelerator_estimate
    from .sysrun import run_system

    layers = bench_layers(config.group, seed)
    cfg = fit_buffers(config.replace(sparse=True), layers)
    steps, images = [], []
    for layer in layers:
        images.append(pack_image(one_layer_network(layer, cfg.group), cfg, order=order))
        steps.append({"op": "run", "image": images[-1], "x": layer.x[None], "name": layer.name})
    print(f"bench accel: {cfg.rows}x{cfg.cols} grid, M={cfg.group}; building and simulating the "
          f"accelerator (first build of a configuration takes minutes)", file=log, flush=True)
    res = run_system(cfg, steps, name="bench-accel", mem_size=1 << 23)
    report = []
    for layer, image, step in zip(layers, images, res["steps"]):
        run = step["runs"][0]
        got = step["outputs"][0]
        core = core_cycles(layer, cfg)
        est = accelerator_estimate(image, layer.x, cfg)
        report.append({
            "layer": layer.name,
            "order": describe(image, cfg)["layers"][0]["order"],
            "cycles": run["cycles"],
            "cycles_core_only": core["cycles"],
            "cycles_model": est["cycles"],
            "model_error": (est["cycles"] - run["cycles"]) / run["cycles"],
            "pe_utilization": useful_macs(layer, cfg) / (cfg.pes * run["cycles"]),
            "pe_utilization_core_only": useful_macs(layer, cfg) / (cfg.pes * core["cycles"]),
            "dram_read_bytes": run["dram_read_bytes"],
            "dram_write_bytes": run["dram_write_bytes"],
            "groups_skipped": run["groups_skipped"],
            "bit_exact": bool((got == layer.reference()).all()),
        })
    return {"bench": "accel", "config": cfg.to_dict(), "seed": seed, "order": order,
            "layers": report}
