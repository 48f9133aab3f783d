"""Pair loads (LayerHints.PAIR_LOAD, `host.perf.pair_eligible`, `hw.core.ifm_store.
pair_row_pieces`): the loader timing the model counts, which layers the gateware pair-loads,
that the packer hints them only where the model finds them faster, and that a hint changes
neither the unpacked network nor the DRAM bytes."""

import numpy as np
import pytest

from host import perf
from host.estimate import accelerator_estimate
from host.image import layer_table, pack_image, unpack_image
from host.nn import Network
from host.quant import quantize, quantize_input, run_int
from hw.config import SenseConfig
from hw.core.ifm_store import load_row_pieces, pair_row_pieces
from hw.layouts import LayerHints
from sim.networks import conv_layer

WP = SenseConfig.preset("small").replace(cols=8, pool_width=8, weight_port=True)
PAIR = LayerHints.PAIR_LOAD.value


@pytest.mark.parametrize("rows, w, gl, half", [(5, 7, 4, 2), (3, 11, 1, 4), (8, 3, 2, 16),
                                               (1, 1, 3, 2)])
def test_pair_row_pieces(rows, w, gl, half):
    """Each stream takes a beat a cycle: with no wait the load of every prefix of rows takes
    the larger stream's beats (about half a plain load's), and a late second stream only
    delays the rows whose odd blocks it carries."""
    plain = load_row_pieces(rows, w, 16 * gl)
    pair = pair_row_pieces(rows, w, gl, half, 0)
    assert len(pair) == rows and pair == sorted(pair)
    for r, (p, q) in enumerate(zip(plain, pair), 1):
        n = r * w
        blocks = [(k // half) % 2 for k in range(n)]
        assert q == gl * max(blocks.count(0), blocks.count(1))
        assert 2 * q >= p >= q
    late = pair_row_pieces(rows, w, gl, half, 100)
    for r, (q, t) in enumerate(zip(pair, late), 1):
        on_b = sum(1 for k in range(r * w) if (k // half) % 2)
        assert t == (max(q, 100 + gl * on_b) if on_b else q)


def _net(rng, c=32, h=12, w=12, stride=1, k=8):
    return Network((c, h, w), [conv_layer(rng, "a", k, c, 1, [-1], stride=stride, pad=0)],
                   [], "one")


def _packed(net, config=WP, seed=0):
    rng = np.random.default_rng(seed)
    qnet = quantize(net, rng.normal(size=(4,) + net.input_shape), group=config.group)
    x = quantize_input(qnet, rng.normal(size=(1,) + net.input_shape))
    return qnet, x, pack_image(qnet, config, prefetch_bands=False)


@pytest.mark.parametrize("c, stride, config, eligible", [
    (32, 1, WP, True),                                   # whole beats, stride 1
    (24, 1, WP, False),                                  # pixels not whole beats
    (32, 2, WP, False),                                  # stride 2 (gathered or not)
    (32, 1, WP.replace(weight_port=False), False),       # no weight port
    (32, 1, WP.replace(cols=1, pool_width=1), False),    # one IFM bank
])
def test_which_layers_pair_load(c, stride, config, eligible):
    qnet, _, image = _packed(_net(np.random.default_rng(1), c=c, stride=stride), config)
    d = layer_table(image, config)[1][0]
    assert perf.pair_eligible(d.replace(hints=int(d.hints) | PAIR), config) == eligible


def test_hint_set_only_where_faster_and_changes_no_result():
    """A load-bound 1x1 conv gets the hint (the model finds it faster); the hinted image
    unpacks to the same network, reads and writes the same bytes, and takes fewer modelled
    cycles than with the hint cleared; clearing it is what the packer compared against."""
    qnet, x, image = _packed(_net(np.random.default_rng(2), c=64, h=16, w=16, k=4))
    d = layer_table(image, WP)[1][0]
    assert int(d.hints) & PAIR
    hinted = accelerator_estimate(image, x[0], WP)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(perf, "pair_eligible", lambda *args, **kwargs: False)
        plain_image = pack_image(qnet, WP, prefetch_bands=False)
    assert not int(layer_table(plain_image, WP)[1][0].hints) & PAIR
    plain = accelerator_estimate(plain_image, x[0], WP)
    assert hinted["dram_read_bytes"] == plain["dram_read_bytes"]
    assert hinted["dram_write_bytes"] == plain["dram_write_bytes"]
    assert hinted["cycles"] < plain["cycles"]
    assert (run_int(unpack_image(image, WP), x) == run_int(qnet, x)).all()


def test_inspect_names_the_hint():
    """`sense inspect` (host.image.describe, layer_note) names a layer's hints."""
    from host.image import describe, layer_note

    _, _, image = _packed(_net(np.random.default_rng(2), c=64, h=16, w=16, k=4))
    entry = describe(image)["layers"][0]
    assert entry["hints"] == ["pair_load"]
    assert "pair load" in layer_note(entry)
