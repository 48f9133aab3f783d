"""Write a built-in network (host.zoo: alexnet, vgg16, vgg19, resnet50, googlenet, mini) as an
ONNX model with its random weights, and random calibration inputs beside it, so that the ONNX
path (`sense pack`, `sense sim --model FILE.onnx --calib FILE.npz`) can be run on it:

    .venv/bin/python scripts/export_network.py mini -o mini.onnx
    .venv/bin/sense sim --model mini.onnx --calib mini-calib.npz --images 4
"""

import argparse
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host import zoo  # noqa: E402
from host.model_files import save_onnx  # noqa: E402
from hw.files import atomic_write  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(zoo.NETWORKS))
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs (default 0)")
    parser.add_argument("--calib-images", type=int, default=16,
                        help="random calibration inputs written to NAME-calib.npz (default 16)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    if out.suffix != ".onnx":
        parser.error(f"{out}: give a file name ending in .onnx")
    net = zoo.build(args.name, seed=args.seed)
    save_onnx(net, out)
    calib = out.with_name(out.stem + "-calib.npz")
    x = np.random.default_rng(args.seed).normal(size=(args.calib_images, *net.input_shape))
    buf = io.BytesIO()
    np.savez(buf, x=x.astype(np.float32))
    atomic_write(calib, buf.getvalue())
    print(f"wrote {out} ({len(net.layers)} layers, input {net.input_shape}) and {calib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
