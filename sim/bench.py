"""`sense bench core` and `sense bench accel`: the bench layers (host.bench) in RTL simulation;
`sense bench sim`: the speed of whole-network RTL simulation.

`bench_core` runs them on the sparse core and on the dense baseline of the same grid; every figure
comes from the RTL simulation (cycles, counters, bit-exactness) except the PE utilisation's
numerator, useful MACs, which host.perf.useful_macs counts from the layer. `bench_accel` runs them
as one-layer networks through the whole accelerator.
"""

from __future__ import annotations

import sys
import time

from host.bench import bench_layers, fit_buffers, one_layer_network, tiled_bench_layer
from host.estimate import accelerator_estimate
from host.image import describe, pack_image
from host.perf import core_cycles, useful_macs
from hw.config import SenseConfig
from sim.corerun import run_core
from sim.sysrun import run_system

__all__ = ["bench_core", "bench_accel", "bench_sim", "sim_bench_configs"]


def bench_core(config: SenseConfig, *, seed: int = 7, log=sys.stderr) -> dict:
    """Run the bench layers on the sparse core and on its dense baseline; return the report."""
    sparse_cfg = fit_buffers(config.replace(sparse=True), bench_layers(config.group, seed))
    dense_cfg = sparse_cfg.replace(sparse=False)
    layers = bench_layers(config.group, seed)
    print(f"bench core: {sparse_cfg.rows}x{sparse_cfg.cols} grid, M={sparse_cfg.group}; building "
          f"and simulating the sparse core (first build of a configuration takes minutes)",
          file=log, flush=True)
    sparse = run_core(sparse_cfg, layers, name="bench-sparse")
    print("bench core: sparse done; now the dense baseline", file=log, flush=True)
    dense = run_core(dense_cfg, layers, name="bench-dense")
    report = []
    for layer, s, d in zip(layers, sparse["layers"], dense["layers"]):
        model = core_cycles(layer, sparse_cfg)
        groups = s["groups_issued"] + s["groups_skipped"]
        k, c, r, _ = layer.w.shape
        report.append({
            "layer": layer.name,
            "shape": {"in_channels": c, "out_channels": k, "in_hw": list(layer.x.shape[1:]),
                      "kernel": r, "stride": layer.stride, "pad": layer.pad},
            "ifm_zero_fraction": float((layer.x == 0).mean()),
            "cycles_sparse": s["cycles"],
            "cycles_dense": d["cycles"],
            "cycles_model_sparse": model["cycles"],
            "cycles_model_dense": core_cycles(layer, dense_cfg)["cycles"],
            "speedup": d["cycles"] / s["cycles"],
            "pe_utilization": useful_macs(layer, sparse_cfg) / (sparse_cfg.pes * s["cycles"]),
            "pe_utilization_dense": useful_macs(layer, dense_cfg) / (dense_cfg.pes * d["cycles"]),
            "groups_skipped_fraction": s["groups_skipped"] / groups if groups else 0.0,
            "groups_skipped_fraction_dense": (d["groups_skipped"]
                                              / max(1, d["groups_issued"] + d["groups_skipped"])),
            "bit_exact": bool(s["bit_exact"] and d["bit_exact"]),
            "sim_cycles_per_second": s["cycles"] / s["run_seconds"],
            "sim_cycles_per_second_dense": d["cycles"] / d["run_seconds"],
        })
    return {"bench": "core", "config": sparse_cfg.to_dict(), "dense_config": dense_cfg.to_dict(),
            "seed": seed, "layers": report}


def bench_accel(config: SenseConfig, *, seed: int = 7, order: str = "auto",
                log=sys.stderr) -> dict:
    """The bench layers as one-layer networks on the whole accelerator (DMA, descriptor walk,
    weight streaming, output writer) in RTL: cycles from the RTL counters, PE utilisation with
    the DMA included, and the core alone (host.perf, exact) for comparison."""
    layers = bench_layers(config.group, seed)
    cfg = fit_buffers(config.replace(sparse=True), layers)
    # And one layer whose input exceeds that IFM store ninefold: it runs in bands.
    layers.append(tiled_bench_layer(config.group, seed))
    steps, images = [], []
    for layer in layers:
        images.append(pack_image(one_layer_network(layer, cfg.group), cfg, order=order))
        steps.append({"op": "run", "image": images[-1], "x": layer.x[None], "name": layer.name})
    print(f"bench accel: {cfg.rows}x{cfg.cols} grid, M={cfg.group}; building and simulating the "
          f"accelerator (first build of a configuration takes minutes)", file=log, flush=True)
    res = run_system(cfg, steps, name="bench-accel", mem_size=1 << 23)
    report = []
    for layer, image, step in zip(layers, images, res["steps"]):
        run = step["runs"][0]
        got = step["outputs"][0]
        core = core_cycles(layer, cfg)
        est = accelerator_estimate(image, layer.x, cfg)
        report.append({
            "layer": layer.name,
            "order": describe(image, cfg)["layers"][0]["order"],
            "band_rows": describe(image, cfg)["layers"][0]["tiling"]["band_rows"],
            "cycles": run["cycles"],
            "cycles_core_only": core["cycles"],
            "cycles_model": est["cycles"],
            "model_error": (est["cycles"] - run["cycles"]) / run["cycles"],
            "pe_utilization": useful_macs(layer, cfg) / (cfg.pes * run["cycles"]),
            "pe_utilization_core_only": useful_macs(layer, cfg) / (cfg.pes * core["cycles"]),
            "dram_read_bytes": run["dram_read_bytes"],
            "dram_write_bytes": run["dram_write_bytes"],
            "groups_skipped": run["groups_skipped"],
            "bit_exact": bool((got == layer.reference()).all()),
        })
    return {"bench": "accel", "config": cfg.to_dict(), "seed": seed, "order": order,
            "layers": report}


def sim_bench_configs() -> list[tuple[str, SenseConfig]]:
    """The configurations `sense bench sim` measures by default: `small`, and `small` with a
    16x16 grid and 32 KiB of IFM buffer (as first measured, when every column held its own copy
    of the layer input)."""
    small = SenseConfig.preset("small")
    return [("small", small), ("small-16x16", small.replace(rows=16, cols=16, ifm_kib=32))]


def bench_sim(configs: list[tuple[str, SenseConfig]], *, images: int = 100,
              baseline_images: int = 5, seed: int = 1, log=None) -> dict:
    """Speed of whole-network RTL simulation: the bundled digits model, image by image through
    the whole accelerator and the driver, with the DRAM inside the simulated design (`sense
    sim`'s default) and, as the baseline, cocotbext-axi's AxiRam answering every beat in Python.
    Simulated cycles per second count the run steps only (loading the image, building and
    starting the simulator are reported apart, in the wall time)."""
    from host.digits import DEFAULT_MODEL
    from host.pipeline import default_inputs, prepare_model
    from sim.model_run import simulate_model

    log = log or sys.stderr          # looked up at the call: tests replace sys.stderr
    model = str(DEFAULT_MODEL)
    rows = []
    for name, config in configs:
        prepared = prepare_model(config, model, log=log)
        x, labels = default_inputs(model, prepared.calib)
        for dram, n in (("design", images), ("cocotb", baseline_images)):
            if n <= 0:
                continue
            print(f"bench sim: {name} ({config.rows}x{config.cols}), DRAM {dram}, {n} images",
                  file=log, flush=True)
            t0 = time.perf_counter()
            rep = simulate_model(config, prepared, x[:n], labels[:n], seed=seed, model=model,
                                 dram=dram)
            rows.append({
                "name": f"{name}/{dram}", "config_name": name, "config": config.to_dict(), "dram": dram, "images": n,
                "cycles_per_image": rep["cycles_per_image"],
                "simulated_cycles": sum(r["cycles"] for r in rep["runs"]),
                "simulation_seconds": rep["simulation_seconds"],
                "simulated_cycles_per_second": rep["simulated_cycles_per_second"],
                "wall_seconds_with_build": time.perf_counter() - t0,
                "bit_exact": rep["bit_exact_images"] == n,
            })
    for name, _ in configs:
        both = {r["dram"]: r for r in rows if r["config_name"] == name}
        if len(both) == 2:
            both["design"]["speedup_over_cocotb"] = (both["design"]["simulated_cycles_per_second"]
                                                     / both["cocotb"]["simulated_cycles_per_second"])
    return {"bench": "sim", "model": "digits", "seed": seed, "runs": rows}
