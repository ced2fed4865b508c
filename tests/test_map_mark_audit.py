"""Audit of ``boda map``'s page and ``boda mark`` (session 27).

References: the files on disk (every point's link opens the file its tooltip names),
the SVG's own view box (the map is drawn in the middle of it), what ``boda report``
selects after a mark, and the user's files byte for byte.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote_to_bytes, urljoin

import pytest
from typer.testing import CliRunner

from boda.catalog import Marks
from boda.cli import app
from boda.io import read_image, write_image
from boda.scan import scan

runner = CliRunner()


# -- boda mark --------------------------------------------------------------------------------


@pytest.fixture
def shoot(tmp_path, kodak_paths):
    """A scanned folder: two photos and a file symlink to one of them."""
    root = tmp_path / "shoot"
    root.mkdir()
    for name, path in zip(("a.png", "b.png"), kodak_paths, strict=False):
        write_image(root / name, read_image(path, max_side=48))
    os.symlink("a.png", root / "a link.png")
    scan(root, workers=1)
    return root


def _user_files(root: Path) -> dict[str, tuple]:
    """Every entry of ``root`` outside ``.boda``: bytes (a link: its target) and mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        if ".boda" in p.parts:
            continue
        st = os.lstat(p)
        body = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
        out[str(p)] = (body, st.st_mtime_ns, st.st_mode)
    return out


def test_mark_refuses_a_link_and_names_the_file_it_links_to(shoot):
    """A mark on a link is in no selection and no count: "picked 1 file (1 change)" was
    said and nothing a report shows had changed."""
    before = _user_files(shoot)
    for args in (["--pick"], ["--reject"], ["--rating", "3"]):
        result = runner.invoke(app, ["mark", str(shoot), str(shoot / "a link.png"), *args,
                                     str(shoot / "b.png")])
        text = " ".join(result.output.split())
        assert result.exit_code == 2, result.output
        assert "a link" in text and str(shoot / "a.png") in text and "nothing was marked" in text
    with Marks(shoot, readonly=True) as marks:
        assert marks.all() == {}  # b.png, given beside it, is not marked either
    # clearing passes (it can only take a stale mark away), and the target takes marks
    assert runner.invoke(app, ["mark", str(shoot), str(shoot / "a link.png"), "--undecided",
                               "--rating", "0"]).exit_code == 0
    done = runner.invoke(app, ["mark", str(shoot), str(shoot / "a.png"), "--pick", "--json"])
    assert done.exit_code == 0 and json.loads(done.stdout)["counts"]["pick"] == 1
    picked = runner.invoke(app, ["report", str(shoot), "--only", "picked", "--paths"])
    assert picked.stdout.splitlines() == [str(shoot / "a.png")]
    assert _user_files(shoot) == before


# -- the map page -----------------------------------------------------------------------------


def _circles(page: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in
            re.findall(r"<circle [^>]*cx='([-\d.]+)' cy='([-\d.]+)'", page)]


@pytest.mark.parametrize("xy", [
    [(0.0, 0.0), (10.0, 1.0), (5.0, 0.5)],  # wider than tall, as a PCA map
    [(3.0, -2.0), (3.0, 8.0)],  # one column
    [(1.5, 1.5)] * 3,  # identical images: one spot
])
def test_the_map_is_drawn_in_the_middle_of_its_square(tmp_path, xy):
    """The points were placed from the bottom-left corner: the shorter side of a map left
    an empty band on top, and identical images sat in the corner."""
    from boda.cli._map_page import _SIDE, map_html

    points = [{"path": str(tmp_path / f"{i}.png"), "x": x, "y": y, "folder": None,
               "label": None} for i, (x, y) in enumerate(xy)]
    page = map_html({"folder": str(tmp_path), "model": "m", "layer": "l", "method": "pca",
                     "points": points}, [None] * len(points), tmp_path / "map.html")
    drawn = _circles(page)
    assert len(drawn) == len(xy)
    xs, ys = [x for x, _ in drawn], [y for _, y in drawn]
    assert (min(xs) + max(xs)) / 2 == pytest.approx(_SIDE / 2, abs=0.1)
    assert (min(ys) + max(ys)) / 2 == pytest.approx(_SIDE / 2, abs=0.1)
    assert all(0 < v < _SIDE for v in xs + ys)
    # y grows up on the map, down in SVG: the highest point is drawn nearest the top
    top = max(range(len(xy)), key=lambda i: xy[i][1])
    assert drawn[top][1] == min(ys)


#: Names that are markup, URL syntax or not UTF-8, for the class folders and the files.
_FOLDERS = ["<b onmouseover=alert(1)>x", "a'b\"c", "x&amp;y"]
_FILES = ["<img src=x onerror=alert({})>.png", "#{}?q=1%20.png", "{}'.png", "javascript:{}.png"]


@pytest.fixture
def chromium(request):
    """The conftest's headless Chromium; skipped where Playwright or Debian's chromium
    is missing (no browser is downloaded)."""
    from serve_helpers import CHROMIUM

    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM}")
    return request.getfixturevalue("browser")


@pytest.mark.usefixtures("one_torch_thread")
def test_the_map_page_of_hostile_names_in_a_browser(tmp_path, chromium):
    """Opened in Chromium from disk: no error, no dialog, no request off the page, every
    name shown as text, and every point's link the file its tooltip names."""
    pytest.importorskip("torch")
    from boda.explain import make_shapes

    root = tmp_path / "val"
    data = make_shapes(16, seed=3)
    folders = [*_FOLDERS, os.fsdecode(b"bad\xff")]
    for i, image in enumerate(data.images):
        folder = root / folders[i % len(folders)]
        folder.mkdir(parents=True, exist_ok=True)
        write_image(folder / _FILES[i % len(_FILES)].format(i), image)
    page_file = tmp_path / "out" / "map.html"
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "-k", "3", "-o", str(page_file)])
    assert result.exit_code == 0, result.output
    page = chromium.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"error {exc}"))
    page.on("console", lambda m: problems.append(f"console {m.type} {m.text}"))
    page.on("dialog", lambda d: (problems.append(f"dialog {d.message}"), d.dismiss()))
    page.on("request", lambda r: r.url.startswith(("file:", "data:"))
            or problems.append(f"request {r.url}"))
    try:
        page.goto(page_file.as_uri())
        legend = page.locator(".legend").inner_text()
        assert all(name in legend for name in _FOLDERS) and "bad\\xff" in legend
        circles = page.locator("circle")
        assert circles.count() == 16
        targets = set()
        for i in range(16):
            circle = circles.nth(i)
            circle.hover(force=True)
            name = page.locator("#tip div").first.inner_text()
            href = circle.evaluate("c => c.parentNode.getAttribute('href')")
            target = unquote_to_bytes(urljoin(page_file.as_uri(), href)[len("file://"):])
            assert os.path.isfile(target), href
            shown = os.fsdecode(os.path.relpath(target, os.fsencode(root)))
            assert name == shown.encode("utf-8", "surrogateescape").decode(
                "utf-8", "backslashreplace")
            targets.add(target)
        assert len(targets) == 16
        assert page.locator("main img:not(td img)").count() == 0  # no name made an element
        circles.nth(0).click(force=True)  # the link opens the file
        page.wait_for_url(lambda url: url.endswith(".png"))
    finally:
        page.close()
    assert problems == []
