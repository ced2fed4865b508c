"""Guided image filter (He, Sun & Tang 2010), used to feather a hard mask."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from boda.core.image import as_float_image
from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidImageError, InvalidParameterError

__all__ = ["guided_filter"]


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a ``(2r+1)^2`` window of each channel (reflecting borders)."""
    size = (2 * radius + 1, 2 * radius + 1) + (1,) * (x.ndim - 2)
    return ndimage.uniform_filter(x, size=size, mode="reflect")


def guided_filter(
    guide: np.ndarray, source: np.ndarray, radius: int = 4, eps: float = 1e-3
) -> np.ndarray:
    """Filter ``source`` with edges taken from ``guide`` (the guided filter).

    Inside each ``(2r+1)^2`` window the output is a linear function of the
    guide, ``q = a^T I + b`` (Eq. 1 of the paper; Eq. 19-20 for a colour
    guide), fitted to ``source`` by ridge regression with penalty ``eps``;
    the per-window coefficients are averaged (Eq. 8).  Applied to a binary mask
    with the photo as guide, it gives a soft alpha that follows colour edges
    (hair, fur, blurred borders), the "feathering" use of Sec. 4 of the paper.

    Parameters
    ----------
    guide : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)`` image (uint8/uint16/float in ``[0, 1]``).
    source : numpy.ndarray
        ``(H, W)`` array to filter (e.g. a 0/1 mask).
    radius : int
        Window radius r >= 1, in pixels.
    eps : float
        Regularisation (> 0), in squared guide units: edges whose contrast
        variance is well above ``eps`` are kept, weaker ones smoothed.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``, the filtered source (not clipped).

    Raises
    ------
    InvalidParameterError
        ``radius`` not a whole number >= 1, or ``eps`` not a finite number > 0.
    InvalidImageError
        ``source`` and ``guide`` differ in height/width, or hold NaN or
        infinite values.

    References
    ----------
    K. He, J. Sun, X. Tang, "Guided Image Filtering", ECCV 2010, Eq. 1, 8, 19-20.
    doi:10.1007/978-3-642-15549-9_1

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((20, 20, 3), np.float32); img[:, 10:] = 1
    >>> mask = (img[..., 0] > 0).astype(np.float32)
    >>> alpha = guided_filter(img, mask, radius=2)
    >>> bool(abs(alpha[5, 15] - 1) < 1e-2 and abs(alpha[5, 2]) < 1e-2)
    True
    """
    # NaN radius: a bare ValueError from int(); 2.7 was cut to 2 without a word;
    # infinite eps: NaN everywhere.
    if not (whole_number(radius) and radius >= 1):
        raise InvalidParameterError(
            f"radius must be a whole number >= 1 (pixels), got {radius!r}; e.g. round(radius)"
        )
    if not (real_number(eps) and 0 < eps < math.inf):
        raise InvalidParameterError(f"eps must be a finite number > 0, got {eps!r}")
    radius = int(radius)
    guide_f = as_float_image(guide, name="guide").astype(np.float64)
    p = np.asarray(source, dtype=np.float64)
    if p.shape != guide_f.shape[:2]:
        raise InvalidImageError(
            f"source has shape {p.shape} but guide is {guide_f.shape[:2]}; they must match"
        )
    # One NaN or infinity would spread through the box sums (and the 3x3
    # solves) into nearly every output pixel.
    for name, arr in (("guide", guide_f), ("source", p)):
        if not np.isfinite(arr).all():
            raise InvalidImageError(
                f"{name} contains NaN or infinite values; replace them first, "
                f"e.g. np.nan_to_num({name})"
            )
    mean_p = _box(p, radius)
    if guide_f.ndim == 2:
        mean_i = _box(guide_f, radius)
        cov_ip = _box(guide_f * p, radius) - mean_i * mean_p
        var_i = _box(guide_f * guide_f, radius) - mean_i * mean_i
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return (_box(a, radius) * guide_f + _box(b, radius)).astype(np.float32)
    mean_i = _box(guide_f, radius)
    cov_ip = _box(guide_f * p[..., None], radius) - mean_i * mean_p[..., None]
    # Per-pixel 3x3 covariance of the guide in the window, plus eps * I (Eq. 19).
    outer = guide_f[..., :, None] * guide_f[..., None, :]
    sigma = _box(outer.reshape(*p.shape, 9), radius).reshape(*p.shape, 3, 3)
    sigma -= mean_i[..., :, None] * mean_i[..., None, :]
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    q = (_box(a, radius) * guide_f).sum(-1) + _box(b, radius)
    return q.astype(np.float32)
