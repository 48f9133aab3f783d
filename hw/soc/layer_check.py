"""Layer checks: a descriptor's derived sizes, its consistency, whether it fits the on-chip
buffers, and whether every byte range it names lies in the DMA window, all decided before the
layer issues a single transaction."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from hw.config import BEAT_BYTES, LANE_BITS, SenseConfig
from hw.layouts import (
    ADD_EXEC_FIELDS,
    BAND_EXEC_FIELDS,
    POOL_EXEC_FIELDS,
    CONCAT_EXEC_FIELDS,
    DIM_BITS,
    FLAGS_KNOWN,
    KERNEL_BITS,
    LayerFlags,
    MAX_SHIFT,
    LayerKind,
    flag_set,
    layer_descriptor_layout,
    psum_row_bytes,
    record_bytes,
    weight_word_layout,
)
from hw.core.ifm_store import STRIDES, geometry_regs, ifm_geom_layout
from hw.soc.dma import ADDR_BITS, GATHER_STEPS, JOIN_STEPS, times_step, window_check
from hw.soc.pool import DIVISORS, SUM_BITS, pool_window_layout

__all__ = ["LayerCheck", "CheckStep", "RANGES"]

#: The byte ranges of a layer that are checked against the DMA window (an ADD has no weights
#: and parameters, a convolution no second input).
RANGES = ("weights", "params", "input", "output", "input2", "psum")
ADD_RANGES = ("input", "output", "input2")


class CheckStep(enum.Enum, shape=2):
    """Which products the check computes this cycle: one multiplier deep each, so no carry chain
    follows another in one cycle."""
    HOLD = 0
    A = 1
    B = 2
    C = 3


class LayerCheck(wiring.Component):
    """``desc`` (held stable from step A on) is checked in three steps, one a cycle (``step``
    A, B, C); a cycle later the window verdicts settle and, the cycle after, ``consistent``
    (BAD_DESCRIPTOR otherwise), ``fits`` (TOO_LARGE otherwise) and ``in_window``
    (OUT_OF_WINDOW otherwise) are valid, and ``supported``: a CONV / FC layer without the
    whole-network fields but bands and a concat's range, an ADD with only its own, a pooling
    layer with an undilated window (UNSUPPORTED otherwise; docs/memory-image.md), or a CONCAT
    (moves no data). ``is_add`` / ``is_concat`` / ``is_pool`` (MAXPOOL, AVGPOOL, GAP) /
    ``is_average`` / ``is_gap``: the kind (registered, like ``window`` and the map: valid from
    the cycle after step A). The pool pass's ``window`` and map (``map_h``,
    ``map_w``, ``map_groups``: a pooling layer's input or a conv's output); ``half_fits``: the
    largest band fits half the IFM store (band prefetch), ``pool_half_fits`` the pool pass's
    (pool band prefetch); ``weights_fit``: all weights fit.
    ``out_stride``: bytes from one output pixel to the next in DRAM (the padded channels, or the
    concat tensor's `out_c_total`); ``output_start`` includes `out_c_offset`. The derived sizes
    stay valid for the whole layer: ``blocked`` (input-channel blocks), ``block_groups`` and
    ``block_bytes`` (a full block's channel groups and weight bytes; without blocks, the
    layer's), ``kt_words`` (the weight words of one k tile, all channel groups), ``seg`` (the
    store's valid-convolution placement: pixel tiles by output row),
    ``fused`` (a CONV / FC with FUSE_ADD: its output rows pass the add unit with the tensor at
    ``input2_start``; registered), ``fused_away`` (an ADD with FUSE_ADD: its producer did it,
    it moves no data; registered), ``gathered`` (an input gather, ``in_step``: the input range
    runs to the last gathered pixel's end), ``gk`` output channel groups, ``kpad`` output channels padded to M,
    ``ifm_bytes`` (an ADD's tensor), ``out_bytes`` (the convolution output), and the DRAM
    address of each range (``*_start``)."""

    def __init__(self, config: SenseConfig):
        self._config = config
        members = {
            "desc": In(layer_descriptor_layout()), "step": In(CheckStep),
            "image_base": In(ADDR_BITS), "act_base": In(ADDR_BITS),
            "window_base": In(64), "window_end": In(66),
            "gk": Out(16), "kpad": Out(20), "ifm_bytes": Out(48), "out_bytes": Out(48),
            "consistent": Out(1), "supported": Out(1), "fits": Out(1), "in_window": Out(1),
            "is_add": Out(1), "is_concat": Out(1), "out_stride": Out(20),
            "weights_fit": Out(1), "is_pool": Out(1), "is_average": Out(1), "is_gap": Out(1),
            "window": Out(pool_window_layout()), "half_fits": Out(1), "pool_half_fits": Out(1),
            "map_h": Out(16), "map_w": Out(16), "map_groups": Out(16),
            "blocked": Out(1), "block_groups": Out(16), "block_bytes": Out(32), "seg": Out(1),
            "kt_words": Out(24),
            "fused": Out(1), "fused_away": Out(1), "gathered": Out(1), "joined": Out(1),
        }
        members |= {f"{name}_start": Out(ADDR_BITS + 1) for name in RANGES}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        self._win = Signal(pool_window_layout())     # the window, combinational (`window`)
        self._geo = self._store_geometry(m)
        cfg = self._config
        D = self.desc
        M = cfg.group
        lg_m = M.bit_length() - 1
        slots = cfg.cycles_per_group
        word_bytes = record_bytes(weight_word_layout(cfg), BEAT_BYTES)
        v = {name: Signal(width, name=name) for name, width in (
            ("pix", 24), ("rs", 8), ("hw_in", 24), ("ohs", 24), ("ows", 24), ("kt_rows", 24),
            ("ohc", 24),
            ("pt_cols", 32), ("groups", 24), ("ifm_words", 40), ("out_words", 40),
            ("w_words", 48), ("out_span", 48), ("psum_rows", 32), ("blk_groups", 24),
            ("blk_words", 48), ("cb_groups", 24), ("g_rows", 32), ("g_cols", 32),
            ("g_span", 40))}
        x = D.graph.exec
        # a gather's channel groups a pixel: the whole pixel's, or a joined conv's second part
        b_groups = Signal(16)
        m.d.comb += b_groups.eq(D.in_groups - (D.in_split << (LANE_BITS - lg_m)))
        with m.Switch(self.step):
            with m.Case(CheckStep.A):
                m.d.sync += [
                    self.gk.eq((D.out_channels + M - 1) >> lg_m),
                    v["pix"].eq(D.out_h * D.out_w), v["rs"].eq(D.kernel_h * D.kernel_w),
                    v["hw_in"].eq(D.in_h * D.in_w), v["ohs"].eq((D.out_h - 1) * D.stride),
                    v["ows"].eq((D.out_w - 1) * D.stride), v["kt_rows"].eq(D.k_tiles * cfg.rows),
                    v["ohc"].eq(D.out_h * cfg.cols),
                    v["psum_rows"].eq(D.p_tiles * D.out_channels),
                    v["cb_groups"].eq(x.c_blocks * x.c_block_groups),
                    # an input gather's rows and columns before its last pixel
                    v["g_rows"].eq((D.in_h - 1) * D.in_pitch),
                    v["g_cols"].eq((D.in_w - 1) * b_groups),
                ]
            with m.Case(CheckStep.B):
                m.d.sync += [
                    self.kpad.eq(self.gk << lg_m), v["groups"].eq(v["rs"] * D.in_groups),
                    # (a joined conv: its first input's part of the pixels)
                    v["ifm_words"].eq(v["hw_in"] * Mux(self.joined,
                                                       D.in_split << (LANE_BITS - lg_m),
                                                       D.in_groups)),
                    v["pt_cols"].eq(D.p_tiles * cfg.cols), v["out_words"].eq(v["pix"] * self.gk),
                    v["blk_groups"].eq(v["rs"] * x.c_block_groups),
                    # the bytes from a gather's first pixel to its last one's end
                    v["g_span"].eq((v["g_rows"] << LANE_BITS)
                                   + (times_step(v["g_cols"], D.in_step) << lg_m)
                                   + (b_groups << lg_m)),
                ]
            with m.Case(CheckStep.C):
                m.d.sync += [
                    v["w_words"].eq(D.k_tiles * v["groups"] * slots),
                    self.ifm_bytes.eq(v["ifm_words"] << lg_m),
                    self.out_bytes.eq(v["out_words"] << lg_m),
                    self.weights_start.eq(self.image_base + D.weight_offset),
                    self.params_start.eq(self.image_base + D.param_offset),
                    self.input_start.eq(self.act_base + D.in_offset),
                    self.output_start.eq(self.act_base + D.out_offset
                                         + D.graph.exec.out_c_offset),
                    v["out_span"].eq((v["pix"] - 1) * D.graph.exec.out_c_total + self.kpad),
                    self.input2_start.eq(self.act_base + D.graph.exec.in2_offset),
                    self.psum_start.eq(self.act_base + x.psum_offset),
                    v["blk_words"].eq(D.k_tiles * v["blk_groups"] * slots),
                ]
        m.d.comb += [self.gathered.eq(D.in_step != 0), self.joined.eq(D.in_split != 0)]
        lengths = {"weights": D.weight_size, "params": D.param_size,
                   "input": Mux(self.gathered & ~self.joined, v["g_span"], self.ifm_bytes),
                   "output": Mux(D.graph.exec.out_c_total != 0, v["out_span"], self.out_bytes),
                   # (an ADD's second input, or a fused conv's residual: its output's shape;
                   # a joined conv's second input: its gather)
                   "input2": Mux(self.is_add, self.ifm_bytes,
                                 Mux(self.joined, v["g_span"], self.out_bytes)),
                   "psum": v["psum_rows"] * psum_row_bytes(cfg)}
        verdicts = {}
        for name in RANGES:
            ok = verdicts[name] = Signal(name=f"{name}_ok")
            m.d.sync += ok.eq(window_check(m, getattr(self, f"{name}_start"), lengths[name],
                                           self.window_base, self.window_end, name)[2])
        blocked = self.blocked
        fuse = flag_set(D.flags, LayerFlags.FUSE_ADD)
        conv_ranges = (Cat(*(verdicts[n] for n in RANGES if n not in ("input2", "psum"))).all()
                       & (verdicts["psum"] | ~blocked)
                       & (verdicts["input2"] | ~(fuse | self.joined)))
        add_ranges = Cat(*(verdicts[n] for n in ADD_RANGES)).all()
        exec_fields = D.graph.exec
        not_add, conv_extra = self._extra_exec_fields(fuse)
        # Bands of any height, input-channel blocks; a k block of all the k tiles is the plain
        # layer's (weight blocks are not built: the weight ring streams any layer's weights).
        blocks_plain = (exec_fields.k_block == 0) | (exec_fields.k_block >= D.k_tiles)
        m.d.comb += [blocked.eq(x.c_blocks > 1),
                     self.block_groups.eq(Mux(blocked, x.c_block_groups, D.in_groups)),
                     self.block_bytes.eq(Mux(blocked, v["blk_words"] * word_bytes,
                                             D.weight_size)),
                     self.seg.eq(self._geo[0].seg),
                     self.kt_words.eq(v["groups"] * slots)]
        pool = flag_set(D.flags, LayerFlags.POOL)
        concat_range = exec_fields.out_c_total != 0
        pool_ranges = (verdicts["input"] & verdicts["output"]
                       & (verdicts["params"] | (D.param_size == 0)))
        self._pool_window(m)
        # The kind and the window, registered (valid a cycle after step A): they steer the
        # stream units all through the layer, and the descriptor's compares stay out of those
        # paths.
        m.d.sync += [self.is_add.eq(D.kind == LayerKind.ADD),
                     self.is_concat.eq(D.kind == LayerKind.CONCAT),
                     self.is_pool.eq(_pool_kind(D)),
                     self.is_average.eq((D.kind == LayerKind.AVGPOOL)
                                        | (D.kind == LayerKind.GAP)),
                     self.is_gap.eq(D.kind == LayerKind.GAP),
                     self.fused.eq(((D.kind == LayerKind.CONV) | (D.kind == LayerKind.FC))
                                   & fuse),
                     self.fused_away.eq((D.kind == LayerKind.ADD) & fuse),
                     self.window.eq(self._win)]
        m.d.comb += [self.out_stride.eq(Mux(concat_range, exec_fields.out_c_total, self.kpad)),
                     # A CONCAT touches no memory.
                     self.in_window.eq(self.is_concat
                                       | Mux(self.is_add, add_ranges,
                                             Mux(self.is_pool, pool_ranges, conv_ranges))),
                     self.consistent.eq(self._any_consistent(m, v, lg_m, word_bytes)),
                     # A known whole-network kind or field: UNSUPPORTED (checked before
                     # consistency, whose rules are the conv's); an unknown kind stays
                     # "supported" here and fails the consistency check instead.
                     self.supported.eq((((D.kind == LayerKind.CONV) | (D.kind == LayerKind.FC))
                                        & (conv_extra == 0)
                                        & ~(pool & concat_range)
                                        & ~(fuse & (pool | concat_range | blocked))
                                        & blocks_plain & self._stride_placed())
                                       | (self.is_add & (not_add == 0))
                                       | (self.is_concat & (exec_fields.as_value() == 0))
                                       | (self.is_pool & self._pool_plain())
                                       | (D.kind.as_value() > max(k.value for k in LayerKind))),
                     self.weights_fit.eq(v["w_words"] <= cfg.weight_depth),
                     # the largest band fits half the store: bands can be double-buffered
                     self.half_fits.eq(self._geo[0].lines <= cfg.ifm_bank_lines // 2),
                     self.pool_half_fits.eq(self._geo[1].lines <= cfg.ifm_bank_lines // 2),
                     # An ADD runs in chunks through its own buffer: it always fits.
                     self.fits.eq(self.is_add | self.is_concat
                                  | Mux(self.is_pool, self._pool_fits(),
                                        self._fits(v, slots)))]
        return m

    def _extra_exec_fields(self, fuse):
        """The graph.exec fields an ADD does not take, and those a conv / FC does not take:
        every one but a concat's range, bands and blocks; with a fused add (FUSE_ADD) the ADD
        fields too (the kind rules then refuse a max-pool, a concat's range and blocks with
        it); a joined conv's (``in_split``) second input offset too."""
        x = self.desc.graph.exec

        def others(allowed):
            return Cat(*(x[n] for n, _ in x.shape() if n not in allowed))
        conv = CONCAT_EXEC_FIELDS + BAND_EXEC_FIELDS
        return others(ADD_EXEC_FIELDS), Mux(fuse, others(conv + ADD_EXEC_FIELDS),
                                            Mux(self.joined, others(conv + ("in2_offset",)),
                                                others(conv)))

    def _store_geometry(self, m):
        """The IFM store's placement of the input, and of the conv output a max-pool reads
        back (hw.core.ifm_store.geometry_regs: valid in CHECK_E, four cycles after step A)."""
        cfg, D = self._config, self.desc
        g_in, g_back = Signal(ifm_geom_layout()), Signal(ifm_geom_layout())
        pool_kind = _pool_kind(D)
        # Bands: the largest is a middle band, (band_rows - 1) * stride + kernel_h input rows
        # without padding above.
        rows = D.graph.exec.band_rows
        banded = (rows != 0) & (rows < D.out_h)
        # The pool pass's largest band: (pool_band_rows - 1) * stride + kernel rows of its map.
        per = D.graph.exec.pool_band_rows
        pool_banded = per != 0
        pool_band = Signal(24)
        # The map the pool pass reads: a pooling layer's input, or a conv's output.
        # (combinational here, for the geometry; the outputs registered: valid from the cycle
        # after step A, so the descriptor's multiplexers stay out of the pool unit's paths)
        map_h, map_w, map_groups = Signal(16), Signal(16), Signal(16)
        m.d.comb += [map_h.eq(Mux(pool_kind, D.in_h, D.out_h)),
                     map_w.eq(Mux(pool_kind, D.in_w, D.out_w)),
                     map_groups.eq(Mux(pool_kind, D.in_groups,
                                       (D.out_channels + cfg.group - 1)
                                       >> (cfg.group.bit_length() - 1))),
                     pool_band.eq((per - 1) * self._win.sh + self._win.kh)]
        m.d.sync += [self.map_h.eq(map_h), self.map_w.eq(map_w),
                     self.map_groups.eq(map_groups)]
        band_in = Signal(20)
        m.d.comb += band_in.eq((rows - 1) * D.stride + D.kernel_h)
        m.d.comb += [g_in.in_h.eq(Mux(banded & (band_in < D.in_h), band_in, D.in_h)),
                     g_in.in_w.eq(D.in_w), g_in.in_groups.eq(D.in_groups),
                     g_in.stride.eq(D.stride), g_in.pad.eq(D.pad),
                     g_in.pad_top.eq(Mux(banded, 0, D.pad)), g_in.out_w.eq(D.out_w),
                     g_back.in_h.eq(Mux(pool_banded & (pool_band < map_h), pool_band,
                                        map_h)),
                     g_back.in_w.eq(map_w), g_back.in_groups.eq(map_groups),
                     g_back.stride.eq(1), g_back.pad.eq(0), g_back.pad_top.eq(0),
                     g_back.out_w.eq(map_w)]
        return geometry_regs(m, g_in, cfg, "chk_in"), geometry_regs(m, g_back, cfg, "chk_back")

    def _stride_placed(self):
        """The IFM store places strides 1, 2, 4 and 8 (0 is left to the consistency check)."""
        stride = self.desc.stride
        return ((stride & (stride - 1)) == 0) & (stride <= max(STRIDES))

    def _pool_window(self, m):
        """The window the pool pass runs: a GAP's whole map, a pooling layer's window fields, or
        a conv's fused square one."""
        D, win = self.desc, self._win
        x = D.graph.exec
        with m.If(D.kind == LayerKind.GAP):
            m.d.comb += [win.kh.eq(D.in_h), win.kw.eq(D.in_w), win.sh.eq(1), win.sw.eq(1)]
        with m.Elif(_pool_kind(D)):
            m.d.comb += [win.kh.eq(D.pool_kernel), win.kw.eq(x.pool_kernel_w),
                         win.sh.eq(D.pool_stride), win.sw.eq(x.pool_stride_w),
                         win.pt.eq(D.pool_pad), win.pl.eq(x.pool_pad_l),
                         win.pb.eq(x.pool_pad_b), win.pr.eq(x.pool_pad_r)]
        with m.Else():
            m.d.comb += [win.kh.eq(D.pool_kernel), win.kw.eq(D.pool_kernel),
                         win.sh.eq(D.pool_stride), win.sw.eq(D.pool_stride),
                         *(getattr(win, p).eq(D.pool_pad) for p in ("pt", "pl", "pb", "pr"))]

    def _pool_plain(self):
        """A pooling layer the pool pass runs: an undilated window, no other whole-network
        field; a MAXPOOL without COUNT_PAD."""
        D = self.desc
        x = D.graph.exec
        others = Cat(*(x[n] for n, _ in x.shape() if n not in POOL_EXEC_FIELDS))
        return ((others == 0) & (x.pool_dilation == 0)
                & ~((D.kind == LayerKind.MAXPOOL) & flag_set(D.flags, LayerFlags.COUNT_PAD)))

    def _any_consistent(self, m, v, lg_m, word_bytes):
        """The kind's consistency rules. Those of an ADD, a CONCAT and a pooling layer read the
        descriptor and the (registered) window only, so they are registered too (valid two
        cycles after step A, long before CHECK_E): the window's and the pooled sizes'
        arithmetic stays out of the controller's path. A conv's rules read the step products,
        valid a cycle after step C: they are registered then, valid in CHECK_E."""
        cfg = self._config
        add_ok, concat_ok, pool_ok, conv_ok = Signal(), Signal(), Signal(), Signal()
        tiles_seg, tiles_raster = Signal(), Signal()
        # (separator rows and input gathers: a conv's or FC's only)
        links = self.desc.graph.links
        no_conv_fields = ((self.desc.sep_slot == 0) & (self.desc.sep_valid == 0)
                          & (self.desc.in_step == 0) & (self.desc.in_pitch == 0)
                          & (self.desc.in_split == 0) & (links.image_rows == 0)
                          & (links.image_out_rows == 0) & (links.image_step == 0))
        m.d.sync += [add_ok.eq(self._add_consistent() & no_conv_fields),
                     concat_ok.eq(self._concat_consistent() & no_conv_fields),
                     pool_ok.eq(self._pool_consistent(m, self.window) & no_conv_fields),
                     conv_ok.eq(self._consistent(v, lg_m, word_bytes)),
                     # pixel tiles: cols pixels in raster order, or (a valid convolution, the
                     # store's `seg`, itself valid only in CHECK_E) ceil(OW / cols) per output
                     # row (checked as bounds: OH tiles of cols)
                     tiles_seg.eq(v["pt_cols"] < v["pix"] + v["ohc"]),
                     tiles_raster.eq(v["pt_cols"] < v["pix"] + cfg.cols)]
        conv = conv_ok & Mux(self._geo[0].seg, tiles_seg, tiles_raster)
        return Mux(self.is_add, add_ok, Mux(self.is_concat, concat_ok,
                                            Mux(self.is_pool, pool_ok, conv)))

    def _pool_consistent(self, m, win):
        """A pooling layer: its input's fields, the channels kept, a window whose output size
        (floor, or CEIL) is the descriptor's, a divisor entry per window count (AVGPOOL: kernel
        area; GAP: one), known flags, beat-aligned offsets. The window's products and sums are
        registered first (`_registered`), so the rules read registers a cycle after the window
        (valid three cycles after step A, still before CHECK_E)."""
        cfg, D = self._config, self.desc
        area = _registered(m, win.kh * win.kw, "pool_area")
        entries = Mux(D.kind == LayerKind.AVGPOOL, area, Mux(D.kind == LayerKind.GAP, 1, 0))
        return Cat(
            (D.flags.as_value() & ~FLAGS_KNOWN.value) == 0,
            D.in_channels != 0, D.in_groups == ((D.in_channels + cfg.group - 1)
                                                >> (cfg.group.bit_length() - 1)),
            D.in_groups < (1 << DIM_BITS), D.in_h != 0, D.in_h < (1 << DIM_BITS),
            D.in_w != 0, D.in_w < (1 << DIM_BITS), D.out_channels == D.in_channels,
            win.sh != 0, win.sw != 0, win.pt < win.kh, win.pb < win.kh, win.pl < win.kw,
            win.pr < win.kw,
            self._pooled_size(m, "h", D.out_h, D.in_h, win.kh, win.sh, win.pt, win.pb),
            self._pooled_size(m, "w", D.out_w, D.in_w, win.kw, win.sw, win.pl, win.pr),
            # pool bands only for windows that overlap or touch (a band always starts in the map)
            (D.graph.exec.pool_band_rows == 0) | (win.sh <= win.kh),
            D.param_size == entries * BEAT_BYTES,
            (D.in_offset | D.out_offset | D.param_offset)[:LANE_BITS] == 0,
        ).all()

    def _pooled_size(self, m, axis, o, n, k, s, before, after):
        """`o` is the number of windows on an axis of n values (hw.soc.pool's rule), from
        registered products and sums of the window's fields."""
        span = _registered(m, n + before + after, f"pool_span_{axis}")
        start = _registered(m, n + before, f"pool_start_{axis}")
        last = _registered(m, (o - 1) * s, f"pool_last_{axis}")         # the last window's
        end = _registered(m, o * s, f"pool_end_{axis}")                  # and one more
        floor = (last + k <= span) & (end + k > span)
        ceil = ((last + k < span + s) & (last < start)
                & ((end + k >= span + s) | (end >= start)))
        return ((o != 0) & (k != 0) & (k <= span)
                & Mux(flag_set(self.desc.flags, LayerFlags.CEIL), ceil, floor))

    def _pool_fits(self):
        """The map in the IFM store; an AVGPOOL window within the divisor memory, a GAP's sum
        within its width (at most 2**(SUM_BITS - 8) taps)."""
        cfg, D, win = self._config, self.desc, self.window
        area = win.kh * win.kw
        return ((self._geo[1].lines <= cfg.ifm_bank_lines)
                & ((D.kind != LayerKind.AVGPOOL) | (area <= DIVISORS))
                & (area <= 1 << (SUM_BITS - 8)))

    def _concat_consistent(self):
        """A CONCAT names its tensor (its producers wrote it): a known kind, no flags."""
        D = self.desc
        return (D.flags.as_value() == 0) & (D.in_channels != 0) & (D.out_channels != 0)

    def _add_consistent(self):
        """An ADD: two inputs and an output of one shape, RELU the only flag, a shift in
        1..MAX_SHIFT, beat-aligned offsets."""
        cfg, D = self._config, self.desc
        x = D.graph.exec
        return Cat(
            D.in_channels != 0, D.in_groups == ((D.in_channels + cfg.group - 1)
                                                >> (cfg.group.bit_length() - 1)),
            D.in_groups < (1 << DIM_BITS), D.in_h != 0, D.in_h < (1 << DIM_BITS),
            D.in_w != 0, D.in_w < (1 << DIM_BITS),
            D.out_channels == D.in_channels, D.out_h == D.in_h, D.out_w == D.in_w,
            (D.flags.as_value() & ~(LayerFlags.RELU | LayerFlags.FUSE_ADD).value) == 0,
            x.add_shift != 0, x.add_shift <= MAX_SHIFT,
            (D.in_offset | D.out_offset | x.in2_offset)[:LANE_BITS] == 0,
        ).all()

    def _consistent(self, v, lg_m, word_bytes):
        cfg, D = self._config, self.desc
        j = D.in_split != 0               # a joined conv (host.join)
        in_span_h = D.in_h + 2 * D.pad
        in_span_w = D.in_w + 2 * D.pad
        pool = flag_set(D.flags, LayerFlags.POOL)
        small = 1 << KERNEL_BITS          # the core's kernel, stride and padding fields
        return Cat(
            D.kind.as_value() <= max(k.value for k in LayerKind),
            (D.flags.as_value() & ~FLAGS_KNOWN.value) == 0,
            D.in_channels != 0, D.in_groups == ((D.in_channels + cfg.group - 1) >> lg_m),
            D.in_groups < (1 << DIM_BITS), D.in_h != 0, D.in_h < (1 << DIM_BITS),
            D.in_w != 0, D.in_w < (1 << DIM_BITS), D.out_h != 0, D.out_h < (1 << DIM_BITS),
            D.out_w != 0, D.out_w < (1 << DIM_BITS),
            D.out_channels != 0, D.out_channels <= cfg.max_channels,
            D.kernel_h != 0, D.kernel_h < small, D.kernel_w != 0, D.kernel_w < small,
            D.stride != 0, D.stride < small, D.pad < small,
            v["ohs"] + D.kernel_h <= in_span_h, in_span_h < v["ohs"] + D.stride + D.kernel_h,
            v["ows"] + D.kernel_w <= in_span_w, in_span_w < v["ows"] + D.stride + D.kernel_w,
            v["kt_rows"] >= D.out_channels, v["kt_rows"] < D.out_channels + cfg.rows,
            # enough pixel tiles for the pixels (not too many: `_any_consistent`)
            v["pt_cols"] >= v["pix"],
            D.weight_size == v["w_words"] * word_bytes,
            D.param_size == D.out_channels * BEAT_BYTES,
            (D.weight_offset | D.param_offset | D.in_offset | D.out_offset)[:LANE_BITS] == 0,
            D.graph.exec.band_rows <= D.out_h,
            # Input-channel blocks: c_blocks blocks of c_block_groups groups (the last may
            # have fewer), the partial-sum scratch beat-aligned; neither field without blocks.
            Mux(self.blocked,
                (D.graph.exec.c_block_groups != 0)
                & (v["cb_groups"] - D.graph.exec.c_block_groups < D.in_groups)
                & (D.in_groups <= v["cb_groups"])
                & (D.graph.exec.psum_offset[:LANE_BITS] == 0),
                (D.graph.exec.c_block_groups == 0) & (D.graph.exec.psum_offset == 0)),
            # A concat's channel range: M-aligned, inside the tensor's channels.
            (D.graph.exec.out_c_total == 0)
            | ((D.graph.exec.out_c_offset + self.kpad <= D.graph.exec.out_c_total)
               & (D.graph.exec.out_c_offset[:lg_m] == 0)
               & (D.graph.exec.out_c_total[:lg_m] == 0)),
            (D.graph.exec.pool_band_rows == 0) | (pool & (D.pool_stride <= D.pool_kernel)),
            # a fused add's shift and residual; ADD_RELU only with it
            ~flag_set(D.flags, LayerFlags.FUSE_ADD)
            | ((D.graph.exec.add_shift != 0) & (D.graph.exec.add_shift <= MAX_SHIFT)
               & (D.graph.exec.in2_offset[:LANE_BITS] == 0)),
            ~flag_set(D.flags, LayerFlags.ADD_RELU) | flag_set(D.flags, LayerFlags.FUSE_ADD),
            # separator rows (hw.soc.output_writer): a slot of at least cols pixels that the
            # image does not fill, not with a fused max-pool or input-channel blocks
            ((D.sep_slot == 0) & (D.sep_valid == 0))
            | ((D.sep_slot >= cfg.cols) & (D.sep_valid != 0) & (D.sep_valid <= D.sep_slot)
               & ~pool & (D.graph.exec.c_blocks <= 1)),
            # stacked images without separator rows: rows per image inside the map's, the
            # band step below the image's output rows; no separators, max-pool or gather
            ((D.graph.links.image_rows == 0) & (D.graph.links.image_out_rows == 0)
             & (D.graph.links.image_step == 0))
            | ((D.graph.links.image_rows != 0) & (D.graph.links.image_rows <= D.in_h)
               & (D.graph.links.image_out_rows != 0) & (D.graph.links.image_out_rows <= D.out_h)
               & (D.graph.links.image_step < D.graph.links.image_out_rows)
               & (D.sep_slot == 0) & ~pool & (D.in_step == 0)),
            # an input gather: a 1x1 stride-1 CONV without padding over whole-beat pixels,
            # stepping 2, 4 or 8 pixels, without input-channel blocks or INPUT_KEPT; a joined
            # conv's also 1, its first part of a pixel short of the whole, no fused add or
            # max-pool, its second input beat-aligned
            ((D.in_step == 0) & (D.in_pitch == 0) & (D.in_split == 0))
            | (Mux(j, Cat(*(D.in_step == s for s in JOIN_STEPS)).any(),
                   Cat(*(D.in_step == s for s in GATHER_STEPS)).any())
               & (D.in_pitch != 0)
               & (D.kind == LayerKind.CONV) & (D.kernel_h == 1) & (D.kernel_w == 1)
               & (D.stride == 1) & (D.pad == 0)
               & ((D.in_groups << lg_m)[:LANE_BITS] == 0) & (D.graph.exec.c_blocks <= 1)
               & ~flag_set(D.flags, LayerFlags.INPUT_KEPT)
               & (~j | ((D.in_split << LANE_BITS) < (D.in_groups << lg_m))
                  & ~flag_set(D.flags, LayerFlags.FUSE_ADD) & ~pool
                  & (D.graph.exec.in2_offset[:LANE_BITS] == 0))),
            ~pool | ((D.pool_kernel != 0) & (D.pool_stride != 0)
                     & (D.pool_pad < D.pool_kernel)
                     & (D.pool_kernel <= D.out_h + 2 * D.pool_pad)
                     & (D.pool_kernel <= D.out_w + 2 * D.pool_pad)),
        ).all()

    def _fits(self, v, slots):
        cfg, D = self._config, self.desc
        pool = flag_set(D.flags, LayerFlags.POOL)
        g_in, g_back = self._geo
        return Cat(
            g_in.lines <= cfg.ifm_bank_lines,
            # one k tile's weights; an input-channel block's weights all (they are read once
            # per block while the partial sums stream after them)
            Mux(self.blocked, v["blk_words"] <= cfg.weight_depth,
                v["groups"] * slots <= cfg.weight_depth),
            ~flag_set(D.flags, LayerFlags.IFM_STATIONARY) | self.blocked
            | (v["w_words"] <= cfg.weight_depth),
            # a fused add reads its residual while the core runs: the weights are in by then
            ~flag_set(D.flags, LayerFlags.FUSE_ADD) | (v["w_words"] <= cfg.weight_depth),
            ~pool | (g_back.lines <= cfg.ifm_bank_lines),
        ).all()


def _pool_kind(D):
    """A pooling layer run by the pool pass on its input: MAXPOOL, AVGPOOL, GAP."""
    return (D.kind == LayerKind.MAXPOOL) | (D.kind == LayerKind.AVGPOOL) | (D.kind == LayerKind.GAP)


def _registered(m, value, name: str) -> Signal:
    """`value` registered (a verdict's operand a cycle before the verdict)."""
    reg = Signal(value.shape(), name=name)
    m.d.sync += reg.eq(value)
    return reg
