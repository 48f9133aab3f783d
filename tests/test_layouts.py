import pytest

from hw.config import SenseConfig
from hw.layouts import ifm_layout, pack, unpack, weight_op_layout


@pytest.mark.parametrize("config", [SenseConfig(group=m) for m in (2, 4, 8, 16)]
                         + [SenseConfig(sparse=False)])
def test_pack_matches_amaranth_const(config):
    wl = weight_op_layout(config)
    op = {"value": -128, "first": 1, "last": 0}
    if config.pos_width:
        op["pos"] = config.group - 1
    bits = pack(wl, op)
    assert bits == wl.const(op).as_value().value & ((1 << wl.size) - 1)
    assert unpack(wl, bits) == op
    xl = ifm_layout(config)
    xs = [(-128 + 37 * i) % 256 - 128 for i in range(config.lanes)]
    assert pack(xl, xs) == xl.const(xs).as_value().value & ((1 << xl.size) - 1)
    assert unpack(xl, pack(xl, xs)) == xs


def test_pack_range_checked():
    wl = weight_op_layout(SenseConfig())
    with pytest.raises(ValueError, match="field 'value' must lie in -128..127, not 128"):
        pack(wl, {"value": 128, "pos": 0, "first": 0, "last": 0})
    with pytest.raises(ValueError, match="field 'pos' must lie in 0..3, not 4"):
        pack(wl, {"value": 0, "pos": 4, "first": 0, "last": 0})
