"""Synthetic refocus from a depth map: a layered depth-of-field renderer.

Two methods share one entry point, :func:`refocus`:

- ``"threshold"``, the simple recipe: split the image into an in-focus and a
  defocused part by thresholding the depth, blur the defocused part, blend;
- ``"lens"``: a signed circle of confusion (CoC) per pixel, depth layers
  blurred with the aperture's kernel and composited back to front with
  premultiplied alpha in linear light, highlights boosted so they bloom into
  bokeh discs, and in-focus pixels restored sharp wherever no blurred
  foreground spreads over them.

Depth conventions: a map's values are used in its own units (``[0, 1]`` for
8/16-bit images, anything for float maps).  ``near="dark"`` says small values
are near (a depth map); ``near="bright"`` says large values are near (a
disparity or inverse-depth map, what most monocular networks output).
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from boda.color import linear_to_srgb, srgb_to_linear  # IEC 61966-2-1, one copy
from boda.core.blocks import usable_cores
from boda.core.image import as_float_image
from boda.core.numbers import finite_float, real_number
from boda.edit._depth import check_depth
from boda.errors import InvalidImageError, InvalidParameterError

__all__ = [
    "circle_of_confusion",
    "disk_kernel",
    "hexagon_kernel",
    "linear_to_srgb",
    "refocus",
    "resolve_focus",
    "srgb_to_linear",
]

_METHODS = ("lens", "threshold")
_MODELS = ("disparity", "thin_lens")
_KERNELS = ("disk", "hexagon")
# Kernels up to this size are applied directly (cv2.filter2D), larger ones by FFT.
_DIRECT_MAX_SIZE = 11
# Layer positions closer than this (in layers) to a whole layer are put on it.
_SNAP = 1e-5
# Per-pixel work runs in row chunks of about this many bytes (see _chunks).
_CHUNK_BYTES = 1 << 21


def _coverage_kernel(radius: float, inside, samples: int) -> np.ndarray:
    r = finite_float(radius)
    if r is None:
        raise InvalidParameterError(
            f"kernel radius must be a finite number of pixels, got {radius!r}"
        )
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
        raise InvalidParameterError(
            f"samples must be a positive integer (sub-pixel points per axis), got {samples!r}"
        )
    samples = int(samples)
    r = max(r, 0.0)
    half = math.ceil(r)
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    grid = np.arange(-half, half + 1, dtype=np.float64)
    fine = (grid[:, None] + offsets[None, :]).ravel()
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    covered = inside(yy, xx, r).astype(np.float64)
    n = 2 * half + 1
    kernel = covered.reshape(n, samples, n, samples).mean(axis=(1, 3))
    if kernel.sum() == 0:  # radius below half a sub-sample: the identity
        kernel[half, half] = 1.0
    return (kernel / kernel.sum()).astype(np.float32)


def disk_kernel(radius: float, *, samples: int = 4) -> np.ndarray:
    """Normalised anti-aliased disk (circular aperture) of the given radius in pixels.

    Each pixel's weight is the fraction of ``samples x samples`` sub-pixel
    points inside the circle, so the kernel grows smoothly with the radius.
    A radius below half a sub-sample (or negative) gives the 1x1 identity.

    Raises
    ------
    InvalidParameterError
        A radius that is not a finite number, or ``samples`` not a positive integer.
    """
    return _coverage_kernel(radius, lambda y, x, r: x * x + y * y <= r * r, samples)


def hexagon_kernel(radius: float, *, samples: int = 4) -> np.ndarray:
    """Normalised regular hexagon (six-blade aperture), circumradius ``radius``, flat top."""
    s3 = math.sqrt(3.0)
    return _coverage_kernel(
        radius,
        lambda y, x, r: (np.abs(y) <= s3 / 2 * r) & (s3 * np.abs(x) + np.abs(y) <= s3 * r),
        samples,
    )


def _normaliser(depth: np.ndarray, near: str):
    """Map values -> t in [0, 1], 0 = nearest.  Maps already in [0, 1] keep their scale."""
    if near not in ("dark", "bright"):
        raise InvalidParameterError(f"near must be 'dark' or 'bright', got {near!r}")
    lo, hi = float(depth.min()), float(depth.max())
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    span = hi - lo if hi > lo else 1.0

    def to_t(v):
        t = (np.asarray(v, dtype=np.float64) - lo) / span
        return 1.0 - t if near == "bright" else t

    return to_t


def resolve_focus(
    depth: np.ndarray,
    *,
    focus_depth: float | None = None,
    focus_at: tuple[int, int] | None = None,
    focus_range: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Return the in-focus range ``(d_min, d_max)`` in the depth map's own units.

    Exactly one of the three is needed: a depth value, a pixel ``(x, y)`` whose
    depth is used, or a range of depths that are all in focus.

    Raises
    ------
    InvalidParameterError
        None or several given, a pixel outside the map, or values that are
        not (two) finite numbers.
    """
    given = [v is not None for v in (focus_depth, focus_at, focus_range)]
    if sum(given) != 1:
        raise InvalidParameterError(
            "give exactly one of focus_depth (a depth value), focus_at (a pixel x, y) "
            "or focus_range (d_min, d_max)"
        )
    if focus_at is not None:
        xy = _numbers(focus_at, 2)
        if xy is None:
            raise InvalidParameterError(
                f"focus_at must be a pixel (x, y) of two finite numbers, got {focus_at!r}"
            )
        x, y = (int(v) for v in xy)
        h, w = depth.shape
        if not (0 <= x < w and 0 <= y < h):
            raise InvalidParameterError(
                f"focus_at=({x}, {y}) is outside the {w}x{h} image; use 0 <= x < {w}, 0 <= y < {h}"
            )
        value = float(depth[y, x])
        return value, value
    if focus_depth is not None:
        values = _numbers((focus_depth,), 1)
        problem = f"focus_depth must be a finite depth value, got {focus_depth!r}"
    else:
        values = _numbers(focus_range, 2)
        problem = f"focus_range must be (d_min, d_max), finite depth values, got {focus_range!r}"
    if values is None:
        raise InvalidParameterError(problem)
    return min(values), max(values)


def _numbers(values: object, count: int) -> list[float] | None:
    """``values`` as ``count`` finite floats, or None when they are not that."""
    if isinstance(values, (str, bytes)):
        return None
    try:
        items = list(values)  # type: ignore[call-overload]
    except TypeError:
        return None
    numbers = [finite_float(v) if not isinstance(v, (str, bytes)) else None for v in items]
    if len(numbers) != count or any(v is None for v in numbers):
        return None
    return numbers  # type: ignore[return-value]


def circle_of_confusion(
    depth: np.ndarray,
    *,
    focus_depth: float | None = None,
    focus_at: tuple[int, int] | None = None,
    focus_range: tuple[float, float] | None = None,
    aperture: float = 8.0,
    near: str = "dark",
    model: str = "disparity",
    depth_range: tuple[float, float] = (1.0, 10.0),
    max_radius: float | None = 48.0,
) -> np.ndarray:
    """Signed circle-of-confusion radius per pixel, in pixels.

    Negative in front of the focus range (near field), positive behind it
    (far field), zero inside it.  Outside a focus range, the distance is
    measured from its nearest end.

    Parameters
    ----------
    depth : numpy.ndarray
        ``(H, W)`` map in its own units (see the module notes).
    focus_depth, focus_at, focus_range
        Where to focus; exactly one (see :func:`resolve_focus`).
    aperture : float
        Blur strength, in pixels.  ``model="disparity"``: the CoC radius for a
        difference of 1 between map values (a whole ``[0, 1]`` map's range);
        ``model="thin_lens"``: the CoC radius of a point at infinity.
    near : {"dark", "bright"}
        Whether small (``"dark"``) or large (``"bright"``) values are near.
    model : {"disparity", "thin_lens"}
        ``"disparity"``: c = aperture * (t - t_f) with t the map value scaled
        to ``[0, 1]`` and 0 = near, i.e. linear in the map; exact for disparity
        (inverse-depth) maps, where a thin lens' blur is linear in disparity.
        ``"thin_lens"``: the map is distance z, scaled linearly into
        ``depth_range``, and c = aperture * (1 - z_f / z).
    depth_range : (float, float)
        ``(z_near, z_far)`` for ``"thin_lens"``; only the ratio matters.
    max_radius : float or None
        Clip |c| to this many pixels (the near field of a thin lens grows
        without bound).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Notes
    -----
    A thin lens of focal length f and aperture diameter A focused at z_f
    images a point at z as a disc of diameter
    ``A f |z - z_f| / (z (z_f - f))`` (Potmesil & Chakravarty 1981, eq. 8),
    i.e. ``K |1 - z_f / z|`` with K the disc for z -> infinity; written with
    disparity d = 1/z it is ``K z_f |d_f - d|``, linear in disparity.

    References
    ----------
    .. [1] M. Potmesil, I. Chakravarty, "A Lens and Aperture Camera Model for
           Synthetic Image Generation", SIGGRAPH 1981.
    .. [2] N. Wadhwa et al., "Synthetic Depth-of-Field with a Single-Camera
           Mobile Phone", ACM TOG 37(4), 2018.

    Examples
    --------
    >>> d = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    >>> circle_of_confusion(d, focus_depth=0.5, aperture=10).tolist()
    [[-5.0, 0.0, 5.0]]
    """
    _check_focus_scale(depth, focus_depth, focus_range)
    depth = check_depth(depth, np.shape(depth)[:2])
    _check_non_negative("aperture", aperture)
    if max_radius is not None:
        # A negative limit clipped every CoC to -limit: the whole picture blurred.
        _check_non_negative("max_radius", max_radius, "pixels, or None for no limit")
    if model not in _MODELS:
        raise InvalidParameterError(f"unknown CoC model {model!r}; choose from {_MODELS}")
    lo, hi = resolve_focus(
        depth, focus_depth=focus_depth, focus_at=focus_at, focus_range=focus_range
    )
    to_t = _normaliser(depth, near)
    t = to_t(depth)
    t_lo, t_hi = sorted((float(to_t(lo)), float(to_t(hi))))
    t_focus = np.clip(t, t_lo, t_hi)
    if model == "disparity":
        coc = aperture * (t - t_focus)
    else:
        # _numbers: an infinity gave NaN blur radii and a raw ValueError, as did
        # strings and a third value.
        near_far = _numbers(depth_range, 2)
        if near_far is None or not 0 < near_far[0] < near_far[1]:
            raise InvalidParameterError(
                "depth_range must be (z_near, z_far), finite numbers with "
                f"0 < z_near < z_far, got {depth_range!r}"
            )
        z_near, z_far = near_far
        z = z_near + np.clip(t, 0.0, None) * (z_far - z_near)
        z_focus = z_near + np.clip(t_focus, 0.0, None) * (z_far - z_near)
        coc = aperture * (1.0 - z_focus / z)
    if max_radius is not None:
        coc = np.clip(coc, -max_radius, max_radius)
    return coc.astype(np.float32)


def _check_focus_scale(depth: np.ndarray, focus_depth: object, focus_range: object) -> None:
    """Refuse a focus given on an integer map's stored scale (``focus_depth=128`` for a
    uint8 map): the map is read as value / 255 (or / 65535), so such a focus lies
    beyond every depth and the whole picture came out blurred."""
    dtype = np.asarray(depth).dtype
    if not np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return
    if focus_depth is not None:
        values = _numbers((focus_depth,), 1)
    else:  # malformed values are said by resolve_focus
        values = None if focus_range is None else _numbers(focus_range, 2)
    if not values or all(0.0 <= v <= 1.0 for v in values):
        return
    top = float(np.iinfo(dtype).max)
    name = "focus_depth" if focus_depth is not None else "focus_range"
    scaled = ", ".join(f"{v / top:.4g}" for v in values)
    raise InvalidParameterError(
        f"{name} {', '.join(f'{v:g}' for v in values)} is on the {dtype} map's stored scale, "
        f"but a {dtype} depth map is read as value / {top:g} (0 to 1): give {scaled}"
    )


def _check_non_negative(name: str, value: object, unit: str = "pixels") -> None:
    if not (real_number(value) and math.isfinite(value) and value >= 0):  # type: ignore[arg-type]
        raise InvalidParameterError(f"{name} must be a finite number >= 0 ({unit}), got {value!r}")


def _blur(stack: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    if kernel.shape[0] == 1:
        return stack
    from scipy import signal  # ~1 s to import (it pulls in scipy.stats): only when used

    out = signal.fftconvolve(stack, kernel[:, :, None], mode="same", axes=(0, 1))
    return np.maximum(out, 0.0)  # FFT round-off can dip below zero


def _kernel_spectrum(kernel: np.ndarray, grid: np.ndarray, m: int) -> np.ndarray:
    """``rfft2`` of ``kernel`` centred on pixel (0, 0) of an ``(n, m)`` zero image, into ``grid``.

    ``grid`` is complex ``(n, m // 2 + 1)``.  Only the kernel's own rows are
    transformed along x before the transform along y: half the work of an
    ``rfft2`` of the padded kernel.
    """
    n = grid.shape[0]
    size = kernel.shape[0]
    half = size // 2
    rows = np.zeros((size, m), np.float32)
    rows[:, : half + 1] = kernel[:, half:]
    rows[:, m - half :] = kernel[:, :half]
    along_x = sfft.rfft(rows, axis=1)
    grid[...] = 0
    grid[: half + 1] = along_x[half:]
    grid[n - half :] = along_x[:half]
    return _in_place(sfft.fft(grid, axis=0, overwrite_x=True), grid)


def _in_place(result: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``target`` holding ``result`` (SciPy's ``overwrite_x`` may or may not reuse it)."""
    if not np.may_share_memory(result, target):
        target[...] = result
    return target


def _chunks(n_rows: int, row_bytes: int, min_rows: int = 1) -> list[tuple[int, int]]:
    """Row ranges of about ``_CHUNK_BYTES`` each.

    Whole-image temporaries are mapped afresh by the allocator at every call
    and the page faults cost as much as the arithmetic; chunk-sized ones are
    reused.
    """
    step = max(min_rows, _CHUNK_BYTES // max(row_bytes, 1), 1)
    return [(r, min(r + step, n_rows)) for r in range(0, n_rows, step)]


def _fill_reflect(a: np.ndarray, pad: int) -> None:
    """Fill the ``pad``-wide border of ``a`` (first two axes) as ``np.pad(mode="reflect")``."""
    h, w = a.shape[0] - 2 * pad, a.shape[1] - 2 * pad
    if pad == 0:
        return
    if pad >= h or pad >= w:  # reflections of reflections: let np.pad work them out
        widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (a.ndim - 2)
        a[...] = np.pad(a[pad : pad + h, pad : pad + w], widths, mode="reflect")
        return
    a[:pad] = a[2 * pad : pad : -1]
    a[pad + h :] = a[pad + h - 2 : h - 2 : -1]
    a[:, :pad] = a[:, 2 * pad : pad : -1]
    a[:, pad + w :] = a[:, pad + w - 2 : w - 2 : -1]


def _layer_spans(pos: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns that hold each layer: bool ``(n_levels, H)`` and ``(n_levels, W)``.

    A pixel at fractional layer position ``pos`` belongs to layers
    ``floor(pos)`` and ``ceil(pos)``.  One bit per layer, looked up from
    ``2 floor(pos) + (pos > floor(pos))`` and OR-reduced along rows and along
    columns, gives every layer's bounding box in one pass over the image
    instead of one pass per layer.
    """
    rows = np.zeros((n_levels, pos.shape[0]), bool)
    cols = np.zeros((n_levels, pos.shape[1]), bool)
    for base in range(0, n_levels, 63):  # 63 layers per 64-bit word
        bit = [1 << (j - base) if base <= j < base + 63 else 0 for j in range(n_levels + 1)]
        table = np.array([b for j in range(n_levels) for b in (bit[j], bit[j] | bit[j + 1])],
                         dtype=np.uint64)
        by_row = np.zeros(pos.shape[0], np.uint64)
        by_col = np.zeros(pos.shape[1], np.uint64)
        for r0, r1 in _chunks(pos.shape[0], pos.shape[1] * 8):
            floor = pos[r0:r1].astype(np.int16)  # truncation = floor: pos >= 0 up to round-off
            key = floor * np.int16(2)
            key += pos[r0:r1] > floor
            bits = table[key]
            by_row[r0:r1] = np.bitwise_or.reduce(bits, axis=1)
            by_col |= np.bitwise_or.reduce(bits, axis=0)
        for j in range(base, min(base + 63, n_levels)):
            rows[j] = (by_row & np.uint64(bit[j])) != 0
            cols[j] = (by_col & np.uint64(bit[j])) != 0
    return rows, cols


def _premultiplied(lin_p: np.ndarray, pos: np.ndarray, k: int, rows: slice, cols: slice):
    """Layer ``k`` over ``lin_p[rows, cols]``: ``(h, w, C + 1)``, colour x weight and weight.

    The weight is the hat function ``max(0, 1 - |pos - k|)``: each pixel split
    linearly between its two nearest layers.
    """
    weight = np.subtract(pos[rows, cols], np.float32(k))
    np.abs(weight, out=weight)
    np.subtract(np.float32(1.0), weight, out=weight)
    np.maximum(weight, 0.0, out=weight)
    c = lin_p.shape[2]
    layer = np.empty(weight.shape + (c + 1,), np.float32)
    np.multiply(lin_p[rows, cols], weight[:, :, None], out=layer[:, :, :c])
    layer[:, :, c] = weight
    return layer


def _blur_layer(
    lin_p: np.ndarray, pos: np.ndarray, k: int, box: tuple[int, int, int, int],
    kernel: np.ndarray, wrap: tuple[bool, bool], out: np.ndarray, spec: np.ndarray,
    workers: int = 1,
) -> np.ndarray:
    """Layer ``k`` inside ``box``, premultiplied and convolved, written into ``out``.

    ``out`` is a float32 buffer of at least ``h * w * (C + 1)`` values, and
    ``spec`` a complex64 one for the FFT path; the result is an
    ``(h, w, C + 1)`` view of ``out``, >= 0.  Kernels up to
    ``_DIRECT_MAX_SIZE`` are applied directly (``cv2.filter2D``, in row chunks
    overlapping by the radius), larger ones by FFT: the box holds the layer
    plus a margin of the kernel radius, so a circular convolution over the
    box is the linear one; only where the box was clipped at the array's edge
    (``wrap``) is the FFT grid padded by the radius, so nothing wraps around.
    """
    y0, y1, x0, x1 = box
    h, w = y1 - y0, x1 - x0
    c1 = lin_p.shape[2] + 1
    cols = slice(x0, x1)
    result = out[: h * w * c1].reshape(h, w, c1)
    half = kernel.shape[0] // 2
    if kernel.shape[0] <= _DIRECT_MAX_SIZE:
        import cv2  # a runtime dependency, imported where used as elsewhere in boda

        flipped = kernel[::-1, ::-1]  # filter2D correlates
        for r0, r1 in _chunks(h, w * c1 * 4, min_rows=8 * half):
            s0, s1 = max(r0 - half, 0), min(r1 + half, h)
            layer = _premultiplied(lin_p, pos, k, slice(y0 + s0, y0 + s1), cols)
            # Zeros outside the box, as in the FFT path.
            blurred = cv2.filter2D(layer, -1, flipped, borderType=cv2.BORDER_CONSTANT)
            result[r0:r1] = blurred[r0 - s0 : r1 - s0]
        return result
    n = sfft.next_fast_len(h + half * wrap[0], real=False)
    m = sfft.next_fast_len(w + half * wrap[1], real=True)
    mh = m // 2 + 1
    grid = spec[: n * mh * c1].reshape(n, mh, c1)
    # rfft2 split by axis: rows are transformed chunk by chunk, the zero rows
    # beyond h stay zero, and only the first h rows are transformed back.
    for r0, r1 in _chunks(h, mh * c1 * 8):
        layer = _premultiplied(lin_p, pos, k, slice(y0 + r0, y0 + r1), cols)
        grid[r0:r1] = sfft.rfft(layer, n=m, axis=1, workers=workers)
    grid[h:] = 0
    _in_place(sfft.fft(grid, axis=0, overwrite_x=True, workers=workers), grid)
    kspec = _kernel_spectrum(kernel, spec[n * mh * c1 : n * mh * (c1 + 1)].reshape(n, mh), m)
    for r0, r1 in _chunks(n, mh * c1 * 8):
        grid[r0:r1] *= kspec[r0:r1, :, None]
    _in_place(sfft.ifft(grid, axis=0, overwrite_x=True, workers=workers), grid)
    for r0, r1 in _chunks(h, m * c1 * 4):
        blurred = sfft.irfft(grid[r0:r1], n=m, axis=1, workers=workers)[:, :w]
        np.maximum(blurred, 0.0, out=result[r0:r1])  # FFT round-off can dip below zero
    return result


def _fft_shape(box: tuple[int, int, int, int], radius: float, wrap) -> tuple[int, int]:
    half = math.ceil(radius)
    n = sfft.next_fast_len(box[1] - box[0] + half * wrap[0], real=False)
    m = sfft.next_fast_len(box[3] - box[2] + half * wrap[1], real=True)
    return n, m


def _to_linear(rgb: np.ndarray, gain: float, threshold: float) -> np.ndarray:
    """sRGB -> linear light, with the highlight boost."""
    lin = srgb_to_linear(np.clip(rgb, 0.0, 1.0))
    if gain > 0:
        peak = _peak(lin)
        hot = peak > threshold  # elsewhere the smoothstep ramp is 0: nothing to do
        if hot.any():
            lin[hot] *= _boost(peak[hot], gain, threshold)[:, None]
    return lin


def _peak(lin: np.ndarray) -> np.ndarray:
    """The brightest channel of every pixel of ``(H, W, C)``."""
    peak = lin[:, :, 0].copy()
    for ch in range(1, lin.shape[2]):
        np.maximum(peak, lin[:, :, ch], out=peak)
    return peak


def _boost(peak: np.ndarray, gain: float, threshold: float) -> np.ndarray:
    """The highlight factor ``1 + gain * smoothstep((peak - t) / (1 - t))``."""
    s = np.clip((peak - threshold) / (1 - threshold), 0, 1)
    return 1.0 + gain * s * s * (3 - 2 * s)


def _unboost(lin: np.ndarray, gain: float, threshold: float) -> None:
    """Undo :func:`_to_linear`'s boost on blurred light, in place.

    ``g(p) = p * boost(p)`` is increasing, so a blurred pixel whose brightest
    channel is ``q`` gets the ``p`` with ``g(p) = q`` (interpolated on 2049
    samples) and is scaled by ``p / q``.  A flat area therefore keeps its
    value (pale walls and skies are not blown out), while a small highlight
    spread over darker surroundings stays brighter than a plain blur makes it:
    the boost before the blur and its inverse after are the usual inverse
    tone-mapping round trip of bokeh renderers.
    """
    if gain <= 0:
        return
    peak = _peak(lin)
    hot = peak > threshold
    if not hot.any():
        return
    grid = np.linspace(threshold, 1.0, 2049)
    boosted = grid * _boost(grid, gain, threshold)
    q = peak[hot]
    p = np.interp(q, boosted, grid)  # q beyond 1 + gain (rounding) maps to 1
    lin[hot] *= (p / q).astype(lin.dtype)[:, None]


def _render_layers(
    rgb: np.ndarray, coc: np.ndarray, kernel_fn, max_layers: int,
    highlight_gain: float, highlight_threshold: float, progress=None,
) -> np.ndarray:
    """The lens method after the CoC: ``(H, W, C)`` sRGB, in-focus pixels restored.

    Each layer is blurred inside its own bounding box (plus the kernel
    radius), colour channels and coverage together, into one of a few
    reused buffers.  Layers are blurred in worker threads (NumPy, SciPy's FFT
    and OpenCV release the GIL) while this thread composites them in order;
    the per-pixel steps before and after run in row chunks on the same threads.
    """
    h, w, c = rgb.shape
    c1 = c + 1
    cmin, cmax = float(coc.min()), float(coc.max())
    step = max(1.0, (cmax - cmin) / max(max_layers - 1, 1))
    k0 = math.floor(cmin / step)
    levels = step * np.arange(k0, math.ceil(cmax / step) + 1)
    pad = math.ceil(max(abs(cmin), abs(cmax))) + 1
    hp, wp = h + 2 * pad, w + 2 * pad
    n_threads = min(2, usable_cores())
    fft_workers = max(1, usable_cores() // n_threads)
    # The padded linear image; its memory takes the result at the end (a fresh
    # whole-image array costs page faults on the order of the arithmetic).
    lin_p = np.empty((hp, wp, c), np.float32)
    pos = np.empty((hp, wp), np.float32)

    def prepare(rows: tuple[int, int]) -> None:
        r0, r1 = rows
        lin_p[pad + r0 : pad + r1, pad : pad + w] = _to_linear(
            rgb[r0:r1], highlight_gain, highlight_threshold)
        p = (coc[r0:r1] / step - k0).astype(np.float32)
        # Snap positions within float round-off of a layer onto it (a float32
        # depth of 0.2 focused at 0.2 gives a CoC of ~1e-8, not 0), so such
        # pixels do not stretch the next layer's box for a negligible weight.
        nearest = np.rint(p)
        np.copyto(p, nearest, where=np.abs(p - nearest) < _SNAP)
        pos[pad + r0 : pad + r1, pad : pad + w] = p

    jobs = []
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        list(pool.map(prepare, _chunks(h, w * c * 4)))
        _fill_reflect(lin_p, pad)
        _fill_reflect(pos, pad)
        span_rows, span_cols = _layer_spans(pos, len(levels))
        for k in range(len(levels) - 1, -1, -1):  # far (large CoC) first
            rows, cols = np.flatnonzero(span_rows[k]), np.flatnonzero(span_cols[k])
            if rows.size == 0:
                continue
            radius = abs(float(levels[k]))
            reach = math.ceil(radius) + 1
            y0, y1 = max(int(rows[0]) - reach, 0), min(int(rows[-1]) + reach + 1, hp)
            x0, x1 = max(int(cols[0]) - reach, 0), min(int(cols[-1]) + reach + 1, wp)
            wrap = (y0 == 0 or y1 == hp, x0 == 0 or x1 == wp)
            jobs.append((k, radius, (y0, y1, x0, x1), wrap, kernel_fn(radius)))

        # Buffers for the blurred layers in flight, sized for the largest.
        blur_jobs = [job for job in jobs if job[4].shape[0] > 1]
        ahead = n_threads + 1
        out_size = max([(b[1] - b[0]) * (b[3] - b[2]) * c1 for _, _, b, _, _ in blur_jobs],
                       default=0)
        spec_size = max([(n * (m // 2 + 1)) * (c1 + 1) for n, m in (
            _fft_shape(b, r, wr) for _, r, b, wr, kern in blur_jobs
            if kern.shape[0] > _DIRECT_MAX_SIZE)], default=0)
        spare: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(min(ahead, len(blur_jobs))):
            spare.put((np.empty(out_size, np.float32), np.empty(spec_size, np.complex64)))

        def blur(job):
            k, _, box, wrap, kern = job
            buffers = spare.get()
            return buffers, _blur_layer(lin_p, pos, k, box, kern, wrap, *buffers, fft_workers)

        acc = np.zeros((hp, wp, c1), dtype=np.float32)
        near_cover = np.zeros((hp, wp), np.float32) if levels[0] <= -0.5 else None
        pending = {id(job): pool.submit(blur, job) for job in blur_jobs[:ahead]}
        queued = len(pending)
        for done, job in enumerate(jobs, 1):
            k, radius, (y0, y1, x0, x1), _, kern = job
            blurred = None
            if kern.shape[0] > 1:
                buffers, blurred = pending.pop(id(job)).result()
            for r0, r1 in _chunks(y1 - y0, (x1 - x0) * c1 * 4):
                if blurred is None:  # in focus: the layer itself
                    part = _premultiplied(lin_p, pos, k, slice(y0 + r0, y0 + r1), slice(x0, x1))
                else:
                    part = blurred[r0:r1]
                alpha = part[:, :, c]
                window = acc[y0 + r0 : y0 + r1, x0:x1]
                window *= (1.0 - alpha)[:, :, None]  # over: new + (1 - alpha_new) old
                window += part
                if levels[k] <= -0.5:
                    # The near field's CoC dilated by its own blur: where a blurred
                    # foreground spreads, the pixels behind it must not be restored.
                    cover = near_cover[y0 + r0 : y0 + r1, x0:x1]
                    np.maximum(cover, np.where(alpha > 1e-3, np.float32(radius), 0.0),
                               out=cover)
            if blurred is not None:
                spare.put(buffers)
                if queued < len(blur_jobs):
                    nxt = blur_jobs[queued]
                    pending[id(nxt)] = pool.submit(blur, nxt)
                    queued += 1
            if progress is not None:
                progress(done, len(jobs))  # one step per depth layer composited
        out = lin_p.reshape(-1)[: h * w * c].reshape(h, w, c)  # lin_p is not read any more

        def finish(rows: tuple[int, int]) -> None:
            r0, r1 = rows
            a = acc[pad + r0 : pad + r1, pad : pad + w]
            lin = np.divide(a[:, :, :c], np.maximum(a[:, :, c:], 1e-12))
            _unboost(lin, highlight_gain, highlight_threshold)
            srgb = linear_to_srgb(np.clip(lin, 0.0, 1.0, out=lin))
            # Pixels in focus and outside the dilated near field keep their values.
            sharp = np.abs(coc[r0:r1]) < 0.5
            if near_cover is not None:
                sharp &= near_cover[pad + r0 : pad + r1, pad : pad + w] < 0.5
            np.copyto(srgb, rgb[r0:r1], where=sharp[:, :, None])
            out[r0:r1] = srgb

        list(pool.map(finish, _chunks(h, w * c1 * 4)))
    return out


def refocus(
    image: np.ndarray,
    depth: np.ndarray,
    *,
    focus_depth: float | None = None,
    focus_at: tuple[int, int] | None = None,
    focus_range: tuple[float, float] | None = None,
    aperture: float = 8.0,
    method: str = "lens",
    near: str = "dark",
    coc_model: str = "disparity",
    depth_range: tuple[float, float] = (1.0, 10.0),
    kernel: str = "disk",
    highlight_gain: float = 2.0,
    highlight_threshold: float = 0.9,
    max_radius: float | None = 48.0,
    max_layers: int = 32,
    tolerance: float = 0.05,
    feather: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Render a shallow depth of field from an image and its depth map.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` or ``(H, W)``, uint8/uint16/float in ``[0, 1]``, sRGB.
        RGBA is refused: composite or drop the alpha channel first.  Values of
        another RGB space (``boda refocus`` keeps a photo's own, read with
        ``color="keep"``) are linearised with the sRGB curve too: exact for
        Display P3, approximate for Adobe RGB and ProPhoto RGB.
    depth : numpy.ndarray
        ``(H, W)`` depth or disparity map (see ``near``), same size as ``image``.
    focus_depth : float, optional
        Depth value to focus on, in the map's units.
    focus_at : (int, int), optional
        Pixel ``(x, y)`` to focus on; its depth is used.
    focus_range : (float, float), optional
        ``(d_min, d_max)``: every depth in between is sharp.
    aperture : float
        Blur strength in pixels (see :func:`circle_of_confusion`); for
        ``"threshold"``, the radius of the background blur.  0 = no blur.
    method : {"lens", "threshold"}
        The depth-of-field renderer or the simple threshold-and-blend recipe.
    near : {"dark", "bright"}
        Whether small or large depth values are near the camera.
    coc_model : {"disparity", "thin_lens"}
        How depth turns into blur (``"lens"`` only), see
        :func:`circle_of_confusion`.
    depth_range : (float, float)
        ``(z_near, z_far)`` the map's ``[0, 1]`` values stand for, with
        ``coc_model="thin_lens"`` (only their ratio matters); unused otherwise.
    kernel : {"disk", "hexagon"}
        Aperture shape (bokeh shape).
    highlight_gain, highlight_threshold : float
        ``"lens"`` only: linear values whose maximum channel exceeds the
        threshold are multiplied by up to ``1 + highlight_gain`` (smoothstep
        ramp) before blurring, standing in for the light a clipped highlight
        lost, and the blurred light goes through the inverse of that map
        afterwards: point lights bloom into bright discs, while a flat bright
        area (a white wall, a pale sky) keeps its value and hue.
        ``highlight_gain=0`` turns it off.
    max_radius : float or None
        Largest CoC radius in pixels (``"lens"``).
    max_layers : int
        At most this many depth layers (``"lens"``); CoC steps are 1 pixel
        until the CoC range needs more layers than that.
    tolerance : float
        ``"threshold"`` only: depths within this distance of the focus range
        (as a fraction of the map's range; map units for ``[0, 1]`` maps)
        are in focus.
    feather : float
        ``"threshold"`` only: Gaussian sigma (pixels) softening the focus mask.
    progress : callable, optional
        ``progress(done, total)``, called by the ``"lens"`` method after each
        depth layer is composited (``total`` = the layers; nothing changes in
        the result).  ``"threshold"`` is one blur and does not call it.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``image``.  In-focus pixels are the input's
        values exactly, unless a blurred foreground spreads over them.

    Raises
    ------
    InvalidImageError
        RGBA or malformed image, depth of another size or with NaNs.
    InvalidParameterError
        Bad focus, method, kernel or numeric option.

    Notes
    -----
    ``"lens"``: the signed CoC is quantised into layers (1-pixel radius steps,
    each pixel split linearly between its two nearest layers).  From the
    farthest layer to the nearest, the layer's premultiplied linear colour and
    its alpha are convolved with the aperture kernel of the layer's radius and
    composited with the *over* operator (Porter & Duff 1984); dividing by the
    accumulated alpha fills the parts of far layers hidden behind nearer ones
    from their visible neighbours, so no dark rim appears at depth edges and
    no foreground colour bleeds into the background.  The near field's CoC is
    dilated by its own blur (where a blurred near layer has coverage), and only
    pixels with |CoC| < 0.5 outside that dilated near field are restored from
    the input: a blurred foreground keeps its soft edge over a sharp
    background, and a sharp subject keeps its exact pixels.

    Each layer is convolved only inside its bounding box plus the kernel
    radius (directly for kernels up to 11x11, by FFT above), in two worker
    threads; the result equals full-frame convolutions to float round-off.
    A 12-megapixel image takes about 1-2 s on 2 cores (docs/editing.md).

    References
    ----------
    .. [1] M. Kraus, M. Strengert, "Depth-of-Field Rendering by Pyramidal Image
           Processing", Computer Graphics Forum 26(3), 2007.
    .. [2] T. Porter, T. Duff, "Compositing Digital Images", SIGGRAPH 1984.
    .. [3] N. Wadhwa et al., "Synthetic Depth-of-Field with a Single-Camera
           Mobile Phone", ACM TOG 37(4), 2018.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((64, 64, 3)).astype(np.float32)
    >>> depth = np.zeros((64, 64), np.float32); depth[:, 32:] = 1.0
    >>> out = refocus(img, depth, focus_at=(10, 10), aperture=4)
    >>> bool(np.array_equal(out[:, :28], img[:, :28]))
    True
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 4:
        raise InvalidImageError(
            "refocus takes RGB or gray images, got RGBA; composite the alpha channel or "
            "drop it first (image[..., :3])"
        )
    img = as_float_image(arr, name="image")
    _check_focus_scale(depth, focus_depth, focus_range)
    depth_f = check_depth(depth, img.shape[:2])
    if method not in _METHODS:
        raise InvalidParameterError(f"unknown refocus method {method!r}; choose from {_METHODS}")
    if kernel not in _KERNELS:
        raise InvalidParameterError(f"unknown kernel {kernel!r}; choose from {_KERNELS}")
    if not max_layers >= 2:
        raise InvalidParameterError(f"max_layers must be at least 2, got {max_layers}")
    kernel_fn = disk_kernel if kernel == "disk" else hexagon_kernel
    gray = img.ndim == 2
    rgb = img[:, :, None] if gray else img
    if method == "threshold":
        out = _threshold(rgb, depth_f, focus_depth, focus_at, focus_range, aperture, near,
                         tolerance, feather, kernel_fn)
        return out[:, :, 0] if gray else out
    coc = circle_of_confusion(
        depth_f, focus_depth=focus_depth, focus_at=focus_at, focus_range=focus_range,
        aperture=aperture, near=near, model=coc_model, depth_range=depth_range,
        max_radius=max_radius,
    )
    if max(-float(coc.min()), float(coc.max())) < 0.5:
        return rgb[:, :, 0].copy() if gray else rgb.copy()
    if not (real_number(highlight_gain) and 0 <= highlight_gain < math.inf
            and real_number(highlight_threshold) and 0 <= highlight_threshold < 1):
        raise InvalidParameterError(
            "highlight_gain must be >= 0 and highlight_threshold in [0, 1), got "
            f"{highlight_gain} and {highlight_threshold}"
        )
    out = _render_layers(rgb, coc, kernel_fn, max_layers, highlight_gain, highlight_threshold,
                         progress)
    return out[:, :, 0] if gray else out


def _threshold(rgb, depth, focus_depth, focus_at, focus_range, aperture, near, tolerance,
               feather, kernel_fn) -> np.ndarray:
    """Threshold depth into a focus mask, blur the rest, blend (in linear light)."""
    _check_non_negative("aperture", aperture)
    _check_non_negative("tolerance", tolerance, "depth units")
    _check_non_negative("feather", feather)
    lo, hi = resolve_focus(depth, focus_depth=focus_depth, focus_at=focus_at,
                           focus_range=focus_range)
    to_t = _normaliser(depth, near)
    t = to_t(depth)
    t_lo, t_hi = sorted((float(to_t(lo)), float(to_t(hi))))
    mask = ((t >= t_lo - tolerance) & (t <= t_hi + tolerance)).astype(np.float32)
    if feather > 0:
        mask = ndimage.gaussian_filter(mask, feather, mode="mirror")
    linear = srgb_to_linear(np.clip(rgb, 0.0, 1.0))
    pad = math.ceil(aperture) + 1
    padded = np.pad(linear, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    blurred = _blur(padded, kernel_fn(aperture))[pad:-pad, pad:-pad]
    m = mask[:, :, None]
    out = linear_to_srgb(np.clip(m * linear + (1 - m) * blurred, 0.0, 1.0))
    keep = mask >= 1.0
    out[keep] = rgb[keep]
    return out
