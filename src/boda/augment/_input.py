"""Input checks shared by the augment ops: one place for the shape and dtype rules.

- torch images are ``(B, C, H, W)`` tensors; anything else that is not a tensor
  goes through :func:`numpy.asarray` (lists, PIL images).
- :func:`as_float` converts numpy images with the rule of
  :func:`boda.core.image.as_float_image` (uint8 / 255, uint16 / 65535, bool 0/1,
  floats cast to float32) but keeps the shape, so ``(H, W, C)`` with any ``C``
  passes; the ops say which shapes they need. Integer and bool tensors (e.g.
  ``torchvision.io.read_image`` output) follow the same rule to float32; float
  tensors keep their dtype.
- :func:`as_array` only checks: the geometric ops keep the dtype.
"""

from __future__ import annotations

import sys

import numpy as np

from boda.core.image import float32_values
from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidImageError, InvalidParameterError


def is_tensor(x) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _check_tensor(x, name: str):
    if x.ndim != 4:
        raise InvalidParameterError(
            f"torch images must be (B, C, H, W), got {name} of shape {tuple(x.shape)}; "
            "use x[None] for a single (C, H, W) image."
        )
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        raise InvalidImageError(f"{name} is empty (shape {tuple(x.shape)}).")
    return x


def _asarray(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise InvalidParameterError(
            f"{name} must be a numpy array (or a tensor), got {type(x).__name__} "
            f"that numpy cannot convert: {exc}"
        ) from None
    if arr.dtype.kind not in "biuf":
        raise InvalidImageError(
            f"{name} has dtype {arr.dtype} (from {type(x).__name__}); "
            "use uint8, uint16, bool or float in [0, 1]."
        )
    return arr


def as_array(x, name: str = "image"):
    """``x`` as a numpy ``(H, W)`` / ``(H, W, C)`` array of its own dtype, or a
    checked ``(B, C, H, W)`` tensor."""
    if is_tensor(x):
        return _check_tensor(x, name)
    arr = _asarray(x, name)
    if arr.ndim not in (2, 3):
        raise InvalidParameterError(
            f"numpy images must be (H, W) or (H, W, C), got {name} of shape {arr.shape}; "
            "batches go to torch as (B, C, H, W) tensors, or loop over the images."
        )
    if arr.size == 0:
        raise InvalidImageError(f"{name} is empty (shape {arr.shape}).")
    return arr


def as_float(x, name: str = "image"):
    """:func:`as_array`, then numpy images and integer tensors converted to
    float32 in ``[0, 1]``."""
    x = as_array(x, name)
    return tensor_float(x, name) if is_tensor(x) else float32_values(x, name=name)


def tensor_float(x, name: str = "image"):
    """A float tensor as is; bool / uint8 / uint16 as float32 in ``[0, 1]`` (the
    numpy rule); other integer tensors refused (their scale is unknown)."""
    if x.is_floating_point():
        return x
    torch = sys.modules["torch"]
    scale = {torch.bool: 1, torch.uint8: 255}
    if hasattr(torch, "uint16"):  # torch >= 2.3
        scale[torch.uint16] = 65535
    if x.dtype not in scale:
        raise InvalidImageError(
            f"{name} has dtype {x.dtype}; use uint8, uint16, bool or float in [0, 1] "
            "(e.g. x.float() / 255 for 8-bit values)."
        )
    return x.float() / scale[x.dtype]


def rng(seed) -> np.random.Generator:
    """``seed`` as a numpy Generator: a Generator is used as is (its state moves on);
    an int, a SeedSequence, a BitGenerator or None (OS entropy) seeds a new one.

    A ``torch.Generator`` is refused with a clear message (numpy's own error named
    neither the argument nor the fix)."""
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"seed must be an int, a numpy.random.Generator or None, got "
            f"{type(seed).__name__}; for a torch.Generator pass an int drawn from it, "
            "e.g. seed=int(torch.randint(2**62, (1,), generator=g))."
        ) from None


def output_size(size, where: str) -> tuple[int, int]:
    """``size`` as ``(height, width)`` in whole pixels >= 1; an int is a square, as
    torchvision's ``size`` arguments (``RandomResizedCrop(96)``). A fractional size
    is refused: the warp scaled by it but sampled a whole number of rows."""
    pair = (size, size) if whole_number(size) else size
    try:
        ok = len(pair) == 2 and all(whole_number(v) and v >= 1 for v in pair)
    except TypeError:  # no len(): a float, None
        ok = False
    if not ok:
        raise InvalidParameterError(
            f"{where}: size must be (height, width) in pixels, whole numbers that "
            f"must be positive (one int for a square), got {size!r}."
        )
    return int(pair[0]), int(pair[1])


def real_pair(value, name: str, where: str) -> tuple[float, float]:
    """``value`` as a pair of real numbers (a range or an ``(x, y)`` pair); the ops
    check their own bounds. A scalar, a string or a triple raised raw TypeError,
    IndexError or ValueError from the unpacking."""
    try:
        ok = len(value) == 2 and all(real_number(v) for v in value)
    except TypeError:  # no len(): a number, None
        ok = False
    if not ok:
        raise InvalidParameterError(
            f"{where}: {name} must be a pair of numbers, got {value!r}."
        )
    return float(value[0]), float(value[1])


def as_batch(x, name: str = "images"):
    """A numpy ``(N, H, W, C)`` batch (dtype kept) or a ``(B, C, H, W)`` tensor."""
    if is_tensor(x):
        return _check_tensor(x, name)
    arr = _asarray(x, name)
    if arr.ndim != 4:
        raise InvalidParameterError(
            f"numpy batches must be (N, H, W, C), got {name} of shape {arr.shape}; "
            "for a single (H, W, C) image pass img[None] (and take [0] of the result)."
        )
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InvalidImageError(f"{name} has empty images (shape {arr.shape}).")
    return arr
