"""Detection and landmark blocks (torch): boxes, NMS, anchors, mAP, heatmaps.

- Boxes: :func:`box_area`, :func:`box_iou` (pairwise), :func:`matched_box_iou`.
- Suppression: :func:`nms`, :func:`batched_nms` (class-wise), :func:`soft_nms`.
- Anchors: :func:`generate_anchors`, :func:`encode_boxes` / :func:`decode_boxes`
  (Faster R-CNN deltas), :func:`match_anchors` (0.7 / 0.3 IoU rule).
- Metrics: :func:`average_precision`, :func:`mean_average_precision` (COCO
  0.5:0.95, VOC 0.5).
- Landmarks: :func:`render_heatmaps` (Gaussian / Cauchy), :func:`decode_heatmaps`
  (argmax, quadratic, soft-argmax), :func:`pck`, :func:`nme`.
- CenterNet: :func:`render_centernet_targets`, :func:`decode_centernet`.

Boxes are ``(N, 4)`` tensors ``(x1, y1, x2, y2)`` in pixels; points ``(x, y)``.
"""

import boda._torch  # noqa: F401, I001  (first: a clear error when PyTorch is missing)

from boda.detect._boxes import (
    IGNORE,
    NEGATIVE,
    batched_nms,
    box_area,
    box_iou,
    decode_boxes,
    encode_boxes,
    generate_anchors,
    match_anchors,
    matched_box_iou,
    nms,
    soft_nms,
)
from boda.detect._heatmaps import (
    decode_centernet,
    decode_heatmaps,
    nme,
    pck,
    render_centernet_targets,
    render_heatmaps,
)
from boda.detect._map import COCO_IOU_THRESHOLDS, average_precision, mean_average_precision

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "IGNORE",
    "NEGATIVE",
    "average_precision",
    "batched_nms",
    "box_area",
    "box_iou",
    "decode_boxes",
    "decode_centernet",
    "decode_heatmaps",
    "encode_boxes",
    "generate_anchors",
    "match_anchors",
    "matched_box_iou",
    "mean_average_precision",
    "nme",
    "nms",
    "pck",
    "render_centernet_targets",
    "render_heatmaps",
    "soft_nms",
]
