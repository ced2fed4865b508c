"""Explainers on models as people write and load them: under ``inference_mode``, with a
``forward`` that stores things, weights edited through ``.data``, single-logit binary
classifiers, and one explainer per image (the inference copy's memory)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from boda.errors import ModelError
from boda.explain import GradCAM, Occlusion, ScoreCAM, _base

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Net(nn.Module):
    """conv -> ReLU -> conv -> ReLU -> GAP -> fc; ``out`` logits."""

    def __init__(self, out: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1)
        self.fc = nn.Linear(12, out)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        features = torch.relu(self.conv2(x))
        self.last_features = features  # kept for the user's own look, as people do
        return self.fc(features.mean(dim=(2, 3)))


def test_a_model_made_under_inference_mode_is_refused_and_left_as_it_was():
    with torch.inference_mode():
        model = Net()
    x = torch.rand(1, 3, 16, 16)
    for method in (GradCAM(model, "conv2"), ScoreCAM(model, "conv2"), Occlusion(model)):
        with pytest.raises(ModelError, match=r"made under torch.inference_mode\(\)"):
            method(x)
        assert all(p.requires_grad for p in model.parameters())
        assert model.training


def test_building_the_inference_copy_leaves_the_models_attributes_alone():
    model = Net().eval()
    x = torch.rand(2, 3, 16, 16)
    explainer = ScoreCAM(model, "conv2")
    explainer.inference_copy, explainer.inference_min_forwards = "pointwise", 1
    explainer(x)
    assert explainer._inference is not None and explainer._inference.builds == 1
    assert type(model.last_features) is torch.Tensor  # not a torch.fx.Proxy
    assert model.last_features.shape == (2, 12, 16, 16)


@pytest.mark.parametrize("change", ["flip the sign", "permute the channels"])
def test_weights_edited_through_data_are_seen(change):
    """An ablation through ``.data`` bumps no version and keeps every norm."""
    model = Net().eval()
    x = torch.rand(1, 3, 16, 16)
    explainer = ScoreCAM(model, "conv2")
    explainer.inference_copy, explainer.inference_min_forwards = "fold", 1
    explainer(x, target=0)
    explainer(x, target=0)  # served by the copy
    weight = model.conv2.weight
    if change == "flip the sign":
        weight.data = -weight.data
        model.conv2.bias.data = -model.conv2.bias.data
    else:
        order = torch.arange(weight.shape[1]).flip(0)
        weight.data = weight.data[:, order].clone()
    fresh = ScoreCAM(model, "conv2")
    fresh.inference_copy = False
    torch.testing.assert_close(explainer(x, target=0), fresh(x, target=0))


def test_a_single_logit_binary_model_is_scored_by_its_sigmoid():
    """A softmax over one logit is 1 whatever the model says: Score-CAM's weights and
    occlusion's probability drops would all be constant."""
    model = Net(out=1).eval()
    negated = Net(out=1).eval()
    with torch.no_grad():
        negated.fc.weight.neg_()
        negated.fc.bias.neg_()
    x = torch.rand(1, 3, 16, 16)
    one = ScoreCAM(model, "conv2")(x)
    other = ScoreCAM(negated, "conv2")(x)
    assert not torch.allclose(one, other)
    drops = Occlusion(model, window=4, stride=4, softmax=True)(x)
    assert drops.abs().max() > 0
    from boda.explain._base import class_probabilities

    logits = torch.tensor([[0.0], [2.0]])
    torch.testing.assert_close(class_probabilities(logits), torch.sigmoid(logits))
    torch.testing.assert_close(
        class_probabilities(torch.tensor([[1.0, 1.0]])), torch.tensor([[0.5, 0.5]])
    )


def test_auto_builds_one_frozen_copy_per_model(monkeypatch):
    """Each TorchScript trace and freeze keeps native memory for good: a new explainer
    per image, or a step of training between calls, gets the eager copy after the
    first frozen one."""
    model = Net().eval()
    x = torch.rand(1, 3, 136, 136)  # above 128 x 128: "auto" means "fused"
    first = ScoreCAM(model, "conv2")
    first.inference_min_forwards = 1
    first(x)
    assert _base._FUSED_BUILDS.get(model) == 1
    first(x)  # the same copy serves
    assert first._inference.builds == 1
    second = ScoreCAM(model, "conv2")
    second.inference_min_forwards = 1
    second(x)
    assert _base._FUSED_BUILDS.get(model) == 1 and second._inference.builds == 1
    assert all(not variant[0] for variant in second._inference._copies)  # no freeze
    with torch.no_grad():
        model.conv1.weight.mul_(1.01)  # a training step
    first(x)
    assert _base._FUSED_BUILDS.get(model) == 1
    assert all(not variant[0] for variant in first._inference._copies)


def test_logits_that_are_not_finite_are_said_not_drawn_blank():
    model = Net().eval()
    with torch.no_grad():
        model.fc.bias[1] = float("nan")  # a diverged model
    x = torch.rand(2, 3, 16, 16)
    for method in (GradCAM(model, "conv2"), Occlusion(model, window=4, stride=4)):
        with pytest.raises(ModelError, match=r"not finite .* sample\(s\) \[0, 1\]"):
            method(x)
