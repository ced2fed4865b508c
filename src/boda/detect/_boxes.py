"""Boxes: IoU, non-maximum suppression, anchors, Faster R-CNN box coding, matching.

Boxes are ``(N, 4)`` float tensors ``(x1, y1, x2, y2)`` in pixels, ``x2 > x1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from boda.errors import InvalidParameterError

# largest log-scale a decoded box may grow by (torchvision/Detectron's choice)
_DW_CLAMP = math.log(1000.0 / 16)


def _check_boxes(boxes: Tensor, name: str = "boxes") -> None:
    if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise InvalidParameterError(
            f"{name} must be an (N, 4) tensor (x1, y1, x2, y2), got {shape}."
        )


def box_area(boxes: Tensor) -> Tensor:
    """Areas ``(N,)`` of ``(N, 4)`` boxes (negative sizes count as 0)."""
    _check_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    r"""Pairwise intersection over union.

    .. math:: \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|}

    Parameters
    ----------
    boxes1 : Tensor
        ``(N, 4)`` boxes ``(x1, y1, x2, y2)``.
    boxes2 : Tensor
        ``(M, 4)`` boxes.

    Returns
    -------
    Tensor
        ``(N, M)`` IoU matrix; 0 where the union is empty.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    >>> box_iou(a, torch.tensor([[1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0]]))
    tensor([[0.3333, 0.0000]])
    """
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def matched_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of matched pairs: row ``i`` of ``boxes1`` with row ``i`` of ``boxes2``, ``(N,)``.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    >>> matched_box_iou(a, a)
    tensor([1.])
    """
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    if boxes1.shape != boxes2.shape:
        raise InvalidParameterError(
            f"matched boxes need equal shapes, got {tuple(boxes1.shape)} and "
            f"{tuple(boxes2.shape)}."
        )
    lt = torch.maximum(boxes1[:, :2], boxes2[:, :2])
    rb = torch.minimum(boxes1[:, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = box_area(boxes1) + box_area(boxes2) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def _check_scores(boxes: Tensor, scores: Tensor) -> None:
    _check_boxes(boxes)
    if not isinstance(scores, Tensor) or scores.shape != (boxes.shape[0],):
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise InvalidParameterError(f"scores must have shape ({boxes.shape[0]},), got {shape}.")


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Greedy non-maximum suppression.

    Visit boxes by decreasing score; keep a box unless it overlaps an already
    kept box with IoU strictly greater than ``iou_threshold`` (the convention of
    torchvision and Detectron).

    Parameters
    ----------
    boxes : Tensor
        ``(N, 4)`` boxes.
    scores : Tensor
        ``(N,)`` scores.
    iou_threshold : float
        In ``[0, 1]``.

    Returns
    -------
    Tensor
        ``(K,)`` int64 indices of the kept boxes, by decreasing score.

    References
    ----------
    P. F. Felzenszwalb, R. B. Girshick, D. McAllester, D. Ramanan, "Object
    Detection with Discriminatively Trained Part-Based Models", TPAMI 2010.

    Examples
    --------
    >>> b = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    >>> nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    tensor([0, 2])
    """
    _check_scores(boxes, scores)
    if not 0.0 <= iou_threshold <= 1.0:
        raise InvalidParameterError(f"iou_threshold must lie in [0, 1], got {iou_threshold!r}.")
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def batched_nms(
    boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float = 0.5
) -> Tensor:
    """Class-wise NMS: boxes of different classes never suppress each other.

    Implemented by shifting each class's boxes to a disjoint region and running
    :func:`nms` once.

    Parameters
    ----------
    boxes, scores : Tensor
        ``(N, 4)`` and ``(N,)``.
    classes : Tensor
        ``(N,)`` integer class of each box.
    iou_threshold : float

    Returns
    -------
    Tensor
        Kept indices, by decreasing score.

    Examples
    --------
    >>> b = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10]])
    >>> batched_nms(b, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), 0.5)
    tensor([0, 1])
    """
    _check_scores(boxes, scores)
    if classes.shape != scores.shape:
        raise InvalidParameterError(
            f"classes must have shape {tuple(scores.shape)}, got {tuple(classes.shape)}."
        )
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    span = float(boxes.max() - boxes.min()) + 1.0
    shifted = boxes - boxes.min() + (classes.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold)


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    sigma: float = 0.5,
    iou_threshold: float = 0.3,
    score_threshold: float = 0.001,
    method: str = "gaussian",
) -> tuple[Tensor, Tensor]:
    r"""Soft-NMS: decay the scores of overlapping boxes instead of removing them.

    At each step the highest-scoring remaining box :math:`M` is kept and every
    other box :math:`b_i` is rescored (Bodla et al. 2017, Eq. 2-3):

    .. math::

        s_i \leftarrow s_i\,e^{-\mathrm{IoU}(M, b_i)^2/\sigma} \quad\text{(gaussian)},
        \qquad s_i \leftarrow s_i\,(1 - \mathrm{IoU}(M, b_i))
        \ \text{if IoU} \ge N_t \quad\text{(linear)}

    Boxes whose score falls below ``score_threshold`` are dropped.

    Parameters
    ----------
    boxes, scores : Tensor
        ``(N, 4)`` and ``(N,)``.
    sigma : float
        Gaussian width (paper: 0.5).
    iou_threshold : float
        :math:`N_t` of the linear rule.
    score_threshold : float
    method : {"gaussian", "linear"}

    Returns
    -------
    keep : Tensor
        Indices of the surviving boxes, in the order they were selected.
    new_scores : Tensor
        Their decayed scores.

    References
    ----------
    N. Bodla, B. Singh, R. Chellappa, L. S. Davis, "Soft-NMS -- Improving Object
    Detection With One Line of Code", ICCV 2017, Eq. 2-3.

    Examples
    --------
    >>> b = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    >>> keep, s = soft_nms(b, torch.tensor([0.9, 0.8]), sigma=0.5)
    >>> keep.tolist(), [round(v, 4) for v in s.tolist()]
    ([0, 1], [0.9, 0.1083])
    """
    _check_scores(boxes, scores)
    if method not in ("gaussian", "linear"):
        raise InvalidParameterError(f"method must be 'gaussian' or 'linear', got {method!r}.")
    if sigma <= 0:
        raise InvalidParameterError(f"sigma must be > 0, got {sigma!r}.")
    s = scores.clone().float()
    iou = box_iou(boxes, boxes)
    alive = s >= score_threshold
    keep, kept_scores = [], []
    while bool(alive.any()):
        m = int(torch.where(alive, s, torch.tensor(-math.inf)).argmax())
        keep.append(m)
        kept_scores.append(float(s[m]))
        alive[m] = False
        ov = iou[m]
        if method == "gaussian":
            decay = torch.exp(-(ov**2) / sigma)
        else:
            decay = torch.where(ov >= iou_threshold, 1.0 - ov, torch.ones_like(ov))
        s = torch.where(alive, s * decay, s)
        alive &= s >= score_threshold
    return torch.tensor(keep, dtype=torch.long), torch.tensor(kept_scores, dtype=scores.dtype)


def generate_anchors(
    feature_sizes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    scales: Sequence[Sequence[float]] | Sequence[float],
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
) -> Tensor:
    r"""Anchor boxes over one or more feature maps (Faster R-CNN / FPN).

    At every cell ``(i, j)`` of a feature map with stride :math:`s` the anchors
    are centred on :math:`((j + 0.5)s, (i + 0.5)s)` in image pixels. For each
    scale :math:`a` (the square root of the area, in pixels) and aspect ratio
    :math:`r = h / w`: :math:`w = a/\sqrt r`, :math:`h = a\sqrt r`.

    Parameters
    ----------
    feature_sizes : sequence of (H, W)
        One per level.
    strides : sequence of int
        Image pixels per feature cell, one per level.
    scales : sequence of float, or one sequence per level
        Anchor sizes. A flat sequence is used on every level.
    aspect_ratios : sequence of float
        Height / width ratios.

    Returns
    -------
    Tensor
        ``(sum_l H_l W_l A_l, 4)`` anchors, level by level, row-major over
        cells, and for each cell scale-major then ratio.

    References
    ----------
    S. Ren, K. He, R. Girshick, J. Sun, "Faster R-CNN: Towards Real-Time Object
    Detection with Region Proposal Networks", NeurIPS 2015, Sec. 3.1.1.
    T.-Y. Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017.

    Examples
    --------
    >>> generate_anchors([(1, 1)], [16], [16.0], [1.0])
    tensor([[ 0.,  0., 16., 16.]])
    """
    if len(feature_sizes) != len(strides):
        raise InvalidParameterError(
            f"give one stride per feature map: {len(feature_sizes)} sizes, {len(strides)} strides."
        )
    if len(scales) and not isinstance(scales[0], (int, float)):
        per_level = [list(s) for s in scales]  # type: ignore[arg-type]
        if len(per_level) != len(strides):
            raise InvalidParameterError("scales given per level need one entry per level.")
    else:
        per_level = [list(scales)] * len(strides)  # type: ignore[arg-type]
    out = []
    ratios = torch.tensor(aspect_ratios, dtype=torch.float32)
    for (h, w), stride, level_scales in zip(feature_sizes, strides, per_level, strict=True):
        sc = torch.tensor(level_scales, dtype=torch.float32)
        ws = (sc[:, None] / ratios.sqrt()[None, :]).reshape(-1)
        hs = (sc[:, None] * ratios.sqrt()[None, :]).reshape(-1)
        base = torch.stack([-ws, -hs, ws, hs], dim=1) / 2  # (A, 4) around the origin
        cy, cx = torch.meshgrid(
            (torch.arange(h, dtype=torch.float32) + 0.5) * stride,
            (torch.arange(w, dtype=torch.float32) + 0.5) * stride,
            indexing="ij",
        )
        centres = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
        out.append((centres + base[None]).reshape(-1, 4))
    return torch.cat(out)


def _cxcywh(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(
    boxes: Tensor, anchors: Tensor, weights: tuple[float, float, float, float] = (1, 1, 1, 1)
) -> Tensor:
    r"""Faster R-CNN regression targets of ``boxes`` relative to ``anchors``.

    .. math::

        t_x = \frac{x - x_a}{w_a},\quad t_y = \frac{y - y_a}{h_a},\quad
        t_w = \log\frac{w}{w_a},\quad t_h = \log\frac{h}{h_a}

    (Ren et al. 2015, Eq. 2), each multiplied by its ``weights`` entry
    (Detectron uses (10, 10, 5, 5) for the second stage).

    Parameters
    ----------
    boxes, anchors : Tensor
        ``(N, 4)`` matched pairs.
    weights : 4 floats

    Returns
    -------
    Tensor
        ``(N, 4)`` deltas ``(t_x, t_y, t_w, t_h)``.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0, 10, 10]])
    >>> encode_boxes(torch.tensor([[5.0, 0, 15, 10]]), a)
    tensor([[0.5000, 0.0000, 0.0000, 0.0000]])
    """
    _check_boxes(boxes)
    _check_boxes(anchors, "anchors")
    x, y, w, h = _cxcywh(boxes)
    xa, ya, wa, ha = _cxcywh(anchors)
    wx, wy, ww, wh = weights
    return torch.stack(
        [wx * (x - xa) / wa, wy * (y - ya) / ha, ww * torch.log(w / wa), wh * torch.log(h / ha)],
        dim=1,
    )


def decode_boxes(
    deltas: Tensor, anchors: Tensor, weights: tuple[float, float, float, float] = (1, 1, 1, 1)
) -> Tensor:
    """Inverse of :func:`encode_boxes`: boxes ``(N, 4)`` from deltas and anchors.

    ``t_w`` and ``t_h`` are clamped at log(1000/16) so a wild prediction cannot
    overflow ``exp``.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0, 10, 10]])
    >>> decode_boxes(torch.tensor([[0.5, 0, 0, 0]]), a)
    tensor([[ 5.,  0., 15., 10.]])
    """
    _check_boxes(deltas, "deltas")
    _check_boxes(anchors, "anchors")
    xa, ya, wa, ha = _cxcywh(anchors)
    wx, wy, ww, wh = weights
    x = deltas[:, 0] / wx * wa + xa
    y = deltas[:, 1] / wy * ha + ya
    w = torch.exp((deltas[:, 2] / ww).clamp(max=_DW_CLAMP)) * wa
    h = torch.exp((deltas[:, 3] / wh).clamp(max=_DW_CLAMP)) * ha
    return torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], dim=1)


NEGATIVE = -1
IGNORE = -2


def match_anchors(
    anchors: Tensor,
    gt_boxes: Tensor,
    positive_iou: float = 0.7,
    negative_iou: float = 0.3,
    allow_low_quality: bool = True,
) -> Tensor:
    """Assign each anchor a ground-truth box, background, or "ignore".

    Faster R-CNN's RPN rule (Ren et al. 2015, Sec. 3.1.2): an anchor is positive
    for the box it overlaps most if that IoU is >= ``positive_iou``, negative if
    its best IoU is < ``negative_iou``, ignored in between. With
    ``allow_low_quality`` the anchor(s) with the highest IoU for each ground-truth
    box are also positive, so that every box gets at least one anchor.

    Parameters
    ----------
    anchors : Tensor
        ``(A, 4)``.
    gt_boxes : Tensor
        ``(G, 4)``; may be empty (every anchor is then negative).
    positive_iou, negative_iou : float
        ``negative_iou <= positive_iou``.
    allow_low_quality : bool

    Returns
    -------
    Tensor
        ``(A,)`` int64: the index of the matched box, ``NEGATIVE`` (-1) or
        ``IGNORE`` (-2).

    Examples
    --------
    >>> anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 6], [50, 50, 60, 60]])
    >>> match_anchors(anchors, torch.tensor([[0.0, 0, 10, 10]]))
    tensor([ 0, -2, -1])
    """
    _check_boxes(anchors, "anchors")
    _check_boxes(gt_boxes, "gt_boxes")
    if negative_iou > positive_iou:
        raise InvalidParameterError(
            f"negative_iou ({negative_iou}) must not exceed positive_iou ({positive_iou})."
        )
    if gt_boxes.shape[0] == 0:
        return torch.full((anchors.shape[0],), NEGATIVE, dtype=torch.long)
    iou = box_iou(anchors, gt_boxes)  # (A, G)
    best, idx = iou.max(dim=1)
    out = torch.full_like(idx, IGNORE)
    out[best < negative_iou] = NEGATIVE
    out[best >= positive_iou] = idx[best >= positive_iou]
    if allow_low_quality:
        best_per_gt = iou.max(dim=0).values  # (G,)
        # every anchor tied for a box's best IoU (and overlapping it at all)
        hits = (iou == best_per_gt[None, :]) & (best_per_gt[None, :] > 0)
        rows = hits.any(dim=1)
        out[rows] = idx[rows]
    return out
