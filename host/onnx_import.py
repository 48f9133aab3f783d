"""ONNX import that follows the graph's data flow.

The importer starts at the graph's one input and follows the tensor from node to node to the
graph's one output. Every node must lie on that path (a node whose result nothing uses, or a
second consumer of a tensor, is refused: Sense imports chains), and every attribute of every
accepted operator is read: a value it does not implement is refused with the node, the
attribute and the value named. Constant inputs (initializers and `Constant` nodes) are folded.

What it builds is a `host.nn.Network`: conv / fully-connected layers, each optionally followed by
ReLU and max-pool, then host operators (softmax). Its float forward (`host.nn.forward`) is checked
against onnxruntime by the tests on every accepted model they build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from host import golden
from host.nn import Layer, ModelError, Network, check_shapes

__all__ = ["load_onnx", "SUPPORTED"]

SUPPORTED = ("Conv", "Gemm", "MatMul", "Add", "Relu", "MaxPool", "Flatten", "Reshape",
             "BatchNormalization", "Softmax", "Dropout", "Identity", "Constant",
             "ConstantOfShape (folded)")

#: Operators evaluated at import when all their inputs are constants (constant subgraphs).
FOLDABLE = ("ConstantOfShape", "Unsqueeze", "Reshape", "Transpose", "Identity")

#: Attributes each operator may carry; any other attribute is refused by name.
ATTRIBUTES = {
    "Conv": {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
    "Gemm": {"alpha", "beta", "transA", "transB"},
    "MatMul": set(), "Add": set(), "Relu": set(), "Identity": set(),
    "MaxPool": {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order",
                "strides"},
    "Flatten": {"axis"}, "Reshape": {"allowzero"},
    "BatchNormalization": {"epsilon", "momentum", "spatial", "training_mode"},
    "Softmax": {"axis"}, "Dropout": {"ratio", "seed", "is_test"},
}


def _read(path):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: {e.strerror}") from None
    if not data:
        raise ModelError(f"{path}: the file is empty, not an ONNX model")
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model with a graph (no nodes)")
    return model


class _Graph:
    """The graph as the importer walks it: constants, producers and consumers of every tensor."""

    def __init__(self, model, path):
        from onnx import helper, numpy_helper

        self.path = path
        graph = model.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = []
        for node in graph.node:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                if "value" not in attrs:
                    raise ModelError(f"{self.where(node)}: only Constant with a tensor `value` "
                                     f"is supported, not {sorted(attrs)}")
                self.consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
                continue
            if node.op_type in FOLDABLE and all(n in self.consts for n in node.input if n):
                self.consts[node.output[0]] = self.fold(node, attrs)
                continue
            self.nodes.append((node, attrs))
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ModelError(f"{path}: the model must have exactly one (non-constant) input, "
                             f"not {len(inputs)}")
        self.input = inputs[0]
        outputs = list(graph.output)
        if len(outputs) != 1:
            raise ModelError(f"{path}: the model must have exactly one output, not "
                             f"{len(outputs)}")
        self.output = outputs[0].name
        self.consumers = {}
        for node, attrs in self.nodes:
            for name in dict.fromkeys(node.input):     # a node using a tensor twice is one user
                if name and name not in self.consts:
                    self.consumers.setdefault(name, []).append((node, attrs))

    def fold(self, node, attrs) -> np.ndarray:
        """The value of a constant subgraph's node (exporters and model zoos build weights and
        shapes this way: ConstantOfShape, Unsqueeze, Reshape, Transpose of constants)."""
        from onnx import numpy_helper

        ins = [np.asarray(self.consts[n]) if n else None for n in node.input]
        op = node.op_type
        try:
            if op == "ConstantOfShape":
                fill = (numpy_helper.to_array(attrs["value"]).reshape(-1)[0] if "value" in attrs
                        else np.float32(0))
                return np.full([int(v) for v in ins[0].reshape(-1)], fill)
            if op == "Unsqueeze":
                axes = ([int(v) for v in ins[1].reshape(-1)] if len(ins) > 1
                        else [int(v) for v in attrs["axes"]])
                out = ins[0]
                rank = out.ndim + len(axes)
                for axis in sorted(a % rank for a in axes):
                    out = np.expand_dims(out, axis)
                return out
            if op == "Reshape":
                shape = [int(v) for v in ins[1].reshape(-1)]
                shape = [ins[0].shape[i] if v == 0 and not attrs.get("allowzero", 0) else v
                         for i, v in enumerate(shape)]
                return ins[0].reshape(shape)
            if op == "Transpose":
                return np.transpose(ins[0], attrs.get("perm"))
            return ins[0]                                        # Identity
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise ModelError(f"{self.where(node)}: cannot fold this constant ({e})") from None

    @staticmethod
    def where(node) -> str:
        return f"node {node.name or node.output[0]!r} ({node.op_type})"

    def const(self, node, index, what) -> np.ndarray:
        if len(node.input) <= index or not node.input[index]:
            raise ModelError(f"{self.where(node)}: {what} (input {index}) is missing")
        name = node.input[index]
        if name not in self.consts:
            raise ModelError(f"{self.where(node)}: {what} {name!r} must be a constant "
                             f"(initializer or Constant)")
        value = np.asarray(self.consts[name])
        if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            raise ModelError(f"{self.where(node)}: {what} {name!r} is not real numbers "
                             f"({value.dtype})")
        if value.size and not np.isfinite(value.astype(np.float64)).all():
            raise ModelError(f"{self.where(node)}: {what} {name!r} holds NaN or infinity")
        return value.astype(np.float64)

    def path_nodes(self):
        """The nodes from the input to the output, in data-flow order; refuses branches, dead
        nodes and a graph whose output is not reached."""
        tensor, order = self.input.name, []
        while tensor != self.output:
            users = self.consumers.get(tensor, [])
            if not users:
                raise ModelError(f"{self.path}: tensor {tensor!r} is used by no node, and it is "
                                 f"not the graph output {self.output!r}")
            if len(users) > 1:
                names = ", ".join(self.where(n) for n, _ in users)
                raise ModelError(f"{self.path}: tensor {tensor!r} feeds {len(users)} nodes "
                                 f"({names}); Sense imports chains, not branches")
            node, attrs = users[0]
            live = [o for o in node.output if o]
            used = [o for o in live if o in self.consumers or o == self.output]
            if len(used) != 1 or used[0] != live[0]:
                raise ModelError(f"{self.where(node)}: only its first output may be used "
                                 f"(outputs {list(node.output)})")
            order.append((node, attrs))
            tensor = node.output[0]
        dead = [self.where(n) for n, _ in self.nodes if all(n is not m for m, _ in order)]
        if dead:
            raise ModelError(f"{self.path}: {dead[0]} is not on the path from the input to the "
                             f"output (a dead or side branch); remove it")
        return order


def _ints(attrs, name, default):
    return [int(v) for v in attrs.get(name, default)]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _same_pads(size, kernel, stride, mode):
    """Padding of auto_pad SAME_UPPER / SAME_LOWER for one axis: (begin, end)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    small, big = total // 2, total - total // 2
    return (small, big) if mode == "SAME_UPPER" else (big, small)


def _window(where, attrs, hw, kernel, what):
    """(stride, pad) of a square window with equal strides and symmetric padding, from
    strides / pads / auto_pad / dilations; anything else is refused with its value named."""
    if any(d != 1 for d in _ints(attrs, "dilations", [1, 1])):
        raise ModelError(f"{where}: dilations {attrs['dilations']} are not supported (only 1)")
    strides = _ints(attrs, "strides", [1, 1])
    if len(strides) != 2 or strides[0] != strides[1]:
        raise ModelError(f"{where}: strides {strides} must be two equal values")
    mode = _text(attrs.get("auto_pad", "NOTSET"))
    if mode == "NOTSET":
        pads = _ints(attrs, "pads", [0, 0, 0, 0])
    elif mode == "VALID":
        pads = [0, 0, 0, 0]
    elif mode in ("SAME_UPPER", "SAME_LOWER"):
        (t, b), (l, r) = (_same_pads(n, k, strides[0], mode) for n, k in zip(hw, kernel))
        pads = [t, l, b, r]
    else:
        raise ModelError(f"{where}: auto_pad {mode!r} is not one of NOTSET, VALID, SAME_UPPER, "
                         f"SAME_LOWER")
    if len(pads) != 4 or len(set(pads)) != 1:
        raise ModelError(f"{where}: {what} padding {pads} must be the same on every side")
    return strides[0], pads[0]


class _Importer:
    def __init__(self, graph: _Graph, dims):
        self.g = graph
        self.input_shape = tuple(dims[1:])
        self.shape = self.input_shape      # (C, H, W) of the tensor being followed, or (F,)
        self.layers: list[Layer] = []
        self.host_ops: list[str] = []

    def layer_open(self, node, what) -> Layer:
        """The last layer, if `what` (ReLU, max-pool, bias) may still be applied to it."""
        if not self.layers:
            raise ModelError(f"{self.g.where(node)}: {what} must follow a Conv or "
                             f"fully-connected layer")
        return self.layers[-1]

    def node(self, node, attrs):
        op = node.op_type
        where = self.g.where(node)
        if op not in ATTRIBUTES:
            raise ModelError(f"unsupported ONNX operator {op!r} ({where}); Sense imports "
                             f"{', '.join(SUPPORTED)}")
        unknown = sorted(set(attrs) - ATTRIBUTES[op])
        if unknown:
            raise ModelError(f"{where}: attribute {unknown[0]!r} is not supported")
        if self.host_ops and op not in ("Identity", "Dropout"):
            raise ModelError(f"{where} follows a host-side operator; only Softmax may end the "
                             f"network")
        getattr(self, f"op_{op}")(node, attrs, where)

    def op_Conv(self, node, attrs, where):
        if len(self.shape) != 3:
            raise ModelError(f"{where}: a Conv needs a (N, C, H, W) input, not {self.shape}")
        if int(attrs.get("group", 1)) != 1:
            raise ModelError(f"{where}: grouped or dilated convolutions are not supported "
                             f"(group {attrs['group']})")
        if any(d != 1 for d in _ints(attrs, "dilations", [1, 1])):
            raise ModelError(f"{where}: grouped or dilated convolutions are not supported "
                             f"(dilations {list(attrs['dilations'])})")
        w = self.g.const(node, 1, "weight")
        if w.ndim != 4:
            raise ModelError(f"{where}: weight must be (K, C, R, S), not {w.shape}")
        if "kernel_shape" in attrs and _ints(attrs, "kernel_shape", []) != list(w.shape[2:]):
            raise ModelError(f"{where}: kernel_shape {list(attrs['kernel_shape'])} does not "
                             f"match the weight {w.shape}")
        stride, pad = _window(where, attrs, self.shape[1:], w.shape[2:], "convolution")
        b = (self.g.const(node, 2, "bias").reshape(-1) if len(node.input) > 2 and node.input[2]
             else np.zeros(w.shape[0]))
        self.layers.append(Layer("conv", node.name or f"conv{len(self.layers)}", w, b,
                                 stride=stride, pad=pad))
        self._advance(node)

    def op_Gemm(self, node, attrs, where):
        if int(attrs.get("transA", 0)):
            raise ModelError(f"{where}: transA {attrs['transA']} is not supported")
        w = self.g.const(node, 1, "weight")
        w = (w if int(attrs.get("transB", 0)) else w.T) * float(attrs.get("alpha", 1.0))
        b = (self.g.const(node, 2, "bias") * float(attrs.get("beta", 1.0))
             if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0]))
        self._fc(node, where, w, np.broadcast_to(b, (1, w.shape[0])).reshape(-1))

    def op_MatMul(self, node, attrs, where):
        w = self.g.const(node, 1, "weight")
        if w.ndim != 2:
            raise ModelError(f"{where}: weight must be 2-D, not {w.shape}")
        self._fc(node, where, w.T, np.zeros(w.shape[1]))

    def _fc(self, node, where, w, b):
        if len(self.shape) != 1:
            raise ModelError(f"{where}: a fully-connected layer needs Flatten or Reshape before "
                             f"it (its input is {self.shape})")
        if w.ndim != 2 or w.shape[1] != self.shape[0]:
            raise ModelError(f"{where}: weight {w.shape} does not take {self.shape[0]} inputs")
        self.layers.append(Layer("fc", node.name or f"fc{len(self.layers)}", w, b))
        self._advance(node)

    def op_Add(self, node, attrs, where):
        consts = [i for i, n in enumerate(node.input) if n in self.g.consts]
        if len(consts) != 1:
            raise ModelError(f"{where}: only the Add of a constant bias to a Conv or "
                             f"fully-connected layer is supported (residual adds of two tensors "
                             f"are not imported yet)")
        last = self.layer_open(node, "a bias Add")
        if last.relu or last.pool:
            raise ModelError(f"{where}: a bias Add must directly follow its Conv or "
                             f"fully-connected layer")
        k = last.out_channels
        bias = self.g.const(node, consts[0], "bias")
        want = {(k,), (1, k)} if last.kind == "fc" else {(k, 1, 1), (1, k, 1, 1)}
        if bias.shape not in want and bias.size != 1:
            raise ModelError(f"{where}: bias shape {bias.shape} is not one value per output "
                             f"channel ({' or '.join(map(str, sorted(want)))})")
        last.bias = last.bias + np.broadcast_to(bias.reshape(-1), (k,))

    def op_BatchNormalization(self, node, attrs, where):
        if int(attrs.get("training_mode", 0)) or not int(attrs.get("spatial", 1)):
            raise ModelError(f"{where}: only inference batch-norm (training_mode 0, spatial 1) "
                             f"is supported")
        last = self.layers[-1] if self.layers else None
        if last is None or last.kind != "conv" or last.relu or last.pool:
            raise ModelError(f"{where}: batch-norm must directly follow a Conv to be folded")
        scale, bias, mean, var = (self.g.const(node, i, n) for i, n in
                                  enumerate(("scale", "bias", "mean", "var"), start=1))
        k_out = last.weight.shape[0]
        if any(a.shape != (k_out,) for a in (scale, bias, mean, var)):
            raise ModelError(f"{where}: batch-norm parameters must have one entry per output "
                             f"channel ({k_out})")
        k = scale / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        last.weight = last.weight * k[:, None, None, None]
        last.bias = (last.bias - mean) * k + bias

    def op_Relu(self, node, attrs, where):
        last = self.layer_open(node, "ReLU")
        if last.relu or last.pool:
            raise ModelError(f"{where}: ReLU must follow a Conv or fully-connected layer")
        last.relu = True

    def op_MaxPool(self, node, attrs, where):
        if not self.layers or self.layers[-1].pool or len(self.shape) != 3:
            raise ModelError(f"{where}: max-pool must follow a Conv layer")
        if int(attrs.get("storage_order", 0)):
            raise ModelError(f"{where}: storage_order {attrs['storage_order']} is not supported")
        ks = _ints(attrs, "kernel_shape", [])
        if len(ks) != 2 or ks[0] != ks[1]:
            raise ModelError(f"{where}: max-pool kernel_shape {ks} must be square")
        stride, pad = _window(where, attrs, self.shape[1:], ks, "max-pool")
        if pad >= ks[0]:
            raise ModelError(f"{where}: max-pool padding {pad} must be smaller than the kernel "
                             f"{ks[0]}")
        if int(attrs.get("ceil_mode", 0)):
            for n in self.shape[1:]:
                floor = golden.output_size(n, ks[0], stride, pad)
                if -(-(n + 2 * pad - ks[0]) // stride) + 1 != floor:
                    raise ModelError(f"{where}: ceil_mode 1 changes the output size here "
                                     f"(rounding up {n} -> {floor + 1}); only floor rounding is "
                                     f"supported")
        self.layers[-1].pool = (ks[0], stride, pad)
        self._advance(node)

    def op_Flatten(self, node, attrs, where):
        if int(attrs.get("axis", 1)) != 1:
            raise ModelError(f"{where}: Flatten axis {attrs['axis']} is not supported (only 1)")
        self.shape = (int(np.prod(self.shape)),)

    def op_Reshape(self, node, attrs, where):
        target = [int(v) for v in self.g.const(node, 1, "shape").reshape(-1)]
        features = int(np.prod(self.shape))
        allowzero = int(attrs.get("allowzero", 0))
        ok = (len(target) == 2 and target[0] in (-1, 1) + ((0,) if not allowzero else ())
              and target[1] in (-1, features) and not (target[0] == -1 and target[1] == -1))
        if not ok:
            raise ModelError(f"{where}: Reshape to {target} is not supported: only to "
                             f"(N, {features}) (a flattened vector)")
        self.shape = (features,)

    def op_Softmax(self, node, attrs, where):
        axis = int(attrs.get("axis", -1))
        rank = len(self.shape) + 1
        if len(self.shape) != 1 or axis not in (1, -1, rank - 1):
            raise ModelError(f"{where}: softmax must be over the channels of a (N, K) output "
                             f"(axis {axis} on {self.shape})")
        self.host_ops.append("softmax")

    def op_Dropout(self, node, attrs, where):
        if len(node.input) > 2 and node.input[2]:
            mode = self.g.const(node, 2, "training_mode").reshape(-1)
            if mode.size and mode[0]:
                raise ModelError(f"{where}: training_mode true is not supported")
        if "is_test" in attrs and not int(attrs["is_test"]):
            raise ModelError(f"{where}: is_test 0 (training) is not supported")

    def op_Identity(self, node, attrs, where):
        pass

    def _advance(self, node):
        """The followed tensor's shape after the last layer (and its pool)."""
        check_shapes(Network(self.input_shape, self.layers))
        self.shape = Network(self.input_shape, self.layers).shapes()[-1]
        if self.layers[-1].kind == "fc":
            self.shape = (self.shape[0],)


def load_onnx(path) -> Network:
    """Import a float CNN chain from ONNX, following the data flow (module docstring)."""
    model = _read(path)
    graph = _Graph(model, path)
    dims = [d.dim_value if d.HasField("dim_value") else 0
            for d in graph.input.type.tensor_type.shape.dim]
    if len(dims) != 4 or min(dims[1:]) < 1:
        raise ModelError(f"{path}: input {graph.input.name!r} must be (N, C, H, W) with fixed "
                         f"C, H, W; it is {dims}")
    importer = _Importer(graph, dims)
    for node, attrs in graph.path_nodes():
        importer.node(node, attrs)
    if not importer.layers:
        raise ModelError(f"{path}: no Conv or fully-connected layer found")
    net = Network(tuple(dims[1:]), importer.layers, importer.host_ops, name=Path(path).stem)
    check_shapes(net)
    return net
