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
