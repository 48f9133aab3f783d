"""AXI4 DMA engines: a burst reader and a burst writer, each checking its window first.

Both move whole 128-bit beats. A command names a byte range (address, length); the engine
covers it with the 16-byte beats that contain it, so the range is first widened to
[floor16(address), ceil16(address + length)). That widened range must lie inside the DMA window
[window_base, window_base + window_size): otherwise the command is dropped with ``error`` set and
no transaction is issued (SPEC section 4: nothing leaves the window). Bursts are at most 16 beats
(256 bytes) and never cross a 4 KiB boundary (AXI4 rule).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import BEAT_BYTES, BURST_BOUNDARY, LANE_BITS, MAX_BURST
from hw.skid import skid_buffer

__all__ = ["Dma", "DmaReader", "DmaWriter", "ReadGather", "gather_layout", "GATHER_STEPS",
           "times_step",
           "dma_command_layout", "axi_read_signature",
           "axi_write_signature", "axi_signature", "window_check", "window_end", "ADDR_BITS",
           "DATA_BITS", "BEAT_BYTES", "MAX_BURST"]

ADDR_BITS = 48       # the ZCU102's HP ports take 49-bit addresses; DDR4 sits well below 2**48
DATA_BITS = 8 * BEAT_BYTES
LENGTH_BITS = 32
ID_BITS = 4          # every transaction uses ID 0: responses come back in order


def dma_command_layout() -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(ADDR_BITS), "length": unsigned(LENGTH_BITS)})


def axi_read_signature() -> wiring.Signature:
    """AXI4 read channels, master view (Out = to the slave)."""
    return wiring.Signature({
        "arid": Out(ID_BITS), "araddr": Out(ADDR_BITS), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(2), "arvalid": Out(1), "arready": In(1),
        "rid": In(ID_BITS), "rdata": In(DATA_BITS), "rresp": In(2), "rlast": In(1),
        "rvalid": In(1), "rready": Out(1),
    })


def axi_write_signature() -> wiring.Signature:
    """AXI4 write channels, master view."""
    return wiring.Signature({
        "awid": Out(ID_BITS), "awaddr": Out(ADDR_BITS), "awlen": Out(8), "awsize": Out(3),
        "awburst": Out(2), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(DATA_BITS), "wstrb": Out(BEAT_BYTES), "wlast": Out(1), "wvalid": Out(1),
        "wready": In(1),
        "bid": In(ID_BITS), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
    })


def axi_signature() -> wiring.Signature:
    """AXI4 read and write channels together, master view (the accelerator's ``m_axi``)."""
    members = dict(axi_read_signature().members)
    members.update(axi_write_signature().members)
    return wiring.Signature(members)


def window_end(m, window_base, window_size):
    """window_base + window_size, registered: the window's end for `window_check` (one cycle
    behind a register write, long before any run can start)."""
    end = Signal(66, name="window_end")
    m.d.sync += end.eq(window_base + window_size)
    return end


def window_check(m, addr, length, window_base, window_end, name="range"):
    """(first beat address, end address, in window) of the byte range [addr, addr + length)
    widened to whole beats: the one window rule, used by both engines and by the controller that
    checks a layer's ranges before issuing anything (combinational; `window_end` from
    `window_end()`)."""
    first = Signal(ADDR_BITS + 1, name=f"{name}_first")
    end = Signal(ADDR_BITS + 2, name=f"{name}_end")
    ok = Signal(name=f"{name}_in_window")
    m.d.comb += [
        first.eq(addr & ~(BEAT_BYTES - 1)),
        end.eq((addr + length + BEAT_BYTES - 1) & ~(BEAT_BYTES - 1)),
        ok.eq((length != 0) & (first >= window_base) & (end <= window_end)),
    ]
    return first, end, ok


class _Planner:
    """Shared command checking and burst splitting for both engines (elaborated inline)."""

    @staticmethod
    def accept(m, cmd, window_base, window_end):
        """The command register in front of an engine: `cmd` is taken into it whenever it is
        empty (so nothing combinational reaches the engine from outside); returns (valid,
        take, first, end, ok): the engine asserts `take` to consume the held command, whose
        widened beat range and window check are (first, end, ok; `window_end` from
        `window_end()`, made once for all engines by `Dma`)."""
        held = Signal(dma_command_layout(), name="cmd_held")
        valid = Signal(name="cmd_held_valid")
        take = Signal(name="cmd_take")
        m.d.comb += cmd.ready.eq(~valid)
        with m.If(cmd.valid & ~valid):
            m.d.sync += [held.eq(cmd.payload), valid.eq(1)]
        with m.If(take):
            m.d.sync += valid.eq(0)
        first, end, ok = window_check(m, held.addr, held.length, window_base, window_end,
                                      "cmd")
        return valid, take, held, first, end, ok

    @staticmethod
    def burst_beats(addr, remaining):
        """Beats in the next burst: at most MAX_BURST, the beats left, and to the 4 KiB edge."""
        # beats before the next 4 KiB boundary
        to_edge = (BURST_BOUNDARY - addr[:BURST_BOUNDARY.bit_length() - 1]) >> LANE_BITS
        limit = Mux(remaining < MAX_BURST, remaining, MAX_BURST)
        return Mux(to_edge < limit, to_edge, limit)


class DmaReader(wiring.Component):
    """Reads byte ranges from DRAM as a stream of 128-bit beats.

    ``cmd`` (address, length) in; ``data`` out: the beats covering the range, in order.
    Up to ``outstanding`` bursts in flight. ``error`` is sticky until ``clear``: a command outside
    the window (dropped, nothing issued) or an R response other than OKAY. ``beat_in``: a beat
    is received this cycle (`Dma` counts the bytes read of all its readers in one counter).
    ``busy``: a command is being worked on or data is in flight.
    """

    def __init__(self, outstanding: int = 4):
        if not 1 <= outstanding <= 16:
            raise ValueError(f"outstanding must be from 1 to 16, not {outstanding!r}")
        self._outstanding = outstanding
        super().__init__({
            "cmd": In(stream.Signature(dma_command_layout())),
            "data": Out(stream.Signature(DATA_BITS)),
            "window_base": In(64), "window_end": In(66),
            "axi": Out(axi_read_signature()),
            "error": Out(1), "clear": In(1), "busy": Out(1), "beat_in": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        valid, take, _, first, end, ok = _Planner.accept(m, self.cmd, self.window_base,
                                                         self.window_end)

        addr = Signal(ADDR_BITS + 1)
        remaining = Signal(LENGTH_BITS)          # beats not yet requested
        active = Signal()
        in_flight = Signal(range(self._outstanding + 1))
        m.d.comb += [axi.arsize.eq(LANE_BITS), axi.arburst.eq(1)]  # whole beats, INCR

        m.d.comb += take.eq(valid & ~active)
        with m.If(take):
            with m.If(ok):
                m.d.sync += [active.eq(1), addr.eq(first), remaining.eq((end - first) >> LANE_BITS)]
            with m.Else():
                m.d.sync += self.error.eq(1)

        beats = _Planner.burst_beats(addr, remaining)
        issue = active & (in_flight < self._outstanding)
        m.d.comb += [axi.arvalid.eq(issue), axi.araddr.eq(addr), axi.arlen.eq(beats - 1)]
        request = axi.arvalid & axi.arready
        with m.If(request):
            m.d.sync += [addr.eq(addr + (beats << 4)), remaining.eq(remaining - beats)]
            with m.If(remaining == beats):
                m.d.sync += active.eq(0)

        # RREADY from a register: no consumer's ready logic reaches the bus (hw.skid).
        held = skid_buffer(m, SimpleNamespace(valid=axi.rvalid, payload=axi.rdata,
                                              ready=axi.rready), self.data, "rskid")
        beat = axi.rvalid & axi.rready
        burst_done = beat & axi.rlast
        m.d.sync += in_flight.eq(in_flight + request - burst_done)
        with m.If(beat):
            m.d.comb += self.beat_in.eq(1)
            with m.If(axi.rresp != 0):
                m.d.sync += self.error.eq(1)
        with m.If(self.clear):
            m.d.sync += self.error.eq(0)
        m.d.comb += self.busy.eq(valid | active | (in_flight != 0) | held)
        return m


class DmaWriter(wiring.Component):
    """Writes a stream of 128-bit beats to a byte range of DRAM.

    ``cmd`` (address, length) in, then ``data``: exactly the beats covering the range; bytes of
    the first and last beat outside the range are not written (``wstrb``). A burst's AW goes out
    before its W beats, and the next burst's while they are sent, up to ``outstanding`` bursts
    unanswered (the B responses are collected on the side), so neither the next burst nor the
    next command waits for them: a long write takes one cycle per beat. ``busy`` stays high until
    every response is in. ``error`` (sticky until ``clear``): a command outside the window
    (dropped, its data not consumed, nothing issued) or a B response other than OKAY.
    ``written``: the bytes a W beat writes this cycle (its strobes set; `Dma` counts those of
    all its writers in one counter).
    """

    def __init__(self, outstanding: int = 8):
        if not 1 <= outstanding <= 64:
            raise ValueError(f"outstanding must be from 1 to 64, not {outstanding!r}")
        self._outstanding = outstanding
        super().__init__({
            "cmd": In(stream.Signature(dma_command_layout())),
            "data": In(stream.Signature(DATA_BITS)),
            "window_base": In(64), "window_end": In(66),
            "axi": Out(axi_write_signature()),
            "error": Out(1), "clear": In(1), "busy": Out(1),
            "written": Out(range(BEAT_BYTES + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        valid, take, held, first, end, ok = _Planner.accept(m, self.cmd, self.window_base,
                                                            self.window_end)

        # The address side issues a command's bursts (AW) as long as fewer than `outstanding`
        # are unanswered, ahead of their data; the data side sends the beats of the bursts
        # whose AW has gone (`ahead`), so no cycle between bursts is lost to the next AW.
        aw_addr = Signal(ADDR_BITS + 1)
        aw_left = Signal(LENGTH_BITS)            # beats not yet in an AW
        w_left = Signal(LENGTH_BITS)             # beats not yet written
        w_count = Signal(range(MAX_BURST))       # beats of the current burst written
        w_page = Signal(BURST_BOUNDARY.bit_length() - 1 - LANE_BITS)   # beat in its 4 KiB page
        ahead = Signal(range(self._outstanding + 1))   # bursts issued whose data is not all sent
        # Strobes: only a command's first and last beats can be partial, so the byte masks of
        # those two beats are computed once, from the low bits of the range's ends (no
        # address compare per byte and beat).
        first_mask = Signal(BEAT_BYTES)
        last_mask = Signal(BEAT_BYTES)
        first_beat = Signal()
        pending = Signal(range(self._outstanding + 1))   # bursts whose B has not come
        m.d.comb += [axi.awsize.eq(LANE_BITS), axi.awburst.eq(1)]  # whole beats, INCR
        idle = Signal()
        aw_go = Signal()
        w_go = Signal()
        # A burst ends at the command's last beat, after MAX_BURST beats, or at a 4 KiB edge:
        # where the address side's bursts (`_Planner.burst_beats`, each as long as allowed) end.
        last_beat = w_left == 1
        w_last = last_beat | (w_count == MAX_BURST - 1) | (w_page == (1 << len(w_page)) - 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [take.eq(valid), idle.eq(~valid)]
                with m.If(valid):
                    with m.If(ok):
                        lo = held.addr[:LANE_BITS]
                        hi = (held.addr + held.length - 1)[:LANE_BITS]     # the last byte
                        beats = (end - first) >> LANE_BITS
                        m.d.sync += [aw_addr.eq(first), aw_left.eq(beats), w_left.eq(beats),
                                     w_count.eq(0), w_page.eq(first[LANE_BITS:]),
                                     first_beat.eq(1),
                                     # (byte 15 is in every first beat, byte 0 in every last)
                                     *(first_mask[i].eq(lo <= i) for i in range(BEAT_BYTES - 1)),
                                     first_mask[-1].eq(1), last_mask[0].eq(1),
                                     *(last_mask[i].eq(hi >= i) for i in range(1, BEAT_BYTES))]
                        m.next = "BUSY"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
            with m.State("BUSY"):
                beats = _Planner.burst_beats(aw_addr, aw_left)
                m.d.comb += [axi.awvalid.eq((aw_left != 0) & (pending < self._outstanding)),
                             axi.awaddr.eq(aw_addr), axi.awlen.eq(beats - 1),
                             aw_go.eq(axi.awvalid & axi.awready)]
                with m.If(aw_go):
                    m.d.sync += [aw_addr.eq(aw_addr + (beats << LANE_BITS)),
                                 aw_left.eq(aw_left - beats)]
                strb = Signal(BEAT_BYTES)
                m.d.comb += strb.eq(Mux(first_beat, first_mask, (1 << BEAT_BYTES) - 1)
                                    & Mux(last_beat, last_mask, (1 << BEAT_BYTES) - 1))
                m.d.comb += [axi.wvalid.eq(self.data.valid & (ahead != 0)),
                             axi.wdata.eq(self.data.payload), axi.wstrb.eq(strb),
                             axi.wlast.eq(w_last), self.data.ready.eq(axi.wready & (ahead != 0)),
                             w_go.eq(axi.wvalid & axi.wready)]
                with m.If(w_go):
                    m.d.sync += [w_left.eq(w_left - 1), w_page.eq(w_page + 1),
                                 w_count.eq(Mux(w_last, 0, w_count + 1)), first_beat.eq(0)]
                    m.d.comb += self.written.eq(sum(strb[i] for i in range(BEAT_BYTES)))
                    with m.If(last_beat):
                        m.next = "IDLE"
        m.d.sync += ahead.eq(ahead + aw_go - (w_go & w_last))
        m.d.comb += axi.bready.eq(1)
        response = axi.bvalid & axi.bready
        with m.If(response & (axi.bresp != 0)):
            m.d.sync += self.error.eq(1)
        m.d.sync += pending.eq(pending + aw_go - response)
        with m.If(self.clear):
            m.d.sync += self.error.eq(0)
        m.d.comb += self.busy.eq(~idle | (pending != 0))
        return m


#: The pixel steps of an input gather (descriptor ``in_step``): LayerCheck refuses others.
GATHER_STEPS = (2, 4, 8)
#: The steps over a joined conv's second input (descriptor ``in_split``): 1 too.
JOIN_STEPS = (1,) + GATHER_STEPS
#: The fewest beats a gathered piece (a gather's pixel, each part of a joined conv's pixel) needs
#: for the read channel to stay busy: ReadGather takes a piece every other cycle. The packer
#: gathers and joins only pieces this long, and the model's load assumes a beat a cycle for them.
GATHER_MIN_BEATS = 2


def times_step(value, step):
    """`value` times a gather's step (one of JOIN_STEPS, else 1): a shift, no multiplier."""
    out = value
    for s in GATHER_STEPS:
        out = Mux(step == s, value << (s.bit_length() - 1), out)
    return out


def gather_layout() -> data.StructLayout:
    """How a gathered read walks DRAM (`ReadGather`): pieces of ``piece`` bytes, ``step`` bytes
    apart, ``per_row`` of them a row, rows ``pitch`` bytes apart. A joined read (``split`` not
    0) puts ``split`` bytes of a plain range before each piece: from ``a_base`` when
    ``restart``, else from where the joined read before left off."""
    return data.StructLayout({"piece": unsigned(24), "step": unsigned(28),
                              "per_row": unsigned(16), "pitch": unsigned(24),
                              "split": unsigned(12), "a_base": unsigned(ADDR_BITS),
                              "restart": unsigned(1)})


class ReadGather(wiring.Component):
    """In front of a reader's ``cmd``: a command taken while ``gather`` is high (an input
    gather, `hw.layouts` ``in_step``) is a range of ``length`` bytes of gathered pixels, sent on
    as one read per piece (``g``: ``piece`` bytes at the command's address, then ``step`` bytes
    on, ``per_row`` pieces a row, the next row ``pitch`` bytes after the row before's first);
    its beats arrive in order, as the plain range's would. With ``g.split`` (a joined conv,
    ``in_split``) each piece follows ``split`` bytes of a second, plain range: its address
    register starts at ``a_base`` when the command is taken with ``restart``, else goes on
    from the joined command before (a layer's bands read consecutive rows of it). Any other
    command passes through unchanged in the same cycle. ``busy`` while pieces are left; ``g``
    must hold still until then. A piece a reader takes every other cycle (its command
    register): pieces of two beats or more keep the read channel busy."""

    def __init__(self):
        super().__init__({
            "cmd": In(stream.Signature(dma_command_layout())),
            "out": Out(stream.Signature(dma_command_layout())),
            "gather": In(1), "g": In(gather_layout()), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        busy, addr = Signal(name="gather_busy"), Signal(ADDR_BITS, name="gather_addr")
        row = Signal(ADDR_BITS, name="gather_row")
        left = Signal(LENGTH_BITS, name="gather_left")
        x = Signal(16, name="gather_x")
        a_addr = Signal(ADDR_BITS, name="gather_a_addr")
        walk = Signal(name="gather_walk")       # the next piece is the walk's (not the split)
        g = self.g
        joined = g.split != 0
        m.d.comb += self.busy.eq(busy)
        with m.If(~busy):
            m.d.comb += [self.out.valid.eq(self.cmd.valid & ~self.gather),
                         self.out.payload.eq(self.cmd.payload),
                         self.cmd.ready.eq(self.gather | self.out.ready)]
            with m.If(self.cmd.valid & self.gather & (self.cmd.payload.length != 0)):
                m.d.sync += [busy.eq(1), addr.eq(self.cmd.payload.addr),
                             row.eq(self.cmd.payload.addr), left.eq(self.cmd.payload.length),
                             x.eq(0), walk.eq(~joined)]
                with m.If(g.restart):
                    m.d.sync += a_addr.eq(g.a_base)
        with m.Else():
            # (a pair load's last block may be short: the piece is clamped to the bytes left)
            length = Mux(walk, Mux(left < g.piece, left, g.piece), g.split)
            m.d.comb += [self.out.valid.eq(1), self.out.payload.addr.eq(Mux(walk, addr, a_addr)),
                         self.out.payload.length.eq(length)]
            with m.If(self.out.ready):
                m.d.sync += left.eq(left - length)
                with m.If(left <= length):
                    m.d.sync += busy.eq(0)
                with m.If(~walk):
                    m.d.sync += [a_addr.eq(a_addr + g.split), walk.eq(1)]
                with m.Else():
                    m.d.sync += walk.eq(~joined)
                    with m.If(x + 1 == g.per_row):
                        m.d.sync += [x.eq(0), row.eq(row + g.pitch), addr.eq(row + g.pitch)]
                    with m.Else():
                        m.d.sync += [x.eq(x + 1), addr.eq(addr + g.step)]
        return m


class Dma(wiring.Component):
    """The reader and the writer on one AXI4 master port ``m_axi`` (read and write channels),
    sharing the window. Ports: ``rd_cmd``, ``rd_data``, ``wr_cmd``, ``wr_data``, ``error``
    (any engine; sticky until ``clear``), ``busy``, ``bytes_read``, ``bytes_written`` (bytes
    moved since the last ``count_clear``).

    ``weight_port``: a second reader on its own read-only AXI4 master ``m_axi_w`` (``w_cmd``,
    ``w_data``), the same window, behind its own `ReadGather` (``w_gather``, ``w_g``: a pair
    load's odd blocks); ``bytes_read`` and ``busy`` count both readers.

    ``write_port`` (with ``weight_port``): a second writer on ``m_axi_w``'s write channels
    (``wr2_cmd``, ``wr2_data``; ``m_axi_w`` is then a whole AXI4 master), the same window;
    ``bytes_written``, ``busy`` and ``error`` count both writers.

    ``rd_cmd`` goes through a `ReadGather` (``gather``, ``g``): a command taken while
    ``gather`` is high is read piece by piece."""

    def __init__(self, outstanding: int = 4, weight_port: bool = False,
                 write_port: bool = False):
        if write_port and not weight_port:
            raise ValueError("write_port needs weight_port (it writes on m_axi_w)")
        self._outstanding = outstanding
        self._weight_port = weight_port
        self._write_port = write_port
        members = {
            "rd_cmd": In(stream.Signature(dma_command_layout())),
            "rd_data": Out(stream.Signature(DATA_BITS)),
            "wr_cmd": In(stream.Signature(dma_command_layout())),
            "wr_data": In(stream.Signature(DATA_BITS)),
            "window_base": In(64), "window_size": In(64),
            "m_axi": Out(axi_signature()),
            "error": Out(1), "clear": In(1), "busy": Out(1),
            "bytes_read": Out(64), "bytes_written": Out(64), "count_clear": In(1),
            "gather": In(1), "g": In(gather_layout()),
        }
        if weight_port:
            members |= {"w_cmd": In(stream.Signature(dma_command_layout())),
                        "w_data": Out(stream.Signature(DATA_BITS)),
                        "m_axi_w": Out(axi_signature() if write_port
                                       else axi_read_signature()),
                        "w_gather": In(1), "w_g": In(gather_layout())}
        if write_port:
            members |= {"wr2_cmd": In(stream.Signature(dma_command_layout())),
                        "wr2_data": In(stream.Signature(DATA_BITS))}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = rd = DmaReader(self._outstanding)
        m.submodules.writer = wr = DmaWriter()
        m.submodules.gather = gather = ReadGather()
        wiring.connect(m, wiring.flipped(self.rd_cmd), gather.cmd)
        wiring.connect(m, gather.out, rd.cmd)
        m.d.comb += [gather.gather.eq(self.gather), gather.g.eq(self.g)]
        wiring.connect(m, rd.data, wiring.flipped(self.rd_data))
        wiring.connect(m, wiring.flipped(self.wr_cmd), wr.cmd)
        wiring.connect(m, wiring.flipped(self.wr_data), wr.data)
        engines = [(rd, self.m_axi), (wr, self.m_axi)]
        if self._weight_port:
            m.submodules.weight_reader = wrd = DmaReader(self._outstanding)
            m.submodules.w_gather = w_gather = ReadGather()
            wiring.connect(m, wiring.flipped(self.w_cmd), w_gather.cmd)
            wiring.connect(m, w_gather.out, wrd.cmd)
            m.d.comb += [w_gather.gather.eq(self.w_gather), w_gather.g.eq(self.w_g)]
            wiring.connect(m, wrd.data, wiring.flipped(self.w_data))
            engines.append((wrd, self.m_axi_w))
        writers = [wr]
        if self._write_port:
            m.submodules.writer2 = wr2 = DmaWriter()
            wiring.connect(m, wiring.flipped(self.wr2_cmd), wr2.cmd)
            wiring.connect(m, wiring.flipped(self.wr2_data), wr2.data)
            engines.append((wr2, self.m_axi_w))
            writers.append(wr2)
        end = window_end(m, self.window_base, self.window_size)    # (one for all engines)
        for engine, bus in engines:
            m.d.comb += [engine.window_base.eq(self.window_base), engine.window_end.eq(end),
                         engine.clear.eq(self.clear)]
            for name, member in engine.axi.signature.members.items():
                port, inner = getattr(bus, name), getattr(engine.axi, name)
                if member.flow == Out:
                    m.d.comb += port.eq(inner)
                else:
                    m.d.comb += inner.eq(port)
        readers = [e for e, _ in engines if not any(e is w for w in writers)]
        engines = [e for e, _ in engines]
        m.d.comb += [self.error.eq(Cat(*(e.error for e in engines)).any()),
                     self.busy.eq(gather.busy
                                  | (w_gather.busy if self._weight_port else 0)
                                  | Cat(*(e.busy for e in engines)).any()),
                     ]
        # (one counter each for all the engines: a beat's bytes added the cycle it goes)
        # (`count_clear` starts both from this cycle's bytes)
        m.d.sync += [self.bytes_read.eq(Mux(self.count_clear, 0, self.bytes_read)
                                        + (sum(r.beat_in for r in readers) << LANE_BITS)),
                     self.bytes_written.eq(Mux(self.count_clear, 0, self.bytes_written)
                                           + sum(w.written for w in writers))]
        return m
