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

from typing import TYPE_CHECKING

import numpy as np

from boda.core.image import finite_pixels, to_gray
from boda.errors import InvalidParameterError

if TYPE_CHECKING:
    from scipy import sparse

__all__ = ["REFERENCE_SIDE", "area_weights", "to_reference_gray"]

#: Longer side (pixels) at which the blur measures are evaluated by default.
#: Chosen with the calibration in ``benchmarks/blur_detection.py``: small
#: enough that full-resolution camera softness and sensor noise average away,
#: large enough to keep a few pixels of blur visible in 12-24 MP photos.
REFERENCE_SIDE = 640


def area_weights(n_in: int, n_out: int) -> sparse.csr_matrix:
    """Sparse ``(n_out, n_in)`` matrix of exact box (area) averaging weights.

    Output sample ``i`` covers input interval ``[i * n_in / n_out, (i + 1) *
    n_in / n_out)``; each input pixel contributes the length of its overlap
    with that interval, rows sum to one (OpenCV's ``INTER_AREA``).
    """
    # Imported here: `boda scan` decodes to the reference side already, so its
    # workers never resample and need not pay for importing scipy.sparse.
    from scipy import sparse

    scale = n_in / n_out
    rows, cols, vals = [], [], []
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        first, last = int(np.floor(lo)), min(int(np.ceil(hi)), n_in)
        for j in range(first, last):
            overlap = min(hi, j + 1) - max(lo, j)
            if overlap > 1e-9:
                rows.append(i)
                cols.append(j)
                vals.append(overlap / scale)
    return sparse.csr_matrix(
        (np.asarray(vals, np.float32), (rows, cols)), shape=(n_out, n_in)
    )


def to_reference_gray(image: np.ndarray, reference_side: int | None = REFERENCE_SIDE) -> np.ndarray:
    """Rec. 601 gray, area-averaged so the longer side is at most ``reference_side``.

    ``reference_side=None`` keeps the native resolution.  Images already at or
    below the reference are returned unchanged (never upsampled).
    """
    gray = finite_pixels(to_gray(image))
    if reference_side is None:
        return gray
    if reference_side < 8:
        raise InvalidParameterError(
            f"reference_side must be at least 8 pixels (or None), got {reference_side}"
        )
    h, w = gray.shape
    longest = max(h, w)
    if longest <= reference_side:
        return gray
    out_h = max(1, round(h * reference_side / longest))
    out_w = max(1, round(w * reference_side / longest))
    # Integer 2x2 means first (cheap), the fractional rest with sparse weights.
    while min(h, w) >= 2 and max(h, w) // 2 >= max(reference_side, 1) and h // 2 >= out_h:
        h2, w2 = h // 2 * 2, w // 2 * 2
        gray = gray[:h2, :w2].reshape(h2 // 2, 2, w2 // 2, 2).mean(axis=(1, 3))
        h, w = gray.shape
    if (h, w) != (out_h, out_w):
        rows = area_weights(h, out_h)
        cols = area_weights(w, out_w)
        gray = np.asarray((cols @ (rows @ gray).T).T, dtype=np.float32)
    return np.ascontiguousarray(gray, dtype=np.float32)


