"""Orientation-coloured gradient pictures (hue = direction, value = magnitude)."""

from __future__ import annotations

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
    hue = np.rad2deg(np.arctan2(gy, gx)) % 360.0
    value = np.clip(magnitude / scale, 0.0, 1.0)
    hsv = np.stack([hue, np.ones_like(hue), value], axis=-1).astype(np.float32)
    return np.clip(hsv_to_rgb(hsv), 0.0, 1.0).astype(np.float32)
