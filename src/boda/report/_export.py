"""JSON and CSV exports of a catalog: one record per file, failed files included.

Every field and column is described in ``docs/scan.md``.  The selections that
filter them (``only=``, ``under=``...) are in :mod:`boda.report._select`, the keep
rule of the duplicate sets in :mod:`boda.report._keep`.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from boda.catalog import Catalog, marks_path
from boda.core.numbers import finite_real
from boda.io import open_output, prepare_output
from boda.report._keep import _keep_prefixes

__all__ = [
    "CSV_COLUMNS", "FormulaCellsWarning", "catalog_records", "is_boda_csv",
    "iter_catalog_records", "write_csv",
]

#: The CSV's columns before the scores (one column per score name follows, sorted).
CSV_COLUMNS = (
    "path", "status", "error", "width", "height", "format", "mode", "channels", "bit_depth",
    "has_alpha", "taken", "camera", "flags", "exact_duplicate_group", "near_duplicate_group",
    "size", "pixel_hash", "phash", "link_to", "path_bytes_hex", "decision", "rating",
    "mirrored",
)  # fmt: skip

#: The file's layout, kept in each readable record's ``extra`` (see
#: :func:`boda.scan._analyze.image_layout`), given as columns of their own.
LAYOUT_FIELDS = ("mode", "channels", "bit_depth", "has_alpha")

#: The capture time and camera, kept in each readable record's ``extra`` when the
#: file's EXIF data says (see :func:`boda.scan._analyze.capture_data`).
CAPTURE_FIELDS = ("taken", "camera")

#: The person's culling marks (:class:`boda.catalog.Marks`), in each record.
MARK_FIELDS = ("decision", "rating")

#: Whether a near-duplicate member matched as a left-right mirror image (the
#: record's ``mirrored``, a ``--mirrored`` scan).
MIRROR_FIELDS = ("mirrored",)

#: What a cell a spreadsheet program takes for a formula begins with (OWASP, "CSV
#: Injection": ``=``, ``+``, ``-``, ``@``, tab, carriage return).
FORMULA_STARTS = frozenset("=+-@\t\r")

#: The CSV's columns of free text (names, reasons, EXIF text), where such a cell can be;
#: the others hold numbers, hashes and boda's own words.
_TEXT_COLUMNS = ("path", "error", "taken", "camera", "link_to")


class FormulaCellsWarning(UserWarning):
    """:func:`write_csv` wrote cells that a spreadsheet program would read as formulas
    (file names such as ``=HYPERLINK(...).png``): they are kept exact, and the
    person opening the table in a spreadsheet should import those columns as text."""


#: The columns each version added, in the order they came.
_ADDED_COLUMNS = (LAYOUT_FIELDS, CAPTURE_FIELDS, MARK_FIELDS, MIRROR_FIELDS)

#: The columns of the tables earlier versions wrote (before the layout columns,
#: before the capture columns, before the marks, before ``mirrored``): such a table
#: is boda's too, so a new export replaces it without ``--overwrite``.
_EARLIER_CSV_COLUMNS = tuple(
    tuple(c for c in CSV_COLUMNS if c not in sum(_ADDED_COLUMNS[k:], ()))
    for k in range(len(_ADDED_COLUMNS))
)


def layout_values(extra: object) -> tuple[Any, Any, Any, Any]:
    """``mode``, ``channels``, ``bit_depth`` and ``has_alpha`` of a record's ``extra``;
    None for each one it does not hold (an unreadable file, a catalog written before
    they were recorded, a damaged cell)."""
    extra = extra if isinstance(extra, dict) else {}
    mode, channels, depth, alpha = (extra.get(name) for name in LAYOUT_FIELDS)
    # 1-127: any real layout, and what the Parquet table's int8 columns hold (a
    # hand-edited 1000 would stop its export)
    return (
        mode if isinstance(mode, str) else None,
        channels if type(channels) is int and 0 < channels < 128 else None,
        depth if type(depth) is int and 0 < depth < 128 else None,
        alpha if isinstance(alpha, bool) else None,
    )


def capture_values(extra: object) -> tuple[str | None, str | None]:
    """``taken`` and ``camera`` of a record's ``extra``; None for each one it does not
    hold (no EXIF data, an unreadable file, a catalog written before they were kept)."""
    extra = extra if isinstance(extra, dict) else {}
    taken, camera = (extra.get(name) for name in CAPTURE_FIELDS)
    return (taken if isinstance(taken, str) else None,
            camera if isinstance(camera, str) else None)


def is_boda_csv(path: str | Path) -> bool:
    """Whether ``path`` is a CSV table boda wrote (its header starts with :data:`CSV_COLUMNS`,
    or with the columns of an earlier version: one without the layout columns, one
    without the capture columns, one without the marks, one without ``mirrored``).

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
    (duplicate group ids), ``scores`` (every measure), ``extra``, the hashes,
    and the person's culling ``decision`` (``"pick"``, ``"reject"`` or None)
    and ``rating`` (1-5 stars or None) from :class:`boda.catalog.Marks` (see
    ``docs/scan.md``).

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
        yield from exported_records(catalog)


def exported_records(catalog: Catalog) -> Iterator[dict[str, Any]]:
    """The records every export writes (``--json``, the CSV, the Parquet table), so
    they give each file the same values: :meth:`Catalog.record_dicts` with the marks
    (:func:`with_mark`) and only real scores (:func:`real_scores`)."""
    rows = catalog.mark_rows(marks_path(catalog.path))
    paths = catalog.relpaths_of([row[0] for row in rows])
    marks = {paths[row[0]]: row[2:] for row in rows if row[0] in paths}
    for record in catalog.record_dicts():
        yield with_mark(real_scores(record), marks)


def real_scores(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with each score and flag score that is not a finite number as None.

    A scan stores finite numbers; NaN, infinities, text or lists come from a
    catalog someone edited, and JSON has no NaN: each export says "missing" for
    them alike (null in ``--json`` and Parquet, an empty CSV cell), where the CSV
    wrote ``nan`` or ``high`` and the JSON null or ``"high"``.
    """
    for key in ("scores", "flag_scores"):
        values = record[key]
        # the common case, only finite floats, in C loops (a million records pass here)
        if not (set(map(type, values.values())) <= _FLOAT
                and all(map(math.isfinite, values.values()))):
            record[key] = {name: v if finite_real(v) is not None else None
                           for name, v in values.items()}
    return record


_FLOAT = frozenset({float})


def with_mark(
    record: dict[str, Any], marks: dict[bytes, tuple[str | None, int | None]]
) -> dict[str, Any]:
    """``record`` with the person's ``decision`` (``"pick"``/``"reject"``) and ``rating``
    (1-5 stars) of its file, each None when it has none; ``marks`` holds the
    ``(decision, rating)`` by path of the marks that belong to the catalog's files
    (:meth:`boda.catalog.Catalog.mark_rows`: not those given to another file at the path)."""
    raw = record.get("path_bytes_hex")
    relpath = bytes.fromhex(raw) if raw else record["path"].encode("utf-8")
    decision, rating = marks.get(relpath, (None, None))
    record["decision"], record["rating"] = decision, rating
    return record


def write_csv(
    catalog_path: str | Path,
    out: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    only: str | Iterable[str] | None = None,
    keep_under: str | Iterable[str] | None = None,
    under: str | Iterable[str] | None = None,
    copy_under: str | Iterable[str] | None = None,
    min_rating: int | None = None,
) -> Path:
    """Write the catalog as a CSV table: one row per file, one column per score.

    ``catalog_path`` is the catalog file or the scanned folder.  Columns:
    :data:`CSV_COLUMNS` (the file's ``mode``, ``channels``, ``bit_depth`` and
    ``has_alpha`` (``true``/``false``) from the record's ``extra``, empty where
    it has none; the capture time ``taken`` (ISO 8601) and ``camera`` from the
    file's EXIF data, empty where it has none; ``flags`` joined by ``;``; the duplicate group ids
    shared by the members of a group; the size in bytes; the pixel hash and
    the perceptual hash in hex; a link's target; the exact bytes of a name
    that is not UTF-8; the person's marks; ``mirrored`` ``true`` or ``false``, as
    the record's), then every score name found in the catalog, sorted.

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
    from boda.report._select import (
        _folder_prefixes,
        _min_rating,
        _selected,
        _selection_names,
    )

    selected = None if only is None else _selection_names(only)  # checked before writing
    keep = _keep_prefixes(keep_under)
    folders = _folder_prefixes(under, "under"), _folder_prefixes(copy_under, "copy_under")
    stars = _min_rating(min_rating)
    out = prepare_output(out)
    with Catalog(catalog_path, readonly=True) as catalog:
        total = catalog.count_all()
        score_names = catalog.score_names()  # a light pass: the header comes first
        with open_output(out, text=True) as fh:
            writer = csv.writer(fh)
            writer.writerow([*CSV_COLUMNS, *score_names])
            rows = (
                exported_records(catalog)
                if selected is None and not any(folders) and stars is None
                else _selected(catalog_path, selected, keep_under=keep, under=folders[0],
                               copy_under=folders[1], min_rating=stars)
            )
            formulas, first_formula = 0, ""
            for n, r in enumerate(rows, 1):
                groups = r["groups"]
                mode, channels, depth, alpha = layout_values(r["extra"])
                taken, camera = capture_values(r["extra"])
                for cell in (r["path"], r["error"], taken, camera, r["link_to"]):
                    if cell and cell[0] in FORMULA_STARTS:
                        formulas += 1
                        first_formula = first_formula or cell
                writer.writerow(
                    [r["path"], r["status"], r["error"] or "", r["width"], r["height"],
                     r["format"] or "", mode or "", "" if channels is None else channels,
                     "" if depth is None else depth,
                     "" if alpha is None else ("true" if alpha else "false"),
                     taken or "", camera or "", ";".join(r["flags"]),
                     groups.get("exact_duplicate", ""), groups.get("near_duplicate", ""),
                     r["size"], r["pixel_hash"] or "", r["phash"] or "", r["link_to"] or "",
                     r["path_bytes_hex"] or "", r["decision"] or "", r["rating"] or "",
                     "true" if r["mirrored"] else "false"]
                    + [r["scores"].get(name, "") for name in score_names]
                )
                if progress and n % 5000 == 0:
                    progress(n, total)
    if progress:
        progress(total, total)
    if formulas:
        # Kept exact: the path is the file's name for pandas, xargs and joins, and a
        # quote put before it (OWASP's advice) would be read back as part of the name.
        warnings.warn(FormulaCellsWarning(
            f"{formulas} cell{'s' * (formulas != 1)} of the CSV ({', '.join(_TEXT_COLUMNS)}) "
            f"begin{'s' * (formulas == 1)} with =, +, -, @, a tab or a carriage return "
            f"(first: {first_formula!r}): "
            "a spreadsheet program opening the file would run them as formulas. They are "
            "written exactly, for pandas and CSV readers; in a spreadsheet, import the "
            "file with those columns as text (docs/security.md)"
        ), stacklevel=2)
    return out
