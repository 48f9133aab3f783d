"""Weight and IFM sparsity decoders: they turn preloaded buffers into the grid's skewed operands.

Cycle-level contract (one "slot" = one cycle of the grid; a group takes M/2 slots sparse, M dense):

* The IFM decoder walks the layer's tiles (k tile outer, pixel tile inner), and inside a tile the
  reduction groups g = (kh, kw, cg), channel group innermost. For each group it reads the M-value
  word of every column's pixel from that column's IFM bank (zero padding by bounds check) into a
  staging register: the *candidate*. A candidate whose words are zero for every pixel of the tile
  is skipped in one cycle; otherwise it is issued, one slot per cycle. The next candidate is read
  in the cycle the current one is consumed, so there are no bubbles between groups.
* In the cycle an operation issues, the IFM decoder tells the weight decoder (issue, first, last,
  null) and has already addressed the weight buffer, one cycle earlier, for that slot.
* Both decoders register the operation (the *issue stage*) and delay row i / column j by i / j
  cycles, so the grid's operands meet (see hw/grid.py).
* ``first`` marks a tile's first operation. ``last`` marks its last: when the tile's last group is
  skipped, a null operation (value 0) carries the ``last`` flag in the skip cycle instead, so every
  tile ends with exactly one ``last``. A tile's last operation waits for ``last_ok`` (the previous
  tile's results have been drained), so no PE finishes a tile before its result registers are free.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.layouts import (
    CHANNEL_BITS,
    DIM_BITS,
    ifm_layout,
    ifm_line_layout,
    ifm_word_layout,
    layer_layout,
    weight_op_layout,
    weight_word_layout,
)

__all__ = ["IfmDecoder", "WeightDecoder", "tile_info_layout", "delayed", "WEIGHT_INDEX_BITS"]

#: Width of absolute weight-word indices (the weight buffer is a ring of weight_depth words).
WEIGHT_INDEX_BITS = 32


def delayed(m: Module, value, cycles: int, name: str):
    """`value` delayed by `cycles` registers (a shift register; SRLs on Xilinx)."""
    for k in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{k + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def tile_info_layout(config: SenseConfig) -> data.StructLayout:
    return data.StructLayout({
        "k0": unsigned(CHANNEL_BITS + 1),
        "tile": unsigned(2 * DIM_BITS),
        "count": unsigned(config.cols.bit_length()),
    })


def weight_addr_bits(config):
    return max(1, (config.weight_depth - 1).bit_length())


def ifm_addr_bits(config):
    """Bits of an IFM word address."""
    return max(1, (config.ifm_bank_depth - 1).bit_length())


def ifm_line_bits(config):
    """Bits of an IFM bank line address (the write side)."""
    return max(1, (config.ifm_bank_lines - 1).bit_length())


class WeightDecoder(wiring.Component):
    """Weight buffer plus issue stage for the rows.

    The buffer holds ``weight_depth`` words of ``weight_word_layout`` (one slot, every row); the
    word for slot s of group g of k tile kt is at ``(kt * groups + g) * slots + s``. ``rd_addr`` is
    read every cycle (synchronous, non-transparent); in the next cycle ``issue``/``null``/
    ``first``/``last`` say what to do with the word: the issue stage registers one operation per
    row (value forced to 0 when not issuing or null) and row i's operation leaves on ``ops[i]``
    i cycles later.
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "wr_addr": In(unsigned(weight_addr_bits(config))),
            "wr_data": In(weight_word_layout(config)),
            "wr_en": In(1),
            "rd_addr": In(unsigned(weight_addr_bits(config))),
            "issue": In(1),
            "null": In(1),
            "first": In(1),
            "last": In(1),
            "ops": Out(data.ArrayLayout(weight_op_layout(config), config.rows)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.mem = mem = Memory(shape=weight_word_layout(cfg), depth=cfg.weight_depth,
                                        init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())
        m.d.comb += [wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
                     rd.addr.eq(self.rd_addr), rd.en.eq(1)]
        use = self.issue & ~self.null
        for i in range(cfg.rows):
            op = Signal(weight_op_layout(cfg), name=f"issue_op_{i}")
            m.d.sync += [
                op.value.eq(Mux(use, rd.data[i].value, 0)),
                op.first.eq(self.issue & self.first),
                op.last.eq(self.issue & self.last),
            ]
            if cfg.pos_width:
                m.d.sync += op.pos.eq(rd.data[i].pos)
            m.d.comb += self.ops[i].eq(delayed(m, op, i, f"row{i}"))
        return m


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
        cols, cpg = cfg.cols, cfg.cycles_per_group
        sw = self.aw + 8           # signed word-address arithmetic, room for padding offsets
        cw = DIM_BITS + 6          # signed pixel coordinates

        # -- layer parameters and the products the walker steps by ---------------------------
        L = Signal(layer_layout(cfg))
        row_words = Signal(signed(sw))    # in_w * in_groups
        s_words = Signal(signed(sw))      # stride * in_groups
        p_words = Signal(signed(sw))      # pad * in_groups
        s_row = Signal(signed(sw))        # stride * in_w * in_groups
        p_row = Signal(signed(sw))        # pad * in_w * in_groups
        init = Signal(2)

        # -- pixel walker: emits the next tile's per-column base coordinates --------------------
        wk_active = Signal()
        wk_wrap = Signal()
        wk_oy = Signal(unsigned(DIM_BITS + 1))
        wk_ox = Signal(unsigned(DIM_BITS + 1))
        wk_iy0 = Signal(signed(cw))
        wk_ix0 = Signal(signed(cw))
        wk_rowbase = Signal(signed(sw))
        wk_base = Signal(signed(sw))
        wk_count = Signal(range(cols + 1))
        wk_valid = Signal(range(cols + 1))
        wk_k0 = Signal(unsigned(CHANNEL_BITS + 1))
        wk_tile = Signal(unsigned(2 * DIM_BITS))
        wk_new_kt = Signal()
        wk_w_zero = Signal()
        # Start of the current pixel tile (the pixel-outer order revisits it for every k tile).
        sv_oy = Signal.like(wk_oy)
        sv_ox = Signal.like(wk_ox)
        sv_iy0 = Signal.like(wk_iy0)
        sv_ix0 = Signal.like(wk_ix0)
        sv_rowbase = Signal.like(wk_rowbase)
        sv_base = Signal.like(wk_base)
        walker = (wk_oy, wk_ox, wk_iy0, wk_ix0, wk_rowbase, wk_base)
        saved = (sv_oy, sv_ox, sv_iy0, sv_ix0, sv_rowbase, sv_base)

        col = data.StructLayout({"valid": 1, "iy0": signed(cw), "ix0": signed(cw),
                                 "base": signed(sw)})
        nx = Signal(data.ArrayLayout(col, cols))
        nx_ready = Signal()
        nx_info = Signal(tile_info_layout(cfg))
        nx_new_kt = Signal()
        nx_w_zero = Signal()

        with m.If(self.start):
            m.d.sync += [L.eq(self.layer), init.eq(1), wk_active.eq(0), nx_ready.eq(0)]
        with m.Elif(init == 1):
            m.d.sync += [row_words.eq(L.in_w * L.in_groups), s_words.eq(L.stride * L.in_groups),
                         p_words.eq(L.pad * L.in_groups), init.eq(2)]
        with m.Elif(init == 2):
            m.d.sync += [
                s_row.eq(L.stride * row_words), p_row.eq(L.pad * row_words), init.eq(3)]
        with m.Elif(init == 3):
            origin = (0, 0, -L.pad, -L.pad, -p_row, -p_row - p_words)
            m.d.sync += [
                init.eq(0), wk_active.eq(1), wk_wrap.eq(0),
                *(r.eq(v) for r, v in zip(walker, origin)),
                *(r.eq(v) for r, v in zip(saved, origin)),
                wk_count.eq(0), wk_valid.eq(0), wk_k0.eq(0), wk_tile.eq(0), wk_new_kt.eq(1),
                wk_w_zero.eq(1),
            ]

        pixel_valid = wk_oy < L.out_h
        emit = wk_active & ~nx_ready & ~wk_wrap & (init == 0) & ~self.start
        with m.If(emit):
            new = Signal(col)
            m.d.comb += [new.valid.eq(pixel_valid), new.iy0.eq(wk_iy0), new.ix0.eq(wk_ix0),
                         new.base.eq(wk_base)]
            for j in range(cols - 1):
                m.d.sync += nx[j].eq(nx[j + 1])
            m.d.sync += [nx[cols - 1].eq(new), wk_count.eq(wk_count + 1),
                         wk_valid.eq(wk_valid + pixel_valid)]
            with m.If(pixel_valid):
                with m.If(wk_ox + 1 == L.out_w):
                    m.d.sync += [wk_ox.eq(0), wk_oy.eq(wk_oy + 1), wk_ix0.eq(-L.pad),
                                 wk_iy0.eq(wk_iy0 + L.stride), wk_rowbase.eq(wk_rowbase + s_row),
                                 wk_base.eq(wk_rowbase + s_row - p_words)]
                with m.Else():
                    m.d.sync += [wk_ox.eq(wk_ox + 1), wk_ix0.eq(wk_ix0 + L.stride),
                                 wk_base.eq(wk_base + s_words)]
            with m.If(wk_count == cols - 1):
                m.d.sync += [
                    nx_ready.eq(1), wk_wrap.eq(1),
                    nx_info.k0.eq(wk_k0), nx_info.tile.eq(wk_tile),
                    nx_info.count.eq(wk_valid + pixel_valid), nx_new_kt.eq(wk_new_kt),
                    nx_w_zero.eq(wk_w_zero),
                ]
        with m.If(wk_wrap & ~self.start):
            # The tile is complete: set the walker up for the next one.
            m.d.sync += [wk_wrap.eq(0), wk_count.eq(0), wk_valid.eq(0), wk_new_kt.eq(0),
                         wk_w_zero.eq(0)]
            more_k = wk_k0 + cfg.rows < L.out_channels
            with m.If(L.ifm_stationary):
                # Pixel tile outer: the next k tile of the same pixels, or k tile 0 of the next
                # pixel tile (whose weights start again at word 0).
                with m.If(more_k):
                    m.d.sync += [*(r.eq(v) for r, v in zip(walker, saved)),
                                 wk_k0.eq(wk_k0 + cfg.rows), wk_new_kt.eq(1)]
                with m.Else():
                    m.d.sync += [*(r.eq(v) for r, v in zip(saved, walker)),
                                 wk_k0.eq(0), wk_tile.eq(wk_tile + 1), wk_new_kt.eq(1),
                                 wk_w_zero.eq(1)]
                    with m.If(wk_oy >= L.out_h):
                        m.d.sync += wk_active.eq(0)
            with m.Else():
                # K tile outer: the next pixel tile, or the next k tile at the end of the map.
                m.d.sync += wk_tile.eq(wk_tile + 1)
                with m.If(wk_oy >= L.out_h):
                    m.d.sync += [
                        *(r.eq(v) for r, v in zip(walker, saved)),
                        wk_k0.eq(wk_k0 + cfg.rows), wk_tile.eq(0), wk_new_kt.eq(1),
                    ]
                    with m.If(~more_k):
                        m.d.sync += wk_active.eq(0)

        # -- group sequencer --------------------------------------------------------------------
        cur = Signal(data.ArrayLayout(col, cols))
        cur_valid = Signal()
        cur_info = Signal(tile_info_layout(cfg))
        kh = Signal(unsigned(4))
        kw = Signal(unsigned(4))
        cg = Signal(unsigned(DIM_BITS))
        offset = Signal(signed(sw))
        kh_row = Signal(signed(sw))  # kh * in_w * in_groups
        grp_last_kw = kw + 1 == L.kernel_w
        grp_last_cg = cg + 1 == L.in_groups
        grp_last = grp_last_cg & grp_last_kw & (kh + 1 == L.kernel_h)
        w_next = Signal(WEIGHT_INDEX_BITS)
        w_kt_base = Signal(WEIGHT_INDEX_BITS)

        cand_valid = Signal()
        cand_last = Signal()
        cand_info = Signal(tile_info_layout(cfg))
        cand_wbase = Signal(WEIGHT_INDEX_BITS)
        cand_kt_base = Signal(WEIGHT_INDEX_BITS)
        cand_sub = [Signal(range(max(cfg.ifm_words_per_line, 2)), name=f"cand_sub_{j}")
                    for j in range(cols)]
        cand_inb = Signal(cols)
        slot = Signal(range(max(cpg, 2)))
        started = Signal()

        # IFM banks: 16-byte lines, each word with its nonzero bit; read a line, pick the word.
        wpl = cfg.ifm_words_per_line
        sub_bits = (wpl - 1).bit_length()
        banks = []
        bank_line = data.StructLayout({"data": ifm_line_layout(cfg), "nz": wpl})
        for j in range(cols):
            mem = Memory(shape=bank_line, depth=cfg.ifm_bank_lines, init=[])
            m.submodules[f"bank{j}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=())
            m.d.comb += [wr.addr.eq(self.wr_addr), wr.data.data.eq(self.wr_data),
                         wr.data.nz.eq(Cat(self.wr_data[i].as_value().any() for i in range(wpl))),
                         wr.en.eq(self.wr_en)]
            banks.append(rd)
        if sub_bits:
            bank_words = [banks[j].data.data[cand_sub[j]] for j in range(cols)]
            bank_nz = [banks[j].data.nz.bit_select(cand_sub[j], 1) for j in range(cols)]
        else:
            bank_words = [banks[j].data.data[0] for j in range(cols)]
            bank_nz = [banks[j].data.nz[0] for j in range(cols)]

        # The candidate's weights are all in the buffer (w_avail is registered once more, so a
        # word counted there was written before the cycle its address was read).
        w_avail = Signal(WEIGHT_INDEX_BITS)
        m.d.sync += w_avail.eq(self.w_avail)
        w_ok = cand_wbase + cpg <= w_avail
        m.d.comb += self.w_release.eq(Mux(L.ifm_stationary, 0, cand_kt_base))

        nonzero = Cat(cand_inb[j] & bank_nz[j] for j in range(cols)).any()
        consume = Signal()
        issue = Signal()
        null = Signal()
        first = Signal()
        last = Signal()
        last_slot = slot == cpg - 1
        with m.If(cand_valid):
            with m.If(~nonzero):
                with m.If(cand_last):
                    m.d.comb += [issue.eq(self.last_ok), null.eq(1), first.eq(~started),
                                 last.eq(1), consume.eq(self.last_ok)]
                with m.Else():
                    m.d.comb += consume.eq(1)
            with m.Else():
                last_op = cand_last & last_slot
                m.d.comb += [issue.eq((~last_op | self.last_ok) & w_ok),
                             first.eq(~started & (slot == 0)),
                             last.eq(last_op), consume.eq(issue & last_slot)]

        read_next = (~cand_valid | consume) & cur_valid & ~self.start
        load = nx_ready & (~cur_valid | (read_next & grp_last)) & ~self.start

        # Staged candidate bookkeeping.
        with m.If(issue):
            m.d.sync += started.eq(~last)
        with m.If(consume):
            m.d.sync += slot.eq(0)
        with m.Elif(issue):
            m.d.sync += slot.eq(slot + 1)
        with m.If(read_next):
            inb = Signal(cols)
            for j in range(cols):
                iy = cur[j].iy0 + kh
                ix = cur[j].ix0 + kw
                m.d.comb += [
                    inb[j].eq(cur[j].valid & (iy >= 0) & (iy < L.in_h) & (ix >= 0) & (ix < L.in_w)),
                    banks[j].addr.eq((cur[j].base + offset)[sub_bits:self.aw]),
                ]
            m.d.sync += [cand_valid.eq(1), cand_last.eq(grp_last), cand_info.eq(cur_info),
                         cand_wbase.eq(w_next), cand_kt_base.eq(w_kt_base), cand_inb.eq(inb)]
            if sub_bits:
                for j in range(cols):
                    m.d.sync += cand_sub[j].eq((cur[j].base + offset)[:sub_bits])
            # Next group: channel group innermost, then kernel column, then kernel row.
            with m.If(grp_last):
                m.d.sync += [cur_valid.eq(0), kh.eq(0), kw.eq(0), cg.eq(0), offset.eq(0),
                             kh_row.eq(0)]
            with m.Elif(grp_last_cg & grp_last_kw):
                m.d.sync += [cg.eq(0), kw.eq(0), kh.eq(kh + 1), kh_row.eq(kh_row + row_words),
                             offset.eq(kh_row + row_words)]
            with m.Elif(grp_last_cg):
                m.d.sync += [cg.eq(0), kw.eq(kw + 1), offset.eq(offset + 1)]
            with m.Else():
                m.d.sync += [cg.eq(cg + 1), offset.eq(offset + 1)]
        with m.Elif(consume):
            m.d.sync += cand_valid.eq(0)
        for j in range(cols):
            m.d.comb += banks[j].en.eq(read_next)
        # Auxiliary read of bank 0 (one word, one cycle later on aux_data) while the core is
        # idle: the max-pool pass reads the conv output back through it.
        aux_sub = Signal(range(max(wpl, 2)))
        with m.If(self.aux_en):
            m.d.comb += [banks[0].addr.eq(self.aux_addr[sub_bits:]), banks[0].en.eq(1)]
            if sub_bits:
                m.d.sync += aux_sub.eq(self.aux_addr[:sub_bits])
        m.d.comb += self.aux_data.eq(banks[0].data.data[aux_sub] if sub_bits
                                     else banks[0].data.data[0])

        w_after = Mux(read_next, w_next + cpg, w_next)
        with m.If(load):
            m.d.sync += [cur.eq(nx), cur_valid.eq(1), cur_info.eq(nx_info), nx_ready.eq(0)]
            with m.If(nx_w_zero):
                m.d.sync += [w_kt_base.eq(0), w_next.eq(0)]
            with m.Elif(nx_new_kt):
                m.d.sync += [w_kt_base.eq(w_after), w_next.eq(w_after)]
            with m.Else():
                m.d.sync += w_next.eq(w_kt_base)
        with m.Else():
            m.d.sync += w_next.eq(w_after)
        with m.If(self.start):
            m.d.sync += [cur_valid.eq(0), cand_valid.eq(0), slot.eq(0), started.eq(0),
                         kh.eq(0), kw.eq(0), cg.eq(0), offset.eq(0), kh_row.eq(0),
                         w_next.eq(0), w_kt_base.eq(0), cand_kt_base.eq(0)]

        # Weight address for the slot issued next cycle.
        with m.If(read_next):
            m.d.comb += self.w_rd_addr.eq(w_next)
        with m.Else():
            m.d.comb += self.w_rd_addr.eq(cand_wbase + slot + issue)   # truncated: the ring

        m.d.comb += [self.issue.eq(issue), self.null.eq(null), self.first.eq(first),
                     self.last.eq(last), self.tile_done.eq(issue & last),
                     self.tile_info.eq(cand_info)]

        # -- column issue stage and skew ----------------------------------------------------------
        use = issue & ~null
        for j in range(cols):
            x = Signal(ifm_layout(cfg), name=f"issue_x_{j}")
            word = bank_words[j]
            keep = use & cand_inb[j]
            if cfg.sparse:
                m.d.sync += x.eq(Mux(keep, word.as_value(), 0))
            else:
                m.d.sync += x[0].eq(Mux(keep, word[slot], 0))
            m.d.comb += self.x_out[j].eq(delayed(m, x, j, f"col{j}"))

        # -- status and counters ------------------------------------------------------------------
        m.d.comb += self.busy.eq(wk_active | nx_ready | cur_valid | cand_valid | (init != 0)
                                 | self.start)
        with m.If(self.start):
            m.d.sync += [self.groups_issued.eq(0), self.groups_skipped.eq(0),
                         self.slots_issued.eq(0)]
        with m.Else():
            with m.If(consume & nonzero):
                m.d.sync += self.groups_issued.eq(self.groups_issued + 1)
            with m.If(consume & ~nonzero):
                m.d.sync += self.groups_skipped.eq(self.groups_skipped + 1)
            with m.If(use):
                m.d.sync += self.slots_issued.eq(self.slots_issued + 1)
        return m
