"""Image array conventions, converted in one place.

boda's numpy image is ``float32`` with shape ``(H, W)`` (gray) or ``(H, W, 3)``
(RGB), values in ``[0, 1]``, sRGB-encoded unless a function says "linear".
:func:`as_float_image` is the only place where other dtypes are rescaled, so
the rule is stated once: integers are divided by their dtype's maximum (uint8 by
255, uint16 by 65535), bools map to 0/1, floats are kept as they are.
"""

from __future__ import annotations

import numpy as np

from boda.errors import InvalidImageError

__all__ = ["as_float_image", "float32_values", "to_gray", "to_uint8", "REC601_LUMA"]

#: ITU-R BT.601 luma weights, the ones OpenCV and Pillow use for RGB -> gray.
REC601_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_LUMA_ROW = REC601_LUMA[None]  # (1, 3): the matrix cv2.transform takes


def as_float_image(
    image: np.ndarray, *, name: str = "image", allow_alpha: bool = False
) -> np.ndarray:
    """Return ``image`` as a float32 array in boda's convention.

    Parameters
    ----------
    image : array_like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (``(H, W, 4)`` when
        ``allow_alpha``); uint8, uint16, bool or float.
    name : str
        How to call the argument in error messages.
    allow_alpha : bool
        Accept a fourth (alpha) channel.

    Returns
    -------
    numpy.ndarray
        float32, ``(H, W)`` or ``(H, W, C)``.  Floats are not clipped (out of
        range values are the caller's business), only cast.

    Raises
    ------
    InvalidImageError
        Wrong number of dimensions or channels, an unsupported dtype, or an
        empty array.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    channels_ok = (3, 4) if allow_alpha else (3,)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in channels_ok)):
        raise InvalidImageError(
            f"{name} must have shape (H, W) or (H, W, 3), got {arr.shape}; "
            "for channel-first data use np.moveaxis(x, 0, -1)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidImageError(f"{name} is empty (shape {arr.shape})")
    return float32_values(arr, name=name)


def float32_values(arr: np.ndarray, *, name: str = "image") -> np.ndarray:
    """The dtype rule of :func:`as_float_image`, any shape: bool as 0/1, uint8 / 255,
    uint16 / 65535, floats cast to float32 (not copied when already float32).

    Raises
    ------
    InvalidImageError
        Another integer type, or a dtype that is not a number.
    """
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype not in (np.uint8, np.uint16):
            raise InvalidImageError(
                f"{name} has dtype {arr.dtype}; use uint8, uint16, bool or float in [0, 1]"
            )
        out = arr.astype(np.float32)
        out /= np.float32(np.iinfo(arr.dtype).max)  # in place: one pass, one allocation
        return out
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise InvalidImageError(f"{name} has unsupported dtype {arr.dtype}")


def to_gray(image: np.ndarray) -> np.ndarray:
    """Convert to a float32 ``(H, W)`` gray image with Rec. 601 luma weights.

    A gray input is returned (as float32) unchanged.  The weights are applied to
    the sRGB-encoded values, as OpenCV's ``COLOR_RGB2GRAY`` does, so gray values
    agree with the ones most blur/quality recipes were tuned on.
    """
    arr = as_float_image(image)
    if arr.ndim == 2:
        return arr
    if arr.flags.c_contiguous and arr.shape[2] == 3:
        import cv2

        # One OpenCV pass, ~3x faster than the matrix-vector product below and
        # equal to it up to float32 rounding (tested).
        return cv2.transform(arr, _LUMA_ROW)
    return arr @ REC601_LUMA


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to ``[0, 1]`` and round to uint8 (for writing files and thumbnails)."""
    arr = as_float_image(image, allow_alpha=True)
    scaled = np.clip(arr, 0.0, 1.0)  # a new array, so the in-place steps below are safe
    scaled *= np.float32(255.0)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint8)
