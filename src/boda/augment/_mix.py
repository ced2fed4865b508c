"""Cutout, MixUp and CutMix (batch-level; numpy ``(N, H, W, C)`` or torch ``(B, C, H, W)``).

They take batches only: a single numpy ``(H, W, C)`` image is refused (it would
read as a batch of ``H`` images); pass ``img[None]``. :func:`cutout` and
:func:`cutmix` only zero or copy pixels and keep the dtype (a uint8 batch stays
uint8, 0..255); :func:`mixup` blends values, so it converts uint8 / uint16 /
bool batches (numpy or torch) to float32 in ``[0, 1]`` as
:func:`boda.core.image.as_float_image` does.

Labels are ``(N, K)`` one-hot or soft rows: integer class indices ``(N,)``
would be averaged into meaningless "classes" and are refused.
"""

from __future__ import annotations

import math

import numpy as np

from boda.augment._input import as_batch, is_tensor, tensor_float
from boda.augment._input import rng as _rng
from boda.core.image import float32_values
from boda.core.numbers import real_number
from boda.errors import InvalidParameterError


def _hw(images) -> tuple[int, int]:
    if isinstance(images, np.ndarray):
        return images.shape[1], images.shape[2]
    return images.shape[-2], images.shape[-1]


def _box(h, w, lam, rng):
    """A box of area (1 - lam) H W centred uniformly, clipped (Yun et al. 2019, Eq. 2)."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    return y1, y2, x1, x2


def cutout(images, size: int, seed=None):
    """Zero one ``size`` x ``size`` square per image, centred anywhere (clipped).

    Returns ``(images, boxes)`` with the ``(N, 4)`` ``(x1, y1, x2, y2)`` erased boxes.
    ``images`` is a batch (``img[None]`` for one image); the dtype is kept.

    References
    ----------
    T. DeVries, G. W. Taylor, "Improved Regularization of Convolutional Neural
    Networks with Cutout", arXiv:1708.04552, 2017.
    """
    images = as_batch(images)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise InvalidParameterError(f"cutout size must be an int >= 1 (pixels), got {size!r}.")
    rng = _rng(seed)
    h, w = _hw(images)
    out = images.copy() if isinstance(images, np.ndarray) else images.clone()
    boxes = []
    for i in range(len(images)):
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, y2 = max(cy - size // 2, 0), min(cy + size - size // 2, h)
        x1, x2 = max(cx - size // 2, 0), min(cx + size - size // 2, w)
        if isinstance(out, np.ndarray):
            out[i, y1:y2, x1:x2] = 0
        else:
            out[i, :, y1:y2, x1:x2] = 0
        boxes.append((x1, y1, x2, y2))
    return out, np.array(boxes, dtype=np.int64).reshape(-1, 4)


def _check_alpha(alpha) -> None:
    # real_number first: "1" or None raised a raw TypeError from the comparison
    if not (real_number(alpha) and 0 < alpha < math.inf):  # NaN too; Beta(inf, inf) is NaN
        raise InvalidParameterError(
            f"alpha must be > 0 and finite (lambda ~ Beta(alpha, alpha)), got {alpha!r}."
        )


def _is_index_dtype(labels) -> bool:
    """Integer (not bool, not float) labels: class indices, not label rows."""
    if is_tensor(labels):
        import torch

        return not (labels.is_floating_point() or labels.dtype == torch.bool)
    return labels.dtype.kind in "iu"


def _check_labels(images, labels):
    if is_tensor(labels):
        numeric = not labels.is_complex()
        finite = not labels.is_floating_point() or bool(labels.isfinite().all())
    else:
        try:
            labels = np.asarray(labels)
        except ValueError:  # ragged rows
            labels = np.asarray([], dtype=object)
        numeric = labels.dtype.kind in "biuf"
        finite = not numeric or bool(np.isfinite(labels).all())
    if not (numeric and finite):
        # text raised numpy's UFuncTypeError; a NaN / inf label was mixed into its
        # partner's row, whose loss then became NaN
        raise InvalidParameterError(
            "labels must be (N, K) rows of finite numbers (one-hot or soft), got "
            f"{'non-finite values' if numeric else f'dtype {labels.dtype}'}."
        )
    if labels.ndim == 0 or len(labels) != len(images):
        raise InvalidParameterError(
            f"need one label row per image, got {labels.shape[0] if labels.ndim else 0} "
            f"labels for {len(images)} images."
        )
    if labels.ndim == 1 and _is_index_dtype(labels):
        raise InvalidParameterError(
            f"labels of shape {tuple(labels.shape)} look like class indices; mixing needs "
            "(N, K) one-hot or soft labels, e.g. torch.nn.functional.one_hot(labels, K).float() "
            "or np.eye(K)[labels]."
        )
    return labels


def mixup(images, labels, alpha: float = 0.2, seed=None):
    r"""MixUp: :math:`\tilde x = \lambda x_i + (1-\lambda) x_j`, same for the labels.

    :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`; :math:`j` is a random
    permutation of the batch.

    Parameters
    ----------
    images : array or tensor
        ``(N, H, W, C)`` or ``(B, C, H, W)`` (``img[None]`` for one image);
        uint8 / uint16 / bool batches are converted to float32 in ``[0, 1]``.
    labels : array or tensor
        ``(N, K)`` one-hot or soft labels; ``(N,)`` integer class indices are
        refused (:class:`~boda.errors.InvalidParameterError`).
    alpha : float
        > 0.
    seed : int or Generator

    Returns
    -------
    (images, labels, info)
        ``info``: ``{"lam": float, "perm": ndarray}``.

    References
    ----------
    H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz, "mixup: Beyond Empirical
    Risk Minimization", ICLR 2018, Eq. 1.
    """
    images = as_batch(images)
    if isinstance(images, np.ndarray):
        images = float32_values(images, name="images")
    else:
        images = tensor_float(images, "images")
    labels = _check_labels(images, labels)
    _check_alpha(alpha)
    rng = _rng(seed)
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(images))
    mixed = lam * images + (1 - lam) * images[perm]
    mixed_labels = lam * labels + (1 - lam) * labels[perm]
    return mixed, mixed_labels, {"lam": lam, "perm": perm}


def cutmix(images, labels, alpha: float = 1.0, seed=None):
    r"""CutMix: paste a box from a shuffled partner, mix labels by pasted area.

    :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)` sets the box size; after
    clipping to the image, the label weight is recomputed from the real box
    area: :math:`\lambda = 1 - \frac{|box|}{HW}` (Yun et al. 2019, Eq. 1-2).
    ``images`` is a batch (``img[None]`` for one image), its dtype kept;
    ``alpha`` > 0.

    Returns
    -------
    (images, labels, info)
        ``info``: ``{"lam", "perm", "box": (x1, y1, x2, y2)}``.

    References
    ----------
    S. Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers
    with Localizable Features", ICCV 2019.
    """
    images = as_batch(images)
    labels = _check_labels(images, labels)
    _check_alpha(alpha)
    rng = _rng(seed)
    h, w = _hw(images)
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(images))
    y1, y2, x1, x2 = _box(h, w, lam, rng)
    out = images.copy() if isinstance(images, np.ndarray) else images.clone()
    if isinstance(out, np.ndarray):
        out[:, y1:y2, x1:x2] = images[perm][:, y1:y2, x1:x2]
    else:
        out[:, :, y1:y2, x1:x2] = images[perm][:, :, y1:y2, x1:x2]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    mixed_labels = lam * labels + (1 - lam) * labels[perm]
    return out, mixed_labels, {"lam": lam, "perm": perm, "box": (x1, y1, x2, y2)}
