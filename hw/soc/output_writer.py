"""The output writer (store controller): the core's output rows -> the activation layout in DRAM.

Per pixel, a k tile's channels are contiguous in DRAM, so each (pixel, k tile) of a finished tile
is one short burst (segment mode). When all k tiles of a pixel tile arrive one after the other (the
IFM-stationary order, or a single k tile) and the padded channel count is a multiple of a beat that
fits a slot, the pixel tile's outputs are one contiguous range, written as one command (whole
mode). Each column has an output bank with two tile slots: one fills while the other is written.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import BEAT_BYTES, LANE_BITS, SenseConfig
from hw.core.decoders import tile_info_layout
from hw.layouts import DIM_BITS, ofm_row_layout
from hw.soc.dma import ADDR_BITS, DATA_BITS, dma_command_layout

__all__ = ["OutputWriter", "writer_sides", "output_lines_per_slot", "output_slot_lines",
           "whole_tile_rule", "whole_tile_writes", "SEPARATOR_CYCLES"]

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


def writer_sides(config: SenseConfig) -> list[tuple[int, int]]:
    """The columns (pixels of a tile) each drain side of the output writer writes, (first,
    end): all of them, or with ``config.write_port`` the first half on the DMA's writer and the
    rest on its second writer (host.perf follows the same split)."""
    if not config.write_port or config.cols < 2:
        return [(0, config.cols)]
    half = (config.cols + 1) // 2
    return [(0, half), (half, config.cols)]


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
    first pixel index by ``sep_slot``.

    Two drain sides (``config.write_port``): a slot's first half of pixels (columns 0 ..
    ceil(cols / 2) - 1) is written by side 0 on ``cmd`` / ``data``, the rest by side 1: with
    ``split`` (taken with each slot) at the same time on ``cmd2`` / ``data2`` (the DMA's second
    writer), else after side 0 on ``cmd`` / ``data`` (a fused add's beats pass the add unit,
    which takes one stream). Each side reads only its own columns' banks. A slot is free in the
    cycle its last side finishes; a whole-mode slot is then one command per side."""

    def __init__(self, config: SenseConfig):
        self._config = config
        members = {
            "rows": In(stream.Signature(ofm_row_layout(config))),
            "cmd": Out(stream.Signature(dma_command_layout())),
            "data": Out(stream.Signature(DATA_BITS)),
            "start": In(1), "ifm_stationary": In(1), "k_tiles": In(16), "kpad": In(20),
            "out_channels": In(16), "base": In(ADDR_BITS + 1), "stride": In(20),
            "sep_slot": In(16), "sep_valid": In(16), "first_px": In(PIXEL_BITS),
            "writing": Out(1), "idle": Out(1), "split": In(1),
        }
        if len(writer_sides(self._config)) > 1:
            members |= {"cmd2": Out(stream.Signature(dma_command_layout())),
                        "data2": Out(stream.Signature(DATA_BITS))}
        super().__init__(members)

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
        """A full slot out as DMA commands: one per pixel segment, or one for the whole tile
        (per side: its pixels). The slot's shared values are set in IDLE (and, with separator
        rows, DIVIDE); the sides then run, at once (``split``) or one after the other on
        ``cmd`` / ``data``, and the slot is free in the cycle the last side finishes."""
        cfg = self._config
        kpad = self.kpad
        sides = writer_sides(self._config)
        last_k_tile = info.k0 + cfg.rows >= self.out_channels
        div = {"p": Signal(PIXEL_BITS, name="sep_div_p"), "r": Signal(17, name="sep_div_r"),
               "i": Signal(range(PIXEL_BITS), name="sep_div_i")}
        slot = {"keep": Signal(20, name="seg_keep"),   # real channels from a segment's first
                "len": Signal(32, name="seg_len_px"),  # a pixel's segment (segment mode)
                "base": Signal(ADDR_BITS, name="seg_base"),    # pixel 0's segment
                "split": Signal(name="sides_split")}
        # (`now`: the slot's values as the sides start: those being set in IDLE, else the
        # registered ones)
        now = {"base": Signal(ADDR_BITS, name="seg_base_now"),
               "len": Signal(32, name="seg_len_now"), "split": Signal(name="split_now")}
        m.d.comb += [now[k].eq(slot[k]) for k in now]
        begin = Signal(name="slot_begin")         # the sides start (their first CMD next)
        run = [self._side(m, s, lo, hi, banks, whole, slot_lines, rd_slot, info, stride, sep,
                          slot, now, div) for s, (lo, hi) in enumerate(sides)]
        for n, r in enumerate(run):
            # side n > 0 without `split` runs when the one before it finishes
            m.d.comb += [r.start.eq(begin),
                         r.after.eq(~now["split"] if n else 0),
                         r.go.eq(run[n - 1].finish if n else 0)]
        finishing = Cat(*(r.finish | r.done for r in run)).all()
        with m.FSM(name="writer"):
            with m.State("IDLE"):
                with m.If(slot_full.bit_select(rd_slot, 1)):
                    base = self.base + info.p0 * stride
                    with m.If(whole):
                        m.d.comb += now["base"].eq(base)
                        m.d.sync += slot["keep"].eq(self.out_channels)
                    with m.Else():
                        m.d.comb += [now["base"].eq(base + info.k0),
                                     now["len"].eq(Mux(last_k_tile, kpad - info.k0, cfg.rows))]
                        m.d.sync += slot["keep"].eq(Mux(last_k_tile, self.out_channels - info.k0,
                                                        cfg.rows))
                    m.d.comb += now["split"].eq(self.split)
                    m.d.sync += [slot[k].eq(now[k]) for k in now]
                    m.d.sync += [div["p"].eq(sep["first"] + info.p0), div["r"].eq(0),
                                 div["i"].eq(0)]
                    with m.If(sep["slot"] != 0):
                        m.next = "DIVIDE"
                    with m.Else():
                        m.d.comb += begin.eq(1)
                        m.next = "RUN"
            with m.State("DIVIDE"):
                # restoring division, a quotient bit a cycle: r = (slot's first pixel) mod slot
                r2 = Cat(div["p"][-1], div["r"])
                m.d.sync += [div["r"].eq(Mux(r2 >= sep["slot"], r2 - sep["slot"], r2)),
                             div["p"].eq(div["p"] << 1), div["i"].eq(div["i"] + 1)]
                with m.If(div["i"] == PIXEL_BITS - 1):
                    m.d.comb += begin.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(finishing):
                    m.d.sync += [slot_full.bit_select(rd_slot, 1).eq(0), rd_slot.eq(~rd_slot)]
                    m.next = "IDLE"
        self._outputs(m, run, slot)
        m.d.comb += self.writing.eq(Cat(*(r.writing & (~slot["split"] if n else 1)
                                          for n, r in enumerate(run))).any())

    def _side(self, m, n, lo, hi, banks, whole, slot_lines, rd_slot, info, stride, sep, slot,
              now, div):
        """Drain side `n`: pixels `lo` .. `hi` - 1 of the slot's tile (banks `lo` ..), its
        commands and beats. ``start`` (the slot's one cycle) sets it up from `now`: it goes to
        its first command, or with ``after`` waits (WAIT) for ``go`` (the side before it
        finishing); ``finish`` is high in its last cycle, ``done`` while it is idle."""
        cfg = self._config
        kpad = self.kpad
        name = f"s{n}_"
        r = SimpleNamespace(start=Signal(name=name + "start"), finish=Signal(name=name + "finish"),
                            after=Signal(name=name + "after"), go=Signal(name=name + "go"),
                            done=Signal(name=name + "done"),
                            writing=Signal(name=name + "writing"),
                            cmd=SimpleNamespace(valid=Signal(name=name + "cmd_valid"),
                                                ready=Signal(name=name + "cmd_ready"),
                                                addr=Signal(ADDR_BITS, name=name + "addr"),
                                                length=Signal(32, name=name + "len")),
                            data=SimpleNamespace(valid=Signal(name=name + "data_valid"),
                                                 ready=Signal(name=name + "data_ready"),
                                                 payload=Signal(DATA_BITS, name=name + "beat")))
        seg_addr, seg_len = r.cmd.addr, r.cmd.length
        seg_j = Signal(range(cfg.cols + 1), name=name + "j")
        seg_lines = Signal(range(slot_lines + 1), name=name + "lines")
        seg_line = Signal(range(slot_lines + 1), name=name + "line")
        seg_off = seg_addr[:LANE_BITS]
        out_valid = Signal(name=name + "out_valid")
        out_line = Signal(range(slot_lines + 1), name=name + "out_line")
        out_sel = Signal(range(max(cfg.cols, 2)), name=name + "out_sel")
        # the side's pixels: none when the tile ends before them
        pixels = Mux(info.count > hi, hi - lo, Mux(info.count > lo, info.count - lo, 0))
        with m.FSM(name=f"writer_side{n}"):
            with m.State("DONE"):
                m.d.comb += r.done.eq(1)
                with m.If(r.start):
                    m.d.sync += [seg_j.eq(lo), seg_addr.eq(now["base"] + lo * stride),
                                 seg_len.eq(Mux(whole, pixels * kpad, now["len"]))]
                    with m.If((pixels != 0) & r.after):
                        m.next = "WAIT"
                    with m.Elif(pixels != 0):
                        m.next = "CMD"
            with m.State("WAIT"):
                with m.If(r.go):
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [r.writing.eq(1), r.cmd.valid.eq(1)]
                with m.If(r.cmd.ready):
                    lines = (seg_off + seg_len + BEAT_BYTES - 1) >> LANE_BITS
                    m.d.sync += [seg_line.eq(0),
                                 seg_lines.eq(Mux(whole, kpad >> LANE_BITS, lines))]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += r.writing.eq(1)
                advance = ~out_valid | r.data.ready
                issue = advance & (seg_line != seg_lines)
                more_pixels = seg_j + 1 < lo + pixels
                for _, rp in banks[lo:hi]:
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
                    # Command done: the next pixel's segment, or the side is done.
                    m.d.sync += [seg_j.eq(seg_j + 1), seg_addr.eq(seg_addr + stride)]
                    with m.If(whole | ~more_pixels):
                        m.d.comb += r.finish.eq(1)
                        m.next = "DONE"
                    with m.Else():
                        m.next = "CMD"
        line_data = Signal(DATA_BITS, name=name + "line_data")
        with m.Switch(out_sel):
            for j, (_, rp) in enumerate(banks[lo:hi], lo):
                with m.Case(j):
                    m.d.comb += line_data.eq(rp.data)
        # a separator pixel's beats are zeros: its index in its image slot is sep_valid or more
        q = Signal(17, name=name + "sep_q")
        q_in = Signal(17, name=name + "sep_q_in")
        m.d.comb += [q.eq(div["r"] + out_sel),
                     q_in.eq(Mux(q >= sep["slot"], q - sep["slot"], q))]
        separator = (sep["slot"] != 0) & (q_in >= sep["valid"])
        for lane in range(BEAT_BYTES):
            keep = ((out_line * BEAT_BYTES + lane) < seg_off + slot["keep"]) & ~separator
            m.d.comb += r.data.payload[8 * lane:8 * lane + 8].eq(
                Mux(keep, line_data[8 * lane:8 * lane + 8], 0))
        m.d.comb += r.data.valid.eq(out_valid & r.writing)
        return r

    @staticmethod
    def _drive(cmd, data, side, gate=None):
        """Assignments that put drain `side`'s commands and beats on the `cmd` / `data`
        streams (their valids gated by `gate` when given)."""
        def valid(v):
            return v if gate is None else gate & v
        return [cmd.valid.eq(valid(side.cmd.valid)), cmd.payload.addr.eq(side.cmd.addr),
                cmd.payload.length.eq(side.cmd.length), data.valid.eq(valid(side.data.valid)),
                data.payload.eq(side.data.payload)]

    def _outputs(self, m, run, slot):
        """Side 0 on ``cmd`` / ``data``; side 1 on ``cmd2`` / ``data2`` when the slot is split,
        else on ``cmd`` / ``data`` after side 0 (the sides never write at once then)."""
        m.d.comb += [run[0].cmd.ready.eq(self.cmd.ready), run[0].data.ready.eq(self.data.ready)]
        if len(run) == 1:
            m.d.comb += self._drive(self.cmd, self.data, run[0])
            return
        first, second = run
        split = slot["split"]
        m.d.comb += [second.cmd.ready.eq(Mux(split, self.cmd2.ready, self.cmd.ready)),
                     second.data.ready.eq(Mux(split, self.data2.ready, self.data.ready))]
        m.d.comb += self._drive(self.cmd2, self.data2, second, gate=split)
        with m.If(~split & second.writing):
            m.d.comb += self._drive(self.cmd, self.data, second)
        with m.Else():
            m.d.comb += self._drive(self.cmd, self.data, first)
