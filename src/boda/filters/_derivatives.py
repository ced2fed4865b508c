"""First- and second-derivative filters.

References
----------
.. [1] I. Sobel and G. Feldman, "A 3x3 isotropic gradient operator for image
       processing", Stanford AI Project, 1968.
.. [2] J. M. S. Prewitt, "Object enhancement and extraction", Picture
       Processing and Psychopictorics, 1970.
.. [3] H. Scharr, "Optimal operators in digital image processing", PhD thesis,
       Heidelberg, 2000 (the 3-10-3 kernel OpenCV uses).
.. [4] R. C. Gonzalez and R. E. Woods, *Digital Image Processing*, 4th ed.,
       sec. 3.6 (Laplacian, 4- and 8-neighbour kernels).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from boda.core.image import as_float_image
from boda.core.lazy import scipy_ndimage
from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

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

#: boda border name -> scipy.ndimage mode.  ``reflect101`` mirrors without
#: repeating the edge pixel (OpenCV ``BORDER_REFLECT_101``, the default);
#: ``reflect`` repeats it (OpenCV ``BORDER_REFLECT``, scikit-image's default);
#: ``replicate`` repeats the edge value; ``constant`` pads with 0; ``wrap`` tiles.
BORDER_MODES = {
    "reflect101": "mirror",
    "reflect": "reflect",
    "replicate": "nearest",
    "constant": "constant",
    "wrap": "wrap",
}

Border = Literal["reflect101", "reflect", "replicate", "constant", "wrap"]
Operator = Literal["sobel", "prewitt", "scharr", "central", "forward"]

# (derivative kernel, smoothing kernel) pairs of the separable 3x3 operators.
_SEPARABLE = {
    "sobel": ([-1.0, 0.0, 1.0], [1.0, 2.0, 1.0]),
    "prewitt": ([-1.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
    "scharr": ([-1.0, 0.0, 1.0], [3.0, 10.0, 3.0]),
}


def scipy_border_mode(border: str) -> str:
    """The ``scipy.ndimage`` mode of a boda border name; a clear error if unknown."""
    try:
        return BORDER_MODES[border]
    except (KeyError, TypeError):  # TypeError: an unhashable value, a list say
        raise InvalidParameterError(
            f"unknown border {border!r}; choose one of {sorted(BORDER_MODES)}"
        ) from None


def _check_axis(axis: int) -> int:
    # 1.0 == 1 and True == 1: a float or bool axis is a mistake, not an axis.
    if not whole_number(axis) or axis not in (0, 1, -1, -2):
        raise InvalidParameterError(f"axis must be 0 (rows, d/dy) or 1 (columns, d/dx), got {axis}")
    return int(axis) % 2


#: boda border name -> OpenCV border code (``cv2.BORDER_*``), for the borders
#: OpenCV's filters take; ``"wrap"`` goes to SciPy.
_OPENCV_BORDERS = {"reflect101": 4, "reflect": 2, "replicate": 1, "constant": 0}

#: Values per band of the float64 steps of :func:`_separable_opencv` and
#: :func:`_laplacian_opencv`: their temporaries stay in cache (2 MB of float64).
_BAND_VALUES = 1 << 18


def _row_bands(rows: int, row_values: int):
    """``(r0, r1, s0, s1)``: bands ``[r0, r1)`` of rows covering ``rows``, each with the
    slab ``[s0, s1)`` that adds the one row either side a 3x3 filter reads."""
    step = max(1, _BAND_VALUES // max(row_values, 1))
    for r0 in range(0, rows, step):
        r1 = min(r0 + step, rows)
        yield r0, r1, max(r0 - 1, 0), min(r1 + 1, rows)


def _separable_scipy(
    img: np.ndarray, axis: int, derivative: list, smoothing: list, mode: str
) -> np.ndarray:
    """The derivative along ``axis`` then the smoothing across it, each by
    ``scipy.ndimage.correlate1d`` (float64 sums, rounded to float32 after each)."""
    ndimage = scipy_ndimage()
    out = ndimage.correlate1d(img, np.asarray(derivative, np.float32), axis=axis, mode=mode)
    return ndimage.correlate1d(out, np.asarray(smoothing, np.float32), axis=1 - axis, mode=mode)


def _separable_opencv(
    img: np.ndarray, axis: int, derivative: list, smoothing: list, border: str
) -> np.ndarray:
    """:func:`_separable_scipy`, float for float, by OpenCV in bands (1.6-3.9x its speed).

    The derivative ``f[i+1] - f[i-1]`` is one float32 subtraction, rounded the same
    by both.  The smoothing ``w0 f[i] + w1 (f[i-1] + f[i+1])`` is summed in float64
    in that order by SciPy and by OpenCV's vertical (column) filter, whose rows the
    band then rounds to float32 as SciPy does; OpenCV's horizontal (row) filter sums
    left to right, which differs when the three values span more than ~2^28, so for
    ``axis=0`` each band is transposed to be smoothed down its columns.  Each band of
    rows is filtered with one row of context either side (all a 3x3 filter reads), so
    its float64 temporaries stay in cache.
    """
    import cv2

    code = _OPENCV_BORDERS[border]
    one32, one64 = np.ones(1, np.float32), np.ones(1, np.float64)
    taps = np.asarray(derivative, np.float32)
    weights = np.asarray(smoothing, np.float64)
    out = np.empty(img.shape, np.float32)
    for r0, r1, s0, s1 in _row_bands(img.shape[0], img[0].size):
        slab = img[s0:s1]
        if axis == 1:
            diff = cv2.sepFilter2D(slab, cv2.CV_32F, taps, one32, borderType=code)
            smooth = cv2.sepFilter2D(diff, cv2.CV_64F, one64, weights, borderType=code)
            out[r0:r1] = smooth[r0 - s0 : r1 - s0]  # float64 -> float32, rounded to nearest
        else:  # smooth along the rows as down the columns of the transposed band
            diff = cv2.sepFilter2D(slab, cv2.CV_32F, one32, taps, borderType=code)
            across = cv2.transpose(np.ascontiguousarray(diff[r0 - s0 : r1 - s0]))
            smooth = cv2.sepFilter2D(across, cv2.CV_64F, one64, weights, borderType=code)
            out[r0:r1] = cv2.transpose(smooth)
    return out


def _separable(image: np.ndarray, axis: int, operator: str, border: str) -> np.ndarray:
    img = as_float_image(image)
    axis = _check_axis(axis)
    derivative, smoothing = _SEPARABLE[operator]
    mode = scipy_border_mode(border)
    if border in _OPENCV_BORDERS:
        return _separable_opencv(np.ascontiguousarray(img), axis, derivative, smoothing, border)
    return _separable_scipy(img, axis, derivative, smoothing, mode)


def sobel(image: np.ndarray, axis: int, *, border: Border = "reflect101") -> np.ndarray:
    """Sobel derivative along ``axis`` (0: d/dy, rows; 1: d/dx, columns).

    The kernel is the unnormalised outer product ``[1, 2, 1]^T [-1, 0, 1]``
    (OpenCV's ``Sobel(ksize=3)``; scikit-image's ``sobel_h/v`` divide by 4) [1]_.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)``; uint8/uint16 are scaled to ``[0, 1]``.
    axis : int
        0 for the vertical derivative, 1 for the horizontal one.
    border : str
        Border handling, see :data:`BORDER_MODES`.

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.linspace(0, 1, 5, dtype=np.float32), (5, 1))
    >>> float(sobel(ramp, axis=1)[2, 2])
    2.0
    """
    return _separable(image, axis, "sobel", border)


def prewitt(image: np.ndarray, axis: int, *, border: Border = "reflect101") -> np.ndarray:
    """Prewitt derivative along ``axis``: ``[1, 1, 1]^T [-1, 0, 1]``, unnormalised [2]_.

    Same parameters and return value as :func:`sobel`.
    """
    return _separable(image, axis, "prewitt", border)


def scharr(image: np.ndarray, axis: int, *, border: Border = "reflect101") -> np.ndarray:
    """Scharr derivative along ``axis``: ``[3, 10, 3]^T [-1, 0, 1]``, unnormalised [3]_.

    Matches OpenCV's ``Scharr``; its rotation invariance is better than Sobel's.
    Same parameters and return value as :func:`sobel`.
    """
    return _separable(image, axis, "scharr", border)


def central_difference(
    image: np.ndarray, axis: int, *, border: Border = "reflect101"
) -> np.ndarray:
    """Central difference ``f[i+1] - f[i-1]`` (kernel ``[-1, 0, 1]``) along ``axis``.

    Not divided by 2: this is the kernel as written, so ``0.5 *`` the result
    estimates the derivative (``numpy.gradient`` in the interior).
    """
    return _difference(image, axis, [-1.0, 0.0, 1.0], border)


def forward_difference(image: np.ndarray, axis: int, *, border: Border = "replicate") -> np.ndarray:
    """Forward difference ``f[i+1] - f[i]`` (kernel ``[-1, 1]``) along ``axis``.

    The kernel's origin is its first tap, so ``out[i]`` looks at ``i`` and
    ``i + 1``.  With the default ``"replicate"`` border the last row/column is
    0, which makes ``out[:-1]`` equal ``numpy.diff``.
    """
    return _difference(image, axis, [-1.0, 1.0], border)


def _difference(image: np.ndarray, axis: int, kernel: list, border: str) -> np.ndarray:
    """``kernel`` (a 3-tap one centred, a 2-tap one starting at the pixel) along ``axis``.

    One float32 subtraction per pixel, so OpenCV's ``sepFilter2D`` (2.6-3x SciPy's speed)
    gives SciPy's ``correlate1d`` floats; SciPy for ``"wrap"``, which OpenCV lacks.
    """
    img = as_float_image(image)
    axis = _check_axis(axis)
    mode = scipy_border_mode(border)
    taps = np.asarray(kernel, np.float32)
    if border not in _OPENCV_BORDERS:
        # origin=-1 moves a 2-tap kernel so that tap 0 sits on pixel i.
        origin = -1 if len(kernel) == 2 else 0
        return scipy_ndimage().correlate1d(img, taps, axis=axis, mode=mode, origin=origin)
    import cv2

    one = np.ones(1, np.float32)
    kx, ky = (taps, one) if axis == 1 else (one, taps)
    anchor = (0, 0) if len(kernel) == 2 else (-1, -1)  # tap 0 on the pixel / centred
    code = _OPENCV_BORDERS[border]
    return cv2.sepFilter2D(
        np.ascontiguousarray(img), cv2.CV_32F, kx, ky, anchor=anchor, borderType=code
    )


_OPERATORS = {
    "sobel": sobel,
    "prewitt": prewitt,
    "scharr": scharr,
    "central": central_difference,
    "forward": forward_difference,
}


def gradient(
    image: np.ndarray, operator: Operator = "sobel", *, border: Border = "reflect101"
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(gy, gx)``, the derivatives along rows and columns.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)``; uint8/uint16 are scaled to ``[0, 1]``.
    operator : {"sobel", "prewitt", "scharr", "central", "forward"}
        Which derivative kernel to use.
    border : str
        Border handling, see :data:`BORDER_MODES`.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(gy, gx)``, float32, each the shape of ``image``.
    """
    try:
        fn = _OPERATORS[operator]
    except (KeyError, TypeError):  # TypeError: an unhashable value, a list say
        raise InvalidParameterError(
            f"unknown gradient operator {operator!r}; choose one of {sorted(_OPERATORS)}"
        ) from None
    return fn(image, 0, border=border), fn(image, 1, border=border)


def gradient_magnitude(
    image: np.ndarray, operator: Operator = "sobel", *, border: Border = "reflect101"
) -> np.ndarray:
    """Euclidean gradient magnitude ``sqrt(gx^2 + gy^2)`` (float32, same shape)."""
    gy, gx = gradient(image, operator, border=border)
    return np.hypot(gx, gy)


def gradient_orientation(
    image: np.ndarray, operator: Operator = "sobel", *, border: Border = "reflect101"
) -> np.ndarray:
    """Gradient direction ``atan2(gy, gx)`` in radians, in ``(-pi, pi]``.

    0 points along +x (to the right), ``pi/2`` along +y (down the rows), so a
    bright-to-the-right step has orientation 0.  Flat regions give 0.
    """
    gy, gx = gradient(image, operator, border=border)
    # + 0.0 turns -0.0 (which correlations of negative pixels give) into 0.0:
    # arctan2(-0.0, x <= 0) is -pi, outside (-pi, pi] and not 0 on flat regions.
    return np.arctan2(gy + 0.0, gx + 0.0).astype(np.float32)


_LAPLACIAN_KERNELS = {
    4: np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32),
    8: np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], np.float32),
}


def laplacian(
    image: np.ndarray, neighbours: Literal[4, 8] = 4, *, border: Border = "reflect101"
) -> np.ndarray:
    """Discrete Laplacian with the 4- or 8-neighbour kernel [4]_.

    ``neighbours=4`` is ``[[0,1,0],[1,-4,1],[0,1,0]]`` (OpenCV's
    ``Laplacian(ksize=1)``); ``neighbours=8`` adds the diagonals,
    ``[[1,1,1],[1,-8,1],[1,1,1]]``.  Color images are filtered per channel.
    """
    img = as_float_image(image)
    try:
        kernel = _LAPLACIAN_KERNELS[neighbours]
    except (KeyError, TypeError):  # TypeError: an unhashable value, a list say
        raise InvalidParameterError(f"neighbours must be 4 or 8, got {neighbours}") from None
    mode = scipy_border_mode(border)
    if border in _OPENCV_BORDERS:
        return _laplacian_opencv(np.ascontiguousarray(img), kernel, border)
    return _laplacian_scipy(img, kernel, mode)


def _laplacian_scipy(img: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    """``scipy.ndimage.correlate`` per channel: float64 sums rounded to float32."""
    ndimage = scipy_ndimage()
    if img.ndim == 2:
        return ndimage.correlate(img, kernel, mode=mode)
    return np.stack(
        [ndimage.correlate(img[:, :, c], kernel, mode=mode) for c in range(img.shape[2])], axis=2
    )


def _laplacian_opencv(img: np.ndarray, kernel: np.ndarray, border: str) -> np.ndarray:
    """:func:`_laplacian_scipy`, float for float, by OpenCV in bands (3.5-7x its speed).

    Both add the kernel's non-zero taps in float64 in row-major order and round the
    sum to float32 once; each band of rows (one row of context either side) is
    widened to float64 and filtered in cache.
    """
    import cv2

    code = _OPENCV_BORDERS[border]
    weights = kernel.astype(np.float64)
    out = np.empty(img.shape, np.float32)
    for r0, r1, s0, s1 in _row_bands(img.shape[0], img[0].size):
        wide = img[s0:s1].astype(np.float64)
        out[r0:r1] = cv2.filter2D(wide, cv2.CV_64F, weights, borderType=code)[r0 - s0 : r1 - s0]
    return out
