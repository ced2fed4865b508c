"""A resolution-robust edge-density score for scans."""

from __future__ import annotations

import numpy as np

from boda.edges._common import gray_image

__all__ = ["EDGE_DENSITY_PARAMS", "edge_density"]

#: Fixed-point scale of the derivatives handed to ``cv2.Canny`` (int16).
_DERIVATIVE_SCALE = 4000.0

#: The fixed parameterisation of :func:`edge_density` (stored scores depend on it).
EDGE_DENSITY_PARAMS = {
    "analysis_side": 256,
    "sigma": 1.0,
    "low_threshold": 0.1,
    "high_threshold": 0.2,
}


def _box_downscale(gray: np.ndarray, side: int) -> np.ndarray:
    """Box-average ``gray`` so its longer side becomes ``side`` (never upscales).

    While the image is at least twice ``side`` (and both halves at least the
    output size), it is halved by 2x2 block means (odd last rows/columns
    dropped); the rest is an area average, each
    output pixel the mean over its footprint (a box with fractional overlap).
    OpenCV's ``INTER_AREA`` computes exactly these weights (equal to the
    explicit matrices of :func:`_area_matrix` and :func:`_halving_matrix` to
    1e-5, tested); the halving first leaves the fractional resize a quarter of
    the pixels, and halves the cost.
    """
    import cv2

    h, w = gray.shape
    scale = side / max(h, w)
    if scale >= 1.0:
        return gray
    out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
    src = np.ascontiguousarray(gray, dtype=np.float32)
    # Halve only while both halves stay at least the output size (a thin strip
    # keeps its short side, and the area resize below never has to upscale).
    while max(src.shape) >= 2 * side and src.shape[0] // 2 >= out_h and src.shape[1] // 2 >= out_w:
        half_h, half_w = src.shape[0] // 2, src.shape[1] // 2
        src = cv2.resize(
            src[: 2 * half_h, : 2 * half_w], (half_w, half_h), interpolation=cv2.INTER_AREA
        )
    return cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_AREA)


def _halving_matrix(n_in: int) -> np.ndarray:
    """Row ``i`` averages inputs ``2i`` and ``2i + 1`` (an odd last input is dropped)."""
    out = np.zeros((n_in // 2, n_in), np.float32)
    rows = np.arange(n_in // 2)
    out[rows, 2 * rows] = out[rows, 2 * rows + 1] = 0.5
    return out


def _area_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Row ``i``: overlap weights of input cells with output cell ``i`` (rows sum to 1).

    The explicit definition of area averaging, kept as the reference the fast
    path is tested against.
    """
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    left = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, left + 1) - np.maximum(lo, left), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def edge_density(image: np.ndarray) -> float:
    """Fraction of pixels on Canny edges, measured at a fixed analysis scale.

    The image is reduced to luma, box-averaged so its longer side is 256
    pixels (2x2 block means, then an area average; smaller images are used as
    they are), smoothed with a Gaussian of
    ``sigma=1`` and differentiated with Sobel (as :func:`boda.edges.canny_gradient`
    with ``border="reflect"``), then OpenCV's ``cv2.Canny`` finishes (non-maximum
    suppression along the quantised gradient direction and hysteresis,
    Euclidean magnitude) with ``low_threshold=0.1`` and ``high_threshold=0.2``:
    absolute thresholds on the Sobel magnitude, so a flat image scores 0 and a
    busy one high.  The result is the edge-pixel count over the interior
    pixels (the outer ring is never counted).  Working at a fixed size makes
    the score nearly independent of the resolution the photo was saved at.

    Every scan computes it, so it is built for speed (~0.5 ms after the
    downscale): OpenCV's quantised-direction suppression finds ~2 % more edge
    pixels than :func:`boda.edges.canny`'s interpolated one (scikit-image's),
    with a correlation of 0.9998 over the 24 Kodak photos (tested within 5 %).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)``; uint8/uint16 are scaled to ``[0, 1]``.

    Returns
    -------
    float
        Edge density in ``[0, 1]``; typical photos score 0.02-0.2.

    References
    ----------
    J. Canny, IEEE TPAMI 8(6):679-698, 1986.  Parameters in
    :data:`EDGE_DENSITY_PARAMS`.

    Examples
    --------
    >>> import numpy as np
    >>> edge_density(np.zeros((300, 400), np.float32))
    0.0
    """
    p = EDGE_DENSITY_PARAMS
    small = _box_downscale(gray_image(image), int(p["analysis_side"]))
    if min(small.shape) < 3:
        return 0.0
    import cv2

    gy, gx = _fast_canny_gradient(small, float(p["sigma"]))
    # cv2.Canny takes int16 derivatives: fixed point with 1/4000 steps keeps the
    # thresholds exact to 0.25 % (|Sobel| <= 4 on a [0, 1] image fits in int16).
    scale = _DERIVATIVE_SCALE
    dx = np.rint(gx * scale).astype(np.int16)
    dy = np.rint(gy * scale).astype(np.int16)
    edges = cv2.Canny(
        dx, dy, p["low_threshold"] * scale, p["high_threshold"] * scale, L2gradient=True
    )
    interior = edges[1:-1, 1:-1]
    return float(np.count_nonzero(interior)) / interior.size


def _fast_canny_gradient(gray: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gy, gx)`` of :func:`boda.edges.canny_gradient` with ``border="reflect"``, by OpenCV.

    The same Gaussian (radius ``4 sigma``, reflect border) and the same
    unnormalised Sobel kernels, ~10x faster than SciPy's filters; the values
    differ only by float rounding (~1e-7, tested).
    """
    import cv2

    radius = int(4.0 * sigma + 0.5)  # scipy.ndimage's truncate=4.0
    src = np.ascontiguousarray(gray, dtype=np.float32)
    smoothed = cv2.GaussianBlur(
        src, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT
    )
    gy = cv2.Sobel(smoothed, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(smoothed, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    return gy, gx
