"""Blur detection on Kodak photos with synthetic blur, at three scales.

Protocol
--------
For each of the 24 Kodak photos (500x500) and each scale s in {0.5, 1, 2}:
the sharp photo is first rescaled by s (OpenCV INTER_AREA down, INTER_CUBIC
up), then blurred *in the pixels of that image* by: Gaussian sigma 1, 2, 4;
linear motion of 9 px (angle 0/45/90/135/30 degrees, cycling over photos);
defocus (uniform disk of radius 3).  Labels: the rescaled photo is sharp, the
five blurred versions blurry (24 sharp + 120 blurry per scale).

Reported per measure and scale: AUROC (sharp vs. blurry, threshold-free) and,
where the measure has a fixed threshold, the accuracy at that threshold:
boda's combined verdict (``sharpness()``, default threshold), Tong et al.'s
``Per < 0.05`` rule, the OpenCV one-liner ``cv2.Laplacian(gray_u8,
cv2.CV_64F).var() < 100`` and cleanvision's ``blurry`` check (run in its own
venv ``.bench-venv``, via subprocess, on PNG files in a temp folder).

Held-out checks (the default threshold was chosen on the Kodak set): the 10
GrabCut photos sharp vs. the same five blurs, and the sharp Kodak photos as
JPEG quality 75 and with Gaussian noise (sigma 2/255 and 5/255), which must
stay sharp.

Run: ``.venv/bin/python benchmarks/blur_detection.py`` (about a minute or
two on 2 cores; ``--no-cleanvision`` skips the cleanvision column).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from boda.core.colorimetry import linear_to_srgb, srgb_to_linear
from boda.io import read_image
from boda.quality import (
    BLUR_THRESHOLD,
    blur_effect,
    fft_high_frequency,
    laplacian_variance,
    sharpness,
    tenengrad,
    to_reference_gray,
    tong_blur,
    wavelet_energy,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BODA_SHARED_DATA", ROOT.parent / "shared" / "data"))
BENCH_VENV_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
SCALES = (0.5, 1.0, 2.0)
ANGLES = (0, 45, 90, 135, 30)

# name -> (function of the reference-scale gray image, True if higher = sharper)
MEASURES = {
    "boda sharpness (combined)": (lambda g: sharpness(g).score, True),
    "laplacian variance": (lambda g: laplacian_variance(g), True),
    "tenengrad": (lambda g: tenengrad(g), True),
    "haar wavelet energy": (lambda g: wavelet_energy(g), True),
    "fft high-frequency fraction": (lambda g: fft_high_frequency(g), True),
    "blur effect (Crete-Roffet)": (lambda g: blur_effect(g), False),
    "Tong et al. Per": (lambda g: tong_blur(g).per, True),
}


def motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    for t in np.linspace(-c, c, 4 * length):
        x = c + t * np.cos(np.deg2rad(angle))
        y = c - t * np.sin(np.deg2rad(angle))
        k[int(round(y)), int(round(x))] = 1
    return k / k.sum()


def disk_kernel(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    k = (x * x + y * y <= radius * radius).astype(np.float32)
    return k / k.sum()


def blurred_versions(img: np.ndarray, i: int) -> dict[str, np.ndarray]:
    out = {f"gauss{s}": cv2.GaussianBlur(img, (0, 0), s) for s in (1, 2, 4)}
    out["motion9"] = cv2.filter2D(img, -1, motion_kernel(9, ANGLES[i % len(ANGLES)]))
    out["disk3"] = cv2.filter2D(img, -1, disk_kernel(3))
    return out


def _subject_alpha(mask: np.ndarray) -> np.ndarray:
    """GrabCut ground truth as coverage (the unknown band half), softened by a
    Gaussian of 1 px so the subject's outline is not a cut."""
    coverage = np.where(mask >= 192, 1.0, np.where(mask >= 64, 0.5, 0.0)).astype(np.float32)
    return cv2.GaussianBlur(coverage, (0, 0), 1.0)[..., None]


def defocused_background(img: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """The photo with its background defocused by a disk of ``radius`` px and its
    subject left as it is: a portrait with bokeh.

    Done in linear light with normalised convolution, so the subject's colours do
    not bleed into the blurred background.
    """
    alpha = _subject_alpha(mask)
    linear = srgb_to_linear(img)
    kernel = disk_kernel(radius)
    background = cv2.filter2D(linear * (1 - alpha), -1, kernel)
    weight = cv2.filter2D(1 - alpha[..., 0], -1, kernel)[..., None]
    mixed = alpha * linear + (1 - alpha) * background / np.maximum(weight, 1e-3)
    return linear_to_srgb(mixed, clip=True)


def subject_alone(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The subject in front of a flat background of the photo's mean colour."""
    alpha = _subject_alpha(mask)
    return (alpha * img + (1 - alpha) * img.reshape(-1, 3).mean(axis=0)).astype(np.float32)


def rescale(img: np.ndarray, s: float) -> np.ndarray:
    if s == 1:
        return img
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return np.clip(cv2.resize(img, (round(w * s), round(h * s)), interpolation=interp), 0, 1)


def quantise(img: np.ndarray) -> np.ndarray:
    """What a file would hold: uint8, as every measure sees photos."""
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def opencv_one_liner(u8: np.ndarray) -> float:
    gray = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def auroc(sharp: list[float], blurry: list[float], higher_is_sharper: bool) -> float:
    a, b = np.asarray(sharp), np.asarray(blurry)
    if not higher_is_sharper:
        a, b = -a, -b
    return float(np.mean(a[:, None] > b[None, :]) + 0.5 * np.mean(a[:, None] == b[None, :]))


def measure_all(u8: np.ndarray) -> dict[str, float]:
    g = to_reference_gray(u8)
    out = {name: float(fn(g)) for name, (fn, _) in MEASURES.items()}
    out["opencv var(Laplacian) < 100"] = opencv_one_liner(u8)
    return out


def cleanvision_blurry(images: dict[str, np.ndarray]) -> dict[str, tuple[bool, float]] | str:
    """cleanvision's ``(is_blurry_issue, blurry_score)`` per key, or why it could not run."""
    if not BENCH_VENV_PYTHON.exists():
        return f"no {BENCH_VENV_PYTHON} (python3 -m venv .bench-venv && pip install cleanvision)"
    with tempfile.TemporaryDirectory() as tmp:
        for key, u8 in images.items():
            cv2.imwrite(str(Path(tmp) / f"{key}.png"), cv2.cvtColor(u8, cv2.COLOR_RGB2BGR))
        code = (
            "import json, sys\n"
            "from cleanvision import Imagelab\n"
            "lab = Imagelab(data_path=sys.argv[1])\n"
            "lab.find_issues({'blurry': {}}, verbose=False)\n"
            "df = lab.issues\n"
            "print(json.dumps({str(k): (bool(v), float(df['blurry_score'][k]))\n"
            "                  for k, v in df['is_blurry_issue'].items()}))\n"
        )
        proc = subprocess.run(
            [str(BENCH_VENV_PYTHON), "-c", code, tmp], capture_output=True, text=True
        )
        if proc.returncode != 0:
            return f"cleanvision failed: {proc.stderr.strip().splitlines()[-1:]}"
        raw = json.loads(proc.stdout.strip().splitlines()[-1])
    return {Path(k).stem: (bool(v[0]), float(v[1])) for k, v in raw.items()}


def build_set(paths: list[Path], scale: float) -> list[tuple[str, int, np.ndarray]]:
    items = []
    for i, path in enumerate(paths):
        sharp = rescale(read_image(path), scale)
        items.append((f"{path.stem}_sharp", 0, quantise(sharp)))
        for name, img in blurred_versions(sharp, i).items():
            items.append((f"{path.stem}_{name}", 1, quantise(img)))
    return items


def evaluate(items, with_cleanvision: bool):
    values = {key: measure_all(u8) for key, _, u8 in items}
    labels = {key: label for key, label, _ in items}
    rows = {}
    for name, (_, higher) in MEASURES.items():
        sharp = [values[k][name] for k in values if labels[k] == 0]
        blur = [values[k][name] for k in values if labels[k] == 1]
        acc = None
        if name.startswith("boda"):
            acc = np.mean([(values[k][name] < BLUR_THRESHOLD) == labels[k] for k in values])
        if name.startswith("Tong"):
            acc = np.mean([(values[k][name] < 0.05) == labels[k] for k in values])
        rows[name] = (auroc(sharp, blur, higher), acc)
    cv_name = "opencv var(Laplacian) < 100"
    sharp = [values[k][cv_name] for k in values if labels[k] == 0]
    blur = [values[k][cv_name] for k in values if labels[k] == 1]
    acc = np.mean([(values[k][cv_name] < 100) == labels[k] for k in values])
    rows[cv_name] = (auroc(sharp, blur, True), acc)
    if with_cleanvision:
        verdicts = cleanvision_blurry({k: u8 for k, _, u8 in items})
        if isinstance(verdicts, str):
            rows["cleanvision blurry"] = (None, verdicts)
        else:
            acc = np.mean([verdicts[k][0] == bool(labels[k]) for k in labels])
            sharp = [verdicts[k][1] for k in labels if labels[k] == 0]
            blur = [verdicts[k][1] for k in labels if labels[k] == 1]
            rows["cleanvision blurry"] = (auroc(sharp, blur, True), acc)
    return rows, values, labels


def print_bokeh(photos: list[Path]) -> None:
    """Held out, a known limit: the GrabCut photos with their backgrounds defocused.

    Every one of these is "sharp" (its subject is untouched), so the table counts
    the share kept sharp, beside each subject's score in front of a flat
    background: what the verdict sees of the subject alone.
    """
    radii = (2, 3, 5)
    rows = []
    for path in photos:
        mask_path = path.parent.parent / "masks" / path.name
        if not mask_path.exists():
            continue
        img = read_image(path)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        scores = [sharpness(quantise(defocused_background(img, mask, r))).score for r in radii]
        alone = sharpness(quantise(subject_alone(img, mask))).score
        rows.append((path.stem, sharpness(quantise(img)).score, alone, scores))
    if not rows:
        return
    print(f"\n### Held out, a known limit: GrabCut photos with the background defocused "
          f"(disk radius {', '.join(map(str, radii))} px; all {len(rows) * len(radii)} "
          "are sharp)\n")
    print("| photo | as taken | subject alone | " + " | ".join(f"bokeh r={r}" for r in radii)
          + " |")
    print("|---|---:|---:|" + "---:|" * len(radii))
    for name, whole, alone, scores in rows:
        print(f"| {name} | {whole:.2f} | {alone:.2f} | " + " | ".join(f"{v:.2f}" for v in scores)
              + " |")
    kept = [np.mean([r[3][i] >= BLUR_THRESHOLD for r in rows]) for i in range(len(radii))]
    print("| kept sharp | | | " + " | ".join(f"{k:.2f}" for k in kept) + " |")


def fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-cleanvision", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    kodak = sorted((DATA / "kodak24").glob("*.png"))
    if not kodak:
        sys.exit(f"no Kodak photos in {DATA / 'kodak24'}; set BODA_SHARED_DATA")
    per_scale = {s: evaluate(build_set(kodak, s), not args.no_cleanvision) for s in SCALES}

    print(f"### Blur detection, Kodak24 (24 sharp + 120 blurred per scale), threshold "
          f"{BLUR_THRESHOLD}\n")
    print("| measure | " + " | ".join(f"AUROC {s}x | acc {s}x" for s in SCALES) + " |")
    print("|---|" + "---|---|" * len(SCALES))
    for name in per_scale[SCALES[0]][0]:
        cells = []
        for s in SCALES:
            auc, acc = per_scale[s][0][name]
            cells += [fmt(auc), fmt(acc)]
        print(f"| {name} | " + " | ".join(cells) + " |")

    # Per blur type, combined verdict: fraction detected.
    print("\n### boda verdict per blur type (fraction flagged blurry; sharp: fraction kept)\n")
    kinds = ["sharp", "gauss1", "gauss2", "gauss4", "motion9", "disk3"]
    print("| scale | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    name = "boda sharpness (combined)"
    for s in SCALES:
        _, values, labels = per_scale[s]
        cells = []
        for kind in kinds:
            keys = [k for k in values if k.endswith("_" + kind)]
            flagged = np.mean([values[k][name] < BLUR_THRESHOLD for k in keys])
            cells.append(fmt(1 - flagged if kind == "sharp" else flagged))
        print(f"| {s}x | " + " | ".join(cells) + " |")

    # Held out: GrabCut photos.
    grabcut = sorted((DATA / "grabcut" / "images").glob("*.png"))
    if grabcut:
        rows, values, labels = evaluate(build_set(grabcut, 1.0), False)
        kept = np.mean([values[k][name] >= BLUR_THRESHOLD for k in values if labels[k] == 0])
        caught = np.mean([values[k][name] < BLUR_THRESHOLD for k in values if labels[k] == 1])
        low = sorted((values[k][name], k) for k in values if labels[k] == 0)[:3]
        print(f"\n### Held out: GrabCut ({len(grabcut)} sharp + {5 * len(grabcut)} blurred)\n")
        print(f"- boda verdict: accuracy {rows[name][1]:.3f}, AUROC {rows[name][0]:.3f}; "
              f"sharp kept {kept:.2f}, blurred caught {caught:.2f}")
        print("- lowest-scoring sharp photos: "
              + ", ".join(f"{k.split('_')[0]} {v:.2f}" for v, k in low))
        cv_acc = rows["opencv var(Laplacian) < 100"][1]
        print(f"- OpenCV one-liner accuracy {cv_acc:.3f}")
        print_bokeh(grabcut)

    # Sanity: JPEG q75 and noise must not flip sharp photos.
    rng = np.random.default_rng(0)
    print("\n### Sharp Kodak photos after JPEG q75 / noise (fraction still sharp, min score)\n")
    print("| variant | kept sharp | min score |\n|---|---|---|")
    variants = {
        "JPEG q75": lambda u8: cv2.imdecode(cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY,
                                                                    75])[1], 1),
        "noise 2/255": lambda u8: quantise(u8 / 255 + rng.normal(0, 2 / 255, u8.shape)),
        "noise 5/255": lambda u8: quantise(u8 / 255 + rng.normal(0, 5 / 255, u8.shape)),
    }
    for label, fn in variants.items():
        scores = [
            sharpness(fn(quantise(read_image(p)))).score
            for p in kodak
        ]
        kept = np.mean([v >= BLUR_THRESHOLD for v in scores])
        print(f"| {label} | {kept:.3f} | {min(scores):.3f} |")
    print("\n### Blurred (Gaussian sigma 2) Kodak photos after JPEG q75 / noise "
          "(fraction still flagged, max score)\n")
    print("| variant | still blurry | max score |\n|---|---|---|")
    for label, fn in variants.items():
        scores = [
            sharpness(fn(quantise(cv2.GaussianBlur(read_image(p), (0, 0), 2.0)))).score
            for p in kodak
        ]
        caught = np.mean([v < BLUR_THRESHOLD for v in scores])
        print(f"| {label} | {caught:.3f} | {max(scores):.3f} |")
    print(f"\n(ran in {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
