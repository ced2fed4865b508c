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
    "CSV_COLUMNS", "DuplicateSet", "catalog_records", "duplicate_sets", "is_boda_csv",
    "iter_catalog_records",
    "record_relpath", "select_records", "selected_paths", "selections", "write_csv",
]

#: The CSV's columns before the scores (one column per score name follows, sorted).
CSV_COLUMNS = (
    "path", "status", "error", "width", "height", "format", "flags",
    "exact_duplicate_group", "near_duplicate_group", "size", "pixel_hash", "phash",
    "link_to", "path_bytes_hex",
)  # fmt: skip


def is_boda_csv(path: str | Path) -> bool:
    """Whether ``path`` is a CSV table boda wrote (its header starts with :data:`CSV_COLUMNS`).

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
            head = fh.read(len(_CSV_HEADER))
    except OSError:
        return False
    return head == _CSV_HEADER


_CSV_HEADER = ",".join(CSV_COLUMNS).encode() + b","


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
) -> Path:
    """Write the catalog as a CSV table: one row per file, one column per score.

    ``catalog_path`` is the catalog file or the scanned folder.  Columns:
    :data:`CSV_COLUMNS` (``flags`` joined by ``;``; the duplicate group ids
    shared by the members of a group; the size in bytes; the pixel hash and
    the perceptual hash in hex; a link's target; the exact bytes of a name
    that is not UTF-8), then every score name found in the catalog, sorted.

    The rows are written one at a time (constant memory for any catalog
    size) to a temporary file that replaces ``out`` when complete, as
    :func:`boda.io.write_output` does; ``progress(rows_written, rows)`` is
    called now and then.  ``only`` keeps the rows of the files in any of
    these selections (as :func:`select_records`; the columns stay those of
    the whole catalog).
    """
    selected = None if only is None else _selection_names(only)  # checked before writing
    out = prepare_output(out)
    with Catalog(catalog_path, readonly=True) as catalog:
        total = catalog.count_all()
        score_names = catalog.score_names()  # a light pass: the header comes first
        with open_output(out, text=True) as fh:
            writer = csv.writer(fh)
            writer.writerow([*CSV_COLUMNS, *score_names])
            rows = catalog.record_dicts() if selected is None else _selected(catalog_path, selected)
            for n, r in enumerate(rows, 1):
                groups = r["groups"]
                writer.writerow(
                    [r["path"], r["status"], r["error"] or "", r["width"], r["height"],
                     r["format"] or "", ";".join(r["flags"]),
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
    "redundant": "duplicate copies other than the one boda keeps in each set (safe to remove)",
}


def selections() -> dict[str, str]:
    """Every name :func:`select_records` takes, with what it selects.

    The flag names of :func:`boda.scan.flag_descriptions` (``blurry``,
    ``dark``, ``exact_duplicate``...), then ``failed``, ``unflagged`` and
    ``redundant`` (see :func:`duplicate_sets` for the keep rule).

    Examples
    --------
    >>> names = selections()
    >>> "blurry" in names and "near_duplicate" in names, list(names)[-3:]
    (True, ['failed', 'unflagged', 'redundant'])
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
    """Files that are copies of one another, and which of them boda keeps.

    One set is a duplicate group, or several that share a file (an exact
    group always lies inside the near-duplicate group of its look, when
    there is one).  Paths are display paths (as ``path`` in the records).

    Attributes
    ----------
    keep : str
        The file boda keeps (the keep rule: :func:`duplicate_sets`).
    redundant : tuple of str
        The other members: copies that may be removed, in path order.
    linked : tuple of str
        Other members that a link of the folder points to: kept too, since
        removing them would leave the link dangling.
    exact_groups, near_groups : tuple of int
        The ids of the groups in the set (``groups`` in the records).
    """

    keep: str
    redundant: tuple[str, ...]
    linked: tuple[str, ...]
    exact_groups: tuple[int, ...]
    near_groups: tuple[int, ...]


def _keep_order(record: ImageRecord) -> tuple[int, int, float, str, bytes]:
    """Sort key of the keep rule (:func:`duplicate_sets`): the file to keep sorts first."""
    from boda.scan._flags import DUPLICATE_FLAGS

    problems = sum(name not in DUPLICATE_FLAGS for name in record.flags)
    pixels = (record.width or 0) * (record.height or 0)
    sharpness = finite_float(record.scores.get("blurry"))  # higher = sharper
    return (problems, -pixels, -sharpness if sharpness is not None else math.inf,
            record.path, record.relpath)


def _duplicate_plan(catalog_path: str | Path) -> tuple[list[DuplicateSet], set[bytes]]:
    """:func:`duplicate_sets`, and the exact paths of their redundant members."""
    groups: dict[tuple[str, int], list[ImageRecord]] = {}
    link_targets: set[bytes] = set()
    with Catalog(catalog_path, readonly=True) as catalog:
        for record in catalog.records():
            if record.status == "link" and record.link_to is not None:
                link_targets.add(record.link_to)
            for flag, (_, group_id) in record.flags.items():
                if group_id is not None:
                    # Only what the keep rule reads is held (a large catalog has many groups).
                    record.scores, record.extra = {"blurry": record.scores.get("blurry")}, {}
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
    plans, redundant = [], set()
    for keys in sets.values():
        members = {r.relpath: r for key in keys for r in groups[key]}
        ranked = sorted(members.values(), key=_keep_order)
        others = sorted(ranked[1:], key=lambda r: (r.path, r.relpath))
        removable = [r for r in others if r.relpath not in link_targets]
        redundant.update(r.relpath for r in removable)
        plans.append(DuplicateSet(
            keep=ranked[0].path,
            redundant=tuple(r.path for r in removable),
            linked=tuple(r.path for r in others if r.relpath in link_targets),
            exact_groups=tuple(sorted(g for f, g in keys if f == "exact_duplicate")),
            near_groups=tuple(sorted(g for f, g in keys if f == "near_duplicate")),
        ))
    plans.sort(key=lambda plan: plan.keep)
    return plans, redundant


def duplicate_sets(catalog_path: str | Path) -> list[DuplicateSet]:
    """Every set of duplicate files in the catalog, with the one boda keeps.

    The keep rule, within a set (a duplicate group, or groups sharing a
    file): the file with the fewest other flags (a dark, blurry or cropped
    copy is not kept over a good one), then the most pixels (``width *
    height`` of the original), then the sharpest (highest ``blurry``
    score), then the first in path order.  Every other member is ``redundant`` (listed by
    ``boda report DIR --only redundant``), except a file that a link of the
    folder points to, which is kept as well (``linked``): removing it would
    leave the link dangling.  Links themselves (status ``"link"``) are in no
    group, so they are never kept over a real file nor listed as copies.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it.

    Returns
    -------
    list of DuplicateSet
        Ordered by the path of the file kept.

    Raises
    ------
    CatalogError
        No catalog there, or not a usable one.

    Examples
    --------
    >>> for s in duplicate_sets("photos/"):          # doctest: +SKIP
    ...     print(s.keep, "<-", s.redundant)
    a.png <- ('copies/a copy.png',)
    """
    return _duplicate_plan(catalog_path)[0]


def select_records(
    catalog_path: str | Path, only: str | Iterable[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The records (as :func:`iter_catalog_records`) of the files in any of ``only``.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it.
    only : str or iterable of str, optional
        Names of :func:`selections` (a string may hold several, comma-separated);
        a file is selected when it is in any of them.  A flag name selects the
        files carrying that flag; ``failed`` the files that could not be read;
        ``unflagged`` the readable files without a flag; ``redundant`` the
        duplicate copies other than the one boda keeps (:func:`duplicate_sets`).
        Links are in none of them.  None (default): every record.

    Returns
    -------
    iterator of dict
        The selected records in path order, one at a time.  The names are
        checked at once (before the iterator is used).

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
    if only is None:
        return iter_catalog_records(catalog_path)
    return _selected(catalog_path, _selection_names(only))


def _selected(catalog_path: str | Path, names: frozenset[str]) -> Iterator[dict[str, Any]]:
    redundant = _duplicate_plan(catalog_path)[1] if "redundant" in names else set()
    failed, unflagged = "failed" in names, "unflagged" in names
    for record in iter_catalog_records(catalog_path):
        status, flags = record["status"], record["flags"]
        if (
            not names.isdisjoint(flags)
            or (failed and status == "error")
            or (unflagged and status == "ok" and not flags)
            or (redundant and record_relpath(record) in redundant)
        ):
            yield record


def selected_paths(
    catalog_path: str | Path,
    only: str | Iterable[str] | None = None,
    *,
    root: str | Path | None = None,
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
    records = select_records(catalog_path, only)
    base = None if root is None else os.fsencode(root)
    return (
        record_relpath(r) if base is None else os.path.join(base, record_relpath(r))
        for r in records
    )
