"""CIE XYZ, xyY, white points, chromatic adaptation and the CIE 1931 RGB system."""

from __future__ import annotations

import numpy as np

from boda.color._illuminants import BRADFORD, CIE_RGB_MATRIX, ILLUMINANTS_XY, VON_KRIES
from boda.color._validate import as_colors, float_dtype, matmul3
from boda.core.colorimetry import (
    chromatic_adaptation_matrix,
    normalised_primary_matrix,
    xy_to_xyz,
)
from boda.errors import InvalidParameterError

__all__ = [
    "whitepoint",
    "xyz_to_xyy",
    "xyy_to_xyz",
    "chromatic_adaptation",
    "rgb_to_xyz_matrix",
    "cie_rgb_to_xyz",
    "xyz_to_cie_rgb",
    "CIE_RGB_TO_XYZ",
    "XYZ_TO_CIE_RGB",
]

#: CIE 1931 RGB -> XYZ, the classic matrix divided by 0.17697 so that
#: Y = V(λ)-weighted luminance of the RGB match (CIE 1931).
CIE_RGB_TO_XYZ = np.array(CIE_RGB_MATRIX, dtype=np.float64) / 0.17697
XYZ_TO_CIE_RGB = np.linalg.inv(CIE_RGB_TO_XYZ)
CIE_RGB_TO_XYZ.setflags(write=False)
XYZ_TO_CIE_RGB.setflags(write=False)

_CATS = {
    "bradford": np.array(BRADFORD, dtype=np.float64),
    "von kries": np.array(VON_KRIES, dtype=np.float64),
    "xyz scaling": np.eye(3),
}

WhiteLike = str | tuple[float, float] | tuple[float, float, float] | np.ndarray


def whitepoint(illuminant: WhiteLike = "D65") -> np.ndarray:
    """Return the XYZ tristimulus values (Y = 1) of a white point.

    Parameters
    ----------
    illuminant : str or array_like
        A CIE illuminant name (``"D65"``, ``"D50"``, ``"A"``, ``"E"``, ``"C"``,
        ``"D55"``, ``"D60"``, ``"D75"``, ``"B"``, ``"F2"``, ``"F7"``, ``"F11"``;
        case-insensitive), an ``(x, y)`` chromaticity or an ``(X, Y, Z)`` triple
        (returned unchanged, as float64).

    Returns
    -------
    numpy.ndarray
        float64 ``(3,)``.

    Raises
    ------
    InvalidParameterError
        Unknown name, a value of the wrong length, or a chromaticity that is no
        colour (x or y negative, y = 0, x + y > 1).

    Examples
    --------
    >>> whitepoint("D65").round(5).tolist()
    [0.95046, 1.0, 1.08906]
    """
    if isinstance(illuminant, str):
        key = illuminant.upper()
        if key not in ILLUMINANTS_XY:
            raise InvalidParameterError(
                f"unknown illuminant {illuminant!r}; use one of {sorted(ILLUMINANTS_XY)} "
                "or give its (x, y) chromaticity"
            )
        return xy_to_xyz(ILLUMINANTS_XY[key])
    try:
        arr = np.asarray(illuminant, dtype=np.float64)
    except (TypeError, ValueError):  # not numbers, or ragged lists
        raise InvalidParameterError(
            f"white point must be a name, (x, y) or (X, Y, Z) numbers; got {illuminant!r:.60}"
        ) from None
    if arr.shape == (2,):
        x, y = arr
        # A real chromaticity: x, y >= 0 with x + y <= 1 (z = 1 - x - y >= 0), and
        # y > 0 (Y = 1 needs it); anything else gives infinite or negative X, Z.
        if not (np.isfinite(arr).all() and x >= 0 and y > 0 and x + y <= 1):
            raise InvalidParameterError(
                f"white point chromaticity (x, y) = ({x:g}, {y:g}) is not a colour: x and y "
                "must be >= 0 with y > 0 and x + y <= 1 (D65 is 0.3127, 0.329)"
            )
        return xy_to_xyz(arr)
    if arr.shape == (3,):
        if not (np.isfinite(arr).all() and (arr >= 0).all() and arr[1] > 0):
            raise InvalidParameterError(
                f"white point XYZ {arr.tolist()} must be finite and non-negative with Y > 0"
            )
        return arr
    raise InvalidParameterError(
        f"white point must be a name, (x, y) or (X, Y, Z); got shape {arr.shape}"
    )


def xyz_to_xyy(xyz: np.ndarray, *, black_xy: WhiteLike | None = "D65") -> np.ndarray:
    """Convert CIE XYZ to xyY.

    x = X / (X + Y + Z), y = Y / (X + Y + Z), and Y is kept.

    Parameters
    ----------
    xyz : array_like
        ``(..., 3)`` tristimulus values.
    black_xy : str, array_like or None
        Chromaticity given to black (X + Y + Z = 0), where x and y are
        undefined: by default the D65 white, as Lindbloom recommends, so that
        black sits at the achromatic point instead of producing NaN; ``None``
        gives (0, 0), what colour-science 0.4.7 returns.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` xyY, same float dtype as the input. NaN propagates.

    References
    ----------
    CIE 015:2018, eq. 7.3; B. Lindbloom, "XYZ to xyY",
    http://www.brucelindbloom.com/Eqn_XYZ_to_xyY.html (black).

    Examples
    --------
    >>> xyz_to_xyy([0.25, 0.5, 0.25]).tolist()
    [0.25, 0.5, 0.5]
    """
    xyz = as_colors(xyz, name="xyz")
    dt = float_dtype(xyz)
    total = xyz.sum(axis=-1, keepdims=True)
    black = total == 0
    if black_xy is None:
        wxy = np.zeros(2, dtype=dt)
    else:
        w = whitepoint(black_xy)
        wxy = (w[:2] / w.sum()).astype(dt)
    safe = np.where(black, 1, total)
    xy = np.where(black, wxy, xyz[..., :2] / safe)
    return np.concatenate([xy, xyz[..., 1:2]], axis=-1).astype(dt, copy=False)


def xyy_to_xyz(xyy: np.ndarray) -> np.ndarray:
    """Convert xyY to CIE XYZ: X = xY/y, Z = (1 - x - y)Y/y.

    Where y = 0 (no defined luminance ratio) the result is black, (0, 0, 0).

    Parameters
    ----------
    xyy : array_like
        ``(..., 3)`` xyY values.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` XYZ, same float dtype.

    References
    ----------
    CIE 015:2018, eq. 7.4.
    """
    xyy = as_colors(xyy, name="xyy")
    x, y, big_y = xyy[..., 0], xyy[..., 1], xyy[..., 2]
    zero = y == 0
    ratio = np.where(zero, 0, big_y / np.where(zero, 1, y))
    return np.stack([x * ratio, np.where(zero, 0, big_y), (1 - x - y) * ratio], axis=-1).astype(
        xyy.dtype, copy=False
    )


def chromatic_adaptation(
    xyz: np.ndarray,
    source: WhiteLike,
    target: WhiteLike,
    *,
    method: str = "bradford",
) -> np.ndarray:
    """Adapt XYZ colours seen under white ``source`` to white ``target``.

    The von Kries-type transform M⁻¹ · diag(ρ_t/ρ_s) · M, with M the
    Bradford cone-response matrix by default ("linear Bradford", as in ICC.1
    and colour-science's ``chromatic_adaptation_VonKries``).

    Parameters
    ----------
    xyz : array_like
        ``(..., 3)`` tristimulus values.
    source, target : str or array_like
        White points (see :func:`whitepoint`).
    method : {"bradford", "von kries", "xyz scaling"}
        The cone-response matrix.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)``, same float dtype.

    References
    ----------
    K. M. Lam, *Metamerism and Colour Constancy*, PhD thesis, University of
    Bradford, 1985; ICC.1:2010 Annex E.

    Examples
    --------
    >>> chromatic_adaptation(whitepoint("D65"), "D65", "D50").round(4).tolist()
    [0.9643, 1.0, 0.8251]
    """
    xyz = as_colors(xyz, name="xyz")
    return matmul3(xyz, adaptation_matrix(source, target, method=method))


def adaptation_matrix(source: WhiteLike, target: WhiteLike, *, method: str = "bradford"):
    """The 3x3 float64 matrix of :func:`chromatic_adaptation`."""
    key = method.lower() if isinstance(method, str) else None
    if key not in _CATS:
        raise InvalidParameterError(
            f"unknown chromatic adaptation method {method!r}; use one of {sorted(_CATS)}"
        )
    return chromatic_adaptation_matrix(whitepoint(source), whitepoint(target), _CATS[key])


def rgb_to_xyz_matrix(primaries_xy: np.ndarray, white: WhiteLike) -> np.ndarray:
    """Normalised primary matrix of an RGB space: linear RGB -> XYZ (float64, 3x3).

    The columns are the primaries' XYZ scaled so that RGB = (1, 1, 1) maps to
    the white point with Y = 1 (SMPTE RP 177-1993, eq. 3.3).

    Parameters
    ----------
    primaries_xy : array_like
        ``(3, 2)`` xy chromaticities of red, green and blue.
    white : str or array_like
        The reference white (see :func:`whitepoint`).

    Raises
    ------
    InvalidParameterError
        Not three (x, y) pairs, a y <= 0 or not finite, or collinear primaries.
    """
    try:
        p = np.asarray(primaries_xy, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"primaries must be three (x, y) chromaticities (numbers), got {primaries_xy!r:.60}"
        ) from None
    if p.shape != (3, 2):
        raise InvalidParameterError(f"primaries must have shape (3, 2), got {p.shape}")
    if not (np.isfinite(p).all() and (p[:, 1] > 0).all()):
        raise InvalidParameterError(f"primaries must be finite with y > 0, got {p.tolist()}")
    w = whitepoint(white)
    try:
        return normalised_primary_matrix(p, w)
    except np.linalg.LinAlgError:
        raise InvalidParameterError(
            f"primaries {p.tolist()} lie on one line in the xy plane: they span no RGB space"
        ) from None


def cie_rgb_to_xyz(rgb: np.ndarray) -> np.ndarray:
    """Convert CIE 1931 RGB (Wright–Guild primaries) to CIE XYZ.

    XYZ = M · RGB / 0.17697 with the classic matrix
    M = [[0.49, 0.31, 0.20], [0.17697, 0.81240, 0.01063], [0.00, 0.01, 0.99]].
    Applied to the r̄ ḡ b̄ colour-matching functions it gives x̄ ȳ z̄.

    Parameters
    ----------
    rgb : array_like
        ``(..., 3)`` CIE RGB tristimulus values (may be negative).

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` XYZ, same float dtype.

    References
    ----------
    CIE, *Commission Internationale de l'Éclairage Proceedings*, 1931;
    T. Smith and J. Guild, "The C.I.E. colorimetric standards and their use",
    *Trans. Opt. Soc.* 33(3), 73–134, 1931.

    Examples
    --------
    >>> cie_rgb_to_xyz([1.0, 1.0, 1.0]).round(6).tolist()  # equal-energy white E
    [5.650675, 5.650675, 5.650675]
    """
    return matmul3(as_colors(rgb, name="rgb"), CIE_RGB_TO_XYZ)


def xyz_to_cie_rgb(xyz: np.ndarray) -> np.ndarray:
    """Convert CIE XYZ to CIE 1931 RGB, the inverse of :func:`cie_rgb_to_xyz`."""
    return matmul3(as_colors(xyz, name="xyz"), XYZ_TO_CIE_RGB)
