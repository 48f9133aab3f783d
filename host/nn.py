"""Float CNNs as Sense runs them: a chain of conv / fully-connected layers, each optionally followed
by ReLU and max-pool, then host-side operators (softmax). Imported from ONNX or from an .npz of
weights plus a layer list; evaluated in numpy (the float reference for quantization).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from host import golden
from hw.files import atomic_write

__all__ = ["Layer", "Network", "ModelError", "load_model", "load_onnx", "load_npz", "save_npz",
           "save_onnx", "forward",
           "HOST_OPS"]

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


# -- ONNX import ------------------------------------------------------------------------------------

SUPPORTED = ("Conv", "Gemm", "MatMul", "Add", "Relu", "MaxPool", "Flatten", "Reshape",
             "BatchNormalization", "Softmax", "Dropout", "Identity")


def load_onnx(path) -> Network:
    """Import a sequential float CNN from ONNX, folding batch-norm into the preceding conv."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    consts = {}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ModelError(f"{path}: the model must have exactly one input, not {len(inputs)}")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or min(dims[1:]) < 1:
        raise ModelError(f"{path}: input {inputs[0].name!r} must be (N, C, H, W) with fixed C, "
                         f"H, W; it is {dims}")
    layers: list[Layer] = []
    host_ops: list[str] = []
    flat = False
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        where = f"node {node.name or node.output[0]!r} ({op})"
        if host_ops and op not in ("Identity", "Dropout"):
            raise ModelError(f"{where} follows a host-side operator; only Softmax may end the "
                             f"network")
        if op == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
        elif op == "Conv":
            if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise ModelError(f"{where}: grouped or dilated convolutions are not supported")
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            strides = list(attrs.get("strides", [1, 1]))
            if len(set(pads)) != 1 or len(set(strides)) != 1:
                raise ModelError(f"{where}: padding {pads} and strides {strides} must be the same "
                                 f"on every side")
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ModelError(f"{where}: auto_pad is not supported; export explicit pads")
            w = _init(inits, node.input[1], where)
            b = _init(inits, node.input[2], where) if len(node.input) > 2 and node.input[2] \
                else np.zeros(w.shape[0])
            layers.append(Layer("conv", node.name or f"conv{len(layers)}", w, b,
                                stride=strides[0], pad=pads[0]))
        elif op in ("Gemm", "MatMul"):
            if not flat and layers and layers[-1].kind == "conv":
                raise ModelError(f"{where}: a fully-connected layer needs Flatten or Reshape "
                                 f"before it")
            w = _init(inits, node.input[1], where)
            if op == "Gemm":
                if attrs.get("transA", 0):
                    raise ModelError(f"{where}: transA is not supported")
                w = w if attrs.get("transB", 0) else w.T
                w = w * attrs.get("alpha", 1.0)
                b = (_init(inits, node.input[2], where) * attrs.get("beta", 1.0)
                     if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0]))
            else:
                w, b = w.T, np.zeros(w.shape[1])
            layers.append(Layer("fc", node.name or f"fc{len(layers)}", w, b.reshape(-1)))
            flat = False
        elif op == "Add":
            last = layers[-1] if layers else None
            other = next((n for n in node.input if n in inits), None)
            if last is None or other is None or last.kind != "fc" or last.relu or last.pool:
                raise ModelError(f"{where}: only a bias Add right after MatMul is supported "
                                 f"(residual adds run on the host: not in a sequential model)")
            last.bias = last.bias + inits[other].reshape(-1)
        elif op == "BatchNormalization":
            last = layers[-1] if layers else None
            if last is None or last.kind != "conv" or last.relu or last.pool:
                raise ModelError(f"{where}: batch-norm must directly follow a Conv to be folded")
            scale, bias, mean, var = (_init(inits, n, where) for n in node.input[1:5])
            k_out = last.weight.shape[0]
            if any(a.shape != (k_out,) for a in (scale, bias, mean, var)):
                raise ModelError(f"{where}: batch-norm parameters must have one entry per "
                                 f"output channel ({k_out})")
            k = scale / np.sqrt(var + attrs.get("epsilon", 1e-5))
            last.weight = last.weight * k[:, None, None, None]
            last.bias = (last.bias - mean) * k + bias
        elif op == "Relu":
            if not layers or layers[-1].relu or layers[-1].pool:
                raise ModelError(f"{where}: ReLU must follow a Conv or fully-connected layer")
            layers[-1].relu = True
        elif op == "MaxPool":
            if not layers or layers[-1].pool:
                raise ModelError(f"{where}: max-pool must follow a layer")
            ks = list(attrs["kernel_shape"])
            strides = list(attrs.get("strides", ks))
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if len(set(ks)) != 1 or len(set(strides)) != 1 or len(set(pads)) != 1:
                raise ModelError(f"{where}: max-pool must be square with equal strides and pads")
            layers[-1].pool = (ks[0], strides[0], pads[0])
        elif op in ("Flatten", "Reshape"):
            flat = True
        elif op == "Softmax":
            host_ops.append("softmax")
        elif op in ("Dropout", "Identity"):
            pass
        else:
            raise ModelError(f"unsupported ONNX operator {op!r} ({where}); Sense imports "
                             f"{', '.join(SUPPORTED)}")
    if not layers:
        raise ModelError(f"{path}: no Conv or fully-connected layer found")
    net = Network(tuple(dims[1:]), layers, host_ops, name=Path(path).stem)
    _check_shapes(net)
    return net


def _init(inits, name, where):
    if name not in inits:
        raise ModelError(f"{where}: input {name!r} must be a constant initializer")
    return inits[name]


def _check_shapes(net: Network):
    c, h, w = net.input_shape
    for layer, shape in zip(net.layers, net.shapes()):
        c, h, w = shape
        if layer.kind == "conv" and layer.weight.shape[1] != c:
            raise ModelError(f"layer {layer.name}: weights expect {layer.weight.shape[1]} input "
                             f"channels, the input has {c}")
        if layer.kind == "fc" and layer.weight.shape[1] != c * h * w:
            raise ModelError(f"layer {layer.name}: weights expect {layer.weight.shape[1]} inputs, "
                             f"the flattened input has {c * h * w}")
        if min(shape[1:]) < 1:
            raise ModelError(f"layer {layer.name}: input {shape} is empty")


# -- .npz import ------------------------------------------------------------------------------------

def load_npz(path) -> Network:
    """An .npz holding the weights and a JSON layer list under key "layers":
    ``{"input_shape": [C, H, W], "layers": [{"kind": "conv", "weight": "c1.w", "bias": "c1.b",
    "stride": 1, "pad": 1, "relu": true, "pool": [2, 2, 0]}, {"kind": "fc", ...}],
    "host_ops": ["softmax"]}``."""
    with np.load(path) as z:
        if "layers" not in z:
            raise ModelError(f"{path}: no 'layers' entry (a JSON layer list)")
        spec = json.loads(bytes(z["layers"]).decode())
        arrays = {k: z[k] for k in z.files}
    layers = []
    for i, entry in enumerate(spec.get("layers", [])):
        kind = entry.get("kind")
        if kind not in ("conv", "fc"):
            raise ModelError(f"{path}: layer {i} has kind {kind!r}; kinds are conv, fc")
        for key in ("weight", "bias"):
            if entry.get(key) not in arrays:
                raise ModelError(f"{path}: layer {i} names {key} array {entry.get(key)!r}, "
                                 f"which is not in the file")
        pool = entry.get("pool")
        layers.append(Layer(kind, entry.get("name", f"{kind}{i}"),
                            arrays[entry["weight"]].astype(np.float64),
                            arrays[entry["bias"]].astype(np.float64).reshape(-1),
                            stride=int(entry.get("stride", 1)), pad=int(entry.get("pad", 0)),
                            relu=bool(entry.get("relu", False)),
                            pool=tuple(pool) if pool else None))
    if not layers:
        raise ModelError(f"{path}: the layer list is empty")
    bad = [op for op in spec.get("host_ops", []) if op not in HOST_OPS]
    if bad:
        raise ModelError(f"{path}: unknown host operator {bad[0]!r}; known: {', '.join(HOST_OPS)}")
    net = Network(tuple(spec["input_shape"]), layers, list(spec.get("host_ops", [])),
                  name=Path(path).stem)
    _check_shapes(net)
    return net


def save_npz(net: Network, path) -> None:
    arrays, entries = {}, []
    for i, layer in enumerate(net.layers):
        arrays[f"{i}.weight"] = layer.weight
        arrays[f"{i}.bias"] = layer.bias
        entries.append({"kind": layer.kind, "name": layer.name, "weight": f"{i}.weight",
                        "bias": f"{i}.bias", "stride": layer.stride, "pad": layer.pad,
                        "relu": layer.relu, "pool": list(layer.pool) if layer.pool else None})
    spec = {"input_shape": list(net.input_shape), "layers": entries, "host_ops": net.host_ops}
    arrays["layers"] = np.frombuffer(json.dumps(spec).encode(), np.uint8)
    np.savez(path, **arrays)


def load_model(path) -> Network:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.suffix == ".onnx":
        return load_onnx(path)
    if path.suffix == ".npz":
        return load_npz(path)
    raise ModelError(f"{path}: model files are .onnx or .npz, not {path.suffix or 'no suffix'}")


def save_onnx(net: Network, path) -> None:
    """Write `net` as a float ONNX model (Conv/Gemm, Relu, MaxPool, Flatten, Softmax), opset 13."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    cur = "input"
    for i, layer in enumerate(net.layers):
        w, b = f"{layer.name}.weight", f"{layer.name}.bias"
        if layer.kind == "fc":
            nodes.append(helper.make_node("Flatten", [cur], [f"t{i}_flat"], axis=1))
            inits += [numpy_helper.from_array(layer.weight.astype(np.float32), w),
                      numpy_helper.from_array(layer.bias.astype(np.float32), b)]
            nodes.append(helper.make_node("Gemm", [f"t{i}_flat", w, b], [f"t{i}"], transB=1,
                                          name=layer.name))
        else:
            inits += [numpy_helper.from_array(layer.weight.astype(np.float32), w),
                      numpy_helper.from_array(layer.bias.astype(np.float32), b)]
            nodes.append(helper.make_node("Conv", [cur, w, b], [f"t{i}"], name=layer.name,
                                          strides=[layer.stride] * 2, pads=[layer.pad] * 4,
                                          kernel_shape=list(layer.weight.shape[2:])))
        cur = f"t{i}"
        if layer.relu:
            nodes.append(helper.make_node("Relu", [cur], [f"{cur}_relu"]))
            cur = f"{cur}_relu"
        if layer.pool:
            k, s, p = layer.pool
            nodes.append(helper.make_node("MaxPool", [cur], [f"{cur}_pool"], kernel_shape=[k, k],
                                          strides=[s, s], pads=[p] * 4))
            cur = f"{cur}_pool"
    last = net.shapes()[-1]
    out_shape = [None, last[0]] if net.layers[-1].kind == "fc" else [None, *last]
    if "softmax" in net.host_ops:
        nodes.append(helper.make_node("Softmax", [cur], ["probs"], axis=1))
        cur = "probs"
    graph = helper.make_graph(
        nodes, net.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, *net.input_shape])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, out_shape)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="sense")
    model.ir_version = 8
    onnx.checker.check_model(model)
    atomic_write(path, model.SerializeToString())
