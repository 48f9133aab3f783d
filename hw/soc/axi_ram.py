"""An AXI4 slave memory in block RAM: the DRAM of boards without one (the ULX3S self-test).

`AxiRam(size, init)` answers the accelerator's 128-bit AXI4 master: INCR bursts of any length,
one read and one write burst at a time (reads and writes independently), a beat per cycle, byte
strobes honoured. An address at or beyond `size` answers SLVERR (writes there are dropped), so
a stray access shows up as the accelerator's AXI_ERROR. A second read port (`peek_addr` /
`peek_data`, one cycle of latency, in 16-byte words) lets on-chip logic read the memory, for
example to check a result, and `poke_addr` / `poke_data` / `poke_strb` write it (byte strobes;
an AXI write beat in the same cycle wins).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.soc.dma import ADDR_BITS, BEAT_BYTES, DATA_BITS, ID_BITS, axi_signature

__all__ = ["AxiRam"]

RESP_OKAY, RESP_SLVERR = 0, 2


class AxiRam(wiring.Component):
    def __init__(self, size: int, init: bytes = b""):
        if size <= 0 or size % BEAT_BYTES:
            raise ValueError(f"size must be a positive multiple of {BEAT_BYTES}, not {size}")
        if len(init) > size:
            raise ValueError(f"{len(init)} bytes of initial contents do not fit {size} bytes")
        self.size = size
        self.depth = size // BEAT_BYTES
        padded = bytes(init) + bytes(-len(init) % BEAT_BYTES)
        self._init = [int.from_bytes(padded[i:i + BEAT_BYTES], "little")
                      for i in range(0, len(padded), BEAT_BYTES)]
        super().__init__({
            "axi": In(axi_signature()),
            "peek_addr": In(range(self.depth)),
            "peek_data": Out(DATA_BITS),
            "poke_addr": In(range(self.depth)), "poke_data": In(DATA_BITS),
            "poke_strb": In(BEAT_BYTES),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        m.submodules.mem = mem = Memory(shape=DATA_BITS, depth=self.depth, init=self._init)
        rd = mem.read_port()
        peek = mem.read_port()
        wr = mem.write_port(granularity=8)
        m.d.comb += [peek.addr.eq(self.peek_addr), self.peek_data.eq(peek.data)]

        # -- reads: one burst at a time; the read port's output register is the R beat --------
        r_active = Signal()
        r_addr = Signal(ADDR_BITS)
        r_left = Signal(9)
        r_id = Signal(ID_BITS)
        m.d.comb += [axi.arready.eq(~r_active), axi.rdata.eq(rd.data), axi.rid.eq(r_id)]
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += [r_active.eq(1), r_addr.eq(axi.araddr), r_left.eq(axi.arlen + 1),
                         r_id.eq(axi.arid)]
        advance = r_active & (r_left != 0) & (~axi.rvalid | axi.rready)
        m.d.comb += [rd.addr.eq(r_addr[4:]), rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [r_addr.eq(r_addr + BEAT_BYTES), r_left.eq(r_left - 1),
                         axi.rvalid.eq(1), axi.rlast.eq(r_left == 1),
                         axi.rresp.eq(Mux(r_addr < self.size, RESP_OKAY, RESP_SLVERR))]
        with m.Elif(axi.rready):
            m.d.sync += axi.rvalid.eq(0)
        with m.If(axi.rvalid & axi.rready & axi.rlast):
            m.d.sync += r_active.eq(0)

        # -- writes: address, then the burst's beats, then one B response ----------------------
        w_active = Signal()
        w_addr = Signal(ADDR_BITS)
        w_id = Signal(ID_BITS)
        w_err = Signal()
        m.d.comb += [axi.awready.eq(~w_active & ~axi.bvalid), axi.wready.eq(w_active),
                     axi.bid.eq(w_id), axi.bresp.eq(Mux(w_err, RESP_SLVERR, RESP_OKAY))]
        with m.If(axi.awvalid & axi.awready):
            m.d.sync += [w_active.eq(1), w_addr.eq(axi.awaddr), w_id.eq(axi.awid),
                         w_err.eq(0)]
        in_range = w_addr < self.size
        m.d.comb += [wr.addr.eq(w_addr[4:]), wr.data.eq(axi.wdata)]
        with m.If(axi.wvalid & axi.wready):
            m.d.comb += wr.en.eq(Mux(in_range, axi.wstrb, 0))
            m.d.sync += w_addr.eq(w_addr + BEAT_BYTES)
            with m.If(~in_range):
                m.d.sync += w_err.eq(1)
            with m.If(axi.wlast):
                m.d.sync += [w_active.eq(0), axi.bvalid.eq(1)]
        with m.Elif(self.poke_strb.any()):
            m.d.comb += [wr.addr.eq(self.poke_addr), wr.data.eq(self.poke_data),
                         wr.en.eq(self.poke_strb)]
        with m.If(axi.bvalid & axi.bready):
            m.d.sync += axi.bvalid.eq(0)
        return m
