"""Commands that run at the same time, or are cut short: a folder renamed while a scan
runs, a marks file whose first write was cut short, two programs making one database.

Each race is played out in a fixed order (a hook, or SQLite's answer forced), never
left to timing.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

import boda.scan._pipeline as pipeline
from boda.catalog import Catalog, Marks, marks_path
from boda.io import write_image
from boda.report import select_records, write_csv
from boda.scan import scan


@pytest.fixture
def shoot(tmp_path, small_photos):
    """A scanned folder: ``day1/a.png``, ``day1/b.png`` and ``c.png``."""
    root = tmp_path / "shoot"
    (root / "day1").mkdir(parents=True)
    write_image(root / "day1" / "a.png", small_photos[0])
    write_image(root / "day1" / "b.png", small_photos[1])
    write_image(root / "c.png", small_photos[2])
    scan(root, workers=1)
    return root


def _picked(root) -> list[str]:
    return sorted(r["path"] for r in select_records(root, "picked"))


# -- a folder renamed while the scan analyses its files ---------------------------------


def test_marks_follow_a_folder_renamed_while_the_scan_runs(shoot, monkeypatch):
    with Marks(shoot) as marks:
        marks.set_decision([b"day1/a.png"], "pick")
        marks.set_rating([b"day1/b.png"], 4)
    real = pipeline._analyze_job

    def rename_first(job):
        if (shoot / "day1").exists():  # the folder goes after the listing, before its files
            os.rename(shoot / "day1", shoot / "day2")
        return real(job)

    monkeypatch.setattr(pipeline, "_analyze_job", rename_first)
    summary = scan(shoot, workers=1, reanalyze=True)  # every file is analysed again
    assert summary.removed == 2  # the listed paths are gone: no output shows them
    assert summary.marks_followed == 2
    monkeypatch.undo()

    summary = scan(shoot, workers=1)  # finds day2/ as new files, with their marks
    assert summary.analysed == 2
    assert _picked(shoot) == ["day2/a.png"]
    with Marks(shoot, readonly=True) as marks:
        assert marks.get(b"day2/b.png").rating == 4
        assert marks.get(b"day1/a.png") is None


def test_a_file_deleted_while_the_scan_runs_keeps_its_mark_where_it_was(shoot, monkeypatch):
    """Only a file found again elsewhere takes its mark along (as between two scans)."""
    with Marks(shoot) as marks:
        marks.set_decision([b"c.png"], "reject")
    real = pipeline._analyze_job

    def delete_first(job):
        if (shoot / "c.png").exists():
            os.remove(shoot / "c.png")
        return real(job)

    monkeypatch.setattr(pipeline, "_analyze_job", delete_first)
    summary = scan(shoot, workers=1, reanalyze=True)
    assert (summary.removed, summary.marks_followed) == (1, 0)
    with Marks(shoot, readonly=True) as marks:
        assert marks.get(b"c.png").decision == "reject"  # unseen: its file is gone


# -- a marks file whose first write was cut short -------------------------------------


def _cut_short(path, *statements: str) -> None:
    """A marks file as ``boda mark`` killed while it made it leaves it (or a full disk)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    "statements",
    [(), ("CREATE TABLE marks_schema (version INTEGER NOT NULL)",)],
    ids=["no-tables", "schema-table-only"],
)
def test_a_marks_file_cut_short_reads_as_no_marks(shoot, tmp_path, statements):
    _cut_short(marks_path(shoot), *statements)
    with Marks(shoot, readonly=True) as marks:
        assert marks.all() == {} and marks.counts()["pick"] == 0
    with Catalog(shoot, readonly=True) as catalog:
        assert catalog.mark_rows(marks_path(shoot)) == []
    assert _picked(shoot) == []
    assert len(list(select_records(shoot, "undecided"))) == 3
    write_csv(shoot / ".boda" / "catalog.db", tmp_path / "t.csv")  # failed: "move it away"
    with Marks(shoot) as marks:  # the next mark fills the file in
        marks.set_decision([b"c.png"], "pick")
    assert _picked(shoot) == ["c.png"]


def test_serve_takes_marks_into_a_marks_file_cut_short(shoot):
    pytest.importorskip("fastapi")
    from boda.web._data import CatalogView

    _cut_short(marks_path(shoot))
    view = CatalogView(shoot)
    assert view.marks_writable() is None  # was: 403 "not a usable marks file"
    with Catalog(shoot, readonly=True) as catalog:
        image_id = catalog.ids_of_paths(["c.png"])["c.png"]
    assert view.write_marks([image_id], {"decision": "pick"})["counts"]["picked"] == 1


# -- two programs that make one database at the same moment ------------------------------


class _BusyOnce(sqlite3.Connection):
    """A connection whose first switch to WAL mode is refused as SQLite refuses the
    second of two connections switching a new database at once: SQLITE_BUSY, at
    once, without the busy handler (a deadlock otherwise)."""

    refused = 0

    def execute(self, sql, *args):
        if "journal_mode" in sql and not _BusyOnce.refused:
            _BusyOnce.refused += 1
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode, exc.sqlite_errorname = 5, "SQLITE_BUSY"
            raise exc
        return super().execute(sql, *args)


@pytest.fixture
def busy_once(monkeypatch):
    real = sqlite3.connect
    _BusyOnce.refused = 0
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, factory=_BusyOnce, **k))
    yield
    assert _BusyOnce.refused == 1


def test_a_marks_file_made_by_two_programs_at_once_takes_both_marks(shoot, busy_once):
    """``boda mark`` beside the first mark set in ``boda serve``: the one that lost the
    race failed ("locked by another program") and its marks were lost."""
    with Marks(shoot) as marks:
        marks.set_decision([b"c.png"], "pick")
    assert _picked(shoot) == ["c.png"]


def test_a_catalog_made_by_two_scans_at_once_is_refused_by_the_lock_only(tmp_path, busy_once):
    """The second of two scans started together failed with "locked by another program
    ... for 30 s", and removed the catalog file the first one was writing."""
    path = tmp_path / "c.db"
    with Catalog(path) as catalog:
        catalog.set_setting("root", "x")
    assert path.is_file()
