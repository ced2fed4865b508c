"""Derivative filters (numpy in, numpy out).

All filters are correlations (like OpenCV's ``filter2D``), keep the input's
shape, work on ``(H, W)`` or per channel on ``(H, W, C)`` and return float32.
Borders default to ``"reflect101"`` (``dcb|abcd|cba``, OpenCV's
``BORDER_DEFAULT``); see :data:`BORDER_MODES` for the others.
"""

from boda.filters._derivatives import (
    BORDER_MODES,
    central_difference,
    forward_difference,
    gradient,
    gradient_magnitude,
    gradient_orientation,
    laplacian,
    prewitt,
    scharr,
    scipy_border_mode,
    sobel,
)

__all__ = [
    "BORDER_MODES",
    "central_difference",
    "forward_difference",
    "gradient",
    "gradient_magnitude",
    "gradient_orientation",
    "laplacian",
    "prewitt",
    "scharr",
    "scipy_border_mode",
    "sobel",
]
