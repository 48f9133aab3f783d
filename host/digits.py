"""The bundled model's data: scikit-learn's 8x8 digits, stored in models/digits-data.npz (made by
scripts/train_digits.py) so that nothing downloads and scikit-learn is not needed at run time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["MODELS", "DATA", "DEFAULT_MODEL", "load_split"]

MODELS = Path(__file__).resolve().parent.parent / "models"
DATA = MODELS / "digits-data.npz"
DEFAULT_MODEL = MODELS / "digits.onnx"


def load_split(path=DATA):
    """(x_train, y_train, x_test, y_test); x float64 (N, 1, 8, 8) in [0, 1], y int64."""
    with np.load(path) as z:
        x = z["x"].astype(np.float64).reshape(-1, 1, 8, 8) / 16.0
        y = z["y"].astype(np.int64)
        test = z["test"].astype(bool)
    return x[~test], y[~test], x[test], y[test]
