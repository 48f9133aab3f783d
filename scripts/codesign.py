#!/usr/bin/env python3
"""Co-design on real data (issue 16): for every variant of the bundled models (int8 dense,
balanced-sparse by magnitude with clustering off and on, fine-tuned for M = 4, 8, 16, and the
co-designed MNIST variants: clustered before pruning, then a group lasso on the activations),
the int8 test accuracy, and per conv / FC layer the fraction of IFM groups the decoder skips,
the cycles with skipping and without (weight sparsity alone), on the test images. Cycles come
from the performance model (host.estimate, exact for the core; checked here against the RTL:
every variant's whole model on a few test images, and single-layer runs of the layer that gains
most with its real input and with the same input without zeros, which the decoder cannot skip).
Writes docs/results/codesign.json and the figure docs/results/codesign.png (accuracy against
speed-up over the dense grid).

    .venv/bin/python scripts/codesign.py [--images 200] [--rtl 2] [--no-rtl] [--replot]

About 10 minutes on 2 cores with the RTL runs (the small accelerator's Verilator model is built
once, as by `make test`).
"""

import argparse
import io
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.digits import MODELS, load_split  # noqa: E402
from host.estimate import accelerator_estimate  # noqa: E402
from host.image import pack_image  # noqa: E402
from host.model_files import load_model  # noqa: E402
from host.pipeline import prepare_model  # noqa: E402
from host.quant import QNetwork, predict_float, quantize_input, run_int  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402

OUT = ROOT / "docs" / "results" / "codesign.json"
FIGURE = ROOT / "docs" / "results" / "codesign.png"
#: The grid the variants are measured on (the one the co-design variants were trained for),
#: and the board's grid (32-pixel tiles: a skip needs a group zero over 32 pixels).
CONFIGS = {"small": SenseConfig.preset("small"), "zcu102": SenseConfig.preset("zcu102")}


def variants(dataset: str) -> list[dict]:
    """(label, model file, M or None for dense, clustering at pack time, weights pruned)."""
    base = MODELS / f"{dataset}.onnx"
    out = [dict(label="int8 dense", model=base, group=None, cluster=False, pruned=False),
           dict(label="M=4 pruned", model=base, group=4, cluster=False, pruned=False),
           dict(label="M=4 pruned, clustered", model=base, group=4, cluster=True, pruned=False)]
    for m in (4, 8, 16):
        out.append(dict(label=f"M={m} fine-tuned", model=MODELS / f"{dataset}-m{m}.onnx",
                        group=m, cluster=False, pruned=True))
    for path in sorted(MODELS.glob(f"{dataset}-m4-*.onnx"), key=_codesign_key):
        tag = path.stem.split("-")[-1]
        label = ("M=4 clustered, fine-tuned" if tag == "cl" else
                 f"M=4 clustered, group lasso {tag[2:]}, fine-tuned")
        out.append(dict(label=label, model=path, group=4, cluster=False, pruned=True))
    return out


def _codesign_key(path: Path):
    tag = path.stem.split("-")[-1]
    return (0, 0.0) if tag == "cl" else (1, float(tag[2:]))


def measure(v: dict, dataset: str, config_name: str, images: int, x_test, y_test) -> dict:
    """Accuracy and per-layer skipping and cycles of one variant on one configuration."""
    config = CONFIGS[config_name].replace(group=v["group"] or 4, sparse=v["group"] is not None)
    prepared = prepare_model(config, v["model"], cluster=v["cluster"], pruned=v["pruned"],
                             log=io.StringIO())
    qnet, image = prepared.qnet, prepared.image
    xq = quantize_input(qnet, x_test)
    logits = np.concatenate([run_int(qnet, xq[i:i + 250]) for i in range(0, len(xq), 250)])
    layers = {}
    totals = {"cycles": 0, "cycles_no_skip": 0}
    for xi in xq[:images]:
        per, per_ns = [], []
        acts = run_int(qnet, xi[None], return_all=True)
        totals["cycles"] += accelerator_estimate(image, xi, config, acts, per)["cycles"]
        totals["cycles_no_skip"] += accelerator_estimate(image, xi, config, acts, per_ns,
                                                         skip=False)["cycles"]
        for q, est, ns in zip(qnet.layers, per, per_ns):
            if q.kind not in ("conv", "fc"):
                continue
            row = layers.setdefault(q.name, {"cycles": 0, "cycles_no_skip": 0,
                                             "groups_skipped": 0, "groups": 0})
            row["cycles"] += est["cycles"]
            row["cycles_no_skip"] += ns["cycles"]
            row["groups_skipped"] += est["groups_skipped"]
            row["groups"] += ns["macs"] // (config.pes * config.cycles_per_group)
    n = min(images, len(xq))
    for row in layers.values():
        row["skipped_fraction"] = row["groups_skipped"] / row["groups"] if row["groups"] else 0.0
        row["speedup_from_skipping"] = row["cycles_no_skip"] / row["cycles"]
        for key in ("cycles", "cycles_no_skip", "groups_skipped", "groups"):
            row[key] /= n
    return {"label": v["label"], "model": str(Path(v["model"]).relative_to(ROOT)),
            "group": v["group"], "clustered_at_pack": v["cluster"], "pruned_file": v["pruned"],
            "config": config_name, "accuracy_int8": float((logits.argmax(1) == y_test).mean()),
            "cycles_per_image": totals["cycles"] / n,
            "cycles_per_image_no_skip": totals["cycles_no_skip"] / n,
            "layers": layers, "prepared": prepared}


def single_layer(qnet: QNetwork, name: str, xq, acts) -> tuple[QNetwork, np.ndarray]:
    """The layer `name` of `qnet` on its own, and its int8 inputs: from the network's inputs
    `xq` or `acts` (run_int's return_all of them)."""
    i = next(i for i, q in enumerate(qnet.layers) if q.name == name)
    src = qnet.sources(i)[0]
    layer = replace(qnet.layers[i], inputs=None)
    x = xq if src < 0 else acts[src]
    net = QNetwork(input_shape=tuple(x.shape[1:]), layers=[layer], input_scale=layer.in_scale,
                   group=qnet.group, name=f"{qnet.name}-{name}")
    return net, x


def rtl_check(results: list, x_test, count: int) -> list:
    """Whole-model RTL runs of every variant (`small`) on `count` test images, and single-layer
    runs of each data set's layer with the largest skipping gain (among the variants within a
    point of the float accuracy), with its real input and with
    the zeros of that input replaced by ones (no group can be skipped: weight sparsity alone)."""
    from sim.sysrun import run_system

    config = CONFIGS["small"]
    steps, meta = [], []
    for r in results:
        if r["config"] != "small":
            continue
        cfg = config.replace(group=r["group"] or 4, sparse=r["group"] is not None)
        if cfg != config:
            continue                        # one Verilator model: M = 4 sparse
        p = r["prepared"]
        xq = quantize_input(p.qnet, x_test[r["dataset"]][:count])
        steps.append({"op": "run", "image": p.image, "x": xq,
                      "name": f"{r['dataset']} {r['label']}"})
        meta.append(("model", r, None, xq))
    for dataset in x_test:
        # the variants within one point of the float model's accuracy (issue 16's bound)
        cands = [r for r in results if r["dataset"] == dataset and r["config"] == "small"
                 and r["group"] == 4 and r["accuracy_int8"] >= r["accuracy_float"] - 0.01]
        best, name = max(((r, n) for r in cands for n in r["layers"]),
                         key=lambda rn: rn[0]["layers"][rn[1]]["speedup_from_skipping"])
        p = best["prepared"]
        xq = quantize_input(p.qnet, x_test[dataset][:count])
        net, x = single_layer(p.qnet, name, xq, run_int(p.qnet, xq, return_all=True))
        image = pack_image(net, config)
        for kind, xin in (("real input", x), ("zeros replaced by ones", np.where(x == 0, 1, x))):
            steps.append({"op": "run", "image": image, "x": xin.astype(np.int8),
                          "name": f"{dataset} {best['label']} {name} {kind}"})
            meta.append(("layer", best, (name, kind, net, image), xin.astype(np.int8)))
    res = run_system(config, steps, name="codesign", dram="design")
    rows = []
    for step, (what, r, layer, xq) in zip(res["steps"], meta):
        if what == "model":
            qnet, image = r["prepared"].qnet, r["prepared"].image
        else:
            qnet, image = layer[2], layer[3]
        exact = bool((step["outputs"].reshape(len(xq), -1)
                      == run_int(qnet, xq).reshape(len(xq), -1)).all())
        rtl = [run["cycles"] for run in step["runs"]]
        model = [accelerator_estimate(image, xi, config)["cycles"] for xi in xq]
        rows.append({"dataset": r["dataset"], "variant": r["label"], "what": what,
                     "layer": layer[0] if layer else None, "input": layer[1] if layer else None,
                     "rtl_cycles": rtl, "model_cycles": model, "bit_exact": exact,
                     "model_error_max": max(abs(m - c) / c for m, c in zip(model, rtl))})
        print(f"RTL {step['name']:66} {np.mean(rtl):9.0f} cycles, model "
              f"{np.mean(model):9.0f}, bit-exact {exact}", flush=True)
    return rows


def figure(results: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2))
    for ax, dataset in zip(axes, ("mnist", "digits")):
        rows = [r for r in results if r["dataset"] == dataset and r["config"] == "small"]
        if not rows:
            continue
        dense = next(r for r in rows if r["group"] is None)
        ax.axhline(100 * dense["accuracy_float"], color="grey", lw=0.8, ls="--",
                   label=f"float model ({100 * dense['accuracy_float']:.1f} %)")
        for r in rows:
            marker = "s" if r["group"] is None else "*" if "lasso" in r["label"] else "o"
            ax.plot(dense["cycles_per_image"] / r["cycles_per_image"], 100 * r["accuracy_int8"],
                    marker, markersize=12 if marker == "*" else 8, label=r["label"])
        ax.set_xlabel("speed-up over the dense grid (cycles per image, small 4x4 grid)")
        ax.set_ylabel("int8 test accuracy (%)")
        ax.set_title(f"{dataset}: {rows[0]['test_images']} test images")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, ncol=2)
    fig.suptitle("Balanced sparsity and IFM zero skipping: accuracy against speed "
                 "(scripts/codesign.py)")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200, help="test images for the cycle model")
    ap.add_argument("--rtl", type=int, default=2, help="test images per RTL run")
    ap.add_argument("--no-rtl", action="store_true")
    ap.add_argument("--datasets", nargs="+", default=["mnist", "digits"])
    ap.add_argument("--json", default=str(OUT))
    ap.add_argument("--figure", default=str(FIGURE))
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the figure from the JSON of an earlier run")
    args = ap.parse_args(argv)
    if args.replot:
        figure(json.loads(Path(args.json).read_text())["variants"], Path(args.figure))
        return 0
    results, x_tests = [], {}
    for dataset in args.datasets:
        _, _, x_test, y_test = load_split(dataset)
        x_tests[dataset] = x_test
        float_acc = float((predict_float(load_model(MODELS / f"{dataset}.onnx"), x_test)
                           == y_test).mean())
        for v in variants(dataset):
            for config_name in CONFIGS:
                r = measure(v, dataset, config_name, args.images, x_test, y_test)
                r.update(dataset=dataset, accuracy_float=float_acc, test_images=len(y_test))
                results.append(r)
                worst = max(r["layers"].items(), key=lambda kv: kv[1]["speedup_from_skipping"])
                print(f"{dataset:6} {config_name:6} {r['label']:44} acc {r['accuracy_int8']:.2%}"
                      f"  {r['cycles_per_image']:9.0f} cycles/image ({r['cycles_per_image_no_skip']:9.0f}"
                      f" without skipping); best layer {worst[0]}: "
                      f"{worst[1]['skipped_fraction']:.1%} skipped, "
                      f"{worst[1]['speedup_from_skipping']:.2f}x", flush=True)
    rtl = [] if args.no_rtl else rtl_check(results, x_tests, args.rtl)
    for r in results:
        dense = next(d for d in results if d["dataset"] == r["dataset"]
                     and d["config"] == r["config"] and d["group"] is None)
        r["speedup_over_dense"] = dense["cycles_per_image"] / r["cycles_per_image"]
    report = {"images_for_cycles": args.images,
              "configs": {k: v.to_dict() for k, v in CONFIGS.items()},
              "variants": [{k: v for k, v in r.items() if k != "prepared"} for r in results],
              "rtl": rtl}
    atomic_write(args.json, json.dumps(report, indent=1) + "\n")
    figure(results, Path(args.figure))
    print(f"wrote {args.json} and {args.figure}")
    return 0 if all(row["bit_exact"] for row in rtl) else 1


if __name__ == "__main__":
    sys.exit(main())
