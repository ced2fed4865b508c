"""One call from a numpy image and a model to maps at the image's size."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from boda.core.image import as_float_image, to_gray
from boda.core.numbers import whole_number
from boda.errors import BodaError, InvalidParameterError, ModelError
from boda.explain._base import Explainer, Target, _as_model_input
from boda.explain._cam import CAM, GradCAM, GradCAMPlusPlus, ScoreCAM
from boda.explain._gradients import GuidedBackprop, GuidedGradCAM, Saliency
from boda.explain._occlusion import Occlusion
from boda.nn import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LoadedModel,
    image_to_tensor,
    input_spec,
    load_model,
)

__all__ = ["METHODS", "make_explainer", "explain_image", "ImageExplanation", "map_stats"]


def _smoothgrad(model: nn.Module, layer=None, **kw) -> Saliency:
    kw.setdefault("samples", 16)
    return Saliency(model, **kw)


def _no_layer(cls: type[Explainer]) -> Callable[..., Explainer]:
    def make(model: nn.Module, layer=None, **kw) -> Explainer:
        return cls(model, **kw)

    return make


#: Method name -> factory ``f(model, layer, **options)``.
METHODS: dict[str, Callable[..., Explainer]] = {
    "cam": CAM,
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "scorecam": ScoreCAM,
    "saliency": _no_layer(Saliency),
    "smoothgrad": _smoothgrad,
    "guided": _no_layer(GuidedBackprop),
    "guided-gradcam": GuidedGradCAM,
    "occlusion": _no_layer(Occlusion),
}

#: Methods that read no layer (a ``layer`` given for them alone is a mistake).
LAYER_FREE_METHODS = frozenset({"saliency", "smoothgrad", "guided", "occlusion"})


def make_explainer(
    method: str, model: nn.Module, layer: str | nn.Module | None = None, **options
) -> Explainer:
    """Build the explainer called ``method`` (a key of :data:`METHODS`)."""
    try:
        factory = METHODS[method.lower()]
    except KeyError:
        raise InvalidParameterError(
            f"unknown method {method!r}; choose from {sorted(METHODS)}"
        ) from None
    return factory(model, layer, **options)


def map_stats(m: np.ndarray) -> dict:
    """Summary of a ``[0, 1]`` map: mean, peak location ``(x, y)``, share of pixels above 0.5."""
    arr = np.asarray(m, dtype=np.float64)
    y, x = np.unravel_index(int(np.argmax(arr)), arr.shape)
    return {
        "mean": float(arr.mean()),
        "max": float(arr.max()),
        "peak_xy": [int(x), int(y)],
        "area_above_half": float((arr > 0.5).mean()),
    }


@dataclass
class ImageExplanation:
    """Result of :func:`explain_image`.

    Attributes
    ----------
    image : numpy.ndarray
        The input image (float32, original size).
    maps : dict of str to numpy.ndarray
        Method -> ``(H, W)`` map in ``[0, 1]`` at the image's size.
    target : int or None
        The explained class (None for a callable target).
    top : list of dict
        Top predictions: ``{"index", "name", "probability"}``.
    model : str
        Model name.
    layer : str or None
        Layer used by the layer-based methods.
    stats : dict of str to dict
        Method -> :func:`map_stats` of its map.
    target_name : str or None
        Class name of ``target``.
    model_input : torch.Tensor or None
        The ``(1, C, h, w)`` tensor the model was given: the image resized to
        the model's input size, in its channels, normalised, on its device and
        in its dtype.
        With :attr:`input_maps` it is what :mod:`boda.explain.metrics` takes
        (deletion/insertion curves, Average Drop).
    input_maps : dict of str to numpy.ndarray
        Method -> ``(h, w)`` map in ``[0, 1]`` at the model's input size, as
        the explainer made it (:attr:`maps` are these, resized to the image).

    Examples
    --------
    Faithfulness of a map, on the input it explains:

    >>> import numpy as np
    >>> import torch
    >>> from boda.explain.metrics import deletion_curve
    >>> from boda.nn import load_model
    >>> lm = load_model("resnet20-cifar10")
    >>> res = explain_image(np.random.default_rng(0).random((40, 40, 3)), lm, ["gradcam"])
    >>> res.model_input.shape, res.input_maps["gradcam"].shape
    (torch.Size([1, 3, 32, 32]), (32, 32))
    >>> heat = torch.from_numpy(res.input_maps["gradcam"])[None]
    >>> curve = deletion_curve(lm.model, res.model_input, heat, res.target)
    """

    image: np.ndarray
    maps: dict[str, np.ndarray]
    target: int | None
    top: list[dict]
    model: str
    layer: str | None = None
    stats: dict[str, dict] = field(default_factory=dict)
    target_name: str | None = None
    model_input: torch.Tensor | None = field(default=None, repr=False)
    input_maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        # The image and maps would print as walls of numbers: the decision comes first.
        height, width = self.image.shape[:2]
        target = "callable" if self.target is None else f"{self.target}"
        if self.target_name:
            target += f" ({self.target_name})"
        top = ", ".join(f"{t['name']} {t['probability']:.3f}" for t in self.top[:3])
        return (
            f"ImageExplanation(model={self.model!r}, target={target}, top=[{top}], "
            f"maps={list(self.maps)}, layer={self.layer!r}, image {width}x{height})"
        )


@contextlib.contextmanager
def _model_failures(lm: LoadedModel, x: torch.Tensor) -> Iterator[None]:
    """A model that fails on the input (torch's RuntimeError: wrong channels, a
    dtype clash, a shape its layers refuse) as a :class:`ModelError` that says so."""
    try:
        yield
    except RuntimeError as exc:
        if isinstance(exc, BodaError):
            raise
        raise ModelError(
            f"{lm.name} failed on a {tuple(x.shape)} {str(x.dtype).replace('torch.', '')} "
            f"input: {str(exc).strip().splitlines()[0]}"
        ) from exc


def _model_input(
    img: np.ndarray, lm: LoadedModel, size: tuple[int, int], normalize_input: bool
) -> torch.Tensor:
    """``img`` as the model's input: its channels (gray for a 1-channel model),
    its statistics, its device and its floating-point type (a float16 model gets
    float16)."""
    channels = input_spec(lm.model)[0]
    channels = channels or 3
    if channels not in (1, 3):
        raise InvalidParameterError(
            f"{lm.name} takes {channels}-channel inputs, but images have 1 or 3; call an "
            f"explainer (boda.explain.make_explainer) on your own (B, {channels}, H, W) tensor"
        )
    mean, std = lm.mean or IMAGENET_MEAN, lm.std or IMAGENET_STD
    if channels == 1:
        img = to_gray(img)
        # A gray model given RGB statistics (ImageNet's by default): their mean.
        mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
    if normalize_input:
        x = image_to_tensor(img, size=size, mean=mean, std=std)
    else:
        x = image_to_tensor(img, size=size)
    return _as_model_input(lm.model, x)


def explain_image(
    image: np.ndarray,
    model: str | Path | LoadedModel = "resnet20-cifar10",
    methods: Sequence[str] = ("gradcam",),
    *,
    target: Target = None,
    layer: str | None = None,
    size: tuple[int, int] | None = None,
    normalize_input: bool = True,
    top: int = 5,
    options: dict[str, dict] | None = None,
) -> ImageExplanation:
    """Explain a model's decision on one numpy image with several methods.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB image (see :mod:`boda.core.image`).
    model : str, path or LoadedModel
        A built-in name (e.g. ``"resnet20-cifar10"``) or a
        :class:`boda.nn.LoadedModel`.  A path is passed to
        :func:`boda.nn.load_model` without ``trust_code`` (nor ``arch``), so the
        path of a TorchScript file is refused: loading one runs code stored in
        the file, and it needs ``trust_code=True`` (see ``docs/security.md``).
        For a TorchScript file you trust, pass
        ``load_model(path, trust_code=True)``; for a state dict,
        ``load_model(path, arch=...)``.
    methods : sequence of str
        Keys of :data:`METHODS`, e.g. ``("gradcam", "scorecam")``.
    target : int or str, optional
        Class to explain: an index or one of the model's class names (any case, as
        ``boda explain --target cat``); default the predicted one.
        ``result.target`` is the class explained (None only for a callable target).
    layer : str, optional
        Target layer; default the model's registered one, else a guess.
    size : (int, int) or int, optional
        Input size for a user model; default the image's.  A built-in model
        takes its own size (giving another raises).
    normalize_input : bool
        Normalise with the model's mean/std (ImageNet's for user models).
    top : int
        Number of top predictions to report.
    options : dict, optional
        Per-method keyword arguments, e.g. ``{"scorecam": {"top_k": 32}}``.

    Returns
    -------
    ImageExplanation

    Raises
    ------
    ModelError
        ``model`` is an unknown name, a path of a TorchScript file (it needs
        ``trust_code=True``, see above) or of a state dict (it needs ``arch``),
        or the model fails on the image.

    Examples
    --------
    >>> import numpy as np
    >>> res = explain_image(np.random.default_rng(0).random((40, 40, 3)), methods=["cam"])
    >>> res.maps["cam"].shape
    (40, 40)
    """
    if not whole_number(top) or top < 0:  # -1 was a raw torch error from topk
        raise InvalidParameterError(f"top must be a whole number >= 0, got {top!r}")
    img = as_float_image(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    lm = model if isinstance(model, LoadedModel) else load_model(model)
    if isinstance(target, str):  # a class name, as the CLI takes it
        target = lm.class_index(target)
    if isinstance(size, int):
        size = (size, size)
    if size is not None and lm.input_size is not None and tuple(size) != tuple(lm.input_size):
        raise InvalidParameterError(
            f"{lm.name} takes {lm.input_size[0]}x{lm.input_size[1]} inputs; a size of "
            f"{size[0]}x{size[1]} would show it images unlike its training data "
            "(leave the size unset)"
        )
    in_size = size or lm.input_size or img.shape[:2]
    x = _model_input(img, lm, in_size, normalize_input)
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if not methods:
        raise InvalidParameterError(f"no method given; choose from {sorted(METHODS)}")
    if layer is not None and {m.lower() for m in methods} <= LAYER_FREE_METHODS:
        raise InvalidParameterError(
            f"a layer was given, but {', '.join(methods)} read no layer; drop it, or add "
            "a layer method (cam, gradcam, gradcam++, scorecam, guided-gradcam)"
        )
    layer = layer or lm.target_layer
    # Method names are matched in any case (make_explainer's rule), options' keys too.
    options = {k.lower(): v for k, v in (options or {}).items()}
    maps: dict[str, np.ndarray] = {}
    input_maps: dict[str, np.ndarray] = {}
    used_layer = None
    logits = None
    unknown_options = sorted(set(options) - {m.lower() for m in methods})
    if unknown_options:
        raise InvalidParameterError(
            f"options given for {unknown_options}, which are not among the methods {list(methods)}"
        )
    explained = None
    for method in methods:
        with make_explainer(method, lm.model, layer, **options.get(method.lower(), {})) as ex:
            with _model_failures(lm, x):
                m = ex(x, target)
        used_layer = used_layer or ex.layer_name
        logits = ex.logits if logits is None else logits
        full = F.interpolate(m[:, None], size=img.shape[:2], mode="bilinear", align_corners=False)
        maps[method] = full[0, 0].clamp(0, 1).cpu().numpy()
        input_maps[method] = m[0].detach().float().clamp(0, 1).cpu().numpy()
        if ex.classes is not None:
            explained = int(ex.classes[0])  # every method explains the same class
            if target is None:
                target = explained
    if logits is None:
        with torch.no_grad(), _model_failures(lm, x):
            from boda.explain._base import model_logits

            logits = model_logits(lm.model(x))
    from boda.explain._base import class_probabilities

    probs = class_probabilities(logits.float())[0]
    k = min(int(top), probs.numel())
    vals, idx = probs.topk(k)
    top_list = [
        {"index": int(i), "name": lm.class_name(int(i)), "probability": float(v)}
        for v, i in zip(vals, idx, strict=True)
    ]
    if explained is None and target is None:
        explained = top_list[0]["index"]
    return ImageExplanation(
        image=img,
        maps=maps,
        target=explained,
        top=top_list,
        model=lm.name,
        layer=used_layer,
        stats={k: map_stats(v) for k, v in maps.items()},
        target_name=None if explained is None else lm.class_name(explained),
        model_input=x,
        input_maps=input_maps,
    )
