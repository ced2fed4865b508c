"""Faithfulness metrics for explanation maps.

- Deletion and insertion curves and their areas (Petsiuk et al. 2018): hide
  (or reveal) pixels from the most to the least salient and follow the class
  probability.  A faithful map gives a *low* deletion AUC and a *high*
  insertion AUC.
- Average Drop and Increase in Confidence (Chattopadhay et al. 2018): the
  score on the image masked by the map, compared with the score on the image.
- Pointing game (Zhang et al. 2018): does the map's maximum fall on the
  object?  Needs known object masks, e.g. from :func:`boda.explain.make_shapes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError
from boda.explain._base import (
    Target,
    _as_model_input,
    _check_input,
    _frozen,
    callable_scores,
    class_probabilities,
    model_logits,
    resolve_target,
)
from boda.explain._occlusion import _check_baseline, _gaussian_blur

__all__ = [
    "CurveResult",
    "deletion_curve",
    "insertion_curve",
    "average_drop_increase",
    "pointing_game",
]


@dataclass
class CurveResult:
    """A deletion or insertion curve.

    Attributes
    ----------
    fractions : torch.Tensor
        ``(S + 1,)`` share of pixels changed, from 0 to 1.
    scores : torch.Tensor
        ``(B, S + 1)`` class probability after each step.
    auc : torch.Tensor
        ``(B,)`` area under each curve (trapezoid rule over ``fractions``).
    """

    fractions: torch.Tensor
    scores: torch.Tensor
    auc: torch.Tensor


def _classes_and_scorer(model, x, target, output_key):
    logits = model_logits(model(x), output_key)
    classes = resolve_target(logits, target)  # also refuses non-finite logits
    if classes is None:  # a callable target, its scores checked as the explainers check them
        return None, lambda out, idx: callable_scores(target, out)

    def score(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return class_probabilities(out).gather(1, classes[idx].view(-1, 1))[:, 0]

    return classes, score


def _check_maps(x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    if isinstance(maps, np.ndarray):
        raise InvalidParameterError(
            "maps must be a torch tensor, got a numpy array; use torch.from_numpy(maps)"
        )
    if isinstance(maps, torch.Tensor) and maps.is_floating_point() and bool(
        torch.isnan(maps).any()
    ):
        raise InvalidParameterError(
            "maps hold NaN values, which would rank as the most salient pixels; fix the maps"
        )
    want = (x.shape[0], *x.shape[2:])
    if not isinstance(maps, torch.Tensor) or maps.shape != want:
        got = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise InvalidParameterError(
            f"maps must have shape (B, H, W) = {want}, got {got}; {_maps_hint(maps, want)}"
        )
    return maps.to(x.device, torch.float32)


def _maps_hint(maps: object, want: tuple[int, ...]) -> str:
    """What to do about maps of the wrong shape: the usual mix-ups, said by their names."""
    if not isinstance(maps, torch.Tensor):
        return "give a torch tensor"
    if tuple(maps.shape) == tuple(want[1:]) and want[0] == 1:
        return "add the batch dimension (maps[None])"
    if maps.ndim == 3 and maps.shape[0] == want[0] and tuple(maps.shape[1:]) != want[1:]:
        # explain_image's .maps are at the image's size; the model saw another
        return (
            "the maps must be at the model input's size: ImageExplanation.input_maps "
            "(not .maps, at the image's size), or an explainer's output with its default "
            "upsample=True"
        )
    return "give one map per image at the input's size (the explainers' default output)"


def _curve(
    model: nn.Module,
    x: torch.Tensor,
    maps: torch.Tensor,
    target: Target,
    *,
    insertion: bool,
    steps: int,
    baseline: float | str,
    blur_sigma: float,
    batch_size: int,
    output_key: str | int | None,
) -> CurveResult:
    x = _as_model_input(model, _check_input(x))
    maps = _check_maps(x, maps)
    # Whole numbers: steps=2.5 drew a curve of 2 steps without a word.
    if not all(whole_number(v) and v >= 1 for v in (steps, batch_size)):
        raise InvalidParameterError(
            f"steps and batch_size must be whole numbers >= 1, got {steps!r}, {batch_size!r}"
        )
    _check_baseline(baseline, blur_sigma)
    b, c, h, w = x.shape
    n = h * w
    with torch.inference_mode(), _frozen(model):
        fill = _gaussian_blur(x, blur_sigma) if baseline == "blur" else torch.full_like(
            x, float(baseline)
        )
        start, end = (fill, x) if insertion else (x, fill)
        classes, score = _classes_and_scorer(model, x, target, output_key)
        # Rank of each pixel, most salient first (stable order for ties).
        order = torch.argsort(maps.flatten(1), dim=1, descending=True, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(n, device=x.device).expand(b, n))
        counts = [round(n * k / steps) for k in range(steps + 1)]
        jobs = [(i, k) for i in range(b) for k in range(steps + 1)]
        scores = torch.zeros(b, steps + 1)
        for s in range(0, len(jobs), batch_size):
            chunk = jobs[s : s + batch_size]
            idx = torch.tensor([j[0] for j in chunk], device=x.device)
            limit = torch.tensor([counts[j[1]] for j in chunk], device=x.device)
            changed = (rank[idx] < limit[:, None]).view(-1, 1, h, w)
            images = torch.where(changed, end[idx], start[idx])
            values = score(model_logits(model(images), output_key), idx).float().cpu()
            for (i, k), v in zip(chunk, values, strict=True):
                scores[i, k] = v
    fractions = torch.tensor(counts, dtype=torch.float32) / n
    auc = torch.trapezoid(scores, fractions, dim=1)
    return CurveResult(fractions=fractions, scores=scores, auc=auc)


def deletion_curve(
    model: nn.Module,
    x: torch.Tensor,
    maps: torch.Tensor,
    target: Target = None,
    *,
    steps: int = 32,
    baseline: float | str = 0.0,
    blur_sigma: float = 5.0,
    batch_size: int = 64,
    output_key: str | int | None = None,
) -> CurveResult:
    r"""Deletion curve and AUC (Petsiuk et al. 2018, Sec. 4.1 [1]_).

    Pixels are replaced by ``baseline`` (a value in the model's input space,
    0 as in [1]_, or ``"blur"``) in order of decreasing saliency, ``1/steps``
    of them at a time; the class probability is recorded after each step.
    Lower AUC = more faithful map.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier.
    x : torch.Tensor
        ``(B, C, H, W)`` model input.
    maps : torch.Tensor
        ``(B, H, W)`` saliency maps at the input size (higher = more important).
    target : None, int, sequence of int or callable
        Class per sample (default: the predicted one); a callable maps
        logits to scores.
    steps, baseline, blur_sigma, batch_size, output_key
        Curve resolution, what removed pixels become, forward batch size
        (results do not depend on it), where the logits are.

    Returns
    -------
    CurveResult

    References
    ----------
    .. [1] V. Petsiuk, A. Das, K. Saenko, "RISE: Randomized Input Sampling for
       Explanation of Black-box Models", BMVC 2018.
    """
    return _curve(
        model, x, maps, target, insertion=False, steps=steps, baseline=baseline,
        blur_sigma=blur_sigma, batch_size=batch_size, output_key=output_key,
    )  # fmt: skip


def insertion_curve(
    model: nn.Module,
    x: torch.Tensor,
    maps: torch.Tensor,
    target: Target = None,
    *,
    steps: int = 32,
    baseline: float | str = "blur",
    blur_sigma: float = 5.0,
    batch_size: int = 64,
    output_key: str | int | None = None,
) -> CurveResult:
    r"""Insertion curve and AUC (Petsiuk et al. 2018, Sec. 4.1).

    Starts from a blurred copy of the input (or a constant ``baseline``) and
    puts the original pixels back from the most to the least salient.  Higher
    AUC = more faithful map.  Parameters as in :func:`deletion_curve`.
    """
    return _curve(
        model, x, maps, target, insertion=True, steps=steps, baseline=baseline,
        blur_sigma=blur_sigma, batch_size=batch_size, output_key=output_key,
    )  # fmt: skip


def average_drop_increase(
    model: nn.Module,
    x: torch.Tensor,
    maps: torch.Tensor,
    target: Target = None,
    *,
    output_key: str | int | None = None,
) -> dict[str, float]:
    r"""Average Drop % and Increase in Confidence % (Chattopadhay et al. 2018, Sec. 5.1.1).

    With :math:`Y_i` the class probability on image :math:`i` and
    :math:`O_i` the probability on the image multiplied by its map (values in
    ``[0, 1]``):
    Average Drop :math:`= 100 \cdot \frac1N \sum_i \max(0, Y_i - O_i) / Y_i`
    (lower is better) and Increase in Confidence
    :math:`= 100 \cdot \frac1N \sum_i \mathbb 1[Y_i < O_i]` (higher is better).

    Returns
    -------
    dict
        ``{"average_drop": float, "average_increase": float}`` in percent.

    Raises
    ------
    InvalidParameterError
        Maps outside ``[0, 1]``, or a callable ``target`` that scores an image
        below 0 (the measure is defined on probabilities).

    References
    ----------
    .. [1] A. Chattopadhay, A. Sarkar, P. Howlader, V. N. Balasubramanian,
       "Grad-CAM++: Generalized Gradient-Based Visual Explanations for Deep
       Convolutional Networks", WACV 2018.
    """
    x = _as_model_input(model, _check_input(x))
    maps = _check_maps(x, maps)
    if maps.min() < 0 or maps.max() > 1:
        raise InvalidParameterError("maps must be in [0, 1] (use normalized explainer output)")
    with torch.inference_mode(), _frozen(model):
        classes, score = _classes_and_scorer(model, x, target, output_key)
        idx = torch.arange(x.shape[0], device=x.device)
        y = score(model_logits(model(x), output_key), idx).float()
        if (y < 0).any():  # a callable target's logit, say: the drop ratio means nothing
            raise InvalidParameterError(
                f"Average Drop needs scores >= 0 (class probabilities); the target gave "
                f"{float(y.min()):.4g} on image {int(y.argmin())}: give a class index or a "
                "callable that returns probabilities"
            )
        o = score(model_logits(model(x * maps[:, None].to(x.dtype)), output_key), idx).float()
        drop = (y - o).clamp_min(0) / y.clamp_min(1e-12)
        return {
            "average_drop": float(100 * drop.mean()),
            "average_increase": float(100 * (y < o).float().mean()),
        }


def pointing_game(
    maps: torch.Tensor | np.ndarray,
    masks: torch.Tensor | np.ndarray,
    *,
    tolerance: float = 0.0,
) -> dict:
    """Pointing game (Zhang et al. 2018, Sec. 5.1): is each map's maximum on its object?

    A hit is counted when the pixel of the map's largest value lies within
    ``tolerance`` pixels (Euclidean) of the object mask (15 px at 224 px in
    [1]_; scale it with the image).  Ties go to the first maximum in
    row-major order.

    Parameters
    ----------
    maps : (B, H, W) tensor or array
        Saliency maps at the image size.
    masks : (B, H, W) bool tensor or array
        Object masks (e.g. ``ShapesDataset.masks``).
    tolerance : float
        Allowed distance in pixels.

    Returns
    -------
    dict
        ``{"accuracy": float, "hits": numpy.ndarray of bool}``.

    References
    ----------
    .. [1] J. Zhang, S. A. Bargal, Z. Lin, J. Brandt, X. Shen, S. Sclaroff,
       "Top-down Neural Attention by Excitation Backprop", IJCV 2018.
    """
    from scipy import ndimage

    m = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    k = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    k = k.astype(bool)
    if m.ndim != 3 or m.shape != k.shape:
        raise InvalidParameterError(
            f"maps and masks must both be (B, H, W) of one shape, got {m.shape} and {k.shape}"
        )
    if m.size == 0:
        raise InvalidParameterError(
            f"maps and masks are empty (shape {m.shape}); give at least one"
        )
    # Written so that NaN fails (it counted as exact matching), and infinity too.
    if not (real_number(tolerance) and 0 <= tolerance < math.inf):
        raise InvalidParameterError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    unusable = ~np.isfinite(m).reshape(m.shape[0], -1).all(axis=1)
    if unusable.any():
        # argmax reads NaN as the maximum: a broken map would point wherever its NaN is.
        raise InvalidParameterError(
            f"maps {np.flatnonzero(unusable).tolist()} hold NaN or infinite values; a map "
            "without a finite maximum points nowhere"
        )
    hits = np.zeros(m.shape[0], bool)
    for i in range(m.shape[0]):
        y, x = np.unravel_index(int(np.argmax(m[i])), m[i].shape)
        if tolerance > 0 and k[i].any():
            # Distance of every pixel to the nearest object pixel.
            near = ndimage.distance_transform_edt(~k[i]) <= tolerance
            hits[i] = near[y, x]
        else:
            hits[i] = k[i][y, x]
    return {"accuracy": float(hits.mean()), "hits": hits}
