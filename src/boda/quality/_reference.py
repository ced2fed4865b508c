"""Full-reference measures: MSE, PSNR and SSIM."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from boda.core.image import as_float_image, finite_pixels
from boda.core.numbers import real_number
from boda.errors import InvalidImageError, InvalidParameterError

__all__ = ["compare", "mse", "psnr", "ssim"]


def _pair(
    image: np.ndarray, reference: np.ndarray, data_range: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float32 (no copy of a float32 array); the measures below
    widen row strips of them to float64, so no full-size float64 copy is made.
    NaN or infinite pixels are refused: they would make every score NaN."""
    # A data_range above 1 says the values are on another scale (255, say) on purpose.
    unit = data_range <= 1.0
    if data_range != 1.0:
        for name, pixels in (("image", image), ("reference", reference)):
            dtype = np.asarray(pixels).dtype
            if not np.issubdtype(dtype, np.floating):
                # uint8 is divided by 255 below: a data_range of 255 gave 80 dB for 33.
                raise InvalidParameterError(
                    f"{name} is {dtype}, which boda scales to [0, 1] before measuring: "
                    f"leave data_range at 1 (got {data_range:g}), or pass float pixels "
                    "on the scale data_range describes"
                )
    a = finite_pixels(as_float_image(image, name="image", unit_range=unit), "image")
    b = finite_pixels(as_float_image(reference, name="reference", unit_range=unit), "reference")
    if a.shape != b.shape:
        raise InvalidImageError(
            f"image {a.shape} and reference {b.shape} must have the same shape; "
            "resize one of them first"
        )
    return a, b


#: Values per row strip (float64 temporaries of ~8 MB each): the measures keep
#: a few strips alive instead of ~10 full-size copies (22x the image at 50 MP).
_STRIP_VALUES = 1 << 20


def _strips(height: int, row_values: int, min_rows: int = 1) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) covering ``height`` rows in strips of about _STRIP_VALUES."""
    rows = max(min_rows, _STRIP_VALUES // max(row_values, 1), 1)
    return [(r0, min(r0 + rows, height)) for r0 in range(0, height, rows)]


def _mean_squared_error(a: np.ndarray, b: np.ndarray) -> float:
    """mean((a - b)^2) in float64, strip by strip."""
    total = 0.0
    for r0, r1 in _strips(a.shape[0], a[0].size):
        diff = a[r0:r1].astype(np.float64)
        diff -= b[r0:r1]
        total += float(np.square(diff, out=diff).sum())  # pairwise sum, as np.mean
    return total / a.size


def _check_data_range(data_range: float) -> float:
    """``data_range`` as a Python float (a numpy float32 would make the PSNR float32), or
    InvalidParameterError when it is not a positive finite number (NaN gave a NaN PSNR)."""
    if not (real_number(data_range) and 0 < data_range < math.inf):
        raise InvalidParameterError(
            f"data_range must be a positive number (1 for boda's float images), got {data_range!r}"
        )
    return float(data_range)


def _psnr_of(err: float, data_range: float) -> float:
    """PSNR in dB of a mean squared error ``err``."""
    return float("inf") if err == 0 else float(10.0 * np.log10(data_range**2 / err))


def mse(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean squared error over all pixels and channels (values in ``[0, 1]``).

    Examples
    --------
    >>> import numpy as np
    >>> mse(np.zeros((4, 4)), np.full((4, 4), 0.5))
    0.25
    """
    a, b = _pair(image, reference)
    return _mean_squared_error(a, b)


def psnr(image: np.ndarray, reference: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``.

    Returns ``inf`` for identical images.  ``data_range`` other than 1 is for
    float pixels on another scale (0-255 floats, say): uint8 and uint16 images
    are scaled to ``[0, 1]`` first, and refused with another ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> round(psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)), 3)
    20.0
    """
    data_range = _check_data_range(data_range)
    a, b = _pair(image, reference, data_range)
    return _psnr_of(_mean_squared_error(a, b), data_range)


def ssim(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    full: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window.

    ``SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 +
    C1)(sigma_x^2 + sigma_y^2 + C2))`` (eq. 13 of [1]_), ``C1 = (K1 L)^2``,
    ``C2 = (K2 L)^2``, local statistics under a Gaussian window of ``sigma =
    1.5`` (truncated at 3.5 sigma, i.e. 11x11) with population (biased)
    variances.  The mean is taken over the pixels whose window lies inside the
    image, and over channels for RGB; this matches
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1)``.  It is computed
    in row strips (each with the window's halo), in float64: the map is the
    whole-image computation's bit for bit, and memory stays at the two
    float32 inputs plus a few strips, not ~20x the image.

    Parameters
    ----------
    image, reference : numpy.ndarray
        Same shape, ``(H, W)`` or ``(H, W, 3)``, at least 11 x 11.
    data_range : float
        ``L``, the dynamic range (1 for boda's float images).  Other values
        only for float pixels on another scale: uint8 and uint16 images are
        scaled to ``[0, 1]`` first, so they need 1.
    sigma, k1, k2 : float
        The paper's constants.
    full : bool
        Also return the SSIM map (mean over channels for RGB).

    Returns
    -------
    float or (float, numpy.ndarray)

    Raises
    ------
    InvalidParameterError
        ``data_range`` or ``sigma`` not a positive number, ``k1`` or ``k2`` not a
        non-negative number, or ``data_range`` other than 1 for integer images.
    InvalidImageError
        Images of different shapes, smaller than the window, or holding NaN or
        infinite values.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image
       quality assessment: from error visibility to structural similarity",
       IEEE Trans. Image Processing 13(4), 600-612, 2004.
       DOI:10.1109/TIP.2003.819861

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((32, 32))
    >>> ssim(x, x)
    1.0
    """
    from scipy import ndimage  # imported here: `boda scan` never needs it (start-up time)

    data_range = _check_data_range(data_range)
    # real_number: True was a 1-px Gaussian (or K = 1) and "1.5" a TypeError.
    if not (real_number(sigma) and 0 < sigma < math.inf):
        raise InvalidParameterError(
            f"sigma must be a positive number of pixels (the paper's is 1.5), got {sigma!r}"
        )
    for name, value, paper in (("k1", k1, 0.01), ("k2", k2, 0.03)):
        # NaN or infinity made the SSIM NaN; negative K is refused as scikit-image does.
        if not (real_number(value) and 0 <= value < math.inf):
            raise InvalidParameterError(
                f"{name} must be a small non-negative number (the paper's is {paper}), "
                f"got {value!r}"
            )
    a, b = _pair(image, reference, data_range)
    truncate = 3.5
    radius = int(truncate * sigma + 0.5)
    if min(a.shape[:2]) < 2 * radius + 1:
        raise InvalidImageError(
            f"SSIM needs images of at least {2 * radius + 1}x{2 * radius + 1} pixels, "
            f"got {a.shape[:2]}"
        )
    sig = (sigma, sigma, 0) if a.ndim == 3 else sigma
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, sig, mode="reflect", truncate=truncate)

    # Row strips with a halo of ``radius`` rows: the separable filter's output
    # rows inside a strip read only rows of the strip plus halo (and the image's
    # own reflected border at its ends), so the map is the whole image's, bit
    # for bit, while only a few strips of float64 temporaries exist at a time.
    rows, cols = a.shape[:2]
    smap_full = np.empty((rows, cols)) if full else None
    total = 0.0
    for r0, r1 in _strips(rows, a[0].size, min_rows=8 * max(radius, 1)):
        s0, s1 = max(r0 - radius, 0), min(r1 + radius, rows)
        sa, sb = a[s0:s1].astype(np.float64), b[s0:s1].astype(np.float64)
        mu_a, mu_b = blur(sa), blur(sb)
        var_a = blur(sa * sa) - mu_a**2
        var_b = blur(sb * sb) - mu_b**2
        cov = blur(sa * sb) - mu_a * mu_b
        smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
            (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        )
        smap = smap[r0 - s0 : r1 - s0]
        if smap.ndim == 3:
            smap = smap.mean(axis=2)
        if smap_full is not None:
            smap_full[r0:r1] = smap
        # The mean is over pixels whose window lies inside the image.  Explicit
        # ends: with sigma < 1/7 the window is 1x1, radius is 0 and ``x[0:-0]``
        # would be empty.
        lo, hi = max(r0, radius), min(r1, rows - radius)
        if hi > lo:
            total += float(smap[lo - r0 : hi - r0, radius : cols - radius].sum())
    value = total / ((rows - 2 * radius) * (cols - 2 * radius))
    return (value, smap_full) if full else value


def compare(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """MSE, PSNR and SSIM of ``image`` against ``reference`` in one pass over the pair.

    The values are :func:`mse`, :func:`psnr` and :func:`ssim` of the pair, bit for
    bit, with their defaults (values in ``[0, 1]``, ``data_range`` 1); the squared
    error is summed once for both MSE and PSNR, and the images are converted to
    float32 once for all three (``boda quality --reference`` calls this).

    Parameters
    ----------
    image, reference : numpy.ndarray
        Same shape, ``(H, W)`` or ``(H, W, 3)``, uint8/uint16 or float in
        ``[0, 1]``, at least 11 x 11 (SSIM's window).
    progress : callable, optional
        Called as ``progress(done, total)`` after each of the two steps (MSE and
        PSNR, then SSIM), ``total`` being 2.

    Returns
    -------
    dict
        ``{"mse": float, "psnr": float, "ssim": float}`` (PSNR in dB, ``inf`` for
        identical images).

    Raises
    ------
    InvalidImageError
        Images of different shapes, smaller than SSIM's window, or holding NaN
        or infinite values.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image
       quality assessment: from error visibility to structural similarity",
       IEEE Trans. Image Processing 13(4), 600-612, 2004 (eq. 13, SSIM).

    Examples
    --------
    >>> import numpy as np
    >>> scores = compare(np.zeros((16, 16)), np.full((16, 16), 0.1))
    >>> round(scores["mse"], 4), round(scores["psnr"], 3), round(scores["ssim"], 4)
    (0.01, 20.0, 0.0099)
    """
    a, b = _pair(image, reference)
    err = _mean_squared_error(a, b)
    scores = {"mse": err, "psnr": _psnr_of(err, 1.0)}
    if progress is not None:
        progress(1, 2)
    scores["ssim"] = ssim(a, b)
    if progress is not None:
        progress(2, 2)
    return scores
