"""Input checks shared by the colour functions.

Colour arrays follow one convention: the last axis holds the three components,
so a single colour ``(3,)``, a list of colours ``(N, 3)`` and an image
``(H, W, 3)`` all work.  float64 in gives float64 out (the accurate path),
float32 in gives float32 out (the fast path); float16 is promoted to float32.
Python lists and other integers become float64, except that uint8/uint16
*RGB* input is rescaled to ``[0, 1]`` float32 like :func:`boda.core.image.as_float_image`.
"""

from __future__ import annotations

import numpy as np

from boda.errors import InvalidImageError

__all__ = ["as_colors", "float_dtype"]


def as_colors(
    values: object, *, name: str = "colors", rgb: bool = False, any_shape: bool = False
) -> np.ndarray:
    """Return ``values`` as a float32/float64 array whose last axis has length 3.

    Parameters
    ----------
    values : array_like
        ``(..., 3)`` colour values.
    name : str
        How to call the argument in error messages.
    rgb : bool
        The values are RGB: uint8 and uint16 are divided by 255 / 65535.
    any_shape : bool
        Skip the ``(..., 3)`` shape check (per-channel functions).

    Raises
    ------
    InvalidImageError
        The last axis is not of length 3, nested lists of unequal lengths, or the
        dtype is not numeric.
    """
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged nested lists: numpy's "inhomogeneous shape" words
        raise InvalidImageError(
            f"{name} must have shape (..., 3): a list of colours needs three numbers in every "
            "colour, and these lists differ in length"
        ) from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InvalidImageError(
            f"{name} has dtype {arr.dtype}; colour values must be real numbers "
            "(float64 for accuracy, float32 for speed)"
        )
    if not any_shape and (arr.ndim == 0 or arr.shape[-1] != 3):
        raise InvalidImageError(
            f"{name} must have shape (..., 3) with the three components on the last axis, "
            f"got {arr.shape}; for channel-first data use np.moveaxis(x, 0, -1)"
        )
    if np.issubdtype(arr.dtype, np.integer):
        if rgb and arr.dtype in (np.uint8, np.uint16):
            return arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
        if rgb and arr.size and int(arr.max()) > 1:
            # [51, 102, 153] typed as Python ints: 8-bit values, but of which scale
            # is not ours to guess (as floats they would be read as 51 times white).
            raise InvalidImageError(
                f"{name} holds integers up to {int(arr.max())} ({arr.dtype}); give 8-bit "
                "values as np.uint8 (e.g. np.array([51, 102, 153], np.uint8)), 16-bit as "
                "np.uint16, or floats in [0, 1]"
            )
        return arr.astype(np.float64)
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    if arr.dtype.kind == "f" and not arr.dtype.isnative and arr.dtype.itemsize in (4, 8):
        # big-endian float32 (FITS data, say) is float32 still: native order, same precision
        return arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in (np.float32, np.float64):  # longdouble
        return arr.astype(np.float64)
    return arr


def float_dtype(arr: np.ndarray) -> np.dtype:
    """The working dtype for ``arr``: float32 stays float32, everything else float64."""
    return np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)


def matmul3(arr: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 ``matrix`` to the last axis of ``arr`` (``matrix @ v`` per colour)."""
    return arr @ matrix.T.astype(arr.dtype, copy=False)
