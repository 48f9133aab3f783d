"""Every bad input of the command line gets a one-line error and exit 1: no traceback, nothing
written. One row per error path (files nobody here wrote: random bytes, text, truncated,
empty, the wrong kind of .npz, NaN, complex, wrong shapes, layers that do not fit)."""

import json

import numpy as np
import pytest

from host.digits import DEFAULT_MODEL
from sense.cli import main


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _model_npz(path, spec_changes=None, pool=None, weight=None):
    spec = {"input_shape": [1, 8, 8],
            "layers": [{"kind": "conv", "weight": "w", "bias": "b", "pad": 1, "relu": True,
                        "pool": pool if pool is not None else None}]}
    spec.update(spec_changes or {})
    w = np.ones((4, 1, 3, 3)) if weight is None else weight
    return _npz(path, w=w, b=np.zeros(4),
                layers=np.frombuffer(json.dumps(spec).encode(), np.uint8))


def _wide_npz(path):
    """A 16x20x20 input: 6,400 bytes, more than an IFM bank of `small` (4,096)."""
    spec = {"input_shape": [16, 20, 20],
            "layers": [{"kind": "conv", "weight": "w", "bias": "b", "relu": True}]}
    return _npz(path, w=np.ones((4, 16, 1, 1)), b=np.zeros(4),
                layers=np.frombuffer(json.dumps(spec).encode(), np.uint8))


def _concat_npz(path):
    """Two convs of 3 channels concatenated: a channel range not aligned to M=4."""
    spec = {"input_shape": [4, 4, 4],
            "layers": [{"kind": "conv", "weight": "w", "bias": "b", "inputs": [-1]},
                       {"kind": "conv", "weight": "w", "bias": "b", "inputs": [-1]},
                       {"kind": "concat", "inputs": [0, 1]}]}
    return _npz(path, w=np.ones((3, 4, 1, 1)), b=np.zeros(3),
                layers=np.frombuffer(json.dumps(spec).encode(), np.uint8))


def _write(path, data):
    path.write_bytes(data)
    return str(path)


def _truncated_onnx(path):
    data = DEFAULT_MODEL.read_bytes()
    return _write(path, data[:len(data) // 3])


DIGITS = str(DEFAULT_MODEL)
X8 = (1, 1, 8, 8)

CASES = [
    ("random-bytes onnx", lambda t: ["pack", _write(t / "m.onnx", bytes(range(256)) * 4)],
     "not an ONNX model"),
    ("text onnx", lambda t: ["pack", _write(t / "m.onnx", b"hello, not a model\n")],
     "not an ONNX model"),
    ("empty onnx", lambda t: ["pack", _write(t / "m.onnx", b"")],
     "the file is empty, not an ONNX model"),
    ("truncated onnx", lambda t: ["pack", _truncated_onnx(t / "m.onnx")],
     "not an ONNX model"),
    ("empty npz model", lambda t: ["pack", _write(t / "m.npz", b"")],
     "not a readable .npz model"),
    ("random-bytes npz model", lambda t: ["pack", _write(t / "m.npz", b"\x93NUMPY" * 50)],
     "not a readable .npz model"),
    ("npz model without input_shape",
     lambda t: ["pack", _model_npz(t / "m.npz", {"input_shape": None})],
     "needs 'input_shape': \\[C, H, W\\]"),
    ("npz model with a bad pool entry", lambda t: ["pack", _model_npz(t / "m.npz", pool=[2])],
     "pool must be \\[kernel, stride, padding\\]"),
    ("npz model with NaN weights",
     lambda t: ["pack", _model_npz(t / "m.npz", weight=np.full((4, 1, 3, 3), np.nan))],
     "holds values that are not real, finite numbers"),
    ("calibration as .npy", lambda t: ["pack", DIGITS, "--calib", str(_npy(t / "c.npy"))],
     "must be an .npz file with an array 'x', not a single array"),
    ("calibration without x", lambda t: ["pack", DIGITS, "--calib", _npz(t / "c.npz", y=1)],
     "no array 'x' of calibration inputs"),
    ("calibration with NaN",
     lambda t: ["pack", DIGITS, "--calib", _npz(t / "c.npz", x=np.full((2, *X8[1:]), np.nan))],
     "hold 128 NaN or infinite values"),
    ("complex calibration",
     lambda t: ["pack", DIGITS, "--calib", _npz(t / "c.npz", x=np.ones((2, *X8[1:]), complex))],
     "must be real numbers, not complex128"),
    ("empty calibration",
     lambda t: ["pack", DIGITS, "--calib", _npz(t / "c.npz", x=np.ones((0, *X8[1:])))],
     "with N >= 1"),
    ("calibration of the wrong shape",
     lambda t: ["pack", DIGITS, "--calib", _npz(t / "c.npz", x=np.ones((2, 1, 9, 9)))],
     "calibration inputs have shape \\(2, 1, 9, 9\\)"),
    ("output is a directory", lambda t: ["pack", DIGITS, "-o", str(t)],
     "is a directory; give a file name"),
    ("a channel count a concat cannot hold", lambda t: ["pack", _concat_npz(t / "k.npz"),
                                                        "--calib", _npz(t / "c.npz",
                                                                        x=np.ones((1, 4, 4, 4))),
                                                        "--config", "small"],
     "concat input .* has 3 channels; the hardware writes channel ranges in words of M=4"),
    ("sim inputs without x", lambda t: ["sim", "--inputs", _npz(t / "i.npz", y=np.ones(3))],
     "no array 'x' of inputs"),
    ("sim inputs as .npy", lambda t: ["sim", "--inputs", str(_npy(t / "i.npy"))],
     "not a single array"),
    ("sim inputs of the wrong shape",
     lambda t: ["sim", "--inputs", _npz(t / "i.npz", x=np.ones((2, 1, 4, 4)))],
     "inputs have shape \\(2, 1, 4, 4\\); the model takes \\(N, 1, 8, 8\\)"),
    ("sim stalls with the in-design DRAM", lambda t: ["sim", "--dram", "design", "--pause", "0.1"],
     "--pause needs --dram cocotb"),
    ("sim pause out of range", lambda t: ["sim", "--pause", "1.5"], "--pause must be in \\[0, 1\\)"),
    ("bench sim without images", lambda t: ["bench", "sim", "--images", "0"],
     "--images must be at least 1"),
    ("inspect with an unknown preset",
     lambda t: ["inspect", _write(t / "i.img", b"x" * 64), "--config", "nonsense"],
     "nonsense"),
]


def _npy(path):
    np.save(path, np.ones(X8))
    return path


@pytest.mark.parametrize("make_args,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys, make_args, message):
    args = make_args(tmp_path)
    if args[0] == "pack" and "-o" not in args:
        args += ["-o", str(tmp_path / "out.img")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    command = " ".join(args[:2] if args[0] == "bench" else args[:1])
    assert err and err[-1].startswith(f"sense {command}: error: "), err
    assert len([line for line in err if "error" in line]) == 1, err
    import re
    assert re.search(message, err[-1]), err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out.img").exists()


def test_bench_errors_name_the_subcommand(capsys):
    assert main(["bench", "pack", "--config", "nonsense"]) == 1
    assert capsys.readouterr().err.startswith("sense bench pack: error: ")


def test_help_texts_say_the_defaults(capsys):
    for argv, text in ((["bench", "pack", "--help"], "default: zcu102"),
                       (["bench", "core", "--help"], "default: small with a 16x16 grid"),
                       (["sim", "--help"], "(default 1)")):
        with pytest.raises(SystemExit):
            main(argv)
        assert text in " ".join(capsys.readouterr().out.split()), argv
