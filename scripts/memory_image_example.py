#!/usr/bin/env python3
"""Pack a tiny network and print its memory image annotated field by field: the worked example
in docs/memory-image.md comes from this script.

Network: input 3x3x3 (C, H, W); one 1x1 convolution, 3 -> 3 channels, ReLU; hardware 2x2 PEs,
M = 2 (sparse), so one of every two weights is kept.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host.image import (  # noqa: E402
    DESCRIPTOR_BYTES,
    HEADER,
    HEADER_BYTES,
    pack_image,
    weight_word_bytes,
)
from host import golden  # noqa: E402
from host.quant import QLayer, QNetwork  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.layouts import (  # noqa: E402
    layer_descriptor_layout,
    leaf_fields,
    param_entry_layout,
    unpack,
    unpack_array,
    weight_word_layout,  # noqa: E402
)


def main():
    config = SenseConfig(rows=2, cols=2, group=2, ifm_kib=1, weight_kib=1, ofm_kib=1,
                         max_channels=16)
    w = np.array([[5, 0, -3], [0, 7, 0], [-128, 0, 127]], np.int8).reshape(3, 3, 1, 1)
    mask = w != 0
    mask[1, 2] = True            # channel 2 alone in its (padded) group: keep it although it is 0
    layer = QLayer("conv", "conv", w, np.array([100, -50, 0], np.int32),
                   np.array([40000, 50000, 60000], np.int32), np.array([20, 21, 22], np.int32),
                   relu=True, in_scale=0.5, w_scale=np.array([0.25, 0.125, 0.0625]),
                   out_scale=2.0, mask=mask)
    qnet = QNetwork((3, 3, 3), [layer], 0.5, ["softmax"], group=2, name="example")
    image = pack_image(qnet, config)

    print(f"# {len(image)} bytes\n")
    print("## Header (bytes 0-63)\n")
    h = unpack(HEADER, int.from_bytes(image[:HEADER_BYTES], "little"))
    for path, off, width, _ in leaf_fields(HEADER):
        print(f"  {off // 8:3d}  {width // 8}  {path[0]:<18} {h[path[0]]:#x} ({h[path[0]]})")
    end = HEADER_BYTES + DESCRIPTOR_BYTES
    print(f"\n## Layer table (bytes 64-{end - 1}): descriptor of layer 0\n")
    descriptor = layer_descriptor_layout()
    d = unpack(descriptor, int.from_bytes(image[HEADER_BYTES:end], "little"))
    for path, off, width, _ in leaf_fields(descriptor):
        value = d
        for key in path:
            value = value[key]
        print(f"  {64 + off // 8:3d}  {width // 8:2d}  {'.'.join(path):<28} {value:#x} ({value})")
    print(f"\n## Weight block (bytes {d['weight_offset']}-"
          f"{d['weight_offset'] + d['weight_size'] - 1}): one {weight_word_bytes(config)}-byte "
          f"word per (k tile, group, slot)\n")
    words = np.frombuffer(image, np.uint8, d["weight_size"], d["weight_offset"]).reshape(-1, 16)
    leaves = unpack_array(weight_word_layout(config), words)
    for i, word in enumerate(words):
        kt, rest = divmod(i, 2)
        entries = ", ".join(f"row {r}: value {leaves[(r, 'value')][i]} pos {leaves[(r, 'pos')][i]}"
                            for r in range(config.rows))
        print(f"  word {i} (k tile {kt}, group {rest}, slot 0): {word.tobytes().hex(' ')}")
        print(f"      {entries}")
    print(f"\n## Parameter block (bytes {d['param_offset']}-"
          f"{d['param_offset'] + d['param_size'] - 1}): one 16-byte entry per output channel\n")
    rows = np.frombuffer(image, np.uint8, d["param_size"], d["param_offset"]).reshape(-1, 16)
    p = unpack_array(param_entry_layout(config), rows)
    for k, row in enumerate(rows):
        print(f"  channel {k}: {row.tobytes().hex(' ')}")
        print(f"      bias {p[('param', 'bias')][k]}, mult {p[('param', 'mult')][k]}, shift "
              f"{p[('param', 'shift')][k]}, w_scale bits {p[('w_scale',)][k]:#010x}")
    print("\n## Whole image\n")
    for off in range(0, len(image), 16):
        print(f"  {off:04x}: {image[off:off + 16].hex(' ')}")


def graph_example():
    """A small graph packed for `small`: a stem conv, a residual block (two 3x3 convs and the
    add), a two-branch concat (a 1x1 conv and a max-pool into a 1x1 conv), global average pool
    and FC. Prints what `sense inspect` prints, then every layer's graph fields."""
    from host.image import describe, layer_note, layer_table
    from host.nn import Layer, Network
    from host.quant import quantize

    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))

    win = golden.Window.of(3, 1, 1)
    net = Network((8, 24, 24), [
        Layer("conv", "stem", w(16, 8, 3, 3), np.zeros(16), pad=1, relu=True, inputs=[-1]),
        Layer("conv", "res_a", w(16, 16, 3, 3), np.zeros(16), pad=1, relu=True, inputs=[0]),
        Layer("conv", "res_b", w(16, 16, 3, 3), np.zeros(16), pad=1, inputs=[1]),
        Layer("add", "res_add", relu=True, inputs=[2, 0]),
        Layer("conv", "br_1x1", w(8, 16, 1, 1), np.zeros(8), relu=True, inputs=[3]),
        Layer("maxpool", "br_pool", pool=win, inputs=[3]),
        Layer("conv", "br_proj", w(8, 16, 1, 1), np.zeros(8), relu=True, inputs=[5]),
        Layer("concat", "cat", inputs=[4, 6]),
        Layer("gap", "gap", inputs=[7]),
        Layer("fc", "fc", w(10, 16), np.zeros(10), inputs=[8]),
    ], [], "graph")
    config = SenseConfig.preset("small")
    qnet = quantize(net, rng.normal(size=(4, 8, 24, 24)), group=config.group)
    image = pack_image(qnet, config)
    info = describe(image, config)
    print(f"# {len(image)} bytes, {len(info['layers'])} layers, activations "
          f"{info['activation_bytes']} bytes, DRAM traffic {info['dram_bytes']} bytes per run\n")
    print("  #  kind     inputs  input         output        tiling (rows/k/c)  DRAM bytes  here")
    for e in info["layers"]:
        t = e["tiling"]
        tiling = f"{t['band_rows'] or '-'}/{t['k_block'] or '-'}/{t['c_blocks'] or 1}"
        print(f"  {e['index']}  {e['kind']:<8} {','.join(map(str, e['inputs'])):<7} "
              f"{str(tuple(e['input'])):<13} {str(tuple(e['output'])):<13} {tiling:<18} "
              f"{e['dram_read_bytes'] + e['dram_write_bytes']:>10}  "
              f"{'yes' if e['runs_on_this_gateware'] else 'no'}{layer_note(e)}")
    print("\n  graph fields (nonzero) and activation offsets:")
    for i, d in enumerate(layer_table(image)[1]):
        fields = ", ".join(f"{k} {v}" for k, v in sorted(d.graph.items()))
        print(f"  {i}: in {d.in_offset} out {d.out_offset}; {fields}")
    print("\n  " + (info["unsupported"] or "today's gateware runs every layer"))


if __name__ == "__main__":
    if "--graph" in sys.argv:
        graph_example()
    else:
        main()
