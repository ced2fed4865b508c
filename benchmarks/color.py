"""Accuracy and speed of boda.color next to scikit-image, colour-science and OpenCV.

Prints Markdown tables:

1. sRGB -> CIELAB agreement (largest |ΔLab| over the 24 Kodak photos, float64)
   with colour-science (derived matrices = boda's convention, and its default
   printed IEC matrices) and scikit-image, plus float64 / float32 round trips;
2. time for sRGB -> Lab and CIEDE2000 on a 12-megapixel photo (4000 x 3000, Kodak
   photos tiled; ``--megapixels`` for another size), ratio against scikit-image
   (the anchor) and OpenCV, measured side by side in this run, with each
   conversion's largest ΔE00 from the float64 conversion (colour-science's, to
   1e-13);
3. time of the scan measures on the 2 x 2 Kodak photos (1000 x 1000);
4. the grayscale check on the 24 photos as colour, as gray RGB JPEGs (plain and
   with +-1 level of chroma noise) and with a light sepia tint.

Run from the repository root::

    .venv/bin/python benchmarks/color.py

Reads ``../shared/data/kodak24`` (override the folder with ``BODA_SHARED_DATA``).
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

import boda.color as bc
from boda.io import read_image

DATA = Path(os.environ.get("BODA_SHARED_DATA", Path(__file__).parent / "../../shared/data"))
KODAK = sorted((DATA / "kodak24").glob("*.png"))


def _time(fn, repeat: int = 5) -> float:
    fn()
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000.0


def accuracy(images: list[np.ndarray]) -> None:
    import colour
    import skimage.color as skc

    d65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
    derived = colour.RGB_COLOURSPACES["sRGB"].copy()
    derived.use_derived_transformation_matrices(True)
    worst = dict.fromkeys(["derived", "default", "skimage", "cs_vs_sk", "rt64", "rt32", "f32"], 0.0)
    for img in images:
        rgb = img.astype(np.float64)
        ours = bc.srgb_to_lab(rgb)
        ref_der = colour.XYZ_to_Lab(
            colour.RGB_to_XYZ(rgb, derived, d65, None, apply_cctf_decoding=True), d65
        )
        ref_def = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb), d65)
        sk = skc.rgb2lab(rgb)
        worst["derived"] = max(worst["derived"], np.abs(ours - ref_der).max())
        worst["default"] = max(worst["default"], np.abs(ours - ref_def).max())
        worst["skimage"] = max(worst["skimage"], np.abs(ours - sk).max())
        worst["cs_vs_sk"] = max(worst["cs_vs_sk"], np.abs(ref_def - sk).max())
        worst["rt64"] = max(worst["rt64"], np.abs(bc.lab_to_srgb(ours) - rgb).max())
        lab32 = bc.srgb_to_lab(img)
        worst["rt32"] = max(worst["rt32"], np.abs(bc.lab_to_srgb(lab32) - img).max())
        worst["f32"] = max(worst["f32"], np.abs(lab32 - ours).max())
    print("### sRGB -> CIELAB (D65) agreement, 24 Kodak photos\n")
    print("| comparison | largest difference |")
    print("|---|---|")
    print(f"| boda vs colour-science, derived sRGB matrices | {worst['derived']:.1e} (Lab) |")
    print(f"| boda vs colour-science default (IEC printed matrices) | {worst['default']:.4f} |")
    print(f"| boda vs scikit-image `rgb2lab` | {worst['skimage']:.4f} |")
    print(f"| colour-science default vs scikit-image | {worst['cs_vs_sk']:.4f} |")
    print(f"| boda float32 vs boda float64 | {worst['f32']:.1e} |")
    print(f"| round trip sRGB -> Lab -> sRGB, float64 | {worst['rt64']:.1e} (sRGB) |")
    print(f"| round trip sRGB -> Lab -> sRGB, float32 | {worst['rt32']:.1e} (sRGB) |\n")


def speed(big: np.ndarray) -> None:
    import colour
    import cv2
    import skimage.color as skc

    big64 = big.astype(np.float64)
    exact = bc.srgb_to_lab(big64)  # = colour-science with derived matrices, to 1e-13

    def error(lab: np.ndarray) -> float:
        return float(bc.delta_e_ciede2000(exact, lab.astype(np.float64)).max())

    rows = []
    anchor = _time(lambda: skc.rgb2lab(big), repeat=3)
    opencv = _time(lambda: cv2.cvtColor(big, cv2.COLOR_RGB2Lab))
    rows.append(("sRGB -> Lab", "scikit-image `rgb2lab` float32 (anchor)", anchor,
                 error(skc.rgb2lab(big))))
    rows.append(("sRGB -> Lab", "boda float32", _time(lambda: bc.srgb_to_lab(big)),
                 error(bc.srgb_to_lab(big))))
    rows.append(("sRGB -> Lab", "boda float64", _time(lambda: bc.srgb_to_lab(big64), 3), 0.0))
    cs_lab = _time(lambda: colour.XYZ_to_Lab(colour.sRGB_to_XYZ(big64)), repeat=1)
    rows.append(("sRGB -> Lab", "colour-science (printed IEC matrices)", cs_lab,
                 error(colour.XYZ_to_Lab(colour.sRGB_to_XYZ(big64)))))
    rows.append(("sRGB -> Lab", "OpenCV `cvtColor` float32", opencv,
                 error(cv2.cvtColor(big, cv2.COLOR_RGB2Lab))))
    lab1 = exact
    lab2 = bc.srgb_to_lab(np.clip(big64 + 0.02, 0, 1))
    de_anchor = _time(lambda: skc.deltaE_ciede2000(lab1, lab2), repeat=1)
    rows.append(("CIEDE2000", "scikit-image `deltaE_ciede2000` (anchor)", de_anchor, None))
    rows.append(("CIEDE2000", "boda float64", _time(lambda: bc.delta_e_ciede2000(lab1, lab2), 1),
                 None))
    rows.append(("CIEDE2000", "colour-science",
                 _time(lambda: colour.delta_E(lab1, lab2, "CIE 2000"), repeat=1), None))
    mp = big.shape[0] * big.shape[1] / 1e6
    print(f"### Speed, {big.shape[1]}x{big.shape[0]} image ({mp:.1f} MP; best of runs, ms)\n")
    print("| operation | implementation | ms | speed vs scikit-image | time ÷ OpenCV's "
          "| largest ΔE00 from float64 |")
    print("|---|---|---|---|---|---|")
    for op, impl, ms, err in rows:
        ref = anchor if op == "sRGB -> Lab" else de_anchor
        vs_cv = f"{ms / opencv:.2f}" if op == "sRGB -> Lab" else "–"
        shown = "–" if err is None else f"{err:.1e}"
        print(f"| {op} | {impl} | {ms:.1f} | {ref / ms:.2f}x | {vs_cv} | {shown} |")
    print()


def measures(big: np.ndarray) -> None:
    print(f"### Scan measures, {big.shape[1]}x{big.shape[0]} float32 image\n")
    print("| measure | ms |")
    print("|---|---|")
    for name, fn in [
        ("colorfulness", lambda: bc.colorfulness(big)),
        ("lightness_stats", lambda: bc.lightness_stats(big)),
        ("dominant_colors (k=5)", lambda: bc.dominant_colors(big, k=5)),
        ("is_grayscale", lambda: bc.is_grayscale(big)),
        ("color_summary (all four)", lambda: bc.color_summary(big, k=5)),
    ]:
        print(f"| `{name}` | {_time(fn):.1f} |")
    print()


def _jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _photo_of(images: list[np.ndarray], megapixels: float) -> np.ndarray:
    """A 4:3 float32 photo of about ``megapixels``, tiled from the Kodak photos."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    same = [im for im in images if im.shape == images[0].shape]  # landscape ones
    h, w = same[0].shape[:2]
    rows, cols = -(-height // h), -(-width // w)
    tiles = [same[(r * cols + c) % len(same)] for r in range(rows) for c in range(cols)]
    grid = np.concatenate(
        [np.concatenate(tiles[r * cols : (r + 1) * cols], 1) for r in range(rows)], 0
    )
    return np.ascontiguousarray(grid[:height, :width], dtype=np.float32)


def grayscale(images: list[np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    tone = np.array([1.0, 0.894, 0.695])
    cases: dict[str, list[tuple[bool, float]]] = {}
    for img in images:
        gray8 = (img.mean(axis=2) * 255 + 0.5).astype(np.uint8)
        rgb8 = np.repeat(gray8[..., None], 3, axis=2)
        noisy = np.clip(rgb8 + rng.integers(-1, 2, size=rgb8.shape), 0, 255).astype(np.uint8)
        g = gray8[..., None] / 255.0
        for name, arr, want in [
            ("colour photo", img, False),
            ("gray, RGB JPEG q75", _jpeg(rgb8, 75), True),
            ("gray + ±1 level noise per channel, PNG", noisy, True),
            ("gray + ±1 level noise per channel, JPEG q90", _jpeg(noisy, 90), True),
            ("sepia 10 % (about 1 JND, counted gray)", g * (0.9 + 0.1 * tone), True),
            ("sepia 20 % towards tone (1, .894, .695)", g * (0.8 + 0.2 * tone), False),
        ]:
            gray, score = bc.is_grayscale(arr)
            cases.setdefault(f"{name}|{want}", []).append((gray == want, score))
    print(f"### Grayscale check (threshold C*ab {bc.GRAYSCALE_CHROMA_THRESHOLD}), "
          f"{len(images)} Kodak photos\n")  # fmt: skip
    print("| input | expected gray | correct | score min–max |")
    print("|---|---|---|---|")
    for key, res in cases.items():
        name, want = key.split("|")
        ok = sum(r for r, _ in res)
        scores = [s for _, s in res]
        print(f"| {name} | {want} | {ok}/{len(res)} | {min(scores):.2f}–{max(scores):.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megapixels", type=float, default=12.0,
                        help="size of the timed photo (4:3), default 12")
    args = parser.parse_args()
    if not KODAK:
        raise SystemExit(f"no Kodak photos in {DATA / 'kodak24'}; set BODA_SHARED_DATA")
    images = [read_image(p) for p in KODAK]
    big = np.ascontiguousarray(
        np.concatenate([np.concatenate(images[0:2], 1), np.concatenate(images[2:4], 1)], 0)
    )
    accuracy(images)
    speed(_photo_of(images, args.megapixels))
    measures(big)
    grayscale(images)


if __name__ == "__main__":
    main()
