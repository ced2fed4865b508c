"""The commands of ``boda`` behave as one product: the same rules for outputs that
exist, for help, for JSON keys, for exit statuses and for error messages."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

from boda.cli import app
from boda.io import read_image, write_image

runner = CliRunner()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def work(tmp_path, kodak_paths):
    """A folder with a 64 px photo, its depth map, a hole mask, a trimap and a
    ``keep.png`` the user had (which no command may replace unasked)."""
    photo = read_image(kodak_paths[0], max_side=64)
    write_image(tmp_path / "photo.png", photo)
    depth = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    write_image(tmp_path / "depth.png", depth)
    hole = np.zeros((64, 64), np.float32)
    hole[20:30, 20:30] = 1
    write_image(tmp_path / "hole.png", hole)
    trimap = np.zeros((64, 64), np.float32)
    trimap[8:56, 8:56] = 0.5
    trimap[24:40, 24:40] = 1.0
    write_image(tmp_path / "trimap.png", trimap)
    write_image(tmp_path / "keep.png", photo[::-1])
    (tmp_path / "imgs").mkdir()  # a folder of images for the commands that read one
    write_image(tmp_path / "imgs" / "a.png", photo)
    return tmp_path


def _writers(w: Path, out: Path) -> dict[str, list[str]]:
    """Every command that writes a file the user names, writing ``out``."""
    photo = str(w / "photo.png")
    return {
        "edges": ["edges", photo, "-o", str(out)],
        "cutout": ["cutout", photo, "--mask", str(w / "trimap.png"), "--iterations", "1",
                   "-o", str(out)],
        "refocus": ["refocus", photo, "--depth", str(w / "depth.png"), "--focus-depth", "0.5",
                    "-o", str(out)],
        "inpaint": ["inpaint", photo, "--mask", str(w / "hole.png"), "-o", str(out)],
        "chromaticity": ["color", "chromaticity", photo, "--max-side", "32", "-o", str(out)],
        "hue-hist": ["color", "chromaticity", photo, "--max-side", "32", "-o",
                     str(w / "new_diagram.png"), "--hue-hist", str(out)],
        "explain": ["explain", photo, "-o", str(out)],
        "class-model": ["class-model", "--target", "3", "--steps", "2", "-o", str(out)],
        "patches": ["patches", str(w / "imgs"), "--channel", "0", "-k", "1", "-o", str(out)],
        "similar": ["similar", photo, str(w / "imgs"), "-k", "1", "-o", str(out)],
    }  # fmt: skip


WRITERS = ["edges", "cutout", "refocus", "inpaint", "chromaticity", "hue-hist", "explain",
           "class-model", "patches", "similar"]


# -- 1: no silent overwrite ----------------------------------------------------------------


@pytest.mark.parametrize("name", WRITERS)
def test_an_existing_file_is_not_replaced_without_overwrite(work, name):
    keep = work / "keep.png"
    before = _md5(keep)
    result = runner.invoke(app, _writers(work, keep)[name])
    assert result.exit_code == 2, result.output
    assert "'" + str(keep) + "' already exists; add --overwrite" in " ".join(result.output.split())
    assert _md5(keep) == before
    assert not (work / "new_diagram.png").exists()  # refused before any work


@pytest.mark.parametrize("name", ["edges", "inpaint", "hue-hist"])
def test_overwrite_replaces_the_file(work, name):
    keep = work / "keep.png"
    before = _md5(keep)
    result = runner.invoke(app, [*_writers(work, keep)[name], "--overwrite"])
    assert result.exit_code == 0, result.output
    assert _md5(keep) != before


def test_report_and_scan_outputs_are_not_replaced_but_their_own_report_is(folder, tmp_path):
    first = runner.invoke(app, ["scan", str(folder), "-q", "-w", "1"])
    assert first.exit_code == 0, first.output
    own = folder / ".boda" / "report.html"
    assert own.is_file()
    # boda's own report in its default place is rewritten, as after every scan
    assert runner.invoke(app, ["scan", str(folder), "-q", "-w", "1"]).exit_code == 0
    assert runner.invoke(app, ["report", str(folder)]).exit_code == 0
    named = ["--report", str(own)]
    assert runner.invoke(app, ["scan", str(folder), "-q", "-w", "1", *named]).exit_code == 0
    # files the user had are not
    mine = tmp_path / "mine.html"
    table = tmp_path / "mine.csv"
    for path in (mine, table):
        path.write_text("mine")
    for args in (["report", str(folder), "-o", str(mine)],
                 ["report", str(folder), "--csv", str(table)],
                 ["scan", str(folder), "-q", "-w", "1", "--report", str(mine)]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "add --overwrite" in result.output, args
    assert mine.read_text() == table.read_text() == "mine"
    result = runner.invoke(app, ["report", str(folder), "--csv", str(table), "--overwrite"])
    assert result.exit_code == 0 and table.read_text().startswith("path,status")
    # a special file is written into, as before
    assert runner.invoke(app, ["report", str(folder), "--csv", os.devnull]).exit_code == 0


def test_a_report_boda_wrote_elsewhere_is_rewritten_like_its_own(folder, tmp_path):
    # `make demo` twice: the report folder holds the page the first run wrote
    out = tmp_path / "reports"
    for _ in range(2):
        result = runner.invoke(app, ["scan", str(folder), "-q", "-w", "1", "--report", str(out)])
        assert result.exit_code == 0, result.output
    page = out / "index.html"
    assert runner.invoke(app, ["report", str(folder), "-o", str(page)]).exit_code == 0
    # so is a CSV table boda exported (its header is boda's)
    table = tmp_path / "scores.csv"
    for _ in range(2):
        result = runner.invoke(app, ["report", str(folder), "--csv", str(table)])
        assert result.exit_code == 0, result.output
    table.write_text("path,status,mine\n")
    assert runner.invoke(app, ["report", str(folder), "--csv", str(table)]).exit_code == 2
    assert table.read_text() == "path,status,mine\n"
    # the mark is what counts, not the name: a page of the user's is still refused
    page.write_text("<!doctype html><p>my notes</p>")
    result = runner.invoke(app, ["report", str(folder), "-o", str(out)])
    assert result.exit_code == 2 and "add --overwrite" in result.output
    assert page.read_text() == "<!doctype html><p>my notes</p>"


# -- 2, 3: -h everywhere; report --output ----------------------------------------------------


@cache
def _root():
    """The Click command tree of ``boda`` (built once: building it takes a moment)."""
    return typer.main.get_command(app)


def _commands():
    root = _root()
    found = [[]]
    for name, cmd in root.commands.items():
        found.append([name])
        for sub in getattr(cmd, "commands", {}):
            found.append([name, sub])
    return found


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "boda")
def test_h_is_help_everywhere(path):
    result = runner.invoke(app, [*path, "-h"])
    assert result.exit_code == 0 and result.output.startswith("Usage: boda")
    assert result.output == runner.invoke(app, [*path, "--help"]).output


def test_report_takes_output_like_every_command_and_out_still_works(folder, tmp_path):
    assert runner.invoke(app, ["scan", str(folder), "-q", "-w", "1"]).exit_code == 0
    for option, name in (("--output", "a.html"), ("-o", "b.html"), ("--out", "c.html")):
        result = runner.invoke(app, ["report", str(folder), option, str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_text().lower().startswith("<!doctype html>")
    shown = runner.invoke(app, ["report", "--help"]).output
    assert "--output" in shown and "--out " not in shown and "--out," not in shown


# -- 4: JSON keys --------------------------------------------------------------------------


def test_json_keys_are_the_same_across_commands(work):
    photo = str(work / "photo.png")
    seen = {}
    for name in ("edges", "cutout", "refocus", "inpaint", "chromaticity"):
        out = work / f"{name}.png"
        result = runner.invoke(app, [*_writers(work, out)[name], "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        seen[name] = data
        assert data["image"] == photo and data["output"] == str(out), name
        assert "input" not in data and "written" not in data
    for name in ("edges", "cutout"):
        assert (seen[name]["width"], seen[name]["height"]) == (64, 64)
        assert "shape" not in seen[name] and "size" not in seen[name]


# -- 5, 6: help ------------------------------------------------------------------------------


def _help(path: list[str], columns: int) -> str:
    """What ``boda PATH --help`` prints with ``COLUMNS=columns`` (CliRunner would fix
    Click's width at 80, so the contexts are made here as ``boda`` makes them)."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        cmd = _root()
        ctx = cmd.context_class(cmd, info_name="boda", **cmd.context_settings)
        for name in path:
            cmd = cmd.commands[name]
            ctx = cmd.context_class(cmd, info_name=name, parent=ctx, **cmd.context_settings)
        return cmd.get_help(ctx) + "\n"
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def test_help_reads_the_width_from_columns_when_piped():
    script = "import sys; sys.argv = ['boda', 'refocus', '-h']; from boda.cli import main; main()"
    env = {**os.environ, "COLUMNS": "60"}
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=env, check=True).stdout  # fmt: skip
    assert max(len(line) for line in shown.splitlines()) <= 60
    assert "--highlight-gain GAIN" in shown and "--resize-depth" in shown
    assert "boda refocus photo.jpg --depth depth.png \\\n" in shown


def _click(path: list[str]):
    cmd = _root()
    for name in path:
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("path", _commands()[1:], ids=lambda p: " ".join(p))
def test_help_shows_every_option_whole_and_fits_the_width(path, columns):
    text = _help(path, columns)
    assert "…" not in text and "[bold" not in text and "[/]" not in text
    assert "<bool>" not in text and "list[" not in text and "<str>" not in text
    assert all(len(line) <= max(columns, 60) for line in text.splitlines()), text
    assert not re.search(r"[A-Za-z]-\n", text), "a word broken at its hyphen"
    words = set(re.findall(r"[\w+-]+", text))
    for param in _click(path).params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        for name in param.opts + param.secondary_opts:
            assert name in words, f"{name} missing or cut in {' '.join(path)} --help"
        for word in re.findall(r"[\w+-]+", param.help or ""):
            assert word in words, f"'{word}' of {param.opts[0]} split in {' '.join(path)}"


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "boda")
def test_examples_are_whole_commands_and_the_exit_table_is_everywhere(path):
    raw = _click(path).epilog or ""
    assert "Exit status: 0 done" in raw
    if not path:
        return
    assert "Examples:" in raw
    wanted = [line.strip() for line in raw.splitlines() if line.strip().startswith("boda ")]
    assert wanted
    for columns in (60, 80):
        lines = _help(path, columns).splitlines()
        shown, i = [], 0
        while i < len(lines):
            line = lines[i].strip()
            while line.endswith(" \\") and i + 1 < len(lines):  # a continued command
                i += 1
                line = line[:-2] + " " + lines[i].strip()
            if line.startswith("boda "):
                shown.append(line)
            i += 1
        assert [s for s in shown if s in wanted] == wanted, (columns, shown)


def test_help_names_what_the_option_accepts():
    """An option's help says every form it takes: ``--illuminant`` takes an X,Y,Z white
    (its metavar said NAME|X,Y only), ``cutout -o`` writes transparency to every format
    ``can_write_alpha`` names among the photo formats (AVIF and HEIC were left out), and
    ``-t`` says a flag is given once (a second value is refused)."""
    from boda.io import can_write_alpha

    for path in (["color", "convert"], ["color", "diff"]):
        (option,) = [p for p in _click(path).params if "--illuminant" in p.opts]
        assert "X,Y,Z" in option.metavar, path
    (output,) = [p for p in _click(["cutout"]).params if "--output" in p.opts]
    for suffix, name in (("png", "PNG"), ("webp", "WebP"), ("tif", "TIFF"), ("avif", "AVIF"),
                         ("heic", "HEIC")):
        assert can_write_alpha(f"cut.{suffix}")
        assert name in output.help, name
    (threshold,) = [p for p in _click(["scan"]).params if "--threshold" in p.opts]
    assert "once per flag" in threshold.help and "exact_duplicate has none" in threshold.help


# -- 7: negative numbers -------------------------------------------------------------------


def test_color_values_may_be_negative_without_a_double_dash():
    result = runner.invoke(app, ["color", "convert", "--from", "lab", "--to", "srgb",
                                 "50", "-20", "30", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    plain = runner.invoke(app, ["color", "convert", "--from", "lab", "--to", "srgb", "--json",
                                "--", "50", "-20", "30"])  # fmt: skip
    assert json.loads(result.stdout) == json.loads(plain.stdout)
    diff = runner.invoke(app, ["color", "diff", "-5,0,0", "0,0,0", "--method", "cie1976"])
    assert diff.exit_code == 0 and "5.0000" in diff.stdout
    typo = runner.invoke(app, ["color", "convert", "0.2", "0.4", "0.6", "--jsno"])
    assert typo.exit_code == 2 and "no such option: --jsno" in typo.output


# -- 8, 9: exit statuses and error messages ------------------------------------------------


def _missing_input_runs(w: Path) -> list[list[str]]:
    gone = str(w / "gone.png")
    photo = str(w / "photo.png")
    return [
        ["quality", gone], ["quality", photo, "--reference", gone],
        ["edges", gone, "-o", str(w / "e.png")],
        ["cutout", gone, "--rect", "1,1,9,9", "-o", str(w / "c.png")],
        ["cutout", photo, "--mask", gone, "-o", str(w / "c.png")],
        ["refocus", gone, "-d", str(w / "depth.png"), "--focus-depth", "0.5", "-o",
         str(w / "r.png")],
        ["refocus", photo, "-d", gone, "--focus-depth", "0.5", "-o", str(w / "r.png")],
        ["inpaint", gone, "-m", str(w / "hole.png"), "-o", str(w / "i.png")],
        ["inpaint", photo, "-m", gone, "-o", str(w / "i.png")],
        ["explain", gone], ["explain", photo, "--model", str(w / "gone.pt")],
        ["color", "chromaticity", gone, "-o", str(w / "d.png")],
        ["color", "measure", gone],
        ["color", "convert", "--file", str(w / "gone.csv")],
        ["scan", str(w / "gone")], ["report", str(w / "gone")],
        ["report", str(w), "--catalog", str(w / "gone.db")],
    ]  # fmt: skip


def test_a_missing_input_is_a_usage_error_for_every_command(work):
    for args in _missing_input_runs(work):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "gone" in result.output and result.output.startswith("error:"), args
    assert {p.name for p in work.iterdir()} == {
        "photo.png", "depth.png", "hole.png", "trimap.png", "keep.png", "imgs"
    }  # nothing written, no folder made


def test_a_file_that_cannot_be_decoded_is_a_failure(work):
    broken = work / "broken.png"
    broken.write_bytes(b"not an image")
    assert runner.invoke(app, ["quality", str(broken)]).exit_code == 1
    result = runner.invoke(app, ["inpaint", str(work / "photo.png"), "-m", str(broken), "-o",
                                 str(work / "i.png")])  # fmt: skip
    assert result.exit_code == 1 and "--mask" in result.output


def test_report_output_that_is_an_existing_image_is_a_clear_usage_error(folder):
    assert runner.invoke(app, ["scan", str(folder), "-q", "-w", "1"]).exit_code == 0
    photo = folder / "b.png"
    for args in (["report", str(folder), "-o", str(photo)],
                 ["scan", str(folder), "-q", "--report", str(photo)]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        flat = " ".join(result.output.split())
        assert "is an existing file that is not .html" in flat or "refusing" in flat
    outside = folder.parent / "outside.png"
    outside.write_bytes(photo.read_bytes())
    result = runner.invoke(app, ["report", str(folder), "-o", str(outside)])
    assert result.exit_code == 2
    assert "is an existing file that is not .html; give a .html file or a folder" in " ".join(
        result.output.split()
    )


@pytest.mark.parametrize(
    "args, option",
    [(["scan", "{w}", "--workers", "0"], "--workers"),
     (["scan", "{w}", "--max-side", "0"], "--max-side"),
     (["edges", "{photo}", "--max-side", "0", "-o", "{w}/e.png"], "--max-side"),
     (["edges", "{photo}", "-m", "sobel", "--low", "0.5", "-o", "{w}/e.png"], "--low"),
     (["cutout", "{photo}", "--rect", "0,0,64,64", "-o", "{w}/c.png"], "--rect"),
     (["cutout", "{photo}", "--rect", "1,1,9,9", "--iterations", "0", "-o", "{w}/c.png"],
      "--iterations"),
     (["refocus", "{photo}", "-d", "{w}/depth.png", "--focus-at", "999,1", "-o", "{w}/r.png"],
      "--focus-at"),
     (["refocus", "{photo}", "-d", "{w}/depth.png", "--focus-depth", "0.5", "-a", "-1", "-o",
       "{w}/r.png"], "--aperture"),
     (["inpaint", "{photo}", "-m", "{w}", "-o", "{w}/i.png"], "--mask"),
     (["quality", "{photo}", "-r", "{w}"], "--reference")],
)  # fmt: skip
def test_errors_name_the_options_not_library_parameters(work, args, option):
    argv = [a.format(w=work, photo=work / "photo.png") for a in args]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert option in result.output
    library_names = r"(?<![-\w])(workers|max_side|focus_at|iterations|aperture) "
    assert not re.search(library_names, result.output)


# -- 10: a failed run leaves no folder it made ---------------------------------------------


def test_a_failed_run_removes_the_folders_it_made_and_nothing_else(work, monkeypatch):
    import boda.io
    from boda.errors import OutputError

    def failing_write(path, image, **kwargs):
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # as the real write does
        raise OutputError(f"cannot write {str(path)!r} (No space left on device)")

    (work / "was_here").mkdir()
    monkeypatch.setattr(boda.io, "write_image", failing_write)
    result = runner.invoke(app, ["edges", str(work / "photo.png"), "-o",
                                 str(work / "was_here" / "new" / "deep" / "e.png")])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert (work / "was_here").is_dir() and not (work / "was_here" / "new").exists()
    monkeypatch.undo()
    ok = runner.invoke(app, ["edges", str(work / "photo.png"), "-o", str(work / "n" / "e.png")])
    assert ok.exit_code == 0 and (work / "n" / "e.png").is_file()  # made when it succeeds


# -- 11: smaller rules ---------------------------------------------------------------------


def test_report_csv_dash_is_stdout_and_contradictions_are_refused(folder):
    assert runner.invoke(app, ["scan", str(folder), "-q", "-w", "1"]).exit_code == 0
    result = runner.invoke(app, ["report", str(folder), "--csv", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("path,status,") and len(result.stdout.splitlines()) == 6
    assert not Path("-").exists()
    both = runner.invoke(app, ["scan", str(folder), "--report", "x.html", "--no-report"])
    assert both.exit_code == 2 and "contradict" in both.output
    assert not Path("x.html").exists()


def test_explain_methods_accumulate_and_alpha_is_checked_without_output(work):
    photo = str(work / "photo.png")
    bad = runner.invoke(app, ["explain", photo, "--alpha", "2"])
    assert bad.exit_code == 2 and "--alpha" in bad.output
    pytest.importorskip("torch")
    result = runner.invoke(app, ["explain", photo, "--method", "saliency,gradcam",
                                 "--method", "gradcam", "--method", "cam", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)["maps"]) == ["saliency", "gradcam", "cam"]


def _main_script(argv: list[str], before: str = "") -> list[str]:
    return [sys.executable, "-c",
            f"import sys\n{before}\nsys.argv = ['boda', *{argv!r}]\n"
            "from boda.cli import main\nmain()"]  # fmt: skip


def test_ctrl_c_says_interrupted_like_sigterm(work):
    slow = (
        "import time, boda.quality\n"
        "def slow(*a, **k):\n"
        "    sys.stderr.write('ready\\n'); sys.stderr.flush(); time.sleep(60)\n"
        "boda.quality.analyze = slow"
    )
    for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        proc = subprocess.Popen(
            _main_script(["quality", str(work / "photo.png")], slow),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stderr.readline().strip() == "ready"
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == status
        assert err.strip() == "interrupted"


def test_human_output_to_a_closed_stdout_fails_like_json():
    runs = {}
    for extra in ([], ["--json"]):
        runs[bool(extra)] = subprocess.run(
            _main_script(["color", "convert", "0.2", "0.4", "0.6", *extra]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: os.close(1),
        )
    assert runs[False].returncode == runs[True].returncode == 1
    assert runs[False].stderr == runs[True].stderr
    assert runs[False].stderr.startswith("error: standard output is closed")
