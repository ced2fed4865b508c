"""Tiny images (28-64 px dataset crops): blur verdict, unmeasurable images, grayscale.

The cases come from a dataset-cleaning hunt on CIFAR-like crops: sharp shutters
scored as the blurriest images (the anisotropy penalty at 32 px), flat images
scored "sharp" while nearly flat ones scored 0, and 2x2 or 1x64 images were
"sharp" rather than not measured.
"""

from __future__ import annotations

import json
import math
import sqlite3

import cv2
import numpy as np
import pytest
from PIL import Image

from boda.color import is_grayscale
from boda.io import read_image, write_image
from boda.quality import (
    BLUR_THRESHOLD,
    analyze,
    anisotropy_weight,
    sharpness,
    sharpness_score,
)
from boda.scan._flags import FlagDeriver, default_thresholds


def _shutter(n: int = 32, period: float = 3.0) -> np.ndarray:
    """Slanted louvre slats (``period`` px at ``n``) beside a flat post, area-averaged
    from 8x: a sharp, strongly oriented texture near the pixel scale."""
    y, x = np.mgrid[0 : n * 8, 0 : n * 8].astype(np.float32)
    slats = ((y + 0.15 * x) % (period * 8) < period * 4).astype(np.float32)
    img = 0.25 + 0.5 * slats
    img[:, : n * 8 // 6] = 0.6
    return cv2.resize(img, (n, n), interpolation=cv2.INTER_AREA)


def _kodak_windows(kodak_paths, n: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` random 48-200 px windows of the test Kodak photos, bicubic to ``n``."""
    rng = np.random.default_rng(seed)
    photos = [Image.open(p).convert("RGB") for p in kodak_paths]
    out = []
    for k in range(count):
        photo = photos[k % len(photos)]
        s = int(rng.integers(48, 200))
        x, y = (int(v) for v in rng.integers(0, 500 - s, 2))
        window = photo.crop((x, y, x + s, y + s)).resize((n, n), Image.BICUBIC)
        out.append(np.asarray(window, np.float32) / 255)
    return out


@pytest.mark.parametrize("period", [3.0, 4.0])
def test_sharp_shutter_at_32px_is_sharp_and_above_its_blurred_self(period):
    sharp = _shutter(period=period)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 1.0)
    s, b = sharpness(sharp), sharpness(blurred)
    # The period-3 slats have anisotropy 0.15: the full penalty put them at 0.30 (blurry).
    assert s.measures["anisotropy"] < 0.7
    assert not s.is_blurry and b.is_blurry
    assert s.score > b.score + 0.4


def test_anisotropy_penalty_still_counts_for_large_images(kodak_rgb):
    # Whole-photo motion blur keeps being caught through the anisotropy term.
    kernel = np.zeros((9, 9), np.float32)
    kernel[4, :] = 1 / 9
    blurred = cv2.filter2D(kodak_rgb, -1, kernel)
    result = sharpness(blurred)
    ratio, anisotropy = result.measures["detail_ratio"], result.measures["anisotropy"]
    assert result.is_blurry
    assert result.score == pytest.approx(sharpness_score(ratio, anisotropy))  # full weight
    assert anisotropy_weight(min(blurred.shape[:2])) == 1.0


def test_anisotropy_weight_fades_continuously():
    sides = np.arange(1, 201)
    weights = np.array([anisotropy_weight(int(n)) for n in sides])
    assert weights[sides <= 64].max() == 0.0 and weights[sides >= 96].min() == 1.0
    assert np.all(np.diff(weights) >= 0)
    assert np.abs(np.diff(weights)).max() <= 1 / 32 + 1e-12  # no jump at one pixel
    assert anisotropy_weight(None) == 1.0
    # The score itself: at most 2 * 0.55 / 32 per pixel of size.
    scores = [sharpness_score(0.6, 0.1, side=n) for n in range(60, 101)]
    assert np.abs(np.diff(scores)).max() <= 2 * 0.55 / 32 + 1e-9
    assert scores[0] == pytest.approx(sharpness_score(0.6)) and scores[-1] == 0.0


def test_sharp_kodak_windows_at_32px_rarely_blurry_and_blurred_ones_caught(kodak_paths):
    windows = _kodak_windows(kodak_paths, 32, 60)
    sharp = np.array([sharpness(w).score for w in windows])
    blurred = np.array([sharpness(cv2.GaussianBlur(w, (0, 0), 1.0)).score for w in windows])
    measured = np.isfinite(sharp) & np.isfinite(blurred)  # a blurred sky can be flat
    assert measured.mean() >= 0.9
    sharp, blurred = sharp[measured], blurred[measured]
    assert np.mean(sharp < BLUR_THRESHOLD) <= 0.15  # soft skies and bokeh among them
    assert np.mean(blurred < BLUR_THRESHOLD) >= 0.95
    assert np.mean(sharp > blurred) >= 0.95


def test_64px_image_is_measured_on_the_whole_image_not_a_corner():
    # Top-left quarter flat, bottom-left sharp slats, right half blurred slats: the one
    # 32 px tile that fits, the top-left corner, used to decide alone (here: flat -> 0).
    img = np.full((64, 64), 0.5, np.float32)
    img[:, 32:] = cv2.GaussianBlur(_shutter(64, 4.0), (0, 0), 2.0)[:, 32:]
    img[:32, :32] = 0.5  # the top-left 32 px: flat
    img[32:, :32] = _shutter(64, 4.0)[32:, :32]  # sharp detail only bottom-left
    assert not sharpness(img).is_blurry


@pytest.mark.parametrize(
    "shape", [(2, 2), (1, 64), (64, 1), (7, 40), (2, 2, 3)]
)
def test_too_small_images_get_no_verdict(shape, rng):
    img = rng.random(shape).astype(np.float32)
    result = sharpness(img)
    assert math.isnan(result.score) and not result.is_blurry
    report = analyze(img)
    assert math.isnan(report.scores["blurry"]) and not report.flags["blurry"]


def test_flat_and_nearly_flat_images_get_no_verdict(rng):
    flat = np.full((32, 32, 3), 0.4, np.float32)
    # a flat card whose 8-bit rounding left scattered one-level steps (contrast 0.002)
    nearly = np.round(0.4 * 255 + rng.normal(0, 0.4, (32, 32, 1))) / 255
    nearly = np.repeat(nearly, 3, axis=2).astype(np.float32)
    assert 0.001 < nearly.std() < 0.003
    for img in (flat, nearly):
        report = analyze(img)
        assert math.isnan(report.scores["blurry"]), report.scores
        assert not report.flags["blurry"] and report.flags["low_information"]
    # Just above the floor, a faint but real edge is measured.
    edge = np.full((32, 32), 0.4, np.float32)
    edge[:, 16:] += 4 / 255
    assert math.isfinite(sharpness(edge).score)


def test_blurred_tiny_image_stays_measurable_and_blurry(kodak_paths):
    windows = [w for w in _kodak_windows(kodak_paths, 32, 12, seed=3) if w.std() > 0.05]
    assert len(windows) >= 6
    for window in windows:
        blurred = np.round(cv2.GaussianBlur(window, (0, 0), 2.0) * 255) / 255  # saved as 8 bits
        result = sharpness(blurred.astype(np.float32))
        assert math.isfinite(result.score) and result.is_blurry


def test_sharpness_score_nan_handling():
    assert math.isnan(sharpness_score(math.nan, 0.3))
    assert sharpness_score(1.0, math.nan) == pytest.approx(1.0)
    assert sharpness_score(1.0, 0.05, side=32) == pytest.approx(1.0)
    assert sharpness_score(1.0, 0.05, side=128) == pytest.approx(0.0)


def test_missing_or_nan_score_does_not_flag():
    deriver = FlagDeriver(default_thresholds())
    deriver.add(1, {"blurry": math.nan, "dark": 0.1}, "a", 1)
    deriver.add(2, {"dark": 0.1}, "b", 2)
    deriver.add(3, {"blurry": 0.1}, "c", 3)
    assert [(i, name) for i, name, *_ in deriver.image_rows] == [(3, "blurry")]


def test_scan_gives_tiny_and_flat_files_no_blurry_flag(tmp_path, kodak_rgb):
    from boda.report import catalog_records
    from boda.scan import scan

    write_image(tmp_path / "flat.png", np.full((32, 32, 3), 0.5, np.float32))
    write_image(tmp_path / "tiny.png", np.array([[[0.1] * 3, [0.9] * 3]] * 2, np.float32))
    small = cv2.resize(kodak_rgb, (32, 32), interpolation=cv2.INTER_AREA)
    write_image(tmp_path / "photo.png", small)
    blurred = cv2.GaussianBlur(small, (0, 0), 2.0)
    write_image(tmp_path / "blurred.png", blurred)
    summary = scan(tmp_path, workers=1)
    assert summary.flag_counts["blurry"] == 1
    records = {r["path"]: r for r in catalog_records(tmp_path)}
    assert "blurry" in records["blurred.png"]["flags"]
    for name in ("flat.png", "tiny.png"):
        assert "blurry" not in records[name]["flags"]
        assert "blurry" not in records[name]["scores"]  # not measured: no score stored
    assert math.isfinite(records["photo.png"]["scores"]["blurry"])
    # the catalog holds strict JSON (SQLite's json functions reject NaN)
    db = sqlite3.connect(tmp_path / ".boda" / "catalog.db")
    assert db.execute("SELECT COUNT(*) FROM images WHERE NOT json_valid(scores)").fetchone() == (0,)
    db.close()


def _gray_with_noise(img: np.ndarray, rng) -> np.ndarray:
    """Rec. 601 gray as RGB uint8 with +-1 level of independent noise per channel
    (what a gray photo saved through a colour pipeline carries)."""
    gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
    base = np.repeat(gray[..., None], 3, axis=2) * 255
    return np.clip(np.round(base + rng.integers(-1, 2, base.shape)), 0, 255).astype(np.uint8)


def test_dark_colour_crop_is_not_grayscale_dark_gray_one_is(kodak_paths, rng):
    # kodim23 (parrots) and kodim03 (caps): colourful; darkened to mean L* about 13.
    for path in (kodak_paths[1], kodak_paths[-1]):
        crop = cv2.resize(read_image(path), (32, 32), interpolation=cv2.INTER_AREA)
        dark = (np.round(crop * 0.3 * 255)).astype(np.uint8)
        assert not is_grayscale(dark)[0], path
        assert is_grayscale(_gray_with_noise(crop * 0.3, rng))[0], path
        assert is_grayscale(_gray_with_noise(crop * 0.08, rng))[0], path


def test_quality_command_on_tiny_files(tmp_path, rng):
    from typer.testing import CliRunner

    from boda.cli import app

    small = rng.random((8, 8, 3)).astype(np.float32)
    result = sharpness(small, all_measures=True)  # Tong needs 16 px: NaN, not an error
    assert math.isfinite(result.score)
    assert all(math.isnan(result.measures[k]) for k in ("tong_per", "tong_blur_extent"))
    write_image(tmp_path / "two.png", rng.random((2, 2, 3)).astype(np.float32))
    out = CliRunner().invoke(app, ["quality", str(tmp_path / "two.png"), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["scores"]["blurry"] is None and data["flags"]["blurry"] is False
