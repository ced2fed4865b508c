"""JSON and CSV exports of a catalog: one record per file, failed files included."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from boda.catalog import Catalog
from boda.io import write_output

__all__ = ["catalog_records", "iter_catalog_records", "write_csv"]


def catalog_records(catalog_path: str | Path) -> list[dict[str, Any]]:
    """Every record of the catalog as a JSON-friendly dict, ordered by path.

    Each dict has ``path``, ``status`` (``"ok"``/``"error"``), ``error`` (the
    reason a file could not be read), ``width``, ``height``, ``format``,
    ``flags`` (names), ``flag_scores``, ``groups`` (duplicate group ids),
    ``scores`` (every measure) and the hashes.
    """
    return list(iter_catalog_records(catalog_path))


def iter_catalog_records(catalog_path: str | Path) -> Iterator[dict[str, Any]]:
    """:func:`catalog_records` one at a time (constant memory for any catalog size)."""
    with Catalog(catalog_path, readonly=True) as catalog:
        for record in catalog.records():
            yield record.to_dict()


def write_csv(catalog_path: str | Path, out: str | Path) -> Path:
    """Write the catalog as a CSV table: one row per file, one column per score.

    Columns: ``path, status, error, width, height, format, flags`` (names joined
    by ``;``), then every score name found in the catalog, sorted.
    """
    # Two passes over the catalog, one record at a time: the score names first.
    score_names = sorted({n for r in iter_catalog_records(catalog_path) for n in r["scores"]})
    records = iter_catalog_records(catalog_path)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["path", "status", "error", "width", "height", "format", "flags", *score_names])
    for r in records:
        writer.writerow(
            [r["path"], r["status"], r["error"] or "", r["width"], r["height"],
             r["format"] or "", ";".join(r["flags"])]
            + [r["scores"].get(name, "") for name in score_names]
        )
    return write_output(out, table.getvalue().encode("utf-8"))
