"""The memory image (SPEC section 5): one self-describing, versioned, little-endian file that the
driver copies to DRAM and the accelerator reads. The byte layout is docs/memory-image.md; every
record is one of the Amaranth layouts in hw/layouts.py, so gateware and host share one definition.

    [header 64 B][layer table: 64 B per layer][blocks, each 64-byte aligned:
                                               layer 0 weights, layer 0 parameters, layer 1 ...]

Activations live in a separate region (the activation base): layer l reads its input at
``in_offset`` and writes its output at ``out_offset``; the packer alternates two buffers.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

import numpy as np

from host import golden
from host.buffers import (ConvLayer, band_geometry, channel_block_order, descriptor_window,
                          fits_half_store, kept_key, pool_band_rows, pool_fit_problem, buffer_problem,
                          layer_limit_problem, store_key, weight_records, weight_slots_of)
from host.perf import add_estimate, layer_estimate, pool_bands_choice, schedule_choice
from host.plan import Target, allocate, layer_tiling, plan_network
from host.nn import run_shape
from host.quant import QLayer, QNetwork, as_network
from host.s2d import MAX_PAD, SpaceToDepth, blocked_layer, s2d_candidate
from host.sparse import ungroup
from hw.config import FORMAT_VERSION, SenseConfig
from hw.core.ifm_store import STRIDES, ifm_geometry
from hw.core.pixel_walker import tile_count
from hw.soc.dma import GATHER_MIN_BEATS, GATHER_STEPS, JOIN_STEPS
from hw.soc.pool import DIVISORS, SUM_BITS
from hw.layouts import (
    BEAT_BYTES,
    BLOCK_ALIGN,
    DESCRIPTOR_BYTES,
    LayerDescriptor,
    psum_row_bytes,
    LayerFlags,
    LayerHints,
    KINDS_RUN,
    LayerKind,
    POOL_KINDS,
    image_header_layout,
    pack_array,
    param_entry_layout,
    record_bytes,
    unpack_array,
    weight_word_layout,
)
from hw.layouts import pack as pack_record
from hw.layouts import unpack as unpack_record
from hw.regmap import MAGIC

__all__ = ["ImageError", "unsupported_problem", "fit_problem", "runs_here", "graph_shapes", "pack", "unpack", "pack_image", "unpack_image", "read_header",
           "describe", "plan_layer", "layer_table", "shapes_of", "conv_output_size", "MAGIC",
           "HEADER_BYTES", "DESCRIPTOR_BYTES"]

HEADER = image_header_layout()
HEADER_BYTES = record_bytes(HEADER)
HEADER_CRC_SPAN = 56  # header_crc32 covers bytes [0, 56); it sits at [56, 60), crc32 at [60, 64)
FLAG_SPARSE = 1
#: header flags bits 2-7: the `acc_width` the image was packed for (its layers' sums fit that
#: many bits, host.golden.grid_acc_bound); hardware with narrower accumulators refuses it.
FLAG_ACC_SHIFT = 2
HOST_SOFTMAX = 1
#: host_ops bits 1-2: log2 of the space-to-depth block of the first conv's input (0: none,
#: host.s2d); bits 3-7: the padding baked into the blocks.
HOST_S2D_SHIFT, HOST_S2D_PAD_SHIFT = 1, 3


class ImageError(ValueError):
    """An image that cannot be packed or loaded; the message names the problem."""


def _f32_bits(x) -> int:
    return struct.unpack("<I", struct.pack("<f", float(x)))[0]


def _bits_f32(b) -> float:
    return struct.unpack("<f", struct.pack("<I", int(b)))[0]


def _align(n: int) -> int:
    return -(-n // BLOCK_ALIGN) * BLOCK_ALIGN


def act_bytes(shape, group: int) -> int:
    """Bytes of one activation tensor (C, H, W) in DRAM: (y, x, channel group) words of M bytes."""
    c, h, w = shape
    return h * w * (-(-c // group)) * group


def weight_word_bytes(config: SenseConfig) -> int:
    return record_bytes(weight_word_layout(config), BEAT_BYTES)


# -- the compiler pass: tiling and loop order ---------------------------------------------------------

@dataclass
class LayerPlan:
    """Tiling and DRAM loop order of one layer, and the traffic estimates behind the choice.

    weight-stationary: k tiles outer, so each weight block is read once; the input is read once
    if it fits the IFM buffer, else once per k tile. IFM-stationary: input blocks outer, so the
    input is read once; the weights once if they fit the weight buffer, else once per input block.
    The order with less traffic wins. On a tie (always, while the input fits an IFM bank), the
    order with fewer cycles in the accelerator's performance model (`host.perf.layer_estimate`,
    on an input without zeros) wins: weight-stationary starts computing after one k tile's
    weights, IFM-stationary writes each pixel tile as one burst. IFM-stationary is eligible only
    when the weights fit the weight buffer; a remaining tie goes to weight-stationary."""

    k_tiles: int
    p_tiles: int
    ifm_bytes: int
    weight_bytes: int
    ofm_bytes: int
    traffic_weight_stationary: int
    traffic_ifm_stationary: int
    cycles_weight_stationary: int | None = None     # the model's cycles, on a traffic tie
    cycles_ifm_stationary: int | None = None
    by_cycles: bool = False     # both orders allowed and moving the same bytes

    @property
    def order(self) -> str:
        if self.traffic_ifm_stationary != self.traffic_weight_stationary:
            return ("ifm" if self.traffic_ifm_stationary < self.traffic_weight_stationary
                    else "weight")
        if self.cycles_ifm_stationary is not None and \
                self.cycles_ifm_stationary < self.cycles_weight_stationary:
            return "ifm"
        return "weight"

    @property
    def traffic(self) -> int:
        return min(self.traffic_weight_stationary, self.traffic_ifm_stationary)


def plan_layer(in_shape, layer: QLayer, config: SenseConfig, out_shape,
               cycles: bool = True) -> LayerPlan:
    """The layer's traffic in both tile orders and, where they tie (`by_cycles`) and `cycles`,
    the model's cycles in both."""
    k, _, r, s = layer.w.shape
    _, h, w = in_shape
    oh = golden.output_size(h, r, layer.stride, layer.pad)
    ow = golden.output_size(w, s, layer.stride, layer.pad)
    k_tiles = -(-k // config.rows)
    p_tiles = tile_count(w, layer.stride, oh, ow, config.cols)
    ifm = act_bytes(in_shape, config.group)
    slots = config.cycles_per_group
    groups = r * s * (-(-in_shape[0] // config.group))
    weights = k_tiles * groups * slots * weight_word_bytes(config)
    ofm = act_bytes(out_shape, config.group)
    # The IFM store holds the input once (hw.core.ifm_store); its placement decides the fit.
    ifm_fits = layer.stride not in STRIDES or ifm_geometry(
        h, w, -(-in_shape[0] // config.group), layer.stride, layer.pad, ow, config).fits(config)
    weight_capacity = config.weight_depth * weight_word_bytes(config)
    ws = weights + ifm * (1 if ifm_fits else k_tiles) + ofm
    blocks = -(-ifm // (config.ifm_kib * 1024))
    is_ = ifm + weights * (1 if weights <= weight_capacity else blocks) + ofm
    plan = LayerPlan(k_tiles, p_tiles, ifm, weights, ofm, ws, is_,
                     by_cycles=ws == is_ and weights <= weight_capacity and k_tiles > 1
                     and ifm_fits)
    if plan.by_cycles and cycles:
        d = layer_geometry(in_shape, layer, config)
        plan.cycles_weight_stationary, plan.cycles_ifm_stationary = (
            _model_cycles(in_shape, layer, config, d.replace(flags=int(d.flags) | flag))
            for flag in (0, LayerFlags.IFM_STATIONARY.value))
    return plan


def config_name(config: SenseConfig) -> str:
    """How a message names the hardware: its grid, M and buffers."""
    return (f"{config.rows}x{config.cols} M={config.group} (IFM {config.ifm_kib} KiB, weights "
            f"{config.weight_kib} KiB)")


def layer_geometry(in_shape, layer: QLayer, config: SenseConfig) -> LayerDescriptor:
    """A layer's descriptor as far as its shape decides it: kind, ReLU and pool flags, sizes,
    kernel, stride, padding, pool window and tiling (weight-stationary order, no offsets yet)."""
    c, h, w = in_shape
    k, _, r, s = layer.w.shape
    oh, ow = conv_output_size(in_shape, layer)
    pool = layer.pool or (0, 0, 0)
    flags = (LayerFlags.RELU.value * bool(layer.relu)) | (LayerFlags.POOL.value * bool(layer.pool))
    return LayerDescriptor(
        kind=(LayerKind.FC if layer.kind == "fc" else LayerKind.CONV).value, flags=flags,
        in_channels=c, in_groups=-(-c // config.group), in_h=h, in_w=w, out_channels=k,
        out_h=oh, out_w=ow, kernel_h=r, kernel_w=s, stride=layer.stride, pad=layer.pad,
        pool_kernel=pool[0], pool_stride=pool[1], pool_pad=pool[2],
        k_tiles=-(-k // config.rows), p_tiles=tile_count(w, layer.stride, oh, ow, config.cols))


def _model_cycles(in_shape, layer: QLayer, config: SenseConfig, d: LayerDescriptor) -> int:
    """The performance model's cycles for a layer in one order, on an input without zeros,
    without its max-pool pass (the same in both orders), with its weights split where that is
    faster (`host.perf.schedule_choice`)."""
    return schedule_choice(d, _ones_layer(in_shape, layer), config, bands=False)[1]


def _ones_layer(in_shape, layer: QLayer) -> ConvLayer:
    """The layer on an input without zeros: what the packer's choices are modelled on."""
    return ConvLayer(x=np.ones(in_shape, np.int8), w=layer.w, bias=layer.bias, mult=layer.mult,
                     shift=layer.shift, stride=layer.stride, pad=layer.pad,
                     image_rows=layer.image_rows)


# -- pack -----------------------------------------------------------------------------------------------

def conv_output_size(in_shape, layer: QLayer) -> tuple:
    """(OH, OW) of a layer's convolution, before any max-pool."""
    _, h, w = in_shape
    _, _, r, s = layer.w.shape
    return (golden.output_size(h, r, layer.stride, layer.pad),
            golden.output_size(w, s, layer.stride, layer.pad))


def graph_shapes(qnet: QNetwork):
    """Per layer: the shapes of its inputs, of its convolution output (before a fused max-pool;
    None for other kinds) and of its output."""
    ins, convs, outs = [], [], []
    for i, layer in enumerate(qnet.layers):
        src = [qnet.accel_shape if j < 0 else outs[j] for j in qnet.sources(i)]
        c, h, w = src[0]
        conv = None
        if layer.kind in ("conv", "fc"):
            conv = (layer.w.shape[0],) + conv_output_size(src[0], layer)
            c, (h, w) = conv[0], conv[1:]
            if layer.pool:
                h, w = golden.Window.of(*layer.pool).out_size(h, w)
        elif layer.kind == "concat":
            c = sum(shape[0] for shape in src)
        elif layer.kind in ("maxpool", "avgpool"):
            h, w = layer.pool.out_size(h, w)
        elif layer.kind == "gap":
            h = w = 1
        ins.append(src)
        convs.append(conv)
        outs.append((c, h, w))
    return ins, convs, outs


def gather_step(in_shape, layer: QLayer, config: SenseConfig) -> int:
    """The stride of a conv whose input the gateware can gather (0: none): a 1x1 convolution
    without padding and with stride 2, 4 or 8 reads only every stride-th pixel of every
    stride-th input row, each pixel whole beats (at least `hw.soc.dma.GATHER_MIN_BEATS`), as a
    stride-1 convolution over that view (descriptor ``in_step`` / ``in_pitch``,
    docs/memory-image.md)."""
    c, _, w = in_shape
    if layer.kind != "conv" or layer.w.shape[2:] != (1, 1) or layer.pad \
            or layer.stride not in GATHER_STEPS:
        return 0
    pixel = -(-c // config.group) * config.group
    if pixel % BEAT_BYTES or pixel < GATHER_MIN_BEATS * BEAT_BYTES \
            or layer.stride * w * pixel // BEAT_BYTES >= 1 << 16:
        return 0
    return layer.stride


def gathered_view(qnet: QNetwork, ins: list, config: SenseConfig, gather: bool = True):
    """(qnet, ins) with every conv whose input can be gathered (`gather_step`) as its stride-1
    view: the layer with stride 1 and `QLayer.gather` (stride, full input width), its input
    shape the view's (the output's size). With `gather` False, no layer is gathered. A joined
    conv's (`host.join`) first input shape is its view's too: both inputs' channels, the first
    input's size (its second input's shape stays second)."""
    layers, views = list(qnet.layers), list(ins)
    for i, layer in enumerate(layers):
        if layer.join:
            views[i] = [run_shape(layer, ins[i]), ins[i][1]]
        step = gather_step(ins[i][0], layer, config) if gather else 0
        if step:
            c, _, w = ins[i][0]
            layers[i] = replace(layer, stride=1, gather=(step, w))
            views[i] = [(c,) + conv_output_size(ins[i][0], layer)] + list(ins[i][1:])
    return qnet.with_layers(layers), views


def blocked_view(qnet: QNetwork, ins: list, config: SenseConfig, s2d: bool | str = "auto"):
    """(qnet, ins) with the first conv over the blocked input (host.s2d: `QNetwork.s2d` set,
    the layer rewritten, its input shape the blocked map's) where the rewrite applies
    (`s2d_candidate`) and `s2d` is True, or "auto" and the model finds the layer (with its
    pool pass) faster so on an input without zeros; else unchanged."""
    if s2d not in (True, False, "auto"):
        raise ImageError(f"s2d must be True, False or 'auto', not {s2d!r}")
    cand = s2d_candidate(qnet, config.group) if s2d and qnet.s2d is None else None
    if cand is None:
        return qnet, ins
    blocked = replace(qnet, layers=[blocked_layer(qnet.layers[0], cand)] + qnet.layers[1:],
                      s2d=cand)
    if s2d == "auto" and _first_cycles(blocked, config) >= _first_cycles(qnet, config):
        return qnet, ins
    return blocked, [[cand.shape]] + list(ins[1:])


def _first_cycles(qnet: QNetwork, config: SenseConfig) -> int:
    """The model's cycles for `qnet`'s first layer alone, as packed, on an input without zeros."""
    one = replace(qnet, layers=[replace(qnet.layers[0], inputs=None)], host_ops=[])
    _, descs = layer_table(pack_image(one, config, s2d=False), config)
    return layer_estimate(descs[0], _ones_layer(one.accel_shape, one.layers[0]),
                          config)["cycles"]


def shapes_of(qnet: QNetwork) -> list[tuple]:
    """(C, H, W) of the network's input and of every layer's output (after max-pool)."""
    return [tuple(qnet.input_shape)] + graph_shapes(qnet)[2]


def _check_layer(i, layer: QLayer, in_shape, config: SenseConfig):
    if layer.kind not in ("conv", "fc"):
        return
    problem = layer_limit_problem(in_shape, layer.w, layer.stride, layer.pad, layer.bias,
                                  config, layer.pool)
    if problem:
        raise ImageError(f"layer {i} ({layer.name}): {problem}")


def _concat_targets(qnet: QNetwork, outs, m: int) -> dict:
    """layer -> (concat layer, first channel) for every layer whose output is a concat input: it
    writes that channel range of the concat's tensor. Refuses what the layout cannot express."""
    users = qnet.consumers()
    into = {}
    for i, layer in enumerate(qnet.layers):
        if layer.kind != "concat":
            continue
        first = 0
        for j in qnet.sources(i):
            where = f"layer {i} ({layer.name})"
            if j < 0 or j in into or users[j] != [i] or qnet.layers[j].kind == "concat":
                raise ImageError(f"{where}: a concat input must be a layer's output that only "
                                 f"the concat reads (input {j})")
            if outs[j][0] % m or first % m:
                raise ImageError(f"{where}: concat input {qnet.layers[j].name} has "
                                 f"{outs[j][0]} channels; the hardware writes channel ranges in "
                                 f"words of M={m}")
            into[j] = (i, first)
            first += outs[j][0]
    return into


def fusable_adds(qnet: QNetwork, into: dict | None = None) -> dict:
    """{add: conv} for every residual add the output path can do in the conv just before it
    (the graph's side of the rule; `pack_image` also needs the fused conv to be one the
    gateware takes, and drops a pair that is not): the conv (not FC) has no max-pool
    (its own ReLU, if any, comes before the add: flag RELU; the add's is ADD_RELU), only the
    add reads it, it does not write a concat's range, and the
    add's other input was produced earlier. `into`: `_concat_targets`' map."""
    users = qnet.consumers()
    pairs = {}
    for i, layer in enumerate(qnet.layers):
        src = qnet.sources(i)
        c = i - 1
        if layer.kind != "add" or c < 0 or c not in src or len(set(src)) != 2:
            continue
        conv = qnet.layers[c]
        if (conv.kind == "conv" and not conv.pool and not conv.join and users[c] == [i]
                and c not in (into or {}) and i not in (into or {})):
            pairs[i] = c
    return pairs




def _fuse_pays(in_shape, conv_layer: QLayer, config: SenseConfig, plain, fused) -> bool:
    """Whether the performance model (on an input without zeros) gives the fused pair fewer
    cycles than the conv and the ADD apart: a fused conv writing one-beat segments (the
    weight-stationary order on few channels) can take longer than the ADD's pass."""
    def cycles(conv, add):
        return _model_cycles(in_shape, conv_layer, config, conv) + add_estimate(add, config)[
            "cycles"]

    return cycles(*fused) < cycles(*plain)


def _fuse(conv: LayerDescriptor, add: LayerDescriptor, add_layer: QLayer, a_first: bool):
    """The fused conv's descriptor (it writes the add's output; `a_first`: the conv is the
    add's first input) and the add's (FUSE_ADD: moves no data)."""
    mult = [int(x) for x in add_layer.mult]
    if not a_first:
        mult.reverse()
    flags = int(conv.flags) | LayerFlags.FUSE_ADD.value | (
        LayerFlags.ADD_RELU.value * bool(add_layer.relu))
    res = add.g("exec.in2_offset") if a_first else add.in_offset
    res_layer = add.g("links.in2_layer") if a_first else add.g("links.in_layer")
    graph = {**conv.graph, "exec.in2_offset": res, "links.in2_layer": res_layer,
             "exec.add_mult_a": mult[0], "exec.add_mult_b": mult[1],
             "exec.add_shift": int(add_layer.shift[0])}
    return (conv.replace(flags=flags, out_offset=add.out_offset,
                         graph={k: v for k, v in graph.items() if v}),
            add.replace(flags=int(add.flags) | LayerFlags.FUSE_ADD.value))


def pack_image(qnet: QNetwork, config: SenseConfig, order: str = "auto",
               first: str | None = None, fuse_add: bool | str = True,
               split_weights: bool = True, prefetch_bands: bool = True,
               gather: bool = True, s2d: bool | str = "auto") -> bytes:
    """The memory image of `qnet` (a layer graph) for the hardware `config`. `order` is each
    weight layer's tile loop order: "auto" (the compiler pass), or "weight" / "ifm" for every
    layer. Layers today's buffers cannot hold are tiled for the whole-network hardware
    (`host.plan`); activations get liveness-based DRAM offsets (`host.plan.allocate`).
    `first` ("input" or "output") puts that tensor at activation offset 0 and the others after
    it (a batch's runs, `host.batch`). With `fuse_add`, a residual add whose input is the conv
    just before it runs in that conv's output path (`fusable_adds`, flag FUSE_ADD) when the
    performance model finds that faster (`_fuse_pays`; "always": whenever it can): the conv
    writes the sum and the add moves no data (docs/memory-image.md). With `split_weights`, a
    layer whose weight reads the gateware can split between its two read ports gets the
    SPLIT_WEIGHTS hint when the model finds that faster (`host.perf.schedule_choice`). With `prefetch_bands`,
    a layer that fits in one band runs in bands that fit half the IFM store when the model finds
    that faster (`schedule_choice`: each band's input loads while the band before computes).
    With `gather`, a 1x1 convolution with stride 2, 4 or 8 reads only the input pixels it uses
    (`gather_step`, `gathered_view`). With `s2d` ("auto": where the model finds it faster;
    True: wherever it applies), a first conv with stride 2 or 4 over a few channels reads the
    input in blocks of s x s pixels (`blocked_view`, host.s2d)."""
    if order not in ("auto", "weight", "ifm"):
        raise ImageError(f"order must be auto, weight or ifm, not {order!r}")
    if fuse_add not in (True, False, "always"):
        raise ImageError(f"fuse_add must be True, False or 'always', not {fuse_add!r}")
    if first not in (None, "input", "output"):
        raise ImageError(f"first must be input or output, not {first!r}")
    if config.sparse and qnet.group != config.group:
        have = f"pruned for M={qnet.group}" if qnet.group else "dense (not pruned)"
        raise ImageError(f"the network is {have}, the configuration is sparse with "
                         f"M={config.group}: quantize it with group={config.group}")
    if not qnet.layers:
        raise ImageError("the network has no layers")
    m = config.group
    ins, convs, outs = graph_shapes(qnet)
    qnet, ins = gathered_view(qnet, ins, config, gather)
    qnet, ins = blocked_view(qnet, ins, config, s2d)
    into = _concat_targets(qnet, outs, m)
    # A max-pooled layer first writes its whole convolution output to its output tensor.
    sizes = [act_bytes(qnet.accel_shape, m)] + [
        max(act_bytes(o, m), act_bytes(c, m) if c else 0) for o, c in zip(outs, convs)]
    fused = _fusions(qnet, config, order, fuse_add, ins, outs, into, sizes) if fuse_add else {}
    for conv in fused.values():
        sizes[conv + 1] = 0                     # a fused conv's own output is never written
    alloc = allocate(qnet, m, sizes, fused)
    offsets = alloc["offsets"]
    if first == "output" and qnet.layers[-1].kind == "concat":
        raise ImageError("a concat's output cannot be placed first (its inputs are parts of it)")
    if first is not None:
        alloc, offsets = _put_first(alloc, 0 if first == "input" else len(qnet.layers), sizes)
    # Input-channel blocks' int32 partial sums: one scratch range after the activations.
    psum_base, psum_bytes = _align(alloc["bytes"]), 0
    table_size = DESCRIPTOR_BYTES * len(qnet.layers)
    offset = _align(HEADER_BYTES + table_size)
    data_offset = offset
    blocks, descriptors = [], []
    for i, layer in enumerate(qnet.layers):
        d, layer_blocks = _record(i, qnet, config, order, ins, outs, into, offsets, psum_base)
        if i in fused:
            descriptors[-1], d = _fuse(descriptors[-1], d, layer, qnet.sources(i)[0] == i - 1)
        if d.g("exec.c_blocks") > 1:
            psum_bytes = max(psum_bytes, d.p_tiles * d.out_channels * psum_row_bytes(config))
        for what, blob in layer_blocks.items():
            d = d.replace(**{f"{what}_offset": offset, f"{what}_size": len(blob)})
            blocks.append((offset, blob))
            offset = _align(offset + len(blob))
        descriptors.append(d)
    descriptors = _mark_kept_inputs(descriptors, config)
    if split_weights or prefetch_bands:
        descriptors = _schedule(descriptors, qnet, ins, outs, config, split_weights,
                                prefetch_bands, choose_order=order == "auto")
        descriptors = [d.with_image_step() for d in descriptors]     # (the bands chosen)
    return _assemble(qnet, config, descriptors, blocks, offset, data_offset, table_size,
                     psum_base + psum_bytes if psum_bytes else alloc["bytes"])


def _schedule(descriptors, qnet, ins, outs, config, split_weights, prefetch_bands,
              choose_order=False) -> list:
    """Every conv / FC descriptor with its SPLIT_WEIGHTS hint (`split_weights`) or in prefetch
    bands (`prefetch_bands`), whichever the model finds fastest (`host.perf.schedule_choice`), and every
    pool pass in the pool bands the model finds fastest (`host.perf.pool_bands_choice`). A
    pooling layer whose one-band input the next layer keeps (INPUT_KEPT) stays in one band, as
    do those whose input is kept: bands would cost the kept load. A conv / FC whose input the
    next layer keeps is cut into bands only where the model finds the two layers faster so,
    the next one loading its input again (`_unkeep_pays`). With `choose_order` (the
    compiler's tile order), a layer whose two orders move the same DRAM bytes gets the order
    and the bands that are fastest together (`_order_choices`)."""
    out = list(descriptors)
    for i, layer in enumerate(qnet.layers):
        d = out[i]
        feeds_kept = _feeds_kept(out, i)
        pools = layer.kind in ("maxpool", "avgpool", "gap")
        if prefetch_bands and (d.pool or pools and not feeds_kept
                               and not d.has(LayerFlags.INPUT_KEPT)):
            d = out[i] = pool_bands_choice(d, config)
        if layer.kind not in ("conv", "fc"):
            continue
        ones = _ones_layer(ins[i][0], layer)
        out[i], cycles = min((schedule_choice(c, ones, config, split_weights,
                                              bands=prefetch_bands and not feeds_kept)
                              for c in _order_choices(d, layer, ins[i][0], outs[i], config,
                                                      choose_order)),
                             key=lambda t: t[1])
        if prefetch_bands and feeds_kept and qnet.layers[i + 1].kind in ("conv", "fc"):
            choice = _unkeep_pays(out, i, (out[i], cycles), ones, qnet, ins, config,
                                  split_weights)
            if choice is not None:
                out[i], out[i + 1] = choice
    return out


def _order_choices(d, layer, in_shape, out_shape, config, choose_order) -> list:
    """`d`, and (`choose_order`) `d` in the other tile order where the model may pick the order:
    the compiler chose it by the model's cycles (`plan_layer`'s `by_cycles`: both orders
    allowed, the same bytes), or the layer runs in bands (the planner's order comes from its
    study estimate, which does not count the writer's per-segment costs) with more than one k
    tile, one input-channel block and its own output tensor, and the buffers take the other
    order (`buffer_problem`: the IFM-stationary order keeps every weight on chip)."""
    if not choose_order or d.g("exec.out_c_total"):
        return [d]
    other = d.replace(flags=int(d.flags) ^ LayerFlags.IFM_STATIONARY.value)
    if d.g("exec.band_rows"):
        if d.k_tiles < 2 or d.g("exec.c_blocks") or buffer_problem(other, config) is not None:
            return [d]
    elif not plan_layer(in_shape, layer, config, out_shape, cycles=False).by_cycles:
        return [d]
    return [d, other]


def _feeds_kept(descriptors, i) -> bool:
    """Whether the layer after `i` keeps `i`'s input (INPUT_KEPT)."""
    return i + 1 < len(descriptors) and descriptors[i + 1].has(LayerFlags.INPUT_KEPT)


def _unkeep_pays(out, i, kept_choice, ones, qnet, ins, config, split_weights):
    """(layer i in bands, layer i + 1 loading its input again), if the model finds the pair
    faster so than layer i in one band and i + 1 keeping its input; else None."""
    banded, banded_cycles = schedule_choice(out[i], ones, config, split_weights, bands=True)
    if banded.g("exec.band_rows") == kept_choice[0].g("exec.band_rows"):
        return None
    nxt, nxt_ones = out[i + 1], _ones_layer(ins[i + 1][0], qnet.layers[i + 1])
    _, kept_cycles = schedule_choice(nxt, nxt_ones, config, split_weights, bands=False)
    loads = nxt.replace(flags=int(nxt.flags) & ~LayerFlags.INPUT_KEPT.value)
    load_cycles = schedule_choice(loads, nxt_ones, config, split_weights,
                                  bands=not _feeds_kept(out, i + 1))[1]
    if banded_cycles + load_cycles < kept_choice[1] + kept_cycles:
        return banded, loads
    return None


def _record(i, qnet, config, order, ins, outs, into, offsets, psum_base):
    """Layer i's descriptor and data blocks (`_weight_record` / `_other_record`), with its
    activation offsets and graph links."""
    layer, m = qnet.layers[i], config.group
    _check_layer(i, layer, ins[i][0], config)
    src = qnet.sources(i)
    links = {"links.in_layer": src[0] + 1, "links.tensor_channels": outs[i][0]}
    d = LayerDescriptor(in_offset=offsets[src[0] + 1], out_offset=offsets[i + 1],
                        out_scale=_f32_bits(layer.out_scale))
    if layer.join:
        links.update({"links.in2_layer": src[1] + 1, "exec.in2_offset": offsets[src[1] + 1]})
    if i in into:
        concat, first = into[i]
        links.update({"exec.out_c_offset": first,
                      "exec.out_c_total": -(-outs[concat][0] // m) * m,
                      "links.tensor_channels": outs[concat][0],
                      "links.concat": concat + 1})
    record = (_weight_record if layer.kind in ("conv", "fc") else _other_record)
    return record(i, layer, qnet, ins[i], outs[i], config, order, d, links, offsets, psum_base)


def _fusions(qnet, config, order, fuse_add, ins, outs, into, sizes) -> dict:
    """{add: conv} of the adds `pack_image` fuses: `fusable_adds` whose fused conv the gateware
    takes and, unless `fuse_add` is "always", `_fuse_pays` (both on the pair's descriptors under
    a provisional placement)."""
    pairs = fusable_adds(qnet, into)
    offsets = allocate(qnet, config.group, sizes, pairs)["offsets"] if pairs else {}
    chosen = {}
    for add, conv in pairs.items():
        c, _ = _record(conv, qnet, config, order, ins, outs, into, offsets, 0)
        a, _ = _record(add, qnet, config, order, ins, outs, into, offsets, 0)
        fused = _fuse(c, a, qnet.layers[add], qnet.sources(add)[0] == conv)
        # (the gateware's rules for the fused conv: `plain` (one input-channel block, no
        # max-pool or concat range), `buffer_problem` (all its weights in the buffer))
        if not fused[0].plain or buffer_problem(fused[0], config) is not None:
            continue
        if fuse_add == "always" or _fuse_pays(ins[conv][0], qnet.layers[conv], config, (c, a),
                                              fused):
            chosen[add] = conv
    return chosen


def _mark_kept_inputs(descriptors: list, config: SenseConfig) -> list:
    """Flag INPUT_KEPT on every layer that loads into the IFM store exactly what the layer
    before left there (`host.buffers.store_key` / `kept_key`: consumers of one tensor with one
    placement, each in one piece, e.g. an inception module's 1x1 branches): it skips its
    load."""
    out = list(descriptors)
    for i in range(1, len(out)):
        key = store_key(out[i], config)
        if key is not None and key == kept_key(out[i - 1], config):
            out[i] = out[i].replace(flags=int(out[i].flags) | LayerFlags.INPUT_KEPT.value)
    return out


def _put_first(alloc: dict, tensor: int, sizes: list) -> tuple[dict, dict]:
    """`allocate`'s placement with `tensor` at offset 0 and every other tensor after it (the
    same reuse among them)."""
    head = -(-sizes[tensor] // 4096) * 4096
    offsets = {t: 0 if t == tensor else o + head for t, o in alloc["offsets"].items()}
    return dict(alloc, bytes=alloc["bytes"] + head), offsets


def _weight_record(i, layer, qnet, in_shapes, out_shape, config, order, d, graph, offsets,
                   psum_base):
    """A conv / fc layer: its descriptor (tiled if today's buffers cannot hold it) and its
    weight and parameter blocks."""
    k = layer.w.shape[0]
    slots = weight_slots_of(layer.w, config, mask=layer.mask if config.sparse else None,
                            name=f"layer {i} ({layer.name})")
    weights = weight_records(slots, config)
    w_scale = layer.w_scale if layer.w_scale is not None else np.ones(k)
    params = pack_array(param_entry_layout(config), {
        ("param", "bias"): layer.bias, ("param", "mult"): layer.mult,
        ("param", "shift"): layer.shift,
        ("w_scale",): np.asarray(w_scale, np.float32).view(np.uint32),
    }, k)
    geo = layer_geometry(in_shapes[0], layer, config)
    if buffer_problem(geo, config) is None and not (graph.get("exec.out_c_total") and layer.pool):
        chosen = plan_layer(in_shapes[0], layer, config, out_shape).order
    else:
        try:
            est = layer_tiling(layer.kind, layer.w, layer.stride, layer.pad, layer.pool,
                               layer.relu, in_shapes[0], out_shape, Target(config))
        except ValueError as e:
            raise ImageError(f"layer {i} ({layer.name}): {e}") from None
        chosen = est["order"]
        graph = dict(graph)
        rows = est["band_rows"]
        if est["k_blocks"] > 1:
            # Weights beyond the buffer: the weight ring streams them in the weight-stationary
            # order (the gateware has no weight blocks: `exec.k_block` stays 0), all of them in
            # every band, so the fewest bands that fit the store (the study's bands suit its
            # weight blocks; no prefetch either, the weights not staying on chip).
            chosen, rows = "weight", geo.out_h
        # Always set: a layer today's buffers cannot hold is never plain, even in one band.
        graph["exec.band_rows"] = _band_that_fits(
            geo, rows, config, prefetch=est["c_blocks"] == 1 and est["k_blocks"] == 1)
        if est["c_blocks"] > 1:
            # blocks of equal groups (the last may have fewer), their partial sums in the
            # scratch range after the activations
            groups = geo.in_groups
            per = -(-groups // est["c_blocks"])
            graph.update({"exec.c_blocks": -(-groups // per), "exec.c_block_groups": per,
                          "exec.psum_offset": psum_base})
            order_ = channel_block_order(geo.k_tiles, geo.kernel_h * geo.kernel_w, groups, per,
                                         config.cycles_per_group)
            weights = weights[order_]
    if layer.pool:
        graph["exec.pool_band_rows"] = pool_band_rows(geo, config)
    chosen = chosen if order == "auto" else order
    slot, valid = layer.sep or (0, 0)
    step, full_w = layer.gather or (0, 0)
    pixel, split = geo.in_groups * config.group, 0
    if layer.join:          # (the second input gathered, its pixel after the first's beats)
        (c, _, _), (cb, _, full_w) = in_shapes
        step, pixel, split = layer.join, cb, (c - cb) // BEAT_BYTES
    d = geo.replace(
        flags=int(geo.flags) | LayerFlags.IFM_STATIONARY.value * (chosen == "ifm"),
        in_offset=d.in_offset, out_offset=d.out_offset, out_scale=d.out_scale,
        sep_slot=slot * geo.out_w, sep_valid=valid * geo.out_w, in_step=step,
        in_pitch=step * full_w * pixel // BEAT_BYTES, in_split=split,
        graph={k: v for k, v in graph.items() if v})
    if layer.image_rows:
        d = d.replace(graph={**d.graph, "links.image_rows": layer.image_rows[0],
                             "links.image_out_rows": layer.image_rows[1]}).with_image_step()
    _separators(f"layer {i} ({layer.name})", d, config)
    _image_rows(f"layer {i} ({layer.name})", d)
    # A forced order the buffers cannot take (the IFM-stationary order keeps every weight).
    problem = buffer_problem(d, config) if d.plain else None
    if problem:
        raise ImageError(f"layer {i} ({layer.name}) does not fit the {config_name(config)} "
                         f"buffers in the {chosen} order: {problem}")
    return d, {"weight": weights.tobytes(), "param": params.tobytes()}


def _band_that_fits(geo, rows: int, config: SenseConfig, prefetch: bool = True) -> int:
    """The planner's band height, lowered until a band's input fits the IFM store as placed
    (the gateware's rule, `band_geometry`; the planner counts raw bytes), then, with
    `prefetch` (not for input-channel blocks) and where a band of at least one row can, until
    it fits half the store: the gateware then loads each band while the one before computes."""
    def geometry(n):
        return band_geometry(geo.replace(graph={"exec.band_rows": n}), config)

    def half(n):
        return fits_half_store(geometry(n), config)

    if geo.stride not in STRIDES:
        return rows
    while rows > 1 and geometry(rows).lines > config.ifm_bank_lines:
        rows -= 1
    full = rows
    while prefetch and rows > 1 and not half(rows):
        rows -= 1
    return rows if half(rows) else full


def _other_record(i, layer, qnet, in_shapes, out_shape, config, order, d, graph, offsets,
                  psum_base):
    """A residual add, concat, pooling or global-average-pooling layer: its descriptor, and for
    average pooling the parameter block of (mult, shift) per window count n = 1..N."""
    m = config.group
    c, h, w = in_shapes[0]
    kind = {"add": LayerKind.ADD, "concat": LayerKind.CONCAT, "maxpool": LayerKind.MAXPOOL,
            "avgpool": LayerKind.AVGPOOL, "gap": LayerKind.GAP}[layer.kind]
    flags = LayerFlags.RELU.value * bool(layer.relu)
    graph = dict(graph)
    fields = dict(kind=kind.value, in_channels=c, in_groups=-(-c // m), in_h=h, in_w=w,
                  out_channels=out_shape[0], out_h=out_shape[1], out_w=out_shape[2],
                  kernel_h=1, kernel_w=1, stride=1)
    blocks = {}
    if layer.kind == "add":
        src2 = qnet.sources(i)[1]
        graph.update({"exec.in2_offset": offsets[src2 + 1], "links.in2_layer": src2 + 1,
                      "exec.add_mult_a": int(layer.mult[0]),
                      "exec.add_mult_b": int(layer.mult[1]),
                      "exec.add_shift": int(layer.shift[0])})
    elif layer.kind == "concat":
        fields.update(in_channels=out_shape[0], in_groups=-(-out_shape[0] // m))
        graph["links.in2_layer"] = len(qnet.sources(i))
        d = d.replace(in_offset=d.out_offset)
    elif layer.kind in ("maxpool", "avgpool"):
        win = layer.pool
        (kh, kw), (sh, sw), (t, left, b, r), (dh, dw) = (win.kernel, win.stride, win.pads,
                                                         win.dilation)
        fields.update(pool_kernel=kh, pool_stride=sh, pool_pad=t)
        flags |= LayerFlags.CEIL.value * win.ceil_mode
        flags |= LayerFlags.COUNT_PAD.value * bool(layer.count_include_pad)
        graph.update({"exec.pool_kernel_w": kw, "exec.pool_stride_w": sw, "exec.pool_pad_b": b,
                      "exec.pool_pad_l": left, "exec.pool_pad_r": r,
                      "exec.pool_dilation": (dh - 1) | (dw - 1) << 4})
        if layer.kind == "avgpool":
            blocks["param"] = _divisor_block(layer.pool_scale, kh * kw, config,
                                             count=layer.pool_count)
            graph["links.pool_count"] = layer.pool_count or 0
    if layer.kind in ("avgpool", "gap"):
        graph["exec.pool_scale"] = _f32_bits(layer.pool_scale)
        if layer.kind == "gap":
            blocks["param"] = _divisor_block(layer.pool_scale, h * w, config, only_last=True)
    d = d.replace(flags=flags, graph={k: v for k, v in graph.items() if v}, **fields)
    per = pool_band_rows(d, config) if layer.kind in ("maxpool", "avgpool", "gap") else 0
    if per is None:
        raise ImageError(f"layer {i} ({layer.name}) does not fit the {config_name(config)} "
                         f"buffers: {pool_fit_problem(d, config)}, and its window does not "
                         f"take bands")
    if per:
        d = d.replace(graph={**d.graph, "exec.pool_band_rows": per})
    return d, blocks


def _divisor_block(scale: float, n: int, config, only_last: bool = False,
                   count: int | None = None) -> bytes:
    """(mult, shift) of scale / count for count = 1..n (GAP: n only; `count`: that one for every
    entry), as parameter entries."""
    counts = np.array([n] if only_last else range(1, n + 1), np.float64)
    if count:
        counts[:] = count
    mult, shift = golden.scale_to_mult_shift(scale / counts)
    return pack_array(param_entry_layout(config), {
        ("param", "bias"): np.zeros(len(counts), np.int32), ("param", "mult"): mult,
        ("param", "shift"): shift, ("w_scale",): np.zeros(len(counts), np.uint32),
    }, len(counts)).tobytes()


def _assemble(qnet, config, descriptors, blocks, offset, data_offset, table_size,
              act_size) -> bytes:
    """Header, layer table and blocks into one image (CRCs last)."""
    body = bytearray(offset - HEADER_BYTES)
    body[:table_size] = b"".join(d.to_bytes() for d in descriptors)
    for off, blob in blocks:
        body[off - HEADER_BYTES: off - HEADER_BYTES + len(blob)] = blob
    c, h, w = qnet.input_shape
    header = pack_record(HEADER, {
        "magic": MAGIC, "version": FORMAT_VERSION, "header_size": HEADER_BYTES,
        "rows": config.rows, "cols": config.cols, "group": config.group,
        "flags": FLAG_SPARSE * config.sparse | config.acc_width << FLAG_ACC_SHIFT,
        "ifm_kib": config.ifm_kib,
        "weight_kib": config.weight_kib, "ofm_kib": config.ofm_kib,
        "layer_count": len(qnet.layers),
        "max_channels_log2": config.max_channels.bit_length() - 1,
        "host_ops": HOST_SOFTMAX * ("softmax" in qnet.host_ops) | _s2d_bits(qnet.s2d),
        "input_c": c, "input_h": h, "input_w": w,
        "table_offset": HEADER_BYTES, "table_size": table_size,
        "data_offset": data_offset, "data_size": offset - data_offset, "image_size": offset,
        "act_size": act_size, "input_scale": _f32_bits(qnet.input_scale),
        "header_crc32": 0, "crc32": zlib.crc32(body),
    }).to_bytes(HEADER_BYTES, "little")
    header = header[:HEADER_CRC_SPAN] + struct.pack("<I", zlib.crc32(header[:HEADER_CRC_SPAN])) \
        + header[HEADER_CRC_SPAN + 4:]
    return header + bytes(body)


# -- read and validate ----------------------------------------------------------------------------------

def read_header(data: bytes, config: SenseConfig | None = None) -> dict:
    """Validate and decode the header: size, magic, version, CRC and, with `config`, that the image
    was packed for this hardware. Raises ImageError naming the problem."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"an image is bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER_BYTES:
        raise ImageError(f"image is truncated: {len(data)} bytes, the header alone is "
                         f"{HEADER_BYTES}")
    h = unpack_record(HEADER, int.from_bytes(data[:HEADER_BYTES], "little"))
    if h["magic"] != MAGIC:
        raise ImageError(f"not a Sense image: magic {data[:4]!r}, expected b'SENS'")
    crc = zlib.crc32(data[:HEADER_CRC_SPAN])
    if crc != h["header_crc32"]:
        raise ImageError(f"image header is corrupt: CRC-32 {crc:#010x}, the header says "
                         f"{h['header_crc32']:#010x}")
    if h["magic"] != MAGIC:
        raise ImageError(f"not a Sense image: magic {data[:4]!r}, expected b'SENS'")
    if h["version"] != FORMAT_VERSION:
        raise ImageError(f"image format version {h['version']} is not supported; this Sense "
                         f"reads version {FORMAT_VERSION}")
    if h["header_size"] != HEADER_BYTES:
        raise ImageError(f"header size {h['header_size']} is wrong for version "
                         f"{FORMAT_VERSION} (expected {HEADER_BYTES})")
    if len(data) < h["image_size"]:
        raise ImageError(f"image is truncated: {len(data)} bytes, the header says "
                         f"{h['image_size']}")
    if len(data) > h["image_size"]:
        raise ImageError(f"image has {len(data) - h['image_size']} bytes after its end "
                         f"({h['image_size']} bytes)")
    crc = zlib.crc32(data[HEADER_BYTES:])
    if crc != h["crc32"]:
        raise ImageError(f"image body is corrupt: CRC-32 {crc:#010x}, the header says "
                         f"{h['crc32']:#010x}")
    hw = _header_config(h)
    # Every field but the clock and dsp_pairs shapes the image (they change how fast it runs and
    # how the multipliers map, not what it computes).
    fields = ("rows", "cols", "group", "sparse", "ifm_kib", "weight_kib", "ofm_kib",
              "max_channels")
    diffs = [f"{f} {getattr(hw, f)} (image) vs {getattr(config, f)} (hardware)"
             for f in fields if config is not None and getattr(hw, f) != getattr(config, f)]
    if config is not None and hw.acc_width > config.acc_width:
        diffs.append(f"acc_width {hw.acc_width} (image) vs {config.acc_width} (hardware): its "
                     f"sums may not fit the grid's accumulators")
    if diffs:
        raise ImageError("image was packed for other hardware: " + "; ".join(diffs))
    return h


def _header_config(h) -> SenseConfig:
    try:
        return SenseConfig(rows=h["rows"], cols=h["cols"], group=h["group"],
                           sparse=bool(h["flags"] & FLAG_SPARSE), ifm_kib=h["ifm_kib"],
                           weight_kib=h["weight_kib"], ofm_kib=h["ofm_kib"],
                           max_channels=1 << min(h["max_channels_log2"], 63),
                           acc_width=h["flags"] >> FLAG_ACC_SHIFT)
    except ValueError as e:
        raise ImageError(f"image header names impossible hardware: {e}") from None


def layer_table(data: bytes, config: SenseConfig | None = None
                ) -> tuple[dict, list[LayerDescriptor]]:
    """(header as a dict of its layout's fields, descriptors) of a validated image."""
    h = read_header(data, config)
    descs = _descriptors(bytes(data), h)
    header_s2d(h, descs[0])                 # (a blocked input must match the first layer)
    return h, descs


def _descriptors(data: bytes, h: dict) -> list[LayerDescriptor]:
    n = h["layer_count"]
    if n < 1:
        raise ImageError("image has no layers")
    if h["table_offset"] != HEADER_BYTES or h["table_size"] != n * DESCRIPTOR_BYTES:
        raise ImageError(f"layer table at {h['table_offset']} size {h['table_size']} does not "
                         f"match {n} layers after the header")
    if h["table_offset"] + h["table_size"] > h["image_size"]:
        raise ImageError("layer table runs past the end of the image")
    out = []
    for i in range(n):
        off = h["table_offset"] + i * DESCRIPTOR_BYTES
        out.append(LayerDescriptor.from_bytes(data[off:off + DESCRIPTOR_BYTES]))
    return out


def _s2d_bits(s2d: SpaceToDepth | None) -> int:
    """The header's host_ops bits for a blocked first conv (`HOST_S2D_SHIFT`)."""
    if s2d is None:
        return 0
    if s2d.pad > MAX_PAD:
        raise ImageError(f"a space-to-depth pad of {s2d.pad} does not fit the header "
                         f"(at most {MAX_PAD})")
    return (s2d.block.bit_length() - 1) << HOST_S2D_SHIFT | s2d.pad << HOST_S2D_PAD_SHIFT


def header_s2d(h: dict, first: LayerDescriptor) -> SpaceToDepth | None:
    """The blocked input the image's first layer reads (host.s2d), from the header's host_ops
    bits and the first layer's descriptor (`first`), or None; ImageError when the two do not
    agree."""
    lg = h["host_ops"] >> HOST_S2D_SHIFT & 3
    if not lg:
        return None
    block, pad, group = 1 << lg, h["host_ops"] >> HOST_S2D_PAD_SHIFT, h["group"]
    cp = -(-h["input_c"] // group) * group
    s2d = SpaceToDepth(block, pad, cp, (block * block * cp, first.in_h, first.in_w))
    # (a sanity bound on the blocked map's size: the exact one needs the original kernel)
    rows, cols = -(-(h["input_h"] + pad) // block), -(-(h["input_w"] + pad) // block)
    if (first.kind != LayerKind.CONV.value or first.in_channels != s2d.shape[0]
            or first.stride != 1 or first.pad != 0 or first.in_h > rows + first.kernel_h
            or first.in_w > cols + first.kernel_w):
        raise ImageError(f"host_ops {h['host_ops']:#x} names a {block}x{block} space-to-depth "
                         f"input, but the first layer is not a stride-1 unpadded conv over "
                         f"{s2d.shape[0]} channels of it")
    return s2d


def unpack_image(data: bytes, config: SenseConfig | None = None) -> QNetwork:
    """The network an image holds, after validating every field; with `config`, also that it
    was packed for that hardware. Inverse of pack_image (layer names are not stored)."""
    h = read_header(data, config)
    data = bytes(data)
    cfg = _header_config(h)
    shape = (h["input_c"], h["input_h"], h["input_w"])
    if min(shape) < 1:
        raise ImageError(f"input shape {shape} is empty")
    descs = _descriptors(data, h)
    s2d = header_s2d(h, descs[0])
    layers, outs = [], []
    scales = [_bits_f32(h["input_scale"])]
    for i, d in enumerate(descs):
        name = f"layer {i}"
        if d.kind not in {k.value for k in LayerKind}:
            raise ImageError(f"{name}: kind {d.kind} is not one of "
                             f"{', '.join(f'{k.name.lower()} ({k.value})' for k in LayerKind)}")
        if d.unknown_flags:
            raise ImageError(f"{name}: unknown flags {d.flags:#x}")
        if (d.sep_slot or d.sep_valid) and _not_conv(d):
            raise ImageError(f"{name}: separator rows (sep_slot {d.sep_slot}, sep_valid "
                             f"{d.sep_valid}) on a layer that is not a conv or FC")
        if any(d.g(f"links.image_{f}") for f in ("rows", "out_rows", "step")) and \
                d.kind != LayerKind.CONV.value:
            raise ImageError(f"{name}: image rows (links.image_rows "
                             f"{d.g('links.image_rows')}) on a layer that is not a conv")
        if d.has(LayerFlags.ADD_RELU) and not d.has(LayerFlags.FUSE_ADD):
            raise ImageError(f"{name}: flag ADD_RELU without FUSE_ADD (flags {d.flags:#x})")
        if d.kind == LayerKind.ADD.value and d.has(LayerFlags.FUSE_ADD) and not (
                i and descs[i - 1].has(LayerFlags.FUSE_ADD)
                and descs[i - 1].kind != LayerKind.ADD.value):
            raise ImageError(f"{name}: an ADD flagged FUSE_ADD, but the layer before does not "
                             f"do the add")
        src = d.g("links.in_layer") - 1
        if not -1 <= src < i:
            raise ImageError(f"{name}: its input names layer {src}, not an earlier one")
        in_shape = (s2d.shape if s2d else shape) if src < 0 else outs[src]
        kind = d.layer_kind
        if kind == LayerKind.CONCAT:
            parts = _concat_parts(descs, i, d, outs)
            layer = QLayer("concat", name, None, None, None, None, inputs=parts)
            out = (sum(outs[j][0] for j in parts),) + outs[parts[0]][1:]
        else:
            src2 = d.g("links.in2_layer") - 1
            if d.in_split:
                in_shape = _unjoined(name, d, i, in_shape, src2, outs, shape, cfg)
            view, d = d, _ungathered(name, d, in_shape, cfg)
            if (d.in_channels, d.in_h, d.in_w) != in_shape:
                raise ImageError(f"{name}: input shape {(d.in_channels, d.in_h, d.in_w)} does "
                                 f"not match its input's shape {in_shape}")
            if kind in (LayerKind.CONV, LayerKind.FC):
                layer, out = _unpack_weight_layer(name, d, in_shape, cfg, h, data, view)
                layer.sep = _separators(name, d, cfg)
                layer.image_rows = _image_rows(name, view)
                layer.join = view.in_step if view.in_split else 0
            else:
                layer, out = _unpack_other_layer(name, d, descs, in_shape, outs, data, cfg,
                                                 shape)
            layer.inputs = [src] + ([src2] if kind == LayerKind.ADD or view.in_split else [])
        layer.in_scale = scales[layer.inputs[0] + 1] if layer.inputs else scales[0]
        layer.out_scale = _bits_f32(d.out_scale)
        scales.append(layer.out_scale)
        layers.append(layer)
        outs.append(out)
    host_ops = ["softmax"] if h["host_ops"] & HOST_SOFTMAX else []
    qnet = QNetwork(shape, layers, _bits_f32(h["input_scale"]), host_ops,
                    cfg.group if cfg.sparse else None, "image", s2d=s2d)
    return qnet.with_layers(replace(layer, inputs=None) if qnet.sources(i) == [i - 1] else layer
                            for i, layer in enumerate(qnet.layers))


def _unjoined(name, d: LayerDescriptor, i: int, a_shape, src2: int, outs, shape,
              cfg: SenseConfig) -> tuple:
    """A joined conv's (``in_split``) input shape as it runs, (both inputs' channels, the first
    input's size), after checking the descriptor against its two inputs (the gateware's
    LayerCheck rule: a 1x1 stride-1 CONV without padding, max-pool, fused add, channel blocks
    or INPUT_KEPT; both parts of a pixel whole beats; a step of `JOIN_STEPS` and the pitch of
    that many rows of the second input, which it fits at that step)."""
    if not -1 <= src2 < i:
        raise ImageError(f"{name}: its second input names layer {src2}, not an earlier one")
    cb, hb, wb = shape if src2 < 0 else outs[src2]
    ca, s = d.in_split * BEAT_BYTES, d.in_step
    if (d.layer_kind != LayerKind.CONV or d.kernel_h != 1 or d.kernel_w != 1 or d.stride != 1
            or d.pad or d.pool or d.has(LayerFlags.FUSE_ADD) or d.has(LayerFlags.INPUT_KEPT)
            or d.g("exec.c_blocks") > 1 or s not in JOIN_STEPS or cb % BEAT_BYTES
            or d.in_groups * cfg.group != ca + cb or a_shape[0] != ca
            or d.in_pitch * BEAT_BYTES != s * wb * cb
            or (d.in_h, d.in_w) != (-(-hb // s), -(-wb // s))):
        raise ImageError(f"{name}: joined input (split {d.in_split} beats, step {s}, pitch "
                         f"{d.in_pitch} beats) does not fit a 1x1 convolution of its inputs "
                         f"{a_shape} and {(cb, hb, wb)}")
    return (ca + cb,) + tuple(a_shape[1:])


def _ungathered(name, d: LayerDescriptor, in_shape, cfg: SenseConfig) -> LayerDescriptor:
    """A descriptor with an input gather (``in_step``) as the layer it runs: its stride-1 view
    checked against the input (the gateware's LayerCheck rule: a 1x1 CONV without padding
    over whole-beat pixels, no channel blocks or INPUT_KEPT; the pitch of `step` input rows),
    returned with the input's size and the stride; any other descriptor as it is."""
    if not (d.in_step or d.in_pitch) or d.in_split:
        return d
    c, h, w = in_shape
    s, pixel = d.in_step, d.in_groups * cfg.group
    if (s not in GATHER_STEPS or d.layer_kind != LayerKind.CONV or d.kernel_h != 1
            or d.kernel_w != 1 or d.stride != 1 or d.pad or pixel % BEAT_BYTES
            or d.g("exec.c_blocks") > 1 or d.has(LayerFlags.INPUT_KEPT)
            or d.in_pitch * BEAT_BYTES != s * w * pixel
            or (d.in_h, d.in_w) != (-(-h // s), -(-w // s))):
        raise ImageError(f"{name}: input gather (step {d.in_step}, pitch {d.in_pitch} beats) "
                         f"does not fit a 1x1 stride-{d.in_step} convolution of its "
                         f"{c}x{h}x{w} input")
    return d.replace(in_h=h, in_w=w, stride=s, in_step=0, in_pitch=0)


def _not_conv(d: LayerDescriptor) -> bool:
    return int(d.kind) not in (LayerKind.CONV.value, LayerKind.FC.value)


def _separators(name, d: LayerDescriptor, cfg: SenseConfig):
    """A conv's separator rows (`QLayer.sep`: slot rows, valid rows) from its descriptor's
    pixel counts (hw.soc.output_writer; the gateware's LayerCheck rule: whole rows, a slot of at
    least cols pixels that the image does not fill, no fused max-pool or channel blocks)."""
    if not (d.sep_slot or d.sep_valid):
        return None
    w = d.out_w
    if (d.sep_slot % w or d.sep_valid % w or not 0 < d.sep_valid < d.sep_slot
            or d.sep_slot < cfg.cols or d.pool or d.g("exec.c_blocks") > 1):
        raise ImageError(f"{name}: separator rows of {d.sep_valid} of every {d.sep_slot} "
                         f"output pixels do not fit its {w}-pixel rows, the {cfg.cols} columns, "
                         f"or come with a max-pool or input-channel blocks")
    return d.sep_slot // w, d.sep_valid // w


def _image_rows(name, d: LayerDescriptor):
    """A conv's stacked images without separator rows (`QLayer.image_rows`: input and output
    rows of each image) from its descriptor (the gateware's LayerCheck rule: the map's rows
    whole images, the band step band_rows mod the image's output rows, no separator rows,
    max-pool or input gather), or None."""
    h, oh = d.g("links.image_rows"), d.g("links.image_out_rows")
    if not (h or oh or d.g("links.image_step")):
        return None
    if (not h or not oh or d.in_h % h or d.out_h != d.in_h // h * oh or d.sep_slot or d.pool
            or d.in_step or d.with_image_step() != d):
        raise ImageError(f"{name}: images of {h} input and {oh} output rows (band step "
                         f"{d.g('links.image_step')}) do not tile its {d.in_h}x{d.out_h} rows "
                         f"and bands of {d.g('exec.band_rows')}, or come with separator rows, "
                         f"a max-pool or an input gather")
    return h, oh


def _concat_parts(descs, i, d, outs) -> list[int]:
    """The layers writing channel ranges of concat i's tensor, in channel order."""
    parts = sorted((p.g("exec.out_c_offset"), j) for j, p in enumerate(descs[:i])
                   if p.g("links.concat") == i + 1)
    if any(descs[j].out_offset != d.out_offset for _, j in parts):
        raise ImageError(f"layer {i}: a layer writing into this concat's tensor names another "
                         f"output offset")
    first = 0
    for offset, j in parts:
        if offset != first:
            raise ImageError(f"layer {i}: concat inputs do not tile its channels (layer {j} "
                             f"writes from channel {offset}, expected {first})")
        first += outs[j][0]
    if len(parts) != d.g("links.in2_layer") or first != d.out_channels or len(parts) < 2:
        raise ImageError(f"layer {i}: concat of {d.out_channels} channels does not match the "
                         f"{len(parts)} layers writing its tensor")
    return [j for _, j in parts]


def _unpack_other_layer(name, d, descs, in_shape, outs, data, cfg, net_shape):
    """An add, pooling or global-average-pooling layer from its descriptor (`outs`: the output
    shapes of the layers before it, `net_shape` the network input's)."""
    kind = d.layer_kind
    c, ih, iw = in_shape
    if kind == LayerKind.ADD:
        j = d.g("links.in2_layer") - 1
        if not -1 <= j < len(outs) or (outs[j] if j >= 0 else net_shape) != in_shape:
            raise ImageError(f"{name}: a residual add's second input (layer {j}) does not "
                             f"have its first input's shape {in_shape}")
        shift = d.g("exec.add_shift")
        if not golden.SHIFT_RANGE[0] <= shift <= golden.SHIFT_RANGE[1]:
            raise ImageError(f"{name}: add shift {shift} outside {golden.SHIFT_RANGE}")
        layer = QLayer("add", name, None, None,
                       np.array([d.g("exec.add_mult_a"), d.g("exec.add_mult_b")], np.int32),
                       np.array([shift], np.int32), relu=d.relu)
        return layer, in_shape
    if kind == LayerKind.GAP:
        layer = QLayer("gap", name, None, None, None, None,
                       pool_scale=_bits_f32(d.g("exec.pool_scale")))
        return layer, (c, 1, 1)
    try:
        win = descriptor_window(d)
    except ValueError as e:
        raise ImageError(f"{name}: malformed pooling window ({e})") from None
    out = (c,) + win.out_size(ih, iw)
    if min(out[1:]) < 1 or out != (d.out_channels, d.out_h, d.out_w):
        raise ImageError(f"{name}: pooling output {(d.out_channels, d.out_h, d.out_w)} is "
                         f"inconsistent with its window and input")
    layer = QLayer(kind.name.lower(), name, None, None, None, None, pool=win,
                   count_include_pad=d.has(LayerFlags.COUNT_PAD),
                   pool_scale=_bits_f32(d.g("exec.pool_scale")) if kind == LayerKind.AVGPOOL
                   else 1.0, pool_count=d.g("links.pool_count") or None)
    return layer, out


def _unpack_weight_layer(name, d, shape, cfg, h, data, view):
    """A conv / fc layer: shape fields, blocks, weights and parameters, all checked (`view`:
    the descriptor as the gateware runs it, an input gather's stride-1 view)."""
    m = cfg.group
    word = weight_word_layout(cfg)
    word_bytes = weight_word_bytes(cfg)
    c, k, r, s = d.in_channels, d.out_channels, d.kernel_h, d.kernel_w
    if min(k, r, s, d.stride) < 1 or d.in_groups != -(-c // m):
        raise ImageError(f"{name}: malformed shape fields (channels {c}->{k}, kernel "
                         f"{r}x{s}, stride {d.stride}, groups {d.in_groups})")
    oh = golden.output_size(shape[1], r, d.stride, d.pad)
    ow = golden.output_size(shape[2], s, d.stride, d.pad)
    if (oh, ow) != (d.out_h, d.out_w) or oh < 1 or ow < 1:
        raise ImageError(f"{name}: output {d.out_h}x{d.out_w} is inconsistent with "
                         f"input, kernel, stride and padding")
    groups = r * s * d.in_groups
    k_tiles = -(-k // cfg.rows)
    words = k_tiles * groups * cfg.cycles_per_group
    if d.weight_size != words * word_bytes or d.param_size != k * BEAT_BYTES:
        raise ImageError(f"{name}: block sizes ({d.weight_size}, {d.param_size}) do "
                         f"not match its shape")
    for what in ("weight", "param"):
        lo, size = getattr(d, f"{what}_offset"), getattr(d, f"{what}_size")
        if lo % BLOCK_ALIGN or lo < h["data_offset"] or lo + size > h["image_size"]:
            raise ImageError(f"{name}: {what} block [{lo}, {lo + size}) is misaligned or "
                             f"outside the image's data")
    pool = None
    if d.pool:
        pool = (d.pool_kernel, d.pool_stride, d.pool_pad)
        if min(pool[:2]) < 1 or pool[2] >= pool[0]:
            raise ImageError(f"{name}: malformed max-pool {pool}")
        oh, ow = (golden.output_size(oh, pool[0], pool[1], pool[2]),
                  golden.output_size(ow, pool[0], pool[1], pool[2]))
        if oh < 1 or ow < 1:
            raise ImageError(f"{name}: max-pool {pool} does not fit its input")
    if view.plain:
        problem = buffer_problem(view, cfg)
        if problem:
            raise ImageError(f"{name} does not fit the buffers of the hardware it was packed "
                             f"for, and it is not tiled: {problem}")
    raw = np.frombuffer(data, np.uint8, count=d.weight_size, offset=d.weight_offset)
    raw = raw.reshape(words, word_bytes)
    if d.g("exec.c_blocks") > 1:           # input-channel blocks: back to the layer's order
        per = d.g("exec.c_block_groups")
        if per < 1 or -(-d.in_groups // per) != d.g("exec.c_blocks"):
            raise ImageError(f"{name}: {d.g('exec.c_blocks')} input-channel blocks of {per} "
                             f"groups do not cover its {d.in_groups} channel groups")
        layer_order = np.empty_like(raw)
        layer_order[channel_block_order(k_tiles, r * s, d.in_groups, per,
                                        cfg.cycles_per_group)] = raw
        raw = layer_order
    leaves = unpack_array(word, raw)
    w, mask = _weights_from_slots(leaves, cfg, k, c, r, s)
    rawp = np.frombuffer(data, np.uint8, count=d.param_size, offset=d.param_offset)
    p = unpack_array(param_entry_layout(cfg), rawp.reshape(k, BEAT_BYTES))
    shift = p[("param", "shift")]
    if shift.min() < golden.SHIFT_RANGE[0] or shift.max() > golden.SHIFT_RANGE[1]:
        raise ImageError(f"{name}: requantization shift outside {golden.SHIFT_RANGE}")
    layer = QLayer(
        "fc" if d.layer_kind == LayerKind.FC else "conv", name, w,
        p[("param", "bias")].astype(np.int32), p[("param", "mult")].astype(np.int32),
        shift.astype(np.int32), d.stride, d.pad, d.relu, pool,
        w_scale=np.array([_bits_f32(v) for v in p[("w_scale",)]]), mask=mask)
    return layer, (k, oh, ow)


def _weights_from_slots(leaves, cfg: SenseConfig, k, c, r, s):
    m, rows, slots = cfg.group, cfg.rows, cfg.cycles_per_group
    cpad = -(-c // m) * m
    g = r * s * cpad // m
    k_tiles = -(-k // rows)
    values = np.stack([leaves[(row, "value")] for row in range(rows)], axis=-1)
    values = values.reshape(k_tiles, g, slots, rows).transpose(0, 3, 1, 2).reshape(-1, g, slots)
    if cfg.pos_width:
        pos = np.stack([leaves[(row, "pos")] for row in range(rows)], axis=-1)
        pos = pos.reshape(k_tiles, g, slots, rows).transpose(0, 3, 1, 2).reshape(-1, g, slots)
    else:
        pos = np.broadcast_to(np.arange(slots), values.shape)
    grouped = np.zeros(values.shape[:2] + (m,), np.int8)
    kept = np.zeros(grouped.shape, bool)
    np.put_along_axis(grouped, pos, values.astype(np.int8), axis=-1)
    np.put_along_axis(kept, pos, True, axis=-1)
    if cfg.sparse and (kept.sum(-1) != m // 2).any():
        raise ImageError("weight block repeats a position inside a group: not balanced")
    shape = (len(grouped), cpad, r, s)
    w = ungroup(grouped, shape)[:k, :c]
    mask = ungroup(kept, shape)[:k, :c] if cfg.sparse else None
    return np.ascontiguousarray(w), (np.ascontiguousarray(mask) if mask is not None else None)


def fit_problem(d: LayerDescriptor, config: SenseConfig) -> str | None:
    """Why a plain layer does not fit `config`'s buffers (the gateware's TOO_LARGE rules), or
    None: a conv / FC layer's buffers, a pooling layer's input in the IFM store and its window
    within the pool unit's divisor memory and sum width."""
    kind = int(d.kind)
    if kind in (LayerKind.CONV.value, LayerKind.FC.value):
        return buffer_problem(d, config)
    if kind in POOL_KINDS:
        problem = pool_fit_problem(d, config)
        if problem:
            return problem
        kh, kw = descriptor_window(d).kernel
        if kind == LayerKind.AVGPOOL.value and kh * kw > DIVISORS:
            return (f"its {kh}x{kw} average-pooling window has more taps than the pool unit's "
                    f"{DIVISORS} divisors")
        if kh * kw > 1 << (SUM_BITS - 8):
            return (f"its {kh}x{kw} window has more than {1 << (SUM_BITS - 8)} taps (the pool "
                    f"unit's {SUM_BITS}-bit sums)")
    return None


def runs_here(d: LayerDescriptor, config: SenseConfig) -> bool:
    """Whether today's gateware runs this layer for `config`: plain and fitting."""
    return d.plain and fit_problem(d, config) is None


def unsupported_problem(descs, config: SenseConfig | None = None) -> str | None:
    """Why today's gateware cannot run an image (the first layer it would stop at with
    UNSUPPORTED, or, given the configuration, with TOO_LARGE), or None."""
    for i, d in enumerate(descs):
        if d.plain:
            problem = fit_problem(d, config) if config is not None else None
            if problem:
                kind = LayerKind(int(d.kind)).name.lower()
                return f"layer {i} ({kind}) does not fit this gateware's buffers: {problem}"
            continue
        kind = LayerKind(int(d.kind)).name.lower() if d.kind in {k.value for k in LayerKind} \
            else str(d.kind)
        needs = [what for what, on in (
            (f"{kind} layers", int(d.kind) not in [k.value for k in KINDS_RUN]),
            (f"weight blocks of {d.g('exec.k_block')} k tiles",
             0 < d.g("exec.k_block") < d.k_tiles),
            ("writing a concat's channel range", d.g("exec.out_c_total")),
            ("a dilated pooling window", d.g("exec.pool_dilation")),
            ("a max-pool counting its padding", int(d.kind) == LayerKind.MAXPOOL.value
             and d.has(LayerFlags.COUNT_PAD)),
            ("a fused add beside a max-pool, a concat's range or input-channel blocks",
             d.has(LayerFlags.FUSE_ADD) and int(d.kind) != LayerKind.ADD.value)) if on]
        needs = ", ".join(needs) or "graph fields"
        return (f"layer {i} ({kind}) needs the whole-network hardware ({needs}); this gateware "
                f"runs conv and fully-connected layers (in bands of output rows when their input "
                f"does not fit), concats, residual adds, and max, average and global average pooling")
    return None


def layer_note(entry: dict) -> str:
    """The note `sense inspect` adds to a `describe` layer entry: with a fused add (FUSE_ADD)
    the conv that does the add, or the add a conv does; with INPUT_KEPT that its input stays in
    the IFM store; with an input gather its step; a batch's stacked images (each padded on its
    own, or separator rows); its hints (split weights, pair load); "" otherwise."""
    notes = []
    if entry.get("fused_add") is not None:
        notes.append(f"done by layer {entry['fused_add']}" if entry["kind"] == "add"
                     else f"+ add {entry['fused_add']}")
    if entry.get("input_kept"):
        notes.append("input kept")
    if entry.get("input_join"):
        notes.append("joined with layer {} at step {}".format(*entry["input_join"]))
    elif entry.get("input_gather"):
        notes.append(f"input gathered, step {entry['input_gather']}")
    if entry.get("images"):
        notes.append("stacked images of {} rows, each padded".format(entry["images"][0]))
    if entry.get("separators"):
        notes.append("separator rows: {1} of every {0}".format(*entry["separators"]))
    notes += [hint.replace("_", " ") for hint in entry.get("hints", [])]
    return f"  ({'; '.join(notes)})" if notes else ""


def describe(data: bytes, config: SenseConfig | None = None) -> dict:
    """A validated summary of an image for `sense inspect`: the graph, every layer's shapes,
    tiling and DRAM traffic (`host.plan`, one 128-bit port, the image's own fused adds and kept
    inputs, no on-chip hand-over: what the image itself encodes), and whether this gateware
    runs it."""
    qnet = unpack_image(data, config)
    h, descs = layer_table(data)
    cfg = _header_config(h)
    ins, _, outs = graph_shapes(qnet)
    fused = {i: i - 1 for i, d in enumerate(descs)
             if int(d.kind) == LayerKind.ADD.value and d.has(LayerFlags.FUSE_ADD)}
    kept = {i for i, d in enumerate(descs) if d.has(LayerFlags.INPUT_KEPT)}
    plan = plan_network(as_network(qnet), Target(cfg, resident=False), fused=fused, kept=kept)
    layers = []
    for i, (layer, d, est) in enumerate(zip(qnet.layers, descs, plan["layers"])):
        entry = {
            "index": i, "kind": layer.kind, "inputs": qnet.sources(i),
            "input": list(ins[i][0]), "output": list(outs[i]), "relu": layer.relu,
            "tiling": {"band_rows": d.g("exec.band_rows"), "k_block": d.g("exec.k_block"),
                       "c_blocks": d.g("exec.c_blocks"),
                       "concat_channels": ([d.g("exec.out_c_offset"), d.g("exec.out_c_total")]
                                           if d.g("exec.out_c_total") else None)},
            "dram_read_bytes": est["dram_read_bytes"], "dram_write_bytes": est["dram_write_bytes"],
            "cycles_estimate": est["cycles"], "runs_on_this_gateware": runs_here(d, cfg),
            "activations": [d.in_offset, d.out_offset],
            # a fused add: the add a conv does, or the conv doing an add
            "fused_add": (i + 1 if i + 1 in fused else fused[i] if i in fused else None),
            "input_kept": d.has(LayerFlags.INPUT_KEPT),
            # an input gather: the conv reads every in_step-th pixel of every in_step-th row
            "input_gather": 0 if d.in_split else d.in_step,
            # a joined conv (host.join): its second input and the step over it
            "input_join": [qnet.sources(i)[1], layer.join] if layer.join else None,
            # the descriptor's hints (LayerHints), by name
            "hints": [h.name.lower() for h in LayerHints if int(d.hints) & h.value],
            # a batch's stacked images (host.batch): each image's input and output rows
            # (padded on its own), or the output's separator rows (slot rows, image rows)
            "images": list(layer.image_rows) if layer.image_rows else None,
            "separators": list(layer.sep) if layer.sep else None,
        }
        if layer.kind in ("conv", "fc"):
            nonzero = int((layer.w != 0).sum())
            entry.update({
                "kernel": list(layer.w.shape[2:]), "stride": layer.stride, "pad": layer.pad,
                "pool": list(layer.pool) if layer.pool else None,
                "weights": int(layer.w.size), "nonzero_weights": nonzero,
                "density": nonzero / layer.w.size, "k_tiles": d.k_tiles, "p_tiles": d.p_tiles,
                "order": "ifm-stationary" if d.ifm_stationary else "weight-stationary",
                "weight_block": [d.weight_offset, d.weight_size],
                "param_block": [d.param_offset, d.param_size]})
        elif layer.kind in ("maxpool", "avgpool"):
            win = layer.pool
            entry["window"] = {"kernel": list(win.kernel), "stride": list(win.stride),
                               "pads": list(win.pads), "dilation": list(win.dilation),
                               "ceil_mode": win.ceil_mode}
        layers.append(entry)
    return {
        "format_version": h["version"], "image_bytes": h["image_size"],
        "crc32": f"{h['crc32']:#010x}", "hardware": cfg.to_dict(),
        "input_shape": list(qnet.input_shape), "input_scale": qnet.input_scale,
        # the first conv's input in blocks (host.s2d): block, padding baked in, blocked shape
        "input_s2d": None if qnet.s2d is None else {
            "block": qnet.s2d.block, "pad": qnet.s2d.pad, "shape": list(qnet.s2d.shape)},
        "host_ops": qnet.host_ops, "activation_bytes": h["act_size"],
        "dram_bytes": sum(e["dram_read_bytes"] + e["dram_write_bytes"] for e in layers),
        "runs_on_this_gateware": unsupported_problem(descs, cfg) is None,
        "unsupported": unsupported_problem(descs, cfg), "layers": layers,
    }


#: The names of SPEC/issue 4: ``unpack(pack(qnet, config))`` returns the same network.
pack = pack_image
unpack = unpack_image
