"""boda.detect with half and double precision, integer scores, and CenterNet /
landmark inputs that used to give silent wrong results or raw errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from boda.detect import (  # noqa: E402
    box_area,
    box_iou,
    decode_centernet,
    decode_heatmaps,
    matched_box_iou,
    nme,
    pck,
    render_centernet_targets,
    render_heatmaps,
    soft_nms,
)
from boda.errors import InvalidParameterError  # noqa: E402

torch.set_num_threads(1)

# pixel boxes whose areas (90 000) overflow float16 (largest value 65 504)
BIG = [[0.0, 0, 300, 300], [100, 100, 400, 400], [20, 10, 290, 310]]


# ----------------------------------------------------------------- half-precision IoU


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_box_iou_of_half_pixel_boxes(dtype):
    b = torch.tensor(BIG, dtype=dtype)
    ref = box_iou(b.double(), b.double())
    ours = box_iou(b, b)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours.double(), ref, atol=2e-3, rtol=0)
    assert torch.all(ours.diagonal() == 1)
    m = matched_box_iou(b, b.flip(0))
    assert m.dtype == dtype
    torch.testing.assert_close(m.double(), matched_box_iou(b.double(), b.flip(0).double()),
                               atol=2e-3, rtol=0)


def test_box_area_of_float16_boxes_is_float32():
    area = box_area(torch.tensor(BIG, dtype=torch.float16))
    assert area.dtype == torch.float32
    assert area.tolist() == [90000.0, 90000.0, 81000.0]


# ----------------------------------------------------------------- soft-NMS scores


def test_soft_nms_keeps_fractional_scores_of_integer_input():
    b = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    keep_i, s_i = soft_nms(b, torch.tensor([3, 2, 1]), sigma=0.5)
    keep_f, s_f = soft_nms(b, torch.tensor([3.0, 2.0, 1.0]), sigma=0.5)
    assert torch.equal(keep_i, keep_f)
    assert s_i.dtype == torch.float32
    torch.testing.assert_close(s_i, s_f)
    assert 0 < float(s_i[-1]) < 1  # the decayed score, not truncated to 0


def test_soft_nms_float64_scores_decay_in_float64():
    b = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]], dtype=torch.float64)
    s = torch.tensor([0.9, 0.8], dtype=torch.float64)
    _, out = soft_nms(b, s, sigma=0.5)
    iou = float(box_iou(b[:1], b[1:])[0, 0])
    assert out.dtype == torch.float64
    assert out[1].item() == pytest.approx(0.8 * torch.exp(torch.tensor(-(iou**2) / 0.5,
                                                                       dtype=torch.float64)).item(),
                                          rel=1e-14)


# ----------------------------------------------------------------- heatmaps in float64


def test_render_heatmaps_keeps_float64_and_passes_gradcheck():
    pts = torch.tensor([[5.25, 6.5], [1.0, 2.75]], dtype=torch.float64, requires_grad=True)
    assert render_heatmaps(pts, (8, 8)).dtype == torch.float64
    assert render_heatmaps(pts.float(), (8, 8)).dtype == torch.float32
    assert torch.autograd.gradcheck(lambda p: render_heatmaps(p, (8, 8), 1.5), (pts,))


def test_soft_argmax_keeps_float64_and_passes_gradcheck():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 2, 6, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert decode_heatmaps(logits, "soft_argmax").dtype == torch.float64
    assert decode_heatmaps(logits, "quadratic").dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: decode_heatmaps(x, "soft_argmax"), (logits,))


def test_decode_heatmaps_refuses_nan_maps():
    with pytest.raises(InvalidParameterError, match="NaN"):
        decode_heatmaps(torch.full((1, 1, 4, 4), float("nan")))



@pytest.mark.parametrize("method", ["quadratic", "argmax", "soft_argmax"])
def test_decode_heatmaps_refuses_empty_maps(method):
    # a 0-pixel map was torch's "cannot reshape tensor of 0 elements" error
    with pytest.raises(InvalidParameterError, match="H, W >= 1"):
        decode_heatmaps(torch.zeros(1, 2, 0, 5), method)
    assert decode_heatmaps(torch.zeros(0, 2, 3, 5), method).shape == (0, 2, 2)

@pytest.mark.parametrize("size", [(0, -3), (4,), (2.5, 3)])
def test_render_heatmaps_refuses_bad_size(size):
    with pytest.raises(InvalidParameterError, match="size"):
        render_heatmaps(torch.zeros(1, 2), size)


def test_nme_and_pck_refuse_a_normalizer_of_the_wrong_length():
    p, t = torch.ones(2, 3, 2), torch.zeros(2, 3, 2)
    for metric in (nme, pck):
        with pytest.raises(InvalidParameterError, match="normalizer"):
            metric(p, t, torch.tensor([1.0, 2.0, 3.0]))
    assert nme(p, t, torch.tensor([1.0, 2.0])) == pytest.approx((2**0.5 + 2**0.5 / 2) / 2)


def test_pck_with_no_visible_landmark_is_an_error_not_nan():
    z = torch.zeros(1, 2, 2)
    with pytest.raises(InvalidParameterError, match="visible"):
        pck(z, z, 1.0, visible=torch.zeros(1, 2, dtype=torch.bool))
    assert pck(z, z, 1.0, visible=torch.tensor([[True, False]])) == 1.0


# ----------------------------------------------------------------- CenterNet


BOX = torch.tensor([[10.0, 20, 50, 60]])


@pytest.mark.parametrize("label", [-1, 3])
def test_centernet_refuses_labels_outside_the_classes(label):
    with pytest.raises(InvalidParameterError, match=r"labels must lie in \[0, 2\]"):
        render_centernet_targets(BOX, torch.tensor([label]), num_classes=3, size=(32, 32))


def test_centernet_refuses_bad_boxes_and_labels():
    with pytest.raises(InvalidParameterError, match=r"\(N, 4\)"):
        render_centernet_targets(torch.rand(2, 5) * 20, torch.tensor([0, 1]), 2, (8, 8))
    with pytest.raises(InvalidParameterError, match="labels"):
        render_centernet_targets(BOX, torch.tensor([0.0]), 2, (8, 8))
    with pytest.raises(InvalidParameterError, match="labels"):
        render_centernet_targets(BOX, torch.tensor([0, 1]), 2, (8, 8))


def test_centernet_centre_just_outside_the_map_is_left_out():
    # centre x = -1 px = -0.25 cells: outside, not cell 0 with offset -0.25
    heat, wh, off = render_centernet_targets(
        torch.tensor([[-4.0, 4, 2, 12]]), torch.tensor([0]), 1, (8, 8)
    )
    assert heat.max() == 0 and wh.abs().max() == 0 and off.abs().max() == 0
    _, _, off = render_centernet_targets(
        torch.tensor([[0.0, 4, 2, 12], [3.0, 3, 9, 9]]), torch.tensor([0, 0]), 1, (8, 8)
    )
    assert off.min() >= 0 and off.max() < 1


def test_decode_centernet_refuses_an_offset_map_of_another_size():
    h = torch.zeros(1, 1, 3, 3)
    h[0, 0, 1, 1] = 0.9
    with pytest.raises(InvalidParameterError, match="offset"):
        decode_centernet(h, torch.ones(1, 2, 3, 3), offset=torch.zeros(1, 2, 4, 4))
    out = decode_centernet(h, torch.ones(1, 2, 3, 3), offset=torch.full((1, 2, 3, 3), 0.5))
    assert out[0]["boxes"].tolist() == [[5.5, 5.5, 6.5, 6.5]]
