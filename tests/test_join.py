"""Joined projection shortcuts (host.join, descriptor `in_split`): which blocks the rewrite
joins, that it is exact in float (numpy and onnxruntime), that quantization folds the two
input scales into the weights, that the images unpack to the joined network and compute its
outputs, that the model counts the smaller traffic, and what the image check refuses."""

import numpy as np
import pytest

from host import zoo
from host.batch import pack_batch, stack_outputs, stack_starts, unstack_logits
from host.buffers import store_key
from host.estimate import accelerator_estimate
from host.image import ImageError, describe, layer_table, pack_image, unpack_image
from host.join import join_fits, join_shortcuts
from host.model_files import forward_onnxruntime
from host.nn import Layer, Network, forward
from host.quant import prune_network, quantize, quantize_input, run_int
from hw.config import SenseConfig
from hw.layouts import layer_descriptor_layout
from sim.images import patch_descriptor
from sim.networks import conv_layer, join_network

SMALL = SenseConfig.preset("small")


def _joined(seed=0, n=2):
    rng = np.random.default_rng(seed)
    net = join_network(rng)
    joined = join_shortcuts(net)
    calib = rng.normal(size=(8,) + net.input_shape)
    xf = rng.normal(size=(n,) + net.input_shape)
    return net, joined, calib, xf


def test_the_rewrite_is_exact_in_float():
    """Both blocks join (step 1 and 2), the adds and shortcuts are gone, and the joined network
    computes the same float outputs, in numpy and through its ONNX form in onnxruntime."""
    net, joined, _, xf = _joined()
    assert len(joined.layers) == len(net.layers) - 4
    assert [(layer.name, layer.join) for layer in joined.layers if layer.join] == [
        ("a3+a_short", 1), ("b3+b_short", 2)]
    want = forward(net, xf)
    assert np.allclose(forward(joined, xf), want, atol=1e-9)
    got = forward_onnxruntime(joined, xf)[-1].reshape(len(xf), -1)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4)


def _block(rng, short_relu=False, short_kernel=1, c=32, extra_reader=False):
    layers = [conv_layer(rng, "a", 32, c, 3, [-1]),
              conv_layer(rng, "main", 32, 32, 1, [0], relu=False),
              conv_layer(rng, "short", 32, c, short_kernel, [-1], relu=short_relu),
              Layer("add", "sum", relu=True, inputs=[1, 2])]
    if extra_reader:            # the shortcut's output read by another layer too
        layers.append(Layer("add", "again", inputs=[3, 2]))
    return Network((c, 8, 8), layers, [], "block")


@pytest.mark.parametrize("kwargs, joins", [
    ({}, True),
    ({"short_relu": True}, False),          # not linear
    ({"short_kernel": 3}, False),           # not 1x1
    ({"c": 24}, False),                     # channels not whole beats
    ({"c": 16}, False),                     # one beat a pixel: not worth it
    ({"extra_reader": True}, False),        # the shortcut's output is read elsewhere
])
def test_which_blocks_join(kwargs, joins):
    net = _block(np.random.default_rng(1), **kwargs)
    assert any(layer.join for layer in join_shortcuts(net).layers) == joins


def test_join_fits():
    assert join_fits(64, (256, 56, 56), 2)
    assert not join_fits(64, (256, 56, 56), 3)            # not a gather step
    assert not join_fits(64, (8, 56, 56), 1)              # half a beat
    assert not join_fits(16 * 256, (256, 8, 8), 1)        # in_split past 8 bits
    assert not join_fits(64, (4096, 64, 64), 8)           # pitch past 16 bits


def test_resnet50_joins_its_four_projection_blocks():
    joined = join_shortcuts(zoo.build("resnet50"))
    assert [(layer.name, layer.join) for layer in joined.layers if layer.join] == [
        ("layer1.0.conv3+downsample", 1), ("layer2.0.conv3+downsample", 2),
        ("layer3.0.conv3+downsample", 2), ("layer4.0.conv3+downsample", 2)]


def test_a_config_joins_only_where_the_weights_stay():
    """On `zcu102` layer4.0's joined weights (2 MB) exceed the weight buffer: not joined."""
    joined = join_shortcuts(zoo.build("resnet50"), SenseConfig.preset("zcu102"))
    assert [layer.name for layer in joined.layers if layer.join] == [
        "layer1.0.conv3+downsample", "layer2.0.conv3+downsample", "layer3.0.conv3+downsample"]
    assert "layer4.0.downsample" in [layer.name for layer in joined.layers]


def test_quantization_folds_the_input_scales():
    """The joined conv's input scale is 1 and its weight columns carry the two inputs' scales:
    its integer output, times the output scale, follows the float output of the pruned
    network within a few output steps."""
    _, joined, calib, xf = _joined()
    qnet = quantize(joined, calib, group=SMALL.group)
    j = next(i for i, q in enumerate(qnet.layers) if q.join)
    assert qnet.layers[j].in_scale == 1.0 and qnet.layers[j].join == 1
    scale = qnet.layers[j].out_scale
    got = run_int(qnet, quantize_input(qnet, xf), return_all=True)[j] * scale
    want = forward(prune_network(joined, SMALL.group)[0], xf, return_all=True)[j]
    assert np.abs(got - want).max() < 4 * scale
    assert np.abs(want).max() > 50 * scale


def test_joined_images_compute_the_network_packed():
    """The joined convs' descriptors: the first input's beats (`in_split`), the step and the
    pitch of that many rows of the second input, its offset (`exec.in2_offset`); the image
    unpacks to the joined network, which computes the same outputs; no joined conv is a kept
    input; `sense inspect` names the join."""
    _, joined, calib, xf = _joined()
    qnet = quantize(joined, calib, group=SMALL.group)
    x = quantize_input(qnet, xf)
    for order in ("weight", "ifm"):
        image = pack_image(qnet, SMALL, order=order)
        descs = layer_table(image, SMALL)[1]
        got = [(d.in_split, d.in_step, d.in_pitch, d.in_channels) for d in descs if d.in_split]
        assert got == [(2, 1, 1 * 24 * 32 // 16, 64), (2, 2, 2 * 24 * 48 // 16, 80)]
        assert all(store_key(d, SMALL) is None for d in descs if d.in_split)
        back = unpack_image(image, SMALL)
        assert [q.join for q in back.layers] == [q.join for q in qnet.layers]
        assert np.array_equal(run_int(back, x), run_int(qnet, x))
        notes = [layer.get("input_join") for layer in describe(image, SMALL)["layers"]]
        assert [n for n in notes if n] == [[-1, 1], [1, 2]]


def test_the_model_counts_the_smaller_traffic():
    net, joined, calib, xf = _joined()
    runs = []
    for n in (joined, net):
        q = quantize(n, calib, group=SMALL.group)
        runs.append(accelerator_estimate(pack_image(q, SMALL), quantize_input(q, xf)[0], SMALL))
    one, plain = runs
    assert one["dram_read_bytes"] + one["dram_write_bytes"] < 0.7 * (
        plain["dram_read_bytes"] + plain["dram_write_bytes"])
    assert one["cycles"] < plain["cycles"]


_STEP_AT = layer_descriptor_layout()["in_step"].offset // 8


@pytest.mark.parametrize("layer, offset, fmt, value", [
    (1, _STEP_AT + 3, "<B", 1),         # in_split: not the first input's channels
    (1, _STEP_AT + 3, "<B", 4),         # the whole pixel
    (1, _STEP_AT, "<B", 2),             # a step whose view is not the second input's
    (1, _STEP_AT + 1, "<H", 7),         # not the pitch of one row of the second input
    (3, _STEP_AT, "<B", 3),             # not a gather step
    (0, _STEP_AT, "<I", 1 | 4 << 8 | 2 << 24),     # on a 3x3 conv
])
def test_unpack_refuses_a_join_that_does_not_fit(layer, offset, fmt, value):
    _, joined, calib, _ = _joined()
    image = pack_image(quantize(joined, calib, group=SMALL.group), SMALL)
    with pytest.raises(ImageError, match="joined input"):
        unpack_image(patch_descriptor(image, layer, offset, fmt, value), SMALL)


def test_pack_reads_the_second_input_where_it_lies():
    """A joined conv's `exec.in2_offset` is its second input's tensor: the network input for
    the first block, the first block's output for the second."""
    _, joined, calib, _ = _joined()
    descs = layer_table(pack_image(quantize(joined, calib, group=SMALL.group), SMALL), SMALL)[1]
    assert descs[1].g("exec.in2_offset") == descs[0].in_offset
    assert descs[3].g("exec.in2_offset") == descs[1].out_offset


@pytest.mark.parametrize("batch", [1, 3])
def test_a_stacked_tail_with_joins_computes_the_whole_networks_logits(batch):
    """Batched from every start a stacked tail may take, joined convs included (their second
    input's slots `join` times their first's): every image's logits exactly as the whole
    joined network gives them, and the packed suffix unpacks to the same network."""
    _, joined, calib, xf = _joined(n=batch)
    qnet = quantize(joined, calib, group=SMALL.group)
    x = quantize_input(qnet, xf)
    starts = stack_starts(qnet)
    assert starts[0] == 2                   # a tail with the stride-2 joined conv
    for start in starts:
        split, _, suffix = pack_batch(qnet, SMALL, batch, start=start)
        outs = [run_int(split.prefix, xi[None], return_all=True)[-1][0] for xi in x]
        stacked = stack_outputs(split, outs)
        y = run_int(split.suffix, stacked[None])[0]
        assert np.array_equal(unstack_logits(split, y), run_int(qnet, x))
        assert np.array_equal(run_int(unpack_image(suffix, SMALL), stacked[None])[0], y)


def test_sense_pack_joins_unless_told_not_to(tmp_path):
    """`sense pack` joins a model file's projection shortcuts; `--no-join` keeps them."""
    from host.model_files import save_npz
    from sense.cli import main

    net, _, calib, _ = _joined()
    save_npz(net, tmp_path / "m.npz")
    np.savez(tmp_path / "calib.npz", x=calib)
    counts = []
    for extra in ([], ["--no-join"]):
        out = tmp_path / f"m{len(extra)}.img"
        assert main(["pack", str(tmp_path / "m.npz"), "-o", str(out), "--config", "small",
                     "--calib", str(tmp_path / "calib.npz"), *extra]) == 0
        counts.append(len(layer_table(out.read_bytes(), SMALL)[1]))
    assert counts == [len(net.layers) - 4, len(net.layers)]
