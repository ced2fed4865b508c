"""boda (보다, "to see"): look into images.

Measure how sharp, bright and colourful images are, find duplicates across
folders, detect edges, convert and compare colours, cut objects out, refocus
and inpaint photos, and explain vision models.
"""

from typing import Any

from boda.errors import BodaError, ImageReadError

__version__ = "0.1.0"

__all__ = ["BodaError", "ImageReadError", "read_image", "__version__"]


def __getattr__(name: str) -> Any:
    # read_image loads numpy and Pillow (about 0.2 s): only when it is used, so
    # ``import boda.cli`` can install its Ctrl-C handler first.
    if name == "read_image":
        from boda.io import read_image

        return read_image
    raise AttributeError(f"module 'boda' has no attribute {name!r}")
