"""Reports of a scanned folder: a self-contained HTML page, JSON and CSV exports,
and the selections a user acts on (the blurry files, the redundant copies)."""

from boda.report._export import (
    FormulaCellsWarning,
    catalog_records,
    is_boda_csv,
    iter_catalog_records,
    write_csv,
)
from boda.report._html import (
    is_boda_report,
    render_html,
    report_file,
    report_title,
    write_html_report,
)
from boda.report._keep import DuplicateSet, duplicate_sets
from boda.report._parquet import is_boda_parquet, write_parquet
from boda.report._select import (
    folder_counts,
    record_relpath,
    select_records,
    selected_paths,
    selections,
)

__all__ = [
    "DuplicateSet",
    "FormulaCellsWarning",
    "catalog_records",
    "duplicate_sets",
    "folder_counts",
    "is_boda_csv",
    "is_boda_parquet",
    "is_boda_report",
    "iter_catalog_records",
    "record_relpath",
    "render_html",
    "report_file",
    "report_title",
    "select_records",
    "selected_paths",
    "selections",
    "write_csv",
    "write_html_report",
    "write_parquet",
]
