"""Fit the constants of host.perf's streaming layers to the RTL: ADD (ADD_LAYER_STATES,
ADD_CHUNK_OVERHEAD), the fused add (FUSE_OVERHEAD) and the pooling layers (POOL_LAYER_STATES,
DIVISOR_OVERHEAD, POOL_TAIL).

Runs, in RTL simulation (`small`, the DRAM inside the design), networks made of one residual add
of the network input with itself, of five sizes: four beats, exactly one chunk, a chunk and 16
beats, two chunks, four chunks with a partial last one; and networks of one pooling layer on
the input (max-pools of three windows and sizes, two average pools, a global average pool);
and residual adds fused into the conv before them (FUSE_ADD), each in both tile orders and also
packed unfused: a 1x1 expansion (in the weight order its one-beat writes, a command each, take
longer than its compute) and a 3x3 conv that is the add's second input.
The ADD constants were read off the first three adds (the layer's fixed cost, a chunk's fixed
cost, one cycle per 16-beat burst), FUSE_OVERHEAD off the fused 1x1 expansion in the weight order, POOL_TAIL
off the first max-pool (POOL_LAYER_STATES
counted from the sequencer), DIVISOR_OVERHEAD off the first average pool; this script checks them on all of them and writes
everything to docs/results/add-model-fit.json. The residual and pooling networks of the system
tests (sim/networks.py, among convolutions) are the held-out check: scripts/check_model.py.

    .venv/bin/python scripts/fit_add_model.py
"""

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import host.perf as perf  # noqa: E402
from host import golden  # noqa: E402
from host.image import pack_image  # noqa: E402
from host.nn import Layer, Network  # noqa: E402
from host.quant import quantize, quantize_input  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402
from sim.model_run import format_row, model_rows  # noqa: E402
from sim.networks import conv_layer  # noqa: E402
from sim.sysrun import run_system  # noqa: E402

CONFIG = SenseConfig.preset("small")
SHAPES = [(4, 4, 4), (16, 16, 16), (16, 16, 17), (32, 16, 16), (32, 20, 21)]
POOLS = [("maxpool", (8, 12, 12), (2, 2, 0)), ("maxpool", (16, 9, 9), (3, 2, 1)),
         ("maxpool", (4, 10, 7), (3, 1, 1)), ("avgpool", (8, 12, 12), (2, 2, 0)),
         ("avgpool", (4, 10, 7), (3, 1, 1)), ("gap", (16, 7, 7), None)]


def fused_networks(rng):
    """(name, network, fuse, order) of the fused-add runs: each network in both tile orders,
    fused and unfused."""
    expand = Network((4, 12, 12), [
        conv_layer(rng, "shortcut", 32, 4, 1, [-1]),
        conv_layer(rng, "expand", 32, 4, 1, [-1], relu=False),
        Layer("add", "sum", relu=True, inputs=[1, 0])], [], "fused-expand")
    second = Network((8, 8, 8), [
        conv_layer(rng, "a", 16, 8, 3, [-1], relu=False),
        conv_layer(rng, "b", 16, 8, 3, [-1], relu=False),
        Layer("add", "sum", relu=False, inputs=[0, 1])], [], "fused-second")
    # (the weight order writes each pixel's k tile as a segment of its own: one beat here,
    # so the writes, not the core, set the pace; the IFM order writes whole pixel tiles)
    # ("always": the packer would not fuse the weight-order expansion, whose fused segments
    # are slower than the ADD's pass)
    return [(f"{net.name}-{order}{'' if fuse else '-unfused'}", net, "always" if fuse else False,
             order)
            for net in (expand, second) for order in ("weight", "ifm")
            for fuse in (True, False)]


def networks(rng):
    """(name, network, fuse, order) of every fit run."""
    out = [("x".join(map(str, shape)),
            Network(shape, [Layer("add", "sum", inputs=[-1, -1])], [], "add"), True, "auto")
           for shape in SHAPES]
    for kind, shape, window in POOLS:
        pool = golden.Window.of(*window) if window else None
        tag = "k{}s{}p{}".format(*window) if window else ""
        out.append((f"{kind}{tag}-" + "x".join(map(str, shape)),
                    Network(shape, [Layer(kind, "pool", pool=pool, inputs=[-1])], [], "pool"),
                    True, "auto"))
    return out + fused_networks(rng)


def main():
    rng = np.random.default_rng(1)
    steps, cases = [], []
    for name, net, fuse, order in networks(rng):
        shape = net.input_shape
        qnet = quantize(net, rng.normal(size=(8,) + shape), group=CONFIG.group)
        x = quantize_input(qnet, rng.normal(size=(1,) + shape))
        image = pack_image(qnet, CONFIG, order=order, fuse_add=fuse)
        steps.append({"op": "run", "image": image, "x": x, "name": name})
        cases.append((qnet, x, image))
    res = run_system(CONFIG, steps, name="fit-add", dram="design")
    rows = []
    for step, (qnet, x, image) in zip(res["steps"], cases):
        rows += model_rows(step, qnet, x, image, CONFIG)
        print(format_row(rows[-1]))
    report = {"config": CONFIG.to_dict(), "dram": "design",
              "constants": {"ADD_LAYER_STATES": perf.ADD_LAYER_STATES,
                            "ADD_CHUNK_OVERHEAD": perf.ADD_CHUNK_OVERHEAD,
                            "FUSE_OVERHEAD": perf.FUSE_OVERHEAD,
                            "POOL_LAYER_STATES": perf.POOL_LAYER_STATES,
                            "DIVISOR_OVERHEAD": perf.DIVISOR_OVERHEAD, "POOL_TAIL": perf.POOL_TAIL},
              "runs": rows, "max_abs_error": max(abs(r["error"]) for r in rows)}
    atomic_write(ROOT / "docs/results/add-model-fit.json", json.dumps(report, indent=2) + "\n")
    print(f"max error {report['max_abs_error']:.2%}; wrote docs/results/add-model-fit.json")
    return 0 if all(r["bit_exact"] and r["dram_bytes_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
