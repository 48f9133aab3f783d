"""Float CNNs as Sense runs them: a graph of layers in topological order, evaluated in numpy (the
float reference for quantization). Files: `host.model_files` (.npz, and ONNX through
`host.onnx_import`).

Layer kinds (SPEC section 8):

* ``conv`` / ``fc``: weights and bias, optional ReLU and a fused max-pool after it; a joined
  conv (``join`` s > 0, `host.join`) reads two inputs: a 1x1 stride-1 conv over the first
  input's channels followed by the second input's at every s-th row and column;
* ``add``: residual add of two tensors of one shape, optional ReLU;
* ``concat``: its inputs stacked on the channel axis (a layout operation);
* ``maxpool`` / ``avgpool``: a pooling window (kernel, stride, padding) on its own;
* ``gap``: global average pooling to 1x1.

Each layer reads the outputs of the layers named by `inputs` (indices into the layer list; -1 is
the network input). `inputs=None` means the previous layer (or the network input for layer 0),
so a chain needs no wiring. The network's output is the last layer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from host import golden

__all__ = ["Layer", "Network", "LayerGraph", "window", "ModelError", "forward", "check_shapes", "HOST_OPS", "KINDS",
           "WEIGHT_KINDS", "layer_out_shape", "check_layer_inputs",
           "simplify_chain", "joined", "run_shape"]

#: Operators that run on the host after the accelerator's last layer (SPEC section 2).
HOST_OPS = ("softmax",)
#: Layer kinds with weights, and every layer kind.
WEIGHT_KINDS = ("conv", "fc")
KINDS = WEIGHT_KINDS + ("add", "concat", "maxpool", "avgpool", "gap")


class ModelError(ValueError):
    """A model Sense cannot import; the message names the operator, node or field."""


@dataclass
class Layer:
    """One layer (module docstring). conv: weight (K, C, R, S); fc: weight (K, C*H*W) over the
    flattened input. pool: the max-pool (kernel, stride, padding) fused after a conv layer's ReLU,
    or the `golden.Window` of a maxpool/avgpool layer."""

    kind: str
    name: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: int = 1
    pad: int = 0
    relu: bool = False
    pool: tuple | None = None
    inputs: list | None = None
    count_include_pad: bool = False
    join: int = 0          # conv: a joined conv's step over its second input (0: one input)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def has_weights(self) -> bool:
        return self.kind in WEIGHT_KINDS


class LayerGraph:
    """The wiring of a network's `layers` (each with `inputs`); shared by `Network` and the
    quantized `host.quant.QNetwork`."""

    def sources(self, i: int) -> list[int]:
        """The producers of layer i's inputs (-1: the network input)."""
        inputs = self.layers[i].inputs
        return [i - 1] if inputs is None else list(inputs)

    @property
    def is_chain(self) -> bool:
        """Every layer reads the previous one's output and only that."""
        return all(self.sources(i) == [i - 1] for i in range(len(self.layers)))

    def consumers(self) -> list[list[int]]:
        """For every layer, the layers reading its output."""
        users = [[] for _ in self.layers]
        for i in range(len(self.layers)):
            for j in self.sources(i):
                if j >= 0:
                    users[j].append(i)
        return users

    def evaluate(self, x, layer_fn, return_all: bool = False):
        """Run `layer_fn(layer, *inputs)` over the graph from input x; the last output, or every
        layer's output with return_all (else outputs are freed once no later layer reads them)."""
        outs = []
        users = self.consumers()
        for i, layer in enumerate(self.layers):
            outs.append(layer_fn(layer, *(x if j < 0 else outs[j] for j in self.sources(i))))
            if not return_all:
                for j in self.sources(i):
                    if j >= 0 and max(users[j]) == i:
                        outs[j] = None
        return outs if return_all else outs[-1]


@dataclass
class Network(LayerGraph):
    input_shape: tuple          # (C, H, W) of one image
    layers: list[Layer]
    host_ops: list[str] = field(default_factory=list)
    name: str = "model"
    dropped: list[str] = field(default_factory=list)    # operators removed at import (LRN)

    def out_shapes(self) -> list[tuple]:
        """The (C, H, W) output shape of every layer (after its fused max-pool)."""
        outs: list[tuple] = []
        for i, layer in enumerate(self.layers):
            ins = [tuple(self.input_shape) if j < 0 else outs[j] for j in self.sources(i)]
            outs.append(layer_out_shape(layer, ins))
        return outs

    def in_shapes(self) -> list[list[tuple]]:
        """The (C, H, W) shape of every input of every layer."""
        outs = self.out_shapes()
        return [[tuple(self.input_shape) if j < 0 else outs[j] for j in self.sources(i)]
                for i in range(len(self.layers))]

    def shapes(self) -> list[tuple]:
        """The network input shape, then every layer's output shape (for a chain: each layer's
        input shape, and the output shape last)."""
        return [tuple(self.input_shape)] + self.out_shapes()

    def with_layers(self, layers) -> "Network":
        return replace(self, layers=list(layers))


def load_key(net: Network, i: int, ins):
    """How layer i places its input in the IFM store, as far as the graph says (input, stride,
    padding, output width; a pooling layer places its map as a 1x1 convolution does), or None
    for a layer that loads nothing there; `ins`: `net.in_shapes()`."""
    layer, src = net.layers[i], net.sources(i)[0]
    if layer.kind == "conv" and not layer.join:        # (a joined conv's input is never kept)
        width = golden.output_size(ins[i][0][2], layer.weight.shape[3], layer.stride, layer.pad)
        return src, layer.stride, layer.pad, width
    if layer.kind in ("maxpool", "avgpool", "gap"):
        return src, 1, 0, ins[i][0][2]
    return None


def group_readers(net: Network) -> Network:
    """The same network in a layer order that puts the layers loading one tensor with one
    placement next to each other (an inception module's 1x1 branches and its pool, a stride-1
    projection shortcut beside its block's first 1x1), so that each but the first finds it in
    the IFM store (`host.image`'s INPUT_KEPT). A topological order: among the layers whose
    inputs are done, one with the previous layer's key first, else the earliest; the last layer
    (the network's output) stays last. Outputs are unchanged."""
    n = len(net.layers)
    if n < 3:
        return net
    ins = net.in_shapes()
    keys = [load_key(net, i, ins) for i in range(n)]
    waiting = [len({s for s in net.sources(i) if s >= 0}) for i in range(n)]
    users = net.consumers()
    ready = [i for i in range(n) if waiting[i] == 0]
    order = []
    while ready:
        prev = keys[order[-1]] if order else None
        same = [i for i in ready if prev is not None and keys[i] == prev and i != n - 1]
        pick = same[0] if same else min(i for i in ready if i != n - 1 or len(ready) == 1)
        ready.remove(pick)
        order.append(pick)
        for u in sorted(set(users[pick])):
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if order == list(range(n)):
        return net
    new = {old: k for k, old in enumerate(order)}
    return simplify_chain(net.with_layers(
        replace(net.layers[old], inputs=[new[s] if s >= 0 else -1 for s in net.sources(old)])
        for old in order))


def simplify_chain(net: Network) -> Network:
    """The same network with `inputs=None` wherever a layer reads just the previous one."""
    return net.with_layers(replace(layer, inputs=None) if net.sources(i) == [i - 1] else layer
                           for i, layer in enumerate(net.layers))


def window(pool) -> golden.Window:
    """A layer's pool as a `golden.Window` (a fused (kernel, stride, pad) or a Window)."""
    return pool if isinstance(pool, golden.Window) else golden.Window.of(*pool)


def layer_out_shape(layer: Layer, ins: list[tuple]) -> tuple:
    c, h, w = ins[0]
    if layer.kind == "fc":
        return (layer.out_channels, 1, 1)
    if layer.kind == "conv":
        _, _, r, s = layer.weight.shape
        h = golden.output_size(h, r, layer.stride, layer.pad)
        w = golden.output_size(w, s, layer.stride, layer.pad)
        c = layer.out_channels
    elif layer.kind == "concat":
        c = sum(shape[0] for shape in ins)
    elif layer.kind == "gap":
        h = w = 1
    if layer.pool:
        h, w = window(layer.pool).out_size(h, w)
    return (c, h, w)


# -- float reference ------------------------------------------------------------------------------

def conv2d_float(x, w, stride, pad):
    windows = golden.conv_windows(x, w.shape[2:], (stride, stride), (pad, pad))
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def maxpool_float(x, pool):
    return window(pool).windows(x, -np.inf).max(axis=(4, 5))


def avgpool_float(x, pool, count_include_pad):
    win = window(pool)
    return win.windows(x, 0.0).sum(axis=(4, 5)) / win.counts(*x.shape[2:], count_include_pad)


def run_shape(layer: Layer, ins: list[tuple]) -> tuple:
    """The (C, H, W) input a layer computes on: its first input's, or for a joined conv both
    inputs' channels at the first input's size."""
    if layer.join:
        return (ins[0][0] + ins[1][0],) + tuple(ins[0][1:])
    return tuple(ins[0])


def joined(xs, step: int) -> np.ndarray:
    """A joined conv's input (`Layer.join`): the first input's channels, then the second's at
    every `step`-th row and column, on the channel axis of (N, C, H, W) arrays."""
    a, b = xs
    return np.concatenate([a, b[:, :, ::step, ::step]], axis=1)


def layer_forward(layer: Layer, *xs: np.ndarray) -> np.ndarray:
    """Float forward of one layer on its (N, C, H, W) inputs (fc flattens its input to
    (N, C*H*W) and returns (N, K, 1, 1))."""
    x = joined(xs, layer.join) if layer.join else xs[0]
    if layer.kind == "fc":
        y = x.reshape(x.shape[0], -1) @ layer.weight.T.astype(np.float64) + layer.bias
        y = y[:, :, None, None]
    elif layer.kind == "conv":
        y = conv2d_float(x, layer.weight.astype(np.float64), layer.stride, layer.pad)
        y = y + layer.bias[None, :, None, None]
    elif layer.kind == "add":
        y = xs[0] + xs[1]
    elif layer.kind == "concat":
        y = np.concatenate(xs, axis=1)
    elif layer.kind == "gap":
        y = x.mean(axis=(2, 3), keepdims=True)
    elif layer.kind == "avgpool":
        return avgpool_float(x, layer.pool, layer.count_include_pad)
    else:                                       # maxpool
        return maxpool_float(x, layer.pool)
    if layer.relu:
        y = np.maximum(y, 0)
    if layer.pool:
        y = maxpool_float(y, layer.pool)
    return y


def forward(net: Network, x: np.ndarray, return_all: bool = False):
    """Float forward of (N, C, H, W) inputs; returns the last layer's output as (N, features)
    (before host operators), or every layer's (N, C, H, W) output with return_all."""
    y = net.evaluate(x.astype(np.float64), layer_forward, return_all)
    return y if return_all else y.reshape(y.shape[0], -1)


def check_shapes(net: Network):
    """The graph is wired forward, every layer's kind and weights take its inputs, and every
    output is at least 1x1; ModelError names the layer otherwise."""
    outs: list[tuple] = []
    for i, layer in enumerate(net.layers):
        if layer.kind not in KINDS:
            raise ModelError(f"layer {layer.name}: kind {layer.kind!r} is not one of "
                             f"{', '.join(KINDS)}")
        src = net.sources(i)
        if not src or any(not -1 <= j < i for j in src):
            raise ModelError(f"layer {layer.name}: inputs {src} must name earlier layers "
                             f"(-1: the network input)")
        ins = [tuple(net.input_shape) if j < 0 else outs[j] for j in src]
        check_layer_inputs(layer, ins)
        out = layer_out_shape(layer, ins)
        if min(out[1:]) < 1:
            raise ModelError(f"layer {layer.name}: its kernel or pooling window does not fit "
                             f"its input {ins[0]} (the output would be {out})")
        outs.append(out)
    used = {j for i in range(len(net.layers)) for j in net.sources(i)}
    dead = [layer.name for i, layer in enumerate(net.layers[:-1]) if i not in used]
    if dead:
        raise ModelError(f"layer {dead[0]}: its output is used by no layer and is not the "
                         f"network output")


def check_layer_inputs(layer: Layer, ins: list[tuple]):
    arity = {"add": 2, "concat": None}.get(layer.kind, 2 if layer.join else 1)
    if (arity is None and len(ins) < 2) or (arity is not None and len(ins) != arity):
        raise ModelError(f"layer {layer.name}: a {layer.kind} layer takes "
                         f"{'two or more' if arity is None else arity} input(s), not {len(ins)}")
    c, h, w = ins[0]
    if min(c, h, w) < 1:
        raise ModelError(f"layer {layer.name}: input {ins[0]} is empty")
    if layer.join:
        s = layer.join
        cb, hb, wb = ins[1]
        if layer.kind != "conv" or layer.weight.shape[2:] != (1, 1) or layer.stride != 1 \
                or layer.pad or (h, w) != (-(-hb // s), -(-wb // s)):
            raise ModelError(f"layer {layer.name}: a joined conv is 1x1, stride 1, no padding, "
                             f"its second input {ins[1]} at every {s}th pixel the first's size "
                             f"{ins[0]}")
        c += cb
    if layer.kind == "conv" and layer.weight.shape[1] != c:
        raise ModelError(f"layer {layer.name}: weights expect {layer.weight.shape[1]} input "
                         f"channels, the input has {c}")
    if layer.kind == "fc" and layer.weight.shape[1] != c * h * w:
        raise ModelError(f"layer {layer.name}: weights expect {layer.weight.shape[1]} inputs, "
                         f"the flattened input has {c * h * w}")
    if layer.kind == "add" and ins[0] != ins[1]:
        raise ModelError(f"layer {layer.name}: a residual add needs two inputs of one shape, "
                         f"not {ins[0]} and {ins[1]}")
    if layer.kind == "concat" and len({shape[1:] for shape in ins}) != 1:
        raise ModelError(f"layer {layer.name}: concat inputs must share H and W, not "
                         f"{', '.join(map(str, ins))}")
    if layer.kind in ("maxpool", "avgpool") and not layer.pool:
        raise ModelError(f"layer {layer.name}: a {layer.kind} layer needs its window (pool)")
