"""The Parquet export (``boda report DIR --parquet FILE``): the CSV's rows and columns,
typed, read back with pyarrow and compared with the catalog's JSON records."""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from boda.cli import app
from boda.errors import BodaError
from boda.io import write_image
from boda.report import _parquet, catalog_records, is_boda_parquet, select_records, write_parquet
from boda.scan import scan

runner = CliRunner()
NON_UTF8 = b"n\xe9e.png"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, small_photos) -> Path:
    """Readable photos, an exact copy, a blurry one, a non-UTF-8 name and a broken file."""
    from scipy import ndimage

    root = tmp_path_factory.mktemp("parquet") / "photos"
    (root / "sub").mkdir(parents=True)
    for name, image in zip("abc", small_photos, strict=False):
        write_image(root / f"{name}.png", image)
    (root / "sub" / "a copy.png").write_bytes((root / "a.png").read_bytes())
    write_image(root / "blurry.png", ndimage.gaussian_filter(small_photos[3], (4, 4, 0)))
    (Path(os.fsdecode(os.path.join(os.fsencode(root), NON_UTF8)))).write_bytes(
        (root / "b.png").read_bytes()
    )
    (root / "broken.png").write_bytes(b"not a png at all")
    summary = scan(root, workers=1)
    assert len(summary.failed) == 1
    return root


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_every_record_is_a_row_with_the_catalogs_values(scanned, tmp_path):
    out = write_parquet(scanned, tmp_path / "t.parquet")
    rows, records = _rows(out), catalog_records(scanned)
    assert [r["path"] for r in rows] == [r["path"] for r in records]
    score_names = sorted({name for r in records for name in r["scores"]})
    assert pq.read_schema(out).names == [*_parquet.PARQUET_COLUMNS, *score_names]
    for row, rec in zip(rows, records, strict=True):
        for key in ("status", "error", "width", "height", "format", "flags", "size",
                    "pixel_hash", "link_to", "mirrored"):
            assert row[key] == rec[key], key
        assert row["exact_duplicate_group"] == rec["groups"].get("exact_duplicate")
        assert row["near_duplicate_group"] == rec["groups"].get("near_duplicate")
        assert row["phash"] == (None if rec["phash"] is None else int(rec["phash"], 16))
        assert row["extra"] == (json.dumps(rec["extra"], separators=(",", ":"))
                                if rec["extra"] else None)
        for name in score_names:
            assert row[name] == rec["scores"].get(name), name


def test_types_are_kept(scanned, tmp_path):
    schema = pq.read_schema(write_parquet(scanned, tmp_path / "t.parquet"))
    assert schema.field("width").type == pa.int32()
    assert schema.field("size").type == pa.int64()
    assert schema.field("phash").type == pa.uint64()
    assert schema.field("flags").type == pa.list_(pa.string())
    assert schema.field("path_bytes").type == pa.binary()
    assert schema.field("blurry").type == pa.float64()
    assert schema.field("mirrored").type == pa.bool_()
    assert json.loads(schema.metadata[b"boda"])["table"] == "catalog"


def test_names_failures_and_flags_come_through(scanned, tmp_path):
    rows = {r["path_bytes"]: r for r in _rows(write_parquet(scanned, tmp_path / "t.parquet"))}
    assert rows[NON_UTF8]["path"] == "n\\xe9e.png"  # the display form; the bytes are exact
    broken = rows[b"broken.png"]
    assert broken["status"] == "error" and broken["error"]
    assert broken["width"] is None and broken["blurry"] is None and broken["flags"] == []
    assert "blurry" in rows[b"blurry.png"]["flags"]
    group = rows[b"a.png"]["exact_duplicate_group"]
    assert group is not None and rows[b"sub/a copy.png"]["exact_duplicate_group"] == group
    assert rows[NON_UTF8]["exact_duplicate_group"] == rows[b"b.png"]["exact_duplicate_group"]


@pytest.mark.parametrize("only", ["blurry", "failed", "exact_duplicate,failed", "redundant"])
def test_only_keeps_the_selected_rows(scanned, tmp_path, only):
    rows = _rows(write_parquet(scanned, tmp_path / "t.parquet", only=only))
    assert [r["path"] for r in rows] == [r["path"] for r in select_records(scanned, only=only)]
    assert rows  # each selection holds something in this folder


def test_row_groups_hold_every_row_once(scanned, tmp_path, monkeypatch):
    monkeypatch.setattr(_parquet, "ROWS_PER_GROUP", 2)
    calls = []
    out = write_parquet(scanned, tmp_path / "t.parquet", progress=lambda n, t: calls.append(n))
    whole = _rows(write_parquet(scanned, tmp_path / "whole.parquet"))
    assert pq.ParquetFile(out).num_row_groups == -(-len(whole) // 2)
    assert _rows(out) == whole
    assert calls == sorted(calls) and calls[-1] == len(whole)


def test_a_damaged_score_is_null(scanned, tmp_path):
    copy = tmp_path / "catalog.db"
    copy.write_bytes((scanned / ".boda" / "catalog.db").read_bytes())
    with sqlite3.connect(copy) as db:
        db.execute("""UPDATE images SET scores = '{"blurry": "high", "entropy": true}'
                      WHERE relpath = CAST('a.png' AS BLOB)""")
    rows = {r["path"]: r for r in _rows(write_parquet(copy, tmp_path / "t.parquet"))}
    assert rows["a.png"]["blurry"] is None and rows["a.png"]["entropy"] is None
    assert rows["b.png"]["blurry"] is not None


def test_an_interrupted_export_leaves_the_old_file(scanned, tmp_path, monkeypatch):
    out = tmp_path / "t.parquet"
    out.write_bytes(b"the user's file")
    real = _parquet._append

    def stop_after_three(columns, *args):
        if len(columns["path"]) == 3:
            raise KeyboardInterrupt
        real(columns, *args)

    monkeypatch.setattr(_parquet, "_append", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        write_parquet(scanned, out)
    assert out.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_is_boda_parquet_tells_its_own_tables(scanned, tmp_path):
    ours = write_parquet(scanned, tmp_path / "ours.parquet")
    theirs = tmp_path / "theirs.parquet"
    pq.write_table(pa.table({"x": np.arange(3)}), theirs)
    (tmp_path / "text.parquet").write_text("x")
    assert is_boda_parquet(ours)
    assert not is_boda_parquet(theirs)
    assert not is_boda_parquet(tmp_path / "text.parquet")
    assert not is_boda_parquet(tmp_path / "missing.parquet")


def _no_pyarrow(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_without_pyarrow_the_error_says_how_to_install(scanned, tmp_path, monkeypatch):
    _no_pyarrow(monkeypatch)
    with pytest.raises(BodaError, match=r"pip install 'boda\[parquet\]'"):
        write_parquet(scanned, tmp_path / "t.parquet")
    result = runner.invoke(app, ["report", str(scanned), "--parquet", str(tmp_path / "t.parquet"),
                                 "--csv", str(tmp_path / "t.csv")])
    assert result.exit_code == 1
    assert "boda[parquet]" in result.output
    assert list(tmp_path.iterdir()) == []  # checked before the CSV was written


# -- the command line -----------------------------------------------------------------------------


def test_cli_writes_the_table_and_replaces_only_its_own(scanned, tmp_path):
    out = tmp_path / "t.parquet"
    result = runner.invoke(app, ["report", str(scanned), "--parquet", str(out)])
    assert result.exit_code == 0, result.output
    assert "Parquet table written" in result.output
    assert _rows(out) == _rows(write_parquet(scanned, tmp_path / "api.parquet"))
    # its own export is made again without --overwrite; another file is refused
    again = runner.invoke(app, ["report", str(scanned), "--parquet", str(out), "--only", "failed"])
    assert again.exit_code == 0, again.output
    assert [r["path"] for r in _rows(out)] == ["broken.png"]
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    refused = runner.invoke(app, ["report", str(scanned), "--parquet", str(other)])
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert pq.read_table(other).column_names == ["x"]
    forced = runner.invoke(app, ["report", str(scanned), "--parquet", str(other), "--overwrite"])
    assert forced.exit_code == 0 and is_boda_parquet(other)


@pytest.mark.parametrize(
    "extra, message",
    [(["--parquet", "-"], "not streamed to stdout"),
     (["--parquet", "x.parquet", "--paths"], "cannot be combined"),
     (["--parquet", "same", "--csv", "same"], "both write to")],
)
def test_cli_refuses_bad_combinations(scanned, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", str(scanned), *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_keep_under_chooses_the_copy_kept(scanned, tmp_path):
    plain = _rows(write_parquet(scanned, tmp_path / "p.parquet", only="redundant"))
    moved = _rows(write_parquet(scanned, tmp_path / "k.parquet", only="redundant",
                                keep_under="sub"))
    assert "sub/a copy.png" in [r["path"] for r in plain]
    assert "a.png" in [r["path"] for r in moved] and "sub/a copy.png" not in [
        r["path"] for r in moved]
    expected = select_records(scanned, only="redundant", keep_under="sub")
    assert [r["path"] for r in moved] == [r["path"] for r in expected]
    out = tmp_path / "cli.parquet"
    result = runner.invoke(app, ["report", str(scanned), "--parquet", str(out), "--only",
                                 "redundant", "--keep-under", "sub"])
    assert result.exit_code == 0, result.output
    assert _rows(out) == moved
