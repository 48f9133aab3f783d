"""The pixel walker of the IFM decoder: the tiles of a layer, one after the other, as the
per-column base coordinates of each tile's pixels."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.core.decoders import tile_info_layout
from hw.core.ifm_store import (bank_bits, ifm_constants_layout, ifm_seg, lam_add, line_bits,
                               lo_bits)
from hw.layouts import CHANNEL_BITS, DIM_BITS, KERNEL_BITS, layer_layout

__all__ = ["PixelWalker", "pixel_column_layout", "tap_bounds", "COORD_BITS", "pixel_tiles",
           "tile_count"]

#: Signed pixel coordinates (room for the padding offsets).
COORD_BITS = DIM_BITS + 6


def pixel_tiles(out_h: int, out_w: int, cols: int, seg: bool, band_rows: int = 0):
    """The walker's pixel tiles as (first pixel, valid pixels), in order: `cols` consecutive
    output pixels in raster order, or (`seg`, the IFM store's valid-convolution placement) at
    most `cols` pixels of one output row. With `band_rows`, tiles do not cross a band of that
    many output rows (the planner's tiled layers)."""
    bands = [(0, out_h)] if not band_rows else [(y, min(y + band_rows, out_h))
                                                for y in range(0, out_h, band_rows)]
    tiles = []
    for y0, y1 in bands:
        if seg:
            tiles += [(y * out_w + x, min(cols, out_w - x)) for y in range(y0, y1)
                      for x in range(0, out_w, cols)]
        else:
            first, end = y0 * out_w, y1 * out_w
            tiles += [(p, min(cols, end - p)) for p in range(first, end, cols)]
    return tiles


def tile_count(in_w: int, stride: int, out_h: int, out_w: int, cols: int) -> int:
    """Pixel tiles of a layer (the descriptor's p_tiles): `pixel_tiles` of the walker, row
    segments for a valid convolution (`hw.core.ifm_store.ifm_seg`)."""
    if ifm_seg(in_w, stride, out_w):
        return out_h * -(-out_w // cols)
    return -(-(out_h * out_w) // cols)


def pixel_column_layout(config: SenseConfig) -> data.StructLayout:
    """One column's pixel of a tile: whether it is a real pixel, and which taps of its window
    lie inside the input: kernel rows ``y_lo <= kh < y_hi`` and columns ``x_lo <= kw < x_hi``
    (`tap_bounds` of its window's top-left tap; the others are padding). In a map of stacked
    images (the layer's ``img_h``) the rows are those of the pixel's own image."""
    return data.StructLayout({"valid": 1, "y_lo": KERNEL_BITS, "y_hi": KERNEL_BITS,
                              "x_lo": KERNEL_BITS, "x_hi": KERNEL_BITS})


def tap_bounds(first, size, top=(1 << KERNEL_BITS) - 1):
    """(lo, hi): the taps t < `top` of a window axis with ``0 <= first + t < size`` are
    ``lo <= t < hi``; `first` is the window's first coordinate (negative: padding), `top` at
    most the largest kernel (the walker: 15 taps) or a read's slots (the pool pass). On Python
    integers or Amaranth values: computed once per column (or read), the per-tap tests are
    compares of small values."""
    if isinstance(first, int) and isinstance(size, int):
        return min(max(-first, 0), top), min(max(size - first, 0), top)
    bits = top.bit_length()
    room = size - first
    lo = Mux(first >= 0, 0, Mux(first < -top, top, (-first)[:bits]))
    hi = Mux(room <= 0, 0, Mux(room >= top, top, room[:bits]))
    return lo, hi


class PixelWalker(wiring.Component):
    """``start`` latches ``layer`` (held on ``params``); three cycles later the walker begins.
    It fills ``tile`` (one `pixel_column_layout` per column, the output pixels p0 .. p0 + cols - 1
    in raster order, pixels past the map invalid; with the store's ``k.seg`` a tile ends with its
    output row, the rest of its columns invalid) one column per cycle and then raises ``ready``
    with ``info`` (k0, first pixel p0, valid pixels), ``pi_hi``/``pi_lo`` (column 0's virtual
    raster index ``oy * V + ox`` in the store's (hi, lo) form), ``new_kt`` (the tile starts a k
    tile), ``w_zero`` (its weights start again at word 0: the layer's first tile, and in the
    pixel-outer order every pixel tile's first k tile) and ``need_row`` (the last input row its
    windows read, counted from the input's first row: its last real pixel's window bottom).
    ``take`` (one cycle, while ``ready``) hands the tile over; the walker then takes one cycle
    to step to the next tile. Tile order: k tile outer, pixel tile inner (``ifm_stationary`` =
    0), or pixel tile outer. ``k`` (the IFM store's constants) must hold from ``start`` on. ``busy`` until the last tile has been taken."""

    def __init__(self, config: SenseConfig):
        self._config = config
        cols = config.cols
        super().__init__({
            "start": In(1), "layer": In(layer_layout(config)), "k": In(ifm_constants_layout(config)),
            "params": Out(layer_layout(config)),
            "tile": Out(data.ArrayLayout(pixel_column_layout(config), cols)),
            "pi_hi": Out(line_bits(config)), "pi_lo": Out(lo_bits(config)),
            "ready": Out(1), "take": In(1), "info": Out(tile_info_layout(config)),
            "new_kt": Out(1), "w_zero": Out(1), "busy": Out(1),
            "need_row": Out(signed(COORD_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        L = self.params
        init = Signal(2)
        lb, bl = line_bits(cfg), lo_bits(cfg)
        # Walker position and the start of the current pixel tile (the pixel-outer order
        # revisits it for every k tile): output pixel, its input window's corner, its real
        # raster index p and its virtual raster index (hi, lo), and that of its row's start.
        pos = {"oy": Signal(unsigned(DIM_BITS + 1)), "ox": Signal(unsigned(DIM_BITS + 1)),
               "iy0": Signal(signed(COORD_BITS)), "ix0": Signal(signed(COORD_BITS)),
               "p": Signal(unsigned(2 * DIM_BITS)), "hi": Signal(lb), "lo": Signal(bl),
               "row_hi": Signal(lb), "row_lo": Signal(bl),
               # (stacked images: the output row within its image, its window's first row)
               "oyl": Signal(unsigned(DIM_BITS)), "iyl0": Signal(signed(COORD_BITS))}
        saved = {k: Signal.like(v, name=f"sv_{k}") for k, v in pos.items()}
        wk = {"active": Signal(), "wrap": Signal(), "count": Signal(range(cfg.cols + 1)),
              "valid": Signal(range(cfg.cols + 1)), "k0": Signal(unsigned(CHANNEL_BITS + 1)),
              "p0": Signal(unsigned(2 * DIM_BITS)), "new_kt": Signal(), "w_zero": Signal(),
              "row_end": Signal(), "last_iy0": Signal(signed(COORD_BITS))}
        with m.If(self.start):
            m.d.sync += [L.eq(self.layer), init.eq(1), wk["active"].eq(0), self.ready.eq(0)]
        # the first output row's window, within its image (a stacked map's run from oyl0)
        iyl_start = Signal(signed(COORD_BITS))
        with m.Elif(init == 1):
            m.d.sync += [init.eq(2), iyl_start.eq(L.oyl0 * L.stride - L.pad)]
        with m.Elif(init == 2):
            m.d.sync += init.eq(3)
        with m.Elif(init == 3):
            origin = (0, 0, -L.pad_top, -L.pad, 0, 0, 0, 0, 0, L.oyl0, iyl_start)
            m.d.sync += [
                init.eq(0), wk["active"].eq(1), wk["wrap"].eq(0), wk["row_end"].eq(0),
                *(r.eq(v) for r, v in zip(pos.values(), origin)),
                *(r.eq(v) for r, v in zip(saved.values(), origin)),
                wk["count"].eq(0), wk["valid"].eq(0), wk["k0"].eq(0),
                wk["new_kt"].eq(1), wk["w_zero"].eq(1),
            ]
        with m.If(self.take):
            m.d.sync += self.ready.eq(0)
        self._emit(m, pos, wk, init)
        self._next_tile(m, pos, saved, wk)
        m.d.comb += self.busy.eq(wk["active"] | self.ready | (init != 0))
        return m

    def _emit(self, m, pos, wk, init):
        """One column per cycle into the tile; the tile is ready after the last column."""
        cfg, L, k = self._config, self.params, self.k
        cols, bb = cfg.cols, bank_bits(cfg)
        pixel_valid = (pos["oy"] < L.out_h) & ~wk["row_end"]
        emit = wk["active"] & ~self.ready & ~wk["wrap"] & (init == 0) & ~self.start
        with m.If(emit):
            new = Signal(pixel_column_layout(self._config))
            # (a stacked map's rows are checked within each pixel's image)
            stacked = L.img_h != 0
            y_lo, y_hi = tap_bounds(Mux(stacked, pos["iyl0"], pos["iy0"]),
                                    Mux(stacked, L.img_h, L.in_h))
            x_lo, x_hi = tap_bounds(pos["ix0"], L.in_w)
            m.d.comb += [new.valid.eq(pixel_valid),
                         new.y_lo.eq(y_lo), new.y_hi.eq(y_hi), new.x_lo.eq(x_lo),
                         new.x_hi.eq(x_hi)]
            for j in range(cols - 1):
                m.d.sync += self.tile[j].eq(self.tile[j + 1])
            m.d.sync += [self.tile[cols - 1].eq(new), wk["count"].eq(wk["count"] + 1),
                         wk["valid"].eq(wk["valid"] + pixel_valid)]
            with m.If(wk["count"] == 0):
                m.d.sync += [self.pi_hi.eq(pos["hi"]), self.pi_lo.eq(pos["lo"]),
                             wk["p0"].eq(pos["p"])]
            with m.If(pixel_valid):
                m.d.sync += [pos["p"].eq(pos["p"] + 1), wk["last_iy0"].eq(pos["iy0"])]
                with m.If(pos["ox"] + 1 == L.out_w):
                    hi, lo = lam_add(pos["row_hi"], pos["row_lo"], k.v_hi, k.v_lo, k.gl, bb)
                    m.d.sync += [pos["ox"].eq(0), pos["oy"].eq(pos["oy"] + 1),
                                 pos["ix0"].eq(-L.pad), pos["iy0"].eq(pos["iy0"] + L.stride),
                                 pos["hi"].eq(hi), pos["lo"].eq(lo), pos["row_hi"].eq(hi),
                                 pos["row_lo"].eq(lo), wk["row_end"].eq(k.seg)]
                    with m.If(pos["oyl"] + 1 == L.img_oh):
                        m.d.sync += [pos["oyl"].eq(0), pos["iyl0"].eq(-L.pad)]
                    with m.Else():
                        m.d.sync += [pos["oyl"].eq(pos["oyl"] + 1),
                                     pos["iyl0"].eq(pos["iyl0"] + L.stride)]
                with m.Else():
                    hi, lo = lam_add(pos["hi"], pos["lo"], 0, 1, k.gl, bb)
                    m.d.sync += [pos["ox"].eq(pos["ox"] + 1),
                                 pos["ix0"].eq(pos["ix0"] + L.stride),
                                 pos["hi"].eq(hi), pos["lo"].eq(lo)]
            with m.If(wk["count"] == cols - 1):
                m.d.sync += [
                    self.ready.eq(1), wk["wrap"].eq(1),
                    self.info.k0.eq(wk["k0"]),
                    self.info.p0.eq(Mux(wk["count"] == 0, pos["p"], wk["p0"])),
                    self.info.count.eq(wk["valid"] + pixel_valid), self.new_kt.eq(wk["new_kt"]),
                    self.w_zero.eq(wk["w_zero"]),
                    self.need_row.eq(Mux(pixel_valid, pos["iy0"], wk["last_iy0"])
                                     + L.kernel_h - 1),
                ]

    def _next_tile(self, m, pos, saved, wk):
        """The tile is complete: set the walker up for the next one."""
        cfg, L = self._config, self.params
        walker, mark = list(pos.values()), list(saved.values())
        with m.If(wk["wrap"] & ~self.start):
            m.d.sync += [wk["wrap"].eq(0), wk["count"].eq(0), wk["valid"].eq(0),
                         wk["new_kt"].eq(0), wk["w_zero"].eq(0), wk["row_end"].eq(0)]
            more_k = wk["k0"] + cfg.rows < L.out_channels
            with m.If(L.ifm_stationary):
                # Pixel tile outer: the next k tile of the same pixels, or k tile 0 of the next
                # pixel tile (whose weights start again at word 0).
                with m.If(more_k):
                    m.d.sync += [*(r.eq(v) for r, v in zip(walker, mark)),
                                 wk["k0"].eq(wk["k0"] + cfg.rows), wk["new_kt"].eq(1)]
                with m.Else():
                    m.d.sync += [*(r.eq(v) for r, v in zip(mark, walker)),
                                 wk["k0"].eq(0), wk["new_kt"].eq(1), wk["w_zero"].eq(1)]
                    with m.If(pos["oy"] >= L.out_h):
                        m.d.sync += wk["active"].eq(0)
            with m.Else():
                # K tile outer: the next pixel tile, or the next k tile at the end of the map.
                with m.If(pos["oy"] >= L.out_h):
                    m.d.sync += [
                        *(r.eq(v) for r, v in zip(walker, mark)),
                        wk["k0"].eq(wk["k0"] + cfg.rows), wk["new_kt"].eq(1),
                    ]
                    with m.If(~more_k):
                        m.d.sync += wk["active"].eq(0)
