"""Colour bleeding at depth edges: the ``lens`` refocus keeps foreground and background apart.

A red-only textured disk (foreground, in focus) in front of a blue-only
textured background (behind, blurred) with an exact depth map: any red outside
the disk or blue inside it is colour that crossed the depth edge.  The
``threshold`` recipe is the control: it must show the bleeding the ``lens``
method avoids, so the measure can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from boda.edit import refocus


@pytest.fixture
def scene():
    rng = np.random.default_rng(3)
    size, radius = 128, 40
    yy, xx = np.mgrid[:size, :size]
    obj = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2
    image = np.zeros((size, size, 3), np.float32)
    fg = 0.1 + 0.7 * ndimage.gaussian_filter(rng.random((size, size)), 1.0)
    bg = 0.1 + 0.7 * ndimage.gaussian_filter(rng.random((size, size)), 1.0)
    image[..., 0] = np.where(obj, np.clip(fg, 0, 0.8), 0.0)
    image[..., 2] = np.where(obj, 0.0, np.clip(bg, 0, 0.8))
    image[..., 1] = 0.3
    depth = np.where(obj, 0.2, 0.7).astype(np.float32)
    d_out = ndimage.distance_transform_edt(~obj)
    d_in = ndimage.distance_transform_edt(obj)
    return image, depth, obj, d_out, d_in


def test_lens_has_no_bleeding_either_way(scene):
    image, depth, obj, d_out, d_in = scene
    out = refocus(image, depth, focus_depth=0.2, aperture=16)  # background CoC 8 px
    # Foreground red never reaches the background, not even next to the edge.
    assert out[~obj, 0].max() < 1 / 255
    # Background blue never reaches the sharp subject, which keeps its pixels.
    assert out[obj, 2].max() < 1 / 255
    np.testing.assert_array_equal(out[obj], image[obj])
    # The background really is blurred (the test would be empty otherwise).
    band = (d_out > 10) & (d_out < 30)
    assert np.abs(out[band, 2] - image[band, 2]).mean() > 0.02


def test_threshold_control_bleeds_within_its_blur_radius(scene):
    image, depth, obj, d_out, d_in = scene
    out = refocus(image, depth, focus_depth=0.2, aperture=8, method="threshold")
    red_near = out[(d_out > 0) & (d_out <= 3), 0].mean()
    red_far = out[d_out > 10, 0].max()
    assert red_near > 40 / 255  # the blurred background carries the subject's red
    assert red_far < 1 / 255  # ... but not beyond the blur radius
    assert out[(d_in > 0) & (d_in <= 1), 2].mean() > 10 / 255  # feathered mask mixes blue in
