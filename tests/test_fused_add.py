"""The fused residual add (flag FUSE_ADD, issue 15) on the host side: which adds the packer fuses,
the descriptors it writes, the activation placement, the refusals and the model's terms. The
gateware runs them in gateware_tests/test_system.py (residual stages, inception) and
scripts/fit_add_model.py."""

import zlib

import numpy as np
import pytest

from host import golden, perf
from host.buffers import buffer_problem
from host.estimate import accelerator_estimate
from host.image import (DESCRIPTOR_BYTES, HEADER_BYTES, ImageError, fusable_adds, layer_table,
                        pack_image, unpack_image, unsupported_problem)
from host.nn import Layer, Network
from host.plan import allocate
from host.quant import quantize, quantize_input, run_int
from hw.config import SenseConfig
from hw.layouts import LayerFlags, LayerKind
from sim.networks import conv_layer, residual_networks

CONFIG = SenseConfig.preset("small")
FUSE, ADD_RELU = LayerFlags.FUSE_ADD.value, LayerFlags.ADD_RELU.value


def _quantized(net, seed=0):
    rng = np.random.default_rng(seed)
    qnet = quantize(net, rng.normal(size=(8,) + net.input_shape), group=CONFIG.group)
    return qnet, quantize_input(qnet, rng.normal(size=(2,) + net.input_shape))


@pytest.fixture(scope="module")
def stage():
    return _quantized(residual_networks(np.random.default_rng(23))["residual-stage"])


def test_which_adds_fuse():
    """An add fuses into the conv just before it when that conv (no max-pool; its own ReLU
    stays before the add) feeds only the add; the conv may be either input."""
    nets = residual_networks(np.random.default_rng(23))
    assert fusable_adds(_quantized(nets["residual-stage"])[0]) == {2: 1, 7: 6}
    # the conv just before the two-chunk add has a ReLU of its own
    assert fusable_adds(_quantized(nets["two-chunk-add"])[0]) == {2: 1}
    rng = np.random.default_rng(1)
    read_twice = Network((8, 6, 6), [
        conv_layer(rng, "a", 8, 8, 3, [-1], relu=False),
        Layer("add", "sum", inputs=[0, -1]),
        Layer("add", "again", inputs=[0, 1])], [], "read-twice")
    assert fusable_adds(_quantized(read_twice)[0]) == {}
    pooled = Network((8, 6, 6), [
        Layer("conv", "p", rng.normal(size=(8, 8, 3, 3)), np.zeros(8), pad=1,
              pool=golden.Window.of(3, 1, 1), inputs=[-1]),
        Layer("add", "sum", inputs=[0, -1])], [], "pooled")
    assert fusable_adds(_quantized(pooled)[0]) == {}


@pytest.mark.parametrize("order", ["weight", "ifm"])
def test_fused_descriptors(stage, order):
    """The conv carries the add's fields and writes the add's output; the add keeps its
    descriptor with FUSE_ADD; the image unpacks to the same network (outputs equal). In the
    weight order the 1x1 projection would write one-beat segments, each with its residual
    read: the model finds that slower than the ADD's pass, so that pair stays apart."""
    qnet, x = stage
    image = pack_image(qnet, CONFIG, order=order)
    plain = pack_image(qnet, CONFIG, order=order, fuse_add=False)
    _, d = layer_table(image, CONFIG)
    _, p = layer_table(plain, CONFIG)
    pairs = ((2, 1), (7, 6)) if order == "ifm" else ((2, 1),)
    assert [i for i, q in enumerate(d) if int(q.flags) & FUSE] == sorted(sum(pairs, ()))
    for add, conv in pairs:
        assert int(d[add].kind) == LayerKind.ADD.value and int(d[add].flags) & FUSE
        assert int(d[conv].flags) & FUSE and int(d[conv].flags) & ADD_RELU  # the add has ReLU
        assert not int(d[conv].flags) & LayerFlags.RELU.value
        assert d[conv].out_offset == d[add].out_offset
        assert d[conv].g("exec.add_shift") == d[add].g("exec.add_shift")
        assert not any(int(q.flags) & (FUSE | ADD_RELU) for q in p)
    # sum1 = add(b, input): b is the first input, the residual the second
    assert d[1].g("exec.add_mult_a") == d[2].g("exec.add_mult_a")
    assert d[1].g("exec.in2_offset") == d[2].g("exec.in2_offset")
    if order == "ifm":
        # sum2 = add(expand, project): the fused conv (project) is the second input
        assert d[6].g("exec.add_mult_a") == d[7].g("exec.add_mult_b")
        assert d[6].g("exec.add_mult_b") == d[7].g("exec.add_mult_a")
        assert d[6].g("exec.in2_offset") == d[7].in_offset
    assert unsupported_problem(d, CONFIG) is None
    assert (run_int(unpack_image(image, CONFIG), x) == run_int(qnet, x)).all()


def test_fused_output_never_shares_the_conv_input(stage):
    """The add's output is written while the conv runs: it lives from the conv on, so the
    conv's input never shares its bytes."""
    qnet, _ = stage
    _, d = layer_table(pack_image(qnet, CONFIG), CONFIG)
    for add, conv in fusable_adds(qnet).items():
        c = d[conv]
        a0, a1 = d[add].out_offset, d[add].out_offset + d[add].out_h * d[add].out_w * 16
        i0 = c.in_offset
        i1 = i0 + c.in_h * c.in_w * c.in_groups * CONFIG.group
        assert a1 <= i0 or i1 <= a0, (add, conv)
    # unfused, the add's output may take the bytes of conv b's input (dead after b); fused not
    sizes = [4096] * (len(qnet.layers) + 1)
    plain = allocate(qnet, CONFIG.group, sizes)["offsets"]
    fused = allocate(qnet, CONFIG.group, sizes, fused={2: 1})["offsets"]
    assert plain[3] == plain[1] and fused[3] != fused[1]


def test_model_terms(stage):
    """The fused add's layer costs a concat's states; its conv reads the residual (DRAM bytes
    exact in the RTL tests) and FUSE_OVERHEAD per write command."""
    qnet, x = stage
    image = pack_image(qnet, CONFIG, order="ifm")
    plain = pack_image(qnet, CONFIG, order="ifm", fuse_add=False)
    fused_layers, plain_layers = [], []
    accelerator_estimate(image, x[0], CONFIG, per_layer=fused_layers)
    accelerator_estimate(plain, x[0], CONFIG, per_layer=plain_layers)
    assert fused_layers[7] == perf.concat_estimate()
    tensor = 16 * 12 * 12
    assert fused_layers[6]["dram_read_bytes"] == plain_layers[6]["dram_read_bytes"] + tensor
    assert fused_layers[6]["dram_write_bytes"] == plain_layers[6]["dram_write_bytes"]


def test_refusals(stage):
    """FUSE_ADD with a max-pool needs the whole-network hardware; with weights beyond the
    buffer it does not fit."""
    qnet, _ = stage
    _, d = layer_table(pack_image(qnet, CONFIG), CONFIG)
    pooled = d[6].replace(flags=int(d[6].flags) | LayerFlags.POOL.value, pool_kernel=2,
                          pool_stride=2)
    assert not pooled.plain
    assert "fused add" in unsupported_problem(d[:6] + [pooled], CONFIG)
    # an ADD flagged as done by the layer before, which does not do it
    plain = pack_image(qnet, CONFIG, fuse_add=False)
    flags_at = HEADER_BYTES + 7 * DESCRIPTOR_BYTES + 1
    data = bytearray(plain)
    data[flags_at] |= FUSE
    data[60:64] = zlib.crc32(bytes(data[HEADER_BYTES:])).to_bytes(4, "little")
    data[56:60] = zlib.crc32(bytes(data[:56])).to_bytes(4, "little")
    with pytest.raises(ImageError, match="layer 7: an ADD flagged FUSE_ADD, but the layer "
                                         "before does not do the add"):
        unpack_image(bytes(data), CONFIG)
    tiny = CONFIG.replace(weight_kib=1)
    big = d[6].replace(k_tiles=100, out_channels=400,
                       flags=int(d[6].flags) & ~LayerFlags.IFM_STATIONARY.value)
    assert "fused add" in buffer_problem(big, tiny)


def test_group_readers_keeps_outputs_and_puts_readers_together():
    """`host.nn.group_readers`: the mini network's stride-1 projection shortcut moves next to
    its block's first 1x1 (both read the stem pool's output with one placement), the float
    outputs are unchanged, and packed, the shortcut skips its load (INPUT_KEPT)."""
    from host import zoo
    from host.nn import forward, group_readers

    net = zoo.build("mini", seed=3)
    grouped = group_readers(net)
    names = [layer.name for layer in grouped.layers]
    assert names.index("layer1.0.downsample") == names.index("layer1.0.conv1") + 1
    assert names[-1] == net.layers[-1].name and sorted(names) == sorted(
        layer.name for layer in net.layers)
    x = np.random.default_rng(0).normal(size=(2,) + net.input_shape)
    assert np.allclose(forward(grouped, x), forward(net, x))
    qnet, _ = _quantized(grouped)
    d = layer_table(pack_image(qnet, CONFIG), CONFIG)[1]
    assert int(d[names.index("layer1.0.downsample")].flags) & LayerFlags.INPUT_KEPT.value
    assert group_readers(grouped).layers == grouped.layers      # already grouped: unchanged


def test_fused_writes_wait_for_the_weights_in_bands(monkeypatch):
    """With the weight port, a conv with a fused add in bands reads its residual on that port
    once its weights are in, and writes nothing before (hw/soc/accelerator.py,
    `_weight_port`): the model's first band starts writing when the last weight beat is in
    (`host.perf.residual_waits`). Without that term ResNet-50's layer4.0 on a 16x16 grid was
    11.5 % under the RTL (scripts/check_model_blocks.py)."""
    config = CONFIG.replace(weight_port=True)
    rng = np.random.default_rng(4)
    net = Network((128, 16, 16), [
        conv_layer(rng, "a", 64, 128, 1, [-1], relu=False),
        conv_layer(rng, "b", 64, 128, 1, [-1], relu=False),
        Layer("add", "sum", relu=True, inputs=[1, 0])], [], "banded-fused")
    qnet, x = _quantized(net)
    image = pack_image(qnet, config, order="weight", prefetch_bands=False)
    _, descs = layer_table(image, config)
    d = descs[1]
    assert d.has(LayerFlags.FUSE_ADD) and len(perf.layer_bands(d)) > 1
    assert perf.residual_waits(config, 2) and not perf.residual_waits(config, 1)
    layers = []
    accelerator_estimate(image, x[0], config, per_layer=layers)
    monkeypatch.setattr(perf, "residual_waits", lambda config, bands: False)
    unwaited = []
    accelerator_estimate(image, x[0], config, per_layer=unwaited)
    assert unwaited[1]["cycles"] < layers[1]["cycles"]
    assert layers[0] == unwaited[0]
    # the term itself: no write starts before `writes_from`, so the writer ends
    # the sum of the writes after it
    tiles, cost = 6, 40
    core = perf.tile_cycles(np.full(tiles, 8), np.full((tiles, 2), 2), 1, config, False,
                            tile_write=lambda p, kt: (cost, True), writes_from=5000)
    assert core["writer_end"] == 5000 + tiles * cost
    early = perf.tile_cycles(np.full(tiles, 8), np.full((tiles, 2), 2), 1, config, False,
                             tile_write=lambda p, kt: (cost, True))
    assert early["writer_end"] < 5000
