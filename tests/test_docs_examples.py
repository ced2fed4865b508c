"""Every example in README.md, docs/*.md and ``boda COMMAND --help`` runs as shown.

A user copies an example and pastes it; it must work.  This module collects

- every fenced ```python block, run with ``exec`` in a fresh working folder that
  holds the files the block names (``photo.jpg``, ``photos/``, ``examples/images``...,
  made from the repository's own sample photos).  A top-level expression whose
  comment shows a literal value (``hamming(a, b)   # 0``, ``# [[2, 3]]``,
  ``# array([42.0092, ...])``) must evaluate to that value, to the digits shown;
- every ``boda ...`` command line in fenced shell blocks (a block's lines in order, in
  one folder, as a user pastes them), in inline code, and every example in the
  commands' ``--help`` texts, run through ``CliRunner`` on ``boda.cli.app`` in such a
  folder (inline prose that only names options, ``boda report --json``, is checked
  for those options existing).  Each must end with its documented
  exit status (0 unless :data:`EXIT_STATUS` says otherwise), write the files it names
  (``-o``, ``--csv``, ``> file``...), print one JSON document on stdout with ``--json``,
  and print the output lines a ```console block shows under it.

Nothing is skipped silently: a block too slow for the unit tests runs with the
parameters listed in :data:`SUBSTITUTIONS` (each must still apply to the current
text), a placeholder (``DIR``, ``IMG``) is mapped by :data:`PLACEHOLDERS`, a
synopsis (``[--json]``, ``a\\|b``) by :data:`SYNOPSES`, a shell line that is no
``boda`` command must match :data:`NOT_BODA` with its reason, and :data:`SKIPS` (empty
unless a reason is written there) is the only way to leave an example out.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import shlex
import shutil
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
KODAK = REPO / "tests" / "data" / "kodak"
GRABCUT = REPO / "tests" / "data" / "grabcut"
EXAMPLES = REPO / "examples" / "images"

SHELL_LANGS = {"", "bash", "sh", "shell", "console", "text"}
PYTHON_LANGS = {"python", "py"}

# --------------------------------------------------------------------------------------
# What the tests may change, each with its reason.  Keys are "doc file name" plus a
# piece of the example's text, not line numbers, so edits elsewhere in a file keep them.
# --------------------------------------------------------------------------------------

#: (doc file, exact text in the block, replacement, reason).  Applied only to the copy
#: that runs; a substitution whose text is no longer in its file fails the suite.
SUBSTITUTIONS: list[tuple[str, str, str, str]] = [
    ("grabcut.md", "res3 = grabcut(img, mask=trimap, iterations=10)",
     "res3 = grabcut(img, mask=trimap, iterations=1)",
     "10 cuts over the whole photo (every pixel free) take ~4 s of CPU; 1 is the same call"),
    ("models.md", "logits = net(torch.rand(8, 3, 224, 224))",
     "logits = net(torch.rand(2, 3, 64, 64))",
     "a ResNet-50 forward of 8 x 224 px costs ~1.5 s; the call is the same at 2 x 64 px"),
    ("models.md", "seg(torch.rand(1, 3, 375, 500)).shape                       # (1, 21, 375, 500)",
     "seg(torch.rand(1, 3, 75, 100)).shape                       # (1, 21, 75, 100)",
     "DeepLab v3+ at 375 x 500 costs ~1.5 s; the output still has the input's size"),
    ("grabcut.md", "--rect 400,300,2000,2600 --max-side 1200",
     "--rect 400,300,2000,2600 --max-side 300",
     "GrabCut in a 800 x 1040 px box costs ~15 s of CPU; the same rect scaled to 300 px"),
    ("--help", "--rect 400,300,2000,2600 --max-side 1200",
     "--rect 400,300,2000,2600 --max-side 300", "the same example in `boda cutout --help`"),
    ("explain.md", "--size 224 --method saliency,occlusion",
     "--size 64 --method saliency,occlusion",
     "occlusion at 224 px runs ~3 000 masked forwards (~1 CPU s, tiny model); the same at 64 px"),
]

#: Examples not run at all: (doc file, exact text of the block or command) -> reason.
SKIPS: dict[tuple[str, str], str] = {
    ("--help", "boda serve "): "starts a web server that runs until Ctrl-C; each line runs in "
    "tests/test_serve.py::test_documented_lines_start_the_server with the server stubbed",
    ("serve.md", "boda serve"): "starts a web server that runs until Ctrl-C; each line runs in "
    "tests/test_serve.py::test_documented_lines_start_the_server with the server stubbed",
    ("README.md", "boda serve"): "starts a web server that runs until Ctrl-C; each line runs in "
    "tests/test_serve.py::test_documented_lines_start_the_server with the server stubbed",
    ("scan.md", "--engine ray --address"): "needs a Ray cluster; tests/test_scan_ray.py scans "
    "with the engine on a local runtime and checks the address errors",
}

#: Shell lines of the docs that are not ``boda`` commands, by pattern -> why not run here.
NOT_BODA: dict[str, str] = {
    r"make (demo|test)\b": "builds .venv and runs the whole suite; the demo's scan line and "
    "the report line README promises are checked in test_make_demo_prints_the_report_path",
    r"(python3 -m venv |\S*bin/pip install )": "installs packages (tests run offline)",
    r"(\w+=\S+ )*\S*bin/python (\S+/)?benchmarks/": "a benchmark: minutes, measured by hand",
    r"\S*bin/python -m pytest tests/": "runs a test file of this suite",
    r"curl ": "asks a running `boda serve` (tests/test_serve.py asks the same routes)",
    r"\(cd dataset && xargs -0 -r (cp|rm) ": "scan.md's recipe that moves copies aside keeping "
    "the folders: run for real by test_the_move_recipe_keeps_the_folders",
    r"mkdir -p (best )?rejects\b": "makes the folders the next lines move or copy files into "
    "(mv -t makes none): test_docs_audit.py checks every such move, and runs scan.md's",
}

#: Placeholder words in commands -> the real file or folder the test provides.
PLACEHOLDERS: dict[str, str] = {
    "~/Pictures/trip": "trip",
    "trip/IMG_0031.jpg": "trip/kodim03.png",  # boda mark's example file
    "DIR": "photos",
    "IMG": "photo.jpg",
    "IMAGE": "photo.jpg",
    "QUERY": "photo.jpg",
    "REF": "original.png",
    "FILE": "scores.csv",
    "OUT": "out.png",
    "TRIMAP": "trimap.png",
    "X,Y,W,H": "40,30,200,260",
    "/tmp/report.html": "report.html",  # an absolute path: kept inside the test's folder
}

#: Synopses (inline text with ``[optional]`` parts, ``a|b`` choices or ``a / b``
#: lists) -> the concrete commands that cover every part of them.
SYNOPSES: dict[str, list[str]] = {
    "boda quality IMG [--reference REF] [--json]": [  # IMG, then every option
        "boda quality photo.jpg",
        "boda quality photo.jpg --reference original.png --json",
    ],
    "boda color convert / diff / chromaticity / measure": [
        "boda color convert --help",
        "boda color diff --help",
        "boda color chromaticity --help",
        "boda color measure --help",
    ],
    "boda edges IMG --method sobel|prewitt|scharr|laplacian|canny|log|hog|orientation -o OUT": [
        f"boda edges photo.jpg --method {m} -o {m}.png"
        for m in "sobel prewitt scharr laplacian canny log hog orientation".split()
    ],
    "boda cutout IMG --rect X,Y,W,H [--mask TRIMAP] -o out.png": [  # without --mask: grabcut.md
        "boda cutout photo.jpg --rect 40,30,200,260 --mask trimap.png -o out.png",
    ],
}

#: Documented exit status other than 0, by command text.
EXIT_STATUS: dict[str, int] = {}

#: Options whose value is a file the command writes.
OUTPUT_OPTIONS = {"-o", "--output", "--out", "--csv", "--hue-hist", "--report"}

# --------------------------------------------------------------------------------------
# Collecting the examples
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block: ``file:line`` of its first line of code."""

    path: Path
    line: int
    lang: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


@dataclass
class Command:
    """One ``boda ...`` command line as documented, and what its doc says it prints."""

    source: str  # file:line, or "boda X --help"
    doc: str  # doc file name (README.md, scan.md) or "--help"
    text: str  # the line as written (comment removed)
    expected_output: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)  # other places showing the same line
    inline: bool = False  # inline code in prose (may name an option without a full command)

    @property
    def where(self) -> str:
        return ", ".join([self.source, *self.also])

    @property
    def id(self) -> str:
        return f"{self.source}: {self.text[:60]}"


def _fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        indent = len(lines[i]) - len(lines[i].lstrip())
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = "\n".join(line[indent:] if line[:indent].isspace() else line
                         for line in lines[i + 1 : j])
        blocks.append(Block(path, i + 2, lang, body + "\n"))
        i = j + 1
    return blocks


def _text_outside_fences(path: Path) -> str:
    """The file's text with every fenced block blanked (line numbers kept)."""
    out, inside, fence = [], False, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m and (not inside or line.strip().startswith(fence)):
            inside, fence = (not inside), m.group(1)
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


@dataclass
class ShellBlock:
    """A fenced shell block's ``boda`` lines, run one after the other in one folder."""

    id: str
    doc: str
    commands: list[Command]


def _shell_blocks() -> list[ShellBlock]:
    found = []
    for path in DOC_FILES:
        rel = str(path.relative_to(REPO))
        for block in _fenced_blocks(path):
            if block.lang not in SHELL_LANGS:
                continue
            commands, lines, k = [], block.code.splitlines(), 0
            while k < len(lines):
                raw = lines[k]
                text = raw[2:] if raw.startswith("$ ") else raw
                start = k
                while text.endswith("\\") and k + 1 < len(lines):  # continued line
                    k += 1
                    text = text[:-1] + " " + lines[k].strip()
                k += 1
                if not text.startswith("boda "):
                    continue
                expected = []
                if block.lang == "console":  # the lines under a $ command are its output
                    while k < len(lines) and not lines[k].startswith("$ "):
                        if lines[k].strip():
                            expected.append(lines[k].strip())
                        k += 1
                commands.append(Command(
                    f"{rel}:{block.line + start}", path.name, _strip_comment(text), expected
                ))
            if commands:
                found.append(ShellBlock(block.id, path.name, commands))
    return found


def _inline_commands() -> list[Command]:
    """``boda ...`` in inline code (a span may run over a line break)."""
    commands = []
    for path in DOC_FILES:
        rel = str(path.relative_to(REPO))
        text = _text_outside_fences(path)
        for m in re.finditer(r"(?<!`)`(boda [^`]+)`(?!`)", text):
            line = text[: m.start()].count("\n") + 1
            inline = " ".join(m.group(1).replace("\\|", "|").split())
            commands.append(Command(f"{rel}:{line}", path.name, inline, inline=True))
    return commands


def _strip_comment(line: str) -> str:
    """The command without its shell comment (a ``#`` after a blank, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _dedupe(commands: list[Command]) -> list[Command]:
    """One test per distinct command; it names every place that shows it."""
    seen: dict[str, Command] = {}
    for cmd in commands:
        if cmd.text in seen:
            first = seen[cmd.text]
            first.also.append(cmd.source)
            first.expected_output.extend(cmd.expected_output)
        else:
            seen[cmd.text] = cmd
    return list(seen.values())


def _strip_markup(text: str) -> str:
    return re.sub(r"\[/?[a-z ]*\]", "", text)


def _help_commands() -> list[Command]:
    """The examples in every command's help text (what ``boda COMMAND --help`` shows)."""
    import typer.main

    from boda.cli import app

    found = []

    def walk(cmd, name: str) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for sub_name, sub in subs.items():
                walk(sub, f"{name} {sub_name}")
            return
        help_text = _strip_markup(f"{cmd.help or ''}\n\n{cmd.epilog or ''}")
        if "Example" not in help_text:
            found.append(Command(f"{name} --help", "--help", f"{name} shows no example"))
            return
        after = help_text[help_text.index("Example") :]
        for line in after.splitlines():
            line = re.sub(r"^Examples?:", "", line.strip()).strip()
            if not line.startswith("boda "):
                continue
            line = re.split(r"\s{2,}\(", line)[0]  # "   (use -- before ...)" is a note
            line = _strip_comment(re.sub(r"\s+or$", "", line))
            found.append(Command(f"{name} --help", "--help", line))

    walk(typer.main.get_command(app), "boda")
    return found


PY_BLOCKS = [b for path in DOC_FILES for b in _fenced_blocks(path) if b.lang in PYTHON_LANGS]
SHELL_BLOCKS = _shell_blocks()
_IN_BLOCKS = {c.text for b in SHELL_BLOCKS for c in b.commands}
_HELP_EXAMPLES = _help_commands()
# Each other line is tested once, naming every place that shows it.
_REST = [c for c in _dedupe(_inline_commands() + _HELP_EXAMPLES) if c.text not in _IN_BLOCKS]
INLINE_COMMANDS = [c for c in _REST if c.doc != "--help"]
HELP_COMMANDS = [c for c in _REST if c.doc == "--help"]

# --------------------------------------------------------------------------------------
# Inputs: small real files made from the repository's sample photos
# --------------------------------------------------------------------------------------


def _kodak(name: str = "kodim23", side: int | None = None) -> np.ndarray:
    from boda.io import read_image

    return read_image(KODAK / f"{name}.png", max_side=side)


def _save(path: Path, image) -> None:
    from boda.io import write_image

    write_image(path, image)


#: The size of ``photo.jpg`` and the maps that go with it: a 4:3 crop of a Kodak photo,
#: large enough for every pixel coordinate the docs use (``--focus-at 420,310``).
H, W = 330, 440


def _photo() -> np.ndarray:
    """kodim20 (a propeller plane), cropped: GrabCut cuts it in half kodim23's time."""
    return _kodak("kodim20")[100 : 100 + H, 30 : 30 + W]


def _depth(shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """A depth map: an ellipse near (0.2) in a far (0.8) background, sloping down."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / np.array(shape)[:, None, None]
    near = ((xx - 0.55) ** 2 / 0.2 + (yy - 0.5) ** 2 / 0.35) < 0.35
    return np.where(near, 0.2, 0.8).astype(np.float32) + 0.1 * yy.astype(np.float32)


def _gray_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.clip(array * 255 + 0.5, 0, 255).astype(np.uint8)).save(path)


def _hole(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros(size, np.float32)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1.0
    return m


def _scan_folder(path: Path) -> None:
    """A folder of 5 small photos (96 px) plus an exact copy: a quick scan."""
    path.mkdir()
    for name in ("kodim01", "kodim03", "kodim05", "kodim13", "kodim20"):
        _save(path / f"{name}.png", _kodak(name, 96))
    shutil.copy(path / "kodim01.png", path / "kodim01 copy.png")


def _dataset_folder(path: Path) -> None:
    """Splits and class folders (64 px photos): a train/test leak, one image in two classes."""
    for folder in ("train/cat", "train/dog", "test/cat", "test/dog"):
        (path / folder).mkdir(parents=True)
    for folder, name in [("train/cat", "kodim01"), ("train/cat", "kodim03"),
                         ("train/dog", "kodim05"), ("test/dog", "kodim13")]:
        _save(path / folder / f"{name}.png", _kodak(name, 64))
    shutil.copy(path / "train/cat/kodim01.png", path / "test/cat/kodim01.png")  # a leak
    shutil.copy(path / "train/cat/kodim03.png", path / "train/dog/kodim03.png")  # 2 labels


def _labelled_folder(path: Path) -> None:
    """A validation set in class folders for --labels-from-folders: 12 images of the
    synthetic shapes benchmark (``shapes-cnn`` knows them), one filed under the wrong
    class."""
    from boda.explain import SHAPE_CLASSES, make_shapes

    data = make_shapes(12, seed=3)
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        folder = SHAPE_CLASSES[(label + 1) % 4 if i == 0 else label]
        (path / folder).mkdir(parents=True, exist_ok=True)
        _save(path / folder / f"{i:03d}.png", image)


def _trimap(path: Path) -> None:
    """A --mask for photo.jpg: black = background, white = an object's core, gray band =
    let GrabCut decide (a narrow band: every gray pixel is a node of the graph)."""
    m = np.zeros((H, W), np.float32)
    m[40:300, 30:250] = 0.5
    m[60:280, 50:230] = 1.0
    _gray_png(path, m)


def _strokes(path: Path) -> None:
    m = np.full((H, W), 0.5, np.float32)
    m[100:110, 50:60] = 1.0
    m[200:205, 80:160] = 0.0
    _gray_png(path, m)


def _resnet_weights(path: Path) -> None:
    import torch

    from boda.nn import load_model

    torch.save(load_model("resnet20-cifar10").model.state_dict(), path)


def _scripted(path: Path) -> None:
    """A tiny TorchScript classifier (any input size)."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10),
    ).eval()
    torch.jit.trace(net, torch.rand(1, 3, 64, 64)).save(str(path))


def _my_resnet18(path: Path) -> None:
    import torch

    from boda import models

    torch.manual_seed(0)
    torch.save(models.create("resnet18").state_dict(), path)


def _big_jpg(path: Path) -> None:
    from PIL import Image

    Image.open(GRABCUT / "images" / "teddy.png").convert("RGB").resize((2500, 3000)).save(
        path, quality=85
    )


#: file or folder name -> how to make it (in the folder given).
INPUTS: dict[str, Callable[[Path], None]] = {
    "photo.jpg": lambda p: _save(p, _photo()),
    "photo.png": lambda p: _save(p, _photo()),
    "portrait.jpg": lambda p: _save(p, _photo()),
    "kodim23.png": lambda p: shutil.copy(KODAK / "kodim23.png", p),
    "bird.png": lambda p: _save(p, _kodak(side=64)),
    "scan.jpg": lambda p: _save(p, _kodak("kodim03")),
    "original.png": lambda p: _save(p, _photo()),
    "edited.png": lambda p: _save(p, _photo()[::2, ::2].repeat(2, 0).repeat(2, 1)),
    "wall.png": lambda p: _save(p, _kodak("kodim13", 96)),
    "graffiti.png": lambda p: _gray_png(p, _hole((96, 96), (40, 52, 30, 44))),
    "hole.png": lambda p: _gray_png(p, _hole((H, W), (200, 240, 150, 200))),
    "depth.png": lambda p: _gray_png(p, _depth()),
    "portrait_depth.png": lambda p: _gray_png(p, _depth()),
    "midas.png": lambda p: _gray_png(p, 1.0 - _depth()),
    "small_depth.png": lambda p: _gray_png(p, _depth((H // 4, W // 4))),
    "d.npy": lambda p: np.save(p, 1.0 + 3.0 * _depth()),
    "strokes.png": _strokes,
    "trimap.png": _trimap,
    "big.jpg": _big_jpg,
    "colours.csv": lambda p: p.write_text("0.2 0.4 0.6\n#3366cc\n0.9,0.1,0.1\n"),
    "weights.pt": _resnet_weights,
    "scripted.pt": _scripted,
    "my_resnet18.pt": _my_resnet18,
    "photos": _scan_folder,
    "data": _scan_folder,
    "trip": _scan_folder,
    "dataset": _dataset_folder,
    "val": _labelled_folder,
    "examples/images": lambda p: shutil.copytree(
        EXAMPLES, p, ignore=shutil.ignore_patterns(".boda")
    ),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def input_store(tmp_path_factory) -> Callable[[str], Path]:
    """Makes each input once per session; returns its path."""
    root = tmp_path_factory.mktemp("doc_inputs")

    def get(name: str) -> Path:
        path = root / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            INPUTS[name](path)
        return path

    return get


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w/.-]){re.escape(name)}(?![\w])", text) is not None


@pytest.fixture
def workdir(tmp_path, input_store, monkeypatch) -> Callable[[str], Path]:
    """A fresh working folder (the cwd) holding copies of the inputs ``text`` names."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    def prepare(text: str) -> Path:
        for name in INPUTS:
            if _mentions(text, name):
                src, dst = input_store(name), tmp_path / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst)
                else:
                    shutil.copy(src, dst)
        return tmp_path

    return prepare


# --------------------------------------------------------------------------------------
# Python blocks
# --------------------------------------------------------------------------------------


def _substituted(doc: str, code: str) -> str:
    for file, old, new, _reason in SUBSTITUTIONS:
        if file == doc and old in code:
            code = code.replace(old, new)
    return code




def _claimed(comment: str):
    """The literal value a comment shows, or None when it shows none.

    ``# 2.0425`` -> 2.0425, ``# [[2, 3]]``, ``# 0: resized copy`` -> 0,
    ``# array([42.0092, -0.1459])`` -> that list, ``# 138,357,544`` -> 138357544,
    ``# (8, 10)``; comments with words or ``...`` show no value.
    """
    text = comment.lstrip("#").strip()
    if re.fullmatch(r"\d{1,3}(,\d{3})+", text):
        return int(text.replace(",", ""))
    m = re.fullmatch(r"array\((.*)\)", text)
    candidates = [m.group(1)] if m else [text, text.split(":")[0]]
    for candidate in candidates:
        try:
            value = ast.literal_eval(candidate.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return None if "Ellipsis" in repr(value) else value  # "..." elides: no claim
    return None


def _decimals(comment: str) -> int:
    return max((len(f) for f in re.findall(r"\d\.(\d+)", comment)), default=0)


def _check_claim(got, want, decimals: int, where: str) -> None:
    if hasattr(got, "tolist") and not isinstance(got, str):  # numpy / torch values
        got = got.tolist()
    if isinstance(got, tuple) or type(got).__name__ == "Size":
        got = list(got)
    if isinstance(want, tuple):
        want = list(want)
    if isinstance(want, float) or (
        isinstance(want, list) and any(isinstance(w, float) for w in np.ravel(want))
    ):
        tol = 0.5 * 10.0 ** -decimals + 1e-9
        ok = np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=0, atol=tol)
    else:
        ok = got == want
    assert ok, f"{where}: the example says {want!r}, it gives {got!r}"


def _instrument(code: str, filename: str) -> tuple[ast.Module, int]:
    """The block's AST with every top-level ``expr   # <literal>`` checked."""
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string
    tree = ast.parse(code, filename)
    n = 0
    for i, node in enumerate(tree.body):
        if not isinstance(node, ast.Expr) or node.end_lineno not in comments:
            continue
        comment = comments[node.end_lineno]
        want = _claimed(comment)
        if want is None:
            continue
        call = ast.Expr(
            ast.Call(
                ast.Name("__doc_check__", ast.Load()),
                [node.value, ast.Constant(want if not isinstance(want, (list, dict, set))
                                          else repr(want)),
                 ast.Constant(_decimals(comment)),
                 ast.Constant(f"{filename}:{node.end_lineno}")],
                [],
            )
        )
        tree.body[i] = ast.copy_location(call, node)
        n += 1
    return ast.fix_missing_locations(tree), n


def _doc_check(got, want, decimals, where):
    if isinstance(want, str) and want[:1] in "[{":
        want = ast.literal_eval(want)
    _check_claim(got, want, decimals, where)


def _block_id(block: Block) -> str:
    return block.id


@pytest.mark.parametrize("block", PY_BLOCKS, ids=_block_id)
def test_python_block_runs(block: Block, workdir):
    doc = block.path.name
    for (file, text), reason in SKIPS.items():
        if file == doc and text in block.code:
            pytest.skip(f"allow-listed: {reason}")
    code = _substituted(doc, block.code)
    workdir(code)
    line_offset = "\n" * (block.line - 1)  # tracebacks name the doc's own line numbers
    tree, _ = _instrument(line_offset + code, str(block.path))
    namespace = {"__name__": "__doc_example__", "__doc_check__": _doc_check}
    with _registries_restored():
        exec(compile(tree, str(block.path), "exec"), namespace)


@contextlib.contextmanager
def _registries_restored():
    """Put boda.nn's architectures back as they were after an example that registers
    some (docs/models.md adds resnet18): later tests in this worker process expect
    only the built-in ones (``--arch resnet18`` refused as unknown)."""
    import boda.nn._models as nn_models

    before = dict(nn_models.ARCHITECTURES)
    try:
        yield
    finally:
        nn_models.ARCHITECTURES.clear()
        nn_models.ARCHITECTURES.update(before)


# --------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------


def _cli():
    import typer.main

    from boda.cli import app

    return typer.main.get_command(app)


def _command_names() -> set[str]:
    return set(_cli().commands)


def _click_command(words: list[str]):
    """The click command that ``boda WORDS...`` starts, and how many words name it."""
    cmd, n = _cli(), 0
    while n < len(words) and words[n] in (getattr(cmd, "commands", None) or {}):
        cmd, n = cmd.commands[words[n]], n + 1
    return cmd, n


def _concrete(cmd: Command) -> list[list[str]]:
    """The argv lists (without ``boda``) that the documented line stands for."""
    text = cmd.text
    if text in SYNOPSES:
        return [shlex.split(c)[1:] for c in SYNOPSES[text]]
    words = shlex.split(text, comments=True)
    assert not any(w.startswith("[") or w in {"/", "..."} for w in words), (
        f"{cmd.where}: '{text}' is a synopsis; add the commands it stands for to SYNOPSES"
    )
    assert not any("|" in w and w != "|" for w in words), (
        f"{cmd.where}: '{text}' lists choices; add the commands it stands for to SYNOPSES"
    )
    argv = [PLACEHOLDERS.get(w, w) for w in words[1:]]
    command, n = _click_command(argv)
    assert n > 0, f"{cmd.where}: '{text}': boda has no command {argv[:1]}"
    if n == len(argv):  # a bare command name refers to the command: its help must work
        return [[*argv, "--help"]]
    return [argv]


def _named_options_exist(cmd: Command) -> bool:
    """For inline prose such as ``boda report --json`` or ``boda scan --report FILE``: when
    the command's required arguments are missing, the text names options, it is no command
    line.  Check that each option exists; True when that was the whole check."""
    if not cmd.inline or cmd.text in SYNOPSES:
        return False
    argv = shlex.split(cmd.text)[1:]
    command, n = _click_command(argv)
    rest = argv[n:]
    by_name = {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}
    options, positional, k = [], [], 0
    while k < len(rest):
        word = rest[k]
        if word.startswith("-") and word != "--":
            options.append(word.split("=")[0])
            param = by_name.get(word.split("=")[0])
            takes_value = param is not None and not getattr(param, "is_flag", False)
            k += 2 if takes_value and "=" not in word else 1
        else:
            positional.append(word)
            k += 1
    required = [p for p in command.params
                if p.required and not any(o.startswith("-") for o in p.opts)]
    if not rest or len(positional) >= len(required):
        return False
    unknown = [o for o in options if o not in by_name]
    assert not unknown, f"{cmd.where}: `{cmd.text}`: no option {unknown} in `boda {argv[0]}`"
    return True


def _outputs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, w in enumerate(argv[:-1]) if w in OUTPUT_OPTIONS]


def _run(argv: list[str], where: str, want_status: int, expected_output: list[str]):
    from boda.cli import app

    pipe_to = None
    if "|" in argv:
        k = argv.index("|")
        argv, pipe_to = argv[:k], argv[k + 1 :]
    redirect = None
    if ">" in argv:
        k = argv.index(">")
        argv, redirect = argv[:k], argv[k + 1]
    if argv[0] == "report":  # "report" takes a scanned folder: scan it as a user did
        folder = Path(argv[1])
        if folder.is_dir() and not (folder / ".boda").exists():
            pre = CliRunner().invoke(app, ["scan", str(folder), "--no-report", "-q", "-w", "1"])
            assert pre.exit_code in (0, 3), pre.output
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    shown = "boda " + " ".join(argv)
    assert result.exit_code == want_status, (
        f"{where}: `{shown}` exited {result.exit_code}, the doc says {want_status}\n"
        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    )
    if want_status != 0 or "--help" in argv:
        return
    for out in _outputs(argv):
        path = Path(out)
        assert path.exists() and (path.is_dir() or path.stat().st_size > 0), (
            f"{where}: `{shown}` did not write {out}"
        )
    if redirect is not None:
        Path(redirect).write_text(result.stdout)
        assert result.stdout.strip(), f"{where}: `{shown}` printed nothing for {redirect}"
    if "--json" in argv or (pipe_to and pipe_to[0] == "jq") or str(redirect).endswith(".json"):
        try:
            json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"{where}: `{shown}` stdout is not one JSON document ({exc}):\n"
                f"{result.stdout[:1000]}"
            ) from None
    elif pipe_to is not None:
        assert result.stdout.strip("\0\n"), f"{where}: `{shown}` printed nothing to pipe"
        if pipe_to[0] == "xargs":  # each item must be an existing file for the command
            items = result.stdout.split("\0" if "-0" in pipe_to else None)
            missing = [i for i in items if i.strip() and not Path(i).exists()]
            assert not missing, f"{where}: `{shown}` gives no file paths for xargs: {missing}"
        if pipe_to[0] == "boda":  # a boda command reading the paths: run it on them
            piped = CliRunner().invoke(app, pipe_to[1:], input=result.stdout_bytes)
            assert piped.exit_code == 0, (
                f"{where}: `{' '.join(pipe_to)}` exited {piped.exit_code} on the output of "
                f"`{shown}`\n{piped.output[-2000:]}"
            )
    flat = " ".join(result.stdout.split())
    for line in expected_output:
        assert " ".join(line.split()) in flat, (
            f"{where}: `{shown}` should print {line!r}, printed:\n{result.stdout}"
        )


def _skip_reason(doc: str, text: str) -> str | None:
    for (file, part), reason in SKIPS.items():
        if file == doc and part in text:
            return reason
    return None


def _check_command(cmd: Command) -> None:
    """Run one documented line in the current folder (its inputs already there)."""
    assert not cmd.text.endswith("shows no example"), f"{cmd.text}: every command has one"
    if _named_options_exist(cmd):
        return
    want = EXIT_STATUS.get(cmd.text, 0)
    for argv in _concrete(replace(cmd, text=_substituted(cmd.doc, cmd.text))):
        _run(argv, cmd.where, want, cmd.expected_output)


def _all_text(commands: list[Command]) -> str:
    """The words of every command line the commands stand for (to find their inputs)."""
    words = []
    for c in commands:
        try:
            runs = _concrete(replace(c, text=_substituted(c.doc, c.text)))
        except AssertionError:  # reported by the test itself
            runs = [c.text.split()]
        words += [w for argv in runs for w in argv]
    return " ".join(words)


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.id)
def test_shell_block_runs(block: ShellBlock, workdir):
    """The block's lines in order, in one folder, as a user pastes them (so a later line
    sees what an earlier one wrote, e.g. an output that now exists)."""
    workdir(_all_text(block.commands))
    for cmd in block.commands:
        reason = _skip_reason(cmd.doc, cmd.text)
        if reason:
            pytest.skip(f"allow-listed: {reason}")
        _check_command(cmd)


def _cmd_id(cmd: Command) -> str:
    return cmd.id


def _run_alone(cmd: Command, workdir) -> None:
    """One command line (inline in the docs, or a --help example) in its own folder."""
    reason = _skip_reason(cmd.doc, cmd.text)
    if reason:
        pytest.skip(f"allow-listed: {reason}")
    workdir(_all_text([cmd]))
    _check_command(cmd)


@pytest.mark.parametrize("cmd", INLINE_COMMANDS, ids=_cmd_id)
def test_inline_command_runs(cmd: Command, workdir):
    _run_alone(cmd, workdir)


@pytest.mark.parametrize("cmd", HELP_COMMANDS, ids=_cmd_id)
def test_help_example_runs(cmd: Command, workdir):
    _run_alone(cmd, workdir)


# --------------------------------------------------------------------------------------
# The tables above stay honest
# --------------------------------------------------------------------------------------


def test_examples_were_found():
    """The collectors see the docs (a changed fence style must not empty the suite)."""
    assert len(PY_BLOCKS) >= 12
    assert sum(len(b.commands) for b in SHELL_BLOCKS) >= 30
    assert len(INLINE_COMMANDS) >= 10
    assert {c.source.split()[1] for c in _HELP_EXAMPLES} == _command_names()


def test_every_substitution_and_skip_still_applies():
    texts = {p.name: p.read_text(encoding="utf-8") for p in DOC_FILES}
    texts["--help"] = "\n".join(c.text for c in _HELP_EXAMPLES)
    for file, old, _new, reason in SUBSTITUTIONS:
        assert reason, f"substitution {old!r} in {file} has no reason"
        assert old in texts[file], f"substitution {old!r} no longer matches {file}: remove it"
    for (file, text), reason in SKIPS.items():
        assert reason, f"skip {text!r} in {file} has no reason"
        assert text in texts.get(file, ""), f"skip {text!r} no longer matches {file}"
    for synopsis in SYNOPSES:
        assert any(c.text == synopsis for c in INLINE_COMMANDS), f"unused SYNOPSES {synopsis!r}"


def test_every_shell_line_is_run_or_listed():
    """A shell line that is no ``boda`` command is named in NOT_BODA with its reason."""
    unlisted = []
    for path in DOC_FILES:
        for block in _fenced_blocks(path):
            if block.lang not in SHELL_LANGS - {""}:  # unlabelled blocks hold trees, text
                continue
            for line in block.code.splitlines():
                if block.lang == "console":
                    if not line.startswith("$ "):
                        continue  # output
                    line = line[2:]
                line = line.strip()
                if line and not line.startswith(("boda ", "#")) and not any(
                    re.match(pattern, line) for pattern in NOT_BODA
                ):
                    unlisted.append(f"{block.id}: {line}")
    assert not unlisted, "run these lines or list them in NOT_BODA:\n" + "\n".join(unlisted)


def test_the_move_recipe_keeps_the_folders(tmp_path):
    """scan.md's recipe (``--relative``, ``cp --parents``, ``rm``) run by bash as written:
    the redundant copies land in rejects/ under their own folders, the rest stays."""
    import subprocess
    import sys

    from boda.report import duplicate_sets
    from boda.scan import scan

    block = next(b for b in _fenced_blocks(REPO / "docs" / "scan.md")
                 if "--relative --print0 > redundant.txt" in b.code)
    _dataset_folder(tmp_path / "dataset")
    scan(tmp_path / "dataset", workers=1)
    redundant = {p for s in duplicate_sets(tmp_path / "dataset") for p in s.redundant}
    assert len(redundant) == 2
    before = {p.relative_to(tmp_path / "dataset").as_posix()
              for p in (tmp_path / "dataset").rglob("*.png")}
    script = f'boda() {{ "{sys.executable}" -m boda "$@"; }}\nset -e\n' + block.code
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    moved = {p.relative_to(tmp_path / "rejects").as_posix()
             for p in (tmp_path / "rejects").rglob("*.png")}
    assert moved == redundant
    assert {p.relative_to(tmp_path / "dataset").as_posix()
            for p in (tmp_path / "dataset").rglob("*.png")} == before - redundant


def test_make_demo_prints_the_report_path(workdir):
    """README: `make demo` "ends with a line `report: out/demo-report/index.html`"."""
    from boda.cli import app

    recipe = re.search(r"^demo:.*\n\t\$\(BIN\)/(boda [^\n]+)", (REPO / "Makefile").read_text(),
                       re.MULTILINE)
    assert recipe, "Makefile has no `demo:` recipe running boda"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    promised = re.search(r"`make demo` ends with a line `([^`]+)`", readme)
    assert promised, "README no longer says what `make demo` prints: update this test"
    workdir(recipe.group(1))
    result = CliRunner().invoke(app, shlex.split(recipe.group(1))[1:], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert promised.group(1) in result.stdout.splitlines()[-1], result.stdout[-500:]


def test_claimed_values_are_parsed():
    """The comment parser reads the forms the docs use (and nothing from prose)."""
    assert _claimed("# 2.0425") == 2.0425
    assert _claimed("# [[2, 3]]") == [[2, 3]]
    assert _claimed("# 0: resized + recompressed copy") == 0
    assert _claimed("# array([42.0092, -0.1459, -32.8451])") == [42.0092, -0.1459, -32.8451]
    assert _claimed("# 138,357,544") == 138357544
    assert _claimed("# {'a': ..., 'b': 1}") is None
    assert _claimed("# float, fraction of Canny edge pixels") is None
    with pytest.raises(AssertionError):
        _check_claim(2.0426, 2.0425, 4, "x")
    _check_claim(np.float32(2.04253), 2.0425, 4, "x")


# --------------------------------------------------------------------------------------
# Names and numbers the prose quotes from the code
# --------------------------------------------------------------------------------------


def _doc_texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in DOC_FILES}


def test_documented_default_thresholds_are_the_code_s():
    """README's flag table, scan.md's scores table, quality.md's rules and `boda scan
    --help` quote each flag's default threshold: each must be the code's."""
    from boda.scan._flags import MAX_NEAR_DUPLICATE_DISTANCE, _rules, default_thresholds

    by_score = {rule.score_key: rule for rule in _rules()}
    by_flag = {rule.name: rule for rule in _rules()}
    claims = []  # (where, rule, comparison, value)
    for name, text in _doc_texts().items():
        for m in re.finditer(r"`(\w+) ([<>]) ([\d.]+)`", text):  # `blurry < 0.44`
            if m[1] in by_score:
                claims.append((f"{name}: {m[0]}", by_score[m[1]], m[2], float(m[3])))
        for m in re.finditer(r"`(\w+)` when `([<>]) ([\d.]+)`", text):  # `dark` when `> 0.8`
            claims.append((f"{name}: {m[0]}", by_flag[m[1]], m[2], float(m[3])))
        for m in re.finditer(r"^\| `(\w+)` \|.*flag when `([<>]) ([\d.]+)`", text, re.M):
            claims.append((f"{name}: {m[0]}", by_flag[m[1]], m[2], float(m[3])))
    assert {c[1].name for c in claims} == set(by_flag), "a flag's documented rule went missing"
    for where, rule, comparison, value in claims:
        assert (comparison, value) == (rule.describe(rule.default).split()[1], rule.default), (
            f"{where}: the code's default is {rule.describe(rule.default)}"
        )
    defaults = default_thresholds()
    readme = _doc_texts()["README.md"]
    assert f"Hamming distance ≤ {defaults['near_duplicate']:g}" in readme
    from boda.cli import app

    help_text = " ".join(CliRunner().invoke(app, ["scan", "--help"]).output.split())
    names = help_text[help_text.index("Names and defaults") : help_text.index("has none")]
    shown = {k: float(v) for k, v in re.findall(r"\b(\w+)=([\d.]+)", names)}
    assert shown == defaults, f"boda scan --help says {shown}, the code {defaults}"
    assert f"0-{MAX_NEAR_DUPLICATE_DISTANCE})" in names
    scan_md = " ".join(_doc_texts()["scan.md"].split())
    assert f"whole number of pHash bits from 0 to {MAX_NEAR_DUPLICATE_DISTANCE}" in scan_md


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")


def test_links_anchors_and_repository_paths_exist():
    """Every relative link (and its #anchor) and every `tests/`, `benchmarks/`,
    `examples/`, `src/`, `docs/` path the docs name is there."""
    missing = []
    for path in DOC_FILES:
        text = _text_outside_fences(path)
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target, _, anchor = m[1].partition("#")
            if target.startswith("http"):
                continue
            file = path.parent / target if target else path
            if not file.exists():
                missing.append(f"{path.name}: link {m[1]}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+\s+(.*)", _text_outside_fences(file), re.M)
                if anchor not in {_github_anchor(h) for h in headings}:
                    missing.append(f"{path.name}: link {m[1]} (no such heading)")
        for m in re.finditer(r"\b(?:tests|benchmarks|examples|src|docs)/[\w./-]*\w",
                             path.read_text(encoding="utf-8")):
            if not (REPO / m[0]).exists():
                missing.append(f"{path.name}: {m[0]}")
    assert not missing, "\n".join(missing)


def test_named_boda_attributes_and_benchmark_options_exist():
    """`boda.x.y` names in the prose import, and the options shown after a
    `benchmarks/NAME.py` are options of that script."""
    import importlib

    def resolves(dotted: str) -> bool:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                if not hasattr(obj, attribute):
                    return False
                obj = getattr(obj, attribute)
            return True
        return False

    wrong = []
    for name, text in _doc_texts().items():
        for dotted in sorted(set(re.findall(r"(?<![\w./])boda(?:\.\w+)+", text))):
            if not dotted.endswith((".md", ".py", ".db", ".html")) and not resolves(dotted):
                wrong.append(f"{name}: {dotted}")
        for m in re.finditer(r"benchmarks/(\w+)\.py([^`\n]*)", text):
            script = (REPO / "benchmarks" / f"{m[1]}.py").read_text(encoding="utf-8")
            wrong += [f"{name}: benchmarks/{m[1]}.py has no {option}"
                      for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", m[2])
                      if f'"{option}"' not in script]
    assert not wrong, "\n".join(wrong)
