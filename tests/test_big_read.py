"""Big photos: fast, memory-bounded colour conversion on read, a header-only size,
cutout's refusal before decoding, lean edge maps and progress callbacks.

Every check compares with a reference computed the slow, obvious way (the float
conversion, the per-cell HOG drawing loop, the full-image NMS), bit for bit; memory
is checked with tracemalloc (allocations, not timings).
"""

from __future__ import annotations

import numpy as np
import pytest
from icc_profiles import (
    ADOBE_CURVE,
    SRGB_CURVE,
    curve_gamma,
    curve_parametric,
    curve_table,
    gray_profile,
    rgb_profile,
)
from memory_helpers import peak_bytes
from PIL import Image
from typer.testing import CliRunner

from boda import _icc
from boda.cli import app
from boda.core.colorimetry import srgb_encode
from boda.core.image import as_float_image
from boda.errors import ImageReadError
from boda.io import image_size, open_image, read_image

runner = CliRunner()

PROFILES = {
    "p3 gamma 2.2": (rgb_profile("p3", curve_gamma(2.2)), "RGB"),
    "p3 sRGB curve": (rgb_profile("p3", SRGB_CURVE), "RGB"),
    "adobe": (rgb_profile("adobe", ADOBE_CURVE), "RGB"),
    "prophoto table": (rgb_profile("prophoto", curve_table(np.linspace(0, 1, 37) ** 1.8)), "RGB"),
    "adobe type 4": (
        rgb_profile("adobe", curve_parametric(4, 2.2, 0.95, 0.05, 0.08, 0.05, 0.01, 0.0)), "RGB"
    ),
    "gray 1.8": (gray_profile(curve_gamma(1.8)), "L"),
}


def _levels(rng, shape) -> np.ndarray:
    """Random 8-bit pixels with every level and the primaries present."""
    u8 = rng.integers(0, 256, shape, dtype=np.uint8)
    u8[0, :256] = np.arange(256, dtype=np.uint8)[:, None] if u8.ndim == 3 else np.arange(256)
    return u8


# ------------------------------------------------------------------ colour conversion
@pytest.mark.parametrize("name", list(PROFILES))
def test_eight_bit_tables_give_the_float_conversion_bit_for_bit(name, rng):
    profile, mode = PROFILES[name]
    plan = _icc.color_plan(profile, mode)
    assert plan.kind in ("matrix", "gray")
    u8 = _levels(rng, (300, 256, 3) if mode == "RGB" else (300, 256))
    from_levels = plan.apply(u8)
    assert from_levels.dtype == np.float32 and from_levels.shape == u8.shape
    np.testing.assert_array_equal(from_levels, plan.apply(as_float_image(u8)))
    # a strided view (an EXIF-rotated decode) converts the same
    view = u8[::-1, ::2].swapaxes(0, 1)
    np.testing.assert_array_equal(plan.apply(view), plan.apply(as_float_image(view)))


def test_white_stays_exactly_one_through_the_tables():
    """srgb_encode keeps linear 1 at exactly 1.0 (a gray profile maps white to linear 1)."""
    plan = _icc.color_plan(PROFILES["gray 1.8"][0], "L")
    white = np.full((4, 5), 255, np.uint8)
    assert np.all(plan.apply(white) == 1.0)


def test_conversion_temporaries_do_not_grow_with_the_image(rng):
    """Strips: the peak is the result plus a few MB, not several images (was ~6x)."""
    plan = _icc.color_plan(PROFILES["p3 sRGB curve"][0], "RGB")
    for pixels in (_levels(rng, (1536, 1024, 3)), rng.random((1536, 1024, 3), np.float32)):
        result_bytes = pixels.shape[0] * pixels.shape[1] * 3 * 4
        assert peak_bytes(lambda p=pixels: plan.apply(p)) < 1.6 * result_bytes


def test_read_image_hands_the_decoded_levels_to_the_plan(tmp_path, rng, monkeypatch):
    profile = PROFILES["p3 gamma 2.2"][0]
    u8 = _levels(rng, (64, 256, 3))
    path = tmp_path / "p3.png"
    Image.fromarray(u8).save(path, icc_profile=profile)
    # built (and cached) first: building a plan checks it on a float test image
    plan = _icc.color_plan(profile, "RGB")
    seen = []
    original = _icc.ColorPlan.apply
    monkeypatch.setattr(
        _icc.ColorPlan, "apply", lambda self, p: seen.append(p.dtype) or original(self, p)
    )
    pixels = read_image(path)
    assert seen == [np.uint8]
    np.testing.assert_array_equal(pixels, original(plan, as_float_image(u8)))


def test_srgb_encode_float32_is_the_formula_bit_for_bit_in_bounded_memory(rng):
    x = rng.random(3_000_000, dtype=np.float32) * np.float32(1.4) - np.float32(0.2)
    x[:6] = [np.nan, 1.0, 0.0031308, 0.0, -0.0, 0.5]
    x = np.concatenate([x, np.linspace(0, 0.01, 30_000, dtype=np.float32)]).reshape(-1, 3)
    # the reference: the formula on whole arrays (what srgb_encode computed before chunking)
    lin = np.clip(x, 0.0, 1.0)
    powered = np.power(np.maximum(lin, np.float32(0.0031308)), np.float32(1 / 2.4))
    high = (powered - np.float32(1.0)) * np.float32(0.055) + powered
    expected = np.where(lin <= 0.0031308, lin * np.float32(12.92), high).astype(np.float32)
    got = srgb_encode(x)
    np.testing.assert_array_equal(got, expected)
    assert got[0, 1] == 1.0 and got.dtype == np.float32
    assert peak_bytes(lambda: srgb_encode(x)) < x.nbytes + (8 << 20)


# ------------------------------------------------------------------ header-only size
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_image_size_reads_the_header_and_follows_exif_orientation(
    tmp_path, orientation, monkeypatch
):
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 24), (10, 200, 30)).save(path, exif=exif.tobytes())
    expected = open_image(path).original_size
    assert expected == ((24, 40) if orientation in (6, 8) else (40, 24))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    assert image_size(path) == expected


def test_image_size_of_png_and_bad_files(tmp_path):
    path = tmp_path / "a.png"
    Image.new("L", (7, 5)).save(path)
    assert image_size(path) == (7, 5)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="not a recognised image format"):
        image_size(tmp_path / "junk.png")
    with pytest.raises(ImageReadError, match="no such file"):
        image_size(tmp_path / "missing.png")


def test_cutout_refuses_a_photo_too_big_before_decoding_it(tmp_path, monkeypatch):
    from boda.cli import cutout_cmd

    path = tmp_path / "big.jpg"
    Image.new("RGB", (400, 300)).save(path)
    monkeypatch.setattr(cutout_cmd, "_available_memory", lambda: 400 * 300 * 100)
    class Decoded(Exception):
        pass

    def decode(*args, **kwargs):
        raise Decoded

    monkeypatch.setattr("boda.io.open_image", decode)
    result = runner.invoke(app, ["cutout", str(path), "--rect", "10,10,50,50",
                                 "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 2
    assert "GrabCut on 0.1 MP needs about" in result.output
    assert "add --max-side" in result.output
    # with --max-side small enough, the header check lets it through to the decoder
    result = runner.invoke(app, ["cutout", str(path), "--rect", "10,10,50,50", "--max-side",
                                 "100", "-o", str(tmp_path / "c.png")])
    assert isinstance(result.exception, Decoded)


# ------------------------------------------------------------------ edges
def _old_hog_picture(image, orientations, cell):
    """The per-cell, per-orientation drawing loop hog_image used before (reference)."""
    from boda.edges import _hog

    g_row, g_col = _hog._gradients(as_float_image(image))
    hist = _hog._cell_histograms(g_row, g_col, orientations, cell, "hard")
    out = np.zeros(g_row.shape, np.float64)
    radius = min(cell) // 2 - 1
    mid = np.pi * (np.arange(orientations) + 0.5) / orientations
    dr, dc = radius * np.sin(mid), radius * np.cos(mid)
    for r in range(hist.shape[0]):
        for c in range(hist.shape[1]):
            cr, cc = r * cell[0] + cell[0] // 2, c * cell[1] + cell[1] // 2
            for o in range(orientations):
                r0, c0 = int(cr - dc[o]), int(cc + dr[o])
                r1, c1 = int(cr + dc[o]), int(cc - dr[o])
                n = max(abs(r1 - r0), abs(c1 - c0)) + 1
                rr = np.rint(np.linspace(r0, r1, n)).astype(int)
                cols = np.rint(np.linspace(c0, c1, n)).astype(int)
                out[rr, cols] += hist[r, c, o]
    peak = out.max()
    return (out / peak if peak > 0 else out).astype(np.float32)


@pytest.mark.parametrize("orientations, cell", [(9, (8, 8)), (7, (5, 9)), (4, (2, 2)),
                                                (12, (3, 3)), (1, (16, 16))])
def test_hog_picture_and_descriptor_are_unchanged_in_bands(
    kodak_rgb, orientations, cell, monkeypatch
):
    from boda.edges import _hog, hog, hog_image

    image = kodak_rgb[:203, :181]
    expected = _old_hog_picture(image, orientations, cell)
    whole = hog(image, orientations, cell, (2, 2))
    monkeypatch.setattr(_hog, "_BAND_PIXELS", 1)  # one row of cells per band
    calls = []
    got = hog_image(image, orientations, cell, progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(hog(image, orientations, cell, (2, 2)), whole)
    total = 203 // cell[0] + orientations
    assert calls == [(i, total) for i in range(1, total + 1)]


def test_non_maximum_suppression_in_bands_equals_one_pass(kodak_rgb, monkeypatch):
    from boda.edges import _canny, canny_gradient, non_maximum_suppression

    gy, gx, magnitude = canny_gradient(kodak_rgb[:157, :211], 1.0)
    whole = non_maximum_suppression(gy, gx, magnitude, 0.05)
    monkeypatch.setattr(_canny, "_BAND_PIXELS", 1)
    np.testing.assert_array_equal(non_maximum_suppression(gy, gx, magnitude, 0.05), whole)
    assert whole.any()


def test_canny_peak_memory_is_bounded(kodak_rgb):
    from boda.core.image import to_gray
    from boda.edges import canny

    gray = np.tile(to_gray(kodak_rgb), (3, 3))  # 1500 x 1500
    assert peak_bytes(lambda: canny(gray)) < 9.5 * gray.nbytes  # was 12.5x


@pytest.mark.parametrize("method", ["sobel", "canny", "log", "orientation", "hog"])
def test_edges_cli_writes_what_draw_edges_draws_from_the_rgb_image(tmp_path, method):
    """The CLI reduces to luma right after reading (all methods but hog): same picture."""
    from boda.edges import draw_edges
    from boda.io import write_image

    src = tmp_path / "p3.jpg"
    rng = np.random.default_rng(3)
    pixels = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(src, quality=90, icc_profile=PROFILES["p3 gamma 2.2"][0])
    out = tmp_path / f"{method}.png"
    result = runner.invoke(app, ["edges", str(src), "-m", method, "-o", str(out)])
    assert result.exit_code == 0, result.output
    reference = write_image(tmp_path / "ref.png", draw_edges(read_image(src), method).picture)
    assert out.read_bytes() == reference.read_bytes()


# ------------------------------------------------------------------ progress
def test_refocus_lens_reports_each_layer_and_renders_the_same(kodak_rgb):
    from boda.edit import refocus

    image = kodak_rgb[:96, :128]
    depth = np.linspace(0, 1, 128, dtype=np.float32)[None, :].repeat(96, 0)
    calls = []
    with_progress = refocus(image, depth, focus_depth=0.5, aperture=4,
                            progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_array_equal(with_progress, refocus(image, depth, focus_depth=0.5,
                                                          aperture=4))
    total = calls[-1][1]
    assert total > 2 and calls == [(i, total) for i in range(1, total + 1)]


def test_draw_edges_passes_progress_to_hog_and_orientation_only(kodak_rgb):
    from boda.edges import draw_edges

    for method, reports in (("hog", True), ("orientation", True), ("sobel", False)):
        calls: list[tuple[int, int]] = []
        draw_edges(kodak_rgb[:64, :64], method, progress=lambda d, t, c=calls: c.append((d, t)))
        assert bool(calls) == reports
        assert not calls or calls[-1][0] == calls[-1][1]


def test_orientation_image_in_bands_equals_one_pass(kodak_rgb, monkeypatch):
    from boda.edges import _orientation, orientation_image

    image = kodak_rgb[:61, :83]
    whole = orientation_image(image)
    monkeypatch.setattr(_orientation, "_BAND_PIXELS", 1)  # one row per band
    calls = []
    banded = orientation_image(image, progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_array_equal(banded, whole)
    assert calls == [(i, 61) for i in range(1, 62)]
    # the colouring temporaries take a band, not the image (was 18x the gray image)
    gray = np.tile(image[..., 1], (12, 12))
    assert peak_bytes(lambda: orientation_image(gray)) < 12 * gray.nbytes
