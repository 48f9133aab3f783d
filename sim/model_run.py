"""`sense sim`: a prepared model (host.pipeline) run on the simulated accelerator, input by input,
compared with the golden model; the report of bit-exactness, accuracy, cycles and counters."""

from __future__ import annotations

import numpy as np

from host.estimate import accelerator_estimate
from host.pipeline import Prepared
from host.quant import quantize_input, run_int
from hw.config import SenseConfig
from sim.sysrun import run_system

__all__ = ["simulate_model", "model_rows", "format_row", "verdict"]


def simulate_model(config: SenseConfig, prepared: Prepared, x: np.ndarray, labels=None, *,
                   pause: float = 0.0, seed: int = 1, model: str = "",
                   dram: str = "design") -> dict:
    """Run the float inputs `x` (quantized with the network's input scale) through the whole
    accelerator in RTL; the report compares every output with the golden model. dram "design"
    (the DRAM inside the simulated design, fast) or "cocotb" (cocotbext-axi's AxiRam; needed
    for random stalls, `pause` > 0)."""
    qnet, image = prepared.qnet, prepared.image
    xq = quantize_input(qnet, x)
    if pause and dram != "cocotb":
        raise ValueError("DRAM stalls (pause > 0) need dram='cocotb'")
    res = run_system(config, [{"op": "run", "image": image, "x": xq, "name": "sim"}],
                     pause=pause, seed=seed, name="sense-sim", progress=True, dram=dram)
    step = res["steps"][0]
    got = step["outputs"].reshape(len(xq), -1)
    want = run_int(qnet, xq)
    exact = int((got == want).all(axis=1).sum())
    runs = step["runs"]
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    est = [accelerator_estimate(image, xi, config)["cycles"] for xi in xq]
    model_error = max(abs(e - r["cycles"]) / r["cycles"] for e, r in zip(est, runs))
    groups = mean["groups_issued"] + mean["groups_skipped"]
    return {
        "model": model, "config": config.to_dict(), "images": len(xq),
        "bit_exact_images": exact,
        "accuracy": (float((got.argmax(axis=1) == labels).mean()) if labels is not None
                     else None),
        "golden_accuracy": (float((want.argmax(axis=1) == labels).mean())
                            if labels is not None else None),
        "cycles_per_image": mean["cycles"],
        "pe_utilization": mean["macs"] / (config.pes * mean["cycles"]),
        "groups_skipped_fraction": mean["groups_skipped"] / groups if groups else 0.0,
        "dram_read_bytes_per_image": mean["dram_read_bytes"],
        "dram_write_bytes_per_image": mean["dram_write_bytes"],
        "images_per_second_at_clock": config.clock_mhz * 1e6 / mean["cycles"],
        "model_cycle_error_max": model_error if not pause else None,
        "simulation_seconds": step["seconds"], "dram": dram,
        "simulated_cycles_per_second": sum(r["cycles"] for r in runs) / step["seconds"],
        "runs": runs,
    }


def model_rows(step: dict, qnet, x: np.ndarray, image: bytes, config: SenseConfig) -> list:
    """One row per input of a system run's `step` (int8 inputs `x`, packed `image` of `qnet`):
    the RTL cycles and the model's, its relative error, whether the outputs equal the golden
    model's and the DRAM bytes the model's. Printed by `format_row`."""
    exact = bool((step["outputs"] == run_int(qnet, x, return_all=True)[-1]).all())
    rows = []
    for xi, run in zip(x, step["runs"]):
        est = accelerator_estimate(image, xi, config)
        rows.append({
            "network": step["name"], "cycles": run["cycles"], "cycles_model": est["cycles"],
            "error": (est["cycles"] - run["cycles"]) / run["cycles"], "bit_exact": exact,
            "dram_bytes_exact": (run["dram_read_bytes"], run["dram_write_bytes"])
            == (est["dram_read_bytes"], est["dram_write_bytes"])})
    return rows


def verdict(rows: list, bound: float = 0.03) -> int:
    """The exit status of a model check over `model_rows` rows: 0 when every run is bit-exact
    with the model's DRAM bytes and its cycles within `bound`, else 1."""
    ok = all(r["bit_exact"] and r["dram_bytes_exact"] for r in rows)
    return 0 if ok and max(abs(r["error"]) for r in rows) <= bound else 1


def format_row(row: dict) -> str:
    return (f"{row['network']:>24}: RTL {row['cycles']:7d}  model {row['cycles_model']:7d}  "
            f"({row['error']:+.2%}), bit-exact {row['bit_exact']}, DRAM bytes exact "
            f"{row['dram_bytes_exact']}")

