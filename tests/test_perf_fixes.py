"""Big-photo performance fixes, each checked against the slow, obvious computation.

- Reading an 8-bit file with a matrix/TRC or gray profile (Display P3, Adobe RGB...)
  hands the decoded levels to the colour plan without a float32 copy of them first
  (tracemalloc peak, allocations not timings), and gives the same floats.
- ``boda quality --reference`` sums the squared error once for MSE and PSNR
  (:func:`boda.quality._reference.compare`), with the values of ``mse``, ``psnr`` and
  ``ssim`` bit for bit.
- :func:`boda.edges.orientation_image` colours its bands without
  :func:`boda.color.hsv_to_rgb`'s general-case work, float for float, in less memory.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from icc_profiles import curve_gamma, gray_profile, rgb_profile
from memory_helpers import peak_bytes
from PIL import Image
from typer.testing import CliRunner

import boda.quality._reference as reference_module
from boda import _icc
from boda.cli import app
from boda.color import hsv_to_rgb
from boda.core.image import as_float_image
from boda.edges import _orientation, orientation_image
from boda.filters import gradient
from boda.io import open_image, read_image
from boda.quality import mse, psnr, ssim
from boda.quality._reference import compare

runner = CliRunner()

P3 = rgb_profile("p3", curve_gamma(2.2))
GRAY = gray_profile(curve_gamma(1.8))


def _expected(path, **kwargs) -> np.ndarray:
    """The float route: the file's values as stored (composited, oriented and resized as
    the read does them), then the plan's conversion of those floats."""
    with Image.open(path) as img:
        mode, profile = img.mode, img.info["icc_profile"]
    plan = _icc.color_plan(profile, mode)
    if mode == "L":  # gray profiles are always converted: the levels from Pillow
        with Image.open(path) as img:
            gray = plan.apply(as_float_image(np.asarray(img)))
        return np.repeat(gray[..., None], 3, axis=2)
    return plan.apply(open_image(path, color="keep", **kwargs).pixels)


@pytest.fixture
def p3_files(tmp_path, rng):
    """A P3 JPEG, the same stored rotated (EXIF Orientation 6), a P3 PNG, a P3 RGBA PNG
    and a gray JPEG with a gray TRC profile, 1024 x 768 of every level."""
    u8 = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    u8[0, :256] = np.arange(256, dtype=np.uint8)[:, None]
    files = {}
    img = Image.fromarray(u8)
    files["jpeg"] = tmp_path / "p3.jpg"
    img.save(files["jpeg"], quality=90, icc_profile=P3)
    files["rotated jpeg"] = tmp_path / "p3_rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(
        files["rotated jpeg"], quality=90, icc_profile=P3, exif=exif.tobytes()
    )
    files["png"] = tmp_path / "p3.png"
    img.save(files["png"], icc_profile=P3, compress_level=0)
    rgba = np.dstack([u8, rng.integers(0, 256, u8.shape[:2], dtype=np.uint8)])
    files["rgba png"] = tmp_path / "p3_rgba.png"
    Image.fromarray(rgba).save(files["rgba png"], icc_profile=P3, compress_level=0)
    files["gray jpeg"] = tmp_path / "gray.jpg"
    Image.fromarray(u8[..., 1]).save(files["gray jpeg"], quality=90, icc_profile=GRAY)
    return files


# ------------------------------------------------------------------ 1. reading
@pytest.mark.parametrize("name", ["jpeg", "rotated jpeg", "png", "rgba png", "gray jpeg"])
def test_profile_conversion_gives_the_float_route_bit_for_bit(p3_files, name):
    decoded = open_image(p3_files[name])
    assert decoded.converted_from is not None and decoded.color_warning is None
    assert decoded.pixels.dtype == np.float32 and decoded.pixels.shape == (768, 1024, 3)
    np.testing.assert_array_equal(decoded.pixels, _expected(p3_files[name]))
    assert decoded.pixels_uint8 is None  # converted: no longer the decoded levels
    # gray reads: the luma of the converted pixels (a gray file's own converted gray)
    gray = read_image(p3_files[name], gray=True)
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    luma = decoded.pixels[..., 0] if name == "gray jpeg" else decoded.pixels @ weights
    np.testing.assert_array_equal(gray, luma)


@pytest.mark.parametrize("name", ["png", "rgba png", "jpeg"])
def test_profile_conversion_after_a_resize_gives_the_float_route(p3_files, name):
    pixels = read_image(p3_files[name], max_side=300)
    assert max(pixels.shape) == 300
    np.testing.assert_array_equal(pixels, _expected(p3_files[name], max_side=300))


@pytest.mark.parametrize(
    "name, bound", [("jpeg", 1.8), ("rotated jpeg", 1.8), ("png", 1.8), ("gray jpeg", 1.6)]
)
def test_reading_a_profiled_8bit_file_makes_no_float_copy_of_its_levels(
    p3_files, name, bound, monkeypatch
):
    """The peak is the result, the 8-bit levels and the file, not also a float32 copy of
    the levels (was 2.5x the result for RGB, 1.75x for gray, with small strips)."""
    monkeypatch.setattr(_icc, "_STRIP_PIXELS", 1 << 14)  # strip temporaries out of the way
    path = p3_files[name]
    read_image(path)  # plans and transforms cached, modules imported
    result_bytes = 768 * 1024 * 3 * 4
    assert peak_bytes(lambda: read_image(path)) < bound * result_bytes


def test_a_plan_giving_nan_leaves_the_levels_as_srgb(p3_files, monkeypatch):
    """The fallback when a profile gives undefined values works from the levels alone."""
    path = p3_files["jpeg"]
    stored = open_image(path, color="keep").pixels
    monkeypatch.setattr(
        _icc.ColorPlan, "apply", lambda self, p: np.full(p.shape, np.nan, np.float32)
    )
    decoded = open_image(path)
    np.testing.assert_array_equal(decoded.pixels, stored)
    assert "infinite or undefined" in decoded.color_warning
    assert decoded.converted_from is None
    np.testing.assert_array_equal(decoded.pixels_uint8 / np.float32(255), decoded.pixels)


# ------------------------------------------------------------------ 2. quality --reference
def test_compare_gives_mse_psnr_ssim_bit_for_bit(kodak_rgb, rng):
    noisy = np.clip(kodak_rgb + rng.normal(0, 0.05, kodak_rgb.shape), 0, 1).astype(np.float32)
    pairs = [
        (noisy, kodak_rgb),
        (noisy[..., 1], kodak_rgb[..., 1]),
        (np.round(noisy * 255).astype(np.uint8), np.round(kodak_rgb * 255).astype(np.uint8)),
    ]
    for image, reference in pairs:
        calls: list[tuple[int, int]] = []
        scores = compare(image, reference, progress=lambda d, t, c=calls: c.append((d, t)))
        assert scores == {
            "mse": mse(image, reference),
            "psnr": psnr(image, reference),
            "ssim": ssim(image, reference),
        }
        assert calls == [(1, 2), (2, 2)]
    same = compare(kodak_rgb, kodak_rgb)
    assert same["mse"] == 0.0 and same["psnr"] == float("inf") and same["ssim"] == 1.0


def test_quality_reference_sums_the_squared_error_once(tmp_path, kodak_paths, monkeypatch):
    image = np.asarray(Image.open(kodak_paths[0]).convert("RGB"))
    edited = np.clip(image.astype(np.int16) + 9, 0, 255).astype(np.uint8)
    reference_path, image_path = tmp_path / "ref.png", tmp_path / "edited.png"
    Image.fromarray(image).save(reference_path)
    Image.fromarray(edited).save(image_path)
    original = reference_module._mean_squared_error
    passes = []
    monkeypatch.setattr(
        reference_module, "_mean_squared_error",
        lambda a, b: passes.append(a.shape) or original(a, b),
    )
    result = runner.invoke(
        app, ["quality", str(image_path), "--reference", str(reference_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(passes) == 1  # was 2: once for MSE, once inside PSNR
    got = json.loads(result.stdout)["reference"]
    a, b = read_image(image_path), read_image(reference_path)
    assert got == {"mse": mse(a, b), "psnr": psnr(a, b), "ssim": ssim(a, b)}


# ------------------------------------------------------------------ 3. orientation colours
def _orientation_reference(gray: np.ndarray) -> np.ndarray:
    """orientation_image's definition written out with the general hsv_to_rgb."""
    gy, gx = gradient(gray, "sobel")
    magnitude = np.hypot(gx, gy)
    scale = float(np.quantile(magnitude, 0.99))
    if scale <= 0:
        scale = float(magnitude.max()) or 1.0
    hsv = np.empty((*gray.shape, 3), np.float32)
    hsv[..., 0] = np.remainder(np.rad2deg(np.arctan2(gy, gx)), 360.0)
    hsv[..., 1] = 1.0
    hsv[..., 2] = np.clip(magnitude / scale, 0.0, 1.0)
    return np.clip(hsv_to_rgb(hsv), 0.0, 1.0)


def _hard_cases(rng) -> list[np.ndarray]:
    """Flat areas (zero gradients, -0 angles), steps in eight directions, noise."""
    flat = np.full((20, 24), 0.5, np.float32)
    yy, xx = np.mgrid[0:40, 0:40].astype(np.float32)
    steps = [((np.cos(a) * (xx - 20) + np.sin(a) * (yy - 20)) > 0).astype(np.float32)
             for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    ramp = (xx - 1e-6 * yy) / 40  # angles a hair below 0 degrees: mod 360 rounds to 360
    return [flat, *steps, ramp, rng.random((37, 53), dtype=np.float32)]


def test_orientation_image_is_hsv_to_rgb_of_its_definition(kodak_rgb, rng):
    gray = kodak_rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    for image in [gray, *_hard_cases(rng)]:
        np.testing.assert_array_equal(orientation_image(image), _orientation_reference(image))


def test_band_colouring_wraps_angles_as_remainder_does(rng):
    """Angles at the wrap points: -0, +-tiny, +-180, the axes, and random ones."""
    tiny = np.float32(1e-7)
    gx = np.array([1, 1, 1, 1, -1, -1, -1, 0, 0, 0, -0.0, 1, -1], np.float32)
    gy = np.array([0, -0.0, tiny, -tiny, 0, -0.0, -tiny, 1, -1, 0, -0.0, -3e-6, tiny], np.float32)
    gx = np.concatenate([gx, rng.normal(size=5000).astype(np.float32)])[None]
    gy = np.concatenate([gy, rng.normal(size=5000).astype(np.float32)])[None]
    magnitude = np.hypot(gx, gy)
    out = np.empty((*gx.shape, 3), np.float32)
    _orientation._colour_band(gy, gx, magnitude, 2.0, out)
    hsv = np.stack(
        [np.remainder(np.rad2deg(np.arctan2(gy, gx)), 360.0), np.ones_like(gx),
         np.clip(magnitude / 2.0, 0.0, 1.0)], axis=-1,
    )
    np.testing.assert_array_equal(out, np.clip(hsv_to_rgb(hsv), 0.0, 1.0))


def test_orientation_colouring_temporaries_stay_small(rng):
    """Gradients, magnitude and the picture, plus a few band-sized arrays
    (was 17x the gray image at 1.5 MP: hsv_to_rgb's temporaries of a 1 MP band)."""
    gray = rng.random((1536, 1024), dtype=np.float32)
    assert peak_bytes(lambda: orientation_image(gray)) < 9 * gray.nbytes
