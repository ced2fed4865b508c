"""Selections of a catalog: the files a user acts on (``boda report --only ... --paths``),
by flag, by kind (failed, unflagged, redundant, label_conflict) and by folder
(``--under``, ``--copy-under``), and the flag counts per folder (``--by-folder``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from boda.catalog import Catalog
from boda.catalog._catalog import _hex_hash
from boda.report._export import iter_catalog_records
from boda.report._keep import (
    _duplicate_plan,
    _keep_prefixes,
    _near_tolerance,
    _NoFileUnder,
    _warn_unmatched,
)

__all__ = [
    "folder_counts", "record_relpath", "select_records", "selected_paths", "selections",
]

#: Selections that are not flags, with what they hold (the flags come from
#: :func:`boda.scan.flag_descriptions`).
_OTHER_SELECTIONS = {
    "failed": "files that could not be read (status 'error')",
    "unflagged": "readable files that carry no flag",
    "redundant": "duplicate copies other than the one boda keeps in each set (outside trash "
    "and caches, a camera RAW first, then the fewest flags, most pixels, best exposed, "
    "sharpest, then the original name over a copy's; safe to remove)",
    "label_conflict": "files whose exact copy lies in a folder of another name (in a dataset "
    "of class folders: one image, two labels)",
    "picked": "files you picked (in boda serve, or with boda mark --pick)",
    "rejected": "files you rejected (in boda serve, or with boda mark --reject)",
    "undecided": "readable files neither picked nor rejected: what is left to review",
    "rated": "files you gave 1-5 stars",
}


def selections() -> dict[str, str]:
    """Every name :func:`select_records` takes, with what it selects.

    The flag names of :func:`boda.scan.flag_descriptions` (``blurry``,
    ``dark``, ``exact_duplicate``...), then ``failed``, ``unflagged``,
    ``redundant`` (see :func:`duplicate_sets` for the keep rule),
    ``label_conflict`` (see :func:`select_records`), and the person's own
    marks (:class:`boda.catalog.Marks`): ``picked``, ``rejected``,
    ``undecided`` and ``rated``.

    Examples
    --------
    >>> names = selections()
    >>> "blurry" in names and "near_duplicate" in names, list(names)[-6:]
    (True, ['redundant', 'label_conflict', 'picked', 'rejected', 'undecided', 'rated'])
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



def select_records(
    catalog_path: str | Path,
    only: str | Iterable[str] | None = None,
    *,
    keep_under: str | Iterable[str] | None = None,
    under: str | Iterable[str] | None = None,
    copy_under: str | Iterable[str] | None = None,
    min_rating: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The records (as :func:`iter_catalog_records`) of the files in any of ``only``,
    under one of the folders ``under``, with a copy under one of ``copy_under``, rated
    ``min_rating`` stars or more.

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
        directly in the scanned folder have none.  ``picked``, ``rejected`` and
        ``rated``: the files a person marked so (:class:`boda.catalog.Marks`,
        ``boda serve``, ``boda mark``); ``undecided``: the readable files
        neither picked nor rejected.  Links are in none of them.
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
    min_rating : int, optional
        Keep only the files rated at least this many stars (1-5).  With
        ``only``, the files in both.

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
    stars = _min_rating(min_rating)
    if only is None and not any(folders) and stars is None:
        return iter_catalog_records(catalog_path)
    names = None if only is None else _selection_names(only)
    return _selected(
        catalog_path, names, keep_under=keep, under=folders[0], copy_under=folders[1],
        min_rating=stars,
    )


def _min_rating(stars: object) -> int | None:
    """``min_rating`` checked: None, or a whole number of stars from 1 to 5."""
    from boda.errors import InvalidParameterError

    if stars is None:
        return None
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise InvalidParameterError(
            f"min_rating must be a whole number of stars from 1 to 5; got {stars!r}"
        )
    return stars


def _selected(
    catalog_path: str | Path,
    names: frozenset[str] | None,
    *,
    keep_under: tuple[str, ...] = (),
    under: tuple[bytes, ...] = (),
    copy_under: tuple[bytes, ...] = (),
    min_rating: int | None = None,
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
    picked, rejected = "picked" in names, "rejected" in names
    undecided, rated = "undecided" in names, "rated" in names
    matched: set[bytes] = set()
    for record in iter_catalog_records(catalog_path):
        if min_rating is not None and (record["rating"] or 0) < min_rating:
            continue
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
            or (picked and record["decision"] == "pick" and status != "link")
            or (rejected and record["decision"] == "reject" and status != "link")
            or (undecided and status == "ok" and record["decision"] is None)
            or (rated and record["rating"] is not None and status != "link")
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
    min_rating: int | None = None,
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
    min_rating : int, optional
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
        catalog_path, only, keep_under=keep_under, under=under, copy_under=copy_under,
        min_rating=min_rating,
    )
    base = None if root is None else os.fsencode(root)
    return _file_paths(records, base)


def _file_paths(records: Iterable[dict[str, Any]], base: bytes | None) -> Iterator[bytes]:
    """The records' paths, less the folders a scan could not list: their record is an
    unreadable entry, but a path list feeds ``mv``/``rm``, and a folder would take every
    photo in it along (a note on stderr says how many were left out)."""
    from boda.scan._walk import UNLISTED_FOLDER

    folders = []
    for record in records:
        if record["status"] == "error" and (record.get("error") or "").startswith(
            UNLISTED_FOLDER
        ):
            folders.append(record["path"])
            continue
        relpath = record_relpath(record)
        yield relpath if base is None else os.path.join(base, relpath)
    if folders:
        import warnings

        warnings.warn(
            f"left out {len(folders)} folder{'s' * (len(folders) > 1)} that could not be "
            f"listed (a folder, not a file: {folders[0]!r}{', ...' * (len(folders) > 1)}); "
            "fix its permissions and scan again to see its files",
            _FoldersLeftOut, stacklevel=2,
        )


class _FoldersLeftOut(_NoFileUnder):
    """Shown by the CLI as a note, as the ``--under`` ones are."""


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


def _copied_under(
    catalog_path: str | Path, prefixes: tuple[bytes, ...]
) -> tuple[dict[bytes, str], set[bytes]]:
    """The files that have a copy under one of ``prefixes`` (another file, in their
    exact-duplicate group, or in their near-duplicate group *and* within the tolerance of
    their pHash, or after a scan with ``mirrored`` of their mirror image's, both ways:
    single-linkage groups chain files that look nothing alike), each with
    the display path of its closest copy there (an exact one first, then the fewest
    differing bits, then the first in path order); and the prefixes that hold any file."""
    import numpy as np

    from boda.duplicates._clusters import _popcount, mirror_distance

    matched: set[bytes] = set()
    groups: dict[tuple[str, int], list[tuple[bytes, str, int, bool, int | None]]] = {}
    with Catalog(catalog_path, readonly=True) as catalog:
        tolerance = _near_tolerance(catalog)
        mirrored = catalog.mirrored_scan()
        for record in catalog.record_dicts():  # in path order
            relpath = record_relpath(record)
            inside = _folders_holding(relpath, prefixes)
            matched.update(inside)
            phash = 0 if record["phash"] is None else int(record["phash"], 16)
            extra = record["extra"]
            # a mirrored scan: the pHash of the mirror image, a match too (both ways)
            flipped = (
                _hex_hash(extra.get("phash_mirrored"))
                if mirrored and "near_duplicate" in record["groups"] else None
            )
            for flag, group_id in record["groups"].items():
                groups.setdefault((flag, group_id), []).append(
                    (relpath, record["path"], phash, bool(inside), flipped)
                )
    best: dict[bytes, tuple[int, str]] = {}  # (-1 for identical pixels, or bits; path)
    for (flag, _), members in sorted(groups.items()):  # exact_duplicate before near_
        sources = [(relpath, path, phash, flipped)
                   for relpath, path, phash, inside, flipped in members if inside]
        if not sources:
            continue
        exact = flag != "near_duplicate"
        hashes = np.array([phash for _, _, phash, _ in sources], dtype=np.uint64)
        has_flipped = np.array([f is not None for *_, f in sources], dtype=bool)
        flips = np.array([f or 0 for *_, f in sources], dtype=np.uint64)
        index = {relpath: i for i, (relpath, *_) in enumerate(sources)}
        for relpath, _, phash, inside, flipped in members:
            bits = np.full(len(sources), -1, dtype=np.int64) if exact else (
                _popcount(hashes ^ np.uint64(phash)).astype(np.int64))
            if not exact and flipped is not None and has_flipped.any():
                mirror = mirror_distance(
                    hashes, flips, np.uint64(phash), np.uint64(flipped)
                ).astype(np.int64)
                bits = np.where(has_flipped, np.minimum(bits, mirror), bits)
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
    return set(label_conflict_ids(catalog_path).values())


def label_conflict_ids(catalog_path: str | Path) -> dict[int, bytes]:
    """:func:`_label_conflicts` by record id: ``{id: relpath}``.  Read from the exact
    duplicate groups and their members' paths alone (a pass over every record, scores
    and all, took 2.5 s at 100 000 records for a few hundred grouped files)."""
    with Catalog(catalog_path, readonly=True) as catalog:
        # a group id of another type (a hand-edited catalog) is no group, as in the records
        groups = {i: g for i, g in catalog.flag_groups("exact_duplicate").items()
                  if type(g) is int}
        relpaths = catalog.relpaths_of(groups)
    labels: dict[int, set[bytes]] = {}
    members: dict[int, list[int]] = {}
    for image_id, relpath in relpaths.items():
        label = _label(relpath)
        if label is not None:
            labels.setdefault(groups[image_id], set()).add(label)
            members.setdefault(groups[image_id], []).append(image_id)
    return {
        image_id: relpaths[image_id] for group_id, names in labels.items() if len(names) > 1
        for image_id in members[group_id]
    }


def folder_counts(
    catalog_path: str | Path,
    depth: int = 1,
    *,
    only: str | Iterable[str] | None = None,
    under: str | Iterable[str] | None = None,
    copy_under: str | Iterable[str] | None = None,
    keep_under: str | Iterable[str] | None = None,
    min_rating: int | None = None,
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
    only, under, copy_under, keep_under, min_rating : optional
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
        catalog_path, only, under=under, copy_under=copy_under, keep_under=keep_under,
        min_rating=min_rating,
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

