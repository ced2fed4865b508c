"""Catalog audit: a full disk, another program's file, and the scan's lock file.

A full disk is no damage: the catalog and the marks file are intact once space is
freed, so no message may tell a person to move either away (that loses the marks
or every analysed file).  A full disk is simulated the way SQLite reports it:
``SQLITE_FULL`` ("database or disk is full") for a write that finds no room, and
``SQLITE_IOERR_SHMSIZE`` ("disk I/O error") when the ``-shm`` file of a WAL
database cannot grow while opening it (SQLite's result-code page says this "may
indicate that the underlying filesystem volume is out of space"); both were seen
on a full 3 MB tmpfs.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import boda.catalog._catalog as catalog_module
import boda.scan._pipeline as pipeline
from boda.catalog import Catalog, Marks
from boda.cli import app
from boda.errors import CatalogError
from boda.io import write_image
from boda.scan import scan

runner = CliRunner()

_Usage = namedtuple("_Usage", "total used free")


def _sqlite_error(name: str, text: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorname = name  # as SQLite sets it
    return exc


class _FailingConnection:
    """A real connection whose statements starting with ``prefix`` raise ``exc``."""

    def __init__(self, db: sqlite3.Connection, prefix: str, exc: Exception):
        self._db, self._prefix, self._exc = db, prefix, exc

    def execute(self, sql: str, *args):
        if sql.lstrip().upper().startswith(self._prefix):
            raise self._exc
        return self._db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


def _connect_failing(monkeypatch, prefix: str, exc: Exception) -> None:
    real = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect",
        lambda *a, **k: _FailingConnection(real(*a, **k), prefix, exc),
    )  # fmt: skip


def _disk_full(monkeypatch) -> None:
    """``shutil.disk_usage`` says no byte is free (as ``df`` on the full tmpfs)."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: _Usage(3 << 20, 3 << 20, 0))


@pytest.fixture
def scanned(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for n in range(3):
        write_image(folder / f"p{n}.png", rng.random((16, 16, 3)).astype(np.float32))
    scan(folder, workers=1)
    return folder


@pytest.mark.parametrize("readonly", [True, False])
def test_opening_a_catalog_on_a_full_disk_says_so_and_not_move_it_away(
    scanned, monkeypatch, readonly
):
    """`boda report` and `boda scan` on a full disk said "'...catalog.db' is not a usable
    boda catalog (disk I/O error); move it away and scan again" of a sound catalog."""
    db = scanned / ".boda" / "catalog.db"
    _disk_full(monkeypatch)
    # the first statement of each open: the read of the schema (read-only) or the
    # switch to WAL mode (for writing); both map the -shm file
    prefix = "SELECT 1 FROM SQLITE_MASTER" if readonly else "PRAGMA JOURNAL_MODE"
    _connect_failing(monkeypatch, prefix, _sqlite_error("SQLITE_IOERR_SHMSIZE", "disk I/O error"))
    with pytest.raises(CatalogError) as caught:
        Catalog(db, readonly=readonly)
    message = str(caught.value)
    assert "full" in message and "free some space" in message, message
    assert "move it away" not in message and "not a usable" not in message, message
    monkeypatch.undo()
    with Catalog(db, readonly=True) as catalog:  # space freed: all there
        assert catalog.count_all() == 3 and catalog.integrity_check() == "ok"


def test_a_scan_that_meets_a_full_disk_before_the_analysis_says_so(scanned, monkeypatch):
    """The first writes of a scan (the folder, the excludes) were outside the scan's
    handling of catalog errors: the library raised sqlite3.OperationalError, the CLI
    said "if it is damaged, move it away and scan again"."""
    write_image(scanned / "new.png", np.zeros((16, 16, 3), np.float32) + 0.5)
    real = Catalog.set_setting

    def full(self, key, value):
        if key in ("root", "excludes"):
            raise _sqlite_error("SQLITE_FULL", "database or disk is full")
        return real(self, key, value)

    monkeypatch.setattr(Catalog, "set_setting", full)
    with pytest.raises(CatalogError, match="is full") as caught:
        scan(scanned, workers=1)
    assert "free some space" in str(caught.value)
    out = runner.invoke(app, ["scan", str(scanned), "-q", "--no-report", "-w", "1"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert "is full" in out.output and "damaged" not in out.output, out.output
    monkeypatch.undo()
    assert scan(scanned, workers=1).analysed == 1  # the rerun finishes


def test_no_room_for_the_scans_lock_file_is_a_clear_error(scanned, monkeypatch):
    """A catalog without its ``.lock`` file (copied, or made by an older boda) on a full
    disk: writing the lock file failed with a raw OSError traceback."""
    (scanned / ".boda" / "catalog.db.lock").unlink(missing_ok=True)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "open", no_space, raising=False)
    with pytest.raises(CatalogError, match="full") as caught:
        scan(scanned, workers=1)
    assert "free some space" in str(caught.value)
    out = runner.invoke(app, ["scan", str(scanned), "-q", "--no-report", "-w", "1"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output


def test_marks_on_a_full_disk_are_not_called_unusable(scanned, monkeypatch):
    """Opening the marks file for writing on a full disk said "is not a usable boda
    marks file ...; move it away": moving it away loses every pick and rating."""
    with Marks(scanned) as marks:
        marks.set_decision([b"p0.png"], "pick")
    _disk_full(monkeypatch)
    _connect_failing(monkeypatch, "PRAGMA JOURNAL_MODE",
                     _sqlite_error("SQLITE_IOERR_SHMSIZE", "disk I/O error"))
    with pytest.raises(CatalogError) as caught:
        Marks(scanned)
    message = str(caught.value)
    assert "full" in message and "move it away" not in message, message
    monkeypatch.undo()
    with Marks(scanned, readonly=True) as marks:
        assert marks.get(b"p0.png").decision == "pick"


def test_a_locked_marks_file_is_not_called_unusable(scanned, monkeypatch):
    """A marks file another program keeps locked past the busy timeout is no damage."""
    with Marks(scanned) as marks:
        marks.set_rating([b"p0.png"], 3)
    # the lock is waited for, as long as any (not the 30 s of a real one in a test)
    monkeypatch.setattr(catalog_module, "_BUSY_TIMEOUT", 0.05)
    _connect_failing(monkeypatch, "PRAGMA JOURNAL_MODE",
                     _sqlite_error("SQLITE_BUSY", "database is locked"))
    with pytest.raises(CatalogError) as caught:
        Marks(scanned)
    message = str(caught.value)
    assert "locked" in message and "move it away" not in message, message


def _state(path: Path) -> tuple[bytes, list[str]]:
    return path.read_bytes(), sorted(p.name for p in path.parent.iterdir())


def test_another_programs_database_read_as_a_catalog_is_named_and_untouched(tmp_path):
    """`boda report --catalog photos.lrcat` said "not a usable boda catalog (no such
    table: schema_version); move it away and scan again" of a Lightroom catalog."""
    db = tmp_path / "photos.lrcat"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE Adobe_images (id INTEGER PRIMARY KEY)")
    con.close()
    before = _state(db)
    with pytest.raises(CatalogError, match="another program's database") as caught:
        Catalog(db, readonly=True)
    assert "move it away" not in str(caught.value)
    assert _state(db) == before


def test_an_empty_file_read_as_a_catalog_is_named_and_untouched(tmp_path):
    empty = tmp_path / "new.db"
    empty.write_bytes(b"")
    with pytest.raises(CatalogError, match="empty") as caught:
        Catalog(empty, readonly=True)
    assert "move it away" not in str(caught.value)
    assert _state(empty) == (b"", ["new.db"])


def test_a_lock_path_taken_by_a_folder_is_a_clear_error(scanned):
    """``CATALOG.lock`` a folder (made by hand, a sync tool): the scan ended in a raw
    IsADirectoryError traceback."""
    (scanned / ".boda" / "catalog.db.lock").unlink(missing_ok=True)
    (scanned / ".boda" / "catalog.db.lock").mkdir()
    with pytest.raises(CatalogError, match="catalog.db.lock") as caught:
        scan(scanned, workers=1)
    assert "remove it" in str(caught.value)
    out = runner.invoke(app, ["scan", str(scanned), "-q", "--no-report", "-w", "1"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output


@pytest.mark.parametrize("name", ["IMG_0001.JPG", "shot.cr2"])
def test_a_scan_never_writes_a_catalog_into_an_empty_image_file(scanned, name):
    """An empty file is boda's to fill, but ``--catalog IMG_0001.JPG`` of a 0-byte photo
    (an interrupted copy) turned the photo into a SQLite database."""
    target = scanned / name
    target.write_bytes(b"")
    before = sorted(p.name for p in scanned.iterdir())
    with pytest.raises(CatalogError, match="empty image file") as caught:
        scan(scanned, catalog_path=target, workers=1)
    assert "nothing was written" in str(caught.value)
    assert sorted(p.name for p in scanned.iterdir()) == before
    assert target.read_bytes() == b""


class _ReadOnlyFolder:
    """A connection as SQLite gives it in a read-only folder (a share, read-only media):
    a WAL database opened ``mode=ro`` cannot make its ``-shm`` file, so its first read
    (or an ATTACH of it) fails with SQLITE_CANTOPEN, unless opened ``immutable=1``.
    (Seen on a read-only bind mount; root writes through chmod, so it is simulated.)"""

    def __init__(self, db: sqlite3.Connection, uri: str):
        self._db, self._blocked = db, "mode=ro" in uri and "immutable=1" not in uri

    def execute(self, sql: str, params=()):
        attach = sql.upper().startswith("ATTACH")
        if (self._blocked and not attach) or (
            attach and "mode=ro" in params[0] and "immutable=1" not in params[0]
        ):
            raise _sqlite_error("SQLITE_CANTOPEN", "unable to open database file")
        return self._db.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._db, name)


def test_marks_on_a_read_only_share_are_read(scanned, monkeypatch):
    """A scanned folder with marks on a read-only share: `boda report` said "cannot read
    the marks file ... (unable to open database file); move it away", and `boda serve`
    (the marks opened read-only) refused to start; the catalog beside it was read."""
    with Marks(scanned) as marks:
        marks.set_decision([b"p1.png"], "reject")
    marks_file = scanned / ".boda" / "catalog.marks.db"
    assert not (scanned / ".boda" / "catalog.marks.db-wal").exists()  # folded in at close
    before = _state(marks_file)
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda target, *a, **k: _ReadOnlyFolder(
        real(target, *a, **k), str(target) if k.get("uri") else ""))
    with Marks(scanned, readonly=True) as marks:
        assert marks.get(b"p1.png").decision == "reject"
    with Catalog(scanned, readonly=True) as catalog:
        ((_, status, decision, rating),) = catalog.mark_rows(marks_file)
        assert (status, decision, rating) == ("ok", "reject", None)
    monkeypatch.undo()
    assert _state(marks_file) == before


def test_marks_left_in_the_wal_of_a_read_only_share_are_said_so(scanned, monkeypatch):
    """Immutable would not see marks still in the ``-wal`` file: refused, said as such."""
    with Marks(scanned) as marks:
        marks.set_decision([b"p1.png"], "reject")
    (scanned / ".boda" / "catalog.marks.db-wal").write_bytes(b"\0" * 100)  # holds something
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda target, *a, **k: _ReadOnlyFolder(
        real(target, *a, **k), str(target) if k.get("uri") else ""))
    with pytest.raises(CatalogError, match="-wal file") as caught:
        Marks(scanned, readonly=True)
    assert "read-only folder" in str(caught.value) and "move it away" not in str(caught.value)
