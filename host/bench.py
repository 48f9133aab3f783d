"""Benchmark workloads (the bench layers, random sparse layers, ResNet-50's shapes) and
`sense bench pack`, the host packer's throughput. The RTL benches that run these workloads are in
`sim.bench`."""

from __future__ import annotations

import time

import numpy as np

from host import golden
from host.buffers import ConvLayer, weight_slots
from host.image import pack_image
from host.nn import group_readers
from host.quant import QLayer, QNetwork
from host.sparse import pad_channels, prune_balanced
from hw.config import BEAT_BYTES, SenseConfig

__all__ = ["relu_activations", "bench_layers", "tiled_bench_layer", "fit_buffers", "one_layer_network",
           "layer_for_input", "random_layer", "resnet50_shapes", "bench_pack",
           "bench_pack_network"]


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


def tiled_bench_layer(group: int, seed: int = 7) -> ConvLayer:
    """The tiled benchmark layer: the bench's 3x3 64 -> 64 layer on a 48x48 map (a 147 KB input,
    nine times the IFM store `fit_buffers` sizes for the bench layers): it runs in bands."""
    rng = np.random.default_rng(seed + 100)
    return layer_for_input(rng, group, relu_activations(rng, 64, 48, 48), k=64, r=3, stride=1,
                           pad=1, bias_range=20000, name="conv3x3_64to64_48x48_relu_input_bands")


def fit_buffers(config: SenseConfig, layers) -> SenseConfig:
    """The configuration with IFM and weight buffers grown (powers of two) to hold every layer."""
    def kib_for(nbytes):
        kib = 1
        while kib * 1024 < nbytes:
            kib *= 2
        return kib

    # The IFM store's placement (whole lines a pixel, phase regions of whole bank rows).
    ifm = max(layer.geometry(config).lines for layer in layers)
    ifm_kib = max(config.ifm_kib, kib_for(ifm * config.ifm_banks * BEAT_BYTES))
    weight_words = max(len(weight_slots(layer, config.replace(sparse=False))) for layer in layers)
    weight_kib = max(config.weight_kib, kib_for(weight_words * config.rows))
    return config.replace(ifm_kib=ifm_kib, weight_kib=weight_kib)


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


def layer_for_input(rng, group: int, x: np.ndarray, *, k: int, r: int, stride: int = 1,
                    pad: int = 0, relu: bool = True, bias_range: int = 5000,
                    name: str = "layer") -> ConvLayer:
    """A quantized layer on input `x` (C, H, W) with random balanced-sparse (M=`group`) weights,
    random bias, and requantization scales chosen so that outputs use the whole int8 range."""
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


def bench_pack(config: SenseConfig, seed: int = 0) -> dict:
    """Time balanced pruning plus packing (weight slots, weight words, parameters, descriptor,
    header, CRC) of random int8 weights with ResNet-50's shapes, one single-layer image per layer
    (ResNet-50 is not a chain). Throughput is counted in MB of dense int8 weights."""

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

    q = QLayer("conv", layer.name, layer.w, layer.bias, layer.mult, layer.shift, layer.stride,
               layer.pad, layer.relu)
    return QNetwork(tuple(layer.x.shape), [q], 1.0, [], group, layer.name)


def bench_pack_network(config: SenseConfig, name: str, calib_images: int = 8,
                       seed: int = 0, batches=()) -> dict:
    """`sense bench pack --model NAME`: the whole `sense pack` pipeline on a built-in network
    (random weights, `calib_images` random calibration inputs): build, cluster, prune, quantize,
    plan, pack, then the int8 golden output of one random input. Seconds per phase and the peak
    resident memory of the process (run it in a fresh process for a clean figure). For every
    batch size in `batches` also the batched run as built (`as_built_batch`)."""
    import resource

    from host.image import layer_table, runs_here, unsupported_problem

    times = {}
    net, qnet, image, x, acts = zoo_pipeline(config, name, calib_images, seed, times)
    pack_seconds = sum(times[k] for k in ("build", "cluster", "prune_quantize", "pack"))
    logits = acts[-1][0].reshape(-1).astype(int)
    t = time.perf_counter()
    built = _as_built(image, x[0], config, acts, net)
    times["estimate"] = time.perf_counter() - t
    t = time.perf_counter()
    batched = {str(n): _as_built_batch(qnet, config, x[0], acts, n) for n in batches}
    times["batches"] = time.perf_counter() - t
    _, descs = layer_table(image, config)
    params = sum(layer.weight.size for layer in net.layers if layer.has_weights)
    return {"bench": "pack-network", "model": name, "params": int(params),
            "layers": len(net.layers), "calib_images": calib_images,
            "seconds": pack_seconds, "phases": times,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "image_bytes": len(image), "activation_bytes": int(layer_table(image)[0]["act_size"]),
            "layers_today": sum(runs_here(d, config) for d in descs),
            "unsupported_today": unsupported_problem(descs, config),
            "as_built": built,
            "as_built_batch": batched,
            "golden_output": {"top5": np.argsort(-logits)[:5].tolist(),
                              "top5_int8": np.sort(logits)[::-1][:5].tolist(),
                              "sum": int(logits.sum())},
            "config": config.to_dict()}


def zoo_pipeline(config: SenseConfig, name: str, calib_images: int = 8, seed: int = 0,
                 times: dict | None = None, join: bool = True):
    """The `sense pack` pipeline on the built-in network `name` with random weights (`seed`) and
    `calib_images` random calibration inputs (build, order, cluster, join shortcuts unless
    `join` is false, prune, quantize, pack), and
    one random input with its golden activations: (network, quantized network, image, int8
    input (1, C, H, W), every layer's int8 output). `times` receives the seconds per phase.
    `sense bench pack --model` and scripts/simulate_network.py run exactly this."""
    from host import zoo
    from host.pipeline import compile_network
    from host.quant import quantize_input, run_int

    times = {} if times is None else times
    t = time.perf_counter()
    net = group_readers(zoo.build(name, seed=seed))     # as `sense pack` orders it
    times["build"] = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    calib = rng.normal(size=(calib_images, *net.input_shape))
    net, qnet, image, _ = compile_network(net, calib, config, join=join, times=times)
    t = time.perf_counter()
    x = quantize_input(qnet, rng.normal(size=(1, *net.input_shape)))
    acts = run_int(qnet, x, return_all=True)
    times["golden_run"] = time.perf_counter() - t
    return net, qnet, image, x, acts


def _as_built_batch(qnet, config: SenseConfig, x, acts, batch: int) -> dict:
    """A batch of `batch` images as today's gateware runs it (`host.batch`, the tail
    `choose_start` picks: the FC layers or a stacked tail): the prefix image's model cycles on
    `x` (its golden activations `acts`) once per image, plus the suffix's on the stack of
    `batch` copies of that image's prefix output. Accelerator cycles only: the CPU's register
    writes between the runs and its zeroing of a stacked tail's separator rows are not
    counted."""
    from host.batch import pack_batch, stack_outputs
    from host.estimate import accelerator_estimate

    split, prefix, suffix = pack_batch(qnet, config, batch, start="auto")
    n = len(split.prefix.layers)
    pre_layers: list = []
    pre = accelerator_estimate(prefix, x, config, acts=acts[:n], per_layer=pre_layers)
    fc_in = stack_outputs(split, [acts[n - 1][0]] * batch)
    layers: list = []
    head = accelerator_estimate(suffix, fc_in, config, per_layer=layers)
    cycles = batch * pre["cycles"] + head["cycles"]
    suffix_layers = [_layer_record(q.name, e, config) for e, q in zip(layers, split.suffix.layers)]
    return {"batch": batch, "cycles": int(cycles), "prefix_cycles": int(pre["cycles"]),
            "suffix_cycles": int(head["cycles"]),
            "prefix_bounds": _bounds([_layer_record(q.name, e, config)
                                      for e, q in zip(pre_layers, split.prefix.layers)]),
            "suffix_bounds": _bounds(suffix_layers),
            "images_per_s": batch * config.clock_mhz * 1e6 / cycles,
            "latency_ms": cycles / (config.clock_mhz * 1e3),
            "dram_bytes_per_image": (batch * (pre["dram_read_bytes"] + pre["dram_write_bytes"])
                                     + head["dram_read_bytes"] + head["dram_write_bytes"])
            / batch,
            "slot_bytes": split.slot_bytes,
            "tail": ("stacked from " if split.stacked else "FC layers from ")
            + split.suffix.layers[0].name,
            "slot_rows": split.slot, "image_rows": split.fc_input[1],
            "suffix_pixels": split.slot * (batch - 1) + split.fc_input[1],
            "suffix_layers": suffix_layers}


def _as_built(image, x, config, acts, net) -> dict:
    """The image as today's gateware runs it, by the RTL-checked model (`host.estimate`): cycles
    and DRAM bytes of one image on the golden activations of `x`, images/s at the clock, and
    the conv layers' share."""
    from host.estimate import accelerator_estimate

    layers: list = []
    total = accelerator_estimate(image, x, config, acts=acts, per_layer=layers)
    conv = sum(e["cycles"] for e, layer in zip(layers, net.layers) if layer.kind == "conv")
    records = [_layer_record(layer.name, e, config, layer.kind)
               for e, layer in zip(layers, net.layers)]
    macs = sum(e["macs"] for e in layers)
    return {"cycles": int(total["cycles"]), "conv_cycles": int(conv),
            "images_per_s": config.clock_mhz * 1e6 / total["cycles"],
            "conv_images_per_s": config.clock_mhz * 1e6 / conv if conv else None,
            "dram_read_bytes": int(total["dram_read_bytes"]),
            "dram_write_bytes": int(total["dram_write_bytes"]),
            "pe_utilization": macs / (config.pes * total["cycles"]),
            "model": "host.estimate.accelerator_estimate (its error against the RTL on the "
                     "system-test networks: scripts/check_model.py, "
                     "docs/results/model-check.json)",
            "bounds": _bounds(records),
            "layers": records}


def _layer_record(name: str, est: dict, config: SenseConfig, kind: str | None = None) -> dict:
    """One layer of an as-built report: the model's cycles and DRAM bytes, and its floors (the
    cycles no schedule of this datapath goes under): ``issue_cycles``, the grid's issue slots
    (its skipped groups taken out); ``write_floor``, its writes at one beat a cycle on each
    write channel (two with the write port; a fused add's and the pool pass's writes take one,
    so theirs is a loose floor); ``read_floor``, its reads at one beat a cycle on each read port
    (two with the weight port). ``floor`` is the largest of the three; ``bound`` names it. ``one_port_floor``
    counts the reads at one beat a cycle in all: the rate at which a layer's input enters the
    IFM store, which carries most of a layer's reads when its weights are small."""
    ports = 2 if config.weight_port else 1
    write_ports = 2 if config.write_port else 1
    read, write = int(est["dram_read_bytes"]), int(est["dram_write_bytes"])
    floors = {"issue": int(est.get("macs", 0)) // config.pes,
              "write": -(-write // (write_ports * BEAT_BYTES)),
              "read": -(-read // (ports * BEAT_BYTES))}
    bound = max(floors, key=floors.get)
    record = {"name": name} if kind is None else {"name": name, "kind": kind}
    return {**record, "cycles": int(est["cycles"]), "dram_bytes": read + write,
            "dram_read_bytes": read, "dram_write_bytes": write,
            "issue_cycles": floors["issue"], "write_floor": floors["write"],
            "read_floor": floors["read"], "floor": floors[bound], "bound": bound,
            "one_port_floor": max(floors["issue"], floors["write"], -(-read // BEAT_BYTES))}


def _bounds(records: list[dict]) -> dict:
    """The sums of `_layer_record`'s floors over a run's layers, against its layers' cycles:
    ``floor_cycles`` is what the layers would take if each ran at its own floor; the cycles
    above it (``over_floor``) are the schedule's (fill, drain, loads that do not overlap), and
    the floor's ``by_bound`` shares say which resource a faster datapath needs."""
    by_bound: dict = {}
    for r in records:
        by_bound[r["bound"]] = by_bound.get(r["bound"], 0) + r["floor"]
    cycles = sum(r["cycles"] for r in records)
    floor = sum(r["floor"] for r in records)
    return {"layer_cycles": cycles, "issue_cycles": sum(r["issue_cycles"] for r in records),
            "floor_cycles": floor, "over_floor": cycles - floor, "by_bound": by_bound,
            "one_port_floor_cycles": sum(r["one_port_floor"] for r in records)}
