"""Standard illuminants and RGB primaries (dataset module: numbers only).

Chromaticity coordinates are those of the CIE 1931 2° standard observer, as
given in CIE 015:2018 Table 1 and used by colour-science
(``colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]``).
"""

from __future__ import annotations

from boda.core.colorimetry import BRADFORD, D65_XY, SRGB_PRIMARIES_XY

__all__ = ["ILLUMINANTS_XY", "SRGB_PRIMARIES_XY", "SRGB_WHITE", "CIE_RGB_MATRIX", "BRADFORD"]

#: xy chromaticity of the CIE standard illuminants (2° observer), the values
#: colour-science uses (so Lab with a given white agrees with it to float64
#: precision).  D50 here is the CIE daylight D50, not the ICC PCS white
#: (0.9642, 1, 0.8249), which differs in the fourth decimal.
ILLUMINANTS_XY: dict[str, tuple[float, float]] = {
    "A": (0.44758, 0.40745),
    "B": (0.34842, 0.35161),
    "C": (0.31006, 0.31616),
    "D50": (0.3457, 0.3585),
    "D55": (0.33243, 0.34744),
    "D60": (0.321616709705268, 0.337619916550817),
    "D65": D65_XY,
    "D75": (0.29903, 0.31488),
    "E": (1.0 / 3.0, 1.0 / 3.0),
    "F2": (0.3721, 0.3751),
    "F7": (0.3129, 0.3292),
    "F11": (0.3805, 0.3769),
}

# SRGB_PRIMARIES_XY (ITU-R BT.709 / IEC 61966-2-1, red, green, blue as xy) and
# BRADFORD (Lam 1985; as in ICC.1 Annex E and Lindbloom) come from
# boda.core.colorimetry, which the image reader shares.

#: The sRGB reference white.
SRGB_WHITE = "D65"

#: CIE 1931 RGB (Wright–Guild primaries 700, 546.1, 435.8 nm) to XYZ, before
#: division by 0.17697 (CIE 1931; Smith & Guild 1931, the "classic matrix").
CIE_RGB_MATRIX: tuple[tuple[float, float, float], ...] = (
    (0.49, 0.31, 0.20),
    (0.17697, 0.81240, 0.01063),
    (0.00, 0.01, 0.99),
)

#: von Kries with Hunt–Pointer–Estévez cone fundamentals (normalised to D65).
VON_KRIES: tuple[tuple[float, float, float], ...] = (
    (0.40024, 0.70760, -0.08081),
    (-0.22630, 1.16532, 0.04570),
    (0.00000, 0.00000, 0.91822),
)
