"""An AXI4 slave memory in block RAM: the DRAM of boards without one (the ULX3S self-test).

`AxiRam(size, init)` answers the accelerator's 128-bit AXI4 master: INCR bursts of any length,
reads and writes independently, each served in order and back to back (up to `QUEUE` burst
addresses wait while one is served), a beat per cycle, the first read beat two cycles after its
address, byte strobes honoured. An address at or beyond `size` answers SLVERR (writes there are dropped), so
a stray access shows up as the accelerator's AXI_ERROR. A second read port (`peek_addr` /
`peek_data`, one cycle of latency, in 16-byte words) lets on-chip logic read the memory, for
example to check a result, and `poke_addr` / `poke_data` / `poke_strb` write it (byte strobes;
an AXI write beat in the same cycle wins). `read_ports=2` adds a second AXI4 read-only slave
port, ``axi_w`` (the accelerator's weight port, `SenseConfig.weight_port`), served like the
first and independently of it, on a read port of its own; `write_ports=2` makes ``axi_w`` a
whole AXI4 slave (the accelerator's `SenseConfig.write_port`), its writes served like the
first port's on a write port of their own (the two ports' writes never overlap in the
accelerator; a same-cycle write of one word by both keeps the second port's bytes).

`storage="array"` keeps the words in a plain Verilog array (`ARRAY_VERILOG`, appended to the
design's Verilog by `hw.generate.verilog`) instead of an Amaranth `Memory`: same ports, same
timing, no initial contents. Amaranth writes every bit of a Memory's initial contents into its
netlist (33 million for 4 MiB, minutes of elaboration); the array costs nothing at any size. It
is the storage of the simulation top `hw.soc.memsystem.MemSystem`.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.soc.dma import ADDR_BITS, BEAT_BYTES, DATA_BITS, ID_BITS, axi_read_signature, \
    axi_signature

__all__ = ["AxiRam", "ARRAY_MODULE", "ARRAY_VERILOG"]

ARRAY_MODULE = "sense_axi_ram_array"
#: The "array" storage: a synchronous read port (with enable), a peek port read every cycle, one
#: write port with byte enables; reads return the word before a same-cycle write, as the Memory
#: storage's non-transparent read ports do.
ARRAY_VERILOG = f"""
module {ARRAY_MODULE} #(parameter WORDS = 1, parameter ABITS = 1) (
  input clk,
  input rd_en, input [ABITS-1:0] rd_addr, output reg [{DATA_BITS - 1}:0] rd_data,
  input rd2_en, input [ABITS-1:0] rd2_addr, output reg [{DATA_BITS - 1}:0] rd2_data,
  input [ABITS-1:0] peek_addr, output reg [{DATA_BITS - 1}:0] peek_data,
  input [ABITS-1:0] wr_addr, input [{DATA_BITS - 1}:0] wr_data, input [{BEAT_BYTES - 1}:0] wr_en,
  input [ABITS-1:0] wr2_addr, input [{DATA_BITS - 1}:0] wr2_data, input [{BEAT_BYTES - 1}:0] wr2_en
);
  reg [{DATA_BITS - 1}:0] mem [0:WORDS-1];
  integer i;
  always @(posedge clk) begin
    if (rd_en) rd_data <= mem[rd_addr];
    if (rd2_en) rd2_data <= mem[rd2_addr];
    peek_data <= mem[peek_addr];
    for (i = 0; i < {BEAT_BYTES}; i = i + 1)
      if (wr_en[i]) mem[wr_addr][i*8 +: 8] <= wr_data[i*8 +: 8];
    for (i = 0; i < {BEAT_BYTES}; i = i + 1)
      if (wr2_en[i]) mem[wr2_addr][i*8 +: 8] <= wr2_data[i*8 +: 8];
  end
endmodule
"""

RESP_OKAY, RESP_SLVERR = 0, 2
#: Read and write burst addresses accepted ahead of the burst being served.
QUEUE = 4


class AxiRam(wiring.Component):
    def __init__(self, size: int, init: bytes = b"", storage: str = "memory",
                 read_ports: int = 1, write_ports: int = 1):
        if storage not in ("memory", "array"):
            raise ValueError(f"storage must be memory or array, not {storage!r}")
        if read_ports not in (1, 2):
            raise ValueError(f"read_ports must be 1 or 2, not {read_ports!r}")
        if write_ports not in (1, read_ports):
            raise ValueError(f"write_ports must be 1 or read_ports ({read_ports}), "
                             f"not {write_ports!r}")
        self.read_ports = read_ports
        self.write_ports = write_ports
        if storage == "array" and init:
            raise ValueError("the array storage has no initial contents")
        if size <= 0 or size % BEAT_BYTES:
            raise ValueError(f"size must be a positive multiple of {BEAT_BYTES}, not {size}")
        if len(init) > size:
            raise ValueError(f"{len(init)} bytes of initial contents do not fit {size} bytes")
        self.size = size
        self.storage = storage
        self.depth = size // BEAT_BYTES
        padded = bytes(init) + bytes(-len(init) % BEAT_BYTES)
        self._init = [int.from_bytes(padded[i:i + BEAT_BYTES], "little")
                      for i in range(0, len(padded), BEAT_BYTES)]
        ports = {
            "axi": In(axi_signature()),
            "peek_addr": In(range(self.depth)),
            "peek_data": Out(DATA_BITS),
            "poke_addr": In(range(self.depth)), "poke_data": In(DATA_BITS),
            "poke_strb": In(BEAT_BYTES),
        }
        if read_ports == 2:
            ports["axi_w"] = In(axi_signature() if write_ports == 2 else axi_read_signature())
        super().__init__(ports)

    def _storage(self, m):
        """The read ports (one per AXI read port), the peek and the write ports (one per AXI
        write port; Memory port objects, or signals named alike)."""
        if self.storage == "memory":
            m.submodules.mem = mem = Memory(shape=DATA_BITS, depth=self.depth, init=self._init)
            reads = [mem.read_port() for _ in range(self.read_ports)]
            writes = [mem.write_port(granularity=8) for _ in range(self.write_ports)]
            return reads, mem.read_port(), writes
        abits = max(1, (self.depth - 1).bit_length())

        def port(name, **widths):
            return SimpleNamespace(**{k: Signal(w, name=f"{name}_{k}") for k, w in widths.items()})
        reads = [port(name, addr=abits, en=1, data=DATA_BITS) for name in ("rd", "rd2")]
        peek = port("peek", addr=abits, data=DATA_BITS)
        writes = [port(name, addr=abits, data=DATA_BITS, en=BEAT_BYTES)
                  for name in ("wr", "wr2")]
        m.submodules.array = Instance(
            ARRAY_MODULE, p_WORDS=self.depth, p_ABITS=abits, i_clk=ClockSignal("sync"),
            i_rd_en=reads[0].en, i_rd_addr=reads[0].addr, o_rd_data=reads[0].data,
            i_rd2_en=reads[1].en, i_rd2_addr=reads[1].addr, o_rd2_data=reads[1].data,
            i_peek_addr=peek.addr, o_peek_data=peek.data,
            i_wr_addr=writes[0].addr, i_wr_data=writes[0].data, i_wr_en=writes[0].en,
            i_wr2_addr=writes[1].addr, i_wr2_data=writes[1].data, i_wr2_en=writes[1].en)
        return reads[:self.read_ports], peek, writes[:self.write_ports]

    def elaborate(self, platform):
        m = Module()
        reads, peek, writes = self._storage(m)
        m.d.comb += [peek.addr.eq(self.peek_addr), self.peek_data.eq(peek.data)]
        self._reads(m, reads[0], self.axi, "ar")
        if self.read_ports == 2:
            self._reads(m, reads[1], self.axi_w, "ar_w")
        self._writes(m, writes[0], self.axi, "aw", poke=True)
        if self.write_ports == 2:
            self._writes(m, writes[1], self.axi_w, "aw_w")
        return m

    def _reads(self, m, rd, axi, name):
        """Read bursts of the read port `axi` back to back: up to `QUEUE` addresses wait in a
        FIFO while a burst is served; an idle RAM reads a burst's first word in the cycle its
        address leaves the FIFO, a busy one in the cycle after the last word of the burst
        before."""
        m.submodules[name] = ar = SyncFIFO(width=ADDR_BITS + 9 + ID_BITS, depth=QUEUE)
        m.d.comb += [ar.w_en.eq(axi.arvalid), axi.arready.eq(ar.w_rdy),
                     ar.w_data.eq(Cat(axi.araddr, axi.arlen + 1, axi.arid))]
        addr, left, rid = Signal(ADDR_BITS), Signal(9), Signal(ID_BITS)
        head_addr, head_left, head_id = Signal(ADDR_BITS), Signal(9), Signal(ID_BITS)
        m.d.comb += Cat(head_addr, head_left, head_id).eq(ar.r_data)
        # The burst a word is read for: the current one, or the queue's head when idle.
        idle = left == 0
        cur_addr, cur_left, cur_id = Signal(ADDR_BITS), Signal(9), Signal(ID_BITS)
        m.d.comb += [cur_addr.eq(Mux(idle, head_addr, addr)),
                     cur_left.eq(Mux(idle, Mux(ar.r_rdy, head_left, 0), left)),
                     cur_id.eq(Mux(idle, head_id, rid))]
        advance = (cur_left != 0) & (~axi.rvalid | axi.rready)
        m.d.comb += [rd.addr.eq(cur_addr[4:]), rd.en.eq(advance), axi.rdata.eq(rd.data)]
        with m.If(idle & ar.r_rdy):
            m.d.comb += ar.r_en.eq(1)
            m.d.sync += [addr.eq(head_addr), left.eq(head_left), rid.eq(head_id)]
        with m.If(advance):
            m.d.sync += [addr.eq(cur_addr + BEAT_BYTES), left.eq(cur_left - 1),
                         axi.rvalid.eq(1), axi.rlast.eq(cur_left == 1), axi.rid.eq(cur_id),
                         axi.rresp.eq(Mux(cur_addr < self.size, RESP_OKAY, RESP_SLVERR))]
        with m.Elif(axi.rready):
            m.d.sync += axi.rvalid.eq(0)

    def _writes(self, m, wr, axi, name, poke=False):
        """Write bursts of the port `axi` back to back: up to `QUEUE` addresses wait in a FIFO;
        an idle RAM takes a burst's first beat in the cycle its address leaves the FIFO; one B
        response per burst. With `poke`, a poke writes in a cycle without a W beat."""
        m.submodules[name] = aw = SyncFIFO(width=ADDR_BITS + ID_BITS, depth=QUEUE)
        m.d.comb += [aw.w_en.eq(axi.awvalid), axi.awready.eq(aw.w_rdy),
                     aw.w_data.eq(Cat(axi.awaddr, axi.awid))]
        active, addr, wid, err = Signal(), Signal(ADDR_BITS), Signal(ID_BITS), Signal()
        head_addr, head_id = Signal(ADDR_BITS), Signal(ID_BITS)
        m.d.comb += Cat(head_addr, head_id).eq(aw.r_data)
        # The burst a beat belongs to: the current one, or the queue's head when idle.
        cur_addr, cur_id = Mux(active, addr, head_addr), Mux(active, wid, head_id)
        bad = (active & err) | (cur_addr >= self.size)
        beat = axi.wvalid & axi.wready
        m.d.comb += [axi.wready.eq((active | aw.r_rdy) & (~axi.bvalid | axi.bready)),
                     wr.addr.eq(cur_addr[4:]), wr.data.eq(axi.wdata)]
        with m.If(beat):
            m.d.comb += [wr.en.eq(Mux(cur_addr < self.size, axi.wstrb, 0)), aw.r_en.eq(~active)]
            m.d.sync += [addr.eq(cur_addr + BEAT_BYTES), wid.eq(cur_id), err.eq(bad),
                         active.eq(~axi.wlast)]
            with m.If(axi.wlast):
                m.d.sync += [axi.bvalid.eq(1), axi.bid.eq(cur_id),
                             axi.bresp.eq(Mux(bad, RESP_SLVERR, RESP_OKAY))]
        if poke:
            with m.Elif(self.poke_strb.any()):
                m.d.comb += [wr.addr.eq(self.poke_addr), wr.data.eq(self.poke_data),
                             wr.en.eq(self.poke_strb)]
        with m.If(axi.bvalid & axi.bready & ~(beat & axi.wlast)):
            m.d.sync += axi.bvalid.eq(0)
