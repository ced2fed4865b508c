"""Orientation-coloured gradient pictures (hue = direction, value = magnitude)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from boda.edges._common import gray_image
from boda.errors import InvalidParameterError
from boda.filters import gradient

__all__ = ["orientation_image"]


def orientation_image(
    image: np.ndarray,
    operator: str = "sobel",
    *,
    normalize_quantile: float = 0.99,
    border: str = "reflect101",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Colour each pixel by its gradient: hue = direction, value = magnitude.

    The direction ``theta = atan2(gy, gx)`` over the full circle maps to hue
    ``theta`` in degrees (0: bright to the right = red, 90: bright downwards =
    yellow-green, ...), saturation is 1 and value is the gradient magnitude
    divided by its ``normalize_quantile`` quantile and clipped to 1, so flat
    areas are black and a few strong edges do not make the rest invisible.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)`` (reduced to Rec. 601 luma).
    operator : str
        Derivative operator of :func:`boda.filters.gradient`.
    normalize_quantile : float
        Magnitude quantile in ``(0, 1]`` that maps to full brightness.
    border : str
        Border handling, see :data:`boda.filters.BORDER_MODES`.
    progress : callable, optional
        ``progress(done, total)``, called after each band of rows is coloured.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W, 3)`` RGB in ``[0, 1]``.

    References
    ----------
    A. R. Smith, "Color gamut transform pairs", SIGGRAPH 1978 (HSV).

    Examples
    --------
    >>> import numpy as np
    >>> step = np.zeros((8, 8), np.float32); step[:, 4:] = 1
    >>> orientation_image(step)[4, 4].round(2).tolist()   # rightwards: red
    [1.0, 0.0, 0.0]
    """
    if not 0.0 < normalize_quantile <= 1.0:
        raise InvalidParameterError(
            f"normalize_quantile must lie in (0, 1], got {normalize_quantile}"
        )
    gy, gx = gradient(gray_image(image), operator, border=border)  # type: ignore[arg-type]
    magnitude = np.hypot(gx, gy)
    scale = float(np.quantile(magnitude, normalize_quantile))
    if scale <= 0:
        scale = float(magnitude.max()) or 1.0
    # Per pixel from here: bands of rows, each with the same operations as the whole
    # image at once (the same floats), so the temporaries take a band's size.
    out = np.empty((*magnitude.shape, 3), np.float32)
    step = max(1, _BAND_PIXELS // max(1, magnitude.shape[1]))
    bands = range(0, magnitude.shape[0], step)
    for done, top in enumerate(bands, 1):
        rows = slice(top, top + step)
        _colour_band(gy[rows], gx[rows], magnitude[rows], scale, out[rows])
        if progress is not None:
            progress(done, len(bands))
    return out


def _colour_band(
    gy: np.ndarray, gx: np.ndarray, magnitude: np.ndarray, scale: float, out: np.ndarray
) -> None:
    """Write :func:`boda.color.hsv_to_rgb` of ``(hue, 1, value)`` into ``out``, float for
    float (tests compare them), without its general-case work.

    With saturation exactly 1, ``hsv_to_rgb``'s chroma ``v * s`` is ``v`` and its offset
    ``v - v * s`` is ``+0``, so each channel ``offset + chroma * w`` is ``v * w`` (in
    ``[0, 1]``: the final clip changes nothing), with ``k = (n + H / 60) mod 6`` and
    ``w = 1 - clip(min(k, 4 - k), 0, 1)``.  The three ``mod`` steps (``np.remainder``,
    a slow scalar loop) become one conditional add or subtract each, which is what
    ``np.remainder`` computes on these ranges (:func:`_wrap`); the rest is done in place.
    """
    hue = np.arctan2(gy, gx)
    np.rad2deg(hue, out=hue)  # in [-180, 180]
    mask = np.empty(hue.shape, bool)
    step = np.empty_like(hue)
    _wrap(hue, np.less, 0.0, 360.0, mask, step)  # hue mod 360: the picture's hue
    _wrap(hue, np.greater_equal, 360.0, -360.0, mask, step)  # hsv_to_rgb's own mod 360
    np.divide(hue, 60.0, out=hue)  # in [0, 6] (a hue a hair below 360 rounds to 6)
    value = np.divide(magnitude, scale)
    np.clip(value, 0.0, 1.0, out=value)
    k = np.empty_like(hue)
    other = np.empty_like(hue)
    for channel, n in enumerate((5.0, 3.0, 1.0)):  # R, G, B
        np.add(hue, n, out=k)  # in [1, 11]
        _wrap(k, np.greater_equal, 6.0, -6.0, mask, step)  # mod 6
        np.subtract(4.0, k, out=other)
        np.minimum(k, other, out=k)
        np.clip(k, 0.0, 1.0, out=k)
        np.subtract(1.0, k, out=k)
        np.multiply(value, k, out=out[..., channel])


def _wrap(x, compare, bound, shift, mask, step) -> None:
    """``x += shift`` where ``compare(x, bound)``, in place (``mask`` and ``step`` are
    scratch arrays of ``x``'s shape).

    ``np.remainder(x, d)`` is ``fmod(x, d)``, plus ``d`` when the signs differ, and
    ``+0`` for a zero result.  For ``|x| < d``, ``fmod`` is ``x`` itself, so the
    remainder is ``x + d`` (rounded the same) for ``x < 0`` and ``x`` otherwise (``-0``
    becomes ``+0`` here as there: ``-0 + 0 = +0``); for ``x`` in ``[d, 2d)`` it is
    ``x - d``, exact (both are multiples of ``x``'s spacing).  Elsewhere ``x`` gains
    ``+-0``, which leaves it as it is.
    """
    compare(x, bound, out=mask)
    np.multiply(mask, np.float32(shift), out=step)
    np.add(x, step, out=x)


#: Pixels per band of :func:`orientation_image`'s colouring.
_BAND_PIXELS = 1 << 18
