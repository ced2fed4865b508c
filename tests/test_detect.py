"""Tests of boda.detect: brute-force references for IoU/NMS, hand-made mAP cases, heatmaps."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from boda import detect as D  # noqa: E402
from boda.errors import InvalidParameterError  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def _random_boxes(gen, n=40, spread=60.0):
    xy = torch.rand(n, 2, generator=gen) * spread
    wh = 5 + torch.rand(n, 2, generator=gen) * 25
    return torch.cat([xy, xy + wh], 1)


def _iou_py(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _nms_py(boxes, scores, thr):
    """Textbook greedy NMS on Python lists."""
    b, s = boxes.tolist(), scores.tolist()
    order = sorted(range(len(s)), key=lambda i: -s[i])
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if _iou_py(b[i], b[j]) <= thr]
    return keep


# ----------------------------------------------------------------- IoU and NMS


def test_box_iou_matches_brute_force(gen):
    a, b = _random_boxes(gen, 12), _random_boxes(gen, 9)
    ref = torch.tensor([[_iou_py(x, y) for y in b.tolist()] for x in a.tolist()])
    torch.testing.assert_close(D.box_iou(a, b), ref)
    torch.testing.assert_close(D.matched_box_iou(a[:9], b), torch.diagonal(ref[:9]))
    assert D.box_iou(a, a[:0]).shape == (12, 0)
    with pytest.raises(InvalidParameterError, match=r"\(N, 4\)"):
        D.box_iou(torch.zeros(3, 5), a)


@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7])
def test_nms_matches_brute_force(gen, thr):
    for _ in range(5):
        boxes = _random_boxes(gen)
        scores = torch.rand(len(boxes), generator=gen)
        assert D.nms(boxes, scores, thr).tolist() == _nms_py(boxes, scores, thr)
    assert D.nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_batched_nms_is_nms_per_class(gen):
    boxes = _random_boxes(gen, 60)
    scores = torch.rand(60, generator=gen)
    classes = torch.randint(0, 3, (60,), generator=gen)
    expected = []
    for c in range(3):
        idx = torch.nonzero(classes == c).flatten()
        expected += [int(idx[i]) for i in _nms_py(boxes[idx], scores[idx], 0.4)]
    expected.sort(key=lambda i: -float(scores[i]))
    assert D.batched_nms(boxes, scores, classes, 0.4).tolist() == expected


def _soft_nms_py(boxes, scores, sigma, nt, thr, method):
    b, s = boxes.tolist(), scores.tolist()
    alive = [i for i in range(len(s)) if s[i] >= thr]
    keep, kept = [], []
    while alive:
        m = max(alive, key=lambda i: (s[i], -i))
        keep.append(m)
        kept.append(s[m])
        alive.remove(m)
        for j in alive:
            ov = _iou_py(b[m], b[j])
            if method == "gaussian":
                s[j] *= math.exp(-(ov**2) / sigma)
            elif ov >= nt:
                s[j] *= 1 - ov
        alive = [j for j in alive if s[j] >= thr]
    return keep, kept


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_nms_matches_brute_force(gen, method):
    boxes = _random_boxes(gen, 30, spread=30)
    scores = torch.rand(30, generator=gen)
    keep, new = D.soft_nms(boxes, scores, 0.5, 0.3, 0.05, method)
    ref_keep, ref_scores = _soft_nms_py(boxes, scores, 0.5, 0.3, 0.05, method)
    assert keep.tolist() == ref_keep
    torch.testing.assert_close(new, torch.tensor(ref_scores), rtol=1e-5, atol=1e-6)


def test_soft_nms_with_tiny_sigma_is_hard_nms(gen):
    boxes = _random_boxes(gen, 30)
    scores = torch.rand(30, generator=gen) + 0.1
    keep, _ = D.soft_nms(boxes, scores, sigma=1e-6, score_threshold=0.01)
    assert keep.tolist() == D.nms(boxes, scores, 0.0).tolist()


# ----------------------------------------------------------------- anchors and coding


def test_generate_anchors_geometry():
    anchors = D.generate_anchors([(2, 3), (1, 2)], [8, 16], [[16.0, 32.0], [64.0]], (0.5, 1, 2))
    assert anchors.shape == (2 * 3 * 6 + 2 * 3, 4)
    first = anchors[:6]  # cell (0, 0) of level 0: centre (4, 4)
    w, h = first[:, 2] - first[:, 0], first[:, 3] - first[:, 1]
    torch.testing.assert_close((first[:, 0] + first[:, 2]) / 2, torch.full((6,), 4.0))
    torch.testing.assert_close(w * h, torch.tensor([16.0**2] * 3 + [32.0**2] * 3))
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1.0, 2.0] * 2))
    # cell (1, 2) of level 0 is the last of level 0; its centre is (20, 12)
    last = anchors[35]
    assert float(last[0] + last[2]) / 2 == pytest.approx(20.0)
    assert float(last[1] + last[3]) / 2 == pytest.approx(12.0)
    # level 1, cell (0, 1): centre (24, 8), square side 64
    torch.testing.assert_close(anchors[-2], torch.tensor([24 - 32.0, 8 - 32, 24 + 32, 8 + 32]))



def test_generate_anchors_takes_numpy_and_tensor_scales_and_refuses_bad_sizes():
    import numpy as np

    ref = D.generate_anchors([(2, 3)], [8], [16.0, 32.0], [0.5, 1.0])
    # numpy float32 scalars and tensors were a TypeError ("not iterable")
    for scales in ([np.float32(16), np.float32(32)], torch.tensor([16.0, 32.0]),
                   np.array([16, 32], dtype=np.int32)):
        torch.testing.assert_close(D.generate_anchors([(2, 3)], [8], scales, [0.5, 1.0]), ref)
    torch.testing.assert_close(
        D.generate_anchors([(2, 3)], [8], [torch.tensor([16.0, 32.0])], np.array([0.5, 1.0])), ref
    )
    # a negative ratio gave NaN anchors, a zero scale empty ones
    for kwargs in ({"aspect_ratios": [-1.0]}, {"scales": [0.0]}, {"strides": [0]}):
        args = {"feature_sizes": [(2, 2)], "strides": [8], "scales": [8.0], **kwargs}
        with pytest.raises(InvalidParameterError, match=next(iter(kwargs))):
            D.generate_anchors(**args)

def test_encode_decode_round_trip(gen):
    anchors = _random_boxes(gen, 20)
    boxes = _random_boxes(gen, 20)
    for weights in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        deltas = D.encode_boxes(boxes, anchors, weights)
        torch.testing.assert_close(D.decode_boxes(deltas, anchors, weights), boxes)
    a = torch.tensor([[0.0, 0, 10, 20]])
    b = torch.tensor([[5.0, -10, 25, 30]])  # centre (15, 10), size 20 x 40
    expected = torch.tensor([[1.0, 0.0, math.log(2), math.log(2)]])
    torch.testing.assert_close(D.encode_boxes(b, a), expected)



def test_encode_decode_refuse_unmatched_rows_and_bad_weights():
    anchors = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [0, 0, 4, 8]])
    # unequal row counts were a torch broadcasting error ("size of tensor a (2) must match")
    with pytest.raises(InvalidParameterError, match="same number of rows"):
        D.encode_boxes(anchors[:2], anchors)
    with pytest.raises(InvalidParameterError, match="same number of rows"):
        D.decode_boxes(torch.zeros(2, 4), anchors)
    # a zero weight divided the deltas by zero: NaN boxes
    bad = ((0.0, 1.0, 1.0, 1.0), (1.0, 1.0, -5.0, 5.0), (1.0, 1.0), (1, 1, 1, float("nan")))
    for weights in bad:
        with pytest.raises(InvalidParameterError, match="weights"):
            D.decode_boxes(torch.zeros(3, 4), anchors, weights)
        with pytest.raises(InvalidParameterError, match="weights"):
            D.encode_boxes(anchors, anchors, weights)

def test_match_anchors_thresholds():
    gt = torch.tensor([[0.0, 0, 10, 10], [100, 100, 110, 110]])
    anchors = torch.tensor(
        [
            [0.0, 0, 10, 8],  # IoU 0.8 with gt 0 -> positive
            [0.0, 0, 10, 5],  # IoU 0.5 -> ignored
            [0.0, 0, 10, 2],  # IoU 0.2 -> negative
            [100, 100, 110, 104],  # IoU 0.4 with gt 1: best for it -> low-quality positive
            [50, 50, 60, 60],  # no overlap -> negative
        ]
    )
    assert D.match_anchors(anchors, gt).tolist() == [0, D.IGNORE, D.NEGATIVE, 1, D.NEGATIVE]
    strict = D.match_anchors(anchors, gt, allow_low_quality=False).tolist()
    assert strict == [0, D.IGNORE, D.NEGATIVE, D.IGNORE, D.NEGATIVE]
    assert D.match_anchors(anchors, gt[:0]).tolist() == [D.NEGATIVE] * 5


# ----------------------------------------------------------------- mAP


def _pred(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels),
    }


def _tgt(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels)}


def test_map_perfect_and_empty():
    t = [_tgt([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])]
    p = [_pred([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 1])]
    res = D.mean_average_precision(p, t)
    assert res["map"] == 1.0 and res["map_50"] == 1.0 and res["map_75"] == 1.0
    nothing = [_pred([], [], [])]
    assert D.mean_average_precision(nothing, t)["map"] == 0.0


def test_map_hand_computed_tp_fp_tp():
    # two objects; ranked detections: hit, miss, hit -> P/R = (1, .5), (.5, .5), (2/3, 1)
    t = [_tgt([[0, 0, 10, 10]], [0]), _tgt([[50, 50, 60, 60]], [0])]
    p = [
        _pred([[0, 0, 10, 10], [30, 30, 40, 40]], [0.9, 0.8], [0, 0]),
        _pred([[50, 50, 60, 60]], [0.7], [0]),
    ]
    voc = D.mean_average_precision(p, t, method="voc")
    assert voc["map"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    coco = D.average_precision(p, t, 0, 0.5, "coco")
    assert coco == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)


def test_map_duplicates_and_iou_thresholds():
    t = [_tgt([[0, 0, 100, 100]], [3])]
    dup = [_pred([[0, 0, 100, 100], [0, 0, 100, 100]], [0.9, 0.8], [3, 3])]
    # the duplicate is a false positive after full recall: AP is still 1
    assert D.average_precision(dup, t, 3, 0.5, "voc") == 1.0
    # IoU 0.78 counts at thresholds 0.50 ... 0.75 (6 of COCO's 10)
    p = [_pred([[0, 0, 100, 78]], [0.9], [3])]
    res = D.mean_average_precision(p, t)
    assert res["map"] == pytest.approx(0.6)
    assert res["map_50"] == 1.0 and res["map_75"] == 1.0
    assert res["ap_class_3"] == pytest.approx(0.6)
    # a detection of the wrong class does not count
    wrong = [_pred([[0, 0, 100, 100]], [0.9], [1])]
    assert D.mean_average_precision(wrong, t)["map"] == 0.0
    with pytest.raises(InvalidParameterError, match="rows each"):
        D.mean_average_precision([_pred([[0, 0, 1, 1], [0, 0, 2, 2]], [0.9], [3, 3])], t)


def test_map_names_a_missing_or_non_tensor_entry():
    t = [_tgt([[0, 0, 10, 10]], [0])]
    p = _pred([[0, 0, 10, 10]], [0.9], [0])
    # these were KeyError 'scores' and AttributeError "'list' object has no attribute 'tolist'"
    with pytest.raises(InvalidParameterError, match="prediction 0 needs a tensor under 'scores'"):
        D.mean_average_precision([{"boxes": p["boxes"], "labels": p["labels"]}], t)
    with pytest.raises(InvalidParameterError, match="target 0 needs a tensor under 'labels'"):
        D.mean_average_precision([p], [{"boxes": t[0]["boxes"], "labels": [0]}])
    with pytest.raises(InvalidParameterError, match="prediction 0 must be a dict"):
        D.average_precision([[p]], t, 0)


def test_map_coco_tie_goes_to_the_last_free_box_as_in_cocoeval():
    # The first detection overlaps both boxes equally (IoU 9/11); COCOeval gives it
    # the last one, which leaves box 0 free for the exact second detection.
    t = [_tgt([[0, 0, 10, 10], [2, 0, 12, 10]], [0, 0])]
    p = [_pred([[1, 0, 11, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])]
    # at IoU 0.75 box 1 is out of reach of the second detection (IoU 2/3)
    assert D.average_precision(p, t, 0, 0.75, "coco") == 1.0
    # pycocotools' COCOeval on this image: mAP 0.7757, mAP@50 = mAP@75 = 1
    res = D.mean_average_precision(p, t)
    assert res["map"] == pytest.approx(0.77574257, abs=1e-6) and res["map_75"] == 1.0


def test_map_voc_matches_only_the_most_overlapped_box_as_the_devkit():
    # VOCevaldet.m: a detection whose best box is already taken is a false positive,
    # even when another free box overlaps it enough.
    t = [_tgt([[0, 0, 10, 10], [4, 0, 14, 10]], [0, 0])]
    p = [_pred([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 0])]
    # second detection: IoU 9/11 with the taken box 0, 7/13 >= 0.5 with box 1
    assert D.average_precision(p, t, 0, 0.5, "voc") == pytest.approx(0.5)
    # COCO lets it fall back to box 1
    assert D.average_precision(p, t, 0, 0.5, "coco") == 1.0


# ----------------------------------------------------------------- heatmaps


def test_render_heatmaps_values():
    pts = torch.tensor([[3.0, 2.0], [1.25, 4.5]])
    g = D.render_heatmaps(pts, (8, 9), sigma=2.0)
    assert g.shape == (2, 8, 9)
    assert float(g[0, 2, 3]) == 1.0
    assert float(g[0, 2, 5]) == pytest.approx(math.exp(-0.5))
    assert float(g[1].max()) < 1.0  # sub-pixel centre: no pixel sits on it
    c = D.render_heatmaps(pts, (8, 9), sigma=2.0, kind="cauchy")
    assert float(c[0, 2, 3]) == 1.0 and float(c[0, 4, 3]) == pytest.approx(0.5)
    # heavier tails than the Gaussian
    assert float(c[0, 7, 8]) > float(g[0, 7, 8])


def test_decode_heatmaps_sub_pixel(gen):
    pts = 6 + torch.rand(3, 5, 2, generator=gen) * 12  # (N, K, 2), away from borders
    heat = D.render_heatmaps(pts, (24, 24), sigma=1.2)
    quad = D.decode_heatmaps(heat, "quadratic")
    torch.testing.assert_close(quad, pts, atol=1e-3, rtol=0)
    arg = D.decode_heatmaps(heat, "argmax")
    assert float((arg - pts).abs().max()) <= 0.5 + 1e-6
    # soft-argmax treats its input as logits: on log-Gaussians it is the exact mean
    soft = D.decode_heatmaps(torch.log(heat), "soft_argmax")
    torch.testing.assert_close(soft, pts, atol=1e-3, rtol=0)
    # on the raw [0, 1] map the flat background drags the estimate to the image centre
    raw = D.decode_heatmaps(heat, "soft_argmax")
    assert float((raw - 11.5).abs().mean()) < float((pts - 11.5).abs().mean())
    # Cauchy maps decode to the right integer peak
    cauchy = D.render_heatmaps(pts, (24, 24), sigma=1.5, kind="cauchy")
    assert float((D.decode_heatmaps(cauchy, "argmax") - pts).abs().max()) <= 0.5 + 1e-6


def test_pck_and_nme():
    target = torch.zeros(2, 3, 2)
    pred = torch.tensor([[[1.0, 0], [3, 4], [0, 0]], [[0, 9], [0, 0], [0, 30]]])
    # distances 1, 5, 0 | 9, 0, 30 ; sizes 10 and 20 -> thresholds 2 and 4
    assert D.pck(pred, target, torch.tensor([10.0, 20.0]), alpha=0.2) == pytest.approx(3 / 6)
    vis = torch.tensor([[True, True, False], [True, True, True]])
    assert D.pck(pred, target, torch.tensor([10.0, 20.0]), 0.2, vis) == pytest.approx(2 / 5)
    expected = (0.1 + 0.5 + 0 + 0.45 + 0 + 1.5) / 6
    assert D.nme(pred, target, torch.tensor([10.0, 20.0])) == pytest.approx(expected)


def test_centernet_round_trip():
    boxes = torch.tensor([[8.0, 12.0, 40.0, 30.0], [50.0, 40.0, 62.0, 70.0]])
    labels = torch.tensor([1, 0])
    heat, wh, off = D.render_centernet_targets(boxes, labels, 2, (20, 20), stride=4)
    assert float(heat[1].max()) == 1.0 and float(heat[0].max()) == 1.0
    out = D.decode_centernet(heat[None], wh[None], off[None], stride=4, k=10,
                             score_threshold=0.9)[0]
    order = torch.argsort(out["labels"], descending=True)
    torch.testing.assert_close(out["boxes"][order], boxes)
    assert out["labels"][order].tolist() == [1, 0]


def test_map_matches_pycocotools():
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = torch.Generator().manual_seed(3)
    preds, tgts, images, anns, dets = [], [], [], [], []
    for img_id in range(6):
        g = _random_boxes(rng, 5, spread=80)
        gl = torch.randint(0, 3, (5,), generator=rng)
        jitter = torch.randn(5, 4, generator=rng) * 1.5
        extra = _random_boxes(rng, 4, spread=80)
        p = torch.cat([g + jitter, extra])
        p[:, 2:] = torch.maximum(p[:, 2:], p[:, :2] + 1)
        pl = torch.cat([gl, torch.randint(0, 3, (4,), generator=rng)])
        ps = torch.rand(9, generator=rng)
        preds.append({"boxes": p, "scores": ps, "labels": pl})
        tgts.append({"boxes": g, "labels": gl})
        images.append({"id": img_id, "width": 120, "height": 120})
        for b, c in zip(g.tolist(), gl.tolist(), strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": c,
                         "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
        for b, c, s in zip(p.tolist(), pl.tolist(), ps.tolist(), strict=True):
            dets.append({"image_id": img_id, "category_id": c, "score": s,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": i} for i in range(3)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    res = D.mean_average_precision(preds, tgts)
    assert res["map"] == pytest.approx(ev.stats[0], abs=1e-6)
    assert res["map_50"] == pytest.approx(ev.stats[1], abs=1e-6)
    assert res["map_75"] == pytest.approx(ev.stats[2], abs=1e-6)
