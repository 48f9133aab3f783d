"""The pool pass: a map in the IFM store (a layer's convolution output read back, or a pooling
layer's input) pooled into the layer's output in DRAM, reading per cycle one IFM line (16
channels at M = 4) of up to `pool_taps` taps of a window row: maximum, average (a divisor per
window count, SPEC section 8) or global average."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import LANE_BITS, SenseConfig
from hw.core.pixel_walker import tap_bounds
from hw.core.requant import ShiftControls, round_shift_saturate
from hw.layouts import DIM_BITS, ifm_taps_layout
from hw.soc.dma import ADDR_BITS, DATA_BITS, dma_command_layout

__all__ = ["PoolUnit", "pool_window_layout", "divisor_layout", "DIVISORS", "SUM_BITS",
           "ROW_BANKS", "ROW_DEPTH"]

#: Entries of the divisor memory: an AVGPOOL window has at most this many taps (entry n - 1 is
#: the (mult, shift) of a window that averages n values; GAP uses entry 0 only).
DIVISORS = 256
#: Width of a window's running sum: int8 values of at most 2**16 taps.
SUM_BITS = 24
#: Stages of the finished-window path after the window's last tap is read: the taps registered
#: (the IFM bank's read data, before the running maximum or sum: the placed ECP5 system's
#: worst path, docs/boards.md), divisor read, product, the requantization's window select
#: (hw.core.requant, its rounding and saturation in the stage after, with the beat packing:
#: issue 15's timing work on the ECP5).
TAIL_STAGES = 4
#: Row reuse: a max-pool whose windows overlap vertically (a vertical stride of 1 and a window of
#: 2 .. ROW_BANKS rows, or a stride of 2 and 3 rows) keeps every window row's maximum (per
#: channel of a line, over the row's taps) of its last rows in ROW_BANKS memories of ROW_DEPTH
#: lines, one per map row mod kh, at pooled column x and line cl (x * lines + cl): a pooled row
#: after a band's first reads only its window's last `sh` rows (the rows the window before did
#: not read); the other rows' maxima come from the memories. When a pooled row's lines (pooled
#: columns x lines of channel groups) exceed ROW_DEPTH, every window reads all its rows.
ROW_BANKS = 3
ROW_DEPTH = 512
#: Width of the walker's signed pixel indices (maps of up to 2**12 x 2**12, windows reaching
#: into the padding).
IDX_BITS = 28


def pool_window_layout() -> data.StructLayout:
    """A pooling window: kernel, stride, explicit padding (top, left, bottom, right)."""
    return data.StructLayout({
        "kh": unsigned(16), "kw": unsigned(16), "sh": unsigned(8), "sw": unsigned(8),
        "pt": unsigned(8), "pl": unsigned(8), "pb": unsigned(8), "pr": unsigned(8),
    })


def divisor_layout() -> data.StructLayout:
    return data.StructLayout({"mult": unsigned(16), "shift": unsigned(6)})


class PoolUnit(wiring.Component):
    """``start`` (one cycle; the ``map_h`` x ``map_w`` map of ``gk`` channel groups is in the IFM
    store) pools it with ``window``: it counts the pooled size (floor, or with ``ceil`` ONNX's
    ceil_mode: a window may reach past the padding but must start inside the input or its top /
    left padding; ``rows`` the pooled rows), issues one DMA write ``cmd`` for them at ``base``
    plus ``row0`` pooled rows (a band of a larger map: the sequencer gives the band's rows as
    the map and its padding in ``window``; no command if no window fits), then walks the
    windows (pooled row, column, line of channel groups outer; window row, then the row's
    taps ``pool_taps`` pixel indices at a time, inner), reading per cycle one IFM line
    (``words_per_line`` channel groups) of ``pool_taps`` consecutive pixels through ``rd_*``
    (the core's IFM read port: the first pixel index, ``y * map_w + x`` rounded down to a
    multiple of ``pool_taps``, and the line) and packing each window's words (a pixel's last
    line may hold fewer than ``words_per_line``) into whole ``data`` beats. A window row whose
    first tap has pixel index i takes ``((i mod pool_taps) + kw - 1) // pool_taps + 1`` cycles.

    Maximum (``average`` low): padding never wins. Average: the window's int8 sum times the
    divisor of its count n (taps inside the input, or with ``count_pad`` inside the padded
    input), ``sat_int8((sum * mult + (1 << (shift - 1))) >> shift)``; the divisors are written
    before through ``div_wr_*`` (entry n - 1; ``one_divisor``: entry 0 for every window, global
    average pooling). ``relu`` clamps the result at 0. ``done`` is high for the one cycle in
    which the last beat has gone and the DMA is idle (``dma_busy`` low)."""

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "start": In(1), "done": Out(1), "dma_busy": In(1),
            "map_h": In(16), "map_w": In(16), "gk": In(16), "row0": In(16), "rows": Out(16),
            "window": In(pool_window_layout()), "ceil": In(1), "average": In(1),
            "count_pad": In(1), "one_divisor": In(1), "relu": In(1),
            "base": In(ADDR_BITS + 1),
            "div_wr_addr": In(range(DIVISORS)), "div_wr_data": In(divisor_layout()),
            "div_wr_en": In(1),
            "rd_pixel": Out(unsigned(2 * DIM_BITS)), "rd_line": Out(unsigned(DIM_BITS)),
            "rd_en": Out(1),
            "rd_data": In(ifm_taps_layout(config)),
            "cmd": Out(stream.Signature(dma_command_layout())),
            "data": Out(stream.Signature(DATA_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lg_m = cfg.group.bit_length() - 1
        walk = {name: Signal(16, name=f"p_{name}") for name in ("y", "x", "cl", "wy")}
        # row reuse: the row memory of the window's first row, the pooled (x, cl)'s address
        walk |= {"base": Signal(range(ROW_BANKS), name="p_base"),
                 "ra": Signal(range(ROW_DEPTH), name="p_ra")}
        walk |= {"y0": Signal(signed(20), name="p_y0"), "x0": Signal(signed(20), name="p_x0"),
                 # the tap of the chunk's first pixel in its window row (-(taps - 1) ..)
                 "tb": Signal(signed(18), name="p_tb")}
        # pixel indices (signed: windows reach into the padding): the pooled row's first
        # window's top-left tap, the window's, the window row's first tap
        walk |= {n: Signal(signed(IDX_BITS), name=f"p_{n}") for n in ("irow", "iw", "ir")}
        run = Signal()
        size = {"poh": self.rows, "pow": Signal(16), "words": Signal(40),
                "row_words": Signal(32), "offset": Signal(48), "gl": Signal(16),
                "last_words": Signal(range(cfg.ifm_words_per_line + 1)),
                "row_step": Signal(signed(IDX_BITS)), "idx0": Signal(signed(IDX_BITS)),
                "row_lines": Signal(32), "skip": Signal(signed(IDX_BITS)),
                "reuse": Signal(name="pool_reuse"),
                # (row reuse, set with it: the window row a later window starts at, kh - sh;
                # whether the stride is 2; whether the window has 3 rows)
                "wy1": Signal(range(ROW_BANKS), name="pool_wy1"),
                "sh2": Signal(name="pool_sh2"), "kh3": Signal(name="pool_kh3")}
        # `queued`: a finished beat waiting for the output register (`data`): the walk stalls
        # only while both hold one, never for the cycle the DMA takes a beat.
        out = {"emitted": Signal(40), "fill": Signal(range(cfg.ifm_words_per_line)),
               "queued": Signal(name="pool_queued"), "beat": Signal(DATA_BITS, name="pool_beat")}
        self._sequence(m, walk, run, size, out, lg_m)
        self._datapath(m, walk, run, size, out)
        return m

    def _windows_left(self, end, n, k, s, before, after):
        """Whether another window fits an axis of `n` values: `end` is the next window's end
        (its start + k) in padded coordinates."""
        span = n + before + after
        return Mux(self.ceil, (end < span + s) & (end - k < n + before), end <= span)

    def _sequence(self, m, walk, run, size, out, lg_m):
        """Size the output by counting windows, issue the write command, wait for the last
        beat."""
        win = self.window
        cnt_h = Signal(24)
        cnt_w = Signal(24)
        more_h = self._windows_left(cnt_h, self.map_h, win.kh, win.sh, win.pt, win.pb)
        more_w = self._windows_left(cnt_w, self.map_w, win.kw, win.sw, win.pl, win.pr)
        with m.FSM(name="pool"):
            with m.State("IDLE"):
                with m.If(self.start):
                    wpl = self._config.ifm_words_per_line
                    sub = wpl.bit_length() - 1
                    m.d.sync += [cnt_h.eq(win.kh), cnt_w.eq(win.kw), size["poh"].eq(0),
                                 size["pow"].eq(0),
                                 size["gl"].eq((self.gk + wpl - 1) >> sub),
                                 size["last_words"].eq(((self.gk - 1) & (wpl - 1)) + 1)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                with m.If(more_h):
                    m.d.sync += [cnt_h.eq(cnt_h + win.sh), size["poh"].eq(size["poh"] + 1)]
                with m.If(more_w):
                    m.d.sync += [cnt_w.eq(cnt_w + win.sw), size["pow"].eq(size["pow"] + 1)]
                with m.If(~more_h & ~more_w):
                    m.d.sync += [size["row_words"].eq(size["pow"] * self.gk),
                                 size["row_lines"].eq(size["pow"] * size["gl"])]
                    m.next = "PLACE"
            with m.State("PLACE"):
                # (row reuse: from a window's first row's first tap to that of the first row
                # it reads, kh - sh map rows: 1 or 2 for the windows reuse takes)
                two = (win.kh == 3) & (win.sh == 1)
                skip = Mux(two, self.map_w * 2, self.map_w)
                m.d.sync += [size["words"].eq(size["poh"] * size["row_words"]),
                             size["offset"].eq(self.row0 * size["row_words"]),
                             size["row_step"].eq(win.sh * self.map_w),
                             size["idx0"].eq(-(win.pt * self.map_w) - win.pl),
                             size["skip"].eq(skip), size["wy1"].eq(Mux(two, 2, 1)),
                             size["sh2"].eq(win.sh == 2), size["kh3"].eq(win.kh == 3),
                             size["reuse"].eq(~self.average
                                              & (((win.sh == 1) & (win.kh >= 2))
                                                 | ((win.sh == 2) & (win.kh == 3)))
                                              & (win.kh <= ROW_BANKS)
                                              & (size["row_lines"] <= ROW_DEPTH)),
                             out["emitted"].eq(0)]
                with m.If((size["poh"] == 0) | (size["row_words"] == 0)):
                    m.d.sync += size["words"].eq(0)
                    m.next = "RUN"
                with m.Else():
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [self.cmd.valid.eq(1),
                             self.cmd.payload.addr.eq(self.base + (size["offset"] << lg_m)),
                             self.cmd.payload.length.eq(size["words"] << lg_m)]
                with m.If(self.cmd.ready):
                    # A band that starts inside a beat (its first pooled row's words do not
                    # fill whole beats): the packing starts at the lane of its first byte.
                    m.d.sync += out["fill"].eq(self.cmd.payload.addr[lg_m:LANE_BITS])
                    m.d.sync += [run.eq(1), walk["y0"].eq(-win.pt), walk["x0"].eq(-win.pl)]
                    m.d.sync += [walk[n].eq(0) for n in ("y", "x", "cl", "wy", "base", "ra")]
                    m.d.sync += self._row_start(walk, size["idx0"], ("irow", "iw", "ir"))
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If((out["emitted"] == size["words"]) & (out["fill"] == 0)
                          & ~out["queued"] & ~self.data.valid & ~self.dma_busy):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"

    def _datapath(self, m, walk, run, size, out):
        """Window walker -> IFM read of `pool_taps` pixels' lines -> running maximum or sum per
        channel -> divisor -> beat packing, one read per cycle while no beat waits."""
        cfg = self._config
        taps = cfg.pool_taps
        lanes = cfg.group * cfg.ifm_words_per_line
        win = self.window
        advance = ~(out["queued"] & self.data.valid)
        # (row reuse: `row_first` / `row_last` a window row's first / last read, `bank` the row
        # memory of its map row, `later` a window that reads its last row only)
        flags = data.StructLayout({"valid": 1, "first": 1, "last": 1, "last_line": 1,
                                   "inb": taps, "inpad": taps, "row_first": 1, "row_last": 1,
                                   "bank": range(ROW_BANKS), "later": 1})
        # (stage 2 holds the read, stage 2r its registered taps: the running maximum or sum)
        st1, st2, st2r, st3 = (Signal(flags, name=f"pool_st{i}") for i in (1, 2, "2r", 3))
        idx1 = Signal(signed(IDX_BITS))
        cl1 = Signal(16)
        ra1, ra2, ra3 = (Signal(range(ROW_DEPTH), name=f"pool_ra{i}") for i in (1, 2, 3))
        tap_r = Signal.like(self.rd_data, name="pool_taps_r")
        later = size["reuse"] & (walk["y"] != 0)
        bank = walk["base"] + walk["wy"]
        acc = Signal(data.ArrayLayout(signed(SUM_BITS), lanes))
        count = Signal(17)            # the window's taps that count for its average
        y = walk["y0"] + walk["wy"]
        row_in = (y >= 0) & (y < self.map_h)
        row_pad = y < self.map_h + win.pb
        # Slot j holds the window row's tap tb + j, at map column x0 + tb + j: the slots of
        # the row's taps, of the map and of the padded map are ranges (`tap_bounds`).
        first_x = walk["x0"] + walk["tb"]
        t_lo, t_hi = tap_bounds(walk["tb"], win.kw, taps)
        x_lo, x_hi = tap_bounds(first_x, self.map_w, taps)
        p_hi = tap_bounds(first_x, self.map_w + win.pr, taps)[1]
        inb, inpad = [], []
        for j in range(taps):
            tap = (t_lo <= j) & (j < t_hi)
            inb.append(tap & row_in & (x_lo <= j) & (j < x_hi))
            inpad.append(tap & row_pad & (j < p_hi))
        with m.If(advance):
            m.d.sync += [
                st1.valid.eq(run),
                st1.inb.eq(Cat(*inb)), st1.inpad.eq(Cat(*inpad)),
                st1.first.eq((walk["wy"] == Mux(later, size["wy1"], 0)) & (walk["tb"] <= 0)),
                st1.row_first.eq(walk["tb"] <= 0), st1.row_last.eq(walk["tb"] + taps >= win.kw),
                st1.bank.eq(Mux(bank >= win.kh, bank - win.kh, bank)), st1.later.eq(later),
                ra1.eq(walk["ra"]), ra2.eq(ra1), ra3.eq(ra2),
                st1.last.eq((walk["wy"] + 1 == win.kh) & (walk["tb"] + taps >= win.kw)),
                st1.last_line.eq(walk["cl"] + 1 == size["gl"]),
                idx1.eq(walk["ir"] + walk["tb"]), cl1.eq(walk["cl"]),
                st2.eq(st1), st2r.eq(st2), st3.eq(st2r), tap_r.eq(self.rd_data),
            ]
        m.d.comb += [self.rd_pixel.eq(idx1), self.rd_line.eq(cl1),
                     self.rd_en.eq(advance & st1.valid & st1.inb.any())]
        # (stage 2 holds the read; its data is on rd_data while stage 2 advances, into `tap_r`
        # with stage 2r)
        counts = Mux(self.count_pad, st2r.inpad, st2r.inb)
        rows = self._row_memories(m, advance, st2r, ra2, ra3, size, lanes)
        # (st2r.bank at a later window's first read: that of its row kh - sh)
        hrow = Signal(data.ArrayLayout(signed(8), lanes))   # the window row's maximum so far
        with m.If(advance & st2r.valid):
            m.d.sync += count.eq(Mux(st2r.first, 0, count)
                                 + sum(counts[j] for j in range(taps)))
            for lane in range(lanes):
                taken = [Mux(st2r.inb[j], tap_r[j][lane // cfg.group][lane % cfg.group],
                             Mux(self.average, 0, -128)) for j in range(taps)]
                with m.If(self.average):
                    m.d.sync += acc[lane].eq(Mux(st2r.first, 0, acc[lane]) + sum(taken))
                with m.Else():
                    # a maximum is an int8: padding and taps past the row never win; the
                    # window's other rows come from the row memories (row reuse)
                    row_best = _maximum(taken + [Mux(st2r.row_first, -128, hrow[lane])])
                    m.d.comb += rows.row_max[lane].eq(row_best)
                    m.d.sync += hrow[lane].eq(row_best)
                    before = Mux(st2r.first, Mux(st2r.later, rows.others[lane], -128),
                                 acc[lane][:8].as_signed())
                    best = _maximum([row_best, before])
                    m.d.sync += acc[lane].eq(best)
        word = self._divide(m, advance, st3, acc, count)
        self._pack(m, advance, word, size, out)
        self._walk(m, walk, run, size, advance)

    def _row_memories(self, m, advance, st2, ra1, ra2, size, lanes):
        """Row reuse: the ROW_BANKS row memories, read at the address of the stage before `st2`
        (`ra1`; the data with `st2`, the stage that takes the maximum), written with a window
        row's maximum (`row_max`, `st2`'s row, at `ra2`) at its last read, so that the next
        window's read of that line sees it (a transparent read); `others`: the maximum of the
        window's rows it does not read, for a window that reads its last `sh` rows only: at
        stride 1 every memory of a map row of the window but the one `st2` reads, at stride 2
        (3 rows) the memory of the row above it."""
        reuse = size["reuse"]
        line = data.ArrayLayout(signed(8), lanes)
        ns = SimpleNamespace(row_max=Signal(line, name="pool_row_max"),
                             others=Signal(line, name="pool_row_others"))
        words = []
        for j in range(ROW_BANKS):
            mem = Memory(shape=line, depth=ROW_DEPTH, init=[])
            m.submodules[f"pool_rows{j}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            m.d.comb += [rd.addr.eq(ra1), rd.en.eq(advance),
                         wr.addr.eq(ra2), wr.data.eq(ns.row_max),
                         wr.en.eq(advance & st2.valid & st2.row_last & reuse & (st2.bank == j))]
            # (reuse has 2 or 3 window rows: memory 2 is a window row only with 3)
            above = j == Mux(st2.bank == 0, Mux(size["kh3"], 2, 1), st2.bank - 1)
            row = 1 if j < 2 else size["kh3"]
            words.append((rd.data, row & (st2.bank != j) & (~size["sh2"] | above)))
        for lane in range(lanes):
            m.d.comb += ns.others[lane].eq(_maximum(
                [Mux(use, word[lane], -128) for word, use in words]))
        return ns

    def _divide(self, m, advance, st3, acc, count):
        """A finished window (stage 3, last tap): its divisor read (stage 4), its sums times the
        multiplier (stage 5), the requantization's window select (stage 6); returns (valid,
        whether it is its pixel's last line, the int8 results of the line's channels, rounded
        and saturated from stage 6's registers)."""
        lanes = len(acc)
        m.submodules.divisors = divs = Memory(shape=divisor_layout(), depth=DIVISORS, init=[])
        wr, rd = divs.write_port(), divs.read_port(transparent_for=())
        m.d.comb += [wr.addr.eq(self.div_wr_addr), wr.data.eq(self.div_wr_data),
                     wr.en.eq(self.div_wr_en),
                     rd.addr.eq(Mux(self.one_divisor, 0, count - 1)), rd.en.eq(advance)]
        v4, v5, v6 = Signal(name="pool_v4"), Signal(name="pool_v5"), Signal(name="pool_v6")
        ll4, ll5, ll6 = Signal(name="pool_ll4"), Signal(name="pool_ll5"), Signal(name="pool_ll6")
        word4 = Signal(data.ArrayLayout(signed(SUM_BITS), lanes))
        prod_bits = SUM_BITS + 16                 # a sum times a 16-bit unsigned multiplier
        prod5 = Signal(data.ArrayLayout(signed(prod_bits), lanes))
        # A maximum goes through the same path with multiplier 1 and shift 0.
        mult = Mux(self.average, rd.data.mult, 1)
        with m.If(advance):
            m.d.sync += [v4.eq(st3.valid & st3.last), ll4.eq(st3.last_line), word4.eq(acc),
                         v5.eq(v4), ll5.eq(ll4), v6.eq(v5), ll6.eq(ll5)]
            m.d.sync += [prod5[i].eq(word4[i] * mult) for i in range(lanes)]
        # (the shift's clamp and mask registered with stage 5)
        controls = ShiftControls(m, Mux(self.average, rd.data.shift, 0), prod_bits,
                                 name="pool", en=advance)
        out = [round_shift_saturate(m, prod5[i], controls, self.relu, name=f"pool{i}",
                                    en=advance)
               for i in range(lanes)]
        return v6, ll6, out

    def _pack(self, m, advance, word, size, out):
        """A window's words (its line's; the pixel's last line only its `last_words`) appended
        to the bytes waiting for a beat: a full beat is sent, the rest kept; the last words of
        the pass are sent in a partial beat (the DMA writes only the command's bytes)."""
        cfg = self._config
        M, wpl = cfg.group, cfg.ifm_words_per_line
        valid, last_line, lanes = word
        beat = 8 * M * wpl
        held = Signal(beat, name="pool_held")           # bytes waiting, `fill` words
        fill, emitted = out["fill"], out["emitted"]
        n = Signal(range(wpl + 1))
        m.d.comb += n.eq(Mux(last_line, size["last_words"], wpl))
        masked = Signal(beat)
        m.d.comb += masked.eq(Cat(*(Mux(i // M < n, lane.as_unsigned(), 0)
                                    for i, lane in enumerate(lanes))))
        joined = Signal(2 * beat)
        with m.Switch(fill):
            for f in range(wpl):
                with m.Case(f):
                    m.d.comb += joined.eq(held | (masked << (8 * M * f)))
        total = fill + n
        queued, queue = out["queued"], out["beat"]
        # A finished beat (`push`, `pbeat`) goes to the output register when that is free or
        # being taken, else it waits in the queue; the queued beat moves on first. The walk
        # advances only when it is sure to (`advance`: not both full), so a beat a cycle flows
        # while the DMA takes one a cycle.
        free = ~self.data.valid | self.data.ready
        move = queued & free
        push = Signal(name="pool_push")
        pbeat = Signal(beat, name="pool_pbeat")
        with m.If(advance & valid):
            m.d.sync += emitted.eq(emitted + n)
            with m.If(total >= wpl):
                m.d.comb += [push.eq(1), pbeat.eq(joined[:beat])]
                m.d.sync += [held.eq(joined[beat:]), fill.eq(total - wpl)]
            with m.Else():
                m.d.sync += [held.eq(joined[:beat]), fill.eq(total)]
        with m.Elif(~queued & (emitted == size["words"]) & (fill != 0)):
            m.d.comb += [push.eq(1), pbeat.eq(held)]
            m.d.sync += [held.eq(0), fill.eq(0)]
        with m.If(move):
            m.d.sync += [self.data.payload.eq(queue), self.data.valid.eq(1)]
            with m.If(push):
                m.d.sync += queue.eq(pbeat)
        with m.Elif(push & free):
            m.d.sync += [self.data.payload.eq(pbeat), self.data.valid.eq(1)]
        with m.Elif(push):
            m.d.sync += queue.eq(pbeat)
        with m.Elif(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.sync += queued.eq(Mux(move, push, queued | (push & ~free)))

    def _row_start(self, walk, index, names):
        """Assignments that start a window row whose first tap has pixel index `index`: the
        index into `names`, the chunk's first tap at minus its offset in its aligned group."""
        lg = self._config.pool_taps.bit_length() - 1
        offset = -index[:lg].as_unsigned() if lg else 0
        return [walk[n].eq(index) for n in names] + [walk["tb"].eq(offset)]

    def _walk(self, m, walk, run, size, advance):
        win = self.window
        taps = self._config.pool_taps
        # Row reuse: a pooled row after the first starts each window at its row kh - sh.
        later = size["reuse"] & (walk["y"] != 0)
        skip = Mux(later, size["skip"], 0)
        with m.If(run & advance):
            with m.If(walk["tb"] + taps < win.kw):
                m.d.sync += walk["tb"].eq(walk["tb"] + taps)
            with m.Elif(walk["wy"] + 1 != win.kh):
                m.d.sync += walk["wy"].eq(walk["wy"] + 1)
                m.d.sync += self._row_start(walk, walk["ir"] + self.map_w, ("ir",))
            with m.Else():
                m.d.sync += [walk["wy"].eq(Mux(later, size["wy1"], 0)),
                             walk["ra"].eq(walk["ra"] + 1)]
                with m.If(walk["cl"] + 1 != size["gl"]):
                    m.d.sync += walk["cl"].eq(walk["cl"] + 1)
                    m.d.sync += self._row_start(walk, walk["iw"] + skip, ("ir",))
                with m.Else():
                    m.d.sync += walk["cl"].eq(0)
                    with m.If(walk["x"] + 1 != size["pow"]):
                        m.d.sync += [walk["x"].eq(walk["x"] + 1),
                                     walk["x0"].eq(walk["x0"] + win.sw),
                                     walk["iw"].eq(walk["iw"] + win.sw)]
                        m.d.sync += self._row_start(walk, walk["iw"] + win.sw + skip, ("ir",))
                    with m.Else():
                        m.d.sync += [walk["x"].eq(0), walk["x0"].eq(-win.pl),
                                     walk["ra"].eq(0)]
                        self._next_row(m, walk, size, run)

    def _next_row(self, m, walk, size, run):
        """The walk's next pooled row (its first window), or the walk's end."""
        win = self.window
        step = walk["base"] + 1 + size["sh2"]
        rows_kh = Mux(size["kh3"], 3, 2)
        with m.If(walk["y"] + 1 != size["poh"]):
            nxt = walk["irow"] + size["row_step"]
            reuse = size["reuse"]
            m.d.sync += [walk["y"].eq(walk["y"] + 1), walk["y0"].eq(walk["y0"] + win.sh),
                         walk["irow"].eq(nxt), walk["iw"].eq(nxt),
                         walk["wy"].eq(Mux(reuse, size["wy1"], 0)),
                         # (the bank of the window's first map row, mod kh: with reuse kh is
                         # 2 or 3 and sh 1 or 2; without it the bank is never read)
                         walk["base"].eq(Mux(step >= rows_kh, step - rows_kh, step))]
            m.d.sync += self._row_start(walk, nxt + Mux(reuse, size["skip"], 0), ("ir",))
        with m.Else():
            m.d.sync += run.eq(0)

def _maximum(values):
    """The largest of signed values, as a tree of comparisons."""
    while len(values) > 1:
        pairs = [Mux(a > b, a, b) for a, b in zip(values[::2], values[1::2])]
        values = pairs + values[len(pairs) * 2:]
    return values[0]
