"""``boda scan`` on a real photo library: what is skipped, excludes, renames, coarse
timestamps, shared catalogs, and RAW files read by a pool of workers."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from scan_helpers import catalog_paths, noise_photo
from typer.testing import CliRunner

from boda.catalog import Catalog, Marks, default_catalog_path
from boda.cli import app
from boda.errors import InvalidParameterError
from boda.scan import DEFAULT_EXCLUDES, Excludes, same_mtime, scan
from boda.scan import _pipeline as pipeline
from boda.scan import _pool as pool_module

runner = CliRunner()

#: A file or folder name each default exclude skips (the pattern's ``*`` filled in).
_JUNK = {
    "._*": "._IMG_0001.JPG",
    "__MACOSX/": "__MACOSX",
    "@eaDir/": "@eaDir",
    "#recycle/": "#recycle",
    "#snapshot/": "#snapshot",
    "@Recycle/": "@Recycle",
    "@Recently-Snapshot/": "@Recently-Snapshot",
    "$RECYCLE.BIN/": "$Recycle.Bin",  # as Windows names it on a system drive
    "RECYCLER/": "RECYCLER",
    "System Volume Information/": "System Volume Information",
    "lost+found/": "lost+found",
    "*.photoslibrary/": "Photos Library.photoslibrary",
    "*.photolibrary/": "iPhoto Library.photolibrary",
    "*.migratedphotolibrary/": "iPhoto Library.migratedphotolibrary",
    "*.aplibrary/": "Aperture Library.aplibrary",
    "*.lrdata/": "Catalog Smart Previews.lrdata",
    "*.lrlibrary/": "Lightroom Library.lrlibrary",
    "*.cocatalog/": "Photos.cocatalog",
    "CaptureOne/": "CaptureOne",
}


@pytest.fixture
def library(tmp_path) -> Path:
    """Two photos, plus one in (or named as) the junk of every default exclude."""
    root = tmp_path / "lib"
    noise_photo(root / "Photos" / "IMG_0001.png", 1)
    noise_photo(root / "Photos" / "IMG_0002.png", 2)
    for n, name in enumerate(_JUNK.values()):
        if name.startswith("._"):  # an AppleDouble file: not an image at all
            (root / "Photos" / name).write_bytes(b"\x00\x05\x16\x07" + bytes(4092))
        else:
            noise_photo(root / "Photos" / name / "sub" / f"IMG_{n:04}.png", 10 + n)
    return root


def test_every_default_exclude_is_skipped_counted_and_can_be_scanned(library):
    assert set(_JUNK) == {pattern for pattern, _ in DEFAULT_EXCLUDES}
    summary = scan(library, workers=1)
    assert catalog_paths(library) == ["Photos/IMG_0001.png", "Photos/IMG_0002.png"]
    assert summary.default_skipped == dict.fromkeys(_JUNK, 1)
    assert (summary.failed, summary.skipped, summary.total) == ([], {}, 2)
    everything = scan(library, workers=1, default_excludes=False)
    assert everything.total == 2 + len(_JUNK) and everything.default_skipped == {}
    assert [p for p, _ in everything.failed] == ["Photos/._IMG_0001.JPG"]
    # remembered: a plain rescan scans them too, and says so; reset goes back
    again = scan(library, workers=1)
    assert (again.total, again.default_excludes, again.analysed) == (2 + len(_JUNK), False, 1)
    back = scan(library, workers=1, reset_excludes=True)
    assert (back.total, back.excluded, back.removed) == (2, len(_JUNK), 0)
    assert catalog_paths(library) == ["Photos/IMG_0001.png", "Photos/IMG_0002.png"]


@pytest.mark.parametrize(
    ("pattern", "path", "folder", "skipped"),
    [
        ("Export/", "Export", True, True),
        ("Export/", "a/b/Export", True, True),
        ("Export/", "Export", False, False),  # a folder pattern: not a file of that name
        ("Export", "a/Export", False, True),
        ("/Export/", "a/Export", True, False),  # anchored at the top
        ("Photos/Export/", "Photos/Export", True, True),
        ("Photos/Export/", "x/Photos/Export", True, False),  # a middle '/' anchors too
        ("*.tmp.jpg", "a/b/c.tmp.jpg", False, True),
        ("*.tmp.jpg", "a/b/c.tmp.JPG", False, False),  # case-sensitive, as git
        ("a/*.jpg", "a/b/c.jpg", False, False),  # '*' stops at '/'
        ("a/**/c.jpg", "a/b/d/c.jpg", False, True),
        ("a/**/c.jpg", "a/c.jpg", False, True),
        ("**/raw/", "x/y/raw", True, True),
        ("a/**", "a/b", True, True),
        ("IMG_000?.png", "IMG_0001.png", False, True),
        ("IMG_000?.png", "IMG_00010.png", False, False),
        ("IMG_[0-4].png", "IMG_3.png", False, True),
        ("IMG_[!0-4].png", "IMG_7.png", False, True),
        ("IMG_[!0-4].png", "IMG_3.png", False, False),
        ("\\#tmp.png", "#tmp.png", False, True),
        ("[.png", "[.png", False, True),  # an unclosed '[' is itself
        ("a[[]b.png", "a[b.png", False, True),  # a bracket in a set of its own
    ],
)
def test_exclude_patterns_follow_gitignore(pattern, path, folder, skipped):
    excludes = Excludes([pattern], default_excludes=False)
    assert (excludes.match(path, folder=folder) == pattern) is skipped


def test_the_last_matching_pattern_decides_and_defaults_ignore_case():
    ex = Excludes(["Export/", "!Export/"])
    assert ex.match("Export", folder=True) is None
    ex = Excludes(["!#recycle/"])  # after the defaults: scans the recycle bin again
    assert ex.match("#recycle", folder=True) is None
    assert ex.match("$recycle.bin", folder=True) == "$RECYCLE.BIN/"
    assert Excludes(["Export/"]).skips("Export/keep/a.jpg")  # through its folder
    for bad in ("", "!", "/", "**", "!/"):
        with pytest.raises(InvalidParameterError, match="not a pattern"):
            Excludes([bad])


def test_exclude_bodaignore_remembered_and_records_forgotten(library, tmp_path):
    noise_photo(library / "Export" / "2024" / "a.png", 50)
    noise_photo(library / "Photos" / "IMG_0003.tmp.png", 51)
    first = scan(library, workers=1)
    assert first.total == 4
    (library / ".bodaignore").write_text(
        "# exports are copies\nExport/\n\n!#recycle/\n", encoding="utf-8"
    )
    summary = scan(library, workers=1, exclude=["*.tmp.png"])
    assert (summary.excluded, summary.removed, summary.total) == (2, 0, 3)
    assert summary.skipped == {"Export/": 1, "*.tmp.png": 1}
    assert "#recycle/" not in summary.default_skipped  # re-included by '!'
    assert catalog_paths(library) == [
        "Photos/#recycle/sub/IMG_0003.png", "Photos/IMG_0001.png", "Photos/IMG_0002.png"
    ]
    assert summary.ignore_file == ["Export/", "!#recycle/"]
    again = scan(library, workers=1)  # remembered: the tmp file stays out
    assert (again.remembered_excludes, again.excludes, again.total) == (
        ["*.tmp.png"], ["*.tmp.png"], 3
    )
    out = runner.invoke(app, ["scan", str(library), "--no-report", "-q", "--reset-excludes",
                              "--exclude", "/Photos/IMG_0001.png", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["excluded"], data["total"], data["analysed"]) == (1, 3, 1)  # tmp is back
    assert data["excludes"] == ["/Photos/IMG_0001.png"]
    out = runner.invoke(app, ["scan", str(library), "--no-report", "-q"])
    assert "excludes remembered from an earlier scan: --exclude /Photos/IMG_0001.png" in (
        out.stdout
    )
    assert "skipped by default: " in out.stdout and "._* ×1" in out.stdout
    out = runner.invoke(app, ["scan", str(library), "--no-report", "--exclude", "Photos/"])
    assert out.exit_code == 1 and "not excluded" in out.output  # nothing left: refused
    assert len(catalog_paths(library)) == 3
    out = runner.invoke(app, ["scan", str(library), "--exclude", "[", "--exclude", "!"])
    assert out.exit_code == 2 and "not a pattern" in out.output
    # a range running backwards: a usage error naming the pattern (was re.error's traceback)
    out = runner.invoke(app, ["scan", str(library), "--no-report", "--exclude", "IMG_[9-0].png"])
    assert out.exit_code == 2, out.output
    assert "--exclude: 'IMG_[9-0].png' is not a glob boda can read" in " ".join(out.output.split())
    (library / ".bodaignore").write_text("[z-a]/\n", encoding="utf-8")
    out = runner.invoke(app, ["scan", str(library), "--no-report"])
    assert out.exit_code == 2 and ".bodaignore: '[z-a]/' is not a glob" in out.output
    assert len(catalog_paths(library)) == 3  # nothing forgotten


def test_a_moved_file_keeps_its_record_and_marks_without_decoding(folder, monkeypatch):
    scan(folder, workers=1)
    with Catalog(folder, readonly=True) as catalog:
        before = {r.path: r for r in catalog.records(with_thumbnails=True)}
    with Marks(default_catalog_path(folder)) as marks:
        marks.set_decision([b"b.png"], "pick")
        marks.set_rating([b"copies/a copy.png"], 4)
    (folder / "2024-Iceland").mkdir()
    os.rename(folder / "b.png", folder / "2024-Iceland" / "b.png")
    os.rename(folder / "copies", folder / "2024-Iceland" / "copies")

    def no_decoding(*args):
        raise AssertionError("a moved file was decoded")

    monkeypatch.setattr(pipeline, "analyze_file", no_decoding)
    summary = scan(folder, workers=1)
    assert (summary.moved, summary.analysed, summary.removed, summary.unchanged) == (2, 0, 0, 3)
    with Catalog(folder, readonly=True) as catalog:
        after = {r.path: r for r in catalog.records(with_thumbnails=True)}
    for old, new in (("b.png", "2024-Iceland/b.png"),
                     ("copies/a copy.png", "2024-Iceland/copies/a copy.png")):
        assert new in after and old not in after
        assert (after[new].id, after[new].scores, after[new].pixel_hash) == (
            before[old].id, before[old].scores, before[old].pixel_hash
        )
        assert after[new].thumbnail == before[old].thumbnail
    assert "exact_duplicate" in after["2024-Iceland/copies/a copy.png"].flags
    with Marks(default_catalog_path(folder), readonly=True) as marks:
        assert marks.get(b"2024-Iceland/b.png").decision == "pick"
        assert marks.get(b"2024-Iceland/copies/a copy.png").rating == 4
        assert marks.get(b"b.png") is None
    out = runner.invoke(app, ["scan", str(folder), "--no-report", "-q"])
    assert "0 moved" not in out.stdout  # said only when some were


def _rescan_analysing_only(folder, monkeypatch, names: list[str]) -> dict:
    """Scan ``folder`` again, check that it decoded exactly the files ``names`` (by file
    name) and moved none, and return the catalog's records by path."""
    decoded = []
    real = pipeline.analyze_file
    monkeypatch.setattr(pipeline, "analyze_file", lambda f, *a, **k: (
        decoded.append(os.path.basename(f.path)), real(f, *a, **k))[1])
    summary = scan(folder, workers=1)
    assert summary.moved == 0 and sorted(decoded) == names
    with Catalog(folder, readonly=True) as catalog:
        return {r.path: r for r in catalog.records()}


def test_a_file_renamed_in_its_folder_keeps_its_record_and_marks(folder, monkeypatch):
    """IMG_0031.jpg renamed Beach.jpg was a new file: analysed again, its pick lost."""
    scan(folder, workers=1)
    with Catalog(folder, readonly=True) as catalog:
        before = {r.path: r for r in catalog.records()}
    with Marks(default_catalog_path(folder)) as marks:
        marks.set_decision([b"b.png"], "pick")
    os.rename(folder / "b.png", folder / "Beach.png")
    # two files of one size and time renamed in one folder: which is which is not guessed
    shutil.copy2(folder / "c.png", folder / "e.png")
    renamed = scan(folder, workers=1)
    assert (renamed.moved, renamed.analysed, renamed.removed) == (1, 1, 0)  # e.png is new
    os.rename(folder / "c.png", folder / "x.png")
    os.rename(folder / "e.png", folder / "y.png")
    after = _rescan_analysing_only(folder, monkeypatch, ["x.png", "y.png"])
    assert "b.png" not in after
    assert (after["Beach.png"].id, after["Beach.png"].scores) == (
        before["b.png"].id, before["b.png"].scores)
    with Marks(default_catalog_path(folder), readonly=True) as marks:
        assert marks.get(b"Beach.png").decision == "pick"


def test_a_different_file_under_the_same_name_is_analysed(folder):
    scan(folder, workers=1)
    a, b = folder / "a.png", folder / "b.png"
    stat_a = a.stat()
    # b's content under a's name and size (PNGs of one size: padded), a new time
    content = b.read_bytes()
    a.unlink()
    (folder / "new").mkdir()
    moved = folder / "new" / "a.png"
    moved.write_bytes(content[: stat_a.st_size].ljust(stat_a.st_size, b"\0"))
    os.utime(moved, ns=(stat_a.st_mtime_ns, stat_a.st_mtime_ns + 1_000))
    summary = scan(folder, workers=1)
    assert (summary.moved, summary.removed) == (0, 1)
    # two gone and two new files of one key in folders of one name: not guessed
    c, d = folder / "c.png", folder / "d.png"
    shutil.copy2(c, d)
    scan(folder, workers=1)
    for name, src in (("x", c), ("y", d)):
        (folder / name / "sub").mkdir(parents=True)
        os.rename(src, folder / name / "sub" / "c.png" if name == "x" else
                  folder / name / "sub" / "d.png")
    summary = scan(folder, workers=1)
    assert summary.moved == 2  # told apart by their names (c.png, d.png)
    e = folder / "e1"
    e.mkdir()
    shutil.copy2(folder / "x" / "sub" / "c.png", e / "c.png")
    scan(folder, workers=1)
    for src, dst in ((e / "c.png", folder / "z1" / "c.png"),
                     (folder / "x" / "sub" / "c.png", folder / "z2" / "c.png")):
        dst.parent.mkdir()
        os.rename(src, dst)
    summary = scan(folder, workers=1)
    assert (summary.moved, summary.analysed) == (0, 2)  # same name, size, time: ambiguous


@pytest.mark.parametrize("step", [10_000_000, 1_000_000_000, 2_000_000_000])
def test_coarse_timestamps_of_another_mount_are_the_same_time(folder, monkeypatch, step):
    scan(folder, workers=1)
    for path in folder.rglob("*.png"):
        mtime = path.stat().st_mtime_ns
        assert mtime % 10_000_000, "the test needs nanosecond times to start from"
        os.utime(path, ns=(mtime, mtime // step * step))  # exFAT, SMB, FAT: rounded down
    monkeypatch.setattr(pipeline, "analyze_file", lambda *a: pytest.fail("re-analysed"))
    summary = scan(folder, workers=1)
    assert (summary.unchanged, summary.analysed) == (5, 0)


def test_same_mtime():
    ns = 1_700_000_000_123_456_789
    assert same_mtime(ns, ns)
    assert same_mtime(ns, 1_700_000_000_120_000_000)  # 10 ms, rounded down
    assert same_mtime(ns, 1_700_000_000_130_000_000)  # ... or up
    assert not same_mtime(ns, 1_700_000_000_140_000_000)  # two steps away: changed
    assert same_mtime(1_700_000_000_120_000_000, ns)  # either side may be the coarse one
    assert same_mtime(ns, 1_700_000_002_000_000_000) and same_mtime(ns, 1_700_000_000_000_000_000)
    assert not same_mtime(ns, 1_699_999_998_000_000_000)
    assert not same_mtime(1_700_000_000_000_000_000, 1_700_000_002_000_000_000)  # both FAT
    assert not same_mtime(ns, ns + 1)  # both nanoseconds
    assert not same_mtime(-1, 0)  # the catalog's mark of a row to analyse again


def test_a_catalog_made_for_another_folder_is_refused(folder, tmp_path):
    catalog = tmp_path / "shared.db"
    scan(folder, catalog_path=catalog, workers=1)
    with pytest.raises(InvalidParameterError, match="made for the folder") as caught:
        scan(folder / "copies", catalog_path=catalog, workers=1)
    assert str(folder.resolve()) in str(caught.value)
    assert "--under copies/" in str(caught.value)
    with Catalog(catalog, readonly=True) as opened:
        assert opened.count_all() == 5  # nothing forgotten
    out = runner.invoke(
        app, ["scan", str(folder / "copies"), "--catalog", str(catalog), "--no-report"]
    )
    assert out.exit_code == 2 and "made for the folder" in out.output
    # the same folder mounted elsewhere (its files there): accepted, nothing re-analysed
    mounted = tmp_path / "mnt" / "photos"
    shutil.copytree(folder, mounted)
    summary = scan(mounted, catalog_path=catalog, workers=1)
    assert (summary.unchanged, summary.analysed, summary.removed) == (5, 0, 0)
    with Catalog(catalog, readonly=True) as opened:
        assert opened.get_setting("root") == str(mounted.resolve())


def test_a_catalog_inside_its_folder_travels_with_it(folder, tmp_path):
    scan(folder, workers=1)
    elsewhere = tmp_path / "Volumes" / "disk"
    shutil.copytree(folder, elsewhere)
    (elsewhere / "b.png").unlink()
    for name in "acd":  # most files gone: still this folder's own catalog
        (elsewhere / f"{name}.png").unlink()
    summary = scan(elsewhere, workers=1, catalog_path=default_catalog_path(elsewhere))
    assert (summary.removed, summary.unchanged) == (4, 1)


def test_reporting_a_sub_folder_points_to_under(folder, monkeypatch):
    scan(folder, workers=1)
    monkeypatch.chdir(folder.parent)
    out = runner.invoke(app, ["report", "photos/copies", "--only", "blurry"])
    assert out.exit_code == 1
    assert "boda report photos --under copies/" in " ".join(out.output.split())


def test_icloud_placeholders_are_named(folder):
    (folder / ".IMG_0001.HEIC.icloud").write_bytes(b"bplist00")
    (folder / ".IMG_0002.MOV.icloud").write_bytes(b"bplist00")  # a video: not a photo
    summary = scan(folder, workers=1)
    assert summary.icloud_placeholders == ["IMG_0001.HEIC"]
    out = runner.invoke(app, ["scan", str(folder), "--no-report", "-q"])
    assert "1 file is an iCloud placeholder, not downloaded: IMG_0001.HEIC" in " ".join(
        out.stdout.split()
    )


def test_what_the_walk_passed_over_is_in_the_report_and_serve(folder, tmp_path):
    """The console's not-scanned lines outlive the scan: the catalog keeps them for
    ``boda report`` and ``boda serve``."""
    import html

    from boda.report._html import not_scanned_lines

    (folder / ".IMG_0001.HEIC.icloud").write_bytes(b"bplist00")
    (folder / "@eaDir").mkdir()
    (folder / "@eaDir" / "SYNOPHOTO_THUMB_S.jpg").write_bytes(b"junk")
    (folder / "draft.png").write_bytes(b"junk")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, folder / "linked")
    summary = scan(folder, workers=1, exclude=["draft.png"])
    assert summary.icloud_placeholders == ["IMG_0001.HEIC"]
    with Catalog(default_catalog_path(folder), readonly=True) as catalog:
        lines = not_scanned_lines(catalog)
    assert lines[0].startswith("1 file is an iCloud placeholder, not downloaded: IMG_0001.HEIC")
    assert lines[1].startswith("1 folder link not followed (linked -> ")
    assert lines[2].startswith("skipped by default: @eaDir/ ×1")
    assert lines[3] == "skipped by the excludes: draft.png ×1"
    assert len(lines) == 4
    out = runner.invoke(app, ["report", str(folder), "-o", str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    page = html.unescape((tmp_path / "r.html").read_text("utf-8"))
    assert all(line in page for line in lines)
    # a rescan without them forgets them
    for name in (".IMG_0001.HEIC.icloud", "draft.png", "linked"):
        os.unlink(folder / name)
    shutil.rmtree(folder / "@eaDir")
    scan(folder, workers=1)
    with Catalog(default_catalog_path(folder), readonly=True) as catalog:
        assert not_scanned_lines(catalog) == []


def test_names_that_are_not_utf8_are_shown_in_what_was_not_scanned(folder, tmp_path):
    """A placeholder or an exclude pattern in bytes that are not UTF-8 is shown as
    ``\\xNN``, as record paths are: the report, serve and ``--json`` can write it."""
    import json

    from fastapi.testclient import TestClient

    from boda.report._html import not_scanned_lines
    from boda.web import create_app

    os.mkdir(os.fsencode(folder) + b"/No\xebl")
    open(os.fsencode(folder) + b"/No\xebl/.IMG\xff1.HEIC.icloud", "wb").close()
    shutil.copy(folder / "b.png", os.fsencode(folder) + b"/skip\xffme.png")
    pattern = os.fsdecode(b"skip\xff*.png")
    out = runner.invoke(app, ["scan", str(folder), "--exclude", pattern, "-q", "--json",
                              "--report", str(tmp_path / "r.html")])  # fmt: skip
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["icloud_placeholders"] == ["No\\xebl/IMG\\xff1.HEIC"]
    assert summary["excludes"] == ["skip\\xff*.png"]
    assert summary["skipped"] == {"skip\\xff*.png": 1}
    with Catalog(default_catalog_path(folder), readonly=True) as catalog:
        lines = not_scanned_lines(catalog)
    assert lines[0].startswith("1 file is an iCloud placeholder, not downloaded: No\\xebl/IMG")
    assert "skipped by the excludes: skip\\xff*.png ×1" in lines
    assert "IMG\\xff1.HEIC" in (tmp_path / "r.html").read_text("utf-8")
    client = TestClient(create_app(folder), base_url="http://127.0.0.1:8765")
    assert client.get("/api/failures").status_code == 200


def test_marks_move(tmp_path):
    catalog = tmp_path / "c.db"
    with Marks(catalog) as marks:
        marks.set_decision([b"a"], "pick")
        marks.set_rating([b"b"], 2)
        marks.set_rating([b"gone-before"], 5)
        assert marks.move([(b"a", b"b"), (b"b", b"a"), (b"none", b"x")]) == 2  # a swap
        assert marks.move([(b"a", b"gone-before")]) == 1  # replaces a stale mark
        assert (marks.get(b"b").decision, marks.get(b"gone-before").rating) == ("pick", 2)
        assert marks.get(b"a") is None and marks.get(b"x") is None


def test_raw_files_in_a_pool_print_no_fork_warning(tmp_path, capfd, monkeypatch):
    pytest.importorskip("rawpy")
    from test_io_raw import make_dng  # the DNG writer of the RAW tests

    rng = np.random.default_rng(3)
    (tmp_path / "raw").mkdir()
    for n in range(4):  # sensor data only: LibRaw demosaics (OpenMP)
        make_dng(tmp_path / "raw" / f"IMG_{n}.DNG", rng.random((64, 96, 3)))
    root = tmp_path / "raw"
    expected = {r.path: r.scores for r in _records(root, workers=1)}
    capfd.readouterr()
    for loaded in (False, True):  # fork; a forkserver when this process has OpenMP
        monkeypatch.setattr(pool_module, "_openmp_loaded", lambda loaded=loaded: loaded)
        shutil.rmtree(root / ".boda")
        assert {r.path: r.scores for r in _records(root, workers=2)} == expected
        err = capfd.readouterr().err
        assert "rawpy is being used" not in err and "Warning" not in err, err


def test_a_pool_reading_raw_files_says_nothing_on_stderr(tmp_path):
    """In a process of its own, as the CLI runs (pytest records the warnings of the
    forked workers instead of printing them)."""
    pytest.importorskip("rawpy")
    import subprocess
    import sys

    from test_io_raw import make_dng

    rng = np.random.default_rng(4)
    for n in range(2):
        make_dng(tmp_path / f"IMG_{n}.DNG", rng.random((64, 96, 3)))
    code = (
        "import sys\nfrom boda.scan import scan\nif __name__ == '__main__':\n"
        "    s = scan(sys.argv[1], workers=2)\n    print(s.analysed, len(s.failed))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.split()) == (0, ["2", "0"]), done.stderr
    assert "rawpy is being used" not in done.stderr and "Warning" not in done.stderr


def _records(root: Path, workers: int) -> list:
    summary = scan(root, workers=workers)
    assert summary.failed == [] and summary.analysed == 4
    with Catalog(root, readonly=True) as catalog:
        return list(catalog.records())


def test_a_file_moved_and_renamed_keeps_its_record_and_marks(folder, monkeypatch):
    """exiftool-style filing (IMG_0031.jpg -> 2026/11/20261123_140307.jpg) was a new file."""
    scan(folder, workers=1)
    with Catalog(folder, readonly=True) as catalog:
        before = {r.path: r for r in catalog.records()}
    with Marks(default_catalog_path(folder)) as marks:
        marks.set_rating([b"b.png"], 4)
    (folder / "2026" / "11").mkdir(parents=True)
    os.rename(folder / "b.png", folder / "2026" / "11" / "20261123_140307.png")
    # two files of one size and time moved and renamed together: not guessed
    shutil.copy2(folder / "c.png", folder / "e.png")
    scan(folder, workers=1)
    os.rename(folder / "c.png", folder / "2026" / "x.png")
    os.rename(folder / "e.png", folder / "2026" / "11" / "y.png")
    after = _rescan_analysing_only(folder, monkeypatch, ["x.png", "y.png"])
    new = "2026/11/20261123_140307.png"
    assert "b.png" not in after
    assert (after[new].id, after[new].scores) == (before["b.png"].id, before["b.png"].scores)
    with Marks(default_catalog_path(folder), readonly=True) as marks:
        assert marks.get(new.encode()).rating == 4
