"""Channel clustering (SPEC section 4): permute each layer's input channels so that channels which
are zero together fall into the same group of M, and more IFM groups are skipped whole.

For the edge between layer l (producer) and layer l+1 (consumer), the zero pattern of channel c
is Z[c] = "channel c is zero over this block of `cols` consecutive pixels", one bit per
(calibration image, block) of layer l's output. A group of M channels is skippable on a block when
all its channels are zero there. Greedy: seed a group with the remaining channel that is zero most
often, add the M-1 remaining channels that keep the group's common zeros largest, repeat.

The permutation P is applied to layer l's output channels (weight rows, bias) and to layer l+1's
input channels (weight columns; an fc consumer's columns move in blocks of H*W), so the network
computes the same function: the integer network is bit-identical, the float one equal up to
rounding. The last layer's outputs and the first layer's inputs are never permuted. Clustering
runs before pruning, so groups are pruned in the clustered order.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from host.nn import Network
from host.quant import calibration_forward
from hw.config import SenseConfig

__all__ = ["zero_blocks", "cluster_channels", "group_zero_fraction", "permute_edge",
           "cluster_network"]


def zero_blocks(act: np.ndarray, cols: int) -> np.ndarray:
    """(C, N * blocks) bool: channel zero over each block of `cols` consecutive pixels of each
    image of `act` (N, C, H, W) (the last block padded with zeros)."""
    n, c, h, w = act.shape
    pixels = h * w
    blocks = -(-pixels // cols)
    z = np.ones((n, c, blocks * cols), bool)
    z[:, :, :pixels] = act.reshape(n, c, pixels) == 0
    return z.reshape(n, c, blocks, cols).all(-1).transpose(1, 0, 2).reshape(c, n * blocks)


def group_zero_fraction(z: np.ndarray, perm: np.ndarray, group: int) -> float:
    """Fraction of (group, block) pairs in which every channel of the group is zero, channels
    taken in `perm` order and padded with zero channels to a multiple of `group`."""
    c, b = z.shape
    padded = np.ones((-(-c // group) * group, b), bool)
    padded[:c] = z[perm]
    return float(padded.reshape(-1, group, b).all(1).mean())


def cluster_channels(z: np.ndarray, group: int) -> np.ndarray:
    """A permutation of the C channels of zero pattern `z` (C, B), greedily grouped."""
    c = z.shape[0]
    zi = z.astype(np.int32)
    remaining = np.ones(c, bool)
    order = []
    while remaining.any():
        idx = np.flatnonzero(remaining)
        seed = idx[np.argmax(zi[idx].sum(1))]
        members = [seed]
        remaining[seed] = False
        common = z[seed].copy()
        for _ in range(group - 1):
            idx = np.flatnonzero(remaining)
            if not idx.size:
                break
            pick = idx[np.argmax(zi[idx] @ common.astype(np.int32))]
            members.append(pick)
            remaining[pick] = False
            common &= z[pick]
        order += members
    return np.array(order)


def permute_edge(producer, consumer, consumer_in_shape, perm):
    """Layer copies with the producer's output channels and the consumer's inputs permuted."""
    p = replace(producer, weight=producer.weight[perm], bias=producer.bias[perm])
    if consumer.kind == "fc":
        k = consumer.weight.shape[0]
        w = consumer.weight.reshape(k, *consumer_in_shape)[:, perm].reshape(k, -1)
    else:
        w = consumer.weight[:, perm]
    return p, replace(consumer, weight=w)


def cluster_network(net: Network, calib: np.ndarray, config: SenseConfig):
    """Cluster every layer-to-layer edge of `net` on the calibration inputs. Returns the permuted
    network and, per edge, the fraction of all-zero groups before and after."""
    layers = list(net.layers)
    acts = calibration_forward(net, calib)
    shapes = net.shapes()
    report = []
    users = net.consumers()
    for i in range(len(layers) - 1):
        # A graph's edges are clustered where one weight layer alone feeds the next one.
        if not (layers[i].has_weights and layers[i + 1].has_weights and users[i] == [i + 1]
                and net.sources(i + 1) == [i]):
            continue
        z = zero_blocks(acts[i], config.cols)
        perm = cluster_channels(z, config.group)
        identity = np.arange(z.shape[0])
        before = group_zero_fraction(z, identity, config.group)
        after = group_zero_fraction(z, perm, config.group)
        if after <= before:
            perm, after = identity, before
        layers[i], layers[i + 1] = permute_edge(layers[i], layers[i + 1], shapes[i + 1], perm)
        # Later edges see the permuted activations; zero patterns per channel are unchanged.
        acts[i] = acts[i][:, perm]
        report.append({"layer": layers[i + 1].name, "identity": before, "clustered": after,
                       "permutation": perm.tolist()})
    return net.with_layers(layers), report
