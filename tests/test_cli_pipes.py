"""A reader that goes away (``boda ... | head -1``): every command ends quietly with
status 141 (128 + SIGPIPE), as cat and git do, with no traceback and no
"Exception ignored" line; a stream whose reader is still there keeps its data.

Real pipes in a subprocess: the output is far larger than a pipe holds (64 KiB),
so the command is still writing when the reader closes its end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from boda.catalog import Catalog, ImageRecord, default_catalog_path
from boda.cli import EXIT_BROKEN_PIPE
from boda.cli._common import EXIT_STATUS_HELP

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX pipes")

RECORDS = 4000


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    """A folder whose catalog lists :data:`RECORDS` files (empty files on disk: the
    exports read only the catalog, but --paths lists only the files still there)."""
    root = tmp_path_factory.mktemp("pipes") / "photos"
    root.mkdir()
    records = [
        ImageRecord(
            f"folder_{i % 10}/image_{i:05d}.jpg".encode(), 10, 1, "ok", width=4, height=3,
            format="JPEG", pixel_hash=f"{i:032x}", phash=i * 7919,
            scores={"blurry": 0.5, "dark": 0.1}, extra={"dominant_colors": []},
            thumbnail=b"\xff\xd8",
        )
        for i in range(RECORDS)
    ]
    with Catalog(default_catalog_path(root)) as catalog:
        catalog.write_batch(records)
    for i in range(10):
        (root / f"folder_{i}").mkdir()
    for record in records:
        (root / record.relpath.decode()).touch()
    return root


def _first_line(*args: str, cwd: Path | None = None) -> tuple[int, bytes, str]:
    """Run ``boda ARGS``, read one line of its stdout, close the pipe; return the
    exit status, the line and everything written to stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "boda", *args], cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, line, err


def test_the_status_is_128_plus_sigpipe_and_documented():
    assert EXIT_BROKEN_PIPE == 128 + signal.SIGPIPE == 141
    assert "141 output cut short" in EXIT_STATUS_HELP


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (["--json"], b"[\n"),
        (["--paths"], b"folder_0/image_00000.jpg\n"),
        (["--csv", "-"], b"path,status,"),
    ],
    ids=["json", "paths", "csv"],
)
def test_report_into_a_closed_pipe_ends_quietly_with_141(scanned, args, first):
    status, line, err = _first_line("report", str(scanned), *args)
    assert err == ""
    assert status == EXIT_BROKEN_PIPE
    if first.startswith(b"folder"):
        first = os.fsencode(scanned) + b"/" + first
    assert line.startswith(first)


def test_human_output_into_a_closed_pipe_ends_quietly_with_141(tmp_path):
    colours = tmp_path / "colours.csv"
    colours.write_text("0.1,0.2,0.3\n" * 5000)
    status, line, err = _first_line("color", "convert", "--file", str(colours))
    assert (status, err) == (EXIT_BROKEN_PIPE, "")
    assert line.startswith(b"srgb 0.1000 0.2000 0.3000  ->  lab")


def test_a_broken_pipe_removes_the_folders_the_command_created(scanned, tmp_path):
    # --json goes first: the report's folders (checked, not yet written) are removed
    # as when the command fails or is interrupted.
    html = tmp_path / "new" / "deeper" / "r.html"
    status, _, err = _first_line("report", str(scanned), "--json", "-o", str(html))
    assert (status, err) == (EXIT_BROKEN_PIPE, "")
    assert not (tmp_path / "new").exists()


def test_stdout_keeps_its_data_when_only_stderr_is_broken(scanned, tmp_path):
    # The note on stderr fails after the whole JSON went to stdout: stdout is not
    # thrown away (Rich's own broken-pipe handler would put /dev/null over it).
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "boda", "report", str(scanned), "--json",
             "--csv", str(tmp_path / "t.csv")],
            stdout=subprocess.PIPE, stderr=write, check=False,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.returncode == EXIT_BROKEN_PIPE
    assert len(json.loads(done.stdout)) == RECORDS


# --quiet: the progress bars on stderr can be turned off without --json.


@pytest.fixture
def bars(monkeypatch) -> list[tuple[str, bool]]:
    """Every progress bar a command opens, as ``(label, enabled)``."""
    import contextlib

    import boda.cli.color_cmd
    import boda.cli.cutout_cmd
    import boda.cli.edges_cmd
    import boda.cli.edit_cmd
    import boda.cli.probe_cmd
    import boda.cli.quality_cmd
    import boda.cli.scan_cmd

    opened: list[tuple[str, bool]] = []

    @contextlib.contextmanager
    def recorded(label, *, enabled=True):
        opened.append((label, enabled))
        yield lambda done, total: None

    for module in (boda.cli.color_cmd, boda.cli.cutout_cmd, boda.cli.edges_cmd,
                   boda.cli.edit_cmd, boda.cli.probe_cmd, boda.cli.quality_cmd,
                   boda.cli.scan_cmd):  # fmt: skip
        monkeypatch.setattr(module, "progress_bar", recorded)
    return opened


def test_quiet_turns_every_progress_bar_off(bars, scanned, tmp_path):
    import numpy as np
    from typer.testing import CliRunner

    from boda.cli import app
    from boda.io import write_image

    photo, hole = tmp_path / "p.png", tmp_path / "hole.png"
    write_image(photo, np.random.default_rng(0).random((40, 50, 3)).astype(np.float32))
    marks = np.zeros((40, 50), np.float32)
    marks[10:20, 10:20] = 1
    write_image(hole, marks)
    out = tmp_path / "out"
    replace = "--overwrite"  # each command runs twice
    commands = {
        "edges": ["edges", str(photo), "-o", str(out / "e.png"), replace],
        "cutout": ["cutout", str(photo), "--rect", "5,5,30,25", "--iterations", "1",
                   "-o", str(out / "c.png"), replace],
        "refocus": ["refocus", str(photo), "--depth", str(hole), "--focus-depth", "0",
                    "-o", str(out / "r.png"), replace],
        "inpaint": ["inpaint", str(photo), "--mask", str(hole), "-o", str(out / "i.png"),
                    replace],
        "quality": ["quality", str(photo), "--reference", str(photo)],
        "color measure": ["color", "measure", str(photo), "-k", "2"],
        "report": ["report", str(scanned), "--csv", str(out / "t.csv"), replace],
        "class-model": ["class-model", "-t", "cat", "--steps", "1", "-o", str(out / "m.png"),
                        replace],
    }  # fmt: skip
    runner = CliRunner()
    for name, args in commands.items():
        for quiet in ([], ["--quiet"]):
            bars.clear()
            result = runner.invoke(app, [*args, *quiet])
            assert result.exit_code == 0, (name, result.output)
            assert bars and all(enabled != bool(quiet) for _, enabled in bars), (name, bars)
    for short in (["quality", str(photo), "--reference", str(photo), "-q"],
                  ["color", "measure", str(photo), "-q"],
                  ["report", str(scanned), "--csv", str(out / "t2.csv"), "-q"],
                  ["class-model", "-t", "1", "--steps", "1", "-o", str(out / "m2.png"),
                   "-q"]):  # fmt: skip
        bars.clear()
        assert runner.invoke(app, short).exit_code == 0
        assert bars and not any(enabled for _, enabled in bars)
