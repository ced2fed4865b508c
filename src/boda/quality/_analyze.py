"""The quality verdict the scan runs on every image: :func:`analyze`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from boda.core.image import as_float_image, to_gray
from boda.core.numbers import real_number
from boda.errors import InvalidParameterError
from boda.quality._blur import laplacian_variance, tenengrad, wavelet_energy
from boda.quality._exposure import exposure_stats
from boda.quality._scale import REFERENCE_SIDE, to_reference_gray
from boda.quality._sharpness import (
    _PERCENTILE,
    _TILE,
    BLUR_THRESHOLD,
    _measure,
    sharpness_score,
)

__all__ = ["ANALYSIS_MAX_SIDE", "QualityThresholds", "QualityReport", "analyze"]

#: Longer side the scan should decode images to (``read_image(path,
#: max_side=ANALYSIS_MAX_SIDE)``).  Equal to the blur measures' reference
#: scale, so :func:`analyze` needs no further resampling and a 24 MP JPEG is
#: decoded in draft mode (1/8 DCT scale) before a small Lanczos resize.  The
#: verdicts do not depend on it: larger inputs are area-averaged to 640 anyway.
ANALYSIS_MAX_SIDE = REFERENCE_SIDE


@dataclasses.dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of the four quality flags, each on the score of the same name.

    Attributes
    ----------
    blurry : float
        Flag when ``blurry < 0.44``.  The score is the sharpness score of
        :func:`boda.quality.sharpness` (0 smooth, ~1 sharp natural photo, 2
        white noise), evaluated at 640 px; NaN (never flagged) for an image
        that cannot be measured (flat, nearly flat, a side under 8 px, or no
        detail standing clear of the noise).
    dark : float
        Flag when ``dark > 0.8``, ``dark = 1 - p95`` of lightness (luma): 95 %
        of the pixels darker than 0.2 (51/255).
    light : float
        Flag when ``light > 0.85``, ``light = p05`` of lightness: 95 % of the
        pixels brighter than 0.85 (217/255).
    low_information : float
        Flag when ``low_information < 2.0``, the entropy of the luma histogram
        in bits (0 constant, 8 uniform; photos score about 5.7-7.8).
    """

    blurry: float = BLUR_THRESHOLD
    dark: float = 0.8
    light: float = 0.85
    low_information: float = 2.0

    def __post_init__(self) -> None:
        # A string compared with a score raised TypeError inside analyze(), and NaN
        # never flags anything: both are refused here, where the value is given.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not real_number(value) or math.isnan(value):
                raise InvalidParameterError(
                    f"threshold {field.name} must be a number (infinity never or always "
                    f"flags), got {value!r}"
                )

    #: (flag, comparison, what the score is) in report order.
    _RULES = (
        ("blurry", "<", "sharpness score"),
        ("dark", ">", "1 - 95th percentile of lightness"),
        ("light", ">", "5th percentile of lightness"),
        ("low_information", "<", "lightness entropy in bits"),
    )

    def describe(self) -> dict[str, str]:
        """Per flag, the rule in words, e.g. ``"flag when blurry < 0.44 (sharpness score)"``."""
        return {
            name: f"flag when {name} {op} {getattr(self, name):g} ({what})"
            for name, op, what in self._RULES
        }

    def decide(self, scores: dict[str, float]) -> dict[str, bool]:
        """The flags for a dict holding the four scores (a NaN score never flags)."""
        out = {}
        for name, op, _ in self._RULES:
            value, limit = scores[name], getattr(self, name)
            out[name] = bool(value < limit) if op == "<" else bool(value > limit)
        return out


@dataclasses.dataclass(frozen=True)
class QualityReport:
    """What :func:`analyze` found.

    Attributes
    ----------
    flags : dict of str to bool
        ``blurry``, ``dark``, ``light``, ``low_information``.
    scores : dict of str to float
        The score each flag is decided on (same keys) plus every individual
        measure: ``detail_ratio``, ``anisotropy``, ``laplacian_variance``, ``tenengrad``,
        ``wavelet_energy``, ``mean_lightness``,
        ``p05_lightness``, ``p50_lightness``, ``p95_lightness``, ``contrast``,
        ``entropy``.  ``blurry``, ``detail_ratio`` and ``anisotropy`` are NaN
        for an image that cannot be measured (see :func:`boda.quality.sharpness`).
    thresholds : QualityThresholds
        The thresholds the flags were decided with.
    """

    flags: dict[str, bool]
    scores: dict[str, float]
    thresholds: QualityThresholds


def analyze(
    image: np.ndarray,
    thresholds: QualityThresholds | None = None,
    *,
    classic_measures: bool = True,
) -> QualityReport:
    """Blur, exposure and information content of one image, with the flags.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` or ``(H, W)``, float32 in ``[0, 1]`` (or uint8/uint16),
        any size; the blur measures are evaluated at :data:`ANALYSIS_MAX_SIDE`.
    thresholds : QualityThresholds, optional
        Defaults to ``QualityThresholds()``.
    classic_measures : bool
        Also report ``laplacian_variance``, ``tenengrad`` and
        ``wavelet_energy``.  They decide nothing and cost about 8-10 ms
        at 640 px, so the folder scan turns them off.

    Returns
    -------
    QualityReport

    Notes
    -----
    Costs about 13 ms for a 640x480 image on one core, 5-7 ms without the
    classic measures (see ``docs/quality.md``).  Tong et al.'s measure is left out here (slower and
    less accurate, see the benchmark); :func:`boda.quality.sharpness` with
    ``all_measures=True`` computes it.

    Examples
    --------
    >>> import numpy as np
    >>> analyze(np.full((64, 64), 0.01, np.float32)).flags["dark"]
    True
    """
    thresholds = _thresholds(thresholds)
    img = as_float_image(image)
    gray = to_gray(img)
    ref = to_reference_gray(gray, REFERENCE_SIDE)
    ratio, anisotropy = _measure(ref, _TILE, _PERCENTILE)
    stats = exposure_stats(gray)
    scores = {
        "blurry": sharpness_score(ratio, anisotropy, side=min(ref.shape)),
        "dark": stats.dark,
        "light": stats.light,
        "low_information": stats.entropy,
        "detail_ratio": ratio,
        "anisotropy": anisotropy,
        "mean_lightness": stats.mean_lightness,
        "p05_lightness": stats.p05,
        "p50_lightness": stats.p50,
        "p95_lightness": stats.p95,
        "contrast": stats.contrast,
        "entropy": stats.entropy,
    }
    if classic_measures:
        scores["laplacian_variance"] = laplacian_variance(ref, reference_side=None)
        scores["tenengrad"] = tenengrad(ref, reference_side=None)
        scores["wavelet_energy"] = wavelet_energy(ref, reference_side=None)
    return QualityReport(thresholds.decide(scores), scores, thresholds)


def _thresholds(given: object) -> QualityThresholds:
    """``QualityThresholds`` from None (the defaults), itself, or a mapping of its fields."""
    if given is None:
        return QualityThresholds()
    if isinstance(given, QualityThresholds):
        return given
    fields = sorted(f.name for f in dataclasses.fields(QualityThresholds))
    if isinstance(given, Mapping):
        unknown = sorted(set(given) - set(fields))
        if unknown:
            raise InvalidParameterError(
                f"unknown thresholds {unknown}; QualityThresholds has {fields}"
            )
        return dataclasses.replace(QualityThresholds(), **given)
    raise InvalidParameterError(
        f"thresholds must be a QualityThresholds or a mapping of {fields}, "
        f"got {type(given).__name__}"
    )
