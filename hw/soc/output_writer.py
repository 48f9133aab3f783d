"""The output writer (store controller): the core's output rows -> the activation layout in DRAM.

Per pixel, a k tile's channels are contiguous in DRAM, so each (pixel, k tile) of a finished tile
is one short burst (segment mode). When all k tiles of a pixel tile arrive one after the other (the
IFM-stationary order, or a single k tile) and the padded channel count is a multiple of a beat that
fits a slot, the pixel tile's outputs are one contiguous range, written as one command (whole
mode). Each column has an output bank with two tile slots: one fills while the other is written.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import BEAT_BYTES, LANE_BITS, SenseConfig
from hw.core.decoders import tile_info_layout
from hw.layouts import DIM_BITS, ofm_row_layout
from hw.soc.dma import ADDR_BITS, DATA_BITS, dma_command_layout

__all__ = ["OutputWriter", "output_lines_per_slot", "output_slot_lines", "whole_tile_rule",
           "whole_tile_writes", "SEPARATOR_CYCLES"]

#: Bits of a pixel index (a tile's ``p0`` plus its band's first pixel).
PIXEL_BITS = 2 * DIM_BITS
#: Cycles a slot waits before its first command when the layer has separator rows (``sep_slot``):
#: the writer divides the slot's first pixel index by the slot size, one quotient bit a cycle.
SEPARATOR_CYCLES = PIXEL_BITS


def output_lines_per_slot(config: SenseConfig) -> int:
    """Beat-sized lines one pixel's segment of one k tile may span in the output buffer: at most
    rows + M - 1 bytes (the last k tile also writes the channel padding) starting at any byte of
    a line."""
    return -(-(BEAT_BYTES - 1 + config.rows + config.group - 1) // BEAT_BYTES)


def output_slot_lines(config: SenseConfig) -> int:
    """Lines of each column's output bank per tile slot (two slots): half the column's share of
    the output buffer (ofm_kib), and at least one segment's worth."""
    share = config.ofm_kib * 1024 // (config.cols * BEAT_BYTES) // 2
    return max(output_lines_per_slot(config), share)


def whole_tile_rule(ifm_stationary, k_tiles, kpad, slot_lines, concat=False):
    """The rule for whole mode, on Python integers (the model) or Amaranth values (the gateware):
    all k tiles of a pixel tile arrive one after the other (the IFM-stationary order or a single
    k tile), a pixel's padded channels are whole beats that fit a slot, and the layer does not
    write a channel range of a concat's tensor (its pixels are not contiguous then)."""
    return ((ifm_stationary | (k_tiles == 1)) & ((kpad & (BEAT_BYTES - 1)) == 0)
            & ((kpad >> LANE_BITS) <= slot_lines) & (concat == 0))


def whole_tile_writes(config: SenseConfig, out_channels: int, k_tiles: int,
                      ifm_stationary: bool, concat: bool = False) -> bool:
    """Whether the writer sends a pixel tile's outputs as one contiguous command (host.perf and
    the compiler pass ask here; the gateware applies the same `whole_tile_rule`)."""
    kpad = -(-out_channels // config.group) * config.group
    return bool(whole_tile_rule(bool(ifm_stationary), k_tiles, kpad, output_slot_lines(config),
                                bool(concat)))


class OutputWriter(wiring.Component):
    """``rows`` (the core's output rows) in; ``cmd`` and ``data`` (DMA write commands and beats)
    out. ``start`` (one cycle, before the layer's first row) takes the layer's ``ifm_stationary``,
    ``k_tiles`` and ``kpad`` (output channels padded to M) to choose the mode, and latches
    ``stride``; ``base`` is the output's DRAM address (of channel 0 of pixel 0: with a concat, where its channel range
    starts), ``stride`` the bytes from one pixel to the next (``kpad``, or a concat tensor's
    channels), ``out_channels`` the real channel count (padding bytes are written as 0). ``writing`` is high while a command or its beats are out; ``idle`` when both slots are
    empty and nothing is being written. A row is accepted whenever its slot is free.

    Separator rows (a batch's images stacked in one map, `host.batch`): with ``sep_slot`` (output
    pixels per image slot, at least ``cols``; 0: none) the output pixels whose index (the band's
    first pixel ``first_px`` plus the tile's) modulo ``sep_slot`` is ``sep_valid`` or more are
    written as zeros. A slot then waits SEPARATOR_CYCLES before its first command, dividing its
    first pixel index by ``sep_slot``."""

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "rows": In(stream.Signature(ofm_row_layout(config))),
            "cmd": Out(stream.Signature(dma_command_layout())),
            "data": Out(stream.Signature(DATA_BITS)),
            "start": In(1), "ifm_stationary": In(1), "k_tiles": In(16), "kpad": In(20),
            "out_channels": In(16), "base": In(ADDR_BITS + 1), "stride": In(20),
            "sep_slot": In(16), "sep_valid": In(16), "first_px": In(PIXEL_BITS),
            "writing": Out(1), "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        slot_lines = output_slot_lines(cfg)
        banks = []
        for j in range(cfg.cols):
            mem = Memory(shape=DATA_BITS, depth=2 * slot_lines, init=[])
            m.submodules[f"obank{j}"] = mem
            banks.append((mem.write_port(granularity=8), mem.read_port(transparent_for=())))
        whole = Signal()
        # The pixel stride, latched with the layer (the descriptor's arithmetic behind it stays
        # out of the byte-lane and address paths).
        stride = Signal.like(self.stride)
        sep = {"slot": Signal(16, name="sep_slot"), "valid": Signal(16, name="sep_valid"),
               "first": Signal(PIXEL_BITS, name="sep_first")}
        with m.If(self.start):
            m.d.sync += [stride.eq(self.stride), sep["slot"].eq(self.sep_slot),
                         sep["valid"].eq(self.sep_valid), sep["first"].eq(self.first_px)]
            m.d.sync += whole.eq(whole_tile_rule(self.ifm_stationary, self.k_tiles, self.kpad,
                                                 slot_lines, self.stride != self.kpad))
        slot_full, rd_slot, info = self._fill(m, banks, whole, slot_lines, stride)
        self._drain(m, banks, whole, slot_lines, slot_full, rd_slot, info, stride, sep)
        m.d.comb += self.idle.eq(~slot_full.any() & ~self.writing)
        return m

    def _fill(self, m, banks, whole, slot_lines, stride):
        """Rows into the free slot: each column's int8 at its byte lane."""
        cfg = self._config
        kpad = self.kpad
        slot_full = Signal(2)
        slot_info = [Signal(tile_info_layout(cfg), name=f"slot_info_{s}") for s in range(2)]
        wr_slot = Signal()
        row = self.rows.payload
        m.d.comb += self.rows.ready.eq(~slot_full.bit_select(wr_slot, 1))
        accept = self.rows.valid & self.rows.ready
        # Segment mode: byte lane of channel k of pixel p is (base + p * stride + k) mod
        # BEAT_BYTES; only the lane bits of the products matter. Whole mode: pixel j's channels
        # start a line, channel k is byte k.
        lane = LANE_BITS
        tile_lo = (self.base[:lane] + row.p0[:lane] * stride[:lane] + row.k0[:lane])[:lane]
        d = (row.channel - row.k0)[:8]
        for j, (wp, _) in enumerate(banks):
            off = (tile_lo + j * stride[:lane])[:lane]
            pos = Signal(range(slot_lines * BEAT_BYTES), name=f"obyte_{j}")
            m.d.comb += [
                pos.eq(Mux(whole, row.channel, off + d)),
                wp.addr.eq(Mux(wr_slot, slot_lines, 0) + (pos >> lane)),
                wp.data.eq(Cat(*([row.data[j].as_unsigned()] * BEAT_BYTES))),
                wp.en.eq(Mux(accept, Const(1, BEAT_BYTES) << pos[:lane], 0)),
            ]
        tile_complete = row.last & (~whole | (row.k0 + cfg.rows >= self.out_channels))
        with m.If(accept & tile_complete):
            m.d.sync += [slot_full.bit_select(wr_slot, 1).eq(1), wr_slot.eq(~wr_slot)]
            for s in range(2):
                with m.If(wr_slot == s):
                    m.d.sync += [slot_info[s].p0.eq(row.p0), slot_info[s].k0.eq(row.k0),
                                 slot_info[s].count.eq(row.count)]
        rd_slot = Signal()
        info = Signal(tile_info_layout(self._config))
        m.d.comb += info.eq(Mux(rd_slot, slot_info[1], slot_info[0]))
        return slot_full, rd_slot, info

    def _drain(self, m, banks, whole, slot_lines, slot_full, rd_slot, info, stride, sep):
        """A full slot out as DMA commands: one per pixel segment, or one for the whole tile."""
        cfg = self._config
        kpad, cmd, wr_data = self.kpad, self.cmd, self.data
        seg_addr = Signal(ADDR_BITS)
        seg_len = Signal(32)
        seg_keep = Signal(20)      # real channels from the segment's first: min(rows, K - k0)
        seg_j = Signal(range(cfg.cols + 1))
        seg_lines = Signal(range(slot_lines + 1))
        seg_line = Signal(range(slot_lines + 1))
        seg_off = seg_addr[:LANE_BITS]
        out_valid = Signal()
        out_line = Signal(range(slot_lines + 1))
        out_sel = Signal(range(max(cfg.cols, 2)))
        last_k_tile = info.k0 + cfg.rows >= self.out_channels
        div = {"p": Signal(PIXEL_BITS, name="sep_div_p"), "r": Signal(17, name="sep_div_r"),
               "i": Signal(range(PIXEL_BITS), name="sep_div_i")}

        with m.FSM(name="writer"):
            with m.State("IDLE"):
                with m.If(slot_full.bit_select(rd_slot, 1)):
                    base = self.base + info.p0 * stride
                    with m.If(whole):
                        m.d.sync += [seg_addr.eq(base), seg_len.eq(info.count * kpad),
                                     seg_keep.eq(self.out_channels)]
                    with m.Else():
                        m.d.sync += [
                            seg_addr.eq(base + info.k0),
                            seg_len.eq(Mux(last_k_tile, kpad - info.k0, cfg.rows)),
                            seg_keep.eq(Mux(last_k_tile, self.out_channels - info.k0, cfg.rows)),
                        ]
                    m.d.sync += [seg_j.eq(0), div["p"].eq(sep["first"] + info.p0), div["r"].eq(0),
                                 div["i"].eq(0)]
                    with m.If(sep["slot"] != 0):
                        m.next = "DIVIDE"
                    with m.Else():
                        m.next = "CMD"
            with m.State("DIVIDE"):
                # restoring division, a quotient bit a cycle: r = (slot's first pixel) mod slot
                r2 = Cat(div["p"][-1], div["r"])
                m.d.sync += [div["r"].eq(Mux(r2 >= sep["slot"], r2 - sep["slot"], r2)),
                             div["p"].eq(div["p"] << 1), div["i"].eq(div["i"] + 1)]
                with m.If(div["i"] == PIXEL_BITS - 1):
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [self.writing.eq(1), cmd.valid.eq(1),
                             cmd.payload.addr.eq(seg_addr), cmd.payload.length.eq(seg_len)]
                with m.If(cmd.ready):
                    lines = (seg_off + seg_len + BEAT_BYTES - 1) >> LANE_BITS
                    m.d.sync += [seg_line.eq(0),
                                 seg_lines.eq(Mux(whole, kpad >> LANE_BITS, lines))]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.writing.eq(1)
                advance = ~out_valid | wr_data.ready
                issue = advance & (seg_line != seg_lines)
                more_pixels = seg_j + 1 != info.count
                for _, rp in banks:
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
                    m.d.sync += [seg_j.eq(seg_j + 1), seg_addr.eq(seg_addr + stride)]
                    with m.If(whole | ~more_pixels):
                        m.d.sync += [slot_full.bit_select(rd_slot, 1).eq(0), rd_slot.eq(~rd_slot)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "CMD"
        line_data = Signal(DATA_BITS)
        with m.Switch(out_sel):
            for j, (_, rp) in enumerate(banks):
                with m.Case(j):
                    m.d.comb += line_data.eq(rp.data)
        # a separator pixel's beats are zeros: its index in its image slot is sep_valid or more
        q = Signal(17, name="sep_q")
        q_in = Signal(17, name="sep_q_in")
        m.d.comb += [q.eq(div["r"] + out_sel),
                     q_in.eq(Mux(q >= sep["slot"], q - sep["slot"], q))]
        separator = (sep["slot"] != 0) & (q_in >= sep["valid"])
        for lane in range(BEAT_BYTES):
            keep = ((out_line * BEAT_BYTES + lane) < seg_off + seg_keep) & ~separator
            m.d.comb += wr_data.payload[8 * lane:8 * lane + 8].eq(
                Mux(keep, line_data[8 * lane:8 * lane + 8], 0))
        m.d.comb += wr_data.valid.eq(out_valid & self.writing)
