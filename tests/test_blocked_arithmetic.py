"""Whole-image arithmetic done in cache-sized blocks (and threads) for speed gives what
the straightforward computation gives: the float32 sRGB -> Lab path
(boda.color._lab_fast) to float32 accuracy and the same for any block size, thread
count or alignment; CIEDE2000 of images in blocks; Canny's border correction from its
distinct rows, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import boda.color as bc
from boda.color import _lab_fast
from boda.core import blocks
from boda.io import read_image


@pytest.mark.parametrize("illuminant", ["D65", "D50", "A"])
def test_float32_lab_is_within_a_thousandth_of_a_delta_e_of_float64(kodak_paths, illuminant):
    """The issue's bound (float32 error <= 1e-3 ΔE) with room: <= 3e-4 ΔE00 on photos."""
    for path in kodak_paths[:3]:
        rgb = read_image(path)
        fast = bc.srgb_to_lab(rgb, illuminant)
        exact = bc.srgb_to_lab(rgb.astype(np.float64), illuminant)
        assert fast.dtype == np.float32 and fast.shape == rgb.shape
        assert bc.delta_e_ciede2000(exact, fast.astype(np.float64)).max() <= 3e-4
        assert np.abs(fast - exact).max() <= 3e-4


def test_values_beyond_0_and_1_follow_the_extended_curves_as_in_float64():
    rgb = np.random.default_rng(0).uniform(-0.5, 1.5, (4000, 3)).astype(np.float32)
    np.testing.assert_allclose(
        bc.srgb_to_lab(rgb), bc.srgb_to_lab(rgb.astype(np.float64)), rtol=0, atol=3e-4
    )


@pytest.mark.parametrize("block", [992, 1000, 1024, 4096])
def test_block_size_threads_and_memory_alignment_change_nothing(monkeypatch, block):
    """Vector loops round their last few values in scalar code: each pixel must go
    through the vector code wherever its block ends, whatever the array's alignment."""
    rgb = np.random.default_rng(1).random((301, 257, 3), dtype=np.float32)
    one_go = bc.srgb_to_lab(rgb)
    monkeypatch.setattr(_lab_fast, "BLOCK_PIXELS", block)
    monkeypatch.setattr(_lab_fast, "_THREADED_PIXELS", 10_000)  # several threads
    monkeypatch.setattr(blocks, "usable_cores", lambda: 3)  # more threads than cores
    np.testing.assert_array_equal(bc.srgb_to_lab(rgb), one_go)
    for offset in (4, 8, 12):  # float32 data starting 4-12 bytes past an aligned address
        raw = np.zeros(rgb.nbytes + 64, np.uint8)
        shifted = raw[offset : offset + rgb.nbytes].view(np.float32).reshape(rgb.shape)
        shifted[...] = rgb
        np.testing.assert_array_equal(bc.srgb_to_lab(shifted), one_go)


def test_black_white_and_the_knee_gray_are_exact():
    rgb = np.array([[0, 0, 0], [1, 1, 1], [0.04045] * 3, [-0.0] * 3], np.float32)
    lab = bc.srgb_to_lab(rgb)
    np.testing.assert_array_equal(lab[[0, 3]], 0.0)
    np.testing.assert_array_equal(lab[1], [100.0, 0.0, 0.0])
    np.testing.assert_array_equal(lab[2, 1:], 0.0)
    gray = np.linspace(0, 1, 256, dtype=np.float32)[:, None].repeat(3, axis=1)
    assert np.abs(bc.srgb_to_lab(gray)[:, 1:]).max() <= 1e-4  # float32 rounding only


def test_nan_and_infinity_come_out_as_in_float64():
    """A NaN spoils its colour; an infinite component gives L* = ±inf as in float64
    (a matrix pass would have turned it into NaN: 0 * inf)."""
    rgb = np.array(
        [[np.nan, 0.5, 0.5], [np.inf, 0.5, 0.5], [-np.inf, 0, 0], [0.2, 0.4, 0.6]], np.float32
    )
    with np.errstate(invalid="ignore"):
        fast = bc.srgb_to_lab(rgb)
        exact = bc.srgb_to_lab(rgb.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(exact))
    np.testing.assert_array_equal(fast[1:3, 0], [np.inf, -np.inf])
    np.testing.assert_allclose(fast[3], exact[3], atol=3e-4)  # the finite colour unharmed


def test_any_shape_and_layout():
    rgb = np.random.default_rng(2).random((20, 30, 3), dtype=np.float32)
    whole = bc.srgb_to_lab(rgb)
    np.testing.assert_array_equal(bc.srgb_to_lab(rgb[:, ::2]), whole[:, ::2])  # strided
    np.testing.assert_array_equal(bc.srgb_to_lab(rgb[3, 4]), whole[3, 4])  # one colour
    assert bc.srgb_to_lab(np.zeros((0, 3), np.float32)).shape == (0, 3)
    assert bc.srgb_to_lab(rgb.astype(np.uint8)).dtype == np.float32  # integers: float32 path


def test_ciede2000_of_an_image_in_blocks_equals_the_formula_at_once(monkeypatch):
    """Blocks on several threads: the same ΔE00 pair by pair (to float64 rounding), the
    input's dtype and shape, and each block's own factors."""
    from boda.color import _difference

    rng = np.random.default_rng(3)
    lab1 = np.stack(
        [rng.uniform(0, 100, 24_000), rng.uniform(-90, 90, 24_000), rng.uniform(-90, 90, 24_000)],
        axis=-1,
    ).reshape(120, 200, 3)
    lab2 = lab1 + rng.normal(0, 3, lab1.shape)
    at_once = _difference._ciede2000(lab1, lab2, 1.0, 2.0, 1.5, False)
    monkeypatch.setattr(_difference, "_BLOCK_PAIRS", 1000)  # 24 blocks
    monkeypatch.setattr(_difference, "_PAIRS_PER_THREAD", 2000)
    monkeypatch.setattr(blocks, "usable_cores", lambda: 3)
    blocked = bc.delta_e_ciede2000(lab1, lab2, k_l=1.0, k_c=2.0, k_h=1.5)
    assert blocked.shape == (120, 200)
    np.testing.assert_allclose(blocked, at_once, rtol=1e-12, atol=0)
    as32 = bc.delta_e_ciede2000(lab1.astype(np.float32), lab2.astype(np.float32))
    assert as32.dtype == np.float32 and as32.shape == (120, 200)
    # a colour against an image (broadcast) is not cut into blocks, and agrees
    one = bc.delta_e_ciede2000(lab1[0, 0], lab2)
    np.testing.assert_allclose(
        one, _difference._ciede2000(np.broadcast_to(lab1[0, 0], lab2.shape), lab2, 1, 1, 1, False)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "sigma"), [((300, 500), 1.0), ((7, 9), 3.7), ((1000, 3), 0.5)])
def test_canny_border_correction_from_distinct_rows_equals_the_full_filter(dtype, shape, sigma):
    """Canny's smoothed all-ones image (scikit-image's bleed-over correction), made from
    its few distinct rows, is SciPy's full filter bit for bit: Canny stays
    pixel-identical to scikit-image."""
    from scipy import ndimage

    from boda.edges._canny import _smoothed_ones

    full = ndimage.gaussian_filter(np.ones(shape, dtype), sigma, mode="constant", truncate=4.0)
    np.testing.assert_array_equal(_smoothed_ones(shape, np.dtype(dtype), sigma), full)


def test_float64_lab_in_blocks_equals_the_step_by_step_conversion(monkeypatch):
    """float64 goes through the blocks too: within 1e-12 of NumPy's step-by-step
    conversion (cv2.pow is within 2e-15 of np.power), on the extended range, the same
    for any block size, and float64 out."""
    from boda.color._lab import SRGB_TO_XYZ, matmul3, srgb_to_linear, xyz_to_lab

    rgb = np.random.default_rng(4).uniform(-0.5, 1.5, (211, 157, 3))
    blocked = bc.srgb_to_lab(rgb)
    assert blocked.dtype == np.float64
    stepwise = xyz_to_lab(matmul3(srgb_to_linear(rgb), SRGB_TO_XYZ))
    np.testing.assert_allclose(blocked, stepwise, rtol=0, atol=1e-12)
    monkeypatch.setattr(_lab_fast, "BLOCK_PIXELS", 1000)
    monkeypatch.setattr(_lab_fast, "_THREADED_PIXELS", 5000)
    np.testing.assert_array_equal(bc.srgb_to_lab(rgb), blocked)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cie1976_adds_the_squares_as_numpys_sum_did(dtype):
    """ΔE*ab's three squares added in np.sum's order: the same floats as
    ``np.sqrt(np.sum((a - b) ** 2, axis=-1))``, types and shapes included."""
    rng = np.random.default_rng(5)
    a, b = (rng.uniform(-120, 120, (64, 48, 3)).astype(dtype) for _ in range(2))
    reference = np.sqrt(np.sum((a - b) ** 2, axis=-1))
    got = bc.delta_e_cie1976(a, b)
    assert got.dtype == reference.dtype
    np.testing.assert_array_equal(got, reference)
    np.testing.assert_array_equal(
        bc.delta_e_cie1976(a[0, 0], b), np.sqrt(np.sum((a[0, 0] - b) ** 2, -1))
    )
    one = bc.delta_e_cie1976([50.0, 0.0, 0.0], [50.0, 3.0, 4.0])
    assert type(one) is np.float64 and one == 5.0
