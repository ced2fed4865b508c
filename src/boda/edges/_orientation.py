"""Orientation-coloured gradient pictures (hue = direction, value = magnitude)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from boda.color import hsv_to_rgb
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
    # image at once (the same floats), so the HSV temporaries take a band's size.
    out = np.empty((*magnitude.shape, 3), np.float32)
    step = max(1, _BAND_PIXELS // max(1, magnitude.shape[1]))
    bands = range(0, magnitude.shape[0], step)
    for done, top in enumerate(bands, 1):
        rows = slice(top, top + step)
        hsv = np.empty((*magnitude[rows].shape, 3), np.float32)
        hue = np.arctan2(gy[rows], gx[rows])
        np.rad2deg(hue, out=hue)
        np.remainder(hue, 360.0, out=hsv[..., 0])
        hsv[..., 1] = 1.0
        np.clip(magnitude[rows] / scale, 0.0, 1.0, out=hsv[..., 2])
        np.clip(hsv_to_rgb(hsv), 0.0, 1.0, out=out[rows])
        if progress is not None:
            progress(done, len(bands))
    return out


#: Pixels per band of :func:`orientation_image`'s colouring.
_BAND_PIXELS = 1 << 20
