"""Class activation maps: CAM, Grad-CAM, Grad-CAM++ and Score-CAM."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError, ModelError
from boda.explain._base import Explainer, Target

__all__ = ["CAM", "GradCAM", "GradCAMPlusPlus", "ScoreCAM"]


def _weighted_sum(weights: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    """``ReLU(sum_k w_k A_k)`` for weights ``(B, C)`` and activations ``(B, C, h, w)``."""
    return torch.relu(torch.einsum("bc,bchw->bhw", weights, acts))


class CAM(Explainer):
    r"""Class activation mapping (Zhou et al. 2016).

    For a network ending in global average pooling and one linear layer, the
    map of class :math:`c` is :math:`M_c = \sum_k w^c_k A_k` with
    :math:`A_k` the last feature maps and :math:`w^c` the linear weights of
    class :math:`c` (Eq. 2 of [1]_).  No gradient is needed.  As in the paper
    there is no ReLU, so for such networks Grad-CAM equals ``ReLU(CAM)``
    (up to a positive scale).

    Parameters
    ----------
    model, layer, reshape_transform, output_key
        See :class:`boda.explain.Explainer`; ``layer`` is the feature map that
        is pooled.
    fc : str or torch.nn.Module, optional
        The linear classifier.  Default: the first ``nn.Linear`` the forward
        pass runs after the target layer, found on each call (:attr:`fc` then
        holds it), which must take the layer's channels and give the model's
        logits; an auxiliary or projection head run after the classifier, or
        never run, is not taken.

    Raises
    ------
    InvalidParameterError
        No linear layer found, or one whose input size differs from the
        layer's channel count or whose output size differs from the number
        of logits (e.g. an MLP head, for which CAM is not defined: use
        Grad-CAM).

    References
    ----------
    .. [1] B. Zhou, A. Khosla, A. Lapedriza, A. Oliva, A. Torralba, "Learning
       Deep Features for Discriminative Localization", CVPR 2016.

    Examples
    --------
    >>> import torch
    >>> from boda.nn import resnet20
    >>> with CAM(resnet20(), "layer3") as cam:
    ...     maps = cam(torch.rand(2, 3, 32, 32), target=3)
    >>> maps.shape
    torch.Size([2, 32, 32])
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        fc: str | nn.Module | None = None,
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output_key: str | int | None = None,
    ):
        super().__init__(
            model, layer, reshape_transform=reshape_transform, output_key=output_key
        )
        #: The classifier: as given, else the one the last call found (None before).
        self.fc: nn.Linear | None = None
        if fc is None:
            if not any(isinstance(m, nn.Linear) for m in model.modules()):
                raise InvalidParameterError("model has no nn.Linear layer; pass fc=...")
        elif isinstance(fc, str):
            self.fc = dict(model.named_modules()).get(fc)
            if not isinstance(self.fc, nn.Linear):
                raise InvalidParameterError(f"fc={fc!r} is not an nn.Linear layer of the model")
        elif isinstance(fc, nn.Linear):
            self.fc = fc
        else:
            raise InvalidParameterError(
                f"fc must be the model's final nn.Linear (or its name), got {type(fc).__name__}"
            )
        self._fc_given = self.fc

    def _watch_linears(self) -> list[nn.Module | None]:
        """Hooks that log, in running order, the target layer's outputs (None) and
        every ``nn.Linear`` about to run."""
        events: list[nn.Module | None] = []
        assert self.layer is not None
        self._hook(self.layer, lambda *_: events.append(None))
        for m in self.model.modules():
            if isinstance(m, nn.Linear):
                self._handles.append(m.register_forward_pre_hook(
                    lambda mod, _inp: events.append(mod)
                ))  # fmt: skip
        return events

    def _classifier(self, events: list[nn.Module | None]) -> nn.Linear:
        """The first ``nn.Linear`` run after the target layer's (last) output."""
        last = max(i for i, e in enumerate(events) if e is None)
        fc = next((e for e in events[last + 1 :] if e is not None), None)
        if fc is None:
            raise InvalidParameterError(
                f"no nn.Linear runs after layer {self.layer_name!r}; CAM needs global average "
                "pooling and a linear classifier after the layer: pass fc=... (the classifier, "
                "or its name), or use Grad-CAM"
            )
        return fc  # type: ignore[return-value]

    def _fc_name(self, fc: nn.Module) -> str:
        return next((n for n, m in self.model.named_modules() if m is fc), type(fc).__name__)

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        if callable(target):
            raise InvalidParameterError("CAM needs class targets; a callable target cannot be used")
        store = self._capture_layer(cut_graph=False)
        events = self._watch_linears() if self._fc_given is None else []
        with torch.no_grad():
            logits = self._forward(x)
        classes = self._resolve_target(logits, target)
        self._remember(logits, classes)
        if "act" not in store:
            raise self._unused_layer_error()
        acts = self._transform(store["act"].detach())
        fc = self._fc_given if self._fc_given is not None else self._classifier(events)
        weight = fc.weight.detach()
        if weight.shape[1] != acts.shape[1] or weight.shape[0] != logits.shape[1]:
            found = "" if self._fc_given is not None else (
                f" (the first nn.Linear run after layer {self.layer_name!r})"
            )
            raise InvalidParameterError(
                f"the classifier {self._fc_name(fc)!r}{found} maps {weight.shape[1]} features "
                f"to {weight.shape[0]}, but layer {self.layer_name!r} has {acts.shape[1]} "
                f"channels and the model {logits.shape[1]} logits; CAM needs global average "
                "pooling and one linear layer after the layer: pass fc=... (the classifier, or "
                "its name), or use Grad-CAM"
            )
        self.fc = fc
        # Eq. 2 of Zhou et al. has no ReLU: negative evidence stays visible.
        return torch.einsum("bc,bchw->bhw", weight[classes], acts)


class GradCAM(Explainer):
    r"""Gradient-weighted class activation mapping (Selvaraju et al. 2017).

    Channel weights are the spatially averaged gradients of the class score,
    :math:`\alpha^c_k = \frac{1}{Z}\sum_{ij}\partial y^c/\partial A^k_{ij}`
    (Eq. 1 of [1]_); the map is :math:`\mathrm{ReLU}(\sum_k \alpha^c_k A^k)`
    (Eq. 2).  Gradients are taken only back to the target layer: its output is
    detached and re-entered as a leaf, so nothing before it is differentiated.

    References
    ----------
    .. [1] R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
       Networks via Gradient-based Localization", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from boda.nn import resnet20
    >>> with GradCAM(resnet20(), "layer3") as cam:
    ...     maps = cam(torch.rand(2, 3, 32, 32))
    >>> float(maps.max()) <= 1.0
    True
    """

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        acts, grads = self._layer_gradients(x, target)
        return _weighted_sum(grads.mean(dim=(2, 3)), acts)


class GradCAMPlusPlus(Explainer):
    r"""Grad-CAM++ (Chattopadhay et al. 2018).

    Weights :math:`w^c_k = \sum_{ij} \alpha^{kc}_{ij}\,\mathrm{ReLU}(g_{ij})`
    with :math:`g = \partial S^c/\partial A^k` and, for the exponential score
    :math:`Y^c = \exp(S^c)` (Eq. 19 of [1]_),
    :math:`\alpha^{kc}_{ij} = g_{ij}^2 / (2 g_{ij}^2 + \sum_{ab} A^k_{ab} g_{ij}^3)`
    (0 where the denominator is 0).  The paper's weights use
    :math:`\mathrm{ReLU}(\partial Y^c/\partial A^k) = \exp(S^c)\,\mathrm{ReLU}(g)`; the
    factor :math:`\exp(S^c)` is the same for every channel and is dropped (it
    only scales the map).

    Parameters
    ----------
    model, layer, reshape_transform, output_key
        See :class:`boda.explain.Explainer`.
    eps : float
        Added to the denominator of :math:`\alpha`.  The default 0 is Eq. 19.
        ``eps=1e-6`` reproduces pytorch-grad-cam, whose constant matters when
        the gradients are small (:math:`2g^2` near ``1e-6``), so its maps then
        depend on the scale of the scores.
    alpha : {"eq19", "grad-squared"}
        ``"eq19"`` (default): :math:`\alpha` as above, the paper's Eq. 19.
        ``"grad-squared"``: :math:`\alpha = g^2`, what torchcam 0.5 computes
        (its division is lost), for comparisons with it.

    References
    ----------
    .. [1] A. Chattopadhay, A. Sarkar, P. Howlader, V. N. Balasubramanian,
       "Grad-CAM++: Generalized Gradient-Based Visual Explanations for Deep
       Convolutional Networks", WACV 2018.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        eps: float = 0.0,
        alpha: str = "eq19",
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output_key: str | int | None = None,
    ):
        super().__init__(
            model, layer, reshape_transform=reshape_transform, output_key=output_key
        )
        if not (real_number(eps) and 0 <= eps < math.inf):  # inf made every weight 0
            raise InvalidParameterError(f"eps must be a finite number >= 0, got {eps!r}")
        if alpha not in ("eq19", "grad-squared"):
            raise InvalidParameterError(
                f'alpha must be "eq19" (the paper) or "grad-squared" (torchcam 0.5), got {alpha!r}'
            )
        self.eps = float(eps)
        self.alpha = alpha

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        acts, grads = self._layer_gradients(x, target)
        g2 = grads.pow(2)
        if self.alpha == "grad-squared":
            return _weighted_sum((g2 * torch.relu(grads)).sum(dim=(2, 3)), acts)
        denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * (g2 * grads) + self.eps
        ok = (denom != 0) & (grads != 0)
        alpha = torch.where(ok, g2 / torch.where(ok, denom, torch.ones_like(denom)), 0.0)
        weights = (alpha * torch.relu(grads)).sum(dim=(2, 3))
        return _weighted_sum(weights, acts)


class ScoreCAM(Explainer):
    r"""Score-CAM (Wang et al. 2020): weights from masked forward passes.

    Each channel :math:`A_k` of the target layer is upsampled to the input
    size (bilinear) and min-max scaled to ``[0, 1]``, giving a mask :math:`H_k`; the
    weight of the channel is the class score of the masked input,
    :math:`w_k = s^c(X \circ H_k)` (Eq. 5-6 of [1]_; ``s`` is the softmax
    probability as in the authors' code, or the logit / callable value).  The
    map is :math:`\mathrm{ReLU}(\sum_k w_k A_k)`.

    Parameters
    ----------
    model, layer, reshape_transform, output_key
        See :class:`boda.explain.Explainer`.
    batch_size : int, optional
        Masked inputs per forward pass.  Results do not depend on it.  The
        default (``None``) takes 16, or 8 for inputs of more than 128 x 128
        pixels: the fastest on CPUs at 32 and 224 px (larger chunks were slower,
        their activations fall out of the cache); on a GPU pass a larger value.
    top_k : int, optional
        Score only the ``top_k`` channels with the largest mean activation per
        sample (a speed-up; the rest get weight 0).
    softmax : bool
        Use class probabilities (default, as in [1]_) rather than logits.
        Ignored for callable targets, whose values are used as they are.
    align_corners : bool
        How the channels are upsampled into masks.  ``False`` (default) is
        :func:`torch.nn.functional.interpolate`'s half-pixel convention, used by
        the authors' code, torchcam, and every other resize in boda;
        ``True`` (``nn.UpsamplingBilinear2d``) reproduces pytorch-grad-cam.
    weighting : {"score", "channel-softmax"}
        ``"score"`` (default): :math:`w_k` is the masked input's class score
        (Eq. 6 of [1]_).  ``"channel-softmax"``: the scores of all channels of
        a sample go through a softmax over channels, as pytorch-grad-cam and
        torchcam do; constant channels are then scored too, with an empty mask
        (a zero input, forwarded once per sample).  With ``top_k`` the softmax
        runs over the scored channels; the others keep weight 0.
    mask_scaling : {"upsampled", "activation"}
        Where a channel is min-max scaled into a mask: after upsampling
        (default, the authors' code and pytorch-grad-cam) or at the layer's own
        resolution, then upsampled (torchcam).

        The conventions of the two libraries, for comparisons:
        pytorch-grad-cam's default (logit target) is ``softmax=False,
        weighting="channel-softmax", align_corners=True``, torchcam's is
        ``softmax=False, weighting="channel-softmax", mask_scaling="activation"``
        (``benchmarks/explain_parity.py`` checks both at r = 1.00000).
    precision : {"float32", "bfloat16"}
        Arithmetic of the masked forwards.  ``"float32"`` (default) is exact up
        to float rounding; ``"bfloat16"`` runs them under
        :func:`torch.autocast` (1.8-1.9x faster than the float32 default in
        the benchmark, on a CPU with AVX-512 BF16; maps correlated with the
        float32 ones at r >= 0.99997 on its images, see docs/explain.md).
        Not exact: check on your model before relying on it.

    Raises
    ------
    InvalidParameterError
        ``batch_size`` or ``top_k`` below 1, or an unknown ``precision``,
        ``weighting`` or ``mask_scaling``.

    Notes
    -----
    Masked forwards run under :func:`torch.inference_mode`, through the model
    only (no hooks), on a channels-last input where the model accepts one
    (see :attr:`Explainer.channels_last`), and, once enough of them ran on an
    unchanged model, on an inference copy: BatchNorm folded into the
    convolutions, and above 128 x 128 px also frozen by TorchScript with
    oneDNN Graph fusion (see :attr:`Explainer.inference_copy`).  Channels that
    are constant over the image carry no spatial information and cannot be
    min-max scaled: they are skipped (weight 0), as in the authors' code.

    References
    ----------
    .. [1] H. Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
       Convolutional Neural Networks", CVPR Workshops 2020.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        batch_size: int | None = None,
        top_k: int | None = None,
        softmax: bool = True,
        align_corners: bool = False,
        weighting: str = "score",
        mask_scaling: str = "upsampled",
        precision: str = "float32",
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output_key: str | int | None = None,
    ):
        super().__init__(
            model, layer, reshape_transform=reshape_transform, output_key=output_key
        )
        self.precision = self._check_precision(precision)
        if weighting not in ("score", "channel-softmax"):
            raise InvalidParameterError(
                f"weighting must be 'score' or 'channel-softmax', got {weighting!r}"
            )
        if mask_scaling not in ("upsampled", "activation"):
            raise InvalidParameterError(
                f"mask_scaling must be 'upsampled' or 'activation', got {mask_scaling!r}"
            )
        self.weighting = weighting
        self.mask_scaling = mask_scaling
        # Whole numbers: 2.5 was taken as 2, and "a" or NaN failed in int().
        if batch_size is not None and not (whole_number(batch_size) and batch_size >= 1):
            raise InvalidParameterError(
                f"batch_size must be a whole number >= 1 or None, got {batch_size!r}"
            )
        if top_k is not None and not (whole_number(top_k) and top_k >= 1):
            raise InvalidParameterError(f"top_k must be a whole number >= 1 or None, got {top_k!r}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self.top_k = None if top_k is None else int(top_k)
        self.softmax = bool(softmax)
        self.align_corners = bool(align_corners)

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        with torch.inference_mode():
            first = self._first_forward_on_copy(x)
            if first is None:
                store = self._capture_layer(cut_graph=False)
                logits = self._forward(x)
                self.remove_hooks()  # masked forwards must not overwrite the activations
                if "act" not in store:
                    raise self._unused_layer_error()
                first = logits, store["act"]
            logits, layer_output = first
            classes = self._resolve_target(logits, target)
            self._remember(logits, classes)
            acts = self._transform(layer_output).float()
            b, c = acts.shape[:2]
            lo = acts.amin(dim=(2, 3))
            hi = acts.amax(dim=(2, 3))
            varies = hi > lo  # constant channels cannot be min-max scaled
            keep = varies.clone()
            if self.top_k is not None and self.top_k < c:
                rank = acts.mean(dim=(2, 3)).masked_fill(~keep, float("-inf"))
                top = rank.topk(self.top_k, dim=1).indices
                chosen = torch.zeros_like(keep).scatter_(1, top, True)
                keep &= chosen
            pairs = keep.nonzero()  # (n, 2): sample, channel
            weights = acts.new_zeros(b, c)
            bs = self.batch_size or (8 if x.shape[-2] * x.shape[-1] > 128 * 128 else 16)
            blank = int(self.weighting == "channel-softmax")  # the zero-input forward
            self._begin_batched(x, logits, -(-pairs.shape[0] // bs) + blank, layer_output)
            # Once channels-last inputs are known to work (an earlier call), the masked
            # inputs are made in that layout (the product keeps x's), not copied into
            # it per chunk; the forwards take them channels-last either way.
            xs = x
            if self._channels_last_ok and self._channels_last_wanted(x):
                xs = x.contiguous(memory_format=torch.channels_last)
            for start in range(0, pairs.shape[0], bs):
                chunk = pairs[start : start + bs]
                bi, ci = chunk[:, 0], chunk[:, 1]
                masks = self._masks(acts[bi, ci][:, None], x.shape[-2:])
                out = self._forward_fast(xs[bi] * masks.to(x))  # x's dtype and device
                sub_classes = None if classes is None else classes[bi]
                s = self._scores(out, sub_classes, target, softmax=self.softmax)
                weights[bi, ci] = s.float()
            if self.weighting == "channel-softmax":
                weights = self._channel_softmax(weights, keep, varies, x, classes, target)
            if not torch.isfinite(weights).all():
                raise ModelError("the model gave non-finite scores on masked inputs")
            return _weighted_sum(weights, acts)

    def _masks(self, channels: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """Min-max scaled, upsampled masks ``(n, 1, H, W)`` of non-constant channels."""
        if self.mask_scaling == "activation":  # scale, then upsample (torchcam)
            c_lo = channels.amin(dim=(2, 3), keepdim=True)
            scaled = (channels - c_lo) / (channels.amax(dim=(2, 3), keepdim=True) - c_lo)
            return F.interpolate(
                scaled, size=size, mode="bilinear", align_corners=self.align_corners
            )
        a = F.interpolate(channels, size=size, mode="bilinear", align_corners=self.align_corners)
        # Scale the upsampled map itself, as the authors' code does.
        a_lo = a.amin(dim=(2, 3), keepdim=True)
        return (a - a_lo) / (a.amax(dim=(2, 3), keepdim=True) - a_lo)

    def _channel_softmax(
        self,
        scores: torch.Tensor,
        keep: torch.Tensor,
        varies: torch.Tensor,
        x: torch.Tensor,
        classes: torch.Tensor | None,
        target: Target,
    ) -> torch.Tensor:
        """Softmax over each sample's channels; constant ones scored on a zero input."""
        constant = ~varies
        if self.top_k is None:
            keep = keep | constant
        if (keep & constant).any():
            # An empty mask is the same zero input for every constant channel.
            out = self._forward_fast(torch.zeros_like(x))
            blank = self._scores(out, classes, target, softmax=self.softmax).float()
            scores = torch.where(keep & constant, blank[:, None], scores)
        scored = scores.masked_fill(~keep, float("-inf"))
        return torch.where(keep, torch.softmax(scored, dim=1), 0.0)

    def __repr__(self) -> str:
        return (
            f"ScoreCAM(layer={self.layer_name!r}, batch_size={self.batch_size}, "
            f"top_k={self.top_k}, weighting={self.weighting!r}, "
            f"mask_scaling={self.mask_scaling!r}, precision={self.precision!r})"
        )
