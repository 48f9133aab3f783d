"""The golden model: the single definition of Sense's arithmetic (SPEC section 2).

Every function is vectorised numpy and exact. Gateware tests compare the RTL with these
functions bit for bit; the tests in ``tests/test_golden.py`` compare them with onnxruntime
(``ConvInteger`` exactly, ``QLinearConv`` within 1 LSB).

Numerics
--------
* Activations and weights are signed int8 with zero point 0.
* ``conv2d`` / ``fully_connected`` return the exact sum of int8 x int8 products as int32.
  One product lies in [-16256, 16384]; a sum of ``n`` products is therefore bounded by
  ``n * 2**14`` in magnitude, which fits int32 for every reduction length
  ``n <= MAX_REDUCTION = 131071``. The hardware adds the bias and the partial sums of
  input-channel blocks in int32 and relies on this bound; the packer refuses layers that could
  exceed it (see ``acc_bound``). The grid's accumulators may be narrower (``acc_width`` bits,
  ``hw.config``): there the packer refuses a layer whose weights could drive a sum out of them
  (see ``grid_acc_bound``: with every input at its extreme), so every accepted layer's sums are
  exact there too.
* ``requantize``: ``y = sat_int8((acc * mult + (1 << (shift - 1))) >> shift)`` per output channel,
  ``mult`` unsigned 16-bit, ``shift`` in 1..47, arithmetic shift, rounding half up. With
  ``|acc| < 2**31`` and ``mult < 2**16`` every intermediate fits a signed 48-bit value (the width
  of a DSP48E2 P register).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "conv2d", "fully_connected", "add_bias", "requantize", "relu", "maxpool2d", "Window",
    "avgpool2d", "global_avgpool", "residual_add", "add_mult_shift",
    "scale_to_mult_shift", "acc_bound", "grid_acc_bound", "MAX_REDUCTION", "MULT_BITS", "SHIFT_RANGE",
    "INT8_MIN", "INT8_MAX", "INT32_MIN", "INT32_MAX",
]

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_PRODUCT = 1 << 14  # (-128) * (-128)
MAX_REDUCTION = INT32_MAX // MAX_PRODUCT  # 131071
MULT_BITS = 16
SHIFT_RANGE = (1, 47)


# -- argument checks ----------------------------------------------------------------------------

def _int_array(name, value, dtype, ndim=None):
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of {np.dtype(dtype).name}, "
                         f"not {type(value).__name__}")
    if value.dtype != np.dtype(dtype):
        raise ValueError(f"{name} must have dtype {np.dtype(dtype).name}, not {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, not {value.ndim} "
                         f"(shape {value.shape})")
    return value


def _pair(name, value, minimum):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, not {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    return pair


def _channel_vector(name, value, channels, dtype):
    value = _int_array(name, value, dtype, ndim=1)
    if value.shape[0] != channels:
        raise ValueError(f"{name} must have one entry per output channel ({channels}), "
                         f"not {value.shape[0]}")
    return value


def _to_int32(name, value):
    if value.size and (value.min() < INT32_MIN or value.max() > INT32_MAX):
        raise ValueError(f"{name} overflows int32 (range {value.min()}..{value.max()}); "
                         f"reduce the reduction length or the bias")
    return value.astype(np.int32)


def _dot(a, b, axes, reduction):
    """Exact integer tensordot. Below MAX_REDUCTION every partial sum is an integer smaller than
    2**31, so float64 (BLAS) is exact whatever the summation order; above it, use int64."""
    if reduction <= MAX_REDUCTION:
        return np.rint(np.tensordot(a.astype(np.float64), b.astype(np.float64), axes)).astype(np.int64)
    return np.tensordot(a.astype(np.int64), b.astype(np.int64), axes)


# -- layers -------------------------------------------------------------------------------------

def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_windows(x, kernel, stride, padding, pad_value=0):
    """(N, C, OH, OW, R, S) view of the padded input's windows (no checks; shared by conv2d,
    maxpool2d and host.nn's float reference)."""
    (r, s), (sh, sw), (ph, pw) = kernel, stride, padding
    oh = output_size(x.shape[2], r, sh, ph)
    ow = output_size(x.shape[3], s, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    return sliding_window_view(xp, (r, s), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]


def conv2d(x: np.ndarray, w: np.ndarray, stride=1, padding=0, image_rows=None) -> np.ndarray:
    """Exact 2-D convolution (cross-correlation, as ONNX Conv) of int8 tensors.

    x: (N, C, H, W) int8; w: (K, C, R, S) int8; stride and padding: int or (vertical, horizontal);
    padding is symmetric zero padding. Returns (N, K, OH, OW) int32. `image_rows`: each map is
    images of that many rows stacked (a batch's stacked tail, host.batch), each convolved with
    its own padding; the outputs are stacked the same way.
    """
    if image_rows:
        x = _int_array("x", x, np.int8, ndim=4)
        n, c, h, wd = x.shape
        if h % image_rows:
            raise ValueError(f"a map of {h} rows is not images of {image_rows} rows")
        per = x.reshape(n, c, h // image_rows, image_rows, wd).transpose(0, 2, 1, 3, 4)
        y = conv2d(per.reshape(-1, c, image_rows, wd), w, stride, padding)
        _, k, oh, ow = y.shape
        return y.reshape(n, h // image_rows, k, oh, ow).transpose(0, 2, 1, 3, 4).reshape(
            n, k, -1, ow)
    x = _int_array("x", x, np.int8, ndim=4)
    w = _int_array("w", w, np.int8, ndim=4)
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    n, c, h, wd = x.shape
    k, wc, r, s = w.shape
    if wc != c:
        raise ValueError(f"w has {wc} input channels but x has {c}")
    if min(x.shape) < 1 or min(w.shape) < 1:
        raise ValueError(f"x {x.shape} and w {w.shape} must have no empty dimension")
    oh, ow = output_size(h, r, sh, ph), output_size(wd, s, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {r}x{s} does not fit the {h}x{wd} input with padding "
                         f"{(ph, pw)}")
    windows = conv_windows(x, (r, s), (sh, sw), (ph, pw))
    out = _dot(windows, w, axes=([1, 4, 5], [1, 2, 3]), reduction=c * r * s)  # (N, OH, OW, K)
    return _to_int32("conv2d result", out.transpose(0, 3, 1, 2))


def fully_connected(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact fully-connected layer: x (N, C) int8, w (K, C) int8 -> (N, K) int32.

    The accelerator runs it as a 1x1 convolution over a 1x1 map; the result is identical.
    """
    x = _int_array("x", x, np.int8, ndim=2)
    w = _int_array("w", w, np.int8, ndim=2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w has {w.shape[1]} inputs but x has {x.shape[1]}")
    return _to_int32("fully_connected result", _dot(x, w, axes=([1], [1]), reduction=x.shape[1]))


def add_bias(acc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """acc (N, K, ...) int32 plus bias (K,) int32 per output channel, exact, int32."""
    acc = _int_array("acc", acc, np.int32)
    if acc.ndim < 2:
        raise ValueError(f"acc must have at least 2 dimensions (N, K, ...), not {acc.ndim}")
    bias = _channel_vector("bias", bias, acc.shape[1], np.int32)
    b = bias.astype(np.int64).reshape((1, -1) + (1,) * (acc.ndim - 2))
    return _to_int32("acc + bias", acc.astype(np.int64) + b)


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Per-output-channel requantization to int8 (SPEC section 2).

    acc (N, K, ...) int32; mult (K,) int32 with 0 <= mult < 2**16; shift (K,) int32 in 1..47.
    Returns sat_int8((acc * mult + (1 << (shift - 1))) >> shift) as int8.
    """
    acc = _int_array("acc", acc, np.int32)
    if acc.ndim < 2:
        raise ValueError(f"acc must have at least 2 dimensions (N, K, ...), not {acc.ndim}")
    k = acc.shape[1]
    mult = _channel_vector("mult", mult, k, np.int32)
    shift = _channel_vector("shift", shift, k, np.int32)
    if mult.size and (mult.min() < 0 or mult.max() >= 1 << MULT_BITS):
        raise ValueError(f"mult must lie in 0..{(1 << MULT_BITS) - 1}, "
                         f"not {mult.min()}..{mult.max()}")
    lo, hi = SHIFT_RANGE
    if shift.size and (shift.min() < lo or shift.max() > hi):
        raise ValueError(f"shift must lie in {lo}..{hi}, not {shift.min()}..{shift.max()}")
    view = (1, -1) + (1,) * (acc.ndim - 2)
    m = mult.astype(np.int64).reshape(view)
    sh = shift.astype(np.int64).reshape(view)
    y = (acc.astype(np.int64) * m + (np.int64(1) << (sh - 1))) >> sh
    return np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) on int8."""
    x = _int_array("x", x, np.int8)
    return np.maximum(x, np.int8(0))


@dataclass(frozen=True)
class Window:
    """A pooling window with every attribute ONNX's MaxPool / AveragePool accept: kernel, stride,
    dilation (vertical, horizontal), explicit padding (top, left, bottom, right) and ceil_mode
    (the output size rounded up; a window may then reach past the padding, and a window that
    would start in the bottom/right padding is dropped, as onnxruntime does)."""

    kernel: tuple
    stride: tuple
    pads: tuple = (0, 0, 0, 0)
    dilation: tuple = (1, 1)
    ceil_mode: bool = False

    @staticmethod
    def of(kernel, stride=None, padding=0, dilation=1, ceil_mode=False) -> "Window":
        """A checked window; stride defaults to the kernel; padding an int, a pair or
        (top, left, bottom, right)."""
        k = _pair("kernel", kernel, 1)
        st = _pair("stride", kernel if stride is None else stride, 1)
        d = _pair("dilation", dilation, 1)
        if isinstance(padding, (tuple, list)) and len(padding) == 4:
            pads = tuple(int(v) for v in padding)
            if min(pads) < 0:
                raise ValueError(f"padding must be at least 0, not {padding!r}")
        else:
            ph, pw = _pair("padding", padding, 0)
            pads = (ph, pw, ph, pw)
        ext = [(k[i] - 1) * d[i] + 1 for i in range(2)]
        if max(pads[0], pads[2]) >= ext[0] or max(pads[1], pads[3]) >= ext[1]:
            raise ValueError(f"padding {padding!r} must be smaller than the kernel {k}")
        return Window(k, st, pads, d, bool(ceil_mode))

    @property
    def symmetric(self) -> tuple | None:
        """(kernel, stride, pad) if the window is square, undilated, equally padded and
        ceil_mode does not change its output (decided per input size: see `simple_on`)."""
        (kh, kw), (sh, sw), p = self.kernel, self.stride, self.pads
        if kh == kw and sh == sw and len(set(p)) == 1 and self.dilation == (1, 1):
            return kh, sh, p[0]
        return None

    def simple_on(self, h: int, w: int) -> tuple | None:
        """(kernel, stride, pad) when this window on an h x w input is a plain symmetric one."""
        plain = self.symmetric
        if plain is None or self.out_size(h, w) != (output_size(h, *plain),
                                                    output_size(w, *plain)):
            return None
        return plain

    def out_size(self, h: int, w: int) -> tuple:
        out = []
        for axis, n in enumerate((h, w)):
            k = (self.kernel[axis] - 1) * self.dilation[axis] + 1
            s, begin, end = self.stride[axis], self.pads[axis], self.pads[axis + 2]
            span = n + begin + end - k
            o = (-(-span // s) if self.ceil_mode else span // s) + 1
            if self.ceil_mode and (o - 1) * s >= n + begin:
                o -= 1                 # the last window would start in the end padding
            out.append(o)
        return tuple(out)

    def windows(self, x, pad_value, count_pad_value=None):
        """(N, C, OH, OW, KH, KW) windows of x padded with `pad_value`; with `count_pad_value`,
        the explicit padding is filled with it and the ceil_mode overhang with `pad_value`."""
        oh, ow = self.out_size(*x.shape[2:])
        ext = [(self.kernel[i] - 1) * self.dilation[i] + 1 for i in range(2)]
        t, l, b, r = self.pads
        extra_b = max((oh - 1) * self.stride[0] + ext[0] - (x.shape[2] + t + b), 0)
        extra_r = max((ow - 1) * self.stride[1] + ext[1] - (x.shape[3] + l + r), 0)
        inner = pad_value if count_pad_value is None else count_pad_value
        xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=inner)
        xp = np.pad(xp, ((0, 0), (0, 0), (0, extra_b), (0, extra_r)), constant_values=pad_value)
        view = sliding_window_view(xp, ext, axis=(2, 3))
        view = view[:, :, ::self.stride[0], ::self.stride[1]][:, :, :oh, :ow]
        return view[..., ::self.dilation[0], ::self.dilation[1]]

    def counts(self, h: int, w: int, count_include_pad: bool) -> np.ndarray:
        """(OH, OW) number of elements each window averages over: those inside the input, plus
        the explicit padding with `count_include_pad` (never the ceil_mode overhang)."""
        ones = np.ones((1, 1, h, w), np.int64)
        return self.windows(ones, 0, 1 if count_include_pad else 0).sum(axis=(4, 5))[0, 0]


def maxpool2d(x: np.ndarray, kernel, stride=None, padding=0, dilation=1,
              ceil_mode=False) -> np.ndarray:
    """Max-pool of int8 (N, C, H, W); padding counts as -128 (never wins, as ONNX's -inf)."""
    x = _int_array("x", x, np.int8, ndim=4)
    window = _pool_window(x, kernel, stride, padding, dilation, ceil_mode)
    return window.windows(x, INT8_MIN).max(axis=(4, 5))


def _pool_window(x, kernel, stride, padding, dilation=1, ceil_mode=False) -> Window:
    """A checked `Window` that fits x (N, C, H, W)."""
    window = kernel if isinstance(kernel, Window) else Window.of(kernel, stride, padding,
                                                                  dilation, ceil_mode)
    _, _, h, wd = x.shape
    oh, ow = window.out_size(h, wd)
    if oh < 1 or ow < 1:
        kh, kw = window.kernel
        raise ValueError(f"pool kernel {kh}x{kw} does not fit the {h}x{wd} input")
    return window


def residual_add(a: np.ndarray, b: np.ndarray, mult_a: int, mult_b: int, shift: int,
                 relu: bool = False) -> np.ndarray:
    """Residual add of two int8 tensors with their own scales into a third (SPEC section 8):
    sat_int8((a * mult_a + b * mult_b + (1 << (shift - 1))) >> shift), then optional ReLU.
    mult_a, mult_b in 0..2**16 - 1, shift in 1..47 (`add_mult_shift` makes them from scales)."""
    a = _int_array("a", a, np.int8)
    b = _int_array("b", b, np.int8)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, not {a.shape} and {b.shape}")
    for name, m in (("mult_a", mult_a), ("mult_b", mult_b)):
        if not 0 <= int(m) < 1 << MULT_BITS:
            raise ValueError(f"{name} must lie in 0..{(1 << MULT_BITS) - 1}, not {m}")
    lo, hi = SHIFT_RANGE
    if not lo <= int(shift) <= hi:
        raise ValueError(f"shift must lie in {lo}..{hi}, not {shift}")
    sh = np.int64(shift)
    y = (a.astype(np.int64) * int(mult_a) + b.astype(np.int64) * int(mult_b)
         + (np.int64(1) << (sh - 1))) >> sh
    y = np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)
    return np.maximum(y, np.int8(0)) if relu else y


def add_mult_shift(scale_a: float, scale_b: float) -> tuple[int, int, int]:
    """(mult_a, mult_b, shift) with mult_x / 2**shift ~ scale_x (the ratios of each input's
    scale to the output's), sharing one shift chosen so the larger multiplier uses 16 bits."""
    ratios = np.array([scale_a, scale_b], np.float64)
    if not np.all(np.isfinite(ratios)) or np.any(ratios <= 0):
        raise ValueError("scales must be finite and positive")
    _, shift = scale_to_mult_shift(ratios.max())
    shift = int(shift[0])
    mult = np.rint(ratios * 2.0 ** shift).astype(np.int64)
    return int(mult[0]), int(mult[1]), shift


def avgpool2d(x: np.ndarray, kernel, stride=None, padding=0, count_include_pad: bool = False,
              scale: float = 1.0, dilation=1, ceil_mode=False,
              count: int | None = None) -> np.ndarray:
    """Average pool of int8 (N, C, H, W) (SPEC section 8): per window, sum the int8 values and
    divide by n as a multiplier and shift: sat_int8((sum * mult + (1 << (shift - 1))) >> shift)
    with mult / 2**shift ~ scale / n (`scale`: input scale / output scale, 1 when pooling keeps
    the scale). n is `Window.counts` (ONNX's count_include_pad), so windows at a padded border
    have their own multiplier. `kernel` may be a `Window`. `count`: every window's n instead (a
    batch's stacked GAP, host.batch: a window of the image's rows and zero separator rows that
    averages the image's H x W values)."""
    x = _int_array("x", x, np.int8, ndim=4)
    window = _pool_window(x, kernel, stride, padding, dilation, ceil_mode)
    sums = window.windows(x.astype(np.int64), 0).sum(axis=(4, 5))
    counts = window.counts(*x.shape[2:], count_include_pad)
    if count is not None:
        counts = np.full_like(counts, count)
    oh, ow = counts.shape
    mult, shift = scale_to_mult_shift(scale / counts.reshape(-1))
    m = mult.astype(np.int64).reshape(oh, ow)
    s = shift.astype(np.int64).reshape(oh, ow)
    y = (sums * m + (np.int64(1) << (s - 1))) >> s
    return np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)


def global_avgpool(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Global average pool of int8 (N, C, H, W) -> (N, C, 1, 1): `avgpool2d` over the whole map."""
    x = _int_array("x", x, np.int8, ndim=4)
    return avgpool2d(x, x.shape[2:], stride=1, scale=scale)


# -- helpers for the numerics ---------------------------------------------------------------------

def scale_to_mult_shift(scale) -> tuple[np.ndarray, np.ndarray]:
    """Represent positive float scales as mult / 2**shift with mult normalised to 16 bits.

    Relative error at most 2**-16 for scales from 2**-32 up; smaller scales lose precision
    (shift is capped at 47). Scales of 2**15 and above cannot be represented: ValueError.
    """
    scale = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError("scale must be finite and positive")
    lo, hi = SHIFT_RANGE
    exponent = np.floor(np.log2(scale)).astype(np.int64)
    shift = np.clip((MULT_BITS - 1) - exponent, lo, hi)
    mult = np.rint(scale * np.exp2(shift)).astype(np.int64)
    # Rounding may reach 2**16: take one bit off the shift instead.
    over = mult >= 1 << MULT_BITS
    shift = np.where(over & (shift > lo), shift - 1, shift)
    mult = np.rint(scale * np.exp2(shift)).astype(np.int64)
    if np.any(mult >= 1 << MULT_BITS):
        raise ValueError(f"scale {scale.max()!r} is too large for mult/2**shift "
                         f"(mult < 2**{MULT_BITS}, shift >= {lo})")
    return mult.astype(np.int32), shift.astype(np.int32)


def acc_bound(reduction: int, bias_abs_max: int = 0) -> int:
    """Largest |accumulator| a layer with `reduction` products per output and the given bias can
    reach; the packer refuses a layer when this exceeds INT32_MAX."""
    return reduction * MAX_PRODUCT + bias_abs_max


def grid_acc_bound(w) -> int:
    """Largest |sum of products| the int8 weights `w` (output channels first) can make with any
    int8 input: 128 times the largest sum of |weights| of one output channel. The grid's
    accumulators hold such sums (without the bias, which the output stage adds in int32); the
    packer refuses a layer when this exceeds what ``acc_width`` signed bits hold."""
    w = np.asarray(w)
    if w.size == 0:
        return 0
    return -INT8_MIN * int(np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1).max())
