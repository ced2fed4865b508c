"""Refocus: colour bleeding at depth edges, 12-megapixel timing, before/after pictures.

1. Bleeding (a synthetic scene with an exact depth map, 512x512)
-----------------------------------------------------------------
The background is a texture with **no red** (R = 0; G and B are smoothed
noise plus stripes, sRGB 0.1-0.8); the foreground is a sharp disk of radius
150 px with a texture with **no blue** (B = 0; R and G textured).  Depth is
exact: 0.2 on the disk, 0.7 elsewhere (a ``[0, 1]`` map, near dark); focus on
the disk.  ``lens`` uses ``aperture=16`` (background CoC radius 16 * 0.5 = 8
px); ``threshold`` uses ``aperture=8`` (its background blur radius), default
``tolerance`` and ``feather``.  Highlights stay below the boost threshold.

Ideal rendering: inside the disk the sharp foreground; outside it the *whole*
background texture (also the part hidden behind the disk, known here) blurred
in linear light with ``disk_kernel(8)``.

Per distance band from the object edge (Euclidean distance of a pixel centre
to the nearest pixel of the other side: band 1 = (0, 1], 2 = (1, 2],
3 = (2, 3], 4-8 = (3, 8] px):

- **fg -> bg bleed**: mean red (8-bit levels) in the band *outside* the disk;
  the ideal is 0 (the foreground's mean red is printed for scale);
- **bg -> fg bleed**: mean blue (8-bit levels) in the band *inside*; ideal 0;
- **error vs ideal**: mean |out - ideal| over all channels (8-bit levels).

2. Timing on 12 MP
------------------
kodim23 upscaled (bicubic) to 4000x3000, depth = a vertical ramp 0.3 -> 1.0
plus a near disk (radius 900 px, depth 0.2), focus on the disk; ``aperture``
8 and 20 (background CoC up to 6.4 and 16 px for ``lens``; blur radius 8 and
20 for ``threshold``).  One warm-up call on a small image, then the median
wall time of ``--repeat`` calls (and the median process CPU time, all threads
together: on a machine shared with other jobs the wall time varies a lot, the
CPU time much less); the anchor is one OpenCV disk blur of the same radius
(``cv2.filter2D``) in the same run.  Target: <= 3 s on 2 cores.

3. Pictures (``--pictures DIR``)
--------------------------------
kodim23 (500x500).  Depth map: 0.2 on the two parrots, 0.8 on the
background; the parrots' mask comes from ``boda.segment.grabcut`` with a
trimap (rows < 95 and two boxes of bright leaves = background, the rest
probably foreground), holes filled.  Focus at the red parrot's eye (378, 163),
``lens`` with ``aperture=16`` (background CoC 9.6 px), ``threshold`` with
``aperture=9.6``; and ``lens`` focused on the background (parrots blurred);
plus a 1.5x close-up of the beak edge: before | lens | threshold.

Run: ``.venv/bin/python benchmarks/refocus.py [--pictures docs/images]``
(about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage, signal

from boda.edit import disk_kernel, linear_to_srgb, refocus, srgb_to_linear
from boda.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BODA_SHARED_DATA", ROOT.parent / "shared" / "data"))
BANDS = (("1", 0, 1), ("2", 1, 2), ("3", 2, 3), ("4-8", 3, 8))


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smoothed noise plus diagonal stripes, scaled to [0.1, 0.8]."""
    noise = ndimage.gaussian_filter(rng.random(shape), sigma)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    stripes = 0.5 + 0.5 * np.sin((xx + 0.6 * yy) * rng.uniform(0.2, 0.5))
    t = 0.6 * (noise - noise.min()) / np.ptp(noise) + 0.4 * stripes
    return (0.1 + 0.7 * t).astype(np.float32)


def synthetic_scene(size: int = 512, radius: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (size, size)
    bg = np.zeros((*shape, 3), np.float32)
    bg[..., 1], bg[..., 2] = _texture(rng, shape, 2.0), _texture(rng, shape, 3.0)
    fg = np.zeros((*shape, 3), np.float32)
    fg[..., 0], fg[..., 1] = _texture(rng, shape, 1.5), _texture(rng, shape, 2.5)
    yy, xx = np.mgrid[:size, :size]
    obj = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2
    image = np.where(obj[..., None], fg, bg)
    depth = np.where(obj, 0.2, 0.7).astype(np.float32)
    return image, depth, obj, fg, bg


def ideal_rendering(fg, bg, obj, radius: float) -> np.ndarray:
    pad = int(np.ceil(radius)) + 1
    lin = np.pad(srgb_to_linear(bg), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    blurred = signal.fftconvolve(lin, disk_kernel(radius)[..., None], mode="same", axes=(0, 1))
    blurred = linear_to_srgb(np.clip(blurred[pad:-pad, pad:-pad], 0, 1))
    return np.where(obj[..., None], fg, blurred)


def bench_bleeding() -> None:
    image, depth, obj, fg, bg = synthetic_scene()
    ideal = ideal_rendering(fg, bg, obj, 8.0)
    renders = {
        "threshold (aperture 8, tolerance 0.05, feather 1)": refocus(
            image, depth, focus_depth=0.2, aperture=8, method="threshold"),
        "lens (aperture 16 -> CoC 8 px)": refocus(image, depth, focus_depth=0.2, aperture=16),
    }
    d_out = ndimage.distance_transform_edt(~obj)
    d_in = ndimage.distance_transform_edt(obj)
    print("\n#### Refocus: colour bleeding at a depth edge (synthetic 512x512, exact depth)\n")
    print(f"Foreground mean red: {255 * fg[obj, 0].mean():.0f}; background mean blue: "
          f"{255 * bg[~obj, 2].mean():.0f} (8-bit levels). Bands: distance to the edge in px.\n")
    names = " | ".join(f"{b} px" for b, _, _ in BANDS)
    print(f"| method | measure | {names} |")
    print("|---" * (len(BANDS) + 2) + "|")
    for name, out in renders.items():
        out8 = 255 * np.clip(out, 0, 1)
        rows = {
            "fg -> bg bleed (red outside)": [out8[(d_out > lo) & (d_out <= hi), 0].mean()
                                             for _, lo, hi in BANDS],
            "bg -> fg bleed (blue inside)": [out8[(d_in > lo) & (d_in <= hi), 2].mean()
                                             for _, lo, hi in BANDS],
            "error vs ideal, outside": [np.abs(out8 - 255 * ideal)[(d_out > lo) & (d_out <= hi)]
                                        .mean() for _, lo, hi in BANDS],
            "error vs ideal, inside": [np.abs(out8 - 255 * ideal)[(d_in > lo) & (d_in <= hi)]
                                       .mean() for _, lo, hi in BANDS],
        }
        for measure, vals in rows.items():
            print(f"| {name} | {measure} | {' | '.join(f'{v:.2f}' for v in vals)} |")


def bench_12mp(repeat: int) -> None:
    img = read_image(DATA / "kodak24" / "kodim23.png")
    h, w = 3000, 4000
    big = np.clip(cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)
    depth = np.tile(np.linspace(0.3, 1.0, h, dtype=np.float32)[:, None], (1, w))
    yy, xx = np.ogrid[:h, :w]
    depth[(yy - h // 2) ** 2 + (xx - w // 2) ** 2 < 900**2] = 0.2
    small = big[:200, :200].copy()
    refocus(small, depth[:200, :200], focus_depth=0.2, aperture=8)  # warm-up
    print(f"\n#### Refocus time, 4000x3000 (12 MP), {os.cpu_count()} CPU cores, "
          f"median of {repeat}\n")
    print("| method | aperture | s | CPU s | time ratio vs one cv2 disk blur | <= 3 s? |")
    print("|---|---|---|---|---|---|")
    for aperture in (8, 20):
        kernel = disk_kernel(aperture)
        runs = {
            "anchor: cv2.filter2D disk blur": lambda k=kernel: cv2.filter2D(big, -1, k),
            "threshold": lambda a=aperture: refocus(big, depth, focus_depth=0.2, aperture=a,
                                         method="threshold"),
            "lens": lambda a=aperture: refocus(big, depth, focus_depth=0.2, aperture=a),
        }
        times, cpu = {}, {}
        for name, fn in runs.items():
            walls, cpus = [], []
            for _ in range(repeat):
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - start_cpu)
            times[name], cpu[name] = statistics.median(walls), statistics.median(cpus)
        anchor = times["anchor: cv2.filter2D disk blur"]
        for name, t in times.items():
            ok = "" if name.startswith("anchor") else ("yes" if t <= 3.0 else "**no**")
            print(f"| {name} | {aperture} | {t:.2f} | {cpu[name]:.2f} | {t / anchor:.1f}x | {ok} |")


def pictures(out_dir: Path) -> None:
    from boda.segment import BGD, PR_FGD, grabcut

    img = read_image(DATA / "kodak24" / "kodim23.png")
    tri = np.full(img.shape[:2], BGD, np.uint8)
    tri[95:, 1:499] = PR_FGD
    tri[95:160, 1:230] = BGD  # bright leaves GrabCut would otherwise take
    tri[160:260, 170:262] = BGD
    parrots = ndimage.binary_fill_holes(grabcut(img, mask=tri).mask)  # eyes, white patches
    depth = np.where(parrots, 0.2, 0.8).astype(np.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = {
        "refocus_before.jpg": img,
        "refocus_depth.jpg": np.repeat(depth[..., None], 3, axis=2),
        "refocus_lens.jpg": refocus(img, depth, focus_at=(378, 163), aperture=16),
        "refocus_threshold.jpg": refocus(img, depth, focus_at=(378, 163), aperture=9.6,
                                         method="threshold"),
        "refocus_lens_far.jpg": refocus(img, depth, focus_depth=0.8, aperture=16),
    }
    # Edge close-up (beak and crown over the background), 1.5x, nearest neighbour:
    # before | lens | threshold.
    crops = [shots[k][110:260, 255:405] for k in
             ("refocus_before.jpg", "refocus_lens.jpg", "refocus_threshold.jpg")]
    gap = np.ones((225, 6, 3), np.float32)
    big = [np.repeat(np.repeat(c, 3, 0), 3, 1)[::2, ::2] for c in crops]
    shots["refocus_edge_crop.jpg"] = np.concatenate([big[0], gap, big[1], gap, big[2]], axis=1)
    for name, pix in shots.items():
        write_image(out_dir / name, pix, quality=85)
        print(f"wrote {out_dir / name} ({(out_dir / name).stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pictures", type=Path, default=None,
                        help="also write the before/after JPEGs into this folder")
    parser.add_argument("--skip-12mp", action="store_true")
    args = parser.parse_args()
    bench_bleeding()
    if not args.skip_12mp:
        bench_12mp(args.repeat)
    if args.pictures is not None:
        pictures(args.pictures)


if __name__ == "__main__":
    main()
