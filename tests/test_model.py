"""Model import (ONNX, npz), the float reference, and quantization against onnxruntime."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_ref import qlinear_conv

from host import golden
from host.digits import DEFAULT_MODEL, MODELS, load_split
from host.model_files import load_model, save_npz, save_onnx
from host.nn import Layer, ModelError, Network, forward
from host.quant import layer_int, prune_network, quantize, quantize_input, run_int
from host.sparse import SparsityError, groups_of


def ort_run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.astype(np.float32)})[0]


def small_net(rng):
    return Network((3, 9, 9), [
        Layer("conv", "c1", rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5), stride=2, pad=1,
              relu=True),
        Layer("conv", "c2", rng.normal(size=(6, 5, 3, 3)), rng.normal(size=6), pad=1, relu=True,
              pool=(2, 2, 0)),
        Layer("fc", "fc", rng.normal(size=(4, 24)), rng.normal(size=4)),
    ], [], name="small")


def test_float_reference_equals_onnxruntime(tmp_path):
    rng = np.random.default_rng(0)
    net = small_net(rng)
    save_onnx(net, tmp_path / "m.onnx")
    back = load_model(tmp_path / "m.onnx")
    x = rng.normal(size=(4, 3, 9, 9))
    np.testing.assert_allclose(forward(back, x), ort_run(tmp_path / "m.onnx", x), atol=1e-4)
    assert back.shapes() == net.shapes()


def test_bundled_model_float_equals_onnxruntime():
    _, _, x, _ = load_split()
    net = load_model(DEFAULT_MODEL)
    logits = forward(net, x[:50])
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, ort_run(DEFAULT_MODEL, x[:50]), atol=1e-5)


def test_batch_norm_folded_into_conv(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    bn = [rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)]
    inits = [numpy_helper.from_array(w, "w")] + [
        numpy_helper.from_array(a.astype(np.float32), n)
        for a, n in zip(bn, ["scale", "b", "mean", "var"])]
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["y", "scale", "b", "mean", "var"], ["z"]),
             helper.make_node("Relu", ["z"], ["out"])]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2, 6, 6])], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, [1, 4, 6, 6])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "bn.onnx")
    net = load_model(tmp_path / "bn.onnx")
    assert len(net.layers) == 1 and net.layers[0].relu
    x = rng.normal(size=(1, 2, 6, 6))
    got = forward(net, x).reshape(1, 4, 6, 6)
    np.testing.assert_allclose(got, ort_run(tmp_path / "bn.onnx", x), atol=1e-4)


def onnx_with(tmp_path, nodes, inits, shape=(1, 2, 6, 6)):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(shape))], [helper.make_tensor_value_info(
            nodes[-1].output[0], TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return path


W = {"w": np.ones((3, 2, 3, 3))}


@pytest.mark.parametrize("nodes,inits,message", [
    ([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Sigmoid", ["y"], ["z"])], W,
     "unsupported ONNX operator 'Sigmoid'"),
    ([helper.make_node("Conv", ["x", "w"], ["y"], group=3)], {"w": np.ones((3, 1, 3, 3))},
     "group 3 does not divide the weight"),
    ([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 1, 0])], W,
     "must be the same on every side"),
    ([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Add", ["x", "y"], ["z"])], W,
     "a residual add needs two inputs of one shape"),
    ([helper.make_node("Relu", ["x"], ["y"])], {}, "ReLU must follow a Conv"),
    ([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Gemm", ["y", "w2"], ["z"])],
     {"w": np.ones((3, 2, 3, 3)), "w2": np.ones((48, 4))},
     "a fully-connected layer needs Flatten or Reshape"),
    ([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Softmax", ["y"], ["s"])],
     W, "softmax must be over the channels of a \\(N, K\\) output"),
    ([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "g"], ["y"]),
      helper.make_node("Softmax", ["y"], ["s"]), helper.make_node("Relu", ["s"], ["z"])],
     {"g": np.ones((72, 5))}, "follows a host-side operator"),
    ([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["r"]),
      helper.make_node("BatchNormalization", ["r", "v", "v", "v", "v"], ["z"])],
     {"w": np.ones((3, 2, 3, 3)), "v": np.ones(3)}, "batch-norm must directly follow its conv layer"),
    ([helper.make_node("Conv", ["x", "w"], ["y"]),
      helper.make_node("BatchNormalization", ["y", "v", "v", "v", "v"], ["z"])],
     {"w": np.ones((3, 2, 3, 3)), "v": np.ones(4)}, "one entry per output channel \\(3\\)"),
    ([helper.make_node("Conv", ["x", "w"], ["y"])], {"w": np.ones((3, 5, 3, 3))},
     "group 1 does not divide the weight \\(3, 5, 3, 3\\) over 2 input channels"),
])
def test_import_errors_name_the_problem(tmp_path, nodes, inits, message):
    with pytest.raises(ModelError, match=message):
        load_model(onnx_with(tmp_path, nodes, inits))


def test_model_file_errors(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load_model(tmp_path / "missing.onnx")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ModelError, match="model files are .onnx or .npz, not .txt"):
        load_model(tmp_path / "m.txt")


def test_npz_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(2)
    net = small_net(rng)
    save_npz(net, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    x = rng.normal(size=(2, 3, 9, 9))
    np.testing.assert_array_equal(forward(back, x), forward(net, x))
    spec = {"input_shape": [3, 9, 9], "layers": [{"kind": "pool", "weight": "a", "bias": "b"}]}
    np.savez(tmp_path / "bad.npz", layers=np.frombuffer(json.dumps(spec).encode(), np.uint8))
    with pytest.raises(ModelError, match="layer 0 has kind 'pool'; kinds are conv, fc"):
        load_model(tmp_path / "bad.npz")
    spec["layers"][0]["kind"] = "conv"
    np.savez(tmp_path / "bad.npz", layers=np.frombuffer(json.dumps(spec).encode(), np.uint8))
    with pytest.raises(ModelError, match="names weight array 'a', which is not in the file"):
        load_model(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad.npz", w=np.zeros(3))
    with pytest.raises(ModelError, match="no 'layers' entry"):
        load_model(tmp_path / "bad.npz")


def test_quantized_layers_within_one_lsb_of_qlinear_conv():
    xtr, _, xte, _ = load_split()
    qnet = quantize(load_model(DEFAULT_MODEL), xtr, group=8)
    x = quantize_input(qnet, xte[:40])
    checked = 0
    for layer in qnet.layers:
        xin = x
        ref = qlinear_conv(xin, np.float32(layer.in_scale), layer.w,
                           layer.w_scale.astype(np.float32), np.float32(layer.out_scale),
                           layer.bias, (layer.stride,) * 2, (layer.pad,) * 2)
        if layer.relu:
            ref = np.maximum(ref, 0)
        got = golden.requantize(golden.add_bias(golden.conv2d(
            xin, layer.w, layer.stride, layer.pad), layer.bias), layer.mult, layer.shift)
        if layer.relu:
            got = golden.relu(got)
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1, layer.name
        checked += got.size
        x = layer_int(layer, x)
    assert checked > 10_000


@pytest.mark.parametrize("m", [4, 8, 16])
def test_pruned_network_is_balanced_and_pruned_mode_verifies(m):
    net = load_model(DEFAULT_MODEL)
    pruned, masks = prune_network(net, m)
    for layer, mask in zip(pruned.layers, masks):
        w = layer.weight.reshape(mask.shape)
        cpad = -(-w.shape[1] // m) * m
        full = np.zeros((w.shape[0], cpad) + w.shape[2:], bool)
        full[:, :w.shape[1]] = w != 0
        assert (groups_of(full, m).sum(-1) <= m // 2).all()
    prune_network(load_model(MODELS / f"digits-m{m}.onnx"), m, pruned=True)
    with pytest.raises(SparsityError, match="conv2: output channel 0, group 0 has"):
        prune_network(net, m, pruned=True)


def test_int8_network_tracks_float():
    xtr, _, xte, yte = load_split()
    net = load_model(DEFAULT_MODEL)
    qnet = quantize(net, xtr)
    logits = run_int(qnet, quantize_input(qnet, xte)) * qnet.layers[-1].out_scale
    ref = forward(net, xte)
    assert np.abs(logits - ref).max() < 0.1 * np.abs(ref).max()
    with pytest.raises(ValueError, match=r"calibration inputs must have shape \(N, 1, 8, 8\)"):
        quantize(net, xtr[:, 0])


def test_finetune_keeps_the_mask():
    torch = pytest.importorskip("torch", reason="optional train extra: torch not installed")
    from host.finetune import finetune, from_torch, to_torch

    xtr, ytr, _, _ = load_split()
    net = load_model(DEFAULT_MODEL)
    got = to_torch(net)(torch.tensor(xtr[:20], dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, forward(net, xtr[:20]), atol=1e-4)
    pruned, masks = prune_network(net, 8)
    tuned = finetune(pruned, masks, xtr[:200], ytr[:200], epochs=1)
    for before, after, mask in zip(pruned.layers, tuned.layers, masks):
        w = after.weight.reshape(mask.shape)
        assert (w[~mask] == 0).all()                                   # pruned stay pruned
        assert (w[mask] != before.weight.reshape(mask.shape)[mask]).any()  # kept ones trained
    prune_network(tuned, 8, pruned=True)
    assert from_torch(to_torch(tuned), tuned).layers[0].weight.shape == tuned.layers[0].weight.shape
