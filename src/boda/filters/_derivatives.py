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


def _separable(image: np.ndarray, axis: int, operator: str, border: str) -> np.ndarray:
    img = as_float_image(image)
    axis = _check_axis(axis)
    derivative, smoothing = _SEPARABLE[operator]
    mode = scipy_border_mode(border)
    ndimage = scipy_ndimage()
    out = ndimage.correlate1d(img, np.asarray(derivative, np.float32), axis=axis, mode=mode)
    return ndimage.correlate1d(out, np.asarray(smoothing, np.float32), axis=1 - axis, mode=mode)


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
    img = as_float_image(image)
    kernel = np.array([-1.0, 0.0, 1.0], np.float32)
    mode = scipy_border_mode(border)
    return scipy_ndimage().correlate1d(img, kernel, axis=_check_axis(axis), mode=mode)


def forward_difference(image: np.ndarray, axis: int, *, border: Border = "replicate") -> np.ndarray:
    """Forward difference ``f[i+1] - f[i]`` (kernel ``[-1, 1]``) along ``axis``.

    The kernel's origin is its first tap, so ``out[i]`` looks at ``i`` and
    ``i + 1``.  With the default ``"replicate"`` border the last row/column is
    0, which makes ``out[:-1]`` equal ``numpy.diff``.
    """
    img = as_float_image(image)
    kernel = np.array([-1.0, 1.0], np.float32)
    # origin=-1 moves the kernel so that tap 0 sits on pixel i.
    mode = scipy_border_mode(border)
    return scipy_ndimage().correlate1d(img, kernel, axis=_check_axis(axis), mode=mode, origin=-1)


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
    ndimage = scipy_ndimage()
    if img.ndim == 2:
        return ndimage.correlate(img, kernel, mode=mode)
    return np.stack(
        [ndimage.correlate(img[:, :, c], kernel, mode=mode) for c in range(img.shape[2])], axis=2
    )
