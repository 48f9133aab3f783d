"""Quantization of a float network to Sense's int8 numerics (SPEC section 2), with optional
balanced 1/2 pruning (SPEC section 3).

* Weights: per-output-channel symmetric int8, scale max|w_k| / 127.
* Activations: symmetric int8 (zero point 0), one scale per layer output, max |y| / 127 over the
  calibration inputs (the network input likewise). Tensors that must share a scale share the
  largest range: a max-pool's input and output, and every input and the output of a concat
  (SPEC section 8: a concat is a layout operation).
* Residual add: (mult_a, mult_b, shift) from the two input scales over the output scale
  (`golden.add_mult_shift`); average pooling: its divisor and input/output scale ratio.
* Bias: int32, bias / (s_in * s_w[k]), rounded.
* A joined conv (`host.join`): each weight column times its own input's scale first, then
  quantized per output channel like any conv with input scale 1 (one integer accumulation over
  both int8 inputs).
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
from host.model_files import forward_onnxruntime
from host.nn import LayerGraph, Network, forward, joined
from host.s2d import blocked_input
from host.sparse import check_balanced, kept_mask, pad_channels, prune_balanced

__all__ = ["QLayer", "QNetwork", "as_network", "quantize", "prune_network", "run_int", "quantize_input",
           "predict_int", "predict_float"]


@dataclass
class QLayer:
    kind: str                 # a host.nn.KINDS entry
    name: str
    w: np.ndarray | None      # int8 (K, C, R, S); fc: (K, C, H, W) over its (C, H, W) input
    bias: np.ndarray | None   # int32 (K,)
    mult: np.ndarray | None   # int32 (K,); add: (mult_a, mult_b)
    shift: np.ndarray | None  # int32 (K,); add: (shift,)
    stride: int = 1
    pad: int = 0
    relu: bool = False
    pool: tuple | None = None
    in_scale: float = 1.0
    w_scale: np.ndarray | None = None
    out_scale: float = 1.0
    mask: np.ndarray | None = None   # kept mask (bool, like w) when pruned
    inputs: list | None = None       # as host.nn.Layer.inputs
    count_include_pad: bool = False  # avgpool
    pool_scale: float = 1.0          # avgpool / gap: input scale / output scale
    # conv: a batch's images stacked in one map (host.batch): (rows of each image's slot, rows
    # of it the image owns); the other rows of every slot (separator rows) are zeros
    sep: tuple | None = None
    # conv: a batch's images stacked in one map without separator rows (host.batch): (input
    # rows, output rows) of each image, which is padded on its own (the gateware's image rows)
    image_rows: tuple | None = None
    # conv, inside the packer only: an input gather (host.image `gathered_view`): (stride s,
    # the input's full width); the layer is then its stride-1 view over every s-th pixel
    gather: tuple | None = None
    pool_count: int | None = None    # avgpool: every window's divisor count (host.batch's GAP)
    join: int = 0                    # conv: as host.nn.Layer.join (its in_scale is then 1)

    @property
    def out_channels(self):
        return self.w.shape[0]


@dataclass
class QNetwork(LayerGraph):
    input_shape: tuple
    layers: list[QLayer]
    input_scale: float
    host_ops: list[str] = field(default_factory=list)
    group: int | None = None          # M when balanced-sparse, None when dense
    name: str = "model"
    # the first conv over blocks of the input (host.s2d.SpaceToDepth, set by the packer): the
    # network still takes `input_shape`; its first layer reads `accel_input(x)`
    s2d: object = None

    def with_layers(self, layers):
        return replace(self, layers=list(layers))

    @property
    def accel_shape(self) -> tuple:
        """(C, H, W) of the tensor the first layer reads: the input, or its blocked map."""
        return tuple(self.s2d.shape) if self.s2d else tuple(self.input_shape)

    def accel_input(self, x: np.ndarray) -> np.ndarray:
        """Input(s) x ((N,) C, H, W) as the first layer reads them (host.s2d.blocked_input)."""
        return x if self.s2d is None else blocked_input(x, self.s2d)

    def evaluate(self, x, layer_fn, return_all: bool = False):
        return super().evaluate(self.accel_input(x), layer_fn, return_all)


def _as_conv(layer, shape):
    """Weights as (K, C, R, S): an fc layer's (K, C*H*W) weights over its (C, H, W) input become
    a (K, C, H, W) kernel (flatten order is (c, h, w))."""
    w = layer.weight
    return w.reshape(w.shape[0], *shape) if layer.kind == "fc" else w


def prune_network(net: Network, group: int, pruned: bool = False):
    """Balanced 1/2 pruning of every layer (by magnitude), or, with `pruned`, a check that the
    weights already follow the pattern. Returns (network with pruned weights, kept masks)."""
    layers, masks = [], []
    for layer, ins in zip(net.layers, net.in_shapes()):
        if not layer.has_weights:
            layers.append(layer)
            masks.append(None)
            continue
        w = _as_conv(layer, ins[0])
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
    for layer in (layer for layer in net.layers if layer.has_weights):
        check_finite(f"layer {layer.name}'s weights", layer.weight)
        check_finite(f"layer {layer.name}'s bias", layer.bias)
    masks = [None] * len(net.layers)
    if group is not None:
        net, masks = prune_network(net, group, pruned)
    outs = calibration_forward(net, calib)
    scales = _shared_scales(net, [np.abs(calib).max()] + [np.abs(y).max() for y in outs])
    qlayers = [_quantize_layer(layer, ins[0], [scales[j + 1] for j in net.sources(i)],
                               scales[i + 1], masks[i])
               for i, (layer, ins) in enumerate(zip(net.layers, net.in_shapes()))]
    return QNetwork(tuple(net.input_shape), qlayers, scales[0], list(net.host_ops), group,
                    net.name)


#: Above this many float MACs per calibration run, onnxruntime computes the float forward (numpy
#: below: exact float64, and no onnxruntime needed for small models).
ORT_MACS = 2e9


def calibration_forward(net: Network, calib: np.ndarray) -> list:
    """Every layer's float output on the calibration inputs: numpy (`host.nn.forward`), or
    onnxruntime for large networks when it is installed (VGG-16 with 8 images: seconds instead
    of minutes)."""
    macs = 0
    for layer, out in zip(net.layers, net.out_shapes()):
        if layer.has_weights:
            per = layer.weight[0].size
            macs += layer.out_channels * per * (1 if layer.kind == "fc" else out[1] * out[2] *
                                                (1 if not layer.pool else 4))
    if macs * len(calib) > ORT_MACS:
        try:
            return forward_onnxruntime(net, calib)
        except ImportError:                   # onnxruntime is optional outside the tests
            pass
    return forward(net, calib, return_all=True)


def _shared_scales(net: Network, ranges: list) -> list[float]:
    """Scale of the network input (index 0) and of every layer output (index i + 1): max |y| /
    127, the largest range of every set of tensors that must share one scale (module
    docstring)."""
    parent = list(range(len(ranges)))

    def root(t):
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for i, layer in enumerate(net.layers):
        if layer.kind in ("maxpool", "concat"):
            for j in net.sources(i):
                parent[root(j + 1)] = root(i + 1)
    group_max = {}
    for t, r in enumerate(ranges):
        group_max[root(t)] = max(group_max.get(root(t), 0.0), float(r))
    return [_scale(group_max[root(t)]) for t in range(len(ranges))]


#: Output channels quantized at a time.
QUANT_BLOCK = 256


def _quantize_layer(layer, in_shape, s_ins, s_out, mask) -> QLayer:
    """One layer's integer form, from its input scales and output scale."""
    s_in = s_ins[0]
    w = _as_conv(layer, in_shape) if layer.has_weights else None
    if layer.join:          # each input's scale into its own columns (module docstring)
        ca = in_shape[0]
        w = np.concatenate([w[:, :ca] * s_ins[0], w[:, ca:] * s_ins[1]], axis=1)
        s_in = 1.0
    common = dict(relu=layer.relu, pool=layer.pool, in_scale=s_in, out_scale=s_out,
                  inputs=layer.inputs, count_include_pad=layer.count_include_pad,
                  join=layer.join)
    if layer.kind == "add":
        ma, mb, shift = golden.add_mult_shift(s_ins[0] / s_out, s_ins[1] / s_out)
        return QLayer("add", layer.name, None, None, np.array([ma, mb], np.int32),
                      np.array([shift], np.int32), **common)
    if not layer.has_weights:
        return QLayer(layer.kind, layer.name, None, None, None, None, pool_scale=s_in / s_out,
                      **common)
    k = w.shape[0]
    s_w = np.array([_scale(np.abs(w[i]).max()) for i in range(k)])
    wq = np.empty(w.shape, np.int8)
    for k0 in range(0, k, QUANT_BLOCK):          # float64 in blocks: bounded temporaries
        block = w[k0:k0 + QUANT_BLOCK].astype(np.float64)
        wq[k0:k0 + QUANT_BLOCK] = np.clip(
            np.rint(block / s_w[k0:k0 + QUANT_BLOCK, None, None, None]), -127, 127)
    if mask is not None:
        wq = np.where(mask, wq, 0).astype(np.int8)
    bias = np.clip(np.rint(layer.bias / (s_in * s_w)), golden.INT32_MIN, golden.INT32_MAX)
    mult, shift = golden.scale_to_mult_shift(s_in * s_w / s_out)
    return QLayer(layer.kind, layer.name, wq, bias.astype(np.int32), mult, shift, layer.stride,
                  layer.pad, w_scale=s_w, mask=mask, **common)


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


def layer_int(layer: QLayer, *xs: np.ndarray) -> np.ndarray:
    """One integer layer on its (N, C, H, W) int8 inputs, exactly as the accelerator computes it
    (host.golden)."""
    x = xs[0]
    if layer.kind == "add":
        return golden.residual_add(xs[0], xs[1], int(layer.mult[0]), int(layer.mult[1]),
                                   int(layer.shift[0]), relu=layer.relu)
    if layer.kind == "concat":
        return np.concatenate(xs, axis=1)
    if layer.kind == "maxpool":
        return golden.maxpool2d(x, layer.pool)
    if layer.kind == "avgpool":
        return golden.avgpool2d(x, layer.pool, count_include_pad=layer.count_include_pad,
                                scale=layer.pool_scale, count=layer.pool_count)
    if layer.kind == "gap":
        return golden.global_avgpool(x, scale=layer.pool_scale)
    if layer.join:
        x = joined(xs, layer.join)
    acc = golden.conv2d(x, layer.w, stride=layer.stride, padding=layer.pad,
                        image_rows=layer.image_rows[0] if layer.image_rows else None)
    y = golden.requantize(golden.add_bias(acc, layer.bias), layer.mult, layer.shift)
    if layer.relu:
        y = golden.relu(y)
    if layer.pool:
        k, s, p = layer.pool
        y = golden.maxpool2d(y, k, s, p)
    if layer.sep:
        slot, valid = layer.sep
        y = y.copy()
        y[:, :, np.arange(y.shape[2]) % slot >= valid] = 0
    return y


def run_int(qnet: QNetwork, xq: np.ndarray, return_all: bool = False):
    """The integer network (host.golden) on int8 inputs; the last layer's int8 output (N, K), or
    every layer's (N, C, H, W) output with return_all."""
    y = qnet.evaluate(xq, layer_int, return_all)
    return y if return_all else y.reshape(y.shape[0], -1)


def as_network(qnet: QNetwork) -> Network:
    """The layer graph of a quantized network as a float `Network` (the integer weights as
    floats): what the planner and estimate (`host.plan`) read."""
    from host.nn import Layer

    layers = []
    for q in qnet.layers:
        weight = None
        if q.w is not None:
            weight = q.w.astype(np.float64)
            if q.kind == "fc":
                weight = weight.reshape(weight.shape[0], -1)
        layers.append(Layer(q.kind, q.name, weight,
                            None if q.bias is None else q.bias.astype(np.float64),
                            stride=q.stride, pad=q.pad, relu=q.relu, pool=q.pool,
                            inputs=q.inputs, count_include_pad=q.count_include_pad,
                            join=q.join))
    return Network(qnet.accel_shape, layers, list(qnet.host_ops), qnet.name)


def predict_int(qnet: QNetwork, x: np.ndarray) -> np.ndarray:
    return run_int(qnet, quantize_input(qnet, x)).argmax(axis=1)


def predict_float(net: Network, x: np.ndarray) -> np.ndarray:
    return forward(net, x).argmax(axis=1)
