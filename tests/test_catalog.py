"""The SQLite catalog: schema version, WAL, round trips, read-only use."""

from __future__ import annotations

import sqlite3

import pytest

from boda.catalog import SCHEMA_VERSION, Catalog, ImageRecord
from boda.errors import CatalogError


def _record(name: bytes, **kw) -> ImageRecord:
    return ImageRecord(relpath=name, size=10, mtime_ns=5, status="ok", **kw)


def test_round_trip_and_wal(tmp_path):
    db = tmp_path / ".boda" / "catalog.db"
    big_hash = (1 << 64) - 3  # unsigned 64-bit values above SQLite's signed range survive
    with Catalog(db) as catalog:
        catalog.write_batch([
            _record(b"a.jpg", scores={"x": 1.5}, phash=big_hash, thumbnail=b"\xff\xd8jpeg"),
            ImageRecord(b"b\xff.jpg", 0, 0, "error", error="empty file (0 bytes)"),
        ])
        ids = {r.path: r.id for r in catalog.records()}
        catalog.replace_flags([(ids["a.jpg"], "blurry", 0.1, None)])
        catalog.set_setting("thresholds", {"blurry": 0.3})
    with Catalog(db, readonly=True) as catalog:
        records = {r.relpath: r for r in catalog.records(with_thumbnails=True)}
        assert records[b"a.jpg"].phash == big_hash
        assert records[b"a.jpg"].scores == {"x": 1.5}
        assert records[b"a.jpg"].thumbnail == b"\xff\xd8jpeg"
        assert records[b"a.jpg"].flags == {"blurry": (0.1, None)}
        assert records[b"b\xff.jpg"].error == "empty file (0 bytes)"
        assert records[b"b\xff.jpg"].path == "b\\xff.jpg"
        assert catalog.count() == {"ok": 1, "error": 1, "link": 0}
        assert catalog.get_setting("thresholds") == {"blurry": 0.3}
        assert catalog.integrity_check() == "ok"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_upsert_replaces_and_remove(tmp_path):
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.write_batch([_record(b"a.jpg", scores={"x": 1.0}, thumbnail=b"1")])
        catalog.write_batch([_record(b"a.jpg", scores={"x": 2.0})])
        (rec,) = list(catalog.records(with_thumbnails=True))
        assert rec.scores == {"x": 2.0} and rec.thumbnail is None
        assert catalog.remove([b"a.jpg"]) == 1
        assert list(catalog.records()) == []


def test_records_by_id_equal_the_full_walk(tmp_path):
    # 1203 records: the ids are read in several chunks (SQLite's variable limit).
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.write_batch([
            _record(f"{i:04d}.jpg".encode(), scores={"x": i}, thumbnail=bytes([i % 256]))
            for i in range(1203)
        ])
        every = {r.id: r for r in catalog.records(with_thumbnails=True)}
        wanted = sorted(every)[::2]
        catalog.replace_flags([(i, "dark", 0.5, None) for i in wanted[:300]])
        every = {r.id: r for r in catalog.records(with_thumbnails=True)}
        picked = catalog.records_by_id([*wanted, 10**9], with_thumbnails=True)
        assert sorted(picked) == wanted  # the unknown id is left out
        assert all(picked[i] == every[i] for i in wanted)
        assert sum(bool(r.flags) for r in picked.values()) == 300
        assert catalog.records_by_id(wanted[:3])[wanted[0]].thumbnail is None


def test_begin_analysis_marks_every_file_for_reanalysis(tmp_path):
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.write_batch([_record(b"a.jpg", scores={"x": 1.0}), _record(b"b.jpg")])
        assert catalog.begin_analysis({"version": 1}) is True  # none was recorded
        catalog.write_batch([_record(b"a.jpg", scores={"x": 2.0})])  # re-analysed
        assert catalog.begin_analysis({"version": 1}) is False  # same: nothing changes
        states = catalog.file_states()
        assert states[b"a.jpg"].mtime_ns == 5 and states[b"b.jpg"].mtime_ns != 5
        assert catalog.begin_analysis({"version": 2}) is True
        assert {s.mtime_ns for s in catalog.file_states().values()} == {-1}
        # the old scores stay readable until a new analysis replaces them
        assert {r.path: r.scores for r in catalog.records()}["a.jpg"] == {"x": 2.0}


def _database_state(path) -> tuple:
    """Everything a write could change: the file's bytes, its tables, its journal mode."""
    with sqlite3.connect(path) as con:
        tables = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master"))
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    con.close()
    return path.read_bytes(), tables, mode


@pytest.mark.parametrize("table", ["notes(id INTEGER PRIMARY KEY, body TEXT)",
                                   "images(id INTEGER PRIMARY KEY, url TEXT)"])  # fmt: skip
def test_another_programs_database_is_refused_unchanged(tmp_path, table):
    """A Lightroom or digiKam database given as --catalog is not touched: not switched
    to WAL mode, no boda table added (the second one has an ``images`` table too)."""
    db = tmp_path / "photos.lrcat"
    with sqlite3.connect(db) as con:
        con.execute(f"CREATE TABLE {table}")
        con.execute("INSERT INTO " + table.split("(")[0] + " VALUES (1, 'precious')")
    con.close()
    before = _database_state(db)
    with pytest.raises(CatalogError, match="another program's database .* nothing was changed"):
        Catalog(db)
    assert _database_state(db) == before
    assert not (tmp_path / "photos.lrcat-wal").exists()


def test_a_newer_catalog_is_refused_unchanged(tmp_path):
    db = tmp_path / "c.db"
    Catalog(db).close()
    with sqlite3.connect(db) as con:
        con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        con.execute("DROP TABLE thumbnails")  # a newer schema may lack what this one makes
        con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    before = _database_state(db)
    with pytest.raises(CatalogError, match="upgrade boda"):
        Catalog(db)
    assert _database_state(db) == before


def test_newer_schema_and_garbage_are_refused(tmp_path):
    db = tmp_path / "c.db"
    Catalog(db).close()
    with sqlite3.connect(db) as con:
        con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(CatalogError, match="upgrade boda"):
        Catalog(db)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="not a usable boda catalog"):
        Catalog(junk)
    with pytest.raises(CatalogError, match="boda scan"):
        Catalog(tmp_path / "absent.db", readonly=True)


def test_a_catalog_damaged_after_it_opens_gives_one_line(tmp_path):
    """One bad page of the images table (the header and schema intact): the scan and
    the report fail with a one-line error naming the damage, no traceback."""
    import numpy as np
    from typer.testing import CliRunner

    from boda.cli import app
    from boda.io import write_image

    rng = np.random.default_rng(0)
    for n in range(40):
        write_image(tmp_path / f"p{n:02d}.png", rng.random((16, 16, 3)).astype(np.float32))
    runner = CliRunner()
    scan_args = ["scan", str(tmp_path), "-q", "--no-report", "-w", "1"]
    assert runner.invoke(app, scan_args).exit_code == 0
    db = tmp_path / ".boda" / "catalog.db"
    with sqlite3.connect(db) as con:
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'images'").fetchone()[0]
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size)  # the page's header: no valid b-tree page type
        f.write(b"\xde\xad\xbe\xef" * (page_size // 4))
    for args in (scan_args, ["report", str(tmp_path), "--json"]):
        out = runner.invoke(app, args)
        assert out.exit_code == 1, (args, out.output)
        assert "Traceback" not in out.output and "malformed" in out.output, out.output
        assert "move it" in out.output and "away and scan again" in out.output


def test_a_photo_given_as_the_catalog_is_named_as_such_and_left_alone(tmp_path):
    photo = tmp_path / "IMG_0001.JPG"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2000))
    before = photo.read_bytes()
    with pytest.raises(CatalogError, match="is an image, not a boda catalog") as caught:
        Catalog(photo)
    assert "move it away" not in str(caught.value)
    assert photo.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "IMG_0001.JPG"
    ]
