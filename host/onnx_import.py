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
from host.nn import (Layer, ModelError, Network, check_layer_inputs, check_shapes,
                     layer_out_shape, simplify_chain)

__all__ = ["load_onnx", "SUPPORTED"]

SUPPORTED = ("Conv", "Gemm", "MatMul", "Add", "Sum", "Concat", "Relu", "MaxPool",
             "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "BatchNormalization",
             "Softmax", "Dropout", "Identity", "Constant", "LRN (dropped on request)",
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
    "AveragePool": {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                    "pads", "strides"},
    "GlobalAveragePool": set(), "Sum": set(), "Concat": {"axis"},
    "LRN": {"alpha", "beta", "bias", "size"},
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
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          13)
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

    def live_nodes(self):
        """The nodes in a topological order (the file's order where it allows); refuses nodes
        whose result does not reach the output (dead or side branches) and a second used
        output."""
        producer = {o: (node, attrs) for node, attrs in self.nodes for o in node.output if o}
        live, todo = set(), [self.output]
        while todo:
            name = todo.pop()
            if name in producer and id(producer[name][0]) not in live:
                node = producer[name][0]
                live.add(id(node))
                todo.extend(n for n in node.input if n and n not in self.consts)
        if self.output not in producer:
            raise ModelError(f"{self.path}: the graph output {self.output!r} is not computed "
                             f"by any node from the input")
        dead = [self.where(n) for n, _ in self.nodes if id(n) not in live]
        if dead:
            raise ModelError(f"{self.path}: {dead[0]} is not on a path from the input to the "
                             f"output (a dead or side branch); remove it")
        for node, _ in self.nodes:
            used = [o for o in node.output if o and (o in self.consumers or o == self.output)]
            if used != [node.output[0]]:
                raise ModelError(f"{self.where(node)}: only its first output may be used "
                                 f"(outputs {list(node.output)})")
        done, order, pending = {self.input.name}, [], list(self.nodes)
        while pending:
            ready = [(n, a) for n, a in pending
                     if all(i in done or i in self.consts or not i for i in n.input)]
            if not ready:
                raise ModelError(f"{self.path}: {self.where(pending[0][0])} reads a tensor no "
                                 f"node computes (or the graph has a cycle)")
            for n, a in ready:
                done.add(n.output[0])
                order.append((n, a))
            pending = [(n, a) for n, a in pending if all(n is not m for m, _ in ready)]
        return order


def _refuse_same_dilated(where, what, attrs, dilations, why):
    """auto_pad SAME_* with dilations > 1 has no reference to check against: refuse it."""
    mode = _text(attrs.get("auto_pad", "NOTSET"))
    if dilations != [1, 1] and mode.startswith("SAME"):
        raise ModelError(f"{where}: {what} auto_pad {mode} with dilations {dilations} is not "
                         f"supported ({why})")


def _dense_kernel(where, w, group, dilations, channels):
    """A grouped or dilated convolution as the plain one it equals: groups become a
    block-diagonal kernel over all input channels, dilations a larger kernel with zero taps.
    Exact, at the cost of the zero weights' MACs (docs/architecture.md, "Import")."""
    k, cg, r, s = w.shape
    if group < 1 or k % group or cg * group != channels:
        raise ModelError(f"{where}: group {group} does not divide the weight {w.shape} over "
                         f"{channels} input channels")
    if len(dilations) != 2 or min(dilations) < 1:
        raise ModelError(f"{where}: dilations {dilations} must be two values >= 1")
    if group > 1:
        full = np.zeros((k, channels, r, s))
        kg = k // group
        for g in range(group):
            full[g * kg:(g + 1) * kg, g * cg:(g + 1) * cg] = w[g * kg:(g + 1) * kg]
        w = full
    dh, dw = dilations
    if (dh, dw) != (1, 1):
        big = np.zeros(w.shape[:2] + ((r - 1) * dh + 1, (s - 1) * dw + 1))
        big[:, :, ::dh, ::dw] = w
        w = big
    return w


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
    """Builds the layer graph: `refs` maps every followed tensor to the layer computing it (-1:
    the network input) and whether it has been flattened to a vector."""

    def __init__(self, graph: _Graph, dims, drop_lrn: bool):
        self.g = graph
        self.input_shape = tuple(dims[1:])
        self.layers: list[Layer] = []
        self.shapes: list[tuple] = []      # output shape of every layer
        self.refs = {graph.input.name: (-1, False)}
        self.host_ops: list[str] = []
        self.drop_lrn = drop_lrn
        self.dropped: list[str] = []

    # -- the tensors being followed ----------------------------------------------------------

    def ref(self, node, index=0):
        name = node.input[index] if len(node.input) > index else ""
        if name in self.g.consts or not name:
            raise ModelError(f"{self.g.where(node)}: input {index} must be a tensor computed "
                             f"from the network input, not a constant")
        return self.refs[name]

    def shape(self, layer: int) -> tuple:
        return self.input_shape if layer < 0 else self.shapes[layer]

    def users(self, name) -> int:
        return len(self.g.consumers.get(name, [])) + (name == self.g.output)

    def fusable(self, node, what, kinds=("conv", "fc"), index=0) -> Layer:
        """The layer computing the node's input, if `what` may be folded into it: it is one of
        `kinds`, nothing else reads its output, and nothing after its own operation (ReLU,
        pool) has been applied yet."""
        layer, flat = self.ref(node, index)
        if layer < 0 or self.layers[layer].kind not in kinds \
                or (flat and self.layers[layer].kind != "fc") \
                or self.users(node.input[index]) != 1:
            raise ModelError(f"{self.g.where(node)}: {what} must directly follow a "
                             f"{' or '.join(kinds)} layer whose output nothing else reads")
        last = self.layers[layer]
        if last.relu or last.pool:
            raise ModelError(f"{self.g.where(node)}: {what} must directly follow its "
                             f"{last.kind} layer (before ReLU and pooling)")
        return last

    def add(self, node, layer: Layer, where):
        """Append a layer reading `layer.inputs` and map the node's output to it."""
        layer.name = node.name or node.output[0]
        ins = [self.shape(j) for j in layer.inputs]
        try:
            check_layer_inputs(layer, ins)
            out = layer_out_shape(layer, ins)
        except ModelError as e:
            raise ModelError(f"{where}: {str(e).split(': ', 1)[-1]}") from None
        if min(out[1:]) < 1:
            raise ModelError(f"{where}: the window does not fit its input {ins[0]} (the output "
                             f"would be {out})")
        self.layers.append(layer)
        self.shapes.append(out)
        self.alias(node, (len(self.layers) - 1, layer.kind == "fc"))   # fc: a vector

    def alias(self, node, ref):
        self.refs[node.output[0]] = ref

    def refresh(self, index: int):
        """Recompute a layer's output shape after folding into it."""
        ins = [self.shape(j) for j in self.layers[index].inputs]
        self.shapes[index] = layer_out_shape(self.layers[index], ins)

    # -- operators ---------------------------------------------------------------------------

    def node(self, node, attrs):
        op = node.op_type
        where = self.g.where(node)
        if op == "LRN" and not self.drop_lrn:
            raise ModelError(f"unsupported ONNX operator 'LRN' ({where}): Sense has no local "
                             f"response normalization; import with drop_lrn (sense --drop-lrn) "
                             f"to remove it (docs/architecture.md, 'LRN')")
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
        src, flat = self.ref(node)
        if flat:
            raise ModelError(f"{where}: a Conv needs a (N, C, H, W) input, not a flattened one")
        w = self.g.const(node, 1, "weight")
        if w.ndim != 4:
            raise ModelError(f"{where}: weight must be (K, C, R, S), not {w.shape}")
        if "kernel_shape" in attrs and _ints(attrs, "kernel_shape", []) != list(w.shape[2:]):
            raise ModelError(f"{where}: kernel_shape {list(attrs['kernel_shape'])} does not "
                             f"match the weight {w.shape}")
        dilations = _ints(attrs, "dilations", [1, 1])
        _refuse_same_dilated(where, "Conv", attrs, dilations, "onnxruntime refuses it too")
        w = _dense_kernel(where, w, int(attrs.get("group", 1)), dilations, self.shape(src)[0])
        attrs = {k: v for k, v in attrs.items() if k != "dilations"}
        stride, pad = _window(where, attrs, self.shape(src)[1:], w.shape[2:], "convolution")
        b = (self.g.const(node, 2, "bias").reshape(-1) if len(node.input) > 2 and node.input[2]
             else np.zeros(w.shape[0]))
        self.add(node, Layer("conv", "", w, b, stride=stride, pad=pad, inputs=[src]), where)

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
        src, flat = self.ref(node)
        features = int(np.prod(self.shape(src)))
        if not flat:
            raise ModelError(f"{where}: a fully-connected layer needs Flatten or Reshape before "
                             f"it (its input is {self.shape(src)})")
        if w.ndim != 2 or w.shape[1] != features:
            raise ModelError(f"{where}: weight {w.shape} does not take {features} inputs")
        self.add(node, Layer("fc", "", w, b, inputs=[src]), where)

    def op_Add(self, node, attrs, where):
        consts = [i for i, n in enumerate(node.input) if n in self.g.consts]
        if not consts:
            self._residual(node, where)
            return
        if len(consts) != 1 or len(node.input) != 2:
            raise ModelError(f"{where}: an Add of two constants or of more than two inputs is "
                             f"not supported")
        tensor = 1 - consts[0]
        last = self.fusable(node, "a bias Add", index=tensor)
        k = last.out_channels
        bias = self.g.const(node, consts[0], "bias")
        want = {(k,), (1, k)} if last.kind == "fc" else {(k, 1, 1), (1, k, 1, 1)}
        if bias.shape not in want and bias.size != 1:
            raise ModelError(f"{where}: bias shape {bias.shape} is not one value per output "
                             f"channel ({' or '.join(map(str, sorted(want)))})")
        last.bias = last.bias + np.broadcast_to(bias.reshape(-1), (k,))
        self.alias(node, self.ref(node, tensor))

    def op_Sum(self, node, attrs, where):
        if len(node.input) != 2 or any(n in self.g.consts for n in node.input):
            raise ModelError(f"{where}: only the Sum of two tensors (a residual add) is "
                             f"supported, not of {len(node.input)} inputs or of constants")
        self._residual(node, where)

    def _residual(self, node, where):
        refs = [self.ref(node, i) for i in range(len(node.input))]
        if len(refs) != 2 or any(flat for _, flat in refs):
            raise ModelError(f"{where}: a residual add takes two (N, C, H, W) tensors")
        self.add(node, Layer("add", "", inputs=[r for r, _ in refs]), where)

    def op_Concat(self, node, attrs, where):
        if int(attrs.get("axis", 1)) not in (1, -3):
            raise ModelError(f"{where}: Concat axis {attrs.get('axis')} is not supported (only "
                             f"the channel axis 1)")
        refs = [self.ref(node, i) for i in range(len(node.input))]
        if any(flat for _, flat in refs):
            raise ModelError(f"{where}: Concat of flattened tensors is not supported")
        if len(refs) == 1:
            self.alias(node, refs[0])
            return
        self.add(node, Layer("concat", "", inputs=[r for r, _ in refs]), where)

    def op_BatchNormalization(self, node, attrs, where):
        if int(attrs.get("training_mode", 0)) or not int(attrs.get("spatial", 1)):
            raise ModelError(f"{where}: only inference batch-norm (training_mode 0, spatial 1) "
                             f"is supported")
        last = self.fusable(node, "batch-norm", kinds=("conv",))
        scale, bias, mean, var = (self.g.const(node, i, n) for i, n in
                                  enumerate(("scale", "bias", "mean", "var"), start=1))
        k_out = last.weight.shape[0]
        if any(a.shape != (k_out,) for a in (scale, bias, mean, var)):
            raise ModelError(f"{where}: batch-norm parameters must have one entry per output "
                             f"channel ({k_out})")
        k = scale / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        last.weight = last.weight * k[:, None, None, None]
        last.bias = (last.bias - mean) * k + bias
        self.alias(node, self.ref(node))

    def op_Relu(self, node, attrs, where):
        src, flat = self.ref(node)
        layer = self.layers[src] if src >= 0 else None
        ok = (layer is not None and layer.kind in ("conv", "fc", "add") and not layer.relu
              and (not flat or layer.kind == "fc") and self.users(node.input[0]) == 1)
        if not ok:
            raise ModelError(f"{where}: ReLU must follow a Conv, fully-connected layer or "
                             f"residual add whose output nothing else reads")
        layer.relu = True          # after a fused max-pool too: ReLU and max-pool commute
        self.alias(node, (src, flat))

    def _pool_window(self, node, attrs, where, what):
        """(source layer, golden.Window) from every attribute ONNX pooling accepts."""
        src, flat = self.ref(node)
        if flat:
            raise ModelError(f"{where}: {what} needs a (N, C, H, W) input")
        ks = _ints(attrs, "kernel_shape", [])
        if len(ks) != 2:
            raise ModelError(f"{where}: {what} kernel_shape {ks} must have two values")
        strides = _ints(attrs, "strides", [1, 1])
        dilations = _ints(attrs, "dilations", [1, 1])
        hw = self.shape(src)[1:]
        mode = _text(attrs.get("auto_pad", "NOTSET"))
        # onnxruntime pads pooling for the undilated kernel, the ONNX shape rule for the dilated
        # one: they disagree on the output size, so there is no reference to match.
        _refuse_same_dilated(where, what, attrs, dilations,
                             "onnxruntime and the ONNX shape rule disagree on it")
        if mode in ("SAME_UPPER", "SAME_LOWER"):
            (t, b), (l, r) = (_same_pads(n, k, s, mode) for n, k, s in zip(hw, ks, strides))
            pads = [t, l, b, r]
        elif mode in ("NOTSET", "VALID"):
            pads = _ints(attrs, "pads", [0, 0, 0, 0]) if mode == "NOTSET" else [0, 0, 0, 0]
        else:
            raise ModelError(f"{where}: auto_pad {mode!r} is not one of NOTSET, VALID, "
                             f"SAME_UPPER, SAME_LOWER")
        if len(pads) != 4:
            raise ModelError(f"{where}: {what} pads {pads} must have four values")
        try:
            window = golden.Window.of(ks, strides, pads,
                                      dilations, bool(int(attrs.get("ceil_mode", 0))))
        except ValueError as e:
            raise ModelError(f"{where}: {what} {e}") from None
        if min(window.out_size(*hw)) < 1:
            raise ModelError(f"{where}: {what} window {ks} does not fit its input {hw}")
        return src, window

    def op_MaxPool(self, node, attrs, where):
        if int(attrs.get("storage_order", 0)):
            raise ModelError(f"{where}: storage_order {attrs['storage_order']} is not supported")
        src, window = self._pool_window(node, attrs, where, "max-pool")
        layer = self.layers[src] if src >= 0 else None
        plain = window.simple_on(*self.shape(src)[1:])
        if (layer is not None and layer.kind == "conv" and not layer.pool and plain
                and self.users(node.input[0]) == 1):
            layer.pool = plain                   # fused after the conv's ReLU
            self.refresh(src)
            self.alias(node, (src, False))
            return
        self.add(node, Layer("maxpool", "", pool=window, inputs=[src]), where)

    def op_AveragePool(self, node, attrs, where):
        src, window = self._pool_window(node, attrs, where, "average pool")
        self.add(node, Layer("avgpool", "", pool=window, inputs=[src],
                             count_include_pad=bool(int(attrs.get("count_include_pad", 0)))),
                 where)

    def op_GlobalAveragePool(self, node, attrs, where):
        src, flat = self.ref(node)
        if flat:
            raise ModelError(f"{where}: global average pooling needs a (N, C, H, W) input")
        self.add(node, Layer("gap", "", inputs=[src]), where)

    def op_Flatten(self, node, attrs, where):
        if int(attrs.get("axis", 1)) != 1:
            raise ModelError(f"{where}: Flatten axis {attrs['axis']} is not supported (only 1)")
        self.alias(node, (self.ref(node)[0], True))

    def op_Reshape(self, node, attrs, where):
        src, _ = self.ref(node)
        target = [int(v) for v in self.g.const(node, 1, "shape").reshape(-1)]
        features = int(np.prod(self.shape(src)))
        allowzero = int(attrs.get("allowzero", 0))
        ok = (len(target) == 2 and target[0] in (-1, 1) + ((0,) if not allowzero else ())
              and target[1] in (-1, features) and not (target[0] == -1 and target[1] == -1))
        if not ok:
            raise ModelError(f"{where}: Reshape to {target} is not supported: only to "
                             f"(N, {features}) (a flattened vector)")
        self.alias(node, (src, True))

    def op_Softmax(self, node, attrs, where):
        # Before opset 13 the default axis is 1 and the input is flattened from the axis on.
        axis = int(attrs.get("axis", 1 if self.g.opset < 13 else -1))
        src, flat = self.ref(node)
        shape = (int(np.prod(self.shape(src))),) if flat else self.shape(src)
        rank = len(shape) + 1
        channels_only = len(shape) == 1 or (axis % rank == 1 and (self.g.opset < 13
                                                                    or shape[1:] == (1, 1)))
        if not channels_only or axis % rank not in (1, rank - 1) or \
                (axis % rank == rank - 1 and rank != 2):
            raise ModelError(f"{where}: softmax must be over the channels of a (N, K) output "
                             f"(axis {axis} on {shape})")
        self.host_ops.append("softmax")
        self.alias(node, (src, flat))

    def op_Dropout(self, node, attrs, where):
        if len(node.input) > 2 and node.input[2]:
            mode = self.g.const(node, 2, "training_mode").reshape(-1)
            if mode.size and mode[0]:
                raise ModelError(f"{where}: training_mode true is not supported")
        if "is_test" in attrs and not int(attrs["is_test"]):
            raise ModelError(f"{where}: is_test 0 (training) is not supported")
        self.alias(node, self.ref(node))

    def op_Identity(self, node, attrs, where):
        self.alias(node, self.ref(node))

    def op_LRN(self, node, attrs, where):
        self.dropped.append(where)
        self.alias(node, self.ref(node))


def load_onnx(path, drop_lrn: bool = False) -> Network:
    """Import a float CNN graph from ONNX, following the data flow (module docstring). With
    `drop_lrn`, LRN nodes are removed (their names are in the network's `dropped`)."""
    model = _read(path)
    graph = _Graph(model, path)
    dims = [d.dim_value if d.HasField("dim_value") else 0
            for d in graph.input.type.tensor_type.shape.dim]
    if len(dims) != 4 or min(dims[1:]) < 1:
        raise ModelError(f"{path}: input {graph.input.name!r} must be (N, C, H, W) with fixed "
                         f"C, H, W; it is {dims}")
    importer = _Importer(graph, dims, drop_lrn)
    for node, attrs in graph.live_nodes():
        importer.node(node, attrs)
    if not importer.layers:
        raise ModelError(f"{path}: no Conv or fully-connected layer found")
    out, _ = importer.refs[graph.output]
    if out != len(importer.layers) - 1:
        raise ModelError(f"{path}: the graph output {graph.output!r} is not computed by the "
                         f"last layer")
    net = Network(tuple(dims[1:]), importer.layers, importer.host_ops, name=Path(path).stem,
                  dropped=importer.dropped)
    net = simplify_chain(net)
    check_shapes(net)
    return net
