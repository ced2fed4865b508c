"""Audit of the measures people call directly (session 26): boda.filters,
boda.edges and boda.quality against their references and the rules they cite."""

from __future__ import annotations

import numpy as np
import pytest

from boda.edges import laplacian_of_gaussian, log_edges, zero_crossings

# ------------------------------------------------------------ Marr-Hildreth


def test_zero_crossings_need_a_change_of_sign():
    """Marr & Hildreth (1980, sec. 3) put edges where the LoG changes sign.  A
    response that touches 0 and goes back (a bump over a zero background) has
    no crossing; a 0 between opposite signs is the crossing itself."""
    assert not zero_crossings(np.array([[0.0, 0, 1, 0, 0]])).any()
    assert not zero_crossings(np.array([[0.0, 0, -1, 0, 0]]).T).any()
    assert zero_crossings(np.array([[1.0, 0, -1]])).tolist() == [[False, True, False]]
    assert zero_crossings(np.array([[-1.0, 0, 2]]).T).ravel().tolist() == [False, True, False]
    # The jump across a crossing through a 0 is its neighbours' (MATLAB's rule).
    assert not zero_crossings(np.array([[1.0, 0, -1]]), threshold=2.5).any()
    assert zero_crossings(np.array([[1.0, 0, -1]]), threshold=2.0)[0, 1]
    # A strict sign change still marks the pixel nearer zero.
    assert zero_crossings(np.array([[0.0, 0, -1, 2, 0]])).tolist() == [[0, 0, 1, 0, 0]]


def test_log_edges_of_a_step_at_threshold_zero_are_one_line():
    """"0 keeps every crossing": a vertical step has one crossing per row, at the
    step.  The LoG is exactly 0 beyond the Gaussian's 4-sigma cut-off on the dark
    side, and that 0 beside the positive lobe was marked as a second edge line
    4 px away (columns 15 and 19 for a step at 19|20)."""
    step = np.zeros((40, 40), np.float32)
    step[:, 20:] = 1.0
    response = laplacian_of_gaussian(step, 1.0)
    assert (response[:, :15] == 0).all()  # the premise: an exact-zero flat region
    edges = log_edges(step, 1.0, 0.0)
    rows = [np.flatnonzero(edges[r]).tolist() for r in range(40)]
    assert all(cols in ([19], [20]) for cols in rows), rows[:3]


def test_log_edges_of_a_dot_are_one_ring():
    """A bright dot's LoG is negative at the centre and positive on a ring, with its
    zero crossing at r = sigma * sqrt(2) (eq. 7).  Only that ring is an edge; the
    edge of the kernel's support (r = 4 sigma) is not."""
    dot = np.zeros((41, 41), np.float32)
    dot[20, 20] = 1.0
    edges = log_edges(dot, 1.5, 0.0)
    rr, cc = np.nonzero(edges)
    radius = np.hypot(rr - 20, cc - 20)
    assert radius.size > 0
    assert radius.max() < 3.5, sorted(set(np.round(radius, 1)))
    assert abs(np.median(radius) - 1.5 * np.sqrt(2)) < 1.0


@pytest.mark.parametrize("sigma", [0.5, 0.7, 1.0, 2.0, 4.0])
def test_log_of_a_constant_or_a_ramp_is_zero(sigma):
    """The Laplacian of a constant or of a linear ramp is 0, and so is its LoG: the
    kernel integrates to 0 (eq. 7).  Sampled on the pixel grid it did not (scipy's
    gaussian_laplace): a flat image of 1 gave -0.28 at sigma 0.5 and -0.0013 at
    sigma 4, a brightness-proportional offset.  MATLAB's fspecial('log') removes the
    sampled kernel's mean for this reason; so does boda."""
    flat = np.ones((48, 48), np.float32)
    np.testing.assert_allclose(laplacian_of_gaussian(flat, sigma), 0, atol=1e-6)
    ramp = np.tile(np.linspace(0.1, 0.9, 48, dtype=np.float32), (48, 1))
    r = int(4 * sigma + 0.5)
    inner = (slice(r, -r), slice(r, -r))
    np.testing.assert_allclose(laplacian_of_gaussian(ramp, sigma)[inner], 0, atol=1e-6)


def test_log_edges_find_a_step_at_small_sigma():
    """A 0.5 -> 0.9 step at sigma 0.5: the offset (-0.28 per unit of brightness)
    pushed both sides negative, so no crossing was left and the edge vanished."""
    step = np.full((20, 20), 0.5, np.float32)
    step[:, 10:] = 0.9
    edges = log_edges(step, 0.5, 0.0)
    rows = [np.flatnonzero(edges[r]).tolist() for r in range(20)]
    assert all(cols in ([9], [10]) for cols in rows), rows[:3]


def test_log_is_the_zero_mean_sampled_kernel(rng):
    """Reference: the sampled second derivative of the Gaussian (the kernel of
    scipy.ndimage.gaussian_laplace, truncated at 4 sigma) with its mean removed,
    applied separably: sigma^2 (d2x * gy + gx * d2y)."""
    from scipy import ndimage

    img = rng.random((37, 52)).astype(np.float32)
    for sigma in (0.6, 1.5, 3.0):
        r = int(4 * sigma + 0.5)
        x = np.arange(-r, r + 1, dtype=np.float64)
        g = np.exp(-0.5 * x**2 / sigma**2)
        g /= g.sum()
        d2 = g * (x**2 - sigma**2) / sigma**4
        d2 -= d2.mean()
        f = img.astype(np.float64)
        kernel_2d = np.outer(d2, g) + np.outer(g, d2)
        reference = sigma**2 * ndimage.correlate(f, kernel_2d, mode="reflect")
        np.testing.assert_allclose(laplacian_of_gaussian(img, sigma), reference, atol=2e-6)


# ------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("name", ["k1", "k2"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.01, "0.01", True, None])
def test_ssim_constants_must_be_non_negative_numbers(rng, name, value):
    """K1 and K2 (Wang et al. 2004, eq. 7 and 9: small constants, K << 1): NaN or
    infinity gave an SSIM of NaN, a string a TypeError and True was taken as K = 1;
    a negative K is refused as scikit-image refuses it."""
    from boda.errors import InvalidParameterError
    from boda.quality import ssim

    a, b = rng.random((20, 20)), rng.random((20, 20))
    with pytest.raises(InvalidParameterError, match=name):
        ssim(a, b, **{name: value})


@pytest.mark.parametrize("value", ["1.5", True])
def test_ssim_sigma_must_be_a_number(rng, value):
    """sigma=True was taken as a 1-px Gaussian, and "1.5" raised a TypeError."""
    from boda.errors import InvalidParameterError
    from boda.quality import ssim

    a, b = rng.random((20, 20)), rng.random((20, 20))
    with pytest.raises(InvalidParameterError, match="sigma"):
        ssim(a, b, sigma=value)


def test_ssim_takes_numpy_constants_and_zero(rng):
    """numpy numbers are numbers, and K = 0 is allowed (scikit-image allows it)."""
    from skimage.metrics import structural_similarity

    from boda.quality import ssim

    a = rng.random((24, 24))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    ours = ssim(a, b, k1=np.float32(0.02), k2=0.0, sigma=np.float64(1.5))
    ref = structural_similarity(
        a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
        K1=float(np.float32(0.02)), K2=0.0,
    )
    assert ours == pytest.approx(ref, abs=1e-6)



@pytest.mark.parametrize("options", [
    {"sigma": "1"}, {"sigma": True}, {"sigma": "x"}, {"low_threshold": "0.1"},
    {"high_threshold": True},
])  # fmt: skip
def test_canny_refuses_options_that_are_not_numbers(options):
    """float() took "1" and True as sigma 1, and "x" raised its own ValueError."""
    from boda.edges import canny
    from boda.errors import InvalidParameterError

    image = np.zeros((16, 16), np.float32)
    image[:, 8:] = 1.0
    name = next(iter(options))
    with pytest.raises(InvalidParameterError, match=name):
        canny(image, **options)
    canny(image, **{name: np.float32(1.0) if name == "sigma" else 0.1})  # numbers still pass
