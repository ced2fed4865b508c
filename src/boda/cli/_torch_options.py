"""Options and loading shared by the commands that run a PyTorch model.

``--model NAME|FILE``, ``--arch``, ``--trust-model-code``, ``--layer``,
``--size``, ``--normalize/--no-normalize`` and ``--threads`` mean the same in
every such command (``boda explain``, ``boda class-model``, ``boda patches``,
``boda similar``): each builder here returns the ``typer.Option`` to use as a
parameter's default, and :func:`load_cli_model` / :func:`model_feed` turn the
values into a loaded model and the way to feed it.  Nothing here imports
torch at import time (``boda --help`` stays fast).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from boda.core.lazy import MAX_CPU_THREADS

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from torch import nn

    from boda.nn import LoadedModel

__all__ = [
    "ModelFeed",
    "arch_option",
    "check_cli_model",
    "check_layer_name",
    "class_index",
    "layer_option",
    "load_cli_model",
    "model_failures",
    "model_feed",
    "model_option",
    "normalize_option",
    "probe_layer",
    "size_option",
    "threads_option",
    "to_model_input",
    "to_model_size",
    "trust_model_code_option",
]


def model_option(default: str = "resnet20-cifar10") -> Any:
    """``--model/-m NAME|FILE``: a built-in model, a TorchScript file or a state dict."""
    return typer.Option(
        default,
        "--model",
        "-m",
        metavar="NAME|FILE",
        help="Built-in model (resnet20-cifar10, resnet56-cifar10, shapes-cnn), a "
        "TorchScript file (with --trust-model-code), or a state dict with --arch.",
    )


def arch_option() -> Any:
    """``--arch ARCH``: the architecture of a state-dict ``--model`` file."""
    return typer.Option(
        None, "--arch", metavar="ARCH",
        help="Architecture of a state-dict file (resnet20, resnet32, resnet44, resnet56, "
        "shapes-cnn).",
    )  # fmt: skip


def trust_model_code_option() -> Any:
    """``--trust-model-code``: allow loading a TorchScript file (it runs its own code)."""
    return typer.Option(
        False,
        "--trust-model-code",
        help="Load a TorchScript --model file. Loading one runs code stored in it (it can "
        "read and write your files): use only files whose origin you trust.",
    )


def layer_option(
    help: str = "Layer name (default: the model's last conv stage).", *, required: bool = False
) -> Any:
    """``--layer NAME``: a layer of the model, by its ``named_modules()`` name."""
    return typer.Option(... if required else None, "--layer", metavar="NAME", help=help)


#: Most ``--size`` taken: far above the sizes classifiers are trained at (32 to 600 px),
#: and below the sizes whose one input tensor is itself an allocation the machine refuses
#: (``--size 100000``: 3 x 10^10 floats, 120 GB, a traceback) or swaps on.
MAX_SIZE = 4096


def size_option(
    help: str = "Resize images to PX x PX for a user model (built-in models take their "
    "own size).",
) -> Any:
    """``--size PX``: the input size of a user model."""
    return typer.Option(None, "--size", min=1, max=MAX_SIZE, metavar="PX", help=help)


def normalize_option() -> Any:
    """``--normalize/--no-normalize``: mean/std normalisation of the model's inputs."""
    return typer.Option(
        True,
        "--normalize/--no-normalize",
        help="Normalise inputs with the model's mean/std (ImageNet's for user models).",
    )


def threads_option() -> Any:
    """``--threads N``: torch's CPU threads for the command."""
    return typer.Option(
        None, "--threads", min=1, max=MAX_CPU_THREADS, metavar="N", help="Torch CPU threads."
    )


def check_cli_model(model: str, arch: str | None, trust_model_code: bool = False) -> None:
    """Before any work: ``--model`` names a built-in model or a model file,
    ``--arch`` goes with a state-dict file and ``--trust-model-code`` with a
    TorchScript file.
    Usage errors (exit 2) otherwise."""
    from boda.errors import InvalidParameterError
    from boda.nn import ARCHITECTURES, list_models
    from boda.nn._models import _is_torchscript

    if model in list_models():
        if arch is not None:
            raise InvalidParameterError(
                f"--arch is for state-dict files; {model} is a built-in model (drop --arch)"
            )
        if trust_model_code:
            raise InvalidParameterError(
                f"--trust-model-code is for TorchScript files; {model} is a built-in model, "
                "which runs no code from a file (drop --trust-model-code)"
            )
        return
    if arch is not None and arch not in ARCHITECTURES:  # an option value: said before loading
        raise InvalidParameterError(
            f"--arch {arch!r} is not an architecture boda knows; choose one of "
            f"{', '.join(sorted(ARCHITECTURES))}"
        )
    if not Path(model).exists():
        raise InvalidParameterError(
            f"--model {model!r}: no such file, and not a built-in model "
            f"({', '.join(list_models())})"
        )
    if Path(model).is_dir():
        raise InvalidParameterError(f"--model {model!r} is a folder; give a model file")
    if not Path(model).is_file():  # a named pipe would hang the TorchScript check below
        raise InvalidParameterError(
            f"--model {model!r} is not a regular file (a device or a pipe); give a model file"
        )
    scripted = _is_torchscript(Path(model))
    if arch is not None and scripted:
        raise InvalidParameterError(
            f"--arch is for state-dict files; {model!r} is a TorchScript file, which holds "
            "its own architecture (drop --arch)"
        )
    if trust_model_code and not scripted:
        raise InvalidParameterError(
            f"--trust-model-code is for TorchScript files; {model!r} is not one (a state "
            "dict runs no code: give its architecture with --arch, and drop --trust-model-code)"
        )


def check_layer_name(layer: str | None) -> None:
    """Before any work: a ``--layer`` given names a layer (an empty name would
    silently mean the default layer).  A usage error (exit 2) otherwise."""
    from boda.errors import InvalidParameterError

    if layer is not None and not layer.strip():
        raise InvalidParameterError(
            f"--layer {layer!r} is empty; give a layer name (model.named_modules() lists "
            "them), or leave --layer out for the model's last conv stage"
        )


def class_index(target: str, lm: LoadedModel, option: str = "--target") -> int:
    """``target`` as a class index of ``lm`` (:meth:`boda.nn.LoadedModel.class_index`),
    its errors naming ``option``."""
    return lm.class_index(target, option)


def load_cli_model(model: str, arch: str | None, trust_model_code: bool) -> LoadedModel:
    """The model ``--model`` names: a built-in one, or a file (state dict with
    ``--arch``, TorchScript with ``--trust-model-code``), checked first by
    :func:`check_cli_model`."""
    from boda.nn import list_models, load_model

    check_cli_model(model, arch, trust_model_code)
    if model in list_models():
        return load_model(model)
    return load_model(model, arch=arch, trust_code=trust_model_code)


@contextlib.contextmanager
def model_failures(name: str) -> Iterator[None]:
    """A model that fails on its input (torch's RuntimeError: a size its layers
    refuse, a dtype clash) as a :class:`boda.errors.ModelError` in one line,
    instead of a traceback."""
    from boda.errors import BodaError, ModelError

    try:
        yield
    except RuntimeError as exc:
        if isinstance(exc, BodaError):
            raise
        raise ModelError(f"{name} failed: {str(exc).strip().splitlines()[0]}") from exc


@dataclass(frozen=True)
class ModelFeed:
    """How images go into a model: ``size`` ``(H, W)``, ``mean``/``std`` (None: no
    normalisation) and ``channels`` (1 for a gray model, else 3)."""

    size: tuple[int, int]
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    channels: int


def model_feed(
    lm: LoadedModel, size: int | None, normalize: bool, *, fallback: tuple[int, int] | None = None
) -> ModelFeed:
    """The :class:`ModelFeed` of ``lm`` for ``--size`` and ``--normalize``.

    A built-in model takes its own size (another ``--size`` is refused, as
    :func:`boda.explain.explain_image` does); a user model takes ``--size``, or
    ``fallback`` when given (e.g. the size of a start image), else it is a
    usage error that says to give ``--size``.  Statistics: the model's, else
    ImageNet's; a gray model gets their channel mean.
    """
    from boda.errors import InvalidParameterError
    from boda.nn import IMAGENET_MEAN, IMAGENET_STD, input_spec

    if size is not None and lm.input_size is not None and (size, size) != tuple(lm.input_size):
        h, w = lm.input_size
        raise InvalidParameterError(
            f"--size {size}: {lm.name} takes {h}x{w} inputs, and other sizes would show it "
            "images unlike its training data (drop --size)"
        )
    if size is not None:
        in_size = (int(size), int(size))
    elif lm.input_size is not None:
        in_size = (int(lm.input_size[0]), int(lm.input_size[1]))
    elif fallback is not None:
        in_size = (int(fallback[0]), int(fallback[1]))
    else:
        raise InvalidParameterError(
            f"{lm.name} does not say what input size it takes; give --size PX "
            "(e.g. --size 224 for an ImageNet model)"
        )
    channels = input_spec(lm.model)[0] or 3
    if channels not in (1, 3):
        raise InvalidParameterError(
            f"{lm.name} takes {channels}-channel inputs, but images have 1 or 3; use the "
            "Python API (boda.explain) with your own (B, C, H, W) tensors"
        )
    mean: tuple[float, ...] | None = tuple(lm.mean or IMAGENET_MEAN)
    std: tuple[float, ...] | None = tuple(lm.std or IMAGENET_STD)
    if channels == 1:  # a gray model given RGB statistics (ImageNet's by default): their mean
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    if not normalize:
        mean = std = None
    return ModelFeed(in_size, mean, std, channels)


def to_model_size(image: np.ndarray, feed: ModelFeed) -> np.ndarray:
    """``image`` (float32 RGB) resized to the model's input size as the feature
    functions of :mod:`boda.explain` resize it (bilinear, antialiased): they
    leave an image of that size as it is, so a folder can be read one file at a
    time and kept at the model's size, with the same results."""
    from boda.nn import image_to_tensor

    t = image_to_tensor(image, size=feed.size)
    return t[0].permute(1, 2, 0).numpy().copy()


def to_model_input(image: np.ndarray, feed: ModelFeed) -> torch.Tensor:
    """``image`` as a ``(1, C, H, W)`` model input: gray for a gray model, resized,
    normalised."""
    from boda.core.image import to_gray
    from boda.nn import image_to_tensor

    if feed.channels == 1:
        image = to_gray(image)
    return image_to_tensor(image, size=feed.size, mean=feed.mean, std=feed.std)


def probe_layer(model: nn.Module, layer: str | None, feed: ModelFeed) -> tuple[str, tuple]:
    """``(name, output shape)`` of ``layer`` (None: the last conv stage) on one
    input of the model's size: a bad ``--layer`` (with the closest names) or a
    layer the forward pass never uses is a usage error found before any work."""
    import torch

    from boda.errors import BodaError, InvalidParameterError
    from boda.explain import resolve_layer

    if isinstance(model, torch.jit.ScriptModule):
        from boda.errors import ModelError

        raise ModelError(
            "reading a layer needs a hook on it, which TorchScript models do not allow; load "
            "the state dict with its architecture instead (--model FILE --arch ARCH)"
        )
    try:
        name, module = resolve_layer(model, layer)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"--{exc}" if str(exc).startswith("layer ")
                                    else f"--layer: {exc}") from None
    shapes: list[tuple] = []

    def hook(_m: Any, _i: Any, out: Any) -> None:
        first = out[0] if isinstance(out, (tuple, list)) else out
        if isinstance(first, torch.Tensor) and not shapes:
            shapes.append(tuple(first.shape))

    handle = module.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            model(torch.zeros(1, feed.channels, *feed.size))
    except BodaError:
        raise
    except RuntimeError as exc:
        from boda.errors import ModelError

        raise ModelError(
            f"the model failed on a (1, {feed.channels}, {feed.size[0]}, {feed.size[1]}) "
            f"input: {str(exc).strip().splitlines()[0]}"
        ) from exc
    finally:
        handle.remove()
    if not shapes:
        raise InvalidParameterError(
            f"--layer {name}: the layer is not used in the model's forward pass; choose "
            "another"
        )
    return name, shapes[0]


def max_side_option() -> Any:
    """``--max-side PX`` of the commands that read a folder for a model."""
    return typer.Option(
        None, "--max-side", min=1, metavar="PX",
        help="Decode each file at most PX on its longer side before the resize to the "
        "model's size (JPEG draft decoding: many times faster on large photos; the model's "
        "input changes a little). Default: full decoding, as the Python functions do.",
    )  # fmt: skip
