"""The `sense` command line."""

from __future__ import annotations

import argparse
import sys

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


def cmd_bench_core(args) -> int:
    import json

    from host.bench import bench_core
    from host.files import atomic_write

    report = bench_core(config_from_args(args), seed=args.seed)
    text = json.dumps(report, indent=2) + "\n"
    if args.json:
        atomic_write(args.json, text)
        print(f"wrote {args.json}", file=sys.stderr)
    sys.stdout.write(text)
    bad = [layer["layer"] for layer in report["layers"] if not layer["bit_exact"]]
    if bad:
        print(f"sense bench core: error: not bit-exact: {', '.join(bad)}", file=sys.stderr)
        return 1
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
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ConfigError, CommandError, ValueError, OSError) as e:
        print(f"sense {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # tool failures (simulator, lint) carry their own message
        if type(e).__module__.startswith(("hw", "host")):
            print(f"sense {args.command}: error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
