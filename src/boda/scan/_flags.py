"""Turning stored scores into flags.

Flags are derived, not stored at analysis time, so that changing a threshold
re-flags a folder without decoding any image again.  Per-image flags compare
one score with one threshold; duplicate flags come from grouping the hashes of
every image in the catalog.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence

from boda.catalog import ImageRecord
from boda.core.numbers import finite_float
from boda.errors import InvalidParameterError

__all__ = ["FlagRule", "FLAG_RULES", "DUPLICATE_FLAGS", "default_thresholds", "derive_flags"]


@dataclasses.dataclass(frozen=True)
class FlagRule:
    """A per-image flag: set when ``compare(scores[score_key], threshold)`` holds."""

    name: str
    score_key: str
    compare: Callable[[float, float], bool]
    default: float
    description: str

    def describe(self, threshold: float) -> str:
        """Human-readable rule, e.g. ``"aspect_ratio > 2.5"``."""
        symbol = {operator.lt: "<", operator.gt: ">"}[self.compare]
        return f"{self.score_key} {symbol} {threshold:g}"


def _quality_rules() -> list[FlagRule]:
    from boda.quality import QualityThresholds

    defaults = QualityThresholds()
    return [
        FlagRule(
            name,
            name if key is None else key,
            compare,
            float(getattr(defaults, name)),
            text,
        )
        for name, key, compare, text in QUALITY_FLAG_SPECS
    ]


#: (flag, score key or None for the same name, comparison, description) of the
#: flags decided by :mod:`boda.quality`; the default thresholds come from
#: :class:`boda.quality.QualityThresholds`.
QUALITY_FLAG_SPECS: list[tuple[str, str | None, Callable[[float, float], bool], str]] = [
    ("blurry", None, operator.lt, "too little fine detail: out of focus or motion-blurred"),
    ("dark", None, operator.gt, "underexposed: most of the image is near black"),
    ("light", None, operator.gt, "overexposed: most of the image is near white"),
    ("low_information", None, operator.lt, "nearly empty: very little variation (entropy)"),
]

def _other_rules() -> list[FlagRule]:
    from boda.color import GRAYSCALE_CHROMA_THRESHOLD

    return [
        FlagRule(
            "grayscale", "grayscale", operator.lt, float(GRAYSCALE_CHROMA_THRESHOLD),
            "no colour content (chroma near zero), even when stored as RGB",
        ),
        *OTHER_RULES,
    ]


OTHER_RULES = [
    FlagRule(
        "odd_aspect_ratio", "aspect_ratio", operator.gt, 2.5,
        "long side over short side above 2.5 (panoramas, strips, banners)",
    ),
]

FLAG_RULES: list[FlagRule] = []


def _rules() -> list[FlagRule]:
    if not FLAG_RULES:
        FLAG_RULES.extend(_quality_rules() + _other_rules())
    return FLAG_RULES


#: Flags decided across images, with what they mean.
DUPLICATE_FLAGS = {
    "exact_duplicate": "the decoded pixels are identical to another file's",
    "near_duplicate": "looks like another file (perceptual hash within the Hamming tolerance)",
}


def flag_descriptions() -> dict[str, str]:
    """Every flag name with a sentence saying what it means."""
    out = {rule.name: rule.description for rule in _rules()}
    out.update(DUPLICATE_FLAGS)
    return out


def default_thresholds() -> dict[str, float]:
    """Every per-image flag's default threshold, plus ``near_duplicate`` (max Hamming distance)."""
    from boda.duplicates import DEFAULT_MAX_DISTANCE

    out = {rule.name: rule.default for rule in _rules()}
    out["near_duplicate"] = float(DEFAULT_MAX_DISTANCE)
    return out


def resolve_thresholds(overrides: Mapping[str, float] | object | None) -> dict[str, float]:
    """Defaults updated with user overrides; unknown names and bad values raise a clear error.

    ``overrides`` maps flag names to thresholds; a
    :class:`boda.quality.QualityThresholds` (what :func:`boda.quality.analyze`
    takes) gives its four quality thresholds.  Every threshold must be a
    finite number (NaN would silently switch a flag off); ``near_duplicate``,
    a number of differing hash bits, a whole number from 0 to 64.
    """
    from boda.quality import QualityThresholds

    if isinstance(overrides, QualityThresholds):
        overrides = dataclasses.asdict(overrides)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise InvalidParameterError(
            "thresholds must be a mapping of flag names to numbers, e.g. {'blurry': 0.3}, "
            f"or a QualityThresholds; got {type(overrides).__name__}"
        )
    thresholds = default_thresholds()
    for name, value in (overrides or {}).items():
        if name not in thresholds:
            raise InvalidParameterError(
                f"unknown flag {name!r} in thresholds; choose from {sorted(thresholds)}"
            )
        number = finite_float(value)
        if number is None:
            raise InvalidParameterError(
                f"threshold {name}={value!r} is not a finite number; "
                f"the default is {name}={thresholds[name]:g}"
            )
        if name == "near_duplicate" and not (number.is_integer() and 0 <= number <= 64):
            raise InvalidParameterError(
                f"threshold near_duplicate={value!r} must be a whole number of hash bits "
                f"from 0 to 64; the default is near_duplicate={thresholds[name]:g}"
            )
        thresholds[name] = number
    return thresholds


def describe_rules(thresholds: dict[str, float]) -> dict[str, str]:
    """Per flag, the rule in words with its threshold (for reports and --help)."""
    out = {rule.name: rule.describe(thresholds[rule.name]) for rule in _rules()}
    out["exact_duplicate"] = "identical decoded pixels"
    out["near_duplicate"] = f"perceptual-hash Hamming distance <= {thresholds['near_duplicate']:g}"
    return out


def derive_flags(
    records: Sequence[ImageRecord], thresholds: dict[str, float]
) -> list[tuple[int, str, float | None, int | None]]:
    """Return ``(image_id, flag, score, group_id)`` rows for every flag that applies.

    Duplicate groups are numbered from 1 in path order; every member of a
    group is flagged (the report shows the group side by side, the user picks
    what to keep).  A near-duplicate group whose members all share one pixel
    hash is left to ``exact_duplicate`` alone, and perfectly flat images
    (:data:`boda.duplicates.FLAT_PHASHES`) are never near duplicates.
    """
    from boda.duplicates import (
        FLAT_PHASHES,
        find_exact_duplicates,
        find_near_duplicates,
        nearest_distances,
    )

    ok = [r for r in records if r.status == "ok" and r.id is not None]
    rows: list[tuple[int, str, float | None, int | None]] = []
    for rec in ok:
        for rule in _rules():
            value = rec.scores.get(rule.score_key)
            if value is not None and rule.compare(value, thresholds[rule.name]):
                rows.append((rec.id, rule.name, float(value), None))

    hashed = [r for r in ok if r.pixel_hash is not None]
    for group_id, group in enumerate(find_exact_duplicates([r.pixel_hash for r in hashed]), 1):
        for i in group:
            rows.append((hashed[i].id, "exact_duplicate", float(len(group)), group_id))

    # A flat image's hash only says "no structure" (a grey and a blue card share
    # it), so flat images are never near duplicates; identical ones are exact.
    phashed = [r for r in ok if r.phash is not None and r.phash not in FLAT_PHASHES]
    max_distance = int(thresholds["near_duplicate"])
    groups = find_near_duplicates([r.phash for r in phashed], max_distance=max_distance)
    group_id = 0
    for group in groups:
        if len({phashed[i].pixel_hash for i in group}) < 2:
            continue
        group_id += 1
        nearest = nearest_distances([phashed[i].phash for i in group])
        for i, distance in zip(group, nearest.tolist(), strict=True):
            rows.append((phashed[i].id, "near_duplicate", float(distance), group_id))
    return rows
