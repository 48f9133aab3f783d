"""Board tops: the accelerator wired to a board.

`Zcu102Top` puts Sense next to the Zynq UltraScale+ processing system of the ZCU102. The PS is
a Vivado block design (`sense_ps`) that `zcu102_ps_tcl()` creates at build time; the Amaranth top
instantiates it as a black box with these ports:

========================  ===  =========================================================
``pl_clk0``               out  PS PL clock 0, 200 MHz (the accelerator's only clock)
``pl_resetn0``            out  PS PL reset, active low (synchronised here to ``pl_clk0``)
``pl_ps_irq0[0]``         in   the accelerator's interrupt (level, IRQ_STATUS & IRQ_ENABLE)
``M_AXI_REGS_*``          out  AXI4-Lite, 32-bit: the PS's M_AXI_HPM0_FPD through a SmartConnect,
                               at ``ZCU102_REGS_BASE`` (64 KiB; the registers take 256 bytes)
``S_AXI_DMA_*``           in   AXI4, 128-bit, 48-bit addresses: the accelerator's DMA, through a
                               SmartConnect to the PS's S_AXI_HP0_FPD (DDR, not cache-coherent)
========================  ===  =========================================================

LED 0 shows ``busy``, LED 1 the interrupt line, LED 2 that the PL clock runs (a slow blink), LED 3
that the PS holds the PL in reset.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer

from .accelerator import Accelerator
from .config import SenseConfig
from .dma import ADDR_BITS, DATA_BITS, ID_BITS
from .registers import ADDR_BITS as REG_ADDR_BITS

__all__ = ["Zcu102Top", "Ulx3sTop", "zcu102_ps_tcl", "ecp5_pll", "ZCU102_REGS_BASE", "PS_BLOCK"]

#: Where the PS sees the accelerator's registers: the start of M_AXI_HPM0_FPD's PL window.
ZCU102_REGS_BASE = 0xA000_0000
#: Name of the Vivado block design holding the PS (and of the module the top instantiates).
PS_BLOCK = "sense_ps"
#: Address width of the register port on the block design (HPM0 FPD is 40-bit).
PS_REGS_ADDR_BITS = 40

# AXI4 write/read address-channel fields the accelerator does not drive: constant values for
# the HP port (normal non-cacheable bufferable memory, unprivileged secure data access).
_AXI_CONSTANTS = {"cache": (4, 0b0011), "prot": (3, 0b000), "lock": (1, 0), "qos": (4, 0)}


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
        axi = accel.m_axi
        for name, member in axi.signature.members.items():
            direction = "i" if member.flow.name == "Out" else "o"
            ports[f"{direction}_S_AXI_DMA_{name}"] = getattr(axi, name)
        for ch in ("aw", "ar"):
            for field, (width, value) in _AXI_CONSTANTS.items():
                ports[f"i_S_AXI_DMA_{ch}{field}"] = Const(value, width)
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
    to the register port, the DMA port to HP0 FPD, one PL-to-PS interrupt."""
    mhz = config.clock_mhz
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
    CONFIG.PSU__USE__IRQ0 {{1}}] $ps

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
set_property CONFIG.ASSOCIATED_BUSIF {{M_AXI_REGS:S_AXI_DMA}} $clk
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
connect_bd_net [get_bd_pins $ps/pl_clk0] $clk [get_bd_pins $ps/maxihpm0_fpd_aclk] \\
    [get_bd_pins $ps/saxihp0_fpd_aclk] [get_bd_pins $sc_regs/aclk] [get_bd_pins $sc_dma/aclk]
connect_bd_net [get_bd_pins $ps/pl_resetn0] $rstn [get_bd_pins $sc_regs/aresetn] \\
    [get_bd_pins $sc_dma/aresetn]
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


def ecp5_pll(in_mhz: float, out_mhz: float) -> dict:
    """EHXPLLL dividers for `out_mhz` from `in_mhz` (VCO 400..800 MHz, PFD 3.125..400 MHz),
    the closest output frequency first: {"CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE",
    "out_mhz"}. Feedback is taken from CLKOP, so out = in * CLKFB_DIV / CLKI_DIV."""
    best = None
    for clki in range(1, 129):
        if not 3.125 <= in_mhz / clki <= 400:
            continue
        for clkfb in range(1, 81):
            out = in_mhz * clkfb / clki
            for clkop in range(1, 129):
                vco = out * clkop
                if 400 <= vco <= 800:
                    key = (abs(out - out_mhz), abs(vco - 600))
                    if best is None or key < best[0]:
                        best = (key, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
                                      "CLKOP_CPHASE": (clkop - 1) // 2, "out_mhz": out})
    if best is None:
        raise ValueError(f"no EHXPLLL setting makes {out_mhz} MHz from {in_mhz} MHz")
    return best[1]


class Ulx3sTop(Elaboratable):
    """The self-test system (`hw.selftest.SelfTest`) on a ULX3S: the 25 MHz oscillator through
    the ECP5 PLL to the configuration's clock, reset until the PLL locks. LEDs: 0 busy, 1 passed,
    2 failed, 3 heartbeat (the clock runs), 4..7 the number of completed runs (low bits); the
    FIRE1 button starts the run again."""

    def __init__(self, selftest):
        self.selftest = selftest

    def elaborate(self, platform):
        m = Module()
        cfg = self.selftest.config
        pll = ecp5_pll(25, cfg.clock_mhz)
        clk25 = io.Buffer("i", platform.request("clk25", dir="-"))
        m.submodules.clk25 = clk25
        locked = Signal()
        clk = Signal()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI="25", a_FREQUENCY_PIN_CLKOP=f"{pll['out_mhz']:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
            p_CLKI_DIV=pll["CLKI_DIV"], p_CLKOP_DIV=pll["CLKOP_DIV"],
            p_CLKOP_CPHASE=pll["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=pll["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, i_CLKFB=clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk, o_LOCK=locked)
        platform.add_clock_constraint(clk, pll["out_mhz"] * 1e6)
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")

        m.submodules.selftest = st = self.selftest
        m.submodules.fire = fire = io.Buffer("i", platform.request("button_fire", 1, dir="-"))
        m.submodules.fire_sync = FFSynchronizer(fire.i, st.rerun)
        heartbeat = Signal(27)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        for i, value in enumerate((st.busy, st.passed, st.failed, heartbeat[-1],
                                   *st.runs[:4])):
            m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            m.d.comb += led.o.eq(value)
        return m
