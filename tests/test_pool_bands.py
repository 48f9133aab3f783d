"""The pool pass in bands (host.buffers.pool_bands, the rule hw.soc.pool and the sequencer's
POOL_BAND states follow): pooling every band's map rows with the band's padding gives exactly
the whole map's pooled rows, for every window the pool pass takes and every band height."""

import numpy as np
import pytest

from host import golden
from host.buffers import pool_bands, window_count
from host.perf import pool_bands_choice, pool_pass, pool_prefetch
from hw.config import SenseConfig
from hw.layouts import LayerDescriptor, LayerFlags, LayerKind

CONFIG = SenseConfig.preset("small")
WINDOWS = [((3, 3), (2, 2), (1, 1, 1, 1), False), ((3, 3), (2, 2), (0, 0, 0, 0), True),
           ((2, 3), (1, 2), (1, 0, 0, 1), False), ((3, 3), (1, 1), (1, 1, 1, 1), False),
           ((5, 2), (2, 1), (2, 0, 1, 1), True), ((7, 7), (1, 1), (3, 3, 3, 3), False),
           ((2, 2), (2, 2), (0, 0, 0, 0), True), ((3, 2), (3, 2), (2, 0, 1, 1), True)]


def descriptor(h, w, window, per):
    (kh, kw), (sh, sw), (t, left, b, r), ceil = window
    return LayerDescriptor(kind=LayerKind.MAXPOOL.value, flags=LayerFlags.CEIL.value * ceil,
                           in_channels=4, in_groups=1, in_h=h, in_w=w, out_channels=4,
                           pool_kernel=kh, pool_stride=sh, pool_pad=t,
                           graph={"exec.pool_kernel_w": kw, "exec.pool_stride_w": sw,
                                  "exec.pool_pad_b": b, "exec.pool_pad_l": left,
                                  "exec.pool_pad_r": r, "exec.pool_band_rows": per})


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("h", [7, 12, 17])
def test_bands_compose_to_the_whole_map(window, h):
    rng = np.random.default_rng(h)
    w = 9
    x = rng.integers(-128, 128, size=(1, 4, h, w), dtype=np.int8)
    (kh, kw), (sh, sw), (t, left, b, r), ceil = window
    whole_window = golden.Window.of((kh, kw), (sh, sw), (t, left, b, r), ceil_mode=ceil)
    whole = golden.maxpool2d(x, whole_window)
    for per in [0, 1, 2, 3, 5]:
        if per and sh > kh:
            continue                       # bands are not used for gapped windows
        rows = []
        for py, y0, n_rows, top, last, n in pool_bands(descriptor(h, w, window, per), CONFIG):
            assert py == sum(len(r_) for r_ in rows)
            if n == 0:
                continue
            band = golden.Window.of((kh, kw), (sh, sw), (top, left, b if last else 0, r),
                                    ceil_mode=ceil)
            got = golden.maxpool2d(x[:, :, y0:y0 + n_rows], band)
            assert got.shape[2] == n == window_count(n_rows, kh, sh, top, b if last else 0,
                                                     ceil)
            rows.append(got[0].transpose(1, 0, 2))
        assert np.array_equal(np.concatenate(rows).transpose(1, 0, 2)[None], whole), (per,)


def test_pool_bands_choice_prefetches_when_the_model_finds_it_faster():
    """`host.perf.pool_bands_choice`: a map that needs loading (not kept) whose bands fit half
    the store is pooled in prefetched bands (each band's load hidden behind the band before's
    pooling), faster in the model than in one piece; a window whose stride exceeds its kernel
    keeps the packer's bands (bands do not take it); every choice's bands still compose."""
    d = descriptor(64, 32, WINDOWS[3], 0).replace(in_channels=16, in_groups=4, out_channels=16)
    chosen = pool_bands_choice(d, CONFIG)
    per = chosen.g("exec.pool_band_rows")
    assert per and pool_prefetch(chosen, CONFIG)
    assert pool_pass(chosen, CONFIG)["cycles"] < pool_pass(d, CONFIG)["cycles"]
    # (the same bytes are written; the halo rows are read again)
    assert pool_pass(chosen, CONFIG)["dram_write_bytes"] == pool_pass(d, CONFIG)[
        "dram_write_bytes"]
    strided = descriptor(64, 32, ((2, 2), (3, 3), (0, 0, 0, 0), False), 0)
    assert pool_bands_choice(strided, CONFIG) is strided


def test_a_pool_that_neither_fits_nor_takes_bands_is_refused_when_packed():
    """An average pool whose map exceeds `small`'s 16 KiB IFM store and whose window strides
    past its kernel (bands do not take it) is refused by the packer, naming the layer, instead
    of packing an image the hardware refuses."""
    from host.image import ImageError, pack_image
    from host.nn import Layer, Network
    from host.quant import quantize

    net = Network((32, 64, 64), [Layer("avgpool", "spaced", pool=golden.Window.of(2, 3))], [],
                  "spaced")
    qnet = quantize(net, np.random.default_rng(0).normal(size=(2, 32, 64, 64)), group=4)
    with pytest.raises(ImageError, match=r"layer 0 \(spaced\) does not fit .* does not take"):
        pack_image(qnet, CONFIG)
