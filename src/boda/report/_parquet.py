"""Parquet export of a catalog: the CSV table's rows with typed columns.

For catalogs that pandas, polars, DuckDB or Spark read faster and smaller than
a CSV: integers stay integers, missing values stay null, ``flags`` is a list,
``path_bytes`` holds every name's exact bytes and ``extra`` (dominant colours)
is kept as JSON text.  Written in row groups of :data:`ROWS_PER_GROUP`, so
memory stays flat for a catalog of any size, to a temporary file that replaces
the output only when complete (as every boda output).  Needs the ``parquet``
extra (``pyarrow``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from boda import __version__
from boda.catalog import Catalog
from boda.errors import BodaError
from boda.io import open_output, prepare_output
from boda.report._export import capture_values, exported_records, layout_values

__all__ = ["PARQUET_COLUMNS", "ROWS_PER_GROUP", "is_boda_parquet", "write_parquet"]

#: The columns before the scores (one float64 column per score name follows, sorted).
PARQUET_COLUMNS = (
    "path", "status", "error", "width", "height", "format", "mode", "channels", "bit_depth",
    "has_alpha", "taken", "camera", "flags",
    "exact_duplicate_group", "near_duplicate_group", "size", "pixel_hash", "phash",
    "link_to", "path_bytes", "extra", "decision", "rating", "mirrored",
)  # fmt: skip

#: Rows per row group: memory stays under ~100 MB whatever the catalog's size.
ROWS_PER_GROUP = 10_000

#: The schema metadata key that marks a file boda exported (its value: JSON).
_MARK = b"boda"

MISSING_EXTRA = "the Parquet export needs the parquet extra: pip install 'boda[parquet]'"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise BodaError(MISSING_EXTRA) from None
    return pyarrow, pyarrow.parquet


def _schema(pa: Any, score_names: list[str]) -> Any:
    fields = [
        ("path", pa.string()), ("status", pa.dictionary(pa.int32(), pa.string())),
        ("error", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
        ("format", pa.dictionary(pa.int32(), pa.string())),
        ("mode", pa.dictionary(pa.int32(), pa.string())), ("channels", pa.int8()),
        ("bit_depth", pa.int8()), ("has_alpha", pa.bool_()),
        # ISO 8601 text, not a timestamp: one column holds one time zone, and photos
        # carry their own offset, or none (the camera's clock time, zone unknown)
        ("taken", pa.string()), ("camera", pa.dictionary(pa.int32(), pa.string())),
        ("flags", pa.list_(pa.string())),
        ("exact_duplicate_group", pa.int64()), ("near_duplicate_group", pa.int64()),
        ("size", pa.int64()), ("pixel_hash", pa.string()), ("phash", pa.uint64()),
        ("link_to", pa.string()), ("path_bytes", pa.binary()), ("extra", pa.string()),
        ("decision", pa.dictionary(pa.int32(), pa.string())), ("rating", pa.int8()),
        ("mirrored", pa.bool_()),
    ]  # fmt: skip
    fields += [(name, pa.float64()) for name in score_names]
    mark = json.dumps({"version": __version__, "table": "catalog"})
    return pa.schema(fields, metadata={_MARK: mark.encode()})


def write_parquet(
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
    """Write the catalog as a Parquet table: one row per file, one column per score.

    The rows and columns are those of :func:`boda.report.write_csv`, typed:
    ``width``/``height`` int32, the file's ``mode`` (dictionary-encoded),
    ``channels`` and ``bit_depth`` int8 and ``has_alpha`` bool (null for an
    unreadable file, or a record from before they were kept), the capture time
    ``taken`` as ISO 8601 text (each photo keeps its own UTC offset, or has none:
    ``pandas.to_datetime(..., format="ISO8601", utc=True)`` where all have one) and
    ``camera`` (dictionary-encoded), null where the file's EXIF data has none, ``size`` and the
    duplicate group ids int64
    (null outside a group), ``phash`` uint64, ``flags`` a list of names,
    ``path_bytes`` the name's exact bytes (every row, where the CSV gives hex
    only for names that are not UTF-8), ``extra`` the non-scalar results as
    JSON text, the person's marks, ``mirrored`` bool (as the record's, never
    null), then every score name found in the catalog as a float64
    column (null where a file has no such score).  ``status`` and ``format``
    are dictionary-encoded.  The schema's metadata key ``boda`` holds the
    version that wrote it (:func:`is_boda_parquet`).

    ``catalog_path`` is the catalog file or the scanned folder.  ``only``
    keeps the rows of the files in any of these selections (as
    :func:`boda.report.select_records`); ``keep_under`` is passed on to the
    ``redundant`` selection (see :func:`boda.report.duplicate_sets`); ``under``
    and ``copy_under`` keep the rows of the files under these folders, or with
    a copy under them (as there).  ``progress(rows_written, rows)`` is
    called after each row group.

    Raises
    ------
    BodaError
        ``pyarrow`` is not installed (the message says how to install it).
    InvalidParameterError
        An unknown selection name, or ``out`` is a folder.
    CatalogError, OutputError
        No usable catalog; ``out`` cannot be written.

    Examples
    --------
    >>> from boda.report import write_parquet            # doctest: +SKIP
    >>> write_parquet("photos/", "photos.parquet")        # doctest: +SKIP
    >>> import pandas                                    # doctest: +SKIP
    >>> pandas.read_parquet("photos.parquet").query("blurry < 0.44")  # doctest: +SKIP
    """
    from boda.report._keep import _keep_prefixes
    from boda.report._select import (
        _folder_prefixes,
        _min_rating,
        _selected,
        _selection_names,
        record_relpath,
    )

    pa, pq = _pyarrow()
    selected = None if only is None else _selection_names(only)  # checked before writing
    keep = _keep_prefixes(keep_under)
    folders = _folder_prefixes(under, "under"), _folder_prefixes(copy_under, "copy_under")
    stars = _min_rating(min_rating)
    out = prepare_output(out)
    with Catalog(catalog_path, readonly=True) as catalog:
        total = catalog.count_all()
        score_names = catalog.score_names()
        schema = _schema(pa, score_names)
        rows = (
            exported_records(catalog)
            if selected is None and not any(folders) and stars is None
            else _selected(catalog_path, selected, keep_under=keep, under=folders[0],
                           copy_under=folders[1], min_rating=stars)
        )
        with open_output(out) as fh, pq.ParquetWriter(fh, schema, compression="zstd") as writer:
            written = 0
            columns: dict[str, list[Any]] = {name: [] for name in schema.names}
            for r in rows:
                _append(columns, r, record_relpath(r), score_names)
                if len(columns["path"]) == ROWS_PER_GROUP:
                    written += _flush(pa, writer, schema, columns)
                    if progress:
                        progress(written, total)
            written += _flush(pa, writer, schema, columns)
    if progress:
        progress(total, total)
    return out


def _append(columns: dict[str, list[Any]], r: dict[str, Any], relpath: bytes,
            score_names: list[str]) -> None:
    groups, scores = r["groups"], r["scores"]
    phash = r["phash"]
    values = (
        r["path"], r["status"], r["error"], r["width"], r["height"], r["format"],
        *layout_values(r["extra"]), *capture_values(r["extra"]), r["flags"],
        groups.get("exact_duplicate"), groups.get("near_duplicate"), r["size"],
        r["pixel_hash"], None if phash is None else int(phash, 16), r["link_to"], relpath,
        json.dumps(r["extra"], separators=(",", ":")) if r["extra"] else None,
        r["decision"], r["rating"], r["mirrored"],
    )
    for name, value in zip(PARQUET_COLUMNS, values, strict=True):
        columns[name].append(value)
    for name in score_names:
        value = scores.get(name)
        # a damaged row's text or a bool is not a score: null, as the CSV leaves it blank
        columns[name].append(
            float(value) if isinstance(value, int | float) and not isinstance(value, bool)
            else None
        )


def _flush(pa: Any, writer: Any, schema: Any, columns: dict[str, list[Any]]) -> int:
    n = len(columns["path"])
    if n:
        writer.write_table(pa.Table.from_pydict(columns, schema=schema))
        for values in columns.values():
            values.clear()
    return n


def is_boda_parquet(path: str | Path) -> bool:
    """Whether ``path`` is a Parquet table boda exported (its schema carries boda's mark).

    Such a table is made again from the catalog at any time, so a new export
    may replace it; any other existing file is left alone unless the user asks
    (``--overwrite``).  False when ``pyarrow`` is not installed.
    """
    try:
        _, pq = _pyarrow()
        metadata = pq.read_schema(path).metadata or {}
    except Exception:  # not Parquet, unreadable, no pyarrow: not ours
        return False
    return _MARK in metadata
