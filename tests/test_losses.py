"""Tests of boda.nn.losses against torch's own losses, brute-force loops and hand values."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from boda.errors import InvalidParameterError  # noqa: E402
from boda.nn import losses as L  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def _logits(gen, b=6, k=5):
    return torch.randn(b, k, generator=gen) * 2, torch.randint(0, k, (b,), generator=gen)


# ----------------------------------------------------------------- classification


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.35])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(gen, eps, reduction):
    z, y = _logits(gen)
    ours = L.cross_entropy(z, y, label_smoothing=eps, reduction=reduction)
    ref = F.cross_entropy(z, y, label_smoothing=eps, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(L.CrossEntropyLoss(eps, reduction)(z, y), ref)


def test_cross_entropy_rejects_bad_input():
    z = torch.zeros(2, 3)
    with pytest.raises(InvalidParameterError, match="class indices"):
        L.cross_entropy(z, torch.tensor([0, 3]))
    with pytest.raises(InvalidParameterError, match="integer"):
        L.cross_entropy(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(InvalidParameterError, match=r"\(B, K\)"):
        L.cross_entropy(torch.zeros(3), torch.tensor([0]))
    with pytest.raises(InvalidParameterError, match="label_smoothing"):
        L.cross_entropy(z, torch.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(InvalidParameterError, match="reduction"):
        L.cross_entropy(z, torch.tensor([0, 1]), reduction="avg")


def test_focal_reduces_to_cross_entropy(gen):
    z, y = _logits(gen)
    torch.testing.assert_close(
        L.focal_loss(z, y, gamma=0.0, alpha=None), F.cross_entropy(z, y)
    )


def test_focal_hand_values_and_alpha(gen):
    z, y = _logits(gen)
    p = torch.softmax(z.double(), 1)[torch.arange(len(y)), y]
    expected = [-0.25 * (1 - float(pt)) ** 2 * math.log(float(pt)) for pt in p]
    got = L.focal_loss(z, y, gamma=2.0, alpha=0.25, reduction="none")
    torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=torch.double))
    # per-class alpha picks the weight of each sample's class
    alpha = torch.arange(1, 6, dtype=torch.float32)
    base = L.focal_loss(z, y, gamma=2.0, alpha=None, reduction="none")
    torch.testing.assert_close(L.FocalLoss(2.0, alpha, "none")(z, y), alpha[y] * base)
    # the modulating factor only shrinks the loss, most for confident samples
    assert torch.all(base <= F.cross_entropy(z, y, reduction="none") + 1e-7)
    easy = L.focal_loss(torch.tensor([[5.0, 0.0]]), torch.tensor([0]), alpha=None)
    hard = L.focal_loss(torch.tensor([[0.0, 5.0]]), torch.tensor([0]), alpha=None)
    ce_easy = F.cross_entropy(torch.tensor([[5.0, 0.0]]), torch.tensor([0]))
    ce_hard = F.cross_entropy(torch.tensor([[0.0, 5.0]]), torch.tensor([0]))
    assert easy / ce_easy < 1e-3 < hard / ce_hard
    with pytest.raises(InvalidParameterError, match="alpha"):
        L.focal_loss(z, y, alpha=torch.ones(3))


def test_sigmoid_focal_loss(gen):
    z = torch.randn(4, 3, generator=gen)
    y = (torch.rand(4, 3, generator=gen) > 0.5).float()
    torch.testing.assert_close(
        L.sigmoid_focal_loss(z, y, gamma=0.0, alpha=None),
        F.binary_cross_entropy_with_logits(z, y),
    )
    p = torch.sigmoid(z.double())
    pt = torch.where(y > 0, p, 1 - p)
    at = torch.where(y > 0, 0.25, 0.75)
    expected = -at * (1 - pt) ** 2 * torch.log(pt)
    torch.testing.assert_close(
        L.sigmoid_focal_loss(z, y, reduction="none").double(), expected, rtol=1e-5, atol=1e-6
    )


def test_distillation_matches_kl_div(gen):
    s, y = _logits(gen)
    t = torch.randn(s.shape, generator=gen)
    for temp in (1.0, 4.0):
        kl = F.kl_div(
            F.log_softmax(s / temp, 1), F.softmax(t / temp, 1), reduction="batchmean"
        ) * temp**2
        torch.testing.assert_close(L.distillation_loss(s, t, temperature=temp), kl)
        mixed = 0.7 * kl + 0.3 * F.cross_entropy(s, y)
        torch.testing.assert_close(
            L.DistillationLoss(temp, 0.7)(s, t, y), mixed, rtol=1e-5, atol=1e-6
        )
    assert float(L.distillation_loss(t, t)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_teacher_gets_no_gradient(gen):
    s = torch.randn(4, 3, generator=gen, requires_grad=True)
    t = torch.randn(4, 3, generator=gen, requires_grad=True)
    L.distillation_loss(s, t, torch.tensor([0, 1, 2, 0])).backward()
    assert s.grad is not None and t.grad is None


# ----------------------------------------------------------------- contrastive


def _cos(a, b):
    return float(F.cosine_similarity(a, b, dim=0))


def _nt_xent_brute(z1, z2, tau):
    z = torch.cat([z1, z2]).double()
    n2 = len(z)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        denom = sum(math.exp(_cos(z[i], z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(_cos(z[i], z[j]) / tau) / denom)
    return total / n2


def test_nt_xent_matches_brute_force(gen):
    z1, z2 = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    for tau in (0.1, 0.5):
        assert float(L.nt_xent_loss(z1, z2, tau)) == pytest.approx(
            _nt_xent_brute(z1, z2, tau), rel=1e-5
        )
    assert float(L.NTXentLoss(0.5)(z1, z2)) == pytest.approx(_nt_xent_brute(z1, z2, 0.5), 1e-5)
    # scale invariance: embeddings are normalised
    torch.testing.assert_close(L.nt_xent_loss(3 * z1, z2), L.nt_xent_loss(z1, z2))


def test_info_nce_matches_brute_force(gen):
    q, k = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    queue = torch.randn(9, 6, generator=gen)
    tau = 0.2
    expected = 0.0
    for i in range(4):
        pos = math.exp(_cos(q[i], k[i]) / tau)
        neg = sum(math.exp(_cos(q[i], queue[j]) / tau) for j in range(9))
        expected += -math.log(pos / (pos + neg)) / 4
    assert float(L.info_nce_loss(q, k, queue, tau)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InvalidParameterError, match="queue"):
        L.info_nce_loss(q, k, torch.randn(9, 5))


def test_moco_queue_is_a_fifo_buffer(gen):
    loss = L.MoCoLoss(dim=3, queue_size=5, temperature=0.2)
    assert "queue" in loss.state_dict() and "ptr" in loss.state_dict()
    before = loss.queue.clone()
    q, k = torch.randn(3, 3, generator=gen), torch.randn(3, 3, generator=gen)
    value = loss(q, k)
    # the loss used the queue as it was before this batch's keys went in
    torch.testing.assert_close(value, L.info_nce_loss(q, k, before, 0.2))
    torch.testing.assert_close(loss.queue[:3], F.normalize(k, dim=1))
    torch.testing.assert_close(loss.queue[3:], before[3:])
    assert int(loss.ptr) == 3
    k2 = torch.randn(3, 3, generator=gen)
    loss(q, k2)  # wraps: slots 3, 4, 0
    torch.testing.assert_close(loss.queue[[3, 4, 0]], F.normalize(k2, dim=1))
    assert int(loss.ptr) == 1
    loss.eval()
    frozen = loss.queue.clone()
    loss(q, k)
    torch.testing.assert_close(loss.queue, frozen)
    # gradients flow to the query even though the queue changed in place afterwards
    loss.train()
    qg = q.clone().requires_grad_(True)
    loss(qg, k).backward()
    assert qg.grad is not None and torch.isfinite(qg.grad).all()
    # round trip through a state dict
    other = L.MoCoLoss(dim=3, queue_size=5, seed=1)
    other.load_state_dict(loss.state_dict())
    torch.testing.assert_close(other.queue, loss.queue)


def _supcon_brute(features, labels, tau):
    n, v, _ = features.shape
    z = [F.normalize(features[i, a].double(), dim=0) for a in range(v) for i in range(n)]
    lab = [int(labels[i]) for a in range(v) for i in range(n)]
    total, count = 0.0, 0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        denom = sum(math.exp(float(z[i] @ z[a]) / tau) for a in others)
        pos = [p for p in others if lab[p] == lab[i]]
        if not pos:
            continue
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / denom) for p in pos) / len(
            pos
        )
        count += 1
    return total / count


def test_supcon_matches_brute_force_l_out(gen):
    f = torch.randn(6, 2, 5, generator=gen)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    assert float(L.supcon_loss(f, labels, 0.3)) == pytest.approx(
        _supcon_brute(f, labels, 0.3), rel=1e-5
    )
    assert float(L.SupConLoss(0.3)(f, labels)) == pytest.approx(
        _supcon_brute(f, labels, 0.3), rel=1e-5
    )
    # single view: positives come from repeated labels only (label 2 has none)
    single = f[:, :1]
    assert float(L.supcon_loss(single[:, 0], labels, 0.3)) == pytest.approx(
        _supcon_brute(single, labels, 0.3), rel=1e-5
    )


def test_supcon_without_labels_is_nt_xent(gen):
    z1, z2 = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    torch.testing.assert_close(
        L.supcon_loss(torch.stack([z1, z2], 1), temperature=0.5), L.nt_xent_loss(z1, z2, 0.5)
    )
    with pytest.raises(InvalidParameterError, match="positive"):
        L.supcon_loss(z1)


# ----------------------------------------------------------------- reconstruction


def test_l1_l2_charbonnier(gen):
    x, y = torch.randn(2, 3, 4, 4, generator=gen), torch.randn(2, 3, 4, 4, generator=gen)
    torch.testing.assert_close(L.l1_loss(x, y), F.l1_loss(x, y))
    torch.testing.assert_close(L.l2_loss(x, y, "sum"), F.mse_loss(x, y, reduction="sum"))
    torch.testing.assert_close(
        L.charbonnier_loss(x, y, eps=1e-6), F.l1_loss(x, y), rtol=1e-5, atol=1e-5
    )
    expected = torch.sqrt((x - y) ** 2 + 0.5**2).mean()
    torch.testing.assert_close(L.CharbonnierLoss(0.5)(x, y), expected)
    # differentiable at zero residual, unlike L1
    z = torch.zeros(3, requires_grad=True)
    L.charbonnier_loss(z, torch.zeros(3)).backward()
    assert torch.all(z.grad == 0)
    with pytest.raises(InvalidParameterError, match="same shape"):
        L.l1_loss(x, y[:1])


def test_perceptual_loss(gen):
    x, y = torch.rand(2, 3, 8, 8, generator=gen), torch.rand(2, 3, 8, 8, generator=gen)
    torch.testing.assert_close(L.perceptual_loss(x, y, lambda t: t), F.mse_loss(x, y))
    conv = torch.nn.Conv2d(3, 4, 3)

    def two_layers(t):
        a = conv(t)
        return {"a": a, "b": F.avg_pool2d(a, 2)}

    fa, fb = two_layers(x), two_layers(y)
    expected = 2.0 * F.mse_loss(fa["a"], fb["a"]) + 0.5 * F.mse_loss(fa["b"], fb["b"])
    torch.testing.assert_close(
        L.perceptual_loss(x, y, two_layers, weights=[2.0, 0.5]), expected
    )
    module = L.PerceptualLoss(torch.nn.Conv2d(3, 4, 3))
    xi = x.clone().requires_grad_(True)
    module(xi, y).backward()
    assert xi.grad is not None
    assert all(p.grad is None for p in module.extractor.parameters())
    with pytest.raises(InvalidParameterError, match="weights"):
        L.perceptual_loss(x, y, two_layers, weights=[1.0])


@pytest.mark.parametrize("loss", [L.perceptual_loss, L.style_loss])
def test_feature_losses_refuse_extractors_without_matching_maps(gen, loss):
    x, y = torch.rand(1, 3, 8, 8, generator=gen), torch.rand(1, 3, 8, 8, generator=gen)
    with pytest.raises(InvalidParameterError, match="no feature maps"):
        loss(x, y, lambda t: [])
    # a different number of maps for the target than for the input (an extractor
    # whose output depends on what it sees) is refused, not silently zipped
    with pytest.raises(InvalidParameterError, match="1 maps for the input but 2"):
        loss(x, y, lambda t: [t] if t is x else [t, t])


def test_perceptual_loss_is_a_tensor_with_gradient(gen):
    x = torch.rand(1, 3, 8, 8, generator=gen, requires_grad=True)
    loss = L.perceptual_loss(x, torch.rand(1, 3, 8, 8, generator=gen), lambda t: [t, 2 * t])
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    loss.backward()
    assert x.grad is not None


def test_gram_and_style_loss(gen):
    f = torch.randn(2, 3, 4, 5, generator=gen)
    psi = f.reshape(2, 3, 20)
    expected = torch.einsum("bcn,bdn->bcd", psi, psi) / 60
    torch.testing.assert_close(L.gram_matrix(f), expected)
    x, y = torch.rand(1, 3, 8, 8, generator=gen), torch.rand(1, 3, 8, 8, generator=gen)
    manual = (L.gram_matrix(x) - L.gram_matrix(y)).square().sum()
    torch.testing.assert_close(L.style_loss(x, y, lambda t: t), manual)
    # Gram matrices forget where things are: shuffling pixels leaves style unchanged
    perm = torch.randperm(64, generator=gen)
    shuffled = x.reshape(1, 3, 64)[:, :, perm].reshape(1, 3, 8, 8)
    assert float(L.style_loss(shuffled, x, lambda t: t)) == pytest.approx(0.0, abs=1e-10)
    big = torch.rand(1, 3, 16, 16, generator=gen)
    assert float(L.StyleLoss(torch.nn.Conv2d(3, 4, 3))(x, big)) > 0


def test_total_variation(gen):
    x = torch.rand(2, 3, 5, 6, generator=gen)
    xn = x.double()
    dh = (xn[:, :, 1:] - xn[:, :, :-1])
    dw = (xn[:, :, :, 1:] - xn[:, :, :, :-1])
    per_image = dh.abs().sum((1, 2, 3)) + dw.abs().sum((1, 2, 3))
    torch.testing.assert_close(L.total_variation(x, reduction="none").double(), per_image)
    torch.testing.assert_close(L.TotalVariation()(x).double(), per_image.sum())
    sq = (dh**2).sum() + (dw**2).sum()
    torch.testing.assert_close(L.total_variation(x, p=2).double(), sq)
    assert float(L.total_variation(torch.full((1, 1, 4, 4), 0.3))) == 0.0


# ----------------------------------------------------------------- GANs


def test_gan_and_pix2pix_losses(gen):
    d = torch.randn(2, 1, 3, 3, generator=gen)
    torch.testing.assert_close(L.gan_loss(d, True), -F.logsigmoid(d).mean())
    torch.testing.assert_close(L.gan_loss(d, False), -F.logsigmoid(-d).mean())
    torch.testing.assert_close(L.gan_loss(d, True, "lsgan"), ((d - 1) ** 2).mean())
    fake, real = torch.rand(2, 3, 6, 6, generator=gen), torch.rand(2, 3, 6, 6, generator=gen)
    g = L.Pix2PixLoss(lambda_l1=100.0)
    torch.testing.assert_close(
        g(d, fake, real), -F.logsigmoid(d).mean() + 100.0 * (fake - real).abs().mean()
    )
    d_real = torch.randn(2, 1, 3, 3, generator=gen)
    torch.testing.assert_close(
        g.discriminator(d_real, d),
        0.5 * (-F.logsigmoid(d_real).mean() - F.logsigmoid(-d).mean()),
    )
    with pytest.raises(InvalidParameterError, match="mode"):
        L.gan_loss(d, True, "wgan")


def test_cycle_consistency(gen):
    a, ra = torch.rand(1, 3, 4, 4, generator=gen), torch.rand(1, 3, 4, 4, generator=gen)
    b, rb = torch.rand(1, 3, 4, 4, generator=gen), torch.rand(1, 3, 4, 4, generator=gen)
    expected = 10.0 * ((a - ra).abs().mean() + (b - rb).abs().mean())
    torch.testing.assert_close(L.CycleConsistencyLoss(10.0)(a, ra, b, rb), expected)
    assert float(L.cycle_consistency_loss(a, a, b, b)) == 0.0
    with pytest.raises(InvalidParameterError, match="both"):
        L.cycle_consistency_loss(a, ra, b)


# ----------------------------------------------------------------- boxes


def _box_ref(p, t):
    """IoU, GIoU and DIoU losses of one pair, in plain Python."""
    px1, py1, px2, py2 = p
    tx1, ty1, tx2, ty2 = t
    iw = max(0.0, min(px2, tx2) - max(px1, tx1))
    ih = max(0.0, min(py2, ty2) - max(py1, ty1))
    inter = iw * ih
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    iou = inter / union
    cw, ch = max(px2, tx2) - min(px1, tx1), max(py2, ty2) - min(py1, ty1)
    giou = iou - (cw * ch - union) / (cw * ch)
    rho2 = ((px1 + px2 - tx1 - tx2) / 2) ** 2 + ((py1 + py2 - ty1 - ty2) / 2) ** 2
    return 1 - iou, 1 - giou, 1 - iou + rho2 / (cw**2 + ch**2)


@pytest.mark.parametrize("loss", [L.iou_loss, L.giou_loss, L.diou_loss])
def test_box_losses_order_inverted_predicted_corners(loss):
    # Rezatofighi et al. 2019, Algorithm 2, step 1: a regressed box with x2 < x1
    # is scored as the box it spans, so it keeps a (finite) gradient
    target = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    inverted = torch.tensor([[3.0, 1.0, 1.0, 3.0]], requires_grad=True)
    ordered = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    value = loss(inverted, target)
    torch.testing.assert_close(value, loss(ordered, target))
    value.backward()
    assert bool(torch.isfinite(inverted.grad).all()) and float(inverted.grad.abs().sum()) > 0

def test_box_losses_match_reference(gen):
    xy = torch.rand(20, 2, generator=gen) * 10
    pred = torch.cat([xy, xy + 0.5 + torch.rand(20, 2, generator=gen) * 5], 1)
    xy2 = xy + torch.randn(20, 2, generator=gen) * 2
    target = torch.cat([xy2, xy2 + 0.5 + torch.rand(20, 2, generator=gen) * 5], 1)
    ref = torch.tensor(
        [_box_ref(p.tolist(), t.tolist()) for p, t in zip(pred, target, strict=True)]
    )
    for col, kind in enumerate(("iou", "giou", "diou")):
        got = L.BoxIoULoss(kind, "none")(pred, target)
        torch.testing.assert_close(got, ref[:, col], rtol=1e-5, atol=1e-5)
    # disjoint boxes: IoU loss saturates at 1, GIoU/DIoU keep going
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    near, far = torch.tensor([[2.0, 0.0, 3.0, 1.0]]), torch.tensor([[5.0, 0.0, 6.0, 1.0]])
    assert float(L.iou_loss(a, near)) == pytest.approx(1.0)
    assert float(L.iou_loss(a, far)) == pytest.approx(1.0)
    assert 1.0 < float(L.giou_loss(a, near)) < float(L.giou_loss(a, far)) < 2.0
    assert 1.0 < float(L.diou_loss(a, near)) < float(L.diou_loss(a, far)) < 2.0
    p = near.clone().requires_grad_(True)
    L.giou_loss(a, p).backward()
    assert float(p.grad.abs().sum()) > 0
    with pytest.raises(InvalidParameterError, match=r"\(N, 4\)"):
        L.iou_loss(torch.zeros(2, 3), torch.zeros(2, 3))
