"""Colour science: conversions, colour differences, spectra, plots and image measures.

Conventions
-----------
- Colour arrays put the three components on the **last axis**, so one colour
  ``(3,)``, a list ``(N, 3)`` and an image ``(H, W, 3)`` all work.
- **float64 in, float64 out** (accurate: round trips to 1e-6 and agreement
  with colour-science to 1e-10); **float32 in, float32 out** (fast path for
  images).  uint8/uint16 RGB is rescaled to [0, 1] float32; Python lists become
  float64.  Wrong shapes or non-numeric dtypes raise
  :class:`boda.errors.InvalidImageError`.
- sRGB values are IEC 61966-2-1 encoded unless a function says "linear".
  XYZ is scaled so that the white has Y = 1 (not 100).
- sRGB <-> XYZ uses the matrix **derived in float64** from the sRGB
  primaries and D65 = (0.3127, 0.3290) (as CSS Color 4 and colour-science's
  derived matrices do), not the 4-decimal print of IEC 61966-2-1, whose two
  matrices are not inverses of each other.  So round trips are exact to float64
  and sRGB white is exactly L* = 100, a* = b* = 0 (the Lab default white is the
  same D65).  colour-science with derived matrices agrees to 1e-13; its
  default ``sRGB_to_XYZ`` (printed matrices) differs by up to 0.021 in Lab,
  scikit-image (an older 6-digit matrix, white (0.95047, 1, 1.08883)) by up
  to 0.015, and those two differ from each other by 0.023.
- Nothing is clipped silently: out-of-gamut, negative and >1 values go through
  the (extended) formulas and NaN propagates; functions that produce display
  sRGB take ``clip=True`` to clip to [0, 1].  The image measures clip their
  input to [0, 1].
"""

from boda.color._cie import (
    CIE_RGB_TO_XYZ,
    XYZ_TO_CIE_RGB,
    adaptation_matrix,
    chromatic_adaptation,
    cie_rgb_to_xyz,
    rgb_to_xyz_matrix,
    whitepoint,
    xyy_to_xyz,
    xyz_to_cie_rgb,
    xyz_to_xyy,
)
from boda.color._convert import COLOR_SPACES, convert
from boda.color._datasets import ciede2000_test_data, cmfs_cie1931_xyz, cmfs_wright_guild_rgb
from boda.color._difference import (
    DELTA_E_METHODS,
    delta_e,
    delta_e_cie1976,
    delta_e_cie1994,
    delta_e_ciede2000,
)
from boda.color._hsv import hsl_to_rgb, hsv_to_rgb, rgb_to_hsl, rgb_to_hsv
from boda.color._illuminants import ILLUMINANTS_XY
from boda.color._lab import lab_to_lch, lab_to_srgb, lab_to_xyz, lch_to_lab, srgb_to_lab, xyz_to_lab
from boda.color._measures import (
    COLORFULNESS_SCALE,
    GRAYSCALE_CHROMA_THRESHOLD,
    ColorSummary,
    color_summary,
    colorfulness,
    colorfulness_label,
    dominant_colors,
    is_grayscale,
    lightness_stats,
)
from boda.color._plots import (
    check_figure_path,
    hue_saturation_histogram,
    pixel_chromaticities,
    plot_chromaticity_diagram,
    plot_hue_saturation_histogram,
    save_figure,
)
from boda.color._spectral import (
    blackbody_spd,
    planckian_xy,
    spectral_locus,
    spectrum_to_xyz,
    wavelength_to_xy,
)
from boda.color._srgb import (
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    linear_rgb_to_xyz,
    linear_to_srgb,
    srgb_to_linear,
    srgb_to_xyz,
    xyz_to_linear_rgb,
    xyz_to_srgb,
)

__all__ = [
    # sRGB and XYZ
    "srgb_to_linear",
    "linear_to_srgb",
    "linear_rgb_to_xyz",
    "xyz_to_linear_rgb",
    "srgb_to_xyz",
    "xyz_to_srgb",
    "SRGB_TO_XYZ",
    "XYZ_TO_SRGB",
    # CIE
    "whitepoint",
    "ILLUMINANTS_XY",
    "xyz_to_xyy",
    "xyy_to_xyz",
    "chromatic_adaptation",
    "adaptation_matrix",
    "rgb_to_xyz_matrix",
    "cie_rgb_to_xyz",
    "xyz_to_cie_rgb",
    "CIE_RGB_TO_XYZ",
    "XYZ_TO_CIE_RGB",
    # Lab
    "xyz_to_lab",
    "lab_to_xyz",
    "lab_to_lch",
    "lch_to_lab",
    "srgb_to_lab",
    "lab_to_srgb",
    # HSV / HSL
    "rgb_to_hsv",
    "hsv_to_rgb",
    "rgb_to_hsl",
    "hsl_to_rgb",
    # by name
    "convert",
    "COLOR_SPACES",
    # differences
    "delta_e",
    "delta_e_cie1976",
    "delta_e_cie1994",
    "delta_e_ciede2000",
    "DELTA_E_METHODS",
    # spectra and datasets
    "spectrum_to_xyz",
    "wavelength_to_xy",
    "spectral_locus",
    "blackbody_spd",
    "planckian_xy",
    "cmfs_cie1931_xyz",
    "cmfs_wright_guild_rgb",
    "ciede2000_test_data",
    # plots
    "pixel_chromaticities",
    "plot_chromaticity_diagram",
    "hue_saturation_histogram",
    "plot_hue_saturation_histogram",
    "save_figure",
    "check_figure_path",
    # image measures
    "colorfulness",
    "colorfulness_label",
    "color_summary",
    "ColorSummary",
    "COLORFULNESS_SCALE",
    "lightness_stats",
    "dominant_colors",
    "is_grayscale",
    "GRAYSCALE_CHROMA_THRESHOLD",
]
