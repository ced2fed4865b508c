"""Tests for the CAM fast path and its conventions: channels-last forwards, the
cheap model-state save/restore, Score-CAM's ``align_corners`` and Grad-CAM++'s ``eps``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from test_explain import _scorecam_reference  # noqa: E402  (the one reference)
from torch import nn  # noqa: E402

from boda.errors import InvalidParameterError  # noqa: E402
from boda.explain import GradCAM, GradCAMPlusPlus, ScoreCAM  # noqa: E402
from boda.explain._base import _frozen  # noqa: E402
from boda.nn import cpu_threads  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


class Net(nn.Module):
    """conv-BN-ReLU -> "features" (conv-ReLU) -> head; ``view_head`` flattens with ``.view``,
    which a channels-last feature map cannot do."""

    def __init__(self, view_head: bool = False, size: int = 12):
        super().__init__()
        self.view_head = view_head
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.features = nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
        n = 8 * (size // 2) ** 2 if view_head else 8
        self.fc = nn.Linear(n, 5)

    def forward(self, x):
        f = self.features(self.stem(x))
        if self.view_head:
            return self.fc(f.view(f.shape[0], -1))
        return self.fc(f.mean(dim=(2, 3)))


def net(seed: int = 0, **kw) -> Net:
    torch.manual_seed(seed)
    model = Net(**kw).eval()
    with torch.no_grad():
        model.stem[1].running_mean.uniform_(-0.2, 0.2)
        model.stem[1].running_var.uniform_(0.5, 1.5)
    return model


def batch(n: int = 3, size: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_scorecam_channels_last_gives_the_contiguous_result():
    model, x = net(), batch()
    fast = ScoreCAM(model, "features", batch_size=4)
    slow = ScoreCAM(model, "features", batch_size=4)
    slow.channels_last = False
    got = fast(x, 2, normalize=False, upsample=False)
    assert fast._channels_last_ok is True
    torch.testing.assert_close(got, slow(x, 2, normalize=False, upsample=False),
                               atol=1e-5, rtol=1e-4)


def test_model_that_rejects_channels_last_falls_back():
    model, x = net(view_head=True), batch()
    with pytest.raises(RuntimeError):  # the premise: .view fails on a channels-last map
        model(x.contiguous(memory_format=torch.channels_last))
    exp = ScoreCAM(model, "features")
    got = exp(x, 1)
    assert exp._channels_last_ok is False
    ref = ScoreCAM(model, "features")
    ref.channels_last = False
    torch.testing.assert_close(got, ref(x, 1), atol=1e-5, rtol=1e-4)
    exp(x, 1)  # later calls go straight to the contiguous path
    assert exp._channels_last_ok is False


def test_a_genuine_error_is_not_swallowed_by_the_fallback():
    exp = ScoreCAM(net(), "features")
    exp._channels_last_ok = True  # as after an earlier successful call
    with pytest.raises(RuntimeError):
        exp._forward_fast(torch.randn(2, 4, 12, 12))  # 4 channels, the conv wants 3
    fresh = ScoreCAM(net(), "features")
    with pytest.raises(RuntimeError):  # not the layout: the contiguous retry fails too
        fresh._forward_fast(torch.randn(2, 4, 12, 12))


def test_frozen_restores_a_mixed_state_exactly():
    model = net()
    model.train()
    model.stem.eval()  # a frozen-BN style sub-model
    model.stem[0].weight.requires_grad_(False)
    modes = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    with _frozen(model):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    GradCAM(model, "features")(batch(), 0)
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())


def test_frozen_calls_an_overridden_train():
    calls = []

    class Custom(Net):
        def train(self, mode: bool = True):
            calls.append(mode)
            return super().train(mode)

    model = Custom()
    model.training = True
    with _frozen(model):
        assert calls == [False]
    assert model.training


def test_scorecam_align_corners_reproduces_upsampling_bilinear2d():
    model, x = net(), batch()
    ref = _scorecam_reference(model, x, model.features, 3, align_corners=True)
    for bs in (1, 5, 100):
        got = ScoreCAM(model, "features", batch_size=bs, align_corners=True)(
            x, 3, normalize=False, upsample=False
        )
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)
    default = ScoreCAM(model, "features")(x, 3, normalize=False, upsample=False)
    assert not torch.allclose(default, ref, atol=1e-5, rtol=1e-4)


def _gradcampp_numpy(model, x, c, eps):
    acts = {}
    h = model.features.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    out = model(x)
    h.remove()
    (g,) = torch.autograd.grad(out[:, c].sum(), acts["a"])
    a, g = acts["a"].detach().double().numpy(), g.double().numpy()
    s = a.sum(axis=(2, 3), keepdims=True)
    alpha = np.where(g != 0, g**2 / (2 * g**2 + s * g**3 + eps + (g == 0)), 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
    return np.maximum(np.einsum("bc,bchw->bhw", w, a), 0)


class Scaled(nn.Module):
    def __init__(self, model, a):
        super().__init__()
        self.model, self.a = model, a

    def forward(self, x):
        return self.a * self.model(x)


def test_gradcampp_eps_reproduces_the_constant_and_matters_for_small_gradients():
    x = batch()
    model = Scaled(net(), 1e-2)  # small logits -> gradients ~1e-3, 2 g^2 of the order of 1e-6
    eq19 = GradCAMPlusPlus(model, "model.features")(x, 1, normalize=False, upsample=False)
    with_eps = GradCAMPlusPlus(model, "model.features", eps=1e-6)(
        x, 1, normalize=False, upsample=False
    )
    ref0 = _gradcampp_numpy(_Inner(model), x, 1, 0.0)
    ref6 = _gradcampp_numpy(_Inner(model), x, 1, 1e-6)
    np.testing.assert_allclose(eq19.numpy(), ref0, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(with_eps.numpy(), ref6, rtol=1e-4, atol=1e-9)
    n0, n6 = (m.flatten() / m.max() for m in (ref0, ref6))
    assert np.abs(n0 - n6).max() > 1e-2  # the constant changes the normalised map
    with pytest.raises(InvalidParameterError):
        GradCAMPlusPlus(model, "model.features", eps=-1.0)


class _Inner(nn.Module):
    """Expose ``Scaled`` with its ``features`` attribute for the numpy reference."""

    def __init__(self, scaled):
        super().__init__()
        self.scaled = scaled
        self.features = scaled.model.features

    def forward(self, x):
        return self.scaled(x)


def test_scorecam_runs_masked_forwards_without_hooks_and_in_chunks():
    model, x = net(), batch(n=2)
    seen = []
    h = model.register_forward_pre_hook(lambda m, i: seen.append(i[0].shape[0]))
    try:
        ScoreCAM(model, "features", batch_size=3)(x, 0)
    finally:
        h.remove()
    # one forward of the batch, then the non-constant (sample, channel) pairs in chunks of 3
    assert seen[0] == 2 and max(seen[1:]) <= 3 and sum(seen[1:]) <= 2 * 8
