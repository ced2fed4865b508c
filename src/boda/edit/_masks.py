"""Irregular hole masks for inpainting experiments (strokes, ellipses, lines).

Masks like the ones used to train and evaluate free-form inpainting models
(Liu et al. 2018, "Image Inpainting for Irregular Holes Using Partial
Convolutions"; Yu et al. 2019, "Free-Form Image Inpainting with Gated
Convolution"): a random mix of brush strokes, filled ellipses and straight
thick lines, added until a target fraction of the image is a hole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError

__all__ = ["random_irregular_mask"]

_KINDS = ("strokes", "ellipses", "lines")


def _segment(mask: np.ndarray, p0: np.ndarray, p1: np.ndarray, radius: float) -> None:
    """Burn a segment of half-width ``radius`` (round caps) into ``mask``."""
    h, w = mask.shape
    lo = np.floor(np.minimum(p0, p1) - radius).astype(int)
    hi = np.ceil(np.maximum(p0, p1) + radius).astype(int) + 1
    y0, x0 = max(lo[0], 0), max(lo[1], 0)
    y1, x1 = min(hi[0], h), min(hi[1], w)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    d = p1 - p0
    length2 = float(d @ d)
    if length2 == 0.0:
        t = np.zeros_like(yy)
    else:
        t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / length2, 0.0, 1.0)
    dist2 = (yy - p0[0] - t * d[0]) ** 2 + (xx - p0[1] - t * d[1]) ** 2
    mask[y0:y1, x0:x1] |= dist2 <= radius * radius


def _ellipse(mask: np.ndarray, centre: np.ndarray, a: float, b: float, angle: float) -> None:
    h, w = mask.shape
    r = max(a, b)
    y0, x0 = max(int(centre[0] - r), 0), max(int(centre[1] - r), 0)
    y1, x1 = min(int(centre[0] + r) + 2, h), min(int(centre[1] + r) + 2, w)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dy, dx = yy - centre[0], xx - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    mask[y0:y1, x0:x1] |= (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _draw(kind: str, shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """One random shape of the given kind; ``scale`` shrinks it when close to the target."""
    h, w = shape
    side = min(h, w)
    out = np.zeros(shape, dtype=bool)
    start = rng.uniform((0, 0), (h, w))
    width = max(1.0, scale * rng.uniform(0.01, 0.05) * side)
    if kind == "strokes":
        p = start
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(3, 9))):
            angle += rng.uniform(-np.pi / 2, np.pi / 2)
            step = scale * rng.uniform(0.05, 0.2) * side
            q = p + step * np.array([np.sin(angle), np.cos(angle)])
            _segment(out, p, q, width)
            p = q
    elif kind == "lines":
        angle = rng.uniform(0, np.pi)
        length = scale * rng.uniform(0.2, 0.6) * side
        q = start + length * np.array([np.sin(angle), np.cos(angle)])
        _segment(out, start, q, width / 2)
    else:
        a = scale * rng.uniform(0.03, 0.15) * side
        b = a * rng.uniform(0.3, 1.0)
        _ellipse(out, start, max(a, 1.0), max(b, 1.0), rng.uniform(0, np.pi))
    return out


def random_irregular_mask(
    shape: tuple[int, int],
    hole_ratio: float = 0.2,
    *,
    kinds: Sequence[str] = _KINDS,
    tolerance: float = 0.01,
    seed: int | np.random.Generator | None = None,
    max_shapes: int = 10_000,
) -> np.ndarray:
    """Draw a random free-form hole mask with a target hole ratio.

    Shapes of the chosen ``kinds`` (brush ``"strokes"``: a random walk drawn
    with a round brush; filled ``"ellipses"``; thick straight ``"lines"``) are
    added one at a time.  A shape that would overshoot the target by more than
    ``tolerance`` is redrawn smaller, so the result's hole fraction lands in
    ``[hole_ratio - tolerance, hole_ratio + tolerance]`` (images too small to
    draw that finely may miss it; the closest mask drawn is then returned).

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the mask.
    hole_ratio : float
        Target fraction of hole pixels, in ``(0, 1)``.
    kinds : sequence of str
        Any of ``"strokes"``, ``"ellipses"``, ``"lines"``.
    tolerance : float
        Allowed absolute error on the hole fraction.
    seed : int, numpy.random.Generator or None
        Seed for reproducible masks.
    max_shapes : int
        Safety cap on the number of shapes tried.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``, ``True`` = hole (the convention of :func:`inpaint`).

    Raises
    ------
    InvalidParameterError
        For a ratio outside ``(0, 1)``, an unknown kind, a bad shape (sides not
        whole numbers >= 1), a tolerance that is not a number > 0 or a
        ``max_shapes`` that is not a whole number >= 1.

    References
    ----------
    .. [1] G. Liu et al., "Image Inpainting for Irregular Holes Using Partial
           Convolutions", ECCV 2018 (irregular mask data set).
    .. [2] J. Yu et al., "Free-Form Image Inpainting with Gated Convolution",
           ICCV 2019 (random brush-stroke masks).

    Examples
    --------
    >>> m = random_irregular_mask((128, 128), 0.25, seed=0)
    >>> bool(abs(m.mean() - 0.25) <= 0.01)
    True
    """
    # Whole numbers and real numbers only: a 50.7 side was cut to 50, a NaN
    # tolerance taken (every shape then fitted), "0.2" or 2.5 shapes failed
    # with a bare TypeError.
    try:
        sides = tuple(shape)
    except TypeError:
        sides = ()
    if len(sides) != 2 or not all(whole_number(side) and side >= 1 for side in sides):
        raise InvalidParameterError(
            f"shape must be (height, width) with positive whole sides, got {shape!r}"
        )
    if not (real_number(hole_ratio) and 0.0 < hole_ratio < 1.0):
        raise InvalidParameterError(f"hole_ratio must be a number in (0, 1), got {hole_ratio!r}")
    if not (real_number(tolerance) and tolerance > 0):
        raise InvalidParameterError(f"tolerance must be a number > 0, got {tolerance!r}")
    if not (whole_number(max_shapes) and max_shapes >= 1):
        raise InvalidParameterError(f"max_shapes must be a whole number >= 1, got {max_shapes!r}")
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)  # "lines", not l-i-n-e-s
    bad = [k for k in kinds if k not in _KINDS]
    if not kinds or bad:
        raise InvalidParameterError(f"unknown mask kinds {bad or kinds}; choose from {_KINDS}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    total = shape[0] * shape[1]
    mask = np.zeros(shape, dtype=bool)
    holes = 0
    scale = 1.0
    misses = 0
    for _ in range(max_shapes):
        if holes >= hole_ratio * total:
            break
        shape_mask = _draw(kinds[int(rng.integers(len(kinds)))], shape, scale, rng)
        added = int(np.count_nonzero(shape_mask & ~mask))
        if holes + added > (hole_ratio + tolerance / 2) * total:
            scale = max(scale * 0.7, 0.02)  # too big: try smaller shapes from now on
            misses += 1
            if misses > 50 and holes >= (hole_ratio - tolerance) * total:
                break
            continue
        mask |= shape_mask
        holes += added
    return mask
