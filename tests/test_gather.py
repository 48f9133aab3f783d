"""Input gathers (host.image `gather_step`, descriptor `in_step` / `in_pitch`): which layers
the packer gathers, that their images unpack to the network packed and compute its outputs,
that the model counts the smaller reads, and what the image check refuses."""

import numpy as np
import pytest

from host.buffers import store_key
from host.estimate import accelerator_estimate
from host.image import ImageError, gather_step, layer_table, pack_image, unpack_image
from host.nn import Network
from host.quant import quantize, quantize_input, run_int
from hw.config import SenseConfig
from hw.layouts import layer_descriptor_layout
from sim.images import patch_descriptor
from sim.networks import conv_layer, gather_network

SMALL = SenseConfig.preset("small")
ZCU = SenseConfig.preset("zcu102")


def _q(net, config=SMALL, seed=0):
    rng = np.random.default_rng(seed)
    qnet = quantize(net, rng.normal(size=(4,) + net.input_shape), group=config.group)
    return qnet, quantize_input(qnet, rng.normal(size=(2,) + net.input_shape))


@pytest.mark.parametrize("c, r, stride, pad, step", [
    (64, 1, 2, 0, 2), (32, 1, 4, 0, 4), (64, 1, 8, 0, 8),     # whole beats, two or more
    (16, 1, 2, 0, 0),                                         # one beat a pixel: not worth it
    (20, 1, 2, 0, 0),                                         # pixels not whole beats
    (64, 3, 2, 1, 0), (64, 1, 2, 1, 0), (64, 1, 3, 0, 0), (64, 1, 1, 0, 0)])
def test_which_convolutions_are_gathered(c, r, stride, pad, step):
    rng = np.random.default_rng(1)
    layer = conv_layer(rng, "c", 8, c, r, [-1], stride=stride, pad=pad)
    qnet, _ = _q(Network((c, 16, 16), [layer], [], "one"))
    assert gather_step((c, 16, 16), qnet.layers[0], SMALL) == step


def test_gathered_images_compute_the_network_packed():
    """The gathered layers' descriptors are stride-1 views with the pitch of `step` input
    rows, the image unpacks to the network packed (its strides and shapes), which computes
    the same outputs, and no gathered layer is a kept input."""
    qnet, x = _q(gather_network(np.random.default_rng(2)))
    image = pack_image(qnet, SMALL)
    descs = layer_table(image, SMALL)[1]
    (c, h, w), pixel = gather_network(np.random.default_rng(2)).input_shape, 64
    assert [(d.in_step, d.in_pitch, d.stride, d.in_h, d.in_w) for d in descs[:2]] == [
        (2, 2 * w * pixel // 16, 1, 24, 24), (4, 4 * w * pixel // 16, 1, 12, 12)]
    assert all(store_key(d, SMALL) is None for d in descs[:3])
    back = unpack_image(image, SMALL)
    assert [q.stride for q in back.layers[:3]] == [2, 4, 2]
    assert np.array_equal(run_int(back, x), run_int(qnet, x))
    plain = unpack_image(pack_image(qnet, SMALL, gather=False), SMALL)
    assert np.array_equal(run_int(plain, x), run_int(qnet, x))


def test_the_model_counts_the_gathered_reads():
    """ResNet-50's layer2.0 shortcut (56x56x256, 1x1 stride 2): gathered, it reads only
    the pixels it uses and, the view fitting the IFM store, runs in fewer cycles."""
    rng = np.random.default_rng(3)
    net = Network((256, 56, 56), [conv_layer(rng, "shortcut", 512, 256, 1, [-1], relu=False,
                                             stride=2)], [], "shortcut")
    qnet, x = _q(net, ZCU)
    gathered = accelerator_estimate(pack_image(qnet, ZCU), x[0], ZCU)
    whole = accelerator_estimate(pack_image(qnet, ZCU, gather=False), x[0], ZCU)
    # (not gathered, it reads the input rows its bands use: every other one, each whole)
    assert gathered["dram_read_bytes"] <= whole["dram_read_bytes"] - 256 * 28 * 28
    assert gathered["cycles"] < 0.8 * whole["cycles"]


@pytest.mark.parametrize("layer, field, value", [
    (0, "in_pitch", 1),        # not the pitch of two input rows
    (0, "in_step", 4),         # a view that is not the input's every 4th pixel
    (3, "in_step", 2),         # on an ADD
])
def test_unpack_refuses_a_gather_that_does_not_fit(layer, field, value):
    qnet, _ = _q(gather_network(np.random.default_rng(2)))
    image = pack_image(qnet, SMALL, fuse_add=False)
    assert layer_table(image, SMALL)[1][3].kind == 2            # the ADD
    with pytest.raises(ImageError, match="input gather|gather"):
        f = layer_descriptor_layout()[field]
        fmt = {8: "<B", 16: "<H"}[f.shape.width]
        unpack_image(patch_descriptor(image, layer, f.offset // 8, fmt, value), SMALL)
