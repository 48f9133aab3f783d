"""The IFM store (hw.core.ifm_store) in the Amaranth simulator: its gateware geometry equals
`ifm_geometry`, a tensor loaded from DRAM-order beats (pixels of any byte size, a piece a cycle,
with gaps in the beat stream) reads back through the rotator for every column at every tap of
tiles anywhere in the map (strides 1, 2, 4, padding, several grids), and the auxiliary port
reads single words. The placement is also checked in Python to be collision-free."""

import numpy as np
import pytest

from hw.config import BEAT_BYTES, SenseConfig
from hw.core.ifm_store import IfmStore, ifm_geometry, load_pieces, load_row_pieces
from sim.amaranth_sim import run_testbench

CASES = [
    # cols, M, C, H, W, kernel, stride, pad
    (4, 4, 8, 7, 9, 3, 1, 1),
    (4, 4, 20, 6, 6, 3, 2, 1),
    (3, 4, 3, 9, 8, 5, 1, 0),      # 3 banks' worth of columns on 4 banks, valid conv (seg)
    (8, 16, 16, 8, 10, 1, 2, 0),
    (4, 2, 6, 11, 11, 11, 4, 2),
    (5, 8, 24, 5, 7, 2, 2, 1),
    (1, 2, 5, 6, 5, 3, 2, 1),      # one column, one bank
    (4, 4, 8, 5, 8, 3, 1, 1, 0),   # a band of a tiled layer: no padding rows above
    (4, 4, 12, 6, 8, 3, 2, 1, 0),
]


def _out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _geom(cfg, c, h, w, k, s, p, pt=None):
    ow = _out(w, k, s, p)
    return ifm_geometry(h, w, -(-c // cfg.group), s, p, ow, cfg, pt), ow


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_placement_is_collision_free_and_fits_its_lines(case):
    cols, M, c, h, w, k, s, p, *_ = case
    cfg = SenseConfig(rows=2, cols=cols, group=M, ifm_kib=16)
    g, ow = _geom(cfg, c, h, w, k, s, p)
    groups = -(-c // M)
    seen = set()
    for y in range(h):
        for x in range(w):
            for cg in range(groups):
                bank, line, word = g.place(y, x, cg)
                assert 0 <= line < g.lines and (bank, line, word) not in seen
                seen.add((bank, line, word))
    # The columns of any tile read distinct banks at every tap.
    oh = _out(h, k, s, p)
    pixels = [(oy, ox) for oy in range(oh) for ox in range(ow)]
    tiles = ([pixels[i:i + cols] for i in range(0, len(pixels), cols)] if not g.seg else
             [[(oy, ox) for ox in range(x0, min(ow, x0 + cols))]
              for oy in range(oh) for x0 in range(0, ow, cols)])
    for tile in tiles:
        for kh in range(k):
            for kw in range(k):
                banks = [g.place(oy * s + kh - p, ox * s + kw - p, 0)[0] for oy, ox in tile
                         if 0 <= oy * s + kh - p < h and 0 <= ox * s + kw - p < w]
                assert len(set(banks)) == len(banks)


def _tensor_beats(x, lane=0):
    data = bytes(range(0x55, 0x55 + lane))          # bytes of whatever precedes the tensor
    data += np.ascontiguousarray(x.transpose(1, 2, 0)).astype(np.int8).tobytes()
    data += bytes(-len(data) % BEAT_BYTES)
    return [int.from_bytes(data[i:i + BEAT_BYTES], "little")
            for i in range(0, len(data), BEAT_BYTES)]


async def _set_up(ctx, dut, **geom):
    """Set the store up for a geometry and wait until its constants are valid."""
    for name, value in geom.items():
        ctx.set(getattr(dut.geom, name), value)
    ctx.set(dut.setup, 1)
    await ctx.tick()
    ctx.set(dut.setup, 0)
    while not ctx.get(dut.ready):
        await ctx.tick()


async def _check_reads(ctx, dut, rng, x, g, conv, out, split):
    """Random tiles and taps of conv (kernel, stride, pad, pad_top) over the loaded tensor `x`
    placed as `g`, (oh, ow) output pixels: each column's word against the tensor."""
    k, s, p, pt = conv
    oh, ow = out
    cols = len(dut.col)
    M = len(dut.col[0].word)
    groups = x.shape[0] // M
    h, w = x.shape[1:]
    for _ in range(40):
        oy, ox = int(rng.integers(oh)), int(rng.integers(ow))
        kh, kw, cg = int(rng.integers(k)), int(rng.integers(k)), int(rng.integers(groups))
        lam = g.tau(kh, kw, p, pt) + oy * g.v + ox
        hi, lo = split(lam)
        ctx.set(dut.rd_en, 1)
        ctx.set(dut.rd_hi, hi)
        ctx.set(dut.rd_lo, lo)
        ctx.set(dut.rd_cg, cg)
        await ctx.tick()
        ctx.set(dut.rd_en, 0)
        for j in range(cols):
            py, px = oy, ox + j
            if not g.seg:
                py, px = oy + (ox + j) // ow, (ox + j) % ow
            elif px >= ow:
                continue
            iy, ix = py * s + kh - pt, px * s + kw - p
            if not (0 <= iy < h and 0 <= ix < w):
                continue
            want = x[cg * M:(cg + 1) * M, iy, ix]
            got = [ctx.get(dut.col[j].word[i]) for i in range(M)]
            assert got == list(want), (oy, ox, kh, kw, cg, j)
            assert ctx.get(dut.col[j].nz) == int(want.any())
        await ctx.tick()


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_store_loads_and_reads_every_column(case):
    cols, M, c, h, w, k, s, p, *top = case
    pt = top[0] if top else p
    cfg = SenseConfig(rows=2, cols=cols, group=M, ifm_kib=16)
    g, ow = _geom(cfg, c, h, w, k, s, p, pt)
    groups = -(-c // M)
    rng = np.random.default_rng(sum(case))
    x = rng.integers(-128, 128, (groups * M, h, w)).astype(np.int8)
    x[:, rng.random((h, w)) < 0.3] = 0
    dut = IfmStore(cfg)
    lane = 0 if pt == p else 4 * (groups % 4)     # bands may start inside a beat
    beats = _tensor_beats(x, lane)
    oh = _out(h, k, s, p) if pt == p else (h - k) // s + 1     # a band: its output rows
    B = cfg.ifm_banks

    def split(lam):
        return (lam // B) * g.gl % cfg.ifm_bank_lines, lam % B

    async def bench(ctx):
        await _set_up(ctx, dut, in_h=h, in_w=w, in_groups=groups, stride=s, pad=p, pad_top=pt,
                      out_w=ow)
        kc = dut.k
        assert ctx.get(kc.lines) == g.lines and ctx.get(kc.v) == g.v
        assert ctx.get(kc.seg) == g.seg and ctx.get(kc.gl) == g.gl
        assert (ctx.get(kc.tau0_hi), ctx.get(kc.tau0_lo)) == split(g.tau0)
        ctx.set(dut.load, 1)
        ctx.set(dut.load_lane, lane)
        await ctx.tick()
        ctx.set(dut.load, 0)
        cycles, pending = 0, list(beats)
        row_bytes = w * groups * M
        while ctx.get(dut.loading):
            # rows_in never counts a row whose last byte has not arrived (the beat being
            # placed, piece by piece, is taken with its last piece)
            rows_in = ctx.get(dut.rows_in)
            assert len(beats) - len(pending) + 1 >= -(-(lane + rows_in * row_bytes) // 16)
            send = bool(pending) and rng.random() >= 0.2
            ctx.set(dut.beat.valid, int(send))
            if send:
                ctx.set(dut.beat.payload, pending[0])
            taken = send and ctx.get(dut.beat.ready)
            await ctx.tick()
            cycles += 1
            if taken:
                pending.pop(0)
        ctx.set(dut.beat.valid, 0)
        assert ctx.get(dut.rows_in) == h
        assert cycles >= load_pieces(h * w, groups * M, lane)
        await _check_reads(ctx, dut, rng, x, g, (k, s, p, pt), (oh, ow), split)

    run_testbench(dut, bench)


@pytest.mark.parametrize("cols, M, c, h, w, half", [
    (4, 4, 16, 5, 7, 0), (8, 4, 32, 6, 9, 1), (2, 8, 16, 4, 3, 0), (8, 2, 16, 3, 11, 1),
    (4, 16, 32, 7, 6, 1)])
def test_pair_load_places_both_streams(cols, M, c, h, w, half):
    """A pair load: blocks of B / 2 pixels alternate between ``beat`` and ``beat2``, each
    stream with its own random gaps (the second starting late, as on the weight port); the
    tensor reads back as a plain load's would, ``rows_in`` never counts a row before both
    streams have delivered it, and the load takes the longer stream's beats."""
    cfg = SenseConfig(rows=2, cols=cols, group=M, ifm_kib=16)
    g, ow = _geom(cfg, c, h, w, 3, 1, 1)
    assert g.v == w and c % BEAT_BYTES == 0       # (eligible: V = W, pixels of whole beats)
    groups = c // M
    rng = np.random.default_rng(cols * h + w)
    x = rng.integers(-128, 128, (c, h, w)).astype(np.int8)
    x[:, rng.random((h, w)) < 0.3] = 0
    dut = IfmStore(cfg)
    B, P, gl = cfg.ifm_banks, cfg.ifm_banks // 2, g.gl
    beats = _tensor_beats(x)
    pixel_of = [i // gl for i in range(len(beats))]
    streams = [[i for i in range(len(beats)) if pixel_of[i] // P % 2 == h_] for h_ in (0, 1)]
    line0 = cfg.ifm_bank_lines // 2 if half else 0

    def split(lam):
        return ((lam // B) * gl + line0) % cfg.ifm_bank_lines, lam % B

    async def bench(ctx):
        await _set_up(ctx, dut, in_h=h, in_w=w, in_groups=groups, stride=1, pad=1, pad_top=1,
                      out_w=ow)
        ctx.set(dut.load_half, half)
        ctx.set(dut.read_half, half)
        ctx.set(dut.pair, 1)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.pair, 0)
        pending = [list(s_) for s_ in streams]
        cycles = 0
        ports = (dut.beat, dut.beat2)
        while ctx.get(dut.loading):
            rows_in = ctx.get(dut.rows_in)
            assert all(pixel_of[i] // w >= rows_in for q in pending for i in q)
            sends = []
            for port, q, late in zip(ports, pending, (0, 7)):
                send = bool(q) and cycles >= late and rng.random() >= 0.25
                ctx.set(port.valid, int(send))
                if send:
                    ctx.set(port.payload, beats[q[0]])
                sends.append(send and ctx.get(port.ready))
            await ctx.tick()
            cycles += 1
            for q, taken in zip(pending, sends):
                if taken:
                    q.pop(0)
        for port in ports:
            ctx.set(port.valid, 0)
        assert not pending[0] and not pending[1]
        for _ in range(3):
            await ctx.tick()
        assert ctx.get(dut.rows_in) == h
        assert cycles >= max(len(q) for q in streams)
        await _check_reads(ctx, dut, rng, x, g, (3, 1, 1, 1), (h, ow), split)

    run_testbench(dut, bench)


@pytest.mark.parametrize("cols, taps", [(4, 2), (8, 4), (4, 4), (8, 8)])
def test_aux_port_reads_a_stride_1_placement(cols, taps):
    """The pool pass's port: a line of each of `pool_taps` consecutive pixels from an aligned
    pixel index, in any of the groups of that many banks (`pool_width` 2 by default, 4, 8 as in
    `zcu102`)."""
    cfg = SenseConfig(rows=2, cols=cols, group=4, ifm_kib=16, pool_width=taps)
    assert cfg.pool_taps == taps and cfg.ifm_banks == cols
    h, w, groups = 5, 6, 7                   # two lines a pixel, the second holding three words
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (groups * 4, h, w)).astype(np.int8)
    dut = IfmStore(cfg)

    async def bench(ctx):
        await _set_up(ctx, dut, in_h=h, in_w=w, in_groups=groups, stride=1, pad=0, pad_top=0,
                      out_w=w)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.beat.valid, 1)
        for beat in _tensor_beats(x):
            ctx.set(dut.beat.payload, beat)
            while not ctx.get(dut.beat.ready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(dut.beat.valid, 0)
        wpl = cfg.ifm_words_per_line
        for first in range(0, h * w, taps):
            for line in range(-(-groups // wpl)):
                ctx.set(dut.aux_en, 1)
                ctx.set(dut.aux_pixel, first)
                ctx.set(dut.aux_line, line)
                await ctx.tick()
                ctx.set(dut.aux_en, 0)
                for slot, pixel in enumerate(range(first, min(first + taps, h * w))):
                    y, xx = divmod(pixel, w)
                    for word, cg in enumerate(range(line * wpl, min(groups, line * wpl + wpl))):
                        got = [ctx.get(dut.aux_data[slot][word][i]) for i in range(4)]
                        assert got == x[cg * 4:(cg + 1) * 4, y, xx].tolist(), (pixel, line)

    run_testbench(dut, bench)


def test_load_pieces():
    assert load_pieces(10, 16) == 10            # a beat a pixel
    assert load_pieces(8, 4) == 8               # four pixels a beat: a piece each
    assert load_pieces(4, 32) == 8              # two beats a pixel
    assert load_pieces(4, 20) == 11             # 80 bytes: pixel ends and lines cut beats
    assert load_pieces(2, 16, lane=4) == 4      # a band starting inside a beat
    # per row (load following): the pieces up to each row's end
    for w, pixel_bytes, lane in [(1, 4, 0), (3, 12, 4), (7, 20, 8), (13, 48, 12), (5, 64, 0)]:
        assert load_row_pieces(6, w, pixel_bytes, lane) == [
            load_pieces(r * w, pixel_bytes, lane) for r in range(1, 7)]
