"""What ``boda scan`` leaves for people to read, audited as a user and a reviewer would:
hostile file names in the HTML report and the CSV, the same values in ``--json``,
``--csv`` and ``--parquet``, catalogs someone edited by hand, and a locked catalog."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from scan_helpers import chosen_catalog
from typer.testing import CliRunner

from boda.catalog import Catalog
from boda.cli import app
from boda.errors import CatalogError
from boda.report import catalog_records, render_html, write_csv, write_parquet

runner = CliRunner()


def _folder(tmp_path: Path, files: list[dict]) -> Path:
    folder = tmp_path / "photos"
    (folder / ".boda").mkdir(parents=True)
    chosen_catalog(folder / ".boda" / "catalog.db", files)
    return folder


def _exports(folder: Path, out: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """The records as ``--json``, ``--csv`` (read back with the csv module) and
    ``--parquet`` give them, each through the CLI (which must exit 0)."""
    got = runner.invoke(app, ["report", str(folder), "--json"])
    assert got.exit_code == 0, (got.output, got.exception)
    records = json.loads(got.stdout)
    for args in (["--csv", str(out / "t.csv")], ["--parquet", str(out / "t.parquet")],
                 ["-o", str(out / "r.html")]):
        got = runner.invoke(app, ["report", str(folder), *args, "--overwrite"])
        assert got.exit_code == 0, (args, got.output, got.exception)
    with open(out / "t.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return records, rows, pq.read_table(out / "t.parquet").to_pylist()


# -- catalogs edited by hand: every export is still written --------------------------------

_ROW = "UPDATE images SET {} WHERE relpath = CAST('a.png' AS BLOB)"
#: Cells of the wrong type that a hand-edited catalog can hold (SQLite stores any type in
#: any column): ``UPDATE images SET relpath = 'new.png'`` stores text, not bytes.
_COLUMN_DAMAGE = {
    "relpath as text": _ROW.format("relpath = 'a.png'"),
    "link target as text": "UPDATE images SET status = 'link', link_to = 'a.png' "
                           "WHERE relpath = CAST('b.png' AS BLOB)",
    "phash as text": _ROW.format("phash = 'zz'"),
    "phash as a real": _ROW.format("phash = 1.5"),
    "width as text": _ROW.format("width = 'wide'"),
    "width beyond int32": _ROW.format("width = 99999999999"),
    "size as text": _ROW.format("size = 'big'"),
    "error as bytes": _ROW.format("error = x'ff00'"),
    "group as text": "UPDATE flags SET group_id = 'g'",
    "group beyond int64": "UPDATE flags SET group_id = 99999999999999999999",
    "channels beyond int8": _ROW.format(
        """extra = '{"mode": "RGB", "channels": 1000, "bit_depth": -300}'"""),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(_COLUMN_DAMAGE))
def test_a_hand_edited_catalog_gives_every_export(tmp_path, damage):
    # Before: a traceback ("'str' object has no attribute 'decode'", ArrowInvalid...)
    # for every export, or for the Parquet table.
    folder = _folder(tmp_path, [{"name": "a.png", "pixels": "ab" * 16, "sharp": 0.2},
                                {"name": "b.png", "pixels": "ab" * 16}])
    with sqlite3.connect(folder / ".boda" / "catalog.db") as db:
        db.execute(_COLUMN_DAMAGE[damage])
    records, rows, table = _exports(folder, tmp_path)
    assert [r["path"] for r in records] == [r["path"] for r in rows] == [r["path"] for r in table]
    assert [r["path"] for r in records] == ["a.png", "b.png"]
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "a.png" in page and "b.png" in page


# -- scores: the same value, or the same "missing", in every export --------------------------


def test_scores_that_are_no_finite_number_are_missing_in_every_export(tmp_path):
    # Before: NaN was null in --json but "nan" in the CSV and NaN in Parquet; a score
    # stored as text was "high" in --json and the CSV, null in Parquet.
    folder = _folder(tmp_path, [
        {"name": "a.png", "scores": {"blurry": 0.7, "dark": 0.25, "light": 0.5}},
        {"name": "b.png", "scores": {"blurry": 0.8, "dark": 0.1, "light": None}},
    ])  # fmt: skip
    with sqlite3.connect(folder / ".boda" / "catalog.db") as db:
        db.execute(_ROW.format("""scores = '{"blurry": NaN, "dark": Infinity,
                                             "light": -Infinity}'"""))
        db.execute("""UPDATE images SET scores = '{"blurry": "high", "dark": true,
                      "light": [1]}' WHERE relpath = CAST('b.png' AS BLOB)""")
    records, rows, table = _exports(folder, tmp_path)
    for record, row, typed in zip(records, rows, table, strict=True):
        for name in ("blurry", "dark", "light"):
            assert record["scores"][name] is None, (record["path"], name)
            assert row[name] == "" and typed[name] is None, (record["path"], name)


def test_finite_scores_are_equal_in_every_export(tmp_path):
    # A guard for the fix above: real scores keep their exact values everywhere.
    values = [0.1, 1 / 3, 2.5e-17, 123456.789, -0.0, 0.0, 1e300]
    folder = _folder(tmp_path, [
        {"name": f"{i}.png", "scores": {"blurry": v, "contrast": -v}}
        for i, v in enumerate(values)
    ])  # fmt: skip
    records, rows, table = _exports(folder, tmp_path)
    for record, row, typed in zip(records, rows, table, strict=True):
        for name in ("blurry", "contrast"):
            value = record["scores"][name]
            assert float(row[name]) == value == typed[name]
            assert math.copysign(1, float(row[name])) == math.copysign(1, value)


# -- the HTML report -------------------------------------------------------------------------


def test_a_flag_section_puts_images_without_a_score_last(tmp_path):
    # Before: a missing (NULL) flag score sorted as 0.0, so it came first among the
    # blurry images (lowest is worst), and a NaN score left the order undefined.
    names = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    folder = _folder(tmp_path, [{"name": n, "sharp": 0.1 + i / 20} for i, n in enumerate(names)])
    with sqlite3.connect(folder / ".boda" / "catalog.db") as db:
        for name, score in (("b.png", None), ("d.png", float("nan"))):
            db.execute(
                "UPDATE flags SET score = ? WHERE name = 'blurry' AND image_id = "
                "(SELECT id FROM images WHERE relpath = CAST(? AS BLOB))", (score, name)
            )
    page = render_html(folder)
    section = page[page.index('id="flag-blurry"'):page.index("<h2", page.index('id="flag-blurry"'))]
    shown = [n for n in sorted(names, key=section.index)]
    assert shown[:3] == ["a.png", "c.png", "e.png"]  # 0.1, 0.2, 0.3: worst first
    assert set(shown[3:]) == {"b.png", "d.png"}


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for key, value in attrs:
            if key.startswith("on"):
                self.handlers.append((tag, key))
            if key in ("href", "src") and value and not value.startswith(("data:", "#")):
                self.urls.append(value)

    def handle_data(self, data):
        self.text.append(data)


_HOSTILE = ["<script>alert(1)<\\script>.png", "<svg onload=alert(1)>.png", "a\"b'c&d<e>.png",
            "javascript:alert(1).png", "x\" onmouseover=\"alert(1).png", "=HYPERLINK(1).png"]


def test_hostile_names_are_text_in_the_report(tmp_path):
    # A guard (the report already escapes every name): each name is text, in no tag or
    # attribute of its own, and the page asks nothing of the network.
    folder = _folder(tmp_path, [{"name": n, "sharp": 0.1, "pixels": "ab" * 16} for n in _HOSTILE])
    report = tmp_path / "r.html"
    got = runner.invoke(app, ["report", str(folder), "-o", str(report)])
    assert got.exit_code == 0, got.output
    parsed = _Elements()
    parsed.feed(report.read_text(encoding="utf-8"))
    assert {"script", "svg"} & parsed.tags == {"svg"}  # the histograms' own
    assert parsed.handlers == [] and all("://" not in u and ":" not in u for u in parsed.urls)
    text = "".join(parsed.text)
    assert all(name in text for name in _HOSTILE)


# -- the CSV in a spreadsheet ----------------------------------------------------------------

_FORMULAS = ["=HYPERLINK(\"http:\\\\x\",\"y\")&\".png", "+1.png", "-2.png", "@SUM(1).png"]


def test_csv_cells_a_spreadsheet_would_run_are_kept_exact_and_said(tmp_path):
    # Before: written without a word.  The cells stay exact (pandas, xargs and joins on
    # the path need the name as it is on disk); the user is told how to open the table.
    folder = _folder(tmp_path, [{"name": n} for n in [*_FORMULAS, "plain.png"]])
    got = runner.invoke(app, ["report", str(folder), "--csv", str(tmp_path / "t.csv")])
    assert got.exit_code == 0, got.output
    with open(tmp_path / "t.csv", encoding="utf-8", newline="") as fh:
        assert sorted(r["path"] for r in csv.DictReader(fh)) == sorted([*_FORMULAS, "plain.png"])
    said = " ".join(got.stderr.split())
    assert "4 cells" in said and "formula" in said and "docs/security.md" in said
    with pytest.warns(UserWarning, match="formula"):
        write_csv(folder, tmp_path / "lib.csv")


def test_a_csv_without_such_cells_says_nothing_of_formulas(tmp_path):
    folder = _folder(tmp_path, [{"name": "a.png", "scores": {"blurry": 0.9, "contrast": -1.5}}])
    got = runner.invoke(app, ["report", str(folder), "--csv", "-"])
    assert got.exit_code == 0 and "formula" not in got.stderr
    assert "-1.5" in got.stdout  # a negative score is a number, not a formula


# -- a locked catalog --------------------------------------------------------------------------


def test_a_locked_catalog_is_said_to_be_locked_not_unusable(tmp_path, monkeypatch):
    # Before: "is not a usable boda catalog (database is locked); move it away and scan
    # again", advice that would lose the catalog's marks for a lock held for a moment.
    import boda.catalog._catalog as catalog_module

    folder = _folder(tmp_path, [{"name": "a.png"}])
    monkeypatch.setattr(catalog_module, "_BUSY_TIMEOUT", 0.05)
    holder = sqlite3.connect(folder / ".boda" / "catalog.db", isolation_level=None,
                             check_same_thread=False)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE settings SET value = value")
    try:
        for readonly in (True, False):
            with pytest.raises(CatalogError) as caught:
                Catalog(folder, readonly=readonly).close()
            message = str(caught.value)
            assert "locked" in message and "another program" in message, message
            assert "move it away" not in message
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r["path"] for r in catalog_records(folder)] == ["a.png"]  # unharmed


def test_the_parquet_table_of_a_hand_edited_layout_is_written(tmp_path):
    # The library call too (not only the CLI): channels beyond int8 became an ArrowInvalid.
    folder = _folder(tmp_path, [{"name": "a.png"}])
    with sqlite3.connect(folder / ".boda" / "catalog.db") as db:
        db.execute(_COLUMN_DAMAGE["channels beyond int8"])
    row = pq.read_table(write_parquet(folder, tmp_path / "t.parquet")).to_pylist()[0]
    assert row["mode"] == "RGB" and row["channels"] is None and row["bit_depth"] is None

