"""The bundled models and their data: scikit-learn's 8x8 digits, stored in
host/models/digits-data.npz (made by scripts/train_digits.py) so that nothing downloads and
scikit-learn is not needed at run time. The models ship inside the package (package data), so an
installed `sense` finds them without the source tree."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np

__all__ = ["MODELS", "DATA", "DEFAULT_MODEL", "load_split", "is_bundled"]

MODELS = Path(str(files("host") / "models"))
DATA = MODELS / "digits-data.npz"
DEFAULT_MODEL = MODELS / "digits.onnx"


def load_split(path=DATA):
    """(x_train, y_train, x_test, y_test); x float64 (N, 1, 8, 8) in [0, 1], y int64."""
    with np.load(path) as z:
        x = z["x"].astype(np.float64).reshape(-1, 1, 8, 8) / 16.0
        y = z["y"].astype(np.int64)
        test = z["test"].astype(bool)
    return x[~test], y[~test], x[test], y[test]


def is_bundled(model) -> bool:
    """Whether `model` is one of the bundled digits models (their data set is known)."""
    path = Path(model).resolve()
    return path.parent == MODELS.resolve() and path.name.startswith("digits")
