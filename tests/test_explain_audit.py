"""Audit of boda.explain (session 26): wrong results and broken promises, each against a
reference written here (a by-hand computation, captum/torchcam, or a property that must hold).

The tests under "regressions" failed before their fix; those under "references" pin down
behaviour that was right but unchecked (a layer run twice, the metrics' formulas).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from boda.errors import InvalidImageError, InvalidParameterError, ModelError  # noqa: E402
from boda.explain import (  # noqa: E402
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    GuidedBackprop,
    GuidedGradCAM,
    Occlusion,
    Saliency,
    ScoreCAM,
    class_model,
    normalize_maps,
)
from boda.explain.metrics import (  # noqa: E402
    average_drop_increase,
    deletion_curve,
    insertion_curve,
    pointing_game,
)
from boda.nn import cpu_threads  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


def _net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
        nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    ).eval()  # fmt: skip


EXPLAINERS = {
    "gradcam": lambda m: GradCAM(m, "3"),
    "gradcam++": lambda m: GradCAMPlusPlus(m, "3"),
    "scorecam": lambda m: ScoreCAM(m, "3"),
    "saliency": lambda m: Saliency(m),
    "smoothgrad": lambda m: Saliency(m, samples=2),
    "guided": lambda m: GuidedBackprop(m),
    "guided-gradcam": lambda m: GuidedGradCAM(m, "3"),
    "occlusion": lambda m: Occlusion(m, window=4, stride=2),
}


def _second_logit(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, 1]


# -- regressions ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_an_input_with_nan_or_inf_is_refused_by_name_not_drawn_blank(name, bad):
    # With a callable target nothing checked the input: sample 0's map came back all 0
    # (normalize_maps turns a NaN map into a flat one), as if the model had looked nowhere.
    x = torch.randn(2, 3, 9, 7)
    x[0, 0, 1, 1] = bad
    with pytest.raises(InvalidImageError, match=r"NaN or infinite values in sample\(s\) \[0\]"):
        EXPLAINERS[name](_net())(x, target=_second_logit)


@pytest.mark.parametrize("metric", [deletion_curve, insertion_curve, average_drop_increase])
def test_metrics_refuse_an_input_with_nan(metric):
    # deletion_curve gave an AUC of NaN for the image with a NaN pixel, without a word.
    x = torch.randn(2, 3, 8, 8)
    x[1, 2, 3, 4] = float("nan")
    with pytest.raises(InvalidImageError, match=r"sample\(s\) \[1\]"):
        metric(_net(), x, torch.rand(2, 8, 8), _second_logit)


class Diverged(nn.Module):
    """A model whose logits are NaN whatever the input (a diverged training run)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.fc.weight[0, 0] = float("nan")

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("make", [
    lambda m: GradCAM(m, "conv"), lambda m: ScoreCAM(m, "conv"), lambda m: Saliency(m),
    lambda m: Occlusion(m, window=2, stride=2),
])  # fmt: skip
def test_a_diverged_model_with_a_callable_target_is_an_error_not_a_blank_map(make):
    # Class targets were refused on non-finite logits; a callable target went on to
    # blank maps (NaN scores, NaN gradients, normalised to 0).
    with pytest.raises(ModelError, match="not finite"):
        make(Diverged().eval())(torch.rand(1, 3, 6, 6), target=lambda out: out.sum(1))


@pytest.mark.parametrize("metric", [deletion_curve, average_drop_increase])
@pytest.mark.parametrize("returns", [lambda out: out, lambda out: out.sum(),
                                     lambda out: out[:, 1].tolist()])
def test_metrics_check_what_a_callable_target_returns(metric, returns):
    # Was a raw RuntimeError / TypeError / AttributeError, and for a scalar return an
    # Average Drop computed on the sum of all logits of all images.
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(InvalidParameterError, match="one score per sample"):
        metric(_net(), x, torch.rand(2, 8, 8), returns)


def test_metrics_with_a_callable_target_equal_the_class_target():
    x, maps = torch.randn(2, 3, 8, 8), torch.rand(2, 8, 8)
    model = _net()
    by_class = deletion_curve(model, x, maps, 1, steps=8).scores
    by_callable = deletion_curve(model, x, maps, lambda out: out.softmax(1)[:, 1], steps=8).scores
    torch.testing.assert_close(by_callable, by_class)


class DeadAtZero(nn.Module):
    """conv (bias -0.3) -> ReLU -> GAP -> linear: every ReLU is off at the zero image, so the
    gradient there is exactly 0 (as in the shipped shapes-cnn: bias-free conv, BatchNorm)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        with torch.no_grad():
            self.conv.bias.fill_(-0.3)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


def test_class_model_moves_off_a_start_where_the_gradient_is_zero():
    # The ascent never moved: the image stayed the zero start and every score was equal
    # (`boda class-model --model shapes-cnn` wrote the mean image, "logit 3.549 -> 3.549").
    model = DeadAtZero().eval()
    x0 = torch.zeros(1, 3, 8, 8, requires_grad=True)
    (g,) = torch.autograd.grad(model(x0)[0, 2], x0)
    assert not g.any()  # the premise: a dead start
    res = class_model(model, 2, size=(8, 8), steps=30, l2=0.0, jitter=0, blur_every=0)
    assert res.image.abs().max() > 0
    assert res.scores[-1] > res.scores[0] + 0.5
    again = class_model(model, 2, size=(8, 8), steps=30, l2=0.0, jitter=0, blur_every=0)
    torch.testing.assert_close(again.image, res.image)  # still seeded


def test_class_model_from_a_live_start_is_unchanged_by_the_dead_start_rule():
    # A nonzero gradient is followed as before: one plain step is lr * g / mean|g|.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(),
                          nn.Linear(4 * 25, 3)).eval()  # fmt: skip
    start = torch.randn(1, 3, 5, 5)
    x = start.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x)[0, 1], x)
    expected = start + 0.1 * g / g.abs().mean()
    got = class_model(model, 1, start=start, steps=1, lr=0.1, l2=0.0, jitter=0, blur_every=0)
    torch.testing.assert_close(got.image, expected)


@pytest.mark.parametrize("bad", [dict(target=2.7), dict(target="cat"), dict(target=True),
                                 dict(steps=2.5), dict(size=(0, 4)),
                                 dict(start=torch.full((1, 3, 8, 8), float("nan"))),
                                 dict(start=torch.zeros(1, 3, 0, 8))])
def test_class_model_refuses_what_it_would_truncate_or_fail_on(bad):
    # target=2.7 was class 2 and steps=2.5 two steps without a word; "cat" a raw
    # ValueError; a NaN start an ascent of NaN scores; an empty one a raw torch error.
    kw = {"target": 1, "size": (8, 8), "steps": 2} | bad
    with pytest.raises(InvalidParameterError):
        class_model(DeadAtZero(), kw.pop("target"), **kw)


def test_occlusion_refuses_a_stride_larger_than_the_window():
    # window 2, stride 5 on 12 px left pixels 2-4 and 7-8 in no window: their 0 was drawn
    # as a measured "no effect" (the docstring promised every pixel is covered; captum's
    # Occlusion refuses such strides).
    with pytest.raises(InvalidParameterError, match="stride"):
        Occlusion(_net(), window=2, stride=5)
    with pytest.raises(InvalidParameterError, match="stride"):
        Occlusion(_net(), window=(4, 2), stride=(4, 3))
    # stride == window tiles the image: every pixel has a value.
    x = torch.randn(1, 3, 12, 12)
    counts = Occlusion(_net(), window=3, stride=3)(x, 0, normalize=False)
    assert counts.shape == (1, 12, 12)


# -- references -------------------------------------------------------------------------------
class Twice(nn.Module):
    """The target convolution ``block`` runs twice in one forward (shared weights)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        h = F.relu(self.block(F.relu(self.stem(x))))
        return self.fc(F.relu(self.block(h)).mean((2, 3)))


def test_a_layer_run_twice_is_explained_at_its_last_call_as_captum_does():
    model, x = Twice().eval(), torch.randn(2, 3, 12, 12)
    outputs: list[torch.Tensor] = []
    handle = model.block.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    logits = model(x)
    handle.remove()
    grads = torch.autograd.grad(logits[:, 1].sum(), outputs)
    # Grad-CAM by hand (Selvaraju et al. 2017, Eq. 1-2) at the last call.
    last = torch.relu((grads[1].mean((2, 3), keepdim=True) * outputs[1]).sum(1)).detach()
    ours = GradCAM(model, "block")(x, 1)
    torch.testing.assert_close(ours, normalize_maps(last))
    captum = pytest.importorskip("captum.attr")
    theirs = captum.LayerGradCam(model, model.block).attribute(x, 1, relu_attributions=True)
    torch.testing.assert_close(ours, normalize_maps(theirs[:, 0].detach()))
    # CAM (Zhou et al. Eq. 2): the classifier's weights times the last call's channels.
    cam = torch.einsum("c,bchw->bhw", model.fc.weight[1], outputs[1]).detach()
    torch.testing.assert_close(CAM(model, "block", fc="fc")(x, 1), normalize_maps(cam))


def _rise_auc(model, x, maps, steps, start_of, end_of):
    """The deletion / insertion AUC as RISE's CausalMetric computes it (Petsiuk et al.
    2018): ``HW / steps`` pixels per step, most salient first, the probability of the
    predicted class before each step and after the last, trapezoids of equal width."""
    out = []
    with torch.no_grad():
        classes = model(x).argmax(1)
        for b in range(x.shape[0]):
            order = np.argsort(-maps[b].numpy().ravel(), kind="stable")
            now = start_of(x[b]).reshape(x.shape[1], -1).clone()
            end = end_of(x[b]).reshape(x.shape[1], -1)
            per = order.size // steps
            probs = []
            for i in range(steps + 1):
                p = model(now.reshape(1, *x.shape[1:])).softmax(1)[0, classes[b]]
                probs.append(float(p))
                chosen = order[per * i : per * (i + 1)]
                now[:, chosen] = end[:, chosen]
            a = np.array(probs)
            out.append((a.sum() - a[0] / 2 - a[-1] / 2) / (a.size - 1))
    return np.array(out)


def test_deletion_and_insertion_auc_equal_the_rise_reference():
    model = _net()
    torch.manual_seed(3)
    x, maps = torch.randn(3, 3, 8, 6), torch.rand(3, 8, 6)
    deletion = deletion_curve(model, x, maps, steps=12, batch_size=7).auc.numpy()
    insertion = insertion_curve(model, x, maps, steps=12, baseline=0.5).auc.numpy()
    np.testing.assert_allclose(
        deletion, _rise_auc(model, x, maps, 12, lambda t: t, torch.zeros_like), rtol=1e-5)
    np.testing.assert_allclose(
        insertion, _rise_auc(model, x, maps, 12, lambda t: torch.full_like(t, 0.5), lambda t: t),
        rtol=1e-5)  # fmt: skip


def test_average_drop_and_increase_equal_the_formula():
    # Chattopadhay et al. 2018, Sec. 5.1.1, on the image times its map.
    model = _net()
    torch.manual_seed(4)
    x, maps = torch.randn(5, 3, 8, 8), torch.rand(5, 8, 8)
    with torch.no_grad():
        p = model(x).softmax(1)
        c = p.argmax(1)
        y = p[torch.arange(5), c]
        o = model(x * maps[:, None]).softmax(1)[torch.arange(5), c]
    got = average_drop_increase(model, x, maps)
    assert got["average_drop"] == pytest.approx(float(100 * ((y - o).clamp(min=0) / y).mean()),
                                                rel=1e-5)  # fmt: skip
    assert got["average_increase"] == pytest.approx(float(100 * (y < o).float().mean()))


class PositionalInplace(nn.Module):
    """Relies on ``F.relu(h, True)`` (in-place, given by position) changing ``h``."""

    def __init__(self, functional: bool):
        super().__init__()
        torch.manual_seed(0)
        self.functional = functional
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        h = self.conv(x)
        if self.functional:
            F.relu(h, True)
        else:
            self.relu(h)
        return self.fc(h.mean((2, 3)))


def test_guided_backprop_honours_an_in_place_relu_given_by_position():
    # F.relu passes inplace on to the TorchFunctionMode as a keyword even when it was given
    # by position: the guided forward is the model's own, its gradients those of nn.ReLU.
    x = torch.randn(2, 3, 6, 6)
    functional, module = PositionalInplace(True).eval(), PositionalInplace(False).eval()
    ex = GuidedBackprop(functional)
    got = ex.gradients(x, 0)
    torch.testing.assert_close(ex.logits, module(x))
    torch.testing.assert_close(got, GuidedBackprop(module).gradients(x, 0))


@pytest.mark.parametrize("samples", [2.5, "4", True])
def test_smoothgrad_refuses_a_number_of_samples_that_is_not_whole(samples):
    # samples=2.5 ran 2 noisy copies without a word; "4" ran 4.
    with pytest.raises(InvalidParameterError, match="samples"):
        Saliency(_net(), samples=samples)


@pytest.mark.parametrize("bad", [dict(steps=2.5), dict(batch_size=1.5), dict(steps="8")])
def test_curves_refuse_steps_and_batch_sizes_that_are_not_whole(bad):
    # steps=2.5 drew a curve of 2 steps; "8" passed through int().
    with pytest.raises(InvalidParameterError, match="whole numbers"):
        deletion_curve(_net(), torch.randn(1, 3, 8, 8), torch.rand(1, 8, 8), **bad)


# -- found by the lead after the audit -----------------------------------------------------


def test_the_pointing_game_refuses_nan_maps_and_tolerances():
    """argmax reads NaN as the maximum, so a broken map pointed wherever its NaN was
    (a hit here), and a NaN tolerance counted as exact matching."""
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 2, 2] = True
    maps = np.zeros((2, 8, 8), np.float32)
    maps[:, 6, 6] = 1.0
    maps[1, 2, 2] = np.nan
    with pytest.raises(InvalidParameterError, match=r"maps \[1\] hold NaN"):
        pointing_game(maps, masks)
    good = np.nan_to_num(maps)
    assert pointing_game(good, masks)["hits"].tolist() == [False, False]  # peaks at (6, 6)
    for tolerance in (float("nan"), float("inf"), -1.0, "1"):
        with pytest.raises(InvalidParameterError, match="tolerance"):
            pointing_game(good, masks, tolerance=tolerance)


def test_smoothgrad_refuses_a_noise_that_is_not_a_number():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(InvalidParameterError, match="noise"):
        Saliency(model, samples=2, noise="0.1")


def test_a_class_without_a_name_is_said_once():
    from boda.cli._common import class_text

    assert class_text(2, "bird") == "bird (class 2)"
    assert class_text(2, "class 2") == class_text(2, None) == "class 2"
