"""The whole-network planner and estimate (host.plan), the built-in networks (host.zoo) and the
quantization of layer graphs."""

import numpy as np
import onnxruntime as ort
import pytest

from host import perf, zoo
from host.buffers import ConvLayer, band_geometry, fits_half_store
from host.digits import DEFAULT_MODEL
from host.image import layer_table, pack_image
from host.model_files import load_model, save_onnx
from host.nn import Network, forward
from host.pipeline import prepare_model
from host.plan import Target, allocate, plan_network
from host.quant import quantize, quantize_input, run_int
from hw.config import SenseConfig
from hw.layouts import LayerFlags
from sim.networks import conv_layer, vgg_style_network

ZCU = SenseConfig.preset("zcu102")


# -- the built-in networks ----------------------------------------------------------------------

#: Published sizes: parameters (weights only) and multiply-accumulates per 224x224 image.
PUBLISHED = {"alexnet": (61.1e6, 0.71e9), "vgg16": (138.3e6, 15.47e9),
             "resnet50": (25.5e6, 4.09e9), "googlenet": (7.0e6, 1.58e9)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_zoo_networks_have_their_published_size(name):
    net = zoo.build(name, weights="none")
    params = sum(layer.weight.size for layer in net.layers if layer.has_weights)
    plan = plan_network(net, Target(ZCU))
    want_params, want_macs = PUBLISHED[name]
    assert abs(params / want_params - 1) < 0.01, params
    assert abs(plan["total"]["gmacs_per_image"] * 1e9 / want_macs - 1) < 0.02
    assert net.out_shapes()[-1] == (1000, 1, 1)


@pytest.mark.parametrize("name", sorted(zoo.NETWORKS))
def test_zoo_networks_round_trip_through_onnx(name, tmp_path):
    """Written as ONNX and imported back, a scaled-down network computes what onnxruntime
    computes on the file (logits, before softmax)."""
    net = zoo.build(name, width=0.125, size=96 if name == "alexnet" else 64, seed=3)
    net.host_ops = []
    save_onnx(net, tmp_path / "m.onnx")
    back = load_model(tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(2, *net.input_shape)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": x})[0].reshape(2, -1)
    got = forward(back, x.astype(np.float64))
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_unknown_network_is_refused():
    with pytest.raises(ValueError, match="unknown network 'resnet51'; known: alexnet"):
        zoo.build("resnet51")


# -- the estimate equals today's performance model where today's hardware runs a layer ----------

@pytest.mark.parametrize("preset", ["small", "zcu102"])
def test_estimate_is_the_performance_model_for_layers_todays_hardware_runs(preset):
    """For the bundled model, which today's hardware runs whole, every layer's estimate is
    `host.perf.layer_estimate` on the descriptor the packer writes (in the order the planner
    chose), for an input without zeros: the same figure, no second model."""
    config = SenseConfig.preset(preset)
    prepared = prepare_model(config, DEFAULT_MODEL, cluster=False)
    net = load_model(DEFAULT_MODEL)
    plan = plan_network(net, Target(config, ifm="copies", ports=1))   # today: one 128-bit port
    _, descs = layer_table(prepared.image, config)
    shapes = net.shapes()
    for est, d, q, shape in zip(plan["layers"], descs, prepared.qnet.layers, shapes):
        assert est["model"] == "perf.layer_estimate"
        flags = int(d.flags) & ~LayerFlags.IFM_STATIONARY.value
        if est["order"] == "ifm":
            flags |= LayerFlags.IFM_STATIONARY.value
        conv = ConvLayer(x=np.ones(shape, np.int8), w=q.w, bias=q.bias, mult=q.mult,
                         shift=q.shift, stride=q.stride, pad=q.pad)
        want = perf.layer_estimate(d.replace(flags=flags), conv, config)
        assert est["cycles"] == want["cycles"]
        assert est["dram_read_bytes"] == want["dram_read_bytes"]
        assert est["dram_write_bytes"] == want["dram_write_bytes"]


def test_estimate_takes_the_packers_prefetch_bands():
    """A conv the packer cuts into prefetch bands (the `vgg` test network's fourth layer on the
    small preset: it fits the IFM store in one band) gets the estimate of the banded
    descriptor, and every layer the estimate runs through the performance model gets the
    packer's descriptor's figure."""
    config = SenseConfig.preset("small")
    rng = np.random.default_rng(5)
    net = vgg_style_network(rng)
    calib = rng.standard_normal((3,) + tuple(net.input_shape)).astype(np.float32)
    qnet = quantize(net, calib, group=config.group)
    _, descs = layer_table(pack_image(qnet, config), config)
    _, unbanded = layer_table(pack_image(qnet, config, prefetch_bands=False), config)
    plan = plan_network(net, Target(config, ifm="copies", ports=1))
    checked = []
    for i, (est, d, q) in enumerate(zip(plan["layers"], descs, qnet.layers)):
        if est["model"] != "perf.layer_estimate":
            continue
        assert est["order"] == ("ifm" if d.ifm_stationary else "weight")
        conv = ConvLayer(x=np.ones(net.in_shapes()[i][0], np.int8), w=q.w, bias=q.bias,
                         mult=q.mult, shift=q.shift, stride=q.stride, pad=q.pad)
        assert est["cycles"] == perf.layer_estimate(d, conv, config)["cycles"]
        assert est["band_rows"] == (d.g("exec.band_rows") or d.out_h)
        checked.append(i)
    prefetched = [i for i in checked
                  if descs[i].g("exec.band_rows") and not unbanded[i].g("exec.band_rows")]
    assert prefetched == [3]


def _packed_with_and_without_bands(layers, shape, config, **pack):
    rng = np.random.default_rng(0)
    net = Network(shape, layers(rng), [], "one-tensor")
    qnet = quantize(net, rng.normal(size=(2,) + shape), group=config.group)
    return qnet, layer_table(pack_image(qnet, config, **pack), config)[1], \
        layer_table(pack_image(qnet, config, prefetch_bands=False, **pack), config)[1]


def test_banded_layers_get_the_fastest_half_store_band():
    """A layer whose input exceeds the IFM store (ResNet-50's layer2.0 shortcut: 56x56x256, 1x1
    stride 2) runs in the band height fitting half the store that the model finds fastest, not
    the planner's largest one (not gathered: its 28x28 view fits the store whole). With one
    write channel: with `zcu102`'s two its writes no longer set the pace, and both bands tie."""
    zcu = ZCU.replace(write_port=False)
    qnet, (d,), (planned,) = _packed_with_and_without_bands(
        lambda rng: [conv_layer(rng, "shortcut", 512, 256, 1, [-1], relu=False, stride=2)],
        (256, 56, 56), zcu, gather=False)
    q = qnet.layers[0]
    ones = ConvLayer(x=np.ones((256, 56, 56), np.int8), w=q.w, bias=q.bias, mult=q.mult,
                     shift=q.shift, stride=q.stride, pad=q.pad)
    cycles = {}
    for n in range(1, d.out_h):
        banded = d.replace(graph={**d.graph, "exec.band_rows": n})
        if fits_half_store(band_geometry(banded, zcu), zcu):
            cycles[n] = perf.layer_estimate(banded, ones, zcu)["cycles"]
    assert planned.g("exec.band_rows") in cycles
    assert d.g("exec.band_rows") == min(cycles, key=cycles.get)
    assert cycles[d.g("exec.band_rows")] < cycles[planned.g("exec.band_rows")]


def test_banded_layers_take_the_faster_tile_order():
    """A layer in bands with more than one k tile whose weights all fit (ResNet-50's layer2.0
    conv1: 56x56x256 -> 128, 1x1) runs in the tile order the model finds faster, each with its
    fastest band: IFM-stationary (every pixel tile written whole), where the planner's study
    estimate, which does not count the writer's per-segment costs, picks weight-stationary.
    With one write channel: with `zcu102`'s two the segments no longer set the pace."""
    zcu = ZCU.replace(write_port=False)
    qnet, (d,), _ = _packed_with_and_without_bands(
        lambda rng: [conv_layer(rng, "reduce", 128, 256, 1, [-1])], (256, 56, 56), zcu)
    q = qnet.layers[0]
    ones = ConvLayer(x=np.ones((256, 56, 56), np.int8), w=q.w, bias=q.bias, mult=q.mult,
                     shift=q.shift, stride=q.stride, pad=q.pad)

    def fastest(flags):
        cycles = []
        for n in range(1, d.out_h):
            banded = d.replace(flags=flags, graph={**d.graph, "exec.band_rows": n})
            if fits_half_store(band_geometry(banded, zcu), zcu):
                cycles.append(perf.layer_estimate(banded, ones, zcu)["cycles"])
        return min(cycles)

    ifm = int(d.flags) | LayerFlags.IFM_STATIONARY.value
    weight = int(d.flags) & ~LayerFlags.IFM_STATIONARY.value
    assert d.g("exec.band_rows") and d.ifm_stationary
    assert perf.layer_estimate(d, ones, zcu)["cycles"] == fastest(ifm) < fastest(weight)


def test_a_kept_input_gives_way_to_bands_where_the_pair_is_faster():
    """Two 1x1 convs reading one 56x56x64 tensor (ResNet-50's layer1.0 conv1 and shortcut) on
    one port: in one band the second finds the input in the store (INPUT_KEPT); the packer
    instead cuts the first into prefetch bands, and the second loads the input again, because
    the model finds the pair faster so. (With the weight port the first's core follows its
    load in one band, and keeping pays.)"""
    layers = lambda rng: [conv_layer(rng, "reduce", 64, 64, 1, [-1]),  # noqa: E731
                          conv_layer(rng, "shortcut", 256, 64, 1, [-1], relu=False)]
    one_port = ZCU.replace(weight_port=False, write_port=False)
    _, descs, one_band = _packed_with_and_without_bands(layers, (64, 56, 56), one_port)
    assert [d.g("exec.band_rows") for d in one_band] == [0, 0]
    assert one_band[1].has(LayerFlags.INPUT_KEPT)
    assert descs[0].g("exec.band_rows") and not descs[1].has(LayerFlags.INPUT_KEPT)


# -- tiling -------------------------------------------------------------------------------------

def test_tiled_layers_fit_and_read_what_they_must():
    """VGG-16 on zcu102: every layer's bands fit the IFM memory, IFM-stationary layers read their
    input once (halo rows included) and write their output once."""
    net = zoo.build("vgg16", weights="none")
    target = Target(ZCU, resident=False, fuse_add=False)
    plan = plan_network(net, target)
    for est, ins, out, layer in zip(plan["layers"], net.in_shapes(), net.out_shapes(),
                                    net.layers):
        if est["kind"] != "conv":
            continue
        c, h, w = ins[0]
        row = w * -(-c // 4) * 4
        rows = min((est["band_rows"] - 1) * layer.stride + layer.weight.shape[2], h + 2)
        assert rows * row <= target.ifm_bytes
        assert est["dram_write_bytes"] == out[1] * out[2] * out[0]
        assert est["dram_read_bytes"] >= h * row
        if est["bands"] == 1:
            assert est["dram_read_bytes"] < h * row + 3 * 2**20
    fcs = [e for e in plan["layers"] if e["kind"] == "fc"]
    # 25088 x 4096 weights cannot fit; one k tile's (64 x 25088 at 1/2) does, so the IFM store
    # (7 x 7 x 512 input on chip once) runs it as a plain layer streaming the weight ring.
    assert fcs[0]["model"] == "perf.layer_estimate" and fcs[0]["k_block_tiles"] == 64


def test_batch_amortises_fully_connected_weights():
    net = zoo.build("vgg16", weights="none")
    one = plan_network(net, Target(ZCU), batch=1)["total"]
    eight = plan_network(net, Target(ZCU), batch=8)["total"]
    assert eight["images_per_s"] > 1.2 * one["images_per_s"]
    assert eight["dram_mb_per_image"] < one["dram_mb_per_image"] - 50


def test_ifm_skip_speeds_up_compute_bound_layers():
    net = zoo.build("vgg16", weights="none")
    dense = plan_network(net, Target(ZCU, ports=4))["conv"]["images_per_s"]
    half = plan_network(net, Target(ZCU, ports=4), ifm_skip=0.5)["conv"]["images_per_s"]
    assert 1.2 < half / dense < 4 / 3 + 0.01        # issued groups cost 2 cycles, skipped 1


def test_more_bandwidth_never_hurts():
    net = zoo.build("resnet50", weights="none")
    fps = [plan_network(net, Target(ZCU, ports=p))["total"]["images_per_s"] for p in (1, 2, 4)]
    assert fps[0] <= fps[1] <= fps[2]


# -- activation memory ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet50", "googlenet"])
def test_activation_allocation_never_overlaps_live_tensors(name):
    net = zoo.build(name, weights="none")
    alloc = allocate(net, 4)
    shapes = [tuple(net.input_shape)] + net.out_shapes()
    size = [s[1] * s[2] * -(-s[0] // 4) * 4 for s in shapes]
    n = len(net.layers)
    concat_of = {}
    for i, layer in enumerate(net.layers):
        if layer.kind == "concat":
            for j in net.sources(i):
                concat_of[j + 1] = i + 1
    last = {t: (n if t == n else t - 1) for t in range(n + 1)}
    for i in range(n):
        for j in net.sources(i):
            last[j + 1] = max(last[j + 1], i)
    roots = [t for t in range(n + 1) if t not in concat_of]
    off = alloc["offsets"]
    for a in roots:
        for b in roots:
            if a < b and not (last[a] < b - 1):
                assert off[a] + size[a] <= off[b] or off[b] + size[b] <= off[a], (a, b)
    for t, c in concat_of.items():
        assert off[t] == off[c]             # a concat input lives inside the concat's tensor
    assert alloc["bytes"] < alloc["bytes_without_reuse"] / 3


# -- quantized graphs ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet50", "googlenet"])
def test_quantized_graph_follows_the_float_network(name):
    """A scaled-down residual / inception network, quantized with calibration data: the int8
    golden model's output (dequantized) follows the float output; concat inputs share one scale
    and every residual add's multipliers come from its own scales."""
    net = zoo.build(name, width=0.125, size=48, seed=2)
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(8, *net.input_shape))
    qnet = quantize(net, calib, group=4)
    x = rng.normal(size=(4, *net.input_shape))
    got = run_int(qnet, quantize_input(qnet, x)).astype(np.float64) * qnet.layers[-1].out_scale
    from host.quant import prune_network
    want = forward(prune_network(net, 4)[0], x)
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.98
    for i, layer in enumerate(qnet.layers):
        if layer.kind == "concat":
            scales = {qnet.layers[j].out_scale for j in qnet.sources(i)}
            assert scales == {layer.out_scale}
        if layer.kind == "add":
            assert len(layer.mult) == 2 and 1 <= layer.shift[0] <= 47


def test_fill_drain_cycles_is_the_recurrences_fixed_cost_for_long_tiles():
    # The tiled estimate adds perf.fill_drain_cycles per extra input-channel block: it must be
    # what the exact recurrence charges beyond the compute of long, full tiles.
    for cfg in (SenseConfig.preset("small"), SenseConfig.preset("zcu102"),
                SenseConfig(rows=16, cols=16)):
        for order in (False, True):
            got = perf.tile_cycles(np.full(10, 200), np.full((10, 2), 2), 3, cfg, order)
            assert got["cycles"] == 30 * 200 + perf.fill_drain_cycles(cfg)
