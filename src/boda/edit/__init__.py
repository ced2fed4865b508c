"""Photo edits: synthetic refocus from a depth map and classical inpainting.

Numpy only.  Masks follow one convention everywhere: **true / 255 = fill**.
"""

from boda.edit._depth import check_depth, read_depth, resize_depth
from boda.edit._exemplar import inpaint_exemplar
from boda.edit._inpaint import (
    InpaintMethod,
    available_inpaint_methods,
    inpaint,
    inpaint_biharmonic,
    register_inpaint_method,
    to_hole_mask,
)
from boda.edit._masks import random_irregular_mask
from boda.edit._refocus import (
    circle_of_confusion,
    disk_kernel,
    hexagon_kernel,
    linear_to_srgb,
    refocus,
    resolve_focus,
    srgb_to_linear,
)
from boda.edit._telea import inpaint_telea

__all__ = [
    "InpaintMethod",
    "available_inpaint_methods",
    "check_depth",
    "circle_of_confusion",
    "disk_kernel",
    "hexagon_kernel",
    "inpaint",
    "inpaint_biharmonic",
    "inpaint_exemplar",
    "inpaint_telea",
    "linear_to_srgb",
    "random_irregular_mask",
    "read_depth",
    "refocus",
    "register_inpaint_method",
    "resize_depth",
    "resolve_focus",
    "srgb_to_linear",
    "to_hole_mask",
]
