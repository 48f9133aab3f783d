"""cocotb bench for hw.core.core.Core: runs the layers of a case file and compares with host.golden.

Environment: SENSE_CASES (an .npz written by sim.corerun.save_cases: layers, and per layer the
probability that the output consumer is ready in a cycle), SENSE_RESULTS (JSON written here: per
layer bit_exact, counters, cycles, simulation wall time), SENSE_SEED.
"""

import json
import os
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, First, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from host.buffers import (
    activation_beats,
    assemble_output,
    layer_word,
    param_words,
    weight_words,
)
from hw.core.ifm_store import ifm_geom_layout
from hw.layouts import ofm_row_layout, pack, unpack
from sim.benches.util import start_clock_and_reset
from sim.corerun import load_cases
from sim.harness import config_from_env

CLOCK_NS = 10  # sim.benches.util.start_clock_and_reset's default period


async def write_words(dut, prefix, words):
    addr, data, en = (getattr(dut, f"{prefix}_wr_{n}") for n in ("addr", "data", "en"))
    for i, word in enumerate(words):
        addr.value = i
        data.value = word
        en.value = 1
        await FallingEdge(dut.clk)
    en.value = 0


async def load_input(dut, cfg, layer):
    """Place the layer input in the IFM store: its geometry, then its DRAM beats."""
    c, h, w = layer.x.shape
    fields = {"in_h": h, "in_w": w, "in_groups": -(-c // cfg.group), "stride": layer.stride,
              "pad": layer.pad, "pad_top": layer.pad, "out_w": layer.out_shape()[1]}
    dut.ifm_geom.value = pack(ifm_geom_layout(), fields)
    dut.ifm_setup.value = 1
    await FallingEdge(dut.clk)
    dut.ifm_setup.value = 0
    while dut.ifm_ready.value != 1:
        await FallingEdge(dut.clk)
    dut.ifm_load.value = 1
    await FallingEdge(dut.clk)
    dut.ifm_load.value = 0
    beats = activation_beats(layer.x, cfg)
    budget = 16 * len(beats) + 100
    dut.ifm_beat__valid.value = 1
    for beat in beats:
        dut.ifm_beat__payload.value = beat
        await ReadOnly()
        while dut.ifm_beat__ready.value != 1:
            await FallingEdge(dut.clk)
            await ReadOnly()
            budget -= 1
            assert budget > 0, "the IFM store stopped taking beats"
        await FallingEdge(dut.clk)
    dut.ifm_beat__valid.value = 0
    while dut.ifm_loading.value == 1:
        await FallingEdge(dut.clk)
        budget -= 1
        assert budget > 0, "the IFM store did not finish loading"


async def run_layer(dut, cfg, layer, rng, ready_p, timeout):
    await load_input(dut, cfg, layer)
    weights = weight_words(layer, cfg)
    await write_words(dut, "w", weights)
    dut.w_avail.value = len(weights)
    await write_words(dut, "par", param_words(layer, cfg))
    dut.layer.value = layer_word(layer, cfg)
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    t_run = time.perf_counter()
    layout = ofm_row_layout(cfg)
    rows = []
    always_ready = ready_p >= 1.0
    t_start = get_sim_time("ns")
    while True:
        ready = 1 if always_ready else int(rng.random() < ready_p)
        dut.ofm__ready.value = ready
        valid = dut.ofm__valid.value == 1
        if ready and valid:
            row = unpack(layout, dut.ofm__payload.value.to_unsigned())
            rows.append((row["channel"], row["p0"], row["count"], row["data"]))
        if dut.done.value == 1:
            break
        cycles = int(get_sim_time("ns") - t_start) // CLOCK_NS
        if cycles > timeout:
            raise AssertionError(f"{layer.name}: core not done after {timeout} cycles")
        if always_ready and not valid:
            # Nothing to collect: sleep until a row, the end, or the cycle budget runs out.
            await First(RisingEdge(dut.ofm__valid), RisingEdge(dut.done),
                        ClockCycles(dut.clk, timeout - cycles + 1))
        await FallingEdge(dut.clk)
    dut.ofm__ready.value = 0
    run_seconds = time.perf_counter() - t_run
    counters = {name: int(getattr(dut, name).value.to_unsigned())
                for name in ("cycles", "groups_issued", "groups_skipped", "slots_issued", "macs")}
    got = assemble_output(rows, layer, cfg)
    want = layer.reference()
    mismatch = int((got != want).sum())
    return {"name": layer.name, "bit_exact": mismatch == 0, "mismatches": mismatch,
            "outputs": int(want.size), "run_seconds": run_seconds, **counters}


@cocotb.test()
async def core_matches_golden(dut):
    cfg = config_from_env()
    layers = load_cases(os.environ["SENSE_CASES"])
    rng = np.random.default_rng(int(os.environ.get("SENSE_SEED", "1")))
    for name in ("ifm_setup", "ifm_load", "ifm_load_lane", "ifm_beat__valid", "w_wr_en", "par_wr_en", "start",
                 "ofm__ready", "w_avail", "ifm_rd_en"):
        getattr(dut, name).value = 0
    await start_clock_and_reset(dut)
    results = []
    t0 = time.perf_counter()
    for layer, ready_p in layers:
        budget = 100_000 + 50 * int(np.prod(layer.w.shape)) * int(np.prod(layer.out_shape()))
        result = await run_layer(dut, cfg, layer, rng, ready_p, timeout=budget)
        result["ready"] = ready_p
        dut._log.info("%s", result)
        results.append(result)
    wall = time.perf_counter() - t0
    with open(os.environ["SENSE_RESULTS"], "w") as f:
        json.dump({"layers": results, "wall_seconds": wall}, f)
    bad = [r for r in results if not r["bit_exact"]]
    assert not bad, f"{len(bad)} layers not bit-exact: {bad}"
