"""The whole-network layer kinds of the golden model (SPEC section 8) against onnxruntime's
quantized contrib operators (QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool) with
symmetric int8 (zero points 0): within 1 LSB everywhere, and the integer definitions themselves
checked exactly where they allow it."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from host import golden

MS = "com.microsoft"


def run_ms(op, inputs, out_shape, **attrs):
    """Run one com.microsoft quantized operator; `inputs` are (name, array) in order."""
    names = [n for n, _ in inputs]
    node = helper.make_node(op, names, ["y"], domain=MS, **attrs)
    infos = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
             for n, a in inputs]
    graph = helper.make_graph([node], "q", infos,
                              [helper.make_tensor_value_info("y", TensorProto.INT8, out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(inputs))[0]


def f32(v):
    return np.array(v, np.float32)


ZP = np.array(0, np.int8)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("relu", [False, True])
def test_residual_add_matches_qlinearadd(seed, relu):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=(2, 5, 6, 7), dtype=np.int8)
    b = rng.integers(-128, 128, size=(2, 5, 6, 7), dtype=np.int8)
    sa, sb, sy = rng.uniform(0.01, 0.1, 3)
    ma, mb, shift = golden.add_mult_shift(sa / sy, sb / sy)
    got = golden.residual_add(a, b, ma, mb, shift, relu=relu)
    want = run_ms("QLinearAdd", [("a", a), ("sa", f32(sa)), ("za", ZP), ("b", b),
                                 ("sb", f32(sb)), ("zb", ZP), ("sy", f32(sy)), ("zy", ZP)],
                  list(a.shape))
    if relu:
        want = np.maximum(want, 0)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_residual_add_is_its_integer_definition():
    a = np.array([[-128, -1, 0, 1, 127]], np.int8)
    b = np.array([[127, 1, 0, -1, -128]], np.int8)
    # (a * 3 + b * 5 + 2) >> 2, saturated
    want = np.clip((a.astype(int) * 3 + b.astype(int) * 5 + 2) >> 2, -128, 127)
    assert (golden.residual_add(a, b, 3, 5, 2) == want).all()
    assert (golden.residual_add(a, b, 3, 5, 2, relu=True) == np.maximum(want, 0)).all()


POOLS = [  # kernel, stride, pads, count_include_pad, input H x W
    (2, 2, 0, 0, (8, 8)), (3, 2, 1, 0, (9, 7)), (3, 2, 1, 1, (9, 7)), (3, 1, 1, 0, (5, 6)),
    (2, 1, 0, 1, (4, 5)), (7, 1, 0, 0, (7, 7)),
]


@pytest.mark.parametrize("kernel,stride,pad,include,hw", POOLS)
def test_avgpool_matches_qlinearaveragepool(kernel, stride, pad, include, hw):
    rng = np.random.default_rng(kernel * 10 + pad)
    x = rng.integers(-128, 128, size=(2, 3, *hw), dtype=np.int8)
    for ratio in (1.0, 0.37):
        got = golden.avgpool2d(x, kernel, stride, pad, count_include_pad=bool(include),
                               scale=ratio)
        want = run_ms("QLinearAveragePool", [("x", x), ("sx", f32(ratio)), ("zx", ZP),
                                             ("sy", f32(1.0)), ("zy", ZP)], list(got.shape),
                      kernel_shape=[kernel, kernel], strides=[stride, stride],
                      pads=[pad] * 4, count_include_pad=include)
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want).max() <= 1, (ratio, got, want)


# Every attribute ONNX pooling accepts: asymmetric pads (t, l, b, r), ceil_mode, dilations.
WINDOWS = [  # kernel, stride, pads, dilation, ceil_mode, count_include_pad, input H x W
    ((7, 7), (1, 1), (0, 0, 1, 1), (1, 1), 0, 0, (7, 7)),      # GoogLeNet's final pool (Caffe)
    ((3, 3), (2, 2), (0, 0, 1, 1), (1, 1), 0, 1, (13, 13)),
    ((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1, 0, (8, 8)),       # ceil_mode changes the size
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, 1, (8, 9)),
    ((2, 3), (2, 1), (1, 0, 0, 2), (1, 1), 1, 0, (6, 7)),
    ((2, 2), (1, 2), (0, 1, 1, 0), (2, 2), 0, 0, (7, 6)),      # dilated
    ((3, 2), (2, 2), (1, 1, 2, 1), (2, 1), 1, 1, (9, 8)),
]


def _pool_model(op, x, window, attrs):
    """onnxruntime's float MaxPool / AveragePool on x (exact on integer values for max)."""
    node = helper.make_node(op, ["x"], ["y"], kernel_shape=list(window.kernel),
                            strides=list(window.stride), pads=list(window.pads),
                            ceil_mode=int(window.ceil_mode), **attrs)
    graph = helper.make_graph([node], "p", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(x.shape))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32)})[0]


@pytest.mark.parametrize("kernel,stride,pads,dilation,ceil,include,hw", WINDOWS)
def test_general_windows_match_onnxruntime(kernel, stride, pads, dilation, ceil, include, hw):
    """Max-pool exactly equal, average pool within 1 LSB of onnxruntime's float average (whose
    divisor follows count_include_pad), output sizes equal, on every window attribute."""
    rng = np.random.default_rng(sum(hw))
    x = rng.integers(-128, 128, size=(2, 3, *hw), dtype=np.int8)
    window = golden.Window.of(kernel, stride, pads, dilation, bool(ceil))
    got = golden.maxpool2d(x, window)
    want = _pool_model("MaxPool", x, window, {"dilations": list(dilation)})
    assert got.shape == want.shape and (got == want).all()
    if dilation == (1, 1):             # onnxruntime's AveragePool has no dilations before 19
        got = golden.avgpool2d(x, window, count_include_pad=bool(include))
        want = _pool_model("AveragePool", x, window, {"count_include_pad": include})
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("hw", [(7, 7), (1, 1), (3, 5)])
def test_global_avgpool_matches_qlinearglobalaveragepool(hw):
    rng = np.random.default_rng(hw[0])
    x = rng.integers(-128, 128, size=(2, 6, *hw), dtype=np.int8)
    got = golden.global_avgpool(x)
    want = run_ms("QLinearGlobalAveragePool", [("x", x), ("sx", f32(1.0)), ("zx", ZP),
                                               ("sy", f32(1.0)), ("zy", ZP)], [2, 6, 1, 1])
    assert got.shape == (2, 6, 1, 1)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_avgpool_rounds_half_up_where_exact():
    """A 2x2 window's divisor 4 is a power of two: the multiplier is exact, so the result is
    round-half-up of sum / 4 exactly."""
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)
    got = golden.avgpool2d(x, 2, 2)
    sums = x.astype(int).reshape(1, 1, 8, 2, 8, 2).sum(axis=(3, 5))
    assert (got == np.floor(sums / 4 + 0.5)).all()


@pytest.mark.parametrize("call,message", [
    (lambda: golden.residual_add(np.zeros(3, np.int8), np.zeros(4, np.int8), 1, 1, 1),
     "a and b must have the same shape"),
    (lambda: golden.residual_add(np.zeros(3, np.int8), np.zeros(3, np.int8), 1 << 16, 1, 1),
     "mult_a must lie in 0..65535"),
    (lambda: golden.residual_add(np.zeros(3, np.int8), np.zeros(3, np.int8), 1, 1, 0),
     "shift must lie in 1..47"),
    (lambda: golden.avgpool2d(np.zeros((1, 1, 4, 4), np.int8), 2, 2, 2),
     "padding 2 must be smaller than the kernel"),
    (lambda: golden.avgpool2d(np.zeros((1, 1, 2, 2), np.int8), 3),
     "pool kernel 3x3 does not fit the 2x2 input"),
    (lambda: golden.add_mult_shift(0.0, 1.0), "scales must be finite and positive"),
])
def test_new_kind_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
