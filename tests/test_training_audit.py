"""Audit of the training blocks (contrastive losses, augmentations) against direct
formulas: half precision and autocast, empty batches, aliasing of the caller's
batch, value ranges, output sizes and seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from boda import augment as A
from boda.errors import InvalidParameterError
from boda.nn import losses as L

# ----------------------------------------------------------------- reference formulas


def _nt_xent_ref(z1, z2, tau):
    """SimCLR Eq. 1 in float64: 2N anchors, the other view is the positive, every
    other embedding (self excluded) is in the denominator."""
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    n = z1.shape[0]
    s = z @ z.T / tau
    idx = torch.arange(2 * n)
    pos = s[idx, (idx + n) % (2 * n)]
    others = s.masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)
    return (torch.logsumexp(others, dim=1) - pos).mean()


def _info_nce_ref(q, k, queue, tau):
    """MoCo Eq. 1 in float64: one positive key, the queue's keys as negatives."""
    q, k, queue = (F.normalize(t.double(), dim=1) for t in (q, k, queue))
    pos = (q * k).sum(1, keepdim=True) / tau
    logits = torch.cat([pos, q @ queue.T / tau], dim=1)
    return (torch.logsumexp(logits, dim=1) - pos[:, 0]).mean()


def _pair(gen, n=128, d=64, noise=0.8):
    """Embeddings of two views of the same images (positives close together), where
    a low temperature makes the gradient a small difference of large terms."""
    z1 = torch.randn(n, d, generator=gen)
    return z1, z1 + noise * torch.randn(n, d, generator=gen)


def _grad_error(fn, ref, z1, z2):
    """Loss value, the float64 reference value, and the relative error of the
    gradient with respect to ``z1`` (the query: MoCo's key gets none)."""
    a = z1.clone().requires_grad_(True)
    value = fn(a, z2)
    value.backward()
    b = z1.detach().double().requires_grad_(True)
    ref_value = ref(b, z2.double())
    ref_value.backward()
    return value, ref_value.item(), float((a.grad.double() - b.grad).norm() / b.grad.norm())


# ----------------------------------------------------------------- half precision


def _moco(q, k, queue, tau):
    loss = L.MoCoLoss(dim=q.shape[1], queue_size=queue.shape[0], temperature=tau)
    loss.queue.copy_(queue)
    return loss(q, k)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("which", ["nt_xent", "info_nce", "moco", "supcon"])
def test_contrastive_losses_take_half_embeddings_in_float32(dtype, which):
    # bfloat16 keeps 8 bits of a cosine similarity; divided by tau = 0.07 the logits
    # were off by ~0.05 and the gradient by 75 % (float16: 10 %). Like the other
    # boda losses (and torch's autocast for its own), they now compute in float32.
    gen = torch.Generator().manual_seed(0)
    z1, z2 = (t.to(dtype) for t in _pair(gen))
    queue = F.normalize(torch.randn(300, z1.shape[1], generator=gen), dim=1)
    tau = 0.07
    if which == "nt_xent":
        args = (lambda a, b: L.nt_xent_loss(a, b, tau), lambda a, b: _nt_xent_ref(a, b, tau))
    elif which == "supcon":
        args = (
            lambda a, b: L.supcon_loss(torch.stack([a, b], 1), temperature=tau),
            lambda a, b: _nt_xent_ref(a, b, tau),  # SupCon without labels is NT-Xent
        )
    else:
        fn = L.info_nce_loss if which == "info_nce" else _moco
        args = (
            lambda a, b: fn(a, b, queue, tau),
            lambda a, b: _info_nce_ref(a, b, queue, tau),
        )
    value, ref, err = _grad_error(*args, z1, z2)
    value = value.detach()
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(ref, rel=1e-5)
    # the gradient of a half leaf is rounded to its dtype (8 or 11 bits)
    assert err < (5e-3 if dtype == torch.bfloat16 else 1e-3)


@pytest.mark.parametrize("which", ["nt_xent", "supcon", "info_nce"])
def test_contrastive_losses_under_bf16_autocast_match_float64(which):
    # Under autocast the similarity matmul ran in bfloat16 (and SupCon's whole
    # log-softmax): SupCon's gradient was 97 % off at tau = 0.07, NT-Xent's 2.4 %.
    gen = torch.Generator().manual_seed(1)
    z1, z2 = _pair(gen)
    queue = F.normalize(torch.randn(300, z1.shape[1], generator=gen), dim=1)
    tau = 0.07
    fns = {
        "nt_xent": (lambda a, b: L.nt_xent_loss(a, b, tau), lambda a, b: _nt_xent_ref(a, b, tau)),
        "supcon": (
            lambda a, b: L.supcon_loss(torch.stack([a, b], 1), temperature=tau),
            lambda a, b: _nt_xent_ref(a, b, tau),
        ),
        "info_nce": (
            lambda a, b: L.info_nce_loss(a, b, queue, tau),
            lambda a, b: _info_nce_ref(a, b, queue, tau),
        ),
    }
    fn, ref = fns[which]

    def under_autocast(a, b):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fn(a, b)

    value, ref_value, err = _grad_error(under_autocast, ref, z1, z2)
    value = value.detach()
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(ref_value, rel=1e-5)
    assert err < 1e-3


# ----------------------------------------------------------------- degenerate input


def test_contrastive_losses_refuse_an_empty_batch():
    # N = 0 gave a NaN loss (the mean of nothing), which poisons the weights silently
    empty = torch.zeros(0, 8)
    with pytest.raises(InvalidParameterError, match="empty"):
        L.nt_xent_loss(empty, empty)
    with pytest.raises(InvalidParameterError, match="empty"):
        L.info_nce_loss(empty, empty, torch.randn(5, 8))
    with pytest.raises(InvalidParameterError, match="empty"):
        L.MoCoLoss(dim=8, queue_size=5)(empty, empty)


def test_contrastive_batch_of_one_and_duplicates_follow_the_formula():
    # not bugs, but the edges of Eq. 1: one pair has no negative (loss 0), and a
    # duplicated image is a negative of its copy, exactly as in the formula
    gen = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(1, 4, generator=gen), torch.randn(1, 4, generator=gen)
    assert float(L.nt_xent_loss(z1, z2)) == 0.0
    z1, z2 = _pair(gen, n=6, d=5)
    z1[3], z2[3] = z1[0], z2[0]
    assert float(L.nt_xent_loss(z1, z2, 0.3)) == pytest.approx(
        float(_nt_xent_ref(z1, z2, 0.3)), rel=1e-6
    )


@pytest.mark.parametrize("temperature", [math.inf])
def test_temperatures_must_be_finite_and_positive(temperature):
    # tau = inf made every logit 0: a constant loss log(2N - 1) with no gradient
    z = torch.randn(4, 8)
    with pytest.raises(InvalidParameterError, match="temperature"):
        L.nt_xent_loss(z, z, temperature)
    with pytest.raises(InvalidParameterError, match="temperature"):
        L.info_nce_loss(z, z, z, temperature)
    with pytest.raises(InvalidParameterError, match="temperature"):
        L.supcon_loss(torch.stack([z, z], 1), temperature=temperature)
    with pytest.raises(InvalidParameterError, match="temperature"):
        L.MoCoLoss(dim=8, temperature=temperature)
    # distillation's T = inf gave a NaN loss (inf**2 * 0)
    with pytest.raises(InvalidParameterError, match="temperature"):
        L.distillation_loss(z, z, temperature=temperature)


def test_moco_enqueue_names_the_dimension_it_was_built_with():
    # a raw "shape mismatch: value tensor of shape [2, 4] cannot be broadcast"
    loss = L.MoCoLoss(dim=3, queue_size=5)
    for n in (2, 9):  # a batch smaller and larger than the queue
        with pytest.raises(InvalidParameterError, match="dim=3"):
            loss.enqueue(torch.randn(n, 4))


def test_supcon_takes_labels_as_a_list():
    # was "'list' object has no attribute 'shape'"
    f = torch.randn(4, 2, 8, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        L.supcon_loss(f, [0, 0, 1, 1]), L.supcon_loss(f, torch.tensor([0, 0, 1, 1]))
    )


def test_contrastive_losses_refuse_integer_embeddings_clearly():
    # was torch's "linalg.vector_norm: Expected a floating point or complex tensor"
    z = torch.randint(0, 3, (4, 8))
    with pytest.raises(InvalidParameterError, match="floating"):
        L.nt_xent_loss(z, z)
    with pytest.raises(InvalidParameterError, match="floating"):
        L.supcon_loss(torch.stack([z, z], 1))


# ----------------------------------------------------------------- augmentations


def test_torch_crop_does_not_share_memory_with_the_callers_batch():
    # the numpy form copies; the torch form returned a view, so editing the crop in
    # place (cutout by hand, x.mul_()) changed the caller's batch
    x = torch.rand(2, 3, 10, 12)
    before = x.clone()
    out, _ = A.crop(x, 1, 2, 5, 6)
    out.zero_()
    torch.testing.assert_close(x, before)


@pytest.mark.parametrize("sigma", [5.0, 9.0])
def test_torch_gaussian_blur_keeps_values_within_0_1(sigma):
    # the float32 kernel sums to 1 + 2e-7: a white image came out 1.0000002
    ones = torch.ones(1, 3, 31, 29)
    out = A.gaussian_blur(ones, sigma)
    assert float(out.max()) <= 1.0 and float(out.min()) >= 0.0
    zeros = A.gaussian_blur(torch.zeros(1, 3, 9, 9), sigma)
    assert float(zeros.min()) >= 0.0


def test_an_int_size_is_a_square_as_in_torchvision():
    # size=96 (torchvision's RandomResizedCrop(96)) was a raw "object of type 'int'
    # has no len()"
    x = torch.rand(2, 3, 20, 24)
    assert A.random_view(x, 16, seed=0).shape == (2, 3, 16, 16)
    v1, v2 = A.simclr_views(x, 16, seed=0)
    assert v1.shape == v2.shape == (2, 3, 16, 16)
    assert A.moco_v2_views(x[0].permute(1, 2, 0).numpy(), 8, seed=0)[0].shape == (8, 8, 3)
    out, t = A.random_resized_crop(x, 16, seed=0)
    assert out.shape == (2, 3, 16, 16) and t.output_size == (16, 16)
    assert A.resized_crop(x, 0, 0, 5, 5, 7)[0].shape == (2, 3, 7, 7)
    torch.testing.assert_close(
        A.random_view(x, 16, seed=3), A.random_view(x, (16, 16), seed=3)
    )


@pytest.mark.parametrize("size", [(8.7, 16), (True, 16), (16,), "16"])
def test_a_size_that_is_not_whole_pixels_is_refused(size):
    # (8.7, 16) gave 9 rows sampled with a scale made for 8.7: the last row
    # lay past the crop
    x = torch.rand(1, 3, 20, 24)
    with pytest.raises(InvalidParameterError, match="size"):
        A.random_resized_crop(x, size, seed=0)
    with pytest.raises(InvalidParameterError, match="size"):
        A.resized_crop(x, 0, 0, 5, 5, size)


def test_a_torch_generator_as_seed_gets_a_clear_error():
    # numpy's "SeedSequence expects int or sequence of ints" came out of every op
    x = torch.rand(2, 3, 12, 12)
    for call in (
        lambda s: A.simclr_views(x, (8, 8), seed=s),
        lambda s: A.random_view(x, (8, 8), seed=s),
        lambda s: A.random_resized_crop(x, (8, 8), seed=s),
        lambda s: A.color_jitter(x, seed=s),
        lambda s: A.cutout(x, 3, seed=s),
        lambda s: A.rand_augment(x, seed=s),
    ):
        with pytest.raises(InvalidParameterError, match="seed"):
            call(torch.Generator().manual_seed(0))
    # what numpy takes still works
    a = A.random_view(x, (8, 8), seed=np.int64(4))
    torch.testing.assert_close(a, A.random_view(x, (8, 8), seed=4))
