"""The accelerator: control registers, DMA, buffer controller and the sparse core (SPEC section 4).

A run (CTRL.start) reads the memory image at IMAGE_BASE and runs its layers one after the other,
with no CPU in between:

1. header: 4 beats; magic, format version and the hardware fields are checked against this
   elaboration (BAD_MAGIC, BAD_VERSION, HW_MISMATCH);
2. per layer: the descriptor (4 beats) is checked for consistency (BAD_DESCRIPTOR), for the
   on-chip buffers (TOO_LARGE) and, every byte range it names, against the DMA window
   (OUT_OF_WINDOW), all before any transaction for the layer;
3. the parameter block goes to the bias/requant memory (one beat per output channel), the input
   activations to the IFM banks (one beat = one bank line per cycle);
4. the core runs while the weight loader streams the weight block into the weight ring (the core
   issues a group only when its words are in; the loader only overwrites words the core has
   released) and the output writer turns the core's output rows into the activation layout in
   DRAM: per pixel, the k tile's channels are contiguous, so each (pixel, k tile) of a finished
   tile is one short burst (double-buffered: one tile fills while the other is written);
5. with max-pool, the convolution output is read back into the IFM banks and pooled, one word
   per cycle, into the layer's output.

Errors end the run with STATUS.error and the code; nothing outside the window is touched (the
ranges are checked first, and the DMA engines check every command again). CTRL.abort stops the
run after the layer in progress (ABORTED).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from hw.config import FORMAT_VERSION, SenseConfig
from hw.core.core import Core
from hw.core.decoders import WEIGHT_INDEX_BITS, weight_addr_bits
from hw.layouts import (
    DIM_BITS,
    FLAG_IFM_STATIONARY,
    FLAG_POOL,
    FLAG_RELU,
    KIND_CONV,
    KIND_FC,
    image_header_layout,
    layer_descriptor_layout,
    param_layout,
    record_bytes,
    weight_word_layout,
)
from hw.soc.dma import (
    ADDR_BITS,
    BEAT_BYTES,
    DATA_BITS,
    Dma,
    axi_signature,
    window_check,
    window_end,
)
from hw.soc.registers import COUNTERS, MAGIC, ErrorCode, Registers, axi_lite_signature

__all__ = ["Accelerator", "output_lines_per_slot", "output_slot_lines", "whole_tile_writes"]

FLAGS_KNOWN = FLAG_RELU | FLAG_POOL | FLAG_IFM_STATIONARY


def output_lines_per_slot(config: SenseConfig) -> int:
    """16-byte lines one pixel's segment of one k tile may span in the output buffer: at most
    rows + M - 1 bytes (the last k tile also writes the channel padding) starting at any byte of
    a line."""
    return -(-(BEAT_BYTES - 1 + config.rows + config.group - 1) // BEAT_BYTES)


def output_slot_lines(config: SenseConfig) -> int:
    """Lines of each column's output bank per tile slot (two slots): half the column's share of
    the output buffer (ofm_kib), and at least one segment's worth."""
    share = config.ofm_kib * 1024 // (config.cols * BEAT_BYTES) // 2
    return max(output_lines_per_slot(config), share)


def whole_tile_writes(config: SenseConfig, out_channels: int, k_tiles: int,
                      ifm_stationary: bool) -> bool:
    """Whether the output writer sends a pixel tile's outputs as one contiguous command (the
    accelerator decides the same in RUN_START; host.perf and the compiler pass ask here)."""
    kpad = -(-out_channels // config.group) * config.group
    return ((ifm_stationary or k_tiles == 1) and kpad % BEAT_BYTES == 0
            and kpad // BEAT_BYTES <= output_slot_lines(config))


class Accelerator(wiring.Component):
    """Sense: ``s_axil`` (AXI4-Lite slave, docs/registers.md), ``m_axi`` (AXI4 master, 128-bit,
    to DRAM), ``irq`` (level, IRQ_STATUS.done & IRQ_ENABLE.done), ``busy`` (for an LED)."""

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "s_axil": Out(axi_lite_signature()),
            "m_axi": Out(axi_signature()),
            "irq": Out(1),
            "busy": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        M = cfg.group
        lg_m = M.bit_length() - 1
        m.submodules.regs = regs = Registers(cfg)
        m.submodules.dma = dma = Dma()
        m.submodules.core = core = Core(cfg)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.axil)
        wiring.connect(m, dma.m_axi, wiring.flipped(self.m_axi))
        m.d.comb += [self.irq.eq(regs.irq), dma.window_base.eq(regs.window_base),
                     dma.window_size.eq(regs.window_size)]

        image_base = Signal(ADDR_BITS)
        act_base = Signal(ADDR_BITS)
        hdr = Signal(image_header_layout())
        D = Signal(layer_descriptor_layout())
        layer = Signal(16)
        error_code = Signal(8)
        abort_pending = Signal()
        done_pulse = Signal()
        running = Signal()
        m.d.comb += [regs.busy.eq(running), regs.done_pulse.eq(done_pulse),
                     regs.error_code.eq(error_code), regs.layer.eq(layer),
                     self.busy.eq(running)]
        with m.If(regs.abort_req & running):
            m.d.sync += abort_pending.eq(1)

        # -- record capture (header, descriptor: four beats each) ------------------------------
        record = Signal(4 * DATA_BITS)
        beats = Signal(range(5))

        # -- derived layer quantities, computed in the CHECK states ----------------------------
        slots = cfg.cycles_per_group
        word_bytes = record_bytes(weight_word_layout(cfg), BEAT_BYTES)
        word_beats = word_bytes // BEAT_BYTES
        gk = Signal(16)                      # output channel groups
        kpad = Signal(20)                    # output channels padded to M
        pix = Signal(24)                     # out_h * out_w
        rs = Signal(8)                       # kernel_h * kernel_w
        hw_in = Signal(24)                   # in_h * in_w
        ohs = Signal(24)                     # (out_h - 1) * stride
        ows = Signal(24)
        kt_rows = Signal(24)                 # k_tiles * rows
        pt_cols = Signal(32)                 # p_tiles * cols
        groups = Signal(24)                  # kernel_h * kernel_w * in_groups
        ifm_words = Signal(40)
        out_words = Signal(40)               # conv output words (pixels * output groups)
        w_words = Signal(48)
        ifm_bytes = Signal(48)
        out_bytes = Signal(48)

        # Window checks: every range's start address is a register (set a state before it is
        # checked) and every verdict is registered before a state acts on it, so no carry chain
        # follows another in one cycle.
        win_end = window_end(m, regs.window_base, regs.window_size)
        starts = {name: Signal(ADDR_BITS + 1, name=f"{name}_start")
                  for name in ("weights", "params", "input", "output", "desc")}
        lengths = {"weights": D.weight_size, "params": D.param_size, "input": ifm_bytes,
                   "output": out_bytes, "desc": 64, "header": 64}
        starts["header"] = image_base
        verdict = {name: Signal(name=f"{name}_ok") for name in lengths}
        for name, length in lengths.items():
            m.d.sync += verdict[name].eq(
                window_check(m, starts[name], length, regs.window_base, win_end, name)[2])
        ok_w, ok_p, ok_i, ok_o = (verdict[n] for n in ("weights", "params", "input", "output"))
        ok_h, ok_d = verdict["header"], verdict["desc"]
        desc_addr = starts["desc"]

        in_span_h = D.in_h + 2 * D.pad
        in_span_w = D.in_w + 2 * D.pad
        pool = (D.flags & FLAG_POOL) != 0
        consistent = Cat(
            D.kind <= max(KIND_CONV, KIND_FC), (D.flags & ~FLAGS_KNOWN) == 0,
            D.in_channels != 0, D.in_groups == ((D.in_channels + M - 1) >> lg_m),
            D.in_groups < (1 << DIM_BITS), D.in_h != 0, D.in_h < (1 << DIM_BITS),
            D.in_w != 0, D.in_w < (1 << DIM_BITS), D.out_h != 0, D.out_h < (1 << DIM_BITS),
            D.out_w != 0, D.out_w < (1 << DIM_BITS),
            D.out_channels != 0, D.out_channels <= cfg.max_channels,
            D.kernel_h != 0, D.kernel_h < 16, D.kernel_w != 0, D.kernel_w < 16,
            D.stride != 0, D.stride < 16, D.pad < 16,
            ohs + D.kernel_h <= in_span_h, in_span_h < ohs + D.stride + D.kernel_h,
            ows + D.kernel_w <= in_span_w, in_span_w < ows + D.stride + D.kernel_w,
            kt_rows >= D.out_channels, kt_rows < D.out_channels + cfg.rows,
            pt_cols >= pix, pt_cols < pix + cfg.cols,
            D.weight_size == w_words * word_bytes,
            D.param_size == D.out_channels * 16,
            (D.weight_offset | D.param_offset | D.in_offset | D.out_offset)[:4] == 0,
            ~pool | ((D.pool_kernel != 0) & (D.pool_stride != 0)
                     & (D.pool_pad < D.pool_kernel)
                     & (D.pool_kernel <= D.out_h + 2 * D.pool_pad)
                     & (D.pool_kernel <= D.out_w + 2 * D.pool_pad)),
        ).all()
        fits = Cat(
            ifm_words <= cfg.ifm_bank_depth,
            groups * slots <= cfg.weight_depth,
            ((D.flags & FLAG_IFM_STATIONARY) == 0) | (w_words <= cfg.weight_depth),
            ~pool | (out_words <= cfg.ifm_bank_depth),
        ).all()

        # -- the loaders ----------------------------------------------------------------------
        rd_cmd = dma.rd_cmd
        rd_data = dma.rd_data
        beat_in = rd_data.valid & rd_data.ready
        count = Signal(40)                  # beats (or lines) left of the current block
        par_addr = Signal(range(cfg.max_channels))
        line_addr = Signal(range(max(cfg.ifm_bank_lines, 2)))
        pool_after_load = Signal()          # the IFM load in progress is the pool read-back

        m.d.comb += [
            core.par_wr_addr.eq(par_addr),
            core.par_wr_data.eq(rd_data.payload[:param_layout(cfg).size]),
            core.ifm_wr_addr.eq(line_addr),
            core.ifm_wr_data.eq(rd_data.payload),
        ]

        # Weight ring: words assembled from word_beats beats, written while there is room.
        w_n = Signal(WEIGHT_INDEX_BITS)     # words written this layer
        w_beat = Signal(range(max(word_beats, 2)))
        w_buf = Signal(max(1, DATA_BITS * (word_beats - 1)))
        w_loading = Signal()
        w_room = w_n < core.w_release + cfg.weight_depth
        word_last_beat = w_beat == word_beats - 1
        full_word = Cat(w_buf, rd_data.payload) if word_beats > 1 else rd_data.payload
        m.d.comb += [
            core.w_wr_addr.eq(w_n[:weight_addr_bits(cfg)]),
            core.w_wr_data.eq(full_word[:weight_word_layout(cfg).size]),
            core.w_avail.eq(w_n),
        ]

        # -- output writer: core rows -> the activation layout in DRAM -------------------------
        # Two modes. Segment mode: one DMA write per (pixel, k tile) of a finished tile. Whole
        # mode (all k tiles of a pixel tile arrive one after the other: the IFM-stationary order
        # or a single k tile, and Kpad a multiple of 16 that fits a slot): the pixel tile's
        # outputs are one contiguous range in DRAM, written as one command.
        slot_lines = output_slot_lines(cfg)
        out_banks = []
        for j in range(cfg.cols):
            mem = Memory(shape=DATA_BITS, depth=2 * slot_lines, init=[])
            m.submodules[f"obank{j}"] = mem
            out_banks.append((mem.write_port(granularity=8), mem.read_port(transparent_for=())))
        slot_info_layout = data.StructLayout({"tile": unsigned(2 * DIM_BITS),
                                              "k0": unsigned(17),
                                              "count": unsigned(cfg.cols.bit_length())})
        whole = Signal()
        slot_full = Signal(2)
        slot_info = [Signal(slot_info_layout, name=f"slot_info_{s}") for s in range(2)]
        wr_slot = Signal()
        row = core.ofm.payload
        m.d.comb += core.ofm.ready.eq(~slot_full.bit_select(wr_slot, 1))
        accept = core.ofm.valid & core.ofm.ready
        # Segment mode: byte lane of channel k of pixel p is (p * kpad + k) mod 16 (the output
        # region is 16-byte aligned); only the low four bits of the products matter. Whole mode:
        # pixel j's channels start a line, channel k is byte k.
        tile_lo = (row.tile[:4] * (cfg.cols * kpad)[:4] + row.k0[:4])[:4]
        d = (row.channel - row.k0)[:8]
        for j, (wp, _) in enumerate(out_banks):
            off = (tile_lo + j * kpad[:4])[:4]
            pos = Signal(range(slot_lines * 16), name=f"obyte_{j}")
            m.d.comb += [
                pos.eq(Mux(whole, row.channel, off + d)),
                wp.addr.eq(Mux(wr_slot, slot_lines, 0) + (pos >> 4)),
                wp.data.eq(Cat(*([row.data[j].as_unsigned()] * BEAT_BYTES))),
                wp.en.eq(Mux(accept, Const(1, 16) << pos[:4], 0)),
            ]
        tile_complete = row.last & (~whole | (row.k0 + cfg.rows >= D.out_channels))
        with m.If(accept & tile_complete):
            m.d.sync += [slot_full.bit_select(wr_slot, 1).eq(1), wr_slot.eq(~wr_slot)]
            for s in range(2):
                with m.If(wr_slot == s):
                    m.d.sync += [slot_info[s].tile.eq(row.tile), slot_info[s].k0.eq(row.k0),
                                 slot_info[s].count.eq(row.count)]

        rd_slot = Signal()
        info = Signal(slot_info_layout)
        m.d.comb += info.eq(Mux(rd_slot, slot_info[1], slot_info[0]))
        seg_addr = Signal(ADDR_BITS)
        seg_len = Signal(32)
        seg_keep = Signal(20)               # real channels from the segment's first: min(rows, K - k0)
        seg_j = Signal(range(cfg.cols + 1))
        seg_lines = Signal(range(slot_lines + 1))
        seg_line = Signal(range(slot_lines + 1))
        seg_off = seg_addr[:4]
        out_valid = Signal()
        out_line = Signal(range(slot_lines + 1))
        out_sel = Signal(range(max(cfg.cols, 2)))
        wr_cmd, wr_data = dma.wr_cmd, dma.wr_data
        out_writing = Signal()
        pool_beat = Signal(DATA_BITS)
        pool_beat_valid = Signal()
        last_k_tile = info.k0 + cfg.rows >= D.out_channels

        with m.FSM(name="writer"):
            with m.State("IDLE"):
                with m.If(slot_full.bit_select(rd_slot, 1)):
                    base = starts["output"] + info.tile * (cfg.cols * kpad)
                    with m.If(whole):
                        m.d.sync += [seg_addr.eq(base), seg_len.eq(info.count * kpad),
                                     seg_keep.eq(D.out_channels)]
                    with m.Else():
                        m.d.sync += [
                            seg_addr.eq(base + info.k0),
                            seg_len.eq(Mux(last_k_tile, kpad - info.k0, cfg.rows)),
                            seg_keep.eq(Mux(last_k_tile, D.out_channels - info.k0, cfg.rows)),
                        ]
                    m.d.sync += seg_j.eq(0)
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [out_writing.eq(1), wr_cmd.valid.eq(1),
                             wr_cmd.payload.addr.eq(seg_addr), wr_cmd.payload.length.eq(seg_len)]
                with m.If(wr_cmd.ready):
                    m.d.sync += [seg_line.eq(0),
                                 seg_lines.eq(Mux(whole, kpad >> 4, (seg_off + seg_len + 15) >> 4))]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += out_writing.eq(1)
                advance = ~out_valid | wr_data.ready
                issue = advance & (seg_line != seg_lines)
                more_pixels = seg_j + 1 != info.count
                for j, (_, rp) in enumerate(out_banks):
                    m.d.comb += [rp.addr.eq(Mux(rd_slot, slot_lines, 0) + seg_line),
                                 rp.en.eq(issue)]
                with m.If(issue):
                    m.d.sync += [seg_line.eq(seg_line + 1), out_line.eq(seg_line),
                                 out_sel.eq(seg_j)]
                    with m.If(whole & (seg_line + 1 == seg_lines) & more_pixels):
                        # Whole mode: the next pixel's lines follow in the same command.
                        m.d.sync += [seg_line.eq(0), seg_j.eq(seg_j + 1)]
                with m.If(advance):
                    m.d.sync += out_valid.eq(issue)
                with m.If(~out_valid & (seg_line == seg_lines)):
                    # Command done: the next pixel's segment, or the slot is free.
                    m.d.sync += [seg_j.eq(seg_j + 1), seg_addr.eq(seg_addr + kpad)]
                    with m.If(whole | ~more_pixels):
                        m.d.sync += [slot_full.bit_select(rd_slot, 1).eq(0), rd_slot.eq(~rd_slot)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "CMD"
        line_data = Signal(DATA_BITS)
        with m.Switch(out_sel):
            for j, (_, rp) in enumerate(out_banks):
                with m.Case(j):
                    m.d.comb += line_data.eq(rp.data)
        masked = Signal(DATA_BITS)
        for lane in range(BEAT_BYTES):
            keep = (out_line * 16 + lane) < seg_off + seg_keep
            m.d.comb += masked[8 * lane:8 * lane + 8].eq(Mux(keep, line_data[8 * lane:8 * lane + 8],
                                                            0))
        with m.If(out_writing):
            m.d.comb += [wr_data.valid.eq(out_valid), wr_data.payload.eq(masked)]
        with m.Else():
            m.d.comb += [wr_data.valid.eq(pool_beat_valid), wr_data.payload.eq(pool_beat)]
        writer_idle = ~slot_full.any() & ~out_writing

        # -- max-pool pass: conv output (in the IFM banks) -> pooled words -> DRAM --------------
        pk, ps, pp = D.pool_kernel, D.pool_stride, D.pool_pad
        poh = Signal(16)
        pow_ = Signal(16)
        cnt_h = Signal(24)
        cnt_w = Signal(24)
        p_y = Signal(16)
        p_x = Signal(16)
        p_cg = Signal(16)
        p_wy = Signal(8)
        p_wx = Signal(8)
        p_y0 = Signal(signed(20))
        p_x0 = Signal(signed(20))
        p_run = Signal()
        pool_words = Signal(40)
        pool_emitted = Signal(40)
        pb_n = Signal(range(cfg.ifm_words_per_line + 1))
        pool_advance = ~pool_beat_valid
        # Stage 0: window position
        y = p_y0 + p_wy
        x = p_x0 + p_wx
        s0 = data.StructLayout({"valid": 1, "inb": 1, "first": 1, "last": 1})
        st1 = Signal(s0)
        idx1 = Signal(24)
        cg1 = Signal(16)
        st2 = Signal(s0)
        st3 = Signal(s0)
        acc = Signal(data.ArrayLayout(signed(8), M))
        with m.If(pool_advance):
            m.d.sync += [
                st1.valid.eq(p_run), st1.inb.eq((y >= 0) & (y < D.out_h) & (x >= 0)
                                                & (x < D.out_w)),
                st1.first.eq((p_wy == 0) & (p_wx == 0)),
                st1.last.eq((p_wy + 1 == pk) & (p_wx + 1 == pk)),
                idx1.eq(y[:12] * D.out_w + x[:12]), cg1.eq(p_cg),
                st2.eq(st1), st3.eq(st2),
            ]
        m.d.comb += [core.ifm_rd_addr.eq(idx1 * gk + cg1),
                     core.ifm_rd_en.eq(pool_advance & st1.valid & st1.inb)]
        # (stage 2 holds the read; its data is on ifm_rd_data in stage 3)
        rd_word = core.ifm_rd_data
        with m.If(pool_advance & st2.valid):
            for lane in range(M):
                v = rd_word[lane]
                with m.If(st2.first):
                    m.d.sync += acc[lane].eq(Mux(st2.inb, v, -128))
                with m.Elif(st2.inb & (v > acc[lane])):
                    m.d.sync += acc[lane].eq(v)
        # Stage 3: a finished window's word goes into the beat being assembled.
        emit = pool_advance & st3.valid & st3.last
        with m.If(emit):
            for i in range(cfg.ifm_words_per_line):
                with m.If(pb_n == i):
                    m.d.sync += pool_beat[i * 8 * M:(i + 1) * 8 * M].eq(acc.as_value())
            m.d.sync += [pb_n.eq(pb_n + 1), pool_emitted.eq(pool_emitted + 1)]
            with m.If((pb_n + 1 == cfg.ifm_words_per_line) | (pool_emitted + 1 == pool_words)):
                m.d.sync += pool_beat_valid.eq(1)
        with m.If(pool_beat_valid & ~out_writing & wr_data.ready):
            m.d.sync += [pool_beat_valid.eq(0), pb_n.eq(0), pool_beat.eq(0)]
        # Window walker: (py, px, cg) outer, (wy, wx) inner.
        with m.If(p_run & pool_advance):
            with m.If(p_wx + 1 != pk):
                m.d.sync += p_wx.eq(p_wx + 1)
            with m.Elif(p_wy + 1 != pk):
                m.d.sync += [p_wx.eq(0), p_wy.eq(p_wy + 1)]
            with m.Else():
                m.d.sync += [p_wx.eq(0), p_wy.eq(0)]
                with m.If(p_cg + 1 != gk):
                    m.d.sync += p_cg.eq(p_cg + 1)
                with m.Else():
                    m.d.sync += p_cg.eq(0)
                    with m.If(p_x + 1 != pow_):
                        m.d.sync += [p_x.eq(p_x + 1), p_x0.eq(p_x0 + ps)]
                    with m.Else():
                        m.d.sync += [p_x.eq(0), p_x0.eq(-pp)]
                        with m.If(p_y + 1 != poh):
                            m.d.sync += [p_y.eq(p_y + 1), p_y0.eq(p_y0 + ps)]
                        with m.Else():
                            m.d.sync += p_run.eq(0)

        # -- counters -------------------------------------------------------------------------
        totals = {name: Signal(64, name=f"total_{name}") for name in COUNTERS}
        read_base = Signal(64)
        write_base = Signal(64)
        with m.If(running):
            m.d.sync += totals["cycles"].eq(totals["cycles"] + 1)
            with m.If(core.busy):
                m.d.sync += totals["busy_cycles"].eq(totals["busy_cycles"] + 1)
        m.d.comb += [
            regs.cycles.eq(totals["cycles"]), regs.busy_cycles.eq(totals["busy_cycles"]),
            regs.macs.eq(totals["macs"]), regs.groups_issued.eq(totals["groups_issued"]),
            regs.groups_skipped.eq(totals["groups_skipped"]),
            regs.dram_read_bytes.eq(dma.bytes_read - read_base),
            regs.dram_write_bytes.eq(dma.bytes_written - write_base),
        ]

        # -- the sequencer ----------------------------------------------------------------------
        def fail(code):
            m.d.sync += error_code.eq(code)
            m.next = "FAIL"

        def read(addr, length, nbeats, next_state):
            m.d.comb += [rd_cmd.valid.eq(1), rd_cmd.payload.addr.eq(addr),
                         rd_cmd.payload.length.eq(length)]
            with m.If(rd_cmd.ready):
                m.d.sync += count.eq(nbeats)
                m.next = next_state

        def capture(target, next_state):
            """Shift the four beats of a 64-byte record in, then latch it into `target`."""
            m.d.comb += rd_data.ready.eq(1)
            with m.If(beat_in):
                m.d.sync += [record.eq(Cat(record[DATA_BITS:], rd_data.payload)),
                             beats.eq(beats + 1)]
            with m.If(beats == 4):
                m.d.sync += target.eq(record[:len(target.as_value())])
                m.next = next_state

        with m.FSM(name="sequencer"):
            with m.State("IDLE"):
                with m.If(regs.start):
                    m.d.sync += [
                        running.eq(1), layer.eq(0), error_code.eq(0), abort_pending.eq(0),
                        image_base.eq(regs.image_base), act_base.eq(regs.act_base),
                        read_base.eq(dma.bytes_read), write_base.eq(dma.bytes_written),
                        *(t.eq(0) for t in totals.values()),
                    ]
                    m.next = "BASES"
            with m.State("BASES"):                  # the header's window verdict settles
                m.next = "BASES_CHECK"
            with m.State("BASES_CHECK"):
                with m.If((image_base[:6] != 0) | (act_base[:6] != 0)):
                    fail(ErrorCode.MISALIGNED)
                with m.Elif(~ok_h):
                    fail(ErrorCode.OUT_OF_WINDOW)
                with m.Else():
                    read(image_base, 64, 4, "HEADER")
                    m.d.sync += beats.eq(0)
            with m.State("HEADER"):
                capture(hdr, "HEADER_CHECK")
            with m.State("HEADER_CHECK"):
                hw_ok = Cat(
                    hdr.rows == cfg.rows, hdr.cols == cfg.cols, hdr.group == cfg.group,
                    (hdr.flags & 1) == int(cfg.sparse), hdr.ifm_kib == cfg.ifm_kib,
                    hdr.weight_kib == cfg.weight_kib, hdr.ofm_kib == cfg.ofm_kib,
                    hdr.max_channels_log2 == cfg.max_channels.bit_length() - 1).all()
                with m.If(hdr.magic != MAGIC):
                    fail(ErrorCode.BAD_MAGIC)
                with m.Elif((hdr.version != FORMAT_VERSION) | (hdr.header_size != 64)):
                    fail(ErrorCode.BAD_VERSION)
                with m.Elif(~hw_ok):
                    fail(ErrorCode.HW_MISMATCH)
                with m.Elif(hdr.layer_count == 0):
                    fail(ErrorCode.BAD_DESCRIPTOR)
                with m.Else():
                    m.next = "DESC"
            with m.State("DESC"):                   # the descriptor's address
                m.d.sync += desc_addr.eq(image_base + hdr.table_offset + (layer << 6))
                m.next = "DESC_WAIT"
            with m.State("DESC_WAIT"):              # its window verdict
                m.next = "DESC_CHECK"
            with m.State("DESC_CHECK"):
                with m.If(~ok_d):
                    fail(ErrorCode.OUT_OF_WINDOW)
                with m.Else():
                    read(desc_addr, 64, 4, "DESC_DATA")
                    m.d.sync += beats.eq(0)
            with m.State("DESC_DATA"):
                capture(D, "CHECK_A")
            with m.State("CHECK_A"):
                m.d.sync += [
                    gk.eq((D.out_channels + M - 1) >> lg_m),
                    pix.eq(D.out_h * D.out_w), rs.eq(D.kernel_h * D.kernel_w),
                    hw_in.eq(D.in_h * D.in_w), ohs.eq((D.out_h - 1) * D.stride),
                    ows.eq((D.out_w - 1) * D.stride), kt_rows.eq(D.k_tiles * cfg.rows),
                ]
                m.next = "CHECK_B"
            with m.State("CHECK_B"):
                m.d.sync += [
                    kpad.eq(gk << lg_m), groups.eq(rs * D.in_groups),
                    ifm_words.eq(hw_in * D.in_groups), pt_cols.eq(D.p_tiles * cfg.cols),
                    out_words.eq(pix * gk),
                ]
                m.next = "CHECK_C"
            with m.State("CHECK_C"):
                m.d.sync += [
                    w_words.eq(D.k_tiles * groups * slots),
                    ifm_bytes.eq(ifm_words << lg_m), out_bytes.eq(out_words << lg_m),
                    starts["weights"].eq(image_base + D.weight_offset),
                    starts["params"].eq(image_base + D.param_offset),
                    starts["input"].eq(act_base + D.in_offset),
                    starts["output"].eq(act_base + D.out_offset),
                ]
                m.next = "CHECK_D"
            with m.State("CHECK_D"):                # the window verdicts of the four ranges
                m.next = "CHECK_E"
            with m.State("CHECK_E"):
                with m.If(~consistent):
                    fail(ErrorCode.BAD_DESCRIPTOR)
                with m.Elif(~fits):
                    fail(ErrorCode.TOO_LARGE)
                with m.Elif(~(ok_w & ok_p & ok_i & ok_o)):
                    fail(ErrorCode.OUT_OF_WINDOW)
                with m.Else():
                    m.next = "PARAMS"
            with m.State("PARAMS"):
                read(starts["params"], D.param_size, D.out_channels, "PARAMS_DATA")
                m.d.sync += par_addr.eq(0)
            with m.State("PARAMS_DATA"):
                m.d.comb += [rd_data.ready.eq(1), core.par_wr_en.eq(beat_in)]
                with m.If(beat_in):
                    m.d.sync += [par_addr.eq(par_addr + 1), count.eq(count - 1)]
                with m.If(count == 0):
                    m.next = "INPUT"
            with m.State("INPUT"):
                read(starts["input"], ifm_bytes, (ifm_bytes + 15) >> 4, "LOAD")
                m.d.sync += [line_addr.eq(0), pool_after_load.eq(0)]
            with m.State("LOAD"):
                m.d.comb += [rd_data.ready.eq(1), core.ifm_wr_en.eq(beat_in)]
                with m.If(beat_in):
                    m.d.sync += [line_addr.eq(line_addr + 1), count.eq(count - 1)]
                with m.If(count == 0):
                    with m.If(pool_after_load):
                        m.d.sync += [cnt_h.eq(pk), cnt_w.eq(pk), poh.eq(0), pow_.eq(0)]
                        m.next = "POOL_SIZE"
                    with m.Else():
                        m.next = "RUN_START"
            with m.State("RUN_START"):
                m.d.comb += [
                    core.start.eq(1),
                    core.layer.in_groups.eq(D.in_groups), core.layer.in_h.eq(D.in_h),
                    core.layer.in_w.eq(D.in_w), core.layer.out_h.eq(D.out_h),
                    core.layer.out_w.eq(D.out_w), core.layer.out_channels.eq(D.out_channels),
                    core.layer.kernel_h.eq(D.kernel_h), core.layer.kernel_w.eq(D.kernel_w),
                    core.layer.stride.eq(D.stride), core.layer.pad.eq(D.pad),
                    core.layer.relu.eq((D.flags & FLAG_RELU) != 0),
                    core.layer.ifm_stationary.eq((D.flags & FLAG_IFM_STATIONARY) != 0),
                ]
                m.d.sync += [w_n.eq(0), w_beat.eq(0),
                             whole.eq((((D.flags & FLAG_IFM_STATIONARY) != 0) | (D.k_tiles == 1))
                                      & (kpad[:4] == 0) & ((kpad >> 4) <= slot_lines))]
                read(starts["weights"], D.weight_size, D.weight_size >> 4, "RUN")
            with m.State("RUN"):
                m.d.comb += [w_loading.eq(1),
                             rd_data.ready.eq(~word_last_beat | w_room),
                             core.w_wr_en.eq(beat_in & word_last_beat)]
                with m.If(beat_in):
                    m.d.sync += count.eq(count - 1)
                    with m.If(word_last_beat):
                        m.d.sync += [w_beat.eq(0), w_n.eq(w_n + 1)]
                    with m.Else():
                        m.d.sync += w_beat.eq(w_beat + 1)
                        if word_beats > 1:
                            m.d.sync += w_buf.eq(Cat(w_buf[DATA_BITS:], rd_data.payload)
                                                 if word_beats > 2 else rd_data.payload)
                with m.If(core.done & (count == 0) & writer_idle & ~dma.busy):
                    with m.If(pool):
                        m.next = "POOL_LOAD"
                    with m.Else():
                        m.next = "LAYER_END"
            with m.State("POOL_LOAD"):
                read(starts["output"], out_bytes, (out_bytes + 15) >> 4, "LOAD")
                m.d.sync += [line_addr.eq(0), pool_after_load.eq(1)]
            with m.State("POOL_SIZE"):
                # Pooled size by counting windows: floor((n + 2 pad - kernel) / stride) + 1.
                with m.If(cnt_h <= D.out_h + 2 * pp):
                    m.d.sync += [cnt_h.eq(cnt_h + ps), poh.eq(poh + 1)]
                with m.If(cnt_w <= D.out_w + 2 * pp):
                    m.d.sync += [cnt_w.eq(cnt_w + ps), pow_.eq(pow_ + 1)]
                with m.If((cnt_h > D.out_h + 2 * pp) & (cnt_w > D.out_w + 2 * pp)):
                    m.d.sync += pool_words.eq(poh * pow_ * gk)
                    m.next = "POOL_CMD"
            with m.State("POOL_CMD"):
                m.d.comb += [wr_cmd.valid.eq(1),
                             wr_cmd.payload.addr.eq(starts["output"]),
                             wr_cmd.payload.length.eq(pool_words << lg_m)]
                with m.If(wr_cmd.ready):
                    m.d.sync += [p_run.eq(1), p_y.eq(0), p_x.eq(0), p_cg.eq(0), p_wy.eq(0),
                                 p_wx.eq(0), p_y0.eq(-pp), p_x0.eq(-pp), pool_emitted.eq(0),
                                 pb_n.eq(0), pool_beat.eq(0)]
                    m.next = "POOL"
            with m.State("POOL"):
                with m.If((pool_emitted == pool_words) & ~pool_beat_valid & ~dma.busy):
                    m.next = "LAYER_END"
            with m.State("LAYER_END"):
                m.d.sync += [
                    totals["macs"].eq(totals["macs"] + core.macs),
                    totals["groups_issued"].eq(totals["groups_issued"] + core.groups_issued),
                    totals["groups_skipped"].eq(totals["groups_skipped"] + core.groups_skipped),
                ]
                with m.If(dma.error):
                    fail(ErrorCode.AXI_ERROR)
                with m.Elif(abort_pending):
                    fail(ErrorCode.ABORTED)
                with m.Elif(layer + 1 == hdr.layer_count):
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += layer.eq(layer + 1)
                    m.next = "DESC"
            with m.State("DONE"):
                m.d.comb += [done_pulse.eq(1), dma.clear.eq(1)]
                m.d.sync += running.eq(0)
                m.next = "IDLE"
            with m.State("FAIL"):
                # Nothing new is issued; wait for transactions in flight, then report.
                with m.If(~dma.busy):
                    m.d.comb += [done_pulse.eq(1), dma.clear.eq(1)]
                    m.d.sync += running.eq(0)
                    m.next = "IDLE"
        return m
