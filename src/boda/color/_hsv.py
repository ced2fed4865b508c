"""RGB <-> HSV and HSL (hexcone models), hue in degrees with 0° = red."""

from __future__ import annotations

import numpy as np

from boda.color._validate import as_colors
from boda.errors import InvalidParameterError

__all__ = ["rgb_to_hsv", "hsv_to_rgb", "rgb_to_hsl", "hsl_to_rgb"]

#: How far outside [0, 1] the RGB made from an HSV / HSL colour may fall before the
#: input is refused: float32 rounding of colours that came through XYZ or Lab reaches
#: 1.4e-5; this is a 40th of an 8-bit level.  Percentages miss it by orders of magnitude.
_RGB_TOLERANCE = 1e-4


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
    # (g - b) / C = -1e-17 gives (-1e-17) % 6 = 6.0 (rounding): 360°, which is 0°
    h = np.where(h >= 360.0, h - 360.0, h)
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
        are converted as they are (their S or V leave [0, 1] too, which
        :func:`hsv_to_rgb` refuses); NaN propagates.

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

    Parameters
    ----------
    hsv : array_like
        ``(..., 3)`` H in degrees, S and V as fractions in [0, 1] (not percent).
        NaN propagates.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` RGB in [0, 1]; same float dtype.

    Raises
    ------
    InvalidParameterError
        S or V outside [0, 1] (percentages, say) beyond float rounding: values
        whose RGB would fall more than 1e-4 outside [0, 1], or a negative S.

    References
    ----------
    A. R. Smith, 1978 (see :func:`rgb_to_hsv`).

    Examples
    --------
    >>> hsv_to_rgb([210.0, 1.0, 1.0]).tolist()
    [0.0, 0.5, 1.0]
    """
    hsv = as_colors(hsv, name="hsv")
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    chroma = v * s
    rgb = _from_hue(h, chroma, v - chroma, hsv.dtype)
    _check_fractions(rgb, chroma, hsv, "hsv", "value")
    return rgb


def rgb_to_hsl(rgb: np.ndarray) -> np.ndarray:
    """Convert RGB in [0, 1] to HSL: hue in degrees, saturation and lightness in [0, 1].

    L = (max + min) / 2, S = chroma / (1 - |2L - 1|) (0 for grays, black
    and white), the denominator computed as min(max + min, 2 - max - min), as
    :mod:`colorsys` does, so dark colours keep S <= 1 in float32 too.

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
    total = cmax + cmin
    light = total / 2.0
    # 1 - |2L - 1| without its cancellation (S of a dark colour was 1.0006 in float32)
    denom = np.minimum(total, 2.0 - total)
    s = np.where(denom <= 0, 0, chroma / np.where(denom <= 0, 1, denom))
    return np.stack([h, s, light], axis=-1).astype(rgb.dtype, copy=False)


def hsl_to_rgb(hsl: np.ndarray) -> np.ndarray:
    """Convert HSL (hue in degrees, taken modulo 360) to RGB, the inverse of :func:`rgb_to_hsl`.

    Parameters
    ----------
    hsl : array_like
        ``(..., 3)`` H in degrees, S and L as fractions in [0, 1] (not percent).
        NaN propagates.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` RGB in [0, 1]; same float dtype.

    Raises
    ------
    InvalidParameterError
        S or L outside [0, 1] (percentages, say), beyond float rounding, as in
        :func:`hsv_to_rgb`.

    Examples
    --------
    >>> hsl_to_rgb([0.0, 1.0, 0.5]).tolist()
    [1.0, 0.0, 0.0]
    """
    hsl = as_colors(hsl, name="hsl")
    h, s, light = hsl[..., 0], hsl[..., 1], hsl[..., 2]
    chroma = np.minimum(2.0 * light, 2.0 - 2.0 * light) * s  # (1 - |2L - 1|) S
    rgb = _from_hue(h, chroma, light - chroma / 2.0, hsl.dtype)
    _check_fractions(rgb, chroma, hsl, "hsl", "lightness")
    return rgb


def _check_fractions(
    rgb: np.ndarray, chroma: np.ndarray, given: np.ndarray, name: str, third: str
) -> None:
    """Refuse S, V or L outside [0, 1] by what they do: RGB outside [0, 1] or chroma < 0.

    Judging the result rather than S itself keeps float rounding legal where S is
    ill-conditioned (S = chroma / V of a near-black colour), and costs three reductions.
    """
    if rgb.size == 0:
        return
    lo, hi, cmin = rgb.min(), rgb.max(), chroma.min()
    if np.isnan(lo) or np.isnan(hi) or np.isnan(cmin):  # NaN propagates; judge the rest
        ok = ~np.isnan(rgb).any(axis=-1)
        if not ok.any():
            return
        lo, hi, cmin = rgb[ok].min(), rgb[ok].max(), chroma[ok].min()
    tol = _RGB_TOLERANCE
    if lo >= -tol and hi <= 1.0 + tol and cmin >= -tol:
        return
    s, t = given[..., 1], given[..., 2]
    got = (
        f"got saturation {np.nanmin(s):g} to {np.nanmax(s):g} and "
        f"{third} {np.nanmin(t):g} to {np.nanmax(t):g}"
    )
    if max(np.nanmax(s), np.nanmax(t)) > 1.0:
        hint = (
            f"if they are percentages, divide them by 100 ({name}[..., 1:] / 100) "
            "and leave the hue in degrees"
        )
    else:
        hint = f"negative saturation or {third} has no meaning"
    raise InvalidParameterError(
        f"{name} must hold the hue in degrees and saturation and {third} as fractions in "
        f"[0, 1]; {got}: {hint}"
    )


def _from_hue(h: np.ndarray, chroma: np.ndarray, m: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # Piecewise-linear channel curves of the hexcone: k = (n + H/60) mod 6 and
    # channel = m + C * clip(min(k, 4 - k), 0, 1) for n = 5 (R), 3 (G), 1 (B).
    hp = (h % 360.0) / 60.0
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hp) % 6.0
        out.append(m + chroma * (1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)))
    return np.stack(out, axis=-1).astype(dtype, copy=False)
