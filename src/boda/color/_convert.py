"""Convert between any two of boda's colour spaces by name (used by ``boda color convert``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from boda.color._cie import (
    WhiteLike,
    adaptation_matrix,
    cie_rgb_to_xyz,
    xyy_to_xyz,
    xyz_to_cie_rgb,
    xyz_to_xyy,
)
from boda.color._hsv import hsl_to_rgb, hsv_to_rgb, rgb_to_hsl, rgb_to_hsv
from boda.color._illuminants import SRGB_WHITE
from boda.color._lab import lab_to_lch, lab_to_xyz, lch_to_lab, xyz_to_lab
from boda.color._srgb import linear_rgb_to_xyz, srgb_to_xyz, xyz_to_linear_rgb, xyz_to_srgb
from boda.color._validate import as_colors, matmul3
from boda.errors import InvalidParameterError

__all__ = ["convert", "COLOR_SPACES"]

#: Names accepted by :func:`convert`, with what each holds.
COLOR_SPACES: dict[str, str] = {
    "srgb": "IEC 61966-2-1 encoded sRGB in [0, 1]",
    "linear": "linear-light sRGB in [0, 1]",
    "xyz": "CIE XYZ under D65, white Y = 1",
    "xyy": "CIE xyY (chromaticity x, y and luminance Y)",
    "lab": "CIE 1976 L*a*b* relative to the chosen illuminant",
    "lch": "CIE LCh(ab), hue in degrees",
    "hsv": "HSV of sRGB, hue in degrees",
    "hsl": "HSL of sRGB, hue in degrees",
    "cie_rgb": "CIE 1931 RGB (Wright-Guild primaries 700 / 546.1 / 435.8 nm)",
}

_ALIASES = {"rgb": "srgb", "linear_srgb": "linear", "linear-rgb": "linear", "lchab": "lch",
            "cie-rgb": "cie_rgb", "ciergb": "cie_rgb"}  # fmt: skip


def _lab_from_xyz(xyz: np.ndarray, illuminant: WhiteLike) -> np.ndarray:
    if not (isinstance(illuminant, str) and illuminant.upper() == SRGB_WHITE):
        xyz = matmul3(xyz, adaptation_matrix(SRGB_WHITE, illuminant))
    return xyz_to_lab(xyz, illuminant)


def _xyz_from_lab(lab: np.ndarray, illuminant: WhiteLike) -> np.ndarray:
    xyz = lab_to_xyz(lab, illuminant)
    if not (isinstance(illuminant, str) and illuminant.upper() == SRGB_WHITE):
        xyz = matmul3(xyz, adaptation_matrix(illuminant, SRGB_WHITE))
    return xyz


_TO_XYZ: dict[str, Callable[[np.ndarray, WhiteLike], np.ndarray]] = {
    "srgb": lambda v, w: srgb_to_xyz(v),
    "linear": lambda v, w: linear_rgb_to_xyz(v),
    "xyz": lambda v, w: v,
    "xyy": lambda v, w: xyy_to_xyz(v),
    "lab": _xyz_from_lab,
    "lch": lambda v, w: _xyz_from_lab(lch_to_lab(v), w),
    "hsv": lambda v, w: srgb_to_xyz(hsv_to_rgb(v)),
    "hsl": lambda v, w: srgb_to_xyz(hsl_to_rgb(v)),
    "cie_rgb": lambda v, w: cie_rgb_to_xyz(v),
}
_FROM_XYZ: dict[str, Callable[[np.ndarray, WhiteLike], np.ndarray]] = {
    "srgb": lambda v, w: xyz_to_srgb(v),
    "linear": lambda v, w: xyz_to_linear_rgb(v),
    "xyz": lambda v, w: v,
    "xyy": lambda v, w: xyz_to_xyy(v),
    "lab": _lab_from_xyz,
    "lch": lambda v, w: lab_to_lch(_lab_from_xyz(v, w)),
    "hsv": lambda v, w: rgb_to_hsv(xyz_to_srgb(v)),
    "hsl": lambda v, w: rgb_to_hsl(xyz_to_srgb(v)),
    "cie_rgb": lambda v, w: xyz_to_cie_rgb(v),
}
# Direct routes that avoid a needless trip through XYZ (exact for HSV <-> sRGB).
_DIRECT: dict[tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {
    ("srgb", "hsv"): rgb_to_hsv,
    ("hsv", "srgb"): hsv_to_rgb,
    ("srgb", "hsl"): rgb_to_hsl,
    ("hsl", "srgb"): hsl_to_rgb,
    ("lab", "lch"): lab_to_lch,
    ("lch", "lab"): lch_to_lab,
}


def _space(name: str) -> str:
    key = name.lower().strip() if isinstance(name, str) else ""
    key = _ALIASES.get(key, key)
    if key not in COLOR_SPACES:
        raise InvalidParameterError(
            f"unknown colour space {name!r}; use one of {', '.join(COLOR_SPACES)}"
        )
    return key


def convert(
    values: np.ndarray, from_space: str, to_space: str, *, illuminant: WhiteLike = "D65"
) -> np.ndarray:
    """Convert colours between two named spaces (see :data:`COLOR_SPACES`).

    Every route goes through CIE XYZ under D65 (the sRGB white), except the
    direct sRGB <-> HSV/HSL and Lab <-> LCh ones.  ``illuminant`` is the white
    of Lab/LCh; when it is not D65 the XYZ values are Bradford-adapted.

    Parameters
    ----------
    values : array_like
        ``(..., 3)`` colours.
    from_space, to_space : str
        Names from :data:`COLOR_SPACES` (case-insensitive; ``rgb`` means sRGB).
    illuminant : str or array_like
        Lab / LCh reference white.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)``, float dtype as in the rest of :mod:`boda.color`.

    Examples
    --------
    >>> convert([0.2, 0.4, 0.6], "srgb", "lab").round(3).tolist()
    [42.009, -0.146, -32.845]
    """
    src, dst = _space(from_space), _space(to_space)
    arr = as_colors(values, name="values", rgb=src in ("srgb", "linear"))
    if src == dst:
        return arr.copy()
    if (src, dst) in _DIRECT:
        return _DIRECT[(src, dst)](arr)
    return _FROM_XYZ[dst](_TO_XYZ[src](arr, illuminant), illuminant)
