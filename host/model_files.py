"""Model files: `load_model` reads an .onnx (`host.onnx_import`) or an .npz of weights plus a
layer list; `save_npz` and `save_onnx` write them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from host.nn import HOST_OPS, Layer, ModelError, Network, check_shapes
from host.onnx_import import load_onnx
from hw.files import atomic_write

__all__ = ["load_model", "load_npz", "save_npz", "save_onnx"]


# -- .npz import ------------------------------------------------------------------------------------

def load_npz(path) -> Network:
    """An .npz holding the weights and a JSON layer list under key "layers":
    ``{"input_shape": [C, H, W], "layers": [{"kind": "conv", "weight": "c1.w", "bias": "c1.b",
    "stride": 1, "pad": 1, "relu": true, "pool": [2, 2, 0]}, {"kind": "fc", ...}],
    "host_ops": ["softmax"]}``."""
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
    try:
        spec = json.loads(bytes(arrays["layers"]).decode())
        if not isinstance(spec, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: the 'layers' entry is not a JSON layer list ({e})") from None
    shape = spec.get("input_shape")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(v, int) for v in shape):
        raise ModelError(f"{path}: the layer list needs 'input_shape': [C, H, W]")
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
        if pool is not None and (not isinstance(pool, list) or len(pool) != 3
                                 or not all(isinstance(v, int) and v >= 0 for v in pool)):
            raise ModelError(f"{path}: layer {i} pool must be [kernel, stride, padding] "
                             f"(integers), not {pool!r}")
        for key in ("weight", "bias"):
            a = np.asarray(arrays[entry[key]])
            if a.dtype.kind not in "biuf" or (a.size and not np.isfinite(a).all()):
                raise ModelError(f"{path}: layer {i} {key} array {entry[key]!r} holds values "
                                 f"that are not real, finite numbers")
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
    check_shapes(net)
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
