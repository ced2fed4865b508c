"""boda.detect audit (session 25): bad inputs that gave silent wrong answers or raw
torch / Python errors, and hand-computed mAP edge cases."""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")

from boda import detect as D  # noqa: E402
from boda.errors import InvalidParameterError  # noqa: E402

torch.set_num_threads(1)

NAN, INF = float("nan"), float("inf")
BOX = [[0.0, 0, 10, 10]]


def _pred(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.long),
    }


def _tgt(boxes, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.long),
    }


# ----------------------------------------------------------------- boxes and NMS


@pytest.mark.parametrize("bad", [NAN, INF])
@pytest.mark.parametrize("fn", ["nms", "soft_nms", "batched_nms"])
def test_suppression_refuses_non_finite_boxes(fn, bad):
    # NaN boxes were kept (IoU 0 with everything), with a numpy RuntimeWarning
    boxes = torch.tensor([[0.0, 0, 10, 10], [bad, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8])
    args = (boxes, scores, torch.tensor([0, 0])) if fn == "batched_nms" else (boxes, scores)
    with pytest.raises(InvalidParameterError, match="row 1"):
        getattr(D, fn)(*args)


def test_soft_nms_takes_a_numeric_string_sigma_it_accepted():
    # the check accepted "0.5" (as finite_float does), then the division raised TypeError
    b = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]])
    s = torch.tensor([0.9, 0.8])
    torch.testing.assert_close(D.soft_nms(b, s, sigma="0.5")[1], D.soft_nms(b, s, sigma=0.5)[1])


def test_match_anchors_without_boxes_answers_on_the_input_device():
    # the early return for "no ground truth" built its answer on the CPU
    meta = torch.zeros(0, 4, device="meta")
    assert D.match_anchors(meta, meta).device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_soft_nms_answers_on_the_gpu():
    b = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]], device="cuda")
    keep, scores = D.soft_nms(b, torch.tensor([0.9, 0.8], device="cuda"))
    assert keep.device.type == "cuda" and scores.device.type == "cuda"


def test_match_anchors_refuses_nan_ground_truth():
    # a NaN ground-truth box overlapped nothing: every anchor silently background
    with pytest.raises(InvalidParameterError, match="gt_boxes"):
        D.match_anchors(torch.tensor(BOX), torch.tensor([[NAN, 0, 10, 10]]))


@pytest.mark.parametrize(
    "pos, neg", [(NAN, 0.3), (7, 3), (0.7, -1), (0.7, NAN), ("a", 0.3)]
)
def test_match_anchors_refuses_thresholds_outside_0_1(pos, neg):
    # percentages (7, 3) made every anchor ignored or negative, silently
    with pytest.raises(InvalidParameterError, match="IoU in \\[0, 1\\]"):
        D.match_anchors(torch.tensor(BOX), torch.tensor(BOX), pos, neg)


def test_encode_boxes_refuses_non_finite_boxes():
    a = torch.tensor(BOX)
    # inf gave inf deltas; NaN was reported as "an empty box"
    for bad in ([[0.0, 0, INF, 10]], [[NAN, 0, 10, 10]]):
        with pytest.raises(InvalidParameterError, match="NaN or infinite"):
            D.encode_boxes(torch.tensor(bad), a)


@pytest.mark.parametrize(
    "sizes", [[(-1, 2)], [(2,)], [(2.5, 2)], [3]]
)
def test_generate_anchors_refuses_bad_feature_sizes(sizes):
    # were torch RuntimeError / ValueError / TypeError, or fractional grids
    with pytest.raises(InvalidParameterError, match="feature size"):
        D.generate_anchors(sizes, [16] * len(sizes), [32.0])


def test_generate_anchors_refuses_empty_scales_and_ratios_and_takes_one_number():
    # empty lists silently gave no anchors at all
    for kwargs in ({"scales": []}, {"scales": [32.0], "aspect_ratios": []}):
        with pytest.raises(InvalidParameterError, match="non-empty"):
            D.generate_anchors([(2, 2)], [16], **kwargs)
    # one number was a TypeError (len() of an int)
    assert torch.equal(
        D.generate_anchors([(2, 3)], [16], 32), D.generate_anchors([(2, 3)], [16], [32.0])
    )


def test_decode_boxes_extreme_deltas_stay_finite_in_size():
    # guard: tw/th clamp at log(1000/16) (Detectron), -inf-like deltas collapse to a point
    a = torch.tensor(BOX)
    out = D.decode_boxes(torch.tensor([[0.0, 0, 1e30, -1e30]]), a)
    w, h = float(out[0, 2] - out[0, 0]), float(out[0, 3] - out[0, 1])
    assert w == pytest.approx(10 * 1000 / 16, rel=1e-5) and h == 0.0


# ----------------------------------------------------------------- mAP


def test_map_refuses_nan_scores():
    # a NaN score sorted anywhere: here AP came out 1.0 whatever the order
    pred = [_pred(BOX * 2, [NAN, 0.5], [1, 1])]
    with pytest.raises(InvalidParameterError, match="prediction 0: scores hold NaN"):
        D.mean_average_precision(pred, [_tgt(BOX, [1])])


@pytest.mark.parametrize("who", ["prediction", "target"])
def test_map_refuses_non_finite_boxes_naming_the_image(who):
    bad = [[NAN, 0, 10, 10]]
    pred = [_pred(BOX, [0.9], [1]), _pred(bad if who == "prediction" else BOX, [0.9], [1])]
    tgt = [_tgt(BOX, [1]), _tgt(bad if who == "target" else BOX, [1])]
    with pytest.raises(InvalidParameterError, match=f"{who} 1: boxes hold NaN"):
        D.mean_average_precision(pred, tgt)


def test_map_names_the_image_with_badly_shaped_boxes():
    # the error spoke of "boxes1" / "boxes2", internal names of box_iou
    pred = [{"boxes": torch.zeros(1, 3), "scores": torch.ones(1), "labels": torch.ones(1)}]
    with pytest.raises(InvalidParameterError, match="prediction 0: boxes must be \\(N, 4\\)"):
        D.mean_average_precision(pred, [_tgt(BOX, [1])])


@pytest.mark.parametrize("bad", [50, 1.5, -0.1, NAN])
def test_average_precision_refuses_an_iou_threshold_outside_0_1(bad):
    # 50 (a percentage) gave AP 0.0 silently
    with pytest.raises(InvalidParameterError, match="iou_threshold"):
        D.average_precision([_pred(BOX, [0.9], [1])], [_tgt(BOX, [1])], 1, bad)


@pytest.mark.parametrize("bad", [[], [0.5, 75], 0.5])
def test_mean_average_precision_refuses_bad_threshold_lists(bad):
    # [] gave NaN with numpy warnings; 75 an AP of 0 for that threshold
    with pytest.raises(InvalidParameterError, match="iou_threshold"):
        D.mean_average_precision([_pred(BOX, [0.9], [1])], [_tgt(BOX, [1])], bad)


def test_mean_average_precision_checks_method_without_ground_truth():
    # a typo went unnoticed when no image had a ground-truth box
    with pytest.raises(InvalidParameterError, match="method"):
        D.mean_average_precision([_pred([], [], [])], [_tgt([], [])], method="cooc")


def test_map_without_ground_truth_is_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" for map_50 / map_75
        out = D.mean_average_precision([_pred(BOX, [0.9], [1])], [_tgt([], [])])
    assert set(out) == {"map", "map_50", "map_75"}
    assert all(math.isnan(v) for v in out.values())


@pytest.mark.parametrize("method", ["coco", "voc"])
def test_map_hand_computed_false_positive_first(method):
    # ranked FP (0.9) then TP (0.8), one object: precision (0, 1/2) at recall (0, 1);
    # the interpolated envelope is 1/2 everywhere: COCO 101 points and VOC area both 0.5
    pred = [_pred([[50.0, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8], [1, 1])]
    out = D.mean_average_precision(pred, [_tgt(BOX, [1])], method=method)
    assert out["map"] == pytest.approx(0.5)
    # no detection at all: AP 0 (not NaN) for a class with ground truth
    empty = D.mean_average_precision([_pred([], [], [])], [_tgt(BOX, [1])], method=method)
    assert empty["map"] == 0.0


# ----------------------------------------------------------------- landmarks


@pytest.mark.parametrize("metric", ["pck", "nme"])
@pytest.mark.parametrize("norm", [0.0, -1.0, NAN, INF, [0.0, 10.0]])
def test_pck_nme_refuse_zero_negative_and_non_finite_normalizers(metric, norm):
    # NME was inf / NaN / negative, PCK counted only exact hits
    z = torch.zeros(2, 3, 2)
    with pytest.raises(InvalidParameterError, match="finite and > 0"):
        getattr(D, metric)(z + 1, z, torch.tensor(norm) if isinstance(norm, list) else norm)


@pytest.mark.parametrize("metric", ["pck", "nme"])
def test_pck_nme_refuse_no_landmarks(metric):
    z = torch.zeros(0, 3, 2)  # was NaN
    with pytest.raises(InvalidParameterError, match="no landmarks"):
        getattr(D, metric)(z, z, 1.0)


def test_pck_refuses_a_non_numeric_normalizer_and_alpha():
    z = torch.zeros(2, 3, 2)
    with pytest.raises(InvalidParameterError, match="normalizer"):
        D.pck(z, z, "a")  # was a torch TypeError
    with pytest.raises(InvalidParameterError, match="alpha"):
        D.pck(z, z, 1.0, alpha=-0.2)  # was 0.0


def test_pck_skips_the_size_of_samples_without_visible_landmarks():
    # guard: PCKh with no head box (size 0) for a sample whose joints are all invisible
    z = torch.zeros(2, 3, 2)
    visible = torch.tensor([[True, True, False], [False, False, False]])
    assert D.pck(z + 0.1, z, torch.tensor([1.0, 0.0]), visible=visible) == 1.0
    with pytest.raises(InvalidParameterError, match="sample 0"):
        D.pck(z + 0.1, z, torch.tensor([0.0, 1.0]), visible=visible)


def test_render_heatmaps_refuses_nan_points_and_infinite_sigma():
    with pytest.raises(InvalidParameterError, match="NaN"):
        D.render_heatmaps(torch.tensor([[NAN, 1.0]]), (3, 3))  # was a NaN map
    with pytest.raises(InvalidParameterError, match="sigma"):
        D.render_heatmaps(torch.tensor([[1.0, 1.0]]), (3, 3), sigma=INF)  # was all ones
    # an infinite point (a missing landmark) still renders an all-zero map
    assert float(D.render_heatmaps(torch.tensor([[INF, 1.0]]), (3, 3)).abs().max()) == 0.0


def test_render_heatmaps_keeps_the_gradient_of_a_tensor_sigma():
    sigma = torch.tensor(1.5, requires_grad=True)
    D.render_heatmaps(torch.tensor([[1.0, 1.0]]), (4, 4), sigma=sigma).sum().backward()
    assert sigma.grad is not None and float(sigma.grad) > 0


def test_soft_argmax_refuses_a_nan_beta():
    with pytest.raises(InvalidParameterError, match="beta"):
        D.decode_heatmaps(torch.zeros(1, 3, 3), "soft_argmax", beta=NAN)  # was (nan, nan)


# ----------------------------------------------------------------- CenterNet


@pytest.mark.parametrize("bad", [NAN, INF])
def test_centernet_targets_refuse_non_finite_boxes(bad):
    # math.floor raised a bare ValueError / OverflowError
    with pytest.raises(InvalidParameterError, match="NaN or infinite"):
        D.render_centernet_targets(torch.tensor([[0, 0, bad, 10]]), torch.tensor([0]), 2, (8, 8))


def test_centernet_targets_refuse_inverted_boxes_and_bad_sigma_scale():
    one = torch.tensor([0])
    # an (x2 < x1) box wrote a negative width into the size target
    with pytest.raises(InvalidParameterError, match="x2 >= x1"):
        D.render_centernet_targets(torch.tensor([[10.0, 10, 0, 0]]), one, 2, (8, 8))
    for bad in (NAN, -1.0, 0.0):  # NaN heatmaps, or silently the 0.5-cell floor
        with pytest.raises(InvalidParameterError, match="sigma_scale"):
            D.render_centernet_targets(torch.tensor(BOX), one, 2, (8, 8), sigma_scale=bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"k": -1}, "k \\(peaks"), ({"k": 0}, "k \\(peaks"), ({"stride": 0}, "stride"),
     ({"stride": NAN}, "stride")],
)
def test_decode_centernet_refuses_bad_k_and_stride(kwargs, match):
    # k=-1 was a torch RuntimeError, stride=0 gave zero-size boxes at the origin
    with pytest.raises(InvalidParameterError, match=match):
        D.decode_centernet(torch.rand(1, 2, 4, 4), torch.ones(1, 2, 4, 4), **kwargs)


def test_decode_centernet_refuses_non_tensors_and_nan_heatmaps():
    with pytest.raises(InvalidParameterError, match="heatmap must be a tensor"):
        D.decode_centernet([[0.5]], torch.zeros(1, 2, 1, 1))  # was AttributeError
    with pytest.raises(InvalidParameterError, match="NaN"):  # was silently no detection
        D.decode_centernet(torch.full((1, 2, 4, 4), NAN), torch.ones(1, 2, 4, 4))


def test_decode_centernet_of_an_empty_batch_is_an_empty_list():
    # reshape(0, -1) raised a torch RuntimeError
    assert D.decode_centernet(torch.zeros(0, 2, 4, 4), torch.zeros(0, 2, 4, 4)) == []
