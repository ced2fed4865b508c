"""Fast paths give what the straightforward computation gives, float for float.

- ``boda.filters``: the 3x3 derivatives and Laplacians by OpenCV in bands of rows
  equal SciPy's ``correlate1d`` / ``correlate`` (what they replaced) bit for bit, for
  every border, axis, shape and band size, on values of any magnitude; ``"wrap"``
  still goes to SciPy.
- ``boda.color``: RGB <-> HSV / HSL and Lab -> LCh in cache-sized blocks equal the
  whole-array NumPy expressions they replaced (kept here), NaN, infinities, signed
  zeros and out-of-range values included.

Each also holds a memory bound the whole-array versions broke (tracemalloc counts
allocations, not time: no timing is asserted).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from memory_helpers import peak_bytes

import boda.color as bc
from boda.color import _elementwise
from boda.color._validate import as_colors
from boda.core.image import trusted_pixels
from boda.filters import _derivatives as derivatives

SEPARABLE = [
    ([-1.0, 0.0, 1.0], [1.0, 2.0, 1.0]),  # Sobel
    ([-1.0, 0.0, 1.0], [1.0, 1.0, 1.0]),  # Prewitt
    ([-1.0, 0.0, 1.0], [3.0, 10.0, 3.0]),  # Scharr
]
OPENCV_BORDERS = ["reflect101", "reflect", "replicate", "constant"]
SHAPES = [(1, 1), (1, 6), (6, 1), (2, 2), (3, 7), (9, 5, 3), (41, 37), (23, 31, 3)]


def _samples(shape, seed=0):
    """Photo-like values, 8-bit levels, and values spread over 45 orders of magnitude
    (signs, zeros, subnormals): where float64 sums stop being exact."""
    rng = np.random.default_rng(seed)
    spread = rng.standard_normal(shape) * 10.0 ** rng.integers(-45, 5, shape)
    spread[rng.random(shape) < 0.1] = 0
    return [
        rng.random(shape).astype(np.float32),
        (rng.integers(0, 256, shape) / 255).astype(np.float32),
        spread.astype(np.float32),
    ]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


# ------------------------------------------------------------------------------ filters
@pytest.mark.parametrize("band", [1, 40, 1 << 18])
@pytest.mark.parametrize("shape", SHAPES)
def test_opencv_derivatives_equal_scipys_bit_for_bit(monkeypatch, band, shape):
    monkeypatch.setattr(derivatives, "_BAND_VALUES", band)  # 1: a band per row
    for img in _samples(shape, seed=len(shape) + shape[0]):
        for border in OPENCV_BORDERS:
            mode = derivatives.scipy_border_mode(border)
            for axis in (0, 1):
                for derivative, smoothing in SEPARABLE:
                    fast = derivatives._separable_opencv(img, axis, derivative, smoothing, border)
                    slow = derivatives._separable_scipy(img, axis, derivative, smoothing, mode)
                    assert _same(fast, slow), (border, axis, smoothing)
            for kernel in derivatives._LAPLACIAN_KERNELS.values():
                fast = derivatives._laplacian_opencv(img, kernel, border)
                assert _same(fast, derivatives._laplacian_scipy(img, kernel, mode)), border


@pytest.mark.parametrize("border", [*OPENCV_BORDERS, "wrap"])
def test_differences_equal_scipys_correlate1d(border):
    ndimage = pytest.importorskip("scipy.ndimage")
    mode = derivatives.scipy_border_mode(border)
    for shape in SHAPES:
        for img in _samples(shape):
            for axis in (0, 1):
                central = ndimage.correlate1d(img, np.float32([-1, 0, 1]), axis=axis, mode=mode)
                forward = ndimage.correlate1d(
                    img, np.float32([-1, 1]), axis=axis, mode=mode, origin=-1
                )
                with trusted_pixels():  # the spread values are not pixels in [0, 1]
                    got_c = derivatives._difference(img, axis, [-1.0, 0.0, 1.0], border)
                    got_f = derivatives._difference(img, axis, [-1.0, 1.0], border)
                assert _same(got_c, central) and _same(got_f, forward), (shape, axis)


def test_public_filters_take_the_opencv_path_and_keep_scipys_floats(kodak_rgb):
    ndimage = pytest.importorskip("scipy.ndimage")
    crop = kodak_rgb[:64, :80]
    for axis in (0, 1):
        slow = ndimage.correlate1d(crop, np.float32([-1, 0, 1]), axis=axis, mode="mirror")
        slow = ndimage.correlate1d(slow, np.float32([1, 2, 1]), axis=1 - axis, mode="mirror")
        assert _same(derivatives.sobel(crop, axis), slow)
    kernel = derivatives._LAPLACIAN_KERNELS[8]
    slow = np.stack([ndimage.correlate(crop[..., c], kernel, mode="reflect") for c in range(3)], 2)
    assert _same(derivatives.laplacian(crop, 8, border="reflect"), slow)


def test_sobel_and_laplacian_hold_no_full_size_temporary(monkeypatch):
    monkeypatch.setattr(derivatives, "_BAND_VALUES", 1 << 12, raising=False)
    rng = np.random.default_rng(1)
    gray = rng.random((600, 500)).astype(np.float32)
    rgb = rng.random((600, 500, 3)).astype(np.float32)
    derivatives.sobel(gray[:8], 0)  # imports first: they would count
    # The output and a band's scratch: SciPy's two passes held two images, and the
    # per-channel Laplacian three channels and their stack.
    for fn, img, arg in (
        (derivatives.sobel, gray, 0),
        (derivatives.sobel, gray, 1),
        (derivatives.laplacian, rgb, 4),
    ):
        assert peak_bytes(fn, img, arg) < 1.3 * img.nbytes, fn


# ------------------------------------------------------------------------- HSV, HSL, LCh
def _old_hue_chroma(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cmax, cmin = rgb.max(axis=-1), rgb.min(axis=-1)
    chroma = cmax - cmin
    safe = np.where(chroma == 0, 1, chroma)
    h = np.where(
        cmax == r,
        ((g - b) / safe) % 6.0,
        np.where(cmax == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    h = np.where(chroma == 0, 0, h * 60.0)
    h = np.where(h >= 360.0, h - 360.0, h)
    return h, chroma, cmax, cmin


def old_rgb_to_hsv(rgb):
    rgb = as_colors(rgb, name="rgb", rgb=True)
    h, chroma, cmax, _ = _old_hue_chroma(rgb)
    s = np.where(cmax == 0, 0, chroma / np.where(cmax == 0, 1, cmax))
    return np.stack([h, s, cmax], axis=-1).astype(rgb.dtype, copy=False)


def old_rgb_to_hsl(rgb):
    rgb = as_colors(rgb, name="rgb", rgb=True)
    h, chroma, cmax, cmin = _old_hue_chroma(rgb)
    total = cmax + cmin
    denom = np.minimum(total, 2.0 - total)
    s = np.where(denom <= 0, 0, chroma / np.where(denom <= 0, 1, denom))
    return np.stack([h, s, total / 2.0], axis=-1).astype(rgb.dtype, copy=False)


def _old_from_hue(h, chroma, m, dtype):
    hp = (h % 360.0) / 60.0
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hp) % 6.0
        out.append(m + chroma * (1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)))
    return np.stack(out, axis=-1).astype(dtype, copy=False)


def old_hsv_to_rgb(hsv):
    hsv = as_colors(hsv, name="hsv")
    chroma = hsv[..., 2] * hsv[..., 1]
    return _old_from_hue(hsv[..., 0], chroma, hsv[..., 2] - chroma, hsv.dtype)


def old_hsl_to_rgb(hsl):
    hsl = as_colors(hsl, name="hsl")
    light = hsl[..., 2]
    chroma = np.minimum(2.0 * light, 2.0 - 2.0 * light) * hsl[..., 1]
    return _old_from_hue(hsl[..., 0], chroma, light - chroma / 2.0, hsl.dtype)


def _hue_degrees(b, a):
    """The hue of ``lab_to_lch`` before its blocks: atan2 in degrees, ``% 360``, a
    rounded 360.0 folded to 0."""
    h = np.degrees(np.arctan2(b + 0.0, a + 0.0)) % 360.0
    return np.where(h >= 360.0, 0.0, h).astype(h.dtype, copy=False)


def old_lab_to_lch(lab):
    lab = as_colors(lab, name="lab")
    c = np.hypot(lab[..., 1], lab[..., 2])
    h = _hue_degrees(lab[..., 2], lab[..., 1])
    return np.stack([lab[..., 0], c, h], axis=-1).astype(lab.dtype, copy=False)


def _awkward_colours(n, dtype, seed=0):
    """Ties, grays, blacks, whites, negatives, signed zeros, NaN, infinities, huge and
    tiny values: every branch of the hexcone and every ``mod``'s edge."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    x[rng.random((n, 3)) < 0.2] = 0
    x[rng.random((n, 3)) < 0.05] = 1
    ties = rng.random(n) < 0.2
    x[ties] = x[ties][:, [0, 0, 2]]
    grays = rng.random(n) < 0.1
    x[grays] = x[grays][:, [1, 1, 1]]
    for p, value in ((0.02, -1.0), (0.02, 1e30), (0.02, 1e-30)):
        x[rng.random((n, 3)) < p] *= value
    for p, value in ((0.01, np.nan), (0.01, np.inf), (0.01, -np.inf), (0.02, -0.0)):
        x[rng.random((n, 3)) < p] = value
    return x.astype(dtype)


def _bitwise_same(a, b):
    return _same(a, b) and np.array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block", [7, 1 << 15])
def test_blocked_colour_conversions_equal_the_whole_array_expressions(monkeypatch, dtype, block):
    monkeypatch.setattr(_elementwise, "BLOCK_COLOURS", block)
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinities warn in both versions
        for rgb in (_awkward_colours(3000, dtype), rng.random((40, 50, 3)).astype(dtype)):
            assert _bitwise_same(bc.rgb_to_hsv(rgb), old_rgb_to_hsv(rgb))
            assert _bitwise_same(bc.rgb_to_hsl(rgb), old_rgb_to_hsl(rgb))
            lab = rgb * dtype(100) - dtype(50)
            assert _bitwise_same(bc.lab_to_lch(lab), old_lab_to_lch(lab))
            unit = np.clip(np.nan_to_num(rgb), 0, 1)
            for hsx, back, old_back in (
                (old_rgb_to_hsv(unit), bc.hsv_to_rgb, old_hsv_to_rgb),
                (old_rgb_to_hsl(unit), bc.hsl_to_rgb, old_hsl_to_rgb),
            ):
                assert _bitwise_same(back(hsx), old_back(hsx))
                any_hue = hsx.copy()  # hues outside [0, 360) and NaN take np.remainder
                any_hue[..., 0] = rng.uniform(-1000, 1000, any_hue.shape[:-1])
                any_hue.reshape(-1, 3)[::97, 0] = np.nan
                assert _bitwise_same(back(any_hue), old_back(any_hue))


def test_blocked_colour_conversions_keep_shapes_and_refusals():
    for shape in [(3,), (0, 3), (4, 5, 3), (2, 0, 3)]:
        rgb = np.random.default_rng(0).random(shape)
        assert _same(bc.rgb_to_hsv(rgb), old_rgb_to_hsv(rgb))
        assert _same(bc.hsl_to_rgb(rgb), old_hsl_to_rgb(rgb))
        assert _same(bc.lab_to_lch(rgb), old_lab_to_lch(rgb))
    with pytest.raises(Exception, match="divide them by 100"):
        bc.hsv_to_rgb(np.array([[0.0, 0.5, 0.5]] * 40000 + [[210.0, 50.0, 100.0]]))
    # NaN in every colour of a block but not of the image: the others are judged
    mixed = np.array([[np.nan, 0.5, 0.5]] * 40000 + [[0.0, 1.5, 0.5]])
    with pytest.raises(Exception, match="saturation"):
        bc.hsl_to_rgb(mixed)


def test_colour_conversions_hold_no_whole_image_temporaries(monkeypatch):
    monkeypatch.setattr(_elementwise, "BLOCK_COLOURS", 1 << 12, raising=False)
    rgb = np.random.default_rng(2).random((300, 400, 3)).astype(np.float32)
    bc.rgb_to_hsv(rgb[:2])
    hsv = bc.rgb_to_hsv(rgb)
    # The result and a block's scratch; the whole-array versions held several images.
    for fn, arg in ((bc.rgb_to_hsv, rgb), (bc.hsv_to_rgb, hsv), (bc.lab_to_lch, rgb)):
        assert peak_bytes(fn, arg) < 1.3 * rgb.nbytes, fn
