"""Training blocks at their edges: exact thresholds, saturated probabilities, tiny images.

Each case here was once a wrong number against a reference, a NaN gradient or
a raw error on valid input.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from boda import augment as A  # noqa: E402
from boda.detect import (  # noqa: E402
    batched_nms,
    decode_heatmaps,
    mean_average_precision,
    nms,
    render_heatmaps,
)
from boda.errors import InvalidParameterError  # noqa: E402
from boda.nn.losses import (  # noqa: E402
    MoCoLoss,
    cross_entropy,
    distillation_loss,
    focal_loss,
    sigmoid_focal_loss,
    style_loss,
)


def _coco_map(gt_boxes, det_boxes, det_scores) -> float:
    """pycocotools' mAP for one image and one class (boxes x1, y1, x2, y2)."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [b[0], b[1], b[2] - b[0], b[3] - b[1]]

    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": xywh(b),
             "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0}
            for i, b in enumerate(gt_boxes)
        ],
    }  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dets = gt.loadRes([
            {"image_id": 1, "category_id": 1, "bbox": xywh(b), "score": s}
            for b, s in zip(det_boxes, det_scores, strict=True)
        ])  # fmt: skip
        ev = COCOeval(gt, dets, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def _boda_map(gt_boxes, det_boxes, det_scores) -> float:
    pred = [{"boxes": torch.tensor(det_boxes, dtype=torch.float64),
             "scores": torch.tensor(det_scores), "labels": torch.ones(len(det_boxes), dtype=int)}]
    tgt = [{"boxes": torch.tensor(gt_boxes, dtype=torch.float64),
            "labels": torch.ones(len(gt_boxes), dtype=int)}]  # fmt: skip
    return mean_average_precision(pred, tgt)["map"]


@pytest.mark.parametrize("height", [9.0, 7.0, 6.5, 9.5])  # IoU exactly 0.9, 0.7, 0.65, 0.95
def test_map_counts_an_iou_exactly_on_a_threshold_as_pycocotools_does(height):
    gt, det = [[0.0, 0, 10, 10]], [[0.0, 0, 10, height]]
    assert _boda_map(gt, det, [0.9]) == pytest.approx(_coco_map(gt, det, [0.9]), abs=1e-9)


def test_map_keeps_the_100_best_detections_per_image_like_cocoeval():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 200, (120, 2))
    gt = [[x, y, x + 10, y + 10] for x, y in corners.tolist()]
    scores = rng.uniform(0.1, 1.0, 120).tolist()
    expected = _coco_map(gt, gt, scores)
    assert expected < 0.9  # the cap matters here: 20 boxes are never found
    assert _boda_map(gt, gt, scores) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.9])
def test_focal_losses_keep_finite_gradients_for_gamma_below_one(gamma):
    logits = torch.tensor([[30.0, 0.0], [0.0, 1.0]], requires_grad=True)
    focal_loss(logits, torch.tensor([0, 0]), gamma=gamma).backward()
    assert torch.isfinite(logits.grad).all()
    z = torch.tensor([40.0, -40.0, 0.3], requires_grad=True)
    sigmoid_focal_loss(z, torch.tensor([1.0, 0.0, 1.0]), gamma=gamma).backward()
    assert torch.isfinite(z.grad).all()
    # Away from saturation the value is the formula's.
    x = torch.tensor([[0.2, -0.4, 1.0]], dtype=torch.float64)
    p = x.softmax(1)[0, 2]
    expected = -(1 - p) ** gamma * torch.log(p)
    torch.testing.assert_close(focal_loss(x, torch.tensor([2]), gamma=gamma, alpha=None),
                               expected)  # fmt: skip


def test_distillation_with_a_teacher_that_rules_out_a_class():
    student = torch.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    teacher = torch.tensor([[2.0, 1.0, float("-inf")]])
    loss = distillation_loss(student, teacher, temperature=2.0)
    reference = torch.nn.functional.kl_div(
        (student / 2).log_softmax(1), (teacher / 2).softmax(1), reduction="batchmean"
    ) * 4
    torch.testing.assert_close(loss, reference)
    loss.backward()
    assert torch.isfinite(student.grad).all()


@pytest.mark.parametrize(("h", "w", "sigma"), [(5, 5, 2.0), (1, 7, 1.5), (2, 9, 3.0), (12, 3, 2.5)])
def test_torch_blur_matches_numpy_when_the_kernel_is_wider_than_the_image(h, w, sigma):
    image = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    out = A.gaussian_blur(tensor, sigma)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, A.gaussian_blur(image, sigma), atol=1e-6)


def test_nearest_sampling_is_the_same_in_numpy_and_torch():
    row = np.arange(8, dtype=np.float32).reshape(1, 8, 1).repeat(3, axis=2)
    out_np, transform = A.resized_crop(row, 0, 0, 1, 8, (1, 4), order=0)
    tensor = torch.from_numpy(row).permute(2, 0, 1)[None].contiguous()
    out_t, _ = A.resized_crop(tensor, 0, 0, 1, 8, (1, 4), order=0)
    assert out_np[0, :, 0].tolist() == out_t[0, 0, 0].tolist() == [1, 3, 5, 7]
    assert transform.mask(np.arange(8).reshape(1, 8))[0].tolist() == [1, 3, 5, 7]
    rng = np.random.default_rng(1)
    image = rng.random((17, 23, 3)).astype(np.float32)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    for _ in range(20):
        m = A.affine_matrix((17, 23), angle=rng.uniform(-40, 40), scale=rng.uniform(0.4, 2.5))
        for border in ("zeros", "edge"):
            a = A.warp_affine(image, m, (19, 21), order=0, border=border)
            b = A.warp_affine_torch(tensor, m, (19, 21), order=0, border=border)
            np.testing.assert_array_equal(a, b[0].permute(1, 2, 0).numpy())


def test_torch_grayscale_can_be_edited_in_place():
    gray = A.grayscale(torch.rand(2, 3, 4, 4))
    gray.sub_(0.5)  # an expanded view would refuse this
    assert torch.equal(gray[:, 0], gray[:, 2])


def test_nms_takes_low_precision_boxes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    for dtype in (torch.bfloat16, torch.float16):
        assert nms(boxes.to(dtype), scores, 0.5).tolist() == [0, 2]
        kept = batched_nms(boxes.to(dtype), scores, torch.tensor([0, 0, 1]), 0.5)
        assert kept.tolist() == [0, 2]


def test_raw_errors_became_clear_ones():
    image = np.zeros((60, 80, 3), np.float32)
    with pytest.raises(InvalidParameterError, match="must be positive"):
        A.resized_crop(image, 0, 0, 0, 10, (5, 5))
    with pytest.raises(InvalidParameterError, match="must be positive"):
        A.resized_crop(image, 0, 0, 10, 10, (0, 5))
    with pytest.raises(InvalidParameterError, match="size must be positive"):
        A.random_resized_crop_params((0, 10))
    with pytest.raises(InvalidParameterError, match="target batch"):
        style_loss(torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8), lambda t: t)


def test_small_integer_targets_and_float64_moco_work():
    logits = torch.randn(3, 4)
    reference = cross_entropy(logits, torch.tensor([0, 1, 3]))
    for dtype in (torch.uint8, torch.int16, torch.int32):
        target = torch.tensor([0, 1, 3], dtype=dtype)
        torch.testing.assert_close(cross_entropy(logits, target), reference)
        assert torch.isfinite(focal_loss(logits, target))
    moco = MoCoLoss(4, 8)
    q, k = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    assert moco(q, k).dtype == torch.float64


@pytest.mark.parametrize("point", [(10.3, 12.45), (0.3, 10.2), (38.7, 10.2), (5.0, 0.4)])
@pytest.mark.parametrize("sigma", [0.2, 0.5, 2.0])
def test_quadratic_decoding_is_exact_for_gaussians_also_at_the_border(point, sigma):
    heat = render_heatmaps(torch.tensor([point]), (32, 40), sigma)
    decoded = decode_heatmaps(heat[None], "quadratic")[0, 0]
    torch.testing.assert_close(decoded, torch.tensor(point), atol=1e-3, rtol=0)
