"""Culling marks: the store (boda.catalog.Marks), the selections and exports that read
them, and ``boda mark``."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat

import pytest
from scan_helpers import burst_of_copies
from typer.testing import CliRunner

from boda.catalog import Catalog, Mark, Marks, marks_path
from boda.cli import app
from boda.errors import CatalogError, InvalidParameterError
from boda.io import read_image, write_image
from boda.report import catalog_records, is_boda_csv, select_records, selected_paths, write_csv
from boda.scan import scan

runner = CliRunner()

NON_UTF8 = b"caf\xe9.png"


@pytest.fixture
def shoot(tmp_path, kodak_paths):
    """A scanned folder: four photos (one not UTF-8 named), one in a subfolder, a link
    and an unreadable file."""
    root = tmp_path / "shoot"
    (root / "day2").mkdir(parents=True)
    images = [read_image(p, max_side=64) for p in kodak_paths[:4]]
    write_image(root / "a.png", images[0])
    write_image(root / "b.png", images[1])
    write_image(root / "c.png", images[2])
    os.rename(root / "c.png", os.path.join(os.fsencode(root), NON_UTF8))
    write_image(root / "day2" / "d.png", images[3])
    os.symlink("a.png", root / "a link.png")
    (root / "broken.png").write_bytes(b"not a png")
    scan(root, workers=1)
    return root


def _paths(records) -> list[str]:
    return [r["path"] for r in records]


# -- the store ------------------------------------------------------------------------------------


def test_decisions_and_ratings_are_independent_and_cleared_rows_go(shoot):
    with Marks(shoot) as marks:
        assert marks.path == shoot / ".boda" / "catalog.marks.db"
        assert marks.set_decision([b"a.png", b"b.png"], "pick") == 2
        assert marks.set_decision([b"a.png"], "pick") == 0  # no change
        assert marks.set_rating([b"a.png", NON_UTF8], 4) == 2
        assert marks.set_decision([b"b.png"], "reject") == 1
        assert marks.get(b"a.png")[:2] == ("pick", 4)
        assert marks.get(NON_UTF8)[:2] == (None, 4)  # exact bytes round-trip
        assert marks.get(b"b.png")[:2] == ("reject", None)
        assert marks.counts() == {"pick": 1, "reject": 1, "rated": 2}
        # clearing a file without a mark makes no row; clearing both removes the row
        assert marks.set_decision([b"day2/d.png"], None) == 0
        assert marks.set_rating([NON_UTF8], 0) == 1
        assert marks.set_decision([b"b.png"], None) == 1
        assert set(marks.all()) == {b"a.png"}
        assert isinstance(marks.get(b"a.png"), Mark) and marks.get(b"nope") is None


@pytest.mark.parametrize(
    ("method", "value"),
    [("set_decision", "keep"), ("set_decision", 1), ("set_rating", 6), ("set_rating", -1),
     ("set_rating", 2.5), ("set_rating", True)],
)
def test_bad_marks_are_refused_and_nothing_is_written(shoot, method, value):
    with Marks(shoot) as marks:
        with pytest.raises(InvalidParameterError, match="decision|rating"):
            getattr(marks, method)([b"a.png"], value)
        assert marks.all() == {}


def test_reading_without_a_marks_file_creates_nothing(shoot):
    with Marks(shoot, readonly=True) as marks:
        assert marks.all() == {} and marks.counts() == {"pick": 0, "reject": 0, "rated": 0}
        with pytest.raises(CatalogError, match="read-only"):
            marks.set_decision([b"a.png"], "pick")
    assert not marks_path(shoot).exists()


def test_marks_path_follows_the_catalog(shoot, tmp_path):
    assert marks_path(shoot) == shoot / ".boda" / "catalog.marks.db"
    elsewhere = tmp_path / "elsewhere"
    assert marks_path(elsewhere / "trip.db") == elsewhere / "trip.marks.db"


def test_a_marks_file_of_a_newer_boda_or_not_one_at_all_is_refused(shoot):
    with Marks(shoot) as marks:
        marks.set_decision([b"a.png"], "pick")
    db = sqlite3.connect(marks_path(shoot))
    db.execute("INSERT INTO marks_schema VALUES (99)")
    db.commit()
    db.close()
    with pytest.raises(CatalogError, match="newer boda"):
        Marks(shoot, readonly=True)
    marks_path(shoot).write_bytes(b"garbage" * 100)
    with pytest.raises(CatalogError, match="not a usable boda marks file"):
        Marks(shoot)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_says_so(shoot):
    folder = shoot / ".boda"
    mode = folder.stat().st_mode
    folder.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        with pytest.raises(CatalogError, match="read-only.*--catalog"):
            Marks(shoot)
        assert not marks_path(shoot).exists()
    finally:
        folder.chmod(mode)


def test_a_new_scan_keeps_the_marks(shoot):
    with Marks(shoot) as marks:
        marks.set_decision([b"a.png"], "reject")
    before = marks_path(shoot).read_bytes()
    write_image(shoot / "new.png", read_image(shoot / "b.png")[::-1])
    (shoot / "b.png").unlink()
    scan(shoot, workers=1)
    assert marks_path(shoot).read_bytes() == before
    assert _paths(select_records(shoot, "rejected")) == ["a.png"]


# -- selections and exports -----------------------------------------------------------------------


@pytest.fixture
def marked(shoot):
    with Marks(shoot) as marks:
        marks.set_decision([b"a.png", NON_UTF8], "pick")
        marks.set_decision([b"b.png", b"a link.png"], "reject")  # a link is never selected
        marks.set_rating([b"a.png"], 5)
        marks.set_rating([b"b.png"], 2)
        marks.set_rating([b"broken.png"], 3)  # an unreadable file can carry stars
    return shoot


def test_the_mark_selections(marked):
    assert _paths(select_records(marked, "picked")) == ["a.png", "caf\\xe9.png"]
    assert _paths(select_records(marked, "rejected")) == ["b.png"]
    assert _paths(select_records(marked, "rated")) == ["a.png", "b.png", "broken.png"]
    assert _paths(select_records(marked, "undecided")) == ["day2/d.png"]
    assert _paths(select_records(marked, ["picked", "failed"])) == [
        "a.png", "broken.png", "caf\\xe9.png"]


def test_min_rating_filters_every_selection_and_export(marked, tmp_path):
    assert _paths(select_records(marked, min_rating=3)) == ["a.png", "broken.png"]
    assert _paths(select_records(marked, "picked", min_rating=3)) == ["a.png"]
    assert list(selected_paths(marked, "rejected", min_rating=2)) == [b"b.png"]
    assert list(selected_paths(marked, "rejected", min_rating=3)) == []
    table = write_csv(marked, tmp_path / "t.csv", min_rating=2)
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert [r["path"] for r in rows] == ["a.png", "b.png", "broken.png"]
    for bad in (0, 6, 2.5, True):
        with pytest.raises(InvalidParameterError, match="min_rating"):
            list(select_records(marked, min_rating=bad))


def test_records_csv_and_parquet_carry_the_marks(marked, tmp_path):
    by_path = {r["path"]: r for r in catalog_records(marked)}
    assert (by_path["a.png"]["decision"], by_path["a.png"]["rating"]) == ("pick", 5)
    assert (by_path["caf\\xe9.png"]["decision"], by_path["caf\\xe9.png"]["rating"]) == (
        "pick", None)
    assert (by_path["day2/d.png"]["decision"], by_path["day2/d.png"]["rating"]) == (None, None)
    table = write_csv(marked, tmp_path / "t.csv")
    rows = {r["path"]: r for r in csv.DictReader(io.StringIO(table.read_text("utf-8")))}
    assert (rows["a.png"]["decision"], rows["a.png"]["rating"]) == ("pick", "5")
    assert (rows["day2/d.png"]["decision"], rows["day2/d.png"]["rating"]) == ("", "")
    pq = pytest.importorskip("pyarrow.parquet")
    from boda.report import write_parquet

    data = pq.read_table(write_parquet(marked, tmp_path / "t.parquet")).to_pydict()
    marks = dict(zip(data["path"], zip(data["decision"], data["rating"], strict=True),
                     strict=True))
    assert marks["a.png"] == ("pick", 5) and marks["b.png"] == ("reject", 2)
    assert marks["day2/d.png"] == (None, None)


def test_a_table_of_the_version_before_the_marks_is_still_boda_s(tmp_path):
    from boda.report._export import CSV_COLUMNS, MARK_FIELDS

    old = tmp_path / "old.csv"
    old.write_text(",".join(c for c in CSV_COLUMNS if c not in MARK_FIELDS) + ",blurry\n")
    assert is_boda_csv(old)


# -- boda mark ------------------------------------------------------------------------------------


def _mark(shoot, *args, stdin=None):
    cwd = os.getcwd()
    os.chdir(shoot.parent)  # paths as a user in the parent folder types them
    try:
        return runner.invoke(app, ["mark", shoot.name, *args], input=stdin)
    finally:
        os.chdir(cwd)


def test_mark_takes_paths_as_report_prints_them_or_relative_to_dir(shoot):
    result = _mark(shoot, "shoot/a.png", "day2/d.png", "--pick", "--rating", "4")
    assert result.exit_code == 0, result.output
    assert "picked and rated 4 2 files" in result.output
    with Marks(shoot, readonly=True) as marks:
        assert {k: v[:2] for k, v in marks.all().items()} == {
            b"a.png": ("pick", 4), b"day2/d.png": ("pick", 4)}


def test_mark_reads_a_report_selection_from_stdin(shoot):
    listed = runner.invoke(app, ["report", str(shoot), "--only", "unflagged,failed", "--print0"])
    assert listed.exit_code == 0
    paths = [p for p in listed.stdout_bytes.split(b"\0") if p]
    assert paths
    result = runner.invoke(
        app, ["mark", str(shoot), "--reject", "--null", "-"], input=b"\0".join(paths) + b"\0"
    )
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["report", str(shoot), "--only", "rejected", "--print0"])
    assert sorted(p for p in again.stdout_bytes.split(b"\0") if p) == sorted(paths)
    # newline-separated, as --paths prints them: undecide them all again
    text = runner.invoke(app, ["report", str(shoot), "--only", "rejected", "--paths"])
    result = runner.invoke(
        app, ["mark", str(shoot), "--undecided", "-"], input=text.stdout_bytes
    )
    assert result.exit_code == 0, result.output
    assert Marks(shoot, readonly=True).all() == {}


def test_mark_takes_paths_through_another_name_of_the_folder(shoot, tmp_path):
    """A folder reached by a link (a home on a share, macOS's /tmp): `$PWD/photo.jpg`, a
    `realpath` or the paths `boda report` printed for the other name are its files."""
    alias = tmp_path / "alias"
    os.symlink(shoot, alias)
    result = runner.invoke(app, ["mark", str(shoot), str(alias / "a.png"), "--pick"])
    assert result.exit_code == 0, result.output
    # the link is its own file, not a.png: a mark on it (in no selection) is refused
    result = runner.invoke(app, ["mark", str(alias), str(shoot / "day2" / "d.png"),
                                 str(alias / "a link.png"), "--rating", "2"])
    assert result.exit_code == 2 and "a link" in result.output, result.output
    result = runner.invoke(app, ["mark", str(alias), str(shoot / "day2" / "d.png"),
                                 "--rating", "2"])
    assert result.exit_code == 0, result.output
    with Marks(shoot, readonly=True) as marks:
        assert {k: v[:2] for k, v in marks.all().items()} == {
            b"a.png": ("pick", None), b"day2/d.png": (None, 2)}
    outside = tmp_path / "outside"
    outside.mkdir()
    write_image(outside / "e.png", read_image(shoot / "a.png"))
    os.symlink(outside, shoot / "linked")  # a folder link in DIR: not followed, not DIR's
    result = runner.invoke(app, ["mark", str(shoot), str(shoot / "linked" / "e.png"), "--pick"])
    assert result.exit_code == 2 and "nothing was marked" in result.output


def test_mark_refuses_unknown_paths_before_any_change(shoot):
    result = _mark(shoot, "shoot/a.png", "shoot/nope.png", "--pick")
    assert result.exit_code == 2
    assert "nope.png" in result.output and "nothing was marked" in result.output
    assert not marks_path(shoot).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["a.png"], "say what to mark"), (["a.png", "--pick", "--reject"], "one of --pick"),
     (["--pick"], "give the files"), (["a.png", "-", "--pick"], "give it alone"),
     (["a.png", "--rating", "6"], "less than or equal to 5")],
)
def test_mark_usage_errors(shoot, args, message):
    result = _mark(shoot, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not marks_path(shoot).exists()


def test_mark_json_and_the_report_round_trip(shoot):
    result = _mark(shoot, "shoot/b.png", "--reject", "--rating", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["files"] == 1 and data["changed"] == 2 and data["decision"] == "reject"
    assert data["counts"] == {"pick": 0, "reject": 1, "rated": 1}
    assert data["marks_file"] == os.path.join("shoot", ".boda", "catalog.marks.db")
    listed = runner.invoke(app, ["report", str(shoot), "--only", "rejected", "--min-rating", "1"])
    assert listed.stdout.splitlines() == [str(shoot / "b.png")]
    listed = runner.invoke(app, ["report", str(shoot), "--min-rating", "2"])
    assert listed.exit_code == 0 and listed.stdout == ""
    refused = runner.invoke(app, ["report", str(shoot), "--min-rating", "1", "-o", "r.html"])
    assert refused.exit_code == 2 and "--min-rating filters" in " ".join(refused.output.split())


def test_marking_changes_no_user_file_and_not_the_catalog(shoot):
    files = [p for p in sorted(shoot.rglob("*")) if p.is_file() and ".boda" not in p.parts]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    with Catalog(shoot, readonly=True) as c:
        records = [r.to_dict() for r in c.records()]
    assert _mark(shoot, "shoot/a.png", "--pick").exit_code == 0
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    with Catalog(shoot, readonly=True) as c:
        assert [r.to_dict() for r in c.records()] == records


# -- a mark belongs to the file it was given to ---------------------------------------------------


def test_another_photo_at_a_marked_path_is_undecided(shoot):
    with Marks(shoot) as marks:
        marks.set_decision([b"a.png", b"b.png"], "reject")
        marks.set_rating([b"a.png"], 5)
    # a.png is replaced by another photo (a card whose numbering restarted)
    write_image(shoot / "a.png", read_image(shoot / "day2" / "d.png")[::-1])
    scan(shoot, workers=1)
    assert _paths(select_records(shoot, "rejected")) == ["b.png"]
    assert "a.png" in _paths(select_records(shoot, "undecided"))
    assert _paths(select_records(shoot, "rated")) == []
    by_path = {r["path"]: r for r in catalog_records(shoot)}
    assert (by_path["a.png"]["decision"], by_path["a.png"]["rating"]) == (None, None)
    with Catalog(shoot, readonly=True) as catalog:  # what boda serve reads
        rows = catalog.mark_rows(marks_path(shoot))
        assert [catalog.relpaths_of([r[0]])[r[0]] for r in rows] == [b"b.png"]
    # marking the new photo starts afresh: the old photo's stars do not come back
    with Marks(shoot) as marks:
        assert marks.set_decision([b"a.png"], "pick") == 1
        assert marks.get(b"a.png")[:2] == ("pick", None)


def test_the_same_pixels_rewritten_keep_their_mark(shoot):
    with Marks(shoot) as marks:
        marks.set_decision([b"b.png"], "pick")
    image = read_image(shoot / "b.png")
    os.utime(shoot / "b.png", ns=(1, 1))  # a changed file to the scan, same pixels
    write_image(shoot / "b.png", image)
    scan(shoot, workers=1)
    assert _paths(select_records(shoot, "picked")) == ["b.png"]


def test_mark_counts_only_the_catalog_s_files(shoot):
    assert _mark(shoot, "shoot/a.png", "shoot/b.png", "--pick").exit_code == 0
    (shoot / "b.png").unlink()
    scan(shoot, workers=1)
    result = _mark(shoot, "shoot/a.png", "--rating", "3", "--json")
    assert json.loads(result.stdout)["counts"] == {"pick": 1, "reject": 0, "rated": 1}


def test_mark_refuses_a_catalog_made_for_another_folder(shoot, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "a.png", read_image(shoot / "a.png"))
    catalog = tmp_path / "shared.db"
    scan(shoot, workers=1, catalog_path=catalog)
    result = runner.invoke(app, ["mark", str(other), str(other / "a.png"), "--reject",
                                 "--catalog", str(catalog)])
    assert result.exit_code == 2
    assert "was made for the folder" in " ".join(result.output.split())
    assert not marks_path(catalog).exists()



def test_report_refuses_a_catalog_made_for_another_folder_unless_it_moved(shoot, tmp_path):
    """`boda report OTHER --catalog SHOOT.db --only redundant --print0 | xargs -0 rm` listed
    OTHER's files that share SHOOT's paths (mark refused the same catalog)."""
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "a.png", read_image(shoot / "a.png"))
    catalog = tmp_path / "shared.db"
    scan(shoot, workers=1, catalog_path=catalog)
    for args in (["--paths"], ["--json"], ["--only", "redundant", "--print0"]):
        result = runner.invoke(app, ["report", str(other), "--catalog", str(catalog), *args])
        assert result.exit_code == 2, (args, result.output)
        assert "was made for the folder" in " ".join(result.output.split())
        assert str(other / "a.png") not in result.stdout
    # the folder it was made for moved away: the catalog follows it
    moved = tmp_path / "moved"
    shoot.rename(moved)
    result = runner.invoke(app, ["report", str(moved), "--catalog", str(catalog), "--paths"])
    assert result.exit_code == 0, result.output
    assert str(moved / "a.png") in result.stdout.splitlines()


def test_a_picked_copy_is_kept_and_never_redundant(tmp_path, kodak_paths):
    root = burst_of_copies(tmp_path / "burst", kodak_paths[0])
    assert _paths(select_records(root, "redundant")) == ["b.png", "c.png"]
    with Marks(root) as marks:
        marks.set_decision([b"c.png"], "pick")
    assert _paths(select_records(root, "redundant")) == ["a.png", "b.png"]
    with Marks(root) as marks:
        marks.set_decision([b"b.png"], "pick")
    assert _paths(select_records(root, "redundant")) == ["a.png"]
    from boda.report import duplicate_sets

    (only,) = duplicate_sets(root)
    assert (only.keep, only.redundant, only.linked) == ("b.png", ("a.png",), ("c.png",))
