"""Grouping images into exact- and near-duplicate clusters.

Near duplicates are the connected components of the graph whose edges join
hashes at Hamming distance ``<= max_distance`` (single linkage).  Candidate
pairs come from multi-index hashing [1]_ with the generalised pigeonhole
principle [2]_: the varying bits are cut into ``m`` blocks with radii ``t_i``
summing to ``max_distance - m + 1``; two hashes within ``max_distance`` are
within ``t_i`` bits on at least one block ``i``, so only hashes whose block
values are that close are ever compared.  Components are found with a
vectorised union-find (hooking + pointer jumping).

References
----------
.. [1] M. Norouzi, A. Punjani and D. J. Fleet, "Fast Exact Search in Hamming
       Space with Multi-Index Hashing", IEEE TPAMI 36(6), 2014 (CVPR 2012),
       sec. 3 (Proposition 1: the pigeonhole bound).
.. [2] J. Qin, C. Xiao, Y. Wang, W. Wang, X. Lin, Y. Ishikawa and G. Wang,
       "Generalizing the Pigeonhole Principle for Similarity Search in Hamming
       Space", IEEE TKDE 33(2), 2021 (ICDE 2018).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from math import comb

import numpy as np

from boda.duplicates._hashes import HASH_BITS, _as_hash
from boda.errors import InvalidParameterError

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "find_exact_duplicates",
    "find_near_duplicates",
    "find_near_duplicates_mirrored",
    "nearest_distances",
]

#: Default Hamming radius for :func:`find_near_duplicates` on :func:`phash`
#: values.  Measured on the 24 Kodak photos (``benchmarks/duplicate_threshold.py``):
#: copies resized 0.5x, JPEG-recompressed (q=70), brightened or darkened by 8 %,
#: blurred (sigma 1-2) or cropped by 1-2 % stay within 10 bits of their
#: original (the worst case is a 2 % crop on every side), while the closest two
#: of the 276 distinct pairs are 20 bits apart (1st percentile 24, median 32).
#: 10 keeps every measured edit.  Two unrelated images (independent phashes:
#: top bit set, 32 of the 64 bits set) are within 10 bits with probability
#: 3.9e-8: ~2 false pairs in a 10 000-photo folder, ~190 at 100 000, ~19 000
#: at 1 000 000 (radius 8: 1.3e-9, ~630 pairs at 1M; radius 6: 2.5e-11, ~12).
DEFAULT_MAX_DISTANCE = 10

_CHUNK = 4_000_000  # candidate pairs verified at once (bounds memory)
_DENSE_BITS = 22  # blocks up to this width get a dense bucket table (2**22 int32 = 16 MB)

# Unit costs in nanoseconds (numpy 2, one core of a 2-core VM), used only to
# choose between plans: a bucket probe through the dense table / by binary
# search, a verified candidate pair, a brute-force pair, and the Python
# overhead of one probe mask.
_NS_PROBE = 4.0
_NS_PROBE_SORTED = 40.0
_NS_CANDIDATE = 12.0
_NS_BRUTE = 1.5
_NS_MASK = 20_000.0


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


def _as_uint64(hashes: Iterable[int | str]) -> np.ndarray:
    if isinstance(hashes, np.ndarray) and hashes.ndim == 1:
        if hashes.dtype == np.uint64:
            return hashes.copy()
        if hashes.dtype == np.int64:  # SQLite's signed form: two's complement
            return hashes.view(np.uint64).copy()
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


def _ball(bits: int, radius: int) -> int:
    """Number of ``bits``-bit values within ``radius`` bits of a given one."""
    return sum(comb(bits, r) for r in range(min(radius, bits) + 1))


def _masks(bits: int, radius: int) -> np.ndarray:
    """All ``bits``-bit values with at most ``radius`` bits set."""
    out = [0]
    for r in range(1, min(radius, bits) + 1):
        for positions in combinations(range(bits), r):
            out.append(sum(1 << p for p in positions))
    return np.array(out, dtype=np.int64)


def _compact(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop the bits that are equal in every hash; ``(packed values, bits kept)``.

    Constant bits never contribute to a distance (phash's top bit is nearly
    always set), so blocks are cut from the varying bits only.
    """
    varying = int(np.bitwise_or.reduce(values ^ values[0]))
    out = np.zeros(values.size, dtype=np.uint64)
    kept = 0
    bit = 0
    while bit < HASH_BITS:
        if not varying >> bit & 1:
            bit += 1
            continue
        run = bit
        while run < HASH_BITS and varying >> run & 1:
            run += 1
        field = (values >> np.uint64(bit)) & np.uint64((1 << (run - bit)) - 1)
        out |= field << np.uint64(kept)
        kept += run - bit
        bit = run
    return out, kept


def _plan(n: int, bits: int, max_distance: int) -> tuple[list[tuple[int, int, int]], float]:
    """Blocks ``(first bit, width, radius)`` for multi-index hashing, and their cost.

    Generalised pigeonhole principle [2]_: cut the ``bits`` varying bits into
    ``m`` blocks and give block ``i`` a radius ``t_i >= -1`` with
    ``sum(t_i) = max_distance - m + 1``; two hashes within ``max_distance``
    then differ in at most ``t_i`` bits on some block ``i`` (otherwise the
    total would be at least ``sum(t_i + 1) = max_distance + 1``).  A block with
    ``t_i = -1`` is never probed.  For uniformly spread hashes a block of
    width ``w`` and radius ``t`` costs ``n * V(w, t) / 2`` probes and yields
    ``n**2 / 2 * V(w, t) / 2**w`` candidate pairs, ``V`` the Hamming-ball
    volume; ``m`` and the radii minimising the cost are returned (an empty list
    and the brute-force cost if nothing beats comparing all pairs).
    """
    best: list[tuple[int, int, int]] = []
    best_cost = _NS_BRUTE * n * n / 2.0
    for m in range(1, min(bits, max_distance + 1, 16) + 1):
        bounds = np.linspace(0, bits, m + 1).round().astype(int).tolist()
        blocks = [(b0, b1 - b0) for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True)]
        base, extra = divmod(max_distance - m + 1, m)
        for wide_first in (True, False):
            ranked = sorted(range(m), key=lambda i: -blocks[i][1] if wide_first else blocks[i][1])
            radius = {i: base + (rank < extra) for rank, i in enumerate(ranked)}
            plan = [(first, width, radius[i]) for i, (first, width) in enumerate(blocks)]
            cost = 0.0
            for _, width, t in plan:
                if t < 0:
                    continue
                volume = _ball(width, t)
                buckets = min(float(n), 2.0**width)
                probe = _NS_PROBE if width <= _DENSE_BITS else _NS_PROBE_SORTED
                cost += probe * buckets * (volume - 1) / 2.0 + _NS_MASK * volume
                cost += _NS_CANDIDATE * n * n / 2.0 * volume / 2.0**width + 100.0 * n
            if cost < best_cost:
                best, best_cost = plan, cost
    return best, best_cost


class _Block:
    """Hashes sorted by one block's value, with the bucket (run of equal values) of each."""

    def __init__(self, packed: np.ndarray, first: int, width: int, radius: int):
        self.width, self.radius = width, radius
        keys = ((packed >> np.uint64(first)) & np.uint64((1 << width) - 1)).astype(np.int64)
        self.order = np.argsort(keys, kind="stable")
        sorted_keys = keys[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        self.counts = np.diff(np.r_[self.starts, keys.size])
        self.keys = sorted_keys[self.starts]
        self.table = None
        if width <= _DENSE_BITS:
            self.table = np.full(1 << width, -1, dtype=np.int32 if keys.size < 2**31 else np.int64)
            self.table[self.keys] = np.arange(self.keys.size)

    def bucket(self, keys: np.ndarray) -> np.ndarray:
        """Bucket index of each key, -1 where no hash has that block value."""
        if self.table is not None:
            return self.table[keys]
        pos = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return np.where(self.keys[pos] == keys, pos, -1)

    def candidates(self, sample: np.ndarray) -> float:
        """Candidate pairs this block yields, estimated from the ``sample`` positions."""
        keys = self.keys[np.searchsorted(self.starts, sample, "right") - 1]
        total = 0
        for mask in _masks(self.width, self.radius):
            hit = self.bucket(keys ^ mask)
            total += int(self.counts[hit[hit >= 0]].sum())
        n = self.order.size
        return max(0.0, (total * n / sample.size - n) / 2.0)


def _rows(values, src, dst_start, dst_count, max_distance):
    """Verify pairs ``(src[k], dst_start[k] + i)``, ``i < dst_count[k]``; yield the close ones.

    The ``i``-th partners of all rows that have one are compared in one
    vectorised step; the rows left shrink fast (buckets hold one or two
    hashes when the hashes are spread), so there is no index expansion.
    """
    left = values[src]
    for i in range(int(dst_count.max()) if src.size else 0):
        if i:
            more = np.flatnonzero(dst_count > i)
            src, dst_start, dst_count, left = (
                src[more],
                dst_start[more],
                dst_count[more],
                left[more],
            )
        b = dst_start + i
        dist = _popcount(left ^ values[b])
        close = np.flatnonzero(dist <= max_distance)
        if close.size:
            yield src[close], b[close], dist[close]


def _block_pairs(values: np.ndarray, block: _Block, max_distance: int):
    """Pairs within ``max_distance`` whose block values are within the block's radius.

    ``values`` are in the block's sorted order; yields ``(a, b, distance)``
    with ``a, b`` positions in that order, and ``None`` after each group of
    probe masks (for progress).
    """
    starts, counts = block.starts, block.counts
    # Radius 0: pairs inside one bucket, each once.
    multi = np.flatnonzero(counts > 1)
    if multi.size:
        size = counts[multi]
        first = np.repeat(starts[multi], size)
        pos = first + np.arange(first.size) - np.repeat(np.cumsum(size) - size, size)
        rest = first + np.repeat(size, size) - pos - 1
        keep = rest > 0
        yield from _rows(values, pos[keep], pos[keep] + 1, rest[keep], max_distance)
    yield None
    if block.radius < 1:
        return
    sorted_keys = np.repeat(block.keys, counts)
    # Radius 1..t: buckets k and k ^ mask meet once, probed from the one whose
    # bit at the mask's highest set bit is 0, one hash at a time.
    for top in range(block.width):
        probing = np.flatnonzero((sorted_keys >> top) & 1 == 0)
        keys = sorted_keys[probing]
        src: list[np.ndarray] = []
        hits: list[np.ndarray] = []
        pending = 0
        for mask in _masks(top, block.radius - 1) | (1 << top):
            hit = block.bucket(keys ^ mask)
            ok = np.flatnonzero(hit >= 0)
            src.append(probing[ok])
            hits.append(hit[ok])
            pending += ok.size
            if pending >= _CHUNK // 4:
                hit = np.concatenate(hits)
                yield from _rows(
                    values, np.concatenate(src), starts[hit], counts[hit], max_distance
                )
                src, hits, pending = [], [], 0
        if pending:
            hit = np.concatenate(hits)
            yield from _rows(values, np.concatenate(src), starts[hit], counts[hit], max_distance)
        yield None


def _link(
    values: np.ndarray,
    max_distance: int,
    nearest: bool,
    progress: Callable[[int, int], object] | None,
    mirror: _MirrorLinks | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Union-find labels of distinct ``values`` linked within ``max_distance``.

    Also, if ``nearest``, each value's distance to its nearest other value when
    that is at most ``max_distance`` (``HASH_BITS + 1`` otherwise).  With
    ``mirror`` (:func:`find_near_duplicates_mirrored`), the values are hashes
    and mirrored hashes, not all distinct, and ``mirror`` decides which of the
    pairs within ``max_distance`` link (and keeps the nearest distances itself).
    """
    n = values.size
    parent = np.arange(n)
    best = np.full(n, HASH_BITS + 1, dtype=np.int64) if nearest else None
    if n < 2 or (max_distance == 0 and mirror is None):
        return parent, best
    packed, bits = _compact(values)
    if mirror is not None and max_distance >= bits:  # every pair is a candidate
        return _brute_link(packed, max_distance, parent, best, progress, mirror)
    if max_distance >= bits:  # every pair is within reach
        if best is not None:
            best[:] = _brute_nearest(packed, np.arange(n))
        return np.zeros(n, dtype=np.int64), best
    plan, cost = _plan(n, bits, max_distance)
    blocks = [_Block(packed, first, width, t) for first, width, t in plan if t >= 0]
    if blocks:
        # Crowded buckets (bursts, video frames) make candidates far more
        # numerous than for spread hashes: count them on a sample and fall back
        # to comparing all pairs when that is cheaper.
        sample = np.linspace(0, n - 1, min(n, 2000)).astype(np.int64)
        candidates = sum(block.candidates(sample) for block in blocks)
        if _NS_CANDIDATE * candidates > _NS_BRUTE * n * n / 2.0:
            blocks = []
    if not blocks:
        return _brute_link(packed, max_distance, parent, best, progress, mirror)
    total = sum(block.width + 1 for block in blocks)
    done = 0
    batch = max(n, 1 << 18)
    pending_a: list[np.ndarray] = []
    pending_b: list[np.ndarray] = []
    pending = 0
    for block in blocks:
        ordered = packed[block.order]
        for found in _block_pairs(ordered, block, max_distance):
            if found is None:
                done += 1
                if progress is not None:
                    progress(done, total)
                continue
            a, b, dist = block.order[found[0]], block.order[found[1]], found[2]
            if mirror is not None:
                links = mirror.pairs(a, b, dist)
                a, b = a[links], b[links]
            if best is not None:
                np.minimum.at(best, a, dist)
                np.minimum.at(best, b, dist)
            # Links inside an already merged component change nothing.
            new = parent[a] != parent[b]
            pending_a.append(a[new])
            pending_b.append(b[new])
            pending += int(new.sum())
            if pending >= batch:
                parent = _union(parent, np.concatenate(pending_a), np.concatenate(pending_b))
                pending_a, pending_b, pending = [], [], 0
    if pending:
        parent = _union(parent, np.concatenate(pending_a), np.concatenate(pending_b))
    return parent, best


def _brute_link(packed, max_distance, parent, best, progress, mirror=None):
    """All-pairs comparison, a block of rows at a time, linking as it goes."""
    n = packed.size
    rows = max(1, _CHUNK // n)
    total = -(-n // rows)
    for step, start in enumerate(range(0, n, rows)):
        block = packed[start : start + rows]
        # Upper triangle only: compare with this block and everything after it.
        dist = _popcount(block[:, None] ^ packed[None, start:])
        size = block.size
        dist[:, :size][np.tril_indices(size)] = HASH_BITS + 1
        if best is not None:
            best[start : start + size] = np.minimum(best[start : start + size], dist.min(axis=1))
            best[start:] = np.minimum(best[start:], dist.min(axis=0))
        close = dist <= max_distance if mirror is None else mirror.block(start, dist)
        # Pairs already in one component (most of them in a burst of
        # look-alikes) are dropped before they are ever listed.
        close &= parent[start : start + size, None] != parent[None, start:]
        i, j = np.nonzero(close)
        if i.size:
            parent = _union(parent, i + start, j + start)
        if progress is not None:
            progress(step + 1, total)
    if best is not None:
        best[best > max_distance] = HASH_BITS + 1
    return parent, best


def _brute_nearest(values: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Distance from each ``values[which]`` to its nearest other value (all distinct)."""
    n = values.size
    out = np.empty(which.size, dtype=np.int64)
    rows = max(1, _CHUNK // n)
    for start in range(0, which.size, rows):
        idx = which[start : start + rows]
        dist = _popcount(values[idx, None] ^ values[None, :])
        dist[np.arange(idx.size), idx] = HASH_BITS + 1
        out[start : start + idx.size] = dist.min(axis=1)
    return out


def find_near_duplicates(
    hashes: Sequence[int | str] | np.ndarray,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    progress: Callable[[int, int], object] | None = None,
    return_nearest: bool = False,
) -> list[list[int]] | tuple[list[list[int]], np.ndarray]:
    """Cluster 64-bit perceptual hashes by single linkage over Hamming distance.

    Two images are linked when their hashes differ in at most ``max_distance``
    bits; clusters are the connected components of those links, so a chain
    ``a ~ b ~ c`` is one cluster even if ``a`` and ``c`` are further apart.
    The result is exact, not approximate.

    Parameters
    ----------
    hashes : sequence of int or str, or 1-D uint64/int64 array
        :func:`phash` (or :func:`dhash`) values, unsigned 64-bit; signed
        64-bit ints (as stored in SQLite) are read as two's complement, hex
        strings (as ``boda report --json`` exports them) as hex.
    max_distance : int
        Largest Hamming distance (0-64) that links two images; 0 groups only
        identical hashes.  The default, :data:`DEFAULT_MAX_DISTANCE`, was
        measured for :func:`phash` on the Kodak photos (see
        ``docs/duplicates.md``).
    progress : callable, optional
        Called as ``progress(done, total)`` while pairs are searched (a few
        dozen to a few thousand calls), e.g. to drive a progress bar.
    return_nearest : bool
        Also return, for each hash, the distance to its nearest other hash of
        the list when that is at most ``max_distance`` (-1 otherwise): the
        same numbers as :func:`nearest_distances` on each group, for free.

    Returns
    -------
    groups : list of list of int
        Groups of size >= 2 only, indices ascending within a group, groups
        ordered by their first index.
    nearest : ndarray of int64, shape (n,)
        Only if ``return_nearest``.

    Raises
    ------
    InvalidParameterError
        If ``max_distance`` is outside 0-64 or a hash does not fit 64 bits.

    Notes
    -----
    Identical hashes are merged first.  Bits equal in every hash are dropped
    (they never add to a distance).  Candidate pairs come from multi-index
    hashing [1]_ with the generalised pigeonhole principle [2]_: the remaining
    bits are cut into ``m`` blocks with radii ``t_i`` summing to
    ``max_distance - m + 1``, so that any two hashes within ``max_distance``
    are within ``t_i`` bits on some block ``i``.  Each block is indexed by a
    sorted table; every bucket is probed with the block values within ``t_i``
    bits of its own.  ``m`` and the ``t_i`` minimise the expected number of
    probes plus candidates: for one million hashes at distance 10 that is
    three 21-bit blocks with radii 3, 3, 2 (about 0.15 % of all pairs become
    candidates, against 0.84 % for four 16-bit blocks with radius 2).  Every
    candidate is verified with a popcount, and components are found with a
    vectorised union-find (hooking + pointer jumping).

    When the hashes crowd into a few buckets (thousands of look-alikes:
    bursts, video frames) the candidates, counted on a sample, would exceed
    the number of pairs, and all pairs are compared instead, a block of rows
    at a time; pairs already in one component are dropped before they are
    listed, so a burst of look-alikes costs about 3 ns per pair.

    References
    ----------
    .. [1] M. Norouzi, A. Punjani and D. J. Fleet, "Fast Exact Search in
           Hamming Space with Multi-Index Hashing", IEEE TPAMI 36(6), 2014
           (CVPR 2012), Proposition 1.
    .. [2] J. Qin, C. Xiao, Y. Wang, W. Wang, X. Lin, Y. Ishikawa and G. Wang,
           "Generalizing the Pigeonhole Principle for Similarity Search in
           Hamming Space", IEEE TKDE 33(2), 2021 (ICDE 2018).

    Examples
    --------
    >>> find_near_duplicates([0b0000, 0b0111, 0xFFFF, 0b0011], max_distance=1)
    [[1, 3]]
    >>> find_near_duplicates([0b0000, 0b0111, 0xFFFF, 0b0011], max_distance=2)
    [[0, 1, 3]]
    >>> groups, nearest = find_near_duplicates([0b0000, 0b0111, 0xFFFF, 0b0011],
    ...                                        max_distance=2, return_nearest=True)
    >>> nearest.tolist()
    [2, 1, -1, 1]
    """
    max_distance = _check_distance(max_distance)
    values = _as_uint64(hashes)
    groups: list[list[int]] = []
    nearest = np.full(values.size, -1, dtype=np.int64)
    if values.size >= 2:
        unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        parent, best = _link(unique, max_distance, return_nearest, progress)
        labels = parent[inverse]
        # Only labels shared by two or more hashes make groups.
        shared = np.bincount(labels, minlength=unique.size)[labels] > 1
        members = np.flatnonzero(shared)
        order = members[np.argsort(labels[members], kind="stable")]
        cuts = np.flatnonzero(np.diff(labels[order])) + 1
        groups = [g.tolist() for g in np.split(order, cuts)] if order.size else []
        groups.sort(key=lambda g: g[0])
        if best is not None:
            best = np.where(counts > 1, 0, best)
            nearest = np.where(best <= max_distance, best, -1)[inverse]
    return (groups, nearest) if return_nearest else groups


def nearest_distances(hashes: Sequence[int | str] | np.ndarray) -> np.ndarray:
    """For each hash, the Hamming distance to the nearest *other* hash of the list.

    Repeated hashes are at distance 0.  The distinct hashes are searched with
    the machinery of :func:`find_near_duplicates` at
    :data:`DEFAULT_MAX_DISTANCE` (exact, and sub-quadratic unless the hashes
    crowd together), and only those with nothing that close are compared with
    all others.  When you cluster anyway, ``find_near_duplicates(...,
    return_nearest=True)`` gives the same numbers without a second search.

    Examples
    --------
    >>> nearest_distances([0b0000, 0b0001, 0b0111]).tolist()
    [1, 1, 2]
    """
    values = _as_uint64(hashes)
    if values.size < 2:
        raise InvalidParameterError("need at least two hashes to have a nearest other one")
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    best = np.zeros(unique.size, dtype=np.int64)
    if unique.size > 1:
        _, best = _link(unique, DEFAULT_MAX_DISTANCE, True, None)
        far = np.flatnonzero(best > DEFAULT_MAX_DISTANCE)
        if far.size:
            best[far] = _brute_nearest(unique, far)
    return np.where(counts > 1, 0, best)[inverse]


class _MirrorLinks:
    """Which pairs of :func:`find_near_duplicates_mirrored`'s values link, and their
    nearest distances.

    The values are the hashes of the distinct ``(hash, mirrored hash)`` pairs of
    the images (``mirrored[k]`` False), followed by the mirrored hashes of those
    that have one (True), so every mirrored-hash node belongs to images of one
    hash and one mirrored hash.  ``partner[k]`` is, for a hash node, the mirrored
    hash of its images (``usable[k]`` False when they have none), and for a
    mirrored-hash node, the hash of its images; ``owner[k]`` is a mirrored-hash
    node's hash node (-1 for hash nodes).

    Two hash nodes link within ``max_distance`` (the direct test); a hash node
    ``a`` and a mirrored-hash node ``b`` link when both ``d(a, b)`` and
    ``d(partner[a], partner[b])`` are within it (image ``i`` against the
    mirror image of ``j``, and the mirror image of ``i`` against ``j``); two
    mirrored-hash nodes never link.  ``direct`` and ``mirror`` hold each node's
    nearest distance of each kind (``HASH_BITS + 1``: none within reach); a
    mirrored link's distance is the larger of its two, and an image's hash
    against its own mirrored hash (a symmetric picture) is no match.
    """

    def __init__(
        self, mirrored: np.ndarray, partner: np.ndarray, usable: np.ndarray, owner: np.ndarray,
        max_distance: int,
    ):
        self.mirrored, self.partner, self.usable, self.owner = mirrored, partner, usable, owner
        self.max_distance = max_distance
        self.direct = np.full(mirrored.size, HASH_BITS + 1, dtype=np.int64)
        self.mirror = np.full(mirrored.size, HASH_BITS + 1, dtype=np.int64)

    def pairs(self, a: np.ndarray, b: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """Which of the pairs ``(a[k], b[k])``, ``dist[k] <= max_distance`` apart, link."""
        ma, mb = self.mirrored[a], self.mirrored[b]
        direct = ~ma & ~mb
        if direct.any():
            np.minimum.at(self.direct, a[direct], dist[direct])
            np.minimum.at(self.direct, b[direct], dist[direct])
        cross = np.flatnonzero(ma != mb)
        links = direct
        if cross.size:
            h = np.where(ma[cross], b[cross], a[cross])
            m = np.where(ma[cross], a[cross], b[cross])
            back = _popcount(self.partner[h] ^ self.partner[m])
            far = np.maximum(dist[cross].astype(np.int64), back.astype(np.int64))
            ok = self.usable[h] & (far <= self.max_distance)
            links = direct.copy()
            links[cross] = ok
            other = ok & (self.owner[m] != h)  # not an image against its own mirror image
            np.minimum.at(self.mirror, h[other], far[other])
            np.minimum.at(self.mirror, m[other], far[other])
        return links

    def block(self, start: int, dist: np.ndarray) -> np.ndarray:
        """:meth:`pairs` of a block of all-pairs distances: rows ``start..start + len(dist)``
        against columns ``start..``; entries already set above ``max_distance`` stay out."""
        size = dist.shape[0]
        rows, cols = slice(start, start + size), slice(start, None)
        mr, mc = self.mirrored[rows, None], self.mirrored[None, cols]
        limit = self.max_distance
        direct = np.where(~mr & ~mc, dist, HASH_BITS + 1)
        self.direct[rows] = np.minimum(self.direct[rows], direct.min(axis=1))
        self.direct[cols] = np.minimum(self.direct[cols], direct.min(axis=0))
        back = _popcount(self.partner[rows, None] ^ self.partner[None, cols])
        usable = np.where(mr, self.usable[None, cols], self.usable[rows, None])
        far = np.where((mr != mc) & usable, np.maximum(dist, back), HASH_BITS + 1)
        close = (direct <= limit) | (far <= limit)
        # An image against its own mirror image: linked (it is one image), never its match.
        own_r = np.where(mr, self.owner[rows, None], -1) == np.arange(start, self.mirrored.size)
        own_c = np.where(mc, self.owner[None, cols], -1) == np.arange(start, start + size)[:, None]
        far = np.where(own_r | own_c, HASH_BITS + 1, far)
        self.mirror[rows] = np.minimum(self.mirror[rows], far.min(axis=1))
        self.mirror[cols] = np.minimum(self.mirror[cols], far.min(axis=0))
        return close


def mirror_distance(
    hashes: np.ndarray, mirrored: np.ndarray, hash_: np.ndarray, mirrored_: np.ndarray
) -> np.ndarray:
    """How far images are from being mirror images of others: the larger of
    ``d(hash, other's mirrored hash)`` and ``d(mirrored hash, other's hash)`` (both
    ways, as :func:`find_near_duplicates_mirrored` links them), uint64 arrays or
    scalars broadcast against each other."""
    return np.maximum(_popcount(hashes ^ mirrored_), _popcount(mirrored ^ hash_))


def _check_distance(max_distance: object) -> int:
    if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer):
        raise InvalidParameterError(f"max_distance must be an int, got {max_distance!r}")
    if not 0 <= max_distance <= HASH_BITS:
        raise InvalidParameterError(
            f"max_distance must be between 0 and {HASH_BITS} bits, got {max_distance}"
        )
    return int(max_distance)


def find_near_duplicates_mirrored(
    hashes: Sequence[int | str] | np.ndarray,
    mirrored_hashes: Sequence[int | str | None] | np.ndarray,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    progress: Callable[[int, int], object] | None = None,
    return_nearest: bool = False,
) -> list[list[int]] | tuple[list[list[int]], np.ndarray, np.ndarray]:
    """:func:`find_near_duplicates`, with left-right mirror images as near duplicates too.

    Images ``i`` and ``j`` are linked when their hashes are within
    ``max_distance`` bits (the direct test of :func:`find_near_duplicates`),
    or when ``i``'s hash is within ``max_distance`` of ``j``'s mirrored hash
    *and* ``j``'s hash within ``max_distance`` of ``i``'s mirrored hash
    (:func:`phash_pair`: ``i`` looks like ``j`` flipped, and ``i`` flipped
    looks like ``j``).  Clusters are the connected components (single
    linkage), exact, as for :func:`find_near_duplicates`.

    Parameters
    ----------
    hashes : sequence of int or str, or 1-D uint64/int64 array
        :func:`phash` values, as for :func:`find_near_duplicates`.
    mirrored_hashes : sequence of int, str or None, or 1-D uint64/int64 array
        The mirrored hash of each image (the second value of
        :func:`phash_pair`), in the same order.  An image whose mirrored hash
        is None (e.g. a catalog record made before boda kept it) takes no part
        in mirrored matching: it is linked by its hash alone.
    max_distance : int
        Largest Hamming distance (0-64) that links two images, directly or
        mirrored.
    progress : callable, optional
        ``progress(done, total)`` while pairs are searched.
    return_nearest : bool
        Also return each image's distance to its nearest match (-1 when none is
        within ``max_distance``), and whether that match is a mirror image.

    Returns
    -------
    groups : list of list of int
        As :func:`find_near_duplicates`: groups of size >= 2, indices
        ascending, ordered by their first index.  With every mirrored hash
        None they equal ``find_near_duplicates(hashes, max_distance)``.
    nearest : ndarray of int64, shape (n,)
        Only if ``return_nearest``: the distance to the nearest other image,
        directly or mirrored (a mirrored match's distance is the larger of
        its two).
    mirrored : ndarray of bool, shape (n,)
        Only if ``return_nearest``: True where the nearest match is a mirror
        image (strictly closer mirrored than any direct match).

    Raises
    ------
    InvalidParameterError
        If ``max_distance`` is outside 0-64, a hash does not fit 64 bits, or
        the two sequences differ in length.

    Notes
    -----
    Requiring both directions to match, not either, leaves about a quarter of
    the extra chance pairs that mirrored matching brings (126 253 pairs of photo
    tiles: 55 more than direct within 18 bits instead of 245) and costs a true
    mirror copy nothing: for ``j`` an edited mirror image of ``i``, both
    distances are the distances of an edit (``docs/duplicates.md``).  Comparing an image's
    mirrored hash with another's mirrored hash would only repeat the direct
    test, so it is not done.  The search runs the multi-index machinery of
    :func:`find_near_duplicates` once over the distinct hashes and mirrored
    hashes together (about twice the values); every candidate pair is
    verified.

    Examples
    --------
    >>> import numpy as np
    >>> from boda.duplicates import phash_pair
    >>> y, x = np.mgrid[0:120, 0:160] / 40.0
    >>> img = (0.5 + 0.5 * np.sin(x + 0.3) * np.cos(1.3 * y)).astype(np.float32)
    >>> other = (0.5 + 0.5 * np.cos(2.1 * x) * np.sin(0.4 * y)).astype(np.float32)
    >>> pairs = [phash_pair(im) for im in (img, other, img[:, ::-1])]
    >>> hashes, mirrored = [h for h, _ in pairs], [m for _, m in pairs]
    >>> find_near_duplicates(hashes)
    []
    >>> find_near_duplicates_mirrored(hashes, mirrored)
    [[0, 2]]
    >>> groups, nearest, flipped = find_near_duplicates_mirrored(
    ...     hashes, mirrored, return_nearest=True)
    >>> nearest.tolist(), flipped.tolist()
    ([0, -1, 0], [True, False, True])
    """
    max_distance = _check_distance(max_distance)
    values = _as_uint64(hashes)
    if isinstance(mirrored_hashes, np.ndarray) and mirrored_hashes.dtype != object:
        present = np.ones(len(mirrored_hashes), dtype=bool)
        flipped = _as_uint64(mirrored_hashes)
    else:
        listed = list(mirrored_hashes)
        present = np.array([v is not None for v in listed], dtype=bool)
        flipped = np.array(
            [_as_hash(v, f"mirrored_hashes[{i}]") for i, v in enumerate(listed) if v is not None],
            dtype=np.uint64,
        )
    n = values.size
    if present.size != n:
        raise InvalidParameterError(
            f"mirrored_hashes has {present.size} values for {n} hashes; give one per image "
            "(None where an image has none)"
        )
    nearest = np.full(n, -1, dtype=np.int64)
    by_mirror = np.zeros(n, dtype=bool)
    if n < 2:
        return ([], nearest, by_mirror) if return_nearest else []
    _, same_hash, counts = np.unique(values, return_inverse=True, return_counts=True)
    same_hash = same_hash.ravel()
    # Hash nodes: distinct (hash, mirrored hash) pairs, so that each node's partner
    # is the mirrored hash of every one of its images (two images of one hash can
    # have different mirrored hashes, and either may be the one that links).
    flipped_all = np.zeros(n, dtype=np.uint64)
    flipped_all[present] = flipped
    keys = np.stack([values, flipped_all, present.astype(np.uint64)], axis=1)
    pairs, node_h = np.unique(keys, axis=0, return_inverse=True)
    node_h = node_h.ravel()
    size = len(pairs)
    # Mirrored-hash nodes: one per hash node with a mirrored hash, so that a node
    # belongs to images of one hash and two images are never linked through equal
    # mirrored hashes alone.
    owners = np.flatnonzero(pairs[:, 2])
    node_m = np.full(size, -1, dtype=np.int64)
    node_m[owners] = size + np.arange(owners.size)
    total = size + owners.size
    nodes = np.concatenate([pairs[:, 0], pairs[owners, 1]])
    is_mirrored = np.zeros(total, dtype=bool)
    is_mirrored[size:] = True
    owner = np.full(total, -1, dtype=np.int64)
    owner[size:] = owners
    partner = np.concatenate([pairs[:, 1], pairs[owners, 0]])
    usable = np.concatenate([pairs[:, 2].astype(bool), np.ones(owners.size, dtype=bool)])
    mirror = _MirrorLinks(is_mirrored, partner, usable, owner, max_distance)
    parent, _ = _link(nodes, max_distance, False, progress, mirror)
    parent = _union(_roots(parent), owners, node_m[owners])  # an image and its mirror image
    labels = parent[node_h]
    shared = np.bincount(labels, minlength=total)[labels] > 1
    members = np.flatnonzero(shared)
    order = members[np.argsort(labels[members], kind="stable")]
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [g.tolist() for g in np.split(order, cuts)] if order.size else []
    groups.sort(key=lambda g: g[0])
    if not return_nearest:
        return groups
    direct = np.where(counts[same_hash] > 1, 0, mirror.direct[node_h])
    flipped_best = mirror.mirror[node_h].copy()
    with_m = np.flatnonzero(present)
    own_m = node_m[node_h[with_m]]
    flipped_best[with_m] = np.minimum(flipped_best[with_m], mirror.mirror[own_m])
    best = np.minimum(direct, flipped_best)
    nearest = np.where(best <= max_distance, best, -1)
    by_mirror = (flipped_best < direct) & (flipped_best <= max_distance)
    return groups, nearest, by_mirror
