"""The accelerator with its DRAM inside the design, for simulation: `MemSystem(config,
mem_size)` joins the accelerator's AXI4 master to an `AxiRam` whose words are a plain Verilog
array (`storage="array"`), and exposes the register port, the interrupt, `busy` and the RAM's
word port (`poke_*` to write, `peek_*` to read, 16 bytes at a time). It is the fast simulation
top (`sense sim`'s default): the DRAM answers in the simulator itself, so the only Python left on
the bus is the driver's register traffic and its image and input writes (one word per cycle
through the poke port)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.soc.accelerator import Accelerator
from hw.soc.axi_ram import ARRAY_VERILOG, AxiRam
from hw.soc.dma import DATA_BITS
from hw.soc.registers import axi_lite_signature

__all__ = ["MemSystem", "MEM_SYSTEM_BYTES"]

#: DRAM of the simulation top: 128 MiB for images and activations (VGG-16's image is 83 MB),
#: plus 8 KiB of guard (the array's size costs the simulator's memory only).
MEM_SYSTEM_BYTES = (1 << 27) + (1 << 13)


class MemSystem(wiring.Component):
    #: Verilog modules the design instantiates (`hw.generate.verilog` appends them).
    verilog_modules = (ARRAY_VERILOG,)

    def __init__(self, config: SenseConfig, mem_size: int = MEM_SYSTEM_BYTES):
        self.config = config
        self.mem_size = mem_size
        depth = mem_size // (DATA_BITS // 8)
        super().__init__({
            "s_axil": Out(axi_lite_signature()),
            "irq": Out(1), "busy": Out(1),
            "peek_addr": In(range(depth)), "peek_data": Out(DATA_BITS),
            "poke_addr": In(range(depth)), "poke_data": In(DATA_BITS),
            "poke_strb": In(DATA_BITS // 8),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.accel = accel = Accelerator(self.config)
        m.submodules.ram = ram = AxiRam(self.mem_size, storage="array",
                                        read_ports=2 if self.config.weight_port else 1,
                                        write_ports=2 if self.config.write_port else 1)
        wiring.connect(m, accel.m_axi, ram.axi)
        if self.config.weight_port:
            wiring.connect(m, accel.m_axi_w, ram.axi_w)
        wiring.connect(m, wiring.flipped(self.s_axil), accel.s_axil)
        m.d.comb += [self.irq.eq(accel.irq), self.busy.eq(accel.busy),
                     ram.peek_addr.eq(self.peek_addr), self.peek_data.eq(ram.peek_data),
                     ram.poke_addr.eq(self.poke_addr), ram.poke_data.eq(self.poke_data),
                     ram.poke_strb.eq(self.poke_strb)]
        return m
