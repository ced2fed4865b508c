"""boda scan end to end: flags, incremental re-scans, bad files, interruption, no writes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

import boda.scan as scan_module
from boda.catalog import Catalog, default_catalog_path
from boda.cli import app
from boda.io import read_image, write_image
from boda.scan import default_thresholds, flag_descriptions, scan

runner = CliRunner()


def _png_with_huge_header(path: Path, width: int, height: int) -> None:
    """A tiny file whose header claims an enormous image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


@pytest.fixture
def photo_folder(tmp_path, kodak_paths) -> Path:
    """Real photos plus variants that should raise every flag."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    sharp = [read_image(p) for p in kodak_paths[:4]]
    for i, img in enumerate(sharp):
        write_image(root / f"sharp{i}.jpg", img, quality=92)
    write_image(root / "blurry.jpg", ndimage.gaussian_filter(sharp[0], (4, 4, 0)), quality=92)
    write_image(root / "dark.jpg", sharp[1] ** 2.2 * 0.08, quality=92)
    write_image(root / "light.jpg", 1 - (1 - sharp[2]) * 0.05, quality=92)
    flat = np.full((300, 300, 3), 0.5, np.float32)
    write_image(root / "empty.png", flat)
    write_image(root / "strip.jpg", sharp[3][200:260], quality=92)  # 500x60: aspect 8.3
    gray = sharp[3] @ np.array([0.299, 0.587, 0.114], np.float32)
    write_image(root / "gray as rgb.jpg", np.repeat(gray[:, :, None], 3, axis=2), quality=90)
    shutil.copy(root / "sharp1.jpg", root / "sub" / "copy of sharp1.jpg")
    small = sharp[2][::2, ::2]
    write_image(root / "sub" / "sharp2 small.jpg", small, quality=70)
    return root


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        if ".boda" in path.parts or not path.is_file():
            continue
        out[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def _flags_by_name(catalog_path: Path) -> dict[str, set[str]]:
    with Catalog(catalog_path, readonly=True) as catalog:
        out: dict[str, set[str]] = {}
        for record in catalog.records():
            for name in record.flags:
                out.setdefault(name, set()).add(record.path)
        return out


def test_scan_flags_every_problem(photo_folder):
    before = _snapshot(photo_folder)
    summary = scan(photo_folder, workers=1)
    assert summary.total == 12 and summary.analysed == 12 and not summary.failed
    flags = _flags_by_name(summary.catalog_path)
    assert summary.flag_counts == {name: len(flags.get(name, ())) for name in flag_descriptions()}
    assert summary.flag_counts["odd_size"] == 0  # the 500x60 strip is 8.3 times off
    assert "blurry.jpg" in flags["blurry"]
    assert "dark.jpg" in flags["dark"]
    assert "light.jpg" in flags["light"]
    assert "empty.png" in flags["low_information"]
    assert flags["odd_aspect_ratio"] == {"strip.jpg"}
    # a flat gray frame and a washed-out white one are colourless too
    assert flags["grayscale"] == {"gray as rgb.jpg", "empty.png", "light.jpg"}
    assert flags["exact_duplicate"] == {"sharp1.jpg", "sub/copy of sharp1.jpg"}
    assert {"sharp2.jpg", "sub/sharp2 small.jpg"} <= flags["near_duplicate"]
    sharp_flagged = {f"sharp{i}.jpg" for i in range(4)} & (
        flags.get("blurry", set()) | flags.get("dark", set()) | flags.get("light", set())
        | flags.get("low_information", set())
    )
    assert not sharp_flagged, f"sharp photos wrongly flagged: {sharp_flagged}"
    assert _snapshot(photo_folder) == before, "the scan must never modify user files"
    assert sorted(p.name for p in photo_folder.iterdir() if p.name.startswith(".")) == [".boda"]


def test_incremental_rescan(photo_folder, kodak_paths):
    first = scan(photo_folder, workers=1)
    assert first.analysed == 12
    second = scan(photo_folder, workers=1)
    assert (second.analysed, second.unchanged, second.removed) == (0, 12, 0)
    os.remove(photo_folder / "strip.jpg")
    write_image(photo_folder / "new.png", read_image(kodak_paths[4]))
    changed = photo_folder / "sharp0.jpg"
    write_image(changed, read_image(kodak_paths[5]), quality=90)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = scan(photo_folder, workers=1)
    assert (third.analysed, third.unchanged, third.removed) == (2, 10, 1)
    assert "odd_aspect_ratio" not in _flags_by_name(third.catalog_path)


def test_flags_from_a_fresh_scan_equal_flags_from_the_catalog(photo_folder):
    """A fresh scan derives flags from the records in memory, a rescan from the
    catalog; both must give the same rows, duplicate group numbers included."""

    def flag_rows(db):
        with sqlite3.connect(db) as con:
            return sorted(con.execute(
                "SELECT i.relpath, f.name, f.score, f.group_id FROM flags f "
                "JOIN images i ON i.id = f.image_id"
            ).fetchall())

    first = scan(photo_folder, workers=1)
    fresh = flag_rows(first.catalog_path)
    again = scan(photo_folder, workers=1)
    assert again.unchanged == 12 and flag_rows(again.catalog_path) == fresh
    assert again.flag_counts == first.flag_counts
    assert any(group for *_, group in fresh)  # duplicate groups were compared too


def test_another_analysis_reanalyses_every_file(photo_folder):
    """A catalog from another max_side or boda version never mixes kinds of scores."""
    scan(photo_folder, workers=1)
    other_side = scan(photo_folder, workers=1, max_side=320)
    assert (other_side.analysed, other_side.unchanged) == (12, 0)
    assert (scan(photo_folder, workers=1, max_side=320).analysed) == 0
    with Catalog(other_side.catalog_path) as catalog:  # as if an older boda made it
        catalog.set_setting("analysis", {"version": 1, "max_side": 320})
    again = scan(photo_folder, workers=1, max_side=320)
    assert (again.analysed, again.unchanged) == (12, 0)
    with Catalog(again.catalog_path, readonly=True) as catalog:
        assert catalog.get_setting("analysis")["version"] == scan_module.ANALYSIS_VERSION


def test_threshold_override_reflags_without_reanalysis(photo_folder):
    scan(photo_folder, workers=1)
    summary = scan(photo_folder, workers=1, thresholds={"odd_aspect_ratio": 100.0})
    assert summary.analysed == 0
    assert "odd_aspect_ratio" not in _flags_by_name(summary.catalog_path)
    with pytest.raises(ValueError, match="unknown flag"):
        scan(photo_folder, workers=1, thresholds={"sharpish": 1.0})


def test_bad_files_are_recorded_and_scan_continues(tmp_path, kodak_paths):
    root = tmp_path / "bad"
    root.mkdir()
    good = read_image(kodak_paths[0])
    write_image(root / "good.jpg", good)
    data = (root / "good.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "zero.jpg").write_bytes(b"")
    (root / "random.jpg").write_bytes(np.random.default_rng(0).bytes(4096))
    _png_with_huge_header(root / "huge.png", 100_000, 100_000)
    os.symlink("loop_b.jpg", root / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "loop_b.jpg")
    os.symlink(root, root / "dir_loop")  # a folder link back to the root: not followed
    os.mkfifo(root / "pipe.png")
    write_image(root / "사진 ünïcødé.jpg", good)
    non_utf8 = os.fsencode(str(root)) + b"/caf\xe9.png"
    with open(non_utf8, "wb") as fh:
        fh.write((root / "good.jpg").read_bytes())
    result = runner.invoke(app, ["scan", str(root), "--workers", "1", "--quiet"])
    assert result.exit_code == 3, result.output
    records = json.loads(runner.invoke(app, ["report", str(root), "--json"]).stdout)
    by_path = {r["path"]: r for r in records}
    assert by_path["good.jpg"]["status"] == "ok"
    assert by_path["사진 ünïcødé.jpg"]["status"] == "ok"
    assert by_path["caf\\xe9.png"]["status"] == "ok"
    assert bytes.fromhex(by_path["caf\\xe9.png"]["path_bytes_hex"]) == b"caf\xe9.png"
    reasons = {p: r["error"] for p, r in by_path.items() if r["status"] == "error"}
    assert "truncated" in reasons["truncated.jpg"]
    assert "empty" in reasons["zero.jpg"]
    assert "not a recognised image" in reasons["random.jpg"]
    assert "exceeds the limit" in reasons["huge.png"]
    assert "loop" in reasons["loop_a.jpg"] and "loop" in reasons["loop_b.jpg"]
    assert "not a regular file" in reasons["pipe.png"]
    html = (root / ".boda" / "report.html").read_text(encoding="utf-8")
    for name in ("truncated.jpg", "zero.jpg", "random.jpg", "huge.png", "pipe.png"):
        assert name in html
    with Catalog(default_catalog_path(root), readonly=True) as catalog:
        assert catalog.integrity_check() == "ok"


def test_exact_duplicates_in_parallel_scan(photo_folder):
    summary = scan(photo_folder, workers=2)
    assert summary.analysed == 12 and not summary.failed
    serial = scan(photo_folder, workers=1, catalog_path=photo_folder.parent / "serial.db")
    with Catalog(summary.catalog_path, readonly=True) as a, Catalog(
        serial.catalog_path, readonly=True
    ) as b:
        ra = {r.path: (r.scores, sorted(r.flags)) for r in a.records()}
        rb = {r.path: (r.scores, sorted(r.flags)) for r in b.records()}
    # The same flags, and the same scores up to a last bit (NumPy's SIMD sums round
    # with an array's alignment, which differs between processes).
    assert {p: flags for p, (_, flags) in ra.items()} == {p: flags for p, (_, flags) in rb.items()}
    for path, (scores, _) in ra.items():
        assert scores.keys() == rb[path][0].keys(), path
        assert scores == pytest.approx(rb[path][0], rel=1e-12, abs=1e-15), path


def _many_images(root: Path, kodak_paths, n: int) -> None:
    root.mkdir()
    rng = np.random.default_rng(1)
    base = [read_image(p, max_side=200) for p in kodak_paths]
    for i in range(n):
        img = base[i % len(base)] * rng.uniform(0.7, 1.0)
        write_image(root / f"img{i:03d}.jpg", img, quality=85)


def _row_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_scan_keeps_committed_results(tmp_path, kodak_paths, sig):
    root = tmp_path / "many"
    n = 160
    _many_images(root, kodak_paths, n)
    db = default_catalog_path(root)
    cmd = [sys.executable, "-m", "boda.cli", "scan", str(root), "--workers", "2", "--quiet",
           "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _row_count(db) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("scan finished before it could be interrupted")
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    # The workers die with the scan (they hold its stderr open until they do) and
    # print nothing: orphans used to finish their batch into a broken pipe.
    err = proc.communicate(timeout=20)[1]
    if code == 0 and _row_count(db) == n:  # on a loaded machine it can end first
        pytest.skip("scan finished before the signal reached it")
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    assert b"Traceback" not in err, err.decode(errors="replace")
    kept = _row_count(db)
    assert 0 < kept < n
    with Catalog(db) as catalog:
        assert catalog.integrity_check() == "ok"
    summary = scan(root, workers=2)
    assert summary.unchanged >= kept - 1 and summary.analysed + summary.unchanged == n
    assert _row_count(db) == n


def test_cli_scan_json_and_report_exports(photo_folder, tmp_path):
    result = runner.invoke(app, ["scan", str(photo_folder), "--json", "-w", "1", "--describe"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["total"] == 12 and summary["flag_counts"]["exact_duplicate"] == 2
    assert summary["describe"] is True and summary["remembered_describe"] is False
    report = Path(summary["report"])
    html = report.read_text(encoding="utf-8")
    assert "data:image/jpeg;base64," in html and "<svg" in html and "group 1" in html
    assert 'class="swatches"' in html and "Unreadable files (0)" in html
    records = json.loads(runner.invoke(app, ["report", str(photo_folder), "--json"]).stdout)
    by_path = {r["path"]: r for r in records}
    assert by_path["empty.png"]["scores"]["edge_density"] == 0.0
    assert by_path["sharp0.jpg"]["scores"]["edge_density"] > 0.02
    assert by_path["sharp0.jpg"]["scores"]["colorfulness"] > by_path["gray as rgb.jpg"]["scores"][
        "colorfulness"
    ]
    assert len(by_path["sharp0.jpg"]["extra"]["dominant_colors"]) == 5
    csv_path = tmp_path / "scores.csv"
    result = runner.invoke(app, ["report", str(photo_folder), "--csv", str(csv_path)])
    assert result.exit_code == 0, result.output
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(
        "path,status,error,width,height,format,mode,channels,bit_depth,has_alpha,taken,camera,"
        "flags"
    )
    assert len(lines) == 13
    out = tmp_path / "r" / "report.html"
    assert runner.invoke(app, ["report", str(photo_folder), "-o", str(out)]).exit_code == 0
    assert out.exists()


def test_cli_errors_are_clean(tmp_path):
    result = runner.invoke(app, ["scan", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "run 'boda scan'" in result.output
    result = runner.invoke(app, ["scan", str(tmp_path), "-t", "blurry"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output
    assert "blurry" in default_thresholds()


@pytest.mark.parametrize("shape", [(640, 427, 3), (101, 2000, 3), (333, 333), (3, 900, 3)])
def test_shrink_is_the_block_mean(shape, rng):
    from boda.scan import analyze_pixels  # noqa: F401  (the public entry that uses shrink)
    from boda.scan._analyze import shrink

    pixels = rng.random(shape, dtype=np.float32)
    small = shrink(pixels, 200)
    factor = -(-max(shape[:2]) // 200)
    assert max(small.shape[:2]) <= 200 and small.ndim == pixels.ndim
    h, w = shape[0] // factor, shape[1] // factor
    if h and w:
        blocks = pixels[: h * factor, : w * factor].reshape(h, factor, w, factor, *shape[2:])
        np.testing.assert_allclose(small, blocks.mean(axis=(1, 3)), atol=1e-6)


def test_scans_leave_the_callers_opencv_threads_and_environment_alone(tmp_path, kodak_paths):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    folders = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for p in kodak_paths[:2]:
            shutil.copy(p, tmp_path / name / p.name)
        folders.append(tmp_path / name)
    env_before, threads_before = dict(os.environ), cv2.getNumThreads()
    for _ in range(3):  # two scans forking their pools at the same time
        barrier = threading.Barrier(2)

        def job(folder, barrier=barrier):
            barrier.wait()
            return scan(folder, workers=2, max_side=64).analysed

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(job, folders)) == [2, 2]
        for folder in folders:
            shutil.rmtree(folder / ".boda")
        assert cv2.getNumThreads() == threads_before
    assert dict(os.environ) == env_before
