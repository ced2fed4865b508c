"""Image segmentation: interactive foreground extraction (GrabCut).

:func:`grabcut` cuts an object out of a photo from a rectangle or a trimap,
:func:`refine` continues after the user drew strokes,
:func:`trimap_from_marks` turns a painted gray mask into a trimap, and
:func:`guided_filter` feathers a hard mask along the image's edges.
"""

from boda.segment._grabcut import (
    BGD,
    FGD,
    PR_BGD,
    PR_FGD,
    GrabCutResult,
    grabcut,
    refine,
    trimap_from_marks,
)
from boda.segment._guided import guided_filter

__all__ = [
    "BGD",
    "FGD",
    "PR_BGD",
    "PR_FGD",
    "GrabCutResult",
    "grabcut",
    "refine",
    "trimap_from_marks",
    "guided_filter",
]
