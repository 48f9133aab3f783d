import numpy as np
import pytest

from host import sparse
from host.buffers import ConvLayer, assemble_output, ifm_words, weight_slots
from hw.config import SenseConfig


@pytest.mark.parametrize("m", [2, 4, 8, 16])
def test_prune_keeps_half_of_every_group_by_magnitude(m):
    rng = np.random.default_rng(m)
    w = rng.integers(-128, 128, size=(5, 3 * m, 3, 3)).astype(np.int8)
    pruned, mask = sparse.prune_balanced(w, m)
    g = sparse.groups_of(mask, m)
    assert (g.sum(-1) == m // 2).all()
    assert (pruned[~mask] == 0).all() and (pruned[mask] == w[mask]).all()
    # Every kept weight is at least as large as every pruned one in its group.
    gw = np.abs(sparse.groups_of(w, m).astype(int))
    kept_min = np.where(g, gw, 999).min(-1)
    pruned_max = np.where(~g, gw, -1).max(-1)
    assert (kept_min >= pruned_max).all()
    sparse.check_balanced(pruned, m)


def test_groups_follow_kh_kw_c_order():
    w = np.arange(2 * 4 * 2 * 2).reshape(2, 4, 2, 2)
    g = sparse.groups_of(w, 2)          # K=2, G = 2*2*4/2 = 8, M=2
    # group 0 = channels 0,1 at tap (0,0); group 1 = channels 2,3 at tap (0,0); group 2 = tap (0,1)
    assert g[0, 0].tolist() == [w[0, 0, 0, 0], w[0, 1, 0, 0]]
    assert g[0, 1].tolist() == [w[0, 2, 0, 0], w[0, 3, 0, 0]]
    assert g[0, 2].tolist() == [w[0, 0, 0, 1], w[0, 1, 0, 1]]
    assert (sparse.ungroup(g, w.shape) == w).all()


def test_unbalanced_weights_refused_with_channel_and_group():
    w = np.zeros((3, 4, 1, 1), np.int8)
    w[2, :3, 0, 0] = 5              # channel 2, group 0 has 3 nonzero of 4
    with pytest.raises(sparse.SparsityError,
                       match="conv1: output channel 2, group 0 has 3 nonzero weights; balanced "
                             "sparsity allows at most 2 of 4"):
        sparse.check_balanced(w, 4, "conv1")
    with pytest.raises(sparse.SparsityError, match="output channel 2, group 0"):
        sparse.compress(w, 4, name="conv1")


def test_mask_errors():
    w = np.zeros((1, 4, 1, 1), np.int8)
    mask = np.zeros(w.shape, bool)
    mask[0, :3] = True
    with pytest.raises(sparse.SparsityError, match="keeps 3 weights; balanced sparsity keeps "
                                                   "exactly 2 of 4"):
        sparse.check_balanced(w, 4, mask=mask)
    mask[0, 2] = False
    w[0, 3] = 1
    with pytest.raises(sparse.SparsityError, match="nonzero weight outside its kept mask"):
        sparse.check_balanced(w, 4, mask=mask)


def test_bad_group_and_channels():
    with pytest.raises(ValueError, match="group \\(M\\) must be one of 2, 4, 8, 16, not 3"):
        sparse.prune_balanced(np.zeros((1, 3, 1, 1), np.int8), 3)
    with pytest.raises(ValueError, match="input channels \\(6\\) must be a multiple of M=4"):
        sparse.groups_of(np.zeros((1, 6, 1, 1), np.int8), 4)


def test_compress_positions_ascending_and_zero_kept_weights():
    w = np.zeros((1, 4, 1, 1), np.int8)
    w[0, 3] = 9                      # one nonzero: the kept slots are position 0 (a zero) and 3
    values, positions = sparse.compress(w, 4)
    assert positions.tolist() == [[[0, 3]]] and values.tolist() == [[[0, 9]]]


def test_ifm_words_and_weight_slots_order():
    cfg = SenseConfig(rows=2, cols=2, group=2)
    x = np.arange(3 * 2 * 2, dtype=np.int8).reshape(3, 2, 2)   # C=3 -> padded to 4
    words = ifm_words(x, cfg)
    assert words.shape == (2 * 2 * 2, 2)
    assert words[0].tolist() == [x[0, 0, 0], x[1, 0, 0]]       # pixel (0,0), channel group 0
    assert words[1].tolist() == [x[2, 0, 0], 0]                 # channel group 1, padded
    assert words[2].tolist() == [x[0, 0, 1], x[1, 0, 1]]       # pixel (0,1)
    w = np.zeros((3, 4, 1, 1), np.int8)
    w[:, 1, 0, 0] = [1, 2, 3]
    w[:, 2, 0, 0] = [4, 5, 6]
    layer = ConvLayer(x=np.zeros((4, 1, 1), np.int8), w=w, bias=np.zeros(3, np.int32),
                      mult=np.ones(3, np.int32), shift=np.ones(3, np.int32))
    slots = weight_slots(layer, cfg)          # k tiles 2 (rows 2, K 3), groups 2, slots 1
    assert slots.shape == (4, 2, 2)
    assert slots[0].tolist() == [[1, 1], [2, 1]]     # kt 0, group 0: rows 0,1 keep position 1
    assert slots[1].tolist() == [[4, 0], [5, 0]]     # kt 0, group 1: position 0 (channel 2)
    assert slots[2].tolist() == [[3, 1], [0, 0]]     # kt 1: channel 2, then an empty row


def test_layer_check_errors():
    cfg = SenseConfig(rows=2, cols=2, group=4, ifm_kib=1)
    def layer(c=4, h=4, w=4, k=2, r=3, stride=1, pad=0, bias=0):
        return ConvLayer(x=np.zeros((c, h, w), np.int8), w=np.zeros((k, c, r, r), np.int8),
                         bias=np.full(k, bias, np.int32), mult=np.ones(k, np.int32),
                         shift=np.ones(k, np.int32), stride=stride, pad=pad, name="L")
    with pytest.raises(ValueError, match="L: input needs 72 lines of each IFM bank, the "
                                         "configuration has 32"):
        layer(h=12, w=12).check(cfg)
    with pytest.raises(ValueError, match="L: stride 16 exceeds the hardware limit 15"):
        layer(stride=16).check(cfg)
    with pytest.raises(ValueError, match="L: kernel 5x5 does not fit the 4x4 input"):
        layer(r=5).check(cfg)
    with pytest.raises(ValueError, match="output channels 2000 exceeds the hardware limit 1024"):
        layer(k=2000).check(cfg)
    with pytest.raises(ValueError, match="L: the accumulator could reach"):
        layer(c=4, h=1, w=1, r=1, bias=2**31 - 1).check(cfg)
    layer().check(cfg)


def test_assemble_output_errors():
    cfg = SenseConfig(rows=1, cols=2, group=2)
    layer = ConvLayer(x=np.zeros((2, 1, 3), np.int8), w=np.zeros((1, 2, 1, 1), np.int8),
                      bias=np.zeros(1, np.int32), mult=np.ones(1, np.int32),
                      shift=np.ones(1, np.int32))
    good = [(0, 0, 2, [1, 2]), (0, 2, 1, [3, 0])]           # (channel, first pixel, count)
    assert assemble_output(good, layer, cfg).tolist() == [[[1, 2, 3]]]
    with pytest.raises(ValueError, match="came twice"):
        assemble_output(good + [good[0]], layer, cfg)
    with pytest.raises(ValueError, match="1 output rows missing"):
        assemble_output(good[:1], layer, cfg)
    with pytest.raises(ValueError, match="has count 2, expected 1"):
        assemble_output([good[0], (0, 2, 2, [3, 0])], layer, cfg)
    with pytest.raises(ValueError, match="out of range"):
        assemble_output([(1, 0, 2, [0, 0])], layer, cfg)


def test_unbalanced_layer_refused_before_simulation():
    from host.sparse import SparsityError
    from sim.corerun import run_core

    cfg = SenseConfig(rows=2, cols=2, group=4)
    w = np.ones((2, 4, 1, 1), np.int8)          # 4 of 4 nonzero: not 2:4
    layer = ConvLayer(x=np.ones((4, 2, 2), np.int8), w=w, bias=np.zeros(2, np.int32),
                      mult=np.ones(2, np.int32), shift=np.ones(2, np.int32), name="conv9")
    with pytest.raises(SparsityError, match="conv9: output channel 0, group 0 has 4 nonzero"):
        run_core(cfg, [layer])
    layer.check(cfg.replace(sparse=False))      # the dense baseline runs any weights
