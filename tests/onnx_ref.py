"""onnxruntime reference operators for checking the golden model (single-node ONNX graphs)."""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

_TYPES = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8,
          np.dtype(np.int32): TensorProto.INT32, np.dtype(np.float32): TensorProto.FLOAT}


def run_node(op_type, inputs: dict, out_dtype, opset=13, **attrs):
    """Run one ONNX node on CPU; `inputs` maps names (in order) to arrays, None for omitted."""
    names = [name if value is not None else "" for name, value in inputs.items()]
    node = helper.make_node(op_type, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], op_type,
        [helper.make_tensor_value_info(n, _TYPES[v.dtype], v.shape)
         for n, v in inputs.items() if v is not None],
        [helper.make_tensor_value_info("y", _TYPES[np.dtype(out_dtype)], None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {n: v for n, v in inputs.items() if v is not None})[0]


def conv_integer(x, w, stride, padding):
    sh, sw = stride
    ph, pw = padding
    return run_node("ConvInteger", {"x": x, "w": w}, np.int32,
                    strides=[sh, sw], pads=[ph, pw, ph, pw])


def qlinear_conv(x, x_scale, w, w_scale, y_scale, bias, stride, padding):
    f = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
    zero = np.array(0, np.int8)
    sh, sw = stride
    ph, pw = padding
    return run_node("QLinearConv", {
        "x": x, "x_scale": f(x_scale), "x_zero_point": zero,
        "w": w, "w_scale": f(w_scale), "w_zero_point": np.zeros(w_scale.shape, np.int8),
        "y_scale": f(y_scale), "y_zero_point": zero, "B": bias,
    }, np.int8, strides=[sh, sw], pads=[ph, pw, ph, pw])


def maxpool(x, kernel, stride, padding):
    return run_node("MaxPool", {"x": x}, np.int8, opset=12, kernel_shape=list(kernel),
                    strides=list(stride), pads=[padding[0], padding[1]] * 2)
