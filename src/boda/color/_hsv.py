"""RGB <-> HSV and HSL (hexcone models), hue in degrees with 0° = red."""

from __future__ import annotations

import numpy as np

from boda.color._validate import as_colors

__all__ = ["rgb_to_hsv", "hsv_to_rgb", "rgb_to_hsl", "hsl_to_rgb"]


def _hue_chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cmax = rgb.max(axis=-1)
    cmin = rgb.min(axis=-1)
    chroma = cmax - cmin
    safe = np.where(chroma == 0, 1, chroma)
    # Smith (1978): the sector is chosen by the largest component.
    h = np.where(
        cmax == r,
        ((g - b) / safe) % 6.0,
        np.where(cmax == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    h = np.where(chroma == 0, 0, h * 60.0)
    return h, chroma, cmax, cmin


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """Convert RGB in [0, 1] to HSV: hue in degrees [0, 360), saturation and value in [0, 1].

    Grays (max = min) get hue 0 and saturation 0.  The conversion is applied
    to the values as given (sRGB-encoded usually); it is a geometric
    re-parameterisation of the RGB cube, not a colorimetric space.

    Parameters
    ----------
    rgb : array_like
        ``(..., 3)``; uint8/uint16 rescaled to [0, 1].  Values outside [0, 1]
        are converted as they are; NaN propagates.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` H (degrees), S, V; same float dtype.

    References
    ----------
    A. R. Smith, "Color gamut transform pairs", *SIGGRAPH '78*, 12–19, 1978.

    Examples
    --------
    >>> rgb_to_hsv([0.0, 0.5, 1.0]).tolist()
    [210.0, 1.0, 1.0]
    """
    rgb = as_colors(rgb, name="rgb", rgb=True)
    h, chroma, cmax, _ = _hue_chroma(rgb)
    s = np.where(cmax == 0, 0, chroma / np.where(cmax == 0, 1, cmax))
    return np.stack([h, s, cmax], axis=-1).astype(rgb.dtype, copy=False)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Convert HSV (hue in degrees, any value; taken modulo 360) to RGB.

    References
    ----------
    A. R. Smith, 1978 (see :func:`rgb_to_hsv`).
    """
    hsv = as_colors(hsv, name="hsv")
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return _from_hue(h, v * s, v - v * s, hsv.dtype)


def rgb_to_hsl(rgb: np.ndarray) -> np.ndarray:
    """Convert RGB in [0, 1] to HSL: hue in degrees, saturation and lightness in [0, 1].

    L = (max + min) / 2, S = chroma / (1 - |2L - 1|) (0 for grays, black
    and white).

    References
    ----------
    G. H. Joblove and D. Greenberg, "Color spaces for computer graphics",
    *SIGGRAPH '78*, 20–25, 1978.

    Examples
    --------
    >>> rgb_to_hsl([1.0, 0.0, 0.0]).tolist()
    [0.0, 1.0, 0.5]
    """
    rgb = as_colors(rgb, name="rgb", rgb=True)
    h, chroma, cmax, cmin = _hue_chroma(rgb)
    light = (cmax + cmin) / 2.0
    denom = 1.0 - np.abs(2.0 * light - 1.0)
    s = np.where(denom <= 0, 0, chroma / np.where(denom <= 0, 1, denom))
    return np.stack([h, s, light], axis=-1).astype(rgb.dtype, copy=False)


def hsl_to_rgb(hsl: np.ndarray) -> np.ndarray:
    """Convert HSL (hue in degrees) to RGB, the inverse of :func:`rgb_to_hsl`."""
    hsl = as_colors(hsl, name="hsl")
    h, s, light = hsl[..., 0], hsl[..., 1], hsl[..., 2]
    chroma = (1.0 - np.abs(2.0 * light - 1.0)) * s
    return _from_hue(h, chroma, light - chroma / 2.0, hsl.dtype)


def _from_hue(h: np.ndarray, chroma: np.ndarray, m: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # Piecewise-linear channel curves of the hexcone: k = (n + H/60) mod 6 and
    # channel = m + C * clip(min(k, 4 - k), 0, 1) for n = 5 (R), 3 (G), 1 (B).
    hp = (h % 360.0) / 60.0
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hp) % 6.0
        out.append(m + chroma * (1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)))
    return np.stack(out, axis=-1).astype(dtype, copy=False)
