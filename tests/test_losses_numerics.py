"""boda.nn.losses in real training loops: masked logits, half precision, autocast,
frozen extractors, and the inputs that must be refused with a clear error.

Each test here reproduces a problem once found in the losses (a NaN loss, an
overflow, an extractor that left eval mode, a raw error or a silent nonsense
value), with torch's own behaviour as the reference.
"""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from boda.errors import InvalidParameterError  # noqa: E402
from boda.nn import losses as L  # noqa: E402

torch.set_num_threads(1)

MASKED = torch.tensor([[2.0, 0.5, float("-inf")], [0.0, float("-inf"), 1.0]])
MASKED_TARGET = torch.tensor([0, 2])


# ----------------------------------------------------------------- masked classes


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_a_masked_class_equals_torch(reduction):
    ref = F.cross_entropy(MASKED, MASKED_TARGET, reduction=reduction)
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(L.cross_entropy(MASKED, MASKED_TARGET, reduction=reduction), ref)
    torch.testing.assert_close(L.CrossEntropyLoss(reduction=reduction)(MASKED, MASKED_TARGET), ref)


def test_cross_entropy_masked_class_gradient_is_finite():
    z = MASKED.clone().requires_grad_(True)
    L.cross_entropy(z, MASKED_TARGET).backward()
    ref = MASKED.clone().requires_grad_(True)
    F.cross_entropy(ref, MASKED_TARGET).backward()
    torch.testing.assert_close(z.grad, ref.grad)


def test_distillation_with_target_and_masked_class_is_finite():
    s = torch.tensor([[1.0, 2.0, float("-inf")]])
    t = torch.tensor([[2.0, 1.0, float("-inf")]])
    y = torch.tensor([0])
    loss = L.distillation_loss(s, t, y, temperature=2.0, alpha=0.5)
    kl = L.distillation_loss(s, t, temperature=2.0)
    expected = 0.5 * kl + 0.5 * F.cross_entropy(s, y)
    torch.testing.assert_close(loss, expected)


# ----------------------------------------------------------------- autocast / half


def _bf16_logits():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 200, generator=gen)
    lin = nn.Linear(200, 200)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(200, 200, generator=gen) * 0.2)
    y = torch.randint(0, 200, (64,), generator=gen)
    return x, lin, y


def test_cross_entropy_under_bf16_autocast_is_float32_like_torch():
    x, lin, y = _bf16_logits()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        z = lin(x)
        ref = F.cross_entropy(z, y)
        ours = L.cross_entropy(z, y)
        focal = L.focal_loss(z, y, gamma=2.0, alpha=None)
    assert z.dtype == torch.bfloat16
    assert ref.dtype == ours.dtype == focal.dtype == torch.float32
    torch.testing.assert_close(ours, ref)
    exact = L.focal_loss(z.double(), y, gamma=2.0, alpha=None)
    assert abs(float(focal) - float(exact)) / float(exact) < 1e-6


def test_sigmoid_focal_half_logits_give_float32_loss():
    z = torch.tensor([8.0, -8.0, 0.5], dtype=torch.bfloat16)
    t = torch.tensor([1.0, 0.0, 1.0], dtype=torch.bfloat16)
    loss = L.sigmoid_focal_loss(z, t, reduction="none")
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, L.sigmoid_focal_loss(z.float(), t.float(), reduction="none"))


BOX_P = [[100.0, 100, 400, 400], [0, 0, 300, 300]]
BOX_T = [[110.0, 120, 390, 410], [0, 0, 300, 300]]


@pytest.mark.parametrize("loss", [L.iou_loss, L.giou_loss, L.diou_loss])
def test_box_losses_in_float16_match_float64(loss):
    # 300 px boxes: area 90 000 > float16's largest value 65 504
    p = torch.tensor(BOX_P, dtype=torch.float16, requires_grad=True)
    t = torch.tensor(BOX_T, dtype=torch.float16)
    out = loss(p, t, reduction="none")
    ref = loss(p.detach().double(), t.double(), reduction="none")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, atol=1e-6, rtol=1e-5)
    out.sum().backward()
    assert torch.isfinite(p.grad).all()
    assert p.grad.dtype == torch.float16


def test_gram_matrix_does_not_overflow_in_float16():
    gen = torch.Generator().manual_seed(0)
    feat = torch.rand(1, 8, 256, 256, generator=gen) * 2  # sum of 65 536 products
    g16 = L.gram_matrix(feat.half())
    assert torch.isfinite(g16).all()
    torch.testing.assert_close(g16.float(), L.gram_matrix(feat), atol=0, rtol=2e-3)


def test_style_loss_under_float16_autocast_is_finite():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 8, 64, 64, generator=gen) * 20
    ref = L.style_loss(x, 0.9 * x, lambda t: t)
    with torch.autocast("cpu", dtype=torch.float16):
        ours = L.style_loss(x, 0.9 * x, lambda t: t)
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours.float(), ref, rtol=5e-3, atol=0)


def test_gram_matrix_value_is_unchanged():
    f = torch.arange(24, dtype=torch.float64).reshape(1, 2, 3, 4)
    psi = f.reshape(1, 2, 12)
    torch.testing.assert_close(L.gram_matrix(f), psi @ psi.transpose(1, 2) / 24)


# ----------------------------------------------------------------- frozen extractors


def _bn_extractor():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))


@pytest.mark.parametrize("cls", [L.PerceptualLoss, L.StyleLoss])
def test_extractor_stays_in_eval_mode_after_parent_train(cls):
    ext = _bn_extractor()
    model = nn.ModuleDict({"net": nn.Conv2d(3, 3, 1), "crit": cls(ext)})
    model.train()
    assert model["net"].training and model["crit"].training
    assert not any(m.training for m in ext.modules())
    stats = ext[1].running_mean.clone()
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 12, 12, generator=gen), torch.rand(2, 3, 12, 12, generator=gen)
    first, second = model["crit"](x, y), model["crit"](x, y)
    assert torch.equal(ext[1].running_mean, stats)  # BatchNorm statistics untouched
    assert torch.equal(first, second)  # no dropout: the loss is deterministic
    assert model["crit"].train() is model["crit"]
    assert not ext.training


# ----------------------------------------------------------------- clear errors


def _z_y():
    return torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0])


@pytest.mark.parametrize("gamma", [float("nan"), -0.5])
def test_focal_losses_refuse_bad_gamma(gamma):
    z, y = _z_y()
    with pytest.raises(InvalidParameterError, match="gamma"):
        L.focal_loss(z, y, gamma=gamma)
    with pytest.raises(InvalidParameterError, match="gamma"):
        L.sigmoid_focal_loss(torch.zeros(2), torch.ones(2), gamma=gamma)


@pytest.mark.parametrize("alpha", [-1.0, float("nan"), torch.tensor([1.0, -0.5, 1.0])])
def test_focal_loss_refuses_negative_alpha(alpha):
    z, y = _z_y()
    with pytest.raises(InvalidParameterError, match="alpha"):
        L.focal_loss(z, y, alpha=alpha)


def test_sigmoid_focal_loss_refuses_targets_outside_0_1_and_bad_alpha():
    with pytest.raises(InvalidParameterError, match=r"target must hold values in \[0, 1\]"):
        L.sigmoid_focal_loss(torch.zeros(2), torch.tensor([2.0, -1.0]))
    with pytest.raises(InvalidParameterError, match="alpha"):
        L.sigmoid_focal_loss(torch.zeros(2), torch.ones(2), alpha=1.5)
    # soft targets in [0, 1] stay fine
    assert torch.isfinite(L.sigmoid_focal_loss(torch.zeros(2), torch.tensor([0.3, 1.0])))


def test_style_loss_refuses_channel_mismatch():
    with pytest.raises(InvalidParameterError, match="same channels"):
        L.style_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 4, 8, 8), lambda t: t)


def test_moco_loss_names_the_dimension_it_was_built_with():
    loss = L.MoCoLoss(dim=8, queue_size=16)
    with pytest.raises(InvalidParameterError, match=r"built with dim=8 .* MoCoLoss\(dim=16"):
        loss(torch.randn(4, 16), torch.randn(4, 16))
    assert int(loss.ptr) == 0  # nothing enqueued


def test_supcon_loss_refuses_an_empty_batch_clearly():
    with pytest.raises(InvalidParameterError, match="empty batch"):
        L.supcon_loss(torch.zeros(0, 2, 8))


def test_frozen_losses_still_pickle():
    loss = L.PerceptualLoss(nn.Conv2d(3, 4, 3))
    again = pickle.loads(pickle.dumps(loss))
    assert not again.extractor.training
