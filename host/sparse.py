"""Balanced 1/2 sparsity (SPEC section 3): pruning, checking and compressing weights.

The reduction index of output channel k is ordered (kh, kw, c), channel innermost; a group is M
consecutive reduction indices, i.e. M input channels at one kernel tap. Input channels are padded
with zeros to a multiple of M. In every group exactly M/2 weights are kept; a kept weight may be 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROUP_SIZES", "pad_channels", "groups_of", "ungroup", "group_counts",
           "prune_balanced", "kept_mask", "check_balanced", "compress", "SparsityError"]

GROUP_SIZES = (2, 4, 8, 16)


class SparsityError(ValueError):
    """Weights that break the balanced pattern; the message names layer, channel and group."""


def group_counts(groups: np.ndarray) -> np.ndarray:
    """Number of True entries in each group of a (..., M) bool array, M in {2, 4, 8, 16}. A group
    is M bytes of 0/1: viewed as integers, a popcount counts it in one operation."""
    m = groups.shape[-1]
    flat = np.ascontiguousarray(groups, dtype=bool).reshape(-1, m).view(np.uint8)
    lanes = flat.view({2: np.uint16, 4: np.uint32, 8: np.uint64, 16: np.uint64}[m])
    counts = np.bitwise_count(lanes)
    if m == 16:
        counts = counts[:, 0] + counts[:, 1]
    return counts.reshape(groups.shape[:-1])


def _check_group(group):
    if group not in GROUP_SIZES:
        raise ValueError(f"group (M) must be one of 2, 4, 8, 16, not {group!r}")


def padded_channels(channels: int, group: int) -> int:
    return -(-channels // group) * group


def pad_channels(a: np.ndarray, group: int, axis: int = 1) -> np.ndarray:
    """Zero-pad `axis` (input channels) of `a` to a multiple of `group`."""
    _check_group(group)
    extra = padded_channels(a.shape[axis], group) - a.shape[axis]
    if not extra:
        return a
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, extra)
    return np.pad(a, pad)


def groups_of(w: np.ndarray, group: int) -> np.ndarray:
    """View weights (K, C, R, S) as (K, G, M): groups in reduction order (kh, kw, c).

    C must already be a multiple of M (see `pad_channels`)."""
    k, c, r, s = w.shape
    if c % group:
        raise ValueError(f"input channels ({c}) must be a multiple of M={group}; pad them first")
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(k, r * s * c // group, group)


def ungroup(groups: np.ndarray, shape) -> np.ndarray:
    """Inverse of `groups_of`."""
    k, c, r, s = shape
    return groups.reshape(k, r, s, c).transpose(0, 3, 1, 2)


def _kth_largest(key: np.ndarray, k: int) -> np.ndarray:
    """The k-th largest value along the last (small) axis: an odd-even transposition sorting
    network over contiguous columns, elementwise min/max only (much faster than np.sort on many
    tiny rows)."""
    m = key.shape[-1]
    cols = [np.ascontiguousarray(key[..., i]) for i in range(m)]
    for rnd in range(m):
        for i in range(rnd % 2, m - 1, 2):
            lo = np.minimum(cols[i], cols[i + 1])
            cols[i + 1] = np.maximum(cols[i], cols[i + 1])
            cols[i] = lo
    return cols[m - k]


#: Output channels pruned at a time (the float path's temporaries are 10 bytes per weight).
PRUNE_BLOCK = 256


def prune_balanced(w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude-prune (K, C, R, S) weights (C a multiple of M) to M/2 kept per group.

    Returns (pruned weights, kept mask), same shape as `w`. Ties are broken towards the lower
    position, so the result is deterministic.
    """
    _check_group(group)
    if w.shape[0] > PRUNE_BLOCK:       # output channels in blocks: bounded temporaries
        parts = [prune_balanced(w[k:k + PRUNE_BLOCK], group)
                 for k in range(0, w.shape[0], PRUNE_BLOCK)]
        return (np.concatenate([p for p, _ in parts]), np.concatenate([m for _, m in parts]))
    g = groups_of(w, group)
    if g.dtype.kind in "iu" and g.dtype.itemsize == 1:
        # int8: a unique key per weight, magnitude first, lower position winning ties; keep the
        # keys at or above the group's (M/2)-th largest.
        key = (np.abs(g.astype(np.int16)) << 4) | (15 - np.arange(group, dtype=np.int16))
        keep = key >= _kth_largest(key, group // 2)[..., None]
    else:
        # Rank inside each group: how many weights beat this one (larger magnitude, or equal and
        # at a lower position); the M/2 with rank < M/2 are kept. M passes, no sort.
        a = np.abs(g.astype(np.float64))
        beaten = np.zeros(g.shape, np.int8)
        for j in range(group):
            aj = a[..., j:j + 1]
            beaten += (aj > a) | ((aj == a) & (np.arange(group) > j))
        keep = beaten < group // 2
    mask = ungroup(keep, w.shape)
    return np.where(mask, w, np.zeros_like(w)), mask


def kept_mask(w: np.ndarray, group: int, name: str = "layer") -> np.ndarray:
    """A kept mask for already-pruned weights: the nonzero weights, topped up per group with the
    lowest-position zeros to exactly M/2. Raises SparsityError when a group has more than M/2
    nonzero weights."""
    check_balanced(w, group, name)
    g = groups_of(w, group)
    nonzero = g != 0
    # Keep the nonzero weights, then the lowest zero positions until M/2 are kept.
    need = group // 2 - group_counts(nonzero)[..., None]
    keep = nonzero | (~nonzero & (np.cumsum(~nonzero, axis=-1) <= need))
    return ungroup(keep, w.shape)


def check_balanced(w: np.ndarray, group: int, name: str = "layer", mask=None) -> None:
    """Refuse weights that break the pattern: more than M/2 nonzero weights in a group, or (with a
    mask) a mask without exactly M/2 kept per group or a pruned weight that is not 0."""
    _check_group(group)
    _check_grouped(groups_of(w, group), None if mask is None else
                   groups_of(mask.astype(bool), group), group, name)


def _check_grouped(g, mg, group, name):
    if mg is not None:
        counts = group_counts(mg)
        bad = np.argwhere(counts != group // 2)
        if bad.size:
            k, gi = bad[0]
            raise SparsityError(f"{name}: output channel {k}, group {gi} keeps {counts[k, gi]} "
                                f"weights; balanced sparsity keeps exactly {group // 2} of {group}")
        outside = (g != 0) & ~mg
        if outside.any():
            k, gi = np.argwhere(outside.any(-1))[0]
            raise SparsityError(f"{name}: output channel {k}, group {gi} has a nonzero weight "
                                f"outside its kept mask")
        return
    counts = group_counts(g != 0)
    bad = np.argwhere(counts > group // 2)
    if bad.size:
        k, gi = bad[0]
        raise SparsityError(f"{name}: output channel {k}, group {gi} has {counts[k, gi]} nonzero "
                            f"weights; balanced sparsity allows at most {group // 2} of {group} "
                            f"({len(bad)} such groups in all)")


def compress(w: np.ndarray, group: int, mask=None, name: str = "layer"):
    """Compressed form: values (K, G, M/2) int8 and positions (K, G, M/2) uint8, ascending."""
    if mask is None:
        mask = kept_mask(w, group, name)
    g = groups_of(w, group)
    mg = groups_of(mask.astype(bool), group)
    _check_grouped(g, mg, group, name)
    # Exactly M/2 kept per group (checked above). Boolean indexing lists the kept values group by
    # group in ascending position; the positions come from a table indexed by the group's mask.
    values = g[mg].reshape(mg.shape[:-1] + (group // 2,))
    code = np.packbits(mg.reshape(-1, group), axis=-1, bitorder="little")
    code = code[:, 0] if group <= 8 else code.view("<u2")[:, 0]
    positions = _position_table(group)[code].reshape(values.shape)
    return values.astype(np.int8, copy=False), positions


_TABLES = {}


def _position_table(group: int) -> np.ndarray:
    """(2**M, M/2) table: for a group mask with exactly M/2 bits set, the set positions ascending
    (other rows are never used)."""
    if group not in _TABLES:
        codes = np.arange(1 << group)
        bits = (codes[:, None] >> np.arange(group)) & 1
        table = np.zeros((1 << group, group // 2), np.uint8)
        ok = bits.sum(1) == group // 2
        table[ok] = np.nonzero(bits[ok])[1].reshape(-1, group // 2)
        _TABLES[group] = table
    return _TABLES[group]
