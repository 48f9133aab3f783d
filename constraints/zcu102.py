"""The ZCU102 (XCZU9EG-2FFVB1156E): platform, board top and Vivado build tree, in one place.

* `ZCU102Platform`: amaranth-boards has no ZCU102, so it lives here. Pins are those of the ZCU102
  Evaluation Board User Guide (UG1182): the 125 MHz LVDS system clock (Si5341 CLK_125, bank 47),
  the eight user LEDs GPIO_LED_0..7 (bank 44, 3.3 V), the five push buttons GPIO_SW_N/E/S/W/C and
  the CPU reset button (bank 44), and the eight-position DIP switch GPIO_DIP_SW0..7 (bank 44). The
  accelerator's clock (200 MHz) comes from the processing system (PL_CLK0), not from a pin.
* `Zcu102Top`: Sense next to the Zynq UltraScale+ processing system. The PS is a Vivado block
  design (`sense_ps`) that `zcu102_ps_tcl()` creates at build time; the top instantiates it as a
  black box with these ports:

  ========================  ===  =========================================================
  ``pl_clk0``               out  PS PL clock 0, 200 MHz (the accelerator's only clock)
  ``pl_resetn0``            out  PS PL reset, active low (synchronised here to ``pl_clk0``)
  ``pl_ps_irq0[0]``         in   the accelerator's interrupt (level, IRQ_STATUS & IRQ_ENABLE)
  ``M_AXI_REGS_*``          out  AXI4-Lite, 32-bit: the PS's M_AXI_HPM0_FPD through a
                                 SmartConnect, at ``ZCU102_REGS_BASE`` (64 KiB; the registers
                                 take 256 bytes)
  ``S_AXI_DMA_*``           in   AXI4, 128-bit, 48-bit addresses: the accelerator's DMA, through
                                 a SmartConnect to the PS's S_AXI_HP0_FPD (DDR, not coherent)
  ``S_AXI_WEIGHTS_*``       in   (``weight_port``) AXI4 read channels, 128-bit, 48-bit
                                 addresses: the accelerator's weight reads, through a
                                 SmartConnect to S_AXI_HP1_FPD (a second path into DDR); with
                                 ``write_port`` its write channels too (the output writer's
                                 second half of every tile)
  ========================  ===  =========================================================

  LED 0 shows ``busy``, LED 1 the interrupt line, LED 2 that the PL clock runs (a slow blink),
  LED 3 that the PS holds the PL in reset.
* `zcu102_files`: the Vivado build tree of the top (Amaranth's Vivado templates,
  `do_build=False`): Verilog, XDC, the build Tcl, the Tcl that creates the PS block design, and a
  README. Only Vivado, licensed for the XCZU9EG, can turn it into a bitstream.
"""

from __future__ import annotations

import json

from amaranth.build import Attrs, Clock, DiffPairs, Pins, Resource
from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    Signal,
)
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.vendor import XilinxPlatform

from hw.config import SenseConfig
from hw.soc.accelerator import Accelerator
from hw.soc.dma import ADDR_BITS, DATA_BITS, ID_BITS
from hw.soc.registers import ADDR_BITS as REG_ADDR_BITS

__all__ = ["ZCU102Platform", "Zcu102Top", "zcu102_ps_tcl", "zcu102_files", "LEDS", "BUTTONS",
           "SWITCHES", "ZCU102_REGS_BASE", "PS_BLOCK", "ZCU102_NAME"]

#: Name of the build (Verilog module, Tcl, bitstream files).
ZCU102_NAME = "sense_zcu102"
#: Where the PS sees the accelerator's registers: the start of M_AXI_HPM0_FPD's PL window.
ZCU102_REGS_BASE = 0xA000_0000
#: Name of the Vivado block design holding the PS (and of the module the top instantiates).
PS_BLOCK = "sense_ps"
#: Address width of the register port on the block design (HPM0 FPD is 40-bit).
PS_REGS_ADDR_BITS = 40

# AXI4 write/read address-channel fields the accelerator does not drive: constant values for
# the HP port (normal non-cacheable bufferable memory, unprivileged secure data access).
_AXI_CONSTANTS = {"cache": (4, 0b0011), "prot": (3, 0b000), "lock": (1, 0), "qos": (4, 0)}

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


class Zcu102Top(Elaboratable):
    """The accelerator, the PS block design (black box) and the user LEDs of the ZCU102."""

    def __init__(self, config: SenseConfig):
        self.config = config

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.accel = accel = Accelerator(self.config)
        resetn = Signal()
        irq = Signal()
        m.d.comb += irq.eq(accel.irq)

        ports = {"o_pl_clk0": ClockSignal("sync"), "o_pl_resetn0": resetn,
                 "i_pl_ps_irq0": irq}
        lite = accel.s_axil
        for name, member in lite.signature.members.items():
            sig = getattr(lite, name)
            # The block design's port carries 40-bit addresses; the register block decodes 8.
            if name in ("awaddr", "araddr"):
                wide = Signal(PS_REGS_ADDR_BITS, name=f"regs_{name}")
                m.d.comb += sig.eq(wide[:REG_ADDR_BITS])
                sig = wide
            # Slave view: the accelerator's inputs are the block design's outputs.
            direction = "o" if member.flow.name == "In" else "i"
            ports[f"{direction}_M_AXI_REGS_{name}"] = sig
        for name in ("awprot", "arprot"):  # part of the AXI4-Lite port; the registers ignore it
            ports[f"o_M_AXI_REGS_{name}"] = Signal(3, name=f"regs_{name}")
        buses = [("DMA", accel.m_axi, ("aw", "ar"))]
        if self.config.weight_port:
            buses.append(("WEIGHTS", accel.m_axi_w,
                          ("ar", "aw") if self.config.write_port else ("ar",)))
        for bus, axi, channels in buses:
            for name, member in axi.signature.members.items():
                direction = "i" if member.flow.name == "Out" else "o"
                ports[f"{direction}_S_AXI_{bus}_{name}"] = getattr(axi, name)
            for ch in channels:
                for field, (width, value) in _AXI_CONSTANTS.items():
                    ports[f"i_S_AXI_{bus}_{ch}{field}"] = Const(value, width)
        m.submodules.ps = Instance(PS_BLOCK, **ports)
        m.submodules.reset_sync = ResetSynchronizer(~resetn, domain="sync")

        if platform is not None:
            heartbeat = Signal(28)
            m.d.sync += heartbeat.eq(heartbeat + 1)
            for i, value in enumerate((accel.busy, irq, heartbeat[-1], ~resetn)):
                m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
                m.d.comb += led.o.eq(value)
        return m


def zcu102_ps_tcl(config: SenseConfig) -> str:
    """Vivado Tcl that creates the `sense_ps` block design: the Zynq UltraScale+ PS with the
    ZCU102 board preset (DDR4, MIO, clocks), PL clock 0 at the configuration's clock, HPM0 FPD
    to the register port, the DMA port to HP0 FPD (with ``weight_port`` the weight port to HP1
    FPD), one PL-to-PS interrupt."""
    mhz = config.clock_mhz
    w = _weight_port_tcl(config)
    return f"""\
# Creates the block design {PS_BLOCK}: the Zynq UltraScale+ PS of the ZCU102 and the two AXI
# ports of Sense. Sourced by the build script after the sources are read (Vivado 2022.1 or later
# with the ZCU102 board files, which Vivado installs).
set board [lindex [lsort [get_board_parts -quiet xilinx.com:zcu102:*]] end]
if {{$board eq ""}} {{ error "Vivado has no ZCU102 board files (xilinx.com:zcu102)" }}
set_property board_part $board [current_project]

create_bd_design {PS_BLOCK}
set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ultra_ps_e_0]
apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {{apply_board_preset "1"}} $ps
set_property -dict [list \\
    CONFIG.PSU__USE__M_AXI_GP0 {{1}} CONFIG.PSU__MAXIGP0__DATA_WIDTH {{32}} \\
    CONFIG.PSU__USE__M_AXI_GP1 {{0}} CONFIG.PSU__USE__M_AXI_GP2 {{0}} \\
    CONFIG.PSU__USE__S_AXI_GP2 {{1}} CONFIG.PSU__SAXIGP2__DATA_WIDTH {{{DATA_BITS}}} \\
    CONFIG.PSU__FPGA_PL0_ENABLE {{1}} CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{mhz}}} \\
    CONFIG.PSU__USE__IRQ0 {{1}}{w["ps"]}] $ps

# Ports of the block design (the Sense top instantiates {PS_BLOCK} with exactly these). The PS
# makes PL clock 0 from its PLLs, so its actual frequency may differ slightly from {mhz} MHz:
# every port takes the PS pin's value.
set freq [get_property CONFIG.FREQ_HZ [get_bd_pins $ps/pl_clk0]]
set clk [create_bd_port -dir O -type clk pl_clk0]
set_property CONFIG.FREQ_HZ $freq $clk
set rstn [create_bd_port -dir O -type rst pl_resetn0]
set irq [create_bd_port -dir I -from 0 -to 0 -type intr pl_ps_irq0]
set regs [create_bd_intf_port -mode Master -vlnv xilinx.com:interface:aximm_rtl:1.0 M_AXI_REGS]
set_property -dict [list CONFIG.PROTOCOL {{AXI4LITE}} CONFIG.DATA_WIDTH {{32}} \\
    CONFIG.ADDR_WIDTH {{{PS_REGS_ADDR_BITS}}} CONFIG.FREQ_HZ $freq] $regs
set dma [create_bd_intf_port -mode Slave -vlnv xilinx.com:interface:aximm_rtl:1.0 S_AXI_DMA]
set_property -dict [list CONFIG.PROTOCOL {{AXI4}} CONFIG.DATA_WIDTH {{{DATA_BITS}}} \\
    CONFIG.ADDR_WIDTH {{{ADDR_BITS}}} CONFIG.ID_WIDTH {{{ID_BITS}}} CONFIG.HAS_REGION {{0}} \\
    CONFIG.HAS_QOS {{1}} CONFIG.HAS_LOCK {{1}} CONFIG.HAS_CACHE {{1}} CONFIG.HAS_PROT {{1}} \\
    CONFIG.ARUSER_WIDTH {{0}} CONFIG.AWUSER_WIDTH {{0}} CONFIG.RUSER_WIDTH {{0}} \\
    CONFIG.WUSER_WIDTH {{0}} CONFIG.BUSER_WIDTH {{0}} CONFIG.FREQ_HZ $freq] $dma
{w["port"]}set_property CONFIG.ASSOCIATED_BUSIF {{M_AXI_REGS:S_AXI_DMA{w["busif"]}}} $clk
set_property CONFIG.ASSOCIATED_RESET {{pl_resetn0}} $clk

# SmartConnects convert AXI4 <-> AXI4-Lite and the address and ID widths.
set sc_regs [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect sc_regs]
set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{1}}] $sc_regs
set sc_dma [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect sc_dma]
set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{1}}] $sc_dma
connect_bd_intf_net [get_bd_intf_pins $ps/M_AXI_HPM0_FPD] [get_bd_intf_pins $sc_regs/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins $sc_regs/M00_AXI] $regs
connect_bd_intf_net $dma [get_bd_intf_pins $sc_dma/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins $sc_dma/M00_AXI] [get_bd_intf_pins $ps/S_AXI_HP0_FPD]
{w["connect"]}connect_bd_net [get_bd_pins $ps/pl_clk0] $clk [get_bd_pins $ps/maxihpm0_fpd_aclk] \\
    [get_bd_pins $ps/saxihp0_fpd_aclk] [get_bd_pins $sc_regs/aclk] [get_bd_pins $sc_dma/aclk]{w["clk"]}
connect_bd_net [get_bd_pins $ps/pl_resetn0] $rstn [get_bd_pins $sc_regs/aresetn] \\
    [get_bd_pins $sc_dma/aresetn]{w["rst"]}
connect_bd_net $irq [get_bd_pins $ps/pl_ps_irq0]

# Addresses: the registers at 0x{ZCU102_REGS_BASE:08X} for the PS, all of DDR for the DMA.
assign_bd_address -offset 0x{ZCU102_REGS_BASE:08X} -range 64K \\
    -target_address_space [get_bd_addr_spaces $ps/Data] [get_bd_addr_segs M_AXI_REGS/Reg]
assign_bd_address
validate_bd_design
save_bd_design
set bd_file [get_files {PS_BLOCK}.bd]
set_property synth_checkpoint_mode None $bd_file
generate_target all $bd_file
"""


def _weight_port_tcl(config: SenseConfig) -> dict:
    """The block design's pieces for the weight port (all empty without it): HP1 FPD enabled at
    128 bits, the port S_AXI_WEIGHTS (read-only, or with ``write_port`` read and write), its
    SmartConnect, clock and reset."""
    if not config.weight_port:
        return dict.fromkeys(("ps", "port", "busif", "connect", "clk", "rst"), "")
    mode, user = "READ_ONLY", ""
    if config.write_port:
        mode, user = "READ_WRITE", " CONFIG.AWUSER_WIDTH {0} CONFIG.WUSER_WIDTH {0} \\\n   "
        user += " CONFIG.BUSER_WIDTH {0}"
    return {
        "ps": (f" \\\n    CONFIG.PSU__USE__S_AXI_GP3 {{1}} "
               f"CONFIG.PSU__SAXIGP3__DATA_WIDTH {{{DATA_BITS}}}"),
        "port": f"""\
# The weight port (SenseConfig.weight_port): read channels (with write_port writes too), to
# HP1 FPD.
set wts [create_bd_intf_port -mode Slave -vlnv xilinx.com:interface:aximm_rtl:1.0 S_AXI_WEIGHTS]
set_property -dict [list CONFIG.PROTOCOL {{AXI4}} CONFIG.READ_WRITE_MODE {{{mode}}} \\
    CONFIG.DATA_WIDTH {{{DATA_BITS}}} CONFIG.ADDR_WIDTH {{{ADDR_BITS}}} CONFIG.ID_WIDTH {{{ID_BITS}}} \\
    CONFIG.HAS_REGION {{0}} CONFIG.HAS_QOS {{1}} CONFIG.HAS_LOCK {{1}} CONFIG.HAS_CACHE {{1}} \\
    CONFIG.HAS_PROT {{1}} CONFIG.ARUSER_WIDTH {{0}} CONFIG.RUSER_WIDTH {{0}}{user} \\
    CONFIG.FREQ_HZ $freq] $wts
""",
        "busif": ":S_AXI_WEIGHTS",
        "connect": """\
set sc_wts [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect sc_wts]
set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] $sc_wts
connect_bd_intf_net $wts [get_bd_intf_pins $sc_wts/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins $sc_wts/M00_AXI] [get_bd_intf_pins $ps/S_AXI_HP1_FPD]
""",
        "clk": " \\\n    [get_bd_pins $ps/saxihp1_fpd_aclk] [get_bd_pins $sc_wts/aclk]",
        "rst": " [get_bd_pins $sc_wts/aresetn]",
    }


def zcu102_files(config: SenseConfig) -> dict:
    """The Vivado build tree of the ZCU102 top for `config` (no Vivado needed to make it)."""
    plan = ZCU102Platform().build(
        Zcu102Top(config), name=ZCU102_NAME, do_build=False,
        script_after_read=f"source {PS_BLOCK}.tcl",
        script_after_bitstream=(f"write_hw_platform -fixed -include_bit -force "
                                f"-file {ZCU102_NAME}.xsa"))
    files = dict(plan.files)
    files[f"{PS_BLOCK}.tcl"] = zcu102_ps_tcl(config)
    files["sense_config.json"] = json.dumps(config.to_dict(), indent=2) + "\n"
    weights = (" its weight port (`weight_port`, read-only, or with `write_port` also the output\n"
               "  writer's second half of every tile; through a SmartConnect) to S_AXI_HP1_FPD,"
               if config.weight_port else "")
    files["README.md"] = f"""\
# Sense on the ZCU102: Vivado build tree

Made by `sense build --board zcu102` for the configuration in `sense_config.json`
({config.rows}x{config.cols} PEs, M={config.group}, {'sparse' if config.sparse else 'dense'},
{config.clock_mhz} MHz, {config.peak_gops:.1f} GOP/s peak).

**A bitstream for the XCZU9EG needs AMD Vivado with a licence that covers the part** (the
ZCU102 kit comes with a device-locked voucher; the free edition does not cover the ZU9EG). No
open toolchain can place and route UltraScale+ today. With Vivado (2022.1 or later, ZCU102 board
files installed) on PATH, in this directory:

    sh build_{ZCU102_NAME}.sh        # = vivado -mode batch -log {ZCU102_NAME}.log -source {ZCU102_NAME}.tcl

It writes `{ZCU102_NAME}.bit`, `{ZCU102_NAME}.xsa` (hardware handoff for PetaLinux / the FSBL) and
the utilisation, timing and power reports. This tree was generated but never run through Vivado
by the project (no licence on its CI machines); report problems with the Vivado log.

## Files

* `{ZCU102_NAME}.v`: Verilog of the top (`constraints/zcu102.py: Zcu102Top`): the accelerator and the
  block design `{PS_BLOCK}` as a black box.
* `{PS_BLOCK}.tcl`: creates that block design: the Zynq UltraScale+ PS with the ZCU102 board
  preset, PL clock 0 at {config.clock_mhz} MHz, M_AXI_HPM0_FPD (through a SmartConnect, AXI4-Lite
  32-bit) to the registers at 0x{ZCU102_REGS_BASE:08X}, the accelerator's 128-bit AXI4 master
  (through a SmartConnect) to S_AXI_HP0_FPD,{weights} its interrupt to pl_ps_irq0[0].
* `{ZCU102_NAME}.xdc`: the user LED pins (UG1182): LED 0 busy, 1 interrupt, 2 heartbeat, 3 PL
  reset. The PL clock's constraint comes from the PS block design.
* `{ZCU102_NAME}.tcl`, `build_{ZCU102_NAME}.sh`: the build script (Amaranth's Vivado flow).

## On the board

Load the bitstream (for example `fpgautil -b {ZCU102_NAME}.bit` on PetaLinux built from the .xsa,
which also sets PL clock 0), then run a packed network with the driver:

    sense load IMAGE --regs 0x{ZCU102_REGS_BASE:08X} --mem ADDR --mem-size SIZE --inputs X.npz

(docs/driver.md of the Sense repository: how to reserve the DRAM buffer).
"""
    return files
