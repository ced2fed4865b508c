"""boda.quality with arguments a user gets wrong: boda errors, never NaN or a raw traceback.

Each case once gave a silently wrong number (a NaN MSE, PSNR or SSIM for one NaN
pixel or a NaN ``data_range``, the quantisation floor for a uint8 image's noise) or
a numpy/Python exception instead of a boda error naming the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
from measure_helpers import NON_FINITE
from measure_helpers import smooth_image as _image

from boda.errors import InvalidImageError, InvalidParameterError
from boda.quality import (
    QualityThresholds,
    analyze,
    blur_effect,
    compare,
    detail_ratio,
    fft_high_frequency,
    laplacian_variance,
    mse,
    noise_variance,
    psnr,
    sharpness,
    ssim,
    tong_blur,
    wavelet_energy,
)


@pytest.mark.parametrize("fn", [mse, psnr, ssim, compare])
@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize("which", ["image", "reference"])
def test_reference_measures_refuse_non_finite_pixels(rng, fn, bad, which):
    # One NaN pixel made MSE, PSNR and SSIM NaN without a word.
    img = _image(rng)
    spoiled = img.copy()
    spoiled[7, 11] = bad
    pair = (spoiled, img) if which == "image" else (img, spoiled)
    with pytest.raises(InvalidImageError, match=f"{which} holds NaN or infinite"):
        fn(*pair)


@pytest.mark.parametrize("data_range", [0.0, -1.0, float("nan"), float("inf"), "1", True])
def test_psnr_refuses_a_data_range_that_is_not_a_positive_number(rng, data_range):
    # NaN gave a NaN PSNR (the check was ``data_range <= 0``), "1" a TypeError.
    img = _image(rng)
    with pytest.raises(InvalidParameterError, match="data_range"):
        psnr(img, img * 0.9, data_range=data_range)
    with pytest.raises(InvalidParameterError, match="data_range"):
        ssim(img, img * 0.9, data_range=data_range)


def test_psnr_takes_numpy_and_integer_data_ranges(rng):
    img = _image(rng)
    other = img * np.float32(0.9)
    assert psnr(img, other, data_range=np.float32(1.0)) == psnr(img, other)
    assert psnr(img * 255, other * 255, data_range=255) == pytest.approx(psnr(img, other))


def test_noise_variance_converts_its_input_as_every_measure_does(kodak_rgb):
    # uint8 was taken as 0-255 floats (giving the quantisation floor), RGB raised
    # "too many values to unpack", and NaN gave a number.
    gray = kodak_rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    expected = noise_variance(gray)
    assert expected > (1 / 255) ** 2 / 12
    assert noise_variance(kodak_rgb) == pytest.approx(expected, rel=1e-4)
    as_uint8 = np.round(gray * 255).astype(np.uint8)
    assert noise_variance(as_uint8) == pytest.approx(expected, rel=0.25)  # + rounding noise
    spoiled = gray.copy()
    spoiled[3, 3] = np.nan
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        noise_variance(spoiled)
    with pytest.raises(InvalidImageError, match="not in \\[0, 1\\]"):
        noise_variance(gray * 255)


@pytest.mark.parametrize("side", ["640", 640.5, float("nan"), True, 7])
def test_reference_side_must_be_a_whole_number(rng, side):
    with pytest.raises(InvalidParameterError, match="reference_side"):
        laplacian_variance(_image(rng), reference_side=side)


def test_reference_side_takes_numpy_integers(rng):
    img = _image(rng)
    assert laplacian_variance(img, reference_side=np.int64(32)) == laplacian_variance(
        img, reference_side=32
    )


@pytest.mark.parametrize("cutoff", ["0.25", None, True, float("nan")])
def test_fft_cutoff_must_be_a_number(rng, cutoff):
    with pytest.raises(InvalidParameterError, match="cutoff"):
        fft_high_frequency(_image(rng), cutoff=cutoff)


@pytest.mark.parametrize(("name", "value"), [
    ("threshold", float("nan")), ("threshold", "35"), ("threshold", None),
    ("min_zero", float("nan")), ("min_zero", "x"),
])
def test_tong_parameters_must_be_numbers(rng, name, value):
    # A NaN threshold found no edge and called every image blurred.
    img = _image(rng, (64, 64))
    with pytest.raises(InvalidParameterError, match=name):
        tong_blur(img, **{name: value})


@pytest.mark.parametrize("threshold", [float("nan"), "0.5", True])
def test_sharpness_threshold_must_be_a_number(rng, threshold):
    # NaN never flagged, True flagged as 1.0, "0.5" was quietly converted.
    with pytest.raises(InvalidParameterError, match="threshold"):
        sharpness(_image(rng), threshold)


def test_sharpness_threshold_takes_numpy_numbers(rng):
    img = _image(rng)
    assert sharpness(img, np.float32(2.5)).is_blurry == sharpness(img, 2.5).is_blurry


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"tile": 32.0}, "tile"), ({"tile": "32"}, "tile"), ({"percentile": "90"}, "percentile"),
])
def test_detail_ratio_parameters_must_be_numbers(rng, kwargs, named):
    with pytest.raises(InvalidParameterError, match=named):
        detail_ratio(_image(rng), **kwargs)


@pytest.mark.parametrize("value", ["x", float("nan"), None, True])
def test_quality_thresholds_must_be_numbers(rng, value):
    # "x" raised TypeError inside analyze(); NaN never flagged.
    with pytest.raises(InvalidParameterError, match="blurry"):
        QualityThresholds(blurry=value)
    with pytest.raises(InvalidParameterError, match="dark"):
        analyze(_image(rng), {"dark": value})


def test_quality_thresholds_take_infinity_and_numpy_numbers(rng):
    never = QualityThresholds(dark=float("inf"), blurry=np.float32(0.5))
    assert analyze(np.zeros((32, 32), np.float32), never).flags["dark"] is False


@pytest.mark.parametrize("shape", [(3, 3), (2, 40), (40, 1)])
def test_blur_effect_refuses_images_without_an_interior(rng, shape):
    # Under 4 px a side there is no pixel inside the 2-pixel border the sums run
    # over: it returned 0.0, the sharpest possible verdict (scikit-image: NaN).
    with pytest.raises(InvalidParameterError, match="at least 4x4"):
        blur_effect(rng.random(shape))
    measures = sharpness(rng.random(shape), all_measures=True).measures
    assert np.isnan(measures["blur_effect"]) and np.isnan(measures["tong_per"])
    assert blur_effect(rng.random((4, 4))) >= 0.0  # one interior pixel: measured


@pytest.mark.parametrize("shape", [(5, 5), (65, 33), (1, 51), (51, 1), (64, 64)])
def test_relative_wavelet_energy_is_a_fraction(shape):
    # An odd side is padded by the transform; the padded row's detail energy was
    # divided by the unpadded image's energy: 1.28 for a 5x5 checkerboard, 1.96
    # for 1x51 stripes.
    checker = (np.indices(shape).sum(axis=0) % 2).astype(np.float32)
    value = wavelet_energy(checker, relative=True)
    assert 0.0 < value <= 1.0
    assert wavelet_energy(checker.T, relative=True) <= 1.0


def test_relative_wavelet_energy_of_even_sides_is_unchanged(rng):
    # For even sides the detail energy over sum((g - mean)^2) per coefficient (Parseval).
    gray = rng.random((48, 64)).astype(np.float32)
    centred = gray.astype(np.float64) - gray.astype(np.float64).mean()
    expected = wavelet_energy(gray, reference_side=None) / (np.sum(centred**2) / (24 * 32))
    assert wavelet_energy(gray, relative=True) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fn", [psnr, ssim])
@pytest.mark.parametrize("which", ["image", "reference"])
def test_integer_images_need_the_default_data_range(rng, fn, which):
    # uint8 is scaled to [0, 1] first: with data_range=255 (skimage's habit for uint8)
    # the PSNR of a 33 dB pair came out as 81 dB, its SSIM as 0.99999 for 0.996.
    a = (rng.random((32, 32)) * 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-10, 10, a.shape), 0, 255).astype(np.uint8)
    pair = (a, b.astype(np.float32)) if which == "image" else (a.astype(np.float32), b)
    with pytest.raises(InvalidParameterError, match=f"{which} is uint8.*leave data_range at 1"):
        fn(*pair, data_range=255)
    as_floats = fn(a.astype(np.float32), b.astype(np.float32), data_range=255)
    assert fn(a, b) == pytest.approx(as_floats, rel=1e-6)
