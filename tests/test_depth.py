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
