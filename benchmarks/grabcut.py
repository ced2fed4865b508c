"""GrabCut: boda vs OpenCV on the GrabCut ground-truth photos.

Protocol
--------
The 10 photos of ``grabcut/`` (Rother et al.'s data set, ``images/*.png`` and
``masks/*.png``: 0 background, 255 foreground, 128 unknown band).  The
rectangle is the bounding box of the foreground (mask == 255) grown by 10 px
on every side and clipped to the image; both methods run 5 iterations from
that rectangle with their default parameters (no per-image tuning).  Scored
on the known pixels (mask != 128): pixel error (fraction of wrongly labelled
pixels) and IoU of the foreground; time per image (best of ``--repeat`` runs,
one thread for OpenCV and for numpy's BLAS).  boda's time
includes its guided-filter feathering.

OpenCV's k-means draws from its global random generator, which is seeded
(``cv2.setRNGSeed``) before every call so that runs are repeatable.
``--seeds N`` adds a spread table: mean error over the 10 photos for OpenCV
with generator seeds 0..N-1, and for boda's ``init="kmeans"`` with ``seed``
0..N-1 (boda's default initialisation is deterministic, so it has no spread).
``--margin`` changes the 10 px margin, to check that a result does not hang on
one rectangle.

Run: ``.venv/bin/python benchmarks/grabcut.py`` (about a minute on 2 cores).
Data: ``../shared/data/grabcut`` relative to the repository root, or set
``BODA_SHARED_DATA`` to the folder that holds ``grabcut/``.
"""

from __future__ import annotations

import argparse
import os

# One thread for both sides (OpenCV below, BLAS here), before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from boda.segment import grabcut  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("BODA_SHARED_DATA", ROOT.parent / "shared" / "data")) / "grabcut"
MARGIN = 10
ITERATIONS = 5


def rect_of(gt: np.ndarray, margin: int = MARGIN) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(gt == 255)
    h, w = gt.shape
    x0, y0 = max(xs.min() - margin, 0), max(ys.min() - margin, 0)
    x1, y1 = min(xs.max() + 1 + margin, w), min(ys.max() + 1 + margin, h)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def score(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    known = gt != 128
    truth = gt == 255
    err = float((pred[known] != truth[known]).mean())
    inter = (pred & truth & known).sum()
    union = ((pred | truth) & known).sum()
    return err, float(inter / union)


def run_cv2(rgb_u8: np.ndarray, rect: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    cv2.setRNGSeed(seed)
    bgr = cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2BGR)
    mask = np.zeros(bgr.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, mask, rect, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_RECT)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def spread(images: list, seeds: int, margin: int) -> None:
    """Mean error over the photos for each seed: OpenCV's generator and boda's k-means."""
    print("\n| seed | OpenCV error % | boda init='kmeans' error % |\n|---|---:|---:|")
    per = []
    for s in range(seeds):
        e_c, e_k = [], []
        for rgb, gt in images:
            rect = rect_of(gt, margin)
            res = grabcut(rgb, rect, iterations=ITERATIONS, init="kmeans", seed=s)
            e_k.append(score(res.mask, gt)[0])
            e_c.append(score(run_cv2(rgb, rect, s), gt)[0])
        per.append((100 * np.mean(e_c), 100 * np.mean(e_k)))
        print(f"| {s} | {per[-1][0]:.2f} | {per[-1][1]:.2f} |", flush=True)
    p = np.array(per)
    print(
        f"| mean ± sd (min–max) | {p[:, 0].mean():.2f} ± {p[:, 0].std():.2f} "
        f"({p[:, 0].min():.2f}–{p[:, 0].max():.2f}) | {p[:, 1].mean():.2f} ± {p[:, 1].std():.2f} "
        f"({p[:, 1].min():.2f}–{p[:, 1].max():.2f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="Timing runs per image (best).")
    parser.add_argument("--seeds", type=int, default=0, help="Seeds for the spread table.")
    parser.add_argument("--margin", type=int, default=MARGIN, help="Rectangle margin in px.")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    names = sorted(p.stem for p in (DATA / "images").glob("*.png"))
    if not names:
        raise SystemExit(f"no images in {DATA / 'images'}; set BODA_SHARED_DATA")
    rows, images = [], []
    print(f"margin {args.margin} px, {ITERATIONS} iterations\n")
    print(
        "| image | size | boda error % | OpenCV error % | boda IoU | OpenCV IoU "
        "| boda s | OpenCV s | time ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        rgb = np.asarray(Image.open(DATA / "images" / f"{name}.png").convert("RGB"))
        gt = np.asarray(Image.open(DATA / "masks" / f"{name}.png").convert("L"))
        images.append((rgb, gt))
        rect = rect_of(gt, args.margin)
        # Interleaved, so that load from other processes hits both alike.
        t_boda, t_cv = np.inf, np.inf
        for _ in range(max(args.repeat, 1)):
            t0 = time.perf_counter()
            res = grabcut(rgb, rect, iterations=ITERATIONS)
            t1 = time.perf_counter()
            ref = run_cv2(rgb, rect)
            t2 = time.perf_counter()
            t_boda, t_cv = min(t_boda, t1 - t0), min(t_cv, t2 - t1)
        e_b, iou_b = score(res.mask, gt)
        e_c, iou_c = score(ref, gt)
        rows.append((e_b, e_c, iou_b, iou_c, t_boda, t_cv))
        print(
            f"| {name} | {rgb.shape[1]}x{rgb.shape[0]} | {100 * e_b:.2f} | {100 * e_c:.2f} "
            f"| {iou_b:.3f} | {iou_c:.3f} | {t_boda:.2f} | {t_cv:.2f} "
            f"| {t_boda / t_cv:.2f} |",
            flush=True,
        )
    m = np.mean(rows, axis=0)
    print(
        f"| **mean** | | **{100 * m[0]:.2f}** | **{100 * m[1]:.2f}** | **{m[2]:.3f}** "
        f"| **{m[3]:.3f}** | **{m[4]:.2f}** | **{m[5]:.2f}** | **{m[4] / m[5]:.2f}** |"
    )
    print(
        f"\nerror ratio boda/OpenCV: {m[0] / m[1]:.2f}; "
        f"total time ratio boda/OpenCV: {m[4] / m[5]:.2f}"
    )
    if args.seeds > 0:
        spread(images, args.seeds, args.margin)


if __name__ == "__main__":
    main()
