"""Check the performance model against the RTL on blocks of the real networks at their real
sizes: a ResNet-50 bottleneck (layer3.1: 14x14x1024 in, 1x1 to 256, 3x3, 1x1 to 1024, the add
with its input fused into the last conv), GoogLeNet's inception 3a (28x28x192 in: 1x1 64;
1x1 96 then 3x3 128; 1x1 16 then 5x5 32; 3x3 stride-1 max-pool then 1x1 32; concat),
ResNet-50's stem (7x7 stride 2 at 224x224x3 with its fused 3x3 stride-2 max-pool) and its
layer2.0 and layer4.0 (stride 2, projection shortcut, the add fused), random
weights pruned and quantized as `sense pack` does, packed and ordered as `sense pack` does
(fused add, kept inputs).

The grid is 16x16 by default (--rows 64 --cols 32: the zcu102's own, about 5 minutes), with
everything else of the `zcu102` preset: its buffers (256 KiB IFM, 1 MiB weights), the weight
port, PE pairs. The system tests check the model at test size
(scripts/check_model.py); this checks it on layers of the size the README's whole-network
figures are about. None of the blocks is in any fit. Writes docs/results/model-check-blocks.json:
per run the RTL cycles, the model's, the error, whether every output is bit-exact and the DRAM
bytes exact. About three minutes at 16x16 (the build is most of it), nine at 64x32.

    .venv/bin/python scripts/check_model_blocks.py [--rows 64 --cols 32]

With --rows and --cols another grid (the zcu102's own: 64x32; the report goes to
model-check-blocks-ROWSxCOLS.json).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host import golden  # noqa: E402
from host.image import pack_image  # noqa: E402
from host.nn import Layer, Network, group_readers  # noqa: E402
from host.quant import quantize, quantize_input  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402
from sim.model_run import format_row, model_rows, verdict  # noqa: E402
from sim.networks import conv_layer  # noqa: E402
from sim.sysrun import DESIGN_MEM, run_system  # noqa: E402

GRID = (16, 16)


def bottleneck(rng):
    """ResNet-50's layer3.1: the identity-shortcut bottleneck at 14x14x1024."""
    return Network((1024, 14, 14), [
        conv_layer(rng, "conv1", 256, 1024, 1, [-1]),
        conv_layer(rng, "conv2", 256, 256, 3, [0]),
        conv_layer(rng, "conv3", 1024, 256, 1, [1], relu=False),
        Layer("add", "add", relu=True, inputs=[2, -1]),
    ], [], "resnet50-layer3.1")


def stem(rng):
    """ResNet-50's conv1: 7x7 stride 2 at 224x224x3 with its fused 3x3 stride-2 max-pool."""
    w = rng.normal(size=(64, 3, 7, 7)) / np.sqrt(3 * 49)
    return Network((3, 224, 224), [
        Layer("conv", "conv1", w, rng.normal(size=64) * 0.1, 2, 3, True, (3, 2, 1), [-1]),
    ], [], "resnet50-conv1")


def projection(rng, c, width, size, name):
    """A ResNet-50 block with the projection shortcut (stride 2 on the 3x3 and the shortcut)."""
    return Network((c, size, size), [
        conv_layer(rng, "conv1", width, c, 1, [-1]),
        conv_layer(rng, "conv2", width, width, 3, [0], stride=2),
        conv_layer(rng, "conv3", 4 * width, width, 1, [1], relu=False),
        conv_layer(rng, "downsample", 4 * width, c, 1, [-1], relu=False, stride=2),
        Layer("add", "add", relu=True, inputs=[2, 3]),
    ], [], name)


def layer2_0(rng):
    """ResNet-50's layer2.0: 56x56x256 in, width 128, stride 2, projection shortcut."""
    return projection(rng, 256, 128, 56, "resnet50-layer2.0")


def layer4_0(rng):
    """ResNet-50's layer4.0: 14x14x1024 in, width 512, stride 2, projection shortcut."""
    return projection(rng, 1024, 512, 14, "resnet50-layer4.0")


def inception_3a(rng):
    """GoogLeNet's inception 3a at 28x28x192."""
    return Network((192, 28, 28), [
        conv_layer(rng, "1x1", 64, 192, 1, [-1]),
        conv_layer(rng, "3x3_reduce", 96, 192, 1, [-1]),
        conv_layer(rng, "3x3", 128, 96, 3, [1]),
        conv_layer(rng, "5x5_reduce", 16, 192, 1, [-1]),
        conv_layer(rng, "5x5", 32, 16, 5, [3]),
        Layer("maxpool", "pool", pool=golden.Window.of(3, 1, 1), inputs=[-1]),
        conv_layer(rng, "pool_proj", 32, 192, 1, [5]),
        Layer("concat", "output", inputs=[0, 2, 4, 6]),
    ], [], "googlenet-3a")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=GRID[0])
    p.add_argument("--cols", type=int, default=GRID[1])
    args = p.parse_args(argv)
    config = SenseConfig.preset("zcu102").replace(rows=args.rows, cols=args.cols)
    suffix = "" if (args.rows, args.cols) == GRID else f"-{args.rows}x{args.cols}"
    out = ROOT / f"docs/results/model-check-blocks{suffix}.json"
    rng = np.random.default_rng(3)
    steps, runs = [], []
    for build in (bottleneck, inception_3a, stem, layer2_0, layer4_0):
        net = group_readers(build(rng))           # the order `sense pack` gives it
        qnet = quantize(net, rng.normal(size=(4,) + net.input_shape), group=config.group)
        x = quantize_input(qnet, rng.normal(size=(1,) + net.input_shape))
        image = pack_image(qnet, config)
        steps.append({"op": "run", "image": image, "x": x, "name": net.name})
        runs.append((qnet, x, image))
    t0 = time.perf_counter()
    res = run_system(config, steps, name="check-model-blocks", dram="design",
                     mem_size=DESIGN_MEM)
    seconds = time.perf_counter() - t0
    rows = []
    for step, (qnet, x, image) in zip(res["steps"], runs):
        rows += model_rows(step, qnet, x, image, config)
        print(format_row(rows[-1]))
    errors = [abs(r["error"]) for r in rows]
    command = "python scripts/check_model_blocks.py" + (
        f" --rows {args.rows} --cols {args.cols}" if suffix else "")
    report = {"command": command, "config": config.to_dict(),
              "dram": "design", "seconds": seconds, "runs": rows,
              "max_abs_error": max(errors)}
    atomic_write(out, json.dumps(report, indent=2) + "\n")
    print(f"max error {report['max_abs_error']:.2%} over {len(rows)} runs; wrote "
          f"{out.relative_to(ROOT)} ({seconds:.0f} s)")
    return verdict(rows)


if __name__ == "__main__":
    sys.exit(main())
