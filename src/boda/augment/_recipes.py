"""RandAugment and the SimCLR / MoCo v2 two-view recipes (numpy images or torch batches).

They mix geometric ops (which keep the dtype) with photometric ones (which
return float32), so they convert numpy input first, as
:func:`boda.core.image.as_float_image` does: the result is float32 in
``[0, 1]`` whatever ops were drawn.
"""

from __future__ import annotations

import math

import numpy as np

from boda.augment import _color as C
from boda.augment import _geometric as G
from boda.augment._input import as_float, is_tensor, output_size, real_pair, tensor_float
from boda.augment._input import rng as _rng
from boda.core.numbers import real_number
from boda.errors import InvalidParameterError

_MAX_M = 30  # RandAugment's magnitude scale


def _check_rgb(image, where: str):
    """Refuse a non-RGB image before anything is drawn: the colour ops need three
    channels, so otherwise the call fails or not depending on the ops the seed picks."""
    numpy = isinstance(image, np.ndarray)
    channels = (image.shape[2] if image.ndim == 3 else 1) if numpy else image.shape[1]
    if channels != 3:
        form = "(H, W, 3)" if numpy else "(B, 3, H, W)"
        gray = "np.repeat(img.reshape(h, w, 1), 3, axis=2)" if numpy else "x.expand(-1, 3, -1, -1)"
        rgba = "img[..., :3]" if numpy else "x[:, :3]"
        raise InvalidParameterError(
            f"{where} needs RGB images {form} (its colour ops work on three channels), "
            f"got shape {tuple(image.shape)}; repeat a grayscale channel ({gray}) or "
            f"drop an alpha channel ({rgba})."
        )
    return image


def _signed(level, rng):
    return level if rng.random() < 0.5 else -level


# The ops are module-level functions, not lambdas, so the table (and a dataset
# holding ops from it) pickles: DataLoader workers started with "spawn" need that.
# Each is (image, magnitude in [0, 1], rng) -> image; geometric ops drop their Transform.


def _identity(x, m, rng):
    return x


def _rotate(x, m, rng):
    return G.rotate(x, _signed(30 * m, rng))[0]


def _shear_deg(m):
    # AutoAugment's shear factor runs to 0.3 (Cubuk et al. 2019, operation table:
    # range [-0.3, 0.3]; so do torchvision and timm): atan(0.3) = 16.70 degrees at
    # full magnitude (17 degrees was a factor of 0.306)
    return math.degrees(math.atan(0.3 * m))


def _shear_x(x, m, rng):
    return G.affine(x, shear=(_signed(_shear_deg(m), rng), 0.0))[0]


def _shear_y(x, m, rng):
    return G.affine(x, shear=(0.0, _signed(_shear_deg(m), rng)))[0]


def _translate_x(x, m, rng):
    return G.affine(x, translate=(_signed(0.45 * m * G._size(x)[1], rng), 0.0))[0]


def _translate_y(x, m, rng):
    return G.affine(x, translate=(0.0, _signed(0.45 * m * G._size(x)[0], rng)))[0]


def _brightness(x, m, rng):
    return C.adjust_brightness(x, 1 + _signed(0.9 * m, rng))


def _contrast(x, m, rng):
    return C.adjust_contrast(x, 1 + _signed(0.9 * m, rng))


def _color(x, m, rng):
    return C.adjust_saturation(x, 1 + _signed(0.9 * m, rng))


def _solarize(x, m, rng):
    return C.solarize(x, 1.0 - m)


def _posterize(x, m, rng):
    return C.posterize(x, max(1, 8 - int(round(4 * m))))


def _equalize(x, m, rng):
    return C.equalize(x)


def _autocontrast(x, m, rng):
    return C.autocontrast(x)


def _sharpness(x, m, rng):
    return C.adjust_sharpness(x, 1 + _signed(0.9 * m, rng))


RANDAUGMENT_OPS = {
    "identity": _identity,
    "rotate": _rotate,
    "shear_x": _shear_x,
    "shear_y": _shear_y,
    "translate_x": _translate_x,
    "translate_y": _translate_y,
    "brightness": _brightness,
    "contrast": _contrast,
    "color": _color,
    "solarize": _solarize,
    "posterize": _posterize,
    "equalize": _equalize,
    "autocontrast": _autocontrast,
    "sharpness": _sharpness,
}


def rand_augment(image, n: int = 2, m: int = 9, seed=None):
    """RandAugment: apply ``n`` ops drawn uniformly, all at magnitude ``m`` (0..30).

    Returns ``(image, ops)`` with the names applied, in order. ``n`` is an
    int >= 0; numpy input comes back as float32 in ``[0, 1]`` (uint8 / uint16 /
    bool converted first), whichever ops were drawn. The image must be RGB
    (``(H, W, 3)`` or ``(B, 3, H, W)``), checked before anything is drawn.

    References
    ----------
    E. D. Cubuk, B. Zoph, J. Shlens, Q. V. Le, "RandAugment: Practical automated
    data augmentation with a reduced search space", CVPR Workshops 2020.
    """
    if not (real_number(m) and 0 <= m <= _MAX_M):  # "9" raised a raw TypeError
        raise InvalidParameterError(f"magnitude m must lie in 0..{_MAX_M}, got {m!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidParameterError(
            f"n (the number of ops to apply) must be an int >= 0, got {n!r}."
        )
    start = image = _check_rgb(as_float(image), "rand_augment")
    rng = _rng(seed)
    names = list(RANDAUGMENT_OPS)
    chosen = [names[i] for i in rng.integers(0, len(names), size=n)]
    for name in chosen:
        image = RANDAUGMENT_OPS[name](image, m / _MAX_M, rng)
    if image is start:  # n = 0 or only "identity": as_float keeps float32, so this
        # was the caller's own image, and editing the result in place edited it
        image = image.copy() if isinstance(image, np.ndarray) else image.clone()
    return image, chosen


def _simclr_blur_radius(size) -> int:
    """SimCLR's blur kernel: 10 % of the view's height, made odd (Chen et al. 2020,
    App. A; google-research/simclr ``random_blur``: ``kernel_size = height // 10``,
    ``radius = kernel_size // 2``, ``2 radius + 1`` taps). 224 px: 23 taps; 32 px: 3."""
    return (size[0] // 10) // 2


def _view(image, size, crop_scale, jitter, p_jitter, p_gray, p_blur, blur_sigma, rng,
          blur_radius=None):
    x, t = G.random_resized_crop(image, size, scale=crop_scale, seed=rng)
    if rng.random() < 0.5:
        x, _ = G.hflip(x)
    if rng.random() < p_jitter:
        x, _ = C.color_jitter(x, *jitter, seed=rng)
    if rng.random() < p_gray:
        x = C.grayscale(x)
    if rng.random() < p_blur:
        x = C.gaussian_blur(x, float(rng.uniform(*blur_sigma)), blur_radius)
    return x


def _check_view(size, p_jitter, p_gray, p_blur, blur_sigma, where: str) -> tuple[int, int]:
    """Refuse bad view parameters up front: drawn lazily, a reversed or negative
    ``blur_sigma`` failed only for the seeds that drew a blur (with a message not
    naming it), and probabilities outside ``[0, 1]`` or NaN passed silently.
    Returns ``size`` as ``(h, w)`` (an int is a square)."""
    size = output_size(size, where)
    for name, p in (("p_jitter", p_jitter), ("p_gray", p_gray), ("p_blur", p_blur)):
        if not (real_number(p) and 0 <= p <= 1):  # also refuses NaN and "0.5"
            raise InvalidParameterError(
                f"{where}: {name} is a probability and must lie in [0, 1], got {p!r}."
            )
    lo, hi = real_pair(blur_sigma, "blur_sigma", where)
    if not 0 < lo <= hi < np.inf:
        raise InvalidParameterError(
            f"{where}: blur_sigma must be (low, high) with 0 < low <= high, finite, "
            f"got {tuple(blur_sigma)!r}."
        )
    return size


def _draw_view(rng, in_size, crop_scale, jitter, p_jitter, p_gray, p_blur, blur_sigma):
    """The draws of :func:`_view`, in its order, without touching pixels."""
    crop = G.random_resized_crop_params(in_size, scale=crop_scale, seed=rng)
    flip = rng.random() < 0.5
    jit = C._jitter_params(rng, *jitter) if rng.random() < p_jitter else None
    gray = rng.random() < p_gray
    sigma = float(rng.uniform(*blur_sigma)) if rng.random() < p_blur else None
    return crop, flip, jit, gray, sigma


def _apply_views(images, size, draws, blur_radius=None):
    """Apply per-image draws to a ``(B, C, H, W)`` batch with one op call per kind."""
    import torch

    if not draws:  # an empty batch: nothing to stack
        return images.new_zeros((0, images.shape[1], *size))

    mats = np.stack([G._resized_crop_matrix(*d[0], size) for d in draws])
    x = G.warp_affine_torch(images, mats, tuple(size), border="edge")

    def rows(pick):
        return torch.tensor([i for i, d in enumerate(draws) if pick(d)], dtype=torch.long)

    def col(values):  # per-image factors, broadcast over (C, H, W), on the images' device
        return torch.tensor(values, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)

    flip = rows(lambda d: d[1])
    if len(flip):
        x[flip] = x[flip].flip(-1)
    ops = (
        lambda v, p: C.adjust_brightness(v, col([q["brightness"] for q in p])),
        lambda v, p: C.adjust_contrast(v, col([q["contrast"] for q in p])),
        lambda v, p: C.adjust_saturation(v, col([q["saturation"] for q in p])),
        lambda v, p: C._shift_hue(v, col([q["hue"] for q in p])[:, 0]),
    )
    for slot in range(4):  # colour_jitter's random order: the op in this slot, per image
        for k, op in enumerate(ops):
            sel = rows(lambda d, slot=slot, k=k: d[2] is not None and d[2]["order"][slot] == k)
            if len(sel):
                x[sel] = op(x[sel], [draws[i][2] for i in sel.tolist()])
    gray = rows(lambda d: d[3])
    if len(gray):
        x[gray] = C.grayscale(x[gray])
    for i in rows(lambda d: d[4] is not None).tolist():  # sigma differs per image
        x[i : i + 1] = C.gaussian_blur(x[i : i + 1], draws[i][4], blur_radius)
    return x


def random_view(
    images,
    size=(224, 224),
    crop_scale: tuple[float, float] = (0.08, 1.0),
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2),
    p_jitter: float = 0.8,
    p_gray: float = 0.2,
    p_blur: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
    seed=None,
):
    """One random two-view-recipe view of every image of a batch, drawn per image.

    Random-resized crop to ``size``, horizontal flip (p=0.5), colour jitter
    ``(brightness, contrast, saturation, hue)`` with probability ``p_jitter``,
    grayscale with ``p_gray``, Gaussian blur with ``p_blur`` and sigma in
    ``blur_sigma`` (a full Gaussian, radius ``ceil(3 sigma)``, as MoCo v2; SimCLR's
    kernel of 10 % of the view is :func:`simclr_views` with ``per_image=True``,
    equally batched). Unlike one call of the ops on a batch (one draw for all),
    each image gets its own draws, and the result equals looping over the
    images ``(1, C, H, W)`` with the same generator; the work is batched (one
    warp for all crops, one op call per jitter step), which is what makes it
    fast on small images.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, 3, H, W)`` in ``[0, 1]``; uint8 / uint16 / bool batches are
        converted to float32 first (uint8 / 255). ``B = 0`` gives an empty batch.
    size : (h, w) or int
        Output size; one int is a square (as torchvision).
    crop_scale : (low, high)
        Area fractions of the random-resized crop.
    jitter : (brightness, contrast, saturation, hue)
        Colour-jitter strengths, as in :func:`color_jitter`.
    p_jitter, p_gray, p_blur : float
        Probabilities of the jitter, the grayscale and the blur, in ``[0, 1]``.
    blur_sigma : (low, high)
        Range of the blur's sigma in pixels, ``0 < low <= high``. These and
        ``size`` are checked before anything is drawn
        (:class:`~boda.errors.InvalidParameterError`).
    seed : int, numpy.random.Generator or None
        ``None`` draws fresh OS entropy. In a ``DataLoader`` with workers, seed
        per worker (see :mod:`boda.augment`, "Seeding and DataLoader workers").

    Returns
    -------
    torch.Tensor
        ``(B, 3, h, w)``. No transforms are returned: this is for training
        without annotations (self-supervised views); when boxes, masks or
        keypoints must follow, use the geometric ops, which return them.

    References
    ----------
    T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations", ICML 2020, App. A.
    """
    if not is_tensor(images) or images.ndim != 4:  # a list raised AttributeError
        shape = getattr(images, "shape", type(images).__name__)
        raise InvalidParameterError(f"random_view needs a (B, C, H, W) tensor, got {shape}.")
    C.check_jitter(*jitter, where="random_view jitter")
    size = _check_view(size, p_jitter, p_gray, p_blur, blur_sigma, "random_view")
    G.check_crop_ranges(crop_scale, (3 / 4, 4 / 3))  # also for an empty batch
    images = _check_rgb(tensor_float(images, "images"), "random_view")
    rng = _rng(seed)
    in_size = tuple(images.shape[-2:])
    draws = [
        _draw_view(rng, in_size, crop_scale, jitter, p_jitter, p_gray, p_blur, blur_sigma)
        for _ in range(images.shape[0])
    ]
    return _apply_views(images, size, draws)


def _two_views(image, size, crop_scale, jitter, seed, per_image, where, simclr_blur=False):
    C.check_jitter(*jitter, where=where)
    args = (crop_scale, jitter, 0.8, 0.2, 0.5, (0.1, 2.0))
    size = _check_view(size, *args[2:], where.split(" ")[0])
    image = _check_rgb(as_float(image), where.split(" ")[0])
    radius = _simclr_blur_radius(size) if simclr_blur else None  # else ceil(3 sigma)
    rng = _rng(seed)
    if not per_image or isinstance(image, np.ndarray):
        return tuple(_view(image, size, *args, rng, radius) for _ in range(2))
    # image by image, first view then second, as a loop over single images would draw
    in_size = tuple(image.shape[-2:])
    draws = [_draw_view(rng, in_size, *args) for _ in range(2 * image.shape[0])]
    return (_apply_views(image, size, draws[0::2], radius),
            _apply_views(image, size, draws[1::2], radius))


def simclr_views(image, size=(224, 224), strength: float = 1.0, seed=None,
                 per_image: bool = False):
    """Two SimCLR views: crop (0.08-1), flip, jitter(0.8s, 0.8s, 0.8s, 0.2s) p=.8,
    grayscale p=.2, blur p=.5 with sigma in [0.1, 2] and a kernel of 10 % of the
    view's height (Chen et al. 2020, App. A): ``2 (h // 10 // 2) + 1`` taps as in
    the authors' code (23 at 224 px, 3 at 32 px, none below 20 px), with
    reflect-101 borders where their TensorFlow code pads with zeros.

    On a torch batch one draw applies to every image, unless ``per_image``:
    then each image gets its own draws (as :func:`random_view`), the same as
    calling this function on each ``(1, C, H, W)`` image in turn. numpy input
    (one ``(H, W, 3)`` image) comes back as float32 in ``[0, 1]``, uint8 / uint16 /
    bool converted first; ``strength`` >= 0 (``strength > 2.5`` makes the hue
    jitter exceed 0.5 and is refused).
    """
    s = strength
    if not (real_number(s) and s >= 0):  # checked before use: "1" raised a TypeError
        raise InvalidParameterError(
            f"simclr_views: strength must be >= 0 (it scales the colour jitter), got {s!r}."
        )
    jitter = (0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    return _two_views(
        image, size, (0.08, 1.0), jitter, seed, per_image, f"simclr_views (strength={s!r})",
        simclr_blur=True,
    )


def moco_v2_views(image, size=(224, 224), seed=None, per_image: bool = False):
    """Two MoCo v2 views: crop (0.2-1), jitter(0.4, 0.4, 0.4, 0.1) p=.8, grayscale
    p=.2, blur p=.5 sigma in [0.1, 2], flip (Chen et al. 2020, "Improved Baselines
    with Momentum Contrastive Learning", arXiv:2003.04297). ``per_image`` as in
    :func:`simclr_views`. The blur is a full Gaussian (radius ``ceil(3 sigma)``),
    as the authors' PIL ``GaussianBlur(radius=sigma)``, not SimCLR's 10 % kernel.
    """
    return _two_views(
        image, size, (0.2, 1.0), (0.4, 0.4, 0.4, 0.1), seed, per_image, "moco_v2_views"
    )
