"""The scan catalog: an embedded SQLite (WAL) store of images, scores and flags."""

from boda.catalog._catalog import (
    SCHEMA_VERSION,
    Catalog,
    FileState,
    FlagInput,
    ImageRecord,
    default_catalog_path,
    display_path,
    resolve_catalog_path,
    scan_running,
)
from boda.catalog._marks import DECISIONS, Mark, Marks, marks_path

__all__ = [
    "DECISIONS",
    "Mark",
    "Marks",
    "SCHEMA_VERSION",
    "Catalog",
    "FileState",
    "FlagInput",
    "ImageRecord",
    "default_catalog_path",
    "display_path",
    "marks_path",
    "resolve_catalog_path",
    "scan_running",
]
