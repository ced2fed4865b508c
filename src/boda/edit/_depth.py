"""Depth maps: reading them and checking them against an image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from boda.core.image import as_float_image
from boda.errors import ImageReadError, InvalidImageError, InvalidParameterError

__all__ = ["read_depth", "resize_depth", "check_depth"]


def read_depth(path: str | Path) -> np.ndarray:
    """Read a depth (or disparity) map as float32 ``(H, W)``.

    8-bit and 16-bit PNG/TIFF maps are scaled to ``[0, 1]`` by their dtype's
    maximum (255, 65535); float TIFF maps and ``.npy`` files keep their values
    (metres, say).  Whether near is bright or dark is not decided here: pass
    ``near=`` to :func:`boda.edit.refocus`.  A colour image is turned to gray.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.npy`` (a 2-D numeric array, read with ``allow_pickle=False``) or any
        image format :func:`boda.io.read_image` reads.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Raises
    ------
    ImageReadError
        If the file cannot be read or does not hold a 2-D finite map.
    InvalidParameterError
        If an image has transparent pixels (they hold no depth).
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        from boda.io import open_gray_map

        return open_gray_map(path, "depth map", keep_float_values=True).pixels
    try:
        arr = np.load(path, allow_pickle=False)
    except ImageReadError.FILE_ERRORS as exc:
        raise ImageReadError.from_file_error(path, exc) from None
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"not a readable .npy array ({exc})") from None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or arr.size == 0:
        raise ImageReadError(
            path, f"a depth map must be a 2-D array, this one has shape {arr.shape}"
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ImageReadError(path, f"a depth map must be numeric, this one has dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.float32)
    depth = as_float_image(arr, name=str(path), unit_range=False)  # metres are fine
    if not np.isfinite(depth).all():
        raise ImageReadError(path, "the depth map holds NaN or infinite values; fill them first")
    return depth


def resize_depth(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a depth map to ``(height, width)`` with bilinear interpolation.

    Depth maps from monocular networks often come at a lower resolution than
    the photo; use this to match them before :func:`boda.edit.refocus`.
    Values are in the units :func:`check_depth` (and so :func:`refocus`)
    reads them in: a uint8 or uint16 map comes back scaled to ``[0, 1]``, so
    a ``focus_depth`` means the same before and after resizing.
    """
    arr = np.asarray(depth)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InvalidImageError(f"depth must have shape (H, W), got {arr.shape}")
    # As check_depth reads it (uint16 / 65535): a raw cast kept 0..65535 and
    # moved every depth of the map against a focus given in [0, 1].
    arr = as_float_image(arr, name="depth", unit_range=False)
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise InvalidParameterError(f"target shape must be positive, got {shape}")
    if arr.shape == (h, w):
        return arr.copy()
    resized = Image.fromarray(arr, mode="F").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def check_depth(depth: np.ndarray, shape: tuple[int, int], *, name: str = "depth") -> np.ndarray:
    """Validate a depth map for an image of ``shape`` and return it as float32."""
    arr = np.asarray(depth)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InvalidImageError(
            f"{name} must be a single-channel (H, W) map, got shape {arr.shape}; "
            "for a colour depth image pass depth[..., 0] or read it with read_depth()"
        )
    if arr.shape != tuple(shape):
        raise InvalidImageError(
            f"{name} is {arr.shape[1]}x{arr.shape[0]} (WxH) but the image is "
            f"{shape[1]}x{shape[0]}; resize it first, e.g. "
            "boda.edit.resize_depth(depth, image.shape[:2]) or --resize-depth on the CLI"
        )
    out = as_float_image(arr, name=name, unit_range=False)  # any depth unit
    if not np.isfinite(out).all():
        raise InvalidImageError(f"{name} holds NaN or infinite values; fill them first")
    return out
