"""boda.edges against scikit-image, OpenCV, analytic results and properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from boda.core.image import to_gray
from boda.edges import (
    EDGE_DENSITY_PARAMS,
    canny,
    edge_density,
    hog,
    hog_image,
    laplacian_of_gaussian,
    log_edges,
    non_maximum_suppression,
    orientation_image,
    zero_crossings,
)
from boda.errors import InvalidParameterError
from boda.filters import gradient_magnitude
from boda.io import read_image

skfeature = pytest.importorskip("skimage.feature")
cv2 = pytest.importorskip("cv2")

KODAK_NAMES = ["kodim01.png", "kodim03.png", "kodim23.png"]


@pytest.fixture(scope="module")
def grays(data_dir) -> dict[str, np.ndarray]:
    """Three Kodak photos in gray, 250x250 crops (fast, still real content)."""
    return {n: to_gray(read_image(data_dir / "kodak" / n))[100:350, 120:370] for n in KODAK_NAMES}


def _f1_with_tolerance(a: np.ndarray, b: np.ndarray) -> float:
    """F-score of two edge maps where a match may be 1 pixel (8-neighbour) away."""
    k = np.ones((3, 3), bool)
    precision = (a & ndimage.binary_dilation(b, k)).sum() / max(a.sum(), 1)
    recall = (b & ndimage.binary_dilation(a, k)).sum() / max(b.sum(), 1)
    return float(2 * precision * recall / (precision + recall))


# --------------------------------------------------------------------------- Canny


@pytest.mark.parametrize(
    ("sigma", "low", "high", "quantiles"),
    [(1.0, None, None, False), (2.0, 0.05, 0.15, False), (1.5, 0.7, 0.9, True)],
)
def test_canny_equals_scikit_image(grays, sigma, low, high, quantiles):
    for img in grays.values():
        ours = canny(img, sigma, low, high, use_quantiles=quantiles)
        ref = skfeature.canny(img, sigma, low, high, use_quantiles=quantiles)
        assert ref.sum() > 500
        assert np.array_equal(ours, ref)


@pytest.mark.parametrize(
    ("border", "sk_mode"),
    [("reflect", "reflect"), ("reflect101", "mirror"), ("replicate", "nearest")],
)
def test_canny_borders_equal_scikit_image_modes(grays, border, sk_mode):
    img = grays["kodim23.png"]
    ref = skfeature.canny(img, 2.0, mode=sk_mode)
    assert np.array_equal(canny(img, 2.0, border=border), ref)


def test_canny_agrees_with_opencv_within_one_pixel(grays):
    """OpenCV quantises the NMS direction to 4 sectors (we interpolate) and works
    on uint8 with integer Sobel sums, so maps differ by a few percent of edge
    pixels; with a 1-px matching tolerance the F-score stays above 0.95."""
    for img in grays.values():
        u8 = cv2.GaussianBlur(np.round(img * 255).astype(np.uint8), (0, 0), 1.4)
        for low, high in ((20, 50), (40, 100)):
            ref = cv2.Canny(u8, low, high, L2gradient=True) > 0
            ours = canny(u8, 0.0, low / 255, high / 255)  # uint8 -> [0, 1]: thresholds / 255
            inner = (slice(1, -1), slice(1, -1))
            assert _f1_with_tolerance(ours[inner], ref[inner]) > 0.95
            assert (ours[inner] != ref[inner]).mean() < 0.05


def test_canny_square_outline():
    square = np.zeros((40, 40), np.float32)
    square[10:30, 10:30] = 1
    edges = canny(square, 1.0)
    assert not edges[12:28, 12:28].any() and not edges[:8].any()
    # Each side is found on the pixels straddling it (both, when the step is
    # exactly symmetric: NMS keeps ties, as scikit-image does), never beside.
    for row in range(13, 27):
        assert edges[row, 9:11].any() and edges[row, 29:31].any()
        assert not edges[row, [8, 11, 28, 31]].any()
    assert not edges[0].any() and not edges[:, -1].any()


def test_canny_quantiles_equal_absolute_thresholds_at_those_percentiles(grays):
    from boda.edges import canny_gradient

    img = grays["kodim01.png"]
    magnitude = canny_gradient(img, 1.0)[2]
    low, high = np.percentile(magnitude, [85, 95])
    expected = canny(img, 1.0, float(low), float(high))
    assert np.array_equal(canny(img, 1.0, 0.85, 0.95, use_quantiles=True), expected)


def test_hysteresis_keeps_weak_pixels_only_when_connected_to_strong_ones():
    img = np.zeros((30, 60), np.float32)
    img[:, 20:] = 0.15  # weak step alone: magnitude ~0.6 at sigma 0 -> between thresholds
    img[:, 40:] = 1.0  # strong step
    weak_only = canny(img[:, :35], 0.0, 0.5, 2.0)
    assert not weak_only.any()
    both = canny(img, 0.0, 0.5, 2.0)
    assert both[5:25, 39:41].any() and not both[5:25, 18:22].any()


def test_nms_thins_a_blurred_line_to_one_pixel():
    img = np.zeros((21, 21), np.float32)
    img[:, 10] = 1.0
    img = ndimage.gaussian_filter(img, 2.0)
    from boda.edges import canny_gradient

    gy, gx, mag = canny_gradient(img, 0.0)
    kept = non_maximum_suppression(gy, gx, mag, 1e-4) > 0
    # Two ridges of the first derivative, one on each flank, each 1 px wide.
    assert all(kept[r].sum() == 2 for r in range(3, 18))


def test_canny_rejects_bad_thresholds():
    img = np.zeros((10, 10), np.float32)
    with pytest.raises(InvalidParameterError, match="must not exceed"):
        canny(img, 1.0, 0.5, 0.2)
    with pytest.raises(InvalidParameterError, match="quantile"):
        canny(img, 1.0, 0.5, 1.5, use_quantiles=True)
    with pytest.raises(InvalidParameterError, match="sigma"):
        canny(img, -1.0)


# --------------------------------------------------------------------------- LoG


def test_log_matches_the_analytic_response_of_a_step():
    """For a unit step at x0, sigma^2 (d2/dx2)(G * step) = -sigma^2 (x-x0) g(x-x0) / sigma^2."""
    sigma, x0 = 3.0, 31.5  # step between columns 31 and 32
    img = np.zeros((9, 64), np.float32)
    img[:, 32:] = 1
    response = laplacian_of_gaussian(img, sigma)[4]
    x = np.arange(64) - x0
    gauss_derivative = -x / (sigma**3 * np.sqrt(2 * np.pi)) * np.exp(-(x**2) / (2 * sigma**2))
    expected = sigma**2 * gauss_derivative
    np.testing.assert_allclose(response[12:52], expected[12:52], atol=0.01)


def test_log_finds_a_ramp_centre_where_a_gradient_threshold_smears_it(rng):
    """The Marr-Hildreth point: a 16-px linear ramp (columns 40-56) gives one
    zero crossing at its centre, while thresholding the first derivative at
    half its peak marks the whole ramp."""
    profile = np.clip((np.arange(96) - 40) / 16, 0, 1)
    img = np.tile(profile, (24, 1)) + rng.normal(0, 0.01, (24, 96))
    img = img.astype(np.float32)
    edges = log_edges(img, sigma=4.0, threshold=0.003)
    columns = np.flatnonzero(edges[2:-2].any(axis=0))
    assert columns.tolist() == [48]
    assert edges[2:-2].sum(axis=1).tolist() == [1] * 20
    magnitude = gradient_magnitude(img)
    smeared = np.flatnonzero(magnitude[12] > 0.5 * magnitude.max())
    assert smeared.size >= 12


def test_log_edges_of_a_disk_lie_on_its_rim():
    yy, xx = np.mgrid[:64, :64]
    radius = np.hypot(yy - 31.5, xx - 31.5)
    disk = (radius < 18).astype(np.float32)
    edges = log_edges(disk, sigma=2.0)
    assert edges.sum() > 100
    assert np.all(np.abs(radius[edges] - 18) < 1.5)


def test_zero_crossings_threshold_and_shape():
    r = np.array([[1.0, -1.0, -1.2], [0.1, -0.1, 2.0]], np.float32)
    # Each sign change marks the pixel of the pair closer to zero.
    # On a tie (1 | -1, 0.1 | -0.1) the negative one, so flipping flips the edges.
    assert zero_crossings(r).tolist() == [[False, True, True], [False, True, False]]
    # With a slope threshold 0.1 -> -0.1 (jump 0.2) is dropped; the others jump > 2.
    assert zero_crossings(r, threshold=1.5).tolist() == [[False, True, True], [False, True, False]]
    with pytest.raises(InvalidParameterError):
        zero_crossings(np.zeros((2, 2, 2)))


# --------------------------------------------------------------------------- HOG


@pytest.mark.parametrize(
    ("ppc", "cpb", "norm"),
    [
        ((8, 8), (3, 3), "L2-Hys"),
        ((16, 16), (2, 2), "L2-Hys"),
        ((6, 10), (1, 2), "L2-Hys"),
        ((7, 7), (2, 2), "L2-Hys"),
        ((8, 8), (2, 2), "L1"),
        ((8, 8), (2, 2), "L1-sqrt"),
        ((8, 8), (2, 2), "L2"),
    ],
)
def test_hog_equals_scikit_image(kodak_rgb, ppc, cpb, norm):
    crop = kodak_rgb[100:300, 150:330]
    gray = to_gray(crop)
    for img, axis in ((gray, None), (crop, -1)):
        ours = hog(img, 9, ppc, cpb, norm)
        ref = skfeature.hog(img, 9, ppc, cpb, norm, channel_axis=axis)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_hog_layout_and_vector(kodak_rgb):
    gray = to_gray(kodak_rgb[:64, :48])
    blocks = hog(gray, 6, (8, 8), (2, 2), feature_vector=False)
    assert blocks.shape == (7, 5, 2, 2, 6)
    np.testing.assert_array_equal(blocks.ravel(), hog(gray, 6, (8, 8), (2, 2)))


def test_hog_bilinear_binning_splits_votes_between_neighbour_bins():
    # A horizontal ramp: gradient angle 0 deg, the lower edge of bin 0
    # (centre 10 deg with 9 bins), so bilinear binning splits it half/half
    # between bin 0 and bin 8 (170 deg, wrapping around 180).
    img = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    hard = hog(img, 9, (8, 8), (1, 1), "L1", feature_vector=False)[1, 1, 0, 0]
    soft = hog(img, 9, (8, 8), (1, 1), "L1", binning="bilinear", feature_vector=False)
    soft = soft[1, 1, 0, 0]
    # (L1 divides by sum + 1e-5, hence the 1e-3 tolerance.)
    assert hard[0] == pytest.approx(1.0, abs=1e-3) and hard[1:].sum() == pytest.approx(0, abs=1e-6)
    assert soft[0] == pytest.approx(0.5, abs=1e-3) and soft[8] == pytest.approx(0.5, abs=1e-3)


def test_hog_bilinear_keeps_total_cell_mass(kodak_rgb):
    gray = to_gray(kodak_rgb[:80, :80])
    hard = hog(gray, 9, (8, 8), (1, 1), "L1", feature_vector=False)
    soft = hog(gray, 9, (8, 8), (1, 1), "L1", binning="bilinear", feature_vector=False)
    np.testing.assert_allclose(hard.sum(axis=-1), soft.sum(axis=-1), atol=1e-6)


def test_hog_image_equals_scikit_image_visualisation(kodak_rgb):
    gray = to_gray(kodak_rgb[:160, :160])
    _, ref = skfeature.hog(gray, 9, (16, 16), (2, 2), visualize=True)
    ours = hog_image(gray, 9, (16, 16))
    np.testing.assert_allclose(ours, ref / ref.max(), atol=1e-6)


def test_hog_rejects_too_small_images():
    with pytest.raises(InvalidParameterError, match="smaller than one block"):
        hog(np.zeros((10, 10), np.float32), 9, (8, 8), (3, 3))
    with pytest.raises(InvalidParameterError, match="block_norm"):
        hog(np.zeros((32, 32), np.float32), block_norm="L3")  # type: ignore[arg-type]
    # hog_image drew a blank picture for an image smaller than one cell
    with pytest.raises(InvalidParameterError, match="no whole cell fits"):
        hog_image(np.zeros((10, 40), np.float32), 9, (16, 16))
    assert hog_image(np.zeros((16, 40), np.float32), 9, (16, 16)).shape == (16, 40)


# --------------------------------------------------------------------------- orientation


def test_orientation_image_hues_follow_gradient_direction():
    step = np.zeros((9, 9), np.float32)
    step[:, 5:] = 1  # gradient points right: 0 deg, red
    np.testing.assert_allclose(orientation_image(step)[4, 4], [1, 0, 0], atol=1e-6)
    # Gradient pointing down the rows: 90 deg, between yellow (60) and green (120).
    np.testing.assert_allclose(orientation_image(step.T)[4, 4], [0.5, 1, 0], atol=1e-6)
    # Bright to the left: 180 deg, cyan.
    np.testing.assert_allclose(orientation_image(1 - step)[4, 4], [0, 1, 1], atol=1e-6)
    out = orientation_image(step)
    assert out.dtype == np.float32 and out.shape == (9, 9, 3)
    assert np.all(out[:, :2] == 0)  # flat -> black


# --------------------------------------------------------------------------- density


def test_edge_density_flat_and_range(kodak_paths):
    assert edge_density(np.full((200, 300, 3), 0.5, np.float32)) == 0.0
    for path in kodak_paths:
        d = edge_density(read_image(path))
        assert 0.01 < d < 0.5


def test_edge_density_is_robust_to_resolution(kodak_rgb):
    from PIL import Image

    u8 = np.round(kodak_rgb * 255).astype(np.uint8)
    base = edge_density(u8)
    for side in (350, 1000):
        resized = np.asarray(Image.fromarray(u8).resize((side, side), Image.Resampling.LANCZOS))
        assert edge_density(resized) == pytest.approx(base, rel=0.05)


def test_edge_density_is_the_canny_fraction_at_the_documented_parameters(kodak_rgb):
    import cv2

    from boda.edges import canny_gradient

    small = to_gray(kodak_rgb)[:200, :250]  # already below the analysis side
    p = EDGE_DENSITY_PARAMS
    # Exactly OpenCV's Canny on the documented gradient (fixed point, 1/4000 steps) ...
    gy, gx, _ = canny_gradient(small, p["sigma"], border="reflect")
    dx, dy = (np.rint(g * 4000).astype(np.int16) for g in (gx, gy))
    cv_edges = cv2.Canny(dx, dy, 400.0, 800.0, L2gradient=True)[1:-1, 1:-1]
    assert edge_density(small) == pytest.approx((cv_edges > 0).mean(), abs=2e-4)
    # ... and within a few per cent of boda's (scikit-image's) interpolating Canny.
    edges = canny(small, p["sigma"], p["low_threshold"], p["high_threshold"], border="reflect")
    assert edge_density(small) == pytest.approx(edges.sum() / (198 * 248), rel=0.05)


def test_edge_density_gradient_equals_canny_gradient(kodak_rgb):
    from boda.edges import canny_gradient
    from boda.edges._density import _fast_canny_gradient

    small = to_gray(kodak_rgb)[:200, :250]
    fast_and_reference = zip(
        _fast_canny_gradient(small, 1.0), canny_gradient(small, 1.0, border="reflect")[:2],
        strict=True,
    )
    for fast, ref in fast_and_reference:
        np.testing.assert_allclose(fast, ref, atol=2e-6)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_log_equals_scipy_and_approaches_opencv(kodak_rgb, sigma):
    """The LoG is sigma^2 * scipy's gaussian_laplace, less the offset of scipy's sampled
    kernel, which does not sum to 0 (at most that offset per unit of brightness; the
    exact reference is in test_measures_audit.py); OpenCV's blur-then-Laplacian
    (a discrete 4-neighbour Laplacian after a sampled Gaussian) converges to it as
    sigma grows (correlation > 0.997 at sigma 1, > 0.9999 at sigma 3)."""
    cv2 = pytest.importorskip("cv2")
    from scipy import ndimage

    from boda.core.image import to_gray
    from boda.edges import laplacian_of_gaussian

    gray = to_gray(kodak_rgb)
    ours = laplacian_of_gaussian(gray, sigma)
    reference = sigma**2 * ndimage.gaussian_laplace(gray.astype(np.float64), sigma, mode="reflect")
    flat = sigma**2 * ndimage.gaussian_laplace(np.ones((64, 64)), sigma, mode="reflect")[32, 32]
    assert np.abs(ours - reference).max() <= abs(flat) * gray.max() + 1e-6
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    opencv = cv2.Laplacian(blurred, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
    inner = (slice(20, -20), slice(20, -20))
    corr = np.corrcoef(ours[inner].ravel() / sigma**2, opencv[inner].ravel())[0, 1]
    assert corr > {1.0: 0.997, 2.0: 0.9997, 3.0: 0.9999}[sigma]


@pytest.mark.parametrize(
    "shape",
    [(427, 640), (640, 427), (301, 1000), (513, 512), (1025, 2049), (300, 257), (1, 5000),
     (3, 2000), (5000, 2), (40, 4000)],
)
def test_box_downscale_equals_exact_weights(shape, rng):
    """2x2 block means while at least twice 256, then exact area weights."""
    from boda.edges._density import _area_matrix, _box_downscale, _halving_matrix

    gray = rng.random(shape, dtype=np.float32)
    small = _box_downscale(gray, 256)
    rows, cols = np.eye(shape[0], dtype=np.float32), np.eye(shape[1], dtype=np.float32)
    out_h, out_w = small.shape
    while (max(rows.shape[0], cols.shape[0]) >= 512 and rows.shape[0] // 2 >= out_h
           and cols.shape[0] // 2 >= out_w):  # fmt: skip
        rows, cols = _halving_matrix(rows.shape[0]) @ rows, _halving_matrix(cols.shape[0]) @ cols
    rows = _area_matrix(small.shape[0], rows.shape[0]) @ rows
    cols = _area_matrix(small.shape[1], cols.shape[0]) @ cols
    assert max(small.shape) == 256
    assert small.shape == tuple(max(1, round(n * 256 / max(shape))) for n in shape)
    np.testing.assert_allclose(small, rows @ gray @ cols.T, atol=1e-5)


def test_zero_crossings_flip_with_the_image():
    from boda.edges import log_edges, zero_crossings

    # A 0 is a crossing only between opposite signs (test_measures_audit.py).
    assert zero_crossings(np.array([[2.0, 0, -1, 0, 0]])).tolist() == [[0, 1, 0, 0, 0]]
    assert zero_crossings(np.array([[0.0, 0, -1, 0, 2]])).tolist() == [[0, 0, 0, 1, 0]]
    assert zero_crossings(np.array([[0.0, 0, -1, 2, 0]])).tolist() == [[0, 0, 1, 0, 0]]
    square = np.zeros((40, 50), np.float32)
    square[10:27, 12:33] = 1.0
    edges = log_edges(square, 2.0, threshold=0.0)
    np.testing.assert_array_equal(log_edges(square[:, ::-1], 2.0, threshold=0.0), edges[:, ::-1])
    np.testing.assert_array_equal(log_edges(square[::-1], 2.0, threshold=0.0), edges[::-1])


# ----------------------------------------------------------------- draw_edges


def test_draw_edges_is_the_detectors_output_scaled_for_viewing(data_dir):
    from boda.edges import EDGE_METHODS, canny, draw_edges, hog_image, log_edges
    from boda.filters import laplacian

    img = read_image(data_dir / "kodak" / "kodim23.png", max_side=96)
    gray = to_gray(img)
    magnitude = gradient_magnitude(gray, "scharr")
    np.testing.assert_allclose(draw_edges(img, "scharr").picture, magnitude / magnitude.max())
    response = np.abs(laplacian(gray, 8))
    drawn = draw_edges(img, "laplacian", neighbours=8)
    np.testing.assert_allclose(drawn.picture, response / response.max())
    assert drawn.stats["mean_abs_laplacian"] == pytest.approx(float(response.mean()))
    edges = canny(img, 2.0, 0.05, 0.1)
    drawn = draw_edges(img, "canny", sigma=2.0, low=0.05, high=0.1)
    np.testing.assert_array_equal(drawn.picture, edges.astype(np.float32))
    assert drawn.stats == {"edge_fraction": float(edges.mean()), "edge_pixels": int(edges.sum())}
    np.testing.assert_array_equal(draw_edges(img, "log").picture, log_edges(img, 2.0))
    hog = draw_edges(img, "hog", cell=16).picture
    raw = hog_image(img, 9, (16, 16))
    # brightened so the 99th percentile of the drawn lines is white, clipped above
    np.testing.assert_allclose(hog, np.clip(raw / np.quantile(raw[raw > 0], 0.99), 0, 1))
    assert 0.005 < (hog == 1).sum() / (raw > 0).sum() < 0.02
    for method in EDGE_METHODS:
        picture = draw_edges(img, method).picture
        assert picture.dtype == np.float32 and 0 <= picture.min() and picture.max() <= 1
        assert picture.shape[:2] == img.shape[:2]


def test_draw_edges_refuses_unknown_methods_and_kernels():
    from boda.edges import draw_edges

    disk = np.zeros((16, 16), np.float32)
    disk[4:12, 4:12] = 1.0
    with pytest.raises(InvalidParameterError, match="unknown edge method 'sobol'"):
        draw_edges(disk, "sobol")
    with pytest.raises(InvalidParameterError, match="neighbours must be 4 or 8"):
        draw_edges(disk, "laplacian", neighbours=6)
    with pytest.raises(InvalidParameterError, match="sigma does not apply to method 'sobel'"):
        draw_edges(disk, "sobel", sigma=2.0)
    with pytest.raises(InvalidParameterError, match="cell, low do not apply.*reads only"):
        draw_edges(disk, "log", low=0.1, cell=4)
    draw_edges(disk, "log", sigma=1.0, threshold=0.01, neighbours=4)  # defaults are fine
    flat = np.zeros((8, 8), np.float32)  # no edges: no division by a zero peak
    assert draw_edges(flat, "sobel").picture.max() == 0
