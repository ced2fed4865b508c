"""The duplicate sets of a catalog and the file boda keeps in each (the keep rule
behind the ``redundant`` selection and ``--keep-under``)."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from pathlib import Path

from boda.catalog import Catalog, ImageRecord
from boda.core.numbers import finite_float

__all__ = ["DuplicateSet", "duplicate_sets"]


@dataclasses.dataclass(frozen=True)
class DuplicateSet:
    """Files that are copies of one file, and that file, which boda keeps.

    Every other member is an exact copy of the file kept (identical pixels)
    or within the near-duplicate tolerance of it (pHash Hamming distance): a
    set never holds two files that are alike only through a chain of others.
    A near-duplicate group may therefore be cut into several sets, each with
    its own kept file (see :func:`duplicate_sets`).  Paths are display paths
    (as ``path`` in the records).

    Attributes
    ----------
    keep : str
        The file boda keeps (the keep rule: :func:`duplicate_sets`): of the
        fewest other flags and most pixels, the best exposed relative to the
        others, then the sharpest.
    redundant : tuple of str
        The other members: copies of ``keep`` that may be removed, in path order.
    linked : tuple of str
        Other members that a link of the folder points to: kept too, since
        removing them would leave the link dangling.
    exact_groups, near_groups : tuple of int
        The ids of the groups the members belong to (``groups`` in the
        records); several sets may share a near-duplicate group.
    """

    keep: str
    redundant: tuple[str, ...]
    linked: tuple[str, ...]
    exact_groups: tuple[int, ...]
    near_groups: tuple[int, ...]


def _keep_order(
    record: ImageRecord, keep_under: tuple[str, ...] = (), exposure: int = 0
) -> tuple[bool, int, int, int, float, str, bytes]:
    """Sort key of the keep rule (:func:`duplicate_sets`): the file to keep sorts first.

    ``exposure`` is the record's exposure error within its group
    (:func:`_exposure_errors`).
    """
    from boda.scan._flags import DUPLICATE_FLAGS

    elsewhere = bool(keep_under) and not _is_under(record.path, keep_under)
    problems = sum(name not in DUPLICATE_FLAGS for name in record.flags)
    pixels = (record.width or 0) * (record.height or 0)
    sharpness = finite_float(record.scores.get("blurry"))  # higher = sharper
    return (elsewhere, problems, -pixels, exposure,
            -sharpness if sharpness is not None else math.inf, record.path, record.relpath)


#: Exposure differences are counted in steps of this many EV (stops): frames whose
#: mean lightness is within half a stop of the group's reference frame are equally
#: exposed, and the sharpest of them keeps.  A burst's frames vary by well under this
#: (0.16 EV at most over the 37 bursts of a test shoot); an exposure mistake is 1 EV
#: or more, and auto-exposure steps by 1/3 EV.
_EXPOSURE_STEP_EV = 0.5
#: Lightness percentiles at or beyond these (luma, 0-1) are clipped (8-bit 254-255, 0-1).
_CLIP_HIGH, _CLIP_LOW = 0.995, 0.005
#: Mid-grey, the centre of the well-exposedness weight of Mertens et al. (2007), in EV.
_MID_GREY_EV = 2.2 * math.log2(0.5)
#: The luma used for a mean lightness of 0 (log2 needs a positive number).
_DARKEST = 0.5 / 255
_PERCENTILES = ("p05_lightness", "p50_lightness", "p95_lightness")


def _tone(record: ImageRecord) -> tuple[float, int, int] | None:
    """A record's mean lightness in EV (``2.2 * log2``: stops of linear light for sRGB
    luma), and how many of its 5th, 50th and 95th lightness percentiles are clipped
    white and black; None without a stored ``mean_lightness``."""
    scores = record.scores
    mean = finite_float(scores.get("mean_lightness"))
    if mean is None:
        return None
    white = black = 0
    for name in _PERCENTILES:  # read per file of every duplicate set: kept cheap
        value = scores.get(name)
        if isinstance(value, float | int):  # NaN compares False: not clipped
            white += value >= _CLIP_HIGH
            black += value <= _CLIP_LOW
    return 2.2 * math.log2(max(mean, _DARKEST)), white, black


def _exposure_errors(members: list[ImageRecord]) -> list[int]:
    """The exposure error of each member, relative to the group's reference frame.

    Exposure is relative to the scene, so members are compared with each other: the
    reference is the member of median mean lightness (of an even count's two middle
    members, the one nearer mid-grey; of a pair, the one nearer mid-grey).  A member's
    error is its distance from the reference in whole steps of :data:`_EXPOSURE_STEP_EV`,
    plus one for each lightness percentile it clips (white or black) that the reference
    does not.  Members without stored lightness scores count as well exposed (0).
    """
    tones = [_tone(r) for r in members]
    known = sorted((t for t in tones if t is not None), key=lambda t: t[0])
    if len(known) < 2:
        return [0] * len(members)
    middle = (len(known) - 1) // 2
    reference = known[middle]
    if len(known) % 2 == 0:
        upper = known[middle + 1]
        if abs(upper[0] - _MID_GREY_EV) < abs(reference[0] - _MID_GREY_EV):
            reference = upper
    ev, white, black = reference
    return [
        0 if t is None
        else int(abs(t[0] - ev) / _EXPOSURE_STEP_EV) + max(0, t[1] - white) + max(0, t[2] - black)
        for t in tones
    ]


class _NoFileUnder(UserWarning):
    """A folder given to ``under``, ``copy_under`` or ``keep_under`` holds no file of the
    catalog."""


def _warn_unmatched(
    prefixes: Iterable[str | bytes], matched: set, option: str, what: str = "file",
    stacklevel: int = 3,
) -> None:
    """A warning for each folder prefix that holds no ``what`` of the catalog (a typo, or
    a path given from the current folder instead of from the scanned one)."""
    import warnings

    for prefix in prefixes:
        if prefix not in matched:
            warnings.warn(
                f"{option} {os.fsdecode(prefix)!r}: no {what} of the catalog is under it "
                "(folders are relative to the scanned folder)",
                _NoFileUnder, stacklevel=stacklevel,
            )


def _keep_prefixes(
    keep_under: str | Iterable[str] | None, name: str = "keep_under"
) -> tuple[str, ...]:
    """``keep_under`` as folder prefixes without a leading ``./`` or a trailing ``/``,
    checked as ``under`` is: a folder inside the scanned one, by its path relative to it."""
    from boda.errors import InvalidParameterError

    if keep_under is None:
        return ()
    items = [keep_under] if isinstance(keep_under, str | os.PathLike) else list(keep_under)
    out = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise InvalidParameterError(
                f"{name} must name folders as strings, e.g. ('train/',); got {keep_under!r}"
            )
        text = os.fspath(item).replace(os.sep, "/")
        while text.startswith("./"):
            text = text[2:]
        outside = text.startswith("/") or ".." in text.split("/")
        text = text.strip("/")
        if not text or text == "." or outside:
            raise InvalidParameterError(
                f"{name} {os.fspath(item)!r}: give a folder inside the scanned one, as its "
                "path relative to it (e.g. 'train/')"
            )
        out.append(text)
    return tuple(out)


def _is_under(path: str, prefixes: tuple[str, ...]) -> bool:
    """Whether the display ``path`` is one of ``prefixes`` or inside one (whole names:
    ``train`` holds ``train/a.png``, not ``training/a.png``)."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _split_set(
    members: list[ImageRecord], max_distance: int, keep_under: tuple[str, ...]
) -> list[list[ImageRecord]]:
    """Cut the members of linked duplicate groups into sets whose every other member is a
    copy of the set's first (kept) file.

    Near-duplicate groups are single-linkage: they chain A~B~C with A and C far apart.
    In keep order, the first member not yet in a set keeps; every member not yet in a
    set with its pixel hash (an exact copy), or a comparable pHash within
    ``max_distance`` bits of its pHash, joins its set; repeat.  The exposure errors
    of the keep order are relative to all the members (:func:`_exposure_errors`).
    """
    import numpy as np

    from boda.duplicates._clusters import _popcount

    errors = _exposure_errors(members)
    keys = [_keep_order(r, keep_under, e) for r, e in zip(members, errors, strict=True)]
    ranked = [members[i] for i in sorted(range(len(members)), key=keys.__getitem__)]
    # Only pHashes that took part in the near-duplicate grouping compare (a flat or
    # too-small image's hash says nothing).
    if len(ranked) <= _SMALL_SET:  # most sets: a pair or a few files, cheaper in Python
        return _split_small(ranked, max_distance)
    comparable = np.array(
        [r.phash is not None and "near_duplicate" in r.flags for r in ranked], dtype=bool
    )
    phash = np.array([r.phash or 0 for r in ranked], dtype=np.uint64)
    pixels: dict[str | None, int] = {None: -1}
    pixel = np.array(
        [-1 if r.pixel_hash is None else pixels.setdefault(r.pixel_hash, len(pixels))
         for r in ranked], dtype=np.int64,
    )
    left = np.ones(len(ranked), dtype=bool)
    out = []
    for keeper in range(len(ranked)):
        if not left[keeper]:
            continue
        joins = left & (pixel == pixel[keeper]) & (pixel >= 0)
        if comparable[keeper]:
            near = _popcount(phash ^ phash[keeper]) <= max_distance  # numpy < 2 too
            joins |= left & comparable & near
        joins[keeper] = True
        left &= ~joins
        out.append([ranked[i] for i in np.flatnonzero(joins)])  # the keeper first
    return out


#: Sets up to this size are cut by :func:`_split_small` (numpy's overhead dominates).
_SMALL_SET = 32


def _split_small(ranked: list[ImageRecord], max_distance: int) -> list[list[ImageRecord]]:
    """:func:`_split_set` of members already in keep order, one pair at a time."""
    out = []
    while ranked:
        keeper, copies, left = ranked[0], [ranked[0]], []
        near = keeper.phash is not None and "near_duplicate" in keeper.flags
        for record in ranked[1:]:
            if (
                (keeper.pixel_hash is not None and record.pixel_hash == keeper.pixel_hash)
                or (near and record.phash is not None and "near_duplicate" in record.flags
                    and (keeper.phash ^ record.phash).bit_count() <= max_distance)
            ):
                copies.append(record)
            else:
                left.append(record)
        out.append(copies)
        ranked = left
    return out


def _near_tolerance(catalog: Catalog) -> int:
    """The Hamming tolerance the catalog's near-duplicate flags were derived with."""
    from boda.duplicates import DEFAULT_MAX_DISTANCE

    stored = catalog.get_setting("thresholds")
    value = stored.get("near_duplicate") if isinstance(stored, dict) else None
    number = finite_float(value)
    return int(number) if number is not None else DEFAULT_MAX_DISTANCE


#: The scores the keep rule reads (sharpness, then exposure).
_KEEP_SCORES = ("blurry", "mean_lightness", "p05_lightness", "p50_lightness", "p95_lightness")


def _duplicate_plan(
    catalog_path: str | Path, keep_under: tuple[str, ...] = ()
) -> tuple[list[DuplicateSet], dict[bytes, str]]:
    """:func:`duplicate_sets`, and the exact paths of their redundant members, each
    with the display path of the file kept in its set."""
    groups: dict[tuple[str, int], list[ImageRecord]] = {}
    link_targets: set[bytes] = set()
    with Catalog(catalog_path, readonly=True) as catalog:
        max_distance = _near_tolerance(catalog)
        for record in catalog.records():
            if record.status == "link" and record.link_to is not None:
                link_targets.add(record.link_to)
            for flag, (_, group_id) in record.flags.items():
                if group_id is not None:
                    # Only what the keep rule reads is held (a large catalog has many groups).
                    record.scores = {k: record.scores.get(k) for k in _KEEP_SCORES}
                    record.extra = {}
                    groups.setdefault((flag, group_id), []).append(record)
    # Groups that share a file are one set (union-find over the group keys).
    parent = {key: key for key in groups}

    def root(key: tuple[str, int]) -> tuple[str, int]:
        while parent[key] != key:
            parent[key] = key = parent[parent[key]]
        return key

    owner: dict[bytes, tuple[str, int]] = {}
    for key, members in groups.items():
        for record in members:
            other = owner.setdefault(record.relpath, key)
            parent[root(other)] = root(key)
    sets: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for key in groups:
        sets.setdefault(root(key), []).append(key)
    plans, redundant = [], {}
    for keys in sets.values():
        members = {r.relpath: r for key in keys for r in groups[key]}
        for copies in _split_set(list(members.values()), max_distance, keep_under):
            if len(copies) < 2:
                continue  # a member that is a copy of no kept file: kept, in no set
            others = sorted(copies[1:], key=lambda r: (r.path, r.relpath))
            removable = [r for r in others if r.relpath not in link_targets]
            redundant.update((r.relpath, copies[0].path) for r in removable)
            ids = {(f, g) for r in copies for f, (_, g) in r.flags.items() if g is not None}
            plans.append(DuplicateSet(
                keep=copies[0].path,
                redundant=tuple(r.path for r in removable),
                linked=tuple(r.path for r in others if r.relpath in link_targets),
                exact_groups=tuple(sorted(g for f, g in ids if f == "exact_duplicate")),
                near_groups=tuple(sorted(g for f, g in ids if f == "near_duplicate")),
            ))
    plans.sort(key=lambda plan: plan.keep)
    if keep_under:  # a typo, or a path from the current folder: the default rule decided
        held = {p for members in groups.values() for r in members for p in keep_under
                if _is_under(r.path, (p,))}
        _warn_unmatched(keep_under, held, "keep_under", "duplicate", stacklevel=4)
    return plans, redundant


def duplicate_sets(
    catalog_path: str | Path, *, keep_under: str | Iterable[str] | None = None
) -> list[DuplicateSet]:
    """Every set of duplicate files in the catalog, with the one boda keeps.

    The files of duplicate groups that share a file (an exact copy inside a
    near-duplicate group) are taken in keep order.  The first keeps; every
    file not yet in a set that is an exact copy of it (identical pixels) or
    whose pHash is within the near-duplicate tolerance of its pHash (the
    ``near_duplicate`` threshold of the catalog's last scan) joins its set;
    the first file left keeps the next set, and so on.  Near-duplicate groups
    are single-linkage (A looks like B, B like C, so A, B and C are one
    group even when A and C look nothing alike), so one group may give
    several sets, and several kept files; a member that is a copy of no kept
    file, and has no copy of its own left, is kept and in no set.

    The keep order: first a file under one of ``keep_under`` (when given),
    then the fewest other flags (a dark, blurry or cropped copy is not kept
    over a good one), then the most pixels (``width * height`` of the
    original), then the best exposed, then the sharpest (highest ``blurry``
    score), then the first in path order.

    Exposure is judged against the other files taken together, from the
    stored lightness scores: the reference is the file of median
    ``mean_lightness`` (of two middle files, the one nearer mid-grey, 0.5, the
    centre of the well-exposedness weight of Mertens et al.), and a file's
    error is the number of whole half-stops (EV, ``2.2 * log2`` of the luma)
    between its mean lightness and the reference's, plus one for each of its
    5th, 50th and 95th lightness percentiles clipped (>= 0.995 or <= 0.005)
    where the reference's is not.  Files within half a stop of the reference
    that clip no more than it are equally exposed: the sharpest of them keeps.
    A blown-out or dark frame of a burst therefore does not keep, though its
    ``blurry`` score is often higher and its ``light``/``dark`` score under the
    flag threshold; of a pair more than half a stop apart, the one nearer
    mid-grey keeps.  Files without stored lightness count as well exposed.

    Every other member of a set is ``redundant`` (listed by
    ``boda report DIR --only redundant``), except a file that a link of the
    folder points to, which is kept as well (``linked``): removing it would
    leave the link dangling.  Links themselves (status ``"link"``) are in no
    group, so they are never kept over a real file nor listed as copies.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it.
    keep_under : str or iterable of str, optional
        Folders (relative to the scanned folder, e.g. ``"train/"``) whose
        files are kept in preference to copies elsewhere (e.g. keep the
        training copy of a train/test leak and list the test copy).

    Returns
    -------
    list of DuplicateSet
        Ordered by the path of the file kept.

    Raises
    ------
    CatalogError
        No catalog there, or not a usable one.
    InvalidParameterError
        A ``keep_under`` entry that is empty or not a string.

    References
    ----------
    .. [1] T. Mertens, J. Kautz, F. Van Reeth, "Exposure Fusion", Pacific
       Graphics 2007, Sec. 3.1 (well-exposedness: a Gaussian around 0.5).

    Examples
    --------
    >>> for s in duplicate_sets("photos/"):          # doctest: +SKIP
    ...     print(s.keep, "<-", s.redundant)
    a.png <- ('copies/a copy.png',)
    """
    return _duplicate_plan(catalog_path, _keep_prefixes(keep_under))[0]
