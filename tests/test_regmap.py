"""The register map as data: every register's layout is its fields at their bit positions, and
pack / unpack / id_values / config_from_id are each other's inverses."""

import pytest
from amaranth.hdl import Shape

from hw.config import PRESETS
from hw.regmap import REGISTER_BYTES, config_from_id, id_values, register, register_map


@pytest.mark.parametrize("reg", register_map(), ids=lambda r: r.name)
def test_layout_is_the_fields(reg):
    assert reg.layout.size == 32
    assert 0 <= reg.offset < REGISTER_BYTES and reg.offset % 4 == 0
    for f in reg.fields:
        field = reg.layout[f.name]
        assert (field.offset, Shape.cast(field.shape).width) == (f.lsb, f.width)
    values = {f.name: (1 << f.width) - 1 - i % 2 for i, f in enumerate(reg.fields)}
    word = reg.pack(**values)
    assert reg.unpack(word) == values
    assert reg.layout.const({k: v for k, v in values.items()}).as_value().value & 0xFFFF_FFFF \
        == word


def test_registers_do_not_overlap():
    offsets = [reg.offset for reg in register_map()]
    assert len(offsets) == len(set(offsets))


def test_pack_checks_names_and_ranges():
    with pytest.raises(ValueError, match="STATUS.error_code must fit 8 bits, not 256"):
        register("STATUS").pack(error_code=256)
    with pytest.raises(KeyError, match="STATUS has no field nonsense"):
        register("STATUS").pack(nonsense=1)


@pytest.mark.parametrize("name", PRESETS)
def test_id_registers_round_trip(name):
    config = PRESETS[name]
    assert config_from_id(id_values(config)) == config
