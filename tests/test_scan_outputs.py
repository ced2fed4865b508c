"""The scan's outputs agree with each other and with the folder: the summary, the
JSON and CSV exports, the HTML report and the Python API around the catalog."""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
import scan_helpers
from typer.testing import CliRunner

import boda.scan._pipeline as pipeline
from boda.catalog import SCHEMA_VERSION, Catalog, ImageRecord, default_catalog_path
from boda.cli import app
from boda.errors import CatalogError
from boda.io import write_image
from boda.report import catalog_records, render_html, write_csv, write_html_report
from boda.scan import default_thresholds, flag_descriptions, scan

runner = CliRunner()


def _records(root: Path) -> dict[str, dict]:
    return {r["path"]: r for r in catalog_records(default_catalog_path(root))}


def _csv(root: Path, out: Path) -> list[dict[str, str]]:
    write_csv(default_catalog_path(root), out)
    with open(out, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- consist 1: an interrupted rescan forgets the deleted files ----------------------------------


def test_an_interrupted_rescan_forgets_the_deleted_files(folder, tmp_path, monkeypatch):
    scan(folder, workers=1)
    os.remove(folder / "copies" / "a copy.png")
    later = time.time_ns() + 10**9
    for name in "bcd":  # changed: to be analysed again
        os.utime(folder / f"{name}.png", ns=(later, later))
    monkeypatch.setattr(pipeline, "_iter_results", scan_helpers.interrupt_after(1))
    summary = scan(folder, workers=1)
    assert summary.interrupted and (summary.total, summary.removed) == (4, 1)
    assert (summary.analysed, summary.pending) == (1, 2)
    assert summary.flag_counts["exact_duplicate"] == 0
    assert set(_records(folder)) == {"a.png", "b.png", "c.png", "d.png"}
    assert not [r for r in _csv(folder, tmp_path / "x.csv") if "copy" in r["path"]]
    page = render_html(default_catalog_path(folder))
    assert "a copy.png" not in page and "4 files · 4 readable" in page
    assert "The last scan did not finish" in page and "2 files were still to analyse" in page
    monkeypatch.undo()
    assert "did not finish" not in render_html(scan(folder, workers=1).catalog_path)


def test_exports_say_when_a_stopped_reanalysis_left_two_kinds_of_scores(folder, monkeypatch):
    scan(folder, workers=1)  # 5 files at the default analysis size
    monkeypatch.setattr(pipeline, "_iter_results", scan_helpers.interrupt_after(1))
    summary = scan(folder, workers=1, max_side=48)  # another size: every file again
    assert summary.interrupted and summary.analysed == 1
    monkeypatch.undo()
    out = runner.invoke(app, ["report", str(folder), "--json"])
    assert out.exit_code == 0
    note = " ".join(out.stderr.split())
    assert "note: 4 files still carry the scores of the earlier analysis" in note
    assert "run 'boda scan' on the folder to finish" in note
    scan(folder, workers=1, max_side=48)
    assert "earlier analysis" not in runner.invoke(app, ["report", str(folder), "--json"]).stderr


def test_reanalyze_analyses_every_file_keeps_marks_and_a_stopped_run_resumes(folder, monkeypatch):
    from boda.catalog import Marks

    first = scan(folder, workers=1)
    assert first.analysed == 5
    with Marks(first.catalog_path) as marks:
        marks.set_decision([b"a.png"], "pick")
        marks.set_rating([b"b.png"], 3)
    with Catalog(first.catalog_path, readonly=True) as catalog:
        before = {r.path: (r.scores, r.phash) for r in catalog.records()}
    assert scan(folder, workers=1).analysed == 0  # unchanged files are skipped...
    monkeypatch.setattr(pipeline, "_iter_results", scan_helpers.interrupt_after(2))
    stopped = scan(folder, workers=1, reanalyze=True)  # ...but not with reanalyze
    assert stopped.interrupted and stopped.analysed == 2
    monkeypatch.undo()
    note = " ".join(runner.invoke(app, ["report", str(folder), "--json"]).stderr.split())
    assert "3 files still carry the scores of the earlier analysis" in note
    resumed = scan(folder, workers=1)  # a plain scan finishes what it left
    assert (resumed.analysed, resumed.unchanged) == (3, 2)
    assert scan(folder, workers=1).analysed == 0
    result = runner.invoke(app, ["scan", str(folder), "--reanalyze", "--no-report", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["analysed"], summary["unchanged"]) == (5, 0)
    with Catalog(first.catalog_path, readonly=True) as catalog:
        after = {r.path: (r.scores, r.phash) for r in catalog.records()}
    assert after == before  # the same files give the same scores
    with Marks(first.catalog_path, readonly=True) as marks:
        assert marks.get(b"a.png")[0] == "pick" and marks.get(b"b.png")[1] == 3
    with pytest.raises(ValueError, match="reanalyze"):
        scan(folder, workers=1, reanalyze="yes")
    assert "--reanalyze" in runner.invoke(app, ["scan", "--help"]).stdout


def test_the_report_of_a_killed_scan_counts_the_files_left(folder):
    """A scan killed with -9 never writes its end: the report counts from the catalog."""
    scan(folder, workers=1)
    with Catalog(default_catalog_path(folder)) as catalog:
        started = time.time() + 3600  # no file was written after it
        catalog.set_setting("last_scan", {"complete": False, "started": started, "to_analyse": 3})
    page = render_html(folder)
    assert "The last scan did not finish" in page and "3 files were still to analyse" in page



def test_a_report_while_a_scan_runs_says_so_not_interrupted(folder, scan_lock_held):
    """The page and the CLI said "did not finish (interrupted)" of a scan still at work."""
    scan(folder, workers=1)
    with Catalog(default_catalog_path(folder)) as catalog:
        catalog.set_setting("last_scan", {"complete": False, "pending": 1})
    assert "1 file was still to analyse" in render_html(folder)  # the scan is gone
    with scan_lock_held(folder):
        page = render_html(folder)
        result = runner.invoke(app, ["report", str(folder), "--json"])
    assert "A scan of this folder is running" in page and "1 file still to analyse" in page
    assert "did not finish" not in page
    assert result.exit_code == 0 and "a scan of this folder is running" in result.stderr


# -- consist 2: thresholds are remembered --------------------------------------------------------


def test_thresholds_given_once_are_remembered_until_reset(folder):
    first = runner.invoke(app, ["scan", str(folder), "-q", "--no-report", "-t", "blurry=5"])
    assert first.exit_code == 0, first.output
    assert "remembered" not in first.output  # given now, not remembered
    (folder / "e.png").write_bytes((folder / "b.png").read_bytes())  # a new photo arrives
    plain = runner.invoke(app, ["scan", str(folder), "--no-report", "--json"])
    summary = json.loads(plain.stdout)
    assert summary["thresholds"]["blurry"] == 5 and summary["flag_counts"]["blurry"] == 6
    assert summary["remembered_thresholds"] == {"blurry": 5}
    text = runner.invoke(app, ["scan", str(folder), "-q", "--no-report", "-t", "dark=0.9"])
    line = [ln for ln in text.output.splitlines() if "remembered" in ln]
    assert len(line) == 1 and "blurry=5 (default 0.44)" in line[0], text.output
    assert "dark=" not in line[0]  # given this time
    both = scan(folder, workers=1)
    assert both.remembered_thresholds == {"blurry": 5.0, "dark": 0.9}
    reset = json.loads(runner.invoke(
        app, ["scan", str(folder), "--no-report", "--json", "--reset-thresholds"]
    ).stdout)
    assert reset["thresholds"] == default_thresholds() and reset["remembered_thresholds"] == {}
    assert scan(folder, workers=1).thresholds == default_thresholds()


def test_thresholds_of_an_older_catalog_are_remembered(folder):
    """An older boda stored only the last scan's full thresholds: those count, and
    names or values this boda does not accept are left out."""
    scan(folder, workers=1)
    with Catalog(default_catalog_path(folder)) as catalog:
        catalog._db.execute("DELETE FROM settings WHERE key = 'threshold_overrides'")
        catalog._db.commit()
        stored = {**default_thresholds(), "blurry": 0.3, "retired_flag": 1.0,
                  "near_duplicate": 3.5}
        catalog.set_setting("thresholds", stored)
    summary = scan(folder, workers=1)
    assert summary.remembered_thresholds == {"blurry": 0.3}
    assert summary.thresholds == {**default_thresholds(), "blurry": 0.3}


def test_scan_help_and_readme_say_thresholds_are_remembered():
    help_text = " ".join(runner.invoke(app, ["scan", "--help"]).output.split())
    assert "--reset-thresholds" in help_text and "remembered" in help_text
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert "--reset-thresholds" in readme


# -- consist 3: the CSV shows the duplicate groups; every column is documented -------------------


def test_csv_has_duplicate_groups_size_and_hashes(folder, small_photos, tmp_path):
    write_image(folder / "b small.jpg", small_photos[1][::2, ::2], quality=90)  # near b
    scan(folder, workers=1)
    rows = {r["path"]: r for r in _csv(folder, tmp_path / "scores.csv")}
    records = _records(folder)
    assert rows["a.png"]["exact_duplicate_group"] == rows["copies/a copy.png"][
        "exact_duplicate_group"] == "1"
    assert rows["b.png"]["near_duplicate_group"] == rows["b small.jpg"][
        "near_duplicate_group"] == "1"
    assert rows["c.png"]["exact_duplicate_group"] == rows["c.png"]["near_duplicate_group"] == ""
    for path, row in rows.items():
        assert int(row["size"]) == (folder / path).stat().st_size == records[path]["size"]
        assert row["pixel_hash"] == records[path]["pixel_hash"]
        assert row["phash"] == records[path]["phash"]


def test_every_export_field_and_column_is_documented(folder, tmp_path):
    scan(folder, workers=1)
    doc = (Path(__file__).parent.parent / "docs" / "scan.md").read_text(encoding="utf-8")
    record = catalog_records(default_catalog_path(folder))[0]
    columns = list(_csv(folder, tmp_path / "x.csv")[0])
    summary = json.loads(runner.invoke(app, ["scan", str(folder), "--json"]).stdout)
    names = {*record, *record["scores"], *columns, *summary}
    undocumented = sorted(n for n in names if f"`{n}`" not in doc)
    assert not undocumented, f"not in docs/scan.md: {undocumented}"
    for term in ("flag_scores", "mean_lightness", "mean_L", "CIE L", "luma"):
        assert term in doc
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/scan.md" in readme


# -- consist 4 / notebook 9: flag_counts names every flag ----------------------------------------


def test_flag_counts_list_every_flag_with_zeros(folder):
    summary = scan(folder, workers=1)
    assert list(summary.flag_counts) == list(flag_descriptions())
    assert summary.flag_counts["blurry"] == 0 and summary.flag_counts["exact_duplicate"] == 2
    result = runner.invoke(app, ["scan", str(folder), "--json", "--no-report"])
    assert json.loads(result.stdout)["flag_counts"] == summary.flag_counts


# -- consist 5: one word for one thing -----------------------------------------------------------


def test_console_and_report_name_their_counts_apart(folder):
    (folder / "broken.png").write_bytes(b"not a png")
    scan(folder, workers=1)
    result = runner.invoke(app, ["scan", str(folder), "-q"])
    first = result.output.splitlines()[0]
    assert "1 analysed in this run · 5 unchanged" in first, first  # the broken file retried
    page = (folder / ".boda" / "report.html").read_text(encoding="utf-8")
    assert "6 files · 5 readable · 1 unreadable" in page
    assert "<b>5</b>readable" in page and "analysed" not in page


def test_histograms_name_a_flag_once_where_its_score_has_its_name(folder):
    assert runner.invoke(app, ["scan", str(folder), "-q", "--workers", "1"]).exit_code == 0
    page = (folder / ".boda" / "report.html").read_text(encoding="utf-8")
    titles = re.findall(r'<div class="hist"><b>([^<]*)</b>', page)
    assert "blurry" in titles and "blurry (blurry)" not in titles  # said it twice
    assert "aspect_ratio (odd_aspect_ratio)" in titles  # a score read by another flag


def test_the_rules_table_fits_a_narrow_window_without_breaking_words(folder):
    """At 400 px the rule column was one character wide ("blurr|y <", "low_i|nform|ation"):
    its code could break anywhere.  Lines now break after an underscore or a space."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no browser at /usr/bin/chromium")
    assert runner.invoke(app, ["scan", str(folder), "-q", "--workers", "1"]).exit_code == 0
    page_file = folder / ".boda" / "report.html"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 400, "height": 900})
        page.goto(page_file.as_uri())
        page.locator("details").first.evaluate("d => d.open = true")
        wide = page.locator("details .wide")
        assert wide.evaluate("e => e.scrollWidth <= e.clientWidth")  # no sideways scrolling
        widths = page.locator("details td code").evaluate_all(
            "cs => cs.map(c => c.parentElement.getBoundingClientRect().width)")
        assert len(widths) == len(flag_descriptions()) and min(widths) >= 80, widths
        page.set_viewport_size({"width": 1600, "height": 900})  # room: names on one line
        one_line = page.locator("details td.flag").evaluate_all(
            """tds => tds.map(td => { const r = document.createRange();
                r.selectNodeContents(td); const rs = [...r.getClientRects()];
                return rs[0].top === rs[rs.length - 1].top; })""")
        assert len(one_line) == len(flag_descriptions()) and all(one_line), one_line
        browser.close()


def test_a_long_unreadable_file_name_leaves_room_for_its_reason(folder):
    """At 400 px a long name without spaces took the whole table and left the reason
    one character wide; file names may now break anywhere, as on the cards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no browser at /usr/bin/chromium")
    (folder / ("망가진_파일_" + "x" * 60 + ".jpg")).write_bytes(b"not an image")
    assert runner.invoke(app, ["scan", str(folder), "-q", "--workers", "1"]).exit_code == 3
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 400, "height": 900})
        page.goto((folder / ".boda" / "report.html").as_uri())
        reason = page.locator("#failures ~ .wide td:not(.path)").last
        assert reason.bounding_box()["width"] >= 120
        assert page.evaluate("document.documentElement.scrollWidth") <= 400
        browser.close()


# -- consist 6: names that are not UTF-8 ---------------------------------------------------------


def test_names_that_are_not_utf8_stay_distinct_and_round_trip(folder, tmp_path):
    raw_root = os.fsencode(folder)
    names = [b"bad\xff.png", b"bad\xfe.png"]
    for name, source in zip(names, ("b.png", "c.png"), strict=True):
        with open(os.path.join(raw_root, name), "wb") as fh:
            fh.write((folder / source).read_bytes())
    scan(folder, workers=1)
    records = catalog_records(default_catalog_path(folder))
    assert len({r["path"] for r in records}) == len(records) == 7
    odd = {r["path"]: r["path_bytes_hex"] for r in records if r["path"].startswith("bad")}
    assert odd == {"bad\\xff.png": b"bad\xff.png".hex(), "bad\\xfe.png": b"bad\xfe.png".hex()}
    assert all(r["path_bytes_hex"] is None for r in records if not r["path"].startswith("bad"))
    for hexed in odd.values():
        assert os.path.isfile(os.path.join(raw_root, bytes.fromhex(hexed)))
    rows = _csv(folder, tmp_path / "x.csv")
    assert {r["path"]: r["path_bytes_hex"] for r in rows if r["path"].startswith("bad")} == odd
    page = render_html(folder)
    assert "bad\\xff.png" in page and "bad\\xfe.png" in page


# -- consist 7: a symlink to a file of the folder is a link, not a duplicate ---------------------


def test_a_link_to_a_file_of_the_folder_is_recorded_as_a_link(folder, tmp_path):
    os.symlink("a.png", folder / "a link.png")
    os.symlink("../b.png", folder / "copies" / "b link.png")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes((folder / "c.png").read_bytes())
    os.symlink(outside, folder / "from elsewhere.png")
    summary = scan(folder, workers=1)
    assert (summary.total, summary.analysed, summary.links) == (8, 6, 2)
    records = _records(folder)
    assert records["a link.png"]["status"] == "link"
    assert records["a link.png"]["link_to"] == "a.png"
    assert records["copies/b link.png"]["link_to"] == "b.png"
    assert records["a link.png"]["flags"] == [] and records["a link.png"]["groups"] == {}
    assert records["from elsewhere.png"]["status"] == "ok"  # outside the folder: a file
    assert records["a.png"]["flag_scores"]["exact_duplicate"] == 2  # a and its real copy
    exact = {p for p, r in records.items() if "exact_duplicate" in r["flags"]}
    assert exact == {"a.png", "copies/a copy.png", "c.png", "from elsewhere.png"}
    page = render_html(folder)
    assert 'id="links"' in page
    assert "<td class='path'>a link.png</td><td class='path'>a.png</td>" in page
    again = scan(folder, workers=1)  # rescans keep them as links, nothing to analyse
    assert (again.analysed, again.links, again.removed) == (0, 2, 0)
    os.remove(folder / "a link.png")
    (folder / "a link.png").write_bytes((folder / "d.png").read_bytes())  # now a file
    third = scan(folder, workers=1)
    assert (third.analysed, third.links) == (1, 1)
    assert _records(folder)["a link.png"]["status"] == "ok"


def test_a_link_whose_target_the_walk_skips_is_scanned_as_a_file(folder):
    hidden = folder / ".hidden"
    hidden.mkdir()
    (hidden / "x.png").write_bytes((folder / "d.png").read_bytes())
    os.symlink(".hidden/x.png", folder / "x link.png")
    summary = scan(folder, workers=1)
    assert summary.links == 0 and _records(folder)["x link.png"]["status"] == "ok"


# -- notebook 3: the catalog API takes the scanned folder ----------------------------------------


def test_the_catalog_api_accepts_the_scanned_folder(folder, tmp_path):
    scan(folder, workers=1)
    db = default_catalog_path(folder)
    with Catalog(folder, readonly=True) as catalog:
        assert catalog.path == db and catalog.count()["ok"] == 5
    with Catalog(folder) as catalog, Catalog(folder / ".boda") as inside:
        assert catalog.path == inside.path == db
    assert catalog_records(folder) == catalog_records(db)
    assert write_csv(folder, tmp_path / "a.csv").read_bytes() == write_csv(
        db, tmp_path / "b.csv").read_bytes()
    page = write_html_report(folder, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "a copy.png" in page and "boda report — photos" in page


def test_a_folder_without_a_catalog_is_refused_and_nothing_is_created(tmp_path):
    empty = tmp_path / "never scanned"
    empty.mkdir()
    expected = str(empty / ".boda" / "catalog.db")
    for call in (lambda: Catalog(empty), lambda: Catalog(empty, readonly=True),
                 lambda: catalog_records(empty), lambda: render_html(empty)):
        with pytest.raises(CatalogError, match="run 'boda scan") as info:
            call()
        assert repr(expected) in str(info.value)
    assert list(empty.iterdir()) == []
    with pytest.raises(CatalogError, match=repr(str(tmp_path / "absent.db"))):
        catalog_records(tmp_path / "absent.db")


# -- the schema change: an older catalog keeps working -------------------------------------------

_V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE images (
    id INTEGER PRIMARY KEY, relpath BLOB NOT NULL UNIQUE, display_path TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')), error TEXT, width INTEGER,
    height INTEGER, format TEXT, pixel_hash TEXT, phash INTEGER,
    scores TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}',
    scanned_at REAL NOT NULL
);
CREATE TABLE thumbnails (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE, jpeg BLOB NOT NULL
);
CREATE TABLE flags (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE, name TEXT NOT NULL,
    score REAL, group_id INTEGER, PRIMARY KEY (image_id, name)
);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX flags_by_name ON flags(name, score);
INSERT INTO schema_version VALUES (1);
INSERT INTO images VALUES (7, X'612E706E67', 'a.png', 10, 5, 'ok', NULL, 4, 3, 'PNG',
                           'ab', -2, '{"blurry": 0.1}', '{}', 1.0);
INSERT INTO thumbnails VALUES (7, X'FFD8');
INSERT INTO flags VALUES (7, 'blurry', 0.1, NULL);
INSERT INTO settings VALUES ('thresholds', '{"blurry": 0.3}');
"""


def _v1_catalog(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.executescript(_V1_SCHEMA)
    return path


def test_a_version_1_catalog_is_read_as_it_is_and_migrated_when_written(tmp_path):
    db = _v1_catalog(tmp_path / "old" / "catalog.db")
    with Catalog(db, readonly=True) as catalog:  # read-only: read as it is
        (old,) = catalog.records(with_thumbnails=True)
        assert (old.path, old.link_to, old.flags) == ("a.png", None, {"blurry": (0.1, None)})
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    with Catalog(db) as catalog:
        (record,) = catalog.records(with_thumbnails=True)
        assert record == old  # ids, flags, thumbnail and the unsigned hash kept
        catalog.write_batch([ImageRecord(b"b.png", 10, 5, "link", link_to=b"a.png")])
        assert catalog.count() == {"ok": 1, "error": 0, "link": 1}
        assert catalog.get_setting("thresholds") == {"blurry": 0.3}
        assert catalog.integrity_check() == "ok"
        assert catalog._db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert catalog.remove([b"a.png"]) == 1  # the cascade still reaches flags/thumbnails
        assert catalog._db.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == 0
        assert catalog._db.execute("SELECT COUNT(*) FROM thumbnails").fetchone()[0] == 0
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [
            (SCHEMA_VERSION,)]


def test_a_folder_scanned_by_an_older_boda_scans_and_reports(folder):
    scan(folder, workers=1)
    db = default_catalog_path(folder)
    with sqlite3.connect(db) as con:  # back to the version 1 table, rows kept
        con.executescript(
            "PRAGMA foreign_keys = OFF; BEGIN;"
            + _V1_SCHEMA.split("CREATE TABLE thumbnails")[0]
            .replace("CREATE TABLE schema_version (version INTEGER NOT NULL);", "")
            .replace("CREATE TABLE images", "CREATE TABLE images_v1")
            + "INSERT INTO images_v1 SELECT id, relpath, display_path, size, mtime_ns, status,"
            " error, width, height, format, pixel_hash, phash, scores, extra, scanned_at"
            " FROM images; DROP TABLE images; ALTER TABLE images_v1 RENAME TO images;"
            " UPDATE schema_version SET version = 1; COMMIT;"
        )
    assert len(catalog_records(folder)) == 5  # read-only, still version 1
    os.symlink("a.png", folder / "a link.png")
    summary = scan(folder, workers=1)
    assert (summary.unchanged, summary.analysed, summary.links) == (5, 0, 1)
    assert _records(folder)["a link.png"]["status"] == "link"


def test_a_logged_scan_shows_the_analysis_bar_and_summary_only(two_photos):
    # On a terminal each long step shows while it runs; a log (stderr not a
    # terminal) used to get one line per step plus blank lines from Rich.
    first = runner.invoke(app, ["scan", str(two_photos), "--no-report", "-w", "1"])
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0].startswith("scanning") and lines[1].startswith("2 files")
    again = runner.invoke(app, ["scan", str(two_photos), "--no-report", "-w", "1"])
    assert again.output.splitlines()[0].startswith("2 files · 0 analysed in this run")


def test_the_report_groups_unreadable_files_by_reason(tmp_path):
    """Hundreds of zero-byte files read as one line of the reasons table."""
    folder = tmp_path / "card"
    folder.mkdir()
    write_image(folder / "good.png", np.zeros((16, 16, 3), np.float32) + 0.5)
    for k in range(5):
        (folder / f"empty{k}.jpg").write_bytes(b"")
    (folder / "noise.jpg").write_bytes(b"\x00\x01 not an image at all")
    scan(folder, workers=1)
    page = render_html(folder)
    reasons = re.search(r"<th>reason</th><th>files</th><th>for example</th></tr>(.*?)</table>",
                        page, re.S)
    assert reasons, "no table of reasons"
    rows = re.findall(r"<tr><td>(.*?)</td><td class='num'>(\d+)</td><td class='path'>(.*?)</td>",
                      reasons.group(1))
    assert [(count, example) for _, count, example in rows] == [
        ("5", "empty0.jpg"), ("1", "noise.jpg")]
    assert "empty" in rows[0][0] and page.count("<tr><td>empty") == 1  # the reason
    assert page.count("<tr><td class='path'>empty") == 5  # and each file

    for k in range(1, 5):  # every reason its own: nothing to group, no table
        (folder / f"empty{k}.jpg").unlink()
    scan(folder, workers=1)
    assert "<th>for example</th>" not in render_html(folder)
