"""boda (보다, "to see"): look into images.

Measure how sharp, bright and colourful images are, find duplicates across
folders, detect edges, convert and compare colours, cut objects out, refocus
and inpaint photos, and explain vision models.
"""

import importlib as _importlib

from boda.errors import BodaError, ImageReadError

__version__ = "0.1.0"

__all__ = ["BodaError", "ImageReadError", "read_image", "__version__"]

#: The subpackages and public modules, reachable as ``boda.quality`` etc. after
#: a bare ``import boda``.
#: Imported on first use: ``import boda`` itself stays light (no numpy, no torch).
SUBPACKAGES = (
    "augment", "catalog", "cli", "color", "core", "detect", "duplicates", "edges", "edit", "embed",
    "errors", "explain", "filters", "io", "models", "nn", "quality", "report", "scan",
    "segment", "web",
)


def __getattr__(name: str):
    # read_image loads numpy and Pillow (about 0.2 s): only when it is used, so
    # ``import boda.cli`` can install its Ctrl-C handler first.
    if name == "read_image":
        from boda.io import read_image

        return read_image
    if name in SUBPACKAGES:
        return _importlib.import_module(f"boda.{name}")
    raise AttributeError(f"module 'boda' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *SUBPACKAGES})
