"""Edge detectors: agreement with scikit-image / OpenCV and speed, on Kodak photos.

Protocol
--------
The 24 Kodak photos (500x500) in gray.  Agreement:

- ``boda.edges.canny`` vs ``skimage.feature.canny`` (same float32 input and
  parameters, sigma 1 and 2, default thresholds): fraction of differing pixels.
- ``boda.edges.canny`` vs ``cv2.Canny(..., L2gradient=True)``: the uint8 photo
  is blurred with ``cv2.GaussianBlur(sigma=1.4)`` first (OpenCV's Canny does
  not smooth), boda runs with ``sigma=0`` and thresholds ``/255``.  Reported:
  fraction of differing pixels and the F-score of the two maps when an edge
  pixel may match one 1 px away (the outer pixel ring is excluded).
- ``boda.edges.hog`` vs ``skimage.feature.hog`` (9 bins, 8x8 cells, 3x3
  blocks, L2-Hys, gray and RGB): max absolute difference.

Speed (median of 5 runs, one thread) on a 1000x1000 upscale (1 MP) of each
photo: boda vs scikit-image Canny and OpenCV Canny (OpenCV timed with its own
GaussianBlur included), boda vs scikit-image HOG, and ``edge_density``; then Canny
on one 12 MP photo (a 4000 x 3000 upscale of the first), median of 3 runs.

Run: ``.venv/bin/python benchmarks/edges.py`` (about a minute on 2 cores).
Data: ``../shared/data/kodak24`` relative to the repository root, or set
``BODA_SHARED_DATA``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage.feature import canny as sk_canny
from skimage.feature import hog as sk_hog

from boda.core.image import to_gray
from boda.edges import canny, edge_density, hog
from boda.io import read_image

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("BODA_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _f1(a: np.ndarray, b: np.ndarray) -> float:
    k = np.ones((3, 3), bool)
    p = (a & ndimage.binary_dilation(b, k)).sum() / max(a.sum(), 1)
    r = (b & ndimage.binary_dilation(a, k)).sum() / max(b.sum(), 1)
    return float(2 * p * r / (p + r))


def _median_ms(fn, *args, repeats: int = 5) -> float:
    fn(*args)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def _opencv_canny(u8: np.ndarray) -> np.ndarray:
    """OpenCV's Canny with the Gaussian it leaves to the caller (thresholds ~0.1/0.2 x 255)."""
    return cv2.Canny(cv2.GaussianBlur(u8, (0, 0), 1.0), 25, 51, L2gradient=True)


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    cv2.setNumThreads(1)
    paths = sorted((DATA / "kodak24").glob("*.png"))
    if not paths:
        raise SystemExit(f"no Kodak photos under {DATA / 'kodak24'}; set BODA_SHARED_DATA")
    sk_diff = {1.0: [], 2.0: []}
    cv_diff, cv_f1, hog_err = [], [], []
    t = {k: [] for k in ("boda", "skimage", "opencv", "hog", "sk_hog", "density")}
    inner = (slice(1, -1), slice(1, -1))
    for path in paths:
        rgb = read_image(path)
        gray = to_gray(rgb)
        for s in sk_diff:
            sk_diff[s].append(float((canny(gray, s) != sk_canny(gray, s)).mean()))
        u8 = cv2.GaussianBlur(np.round(gray * 255).astype(np.uint8), (0, 0), 1.4)
        for low, high in ((20, 50), (40, 100)):
            ref = cv2.Canny(u8, low, high, L2gradient=True) > 0
            ours = canny(u8, 0.0, low / 255, high / 255)
            cv_diff.append(float((ours[inner] != ref[inner]).mean()))
            cv_f1.append(_f1(ours[inner], ref[inner]))
        for img, axis in ((gray, None), (rgb, -1)):
            a = hog(img, 9, (8, 8), (3, 3))
            b = sk_hog(img, 9, (8, 8), (3, 3), "L2-Hys", channel_axis=axis)
            hog_err.append(float(np.abs(a - b).max()))
        big = cv2.resize(gray, (1000, 1000), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        big_u8 = np.round(big * 255).astype(np.uint8)
        t["boda"].append(_median_ms(canny, big, 1.0))
        t["skimage"].append(_median_ms(sk_canny, big, 1.0))
        t["opencv"].append(_median_ms(_opencv_canny, big_u8))
        t["hog"].append(_median_ms(hog, big))
        t["sk_hog"].append(_median_ms(sk_hog, big, 9, (8, 8), (3, 3), "L2-Hys"))
        rgb_big = cv2.resize(rgb, (1000, 1000), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        t["density"].append(_median_ms(edge_density, rgb_big))

    print(f"Agreement on {len(paths)} Kodak photos (500x500, gray)\n")
    print("| comparison | measure | mean | worst |")
    print("|---|---|---|---|")
    for s, v in sk_diff.items():
        print(
            f"| canny vs skimage.feature.canny, sigma {s:g} | differing pixels "
            f"| {np.mean(v):.2e} | {np.max(v):.2e} |"
        )
    print(
        f"| canny vs cv2.Canny (L2) | differing pixels | {np.mean(cv_diff):.4f} "
        f"| {np.max(cv_diff):.4f} |"
    )
    print(
        f"| canny vs cv2.Canny (L2) | F-score, 1 px tolerance | {np.mean(cv_f1):.4f} "
        f"| {np.min(cv_f1):.4f} |"
    )
    print(
        f"| hog vs skimage.feature.hog (gray+RGB) | max abs difference | "
        f"{np.mean(hog_err):.1e} | {np.max(hog_err):.1e} |"
    )
    print("\nSpeed, 1000x1000 gray (RGB for edge_density), median ms over photos, 1 thread\n")
    print("| task | boda ms | reference ms | boda / reference |")
    print("|---|---|---|---|")
    b, s, o = (float(np.median(t[k])) for k in ("boda", "skimage", "opencv"))
    print(f"| Canny sigma 1 vs skimage.feature.canny | {b:.1f} | {s:.1f} | {b / s:.2f} |")
    print(
        f"| Canny sigma 1 vs cv2.GaussianBlur + cv2.Canny (uint8) | {b:.1f} | {o:.1f} "
        f"| {b / o:.1f} |"
    )
    h, sh = float(np.median(t["hog"])), float(np.median(t["sk_hog"]))
    print(
        f"| HOG 9 bins 8x8 cells 3x3 blocks vs skimage.feature.hog | {h:.1f} | {sh:.1f} "
        f"| {h / sh:.2f} |"
    )
    d = float(np.median(t["density"]))
    print(f"| edge_density (1 MP RGB; target < 15 ms) | {d:.1f} | - | - |")
    _canny_12mp(to_gray(read_image(paths[0])))


def _canny_12mp(gray: np.ndarray) -> None:
    """Canny sigma 1 on one 12 MP photo (a 4000 x 3000 upscale), median of 3 runs."""
    big = cv2.resize(gray, (4000, 3000), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    big_u8 = np.round(big * 255).astype(np.uint8)
    b = _median_ms(canny, big, 1.0, repeats=3)
    s = _median_ms(sk_canny, big, 1.0, repeats=3)
    o = _median_ms(_opencv_canny, big_u8, repeats=3)
    print("\nSpeed, one 4000x3000 (12 MP) gray photo, median of 3 runs, 1 thread\n")
    print("| task | boda ms | reference ms | boda / reference |")
    print("|---|---|---|---|")
    print(f"| Canny sigma 1 vs skimage.feature.canny | {b:.0f} | {s:.0f} | {b / s:.2f} |")
    print(
        f"| Canny sigma 1 vs cv2.GaussianBlur + cv2.Canny (uint8) | {b:.0f} | {o:.0f} "
        f"| {b / o:.1f} |"
    )


if __name__ == "__main__":
    main()
