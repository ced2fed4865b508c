"""boda.edit.inpaint: registry, methods against references, masks, CLI."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from boda.cli import app
from boda.edit import _inpaint as inpaint_module
from boda.edit import (
    available_inpaint_methods,
    inpaint,
    random_irregular_mask,
    register_inpaint_method,
    to_hole_mask,
)
from boda.errors import InvalidImageError, InvalidParameterError

cv2 = pytest.importorskip("cv2")
METHODS = ("telea", "telea-opencv", "ns", "biharmonic", "exemplar")


@pytest.fixture(scope="module")
def crop(kodak_rgb) -> np.ndarray:
    return np.ascontiguousarray(kodak_rgb[100:196, 150:270])


@pytest.fixture(scope="module")
def hole(crop) -> np.ndarray:
    mask = np.zeros(crop.shape[:2], dtype=bool)
    mask[30:50, 40:70] = True
    mask[70:80, 10:100] = True
    return mask


def test_registry_lists_and_rejects():
    assert set(METHODS) <= set(available_inpaint_methods())
    with pytest.raises(InvalidParameterError, match="choose from"):
        inpaint(np.zeros((8, 8)), np.eye(8, dtype=bool), method="nope")
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_inpaint_method("telea", lambda image, mask: image)


def test_registered_method_is_called_with_the_contract(monkeypatch, crop, hole):
    seen = {}

    def constant(image, mask, *, value=0.25):
        seen.update(shape=image.shape, dtype=image.dtype, mask=mask.dtype)
        return np.full_like(image, value)

    monkeypatch.setitem(inpaint_module._REGISTRY, "constant", constant)
    out = inpaint(crop, hole, method="constant", value=0.5)
    assert seen == {"shape": crop.shape, "dtype": np.float32, "mask": np.bool_}
    assert np.all(out[hole] == 0.5)
    assert np.array_equal(out[~hole], crop[~hole])


@pytest.mark.parametrize("method", METHODS)
def test_holes_filled_known_pixels_untouched(method, crop, hole):
    damaged = crop.copy()
    damaged[hole] = 0.0
    out = inpaint(damaged, hole, method=method)
    assert out.dtype == np.float32 and out.shape == crop.shape
    assert np.array_equal(out[~hole], damaged[~hole])
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    # The fill comes from the surroundings: far closer to the truth than the black hole.
    err = np.abs(out[hole] - crop[hole]).mean()
    assert err < 0.35 * np.abs(damaged[hole] - crop[hole]).mean()


@pytest.mark.parametrize("method", ["telea-opencv", "ns"])
def test_opencv_methods_agree_with_cv2(method, crop, hole):
    flag = cv2.INPAINT_TELEA if method == "telea-opencv" else cv2.INPAINT_NS
    mask8 = hole.astype(np.uint8) * 255
    # Same as OpenCV on 16-bit data (what the method hands to it) ...
    img16 = (crop * 65535).round().astype(np.uint16)
    ref16 = np.stack(
        [cv2.inpaint(np.ascontiguousarray(img16[:, :, c]), mask8, 4, flag) for c in range(3)], 2
    )
    out = inpaint(img16, hole, method=method, radius=4)
    np.testing.assert_allclose(out, ref16 / np.float32(65535), atol=1e-6)
    # ... and within a few 8-bit levels of OpenCV's usual 3-channel 8-bit call.
    img8 = (crop * 255).round().astype(np.uint8)
    ref8 = cv2.inpaint(img8, mask8, 4, flag).astype(np.float32) / 255
    diff = np.abs(inpaint(img8, hole, method=method, radius=4) - ref8)[hole]
    assert diff.mean() < 2.0 / 255
    assert diff.max() <= 8.0 / 255


@pytest.mark.parametrize("radius", [2, 4, 6])
def test_own_telea_agrees_with_opencv(crop, hole, radius):
    img16 = (crop * 65535).round().astype(np.uint16)
    mask8 = hole.astype(np.uint8) * 255
    ref = np.stack(
        [cv2.inpaint(np.ascontiguousarray(img16[:, :, c]), mask8, radius, cv2.INPAINT_TELEA)
         for c in range(3)], 2
    ) / 65535.0
    # Without the first-order term (default), the fill is OpenCV's up to its tiny
    # normalised term and the distance transform standing in for its outer march.
    plain = inpaint(img16, hole, method="telea", radius=radius)
    diff = np.abs(plain - ref)[hole]
    assert diff.mean() < 0.5 / 255 and diff.max() < 16 / 255
    # With it (the paper's eq. 3), still close on these thin holes.
    first_order = inpaint(img16, hole, method="telea", radius=radius, gradient=True)
    assert np.abs(first_order - ref)[hole].mean() < 6 / 255


@pytest.mark.parametrize("hole_at", ["centre", "corner"])
def test_telea_on_a_ramp(hole_at):
    yy, xx = np.mgrid[0:48, 0:64]
    ramp = (0.1 + 0.008 * xx + 0.005 * yy).astype(np.float32)
    hole = np.zeros(ramp.shape, bool)
    if hole_at == "centre":
        hole[16:32, 20:40] = True
    else:
        hole[:12, :15] = True
    exact = inpaint(ramp, hole, method="telea", radius=3, gradient=True)
    assert np.abs(exact - ramp)[hole].max() < 1e-5  # first-order term: linear data is exact
    plain = np.abs(inpaint(ramp, hole, method="telea", radius=3) - ramp)[hole]
    assert plain.max() > 1e-3  # zeroth order: close, not exact
    err = np.abs(inpaint(ramp, hole, method="telea-opencv", radius=3) - ramp)[hole]
    assert 1e-3 < err.max() < 0.2 and err.mean() < 0.05  # OpenCV: zeroth order, not exact


def test_exemplar_copies_known_pixels_only(crop, hole):
    out = inpaint(crop, hole, method="exemplar", patch_size=7)
    known = {tuple(v) for v in crop[~hole].tolist()}
    assert all(tuple(v) in known for v in out[hole].tolist())


def test_exemplar_reproduces_a_periodic_texture():
    tile = np.random.default_rng(0).random((6, 6, 3)).astype(np.float32)
    texture = np.tile(tile, (10, 12, 1))  # 60 x 72, period 6
    hole = np.zeros(texture.shape[:2], bool)
    hole[20:34, 25:41] = True
    hole[0:5, 60:72] = True  # touching the border
    out = inpaint(texture, hole, method="exemplar", patch_size=9)
    assert np.array_equal(out, texture)


def test_exemplar_continues_a_straight_edge():
    img = np.zeros((40, 40), np.float32)
    img[:, 17:] = 1.0
    hole = np.zeros(img.shape, bool)
    hole[12:28, 10:26] = True
    out = inpaint(img, hole, method="exemplar", patch_size=7)
    assert np.array_equal(out, img)
    # Smooth methods blur the edge instead.
    assert np.abs(inpaint(img, hole, method="biharmonic") - img).max() > 0.1


def test_exemplar_bad_parameters():
    img = np.random.default_rng(1).random((8, 8)).astype(np.float32)
    hole = np.zeros((8, 8), bool)
    hole[3:5, 3:5] = True
    with pytest.raises(InvalidParameterError, match="patch"):
        inpaint(img, hole, method="exemplar", patch_size=9)
    with pytest.raises(InvalidParameterError, match="odd"):
        inpaint(img, hole, method="exemplar", patch_size=4)
    narrow = inpaint(img, hole, method="exemplar", patch_size=3, search_radius=2)
    assert np.array_equal(narrow[~hole], img[~hole])
    # Once a TypeError deep in the search (a float radius), a ValueError (NaN) or
    # silently patch 9 for 9.5.
    for options in ({"search_radius": 2.5}, {"search_radius": np.nan},
                    {"patch_size": np.nan}, {"patch_size": 3.5}, {"patch_size": "3"}):  # fmt: skip
        with pytest.raises(InvalidParameterError, match=next(iter(options))):
            inpaint(img, hole, method="exemplar", **options)


@pytest.mark.parametrize("method", ["telea", "telea-opencv", "ns"])
@pytest.mark.parametrize("radius", [np.nan, "5"])
def test_radius_that_is_not_a_number_is_refused(method, radius, crop, hole):
    # OpenCV's methods took NaN silently; telea raised a bare TypeError for "5".
    with pytest.raises(InvalidParameterError, match="radius"):
        inpaint(crop, hole, method=method, radius=radius)


@pytest.mark.parametrize("side", [2, 3, 4])
def test_default_telea_fills_images_smaller_than_its_radius(side):
    # inpaint()'s default method refused them, naming a radius nobody had given.
    img = np.random.default_rng(side).random((side, side, 3)).astype(np.float32)
    hole = np.zeros((side, side), bool)
    hole[side // 2, side // 2] = True
    out = inpaint(img, hole)
    assert np.array_equal(out[~hole], img[~hole])
    np.testing.assert_allclose(out, inpaint(img, hole, method="telea-opencv"), atol=0.05)


def test_mask_conventions(crop, hole):
    ref = inpaint(crop, hole, method="biharmonic")
    as_uint8 = hole.astype(np.uint8) * 255
    as_float = hole.astype(np.float32)
    as_rgb = np.repeat(as_uint8[:, :, None], 3, axis=2)
    as_uint16 = hole.astype(np.uint16) * 65535
    for mask in (as_uint8, as_float, as_rgb, as_uint16):
        assert np.array_equal(inpaint(crop, mask, method="biharmonic"), ref)
    # Anti-aliased / JPEG-ish mask values: >= half of full scale is a hole.
    soft = as_uint8.copy()
    soft[hole] = 200
    soft[~hole] = 40
    assert np.array_equal(to_hole_mask(soft, hole.shape), hole)


def test_bad_masks_say_what_to_change(crop, hole):
    with pytest.raises(InvalidImageError, match="resize the mask"):
        inpaint(crop, hole[:-1], method="telea")
    with pytest.raises(InvalidParameterError, match="every pixel"):
        inpaint(crop, np.ones(hole.shape, bool), method="telea")
    out = inpaint(crop, np.zeros(hole.shape, bool), method="telea")
    assert np.array_equal(out, crop) and out is not crop


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_0_1_integer_mask_is_refused_not_read_as_no_hole(crop, hole, dtype):
    # hole.astype(np.uint8) is at most 1/255 on the 255 scale: it filled nothing.
    with pytest.raises(InvalidImageError, match="only 0 and 1.*astype\\(bool\\)"):
        inpaint(crop, hole.astype(dtype), method="telea")
    with pytest.raises(InvalidImageError, match="only 0 and 1"):
        to_hole_mask(np.repeat(hole.astype(dtype)[:, :, None], 3, axis=2), hole.shape)
    # No hole at all, or a 0/255 mask, still reads as before.
    assert not to_hole_mask(np.zeros(hole.shape, dtype), hole.shape).any()
    full = hole.astype(dtype) * np.iinfo(dtype).max
    assert np.array_equal(to_hole_mask(full, hole.shape), hole)


def test_a_mask_with_nan_is_refused_not_read_as_known(crop, hole):
    mask = np.where(hole, np.nan, 0.0)  # NaN >= 0.5 is false: these holes were kept
    with pytest.raises(InvalidImageError, match="NaN"):
        inpaint(crop, mask, method="telea")


@pytest.mark.parametrize("method", METHODS)
def test_uint16_gray_and_rgba_inputs(method, crop, hole):
    img16 = (crop * 65535).round().astype(np.uint16)
    out16 = inpaint(img16, hole, method=method)
    assert out16.dtype == np.float32
    assert np.array_equal(out16[~hole], img16[~hole] / np.float32(65535))
    gray = crop.mean(axis=2)
    out_gray = inpaint(gray, hole, method=method)
    assert out_gray.shape == gray.shape
    rgba = np.concatenate([crop, np.ones(crop.shape[:2] + (1,), np.float32)], axis=2)
    out_rgba = inpaint(rgba, hole, method=method)
    assert out_rgba.shape == rgba.shape
    np.testing.assert_allclose(out_rgba[:, :, 3], 1.0, atol=1e-5)  # constant alpha stays
    np.testing.assert_allclose(out_rgba[:, :, :3], inpaint(crop, hole, method=method), atol=1e-6)


# --- irregular masks --------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.05, 0.2, 0.4, 0.6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_generator_hits_target_ratio(ratio, seed):
    mask = random_irregular_mask((120, 160), ratio, seed=seed)
    assert mask.dtype == np.bool_ and mask.shape == (120, 160)
    assert abs(mask.mean() - ratio) <= 0.01


@pytest.mark.parametrize("kind", ["strokes", "ellipses", "lines"])
def test_mask_generator_each_kind(kind):
    mask = random_irregular_mask((100, 100), 0.15, kinds=[kind], seed=7)
    assert abs(mask.mean() - 0.15) <= 0.01


def test_mask_generator_is_seeded():
    a = random_irregular_mask((96, 96), 0.25, seed=11)
    b = random_irregular_mask((96, 96), 0.25, seed=11)
    c = random_irregular_mask((96, 96), 0.25, seed=12)
    d = random_irregular_mask((96, 96), 0.25, seed=np.random.default_rng(11))
    assert np.array_equal(a, b) and np.array_equal(a, d)
    assert not np.array_equal(a, c)


def test_mask_generator_rejects_bad_arguments():
    with pytest.raises(InvalidParameterError, match="hole_ratio"):
        random_irregular_mask((10, 10), 1.0)
    with pytest.raises(InvalidParameterError, match="kinds"):
        random_irregular_mask((10, 10), 0.2, kinds=["blobs"])
    with pytest.raises(InvalidParameterError, match="shape"):
        random_irregular_mask((0, 10), 0.2)


# --- CLI ----------------------------------------------------------------------------------


_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _srgb_icc() -> bytes:
    return _ICC  # made once: the profile records its creation time


@pytest.fixture
def photo(tmp_path, crop, hole):
    img8 = (crop * 255).round().astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(img8).save(path, icc_profile=_srgb_icc())
    mask_path = tmp_path / "mask.png"
    Image.fromarray(hole.astype(np.uint8) * 255).save(mask_path)
    return path, mask_path, img8


@pytest.mark.parametrize("method", METHODS)
def test_cli_inpaint_png_keeps_profile_and_known_pixels(tmp_path, photo, hole, method):
    path, mask_path, img8 = photo
    out = tmp_path / "out.png"
    result = CliRunner().invoke(
        app, ["inpaint", str(path), "--mask", str(mask_path), "--method", method,
              "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["method"] == method and info["icc_profile"] is True
    assert abs(info["hole_fraction"] - hole.mean()) < 1e-9
    with Image.open(out) as written:
        assert written.info.get("icc_profile") == _srgb_icc()
        pixels = np.asarray(written)
    assert np.array_equal(pixels[~hole], img8[~hole])
    lib = inpaint(img8, hole, method=method)
    assert np.abs(pixels[hole] / 255.0 - lib[hole]).max() <= 0.5 / 255 + 1e-6


def test_cli_inpaint_exemplar_options(tmp_path, photo, hole):
    path, mask_path, img8 = photo
    out = tmp_path / "out.png"
    args = ["inpaint", str(path), "-m", str(mask_path), "--method", "exemplar",
            "--patch-size", "7", "--search-radius", "0", "-o", str(out), "--overwrite"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with Image.open(out) as written:
        pixels = np.asarray(written)
    lib = inpaint(img8, hole, method="exemplar", patch_size=7, search_radius=None)
    assert np.array_equal(pixels, np.round(lib * 255).astype(np.uint8))
    args[7] = "4"  # even patch size
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "odd" in result.output


def test_cli_inpaint_jpeg_quality(tmp_path, photo):
    path, mask_path, _ = photo
    sizes = {}
    for q in (30, 95):
        out = tmp_path / f"out{q}.jpg"
        result = CliRunner().invoke(
            app, ["inpaint", str(path), "-m", str(mask_path), "-o", str(out), "-q", str(q)]
        )
        assert result.exit_code == 0, result.output
        with Image.open(out) as written:
            assert written.format == "JPEG"
            assert written.info.get("icc_profile") == _srgb_icc()
        sizes[q] = out.stat().st_size
    assert sizes[30] < sizes[95]


def test_cli_inpaint_bad_inputs(tmp_path, photo):
    path, _, img8 = photo
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(small)
    runner = CliRunner()
    out = str(tmp_path / "o.png")
    result = runner.invoke(app, ["inpaint", str(path), "-m", str(small), "-o", out])
    assert result.exit_code == 2  # a usage error, as in cutout
    assert "resize the mask" in result.output
    full = tmp_path / "full.png"
    Image.fromarray(np.full(img8.shape[:2], 255, np.uint8)).save(full)
    result = runner.invoke(app, ["inpaint", str(path), "-m", str(full), "-o", out])
    assert result.exit_code == 2 and "every pixel" in result.output
    result = runner.invoke(app, ["inpaint", str(path), "-m", str(full), "-o", str(path)])
    assert result.exit_code == 2 and "overwrite" in result.output
    # a 0/1 mask saved as 8 bits (1 of 255) or drawn in dark gray: 0 % filled, exit 0
    for level in (1, 100):
        dim = np.zeros(img8.shape[:2], np.uint8)
        dim[5:15, 5:15] = level
        Image.fromarray(dim).save(tmp_path / "dim.png")
        result = runner.invoke(app, ["inpaint", str(path), "-m", str(tmp_path / "dim.png"),
                                     "-o", out])
        assert result.exit_code == 2, result.output
        assert "marks nothing to fill" in " ".join(result.output.split())
    assert not os.path.exists(out)


def test_cli_inpaint_rgba_and_16bit(tmp_path, crop, hole):
    rgba = np.concatenate([(crop * 255).astype(np.uint8),
                           np.full(crop.shape[:2] + (1,), 255, np.uint8)], axis=2)
    mask_path = tmp_path / "mask.png"
    Image.fromarray(hole.astype(np.uint8) * 255).save(mask_path)
    rgba_path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(rgba_path)
    gray16 = (crop.mean(axis=2) * 65535).astype(np.uint16)
    gray_path = tmp_path / "gray16.png"
    buf = io.BytesIO()
    Image.fromarray(gray16).save(buf, format="PNG")
    gray_path.write_bytes(buf.getvalue())
    for src in (rgba_path, gray_path):
        out = tmp_path / f"out_{src.stem}.png"
        args = ["inpaint", str(src), "-m", str(mask_path), "-o", str(out)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        with Image.open(out) as written:
            assert written.size == (crop.shape[1], crop.shape[0])
