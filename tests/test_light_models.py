"""The onnx wheel's model-zoo graphs (onnx/backend/test/data/light): every one that uses only the
operators Sense imports is imported as a layer graph whose float forward equals onnxruntime's on a
random input; the others are refused naming the operator. The light models build their weights
with ConstantOfShape (constant values); the test replaces each with random weights first, so the
comparison exercises real arithmetic."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from host.model_files import load_model
from host.nn import ModelError, forward

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def randomized(name: str, tmp_path, seed: int = 0) -> Path:
    """The light model with every ConstantOfShape replaced by random values: He-scaled weights,
    and values in 0.5..1.5 for one-dimensional parameters (batch-norm variances stay positive)."""
    model = onnx.load(LIGHT / f"{name}.onnx")
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = [int(v) for v in inits[node.input[0]]]
            if len(shape) > 1:
                value = rng.standard_normal(shape, np.float32) * np.sqrt(2 / np.prod(shape[1:]))
            else:
                value = rng.uniform(0.5, 1.5, shape)
            node = helper.make_node("Constant", [], list(node.output),
                                    value=numpy_helper.from_array(value.astype(np.float32)))
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


IMPORTED = {  # name: layer kinds imported (LRN dropped on request where the model has it)
    "light_resnet50": {"conv": 53, "add": 16, "avgpool": 1, "fc": 1},
    "light_inception_v1": {"conv": 57, "concat": 9, "maxpool": 11, "avgpool": 1, "fc": 1},
    "light_squeezenet": {"conv": 26, "concat": 8, "maxpool": 2, "gap": 1},
    "light_bvlc_alexnet": {"conv": 5, "maxpool": 1, "fc": 3},
    "light_zfnet512": {"conv": 5, "fc": 3},
    "light_vgg19": {"conv": 16, "fc": 3},
}
HAS_LRN = {"light_inception_v1", "light_bvlc_alexnet", "light_zfnet512"}


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_light_model_imports_and_equals_onnxruntime(name, tmp_path):
    path = randomized(name, tmp_path)
    if name in HAS_LRN:
        # LRN has no Sense equivalent: refused unless the user asks to drop it; the comparison
        # then runs against the model with the LRN nodes made identities.
        with pytest.raises(ModelError, match="unsupported ONNX operator 'LRN'.*drop_lrn"):
            load_model(path)
        net = load_model(path, drop_lrn=True)
        assert net.dropped and all("LRN" in d for d in net.dropped)
        model = onnx.load(path)
        for node in model.graph.node:
            if node.op_type == "LRN":
                node.op_type = "Identity"
                del node.attribute[:]
        onnx.save(model, path)
    else:
        net = load_model(path)
    kinds = {}
    for layer in net.layers:
        kinds[layer.kind] = kinds.get(layer.kind, 0) + 1
    assert kinds == IMPORTED[name]
    assert net.host_ops == ["softmax"]
    x = np.random.default_rng(1).normal(size=(1, *net.input_shape)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits_path = [o.name for o in sess.get_outputs()]
    want = sess.run(logits_path, {sess.get_inputs()[0].name: x})[0].reshape(1, -1)
    logits = forward(net, x.astype(np.float64))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    got = e / e.sum(axis=1, keepdims=True)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * max(np.abs(want).max(), 1e-3)
    assert np.corrcoef(got[0], want[0])[0, 1] > 0.999


@pytest.mark.parametrize("name,message", [
    ("light_densenet121", "unsupported ONNX operator 'Mul'"),
    ("light_inception_v2", "unsupported ONNX operator 'Mul'"),
    ("light_shufflenet", "Reshape to \\[1, 4, 28, 56, 56\\] is not supported"),
])
def test_light_models_with_other_operators_are_refused_by_name(name, message):
    with pytest.raises(ModelError, match=message):
        load_model(LIGHT / f"{name}.onnx", drop_lrn=True)
