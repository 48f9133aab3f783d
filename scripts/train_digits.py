#!/usr/bin/env python3
"""Train the bundled digits CNN and its balanced-sparse fine-tuned variants (needs torch:
`pip install torch==2.13.0 scikit-learn`). Writes host/models/digits-data.npz, host/models/digits.onnx and
host/models/digits-m{4,8,16}.onnx. Deterministic for a given seed on one machine.

Model: 1x8x8 -> conv 3x3 16 (pad 1) -> ReLU -> conv 3x3 32 (pad 1) -> ReLU -> max-pool 2
       -> FC 512 -> 10 (softmax on the host).
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

from host.digits import DATA, MODELS, load_split  # noqa: E402
from host.finetune import finetune, fit  # noqa: E402
from host.model_files import save_onnx  # noqa: E402
from host.nn import Layer, Network  # noqa: E402
from host.quant import predict_float, prune_network  # noqa: E402


def make_data(seed):
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    test = np.zeros(len(digits.target), bool)
    test[rng.permutation(len(test))[: len(test) // 4]] = True
    np.savez_compressed(DATA, x=digits.data.astype(np.uint8), y=digits.target.astype(np.uint8),
                        test=test)


class Digits(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc(x.flatten(1))


def to_network(model, name):
    p = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    return Network((1, 8, 8), [
        Layer("conv", "conv1", p["c1.weight"], p["c1.bias"], pad=1, relu=True),
        Layer("conv", "conv2", p["c2.weight"], p["c2.bias"], pad=1, relu=True, pool=(2, 2, 0)),
        Layer("fc", "fc", p["fc.weight"], p["fc.bias"]),
    ], ["softmax"], name=name)


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(torch.tensor(x, dtype=torch.float32)).argmax(1).numpy() == y).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--finetune-epochs", type=int, default=30)
    args = ap.parse_args()
    MODELS.mkdir(exist_ok=True)
    make_data(args.seed)
    xtr, ytr, xte, yte = load_split()
    torch.manual_seed(args.seed)
    model = Digits()
    fit(model, xtr, ytr, epochs=args.epochs, lr=2e-3, seed=args.seed)
    print(f"float: test accuracy {accuracy(model, xte, yte):.4f}")
    dense = to_network(model, "digits")
    save_onnx(dense, MODELS / "digits.onnx")
    for m in (4, 8, 16):
        pruned, masks = prune_network(dense, m)
        before = float((predict_float(pruned, xte) == yte).mean())
        tuned = finetune(pruned, masks, xtr, ytr, epochs=args.finetune_epochs, lr=5e-4,
                         seed=args.seed)
        after = float((predict_float(tuned, xte) == yte).mean())
        print(f"M={m}: pruned {before:.4f}, fine-tuned {after:.4f}")
        save_onnx(replace(tuned, name=f"digits-m{m}"), MODELS / f"digits-m{m}.onnx")


if __name__ == "__main__":
    main()
