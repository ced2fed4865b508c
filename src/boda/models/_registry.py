"""Registry of architectures by name: :func:`register`, :func:`create`, :func:`available`.

This registry builds *untrained* architectures.  It is separate from, and
complementary to, the registry of :mod:`boda.nn` (``boda.nn.load_model``,
``boda.nn.ARCHITECTURES``), which loads *weights*: built-in explainable models
shipped with boda and user checkpoints.  :func:`register_nn_architectures`
bridges the two so that a state dict trained on a ``boda.models`` network can
be loaded with ``boda.nn.load_model(path, arch=name)``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

__all__ = [
    "TASKS",
    "ModelSpec",
    "register",
    "unregister",
    "create",
    "available",
    "describe",
    "register_nn_architectures",
]

_Builder = TypeVar("_Builder", bound=Callable[..., nn.Module])

#: Tasks a registered model can have.
TASKS: tuple[str, ...] = ("classification", "segmentation", "features")


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about an architecture.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"resnet50"``.
    builder : callable
        ``builder(**kwargs) -> nn.Module``.
    task : str
        ``"classification"`` (takes ``num_classes``, returns logits),
        ``"segmentation"`` (returns per-pixel logits of the input size) or
        ``"features"`` (returns a dict of feature maps, e.g. an FPN).
    summary : str
        One line: what it is and where it comes from.
    """

    name: str
    builder: Callable[..., nn.Module]
    task: str
    summary: str


_SPECS: dict[str, ModelSpec] = {}


def register(name: str, *, task: str = "classification") -> Callable[[_Builder], _Builder]:
    """Decorator adding a builder function to the registry under ``name``.

    The first line of the builder's docstring becomes the model's summary.

    Parameters
    ----------
    name : str
        Registry name; lower case with hyphens, e.g. ``"vgg16-bn"``.
    task : {"classification", "segmentation", "features"}
        What the model outputs.

    Raises
    ------
    InvalidParameterError
        ``name`` is already registered or ``task`` is unknown.

    Examples
    --------
    >>> from torch import nn
    >>> @register("tiny-mlp")
    ... def tiny_mlp(num_classes: int = 10) -> nn.Module:
    ...     '''A two-layer perceptron for 28x28 inputs.'''
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(),
    ...                          nn.Linear(64, num_classes))
    >>> create("tiny-mlp", num_classes=3)[-1].out_features
    3
    >>> unregister("tiny-mlp")
    """
    if task not in TASKS:
        raise InvalidParameterError(f"task must be one of {TASKS}, got {task!r}")

    def decorate(builder: _Builder) -> _Builder:
        if name in _SPECS:
            raise InvalidParameterError(
                f"model name {name!r} is already registered (by "
                f"{_SPECS[name].builder.__module__}.{_SPECS[name].builder.__name__}); "
                "pick another name"
            )
        doc = inspect.getdoc(builder) or ""
        _SPECS[name] = ModelSpec(name, builder, task, doc.split("\n", 1)[0])
        return builder

    return decorate


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (raises like :func:`create` when unknown)."""
    describe(name)
    del _SPECS[name]


def available(task: str | None = None) -> list[str]:
    """Sorted registry names, optionally only those of one ``task``.

    Examples
    --------
    >>> "resnet50" in available("classification")
    True
    """
    if task is not None and task not in TASKS:
        raise InvalidParameterError(f"task must be one of {TASKS} or None, got {task!r}")
    return sorted(n for n, s in _SPECS.items() if task is None or s.task == task)


def describe(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered name (raises like :func:`create`)."""
    try:
        return _SPECS[name]
    except KeyError:
        raise InvalidParameterError(_unknown_message(name)) from None


def _unknown_message(name: str) -> str:
    msg = f"unknown model {name!r}"
    # Names of boda.nn (CIFAR ResNets, shipped pretrained models) are a different
    # registry; point there instead of leaving the user guessing.
    from boda.nn import ARCHITECTURES, list_models

    elsewhere = ""
    if name in list_models():
        elsewhere = (
            f". {name!r} is a pretrained model of boda.nn: use boda.nn.load_model({name!r})"
        )
    elif name in ARCHITECTURES:
        elsewhere = (
            f". {name!r} is an architecture of boda.nn (CIFAR models): build it with "
            f"boda.nn.ARCHITECTURES[{name!r}](num_classes), or load a checkpoint with "
            f"boda.nn.load_model('weights.pt', arch={name!r})"
        )
    elif isinstance(name, str):
        # "ResNet50", "vgg16_bn", "mobilenet_v1": the spelling differs, not the model
        canon = {n.replace("-", "").replace("_", ""): n for n in _SPECS}
        key = name.lower().replace("-", "").replace("_", "")
        close = [canon[key]] if key in canon else difflib.get_close_matches(name, _SPECS, n=3)
        if close:
            msg += f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return f"{msg}; available: {', '.join(available())}{elsewhere}"


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered architecture ``name`` with freshly initialised weights.

    No pretrained weights are loaded, ever; load your own with
    ``model.load_state_dict(...)`` or :func:`boda.nn.load_model`.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    **kwargs
        Passed to the builder, e.g. ``num_classes=10``, ``mean=..., std=...``.
        ``num_classes=None`` or ``in_channels=None`` means the builder's default.

    Returns
    -------
    torch.nn.Module
        In training mode, on the current default device (build on
        ``torch.device("meta")`` to count parameters without memory).

    Raises
    ------
    InvalidParameterError
        Unknown name (the message lists the available names) or a keyword
        the builder does not take.

    Examples
    --------
    >>> import torch
    >>> net = create("resnet18", num_classes=10).eval()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 10])
    """
    spec = describe(name)
    params = inspect.signature(spec.builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in kwargs if k not in params and not takes_any]
    if unknown:
        hint = ""
        if {"pretrained", "weights"} & set(unknown):
            hint = (
                "; boda.models builds untrained networks only: load weights you have "
                "with model.load_state_dict(torch.load(path, weights_only=True))"
            )
        raise InvalidParameterError(
            f"model {name!r} does not take {unknown}; it takes {list(params)}{hint}"
        )
    for key in ("num_classes", "in_channels"):
        value = kwargs.get(key)
        if value is None:
            kwargs.pop(key, None)  # "not given": the builder's default, not a torch TypeError
            continue
        # numpy integers too (e.g. labels.max() + 1), not bools
        if not whole_number(value) or value < 1:
            raise InvalidParameterError(f"{key} must be a whole number >= 1, got {value!r}")
        kwargs[key] = int(value)
    return spec.builder(**kwargs)


def register_nn_architectures(names: Iterable[str] | None = None) -> list[str]:
    """Make classification models loadable by ``boda.nn.load_model(path, arch=name)``.

    Adds ``name -> lambda n: create(name, num_classes=n)`` to
    :data:`boda.nn.ARCHITECTURES` for each name (default: every classification
    model of this registry).  Names boda.nn already knows are left untouched.

    Parameters
    ----------
    names : str or iterable of str, optional
        One name or several; default every classification model.

    Returns
    -------
    list of str
        The names that were added.
    """
    from boda.nn import ARCHITECTURES, register_architecture

    if isinstance(names, str):  # one name, not its letters
        names = [names]
    chosen = available("classification") if names is None else list(names)
    added = []
    for name in chosen:
        spec = describe(name)
        if spec.task != "classification":
            raise InvalidParameterError(
                f"{name!r} is a {spec.task} model; boda.nn.load_model takes "
                "classification architectures (builder(num_classes))"
            )
        if name in ARCHITECTURES:
            continue
        register_architecture(name, _nn_builder(name))
        added.append(name)
    return added


def _nn_builder(name: str) -> Callable[..., nn.Module]:
    # mean=/std=: boda.nn.load_model passes them for a checkpoint that holds the
    # model's InputNormalization buffers (a model created with them).
    def build(num_classes: int, **options: Any) -> nn.Module:
        return create(name, num_classes=num_classes, **options)

    return build
