#!/usr/bin/env python3
"""Test accuracy of the bundled digits model: float, int8 dense, and int8 balanced-sparse at
M = 4, 8, 16 without fine-tuning (pruned by magnitude from the dense model) and with it
(host/models/digits-m{M}.onnx from scripts/train_digits.py, loaded in --pruned mode). Calibration on
the training split. Writes JSON (default docs/results/accuracy.json) and prints it.

    .venv/bin/python scripts/accuracy.py [--json FILE]
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.digits import MODELS, load_split  # noqa: E402
from host.model_files import load_model  # noqa: E402
from host.quant import predict_float, predict_int, quantize  # noqa: E402
from hw.files import atomic_write  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", default=str(ROOT / "docs" / "results" / "accuracy.json"))
    args = ap.parse_args()
    xtr, ytr, xte, yte = load_split()
    dense = load_model(MODELS / "digits.onnx")
    acc = lambda pred: float((pred == yte).mean())  # noqa: E731
    result = {"test_images": int(len(yte)), "calibration_images": int(len(ytr)),
              "float": acc(predict_float(dense, xte)),
              "int8_dense": acc(predict_int(quantize(dense, xtr), xte)), "int8_sparse": {}}
    for m in (4, 8, 16):
        tuned = load_model(MODELS / f"digits-m{m}.onnx")
        result["int8_sparse"][f"M{m}"] = {
            "pruned": acc(predict_int(quantize(dense, xtr, group=m), xte)),
            "fine_tuned": acc(predict_int(quantize(tuned, xtr, group=m, pruned=True), xte)),
            "fine_tuned_float": acc(predict_float(tuned, xte)),
        }
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(args.json, text)
    print(text, end="")


if __name__ == "__main__":
    main()
