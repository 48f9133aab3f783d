"""The IFM sparsity decoder: IFM banks, the pixel walker (`hw.core.pixel_walker`), the group
sequencer with zero-group skipping, and the column issue stage. The cycle-level contract it shares
with the weight decoder is in `hw.core.decoders`."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.core.decoders import (
    WEIGHT_INDEX_BITS,
    delayed,
    ifm_addr_bits,
    ifm_line_bits,
    tile_info_layout,
    weight_addr_bits,
)
from hw.core.pixel_walker import PixelWalker, pixel_column_layout, word_bits
from hw.layouts import (
    DIM_BITS,
    ifm_layout,
    ifm_line_layout,
    ifm_word_layout,
    layer_layout,
)

__all__ = ["IfmDecoder"]


class IfmDecoder(wiring.Component):
    """IFM banks, pixel walker, group sequencer with zero-group skipping, and column issue stage.

    ``aux_*`` reads one word of bank 0 while the decoder is idle (one cycle latency).
    ``layer`` is latched on ``start``. IFM bank j (``ifm_bank_lines`` lines of 16 bytes) serves
    column j; ``wr_*`` writes one line (16 / M words, one AXI beat) to all banks at once. A word
    for channel group cg of pixel (y, x) is at word address ``(y * in_w + x) * in_groups + cg``
    (line = address / (16 / M)). ``x_out[j]`` is column j's issued IFM, j cycles after the issue
    stage. ``tile_done`` pulses with a tile's last operation, with ``tile_info``. ``busy`` is
    high from ``start`` until every operation has been issued.

    Tile order: k tile outer, pixel tile inner (``layer.ifm_stationary`` = 0), or pixel tile
    outer, k tile inner (1). Weights: the weight buffer is a ring; weight word n of the layer
    (absolute index) may be issued once ``w_avail`` > n, and words below ``w_release`` are no
    longer needed (the weight loader may overwrite them). In the pixel-outer order every pixel
    tile re-reads the layer's weights from word 0, so ``w_release`` stays 0 and the whole layer's
    weights must fit the buffer.
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        self.aw = ifm_addr_bits(config)
        super().__init__({
            "layer": In(layer_layout(config)),
            "start": In(1),
            "last_ok": In(1),
            "wr_addr": In(unsigned(ifm_line_bits(config))),
            "wr_data": In(ifm_line_layout(config)),
            "wr_en": In(1),
            "w_rd_addr": Out(unsigned(weight_addr_bits(config))),
            "w_avail": In(WEIGHT_INDEX_BITS),
            "w_release": Out(WEIGHT_INDEX_BITS),
            "aux_addr": In(unsigned(self.aw)),
            "aux_en": In(1),
            "aux_data": Out(ifm_word_layout(config)),
            "issue": Out(1),
            "null": Out(1),
            "first": Out(1),
            "last": Out(1),
            "tile_done": Out(1),
            "tile_info": Out(tile_info_layout(config)),
            "x_out": Out(data.ArrayLayout(ifm_layout(config), config.cols)),
            "busy": Out(1),
            "groups_issued": Out(32),
            "groups_skipped": Out(32),
            "slots_issued": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.walker = walker = PixelWalker(cfg)
        m.d.comb += [walker.start.eq(self.start), walker.layer.eq(self.layer)]
        s = SimpleNamespace(walker=walker, L=walker.params)
        self._banks(m, s)
        self._group_state(m, s)
        self._issue_decision(m, s)
        self._sequence(m, s)
        self._weights(m, s)
        self._aux_read(m, s)
        self._issue_stage(m, s)
        self._status(m, s)
        return m

    def _banks(self, m, s):
        """IFM banks: beat-sized lines, each word with its nonzero bit; a read fetches a line,
        the candidate's sub-address picks the word."""
        cfg = self._config
        cols = cfg.cols
        wpl = cfg.ifm_words_per_line
        s.sub_bits = (wpl - 1).bit_length()
        s.cand_sub = [Signal(range(max(wpl, 2)), name=f"cand_sub_{j}") for j in range(cols)]
        s.banks = []
        bank_line = data.StructLayout({"data": ifm_line_layout(cfg), "nz": wpl})
        for j in range(cols):
            mem = Memory(shape=bank_line, depth=cfg.ifm_bank_lines, init=[])
            m.submodules[f"bank{j}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=())
            m.d.comb += [wr.addr.eq(self.wr_addr), wr.data.data.eq(self.wr_data),
                         wr.data.nz.eq(Cat(self.wr_data[i].as_value().any() for i in range(wpl))),
                         wr.en.eq(self.wr_en)]
            s.banks.append(rd)
        if s.sub_bits:
            s.bank_words = [s.banks[j].data.data[s.cand_sub[j]] for j in range(cols)]
            s.bank_nz = [s.banks[j].data.nz.bit_select(s.cand_sub[j], 1) for j in range(cols)]
        else:
            s.bank_words = [s.banks[j].data.data[0] for j in range(cols)]
            s.bank_nz = [s.banks[j].data.nz[0] for j in range(cols)]

    def _group_state(self, m, s):
        """The current tile (`cur`), its group counters, and the staged candidate group."""
        cfg = self._config
        cols, sw = cfg.cols, word_bits(cfg)
        s.cur = Signal(data.ArrayLayout(pixel_column_layout(cfg), cols))
        s.cur_valid = Signal()
        s.cur_info = Signal(tile_info_layout(cfg))
        s.kh = Signal(unsigned(4))
        s.kw = Signal(unsigned(4))
        s.cg = Signal(unsigned(DIM_BITS))
        s.offset = Signal(signed(sw))
        s.kh_row = Signal(signed(sw))  # kh * in_w * in_groups
        s.grp_last_kw = s.kw + 1 == s.L.kernel_w
        s.grp_last_cg = s.cg + 1 == s.L.in_groups
        s.grp_last = s.grp_last_cg & s.grp_last_kw & (s.kh + 1 == s.L.kernel_h)
        s.w_next = Signal(WEIGHT_INDEX_BITS)
        s.w_kt_base = Signal(WEIGHT_INDEX_BITS)
        s.cand_valid = Signal()
        s.cand_last = Signal()
        s.cand_info = Signal(tile_info_layout(cfg))
        s.cand_wbase = Signal(WEIGHT_INDEX_BITS)
        s.cand_kt_base = Signal(WEIGHT_INDEX_BITS)
        s.cand_inb = Signal(cols)
        s.slot = Signal(range(max(cfg.cycles_per_group, 2)))
        s.started = Signal()

    def _issue_decision(self, m, s):
        """What the candidate does this cycle: skipped (all zero), issued one slot, or waiting
        (its weights not in yet, or the tile's last operation before the drain is free)."""
        cfg = self._config
        cpg = cfg.cycles_per_group
        # The candidate's weights are all in the buffer (w_avail is registered once more, so a
        # word counted there was written before the cycle its address was read).
        w_avail = Signal(WEIGHT_INDEX_BITS)
        m.d.sync += w_avail.eq(self.w_avail)
        w_ok = s.cand_wbase + cpg <= w_avail
        m.d.comb += self.w_release.eq(Mux(s.L.ifm_stationary, 0, s.cand_kt_base))
        s.nonzero = Cat(s.cand_inb[j] & s.bank_nz[j] for j in range(cfg.cols)).any()
        s.consume, s.issue, s.null = Signal(), Signal(), Signal()
        s.first, s.last = Signal(), Signal()
        last_slot = s.slot == cpg - 1
        with m.If(s.cand_valid):
            with m.If(~s.nonzero):
                with m.If(s.cand_last):
                    m.d.comb += [s.issue.eq(self.last_ok), s.null.eq(1), s.first.eq(~s.started),
                                 s.last.eq(1), s.consume.eq(self.last_ok)]
                with m.Else():
                    m.d.comb += s.consume.eq(1)
            with m.Else():
                last_op = s.cand_last & last_slot
                m.d.comb += [s.issue.eq((~last_op | self.last_ok) & w_ok),
                             s.first.eq(~s.started & (s.slot == 0)),
                             s.last.eq(last_op), s.consume.eq(s.issue & last_slot)]
        s.read_next = (~s.cand_valid | s.consume) & s.cur_valid & ~self.start
        s.load = s.walker.ready & (~s.cur_valid | (s.read_next & s.grp_last)) & ~self.start
        m.d.comb += s.walker.take.eq(s.load)
        with m.If(s.issue):
            m.d.sync += s.started.eq(~s.last)
        with m.If(s.consume):
            m.d.sync += s.slot.eq(0)
        with m.Elif(s.issue):
            m.d.sync += s.slot.eq(s.slot + 1)

    def _sequence(self, m, s):
        """The next candidate is read in the cycle the current one is consumed: channel group
        innermost, then kernel column, then kernel row."""
        cfg = self._config
        L, cur = s.L, s.cur
        with m.If(s.read_next):
            inb = Signal(cfg.cols)
            for j in range(cfg.cols):
                iy = cur[j].iy0 + s.kh
                ix = cur[j].ix0 + s.kw
                m.d.comb += [
                    inb[j].eq(cur[j].valid & (iy >= 0) & (iy < L.in_h) & (ix >= 0)
                              & (ix < L.in_w)),
                    s.banks[j].addr.eq((cur[j].base + s.offset)[s.sub_bits:self.aw]),
                ]
            m.d.sync += [s.cand_valid.eq(1), s.cand_last.eq(s.grp_last),
                         s.cand_info.eq(s.cur_info), s.cand_wbase.eq(s.w_next),
                         s.cand_kt_base.eq(s.w_kt_base), s.cand_inb.eq(inb)]
            if s.sub_bits:
                for j in range(cfg.cols):
                    m.d.sync += s.cand_sub[j].eq((cur[j].base + s.offset)[:s.sub_bits])
            with m.If(s.grp_last):
                m.d.sync += [s.cur_valid.eq(0), s.kh.eq(0), s.kw.eq(0), s.cg.eq(0),
                             s.offset.eq(0), s.kh_row.eq(0)]
            with m.Elif(s.grp_last_cg & s.grp_last_kw):
                row_words = s.walker.row_words
                m.d.sync += [s.cg.eq(0), s.kw.eq(0), s.kh.eq(s.kh + 1),
                             s.kh_row.eq(s.kh_row + row_words),
                             s.offset.eq(s.kh_row + row_words)]
            with m.Elif(s.grp_last_cg):
                m.d.sync += [s.cg.eq(0), s.kw.eq(s.kw + 1), s.offset.eq(s.offset + 1)]
            with m.Else():
                m.d.sync += [s.cg.eq(s.cg + 1), s.offset.eq(s.offset + 1)]
        with m.Elif(s.consume):
            m.d.sync += s.cand_valid.eq(0)
        for bank in s.banks:
            m.d.comb += bank.en.eq(s.read_next)

    def _weights(self, m, s):
        """Weight-word indices: each tile restarts at its k tile's first word; the weight
        buffer's read address for the slot issued next cycle."""
        cpg = self._config.cycles_per_group
        walker = s.walker
        w_after = Mux(s.read_next, s.w_next + cpg, s.w_next)
        with m.If(s.load):
            m.d.sync += [s.cur.eq(walker.tile), s.cur_valid.eq(1), s.cur_info.eq(walker.info)]
            with m.If(walker.w_zero):
                m.d.sync += [s.w_kt_base.eq(0), s.w_next.eq(0)]
            with m.Elif(walker.new_kt):
                m.d.sync += [s.w_kt_base.eq(w_after), s.w_next.eq(w_after)]
            with m.Else():
                m.d.sync += s.w_next.eq(s.w_kt_base)
        with m.Else():
            m.d.sync += s.w_next.eq(w_after)
        with m.If(self.start):
            m.d.sync += [s.cur_valid.eq(0), s.cand_valid.eq(0), s.slot.eq(0), s.started.eq(0),
                         s.kh.eq(0), s.kw.eq(0), s.cg.eq(0), s.offset.eq(0), s.kh_row.eq(0),
                         s.w_next.eq(0), s.w_kt_base.eq(0), s.cand_kt_base.eq(0)]
        with m.If(s.read_next):
            m.d.comb += self.w_rd_addr.eq(s.w_next)
        with m.Else():
            m.d.comb += self.w_rd_addr.eq(s.cand_wbase + s.slot + s.issue)  # truncated: the ring

    def _aux_read(self, m, s):
        """Auxiliary read of bank 0 (one word, one cycle later on aux_data) while the core is
        idle: the max-pool pass reads the conv output back through it."""
        wpl, sub_bits, bank = self._config.ifm_words_per_line, s.sub_bits, s.banks[0]
        aux_sub = Signal(range(max(wpl, 2)))
        with m.If(self.aux_en):
            m.d.comb += [bank.addr.eq(self.aux_addr[sub_bits:]), bank.en.eq(1)]
            if sub_bits:
                m.d.sync += aux_sub.eq(self.aux_addr[:sub_bits])
        m.d.comb += self.aux_data.eq(bank.data.data[aux_sub] if sub_bits else bank.data.data[0])

    def _issue_stage(self, m, s):
        """Column issue stage and skew: column j's IFM leaves j cycles after the issue stage."""
        cfg = self._config
        m.d.comb += [self.issue.eq(s.issue), self.null.eq(s.null), self.first.eq(s.first),
                     self.last.eq(s.last), self.tile_done.eq(s.issue & s.last),
                     self.tile_info.eq(s.cand_info)]
        s.use = s.issue & ~s.null
        for j in range(cfg.cols):
            x = Signal(ifm_layout(cfg), name=f"issue_x_{j}")
            word = s.bank_words[j]
            keep = s.use & s.cand_inb[j]
            if cfg.sparse:
                m.d.sync += x.eq(Mux(keep, word.as_value(), 0))
            else:
                m.d.sync += x[0].eq(Mux(keep, word[s.slot], 0))
            m.d.comb += self.x_out[j].eq(delayed(m, x, j, f"col{j}"))

    def _status(self, m, s):
        m.d.comb += self.busy.eq(s.walker.busy | s.cur_valid | s.cand_valid | self.start)
        with m.If(self.start):
            m.d.sync += [self.groups_issued.eq(0), self.groups_skipped.eq(0),
                         self.slots_issued.eq(0)]
        with m.Else():
            with m.If(s.consume & s.nonzero):
                m.d.sync += self.groups_issued.eq(self.groups_issued + 1)
            with m.If(s.consume & ~s.nonzero):
                m.d.sync += self.groups_skipped.eq(self.groups_skipped + 1)
            with m.If(s.use):
                m.d.sync += self.slots_issued.eq(self.slots_issued + 1)
