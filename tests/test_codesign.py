"""The pieces of the co-design study (scripts/codesign.py, issue 16): the bundled MNIST split,
the bundled-model lookup, and the performance model without skipping (weight sparsity alone)."""

import numpy as np

from host.digits import DEFAULT_MODEL, MODELS, bundled_dataset, load_split
from host.estimate import accelerator_estimate
from host.pipeline import prepare_model
from host.quant import quantize_input
from hw.config import SenseConfig


def test_mnist_split_is_stratified_and_disjoint():
    xc, yc, xt, yt = load_split("mnist")
    assert xc.shape == (500, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    assert (np.bincount(yc) == 50).all() and (np.bincount(yt) == 100).all()
    assert 0.0 <= xt.min() and xt.max() <= 1.0 and xt.max() == 1.0
    calib = {x.tobytes() for x in xc}
    assert not any(x.tobytes() in calib for x in xt)


def test_bundled_dataset_lookup(tmp_path):
    assert bundled_dataset(DEFAULT_MODEL) == "digits"
    assert bundled_dataset(MODELS / "mnist-m4.onnx") == "mnist"
    assert bundled_dataset(MODELS / "mnist-m4-cl.onnx") == "mnist"
    (tmp_path / "mnist.onnx").write_bytes(b"")
    assert bundled_dataset(tmp_path / "mnist.onnx") is None
    assert bundled_dataset("resnet50") is None


def test_estimate_without_skipping_is_weight_sparsity_alone():
    """skip=False issues every group: no group skipped, never fewer cycles, and the same
    cycles as an input without zeros (nothing to skip), on the bundled MNIST model."""
    config = SenseConfig.preset("small")
    prepared = prepare_model(config, MODELS / "mnist-m4.onnx", pruned=True)
    _, _, xt, _ = load_split("mnist")
    xq = quantize_input(prepared.qnet, xt[:1])[0]
    per, per_ns = [], []
    with_skip = accelerator_estimate(prepared.image, xq, config, per_layer=per)
    without = accelerator_estimate(prepared.image, xq, config, per_layer=per_ns, skip=False)
    assert with_skip["groups_skipped"] > 0 and without["groups_skipped"] == 0
    assert without["cycles"] > with_skip["cycles"]
    assert all(a["cycles"] <= b["cycles"] for a, b in zip(per, per_ns))
    # An input without zeros: the first layer skips only the taps that fall in the padding,
    # the same groups as for any other input without zeros.
    full = np.where(xq == 0, 1, xq).astype(np.int8)
    a, b = [], []
    accelerator_estimate(prepared.image, full, config, per_layer=a)
    accelerator_estimate(prepared.image, np.full_like(full, 7), config, per_layer=b)
    assert 0 < a[0]["groups_skipped"] == b[0]["groups_skipped"] < per[0]["groups_skipped"]
    assert a[0]["cycles"] == b[0]["cycles"]
