import pytest

from hw.config import PRESETS, ConfigError, SenseConfig


def test_presets():
    small, board = SenseConfig.preset("small"), SenseConfig.preset("zcu102")
    assert (small.rows, small.cols, small.group) == (4, 4, 4)
    assert board.pes == 2048 and board.peak_gops == pytest.approx(819.2)
    assert set(PRESETS) == {"small", "ulx3s", "zcu102"}


def test_unknown_preset_names_choices():
    with pytest.raises(ConfigError, match="config must be one of small, ulx3s, zcu102, not 'big'"):
        SenseConfig.preset("big")


@pytest.mark.parametrize("field,value,message", [
    ("rows", 0, "rows must be an integer from 1 to 64, not 0"),
    ("rows", 65, "rows must be an integer from 1 to 64, not 65"),
    ("cols", 2.0, "cols must be an integer from 1 to 64, not 2.0"),
    ("cols", True, "cols must be an integer from 1 to 64, not True"),
    ("group", 3, r"group \(M\) must be one of 2, 4, 8, 16, not 3"),
    ("group", 32, r"group \(M\) must be one of 2, 4, 8, 16, not 32"),
    ("sparse", 1, "sparse must be True or False, not 1"),
    ("weight_port", "yes", "weight_port must be True or False, not 'yes'"),
    ("pool_width", 3, "pool_width must be one of 1, 2, 4, 8, 16, not 3"),
    ("data_width", 16, "data_width must be 8"),
    ("acc_width", 48, r"acc_width must be 20\.\.32 bits .*, not 48"),
    ("acc_width", 19, r"acc_width must be 20\.\.32 bits .*, not 19"),
    ("acc_width", 28.0, r"acc_width must be 20\.\.32 bits .*, not 28\.0"),
    ("ifm_kib", 3, "ifm_kib must be a power of two from 1 to 4096, not 3"),
    ("weight_kib", 8192, "weight_kib must be a power of two from 1 to 4096, not 8192"),
    ("ofm_kib", 0, "ofm_kib must be a power of two from 1 to 4096, not 0"),
    ("clock_mhz", 0, "clock_mhz must be an integer from 1 to 1000, not 0"),
])
def test_invalid_values_are_refused_by_name(field, value, message):
    with pytest.raises(ConfigError, match=message):
        SenseConfig().replace(**{field: value})


def test_unknown_field():
    with pytest.raises(ConfigError, match="unknown configuration field 'colz'"):
        SenseConfig().replace(colz=3)


@pytest.mark.parametrize("rows,cols", [(1, 1), (2, 3), (7, 5), (64, 64)])
def test_grid_edges_accepted(rows, cols):
    assert SenseConfig(rows=rows, cols=cols).pes == rows * cols


def test_derived_fields():
    for m in (2, 4, 8, 16):
        c = SenseConfig(group=m)
        assert c.lanes == m and c.pos_width == m.bit_length() - 1
        assert c.kept_per_group == m // 2 and c.cycles_per_group == m // 2
        d = c.replace(sparse=False)
        assert d.lanes == 1 and d.pos_width == 0 and d.cycles_per_group == m


def test_json_round_trip_and_key():
    c = SenseConfig.preset("zcu102").replace(group=8)
    assert SenseConfig.from_json(c.to_json()) == c
    assert c.key() == SenseConfig.from_json(c.to_json()).key()
    assert c.key() != c.replace(sparse=False).key()
    assert c.key().startswith("64x32m8s-")
