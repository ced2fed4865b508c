"""Input handling shared by the edge detectors."""

from __future__ import annotations

import numpy as np

from boda.core.image import as_float_image, to_gray


def gray_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` as float32 ``(H, W)``; colour is reduced with Rec. 601 luma."""
    return to_gray(as_float_image(image, name=name))
