"""Batches through the FC layers (host.batch): the split networks compute every image's logits
exactly as the whole network does; what cannot be batched is refused by name."""

import numpy as np
import pytest

from host import zoo
from host.batch import BatchError, pack_batch, split_batch, stack_outputs, unstack_logits
from host.image import ImageError, layer_table, pack_image
from host.quant import quantize, quantize_input, run_int
from hw.config import SenseConfig
from sim.networks import BATCH_NETWORK, random_network

CONFIG = SenseConfig.preset("small")


def _quantized(net, seed=0, n=3):
    rng = np.random.default_rng(seed)
    qnet = quantize(net, rng.normal(size=(8,) + net.input_shape), group=CONFIG.group)
    return qnet, quantize_input(qnet, rng.normal(size=(n,) + net.input_shape))


@pytest.mark.parametrize("which", ["head", "mini"])
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_split_computes_the_whole_networks_logits(which, batch):
    rng = np.random.default_rng(batch)
    net = (random_network(rng, *BATCH_NETWORK, "head") if which == "head"
           else zoo.build("mini", seed=batch))
    qnet, x = _quantized(net, batch, n=min(batch, 3))
    split = split_batch(qnet, batch, CONFIG.group)
    outs = [run_int(split.prefix, xi[None], return_all=True)[-1][0] for xi in x]
    # slots of images not given hold junk: the given images' logits must not depend on it
    junk = [np.full(split.fc_input, 77, np.int8)] * (batch - len(x))
    y = run_int(split.suffix, stack_outputs(split, outs + junk)[None])[0]
    assert np.array_equal(unstack_logits(split, y)[:len(x)], run_int(qnet, x))
    assert split.slot_bytes % 64 == 0
    assert split.suffix.input_shape[1] == split.slot * batch


def test_prefix_output_and_suffix_input_are_placed_first():
    qnet, _ = _quantized(random_network(np.random.default_rng(1), *BATCH_NETWORK, "head"))
    split, prefix, suffix = pack_batch(qnet, CONFIG, 4)
    _, p = layer_table(prefix, CONFIG)
    _, s = layer_table(suffix, CONFIG)
    assert p[-1].out_offset == 0 and all(d.in_offset > 0 for d in p)
    assert s[0].in_offset == 0 and all(d.out_offset >= split.slot_bytes * 4 for d in s)
    # the first FC layer is an H x 1 kernel over rows of W * C channels
    assert (s[0].kernel_h, s[0].kernel_w, s[0].in_w) == (4, 1, 1)
    with pytest.raises(ImageError, match="first must be input or output"):
        pack_image(qnet, CONFIG, first="middle")


@pytest.mark.parametrize("specs, message", [
    ([("conv", 8, 3, 1, 1, True, None)], "no fully-connected layer"),
    ([("fc", 8, 0, 1, 0, True, None)], "the first layer is fully connected"),
    ([("conv", 6, 3, 1, 1, True, None), ("fc", 8, 0, 1, 0, True, None)],
     "not a multiple of M=4"),
    ([("conv", 8, 3, 1, 1, True, None), ("fc", 8, 0, 1, 0, True, None),
      ("conv", 4, 1, 1, 0, True, None)], "only a chain of fully-connected layers"),
])
def test_what_cannot_be_batched_is_named(specs, message):
    qnet, _ = _quantized(random_network(np.random.default_rng(2), (4, 4, 4), specs, "bad"))
    with pytest.raises(BatchError, match=message):
        split_batch(qnet, 2, CONFIG.group)


def test_batch_size_must_be_positive():
    qnet, _ = _quantized(random_network(np.random.default_rng(3), *BATCH_NETWORK, "head"))
    with pytest.raises(BatchError, match="at least 1 image"):
        split_batch(qnet, 0, CONFIG.group)
