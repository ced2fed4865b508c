"""Tests for boda.explain.metrics: deletion/insertion AUC, Average Drop / Increase."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from boda.errors import InvalidParameterError  # noqa: E402
from boda.explain.metrics import (  # noqa: E402
    average_drop_increase,
    deletion_curve,
    insertion_curve,
    pointing_game,
)


class Linear2(nn.Module):
    """logits = [sum(w * x), 0]: P(class 0) = sigmoid(sum(w * x))."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        s = (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], dim=1)


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 3, 6, 6, generator=g) * 0.3
    x = torch.rand(2, 3, 6, 6, generator=g) + 0.5
    model = Linear2(w).eval()
    contribution = (x * w).sum(1)  # the exact per-pixel evidence for class 0
    return model, x, contribution


def test_deletion_curve_endpoints_auc_and_ordering(setup):
    model, x, good = setup
    res = deletion_curve(model, x, good, target=0, steps=12)
    p = torch.sigmoid((x * model.w).sum(dim=(1, 2, 3))).detach()
    torch.testing.assert_close(res.scores[:, 0], p)
    torch.testing.assert_close(res.scores[:, -1], torch.full((2,), 0.5))  # all pixels zeroed
    np.testing.assert_allclose(
        res.auc.numpy(), np.trapezoid(res.scores.numpy(), res.fractions.numpy(), axis=1), rtol=1e-6
    )
    bad = deletion_curve(model, x, -good, target=0, steps=12)
    assert (res.auc < bad.auc).all()  # the true evidence map deletes faster
    # Chunking the forwards does not change anything.
    torch.testing.assert_close(deletion_curve(model, x, good, 0, steps=12, batch_size=5).scores,
                               res.scores)


def test_insertion_curve_prefers_the_true_map(setup):
    model, x, good = setup
    res = insertion_curve(model, x, good, target=0, steps=12, baseline=0.0)
    torch.testing.assert_close(res.scores[:, 0], torch.full((2,), 0.5))
    assert (res.auc > insertion_curve(model, x, -good, 0, steps=12, baseline=0.0).auc).all()
    blur = insertion_curve(model, x, good, target=0, steps=4)
    assert blur.scores.shape == (2, 5) and torch.isfinite(blur.auc).all()


def test_average_drop_and_increase(setup):
    model, x, _ = setup
    ones = torch.ones(2, 6, 6)
    assert average_drop_increase(model, x, ones, 0) == {"average_drop": 0.0,
                                                        "average_increase": 0.0}
    half = torch.full((2, 6, 6), 0.5)
    s = (x * model.w).sum(dim=(1, 2, 3)).detach()
    y, o = torch.sigmoid(s), torch.sigmoid(0.5 * s)
    expected_drop = float(100 * ((y - o).clamp_min(0) / y).mean())
    expected_inc = float(100 * (y < o).float().mean())
    got = average_drop_increase(model, x, half, 0)
    assert got["average_drop"] == pytest.approx(expected_drop, rel=1e-5)
    assert got["average_increase"] == pytest.approx(expected_inc)
    with pytest.raises(InvalidParameterError):
        average_drop_increase(model, x, ones * 2, 0)
    with pytest.raises(InvalidParameterError, match="shape"):
        deletion_curve(model, x, ones[:, :3], 0)
    # a callable returning a logit below 0: the drop was divided by 1e-12 (percentages of 1e13)
    with pytest.raises(InvalidParameterError, match="scores >= 0"):
        average_drop_increase(model, x, half, lambda logits: logits[:, 1] - 1.0)
    probability = average_drop_increase(model, x, half, lambda logits: logits.softmax(1)[:, 0])
    assert probability["average_drop"] == pytest.approx(expected_drop, rel=1e-5)


# -- synthetic benchmark, shipped CNN, pointing game ---------------------------------------
def test_make_shapes_is_seeded_and_consistent():
    from boda.explain import SHAPE_CLASSES, make_shapes

    a, b = make_shapes(12, seed=3), make_shapes(12, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, make_shapes(12, seed=4).images)
    assert a.images.dtype == np.float32 and a.images.min() >= 0 and a.images.max() <= 1
    assert a.labels.tolist() == [i % len(SHAPE_CLASSES) for i in range(12)]
    for img, mask, box in zip(a.images, a.masks, a.boxes, strict=True):
        ys, xs = np.nonzero(mask)
        assert tuple(box) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        # The object stands out from its surroundings.
        assert np.abs(img[mask].mean(0) - img[~mask].mean(0)).max() > 0.1
    # Shape areas follow the geometry: a cross is smaller than a circle of the same radius.
    big = make_shapes(400, seed=1)
    area = big.masks.sum((1, 2)).astype(float)
    assert area[big.labels == 0].mean() > area[big.labels == 3].mean()


def test_pointing_game():
    maps = torch.zeros(3, 8, 8)
    maps[0, 2, 2] = maps[1, 6, 6] = maps[2, 0, 0] = 1.0
    masks = np.zeros((3, 8, 8), bool)
    masks[:, 1:4, 1:4] = True
    res = pointing_game(maps, masks)
    assert res["hits"].tolist() == [True, False, False] and res["accuracy"] == pytest.approx(1 / 3)
    # (0, 0) is sqrt(2) from the mask corner (1, 1); (6, 6) is sqrt(8) away.
    assert pointing_game(maps, masks, tolerance=1.5)["hits"].tolist() == [True, False, True]
    with pytest.raises(InvalidParameterError):
        pointing_game(maps[:2], masks)


def test_shipped_shapes_cnn_classifies_and_localises():
    from boda.explain import GradCAM, make_shapes
    from boda.nn import image_to_tensor, load_model

    lm = load_model("shapes-cnn")
    ds = make_shapes(200, seed=0)  # never used for training
    x = image_to_tensor(ds.images, mean=lm.mean, std=lm.std)
    y = torch.from_numpy(ds.labels)
    with torch.no_grad():
        acc = float((lm.model(x).argmax(1) == y).float().mean())
    assert acc > 0.9
    maps = GradCAM(lm.model, lm.target_layer)(x, y)
    pg = pointing_game(maps, ds.masks, tolerance=2)["accuracy"]
    rand = pointing_game(torch.rand(200, 32, 32, generator=torch.Generator().manual_seed(0)),
                         ds.masks, tolerance=2)["accuracy"]
    assert pg > 0.8 and pg > rand + 0.3


def test_train_shapes_cnn_is_reproducible():
    from boda.explain import train_shapes_cnn

    a = train_shapes_cnn(epochs=1, per_epoch=100, batch_size=50, seed=7)
    b = train_shapes_cnn(epochs=1, per_epoch=100, batch_size=50, seed=7)
    assert not a.training
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
