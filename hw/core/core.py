"""The sparse systolic core: decoders + grid + drain + output stage, run on one preloaded layer."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.core.decoders import (
    WEIGHT_INDEX_BITS,
    WeightDecoder,
    tile_info_layout,
    weight_addr_bits,
)
from hw.config import BEAT_BYTES
from hw.core.grid import Grid
from hw.core.ifm_decoder import IfmDecoder
from hw.core.ifm_store import ifm_geom_layout
from hw.core.output_stage import OutputStage
from hw.layouts import (
    DIM_BITS,
    ifm_taps_layout,
    layer_layout,
    ofm_row_layout,
    param_layout,
    psum_row_layout,
    weight_word_layout,
)

__all__ = ["Core"]


class Core(wiring.Component):
    """One convolution (or FC) layer from preloaded on-chip buffers to a stream of output rows.

    Load the buffers: the IFM store (hw.core.ifm_store) with ``ifm_setup`` and ``ifm_geom``
    (the layer input's geometry; wait for ``ifm_ready``), ``ifm_load`` and the input tensor's
    DRAM beats on the ``ifm_beat`` stream (with ``ifm_pair``, a pair load: the odd blocks on
    ``ifm_beat2``; until ``ifm_loading`` falls), ``w_wr_*`` (weight words, a ring: word n of the layer at
    n mod weight_depth, issued once ``w_avail`` > n, overwritable below ``w_release``) and
    ``par_wr_*`` (per-channel bias/mult/shift); set ``layer`` and pulse ``start``. The core walks
    every (k tile, pixel tile) in the order ``layer.ifm_stationary`` names and streams one ``ofm``
    row (ofm_row_layout: channel, pixel tile, valid pixel count, k tile's first channel, last row
    of the tile, cols int8) per output channel per pixel tile, in tile order, top grid row (the
    tile's first channel) first within a tile, and only the channels the layer has. An
    input-channel block (``layer.cg0``, ``psum_in``, ``psum_out``) reads only the stored groups
    ``cg0`` on and exchanges its rows as int32 partial sums on ``psum_in`` / ``psum_out``
    (`OutputStage`). ``ifm_rd_*`` reads back one IFM line (words_per_line channel groups) of
    each of ``pool_taps`` consecutive pixels of a stride-1 placement (the first pixel index, a
    multiple of ``pool_taps``, and the line; one cycle later) while idle. ``busy`` is high
    from ``start`` until the last row has left; ``done`` then stays high until the next start.

    Drain: from the cycle after row 0 of a tile is in its result bank in every column (the
    grid's ``row0_done``), the bank is read out into the output stage, row 0 first (one row per
    cycle while the output stage accepts; the capture writes a row per cycle ahead of it), while
    the next tiles compute.
    Tiles alternate between the grid's two result banks, and the decoders hold a tile's last
    operation until the tile two before it has been read out and at least ``rows`` cycles after
    the previous tile's (``last_ok``), so a slow consumer on ``ofm`` stalls the grid instead of
    losing results and a grid column finishes one PE per cycle at most.

    Counters (valid from ``start`` to the next ``start``): ``cycles`` (busy cycles),
    ``groups_issued``, ``groups_skipped`` (per tile and group), ``slots_issued`` (cycles of MACs
    issued to the grid) and ``macs`` = slots_issued * rows * cols.
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        par_bits = (config.max_channels - 1).bit_length()
        super().__init__({
            "layer": In(layer_layout(config)),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "ifm_setup": In(1), "ifm_geom": In(ifm_geom_layout()), "ifm_ready": Out(1),
            "ifm_load": In(1), "ifm_load_lane": In(4),
            "ifm_beat": In(stream.Signature(8 * BEAT_BYTES)),
            "ifm_pair": In(1), "ifm_beat2": In(stream.Signature(8 * BEAT_BYTES)),
            "ifm_loading": Out(1),
            "ifm_hold": In(1), "ifm_load_half": In(1), "ifm_read_half": In(1),
            "w_wr_addr": In(unsigned(weight_addr_bits(config))),
            "w_wr_data": In(weight_word_layout(config)),
            "w_wr_en": In(1),
            "w_avail": In(WEIGHT_INDEX_BITS),
            "w_release": Out(WEIGHT_INDEX_BITS),
            "ifm_rd_pixel": In(unsigned(2 * DIM_BITS)),
            "ifm_rd_line": In(unsigned(DIM_BITS)),
            "ifm_rd_en": In(1),
            "ifm_rd_data": Out(ifm_taps_layout(config)),
            "par_wr_addr": In(unsigned(par_bits)),
            "par_wr_data": In(param_layout(config)),
            "par_wr_en": In(1),
            "ofm": Out(stream.Signature(ofm_row_layout(config))),
            "psum_in": In(stream.Signature(psum_row_layout(config))),
            "psum_out": Out(stream.Signature(psum_row_layout(config))),
            "cycles": Out(32),
            "groups_issued": Out(32),
            "groups_skipped": Out(32),
            "slots_issued": Out(32),
            "macs": Out(48),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.ifm = ifm = IfmDecoder(cfg)
        m.submodules.wdec = wdec = WeightDecoder(cfg)
        m.submodules.grid = grid = Grid(cfg)
        m.submodules.out = out = OutputStage(cfg)

        m.d.comb += [
            ifm.layer.eq(self.layer), ifm.start.eq(self.start),
            ifm.ifm_setup.eq(self.ifm_setup), ifm.ifm_geom.eq(self.ifm_geom),
            self.ifm_ready.eq(ifm.ifm_ready), ifm.ifm_load.eq(self.ifm_load),
            ifm.ifm_load_lane.eq(self.ifm_load_lane),
            self.ifm_loading.eq(ifm.ifm_loading),
            ifm.ifm_hold.eq(self.ifm_hold), ifm.ifm_load_half.eq(self.ifm_load_half),
            ifm.ifm_read_half.eq(self.ifm_read_half),
            wdec.wr_addr.eq(self.w_wr_addr), wdec.wr_data.eq(self.w_wr_data),
            wdec.wr_en.eq(self.w_wr_en),
            ifm.w_avail.eq(self.w_avail), self.w_release.eq(ifm.w_release),
            ifm.aux_pixel.eq(self.ifm_rd_pixel), ifm.aux_line.eq(self.ifm_rd_line),
            ifm.aux_en.eq(self.ifm_rd_en),
            self.ifm_rd_data.eq(ifm.aux_data),
            out.par_wr_addr.eq(self.par_wr_addr), out.par_wr_data.eq(self.par_wr_data),
            out.par_wr_en.eq(self.par_wr_en),
            wdec.rd_addr.eq(ifm.w_rd_addr), wdec.issue.eq(ifm.issue), wdec.null.eq(ifm.null),
            wdec.first.eq(ifm.first), wdec.last.eq(ifm.last),
            grid.w_in.eq(wdec.ops), grid.x_in.eq(ifm.x_out),
        ]
        wiring.connect(m, out.o, wiring.flipped(self.ofm))
        wiring.connect(m, out.psum_o, wiring.flipped(self.psum_out))
        wiring.connect(m, wiring.flipped(self.psum_in), out.psum_i)
        wiring.connect(m, wiring.flipped(self.ifm_beat), ifm.ifm_beat)
        wiring.connect(m, wiring.flipped(self.ifm_beat2), ifm.ifm_beat2)
        m.d.comb += ifm.ifm_pair.eq(self.ifm_pair)

        out_channels = Signal.like(self.layer.out_channels)
        relu, psum_in, psum_out = Signal(), Signal(), Signal()
        with m.If(self.start):
            m.d.sync += [out_channels.eq(self.layer.out_channels), relu.eq(self.layer.relu),
                         psum_in.eq(self.layer.psum_in), psum_out.eq(self.layer.psum_out)]
        m.d.comb += [out.relu.eq(relu), out.psum_in.eq(psum_in), out.psum_out.eq(psum_out)]

        # -- drain: up to two finished tiles, one per result bank ------------------------------
        # pending: tiles whose last operation has issued and that are not yet read out;
        # captured: those of them whose row 0 is in their bank (row0_done seen): the drain reads
        # rows 0, 1, ... (the output channels of the tile that exist) while the capture writes
        # the later rows, one a cycle, ahead of it.
        # Tile n may finish (last_ok) only when tile n-2 is out, i.e. fewer than two pending.
        pending = Signal(range(3))
        captured = Signal(range(3))
        queue = [Signal(tile_info_layout(cfg), name=f"tile_info_{q}") for q in range(2)]
        bank = Signal()
        row = Signal(range(max(cfg.rows, 2)))
        draining = captured != 0
        # Consecutive tiles finish at least `rows` cycles apart, so that a grid column never has
        # two PEs finishing in one cycle (its result memory has one write port).
        since = Signal(range(cfg.rows + 1), init=cfg.rows)   # cycles since a tile's last op
        with m.If(self.start):
            m.d.sync += since.eq(cfg.rows)
        with m.Elif(ifm.tile_done):
            m.d.sync += since.eq(1)
        with m.Elif(since != cfg.rows):
            m.d.sync += since.eq(since + 1)
        m.d.comb += [ifm.last_ok.eq((pending < 2) & (since == cfg.rows)), grid.bank.eq(bank),
                     grid.clear.eq(self.start)]

        info = queue[0]
        channel = info.k0 + row
        # the tile's last row: the grid's, or the layer's last output channel
        row_last = (row == cfg.rows - 1) | (channel + 1 >= out_channels)
        m.d.comb += [
            out.i.valid.eq(draining),
            out.i.payload.channel.eq(channel),
            out.i.payload.p0.eq(info.p0),
            out.i.payload.count.eq(info.count),
            out.i.payload.k0.eq(info.k0),
            out.i.payload.last.eq(row_last),
            out.i.payload.acc.eq(grid.bottom),
        ]
        shift = draining & out.i.ready
        pop = shift & row_last
        push = ifm.tile_done
        m.d.comb += grid.row.eq(row)
        with m.If(shift):
            m.d.sync += row.eq(Mux(row_last, 0, row + 1))
        with m.If(pop):
            m.d.sync += [queue[0].eq(queue[1]), bank.eq(~bank)]
        with m.If(push):
            with m.If((pending - pop) == 0):
                m.d.sync += queue[0].eq(ifm.tile_info)
            with m.Else():
                m.d.sync += queue[1].eq(ifm.tile_info)
        m.d.sync += [pending.eq(pending + push - pop),
                     captured.eq(captured + grid.row0_done - pop)]
        with m.If(self.start):
            m.d.sync += [pending.eq(0), captured.eq(0), bank.eq(0), row.eq(0)]

        # -- status and counters --------------------------------------------------------------------
        busy = ifm.busy | (pending != 0) | out.busy
        m.d.comb += self.busy.eq(busy)
        with m.If(self.start):
            m.d.sync += [self.done.eq(0), self.cycles.eq(0)]
        with m.Elif(busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        running = Signal()
        with m.If(self.start):
            m.d.sync += running.eq(1)
        with m.Elif(running & ~busy):
            m.d.sync += [running.eq(0), self.done.eq(1)]
        m.d.comb += [
            self.groups_issued.eq(ifm.groups_issued),
            self.groups_skipped.eq(ifm.groups_skipped),
            self.slots_issued.eq(ifm.slots_issued),
            self.macs.eq(ifm.slots_issued * (cfg.rows * cfg.cols)),
        ]
        return m
