"""Hashes, quality measures, edge steps, colour plots and io with inputs a user gets wrong.

Each case once gave a silently wrong number (a NaN hash equal to a black
frame's, a NaN SSIM) or a raw exception instead of a boda error.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from measure_helpers import NON_FINITE
from measure_helpers import smooth_image as _image

import boda.color as bc
from boda.duplicates import dhash, phash, pixel_hash
from boda.edges import hog, hog_image, hysteresis_threshold, non_maximum_suppression
from boda.errors import InvalidImageError, InvalidParameterError
from boda.io import encode_jpeg, write_output
from boda.quality import blur_effect, entropy, exposure_stats, ssim


def _with(img: np.ndarray, value: float) -> np.ndarray:
    out = img.copy()
    out[7, 11, ...] = value
    return out


@pytest.mark.parametrize("fn", [phash, dhash])
@pytest.mark.parametrize("bad", NON_FINITE)
def test_hashes_refuse_non_finite_images(rng, fn, bad):
    # One NaN pixel used to hash to 0, the hash of every black frame.
    img = _image(rng)
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        fn(_with(img, bad))
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        fn(_with(img[..., 0], bad))


@pytest.mark.parametrize(
    ("shape", "named"), [((4, 5, 4), "(4, 5, 4)"), ((0, 5, 3), "(0, 5, 3)"), ((2, 0), "(2, 0)")]
)
def test_pixel_hash_errors_name_the_whole_shape(shape, named):
    # The uint8 fast path checked a 1x1 slice and named *its* shape, e.g. (1, 1, 4).
    with pytest.raises(InvalidImageError, match=re.escape(named)):
        pixel_hash(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("fn", [exposure_stats, entropy])
@pytest.mark.parametrize("bad", NON_FINITE)
def test_exposure_measures_refuse_non_finite_images(rng, fn, bad):
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        fn(_with(_image(rng), bad))


def test_exposure_checks_pixels_outside_the_histogram_sample():
    # Large images are histogrammed on a subsample; a NaN off the sample still counts.
    img = np.full((1200, 1200), 0.5, np.float32)
    img[1, 1] = np.nan
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        exposure_stats(img)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan")])
def test_ssim_refuses_non_positive_sigma(rng, sigma):
    img = _image(rng)
    with pytest.raises(InvalidParameterError, match="sigma"):
        ssim(img, img, sigma=sigma)


@pytest.mark.parametrize("data_range", [0.0, -1.0, float("nan")])
def test_ssim_refuses_non_positive_data_range(rng, data_range):
    img = _image(rng)
    with pytest.raises(InvalidParameterError, match="data_range"):
        ssim(img, img, data_range=data_range)


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.14])
def test_ssim_small_sigma_is_a_number(rng, sigma):
    # A window radius of 0 used to crop the map to nothing (mean of empty = NaN).
    img = _image(rng)
    other = np.clip(img + 0.1 * rng.random(img.shape), 0, 1).astype(np.float32)
    assert ssim(img, img, sigma=sigma) == pytest.approx(1.0)
    value, smap = ssim(img, other, sigma=sigma, full=True)
    assert np.isfinite(value) and 0 < value < 1
    assert value == pytest.approx(float(smap.mean()))


@pytest.mark.parametrize("h_size", [2.5, 11.0, "11", True])
def test_blur_effect_refuses_non_integer_h_size(rng, h_size):
    with pytest.raises(InvalidParameterError, match="h_size"):
        blur_effect(_image(rng), h_size=h_size)


def test_blur_effect_accepts_numpy_integer_h_size(rng):
    img = _image(rng)
    assert blur_effect(img, h_size=np.int64(7)) == blur_effect(img, h_size=7)


def test_hysteresis_refuses_colour_images_and_inverted_thresholds(rng):
    rgb = _image(rng)
    with pytest.raises(InvalidImageError, match="2-D"):
        hysteresis_threshold(rgb, 0.1, 0.5)
    with pytest.raises(InvalidParameterError, match="swap"):
        hysteresis_threshold(rgb[..., 0], 0.5, 0.1)
    assert hysteresis_threshold(rgb[..., 0], 0.1, 0.5).shape == rgb.shape[:2]


def test_non_maximum_suppression_refuses_mismatched_arrays(rng):
    g = _image(rng)[..., 0]
    with pytest.raises(InvalidImageError, match="one shape"):
        non_maximum_suppression(g, g[:10], g)
    with pytest.raises(InvalidImageError, match="one shape"):
        non_maximum_suppression(g[..., None], g[..., None], g[..., None])


def test_hog_takes_an_int_cell_size(rng):
    img = _image(rng)
    np.testing.assert_array_equal(
        hog(img, pixels_per_cell=8, cells_per_block=2),
        hog(img, pixels_per_cell=(8, 8), cells_per_block=(2, 2)),
    )
    np.testing.assert_array_equal(hog_image(img, pixels_per_cell=8),
                                  hog_image(img, pixels_per_cell=(8, 8)))


@pytest.mark.parametrize("cell", ["8", "88", (8,), (8, 8, 8), (0, 8), None, -4, 0])
def test_hog_refuses_bad_cell_sizes(rng, cell):
    with pytest.raises(InvalidParameterError, match="pixels_per_cell"):
        hog(_image(rng), pixels_per_cell=cell)


@pytest.mark.parametrize("max_pixels", [0, -5, 2.5])
def test_pixel_chromaticities_refuses_bad_max_pixels(rng, max_pixels):
    with pytest.raises(InvalidParameterError, match="max_pixels"):
        bc.pixel_chromaticities(_image(rng), max_pixels=max_pixels)


@pytest.mark.parametrize("step", [0, -1.0, float("nan"), float("inf")])
def test_spectral_locus_refuses_bad_steps(step):
    with pytest.raises(InvalidParameterError, match="step"):
        bc.spectral_locus(step=step)


def test_spectral_locus_refuses_non_finite_ends():
    with pytest.raises(InvalidParameterError, match="start and stop"):
        bc.spectral_locus(start=float("nan"))


@pytest.mark.parametrize("max_side", [0, -3, 2.5, True])
def test_encode_jpeg_refuses_bad_max_side(rng, max_side):
    with pytest.raises(InvalidParameterError, match="max_side"):
        encode_jpeg(_image(rng), max_side=max_side)


def test_encode_jpeg_max_side_still_shrinks(rng):
    assert encode_jpeg(_image(rng), max_side=np.int64(16))[:2] == b"\xff\xd8"


@pytest.mark.parametrize("data", [5, None, [1, 2], np.zeros(3)])
def test_write_output_refuses_data_that_is_not_bytes_or_text(tmp_path, data):
    target = tmp_path / "sub" / "out.bin"
    with pytest.raises(InvalidParameterError, match="bytes or text"):
        write_output(target, data)
    assert not target.parent.exists()  # nothing created on the way


@pytest.mark.parametrize("data", [b"abc", bytearray(b"abc"), memoryview(b"abc"), "abc"])
def test_write_output_still_writes_bytes_and_text(tmp_path, data):
    assert write_output(tmp_path / "out.bin", data).read_bytes() == b"abc"


def test_analyze_takes_thresholds_as_a_mapping_and_refuses_other_things():
    from boda.quality import QualityThresholds, analyze

    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    as_dict = analyze(img, {"blurry": 0.5, "dark": 0.7})
    assert as_dict.flags == analyze(img, QualityThresholds(blurry=0.5, dark=0.7)).flags
    with pytest.raises(InvalidParameterError, match="unknown thresholds"):
        analyze(img, {"blury": 0.5})
    with pytest.raises(InvalidParameterError, match="QualityThresholds"):
        analyze(img, 0.5)


def test_derivative_axis_must_be_a_whole_number():
    from boda.filters import sobel

    img = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    np.testing.assert_array_equal(sobel(img, np.int64(1)), sobel(img, 1))
    for axis in (1.0, True, "1"):
        with pytest.raises(InvalidParameterError, match="axis"):
            sobel(img, axis)
