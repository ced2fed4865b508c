"""Numpy image <-> ``(B, C, H, W)`` tensor conversions, in one place.

boda's numpy images are ``float32`` ``(H, W[, 3])`` in ``[0, 1]`` (see
:mod:`boda.core.image`); torch APIs take ``(B, C, H, W)`` float tensors.  Every
conversion between the two, with or without mean/std normalisation, goes
through this module so the convention is stated once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from boda.core.image import as_float_image
from boda.core.lazy import MAX_CPU_THREADS
from boda.core.numbers import whole_number
from boda.errors import InvalidImageError, InvalidParameterError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "image_to_tensor",
    "tensor_to_image",
    "normalize",
    "denormalize",
    "resize_tensor",
    "set_cpu_threads",
    "cpu_threads",
]

#: ImageNet channel statistics (RGB, on [0, 1] values), used by most
#: torchvision-style models and by the shipped CIFAR-10 ResNets.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _stats(values: Sequence[float], channels: int, name: str) -> torch.Tensor:
    if values is None:
        raise InvalidParameterError(
            f"{name} is None; give one value per channel (or one for all channels)"
        )
    try:
        t = torch.as_tensor(values, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise InvalidParameterError(
            f"{name} must be numbers, one per channel (or one for all channels), got {values!r}"
        ) from None
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels:
        raise InvalidParameterError(
            f"{name} has {t.numel()} values but the image has {channels} channels; "
            f"give one value per channel"
        )
    return t.view(1, channels, 1, 1)


def normalize(
    x: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Return ``(x - mean) / std`` per channel for a ``(B, C, H, W)`` tensor.

    Examples
    --------
    >>> import torch
    >>> x = torch.full((1, 3, 2, 2), 0.5)
    >>> normalize(x, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).abs().max().item()
    0.0
    """
    _check_bchw(x, "x")
    _check_floating(x, "x")
    m, s = _mean_std(mean, std, x.shape[1])
    return (x - m.to(x)) / s.to(x)


def denormalize(
    x: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Invert :func:`normalize`: return ``x * std + mean`` per channel."""
    _check_bchw(x, "x")
    _check_floating(x, "x")
    m, s = _mean_std(mean, std, x.shape[1])
    return x * s.to(x) + m.to(x)


def _mean_std(
    mean: Sequence[float], std: Sequence[float], channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    m = _stats(mean, channels, "mean")
    s = _stats(std, channels, "std")
    if not bool(torch.isfinite(m).all()):
        raise InvalidParameterError(f"mean must be finite numbers, got {mean!r}")
    if not bool((torch.isfinite(s) & (s > 0)).all()):
        raise InvalidParameterError(
            f"std must be finite and > 0 in every channel, got {std!r}"
        )
    return m, s


def _check_floating(x: torch.Tensor, name: str) -> None:
    # Statistics cast to an integer dtype truncate (0.485 -> 0): a wrong result.
    if not x.is_floating_point():
        raise InvalidImageError(
            f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}; convert it "
            "first, e.g. x.float() / 255 for 8-bit pixels"
        )


def _check_bchw(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidImageError(f"{name} must be a (B, C, H, W) tensor, got {shape}")


def image_to_tensor(
    image: np.ndarray | Sequence[np.ndarray],
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Convert one numpy image or a list of same-sized ones to a ``(B, C, H, W)`` tensor.

    Parameters
    ----------
    image : numpy.ndarray or sequence of numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)`` image(s), any dtype
        :func:`boda.core.image.as_float_image` accepts; a ``(B, H, W, 3)``
        array is taken as a batch.
    mean, std : sequence of float, optional
        Per-channel statistics; when given the result is ``(x - mean) / std``
        (e.g. :data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`).
    size : (int, int), optional
        ``(height, width)`` to resize to (bilinear, antialiased) before
        normalising.
    device, dtype
        Where and how to store the result (``dtype`` floating point).

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)`` with ``C`` 1 (gray) or 3.

    Raises
    ------
    InvalidImageError
        An image of the wrong shape, gray and RGB images in one batch, or images
        of different sizes without ``size``.

    Examples
    --------
    >>> import numpy as np
    >>> image_to_tensor(np.zeros((4, 5, 3), np.uint8)).shape
    torch.Size([1, 3, 4, 5])
    """
    if isinstance(image, np.ndarray) and image.ndim == 4:
        images = list(image)
    elif isinstance(image, np.ndarray):
        images = [image]
    else:
        images = list(image)
    if not images:
        raise InvalidImageError("image_to_tensor got an empty list of images")
    if (mean is None) != (std is None):
        raise InvalidParameterError("give both mean and std, or neither")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        # An integer dtype truncates the [0, 1] values: an all-zero tensor.
        raise InvalidParameterError(
            f"dtype must be a floating-point torch dtype (e.g. torch.float32), got {dtype!r}"
        )
    arrays = [as_float_image(im, name=f"image[{i}]") for i, im in enumerate(images)]
    channels = {1 if a.ndim == 2 else a.shape[2] for a in arrays}
    if len(channels) > 1:
        raise InvalidImageError(
            "images in a batch must all be gray or all be RGB; convert them first (e.g. "
            "np.repeat(gray[:, :, None], 3, axis=2)), or convert them one at a time"
        )
    tensors = [
        torch.from_numpy(np.ascontiguousarray(np.atleast_3d(a).transpose(2, 0, 1)))[None]
        for a in arrays
    ]
    if size is not None:  # each image on its own: they may differ in size
        tensors = [resize_tensor(t, size) for t in tensors]
    shapes = {tuple(t.shape[2:]) for t in tensors}
    if len(shapes) > 1:
        raise InvalidImageError(
            f"images in a batch must share one shape, got {sorted(shapes)} (H, W); pass "
            "size=(H, W) to resize them, or convert them one at a time"
        )
    x = torch.cat(tensors)
    if mean is not None and std is not None:
        x = normalize(x, mean, std)
    return x.to(device=device, dtype=dtype)


def tensor_to_image(
    x: torch.Tensor,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    clip: bool = True,
) -> np.ndarray:
    """Convert a ``(B, C, H, W)`` or ``(C, H, W)`` tensor back to numpy image(s).

    Parameters
    ----------
    x : torch.Tensor
        One image ``(C, H, W)`` or a batch ``(B, C, H, W)``; ``C`` is 1 or 3;
        floating point (divide 8-bit values by 255 first).
    mean, std : sequence of float, optional
        Undo a normalisation first (``x * std + mean``).
    clip : bool
        Clip to ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W, 3)`` / ``(H, W)`` for one image, ``(B, H, W, 3)`` /
        ``(B, H, W)`` for a batch; always a new array, never a view of ``x``.
    """
    single = isinstance(x, torch.Tensor) and x.ndim == 3
    t = x.unsqueeze(0) if single else x
    _check_bchw(t, "x")
    if t.shape[1] not in (1, 3):
        raise InvalidImageError(f"x must have 1 or 3 channels, got {t.shape[1]}")
    if (mean is None) != (std is None):
        raise InvalidParameterError("give both mean and std, or neither")
    # A uint8 (0-255) tensor cast to float and clipped would come back all white.
    _check_floating(t, "x")
    t = t.detach().to("cpu", torch.float32)
    if mean is not None and std is not None:
        t = denormalize(t, mean, std)
    out = t.permute(0, 2, 3, 1).numpy()
    if out.shape[-1] == 1:
        out = out[..., 0]
    # Always a copy: .numpy() shares the tensor's memory, and for a gray (or 1 x 1)
    # float32 image nothing else copied it, so writing to the image changed the tensor.
    out = np.clip(out, 0.0, 1.0) if clip else out.copy()
    out = np.ascontiguousarray(out, dtype=np.float32)
    return out[0] if single else out


def resize_tensor(
    x: torch.Tensor, size: tuple[int, int], *, antialias: bool = True
) -> torch.Tensor:
    """Bilinear resize of a ``(B, C, H, W)`` tensor to ``size = (H, W)``.

    Downscaling is antialiased (as PIL and OpenCV's ``INTER_AREA`` do) unless
    ``antialias=False``.  Floating-point and uint8 tensors; float16 and bfloat16
    are resized in float32 and returned in their own dtype.
    """
    _check_bchw(x, "x")
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(whole_number(v) and v > 0 for v in size)
    ):
        raise InvalidParameterError(f"size must be two positive integers (H, W), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if tuple(x.shape[2:]) == (h, w):
        return x
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        raise InvalidImageError(
            f"x must be a floating-point or uint8 tensor to resize, got {x.dtype}"
        )
    if x.dtype in (torch.float16, torch.bfloat16):
        # torch's CPU bilinear (antialiased) kernel has no half types: float32, then back.
        y = F.interpolate(x.float(), size=(h, w), mode="bilinear", align_corners=False,
                          antialias=antialias)
        return y.to(x.dtype)
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=antialias)


def set_cpu_threads(n: int) -> int:
    """Set the number of intra-op CPU threads torch uses; return the previous value.

    ``n`` is a whole number from 1 to :data:`MAX_CPU_THREADS`.

    Examples
    --------
    >>> previous = set_cpu_threads(1)
    >>> _ = set_cpu_threads(previous)
    """
    if not whole_number(n) or n < 1:
        raise InvalidParameterError(f"thread count must be a whole number >= 1, got {n!r}")
    if n > MAX_CPU_THREADS:
        raise InvalidParameterError(
            f"thread count must be at most {MAX_CPU_THREADS}, got {n!r} (this machine has "
            f"{os.cpu_count()} cores)"
        )
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return previous


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Context manager running its body with ``n`` torch CPU threads (``None``: unchanged)."""
    if n is None:
        yield
        return
    previous = set_cpu_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
