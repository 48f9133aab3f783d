"""The weight loader: the layer's weight block, streamed from DRAM, assembled into weight words
and written into the core's weight ring while there is room."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import BEAT_BYTES, SenseConfig
from hw.core.decoders import WEIGHT_INDEX_BITS, weight_addr_bits
from hw.layouts import record_bytes, weight_word_layout
from hw.soc.dma import DATA_BITS

__all__ = ["WeightLoader"]


class WeightLoader(wiring.Component):
    """A weight word is ``word_beats`` DMA beats (``payload``; ``accept`` marks a beat taken this
    cycle). ``ready`` says whether a beat may be taken: always, but for the last beat of a word,
    only when the ring has room (the word's index is less than ``release`` + ring depth: the core
    has released the word it overwrites). The finished word goes to ``wr_*``; ``avail`` counts
    the words written this layer (the core issues a group only when its words are in). ``clear``
    (one cycle, at the layer's start) restarts the count.

    With ``config.weight_port`` a second stream (``payload_b``, ``accept_b``, ``ready_b``) can
    carry half of the words: with ``split`` set at the ``clear``, stream A carries the even k
    tiles (``kt_words`` words each) and stream B the odd ones, each k tile in order. Each stream
    then writes its words at their own indices (B starts at ``kt_words`` and both skip the other's
    tiles), ``avail`` is the words in before the first one missing (the lesser of the two
    streams' next indices), and when both finish a word in one cycle, A writes and B's last beat
    waits a cycle."""

    def __init__(self, config: SenseConfig):
        self._config = config
        members = {
            "payload": In(DATA_BITS), "accept": In(1), "ready": Out(1), "clear": In(1),
            "wr_addr": Out(unsigned(weight_addr_bits(config))),
            "wr_data": Out(weight_word_layout(config)), "wr_en": Out(1),
            "avail": Out(WEIGHT_INDEX_BITS), "release": In(WEIGHT_INDEX_BITS),
        }
        if config.weight_port:
            members |= {"payload_b": In(DATA_BITS), "accept_b": In(1), "ready_b": Out(1),
                        "split": In(1), "kt_words": In(24)}
        super().__init__(members)

    @property
    def word_beats(self) -> int:
        return record_bytes(weight_word_layout(self._config), BEAT_BYTES) // BEAT_BYTES

    def _assembler(self, m, name, payload, accept):
        """One stream's word assembly: its beat counter, the beats of the word so far, the word
        with this cycle's beat, whether this beat is the word's last, its next word index."""
        word_beats = self.word_beats
        s = SimpleNamespace(n=Signal(WEIGHT_INDEX_BITS, name=f"{name}_next"),
                            beat=Signal(range(max(word_beats, 2)), name=f"{name}_beat"),
                            buf=Signal(max(1, DATA_BITS * (word_beats - 1)), name=f"{name}_buf"))
        s.last = s.beat == word_beats - 1
        s.word = Cat(s.buf, payload) if word_beats > 1 else payload
        s.room = s.n < self.release + self._config.weight_depth
        with m.If(self.clear):
            m.d.sync += s.beat.eq(0)
        with m.Elif(accept):
            with m.If(s.last):
                m.d.sync += s.beat.eq(0)
            with m.Else():
                m.d.sync += s.beat.eq(s.beat + 1)
                if word_beats > 1:
                    m.d.sync += s.buf.eq(Cat(s.buf[DATA_BITS:], payload)
                                         if word_beats > 2 else payload)
        return s

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        bits = weight_word_layout(cfg).size
        a = self._assembler(m, "wa", self.payload, self.accept)
        write_a = self.accept & a.last
        m.d.comb += [self.ready.eq(~a.last | a.room), self.wr_en.eq(write_a)]
        if not cfg.weight_port:
            m.d.comb += [self.wr_addr.eq(a.n[:weight_addr_bits(cfg)]),
                         self.wr_data.eq(a.word[:bits]), self.avail.eq(a.n)]
            with m.If(self.clear):
                m.d.sync += a.n.eq(0)
            with m.Elif(write_a):
                m.d.sync += a.n.eq(a.n + 1)
            return m
        bs = self._assembler(m, "wb", self.payload_b, self.accept_b)
        write_b = self.accept_b & bs.last
        split = Signal()
        # each stream's end of its current k tile: there it skips the other stream's tile
        end_a, end_b = Signal(WEIGHT_INDEX_BITS), Signal(WEIGHT_INDEX_BITS)
        m.d.comb += [
            self.ready_b.eq(~bs.last | (bs.room & ~write_a)),
            self.wr_en.eq(write_a | write_b),
            self.wr_addr.eq(Mux(write_a, a.n, bs.n)[:weight_addr_bits(cfg)]),
            self.wr_data.eq(Mux(write_a, a.word[:bits], bs.word[:bits])),
            self.avail.eq(Mux(split & (bs.n < a.n), bs.n, a.n)),
        ]
        with m.If(self.clear):
            m.d.sync += [split.eq(self.split), a.n.eq(0), bs.n.eq(self.kt_words),
                         end_a.eq(self.kt_words), end_b.eq(self.kt_words << 1)]
        for s, write, end in ((a, write_a, end_a), (bs, write_b, end_b)):
            with m.If(~self.clear & write):
                with m.If(split & (s.n + 1 == end)):
                    m.d.sync += [s.n.eq(end + self.kt_words), end.eq(end + (self.kt_words << 1))]
                with m.Else():
                    m.d.sync += s.n.eq(s.n + 1)
        return m
