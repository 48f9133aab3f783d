"""The ZCU102 platform produces a Vivado build tree with the board's pins (no Vivado needed)."""

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from constraints.zcu102 import BUTTONS, LEDS, SWITCHES, ZCU102Platform


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
