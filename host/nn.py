"""Float CNNs as Sense runs them: a chain of conv / fully-connected layers, each optionally followed
by ReLU and max-pool, then host-side operators (softmax); evaluated in numpy (the float reference
for quantization). Files: `host.model_files` (.npz, and ONNX through `host.onnx_import`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from host import golden

__all__ = ["Layer", "Network", "ModelError", "forward", "check_shapes", "HOST_OPS"]

#: Operators that run on the host after the accelerator's last layer (SPEC section 2).
HOST_OPS = ("softmax",)


class ModelError(ValueError):
    """A model Sense cannot import; the message names the operator, node or field."""


@dataclass
class Layer:
    """One accelerator layer. conv: weight (K, C, R, S); fc: weight (K, C*H*W) over the flattened
    input. pool = (kernel, stride, padding) of a max-pool after the ReLU, or None."""

    kind: str
    name: str
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    pad: int = 0
    relu: bool = False
    pool: tuple | None = None

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]


@dataclass
class Network:
    input_shape: tuple          # (C, H, W) of one image
    layers: list[Layer]
    host_ops: list[str] = field(default_factory=list)
    name: str = "model"

    def shapes(self) -> list[tuple]:
        """The (C, H, W) input shape of every layer, and the output shape last."""
        shapes = [tuple(self.input_shape)]
        c, h, w = self.input_shape
        for layer in self.layers:
            if layer.kind == "fc":
                c, h, w = layer.out_channels, 1, 1
            else:
                _, _, r, s = layer.weight.shape
                h = golden.output_size(h, r, layer.stride, layer.pad)
                w = golden.output_size(w, s, layer.stride, layer.pad)
                c = layer.out_channels
            if layer.pool:
                k, st, p = layer.pool
                h, w = golden.output_size(h, k, st, p), golden.output_size(w, k, st, p)
            shapes.append((c, h, w))
        return shapes

    def with_layers(self, layers) -> "Network":
        return replace(self, layers=list(layers))


# -- float reference ------------------------------------------------------------------------------

def conv2d_float(x, w, stride, pad):
    windows = golden.conv_windows(x, w.shape[2:], (stride, stride), (pad, pad))
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def maxpool_float(x, pool):
    k, s, p = pool
    return golden.conv_windows(x, (k, k), (s, s), (p, p), pad_value=-np.inf).max(axis=(4, 5))


def layer_forward(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Float forward of one layer on (N, C, H, W) (fc flattens its input to (N, C*H*W, 1, 1))."""
    if layer.kind == "fc":
        y = x.reshape(x.shape[0], -1) @ layer.weight.T.astype(np.float64) + layer.bias
        y = y[:, :, None, None]
    else:
        y = conv2d_float(x, layer.weight.astype(np.float64), layer.stride, layer.pad)
        y = y + layer.bias[None, :, None, None]
    if layer.relu:
        y = np.maximum(y, 0)
    if layer.pool:
        y = maxpool_float(y, layer.pool)
    return y


def forward(net: Network, x: np.ndarray, return_all: bool = False):
    """Float forward of (N, C, H, W) inputs; returns the last layer's (N, K) output (before host
    operators), or every layer's output with return_all."""
    outs = []
    y = x.astype(np.float64)
    for layer in net.layers:
        y = layer_forward(layer, y)
        outs.append(y)
    return outs if return_all else y.reshape(y.shape[0], -1)


def check_shapes(net: Network):
    """Every layer's weights take its input, and every layer's output (after its max-pool) is at
    least 1x1; ModelError names the layer otherwise."""
    shapes = net.shapes()
    for layer, shape, out in zip(net.layers, shapes, shapes[1:]):
        c, h, w = shape
        if layer.kind == "conv" and layer.weight.shape[1] != c:
            raise ModelError(f"layer {layer.name}: weights expect {layer.weight.shape[1]} input "
                             f"channels, the input has {c}")
        if layer.kind == "fc" and layer.weight.shape[1] != c * h * w:
            raise ModelError(f"layer {layer.name}: weights expect {layer.weight.shape[1]} inputs, "
                             f"the flattened input has {c * h * w}")
        if min(shape[1:]) < 1:
            raise ModelError(f"layer {layer.name}: input {shape} is empty")
        if min(out[1:]) < 1:
            raise ModelError(f"layer {layer.name}: its kernel or max-pool window does not fit "
                             f"its input {shape} (the output would be {out})")
