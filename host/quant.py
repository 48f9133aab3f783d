"""Quantization of a float network to Sense's int8 numerics (SPEC section 2), with optional
balanced 1/2 pruning (SPEC section 3).

* Weights: per-output-channel symmetric int8, scale max|w_k| / 127.
* Activations: symmetric int8 (zero point 0), one scale per layer output, max |y| / 127 over the
  calibration inputs (the network input likewise).
* Bias: int32, bias / (s_in * s_w[k]), rounded.
* Requantization: s_in * s_w[k] / s_out as (mult, shift), see host.golden.scale_to_mult_shift.
* A fully-connected layer runs as a convolution whose kernel covers its whole (C, H, W) input
  (R x S = H x W, no padding, output 1x1): the same sums as over the flattened input, with the
  reduction in the accelerator's (kh, kw, c) order, which is also the order activations lie in
  DRAM. Over a 1x1 map it is the 1x1 convolution of SPEC section 2.
The integer network is run by `run_int`, which is host.golden layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from host import golden
from host.nn import Network, forward
from host.sparse import check_balanced, kept_mask, pad_channels, prune_balanced

__all__ = ["QLayer", "QNetwork", "quantize", "prune_network", "run_int", "quantize_input",
           "predict_int", "predict_float"]


@dataclass
class QLayer:
    kind: str                 # "conv" | "fc"
    name: str
    w: np.ndarray             # int8 (K, C, R, S); fc: (K, C, H, W) over its (C, H, W) input
    bias: np.ndarray          # int32 (K,)
    mult: np.ndarray          # int32 (K,)
    shift: np.ndarray         # int32 (K,)
    stride: int = 1
    pad: int = 0
    relu: bool = False
    pool: tuple | None = None
    in_scale: float = 1.0
    w_scale: np.ndarray | None = None
    out_scale: float = 1.0
    mask: np.ndarray | None = None   # kept mask (bool, like w) when pruned

    @property
    def out_channels(self):
        return self.w.shape[0]


@dataclass
class QNetwork:
    input_shape: tuple
    layers: list[QLayer]
    input_scale: float
    host_ops: list[str] = field(default_factory=list)
    group: int | None = None          # M when balanced-sparse, None when dense
    name: str = "model"

    def with_layers(self, layers):
        return replace(self, layers=list(layers))


def _as_conv(layer, shape):
    """Weights as (K, C, R, S): an fc layer's (K, C*H*W) weights over its (C, H, W) input become
    a (K, C, H, W) kernel (flatten order is (c, h, w))."""
    w = layer.weight
    return w.reshape(w.shape[0], *shape) if layer.kind == "fc" else w


def prune_network(net: Network, group: int, pruned: bool = False):
    """Balanced 1/2 pruning of every layer (by magnitude), or, with `pruned`, a check that the
    weights already follow the pattern. Returns (network with pruned weights, kept masks)."""
    layers, masks = [], []
    for layer, shape in zip(net.layers, net.shapes()):
        w = _as_conv(layer, shape)
        c = w.shape[1]
        wp = pad_channels(w, group, axis=1)
        if pruned:
            check_balanced(wp, group, layer.name)
            mask = kept_mask(wp, group, layer.name)
            new = wp
        else:
            new, mask = prune_balanced(wp, group)
        new = new[:, :c].reshape(layer.weight.shape)
        layers.append(replace(layer, weight=new))
        masks.append(mask[:, :c])
    return net.with_layers(layers), masks


def quantize(net: Network, calib: np.ndarray, group: int | None = None,
             pruned: bool = False) -> QNetwork:
    """Quantize `net` with activation ranges from `calib` (N, C, H, W) float inputs. With `group`
    (M), prune to balanced 1/2 sparsity first (or, with `pruned`, verify it)."""
    calib = np.asarray(calib)
    if calib.ndim != 4 or tuple(calib.shape[1:]) != tuple(net.input_shape) or not len(calib):
        raise ValueError(f"calibration inputs must have shape (N, "
                         f"{', '.join(map(str, net.input_shape))}) with N >= 1, not {calib.shape}")
    check_finite("the calibration inputs", calib)
    for layer in net.layers:
        check_finite(f"layer {layer.name}'s weights", layer.weight)
        check_finite(f"layer {layer.name}'s bias", layer.bias)
    masks = [None] * len(net.layers)
    if group is not None:
        net, masks = prune_network(net, group, pruned)
    outs = forward(net, calib, return_all=True)
    s_in = _scale(np.abs(calib).max())
    input_scale = s_in
    qlayers = []
    for layer, shape, y, mask in zip(net.layers, net.shapes(), outs, masks):
        w = _as_conv(layer, shape).astype(np.float64)
        k = w.shape[0]
        s_w = np.array([_scale(np.abs(w[i]).max()) for i in range(k)])
        wq = np.clip(np.rint(w / s_w[:, None, None, None]), -127, 127).astype(np.int8)
        if mask is not None:
            wq = np.where(mask, wq, 0).astype(np.int8)
        bias = np.clip(np.rint(layer.bias / (s_in * s_w)), golden.INT32_MIN, golden.INT32_MAX)
        s_out = _scale(np.abs(y).max())
        mult, shift = golden.scale_to_mult_shift(s_in * s_w / s_out)
        qlayers.append(QLayer(layer.kind, layer.name, wq, bias.astype(np.int32), mult, shift,
                              layer.stride, layer.pad, layer.relu, layer.pool, s_in, s_w, s_out,
                              mask))
        s_in = s_out
    return QNetwork(tuple(net.input_shape), qlayers, input_scale, list(net.host_ops), group,
                    net.name)


def check_finite(what: str, values) -> None:
    """Refuse values that are not real, finite numbers (a NaN would silently become scale 1)."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be real numbers, not {values.dtype}")
    if values.size and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"{what} hold {bad} NaN or infinite values")


def _scale(max_abs) -> float:
    return float(max_abs) / 127 if max_abs > 0 else 1.0


def quantize_input(qnet: QNetwork, x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x / qnet.input_scale), -128, 127).astype(np.int8)


def layer_int(layer: QLayer, x: np.ndarray) -> np.ndarray:
    """One integer layer on (N, C, H, W) int8, exactly as the accelerator computes it."""
    acc = golden.conv2d(x, layer.w, stride=layer.stride, padding=layer.pad)
    y = golden.requantize(golden.add_bias(acc, layer.bias), layer.mult, layer.shift)
    if layer.relu:
        y = golden.relu(y)
    if layer.pool:
        k, s, p = layer.pool
        y = golden.maxpool2d(y, k, s, p)
    return y


def run_int(qnet: QNetwork, xq: np.ndarray, return_all: bool = False):
    """The integer network (host.golden) on int8 inputs; the last layer's int8 output (N, K), or
    every layer's output (each layer's input is the previous one's) with return_all."""
    outs = []
    y = xq
    for layer in qnet.layers:
        y = layer_int(layer, y)
        outs.append(y)
    return outs if return_all else y.reshape(y.shape[0], -1)


def predict_int(qnet: QNetwork, x: np.ndarray) -> np.ndarray:
    return run_int(qnet, quantize_input(qnet, x)).argmax(axis=1)


def predict_float(net: Network, x: np.ndarray) -> np.ndarray:
    return forward(net, x).argmax(axis=1)
