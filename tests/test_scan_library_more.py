"""More of ``boda scan`` on a real library: renames on coarse-time disks, a
``.bodaignore`` with a byte-order mark, the folder walk of explain / patches /
similar, and mark / serve / report on a folder of a scanned folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from boda.catalog import Catalog, Marks, default_catalog_path
from boda.cli import app
from boda.scan import _pipeline as pipeline
from boda.scan import scan
from boda.scan._exclude import read_ignore_file
from boda.scan._walk import walk_as_scanned

runner = CliRunner()


def _records(root: Path) -> dict:
    with Catalog(root, readonly=True) as catalog:
        return {r.path: r for r in catalog.records()}


def _round_mtimes(root: Path, step: int = 1_000_000_000) -> None:
    """Every image's time rounded down to ``step``, as a copy to exFAT/SMB/FAT leaves it."""
    for path in root.rglob("*.png"):
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns // step * step))


@pytest.mark.parametrize("rename_after_rounding_scan", [True, False])
def test_a_renamed_folder_on_a_coarse_time_disk_is_a_move(
    folder, monkeypatch, rename_after_rounding_scan
):
    scan(folder, workers=1)
    before = _records(folder)
    with Marks(default_catalog_path(folder)) as marks:
        marks.set_decision([b"copies/a copy.png"], "pick")
        marks.set_rating([b"copies/a copy.png"], 5)
    _round_mtimes(folder)
    if rename_after_rounding_scan:
        # the catalog keeps the fine times: the coarse ones are "unchanged"
        assert scan(folder, workers=1).unchanged == 5
    os.rename(folder / "copies", folder / "copies-Iceland")

    def no_decoding(*args):
        raise AssertionError("a moved file was decoded")

    monkeypatch.setattr(pipeline, "analyze_file", no_decoding)
    summary = scan(folder, workers=1)
    assert (summary.moved, summary.analysed, summary.removed) == (1, 0, 0)
    after = _records(folder)
    new, old = "copies-Iceland/a copy.png", "copies/a copy.png"
    assert old not in after
    assert (after[new].id, after[new].scores) == (before[old].id, before[old].scores)
    with Marks(default_catalog_path(folder), readonly=True) as marks:
        assert marks.get(new.encode())[:2] == ("pick", 5)
        assert marks.get(old.encode()) is None


def test_coarse_time_moves_stay_one_to_one(folder):
    """Two gone files of one name and size whose times both agree with one new
    file's coarse time: not guessed (analysed), as with equal fine times."""
    c = folder / "c.png"
    (folder / "x").mkdir()
    (folder / "y").mkdir()
    os.rename(c, folder / "x" / "c.png")
    (folder / "y" / "c.png").write_bytes((folder / "x" / "c.png").read_bytes())
    base = 1_700_000_000_000_000_000
    os.utime(folder / "x" / "c.png", ns=(base, base + 123_456_789))
    os.utime(folder / "y" / "c.png", ns=(base, base + 456_789_123))
    scan(folder, workers=1)
    # one moves to z/ with a coarse time that agrees with both gone times; the other is deleted
    (folder / "z").mkdir()
    os.rename(folder / "x" / "c.png", folder / "z" / "c.png")
    os.utime(folder / "z" / "c.png", ns=(base, base))  # 1 s: agrees with both gone times
    (folder / "y" / "c.png").unlink()
    summary = scan(folder, workers=1)
    assert (summary.moved, summary.analysed, summary.removed) == (0, 1, 2)


def test_a_bodaignore_with_a_byte_order_mark_keeps_its_first_pattern(folder):
    (folder / ".bodaignore").write_bytes(b"\xef\xbb\xbfcopies/\r\n*.tmp.png\n")
    assert read_ignore_file(folder) == ["copies/", "*.tmp.png"]
    summary = scan(folder, workers=1)
    assert summary.total == 4 and "copies/a copy.png" not in _records(folder)


@pytest.fixture
def junk_folder(folder) -> Path:
    """``folder`` plus what a scan skips by default and a .bodaignore pattern."""
    (folder / "@eaDir").mkdir()
    (folder / "@eaDir" / "x.jpg").write_bytes((folder / "a.png").read_bytes())
    (folder / "._a.jpg").write_bytes(b"\0\5\26\7 AppleDouble")
    (folder / ".bodaignore").write_text("copies/\n")
    return folder


_KEPT = ["a.png", "b.png", "c.png", "d.png"]


def test_the_walk_as_scanned_skips_what_a_scan_skips(junk_folder):
    assert sorted(os.fsdecode(f.relpath) for f in walk_as_scanned(junk_folder)) == _KEPT
    scan(junk_folder, workers=1)
    assert sorted(_records(junk_folder)) == _KEPT


def test_explain_and_feature_walks_skip_what_a_scan_skips(junk_folder):
    pytest.importorskip("torch")
    from boda.cli._explain_batch import collect
    from boda.explain._features import _iter_images

    items, _ = collect([junk_folder])
    assert sorted(item.name for item in items) == _KEPT
    assert all(item.error is None for item in items)
    names = [Path(name).relative_to(junk_folder).as_posix()
             for name, _, error in _iter_images(junk_folder) if error is None]
    assert names == _KEPT


@pytest.mark.parametrize("command", ["mark", "serve", "report"])
def test_a_folder_of_a_scanned_folder_points_to_its_catalog(folder, monkeypatch, command):
    scan(folder, workers=1)
    monkeypatch.chdir(folder.parent)
    args = {
        "mark": ["mark", "photos/copies", "photos/copies/a copy.png", "--pick"],
        "serve": ["serve", "photos/copies"],
        "report": ["report", "photos/copies"],
    }[command]
    if command == "serve":
        pytest.importorskip("uvicorn")
    out = runner.invoke(app, args)
    assert out.exit_code == 1, out.output
    text = " ".join(out.output.split())
    assert "scanned folder 'photos'" in text and "run 'boda scan'" not in text
    assert {"mark": "'boda mark photos PATH...'", "serve": "'boda serve photos'",
            "report": "'boda report photos --under copies/'"}[command] in text
    assert not default_catalog_path(folder / "copies").exists()
    # and the hint works: the same path marked from the scanned folder
    if command == "mark":
        out = runner.invoke(app, ["mark", "photos", "photos/copies/a copy.png", "--pick"])
        assert out.exit_code == 0, out.output
        with Marks(default_catalog_path(folder), readonly=True) as marks:
            assert marks.get(b"copies/a copy.png").decision == "pick"
