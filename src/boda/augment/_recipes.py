"""RandAugment and the SimCLR / MoCo v2 two-view recipes (numpy or torch single images)."""

from __future__ import annotations

import numpy as np

from boda.augment import _color as C
from boda.augment import _geometric as G
from boda.errors import InvalidParameterError

_MAX_M = 30  # RandAugment's magnitude scale


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _signed(level, rng):
    return level if rng.random() < 0.5 else -level


# name -> (image, magnitude in [0, 1], rng) -> image ; geometric ops keep their Transform
RANDAUGMENT_OPS = {
    "identity": lambda x, m, rng: x,
    "rotate": lambda x, m, rng: G.rotate(x, _signed(30 * m, rng))[0],
    "shear_x": lambda x, m, rng: G.affine(x, shear=(_signed(17 * m, rng), 0.0))[0],
    "shear_y": lambda x, m, rng: G.affine(x, shear=(0.0, _signed(17 * m, rng)))[0],
    "translate_x": lambda x, m, rng: G.affine(
        x, translate=(_signed(0.45 * m * G._size(x)[1], rng), 0.0))[0],
    "translate_y": lambda x, m, rng: G.affine(
        x, translate=(0.0, _signed(0.45 * m * G._size(x)[0], rng)))[0],
    "brightness": lambda x, m, rng: C.adjust_brightness(x, 1 + _signed(0.9 * m, rng)),
    "contrast": lambda x, m, rng: C.adjust_contrast(x, 1 + _signed(0.9 * m, rng)),
    "color": lambda x, m, rng: C.adjust_saturation(x, 1 + _signed(0.9 * m, rng)),
    "solarize": lambda x, m, rng: C.solarize(x, 1.0 - m),
    "posterize": lambda x, m, rng: C.posterize(x, max(1, 8 - int(round(4 * m)))),
    "equalize": lambda x, m, rng: C.equalize(x),
    "autocontrast": lambda x, m, rng: C.autocontrast(x),
    "sharpness": lambda x, m, rng: C.adjust_sharpness(x, 1 + _signed(0.9 * m, rng)),
}


def rand_augment(image, n: int = 2, m: int = 9, seed=None):
    """RandAugment: apply ``n`` ops drawn uniformly, all at magnitude ``m`` (0..30).

    Returns ``(image, ops)`` with the names applied, in order.

    References
    ----------
    E. D. Cubuk, B. Zoph, J. Shlens, Q. V. Le, "RandAugment: Practical automated
    data augmentation with a reduced search space", CVPR Workshops 2020.
    """
    if not 0 <= m <= _MAX_M:
        raise InvalidParameterError(f"magnitude m must lie in 0..{_MAX_M}, got {m!r}.")
    rng = _rng(seed)
    names = list(RANDAUGMENT_OPS)
    chosen = [names[i] for i in rng.integers(0, len(names), size=n)]
    for name in chosen:
        image = RANDAUGMENT_OPS[name](image, m / _MAX_M, rng)
    return image, chosen


def _view(image, size, crop_scale, jitter, p_jitter, p_gray, p_blur, blur_sigma, rng):
    x, t = G.random_resized_crop(image, size, scale=crop_scale, seed=rng)
    if rng.random() < 0.5:
        x, _ = G.hflip(x)
    if rng.random() < p_jitter:
        x, _ = C.color_jitter(x, *jitter, seed=rng)
    if rng.random() < p_gray:
        x = C.grayscale(x)
    if rng.random() < p_blur:
        x = C.gaussian_blur(x, float(rng.uniform(*blur_sigma)))
    return x


def simclr_views(image, size=(224, 224), strength: float = 1.0, seed=None):
    """Two SimCLR views: crop (0.08-1), flip, jitter(0.8s, 0.8s, 0.8s, 0.2s) p=.8,
    grayscale p=.2, blur p=.5 with sigma in [0.1, 2] (Chen et al. 2020, App. A).
    """
    rng = _rng(seed)
    s = strength
    jitter = (0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    return tuple(
        _view(image, size, (0.08, 1.0), jitter, 0.8, 0.2, 0.5, (0.1, 2.0), rng) for _ in range(2)
    )


def moco_v2_views(image, size=(224, 224), seed=None):
    """Two MoCo v2 views: crop (0.2-1), jitter(0.4, 0.4, 0.4, 0.1) p=.8, grayscale
    p=.2, blur p=.5 sigma in [0.1, 2], flip (Chen et al. 2020, "Improved Baselines
    with Momentum Contrastive Learning", arXiv:2003.04297).
    """
    rng = _rng(seed)
    return tuple(
        _view(image, size, (0.2, 1.0), (0.4, 0.4, 0.4, 0.1), 0.8, 0.2, 0.5, (0.1, 2.0), rng)
        for _ in range(2)
    )
