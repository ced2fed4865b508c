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

import numpy as np
from scipy import ndimage, signal

from boda.color import linear_to_srgb, srgb_to_linear  # IEC 61966-2-1, one copy
from boda.core.image import as_float_image
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


def _coverage_kernel(radius: float, inside, samples: int) -> np.ndarray:
    r = max(float(radius), 0.0)
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
        None or several given, or a pixel outside the map.
    """
    given = [v is not None for v in (focus_depth, focus_at, focus_range)]
    if sum(given) != 1:
        raise InvalidParameterError(
            "give exactly one of focus_depth (a depth value), focus_at (a pixel x, y) "
            "or focus_range (d_min, d_max)"
        )
    if focus_at is not None:
        x, y = (int(v) for v in focus_at)
        h, w = depth.shape
        if not (0 <= x < w and 0 <= y < h):
            raise InvalidParameterError(
                f"focus_at=({x}, {y}) is outside the {w}x{h} image; use 0 <= x < {w}, 0 <= y < {h}"
            )
        value = float(depth[y, x])
        return value, value
    if focus_depth is not None:
        return float(focus_depth), float(focus_depth)
    lo, hi = (float(v) for v in focus_range)  # type: ignore[union-attr]
    return (lo, hi) if lo <= hi else (hi, lo)


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
    depth = check_depth(depth, np.shape(depth)[:2])
    if aperture < 0 or not math.isfinite(aperture):
        raise InvalidParameterError(f"aperture must be a finite number >= 0, got {aperture}")
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
        z_near, z_far = (float(v) for v in depth_range)
        if not 0 < z_near < z_far:
            raise InvalidParameterError(
                f"depth_range must be (z_near, z_far) with 0 < z_near < z_far, got {depth_range}"
            )
        z = z_near + np.clip(t, 0.0, None) * (z_far - z_near)
        z_focus = z_near + np.clip(t_focus, 0.0, None) * (z_far - z_near)
        coc = aperture * (1.0 - z_focus / z)
    if max_radius is not None:
        coc = np.clip(coc, -max_radius, max_radius)
    return coc.astype(np.float32)


def _blur(stack: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    if kernel.shape[0] == 1:
        return stack
    out = signal.fftconvolve(stack, kernel[:, :, None], mode="same", axes=(0, 1))
    return np.maximum(out, 0.0)  # FFT round-off can dip below zero


def _render_layers(
    linear: np.ndarray, coc: np.ndarray, kernel_fn, max_layers: int
) -> tuple[np.ndarray, np.ndarray]:
    """Composite depth layers back to front; return (linear image, near-field coverage)."""
    h, w, c = linear.shape
    cmin, cmax = float(coc.min()), float(coc.max())
    step = max(1.0, (cmax - cmin) / max(max_layers - 1, 1))
    k0 = math.floor(cmin / step)
    levels = step * np.arange(k0, math.ceil(cmax / step) + 1)
    pad = math.ceil(max(abs(cmin), abs(cmax))) + 1
    lin_p = np.pad(linear, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    pos = np.pad(coc / step - k0, pad, mode="reflect")
    lower = np.floor(pos).astype(np.int64)
    frac = (pos - lower).astype(np.float32)
    acc = np.zeros((h + 2 * pad, w + 2 * pad, c + 1), dtype=np.float32)
    near_cover = np.zeros(acc.shape[:2], dtype=np.float32)
    for k in range(len(levels) - 1, -1, -1):  # far (large CoC) first
        weight = np.where(lower == k, 1.0 - frac, 0.0) + np.where(lower == k - 1, frac, 0.0)
        rows, cols = np.nonzero(weight.any(axis=1))[0], np.nonzero(weight.any(axis=0))[0]
        if rows.size == 0:
            continue
        radius = abs(float(levels[k]))
        reach = math.ceil(radius) + 1
        y0, y1 = max(rows[0] - reach, 0), min(rows[-1] + reach + 1, acc.shape[0])
        x0, x1 = max(cols[0] - reach, 0), min(cols[-1] + reach + 1, acc.shape[1])
        wk = weight[y0:y1, x0:x1, None]
        layer = np.concatenate([lin_p[y0:y1, x0:x1] * wk, wk], axis=2)
        blurred = _blur(layer, kernel_fn(radius))
        alpha = blurred[:, :, -1:]
        acc[y0:y1, x0:x1] = blurred + (1.0 - alpha) * acc[y0:y1, x0:x1]
        if levels[k] <= -0.5:
            # The near field's CoC dilated by its own blur: where a blurred
            # foreground spreads, the pixels behind it must not be restored sharp.
            covered = np.where(alpha[:, :, 0] > 1e-3, radius, 0.0)
            near_cover[y0:y1, x0:x1] = np.maximum(near_cover[y0:y1, x0:x1], covered)
    acc = acc[pad:-pad, pad:-pad]
    out = acc[:, :, :c] / np.maximum(acc[:, :, c:], 1e-12)
    return out.astype(np.float32), near_cover[pad:-pad, pad:-pad]


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
) -> np.ndarray:
    """Render a shallow depth of field from an image and its depth map.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` or ``(H, W)``, uint8/uint16/float in ``[0, 1]``, sRGB.
        RGBA is refused: composite or drop the alpha channel first.
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
        :func:`circle_of_confusion`; ``depth_range`` goes with ``"thin_lens"``.
    kernel : {"disk", "hexagon"}
        Aperture shape (bokeh shape).
    highlight_gain, highlight_threshold : float
        ``"lens"`` only: linear values whose maximum channel exceeds the
        threshold are multiplied by up to ``1 + highlight_gain`` (smoothstep
        ramp) before blurring, standing in for the light a clipped highlight
        lost, so point lights bloom into bright discs.  ``highlight_gain=0``
        turns it off.
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
    depth_f = check_depth(depth, img.shape[:2])
    if method not in _METHODS:
        raise InvalidParameterError(f"unknown refocus method {method!r}; choose from {_METHODS}")
    if kernel not in _KERNELS:
        raise InvalidParameterError(f"unknown kernel {kernel!r}; choose from {_KERNELS}")
    if max_layers < 2:
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
    if np.abs(coc).max() < 0.5:
        return rgb[:, :, 0].copy() if gray else rgb.copy()
    linear = srgb_to_linear(np.clip(rgb, 0.0, 1.0))
    if highlight_gain < 0 or not 0 <= highlight_threshold < 1:
        raise InvalidParameterError(
            "highlight_gain must be >= 0 and highlight_threshold in [0, 1), got "
            f"{highlight_gain} and {highlight_threshold}"
        )
    if highlight_gain > 0:
        s = np.clip((linear.max(axis=2) - highlight_threshold) / (1 - highlight_threshold), 0, 1)
        linear = linear * (1.0 + highlight_gain * s * s * (3 - 2 * s))[:, :, None]
    blurred, near_cover = _render_layers(linear, coc, kernel_fn, max_layers)
    out = linear_to_srgb(np.clip(blurred, 0.0, 1.0))
    sharp = (np.abs(coc) < 0.5) & (near_cover < 0.5)
    out[sharp] = rgb[sharp]
    return out[:, :, 0] if gray else out


def _threshold(rgb, depth, focus_depth, focus_at, focus_range, aperture, near, tolerance,
               feather, kernel_fn) -> np.ndarray:
    """Threshold depth into a focus mask, blur the rest, blend (in linear light)."""
    if aperture < 0 or tolerance < 0 or feather < 0:
        raise InvalidParameterError(
            f"aperture, tolerance and feather must be >= 0, got {aperture}, {tolerance}, {feather}"
        )
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
