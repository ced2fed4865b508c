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
   hashes next to a chunked brute-force all-pairs popcount (same run).

Run from the repository root::

    .venv/bin/python benchmarks/duplicate_threshold.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from boda.duplicates import DEFAULT_MAX_DISTANCE, dhash, find_near_duplicates, hamming, phash
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


if __name__ == "__main__":
    distance_table()
    timing_table()
