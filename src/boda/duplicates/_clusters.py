"""Grouping images into exact- and near-duplicate clusters.

Near duplicates are the connected components of the graph whose edges join
hashes at Hamming distance ``<= max_distance`` (single linkage).  Candidate
pairs come from multi-index hashing [1]_: the 64 bits are cut into ``m``
blocks; two hashes within distance ``d`` agree to within ``d // m`` bits on
at least one block (pigeonhole), so only hashes whose block values are that
close are ever compared.  Components are found with a vectorised union-find
(hooking + pointer jumping).

References
----------
.. [1] M. Norouzi, A. Punjani and D. J. Fleet, "Fast Exact Search in Hamming
       Space with Multi-Index Hashing", IEEE TPAMI 36(6), 2014, sec. 3
       (Proposition 1: the pigeonhole bound ``d // m``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from math import comb

import numpy as np

from boda.duplicates._hashes import HASH_BITS, _as_hash
from boda.errors import InvalidParameterError

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "find_exact_duplicates",
    "find_near_duplicates",
    "nearest_distances",
]

#: Default Hamming radius for :func:`find_near_duplicates` on :func:`phash`
#: values.  Measured on the 24 Kodak photos (``benchmarks/duplicate_threshold.py``):
#: copies resized 0.5x, JPEG-recompressed (q=70), brightened or darkened by 8 %,
#: blurred (sigma 1-2) or cropped by 1-2 % stay within 10 bits of their
#: original (the worst case is a 2 % crop on every side), while the closest two
#: of the 276 distinct pairs are 20 bits apart (1st percentile 24, median 32).
#: 10 keeps every measured edit and, for independent random 63-bit hashes,
#: links two unrelated images with probability 1.7e-8 (12 would give 3.7e-7,
#: i.e. ~20 false pairs among the 5e7 pairs of a 10 000-photo folder).
DEFAULT_MAX_DISTANCE = 10

_CHUNK = 4_000_000  # candidate pairs verified at once (bounds memory)


def find_exact_duplicates(keys: Sequence[str]) -> list[list[int]]:
    """Group indices of equal keys (e.g. :func:`pixel_hash` values).

    Parameters
    ----------
    keys : sequence of hashable
        One key per image.

    Returns
    -------
    list of list of int
        Groups of size >= 2 only, indices ascending within a group, groups
        ordered by their first index.

    Examples
    --------
    >>> find_exact_duplicates(["a", "b", "a", "c", "b", "a"])
    [[0, 2, 5], [1, 4]]
    """
    groups: dict[object, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return [group for group in groups.values() if len(group) > 1]


def _as_uint64(hashes: Iterable[int]) -> np.ndarray:
    values = [_as_hash(value, f"hashes[{i}]") for i, value in enumerate(hashes)]
    return np.array(values, dtype=np.uint64)


def _popcount_swar(x: np.ndarray) -> np.ndarray:
    """Bits set per uint64 (Hacker's Delight, fig. 5-2), for numpy < 2.0; uint64 wraps."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


_popcount = getattr(np, "bitwise_count", _popcount_swar)


def _roots(parent: np.ndarray) -> np.ndarray:
    """Pointer jumping until every node points at its root."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def _union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Merge the sets of each pair ``(a[k], b[k])``; ``parent`` must be flat (all roots)."""
    while a.size:
        ra, rb = parent[a], parent[b]
        keep = ra != rb
        if not keep.any():
            break
        lo = np.minimum(ra[keep], rb[keep])
        hi = np.maximum(ra[keep], rb[keep])
        # Hook each larger root under the smallest root it touches: labels only
        # decrease, so no cycles; every touched component merges, so the count
        # at least halves per round.
        np.minimum.at(parent, hi, lo)
        parent = _roots(parent)
        a, b = a[keep], b[keep]
    return parent


def _masks(bits: int, radius: int) -> np.ndarray:
    """All ``bits``-bit values with at most ``radius`` bits set."""
    out = [0]
    for r in range(1, radius + 1):
        for positions in combinations(range(bits), r):
            out.append(sum(1 << p for p in positions))
    return np.array(out, dtype=np.int64)


def _blocks(m: int) -> list[tuple[int, int]]:
    """``(first bit, width)`` of ``m`` nearly equal blocks covering the 64 bits."""
    bounds = np.linspace(0, HASH_BITS, m + 1).round().astype(int)
    return [(int(b0), int(b1 - b0)) for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True)]


def _block_keys(values: np.ndarray, first: int, width: int) -> np.ndarray:
    return ((values >> np.uint64(first)) & np.uint64((1 << width) - 1)).astype(np.int64)


def _plan(values: np.ndarray, max_distance: int) -> int:
    """Number of blocks ``m`` for multi-index hashing, or 0 for brute force.

    ``m`` is first chosen assuming uniformly spread hashes; the candidate count
    it would really produce is then computed from the block histograms (cheap)
    and compared with the ``n**2`` pairs of a brute force.  Clustered data
    (thousands of hashes a few bits apart) makes buckets crowded, and brute
    force is then faster.  Unit costs were measured with numpy 2 on one core:
    ~3 ns per brute-force pair, ~18 ns per verified candidate, ~9 ns per probe.
    """
    n = values.size
    best_m, best_cost = 0, float(n) * n
    for m in range(4, HASH_BITS + 1):
        width = -(-HASH_BITS // m)
        probes = n * m * sum(comb(width, r) for r in range(max_distance // m + 1))
        cost = 3.0 * probes + 6.0 * probes * n / 2.0**width / 2.0
        if cost < best_cost:
            best_m, best_cost = m, cost
    if not best_m:
        return 0
    candidates = 0.0
    for first, width in _blocks(best_m):
        counts = np.bincount(_block_keys(values, first, width), minlength=1 << width)
        counts = counts.astype(np.float64)
        every = np.arange(1 << width)
        for mask in _masks(width, max_distance // best_m):
            candidates += counts @ counts[every ^ mask] / 2.0
    probes = n * sum(
        sum(comb(width, r) for r in range(max_distance // best_m + 1))
        for _, width in _blocks(best_m)
    )
    return best_m if 3.0 * probes + 6.0 * candidates < float(n) * n else 0


def _brute_force_pairs(values: np.ndarray, max_distance: int):
    n = values.size
    rows = max(1, _CHUNK // max(n, 1))
    for start in range(0, n, rows):
        block = values[start : start + rows]
        # Upper triangle only: compare with this block and everything after it.
        dist = _popcount(block[:, None] ^ values[None, start:])
        i, j = np.nonzero(dist <= max_distance)
        keep = i < j
        yield i[keep] + start, j[keep] + start


def _multi_index_pairs(values: np.ndarray, max_distance: int, m: int):
    n = values.size
    items = np.arange(n)
    for first, width in _blocks(m):
        keys = _block_keys(values, first, width)
        order = np.argsort(keys, kind="stable")
        offsets = np.zeros((1 << width) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=1 << width), out=offsets[1:])
        for mask in _masks(width, max_distance // m):
            # Buckets k and k ^ mask meet once: probe only from the smaller key
            # (for mask 0, from every item, keeping src < dst).
            who = items if mask == 0 else items[keys < (keys ^ mask)]
            probe = keys[who] ^ mask
            starts = offsets[probe]
            counts = offsets[probe + 1] - starts
            # Expand (item, bucket) into candidate pairs, a chunk of items at a time.
            ends = np.cumsum(counts)
            lo = 0
            while lo < who.size:
                hi = int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + _CHUNK, "right"))
                hi = min(max(hi, lo + 1), who.size)
                c = counts[lo:hi]
                total = int(c.sum())
                if total:
                    row = np.repeat(np.arange(hi - lo), c)
                    src = who[lo:hi][row]
                    dst = order[(starts[lo:hi] - (np.cumsum(c) - c))[row] + np.arange(total)]
                    if mask == 0:
                        keep = src < dst
                        src, dst = src[keep], dst[keep]
                    close = _popcount(values[src] ^ values[dst]) <= max_distance
                    src, dst = src[close], dst[close]
                    yield np.minimum(src, dst), np.maximum(src, dst)
                lo = hi


def find_near_duplicates(
    hashes: Sequence[int | str], max_distance: int = DEFAULT_MAX_DISTANCE
) -> list[list[int]]:
    """Cluster 64-bit perceptual hashes by single linkage over Hamming distance.

    Two images are linked when their hashes differ in at most ``max_distance``
    bits; clusters are the connected components of those links, so a chain
    ``a ~ b ~ c`` is one cluster even if ``a`` and ``c`` are further apart.

    Identical hashes are merged first; candidate pairs come from multi-index
    hashing (``m`` blocks, pigeonhole radius ``max_distance // m`` per block,
    ``m`` chosen by an operation-count estimate, falling back to a chunked
    brute force for small inputs), each verified with a vectorised popcount.
    The result is exact, not approximate.  100 000 random hashes take about
    a second at the default radius on one core.  When thousands of hashes lie
    within a few bits of each other (video frames, bursts) every linked pair is
    real and the work grows as the square of that group's size (a brute force
    is then chosen; 16 000 such hashes take a few seconds).

    Parameters
    ----------
    hashes : sequence of int or str
        :func:`phash` (or :func:`dhash`) values, unsigned 64-bit; signed
        64-bit ints (as stored in SQLite) are read as two's complement, hex
        strings (as ``boda report --json`` exports them) as hex.
    max_distance : int
        Largest Hamming distance (0-64) that links two images; 0 groups only
        identical hashes.  The default, :data:`DEFAULT_MAX_DISTANCE`, was
        measured for :func:`phash` on the Kodak photos (see
        ``docs/duplicates.md``).

    Returns
    -------
    list of list of int
        Groups of size >= 2 only, indices ascending within a group, groups
        ordered by their first index.

    Raises
    ------
    InvalidParameterError
        If ``max_distance`` is outside 0-64 or a hash does not fit 64 bits.

    References
    ----------
    .. [1] Norouzi, Punjani & Fleet (2014), Proposition 1.

    Examples
    --------
    >>> find_near_duplicates([0b0000, 0b0111, 0xFFFF, 0b0011], max_distance=1)
    [[1, 3]]
    >>> find_near_duplicates([0b0000, 0b0111, 0xFFFF, 0b0011], max_distance=2)
    [[0, 1, 3]]
    """
    if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer):
        raise InvalidParameterError(f"max_distance must be an int, got {max_distance!r}")
    if not 0 <= max_distance <= HASH_BITS:
        raise InvalidParameterError(
            f"max_distance must be between 0 and {HASH_BITS} bits, got {max_distance}"
        )
    max_distance = int(max_distance)
    values = _as_uint64(hashes)
    if values.size < 2:
        return []
    unique, inverse = np.unique(values, return_inverse=True)
    inverse = inverse.ravel()
    parent = np.arange(unique.size)
    if max_distance > 0 and unique.size > 1:
        m = _plan(unique, max_distance)
        pairs = (
            _multi_index_pairs(unique, max_distance, m)
            if m
            else _brute_force_pairs(unique, max_distance)
        )
        # Union in batches (each round of pointer jumping touches every node),
        # small enough that the filter below soon sees merged components.
        batch = max(unique.size, 1 << 18)
        batch_a: list[np.ndarray] = []
        batch_b: list[np.ndarray] = []
        pending = 0
        for a, b in pairs:
            # Links inside an already merged component change nothing: drop
            # them early (most of them when thousands of images look alike).
            new = parent[a] != parent[b]
            a, b = a[new], b[new]
            batch_a.append(a)
            batch_b.append(b)
            pending += a.size
            if pending >= batch:
                parent = _union(parent, np.concatenate(batch_a), np.concatenate(batch_b))
                batch_a, batch_b, pending = [], [], 0
        if pending:
            parent = _union(parent, np.concatenate(batch_a), np.concatenate(batch_b))
    labels = parent[inverse]
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    groups = [g.tolist() for g in np.split(order, cuts) if g.size > 1]
    groups.sort(key=lambda g: g[0])
    return groups


def nearest_distances(hashes: Sequence[int]) -> np.ndarray:
    """For each hash, the Hamming distance to the nearest *other* hash of the list.

    Vectorised in blocks of rows (memory bounded by :data:`_CHUNK` pairs), so a
    group of 16 000 look-alikes takes well under a second instead of the
    minutes a Python ``min`` over pairs would.

    Examples
    --------
    >>> nearest_distances([0b0000, 0b0001, 0b0111]).tolist()
    [1, 1, 2]
    """
    values = _as_uint64(hashes)
    n = len(values)
    if n < 2:
        raise InvalidParameterError("need at least two hashes to have a nearest other one")
    out = np.empty(n, dtype=np.int64)
    rows = max(1, _CHUNK // n)
    for start in range(0, n, rows):
        block = values[start : start + rows]
        dist = _popcount(block[:, None] ^ values[None, :]).astype(np.int64)
        dist[np.arange(len(block)), np.arange(start, start + len(block))] = HASH_BITS + 1
        out[start : start + len(block)] = dist.min(axis=1)
    return out
