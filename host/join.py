"""Projection shortcuts joined into their block's last convolution (`join_shortcuts`).

A ResNet bottleneck block with a projection shortcut ends in two 1x1 convolutions and an add:
``relu(conv3(a) + downsample(x))``, the shortcut at stride s (1, 2). Both are linear, so the
three layers are one 1x1 convolution over the two inputs side by side: the first input's
channels, then the second's at every s-th row and column (`host.nn.Layer.join`), with the two
weight matrices side by side, the biases summed and the add's ReLU. On the accelerator the
joined conv reads both tensors itself (descriptor ``in_split``, docs/memory-image.md): the
shortcut's output (a whole tensor written and read back) and the add's second read disappear.

The rewrite is exact in float. Quantization (`host.quant`) then folds each input's scale into
its weight columns, so the joined conv is one int8 convolution with per-channel scales like
any other; its integer result differs from the three layers' (one rounding instead of three).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from host.nn import Layer, Network, simplify_chain
from hw.config import BEAT_BYTES, SenseConfig
from hw.soc.dma import GATHER_MIN_BEATS, JOIN_STEPS

__all__ = ["join_shortcuts", "join_fits"]


def join_fits(ca: int, b_shape, step: int) -> bool:
    """Whether the gateware joins a first input of `ca` channels with a second input of shape
    `b_shape` (C, H, W) at `step` (LayerCheck's rule, docs/memory-image.md): each part of a
    pixel whole beats (at least `hw.soc.dma.GATHER_MIN_BEATS`; int8 channels, so a multiple of
    16 channels for any M), the first part's beats (``in_split``) in 8 bits, the pitch of `step`
    rows of the second input (``in_pitch``, beats) in 16."""
    cb, _, wb = b_shape
    return (step in JOIN_STEPS and all(c % BEAT_BYTES == 0 and c >= GATHER_MIN_BEATS * BEAT_BYTES
                                       for c in (ca, cb))
            and ca // BEAT_BYTES < 1 << 8 and step * wb * cb // BEAT_BYTES < 1 << 16)


def _pointwise(layer: Layer) -> bool:
    """A 1x1 convolution without padding, ReLU, max-pool or join: linear in its input."""
    return (layer.kind == "conv" and layer.weight.shape[2:] == (1, 1) and not layer.pad
            and not layer.relu and not layer.pool and not layer.join)


def _weights_stay(k: int, c: int, config: SenseConfig | None) -> bool:
    """Whether a 1x1 conv of K outputs over C channels keeps all its weights in `config`'s
    weight buffer (any band reuses them); True without a config."""
    if config is None:
        return True
    words = -(-k // config.rows) * -(-c // config.group) * config.cycles_per_group
    return words <= config.weight_depth


def _pair(net: Network, i: int, users, shapes, config) -> tuple[int, int] | None:
    """For the add at i: (the block's conv, the shortcut) when they join, else None."""
    src = net.sources(i)
    if net.layers[i].kind != "add" or len(src) != 2 or min(src) < 0:
        return None
    if not all(_pointwise(net.layers[j]) and users[j] == [i] for j in src):
        return None
    for a, b in (src, src[::-1]):
        la, lb = net.layers[a], net.layers[b]
        (ca, ha, wa), (cb, hb, wb) = shapes[a][0], shapes[b][0]
        if la.stride == 1 and (ha, wa) == (-(-hb // lb.stride), -(-wb // lb.stride)) \
                and join_fits(ca, shapes[b][0], lb.stride) \
                and _weights_stay(la.out_channels, ca + cb, config):
            return a, b
    return None


def join_shortcuts(net: Network, config: SenseConfig | None = None) -> Network:
    """`net` with every add of two 1x1 convolutions that only it reads (module docstring) and
    whose inputs the gateware can join (`join_fits`) replaced by their joined conv, at the
    add's place; the other layers in their order. With `config`, only where the joined conv's
    weights all fit its weight buffer: else every band of it would stream the larger joined
    matrix again (ResNet-50's layer4.0 at `zcu102`: 2 MB of weights; its stacked tail of 32
    images took 1.61 M cycles joined against 1.53 M apart, `sense bench pack --batch 32`)."""
    users, shapes = net.consumers(), net.in_shapes()
    pairs = {i: p for i in range(len(net.layers))
             if (p := _pair(net, i, users, shapes, config))}
    if not pairs:
        return net
    gone = {j for p in pairs.values() for j in p}
    keep = [i for i in range(len(net.layers)) if i not in gone]
    new = {old: k for k, old in enumerate(keep)}
    layers = []
    for old in keep:
        layer = net.layers[old]
        if old in pairs:
            a, b = pairs[old]
            la, lb = net.layers[a], net.layers[b]
            layer = Layer("conv", f"{la.name}+{lb.name.rsplit('.', 1)[-1]}",
                          np.concatenate([la.weight, lb.weight], axis=1), la.bias + lb.bias,
                          relu=layer.relu, inputs=[net.sources(a)[0], net.sources(b)[0]],
                          join=lb.stride)
            srcs = layer.inputs
        else:
            srcs = net.sources(old)
        layers.append(replace(layer, inputs=[new[s] if s >= 0 else -1 for s in srcs]))
    return simplify_chain(net.with_layers(layers))
