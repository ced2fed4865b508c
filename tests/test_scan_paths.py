"""Folder and file names, output paths and option values a user gets wrong, end to end.

Each case here was once a traceback, a misleading message or lost data.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from boda.catalog import Catalog, default_catalog_path, marks_path
from boda.cli import app
from boda.errors import CatalogError, ImageReadError, InvalidImageError, InvalidParameterError
from boda.io import read_image, write_image
from boda.quality import analyze
from boda.report import catalog_records, write_html_report
from boda.scan import default_thresholds, derive_flags, resolve_thresholds, scan

runner = CliRunner()


def _statuses(root: Path, catalog: Path | None = None) -> list[str]:
    return [r["status"] for r in catalog_records(catalog or default_catalog_path(root))]


@pytest.mark.parametrize("name", ["pics#1", "what?", "100%25", "a b&c=d"])
def test_folder_names_that_are_uri_syntax_scan_and_report(two_photos, tmp_path, name,
                                                          monkeypatch):
    # The read-only catalog is opened through a file: URI; '#' and '?' used to end
    # the file name there (SQLite then created a stray database in the working
    # folder) and '%' was decoded.
    root = two_photos.rename(tmp_path / name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = runner.invoke(app, ["scan", str(root), "-q"])
    assert result.exit_code == 0, result.output
    assert (root / ".boda" / "report.html").is_file()
    result = runner.invoke(app, ["report", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.output)] == ["ok", "ok"]
    assert list(cwd.iterdir()) == []


def test_bad_max_side_is_refused_before_the_catalog_changes(two_photos):
    scan(two_photos, workers=1)
    for bad in (0, -5, 2.5):
        with pytest.raises(InvalidParameterError, match="max_side"):
            scan(two_photos, workers=1, max_side=bad)
    assert _statuses(two_photos) == ["ok", "ok"]
    result = runner.invoke(app, ["scan", str(two_photos), "--max-side", "0", "-q"])
    assert result.exit_code == 2 and "--max-side" in result.output  # the option, not max_side
    assert _statuses(two_photos) == ["ok", "ok"]


def test_exclude_that_is_not_a_list_of_patterns_is_refused(two_photos):
    # [1] and 5 were an AttributeError and a TypeError from deep in the pattern code.
    for bad in ([1], 5, ["Export/", None]):
        with pytest.raises(InvalidParameterError, match="exclude takes a list of patterns"):
            scan(two_photos, workers=1, exclude=bad)
    assert not default_catalog_path(two_photos).exists()
    scan(two_photos, workers=1, exclude=None)  # None: no patterns added (was a TypeError)
    assert _statuses(two_photos) == ["ok", "ok"]


def test_a_file_dated_past_2262_is_scanned(two_photos):
    # Its modification time in nanoseconds does not fit SQLite's 64-bit integers: the
    # scan stopped with a traceback, and so did every rescan.
    photo = sorted(two_photos.glob("*.png"))[0]
    far = (2**63 // 10**9 + 10**9) * 10**9  # the year 2293
    try:
        os.utime(photo, ns=(far, far))
    except (OSError, OverflowError):
        pytest.skip("this file system cannot hold such a time")
    if os.stat(photo).st_mtime_ns < 2**63:
        pytest.skip("this file system cannot hold such a time")
    summary = scan(two_photos, workers=1)
    assert (summary.analysed, summary.failed) == (2, [])
    again = scan(two_photos, workers=1)
    assert (again.analysed, again.unchanged) == (0, 2)
    assert _statuses(two_photos) == ["ok", "ok"]


def test_bad_workers_are_refused_before_the_catalog_changes(two_photos):
    # A float or a bool failed only where the pool started, after the walk.
    scan(two_photos, workers=1)
    os.utime(two_photos / "kodim01.png")  # to analyse again: the pool would start
    for bad in (0, 2.0, 1.5, True, "2"):
        with pytest.raises(InvalidParameterError, match="workers"):
            scan(two_photos, workers=bad)
    with Catalog(default_catalog_path(two_photos), readonly=True) as catalog:
        assert not catalog.flags_stale()
    assert scan(two_photos, workers=np.int64(2)).analysed == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"blurry": float("nan")}, "not a finite number"),
        ({"dark": float("inf")}, "not a finite number"),
        ({"near_duplicate": 0.5}, "whole number"),
        ({"near_duplicate": 70}, "from 0 to 24"),
        ({"near_duplicate": 25}, "from 0 to 24 .*unrelated photos"),
        ({"near_duplicate": -1}, "from 0 to 24"),
        ({"odd_aspect_ratio": 0.5}, "ratio of at least 1"),
    ],
)
def test_threshold_values_are_checked(override, message):
    with pytest.raises(InvalidParameterError, match=message):
        resolve_thresholds(override)


def test_thresholds_may_be_the_quality_thresholds_object(two_photos):
    # boda.quality.analyze takes a QualityThresholds; scan() used to fail on one
    # with a raw AttributeError.
    from boda.quality import QualityThresholds
    from boda.scan import scan

    resolved = resolve_thresholds(QualityThresholds(blurry=0.9, dark=0.5))
    assert (resolved["blurry"], resolved["dark"], resolved["light"]) == (0.9, 0.5, 0.85)
    summary = scan(two_photos, workers=1, thresholds=QualityThresholds(blurry=5.0))
    assert summary.thresholds["blurry"] == 5.0 and summary.flag_counts["blurry"] == 2
    with pytest.raises(InvalidParameterError, match="mapping of flag names"):
        resolve_thresholds([("blurry", 0.3)])


def test_a_bad_threshold_fails_before_anything_is_scanned(two_photos):
    result = runner.invoke(app, ["scan", str(two_photos), "-t", "near_duplicate=70", "-q"])
    assert result.exit_code == 2 and "near_duplicate" in result.output
    assert not (two_photos / ".boda").exists()
    assert resolve_thresholds({"near_duplicate": 24})["near_duplicate"] == 24


def test_scan_help_names_every_threshold_with_its_default():
    help_text = " ".join(runner.invoke(app, ["scan", "--help"]).output.split())
    for name, value in default_thresholds().items():
        assert f"{name}={value:g}" in help_text.replace("│ ", "").replace(" │", "")


def test_report_of_a_folder_whose_name_is_not_utf8(two_photos, tmp_path):
    root = two_photos.rename(tmp_path / os.fsdecode(b"trip\xff"))
    result = runner.invoke(app, ["scan", str(root), "-q"])
    assert result.exit_code == 0, result.output
    page = (root / ".boda" / "report.html").read_text(encoding="utf-8")
    assert "boda report — trip\ufffd" in page


def test_report_title_names_the_scanned_folder_even_with_another_catalog(two_photos, tmp_path):
    catalog = tmp_path / "elsewhere" / "scans" / "catalog.db"
    result = runner.invoke(app, ["scan", str(two_photos), "--catalog", str(catalog), "-q"])
    assert result.exit_code == 0, result.output
    assert "boda report — photos<" in (catalog.parent / "report.html").read_text("utf-8")


def test_bracketed_file_names_are_shown_as_they_are(tmp_path, kodak_paths):
    root = tmp_path / "photos"
    (root / "a[").mkdir(parents=True)
    shutil.copy(kodak_paths[0], root / "ok.png")
    (root / "IMG_001 [edited].jpg").write_bytes(b"not a jpeg at all")
    (root / "a[" / "]b.jpg").write_bytes(b"nor this")  # "a[/]b.jpg": '[/]' closes Rich markup
    result = runner.invoke(app, ["scan", str(root), "--no-report"])
    assert result.exit_code == 3, result.output  # some files failed; no crash
    text = " ".join(result.output.split())
    assert "IMG_001 [edited].jpg" in text and "a[/]b.jpg" in text
    result = runner.invoke(app, ["quality", str(root / "IMG_001 [edited].jpg")])
    assert result.exit_code == 1 and "IMG_001 [edited].jpg" in result.output
    # a backslash before a bracket: Rich dropped it ("a\\[x.png" was shown "a[x.png")
    for name in ("a\\[x.png", "b\\[x].png", "c\\\\[y.png"):
        shutil.copy(kodak_paths[0], tmp_path / name)
        result = runner.invoke(app, ["quality", str(tmp_path / name)])
        assert result.exit_code == 0 and f"quality of {name}" in result.output, result.output


def test_console_markup_escape_shows_every_text_as_it_is():
    from rich.markup import render

    from boda.cli._common import escape

    for n in range(1, 6):
        for chars in itertools.product("\\[]a/", repeat=n):
            text = "".join(chars)
            assert render(escape(text)).plain.rstrip("\\") == text.rstrip("\\"), text
            # a tag after it stays a tag, whatever the text ends with
            assert render(f"[b]{escape(text)}[/b]x").plain.rstrip("x").rstrip("\\") \
                == text.rstrip("\\"), text


def test_catalog_paths_that_cannot_be_used_give_one_line_errors(two_photos, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    result = runner.invoke(app, ["scan", str(two_photos), "--catalog", str(a_file / "c.db")])
    assert result.exit_code == 1 and "cannot create the catalog" in result.output
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    result = runner.invoke(app, ["scan", str(two_photos), "--catalog", str(a_dir)])
    assert result.exit_code == 1 and "is a folder" in result.output
    result = runner.invoke(app, ["scan", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["scan", str(a_file)])
    assert result.exit_code == 2 and "not a folder" in result.output
    # report, like scan, mark and serve: a file given as the folder is bad usage
    result = runner.invoke(app, ["report", str(a_file)])
    assert result.exit_code == 2 and "not a folder" in result.output


def test_a_catalog_path_ending_in_a_slash_is_never_made_a_file(two_photos, tmp_path):
    # --catalog newdir/ made a catalog FILE named newdir: the slash says "a folder", and a
    # folder only stands for a catalog a scan left in it.
    result = runner.invoke(app, ["scan", str(two_photos), "-q", "--catalog",
                                 str(tmp_path / "newdir") + "/"])
    assert result.exit_code == 2 and "ends in '/'" in result.output
    assert "newdir/catalog.db" in result.output
    with pytest.raises(CatalogError, match="ends in '/'"):
        scan(two_photos, workers=1, catalog_path=f"{tmp_path / 'newdir'}/")
    assert not (tmp_path / "newdir").exists()
    assert not list(tmp_path.glob("newdir*"))


def test_a_scan_never_lists_its_own_catalog_as_an_image(two_photos):
    # A catalog named like an image in DIR was scanned by its own scan, as unreadable.
    catalog = two_photos / "sub" / "cat.png"
    for _ in range(2):
        result = runner.invoke(app, ["scan", str(two_photos), "-q", "--catalog", str(catalog)])
        assert result.exit_code == 0, result.output
        assert _statuses(two_photos, catalog) == ["ok", "ok"]
    runner.invoke(app, ["mark", str(two_photos), "--catalog", str(catalog), "--pick",
                        next(two_photos.glob("*.png")).name])
    summary = scan(two_photos, workers=1, catalog_path=catalog)
    assert (summary.total, summary.failed) == (2, [])


def test_a_broken_boda_folder_is_named_with_what_to_do(two_photos):
    # "cannot create the catalog ... (File exists)" and "run 'boda scan' on the catalog
    # folder" said neither what was wrong nor what to do.
    boda = two_photos / ".boda"
    boda.write_text("x")
    result = runner.invoke(app, ["scan", str(two_photos), "-q"])
    assert result.exit_code == 1
    assert f"{str(boda)!r} is a file, not a folder" in result.output
    assert "move that file away" in result.output
    boda.unlink()
    default_catalog_path(two_photos).mkdir(parents=True)
    for command in ("scan", "report"):
        result = runner.invoke(app, [command, str(two_photos), "-q"])
        assert result.exit_code == 1
        assert "is a folder, in the place of the catalog file" in result.output
        assert "move that folder away" in result.output and "boda scan" not in result.output


def test_an_empty_folder_or_report_path_is_refused(two_photos, monkeypatch):
    # "" (boda scan "$PHOTOS", the variable unset) was the current folder: scanned, with
    # a catalog written into it, or the report written there as index.html.
    monkeypatch.chdir(two_photos)
    before = sorted(two_photos.iterdir())
    for args in (["scan", ""], ["report", ""], ["scan", ".", "--report", ""],
                 ["report", ".", "-o", ""], ["scan", ".", "--catalog", ""],
                 ["report", ".", "--catalog", ""], ["mark", ".", "--catalog", ""],
                 ["serve", ".", "--catalog", ""]):
        result = runner.invoke(app, [*args, *(["-q"] if args[0] in ("scan", "report") else [])])
        assert result.exit_code == 2 and "is empty" in result.output, args
    assert sorted(two_photos.iterdir()) == before


def _without_write_permission(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``python -m boda ARGS`` as a user that file permissions apply to."""
    command = [sys.executable, "-m", "boda", *args]
    if os.geteuid() == 0:  # root ignores permissions unless it drops these capabilities
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv to drop root's permission override")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_catalog_in_a_read_only_folder_is_still_reported(two_photos):
    scan(two_photos, workers=1)
    boda_dir = two_photos / ".boda"
    for path in (two_photos, boda_dir, *boda_dir.iterdir()):
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        # WAL databases need their -shm file even to be read: the folder is read-only,
        # so the catalog is opened as immutable.
        result = _without_write_permission(["report", str(two_photos), "--json"])
        assert result.returncode == 0, result.stderr
        assert [r["status"] for r in json.loads(result.stdout)] == ["ok", "ok"]
        result = _without_write_permission(["scan", str(two_photos), "-q"])
        assert result.returncode == 1
        assert "cannot write the catalog" in result.stderr and "--catalog" in result.stderr
    finally:
        for path in (two_photos, boda_dir, *boda_dir.iterdir()):
            path.chmod(path.stat().st_mode | 0o200)


def test_output_paths_that_are_folders_fail_before_any_work(two_photos, tmp_path):
    a_dir = tmp_path / "report.html"
    a_dir.mkdir()
    result = runner.invoke(app, ["scan", str(two_photos), "--report", str(a_dir), "-q"])
    assert result.exit_code == 2 and "is a folder" in result.output
    assert not (two_photos / ".boda").exists()  # failed before the scan
    scan(two_photos, workers=1)
    for args in (["-o", str(a_dir)], ["--csv", str(tmp_path)]):
        result = runner.invoke(app, ["report", str(two_photos), *args])
        assert result.exit_code == 2 and "is a folder" in result.output, args
    image = str(two_photos / "kodim01.png")
    for out in (tmp_path, tmp_path / "no_extension", tmp_path / "x.xyz"):
        result = runner.invoke(app, ["edges", image, "-o", str(out)])
        assert result.exit_code == 2, (out, result.output)
        assert "is a folder" in result.output or "extension" in result.output
    assert not (tmp_path / "no_extension").exists() and not (tmp_path / "x.xyz").exists()


def test_write_image_refuses_an_unknown_extension_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.png"
    write_image(target, np.zeros((4, 4), np.float32))
    before = target.read_bytes()
    with pytest.raises(InvalidParameterError, match="extension"):
        write_image(tmp_path / "x.unknown", np.zeros((4, 4), np.float32))
    with pytest.raises(InvalidParameterError, match="is a folder"):
        write_image(tmp_path, np.zeros((4, 4), np.float32))
    assert target.read_bytes() == before


def test_flat_images_of_different_colours_are_not_near_duplicates(tmp_path):
    root = tmp_path / "cards"
    root.mkdir()
    write_image(root / "grey.png", np.full((200, 300, 3), 0.5, np.float32))
    write_image(root / "blue.png", np.tile(np.float32([0.1, 0.1, 0.6]), (2, 3000, 1)))
    write_image(root / "dot.png", np.full((1, 1, 3), 0.9, np.float32))
    write_image(root / "grey_copy.png", np.full((200, 300, 3), 0.5, np.float32))
    scan(root, workers=1)
    flags = {r["path"]: r["flags"] for r in catalog_records(default_catalog_path(root))}
    assert all("near_duplicate" not in f for f in flags.values()), flags
    # Identical flat images are still caught, as exact duplicates.
    assert "exact_duplicate" in flags["grey.png"] and "exact_duplicate" in flags["grey_copy.png"]
    assert "exact_duplicate" not in flags["blue.png"]
    assert derive_flags([], default_thresholds()) == []


def test_float_tiffs_are_clipped_and_nan_is_refused_with_the_reason(tmp_path):
    rng = np.random.default_rng(0)
    over = (rng.random((60, 80)) * 3).astype(np.float32)
    Image.fromarray(over, mode="F").save(tmp_path / "over.tif")
    pixels = read_image(tmp_path / "over.tif")
    assert pixels.min() >= 0 and pixels.max() == 1.0
    np.testing.assert_allclose(pixels[..., 0], np.clip(over, 0, 1))
    np.testing.assert_allclose(read_image(tmp_path / "over.tif", max_side=40).max(), 1.0)
    holes = rng.random((60, 80)).astype(np.float32)
    holes[5:9, 5:9] = np.nan
    Image.fromarray(holes, mode="F").save(tmp_path / "holes.tif")
    with pytest.raises(ImageReadError, match="NaN"):
        read_image(tmp_path / "holes.tif")
    # 32-bit integers above 16 bits are clipped with and without a resize.
    big = rng.integers(0, 200_000, (60, 80)).astype(np.int32)
    Image.fromarray(big, mode="I").save(tmp_path / "int32.tif")
    assert read_image(tmp_path / "int32.tif").max() == 1.0
    assert read_image(tmp_path / "int32.tif", max_side=40).max() == 1.0
    summary = scan(tmp_path, workers=1)
    reasons = dict(summary.failed)
    assert list(reasons) == ["holes.tif"] and "NaN" in reasons["holes.tif"]
    assert "internal error" not in reasons["holes.tif"]


def test_quality_of_an_array_with_nan_is_a_clear_error():
    image = np.full((64, 64), 0.5, np.float32)
    image[3, 3] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        analyze(image)


def test_camera_raw_files_are_counted_and_named_not_passed_over_in_silence(
    two_photos, monkeypatch
):
    # Without the boda[raw] extra (with it, they are scanned: tests/test_io_raw.py).
    monkeypatch.setitem(sys.modules, "rawpy", None)
    for name in ("IMG_1.CR2", "IMG_2.cr2", "DSC_3.NEF", "notes.txt"):
        (two_photos / name).write_bytes(b"raw sensor data")
    result = runner.invoke(app, ["scan", str(two_photos), "-q"])
    assert result.exit_code == 0, result.output  # RAW files are not failures
    text = " ".join(result.output.split())
    assert "3 camera RAW files (2 .cr2, 1 .nef)" in text
    page = (two_photos / ".boda" / "report.html").read_text("utf-8")
    assert re.search(r"Not scanned</h3><ul><li>3 camera RAW files \(2 \.cr2, 1 \.nef\)", page)
    summary = scan(two_photos, workers=1)
    assert summary.raw_files == {".cr2": 2, ".nef": 1} and summary.total == 2


def test_a_file_system_without_locks_scans_without_the_guard(two_photos, monkeypatch, caplog):
    """ENOLCK (an NFS mount without lockd, some FUSE file systems) is not "another scan"."""
    fcntl = pytest.importorskip("fcntl")
    import errno

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    summary = scan(two_photos, workers=1)
    assert summary.analysed == 2
    assert "scanning without the guard" in caplog.text and "No locks available" in caplog.text


def test_a_second_scan_of_the_same_catalog_is_refused(two_photos):
    pytest.importorskip("fcntl")
    scan(two_photos, workers=1)
    catalog = default_catalog_path(two_photos)
    # Another process holds the lock, as a running scan does (POSIX locks are per
    # process), and says whose it is.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         "f = open(sys.argv[1], 'a+'); fcntl.lockf(f, fcntl.LOCK_EX)\n"
         "f.seek(0); f.truncate(); f.write('pid 4242'); f.flush()\n"
         "print('locked', flush=True); time.sleep(120)",
         str(catalog.with_name(catalog.name + ".lock"))],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = runner.invoke(app, ["scan", str(two_photos), "--max-side", "48", "-q"])
        assert result.exit_code == 1
        assert "another boda scan (pid 4242)" in result.output and "--catalog" in result.output
        result = runner.invoke(app, ["report", str(two_photos), "--json"])
        assert result.exit_code == 0  # reading is not refused
    finally:
        holder.kill()
        holder.wait()
    assert _statuses(two_photos) == ["ok", "ok"]
    assert scan(two_photos, workers=1).unchanged == 2  # the holder is gone: free again


def test_report_loads_and_shows_a_bounded_number_of_cards(tmp_path, kodak_paths, monkeypatch):
    import boda.report._html as html
    from boda.catalog import Catalog

    root = tmp_path / "many"
    root.mkdir()
    for i in range(7):  # seven copies: one exact-duplicate group, all dark
        write_image(root / f"copy{i}.png", np.full((40, 60, 3), 0.02, np.float32))
    for i in range(5):
        shutil.copy(kodak_paths[i % len(kodak_paths)], root / f"photo{i}.png")
    scan(root, workers=1)
    asked: list[set[int]] = []
    original = Catalog.thumbnails
    monkeypatch.setattr(
        Catalog, "thumbnails", lambda self, ids: asked.append(set(ids)) or original(self, ids)
    )
    monkeypatch.setattr(html, "MAX_PER_SECTION", 3)
    page = html.render_html(default_catalog_path(root))
    # A flag section shows at most 3 cards (the cap); the one duplicate group of
    # 7 copies, larger than the cap, shows 3 and names the other 4.
    counts: dict[str, int] = {}
    for record in catalog_records(default_catalog_path(root)):
        for name in record["flags"]:
            counts[name] = counts.get(name, 0) + 1
    assert counts["exact_duplicate"] == 7 and counts["dark"] >= 7
    assert page.count("data:image/jpeg;base64") == sum(min(n, 3) for n in counts.values())
    assert page.count("… and ") == sum(
        1 for name, n in counts.items() if name != "exact_duplicate" and n > 3
    )
    assert "7 copies" in page and "<summary>4 more copies</summary>" in page
    assert all(f"<li>copy{i}.png</li>" in page for i in (3, 4, 5, 6))
    # Only the thumbnails of the shown cards were read: copies and flagged photos.
    assert len(asked) == 1 and 3 <= len(asked[0]) < 12  # not all 12 files
    # ... and only their full records: the page is built from one light pass.
    read: list[set[int]] = []
    by_id = Catalog.records_by_id
    monkeypatch.setattr(
        Catalog,
        "records_by_id",
        lambda self, ids, **kw: read.append(set(ids)) or by_id(self, ids, **kw),
    )
    again = html.render_html(default_catalog_path(root))
    assert again.count("data:image/jpeg;base64") == page.count("data:image/jpeg;base64")
    assert read == asked[:1]


def test_json_export_streams_the_same_text_as_one_dump(two_photos, capsys):
    from boda.cli._common import print_json, print_json_array

    for items in ([], [{"a": 1, "b": [1, 2]}], [{"a": 1}, {"b": {"c": float("nan")}}]):
        print_json_array(iter(items))
        streamed = capsys.readouterr().out
        print_json(items)
        assert streamed == capsys.readouterr().out
    scan(two_photos, workers=1)
    result = runner.invoke(app, ["report", str(two_photos), "--json"])
    assert [r["status"] for r in json.loads(result.output)] == ["ok", "ok"]


def test_report_cards_link_to_the_originals_whatever_their_names(tmp_path):
    import html as html_text
    import urllib.parse

    root = tmp_path / "trip #1"
    (root / "sub 100%").mkdir(parents=True)
    names = [b"sub 100%/a#b?.png", b"new\nline.png", "rtl\u202egnp.exe.png".encode()]
    names.append(b"raw\xff.png")
    for i, name in enumerate(names):  # dark, so each is flagged and shown as a card
        write_image(os.fsdecode(os.path.join(os.fsencode(root), name)),
                    np.full((40, 60, 3), 0.01 * (i + 1), np.float32))
    scan(root, workers=1)
    out = tmp_path / "elsewhere" / "report.html"
    result = runner.invoke(app, ["report", str(root), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    hrefs = {html_text.unescape(h) for h in re.findall(r'<a href="([^"#][^"]*)"', page)}
    targets = {os.path.normpath(os.path.join(os.fsencode(out.parent),
                                             urllib.parse.unquote_to_bytes(h))) for h in hrefs}
    assert targets == {os.path.join(os.fsencode(root), n) for n in names}
    # Names are shown as they are on disk: no raw newline or bidi override.
    assert r"new\nline.png" in page and r"rtl\u202egnp.exe.png" in page
    assert "\u202e" not in page and "new\nline" not in page
    assert '<meta name="viewport"' in page and str(root) in page


def test_report_title_names_the_real_folder_for_dot_dot(tmp_path, monkeypatch):
    from boda.report import report_title

    (tmp_path / "trip" / "day1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "trip" / "day1")
    assert report_title("..") == report_title(".").replace("day1", "trip") == "boda report — trip"
    assert report_title(tmp_path / "trip" / "day1" / "..") == "boda report — trip"


def test_histogram_gathers_far_outliers_in_an_end_bin():
    from boda.report._html import _histogram_svg

    values = [1.0 + 0.01 * i for i in range(50)] + [80.0]  # one 4000x50 strip among photos
    svg = _histogram_svg(values, 2.5, "aspect_ratio")
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill', svg)]
    assert sum(h > 0 for h in heights) > 10  # the photos spread over many bars
    assert "≥ " in svg and ">2.5</text>" in svg  # the outlier bin, the threshold labelled
    assert "51 images from 1 to 80" in svg  # the accessible summary keeps the true range
    plain = _histogram_svg(values[:50], 2.5, "aspect_ratio")
    assert "≥" not in plain and "≤" not in plain


def test_histogram_keeps_the_full_range_when_nothing_squashes_it():
    from boda.report._html import _histogram_svg

    square = [1.0] * 36 + [80.0]  # most ratios equal: still gathered
    assert "≥ " in _histogram_svg(square, 2.5, "aspect_ratio")
    blur = [0.0, 0.0] + [0.6 + 0.015 * i for i in range(36)]  # flagged ones far left
    svg = _histogram_svg(blur, 0.44, "blurry")
    assert "≤" not in svg and ">0</text>" in svg  # the axis still starts at 0


def test_report_exports_never_replace_the_scan_or_its_catalog(two_photos, tmp_path):
    scan(two_photos, workers=1)
    catalog = default_catalog_path(two_photos)
    photo = sorted(two_photos.glob("*.png"))[0]
    before = {p: p.read_bytes() for p in (photo, catalog)}
    for args in (
        ["--csv", str(photo)],  # a scanned photo
        ["--csv", str(catalog)],  # the catalog being read
        ["--csv", f"{catalog}-wal"],
        ["-o", str(tmp_path / "r.html"), "--csv", str(tmp_path / "r.html")],  # its own output
        ["-o", str(tmp_path / "x.csv"), "--csv", str(tmp_path / "x.csv")],  # -> x.csv/index.html
    ):
        result = runner.invoke(app, ["report", str(two_photos), *args])
        assert result.exit_code == 2, (args, result.output)
        assert "refusing to overwrite" in result.output or "both write to" in result.output
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "x.csv").exists()
    # scan --report cannot be the catalog either
    other = tmp_path / "cat.html"
    result = runner.invoke(
        app, ["scan", str(two_photos), "-q", "--catalog", str(other), "--report", str(other)]
    )
    assert result.exit_code == 2 and "refusing to overwrite" in result.output


def test_report_exports_never_replace_the_culling_marks(two_photos):
    # The marks (picks, ratings) are read by every export and nothing makes them
    # again: --overwrite does not let an export replace them.
    scan(two_photos, workers=1)
    photo = sorted(two_photos.glob("*.png"))[0].name
    assert runner.invoke(app, ["mark", str(two_photos), photo, "--pick"]).exit_code == 0
    marks = marks_path(default_catalog_path(two_photos))
    before = marks.read_bytes()
    for args in (["--csv", str(marks)], ["--parquet", str(marks)], ["--csv", f"{marks}-wal"]):
        result = runner.invoke(app, ["report", str(two_photos), *args, "--overwrite"])
        assert result.exit_code == 2 and "refusing to overwrite" in result.output, args
    assert marks.read_bytes() == before
    result = runner.invoke(app, ["report", str(two_photos), "--csv", "-"])
    assert result.exit_code == 0 and f"{photo},ok," in result.output and ",pick," in result.output


def test_the_report_of_a_catalog_kept_elsewhere_links_to_its_folder(two_photos, tmp_path):
    # scan(..., catalog_path=...) then write_html_report(catalog): the page named the
    # catalog's parent's parent as the folder, and its links missed every photo.
    catalog = tmp_path / "catalogs" / "trip.db"
    scan(two_photos, workers=1, catalog_path=catalog, thresholds={"blurry": 5})  # all cards
    page = write_html_report(catalog, tmp_path / "pages" / "trip.html")
    text = page.read_text(encoding="utf-8")
    assert f"boda report — {two_photos.name}<" in text and str(two_photos.resolve()) in text
    hrefs = re.findall(r'<a href="([^"#]+)">', text)
    assert hrefs and all((page.parent / href).resolve().is_file() for href in hrefs)
    assert {Path(href).name for href in hrefs} == {p.name for p in two_photos.glob("*.png")}


def test_report_on_a_missing_or_broken_catalog_is_one_line_and_creates_nothing(tmp_path):
    missing = tmp_path / "mistyped"
    result = runner.invoke(app, ["report", str(missing)])
    assert result.exit_code == 2 and "no catalog" in result.output  # a missing input: usage
    assert not missing.exists()
    broken = tmp_path / "broken"
    (broken / ".boda").mkdir(parents=True)
    (broken / ".boda" / "catalog.db").write_bytes(b"garbage, not SQLite")
    for args in ([], ["--json"], ["--csv", str(tmp_path / "t.csv")]):
        result = runner.invoke(app, ["report", str(broken), *args])
        assert result.exit_code == 1 and "not a usable boda catalog" in result.output, args
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_piped_output_keeps_each_record_on_one_line(tmp_path):
    deep = tmp_path / ("a_long_folder_name_" * 4) / "and_deeper"
    deep.mkdir(parents=True)
    write_image(deep / "x.png", np.full((20, 30, 3), 0.5, np.float32))
    env = {**os.environ, "COLUMNS": "40"}
    out = subprocess.run(
        [sys.executable, "-m", "boda", "scan", str(deep), "-w", "1"], env=env,
        capture_output=True, text=True, check=False,
    ).stdout
    assert f"report: {deep / '.boda' / 'report.html'}" in out.splitlines()
    out = subprocess.run(
        [sys.executable, "-m", "boda", "color", "convert", "--precision", "12", "0.1", "0.2",
         "0.3"], env=env, capture_output=True, text=True, check=True,
    ).stdout
    assert len(out.strip().splitlines()) == 1


def test_exit_status_tells_usage_from_failure(tmp_path, two_photos):
    # 2: the command was called wrongly; 1: it could not do its work.
    photo = str(sorted(two_photos.iterdir())[0])
    usage = runner.invoke(app, ["edges", photo, "--sigma", "-1", "-o", str(tmp_path / "e.png")])
    assert usage.exit_code == 2 and "error:" in usage.output  # boda's check, not Click's
    unreadable = tmp_path / "broken.png"
    unreadable.write_bytes(b"not an image")
    assert runner.invoke(app, ["quality", str(unreadable)]).exit_code == 1
    result = runner.invoke(app, ["edges", str(unreadable), "-o", str(tmp_path / "e.png")])
    assert result.exit_code == 1 and "cannot read image" in result.output
    assert "Exit status: 0 done; 1 failed" in runner.invoke(app, ["edges", "--help"]).output


def test_console_lines_show_control_characters_in_names_as_escapes(tmp_path):
    root = tmp_path / "odd"
    root.mkdir()
    (root / "bad\nname.jpg").write_bytes(b"not an image")
    result = runner.invoke(app, ["scan", str(root), "-q", "--no-report"])
    assert result.exit_code == 3
    assert ("unreadable bad\\nname.jpg: not a recognised image format: this is a text file, "
            "not a picture") in result.output.splitlines()


def test_many_unreadable_files_are_summed_up_by_reason_on_the_console(tmp_path):
    root = tmp_path / "export"
    root.mkdir()
    for i in range(30):
        (root / f"empty_{i:02d}.jpg").write_bytes(b"")
    for i in range(3):
        (root / f"junk_{i}.png").write_bytes(b"not an image at all")
    result = runner.invoke(app, ["scan", str(root), "-q", "--no-report", "-w", "1"])
    assert result.exit_code == 3
    lines = [line for line in result.output.splitlines() if line.startswith("unreadable")]
    with_counts = [re.match(r"unreadable (\d+) files?: (.+) \(e\.g\. (.+)\)$", line)
                   for line in lines]
    assert all(with_counts) and len(lines) == 2, result.output
    counts = {int(m.group(1)): m.group(3) for m in with_counts}
    assert counts == {30: "empty_00.jpg", 3: "junk_0.png"}  # most frequent first, examples
    assert int(with_counts[0].group(1)) == 30
    assert f"boda report {root} --only failed --paths" in " ".join(result.output.split())
    # the same reasons as the catalog's, which the report and serve group by
    from boda.catalog import Catalog

    with Catalog(default_catalog_path(root), readonly=True) as catalog:
        assert [(r, n) for r, n, _ in catalog.failure_reasons()] == [
            (m.group(2), int(m.group(1))) for m in with_counts]


def test_ctrl_c_while_the_command_starts_is_quiet(monkeypatch, capsys):
    import boda.cli

    class Interrupting:  # Ctrl-C arrives while the app's modules are imported
        def find_spec(self, name, path=None, target=None):
            if name == "boda.cli._app":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "boda.cli._app", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {signum: signal.getsignal(signum) for signum in stops}
    try:
        with pytest.raises(SystemExit) as stop:
            boda.cli.main()
        # main() ends the process: Ctrl-C pressed again is ignored until it is gone
        assert {signal.getsignal(signum) for signum in stops} == {signal.SIG_IGN}
    finally:  # this process goes on: give pytest its Ctrl-C back
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert stop.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"  # no traceback


_PRESSED_AGAIN_AT_EXIT = """
import os, signal, sys, threading, time

def again():  # Ctrl-C pressed again while Python ends, which joins this thread (as a pool's)
    while threading.main_thread().is_alive():
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.3)

import boda.scan._pipeline as pipeline

def stopped(*args, **kwargs):
    threading.Thread(target=again).start()
    raise KeyboardInterrupt
    yield

pipeline._iter_results = stopped
sys.argv = ["boda", "scan", sys.argv[1], "-w", "1", "--no-report"]
from boda.cli import main
main()
"""


def test_ctrl_c_pressed_again_as_an_interrupted_scan_exits_prints_no_traceback(folder):
    result = subprocess.run([sys.executable, "-c", _PRESSED_AGAIN_AT_EXIT, str(folder)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, (
        result.stderr)
    assert "interrupted: committed results are kept" in result.stdout


def test_importing_boda_loads_no_image_stack():
    code = "import sys, boda.cli; print(sorted({'numpy', 'PIL', 'typer'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
