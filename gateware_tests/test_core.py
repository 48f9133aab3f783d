"""The sparse core against the golden model, bit for bit, with cycle counts from host.perf."""

import numpy as np
import pytest

from host.bench import random_layer
from host.perf import core_cycles
from hw.config import SenseConfig
from sim.corerun import run_core

CONFIGS = {
    "1x1-M2": SenseConfig(rows=1, cols=1, group=2),
    # dsp_pairs: columns 0-1 are one PEPair, column 2 a lone PE.
    "2x3-M4-pairs": SenseConfig(rows=2, cols=3, group=4, dsp_pairs=True),
    "4x4-M8": SenseConfig(rows=4, cols=4, group=8),
    "8x8-M16-pairs": SenseConfig(rows=8, cols=8, group=16, ifm_kib=64, dsp_pairs=True),
    "16x16-M4": SenseConfig(rows=16, cols=16, group=4, ifm_kib=64, weight_kib=16),
    "4x4-M4-dense": SenseConfig(rows=4, cols=4, group=4, sparse=False),
}

# (name, c, k, h, w, kernel, stride, pad, zero density, dead channels, relu, ready)
LAYERS = [
    ("k1s1-z0", 7, 5, 6, 5, 1, 1, 0, 0.0, 0.0, True, 1.0),
    ("k3s1p1-z50", 13, 9, 7, 6, 3, 1, 1, 0.5, 0.0, True, 1.0),
    ("k3s2p1-z90", 5, 6, 9, 9, 3, 2, 1, 0.9, 0.0, True, 1.0),
    ("k5s1p2-z0", 6, 4, 6, 7, 5, 1, 2, 0.0, 0.0, False, 1.0),
    ("k5s2p2-z50", 11, 3, 9, 8, 5, 2, 2, 0.5, 0.0, True, 1.0),
    ("k1s2-z100", 9, 5, 6, 6, 1, 2, 0, 1.0, 0.0, True, 1.0),
    ("k3s1-dead", 16, 7, 6, 6, 3, 1, 0, 0.2, 0.5, True, 1.0),
    ("fc", 37, 10, 1, 1, 1, 1, 0, 0.3, 0.0, False, 1.0),
    # Random output back-pressure: results must stay exact, the core only gets slower.
    ("k3s1p1-bp", 13, 9, 7, 6, 3, 1, 1, 0.5, 0.0, True, 0.3),
    ("k1s1-bp", 7, 17, 4, 4, 1, 1, 0, 0.0, 0.0, True, 0.5),
]


# Images stacked in one map without separator rows (host.batch): (name, layer's index in
# LAYERS, images, rows per image); each image is padded on its own (`ConvLayer.image_rows`).
STACKED = [("k3s1p1-x3", 1, 3, 7), ("k3s2p1-x2", 2, 2, 8)]


def make_layers(config, seed):
    rng = np.random.default_rng(seed)
    layers, ready = [], []
    stacked = [(name, *LAYERS[i][1:3], rows * n, *LAYERS[i][4:], n)
               for name, i, n, rows in STACKED]
    for i, (name, c, k, h, w, r, s, p, z, dead, relu, rd, *images) in enumerate(
            LAYERS + stacked):
        layer = random_layer(rng, config, c=c, k=k, h=h, w=w, r=r, stride=s, pad=p,
                             zero_density=z, dead_channels=dead, relu=relu, name=name)
        if images:
            layer.image_rows = (h // images[0], layer.out_shape()[0] // images[0])
        # Every other layer runs pixel tile outer (the IFM-stationary tile order).
        layer.ifm_stationary = i % 2 == 1
        layers.append(layer)
        ready.append(rd)
    return layers, ready


@pytest.mark.parametrize("key", list(CONFIGS))
def test_core(key):
    config = CONFIGS[key]
    layers, ready = make_layers(config, seed=sum(map(ord, key)))
    results = run_core(config, layers, ready=ready, name=f"core-{key}")["layers"]
    assert len(results) == len(layers)
    for layer, rd, got in zip(layers, ready, results):
        want = core_cycles(layer, config)
        assert got["bit_exact"], f"{layer.name}: {got['mismatches']} of {got['outputs']} wrong"
        assert got["groups_skipped"] == want["groups_skipped"], layer.name
        assert got["groups_issued"] == want["groups_issued"], layer.name
        # MAC slots from the model's own count (the skip mask of the layer's data), not from
        # the RTL's definition of its counter.
        assert got["slots_issued"] == want["slots_issued"], layer.name
        assert got["macs"] == want["slots_issued"] * config.pes, layer.name
        if rd == 1.0:
            assert got["cycles"] == want["cycles"], (layer.name, got["cycles"], want["cycles"])
        else:
            # A consumer ready with probability rd takes about 1/rd cycles per output row; the
            # stated bound: never fewer cycles than the model, never more than the model plus
            # twice the rows drained divided by rd.
            oh, ow = layer.out_shape()
            tiles = -(-layer.w.shape[0] // config.rows) * -(-(oh * ow) // config.cols)
            bound = want["cycles"] + 2 * tiles * config.rows / rd
            assert want["cycles"] <= got["cycles"] <= bound, (layer.name, got["cycles"], bound)
        if layer.name.endswith("z100"):
            assert got["groups_issued"] == 0
