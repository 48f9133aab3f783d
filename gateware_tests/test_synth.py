"""Resource counts from Yosys (hw.synth) are present and sane for the small configuration."""

import pytest

from hw.config import SenseConfig
from hw.layouts import ifm_layout, weight_op_layout
from hw.synth import ZU9EG, synthesize

SMALL = SenseConfig.preset("small")


@pytest.fixture(scope="module")
def grid():
    return synthesize("grid", SMALL)


def test_grid_has_one_dsp_per_pe(grid):
    total = grid["total"]
    assert total["dsp"] == SMALL.pes            # every PE's multiply-accumulate in a DSP48E2
    assert grid["per_pe"]["dsp"] == 1
    assert total["lut"] > 0 and total["ff"] > SMALL.pes * 32   # at least the accumulators
    assert 0 < grid["fraction_of_zu9eg"]["lut"] < 0.01
    pes = {name: res for name, res in grid["blocks"].items() if name.startswith("pe_")}
    assert len(pes) == SMALL.pes and all(res["dsp"] == 1 for res in pes.values())


def test_sparse_pe_costs_more_luts_than_dense_and_same_dsp():
    sparse = synthesize("pe", SMALL)["total"]
    dense = synthesize("pe", SMALL.replace(sparse=False))["total"]
    assert sparse["dsp"] == dense["dsp"] == 1
    assert sparse["lut"] > dense["lut"]          # the M:1 operand select
    assert ZU9EG["dsp"] == 2520


def test_pe_pairs_halve_the_dsps():
    """dsp_pairs: one DSP48E2 per two PEs (an odd last column keeps its own), and a pair costs
    at most the packing's few LUTs (the operand's borrow, the carry-in bit) more than two PEs."""
    pairs = SMALL.replace(cols=3, dsp_pairs=True)
    grid = synthesize("grid", pairs)
    assert grid["total"]["dsp"] == pairs.rows * 2 == pairs.cells
    pair, lone = synthesize("pe", SMALL.replace(dsp_pairs=True)), synthesize("pe", SMALL)
    assert pair["total"]["dsp"] == 1 and pair["per_pe"]["dsp"] == 0.5
    assert 2 * lone["total"]["lut"] <= pair["total"]["lut"] <= 2 * lone["total"]["lut"] + 12


# A small core: the whole one takes Yosys minutes, most of them the fixed blocks.
TINY = SenseConfig(rows=2, cols=2, group=4, ifm_kib=1, weight_kib=1, ofm_kib=1, max_channels=16)


def test_grid_report_stands_in_for_the_grid():
    """The core with its grid a black box plus the grid's own report: the same flip-flops,
    block RAM and DSPs as the whole core, and LUTs within 5 % (with the grid hidden, Yosys
    optimises the boundary differently: +2.4 % on the small core, -1.8 % on a 2x2 one)."""
    grid = synthesize("grid", TINY)
    whole = synthesize("core", TINY)["total"]
    split = synthesize("core", TINY, grid_report=grid)["total"]
    for k in ("ff", "bram36", "dsp"):
        assert split[k] == whole[k], k
    assert abs(split["lut"] - whole["lut"]) <= 0.05 * whole["lut"]
    with pytest.raises(ValueError, match="not of the grid block"):
        synthesize("core", TINY.replace(rows=1), grid_report=grid)


def test_pe_report_stands_in_for_the_pes(grid):
    """The grid with every PE a black box plus the PE's own report: the same DSPs and carry
    chains, LUTs within 5 % of the whole grid, and flip-flops above it by at most the edge PEs'
    output registers, which the whole grid drops (the last column's weight outputs, the bottom
    row's IFM outputs), and the `done` flip-flops the result capture does not read."""
    split = synthesize("grid", SMALL, pe_report=synthesize("pe", SMALL))["total"]
    whole = grid["total"]
    for k in ("dsp", "carry", "bram36"):
        assert split[k] == whole[k], k
    assert abs(split["lut"] - whole["lut"]) <= 0.05 * whole["lut"]
    edges = (SMALL.rows * weight_op_layout(SMALL).size + SMALL.cols * ifm_layout(SMALL).size)
    edges += SMALL.pes - SMALL.rows - 1   # `done` is read in column 0 and at the corner only
    assert 0 <= split["ff"] - whole["ff"] <= edges, (split["ff"], whole["ff"], edges)
    with pytest.raises(ValueError, match="not of the pe block"):
        synthesize("grid", SMALL, pe_report=grid)


def test_depth_report_names_the_deepest_path_of_each_block():
    """`depth=True`: the PE's deepest path is its operand select into the multiplier, which
    Yosys leaves unregistered in the DSP48E2 (the product register is in the fabric)."""
    depth = synthesize("pe", SMALL, depth=True)["depth"]
    assert depth["(all)"]["lut_levels"] >= 1 and depth["(all)"]["dsps"] == 1
