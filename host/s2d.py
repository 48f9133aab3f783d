"""Space-to-depth of a network's first convolution: a strided conv over a few input channels (an
ImageNet stem: 7x7 stride 2 over RGB, 11x11 stride 4) rewritten, exactly, as a stride-1 conv
over blocks of s x s input pixels.

Why: the IFM loader places one pixel piece a cycle, so a stem whose pixels are a single group of
M channels loads at M bytes a cycle, slower than the grid computes it (ResNet-50's stem: 7,858
cycles a band against 5,404 of compute). After the rewrite a pixel is s * s groups (16 bytes or
more), so the load moves a beat a cycle.

The rewrite (block s, the conv's stride; padding p baked into the blocked input):

    X'[(dy * s + dx) * Cp + c, by, bx] = x[c, by * s + dy - p, bx * s + dx - p]   (0 outside)
    W'[k, (dy * s + dx) * Cp + c, i, j] = w[k, c, i * s + dy, j * s + dx]          (0 beyond R, S)

with Cp = C padded to a multiple of M, so every group of M consecutive channels of X' is one
sub-pixel's channels: the groups of W' are those of w at one tap, the same balanced 1/2
pattern, and conv(X', W', stride 1, pad 0) = conv(x, w, stride s, pad p) bit for bit. The cost:
the kernel grows from R x S taps to ceil(R / s) x ceil(S / s) blocks, so some groups are zero
(7x7 stride 2: 64 groups where there were 49). The packer applies it where the performance
model finds the layer faster (host.image `pack_image`); the driver and the golden model apply
`blocked_input` to the network input (`QNetwork.accel_input`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from host.golden import output_size

__all__ = ["SpaceToDepth", "blocked_input", "blocked_layer", "blocked_weights",
           "s2d_candidate", "BLOCKS"]

#: Blocks (the first conv's stride) the rewrite takes: the IFM store places strides 1..8, and a
#: stride of 1 gains nothing.
BLOCKS = (2, 4)
#: Channels of the input (padded to M) up to which the rewrite is considered: beyond a beat a
#: pixel the loader already moves whole beats.
MAX_CHANNELS = 8
#: The largest padding the image header holds for a blocked input (its host_ops bits 3-7).
MAX_PAD = 31


@dataclass(frozen=True)
class SpaceToDepth:
    """The blocked input of a network: block `block` (the first conv's stride), `pad` (its
    padding, baked into the blocks), the input's channels padded to `cp`, and the blocked
    map's (channels, rows, columns) `shape`."""
    block: int
    pad: int
    cp: int
    shape: tuple

    @classmethod
    def of(cls, in_shape, kernel: tuple, stride: int, pad: int, group: int) -> "SpaceToDepth":
        c, h, w = in_shape
        r, s_ = kernel
        oh, ow = output_size(h, r, stride, pad), output_size(w, s_, stride, pad)
        cp = -(-c // group) * group
        rb, sb = -(-r // stride), -(-s_ // stride)
        return cls(stride, pad, cp, (stride * stride * cp, oh + rb - 1, ow + sb - 1))


def blocked_input(x: np.ndarray, s2d: SpaceToDepth) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) int8 -> the blocked map (N, s * s * Cp, Hb, Wb) (or without N)."""
    x = np.asarray(x)
    single = x.ndim == 3
    x = x[None] if single else x
    n, c, h, w = x.shape
    s, p, cp = s2d.block, s2d.pad, s2d.cp
    _, hb, wb = s2d.shape
    padded = np.zeros((n, cp, hb * s, wb * s), x.dtype)
    rows, cols = min(h, hb * s - p), min(w, wb * s - p)
    padded[:, :c, p:p + rows, p:p + cols] = x[:, :, :rows, :cols]
    out = padded.reshape(n, cp, hb, s, wb, s).transpose(0, 3, 5, 1, 2, 4)
    out = out.reshape(n, s * s * cp, hb, wb)
    return out[0] if single else out


def blocked_weights(w: np.ndarray, s2d: SpaceToDepth) -> np.ndarray:
    """(K, C, R, S) weights (or a like-shaped kept mask) -> (K, s * s * Cp, ceil(R / s),
    ceil(S / s)), zero (False) beyond R and S and in the padding channels."""
    k, c, r, s_ = w.shape
    s, cp = s2d.block, s2d.cp
    rb, sb = -(-r // s), -(-s_ // s)
    full = np.zeros((k, cp, rb * s, sb * s), w.dtype)
    full[:, :c, :r, :s_] = w
    out = full.reshape(k, cp, rb, s, sb, s).transpose(0, 3, 5, 1, 2, 4)
    return np.ascontiguousarray(out.reshape(k, s * s * cp, rb, sb))


def blocked_layer(layer, s2d: SpaceToDepth):
    """The conv QLayer `layer` rewritten over the blocked input: stride 1, no padding."""
    mask = None if layer.mask is None else blocked_weights(layer.mask.astype(bool), s2d)
    return replace(layer, w=blocked_weights(layer.w, s2d), mask=mask, stride=1, pad=0)


def s2d_candidate(qnet, group: int) -> SpaceToDepth | None:
    """The rewrite for `qnet`'s first layer (channels padded to `group`, the configuration's M),
    or None where it does not apply: a plain conv (no join; pooling after it is fine) that
    alone reads the network input, with a stride in BLOCKS and at most MAX_CHANNELS input
    channels after padding to M."""
    if not qnet.layers:
        return None
    first = qnet.layers[0]
    readers = [i for i in range(len(qnet.layers)) if -1 in qnet.sources(i)]
    if (readers != [0] or first.kind != "conv" or first.join or first.image_rows
            or first.sep or first.stride not in BLOCKS or first.pad > MAX_PAD):
        return None
    c = qnet.input_shape[0]
    if -(-c // group) * group > MAX_CHANNELS:
        return None
    return SpaceToDepth.of(tuple(qnet.input_shape), first.w.shape[2:], first.stride, first.pad,
                           group)
