"""The accelerator's controllers on their own, in the Amaranth simulator: the weight loader's
ring back-pressure, the layer check's verdicts and the pool unit's windows and reads. (Whole runs through every controller are in
test_system.py.)"""

import numpy as np
import pytest

from host import golden
from host.perf import pool_reads, pool_row_reuse
from hw.config import BEAT_BYTES, SenseConfig
from hw.layouts import LayerFlags, LayerKind, graph_layout, layer_descriptor_layout, unpack
from hw.soc.layer_check import CheckStep, LayerCheck
from hw.soc.pool import PoolUnit
from hw.soc.weight_loader import WeightLoader
from sim.amaranth_sim import run_testbench

RING = SenseConfig(rows=4, cols=4, group=4, weight_kib=1)   # 256-word ring, one beat per word


def test_weight_loader_fills_the_ring_and_waits_for_release():
    dut = WeightLoader(RING)
    depth = RING.weight_depth
    assert dut.word_beats == 1

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        written = []
        for n in range(depth + 3):
            ready = ctx.get(dut.ready)
            if n < depth:
                assert ready, f"word {n} refused with an empty ring"
            else:
                assert not ready, f"word {n} accepted over an unreleased word"
                break
            ctx.set(dut.payload, 0x1000 + n)
            ctx.set(dut.accept, 1)
            assert ctx.get(dut.wr_en) and ctx.get(dut.wr_addr) == n % depth
            written.append(n)
            await ctx.tick()
            ctx.set(dut.accept, 0)
        assert ctx.get(dut.avail) == depth
        ctx.set(dut.release, 5)              # the core is done with words 0..4
        assert ctx.get(dut.ready)
        ctx.set(dut.accept, 1)
        assert ctx.get(dut.wr_addr) == 0     # word 256 overwrites word 0 of the ring
        await ctx.tick()
        ctx.set(dut.accept, 0)
        assert ctx.get(dut.avail) == depth + 1

    run_testbench(dut, bench)


def _descriptor(**changes):
    d = {name: 0 for name, _ in layer_descriptor_layout() if name != "graph"}
    d["graph"] = 0                      # every whole-network field zero: a plain layer
    d.update(kind=0, flags=0, in_channels=8, in_groups=2, in_h=6, in_w=6, out_channels=4,
             out_h=6, out_w=6, kernel_h=3, kernel_w=3, stride=1, pad=1, k_tiles=1, p_tiles=9,
             weight_offset=0x100, param_offset=0x40, in_offset=0, out_offset=0x400,
             param_size=4 * BEAT_BYTES)
    d.update(changes)
    return d


def _verdicts(config, desc, window=(0, 1 << 20)):
    dut = LayerCheck(config)
    out = {}

    async def bench(ctx):
        # The graph half as its bits (an int), the rest by field.
        graph = unpack(graph_layout(), desc.get("graph", 0))
        ctx.set(dut.desc, {**desc, "graph": graph})
        ctx.set(dut.window_base, window[0])
        ctx.set(dut.window_end, window[0] + window[1])
        for step in (CheckStep.A, CheckStep.B, CheckStep.C, CheckStep.HOLD, CheckStep.HOLD):
            ctx.set(dut.step, step)
            await ctx.tick()
        out.update(consistent=ctx.get(dut.consistent), fits=ctx.get(dut.fits),
                   supported=ctx.get(dut.supported),
                   in_window=ctx.get(dut.in_window), kpad=ctx.get(dut.kpad),
                   ifm_bytes=ctx.get(dut.ifm_bytes))

    run_testbench(dut, bench)
    return out


def test_layer_check_verdicts():
    cfg = SenseConfig.preset("small")
    words = 3 * 3 * 2 * cfg.cycles_per_group       # one k tile's weight words
    good = _descriptor(weight_size=words * BEAT_BYTES)
    v = _verdicts(cfg, good)
    assert v == {"consistent": 1, "fits": 1, "in_window": 1, "supported": 1, "kpad": 4,
                 "ifm_bytes": 6 * 6 * 2 * 4}
    # Bands: any height up to out_h; input-channel blocks; weight blocks are not run.
    banded = _verdicts(cfg, {**good, "graph": _exec_bits(band_rows=4)})
    assert banded["consistent"] == 1 and banded["supported"] == 1 and banded["fits"] == 1
    assert _verdicts(cfg, {**good, "graph": _exec_bits(band_rows=7)})["consistent"] == 0
    blocks = _exec_bits(c_blocks=2, c_block_groups=1, psum_offset=0x800)
    assert _verdicts(cfg, {**good, "graph": blocks}) == {**v, "kpad": 4}
    for bad in (dict(c_blocks=2), dict(c_blocks=2, c_block_groups=2, psum_offset=0x800),
                dict(c_blocks=3, c_block_groups=1, psum_offset=0x800),
                dict(c_blocks=2, c_block_groups=1, psum_offset=0x808),
                dict(c_block_groups=1), dict(psum_offset=0x800)):
        assert _verdicts(cfg, {**good, "graph": _exec_bits(**bad)})["consistent"] == 0, bad
    # The partial sums' range (9 pixel tiles x 4 channels x one beat) must lie in the window.
    assert _verdicts(cfg, {**good, "graph": blocks}, window=(0, 0x900))["in_window"] == 0
    assert _verdicts(cfg, {**good, "graph": blocks}, window=(0, 0xA40))["in_window"] == 1
    # One k tile of 64 channels (288 words) exceeds a 256-word buffer; blocks of 8 groups fit.
    ring = SenseConfig(rows=4, cols=4, group=4, weight_kib=1)
    wide = _descriptor(in_channels=64, in_groups=16, weight_size=288 * BEAT_BYTES)
    assert _verdicts(ring, wide)["fits"] == 0
    halves = _exec_bits(c_blocks=2, c_block_groups=8, psum_offset=0x800)
    assert _verdicts(ring, {**wide, "graph": halves})["fits"] == 1
    assert _verdicts(ring, {**wide, "graph": _exec_bits(c_blocks=2, c_block_groups=15,
                                                         psum_offset=0x800)})["fits"] == 0
    assert _verdicts(cfg, {**good, "graph": _exec_bits(k_block=1)})["supported"] == 1
    assert _verdicts(cfg, {**good, "graph": 1 << 300})["supported"] == 1   # links: host only
    assert _verdicts(cfg, {**good, "out_h": 5})["consistent"] == 0      # not the conv's size
    assert _verdicts(cfg, {**good, "weight_size": 16})["consistent"] == 0
    assert _verdicts(cfg, {**good, "flags": LayerFlags.POOL.value})["consistent"] == 0   # no pool window
    big = _descriptor(in_h=64, in_w=64, out_h=64, out_w=64, p_tiles=1024,
                      weight_size=words * BEAT_BYTES)
    assert _verdicts(cfg, big)["fits"] == 0                       # beyond the IFM store
    # In bands of 8 rows (10 input rows of 64 x 8 bytes) it fits; in bands of 60 it does not.
    assert _verdicts(cfg, {**big, "graph": _exec_bits(band_rows=8)})["fits"] == 1
    assert _verdicts(cfg, {**big, "graph": _exec_bits(band_rows=60)})["fits"] == 0
    assert _verdicts(cfg, good, window=(0x200, 1 << 20))["in_window"] == 0


def _exec_bits(**fields):
    """The graph half of a descriptor with the given graph.exec fields, as an int."""
    layout = graph_layout()
    base = layout["exec"].offset
    return sum(v << (base + layout["exec"].shape[name].offset) for name, v in fields.items())


def test_layer_check_verdicts_for_residual_adds():
    cfg = SenseConfig.preset("small")
    good = _descriptor(kind=LayerKind.ADD.value, flags=LayerFlags.RELU.value, out_channels=8,
                       kernel_h=1, kernel_w=1, pad=0, k_tiles=0, p_tiles=0, weight_offset=0,
                       param_offset=0, param_size=0,
                       graph=_exec_bits(in2_offset=0x800, add_shift=16, add_mult_a=40000,
                                        add_mult_b=20000))
    v = _verdicts(cfg, good)
    assert v == {"consistent": 1, "fits": 1, "in_window": 1, "supported": 1, "kpad": 8,
                 "ifm_bytes": 6 * 6 * 2 * 4}
    huge = {**good, "in_h": 200, "in_w": 200, "out_h": 200, "out_w": 200}
    assert _verdicts(cfg, huge, window=(0, 1 << 24))["fits"] == 1       # chunked: any size
    # The second input must lie in the window too (the others do here).
    assert _verdicts(cfg, good, window=(0, 0x600))["in_window"] == 0
    for bad in ({"graph": _exec_bits(in2_offset=0x800, add_mult_a=1)},   # shift 0
                {"graph": _exec_bits(in2_offset=0x800, add_shift=48)},   # shift beyond 47
                {"graph": _exec_bits(in2_offset=0x808, add_shift=16)},   # misaligned
                {"out_channels": 4}, {"out_w": 5},                       # shapes differ
                {"flags": LayerFlags.POOL.value}):
        assert _verdicts(cfg, {**good, **bad})["consistent"] == 0, bad
    tiled = {**good, "graph": good["graph"] | _exec_bits(band_rows=3)}
    assert _verdicts(cfg, tiled)["supported"] == 0


def test_layer_check_verdicts_for_concat_ranges():
    cfg = SenseConfig.preset("small")
    words = 3 * 3 * 2 * cfg.cycles_per_group
    conv = _descriptor(weight_size=words * BEAT_BYTES)          # 4 output channels: kpad 4
    into = {**conv, "graph": _exec_bits(out_c_offset=4, out_c_total=16)}
    v = _verdicts(cfg, into)
    assert (v["consistent"], v["supported"], v["fits"], v["in_window"]) == (1, 1, 1, 1)
    # The output range is 36 pixels 16 bytes apart from channel 4: it ends at 0x400 + 4 + 35 *
    # 16 + 4 = 0x638, so a window ending at 0x630 (beat-rounded: 0x640 needed) excludes it.
    assert _verdicts(cfg, into, window=(0, 0x630))["in_window"] == 0
    assert _verdicts(cfg, into, window=(0, 0x640))["in_window"] == 1
    for bad in ({"out_c_offset": 2, "out_c_total": 16},      # not a whole word of M channels
                {"out_c_offset": 16, "out_c_total": 16},     # past the tensor's channels
                {"out_c_offset": 4, "out_c_total": 18}):     # tensor channels not padded to M
        assert _verdicts(cfg, {**conv, "graph": _exec_bits(**bad)})["consistent"] == 0, bad
    pooled = {**into, "flags": LayerFlags.POOL.value, "pool_kernel": 2, "pool_stride": 2}
    assert _verdicts(cfg, pooled)["supported"] == 0           # fused max-pool into a concat
    concat = _descriptor(kind=LayerKind.CONCAT.value, out_channels=8, kernel_h=1, kernel_w=1,
                         pad=0)
    v = _verdicts(cfg, concat, window=(0x10000, 16))           # it touches no memory
    assert (v["consistent"], v["supported"], v["fits"], v["in_window"]) == (1, 1, 1, 1)
    assert _verdicts(cfg, {**concat, "flags": 1})["consistent"] == 0
    assert _verdicts(cfg, {**concat, "graph": _exec_bits(band_rows=2)})["supported"] == 0


def test_layer_check_verdicts_for_maxpool_layers():
    """A MAXPOOL runs with any undilated window (its input placed at stride 1 must fit the IFM
    store, or a band of it); dilated windows and max-pools that count padding are UNSUPPORTED;
    a wrong output size (by the pool unit's counting, ceil_mode included) is BAD_DESCRIPTOR."""
    cfg = SenseConfig.preset("small")
    window = dict(pool_kernel_w=3, pool_stride_w=2, pool_pad_l=1, pool_pad_b=1, pool_pad_r=1)
    good = _descriptor(kind=LayerKind.MAXPOOL.value, in_channels=8, out_channels=8, out_h=3,
                       out_w=3, kernel_h=1, kernel_w=1, pad=0, k_tiles=0, p_tiles=0,
                       weight_offset=0, param_offset=0, param_size=0, pool_kernel=3,
                       pool_stride=2, pool_pad=1, graph=_exec_bits(**window))
    v = _verdicts(cfg, good)
    assert (v["consistent"], v["supported"], v["fits"], v["in_window"]) == (1, 1, 1, 1), v
    # unequal padding (6 + 1 + 0 - 3) / 2 + 1 = 3 columns: runs; a 3x2 window gives 4: wrong
    for change, verdict in (({"pool_pad_r": 0}, (1, 1)), ({"pool_kernel_w": 2}, (0, 1)),
                            ({"pool_dilation": 1}, (1, 0))):
        v = _verdicts(cfg, {**good, "graph": _exec_bits(**{**window, **change})})
        assert (v["consistent"], v["supported"]) == verdict, change
    assert _verdicts(cfg, {**good, "flags": LayerFlags.COUNT_PAD.value})["supported"] == 0
    assert _verdicts(cfg, {**good, "flags": LayerFlags.RELU.value})["supported"] == 1
    # ceil_mode: 7 rows, kernel 2, stride 2 give 3 rows (floor) or 4 (ceil); 6 + 2 columns,
    # kernel 3, stride 2 give 3 (floor) or 4 (ceil)
    ceil = {**good, "in_h": 7, "pool_kernel": 2, "pool_pad": 0, "out_h": 4, "out_w": 4,
            "graph": _exec_bits(**{**window, "pool_pad_b": 0})}
    assert _verdicts(cfg, ceil)["consistent"] == 0
    assert _verdicts(cfg, {**ceil, "flags": LayerFlags.CEIL.value})["consistent"] == 1
    for bad in ({"out_h": 4}, {"out_channels": 4}, {"pool_stride": 0}, {"in_offset": 8},
                {"param_size": 16}):
        assert _verdicts(cfg, {**good, **bad})["consistent"] == 0, bad
    # Pool bands: any height for windows whose stride is at most their kernel; a gapped window
    # (2x2 stride 3) in bands is BAD_DESCRIPTOR (a band could start past the map).
    banded = {**good, "graph": _exec_bits(**window, pool_band_rows=1)}
    assert _verdicts(cfg, banded)["consistent"] == 1
    gapped = {**good, "pool_kernel": 2, "pool_stride": 3, "pool_pad": 0, "out_h": 2, "out_w": 2}
    gapped_window = dict(pool_kernel_w=2, pool_stride_w=3)
    assert _verdicts(cfg, {**gapped, "graph": _exec_bits(**gapped_window)})["consistent"] == 1
    assert _verdicts(cfg, {**gapped, "graph": _exec_bits(**gapped_window, pool_band_rows=1)}) \
        ["consistent"] == 0
    big = {**good, "in_h": 64, "in_w": 64, "out_h": 32, "out_w": 32}
    assert _verdicts(cfg, big, window=(0, 1 << 24))["fits"] == 0           # 32 KiB input


def test_layer_check_verdicts_for_average_pooling():
    """AVGPOOL needs a divisor entry per window count (kernel area), GAP one and an output of
    1x1; an AVGPOOL window beyond the divisor memory is TOO_LARGE."""
    cfg = SenseConfig.preset("small")
    window = dict(pool_kernel_w=3, pool_stride_w=1, pool_pad_l=1, pool_pad_b=1, pool_pad_r=1)
    avg = _descriptor(kind=LayerKind.AVGPOOL.value, in_channels=8, out_channels=8, kernel_h=1,
                      kernel_w=1, pad=0, k_tiles=0, p_tiles=0, weight_offset=0,
                      param_size=9 * BEAT_BYTES, pool_kernel=3, pool_stride=1, pool_pad=1,
                      graph=_exec_bits(**window))
    v = _verdicts(cfg, avg)
    assert (v["consistent"], v["supported"], v["fits"], v["in_window"]) == (1, 1, 1, 1), v
    assert _verdicts(cfg, {**avg, "param_size": 8 * BEAT_BYTES})["consistent"] == 0
    assert _verdicts(cfg, {**avg, "flags": LayerFlags.COUNT_PAD.value})["supported"] == 1
    wide = {**avg, "in_h": 17, "in_w": 17, "out_h": 1, "out_w": 1, "pool_kernel": 17,
            "pool_pad": 0, "param_size": 289 * BEAT_BYTES,
            "graph": _exec_bits(pool_kernel_w=17, pool_stride_w=1)}
    v = _verdicts(cfg, wide)
    assert v["consistent"] == 1 and v["fits"] == 0                  # 289 taps > 256 divisors
    gap = {**avg, "kind": LayerKind.GAP.value, "out_h": 1, "out_w": 1, "pool_kernel": 0,
           "pool_stride": 0, "pool_pad": 0, "param_size": BEAT_BYTES, "graph": 0}
    v = _verdicts(cfg, gap)
    assert (v["consistent"], v["supported"], v["fits"], v["in_window"]) == (1, 1, 1, 1), v
    assert _verdicts(cfg, {**gap, "out_w": 2})["consistent"] == 0
    assert _verdicts(cfg, {**gap, "param_size": 2 * BEAT_BYTES})["consistent"] == 0


def _pool_runs(config, cases):
    """One PoolUnit, its IFM reads answered a cycle later, the DMA always ready, over each case
    (x (C, H, W) int8, golden.Window, average, count_pad) in turn, one started after the other
    finished (as the accelerator runs pool bands): per case (the pooled map (C, OH, OW), cycles
    from start to done)."""
    dut = PoolUnit(config)
    runs = []

    async def bench(ctx):
        for sig in (dut.cmd.ready, dut.data.ready):
            ctx.set(sig, 1)
        for x, win, average, count_pad in cases:
            runs.append(await _pool_case(ctx, dut, config, x, win, average, count_pad))

    run_testbench(dut, bench)
    return runs


async def _pool_case(ctx, dut, config, x, win, average, count_pad):
    """One pool pass of `_pool_runs`: (the pooled map, cycles from start to done)."""
    chans, h, w = x.shape
    m, wpl = config.group, config.ifm_words_per_line
    (kh, kw), (sh, sw), pads = win.kernel, win.stride, win.pads
    padded = np.zeros((-(-chans // (m * wpl)) * m * wpl, h * w + config.pool_taps), np.uint8)
    padded[:chans, :h * w] = x.reshape(chans, -1).view(np.uint8)
    fields = dict(zip(("kh", "kw", "sh", "sw", "pt", "pl", "pb", "pr"), (kh, kw, sh, sw, *pads)))
    for name, value in fields.items():
        ctx.set(getattr(dut.window, name), value)
    for sig, value in ((dut.map_h, h), (dut.map_w, w), (dut.gk, -(-chans // m)),
                       (dut.average, average), (dut.count_pad, count_pad),
                       (dut.ceil, win.ceil_mode)):
        ctx.set(sig, value)
    for n in range(1, kh * kw + 1):
        mult, shift = golden.scale_to_mult_shift(np.array([1.0 / n]))
        ctx.set(dut.div_wr_addr, n - 1)
        ctx.set(dut.div_wr_data, {"mult": int(mult[0]), "shift": int(shift[0])})
        ctx.set(dut.div_wr_en, 1)
        await ctx.tick()
    ctx.set(dut.div_wr_en, 0)
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    read, beats = None, []
    for cycle in range(1, 100_000):
        if read is not None:                # the line `read` of pool_taps pixels
            pixel, line = read
            lanes = padded[line * m * wpl:(line + 1) * m * wpl, pixel:pixel + config.pool_taps]
            ctx.set(dut.rd_data.as_value(), int.from_bytes(lanes.T.tobytes(), "little"))
        read = (ctx.get(dut.rd_pixel), ctx.get(dut.rd_line)) if ctx.get(dut.rd_en) else None
        assert read is None or read[0] % config.pool_taps == 0, read
        if ctx.get(dut.data.valid):
            beats.append(ctx.get(dut.data.payload))
        if ctx.get(dut.done):
            await ctx.tick()
            oh, ow = win.out_size(h, w)
            raw = b"".join(int(b).to_bytes(BEAT_BYTES, "little") for b in beats)
            pooled = np.frombuffer(raw[:oh * ow * chans], np.int8).reshape(oh, ow, chans)
            return pooled.transpose(2, 0, 1), cycle
        await ctx.tick()
    raise AssertionError("the pool unit did not finish")


@pytest.mark.parametrize("cols, taps", [(1, 2), (8, 2), (8, 4), (8, 8)])
def test_pool_unit_reads_aligned_tap_groups(cols, taps):
    """The pool unit reads a window row's taps `pool_taps` pixel indices at a time (groups
    aligned to pool_taps: 1 (one bank), 2 by default, 4, and 8 as in `zcu102`): maximum and average (count_pad or
    not, ceil_mode) equal the golden model, with row reuse (maxima at vertical stride 1, and 3x3
    at stride 2) and
    without (a pooled row too wide for the row memories: with eight taps, as in `zcu102`), and
    the cycles are `host.perf.pool_reads` per line
    and the unit's sizing, a constant apart for every window and map (a beat written costs the
    walk no cycle: it waits in the unit's beat queue)."""
    config = SenseConfig(rows=4, cols=cols, group=4, pool_width=taps)
    rng = np.random.default_rng(cols)
    assert pool_row_reuse(golden.Window.of(3, 2, 1), 6, 1, False)     # (the first case's)
    cases = []
    for kernel, stride, pads, (chans, h, w), ceil, average in (
            (3, 2, 1, (16, 9, 11), False, False), (2, 2, 0, (32, 8, 8), False, False),
            (3, 1, 1, (24, 7, 5), False, True), (5, 3, 2, (16, 13, 6), True, False),
            (7, 1, 0, (16, 7, 7), False, True), (3, 2, (0, 1, 1, 0), (8, 6, 9), True, True),
            # row reuse (maxima at vertical stride 1, 2 or 3 window rows, or at stride 2 over
            # 3 rows, the first case too), and a pooled row too wide for the row memories
            # (every window reads all its rows)
            (3, 1, 1, (24, 7, 5), False, False), (2, 1, 0, (16, 6, 9), True, False),
            (3, 2, 0, (40, 10, 9), True, False),
            ((3, 2), (1, 2), (1, 0, 1, 1), (8, 8, 11), True, False),
            *([(3, 1, 1, (256, 2, 33), False, False)] if taps == 8 else [])):
        win = golden.Window.of(kernel, stride, pads, ceil_mode=ceil)
        x = rng.integers(-128, 128, (chans, h, w)).astype(np.int8)
        cases += [(x, win, average, count_pad)
                  for count_pad in ((False, True) if average else (False,))]
    extra = set()
    for (x, win, average, count_pad), (got, cycles) in zip(cases, _pool_runs(config, cases)):
        if average:
            want = golden.avgpool2d(x[None], win, count_include_pad=count_pad)[0]
        else:
            want = golden.maxpool2d(x[None], win)[0]
        assert np.array_equal(got, want), (win, average, count_pad)
        chans, _, w = x.shape
        oh, ow = want.shape[1:]
        lines = -(-chans // (config.group * config.ifm_words_per_line))
        reuse = pool_row_reuse(win, ow, lines, average)
        reads = lines * pool_reads(oh, ow, w, win, win.pads[0], config.pool_taps, reuse)
        words = oh * ow * -(-chans // config.group)
        extra.add(cycles - reads - (words % config.ifm_words_per_line != 0) - max(oh, ow))
    assert len(extra) == 1, extra
