#!/usr/bin/env python3
"""Test accuracy of the bundled models (the digits CNN and the MNIST CNN), through the same code
as `sense eval` (host.evaluate): float, int8 dense, and int8 balanced-sparse at M = 4, 8, 16
without fine-tuning (pruned by magnitude from the dense model) and with it
(host/models/{digits,mnist}-m{M}.onnx from scripts/train_digits.py and scripts/train_mnist.py,
evaluated in --pruned mode), and MNIST's co-design variants (mnist-m4-cl: clustered, then pruned
and fine-tuned; mnist-m4-gl*: plus the activation group lasso). Calibration on each model's
calibration split. Writes JSON (default docs/results/accuracy.json) and prints it.

    .venv/bin/python scripts/accuracy.py [--json FILE]
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.digits import MODELS, load_split  # noqa: E402
from host.evaluate import evaluate  # noqa: E402
from host.model_files import load_model  # noqa: E402
from hw.files import atomic_write  # noqa: E402


def table(dataset: str) -> dict:
    xtr, _, xte, yte = load_split(dataset)
    dense = load_model(MODELS / f"{dataset}.onnx")
    first = evaluate(dense, xte, yte, xtr, 4)
    result = {"test_images": first["images"], "calibration_images": first["calibration_images"],
              "float": first["float"], "int8_dense": first["int8_dense"], "int8_sparse": {}}
    for m in (4, 8, 16):
        pruned = first if m == 4 else evaluate(dense, xte, yte, xtr, m)
        tuned = evaluate(load_model(MODELS / f"{dataset}-m{m}.onnx"), xte, yte, xtr, m,
                         pruned=True)
        result["int8_sparse"][f"M{m}"] = {"pruned": pruned["int8_sparse"],
                                          "fine_tuned": tuned["int8_sparse"],
                                          "fine_tuned_float": tuned["float_pruned"]}
    for path in sorted(MODELS.glob(f"{dataset}-m4-*.onnx")):
        tuned = evaluate(load_model(path), xte, yte, xtr, 4, pruned=True)
        result.setdefault("codesign", {})[path.stem] = {
            "int8_sparse": tuned["int8_sparse"], "float": tuned["float_pruned"]}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(ROOT / "docs" / "results" / "accuracy.json"))
    args = ap.parse_args()
    result = {dataset: table(dataset) for dataset in ("digits", "mnist")}
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(args.json, text)
    print(text, end="")


if __name__ == "__main__":
    main()
