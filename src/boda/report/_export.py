"""JSON and CSV exports of a catalog: one record per file, failed files included.

Every field and column is described in ``docs/scan.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from boda.catalog import Catalog
from boda.io import open_output, prepare_output

__all__ = ["CSV_COLUMNS", "catalog_records", "iter_catalog_records", "write_csv"]

#: The CSV's columns before the scores (one column per score name follows, sorted).
CSV_COLUMNS = (
    "path", "status", "error", "width", "height", "format", "flags",
    "exact_duplicate_group", "near_duplicate_group", "size", "pixel_hash", "phash",
    "link_to", "path_bytes_hex",
)  # fmt: skip


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
        for record in catalog.records():
            yield record.to_dict()


def write_csv(
    catalog_path: str | Path,
    out: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
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
    called now and then.
    """
    out = prepare_output(out)
    with Catalog(catalog_path, readonly=True) as catalog:
        total = catalog.count_all()
        score_names = catalog.score_names()  # a light pass: the header comes first
        with open_output(out, text=True) as fh:
            writer = csv.writer(fh)
            writer.writerow([*CSV_COLUMNS, *score_names])
            for n, record in enumerate(catalog.records(), 1):
                r = record.to_dict()
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


