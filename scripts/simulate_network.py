"""Run a whole built-in network through the whole `zcu102` accelerator in RTL simulation: the
64x32 grid with PE pairs, its 256 KiB IFM store, 1 MiB weight buffer and weight port, the DRAM
inside the simulated design (Verilator), the driver loading the image and the input over AXI.

The network is packed exactly as `sense bench pack --model NAME` packs it (`host.bench.
zoo_pipeline`: random weights with seed 0, 8 random calibration inputs, the same random input),
so the RTL cycles here are the run the README's "Whole networks as built" figure predicts.
Compares every output byte with the golden model, the DRAM bytes and the cycles with the
performance model (`host.estimate.accelerator_estimate`), and writes
docs/results/simulate-NAME.json. The Verilator build takes about 4 minutes once; the runs
took 55 s (GoogLeNet) to 19 minutes (VGG-19) here (`simulation_seconds` in the JSON).

    .venv/bin/python scripts/simulate_network.py resnet50 [--config zcu102]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.bench import zoo_pipeline  # noqa: E402
from host.estimate import accelerator_estimate  # noqa: E402
from host.zoo import NETWORKS  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402
from sim.sysrun import DESIGN_MEM, run_system  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=sorted(NETWORKS))
    p.add_argument("--config", default="zcu102")
    args = p.parse_args(argv)
    config = SenseConfig.preset(args.config)
    t0 = time.perf_counter()
    net, qnet, image, x, acts = zoo_pipeline(config, args.model)
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
    out = ROOT / f"docs/results/simulate-{args.model}.json"
    atomic_write(out, json.dumps(report, indent=2) + "\n")
    print(f"{args.model} on {config.rows}x{config.cols}: RTL {run['cycles']} cycles "
          f"({report['images_per_s']:.1f} images/s at {config.clock_mhz} MHz), model "
          f"{est['cycles']} ({error:+.2%}), bit-exact {exact}, DRAM bytes exact {bytes_exact}; "
          f"{seconds:.0f} s simulated; wrote {out.relative_to(ROOT)}")
    return 0 if exact and bytes_exact else 1


if __name__ == "__main__":
    sys.exit(main())
