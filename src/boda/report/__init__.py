"""Reports of a scanned folder: a self-contained HTML page, JSON and CSV exports."""

from boda.report._export import catalog_records, iter_catalog_records, write_csv
from boda.report._html import render_html, report_file, report_title, write_html_report

__all__ = [
    "catalog_records",
    "iter_catalog_records",
    "render_html",
    "report_file",
    "report_title",
    "write_csv",
    "write_html_report",
]
