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

from host.image import HEADER, HEADER_BYTES, pack_image, weight_word_bytes  # noqa: E402
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
    print("\n## Layer table (bytes 64-127): descriptor of layer 0\n")
    descriptor = layer_descriptor_layout()
    d = unpack(descriptor, int.from_bytes(image[64:128], "little"))
    for path, off, width, _ in leaf_fields(descriptor):
        print(f"  {64 + off // 8:3d}  {width // 8}  {path[0]:<16} {d[path[0]]:#x} ({d[path[0]]})")
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


if __name__ == "__main__":
    main()
