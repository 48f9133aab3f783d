"""The ZCU102 platform produces a Vivado build tree with the board's pins (no Vivado needed);
`sense build` writes the board trees."""

import json
import re

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from constraints.tree import write_tree
from constraints.ulx3s import ecp5_pll
from constraints.zcu102 import (
    BUTTONS,
    LEDS,
    PS_BLOCK,
    SWITCHES,
    ZCU102_REGS_BASE,
    ZCU102Platform,
    zcu102_files,
)
from hw.config import SenseConfig


class Blinky(Elaboratable):
    """LED i blinks, inverted by DIP switch i; the centre button freezes the counter."""

    def elaborate(self, platform):
        m = Module()
        count = Signal(27)
        m.submodules.hold = hold = io.Buffer("i", platform.request("button_c", dir="-"))
        with m.If(~hold.i):
            m.d.sync += count.eq(count + 1)
        for i in range(len(LEDS)):
            m.submodules[f"sw{i}"] = sw = io.Buffer("i", platform.request("switch", i, dir="-"))
            m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            m.d.comb += led.o.eq(count[-1 - i] ^ sw.i)
        return m


def test_vivado_tree_has_part_clock_and_pins():
    plan = ZCU102Platform().build(Blinky(), name="blinky", do_build=False)
    files = dict(plan.files)
    xdc, tcl = files["blinky.xdc"], files["blinky.tcl"]
    assert "xczu9eg-ffvb1156-2-e" in tcl
    for pin in LEDS + SWITCHES + (BUTTONS["c"],):
        assert f"LOC {pin} " in xdc, pin
    assert "LOC G21 " in xdc and "LVDS_25" in xdc               # the 125 MHz system clock
    assert "-period 8.0" in xdc
    assert "LOC AM13 " in xdc                                    # CPU reset, the default reset
    assert "LVCMOS33" in xdc
    assert "module blinky" in files["blinky.v"]


# -- sense build ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zcu102_tree():
    return zcu102_files(SenseConfig.preset("small").replace(clock_mhz=200))


def test_zcu102_tree_has_the_ps_block_design_and_a_readme(zcu102_tree):
    files = zcu102_tree
    tcl, ps = files["sense_zcu102.tcl"], files[f"{PS_BLOCK}.tcl"]
    assert "xczu9eg-ffvb1156-2-e" in tcl
    # The block design is created after the sources are read and before synthesis.
    assert tcl.index(f"source {PS_BLOCK}.tcl") < tcl.index("synth_design")
    assert "write_hw_platform" in tcl and tcl.index("write_bitstream") < tcl.index(
        "write_hw_platform")
    assert "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {200}" in ps
    assert "M_AXI_HPM0_FPD" in ps and "S_AXI_HP0_FPD" in ps and "pl_ps_irq0" in ps
    assert f"-offset 0x{ZCU102_REGS_BASE:08X}" in ps
    readme = files["README.md"]
    assert "licence" in readme and "sh build_sense_zcu102.sh" in readme
    assert json.loads(files["sense_config.json"])["rows"] == 4


@pytest.fixture(scope="module")
def zcu102_weight_port_tree():
    return zcu102_files(SenseConfig.preset("small").replace(clock_mhz=200, weight_port=True))


def test_zcu102_top_instantiates_exactly_the_block_design_ports(zcu102_tree):
    _check_block_design_ports(zcu102_tree, {"M_AXI_REGS", "S_AXI_DMA"})


def test_zcu102_weight_port_goes_to_hp1(zcu102_weight_port_tree):
    """With the weight port the block design has a read-only port for it, through its own
    SmartConnect to HP1 FPD (enabled, 128-bit), and the top wires its read channels."""
    ps = zcu102_weight_port_tree[f"{PS_BLOCK}.tcl"]
    assert "PSU__USE__S_AXI_GP3 {1}" in ps and "PSU__SAXIGP3__DATA_WIDTH {128}" in ps
    assert "READ_ONLY" in ps and "S_AXI_HP1_FPD" in ps and "saxihp1_fpd_aclk" in ps
    ports = _check_block_design_ports(zcu102_weight_port_tree,
                                      {"M_AXI_REGS", "S_AXI_DMA", "S_AXI_WEIGHTS"})
    assert not any(p.startswith(("S_AXI_WEIGHTS_aw", "S_AXI_WEIGHTS_w", "S_AXI_WEIGHTS_b"))
                   for p in ports)
    assert "S_AXI_HP1_FPD" not in zcu102_files(
        SenseConfig.preset("small").replace(clock_mhz=200))[f"{PS_BLOCK}.tcl"]


def _check_block_design_ports(tree, want):
    """The top instantiates exactly the ports the block design creates, with every handshake
    of each interface (a read-only one its read channels); returns the instance's ports."""
    verilog, ps = tree["sense_zcu102.v"], tree[f"{PS_BLOCK}.tcl"]
    inst = re.search(rf"\n\s*{PS_BLOCK} \w+ \((.*?)\);", verilog, re.S)
    assert inst, "no instance of the PS block design"
    ports = set(re.findall(r"\.(\w+)\(", inst.group(1)))
    made = set(re.findall(r"create_bd_port -dir \w+(?: -from \d+ -to \d+)? -type \w+ (\w+)", ps))
    interfaces = set(re.findall(r"create_bd_intf_port -mode \w+ -vlnv \S+ (\w+)", ps))
    assert made == {"pl_clk0", "pl_resetn0", "pl_ps_irq0"} and interfaces == want
    for port in ports:
        assert port in made or port.rsplit("_", 1)[0] in interfaces, port
    for bus in interfaces:                                       # every handshake is wired
        channels = ("ar", "r") if bus == "S_AXI_WEIGHTS" else ("aw", "w", "b", "ar", "r")
        for channel in channels:
            assert f"{bus}_{channel}valid" in ports and f"{bus}_{channel}ready" in ports
    assert made <= ports
    return ports


def test_zcu102_leds_are_on_the_board_pins(zcu102_tree):
    xdc = zcu102_tree["sense_zcu102.xdc"]
    for pin in LEDS[:4]:
        assert f"LOC {pin} " in xdc


def test_write_tree_replaces_a_directory_whole(tmp_path):
    out = tmp_path / "tree"
    write_tree({"a.txt": "one", "sub/b.bin": b"\x00"}, out)
    write_tree({"c.txt": "two"}, out)
    assert sorted(p.name for p in out.rglob("*")) == ["c.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("mhz", [50, 75, 100, 125, 200])
def test_ecp5_pll_settings(mhz):
    pll = ecp5_pll(25, mhz)
    assert pll["out_mhz"] == pytest.approx(mhz)
    assert pll["out_mhz"] == 25 * pll["CLKFB_DIV"] / pll["CLKI_DIV"]
    assert 400 <= pll["out_mhz"] * pll["CLKOP_DIV"] <= 800


def test_ulx3s_tree_has_pll_clock_constraint_and_leds(tmp_path):
    from sense.cli import main

    assert main(["build", "--board", "ulx3s", "--tree-only", "-o", str(tmp_path / "u")]) == 0
    lpf = (tmp_path / "u" / "sense_ulx3s.lpf").read_text()
    mhz = SenseConfig.preset("ulx3s").clock_mhz
    assert "FREQUENCY NET" in lpf and f"{mhz * 1_000_000}" in lpf.replace(".0", "")
    for pin in "B2 C2 C1 D2 D1 E2 E1 H3".split():
        assert f'"{pin}"' in lpf
    script = (tmp_path / "u" / "build_sense_ulx3s.sh").read_text()
    assert "--85k" in script and "--report sense_ulx3s_report.json" in script
    il = (tmp_path / "u" / "sense_ulx3s.il").read_text()
    assert "EHXPLLL" in il and "CLKFB_DIV" in il
    # Yosys 0.60's autoname pass traps on this design: synthesis stops before `check` and runs
    # that label's other commands itself.
    ys = (tmp_path / "u" / "sense_ulx3s.ys").read_text()
    assert "-run :check" in ys and "check -noinit" in ys and "autoname" not in ys
    # Narrow products in LUTs: the design needs more multipliers than the part has.
    assert "booth r:A_WIDTH<=6 r:B_WIDTH<=6 sense_ulx3s.selftest.accel.check/" in ys
    # scripts/ecp5_fmax.py --system / --placed run the script's own tool command lines
    from constraints.ulx3s import _script_commands
    commands = _script_commands(tmp_path / "u")
    assert commands["YOSYS"] == ["-q", "-l", "sense_ulx3s.rpt", "sense_ulx3s.ys"]
    assert commands["NEXTPNR_ECP5"][commands["NEXTPNR_ECP5"].index("--json") + 1] \
        == "sense_ulx3s.json"


def test_ulx3s_build_refuses_a_test_image_that_does_not_exist(tmp_path, capsys):
    from sense.cli import main

    assert main(["build", "--board", "ulx3s", "--tree-only", "--index", "100000",
                 "-o", str(tmp_path / "u")]) == 1
    assert "--index must be from 0 to" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_placed_cells_are_named_by_the_signals_they_drive():
    from constraints.ulx3s import _placed_signals
    from hw.depth import bit_names

    def cell(outputs):
        return {"port_directions": {"A": "input", **{p: "output" for p in outputs}},
                "connections": {"A": [1], **outputs}}
    module = {"cells": {"$abc$7$lut": cell({"Z": [5]}), "$auto$ff$9": cell({"Q": ["0", 6]}),
                        "$ccu$3": cell({"S0": [7], "S1": [8]})},
              "netnames": {"selftest.accel.check.size": {"bits": [5]},
                           "selftest.accel.pool.$signal$2": {"bits": [6]},
                           "$hidden": {"bits": [7]}}}
    signal = _placed_signals(module, bit_names)
    assert signal("$abc$7$lut") == "selftest.accel.check.size"
    assert signal("$auto$ff$9") == "selftest.accel.pool.$signal$2"   # Yosys-made, in a block
    assert signal("$ccu$3$CCU2_COMB0") is None          # a split cell; its nets have no name
    assert signal("other") is None


def test_system_depth_blocks_from_net_names():
    from constraints.ulx3s import _net_block
    # a net is charged to its block under the accelerator, else under the self-test system
    assert _net_block("selftest.accel.pool.pool0_window", 1) == "pool"
    assert _net_block("selftest.accel.core.out.out0_out", 2) == "core.out"
    assert _net_block("selftest.accel.window", 1) == "selftest.accel"
    assert _net_block("selftest.fsm_state", 1) == "selftest"
    assert _net_block("led1.o", 1) == "led1"
    assert _net_block("locked", 1) == "(top)"
