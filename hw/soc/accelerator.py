"""The accelerator: control registers, DMA, buffer controller and the sparse core (SPEC section 4).

A run (CTRL.start) reads the memory image at IMAGE_BASE and runs its layers one after the other,
with no CPU in between:

1. header: 4 beats; magic, format version and the hardware fields are checked against this
   elaboration (BAD_MAGIC, BAD_VERSION, HW_MISMATCH);
2. per layer: the descriptor (8 beats) is checked for consistency (BAD_DESCRIPTOR), for what
   this gateware runs (UNSUPPORTED: the whole-network kinds other than ADD, and tiling, checked
   first), for the
   on-chip buffers (TOO_LARGE) and, every byte range it names, against the DMA window
   (OUT_OF_WINDOW), all before any transaction for the layer;
3. the parameter block goes to the bias/requant memory (one beat per output channel), the input
   activations to the IFM banks (one beat = one bank line per cycle; with the PAIR_LOAD hint,
   where the layer allows it, in blocks of B / 2 pixels on both read ports: `_pair_load`);
4. the core runs while the weight loader streams the weight block into the weight ring (the core
   issues a group only when its words are in; the loader only overwrites words the core has
   released) and the output writer turns the core's output rows into the activation layout in
   DRAM: per pixel, the k tile's channels are contiguous, so each (pixel, k tile) of a finished
   tile is one short burst (double-buffered: one tile fills while the other is written);
5. with max-pool, the convolution output is read back into the IFM banks and pooled, one word
   per cycle, into the layer's output;
6. a residual ADD runs instead of 3-5, in chunks of up to 4 KiB: the first input's chunk into
   the add unit's buffer, then the second input's chunk streamed through the add unit
   (`hw.soc.add_unit`), which writes the sums, a beat per cycle; a CONCAT is only checked (its
   producers wrote its tensor, each into its channel range);
7. a conv with FUSE_ADD does the add after it in its output path: once its weights are in, each
   writer command's range of the residual (`input2_start` on) is read and the add unit, in
   stream mode, adds it to the writer's beats on their way to DRAM; the ADD (FUSE_ADD too) then
   only has its descriptor checked.

Errors end the run with STATUS.error and the code; nothing outside the window is touched (the
ranges are checked first, and the DMA engines check every command again). CTRL.abort stops the
run after the layer in progress (ABORTED).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hw.config import BEAT_BYTES, BLOCK_ALIGN, FORMAT_VERSION, LANE_BITS, SenseConfig
from hw.core.core import Core
from hw.core.ifm_store import ifm_geom_layout, pair_share
from hw.layouts import (
    DESCRIPTOR_BYTES,
    LayerFlags,
    LayerHints,
    LayerKind,
    flag_set,
    image_header_layout,
    layer_descriptor_layout,
    param_layout,
    psum_row_bytes,
    record_bytes,
    weight_word_layout,
)
from hw.regmap import COUNTERS, MAGIC, ErrorCode
from hw.soc.dma import (
    ADDR_BITS,
    DATA_BITS,
    Dma,
    axi_read_signature,
    axi_signature,
    gather_layout,
    times_step,
    window_check,
    window_end,
)
from hw.soc.add_unit import CHUNK_BEATS, AddUnit
from hw.soc.layer_check import CheckStep, LayerCheck
from hw.soc.output_writer import OutputWriter
from hw.soc.pool import DIVISORS, PoolUnit
from hw.soc.psum import PsumReader, PsumWriter, ceil_div_const
from hw.soc.registers import Registers, axi_lite_signature
from hw.soc.weight_loader import WeightLoader

__all__ = ["Accelerator"]

#: Bytes of the image header and of one layer descriptor (each four beats).
HEADER_BYTES = record_bytes(image_header_layout())
HEADER_BEATS = HEADER_BYTES // BEAT_BYTES
DESC_BEATS = DESCRIPTOR_BYTES // BEAT_BYTES
RECORD_BEATS = max(HEADER_BEATS, DESC_BEATS)     # the shift register records are read into


def _take_band(pcur, pband) -> list:
    """The pool unit's band (`pcur`) set to the sequencer's (`pband`)."""
    return [pcur.py.eq(pband.py), pcur.rows.eq(pband.rows), pcur.pad_top.eq(pband.pad_top),
            pcur.last.eq(pband.last)]


class Accelerator(wiring.Component):
    """Sense: ``s_axil`` (AXI4-Lite slave, docs/registers.md), ``m_axi`` (AXI4 master, 128-bit,
    to DRAM), ``irq`` (level, IRQ_STATUS.done & IRQ_ENABLE.done), ``busy`` (for an LED).

    Blocks: the register file, the DMA engines, the core, and around the core the load side
    (this component's sequencer loads headers, descriptors, parameters and inputs; `WeightLoader`
    streams the weights), the checks (`LayerCheck`) and the store side (`OutputWriter`,
    `PoolUnit`), which share the DMA's write channel: the writer while it is writing, else the
    pool pass."""

    def __init__(self, config: SenseConfig):
        self._config = config
        ports = {
            "s_axil": Out(axi_lite_signature()),
            "m_axi": Out(axi_signature()),
            "irq": Out(1),
            "busy": Out(1),
        }
        if config.weight_port:
            ports["m_axi_w"] = Out(axi_signature() if config.write_port
                                   else axi_read_signature())
        super().__init__(ports)

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        b = SimpleNamespace()
        m.submodules.regs = b.regs = Registers(cfg)
        m.submodules.dma = b.dma = Dma(weight_port=cfg.weight_port, write_port=cfg.write_port)
        m.submodules.core = b.core = Core(cfg)
        m.submodules.check = b.check = LayerCheck(cfg)
        m.submodules.weights = b.weights = WeightLoader(cfg)
        m.submodules.writer = b.writer = OutputWriter(cfg)
        m.submodules.pool = b.pool = PoolUnit(cfg)
        m.submodules.add = b.add = AddUnit()
        # (the write port: a fused add's side 1 through its own add unit to the second writer)
        b.dual = cfg.write_port
        if b.dual:
            m.submodules.add2 = b.add2 = AddUnit(chunks=False)
        m.submodules.psum_rd = b.psum_rd = PsumReader(cfg)
        m.submodules.psum_wr = b.psum_wr = PsumWriter(cfg)
        wiring.connect(m, wiring.flipped(self.s_axil), b.regs.axil)
        wiring.connect(m, b.dma.m_axi, wiring.flipped(self.m_axi))
        if cfg.weight_port:
            wiring.connect(m, b.dma.m_axi_w, wiring.flipped(self.m_axi_w))
        wiring.connect(m, b.core.ofm, b.writer.rows)
        wiring.connect(m, b.core.psum_out, b.psum_wr.row)
        wiring.connect(m, b.psum_rd.row, b.core.psum_in)
        m.d.comb += [self.irq.eq(b.regs.irq), b.dma.window_base.eq(b.regs.window_base),
                     b.dma.window_size.eq(b.regs.window_size)]
        b.win_end = window_end(m, b.regs.window_base, b.regs.window_size)
        self._state(m, b)
        self._gather(m, b)
        self._wire_store_side(m, b)
        self._wire_load_side(m, b)
        self._pair_load(m, b)
        self._kept_input(m, b)
        self._counters(m, b)
        self._sequencer(m, b)
        self._follow(m, b)
        return m

    def _gather(self, m, b):
        """An input gather's walk (`hw.soc.dma.ReadGather`, descriptor ``in_step`` /
        ``in_pitch``): a piece is one pixel's channel groups, every ``in_step``-th pixel of a
        row, ``in_w`` of them; the next row ``in_pitch`` beats on. A joined conv's
        (``in_split``): the piece is the second input's part of the pixel, after ``in_split``
        beats of the first input, which its bands read in order from ``in_offset`` on (the
        band at row 0 restarts it). Registered: the descriptor settles long before a load."""
        D, g = b.D, b.dma.g
        split = D.in_split << LANE_BITS
        piece = (D.in_groups << (self._config.group.bit_length() - 1)) - split
        with m.If(b.pair):          # a pair load's even blocks (`_pair_load`)
            m.d.sync += [getattr(g, f).eq(getattr(b.pair_g, f))
                         for f in ("piece", "per_row", "pitch", "step", "split")]
        with m.Else():
            m.d.sync += [g.piece.eq(piece), g.per_row.eq(D.in_w),
                         g.pitch.eq(D.in_pitch << LANE_BITS),
                         g.step.eq(times_step(piece, D.in_step)), g.split.eq(split),
                         g.a_base.eq(b.check.input_start)]
        m.d.comb += g.restart.eq(b.band.y == 0)

    def _pair_load(self, m, b):
        """A pair load (LayerHints.PAIR_LOAD, where the layer allows it: `host.perf.pair_eligible`
        is the same rule): a conv band's input, or a pool band's map, placed at stride 1 with
        V = W, of whole-beat pixels from a beat boundary, loaded in blocks of P = B / 2 pixels,
        the even ones on the read channel (a gather: a block, then the next but one), the odd
        ones on the weight port once its weights are in (`pq`; hw.core.ifm_store writes each
        into its own half of the banks). `pair_a` (the read channel's bytes; the weight port's
        are the rest) is registered from the band's rows, settled long before the load (the
        store's set-up)."""
        cfg, D, check = self._config, b.D, b.check
        if not (cfg.weight_port and cfg.ifm_banks >= 2):
            return
        lg_p = (cfg.ifm_banks // 2).bit_length() - 1
        lg_wpl = cfg.ifm_words_per_line.bit_length() - 1
        lg_m = cfg.group.bit_length() - 1
        geom = b.core.ifm_geom
        hinted = (D.hints.as_value() & LayerHints.PAIR_LOAD.value) != 0
        whole = geom.in_groups[:lg_wpl] == 0 if lg_wpl else Const(1)
        addr = Mux(b.pool_after_load, b.pband.in_addr, b.band.in_addr)
        conv = ((D.kind == LayerKind.CONV) & (D.stride == 1) & (D.out_w <= D.in_w)
                & ~check.gathered & ~check.joined & ~check.fused & ~check.blocked
                & check.weights_fit & ~b.wsplit)
        m.d.comb += b.pair.eq(hinted & whole & (addr[:LANE_BITS] == 0)
                              & (b.pool_after_load | conv))
        pb = Signal(24, name="pair_pixel_bytes")
        n = Signal(32, name="pair_pixels")
        na = Signal(32, name="pair_a_pixels")
        rows = Mux(b.pool_after_load, b.pband.rows, b.band.rows)
        m.d.sync += [pb.eq(geom.in_groups << lg_m), n.eq(rows * geom.in_w),
                     na.eq(pair_share(n, cfg.ifm_banks // 2)),
                     b.pair_a.eq(na * pb),
                     b.pair_g.piece.eq(pb << lg_p), b.pair_g.per_row.eq(1),
                     b.pair_g.pitch.eq(pb << (lg_p + 1)), b.pair_g.step.eq(0),
                     b.pair_g.split.eq(0)]

    def _state(self, m, b):
        """The run's registers: bases, header, current descriptor, layer, error."""
        # (a pair load's, `_pair_load`)
        b.pair = Signal(name="pair_load")
        b.pq = SimpleNamespace(pending=Signal(name="pq_pending"),
                               addr=Signal(ADDR_BITS + 1, name="pq_addr"),
                               length=Signal(48, name="pq_length"))
        b.pair_g = Signal(gather_layout(), name="pair_g")
        b.pair_a = Signal(48, name="pair_a_bytes")
        b.image_base = Signal(ADDR_BITS)
        b.act_base = Signal(ADDR_BITS)
        b.hdr = Signal(image_header_layout())
        b.D = Signal(layer_descriptor_layout())
        b.layer = Signal(16)
        b.error_code = Signal(8)
        b.abort_pending = Signal()
        b.done_pulse = Signal()
        b.running = Signal()
        b.desc_addr = Signal(ADDR_BITS + 1)
        b.count = Signal(40)                  # beats (or lines) left of the current block
        b.record = Signal(RECORD_BEATS * DATA_BITS)
        b.beats = Signal(range(RECORD_BEATS + 1))
        b.add_offset = Signal(48)             # ADD: bytes of the tensor done
        b.add_bytes = Signal(range(CHUNK_BEATS * BEAT_BYTES + 1))   # ADD: the chunk's bytes
        b.add_line = Signal(range(CHUNK_BEATS + 1))
        # The band of a tiled layer in progress (one band: the whole layer): its first output
        # row, output rows, the input rows it loads and the padding rows above them, its input
        # and output addresses; `first`: the layer's first band (parameters and weights load).
        b.band = SimpleNamespace(
            y=Signal(16, name="band_y"), out_rows=Signal(16, name="band_out_rows"),
            rows=Signal(16, name="band_rows_in"), pad_top=Signal(8, name="band_pad_top"),
            y0=Signal(signed(20), name="band_y0"), y_end=Signal(signed(20), name="band_y_end"),
            row_bytes=Signal(32, name="band_row_bytes"), out_row=Signal(32, name="band_out_row"),
            in_addr=Signal(ADDR_BITS + 1, name="band_in_addr"),
            in_bytes=Signal(48, name="band_in_bytes"),
            out_addr=Signal(ADDR_BITS + 1, name="band_out_addr"), first=Signal(name="band_first"),
            first_px=Signal(24, name="band_first_px"),
            # (stacked images without separator rows: the band's first output row in its image)
            yl=Signal(16, name="band_yl"))
        # Band prefetch: the IFM store half the core reads (the other one is loaded with the
        # next band while `pf`), and the output address of the band in the core.
        b.half, b.pf = Signal(name="ifm_half"), Signal(name="prefetching")
        # Load following (the weight port): a band's input loads while its core runs, each
        # tile waiting for its rows (hw.core.ifm_decoder); `follow` until the load is in.
        b.follow = Signal(name="load_following")
        b.wr_base = Signal(ADDR_BITS + 1, name="writer_base")
        # What the IFM store holds after its last complete load (one piece: a conv's only band
        # in half 0, or a pooling layer's only band; the range and the store's geometry), for
        # a layer flagged INPUT_KEPT (`match`: the load it would do is that one, registered).
        b.kept = SimpleNamespace(valid=Signal(name="kept_valid"),
                                 addr=Signal(ADDR_BITS + 1, name="kept_addr"),
                                 bytes=Signal(48, name="kept_bytes"),
                                 geom=Signal(ifm_geom_layout(), name="kept_geom"),
                                 match=Signal(name="kept_match"))
        # A fused add (check.fused): the residual's read command for the writer's command in
        # flight (same length, `res_delta` = input2_start - output_start further on).
        b.prev_fused = Signal(name="prev_fused")      # the layer before did an add (FUSE_ADD)
        b.res = SimpleNamespace(pending=Signal(name="res_pending"),
                                addr=Signal(ADDR_BITS, name="res_addr"),
                                length=Signal(32, name="res_length"),
                                delta=Signal(ADDR_BITS, name="res_delta"))
        # (the write port: side 1's residual, for the second writer's command in flight)
        b.res2 = SimpleNamespace(pending=Signal(name="res2_pending"),
                                 addr=Signal(ADDR_BITS, name="res2_addr"),
                                 length=Signal(32, name="res2_length"))
        # The fused add's residual reads and add units have nothing in flight.
        b.adds_idle = Signal(name="adds_idle")
        # The weight read (`weight_port`: on its own port, queued at the band's start or, for a
        # block after the first, at its RUN_START): the command waiting for the reader, the
        # beats not yet in, and `fresh` (from the ring's clear to the core's start, the words the
        # core released are those of no layer: none).
        # Split (a layer in one band, without blocks or a fused add: its read channel is free
        # while the core runs): the weight port reads the even k tiles, one command each
        # (`tiles` left, `stride` bytes apart), and the read channel the odd ones (`b.wb`, from
        # RUN on); `left` counts both streams' beats.
        b.wq = SimpleNamespace(pending=Signal(name="wcmd_pending"),
                               addr=Signal(ADDR_BITS + 1, name="wcmd_addr"),
                               length=Signal(32, name="wcmd_length"),
                               left=Signal(32, name="weight_beats_left"),
                               fresh=Signal(name="weights_fresh"),
                               tiles=Signal(16, name="wcmd_tiles"),
                               stride=Signal(32, name="wcmd_stride"))
        b.wb = SimpleNamespace(pending=Signal(name="wbcmd_pending"),
                               addr=Signal(ADDR_BITS + 1, name="wbcmd_addr"),
                               tiles=Signal(16, name="wbcmd_tiles"))
        b.wsplit = Signal(name="weights_split")
        # Input-channel blocks (`check.blocked`; without blocks one block of every group): the
        # block's first channel group, its weights' address, the layer's weight bytes not yet
        # read in this band, whether its partial sums are being read; the band's pixel tiles
        # (ceil(out_w / cols): `band_cw`) and partial-sum rows.
        b.blk = SimpleNamespace(
            g0=Signal(16, name="block_g0"), w_addr=Signal(ADDR_BITS + 1, name="block_w_addr"),
            w_left=Signal(32, name="block_w_left"), ps_rd=Signal(name="psum_reading"),
            pix=Signal(32, name="band_pixels"), cw=Signal(16, name="band_cw"),
            tiles=Signal(24, name="band_tiles"), rows=Signal(40, name="band_psum_rows"))
        # The pool band in progress (the pool pass runs in bands of `pool_band_rows` pooled
        # rows; 0: one band): its first pooled row, its first map row (signed, padding rows
        # above the map count), the map rows it loads, the padding rows above them, whether it
        # reaches the map's bottom, its input address and bytes.
        b.pband = SimpleNamespace(
            py=Signal(16, name="pband_py"), ys=Signal(signed(24), name="pband_ys"),
            span=Signal(24, name="pband_span"), y_end=Signal(signed(26), name="pband_y_end"),
            rows=Signal(16, name="pband_rows"), pad_top=Signal(8, name="pband_pad_top"),
            last=Signal(name="pband_last"), row_bytes=Signal(32, name="pband_row_bytes"),
            in_addr=Signal(ADDR_BITS + 1, name="pband_in_addr"),
            in_bytes=Signal(48, name="pband_in_bytes"))
        # The pool band the pool unit works on (`pband` while no band is prefetched; pool band
        # prefetch sets up and loads the next band in `pband` while the unit pools this one),
        # and whether the unit has finished it (`seen`: its one-cycle `done`, kept).
        b.pcur = SimpleNamespace(
            py=Signal(16, name="pcur_py"), rows=Signal(16, name="pcur_rows"),
            pad_top=Signal(8, name="pcur_pad_top"), last=Signal(name="pcur_last"),
            seen=Signal(name="pool_done_seen"))
        regs = b.regs
        m.d.comb += [regs.busy.eq(b.running), regs.done_pulse.eq(b.done_pulse),
                     regs.error_code.eq(b.error_code), regs.layer.eq(b.layer),
                     self.busy.eq(b.running)]
        with m.If(regs.abort_req & b.running):
            m.d.sync += b.abort_pending.eq(1)
        # The header's and the descriptor's window verdicts, registered like the layer's.
        b.ok_h, b.ok_d = Signal(name="header_ok"), Signal(name="desc_ok")
        for ok, start, size, name in ((b.ok_h, b.image_base, HEADER_BYTES, "header"),
                                      (b.ok_d, b.desc_addr, DESCRIPTOR_BYTES, "desc")):
            m.d.sync += ok.eq(window_check(m, start, size, regs.window_base, b.win_end,
                                           name)[2])
        check = b.check
        m.d.comb += [check.desc.eq(b.D), check.image_base.eq(b.image_base),
                     check.act_base.eq(b.act_base), check.window_base.eq(regs.window_base),
                     check.window_end.eq(b.win_end)]

    def _wire_store_side(self, m, b):
        """Writer, pool pass and add unit share the DMA write channel (one at a time: the pool
        pass starts when the writer is idle, an ADD layer runs alone); the pool reads the core's
        IFM banks."""
        D, check, writer, pool, dma, core = b.D, b.check, b.writer, b.pool, b.dma, b.core
        add, psum = b.add, b.psum_wr
        m.d.comb += [
            writer.ifm_stationary.eq(flag_set(D.flags, LayerFlags.IFM_STATIONARY)),
            writer.k_tiles.eq(D.k_tiles), writer.kpad.eq(check.kpad),
            writer.out_channels.eq(D.out_channels), writer.base.eq(b.wr_base),
            writer.stride.eq(check.out_stride),
            writer.sep_slot.eq(D.sep_slot), writer.sep_valid.eq(D.sep_valid),
            writer.first_px.eq(b.band.first_px),
            # the map the pool pass pools (a conv's output, or a pooling layer's input): this
            # pool band's rows of it, with the window's padding rows that border the band
            pool.map_h.eq(b.pcur.rows),
            pool.map_w.eq(check.map_w), pool.gk.eq(check.map_groups),
            pool.row0.eq(b.pcur.py),
            *(getattr(pool.window, f).eq(getattr(check.window, f))
              for f in ("kh", "kw", "sh", "sw", "pl", "pr")),
            pool.window.pt.eq(b.pcur.pad_top),
            pool.window.pb.eq(Mux(b.pcur.last, check.window.pb, 0)),
            pool.ceil.eq(flag_set(D.flags, LayerFlags.CEIL)),
            pool.average.eq(check.is_average), pool.one_divisor.eq(check.is_gap),
            pool.count_pad.eq(flag_set(D.flags, LayerFlags.COUNT_PAD)),
            # (a conv's ReLU is applied before its fused max-pool)
            pool.relu.eq(check.is_pool & flag_set(D.flags, LayerFlags.RELU)),
            pool.base.eq(check.output_start), pool.dma_busy.eq(dma.busy),
            core.ifm_rd_pixel.eq(pool.rd_pixel), core.ifm_rd_line.eq(pool.rd_line),
            core.ifm_rd_en.eq(pool.rd_en),
            pool.rd_data.eq(core.ifm_rd_data),
            # Commands: never two valid at once (a block's partial sums leave instead of its
            # output rows).
            dma.wr_cmd.valid.eq(writer.cmd.valid | pool.cmd.valid | add.cmd.valid
                                | psum.cmd.valid),
            writer.cmd.ready.eq(dma.wr_cmd.ready), pool.cmd.ready.eq(dma.wr_cmd.ready),
            add.cmd.ready.eq(dma.wr_cmd.ready), psum.cmd.ready.eq(dma.wr_cmd.ready),
            # (a fused add: the writer's beats pass the add unit, paired with the residual's)
            writer.data.ready.eq(Mux(check.fused, add.a.ready, dma.wr_data.ready)),
            add.stream_a.eq(check.fused), add.a.valid.eq(check.fused & writer.data.valid),
            add.a.payload.eq(writer.data.payload),
            psum.data.ready.eq(~writer.writing & ~check.is_add & dma.wr_data.ready),
            pool.data.ready.eq(~writer.writing & ~check.is_add & ~psum.writing
                               & dma.wr_data.ready),
            add.data.ready.eq((check.is_add | check.fused) & dma.wr_data.ready),
            psum.base.eq(check.psum_start),
        ]
        with m.If(writer.cmd.valid):
            m.d.comb += dma.wr_cmd.payload.eq(writer.cmd.payload)
        with m.Elif(add.cmd.valid):
            m.d.comb += dma.wr_cmd.payload.eq(add.cmd.payload)
        with m.Elif(psum.cmd.valid):
            m.d.comb += dma.wr_cmd.payload.eq(psum.cmd.payload)
        with m.Else():
            m.d.comb += dma.wr_cmd.payload.eq(pool.cmd.payload)
        with m.If(writer.writing & ~check.fused):
            m.d.comb += [dma.wr_data.valid.eq(writer.data.valid),
                         dma.wr_data.payload.eq(writer.data.payload)]
        with m.Elif(check.is_add | check.fused):
            m.d.comb += [dma.wr_data.valid.eq(add.data.valid),
                         dma.wr_data.payload.eq(add.data.payload)]
        with m.Elif(psum.writing):
            m.d.comb += [dma.wr_data.valid.eq(psum.data.valid),
                         dma.wr_data.payload.eq(psum.data.payload)]
        with m.Else():
            m.d.comb += [dma.wr_data.valid.eq(pool.data.valid),
                         dma.wr_data.payload.eq(pool.data.payload)]
        res, res2 = b.res, b.res2
        idle = ~res.pending & ~add.busy
        if b.dual:
            # The writer's second side on the DMA's second writer (m_axi_w); in a fused add
            # its beats pass the second add unit, paired with side 1's residual (read on the
            # weight port, `_weight_port`), while side 0's pass the first (the read channel).
            add2 = b.add2
            wiring.connect(m, writer.cmd2, dma.wr2_cmd)
            m.d.comb += [
                writer.split.eq(1),
                writer.data2.ready.eq(Mux(check.fused, add2.a.ready, dma.wr2_data.ready)),
                add2.a.valid.eq(check.fused & writer.data2.valid),
                add2.a.payload.eq(writer.data2.payload),
                add2.data.ready.eq(check.fused & dma.wr2_data.ready),
                dma.wr2_data.valid.eq(Mux(check.fused, add2.data.valid, writer.data2.valid)),
                dma.wr2_data.payload.eq(Mux(check.fused, add2.data.payload,
                                            writer.data2.payload)),
            ]
            with m.If(check.fused & writer.cmd2.valid & dma.wr2_cmd.ready):
                m.d.sync += [res2.pending.eq(1),
                             res2.addr.eq(writer.cmd2.payload.addr + res.delta),
                             res2.length.eq(writer.cmd2.payload.length)]
            idle = idle & ~res2.pending & ~add2.busy
        m.d.comb += b.adds_idle.eq(idle)
        # The pool unit's band follows the sequencer's while no pool band is prefetched.
        pcur, pband = b.pcur, b.pband
        with m.If(~b.pf):
            m.d.sync += _take_band(pcur, pband)
        with m.If(pool.start):
            m.d.sync += pcur.seen.eq(0)
        with m.Elif(pool.done):
            m.d.sync += pcur.seen.eq(1)
        # Each writer command of a fused conv: the residual's range, read in RUN.
        with m.If(check.fused & writer.cmd.valid & dma.wr_cmd.ready):
            m.d.sync += [res.pending.eq(1), res.addr.eq(writer.cmd.payload.addr + res.delta),
                         res.length.eq(writer.cmd.payload.length)]

    def _wire_load_side(self, m, b):
        """DMA read beats into the parameter memory, the IFM banks and the weight loader."""
        cfg, core, weights, rd_data = self._config, b.core, b.weights, b.dma.rd_data
        b.beat_in = rd_data.valid & rd_data.ready
        b.par_addr = Signal(range(max(cfg.max_channels, DIVISORS)))
        b.pool_after_load = Signal()          # the IFM load in progress is the pool read-back
        D, geom = b.D, core.ifm_geom
        # The IFM store's geometry: the layer's input, or (pool read-back) its conv output.
        m.d.comb += [
            geom.in_h.eq(Mux(b.pool_after_load, b.pband.rows, b.band.rows)),
            geom.in_w.eq(Mux(b.pool_after_load, b.check.map_w, D.in_w)),
            geom.in_groups.eq(Mux(b.pool_after_load, b.check.map_groups, D.in_groups)),
            geom.stride.eq(Mux(b.pool_after_load, 1, D.stride)),
            geom.pad.eq(Mux(b.pool_after_load, 0, D.pad)),
            geom.pad_top.eq(Mux(b.pool_after_load, 0, b.band.pad_top)),
            geom.out_w.eq(Mux(b.pool_after_load, b.check.map_w, D.out_w)),
            core.ifm_beat.payload.eq(rd_data.payload),
            core.ifm_read_half.eq(b.half), core.ifm_load_half.eq(b.half ^ b.pf),
            core.ifm_hold.eq(b.pf),
        ]
        m.d.comb += [
            core.par_wr_addr.eq(b.par_addr),
            core.par_wr_data.eq(rd_data.payload[:param_layout(cfg).size]),
            # (an AVGPOOL's or GAP's parameter block: its divisors, in the same entry layout)
            b.pool.div_wr_addr.eq(b.par_addr), b.pool.div_wr_en.eq(core.par_wr_en),
            b.pool.div_wr_data.mult.eq(core.par_wr_data.mult),
            b.pool.div_wr_data.shift.eq(core.par_wr_data.shift),
            b.psum_rd.beat.payload.eq(rd_data.payload),
            core.w_wr_addr.eq(weights.wr_addr), core.w_wr_data.eq(weights.wr_data),
            core.w_wr_en.eq(weights.wr_en), core.w_avail.eq(weights.avail),
        ]
        if cfg.weight_port:
            self._weight_port(m, b)
        else:
            m.d.comb += [weights.payload.eq(rd_data.payload), weights.release.eq(core.w_release)]
            # (the weights are read in RUN, the block's first read: `count` is their beats)
            b.weights_in = b.count == 0

    def _weight_port(self, m, b):
        """The weight reads on their own port: the queued command, the beats into the weight
        loader whenever it takes them, and the beats still to come (`weights_in`: none)."""
        wq, w_cmd, w_data, weights = b.wq, b.dma.w_cmd, b.dma.w_data, b.weights
        b.weights_in_port = (wq.left == 0) & ~wq.pending & ~b.wb.pending
        # A fused conv in bands: its residual reads take the weight port once the weights are
        # in (all of them fit the buffer), in any state: the read channel stays free for band
        # prefetch. (In one band the residual stays on the read channel from the core's start:
        # waiting for the weights would stall the writer.) With the write port the weight
        # port carries side 1's residual (the second add unit's) and the read channel side
        # 0's, in one band or in bands (then without band prefetch).
        exec_ = b.D.graph.exec
        b.banded = Signal(name="in_bands")
        m.d.comb += b.banded.eq((exec_.band_rows != 0) & (exec_.band_rows < b.D.out_h))
        residual = Signal(name="residual_on_weight_port")
        res, add = (b.res2, b.add2) if b.dual else (b.res, b.add)
        m.d.comb += residual.eq(b.check.fused & (1 if b.dual else b.banded)
                                & (wq.left == 0) & ~wq.pending)
        pq, ifm2 = b.pq, b.core.ifm_beat2
        with m.If(residual):
            m.d.comb += [w_cmd.valid.eq(res.pending), w_cmd.payload.addr.eq(res.addr),
                         w_cmd.payload.length.eq(res.length),
                         w_data.ready.eq(add.b.ready), add.b.valid.eq(w_data.valid)]
            with m.If(res.pending & w_cmd.ready):
                m.d.sync += res.pending.eq(0)
        with m.Elif(b.weights_in_port):
            # every weight beat is in: a pair load's odd blocks (`_pair_load`) into the store
            m.d.comb += [w_cmd.valid.eq(pq.pending), w_cmd.payload.addr.eq(pq.addr),
                         w_cmd.payload.length.eq(pq.length), b.dma.w_gather.eq(1),
                         b.dma.w_g.eq(b.pair_g),
                         w_data.ready.eq(ifm2.ready), ifm2.valid.eq(w_data.valid)]
            with m.If(pq.pending & w_cmd.ready):
                m.d.sync += pq.pending.eq(0)
        with m.Else():
            m.d.comb += [w_cmd.valid.eq(wq.pending), w_cmd.payload.addr.eq(wq.addr),
                         w_cmd.payload.length.eq(wq.length), w_data.ready.eq(weights.ready),
                         weights.accept.eq(w_data.valid & w_data.ready)]
        m.d.comb += [weights.payload.eq(w_data.payload), ifm2.payload.eq(w_data.payload),
                     weights.payload_b.eq(b.dma.rd_data.payload),
                     weights.kt_words.eq(b.check.kt_words),
                     weights.release.eq(Mux(wq.fresh, 0, b.core.w_release))]
        with m.If(wq.pending & w_cmd.ready):
            self._next_tile(m, wq, wq)
        m.d.sync += wq.left.eq(wq.left - weights.accept - weights.accept_b)
        with m.If(b.core.start):
            m.d.sync += wq.fresh.eq(0)
        b.weights_in = b.weights_in_port

    @staticmethod
    def _next_tile(m, q, wq):
        """A weight command taken: the stream's next k tile, or none left."""
        with m.If(q.tiles > 1):
            m.d.sync += [q.tiles.eq(q.tiles - 1), q.addr.eq(q.addr + wq.stride)]
        with m.Else():
            m.d.sync += q.pending.eq(0)

    def _queue_weights(self, m, b, fresh=True, split=None):
        """Queue the current block's weight read on the weight port and clear the ring (`fresh`
        False: the core starts in this cycle). `split`: the k tiles alternate between the weight
        port and the read channel (a whole layer's weights, one band)."""
        wq, wb, blk = b.wq, b.wb, self._block(b)
        m.d.comb += b.weights.clear.eq(1)
        m.d.sync += [wq.pending.eq(1), wq.addr.eq(b.blk.w_addr),
                     wq.left.eq(blk.w_bytes >> LANE_BITS)]
        if fresh:
            m.d.sync += wq.fresh.eq(1)
        if split is None:
            m.d.sync += [wq.length.eq(blk.w_bytes), wq.tiles.eq(1), wb.pending.eq(0),
                         b.wsplit.eq(0)]
            return
        kt_bytes = b.check.kt_words * record_bytes(weight_word_layout(self._config), BEAT_BYTES)
        k_tiles = b.D.k_tiles
        m.d.comb += b.weights.split.eq(split)
        m.d.sync += [b.wsplit.eq(split), wq.length.eq(Mux(split, kt_bytes, blk.w_bytes)),
                     wq.tiles.eq(Mux(split, (k_tiles + 1) >> 1, 1)), wq.stride.eq(kt_bytes << 1),
                     wb.pending.eq(split), wb.addr.eq(b.blk.w_addr + kt_bytes),
                     wb.tiles.eq(k_tiles >> 1)]

    def _kept_input(self, m, b):
        """The record of the store's contents (`b.kept`) and whether the load the sequencer is
        about to issue (a conv band's input, or a pool band's map) would load exactly that."""
        kept, geom = b.kept, b.core.ifm_geom
        addr = Mux(b.pool_after_load, b.pband.in_addr, b.band.in_addr)
        nbytes = Mux(b.pool_after_load, b.pband.in_bytes, b.band.in_bytes)
        m.d.sync += kept.match.eq(kept.valid & (kept.addr == addr) & (kept.bytes == nbytes)
                                  & (kept.geom.as_value() == geom.as_value()))
        b.reuse = flag_set(b.D.flags, LayerFlags.INPUT_KEPT) & kept.match & ~b.pf
        # A complete load: a conv's input in one band (not prefetched, half 0), or a pooling
        # layer's map in one band, is what the store holds; a conv's output read back for its
        # max-pool is nobody's input.
        whole = Mux(b.pool_after_load,
                    b.check.is_pool & (b.pband.py == 0) & b.pband.last,
                    (b.band.y == 0) & (b.band.out_rows == b.D.out_h) & ~b.pf & ~b.half)
        # (a gathered input is no plain range: never kept)
        b.record_load = [kept.valid.eq(whole & ~b.check.gathered), kept.addr.eq(addr),
                         kept.bytes.eq(nbytes),
                         kept.geom.eq(geom)]

    def _counters(self, m, b):
        """The performance counters: cycles and busy cycles counted here, the core's counters
        added at each layer's end, DRAM bytes as the DMA's counts (cleared at the run's
        start)."""
        regs, core, dma = b.regs, b.core, b.dma
        b.totals = {name: Signal(64, name=f"total_{name}") for name in COUNTERS}
        with m.If(b.running):
            m.d.sync += b.totals["cycles"].eq(b.totals["cycles"] + 1)
            with m.If(core.busy):
                m.d.sync += b.totals["busy_cycles"].eq(b.totals["busy_cycles"] + 1)
        for name in ("cycles", "busy_cycles", "macs", "groups_issued", "groups_skipped"):
            m.d.comb += getattr(regs, name).eq(b.totals[name])
        m.d.comb += [regs.dram_read_bytes.eq(dma.bytes_read),
                     regs.dram_write_bytes.eq(dma.bytes_written)]

    # -- the sequencer --------------------------------------------------------------------------

    def _sequencer(self, m, b):
        def fail(code):
            m.d.sync += b.error_code.eq(code)
            m.next = "FAIL"

        def read(addr, length, nbeats, next_state):
            rd_cmd = b.dma.rd_cmd
            m.d.comb += [rd_cmd.valid.eq(1), rd_cmd.payload.addr.eq(addr),
                         rd_cmd.payload.length.eq(length)]
            with m.If(rd_cmd.ready):
                m.d.sync += b.count.eq(nbeats)
                m.next = next_state

        def capture(target, nbeats, next_state):
            """Shift the `nbeats` beats of a record (header or descriptor) in, then latch it
            into `target` (the beats arrive at the top of the shift register)."""
            m.d.comb += b.dma.rd_data.ready.eq(1)
            with m.If(b.beat_in):
                m.d.sync += [b.record.eq(Cat(b.record[DATA_BITS:], b.dma.rd_data.payload)),
                             b.beats.eq(b.beats + 1)]
            with m.If(b.beats == nbeats):
                first = (RECORD_BEATS - nbeats) * DATA_BITS
                m.d.sync += target.eq(b.record[first:first + len(target.as_value())])
                m.next = next_state

        b.fail, b.read, b.capture = fail, read, capture
        with m.FSM(name="sequencer"):
            self._run_states(m, b)
            self._descriptor_states(m, b)
            self._band_states(m, b)
            self._load_states(m, b)
            self._compute_states(m, b)
            self._add_states(m, b)
            self._end_states(m, b)

    def _run_states(self, m, b):
        """A run's start: bases, header, header check."""
        cfg, regs, hdr = self._config, b.regs, b.hdr
        with m.State("IDLE"):
            with m.If(regs.start):
                m.d.comb += b.dma.count_clear.eq(1)
                m.d.sync += [
                    b.running.eq(1), b.layer.eq(0), b.error_code.eq(0), b.abort_pending.eq(0),
                    b.image_base.eq(regs.image_base), b.act_base.eq(regs.act_base),
                    b.kept.valid.eq(0), b.prev_fused.eq(0), b.follow.eq(0),
                    *(t.eq(0) for t in b.totals.values()),
                ]
                m.next = "BASES"
        with m.State("BASES"):                  # the header's window verdict settles
            m.next = "BASES_CHECK"
        with m.State("BASES_CHECK"):
            align = BLOCK_ALIGN.bit_length() - 1
            with m.If((b.image_base[:align] != 0) | (b.act_base[:align] != 0)):
                b.fail(ErrorCode.MISALIGNED)
            with m.Elif(~b.ok_h):
                b.fail(ErrorCode.OUT_OF_WINDOW)
            with m.Else():
                b.read(b.image_base, HEADER_BYTES, HEADER_BEATS, "HEADER")
                m.d.sync += b.beats.eq(0)
        with m.State("HEADER"):
            b.capture(hdr, HEADER_BEATS, "HEADER_CHECK")
        with m.State("HEADER_CHECK"):
            hw_ok = Cat(
                hdr.rows == cfg.rows, hdr.cols == cfg.cols, hdr.group == cfg.group,
                (hdr.flags & 1) == int(cfg.sparse), hdr.ifm_kib == cfg.ifm_kib,
                hdr.weight_kib == cfg.weight_kib, hdr.ofm_kib == cfg.ofm_kib,
                hdr.max_channels_log2 == cfg.max_channels.bit_length() - 1).all()
            with m.If(hdr.magic != MAGIC):
                b.fail(ErrorCode.BAD_MAGIC)
            with m.Elif((hdr.version != FORMAT_VERSION) | (hdr.header_size != HEADER_BYTES)):
                b.fail(ErrorCode.BAD_VERSION)
            with m.Elif(~hw_ok):
                b.fail(ErrorCode.HW_MISMATCH)
            with m.Elif(hdr.layer_count == 0):
                b.fail(ErrorCode.BAD_DESCRIPTOR)
            with m.Else():
                m.next = "DESC"

    def _descriptor_states(self, m, b):
        """Per layer: fetch the descriptor, check it (three steps, then the verdicts)."""
        check = b.check
        with m.State("DESC"):                   # the descriptor's address
            m.d.sync += b.desc_addr.eq(b.image_base + b.hdr.table_offset
                                       + (b.layer << (DESCRIPTOR_BYTES.bit_length() - 1)))
            m.next = "DESC_WAIT"
        with m.State("DESC_WAIT"):              # its window verdict
            m.next = "DESC_CHECK"
        with m.State("DESC_CHECK"):
            with m.If(~b.ok_d):
                b.fail(ErrorCode.OUT_OF_WINDOW)
            with m.Else():
                b.read(b.desc_addr, DESCRIPTOR_BYTES, DESC_BEATS, "DESC_DATA")
                m.d.sync += b.beats.eq(0)
        with m.State("DESC_DATA"):
            b.capture(b.D, DESC_BEATS, "CHECK_A")
        for state, step, after in (("CHECK_A", CheckStep.A, "CHECK_B"),
                                   ("CHECK_B", CheckStep.B, "CHECK_C"),
                                   ("CHECK_C", CheckStep.C, "CHECK_D")):
            with m.State(state):
                m.d.comb += check.step.eq(step)
                m.next = after
        with m.State("CHECK_D"):                # the window verdicts of the four ranges
            m.next = "CHECK_E"
        with m.State("CHECK_E"):
            m.d.sync += b.prev_fused.eq(check.fused)
            with m.If(~check.supported):
                b.fail(ErrorCode.UNSUPPORTED)
            with m.Elif(~check.consistent):
                b.fail(ErrorCode.BAD_DESCRIPTOR)
            with m.Elif(~check.fits):
                b.fail(ErrorCode.TOO_LARGE)
            with m.Elif(~check.in_window):
                b.fail(ErrorCode.OUT_OF_WINDOW)
            with m.Elif(check.fused_away & ~b.prev_fused):   # nobody did it
                b.fail(ErrorCode.BAD_DESCRIPTOR)
            with m.Elif(check.fused_away):        # its producer wrote the sum
                m.next = "LAYER_END"
            with m.Elif(check.is_add):
                m.d.sync += b.add_offset.eq(0)
                m.next = "ADD_CHUNK"
            with m.Elif(check.is_concat):         # its producers wrote its tensor
                m.next = "LAYER_END"
            with m.Elif(check.is_average):        # the divisors, then the pool pass
                m.next = "PARAMS"
            with m.Elif(check.is_pool):           # the pool pass on the layer's input
                m.next = "POOL_LOAD"
            with m.Else():
                m.d.sync += [b.band.y.eq(0), b.band.yl.eq(0), b.band.first.eq(1),
                             b.half.eq(0), b.pf.eq(0), *self._first_block(b)]
                m.next = "BAND_A"

    @staticmethod
    def _next_band_yl(b):
        """The next band's first output row within its image (stacked images: the descriptor's
        image_step is band_rows mod image_out_rows, so one wrap at most)."""
        links = b.D.graph.links
        yl = b.band.yl + links.image_step
        return [b.band.yl.eq(Mux(yl >= links.image_out_rows, yl - links.image_out_rows, yl))]

    @staticmethod
    def _first_block(b):
        """A band's first input-channel block (the only one without blocks)."""
        blk = b.blk
        return [blk.g0.eq(0), blk.w_addr.eq(b.check.weights_start),
                blk.w_left.eq(b.D.weight_size)]

    def _block(self, b):
        """The current block's last group (exclusive), whether it is the band's last, its
        weight bytes, and its partial-sum modes."""
        D, check, blk = b.D, b.check, b.blk
        end = blk.g0 + check.block_groups
        last = end >= D.in_groups
        return SimpleNamespace(
            end=Mux(last, D.in_groups, end), last=last,
            w_bytes=Mux(blk.w_left < check.block_bytes, blk.w_left, check.block_bytes),
            psum_in=check.blocked & (blk.g0 != 0), psum_out=check.blocked & ~last,
            psum_bytes=blk.rows * psum_row_bytes(self._config))

    def _band_states(self, m, b):
        """A conv / FC layer runs in bands of `graph.exec.band_rows` output rows (0: one band):
        each band's input rows (its halo included; padding rows are not loaded) are placed in
        the IFM store, then the core computes the band's output rows. Three cycles of band
        arithmetic (a multiplier deep each), the store set up in the third; the first band then
        loads the parameters, every band its input."""
        D, check, band = b.D, b.check, b.band
        lg_m = self._config.group.bit_length() - 1
        cols = self._config.cols
        rows_per = Mux(D.graph.exec.band_rows == 0, D.out_h, D.graph.exec.band_rows)
        ys = Signal(20, name="band_ys")
        with m.State("BAND_A"):
            left = D.out_h - band.y
            if self._config.weight_port:
                # the band's weights, read while its parameters and input load (a prefetched
                # band never reads any: its layer's weights fit and stay)
                with m.If(band.first | ~check.weights_fit | check.blocked):
                    # (split where hinted: one band, no blocks, no fused add, two k tiles or
                    # more; host.perf.split_eligible)
                    hint = (D.hints.as_value() & LayerHints.SPLIT_WEIGHTS.value) != 0
                    self._queue_weights(m, b, split=hint & ~check.blocked & ~check.fused
                                        & (rows_per >= D.out_h) & (D.k_tiles > 1))
            m.d.sync += [band.out_rows.eq(Mux(left < rows_per, left, rows_per)),
                         ys.eq(band.y * D.stride),
                         band.row_bytes.eq((D.in_w * D.in_groups) << lg_m),
                         band.out_row.eq(D.out_w * check.out_stride),
                         b.blk.cw.eq(ceil_div_const(D.out_w, cols, 16))]
            m.next = "BAND_B"
        with m.State("BAND_B"):
            y0 = ys.as_signed() - D.pad
            m.d.sync += [band.y0.eq(y0),
                         band.y_end.eq(y0 + (band.out_rows - 1) * D.stride + D.kernel_h),
                         band.out_addr.eq(check.output_start + band.y * band.out_row),
                         band.first_px.eq(band.y * D.out_w),
                         b.blk.pix.eq(band.out_rows * Mux(check.seg, b.blk.cw, D.out_w))]
            m.next = "BAND_C"
        with m.State("BAND_C"):
            y_start = Mux(band.y0 < 0, 0, band.y0)
            y_end = Mux(band.y_end > D.in_h, D.in_h, band.y_end)
            rows = y_end - y_start
            m.d.sync += [band.rows.eq(rows), band.pad_top.eq(y_start - band.y0),
                         # (an input gather: a view row is in_pitch beats of DRAM; a
                         # joined conv: the band's first pixel of its second input, the
                         # gather's; ReadGather goes on with the first input's)
                         band.in_addr.eq(Mux(check.joined, check.input2_start,
                                             check.input_start) + y_start
                                         * Mux(check.gathered, D.in_pitch << LANE_BITS,
                                               band.row_bytes)),
                         band.in_bytes.eq(rows * band.row_bytes),
                         # the band's pixel tiles: by output row (seg) or cols pixels each
                         b.blk.tiles.eq(Mux(check.seg, b.blk.pix,
                                            ceil_div_const(b.blk.pix, cols, 24)))]
            m.next = "BAND_SETUP"
        with m.State("BAND_SETUP"):
            m.d.comb += b.core.ifm_setup.eq(1)
            m.d.sync += b.blk.rows.eq(b.blk.tiles * D.out_channels)
            with m.If(band.first):
                m.next = "PARAMS"
            with m.Else():
                m.next = "INPUT"

    def _follows(self, b):
        """Whether the band's input load runs beside its core (`follow`): with the weight port,
        when the read channel has nothing else to carry until the load is in (no prefetched
        band, no pool read-back, no input-channel blocks and their partial sums, no split
        weights, no residual on it: a fused add in one band). `host.perf.load_follows` is the
        model's rule."""
        if not self._config.weight_port:
            return Const(0)
        check = b.check
        return (~b.pf & ~b.pool_after_load & ~check.blocked & ~b.wsplit
                & (~check.fused | (0 if b.dual else b.banded)))

    def _follow(self, m, b):
        """While `follow`: the read channel's beats go to the IFM store (whatever the
        sequencer's state), and when the last is in, the store's record (INPUT_KEPT)."""
        core, rd_data = b.core, b.dma.rd_data
        with m.If(b.follow):
            m.d.comb += [rd_data.ready.eq(core.ifm_beat.ready),
                         core.ifm_beat.valid.eq(rd_data.valid)]
            with m.If(b.beat_in & (b.count != 0)):
                m.d.sync += b.count.eq(b.count - 1)
            with m.If((b.count == 0) & ~core.ifm_loading):
                m.d.sync += [*b.record_load, b.follow.eq(0)]

    def _load_states(self, m, b):
        """Parameters into the bias/requant memory, the input (or the pool read-back) into the
        IFM banks, one beat per cycle."""
        D, check, core, rd_data = b.D, b.check, b.core, b.dma.rd_data
        with m.State("PARAMS"):
            b.read(check.params_start, D.param_size, D.param_size >> LANE_BITS, "PARAMS_DATA")
            m.d.sync += b.par_addr.eq(0)
        with m.State("PARAMS_DATA"):
            m.d.comb += [rd_data.ready.eq(1), core.par_wr_en.eq(b.beat_in)]
            with m.If(b.beat_in):
                m.d.sync += [b.par_addr.eq(b.par_addr + 1), b.count.eq(b.count - 1)]
            with m.If((b.count == 0) & check.is_pool):
                m.next = "POOL_LOAD"
            with m.Elif(b.count == 0):
                m.next = "INPUT"
        with m.State("INPUT"):
            # (the store was set up for this band in BAND_C)
            with m.If(core.ifm_ready & b.reuse):      # INPUT_KEPT: the store holds it
                m.next = "RUN_START"
            with m.Elif(core.ifm_ready):
                # (a band may start inside a beat: the loader skips to its first byte)
                lane = b.band.in_addr[:LANE_BITS]
                m.d.comb += [core.ifm_load.eq(1), core.ifm_load_lane.eq(lane)]
                m.d.sync += b.kept.valid.eq(0)
                addr, length, beats = self._load_command(m, b, b.band)
                m.d.comb += b.dma.gather.eq(check.gathered | b.pair)
                with m.If(self._follows(b)):
                    b.read(addr, length, beats, "RUN_START")
                    with m.If(b.dma.rd_cmd.ready):
                        m.d.sync += b.follow.eq(1)
                with m.Else():
                    b.read(addr, length, beats, "LOAD")
        with m.State("LOAD"):
            m.d.comb += [rd_data.ready.eq(core.ifm_beat.ready),
                         core.ifm_beat.valid.eq(rd_data.valid)]
            with m.If(b.beat_in):
                m.d.sync += b.count.eq(b.count - 1)
            with m.If((b.count == 0) & ~core.ifm_loading):
                m.d.sync += b.record_load
                with m.If(b.pf & b.pool_after_load):    # the next pool band is in
                    m.next = "POOL_WAIT"
                with m.Elif(b.pf):              # the next band is in; the core still runs
                    m.next = "RUN_WAIT"
                with m.Elif(b.pool_after_load):
                    m.d.comb += b.pool.start.eq(1)
                    m.next = "POOL"
                with m.Else():
                    m.next = "RUN_START"
        with m.State("POOL_LOAD"):
            m.d.sync += [b.pool_after_load.eq(1), b.pband.py.eq(0), b.half.eq(0)]
            m.next = "POOL_BAND_A"
        self._pool_band_states(m, b)
        with m.State("POOL_SETUP"):
            m.d.comb += core.ifm_setup.eq(1)
            m.next = "POOL_INPUT"
        with m.State("POOL_INPUT"):
            with m.If(core.ifm_ready & b.reuse & check.is_pool):     # INPUT_KEPT
                m.d.comb += b.pool.start.eq(1)
                m.next = "POOL"
            with m.Elif(core.ifm_ready):
                lane = b.pband.in_addr[:LANE_BITS]
                m.d.comb += [core.ifm_load.eq(1), core.ifm_load_lane.eq(lane),
                             b.dma.gather.eq(b.pair)]
                m.d.sync += b.kept.valid.eq(0)
                b.read(*self._load_command(m, b, b.pband), "LOAD")

    def _load_command(self, m, b, band):
        """(address, bytes, beats) of the read-channel command that loads `band`'s input (a
        conv band's or a pool band's): the whole range, or a pair load's even blocks, with its
        odd ones queued for the weight port (`_pair_load`). Issued with ``ifm_load``."""
        lane = band.in_addr[:LANE_BITS]
        beats = (lane + band.in_bytes + BEAT_BYTES - 1) >> LANE_BITS
        m.d.comb += b.core.ifm_pair.eq(b.pair)
        with m.If(b.pair & b.dma.rd_cmd.ready):
            m.d.sync += [b.pq.pending.eq(band.in_bytes != b.pair_a),
                         b.pq.addr.eq(band.in_addr + b.pair_g.piece),
                         b.pq.length.eq(band.in_bytes - b.pair_a)]
        return (band.in_addr, Mux(b.pair, b.pair_a, band.in_bytes),
                Mux(b.pair, b.pair_a >> LANE_BITS, beats))

    def _pool_band_states(self, m, b):
        """The pool pass in bands of `graph.exec.pool_band_rows` pooled rows (0: the whole
        map): a band's map rows (those its windows cover, clipped to the map; the padding rows
        above them given to the pool unit, the bottom padding only to the band that reaches the
        map's end) are loaded into the IFM store and pooled; the band that reaches the map's
        bottom row is the last. Three cycles of band arithmetic, a multiplier deep each."""
        D, check, pband = b.D, b.check, b.pband
        lg_m = self._config.group.bit_length() - 1
        win = check.window
        per = D.graph.exec.pool_band_rows
        map_h, map_w, groups = check.map_h, check.map_w, check.map_groups
        # a fused max-pool reads the conv output back, a pooling layer its input
        src = Mux(check.is_pool, check.input_start, check.output_start)
        with m.State("POOL_BAND_A"):
            m.d.sync += [pband.ys.eq(pband.py * win.sh),
                         pband.span.eq(Mux(per == 0, map_h + win.pt, (per - 1) * win.sh + win.kh)),
                         pband.row_bytes.eq((map_w * groups) << lg_m)]
            m.next = "POOL_BAND_B"
        with m.State("POOL_BAND_B"):
            y0 = pband.ys - win.pt
            m.d.sync += [pband.ys.eq(y0), pband.y_end.eq(y0 + pband.span)]
            m.next = "POOL_BAND_C"
        with m.State("POOL_BAND_C"):
            y_start = Mux(pband.ys < 0, 0, pband.ys)
            y_end = Mux(pband.y_end > map_h, map_h, pband.y_end)
            rows = y_end - y_start
            m.d.sync += [pband.rows.eq(rows), pband.pad_top.eq(y_start - pband.ys),
                         pband.last.eq(pband.y_end >= map_h),
                         pband.in_addr.eq(src + y_start * pband.row_bytes),
                         pband.in_bytes.eq(rows * pband.row_bytes)]
            m.next = "POOL_SETUP"
        pcur = b.pcur
        with m.State("POOL"):
            # Pool band prefetch: when a band fits half the IFM store, the next band is set up
            # and loaded into the other half while the unit pools this one (POOL_BAND_A ..
            # LOAD, then POOL_WAIT). A band before the last has `per` pooled rows.
            with m.If(check.pool_half_fits & (per != 0) & ~pcur.last & ~b.pf):
                m.d.sync += [b.pf.eq(1), pband.py.eq(pband.py + per)]
                m.next = "POOL_BAND_A"
            with m.Elif(b.pool.done):
                m.d.sync += pband.py.eq(pband.py + b.pool.rows)
                with m.If(pcur.last):
                    m.d.sync += b.pool_after_load.eq(0)
                    m.next = "LAYER_END"
                with m.Else():
                    m.next = "POOL_BAND_A"
        with m.State("POOL_WAIT"):
            # The prefetched band is in: once the unit is done with this one, it pools that
            # one from the other half.
            with m.If(pcur.seen | b.pool.done):
                m.d.sync += [b.pf.eq(0), b.half.eq(~b.half), *_take_band(pcur, pband)]
                m.next = "POOL_GO"
        with m.State("POOL_GO"):
            m.d.comb += b.pool.start.eq(1)
            m.next = "POOL"

    def _compute_states(self, m, b):
        """The core runs while the weights stream in and the writer drains; then the pool pass."""
        D, core, dma = b.D, b.core, b.dma
        with m.State("RUN_START"):
            layer, blk = core.layer, self._block(b)
            m.d.comb += [
                core.start.eq(1), b.writer.start.eq(1), b.psum_wr.start.eq(1),
                b.psum_rd.clear.eq(1),
                *(getattr(layer, f).eq(getattr(D, f)) for f in (
                    "in_w", "out_w", "out_channels", "kernel_h",
                    "kernel_w", "stride", "pad")),
                layer.in_groups.eq(blk.end), layer.cg0.eq(b.blk.g0),
                layer.psum_in.eq(blk.psum_in), layer.psum_out.eq(blk.psum_out),
                layer.in_h.eq(b.band.rows), layer.out_h.eq(b.band.out_rows),
                layer.pad_top.eq(b.band.pad_top),
                layer.img_h.eq(D.graph.links.image_rows),
                layer.img_oh.eq(D.graph.links.image_out_rows), layer.oyl0.eq(b.band.yl),
                layer.relu.eq(flag_set(D.flags, LayerFlags.RELU)),
                layer.ifm_stationary.eq(flag_set(D.flags, LayerFlags.IFM_STATIONARY)),
            ]
            m.d.sync += [b.wr_base.eq(b.band.out_addr), b.blk.ps_rd.eq(0),
                         b.res.delta.eq(b.check.input2_start - b.check.output_start)]
            # Weights that fit the buffer stay from the first band on (the ring never wraps);
            # an input-channel block reads its own. (With the weight port the band's first
            # block's are already coming, queued in BAND_A.)
            if self._config.weight_port:
                with m.If(b.check.blocked & (b.blk.g0 != 0)):
                    self._queue_weights(m, b, fresh=False)
                with m.If(~b.follow):           # (following: the input's beats still to come)
                    m.d.sync += b.count.eq(0)
                m.next = "RUN"
            else:
                with m.If(b.band.first | ~b.check.weights_fit | b.check.blocked):
                    m.d.comb += b.weights.clear.eq(1)
                    b.read(b.blk.w_addr, blk.w_bytes, blk.w_bytes >> LANE_BITS, "RUN")
                with m.Else():
                    m.d.sync += b.count.eq(0)
                    m.next = "RUN"
        with m.State("RUN"):
            blk, rd_cmd = self._block(b), dma.rd_cmd
            # The block's weights first; then (a block after the first) the band's partial
            # sums, streamed to the output stage.
            # A fused add on one port: once the weights are in (they all fit), the read channel
            # is the residual's, one read per writer command (no psum, no prefetch then). With
            # the weight port the read channel is free from the start (no wait for the weights
            # nor for the next band's input); a fused conv in one band reads its residual on it
            # from the start, one in bands on the weight port (`_weight_port`). With the write
            # port the read channel carries side 0's residual from the start, in one band or in
            # bands (no band prefetch then), and the weight port side 1's.
            res, add = b.res, b.add
            port = self._config.weight_port
            main_free = 1 if port else b.weights_in
            residual = b.check.fused & (1 if b.dual else ~b.banded if port else b.weights_in)
            with m.If(b.blk.ps_rd):
                m.d.comb += [dma.rd_data.ready.eq(b.psum_rd.beat.ready),
                             b.psum_rd.beat.valid.eq(dma.rd_data.valid)]
            with m.Elif(residual):
                m.d.comb += [dma.rd_data.ready.eq(add.b.ready),
                             add.b.valid.eq(dma.rd_data.valid),
                             rd_cmd.valid.eq(res.pending), rd_cmd.payload.addr.eq(res.addr),
                             rd_cmd.payload.length.eq(res.length)]
                with m.If(res.pending & rd_cmd.ready):
                    m.d.sync += res.pending.eq(0)
            if not self._config.weight_port:
                with m.Else():
                    m.d.comb += [dma.rd_data.ready.eq(b.weights.ready),
                                 b.weights.accept.eq(b.beat_in)]
            else:
                wb = b.wb
                with m.Elif(b.wsplit):          # the odd k tiles' weights
                    m.d.comb += [dma.rd_data.ready.eq(b.weights.ready_b),
                                 b.weights.accept_b.eq(b.beat_in),
                                 rd_cmd.valid.eq(wb.pending), rd_cmd.payload.addr.eq(wb.addr),
                                 rd_cmd.payload.length.eq(b.wq.length)]
                    with m.If(wb.pending & rd_cmd.ready):
                        self._next_tile(m, wb, b.wq)
            with m.If(b.beat_in & (b.count != 0)):
                m.d.sync += b.count.eq(b.count - 1)
            with m.If(blk.psum_in & ~b.blk.ps_rd & b.weights_in & (b.count == 0)):
                m.d.comb += [rd_cmd.valid.eq(1), rd_cmd.payload.addr.eq(b.check.psum_start),
                             rd_cmd.payload.length.eq(blk.psum_bytes)]
                with m.If(rd_cmd.ready):
                    m.d.sync += [b.count.eq(blk.psum_bytes >> LANE_BITS), b.blk.ps_rd.eq(1)]
            # Prefetch: once this band's weights are in (they stay: the layer's fit the buffer)
            # and when a band fits half the IFM store, the next band's input is loaded into
            # the other half while the core runs (BAND_A .. LOAD, then RUN_WAIT).
            more = b.band.y + b.band.out_rows < D.out_h
            prefetch = (b.check.half_fits & b.check.weights_fit & ~b.check.blocked & more
                        & main_free & (b.count == 0) & ~b.follow
                        & (~b.check.fused if b.dual or not port else 1))
            with m.If(core.done & (b.count == 0) & ~b.follow & b.weights_in
                      & (b.blk.ps_rd | ~blk.psum_in) & b.writer.idle & b.psum_wr.idle
                      & ~dma.busy & b.adds_idle):
                m.next = "BAND_END"
            with m.Elif(prefetch):
                m.d.sync += [b.pf.eq(1), b.band.y.eq(b.band.y + b.band.out_rows),
                             b.band.first.eq(0), *self._next_band_yl(b)]
                m.next = "BAND_A"
        with m.State("RUN_WAIT"):
            # The prefetched band is in: when the core and the writer are done with this one,
            # its counters, and the next band starts from the other half.
            with m.If(core.done & b.writer.idle & ~dma.busy & b.adds_idle):
                m.d.sync += [b.totals[n].eq(b.totals[n] + getattr(core, n))
                             for n in ("macs", "groups_issued", "groups_skipped")]
                m.d.sync += [b.pf.eq(0), b.half.eq(~b.half)]
                m.next = "RUN_START"
        with m.State("BAND_END"):
            # The core's counters of this run; then the band's next input-channel block (its
            # input stays in the store), the next band, the pool pass, or the end.
            blk = self._block(b)
            m.d.sync += [b.totals[n].eq(b.totals[n] + getattr(core, n))
                         for n in ("macs", "groups_issued", "groups_skipped")]
            with m.If(~blk.last):
                m.d.sync += [b.blk.g0.eq(blk.end), b.blk.w_addr.eq(b.blk.w_addr + blk.w_bytes),
                             b.blk.w_left.eq(b.blk.w_left - blk.w_bytes)]
                m.next = "RUN_START"
            with m.Else():
                m.d.sync += [b.band.y.eq(b.band.y + b.band.out_rows), b.band.first.eq(0),
                             *self._next_band_yl(b), *self._first_block(b)]
                with m.If(b.band.y + b.band.out_rows < D.out_h):
                    m.next = "BAND_A"
                with m.Elif(flag_set(D.flags, LayerFlags.POOL)):
                    m.next = "POOL_LOAD"
                with m.Else():
                    m.next = "LAYER_END"

    def _add_states(self, m, b):
        """An ADD layer, chunk by chunk: the first input's chunk into the add unit's buffer, then
        the second input's chunk through the add unit, which writes the sums."""
        D, check, add, rd_data = b.D, b.check, b.add, b.dma.rd_data
        chunk_bytes = CHUNK_BEATS * BEAT_BYTES
        left = check.ifm_bytes - b.add_offset
        m.d.comb += [add.mult_a.eq(D.graph.exec.add_mult_a), add.mult_b.eq(D.graph.exec.add_mult_b),
                     add.shift.eq(D.graph.exec.add_shift),
                     add.relu.eq(Mux(check.fused, flag_set(D.flags, LayerFlags.ADD_RELU),
                                     flag_set(D.flags, LayerFlags.RELU))),
                     add.base.eq(check.output_start + b.add_offset), add.length.eq(b.add_bytes),
                     add.a_data.eq(rd_data.payload), add.a_addr.eq(b.add_line),
                     add.b.payload.eq(Mux(check.fused & b.banded, b.dma.w_data.payload,
                                          rd_data.payload)
                                      if self._config.weight_port and not b.dual
                                      else rd_data.payload)]
        if b.dual:
            m.d.comb += [getattr(b.add2, f).eq(getattr(add, f))
                         for f in ("mult_a", "mult_b", "shift", "relu")]
            m.d.comb += b.add2.b.payload.eq(b.dma.w_data.payload)
        beats = (b.add_bytes + BEAT_BYTES - 1) >> LANE_BITS
        with m.State("ADD_CHUNK"):
            m.d.sync += [b.add_bytes.eq(Mux(left > chunk_bytes, chunk_bytes, left)),
                         b.add_line.eq(0)]
            m.next = "ADD_A"
        with m.State("ADD_A"):
            b.read(check.input_start + b.add_offset, b.add_bytes, beats, "ADD_A_DATA")
        with m.State("ADD_A_DATA"):
            m.d.comb += [rd_data.ready.eq(1), add.a_en.eq(b.beat_in)]
            with m.If(b.beat_in):
                m.d.sync += [b.add_line.eq(b.add_line + 1), b.count.eq(b.count - 1)]
            with m.If(b.count == 0):
                m.d.comb += add.start.eq(1)
                m.next = "ADD_B"
        with m.State("ADD_B"):
            b.read(check.input2_start + b.add_offset, b.add_bytes, beats, "ADD_B_DATA")
        with m.State("ADD_B_DATA"):
            m.d.comb += [add.b.valid.eq(rd_data.valid), rd_data.ready.eq(add.b.ready)]
            with m.If(b.beat_in):
                m.d.sync += b.count.eq(b.count - 1)
            with m.If((b.count == 0) & ~add.busy & ~b.dma.busy):
                m.d.sync += b.add_offset.eq(b.add_offset + b.add_bytes)
                with m.If(b.add_offset + b.add_bytes == check.ifm_bytes):
                    m.next = "LAYER_END"
                with m.Else():
                    m.next = "ADD_CHUNK"

    def _end_states(self, m, b):
        """A layer's end: counters, errors, abort, the next layer or the run's end."""
        core, dma, totals = b.core, b.dma, b.totals
        with m.State("LAYER_END"):
            with m.If(dma.error):
                b.fail(ErrorCode.AXI_ERROR)
            with m.Elif(b.abort_pending):
                b.fail(ErrorCode.ABORTED)
            with m.Elif(b.layer + 1 == b.hdr.layer_count):
                m.next = "DONE"
            with m.Else():
                m.d.sync += b.layer.eq(b.layer + 1)
                m.next = "DESC"
        with m.State("DONE"):
            m.d.comb += [b.done_pulse.eq(1), dma.clear.eq(1)]
            m.d.sync += b.running.eq(0)
            m.next = "IDLE"
        with m.State("FAIL"):
            # Nothing new is issued; wait for transactions in flight, then report.
            with m.If(~dma.busy):
                m.d.comb += [b.done_pulse.eq(1), dma.clear.eq(1)]
                m.d.sync += b.running.eq(0)
                m.next = "IDLE"
