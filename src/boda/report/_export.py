"""JSON and CSV exports of a catalog: one record per file, failed files included.

Every field and column is described in ``docs/scan.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from boda.catalog import Catalog, ImageRecord
from boda.core.numbers import finite_float
from boda.io import open_output, prepare_output

__all__ = [
    "CSV_COLUMNS", "DuplicateSet", "catalog_records", "duplicate_sets", "folder_counts",
    "is_boda_csv",
    "iter_catalog_records",
    "record_relpath", "select_records", "selected_paths", "selections", "write_csv",
]

#: The CSV's columns before the scores (one column per score name follows, sorted).
CSV_COLUMNS = (
    "path", "status", "error", "width", "height", "format", "mode", "channels", "bit_depth",
    "has_alpha", "flags", "exact_duplicate_group", "near_duplicate_group", "size",
    "pixel_hash", "phash", "link_to", "path_bytes_hex",
)  # fmt: skip

#: The file's layout, kept in each readable record's ``extra`` (see
#: :func:`boda.scan._analyze.image_layout`), given as columns of their own.
LAYOUT_FIELDS = ("mode", "channels", "bit_depth", "has_alpha")

#: The columns of the tables earlier versions wrote (before the layout columns): such
#: a table is boda's too, so a new export replaces it without ``--overwrite``.
_EARLIER_CSV_COLUMNS = (
    tuple(c for c in CSV_COLUMNS if c not in LAYOUT_FIELDS),
)


def layout_values(extra: object) -> tuple[Any, Any, Any, Any]:
    """``mode``, ``channels``, ``bit_depth`` and ``has_alpha`` of a record's ``extra``;
    None for each one it does not hold (an unreadable file, a catalog written before
    they were recorded, a damaged cell)."""
    extra = extra if isinstance(extra, dict) else {}
    mode, channels, depth, alpha = (extra.get(name) for name in LAYOUT_FIELDS)
    return (
        mode if isinstance(mode, str) else None,
        channels if type(channels) is int else None,
        depth if type(depth) is int else None,
        alpha if isinstance(alpha, bool) else None,
    )


def is_boda_csv(path: str | Path) -> bool:
    """Whether ``path`` is a CSV table boda wrote (its header starts with :data:`CSV_COLUMNS`,
    or with the columns of an earlier version: one without the layout columns).

    Such a table is made again from the catalog at any time, so a new export may
    replace it; any other existing file is left alone unless the user asks
    (``--overwrite``).

    Examples
    --------
    >>> import tempfile, os
    >>> table = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(table, "w").write("name,score\\n")
    >>> is_boda_csv(table)
    False
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(max(len(header) for header in _CSV_HEADERS))
    except OSError:
        return False
    return any(head.startswith(header) for header in _CSV_HEADERS)


_CSV_HEADERS = tuple(
    ",".join(columns).encode() + b"," for columns in (CSV_COLUMNS, *_EARLIER_CSV_COLUMNS)
)


def catalog_records(catalog_path: str | Path) -> list[dict[str, Any]]:
    """Every record of the catalog as a JSON-friendly dict, ordered by path.

    ``catalog_path`` is the catalog file, or the scanned folder holding it
    (``FOLDER/.boda/catalog.db``).  Each dict has ``path`` (readable: bytes
    that are not UTF-8 as ``\\xNN``), ``path_bytes_hex`` (the name's exact
    bytes in hex, only for such names, else None), ``status``
    (``"ok"``/``"error"``/``"link"``), ``link_to`` (a link's target),
    ``error`` (the reason a file could not be read), ``size``, ``width``,
    ``height``, ``format``, ``flags`` (names), ``flag_scores``, ``groups``
    (duplicate group ids), ``scores`` (every measure), ``extra`` and the
    hashes (see ``docs/scan.md``).

    Raises
    ------
    CatalogError
        No catalog there (the message names the file looked for), or not a
        usable one.
    """
    return list(iter_catalog_records(catalog_path))


def iter_catalog_records(catalog_path: str | Path) -> Iterator[dict[str, Any]]:
    """:func:`catalog_records` one at a time (constant memory for any catalog size)."""
    with Catalog(catalog_path, readonly=True) as catalog:
        yield from catalog.record_dicts()


def write_csv(
    catalog_path: str | Path,
    out: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    only: str | Iterable[str] | None = None,
    keep_under: str | Iterable[str] | None = None,
    under: str | Iterable[str] | None = None,
    copy_under: str | Iterable[str] | None = None,
) -> Path:
    """Write the catalog as a CSV table: one row per file, one column per score.

    ``catalog_path`` is the catalog file or the scanned folder.  Columns:
    :data:`CSV_COLUMNS` (the file's ``mode``, ``channels``, ``bit_depth`` and
    ``has_alpha`` (``true``/``false``) from the record's ``extra``, empty where
    it has none; ``flags`` joined by ``;``; the duplicate group ids
    shared by the members of a group; the size in bytes; the pixel hash and
    the perceptual hash in hex; a link's target; the exact bytes of a name
    that is not UTF-8), then every score name found in the catalog, sorted.

    The rows are written one at a time (constant memory for any catalog
    size) to a temporary file that replaces ``out`` when complete, as
    :func:`boda.io.write_output` does; ``progress(rows_written, rows)`` is
    called now and then.  ``only`` keeps the rows of the files in any of
    these selections (as :func:`select_records`; the columns stay those of
    the whole catalog); ``keep_under`` is passed on to the ``redundant``
    selection (see :func:`duplicate_sets`); ``under`` and ``copy_under`` keep
    the rows of the files under these folders, or with a copy under them (as
    :func:`select_records`).
    """
    selected = None if only is None else _selection_names(only)  # checked before writing
    keep = _keep_prefixes(keep_under)
    folders = _folder_prefixes(under, "under"), _folder_prefixes(copy_under, "copy_under")
    out = prepare_output(out)
    with Catalog(catalog_path, readonly=True) as catalog:
        total = catalog.count_all()
        score_names = catalog.score_names()  # a light pass: the header comes first
        with open_output(out, text=True) as fh:
            writer = csv.writer(fh)
            writer.writerow([*CSV_COLUMNS, *score_names])
            rows = (
                catalog.record_dicts() if selected is None and not any(folders)
                else _selected(catalog_path, selected, keep_under=keep, under=folders[0],
                               copy_under=folders[1])
            )
            for n, r in enumerate(rows, 1):
                groups = r["groups"]
                mode, channels, depth, alpha = layout_values(r["extra"])
                writer.writerow(
                    [r["path"], r["status"], r["error"] or "", r["width"], r["height"],
                     r["format"] or "", mode or "", "" if channels is None else channels,
                     "" if depth is None else depth,
                     "" if alpha is None else ("true" if alpha else "false"),
                     ";".join(r["flags"]),
                     groups.get("exact_duplicate", ""), groups.get("near_duplicate", ""),
                     r["size"], r["pixel_hash"] or "", r["phash"] or "", r["link_to"] or "",
                     r["path_bytes_hex"] or ""]
                    + [r["scores"].get(name, "") for name in score_names]
                )
                if progress and n % 5000 == 0:
                    progress(n, total)
    if progress:
        progress(total, total)
    return out


# -- selections: the files a user acts on (boda report --only ... --paths) ------------------------

#: Selections that are not flags, with what they hold (the flags come from
#: :func:`boda.scan.flag_descriptions`).
_OTHER_SELECTIONS = {
    "failed": "files that could not be read (status 'error')",
    "unflagged": "readable files that carry no flag",
    "redundant": "duplicate copies other than the one boda keeps in each set (the best "
    "exposed, then sharpest, of the files with the fewest flags; safe to remove)",
    "label_conflict": "files whose exact copy lies in a folder of another name (in a dataset "
    "of class folders: one image, two labels)",
}


def selections() -> dict[str, str]:
    """Every name :func:`select_records` takes, with what it selects.

    The flag names of :func:`boda.scan.flag_descriptions` (``blurry``,
    ``dark``, ``exact_duplicate``...), then ``failed``, ``unflagged``,
    ``redundant`` (see :func:`duplicate_sets` for the keep rule) and
    ``label_conflict`` (see :func:`select_records`).

    Examples
    --------
    >>> names = selections()
    >>> "blurry" in names and "near_duplicate" in names, list(names)[-4:]
    (True, ['failed', 'unflagged', 'redundant', 'label_conflict'])
    """
    from boda.scan import flag_descriptions

    return {**flag_descriptions(), **_OTHER_SELECTIONS}


def _selection_names(only: str | Iterable[str]) -> frozenset[str]:
    """``only`` (names, or one string of comma-separated names) checked against
    :func:`selections`."""
    from boda.errors import InvalidParameterError

    items = list(only) if isinstance(only, Iterable) and not isinstance(only, str) else [only]
    if not all(isinstance(item, str) for item in items):
        raise InvalidParameterError(
            f"only must name selections as strings, e.g. ('blurry', 'dark'); got {only!r}"
        )
    names = {name.strip() for item in items for name in item.split(",") if name.strip()}
    valid = selections()
    unknown = sorted(names - set(valid))
    if unknown or not names:
        what = f"unknown selection {', '.join(map(repr, unknown))}" if unknown else "no selection"
        raise InvalidParameterError(f"{what}; choose from {', '.join(valid)}")
    return frozenset(names)


def record_relpath(record: dict[str, Any]) -> bytes:
    """The exact bytes of a record's path (relative to the scanned folder).

    ``path`` is exact for names that are UTF-8; the others come back from
    ``path_bytes_hex``.

    Examples
    --------
    >>> record_relpath({"path": "bad\\\\xff.png", "path_bytes_hex": "626164ff2e706e67"})
    b'bad\\xff.png'
    >>> record_relpath({"path": "trip/é.jpg", "path_bytes_hex": None})
    b'trip/\\xc3\\xa9.jpg'
    """
    raw = record.get("path_bytes_hex")
    return bytes.fromhex(raw) if raw else record["path"].encode("utf-8")


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


def _keep_prefixes(keep_under: str | Iterable[str] | None) -> tuple[str, ...]:
    """``keep_under`` as folder prefixes without a leading ``./`` or a trailing ``/``."""
    from boda.errors import InvalidParameterError

    if keep_under is None:
        return ()
    items = [keep_under] if isinstance(keep_under, str | os.PathLike) else list(keep_under)
    out = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise InvalidParameterError(
                f"keep_under must name folders as strings, e.g. ('train/',); got {keep_under!r}"
            )
        text = os.fspath(item).replace(os.sep, "/")
        while text.startswith("./"):
            text = text[2:]
        text = text.strip("/")
        if not text or text == ".":
            raise InvalidParameterError(
                f"keep_under {os.fspath(item)!r} names no folder; give a folder inside the "
                "scanned one, e.g. 'train/'"
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


def select_records(
    catalog_path: str | Path,
    only: str | Iterable[str] | None = None,
    *,
    keep_under: str | Iterable[str] | None = None,
    under: str | Iterable[str] | None = None,
    copy_under: str | Iterable[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The records (as :func:`iter_catalog_records`) of the files in any of ``only``,
    under one of the folders ``under``, with a copy under one of ``copy_under``.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it.
    only : str or iterable of str, optional
        Names of :func:`selections` (a string may hold several, comma-separated);
        a file is selected when it is in any of them.  A flag name selects the
        files carrying that flag; ``failed`` the files that could not be read;
        ``unflagged`` the readable files without a flag; ``redundant`` the
        duplicate copies other than the one boda keeps (:func:`duplicate_sets`);
        ``label_conflict`` the files whose exact duplicate (identical pixels) lies
        in a folder of another name: in a dataset of class folders
        (``train/cat/x.png``, ``train/dog/x.png``) one image with two labels.  A
        label is the name of the file's folder (``test/cat/x.png`` and
        ``train/cat/x.png`` agree: that is a leak, see ``copy_under``); files
        directly in the scanned folder have none.  Links are in none of them.
        None (default): every record.
    keep_under : str or iterable of str, optional
        For ``redundant``: folders whose files are kept in preference to their
        copies elsewhere (as in :func:`duplicate_sets`).
    under : str or iterable of str, optional
        Keep only the files under one of these folders of the scanned folder
        (``"test"``, ``"test/"`` and ``"./test"`` are the same; whole names:
        ``test`` holds ``test/x.png``, not ``testing/x.png``).  With ``only``,
        the files in both.
    copy_under : str or iterable of str, optional
        Keep only the files that have a copy under one of these folders:
        another file that is an exact duplicate (identical pixels) or a near
        duplicate *of this file* (in its near-duplicate group and within the
        tolerance of its pHash; a group alone is not enough, since it chains
        files that look nothing alike).  ``under="test/", copy_under="train/"``:
        the test files that leak from the training set.  Each record then has
        a ``copy_of`` field: the display path of its closest copy there (an
        exact one first, then the fewest differing pHash bits).  A folder of
        ``under`` or ``copy_under`` that holds no file of the catalog is no
        error: nothing is selected through it, and a :class:`UserWarning`
        names it once the records have all been read.

    Returns
    -------
    iterator of dict
        The selected records in path order, one at a time.  The names are
        checked at once (before the iterator is used).  When ``redundant`` is
        one of them, every record has a ``kept`` field: the display path of
        the file kept in its duplicate set (None for a file that is not a
        redundant copy).

    Raises
    ------
    InvalidParameterError
        An unknown name, or none (the message lists the valid ones).
    CatalogError
        No catalog there, or not a usable one.

    Examples
    --------
    >>> [r["path"] for r in select_records("photos/", only=("blurry", "dark"))]  # doctest: +SKIP
    ['IMG_0031.jpg', 'night/IMG_0102.jpg']
    """
    keep = _keep_prefixes(keep_under)
    folders = _folder_prefixes(under, "under"), _folder_prefixes(copy_under, "copy_under")
    if only is None and not any(folders):
        return iter_catalog_records(catalog_path)
    names = None if only is None else _selection_names(only)
    return _selected(catalog_path, names, keep_under=keep, under=folders[0], copy_under=folders[1])


def _selected(
    catalog_path: str | Path,
    names: frozenset[str] | None,
    *,
    keep_under: tuple[str, ...] = (),
    under: tuple[bytes, ...] = (),
    copy_under: tuple[bytes, ...] = (),
) -> Iterator[dict[str, Any]]:
    """The selection of :func:`select_records` (``names`` None: every record), the
    folders as :func:`_folder_prefixes` gives them."""
    every, names = names is None, names or frozenset()
    plan = "redundant" in names
    redundant = _duplicate_plan(catalog_path, keep_under)[1] if plan else {}
    conflicts = _label_conflicts(catalog_path) if "label_conflict" in names else set()
    copied, sources = _copied_under(catalog_path, copy_under) if copy_under else ({}, set())
    _warn_unmatched(copy_under, sources, "copy_under")
    failed, unflagged = "failed" in names, "unflagged" in names
    matched: set[bytes] = set()
    for record in iter_catalog_records(catalog_path):
        if under or copy_under:
            relpath = record_relpath(record)
            inside = _folders_holding(relpath, under)
            matched.update(inside)
            if (under and not inside) or (copy_under and relpath not in copied):
                continue
        status, flags = record["status"], record["flags"]
        if (
            every
            or not names.isdisjoint(flags)
            or (failed and status == "error")
            or (unflagged and status == "ok" and not flags)
            or (redundant and record_relpath(record) in redundant)
            or (conflicts and record_relpath(record) in conflicts)
        ):
            if plan:  # which file each copy is a copy of, for review
                record["kept"] = redundant.get(record_relpath(record))
            if copy_under:  # and which file under the folder this one is a copy of
                record["copy_of"] = copied[record_relpath(record)]
            yield record
    _warn_unmatched(under, matched, "under")


def selected_paths(
    catalog_path: str | Path,
    only: str | Iterable[str] | None = None,
    *,
    root: str | Path | None = None,
    keep_under: str | Iterable[str] | None = None,
    under: str | Iterable[str] | None = None,
    copy_under: str | Iterable[str] | None = None,
) -> Iterator[bytes]:
    """The exact paths (bytes) of the files :func:`select_records` selects.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it.
    only : str or iterable of str, optional
        As in :func:`select_records` (None: every file).
    root : str or Path, optional
        Joined in front of each path (the scanned folder as the user names
        it, so the paths work from the current folder); None: the paths
        relative to the scanned folder.
    keep_under, under, copy_under : str or iterable of str, optional
        As in :func:`select_records`.

    Returns
    -------
    iterator of bytes
        Raw file names (``os.fsencode``), so names that are not UTF-8 survive.

    Examples
    --------
    >>> for path in selected_paths("photos/", "redundant", root="photos"):  # doctest: +SKIP
    ...     print(os.fsdecode(path))
    photos/copies/a copy.png
    """
    records = select_records(
        catalog_path, only, keep_under=keep_under, under=under, copy_under=copy_under
    )
    base = None if root is None else os.fsencode(root)
    return (
        record_relpath(r) if base is None else os.path.join(base, record_relpath(r))
        for r in records
    )


# -- selections by folder: --under, --copy-under, label_conflict ----------------------------------


def _folder_prefixes(folders: str | Iterable[str] | None, name: str) -> tuple[bytes, ...]:
    """``folders`` (folders of the scanned one: ``test``, ``test/``, ``./test``) as the
    exact bytes of their paths, each ending in ``/``; checked at once."""
    from boda.errors import InvalidParameterError

    if folders is None:
        return ()
    single = isinstance(folders, str | os.PathLike)
    items = [folders] if single or not isinstance(folders, Iterable) else list(folders)
    out = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise InvalidParameterError(
                f"{name} must name folders as strings, e.g. ('test/',); got {folders!r}"
            )
        raw = os.fsencode(item).replace(os.sep.encode(), b"/")
        parts = [part for part in raw.split(b"/") if part not in (b"", b".")]
        if raw.startswith(b"/") or b".." in parts or not parts:
            raise InvalidParameterError(
                f"{name} {os.fsdecode(raw)!r}: give a folder inside the scanned one, as its "
                "path relative to it (e.g. 'test/')"
            )
        out.append(b"/".join(parts) + b"/")
    return tuple(out)


def _folders_holding(relpath: bytes, prefixes: tuple[bytes, ...]) -> list[bytes]:
    """The ``prefixes`` (``b"test/"``) that hold ``relpath``, or name it (the record of a
    folder that could not be listed)."""
    return [p for p in prefixes if relpath.startswith(p) or relpath == p[:-1]]


class _NoFileUnder(UserWarning):
    """A folder given to ``under`` or ``copy_under`` holds no file of the catalog."""


def _warn_unmatched(prefixes: tuple[bytes, ...], matched: set[bytes], option: str) -> None:
    """A warning for each folder prefix that holds no file of the catalog (a typo, or a
    path given from the current folder instead of from the scanned one)."""
    import warnings

    for prefix in prefixes:
        if prefix not in matched:
            warnings.warn(
                f"{option} {os.fsdecode(prefix)!r}: no file of the catalog is under it "
                "(folders are relative to the scanned folder)",
                _NoFileUnder, stacklevel=3,
            )


def _copied_under(
    catalog_path: str | Path, prefixes: tuple[bytes, ...]
) -> tuple[dict[bytes, str], set[bytes]]:
    """The files that have a copy under one of ``prefixes`` (another file, in their
    exact-duplicate group, or in their near-duplicate group *and* within the tolerance of
    their pHash: single-linkage groups chain files that look nothing alike), each with
    the display path of its closest copy there (an exact one first, then the fewest
    differing bits, then the first in path order); and the prefixes that hold any file."""
    import numpy as np

    from boda.duplicates._clusters import _popcount

    matched: set[bytes] = set()
    groups: dict[tuple[str, int], list[tuple[bytes, str, int, bool]]] = {}
    with Catalog(catalog_path, readonly=True) as catalog:
        tolerance = _near_tolerance(catalog)
        for record in catalog.record_dicts():  # in path order
            relpath = record_relpath(record)
            inside = _folders_holding(relpath, prefixes)
            matched.update(inside)
            phash = 0 if record["phash"] is None else int(record["phash"], 16)
            for flag, group_id in record["groups"].items():
                groups.setdefault((flag, group_id), []).append(
                    (relpath, record["path"], phash, bool(inside))
                )
    best: dict[bytes, tuple[int, str]] = {}  # (-1 for identical pixels, or bits; path)
    for (flag, _), members in sorted(groups.items()):  # exact_duplicate before near_
        sources = [(relpath, path, phash) for relpath, path, phash, inside in members if inside]
        if not sources:
            continue
        exact = flag != "near_duplicate"
        hashes = np.array([phash for _, _, phash in sources], dtype=np.uint64)
        index = {relpath: i for i, (relpath, _, _) in enumerate(sources)}
        for relpath, _, phash, inside in members:
            bits = np.full(len(sources), -1, dtype=np.int64) if exact else (
                _popcount(hashes ^ np.uint64(phash)).astype(np.int64))
            if inside:
                bits[index[relpath]] = 65  # a file is not its own copy
            k = int(np.argmin(bits))  # the first of the closest, in path order
            if bits[k] <= tolerance and (bits[k], sources[k][1]) < best.get(relpath, (66, "")):
                best[relpath] = (int(bits[k]), sources[k][1])
    return {relpath: path for relpath, (_, path) in best.items()}, matched


def _label(relpath: bytes) -> bytes | None:
    """A file's label in a class-folder dataset: the name of its folder (None at the top)."""
    folder = relpath.rpartition(b"/")[0]
    return folder.rpartition(b"/")[2] if folder else None


def _label_conflicts(catalog_path: str | Path) -> set[bytes]:
    """The files whose exact duplicate lies in a folder of another name."""
    labels: dict[int, set[bytes]] = {}
    members: dict[int, list[bytes]] = {}
    for record in iter_catalog_records(catalog_path):
        group_id = record["groups"].get("exact_duplicate")
        label = _label(record_relpath(record)) if group_id is not None else None
        if label is not None:
            labels.setdefault(group_id, set()).add(label)
            members.setdefault(group_id, []).append(record_relpath(record))
    return {
        relpath for group_id, names in labels.items() if len(names) > 1
        for relpath in members[group_id]
    }


def folder_counts(
    catalog_path: str | Path,
    depth: int = 1,
    *,
    only: str | Iterable[str] | None = None,
    under: str | Iterable[str] | None = None,
    copy_under: str | Iterable[str] | None = None,
    keep_under: str | Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Files and flag counts per folder: a class whose images are 30 % blurry is a
    collection problem that a count over the whole dataset hides.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it.
    depth : int
        How many leading folder names make a row: 1 gives ``train`` and
        ``test``, 2 gives ``train/cat``, ``train/dog``...  A file in a shallower
        folder counts in that folder's row; a file in the scanned folder itself
        in the row ``"."``.
    only, under, copy_under, keep_under : optional
        Count only the files :func:`select_records` selects with these.

    Returns
    -------
    list of dict
        One per folder, in path order: ``folder``, ``files`` (records, links and
        unreadable files included), ``unreadable`` and ``flags`` (the number of
        files carrying each flag, every flag of :func:`boda.scan.flag_descriptions`,
        0 included).

    Raises
    ------
    InvalidParameterError
        ``depth`` below 1, or a bad selection.
    CatalogError
        No catalog there, or not a usable one.

    Examples
    --------
    >>> for row in folder_counts("dataset/", depth=2):            # doctest: +SKIP
    ...     print(row["folder"], row["files"], row["flags"]["blurry"])
    test/cat 1000 12
    """
    from boda.errors import InvalidParameterError
    from boda.scan import flag_descriptions

    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InvalidParameterError(
            f"depth must be a whole number of folder names, 1 or more; got {depth!r}"
        )
    records = select_records(
        catalog_path, only, under=under, copy_under=copy_under, keep_under=keep_under
    )
    names = list(flag_descriptions())
    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        folder = "/".join(record["path"].split("/")[:-1][:depth]) or "."
        row = rows.get(folder)
        if row is None:
            row = rows[folder] = {
                "folder": folder, "files": 0, "unreadable": 0, "flags": dict.fromkeys(names, 0)
            }
        row["files"] += 1
        row["unreadable"] += record["status"] == "error"
        for flag in record["flags"]:
            if flag in row["flags"]:
                row["flags"][flag] += 1
    return [rows[folder] for folder in sorted(rows)]
