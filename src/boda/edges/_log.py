"""Marr-Hildreth edges: zero crossings of the Laplacian of Gaussian.

References
----------
.. [1] D. Marr and E. Hildreth, "Theory of edge detection", Proc. R. Soc.
       Lond. B 207:187-217, 1980. DOI:10.1098/rspb.1980.0020
"""

from __future__ import annotations

import numpy as np

from boda.core.lazy import scipy_ndimage
from boda.edges._common import gray_image
from boda.errors import InvalidParameterError
from boda.filters import scipy_border_mode

__all__ = ["laplacian_of_gaussian", "log_edges", "zero_crossings"]


def laplacian_of_gaussian(
    image: np.ndarray, sigma: float = 2.0, *, border: str = "reflect"
) -> np.ndarray:
    """Scale-normalised Laplacian of Gaussian ``sigma^2 * (nabla^2 G_sigma * I)``.

    Marr and Hildreth's operator [1]_ (eq. 7: ``nabla^2 G(r) = -(1/(pi sigma^4))
    (1 - r^2 / (2 sigma^2)) exp(-r^2 / (2 sigma^2))``), computed as the sum of
    two separable second-derivative-of-Gaussian filters.  The ``sigma^2``
    factor makes responses comparable across scales.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``; positive on the dark side of an edge.
    """
    if not 0 < sigma < np.inf:  # also refuses nan
        raise InvalidParameterError(f"sigma must be a finite number > 0 for the LoG, got {sigma}")
    mode = scipy_border_mode(border)
    gray = gray_image(image).astype(np.float64)
    response = scipy_ndimage().gaussian_laplace(gray, sigma, mode=mode)
    del gray
    response *= sigma * sigma  # in place: one float64 image fewer at the peak
    return response.astype(np.float32)


def zero_crossings(response: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Mark sign changes of ``response`` with a slope of at least ``threshold``.

    For every horizontally or vertically adjacent pair ``(p, q)`` with
    ``response[p] * response[q] < 0`` (or one of them exactly 0 and the other
    non-zero), the pixel whose value is closer to zero is marked, giving a
    one-pixel-wide line, if ``|response[p] - response[q]| >= threshold`` — the
    "slope" test that discards the weak crossings noise makes [1]_ (sec. 3).

    Returns
    -------
    numpy.ndarray
        bool, same shape as ``response``.
    """
    r = np.asarray(response, np.float32)
    if r.ndim != 2:
        raise InvalidParameterError(f"response must be 2-D, got shape {r.shape}")
    out = np.zeros(r.shape, bool)
    for axis in (0, 1):
        a = r[:-1, :] if axis == 0 else r[:, :-1]
        b = r[1:, :] if axis == 0 else r[:, 1:]
        # Opposite signs, or exactly one of the two is 0: the rule is the same
        # whichever of p and q comes first, so flipping the image flips the edges.
        cross = (np.sign(a) != np.sign(b)) & ((a != 0) | (b != 0))
        cross &= np.abs(a - b) >= threshold
        take_a = cross & (np.abs(a) <= np.abs(b))
        take_b = cross & ~take_a
        if axis == 0:
            out[:-1, :] |= take_a
            out[1:, :] |= take_b
        else:
            out[:, :-1] |= take_a
            out[:, 1:] |= take_b
    return out


def log_edges(
    image: np.ndarray,
    sigma: float = 2.0,
    threshold: float | None = None,
    *,
    border: str = "reflect",
) -> np.ndarray:
    """Marr-Hildreth edge map: zero crossings of the LoG with a slope threshold.

    Being a second-derivative method, it puts a ramp edge (a gradual
    transition) at the ramp's centre of inflection in one pixel, where a
    threshold on the first derivative marks the whole ramp.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)``; colour is reduced to Rec. 601 luma.
    sigma : float
        Scale of the Gaussian in pixels (Marr-Hildreth's ``sigma``).
    threshold : float, optional
        Minimum jump of the scale-normalised LoG across a crossing.  The default
        is ``0.75 * mean(|LoG|)`` (MATLAB ``edge(..., 'log')``'s rule); 0 keeps
        every crossing.  A unit step edge has a jump of about ``0.4 / sigma``.
    border : str
        Border handling, see :data:`boda.filters.BORDER_MODES`.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)`` edge map.

    References
    ----------
    .. [1] D. Marr and E. Hildreth, "Theory of edge detection", Proc. R. Soc.
           Lond. B 207:187-217, 1980 (eq. 7, the nabla^2 G operator; sec. 3,
           zero crossings).

    Examples
    --------
    >>> import numpy as np
    >>> step = np.zeros((16, 16), np.float32); step[:, 8:] = 1
    >>> np.flatnonzero(log_edges(step, sigma=1.5)[8]).tolist()
    [7]
    """
    response = laplacian_of_gaussian(image, sigma, border=border)
    if threshold is None:
        threshold = 0.75 * float(np.mean(np.abs(response)))
    if not 0 <= threshold < np.inf:  # also refuses nan
        raise InvalidParameterError(f"threshold must be a finite number >= 0, got {threshold}")
    return zero_crossings(response, threshold)
