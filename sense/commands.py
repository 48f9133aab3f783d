"""What each `sense` command does: read the arguments, call the pipeline, print. Heavy or
optional packages (the simulator, the board flows, Yosys) are imported by the command that needs
them, so `sense --help` and the host-only commands start fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hw.config import SenseConfig
from hw.files import atomic_write

__all__ = ["CommandError", "config_from_args"]


class CommandError(Exception):
    """A user error with a message for the terminal; exit status 1."""


def _prepare(args, config):
    from host.pipeline import prepare_model

    return prepare_model(config, args.model, calib=args.calib, cluster=not args.no_cluster,
                         pruned=args.pruned, order=args.order,
                         drop_lrn=getattr(args, "drop_lrn", False),
                         fuse_add=not getattr(args, "no_fuse_add", False),
                         join=not getattr(args, "no_join", False),
                         s2d="auto" if not getattr(args, "no_s2d", False) else False)


#: What the RTL benches run on when no --config is given.
BENCH_DEFAULT = "small with a 16x16 grid and buffers grown to hold the bench layers"


def config_from_args(args) -> SenseConfig:
    if args.config is None and getattr(args, "bench", None) in ("core", "accel"):
        config = SenseConfig.preset("small").replace(rows=16, cols=16)
    else:
        config = SenseConfig.preset(args.config)
    return _overridden(config, args)


def _overridden(config: SenseConfig, args) -> SenseConfig:
    """`config` with the fields given on the command line (--rows, --cols, ...) replaced
    (--no-weight-port without --write-port turns the write port off too: it needs the weight
    port)."""
    weight_port = getattr(args, "weight_port", None)
    write_port = getattr(args, "write_port", None)
    if weight_port is False and write_port is None:
        write_port = False
    return config.replace(rows=args.rows, cols=args.cols, group=args.group,
                          sparse=False if args.dense else None, clock_mhz=args.clock,
                          dsp_pairs=getattr(args, "dsp_pairs", None),
                          weight_port=weight_port, write_port=write_port,
                          pool_width=getattr(args, "pool_width", None))


def cmd_elaborate(args) -> int:
    from hw import generate
    from sim import harness

    config = config_from_args(args)
    block = args.block or generate.LARGEST_BLOCK
    text = generate.verilog(block, config)
    path = atomic_write(args.output, text)
    top = generate.toplevel_name(block)
    print(f"wrote {path} ({len(text.splitlines())} lines): module {top}, {config.rows}x"
          f"{config.cols} M={config.group} {'sparse' if config.sparse else 'dense'}")
    if args.lint:
        harness.lint(path, top)
        print("verilator lint: clean")
    return 0


def _emit_report(report, path) -> None:
    text = json.dumps(report, indent=2) + "\n"
    if path:
        atomic_write(path, text)
        print(f"wrote {path}", file=sys.stderr)
    sys.stdout.write(text)


def _bench_verdict(report, args) -> int:
    """Print an RTL bench's report; exit 1 when a layer was not bit-exact."""
    _emit_report(report, args.json)
    bad = [row.get("layer", row.get("name")) for row in report.get("layers", report.get("runs"))
           if not row["bit_exact"]]
    if bad:
        print(f"sense bench {args.bench}: error: not bit-exact: {', '.join(bad)}",
              file=sys.stderr)
        return 1
    return 0


def cmd_bench_pack(args) -> int:
    from host import zoo
    from host.bench import bench_pack, bench_pack_network

    config = config_from_args(args)
    if args.model is None:
        _emit_report(bench_pack(config, seed=args.seed), args.json)
    elif args.model not in zoo.NETWORKS:
        raise CommandError(f"--model {args.model!r} is not a built-in network; known: "
                           f"{', '.join(zoo.NETWORKS)}")
    else:
        try:
            batches = [int(n) for n in args.batch.split(",") if n.strip()]
        except ValueError:
            raise CommandError(f"--batch must be batch sizes like 4,8, not {args.batch!r}")
        if any(n < 1 for n in batches):
            raise CommandError(f"--batch sizes must be at least 1, not {args.batch!r}")
        _emit_report(bench_pack_network(config, args.model, args.calib_images, args.seed,
                                        batches), args.json)
    return 0


def cmd_bench_core(args) -> int:
    from sim.bench import bench_core

    report = bench_core(config_from_args(args), seed=args.seed)
    return _bench_verdict(report, args)


def cmd_pack(args) -> int:
    from host.image import layer_table, unsupported_problem

    config = config_from_args(args)
    prepared = _prepare(args, config)
    image, report = prepared.image, prepared.clustering
    cluster = report is not None
    if args.batch is not None:
        return _pack_batch(args, config, prepared)
    atomic_write(args.output, image)
    _, descs = layer_table(image, config)
    print(f"wrote {args.output}: {len(image)} bytes, {len(descs)} layers, "
          f"{config.rows}x{config.cols} M={config.group} {'sparse' if config.sparse else 'dense'}")
    problem = unsupported_problem(descs, config)
    if problem:
        print(f"  note: {problem}; `sense inspect` shows the tiling, `sense estimate` the speed")
    if cluster:
        for line in report:
            print(f"  clustering {line['layer']}: zero groups {line['identity']:.1%} -> "
                  f"{line['clustered']:.1%} of the calibration tiles")
    return 0


def _pack_batch(args, config, prepared) -> int:
    """`sense pack --batch N`: the prefix to IMAGE, the FC head to IMAGE.head (host.batch)."""
    from host.batch import BatchError, pack_batch

    try:
        split, prefix, suffix = pack_batch(prepared.qnet, config, args.batch, args.order,
                                           not args.no_fuse_add, start="auto",
                                           s2d=False if args.no_s2d else "auto")
    except BatchError as e:
        raise CommandError(f"--batch: {e}") from None
    head = f"{args.output}.head"
    atomic_write(head, suffix)
    atomic_write(args.output, prefix)
    what = (f"layers from {split.suffix.layers[0].name} on, on the images' maps stacked "
            f"{split.slot} rows apart," if split.stacked else "FC layers")
    valid = f", {split.valid_bytes}" if split.stacked else ""
    print(f"wrote {args.output}: {len(prefix)} bytes, {len(split.prefix.layers)} layers run once "
          f"per image; {head}: {len(suffix)} bytes, {len(split.suffix.layers)} {what} run "
          f"once for {args.batch} images; slot {split.slot_bytes} bytes "
          f"(host.driver.Accelerator.load_batch(prefix, head, {args.batch}, "
          f"{split.slot_bytes}{valid}))")
    return 0


def cmd_sim(args) -> int:
    import numpy as np

    from host.digits import DEFAULT_MODEL
    from host.pipeline import default_inputs, read_inputs
    from sim.model_run import simulate_model

    if args.images < 1:
        raise CommandError(f"--images must be at least 1, not {args.images}")
    if args.pause < 0 or args.pause >= 1:
        raise CommandError(f"--pause must be in [0, 1), not {args.pause}")
    if args.dram == "design" and args.pause:
        raise CommandError("--pause needs --dram cocotb (the in-design DRAM never stalls)")
    dram = args.dram or ("cocotb" if args.pause else "design")
    args.model = args.model or str(DEFAULT_MODEL)
    config = config_from_args(args)
    prepared = _prepare(args, config)
    if args.inputs:
        x = read_inputs(args.inputs, "inputs")
        want = tuple(prepared.qnet.input_shape)
        if x.ndim != 4 or tuple(x.shape[1:]) != want or not len(x):
            raise CommandError(f"{args.inputs}: inputs have shape {x.shape}; the model takes "
                               f"(N, {', '.join(map(str, want))}) with N >= 1")
        with np.load(args.inputs) as z:
            labels = z["y"] if "y" in z.files else None
    else:
        x, labels = default_inputs(args.model, prepared.calib)
    x, labels = x[:args.images], (labels[:args.images] if labels is not None else None)
    print(f"sense sim: {Path(args.model).name} on {config.rows}x{config.cols} M={config.group} "
          f"{'sparse' if config.sparse else 'dense'}, {len(x)} images, image "
          f"{len(prepared.image)} bytes; building the accelerator (the first build of a "
          f"configuration takes minutes)", file=sys.stderr, flush=True)
    report = simulate_model(config, prepared, x, labels, pause=args.pause, seed=args.seed,
                            model=args.model, dram=dram)
    if args.json:
        atomic_write(args.json, json.dumps(report, indent=2) + "\n")
    _print_sim(report, config)
    wrong = report["images"] - report["bit_exact_images"]
    if wrong:
        print(f"sense sim: error: {wrong} images differ from the golden model", file=sys.stderr)
        return 1
    return 0


def _print_sim(report: dict, config) -> None:
    n = report["images"]
    acc = (f"{report['accuracy']:.1%} (golden model {report['golden_accuracy']:.1%})"
           if report["accuracy"] is not None else "no labels")
    error = report["model_cycle_error_max"]
    print(f"  bit-exact:        {report['bit_exact_images']}/{n} images equal the golden model")
    print(f"  accuracy:         {acc}")
    print(f"  cycles/image:     {report['cycles_per_image']:.0f} "
          f"({report['images_per_second_at_clock']:.0f} images/s at {config.clock_mhz} MHz); "
          + (f"performance model within {error:.1%}" if error is not None
             else "performance model not compared (DRAM stalls)"))
    print(f"  PE utilisation:   {report['pe_utilization']:.1%} (issued MAC slots / PE cycles)")
    print(f"  groups skipped:   {report['groups_skipped_fraction']:.1%}")
    print(f"  DRAM bytes/image: {report['dram_read_bytes_per_image']:.0f} read, "
          f"{report['dram_write_bytes_per_image']:.0f} written")


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

    reports = {}
    for what, path in (("grid", args.grid_report), ("PE", args.pe_report)):
        if path:
            try:
                reports[what] = json.loads(Path(path).read_text())
            except (OSError, ValueError) as e:
                raise CommandError(f"{path}: cannot read the {what} report ({e})") from None
    try:
        report = synthesize(args.block, config_from_args(args), grid_report=reports.get("grid"),
                            pe_report=reports.get("PE"), depth=args.depth)
    except ValueError as e:
        raise CommandError(str(e)) from None
    _emit_report(report, args.json)
    return 0


def cmd_build(args) -> int:
    from constraints.tree import write_tree

    args.config = args.config or args.board
    config = config_from_args(args)
    outdir = Path(args.output or f"build/{args.board}")
    if args.board == "zcu102":
        from constraints.zcu102 import ZCU102_NAME, zcu102_files

        tree = write_tree(zcu102_files(config), outdir)
        print(f"wrote the Vivado build tree {tree}/ ({config.rows}x{config.cols} PEs, "
              f"{config.clock_mhz} MHz). A ZU9EG bitstream needs Vivado licensed for the part: "
              f"cd {tree} && sh build_{ZCU102_NAME}.sh (see {tree}/README.md)")
        return 0
    return _build_ulx3s(args, config, outdir)


def _build_ulx3s(args, config, outdir) -> int:
    from constraints.tree import write_tree
    from constraints.ulx3s import run_ulx3s, ulx3s_files
    from host.selftest import bundled_selftest

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


def cmd_eval(args) -> int:
    from host.digits import bundled_dataset, load_split
    from host.evaluate import as_float_inputs, evaluate
    from host.pipeline import load_calibration, load_network

    config = config_from_args(args)
    net = load_network(args.model, args.drop_lrn)
    if args.inputs is None:
        dataset = bundled_dataset(args.model)
        if dataset is None:
            raise CommandError("--inputs FILE.npz is required for this model (arrays 'x' and "
                               "'y'); only the bundled models have a default test split")
        _, _, x, y = load_split(dataset)
        args.inputs = f"the {dataset} test split"
    else:
        x = as_float_inputs(_read_raw(args.inputs, "x"), args.scale, args.offset)
        y = _read_raw(args.inputs, "y")
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(net.input_shape):
        raise CommandError(f"{args.inputs}: inputs have shape {x.shape}; the model takes "
                           f"(N, {', '.join(map(str, net.input_shape))})")
    if y.dtype.kind not in "iu" or y.shape != (len(x),):
        raise CommandError(f"{args.inputs}: labels 'y' must be {len(x)} integers, not "
                           f"{y.dtype} {y.shape}")
    calib = load_calibration(args.calib, args.model, net.input_shape)
    result = evaluate(net, x, y, calib, config.group, pruned=args.pruned)
    result.update(model=str(args.model))
    for key in ("float", "float_pruned", "int8_dense", "int8_sparse"):
        if key in result:
            label = key.replace("int8_sparse", f"int8 balanced-sparse (M={config.group})")
            print(f"{label.replace('_', ' '):32} {result[key]:.2%}")
    print(f"{result['images']} images, {result['images_per_minute']:.0f} images/minute through "
          f"the golden model")
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def _read_raw(path, key):
    """Array `key` of an .npz in its own dtype (uint8 images stay uint8), one-line errors."""
    import numpy as np

    from host.pipeline import PipelineError, read_inputs

    read_inputs(path, "inputs", key)                 # every check of the pipeline's reader
    try:
        with np.load(path, allow_pickle=False) as z:
            return z[key]
    except Exception as e:
        raise PipelineError(f"{path}: {e}") from None


def cmd_estimate(args) -> int:
    from host import zoo
    from host.model_files import load_model
    from host.plan import Target, plan_network
    from host.report import estimate_lines, plot_estimate

    config = config_from_args(args)
    if args.model in zoo.NETWORKS:
        net = zoo.build(args.model, weights="none")       # the estimate needs only shapes
    else:
        net = load_model(args.model, drop_lrn=args.drop_lrn)
    latency = {} if args.latency is None else {"latency": args.latency}
    target = Target(config, ifm=args.ifm, ports=args.ports, port_bits=args.port_bits,
                    fuse_add=not args.no_fuse_add, resident=not args.no_resident, **latency)
    plan = plan_network(net, target, batch=args.batch, ifm_skip=args.ifm_skip)
    if net.dropped:
        plan["dropped"] = net.dropped
    print("\n".join(estimate_lines(plan, every_layer=not args.quiet)))
    if args.json:
        atomic_write(args.json, json.dumps(plan, indent=1) + "\n")
    if args.plot:
        try:
            plot_estimate(plan, args.plot)
        except ImportError:
            raise CommandError("--plot needs matplotlib: pip install -e '.[plot]'") from None
    return 0


def cmd_bench_sim(args) -> int:
    from sim.bench import bench_sim, sim_bench_configs

    if args.images < 1 or args.baseline_images < 0:
        raise CommandError(f"--images must be at least 1 and --baseline-images at least 0, not "
                           f"{args.images} and {args.baseline_images}")
    if args.config is None:
        configs = [(name, _overridden(config, args)) for name, config in sim_bench_configs()]
    else:
        configs = [(args.config, config_from_args(args))]
    report = bench_sim(configs, images=args.images, baseline_images=args.baseline_images,
                       seed=args.seed)
    return _bench_verdict(report, args)


def cmd_bench_accel(args) -> int:
    from sim.bench import bench_accel

    report = bench_accel(config_from_args(args), seed=args.seed, order=args.order)
    return _bench_verdict(report, args)


def cmd_inspect(args) -> int:
    from host.image import describe, layer_note

    try:
        data = Path(args.image).read_bytes()
    except OSError as e:
        raise CommandError(f"{args.image}: {e.strerror}") from None
    config = config_from_args(args)         # a bad --config is an error with or without --check
    info = describe(data, config if args.check else None)
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
          f"{info['activation_bytes']} bytes; host ops: {', '.join(info['host_ops']) or 'none'}; "
          f"DRAM traffic {info['dram_bytes']} bytes per run")
    if info["input_s2d"]:
        b = info["input_s2d"]
        print(f"  input read in {b['block']}x{b['block']} blocks (space-to-depth, pad "
              f"{b['pad']}): layer 0 reads {tuple(b['shape'])}")
    print("  #   kind    inputs    input           output          k s p relu pool  density "
          "tiling          order   DRAM bytes  here")
    for e in info["layers"]:
        pool = "x".join(map(str, e["pool"][:2])) if e.get("pool") else "-"
        if "window" in e:
            pool = "x".join(map(str, e["window"]["kernel"]))
        t = e["tiling"]
        tiling = (f"{t['band_rows'] or '-'}r/{t['k_block'] or '-'}k/{t['c_blocks'] or 1}c"
                  + (f" c{t['concat_channels'][0]}+" if t["concat_channels"] else ""))
        kernel = "x".join(map(str, e["kernel"])) if "kernel" in e else "-"
        density = f"{e['density']:6.1%}" if "density" in e else "     -"
        order = e.get("order", "-").split("-")[0]
        print(f"  {e['index']:<3} {e['kind']:<7} {','.join(map(str, e['inputs'])):<9} "
              f"{str(tuple(e['input'])):<15} {str(tuple(e['output'])):<15} {kernel:<3} "
              f"{e.get('stride', '-')} {e.get('pad', '-')} {'yes' if e['relu'] else 'no ':<4} "
              f"{pool:<5} {density}  {tiling:<15} {order:<7} "
              f"{e['dram_read_bytes'] + e['dram_write_bytes']:>10}  "
              f"{'yes' if e['runs_on_this_gateware'] else 'no'}{layer_note(e)}")
    if info["unsupported"]:
        print(f"  note: {info['unsupported']} (it stops with UNSUPPORTED; the whole-network "
              f"hardware of docs/architecture.md runs it)")
    return 0
