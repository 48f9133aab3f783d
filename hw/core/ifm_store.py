"""The IFM store: the layer input on chip once, in `banks` banks, read by every column at once.

Each column needs the group of its own pixel in the same cycle. Instead of giving every column a
copy of the input, the store places each pixel in one bank so that the pixels a tile reads in one
cycle always lie in different banks, and turns the banks' words to the columns with a rotator.

Placement (SPEC section 4's "IFM buffer", docs/architecture.md "IFM store"): with stride s (a
power of two), input pixel (y, x) belongs to phase ``(y mod s, x mod s)`` and has phase
coordinates ``(Y, X) = (y div s, x div s)``. Its *pixel index* is

    lam(y, x) = ((y mod s) * s + (x mod s)) * RS + Y * V + X

where V = max(ceil(W / s), OW) is the virtual row width and RS the phase region size, a multiple
of the bank count B (a power of two >= cols). The pixel lives in bank ``lam mod B``, lines
``(lam div B) * GL`` .. ``+ GL - 1`` (GL = lines per pixel: its groups, 16 / M to a line).

The window tap (kh, kw) of output pixel (oy, ox) is input pixel (oy s + kh - pad, ox s + kw -
pad), whose index is ``tau(kh, kw) + pi(oy, ox)`` with ``pi = oy * V + ox``: a constant per tap
plus the output pixel's virtual raster index. A tile's columns are consecutive output pixels, so
(when V = OW, or when the tile stays in one output row) their pixel indices are consecutive and
fall in consecutive banks: column j reads bank ``(Lam + j) mod B`` where Lam is column 0's
index. Every bank reads one line (two candidate addresses: Lam's line, or the next for the banks
below Lam mod B), the same word of it for every bank, and a rotation by Lam mod B hands the words
to the columns. Layers whose ceil(W / s) exceeds OW (valid convolutions) use V = ceil(W / s);
their tiles stay in one output row (`seg`).

Everything here is an index in (hi, lo) form: ``hi = (lam div B) * GL`` (a line address, modulo
the bank depth, a power of two) and ``lo = lam mod B``; the store, the loader and the decoder
only ever add such pairs, so no division or multiplication happens per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import BEAT_BYTES, LANE_BITS, SenseConfig
from hw.layouts import DIM_BITS, KERNEL_BITS, ifm_taps_layout, ifm_word_layout

__all__ = ["IfmStore", "IfmGeometry", "ifm_geometry", "STRIDES", "ifm_geom_layout",
           "ifm_constants_layout", "ifm_col_layout", "line_bits", "bank_bits", "lo_bits",
           "load_pieces", "load_row_pieces", "pair_row_pieces", "pair_share", "ifm_seg"]

#: Strides the store places (phases are bit fields of the coordinates).
STRIDES = (1, 2, 4, 8)
#: Bits of a pixel index kept while computing (signed: padding taps are negative).
LAM_BITS = 2 * DIM_BITS + 2 * 3 + 2


def line_bits(config: SenseConfig) -> int:
    """Bits of a bank line address (the depth is a power of two, so line arithmetic wraps)."""
    return max(1, (config.ifm_bank_lines - 1).bit_length())


def _lg(n: int) -> int:
    return n.bit_length() - 1


def bank_bits(config: SenseConfig) -> int:
    """log2 of the bank count: the bits of a pixel index's ``lo`` part (0 for one bank)."""
    return _lg(config.ifm_banks)


def lo_bits(config: SenseConfig) -> int:
    """Width of a ``lo`` signal (at least one bit)."""
    return max(1, bank_bits(config))


@dataclass(frozen=True)
class IfmGeometry:
    """The placement of one layer input (ints; the gateware computes the same, checked by
    gateware_tests/test_ifm_store.py)."""
    banks: int
    wpl: int          # words (channel groups) per line
    stride: int
    xn: int           # ceil(W / s), ceil(H / s): phase coordinates
    yn: int
    v: int            # virtual row width
    seg: bool         # tiles stay in one output row (ceil(W / s) > OW)
    gl: int           # lines per pixel
    rs: int           # phase region size, pixels (a multiple of banks)
    lines: int        # lines of every bank the input occupies
    tau0: int         # pixel index of tap (0, 0) of output pixel (0, 0), minus pi = 0

    def lam(self, y, x):
        s = self.stride
        return ((y % s) * s + x % s) * self.rs + (y // s) * self.v + x // s

    def place(self, y, x, cg):
        """(bank, line, word) of channel group cg of input pixel (y, x)."""
        lam = self.lam(y, x)
        return (lam % self.banks, (lam // self.banks) * self.gl + cg // self.wpl,
                cg % self.wpl)

    def tau(self, kh, kw, pad, pad_top=None):
        """Pixel index offset of tap (kh, kw) (rows padded by `pad_top`, default `pad`)."""
        s, pt = self.stride, pad if pad_top is None else pad_top
        return (((kh - pt) % s) * s + (kw - pad) % s) * self.rs + ((kh - pt) // s) * self.v \
            + (kw - pad) // s

    def fits(self, config: SenseConfig) -> bool:
        return self.lines <= config.ifm_bank_lines


def ifm_seg(in_w: int, stride: int, out_w: int) -> bool:
    """Whether a layer's tiles stay in one output row: its input has more phase columns
    (ceil(W / s)) than its output pixels in a row (a valid convolution)."""
    return -(-in_w // stride) > out_w


def ifm_geometry(in_h, in_w, in_groups, stride, pad, out_w, config: SenseConfig,
                 pad_top=None) -> IfmGeometry:
    """Where a layer input of in_groups x in_h x in_w (groups of M channels) sits in the store
    for a convolution with this stride and padding and output width (`pad_top`: the rows above
    the input that are padding, default `pad`; a band of a tiled layer has none but the
    first)."""
    if stride not in STRIDES:
        raise ValueError(f"the IFM store places strides {STRIDES}, not {stride}")
    b, wpl = config.ifm_banks, config.ifm_words_per_line
    xn, yn = -(-in_w // stride), -(-in_h // stride)
    v = max(xn, out_w)
    gl = -(-in_groups // wpl)
    rs = -(-(yn * v) // b) * b
    lines = stride * stride * (rs // b) * gl
    pt = pad if pad_top is None else pad_top
    ph0, d0 = (-pad) % stride, (-pad) // stride
    phy, dy = (-pt) % stride, (-pt) // stride
    tau0 = (phy * stride + ph0) * rs + dy * v + d0
    return IfmGeometry(b, wpl, stride, xn, yn, v, xn > out_w, gl, rs, lines, tau0)


def _pixel_pieces(start: int, pixel_bytes: int) -> int:
    """The loader's pieces for one pixel whose first byte is at beat byte `start`: each ends at
    the end of a beat, of the pixel or of one of its lines, whichever comes first."""
    pieces, pos, off = 0, start, 0
    while off < pixel_bytes:
        n = min(BEAT_BYTES - pos % BEAT_BYTES, pixel_bytes - off, BEAT_BYTES - off % BEAT_BYTES)
        pos, off, pieces = pos + n, off + n, pieces + 1
    return pieces


def _run_pieces(pixels: int, pixel_bytes: int, start: int, memo: dict) -> int:
    """Pieces of `pixels` consecutive pixels from beat byte `start` (a pixel's pieces depend
    only on the beat byte it starts at: `memo` keeps them per byte)."""
    total, pos = 0, start % BEAT_BYTES
    for _ in range(pixels):
        if pos not in memo:
            memo[pos] = _pixel_pieces(pos, pixel_bytes)
        total += memo[pos]
        pos = (pos + pixel_bytes) % BEAT_BYTES
    return total


def load_pieces(pixels: int, pixel_bytes: int, lane: int = 0) -> int:
    """Cycles the loader takes for a tensor of `pixels` pixels of `pixel_bytes` bytes starting at
    byte `lane` of its first beat (one piece a cycle: the bytes of one beat that belong to one
    line of one pixel)."""
    return _run_pieces(pixels, pixel_bytes, lane, {})


def load_row_pieces(rows: int, in_w: int, pixel_bytes: int, lane: int = 0) -> list[int]:
    """The loader's pieces (`load_pieces`) up to the end of each of the first `rows` input
    rows of `in_w` pixels: element r - 1 is `load_pieces(r * in_w, pixel_bytes, lane)` (a row's
    pieces depend only on the beat byte it starts at)."""
    per_pixel, per_row = {}, {}
    out, total, pos = [], 0, lane % BEAT_BYTES
    for _ in range(rows):
        if pos not in per_row:
            per_row[pos] = _run_pieces(in_w, pixel_bytes, pos, per_pixel)
        total += per_row[pos]
        pos = (pos + in_w * pixel_bytes) % BEAT_BYTES
        out.append(total)
    return out


def pair_share(n, half: int, second: bool = False):
    """The pixels of an `n`-pixel pair load (an Amaranth value) that stream `second` (0: the
    first, on ``beat``; 1: on ``beat2``) places: blocks of `half` (B / 2, a power of two)
    pixels, the even blocks the first stream's, the odd ones the second's
    (`pair_row_pieces` is the model's count)."""
    lg_p = _lg(half)
    rest = n[:lg_p + 1]
    mine = Mux(rest > half, rest - half, 0) if second else Mux(rest > half, half, rest)
    return ((n >> (lg_p + 1)) << lg_p) + mine


def pair_row_pieces(rows: int, in_w: int, line_beats: int, half: int, b_wait: int) -> list[int]:
    """A pair load's cycles (`IfmStore` with ``pair``) up to the end of each of the first `rows`
    rows of `in_w` pixels of `line_beats` beats: blocks of `half` pixels (B / 2), the even ones
    a beat a cycle from cycle 0, the odd ones a beat a cycle from cycle `b_wait`."""
    out = []
    for r in range(1, rows + 1):
        full, rest = divmod(r * in_w, 2 * half)
        on_a = full * half + min(rest, half)
        on_b = full * half + max(rest - half, 0)
        out.append(max(on_a * line_beats, b_wait + on_b * line_beats if on_b else 0))
    return out


def ifm_geom_layout() -> data.StructLayout:
    """What the store needs to place a layer input."""
    return data.StructLayout({
        "in_h": unsigned(DIM_BITS), "in_w": unsigned(DIM_BITS), "in_groups": unsigned(DIM_BITS),
        "stride": unsigned(KERNEL_BITS), "pad": unsigned(KERNEL_BITS),
        "pad_top": unsigned(KERNEL_BITS), "out_w": unsigned(DIM_BITS),
    })


def ifm_constants_layout(config: SenseConfig) -> data.StructLayout:
    """The per-layer constants the loader and the decoder step with (a line address is modulo
    the bank depth; ``lo`` fields are modulo the bank count)."""
    lb, bb = line_bits(config), lo_bits(config)
    return data.StructLayout({
        "ls": unsigned(2),                 # log2 stride
        "gl": unsigned(lb + 1),            # lines per pixel
        "rl": unsigned(lb),                # lines per phase region (RS / B * GL)
        "rl_s": unsigned(lb),              # s * rl: a pixel row's step within a phase region
        "rl_x": unsigned(lb),              # (s - 1) * rl: back from the last phase region
        "rl_y": unsigned(lb),              # (s - 1) * s * rl (the steps as shifts, registered)
        "v": unsigned(DIM_BITS + 1),       # virtual row width
        "v_hi": unsigned(lb),              # (V div B) * GL
        "v_lo": unsigned(bb),              # V mod B
        "tau0_hi": unsigned(lb), "tau0_lo": unsigned(bb),
        "ph0": unsigned(3),                # phase of tap 0's column ((-pad) mod s)
        "ph0y": unsigned(3),               # and of its row ((-pad_top) mod s)
        "seg": unsigned(1),
        "lines": unsigned(2 * DIM_BITS + 8),
    })


def ifm_col_layout(config: SenseConfig) -> data.StructLayout:
    """One column's read: its word and whether it is nonzero."""
    return data.StructLayout({"word": ifm_word_layout(config), "nz": 1})


#: Cycles after which `geometry_regs` is valid once its input is stable.
SETTLE = 4


def geometry_regs(m, g, config: SenseConfig, name: str):
    """`ifm_geometry` in gateware: registers that follow the (stable) `ifm_geom_layout` value
    `g`, each from earlier ones, valid SETTLE cycles after `g` settles (the store latches its
    geometry; LayerCheck feeds a descriptor's and checks ``lines``)."""
    k = Signal(ifm_constants_layout(config), name=f"{name}_k")
    b, lg_wpl = config.ifm_banks, _lg(config.ifm_words_per_line)
    bb = _lg(b)
    ls = Signal(2, name=f"{name}_ls")
    m.d.comb += ls.eq(Mux(g.stride[3], 3, Mux(g.stride[2], 2, Mux(g.stride[1], 1, 0))))
    mask = (Const(1, 4) << ls) - 1
    xn, yn = Signal(DIM_BITS + 1, name=f"{name}_xn"), Signal(DIM_BITS + 1, name=f"{name}_yn")
    gl = Signal(DIM_BITS + 1, name=f"{name}_gl")
    yv = Signal(2 * DIM_BITS + 2, name=f"{name}_yv")            # yn * v
    rpg = Signal(3 * DIM_BITS + 3, name=f"{name}_rpg")          # rp * gl (rp = RS / B)
    q = Signal(6, name=f"{name}_q")                             # ph0y * s + ph0
    d0 = Signal(signed(KERNEL_BITS + 2), name=f"{name}_d0")
    t = Signal(signed(LAM_BITS), name=f"{name}_t")
    d0y = Signal(signed(KERNEL_BITS + 2), name=f"{name}_d0y")
    m.d.comb += [d0.eq((-g.pad) >> ls), d0y.eq((-g.pad_top) >> ls)]
    m.d.sync += [
        # cycle 1
        k.ls.eq(ls), xn.eq((g.in_w + mask) >> ls), yn.eq((g.in_h + mask) >> ls),
        gl.eq((g.in_groups + (1 << lg_wpl) - 1) >> lg_wpl), k.gl.eq(gl),
        k.ph0.eq((-g.pad)[:3] & mask), k.ph0y.eq((-g.pad_top)[:3] & mask),
        # cycle 2
        k.v.eq(Mux(xn > g.out_w, xn, g.out_w)), k.seg.eq(xn > g.out_w),
        yv.eq(yn * Mux(xn > g.out_w, xn, g.out_w)),
        q.eq((k.ph0y << k.ls) + k.ph0),
        # cycle 3
        rpg.eq(((yv + b - 1) >> bb) * gl), t.eq(d0y * k.v + d0),
        k.v_hi.eq((k.v >> bb) * gl), k.v_lo.eq(k.v[:max(1, bb)] if bb else 0),
        # cycle 4 (at most one product deep each: tau0 = (q * rp + (t >> bb)) * gl as
        # q * rp * gl + (t >> bb) * gl)
        k.rl.eq(rpg), k.lines.eq(rpg << (2 * k.ls)),
        k.rl_s.eq(rpg << k.ls), k.rl_x.eq((rpg << k.ls) - rpg),
        k.rl_y.eq(((rpg << k.ls) - rpg) << k.ls),
        k.tau0_hi.eq(q * rpg + (t >> bb) * gl),
        k.tau0_lo.eq(t[:max(1, bb)] if bb else 0),
    ]
    return k


def lam_add(hi, lo, d_hi, d_lo, gl, bank_bits):
    """(hi, lo) + (d_hi, d_lo): the sum's (hi, lo) as expressions."""
    if bank_bits == 0:          # one bank: every index step is whole lines
        return hi + d_hi + d_lo * gl, Const(0, 1)
    total = lo + d_lo
    carry = total[bank_bits]
    return hi + d_hi + Mux(carry, gl, 0), total[:bank_bits]


class IfmStore(wiring.Component):
    """``setup`` latches ``geom``; ``ready`` (a register) falls the cycle after and rises when
    the constants ``k`` are valid (a few cycles later, before any load or read). ``load``
    starts the loader: ``beat`` then takes the input tensor's DRAM beats in order (pixels of
    ``in_groups * M`` bytes, channels contiguous) and writes one piece a cycle (the bytes of one
    beat that belong to one line of one pixel; a beat of whole lines takes a cycle);
    ``loading`` until the last pixel is in; ``rows_in``, the input rows whose every piece is
    written (readable from the next cycle on: a core reading the half being loaded waits for
    its tile's rows, hw.core.ifm_decoder).

    ``rd_en`` with ``rd_hi``/``rd_lo`` (column 0's pixel index) and ``rd_cg`` reads, one cycle
    later, column j's word of pixel index ``Lam + j`` on ``col[j]`` (words of columns whose
    pixel is outside the input are whatever the bank holds: the decoder masks them).
    Double buffering: the loader writes the half of every bank ``load_half`` selects, reads
    use the half ``read_half`` selects (both 0: the whole bank; halves only for a geometry of at
    most half the bank's lines). Reads place by ``k_read``: ``k``, or while ``hold`` is high
    the constants ``k`` had when it rose, so that the store can be set up and loaded for the
    next band while the current one is read.
    ``aux_en`` with ``aux_pixel`` (a pixel index of a stride-1 placement, a multiple of
    ``pool_taps``) and ``aux_line`` (a line of a pixel: channel groups ``aux_line *
    words_per_line`` on) reads that line of pixels ``aux_pixel`` to ``aux_pixel + pool_taps -
    1`` onto ``aux_data`` a cycle later (the pool pass: they are in consecutive banks, which
    all read the same line address); it must not coincide with ``rd_en``."""

    def __init__(self, config: SenseConfig):
        self._config = config
        lb = line_bits(config)
        self._bb = bank_bits(config)
        super().__init__({
            "setup": In(1), "geom": In(ifm_geom_layout()), "ready": Out(1),
            "k": Out(ifm_constants_layout(config)),
            "load": In(1), "load_lane": In(LANE_BITS),
            "beat": In(stream.Signature(8 * BEAT_BYTES)), "loading": Out(1),
            "pair": In(1), "beat2": In(stream.Signature(8 * BEAT_BYTES)),
            "rows_in": Out(unsigned(DIM_BITS + 1)),
            "rd_en": In(1), "rd_hi": In(unsigned(lb)), "rd_lo": In(unsigned(lo_bits(config))),
            "rd_cg": In(unsigned(DIM_BITS)),
            "col": Out(data.ArrayLayout(ifm_col_layout(config), config.cols)),
            "hold": In(1), "k_read": Out(ifm_constants_layout(config)),
            "load_half": In(1), "read_half": In(1),
            "aux_en": In(1), "aux_pixel": In(unsigned(2 * DIM_BITS)),
            "aux_line": In(unsigned(DIM_BITS)),
            "aux_data": Out(ifm_taps_layout(config)),
        })

    def elaborate(self, platform):
        m = Module()
        g = Signal(ifm_geom_layout())
        with m.If(self.setup):
            m.d.sync += g.eq(self.geom)
        self._constants(m, g)
        k_held = Signal(ifm_constants_layout(self._config))
        with m.If(~self.hold):
            m.d.sync += k_held.eq(self.k)
        m.d.comb += self.k_read.eq(Mux(self.hold, k_held, self.k))
        banks = self._banks(m)
        self._loader(m, g, banks)
        loading = self._left != 0
        if self._config.ifm_banks >= 2:
            self._pair_loaders(m, g, banks)
            loading = loading | (self._pair_left[0] != 0) | (self._pair_left[1] != 0)
        else:
            m.d.comb += self.beat2.ready.eq(0)
        m.d.comb += self.loading.eq(loading)
        self._reads(m, banks)
        return m

    def _constants(self, m, g):
        """The constants, SETTLE cycles after setup."""
        settle = Signal(range(SETTLE + 2))
        ready = Signal(init=1)          # registered: settle == 0 (falls after setup)
        with m.If(self.setup):
            m.d.sync += [settle.eq(SETTLE + 1), ready.eq(0)]
        with m.Elif(settle != 0):
            m.d.sync += [settle.eq(settle - 1), ready.eq(settle == 1)]
        m.d.comb += [self.ready.eq(ready),
                     self.k.eq(geometry_regs(m, g, self._config, "st"))]

    def _banks(self, m):
        cfg = self._config
        word = ifm_col_layout(cfg)
        line = data.ArrayLayout(word, cfg.ifm_words_per_line)
        banks = []
        for i in range(cfg.ifm_banks):
            mem = Memory(shape=line, depth=cfg.ifm_bank_lines, init=[])
            m.submodules[f"bank{i}"] = mem
            banks.append((mem.write_port(granularity=1), mem.read_port(transparent_for=())))
        return banks

    def _loader(self, m, g, banks):
        """One piece a cycle: the bytes of the current beat that belong to the current line of
        the current pixel, rotated into their lanes and written with word enables."""
        cfg, k, bb = self._config, self.k, self._bb
        M, wpl = cfg.group, cfg.ifm_words_per_line
        lg_m = _lg(M)
        left = Signal(2 * DIM_BITS + 1)          # pixels still to place
        off = Signal(DIM_BITS + lg_m + 1)        # byte offset in the pixel
        pos = Signal(LANE_BITS + 1)              # byte offset in the beat
        x, phx, phy = Signal(DIM_BITS), Signal(3), Signal(3)
        cur_hi, cur_lo = Signal(line_bits(cfg)), Signal(lo_bits(cfg))
        row_hi, row_lo = Signal(line_bits(cfg)), Signal(lo_bits(cfg))
        pixel_bytes = g.in_groups << lg_m
        lane = off[:LANE_BITS]

        def piece(pos, off):
            """Bytes of the piece at beat byte `pos` and pixel byte `off`: to the end of the
            beat, of the pixel or of the line, whichever comes first."""
            a, b_, c = BEAT_BYTES - pos, pixel_bytes - off, BEAT_BYTES - off[:LANE_BITS]
            return Mux(a < b_, Mux(a < c, a, c), Mux(b_ < c, b_, c))

        # The current piece's size, registered: computed with the next pos and off, so that
        # the beat's ready (and the DMA behind it) does not wait for this arithmetic.
        n = Signal(LANE_BITS + 1)
        self._left = left
        pair = self.pair if cfg.ifm_banks >= 2 else Const(0)
        # the input's pixels (the pair loaders' too)
        self._pixels = Signal(2 * DIM_BITS + 1, name="in_pixels")
        m.d.comb += self._pixels.eq(g.in_h * g.in_w)
        with m.If(self.load):
            m.d.sync += n.eq(piece(self.load_lane, Const(0, off.shape())))
            m.d.sync += [left.eq(Mux(pair, 0, self._pixels)), off.eq(0),
                         pos.eq(self.load_lane), x.eq(0), self.rows_in.eq(0), phx.eq(0),
                         phy.eq(0), cur_hi.eq(0), cur_lo.eq(0), row_hi.eq(0), row_lo.eq(0)]
        # The piece: beat byte pos + i goes to lane byte lane + i.
        shift = (pos - lane)[:LANE_BITS]
        beat = self.beat.payload
        rotated = Signal(8 * BEAT_BYTES)
        m.d.comb += rotated.eq(Cat(beat, beat).bit_select(shift * 8, 8 * BEAT_BYTES))
        first_w, end_w = lane >> lg_m, (lane + n) >> lg_m
        active = (left != 0) & self.beat.valid & ~self.load
        for i, (wr, _rd) in enumerate(banks):
            m.d.comb += wr.addr.eq((cur_hi + off[LANE_BITS:]) | self._half(self.load_half))
            for w in range(wpl):
                word = rotated[w * 8 * M:(w + 1) * 8 * M]
                m.d.comb += [wr.data[w].word.eq(word), wr.data[w].nz.eq(word.any()),
                             wr.en[w].eq(active & (cur_lo == i if bb else 1)
                                         & (w >= first_w) & (w < end_w))]
        done_pixel = off + n == pixel_bytes
        last_pixel = left == 1
        beat_used = (pos + n == BEAT_BYTES) | (done_pixel & last_pixel)
        m.d.comb += self.beat.ready.eq(((left == 0) | (active & beat_used)) & ~self.load)
        with m.If(active):
            pos_next = Mux(beat_used, 0, pos + n)[:len(pos)]
            off_next = Mux(done_pixel, 0, off + n)[:len(off)]
            m.d.sync += [pos.eq(pos_next), off.eq(off_next), n.eq(piece(pos_next, off_next))]
            with m.If(done_pixel):
                m.d.sync += left.eq(left - 1)
                with m.If(x + 1 == g.in_w):
                    m.d.sync += self.rows_in.eq(self.rows_in + 1)
                self._next_pixel(m, g, x, phx, phy, (cur_hi, cur_lo), (row_hi, row_lo))

    def _pair_loaders(self, m, g, banks):
        """A pair load (``pair`` high with ``load``): the input in blocks of P = B / 2 pixels,
        the even blocks on ``beat``, the odd ones on ``beat2``. Only for a stride-1 placement
        whose virtual row width is the map's (V = W) and pixels of whole beats from lane 0:
        then pixel k of the tensor has pixel index k, every beat is one line of it, and block
        2j + h lies in banks h P .. h P + P - 1, so each stream writes a fixed half of the banks
        one line a cycle, with no rotation. ``rows_in`` counts the rows below both streams'
        next pixels."""
        cfg = self._config
        half = cfg.ifm_banks // 2
        lg_p = _lg(half)
        lb = line_bits(cfg)
        total = Signal(2 * DIM_BITS + 1, name="pair_total")
        n = self._pixels
        frontier = []
        lefts = []
        for h, beat in enumerate((self.beat, self.beat2)):
            hi = Signal(lb, name=f"pair{h}_hi")
            lo = Signal(max(1, lg_p), name=f"pair{h}_lo")
            j = Signal(lb + 1, name=f"pair{h}_j")
            left = Signal(2 * DIM_BITS + 1, name=f"pair{h}_left")
            k = Signal(2 * DIM_BITS + 1, name=f"pair{h}_k")
            with m.If(self.load):
                m.d.sync += [hi.eq(0), lo.eq(0), j.eq(0), k.eq(h * half),
                             left.eq(Mux(self.pair, pair_share(n, half, h == 1), 0))]
                if h == 0:
                    m.d.sync += total.eq(n)
            active = (left != 0) & beat.valid & ~self.load
            if h:
                m.d.comb += beat.ready.eq((left != 0) & ~self.load)
            else:       # (the plain loader's otherwise)
                with m.If(left != 0):
                    m.d.comb += beat.ready.eq(~self.load)
            with m.If(active):
                with m.If(j + 1 == self.k.gl):
                    m.d.sync += [j.eq(0), left.eq(left - 1)]
                    if lg_p:
                        m.d.sync += lo.eq(lo + 1)
                    with m.If((lo == half - 1) if lg_p else Const(1)):
                        m.d.sync += [hi.eq(hi + self.k.gl), k.eq(k + half + 1)]
                    with m.Else():
                        m.d.sync += k.eq(k + 1)
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.If(left != 0):
                for i in range(h * half, (h + 1) * half):
                    wr = banks[i][0]
                    m.d.comb += wr.addr.eq((hi + j) | self._half(self.load_half))
                    for w in range(cfg.ifm_words_per_line):
                        word = beat.payload[w * 8 * cfg.group:(w + 1) * 8 * cfg.group]
                        m.d.comb += [wr.data[w].word.eq(word), wr.data[w].nz.eq(word.any()),
                                     wr.en[w].eq(active & ((lo == i - h * half) if lg_p
                                                           else 1))]
            frontier.append(Mux(left != 0, k, total))
            lefts.append(left)
        # rows_in: the rows whose pixels are all below both streams' next pixels
        row_end = Signal(2 * DIM_BITS + 1, name="pair_row_end")
        done_to = Mux(frontier[0] < frontier[1], frontier[0], frontier[1])
        busy = Signal(name="pair_busy")
        with m.If(self.load):
            m.d.sync += [row_end.eq(g.in_w), busy.eq(self.pair)]
        with m.Elif(busy & (self.rows_in != g.in_h) & (done_to >= row_end)):
            m.d.sync += [self.rows_in.eq(self.rows_in + 1), row_end.eq(row_end + g.in_w)]
        with m.Elif(busy & (self.rows_in == g.in_h)):
            m.d.sync += busy.eq(0)
        self._pair_left = lefts

    def _next_pixel(self, m, g, x, phx, phy, cur, row):
        """Step the current pixel's index to the next pixel in DRAM order (additions only)."""
        k, bb = self.k, self._bb
        s_m1 = (Const(1, 4) << k.ls) - 1
        x_step = step_x(k, phx, bb)
        with m.If(x + 1 == g.in_w):
            nxt = step_y(k, phy, row, bb)
            m.d.sync += [x.eq(0), phx.eq(0), phy.eq(Mux(phy == s_m1, 0, phy + 1)),
                         cur[0].eq(nxt[0]), cur[1].eq(nxt[1]), row[0].eq(nxt[0]),
                         row[1].eq(nxt[1])]
        with m.Else():
            hi, lo = x_step(cur)
            m.d.sync += [x.eq(x + 1), phx.eq(Mux(phx == s_m1, 0, phx + 1)),
                         cur[0].eq(hi), cur[1].eq(lo)]

    def _half(self, half):
        """The line offset of a bank's upper half (the bank depth is a power of two)."""
        lines = self._config.ifm_bank_lines
        return Mux(half, lines // 2, 0) if lines > 1 else Const(0)

    def _reads(self, m, banks):
        """Every bank reads Lam's line or the next; the rotator turns the words to the columns."""
        cfg, k, bb = self._config, self.k_read, self._bb
        B, wpl, cols = cfg.ifm_banks, cfg.ifm_words_per_line, cfg.cols
        sub = _lg(wpl)
        base = self.rd_hi + (self.rd_cg >> sub)
        rot, word_sel = Signal(lo_bits(cfg)), Signal(max(1, sub))
        aux_line = (self.aux_pixel >> bb) * k.gl + self.aux_line
        for i, (_wr, rd) in enumerate(banks):
            # (the last bank is never below Lam mod B: no comparison for it)
            below = (Const(i, max(1, bb)) < self.rd_lo) if i < B - 1 else Const(0)
            with m.If(self.aux_en):
                m.d.comb += [rd.addr.eq(aux_line | self._half(self.read_half)), rd.en.eq(1)]
            with m.Else():
                m.d.comb += [rd.addr.eq((base + Mux(below, k.gl, 0))
                                        | self._half(self.read_half)),
                             rd.en.eq(self.rd_en)]
        with m.If(self.rd_en):
            m.d.sync += [rot.eq(self.rd_lo), word_sel.eq(self.rd_cg[:max(1, sub)] if sub else 0)]
        taps = cfg.pool_taps
        lg_taps = _lg(taps)
        aux_group = Signal(max(1, bb - lg_taps))
        if bb > lg_taps:
            with m.If(self.aux_en):
                m.d.sync += aux_group.eq(self.aux_pixel[lg_taps:bb])
        raw = [rd.data[word_sel] if sub else rd.data[0] for _wr, rd in banks]
        words = raw
        for level in range(bb):
            step = 1 << level
            words = [Mux(rot[level], words[(i + step) % B], words[i]) for i in range(B)]
        for j in range(cols):
            m.d.comb += self.col[j].eq(words[j])
        lines = [Cat(*(rd.data[w].word for w in range(wpl))) for _wr, rd in banks]
        with m.Switch(aux_group):
            for q in range(B // taps):
                with m.Case(q):
                    m.d.comb += [self.aux_data[j].eq(lines[q * taps + j]) for j in range(taps)]


def step_x(k, phx, bb):
    """The (hi, lo) step to the next input column: the next phase region, or back to region 0
    of this row and one phase column on."""
    def step(cur):
        wrap = phx == (Const(1, 4) << k.ls) - 1
        hi, lo = cur
        nxt_hi, nxt_lo = lam_add(hi, lo, -k.rl_x, 1, k.gl, bb)
        return Mux(wrap, nxt_hi, hi + k.rl), Mux(wrap, nxt_lo, lo)
    return step


def step_y(k, phy, row, bb):
    """The (hi, lo) of the next input row's first pixel from this row's first pixel."""
    s = Const(1, 4) << k.ls
    wrap = phy == s - 1
    hi, lo = row
    nxt_hi, nxt_lo = lam_add(hi, lo, k.v_hi - k.rl_y, k.v_lo, k.gl, bb)
    return Mux(wrap, nxt_hi, hi + k.rl_s), Mux(wrap, nxt_lo, lo)
