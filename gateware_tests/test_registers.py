"""The AXI4-Lite register block against its definition, and docs/registers.md against it too."""

from pathlib import Path

import pytest

from hw.config import SenseConfig
from hw.regmap import register_map, registers_markdown
from sim import harness

HERE = Path(__file__).parent


@pytest.mark.parametrize("config", [SenseConfig.preset("small"), SenseConfig.preset("zcu102")],
                         ids=["small", "zcu102"])
def test_registers(config):
    build = harness.build("registers", config)
    harness.run(build, "sim.benches.registers_bench", name=f"registers-{config.key()}")


def test_docs_registers_md_is_generated_from_the_map():
    doc = (HERE.parent / "docs" / "registers.md").read_text()
    assert doc == registers_markdown(), "run: python scripts/gen_registers.py"


def test_register_map_is_well_formed():
    regs = register_map()
    offsets = [r.offset for r in regs]
    assert len(set(offsets)) == len(offsets) and all(o % 4 == 0 and o < 256 for o in offsets)
    for reg in regs:
        bits = [b for f in reg.fields for b in range(f.lsb, f.lsb + f.width)]
        assert len(bits) == len(set(bits)) and max(bits) < 32, reg.name
