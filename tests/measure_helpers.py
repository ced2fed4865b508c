"""Inputs shared by the tests of the measures' argument checks (``import measure_helpers``)."""

from __future__ import annotations

import numpy as np

#: Values a measure must refuse in an image or a numeric option.
NON_FINITE = [np.nan, np.inf, -np.inf]


def smooth_image(rng: np.random.Generator, shape=(48, 64, 3)) -> np.ndarray:
    """A smooth sine pattern with a little noise, float32 in [0, 1]: every measure has
    something to measure."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]] / 9.0
    base = 0.5 + 0.4 * np.sin(x + 0.3 * y)
    img = base[..., None] * np.ones(shape[2:]) if len(shape) == 3 else base
    return np.clip(img + 0.03 * rng.random(shape), 0, 1).astype(np.float32)
