"""Getting around the page of ``boda serve`` in a real browser (headless Chromium through
Playwright): the skip link, stepping in the detail view opened from the duplicate sets,
the detail of an unreadable file, and the address after the detail closes.

Skipped where Playwright or Debian's ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import re
import shutil

import pytest
from serve_helpers import browser_expect, open_ready_page, photo_folder, serving

expect = browser_expect()

from boda.catalog import Marks  # noqa: E402
from boda.scan import scan  # noqa: E402
from boda.web import create_app  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory, kodak_paths):
    """Five small photos, two exact copies (two duplicate sets) and a truncated file."""
    root, _ = photo_folder(tmp_path_factory, kodak_paths, [f"{n}.png" for n in "abcde"],
                           max_side=64, prefix="nav")
    shutil.copy(root / "a.png", root / "a copy.png")
    shutil.copy(root / "b.png", root / "b copy.png")
    whole = (root / "c.png").read_bytes()
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    scan(root, workers=1)
    return root


@pytest.fixture(scope="module")
def served(folder):
    with serving(create_app(folder)) as url:
        yield url


@pytest.fixture
def open_page(browser, served):
    """Opens the page at ``served + hash``; closed (and checked for script errors) after."""
    pages: list = []
    errors: list[str] = []

    def opener(hash_: str = ""):
        page = open_ready_page(browser, served + hash_, errors)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert errors == []


def _focused(page) -> str:
    return page.evaluate("document.activeElement.id || document.activeElement.title")


def test_a_skip_link_is_the_first_tab_stop_and_goes_to_the_first_card(open_page, served):
    page = open_page("#only=exact_duplicate")
    expect(page.locator("#grid .card")).to_have_count(4)
    skip = page.locator("#skip")
    expect(skip).not_to_be_in_viewport()  # hidden until it has the focus
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    expect(skip).to_have_text("Skip to photos")
    page.keyboard.press("Enter")
    first = page.locator("#grid .card").first.get_attribute("title")
    assert _focused(page) == first
    assert page.url == served + "#only=exact_duplicate"  # the view is the same
    page.keyboard.press("ArrowRight")  # the grid's keys go on from there
    assert _focused(page) == page.locator("#grid .card").nth(1).get_attribute("title")
    # in the duplicate sets, the first file of the first set
    page = open_page("#view=duplicates")
    expect(page.locator("#dup-sets .card")).to_have_count(4)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert _focused(page) == page.locator("#dup-sets .card").first.get_attribute("title")


@pytest.mark.parametrize("via_grid", [False, True])
def test_the_detail_from_the_duplicate_sets_steps_through_their_files(open_page, via_grid):
    """Opened from a duplicate set, → / ← go through the files the sets show (not the
    grid's, even when the grid was loaded first), with their position."""
    page = open_page("" if via_grid else "#view=duplicates")
    if via_grid:
        expect(page.locator("#grid .card")).to_have_count(8)
        page.locator("#nav-duplicates").click()
    cards = page.locator("#dup-sets .card")
    expect(cards).to_have_count(4)
    names = cards.locator(".name").all_inner_texts()
    assert sorted(names) == ["a copy.png", "a.png", "b copy.png", "b.png"]
    cards.nth(1).click()
    expect(page.locator("#d-name")).to_have_text(names[1])
    expect(page.locator("#position")).to_have_text(re.compile(r"^2 of 4\b"))
    expect(page.locator("#prev")).to_be_enabled()
    expect(page.locator("#next")).to_be_enabled()
    for key, at in (("ArrowRight", 2), ("j", 3), ("ArrowLeft", 2), ("k", 1), ("k", 0)):
        page.keyboard.press(key)
        expect(page.locator("#d-name")).to_have_text(names[at])
        expect(page.locator("#position")).to_have_text(re.compile(rf"^{at + 1} of 4\b"))
    expect(page.locator("#prev")).to_be_disabled()
    page.keyboard.press("ArrowLeft")  # nothing before the first
    expect(page.locator("#d-name")).to_have_text(names[0])
    page.locator("#next").click()
    expect(page.locator("#d-name")).to_have_text(names[1])
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    assert "view=duplicates" in page.url and "open=" not in page.url


def test_an_unreadable_files_detail_keeps_its_marks_but_offers_no_1_1(open_page, folder):
    """An unreadable file can be marked (as with ``boda mark``, and ``--only rejected``
    lists it): its buttons stay; the 1:1 hint goes, there are no pixels to show."""
    page = open_page("#only=failed")
    expect(page.locator("#grid .card")).to_have_count(1)
    page.locator("#grid .card").click()
    expect(page.locator("#preview-error")).to_contain_text("truncated.png could not be read")
    expect(page.locator("#zoom-hint")).to_be_hidden()
    expect(page.locator("#d-mark .mark-controls")).to_be_visible()
    try:
        page.keyboard.press("x")
        expect(page.locator("#d-mark-text")).to_contain_text("rejected")
        with Marks(folder, readonly=True) as marks:
            assert marks.all()[b"truncated.png"].decision == "reject"
    finally:
        with Marks(folder) as marks:
            marks.set_decision(list(marks.all()), None)
    page.keyboard.press("Escape")
    page.goto(page.url.split("#")[0] + "#q=e.png")  # a readable one after it: the hint is back
    expect(page.locator("#grid .card")).to_have_count(1)
    page.locator("#grid .card").click()
    expect(page.locator("#d-name")).to_have_text("e.png")
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#zoom-hint")).to_be_visible()


@pytest.mark.parametrize("hash_", ["", "#only=exact_duplicate", "#view=duplicates"])
def test_closing_the_detail_leaves_the_address_as_it_was(open_page, served, hash_):
    page = open_page(hash_)
    before = page.url
    assert before == served + hash_
    page.locator("main section:not([hidden]) .card").first.click()
    expect(page.locator("#detail")).to_be_visible()
    assert "open=" in page.url
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    assert page.url == before  # not a bare "#" at the end
    page.go_back()  # Back opens the detail again, Forward closes it
    expect(page.locator("#detail")).to_be_visible()
    page.go_forward()
    expect(page.locator("#detail")).to_be_hidden()
    assert page.url == before
