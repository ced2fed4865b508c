"""Near-duplicate clustering at scale: exactness of the multi-index search."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from boda.duplicates import find_near_duplicates, nearest_distances
from boda.duplicates._clusters import _Block, _block_pairs, _compact, _plan


def _balanced(rng, n: int) -> np.ndarray:
    """Hashes like boda's phash: top bit set, 32 of the 64 bits set."""
    order = np.argsort(rng.random((n, 63)), axis=1)[:, :31]
    bits = np.zeros((n, 63), dtype=np.uint64)
    np.put_along_axis(bits, order, 1, axis=1)
    return (bits << np.arange(63, dtype=np.uint64)).sum(axis=1, dtype=np.uint64) | np.uint64(
        1 << 63
    )


def _planted(rng, n: int, spread: int, balanced: bool = False) -> np.ndarray:
    """Random hashes, a quarter of them copies of others with up to ``spread`` bits flipped."""
    values = _balanced(rng, n) if balanced else rng.integers(0, 2**64, n, dtype=np.uint64)
    k = n // 4
    flips = rng.integers(0, 64, (k, max(spread, 1))).astype(np.uint64)
    use = rng.integers(0, spread + 1, k)[:, None] > np.arange(max(spread, 1))
    noise = np.bitwise_or.reduce(np.where(use, np.uint64(1) << flips, np.uint64(0)), axis=1)
    values[n - k :] = values[:k] ^ noise
    values[n - k - 5 : n - k] = values[:5]  # exact repeats
    return values


def _brute(values: np.ndarray, d: int) -> tuple[list[list[int]], np.ndarray]:
    dist = np.bitwise_count(values[:, None] ^ values[None, :]).astype(int)
    np.fill_diagonal(dist, 99)
    i, j = np.nonzero(dist <= d)
    n = values.size
    _, labels = connected_components(coo_matrix((np.ones(i.size), (i, j)), (n, n)), directed=False)
    groups = [np.flatnonzero(labels == k).tolist() for k in np.unique(labels)]
    nearest = dist.min(axis=1)
    return sorted((g for g in groups if len(g) > 1), key=lambda g: g[0]), nearest


@pytest.mark.parametrize("d", [0, 1, 5, 10, 16, 30, 64])
@pytest.mark.parametrize(("n", "balanced"), [(40, False), (700, True), (1500, False)])
def test_equals_brute_force(rng, n, balanced, d):
    values = _planted(rng, n, min(d + 2, 64), balanced)
    expected, nearest = _brute(values, d)
    groups, found = find_near_duplicates(values, d, return_nearest=True)
    assert groups == expected
    assert found.tolist() == np.where(nearest <= d, nearest, -1).tolist()
    # Signed (SQLite) and hex-string (JSON export) forms give the same groups.
    signed = [int(v) for v in values.view(np.int64)]
    assert find_near_duplicates(signed, d) == expected
    assert find_near_duplicates([f"{int(v):016x}" for v in values], d) == expected


@pytest.mark.parametrize("d", [2, 6, 10, 13])
def test_every_block_plan_finds_exactly_the_close_pairs(rng, d):
    """Each generalised-pigeonhole plan (any m), not only the chosen one, is exact."""
    values = np.unique(_planted(rng, 1200, d + 2, balanced=True))
    packed, bits = _compact(values)
    dist = np.bitwise_count(values[:, None] ^ values[None, :])
    i, j = np.nonzero(np.triu(dist <= d, 1))
    expected = set(zip(i.tolist(), j.tolist(), strict=True))
    plans = [_plan(n, bits, d)[0] for n in (10**4, 10**5, 10**6, 10**7)]
    for plan in plans:
        found = set()
        for first, width, t in plan:
            if t < 0:
                continue
            block = _Block(packed, first, width, t)
            for pairs in _block_pairs(packed[block.order], block, d):
                if pairs is not None:
                    a, b = block.order[pairs[0]], block.order[pairs[1]]
                    found.update(
                        zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True)
                    )
        assert found == expected, plan


def test_plan_scales_the_blocks_with_n():
    """Three 21-bit blocks (radii 3, 3, 2) for 1M phashes at distance 10."""
    assert sorted(t for _, _, t in _plan(10**6, 63, 10)[0]) == [2, 3, 3]
    assert [w for _, w, _ in _plan(10**6, 63, 10)[0]] == [21, 21, 21]
    assert len(_plan(10**5, 64, 10)[0]) == 4


def test_look_alike_burst_and_progress(rng):
    """A crowded group (brute-force path) is exact, and progress reaches its total."""
    base = _balanced(rng, 1)[0]
    flips = rng.integers(0, 63, (3000, 3)).astype(np.uint64)
    burst = base ^ np.bitwise_or.reduce(np.uint64(1) << flips, axis=1)
    values = np.concatenate([burst, _balanced(rng, 500)])
    calls = []
    groups = find_near_duplicates(
        values, 10, progress=lambda done, total: calls.append((done, total))
    )
    assert groups == _brute(values, 10)[0]
    assert calls and calls[-1][0] == calls[-1][1]
    assert nearest_distances(burst).tolist() == _brute(burst, 10)[1].tolist()


def test_nearest_distances_beyond_the_default_radius(rng):
    values = rng.integers(0, 2**64, 400, dtype=np.uint64)  # nearest ~ 20 bits away
    values[7] = values[3]
    assert nearest_distances(values).tolist() == _brute(values, 0)[1].tolist()
