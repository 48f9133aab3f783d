"""The golden model against onnxruntime: ConvInteger exactly, QLinearConv within 1 LSB, MaxPool
exactly, and the PyTorch-converted Conv2d cases shipped inside the onnx wheel."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx_ref import conv_integer, maxpool, qlinear_conv

from host import golden


def random_int8(rng, shape, extremes=0.1):
    """Uniform int8 with a fraction of entries forced to -128 or 127."""
    x = rng.integers(-128, 128, size=shape, dtype=np.int16)
    edge = rng.random(shape) < extremes
    x[edge] = rng.choice(np.array([-128, 127], np.int16), size=int(edge.sum()))
    return x.astype(np.int8)


def conv_cases(count=60, seed=20261122):
    """Randomised shapes nobody tuned the model to: kernels 1..11, strides 1/2/4, padding 0..3,
    channel counts at 1, odd, non-multiples of every M and 64+."""
    rng = np.random.default_rng(seed)
    channel_choices = [1, 3, 5, 7, 13, 17, 31, 64, 67, 96]
    cases = []
    for i in range(count):
        k = int(rng.choice([1, 3, 5, 7, 11]))
        stride = (int(rng.choice([1, 2, 4])), int(rng.choice([1, 2, 4])))
        padding = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        c = int(rng.choice(channel_choices))
        kout = int(rng.choice(channel_choices))
        h = int(rng.integers(max(1, k - 2 * padding[0]), k + 12))
        w = int(rng.integers(max(1, k - 2 * padding[1]), k + 12))
        n = int(rng.choice([1, 2]))
        cases.append(pytest.param(i, n, c, kout, h, w, k, stride, padding,
                                  id=f"{i}-n{n}c{c}k{kout}-{h}x{w}-r{k}-s{stride[0]}{stride[1]}"
                                     f"-p{padding[0]}{padding[1]}"))
    return cases


@pytest.mark.parametrize("i,n,c,kout,h,w,k,stride,padding", conv_cases())
def test_conv2d_equals_conv_integer(i, n, c, kout, h, w, k, stride, padding):
    rng = np.random.default_rng(1000 + i)
    x = random_int8(rng, (n, c, h, w))
    wt = random_int8(rng, (kout, c, k, k))
    got = golden.conv2d(x, wt, stride=stride, padding=padding)
    ref = conv_integer(x, wt, stride, padding)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref)


def test_conv2d_extremes_equal_conv_integer():
    # All -128: the largest products, every sum at its bound.
    x = np.full((1, 67, 9, 9), -128, np.int8)
    wt = np.full((5, 67, 3, 3), -128, np.int8)
    got = golden.conv2d(x, wt, padding=1)
    np.testing.assert_array_equal(got, conv_integer(x, wt, (1, 1), (1, 1)))
    assert got.max() == 67 * 9 * 16384
    # Mixed -128 / 127: the most negative sums.
    wt = np.full((5, 67, 3, 3), 127, np.int8)
    got = golden.conv2d(x, wt, stride=2)
    np.testing.assert_array_equal(got, conv_integer(x, wt, (2, 2), (0, 0)))
    assert got.min() == -67 * 9 * 128 * 127


def test_conv2d_exact_beyond_float_fast_path():
    # Reduction longer than MAX_REDUCTION takes the int64 path; result still exact when it fits.
    rng = np.random.default_rng(3)
    c = golden.MAX_REDUCTION + 5
    x = rng.integers(-3, 4, size=(1, c, 1, 1)).astype(np.int8)
    wt = rng.integers(-3, 4, size=(2, c, 1, 1)).astype(np.int8)
    got = golden.conv2d(x, wt)
    expect = (wt[:, :, 0, 0].astype(np.int64) @ x[0, :, 0, 0].astype(np.int64))
    np.testing.assert_array_equal(got[0, :, 0, 0], expect)


def test_conv2d_refuses_int32_overflow():
    c = golden.MAX_REDUCTION + 1
    x = np.full((1, c, 1, 1), -128, np.int8)
    with pytest.raises(ValueError, match="overflows int32"):
        golden.conv2d(x, x.copy())


def test_fully_connected_equals_conv_as_1x1():
    rng = np.random.default_rng(5)
    x = random_int8(rng, (3, 75))
    wt = random_int8(rng, (10, 75))
    fc = golden.fully_connected(x, wt)
    conv = golden.conv2d(x[:, :, None, None], wt[:, :, None, None])[:, :, 0, 0]
    np.testing.assert_array_equal(fc, conv)
    np.testing.assert_array_equal(fc, conv_integer(x[:, :, None, None], wt[:, :, None, None],
                                                   (1, 1), (0, 0))[:, :, 0, 0])


@pytest.mark.parametrize("seed", range(12))
def test_requantize_within_one_lsb_of_qlinear_conv(seed):
    rng = np.random.default_rng(500 + seed)
    c, kout = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    k = int(rng.choice([1, 3, 5]))
    stride = (int(rng.integers(1, 3)),) * 2
    padding = (int(rng.integers(0, 3)),) * 2
    h = w = int(rng.integers(k, k + 8))
    x = random_int8(rng, (1, c, h, w))
    wt = random_int8(rng, (kout, c, k, k))
    x_scale = np.float32(rng.uniform(0.005, 0.05))
    w_scale = rng.uniform(0.001, 0.02, size=kout).astype(np.float32)
    bias = rng.integers(-20000, 20000, size=kout).astype(np.int32)
    acc_float = golden.add_bias(golden.conv2d(x, wt, stride=stride, padding=padding),
                                bias).astype(np.float64)
    # Choose the output scale so that results spread over the whole int8 range and beyond it,
    # to exercise saturation.
    y_scale = np.float32(np.abs(acc_float * x_scale * w_scale[None, :, None, None]).max() / 160)

    mult, shift = golden.scale_to_mult_shift(
        np.float64(x_scale) * w_scale.astype(np.float64) / np.float64(y_scale))
    acc = golden.add_bias(golden.conv2d(x, wt, stride=stride, padding=padding), bias)
    got = golden.requantize(acc, mult, shift)
    ref = qlinear_conv(x, x_scale, wt, w_scale, y_scale, bias, stride, padding)
    diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1, f"max difference {diff.max()} LSB"
    assert max(-int(got.min()), int(got.max())) >= 127  # saturation really was exercised


def test_requantize_rounding_and_saturation():
    acc = np.array([[5, 6, 7, -5, -6, -7, 10_000, -10_000, 0]], np.int32).T.reshape(1, 1, 9)
    # mult/2**shift = 1/4: 5/4=1.25->1, 6/4=1.5->2 (half up), -6/4=-1.5->-1 (half up), saturate.
    y = golden.requantize(acc, np.array([1], np.int32), np.array([2], np.int32))
    assert y.tolist() == [[[1, 2, 2, -1, -1, -2, 127, -128, 0]]]


def test_scale_to_mult_shift_precision():
    scales = np.geomspace(2.0 ** -30, 2.0 ** 14, 500)
    mult, shift = golden.scale_to_mult_shift(scales)
    assert np.all(mult < 1 << 16) and np.all(shift >= 1) and np.all(shift <= 47)
    rel = np.abs(mult / np.exp2(shift.astype(np.float64)) - scales) / scales
    assert rel.max() <= 2.0 ** -16
    with pytest.raises(ValueError, match="too large"):
        golden.scale_to_mult_shift(2.0 ** 16)
    with pytest.raises(ValueError, match="positive"):
        golden.scale_to_mult_shift(0.0)


@pytest.mark.parametrize("kernel,stride,padding", [
    ((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 3), (1, 1), (0, 0)),
    ((2, 3), (1, 2), (1, 0)),
])
def test_maxpool_equals_onnx(kernel, stride, padding):
    rng = np.random.default_rng(sum(kernel) + sum(stride))
    x = random_int8(rng, (2, 5, 11, 10), extremes=0.3)
    got = golden.maxpool2d(x, kernel, stride, padding)
    np.testing.assert_array_equal(got, maxpool(x, kernel, stride, padding))


def test_relu():
    x = np.array([-128, -1, 0, 1, 127], np.int8)
    assert golden.relu(x).tolist() == [0, 0, 0, 1, 127]


# -- PyTorch-converted Conv2d cases from the onnx wheel ------------------------------------------

PYTORCH_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"
PYTORCH_CASES = sorted(p.name for p in PYTORCH_DIR.glob("test_Conv2d*"))


def _is_plain_conv(case):
    (conv,) = [n for n in onnx.load(str(PYTORCH_DIR / case / "model.onnx")).graph.node
               if n.op_type == "Conv"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    return attrs.get("group", 1) == 1 and list(attrs.get("dilations", [1, 1])) == [1, 1]


#: The cases the golden model computes directly (groups 1, no dilation), and the grouped,
#: depthwise and dilated ones, which the importer turns into the plain convolution they equal
#: (block-diagonal kernel, zero taps).
COMPARED = [c for c in PYTORCH_CASES if _is_plain_conv(c)]
EXPANDED = [c for c in PYTORCH_CASES if not _is_plain_conv(c)]


def quantize_symmetric(a):
    scale = max(float(np.abs(a).max()), 1e-12) / 127
    return np.clip(np.rint(a / scale), -127, 127).astype(np.int8), scale


def test_pytorch_cases_present():
    assert len(PYTORCH_CASES) == 11 and len(COMPARED) == 4, (COMPARED, EXPANDED)


@pytest.mark.parametrize("case", PYTORCH_CASES)
def test_pytorch_cases_import_as_plain_convolutions(case):
    """Every case imports (grouped, depthwise and dilated ones as the plain convolution they
    equal) and its float forward equals PyTorch's recorded output."""
    from host.model_files import load_model
    from host.nn import forward

    net = load_model(PYTORCH_DIR / case / "model.onnx")
    data = PYTORCH_DIR / case / "test_data_set_0"
    x = numpy_helper.to_array(onnx.load_tensor(str(data / "input_0.pb")))
    want = numpy_helper.to_array(onnx.load_tensor(str(data / "output_0.pb")))
    got = forward(net, x, return_all=True)[-1]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * max(np.abs(want).max(), 1)


@pytest.mark.parametrize("case", COMPARED)
def test_pytorch_conv2d_case(case):
    model = onnx.load(str(PYTORCH_DIR / case / "model.onnx"))
    (conv,) = [n for n in model.graph.node if n.op_type == "Conv"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    data = PYTORCH_DIR / case / "test_data_set_0"
    x = numpy_helper.to_array(onnx.load_tensor(str(data / "input_0.pb")))
    y_float = numpy_helper.to_array(onnx.load_tensor(str(data / "output_0.pb")))
    w = inits[conv.input[1]]
    bias = inits[conv.input[2]] if len(conv.input) > 2 and conv.input[2] else None

    stride = tuple(attrs.get("strides", [1, 1]))
    pads = attrs.get("pads", [0, 0, 0, 0])
    groups = attrs.get("group", 1)
    dilations = tuple(attrs.get("dilations", [1, 1]))
    assert groups == 1 and dilations == (1, 1)
    assert pads[0] == pads[2] and pads[1] == pads[3], "asymmetric padding"
    padding = (pads[0], pads[1])

    xq, sx = quantize_symmetric(x)
    wq, sw = quantize_symmetric(w)
    got = golden.conv2d(xq, wq, stride=stride, padding=padding)
    np.testing.assert_array_equal(got, conv_integer(xq, wq, stride, padding))

    # And the quantized result, dequantized, is close to PyTorch's float output: the attributes
    # were read correctly.
    approx = got * (sx * sw)
    if bias is not None:
        approx = approx + bias[None, :, None, None]
    err = np.abs(approx - y_float).max()
    assert err <= 0.05 * max(np.abs(y_float).max(), 1e-6), err


# -- every error message ----------------------------------------------------------------------

X = np.zeros((1, 2, 5, 5), np.int8)
W = np.zeros((3, 2, 3, 3), np.int8)


@pytest.mark.parametrize("call,message", [
    (lambda: golden.conv2d(X.astype(np.int16), W), "x must have dtype int8, not int16"),
    (lambda: golden.conv2d(X, W.astype(np.float32)), "w must have dtype int8, not float32"),
    (lambda: golden.conv2d(X.tolist(), W), "x must be a numpy array of int8, not list"),
    (lambda: golden.conv2d(X[0], W), r"x must have 4 dimensions, not 3"),
    (lambda: golden.conv2d(X, W[:, :1]), "w has 1 input channels but x has 2"),
    (lambda: golden.conv2d(X, W, stride=0), "stride must be at least 1, not 0"),
    (lambda: golden.conv2d(X, W, stride=(1, 2, 3)), "stride must be an int or a pair of ints"),
    (lambda: golden.conv2d(X, W, padding=-1), "padding must be at least 0, not -1"),
    (lambda: golden.conv2d(X, np.zeros((1, 2, 7, 7), np.int8)), "kernel 7x7 does not fit"),
    (lambda: golden.conv2d(np.zeros((0, 2, 5, 5), np.int8), W), "must have no empty dimension"),
    (lambda: golden.fully_connected(np.zeros((1, 4), np.int8), np.zeros((2, 5), np.int8)),
     "w has 5 inputs but x has 4"),
    (lambda: golden.fully_connected(np.zeros(4, np.int8), np.zeros((2, 4), np.int8)),
     "x must have 2 dimensions, not 1"),
    (lambda: golden.add_bias(np.zeros((1, 3), np.int32), np.zeros(2, np.int32)),
     r"bias must have one entry per output channel \(3\), not 2"),
    (lambda: golden.add_bias(np.zeros(3, np.int32), np.zeros(3, np.int32)),
     "acc must have at least 2 dimensions"),
    (lambda: golden.add_bias(np.full((1, 1), golden.INT32_MAX, np.int32), np.ones(1, np.int32)),
     "acc \\+ bias overflows int32"),
    (lambda: golden.requantize(np.zeros((1, 2), np.int64), np.ones(2, np.int32),
                               np.ones(2, np.int32)), "acc must have dtype int32, not int64"),
    (lambda: golden.requantize(np.zeros((1, 2), np.int32), np.full(2, 1 << 16, np.int32),
                               np.ones(2, np.int32)), "mult must lie in 0..65535"),
    (lambda: golden.requantize(np.zeros((1, 2), np.int32), np.ones(2, np.int32),
                               np.zeros(2, np.int32)), "shift must lie in 1..47"),
    (lambda: golden.requantize(np.zeros((1, 2), np.int32), np.ones(2, np.int32),
                               np.ones(3, np.int32)), r"shift must have one entry per output"),
    (lambda: golden.relu(np.zeros(3, np.int32)), "x must have dtype int8, not int32"),
    (lambda: golden.maxpool2d(X, 2, padding=2), r"padding 2 must be smaller than the kernel"),
    (lambda: golden.maxpool2d(X, 6), "pool kernel 6x6 does not fit the 5x5 input"),
])
def test_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
