"""Input handling shared by the edge detectors."""

from __future__ import annotations

import numpy as np

from boda.core.image import as_float_image, finite_pixels, to_gray


def gray_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` as float32 ``(H, W)``; colour is reduced with Rec. 601 luma.

    NaN or infinity is refused: it would silently empty a Canny edge map.
    """
    return finite_pixels(to_gray(as_float_image(image, name=name)), name)
