"""The networks of the system tests (gateware_tests/test_system.py) and of the performance
model's fit and check (scripts/fit_perf_model.py, scripts/check_model.py): small float networks
with the structures of the benchmark networks, built from a seeded generator."""

from __future__ import annotations

import numpy as np

from host import golden, zoo
from host.join import join_shortcuts
from host.nn import Layer, Network
from hw.config import SenseConfig

__all__ = ["random_network", "FIT_NETWORKS", "HELDOUT_NETWORKS", "conv_layer",
           "residual_networks", "banded_residual_network", "inception_network", "vgg_style_network", "wide_network", "RING_CONFIG", "RING_NETWORKS", "maxpool_network",
           "SPLIT_CONFIG", "SPLIT_NETWORKS", "split_network",
           "pooling_network", "banded_pooling_network", "GRAPH_NETWORKS", "gather_network",
           "join_network", "wide_tail_network", "stacked_tail_network", "stem_network",
           "STEM_NETWORKS"]


def random_network(rng, input_shape, specs, name):
    """A float network from (kind, out, kernel, stride, pad, relu, pool) specs."""
    layers = []
    shape = input_shape
    for i, (kind, k, r, stride, pad, relu, pool) in enumerate(specs):
        c, h, w = shape
        if kind == "fc":
            weight = rng.normal(size=(k, c * h * w)) / np.sqrt(c * h * w)
            shape = (k, 1, 1)
        else:
            weight = rng.normal(size=(k, c, r, r)) / np.sqrt(c * r * r)
            oh = golden.output_size(h, r, stride, pad)
            ow = golden.output_size(w, r, stride, pad)
            if pool:
                oh = golden.output_size(oh, pool[0], pool[1], pool[2])
                ow = golden.output_size(ow, pool[0], pool[1], pool[2])
            shape = (k, oh, ow)
        layers.append(Layer(kind, f"{name}{i}", weight, rng.normal(size=k) * 0.1, stride, pad,
                            relu, pool))
    return Network(tuple(input_shape), layers, [], name)


#: The networks scripts/fit_perf_model.py fits the performance model's constants on (seed 5).
FIT_NETWORKS = {
    # stride 2, padding, 5x5 and 1x1 kernels, channel counts not multiples of M, FC
    "s2-5x5-1x1-fc": ((3, 12, 12), [("conv", 6, 5, 2, 2, True, None),
                                    ("conv", 10, 1, 1, 0, True, None),
                                    ("fc", 7, 0, 1, 0, False, None)]),
    # max-pool (2x2 s2, and 3x3 s2 p1), 3x3 padded, 1x1
    "pool-3x3-1x1": ((5, 10, 10), [("conv", 9, 3, 1, 1, True, (2, 2, 0)),
                                   ("conv", 13, 1, 1, 0, True, (3, 2, 1)),
                                   ("fc", 5, 0, 1, 0, False, None)]),
    # deeper channels: 3x3 stride 2 then a 3x3 with K = 24 (6 k tiles), FC
    "deep": ((8, 9, 9), [("conv", 17, 3, 2, 0, True, None),
                         ("conv", 24, 3, 1, 1, True, (2, 1, 0)),
                         ("fc", 3, 0, 1, 0, True, None)]),
}

#: Held out from the fit (other shapes, another seed): the model is checked on these.
HELDOUT_NETWORKS = {
    # 7x7 stride 2 with 3x3/s2/p1 max-pool (a ResNet stem in miniature), 3x3, FC
    "stem-7x7s2-pool": ((4, 14, 14), [("conv", 8, 7, 2, 3, True, (3, 2, 1)),
                                      ("conv", 12, 3, 1, 1, True, None),
                                      ("fc", 6, 0, 1, 0, False, None)]),
    # wide 1x1 then 3x3 with 2x2 max-pool, FC with ReLU
    "1x1-wide-pool": ((12, 8, 8), [("conv", 20, 1, 1, 0, True, None),
                                   ("conv", 7, 3, 1, 1, True, (2, 2, 0)),
                                   ("fc", 9, 0, 1, 0, True, None)]),
    # 3x3 stride 2 padded, then 3x3 unpadded with K = 16 (4 k tiles)
    "3x3s2-k16": ((6, 11, 11), [("conv", 16, 3, 2, 1, True, None),
                                ("conv", 16, 3, 1, 0, True, None),
                                ("fc", 4, 0, 1, 0, False, None)]),
}


#: A classifier head over a map (FC over 16x4x4, then FC), run as a batch (`host.batch`): the
#: first FC layer as an H x 1 kernel over map rows stacked from several images.
BATCH_NETWORK = ((8, 8, 8), [("conv", 16, 3, 1, 1, True, (2, 2, 0)),
                             ("fc", 24, 0, 1, 0, True, None),
                             ("fc", 10, 0, 1, 0, False, None)])


def conv_layer(rng, name, k, c, r, inputs, relu=True, pad=None, stride=1):
    w = rng.normal(size=(k, c, r, r)) / np.sqrt(c * r * r)
    return Layer("conv", name, w, rng.normal(size=k) * 0.1, stride,
                 r // 2 if pad is None else pad, relu, None, inputs)


def residual_networks(rng):
    """Residual stages in miniature: a basic block with an identity shortcut, then a
    1x1-3x3-1x1 bottleneck with a 1x1 projection shortcut, then FC; and two 3x3 convs whose
    sum (20 channels of 15x15, 4,500 bytes) takes two chunks of the add unit, the second
    ending in a partial beat."""
    stage = Network((8, 12, 12), [
        conv_layer(rng, "a", 8, 8, 3, [-1]),
        conv_layer(rng, "b", 8, 8, 3, [0], relu=False),
        Layer("add", "sum1", relu=True, inputs=[1, -1]),
        conv_layer(rng, "reduce", 4, 8, 1, [2]),
        conv_layer(rng, "mid", 4, 4, 3, [3]),
        conv_layer(rng, "expand", 16, 4, 1, [4], relu=False),
        conv_layer(rng, "project", 16, 8, 1, [2], relu=False),
        Layer("add", "sum2", relu=True, inputs=[5, 6]),
        Layer("fc", "fc", rng.normal(size=(5, 16 * 12 * 12)) / 48, rng.normal(size=5) * 0.1,
              inputs=[7]),
    ], [], "residual-stage")
    wide = Network((8, 15, 15), [
        conv_layer(rng, "left", 20, 8, 3, [-1], relu=False),
        conv_layer(rng, "right", 20, 8, 3, [-1]),
        Layer("add", "sum", relu=False, inputs=[0, 1]),
    ], [], "two-chunk-add")
    return {"residual-stage": stage, "two-chunk-add": wide}


def banded_residual_network(rng):
    """A stride-2 residual block in bands (input 32x28x28, 25 KB, over `small`'s 16 KiB IFM
    store), as ResNet-50's first block of a stage: a 3x3 stride-2 conv, then the 1x1 stride-2
    projection shortcut with the add fused into it (in bands; with the weight port its
    residual reads take that port and its bands are prefetched), then GAP and FC."""
    return Network((32, 28, 28), [
        conv_layer(rng, "main", 32, 32, 3, [-1], stride=2),
        conv_layer(rng, "project", 32, 32, 1, [-1], relu=False, stride=2),
        Layer("add", "sum", relu=True, inputs=[1, 0]),
        Layer("gap", "gap", inputs=[2]),
        Layer("fc", "fc", rng.normal(size=(6, 32)) / 6, rng.normal(size=6) * 0.1, inputs=[3]),
    ], [], "banded-residual")


def stacked_tail_network(rng):
    """A ResNet-50 stage in miniature for a batch's stacked tail (`host.batch`, from layer 1):
    a stem conv, then a bottleneck with a 3x3 stride-2 conv and a 1x1 stride-2 projection (its
    add fused), a bottleneck with an identity shortcut and a 3x3 stride-1 conv, GAP and FC. On
    stacked maps every 3x3 window at an image's edge reads separator rows."""
    return Network((8, 8, 8), [
        conv_layer(rng, "stem", 16, 8, 3, [-1]),
        conv_layer(rng, "a.reduce", 8, 16, 1, [0]),
        conv_layer(rng, "a.mid", 8, 8, 3, [1], stride=2),
        conv_layer(rng, "a.expand", 32, 8, 1, [2], relu=False),
        conv_layer(rng, "a.project", 32, 16, 1, [0], relu=False, stride=2),
        Layer("add", "a.sum", relu=True, inputs=[3, 4]),
        conv_layer(rng, "b.reduce", 8, 32, 1, [5]),
        conv_layer(rng, "b.mid", 8, 8, 3, [6]),
        conv_layer(rng, "b.expand", 32, 8, 1, [7], relu=False),
        Layer("add", "b.sum", relu=True, inputs=[8, 5]),
        Layer("gap", "gap", inputs=[9]),
        Layer("fc", "fc", rng.normal(size=(6, 32)) / 6, rng.normal(size=6) * 0.1, inputs=[10]),
    ], [], "stacked-tail")


def wide_tail_network(rng):
    """A stacked tail (from layer 1) whose 3x3 conv has more weights than `small`'s 16 KiB
    buffer and, for a batch of several 8x8 images, more input than its IFM store: in bands,
    the weight ring would stream all its weights in every band, so the packer cuts it into
    convs whose weights fit (`host.batch.split_wide_convs`); a 1x1 conv, GAP and FC after."""
    return Network((8, 8, 8), [
        conv_layer(rng, "stem", 64, 8, 3, [-1]),
        conv_layer(rng, "wide", 64, 64, 3, [0]),
        conv_layer(rng, "narrow", 32, 64, 1, [1]),
        Layer("gap", "gap", inputs=[2]),
        Layer("fc", "fc", rng.normal(size=(6, 32)) / 6, rng.normal(size=6) * 0.1, inputs=[3]),
    ], [], "wide-tail")


def gather_network(rng):
    """1x1 convolutions with stride 2 and 4 whose inputs the gateware gathers (host.image
    `gather_step`: it reads only the pixels they use): on the 64x48x48 input (147 KB) one with
    stride 2 (its 36 KB view over `small`'s 16 KiB IFM store: in bands) and one with stride 4;
    a gathered conv on a layer's output with the add fused into it; GAP and FC."""
    return Network((64, 48, 48), [
        conv_layer(rng, "half", 32, 64, 1, [-1], stride=2),                       # 24x24
        conv_layer(rng, "quarter", 32, 64, 1, [-1], relu=False, stride=4),       # 12x12
        conv_layer(rng, "again", 32, 32, 1, [0], relu=False, stride=2),          # 12x12
        Layer("add", "sum", relu=True, inputs=[2, 1]),
        Layer("gap", "gap", inputs=[3]),
        Layer("fc", "fc", rng.normal(size=(6, 32)) / 6, rng.normal(size=6) * 0.1, inputs=[4]),
    ], [], "gather")


def join_network(rng):
    """Two bottleneck ends with projection shortcuts that `host.join.join_shortcuts` joins: at
    stride 1 (on the 32x24x24 input, the joined conv's 36 KB view over `small`'s 16 KiB IFM
    store: in bands, its first input read on from band to band) and at stride 2 (a 48-channel
    second input, three beats a pixel, gathered); GAP and FC."""
    return Network((32, 24, 24), [
        conv_layer(rng, "a", 32, 32, 3, [-1]),                                    # 24x24
        conv_layer(rng, "a3", 48, 32, 1, [0], relu=False),
        conv_layer(rng, "a_short", 48, 32, 1, [-1], relu=False),
        Layer("add", "sum1", relu=True, inputs=[1, 2]),
        conv_layer(rng, "b", 32, 48, 3, [3], stride=2),                           # 12x12
        conv_layer(rng, "b3", 64, 32, 1, [4], relu=False),
        conv_layer(rng, "b_short", 64, 48, 1, [3], relu=False, stride=2),
        Layer("add", "sum2", relu=True, inputs=[5, 6]),
        Layer("gap", "gap", inputs=[7]),
        Layer("fc", "fc", rng.normal(size=(6, 64)) / 8, rng.normal(size=6) * 0.1, inputs=[8]),
    ], [], "join")


def inception_network(rng):
    """An inception module in miniature: four branches (1x1; 1x1 then 3x3; 1x1 then 5x5; a 3x3
    stride-1 max-pool then 1x1) written into channel ranges of one tensor by a concat, then a
    residual add of two more convs over it and FC."""
    return Network((8, 8, 8), [
        conv_layer(rng, "b1", 8, 8, 1, [-1]),
        conv_layer(rng, "b2r", 4, 8, 1, [-1]),
        conv_layer(rng, "b2", 12, 4, 3, [1]),
        conv_layer(rng, "b3r", 4, 8, 1, [-1]),
        conv_layer(rng, "b3", 4, 4, 5, [3]),
        Layer("maxpool", "b4p", pool=golden.Window.of(3, 1, 1), inputs=[-1]),
        conv_layer(rng, "b4", 8, 8, 1, [5]),
        Layer("concat", "cat", inputs=[0, 2, 4, 6]),
        conv_layer(rng, "p", 16, 32, 1, [7], relu=False),
        conv_layer(rng, "q", 16, 32, 3, [7], relu=False),
        Layer("add", "sum", relu=True, inputs=[8, 9]),
        Layer("fc", "fc", rng.normal(size=(6, 16 * 8 * 8)) / 32, rng.normal(size=6) * 0.1,
              inputs=[10]),
    ], [], "inception")


def kept_input_network(rng):
    """Consumers of one tensor in a row, each loading it with one placement: two 1x1 branches
    and a 3x3 stride-1 max-pool on the input, concatenated with a 1x1 over the pool; then two
    3x3 convs on the concat, summed. The second 1x1, the max-pool and the second 3x3 find their
    input in the IFM store (INPUT_KEPT) and skip its load."""
    return Network((16, 8, 8), [
        conv_layer(rng, "a", 8, 16, 1, [-1]),
        conv_layer(rng, "b", 8, 16, 1, [-1]),
        Layer("maxpool", "p", pool=golden.Window.of(3, 1, 1), inputs=[-1]),
        conv_layer(rng, "c", 8, 16, 1, [2]),
        Layer("concat", "cat", inputs=[0, 1, 3]),
        conv_layer(rng, "d", 8, 24, 3, [4]),
        conv_layer(rng, "e", 8, 24, 3, [4], relu=False),
        Layer("add", "sum", relu=True, inputs=[5, 6]),
    ], [], "kept-input")


def vgg_style_network(rng):
    """A VGG-style stack whose first layers exceed `small`'s 16 KiB IFM store, so they run in
    bands: a 3x3 conv at 40x40 (25.6 KB input), a stride-2 3x3 conv at 40x40 with a fused 2x2
    max-pool (bands, then the read-back of its 20x20 conv output), a valid 3x3 conv (row
    tiles), a stride-2 conv, then FC."""
    return random_network(rng, (16, 40, 40), [
        ("conv", 16, 3, 1, 1, True, None),          # 40x40x16 in: bands
        ("conv", 16, 3, 2, 1, True, (2, 2, 0)),     # bands at stride 2, then the pool pass
        ("conv", 20, 3, 1, 0, True, None),          # 10x10 -> 8x8, valid: row tiles
        ("conv", 24, 3, 2, 1, True, None),          # stride 2
        ("fc", 10, 0, 1, 0, False, None),
    ], "vgg")


def stem_network(rng, c=3, size=32, r=7, stride=2, pad=3, pool=(3, 2, 1)):
    """An ImageNet stem in miniature: a strided conv over `c` channels of a `size` x `size`
    input (by default ResNet-50's 7x7 stride 2 with its 3x3 stride-2 max-pool; AlexNet's is 11x11
    stride 4, pad 2), then a 1x1 conv. The packer may read its input in blocks (host.s2d)."""
    k = 16
    return Network((c, size, size), [
        Layer("conv", "stem", rng.normal(size=(k, c, r, r)) * 0.2, rng.normal(size=k) * 0.1,
              stride, pad, True, pool),
        conv_layer(rng, "mix", 8, k, 1, None, relu=False)], [], "stem")


def expansion_network(rng):
    """A 1x1 expansion from 4 to 64 channels over a 16x16 map, whose outputs leave faster than
    one write channel takes them on a 16-row grid (four beats a tile every two cycles), then a
    1x1 stride-2 conv back to 8 channels and FC: the write port's case
    (`SenseConfig.write_port`)."""
    return Network((4, 16, 16), [
        conv_layer(rng, "expand", 64, 4, 1, [-1]),
        conv_layer(rng, "mix", 8, 64, 1, [0], stride=2),
        Layer("fc", "fc", rng.normal(size=(10, 8 * 8 * 8)) / 22, rng.normal(size=10) * 0.1,
              inputs=[1]),
    ], [], "expansion")


def fused_expansion_network(rng):
    """Two 1x1 expansions from 4 to 64 channels over a 16x16 map, their sum fused into the
    second: with the write port the fused add's writes outrun one write channel on a 16-row
    grid, as ResNet-50's identity-shortcut conv3s do (each drain side through its own add
    unit); then a 1x1 stride-2 conv back to 8 channels and FC."""
    return Network((4, 16, 16), [
        conv_layer(rng, "side", 64, 4, 1, [-1], relu=False),
        conv_layer(rng, "expand", 64, 4, 1, [-1], relu=False),
        Layer("add", "sum", relu=True, inputs=[1, 0]),
        conv_layer(rng, "mix", 8, 64, 1, [2], stride=2),
        Layer("fc", "fc", rng.normal(size=(10, 8 * 8 * 8)) / 22, rng.normal(size=10) * 0.1,
              inputs=[3]),
    ], [], "fused-expansion")


def wide_network(rng):
    """Two 3x3 convolutions over a 256-channel input whose one k tile of weights exceeds the
    weight buffer of `RING_CONFIG` (1,024 words), so they run in input-channel blocks with int32
    partial sums, and in bands (the input is 36 KB): a valid one (row tiles) with a fused 2x2
    max-pool, and one at stride 2 with padding; then a 2x2 conv, a residual add and FC."""
    return Network((256, 12, 12), [
        Layer("conv", "valid", rng.normal(size=(8, 256, 3, 3)) / 48, rng.normal(size=8) * 0.1,
              1, 0, True, (2, 2, 0), [-1]),
        conv_layer(rng, "strided", 8, 256, 3, [-1], stride=2),
        conv_layer(rng, "mix", 8, 8, 2, [1], pad=0, relu=False),
        Layer("add", "sum", relu=True, inputs=[0, 2]),
        Layer("fc", "fc", rng.normal(size=(10, 8 * 5 * 5)) / 14, rng.normal(size=10) * 0.1,
              inputs=[3]),
    ], [], "channel-blocks")


#: The configuration the channel-block network runs on: `small` with a quarter of its weight
#: buffer.
RING_CONFIG = SenseConfig(rows=4, cols=4, group=4, weight_kib=4)


def maxpool_network(rng):
    """Standalone max-pooling layers (SPEC section 8): one on the network input, a ResNet-stem
    3x3 stride-2 padded one after a conv that a second branch also reads (so it cannot be
    fused), a 2x2 one, then a residual add of the branches and FC."""
    window = golden.Window.of
    return Network((8, 13, 13), [
        Layer("maxpool", "in_pool", pool=window(2, 1, 0), inputs=[-1]),      # 12x12
        conv_layer(rng, "stem", 8, 8, 3, [0]),
        Layer("maxpool", "stem_pool", pool=window(3, 2, 1), inputs=[1]),     # 6x6
        conv_layer(rng, "branch", 8, 8, 3, [1], stride=2),                        # 6x6
        Layer("add", "sum", relu=True, inputs=[2, 3]),
        Layer("maxpool", "pool2", pool=window(2, 2, 0), inputs=[4]),         # 3x3
        Layer("fc", "fc", rng.normal(size=(5, 8 * 3 * 3)) / 8, rng.normal(size=5) * 0.1,
              inputs=[5]),
    ], [], "maxpools")


def pooling_network(rng):
    """Every window the pool pass runs (SPEC section 8): a non-square max-pool with unequal
    padding on the network input, an Inception pool branch (3x3 stride-1 padded max-pool), a
    GoogLeNet ceil_mode max-pool, average pools without and with the padding counted, a ReLU
    after a pool, then global average pooling and FC."""
    window = golden.Window.of
    return Network((8, 12, 11), [
        Layer("maxpool", "wide", pool=window((2, 3), (1, 2), (1, 0, 0, 1)), inputs=[-1]),  # 12x6
        conv_layer(rng, "a", 8, 8, 3, [0]),
        Layer("maxpool", "branch", pool=window(3, 1, 1), inputs=[1]),              # 12x6
        Layer("maxpool", "ceil", pool=window(3, 2, 0, ceil_mode=True), inputs=[2]),  # 6x3
        Layer("avgpool", "avg", pool=window(3, 1, 1), inputs=[3]),                 # 6x3
        Layer("avgpool", "avg_pad", pool=window((2, 3), 2, (1, 1, 0, 1)), inputs=[4],
              count_include_pad=True, relu=True),                                  # 4x2
        conv_layer(rng, "b", 12, 8, 1, [5]),
        Layer("gap", "gap", inputs=[6]),
        Layer("fc", "fc", rng.normal(size=(5, 12)) / 4, rng.normal(size=5) * 0.1, inputs=[7]),
    ], [], "pools")


def banded_pooling_network(rng):
    """Pooling whose map exceeds `small`'s 16 KiB IFM store (36x36x16 = 20.7 KB), so the pool
    pass runs in bands: a conv with a fused 3x3 stride-2 padded max-pool (the conv in bands,
    then its output read back band by band), and on the other branch a padded average pool that
    counts its padding and a ceil_mode max-pool; added, global average pooling, FC."""
    window = golden.Window.of
    return Network((16, 36, 36), [
        Layer("conv", "conv", rng.normal(size=(16, 16, 3, 3)) / 12, rng.normal(size=16) * 0.1,
              pad=1, relu=True, pool=(3, 2, 1), inputs=[-1]),                          # 18x18
        Layer("avgpool", "avg", pool=window(3, 1, 1), count_include_pad=True, inputs=[-1]),
        Layer("maxpool", "ceil", pool=window(3, 2, 1, ceil_mode=True), inputs=[1]),   # 19x19
        Layer("maxpool", "trim", pool=window(2, 1, 0), inputs=[2]),                   # 18x18
        Layer("add", "sum", relu=True, inputs=[0, 3]),
        Layer("gap", "gap", inputs=[4]),
        Layer("fc", "fc", rng.normal(size=(5, 16)) / 4, rng.normal(size=5) * 0.1, inputs=[5]),
    ], [], "banded-pools")


#: The graph networks of the system tests: name -> (builder, seed of its weights and inputs,
#: inputs per run). scripts/check_model.py runs them all in both tile orders.
GRAPH_NETWORKS = {
    "residual-stage": (lambda rng: residual_networks(rng)["residual-stage"], 23, 2),
    "two-chunk-add": (lambda rng: residual_networks(rng)["two-chunk-add"], 23, 2),
    "banded-residual": (banded_residual_network, 59, 1),
    "inception": (inception_network, 19, 2),
    "vgg-bands": (vgg_style_network, 29, 1),
    "maxpools": (maxpool_network, 31, 2),
    "pools": (pooling_network, 37, 2),
    "pool-bands": (banded_pooling_network, 41, 1),
    "mini": (lambda rng: zoo.build("mini", seed=3), 43, 1),
    "joined": (lambda rng: join_shortcuts(join_network(rng)), 47, 1),
}

#: ImageNet stems in miniature, packed with their input in blocks (host.s2d; scripts/check_model.py
#: forces the blocks, which the packer leaves out on grids this small), as GRAPH_NETWORKS.
STEM_NETWORKS = {
    "stem-7x7s2-pool": (stem_network, 61, 2),
    "stem-11x11s4": (lambda rng: stem_network(rng, size=35, r=11, stride=4, pad=2, pool=None),
                     67, 2),
}

#: Networks run on `RING_CONFIG` (system tests and scripts/check_model.py), as GRAPH_NETWORKS.
RING_NETWORKS = {
    "channel-blocks": (wide_network, 47, 1),
}

#: Split weights (LayerHints.SPLIT_WEIGHTS) need weight words of more than one beat, as on
#: `zcu102` (five): `small` with 16 rows (two) and the weight port.
SPLIT_CONFIG = SenseConfig(rows=16, cols=4, group=4, weight_port=True)


def split_network(rng):
    """Weight-bound layers for SPLIT_CONFIG: a 3x3 conv on a 2x2 map (three k tiles, one pixel
    tile), a 1x1 conv, and an FC whose weights (six k tiles of 256 words) wrap the 1,024-word
    weight ring (which holds three of its k tiles: `host.perf.split_modelled`), then a small
    FC."""
    return random_network(rng, (64, 2, 2), [("conv", 48, 3, 1, 1, True, None),
                                            ("conv", 128, 1, 1, 0, True, None),
                                            ("fc", 96, 0, 1, 0, True, None),
                                            ("fc", 40, 0, 1, 0, False, None)], "split")


#: Networks run on `SPLIT_CONFIG`, as GRAPH_NETWORKS.
SPLIT_NETWORKS = {
    "split": (split_network, 53, 2),
}

