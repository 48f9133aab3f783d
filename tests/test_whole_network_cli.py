"""The whole-network commands end to end: `sense estimate`, `sense eval`, `sense pack` and
`sense inspect` of a built-in graph network, `sense bench pack --model`."""

import json

import numpy as np
import pytest

from host.digits import DEFAULT_MODEL, load_split
from sense.cli import main

ACCURACY = json.loads((DEFAULT_MODEL.parent.parent.parent / "docs" / "results" /
                       "accuracy.json").read_text()) if (
    DEFAULT_MODEL.parent.parent.parent / "docs" / "results" / "accuracy.json").exists() else None


def test_estimate_prints_layers_and_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "r.json"
    png = tmp_path / "r.png"
    assert main(["estimate", "resnet50", "--json", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "layer1.0.conv2" in text and "whole network:" in text and "paper: 53" in text
    plan = json.loads(out.read_text())
    assert len(plan["layers"]) == 71 and plan["total"]["images_per_s"] > 10
    assert plan["target"]["ports"] == 2 and plan["target"]["ifm"] == "shared"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,message", [
    (["estimate", "resnet51"], "resnet51: no such file"),
    (["estimate", "resnet50", "--batch", "0"], "batch must be at least 1"),
    (["estimate", "resnet50", "--ifm-skip", "1.5"], "ifm_skip must lie in"),
    (["bench", "pack", "--model", "lenet"], "is not a built-in network"),
])
def test_estimate_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_eval_digits_matches_the_accuracy_table(tmp_path, capsys):
    _, _, x, y = load_split()
    np.savez(tmp_path / "t.npz", x=x, y=y)
    np.savez(tmp_path / "u.npz", x=np.rint(x * 16).astype(np.uint8), y=y)
    assert main(["eval", str(DEFAULT_MODEL), "--inputs", str(tmp_path / "t.npz"), "--json",
                 str(tmp_path / "e.json")]) == 0
    got = json.loads((tmp_path / "e.json").read_text())
    assert got["images"] == len(y)
    if ACCURACY:
        assert got["float"] == ACCURACY["digits"]["float"]
        assert got["int8_dense"] == ACCURACY["digits"]["int8_dense"]
        assert got["int8_sparse"] == ACCURACY["digits"]["int8_sparse"]["M4"]["pruned"]
    assert main(["eval", str(DEFAULT_MODEL), "--inputs", str(tmp_path / "u.npz")]) == 1
    assert "give the model's scaling with --scale" in capsys.readouterr().err
    assert main(["eval", str(DEFAULT_MODEL), "--inputs", str(tmp_path / "u.npz"), "--scale",
                 "0.0625", "--json", str(tmp_path / "u.json")]) == 0
    assert json.loads((tmp_path / "u.json").read_text())["float"] == got["float"]


def test_eval_bundled_mnist_defaults_to_its_test_split(tmp_path, capsys):
    """The MNIST model's fine-tuned M = 4 variant on its committed test split (no --inputs),
    equal to the accuracy table; a model without a data set needs --inputs."""
    model = DEFAULT_MODEL.parent / "mnist-m4.onnx"
    assert main(["eval", str(model), "--pruned", "--json", str(tmp_path / "m.json")]) == 0
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["images"] == 1000 and got["calibration_images"] == 500
    if ACCURACY:
        assert got["int8_sparse"] == ACCURACY["mnist"]["int8_sparse"]["M4"]["fine_tuned"]
    assert got["int8_sparse"] >= 0.95
    capsys.readouterr()
    assert main(["eval", "resnet50"]) == 1
    assert "--inputs FILE.npz is required" in capsys.readouterr().err


def test_pack_and_inspect_a_graph_network(tmp_path, capsys):
    image = tmp_path / "g.img"
    assert main(["pack", "googlenet", "-o", str(image), "--config", "zcu102"]) == 0
    out = capsys.readouterr().out
    # every layer runs on the zcu102 gateware (its first max-pool's 112x112x64 input in pool
    # bands): no note
    assert "81 layers" in out and "does not fit this gateware" not in out
    assert main(["inspect", str(image), "--check", "--config", "zcu102"]) == 0
    out = capsys.readouterr().out
    assert "concat" in out and "maxpool" in out and "gap" in out and "UNSUPPORTED" not in out
    assert main(["inspect", str(image), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    kinds = {e["kind"] for e in info["layers"]}
    assert kinds == {"conv", "maxpool", "concat", "gap", "fc"}
    assert any(e["tiling"]["concat_channels"] for e in info["layers"])
    assert info["activation_bytes"] < 4 << 20 and info["runs_on_this_gateware"]


def test_bench_pack_reports_the_network_as_built(tmp_path):
    """`sense bench pack --model mini --config small`: every layer runs on this gateware, and the
    as-built estimate is the RTL-checked model's on the golden activations (per layer and in
    total, which the per-layer figures add up to)."""
    out = tmp_path / "p.json"
    assert main(["bench", "pack", "--model", "mini", "--config", "small", "--json",
                 str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["layers_today"] == report["layers"] == 25
    assert report["unsupported_today"] is None
    built = report["as_built"]
    assert len(built["layers"]) == 25 and built["images_per_s"] > 0
    assert built["conv_cycles"] == sum(e["cycles"] for e in built["layers"]
                                       if e["kind"] == "conv")
    assert built["cycles"] > sum(e["cycles"] for e in built["layers"])      # plus the run's start
    assert 0 < built["pe_utilization"] < 1
    # Each layer's floors: no layer runs faster than its grid issue slots or its DRAM traffic
    # (writes on one channel, reads on one port: `small` has no weight port).
    for e in built["layers"]:
        assert e["dram_bytes"] == e["dram_read_bytes"] + e["dram_write_bytes"]
        assert e["write_floor"] == -(-e["dram_write_bytes"] // 16)
        assert e["read_floor"] == -(-e["dram_read_bytes"] // 16)
        assert e["floor"] == e[{"issue": "issue_cycles"}.get(e["bound"], e["bound"] + "_floor")]
        assert e["floor"] == max(e["issue_cycles"], e["write_floor"], e["read_floor"])
        # (no weight port: the one-port floor is the floor)
        assert e["cycles"] >= e["floor"] == e["one_port_floor"], e
    bounds = built["bounds"]
    assert bounds["floor_cycles"] == sum(bounds["by_bound"].values()) \
        == bounds["one_port_floor_cycles"]
    assert bounds["over_floor"] == bounds["layer_cycles"] - bounds["floor_cycles"] > 0
    # (the issue slots are the MACs over the PEs: the PE utilization's numerator)
    assert abs(bounds["issue_cycles"] - built["pe_utilization"] * built["cycles"]) <= 25


def test_bench_pack_batch_reports_the_batched_run(tmp_path, capsys):
    """`--batch 1,4`: the batched run as built per size; the prefix runs once per image, the
    suffix once; a batch of 1 costs more than the plain run (the stacked layout's extra cycles
    are few), a batch of 4 shares the FC weights; bad sizes are one-line errors."""
    out = tmp_path / "p.json"
    assert main(["bench", "pack", "--model", "mini", "--config", "small", "--batch", "1,4",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    one, four = report["as_built_batch"]["1"], report["as_built_batch"]["4"]
    for b, n in ((one, 1), (four, 4)):
        assert b["batch"] == n and b["cycles"] == n * b["prefix_cycles"] + b["suffix_cycles"]
        # the tail the model finds faster: mini's FC layer, or its GAP and FC on the stacked
        # maps (host.batch.choose_start)
        names = [layer["name"] for layer in b["suffix_layers"]]
        assert names in (["fc"], ["avgpool", "fc"]), names
        assert b["tail"] == ("stacked from avgpool" if len(names) == 2 else "FC layers from fc")
    assert four["suffix_cycles"] < 4 * one["suffix_cycles"]
    assert four["images_per_s"] > one["images_per_s"]
    assert main(["bench", "pack", "--model", "mini", "--batch", "0"]) == 1
    assert "--batch sizes must be at least 1" in capsys.readouterr().err


def test_pack_batch_writes_the_two_images(tmp_path, capsys):
    """`sense pack mini --batch 4`: IMAGE (the prefix) and IMAGE.head (the tail the model finds
    faster: here GAP and FC on the four maps stacked), both valid images for the configuration;
    a network without FC layers is refused by name."""
    from host.image import layer_table
    from hw.config import SenseConfig
    from hw.layouts import LayerKind

    out = tmp_path / "mini.img"
    assert main(["pack", "mini", "--config", "small", "--batch", "4", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "run once for 4 images" in printed and "load_batch" in printed
    cfg = SenseConfig.preset("small")
    _, prefix = layer_table(out.read_bytes(), cfg)
    _, head = layer_table((tmp_path / "mini.img.head").read_bytes(), cfg)
    assert prefix[-1].out_offset == 0 and head[0].in_offset == 0
    assert [d.layer_kind for d in head] == [LayerKind.AVGPOOL, LayerKind.CONV]   # (FC as 1x1)
    assert "stacked" in printed
    assert main(["pack", str(DEFAULT_MODEL), "--config", "small", "--batch", "0", "-o",
                 str(tmp_path / "d.img")]) == 1
    assert "--batch: the batch must be at least 1 image" in capsys.readouterr().err
