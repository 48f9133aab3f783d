"""The max-pool pass: a layer's convolution output, read back into the IFM banks, pooled one
word (M channels) per cycle into the layer's output in DRAM."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.layouts import DIM_BITS, ifm_word_layout
from hw.soc.dma import ADDR_BITS, DATA_BITS, dma_command_layout

__all__ = ["PoolUnit"]


class PoolUnit(wiring.Component):
    """``start`` (one cycle; the convolution output of ``out_h`` x ``out_w`` pixels, ``gk``
    channel groups, is in the IFM banks) pools it with window ``kernel``, ``stride``, ``pad``:
    it counts the pooled size, issues one DMA write ``cmd`` for the whole output at ``base``,
    then walks the windows (pooled row, column, channel group outer; window row, column inner),
    reading one word per cycle through ``rd_*`` (the core's IFM read port by pixel index
    ``y * out_w + x`` and channel group, two cycles of latency) and sending whole ``data`` beats. ``done`` is high for the one cycle in which the
    last beat has gone and the DMA is idle (``dma_busy`` low)."""

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "start": In(1), "done": Out(1), "dma_busy": In(1),
            "out_h": In(16), "out_w": In(16), "gk": In(16),
            "kernel": In(8), "stride": In(8), "pad": In(8), "base": In(ADDR_BITS + 1),
            "rd_pixel": Out(unsigned(2 * DIM_BITS)), "rd_cg": Out(unsigned(DIM_BITS)),
            "rd_en": Out(1),
            "rd_data": In(ifm_word_layout(config)),
            "cmd": Out(stream.Signature(dma_command_layout())),
            "data": Out(stream.Signature(DATA_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lg_m = cfg.group.bit_length() - 1
        walk = {name: Signal(16, name=f"p_{name}") for name in ("y", "x", "cg")}
        walk |= {"wy": Signal(8, name="p_wy"), "wx": Signal(8, name="p_wx"),
                 "y0": Signal(signed(20), name="p_y0"), "x0": Signal(signed(20), name="p_x0")}
        run = Signal()
        size = {"poh": Signal(16), "pow": Signal(16), "words": Signal(40)}
        emitted = Signal(40)
        beat_n = Signal(range(cfg.ifm_words_per_line + 1))
        self._sequence(m, walk, run, size, emitted, beat_n, lg_m)
        self._datapath(m, walk, run, size, emitted, beat_n)
        return m

    def _sequence(self, m, walk, run, size, emitted, beat_n, lg_m):
        """Size the output by counting windows (floor((n + 2 pad - kernel) / stride) + 1), issue
        the write command, wait for the last beat."""
        k, s, p = self.kernel, self.stride, self.pad
        cnt_h = Signal(24)
        cnt_w = Signal(24)
        with m.FSM(name="pool"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [cnt_h.eq(k), cnt_w.eq(k), size["poh"].eq(0), size["pow"].eq(0)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                with m.If(cnt_h <= self.out_h + 2 * p):
                    m.d.sync += [cnt_h.eq(cnt_h + s), size["poh"].eq(size["poh"] + 1)]
                with m.If(cnt_w <= self.out_w + 2 * p):
                    m.d.sync += [cnt_w.eq(cnt_w + s), size["pow"].eq(size["pow"] + 1)]
                with m.If((cnt_h > self.out_h + 2 * p) & (cnt_w > self.out_w + 2 * p)):
                    m.d.sync += size["words"].eq(size["poh"] * size["pow"] * self.gk)
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [self.cmd.valid.eq(1), self.cmd.payload.addr.eq(self.base),
                             self.cmd.payload.length.eq(size["words"] << lg_m)]
                with m.If(self.cmd.ready):
                    m.d.sync += [run.eq(1), emitted.eq(0), beat_n.eq(0), self.data.payload.eq(0),
                                 walk["y0"].eq(-p), walk["x0"].eq(-p)]
                    m.d.sync += [walk[n].eq(0) for n in ("y", "x", "cg", "wy", "wx")]
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If((emitted == size["words"]) & ~self.data.valid & ~self.dma_busy):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"

    def _datapath(self, m, walk, run, size, emitted, beat_n):
        """Window walker -> IFM read -> running maximum -> beat assembly, one word per cycle
        while no beat waits."""
        cfg = self._config
        M = cfg.group
        advance = ~self.data.valid
        y = walk["y0"] + walk["wy"]
        x = walk["x0"] + walk["wx"]
        flags = data.StructLayout({"valid": 1, "inb": 1, "first": 1, "last": 1})
        st1, st2, st3 = (Signal(flags, name=f"pool_st{i}") for i in (1, 2, 3))
        idx1 = Signal(24)
        cg1 = Signal(16)
        acc = Signal(data.ArrayLayout(signed(8), M))
        k = self.kernel
        with m.If(advance):
            m.d.sync += [
                st1.valid.eq(run), st1.inb.eq((y >= 0) & (y < self.out_h) & (x >= 0)
                                              & (x < self.out_w)),
                st1.first.eq((walk["wy"] == 0) & (walk["wx"] == 0)),
                st1.last.eq((walk["wy"] + 1 == k) & (walk["wx"] + 1 == k)),
                idx1.eq(y[:12] * self.out_w + x[:12]), cg1.eq(walk["cg"]),
                st2.eq(st1), st3.eq(st2),
            ]
        m.d.comb += [self.rd_pixel.eq(idx1), self.rd_cg.eq(cg1),
                     self.rd_en.eq(advance & st1.valid & st1.inb)]
        # (stage 2 holds the read; its data is on rd_data in stage 3)
        with m.If(advance & st2.valid):
            for lane in range(M):
                v = self.rd_data[lane]
                with m.If(st2.first):
                    m.d.sync += acc[lane].eq(Mux(st2.inb, v, -128))
                with m.Elif(st2.inb & (v > acc[lane])):
                    m.d.sync += acc[lane].eq(v)
        # Stage 3: a finished window's word goes into the beat being assembled.
        with m.If(advance & st3.valid & st3.last):
            for i in range(cfg.ifm_words_per_line):
                with m.If(beat_n == i):
                    m.d.sync += self.data.payload[i * 8 * M:(i + 1) * 8 * M].eq(acc.as_value())
            m.d.sync += [beat_n.eq(beat_n + 1), emitted.eq(emitted + 1)]
            with m.If((beat_n + 1 == cfg.ifm_words_per_line) | (emitted + 1 == size["words"])):
                m.d.sync += self.data.valid.eq(1)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [self.data.valid.eq(0), beat_n.eq(0), self.data.payload.eq(0)]
        self._walk(m, walk, run, size, advance)

    def _walk(self, m, walk, run, size, advance):
        k, s, p = self.kernel, self.stride, self.pad
        with m.If(run & advance):
            with m.If(walk["wx"] + 1 != k):
                m.d.sync += walk["wx"].eq(walk["wx"] + 1)
            with m.Elif(walk["wy"] + 1 != k):
                m.d.sync += [walk["wx"].eq(0), walk["wy"].eq(walk["wy"] + 1)]
            with m.Else():
                m.d.sync += [walk["wx"].eq(0), walk["wy"].eq(0)]
                with m.If(walk["cg"] + 1 != self.gk):
                    m.d.sync += walk["cg"].eq(walk["cg"] + 1)
                with m.Else():
                    m.d.sync += walk["cg"].eq(0)
                    with m.If(walk["x"] + 1 != size["pow"]):
                        m.d.sync += [walk["x"].eq(walk["x"] + 1), walk["x0"].eq(walk["x0"] + s)]
                    with m.Else():
                        m.d.sync += [walk["x"].eq(0), walk["x0"].eq(-p)]
                        with m.If(walk["y"] + 1 != size["poh"]):
                            m.d.sync += [walk["y"].eq(walk["y"] + 1),
                                         walk["y0"].eq(walk["y0"] + s)]
                        with m.Else():
                            m.d.sync += run.eq(0)
