"""What the docs tell a user to paste works as pasted (session 28's audit of README.md,
docs/*.md and the ``--help`` examples).

``boda report DIR --only redundant --print0 | xargs -0 mv -t rejects/`` was shown without
the folder it moves into: ``mv -t`` makes none, so the line failed (xargs exit 123) and
moved nothing; with nothing selected, ``mv`` ran once with no file and failed too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import typer.main
from test_docs_examples import DOC_FILES, SHELL_LANGS, _fenced_blocks, _text_outside_fences

from boda.cli import app

REPO = Path(__file__).resolve().parents[1]

#: ``| xargs [OPTIONS] mv|cp ... -t FOLDER``: a pipe that moves or copies into a folder.
_XARGS_INTO = re.compile(
    r"\|\s*xargs\s+(?P<opts>(?:-\S+\s+)*)(?:mv|cp)\b.*?\s-t\s+(?P<folder>[^\s;|)]+)"
)
_MKDIR = re.compile(r"\bmkdir -p\s+(?P<folders>[^#;|&)`]+)")


def _folders_made(text: str) -> set[str]:
    return {f.rstrip("/") for m in _MKDIR.finditer(text) for f in m["folders"].split()}


def _xargs_problems(where: str, lines: list[str]) -> list[str]:
    """Each ``| xargs ... -t FOLDER`` line needs ``-r`` (no empty run) and an earlier
    ``mkdir -p FOLDER`` among ``lines``."""
    problems, made = [], set()
    for line in lines:
        made |= _folders_made(line.split("|")[0])
        pipe = _XARGS_INTO.search(line)
        if pipe is None:
            continue
        options = pipe["opts"].split()
        if not {"-r", "--no-run-if-empty"} & set(options) and not any(
            o.startswith("-") and not o.startswith("--") and "r" in o for o in options
        ):
            problems.append(
                f"{where}: `{line.strip()}` runs mv/cp with no file when "
                "nothing is selected: add xargs -r"
            )
        if pipe["folder"].rstrip("/") not in made:
            problems.append(
                f"{where}: `{line.strip()}` moves into {pipe['folder']}, which "
                "no earlier `mkdir -p` makes (mv -t / cp -t make no folder)"
            )
    return problems


def _help_epilogs() -> dict[str, str]:
    found = {}

    def walk(cmd, name: str) -> None:
        for sub_name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, f"{name} {sub_name}")
        if cmd.epilog:
            found[name] = cmd.epilog

    walk(typer.main.get_command(app), "boda")
    return found


def test_every_move_into_a_folder_makes_the_folder_first():
    problems = []
    for path in DOC_FILES:
        rel = path.relative_to(REPO)
        for block in _fenced_blocks(path):
            if block.lang in SHELL_LANGS:
                problems += _xargs_problems(block.id, block.code.splitlines())
        text = _text_outside_fences(path)
        for paragraph in re.split(r"\n\s*\n", text):  # prose: the paragraph must say mkdir
            made = " ".join(sorted(_folders_made(paragraph)))
            for span in re.findall(r"(?<!`)`(boda [^`]+\| *xargs[^`]+)`", paragraph):
                lines = [f"mkdir -p {made}"] if made else []
                problems += _xargs_problems(str(rel), [*lines, " ".join(span.split())])
    for name, epilog in _help_epilogs().items():
        problems += _xargs_problems(f"{name} --help", epilog.splitlines())
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_missing_folder_and_a_missing_r():
    bad = ["boda report d --only redundant --print0 | xargs -0 mv -t rejects/"]
    assert len(_xargs_problems("x", bad)) == 2
    good = [
        "mkdir -p best rejects",
        "boda report d --only picked --print0 | xargs -0 -r cp -t best/",
    ]
    assert _xargs_problems("x", good) == []


def _block_holding(doc: str, text: str) -> str:
    return next(b.code for b in _fenced_blocks(REPO / "docs" / doc) if text in b.code)


def _run_as_bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    boda = f'boda() {{ "{sys.executable}" -m boda "$@"; }}\nset -e -o pipefail\n'
    return subprocess.run(
        ["bash", "-c", boda + script], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_documented_move_runs_with_and_without_copies(tmp_path):
    """scan.md's "Acting on the results" block, pasted into bash: the copy lands in
    rejects/, and a folder with nothing redundant moves nothing and still succeeds."""
    from boda.io import read_image, write_image
    from boda.scan import scan

    block = _block_holding("scan.md", "--only redundant --print0 | xargs")
    kodak = REPO / "tests" / "data" / "kodak"
    for name in ("with", "without"):
        folder = tmp_path / name / "trip"
        folder.mkdir(parents=True)
        for photo in ("kodim01", "kodim05"):
            write_image(folder / f"{photo}.png", read_image(kodak / f"{photo}.png", max_side=64))
        if name == "with":
            (folder / "kodim01 copy.png").write_bytes((folder / "kodim01.png").read_bytes())
        scan(folder, workers=1)
        script = block.replace("~/Pictures/trip", "trip")
        if name == "without":  # only the lines that move (each boda line starts Python)
            script = "\n".join(line for line in script.splitlines() if "rejects" in line)
        done = _run_as_bash(script, tmp_path / name)
        assert done.returncode == 0, (name, done.stderr)
        moved = sorted(p.name for p in (tmp_path / name / "rejects").iterdir())
        assert moved == (["kodim01 copy.png"] if name == "with" else []), moved
