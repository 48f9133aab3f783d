"""Batches through the FC layers (host.batch): the split networks compute every image's logits
exactly as the whole network does; what cannot be batched is refused by name."""

import numpy as np
import pytest

from host import zoo
from host.batch import (BatchError, pack_batch, split_batch, stack_outputs, stack_starts,
                        stacked_slot, unstack_logits)
from host.image import ImageError, layer_table, pack_image, unpack_image
from host.quant import quantize, quantize_input, run_int
from hw.config import SenseConfig
from host.nn import Layer, Network
from sim.networks import (BATCH_NETWORK, conv_layer, inception_network, random_network,
                          wide_tail_network,
                          stacked_tail_network)

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


# -- a stacked tail ------------------------------------------------------------------------------

def _stacked_tail(seed=0, n=3):
    return _quantized(stacked_tail_network(np.random.default_rng(seed)), seed, n)


@pytest.mark.parametrize("separators", [False, True])
@pytest.mark.parametrize("batch", [1, 3, 4])
def test_a_stacked_tail_computes_the_whole_networks_logits(batch, separators):
    """From every layer a tail may start at: the stacked suffix's golden run gives every
    image's logits exactly, whatever the prefix runs left in the separator rows' bytes before
    the driver zeroes them (stack_outputs zeroes them too), and the packed suffix's descriptors
    carry the separators that unpack back to the same network."""
    qnet, x = _stacked_tail(batch, n=min(batch, 3))
    starts = stack_starts(qnet)
    assert starts == [1, 6, 10]         # after the stem, after the first block, at GAP
    for start in starts:
        split, _, suffix = pack_batch(qnet, CONFIG, batch, start=start, separators=separators)
        outs = [run_int(split.prefix, xi[None], return_all=True)[-1][0] for xi in x]
        junk = [np.full(split.fc_input, 77, np.int8)] * (batch - len(x))
        stacked = stack_outputs(split, outs + junk)
        y = run_int(split.suffix, stacked[None])[0]
        assert np.array_equal(unstack_logits(split, y)[:len(x)], run_int(qnet, x))
        assert np.array_equal(run_int(unpack_image(suffix, CONFIG), stacked[None])[0], y)
        assert split.slot_bytes % 64 == 0 and split.valid_bytes <= split.slot_bytes


def test_the_stacked_slot_keeps_images_apart():
    """The tail after the stem (8x8 maps, a 3x3 stride-2 conv, then 3x3 stride-1 on 4x4): 8
    rows leave no zero row above an image, 9 is odd for the stride, so 10 rows a slot (5 after
    the stride: one separator row under every 4x4 map); each conv writes its separator rows."""
    qnet, _ = _stacked_tail()
    assert stacked_slot(qnet, 1, 3, CONFIG.group, CONFIG.cols, separators=True) == (10, False)
    split = split_batch(qnet, 3, CONFIG.group, start=1, cols=CONFIG.cols, separators=True)
    seps = {q.name: q.sep for q in split.suffix.layers if q.kind == "conv"}
    assert seps["a.reduce"] == (10, 8) and seps["b.mid"] == (5, 4) and seps["fc"] is None
    # GAP: a window of the whole 5-row slot a pixel, dividing by the image's 4 x 4
    pool = [q for q in split.suffix.layers if q.kind == "avgpool"][0]
    assert (pool.pool.kernel, pool.pool.stride, pool.pool_count) == ((5, 4), (5, 1), 16)


def test_a_stacked_tail_pads_each_image_without_separators():
    """Without separator rows (the default where every conv gives whole images): the slot is
    the image's 8 rows, 4 after the stride; every padded conv knows its images' rows and none
    writes separators; the GAP's window is the image's; no byte of a slot is left to zero."""
    qnet, _ = _stacked_tail()
    assert stacked_slot(qnet, 1, 3, CONFIG.group, CONFIG.cols) == (8, True)
    split = split_batch(qnet, 3, CONFIG.group, start=1, cols=CONFIG.cols)
    convs = {q.name: q for q in split.suffix.layers if q.kind == "conv"}
    assert all(q.sep is None for q in convs.values())
    assert convs["a.mid"].image_rows == (8, 4) and convs["b.mid"].image_rows == (4, 4)
    assert all(q.image_rows is None for q in convs.values() if not q.pad)
    pool = [q for q in split.suffix.layers if q.kind == "avgpool"][0]
    assert (pool.pool.kernel, pool.pool.stride, pool.pool_count) == ((4, 4), (4, 1), 16)
    assert split.valid_bytes == split.slot_bytes


def test_what_a_stacked_tail_cannot_take_is_named():
    rng = np.random.default_rng(4)
    net = Network((8, 8, 8), [conv_layer(rng, "a", 8, 8, 3, [-1]),
                              Layer("maxpool", "pool", pool=(3, 1, 1), inputs=[0]),
                              conv_layer(rng, "b", 8, 8, 3, [1]), Layer("gap", "gap"),
                              Layer("fc", "fc", rng.normal(size=(4, 8)), np.zeros(4))],
                  [], "pooled")
    qnet, _ = _quantized(net)
    with pytest.raises(BatchError, match="layer 1 .pool.: a maxpool cannot run on stacked"):
        split_batch(qnet, 2, CONFIG.group, start=1, cols=CONFIG.cols)
    with pytest.raises(BatchError, match="does not end in a global average pool"):
        split_batch(_quantized(random_network(rng, (8, 8, 8), [("conv", 8, 3, 1, 1, True, None)] * 2,
                                              "convs"))[0], 2, CONFIG.group, start=1)
    qnet, _ = _quantized(inception_network(rng))          # layer 7: the modules' concat
    with pytest.raises(BatchError, match="prefix would end in a concat .layer 7."):
        split_batch(qnet, 2, CONFIG.group, start=8, cols=CONFIG.cols)
    qnet, _ = _stacked_tail()
    with pytest.raises(BatchError, match="reads a tensor from before layer 6"):
        split_batch(qnet, 2, CONFIG.group, start=7, cols=CONFIG.cols)


def test_image_rows_in_the_descriptors_are_checked_and_shown():
    """The suffix's padded convs carry their images' rows in the descriptor (links.image_rows /
    image_out_rows / image_step); `sense inspect` names them; an image whose rows do not tile
    the map, whose step does not match its bands, or that puts them on a pooling layer, is
    refused by name."""
    import struct
    import zlib

    from host.image import HEADER_BYTES, describe, layer_note
    from hw.layouts import DESCRIPTOR_BYTES, LayerDescriptor

    qnet, _ = _stacked_tail()
    _, _, suffix = pack_batch(qnet, CONFIG, 3, start=1)
    _, descs = layer_table(suffix, CONFIG)
    padded = [i for i, d in enumerate(descs) if d.g("links.image_rows")]
    assert padded and all(descs[i].pad for i in padded)
    entries = describe(suffix, CONFIG)["layers"]
    assert "stacked images of 8 rows, each padded" in layer_note(entries[padded[0]])

    def with_fields(i, **graph):
        d = descs[i].replace(graph={**descs[i].graph, **graph})
        b = bytearray(suffix)
        at = HEADER_BYTES + i * DESCRIPTOR_BYTES
        b[at:at + DESCRIPTOR_BYTES] = d.to_bytes()
        b[60:64] = struct.pack("<I", zlib.crc32(bytes(b[64:])))
        b[56:60] = struct.pack("<I", zlib.crc32(bytes(b[:56])))
        return bytes(b)

    i = padded[0]
    d = descs[i]
    for graph in ({"links.image_rows": d.in_h + 1}, {"links.image_out_rows": 3},
                  {"links.image_step": d.g("links.image_out_rows") - 1}):
        with pytest.raises(ImageError, match=f"layer {i}: images of"):
            unpack_image(with_fields(i, **graph), CONFIG)
    pool = next(j for j, q in enumerate(qnet.layers[1:]) if q.kind == "gap")
    with pytest.raises(ImageError, match=f"layer {pool}: image rows .* not a conv"):
        unpack_image(with_fields(pool, **{"links.image_rows": 4}), CONFIG)
    assert LayerDescriptor().with_image_step() == LayerDescriptor()


def test_wide_convs_in_a_stacked_tail_are_cut_into_parts_that_fit():
    """`split_wide_convs`: the tail's 3x3 conv (4,608 weight words against `small`'s 4,096)
    is cut into two convs of 32 output channels writing one concat once the stacked input no
    longer fits the IFM store (8 images), and not before (its one band reads every weight
    once); the stack's logits are the same, and the parts pack and unpack as producers of the
    concat's channel ranges."""
    qnet, x = _quantized(wide_tail_network(np.random.default_rng(5)), n=8)
    for batch, names in ((4, ["wide", "narrow", "gap", "fc"]),
                         (8, ["wide.k0", "wide.k1", "wide", "narrow", "gap", "fc"])):
        split, _, suffix = pack_batch(qnet, CONFIG, batch, start=1)
        assert [q.name for q in split.suffix.layers] == names
        outs = [run_int(split.prefix, xi[None], return_all=True)[-1][0] for xi in x[:batch]]
        stacked = stack_outputs(split, outs)
        y = run_int(split.suffix, stacked[None])[0]
        assert np.array_equal(unstack_logits(split, y), run_int(qnet, x[:batch]))
        assert np.array_equal(run_int(unpack_image(suffix, CONFIG), stacked[None])[0], y)
    _, descs = layer_table(suffix, CONFIG)
    assert [(d.g("exec.out_c_offset"), d.g("exec.out_c_total")) for d in descs[:2]] == \
        [(0, 64), (32, 64)]
