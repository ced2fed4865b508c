"""RGB <-> HSV and HSL (hexcone models), hue in degrees with 0° = red."""

from __future__ import annotations

import numpy as np

from boda.color._elementwise import blockwise, wrap_at, wrap_negative
from boda.color._validate import as_colors
from boda.errors import InvalidParameterError

__all__ = ["rgb_to_hsv", "hsv_to_rgb", "rgb_to_hsl", "hsl_to_rgb"]

#: How far outside [0, 1] the RGB made from an HSV / HSL colour may fall before the
#: input is refused: float32 rounding of colours that came through XYZ or Lab reaches
#: 1.4e-5; this is a 40th of an 8-bit level.  Percentages miss it by orders of magnitude.
_RGB_TOLERANCE = 1e-4


def _hue_chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), chroma, max and min of a block of colours given as rows ``(3, n)``.

    The floats of the whole-array expressions ``rgb.max(-1)``, ``np.where(cmax == r,
    ((g - b) / C) % 6, np.where(cmax == g, (b - r) / C + 2, (r - g) / C + 4))``... (the
    test keeps them), step by step in place.
    """
    r, g, b = rgb
    cmax = np.maximum(np.maximum(r, g), b)  # rgb.max(axis=-1), 15x faster
    cmin = np.minimum(np.minimum(r, g), b)
    chroma = cmax - cmin
    gray = chroma == 0
    safe = np.add(chroma, gray)  # np.where(gray, 1, chroma): 0 + 1 there, C + 0 elsewhere
    # Smith (1978): the sector is chosen by the largest component (red before green
    # before blue on ties): fill in blue's, then overwrite with green's and red's.
    h = np.subtract(r, g)
    h /= safe
    h += 4.0
    sector = np.subtract(b, r)
    sector /= safe
    sector += 2.0
    np.copyto(h, sector, where=cmax == g)
    np.subtract(g, b, out=sector)
    sector /= safe
    # Where red is the largest, |g - b| <= C (rounding is monotonic), so the quotient
    # lies in [-1, 1] (or is NaN from infinities): % 6 is a conditional add there.
    wrap_negative(sector, 6.0)
    np.copyto(h, sector, where=cmax == r)
    h *= 60.0
    np.copyto(h, 0, where=gray)
    # (g - b) / C = -1e-17 gives (-1e-17) % 6 = 6.0 (rounding): 360°, which is 0°
    wrap_at(h, 360.0)  # h is in [0, 360]
    return h, chroma, cmax, cmin


def _hsv_block(rgb: np.ndarray, out: np.ndarray) -> None:
    h, chroma, cmax, _ = _hue_chroma(rgb)
    black = cmax == 0
    s = np.divide(chroma, np.add(cmax, black), out=chroma)  # V + 1 = 1 where V = 0
    np.copyto(s, 0, where=black)
    out[:, 0], out[:, 1], out[:, 2] = h, s, cmax


def _hsl_block(rgb: np.ndarray, out: np.ndarray) -> None:
    h, chroma, cmax, cmin = _hue_chroma(rgb)
    total = np.add(cmax, cmin, out=cmax)
    light = total / 2.0
    # 1 - |2L - 1| without its cancellation (S of a dark colour was 1.0006 in float32)
    denom = np.minimum(total, np.subtract(2.0, total, out=cmin), out=cmin)
    flat = denom <= 0
    s = np.divide(chroma, np.where(flat, 1, denom), out=chroma)
    np.copyto(s, 0, where=flat)
    out[:, 0], out[:, 1], out[:, 2] = h, s, light


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
    return blockwise(as_colors(rgb, name="rgb", rgb=True), _hsv_block)


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
    return _hue_to_rgb(as_colors(hsv, name="hsv"), _hsv_chroma, "hsv", "value")


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
    return blockwise(as_colors(rgb, name="rgb", rgb=True), _hsl_block)


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
    return _hue_to_rgb(as_colors(hsl, name="hsl"), _hsl_chroma, "hsl", "lightness")


def _hsv_chroma(s: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chroma ``V S`` and the offset ``V - C`` added to every channel."""
    chroma = v * s
    return chroma, v - chroma


def _hsl_chroma(s: np.ndarray, light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chroma ``(1 - |2L - 1|) S`` and the offset ``L - C / 2``."""
    twice = 2.0 * light
    chroma = np.minimum(twice, np.subtract(2.0, twice)) * s
    return chroma, light - chroma / 2.0


def _hue_to_rgb(given: np.ndarray, chroma_offset, name: str, third: str) -> np.ndarray:
    """RGB of HSV or HSL colours (``chroma_offset`` says which), block by block
    (:func:`~boda.color._elementwise.blockwise`), checked by :func:`_check_fractions`."""
    extremes = []

    def convert(rows: np.ndarray, out: np.ndarray) -> None:
        h, s, third_values = rows
        chroma, offset = chroma_offset(s, third_values)
        _from_hue(h, chroma, offset, out)
        extremes.append(_extremes(out, chroma))

    rgb = blockwise(given, convert)
    _check_fractions(extremes, given, name, third)
    return rgb


def _extremes(rgb: np.ndarray, chroma: np.ndarray) -> tuple[float, float, float] | None:
    """Least and largest RGB value and least chroma of a block's colours without NaN
    (NaN propagates; the rest is judged), or None when every colour has a NaN."""
    lo, hi, cmin = rgb.min(), rgb.max(), chroma.min()
    if np.isnan(lo) or np.isnan(hi) or np.isnan(cmin):
        ok = ~np.isnan(rgb).any(axis=-1)
        if not ok.any():
            return None
        lo, hi, cmin = rgb[ok].min(), rgb[ok].max(), chroma[ok].min()
    return lo, hi, cmin


def _check_fractions(
    extremes: list[tuple[float, float, float] | None], given: np.ndarray, name: str, third: str
) -> None:
    """Refuse S, V or L outside [0, 1] by what they do: RGB outside [0, 1] or chroma < 0.

    Judging the result rather than S itself keeps float rounding legal where S is
    ill-conditioned (S = chroma / V of a near-black colour), and costs three reductions
    (``extremes``: the blocks' :func:`_extremes`).
    """
    judged = [e for e in extremes if e is not None]
    if not judged:  # no colours, or NaN in every one
        return
    lo, hi, cmin = (min(e[0] for e in judged), max(e[1] for e in judged), min(e[2] for e in judged))
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


def _from_hue(h: np.ndarray, chroma: np.ndarray, m: np.ndarray, out: np.ndarray) -> None:
    """Write the RGB of a block of hues, chromas and offsets into ``out`` ``(n, 3)``.

    Piecewise-linear channel curves of the hexcone: ``k = (n + H/60) mod 6`` and
    channel = ``m + C * (1 - clip(min(k, 4 - k), 0, 1))`` for n = 5 (R), 3 (G), 1 (B),
    the floats of those whole-array expressions (the test keeps them), with the two
    ``mod`` (``np.remainder``, a slow scalar loop) done by ``wrap_at`` where the values
    allow it.
    """
    if h.size and h.min() >= 0.0 and h.max() < 360.0:  # so NaN takes np.remainder
        hp = h + 0.0  # h % 360 on [0, 360): h itself, -0 becoming +0
    else:
        hp = np.remainder(h, 360.0)
    hp /= 60.0  # in [0, 6]: (360 - 1 ulp) / 60 may round up to 6
    k = np.empty_like(hp)
    curve = np.empty_like(hp)
    for channel, n in enumerate((5.0, 3.0, 1.0)):
        np.add(hp, n, out=k)  # in [1, 11]
        wrap_at(k, 6.0)
        np.subtract(4.0, k, out=curve)
        np.minimum(k, curve, out=curve)
        np.clip(curve, 0.0, 1.0, out=curve)
        np.subtract(1.0, curve, out=curve)
        curve *= chroma
        np.add(m, curve, out=out[:, channel])
