"""Amaranth platform of the Xilinx ZCU102 evaluation board (XCZU9EG-2FFVB1156E).

amaranth-boards has no ZCU102, so it lives here. Pins are those of the ZCU102 Evaluation Board
User Guide (UG1182): the 125 MHz LVDS system clock (Si5341 CLK_125, bank 47), the eight user
LEDs GPIO_LED_0..7 (bank 44, 3.3 V), the five push buttons GPIO_SW_N/E/S/W/C and the CPU reset
button (bank 44), and the eight-position DIP switch GPIO_DIP_SW0..7 (bank 44). The programmable
logic's main clock for Sense (200 MHz) will come from the processing system (PL_CLK0), not from
a pin (the board top is issue 6's next step).
"""

from __future__ import annotations

from amaranth.build import Attrs, Clock, DiffPairs, Pins, Resource
from amaranth.vendor import XilinxPlatform

__all__ = ["ZCU102Platform", "LEDS", "BUTTONS", "SWITCHES"]

#: GPIO_LED_0..7 (UG1182, "User I/O": LEDs DS38..DS45).
LEDS = ("AG14", "AF13", "AE13", "AJ14", "AJ15", "AH13", "AH14", "AL12")
#: GPIO_SW_N, _E, _S, _W, _C (UG1182, "User I/O": push buttons SW14..SW18), active high.
BUTTONS = {"n": "AG15", "e": "AE14", "s": "AE15", "w": "AF15", "c": "AG13"}
#: GPIO_DIP_SW0..7 (UG1182, "User I/O": DIP switch SW13).
SWITCHES = ("AN14", "AP14", "AM14", "AN13", "AN12", "AP12", "AL13", "AK13")
#: CPU_RESET push button SW20 (UG1182), active high at the pin.
CPU_RESET = "AM13"
#: CLK_125_P / CLK_125_N (UG1182, "Clock generation": Si5341 output to bank 47).
CLK_125 = ("G21", "F21")


class ZCU102Platform(XilinxPlatform):
    device = "xczu9eg"
    package = "ffvb1156"
    speed = "2-e"
    default_clk = "clk125"
    default_rst = "cpu_reset"
    resources = [
        Resource("clk125", 0, DiffPairs(CLK_125[0], CLK_125[1], dir="i"),
                 Clock(125e6), Attrs(IOSTANDARD="LVDS_25")),
        Resource("cpu_reset", 0, Pins(CPU_RESET, dir="i"), Attrs(IOSTANDARD="LVCMOS33")),
        *[Resource("led", i, Pins(pin, dir="o"), Attrs(IOSTANDARD="LVCMOS33"))
          for i, pin in enumerate(LEDS)],
        *[Resource(f"button_{name}", 0, Pins(pin, dir="i"), Attrs(IOSTANDARD="LVCMOS33"))
          for name, pin in BUTTONS.items()],
        *[Resource("switch", i, Pins(pin, dir="i"), Attrs(IOSTANDARD="LVCMOS33"))
          for i, pin in enumerate(SWITCHES)],
    ]
    connectors = []

