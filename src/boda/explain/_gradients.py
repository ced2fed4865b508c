"""Input-gradient methods: saliency (plain, squared, SmoothGrad), guided backprop and Grad-CAM."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError, ModelError
from boda.explain._base import Explainer, Target, _as_model_input, _check_input
from boda.explain._cam import GradCAM

__all__ = ["Saliency", "GuidedBackprop", "GuidedGradCAM", "guided_relu"]

_REDUCE = ("max", "mean", "sum")


def _reduce_channels(g: torch.Tensor, reduce: str) -> torch.Tensor:
    if reduce == "max":
        return g.amax(dim=1)
    if reduce == "mean":
        return g.mean(dim=1)
    return g.sum(dim=1)


class Saliency(Explainer):
    r"""Gradient saliency: :math:`|\partial y^c / \partial x|`, squared, or SmoothGrad.

    The vanilla map is the largest absolute input gradient over the colour
    channels (Simonyan et al. 2014, Sec. 3.1 [1]_).  With ``samples > 0`` the
    gradient magnitude is averaged over noisy copies
    :math:`x + \mathcal N(0, \sigma^2)`, :math:`\sigma` = ``noise`` times the
    input's value range (SmoothGrad, Eq. 3 of [2]_); ``squared=True`` averages
    squared gradients instead of absolute ones (SmoothGrad-Squared).

    Parameters
    ----------
    model, output_key
        See :class:`boda.explain.Explainer` (no layer is used).
    samples : int
        Noisy copies for SmoothGrad; 0 for the plain gradient.
    noise : float
        Noise level relative to ``x.max() - x.min()`` per sample (0.15 in [2]_).
    squared : bool
        Square the gradients instead of taking their absolute value.
    reduce : {"max", "mean", "sum"}
        How the channel magnitudes become one map.
    seed : int
        Seed of the noise.

    References
    ----------
    .. [1] K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional
       Networks: Visualising Image Classification Models and Saliency Maps",
       ICLR Workshop 2014.
    .. [2] D. Smilkov et al., "SmoothGrad: removing noise by adding noise",
       arXiv:1706.03825, 2017.

    Examples
    --------
    >>> import torch
    >>> from boda.nn import resnet20
    >>> Saliency(resnet20(), samples=4, seed=0)(torch.rand(1, 3, 32, 32)).shape
    torch.Size([1, 32, 32])
    """

    uses_layer = False

    def __init__(
        self,
        model: nn.Module,
        *,
        samples: int = 0,
        noise: float = 0.15,
        squared: bool = False,
        reduce: str = "max",
        seed: int = 0,
        output_key: str | int | None = None,
    ):
        super().__init__(model, output_key=output_key)
        # Written so that NaN fails (it gave noisy copies of NaN), and infinity too;
        # samples a whole number (2.5 was taken as 2 copies).
        # real_number first: noise="0.1" was a raw TypeError from the comparison.
        if not (whole_number(samples) and samples >= 0) or not (
            real_number(noise) and 0 <= noise < math.inf
        ):
            raise InvalidParameterError(
                f"need samples >= 0 and a finite noise >= 0, got {samples}, {noise}"
            )
        if reduce not in _REDUCE:
            raise InvalidParameterError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
        self.samples = int(samples)
        self.noise = float(noise)
        self.squared = bool(squared)
        self.reduce = reduce
        self.seed = int(seed)

    def _input_gradient(self, x: torch.Tensor, target: Target, classes: torch.Tensor | None):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logits = self._forward(xg)
            if classes is None:  # a callable target stays None, its logits checked
                classes = self._resolve_target(logits, target)
            scores = self._scores(logits, classes, target)
            (grad,) = torch.autograd.grad(scores.sum(), xg)
        return grad, logits, classes

    def gradients(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Signed input gradients ``(B, C, H, W)`` (averaged over the noisy copies), on
        the device ``x`` was on."""
        device = _check_input(x).device
        x = _as_model_input(self.model, x)
        with self._session():
            return self._accumulate(x.detach().clone(), target, signed=True).detach().to(device)

    def _accumulate(self, x: torch.Tensor, target: Target, signed: bool) -> torch.Tensor:
        grad, logits, classes = self._input_gradient(x, target, None)
        self._remember(logits, classes)
        if self.samples == 0:
            return grad if signed else self._magnitude(grad)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        span = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)
        total = torch.zeros_like(x)
        for _ in range(self.samples):
            # One draw per image shape, shared by the batch: an image gets the same
            # noise alone or in any batch position, so its map does not depend on them.
            draw = torch.randn(x.shape[1:], generator=gen).to(x)
            eps = draw.unsqueeze(0) * (self.noise * span)
            g, _, _ = self._input_gradient(x + eps, target, classes)
            total += g if signed else self._magnitude(g)
        return total / self.samples

    def _magnitude(self, g: torch.Tensor) -> torch.Tensor:
        return g.pow(2) if self.squared else g.abs()

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        return _reduce_channels(self._accumulate(x, target, signed=False), self.reduce)


class _GuidedReLUFn(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients at positive inputs."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clamp(min=0)
        ctx.save_for_backward(out > 0)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (mask,) = ctx.saved_tensors
        return grad.clamp(min=0) * mask


_RELU_OUT = {F.relu, torch.relu, torch.Tensor.relu}
_RELU_INPLACE = {F.relu_, torch.relu_, torch.Tensor.relu_}


class _GuidedMode(TorchFunctionMode):
    """Route every ReLU call (module, functional, method, in-place or not) to the guided one."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inplace = func in _RELU_INPLACE or (func is F.relu and kwargs.get("inplace", False))
        if func in _RELU_OUT or func in _RELU_INPLACE:
            x = args[0]
            out = _GuidedReLUFn.apply(x)
            if inplace:
                return x.copy_(out)
            return out
        return func(*args, **kwargs)


@contextlib.contextmanager
def guided_relu() -> Iterator[None]:
    """Context in which every ReLU of an eager model backpropagates guided gradients.

    Works for ``nn.ReLU`` (in-place or not), ``F.relu``, ``torch.relu`` and
    ``Tensor.relu(_)``, since calls are intercepted with a
    :class:`torch.overrides.TorchFunctionMode`.  TorchScript models bypass it.
    """
    with _GuidedMode():
        yield


class GuidedBackprop(Saliency):
    r"""Guided backpropagation (Springenberg et al. 2015), on a whole batch.

    Input gradients where every ReLU passes back only positive gradients and
    only where its input was positive (Eq. in Fig. 1 of [1]_).  ReLUs are
    intercepted at the function level (see :func:`guided_relu`), so in-place
    ReLUs and ``F.relu`` calls are handled and no module is modified.  The map
    is the largest absolute value over channels; :meth:`gradients` gives the
    raw ``(B, C, H, W)`` image.

    References
    ----------
    .. [1] J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller,
       "Striving for Simplicity: The All Convolutional Net", ICLR Workshop 2015.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        reduce: str = "max",
        output_key: str | int | None = None,
    ):
        super().__init__(model, reduce=reduce, output_key=output_key)
        if isinstance(model, torch.jit.ScriptModule):
            # The model's kind, not a parameter: a ModelError, as for the layer methods.
            raise ModelError(
                "guided backpropagation needs an eager (Python) model: TorchScript runs its "
                "ReLUs where they cannot be rerouted; load a state dict with its architecture "
                "instead (load_model(path, arch=...), --arch on the command line), or use "
                "saliency, smoothgrad or occlusion"
            )

    def _input_gradient(self, x: torch.Tensor, target: Target, classes: torch.Tensor | None):
        with guided_relu():
            return super()._input_gradient(x, target, classes)


class GuidedGradCAM(Explainer):
    r"""Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM map.

    Sec. 3.1 of [1]_: the element-wise product of the guided backpropagation
    image and the Grad-CAM map (bilinearly upsampled to the input).
    :meth:`gradients` returns that ``(B, C, H, W)`` product; calling the
    explainer reduces it to a map with the channel-wise largest absolute value.

    References
    ----------
    .. [1] R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
       Networks via Gradient-based Localization", ICCV 2017.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output_key: str | int | None = None,
    ):
        super().__init__(
            model, layer, reshape_transform=reshape_transform, output_key=output_key
        )
        self._gradcam = GradCAM(
            model, self.layer, reshape_transform=reshape_transform, output_key=output_key
        )
        self._guided = GuidedBackprop(model, output_key=output_key)

    def gradients(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Guided Grad-CAM image ``(B, C, H, W)``."""
        cam = self._gradcam(x, target, normalize=False)
        # Explain the same classes in both passes (the prediction when target is None).
        classes = self._gradcam.classes
        guided = self._guided.gradients(x, target if classes is None else classes)
        self.logits, self.classes = self._gradcam.logits, classes
        return guided * cam[:, None]

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        return self.gradients(x, target).abs().amax(dim=1)

    def remove_hooks(self) -> None:
        super().remove_hooks()
        for inner in ("_gradcam", "_guided"):
            if hasattr(self, inner):
                getattr(self, inner).remove_hooks()
