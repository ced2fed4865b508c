"""Tong, Li, Zhang & Zhang (2004): blur detection with the Haar wavelet transform."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from boda.core.numbers import real_number
from boda.errors import InvalidParameterError
from boda.quality._scale import REFERENCE_SIDE, to_reference_gray

__all__ = ["TongResult", "tong_blur", "TONG_EDGE_THRESHOLD", "TONG_MIN_ZERO"]

#: Edge threshold on the (rescaled) edge maps, 0-255 gray units.  See the Notes
#: of :func:`tong_blur` for the normalisation it refers to.
TONG_EDGE_THRESHOLD = 35.0
#: ``MinZero`` of the paper: an image is blurred when ``Per < MinZero``.
TONG_MIN_ZERO = 0.05


@dataclasses.dataclass(frozen=True)
class TongResult:
    """Edge statistics of :func:`tong_blur`.

    Attributes
    ----------
    per : float
        ``N_da / N_edge``: fraction of edge points that are Dirac or abrupt
        steps (sharp edges).  0 when there are no edges.
    blur_extent : float
        ``N_brg / N_rg``: fraction of gradual (roof and Gstep) edges that
        lost their fine-scale sharpness.  0 when there are none.
    is_blurry : bool
        ``per < min_zero``.
    n_edge, n_da, n_rg, n_brg : int
        The counts.
    """

    per: float
    blur_extent: float
    is_blurry: bool
    n_edge: int
    n_da: int
    n_rg: int
    n_brg: int


def _block_max(emap: np.ndarray, size: int) -> np.ndarray:
    h, w = emap.shape[0] // size, emap.shape[1] // size
    return emap[: h * size, : w * size].reshape(h, size, w, size).max(axis=(1, 3))


def edge_maxima(gray255: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Emax_1, Emax_2, Emax_3`` of Tong et al. (steps 1-2 of their algorithm 1).

    ``gray255`` is a 2-D float array on the 0-255 scale, cropped to a multiple
    of 16 here.  Level ``i``'s edge map ``Emap_i = sqrt(LH_i^2 + HL_i^2 +
    HH_i^2)`` (each level's own three detail bands) is rescaled by
    ``2^-(i-1)`` and max-pooled in windows of 8, 4 and 2, so all three maxima
    maps index the same 16 x 16 pixel blocks.
    """
    import pywt  # imported here: `boda scan` never needs it (start-up time)

    h, w = gray255.shape[0] // 16 * 16, gray255.shape[1] // 16 * 16
    coeffs = pywt.wavedec2(gray255[:h, :w], "haar", level=3)
    maxima = []
    # coeffs[1] is level 3 (coarsest), coeffs[3] level 1.
    for level, window in ((1, 8), (2, 4), (3, 2)):
        lh, hl, hh = coeffs[4 - level]
        emap = np.sqrt(lh**2 + hl**2 + hh**2) / 2.0 ** (level - 1)
        maxima.append(_block_max(emap, window))
    return maxima[0], maxima[1], maxima[2]


def tong_blur(
    image: np.ndarray,
    *,
    threshold: float = TONG_EDGE_THRESHOLD,
    min_zero: float = TONG_MIN_ZERO,
    reference_side: int | None = REFERENCE_SIDE,
) -> TongResult:
    """Blur detection by edge-type analysis in a 3-level Haar wavelet transform.

    Algorithm 1 of [1]_: with ``Emax_i`` the block maxima of the level-``i``
    edge maps (:func:`edge_maxima`),

    - rule 1: a block is an edge point if ``Emax_i > threshold`` for some ``i``;
    - rule 2: Dirac or Astep (sharp) if ``Emax_1 > Emax_2 > Emax_3``;
    - rule 3: Roof or Gstep if ``Emax_1 < Emax_2 < Emax_3``;
    - rule 4: Roof if ``Emax_2 > Emax_1`` and ``Emax_2 > Emax_3``;
    - rule 5: a Roof/Gstep point has lost its sharpness (is blurred) if
      ``Emax_1 < threshold``;

    ``Per = N_da / N_edge`` and ``BlurExtent = N_brg / N_rg``; the image is
    blurred when ``Per < MinZero``.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)``; at least 16 x 16 at the evaluation scale.
    threshold : float
        Edge threshold on the 0-255 scale (35, see Notes).
    min_zero : float
        ``MinZero`` of the paper (0.05).
    reference_side : int or None
        Evaluate at this longer side (default 640); ``None`` for full size.

    Returns
    -------
    TongResult

    Raises
    ------
    InvalidParameterError
        If the image is smaller than 16 pixels on a side, or ``threshold`` or
        ``min_zero`` is not a number.

    Notes
    -----
    *Normalisation.*  PyWavelets' Haar transform is orthonormal: every level
    multiplies the approximation by 2, so the level-``i`` detail of an ideal
    step of height ``h`` is ``2^(i-1) h`` and every edge would look like a
    gradual "Gstep" (rising across levels).  The paper's rules need detail
    magnitudes that stay constant across scales for a step (Lipschitz
    exponent 0, Mallat & Hwang 1992), fall for a line (Dirac) and rise for a
    ramp; dividing level ``i`` by ``2^(i-1)`` gives exactly that while keeping
    level 1 in PyWavelets' units, where a step of ``h`` gray levels gives
    ``h``.  The paper's threshold of 35 therefore keeps its meaning of an
    edge of about 35 gray levels.

    *The widely copied Python version* builds level 3's map from ``LH3`` twice
    (instead of ``LH3``, ``HL3``, ``HH3``) and skips the rescaling; both are
    fixed here.

    References
    ----------
    .. [1] H. Tong, M. Li, H. Zhang and C. Zhang, "Blur detection for digital
       images using wavelet transform", IEEE ICME 2004, pp. 17-20 (algorithm
       1, rules 1-5).  DOI:10.1109/ICME.2004.1394114
    .. [2] S. Mallat and W. L. Hwang, "Singularity detection and processing
       with wavelets", IEEE Trans. Information Theory 38(2), 617-643, 1992.

    Examples
    --------
    >>> import numpy as np
    >>> step = np.zeros((64, 64), np.float32); step[:, 33:] = 1.0
    >>> tong_blur(step).per > 0.05
    True
    """
    for name, value in (("threshold", threshold), ("min_zero", min_zero)):
        if not real_number(value) or math.isnan(value):
            # NaN found no edge and called every image blurred (or none, for min_zero)
            raise InvalidParameterError(f"{name} must be a number, got {value!r}")
    gray = to_reference_gray(image, reference_side)
    if min(gray.shape) < 16:
        raise InvalidParameterError(
            f"Tong et al.'s measure needs at least 16x16 pixels, got {gray.shape}"
        )
    e1, e2, e3 = edge_maxima(gray.astype(np.float64) * 255.0)
    edge = (e1 > threshold) | (e2 > threshold) | (e3 > threshold)
    dirac_astep = edge & (e1 > e2) & (e2 > e3)
    roof_gstep = edge & (((e1 < e2) & (e2 < e3)) | ((e2 > e1) & (e2 > e3)))
    blurred = roof_gstep & (e1 < threshold)
    n_edge, n_da = int(edge.sum()), int(dirac_astep.sum())
    n_rg, n_brg = int(roof_gstep.sum()), int(blurred.sum())
    per = n_da / n_edge if n_edge else 0.0
    extent = n_brg / n_rg if n_rg else 0.0
    return TongResult(per, extent, per < min_zero, n_edge, n_da, n_rg, n_brg)
