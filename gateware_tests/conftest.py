import os
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
os.environ.setdefault("SENSE_BUILD_DIR", str(ROOT / "build"))
