"""Inpainting, refocus kernels and the guided filter with inputs a user gets wrong.

Each case once gave NaN everywhere, a wrong scale or a raw exception.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from boda.edit import (
    disk_kernel,
    hexagon_kernel,
    inpaint,
    inpaint_biharmonic,
    inpaint_exemplar,
    inpaint_telea,
    register_inpaint_method,
)
from boda.errors import InvalidImageError, InvalidParameterError
from boda.segment import guided_filter

PRIMITIVES = [inpaint_telea, inpaint_biharmonic, inpaint_exemplar]


def _photo(rng, shape=(40, 48, 3)) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]] / 12.0
    base = 0.5 + 0.3 * np.sin(x) * np.cos(y)
    img = base[:, :, None] + 0.05 * rng.random(shape if len(shape) == 3 else shape + (1,))
    return np.clip(img, 0, 1).astype(np.float32).reshape(shape)


def _hole(shape=(40, 48)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[16:22, 20:27] = True
    return mask


@pytest.mark.parametrize("method", ["telea", "biharmonic", "exemplar", "ns", "telea-opencv"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_inpaint_refuses_non_finite_images(rng, method, bad):
    img = _photo(rng)
    img[2, 3, 1] = bad  # far from the hole: it used to turn the whole fill into NaN
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        inpaint(img, _hole(), method=method)


@pytest.mark.parametrize("fill", PRIMITIVES)
def test_primitives_refuse_non_finite_images(rng, fill):
    img = _photo(rng)
    img[30, 40, 0] = np.nan
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        fill(img, _hole())


@pytest.mark.parametrize("fill", PRIMITIVES)
def test_primitives_take_gray_images(rng, fill):
    gray = _photo(rng, (40, 48))
    out = fill(gray, _hole())
    assert out.shape == gray.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[~_hole()], gray[~_hole()])
    # The same as going through inpaint() (which adds and drops a channel axis).
    np.testing.assert_array_equal(out, inpaint(gray, _hole(), method=fill.__name__[8:]))


@pytest.mark.parametrize("fill", PRIMITIVES)
def test_primitives_convert_uint8_to_unit_range(rng, fill):
    img8 = (_photo(rng) * 255).round().astype(np.uint8)
    out = fill(img8, _hole())
    assert out.dtype == np.float32 and out.max() <= 1.0
    np.testing.assert_allclose(out[~_hole()], img8[~_hole()] / 255.0, atol=1e-6)


@pytest.mark.parametrize("fill", PRIMITIVES)
def test_primitives_take_lists_pil_images_and_uint8_masks(rng, fill):
    img = _photo(rng)
    mask8 = _hole().astype(np.uint8) * 255
    expected = fill(img, _hole())
    np.testing.assert_array_equal(fill(img.tolist(), mask8), expected)
    pil = Image.fromarray((img * 255).round().astype(np.uint8))
    assert fill(pil, _hole()).shape == img.shape


@pytest.mark.parametrize("fill", PRIMITIVES)
def test_primitives_refuse_empty_images_and_wrong_masks(rng, fill):
    with pytest.raises(InvalidImageError, match="empty"):
        fill(np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), bool))
    with pytest.raises(InvalidImageError, match="mask"):
        fill(_photo(rng), np.zeros((10, 10), bool))


@pytest.mark.parametrize("fill", PRIMITIVES)
@pytest.mark.parametrize("side", [1, 2])
def test_primitives_refuse_all_hole_masks(rng, fill, side):
    # biharmonic used to die in SuperLU ("Factor is exactly singular").
    with pytest.raises(InvalidParameterError, match="every pixel"):
        fill(rng.random((side, side, 3)).astype(np.float32), np.ones((side, side), bool))


@pytest.mark.parametrize("fill", PRIMITIVES)
def test_primitives_without_holes_return_the_image(rng, fill):
    img = _photo(rng)
    out = fill(img, np.zeros(img.shape[:2], bool))
    np.testing.assert_array_equal(out, img)


def test_primitives_keep_a_channel_axis_they_were_given(rng):
    img = _photo(rng, (40, 48))[:, :, None]
    for fill in PRIMITIVES:
        assert fill(img, _hole()).shape == (40, 48, 1)


def test_biharmonic_tiny_images(rng):
    img = rng.random((2, 2, 3)).astype(np.float32)
    mask = np.array([[True, False], [False, False]])
    out = inpaint_biharmonic(img, mask)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[~mask], img[~mask])


def test_register_inpaint_method_refuses_non_callables():
    with pytest.raises(InvalidParameterError, match="needs a function"):
        register_inpaint_method("not-a-function", 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="non-empty string"):
        register_inpaint_method("", lambda image, mask: image)


@pytest.mark.parametrize("kernel", [disk_kernel, hexagon_kernel])
@pytest.mark.parametrize("radius", [float("nan"), float("inf"), "wide", None])
def test_kernels_refuse_non_finite_radii(kernel, radius):
    with pytest.raises(InvalidParameterError, match="radius"):
        kernel(radius)


@pytest.mark.parametrize("kernel", [disk_kernel, hexagon_kernel])
@pytest.mark.parametrize("samples", [0, -2, 2.5, True])
def test_kernels_refuse_bad_samples(kernel, samples):
    # samples=0 used to return an all-NaN kernel.
    with pytest.raises(InvalidParameterError, match="samples"):
        kernel(3, samples=samples)


def test_kernels_still_accept_numpy_scalars_and_negative_radii():
    np.testing.assert_array_equal(disk_kernel(np.float32(2.5), samples=np.int64(4)),
                                  disk_kernel(2.5))
    assert disk_kernel(-1.0).tolist() == [[1.0]]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_guided_filter_refuses_non_finite_guide_and_source(rng, bad):
    guide = _photo(rng)
    source = (rng.random((40, 48)) > 0.5).astype(np.float32)
    bad_guide = guide.copy()
    bad_guide[5, 5, 2] = bad
    with pytest.raises(InvalidImageError, match="guide .*NaN or infinite"):
        guided_filter(bad_guide, source)
    with pytest.raises(InvalidImageError, match="guide .*NaN or infinite"):
        guided_filter(bad_guide[:, :, 2], source)
    bad_source = source.copy()
    bad_source[7, 9] = bad
    with pytest.raises(InvalidImageError, match="source .*NaN or infinite"):
        guided_filter(guide, bad_source)
    assert np.isfinite(guided_filter(guide, source)).all()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"radius": np.nan}, "radius"),  # was a bare ValueError from int()
    ({"radius": "2"}, "radius"),
    ({"eps": np.inf}, "eps"),  # was NaN everywhere
])  # fmt: skip
def test_guided_filter_refuses_radius_and_eps_that_are_not_numbers(rng, kwargs, match):
    source = (rng.random((40, 48)) > 0.5).astype(np.float32)
    with pytest.raises(InvalidParameterError, match=match):
        guided_filter(_photo(rng), source, **kwargs)


def test_long_edits_report_their_progress():
    from boda.edit import inpaint
    from boda.segment import grabcut

    rng = np.random.default_rng(0)
    img = rng.random((40, 48, 3)).astype(np.float32)
    hole = np.zeros((40, 48), bool)
    hole[15:25, 18:30] = True
    seen: list[tuple[int, int]] = []
    filled = inpaint(img, hole, method="exemplar", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (120, 120) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert np.isfinite(filled).all()
    steps: list[tuple[int, int]] = []
    grabcut(img, (8, 8, 30, 24), iterations=3, progress=lambda d, t: steps.append((d, t)))
    assert steps[0][1] == 3 and steps[-1] == (3, 3)
