"""The weight loader: the layer's weight block, streamed from DRAM, assembled into weight words
and written into the core's weight ring while there is room."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
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
    (one cycle, at the layer's start) restarts the count."""

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "payload": In(DATA_BITS), "accept": In(1), "ready": Out(1), "clear": In(1),
            "wr_addr": Out(unsigned(weight_addr_bits(config))),
            "wr_data": Out(weight_word_layout(config)), "wr_en": Out(1),
            "avail": Out(WEIGHT_INDEX_BITS), "release": In(WEIGHT_INDEX_BITS),
        })

    @property
    def word_beats(self) -> int:
        return record_bytes(weight_word_layout(self._config), BEAT_BYTES) // BEAT_BYTES

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        word_beats = self.word_beats
        n = Signal(WEIGHT_INDEX_BITS)       # words written this layer
        beat = Signal(range(max(word_beats, 2)))
        buf = Signal(max(1, DATA_BITS * (word_beats - 1)))
        last_beat = beat == word_beats - 1
        full_word = Cat(buf, self.payload) if word_beats > 1 else self.payload
        m.d.comb += [
            self.wr_addr.eq(n[:weight_addr_bits(cfg)]),
            self.wr_data.eq(full_word[:weight_word_layout(cfg).size]),
            self.wr_en.eq(self.accept & last_beat),
            self.avail.eq(n),
            self.ready.eq(~last_beat | (n < self.release + cfg.weight_depth)),
        ]
        with m.If(self.clear):
            m.d.sync += [n.eq(0), beat.eq(0)]
        with m.Elif(self.accept):
            with m.If(last_beat):
                m.d.sync += [beat.eq(0), n.eq(n + 1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
                if word_beats > 1:
                    m.d.sync += buf.eq(Cat(buf[DATA_BITS:], self.payload)
                                       if word_beats > 2 else self.payload)
        return m
