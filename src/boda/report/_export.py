"""JSON and CSV exports of a catalog: one record per file, failed files included."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from boda.catalog import Catalog
from boda.io import write_output

__all__ = ["catalog_records", "write_csv"]


def catalog_records(catalog_path: str | Path) -> list[dict[str, Any]]:
    """Every record of the catalog as a JSON-friendly dict, ordered by path.

    Each dict has ``path``, ``status`` (``"ok"``/``"error"``), ``error`` (the
    reason a file could not be read), ``width``, ``height``, ``format``,
    ``flags`` (names), ``flag_scores``, ``groups`` (duplicate group ids),
    ``scores`` (every measure) and the hashes.
    """
    with Catalog(catalog_path, readonly=True) as catalog:
        return [record.to_dict() for record in catalog.records()]


def write_csv(catalog_path: str | Path, out: str | Path) -> Path:
    """Write the catalog as a CSV table: one row per file, one column per score.

    Columns: ``path, status, error, width, height, format, flags`` (names joined
    by ``;``), then every score name found in the catalog, sorted.
    """
    records = catalog_records(catalog_path)
    score_names = sorted({name for r in records for name in r["scores"]})
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
