"""cocotb bench for hw.core.pe.PE (or, with ``dsp_pairs``, PEPair): thousands of random weight
operations against host.golden."""

import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from host import golden
from hw.core.pe import PE, PEPair
from hw.layouts import ifm_layout, pack, unpack, weight_op_layout
from sim.benches.util import random_int8, start_clock_and_reset
from sim.harness import config_from_env


def make_tiles(cfg, rng, count):
    """Random outputs to compute: each is G groups of M IFM values and M weights of which M/2
    are kept (the rest pruned to 0). Includes the edge cases on purpose."""
    m = cfg.group
    tiles = []
    for i in range(count):
        kind = i % 10
        groups = {0: 1, 1: 64}.get(kind, int(rng.integers(1, 7)))
        x = random_int8(rng, (groups, m), extremes=0.15)
        if kind == 1:                       # the largest products, a long sum
            x[:] = -128
        if kind == 2:                       # all-zero IFM groups
            x[:] = 0
        if kind == 3:                       # some all-zero groups
            x[rng.random(groups) < 0.5] = 0
        keep = np.argsort(rng.random((groups, m)), axis=1)[:, : cfg.kept_per_group]
        keep.sort(axis=1)
        w = np.zeros((groups, m), np.int8)
        values = random_int8(rng, keep.shape, extremes=0.15, zeros=0.05)
        if kind == 1:
            values[:] = -128
        np.put_along_axis(w, keep, values, axis=1)
        tiles.append((x, w, keep))
    return tiles


def schedule(cfg, tiles, rng, columns=1):
    """The per-cycle inputs of the PE: a list of (weight op dict, IFM list). With `columns`
    > 1 a tile's x has a leading column axis and the IFM entry is a list per column."""
    lanes = cfg.lanes
    bubble_x = lambda: [int(v) for v in random_int8(rng, lanes)]  # noqa: E731
    one = columns == 1
    bubble = lambda: ({"value": 0, "pos": 0, "first": 0, "last": 0},  # noqa: E731
                      bubble_x() if one else [bubble_x() for _ in range(columns)])
    cycles = []
    for x, w, keep in tiles:
        x = x[None] if one else x
        ops = []
        for g in range(w.shape[0]):
            if cfg.sparse:   # M/2 kept weights, the group's M IFM values held meanwhile
                ops += [({"value": int(w[g, p]), "pos": int(p)}, [[int(v) for v in c[g]] for c in x])
                        for p in keep[g]]
            else:            # dense baseline: every weight, one IFM value per cycle
                ops += [({"value": int(w[g, p])}, [[int(c[g, p])] for c in x])
                        for p in range(cfg.group)]
        for i, (op, xs) in enumerate(ops):
            op.update(first=int(i == 0), last=int(i == len(ops) - 1))
            cycles.append((op, xs[0] if one else xs))
            if i < len(ops) - 1 and rng.random() < 0.05:
                cycles.append(bubble())      # a bubble inside an output changes nothing
        cycles += [bubble() for _ in range(int(rng.integers(0, 3)))]
    cycles += [bubble() for _ in range(PE.LATENCY + 3)]
    return cycles


@cocotb.test()
async def pe_matches_golden(dut):
    cfg = config_from_env()
    rng = np.random.default_rng(int(os.environ.get("SENSE_SEED", "1")))
    tiles = make_tiles(cfg, rng, int(os.environ.get("SENSE_PE_TILES", "400")))
    if cfg.dsp_pairs:
        await _pair(dut, cfg, rng, tiles)
        return
    expected = [int(golden.fully_connected(x.reshape(1, -1), w.reshape(1, -1))[0, 0])
                for x, w, _ in tiles]
    cycles = schedule(cfg, tiles, rng)
    wl, xl = weight_op_layout(cfg), ifm_layout(cfg)
    if not cfg.pos_width:
        for op, _ in cycles:
            op.pop("pos", None)

    await start_clock_and_reset(dut)
    results, prev, operands = [], None, 0
    for t in range(len(cycles) + 1):
        if t:
            await FallingEdge(dut.clk)
            # Operands pass through, registered, one cycle per hop.
            assert unpack(wl, dut.w_out.value.to_unsigned()) == prev[0], f"w_out at cycle {t}"
            assert unpack(xl, dut.x_out.value.to_unsigned()) == prev[1], f"x_out at cycle {t}"
            if dut.done.value == 1:
                results.append(dut.acc.value.to_signed())
        if t < len(cycles):
            op, xs = cycles[t]
            dut.w_in.value = pack(wl, op)
            dut.x_in.value = pack(xl, xs)
            operands += op["value"] != 0
            prev = (op, xs)
    assert len(results) == len(expected), f"{len(results)} outputs done, {len(expected)} expected"
    mismatches = [(i, r, e) for i, (r, e) in enumerate(zip(results, expected)) if r != e]
    assert not mismatches, f"{len(mismatches)} wrong sums, first (index, got, want): {mismatches[:5]}"
    dut._log.info("PE M=%d sparse=%s: %d outputs bit-exact over %d cycles (%d nonzero weights)",
                  cfg.group, cfg.sparse, len(expected), len(cycles), operands)


async def _pair(dut, cfg, rng, tiles):
    """PEPair: column 1 multiplies the same operations one cycle later, with its own IFMs."""
    tiles = [(np.stack([x, random_int8(rng, x.shape, extremes=0.15)]), w, keep)
             for x, w, keep in tiles]
    expected = [[int(golden.fully_connected(c.reshape(1, -1), w.reshape(1, -1))[0, 0])
                 for c in x] for x, w, _ in tiles]
    cycles = schedule(cfg, tiles, rng, columns=2)
    wl, xl = weight_op_layout(cfg), ifm_layout(cfg)
    if not cfg.pos_width:
        for op, _ in cycles:
            op.pop("pos", None)
    await start_clock_and_reset(dut)
    results, seen = [], []        # seen[t] = (op, column 0 IFM, column 1 IFM) driven at t
    for t in range(len(cycles) + 2):
        if t:
            await FallingEdge(dut.clk)
            if t >= 2:   # w_out two hops late, each x_out one hop late
                assert unpack(wl, dut.w_out.value.to_unsigned()) == seen[t - 2][0], f"w_out at {t}"
            x_out = dut.x_out.value.to_unsigned()
            for k in (0, 1):
                got = unpack(xl, (x_out >> (k * xl.size)) & ((1 << xl.size) - 1))
                assert got == seen[t - 1][1 + k], f"x_out[{k}] at cycle {t}"
            if dut.done.value == 1:
                acc = dut.acc.value.to_unsigned()
                aw = cfg.acc_width
                results.append([_signed((acc >> (aw * k)) % (1 << aw), aw) for k in (0, 1)])
        op, xs = cycles[min(t, len(cycles) - 1)]
        # Column 1 meets each operation a cycle after column 0: its IFMs lag by one cycle.
        x1 = cycles[t - 1][1][1] if 0 < t <= len(cycles) else xs[1]
        dut.w_in.value = pack(wl, op)
        dut.x_in.value = pack(xl, xs[0]) | pack(xl, x1) << xl.size
        seen.append((op, xs[0], x1))
    assert len(results) == len(expected), f"{len(results)} outputs done, {len(expected)} expected"
    bad = [(i, r, e) for i, (r, e) in enumerate(zip(results, expected)) if r != e]
    assert not bad, f"{len(bad)} wrong sums, first (index, got, want): {bad[:5]}"
    dut._log.info("PE pair M=%d sparse=%s: %d x 2 outputs bit-exact over %d cycles",
                  cfg.group, cfg.sparse, len(expected), len(cycles))


def _signed(value, bits):
    return value - (1 << bits) if value >> (bits - 1) else value
