"""Turning stored scores into flags.

Flags are derived, not stored at analysis time, so that changing a threshold
re-flags a folder without decoding any image again.  Per-image flags compare
one score with one threshold; duplicate flags come from grouping the hashes of
every image in the catalog.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from array import array
from collections.abc import Callable, Iterable, Mapping

from boda.catalog import ImageRecord
from boda.core.numbers import finite_float, finite_real, whole_number
from boda.errors import InvalidParameterError

__all__ = [
    "FlagRule", "DUPLICATE_FLAGS", "FlagDeriver", "ODD_SIZE_MIN_IMAGES", "default_thresholds",
    "derive_flags",
]


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
    ("low_information", None, operator.lt, "nearly empty: very little variation (entropy), "
     "or too few pixels to hold more"),
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
    # Decided across the folder (FlagDeriver.size_rows): "size_ratio" is not a stored
    # score but the flag's own, from the stored widths and heights.
    FlagRule(
        "odd_size", "size_ratio", operator.gt, 16.0,
        "far fewer or far more pixels than most images of the folder (a thumbnail among "
        "photos, a photo among 32 px crops)",
    ),
]

#: Flags whose score is decided across the folder at flag time, not stored per image.
_FOLDER_RULES = frozenset({"odd_size"})

#: Readable images a folder needs before ``odd_size`` means anything: with fewer, the
#: quartiles it measures against are the smallest and the largest image themselves.
ODD_SIZE_MIN_IMAGES = 5

@functools.cache
def _rules() -> tuple[FlagRule, ...]:
    # Built on first use (importing boda.quality at import time would slow the
    # CLI's start), as one immutable tuple: two scans started at once from two
    # threads used to both extend a shared list and derive every flag twice.
    return (*_quality_rules(), *_other_rules())


#: Flags decided across images, with what they mean.
DUPLICATE_FLAGS = {
    "exact_duplicate": "the decoded pixels, transparency included, are identical to another "
    "file's",
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


#: The widest near-duplicate tolerance a scan takes: distinct Kodak photos are 20 or
#: more bits apart by pHash and unrelated ones about 32, so above this every group
#: would be chance, and the exact grouping's work grows steeply with the radius
#: (100 000 files: 3 s at 10 bits, 52 s at 32).
MAX_NEAR_DUPLICATE_DISTANCE = 24


def resolve_thresholds(overrides: Mapping[str, float] | object | None) -> dict[str, float]:
    """Defaults updated with user overrides; unknown names and bad values raise a clear error.

    ``overrides`` maps flag names to thresholds; a
    :class:`boda.quality.QualityThresholds` (what :func:`boda.quality.analyze`
    takes) gives its four quality thresholds.  Every threshold must be a
    finite number (NaN would silently switch a flag off); ``near_duplicate``,
    a number of differing hash bits, a whole number from 0 to
    :data:`MAX_NEAR_DUPLICATE_DISTANCE`; ``odd_size`` and ``odd_aspect_ratio``
    ratios of at least 1.
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
            if name == "exact_duplicate":  # a flag, but one without a threshold
                raise InvalidParameterError(
                    "exact_duplicate has no threshold (it is set for identical decoded "
                    "pixels); near_duplicate=BITS sets how close look-alikes must be; the "
                    f"flags with a threshold: {sorted(thresholds)}"
                )
            raise InvalidParameterError(
                f"unknown flag {name!r} in thresholds; choose from {sorted(thresholds)}"
            )
        # True is 1 to float(): it was taken as the threshold 1 (QualityThresholds,
        # which scan() also takes, refuses bools as well).
        number = None if isinstance(value, bool) else finite_float(value)
        if number is None:
            raise InvalidParameterError(
                f"threshold {name}={value!r} is not a finite number; "
                f"the default is {name}={thresholds[name]:g}"
            )
        if name == "odd_size" and number < 1:
            raise InvalidParameterError(
                f"threshold odd_size={value!r} must be a factor of at least 1 (how many times "
                f"fewer or more pixels); the default is odd_size={thresholds[name]:g}"
            )
        if name == "odd_aspect_ratio" and number < 1:
            raise InvalidParameterError(
                f"threshold odd_aspect_ratio={value!r} must be a ratio of at least 1 (long "
                f"side over short side); the default is odd_aspect_ratio={thresholds[name]:g}"
            )
        if name == "near_duplicate" and not (
            number.is_integer() and 0 <= number <= MAX_NEAR_DUPLICATE_DISTANCE
        ):
            raise InvalidParameterError(
                f"threshold near_duplicate={value!r} must be a whole number of hash bits "
                f"from 0 to {MAX_NEAR_DUPLICATE_DISTANCE} (unrelated photos differ by about 32 "
                "of the 64 bits: a wider tolerance links them into one group, and grouping "
                f"slows to hours); the default is near_duplicate={thresholds[name]:g}"
            )
        thresholds[name] = number
    return thresholds


def describe_rules(thresholds: dict[str, float]) -> dict[str, str]:
    """Per flag, the rule in words with its threshold (for reports and --help)."""
    out = {rule.name: rule.describe(thresholds[rule.name]) for rule in _rules()}
    entropy = thresholds["low_information"]
    out["low_information"] += f", or at most {_tiny_pixels(entropy):g} pixels"
    out["odd_size"] = (
        f"size_ratio > {thresholds['odd_size']:g} (times more pixels than the folder's "
        f"75th-percentile image, or fewer than its 25th; {ODD_SIZE_MIN_IMAGES}+ images)"
    )
    out["exact_duplicate"] = "identical decoded pixels"
    out["near_duplicate"] = f"perceptual-hash Hamming distance <= {thresholds['near_duplicate']:g}"
    return out


def _tiny_pixels(entropy_threshold: float) -> float:
    """The most pixels an image may have and still be ``low_information`` whatever it
    shows: a histogram of k pixels has at most log2(k) bits of entropy, so an image of
    at most 2**t pixels can never exceed the threshold t (a 2x2 image with four
    different levels has exactly 2 bits: all it can hold)."""
    return math.floor(2.0 ** min(entropy_threshold, 62.0)) if entropy_threshold >= 0 else 0.0


#: ``step(name, done, total)``: the progress of a long step (``total`` None: unknown).
StepProgress = Callable[[str, int, "int | None"], None]


def derive_flags(
    records: Iterable[ImageRecord], thresholds: dict[str, float], *, mirrored: bool = False
) -> list[tuple[int, str, float | None, int | None]]:
    """Return ``(image_id, flag, score, group_id)`` rows for every flag that applies.

    ``odd_size`` compares each image's pixel count (``width * height``) with
    the folder's: its ``size_ratio`` is how many times fewer pixels it has than
    the image at the 25th percentile of pixel counts, or more than the one at
    the 75th (1 in between), and it is flagged above the threshold; a folder of
    fewer than :data:`ODD_SIZE_MIN_IMAGES` readable images flags none.
    ``low_information`` is also set for an image of at most ``2 **
    threshold`` pixels, whose entropy cannot exceed the threshold.
    Duplicate groups are numbered from 1 in path order; every member of a
    group is flagged (the report shows the group side by side, the user picks
    what to keep).  A near-duplicate group whose members all share one pixel
    hash is left to ``exact_duplicate`` alone, and perfectly flat images
    (:data:`boda.duplicates.FLAT_PHASHES`) and images without a pHash (under
    :data:`boda.duplicates.MIN_PHASH_SIDE` pixels a side) are never near
    duplicates.  Near-duplicate groups are single-linkage (connected
    components), so a group may hold files that look alike only through
    others; the keep plan (:func:`boda.report.duplicate_sets`) cuts them into
    sets of direct copies.  With ``mirrored``, an image and a left-right mirror
    image of it are near duplicates too
    (:func:`boda.duplicates.find_near_duplicates_mirrored`, from the
    ``phash_mirrored`` of the records' ``extra``; a record without one takes no
    part in mirrored matching).
    """
    from boda.catalog._catalog import _hex_hash

    deriver = FlagDeriver(thresholds, mirrored=mirrored)
    for rec in records:
        if rec.status == "ok" and rec.id is not None:
            flipped = rec.extra.get("phash_mirrored") if isinstance(rec.extra, dict) else None
            deriver.add(
                rec.id, rec.scores, rec.pixel_hash, rec.phash, size=(rec.width, rec.height),
                phash_mirrored=_hex_hash(flipped) if mirrored else None,
            )
    return deriver.image_rows + deriver.size_rows() + deriver.duplicate_rows()


#: Perceptual hashes are 64-bit: 0 <= phash < _HASH_END.
_HASH_END = 1 << 64


class FlagDeriver:
    """:func:`derive_flags` one image at a time, keeping only what grouping needs.

    :meth:`add` each readable image in path order: its per-image flags are
    decided at once (:attr:`image_rows`), and only its id, hashes and pixel
    count are kept for :meth:`size_rows` and :meth:`duplicate_rows`, so a
    catalog of a million images is flagged without holding its records.
    ``image_rows + size_rows() + duplicate_rows()`` equals :func:`derive_flags`
    of the same records.  With ``mirrored``, near duplicates include left-right
    mirror images (each image's ``phash_mirrored``), and after
    :meth:`duplicate_rows`, :attr:`mirrored_ids` lists the near-duplicate members
    whose nearest match in their group is a mirror image.
    """

    def __init__(self, thresholds: dict[str, float], *, mirrored: bool = False):
        # The last item: the most pixels an image may have to carry the flag whatever its
        # score (low_information: see _tiny_pixels; 0 for the others).
        tiny = _tiny_pixels(thresholds["low_information"])
        self._rules = [
            (rule.name, rule.score_key, rule.compare, thresholds[rule.name],
             tiny if rule.name == "low_information" else 0)
            for rule in _rules() if rule.name not in _FOLDER_RULES
        ]
        self._max_distance = int(thresholds["near_duplicate"])
        self._odd_size = thresholds["odd_size"]
        self.image_rows: list[tuple[int, str, float | None, int | None]] = []
        self._ids: list[int] = []
        self._pixel_hashes: list[str | None] = []
        self._phashes: list[int | None] = []
        self._pixels = array("q")  # width * height of each image added, -1: unknown
        self.mirrored = mirrored
        self._flipped: list[int | None] = []
        #: After :meth:`duplicate_rows` with ``mirrored``: the ids of the near-duplicate
        #: members whose nearest match is a mirror image of them.
        self.mirrored_ids: list[int] = []
        #: After :meth:`duplicate_rows` with ``mirrored``: the images with a pHash but
        #: no mirrored pHash (records analysed before boda kept it).
        self.without_mirrored = 0

    def add(
        self, image_id: int, scores: Mapping[str, float], pixel_hash: str | None,
        phash: int | None, size: tuple[int | None, int | None] | None = None,
        phash_mirrored: int | None = None,
    ) -> None:
        """One readable image (status ``"ok"``), in path order; ``size`` is its
        ``(width, height)`` (None, or None in it: unknown, never ``odd_size``);
        ``phash_mirrored`` the pHash of its mirror image (read with ``mirrored``).
        A score that is no finite real number, a ``pixel_hash`` that is not text and
        a ``phash`` that is no integer in [0, 2**64) are missing, as the report reads
        them."""
        rows = self.image_rows
        width, height = size if size is not None else (None, None)
        known = type(width) is int and type(height) is int and width > 0 and height > 0
        pixels = width * height if known else -1
        for name, key, compare, threshold, tiny in self._rules:
            value = scores.get(key)
            if type(value) is not float or value - value != 0:  # not a finite float
                # text, bools, NaN from a hand-edited catalog: missing, as in the report
                value = finite_real(value)
            if value is not None and (compare(value, threshold) or 0 < pixels <= tiny):
                rows.append((image_id, name, value, None))
        self._ids.append(image_id)
        # A catalog is a file anyone can edit, and the report reads a hash cell of
        # another type as missing: so does the grouping (a pHash stored as 1.5 or
        # 1e23 stopped the scan with the clustering's error about "hashes[0]").
        self._pixel_hashes.append(pixel_hash if type(pixel_hash) is str else None)
        self._phashes.append(
            phash if (type(phash) is int or whole_number(phash)) and 0 <= phash < _HASH_END
            else None
        )
        self._pixels.append(pixels)
        if self.mirrored:
            self._flipped.append(phash_mirrored)

    def size_rows(self) -> list[tuple[int, str, float | None, int | None]]:
        """The ``odd_size`` rows of the images added (see :func:`derive_flags`).

        The quartiles are pixel counts of images of the folder (the one at rank
        ``floor((n - 1) / 4)`` and at ``ceil(3 (n - 1) / 4)`` in size order), so a
        size that a quarter of the folder shares is never odd, and a folder of
        equally sized images flags nothing.
        """
        import numpy as np

        pixels = np.frombuffer(self._pixels, dtype=np.int64) if len(self._pixels) else None
        if pixels is None:
            return []
        known = np.flatnonzero(pixels > 0)
        if len(known) < ODD_SIZE_MIN_IMAGES:
            return []
        ranked = np.sort(pixels[known])
        n = len(ranked)
        low, high = float(ranked[(n - 1) // 4]), float(ranked[-(-3 * (n - 1) // 4)])
        values = pixels[known].astype(np.float64)
        ratio = np.maximum(low / values, values / high)
        odd = np.flatnonzero(ratio > self._odd_size)
        return [(self._ids[known[i]], "odd_size", float(ratio[i]), None) for i in odd]

    def duplicate_rows(
        self, step: StepProgress | None = None
    ) -> list[tuple[int, str, float | None, int | None]]:
        """The ``exact_duplicate`` then ``near_duplicate`` rows of the images added.

        ``step("duplicates", done, total)`` is called as the hashes are
        clustered (``total`` None before the clustering says), then
        ``step("distances", done, total)`` as the near-duplicate groups are measured.
        """
        from boda.duplicates import (
            FLAT_PHASHES,
            find_exact_duplicates,
            find_near_duplicates,
            find_near_duplicates_mirrored,
        )

        ids, pixel, phashes = self._ids, self._pixel_hashes, self._phashes
        rows: list[tuple[int, str, float | None, int | None]] = []
        if step:
            step("duplicates", 0, None)
        hashed = [i for i, h in enumerate(pixel) if h is not None]
        for group_id, group in enumerate(find_exact_duplicates([pixel[i] for i in hashed]), 1):
            for i in group:
                rows.append((ids[hashed[i]], "exact_duplicate", float(len(group)), group_id))
        del hashed

        # A flat image's hash only says "no structure" (a grey and a blue card share
        # it), so flat images are never near duplicates; identical ones are exact.
        phashed = [i for i, h in enumerate(phashes) if h is not None and h not in FLAT_PHASHES]
        clustered = (lambda done, total: step("duplicates", done, total)) if step else None
        # Each member's nearest hash within max_distance is in its own group (single
        # linkage), so the clustering's own nearest distances are the flag scores.
        flipped = None
        if self.mirrored:
            hashes = [phashes[i] for i in phashed]
            mirrored = [self._flipped[i] for i in phashed]
            self.without_mirrored = sum(h is None for h in mirrored)
            groups, nearest, flipped = find_near_duplicates_mirrored(
                hashes, mirrored, max_distance=self._max_distance, progress=clustered,
                return_nearest=True,
            )
            del hashes, mirrored
        else:
            groups, nearest = find_near_duplicates(
                [phashes[i] for i in phashed], max_distance=self._max_distance,
                progress=clustered, return_nearest=True,
            )
        group_id = 0
        self.mirrored_ids = []
        for done, group in enumerate(groups, 1):
            members = [phashed[i] for i in group]
            # Left to exact_duplicate only when every member has one known pixel hash:
            # records without one (a library caller's, a damaged row) are not exact
            # copies of each other, and their look-alike groups used to vanish.
            shared = {pixel[i] for i in members}
            if len(shared) >= 2 or None in shared:
                group_id += 1
                for k, i in zip(group, members, strict=True):
                    rows.append((ids[i], "near_duplicate", float(nearest[k]), group_id))
                    if flipped is not None and flipped[k]:
                        self.mirrored_ids.append(ids[i])
            if step and (done % 1000 == 0 or done == len(groups)):
                step("distances", done, len(groups))
        return rows
