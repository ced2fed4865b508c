"""Mean average precision of detections (COCO 0.5:0.95 and PASCAL VOC 0.5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from boda.detect._boxes import _check_threshold, box_iou
from boda.errors import InvalidParameterError

COCO_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def _ap_from_pr(recall: np.ndarray, precision: np.ndarray, method: str) -> float:
    # precision envelope: the best precision at any recall >= r
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    if method == "voc":  # area under the envelope (VOC 2010+)
        i = np.nonzero(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    # COCO: envelope sampled at 101 recall points, 0 beyond the reached recall
    points = np.linspace(0.0, 1.0, 101)
    env = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1]
    idx = np.searchsorted(recall, points, side="left")
    return float(np.mean(np.where(idx < len(recall), env[np.minimum(idx, len(env) - 1)], 0.0)))


def _check_record(record, keys: tuple[str, ...], what: str) -> None:
    """A per-image dict holding a tensor under each of ``keys``."""
    if not isinstance(record, Mapping):
        raise InvalidParameterError(
            f"{what} must be a dict with {', '.join(keys)} tensors, got {type(record).__name__}."
        )
    for key in keys:
        if not isinstance(record.get(key), Tensor):
            got = type(record[key]).__name__ if key in record else "nothing"
            raise InvalidParameterError(
                f"{what} needs a tensor under {key!r}, got {got}; convert with torch.as_tensor."
            )


def _check_inputs(predictions, targets) -> None:
    if len(predictions) != len(targets):
        raise InvalidParameterError(
            f"need one prediction per target image, got {len(predictions)} and {len(targets)}."
        )
    for i, (pred, tgt) in enumerate(zip(predictions, targets, strict=True)):
        _check_record(pred, ("boxes", "scores", "labels"), f"prediction {i}")
        _check_record(tgt, ("boxes", "labels"), f"target {i}")
        n = pred["boxes"].shape[0]
        if pred["scores"].shape != (n,) or pred["labels"].shape != (n,):
            raise InvalidParameterError(
                f"prediction {i}: boxes, scores and labels must hold {n} rows each, got "
                f"{tuple(pred['scores'].shape)} scores and {tuple(pred['labels'].shape)} labels."
            )
        if tgt["labels"].shape != (tgt["boxes"].shape[0],):
            raise InvalidParameterError(f"target {i}: need one label per box.")
        for what, boxes in ((f"prediction {i}", pred["boxes"]), (f"target {i}", tgt["boxes"])):
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise InvalidParameterError(
                    f"{what}: boxes must be (N, 4) (x1, y1, x2, y2), got {tuple(boxes.shape)}."
                )
            # a NaN box overlaps nothing: a missed object or a false positive, silently
            if boxes.is_floating_point() and not bool(torch.isfinite(boxes).all()):
                raise InvalidParameterError(
                    f"{what}: boxes hold NaN or infinite coordinates; drop or fix them."
                )
        # a NaN score sorts anywhere, so the ranking (and the AP) would be arbitrary
        if pred["scores"].is_floating_point() and bool(torch.isnan(pred["scores"]).any()):
            raise InvalidParameterError(
                f"prediction {i}: scores hold NaN values; drop those boxes."
            )


def _check_method(method: str) -> None:
    if method not in ("coco", "voc"):
        raise InvalidParameterError(f"method must be 'coco' or 'voc', got {method!r}.")


def average_precision(
    predictions: Sequence[Mapping[str, Tensor]],
    targets: Sequence[Mapping[str, Tensor]],
    label: int,
    iou_threshold: float = 0.5,
    method: str = "coco",
    max_detections: int | None = 100,
) -> float:
    """Average precision of one class at one IoU threshold.

    Detections of all images are ranked by score and matched greedily to the
    ground-truth boxes of their image and class, each box matched at most once;
    a detection without a match is a false positive. The two benchmarks match
    differently, and each method follows its own evaluation code:

    - ``"coco"`` (``COCOeval.evaluateImg``): the detection takes the
      not-yet-matched box with the highest IoU >= ``iou_threshold``; among
      equal IoUs the last such box, as ``COCOeval`` does.
    - ``"voc"`` (the devkit's ``VOCevaldet.m``): the detection looks only at the
      box it overlaps most, matched or not (the first on ties); if that IoU is
      >= ``iou_threshold`` and the box is still free it is a true positive,
      otherwise a false positive (a second detection of a taken box does not
      fall back to its neighbour).

    Returns ``nan`` when the class has no ground-truth box.
    IoUs are computed in float64, so a box whose IoU is exactly a threshold
    (0.7 for a 10x7 box in a 10x10 one) counts, as in pycocotools.

    Parameters
    ----------
    predictions : sequence of mappings
        One per image: ``boxes`` ``(N, 4)``, ``scores`` ``(N,)``, ``labels`` ``(N,)``.
    targets : sequence of mappings
        One per image: ``boxes`` ``(G, 4)``, ``labels`` ``(G,)``.
    label : int
    iou_threshold : float
    method : {"coco", "voc"}
        ``"coco"``: 101-point interpolated precision (COCO); ``"voc"``: area under
        the interpolated precision-recall curve (PASCAL VOC 2010 and later).
    max_detections : int or None
        With ``method="coco"``, only each image's ``max_detections``
        highest-scoring detections of the class count (COCOeval's
        ``maxDets=100``); None, or ``method="voc"``, keeps all.

    Returns
    -------
    float

    References
    ----------
    M. Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV
    2010, Sec. 4.2 (and the devkit's ``VOCevaldet.m``). T.-Y. Lin et al.,
    "Microsoft COCO: Common Objects in Context", ECCV 2014 (and the cocoapi
    evaluation code, ``COCOeval``).
    """
    _check_inputs(predictions, targets)
    _check_method(method)
    iou_threshold = _check_threshold(iou_threshold)
    if max_detections is not None and int(max_detections) < 1:
        raise InvalidParameterError(f"max_detections must be >= 1 or None, got {max_detections}.")
    cap = int(max_detections) if method == "coco" and max_detections is not None else None
    records = []  # (score, image, box)
    gts, n_gt = [], 0
    for img, (pred, tgt) in enumerate(zip(predictions, targets, strict=True)):
        # float64: in float32 an IoU of exactly 0.7 or 0.9 rounds below the threshold.
        g = tgt["boxes"][tgt["labels"] == label].double()
        gts.append(g)
        n_gt += g.shape[0]
        sel = pred["labels"] == label
        scores, boxes = pred["scores"][sel], pred["boxes"][sel].double()
        order = torch.argsort(-scores.double(), stable=True)[:cap]
        for s, b in zip(scores[order].tolist(), boxes[order], strict=True):
            records.append((s, img, b))
    if n_gt == 0:
        return float("nan")
    if not records:
        return 0.0
    records.sort(key=lambda r: -r[0])  # stable: ties keep input order
    matched = [torch.zeros(g.shape[0], dtype=torch.bool) for g in gts]
    tp = np.zeros(len(records))
    for k, (_, img, box) in enumerate(records):
        g = gts[img]
        if g.shape[0] == 0:
            continue
        iou = box_iou(box[None], g)[0]
        if method == "voc":  # the most-overlapped box, taken or not
            best = int(iou.argmax())
            if float(iou[best]) < iou_threshold or bool(matched[img][best]):
                continue
        else:  # the free box with the highest IoU; ties go to the last one
            iou[matched[img]] = -1.0
            best = len(iou) - 1 - int(iou.flip(0).argmax())
            if float(iou[best]) < iou_threshold:
                continue
        matched[img][best] = True
        tp[k] = 1.0
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(records) + 1)
    return _ap_from_pr(recall, precision, method)


def mean_average_precision(
    predictions: Sequence[Mapping[str, Tensor]],
    targets: Sequence[Mapping[str, Tensor]],
    iou_thresholds: Sequence[float] | None = None,
    method: str = "coco",
    max_detections: int | None = 100,
) -> dict[str, float]:
    """Mean average precision over classes and IoU thresholds.

    Parameters
    ----------
    predictions, targets : sequences of mappings
        As in :func:`average_precision`.
    iou_thresholds : sequence of float, optional
        Default: COCO's 0.50:0.05:0.95 for ``method="coco"``, (0.5,) for
        ``method="voc"``.
    method : {"coco", "voc"}
    max_detections : int or None
        As in :func:`average_precision` (COCO's 100 per image by default).

    Returns
    -------
    dict
        ``"map"``: the mean over classes (those with ground truth) and thresholds;
        ``"map_50"``, ``"map_75"`` when those thresholds are evaluated; and
        ``"ap_class_<k>"``: each class's AP averaged over thresholds.

    Examples
    --------
    >>> box = torch.tensor([[0.0, 0, 10, 10]])
    >>> pred = [{"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}]
    >>> tgt = [{"boxes": box, "labels": torch.tensor([1])}]
    >>> mean_average_precision(pred, tgt)["map"]
    1.0
    """
    _check_inputs(predictions, targets)
    _check_method(method)
    if iou_thresholds is None:
        iou_thresholds = COCO_IOU_THRESHOLDS if method == "coco" else (0.5,)
    # checked here too: with no ground truth no AP is computed, and an empty list
    # would average nothing (NaN); 50 instead of 0.5 would give AP 0 everywhere
    if isinstance(iou_thresholds, (int, float)) or len(iou_thresholds) == 0:
        raise InvalidParameterError(
            "iou_thresholds must be a non-empty sequence of IoUs in [0, 1], got "
            f"{iou_thresholds!r}."
        )
    iou_thresholds = [_check_threshold(t) for t in iou_thresholds]
    classes = sorted({int(c) for t in targets for c in t["labels"].tolist()})
    table = np.full((len(classes), len(iou_thresholds)), np.nan)
    for i, c in enumerate(classes):
        for j, thr in enumerate(iou_thresholds):
            table[i, j] = average_precision(
                predictions, targets, c, thr, method, max_detections
            )
    out: dict[str, float] = {"map": float(np.mean(table)) if table.size else float("nan")}
    for name, thr in (("map_50", 0.5), ("map_75", 0.75)):
        hits = [j for j, t in enumerate(iou_thresholds) if abs(t - thr) < 1e-9]
        if hits:  # NaN without classes, as "map" (np.mean of nothing warns)
            out[name] = float(np.mean(table[:, hits[0]])) if classes else float("nan")
    for i, c in enumerate(classes):
        out[f"ap_class_{c}"] = float(np.mean(table[i]))
    return out
