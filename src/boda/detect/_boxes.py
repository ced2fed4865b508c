"""Boxes: IoU, non-maximum suppression, anchors, Faster R-CNN box coding, matching.

Boxes are ``(N, 4)`` float tensors ``(x1, y1, x2, y2)`` in pixels, ``x2 > x1``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from boda.core.numbers import finite_float
from boda.errors import InvalidParameterError

# largest log-scale a decoded box may grow by (torchvision/Detectron's choice)
_DW_CLAMP = math.log(1000.0 / 16)


def _check_boxes(boxes: Tensor, name: str = "boxes") -> None:
    if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise InvalidParameterError(
            f"{name} must be an (N, 4) tensor (x1, y1, x2, y2), got {shape}."
        )


def _positive(value, name: str):
    """A finite number > 0 as a float; a tensor (a learned width) is checked and kept,
    so gradients still flow through it."""
    if isinstance(value, Tensor):
        ok = value.numel() > 0 and bool((torch.isfinite(value) & (value > 0)).all())
    else:
        ok = (finite_float(value) or 0.0) > 0
        value = float(value) if ok else value
    if not ok:
        raise InvalidParameterError(f"{name} must be a finite number > 0, got {value!r}.")
    return value


def _check_finite(boxes: Tensor, name: str = "boxes") -> None:
    """Refuse NaN / infinite coordinates: IoU treats them as empty boxes (0 overlap),
    so a broken box would silently match nothing instead of failing."""
    if boxes.numel() and boxes.is_floating_point() and not bool(torch.isfinite(boxes).all()):
        bad = int((~torch.isfinite(boxes)).any(dim=1).nonzero()[0, 0])
        raise InvalidParameterError(
            f"{name} hold NaN or infinite coordinates (first in row {bad}); drop or clip "
            "those boxes first (decoded boxes: check the deltas)."
        )


def _wide(boxes: Tensor) -> Tensor:
    """float16 / bfloat16 boxes in float32: a 300 px square's area (90 000) is
    above float16's largest value (65 504), and IoU would be inf / inf."""
    return boxes.float() if boxes.dtype in (torch.float16, torch.bfloat16) else boxes


def _area(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_area(boxes: Tensor) -> Tensor:
    """Areas ``(N,)`` of ``(N, 4)`` boxes (negative sizes count as 0).

    float16 / bfloat16 boxes give float32 areas (as torchvision's ``box_area``
    does): pixel areas overflow float16.

    Examples
    --------
    >>> box_area(torch.tensor([[0.0, 0.0, 300.0, 300.0]], dtype=torch.float16))
    tensor([90000.])
    """
    _check_boxes(boxes)
    return _area(_wide(boxes))


def _iou(inter: Tensor, union: Tensor, dtype: torch.dtype) -> Tensor:
    """``inter / union``, 0 where the union is empty, in ``dtype`` when it is a float."""
    iou = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    return iou.to(dtype) if dtype.is_floating_point else iou


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
        ``(N, M)`` IoU matrix; 0 where the union is empty. float16 / bfloat16
        boxes are computed in float32 and the IoU returned in their dtype.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    >>> box_iou(a, torch.tensor([[1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0]]))
    tensor([[0.3333, 0.0000]])
    """
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    boxes1, boxes2 = _wide(boxes1), _wide(boxes2)
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = _area(boxes1)[:, None] + _area(boxes2)[None, :] - inter
    return _iou(inter, union, dtype)


def matched_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of matched pairs: row ``i`` of ``boxes1`` with row ``i`` of ``boxes2``, ``(N,)``.

    float16 / bfloat16 boxes are computed in float32, as in :func:`box_iou`.

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
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    boxes1, boxes2 = _wide(boxes1), _wide(boxes2)
    lt = torch.maximum(boxes1[:, :2], boxes2[:, :2])
    rb = torch.minimum(boxes1[:, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = _area(boxes1) + _area(boxes2) - inter
    return _iou(inter, union, dtype)


def _check_scores(boxes: Tensor, scores: Tensor) -> None:
    _check_boxes(boxes)
    if not isinstance(scores, Tensor) or scores.shape != (boxes.shape[0],):
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise InvalidParameterError(f"scores must have shape ({boxes.shape[0]},), got {shape}.")
    # A NaN score would sort first and suppress the best box.
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        raise InvalidParameterError("scores hold NaN values; drop or fix those boxes.")
    _check_finite(boxes)


def _threshold_below(threshold: float, dtype: np.dtype) -> np.floating:
    """The largest value of ``dtype`` not above ``threshold``.

    For ``x`` of that dtype, ``x > t`` then holds exactly when ``x > threshold``
    holds in real numbers, so the test does not depend on how the threshold rounds.
    """
    t = dtype.type(threshold)
    return t if float(t) <= threshold else np.nextafter(t, dtype.type(-np.inf))


def _concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - first + np.repeat(starts, counts)


def _greedy_in_block(n_src: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Greedy pass over ``n_src`` boxes in score order, given edges ``lo -> hi`` (lo < hi).

    Each row of the suppression matrix becomes a Python integer bit set, so the
    sequential part costs one shift and one OR per box.
    """
    if len(lo) == 0:
        return np.arange(n_src)
    mat = np.zeros((n_src, n_src), dtype=bool)
    mat[lo, hi] = True
    rows_with_edges = np.unique(lo)
    packed = np.packbits(mat[rows_with_edges], axis=1, bitorder="little")
    bits = {
        int(r): int.from_bytes(p.tobytes(), "little")
        for r, p in zip(rows_with_edges, packed, strict=True)
    }
    suppressed, kept = 0, []
    for i in range(n_src):
        if not (suppressed >> i) & 1:
            kept.append(i)
            suppressed |= bits.get(i, 0)
    return np.asarray(kept, dtype=np.int64)


def _greedy_nms(b: np.ndarray, groups: np.ndarray | None, threshold: float) -> np.ndarray:
    """Greedy NMS of boxes already sorted by decreasing score; returns kept positions.

    Only pairs that overlap enough along x can have IoU > threshold, so
    candidate pairs come from a sweep over boxes sorted by ``x1`` (within their
    group): box ``u`` meets the boxes after it whose ``x1`` lies before
    ``x2 - threshold * width`` of ``u``. Boxes are decided in blocks of ranks;
    a kept box removes the later boxes it overlaps too much, and removed boxes
    never generate candidates again. The
    IoU of each candidate pair is computed with the same operations as
    :func:`box_iou`, so the kept set equals the textbook greedy loop's.
    """
    n = len(b)
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    thr = _threshold_below(threshold, b.dtype)
    # For u before v along x, IoU <= overlap_x / w_u, so IoU > t needs
    # x1_v < x2_u - t w_u: the end of u's forward range. The bound is loosened
    # far beyond the rounding error of a float IoU, so no pair above the
    # threshold is ever missed (the threshold test itself stays exact).
    xw1, xw2 = x1.astype(np.float64), x2.astype(np.float64)
    reach = xw2 - threshold * (1 - 1e-4) * np.maximum(xw2 - xw1, 0)
    reach += 1e-12 * (np.abs(xw1) + np.abs(xw2)) + 1e-300
    # integer sweep keys keep the comparisons exact: rank of x1 (and of the
    # reach as a query) among all these values, offset per group so groups never meet
    values, inverse = np.unique(np.concatenate([xw1, reach]), return_inverse=True)
    k1, k2 = inverse[:n].astype(np.int64), inverse[n:].astype(np.int64)
    if groups is not None:
        k1 = k1 + groups * len(values)
        k2 = k2 + groups * len(values)
    by_x = np.argsort(k1, kind="stable")
    # end of each box's forward range, as a position in the x order of all boxes
    stop_all = np.searchsorted(k1[by_x], k2, side="left")
    removed = np.zeros(n, dtype=bool)
    kept_mask = np.zeros(n, dtype=bool)
    # Block size adapts to the density of candidate pairs: small blocks when
    # every box overlaps every other one (the first kept box then removes most
    # of them before they are paired), large ones when boxes are spread out.
    block, budget, a = 64, 2**21, 0
    while a < n:
        # a block pairs at most block * (live boxes) candidates: keep that in budget
        block = min(block, max(16, budget // max(int(n - a - removed[a:].sum()), 1)))
        end = min(a + block, n)
        src = np.flatnonzero(~removed[a:end]) + a
        if len(src) == 0:
            a = end
            continue
        alive = ~removed
        alive[:a] = False
        alive_x = alive[by_x]
        live = by_x[alive_x]  # boxes still in play, sorted by key
        # forward range ends among the live boxes: live boxes before stop_all
        before = np.concatenate([[0], np.cumsum(alive_x)])
        stop = before[stop_all[live]]
        pos = np.arange(len(live))
        is_src = live < end
        src_pos = pos[is_src]
        # (a) sources looking forward: every other live box in their range
        cnt = np.maximum(stop[is_src] - src_pos - 1, 0)
        pa = np.repeat(live[src_pos], cnt)
        qa = live[_concat_ranges(src_pos + 1, cnt)]
        # (b) later boxes looking forward onto sources
        oth = pos[~is_src]
        lo = np.searchsorted(src_pos, oth, side="right")
        cnt = np.searchsorted(src_pos, stop[oth], side="left") - lo
        qb = np.repeat(live[oth], cnt)
        pb = live[src_pos[_concat_ranges(lo, cnt)]]
        p, q = np.concatenate([pa, pb]), np.concatenate([qa, qb])
        # IoU exactly as box_iou computes it
        w = np.maximum(np.minimum(x2[p], x2[q]) - np.maximum(x1[p], x1[q]), 0)
        h = np.maximum(np.minimum(y2[p], y2[q]) - np.maximum(y1[p], y1[q]), 0)
        inter = w * h
        union = area[p] + area[q] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        hit = iou > thr
        p, q = p[hit], q[hit]
        inside = q < end  # both in this block (only from (a))
        lo_r, hi_r = np.minimum(p[inside], q[inside]), np.maximum(p[inside], q[inside])
        kept = src[_greedy_in_block(len(src), np.searchsorted(src, lo_r),
                                    np.searchsorted(src, hi_r))]
        kept_mask[kept] = True
        removed[a:end] = True
        later = ~inside
        removed[q[later][kept_mask[p[later]]]] = True
        a = end
        if len(hit) < budget // 8:
            block *= 2
    return np.flatnonzero(kept_mask)


def _nms_impl(boxes: Tensor, scores: Tensor, groups: Tensor | None, iou_threshold) -> Tensor:
    order = torch.argsort(scores.detach(), descending=True, stable=True).cpu().numpy()
    wide = torch.float64 if boxes.dtype == torch.float64 else torch.float32  # bf16/fp16 too
    # numpy fancy indexing: torch's index kernel is much slower on small CPU tensors
    b = boxes.detach().to(wide).cpu().numpy()[order]
    g = None
    if groups is not None:  # dense ids 0..G-1, so the key offsets cannot overflow
        g = np.unique(groups.detach().cpu().numpy()[order], return_inverse=True)[1]
        g = g.reshape(-1).astype(np.int64)
    kept = order[_greedy_nms(b, g, float(iou_threshold))]
    return torch.as_tensor(kept, dtype=torch.long, device=boxes.device)


def _check_threshold(iou_threshold) -> float:
    value = finite_float(iou_threshold)
    if value is None or not 0.0 <= value <= 1.0:
        raise InvalidParameterError(f"iou_threshold must lie in [0, 1], got {iou_threshold!r}.")
    return value


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Greedy non-maximum suppression.

    Visit boxes by decreasing score; keep a box unless it overlaps an already
    kept box with IoU strictly greater than ``iou_threshold`` (the convention of
    torchvision and Detectron).

    Ties are broken deterministically: boxes with equal scores are visited in
    increasing index order (a stable sort by decreasing score). The IoU is
    computed in float64 for float64 boxes and in float32 otherwise, with the
    operations of :func:`box_iou` (0 when the union is empty, so zero-area boxes
    never suppress or get suppressed), and compared with ``iou_threshold``
    exactly, as torchvision's kernel does in double precision. The kept
    indices are therefore identical to the textbook loop that runs on the
    matrix ``box_iou(boxes, boxes)``.

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

    Notes
    -----
    Not the quadratic loop: candidate pairs come from a sweep over boxes sorted
    by ``x1`` (two boxes that do not overlap along x cannot suppress each
    other), and boxes are decided in blocks of ranks, removed boxes dropping
    out of the sweep. Memory stays linear in ``N`` (about two million
    candidate pairs per block at most); 10k clustered boxes take tens of
    milliseconds on one CPU core (``benchmarks/training_blocks.py``).

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
    iou_threshold = _check_threshold(iou_threshold)
    return _nms_impl(boxes, scores, None, iou_threshold)


def batched_nms(
    boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float = 0.5
) -> Tensor:
    """Class-wise NMS: boxes of different classes never suppress each other.

    The coordinate-offset trick, applied to the integer sweep keys of
    :func:`nms` rather than to the coordinates: each class lives in its own
    key range, so one pass handles every class, and the IoUs are those of the
    unshifted boxes (shifting float coordinates by a large offset would round
    them and could flip a comparison at the threshold). The result equals
    :func:`nms` run on each class separately, merged by decreasing score (ties
    by lower index).

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
    if not isinstance(classes, Tensor) or classes.shape != scores.shape:
        shape = tuple(classes.shape) if isinstance(classes, Tensor) else type(classes).__name__
        raise InvalidParameterError(f"classes must have shape {tuple(scores.shape)}, got {shape}.")
    if classes.is_floating_point() or classes.is_complex():
        raise InvalidParameterError(f"classes must be an integer tensor, got {classes.dtype}.")
    iou_threshold = _check_threshold(iou_threshold)
    return _nms_impl(boxes, scores, classes, iou_threshold)


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

    Boxes whose score falls below ``score_threshold`` are dropped. Equal
    scores are resolved towards the lower index. Each step works on the
    surviving boxes only, with one IoU row at a time, so memory is linear in
    ``N`` (the paper's algorithm is quadratic in time).

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
        Their decayed scores, in the dtype of ``scores`` (float32 for integer
        scores, whose decayed values are fractions).

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
    sigma = float(_positive(sigma, "sigma"))
    iou_threshold = _check_threshold(iou_threshold)
    if finite_float(score_threshold) is None and score_threshold != -math.inf:
        raise InvalidParameterError(
            f"score_threshold must be a number (or -inf: keep every box), got {score_threshold!r}."
        )
    boxes = boxes.detach()
    # decayed scores are fractions: float64 stays float64, integers become float32
    wide = torch.float64 if scores.dtype == torch.float64 else torch.float32
    out_dtype = scores.dtype if scores.is_floating_point() else torch.float32
    s = scores.detach().clone().to(wide)
    idx = torch.nonzero(s >= score_threshold).flatten()  # alive, increasing index
    b, s = boxes[idx], s[idx]
    keep, kept_scores = [], []
    while len(idx):
        m = int(s.argmax())  # first maximum: the lowest index among ties
        keep.append(int(idx[m]))
        kept_scores.append(float(s[m]))
        ov = box_iou(b[m : m + 1], b)[0]  # the same values as a row of the full matrix
        if method == "gaussian":
            decay = torch.exp(-(ov**2) / sigma)
        else:
            decay = torch.where(ov >= iou_threshold, 1.0 - ov, torch.ones_like(ov))
        s = s * decay
        alive = s >= score_threshold
        alive[m] = False
        idx, b, s = idx[alive], b[alive], s[alive]
    device = boxes.device
    return (
        torch.tensor(keep, dtype=torch.long, device=device),
        torch.tensor(kept_scores, dtype=out_dtype, device=scores.device),
    )


def _positive_floats(values, name: str) -> list[float]:
    """``values`` (list, numpy array or tensor) as Python floats, each finite and > 0:
    a zero or negative size or ratio would give empty or NaN anchors."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        out = None
    if not out or not all(math.isfinite(v) and v > 0 for v in out):
        raise InvalidParameterError(
            f"{name} must be a non-empty sequence of finite numbers > 0, got {values!r}."
        )
    return out


def _feature_size(size) -> tuple[int, int]:
    """One ``(H, W)`` pair of ints >= 0 (a negative size made torch.arange fail deep down)."""
    try:
        h, w = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        h = w = -1
    if h < 0 or w < 0:
        raise InvalidParameterError(
            f"each feature size must be (H, W), two ints >= 0, got {size!r}; pass "
            "feature_sizes as a list of pairs, e.g. [(50, 68), (25, 34)]."
        )
    return h, w


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
    scales : float, sequence of float, or one sequence per level
        Anchor sizes. A number or a flat sequence is used on every level.
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
    if not hasattr(scales, "__len__") or getattr(scales, "ndim", 1) == 0:  # one number
        scales = [scales]  # type: ignore[list-item]
    feature_sizes = [_feature_size(fs) for fs in feature_sizes]
    if len(feature_sizes) != len(strides):
        raise InvalidParameterError(
            f"give one stride per feature map: {len(feature_sizes)} sizes, {len(strides)} strides."
        )
    # a number of any kind (numpy or 0-d tensor too) is a flat scale; a sequence, a level
    if len(scales) and np.ndim(scales[0]) > 0:
        per_level = [_positive_floats(s, "scales") for s in scales]  # type: ignore[union-attr]
        if len(per_level) != len(strides):
            raise InvalidParameterError("scales given per level need one entry per level.")
    else:
        per_level = [_positive_floats(scales, "scales")] * len(strides)
    _positive_floats(strides, "strides")
    out = []
    ratios = torch.tensor(_positive_floats(aspect_ratios, "aspect_ratios"), dtype=torch.float32)
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


def _check_coding(rows: Tensor, anchors: Tensor, weights, name: str) -> None:
    """One anchor per row, and four positive finite weights (deltas are divided by them)."""
    _check_boxes(rows, name)
    _check_boxes(anchors, "anchors")
    if rows.shape[0] != anchors.shape[0]:
        raise InvalidParameterError(
            f"{name} and anchors are matched pairs and need the same number of rows, "
            f"got {rows.shape[0]} and {anchors.shape[0]}; index the anchors with the "
            "matches first (anchors[idx])."
        )
    if len(_positive_floats(weights, "weights (wx, wy, ww, wh)")) != 4:
        raise InvalidParameterError(f"weights must be 4 numbers (wx, wy, ww, wh), got {weights!r}.")


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
    _check_coding(boxes, anchors, weights, "boxes")
    _check_finite(boxes)
    _check_finite(anchors, "anchors")
    x, y, w, h = _cxcywh(boxes)
    xa, ya, wa, ha = _cxcywh(anchors)
    # Offsets are relative to the anchor's size: an empty anchor (or box) has none.
    for name, (width, height) in (("anchors", (wa, ha)), ("boxes", (w, h))):
        if width.numel() and not bool(((width > 0) & (height > 0)).all()):
            raise InvalidParameterError(
                f"{name} must have positive width and height to encode; found an empty one."
            )
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
    _check_coding(deltas, anchors, weights, "deltas")
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
    # a NaN ground-truth box overlaps nothing: every anchor would silently be background
    _check_finite(gt_boxes, "gt_boxes")
    _check_finite(anchors, "anchors")
    for name, value in (("positive_iou", positive_iou), ("negative_iou", negative_iou)):
        v = finite_float(value)
        if v is None or not 0.0 <= v <= 1.0:
            raise InvalidParameterError(f"{name} is an IoU in [0, 1], got {value!r}.")
    if negative_iou > positive_iou:
        raise InvalidParameterError(
            f"negative_iou ({negative_iou}) must not exceed positive_iou ({positive_iou})."
        )
    if gt_boxes.shape[0] == 0 or anchors.shape[0] == 0:
        return torch.full((anchors.shape[0],), NEGATIVE, dtype=torch.long, device=anchors.device)
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
