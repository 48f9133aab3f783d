"""The IFM sparsity decoder: the IFM store (`hw.core.ifm_store`), the pixel walker
(`hw.core.pixel_walker`), the group sequencer with zero-group skipping, and the column issue
stage. The cycle-level contract it shares with the weight decoder is in `hw.core.decoders`."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import BEAT_BYTES, SenseConfig
from hw.core.decoders import (
    WEIGHT_INDEX_BITS,
    delayed,
    tile_info_layout,
    weight_addr_bits,
)
from hw.core.ifm_store import (IfmStore, bank_bits, ifm_geom_layout, lam_add, line_bits,
                               lo_bits, step_x, step_y)
from hw.core.pixel_walker import PixelWalker, pixel_column_layout
from hw.layouts import (
    DIM_BITS,
    ifm_layout,
    ifm_word_layout,
    ifm_taps_layout,
    layer_layout,
)

__all__ = ["IfmDecoder"]


class IfmDecoder(wiring.Component):
    """IFM store, pixel walker, group sequencer with zero-group skipping, and column issue stage.

    The store's ports are the decoder's: ``ifm_setup`` with ``ifm_geom`` (the input's
    geometry; ``ifm_ready`` when placed), ``ifm_load`` and the ``ifm_beat`` stream (the input
    tensor's DRAM beats; ``ifm_loading`` until all are in; with ``ifm_pair`` a pair load, its odd
    blocks on ``ifm_beat2``: hw.core.ifm_store), ``aux_*`` (one line of each of
    ``pool_taps`` consecutive pixels of a stride-1 placement, by the first pixel index and line
    of channel groups, one cycle later, while the decoder is idle).
    ``layer`` is latched on ``start``; the store must hold the layer's input, placed for it.
    ``x_out[j]`` is column j's issued IFM, j cycles after the issue stage. ``tile_done`` pulses with a tile's last operation, with ``tile_info``. ``busy`` is
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
        super().__init__({
            "layer": In(layer_layout(config)),
            "start": In(1),
            "last_ok": In(1),
            "ifm_setup": In(1), "ifm_geom": In(ifm_geom_layout()), "ifm_ready": Out(1),
            "ifm_load": In(1), "ifm_load_lane": In(4),
            "ifm_beat": In(stream.Signature(8 * BEAT_BYTES)),
            "ifm_pair": In(1), "ifm_beat2": In(stream.Signature(8 * BEAT_BYTES)),
            "ifm_loading": Out(1),
            "ifm_hold": In(1), "ifm_load_half": In(1), "ifm_read_half": In(1),
            "w_rd_addr": Out(unsigned(weight_addr_bits(config))),
            "w_avail": In(WEIGHT_INDEX_BITS),
            "w_release": Out(WEIGHT_INDEX_BITS),
            "aux_pixel": In(unsigned(2 * DIM_BITS)),
            "aux_line": In(unsigned(DIM_BITS)),
            "aux_en": In(1),
            "aux_data": Out(ifm_taps_layout(config)),
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
        m.submodules.store = store = IfmStore(cfg)
        m.d.comb += [walker.start.eq(self.start), walker.layer.eq(self.layer),
                     walker.k.eq(store.k_read), store.hold.eq(self.ifm_hold),
                     store.load_half.eq(self.ifm_load_half),
                     store.read_half.eq(self.ifm_read_half),
                     store.setup.eq(self.ifm_setup), store.geom.eq(self.ifm_geom),
                     self.ifm_ready.eq(store.ready), store.load.eq(self.ifm_load),
                     store.load_lane.eq(self.ifm_load_lane),
                     self.ifm_loading.eq(store.loading)]
        wiring.connect(m, wiring.flipped(self.ifm_beat), store.beat)
        wiring.connect(m, wiring.flipped(self.ifm_beat2), store.beat2)
        m.d.comb += store.pair.eq(self.ifm_pair)
        s = SimpleNamespace(walker=walker, L=walker.params, store=store, k=store.k_read)
        s.bank_words = [store.col[j].word for j in range(cfg.cols)]
        s.bank_nz = [store.col[j].nz for j in range(cfg.cols)]
        self._group_state(m, s)
        self._issue_decision(m, s)
        self._sequence(m, s)
        self._weights(m, s)
        self._aux_read(m, s)
        self._issue_stage(m, s)
        self._status(m, s)
        return m

    def _group_state(self, m, s):
        """The current tile (`cur`), its group counters, and the staged candidate group."""
        cfg = self._config
        cols, lb, bl = cfg.cols, line_bits(cfg), lo_bits(cfg)
        s.cur = Signal(data.ArrayLayout(pixel_column_layout(cfg), cols))
        s.cur_hi, s.cur_lo = Signal(lb), Signal(bl)       # the tile's virtual raster index
        s.cur_valid = Signal()
        s.cur_info = Signal(tile_info_layout(cfg))
        s.kh = Signal(unsigned(4))
        s.kw = Signal(unsigned(4))
        s.cg = Signal(unsigned(DIM_BITS))
        # The tap's pixel-index offset tau (hi, lo), that of its kernel row's first tap, and
        # the tap's phase (store placement).
        s.tau_hi, s.tau_lo, s.row_hi, s.row_lo = Signal(lb), Signal(bl), Signal(lb), Signal(bl)
        s.phx, s.phy = Signal(3), Signal(3)
        s.grp_last_kw = s.kw + 1 == s.L.kernel_w
        # (an input-channel block runs the stored groups cg0 .. in_groups - 1)
        s.grp_last_cg = s.cg + 1 == s.L.in_groups
        s.grp_last = s.grp_last_cg & s.grp_last_kw & (s.kh + 1 == s.L.kernel_h)
        s.w_next = Signal(WEIGHT_INDEX_BITS)
        s.w_kt_base = Signal(WEIGHT_INDEX_BITS)
        # A group in flight: whether it is its tile's last, the tile, its first weight word and
        # its k tile's first word.
        group = data.StructLayout({"last": 1, "info": tile_info_layout(cfg),
                                   "wbase": WEIGHT_INDEX_BITS, "kt_base": WEIGHT_INDEX_BITS})
        # The read stage: the group read last (its words on the store's outputs, held there
        # until the candidate stage takes them) and its columns inside the input.
        s.d_valid, s.d, s.d_inb = Signal(), Signal(group), Signal(cols)
        # The candidate stage: the group being decided and issued, its words registered (zero
        # for columns whose tap is padding) with one nonzero bit per column.
        s.cand_valid, s.cand = Signal(), Signal(group)
        s.cand_nz = Signal(cols)
        s.cand_words = Signal(data.ArrayLayout(ifm_word_layout(cfg), cols))
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
        w_ok = s.cand.wbase + cpg <= w_avail
        m.d.comb += self.w_release.eq(Mux(s.L.ifm_stationary, 0, s.cand.kt_base))
        s.nonzero = s.cand_nz.any()
        s.consume, s.issue, s.null = Signal(), Signal(), Signal()
        s.first, s.last = Signal(), Signal()
        last_slot = s.slot == cpg - 1
        with m.If(s.cand_valid):
            with m.If(~s.nonzero):
                with m.If(s.cand.last):
                    m.d.comb += [s.issue.eq(self.last_ok), s.null.eq(1), s.first.eq(~s.started),
                                 s.last.eq(1), s.consume.eq(self.last_ok)]
                with m.Else():
                    m.d.comb += s.consume.eq(1)
            with m.Else():
                last_op = s.cand.last & last_slot
                m.d.comb += [s.issue.eq((~last_op | self.last_ok) & w_ok),
                             s.first.eq(~s.started & (s.slot == 0)),
                             s.last.eq(last_op), s.consume.eq(s.issue & last_slot)]
        # The candidate stage takes the read stage's group when it is free or consumes its own;
        # the store reads the next group when the read stage is free or taken.
        s.take = s.d_valid & (~s.cand_valid | s.consume) & ~self.start
        s.read_next = (~s.d_valid | s.take) & s.cur_valid & ~self.start
        # A tile of the half being loaded waits until the rows its windows read are in (a
        # band's core starts while its input loads: hw.soc.accelerator, "follow").
        rows_ok = (~s.store.loading | (self.ifm_load_half != self.ifm_read_half)
                   | (s.walker.need_row < s.store.rows_in))
        s.load = (s.walker.ready & rows_ok & (~s.cur_valid | (s.read_next & s.grp_last))
                  & ~self.start)
        m.d.comb += s.walker.take.eq(s.load)
        with m.If(s.issue):
            m.d.sync += s.started.eq(~s.last)
        with m.If(s.consume):
            m.d.sync += s.slot.eq(0)
        with m.Elif(s.issue):
            m.d.sync += s.slot.eq(s.slot + 1)

    def _sequence(self, m, s):
        """The next candidate is read in the cycle the current one is consumed: channel group
        innermost, then kernel column, then kernel row. The store reads pixel index
        ``pi(tile) + tau(kh, kw)`` for column 0 and its successors for the other columns."""
        cfg, k = self._config, s.k
        L, cur, store = s.L, s.cur, s.store
        bb = bank_bits(cfg)
        s_m1 = (Const(1, 4) << k.ls) - 1
        lam_hi, lam_lo = lam_add(s.cur_hi, s.cur_lo, s.tau_hi, s.tau_lo, k.gl, bb)
        m.d.comb += [store.rd_hi.eq(lam_hi), store.rd_lo.eq(lam_lo), store.rd_cg.eq(s.cg),
                     store.rd_en.eq(s.read_next)]
        with m.If(s.read_next):
            # (the column's taps inside the input: `pixel_column_layout`)
            inb = Signal(cfg.cols)
            for j in range(cfg.cols):
                m.d.comb += inb[j].eq(cur[j].valid & (s.kh >= cur[j].y_lo) & (s.kh < cur[j].y_hi)
                                      & (s.kw >= cur[j].x_lo) & (s.kw < cur[j].x_hi))
            m.d.sync += [s.d_valid.eq(1), s.d.last.eq(s.grp_last), s.d.info.eq(s.cur_info),
                         s.d.wbase.eq(s.w_next), s.d.kt_base.eq(s.w_kt_base), s.d_inb.eq(inb)]
            with m.If(s.grp_last):
                m.d.sync += [s.cur_valid.eq(0), s.kh.eq(0), s.kw.eq(0), s.cg.eq(L.cg0)]
                self._tau_reset(m, s)
            with m.Elif(s.grp_last_cg & s.grp_last_kw):
                hi, lo = step_y(k, s.phy, (s.row_hi, s.row_lo), bb)
                m.d.sync += [s.cg.eq(L.cg0), s.kw.eq(0), s.kh.eq(s.kh + 1),
                             s.row_hi.eq(hi), s.row_lo.eq(lo), s.tau_hi.eq(hi), s.tau_lo.eq(lo),
                             s.phy.eq(Mux(s.phy == s_m1, 0, s.phy + 1)), s.phx.eq(k.ph0)]
            with m.Elif(s.grp_last_cg):
                hi, lo = step_x(k, s.phx, bb)((s.tau_hi, s.tau_lo))
                m.d.sync += [s.cg.eq(L.cg0), s.kw.eq(s.kw + 1), s.tau_hi.eq(hi), s.tau_lo.eq(lo),
                             s.phx.eq(Mux(s.phx == s_m1, 0, s.phx + 1))]
            with m.Else():
                m.d.sync += s.cg.eq(s.cg + 1)
        with m.Elif(s.take):
            m.d.sync += s.d_valid.eq(0)
        self._take(m, s)

    def _take(self, m, s):
        """The candidate stage takes the read stage's group: its words off the store's outputs
        (so the skip decision starts from registers, not from the block RAMs)."""
        cols = self._config.cols
        with m.If(s.take):
            m.d.sync += [s.cand_valid.eq(1), s.cand.eq(s.d),
                         s.cand_nz.eq(Cat(s.d_inb[j] & s.bank_nz[j] for j in range(cols)))]
            m.d.sync += [s.cand_words[j].eq(Mux(s.d_inb[j], s.bank_words[j].as_value(), 0))
                         for j in range(cols)]
        with m.Elif(s.consume):
            m.d.sync += s.cand_valid.eq(0)

    def _tau_reset(self, m, s):
        """Back to tap (0, 0): tau0 and the padding's phase."""
        k = s.k
        m.d.sync += [s.tau_hi.eq(k.tau0_hi), s.tau_lo.eq(k.tau0_lo), s.row_hi.eq(k.tau0_hi),
                     s.row_lo.eq(k.tau0_lo), s.phx.eq(k.ph0), s.phy.eq(k.ph0y)]

    def _weights(self, m, s):
        """Weight-word indices: each tile restarts at its k tile's first word; the weight
        buffer's read address for the slot issued next cycle."""
        cpg = self._config.cycles_per_group
        walker = s.walker
        w_after = Mux(s.read_next, s.w_next + cpg, s.w_next)
        with m.If(s.load):
            m.d.sync += [s.cur.eq(walker.tile), s.cur_valid.eq(1), s.cur_info.eq(walker.info),
                         s.cur_hi.eq(walker.pi_hi), s.cur_lo.eq(walker.pi_lo)]
            with m.If(walker.w_zero):
                m.d.sync += [s.w_kt_base.eq(0), s.w_next.eq(0)]
            with m.Elif(walker.new_kt):
                m.d.sync += [s.w_kt_base.eq(w_after), s.w_next.eq(w_after)]
            with m.Else():
                m.d.sync += s.w_next.eq(s.w_kt_base)
        with m.Else():
            m.d.sync += s.w_next.eq(w_after)
        with m.If(self.start):
            m.d.sync += [s.cur_valid.eq(0), s.d_valid.eq(0), s.cand_valid.eq(0), s.slot.eq(0),
                         s.started.eq(0),
                         s.kh.eq(0), s.kw.eq(0), s.cg.eq(self.layer.cg0),
                         s.w_next.eq(0), s.w_kt_base.eq(0), s.cand.kt_base.eq(0)]
            self._tau_reset(m, s)
        with m.If(s.take):
            m.d.comb += self.w_rd_addr.eq(s.d.wbase)
        with m.Else():
            m.d.comb += self.w_rd_addr.eq(s.cand.wbase + s.slot + s.issue)  # truncated: the ring

    def _aux_read(self, m, s):
        """Auxiliary read (a line of `pool_taps` pixels, one cycle later on aux_data) while the
        core is idle: the pool pass reads its map through it."""
        store = s.store
        m.d.comb += [store.aux_en.eq(self.aux_en), store.aux_pixel.eq(self.aux_pixel),
                     store.aux_line.eq(self.aux_line), self.aux_data.eq(store.aux_data)]

    def _issue_stage(self, m, s):
        """Column issue stage and skew: column j's IFM leaves j cycles after the issue stage."""
        cfg = self._config
        m.d.comb += [self.issue.eq(s.issue), self.null.eq(s.null), self.first.eq(s.first),
                     self.last.eq(s.last), self.tile_done.eq(s.issue & s.last),
                     self.tile_info.eq(s.cand.info)]
        s.use = s.issue & ~s.null
        for j in range(cfg.cols):
            x = Signal(ifm_layout(cfg), name=f"issue_x_{j}")
            word = s.cand_words[j]
            if cfg.sparse:
                m.d.sync += x.eq(Mux(s.use, word.as_value(), 0))
            else:
                m.d.sync += x[0].eq(Mux(s.use, word[s.slot], 0))
            m.d.comb += self.x_out[j].eq(delayed(m, x, j, f"col{j}"))

    def _status(self, m, s):
        m.d.comb += self.busy.eq(s.walker.busy | s.cur_valid | s.d_valid | s.cand_valid
                                 | self.start)
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
