import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # cocotb bench modules are imported by name inside the simulator
os.environ.setdefault("SENSE_BUILD_DIR", str(ROOT / "build"))
