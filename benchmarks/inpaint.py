"""Classical inpainting on Kodak photos: PSNR, SSIM and L1 by hole-ratio bin.

Protocol
--------
Each of the 24 Kodak photos (``../shared/data/kodak24``, 500x500) is read
with ``read_image(path, max_side=192)`` (Lanczos downscale to 192x192, so boda's
pure-Python Telea and exemplar methods keep the run to a few minutes on 2
cores).  For every hole-ratio bin (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]
each photo gets one seeded irregular mask
(``random_irregular_mask(shape, target, seed=1000 * bin + photo)``, strokes +
ellipses + lines) whose target ratio is drawn uniformly within 0.03 of the bin
centre (``tolerance=0.01``); the mask is counted in the bin its *actual* hole
ratio falls in.  Every method fills the same holes.

Scores, averaged over the masks of a bin, on the whole float image in [0, 1]
(known pixels are returned unchanged, so only the hole contributes to the
error, as in the usual irregular-hole tables, e.g. Liu et al. 2018):
``boda.quality.psnr`` (dB), ``boda.quality.ssim`` (Wang et al. 2004,
Gaussian 11x11), and L1 = mean absolute error in percent of the range.
Times are seconds per photo, with the ratio to the anchor measured in the
same run: OpenCV's usual call ``cv2.inpaint(img_u8, mask_u8, 5,
cv2.INPAINT_TELEA)`` (8-bit in and out).  Two extra rows: boda's Telea with
the paper's first-order term (``gradient=True``) and scikit-image's
``inpaint_biharmonic``, the reference for boda's biharmonic solver.

Run: ``.venv/bin/python benchmarks/inpaint.py`` (about 5 minutes on a quiet 2-core
machine, several times that under load; each photo done is reported on stderr;
``--limit N`` uses the first N photos, ``--max-side`` another size).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from boda.edit import inpaint, random_irregular_mask
from boda.io import read_image
from boda.quality import psnr, ssim

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BODA_SHARED_DATA", ROOT.parent / "shared" / "data"))
BINS = [(0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6)]
ANCHOR = "anchor: cv2.inpaint TELEA (uint8)"


def _methods() -> dict:
    from skimage.restoration import inpaint_biharmonic as sk_biharmonic

    def anchor(img, m):
        img8 = np.round(img * 255).astype(np.uint8)
        return cv2.inpaint(img8, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA) / 255.0

    methods = {ANCHOR: anchor}
    for name in ("telea", "telea-opencv", "ns", "biharmonic", "exemplar"):
        methods[name] = lambda img, m, name=name: inpaint(img, m, method=name)
    methods["telea, gradient=True (eq. 3 first-order term)"] = lambda img, m: inpaint(
        img, m, method="telea", gradient=True)
    methods["reference: skimage inpaint_biharmonic"] = lambda img, m: sk_biharmonic(
        img, m, channel_axis=-1)
    return methods


def _bin_of(ratio: float) -> int | None:
    for b, (lo, hi) in enumerate(BINS):
        if lo < ratio <= hi:
            return b
    return None


def run(paths: list[Path], max_side: int) -> None:
    methods = _methods()
    n_bins = len(BINS)
    scores = {name: [[] for _ in range(n_bins)] for name in methods}  # (psnr, ssim, l1)
    times = dict.fromkeys(methods, 0.0)
    n_masks = [0] * n_bins
    for i, path in enumerate(paths):
        img = read_image(path, max_side=max_side)
        for b, (lo, hi) in enumerate(BINS):
            rng = np.random.default_rng(1000 * b + i)
            target = (lo + hi) / 2 + rng.uniform(-0.03, 0.03)
            mask = random_irregular_mask(img.shape[:2], target, seed=1000 * b + i)
            k = _bin_of(float(mask.mean()))
            if k is None:
                continue
            n_masks[k] += 1
            for name, fn in methods.items():
                start = time.perf_counter()
                out = np.clip(fn(img, mask), 0.0, 1.0).astype(np.float32)
                times[name] += time.perf_counter() - start
                l1 = 100.0 * float(np.mean(np.abs(out - img)))
                scores[name][k].append((psnr(out, img), ssim(out, img), l1))
        # Minutes of work: say where it is (stderr, so the tables stay clean on stdout).
        print(f"photo {i + 1}/{len(paths)} done ({path.name})", file=sys.stderr, flush=True)
    header = " | ".join(f"({lo:g}, {hi:g}]" for lo, hi in BINS)
    sep = "|---" * (n_bins + 1) + "|"
    print(f"\n#### Inpainting, {len(paths)} Kodak photos at {max_side}x{max_side}, "
          f"masks per bin: {', '.join(map(str, n_masks))}\n")
    for title, j, fmt in (("PSNR (dB, higher is better)", 0, "{:.2f}"),
                          ("SSIM (higher is better)", 1, "{:.4f}"),
                          ("L1 (% of range, lower is better)", 2, "{:.2f}")):
        print(f"\n{title}, by hole ratio\n")
        print(f"| method | {header} |")
        print(sep)
        for name in methods:
            cells = [fmt.format(np.mean([s[j] for s in scores[name][k]])) if scores[name][k]
                     else "-" for k in range(n_bins)]
            print(f"| {name} | {' | '.join(cells)} |")
    total = sum(n_masks)
    print("\nTime (all bins)\n")
    print("| method | s / photo (mean over all masks) | time ratio vs anchor |")
    print("|---|---|---|")
    for name in methods:
        print(f"| {name} | {times[name] / total:.3f} | {times[name] / times[ANCHOR]:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--max-side", type=int, default=192)
    args = parser.parse_args()
    paths = sorted((DATA / "kodak24").glob("*.png"))[: args.limit]
    if not paths:
        raise SystemExit(f"no Kodak photos under {DATA / 'kodak24'}; set BODA_SHARED_DATA")
    run(paths, args.max_side)


if __name__ == "__main__":
    main()
