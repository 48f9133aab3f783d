"""Model files: `load_model` reads an .onnx (`host.onnx_import`) or an .npz of weights plus a
layer list; `save_npz` and `save_onnx` write them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from host import golden
from host.nn import (HOST_OPS, KINDS, WEIGHT_KINDS, Layer, ModelError, Network, check_shapes,
                     simplify_chain)
from host.onnx_import import load_onnx
from hw.files import atomic_write

__all__ = ["load_model", "load_npz", "save_npz", "save_onnx", "to_onnx", "forward_onnxruntime"]


# -- .npz import ------------------------------------------------------------------------------------

def load_npz(path) -> Network:
    """An .npz holding the weights and a JSON layer list under key "layers":
    ``{"input_shape": [C, H, W], "layers": [{"kind": "conv", "weight": "c1.w", "bias": "c1.b",
    "stride": 1, "pad": 1, "relu": true, "pool": [2, 2, 0]}, {"kind": "fc", ...}],
    "host_ops": ["softmax"]}``. Graphs: every entry may name its `inputs` (earlier layer
    indices, -1 the network input; default the previous layer); kinds add, concat, maxpool,
    avgpool (with "window": {"kernel", "stride", "pads", "dilation", "ceil_mode"} and
    "count_include_pad") and gap need no arrays."""
    arrays = _read_npz(path)
    try:
        spec = json.loads(bytes(arrays["layers"]).decode())
        if not isinstance(spec, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: the 'layers' entry is not a JSON layer list ({e})") from None
    shape = spec.get("input_shape")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(v, int) for v in shape):
        raise ModelError(f"{path}: the layer list needs 'input_shape': [C, H, W]")
    layers = [_npz_layer(path, i, entry, arrays) for i, entry in enumerate(spec.get("layers", []))]
    if not layers:
        raise ModelError(f"{path}: the layer list is empty")
    bad = [op for op in spec.get("host_ops", []) if op not in HOST_OPS]
    if bad:
        raise ModelError(f"{path}: unknown host operator {bad[0]!r}; known: {', '.join(HOST_OPS)}")
    net = simplify_chain(Network(tuple(spec["input_shape"]), layers,
                                 list(spec.get("host_ops", [])), name=Path(path).stem))
    check_shapes(net)
    return net


def _read_npz(path) -> dict:
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ModelError(f"{path}: a model .npz holds several arrays and a 'layers' entry, "
                             f"not a single array")
        with z:
            arrays = {k: z[k] for k in z.files}
    except ModelError:
        raise
    except Exception as e:                   # OSError, ValueError, EOFError, BadZipFile
        raise ModelError(f"{path}: not a readable .npz model ({type(e).__name__}: {e})") from None
    if "layers" not in arrays:
        raise ModelError(f"{path}: no 'layers' entry (a JSON layer list)")
    return arrays


def _npz_layer(path, i, entry, arrays) -> Layer:
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if kind not in KINDS:
        raise ModelError(f"{path}: layer {i} has kind {kind!r}; kinds are {', '.join(KINDS)}")
    inputs = entry.get("inputs")
    if inputs is not None and (not isinstance(inputs, list)
                               or not all(isinstance(v, int) for v in inputs)):
        raise ModelError(f"{path}: layer {i} inputs must be a list of layer indices, not "
                         f"{inputs!r}")
    name = entry.get("name", f"{kind}{i}")
    if kind in ("maxpool", "avgpool"):
        win = entry.get("window")
        try:
            window = golden.Window.of(win["kernel"], win.get("stride"), win.get("pads", 0),
                                      win.get("dilation", 1), bool(win.get("ceil_mode", False)))
        except (TypeError, KeyError, ValueError) as e:
            raise ModelError(f"{path}: layer {i} needs a 'window' with kernel, stride, pads "
                             f"({e})") from None
        return Layer(kind, name, pool=window, inputs=inputs,
                     count_include_pad=bool(entry.get("count_include_pad", False)))
    if kind not in WEIGHT_KINDS:
        return Layer(kind, name, relu=bool(entry.get("relu", False)), inputs=inputs)
    for key in ("weight", "bias"):
        if entry.get(key) not in arrays:
            raise ModelError(f"{path}: layer {i} names {key} array {entry.get(key)!r}, "
                             f"which is not in the file")
    pool = entry.get("pool")
    if pool is not None and (not isinstance(pool, list) or len(pool) != 3
                             or not all(isinstance(v, int) and v >= 0 for v in pool)):
        raise ModelError(f"{path}: layer {i} pool must be [kernel, stride, padding] "
                         f"(integers), not {pool!r}")
    for key in ("weight", "bias"):
        a = np.asarray(arrays[entry[key]])
        if a.dtype.kind not in "biuf" or (a.size and not np.isfinite(a).all()):
            raise ModelError(f"{path}: layer {i} {key} array {entry[key]!r} holds values "
                             f"that are not real, finite numbers")
    return Layer(kind, name, arrays[entry["weight"]].astype(np.float64),
                 arrays[entry["bias"]].astype(np.float64).reshape(-1),
                 stride=int(entry.get("stride", 1)), pad=int(entry.get("pad", 0)),
                 relu=bool(entry.get("relu", False)), pool=tuple(pool) if pool else None,
                 inputs=inputs)


def save_npz(net: Network, path) -> None:
    arrays, entries = {}, []
    for i, layer in enumerate(net.layers):
        entry = {"kind": layer.kind, "name": layer.name, "relu": layer.relu,
                 "inputs": net.sources(i)}
        if layer.has_weights:
            arrays[f"{i}.weight"] = layer.weight
            arrays[f"{i}.bias"] = layer.bias
            entry.update({"weight": f"{i}.weight", "bias": f"{i}.bias", "stride": layer.stride,
                          "pad": layer.pad, "pool": list(layer.pool) if layer.pool else None})
        elif layer.kind in ("maxpool", "avgpool"):
            win = layer.pool
            entry.update({"window": {"kernel": list(win.kernel), "stride": list(win.stride),
                                     "pads": list(win.pads), "dilation": list(win.dilation),
                                     "ceil_mode": win.ceil_mode},
                          "count_include_pad": layer.count_include_pad})
        entries.append(entry)
    spec = {"input_shape": list(net.input_shape), "layers": entries, "host_ops": net.host_ops}
    arrays["layers"] = np.frombuffer(json.dumps(spec).encode(), np.uint8)
    np.savez(path, **arrays)


def load_model(path, drop_lrn: bool = False) -> Network:
    """A float network from .onnx or .npz; `drop_lrn` removes ONNX LRN nodes (refused
    otherwise)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.suffix == ".onnx":
        return load_onnx(path, drop_lrn=drop_lrn)
    if path.suffix == ".npz":
        return load_npz(path)
    raise ModelError(f"{path}: model files are .onnx or .npz, not {path.suffix or 'no suffix'}")


def save_onnx(net: Network, path) -> None:
    """Write `net` as a float ONNX model, opset 13: Conv / Flatten+Gemm (+Relu, +MaxPool), Add
    (+Relu), Concat, MaxPool, AveragePool, GlobalAveragePool, Softmax."""
    atomic_write(path, to_onnx(net).SerializeToString())


def to_onnx(net: Network, every_layer: bool = False, weights: dict | None = None):
    """`net` as an ONNX ModelProto (see `save_onnx`); with `every_layer`, every layer's output
    (N, C, H, W) is a graph output too, in layer order after the network's output. With a
    `weights` dict, weights and biases are not copied into the model: they become graph inputs
    and the dict receives their float32 arrays (for onnxruntime's `add_initializer`)."""
    import onnx
    from onnx import TensorProto, helper

    nodes, inits, names = [], [], []
    for i, layer in enumerate(net.layers):
        ins = ["input" if j < 0 else names[j] for j in net.sources(i)]
        names.append(_onnx_layer(layer, i, ins, nodes, inits, weights))
    last = net.shapes()[-1]
    cur = names[-1]
    out_shape = [None, last[0]] if net.layers[-1].kind == "fc" else [None, *last]
    if "softmax" in net.host_ops:
        if net.layers[-1].kind != "fc":
            nodes.append(helper.make_node("Flatten", [cur], [f"{cur}_flat"], axis=1))
            cur, out_shape = f"{cur}_flat", [None, int(np.prod(last))]
        nodes.append(helper.make_node("Softmax", [cur], ["probs"], axis=1))
        cur = "probs"
    outputs = [helper.make_tensor_value_info(cur, TensorProto.FLOAT, out_shape)]
    if every_layer:
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names
                    if n != cur]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, *net.input_shape])]
    inputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(a.shape))
               for name, a in (weights or {}).items()]
    graph = helper.make_graph(nodes, net.name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="sense")
    model.ir_version = 8
    if not every_layer:
        onnx.checker.check_model(model)
    return model


def forward_onnxruntime(net: Network, x: np.ndarray) -> list:
    """Every layer's float output on (N, C, H, W) inputs, computed by onnxruntime (float32):
    what `host.nn.forward(net, x, return_all=True)` computes, much faster on large networks."""
    import onnxruntime as ort

    weights = {}
    model = to_onnx(net, every_layer=True, weights=weights)
    names = [o.name for o in model.graph.output]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    # The weights are fed as inputs: onnxruntime reads the numpy arrays, no copy in a protobuf.
    feed = {"input": np.asarray(x, np.float32), **weights}
    got = dict(zip(names, sess.run(None, feed)))
    outs = []
    for i, layer in enumerate(net.layers):
        y = got[_tensor_name(layer, i, names)]
        outs.append(y.reshape(len(x), -1, 1, 1) if layer.kind == "fc" else y)
    return outs


def _window_attrs(pool) -> dict:
    from host.nn import window

    win = window(pool)
    return dict(kernel_shape=list(win.kernel), strides=list(win.stride), pads=list(win.pads),
                ceil_mode=int(win.ceil_mode))


def _tensor_name(layer, i, names) -> str:
    """The output tensor of layer i in `to_onnx`'s graph (after its ReLU and max-pool)."""
    name = f"t{i}" + ("_relu" if layer.relu else "") + \
        ("_pool" if layer.pool and layer.kind in ("conv", "fc") else "")
    if name not in names:
        raise KeyError(name)
    return name


def _onnx_joined(layer, i, ins, nodes, inits) -> list:
    """A joined conv's input as ONNX nodes: Slice (steps s on H, W) and Concat."""
    from onnx import helper, numpy_helper

    s = layer.join
    consts = {"starts": [0, 0], "ends": [2 ** 62, 2 ** 62], "axes": [2, 3], "steps": [s, s]}
    inits += [numpy_helper.from_array(np.array(v, np.int64), f"t{i}_join_{k}")
              for k, v in consts.items()]
    nodes.append(helper.make_node("Slice", [ins[1], *(f"t{i}_join_{k}" for k in consts)],
                                  [f"t{i}_strided"]))
    nodes.append(helper.make_node("Concat", [ins[0], f"t{i}_strided"], [f"t{i}_joined"],
                                  axis=1))
    return [f"t{i}_joined"]


def _onnx_layer(layer, i, ins, nodes, inits, weights=None) -> str:
    """Append the ONNX nodes of one layer; returns its output tensor's name."""
    from onnx import helper, numpy_helper

    out = f"t{i}"
    kind = layer.kind
    if kind in ("conv", "fc"):
        w, b = f"{layer.name}.weight", f"{layer.name}.bias"
        arrays = {w: np.ascontiguousarray(layer.weight, np.float32),
                  b: np.ascontiguousarray(layer.bias, np.float32)}
        if weights is None:
            inits += [numpy_helper.from_array(a, n) for n, a in arrays.items()]
        else:
            weights.update(arrays)
        if kind == "fc":
            nodes.append(helper.make_node("Flatten", ins, [f"{out}_flat"], axis=1))
            nodes.append(helper.make_node("Gemm", [f"{out}_flat", w, b], [out], transB=1,
                                          name=layer.name))
        else:
            if layer.join:              # (host.nn.joined: the second input's every s-th pixel)
                ins = _onnx_joined(layer, i, ins, nodes, inits)
            nodes.append(helper.make_node("Conv", [ins[0], w, b], [out], name=layer.name,
                                          strides=[layer.stride] * 2, pads=[layer.pad] * 4,
                                          kernel_shape=list(layer.weight.shape[2:])))
    elif kind == "add":
        nodes.append(helper.make_node("Add", ins, [out], name=layer.name))
    elif kind == "concat":
        nodes.append(helper.make_node("Concat", ins, [out], axis=1, name=layer.name))
    elif kind == "gap":
        nodes.append(helper.make_node("GlobalAveragePool", ins, [out], name=layer.name))
    elif kind == "maxpool":
        nodes.append(helper.make_node("MaxPool", ins, [out], name=layer.name,
                                      **_window_attrs(layer.pool)))
    else:                                   # avgpool
        nodes.append(helper.make_node("AveragePool", ins, [out], name=layer.name,
                                      count_include_pad=int(layer.count_include_pad),
                                      **_window_attrs(layer.pool)))
    if layer.relu:
        nodes.append(helper.make_node("Relu", [out], [f"{out}_relu"]))
        out = f"{out}_relu"
    if layer.pool and kind in ("conv", "fc"):
        nodes.append(helper.make_node("MaxPool", [out], [f"{out}_pool"],
                                      **_window_attrs(layer.pool)))
        out = f"{out}_pool"
    return out
