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

A **stacked tail** (`split_batch(..., start=i)`) starts the suffix earlier, at layer i, so that
the weights of every layer from there on (ResNet-50's last stages, whose 7x7 and 14x14 maps read
far more weight bytes than activation bytes) are read once per batch too. The suffix's input
stacks the N prefix outputs as one (C, slot * N, W) map: image n's rows are rows n * slot ..
n * slot + H - 1.

**Without separator rows** (the default wherever it holds): the slot is the image's H rows, and
every padded conv of the tail carries its images' input and output rows (`QLayer.image_rows`,
the descriptor's ``links.image_rows`` / ``image_out_rows`` / ``image_step``): the gateware's
pixel walker counts each output row's row within its image and the IFM decoder checks a window
tap against that image's rows, so each image is padded on its own and no row of the stack is
issued, loaded or written for nothing. It holds when every conv of the tail turns whole images
into whole images (its stride divides the image's rows and the stacked output has N times the
image's output rows: ResNet-50's 56/28/14/7-row stages do). Otherwise (or with
``separators=True``) the slot's other slot - H rows are **separator rows**, zeros, that stand
in for each image's padding. With separators every layer of the tail runs on the stacked map
as it is (a k x k conv with stride s on a map of slot rows per image gives slot / s rows per
image), and every conv writes the separator rows of its output as zeros (`QLayer.sep`, the
descriptor's `sep_slot` and `sep_valid`, hw.soc.output_writer), so that an image's windows only ever read its own rows or
zeros: each image's rows are exactly the whole network's. The slot is the smallest one (from H
up) for which that holds at every layer (`stacked_slot`). The tail may hold convolutions
(without a fused max-pool), residual adds and concats, then a global average pool, which becomes
an average pool with a slot x W window and a stride of slot rows (one pixel per image; its
divisor that of the image's H x W, `QLayer.pool_count`: the separator rows add zeros), and FC
layers, which become 1x1 convolutions over those N pixels. The separator rows of the suffix's
input are zeroed by the driver once the prefix runs are done (`Accelerator.load_batch`'s
`valid_bytes`).

`split_batch` builds both networks from a quantized one; the integer arithmetic is unchanged
(the same weights, biases, multipliers and shifts), so `stack_outputs` plus the suffix's golden
run gives every image's logits exactly as the whole network does on that image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from host.golden import Window, output_size
from host.image import pack_image
from host.quant import QLayer, QNetwork, as_network
from hw.config import SenseConfig
from hw.config import BLOCK_ALIGN
from hw.soc.pool import DIVISORS

__all__ = ["BatchError", "SlotError", "BatchSplit", "split_batch", "pack_batch", "stack_outputs",
           "unstack_logits", "stack_starts", "stacked_slot", "choose_start", "split_wide_convs"]

#: The largest slot `stacked_slot` tries, in multiples of the image's rows.
MAX_SLOT_FACTOR = 4


class BatchError(ValueError):
    """A network or batch size the batched run cannot take, with the reason."""


class SlotError(BatchError):
    """No slot keeps a stacked tail's images apart (`stacked_slot`): `choose_start` tries the
    next tail."""


@dataclass
class BatchSplit:
    """The two networks of a batched run (module docstring)."""

    prefix: QNetwork          # every layer before the first FC layer, on one image
    suffix: QNetwork          # the FC layers as convolutions over the stacked prefix outputs
    batch: int
    slot: int                 # rows per image in the stacked tensor
    fc_input: tuple           # (C, H, W) of one image's prefix output
    group: int                # M (the activation layout's channel padding)
    stacked: bool = False     # a stacked tail: the suffix's input is (C, slot * N, W)

    @property
    def slot_bytes(self) -> int:
        """Bytes per image in the stacked tensor: the activation base's step between runs."""
        c, _, w = self.fc_input
        return self.slot * w * -(-c // self.group) * self.group

    @property
    def valid_bytes(self) -> int | None:
        """A stacked tail: the bytes of each slot that hold the image (the rest are separator
        rows, zeroed before the suffix runs); None otherwise."""
        c, h, w = self.fc_input
        return h * w * -(-c // self.group) * self.group if self.stacked else None


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


def _tail_problem(qnet: QNetwork, start: int) -> str | None:
    """Why the layers from `start` on cannot run as a stacked tail (module docstring), or None:
    they read only each other's outputs and the prefix's (layer start - 1's), and are
    convolutions without a max-pool, adds and concats, then at most a global average pool
    and FC layers."""
    n = len(qnet.layers)
    if not 0 < start < n:
        return f"the tail must start after the first layer and before the end, not at {start}"
    if qnet.layers[start - 1].kind == "concat":
        return (f"the prefix would end in a concat (layer {start - 1}), whose output cannot be "
                f"placed first: its inputs write it")
    head = False
    for i in range(start, n):
        layer = qnet.layers[i]
        if any(j < start - 1 for j in qnet.sources(i)):
            return f"layer {i} ({layer.name}) reads a tensor from before layer {start - 1}"
        if head and layer.kind != "fc":
            return (f"layer {i} ({layer.name}): after the global average pool only FC layers, "
                    f"not a {layer.kind}")
        if layer.kind == "gap":
            head = True
        elif layer.kind == "fc" and not head:
            return f"layer {i} ({layer.name}): an FC layer before the global average pool"
        elif layer.kind not in ("conv", "add", "concat", "gap", "fc") or layer.pool:
            fused = " with a max-pool" if layer.kind == "conv" else ""
            return f"layer {i} ({layer.name}): a {layer.kind}{fused} cannot run on stacked maps"
    if not head:
        return "the tail does not end in a global average pool (and FC layers)"
    return None


def _tail_slots(qnet: QNetwork, start: int, slot: int, batch: int, cols: int,
                masked: bool = False):
    """{tensor: (slot rows, image rows)} of the tail for an input slot of `slot` rows (tensor
    -1: the tail's input, i its layer i's output), or None where a window of one image would
    reach another's rows or the gateware's separator rule (a slot of at least `cols` pixels)
    fails. `masked` (a slot of the image's rows, each image padded on its own by the
    gateware): None unless every conv's images give whole images of output rows."""
    shapes = as_network(qnet).out_shapes()
    rows = {start - 1: batch * slot}        # each tensor's rows in the stacked map
    slots = {start - 1: (slot, shapes[start - 1][1])}
    for i in range(start, len(qnet.layers)):
        layer, srcs = qnet.layers[i], qnet.sources(i)
        s_in, h_in = slots[srcs[0]]
        if layer.join:
            # a joined conv: its second input's slots `join` times its first's, whose rows
            # its gather reads (every join-th row of the stack)
            (s_b, h_b), st = slots[srcs[1]], layer.join
            if s_b != s_in * st or h_in != -(-h_b // st) or \
                    rows[srcs[0]] != -(-rows[srcs[1]] // st):
                return None
        elif any(slots[j] != (s_in, h_in) for j in srcs):
            return None
        rows[i] = rows[srcs[0]]
        if layer.kind == "gap":
            # one window of a whole slot per image (the pool unit's divisors: one per tap)
            w_in = shapes[srcs[0]][2]
            if rows[i] != batch * s_in or s_in * w_in > DIVISORS:
                return None
        if layer.kind in ("gap", "fc"):
            slots[i], rows[i] = (1, 1), batch
            continue
        if layer.kind != "conv":
            slots[i] = (s_in, h_in)
            continue
        r, st, p = layer.w.shape[2], layer.stride, layer.pad
        h_out, w_out = shapes[i][1], shapes[i][2]
        if masked:
            if s_in != h_in or s_in % st or h_out * st != s_in or \
                    (rows[i] + 2 * p - r) // st + 1 != batch * h_out:
                return None
            rows[i], slots[i] = batch * h_out, (h_out, h_out)
            continue
        if s_in % st or s_in - h_in < p or (h_out - 1) * st - p + r > s_in:
            return None
        s_out = s_in // st
        rows[i] = (rows[i] + 2 * p - r) // st + 1
        if rows[i] < (batch - 1) * s_out + h_out or (s_out > h_out and s_out * w_out < cols):
            return None
        slots[i] = (s_out, h_out)
    return slots


def stacked_slot(qnet: QNetwork, start: int, batch: int, group: int, cols: int,
                 separators: bool = False) -> tuple[int, bool]:
    """(slot, masked): the image's own rows without separator rows (`masked`: every conv of
    the tail gives whole images of output rows, and the gateware pads each image on its own,
    the descriptor's image rows) unless `separators`; else the smallest slot (rows per image of
    the tail's input, from its H up to MAX_SLOT_FACTOR times that) for which every layer of the
    tail from `start` keeps its images apart with separator rows. Either way the slot's bytes
    are BLOCK_ALIGN-aligned; BatchError if none or the tail cannot be stacked."""
    problem = _tail_problem(qnet, start)
    if problem:
        raise BatchError(problem)
    c, h, w = as_network(qnet).out_shapes()[start - 1]
    row = w * -(-c // group) * group
    if not separators and (h * row) % BLOCK_ALIGN == 0 and \
            _tail_slots(qnet, start, h, batch, cols, masked=True):
        return h, True
    for slot in range(h, MAX_SLOT_FACTOR * h + 1):
        if (slot * row) % BLOCK_ALIGN == 0 and _tail_slots(qnet, start, slot, batch, cols):
            return slot, False
    raise SlotError(f"no slot of {h} to {MAX_SLOT_FACTOR * h} rows keeps the images apart in "
                     f"every layer from {start} ({qnet.layers[start].name}) on")


def stack_starts(qnet: QNetwork) -> list[int]:
    """The layers a stacked tail may start at (`_tail_problem`), first to last."""
    return [i for i in range(1, len(qnet.layers)) if _tail_problem(qnet, i) is None]


def _stacked_split(qnet: QNetwork, batch: int, group: int, start: int, cols: int,
                   separators: bool = False) -> BatchSplit:
    slot, masked = stacked_slot(qnet, start, batch, group, cols, separators)
    slots = _tail_slots(qnet, start, slot, batch, cols, masked)
    c, h, w = as_network(qnet).out_shapes()[start - 1]
    layers = []
    for i in range(start, len(qnet.layers)):
        layer = qnet.layers[i]
        inputs = [j - start for j in qnet.sources(i)]      # (the prefix's output: -1)
        if layer.kind == "gap":
            # a window of the slot (the image's rows, then zeros) dividing by the image's H x W
            s_in, h_in = slots[qnet.sources(i)[0]]
            w_in = as_network(qnet).out_shapes()[qnet.sources(i)[0]][2]
            layer = QLayer("avgpool", layer.name, None, None, None, None,
                           pool=Window.of((s_in, w_in), (s_in, 1)), in_scale=layer.in_scale,
                           out_scale=layer.out_scale, pool_scale=layer.pool_scale,
                           pool_count=h_in * w_in)
        elif layer.kind == "fc":
            layer = replace(layer, kind="conv", stride=1, pad=0)
        elif layer.kind == "conv" and masked:
            # (each image padded on its own: only a padded conv needs to know the images)
            h_in = slots[qnet.sources(i)[0]][1]
            layer = replace(layer, image_rows=(h_in, slots[i][1]) if layer.pad else None)
        elif layer.kind == "conv":
            s_out, h_out = slots[i]
            layer = replace(layer, sep=(s_out, h_out) if s_out > h_out else None)
        layers.append(replace(layer, inputs=inputs))
    suffix = QNetwork(input_shape=(c, slot * batch, w), layers=layers,
                      input_scale=qnet.layers[start].in_scale, host_ops=list(qnet.host_ops),
                      group=qnet.group, name=f"{qnet.name}-tail-x{batch}")
    prefix = replace(qnet, layers=qnet.layers[:start], name=f"{qnet.name}-prefix")
    return BatchSplit(prefix, suffix, batch, slot, (c, h, w), group, stacked=True)


def split_batch(qnet: QNetwork, batch: int, group: int, start: int | None = None,
                cols: int = 1, separators: bool = False) -> BatchSplit:
    """The prefix and suffix networks of `qnet` for `batch` images (module docstring); `group`
    is the hardware's M, which pads the activations' channels. `start`: the first layer of a
    stacked tail (`cols`: the grid's, for the separator rule; `separators`: with separator
    rows even where each image could be padded on its own), or None: the suffix is the FC
    layers."""
    if batch < 1:
        raise BatchError(f"the batch must be at least 1 image, not {batch}")
    if start is not None:
        return _stacked_split(qnet, batch, group, start, cols, separators)
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


def _stack_maps(split: BatchSplit, outputs) -> np.ndarray:
    c, h, w = split.fc_input
    out = np.zeros((c, split.slot * split.batch, w), np.int8)
    for n, x in enumerate(outputs):
        out[:, n * split.slot:n * split.slot + h] = np.asarray(x, np.int8).reshape(c, h, w)
    return out


def stack_outputs(split: BatchSplit, outputs) -> np.ndarray:
    """The suffix's input (W * C, slot * N, 1) int8 from the N prefix outputs (C, H, W): image
    n's row y is row n * slot + y, its pixel x channels x * C .. x * C + C - 1; rows past H of
    a slot are zero here (the hardware leaves whatever was there: only ignored windows read
    them). A stacked tail's input is (C, slot * N, W), its separator rows zeros."""
    if split.stacked:
        return _stack_maps(split, outputs)
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
    return y[:, ::1 if split.stacked else split.slot][:, :split.batch].T


def _start_candidates(qnet: QNetwork) -> list:
    """The tails `choose_start` compares: the FC layers (None) where they can be batched, for
    every map height a stacked tail may start at, its last start (a stage's first layer: the
    most layers on the fewest rows), and the first start of all (the longest tail: ResNet-50's
    from layer1.0, whose per-image padding costs no extra rows)."""
    try:
        _fc_start(qnet)
        candidates = [None]
    except BatchError:
        candidates = []
    shapes = as_network(qnet).out_shapes()
    starts = stack_starts(qnet)
    last = {}
    for i in starts:
        last[shapes[i - 1][1]] = i
    return candidates + sorted(set(last.values()) | set(starts[:1]))


def choose_start(qnet: QNetwork, config: SenseConfig, batch: int, order: str = "auto",
                 fuse_add: bool = True, s2d: bool | str = "auto"):
    """The batched run (`pack_batch`'s three values) of the tail (`_start_candidates`) with the
    fewest cycles for `batch` images in the performance model, on an input without zeros (as
    the packer's own choices), and those cycles."""
    from host.estimate import accelerator_estimate
    from host.quant import run_int

    x = np.ones((1, *qnet.input_shape), np.int8)
    best = None
    for start in _start_candidates(qnet):
        try:
            split, prefix, suffix = pack_batch(qnet, config, batch, order, fuse_add, start,
                                               s2d=s2d)
        except SlotError:
            continue
        out = run_int(split.prefix, x, return_all=True)[-1][0]
        cycles = (batch * accelerator_estimate(prefix, x[0], config)["cycles"]
                  + accelerator_estimate(suffix, stack_outputs(split, [out] * batch),
                                         config)["cycles"])
        if best is None or cycles < best[1]:
            best = ((split, prefix, suffix), cycles)
    if best is None:
        raise BatchError("neither the FC layers nor a stacked tail can be batched")
    return best


def split_wide_convs(qnet: QNetwork, config: SenseConfig) -> QNetwork:
    """`qnet` with every conv that would read all its weights once per band cut by output
    channels into convs whose weights fit the weight buffer, writing channel ranges of one
    concat (the same values: a concat of the parts is the conv's output). Such a conv's
    weights exceed the buffer (`config.weight_depth` words), so the weight ring streams every
    weight in every band, and its input exceeds the IFM store, so it runs in bands: ResNet-50's
    layer4 3x3 convs in a stacked tail (1.2 MB of weights, the 32 images' maps in bands). The
    parts read the input once each instead. Only convs read by convs alone (not by an add
    that would fuse with them, nor by a concat), without a fused max-pool, separator rows, a
    join or a gather."""
    from host.buffers import k_tile_words
    from hw.core.ifm_store import ifm_geometry
    from hw.layouts import LayerDescriptor

    m, rows = config.group, config.rows
    shapes, users = as_network(qnet).in_shapes(), qnet.consumers()
    layers, index = [], {}
    for i, layer in enumerate(qnet.layers):
        srcs = [index.get(j, j) for j in qnet.sources(i)]
        parts = 1
        if layer.kind == "conv" and not (layer.pool or layer.sep or layer.join or layer.gather) \
                and all(qnet.layers[u].kind == "conv" for u in users[i]):
            k, c, r, s_ = layer.w.shape
            _, h, w = shapes[i][0]
            ktw = k_tile_words(LayerDescriptor(kernel_h=r, kernel_w=s_,
                                               in_groups=-(-c // m)), config)
            k_tiles, fit = -(-k // rows), config.weight_depth // ktw
            out_w = output_size(w, s_, layer.stride, layer.pad)
            banded = not ifm_geometry(h, w, -(-c // m), layer.stride, layer.pad, out_w,
                                      config).fits(config)
            if banded and 0 < fit < k_tiles:
                parts = -(-k_tiles // fit)
        if parts == 1:
            layers.append(replace(layer, inputs=srcs))
            index[i] = len(layers) - 1
            continue
        per = -(-layer.w.shape[0] // rows // parts) * rows
        first = len(layers)
        for n, k0 in enumerate(range(0, layer.w.shape[0], per)):
            cut = slice(k0, k0 + per)
            layers.append(replace(
                layer, name=f"{layer.name}.k{n}", inputs=srcs, w=layer.w[cut],
                bias=layer.bias[cut], mult=layer.mult[cut], shift=layer.shift[cut],
                mask=None if layer.mask is None else layer.mask[cut],
                w_scale=None if layer.w_scale is None else np.asarray(layer.w_scale)[cut]))
        layers.append(QLayer("concat", layer.name, None, None, None, None,
                             inputs=list(range(first, len(layers))), in_scale=layer.out_scale,
                             out_scale=layer.out_scale))
        index[i] = len(layers) - 1
    return qnet if len(layers) == len(qnet.layers) else replace(qnet, layers=layers)


def pack_batch(qnet: QNetwork, config: SenseConfig, batch: int, order: str = "auto",
               fuse_add: bool = True, start: int | str | None = None,
               separators: bool = False, s2d: bool | str = "auto"
               ) -> tuple[BatchSplit, bytes, bytes]:
    """The split and the two memory images of a batched run (`host.driver.Accelerator.
    load_batch`): the prefix with its output first in its activation region, the suffix with
    its input first (`order`, `fuse_add`, `s2d`: `pack_image`'s; `start`, `separators`:
    `split_batch`'s, or start "auto": `choose_start`'s)."""
    if start == "auto":
        return choose_start(qnet, config, batch, order, fuse_add, s2d)[0]
    split = split_batch(qnet, batch, config.group, start, config.cols, separators)
    if split.stacked:
        split = replace(split, suffix=split_wide_convs(split.suffix, config))
    return (split, pack_image(split.prefix, config, order, first="output", fuse_add=fuse_add,
                              s2d=s2d),
            pack_image(split.suffix, config, order, first="input", fuse_add=fuse_add))
