"""Space-to-depth of the first conv (host.s2d): the rewrite is exact, keeps the balanced pattern,
round-trips through the image, and the packer applies it where the model finds it faster."""

import subprocess
import sys

import numpy as np
import pytest

from host import golden
from host.buffers import to_activation
from host.driver import Accelerator, MemoryBackend, run_sync
from host.model_files import save_npz
from host.image import (HOST_S2D_SHIFT, ImageError, describe, header_s2d, layer_table,
                        pack_image, unpack_image)
from host.quant import quantize, quantize_input, run_int
from host.s2d import SpaceToDepth, blocked_input, blocked_weights, s2d_candidate
from host.sparse import check_balanced, pad_channels, prune_balanced
from hw.config import SenseConfig
from sim.images import patched
from sim.networks import stem_network

SMALL = SenseConfig.preset("small")


@pytest.mark.parametrize("c, h, w, r, stride, pad", [
    (3, 224 // 8, 224 // 8, 7, 2, 3),      # a ResNet / GoogLeNet stem, smaller
    (3, 35, 35, 11, 4, 2),                 # AlexNet's
    (1, 9, 12, 3, 2, 0), (6, 13, 10, 5, 2, 2), (8, 17, 15, 4, 4, 1), (2, 8, 8, 2, 2, 1)])
def test_blocked_conv_equals_the_strided_one(c, h, w, r, stride, pad):
    rng = np.random.default_rng(c * 100 + r)
    x = rng.integers(-128, 128, size=(2, c, h, w)).astype(np.int8)
    wt = rng.integers(-128, 128, size=(5, c, r, r)).astype(np.int8)
    s2d = SpaceToDepth.of((c, h, w), (r, r), stride, pad, group=4)
    xb = blocked_input(x, s2d)
    assert xb.shape == (2,) + s2d.shape
    assert s2d.shape[0] == stride * stride * -(-c // 4) * 4
    want = golden.conv2d(x, wt, stride=stride, padding=pad)
    got = golden.conv2d(xb, blocked_weights(wt, s2d), stride=1, padding=0)
    assert np.array_equal(got, want)
    assert np.array_equal(blocked_input(x[0], s2d), xb[0])       # one image, no N


def test_blocked_weights_keep_every_group_balanced():
    """Every group of M channels of the blocked weights is one tap's group of the original: the
    same kept weights, so the balanced pattern holds and nothing is pruned again."""
    rng = np.random.default_rng(3)
    wt = rng.integers(-128, 128, size=(8, 3, 7, 7)).astype(np.int8)
    pruned, mask = prune_balanced(pad_channels(wt, 4, axis=1), 4)
    s2d = SpaceToDepth.of((3, 20, 20), (7, 7), 2, 3, group=4)
    blocked = blocked_weights(pruned, s2d)
    kept = blocked_weights(mask, s2d)
    assert blocked.shape == (8, 16, 4, 4)
    check_balanced(np.where(kept, blocked, 0) + 0, 4, "blocked")  # (no error)
    assert int(kept.sum()) == int(mask.sum())
    assert int((blocked != 0).sum()) == int((pruned != 0).sum())


def quantized_stem(seed=1, **kw):
    rng = np.random.default_rng(seed)
    net = stem_network(rng, **kw)
    qnet = quantize(net, rng.normal(size=(8,) + net.input_shape), group=SMALL.group)
    x = quantize_input(qnet, rng.normal(size=(2,) + net.input_shape))
    return qnet, x


def test_image_round_trip_and_golden_equality():
    qnet, x = quantized_stem()
    image = pack_image(qnet, SMALL, s2d=True)
    h, descs = layer_table(image, SMALL)
    assert h["host_ops"] >> HOST_S2D_SHIFT & 3 == 1                    # block 2
    assert (descs[0].stride, descs[0].pad, descs[0].in_channels) == (1, 0, 16)
    back = unpack_image(image, SMALL)
    assert back.s2d == header_s2d(h, descs[0])
    assert back.s2d.block == 2 and back.s2d.pad == 3
    assert tuple(back.input_shape) == tuple(qnet.input_shape)       # the user's input
    assert back.accel_shape == back.s2d.shape
    assert np.array_equal(run_int(back, x), run_int(qnet, x))
    info = describe(image)
    assert info["input_s2d"] == {"block": 2, "pad": 3, "shape": list(back.s2d.shape)}
    plain = pack_image(qnet, SMALL, s2d=False)
    assert unpack_image(plain, SMALL).s2d is None and describe(plain)["input_s2d"] is None


def test_a_header_that_disagrees_with_the_first_layer_is_refused():
    """host_ops naming a blocked input over an image whose first layer is the strided conv
    (header byte 21, memory-image.md): refused, the field named."""
    qnet, _ = quantized_stem()
    plain = pack_image(qnet, SMALL, s2d=False)
    bad = patched(plain, 21, "<B", 1 << HOST_S2D_SHIFT)
    with pytest.raises(ImageError, match="space-to-depth"):
        layer_table(bad, SMALL)


def test_the_packer_blocks_only_first_convs_it_can():
    """The candidates: a first conv alone on the input, stride 2 or 4, at most 8 channels after
    padding to M, padding up to 31."""
    qnet, _ = quantized_stem()
    assert s2d_candidate(qnet, 4).block == 2
    wide, _ = quantized_stem(c=12)
    assert s2d_candidate(wide, 4) is None                # 12 channels: whole beats already
    padded, _ = quantized_stem(pad=32)
    assert s2d_candidate(padded, 4) is None              # (the header holds pads up to 31)
    flat, _ = quantized_stem(stride=1, pad=3)
    assert s2d_candidate(flat, 4) is None
    assert unpack_image(pack_image(flat, SMALL), SMALL).s2d is None
    with pytest.raises(ImageError, match="s2d must be"):
        pack_image(qnet, SMALL, s2d="yes")


def test_auto_blocks_the_resnet_stem_on_zcu102():
    """By the model, ResNet-50's stem (7x7 stride 2 over 224x224 RGB, 3x3 max-pool) is faster
    over 2x2 blocks on the zcu102 preset: the packer's "auto" takes them."""
    cfg = SenseConfig.preset("zcu102")
    rng = np.random.default_rng(0)
    net = stem_network(rng, size=224)
    qnet = quantize(net, rng.normal(size=(2,) + net.input_shape), group=cfg.group)
    back = unpack_image(pack_image(qnet, cfg), cfg)
    assert back.s2d is not None and back.s2d.block == 2


def test_the_driver_writes_the_blocked_input():
    """`Accelerator.input_bytes` (what `run_one` and the self-test system write): the blocked
    map's activation layout for a blocked image, the input's for a plain one."""
    qnet, x = quantized_stem()
    blocked = pack_image(qnet, SMALL, s2d=True)
    plain = pack_image(qnet, SMALL, s2d=False)
    want = {blocked: to_activation(blocked_input(x[0], unpack_image(blocked).s2d), SMALL),
            plain: to_activation(x[0], SMALL)}
    for image, expect in want.items():
        acc = Accelerator(MemoryBackend(SMALL, 1 << 20))
        run_sync(acc.load(image))
        assert acc.input_bytes(x[0]) == expect
    assert want[blocked] != want[plain]


def test_sense_pack_no_s2d(tmp_path):
    """`sense pack` takes the blocks for a 224x224 stem on zcu102 (the model's choice), and
    keeps the first conv as it is with --no-s2d; `sense inspect` names the blocks."""
    rng = np.random.default_rng(2)
    model = tmp_path / "stem.npz"
    net = stem_network(rng, size=224)
    save_npz(net, model)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=rng.normal(size=(2,) + net.input_shape))
    out = {}
    for flags in ([], ["--no-s2d"]):
        image = tmp_path / f"stem{len(flags)}.img"
        proc = subprocess.run([sys.executable, "-m", "sense", "pack", str(model), "-o",
                               str(image), "--config", "zcu102", "--calib", str(calib), *flags],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        out[bool(flags)] = unpack_image(image.read_bytes()).s2d
    assert out[False] is not None and out[False].block == 2 and out[True] is None
    proc = subprocess.run([sys.executable, "-m", "sense", "inspect", str(tmp_path / "stem0.img")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "2x2 blocks" in proc.stdout, proc.stdout
