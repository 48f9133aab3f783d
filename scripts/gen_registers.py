#!/usr/bin/env python3
"""Write docs/registers.md from the register map in hw/regmap.py."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hw.files import atomic_write  # noqa: E402
from hw.regmap import registers_markdown  # noqa: E402

if __name__ == "__main__":
    atomic_write(ROOT / "docs" / "registers.md", registers_markdown())
    print(f"wrote {ROOT / 'docs' / 'registers.md'}")
