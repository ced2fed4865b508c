"""boda.filters against OpenCV and scikit-image, for every border both can express."""

from __future__ import annotations

import numpy as np
import pytest

from boda import filters
from boda.errors import InvalidParameterError

cv2 = pytest.importorskip("cv2")
skfilters = pytest.importorskip("skimage.filters")

# boda border -> OpenCV border type (OpenCV's linear filters cannot wrap).
CV_BORDERS = {
    "reflect101": cv2.BORDER_REFLECT_101,
    "reflect": cv2.BORDER_REFLECT,
    "replicate": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
}
# boda border -> numpy.pad mode, for a reference that covers "wrap" too.
NP_PAD = {
    "reflect101": "reflect",
    "reflect": "symmetric",
    "replicate": "edge",
    "constant": "constant",
    "wrap": "wrap",
}
ATOL = 1e-5


@pytest.fixture(scope="module")
def photo(data_dir) -> np.ndarray:
    """A 61x47 crop of a Kodak photo in gray (odd sizes catch transposition bugs)."""
    from boda.core.image import to_gray
    from boda.io import read_image

    return to_gray(read_image(data_dir / "kodak" / "kodim05.png"))[200:261, 100:147]


def _correlate_padded(img: np.ndarray, kernel: np.ndarray, border: str) -> np.ndarray:
    """Direct 'valid' correlation of the padded image: an independent reference."""
    kh, kw = kernel.shape
    pad = np.pad(img.astype(np.float64), ((kh // 2, kh // 2), (kw // 2, kw // 2)), NP_PAD[border])
    out = np.zeros(img.shape)
    for i in range(kh):
        for j in range(kw):
            out += kernel[i, j] * pad[i : i + img.shape[0], j : j + img.shape[1]]
    return out


SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
PREWITT_X = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], float)
SCHARR_X = np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], float)


@pytest.mark.parametrize("border", list(CV_BORDERS))
@pytest.mark.parametrize("axis", [0, 1])
def test_sobel_and_scharr_equal_opencv(photo, border, axis):
    dx, dy = (1, 0) if axis == 1 else (0, 1)
    bt = CV_BORDERS[border]
    ref = cv2.Sobel(photo, cv2.CV_32F, dx, dy, ksize=3, borderType=bt)
    np.testing.assert_allclose(filters.sobel(photo, axis, border=border), ref, atol=ATOL)
    ref = cv2.Scharr(photo, cv2.CV_32F, dx, dy, borderType=bt)
    np.testing.assert_allclose(filters.scharr(photo, axis, border=border), ref, atol=4 * ATOL)


@pytest.mark.parametrize("border", list(CV_BORDERS))
def test_prewitt_equals_opencv_filter2d(photo, border):
    for axis, kernel in ((1, PREWITT_X), (0, PREWITT_X.T)):
        ref = cv2.filter2D(photo, cv2.CV_32F, kernel, borderType=CV_BORDERS[border])
        np.testing.assert_allclose(filters.prewitt(photo, axis, border=border), ref, atol=ATOL)


@pytest.mark.parametrize("border", list(NP_PAD))
@pytest.mark.parametrize(
    ("fn", "kernel"),
    [(filters.sobel, SOBEL_X), (filters.prewitt, PREWITT_X), (filters.scharr, SCHARR_X)],
)
def test_every_border_matches_padded_correlation(photo, border, fn, kernel):
    np.testing.assert_allclose(
        fn(photo, 1, border=border), _correlate_padded(photo, kernel, border), atol=4 * ATOL
    )
    np.testing.assert_allclose(
        fn(photo, 0, border=border), _correlate_padded(photo, kernel.T, border), atol=4 * ATOL
    )


@pytest.mark.parametrize(
    ("fn", "sk", "scale"),
    [
        # scikit-image normalises its kernels: Sobel /4, Prewitt /3, Scharr /16.
        (filters.sobel, "sobel", 1 / 4),
        (filters.prewitt, "prewitt", 1 / 3),
        (filters.scharr, "scharr", 1 / 16),
    ],
)
@pytest.mark.parametrize("axis", [0, 1])
def test_derivatives_match_scikit_image_up_to_its_normalisation(photo, fn, sk, scale, axis):
    ref = getattr(skfilters, sk)(photo.astype(np.float64), axis=axis, mode="reflect")
    np.testing.assert_allclose(scale * fn(photo, axis, border="reflect"), ref, atol=ATOL)


@pytest.mark.parametrize("border", list(CV_BORDERS))
def test_laplacian_4_and_8_equal_opencv(photo, border):
    bt = CV_BORDERS[border]
    ref4 = cv2.Laplacian(photo, cv2.CV_32F, ksize=1, borderType=bt)
    np.testing.assert_allclose(filters.laplacian(photo, 4, border=border), ref4, atol=ATOL)
    k8 = np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], np.float32)
    ref8 = cv2.filter2D(photo, cv2.CV_32F, k8, borderType=bt)
    np.testing.assert_allclose(filters.laplacian(photo, 8, border=border), ref8, atol=ATOL)


def test_laplacian_4_is_minus_scikit_image_laplace(photo):
    # skimage.filters.laplace(ksize=3) uses the negated 4-neighbour kernel
    # [[0,-1,0],[-1,4,-1],[0,-1,0]] with a reflect border.
    ref = skfilters.laplace(photo.astype(np.float64), ksize=3)
    np.testing.assert_allclose(filters.laplacian(photo, 4, border="reflect"), -ref, atol=ATOL)


def test_laplacian_colour_is_per_channel(kodak_rgb):
    crop = kodak_rgb[:40, :30]
    out = filters.laplacian(crop, 8)
    for c in range(3):
        np.testing.assert_allclose(out[:, :, c], filters.laplacian(crop[:, :, c], 8), atol=1e-6)


def test_central_difference_is_twice_numpy_gradient_inside(photo):
    for axis in (0, 1):
        ours = filters.central_difference(photo, axis)
        ref = 2 * np.gradient(photo.astype(np.float64), axis=axis)
        np.testing.assert_allclose(ours[1:-1, 1:-1], ref[1:-1, 1:-1], atol=ATOL)


def test_forward_difference_is_numpy_diff(photo):
    np.testing.assert_allclose(filters.forward_difference(photo, 1)[:, :-1], np.diff(photo, axis=1))
    np.testing.assert_allclose(filters.forward_difference(photo, 0)[:-1], np.diff(photo, axis=0))
    assert np.all(filters.forward_difference(photo, 1)[:, -1] == 0)


@pytest.mark.parametrize("operator", ["sobel", "prewitt", "scharr", "central"])
def test_magnitude_and_orientation_equal_opencv(photo, operator):
    gy, gx = filters.gradient(photo, operator)
    np.testing.assert_allclose(
        filters.gradient_magnitude(photo, operator), cv2.magnitude(gx, gy), atol=ATOL
    )
    theta = filters.gradient_orientation(photo, operator)
    ref = cv2.phase(gx, gy)  # [0, 2 pi)
    strong = cv2.magnitude(gx, gy) > 1e-3
    diff = np.angle(np.exp(1j * (theta.astype(np.float64) - ref)))  # wrapped difference
    assert np.abs(diff[strong]).max() < 1e-3  # cv2.phase is an approximation to ~0.3 deg
    assert theta.min() >= -np.pi and theta.max() <= np.pi


def test_orientation_of_a_rightward_step_is_zero():
    step = np.zeros((9, 9), np.float32)
    step[:, 5:] = 1
    assert filters.gradient_orientation(step)[4, 4] == pytest.approx(0.0)
    assert filters.gradient_orientation(step.T)[4, 4] == pytest.approx(np.pi / 2)


def test_orientation_of_negative_pixels_stays_in_range():
    # Correlating negative pixels gives -0.0, and arctan2(-0.0, x <= 0) is -pi.
    flat = np.full((5, 5), -0.25, np.float32)
    assert np.all(filters.gradient_orientation(flat) == 0)  # "flat regions give 0"
    step = np.full((9, 9), -1.0, np.float32)
    step[:, 4:] = -0.5  # darker to the left: orientation 0
    theta = filters.gradient_orientation(-step - 1.5)  # brighter to the left
    assert theta[4, 4] == pytest.approx(np.pi)
    rng = np.random.default_rng(0)
    img = (rng.integers(-3, 3, (40, 40)) * 0.25).astype(np.float32)
    for operator in ("sobel", "prewitt", "scharr", "central", "forward"):
        theta = filters.gradient_orientation(img, operator)
        assert theta.min() > -np.pi and theta.max() <= np.pi


def test_bad_arguments_raise():
    img = np.zeros((5, 5), np.float32)
    with pytest.raises(InvalidParameterError, match="border"):
        filters.sobel(img, 0, border="mirror")
    with pytest.raises(InvalidParameterError, match="axis"):
        filters.sobel(img, 2)
    with pytest.raises(InvalidParameterError, match="operator"):
        filters.gradient(img, "roberts")
    with pytest.raises(InvalidParameterError, match="neighbours"):
        filters.laplacian(img, 6)


def test_unhashable_arguments_raise_boda_errors():
    # A list raised "TypeError: unhashable type" from the dictionary look-up.
    img = np.zeros((5, 5), np.float32)
    with pytest.raises(InvalidParameterError, match="border"):
        filters.sobel(img, 0, border=["reflect"])
    with pytest.raises(InvalidParameterError, match="operator"):
        filters.gradient(img, ["sobel"])
    with pytest.raises(InvalidParameterError, match="neighbours"):
        filters.laplacian(img, [4])
