"""Batches through the fully-connected layers (SPEC section 8's lever): N images share one pass
of the FC weights.

At batch 1 an FC layer reads every weight for one output pixel: AlexNet's and VGG's FC layers
are bound by their weights' DRAM traffic (README, "Whole networks as built"). A batch of N runs
in two memory images on the same hardware, with no new gateware:

* the **prefix** (every layer before the first FC layer) runs once per image. Its output is
  placed first in its activation region, in a slot of ``slot`` rows (H, or more to keep the
  activation base 64-byte aligned), and the driver moves the activation base by one slot per image, so image n's
  output lands at ``n * slot`` rows and the N outputs form one tensor of ``slot * N`` rows (the
  rows between images are never read);
* the **suffix** (the FC layers) runs once over that tensor. In DRAM a map row of W pixels of C
  channels is W * C contiguous bytes, so the stacked tensor is also a map of ``slot * N`` rows of
  one pixel of W * C channels; the first FC layer runs on it as a convolution with an H x 1
  kernel at stride 1 (its weights reordered to (K, W * C, H, 1): the same balanced groups, as C
  is a multiple of M), the next ones as 1x1 convolutions over its output pixels. Image n's
  results are output pixel ``n * slot``; the pixels between are windows across two images,
  computed and ignored (slot - 1 per image). Up to ``cols`` pixels are one pixel tile, and
  every k tile's weights are read once for all the batch. (A whole-map kernel over the (C, H, W)
  map instead would put one output row in each pixel tile: the IFM store's valid-convolution
  placement; a stride of H would cost the store H * H phase regions.)

`split_batch` builds both networks from a quantized one; the integer arithmetic is unchanged
(the same weights, biases, multipliers and shifts), so `stack_outputs` plus the suffix's golden
run gives every image's logits exactly as the whole network does on that image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from host.image import pack_image
from host.quant import QNetwork
from hw.config import SenseConfig
from hw.config import BLOCK_ALIGN

__all__ = ["BatchError", "BatchSplit", "split_batch", "pack_batch", "stack_outputs",
           "unstack_logits"]


class BatchError(ValueError):
    """A network or batch size the batched run cannot take, with the reason."""


@dataclass
class BatchSplit:
    """The two networks of a batched run (module docstring)."""

    prefix: QNetwork          # every layer before the first FC layer, on one image
    suffix: QNetwork          # the FC layers as convolutions over the stacked prefix outputs
    batch: int
    slot: int                 # rows per image in the stacked tensor
    fc_input: tuple           # (C, H, W) of one image's prefix output
    group: int                # M (the activation layout's channel padding)

    @property
    def slot_bytes(self) -> int:
        """Bytes per image in the stacked tensor: the activation base's step between runs."""
        c, _, w = self.fc_input
        return self.slot * w * -(-c // self.group) * self.group


def _fc_start(qnet: QNetwork) -> int:
    """Index of the first FC layer; every later layer must be an FC layer reading the one
    before it (a classifier head), and the first must read the layer before it."""
    kinds = [layer.kind for layer in qnet.layers]
    if "fc" not in kinds:
        raise BatchError("the network has no fully-connected layer: a batch would not share "
                         "any weights (run its images one by one)")
    first = kinds.index("fc")
    for i in range(first, len(kinds)):
        if kinds[i] != "fc" or qnet.sources(i) != [i - 1]:
            raise BatchError(f"layer {i} ({qnet.layers[i].name}): after the first "
                             f"fully-connected layer only a chain of fully-connected layers "
                             f"can be batched, not a {kinds[i]}")
    if first == 0:
        raise BatchError("the first layer is fully connected: nothing runs per image")
    return first


def split_batch(qnet: QNetwork, batch: int, group: int) -> BatchSplit:
    """The prefix and suffix networks of `qnet` for `batch` images (module docstring); `group`
    is the hardware's M, which pads the activations' channels."""
    if batch < 1:
        raise BatchError(f"the batch must be at least 1 image, not {batch}")
    first = _fc_start(qnet)
    fc = qnet.layers[first]
    k, c, h, w = fc.w.shape
    m = group
    if c % m:
        raise BatchError(f"layer {first} ({fc.name}): its input has {c} channels, not a "
                         f"multiple of M={m}: its map rows are not whole channel groups")
    slot = h
    while (slot * w * c) % BLOCK_ALIGN:
        slot += 1
    prefix = replace(qnet, layers=qnet.layers[:first], name=f"{qnet.name}-prefix")

    def rows_as_pixels(a):
        # (K, C, H, W) -> (K, W * C, H, 1): channel x * C + c of row y is weight (c, y, x)
        return None if a is None else a.transpose(0, 3, 1, 2).reshape(k, w * c, h, 1)

    head = [replace(fc, kind="conv", w=rows_as_pixels(fc.w), mask=rows_as_pixels(fc.mask),
                    stride=1, pad=0, inputs=None)]
    for layer in qnet.layers[first + 1:]:
        head.append(replace(layer, kind="conv", stride=1, pad=0, inputs=None))
    suffix = QNetwork(input_shape=(w * c, slot * batch, 1), layers=head,
                      input_scale=fc.in_scale, host_ops=list(qnet.host_ops),
                      group=qnet.group, name=f"{qnet.name}-head-x{batch}")
    return BatchSplit(prefix, suffix, batch, slot, (c, h, w), m)


def stack_outputs(split: BatchSplit, outputs) -> np.ndarray:
    """The suffix's input (W * C, slot * N, 1) int8 from the N prefix outputs (C, H, W): image
    n's row y is row n * slot + y, its pixel x channels x * C .. x * C + C - 1; rows past H of
    a slot are zero here (the hardware leaves whatever was there: only ignored windows read
    them)."""
    c, h, w = split.fc_input
    out = np.zeros((w * c, split.slot * split.batch, 1), np.int8)
    for n, x in enumerate(outputs):
        rows = np.asarray(x, np.int8).reshape(c, h, w).transpose(2, 0, 1).reshape(w * c, h, 1)
        out[:, n * split.slot:n * split.slot + h] = rows
    return out


def unstack_logits(split: BatchSplit, y: np.ndarray) -> np.ndarray:
    """The suffix's output, (K, P, 1) or flat in that order, as N rows of K logits (image n's
    are output pixel n * slot)."""
    k = split.suffix.layers[-1].out_channels
    y = np.asarray(y).reshape(k, -1)
    return y[:, ::split.slot][:, :split.batch].T


def pack_batch(qnet: QNetwork, config: SenseConfig, batch: int, order: str = "auto",
               fuse_add: bool = True) -> tuple[BatchSplit, bytes, bytes]:
    """The split and the two memory images of a batched run (`host.driver.Accelerator.
    load_batch`): the prefix with its output first in its activation region, the suffix with
    its input first (`order`, `fuse_add`: `pack_image`'s)."""
    split = split_batch(qnet, batch, config.group)
    return (split, pack_image(split.prefix, config, order, first="output", fuse_add=fuse_add),
            pack_image(split.suffix, config, order, first="input", fuse_add=fuse_add))
