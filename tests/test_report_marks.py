"""The HTML report shows the culling marks (picked, rejected, stars) on its cards."""

from __future__ import annotations

import re

from scan_helpers import noise_photo

from boda.catalog import Marks, marks_path
from boda.report import render_html
from boda.scan import scan


def _card_of(page: str, name: str) -> str:
    """The first card naming ``name``."""
    at = page.index(f">{name}<")
    return page[page.rindex('<div class="card">', 0, at) : page.index("</div></div>", at)]


def test_cards_show_picks_rejects_and_stars(tmp_path):
    root = tmp_path / "shoot"
    noise_photo(root / "a.png", 1)
    (root / "b.png").write_bytes((root / "a.png").read_bytes())  # exact duplicates
    noise_photo(root / "c.png", 2)
    scan(root, workers=1)
    with Marks(root) as marks:
        marks.set_decision([b"a.png"], "pick")
        marks.set_rating([b"a.png"], 3)
        marks.set_decision([b"b.png"], "reject")
    page = render_html(root)
    assert re.search(r'class="mark pick">picked ★★★<', _card_of(page, "a.png"))
    assert 'class="mark reject">rejected<' in _card_of(page, "b.png")


def test_an_unreadable_marks_file_leaves_the_report_without_marks(tmp_path, caplog):
    root = tmp_path / "shoot"
    noise_photo(root / "a.png", 1)
    (root / "b.png").write_bytes((root / "a.png").read_bytes())
    scan(root, workers=1)
    marks_path(root / ".boda" / "catalog.db").write_bytes(b"not a database at all" * 100)
    page = render_html(root)
    assert ">a.png<" in page and 'class="mark' not in page
    assert "shows no marks" in caplog.text
