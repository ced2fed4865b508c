"""NMS against a brute-force greedy loop: identical kept indices, ties as documented.

The reference is the textbook algorithm on Python floats: visit boxes by
decreasing score (equal scores: lower index first), keep a box unless a kept box
overlaps it with IoU strictly greater than the threshold. Boxes are float64 so
the reference's Python arithmetic is the same IEEE arithmetic as boda's; float32
boxes are checked against the same loop run on ``box_iou``'s float32 matrix.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from boda import detect as D  # noqa: E402
from boda.errors import InvalidParameterError  # noqa: E402

torch.set_num_threads(1)


def _iou_py(a, b):
    """IoU on Python floats; 0 when the union is empty (as ``box_iou``)."""
    area_a = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
    area_b = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _order(scores):
    s = scores.tolist()
    return sorted(range(len(s)), key=lambda i: (-s[i], i))


def _nms_ref(boxes, scores, thr, iou=None):
    """Brute-force greedy NMS. ``iou(i, j)`` defaults to :func:`_iou_py`."""
    b = boxes.tolist()
    iou = iou or (lambda i, j: _iou_py(b[i], b[j]))
    keep = []
    for i in _order(scores):
        if all(iou(k, i) <= thr for k in keep):
            keep.append(i)
    return keep


def _batched_ref(boxes, scores, classes, thr):
    keep = []
    for c in sorted(set(classes.tolist())):
        idx = torch.nonzero(classes == c).flatten()
        keep += [int(idx[i]) for i in _nms_ref(boxes[idx], scores[idx], thr)]
    s = scores.tolist()
    return sorted(keep, key=lambda i: (-s[i], i))


def _clustered(gen, n, clusters, extent=200.0, dtype=torch.float64):
    """Boxes jittered around a few centres, with exact duplicates and degenerate boxes."""
    centre = torch.rand(clusters, 2, generator=gen, dtype=dtype) * extent
    size = 4 + torch.rand(clusters, 2, generator=gen, dtype=dtype) * 40
    which = torch.randint(0, clusters, (n,), generator=gen)
    c = centre[which] + torch.randn(n, 2, generator=gen, dtype=dtype) * 3
    wh = size[which] * (0.7 + 0.6 * torch.rand(n, 2, generator=gen, dtype=dtype))
    boxes = torch.cat([c - wh / 2, c + wh / 2], 1)
    if n >= 10:
        boxes[1] = boxes[0]  # exact duplicate
        boxes[2, 2] = boxes[2, 0]  # zero width
        boxes[3, 2:] = boxes[3, :2]  # a point
        boxes[4] = boxes[5]
    return boxes


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_equals_brute_force_on_clustered_boxes(gen, thr):
    for n, clusters in [(60, 4), (150, 10), (300, 40)]:
        boxes = _clustered(gen, n, clusters)
        scores = torch.rand(n, generator=gen, dtype=torch.float64)
        assert D.nms(boxes, scores, thr).tolist() == _nms_ref(boxes, scores, thr)


def test_nms_ties_in_scores_go_to_the_lower_index(gen):
    boxes = _clustered(gen, 200, 8)
    scores = torch.randint(0, 4, (200,), generator=gen).double() / 4  # many equal scores
    keep = D.nms(boxes, scores, 0.4).tolist()
    assert keep == _nms_ref(boxes, scores, 0.4)
    # identical boxes with equal scores: only the first index survives
    same = torch.tensor([[0.0, 0, 10, 10]]).repeat(5, 1)
    assert D.nms(same, torch.ones(5), 0.5).tolist() == [0]
    assert D.nms(same, torch.tensor([1.0, 2, 2, 1, 2]), 0.5).tolist() == [1]


def test_nms_iou_equal_to_threshold_is_not_suppressed():
    # IoU of these pairs is exactly 1/2 and 1/4 (dyadic, no rounding anywhere)
    boxes = torch.tensor([[0.0, 0, 2, 1], [0, 0, 1, 1], [0, 0, 4, 1]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert D.nms(boxes, scores, 0.5).tolist() == [0, 1, 2]
    assert D.nms(boxes, scores, 0.49).tolist() == [0]
    assert D.nms(boxes[1:], scores[1:], 0.25).tolist() == [0, 1]  # IoU exactly 1/4
    assert D.nms(boxes[1:], scores[1:], 0.2499).tolist() == [0]
    # a threshold that is not representable in float32 is compared exactly
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 3]])
    iou = float(D.box_iou(boxes[:1], boxes[1:]))  # float32(0.3) > 0.3
    assert iou > 0.3
    assert D.nms(boxes, torch.tensor([1.0, 0.5]), 0.3).tolist() == [0]
    assert D.nms(boxes, torch.tensor([1.0, 0.5]), iou).tolist() == [0, 1]


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 12), st.integers(0, 12), st.integers(0, 6), st.integers(0, 6),
            st.integers(0, 3),
        ),
        min_size=0,
        max_size=40,
    ),
    st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 0.6, 1.0]),
)
def test_nms_equals_brute_force_on_integer_grids(rows, thr):
    """Small integer boxes: many exact duplicates, IoU ties at the threshold, zero areas."""
    t = torch.tensor([list(r) for r in rows], dtype=torch.float64).reshape(-1, 5)
    boxes = torch.cat([t[:, :2], t[:, :2] + t[:, 2:4]], 1)
    scores = t[:, 4] / 4
    assert D.nms(boxes, scores, thr).tolist() == _nms_ref(boxes, scores, thr)
    classes = (t[:, 0] % 3).long()
    assert D.batched_nms(boxes, scores, classes, thr).tolist() == _batched_ref(
        boxes, scores, classes, thr
    )


def test_nms_float32_equals_the_loop_over_box_iou(gen):
    boxes = _clustered(gen, 400, 30, dtype=torch.float32)
    scores = torch.rand(400, generator=gen)
    mat = D.box_iou(boxes, boxes).tolist()
    for thr in (0.3, 0.5):
        ref = _nms_ref(boxes, scores, thr, iou=lambda i, j: mat[i][j])
        assert D.nms(boxes, scores, thr).tolist() == ref


def test_nms_zero_and_one_box():
    empty = torch.zeros(0, 4)
    assert D.nms(empty, torch.zeros(0), 0.5).tolist() == []
    assert D.nms(empty, torch.zeros(0), 0.5).dtype == torch.long
    assert D.batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long)).tolist() == []
    one = torch.tensor([[1.0, 2, 3, 4]])
    assert D.nms(one, torch.tensor([0.3]), 0.5).tolist() == [0]
    assert D.nms(torch.tensor([[1.0, 1, 1, 1]]), torch.tensor([0.3]), 0.0).tolist() == [0]


def test_nms_large_input_matches_dense_loop(gen):
    """Several blocks of the sweep: compare with the greedy loop on the dense matrix."""
    n = 1500
    boxes = _clustered(gen, n, 100, extent=500.0)
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    order = torch.argsort(scores, descending=True, stable=True)
    over = (D.box_iou(boxes[order], boxes[order]) > 0.5).numpy()
    suppressed = over[0] & False
    keep = []
    for i in range(n):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= over[i]
    assert D.nms(boxes, scores, 0.5).tolist() == order[keep].tolist()
    # everything on top of everything: one block removes nearly all
    stacked = torch.tensor([[0.0, 0, 10, 10]]) + torch.rand(n, 4, generator=gen) * 0.5
    s = torch.rand(n, generator=gen)
    assert D.nms(stacked, s, 0.5).tolist() == [int(s.argmax())]


@pytest.mark.parametrize("num_classes", [1, 5, 80])
def test_batched_nms_equals_per_class_brute_force(gen, num_classes):
    boxes = _clustered(gen, 300, 12)
    scores = torch.rand(300, generator=gen, dtype=torch.float64)
    classes = torch.randint(-2, num_classes - 2, (300,), generator=gen)  # negative ids too
    keep = D.batched_nms(boxes, scores, classes, 0.45).tolist()
    assert keep == _batched_ref(boxes, scores, classes, 0.45)


def test_batched_nms_is_not_perturbed_by_far_away_classes():
    # Adding a large class offset to the coordinates (torchvision's trick) rounds
    # them: this pair's IoU would come out 8e-12 above its true value, which is
    # used as the threshold, and the second box would be wrongly suppressed.
    a = [1.4297908624570674, 1.7501461183650937, 3.2919601902500704, 3.0071764020911793]
    b = [1.2988935690968897, 1.903628640859428, 2.726447064109887, 2.779388152903089]
    boxes = torch.tensor([a, b, [1e6, 1e6, 1e6 + 1, 1e6 + 1]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64)
    thr = _iou_py(a, b)
    assert D.batched_nms(boxes, scores, torch.tensor([7, 7, 0]), thr).tolist() == [0, 1, 2]
    assert D.batched_nms(boxes, scores, torch.tensor([7, 7, 0]), thr * 0.999).tolist() == [0, 2]


def test_nms_rejects_bad_arguments():
    b = torch.zeros(2, 4)
    with pytest.raises(InvalidParameterError, match="iou_threshold"):
        D.nms(b, torch.zeros(2), 1.5)
    with pytest.raises(InvalidParameterError, match="scores"):
        D.nms(b, torch.zeros(3), 0.5)
    with pytest.raises(InvalidParameterError, match="integer"):
        D.batched_nms(b, torch.zeros(2), torch.zeros(2), 0.5)
    with pytest.raises(InvalidParameterError, match="classes"):
        D.batched_nms(b, torch.zeros(2), torch.zeros(3, dtype=torch.long), 0.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"iou_threshold": "a"}, {"iou_threshold": float("nan"), "method": "linear"},
     {"sigma": "a"}, {"sigma": float("nan")}, {"score_threshold": "a"},
     {"score_threshold": float("nan")}],
)
def test_soft_nms_refuses_values_that_are_not_numbers(kwargs):
    # were a TypeError / ValueError, or (NaN) silently no suppression at all
    b, s = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]]), torch.tensor([0.9, 0.8])
    with pytest.raises(InvalidParameterError, match=next(iter(kwargs))):
        D.soft_nms(b, s, **kwargs)


def test_nms_threshold_that_is_not_a_number_is_a_boda_error():
    b, s = torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.9])
    for bad in ("a", float("nan"), None):
        with pytest.raises(InvalidParameterError, match="iou_threshold"):
            D.nms(b, s, bad)
    # minus infinity keeps every box, as it always did
    assert D.soft_nms(b, s, score_threshold=-float("inf"))[0].tolist() == [0]


def _soft_ref(boxes, scores, sigma, thr):
    """Gaussian soft-NMS on the float32 ``box_iou`` matrix, ties to the lower index."""
    mat = D.box_iou(boxes, boxes)
    s = scores.clone().float()
    alive = [i for i in range(len(s)) if s[i] >= thr]
    keep = []
    while alive:
        m = max(alive, key=lambda i: (float(s[i]), -i))
        keep.append(m)
        alive.remove(m)
        s = s * torch.exp(-(mat[m] ** 2) / sigma)
        alive = [j for j in alive if s[j] >= thr]
    return keep


def test_soft_nms_with_ties_matches_the_matrix_loop(gen):
    boxes = _clustered(gen, 120, 6, dtype=torch.float32)
    scores = torch.randint(1, 5, (120,), generator=gen).float() / 4
    keep, _ = D.soft_nms(boxes, scores, sigma=0.5, score_threshold=0.05)
    assert keep.tolist() == _soft_ref(boxes, scores, 0.5, 0.05)
