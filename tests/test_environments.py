"""The places boda runs in: unmounted cards, read-only files and folders, full disks,
odd locales and terminals, missing /dev/shm, SIGTERM and SIGHUP.

Each case here was once a traceback, a misleading message or lost data.  Permission
cases run as an ordinary user would: as root (CI containers) they drop the
capabilities that let root ignore file permissions (``setpriv``), or ask the
library through ``os.access`` where the answer is all that matters.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import boda.cli
import boda.scan._pipeline as pipeline
from boda.catalog import Catalog, default_catalog_path
from boda.cli import app
from boda.errors import CatalogError
from boda.scan import ANALYSIS_VERSION, scan, walk_images

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def three_folders(tmp_path, kodak_paths) -> Path:
    """Folders a, b and c with two photos each."""
    root = tmp_path / "photos"
    for i, name in enumerate("abc"):
        (root / name).mkdir(parents=True)
        for p in kodak_paths[2 * i : 2 * i + 2]:
            shutil.copy(p, root / name / p.name)
    return root


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM images").fetchone()[0]


def _python(code: str, *, env: dict | None = None, unprivileged: bool = False,
            **kwargs) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python (as a user file permissions apply to, if asked)."""
    command = [sys.executable, "-c", code]
    if unprivileged and os.geteuid() == 0:  # root ignores permissions without these
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv to drop root's permission override")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    environment = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env=environment, **kwargs)


def _boda(*args: str, **kwargs) -> subprocess.CompletedProcess:
    code = f"import sys; sys.argv = ['boda', *{list(args)!r}]; from boda.cli import main; main()"
    return _python(code, **kwargs)


def _main(monkeypatch, args: list[str], encoding: str = "utf-8", stdout=None) -> tuple:
    """``boda ARGS`` through the console entry point, with stdout and stderr in
    ``encoding``; returns (exit status, stdout bytes, stderr text)."""
    out = io.BytesIO()
    err = io.BytesIO()
    if stdout is None:
        stdout = io.TextIOWrapper(out, encoding=encoding, newline="\n")
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(err, encoding=encoding))
    monkeypatch.setattr(sys, "argv", ["boda", *args])
    with pytest.raises(SystemExit) as stop:
        boda.cli.main()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a stream the test made fail
                pass
    code = stop.value.code if isinstance(stop.value.code, int) else 0
    return code, out.getvalue(), err.getvalue().decode(encoding, errors="replace")


# -- 2: an unmounted card, a folder that cannot be listed --------------------------------


def test_rescan_of_a_root_with_no_images_changes_nothing(two_photos, tmp_path):
    db = tmp_path / "cats" / "trip.db"
    scan(two_photos, workers=1, catalog_path=db)
    for photo in two_photos.iterdir():  # the card is not mounted: an empty folder
        photo.unlink()
    with pytest.raises(CatalogError, match="holds no images now.*lists 2; is the card"):
        scan(two_photos, workers=1, catalog_path=db)
    assert _rows(db) == 2
    result = runner.invoke(app, ["scan", str(two_photos), "--catalog", str(db), "-q"])
    assert result.exit_code == 1 and "is the card or share mounted" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _rows(db) == 2


def _unlistable(monkeypatch, folder: Path) -> None:
    """Make ``os.walk`` fail to list ``folder`` as it does without permission."""
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(folder):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("locked", ["a", "c"])
def test_an_unlistable_folder_is_named_even_when_walked_last(three_folders, monkeypatch, locked):
    _unlistable(monkeypatch, three_folders / locked)
    found = list(walk_images(three_folders))
    failed = [(f.relpath, f.error) for f in found if f.error]
    assert failed == [(locked.encode(), "cannot list folder: Permission denied")]
    assert found[[f.relpath for f in found].index(locked.encode())].unlisted_folder


def test_files_under_an_unlistable_folder_are_kept(three_folders, monkeypatch):
    db = default_catalog_path(three_folders)
    scan(three_folders, workers=1)
    with monkeypatch.context() as m:
        _unlistable(m, three_folders / "b")
        summary = scan(three_folders, workers=1)
    assert summary.removed == 0 and _rows(db) == 7  # 6 photos and the folder's record
    assert summary.failed == [
        ("b", "cannot list folder: Permission denied (its 2 catalogued files are kept "
              "until it can be listed again)")
    ]
    with Catalog(db, readonly=True) as catalog:
        assert sum(r.path.startswith("b/") and r.status == "ok" for r in catalog.records()) == 2
    summary = scan(three_folders, workers=1)  # listable again: nothing to re-analyse
    assert (summary.unchanged, summary.analysed, summary.removed, summary.failed) == (6, 0, 1, [])


def test_an_unlistable_root_keeps_the_catalog(three_folders, monkeypatch):
    scan(three_folders, workers=1)
    _unlistable(monkeypatch, three_folders)
    summary = scan(three_folders, workers=1)
    assert summary.removed == 0 and _rows(default_catalog_path(three_folders)) == 7
    assert "its 6 catalogued files are kept" in summary.failed[0][1]


# -- 3: stdout and stderr that are not UTF-8 ---------------------------------------------


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_help_and_text_output_survive_a_stdout_that_is_not_utf8(monkeypatch, encoding):
    code, out, err = _main(monkeypatch, ["--help"], encoding)
    assert code == 0 and b"Usage" in out and "Traceback" not in err
    code, out, err = _main(monkeypatch, ["color", "diff", "#ff0000", "#fe0000", "--from",
                                         "srgb"], encoding)
    assert code == 0 and b"\\u0394E" in out  # "ΔE", escaped


def test_json_output_is_valid_json_whatever_stdout_can_encode(monkeypatch, two_photos):
    korean = two_photos / "집 🌊.png"
    shutil.copy(two_photos / "kodim01.png", korean)
    code, out, err = _main(monkeypatch, ["scan", str(two_photos), "-w", "1", "--json",
                                         "--no-report"], "ascii")
    assert code == 0, err
    assert json.loads(out.decode("ascii"))["total"] == 3
    code, out, err = _main(monkeypatch, ["report", str(two_photos), "--json"], "ascii")
    assert code == 0, err
    assert "집 🌊.png" in {r["path"] for r in json.loads(out.decode("ascii"))}
    code, out, err = _main(monkeypatch, ["quality", str(korean), "--json"], "ascii")
    assert code == 0 and json.loads(out.decode("ascii"))["image"] == str(korean)
    code, out, err = _main(monkeypatch, ["quality", str(korean)], "ascii")  # a table
    assert code == 0 and b"\\uc9d1" in out
    code, out, err = _main(monkeypatch, ["report", str(two_photos), "--json"], "utf-8")
    assert "집 🌊.png".encode() in out  # UTF-8 output is left as it was


def test_names_print_under_an_ascii_file_system_encoding(two_photos):
    (two_photos / "깨진.jpg").write_bytes(b"not an image")
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}
    result = _boda("scan", str(two_photos), "-w", "1", "-q", "--no-report", env=env)
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    assert "unreadable \\uae68\\uc9c4.jpg: not a recognised image format" in result.stdout


# -- 4: no usable /dev/shm -----------------------------------------------------------------


def test_a_scan_without_process_pool_runs_in_this_process(two_photos, monkeypatch, caplog):
    import multiprocessing.synchronize

    def no_semaphores(*args, **kwargs):  # what a read-only /dev/shm gives
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__", no_semaphores)
    summary = scan(two_photos, workers=2)
    assert summary.analysed == 2 and not summary.failed
    assert "cannot start worker processes (Read-only file system" in caplog.text


# -- 5, 8: read-only catalog files and folders ----------------------------------------------


def test_a_read_only_catalog_file_is_refused_before_any_work(two_photos, kodak_paths):
    scan(two_photos, workers=1)
    db = default_catalog_path(two_photos)
    shutil.copy(kodak_paths[3], two_photos / "new.png")
    db.chmod(0o444)
    try:
        result = _boda("scan", str(two_photos), "-q", "-w", "1", unprivileged=True)
    finally:
        db.chmod(0o644)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write the catalog" in result.stderr
    assert "the file is read-only" in result.stderr and "chmod u+w" in result.stderr
    assert _rows(db) == 2


def test_results_only_in_the_wal_of_a_read_only_folder_are_not_hidden(two_photos, tmp_path):
    scan(two_photos, workers=1)
    db = default_catalog_path(two_photos)
    copy = tmp_path / "copy"
    copy.mkdir()
    con = sqlite3.connect(db)  # a scan that was killed: results in the -wal, no -shm copied
    con.execute("PRAGMA wal_autocheckpoint = 0")
    with con:
        con.execute("DELETE FROM images WHERE relpath = ?", (b"kodim01.png",))
    assert (db.parent / "catalog.db-wal").stat().st_size > 0
    shutil.copy(db, copy / "catalog.db")
    shutil.copy(db.parent / "catalog.db-wal", copy / "catalog.db-wal")
    con.close()
    copy.chmod(0o555)
    try:
        result = _boda("report", str(two_photos), "--catalog", str(copy / "catalog.db"),
                       "--json", unprivileged=True)
    finally:
        copy.chmod(0o755)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert "cannot read the latest results" in result.stderr
    assert "make the folder writable" in result.stderr
    assert "move it away" not in result.stderr


# -- 6: a full disk ----------------------------------------------------------------------------


def _disk_of(monkeypatch, pages: int) -> None:
    """Catalog connections behave as on a disk that holds ``pages`` 4 KiB pages."""
    real = sqlite3.connect

    def connect(*args, **kwargs):
        con = real(*args, **kwargs)
        con.execute(f"PRAGMA max_page_count = {pages}")
        return con

    monkeypatch.setattr(sqlite3, "connect", connect)


def _distinct_photos(root, kodak_paths, count: int, side: int) -> None:
    """``count`` JPEGs in ``root``, each a different Kodak photo or brightness (no duplicates)."""
    from boda.io import read_image, write_image

    root.mkdir()
    for i in range(count):
        brightness = 0.5 + i / (2.5 * count)
        image = read_image(kodak_paths[i % len(kodak_paths)], max_side=side) * brightness
        write_image(root / f"img{i:02d}.jpg", image)


def test_a_disk_that_fills_during_a_scan_says_what_was_saved(tmp_path, kodak_paths, monkeypatch):
    root = tmp_path / "photos"
    _distinct_photos(root, kodak_paths, 12, 120)
    db = tmp_path / "c.db"
    monkeypatch.setattr(pipeline, "BATCH_SIZE", 4)
    with monkeypatch.context() as m:
        # a disk where one batch of 4 fits, not all 12 (19-28 pages; the status index
        # takes one of them)
        _disk_of(m, 23)
        with pytest.raises(CatalogError) as error:
            scan(root, workers=1, catalog_path=db)
    message = str(error.value)
    saved = _rows(db)
    assert 0 < saved < 12
    assert f"is full (database or disk is full); {saved} of the 12 files" in message
    assert "catalog is intact" in message and "run the scan again to finish" in message
    with Catalog(db) as catalog:
        assert catalog.integrity_check() == "ok"
    summary = scan(root, workers=1, catalog_path=db)
    assert (summary.unchanged, summary.analysed) == (saved, 12 - saved)


def test_a_full_disk_at_the_start_leaves_no_empty_catalog(two_photos, monkeypatch):
    _disk_of(monkeypatch, 1)
    result = runner.invoke(app, ["scan", str(two_photos), "-q", "-w", "1"])
    assert result.exit_code == 1
    assert "cannot create the catalog" in result.output and "the disk is full" in result.output
    assert "move it away" not in result.output
    assert not (two_photos / ".boda").exists()


# -- 7: output folders that may not be written to ----------------------------------------------


def _read_only_folder(monkeypatch, folder: Path) -> None:
    """``os.access`` says ``folder`` may not be written to, as it does for a user
    without permission or on a read-only disk."""
    real = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("command", [
    ["edges", "{img}", "-o", "{ro}/e.png"],
    ["cutout", "{img}", "--rect", "100,100,300,300", "-o", "{ro}/c.png"],
    ["inpaint", "{img}", "--mask", "{mask}", "--method", "exemplar", "-o", "{ro}/i.png"],
    ["refocus", "{img}", "--depth", "{mask}", "--focus-at", "10,10", "-o", "{ro}/r.png"],
    ["color", "chromaticity", "{img}", "-o", "{ro}/x.png"],
    ["scan", "{root}", "-q", "-w", "1", "--report", "{ro}/r.html"],
    ["report", "{root}", "-o", "{ro}/r.html"],
    ["report", "{root}", "--csv", "{ro}/r.csv"],
])
def test_an_unwritable_output_folder_fails_before_the_work(two_photos, tmp_path, monkeypatch,
                                                          command):
    import numpy as np

    from boda.io import write_image

    if command[0] == "report":
        scan(two_photos, workers=1)
    mask = tmp_path / "mask.png"
    hole = np.zeros((500, 500), np.float32)
    hole[200:260, 200:260] = 1
    write_image(mask, hole)
    ro = tmp_path / "ro"
    ro.mkdir()
    _read_only_folder(monkeypatch, ro)
    called = []
    monkeypatch.setattr(pipeline, "analyze_file", lambda *a: called.append(a))
    values = {"img": str(two_photos / "kodim01.png"), "ro": str(ro), "mask": str(mask),
              "root": str(two_photos)}
    result = runner.invoke(app, [part.format(**values) for part in command])
    assert result.exit_code == 1, result.output
    assert f"its folder '{ro}' is not writable" in result.output
    assert list(ro.iterdir()) == [] and called == []


def test_an_unwritable_output_folder_is_found_as_an_ordinary_user(two_photos, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    result = _boda("edges", str(two_photos / "kodim01.png"), "-o", str(ro / "e.png"),
                   unprivileged=True)
    assert result.returncode == 1 and "is not writable" in result.stderr, result.stderr


# -- 10: stdout full or closed ---------------------------------------------------------------


class _FullDisk(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("args", [["--version"], ["report", "{root}", "--json"],
                                  ["scan", "{root}", "-q", "-w", "1", "--no-report"]])
def test_a_full_stdout_is_one_line(monkeypatch, two_photos, args):
    scan(two_photos, workers=1)
    full = io.TextIOWrapper(io.BufferedWriter(_FullDisk()), encoding="utf-8")
    code, _, err = _main(monkeypatch, [a.format(root=two_photos) for a in args], stdout=full)
    assert code == 1
    assert err == (
        "error: cannot write to standard output (No space left on device); redirect it to a "
        "file on a disk with free space (boda ... > out.txt)\n"
    )


def test_json_to_a_closed_stdout_is_one_line(two_photos):
    scan(two_photos, workers=1)
    for args in (["report", str(two_photos), "--json"],
                 ["scan", str(two_photos), "-q", "--json", "--no-report"]):
        result = _boda(*args, preexec_fn=lambda: os.close(1))
        assert result.returncode == 1
        assert result.stderr == (
            "error: standard output is closed; redirect it to a file (boda ... > out.txt)\n"
        )


# -- 11: SIGTERM and SIGHUP --------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_an_output_write_leaves_no_partial_file(tmp_path, kodak_paths, signum):
    out = tmp_path / "out"
    out.mkdir()
    code = (  # the signal arrives while the output is being synced to disk
        "import os, sys\n"
        "real = os.fsync\n"
        f"def fsync(fd): os.kill(os.getpid(), {int(signum)}); real(fd)\n"
        "os.fsync = fsync\n"
        f"sys.argv = ['boda', 'edges', {str(kodak_paths[0])!r}, '-o', {str(out / 'e.png')!r}]\n"
        "from boda.cli import main\n"
        "main()\n"
    )
    result = _python(code)
    assert result.returncode == 128 + signum, result.stderr
    assert result.stderr == "interrupted\n"
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_during_a_scan_keeps_the_committed_work(tmp_path, kodak_paths, workers):
    root = tmp_path / "photos"
    _distinct_photos(root, kodak_paths, 10, 100)
    code = (  # SIGTERM right after the first batch is committed
        "import os, signal, sys\n"
        "import boda.scan._pipeline as p\n"
        "p.BATCH_SIZE = 3\n"
        "real = p._write\n"
        "def write(catalog, batch):\n"
        "    real(catalog, batch)\n"
        "    if batch: os.kill(os.getpid(), signal.SIGTERM)\n"
        "p._write = write\n"
        f"sys.argv = ['boda', 'scan', {str(root)!r}, '-w', '{workers}', '--no-report']\n"
        "from boda.cli import main\n"
        "main()\n"
    )
    result = _python(code)
    assert result.returncode == 143, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "interrupted: committed results are kept; run again to finish" in result.stdout
    kept = _rows(default_catalog_path(root))
    assert 3 <= kept < 10
    summary = scan(root, workers=1)
    assert (summary.unchanged, summary.analysed) == (kept, 10 - kept)


def test_the_exit_status_table_names_sigterm_and_sighup():
    for args in (["--help"], ["scan", "--help"], ["edges", "--help"]):
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert "143, 129 stopped by SIGTERM, SIGHUP" in result.output
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "`143` / `129` stopped by SIGTERM /\n  SIGHUP" in readme


def test_nohup_keeps_sighup_ignored(monkeypatch):
    monkeypatch.setattr(signal, "signal", signal.signal)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        _main(monkeypatch, ["--version"])
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored after main
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- 12: COLUMNS --------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["0", "-3", "abc"])
def test_a_columns_value_that_is_no_width_is_ignored(columns, tmp_path):
    result = _boda("quality", str(tmp_path / "missing.jpg"), env={"COLUMNS": columns})
    assert result.returncode == 2 and result.stderr.startswith("error: image ")  # a missing input
    assert "missing.jpg" in result.stderr and "no such file" in result.stderr


# -- 13: catalogs of other bodas ----------------------------------------------------------------


def test_a_catalog_of_a_newer_analysis_is_refused_not_downgraded(two_photos):
    scan(two_photos, workers=1)
    db = default_catalog_path(two_photos)
    newer = {"version": ANALYSIS_VERSION + 1, "max_side": 640}
    with Catalog(db) as catalog:
        catalog.set_setting("analysis", newer)
    with pytest.raises(CatalogError, match="made by a newer boda.*upgrade boda"):
        scan(two_photos, workers=1)
    with Catalog(db, readonly=True) as catalog:
        assert catalog.get_setting("analysis") == newer


@pytest.mark.parametrize("versions", [[0], [-1], ["x"]])
def test_schema_versions_below_one_are_not_a_boda_catalog(two_photos, versions):
    scan(two_photos, workers=1)
    db = default_catalog_path(two_photos)
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM schema_version")
        con.executemany("INSERT INTO schema_version VALUES (?)", [(v,) for v in versions])
    for readonly in (True, False):
        with pytest.raises(CatalogError, match="is not a boda catalog \\(schema version"):
            Catalog(db, readonly=readonly)


def test_the_highest_of_two_schema_versions_counts(two_photos):
    scan(two_photos, workers=1)
    db = default_catalog_path(two_photos)
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO schema_version VALUES (5)")
    with pytest.raises(CatalogError, match="schema version 5, newer.*made by a newer boda"):
        Catalog(db)


# -- cosmetic -----------------------------------------------------------------------------------


def test_a_progress_bar_on_a_file_prints_nothing(capsys):
    from boda.cli._common import progress_bar

    with progress_bar("working") as update:
        update(1, 2)
    assert capsys.readouterr().err == ""


def test_matplotlib_does_not_warn_about_an_unwritable_config_folder(tmp_path, kodak_paths):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")  # nothing can be made under it, even by root
    env = {"XDG_CONFIG_HOME": str(blocked / "config"), "XDG_CACHE_HOME": str(blocked / "cache"),
           "HOME": str(blocked)}
    env = {**env, "MPLCONFIGDIR": ""}
    code = (
        "import os, sys; os.environ.pop('MPLCONFIGDIR', None)\n"
        f"sys.argv = ['boda', 'color', 'chromaticity', {str(kodak_paths[0])!r}, '-o', "
        f"{str(tmp_path / 'x.png')!r}]\n"
        "from boda.cli import main\n"
        "main()\n"
    )
    result = _python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "x.png").is_file()


def test_closing_a_catalog_removes_its_wal_files(two_photos, tmp_path):
    boda_dir = two_photos / ".boda"
    assert runner.invoke(app, ["scan", str(two_photos), "-q", "-w", "1"]).exit_code == 0
    assert runner.invoke(app, ["report", str(two_photos), "--json"]).exit_code == 0
    assert runner.invoke(app, ["report", str(two_photos), "--csv",
                               str(tmp_path / "x.csv")]).exit_code == 0
    assert sorted(p.name for p in boda_dir.iterdir()) == [
        "catalog.db", "catalog.db.lock", "report.html"
    ]


def test_json_cleaning_of_every_value_kind():
    # _clean's fast path for exact built-in types must give what the generic
    # checks give: NaN/inf as null, numpy values as Python ones, keys as text.
    import collections
    import math

    import numpy as np

    from boda.cli._common import _clean

    value = {
        "f": 1.5, "nan": math.nan, "inf": -math.inf, "i": 3, "b": True, "s": "x", "n": None,
        1: [np.float32(2.5), np.float64(np.nan), np.int64(7), np.bool_(False)],
        "t": (1.0, math.inf), "a": np.array([[1.0, np.nan]]),
        "o": collections.OrderedDict(k=math.nan), "sub": [np.float64(3.0)],
    }
    cleaned = _clean(value)
    assert cleaned == {
        "f": 1.5, "nan": None, "inf": None, "i": 3, "b": True, "s": "x", "n": None,
        "1": [2.5, None, 7, False], "t": [1.0, None], "a": [[1.0, None]],
        "o": {"k": None}, "sub": [3.0],
    }
    assert type(cleaned["1"][2]) is int and type(cleaned["sub"][0]) is float
