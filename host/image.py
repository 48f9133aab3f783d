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
from dataclasses import dataclass

import numpy as np

from host import golden
from host.buffers import (ConvLayer, buffer_problem, layer_limit_problem, weight_records,
                          weight_slots_of)
from host.perf import layer_estimate
from host.quant import QLayer, QNetwork
from host.sparse import ungroup
from hw.config import FORMAT_VERSION, SenseConfig
from hw.layouts import (
    BEAT_BYTES,
    BLOCK_ALIGN,
    DESCRIPTOR_BYTES,
    LayerDescriptor,
    LayerFlags,
    LayerKind,
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

__all__ = ["ImageError", "pack", "unpack", "pack_image", "unpack_image", "read_header",
           "describe", "plan_layer", "layer_table", "shapes_of", "conv_output_size", "MAGIC",
           "HEADER_BYTES", "DESCRIPTOR_BYTES"]

HEADER = image_header_layout()
HEADER_BYTES = record_bytes(HEADER)
HEADER_CRC_SPAN = 56  # header_crc32 covers bytes [0, 56); it sits at [56, 60), crc32 at [60, 64)
FLAG_SPARSE = 1
HOST_SOFTMAX = 1


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


def plan_layer(in_shape, layer: QLayer, config: SenseConfig, out_shape) -> LayerPlan:
    k, _, r, s = layer.w.shape
    _, h, w = in_shape
    oh = golden.output_size(h, r, layer.stride, layer.pad)
    ow = golden.output_size(w, s, layer.stride, layer.pad)
    k_tiles = -(-k // config.rows)
    p_tiles = -(-(oh * ow) // config.cols)
    ifm = act_bytes(in_shape, config.group)
    slots = config.cycles_per_group
    groups = r * s * (-(-in_shape[0] // config.group))
    weights = k_tiles * groups * slots * weight_word_bytes(config)
    ofm = act_bytes(out_shape, config.group)
    ifm_capacity = config.ifm_kib * 1024 // config.cols
    weight_capacity = config.weight_depth * weight_word_bytes(config)
    ws = weights + ifm * (1 if ifm <= ifm_capacity else k_tiles) + ofm
    blocks = -(-ifm // ifm_capacity)
    is_ = ifm + weights * (1 if weights <= weight_capacity else blocks) + ofm
    plan = LayerPlan(k_tiles, p_tiles, ifm, weights, ofm, ws, is_)
    if ws == is_ and weights <= weight_capacity and k_tiles > 1 and ifm <= ifm_capacity:
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
        k_tiles=-(-k // config.rows), p_tiles=-(-(oh * ow) // config.cols))


def _model_cycles(in_shape, layer: QLayer, config: SenseConfig, d: LayerDescriptor) -> int:
    """The performance model's cycles for a layer in one order, on an input without zeros,
    without its max-pool pass (the same in both orders)."""
    conv = ConvLayer(x=np.ones(in_shape, np.int8), w=layer.w, bias=layer.bias, mult=layer.mult,
                     shift=layer.shift, stride=layer.stride, pad=layer.pad)
    return layer_estimate(d.replace(flags=int(d.flags) & ~LayerFlags.POOL.value), conv,
                          config)["cycles"]


# -- pack -----------------------------------------------------------------------------------------------

def conv_output_size(in_shape, layer: QLayer) -> tuple:
    """(OH, OW) of a layer's convolution, before any max-pool."""
    _, h, w = in_shape
    _, _, r, s = layer.w.shape
    return (golden.output_size(h, r, layer.stride, layer.pad),
            golden.output_size(w, s, layer.stride, layer.pad))


def shapes_of(qnet: QNetwork) -> list[tuple]:
    """(C, H, W) of the network's input and of every layer's output (after max-pool)."""
    shapes = [tuple(qnet.input_shape)]
    for layer in qnet.layers:
        k = layer.w.shape[0]
        oh, ow = conv_output_size(shapes[-1], layer)
        if layer.pool:
            pk, ps, pp = layer.pool
            oh, ow = golden.output_size(oh, pk, ps, pp), golden.output_size(ow, pk, ps, pp)
        shapes.append((k, oh, ow))
    return shapes


def _check_layer(i, layer: QLayer, in_shape, config: SenseConfig):
    problem = layer_limit_problem(in_shape, layer.w.shape, layer.stride, layer.pad, layer.bias,
                                  config, layer.pool)
    if problem:
        raise ImageError(f"layer {i} ({layer.name}): {problem}")


def pack_image(qnet: QNetwork, config: SenseConfig, order: str = "auto") -> bytes:
    """The memory image of `qnet` for the hardware `config`. `order` is each layer's tile loop
    order: "auto" (the compiler pass, `plan_layer`), or "weight" / "ifm" for every layer."""
    if order not in ("auto", "weight", "ifm"):
        raise ImageError(f"order must be auto, weight or ifm, not {order!r}")
    if config.sparse and qnet.group != config.group:
        have = f"pruned for M={qnet.group}" if qnet.group else "dense (not pruned)"
        raise ImageError(f"the network is {have}, the configuration is sparse with "
                         f"M={config.group}: quantize it with group={config.group}")
    if not qnet.layers:
        raise ImageError("the network has no layers")
    shapes = shapes_of(qnet)
    table_offset = HEADER_BYTES
    table_size = DESCRIPTOR_BYTES * len(qnet.layers)
    offset = _align(table_offset + table_size)
    data_offset = offset
    # A max-pooled layer first writes its whole convolution output to its output buffer.
    conv_shapes = [(layer.w.shape[0],) + conv_output_size(shapes[i], layer)
                   for i, layer in enumerate(qnet.layers)]
    act_max = _align(max(act_bytes(s, config.group) for s in shapes + conv_shapes))
    blocks, descriptors = [], []
    for i, layer in enumerate(qnet.layers):
        in_shape = shapes[i]
        _check_layer(i, layer, in_shape, config)
        k, c, r, s = layer.w.shape
        slots = weight_slots_of(layer.w, config, mask=layer.mask if config.sparse else None,
                                name=f"layer {i} ({layer.name})")
        weights = weight_records(slots, config)
        w_scale = layer.w_scale if layer.w_scale is not None else np.ones(k)
        params = pack_array(param_entry_layout(config), {
            ("param", "bias"): layer.bias, ("param", "mult"): layer.mult,
            ("param", "shift"): layer.shift,
            ("w_scale",): np.asarray(w_scale, np.float32).view(np.uint32),
        }, k)
        plan = plan_layer(in_shape, layer, config, shapes[i + 1])
        chosen = plan.order if order == "auto" else order
        w_off = offset
        offset = _align(offset + weights.nbytes)
        p_off = offset
        offset = _align(offset + params.nbytes)
        blocks += [(w_off, weights.tobytes()), (p_off, params.tobytes())]
        d = layer_geometry(in_shape, layer, config)
        d = d.replace(
            flags=int(d.flags) | LayerFlags.IFM_STATIONARY.value * (chosen == "ifm"),
            weight_offset=w_off, weight_size=weights.nbytes,
            param_offset=p_off, param_size=params.nbytes,
            in_offset=act_max * (i % 2), out_offset=act_max * ((i + 1) % 2),
            out_scale=_f32_bits(layer.out_scale))
        problem = buffer_problem(d, config)
        if problem:
            raise ImageError(f"layer {i} ({layer.name}) does not fit the {config_name(config)} "
                             f"buffers: {problem}")
        descriptors.append(d.to_bytes())
    body = bytearray(offset - HEADER_BYTES)
    body[:table_size] = b"".join(descriptors)
    for off, blob in blocks:
        body[off - HEADER_BYTES: off - HEADER_BYTES + len(blob)] = blob
    c, h, w = qnet.input_shape
    header = pack_record(HEADER, {
        "magic": MAGIC, "version": FORMAT_VERSION, "header_size": HEADER_BYTES,
        "rows": config.rows, "cols": config.cols, "group": config.group,
        "flags": FLAG_SPARSE * config.sparse, "ifm_kib": config.ifm_kib,
        "weight_kib": config.weight_kib, "ofm_kib": config.ofm_kib,
        "layer_count": len(qnet.layers),
        "max_channels_log2": config.max_channels.bit_length() - 1,
        "host_ops": HOST_SOFTMAX * ("softmax" in qnet.host_ops),
        "input_c": c, "input_h": h, "input_w": w,
        "table_offset": table_offset, "table_size": table_size,
        "data_offset": data_offset, "data_size": offset - data_offset, "image_size": offset,
        "act_size": 2 * act_max, "input_scale": _f32_bits(qnet.input_scale),
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
    # Every field but the clock shapes the image (the clock only changes how fast it runs).
    fields = ("rows", "cols", "group", "sparse", "ifm_kib", "weight_kib", "ofm_kib",
              "max_channels")
    diffs = [f"{f} {getattr(hw, f)} (image) vs {getattr(config, f)} (hardware)"
             for f in fields if config is not None and getattr(hw, f) != getattr(config, f)]
    if diffs:
        raise ImageError("image was packed for other hardware: " + "; ".join(diffs))
    return h


def _header_config(h) -> SenseConfig:
    try:
        return SenseConfig(rows=h["rows"], cols=h["cols"], group=h["group"],
                           sparse=bool(h["flags"] & FLAG_SPARSE), ifm_kib=h["ifm_kib"],
                           weight_kib=h["weight_kib"], ofm_kib=h["ofm_kib"],
                           max_channels=1 << min(h["max_channels_log2"], 63))
    except ValueError as e:
        raise ImageError(f"image header names impossible hardware: {e}") from None


def layer_table(data: bytes, config: SenseConfig | None = None
                ) -> tuple[dict, list[LayerDescriptor]]:
    """(header as a dict of its layout's fields, descriptors) of a validated image."""
    h = read_header(data, config)
    return h, _descriptors(bytes(data), h)


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


def unpack_image(data: bytes, config: SenseConfig | None = None) -> QNetwork:
    """The network an image holds, after validating every field; with `config`, also that it
    was packed for that hardware. Inverse of pack_image (layer names are not stored)."""
    h = read_header(data, config)
    data = bytes(data)
    cfg = _header_config(h)
    m = cfg.group
    shape = (h["input_c"], h["input_h"], h["input_w"])
    if min(shape) < 1:
        raise ImageError(f"input shape {shape} is empty")
    layers = []
    in_scale = _bits_f32(h["input_scale"])
    word = weight_word_layout(cfg)
    word_bytes = weight_word_bytes(cfg)
    for i, d in enumerate(_descriptors(data, h)):
        name = f"layer {i}"
        if d.kind not in {k.value for k in LayerKind}:
            raise ImageError(f"{name}: kind {d.kind} is not conv (0) or fc (1)")
        if d.unknown_flags:
            raise ImageError(f"{name}: unknown flags {d.flags:#x}")
        c, k, r, s = d.in_channels, d.out_channels, d.kernel_h, d.kernel_w
        if (c, d.in_h, d.in_w) != shape:
            raise ImageError(f"{name}: input shape {(c, d.in_h, d.in_w)} does not match "
                             f"the previous layer's output {shape}")
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
        problem = buffer_problem(d, cfg)
        if problem:
            raise ImageError(f"{name} does not fit the buffers of the hardware it was packed "
                             f"for: {problem}")
        pool = None
        if d.pool:
            pool = (d.pool_kernel, d.pool_stride, d.pool_pad)
            if min(pool[:2]) < 1 or pool[2] >= pool[0]:
                raise ImageError(f"{name}: malformed max-pool {pool}")
            oh, ow = (golden.output_size(oh, pool[0], pool[1], pool[2]),
                      golden.output_size(ow, pool[0], pool[1], pool[2]))
            if oh < 1 or ow < 1:
                raise ImageError(f"{name}: max-pool {pool} does not fit its input")
        raw = np.frombuffer(data, np.uint8, count=d.weight_size, offset=d.weight_offset)
        leaves = unpack_array(word, raw.reshape(words, word_bytes))
        w, mask = _weights_from_slots(leaves, cfg, k, c, r, s)
        rawp = np.frombuffer(data, np.uint8, count=d.param_size, offset=d.param_offset)
        p = unpack_array(param_entry_layout(cfg), rawp.reshape(k, BEAT_BYTES))
        shift = p[("param", "shift")]
        if shift.min() < golden.SHIFT_RANGE[0] or shift.max() > golden.SHIFT_RANGE[1]:
            raise ImageError(f"{name}: requantization shift outside {golden.SHIFT_RANGE}")
        out_scale = _bits_f32(d.out_scale)
        layers.append(QLayer(
            "fc" if d.layer_kind == LayerKind.FC else "conv", name, w,
            p[("param", "bias")].astype(np.int32), p[("param", "mult")].astype(np.int32),
            shift.astype(np.int32), d.stride, d.pad, d.relu, pool,
            in_scale, np.array([_bits_f32(v) for v in p[("w_scale",)]]), out_scale, mask))
        in_scale = out_scale
        shape = (k, oh, ow)
    host_ops = ["softmax"] if h["host_ops"] & HOST_SOFTMAX else []
    return QNetwork((h["input_c"], h["input_h"], h["input_w"]), layers,
                    _bits_f32(h["input_scale"]), host_ops, m if cfg.sparse else None, "image")


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


def describe(data: bytes, config: SenseConfig | None = None) -> dict:
    """A validated summary of an image for `sense inspect`."""
    qnet = unpack_image(data, config)
    h = read_header(data)
    cfg = _header_config(h)
    layers = []
    shapes = shapes_of(qnet)
    for i, (layer, d) in enumerate(zip(qnet.layers, _descriptors(bytes(data), h))):
        plan = plan_layer(shapes[i], layer, cfg, shapes[i + 1])
        nonzero = int((layer.w != 0).sum())
        layers.append({
            "index": i, "kind": layer.kind, "input": list(shapes[i]), "output": list(shapes[i + 1]),
            "kernel": list(layer.w.shape[2:]), "stride": layer.stride, "pad": layer.pad,
            "relu": layer.relu, "pool": list(layer.pool) if layer.pool else None,
            "weights": int(layer.w.size), "nonzero_weights": nonzero,
            "density": nonzero / layer.w.size,
            "k_tiles": d.k_tiles, "p_tiles": d.p_tiles,
            "order": "ifm-stationary" if d.ifm_stationary else "weight-stationary",
            "dram_bytes_estimate": plan.traffic,
            "cycles_model": {"weight-stationary": plan.cycles_weight_stationary,
                             "ifm-stationary": plan.cycles_ifm_stationary},
            "weight_block": [d.weight_offset, d.weight_size],
            "param_block": [d.param_offset, d.param_size],
            "activations": [d.in_offset, d.out_offset],
        })
    return {
        "format_version": h["version"], "image_bytes": h["image_size"], "crc32": f"{h['crc32']:#010x}",
        "hardware": cfg.to_dict(), "input_shape": list(qnet.input_shape),
        "input_scale": qnet.input_scale, "host_ops": qnet.host_ops,
        "activation_bytes": h["act_size"], "layers": layers,
    }


#: The names of SPEC/issue 4: ``unpack(pack(qnet, config))`` returns the same network.
pack = pack_image
unpack = unpack_image
