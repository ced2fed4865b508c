"""Models that rule classes out with -infinity logits (masked heads: classes a
dataset or a prompt excludes) are explained, not refused as diverged.

Reference: such a model's softmax is the softmax over the classes it keeps, so its
maps equal those of the same network with the ruled-out outputs removed.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from boda.errors import InvalidParameterError, ModelError
from boda.explain import GradCAM, GradCAMPlusPlus, Occlusion, Saliency, ScoreCAM
from boda.explain.metrics import average_drop_increase, deletion_curve

RULED_OUT = 2


class Net(nn.Module):
    def __init__(self, masked: tuple[int, ...] = (), drop: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6, 4)
        self.masked, self.drop = list(masked), drop

    def forward(self, x):
        out = self.fc(F.relu(self.conv(x)).mean((2, 3)))
        if self.drop:  # the reference: the ruled-out outputs are not there at all
            keep = [k for k in range(out.shape[1]) if k not in self.masked]
            return out[:, keep]
        out = out.clone()
        out[:, self.masked] = -torch.inf
        return out


METHODS = {
    "gradcam": lambda m: GradCAM(m, "conv"),
    "gradcam++": lambda m: GradCAMPlusPlus(m, "conv"),
    "scorecam": lambda m: ScoreCAM(m, "conv"),
    "saliency": lambda m: Saliency(m),
    "occlusion": lambda m: Occlusion(m, window=4, stride=2),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_ruled_out_class_leaves_the_others_explainable(name):
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    masked = METHODS[name](Net((RULED_OUT,)).eval())(x, target=3)
    reference = METHODS[name](Net((RULED_OUT,), drop=True).eval())(x, target=2)  # 3 -> 2
    assert torch.isfinite(masked).all() and masked.amax() > 0
    torch.testing.assert_close(masked, reference, rtol=1e-4, atol=1e-5)


def test_the_predicted_class_is_never_a_ruled_out_one():
    x = torch.rand(3, 3, 12, 12)
    cam = GradCAM(Net((0, 1, 3)).eval(), "conv")
    cam(x)
    assert cam.classes.tolist() == [RULED_OUT] * 3


def test_the_ruled_out_class_as_target_is_refused_with_the_reason():
    with pytest.raises(InvalidParameterError, match=r"rules out the target class .* \[0, 1\]"):
        GradCAM(Net((RULED_OUT,)).eval(), "conv")(torch.rand(2, 3, 8, 8), target=RULED_OUT)


def test_every_class_ruled_out_or_nan_is_still_a_diverged_model():
    for masked in [(0, 1, 2, 3)]:
        with pytest.raises(ModelError, match="not finite"):
            GradCAM(Net(masked).eval(), "conv")(torch.rand(1, 3, 8, 8))
    model = Net().eval()
    with torch.no_grad():
        model.fc.bias[1] = float("inf")  # +inf is no probability either
    with pytest.raises(ModelError, match="not finite"):
        GradCAM(model, "conv")(torch.rand(1, 3, 8, 8))
    with pytest.raises(ModelError, match="not finite"):
        GradCAM(model, "conv")(torch.rand(1, 3, 8, 8), target=lambda out: out[:, 0])


def test_metrics_take_masked_models_too():
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    maps = torch.rand(2, 12, 12, generator=torch.Generator().manual_seed(3))
    masked, dropped = Net((RULED_OUT,)).eval(), Net((RULED_OUT,), drop=True).eval()
    got = deletion_curve(masked, x, maps, target=3, steps=6)
    want = deletion_curve(dropped, x, maps, target=2, steps=6)
    torch.testing.assert_close(torch.as_tensor(got.auc), torch.as_tensor(want.auc))
    drop, _ = average_drop_increase(masked, x, maps, target=3)
    want_drop, _ = average_drop_increase(dropped, x, maps, target=2)
    assert drop == pytest.approx(want_drop)
