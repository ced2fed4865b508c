"""The shared base of every explanation method: hooks, model state, targets, maps.

The dangerous parts live here once so each method only says what differs:

- hooks are registered for one call and removed in a ``finally`` block (also
  on exceptions); the explainer is a context manager for symmetry;
- the model runs in eval mode with parameters frozen for the call, then every
  module's train/eval flag and every parameter's ``requires_grad`` are restored;
  parameters never receive ``.grad`` (gradients are taken with
  :func:`torch.autograd.grad` w.r.t. chosen tensors only);
- gradients work even when the caller is under ``torch.no_grad()`` or
  ``torch.inference_mode()``.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import math
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from boda.errors import InvalidImageError, InvalidParameterError, ModelError
from boda.nn import input_spec
from boda.nn._inference import InferenceCache

__all__ = [
    "Explainer", "Target", "class_probabilities", "resolve_layer", "normalize_maps",
    "model_logits",
]

#: Values of the ``precision`` argument of methods with batched forwards.
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}

#: A target: ``None`` (the predicted class), one class index for the whole
#: batch, one index per sample, or a callable mapping logits ``(B, K)`` to
#: scores ``(B,)`` row by row.
Target = None | int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


#: Modules after which a ``Sequential``'s output has no spatial map left.
_SPATIAL_REDUCERS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)


def _guess_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The default target layer (see :func:`resolve_layer`), or None."""
    # Look through wrappers: nn.DataParallel / DistributedDataParallel (.module)
    # and torch.compile (._orig_mod) hold the network as their one child.
    prefix, inner = "", model
    while True:
        wrapped = dict(inner.named_children())
        if len(wrapped) != 1 or next(iter(wrapped)) not in ("module", "_orig_mod"):
            break
        name, inner = next(iter(wrapped.items()))
        prefix += name + "."
    found = None
    for name, child in inner.named_children():
        if _has_conv(child):
            found = (prefix + name, child)
    # A Sequential that pools its own output away (SqueezeNet's classifier: dropout,
    # 1x1 conv, ReLU, global pooling; a whole network in one Sequential) would give
    # 1x1 or flat maps: take its last element holding a convolution instead.
    while found is not None and isinstance(found[1], nn.Sequential):
        items = list(found[1].named_children())
        last = max((i for i, (_, c) in enumerate(items) if _has_conv(c)), default=None)
        tail = [m for _, c in items[last + 1 :] for m in c.modules()] if last is not None else []
        if not any(isinstance(m, _SPATIAL_REDUCERS) for m in tail):
            break
        found = (f"{found[0]}.{items[last][0]}", items[last][1])
    return found


def resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    """Find a layer of ``model`` by name (``"layer3"``, ``"features.7"``) or by object.

    A module reachable under several names (``self.body = self.features``) is
    found by any of them and named by the first, the one
    ``model.named_modules()`` lists.

    With ``layer=None`` the last direct child of the model that is or contains
    a ``Conv2d`` is taken: the last convolutional stage of most CNNs (inside
    an ``nn.DataParallel`` or ``torch.compile`` wrapper, of the wrapped network).
    Where that child is an ``nn.Sequential`` that pools its own output to no
    spatial map (a global pooling, ``Flatten`` or ``Linear`` after its last
    convolution, as in SqueezeNet's classifier), its last element holding a
    ``Conv2d`` is taken instead (the same rule applied again).

    Raises
    ------
    InvalidParameterError
        Unknown name (with the closest matches), or nothing suitable found.
    """
    modules = dict(model.named_modules())
    if isinstance(layer, str):
        if layer in modules and layer != "":
            return layer, modules[layer]
        try:  # an alias: get_submodule walks attribute paths named_modules() skips
            found = model.get_submodule(layer) if layer else None
        except AttributeError:
            found = None
        if found is not None:
            return resolve_layer(model, found)
        names = [n for n, _ in model.named_modules(remove_duplicate=False) if n]
        close = [repr(n) for n in difflib.get_close_matches(layer, names, n=3)]
        hint = ""
        if close:
            hint = "; did you mean " + (
                close[0] if len(close) == 1 else ", ".join(close[:-1]) + " or " + close[-1]) + "?"
        raise InvalidParameterError(
            f"layer {layer!r} is not a module of the model{hint} (model.named_modules() "
            "lists the names)"
        )
    if isinstance(layer, nn.Module):
        for name, mod in modules.items():
            if mod is layer:
                return name, mod
        raise InvalidParameterError("the given layer module is not part of the model")
    if layer is not None:
        raise InvalidParameterError(f"layer must be a name, a module or None, got {type(layer)}")
    found = _guess_layer(model)
    if found is None:
        raise InvalidParameterError(
            "could not guess a target layer (no child module holds a Conv2d); pass layer=..."
        )
    return found


def model_logits(output: Any, key: str | int | None = None) -> torch.Tensor:
    """Pick the logits out of a model's output.

    A tensor is returned as it is; a mapping or an object with attributes
    (e.g. Hugging Face outputs) gives ``output[key]`` / ``output.key``, by
    default ``"logits"``; a tuple or list gives element ``key`` (default 0).
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) or hasattr(output, "keys"):
        k = "logits" if key is None else key
        try:
            value = output[k]
        except (KeyError, TypeError, IndexError):
            value = None
        if isinstance(value, torch.Tensor):
            return value
    if key is None or isinstance(key, str):
        value = getattr(output, "logits" if key is None else key, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(output, (tuple, list)) and output:
        value = output[0 if key is None else key] if not isinstance(key, str) else None
        if isinstance(value, torch.Tensor):
            return value
    raise ModelError(
        f"cannot find logits in a model output of type {type(output).__name__}; "
        "pass output_key=... naming the tensor to explain"
    )


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(B, K)`` from logits: the softmax over the classes, or
    for a single-logit binary classifier ``(B, 1)`` the sigmoid (a softmax over one
    logit is 1 whatever the model says, so every probability-based score would be
    constant)."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        return logits.sigmoid()
    return logits.softmax(dim=1)


def normalize_maps(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale every map of a ``(B, H, W)`` tensor to ``[0, 1]`` (min-max); a flat map becomes 0.

    A map is flat when its values span no more than ``eps`` times its largest
    magnitude: relative, so that a map and the same map times ``1e-14`` (the
    gradients of the probability of a class the model rules out) normalise alike.
    """
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    span = hi - lo
    varies = span > eps * torch.maximum(lo.abs(), hi.abs())
    out = torch.where(varies, (flat - lo) / torch.where(varies, span, 1.0), 0.0)
    return out.view_as(maps)


def _check_input(x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidImageError(f"x must be a float (B, C, H, W) tensor, got {shape}")
    if x.numel() == 0:
        raise InvalidParameterError(
            f"x is empty (shape {tuple(x.shape)}); give at least one image of at least one pixel"
        )
    bad = ~torch.isfinite(x.detach()).flatten(1).all(dim=1)
    if bad.any():
        # NaN spreads through every layer: with a callable target nothing else caught it,
        # and the maps came back blank (normalize_maps turns NaN into 0), the curves NaN.
        raise InvalidImageError(
            f"x holds NaN or infinite values in sample(s) {bad.nonzero().flatten().tolist()}; "
            "a model's decision on them cannot be explained: fix or drop those images"
        )
    return x


def _as_model_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` where the model can take it: on the device of its first parameter (or, for a
    model without any, its first buffer) and, for a floating-point ``x``, in the
    floating-point type of its weights (:func:`boda.nn.input_spec`).

    A model on a GPU refuses a CPU tensor, and a float16 or float64 model a float32
    one, with a raw torch error.  ``x`` itself is returned when it is already there
    (no copy); a model with neither parameters nor buffers leaves its device alone.
    """
    dtype = input_spec(model)[1]
    if dtype is None or not x.is_floating_point():
        dtype = x.dtype
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return x.to(device=x.device if first is None else first.device, dtype=dtype)


_MODEL_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
#: Frozen TorchScript copies built of each model by ``inference_copy="auto"`` (see
#: :meth:`Explainer._fused_or_pointwise`).
_FUSED_BUILDS: weakref.WeakKeyDictionary[nn.Module, int] = weakref.WeakKeyDictionary()
#: Frozen copies ``"auto"`` builds in one process, over all models: each keeps 12-18 MB of
#: native memory for good, also after its model is gone, so a loop that loads a new
#: model each time (a checkpoint per epoch) would grow by that much per model.
AUTO_FUSED_LIMIT = 4
_FUSED_TOTAL = 0  # frozen copies built in this process (never decreases)
_MODEL_LOCKS_GUARD = threading.Lock()


def _count_fused_build(model: nn.Module) -> None:
    """Count a frozen copy of ``model`` (per model, and in the process)."""
    global _FUSED_TOTAL
    with _MODEL_LOCKS_GUARD:
        _FUSED_BUILDS[model] = _FUSED_BUILDS.get(model, 0) + 1
        _FUSED_TOTAL += 1


def _model_lock(model: nn.Module) -> threading.RLock:
    """The lock that lets one thread at a time explain ``model`` (made on first use)."""
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and frozen parameters for the body; previous state restored after.

    One walk over the modules; only what must change is changed (and later put
    back), so a model already in eval mode with frozen weights costs a few
    microseconds per module rather than a full ``model.eval()`` recursion.

    The body holds the model's lock: explanations of one model from several
    threads run one after another.  Run concurrently, one thread's hooks
    would see the other's forward pass and one thread would put the model
    back in training mode while the other still runs it (BatchNorm would then
    update its statistics).  A thread may nest calls on the same model.
    """
    with _model_lock(model), _frozen_unlocked(model):
        yield


@contextlib.contextmanager
def _frozen_unlocked(model: nn.Module) -> Iterator[None]:
    modules = list(model.modules())
    if any(p.is_inference() for m in modules for p in m._parameters.values() if p is not None):
        # Checked before anything is changed: such a weight could be frozen but never
        # given requires_grad back, and autograd refuses it anyway.
        raise ModelError(
            f"the weights of {type(model).__name__} were made under torch.inference_mode() "
            "(inference tensors, which autograd and boda's explanations cannot use); load "
            "or build the model outside it (torch.no_grad() is fine), or copy them with "
            "model.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}) "
            "outside inference mode"
        )
    training = [m for m in modules if m.training]
    trainable = [
        p for m in modules for p in m._parameters.values() if p is not None and p.requires_grad
    ]
    try:
        if training:
            model.eval()  # honours modules that override train()
        for p in trainable:
            p.requires_grad_(False)
        yield
    finally:
        for m in training:
            m.training = True
        for p in trainable:
            p.requires_grad_(True)


def callable_scores(
    target: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor
) -> torch.Tensor:
    """``target(logits)``, checked to be one score per sample: a ``(B, K)`` or scalar
    return gave raw torch errors, or (in the metrics) a silently wrong Average Drop."""
    scores = target(logits)
    if not isinstance(scores, torch.Tensor) or scores.shape != (logits.shape[0],):
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
        raise InvalidParameterError(
            f"a callable target must return one score per sample, shape "
            f"({logits.shape[0]},); got {got}"
        )
    return scores


def _diverged(logits: torch.Tensor) -> torch.Tensor:
    """Per sample, whether ``logits`` ``(B, ...)`` say nothing: a NaN or +infinity
    anywhere, or every output -infinity.  A single -infinity is a class the model rules
    out (masked logits; its softmax probability is 0), not a diverged model."""
    values = logits.detach().flatten(1)
    broken = torch.isnan(values) | (values == math.inf)
    return broken.any(dim=1) | (values == -math.inf).all(dim=1)


def resolve_target(logits: torch.Tensor, target: Target) -> torch.Tensor | None:
    """The class index per sample ``(B,)`` for ``logits`` ``(B, K)``, or None for a
    callable target; the one check of targets for explainers and metrics alike."""
    b = logits.shape[0]
    if callable(target):
        # A diverged model gives NaN scores, and maps that normalise to blank: say so.
        if _diverged(logits).any():
            raise ModelError(
                "the model's outputs are not finite (NaN or infinity): a diverged model, "
                "or inputs outside the range it was trained on; there is nothing to explain"
            )
        return None
    if logits.ndim != 2:
        raise ModelError(
            f"class targets need logits of shape (B, K), got {tuple(logits.shape)}; "
            "pass a callable target instead"
        )
    k = logits.shape[1]
    bad = _diverged(logits)
    if bad.any():
        # argmax of NaN is class 0, and every map of it would be blank: say why instead.
        raise ModelError(
            f"the model's logits are not finite (NaN or infinity) for sample(s) "
            f"{bad.nonzero().flatten().tolist()}: a diverged model, or inputs outside the "
            "range it was trained on; there is nothing to explain"
        )
    if target is None:
        classes = logits.detach().argmax(dim=1)
    elif isinstance(target, (int,)) and not isinstance(target, bool):
        classes = torch.full((b,), int(target), dtype=torch.long)
    else:
        try:
            given = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError):
            given = None
        # True or 2.7 would silently become class 1 or 2.
        if given is None or given.dtype == torch.bool or given.is_floating_point():
            raise InvalidParameterError(
                f"target must be None, an int, one int per sample or a callable, got {target!r}"
            )
        classes = given.to(torch.long).flatten().cpu()
        if classes.numel() == 1:
            classes = classes.expand(b).clone()
        if classes.numel() != b:
            raise InvalidParameterError(
                f"got {classes.numel()} targets for a batch of {b}; give one per sample"
            )
    if classes.min() < 0 or classes.max() >= k:
        outside = sorted({int(c) for c in classes.tolist() if not 0 <= c < k})
        shown = outside[0] if len(outside) == 1 else outside  # "target 12", not "class [12]"
        raise InvalidParameterError(
            f"target {shown} is out of range: the model has {k} outputs, 0 to {k - 1}"
        )
    classes = classes.to(logits.device)
    ruled_out = logits.detach().gather(1, classes[:, None])[:, 0] == -math.inf
    if ruled_out.any():
        rows = ruled_out.nonzero().flatten().tolist()
        raise InvalidParameterError(
            f"the model rules out the target class (logit -infinity) for sample(s) {rows}: "
            "no part of the image makes it more or less likely; explain another class"
        )
    return classes


class Explainer:
    """Base class: one instance explains one model (and maybe one layer) many times.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier, returning logits ``(B, K)`` (or a tuple / mapping /
        object holding them, see ``output_key``).
    layer : str or torch.nn.Module, optional
        Target layer for layer-based methods (see :func:`resolve_layer`).
    reshape_transform : callable, optional
        Maps the layer's output to ``(B, C, h, w)``; for transformer token
        layers, e.g. ``lambda t: t[:, 1:].reshape(B, 14, 14, C).permute(0, 3, 1, 2)``.
        It is applied to activations and to their gradients alike.
    output_key : str or int, optional
        Where the logits are in a structured output (default ``"logits"`` /
        element 0).

    Notes
    -----
    Calling the explainer returns ``(B, H, W)`` maps.  Hooks exist only during
    a call; after it (or after an exception) the model carries none, its
    train/eval flags and ``requires_grad`` are as before, and no parameter has
    gained a ``.grad``.  :attr:`logits` and :attr:`classes` hold the last
    call's model output and explained classes.
    """

    #: Whether the method needs a target layer.
    uses_layer = True
    #: Run batched forward passes (Score-CAM's masked inputs) on a channels-last
    #: copy of the input: oneDNN's faster convolution layout on CPUs for batches
    #: (not for one image, so single forwards stay contiguous); same values up
    #: to float rounding.  A model that cannot take such an input (e.g. it calls
    #: ``.view`` on a feature map) is detected on the first failure and then
    #: run contiguous.  Set to ``False`` on an instance to turn it off.
    channels_last = True
    #: Run the batched, hook-free forwards (Score-CAM's masked inputs, occlusion's
    #: occluded inputs) on an inference copy of the model (see
    #: :class:`boda.nn.InferenceCache`), checked against the model's own logits
    #: before use, rebuilt when a parameter or buffer changes, never used for a
    #: model carrying hooks; same values up to float rounding.  ``"fold"``:
    #: BatchNorm folded into the convolutions (builds in milliseconds; holds a
    #: copy of the folded convolution weights).  ``"fused"``: also frozen by
    #: TorchScript and run with oneDNN Graph fusion (Score-CAM on a CPU 1.3-1.7x
    #: faster again; 0.4-1 s to build, about 30 MB more memory).  ``"pointwise"``:
    #: folded, then each convolution fused with the ReLU and residual addition
    #: after it into one oneDNN call in eager PyTorch (:func:`boda.nn.fuse_conv_pointwise`;
    #: builds in milliseconds, at the folded copy's memory; float32; ``"fold"``
    #: where oneDNN is missing).  ``"auto"`` (default, also ``True``): ``"fused"``
    #: for inputs above 128 x 128 pixels, where its memory is small beside the
    #: activations, else ``"pointwise"``.
    #: ``False``: the model itself.  Measurements in docs/explain.md.
    #: Because the copy is built only after a few calls (see
    #: :attr:`inference_min_forwards`), an explainer used again may return maps
    #: that differ from its first ones in the last float digits (about 1e-6);
    #: set ``False`` for bit-identical repeats.
    inference_copy: bool | str = "auto"
    #: Build the copy once this many batched forwards (this call's included) ran
    #: on an unchanged model; ``None``: 8 for ``"fold"`` and ``"pointwise"``, 32
    #: for ``"fused"`` (about where the time saved equals the build time).
    inference_min_forwards: int | None = None
    #: ``"float32"`` (exact) or ``"bfloat16"`` (autocast) for the batched forwards.
    precision = "float32"

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output_key: str | int | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise InvalidParameterError(f"model must be a torch.nn.Module, got {type(model)}")
        if reshape_transform is not None and not callable(reshape_transform):
            raise InvalidParameterError("reshape_transform must be callable")
        self.model = model
        self.layer_name: str | None = None
        self.layer: nn.Module | None = None
        if self.uses_layer and isinstance(model, torch.jit.ScriptModule):
            raise ModelError(
                f"{type(self).__name__} hooks a layer, which TorchScript models do not allow; "
                "load a state dict with its architecture instead (load_model(path, arch=...), "
                "--arch on the command line), or use saliency, smoothgrad or occlusion"
            )
        if self.uses_layer:
            self.layer_name, self.layer = resolve_layer(model, layer)
        self.reshape_transform = reshape_transform
        self.output_key = output_key
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._channels_last_ok: bool | None = None  # None: not tried yet
        self._inference: InferenceCache | None = None
        self._batched_check: tuple[torch.Tensor, torch.Tensor] | None = None
        self._batched_forwards = 0
        self._batched_model: nn.Module | None = None
        self._copy_for_call: nn.Module | None = None  # see _first_forward_on_copy
        self._cache_key: tuple | None = None  # InferenceCache.key for this call
        self.logits: torch.Tensor | None = None
        self.classes: torch.Tensor | None = None

    # -- context manager and hooks ------------------------------------------------
    def __enter__(self) -> Explainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove_hooks()

    def remove_hooks(self) -> None:
        """Remove every hook this explainer registered (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    def _hook(self, module: nn.Module, fn: Callable[..., Any]) -> None:
        self._handles.append(module.register_forward_hook(fn))

    def __repr__(self) -> str:
        layer = f"layer={self.layer_name!r}" if self.layer_name is not None else ""
        return f"{type(self).__name__}({layer})"

    # -- the call -----------------------------------------------------------------------
    def __call__(
        self,
        x: torch.Tensor,
        target: Target = None,
        *,
        upsample: bool = True,
        normalize: bool = True,
    ) -> torch.Tensor:
        """Explain the model's decision on a batch.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C, H, W)`` model input (already normalised the way the model
            expects); moved to the model's device and dtype for the call.
        target : None, int, sequence of int, tensor or callable
            What to explain: ``None`` the predicted class of each sample, an
            index for all samples, one index per sample, or a callable
            ``f(logits) -> (B,)`` scoring each row.
        upsample : bool
            Resize the maps to ``(H, W)`` (bilinear).
        normalize : bool
            Scale each map to ``[0, 1]``.

        Returns
        -------
        torch.Tensor
            ``(B, H, W)`` float maps (``(B, h, w)`` at the layer's resolution
            when ``upsample=False``), on the device ``x`` was on.
        """
        device = _check_input(x).device  # the maps come back there
        x = _as_model_input(self.model, x)
        with self._session():
            x = x.detach().clone()  # also turns an inference tensor into a normal one
            maps = self._explain(x, target).detach().float()
        if upsample and tuple(maps.shape[-2:]) == (1, 1):
            # One value per map (a pooled layer): bilinear upsampling adds rounding noise
            # that normalize_maps would stretch into a map; this one is flat (0 after it).
            maps = maps.expand(-1, *x.shape[-2:]).clone()
        elif upsample and tuple(maps.shape[-2:]) != tuple(x.shape[-2:]):
            maps = F.interpolate(
                maps[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False
            )[:, 0]
        if normalize:
            maps = normalize_maps(maps)
        return maps.to(device)

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Normal (non-inference) mode, frozen model, hooks removed at the end."""
        with torch.inference_mode(False), _frozen(self.model):
            try:
                yield
            finally:
                self.remove_hooks()
                self._batched_check, self._batched_model = None, None
                self._copy_for_call = self._cache_key = None

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        raise NotImplementedError

    # -- helpers for the methods -----------------------------------------------------
    @staticmethod
    def _check_precision(precision: str) -> str:
        if precision not in PRECISIONS:
            raise InvalidParameterError(
                f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}"
            )
        return precision

    def _forward(self, x: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
        return self._logits((self.model if model is None else model)(x), x)

    def _logits(self, output: Any, x: torch.Tensor) -> torch.Tensor:
        logits = model_logits(output, self.output_key)
        if logits.ndim == 0 or logits.shape[0] != x.shape[0]:
            raise ModelError(
                f"model output has shape {tuple(logits.shape)}; expected (B, ...) with "
                f"B = {x.shape[0]} (the batch size)"
            )
        return logits

    def _begin_batched(
        self, x: torch.Tensor, logits: torch.Tensor, forwards: int,
        layer_output: Any = None,
    ) -> None:
        """Announce this call's batched forwards: ``forwards`` of them, and the
        model's logits on ``x`` (hooks already removed) to check a copy against.

        With ``layer_output`` (the target layer's output on ``x``, as the hook
        read it) the copy also returns that layer's output and is checked on it
        too, so that later calls can take it from the copy
        (:meth:`_first_forward_on_copy`).
        """
        self._batched_check = (x, logits)
        if layer_output is not None:
            self._batched_check = (x, logits, layer_output)
        self._batched_forwards = int(forwards)
        # Picked on the first batch (the trace example), unless the first forward
        # already ran on a copy (:meth:`_first_forward_on_copy`).
        self._batched_model, self._copy_for_call = self._copy_for_call, None

    def _channels_last_wanted(self, x: torch.Tensor) -> bool:
        return self.channels_last and self._channels_last_ok is not False and x.ndim == 4

    def _copy_mode(self, x: torch.Tensor) -> str | None:
        """The kind of inference copy for inputs like ``x`` (None: the model itself)."""
        mode = "auto" if self.inference_copy is True else self.inference_copy
        if mode not in (False, None, "auto", "fold", "fused", "pointwise"):
            raise InvalidParameterError(
                "inference_copy must be 'auto', 'fold', 'fused', 'pointwise' or False, "
                f"got {mode!r}"
            )
        if mode == "auto":
            large = x.ndim == 4 and x.shape[-2] * x.shape[-1] > 128 * 128
            mode = "fused" if large else "pointwise"
        return mode or None

    def _copy_variant(self, mode: str, tapped: bool) -> dict[str, Any]:
        """:meth:`InferenceCache.get`'s variant arguments for ``mode``.

        The target layer is tapped only in float32 eager copies: a reduced
        precision would change the layer's values, and a frozen TorchScript
        graph compiles (and keeps) a partition for every new input shape.
        """
        dtype = PRECISIONS[self.precision]
        tap = tapped and mode != "fused" and dtype is None and self.layer is not None
        return {
            "freeze": mode == "fused",
            "pointwise": mode == "pointwise",
            "dtype": dtype,
            "tap": self.layer if tap else None,
        }

    def _layout_example(self, x: torch.Tensor) -> torch.Tensor:
        if self._channels_last_wanted(x):
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _batched_module(self, x: torch.Tensor) -> nn.Module:
        if self._batched_model is not None:
            return self._batched_model
        model = self.model
        mode = self._copy_mode(x)
        if mode and self._batched_check is not None:
            if self._inference is None or self._inference.model is not self.model:
                self._inference = InferenceCache(self.model)
            cache, example = self._inference, self._layout_example(x)
            if mode == "fused" and self.inference_copy in ("auto", True):
                mode = self._fused_or_pointwise(cache, example)
            least = self.inference_min_forwards
            if least is None:
                least = 32 if mode == "fused" else 8
            cache.min_forwards = max(int(least), 1)
            builds = cache.builds
            model = cache.get(
                example,
                forwards=self._batched_forwards,
                check=self._batched_check,
                select=lambda out: model_logits(out, self.output_key),
                key=self._cache_key,
                **self._copy_variant(mode, tapped=len(self._batched_check) == 3),
            )
            if mode == "fused" and cache.builds > builds:
                _count_fused_build(self.model)
        self._batched_model = model
        return model

    def _fused_or_pointwise(self, cache: InferenceCache, example: torch.Tensor) -> str:
        """``"fused"`` (frozen TorchScript) for the first such copy of a model, and
        for as long as that copy serves; ``"pointwise"`` (eager) after that.

        Each TorchScript trace and freeze keeps 12-18 MB of native memory that
        nothing gives back, so a new explainer per image, or a training loop whose
        every step changes the weights, would grow without bound: one build per
        model is what ``"auto"`` allows, and :data:`AUTO_FUSED_LIMIT` builds per
        process over all models (a new model per call would otherwise get its
        own).  ``inference_copy="fused"`` builds whenever asked.
        """
        if not _FUSED_BUILDS.get(self.model):
            return "fused" if _FUSED_TOTAL < AUTO_FUSED_LIMIT else "pointwise"
        if self._cache_key is None:
            self._cache_key = cache.key(example)
        variant = self._copy_variant("fused", tapped=False)
        held = cache.built(example, key=self._cache_key, **variant)
        return "fused" if held is not None else "pointwise"

    def _first_forward_on_copy(self, x: torch.Tensor) -> tuple[torch.Tensor, Any] | None:
        """The logits and the target layer's output on ``x`` from the inference copy,
        or None where no copy with the layer tapped exists for such inputs yet.

        The copy an earlier call built for its batched forwards (see
        :meth:`_begin_batched`) gives the same values as the model up to float
        rounding, checked when it was built, in a fraction of the time (fused
        convolutions, no hook).  It then also serves this call's batched
        forwards.  Call :meth:`_begin_batched` after it.
        """
        mode = self._copy_mode(x)
        cache = self._inference
        if mode is None or cache is None or cache.model is not self.model:
            return None
        variant = self._copy_variant(mode, tapped=True)
        if variant["tap"] is None:
            return None
        example = self._layout_example(x)
        # The model cannot change within a call: the batched forwards reuse this key.
        self._cache_key = cache.key(example)
        copy = cache.built(example, key=self._cache_key, **variant)
        if copy is None or not hasattr(copy, "tapped"):  # none, or built without the layer
            return None
        try:
            output, layer_output = copy.tapped(example)
        except RuntimeError:
            cache.reject()  # as a failing batched forward would: the model from now on
            return None
        self._copy_for_call = copy
        return self._logits(output, x), layer_output

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_forward` for batched, hook-free forwards: on the inference copy
        (see :attr:`inference_copy`, after :meth:`_begin_batched`), in
        :attr:`precision`, on a channels-last copy of ``x`` where that works (see
        :attr:`channels_last`).  A copy that fails is dropped for good."""
        model = self._batched_module(x)
        try:
            return self._forward_layout(x, model)
        except RuntimeError:
            if model is self.model:
                raise
            assert self._inference is not None
            self._inference.reject()
            self._batched_model = self.model
            return self._forward_layout(x, self.model)

    def _forward_layout(self, x: torch.Tensor, model: nn.Module) -> torch.Tensor:
        dtype = PRECISIONS[self.precision]
        # A reduced-precision copy carries its casts; the model itself needs autocast.
        autocast = dtype is not None and model is self.model
        with torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=autocast):
            logits = self._forward_layout_exact(x, model)
        return logits if dtype is None else logits.float()

    def _forward_layout_exact(self, x: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Channels-last where the model accepts it; falls back to contiguous once, for good."""
        if not self._channels_last_wanted(x):
            return self._forward(x, model)
        try:
            logits = self._forward(x.contiguous(memory_format=torch.channels_last), model)
        except RuntimeError:
            if self._channels_last_ok:
                raise  # it worked before: a genuine error, not the layout
            logits = self._forward(x, model)  # raises again if the layout was not the cause
            self._channels_last_ok = False
            return logits
        self._channels_last_ok = True
        return logits

    def _resolve_target(self, logits: torch.Tensor, target: Target) -> torch.Tensor | None:
        """Return the class index per sample ``(B,)``, or None for a callable target."""
        return resolve_target(logits, target)

    def _scores(
        self,
        logits: torch.Tensor,
        classes: torch.Tensor | None,
        target: Target,
        *,
        softmax: bool = False,
    ) -> torch.Tensor:
        """Scores ``(N,)``: each row's class logit (or probability), or ``target(logits)``."""
        if classes is None:
            return callable_scores(target, logits)  # type: ignore[arg-type]
        values = class_probabilities(logits) if softmax else logits
        return values.gather(1, classes.view(-1, 1).to(logits.device))[:, 0]

    def _remember(self, logits: torch.Tensor, classes: torch.Tensor | None) -> None:
        self.logits = logits.detach()
        self.classes = None if classes is None else classes.detach()

    def _transform(self, t: torch.Tensor) -> torch.Tensor:
        if self.reshape_transform is not None:
            t = self.reshape_transform(t)
        if t.ndim != 4:
            raise ModelError(
                f"layer {self.layer_name!r} gives a tensor of shape {tuple(t.shape)}; "
                "layer methods need (B, C, h, w) (use reshape_transform for token layers)"
            )
        return t

    def _capture_layer(self, cut_graph: bool) -> dict[str, torch.Tensor]:
        """Hook the target layer; returns the dict the output will be stored in.

        With ``cut_graph`` the layer's output is replaced by a fresh leaf that
        requires grad, so gradients are taken only back to the target layer.
        """
        store: dict[str, torch.Tensor] = {}

        def hook(_m: nn.Module, _inp: Any, out: Any) -> Any:
            first = out[0] if isinstance(out, (tuple, list)) else out
            if not isinstance(first, torch.Tensor):
                raise ModelError(f"layer {self.layer_name!r} does not output a tensor")
            if not cut_graph:
                # A copy: a later in-place op (ReLU(inplace=True), ``out += identity``)
                # would otherwise rewrite the layer's output before it is read.
                store["act"] = first.detach().clone()
                return None
            leaf = first.detach().requires_grad_(True)
            store["act"] = leaf
            # The clone keeps later in-place ops (ReLU(inplace=True)) off the leaf.
            new = leaf.clone()
            if isinstance(out, tuple):
                return (new, *out[1:])
            if isinstance(out, list):
                return [new, *out[1:]]
            return new

        assert self.layer is not None
        if isinstance(self.layer, torch.jit.ScriptModule):
            raise ModelError(f"cannot hook TorchScript layer {self.layer_name!r}")
        self._hook(self.layer, hook)
        return store

    def _unused_layer_error(self) -> ModelError:
        """The error for a forward pass that never reached the hooked layer."""
        current = dict(self.model.named_modules()).get(self.layer_name)
        if current is not None and current is not self.layer:
            return ModelError(
                f"the module named {self.layer_name!r} was replaced after this explainer "
                "was made; make a new explainer for the changed model"
            )
        return ModelError(f"layer {self.layer_name!r} was not used in the forward pass")

    def _layer_gradients(
        self, x: torch.Tensor, target: Target
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward ``x``; return the layer's activations and d(score)/d(activations)."""
        store = self._capture_layer(cut_graph=True)
        with torch.enable_grad():
            logits = self._forward(x)
            classes = self._resolve_target(logits, target)
            self._remember(logits, classes)
            if "act" not in store:
                raise self._unused_layer_error()
            scores = self._scores(logits, classes, target)
            try:
                (grad,) = torch.autograd.grad(scores.sum(), store["act"])
            except RuntimeError as exc:
                raise ModelError(
                    f"the output does not depend on layer {self.layer_name!r}: {exc}"
                ) from exc
        return self._transform(store["act"].detach()), self._transform(grad)
