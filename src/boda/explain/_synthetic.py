"""A seeded synthetic benchmark with known object locations (numpy only;
the class names come from :mod:`boda.nn` so the model registry can use them).

Each image holds one shape (circle, square, triangle or cross) of random size,
rotation and colour on a textured background (a random sinusoidal grating plus
noise and a few small distractor dots).  The shape's class, pixel mask and box
are known exactly, so a map's localisation can be scored (pointing game) and a
small CNN trained on it in minutes on a CPU (:mod:`boda.nn` ships one,
``"shapes-cnn"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from boda.errors import InvalidParameterError
from boda.nn._shapes_cnn import SHAPE_CLASSES

__all__ = ["SHAPE_CLASSES", "ShapesDataset", "make_shapes"]


@dataclass
class ShapesDataset:
    """Images with one known object each.

    Attributes
    ----------
    images : numpy.ndarray
        float32 ``(N, H, W, 3)`` in ``[0, 1]``.
    labels : numpy.ndarray
        int64 ``(N,)`` indices into :data:`SHAPE_CLASSES`.
    masks : numpy.ndarray
        bool ``(N, H, W)``, True on the object.
    boxes : numpy.ndarray
        int64 ``(N, 4)`` object boxes ``(x0, y0, x1, y1)``, ends exclusive.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _rotate(u: np.ndarray, v: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * u + s * v, -s * u + c * v


def _shape_mask(kind: int, size: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    u, v = _rotate(xx - cx, yy - cy, angle)
    if kind == 0:  # circle
        return u**2 + v**2 <= r**2
    if kind == 1:  # square, half-side 0.8 r
        return (np.abs(u) <= 0.8 * r) & (np.abs(v) <= 0.8 * r)
    if kind == 2:  # equilateral triangle inscribed in the circle of radius r
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):  # three half-planes at distance r / 2 from the centre
            a = 2 * np.pi * k / 3
            inside &= u * np.cos(a) + v * np.sin(a) <= 0.5 * r
        return inside
    # cross: two bars of half-width 0.3 r and half-length r
    return ((np.abs(u) <= r) & (np.abs(v) <= 0.3 * r)) | (
        (np.abs(v) <= r) & (np.abs(u) <= 0.3 * r)
    )


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(0.15, 0.85, 3), rng.uniform(0.15, 0.85, 3)
    theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(1.5, 6.0), rng.uniform(0, 2 * np.pi)
    g = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
    img = c0 + (c1 - c0) * 0.6 * g[..., None] + rng.normal(0, 0.03, (size, size, 3))
    for _ in range(rng.integers(0, 4)):  # small distractor dots, 1-2 px
        y, x = rng.integers(0, size - 2, 2)
        d = rng.integers(1, 3)
        img[y : y + d, x : x + d] = rng.uniform(0, 1, 3)
    return img


def make_shapes(
    n: int,
    *,
    size: int = 32,
    seed: int = 0,
    min_radius: float = 0.16,
    max_radius: float = 0.3,
) -> ShapesDataset:
    """Generate ``n`` images of the synthetic shapes benchmark, reproducibly.

    Parameters
    ----------
    n : int
        Number of images (classes are balanced: label ``i % 4`` for image ``i``).
    size : int
        Side of the square images in pixels.
    seed : int
        Seed; the same seed gives the same images.
    min_radius, max_radius : float
        Object radius range as a fraction of ``size``.

    Returns
    -------
    ShapesDataset

    Examples
    --------
    >>> ds = make_shapes(8, seed=1)
    >>> ds.images.shape, ds.labels[:4].tolist()
    ((8, 32, 32, 3), [0, 1, 2, 3])
    """
    if int(n) < 1 or int(size) < 8 or not 0 < min_radius <= max_radius < 0.5:
        raise InvalidParameterError(
            "need n >= 1, size >= 8 and 0 < min_radius <= max_radius < 0.5"
        )
    rng = np.random.default_rng(int(seed))
    images = np.empty((n, size, size, 3), np.float32)
    masks = np.empty((n, size, size), bool)
    labels = np.arange(n, dtype=np.int64) % len(SHAPE_CLASSES)
    boxes = np.empty((n, 4), np.int64)
    for i in range(n):
        bg = _background(rng, size)
        r = rng.uniform(min_radius, max_radius) * size
        cx, cy = rng.uniform(r, size - r, 2)
        mask = _shape_mask(int(labels[i]), size, cx, cy, r, rng.uniform(0, 2 * np.pi))
        colour = rng.uniform(0, 1, 3)
        mean_bg = bg[mask].mean(0) if mask.any() else bg.mean((0, 1))
        if np.abs(colour - mean_bg).max() < 0.35:  # keep the object visible
            colour = np.where(mean_bg > 0.5, mean_bg - 0.45, mean_bg + 0.45)
        bg[mask] = colour + rng.normal(0, 0.02, (int(mask.sum()), 3))
        images[i] = np.clip(bg, 0, 1)
        masks[i] = mask
        ys, xs = np.nonzero(mask)
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return ShapesDataset(images=images, labels=labels, masks=masks, boxes=boxes)
