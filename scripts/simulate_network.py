"""Run a whole built-in network through the whole `zcu102` accelerator in RTL simulation: the
64x32 grid with PE pairs, its 256 KiB IFM store, 1 MiB weight buffer, weight and write ports,
the DRAM inside the simulated design (Verilator), the driver loading the image and the input over AXI.

The network is packed exactly as `sense bench pack --model NAME` packs it (`host.bench.
zoo_pipeline`: random weights with seed 0, 8 random calibration inputs, the same random input),
so the RTL cycles here are the run the README's "Whole networks as built" figure predicts.
Compares every output byte with the golden model, the DRAM bytes and the cycles with the
performance model (`host.estimate.accelerator_estimate`), and writes
docs/results/simulate-NAME.json. The Verilator build takes about 4 minutes once; the runs
took 55 s (GoogLeNet) to 19 minutes (VGG-19) here (`simulation_seconds` in the JSON).

    .venv/bin/python scripts/simulate_network.py resnet50 [--config zcu102]

With `--batch N`, the batched run as `sense bench pack --model NAME --batch N` models it
(`host.batch.pack_batch(..., start="auto")`: the FC layers or a stacked tail, whichever the model
finds faster): N random inputs, the prefix run once per input, then the suffix once, through
the driver's `load_batch` / `run_batch`; every image's logits compared with the whole
network's golden run, every run's DRAM bytes and the total cycles with the model; writes
docs/results/simulate-NAME-batchN.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.batch import pack_batch, stack_outputs, unstack_logits  # noqa: E402
from host.bench import zoo_pipeline  # noqa: E402
from host.estimate import accelerator_estimate  # noqa: E402
from host.quant import quantize_input, run_int  # noqa: E402
from host.zoo import NETWORKS  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402
from sim.sysrun import DESIGN_MEM, run_system  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=sorted(NETWORKS))
    p.add_argument("--config", default="zcu102")
    p.add_argument("--batch", type=int, default=0, metavar="N",
                   help="simulate the batched run of N images instead")
    args = p.parse_args(argv)
    config = SenseConfig.preset(args.config)
    t0 = time.perf_counter()
    net, qnet, image, x, acts = zoo_pipeline(config, args.model)
    if args.batch:
        return _batched(args, config, qnet, t0)
    est = accelerator_estimate(image, x[0], config, acts=acts)
    t = time.perf_counter()
    res = run_system(config, [{"op": "run", "image": image, "x": x, "name": args.model}],
                     name=f"network-{args.model}", dram="design", mem_size=DESIGN_MEM,
                     timeout=est["cycles"] * 2 + 1_000_000)
    seconds = time.perf_counter() - t
    step = res["steps"][0]
    if step.get("error"):
        print(f"{args.model}: the run failed: {step['error']}")
        return 1
    run = step["runs"][0]
    exact = bool((step["outputs"] == acts[-1]).all())
    bytes_exact = ((run["dram_read_bytes"], run["dram_write_bytes"])
                   == (est["dram_read_bytes"], est["dram_write_bytes"]))
    error = (est["cycles"] - run["cycles"]) / run["cycles"]
    report = {
        "command": f"python scripts/simulate_network.py {args.model}"
                   + (f" --config {args.config}" if args.config != "zcu102" else ""),
        "model": args.model, "config": config.to_dict(), "dram": "design",
        "image_bytes": len(image), "bit_exact": exact, "dram_bytes_exact": bytes_exact,
        "cycles": run["cycles"], "cycles_model": int(est["cycles"]), "model_error": error,
        "images_per_s": config.clock_mhz * 1e6 / run["cycles"],
        "images_per_s_model": config.clock_mhz * 1e6 / est["cycles"],
        "dram_read_bytes": run["dram_read_bytes"], "dram_write_bytes": run["dram_write_bytes"],
        "macs": run["macs"], "pe_utilization": run["macs"] / (config.pes * run["cycles"]),
        "simulation_seconds": seconds, "total_seconds": time.perf_counter() - t0,
        "simulated_cycles_per_second": run["cycles"] / seconds,
        "golden_top5": np.argsort(-acts[-1][0].reshape(-1))[:5].tolist(),
    }
    return _write(report, args.model, config, f"docs/results/simulate-{args.model}.json")


def _write(report: dict, what: str, config, path: str) -> int:
    """Write `report` to `path` and print its summary; the exit status: 0 when bit-exact with
    the DRAM bytes exact."""
    out = ROOT / path
    atomic_write(out, json.dumps(report, indent=2) + "\n")
    print(f"{what} on {config.rows}x{config.cols}: RTL {report['cycles']} cycles "
          f"({report['images_per_s']:.1f} images/s at {config.clock_mhz} MHz), model "
          f"{report['cycles_model']} ({report['model_error']:+.2%}), bit-exact "
          f"{report['bit_exact']}, DRAM bytes exact {report['dram_bytes_exact']}; "
          f"{report['simulation_seconds']:.0f} s simulated; wrote {path}")
    return 0 if report["bit_exact"] and report["dram_bytes_exact"] else 1


def _batched(args, config, qnet, t0):
    """The batched run of `args.batch` random inputs in RTL against the golden model and the
    performance model (module docstring)."""
    n = args.batch
    split, prefix, suffix = pack_batch(qnet, config, n, start="auto")
    x = quantize_input(qnet, np.random.default_rng(1).normal(size=(n, *qnet.input_shape)))
    want = run_int(qnet, x)
    outs = [run_int(split.prefix, xi[None], return_all=True)[-1][0] for xi in x]
    ests = [accelerator_estimate(prefix, xi, config) for xi in x]
    ests.append(accelerator_estimate(suffix, stack_outputs(split, outs), config))
    cycles_model = sum(e["cycles"] for e in ests)
    t = time.perf_counter()
    step = {"op": "batch", "image": prefix, "suffix": suffix, "x": x, "batch": n,
            "slot_bytes": split.slot_bytes, "valid_bytes": split.valid_bytes,
            "name": f"{args.model}-batch{n}"}
    res = run_system(config, [step], name=f"network-{args.model}-batch", dram="design",
                     mem_size=DESIGN_MEM, timeout=cycles_model * 2 + 1_000_000)
    seconds = time.perf_counter() - t
    got = res["steps"][0]
    if got.get("error"):
        print(f"{args.model} batch {n}: the run failed: {got['error']}")
        return 1
    runs = got["runs"]
    exact = bool(np.array_equal(unstack_logits(split, got["outputs"][0]), want))
    bytes_exact = all((r["dram_read_bytes"], r["dram_write_bytes"])
                      == (e["dram_read_bytes"], e["dram_write_bytes"]) for r, e in zip(runs, ests))
    cycles = sum(r["cycles"] for r in runs)
    error = (cycles_model - cycles) / cycles
    report = {
        "command": f"python scripts/simulate_network.py {args.model} --batch {n}"
                   + (f" --config {args.config}" if args.config != "zcu102" else ""),
        "model": args.model, "config": config.to_dict(), "dram": "design", "batch": n,
        "tail": ("stacked from " if split.stacked else "FC layers from ")
        + split.suffix.layers[0].name,
        "slot_rows": split.slot, "bit_exact": exact, "dram_bytes_exact": bytes_exact,
        "cycles": cycles, "cycles_model": int(cycles_model), "model_error": error,
        "runs": [{"cycles": r["cycles"], "cycles_model": int(e["cycles"]),
                  "dram_read_bytes": r["dram_read_bytes"],
                  "dram_write_bytes": r["dram_write_bytes"]} for r, e in zip(runs, ests)],
        "images_per_s": n * config.clock_mhz * 1e6 / cycles,
        "images_per_s_model": n * config.clock_mhz * 1e6 / cycles_model,
        "simulation_seconds": seconds, "total_seconds": time.perf_counter() - t0,
        "note": "accelerator cycles of the N + 1 runs; the CPU's register writes between the "
                "runs and its zeroing of the separator rows are not counted",
    }
    return _write(report, f"{args.model} batch {n} ({report['tail']})", config,
                  f"docs/results/simulate-{args.model}-batch{n}.json")


if __name__ == "__main__":
    sys.exit(main())
