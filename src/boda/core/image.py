"""Image array conventions, converted in one place.

boda's numpy image is ``float32`` with shape ``(H, W)`` (gray) or ``(H, W, 3)``
(RGB), values in ``[0, 1]``, sRGB-encoded unless a function says "linear".
:func:`as_float_image` is the only place where other dtypes are rescaled, so
the rule is stated once: integers are divided by their dtype's maximum (uint8 by
255, uint16 by 65535), bools map to 0/1, floats are kept as they are.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os

import numpy as np

from boda.errors import InvalidImageError

__all__ = [
    "REC601_LUMA",
    "as_float_image",
    "finite_pixels",
    "float32_values",
    "to_gray",
    "to_uint8",
]

#: ITU-R BT.601 luma weights, the ones OpenCV and Pillow use for RGB -> gray.
REC601_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_LUMA_ROW = REC601_LUMA[None]  # (1, 3): the matrix cv2.transform takes


def as_float_image(
    image: np.ndarray,
    *,
    name: str = "image",
    allow_alpha: bool = False,
    unit_range: bool = True,
) -> np.ndarray:
    """Return ``image`` as a float32 array in boda's convention.

    Parameters
    ----------
    image : array_like or PIL.Image.Image
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (``(H, W, 4)`` when
        ``allow_alpha``); uint8, uint16, bool or float.  A Pillow image is
        converted by its mode: palette images to their colours, CMYK and
        other colour modes to RGB, transparency composited over white (kept
        with ``allow_alpha``), as :func:`boda.io.read_image` does for files.
    name : str
        How to call the argument in error messages.
    allow_alpha : bool
        Accept a fourth (alpha) channel.
    unit_range : bool
        Refuse float pixels that are plainly on a 0-255 scale (some well
        above 2, looked at on a 32 x 32 grid of pixels, so it costs
        microseconds): every measure would silently read them as a blown-out
        image.  ``False`` for arrays that are not pixels in ``[0, 1]`` (depth
        maps in metres, masks).

    Returns
    -------
    numpy.ndarray
        float32, ``(H, W)`` or ``(H, W, C)``.  Floats are not clipped (slightly
        out of range values are the caller's business), only cast.

    Raises
    ------
    InvalidImageError
        A file path instead of pixels, wrong number of dimensions or
        channels, an unsupported dtype, an empty array, or (``unit_range``)
        float values on a 0-255 scale.

    Examples
    --------
    >>> float(as_float_image(np.full((2, 2, 3), 255, np.uint8)).max())
    1.0
    >>> as_float_image(np.full((2, 2), 200.0))
    Traceback (most recent call last):
    ...
    boda.errors.InvalidImageError: image holds float values up to 200, not in [0, 1]; ...
    """
    if isinstance(image, (str, bytes, os.PathLike)):
        raise InvalidImageError(
            f"{name} is a file path ({os.fsdecode(image)!r}), not pixels; "
            "read it first with boda.io.read_image(path)"
        )
    if type(image).__module__.startswith("PIL."):
        image = _pil_pixels(image, allow_alpha)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    channels_ok = (3, 4) if allow_alpha else (3,)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in channels_ok)):
        if arr.ndim == 3 and arr.shape[2] == 4:
            raise InvalidImageError(
                f"{name} has 4 channels (RGBA, shape {arr.shape}) where RGB is needed; "
                "composite it over a background first, e.g. "
                "rgb = rgba[..., :3] * a + (1 - a) with a = rgba[..., 3:]"
            )
        raise InvalidImageError(
            f"{name} must have shape (H, W) or (H, W, 3), got {arr.shape}; "
            "for channel-first data use np.moveaxis(x, 0, -1)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidImageError(f"{name} is empty (shape {arr.shape})")
    out = float32_values(arr, name=name)
    if unit_range and np.issubdtype(arr.dtype, np.floating):
        _refuse_0_255_scale(out, name)
    return out


#: Float pixels above this (on the sample) are taken for a 0-255 image.  Well
#: above 1 on purpose: sharpening or colour conversions overshoot a little.
_UNIT_RANGE_LIMIT = 2.0


def _refuse_0_255_scale(arr: np.ndarray, name: str) -> None:
    """Raise when a sample of ``arr`` (a 32 x 32 grid of pixels) goes well above 1."""
    if _pixels_trusted.get():
        return
    height, width = arr.shape[:2]
    sample = arr[:: max(1, height // 32), :: max(1, width // 32)]  # a view, never a copy
    finite = sample[np.isfinite(sample)]  # NaN and inf are the finite checks' business
    top = float(finite.max()) if finite.size else 0.0
    if top > _UNIT_RANGE_LIMIT:
        raise InvalidImageError(
            f"{name} holds float values up to {top:.4g}, not in [0, 1]; "
            "divide by 255 (or pass the uint8 array as it is)"
        )


def _pil_pixels(image, allow_alpha: bool) -> np.ndarray:
    """The pixels of a Pillow image as uint8/uint16/float arrays boda understands."""
    mode = image.mode
    if mode in ("1", "L", "RGB", "I;16", "F"):
        return np.asarray(image)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    rgba = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    if not has_alpha or allow_alpha:
        return rgba
    color = rgba[..., :3].astype(np.float32) / np.float32(255)
    alpha = rgba[..., 3:].astype(np.float32) / np.float32(255)
    return color * alpha + (np.float32(1) - alpha)  # over white, as read_image does


def finite_pixels(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """``arr``, or :class:`~boda.errors.InvalidImageError` if it holds NaN or infinity.

    One NaN poisons every measure (a mean, a histogram, a hash), so the
    measures refuse it rather than return NaN or a plausible wrong number.
    One float64 sum is cheaper than an ``isfinite`` mask, and is non-finite
    exactly when a value is (or when huge values overflow, which are not
    image values either).
    """
    if _pixels_trusted.get():
        return arr
    if not math.isfinite(_float64_sum(arr)):
        raise InvalidImageError(
            f"{name} holds NaN or infinite values; replace them first, e.g. np.nan_to_num({name})"
        )
    return arr


def _float64_sum(arr: np.ndarray) -> float:
    """Sum of every value, accumulated in float64 (NaN or inf if any value is)."""
    if (
        arr.dtype == np.float32
        and arr.ndim in (2, 3)
        and (arr.ndim == 2 or arr.shape[2] <= 4)
        and arr.strides[-1] == arr.itemsize
        and (arr.ndim == 2 or arr.strides[1] == arr.shape[2] * arr.itemsize)
        and arr.size
    ):
        import cv2

        # cv2.sumElems: one SIMD pass accumulated in float64, ~4x numpy's
        # float64 sum; the scan checks every image's gray and colour pixels.
        return float(sum(cv2.sumElems(arr)))
    return float(arr.sum(dtype=np.float64))


@contextlib.contextmanager
def trusted_pixels():
    """Within it, :func:`finite_pixels` and the 0-255 scale check pass arrays unchecked.

    For code that has checked its pixels once (or decoded them itself, as
    :mod:`boda.io` does: decoded pixels are finite and in ``[0, 1]`` by
    construction) and hands them and their derivatives (gray, thumbnails) to
    several measures, each of which would check them again: the scan's
    per-image work re-ran the same full-image checks five times.
    """
    token = _pixels_trusted.set(True)
    try:
        yield
    finally:
        _pixels_trusted.reset(token)


_pixels_trusted: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "boda_pixels_trusted", default=False
)


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
