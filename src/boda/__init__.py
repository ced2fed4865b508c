"""boda (보다, "to see"): look into images.

Measure how sharp, bright and colourful images are, find duplicates across
folders, detect edges, convert and compare colours, cut objects out, refocus
and inpaint photos, and explain vision models.
"""

from boda.errors import BodaError, ImageReadError
from boda.io import read_image

__version__ = "0.1.0"

__all__ = ["BodaError", "ImageReadError", "read_image", "__version__"]
