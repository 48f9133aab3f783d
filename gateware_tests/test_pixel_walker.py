"""The pixel walker (hw.core.pixel_walker) in the Amaranth simulator: every tile of a layer, in
both tile orders, with the coordinates and the virtual raster index (the IFM store's pixel index
of the tile's first pixel) the group sequencer reads from; tiles that stay in one output row for
a valid convolution."""

import pytest

from hw.config import SenseConfig
from hw.core.ifm_store import ifm_geometry
from hw.core.pixel_walker import PixelWalker, pixel_tiles, tap_bounds
from sim.amaranth_sim import run_testbench

CONFIG = SenseConfig(rows=4, cols=3, group=4)


def _geometry(cfg, layer):
    return ifm_geometry(layer["in_h"], layer["in_w"], layer["in_groups"], layer["stride"],
                        layer["pad"], layer["out_w"], cfg, layer["pad_top"])


def expected_tiles(cfg, layer):
    """(k0, p0, count, new_kt, w_zero, (pi_hi, pi_lo), [(valid, y_lo, y_hi, x_lo, x_hi)] *
    cols, need_row) in issue order: each column's taps inside the input, from its window's
    top-left input coordinates."""
    g = _geometry(cfg, layer)
    tiles_p = pixel_tiles(layer["out_h"], layer["out_w"], cfg.cols, g.seg)
    k0s = range(0, layer["out_channels"], cfg.rows)
    if layer["ifm_stationary"]:
        order = [(k0, t) for t in range(len(tiles_p)) for k0 in k0s]
    else:
        order = [(k0, t) for k0 in k0s for t in range(len(tiles_p))]
    tiles = []
    for n, (k0, t) in enumerate(order):
        p0, count = tiles_p[t]
        cols = []
        bottom = None
        for j in range(cfg.cols):
            oy, ox = divmod(p0 + j, layer["out_w"])
            iy0 = oy * layer["stride"] - layer["pad_top"]
            ix0 = ox * layer["stride"] - layer["pad"]
            if j < count:
                bottom = iy0 + layer["kernel_h"] - 1     # the last input row it reads
            rows = layer["in_h"]
            if layer.get("img_h"):
                # stacked images: the row within the pixel's own image
                iy0 = (layer["oyl0"] + oy) % layer["img_oh"] * layer["stride"] - layer["pad"]
                rows = layer["img_h"]
            cols.append((1, *tap_bounds(iy0, rows), *tap_bounds(ix0, layer["in_w"]))
                        if j < count else 0)
        oy, ox = divmod(p0, layer["out_w"])
        pi = oy * g.v + ox
        b = cfg.ifm_banks
        pi_split = ((pi // b) * g.gl % cfg.ifm_bank_lines, pi % b)
        if layer["ifm_stationary"]:
            new_kt, w_zero = 1, int(k0 == 0)
        else:
            new_kt, w_zero = int(t == 0), int(n == 0)
        tiles.append((k0, p0, count, new_kt, w_zero, pi_split, cols, bottom))
    return tiles


LAYERS = [
    # in 5x4, 3x3 kernel, stride 1, pad 1, 6 output channels (2 k tiles), 2 channel groups
    dict(in_h=5, in_w=4, in_groups=2, out_h=5, out_w=4, out_channels=6, stride=1, pad=1),
    # stride 2, no padding, one k tile, 7 pixels (a partial last tile)
    dict(in_h=7, in_w=3, in_groups=1, out_h=4, out_w=2, out_channels=3, stride=2, pad=0),
    # a 1x1 map (fully connected), 9 output channels
    dict(in_h=1, in_w=1, in_groups=3, out_h=1, out_w=1, out_channels=9, stride=1, pad=0),
    # a valid convolution: 7 input columns, 5 output columns (tiles stay in a row)
    dict(in_h=6, in_w=7, in_groups=5, out_h=4, out_w=5, out_channels=5, stride=1, pad=0),
    # a middle band of a tiled layer: padding at the sides, none above
    dict(in_h=4, in_w=6, in_groups=2, out_h=2, out_w=6, out_channels=4, stride=1, pad=1,
         pad_top=0),
    # a band of stacked 3-row images (stride 2: 6 input rows each) starting at an image's
    # second output row: the columns' rows are their own image's
    dict(in_h=15, in_w=3, in_groups=1, out_h=7, out_w=2, out_channels=3, stride=2, pad=1,
         pad_top=0, img_h=6, img_oh=3, oyl0=1),
]


@pytest.mark.parametrize("ifm_stationary", [0, 1], ids=["weight", "ifm"])
@pytest.mark.parametrize("layer", LAYERS, ids=["3x3p1", "s2", "fc", "valid", "band",
                                                "stacked"])
def test_walker_emits_every_tile_in_order(layer, ifm_stationary):
    layer = {"pad_top": layer["pad"], **layer, "kernel_h": 3, "kernel_w": 3, "relu": 0,
             "ifm_stationary": ifm_stationary}
    dut = PixelWalker(CONFIG)
    want = expected_tiles(CONFIG, layer)
    got = []

    async def bench(ctx):
        for name, value in layer.items():
            ctx.set(getattr(dut.layer, name), value)
        g = _geometry(CONFIG, layer)
        b = CONFIG.ifm_banks
        for name, value in (("gl", g.gl), ("v_hi", (g.v // b) * g.gl % CONFIG.ifm_bank_lines),
                            ("v_lo", g.v % b), ("seg", int(g.seg))):
            ctx.set(getattr(dut.k, name), value)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for cycle in range(2000):
            if ctx.get(dut.ready) and cycle % 3:      # a consumer that sometimes waits
                info = ctx.get(dut.info)
                cols = []
                for j in range(CONFIG.cols):
                    c = ctx.get(dut.tile[j])
                    cols.append((1, c.y_lo, c.y_hi, c.x_lo, c.x_hi) if c.valid else 0)
                # (need_row: the last input row the tile's windows read, for load following)
                got.append((info.k0, info.p0, info.count, ctx.get(dut.new_kt),
                            ctx.get(dut.w_zero), (ctx.get(dut.pi_hi), ctx.get(dut.pi_lo)), cols,
                            ctx.get(dut.need_row)))
                ctx.set(dut.take, 1)
            else:
                ctx.set(dut.take, 0)
            await ctx.tick()
            if not ctx.get(dut.busy):
                break
        assert not ctx.get(dut.busy), "the walker never finished"

    run_testbench(dut, bench)
    assert got == want


def test_tap_bounds_name_the_taps_inside_the_input():
    """`tap_bounds` (the walker's per-column bounds, here on integers) against the definition:
    tap t of an axis is inside when 0 <= first + t < size, for every tap of a 15-tap kernel."""
    for first in range(-20, 24):
        for size in range(0, 24):
            lo, hi = tap_bounds(first, size)
            assert [lo <= t < hi for t in range(15)] == [0 <= first + t < size
                                                         for t in range(15)], (first, size)
