"""The memory image: round trips, every refusal, random bytes; channel clustering; sense pack."""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.cluster import (
    cluster_channels,
    cluster_network,
    group_zero_fraction,
    permute_edge,
)
from host.digits import DEFAULT_MODEL, MODELS, load_split
from host.image import (
    DESCRIPTOR_BYTES,
    HEADER_BYTES,
    ImageError,
    describe,
    pack_image,
    read_header,
    unpack_image,
)
from host.model_files import load_model
from host.nn import Layer, Network, forward
from host.quant import quantize, quantize_input, run_int
from hw.config import SenseConfig
from hw.layouts import image_header_layout, layer_descriptor_layout, pack, unpack

SMALL = SenseConfig.preset("small")


@pytest.fixture(scope="module")
def data():
    return load_split()


@pytest.fixture(scope="module")
def qnet4(data):
    return quantize(load_model(MODELS / "digits-m4.onnx"), data[0], group=4, pruned=True)


@pytest.fixture(scope="module")
def image4(qnet4):
    return pack_image(qnet4, SMALL)


def same_network(a, b, masks=True):
    assert a.input_shape == b.input_shape and a.host_ops == b.host_ops
    assert np.float32(a.input_scale) == np.float32(b.input_scale)
    for x, y in zip(a.layers, b.layers, strict=True):
        assert x.kind == y.kind and x.stride == y.stride and x.pad == y.pad
        assert x.relu == y.relu and x.pool == y.pool
        for f in ("w", "bias", "mult", "shift"):
            np.testing.assert_array_equal(getattr(x, f), getattr(y, f))
        np.testing.assert_array_equal(x.w_scale.astype(np.float32), y.w_scale.astype(np.float32))
        assert np.float32(x.out_scale) == np.float32(y.out_scale)
        if masks:
            np.testing.assert_array_equal(x.mask, y.mask)


@pytest.mark.parametrize("config,group", [
    (SMALL, 4), (SenseConfig(rows=3, cols=5, group=8), 8), (SenseConfig(rows=7, group=16), 16),
    (SenseConfig(rows=2, cols=2, group=2), 2), (SMALL.replace(sparse=False), None),
])
def test_round_trip(data, config, group):
    qnet = quantize(load_model(DEFAULT_MODEL), data[0], group=group)
    image = pack_image(qnet, config)
    back = unpack_image(image, config)
    same_network(qnet, back, masks=config.sparse)
    assert back.group == (config.group if config.sparse else None)
    x = quantize_input(qnet, data[2][:30])
    np.testing.assert_array_equal(run_int(qnet, x), run_int(back, x))
    assert pack_image(back, config) == image
    from host import image as image_module
    same_network(qnet, image_module.unpack(image_module.pack(qnet, config)), masks=config.sparse)


def test_image_layout_basics(image4):
    h = read_header(image4, SMALL)
    assert image4[:4] == b"SENS" and h["layer_count"] == 3
    assert h["table_offset"] == HEADER_BYTES == 64 and DESCRIPTOR_BYTES == 128
    assert h["image_size"] == len(image4) and h["data_offset"] % 64 == 0
    info = describe(image4)
    for layer in info["layers"]:
        assert layer["weight_block"][0] % 64 == 0 and layer["param_block"][0] % 64 == 0


def patch(image, offset, new: bytes, fix_crc=True):
    b = bytearray(image)
    b[offset:offset + len(new)] = new
    if fix_crc:
        b[60:64] = struct.pack("<I", zlib.crc32(bytes(b[64:])))
        b[56:60] = struct.pack("<I", zlib.crc32(bytes(b[:56])))
    return bytes(b)


def patch_field(image, layout, base, field, value):
    size = layout.size // 8
    rec = unpack(layout, int.from_bytes(image[base:base + size], "little"))
    rec[field] = value
    return patch(image, base, pack(layout, rec).to_bytes(size, "little"))


def test_refusals_name_the_problem(image4):
    cases = [
        (image4[:10], "image is truncated: 10 bytes, the header alone is 64"),
        (image4[:-1], f"image is truncated: {len(image4) - 1} bytes, the header says"),
        (image4 + b"\0", "image has 1 bytes after its end"),
        (patch(image4, 0, b"ONNX"), "not a Sense image: magic b'ONNX'"),
        (patch(image4, 4, b"\x03\x00"), "image format version 3 is not supported"),
        (patch(image4, 25, b"\x01", fix_crc=False), "image header is corrupt: CRC-32"),
        (patch(image4, 300, b"\xff", fix_crc=False), "image body is corrupt: CRC-32"),
        (patch_field(image4, image_header_layout(), 0, "group", 3),
         "image header names impossible hardware: group \\(M\\) must be one of"),
        (patch_field(image4, image_header_layout(), 0, "layer_count", 0), "image has no layers"),
        (patch_field(image4, layer_descriptor_layout(), 64, "kind", 7),
         "layer 0: kind 7 is not one of conv \\(0\\), fc \\(1\\), add \\(2\\)"),
        (patch_field(image4, layer_descriptor_layout(), 192, "in_channels", 15),
         "layer 1: input shape \\(15, 8, 8\\) does not match its input's shape"),
        (patch_field(image4, layer_descriptor_layout(), 64, "out_h", 9),
         "layer 0: output 9x8 is inconsistent"),
        (patch_field(image4, layer_descriptor_layout(), 64, "weight_offset", 70),
         "layer 0: weight block \\[70, .*misaligned or outside"),
        (patch_field(image4, layer_descriptor_layout(), 64, "param_size", 16),
         "layer 0: block sizes"),
        (patch_field(image4, layer_descriptor_layout(), 192, "pool_pad", 2),
         "layer 1: malformed max-pool \\(2, 2, 2\\)"),
        (patch_field(image4, layer_descriptor_layout(), 64, "flags", 0x40),
         "layer 0: flag ADD_RELU without FUSE_ADD"),
    ]
    for image, message in cases:
        with pytest.raises(ImageError, match=message):
            unpack_image(image)


def test_wrong_hardware_refused(image4):
    with pytest.raises(ImageError, match="image was packed for other hardware: rows 4 \\(image\\) "
                                         "vs 64 \\(hardware\\); cols 4 \\(image\\) vs 32"):
        unpack_image(image4, SenseConfig.preset("zcu102"))
    with pytest.raises(ImageError, match="sparse True \\(image\\) vs False"):
        read_header(image4, SMALL.replace(sparse=False))
    with pytest.raises(ImageError, match="an image is bytes, not str"):
        read_header("SENS")
    # The grid's accumulators: an image packed for 28 bits runs on 28 or more, not on fewer.
    assert SMALL.acc_width == 28
    read_header(image4, SMALL.replace(acc_width=32))
    with pytest.raises(ImageError, match="acc_width 28 \\(image\\) vs 27 \\(hardware\\): its sums "
                                         "may not fit the grid's accumulators"):
        read_header(image4, SMALL.replace(acc_width=27))


def test_grid_accumulator_bound():
    """A layer whose weights could drive a sum out of the grid's `acc_width`-bit accumulators
    is refused by name; one bit more and it is accepted (SPEC section 2)."""
    from host import golden
    from host.buffers import layer_limit_problem

    w = np.zeros((2, 1024, 1, 1), np.int8)
    w[0] = -64                    # sum of |w| 65,536: a sum of products up to 128 * 2^16 = 2^23
    w[1, :8] = 127
    assert golden.grid_acc_bound(w) == 1 << 23
    bias = np.zeros(2, np.int32)
    dense = SMALL.replace(sparse=False)
    problem = layer_limit_problem((1024, 1, 1), w, 1, 0, bias, dense.replace(acc_width=24))
    assert problem == ("a sum of products could reach 8388608 (128 times the output channel's "
                       "largest sum of |weights|), beyond the grid's 24-bit accumulators "
                       "(acc_width; the widest is 32)")
    assert layer_limit_problem((1024, 1, 1), w, 1, 0, bias, dense.replace(acc_width=25)) is None


def test_pack_refusals(data, qnet4):
    with pytest.raises(ImageError, match="the network is pruned for M=4, the configuration is "
                                         "sparse with M=8"):
        pack_image(qnet4, SMALL.replace(group=8))
    dense = quantize(load_model(DEFAULT_MODEL), data[0])
    with pytest.raises(ImageError, match="the network is dense \\(not pruned\\)"):
        pack_image(dense, SMALL)
    big = dense.with_layers([dense.layers[0]])
    big.layers[0] = type(big.layers[0])(**{**big.layers[0].__dict__, "stride": 16})
    with pytest.raises(ImageError, match="layer 0 \\(conv1\\): stride 16 exceeds the hardware "
                                         "limit 15"):
        pack_image(big, SMALL.replace(sparse=False))
    hot = dense.with_layers([dense.layers[0]])
    hot.layers[0] = type(hot.layers[0])(**{**hot.layers[0].__dict__,
                                           "bias": np.full(16, 2**31 - 1, np.int32)})
    with pytest.raises(ImageError, match="the accumulator could reach"):
        pack_image(hot, SMALL.replace(sparse=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_refused_cleanly(blob):
    with pytest.raises(ImageError):
        unpack_image(blob)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0), bit=st.integers(0, 7))
def test_truncations_and_bit_flips_refused_cleanly(image4, cut, flip, bit):
    with pytest.raises(ImageError):
        unpack_image(image4[: cut % len(image4)])
    b = bytearray(image4)
    b[flip % len(b)] ^= 1 << bit
    with pytest.raises(ImageError):
        unpack_image(bytes(b))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(min_value=0), value=st.binary(min_size=1, max_size=8))
def test_corrupted_fields_with_valid_crc_never_crash(image4, offset, value):
    # A corrupted image whose CRC was recomputed must still load or be refused cleanly.
    image = patch(image4, HEADER_BYTES + offset % (len(image4) - HEADER_BYTES - 8), value)
    try:
        unpack_image(image)
    except ImageError:
        pass


# -- channel clustering ----------------------------------------------------------------------------

def test_clustering_keeps_the_int8_network_bit_identical(data):
    xtr, _, xte, _ = data
    net = load_model(DEFAULT_MODEL)
    clustered, report = cluster_network(net, xtr, SMALL)
    assert len(report) == 2
    np.testing.assert_allclose(forward(clustered, xte), forward(net, xte), rtol=1e-9, atol=1e-9)
    q0, q1 = quantize(net, xtr), quantize(clustered, xtr)
    x = quantize_input(q0, xte)
    np.testing.assert_array_equal(run_int(q0, x), run_int(q1, x))


def test_clustered_sparse_image_equals_its_unclustered_form(data):
    # The packed network (clustered, then pruned) computes exactly what the same weights compute
    # in the original channel order: the permutation plumbing is exact.
    xtr, _, xte, _ = data
    net = load_model(DEFAULT_MODEL)
    clustered, report = cluster_network(net, xtr, SMALL)
    qnet = unpack_image(pack_image(quantize(clustered, xtr, group=4), SMALL))
    layers = list(qnet.layers)
    for i, edge in enumerate(report):
        inv = np.argsort(edge["permutation"])
        p, c = layers[i], layers[i + 1]
        layers[i] = type(p)(**{**p.__dict__, "w": p.w[inv], "bias": p.bias[inv],
                               "mult": p.mult[inv], "shift": p.shift[inv]})
        layers[i + 1] = type(c)(**{**c.__dict__, "w": c.w[:, inv]})
    plain = qnet.with_layers(layers)
    x = quantize_input(qnet, xte)
    np.testing.assert_array_equal(run_int(plain, x), run_int(qnet, x))


def test_clustering_finds_channels_that_are_zero_together():
    rng = np.random.default_rng(4)
    families = rng.random((4, 200)) < 0.6        # 4 zero patterns
    z = np.repeat(families, 4, axis=0)            # 16 channels, 4 per pattern
    shuffled = rng.permutation(16)
    z = z[shuffled]
    identity = group_zero_fraction(z, np.arange(16), 4)
    perm = cluster_channels(z, 4)
    assert sorted(perm.tolist()) == list(range(16))
    clustered = group_zero_fraction(z, perm, 4)
    assert clustered == pytest.approx(families.mean())
    assert identity < 0.5 * clustered


def test_permute_edge_fc_moves_column_blocks():
    rng = np.random.default_rng(5)
    conv = Layer("conv", "c", rng.normal(size=(3, 2, 1, 1)), rng.normal(size=3), relu=True)
    fc = Layer("fc", "f", rng.normal(size=(4, 3 * 2 * 2)), rng.normal(size=4))
    net = Network((2, 2, 2), [conv, fc])
    p, c = permute_edge(conv, fc, (3, 2, 2), np.array([2, 0, 1]))
    x = rng.normal(size=(5, 2, 2, 2))
    np.testing.assert_allclose(forward(net.with_layers([p, c]), x), forward(net, x))


# -- the CLI -----------------------------------------------------------------------------------------

ROOT = str(Path(__file__).resolve().parent.parent)


def sense(*args, cwd=None):
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "sense", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def test_pack_and_inspect(tmp_path):
    out = tmp_path / "d.img"
    r = sense("pack", str(DEFAULT_MODEL), "-o", str(out), "--group", "8")
    assert r.returncode == 0, r.stderr
    assert "clustering conv2" in r.stdout and "M=8 sparse" in r.stdout
    r = sense("inspect", str(out))
    assert r.returncode == 0 and "(valid)" in r.stdout and "fc" in r.stdout
    r = sense("inspect", str(out), "--check", "--config", "small", "--group", "8")
    assert r.returncode == 0
    r = sense("inspect", str(out), "--check", "--config", "zcu102")
    assert r.returncode == 1 and "packed for other hardware" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["pack", "missing.onnx", "-o", "x.img"], "missing.onnx: no such file"),
    (["pack", str(MODELS / "digits-data.npz"), "-o", "x.img"], "no 'layers' entry"),
    (["pack", str(DEFAULT_MODEL), "-o", "x.img", "--pruned"],
     "conv2: output channel 0, group 0 has"),
    (["pack", str(DEFAULT_MODEL), "-o", "x.img", "--calib", "nope.npz"],
     "nope.npz: cannot read calibration inputs"),
    (["inspect", "x.img"], "x.img: No such file or directory"),
])
def test_cli_errors_write_nothing(tmp_path, args, message):
    r = sense(*args, cwd=tmp_path)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "x.img").exists()


def test_pack_requires_calibration_for_other_models(tmp_path):
    net = load_model(DEFAULT_MODEL)
    from host.model_files import save_onnx
    save_onnx(net, tmp_path / "other.onnx")
    r = sense("pack", str(tmp_path / "other.onnx"), "-o", str(tmp_path / "x.img"))
    assert r.returncode == 1 and "--calib FILE.npz is required" in r.stderr
    np.savez(tmp_path / "c.npz", x=np.zeros((3, 1, 7, 8)))
    r = sense("pack", str(tmp_path / "other.onnx"), "-o", str(tmp_path / "x.img"), "--calib",
              str(tmp_path / "c.npz"))
    assert r.returncode == 1 and "the model takes (N, 1, 8, 8)" in r.stderr
    np.savez(tmp_path / "c.npz", x=load_split()[0][:100])
    r = sense("pack", str(tmp_path / "other.onnx"), "-o", str(tmp_path / "x.img"), "--calib",
              str(tmp_path / "c.npz"))
    assert r.returncode == 0, r.stderr


def test_memory_image_doc_tables_match_layouts():
    import re

    from hw.layouts import (
        image_header_layout,
        layer_descriptor_layout,
        leaf_fields,
        param_entry_layout,
    )

    doc = (Path(ROOT) / "docs" / "memory-image.md").read_text()
    rows = re.findall(r"^\| ([\d.]+) \| (\d+) \| `([\w.]+)` \|", doc, re.M)
    documented = [(where, int(bits), name) for where, bits, name in rows]
    expected = []
    for layout in (image_header_layout(), layer_descriptor_layout(), param_entry_layout(SMALL)):
        for path, off, width, _ in leaf_fields(layout):
            where = f"{off // 8}" if off % 8 == 0 else f"{off // 8}.{off % 8}"
            expected.append((where, width, ".".join(map(str, path))))
    assert documented == expected
