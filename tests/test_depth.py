"""hw.depth: the longest register-to-register path of a mapped netlist, bit by bit."""

import pytest

from hw.depth import DepthError, logic_depth


def _cell(kind, inputs, outputs, **params):
    return {"type": kind, "parameters": params,
            "port_directions": {**{p: "input" for p in inputs}, **{p: "output" for p in outputs}},
            "connections": {**inputs, **outputs}}


def _netlist(cells, ports=None, nets=None):
    return {"modules": {"top": {"cells": cells, "ports": ports or {}, "netnames": nets or {}}}}


def test_levels_carries_and_the_block_of_the_end():
    # ff_a -> LUT -> LUT -> CARRY4 bit 2 -> ff_b; ff_a -> LUT -> ff_c (shallower)
    cells = {
        "a.ff_a": _cell("FDRE", {"D": [1]}, {"Q": [10]}),
        "a.l1": _cell("LUT2", {"I0": [10], "I1": [10]}, {"O": [11]}),
        "a.l2": _cell("LUT1", {"I0": [11]}, {"O": [12]}),
        "b.c": _cell("CARRY4", {"CI": [0], "S": [20, 21, 12, 22], "DI": [0, 0, 0, 0]},
                     {"O": [30, 31, 32, 33], "CO": [40, 41, 42, 43]}),
        "b.ff_b": _cell("FDRE", {"D": [32]}, {"Q": [1]}),
        "c.ff_c": _cell("FDRE", {"D": [11]}, {"Q": [2]}),
        "b.ff_low": _cell("FDRE", {"D": [31]}, {"Q": [3]}),   # bit 1 does not see S[2]
    }
    nets = {"a.q": {"bits": [10], "hide_name": 0}, "a.mid": {"bits": [11], "hide_name": 0},
            "$auto$x": {"bits": [12], "hide_name": 1}, "b.sum": {"bits": [30, 31, 32, 33],
                                                              "hide_name": 0}}
    depth = logic_depth(_netlist(cells, nets=nets), "top", group=lambda n: n.split(".")[0])
    # the path names each signal once, start first; Yosys's own nets are left out
    assert depth["b"] == {"lut_levels": 2, "carries": 1, "dsps": 0, "from": "a.ff_a",
                          "to": "b.ff_b", "path": ["a.q", "a.mid", "b.sum"]}
    assert depth["c"]["lut_levels"] == 1 and depth["c"]["to"] == "c.ff_c"
    assert depth["(all)"] == depth["b"]


def test_a_carry_chain_feeding_itself_is_no_loop_but_a_real_loop_is_refused():
    # The carry's top output feeds its own bit-0 input through a LUT: a loop between cells,
    # not between bits (CO[3] depends on S[0], but S[0] on CO[3] would be; here S[3] <- O[0]).
    cells = {
        "ff": _cell("FDRE", {"D": [33]}, {"Q": [10]}),
        "c": _cell("CARRY4", {"CI": [0], "S": [10, 11, 12, 13], "DI": [0, 0, 0, 0]},
                   {"O": [30, 31, 32, 33], "CO": [40, 41, 42, 43]}),
        "l": _cell("LUT1", {"I0": [30]}, {"O": [13]}),
        "x": _cell("LUT1", {"I0": [10]}, {"O": [11]}),
        "y": _cell("LUT1", {"I0": [10]}, {"O": [12]}),
    }
    depth = logic_depth(_netlist(cells), "top")
    assert depth["ff"]["lut_levels"] == 1 and depth["ff"]["carries"] == 2
    cells["l"] = _cell("LUT1", {"I0": [33]}, {"O": [13]})     # O[3] -> S[3]: a real loop
    with pytest.raises(DepthError, match="loop"):
        logic_depth(_netlist(cells), "top")


def test_an_unregistered_dsp_is_on_the_path_a_registered_one_ends_it():
    cells = {
        "ff": _cell("FDRE", {"D": [1]}, {"Q": [10]}),
        "dsp": _cell("DSP48E2", {"A": [10]}, {"P": [20]}, MREG="0", PREG="0"),
        "l": _cell("LUT1", {"I0": [20]}, {"O": [21]}),
        "out": _cell("FDRE", {"D": [21]}, {"Q": [1]}),
    }
    assert logic_depth(_netlist(cells), "top")["out"]["dsps"] == 1
    cells["dsp"]["parameters"]["PREG"] = "1"
    depth = logic_depth(_netlist(cells), "top")
    assert depth["out"] == {"lut_levels": 1, "carries": 0, "dsps": 0, "from": "dsp", "to": "out",
                            "path": []}


def test_ecp5_cells_and_blocks_by_net():
    # ff -> LUT4 -> CCU2C (bit 1 sees bit 0 and CIN) -> PFUMX -> MULT18X18D -> ff; the
    # flip-flops carry no hierarchy (synth_ecp5's $auto$ff names): blocks come from the nets
    cells = {
        "$auto$ff.1": _cell("TRELLIS_FF", {"DI": [1]}, {"Q": [10]}),
        "l1": _cell("LUT4", {"A": [10], "B": [10], "C": [10], "D": [10]}, {"Z": [11]}),
        "c": _cell("CCU2C", {"A0": [11], "B0": [0], "C0": [0], "D0": [0], "A1": [0], "B1": [0],
                             "C1": [0], "D1": [0], "CIN": [0]},
                   {"S0": [20], "S1": [21], "COUT": [22]}),
        "mx": _cell("PFUMX", {"ALUT": [21], "BLUT": [10], "C0": [10]}, {"Z": [23]}),
        "m": _cell("MULT18X18D", {"A0": [23], "B0": [10]}, {"P0": [24]},
                   REG_INPUTA_CLK="NONE", REG_INPUTB_CLK="NONE", REG_PIPELINE_CLK="NONE",
                   REG_OUTPUT_CLK="NONE"),
        "$auto$ff.2": _cell("TRELLIS_FF", {"DI": [24]}, {"Q": [1]}),
        "mr": _cell("MULT18X18D", {"A0": [10], "B0": [10]}, {"P0": [30]},
                    REG_INPUTA_CLK="CLK0", REG_OUTPUT_CLK="NONE"),
        "ram": _cell("TRELLIS_DPR16X4", {"RAD0": [30], "DI0": [11]}, {"DO0": [31]}),
        "$auto$ff.3": _cell("TRELLIS_FF", {"DI": [31]}, {"Q": [2]}),
    }
    nets = {"a.q": {"bits": [10], "hide_name": 0}, "u.sum": {"bits": [20, 21], "hide_name": 0},
            "u.prod": {"bits": [24], "hide_name": 0}, "v.rd": {"bits": [31], "hide_name": 0},
            "w.$signal$9": {"bits": [2], "hide_name": 1}}
    depth = logic_depth(_netlist(cells, nets=nets), "top", group=lambda n: n.split(".")[0],
                        by_net=True)
    assert depth["u"] == {"lut_levels": 1, "carries": 1, "dsps": 1, "from": "$auto$ff.1",
                          "to": "$auto$ff.2", "path": ["a.q", "u.sum", "u.prod"]}
    # a registered multiplier starts a path; the distributed RAM's read is a level; the path
    # is charged to the block of the signal its register drives (a Yosys-made name under "w")
    assert depth["w"]["lut_levels"] == 1 and depth["w"]["dsps"] == 0
    assert depth["w"]["from"] == "mr" and depth["w"]["path"] == ["v.rd"]


def test_rank_orders_levels_then_dsps_then_carries():
    from hw.depth import rank
    a = {"lut_levels": 5, "carries": 9, "dsps": 0}
    b = {"lut_levels": 5, "carries": 0, "dsps": 1}
    c = {"lut_levels": 6, "carries": 0, "dsps": 0}
    assert sorted([a, b, c], key=rank, reverse=True) == [c, b, a]
