"""Per-image colour measures for ``boda scan``: colourfulness, lightness, palette, grayness."""

from __future__ import annotations

import dataclasses

import numpy as np

from boda.color._lab import _f, lab_to_srgb, srgb_to_lab
from boda.color._srgb import SRGB_TO_XYZ, srgb_to_linear
from boda.core.image import as_float_image, finite_pixels
from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

__all__ = [
    "colorfulness",
    "colorfulness_label",
    "COLORFULNESS_SCALE",
    "lightness_stats",
    "dominant_colors",
    "is_grayscale",
    "GRAYSCALE_CHROMA_THRESHOLD",
    "ColorSummary",
    "color_summary",
]

#: Hasler & Süsstrunk (2003), Table 2: metric M (RGB in 0–255) for each
#: attribute of colourfulness.
COLORFULNESS_SCALE: tuple[tuple[str, float], ...] = (
    ("not colourful", 0.0),
    ("slightly colourful", 15.0),
    ("moderately colourful", 33.0),
    ("averagely colourful", 45.0),
    ("quite colourful", 59.0),
    ("highly colourful", 82.0),
    ("extremely colourful", 109.0),
)

#: Chroma C*ab below which an image counts as grayscale (see :func:`is_grayscale`).
GRAYSCALE_CHROMA_THRESHOLD = 3.0

#: Pixels the chroma measures look at; larger images use a fixed stride.
_MAX_CHROMA_PIXELS = 100_000


def colorfulness(image: np.ndarray) -> float:
    """Colourfulness metric M of Hasler & Süsstrunk (2003).

    With rg = R − G and yb = (R + G)/2 − B per pixel (R, G, B in 0–255),
    M = √(σ_rg² + σ_yb²) + 0.3 √(μ_rg² + μ_yb²).

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` sRGB image (uint8, uint16 or float in [0, 1]) or a
        ``(H, W)`` gray image (M = 0).

    Returns
    -------
    float
        M on the paper's 0–255 scale, so :data:`COLORFULNESS_SCALE` applies
        (about 0 for gray, 33 moderately, 59 quite, 109 extremely colourful).

    References
    ----------
    D. Hasler and S. Süsstrunk, "Measuring colourfulness in natural images",
    *Proc. SPIE* 5007, Human Vision and Electronic Imaging VIII, 87–95, 2003,
    eq. (5) (metric M^(3)) and Table 2.

    Examples
    --------
    >>> colorfulness(np.full((4, 4, 3), 0.5))
    0.0
    """
    img = finite_pixels(as_float_image(image))
    if img.ndim == 2:
        return 0.0
    img = np.clip(img, 0.0, 1.0)  # as every image measure does (docs/color.md)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    # opponent channels in float32, statistics accumulated in float64
    rg = (r - g).ravel()
    yb = (0.5 * (r + g) - b).ravel()
    spread = np.sqrt(rg.var(dtype=np.float64) + yb.var(dtype=np.float64))
    mean = np.hypot(rg.mean(dtype=np.float64), yb.mean(dtype=np.float64))
    return float(255.0 * (spread + 0.3 * mean))


def colorfulness_label(value: float) -> str:
    """The attribute of Hasler & Süsstrunk's Table 2 whose M is nearest to ``value``.

    Examples
    --------
    >>> colorfulness_label(40.0)
    'averagely colourful'
    """
    try:
        m = float(value)
    except (TypeError, ValueError):
        m = np.nan
    if not np.isfinite(m):  # NaN would land on the first anchor, "not colourful"
        raise InvalidParameterError(f"colourfulness must be a finite number, got {value!r}")
    names = [n for n, _ in COLORFULNESS_SCALE]
    anchors = np.array([a for _, a in COLORFULNESS_SCALE])
    return names[int(np.argmin(np.abs(anchors - m)))]


def _lightness(img: np.ndarray) -> np.ndarray:
    # L* depends on Y only, so skip a* and b*: Y = row 2 of the sRGB matrix.
    lin = srgb_to_linear(img)
    y = lin if lin.ndim == 2 else lin @ SRGB_TO_XYZ[1].astype(lin.dtype)
    return 116.0 * _f(y) - 16.0


def lightness_stats(image: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of CIELAB L* (D65) over the image.

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` sRGB or ``(H, W)`` gray (treated as R = G = B).

    Returns
    -------
    (float, float)
        ``(mean_L, std_L)``, L* in [0, 100] for in-range input: the mean
        tells how bright the image looks, the spread how much tonal contrast it has.

    References
    ----------
    CIE 015:2018, eq. 8.1.

    Examples
    --------
    >>> lightness_stats(np.ones((2, 2, 3)))
    (100.0, 0.0)
    """
    light = _lightness(np.clip(finite_pixels(as_float_image(image)), 0.0, 1.0)).astype(np.float64)
    return round(float(light.mean()), 10), round(float(light.std()), 10)


def dominant_colors(
    image: np.ndarray,
    k: int = 5,
    seed: int = 0,
    *,
    max_samples: int = 10_000,
    max_iter: int = 30,
) -> list[tuple[tuple[float, float, float], float]]:
    """The ``k`` dominant colours of an image by k-means in CIELAB.

    A random subsample of at most ``max_samples`` pixels (drawn with ``seed``)
    is converted to L*a*b* (D65) and clustered with k-means (k-means++
    seeding, Lloyd iterations), so that distances are perceptual (ΔE*ab).

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` sRGB (a gray ``(H, W)`` image is treated as R = G = B).
    k : int
        Number of colours (1–64).  Fewer come back when the image has fewer
        distinct colours.
    seed : int
        Seed of the subsample and the initialisation; equal seeds give equal
        results.
    max_samples : int
        Pixels clustered; about 1/√n sampling error on the fractions (1 % at
        10 000).
    max_iter : int
        Maximum Lloyd iterations.

    Returns
    -------
    list of ((float, float, float), float)
        ``(rgb, fraction)`` sorted by decreasing fraction; ``rgb`` is the
        cluster centre as sRGB in [0, 1] (clipped), fractions sum to 1.

    References
    ----------
    S. Lloyd, "Least squares quantization in PCM", *IEEE Trans. Inf. Theory*
    28(2), 1982; D. Arthur and S. Vassilvitskii, "k-means++: the advantages of
    careful seeding", *SODA* 2007.

    Examples
    --------
    >>> img = np.zeros((4, 4, 3)); img[:, :1] = [1.0, 0.0, 0.0]
    >>> [(tuple(round(c, 3) for c in rgb), f) for rgb, f in dominant_colors(img, k=2)]
    [((0.0, 0.0, 0.0), 0.75), ((1.0, 0.0, 0.0), 0.25)]
    """
    _check_palette_args(k, max_samples, seed, max_iter)
    img = finite_pixels(as_float_image(image))
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    pixels = img.reshape(-1, 3)
    rng = np.random.default_rng(seed)
    if pixels.shape[0] > max_samples:
        pixels = pixels[rng.integers(0, pixels.shape[0], size=max_samples)]
    return _palette(srgb_to_lab(np.clip(pixels, 0.0, 1.0)), k, rng, max_iter)


def _check_palette_args(k: int, max_samples: int, seed: object, max_iter: object) -> None:
    if not (whole_number(k) and 1 <= k <= 64):
        raise InvalidParameterError(f"k must be an integer from 1 to 64, got {k!r}")
    for name, value in (("max_samples", max_samples), ("max_iter", max_iter)):
        if not (whole_number(value) and value >= 1):
            raise InvalidParameterError(f"{name} must be a whole number >= 1, got {value!r}")
    # numpy's own error for a bad seed names neither the argument nor the function
    if not (whole_number(seed) and seed >= 0):
        raise InvalidParameterError(f"seed must be a whole number >= 0, got {seed!r}")


def _palette(
    lab: np.ndarray, k: int, rng: np.random.Generator, max_iter: int
) -> list[tuple[tuple[float, float, float], float]]:
    """k-means++ then Lloyd on ``(n, 3)`` L*a*b* samples; see :func:`dominant_colors`."""
    lab = lab.astype(np.float64)
    lab = lab[np.isfinite(lab).all(axis=1)]
    if lab.shape[0] == 0:
        raise InvalidParameterError("image has no finite pixels to cluster")
    centers = _kmeans_pp(lab, k, rng)
    labels = _assign(np.ascontiguousarray(lab.T), centers)
    # Also for k = 1 (the centre is then the mean, not a random sample); not for a
    # single sample, which cv2.kmeans would read as three 1-D ones.
    if max_iter > 0 and lab.shape[0] > 1:
        centers, labels = _lloyd(lab, labels, len(centers), max_iter)
    counts = np.bincount(labels, minlength=len(centers))
    order = np.argsort(-counts, kind="stable")
    rgb = lab_to_srgb(centers[order], clip=True)
    fractions = counts[order] / counts.sum()
    return [
        (tuple(c), float(f))
        for c, f in zip(np.round(rgb, 6).tolist(), fractions, strict=True)  # round() per value
        if f > 0
    ]


def _lloyd(
    x: np.ndarray, labels: np.ndarray, k: int, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's iterations from ``labels`` until the centres move < 0.01 ΔE*ab or ``max_iter``.

    ``cv2.kmeans`` started from the given labels runs them in C++, ~2x faster
    than numpy on the scan's 1000-2000 samples, and deterministically: it draws no
    random numbers when it starts from labels (an emptied cluster takes the
    point farthest from the centre of the largest one).
    """
    import cv2

    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, max_iter, 0.01)
    _, out, centers = cv2.kmeans(
        x.astype(np.float32),
        k,
        labels.astype(np.int32).reshape(-1, 1),
        criteria,
        1,
        cv2.KMEANS_USE_INITIAL_LABELS,
    )
    return centers.astype(np.float64), out.ravel()


def _assign(x_t: np.ndarray, centers: np.ndarray) -> np.ndarray:
    # argmin over ||x - c||² = ||x||² - 2 x·c + ||c||²; ||x||² is the same for every c.
    d = (centers**2).sum(axis=1)[:, None] - 2.0 * (centers @ x_t)
    return d.argmin(axis=0)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    x_t = np.ascontiguousarray(x.T)  # (3, n): distances as three passes along n

    def sq_dist(c: np.ndarray) -> np.ndarray:
        d = x_t[0] - c[0]  # the same sum, in the same order, as ((x - c) ** 2).sum(axis=1)
        d *= d
        for axis in (1, 2):
            e = x_t[axis] - c[axis]
            e *= e
            d += e
        return d

    centers = [x[rng.integers(x.shape[0])]]
    d2 = sq_dist(centers[0])
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # fewer distinct colours than k
            break
        # What rng.choice(n, p=d2 / total) draws (same cdf, same single uniform
        # number), without its validation passes over p.
        cdf = np.cumsum(d2 / total)
        cdf /= cdf[-1]
        idx = min(int(cdf.searchsorted(rng.random(), side="right")), x.shape[0] - 1)
        centers.append(x[idx])
        np.minimum(d2, sq_dist(x[idx]), out=d2)
    return np.array(centers)


def is_grayscale(
    image: np.ndarray,
    *,
    threshold: float = GRAYSCALE_CHROMA_THRESHOLD,
    percentile: float = 99.0,
) -> tuple[bool, float]:
    """Decide from chroma whether an image is grayscale, whatever its file mode.

    The score is the ``percentile``-th percentile of CIELAB chroma
    C*ab = √(a*² + b*²) over the pixels; the image is grayscale when the score
    is below ``threshold``.

    Why these defaults: a ΔE*ab of about 2.3 is a just-noticeable difference
    (Sharma 2003), so a chroma under 3 is at the edge of visibility.  Measured
    on the 24 Kodak photos converted to gray: saved as RGB JPEG (quality
    50–95) the score is below 1e-4; with ±1 level of independent noise per
    channel added before saving (a harsh stand-in for camera and compression
    chroma noise) it stays below 1.8.  A sepia tint made by blending 20 %
    towards the tone (1, 0.894, 0.695) scores 4.3–5.5 and is not gray; a 10 %
    blend scores 2.1–2.7, about one just-noticeable difference, and still
    counts as gray.  The high percentile (rather than the mean) catches a
    mostly gray photo with one coloured object ("colour splash") once that
    object covers more than about 1 % of the pixels.

    Very dark images: chroma shrinks with lightness, so a colour photo darkened
    to a mean L* of about 3 (x0.08 in sRGB) scores 1-6 and is mostly called
    gray, while at a mean L* of 13 (x0.3) 2 % of colour crops are (measured on
    200 CIFAR-like 32 px crops).  The criterion stays absolute on purpose: at
    L* 2-5 the remaining chroma is one or two 8-bit steps, no more than in a
    gray image with +-1 level of channel noise (score 1.2-1.4), and below a
    just-noticeable difference.  A lightness-relative chroma does not
    separate them either: ``C*ab * 50 / max(L*, 10)`` gives 5.8-6.9 for such
    noisy dark gray images and 4.5-29 for the dark colour crops.  Read the
    verdict together with the ``dark`` flag.

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` sRGB; a ``(H, W)`` image is grayscale by construction
        (score 0).
    threshold : float
        Chroma limit in C*ab units.
    percentile : float
        Which percentile of the per-pixel chroma is the score (0–100).

    Returns
    -------
    (bool, float)
        ``(is_gray, score)``.

    References
    ----------
    CIE 015:2018, eq. 8.7 (chroma); G. Sharma, *Digital Color Imaging
    Handbook*, CRC Press, 2003, ch. 1 (JND ≈ 2.3 ΔE*ab).

    Examples
    --------
    >>> is_grayscale(np.full((8, 8, 3), 0.4))[0]
    True
    """
    _check_percentile(percentile, "percentile")
    _check_threshold(threshold, "threshold")
    img = finite_pixels(as_float_image(image))
    if img.ndim == 2:
        return True, 0.0
    lab = srgb_to_lab(np.clip(_strided_pixels(img), 0.0, 1.0))
    score = _chroma_score(lab, percentile)
    return bool(score < threshold), score


def _check_percentile(value: float, name: str) -> None:
    # a string or None reached the comparison as a raw TypeError
    number = isinstance(value, int | float | np.integer | np.floating)
    if not (number and not isinstance(value, bool) and 0.0 <= value <= 100.0):
        raise InvalidParameterError(f"{name} must be a number in [0, 100], got {value!r}")


def _check_threshold(value: float, name: str) -> None:
    # NaN compares False with every score: every image would be called colour
    if not (isinstance(value, int | float | np.integer | np.floating) and 0 <= value < np.inf):
        raise InvalidParameterError(
            f"{name} must be a non-negative chroma (C*ab, default "
            f"{GRAYSCALE_CHROMA_THRESHOLD}), got {value!r}"
        )


def _strided_pixels(img: np.ndarray, max_pixels: int = _MAX_CHROMA_PIXELS) -> np.ndarray:
    """``(N, 3)`` pixels, every k-th one beyond ``max_pixels`` (fast, deterministic)."""
    pixels = img.reshape(-1, 3)
    if pixels.shape[0] > max_pixels:
        pixels = pixels[:: pixels.shape[0] // max_pixels + 1]
    return pixels


def _chroma_score(lab: np.ndarray, percentile: float) -> float:
    """``np.percentile`` of chroma (linear interpolation), from squared chroma.

    Squaring is monotonic, so the two order statistics the percentile
    interpolates between are found on a² + b² (no ``hypot`` over every pixel)
    and only those two are square-rooted.
    """
    a, b = lab[:, 1], lab[:, 2]
    squared = a * a
    squared += b * b
    position = percentile / 100.0 * (squared.size - 1)
    lo = int(np.floor(position))
    hi = min(lo + 1, squared.size - 1)
    squared.partition((lo, hi))
    low, high = np.sqrt(float(squared[lo])), np.sqrt(float(squared[hi]))
    return round(low + (high - low) * (position - lo), 6)


@dataclasses.dataclass(frozen=True)
class ColorSummary:
    """Every per-image colour measure of :func:`color_summary`.

    Attributes
    ----------
    colorfulness : float
        Hasler & Süsstrunk's M (:func:`colorfulness`).
    mean_lightness, std_lightness : float
        Mean and spread of CIE L*, from 0 to 100 (:func:`lightness_stats`;
        a scan stores them as ``mean_L`` and ``std_L``).  Not the luma in
        ``[0, 1]`` that :class:`boda.quality.ExposureStats` calls
        ``mean_lightness``.
    grayscale_score : float
        Chroma percentile of :func:`is_grayscale`; ``is_grayscale`` is its verdict.
    is_grayscale : bool
    dominant_colors : list of ((float, float, float), float)
        ``(rgb, fraction)`` as :func:`dominant_colors` returns them.
    """

    colorfulness: float
    mean_lightness: float
    std_lightness: float
    grayscale_score: float
    is_grayscale: bool
    dominant_colors: list[tuple[tuple[float, float, float], float]]


def color_summary(
    image: np.ndarray,
    *,
    k: int = 5,
    seed: int = 0,
    max_samples: int = 10_000,
    max_iter: int = 30,
    grayscale_threshold: float = GRAYSCALE_CHROMA_THRESHOLD,
    grayscale_percentile: float = 99.0,
    max_pixels: int = _MAX_CHROMA_PIXELS,
) -> ColorSummary:
    """All the per-image colour measures, from a single CIELAB conversion.

    The same values as :func:`colorfulness`, :func:`lightness_stats`,
    :func:`is_grayscale` and :func:`dominant_colors` with the same arguments
    (up to float32 rounding of L*), at about half their combined cost: the
    L*a*b* pixels are computed once and shared, the palette's samples drawn
    from them.  Up to ``max_pixels`` pixels every pixel counts; beyond that
    every statistic uses every k-th pixel, as the chroma score of
    :func:`is_grayscale` does beyond 100 000.  A subsample, unlike a smaller
    image, keeps each pixel's own colour: a small coloured object still
    reaches the chroma percentile, and noise is not averaged away.

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` sRGB or ``(H, W)`` gray.
    k, seed, max_samples, max_iter
        The palette's, see :func:`dominant_colors`.
    grayscale_threshold, grayscale_percentile
        ``threshold`` and ``percentile`` of :func:`is_grayscale`.
    max_pixels : int
        Pixels looked at; the default equals :func:`is_grayscale`'s.  ``boda
        scan`` passes 10 000 for its thumbnails (measured: the same grayscale
        verdicts on the Kodak gray, noisy, sepia and colour-splash cases).

    Returns
    -------
    ColorSummary

    References
    ----------
    See the four functions.

    Examples
    --------
    >>> summary = color_summary(np.full((8, 8, 3), 0.5), k=2)
    >>> summary.is_grayscale, summary.dominant_colors[0][1]
    (True, 1.0)
    """
    _check_palette_args(k, max_samples, seed, max_iter)
    _check_percentile(grayscale_percentile, "grayscale_percentile")
    _check_threshold(grayscale_threshold, "grayscale_threshold")
    if not (whole_number(max_pixels) and max_pixels >= 1):
        raise InvalidParameterError(f"max_pixels must be a whole number >= 1, got {max_pixels!r}")
    tone = _tone(image, max_pixels, grayscale_percentile)
    rng = np.random.default_rng(seed)
    samples = tone.lab
    if samples.shape[0] > max_samples:  # the draw dominant_colors makes
        samples = samples[rng.integers(0, samples.shape[0], size=max_samples)]
    return ColorSummary(
        colorfulness=0.0 if tone.gray_array else colorfulness(tone.pixels[:, None]),
        mean_lightness=tone.mean_lightness,
        std_lightness=tone.std_lightness,
        grayscale_score=tone.grayscale_score,
        is_grayscale=bool(tone.grayscale_score < grayscale_threshold),
        dominant_colors=_palette(samples, k, rng, max_iter),
    )


@dataclasses.dataclass(frozen=True)
class _Tone:
    """What :func:`color_summary` computes before its palette and colourfulness."""

    gray_array: bool  # a (H, W) image: its chroma is 0 by definition
    pixels: np.ndarray  # (N, 3) sRGB, every k-th pixel beyond max_pixels
    lab: np.ndarray  # their L*a*b*
    mean_lightness: float
    std_lightness: float
    grayscale_score: float


def _tone(image: np.ndarray, max_pixels: int, grayscale_percentile: float) -> _Tone:
    """Mean and spread of L* and the chroma percentile of :func:`is_grayscale`, from one
    CIELAB conversion of up to ``max_pixels`` pixels: the part of :func:`color_summary`
    a scan without its descriptive measures still needs (the same values)."""
    img = finite_pixels(as_float_image(image))
    gray_array = img.ndim == 2
    if gray_array:
        img = np.repeat(img[:, :, None], 3, axis=2)
    pixels = _strided_pixels(img, max_pixels)
    lab = srgb_to_lab(np.clip(pixels, 0.0, 1.0))
    lightness = lab[:, 0].astype(np.float64)
    return _Tone(
        gray_array=gray_array,
        pixels=pixels,
        lab=lab,
        mean_lightness=round(float(lightness.mean()), 10),
        std_lightness=round(float(lightness.std()), 10),
        grayscale_score=0.0 if gray_array else _chroma_score(lab, grayscale_percentile),
    )
