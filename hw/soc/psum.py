"""Partial sums of input-channel blocks between DRAM and the core's output stage.

A layer run in input-channel blocks (``graph.exec.c_blocks``) computes each band once per
block of channel groups. Every block but the last drains its rows as int32 partial sums
(`hw.core.output_stage.OutputStage`, ``psum_out``) and `PsumWriter` writes them, in drain
order, one row per `hw.layouts.psum_row_bytes` bytes, to the layer's scratch range; every block
but the first reads them back (`PsumReader`, from one DMA read of the band's rows) and adds
them to its own rows before they leave (``psum_in``). A middle block reads and writes the same
range: row n is read before it is written again (the write of row n depends on its read).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.layouts import psum_row_bytes, psum_row_layout
from hw.soc.dma import ADDR_BITS, DATA_BITS, dma_command_layout

__all__ = ["PsumReader", "PsumWriter", "psum_row_beats", "PSUM_WRITE_CYCLES"]


def psum_row_beats(config: SenseConfig) -> int:
    """DMA beats of one partial-sum row."""
    return psum_row_bytes(config) * 8 // DATA_BITS


#: Cycles `PsumWriter` holds a row beyond its beats: the DMA writer takes the command, then
#: issues the burst's address (the row leaves with its last beat).
PSUM_WRITE_CYCLES = 2


class PsumReader(wiring.Component):
    """DMA read beats (``beat``) in, partial-sum rows (``row``) out: `psum_row_beats` beats a
    row, the first beat the row's low bits. A row is offered as soon as its last beat is in; a
    beat is taken whenever the row register has room (or the full row leaves this cycle).
    ``clear`` empties it (a run's start)."""

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "beat": In(stream.Signature(DATA_BITS)),
            "row": Out(stream.Signature(psum_row_layout(config))),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = psum_row_beats(self._config)
        buf = Signal(n * DATA_BITS)
        filled = Signal(range(n + 1))
        full = filled == n
        m.d.comb += [self.row.valid.eq(full),
                     self.row.payload.eq(buf[:self.row.payload.shape().size]),
                     self.beat.ready.eq(~full | self.row.ready)]
        take = self.beat.valid & self.beat.ready
        leave = self.row.valid & self.row.ready
        with m.If(take):
            # (beats arrive low first: each one shifts in at the top)
            m.d.sync += buf.eq(Cat(buf[DATA_BITS:], self.beat.payload) if n > 1
                               else self.beat.payload)
        m.d.sync += filled.eq(filled + take - Mux(leave, n, 0))
        with m.If(self.clear):
            m.d.sync += filled.eq(0)
        return m


class PsumWriter(wiring.Component):
    """Partial-sum rows (``row``) in; DMA write commands (``cmd``) and beats (``data``) out,
    one command per row at ``base`` + n * `psum_row_bytes` for the run's row n (``start``
    restarts n at 0). A row is taken with its last beat; ``idle`` when no row is held."""

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "row": In(stream.Signature(psum_row_layout(config))),
            "cmd": Out(stream.Signature(dma_command_layout())),
            "data": Out(stream.Signature(DATA_BITS)),
            "start": In(1), "base": In(ADDR_BITS + 1),
            "writing": Out(1), "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        n, row_bytes = psum_row_beats(cfg), psum_row_bytes(cfg)
        addr = Signal(ADDR_BITS + 1)
        beat = Signal(range(max(n, 2)))
        sent = Signal()                         # the row's command has been taken
        padded = Signal(n * DATA_BITS)
        m.d.comb += padded.eq(self.row.payload.as_value())
        m.d.comb += [self.cmd.valid.eq(self.row.valid & ~sent),
                     self.cmd.payload.addr.eq(addr), self.cmd.payload.length.eq(row_bytes),
                     self.data.valid.eq(self.row.valid & sent),
                     self.data.payload.eq(padded.word_select(beat, DATA_BITS)),
                     self.writing.eq(self.row.valid), self.idle.eq(~self.row.valid)]
        last = beat == n - 1
        m.d.comb += self.row.ready.eq(self.data.valid & self.data.ready & last)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += sent.eq(1)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += beat.eq(beat + 1)
            with m.If(last):
                m.d.sync += [beat.eq(0), sent.eq(0), addr.eq(addr + row_bytes)]
        with m.If(self.start):
            m.d.sync += [addr.eq(self.base), beat.eq(0), sent.eq(0)]
        return m


def ceil_div_const(value, divisor: int, bits: int):
    """ceil(value / divisor) for a constant divisor, exact for 0 <= value < 2**bits: a
    multiplication by the rounded-up reciprocal (no divider; a shift for a power of two)."""
    if divisor & (divisor - 1) == 0:
        return (value + divisor - 1) >> (divisor.bit_length() - 1)
    width = (2 ** bits + divisor - 1).bit_length()        # of value + divisor - 1
    shift = width + (divisor - 1).bit_length()
    recip = -(-(1 << shift) // divisor)
    return ((value + divisor - 1) * recip) >> shift
