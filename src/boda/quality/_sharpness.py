"""The calibrated blur verdict: scale ratio of directional detail energy, per tile.

See :func:`detail_ratio` for the measure and :func:`sharpness` for the verdict.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from boda.core.image import finite_pixels, to_gray
from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError
from boda.quality._scale import REFERENCE_SIDE, to_reference_gray

__all__ = [
    "BLUR_THRESHOLD",
    "SharpnessResult",
    "anisotropy_weight",
    "detail_ratio",
    "noise_variance",
    "sharpness",
    "sharpness_score",
]

#: Default threshold on :func:`sharpness`'s score (flag when ``score <
#: BLUR_THRESHOLD``).  Calibrated in ``benchmarks/blur_detection.py`` on the
#: 24 Kodak photos (sharp vs. Gaussian/motion/defocus blurred, 0.5x/1x/2x), and
#: checked on the GrabCut photos (held out), JPEG q75 and noisy versions.
BLUR_THRESHOLD = 0.44

# Directions (dy, dx) of the first differences: two axes and two diagonals,
# so that motion blur in any direction removes detail from at least one.
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
#: Tile side at the reference scale (level 0); level 1 tiles are half as large.
_TILE = 32
#: Tiles whose coarse-scale detail energy is below this fraction of the
#: strongest tile's are left out (flat sky, walls, smooth bokeh).
_STRUCTURE_FRACTION = 0.1
#: A direction takes part in the anisotropy only when its coarse energy is at
#: least this many times the noise's share of the fine energy (2 v): below it the
#: fine energy left after subtracting the noise is too uncertain to compare, and
#: one such direction would read as motion blur on a sharp, low-contrast photo.
_ANISOTROPY_MIN_SNR = 4.0
#: Percentile of the tile ratios taken as the image's ratio: a photo is sharp
#: when its sharpest parts are (the subject of a portrait with bokeh).
_PERCENTILE = 90.0
#: Regulariser, in squared gray levels per pixel (0-1 scale), so that tiles
#: without any detail give a ratio of 1 instead of 0/0.
_EPS = 1e-8
#: Anisotropy below which the score is lowered (motion blur), and how much per unit.
_ANISOTROPY_LIMIT = 0.55
_ANISOTROPY_WEIGHT = 2.0
#: Shorter side (pixels, at the evaluation scale) below which the anisotropy
#: penalty is left out, and from which it counts in full; linear in between
#: (see :func:`anisotropy_weight` for the measurements behind the two sides).
_ANISOTROPY_FULL_SIDE = 96
_ANISOTROPY_NO_SIDE = 64
#: Smallest side that can be measured: the 2x2-pooled image must keep 4 x 4
#: pixels (12 differences per direction).
_MIN_SIDE = 8
#: Smallest side of :func:`boda.quality.tong_blur` (three Haar levels).
_TONG_MIN_SIDE = 16
#: Images with fewer pixels get no noise estimate, only the quantisation floor
#: (see :func:`noise_variance`).
_MIN_NOISE_PIXELS = 128 * 128
#: The noise level function (:func:`_noise_level_function`) has one value per
#: sixteenth of the brightness range (2x2 block means in [0, 1]).
_NOISE_BINS = 16
#: Blocks a brightness bin needs for a noise value of its own (a quarter of them
#: are used: 256 values put the variance within about 15 %); the others take
#: the value interpolated from their neighbours.
_NOISE_BIN_BLOCKS = 1024
#: Share of a bin's blocks, those with the least coarse-scale activity, whose
#: diagonal detail measures the noise (the others are more likely texture).
_NOISE_SMOOTH_SHARE = 0.25
#: Natural-log ranges of the coarse activity (squared differences of block
#: means) and of ``|2 HH|`` over which their quantiles are read in 256 steps
#: (``|2 HH|``: 2^-14 to 2^-2, 0.004-64 gray levels, 3.3 % a step, and the
#: median interpolated within its step).
_LOG_ACTIVITY_RANGE = (math.log(1e-9), math.log(4.0))
_LOG_HH_RANGE = (math.log(2.0**-14), math.log(0.25))
#: A tile takes part in the percentile only when its coarse signal energy (mean
#: over the four directions, noise removed) is at least this many times the
#: noise's share ``v/2`` of it (images with a noise estimate, from 128 x 128
#: pixels).  Below that, the ratio is one of two small differences of noisy
#: energies: an error of 15 % in the estimated noise energy (what phone noise
#: reduction and JPEG leave in simulated low-light photos) moves a tile's ratio
#: by up to ``4 * 0.15 / SNR``, 0.1 at 6, and the sampling noise of a 32 px
#: tile's energies (relative error about ``sqrt(12 / N)`` of the noise energy
#: over ``N`` differences) as much again; the 90th percentile picks exactly
#: those errors.
_MIN_TILE_SNR = 6.0
#: Noise variance of uint8 quantisation, (1/255)^2 / 12: the least noise any
#: 8-bit photo carries.
_QUANTISATION_VARIANCE = (1.0 / 255.0) ** 2 / 12.0
#: An image is measurable when, along its strongest direction, the mean squared
#: difference of the 2x2-pooled image reaches the quantisation noise's share of
#: a fine difference, 2 (1/255)^2 / 12 (an RMS step of 0.4 gray levels).  Below
#: it the detail is 8-bit rounding and the ratio is noise over noise: flat
#: cards scored 1 ("sharp") and near-flat ones (contrast 0.003) 0.  On 4 000
#: 32 px crops of Kodak photos the strongest coarse energy is below 0.6 of this
#: floor or above 4 times it (none between); Gaussian sigma 4 blurred Kodak
#: photos (0.5x-2x) are above 150 times it.
_MIN_DETAIL_ENERGY = 2.0 * _QUANTISATION_VARIANCE


#: The horizontal and vertical ``_difference_energy`` of an image.
_EnergyPair = tuple[np.ndarray, np.ndarray]


def _pool2(gray: np.ndarray) -> np.ndarray:
    """2x2 block means (an odd last row/column dropped)."""
    import cv2

    h, w = gray.shape[0] // 2, gray.shape[1] // 2
    # INTER_AREA with factor 2 is the block mean (to float rounding), ~5x faster
    # than four strided numpy slices.
    return cv2.resize(gray[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA)


def _difference(gray: np.ndarray, direction: tuple[int, int]) -> np.ndarray:
    """First difference ``g(p + d) - g(p)``, on the pixels where it exists."""
    dy, dx = direction
    h, w = gray.shape
    x0, x1 = (0, w - dx) if dx >= 0 else (-dx, w)
    a = gray[0 : h - dy, x0:x1]
    b = gray[dy:h, x0 + dx : x1 + dx]
    import cv2  # element-wise ops on these strided float32 views: ~2x numpy's speed

    return cv2.subtract(b, a)


def _squared(diff: np.ndarray) -> np.ndarray:
    """``diff`` squared in place (one buffer, not two), returned."""
    import cv2

    return cv2.multiply(diff, diff, dst=diff)


def _difference_energy(gray: np.ndarray, direction: tuple[int, int]) -> np.ndarray:
    """Squared first difference ``g(p + d) - g(p)``, on the pixels where it exists."""
    return _squared(_difference(gray, direction))


def _tile_means(energy: np.ndarray, tile: int, shape: tuple[int, int]) -> np.ndarray:
    """Mean of ``energy`` over each of the ``shape`` top-left ``tile x tile`` tiles."""
    rows, cols = shape
    e = energy[: rows * tile, : cols * tile]
    import cv2

    # INTER_AREA with an integer factor is the block mean: several times faster
    # than a reshape-sum over the block axes.
    return cv2.resize(e, (cols, rows), interpolation=cv2.INTER_AREA).reshape(rows, cols)


def _mean_from_tiles(energy: np.ndarray, tile_means: np.ndarray, tile: int) -> float:
    """Mean of ``energy`` from its top-left tiles' means and the strips they leave
    (the same value as a full pass, up to float rounding, at a tenth of its reads)."""
    import cv2

    rows, cols = tile_means.shape
    bottom = energy[rows * tile :]
    right = energy[: rows * tile, cols * tile :]
    total = float(tile_means.sum(dtype=np.float64)) * tile * tile
    total += sum(cv2.sumElems(strip)[0] for strip in (bottom, right) if strip.size)
    return total / energy.size


def noise_variance(gray: np.ndarray) -> float:
    """Mean noise variance of ``gray`` (0-1 scale), from its noise level function.

    The mean over the image's 2x2 blocks of :func:`_noise_map` (the noise
    variance at each block's brightness); for white noise of variance ``v``,
    ``v``.  Floored at the uint8 quantisation noise ``(1/255)^2 / 12``.  Below
    ``_MIN_NOISE_PIXELS`` (128 x 128) only the floor is used: a small crop is
    mostly texture, whose diagonal detail the estimate would take for noise and
    subtract (32-128 px crops of sharp Kodak photos read as blurry 19 % of the
    time with the estimate, 7 % without; blurred ones are caught 98 % either
    way, but blurred *and* noisy ones, sigma 3/255, 67 % instead of 96 %: tiny
    dataset images are rarely noisy).

    ``gray`` is converted as every measure's input is: RGB to Rec. 601 gray,
    uint8 and uint16 divided by their top value; NaN or infinite values are
    refused (:class:`~boda.errors.InvalidImageError`).

    References
    ----------
    See :func:`_noise_level_function`.
    """
    import cv2

    gray = finite_pixels(to_gray(gray))
    noise = _noise_map(gray, _pool2(gray)) if min(gray.shape) >= 2 else None
    return _QUANTISATION_VARIANCE if noise is None else float(cv2.mean(noise)[0])


def _noise_map(
    gray: np.ndarray,
    coarse: np.ndarray,
    coarse_energies: _EnergyPair | None = None,
    across: np.ndarray | None = None,
) -> np.ndarray | None:
    """Noise variance at each 2x2 block (the grid of ``coarse``), from the noise
    level function at the block's mean; ``None`` below ``_MIN_NOISE_PIXELS``
    (only the quantisation floor is known there).  ``coarse_energies`` (the
    horizontal and vertical ``_difference_energy`` of ``coarse``) and ``across``
    (``_difference(gray, (0, 1))``), if at hand, save computing them again."""
    import cv2

    h, w = coarse.shape
    if 4 * h * w < _MIN_NOISE_PIXELS:
        return None
    # Block means as 8-bit levels (rounded, saturated): the bins are read off
    # them and the function is applied as a 256-entry table (cv2.LUT).
    levels8 = cv2.convertScaleAbs(np.maximum(coarse, np.float32(0.0)), alpha=255.0)
    levels, variances = _noise_level_function(gray, coarse, levels8, coarse_energies, across)
    table = np.interp(np.arange(256) / 255.0, levels, variances).astype(np.float32)
    np.maximum(table, np.float32(_QUANTISATION_VARIANCE), out=table)
    return cv2.LUT(levels8, table)


def _noise_level_function(
    gray: np.ndarray,
    coarse: np.ndarray,
    levels8: np.ndarray,
    coarse_energies: _EnergyPair | None = None,
    across: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise variance as a function of brightness: ``(levels, variances)``.

    Camera noise is signal-dependent (photon shot noise plus read noise,
    Foi et al. [1]_), and sRGB gamma makes it larger in the shadows, so one
    variance for the whole image misjudges most of it: Donoho's median of
    the diagonal details [2]_ falls below the mean noise energy, and the
    difference was read as fine detail (blurred low-light phone photos scored
    up to 2, "sharp").  Here the orthonormal diagonal Haar detail ``HH`` of
    each 2x2 block (``(g00 - g01 - g10 + g11) / 2``: variance ``v`` for white
    noise of variance ``v``) is grouped by the block's mean (``levels8``, its
    8-bit level) into ``_NOISE_BINS`` brightness bins, and each bin's
    variance is ``(median |HH| / 0.6745)^2`` over the quarter of its blocks
    with the least activity at the coarse scale (squared differences of the
    2x2 block means ``coarse``, averaged over 3x3 blocks): the noise level
    function of Liu et al. [3]_, estimated, like Foi et al.'s level sets, on
    the smooth parts of the image.  For white Gaussian noise the coarse
    differences are independent of ``HH`` (block means and the diagonal
    detail are orthogonal), so choosing blocks by them biases nothing, while
    texture, which has both, is mostly left out.  Bins with fewer than
    ``_NOISE_BIN_BLOCKS`` blocks get values interpolated from the others
    (constant beyond the ends); a bin's level is its blocks' mean brightness.
    With no such bin, all blocks form one.

    References
    ----------
    .. [1] A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical
       Poissonian-Gaussian noise modeling and fitting for single-image
       raw-data", IEEE Trans. Image Processing 17(10), 1737-1754, 2008.
    .. [2] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by
       wavelet shrinkage", Biometrika 81(3), 425-455, 1994 (sec. 4.2).
    .. [3] C. Liu, W. T. Freeman, R. Szeliski and S. B. Kang, "Noise
       estimation from a single image", CVPR 2006 (the noise level function).
    """
    import cv2

    h, w = coarse.shape
    hh2 = _diagonal_detail(_difference(gray, (0, 1)) if across is None else across, h, w)
    across, down = coarse_energies or (
        _difference_energy(coarse, (0, 1)),
        _difference_energy(coarse, (1, 0)),
    )
    activity = np.zeros((h, w), np.float32)
    activity[:, :-1] += across
    activity[:-1, :] += down
    activity = cv2.blur(activity, (3, 3))
    # Quantiles per bin from 2-D histograms of 8-bit log steps (cv2.calcHist: one
    # pass, no sorting; several times faster than partitioning each bin, and the
    # scan runs this on every image).
    histogram = cv2.calcHist([levels8], [0], None, [256], [0, 256]).reshape(_NOISE_BINS, -1)
    counts = histogram.sum(axis=1)
    sums = (histogram * np.arange(256, dtype=np.float32).reshape(_NOISE_BINS, -1)).sum(axis=1)
    full = counts >= _NOISE_BIN_BLOCKS
    n_bins = _NOISE_BINS if full.any() else 1  # a small image: all blocks in one bin
    bins = cv2.LUT(levels8, (np.arange(256) * n_bins // 256).astype(np.uint8))
    # The quarter of each bin's blocks with the least activity (ties at the step
    # that reaches a quarter taken in full)...
    steps = _log_steps(activity, _LOG_ACTIVITY_RANGE)
    limit = _quantile_steps(bins, steps, None, n_bins, _NOISE_SMOOTH_SHARE)
    per_level = np.repeat(np.floor(limit).astype(np.uint8), 256 // n_bins)
    smooth = cv2.compare(steps, cv2.LUT(levels8, per_level), cv2.CMP_LE)
    # ... and their median |2 HH|, interpolated within its step.
    low, high = _LOG_HH_RANGE
    median = _quantile_steps(bins, _log_steps(hh2, _LOG_HH_RANGE), smooth, n_bins, 0.5)
    sigma = 0.5 * np.exp(low + median * (high - low) / 255.0) / 0.6745
    if n_bins == 1:
        return np.array([sums.sum() / counts.sum() / 255.0]), sigma * sigma
    return sums[full] / counts[full] / 255.0, (sigma * sigma)[full]


def _diagonal_detail(across: np.ndarray, h: int, w: int) -> np.ndarray:
    """``|2 HH| = |g00 - g01 - g10 + g11|`` of the first ``h x w`` 2x2 blocks, from
    the horizontal differences ``across = g(y, x + 1) - g(y, x)``: the lower
    row's difference minus the upper row's (a quarter-size subtraction, ~2x
    faster than pooling the image times a +-1 checkerboard)."""
    detail = np.subtract(across[1 : 2 * h : 2, 0 : 2 * w : 2], across[0 : 2 * h : 2, 0 : 2 * w : 2])
    return np.abs(detail, out=detail)


def _log_steps(values: np.ndarray, log_range: tuple[float, float]) -> np.ndarray:
    """``values`` (> 0) as uint8 steps, 0-255 evenly over ``log(values)`` in
    ``log_range`` (rounded; saturated at both ends)."""
    import cv2

    low, high = log_range
    scale = 255.0 / (high - low)
    # convertScaleAbs: |a x + b| saturated to uint8; x >= low, so a x + b >= 0.
    return cv2.convertScaleAbs(
        cv2.log(cv2.max(values, math.exp(low))), alpha=scale, beta=-low * scale
    )


def _quantile_steps(
    bins: np.ndarray, steps: np.ndarray, mask: np.ndarray | None, n_bins: int, share: float
) -> np.ndarray:
    """Per bin, the ``share`` quantile of ``steps`` (where ``mask``), in steps: linear
    within the step that reaches it (a rounded step ``j`` covers ``[j - 0.5, j + 0.5)``)."""
    import cv2

    histogram = cv2.calcHist([bins, steps], [0, 1], mask, [n_bins, 256], [0, n_bins, 0, 256])
    cumulative = np.cumsum(histogram, axis=1)
    target = share * cumulative[:, -1:]
    step = np.minimum((cumulative < target).sum(axis=1), 255)
    rows = np.arange(n_bins)
    before = np.where(step > 0, cumulative[rows, step - 1], 0.0)
    inside = np.maximum(histogram[rows, step], 1.0)
    return step - 0.5 + np.clip((target[:, 0] - before) / inside, 0.0, 1.0)


def _tile_ratios(
    gray: np.ndarray, tile: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Per tile: min over directions of the denoised level-0 / level-1 energy, the
    structure (coarse energy), the signal-to-noise ratio of the coarse energy; per
    direction the whole image's denoised energies; the mean noise variance."""
    coarse = _pool2(gray)
    half = tile // 2
    # Tiles that exist at both levels with every direction's border trimmed.
    rows = min((gray.shape[0] - 1) // tile, (coarse.shape[0] - 1) // half)
    cols = min((gray.shape[1] - 2) // tile, (coarse.shape[1] - 2) // half)
    if rows * cols <= 1:
        # One tile or none: the whole image, not its top-left corner (a 64 px
        # image holds a single 32 px tile, a quarter of it).
        rows, cols, tile, half = 1, 1, 0, 0
    import cv2

    # The coarse energies first: the noise estimate's activity uses two of them.
    coarse_energies = [_difference_energy(coarse, direction) for direction in _DIRECTIONS]
    # The fine horizontal difference, before squaring, gives the noise its detail.
    across = _difference(gray, _DIRECTIONS[0])
    # Noise of variance v adds 2v to a fine difference's energy, and v/2 after
    # 2x2 pooling (white noise); left in, it pulls every ratio towards 4
    # ("sharp").  Camera noise depends on brightness, so each tile has the noise
    # of its own pixels taken off: the mean over its 2x2 blocks of the noise
    # level function (_noise_map); the whole-image energies the mean over all.
    noise_map = _noise_map(gray, coarse, (coarse_energies[0], coarse_energies[1]), across)
    if noise_map is None:
        noise = _QUANTISATION_VARIANCE
        tile_noise: np.ndarray | float = noise
    else:
        noise = float(cv2.mean(noise_map)[0])
        tile_noise = noise if tile == 0 else _tile_means(noise_map, half, (rows, cols))
    ratios = []
    structure = signal = None
    global0, global1 = [], []
    for direction, crude in zip(_DIRECTIONS, coarse_energies, strict=True):
        is_across = direction == _DIRECTIONS[0]
        fine = _squared(across) if is_across else _difference_energy(gray, direction)
        # cv2.mean: one SIMD pass accumulated in float64, ~1.6x numpy's mean.
        mean1 = cv2.mean(crude)[0]
        if tile == 0:  # image smaller than one tile: the whole image is the tile
            mean0 = cv2.mean(fine)[0]
            e0 = np.array([[mean0]])
            e1 = np.array([[mean1]])
        else:
            e0 = _tile_means(fine, tile, (rows, cols))
            e1 = _tile_means(crude, half, (rows, cols))
            mean0 = _mean_from_tiles(fine, e0, tile)
        global0.append(max(mean0 - 2.0 * noise, 0.0))
        global1.append(max(mean1 - 0.5 * noise, 0.0))
        signal0 = np.maximum(e0 - 2.0 * tile_noise, 0.0)
        signal1 = np.maximum(e1 - 0.5 * tile_noise, 0.0)
        ratios.append((signal0 + _EPS) / (signal1 + _EPS))
        structure = e1 if structure is None else structure + e1
        signal = signal1 if signal is None else signal + signal1
    # Mean over the four directions of the coarse signal, in units of the noise's
    # v/2; without a noise estimate (small images: the known quantisation floor,
    # checked by _MIN_DETAIL_ENERGY) every tile counts.
    snr = signal / (2.0 * np.asarray(tile_noise)) if noise_map is not None else np.inf
    return (
        np.minimum.reduce(ratios).ravel(),
        structure.ravel(),
        np.broadcast_to(snr, structure.shape).ravel(),
        np.asarray(global0),
        np.asarray(global1),
        noise,
    )


def _anisotropy(global0: np.ndarray, global1: np.ndarray, noise: float = 0.0) -> float:
    """``min_d r_d / max_d r_d`` of the whole-image ratios, over directions with structure.

    Directions whose coarse energy is below 10 % of the strongest direction's
    are left out: content that runs along one direction only (wood grain,
    blinds) has no detail across it to lose, at any scale.  So are directions
    whose coarse energy is below ``_ANISOTROPY_MIN_SNR`` times the noise's
    share ``2 * noise`` of the fine energy (a very low-contrast photo).
    """
    if global1.max() <= 0:
        return 1.0
    keep = (global1 >= _STRUCTURE_FRACTION * global1.max()) & (
        global1 >= _ANISOTROPY_MIN_SNR * 2.0 * noise
    )
    if keep.sum() < 2:
        return 1.0  # no two directions to compare
    ratios = (global0[keep] + _EPS) / (global1[keep] + _EPS)
    return float(ratios.min() / ratios.max()) if ratios.max() > 0 else 1.0


def _measure(gray: np.ndarray, tile: int, percentile: float) -> tuple[float, float]:
    """(detail ratio, anisotropy) of a gray image at the evaluation scale; both NaN
    when it cannot be measured (a side under ``_MIN_SIDE``, no detail above 8-bit
    quantisation: ``_MIN_DETAIL_ENERGY``, or no tile whose coarse signal reaches
    ``_MIN_TILE_SNR`` times the noise's share)."""
    if min(gray.shape) < _MIN_SIDE:
        return math.nan, math.nan
    ratios, structure, snr, global0, global1, noise = _tile_ratios(
        gray.astype(np.float32, copy=False), tile
    )
    # global1 has had the noise's share v/2 taken off; the floor is on the raw energy.
    if global1.max() + 0.5 * noise < _MIN_DETAIL_ENERGY:
        return math.nan, math.nan
    keep = (structure >= _STRUCTURE_FRACTION * structure.max()) & (snr >= _MIN_TILE_SNR)
    if not keep.any():
        return math.nan, math.nan  # no detail stands clear of the noise anywhere
    anisotropy = _anisotropy(global0, global1, noise)
    return _percentile(ratios[keep], percentile), anisotropy


def _percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation between order statistics)
    without its overhead, which is 10x the work on the few hundred tile ratios."""
    ordered = np.sort(values, axis=None)
    position = q / 100.0 * (ordered.size - 1)
    below = min(int(position), ordered.size - 1)
    above = min(below + 1, ordered.size - 1)
    fraction = position - below
    return float(ordered[below] + (ordered[above] - ordered[below]) * fraction)


def detail_ratio(
    image: np.ndarray,
    *,
    reference_side: int | None = REFERENCE_SIDE,
    tile: int = _TILE,
    percentile: float = _PERCENTILE,
) -> float:
    """Scale ratio of directional detail energy, robust over tiles.

    For each of four directions ``d`` (horizontal, vertical, two diagonals)
    and each tile, ``r_d = E_0(d) / E_1(d)`` where ``E_s(d)`` is the mean
    squared first difference along ``d`` of the image at scale ``s`` (``s=1``:
    2x2 block means).  A tile's ratio is ``min_d r_d`` (motion blur along any
    direction lowers one of them); the image's ratio is the ``percentile`` of
    the ratios of tiles with structure (coarse energy at least 10 % of the
    strongest tile's) whose coarse detail stands clear of the noise (signal
    energy, mean over the directions, at least 6 times the noise's ``v/2``).
    The noise energy is subtracted from both energies first: ``2v`` at full
    and ``v/2`` at half resolution, with ``v`` the mean over the tile's 2x2
    blocks of the noise level function (the noise variance at each block's
    brightness, :func:`_noise_level_function`), so that a dark tile has more
    noise taken off than a bright one.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)``.
    reference_side : int or None
        Area-average to this longer side first (see :mod:`boda.quality._scale`).
    tile : int
        Tile side in pixels at the reference scale (even, >= 4).
    percentile : float
        Which tile ratio summarises the image (90: its sharpest tenth).

    Returns
    -------
    float
        About 0.25 for a smooth (blurred) image, about 1 for a sharp natural
        image, up to 4 for white noise in an image under 128 x 128 pixels
        (which gets no noise estimate).  NaN when the image cannot be
        measured: a side under 8 pixels (at the reference scale), no detail
        above 8-bit quantisation (a flat or nearly flat image: the strongest
        direction's mean squared difference of the 2x2-pooled image below
        ``2 (1/255)^2 / 12``), or no tile whose detail stands clear of the
        noise (a frame of pure noise, or a dark photo whose content is buried
        in it).

    Notes
    -----
    The ratio normalises away contrast and content: for a sharp natural image
    with power spectrum ``~ 1/|f|^2`` the derivative energy per octave is the
    same at every scale, so ``E_0 / E_1 ~ 1``, whatever the contrast (Field
    1987; the same scale invariance as in :func:`laplacian_variance`).  A
    smooth signal has differences twice as large per coarse pixel, so
    ``E_0 / E_1 -> 1/4``; white noise gives ``4``.  Blur of ``sigma`` pixels
    attenuates ``E_0`` far more than ``E_1`` (where it is ``sigma/2``).  Taking
    a high percentile over tiles with structure makes a photo with a sharp
    subject and a blurred background sharp, and ignores flat sky.

    References
    ----------
    .. [1] D. J. Field, "Relations between the statistics of natural images
       and the response properties of cortical cells", JOSA A 4(12),
       2379-2394, 1987 (the 1/f amplitude spectrum, scale invariance).
    .. [2] F. Crété-Roffet et al., "The blur effect", SPIE 6492, 2007 (the
       idea of comparing an image's variations with a blurred version's).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> detail_ratio(rng.random((64, 64))) > 3  # too small for a noise estimate: all detail
    True
    >>> bool(np.isnan(detail_ratio(rng.random((256, 256)))))  # noise, and nothing above it
    True
    """
    if not whole_number(tile) or tile < 4 or tile % 2:
        raise InvalidParameterError(f"tile must be an even number >= 4, got {tile!r}")
    if not (real_number(percentile) and 0.0 <= percentile <= 100.0):
        raise InvalidParameterError(f"percentile must be in [0, 100], got {percentile!r}")
    return _measure(to_reference_gray(image, reference_side), tile, percentile)[0]


def anisotropy_weight(side: float | None) -> float:
    """How much of the anisotropy penalty counts for an image whose shorter side is ``side``.

    0 up to 64 pixels (at the evaluation scale), 1 from 96, linear in
    between, so that the score changes by at most 0.035 per pixel of size.
    ``None`` (size unknown) counts in full.

    Why: the anisotropy compares whole-image directional ratios, and in a
    small image one oriented texture near the pixel scale (shutters, fences,
    siding, stripes) dominates them; its ratio across the stripes reaches
    2-4 or more, so ``min / max`` falls to 0.05-0.3 on sharp images.  Measured on
    Kodak24 windows (48-300 px, bicubic to ``n``, 960 per size; the table
    is in ``docs/quality.md``, "Tiny images"): the share of sharp windows
    pushed under the threshold by the penalty, against the share of 3 and
    5 px motion-blurred ones it catches that the detail ratio alone misses,
    is 1.8 % vs 1.3 % / 0.5 % at 32 px, 2.0 % vs 0.7 % / 0.6 % at 64 px,
    0.9 % vs 2.7 % / 2.4 % at 80 px, 0.5 % vs 3.0 % / 2.7 % at 96 px and
    0.3 % vs 3.4 % / 1.4 % at 128 px.  Below 66 px the detail ratio is
    already the whole image's minimum over the four directions, so motion
    blur lowers it without the penalty (at 32 px, 93 % / 97 % of those
    motion blurs are caught without it).
    """
    if side is None:
        return 1.0
    span = _ANISOTROPY_FULL_SIDE - _ANISOTROPY_NO_SIDE
    return float(min(1.0, max(0.0, (float(side) - _ANISOTROPY_NO_SIDE) / span)))


def sharpness_score(ratio: float, anisotropy: float = 1.0, side: float | None = None) -> float:
    """Map :func:`detail_ratio` (and the anisotropy) to the sharpness score.

    ``score = log2(4 r) / 2 - w 2 max(0, 0.55 - a)``: the first term is 0 for
    a smooth image (``r = 1/4``), 1 for a sharp natural image (``r = 1``), 2
    for white noise (``r = 4``).  The second is a penalty for directional
    blur: ``a`` is the ratio of the smallest to the largest whole-image
    directional detail ratio, 0.7-1 for sharp photos (Kodak, GrabCut) and for
    isotropic blur, lower when motion blur removed the fine detail along one
    direction only.  ``w`` is :func:`anisotropy_weight` of ``side``, the
    image's shorter side at the evaluation scale (0 below 64 px, where the
    anisotropy is not reliable; ``None``: 1).  Clipped at 0.  NaN when
    ``ratio`` is NaN (an image that cannot be measured); a NaN anisotropy
    adds no penalty.
    """
    if math.isnan(ratio):
        return math.nan
    base = float(np.log2(4.0 * max(ratio, 1e-12)) / 2.0)
    if math.isnan(anisotropy):
        return max(0.0, base)
    weight = anisotropy_weight(side)
    penalty = weight * _ANISOTROPY_WEIGHT * max(0.0, _ANISOTROPY_LIMIT - anisotropy)
    return max(0.0, base - penalty)


@dataclasses.dataclass(frozen=True)
class SharpnessResult:
    """The blur verdict of :func:`sharpness`.

    Attributes
    ----------
    score : float
        Sharpness score (0 smooth, ~1 sharp natural photo; see
        :func:`sharpness_score`).  NaN when the image cannot be measured
        (flat, nearly flat, a side under 8 pixels, or no detail standing
        clear of the noise): no verdict.
    is_blurry : bool
        ``score < threshold`` (False when ``score`` is NaN).
    threshold : float
        The threshold used.
    measures : dict of str to float
        Every individual measure computed (at the reference scale).
    """

    score: float
    is_blurry: bool
    threshold: float
    measures: dict[str, float]


def sharpness(
    image: np.ndarray,
    threshold: float | None = None,
    *,
    all_measures: bool = False,
    reference_side: int | None = REFERENCE_SIDE,
) -> SharpnessResult:
    """Decide whether an image is blurry, with a threshold that holds across sizes.

    The score is :func:`sharpness_score` of :func:`detail_ratio` and of the
    directional anisotropy: a contrast-free, content-normalised,
    resolution-normalised measure of how much of the finest-scale detail
    survives, taken over the sharpest tiles, lowered when the detail is lost
    along one direction only (motion blur; for images at least 64 px on their
    shorter side, fully from 96 px: :func:`anisotropy_weight`).  An image
    that cannot be measured (a side under 8 px, no detail above 8-bit
    quantisation: a flat or nearly flat image, or no detail standing clear of
    the noise) gets ``score`` NaN and is not blurry: "no verdict", not "sharp".

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)``, any size (evaluated at ``reference_side``).
    threshold : float, optional
        Flag as blurry when ``score < threshold``; default
        :data:`BLUR_THRESHOLD` (0.44, i.e. a detail ratio of about 0.46).
    all_measures : bool
        Also compute the classic measures (Laplacian variance, Tenengrad,
        wavelet and FFT energy, blur effect, Tong et al.) into ``measures``
        (Tong's are NaN for an image under 16 px a side, the blur effect's under 4).
    reference_side : int or None
        Evaluation scale (default 640); ``None`` measures at full size, where
        the default threshold is not calibrated.

    Returns
    -------
    SharpnessResult

    Notes
    -----
    Calibration (``benchmarks/blur_detection.py``): 24 Kodak photos, sharp vs.
    Gaussian sigma 1/2/4, 9 px linear motion and radius-3 disk defocus,
    each at 0.5x, 1x and 2x size (the photo rescaled first, then blurred in
    its own pixels).  Held-out check on the 10 GrabCut photos, and JPEG q75 /
    Gaussian noise versions of the sharp photos.  Limits: a photo blurred by
    less than about one pixel *at the 640 px reference* (e.g. 9 px of blur in
    a 6000 px photo) counts as sharp, on purpose.  Noise is estimated as a
    function of brightness and subtracted tile by tile
    (:func:`_noise_level_function`), and tiles whose detail does not stand
    clear of it are left out, so sensor noise (stronger in the shadows)
    neither hides blur nor fakes sharpness; a sharp overlay (watermark,
    text) on a blurred photo still makes it sharp.  The reference side
    (640) and the threshold (0.44) were chosen together by a sweep (sides
    448-704, thresholds 0.40-0.60) for the best worst-scale accuracy on
    Kodak, then the anisotropy term (limit 0.55, weight 2; the lowest sharp
    Kodak/GrabCut anisotropy is 0.71); GrabCut was not used for the choices.
    Small images (28-64 px dataset crops) were checked apart: see
    ``docs/quality.md``, "Tiny images".

    References
    ----------
    See :func:`detail_ratio`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sharpness(rng.random((64, 64))).is_blurry
    False
    >>> result = sharpness(np.full((32, 32), 0.5))  # flat: no verdict
    >>> bool(np.isnan(result.score)), result.is_blurry
    (True, False)
    """
    if threshold is not None and not (real_number(threshold) and not math.isnan(threshold)):
        # float() took "0.5" and True, and NaN never flagged anything
        raise InvalidParameterError(
            f"threshold must be a number (or None for {BLUR_THRESHOLD}), got {threshold!r}"
        )
    threshold = BLUR_THRESHOLD if threshold is None else float(threshold)
    gray = to_reference_gray(image, reference_side)
    ratio, anisotropy = _measure(gray, _TILE, _PERCENTILE)
    score = sharpness_score(ratio, anisotropy, side=min(gray.shape))
    measures = {"detail_ratio": ratio, "anisotropy": anisotropy}
    if all_measures:
        from boda.quality import _blur, _tong

        measures.update(
            laplacian_variance=_blur.laplacian_variance(gray, reference_side=None),
            tenengrad=_blur.tenengrad(gray, reference_side=None),
            wavelet_energy=_blur.wavelet_energy(gray, reference_side=None),
            fft_hf=_blur.fft_high_frequency(gray, reference_side=None),
        )
        if min(gray.shape) >= _blur.BLUR_EFFECT_MIN_SIDE:
            measures["blur_effect"] = _blur.blur_effect(gray, reference_side=None)
        else:  # no pixel inside its border: not measured, as the score
            measures["blur_effect"] = math.nan
        if min(gray.shape) >= _TONG_MIN_SIDE:
            tong = _tong.tong_blur(gray, reference_side=None)
            measures.update(tong_per=tong.per, tong_blur_extent=tong.blur_extent)
        else:  # its three wavelet levels need 16 px: not measured, as the score
            measures.update(tong_per=math.nan, tong_blur_extent=math.nan)
    return SharpnessResult(score, bool(score < threshold), threshold, measures)
