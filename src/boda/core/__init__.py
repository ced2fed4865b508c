"""Numpy-only foundations shared by every layer: image conversion and checks."""

from boda.core.image import as_float_image, to_gray, to_uint8

__all__ = ["as_float_image", "to_gray", "to_uint8"]
