"""Audit of hole filling and the guided filter against their papers and references.

Telea 2004 (reference: OpenCV's INPAINT_TELEA), the biharmonic fill (reference:
scikit-image's inpaint_biharmonic), Criminisi et al. 2004 (P = C * D), the mask
conventions, and He, Sun & Tang's guided filter (Alg. 1 of the TPAMI 2013 paper,
with OpenCV ximgproc's reflecting border).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from boda.edit import (
    _exemplar,
    inpaint,
    inpaint_biharmonic,
    inpaint_exemplar,
    inpaint_telea,
    to_hole_mask,
)
from boda.errors import InvalidImageError, InvalidParameterError
from boda.segment import guided_filter

cv2 = pytest.importorskip("cv2")
PRIMITIVES = [inpaint_telea, inpaint_biharmonic, inpaint_exemplar]


@pytest.fixture(scope="module")
def crop(kodak_rgb) -> np.ndarray:
    return np.ascontiguousarray(kodak_rgb[100:196, 150:270])


def _masks(shape) -> dict[str, np.ndarray]:
    h, w = shape
    out = {}
    for name, region in {
        "corner": np.s_[0:20, 0:30],
        "full-height band": np.s_[:, 50:60],
        "one pixel": np.s_[40:41, 60:61],
        "one pixel in a corner": np.s_[0:1, 0:1],
        "one pixel on an edge": np.s_[h - 1 :, 60:61],
        "all but a 2 px frame": np.s_[2 : h - 2, 2 : w - 2],
    }.items():
        mask = np.zeros(shape, bool)
        mask[region] = True
        out[name] = mask
    almost_all = np.ones(shape, bool)
    almost_all[40:45, 50:55] = False
    out["all but 5x5 pixels"] = almost_all
    return out


# --- Telea ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_masks((96, 120))))
def test_telea_matches_opencv_on_border_tiny_and_near_total_holes(crop, name):
    hole = _masks(crop.shape[:2])[name]
    img16 = (crop * 65535).round().astype(np.uint16)
    mask8 = hole.astype(np.uint8) * 255
    ref = np.stack(
        [cv2.inpaint(np.ascontiguousarray(img16[:, :, c]), mask8, 5, cv2.INPAINT_TELEA)
         for c in range(3)], 2
    ) / 65535.0  # fmt: skip
    diff = np.abs(inpaint(img16, hole, method="telea") - ref)[hole]
    assert diff.mean() < 0.5 / 255 and diff.max() < 16 / 255


@pytest.mark.parametrize("radius", [0.3, 0.5, 0.99])
@pytest.mark.parametrize("gradient", [False, True])
def test_telea_radius_below_one_pixel_still_fills_the_hole(crop, radius, gradient):
    # A radius under 1 px held no neighbour at all: every hole pixel kept what was
    # under the mask (the object to remove stayed).  OpenCV uses max(radius, 1).
    hole = np.zeros(crop.shape[:2], bool)
    hole[30:50, 40:70] = True
    damaged = crop.copy()
    damaged[hole] = 0.0
    out = inpaint(damaged, hole, method="telea", radius=radius, gradient=gradient)
    np.testing.assert_array_equal(
        out, inpaint(damaged, hole, method="telea", radius=1, gradient=gradient)
    )
    assert np.abs(out - crop)[hole].mean() < 0.35 * np.abs(damaged - crop)[hole].mean()
    opencv = inpaint(damaged, hole, method="telea-opencv", radius=radius)
    assert np.abs(opencv - crop)[hole].mean() < 0.35 * np.abs(damaged - crop)[hole].mean()


# --- biharmonic -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_masks((96, 120))))
def test_biharmonic_matches_scikit_image(crop, name):
    restoration = pytest.importorskip("skimage.restoration")
    hole = _masks(crop.shape[:2])[name]
    # float64 for the reference: scikit-image solves float32 images in float32,
    # several 8-bit levels off on near-total holes; boda solves in float64.
    ref = restoration.inpaint_biharmonic(crop.astype(np.float64), hole, channel_axis=-1)
    out = inpaint(crop, hole, method="biharmonic")
    assert np.abs(out - ref)[hole].max() < 1e-6


# --- Criminisi et al. -------------------------------------------------------------------


def test_exemplar_starts_where_an_isophote_meets_the_front(monkeypatch):
    # P(p) = C(p) D(p): along one side of a square hole C is the same, and D is
    # zero except where the vertical edge crosses the front, so the first patch
    # holds the edge (Criminisi et al. 2004, eq. 1 and Fig. 3; boda takes the
    # isophote as the strongest gradient among the patch's known pixels).
    img = np.zeros((48, 48), np.float32)
    img[:, 24:] = 1.0
    hole = np.zeros(img.shape, bool)
    hole[16:32, 14:34] = True
    targets = []
    best = _exemplar._best_source

    def spy(img_, known, source, py, px, half, radius):
        targets.append((py - half, px - half))  # in image coordinates
        return best(img_, known, source, py, px, half, radius)

    monkeypatch.setattr(_exemplar, "_best_source", spy)
    out = inpaint(img, hole, method="exemplar", patch_size=7)
    y, x = targets[0]
    assert y in (16, 31) and 23 - 3 <= x <= 24 + 3  # the 7x7 patch holds column 23 or 24
    np.testing.assert_array_equal(out, img)


def test_exemplar_fill_is_the_same_near_borders_with_local_and_global_search():
    tile = np.random.default_rng(0).random((6, 6, 3)).astype(np.float32)
    texture = np.tile(tile, (20, 20, 1))
    hole = np.zeros(texture.shape[:2], bool)
    hole[0:10, 0:10] = True  # a corner
    hole[110:, 60:61] = True  # a one-pixel-wide cut into the bottom edge
    hole[50:60, 116:] = True  # the right edge
    for radius in (8, 48, None):
        out = inpaint(texture, hole, method="exemplar", search_radius=radius)
        np.testing.assert_array_equal(out, texture)


# --- shapes and masks -------------------------------------------------------------------


@pytest.mark.parametrize("fill", PRIMITIVES)
def test_a_palette_image_keeps_its_colour_channels(crop, fill):
    # fill_result took a palette (P) image for gray because the Pillow object is
    # 2-D: only the red channel of the filled photo came back.
    rgb = (crop * 255).round().astype(np.uint8)
    palette = Image.fromarray(rgb).quantize(64)
    hole = np.zeros(crop.shape[:2], bool)
    hole[30:40, 40:50] = True
    out = fill(palette, hole)
    assert out.shape == crop.shape
    np.testing.assert_array_equal(out, fill(np.asarray(palette.convert("RGB")), hole))
    assert fill(palette, np.zeros_like(hole)).shape == crop.shape


@pytest.mark.parametrize("method", ["telea", "biharmonic", "exemplar", "ns", "telea-opencv"])
def test_inpaint_keeps_a_channel_axis_it_was_given(crop, method):
    # The docstring promises the image's shape; (H, W, 1) came back (H, W)
    # (the primitives kept it).
    gray = np.ascontiguousarray(crop.mean(axis=2, keepdims=True))
    hole = np.zeros(crop.shape[:2], bool)
    hole[30:40, 40:50] = True
    out = inpaint(gray, hole, method=method)
    assert out.shape == gray.shape
    np.testing.assert_array_equal(out[:, :, 0], inpaint(gray[:, :, 0], hole, method=method))
    assert inpaint(gray, np.zeros_like(hole), method=method).shape == gray.shape


@pytest.mark.parametrize(("dtype", "value"), [(np.uint16, 255), (np.uint8, 100), (np.uint16, 1000)])
def test_an_integer_mask_below_half_scale_is_refused_not_read_as_no_hole(crop, dtype, value):
    # A 0/255 mask stored as uint16, or one drawn in dark gray, marked nothing:
    # inpaint returned the photo untouched (the CLI already refused such files).
    hole = np.zeros(crop.shape[:2], bool)
    hole[30:40, 40:50] = True
    with pytest.raises(InvalidImageError, match=r"mask .*half.*\(true / 255 = fill\)"):
        inpaint(crop, hole.astype(dtype) * value, method="telea")
    # Half scale or more, nothing marked, bool and soft float masks read as before.
    half = np.iinfo(dtype).max // 2 + 1
    np.testing.assert_array_equal(to_hole_mask(hole.astype(dtype) * half, hole.shape), hole)
    assert not to_hole_mask(np.zeros(hole.shape, dtype), hole.shape).any()
    assert not to_hole_mask(hole * np.float32(0.4), hole.shape).any()


def test_anti_aliased_mask_edges_follow_the_half_scale_rule(crop):
    hole = np.zeros(crop.shape[:2], bool)
    hole[30:50, 40:70] = True
    soft = ndimage.gaussian_filter(hole.astype(np.float64), 1.5)
    for mask, expected in (
        ((soft * 255).round().astype(np.uint8), (soft * 255).round() >= 127.5),
        ((soft * 65535).round().astype(np.uint16), (soft * 65535).round() >= 32767.5),
        (soft.astype(np.float32), soft.astype(np.float32) >= 0.5),
    ):
        np.testing.assert_array_equal(to_hole_mask(mask, hole.shape), expected)
        out = inpaint(crop, mask, method="telea")
        np.testing.assert_array_equal(out[~expected], crop[~expected])


# --- guided filter ----------------------------------------------------------------------


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over (2r+1)^2 windows, OpenCV's BORDER_REFLECT (what ximgproc uses)."""
    k = 2 * r + 1
    pad = ((r, r), (r, r)) + ((0, 0),) * (x.ndim - 2)
    padded = np.pad(x, pad, mode="symmetric")
    s = padded.cumsum(0).cumsum(1)
    s = np.pad(s, ((1, 0), (1, 0)) + ((0, 0),) * (x.ndim - 2))
    return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)


def _guided_reference(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He, Sun & Tang, TPAMI 2013, Alg. 1 (gray guide) and eq. 14 (colour guide)."""
    if guide.ndim == 2:
        mean_i, mean_p = _box(guide, r), _box(p, r)
        var_i = _box(guide * guide, r) - mean_i * mean_i
        cov_ip = _box(guide * p, r) - mean_i * mean_p
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return _box(a, r) * guide + _box(b, r)
    mean_i, mean_p = _box(guide, r), _box(p, r)
    cov = _box(guide * p[..., None], r) - mean_i * mean_p[..., None]
    sigma = np.empty(p.shape + (3, 3))
    for i in range(3):
        for j in range(3):
            product = _box(guide[..., i] * guide[..., j], r)
            sigma[..., i, j] = product - mean_i[..., i] * mean_i[..., j]
    a = np.linalg.solve(sigma + eps * np.eye(3), cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    return (_box(a, r) * guide).sum(-1) + _box(b, r)


@pytest.mark.parametrize(
    ("radius", "eps"), [(1, 1e-3), (4, 1e-3), (8, 1e-2), (4, 1e-6), (70, 1e-2)]
)
@pytest.mark.parametrize("colour", [False, True])
def test_guided_filter_matches_algorithm_1(crop, radius, eps, colour):
    guide = crop.astype(np.float64) if colour else crop.mean(axis=2).astype(np.float64)
    source = (crop.mean(axis=2) > 0.4).astype(np.float64)
    out = guided_filter(guide, source, radius, eps)
    assert out.dtype == np.float32 and out.shape == source.shape
    # Everywhere, borders included (radius 70 is wider than the 96 px crop).
    np.testing.assert_allclose(out, _guided_reference(guide, source, radius, eps), atol=2e-6)
    ximgproc = getattr(cv2, "ximgproc", None)
    if ximgproc is not None:
        ref = ximgproc.guidedFilter(guide.astype(np.float32), source.astype(np.float32),
                                    radius, eps)
        np.testing.assert_allclose(out, ref, atol=1e-3)


@pytest.mark.parametrize("radius", [2.7, 2.0, np.float64(3.5)])
def test_guided_filter_refuses_a_fractional_radius(crop, radius):
    # 2.7 was silently cut to 2 (a 5x5 window where 7x7 was meant).
    source = (crop.mean(axis=2) > 0.4).astype(np.float32)
    with pytest.raises(InvalidParameterError, match="radius must be a whole number"):
        guided_filter(crop, source, radius)
    np.testing.assert_array_equal(guided_filter(crop, source, np.int64(3)),
                                  guided_filter(crop, source, 3))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"shape": (50.7, 60)}, "shape"),  # was cut to 50 rows
    ({"shape": 50}, "shape"),
    ({"hole_ratio": "0.2"}, "hole_ratio"),  # was a bare TypeError
    ({"hole_ratio": np.nan}, "hole_ratio"),
    ({"tolerance": np.nan}, "tolerance"),  # was taken: every shape then fitted
    ({"max_shapes": 2.5}, "max_shapes"),  # was a bare TypeError
])  # fmt: skip
def test_random_irregular_mask_names_a_bad_argument(kwargs, match):
    from boda.edit import random_irregular_mask

    args = {"shape": (50, 60), "hole_ratio": 0.2} | kwargs
    with pytest.raises(InvalidParameterError, match=match):
        random_irregular_mask(**args)
    good = random_irregular_mask(np.array([50, 60]), np.float32(0.2), seed=0,
                                 max_shapes=np.int64(500))
    assert good.shape == (50, 60) and abs(good.mean() - 0.2) <= 0.01
