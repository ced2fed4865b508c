"""Evaluating blur measures at a reference scale.

Why a reference scale: pixel-domain blur measures (Laplacian variance,
Tenengrad, high-frequency energy...) look at the top octave of the image's
spectrum, and what sits there depends on how many pixels the scene was sampled
with.  A camera's full-resolution image is soft at the pixel level (optics,
demosaicing, noise reduction) while the same photo area-averaged to 640 pixels
is crisp, and an upsampled image has an empty top octave.  Natural images have
roughly ``1/f^2`` power spectra (Field 1987), and for such a spectrum the
pixel-level derivative energy of an image that is sharp at its own pixel
scale does not depend on the number of pixels.  So every blur measure in
:mod:`boda.quality` first area-averages images whose longer side exceeds
``reference_side`` down to it (never up): after that, "sharp" means the same
thing for a 24 MP photo and a 500 px crop, and one threshold serves both.
"""

from __future__ import annotations

import numpy as np

from boda.core.image import finite_pixels, to_gray
from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

__all__ = ["REFERENCE_SIDE", "to_reference_gray"]

#: Longer side (pixels) at which the blur measures are evaluated by default.
#: Chosen with the calibration in ``benchmarks/blur_detection.py``: small
#: enough that full-resolution camera softness and sensor noise average away,
#: large enough to keep a few pixels of blur visible in 12-24 MP photos.
REFERENCE_SIDE = 640


def to_reference_gray(image: np.ndarray, reference_side: int | None = REFERENCE_SIDE) -> np.ndarray:
    """Rec. 601 gray, area-averaged so the longer side is at most ``reference_side``.

    ``reference_side=None`` keeps the native resolution.  Images already at or
    below the reference are returned unchanged (never upsampled).
    """
    gray = finite_pixels(to_gray(image))
    if reference_side is None:
        return gray
    if not (whole_number(reference_side) and reference_side >= 8):
        raise InvalidParameterError(
            f"reference_side must be a whole number of pixels, at least 8 (or None), "
            f"got {reference_side!r}"
        )
    h, w = gray.shape
    longest = max(h, w)
    if longest <= reference_side:
        return gray
    out_h = max(1, round(h * reference_side / longest))
    out_w = max(1, round(w * reference_side / longest))
    import cv2

    # One exact area average from the original grid (OpenCV's INTER_AREA gives
    # each output pixel the mean of the input area it covers, partial pixels
    # weighted by their overlap).  Not 2x2 means first and the fractional rest
    # after: averaging block means adds a box blur of up to one block, ~0.9
    # output px at 6000 -> 750 -> 640, which lowered camera-size photos' scores
    # by 0.05-0.23 depending on their pixel count (test_score_does_not_depend_on_pixel_count).
    gray = cv2.resize(
        np.ascontiguousarray(gray, dtype=np.float32), (out_w, out_h), interpolation=cv2.INTER_AREA
    )
    return np.ascontiguousarray(gray, dtype=np.float32)
