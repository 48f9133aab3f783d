"""The README's resource table: Yosys counts, sparse vs dense baseline, per configuration.

    .venv/bin/python scripts/resource_table.py [--configs small zcu102] [--block accelerator]

Runs `hw.synth.synthesize` for each configuration, sparse and dense, writes every report to
docs/results/resources-<config>-<sparse|dense>-<block>.json, and prints a Markdown table with
the totals, the fraction of the XCZU9EG, per-PE figures and the sparse/dense LUT ratio. With
--reuse-grid, a grid report of the same configuration already in docs/results
(`sense synth --block grid --json ...`) stands in for the grid (`sense synth --grid-report`):
without synthesizing the grid again (LUTs within a few percent, see hw.synth). The zcu102
accelerator with --reuse-grid takes about ten minutes per core kind; its grid reports come from
`sense synth --config zcu102 --block grid --pe-report ...` (3 minutes, README).
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402
from hw.synth import synthesize  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["small", "zcu102"])
    p.add_argument("--block", default="accelerator")
    p.add_argument("--reuse-grid", action="store_true",
                   help="take the grid's counts from docs/results/resources-*-grid.json")
    args = p.parse_args(argv)
    rows = []
    for name in args.configs:
        reports = {}
        for kind in ("sparse", "dense"):
            config = SenseConfig.preset(name).replace(sparse=kind == "sparse")
            path = ROOT / "docs/results" / f"resources-{name}-{kind}-{args.block}.json"
            grid = None
            grid_path = ROOT / "docs/results" / f"resources-{name}-{kind}-grid.json"
            if args.reuse_grid and args.block != "grid" and grid_path.exists():
                grid = json.loads(grid_path.read_text())
            report = synthesize(args.block, config, grid_report=grid)
            atomic_write(path, json.dumps(report, indent=2) + "\n")
            reports[kind] = report
        for kind, r in reports.items():
            t, f = r["total"], r["fraction_of_zu9eg"]
            ratio = t["lut"] / reports["dense"]["total"]["lut"]
            rows.append(f"| {name} ({r['config']['rows']}x{r['config']['cols']}, "
                        f"M={r['config']['group']}) | {kind} | {t['lut']:,} ({f['lut']:.1%}) | "
                        f"{t['ff']:,} ({f['ff']:.1%}) | {t['bram36']:g} ({f['bram36']:.1%}) | "
                        f"{t['dsp']:,} ({f['dsp']:.1%}) | {r['per_pe']['lut']:.0f} | "
                        f"{ratio:.2f} |")
    print("| configuration | core | LUT (of ZU9EG) | FF | BRAM36 | DSP48E2 | LUT per PE | "
          "LUT vs dense |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
