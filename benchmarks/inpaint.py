"""Classical inpainting on Kodak photos with random irregular holes (+ refocus timing).

Protocol
--------
Each of the 24 Kodak photos is read at ``--max-side`` pixels (default 256,
so boda's pure-Python Telea stays quick) and given a seeded random
irregular mask (strokes, ellipses, lines; ``random_irregular_mask``, seed =
photo index) at hole ratios 5 % and 20 %.  Every method fills the same holes;
reported: PSNR over the hole pixels only (dB, 8-bit scale, averaged over the
photos; PSNR favours smooth fills over plausible texture, so it understates
the exemplar method on large holes), mean seconds per photo, and both
relative to the anchor measured in
the same run: OpenCV's usual call ``cv2.inpaint(img_u8, mask_u8, 5,
cv2.INPAINT_TELEA)``.  scikit-image's ``inpaint_biharmonic`` is timed as the
reference for boda's biharmonic solver.

A second table times ``refocus`` (lens and threshold methods) on the
500x500 photos with a synthetic depth (a ramp plus a near square), against
one OpenCV disk blur of the same aperture (``cv2.filter2D``) as the unit.

Run: ``.venv/bin/python benchmarks/inpaint.py`` (about five minutes on 2
cores; ``--limit N`` uses the first N photos).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from boda.edit import disk_kernel, inpaint, random_irregular_mask, refocus
from boda.io import read_image

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BODA_SHARED_DATA", ROOT.parent / "shared" / "data"))
RATIOS = (0.05, 0.20)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def _to8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def _methods():
    from skimage.restoration import inpaint_biharmonic as sk_biharmonic

    return {
        "anchor: cv2.inpaint TELEA (uint8)": lambda img8, m: cv2.inpaint(
            img8, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA
        ),
        "boda telea": lambda img8, m: _to8(inpaint(img8, m, "telea", radius=5)),
        "boda telea, gradient=True (eq. 3 first-order term)": lambda img8, m: _to8(
            inpaint(img8, m, "telea", radius=5, gradient=True)
        ),
        "boda telea-opencv": lambda img8, m: _to8(inpaint(img8, m, "telea-opencv", radius=5)),
        "boda ns (OpenCV)": lambda img8, m: _to8(inpaint(img8, m, "ns", radius=5)),
        "boda biharmonic": lambda img8, m: _to8(inpaint(img8, m, "biharmonic")),
        "boda exemplar (Criminisi, 9x9, search radius 48)": lambda img8, m: _to8(
            inpaint(img8, m, "exemplar")
        ),
        "boda exemplar, global search (the paper's)": lambda img8, m: _to8(
            inpaint(img8, m, "exemplar", search_radius=None)
        ),
        "skimage inpaint_biharmonic": lambda img8, m: _to8(
            sk_biharmonic(img8 / 255.0, m, channel_axis=-1)
        ),
    }


def bench_inpaint(paths: list[Path], max_side: int) -> None:
    methods = _methods()
    print(f"\n### Inpainting, {len(paths)} Kodak photos at max side {max_side}\n")
    print("| method | hole ratio | PSNR in hole (dB) | Δ PSNR vs anchor | s / photo | time ratio |")
    print("|---|---|---|---|---|---|")
    for ratio in RATIOS:
        scores = {name: [] for name in methods}
        times = {name: 0.0 for name in methods}
        for i, path in enumerate(paths):
            img8 = _to8(read_image(path, max_side=max_side))
            mask = random_irregular_mask(img8.shape[:2], ratio, seed=i)
            for name, fn in methods.items():
                start = time.perf_counter()
                out = fn(img8, mask)
                times[name] += time.perf_counter() - start
                scores[name].append(_psnr(out[mask], img8[mask]))
        anchor = next(iter(methods))
        a_psnr, a_time = np.mean(scores[anchor]), times[anchor]
        for name in methods:
            psnr = np.mean(scores[name])
            print(
                f"| {name} | {ratio:.0%} | {psnr:.2f} | {psnr - a_psnr:+.2f} | "
                f"{times[name] / len(paths):.3f} | {times[name] / a_time:.1f}x |"
            )


def bench_refocus(paths: list[Path], aperture: float = 8.0) -> None:
    print(f"\n### Refocus timing, {len(paths)} photos at 500x500, aperture {aperture:g} px\n")
    print("| method | s / photo | time ratio vs one cv2 disk blur |")
    print("|---|---|---|")
    kernel = disk_kernel(aperture)
    runs = {
        "anchor: cv2.filter2D disk blur": lambda img, d: cv2.filter2D(img, -1, kernel),
        "refocus lens (disk)": lambda img, d: refocus(img, d, focus_depth=0.1, aperture=aperture),
        "refocus lens (hexagon)": lambda img, d: refocus(
            img, d, focus_depth=0.1, aperture=aperture, kernel="hexagon"
        ),
        "refocus threshold": lambda img, d: refocus(
            img, d, focus_depth=0.1, aperture=aperture, method="threshold"
        ),
    }
    times = {name: 0.0 for name in runs}
    for path in paths:
        img = read_image(path)
        h, w = img.shape[:2]
        depth = np.tile(np.linspace(0.3, 1.0, h, dtype=np.float32)[:, None], (1, w))
        depth[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 0.1
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(img, depth)
            times[name] += time.perf_counter() - start
    anchor = times[next(iter(runs))]
    for name, total in times.items():
        print(f"| {name} | {total / len(paths):.3f} | {total / anchor:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--max-side", type=int, default=256)
    args = parser.parse_args()
    paths = sorted((DATA / "kodak24").glob("*.png"))[: args.limit]
    if not paths:
        raise SystemExit(f"no Kodak photos under {DATA / 'kodak24'}; set BODA_SHARED_DATA")
    bench_inpaint(paths, args.max_side)
    bench_refocus(paths)


if __name__ == "__main__":
    main()
