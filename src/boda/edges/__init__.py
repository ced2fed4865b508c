"""Edge detection and gradient descriptors (numpy in, numpy out).

Built on :mod:`boda.filters`:

- :func:`canny` — Canny (1986), scikit-image-compatible, with its steps
  :func:`canny_gradient`, :func:`non_maximum_suppression`,
  :func:`hysteresis_threshold`;
- :func:`log_edges` — Marr-Hildreth (1980) zero crossings of the Laplacian of
  Gaussian (:func:`laplacian_of_gaussian`, :func:`zero_crossings`);
- :func:`hog`, :func:`hog_image` — Dalal-Triggs (2005) HOG descriptors and their picture;
- :func:`orientation_image` — hue = gradient direction, value = magnitude;
- :func:`edge_density` — the scan's fixed-parameter Canny edge fraction;
- :func:`draw_edges` — a picture of the edges by any of these (what ``boda edges`` writes).
"""

from boda.edges._canny import canny, canny_gradient, hysteresis_threshold, non_maximum_suppression
from boda.edges._density import EDGE_DENSITY_PARAMS, edge_density
from boda.edges._draw import EDGE_METHODS, EdgeDrawing, draw_edges
from boda.edges._hog import hog, hog_image
from boda.edges._log import laplacian_of_gaussian, log_edges, zero_crossings
from boda.edges._orientation import orientation_image

__all__ = [
    "EDGE_DENSITY_PARAMS",
    "EDGE_METHODS",
    "EdgeDrawing",
    "canny",
    "canny_gradient",
    "draw_edges",
    "edge_density",
    "hog",
    "hog_image",
    "hysteresis_threshold",
    "laplacian_of_gaussian",
    "log_edges",
    "non_maximum_suppression",
    "orientation_image",
    "zero_crossings",
]
