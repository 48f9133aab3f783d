"""The pixel walker of the IFM decoder: the tiles of a layer, one after the other, as the
per-column base coordinates of each tile's pixels."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.core.decoders import ifm_addr_bits, tile_info_layout
from hw.layouts import CHANNEL_BITS, DIM_BITS, layer_layout

__all__ = ["PixelWalker", "pixel_column_layout", "word_bits", "COORD_BITS"]

#: Signed pixel coordinates (room for the padding offsets).
COORD_BITS = DIM_BITS + 6


def word_bits(config: SenseConfig) -> int:
    """Signed word-address arithmetic: an IFM word address plus room for padding offsets."""
    return ifm_addr_bits(config) + 8


def pixel_column_layout(config: SenseConfig) -> data.StructLayout:
    """One column's pixel of a tile: whether it is a real pixel, the input coordinates of its
    window's top-left tap (may be negative: padding), and the word address of that tap's channel
    group 0 (``(iy0 * in_w + ix0) * in_groups``)."""
    return data.StructLayout({"valid": 1, "iy0": signed(COORD_BITS), "ix0": signed(COORD_BITS),
                              "base": signed(word_bits(config))})


class PixelWalker(wiring.Component):
    """``start`` latches ``layer`` (held on ``params``); three cycles later the walker begins.
    It fills ``tile`` (one `pixel_column_layout` per column, the output pixels p0 .. p0 + cols - 1
    in raster order, pixels past the map invalid) one column per cycle and then raises ``ready``
    with ``info`` (k0, pixel tile, valid pixels), ``new_kt`` (the tile starts a k tile) and
    ``w_zero`` (its weights start again at word 0: the layer's first tile, and in the pixel-outer
    order every pixel tile's first k tile). ``take`` (one cycle, while ``ready``) hands the tile
    over; the walker then takes one cycle to step to the next tile. Tile order: k tile outer,
    pixel tile inner (``ifm_stationary`` = 0), or pixel tile outer. ``row_words`` is
    in_w * in_groups, for the group sequencer. ``busy`` until the last tile has been taken."""

    def __init__(self, config: SenseConfig):
        self._config = config
        cols = config.cols
        super().__init__({
            "start": In(1), "layer": In(layer_layout(config)),
            "params": Out(layer_layout(config)), "row_words": Out(signed(word_bits(config))),
            "tile": Out(data.ArrayLayout(pixel_column_layout(config), cols)),
            "ready": Out(1), "take": In(1), "info": Out(tile_info_layout(config)),
            "new_kt": Out(1), "w_zero": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        sw = word_bits(cfg)
        L = self.params
        # The products the walker steps by.
        steps = {name: Signal(signed(sw), name=name) for name in (
            "s_words", "p_words", "s_row", "p_row")}   # stride/pad * in_groups, * row_words
        init = Signal(2)
        # Walker position and the start of the current pixel tile (the pixel-outer order
        # revisits it for every k tile).
        pos = {"oy": Signal(unsigned(DIM_BITS + 1)), "ox": Signal(unsigned(DIM_BITS + 1)),
               "iy0": Signal(signed(COORD_BITS)), "ix0": Signal(signed(COORD_BITS)),
               "rowbase": Signal(signed(sw)), "base": Signal(signed(sw))}
        saved = {k: Signal.like(v, name=f"sv_{k}") for k, v in pos.items()}
        wk = {"active": Signal(), "wrap": Signal(), "count": Signal(range(cfg.cols + 1)),
              "valid": Signal(range(cfg.cols + 1)), "k0": Signal(unsigned(CHANNEL_BITS + 1)),
              "tile": Signal(unsigned(2 * DIM_BITS)), "new_kt": Signal(), "w_zero": Signal()}
        with m.If(self.start):
            m.d.sync += [L.eq(self.layer), init.eq(1), wk["active"].eq(0), self.ready.eq(0)]
        with m.Elif(init == 1):
            m.d.sync += [self.row_words.eq(L.in_w * L.in_groups),
                         steps["s_words"].eq(L.stride * L.in_groups),
                         steps["p_words"].eq(L.pad * L.in_groups), init.eq(2)]
        with m.Elif(init == 2):
            m.d.sync += [steps["s_row"].eq(L.stride * self.row_words),
                         steps["p_row"].eq(L.pad * self.row_words), init.eq(3)]
        with m.Elif(init == 3):
            origin = (0, 0, -L.pad, -L.pad, -steps["p_row"], -steps["p_row"] - steps["p_words"])
            m.d.sync += [
                init.eq(0), wk["active"].eq(1), wk["wrap"].eq(0),
                *(r.eq(v) for r, v in zip(pos.values(), origin)),
                *(r.eq(v) for r, v in zip(saved.values(), origin)),
                wk["count"].eq(0), wk["valid"].eq(0), wk["k0"].eq(0), wk["tile"].eq(0),
                wk["new_kt"].eq(1), wk["w_zero"].eq(1),
            ]
        with m.If(self.take):
            m.d.sync += self.ready.eq(0)
        self._emit(m, pos, wk, steps, init)
        self._next_tile(m, pos, saved, wk)
        m.d.comb += self.busy.eq(wk["active"] | self.ready | (init != 0))
        return m

    def _emit(self, m, pos, wk, steps, init):
        """One column per cycle into the tile; the tile is ready after the last column."""
        cols, L = self._config.cols, self.params
        pixel_valid = pos["oy"] < L.out_h
        emit = wk["active"] & ~self.ready & ~wk["wrap"] & (init == 0) & ~self.start
        with m.If(emit):
            new = Signal(pixel_column_layout(self._config))
            m.d.comb += [new.valid.eq(pixel_valid), new.iy0.eq(pos["iy0"]),
                         new.ix0.eq(pos["ix0"]), new.base.eq(pos["base"])]
            for j in range(cols - 1):
                m.d.sync += self.tile[j].eq(self.tile[j + 1])
            m.d.sync += [self.tile[cols - 1].eq(new), wk["count"].eq(wk["count"] + 1),
                         wk["valid"].eq(wk["valid"] + pixel_valid)]
            with m.If(pixel_valid):
                with m.If(pos["ox"] + 1 == L.out_w):
                    m.d.sync += [pos["ox"].eq(0), pos["oy"].eq(pos["oy"] + 1),
                                 pos["ix0"].eq(-L.pad), pos["iy0"].eq(pos["iy0"] + L.stride),
                                 pos["rowbase"].eq(pos["rowbase"] + steps["s_row"]),
                                 pos["base"].eq(pos["rowbase"] + steps["s_row"]
                                                - steps["p_words"])]
                with m.Else():
                    m.d.sync += [pos["ox"].eq(pos["ox"] + 1),
                                 pos["ix0"].eq(pos["ix0"] + L.stride),
                                 pos["base"].eq(pos["base"] + steps["s_words"])]
            with m.If(wk["count"] == cols - 1):
                m.d.sync += [
                    self.ready.eq(1), wk["wrap"].eq(1),
                    self.info.k0.eq(wk["k0"]), self.info.tile.eq(wk["tile"]),
                    self.info.count.eq(wk["valid"] + pixel_valid), self.new_kt.eq(wk["new_kt"]),
                    self.w_zero.eq(wk["w_zero"]),
                ]

    def _next_tile(self, m, pos, saved, wk):
        """The tile is complete: set the walker up for the next one."""
        cfg, L = self._config, self.params
        walker, mark = list(pos.values()), list(saved.values())
        with m.If(wk["wrap"] & ~self.start):
            m.d.sync += [wk["wrap"].eq(0), wk["count"].eq(0), wk["valid"].eq(0),
                         wk["new_kt"].eq(0), wk["w_zero"].eq(0)]
            more_k = wk["k0"] + cfg.rows < L.out_channels
            with m.If(L.ifm_stationary):
                # Pixel tile outer: the next k tile of the same pixels, or k tile 0 of the next
                # pixel tile (whose weights start again at word 0).
                with m.If(more_k):
                    m.d.sync += [*(r.eq(v) for r, v in zip(walker, mark)),
                                 wk["k0"].eq(wk["k0"] + cfg.rows), wk["new_kt"].eq(1)]
                with m.Else():
                    m.d.sync += [*(r.eq(v) for r, v in zip(mark, walker)),
                                 wk["k0"].eq(0), wk["tile"].eq(wk["tile"] + 1),
                                 wk["new_kt"].eq(1), wk["w_zero"].eq(1)]
                    with m.If(pos["oy"] >= L.out_h):
                        m.d.sync += wk["active"].eq(0)
            with m.Else():
                # K tile outer: the next pixel tile, or the next k tile at the end of the map.
                m.d.sync += wk["tile"].eq(wk["tile"] + 1)
                with m.If(pos["oy"] >= L.out_h):
                    m.d.sync += [
                        *(r.eq(v) for r, v in zip(walker, mark)),
                        wk["k0"].eq(wk["k0"] + cfg.rows), wk["tile"].eq(0), wk["new_kt"].eq(1),
                    ]
                    with m.If(~more_k):
                        m.d.sync += wk["active"].eq(0)
