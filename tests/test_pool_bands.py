"""The pool pass in bands (host.buffers.pool_bands, the rule hw.soc.pool and the sequencer's
POOL_BAND states follow): pooling every band's map rows with the band's padding gives exactly
the whole map's pooled rows, for every window the pool pass takes and every band height."""

import numpy as np
import pytest

from host import golden
from host.buffers import pool_bands, window_count
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
