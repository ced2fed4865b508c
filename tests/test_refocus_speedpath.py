"""The fast path of the ``lens`` refocus against a plain direct-convolution reference.

``refocus(method="lens")`` blurs each depth layer only inside its bounding
box, by ``cv2.filter2D`` for small kernels and by a split real FFT for larger
ones, in worker threads.  These tests check each of those shortcuts against
the straightforward computation: full-frame layers, one ``scipy.ndimage``
direct convolution per channel, one thread.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from boda.edit import (
    _refocus,
    circle_of_confusion,
    disk_kernel,
    hexagon_kernel,
    linear_to_srgb,
    refocus,
    srgb_to_linear,
)


def _direct(layer: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Zero-padded linear convolution of each channel of ``(H, W, C)``, in float64."""
    return np.stack(
        [ndimage.convolve(layer[:, :, i].astype(np.float64), kernel.astype(np.float64),
                          mode="constant") for i in range(layer.shape[2])],
        axis=2,
    )


def _reference_lens(image, depth, *, focus_depth, aperture, kernel="disk", max_layers=32,
                    highlight_gain=2.0, highlight_threshold=0.9):
    """The documented lens algorithm, written plainly: full-frame layers, direct convolution.

    (Without the renderer's snapping of layer positions within 1e-5 of a
    layer, which moves weights by at most 1e-5.)
    """
    kernel_fn = disk_kernel if kernel == "disk" else hexagon_kernel
    gray = image.ndim == 2
    rgb = image[:, :, None] if gray else image
    coc = circle_of_confusion(depth, focus_depth=focus_depth, aperture=aperture).astype(np.float64)
    lin = srgb_to_linear(np.clip(rgb, 0, 1)).astype(np.float64)
    s = np.clip((lin.max(axis=2) - highlight_threshold) / (1 - highlight_threshold), 0, 1)
    lin = lin * (1 + highlight_gain * s * s * (3 - 2 * s))[:, :, None]
    cmin, cmax = coc.min(), coc.max()
    step = max(1.0, (cmax - cmin) / (max_layers - 1))
    k0 = math.floor(cmin / step)
    levels = step * np.arange(k0, math.ceil(cmax / step) + 1)
    pad = math.ceil(max(abs(cmin), abs(cmax))) + 1
    lin_p = np.pad(lin, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    pos = np.pad(coc / step - k0, pad, mode="reflect")
    acc = np.zeros(lin_p.shape[:2] + (lin.shape[2] + 1,))
    near = np.zeros(lin_p.shape[:2])
    for k in range(len(levels) - 1, -1, -1):
        weight = np.maximum(0.0, 1.0 - np.abs(pos - k))[:, :, None]
        layer = np.concatenate([lin_p * weight, weight], axis=2)
        blurred = _direct(layer, kernel_fn(abs(levels[k])))
        alpha = blurred[:, :, -1:]
        acc = blurred + (1 - alpha) * acc
        if levels[k] <= -0.5:
            near = np.maximum(near, np.where(alpha[:, :, 0] > 1e-3, abs(levels[k]), 0.0))
    acc, near = acc[pad:-pad, pad:-pad], near[pad:-pad, pad:-pad]
    lin = acc[:, :, :-1] / np.maximum(acc[:, :, -1:], 1e-12)
    if highlight_gain > 0:  # the boost's inverse, by bisection on the brightest channel
        q = lin.max(axis=2)
        lo, hi = np.full_like(q, highlight_threshold), np.ones_like(q)
        for _ in range(60):
            mid = (lo + hi) / 2
            s = np.clip((mid - highlight_threshold) / (1 - highlight_threshold), 0, 1)
            above = mid * (1 + highlight_gain * s * s * (3 - 2 * s)) > q
            hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
        lin = np.where((q > highlight_threshold)[:, :, None], lin * (lo / q)[:, :, None], lin)
    out = linear_to_srgb(np.clip(lin, 0, 1))
    sharp = (np.abs(coc) < 0.5) & (near < 0.5)
    out[sharp] = rgb[sharp]
    return out[:, :, 0] if gray else out


def _scene(seed: int, shape=(56, 72), channels=3):
    rng = np.random.default_rng(seed)
    img = np.clip(ndimage.gaussian_filter(rng.random(shape + (channels,)), (0.8, 0.8, 0)) * 1.6
                  - 0.3, 0, 1).astype(np.float32)
    img[rng.random(shape) > 0.985] = 1.0  # a few clipped highlights, for the boost
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    depth = (0.3 + 0.7 * yy / shape[0]).astype(np.float32)  # a receding floor
    depth[(yy - 20) ** 2 + (xx - 30) ** 2 < 12**2] = 0.1  # a near object
    return img[:, :, 0] if channels == 1 else img, depth


@pytest.mark.parametrize(
    ("focus", "aperture", "kernel", "max_layers"),
    [
        (0.1, 14.0, "disk", 32),  # subject in focus, floor blurred (direct and FFT kernels)
        (0.65, 22.0, "disk", 32),  # focus on the floor: a blurred near field and near object
        (0.5, 18.0, "hexagon", 32),
        (0.1, 30.0, "disk", 6),  # coarse layers (step > 1 px)
    ],
)
def test_lens_matches_the_direct_reference(focus, aperture, kernel, max_layers):
    img, depth = _scene(0)
    kw = dict(focus_depth=focus, aperture=aperture, kernel=kernel, max_layers=max_layers)
    out = refocus(img, depth, **kw)
    ref = _reference_lens(img, depth, **kw)
    np.testing.assert_allclose(out, ref, atol=2e-5)
    assert not np.array_equal(out, img)  # something was blurred


def test_lens_gray_matches_the_direct_reference():
    img, depth = _scene(1, channels=1)
    out = refocus(img, depth, focus_depth=0.65, aperture=16)
    assert out.shape == img.shape
    np.testing.assert_allclose(out, _reference_lens(img, depth, focus_depth=0.65, aperture=16),
                               atol=2e-5)


@pytest.mark.parametrize("radius", [1.0, 3.0, 5.0, 6.0, 9.0, 13.0])
@pytest.mark.parametrize("box", [(10, 70, 12, 90), (0, 80, 0, 100), (0, 45, 30, 100)])
def test_blur_layer_direct_and_fft_paths_equal_direct_convolution(radius, box):
    """Both convolution engines, boxes inside the frame and clipped at its edges.

    As in the renderer, the layer (here layer 2) keeps a margin of the kernel
    reach inside the box, except where the box meets the frame's edge.
    """
    rng = np.random.default_rng(int(radius * 10))
    lin = rng.random((80, 100, 3)).astype(np.float32)
    pos = np.full((80, 100), 9.0, np.float32)  # layer 2 has no weight here
    y0, y1, x0, x1 = box
    reach = math.ceil(radius) + 1
    inner = (slice(y0 + reach * (y0 > 0), y1 - reach * (y1 < 80)),
             slice(x0 + reach * (x0 > 0), x1 - reach * (x1 < 100)))
    pos[inner] = rng.uniform(0, 4, pos[inner].shape)
    wrap = (y0 == 0 or y1 == 80, x0 == 0 or x1 == 100)
    buffers = np.empty(80 * 100 * 4, np.float32), np.empty(120 * 120 * 5, np.complex64)
    for kernel in (disk_kernel(radius), hexagon_kernel(radius)):
        out = _refocus._blur_layer(lin, pos, 2, box, kernel, wrap, *buffers)
        weight = np.maximum(0.0, 1.0 - np.abs(pos[y0:y1, x0:x1] - 2.0))[:, :, None]
        layer = np.concatenate([lin[y0:y1, x0:x1] * weight, weight], axis=2)
        assert out.shape == layer.shape and out.dtype == np.float32
        np.testing.assert_allclose(out, _direct(layer, kernel), atol=2e-6)
        assert out.min() >= 0.0


@pytest.mark.parametrize("n_levels", [3, 40, 150])  # 150: more layers than one 64-bit word
def test_layer_spans_are_exact_bounding_rows_and_columns(n_levels):
    rng = np.random.default_rng(n_levels)
    pos = rng.uniform(0, n_levels - 1, (30, 50)).astype(np.float32)
    pos[::7] = np.floor(pos[::7])  # exact integers: a pixel in one layer only
    pos[5, 5], pos[6, 6] = 0.0, n_levels - 1  # both ends present
    rows, cols = _refocus._layer_spans(pos, n_levels)
    for k in range(n_levels):
        inside = np.abs(pos.astype(np.float64) - k) < 1  # the hat weight is > 0
        np.testing.assert_array_equal(rows[k], inside.any(axis=1))
        np.testing.assert_array_equal(cols[k], inside.any(axis=0))


def test_sparse_layers_far_apart_are_blurred_in_their_own_boxes():
    """Two small objects at the same depth in opposite corners share one layer's box."""
    img, _ = _scene(2, shape=(90, 120))
    depth = np.full((90, 120), 0.2, np.float32)
    depth[5:20, 5:25] = 0.9
    depth[70:85, 95:115] = 0.9
    depth[40:50, 50:70] = 0.6
    kw = dict(focus_depth=0.2, aperture=20.0)
    np.testing.assert_allclose(refocus(img, depth, **kw), _reference_lens(img, depth, **kw),
                               atol=2e-5)


def test_result_does_not_depend_on_the_thread_count(monkeypatch):
    img, depth = _scene(3, shape=(70, 90))
    kw = dict(focus_depth=0.65, aperture=20.0)
    monkeypatch.setattr(_refocus, "usable_cores", lambda: 1)
    one = refocus(img, depth, **kw)
    monkeypatch.setattr(_refocus, "usable_cores", lambda: 4)
    four = refocus(img, depth, **kw)
    np.testing.assert_array_equal(one, four)


@pytest.mark.parametrize(("shape", "pad"), [((20, 30, 3), 4), ((20, 30), 19), ((5, 40), 9),
                                            ((1, 1, 3), 3)])
def test_reflect_border_fill_equals_np_pad(shape, pad):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (image.ndim - 2)
    padded = np.full(np.pad(image, widths).shape, np.nan, np.float32)
    padded[pad : pad + shape[0], pad : pad + shape[1]] = image
    _refocus._fill_reflect(padded, pad)
    np.testing.assert_array_equal(padded, np.pad(image, widths, mode="reflect"))


def test_small_chunks_give_the_same_result(monkeypatch):
    """Row chunking (cv2 chunks overlap by the radius) changes nothing."""
    img, depth = _scene(4, shape=(64, 80))
    kw = dict(focus_depth=0.65, aperture=14.0)
    whole = refocus(img, depth, **kw)
    monkeypatch.setattr(_refocus, "_CHUNK_BYTES", 1)  # one row (or 8 x radius rows) at a time
    np.testing.assert_allclose(refocus(img, depth, **kw), whole, atol=1e-6)
