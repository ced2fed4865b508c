"""Loading models: built-in names, TorchScript files, or state dicts plus an architecture.

A checkpoint is untrusted input, so state dicts are always read with
``torch.load(..., weights_only=True)`` (no arbitrary unpickling), and their
shapes are checked against the architecture (built on the ``meta`` device,
which allocates nothing) before the real model is built.  A TorchScript archive
is a program, not data: ``torch.jit.load`` runs code stored in the file while
it loads (``__setstate__``), and that code can call any registered operator,
file I/O included.  TorchScript files are therefore refused unless the caller
says it trusts them (``trust_code=True``, ``boda explain --trust-model-code``).
Built-in models ship their weights inside the package and are loaded with
:mod:`importlib.resources`; nothing is ever downloaded.
"""

from __future__ import annotations

import inspect
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError, ModelError
from boda.nn._convert import IMAGENET_MEAN, IMAGENET_STD
from boda.nn._resnet_cifar import resnet20, resnet32, resnet44, resnet56
from boda.nn._shapes_cnn import SHAPE_CLASSES, shapes_cnn

__all__ = [
    "CIFAR10_CLASSES",
    "ModelInfo",
    "LoadedModel",
    "ARCHITECTURES",
    "register_architecture",
    "register_model",
    "list_models",
    "model_info",
    "load_model",
    "load_state_dict",
]

#: CIFAR-10 class names, in label order.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

#: Architecture name -> builder ``f(num_classes) -> nn.Module``.
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet44": resnet44,
    "resnet56": resnet56,
    "shapes-cnn": shapes_cnn,
}


@dataclass(frozen=True)
class ModelInfo:
    """What boda knows about a built-in model.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"resnet20-cifar10"``.
    arch : str
        Key in :data:`ARCHITECTURES`.
    weights : str
        File name under ``boda/data/models``.
    classes : tuple of str
        Class names in output order.
    input_size : (int, int)
        ``(H, W)`` the model was trained on.
    mean, std : tuple of float
        Input normalisation the model expects (on ``[0, 1]`` RGB values).
    target_layer : str
        Default layer for CAM-style explanations.
    reference : str
        Where the weights come from.
    """

    name: str
    arch: str
    weights: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    target_layer: str | None = None
    reference: str = ""


@dataclass
class LoadedModel:
    """A model in eval mode plus how to feed it.

    ``classes``, ``input_size``, ``mean``, ``std`` and ``target_layer`` are
    ``None`` when unknown (a user checkpoint without that information).
    """

    model: nn.Module
    name: str
    classes: tuple[str, ...] | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    target_layer: str | None = None
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        # The module's repr is a page per layer: name, size and feeding come first.
        parameters = sum(p.numel() for p in self.model.parameters())
        classes = "unknown" if self.classes is None else f"{len(self.classes)}"
        if self.classes:
            shown = ", ".join(self.classes[:3]) + (", ..." if len(self.classes) > 3 else "")
            classes += f" ({shown})"
        return (
            f"LoadedModel(name={self.name!r}, {type(self.model).__name__} with "
            f"{parameters / 1e6:.3g} M parameters, classes={classes}, "
            f"input_size={self.input_size}, target_layer={self.target_layer!r})"
        )

    def class_name(self, index: int) -> str:
        """Name of class ``index`` (``"class <index>"`` when names are unknown)."""
        if self.classes is not None and 0 <= index < len(self.classes):
            return self.classes[index]
        return f"class {index}"

    def class_index(self, target: str | int, option: str = "target") -> int:
        """``target`` as a class index: a whole number in range (a numeric string
        too), or one of the class names (any case).

        Raises
        ------
        InvalidParameterError
            Out of range, or no such class name; the message names ``option`` and
            the classes to choose from.

        Examples
        --------
        >>> from boda.nn import load_model
        >>> load_model("resnet20-cifar10").class_index("Cat")
        3
        """
        text = str(target).strip()
        classes = self.classes
        if re.fullmatch(r"[+-]?\d+", text):
            index = int(text)
            if index < 0 or (classes is not None and index >= len(classes)):
                known = "" if classes is None else (
                    f": {self.name} has {len(classes)} classes, 0 to {len(classes) - 1}")
                raise InvalidParameterError(f"{option} {index} is out of range{known}")
            return index
        if classes is None:
            raise InvalidParameterError(
                f"{option} {target!r}: {self.name} has no class names; give a class index"
            )
        lowered = [c.lower() for c in classes]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        raise InvalidParameterError(
            f"{option} {target!r} is not a class of {self.name}; give an index or one of "
            f"{', '.join(classes)}"
        )


_REGISTRY: dict[str, ModelInfo] = {}


def register_architecture(name: str, builder: Callable[[int], nn.Module]) -> None:
    """Make ``builder(num_classes)`` loadable as ``load_model(path, arch=name)``.

    A builder that also takes ``mean=`` and ``std=`` gets them (placeholders of the
    right length, the checkpoint's values are loaded after) for a checkpoint that
    holds ``normalize.mean`` and ``normalize.std``.
    """
    if not callable(builder):
        raise InvalidParameterError(f"builder for architecture {name!r} must be callable")
    ARCHITECTURES[name] = builder


def register_model(info: ModelInfo) -> None:
    """Add a built-in model (weights inside ``boda/data/models``) to the registry."""
    if info.arch not in ARCHITECTURES:
        raise InvalidParameterError(
            f"unknown architecture {info.arch!r}; known: {sorted(ARCHITECTURES)}"
        )
    _REGISTRY[info.name] = info


def list_models() -> list[str]:
    """Names of the built-in models, e.g. ``['resnet20-cifar10', 'resnet56-cifar10']``."""
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    """Return the :class:`ModelInfo` of a built-in model."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; built-in models are {list_models()}, "
            "or pass the path of a TorchScript file or a state dict (with arch=...)"
        ) from None


_CIFAR_REF = "akamaster/pytorch_resnet_cifar10 (BSD-2), see data/models/LICENSE-resnet-cifar10.txt"
for _name, _arch, _file in (
    ("resnet20-cifar10", "resnet20", "resnet20-cifar10.th"),
    ("resnet56-cifar10", "resnet56", "resnet56-cifar10.th"),
):
    register_model(
        ModelInfo(
            name=_name,
            arch=_arch,
            weights=_file,
            classes=CIFAR10_CLASSES,
            input_size=(32, 32),
            target_layer="layer3",
            reference=_CIFAR_REF,
        )
    )


register_model(
    ModelInfo(
        name="shapes-cnn",
        arch="shapes-cnn",
        weights="shapes-cnn.pt",
        classes=SHAPE_CLASSES,
        input_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="features",
        reference="boda.explain.train_shapes_cnn() (seed 0), BSD-3 like boda",
    )
)


def _unwrap_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    # Common checkpoint layouts: the state dict itself, or wrapped in a dict
    # next to optimizer state / metrics.
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ModelError(f"{source} does not hold a state dict (a mapping of names to tensors)")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(obj):
        bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)][:3]
        raise ModelError(f"{source}: entries {bad} are not tensors; expected a plain state dict")
    # Meta tensors hold no data; sparse and quantized ones are not weights a float model
    # copies (torch's refusal came as a multi-line traceback text).
    odd = [
        f"{k} ({'meta' if v.is_meta else 'quantized' if v.is_quantized else v.layout})"
        for k, v in tensors.items()
        if v.is_meta or v.is_quantized or v.layout != torch.strided
    ]
    if odd:
        raise ModelError(
            f"{source}: tensors {', '.join(odd[:3])}{' ...' if len(odd) > 3 else ''} hold no "
            "plain dense values (meta tensors hold none at all); save the state dict of a "
            "model with dense float weights (sparse: .to_dense(), quantized: .dequantize())"
        )
    # nn.DataParallel prefixes every key with "module.", torch.compile with
    # "_orig_mod." (either may wrap the other).
    for prefix in ("module.", "_orig_mod.", "module."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely (``weights_only=True``) from a checkpoint file.

    Accepts a bare state dict or one stored under ``"state_dict"``,
    ``"model_state_dict"`` or ``"model"``; strips the ``"module."`` prefix of
    ``nn.DataParallel`` and the ``"_orig_mod."`` one of ``torch.compile``.  Both
    ``torch.save`` formats are read (the zip archive and the pickle of PyTorch
    before 1.6).

    Raises
    ------
    ModelError
        Missing file, a file ``torch.load`` refuses (e.g. one that needs
        arbitrary unpickling), or content that is not a state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file {str(p)!r} does not exist")
    with p.open("rb") as f:
        # torch.save writes a zip archive (a pickle, starting 0x80, before torch
        # 1.6); anything else would get torch's advice to retry unsafely.
        is_zip = zipfile.is_zipfile(f)
        f.seek(0)  # is_zipfile reads from the end of the file
        if not is_zip and f.read(1) != b"\x80":
            raise ModelError(
                f"{str(p)!r} is not a PyTorch checkpoint or TorchScript file "
                "(neither a torch.save zip archive nor a pickle; a truncated download of "
                "one? Fetch it again)"
            )
        if is_zip:
            _check_crcs(f, p)
        f.seek(0)
        return _read_state_dict(f, repr(str(p)))


#: How much a checkpoint's zip records may hold beyond the file's own size: at most
#: this many times the file, or the file plus the slack (for small files).
_MAX_EXPANSION = 4
_EXPANSION_SLACK = 64 * 1024**2


def _check_crcs(f, path: Path) -> None:
    """Raise if a record of the checkpoint's zip archive fails its CRC-32:
    ``torch.load`` does not check them, so flipped bytes in a tensor would load
    as wrong weights without a word (one read of the file)."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(f) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
            # torch.save stores its records uncompressed, but torch.load inflates deflated
            # ones too: a zip bomb of a few hundred kB would load hundreds of MB (and
            # testzip below would inflate it all first).  Weights compress little.
            if expanded > max(_MAX_EXPANSION * size, size + _EXPANSION_SLACK):
                raise ModelError(
                    f"{str(path)!r}: its records would expand to {expanded / 1e6:.4g} MB from "
                    f"a file of {size / 1e6:.4g} MB, which no checkpoint does (torch.save "
                    "stores them uncompressed); a zip bomb? Save the state dict again"
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        bad, reason = None, str(exc)
    else:
        reason = None
    if bad is not None or reason is not None:
        what = f"its record {bad!r} fails its CRC check" if bad else reason
        raise ModelError(
            f"{str(path)!r} is a damaged checkpoint ({what}): corrupted in a copy or "
            "download? Save or fetch it again"
        )


def _read_state_dict(f, source: str) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(f, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises pickle/runtime errors of many kinds
        text = str(exc).strip()
        # A damaged checkpoint can give bare texts such as "101" or "".
        reason = text if any(c.isalpha() for c in text) else "not a PyTorch checkpoint"
        if "weights_only" in text or "Unsupported global" in text:
            # A pickled object (a whole model, custom classes): torch's text goes on
            # to advise loading it unsafely, which boda never does.
            reason = (
                "it holds pickled Python objects (e.g. a whole model saved with "
                "torch.save(model)), which could run code; save model.state_dict() "
                "or a TorchScript file (torch.jit.save) instead"
            )
        raise ModelError(
            f"cannot load {source} with torch.load(weights_only=True) "
            f"({type(exc).__name__}: {reason}). "
            "Only plain state dicts are accepted (and TorchScript files with trust_code=True)"
        ) from exc
    return _unwrap_state_dict(obj, source)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # a damaged central directory
        raise ModelError(
            f"{str(path)!r} is a damaged zip archive ({exc}): truncated or corrupted in a "
            "copy or download? Save or fetch the checkpoint again"
        ) from None
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _builder(arch: str) -> Callable[[int], nn.Module]:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ModelError(
            f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)} "
            "(add one with boda.nn.register_architecture)"
        ) from None


def _build(arch: str, num_classes: int, **options: object) -> nn.Module:
    builder = _builder(arch)
    # The caller's random stream is theirs: initialising weights that are about
    # to be overwritten must not consume it.
    try:
        with torch.random.fork_rng(devices=[]):
            return builder(num_classes, **options)
    except (RuntimeError, MemoryError) as exc:  # e.g. the allocator refusing a huge layer
        raise ModelError(
            f"cannot build architecture {arch!r} with {num_classes} classes "
            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]})"
        ) from exc


#: In-place operations of weight initialisation (``torch.nn.init`` and the tensor
#: methods it calls), which :class:`_SkipInPlace` turns into no-ops.
_INIT_OPS = frozenset(
    "normal_ uniform_ fill_ zero_ zeros_ ones_ constant_ eye_ dirac_ trunc_normal_ "
    "kaiming_normal_ kaiming_uniform_ xavier_normal_ xavier_uniform_ orthogonal_ sparse_ "
    "erfinv_ mul_ add_ clamp_ copy_ random_ bernoulli_ exponential_ log_normal_".split()
)


class _SkipInPlace(TorchFunctionMode):
    """Make weight initialisation a no-op while a model is built on the ``meta`` device.

    Meta tensors hold no data, so nothing is lost; and the Python meta kernels of
    the random initialisers would import sympy (seconds) for nothing.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in _INIT_OPS:
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor):
                return target
        return func(*args, **kwargs)


def _meta_state(
    arch: str, num_classes: int, **options: object
) -> dict[str, tuple[tuple[int, ...], int, torch.dtype]] | None:
    """``{name: (shape, bytes, dtype)}`` of the state dict ``arch`` would have, allocating
    nothing.

    None when the builder cannot run on the ``meta`` device (the real build decides).
    """
    builder = _builder(arch)
    try:
        with torch.device("meta"), _SkipInPlace():
            model = builder(num_classes, **options)
        return {
            k: (tuple(v.shape), v.numel() * v.element_size(), v.dtype)
            for k, v in model.state_dict().items()
        }
    except Exception:
        return None


#: A model may need this much memory whatever its checkpoint holds (strict=False
#: loads a part of it); beyond it, no more than four times the checkpoint.
_MIN_BUILD_BYTES = 2 * 1024**3


def _check_shapes(
    arch: str, num_classes: int, state: Mapping[str, torch.Tensor], source: str, strict: bool,
    **options: object,
) -> None:
    # A hostile or mistaken checkpoint can claim, say, 10^8 classes: building
    # that model would allocate tens of GB before load_state_dict objects.
    expected = _meta_state(arch, num_classes, **options)
    if expected is None:
        return
    where = f"weights in {source} do not fit architecture {arch!r} with {num_classes} classes"
    bad = [
        f"{k}: checkpoint {tuple(v.shape)}, architecture {expected[k][0]}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != expected[k][0]
    ]
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise ModelError(
            f"{where}: size mismatch for {'; '.join(bad[:3])}{more}. "
            "Check --arch / arch= (from Python, also num_classes=)"
        )
    if strict:
        # BatchNorm fills in a missing num_batches_tracked (checkpoints before torch 0.4.1).
        missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise ModelError(
                f"{where}: missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}. "
                "Check --arch / arch= (from Python, load_model(..., strict=False) loads what fits)"
            )
    # torch's copy_ casts complex to real (dropping the imaginary part) and integers to
    # float without a word: weights of another kind of number are not this model's.
    kinds = [
        f"{k} ({v.dtype})"
        for k, v in state.items()
        if k in expected and expected[k][2].is_floating_point and not v.is_floating_point()
    ]
    if kinds:
        raise ModelError(
            f"{where}: {', '.join(kinds[:3])}{' ...' if len(kinds) > 3 else ''} are not "
            "floating-point weights; save the float state dict of the model"
        )
    need = sum(nbytes for _, nbytes, _ in expected.values())
    # Bytes the file really holds: a stride-0 expanded tensor (or one storage under two
    # names) counted numel x itemsize, so a 1 MB file could pass for 25 GB.
    storages = {v.untyped_storage().data_ptr(): v.untyped_storage().nbytes()
                for v in state.values()}
    have = sum(storages.values())
    if need > max(_MIN_BUILD_BYTES, 4 * have):
        raise ModelError(
            f"{where}: the model would take {need / 1e9:.3g} GB for a checkpoint of "
            f"{have / 1e6:.3g} MB. Check --arch / arch= (from Python, also num_classes=)"
        )


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str, strict: bool) -> None:
    try:
        result = model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise ModelError(f"weights in {source} do not fit the architecture: {exc}") from exc
    if not strict and state and len(result.unexpected_keys) == len(state):
        # strict=False loads "what fits": nothing at all is a model left at random weights.
        raise ModelError(
            f"none of the {len(state)} tensors in {source} belongs to the architecture "
            f"(e.g. {next(iter(state))!r}; it has {next(iter(model.state_dict()), None)!r}): "
            "check --arch / arch="
        )


def load_model(
    source: str | Path,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    strict: bool = True,
    trust_code: bool = False,
) -> LoadedModel:
    """Load a model for inference (eval mode, on the CPU).

    Parameters
    ----------
    source : str or path
        A built-in name (see :func:`list_models`), the path of a TorchScript
        file (``torch.jit.save``), or the path of a state dict (then ``arch``
        is required).  A :class:`~pathlib.Path` is always a file, even one
        named like a built-in model.
    arch : str, optional
        Architecture for a state dict, a key of :data:`ARCHITECTURES`.  For a
        built-in model, ``arch``, ``num_classes`` and ``classes`` must be left
        out (or agree with it).
    num_classes : int, optional
        Outputs of the classifier; inferred from the last 2-D weight of the
        state dict when omitted.
    classes : sequence of str, optional
        Class names for a user model.
    strict : bool
        Passed to ``load_state_dict``; built-in weights always load strictly.
    trust_code : bool
        Load a TorchScript file.  Off by default because ``torch.jit.load``
        runs code stored in the file while loading it (and the model's
        ``forward`` is code from the file too): that code can read and write
        any file you can.  Set it only for files whose origin you trust.
        State dicts never run code and do not need it.

    Returns
    -------
    LoadedModel
        For a model file, ``classes`` as given and the other fields None, except
        for a model that normalises its own input (a ``boda.models`` network
        created with ``mean=``/``std=``): its ``mean`` and ``std`` are 0 and 1, as
        it takes ``[0, 1]`` images as they are.  A state dict holding such a
        model's ``normalize.mean``/``normalize.std`` is built with them when the
        architecture's builder takes ``mean=`` and ``std=``.

    Raises
    ------
    ModelError
        Unknown name, unreadable file, a TorchScript file without
        ``trust_code=True``, or weights that do not fit.

    Examples
    --------
    >>> lm = load_model("resnet20-cifar10")
    >>> lm.classes[3], lm.input_size
    ('cat', (32, 32))
    """
    name = str(source)
    if name in _REGISTRY and not isinstance(source, os.PathLike):  # a Path names a file
        info = _REGISTRY[name]
        # These describe a model file; for a built-in model they were silently dropped
        # (arch="resnet56" returned ResNet-20).
        if (
            (arch is not None and arch != info.arch)
            or (num_classes is not None and num_classes != len(info.classes))
            or (classes is not None and tuple(classes) != info.classes)
        ):
            raise InvalidParameterError(
                f"{name!r} is a built-in model (architecture {info.arch!r}, "
                f"{len(info.classes)} classes {', '.join(info.classes[:3])}, ...); arch=, "
                "num_classes= and classes= are for model files: leave them out"
            )
        model = _build(info.arch, len(info.classes))
        res = resources.files("boda") / "data" / "models" / info.weights
        with res.open("rb") as f:
            state = _read_state_dict(f, f"built-in weights {info.weights!r}")
        _load_into(model, state, f"built-in weights {info.weights!r}", strict=True)
        return LoadedModel(
            model=model.eval(),
            name=info.name,
            classes=info.classes,
            input_size=info.input_size,
            mean=info.mean,
            std=info.std,
            target_layer=info.target_layer,
        )
    path = Path(source)
    if path.exists() and not path.is_file():
        raise ModelError(f"{name!r} is not a regular file (a folder, device or pipe); give a "
                         "model file")
    if not path.is_file():
        raise ModelError(
            f"{name!r} is neither a built-in model ({list_models()}) nor an existing file"
        )
    cls = tuple(classes) if classes is not None else None
    if _is_torchscript(path):
        if not trust_code:
            raise ModelError(
                f"{name!r} is a TorchScript archive, which runs code stored in the file "
                "while it loads (it can read and write any file you can), so boda does not "
                "load it by default. If you trust where it comes from, pass trust_code=True "
                "(boda explain --trust-model-code); otherwise ask for the state dict "
                "(torch.save(model.state_dict(), path)) and load it with arch=... (--arch)"
            )
        try:
            with warnings.catch_warnings():
                # torch 2.13 deprecates TorchScript, but users still ship .pt archives.
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ModelError(f"cannot load TorchScript file {name!r}: {exc}") from exc
        return _user_model(model.eval(), path.name, cls)
    state = load_state_dict(path)
    if arch is None:
        raise ModelError(
            f"{name!r} is a state dict; say which architecture it belongs to with "
            f"arch=... (--arch on the command line; one of {sorted(ARCHITECTURES)}) "
            "or save the model with torch.jit.save"
        )
    if num_classes is not None and (not whole_number(num_classes) or num_classes < 1):
        raise InvalidParameterError(
            f"num_classes must be a whole number >= 1, got {num_classes!r}"
        )
    if num_classes is not None and cls is not None and len(cls) != num_classes:
        raise InvalidParameterError(
            f"{len(cls)} class names for num_classes={num_classes}; give one name per "
            "output (or leave num_classes out)"
        )
    if num_classes is None:
        num_classes = len(cls) if cls is not None else _infer_num_classes(state, name)
    options = _normalization_options(arch, state)
    _check_shapes(arch, num_classes, state, repr(name), strict, **options)
    model = _build(arch, num_classes, **options)
    _load_into(model, state, repr(name), strict)
    return _user_model(model.eval(), path.name, cls)


#: Keys of the input statistics a ``boda.models`` network keeps in its state dict when
#: built with ``mean=``/``std=`` (an ``InputNormalization`` module named ``normalize``).
_NORMALIZE_KEYS = ("normalize.mean", "normalize.std")


def _normalization_options(arch: str, state: Mapping[str, torch.Tensor]) -> dict:
    """``{"mean": ..., "std": ...}`` for a builder that takes them, when the checkpoint
    holds a ``normalize`` module's statistics: built without it, the model refused its
    own checkpoint ("unexpected keys ['normalize.mean', 'normalize.std']").  The
    values are placeholders of the right length; the checkpoint's are loaded."""
    stats = [state.get(key) for key in _NORMALIZE_KEYS]
    if any(t is None or t.ndim != 4 for t in stats) or stats[0].shape != stats[1].shape:
        return {}
    try:
        parameters = inspect.signature(_builder(arch)).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if not (takes_all or {"mean", "std"} <= set(parameters)):
        return {}
    channels = stats[0].numel()
    return {"mean": (0.0,) * channels, "std": (1.0,) * channels}


def _own_normalization_channels(model: nn.Module) -> int | None:
    """Channels of the ``InputNormalization`` a model applies to its own input
    (``boda.models`` networks built with ``mean=``/``std=``, eager or TorchScript);
    None when it has none."""
    module = getattr(model, "normalize", None)
    if not isinstance(module, nn.Module):
        return None
    # a TorchScript module keeps its Python class's name as original_name
    kind = getattr(module, "original_name", None) or type(module).__name__
    buffers = dict(module.named_buffers(recurse=False))
    if kind != "InputNormalization" or "mean" not in buffers:
        return None
    return int(buffers["mean"].numel())


def _user_model(model: nn.Module, name: str, classes: tuple[str, ...] | None) -> LoadedModel:
    """A model file's :class:`LoadedModel`.  A model that normalises its own input
    takes ``[0, 1]`` images as they are: its ``mean``/``std`` are 0 and 1, so the
    callers that fall back to ImageNet's statistics for unknown ones (``explain_image``,
    the CLI) do not normalise a second time."""
    channels = _own_normalization_channels(model)
    if channels is None:
        return LoadedModel(model=model, name=name, classes=classes)
    return LoadedModel(
        model=model, name=name, classes=classes, mean=(0.0,) * channels, std=(1.0,) * channels
    )


def _infer_num_classes(state: Mapping[str, torch.Tensor], source: str) -> int:
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not weights:
        # No 2-D weight: no classifier layer, e.g. a self-supervised backbone saved
        # without its head; the command line has no num_classes, so both ways are said.
        raise ModelError(
            f"cannot infer the number of classes of {source!r}: it holds no linear "
            "(2-D) weight, so no classifier layer (a backbone saved without its head?). "
            "Save the whole model's state dict, or load it from Python with "
            "load_model(path, arch=..., num_classes=N, strict=False), which leaves the "
            "head at random weights (its layers' features are still the backbone's)"
        )
    return int(weights[-1].shape[0])


def input_spec(model: nn.Module) -> tuple[int | None, torch.dtype | None]:
    """``(channels, dtype)`` the model's input should have, as far as its weights tell.

    ``channels``: ``in_channels`` of its first ``Conv2d`` (for TorchScript
    models, whose modules are not ``nn.Conv2d``, the second size of its first
    4-D weight), or None for a model without one.  ``dtype``: that of its first
    floating-point parameter (a float16 or float64 model wants such inputs),
    or None.

    Examples
    --------
    >>> from torch import nn
    >>> input_spec(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).double())
    (1, torch.float64)
    """
    channels = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    params = list(model.parameters())
    if channels is None:
        channels = next((int(p.shape[1]) for p in params if p.ndim == 4), None)
    dtype = next((p.dtype for p in params if p.is_floating_point()), None)
    return channels, dtype
