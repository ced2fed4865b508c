"""What a notebook user passes for an image: the mistakes boda now names.

Each case was once silently wrong (a 0-255 float photo measured as blown out,
a palette PIL image measured as its gray index map, [51, 102, 153] read as
51 times white) or a confusing error.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import boda.color as bc
from boda.core.image import as_float_image
from boda.edit import check_depth, read_depth
from boda.errors import InvalidImageError
from boda.quality import analyze, psnr, ssim


@pytest.fixture
def photo(data_dir) -> np.ndarray:
    return np.asarray(Image.open(data_dir / "kodak" / "kodim23.png").reduce(4))


def test_float_pixels_on_a_0_255_scale_are_refused(photo):
    as255 = photo.astype(np.float32)
    with pytest.raises(InvalidImageError, match=r"values up to \d+.*divide by 255"):
        analyze(as255)
    with pytest.raises(InvalidImageError, match="divide by 255"):
        bc.colorfulness(as255)
    # the same values as uint8, or divided by 255, are what they should be
    assert analyze(photo).scores == analyze(as255 / 255).scores
    # a little overshoot (sharpening, colour conversions) is not a 0-255 image
    as_float_image(np.full((8, 8, 3), 1.4, np.float32))


def test_a_data_range_says_another_scale_on_purpose(photo):
    as255 = photo.astype(np.float64)
    noisy = np.clip(as255 + 3.0, 0, 255)
    assert psnr(noisy, as255, data_range=255) == pytest.approx(psnr(noisy / 255, as255 / 255))
    assert ssim(noisy, as255, data_range=255) == pytest.approx(ssim(noisy / 255, as255 / 255))
    with pytest.raises(InvalidImageError, match="divide by 255"):
        psnr(noisy, as255)


def test_depth_maps_in_metres_are_not_pixels(tmp_path):
    depth = np.linspace(0.5, 40.0, 64, dtype=np.float32).reshape(8, 8)
    np.save(tmp_path / "depth.npy", depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "depth.npy"), depth)
    np.testing.assert_array_equal(check_depth(depth, (8, 8)), depth)


def test_a_file_path_is_not_pixels(tmp_path):
    for path in ("photo.jpg", tmp_path / "photo.jpg"):
        with pytest.raises(InvalidImageError, match=r"file path .*boda.io.read_image\(path\)"):
            as_float_image(path)


def test_an_rgba_array_gets_a_hint_about_alpha_not_channel_order():
    with pytest.raises(InvalidImageError, match="4 channels .RGBA.*composite"):
        as_float_image(np.zeros((4, 4, 4), np.float32))


def test_pil_images_are_converted_by_their_mode(photo):
    pil = Image.fromarray(photo)
    palette = pil.quantize(16)  # mode "P": np.asarray would give the index map
    want = np.asarray(palette.convert("RGB")).astype(np.float32) / 255
    np.testing.assert_array_equal(as_float_image(palette), want)
    assert bc.colorfulness(palette) > 20  # its gray index map measured 0
    np.testing.assert_array_equal(as_float_image(pil), photo.astype(np.float32) / 255)
    # transparency over white, as read_image does with files; kept on request
    rgba = Image.new("RGBA", (2, 1), (255, 0, 0, 0))
    np.testing.assert_array_equal(as_float_image(rgba), np.ones((1, 2, 3), np.float32))
    assert as_float_image(rgba, allow_alpha=True).shape == (1, 2, 4)
    cmyk = pil.convert("CMYK")
    np.testing.assert_array_equal(
        as_float_image(cmyk), np.asarray(cmyk.convert("RGB")).astype(np.float32) / 255
    )


def test_colour_values_typed_as_python_ints_are_refused_with_the_fix():
    with pytest.raises(InvalidImageError, match=r"up to 153.*np.uint8"):
        bc.srgb_to_lab([51, 102, 153])
    lab = bc.srgb_to_lab(np.array([51, 102, 153], np.uint8))
    assert lab[0] == pytest.approx(42.0, abs=0.1)
    # 0/1 integers are unambiguous, and Lab given as ints is not RGB
    np.testing.assert_allclose(bc.srgb_to_lab([1, 1, 1]), [100, 0, 0], atol=1e-3)
    assert bc.lab_to_srgb([50, 0, 0]).shape == (3,)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_measures_refuse_nan_instead_of_returning_it(bad):
    # colorfulness returned nan, canny an empty edge map, pixel_hash a RuntimeWarning
    from boda.duplicates import pixel_hash
    from boda.edges import canny

    img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    img[5, 7, 1] = bad
    for measure in (
        bc.colorfulness, bc.lightness_stats, bc.is_grayscale, bc.color_summary,
        bc.dominant_colors, canny, pixel_hash,
    ):
        with pytest.raises(InvalidImageError, match="NaN or infinite"):
            measure(img)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finiteness_check_sees_every_layout(bad):
    # The check sums through cv2.sumElems where OpenCV can read the array
    # (float32, up to 4 channels, contiguous pixels) and numpy otherwise.
    from boda.core.image import finite_pixels

    rng = np.random.default_rng(1)
    base = rng.random((40, 30, 4)).astype(np.float32)
    layouts = {
        "gray": lambda a: np.ascontiguousarray(a[..., 0]),
        "rgb": lambda a: np.ascontiguousarray(a[..., :3]),
        "rgba": lambda a: a,
        "rgb view of rgba": lambda a: a[..., :3],
        "every other column": lambda a: a[:, ::2, 0],
        "row slice": lambda a: a[3:20, :, 0],
        "float64": lambda a: a[..., 0].astype(np.float64),
        "five channels": lambda a: np.concatenate([a, a[..., :1]], axis=2),
    }
    for name, layout in layouts.items():
        assert finite_pixels(layout(base)) is not None, name
        damaged = base.copy()
        damaged[3, 4, :] = bad
        with pytest.raises(InvalidImageError, match="NaN or infinite"):
            finite_pixels(layout(damaged))
            pytest.fail(f"{name}: {bad} not seen")


def test_scan_measures_check_pixels_once_and_trust_ends_with_them():
    from boda.core.image import finite_pixels, trusted_pixels
    from boda.scan import analyze_pixels

    img = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    scores, _ = analyze_pixels(img)
    assert scores["colorfulness"] > 0
    img[5, 7, 1] = np.nan
    with pytest.raises(InvalidImageError, match="pixels holds NaN"):
        analyze_pixels(img)
    with pytest.raises(InvalidImageError, match="on a 0-255 scale|divide by 255"):
        analyze_pixels(np.full((64, 64, 3), 200.0, np.float32))
    with trusted_pixels():
        assert finite_pixels(img) is img  # unchecked inside...
    with pytest.raises(InvalidImageError):
        finite_pixels(img)  # ...checked again after, even after an error inside
    with pytest.raises(KeyError), trusted_pixels():
        raise KeyError("a measure failed")
    with pytest.raises(InvalidImageError):
        finite_pixels(img)


def test_read_image_of_an_array_is_a_boda_error_with_the_fix(photo):
    from boda.errors import InvalidParameterError
    from boda.io import read_image

    with pytest.raises(InvalidParameterError, match="needs a file path.*as_float_image"):
        read_image(photo)
    with pytest.raises(InvalidParameterError, match="got NoneType"):
        read_image(None)


def test_analyze_file_takes_a_plain_path(data_dir, tmp_path):
    from boda.scan import analyze_file

    path = data_dir / "kodak" / "kodim23.png"
    record = analyze_file(path)
    assert record.status == "ok" and record.relpath == b"kodim23.png"
    assert record.scores == analyze_file(str(path), 640).scores  # the scan's default side
    missing = analyze_file(tmp_path / "gone.jpg")
    assert missing.status == "error" and "No such file" in missing.error
