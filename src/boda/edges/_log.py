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
    two separable second-derivative-of-Gaussian filters (truncated at 4
    sigma; the sampled second derivative's mean is removed so that the kernel
    sums to 0, as the operator integrates to 0: a flat image gives 0).  The
    ``sigma^2`` factor makes responses comparable across scales.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``; positive on the dark side of an edge.
    """
    if not 0 < sigma < np.inf:  # also refuses nan
        raise InvalidParameterError(f"sigma must be a finite number > 0 for the LoG, got {sigma}")
    mode = scipy_border_mode(border)
    ndimage = scipy_ndimage()
    gray = gray_image(image).astype(np.float64)
    # The sampled kernels of scipy's gaussian_laplace (truncated at 4 sigma), but
    # with the second derivative's mean removed, as MATLAB's fspecial('log') does:
    # sampled, it does not sum to 0, so a flat image of 1 gave -0.28 at sigma 0.5
    # (-0.0013 at sigma 4), an offset proportional to brightness that hid a
    # 0.5 -> 0.9 step at sigma 0.5.  The kernels are symmetric, so a linear ramp
    # gives 0 too.
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss = np.exp(-0.5 * (x / sigma) ** 2)
    gauss /= gauss.sum()
    second = gauss * (x * x - sigma * sigma) / sigma**4
    second -= second.mean()
    response = ndimage.correlate1d(
        ndimage.correlate1d(gray, second, axis=1, mode=mode), gauss, axis=0, mode=mode
    )
    response += ndimage.correlate1d(
        ndimage.correlate1d(gray, gauss, axis=1, mode=mode), second, axis=0, mode=mode
    )
    # A flat region now sums to rounding noise (1e-17) instead of exactly 0, whose
    # random signs would be zero crossings at threshold 0: below 1e-9 of the
    # image's peak (far under float32's resolution of the result) it is 0.
    peak = float(np.abs(gray).max())
    del gray
    response[np.abs(response) < 1e-9 * peak] = 0.0
    response *= sigma * sigma  # in place: one float64 image fewer at the peak
    return response.astype(np.float32)


def zero_crossings(response: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Mark sign changes of ``response`` with a slope of at least ``threshold``.

    For every horizontally or vertically adjacent pair ``(p, q)`` of opposite
    signs, the pixel whose value is closer to zero (on a tie, the negative
    one) is marked, giving a
    one-pixel-wide line, if ``|response[p] - response[q]| >= threshold`` — the
    "slope" test that discards the weak crossings noise makes [1]_ (sec. 3).
    A pixel that is exactly 0 is the crossing itself when its two neighbours
    along a row or column have opposite signs (the jump then is theirs, as in
    MATLAB's ``edge(..., 'log')``); a 0 next to values of one sign is not a
    crossing: the response touches zero there without changing sign (the
    Gaussian's truncated tail, a flat region beside an edge).

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
        # Strictly opposite signs.  Not "one of the two is 0": every region where
        # the response is 0 beside an edge's lobe (4 sigma out, where the Gaussian
        # is cut off) was marked, a false outline around every edge at threshold 0.
        cross = ((a < 0) & (b > 0)) | ((a > 0) & (b < 0))
        cross &= np.abs(a - b) >= threshold
        # The pixel nearer zero; on a tie the negative one (MATLAB's pixel), so
        # that flipping the image flips the edges (a symmetric step ties exactly).
        closer = np.abs(a) - np.abs(b)
        take_a = cross & ((closer < 0) | ((closer == 0) & (a < 0)))
        take_b = cross & ~take_a
        # A 0 between opposite signs: the crossing passes through that pixel.
        lo = r[:-2, :] if axis == 0 else r[:, :-2]
        mid = r[1:-1, :] if axis == 0 else r[:, 1:-1]
        hi = r[2:, :] if axis == 0 else r[:, 2:]
        through = (mid == 0) & (((lo < 0) & (hi > 0)) | ((lo > 0) & (hi < 0)))
        through &= np.abs(hi - lo) >= threshold
        if axis == 0:
            out[:-1, :] |= take_a
            out[1:, :] |= take_b
            out[1:-1, :] |= through
        else:
            out[:, :-1] |= take_a
            out[:, 1:] |= take_b
            out[:, 1:-1] |= through
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
    >>> np.flatnonzero(log_edges(step, sigma=1.5)[8]).tolist()  # a tie: the negative side
    [8]
    """
    response = laplacian_of_gaussian(image, sigma, border=border)
    if threshold is None:
        threshold = 0.75 * float(np.mean(np.abs(response)))
    if not 0 <= threshold < np.inf:  # also refuses nan
        raise InvalidParameterError(f"threshold must be a finite number >= 0, got {threshold}")
    return zero_crossings(response, threshold)
