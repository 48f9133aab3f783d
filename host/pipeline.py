"""The model pipeline of `sense pack`, `sense sim` and the self-test build: load a float model,
read its calibration inputs, cluster, prune and quantize it, pack the image. The command line
only parses arguments and prints; everything a model goes through is here."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from host import zoo
from host.cluster import cluster_network
from host.digits import DEFAULT_MODEL, bundled_dataset, load_split
from host.image import pack_image
from host.join import join_shortcuts
from host.model_files import load_model
from host.nn import group_readers
from host.quant import QNetwork, check_finite, quantize
from hw.config import SenseConfig

__all__ = ["PipelineError", "Prepared", "load_calibration", "load_network", "prepare_model",
           "compile_network",
           "read_inputs", "default_inputs", "ZOO_CALIBRATION"]


class PipelineError(ValueError):
    """Bad input to the pipeline (a calibration file, a model option); the message names it."""


@dataclass
class Prepared:
    """What the pipeline made of a model."""
    qnet: QNetwork               # the quantized network (the golden model runs it)
    image: bytes                 # the memory image
    calib: np.ndarray            # the calibration inputs it was quantized with (float)
    clustering: list | None      # per layer: zero-group fractions before/after, or None


#: Calibration images the built-in networks (host.zoo) get when none are given: random normal
#: inputs (their weights are random too, so there is no data set to calibrate on).
ZOO_CALIBRATION = 8


def load_calibration(path, model_path, input_shape) -> np.ndarray:
    """Calibration inputs: FILE.npz with an array 'x' of shape (N, C, H, W), or, for the bundled
    models, their training (calibration) split, or, for a built-in network, random inputs."""
    if path is None:
        dataset = bundled_dataset(model_path)
        if dataset:
            return load_split(dataset)[0]
        if str(model_path) in zoo.NETWORKS:
            return np.random.default_rng(0).normal(size=(ZOO_CALIBRATION, *input_shape))
        raise PipelineError("--calib FILE.npz is required for this model (an array 'x' of "
                            "calibration inputs, shape (N, C, H, W))")
    x = read_inputs(path, "calibration inputs")
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_shape) or not len(x):
        raise PipelineError(f"{path}: calibration inputs have shape {x.shape}; the model takes "
                            f"(N, {', '.join(map(str, input_shape))}) with N >= 1")
    return x


def read_inputs(path, what: str, key: str = "x") -> np.ndarray:
    """Array `key` of an .npz file as float64, refused with a one-line message when the file is
    not an .npz, lacks the array, or holds anything but real, finite numbers."""
    try:
        z = np.load(path, allow_pickle=False)
    except OSError as e:
        raise PipelineError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    except (ValueError, EOFError) as e:
        raise PipelineError(f"{path}: not a readable .npz file of {what} ({e})") from None
    except Exception as e:                   # zipfile.BadZipFile and friends
        raise PipelineError(f"{path}: not a readable .npz file of {what} "
                            f"({type(e).__name__})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise PipelineError(f"{path}: {what} must be an .npz file with an array {key!r}, not "
                            f"a single array")
    with z:
        if key not in z.files:
            raise PipelineError(f"{path}: no array {key!r} of {what} (it has "
                                f"{', '.join(z.files) or 'none'})")
        try:
            x = z[key]
        except Exception as e:
            raise PipelineError(f"{path}: array {key!r} cannot be read ({e})") from None
    try:
        check_finite(f"{path}: {what}", x)
    except ValueError as e:
        raise PipelineError(str(e)) from None
    return x.astype(np.float64)


def load_network(model, drop_lrn: bool = False):
    """A float network: a model file, or a built-in network by name (random weights)."""
    if str(model) in zoo.NETWORKS:
        return zoo.build(str(model))
    return load_model(model, drop_lrn=drop_lrn)


def prepare_model(config: SenseConfig, model=None, *, calib=None, cluster: bool = True,
                  pruned: bool = False, order: str = "auto", drop_lrn: bool = False,
                  fuse_add: bool = True, join: bool = True, s2d: bool | str = "auto",
                  log=sys.stderr) -> Prepared:
    """Load `model` (default: the bundled digits model; or a built-in network name), cluster its
    channels (sparse configurations, unless `cluster` is false or the weights are `pruned`
    already), prune and quantize it with the calibration inputs `calib` (a .npz path, or None
    for the bundled models' training split and the built-in networks' random inputs) and pack
    it for `config` with tile order `order` (`fuse_add`, `s2d`: `host.image.pack_image`'s), its
    layers in `host.nn.group_readers`' order. With `join`, projection shortcuts are joined into
    their block's last conv first (`host.join.join_shortcuts`)."""
    model = str(model or DEFAULT_MODEL)
    # (readers of one tensor next to each other: the IFM store keeps it for all of them)
    net = group_readers(load_network(model, drop_lrn))
    x = load_calibration(calib, model, net.input_shape)
    if cluster and pruned:
        print("note: --pruned weights keep their channel order (clustering would break their "
              "pattern); packing without clustering", file=log)
    _, qnet, image, report = compile_network(net, x, config, cluster=cluster, join=join,
                                             pruned=pruned, order=order, fuse_add=fuse_add,
                                             s2d=s2d)
    return Prepared(qnet, image, x, report)


def compile_network(net, calib, config: SenseConfig, *, cluster: bool = True, join: bool = True,
                    pruned: bool = False, order: str = "auto", fuse_add: bool = True,
                    times: dict | None = None, s2d: bool | str = "auto"):
    """What every packed network goes through once it is loaded (`prepare_model`, and
    `host.bench.zoo_pipeline` for `sense bench pack` and scripts/simulate_network.py): cluster
    its channels (sparse configurations, unless `cluster` is false or the weights are `pruned`
    already), join its projection shortcuts (`join`: `host.join.join_shortcuts`), prune and
    quantize it with the float calibration inputs `calib`, pack it for `config`. Returns (the
    network as packed, the quantized network, the image, the clustering report or None);
    `times` receives the seconds of "cluster" (with the join), "prune_quantize" and "pack"."""
    times = {} if times is None else times
    t = time.perf_counter()
    report = None
    if cluster and config.sparse and not pruned:
        net, report = cluster_network(net, calib, config)
    if join:
        net = join_shortcuts(net, config)
    times["cluster"] = time.perf_counter() - t
    t = time.perf_counter()
    qnet = quantize(net, calib, group=config.group if config.sparse else None, pruned=pruned)
    times["prune_quantize"] = time.perf_counter() - t
    t = time.perf_counter()
    image = pack_image(qnet, config, order=order, fuse_add=fuse_add, s2d=s2d)
    times["pack"] = time.perf_counter() - t
    return net, qnet, image, report


def default_inputs(model, calib: np.ndarray):
    """Inputs to run when the user names none: (x, labels or None): the test split for the
    bundled models, else the calibration set."""
    dataset = bundled_dataset(model or DEFAULT_MODEL)
    if dataset:
        _, _, x, labels = load_split(dataset)
        return x, labels
    return calib, None
