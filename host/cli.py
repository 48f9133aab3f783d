"""The `sense` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hw.config import PRESETS, ConfigError, SenseConfig

from . import __version__


class CommandError(Exception):
    """A user error with a message for the terminal; exit status 1."""


def _add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (a preset, optionally overridden field by field)")
    g.add_argument("--config", default="small", metavar="NAME",
                   help=f"preset: {' | '.join(PRESETS)} (default: small)")
    g.add_argument("--rows", type=int, help="PE rows (output channels per tile), 1..64")
    g.add_argument("--cols", type=int, help="PE columns (output pixels per tile), 1..64")
    g.add_argument("--group", "-M", type=int, metavar="M", help="sparsity group size: 2, 4, 8, 16")
    g.add_argument("--dense", action="store_true",
                   help="the dense baseline: same grid, every weight issued")


def config_from_args(args) -> SenseConfig:
    config = SenseConfig.preset(args.config)
    return config.replace(rows=args.rows, cols=args.cols, group=args.group,
                          sparse=False if args.dense else None)


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


def cmd_pack(args) -> int:
    from host.cluster import cluster_network
    from host.files import atomic_write
    from host.image import describe, pack_image
    from host.nn import load_model
    from host.quant import quantize

    config = config_from_args(args)
    net = load_model(args.model)
    calib = load_calibration(args.calib, args.model, net.input_shape)
    cluster = not args.no_cluster and config.sparse and not args.pruned
    if not args.no_cluster and args.pruned:
        print("note: --pruned weights keep their channel order (clustering would break their "
              "pattern); packing without clustering", file=sys.stderr)
    if cluster:
        net, report = cluster_network(net, calib, config)
    qnet = quantize(net, calib, group=config.group if config.sparse else None,
                    pruned=args.pruned)
    image = pack_image(qnet, config)
    atomic_write(args.output, image)
    info = describe(image, config)
    print(f"wrote {args.output}: {len(image)} bytes, {len(info['layers'])} layers, "
          f"{config.rows}x{config.cols} M={config.group} {'sparse' if config.sparse else 'dense'}")
    if cluster:
        for line in report:
            print(f"  clustering {line['layer']}: zero groups {line['identity']:.1%} -> "
                  f"{line['clustered']:.1%} of the calibration tiles")
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
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("inspect", help="validate a memory image and print it",
                       description="Validate an image (size, magic, version, CRC, every "
                                   "descriptor) and print its header and layers.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", action="store_true",
                   help="also check that the image was packed for the configuration given")
    _add_config_args(p)
    p.set_defaults(func=cmd_inspect)

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
