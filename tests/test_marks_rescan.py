"""Culling marks survive a re-analysis that changes the stored pixel hashes.

The pixel hash a mark keeps is taken at the scan's analysis size, so a rescan at
another ``--max-side`` (or by a boda whose analysis changed) gives every file a new
one.  The file is still the same file (same size, same modification time): its
picks, rejects and stars must still count, and marking it again must not throw the
old ones away.
"""

from __future__ import annotations

import os
import sqlite3

from typer.testing import CliRunner

from boda.catalog import Catalog, Mark, Marks, marks_path
from boda.cli import app
from boda.io import read_image, write_image
from boda.report import catalog_records, select_records
from boda.scan import scan

runner = CliRunner()


def _folder(tmp_path, kodak_paths, n=3):
    root = tmp_path / "shoot"
    root.mkdir()
    for i, path in enumerate(kodak_paths[:n]):
        write_image(root / f"k{i}.png", read_image(path, max_side=96))
    scan(root, workers=1)
    return root


def _hashes(root) -> dict[bytes, str]:
    with Catalog(root, readonly=True) as catalog:
        return catalog.pixel_hashes([b"k0.png", b"k1.png"])


def _paths(records) -> list[str]:
    return sorted(r["path"] for r in records)


def test_marks_survive_a_rescan_at_another_max_side(tmp_path, kodak_paths):
    root = _folder(tmp_path, kodak_paths)
    with Marks(root) as marks:
        marks.set_decision([b"k0.png"], "pick")
        marks.set_rating([b"k1.png"], 4)
    before = _hashes(root)
    scan(root, workers=1, max_side=48)
    assert _hashes(root) != before  # the premise: every pixel hash changed
    assert _paths(select_records(root, "picked")) == ["k0.png"]
    assert _paths(select_records(root, "rated")) == ["k1.png"]
    by_path = {r["path"]: r for r in catalog_records(root)}  # --json, CSV, Parquet
    assert (by_path["k0.png"]["decision"], by_path["k1.png"]["rating"]) == ("pick", 4)
    with Catalog(root, readonly=True) as catalog:  # what boda serve and the keep rule read
        rows = catalog.mark_rows(marks_path(root))
        assert sorted(catalog.relpaths_of([r[0] for r in rows]).values()) == [
            b"k0.png", b"k1.png"]


def test_marking_after_the_rescan_keeps_the_earlier_marks(tmp_path, kodak_paths):
    """The scenario of the audit: pick, rescan at 128 px, rate, rescan at the default:
    the pick had been deleted as "another file's" mark when the stars were given."""
    root = _folder(tmp_path, kodak_paths)
    assert runner.invoke(app, ["mark", str(root), str(root / "k0.png"), "--pick"]).exit_code == 0
    scan(root, workers=1, max_side=48)
    result = runner.invoke(app, ["mark", str(root), str(root / "k0.png"), "--rating", "2"])
    assert result.exit_code == 0, result.output
    scan(root, workers=1)
    result = runner.invoke(app, ["report", str(root), "--only", "picked", "--paths"])
    assert result.stdout.split() == [str(root / "k0.png")]
    with Marks(root, readonly=True) as marks:
        assert marks.get(b"k0.png")[:2] == ("pick", 2)


def test_another_photo_at_the_path_still_starts_afresh(tmp_path, kodak_paths):
    root = _folder(tmp_path, kodak_paths)
    with Marks(root) as marks:
        marks.set_decision([b"k0.png"], "reject")
    write_image(root / "k0.png", read_image(root / "k2.png")[::-1])  # new size or time
    os.utime(root / "k0.png", ns=(10**18, 10**18))
    scan(root, workers=1, max_side=48)
    assert _paths(select_records(root, "rejected")) == []
    with Marks(root) as marks:
        assert marks.set_rating([b"k0.png"], 1) == 1
        assert marks.get(b"k0.png")[:2] == (None, 1)  # the old reject is gone for good


def test_a_mark_keeps_the_file_it_was_given_to(tmp_path, kodak_paths):
    root = _folder(tmp_path, kodak_paths)
    with Marks(root) as marks:
        marks.set_decision([b"k0.png"], "pick")
        mark = marks.get(b"k0.png")
    stat = os.stat(root / "k0.png")
    assert (mark.size, mark.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert mark.applies_to("another hash", stat.st_size, stat.st_mtime_ns)
    assert not mark.applies_to("another hash", stat.st_size, stat.st_mtime_ns + 1)
    assert not Mark("pick", None, 0.0, "h").applies_to("other", 1, 2)  # unknown file
    assert Mark("pick", None, 0.0, None).applies_to("anything")


def _version_1_marks(root, rows):
    path = marks_path(root)
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE marks_schema (version INTEGER NOT NULL);"
        "INSERT INTO marks_schema VALUES (1);"
        "CREATE TABLE marks (relpath BLOB PRIMARY KEY, decision TEXT CHECK (decision IN "
        "('pick', 'reject')), rating INTEGER CHECK (rating BETWEEN 1 AND 5), "
        "updated REAL NOT NULL, pixel_hash TEXT);"
    )
    db.executemany("INSERT INTO marks VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return path


def test_a_version_1_marks_file_is_read_as_it_is_and_upgraded_when_written(
    tmp_path, kodak_paths
):
    root = _folder(tmp_path, kodak_paths)
    hashes = _hashes(root)
    path = _version_1_marks(root, [(b"k0.png", "pick", None, 1.0, hashes[b"k0.png"]),
                                   (b"k1.png", None, 3, 1.0, "stale hash")])
    before = path.read_bytes()
    assert _paths(select_records(root, "picked")) == ["k0.png"]  # by its pixel hash
    assert _paths(select_records(root, "rated")) == []  # another file's stars
    with Marks(root, readonly=True) as marks:
        assert marks.get(b"k0.png") == Mark("pick", None, 1.0, hashes[b"k0.png"], None, None)
    assert path.read_bytes() == before  # reading changes nothing
    with Marks(root) as marks:
        marks.set_rating([b"k0.png"], 5)
        mark = marks.get(b"k0.png")
    assert mark[:2] == ("pick", 5) and mark.mtime_ns == os.stat(root / "k0.png").st_mtime_ns
    db = sqlite3.connect(path)
    assert db.execute("SELECT MAX(version) FROM marks_schema").fetchone()[0] == 2
    db.close()
    scan(root, workers=1, max_side=48)
    assert _paths(select_records(root, "picked")) == ["k0.png"]


def test_moved_files_carry_their_whole_mark(tmp_path, kodak_paths):
    root = _folder(tmp_path, kodak_paths)
    with Marks(root) as marks:
        marks.set_decision([b"k0.png"], "pick")
    os.rename(root / "k0.png", root / "moved.png")
    scan(root, workers=1)  # the move is recognised: the mark goes along, all of it
    scan(root, workers=1, max_side=48)
    assert _paths(select_records(root, "picked")) == ["moved.png"]
    with Marks(root, readonly=True) as marks:
        assert marks.get(b"moved.png").mtime_ns == os.stat(root / "moved.png").st_mtime_ns
