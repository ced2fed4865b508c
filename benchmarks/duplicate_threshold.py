"""Choose the near-duplicate Hamming radius by measurement, and time the clustering.

For each of the 24 Kodak photos (``../shared/data/kodak24``, override with
``BODA_SHARED_DATA``) this makes the edits a duplicate finder must see through
(resize 0.5x, JPEG q=70, brightness +-8 %, 1 % and 2 % crops, Gaussian blur
sigma=1 and 2, and resize + JPEG together), hashes every version with
:func:`boda.duplicates.phash` and :func:`boda.duplicates.dhash`, and prints

1. the Hamming distance from each original to its edits (max and mean per
   edit) next to the distances between *distinct* photos (min and 1st
   percentile) -- the default radius must lie between the two;
2. the same distances with the ``imagehash`` package (the anchor), when it is
   installed, to show that boda's phash reproduces it;
3. the time :func:`boda.duplicates.find_near_duplicates` takes on random
   hashes next to a chunked brute-force all-pairs popcount (same run);
4. mirror images (``boda scan --mirrored``): that :func:`boda.duplicates.phash_pair`'s
   mirrored hash equals the pHash of the flipped picture, how far edited mirror
   copies are from their original, how many more pairs of *distinct* photos
   (and of 125 px tiles of them: 126 253 pairs) come within reach when mirror
   images count (the false pairs), the exact chance of a false pair for
   independent hashes, and the time of
   :func:`boda.duplicates.find_near_duplicates_mirrored`.

Run from the repository root (``mirrored``: section 4 alone, about 30 s)::

    .venv/bin/python benchmarks/duplicate_threshold.py
    .venv/bin/python benchmarks/duplicate_threshold.py mirrored
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from boda.duplicates import (
    DEFAULT_MAX_DISTANCE,
    dhash,
    find_near_duplicates,
    find_near_duplicates_mirrored,
    hamming,
    phash,
    phash_pair,
)
from boda.io import read_image, write_image

DATA = Path(os.environ.get("BODA_SHARED_DATA", Path(__file__).parent / "../../shared/data"))
KODAK = DATA / "kodak24"


def _resize(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    pil = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    size = (round(w * factor), round(h * factor))
    return np.asarray(pil.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255


def _jpeg(img: np.ndarray, quality: int, tmp: Path) -> np.ndarray:
    return read_image(write_image(tmp / "x.jpg", img, quality=quality))


def _crop(img: np.ndarray, fraction: float) -> np.ndarray:
    h, w = img.shape[:2]
    dy, dx = round(h * fraction), round(w * fraction)
    return img[dy : h - dy, dx : w - dx]


def variants(img: np.ndarray, tmp: Path) -> dict[str, np.ndarray]:
    return {
        "resize 0.5x": _resize(img, 0.5),
        "JPEG q=70": _jpeg(img, 70, tmp),
        "brightness +8%": np.clip(img * 1.08, 0, 1),
        "brightness -8%": img * 0.92,
        "crop 1% per side": _crop(img, 0.01),
        "crop 2% per side": _crop(img, 0.02),
        "crop 2% off the right edge": img[:, : round(img.shape[1] * 0.98)],
        "Gaussian blur sigma=1": ndimage.gaussian_filter(img, (1, 1, 0)),
        "Gaussian blur sigma=2": ndimage.gaussian_filter(img, (2, 2, 0)),
        "resize 0.6x + JPEG q=80": _jpeg(_resize(img, 0.6), 80, tmp),
    }


def _imagehash_phash(img: np.ndarray) -> int | None:
    try:
        import imagehash
    except ImportError:
        return None
    pil = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return int(str(imagehash.phash(pil)), 16)


def distance_table() -> None:
    paths = sorted(KODAK.glob("*.png"))
    if not paths:
        sys.exit(f"no Kodak images in {KODAK}; set BODA_SHARED_DATA")
    hashers = {"boda phash": phash, "boda dhash": dhash, "imagehash phash": _imagehash_phash}
    originals = {name: [] for name in hashers}
    edits: dict[str, dict[str, list[int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            img = read_image(path)
            base = {name: f(img) for name, f in hashers.items()}
            for name in hashers:
                originals[name].append(base[name])
            for edit, version in variants(img, Path(tmp)).items():
                row = edits.setdefault(edit, {name: [] for name in hashers})
                for name, f in hashers.items():
                    h = f(version)
                    if h is not None:
                        row[name].append(hamming(base[name], h))
    names = [n for n in hashers if originals[n][0] is not None]
    print(f"## Hamming distances on the {len(paths)} Kodak photos (64-bit hashes)\n")
    print("| pairs | " + " | ".join(f"{n} max | {n} mean" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    true_max = {n: 0 for n in names}
    for edit, row in edits.items():
        cells = []
        for n in names:
            true_max[n] = max(true_max[n], max(row[n]))
            cells += [str(max(row[n])), f"{np.mean(row[n]):.1f}"]
        print(f"| original vs {edit} | " + " | ".join(cells) + " |")
    print("| **all edits** | " + " | ".join(f"**{true_max[n]}** | " for n in names) + "|")
    print()
    print("| distinct photos (276 pairs) | " + " | ".join(f"{n}" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    distinct = {
        n: np.array([hamming(a, b) for a, b in combinations(originals[n], 2)]) for n in names
    }
    for label, stat in [
        ("min", np.min),
        ("1st percentile", lambda d: np.percentile(d, 1)),
        ("median", np.median),
    ]:
        print(f"| {label} | " + " | ".join(f"{stat(distinct[n]):.0f}" for n in names) + " |")
    fp = {n: int((distinct[n] <= DEFAULT_MAX_DISTANCE).sum()) for n in names}
    print(
        f"| pairs <= DEFAULT_MAX_DISTANCE ({DEFAULT_MAX_DISTANCE}) | "
        + " | ".join(str(fp[n]) for n in names)
        + " |"
    )
    print()


def _brute_force(values: np.ndarray, d: int) -> int:
    found = 0
    for start in range(0, values.size, 256):
        dist = np.bitwise_count(values[start : start + 256, None] ^ values[None, :])
        i, j = np.nonzero(dist <= d)
        found += int(((i + start) < j).sum())
    return found


def timing_table() -> None:
    rng = np.random.default_rng(0)
    print("## Clustering time, random 64-bit hashes (1 % planted near duplicates)\n")
    print("| n | max_distance | find_near_duplicates s | brute force s | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for n in (20_000, 100_000, 1_000_000):
        values = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        k = n // 100
        flips = rng.integers(0, 64, (k, 4)).astype(np.uint64)
        values[k : 2 * k] = values[:k] ^ np.bitwise_or.reduce(np.uint64(1) << flips, axis=1)
        hashes = [int(v) for v in values]
        for d in (DEFAULT_MAX_DISTANCE,):
            t0 = time.perf_counter()
            find_near_duplicates(hashes, d)
            fast = time.perf_counter() - t0
            if n > 100_000:  # all pairs of a million hashes: over an hour
                print(f"| {n} | {d} | {fast:.2f} | - | - |")
                continue
            t0 = time.perf_counter()
            _brute_force(values, d)
            slow = time.perf_counter() - t0
            print(f"| {n} | {d} | {fast:.2f} | {slow:.2f} | {slow / fast:.1f}x |")
    print()


def _mirrored_distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    """What links two images as mirror images: both ways within the tolerance."""
    return max(hamming(a[0], b[1]), hamming(a[1], b[0]))


def _pair_distances(pairs: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """All-pairs distances: direct, mirrored (both ways, boda's rule) and either way."""
    h = np.array([p[0] for p in pairs], dtype=np.uint64)
    m = np.array([p[1] for p in pairs], dtype=np.uint64)
    i, j = np.triu_indices(len(pairs), 1)
    direct = np.bitwise_count(h[i] ^ h[j]).astype(int)
    one, other = np.bitwise_count(h[i] ^ m[j]).astype(int), np.bitwise_count(m[i] ^ h[j])
    return {
        "direct (no --mirrored)": direct,
        "--mirrored (both ways, boda)": np.minimum(direct, np.maximum(one, other)),
        "either way (not used)": np.minimum(direct, np.minimum(one, other)),
    }


def _balanced_pair_probability(max_distance: int) -> tuple[float, float]:
    """Exact chance that two independent pHash-like hashes (top bit set, 31 of the
    other 63 bits set, uniformly) are within ``max_distance`` bits, and that they are
    directly or as mirror images, the mirrored hash being the hash with the bits of
    the odd horizontal frequencies (32 of the 63) inverted: the sign flip when every
    coefficient's median were 0."""
    from math import comb

    direct = either = 0
    for k in range(32):  # a's ones among the 32 odd-frequency bits
        for j in range(32):  # b's
            weight = comb(32, k) * comb(31, 31 - k) * comb(32, j) * comb(31, 31 - j)
            for t in range(max(0, k + j - 32), min(k, j) + 1):  # shared ones there
                wt = comb(k, t) * comb(32 - k, j - t) / comb(32, j)
                for s in range(max(0, 31 - k - j), min(31 - k, 31 - j) + 1):  # elsewhere
                    ws = comb(31 - k, s) * comb(k, 31 - j - s) / comb(31, 31 - j)
                    d = 62 - 2 * t - 2 * s
                    flipped = 94 - 2 * k - 2 * j + 2 * t - 2 * s
                    w = weight * wt * ws
                    direct += w * (d <= max_distance)
                    either += w * (d <= max_distance or flipped <= max_distance)
    total = comb(63, 31) ** 2
    return direct / total, either / total


def mirrored_table() -> None:
    paths = sorted(KODAK.glob("*.png"))
    if not paths:
        sys.exit(f"no Kodak images in {KODAK}; set BODA_SHARED_DATA")
    images = [read_image(p) for p in paths]
    print("## Mirror images (boda scan --mirrored)\n")
    worst = 0
    for img in images:
        for h, w in ((None, None), (331, 497), (123, 9), (8, 13)):
            part = img[:h, :w]
            worst = max(worst, hamming(phash(np.ascontiguousarray(part[:, ::-1])),
                                       phash_pair(part)[1]))
    print(f"phash(img[:, ::-1]) vs phash_pair(img)[1], {len(images)} Kodak photos whole and "
          f"cropped to 497x331, 9x123, 13x8: largest Hamming distance **{worst}**\n")
    print("| pairs | max | mean |")
    print("|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        originals = [phash_pair(img) for img in images]
        rows: dict[str, list[int]] = {"mirror image": []}
        for img, base in zip(images, originals, strict=True):
            flipped = np.ascontiguousarray(img[:, ::-1])
            rows["mirror image"].append(_mirrored_distance(base, phash_pair(flipped)))
            for edit, version in variants(flipped, Path(tmp)).items():
                rows.setdefault(f"mirror image + {edit}", []).append(
                    _mirrored_distance(base, phash_pair(version))
                )
    for name, values in rows.items():
        print(f"| original vs {name} | {max(values)} | {np.mean(values):.1f} |")
    print("\n(mirrored distance: the larger of hash vs the other's mirrored hash, both ways)\n")

    tiles = []
    for path in [*paths, *sorted((DATA / "grabcut" / "images").glob("*.png"))]:
        img = read_image(path)
        for y in range(0, img.shape[0] - 124, 125):
            for x in range(0, img.shape[1] - 124, 125):
                tiles.append(phash_pair(img[y : y + 125, x : x + 125]))
    for title, distances in (
        (f"distinct photos ({len(paths) * (len(paths) - 1) // 2} pairs)",
         _pair_distances(originals)),
        (f"125 px tiles of the Kodak and GrabCut photos ({len(tiles)} tiles, "
         f"{len(tiles) * (len(tiles) - 1) // 2} pairs)", _pair_distances(tiles)),
    ):
        names = list(distances)
        print(f"| {title} | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for label, stat in (("min", np.min), ("1st percentile", lambda d: np.percentile(d, 1)),
                            ("median", np.median)):
            print(f"| {label} | " + " | ".join(f"{stat(distances[n]):.0f}" for n in names) + " |")
        for radius in (DEFAULT_MAX_DISTANCE, 12, 14, 16, 18, 20):
            counts = [int((distances[n] <= radius).sum()) for n in names]
            cells = [str(counts[0])] + [
                f"{c} ({c / counts[0]:.2f}x)" if counts[0] else str(c) for c in counts[1:]
            ]
            print(f"| pairs <= {radius} | " + " | ".join(cells) + " |")
        print()

    print("| max_distance | P(pair within), direct | with mirror images | ratio | "
          "false pairs at 10 000 / 100 000 / 1 000 000, direct | with mirror images |")
    print("|---:|---:|---:|---:|---:|---:|")
    for radius in (6, 8, DEFAULT_MAX_DISTANCE, 12):
        direct, either = _balanced_pair_probability(radius)
        counts = [[p * n * (n - 1) / 2 for n in (10_000, 100_000, 1_000_000)]
                  for p in (direct, either)]
        text = [" / ".join(f"{c:.3g}" for c in row) for row in counts]
        print(f"| {radius} | {direct:.2g} | {either:.2g} | {either / direct:.2f}x | "
              f"{text[0]} | {text[1]} |")
    print()

    rng = np.random.default_rng(0)
    print("| n | find_near_duplicates s | find_near_duplicates_mirrored s | ratio |")
    print("|---:|---:|---:|---:|")
    odd = np.uint64(int("01" * 32, 2))  # the odd horizontal frequencies
    for n in (20_000, 100_000):
        keys = rng.random((n, 63)).argsort(axis=1)[:, :31].astype(np.uint64)  # 31 of 63 bits
        values = np.bitwise_or.reduce(np.uint64(1) << keys, axis=1) | np.uint64(1 << 63)
        flipped = values ^ odd
        k = n // 100  # planted mirror copies, one bit off
        noise = np.uint64(1) << rng.integers(0, 63, k).astype(np.uint64)
        values[k : 2 * k], flipped[k : 2 * k] = flipped[:k] ^ noise, values[:k] ^ noise
        t0 = time.perf_counter()
        direct = find_near_duplicates(values, DEFAULT_MAX_DISTANCE, return_nearest=True)[0]
        fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        both = find_near_duplicates_mirrored(
            values, flipped, DEFAULT_MAX_DISTANCE, return_nearest=True
        )[0]
        slow = time.perf_counter() - t0
        print(f"| {n} | {fast:.2f} ({len(direct)} groups) | {slow:.2f} ({len(both)} groups) | "
              f"{slow / fast:.1f}x |")
    print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "part", nargs="?", choices=["mirrored"], help="run section 4 (mirror images) alone"
    )
    if parser.parse_args().part is None:
        distance_table()
        timing_table()
    mirrored_table()
