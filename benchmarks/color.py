"""Accuracy and speed of boda.color next to scikit-image, colour-science and OpenCV.

Prints Markdown tables:

1. sRGB -> CIELAB agreement (largest |ΔLab| over the 24 Kodak photos, float64)
   with colour-science (derived matrices = boda's convention, and its default
   printed IEC matrices) and scikit-image, plus float64 / float32 round trips;
2. time per 1-megapixel image for sRGB -> Lab and CIEDE2000, ratio against
   scikit-image (the anchor), measured side by side in this run;
3. time per 1-megapixel image of the scan measures;
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
    rows = []
    anchor = _time(lambda: skc.rgb2lab(big))
    rows.append(("sRGB -> Lab", "scikit-image `rgb2lab` (anchor)", anchor))
    rows.append(("sRGB -> Lab", "boda float32", _time(lambda: bc.srgb_to_lab(big))))
    rows.append(("sRGB -> Lab", "boda float64", _time(lambda: bc.srgb_to_lab(big64))))
    cs_lab = _time(lambda: colour.XYZ_to_Lab(colour.sRGB_to_XYZ(big64)), repeat=2)
    rows.append(("sRGB -> Lab", "colour-science", cs_lab))
    rows.append(("sRGB -> Lab", "OpenCV `cvtColor` float32",
                 _time(lambda: cv2.cvtColor(big, cv2.COLOR_RGB2Lab))))  # fmt: skip
    lab1 = bc.srgb_to_lab(big64)
    lab2 = bc.srgb_to_lab(np.clip(big64 + 0.02, 0, 1))
    de_anchor = _time(lambda: skc.deltaE_ciede2000(lab1, lab2), repeat=2)
    rows.append(("CIEDE2000", "scikit-image `deltaE_ciede2000` (anchor)", de_anchor))
    rows.append(("CIEDE2000", "boda float64", _time(lambda: bc.delta_e_ciede2000(lab1, lab2), 2)))
    rows.append(("CIEDE2000", "colour-science",
                 _time(lambda: colour.delta_E(lab1, lab2, "CIE 2000"), repeat=2)))  # fmt: skip
    print(f"### Speed, {big.shape[1]}x{big.shape[0]} image (best of runs, ms)\n")
    print("| operation | implementation | ms | speed vs anchor (>1 = faster) |")
    print("|---|---|---|---|")
    for op, impl, ms in rows:
        ref = anchor if op == "sRGB -> Lab" else de_anchor
        print(f"| {op} | {impl} | {ms:.1f} | {ref / ms:.2f}x |")
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
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    if not KODAK:
        raise SystemExit(f"no Kodak photos in {DATA / 'kodak24'}; set BODA_SHARED_DATA")
    images = [read_image(p) for p in KODAK]
    big = np.ascontiguousarray(
        np.concatenate([np.concatenate(images[0:2], 1), np.concatenate(images[2:4], 1)], 0)
    )
    accuracy(images)
    speed(big)
    measures(big)
    grayscale(images)


if __name__ == "__main__":
    main()
