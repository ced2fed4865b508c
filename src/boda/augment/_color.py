"""Photometric augmentations for numpy ``(H, W, 3)`` and torch ``(B, 3, H, W)`` images.

Every function takes either form, with the same parameters, and keeps values
in ``[0, 1]`` (clipping). Torch is imported only when a tensor arrives.
Input of any dtype boda reads (uint8, uint16, bool, float), numpy array or
tensor, is converted as :func:`boda.core.image.as_float_image` does (uint8 /
255, uint16 / 65535), so the result is float32 and equals the one for the same
image as float32 (float tensors keep their dtype); lists and PIL images go
through :func:`numpy.asarray` first.
"""

from __future__ import annotations

import math

import numpy as np

from boda.augment._input import as_float, is_tensor, rng
from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError

# Rec.601 luma, as torchvision and PIL's "L" mode
_LUMA = (0.299, 0.587, 0.114)


def _is_np(x) -> bool:
    return not is_tensor(x)


def _channels(x):
    """The three colour planes of either form."""
    if _is_np(x):
        if x.ndim != 3 or x.shape[2] != 3:
            raise InvalidParameterError(f"numpy images must be (H, W, 3), got {x.shape}.")
        return x[..., 0], x[..., 1], x[..., 2]
    if x.ndim != 4 or x.shape[1] != 3:
        raise InvalidParameterError(f"tensors must be (B, 3, H, W), got {tuple(x.shape)}.")
    return x[:, 0], x[:, 1], x[:, 2]


def _half_dtypes():
    import torch

    return (torch.float16, torch.bfloat16)


def _clip(x):
    return np.clip(x, 0.0, 1.0).astype(np.float32) if _is_np(x) else x.clamp(0.0, 1.0)


def _gray(x):
    r, g, b = _channels(x)
    y = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
    return y[..., None] if _is_np(x) else y[:, None]


def _blend(a, b, factor):
    """``factor * a + (1 - factor) * b``, clipped (PIL ImageEnhance semantics)."""
    return _clip(factor * a + (1.0 - factor) * b)


def _check_factor(factor, where: str) -> None:
    """Refuse a negative, NaN or infinite enhancement factor (NaN and inf would
    give NaN pixels, a negative one an inverted blend). Tensors of per-image
    factors come from the batched views, whose strengths are already checked."""
    if is_tensor(factor):
        return
    if not np.all((np.asarray(factor, dtype=np.float64) >= 0) & np.isfinite(factor)):
        raise InvalidParameterError(
            f"{where}: factor must be >= 0 and finite (1 keeps the image), got {factor!r}."
        )


def adjust_brightness(image, factor: float):
    """Multiply by ``factor`` (0 gives black, 1 the original), clipped to [0, 1]."""
    _check_factor(factor, "adjust_brightness")
    image = as_float(image)
    return _clip(image * factor)


def adjust_contrast(image, factor: float):
    """Blend with the mean gray level of each image (0 gives a flat gray)."""
    _check_factor(factor, "adjust_contrast")
    image = as_float(image)
    g = _gray(image)
    mean = g.mean(axis=(0, 1), keepdims=True) if _is_np(image) else g.mean((1, 2, 3), True)
    return _blend(image, mean, factor)


def adjust_saturation(image, factor: float):
    """Blend with the image's grayscale (0 gives gray, >1 over-saturates)."""
    _check_factor(factor, "adjust_saturation")
    image = as_float(image)
    return _blend(image, _gray(image), factor)


def adjust_hue(image, shift: float):
    """Rotate hue by ``shift`` turns (in ``[-0.5, 0.5]``) in HSV, value and saturation kept."""
    image = as_float(image)
    if not -0.5 <= shift <= 0.5:
        raise InvalidParameterError(f"hue shift must lie in [-0.5, 0.5], got {shift!r}.")
    return _shift_hue(image, shift)


def _shift_hue(image, shift):
    """:func:`adjust_hue` without the check; ``shift`` may be a ``(B, 1, 1)`` tensor."""
    image = as_float(image)
    if not _is_np(image) and image.dtype in _half_dtypes():
        # h * 6 reaches 6: bfloat16 holds it to 1/32, which moved pixels by ~0.02
        return _shift_hue(image.float(), shift).to(image.dtype)
    xp = np if _is_np(image) else __import__("torch")
    r, g, b = _channels(image)
    maxc = xp.maximum(xp.maximum(r, g), b)
    minc = xp.minimum(xp.minimum(r, g), b)
    delta = maxc - minc
    safe = xp.where(delta > 0, delta, xp.ones_like(delta))
    h = xp.where(maxc == r, ((g - b) / safe) % 6, xp.where(maxc == g, (b - r) / safe + 2,
                                                            (r - g) / safe + 4))
    h = xp.where(delta > 0, h / 6, xp.zeros_like(h))
    h = (h + shift) % 1.0
    v = maxc
    s = xp.where(maxc > 0, delta / xp.where(maxc > 0, maxc, xp.ones_like(maxc)), 0 * maxc)

    def f(n):
        k = (n + h * 6) % 6
        one = xp.ones_like(k)
        return v - v * s * xp.maximum(xp.minimum(xp.minimum(k, 4 - k), one), 0 * one)

    planes = (f(5), f(3), f(1))
    out = np.stack(planes, axis=-1) if _is_np(image) else xp.stack(planes, dim=1)
    return _clip(out)


def grayscale(image):
    """Rec.601 luma copied to the three channels (keeps the shape)."""
    image = as_float(image)
    g = _gray(image)
    if _is_np(image):
        return np.repeat(g, 3, axis=2).astype(np.float32)
    return g.expand_as(image).contiguous()  # a real tensor: callers may edit it in place


def solarize(image, threshold: float = 0.5):
    """Invert values at or above ``threshold``: ``x >= t -> 1 - x``."""
    if not (real_number(threshold) and not math.isnan(threshold)):  # NaN inverted nothing
        raise InvalidParameterError(f"threshold must be a number, got {threshold!r}.")
    image = as_float(image)
    if _is_np(image):
        return np.where(image >= threshold, 1.0 - image, image).astype(np.float32)
    return image.where(image < threshold, 1.0 - image)


def posterize(image, bits: int):
    """Keep the ``bits`` high bits of the 8-bit value of each channel (1..8)."""
    if not (whole_number(bits) and 1 <= bits <= 8):  # 3.5 gave levels off the 8-bit grid
        raise InvalidParameterError(f"bits must be a whole number in 1..8, got {bits!r}.")
    image = as_float(image)
    step = 2 ** (8 - bits)
    if _is_np(image):
        q = np.floor(np.round(np.clip(image, 0, 1) * 255) / step) * step
        return (q / 255).astype(np.float32)
    # in float32: float16 holds x * 255 to 1/8 only, so round() picked the wrong level
    q = ((image.float().clamp(0, 1) * 255).round() / step).floor() * step
    return (q / 255).to(image.dtype)


def _equalize_plane(u8: np.ndarray) -> np.ndarray:
    # PIL ImageOps.equalize: skip the last non-empty bin, step = (n - last) // 255
    hist = np.bincount(u8.ravel(), minlength=256)
    nonzero = hist[hist > 0]
    step = (nonzero[:-1].sum()) // 255 if len(nonzero) > 1 else 0
    if step == 0:
        return u8
    lut = np.minimum((np.cumsum(hist) - hist + step // 2) // step, 255).astype(np.uint8)
    return lut[u8]


def equalize(image):
    """Histogram equalisation of each channel, on 8-bit levels (PIL's algorithm).

    References
    ----------
    PIL ``ImageOps.equalize``; R. C. Gonzalez, R. E. Woods, *Digital Image
    Processing*, Sec. 3.3.
    """
    image = as_float(image)
    if _is_np(image):
        _channels(image)
        u8 = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
        out = np.stack([_equalize_plane(u8[..., c]) for c in range(3)], axis=-1)
        return (out / 255).astype(np.float32)
    import torch

    _channels(image)
    if image.shape[0] == 0:
        return image.clone()
    # numpy has no bfloat16: go through float32 (8-bit levels lose nothing)
    arr = image.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    eq = np.stack([equalize(a) for a in arr])
    return torch.as_tensor(eq, device=image.device).permute(0, 3, 1, 2).to(image.dtype)


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> np.ndarray:
    """Normalised 1-D Gaussian, radius ``ceil(3 sigma)`` by default."""
    if not 0 < sigma < math.inf:  # also refuses NaN
        raise InvalidParameterError(f"sigma must be > 0 and finite, got {sigma!r}.")
    if radius is not None and not (whole_number(radius) and radius >= 0):
        # a fractional radius gives an even kernel, which shifts the image half a pixel
        raise InvalidParameterError(f"radius must be an int >= 0 (pixels), got {radius!r}.")
    r = int(math.ceil(3 * sigma)) if radius is None else int(radius)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


def _reflect101(n: int, r: int) -> np.ndarray:
    """Source index of each of the ``n + 2r`` positions ``-r .. n - 1 + r`` under
    reflect-101 borders (``dcb|abcd|cba``), repeated as often as needed."""
    if n == 1:
        return np.zeros(n + 2 * r, dtype=np.int64)
    period = 2 * (n - 1)
    i = np.abs(np.arange(-r, n + r)) % period
    return np.where(i < n, i, period - i)


def gaussian_blur(image, sigma: float, radius: int | None = None):
    """Separable Gaussian blur, reflect-101 borders (OpenCV's default), clipped to
    ``[0, 1]`` as the other photometric ops."""
    k = gaussian_kernel1d(sigma, radius)
    r = len(k) // 2
    image = as_float(image)
    if _is_np(image):
        x = image.astype(np.float64)
        pad = [(r, r), (0, 0)] + [(0, 0)] * (x.ndim - 2)
        x = np.pad(x, pad, mode="reflect")
        x = sum(k[i] * x[i : i + image.shape[0]] for i in range(len(k)))
        pad = [(0, 0), (r, r)] + [(0, 0)] * (x.ndim - 2)
        x = np.pad(x, pad, mode="reflect")
        x = sum(k[i] * x[:, i : i + image.shape[1]] for i in range(len(k)))
        return _clip(x)
    import torch
    import torch.nn.functional as F

    c, h, w = image.shape[1:]
    kt = torch.as_tensor(k, dtype=image.dtype, device=image.device)
    if r < min(h, w):
        x = F.pad(image, (r, r, r, r), mode="reflect")
    else:  # F.pad reflects once only; reflect-101 repeated, as np.pad does
        rows = torch.as_tensor(_reflect101(h, r), device=image.device)
        cols = torch.as_tensor(_reflect101(w, r), device=image.device)
        x = image[:, :, rows][:, :, :, cols]
    x = F.conv2d(x, kt.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, kt.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    # the kernel rounded to float32 sums to 1 +- 1e-7: a white image gave 1.0000002
    return _clip(x)


def color_jitter(
    image,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    seed: int | np.random.Generator | None = None,
):
    """Random brightness, contrast, saturation and hue, in a random order.

    Factors are drawn uniformly from ``[1 - s, 1 + s]`` and the hue shift from
    ``[-hue, hue]`` (torchvision's ``ColorJitter``). Returns ``(image, params)``
    with the drawn values, so the same jitter can be replayed.

    ``brightness``, ``contrast`` and ``saturation`` must be >= 0 and ``hue`` in
    ``[0, 0.5]``; they are checked before anything is drawn
    (:class:`~boda.errors.InvalidParameterError`).
    """
    check_jitter(brightness, contrast, saturation, hue)
    image = as_float(image)
    params = _jitter_params(rng(seed), brightness, contrast, saturation, hue)
    ops = (
        lambda x: adjust_brightness(x, params["brightness"]),
        lambda x: adjust_contrast(x, params["contrast"]),
        lambda x: adjust_saturation(x, params["saturation"]),
        lambda x: adjust_hue(x, params["hue"]),
    )
    for i in params["order"]:
        image = ops[i](image)
    return image, params


def check_jitter(brightness, contrast, saturation, hue, where: str = "color_jitter") -> None:
    """Refuse jitter strengths outside their ranges, before anything is drawn."""
    for name, value in (("brightness", brightness), ("contrast", contrast),
                        ("saturation", saturation)):
        if not 0 <= value < math.inf:  # also refuses NaN
            raise InvalidParameterError(
                f"{where}: {name} must be >= 0 and finite (factors are drawn from "
                f"[max(0, 1 - {name}), 1 + {name}]), got {value!r}."
            )
    if not 0 <= hue <= 0.5:
        raise InvalidParameterError(
            f"{where}: hue must lie in [0, 0.5] (shifts are drawn from [-hue, hue] turns), "
            f"got {hue!r}."
        )


def _jitter_params(rng, brightness, contrast, saturation, hue) -> dict:
    """The draws of :func:`color_jitter`, in its order."""
    return {
        "brightness": float(rng.uniform(max(0, 1 - brightness), 1 + brightness)),
        "contrast": float(rng.uniform(max(0, 1 - contrast), 1 + contrast)),
        "saturation": float(rng.uniform(max(0, 1 - saturation), 1 + saturation)),
        "hue": float(rng.uniform(-hue, hue)),
        "order": [int(i) for i in rng.permutation(4)],
    }


def autocontrast(image):
    """Stretch each channel of each image to the full ``[0, 1]`` range.

    Flat channels are left unchanged (PIL ``ImageOps.autocontrast`` with no cut-off).
    """
    image = as_float(image)
    if _is_np(image):
        _channels(image)
        lo = image.min(axis=(0, 1), keepdims=True)
        hi = image.max(axis=(0, 1), keepdims=True)
    else:
        _channels(image)
        lo = image.amin(dim=(2, 3), keepdim=True)
        hi = image.amax(dim=(2, 3), keepdim=True)
    span = hi - lo
    flat = span <= 0
    scale = 1.0 / (span + flat)  # 1 where flat, to avoid dividing by zero
    out = (image - lo) * scale
    return _clip(out * ~flat + image * flat)


def adjust_sharpness(image, factor: float):
    """Blend with a 3x3 smoothed copy (PIL ``ImageEnhance.Sharpness``).

    The smoothing kernel is ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``; border
    pixels keep their values. ``factor`` 0 blurs, 1 is the original, 2 sharpens.
    """
    _check_factor(factor, "adjust_sharpness")
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float64) / 13
    image = as_float(image)
    if _is_np(image):
        _channels(image)
        x = image.astype(np.float64)
        h, w = x.shape[:2]
        smooth = x.copy()
        acc = np.zeros_like(x[1:-1, 1:-1])
        for dy in range(3):
            for dx in range(3):
                acc += kernel[dy, dx] * x[dy : dy + h - 2, dx : dx + w - 2]
        smooth[1:-1, 1:-1] = acc
        return _blend(image, smooth.astype(np.float32), factor)
    import torch
    import torch.nn.functional as F

    _channels(image)
    k = torch.as_tensor(kernel, dtype=image.dtype, device=image.device)
    smooth = image.clone()
    if min(image.shape[-2:]) >= 3:  # narrower images are all border, as in numpy
        smooth[..., 1:-1, 1:-1] = F.conv2d(image, k.expand(3, 1, 3, 3), groups=3)
    return _blend(image, smooth, factor)
