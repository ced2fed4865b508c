"""Training losses: classification, distillation, contrastive, image and box losses.

Each loss has a functional form (``focal_loss``) and an :class:`torch.nn.Module`
form (``FocalLoss``) that stores the hyper-parameters and calls the function,
as in kornia. Shapes follow torch: logits ``(B, K)``, integer targets ``(B,)``,
embeddings ``(N, D)``, images ``(B, C, H, W)``, boxes ``(N, 4)`` as
``(x1, y1, x2, y2)``.

``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-sample
values) wherever a loss has one value per sample.

Contents
--------
- Classification: :func:`cross_entropy` (label smoothing), :func:`focal_loss`
  (softmax) and :func:`sigmoid_focal_loss` (RetinaNet's one-vs-all form).
- Distillation: :func:`distillation_loss`.
- Contrastive: :func:`nt_xent_loss` (SimCLR), :func:`info_nce_loss` and the
  queue-holding :class:`MoCoLoss` (MoCo), :func:`supcon_loss` (SupCon, L_out).
- Reconstruction: :func:`l1_loss`, :func:`l2_loss`, :func:`charbonnier_loss`,
  :func:`perceptual_loss`, :func:`style_loss` (:func:`gram_matrix`),
  :func:`total_variation`.
- GANs: :func:`gan_loss`, :func:`pix2pix_generator_loss`,
  :func:`pix2pix_discriminator_loss`, :func:`cycle_consistency_loss`.
- Boxes: :func:`iou_loss`, :func:`giou_loss`, :func:`diou_loss`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from boda.errors import InvalidParameterError

__all__ = [
    "BoxIoULoss",
    "CharbonnierLoss",
    "CrossEntropyLoss",
    "CycleConsistencyLoss",
    "DistillationLoss",
    "FocalLoss",
    "MoCoLoss",
    "NTXentLoss",
    "PerceptualLoss",
    "Pix2PixLoss",
    "StyleLoss",
    "SupConLoss",
    "TotalVariation",
    "charbonnier_loss",
    "cross_entropy",
    "cycle_consistency_loss",
    "diou_loss",
    "distillation_loss",
    "focal_loss",
    "gan_loss",
    "giou_loss",
    "gram_matrix",
    "info_nce_loss",
    "iou_loss",
    "l1_loss",
    "l2_loss",
    "nt_xent_loss",
    "perceptual_loss",
    "pix2pix_discriminator_loss",
    "pix2pix_generator_loss",
    "sigmoid_focal_loss",
    "style_loss",
    "supcon_loss",
    "total_variation",
]

_REDUCTIONS = ("mean", "sum", "none")

FeatureExtractor = Callable[[Tensor], "Tensor | Sequence[Tensor] | Mapping[str, Tensor]"]


# --------------------------------------------------------------------------- helpers


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise InvalidParameterError(
            f"reduction must be one of {_REDUCTIONS}, got {reduction!r}."
        )


def _check_positive(value: float, name: str) -> None:
    if not value > 0:
        raise InvalidParameterError(f"{name} must be > 0, got {value!r}.")


def _wide(x: Tensor) -> Tensor:
    """``x`` in float32 when it is float16 / bfloat16, else unchanged.

    Losses are sums of logs and exponentials: torch's autocast runs its own
    losses (``cross_entropy``, ``nll_loss``, ``binary_cross_entropy_with_logits``)
    in float32 for the same reason, and the loss comes back in float32.
    """
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_gamma(gamma: float) -> None:
    if not gamma >= 0:  # also refuses NaN
        raise InvalidParameterError(f"gamma must be a number >= 0, got {gamma!r}.")


def _check_logits_target(logits: Tensor, target: Tensor) -> Tensor:
    """Check a (B, K) logits / (B,) class-index pair; return ``target`` as int64
    (uint8 or int16 indices are fine, but ``gather`` takes only int64)."""
    if not isinstance(logits, Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise InvalidParameterError(f"logits must be a (B, K) tensor, got {shape}.")
    if not isinstance(target, Tensor) or target.shape != logits.shape[:1]:
        shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise InvalidParameterError(
            f"target must be a ({logits.shape[0]},) tensor of class indices, got {shape}."
        )
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise InvalidParameterError(
            f"target must hold integer class indices, got dtype {target.dtype}."
        )
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= logits.shape[1]):
        raise InvalidParameterError(
            f"target class indices must lie in [0, {logits.shape[1] - 1}], "
            f"got range [{int(target.min())}, {int(target.max())}]."
        )
    return target.long()


def _check_same_shape(a: Tensor, b: Tensor, names: str = "input and target") -> None:
    if a.shape != b.shape:
        raise InvalidParameterError(
            f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}."
        )


def _check_embeddings(z: Tensor, name: str, allow_empty: bool = False) -> None:
    if not isinstance(z, Tensor) or z.ndim != 2:
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise InvalidParameterError(f"{name} must be an (N, D) tensor, got {shape}.")
    _check_float_embeddings(z, name)
    if z.shape[0] == 0 and not allow_empty:  # the mean over no anchors is NaN
        raise InvalidParameterError(
            f"{name} is an empty batch (N = 0); a contrastive loss needs samples."
        )


def _check_float_embeddings(z: Tensor, name: str) -> None:
    if not z.is_floating_point():
        raise InvalidParameterError(
            f"{name} must hold floating-point embeddings, got dtype {z.dtype} "
            "(convert with .float())."
        )


def _check_temperature(temperature: float) -> None:
    # tau = inf makes every logit 0: a constant loss with no gradient
    if not 0 < temperature < math.inf:  # also refuses NaN
        raise InvalidParameterError(
            f"temperature must be > 0 and finite, got {temperature!r}."
        )


def _full_precision(z: Tensor):
    """A context without autocast for the similarities of a contrastive loss.

    The logits are cosine similarities divided by tau (0.07-0.2): a bfloat16
    product keeps about 3 digits, i.e. logits off by ~0.05, and at tau = 0.07 the
    gradient came out 75 % wrong (SupCon under autocast 97 %). Inputs are
    widened with :func:`_wide` and the matmul runs in float32, as torch's
    autocast runs its own softmax losses.
    """
    try:
        return torch.autocast(z.device.type, enabled=False)
    except RuntimeError:  # a device type autocast does not know has no autocast
        return contextlib.nullcontext()


# --------------------------------------------------------------------------- classification


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Cross-entropy with label smoothing.

    .. math::

        \ell = -(1 - \varepsilon)\log p_y - \frac{\varepsilon}{K}\sum_{k=1}^{K}\log p_k,
        \qquad p = \operatorname{softmax}(z)

    i.e. the cross-entropy against the smoothed target
    :math:`(1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon/K` (Szegedy et al. 2016,
    Sec. 7). Equals :func:`torch.nn.functional.cross_entropy` with the same
    ``label_smoothing``.

    Parameters
    ----------
    logits : Tensor
        ``(B, K)`` unnormalised scores.
    target : Tensor
        ``(B,)`` integer class indices in ``[0, K)``.
    label_smoothing : float
        :math:`\varepsilon \in [0, 1]`; 0 gives the plain cross-entropy.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or ``(B,)`` with ``reduction="none"``. float16 / bfloat16 logits
        are computed and returned in float32, as under torch's autocast. A class
        masked with a ``-inf`` logit adds nothing (without label smoothing).

    Raises
    ------
    InvalidParameterError
        Wrong shapes, non-integer targets, indices out of range, ``label_smoothing``
        outside ``[0, 1]``.

    References
    ----------
    C. Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016, Sec. 7 (label-smoothing regularisation).

    Examples
    --------
    >>> logits = torch.tensor([[2.0, 0.0, 0.0]])
    >>> round(float(cross_entropy(logits, torch.tensor([0]), label_smoothing=0.1)), 4)
    0.3729
    """
    target = _check_logits_target(logits, target)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise InvalidParameterError(
            f"label_smoothing must lie in [0, 1], got {label_smoothing!r}."
        )
    logp = F.log_softmax(_wide(logits), dim=1)
    nll = -logp.gather(1, target[:, None]).squeeze(1)
    if label_smoothing == 0:
        # not 1 * nll - 0 * mean(log p): a masked class (logit -inf) would give 0 * -inf = NaN
        return _reduce(nll, reduction)
    loss = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(dim=1)
    return _reduce(loss, reduction)


def focal_loss(
    logits: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: float | Tensor | None = 0.25,
    reduction: str = "mean",
) -> Tensor:
    r"""Multi-class focal loss.

    .. math::

        \mathrm{FL}(p_t) = -\alpha_t\,(1 - p_t)^{\gamma}\,\log p_t,
        \qquad p_t = \operatorname{softmax}(z)_y

    (Lin et al. 2017, Eq. 5, with the softmax in place of the per-class sigmoid).
    The modulating factor :math:`(1-p_t)^\gamma` shrinks the loss of well
    classified samples. With ``gamma=0`` and ``alpha=None`` it is the plain
    cross-entropy.

    Parameters
    ----------
    logits : Tensor
        ``(B, K)`` unnormalised scores.
    target : Tensor
        ``(B,)`` integer class indices.
    gamma : float
        Focusing parameter :math:`\gamma \ge 0` (paper: 2).
    alpha : float, Tensor or None
        Class balance weight :math:`\alpha_t`. A float applies the same weight to
        every sample (the paper's 0.25 weights its positive class; with a softmax
        a scalar only rescales), a ``(K,)`` tensor gives one weight per class,
        ``None`` means 1.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or ``(B,)`` with ``reduction="none"``; float32 for float16 /
        bfloat16 logits.

    Raises
    ------
    InvalidParameterError
        Wrong shapes or targets, ``gamma`` not ``>= 0`` (NaN included), a negative
        or non-finite ``alpha``.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss for Dense
    Object Detection", ICCV 2017, Eq. 5.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(float(focal_loss(logits, torch.tensor([0]), gamma=2.0, alpha=None)), 4)
    0.1733
    """
    target = _check_logits_target(logits, target)
    _check_reduction(reduction)
    _check_gamma(gamma)
    _check_focal_alpha(alpha, logits.shape[1])
    logpt = F.log_softmax(_wide(logits), dim=1).gather(1, target[:, None]).squeeze(1)
    # 1 - p_t as -expm1(log p_t) (exact near p_t = 1), kept above zero: for
    # 0 < gamma < 1 the derivative of x**gamma is infinite at x = 0, and a
    # confidently right sample would turn every gradient into NaN.
    loss = -_focal_weight(-torch.expm1(logpt), gamma) * logpt
    if isinstance(alpha, Tensor):
        loss = alpha.to(loss)[target] * loss
    elif alpha is not None:
        loss = float(alpha) * loss
    return _reduce(loss, reduction)


def _check_focal_alpha(alpha: float | Tensor | None, k: int) -> None:
    """A weight is >= 0 and finite: a negative one turns the loss into a reward."""
    if alpha is None:
        return
    if isinstance(alpha, Tensor):
        if alpha.shape != (k,):
            raise InvalidParameterError(
                f"alpha as a tensor must have shape ({k},), got {tuple(alpha.shape)}."
            )
        ok = bool((torch.isfinite(alpha) & (alpha >= 0)).all())
    else:
        ok = math.isfinite(alpha) and alpha >= 0
    if not ok:
        raise InvalidParameterError(
            f"alpha must be finite and >= 0 (a class weight), got {alpha!r}."
        )


def _focal_weight(one_minus_pt: Tensor, gamma: float) -> Tensor:
    """``(1 - p_t) ** gamma`` with a finite gradient where ``1 - p_t`` is 0."""
    if gamma == 0:
        return torch.ones_like(one_minus_pt)
    tiny = torch.finfo(one_minus_pt.dtype).tiny
    return one_minus_pt.clamp_min(tiny) ** gamma


def sigmoid_focal_loss(
    logits: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    reduction: str = "mean",
) -> Tensor:
    r"""Binary (per-class sigmoid) focal loss, the form used by RetinaNet.

    .. math::

        \mathrm{FL}(p_t) = -\alpha_t\,(1 - p_t)^{\gamma}\,\log p_t,\qquad
        p_t = \begin{cases} \sigma(z) & y = 1 \\ 1 - \sigma(z) & y = 0\end{cases},\qquad
        \alpha_t = \begin{cases} \alpha & y = 1 \\ 1 - \alpha & y = 0\end{cases}

    (Lin et al. 2017, Eq. 5). With ``gamma=0`` and ``alpha=None`` it is
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`.

    Parameters
    ----------
    logits : Tensor
        Any shape, e.g. ``(B, K)`` one-vs-all scores or ``(B, A, K)`` per anchor.
    target : Tensor
        Same shape, values in ``[0, 1]`` (1 = positive).
    gamma : float
    alpha : float or None
        Weight of the positives; the negatives get ``1 - alpha``.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or element-wise with ``reduction="none"``; float32 for float16 /
        bfloat16 logits.

    Raises
    ------
    InvalidParameterError
        Shapes differ, targets outside ``[0, 1]``, ``gamma`` not ``>= 0``,
        ``alpha`` outside ``[0, 1]``.

    References
    ----------
    T.-Y. Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, Eq. 5.

    Examples
    --------
    >>> round(float(sigmoid_focal_loss(torch.zeros(1), torch.ones(1), alpha=None)), 4)
    0.1733
    """
    _check_same_shape(logits, target, "logits and target")
    _check_reduction(reduction)
    _check_gamma(gamma)
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise InvalidParameterError(
            f"alpha must lie in [0, 1] (positives get alpha, negatives 1 - alpha), got {alpha!r}."
        )
    if target.numel() and not bool(((target >= 0) & (target <= 1)).all()):
        raise InvalidParameterError(
            "target must hold values in [0, 1] (1 = positive, 0 = negative), got range "
            f"[{float(target.min())}, {float(target.max())}]; ignore anchors by masking "
            "the per-element loss (reduction='none'), not with -1."
        )
    logits = _wide(logits)
    target = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    pt = p * target + (1 - p) * (1 - target)
    loss = _focal_weight(1 - pt, gamma) * ce
    if alpha is not None:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return _reduce(loss, reduction)


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    reduction: str = "mean",
) -> Tensor:
    r"""Knowledge-distillation loss (Hinton et al. 2015).

    .. math::

        \mathcal{L} = \alpha\,T^2\,\mathrm{KL}\!\left(\sigma(z_t/T)\,\|\,\sigma(z_s/T)\right)
        + (1-\alpha)\,\mathrm{CE}(\sigma(z_s), y)

    The :math:`T^2` factor keeps the soft-target gradients on the same scale as
    the hard-target ones when :math:`T` changes (paper, Sec. 2). Without
    ``target`` only the soft term is returned (``alpha`` is then ignored).

    Parameters
    ----------
    student_logits, teacher_logits : Tensor
        ``(B, K)`` logits; the teacher's are detached.
    target : Tensor, optional
        ``(B,)`` integer labels for the student cross-entropy.
    temperature : float
        Softmax temperature :math:`T > 0`.
    alpha : float
        Weight of the soft (distillation) term, in ``[0, 1]``.
    reduction : {"mean", "sum", "none"}
        Over the batch (``"mean"`` is the batch mean of the per-sample KL).

    Returns
    -------
    Tensor
        Scalar, or ``(B,)`` with ``reduction="none"``.

    References
    ----------
    G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural
    Network", NeurIPS Deep Learning Workshop 2015, arXiv:1503.02531, Sec. 2.

    Examples
    --------
    >>> z = torch.tensor([[1.0, 2.0, 3.0]])
    >>> float(distillation_loss(z, z))
    0.0
    """
    _check_reduction(reduction)
    _check_temperature(temperature)
    _check_same_shape(student_logits, teacher_logits, "student_logits and teacher_logits")
    if student_logits.ndim != 2:
        raise InvalidParameterError(
            f"logits must be (B, K) tensors, got {tuple(student_logits.shape)}."
        )
    if not 0.0 <= alpha <= 1.0:
        raise InvalidParameterError(f"alpha must lie in [0, 1], got {alpha!r}.")
    t = temperature
    log_ps = F.log_softmax(_wide(student_logits) / t, dim=1)
    log_pt = F.log_softmax(_wide(teacher_logits.detach()) / t, dim=1)
    p_teacher = log_pt.exp()
    # A class the teacher rules out (logit -inf) adds 0, not 0 * -inf = NaN.
    terms = torch.where(p_teacher > 0, p_teacher * (log_pt - log_ps), 0.0)
    kl = terms.sum(dim=1) * (t * t)
    if target is None:
        return _reduce(kl, reduction)
    ce = cross_entropy(student_logits, target, reduction="none")
    return _reduce(alpha * kl + (1.0 - alpha) * ce, reduction)


# --------------------------------------------------------------------------- contrastive


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

    For the :math:`2N` embeddings of two views, with cosine similarity
    :math:`s_{ij}` and :math:`j(i)` the other view of sample :math:`i`:

    .. math::

        \ell_i = -\log\frac{\exp(s_{i,j(i)}/\tau)}
                           {\sum_{k \ne i}\exp(s_{ik}/\tau)},
        \qquad \mathcal{L} = \frac{1}{2N}\sum_{i=1}^{2N}\ell_i

    (Chen et al. 2020, Eq. 1 and Algorithm 1). Every other image in the batch,
    of both views, is a negative.

    Parameters
    ----------
    z1, z2 : Tensor
        ``(N, D)`` embeddings of the two views; row ``i`` of each comes from the
        same image. Normalised inside.
    temperature : float
        :math:`\tau > 0`.

    Returns
    -------
    Tensor
        Scalar. float32 for float16 / bfloat16 input,
        computed with autocast off (the logits are similarities / tau).

    References
    ----------
    T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations", ICML 2020, Eq. 1.

    Examples
    --------
    >>> z = torch.eye(4)
    >>> round(float(nt_xent_loss(z, z, temperature=1.0)), 4)
    1.1654
    """
    _check_embeddings(z1, "z1")
    _check_embeddings(z2, "z2")
    _check_same_shape(z1, z2, "z1 and z2")
    _check_temperature(temperature)
    n = z1.shape[0]
    with _full_precision(z1):
        z = F.normalize(torch.cat([_wide(z1), _wide(z2)]), dim=1)
        sim = z @ z.T / temperature
        eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        sim = sim.masked_fill(eye, float("-inf"))
        positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return F.cross_entropy(sim, positives)


def info_nce_loss(
    query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.07
) -> Tensor:
    r"""InfoNCE with a queue of negatives, as in MoCo.

    .. math::

        \mathcal{L}_q = -\log\frac{\exp(q\cdot k_+/\tau)}
            {\exp(q\cdot k_+/\tau) + \sum_{i=1}^{K}\exp(q\cdot k_i/\tau)}

    (He et al. 2020, Eq. 1): the positive key is the other view of the same
    image, the negatives are the :math:`K` keys in the queue. Queries and keys
    are L2-normalised here.

    Parameters
    ----------
    query : Tensor
        ``(N, D)`` query embeddings (from the trained encoder).
    key : Tensor
        ``(N, D)`` positive keys (from the momentum encoder); detached.
    queue : Tensor
        ``(K, D)`` negative keys.
    temperature : float
        :math:`\tau > 0` (MoCo: 0.07, MoCo v2: 0.2).

    Returns
    -------
    Tensor
        Scalar, the batch mean. float32 for float16 / bfloat16 input,
        computed with autocast off (the logits are similarities / tau).

    References
    ----------
    K. He, H. Fan, Y. Wu, S. Xie, R. Girshick, "Momentum Contrast for Unsupervised
    Visual Representation Learning", CVPR 2020, Eq. 1 and Algorithm 1.
    A. van den Oord, Y. Li, O. Vinyals, "Representation Learning with Contrastive
    Predictive Coding", arXiv:1807.03748, 2018 (InfoNCE).

    Examples
    --------
    >>> q = torch.tensor([[1.0, 0.0]])
    >>> queue = torch.tensor([[0.0, 1.0]])
    >>> round(float(info_nce_loss(q, q, queue, temperature=1.0)), 4)
    0.3133
    """
    _check_embeddings(query, "query")
    _check_embeddings(key, "key")
    _check_embeddings(queue, "queue", allow_empty=True)
    _check_same_shape(query, key, "query and key")
    if queue.shape[1] != query.shape[1]:
        raise InvalidParameterError(
            f"queue must hold keys of dimension {query.shape[1]}, got {tuple(queue.shape)}."
        )
    _check_temperature(temperature)
    with _full_precision(query):
        q = F.normalize(_wide(query), dim=1)
        k = F.normalize(_wide(key.detach()), dim=1).to(q.dtype)
        negatives = F.normalize(_wide(queue.detach()), dim=1).to(q.dtype)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ negatives.T
        logits = torch.cat([l_pos, l_neg], dim=1) / temperature
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, labels)


def supcon_loss(
    features: Tensor, labels: Tensor | Sequence[int] | None = None, temperature: float = 0.1
) -> Tensor:
    r"""Supervised contrastive loss, the :math:`\mathcal{L}^{sup}_{out}` form.

    With all :math:`V` views of the :math:`N` samples pooled into :math:`I`
    (:math:`|I| = NV`), :math:`A(i) = I\setminus\{i\}` and :math:`P(i)` the
    other members of :math:`A(i)` sharing :math:`i`'s label:

    .. math::

        \mathcal{L}^{sup}_{out} = \frac{1}{|I|}\sum_{i\in I}\frac{-1}{|P(i)|}
            \sum_{p\in P(i)}\log\frac{\exp(z_i\cdot z_p/\tau)}
                                     {\sum_{a\in A(i)}\exp(z_i\cdot z_a/\tau)}

    (Khosla et al. 2020, Eq. 2). We implement :math:`\mathcal{L}_{out}` (the mean
    over positives outside the log) rather than :math:`\mathcal{L}_{in}` (Eq. 3)
    because the paper shows its gradient is better behaved and it trains clearly
    better (Table 2, 78.7% vs 67.4% top-1 on ImageNet); it is also the form of the
    authors' code. Without labels, every sample is its own class and the loss is
    exactly SimCLR's NT-Xent for two views.

    Parameters
    ----------
    features : Tensor
        ``(N, V, D)`` embeddings (``V`` views of each sample), or ``(N, D)`` for a
        single view. Normalised inside.
    labels : Tensor, optional
        ``(N,)`` integer labels; ``None`` means all samples differ.
    temperature : float
        :math:`\tau > 0`.

    Returns
    -------
    Tensor
        Scalar. Anchors without any positive are left out of the mean. float32
        for float16 / bfloat16 input, computed with autocast off (the logits
        are similarities / tau).

    References
    ----------
    P. Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020, Eq. 2-3 and
    Table 2.

    Examples
    --------
    >>> f = torch.eye(2)[:, None, :].repeat(1, 2, 1)
    >>> round(float(supcon_loss(f, temperature=1.0)), 4)
    0.5514
    """
    if not isinstance(features, Tensor) or features.ndim not in (2, 3):
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise InvalidParameterError(f"features must be (N, V, D) or (N, D), got {shape}.")
    _check_float_embeddings(features, "features")
    _check_temperature(temperature)
    if features.ndim == 2:
        features = features[:, None, :]
    n, v, d = features.shape
    if n == 0:
        raise InvalidParameterError(
            "features is an empty batch (N = 0); supcon_loss needs samples with positives."
        )
    if labels is None:
        labels = torch.arange(n, device=features.device)
    elif not isinstance(labels, Tensor):  # a list of ints was an AttributeError
        labels = torch.as_tensor(labels, device=features.device)
    if labels.shape != (n,):
        raise InvalidParameterError(f"labels must have shape ({n},), got {tuple(labels.shape)}.")
    # view-major order: all samples of view 0, then of view 1, ...
    lab = labels.repeat(v)
    with _full_precision(features):
        z = F.normalize(_wide(features).transpose(0, 1).reshape(n * v, d), dim=1)
        self_mask = torch.eye(n * v, dtype=torch.bool, device=z.device)
        logits = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (lab[:, None] == lab[None, :]) & ~self_mask
    n_pos = positive.sum(dim=1)
    keep = n_pos > 0
    if not bool(keep.any()):
        raise InvalidParameterError(
            "supcon_loss needs at least one positive pair: use V >= 2 views or "
            "repeated labels."
        )
    mean_log_prob_pos = log_prob.masked_fill(~positive, 0.0).sum(dim=1)[keep] / n_pos[keep]
    return -mean_log_prob_pos.mean()


# --------------------------------------------------------------------------- reconstruction


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Mean absolute error :math:`\frac{1}{n}\sum|x - y|`.

    Parameters
    ----------
    input, target : Tensor
        Same shape, any.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or the element-wise values with ``reduction="none"``.

    Examples
    --------
    >>> float(l1_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])))
    1.5
    """
    _check_same_shape(input, target)
    _check_reduction(reduction)
    return _reduce((input - target).abs(), reduction)


def l2_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Mean squared error :math:`\frac{1}{n}\sum(x - y)^2`.

    Parameters
    ----------
    input, target : Tensor
        Same shape, any.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or the element-wise values with ``reduction="none"``.

    Examples
    --------
    >>> float(l2_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])))
    2.5
    """
    _check_same_shape(input, target)
    _check_reduction(reduction)
    return _reduce((input - target).square(), reduction)


def charbonnier_loss(
    input: Tensor, target: Tensor, eps: float = 1e-3, reduction: str = "mean"
) -> Tensor:
    r"""Charbonnier loss, a differentiable robust L1.

    .. math:: \rho(x) = \sqrt{(x - y)^2 + \varepsilon^2}

    It behaves like L2 for :math:`|x-y| \ll \varepsilon` and like L1 beyond;
    used by LapSRN (Lai et al. 2017, Eq. 1).

    Parameters
    ----------
    input, target : Tensor
        Same shape.
    eps : float
        :math:`\varepsilon > 0` (LapSRN: 1e-3).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor

    References
    ----------
    P. Charbonnier, L. Blanc-Féraud, G. Aubert, M. Barlaud, "Two deterministic
    half-quadratic regularization algorithms for computed imaging", ICIP 1994.
    W.-S. Lai, J.-B. Huang, N. Ahuja, M.-H. Yang, "Deep Laplacian Pyramid Networks
    for Fast and Accurate Super-Resolution", CVPR 2017, Eq. 1.

    Examples
    --------
    >>> round(float(charbonnier_loss(torch.tensor([3.0]), torch.tensor([0.0]), eps=4.0)), 4)
    5.0
    """
    _check_same_shape(input, target)
    _check_reduction(reduction)
    _check_positive(eps, "eps")
    return _reduce(torch.sqrt((input - target).square() + eps * eps), reduction)


def _feature_pairs(
    extractor: FeatureExtractor, input: Tensor, target: Tensor
) -> tuple[list[Tensor], list[Tensor]]:
    """The extractor's maps of ``input`` (with gradient) and of ``target`` (without).

    Refuses an extractor that returns no maps (the loss would be a constant with
    no gradient) or a different number of maps for the two images.
    """
    fx = _features(extractor, input)
    with torch.no_grad():
        fy = _features(extractor, target)
    if not fx:
        raise InvalidParameterError(
            "the feature extractor returned no feature maps; return at least one tensor."
        )
    if len(fx) != len(fy):
        raise InvalidParameterError(
            f"the feature extractor returned {len(fx)} maps for the input but {len(fy)} "
            "for the target; it must return the same maps for both."
        )
    return fx, fy


def _features(extractor: FeatureExtractor, x: Tensor) -> list[Tensor]:
    out = extractor(x)
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, Mapping):
        return list(out.values())
    if isinstance(out, Sequence):
        return list(out)
    raise InvalidParameterError(
        "the feature extractor must return a tensor, a sequence of tensors or a "
        f"mapping of tensors, got {type(out).__name__}."
    )


def _layer_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise InvalidParameterError(
            f"got {len(weights)} layer weights for {n} feature maps; give one per map."
        )
    return [float(w) for w in weights]


def perceptual_loss(
    input: Tensor,
    target: Tensor,
    extractor: FeatureExtractor,
    weights: Sequence[float] | None = None,
) -> Tensor:
    r"""Feature-reconstruction (perceptual) loss over any feature extractor.

    .. math::

        \ell_{feat} = \sum_j w_j\,\frac{1}{C_j H_j W_j}
                      \left\|\phi_j(\hat y) - \phi_j(y)\right\|_2^2

    averaged over the batch (Johnson et al. 2016, Sec. 3.3). :math:`\phi_j` are
    the feature maps the extractor returns (a tensor, a list or a dict, e.g. VGG
    ``relu2_2``); the target's features are computed without gradient.

    Parameters
    ----------
    input, target : Tensor
        ``(B, C, H, W)`` images, normalised the way the extractor expects.
    extractor : callable
        ``Tensor -> Tensor | Sequence[Tensor] | Mapping[str, Tensor]``.
    weights : sequence of float, optional
        One weight :math:`w_j` per feature map (default 1).

    Returns
    -------
    Tensor
        Scalar.

    References
    ----------
    J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual Losses for Real-Time Style
    Transfer and Super-Resolution", ECCV 2016, Sec. 3.3.

    Examples
    --------
    >>> x = torch.zeros(1, 3, 4, 4)
    >>> float(perceptual_loss(x, x + 1.0, lambda t: 2.0 * t))
    4.0
    """
    _check_same_shape(input, target)
    fx, fy = _feature_pairs(extractor, input, target)
    w = _layer_weights(weights, len(fx))
    total = input.new_zeros(())
    for wj, a, b in zip(w, fx, fy, strict=True):
        total = total + wj * F.mse_loss(a, b)
    return total


def gram_matrix(features: Tensor) -> Tensor:
    r"""Normalised Gram matrix :math:`G = \frac{1}{CHW}\,\psi\psi^\top`.

    :math:`\psi` is the feature map reshaped to ``(C, H*W)`` (Johnson et al.
    2016, Eq. 3).

    Parameters
    ----------
    features : Tensor
        ``(B, C, H, W)``.

    Returns
    -------
    Tensor
        ``(B, C, C)``.

    Examples
    --------
    >>> gram_matrix(torch.ones(1, 2, 2, 2))
    tensor([[[0.5000, 0.5000],
             [0.5000, 0.5000]]])
    """
    if not isinstance(features, Tensor) or features.ndim != 4:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise InvalidParameterError(f"features must be (B, C, H, W), got {shape}.")
    b, c, h, w = features.shape
    # Normalise before the product, not after: the same G, but a float16 sum of
    # H*W products (under fp16 autocast too) would overflow 65504 first.
    psi = features.reshape(b, c, h * w) / math.sqrt(c * h * w)
    return psi @ psi.transpose(1, 2)


def style_loss(
    input: Tensor,
    target: Tensor,
    extractor: FeatureExtractor,
    weights: Sequence[float] | None = None,
) -> Tensor:
    r"""Style-reconstruction loss: Gram-matrix distance over feature maps.

    .. math::

        \ell_{style} = \sum_j w_j\,\left\|G_j(\hat y) - G_j(y)\right\|_F^2

    with :math:`G_j` the normalised Gram matrix of :func:`gram_matrix` (Johnson et
    al. 2016, Sec. 3.3, after Gatys et al. 2016), averaged over the batch.
    ``input`` and ``target`` may differ in spatial size (Gram matrices do not).

    Parameters
    ----------
    input : Tensor
        ``(B, C, H, W)`` generated images.
    target : Tensor
        ``(B, C, H', W')`` or ``(1, C, H', W')`` style images (broadcast).
    extractor : callable
        Returns a tensor, a sequence or a mapping of ``(B, C_j, H_j, W_j)`` maps.
    weights : sequence of float, optional
        One weight per feature map (default 1).

    Returns
    -------
    Tensor
        Scalar.

    References
    ----------
    J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual Losses for Real-Time Style
    Transfer and Super-Resolution", ECCV 2016, Sec. 3.3, Eq. 3.
    L. A. Gatys, A. S. Ecker, M. Bethge, "Image Style Transfer Using Convolutional
    Neural Networks", CVPR 2016.

    Examples
    --------
    >>> x = torch.ones(1, 2, 3, 3)
    >>> float(style_loss(x, x, lambda t: t))
    0.0
    """
    fx, fy = _feature_pairs(extractor, input, target)
    w = _layer_weights(weights, len(fx))
    total = input.new_zeros(())
    for wj, a, b in zip(w, fx, fy, strict=True):
        if a.ndim != 4 or b.ndim != 4 or a.shape[1] != b.shape[1]:
            raise InvalidParameterError(
                "style_loss needs (B, C, H, W) feature maps with the same channels C for "
                f"input and target, got {tuple(a.shape)} and {tuple(b.shape)}; give both "
                "images the same number of channels."
            )
        if b.shape[0] not in (1, a.shape[0]):
            raise InvalidParameterError(
                f"target batch must be 1 (one style for all) or the input's {a.shape[0]}, "
                f"got {b.shape[0]}."
            )
        diff = gram_matrix(a) - gram_matrix(b)
        total = total + wj * diff.square().sum(dim=(1, 2)).mean()
    return total


def total_variation(image: Tensor, p: int = 1, reduction: str = "sum") -> Tensor:
    r"""Total variation of images, the sum of neighbour differences.

    .. math::

        TV_p(x) = \sum_{c,i,j}|x_{c,i+1,j} - x_{c,i,j}|^p + |x_{c,i,j+1} - x_{c,i,j}|^p

    ``p=1`` is the anisotropic TV (Rudin, Osher, Fatemi 1992); ``p=2`` the squared
    form used as a smoothness regulariser by Johnson et al. 2016 (Sec. 3.4) and
    Mahendran & Vedaldi 2015 (with :math:`\beta=2`).

    Parameters
    ----------
    image : Tensor
        ``(B, C, H, W)``.
    p : {1, 2}
    reduction : {"sum", "mean", "none"}
        ``"none"`` gives one value per image ``(B,)``; ``"sum"`` / ``"mean"``
        reduce over the batch.

    Returns
    -------
    Tensor

    References
    ----------
    L. I. Rudin, S. Osher, E. Fatemi, "Nonlinear total variation based noise
    removal algorithms", Physica D 60, 1992.
    A. Mahendran, A. Vedaldi, "Understanding Deep Image Representations by
    Inverting Them", CVPR 2015, Eq. 5.

    Examples
    --------
    >>> x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    >>> float(total_variation(x))
    2.0
    """
    if not isinstance(image, Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise InvalidParameterError(f"image must be (B, C, H, W), got {shape}.")
    if p not in (1, 2):
        raise InvalidParameterError(f"p must be 1 or 2, got {p!r}.")
    _check_reduction(reduction)
    dh = image[:, :, 1:, :] - image[:, :, :-1, :]
    dw = image[:, :, :, 1:] - image[:, :, :, :-1]
    if p == 1:
        tv = dh.abs().sum(dim=(1, 2, 3)) + dw.abs().sum(dim=(1, 2, 3))
    else:
        tv = dh.square().sum(dim=(1, 2, 3)) + dw.square().sum(dim=(1, 2, 3))
    return _reduce(tv, reduction)


# --------------------------------------------------------------------------- GANs


def gan_loss(logits: Tensor, target_is_real: bool, mode: str = "vanilla") -> Tensor:
    r"""Adversarial loss of a discriminator output against "real" or "fake".

    - ``"vanilla"``: binary cross-entropy on logits,
      :math:`-\log D` for real, :math:`-\log(1-D)` for fake (Goodfellow et al. 2014).
    - ``"lsgan"``: least squares, :math:`(D - 1)^2` or :math:`D^2` (Mao et al. 2017),
      CycleGAN's choice.

    The generator uses ``target_is_real=True`` on fake samples (the non-saturating
    form). PatchGAN outputs ``(B, 1, H', W')`` are averaged over all patches.

    Parameters
    ----------
    logits : Tensor
        Discriminator outputs, any shape (raw scores, no sigmoid).
    target_is_real : bool
    mode : {"vanilla", "lsgan"}

    Returns
    -------
    Tensor
        Scalar.

    References
    ----------
    I. Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
    X. Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017.

    Examples
    --------
    >>> round(float(gan_loss(torch.zeros(2, 1), True)), 4)
    0.6931
    """
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    raise InvalidParameterError(f"mode must be 'vanilla' or 'lsgan', got {mode!r}.")


def pix2pix_generator_loss(
    fake_logits: Tensor,
    fake: Tensor,
    real: Tensor,
    lambda_l1: float = 100.0,
    mode: str = "vanilla",
) -> Tensor:
    r"""Generator objective of pix2pix: conditional GAN loss plus :math:`\lambda` L1.

    .. math::

        G^* = \arg\min_G \max_D \mathcal{L}_{cGAN}(G, D) + \lambda\,\mathcal{L}_{L1}(G),
        \quad \mathcal{L}_{L1} = \mathbb{E}\,\|y - G(x, z)\|_1

    (Isola et al. 2017, Eq. 4). ``fake_logits`` are :math:`D(x, G(x))`, the
    discriminator's scores of the generated image *with its condition*; the
    generator wants them called real.

    Parameters
    ----------
    fake_logits : Tensor
        Discriminator scores of ``(condition, fake)`` pairs, any shape (PatchGAN).
    fake, real : Tensor
        ``(B, C, H, W)`` generated and ground-truth images.
    lambda_l1 : float
        :math:`\lambda` (paper: 100).
    mode : {"vanilla", "lsgan"}

    Returns
    -------
    Tensor
        Scalar.

    References
    ----------
    P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, "Image-to-Image Translation with
    Conditional Adversarial Networks", CVPR 2017, Eq. 1-4.

    Examples
    --------
    >>> x = torch.zeros(1, 3, 2, 2)
    >>> round(float(pix2pix_generator_loss(torch.zeros(1, 1, 2, 2), x, x)), 4)
    0.6931
    """
    _check_same_shape(fake, real, "fake and real")
    return gan_loss(fake_logits, True, mode) + lambda_l1 * F.l1_loss(fake, real)


def pix2pix_discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, mode: str = "vanilla"
) -> Tensor:
    r"""Discriminator objective of pix2pix, halved.

    .. math::

        \mathcal{L}_D = \tfrac12\left[-\log D(x, y) - \log(1 - D(x, G(x)))\right]

    The factor 1/2 slows D relative to G (Isola et al. 2017, Sec. 3.3).

    Parameters
    ----------
    real_logits : Tensor
        :math:`D(x, y)` on real pairs.
    fake_logits : Tensor
        :math:`D(x, G(x))` on generated pairs (detach ``G(x)`` before D).
    mode : {"vanilla", "lsgan"}

    Returns
    -------
    Tensor
        Scalar.

    References
    ----------
    P. Isola et al., CVPR 2017, Eq. 1 and Sec. 3.3.

    Examples
    --------
    >>> round(float(pix2pix_discriminator_loss(torch.zeros(1), torch.zeros(1))), 4)
    0.6931
    """
    return 0.5 * (gan_loss(real_logits, True, mode) + gan_loss(fake_logits, False, mode))


def cycle_consistency_loss(
    real_a: Tensor,
    reconstructed_a: Tensor,
    real_b: Tensor | None = None,
    reconstructed_b: Tensor | None = None,
    lambda_cycle: float = 10.0,
) -> Tensor:
    r"""CycleGAN's cycle-consistency loss.

    .. math::

        \mathcal{L}_{cyc}(G, F) = \lambda\left(\mathbb{E}\,\|F(G(a)) - a\|_1
                                 + \mathbb{E}\,\|G(F(b)) - b\|_1\right)

    (Zhu et al. 2017, Eq. 2, with :math:`\lambda = 10` from Eq. 3 / Sec. 4).
    Give only ``real_a`` / ``reconstructed_a`` for a one-direction cycle.

    Parameters
    ----------
    real_a, reconstructed_a : Tensor
        :math:`a` and :math:`F(G(a))`, same shape.
    real_b, reconstructed_b : Tensor, optional
        :math:`b` and :math:`G(F(b))`.
    lambda_cycle : float
        :math:`\lambda`.

    Returns
    -------
    Tensor
        Scalar.

    References
    ----------
    J.-Y. Zhu, T. Park, P. Isola, A. A. Efros, "Unpaired Image-to-Image
    Translation using Cycle-Consistent Adversarial Networks", ICCV 2017, Eq. 2-3.

    Examples
    --------
    >>> a = torch.zeros(1, 3, 2, 2)
    >>> round(float(cycle_consistency_loss(a, a + 0.1, lambda_cycle=10.0)), 4)
    1.0
    """
    _check_same_shape(real_a, reconstructed_a, "real_a and reconstructed_a")
    loss = F.l1_loss(reconstructed_a, real_a)
    if (real_b is None) != (reconstructed_b is None):
        raise InvalidParameterError("give both real_b and reconstructed_b, or neither.")
    if real_b is not None and reconstructed_b is not None:
        _check_same_shape(real_b, reconstructed_b, "real_b and reconstructed_b")
        loss = loss + F.l1_loss(reconstructed_b, real_b)
    return lambda_cycle * loss


# --------------------------------------------------------------------------- boxes


def _check_boxes(pred: Tensor, target: Tensor) -> None:
    if not isinstance(pred, Tensor) or pred.ndim != 2 or pred.shape[-1] != 4:
        shape = tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
        raise InvalidParameterError(f"boxes must be (N, 4) (x1, y1, x2, y2), got {shape}.")
    _check_same_shape(pred, target, "pred and target boxes")


def _box_terms(pred: Tensor, target: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """IoU, and the enclosing box's corners (x1, y1, x2, y2) for GIoU/DIoU.

    ``pred`` and ``target`` come in float32 or wider (:func:`_wide`): a 300 px
    square has area 90 000, above float16's largest value (65 504).

    The predicted corners are put in order first (Rezatofighi et al. 2019,
    Algorithm 2, step 1: x1, x2 become min(x1, x2), max(x1, x2), and likewise
    for y): a regressed box with ``x2 < x1`` would
    otherwise have zero area and an enclosing box equal to the target, so a
    loss of exactly 1 with a zero gradient, and it could never recover.
    """
    pred = torch.cat([torch.minimum(pred[:, :2], pred[:, 2:]),
                      torch.maximum(pred[:, :2], pred[:, 2:])], dim=1)
    area_p = (pred[:, 2] - pred[:, 0]).clamp(min=0) * (pred[:, 3] - pred[:, 1]).clamp(min=0)
    area_t = (target[:, 2] - target[:, 0]).clamp(min=0) * (target[:, 3] - target[:, 1]).clamp(
        min=0
    )
    lt = torch.maximum(pred[:, :2], target[:, :2])
    rb = torch.minimum(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = area_p + area_t - inter
    iou = inter / (union + eps)
    enc_lt = torch.minimum(pred[:, :2], target[:, :2])
    enc_rb = torch.maximum(pred[:, 2:], target[:, 2:])
    return iou, union, torch.cat([enc_lt, enc_rb], dim=1)


def iou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7, reduction: str = "mean") -> Tensor:
    r"""IoU loss :math:`1 - \mathrm{IoU}(B, B^{gt})` of matched box pairs.

    Parameters
    ----------
    pred, target : Tensor
        ``(N, 4)`` boxes ``(x1, y1, x2, y2)``; row ``i`` of each is a pair.
    eps : float
        Added to the union against division by zero.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or ``(N,)`` with ``reduction="none"``. In ``[0, 1]``. float16 /
        bfloat16 boxes are computed and returned in float32 (their areas
        overflow float16), as for every box loss here.

    References
    ----------
    J. Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    >>> b = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    >>> round(float(iou_loss(a, b)), 4)
    0.6667
    """
    _check_boxes(pred, target)
    _check_reduction(reduction)
    pred, target = _wide(pred), _wide(target)
    iou, _, _ = _box_terms(pred, target, eps)
    return _reduce(1.0 - iou, reduction)


def giou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7, reduction: str = "mean") -> Tensor:
    r"""Generalized IoU loss.

    .. math::

        \mathcal{L}_{GIoU} = 1 - \mathrm{IoU} + \frac{|C \setminus (A\cup B)|}{|C|}

    with :math:`C` the smallest box enclosing both (Rezatofighi et al. 2019,
    Algorithm 2). In ``[0, 2)``; unlike the IoU loss it still has a gradient for
    disjoint boxes. As in step 1 of Algorithm 2, the predicted corners are put
    in order first (for every box loss here), so a prediction with ``x2 < x1``
    is scored as the box it spans and keeps a gradient.

    Parameters
    ----------
    pred, target : Tensor
        ``(N, 4)`` matched boxes ``(x1, y1, x2, y2)``.
    eps : float
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor

    References
    ----------
    H. Rezatofighi et al., "Generalized Intersection over Union: A Metric and a
    Loss for Bounding Box Regression", CVPR 2019, Algorithm 1-2.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    >>> round(float(giou_loss(a, b)), 4)
    1.3333
    """
    _check_boxes(pred, target)
    _check_reduction(reduction)
    pred, target = _wide(pred), _wide(target)
    iou, union, enc = _box_terms(pred, target, eps)
    area_c = (enc[:, 2] - enc[:, 0]) * (enc[:, 3] - enc[:, 1])
    giou = iou - (area_c - union) / (area_c + eps)
    return _reduce(1.0 - giou, reduction)


def diou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7, reduction: str = "mean") -> Tensor:
    r"""Distance-IoU loss.

    .. math::

        \mathcal{L}_{DIoU} = 1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2}

    with :math:`\rho` the distance between the box centres and :math:`c` the
    diagonal of the smallest enclosing box (Zheng et al. 2020, Eq. 6). In
    ``[0, 2)``.

    Parameters
    ----------
    pred, target : Tensor
        ``(N, 4)`` matched boxes ``(x1, y1, x2, y2)``.
    eps : float
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor

    References
    ----------
    Z. Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding
    Box Regression", AAAI 2020, Eq. 6.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    >>> round(float(diou_loss(a, b)), 4)
    1.4
    """
    _check_boxes(pred, target)
    _check_reduction(reduction)
    pred, target = _wide(pred), _wide(target)
    iou, _, enc = _box_terms(pred, target, eps)
    c2 = (enc[:, 2] - enc[:, 0]).square() + (enc[:, 3] - enc[:, 1]).square()
    centre_p = (pred[:, :2] + pred[:, 2:]) / 2
    centre_t = (target[:, :2] + target[:, 2:]) / 2
    rho2 = (centre_p - centre_t).square().sum(dim=1)
    return _reduce(1.0 - iou + rho2 / (c2 + eps), reduction)


# --------------------------------------------------------------------------- module forms


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy` (label smoothing).

    Examples
    --------
    >>> loss = CrossEntropyLoss(label_smoothing=0.1)
    >>> loss(torch.zeros(2, 3), torch.tensor([0, 1])).shape
    torch.Size([])
    """

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__()
        self.label_smoothing = label_smoothing
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(logits, target, self.label_smoothing, self.reduction)


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`; a tensor ``alpha`` is a buffer.

    Examples
    --------
    >>> FocalLoss(gamma=2.0)(torch.zeros(2, 3), torch.tensor([0, 1])).shape
    torch.Size([])
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Tensor | None = 0.25,
        reduction: str = "mean",
    ):
        super().__init__()
        self.gamma = gamma
        self.reduction = reduction
        if isinstance(alpha, Tensor):
            self.register_buffer("alpha", alpha.clone())
        else:
            self.alpha = alpha

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return focal_loss(logits, target, self.gamma, self.alpha, self.reduction)


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation_loss`.

    Examples
    --------
    >>> z = torch.zeros(2, 3)
    >>> float(DistillationLoss(temperature=2.0)(z, z, torch.tensor([0, 1]))) > 0
    True
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, reduction: str = "mean"):
        super().__init__()
        self.temperature = temperature
        self.alpha = alpha
        self.reduction = reduction

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor | None = None
    ) -> Tensor:
        return distillation_loss(
            student_logits, teacher_logits, target, self.temperature, self.alpha, self.reduction
        )


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent_loss` (SimCLR).

    Examples
    --------
    >>> NTXentLoss(0.5)(torch.randn(4, 8), torch.randn(4, 8)).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return nt_xent_loss(z1, z2, self.temperature)


class MoCoLoss(nn.Module):
    r"""InfoNCE with a first-in-first-out queue of negative keys (MoCo).

    The queue is a registered buffer ``queue`` of shape ``(queue_size, dim)``
    (saved in ``state_dict``), initialised with random unit vectors as in the
    reference code; ``ptr`` is the next slot to overwrite. Each :meth:`forward`
    computes :func:`info_nce_loss` against the *current* queue, then, in training
    mode only, enqueues the batch's keys (He et al. 2020, Algorithm 1).

    Parameters
    ----------
    dim : int
        Embedding dimension ``D``.
    queue_size : int
        Number of negatives ``K`` (MoCo: 65536).
    temperature : float
        :math:`\tau` (MoCo v2: 0.2).
    seed : int
        Seed of the random initial queue.

    Examples
    --------
    >>> loss = MoCoLoss(dim=8, queue_size=16)
    >>> q, k = torch.randn(4, 8), torch.randn(4, 8)
    >>> loss(q, k).shape, int(loss.ptr)
    (torch.Size([]), 4)
    """

    queue: Tensor
    ptr: Tensor

    def __init__(self, dim: int, queue_size: int = 4096, temperature: float = 0.07, seed: int = 0):
        super().__init__()
        if dim < 1 or queue_size < 1:
            raise InvalidParameterError(
                f"dim and queue_size must be >= 1, got dim={dim}, queue_size={queue_size}."
            )
        _check_temperature(temperature)
        self.temperature = temperature
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer(
            "queue", F.normalize(torch.randn(queue_size, dim, generator=gen), dim=1)
        )
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Overwrite the oldest keys with ``keys`` ``(N, D)`` (wrapping around)."""
        _check_embeddings(keys, "keys", allow_empty=True)
        if keys.shape[1] != self.queue.shape[1]:
            raise InvalidParameterError(
                f"MoCoLoss was built with dim={self.queue.shape[1]} but got "
                f"{keys.shape[1]}-d keys {tuple(keys.shape)}."
            )
        k = F.normalize(keys.detach(), dim=1).to(self.queue)
        size = self.queue.shape[0]
        if k.shape[0] >= size:
            self.queue.copy_(k[-size:])
            self.ptr.zero_()
            return
        idx = (int(self.ptr) + torch.arange(k.shape[0])) % size
        self.queue[idx.to(self.queue.device)] = k
        self.ptr.fill_((int(self.ptr) + k.shape[0]) % size)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        dim = self.queue.shape[1]
        if isinstance(query, Tensor) and query.ndim == 2 and query.shape[1] != dim:
            raise InvalidParameterError(
                f"MoCoLoss was built with dim={dim} but got {query.shape[1]}-d embeddings; "
                f"build it with MoCoLoss(dim={query.shape[1]}, ...)."
            )
        # info_nce_loss normalises a detached copy, so enqueueing in place is safe.
        # The queue keeps its own dtype; info_nce_loss compares in the inputs'
        # (float64 too), and in float32 for float16 / bfloat16 inputs.
        loss = info_nce_loss(query, key, self.queue, self.temperature)
        if self.training:
            self.enqueue(key)
        return loss


class SupConLoss(nn.Module):
    """Module form of :func:`supcon_loss` (L_out).

    Examples
    --------
    >>> SupConLoss(0.1)(torch.randn(4, 2, 8), torch.tensor([0, 0, 1, 1])).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, features: Tensor, labels: Tensor | None = None) -> Tensor:
        return supcon_loss(features, labels, self.temperature)


class CharbonnierLoss(nn.Module):
    """Module form of :func:`charbonnier_loss`.

    Examples
    --------
    >>> CharbonnierLoss()(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)).item() > 0
    True
    """

    def __init__(self, eps: float = 1e-3, reduction: str = "mean"):
        super().__init__()
        self.eps = eps
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return charbonnier_loss(input, target, self.eps, self.reduction)


class _FrozenExtractor(nn.Module):
    """Holds a feature extractor frozen: no gradients, and in eval mode for good.

    The extractor is a submodule (it moves with ``.to()`` and is saved), so a
    ``.train()`` on this loss or on a model holding it would reach it too;
    :meth:`train` keeps it in eval mode, or its BatchNorm statistics would drift
    with every loss call and dropout would make the loss random.
    """

    def __init__(self, extractor: nn.Module, weights: Sequence[float] | None = None):
        super().__init__()
        self.extractor = extractor.eval().requires_grad_(False)
        self.weights = weights

    def train(self, mode: bool = True) -> _FrozenExtractor:
        super().train(mode)
        self.extractor.eval()
        return self


class PerceptualLoss(_FrozenExtractor):
    """Module form of :func:`perceptual_loss`; the extractor is frozen (no gradient,
    eval mode even after ``.train()``).

    Examples
    --------
    >>> loss = PerceptualLoss(torch.nn.Conv2d(3, 4, 3))
    >>> loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)).shape
    torch.Size([])
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return perceptual_loss(input, target, self.extractor, self.weights)


class StyleLoss(_FrozenExtractor):
    """Module form of :func:`style_loss`; the extractor is frozen (no gradient,
    eval mode even after ``.train()``).

    Examples
    --------
    >>> loss = StyleLoss(torch.nn.Conv2d(3, 4, 3))
    >>> loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)).shape
    torch.Size([])
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return style_loss(input, target, self.extractor, self.weights)


class TotalVariation(nn.Module):
    """Module form of :func:`total_variation`.

    Examples
    --------
    >>> float(TotalVariation()(torch.zeros(1, 1, 3, 3)))
    0.0
    """

    def __init__(self, p: int = 1, reduction: str = "sum"):
        super().__init__()
        self.p = p
        self.reduction = reduction

    def forward(self, image: Tensor) -> Tensor:
        return total_variation(image, self.p, self.reduction)


class Pix2PixLoss(nn.Module):
    """Both pix2pix objectives: :meth:`generator` and :meth:`discriminator`.

    ``forward`` is the generator loss (:func:`pix2pix_generator_loss`).

    Examples
    --------
    >>> loss = Pix2PixLoss(lambda_l1=100.0)
    >>> x = torch.zeros(1, 3, 4, 4)
    >>> round(float(loss(torch.zeros(1, 1, 2, 2), x, x)), 4)
    0.6931
    """

    def __init__(self, lambda_l1: float = 100.0, mode: str = "vanilla"):
        super().__init__()
        self.lambda_l1 = lambda_l1
        self.mode = mode

    def forward(self, fake_logits: Tensor, fake: Tensor, real: Tensor) -> Tensor:
        return pix2pix_generator_loss(fake_logits, fake, real, self.lambda_l1, self.mode)

    def generator(self, fake_logits: Tensor, fake: Tensor, real: Tensor) -> Tensor:
        """Generator objective, same as calling the module."""
        return self.forward(fake_logits, fake, real)

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator objective (:func:`pix2pix_discriminator_loss`)."""
        return pix2pix_discriminator_loss(real_logits, fake_logits, self.mode)


class CycleConsistencyLoss(nn.Module):
    """Module form of :func:`cycle_consistency_loss`.

    Examples
    --------
    >>> a = torch.zeros(1, 3, 2, 2)
    >>> float(CycleConsistencyLoss(10.0)(a, a))
    0.0
    """

    def __init__(self, lambda_cycle: float = 10.0):
        super().__init__()
        self.lambda_cycle = lambda_cycle

    def forward(
        self,
        real_a: Tensor,
        reconstructed_a: Tensor,
        real_b: Tensor | None = None,
        reconstructed_b: Tensor | None = None,
    ) -> Tensor:
        return cycle_consistency_loss(
            real_a, reconstructed_a, real_b, reconstructed_b, self.lambda_cycle
        )


_BOX_LOSSES = {"iou": iou_loss, "giou": giou_loss, "diou": diou_loss}


class BoxIoULoss(nn.Module):
    """Module form of :func:`iou_loss`, :func:`giou_loss` and :func:`diou_loss`.

    Parameters
    ----------
    kind : {"iou", "giou", "diou"}
    reduction : {"mean", "sum", "none"}

    Examples
    --------
    >>> b = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    >>> round(float(BoxIoULoss("giou")(b, b)), 4)
    0.0
    """

    def __init__(self, kind: str = "giou", reduction: str = "mean"):
        super().__init__()
        if kind not in _BOX_LOSSES:
            raise InvalidParameterError(f"kind must be one of {tuple(_BOX_LOSSES)}, got {kind!r}.")
        self.kind = kind
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _BOX_LOSSES[self.kind](pred, target, reduction=self.reduction)
