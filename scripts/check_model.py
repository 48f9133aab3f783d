"""Check the performance model (host.estimate.accelerator_estimate over host.perf) against the
RTL on every network it was not fitted on: the graph networks of the system tests
(sim.networks.GRAPH_NETWORKS: residual stages, an inception module, a VGG-style stack in bands,
max-pools, average and global average pools, pools in bands, the "mini" network with all four
benchmark structures) and the held-out chains (HELDOUT_NETWORKS), each in both tile orders,
simulated whole (`small`, the DRAM inside the design); and the input-channel-block network
(sim.networks.RING_NETWORKS) on `small` with a quarter of its weight buffer. All of it twice:
with the weights on the DMA port, and on their own port (`weight_port`, as in `zcu102`). And
the split-weights network (sim.networks.SPLIT_NETWORKS: weight-bound layers whose weight reads
the packer splits between the two ports) on a 16-row grid with the weight port; and the graph
networks with the pool pass reading eight taps a cycle (`pool_width` 8, as in `zcu102`) on an
eight-column grid; and the graph networks and held-out chains on the 16-row grid with the
weight and write ports (`write_port`, as in `zcu102`: the output writer's two drain sides); and
ImageNet stems in miniature (sim.networks.STEM_NETWORKS) with their input in blocks (host.s2d,
forced: the packer leaves them out on grids this small), on one port and on the weight port.

The model's constants come from scripts/fit_perf_model.py (conv / FC chains and the digits
model) and scripts/fit_add_model.py (add-only and pool-only networks); none of the networks
here is in either fit. Writes docs/results/model-check.json: per run the RTL cycles, the
model's, the error, whether every output is bit-exact and the DRAM bytes exact.

    .venv/bin/python scripts/check_model.py
"""

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.image import pack_image  # noqa: E402
from host.quant import quantize, quantize_input  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402
from sim.networks import (GRAPH_NETWORKS, HELDOUT_NETWORKS, RING_CONFIG,  # noqa: E402
                          RING_NETWORKS, SPLIT_CONFIG, SPLIT_NETWORKS, STEM_NETWORKS,
                          random_network)
from sim.model_run import format_row, model_rows, verdict  # noqa: E402
from sim.sysrun import run_system  # noqa: E402

CONFIG = SenseConfig.preset("small")
#: (label, configuration, networks, with the held-out chains) of every checked set.
SETS = (("small", CONFIG, GRAPH_NETWORKS, True),
        ("small-ring", RING_CONFIG, RING_NETWORKS, False),
        ("small-wp", CONFIG.replace(weight_port=True), GRAPH_NETWORKS, True),
        ("small-ring-wp", RING_CONFIG.replace(weight_port=True), RING_NETWORKS, False),
        ("split", SPLIT_CONFIG, SPLIT_NETWORKS, False),
        ("pool8", CONFIG.replace(cols=8, pool_width=8, weight_port=True), GRAPH_NETWORKS, False),
        ("write2", SPLIT_CONFIG.replace(write_port=True), GRAPH_NETWORKS, True),
        ("s2d", CONFIG, STEM_NETWORKS, False),
        ("s2d-wp", CONFIG.replace(weight_port=True), STEM_NETWORKS, False))
#: Tile orders per set (the split network's FC does not fit the IFM-stationary order: "auto",
#: the compiler's choice, puts its first conv in it).
ORDERS = {"split": ("weight", "auto")}
#: pack_image options per set.
PACK = {"s2d": {"s2d": True}, "s2d-wp": {"s2d": True}}
OUT = ROOT / "docs/results/model-check.json"


def cases(networks=GRAPH_NETWORKS, heldout=True):
    """(name, quantized network, int8 inputs) of every checked network."""
    out = []
    for name, (build, seed, n) in networks.items():
        rng = np.random.default_rng(seed)
        net = build(rng)
        qnet = quantize(net, rng.normal(size=(16,) + net.input_shape), group=CONFIG.group)
        out.append((name, qnet, quantize_input(qnet, rng.normal(size=(n,) + net.input_shape))))
    rng = np.random.default_rng(11)
    for name, (shape, specs) in HELDOUT_NETWORKS.items() if heldout else ():
        net = random_network(rng, shape, specs, name)
        qnet = quantize(net, rng.normal(size=(16,) + shape), group=CONFIG.group)
        out.append((name, qnet, quantize_input(qnet, rng.normal(size=(2,) + shape))))
    return out


def check(config, label, networks, heldout):
    """The model-vs-RTL rows of `networks` (and the held-out chains) on `config`."""
    steps, runs = [], []
    for name, qnet, x in cases(networks, heldout):
        for order in ORDERS.get(label, ("weight", "ifm")):
            image = pack_image(qnet, config, order=order, **PACK.get(label, {}))
            steps.append({"op": "run", "image": image, "x": x, "name": f"{name}-{order}"})
            runs.append((qnet, x, image))
    res = run_system(config, steps, name="check-model", dram="design")
    rows = []
    for step, (qnet, x, image) in zip(res["steps"], runs):
        rows += model_rows(step, qnet, x, image, config)
        for row in rows[-len(x):]:
            row["config"] = label
            print(format_row(row))
    return rows


def main():
    rows = [row for label, config, networks, heldout in SETS
            for row in check(config, label, networks, heldout)]
    errors = [abs(r["error"]) for r in rows]
    per_config = {label: max(abs(r["error"]) for r in rows if r["config"] == label)
                  for label, *_ in SETS}
    report = {"configs": {label: config.to_dict() for label, config, *_ in SETS},
              "dram": "design", "runs": rows, "max_abs_error_per_config": per_config,
              "max_abs_error": max(errors), "mean_abs_error": float(np.mean(errors))}
    atomic_write(OUT, json.dumps(report, indent=2) + "\n")
    print(f"max error {report['max_abs_error']:.2%}, mean {report['mean_abs_error']:.2%} over "
          f"{len(rows)} runs; wrote {OUT.relative_to(ROOT)}")
    return verdict(rows)


if __name__ == "__main__":
    sys.exit(main())
