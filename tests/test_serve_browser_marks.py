"""Culling in the page of ``boda serve``, in a real browser (headless Chromium, Playwright).

The keys a photographer culls with (P, X, U, 0-5, arrows), the badges and counts they
change, the marks file they write, and the compare view.  Skipped where Playwright or
Debian's ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager

import pytest
from serve_helpers import browser_expect, clear_marks, open_ready_page, photo_folder, serving

expect = browser_expect()

from boda.catalog import Marks  # noqa: E402
from boda.io import read_image, write_image  # noqa: E402
from boda.scan import scan  # noqa: E402
from boda.web import create_app  # noqa: E402

NAMES = ["a.png", "a2.png", "b.png", "c.png", "d.png", "e.png"]


@pytest.fixture(scope="module")
def shoot(tmp_path_factory, kodak_paths):
    """Six small photos, ``a2.png`` an exact copy of ``a.png`` (a set to compare)."""
    root, _ = photo_folder(tmp_path_factory, kodak_paths, [n for n in NAMES if n != "a2.png"],
                           max_side=48, prefix="cull", folder="shoot")
    shutil.copy(root / "a.png", root / "a2.png")
    scan(root, workers=1)
    return root


@pytest.fixture(scope="module")
def served(shoot):
    with serving(create_app(shoot)) as url:
        yield url


@pytest.fixture
def page(browser, served, shoot):
    clear_marks(shoot)  # each test starts with no marks
    errors: list[str] = []
    page = open_ready_page(browser, served, errors)
    yield page
    assert errors == []
    page.close()


@contextmanager
def _page_on_a_copy(browser, shoot, tmp_path):
    """A served copy of the shoot without marks, and a page open on it: for the tests
    that rescan or delete files under the page."""
    root = tmp_path / "shoot"
    shutil.copytree(shoot, root)
    clear_marks(root)
    with serving(create_app(root)) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        yield root, url, page
        page.close()


def _on_disk(root) -> dict[str, tuple]:
    with Marks(root, readonly=True) as marks:
        return {p.decode(): (m.decision, m.rating) for p, m in marks.all().items()}


def _card(page, name: str):
    return page.locator(f'#grid .card[title="{name}"]')


def _focused(page) -> str:
    return page.evaluate("document.activeElement.title")


def _stat(page, label: str) -> str:
    return page.locator(".stat", has_text=re.compile(rf"^\d+{label}$")).locator("b").inner_text()


def test_keys_on_the_grid_mark_the_focused_card_and_arrows_move(page, shoot):
    expect(page.locator("#grid .card")).to_have_count(6)
    _card(page, "a.png").focus()
    page.keyboard.press("p")
    expect(_card(page, "a.png")).to_have_attribute("data-decision", "pick")
    expect(_card(page, "a.png").locator(".flag-pick")).to_have_text("✓ pick")
    expect(page.locator("#announce[aria-live='polite']")).to_have_text("a.png: picked")
    expect(page.locator(".stat", has_text="picked").locator("b")).to_have_text("1")
    page.keyboard.press("ArrowRight")
    assert _focused(page) == "a2.png"
    page.keyboard.press("x")
    page.keyboard.press("3")
    expect(_card(page, "a2.png")).to_have_attribute("data-rating", "3")
    expect(_card(page, "a2.png").locator(".stars")).to_have_text("★★★")
    expect(_card(page, "a2.png")).to_have_attribute("data-decision", "reject")
    expect(page.locator("#announce")).to_have_text("a2.png: 3 stars")
    expect(page.locator(".stat", has_text="rejected").locator("b")).to_have_text("1")
    expect(page.locator(".stat", has_text="undecided").locator("b")).to_have_text("4")
    assert _on_disk(shoot) == {"a.png": ("pick", None), "a2.png": ("reject", 3)}
    # down one row and back: as many cards as the row holds
    per_row = page.evaluate("""() => { const c = [...document.querySelectorAll('#grid .card')];
        return c.filter((x) => x.offsetTop === c[0].offsetTop).length; }""")
    assert 2 <= per_row < 6
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowDown")
    assert _focused(page) == NAMES[per_row]
    page.keyboard.press("ArrowUp")
    assert _focused(page) == "a.png"
    page.keyboard.press("u")  # undecided: the pick goes, nothing else
    expect(_card(page, "a.png")).to_have_attribute("data-decision", "")
    assert _on_disk(shoot) == {"a2.png": ("reject", 3)}
    page.reload()  # the marks survive a reload: they are in the file
    page.wait_for_selector("body[data-ready='1']")
    expect(_card(page, "a2.png")).to_have_attribute("data-rating", "3")
    expect(_card(page, "a2.png").locator(".flag-reject")).to_be_visible()


def test_keys_and_buttons_in_the_detail_view_and_auto_advance(page, shoot):
    _card(page, "b.png").click()
    expect(page.locator("#d-name")).to_have_text("b.png")
    page.keyboard.press("P")
    expect(page.locator("#d-mark-text")).to_have_text("✓ picked · no stars")
    page.locator("#d-mark button[data-rating='4']").click()  # a mouse user's stars
    expect(page.locator("#d-mark-text")).to_have_text("✓ picked · ★★★★☆")
    expect(_card(page, "b.png").locator(".stars")).to_have_text("★★★★")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#d-name")).to_have_text("c.png")
    page.keyboard.press("Escape")
    _card(page, "c.png").click()
    page.locator("#d-advance").check()  # after a mark, on to the next file
    expect(page.locator("#advance")).to_be_checked()  # one setting, two toggles
    page.keyboard.press("x")
    expect(page.locator("#d-name")).to_have_text("d.png")
    page.keyboard.press("5")
    expect(page.locator("#d-name")).to_have_text("e.png")  # at the key, before the save
    expect(_card(page, "d.png")).to_have_attribute("data-rating", "5")  # saved
    assert _on_disk(shoot) == {"b.png": ("pick", 4), "c.png": ("reject", None),
                               "d.png": (None, 5)}
    page.locator("#d-advance").uncheck()


def test_keys_faster_than_the_server_with_auto_advance_mark_one_file_each(page, shoot):
    """Each key is for the file that is current after the keys before it and their
    advance, even when pressed before the last mark's answer (a tablet, a busy server)."""
    page.route("**/api/marks", lambda route: (page.wait_for_timeout(150), route.continue_()))
    _card(page, "a.png").click()
    expect(page.locator("#d-name")).to_have_text("a.png")
    page.locator("#d-advance").check()
    page.keyboard.type("pxp", delay=0)
    expect(page.locator("#d-name")).to_have_text("c.png")
    page.keyboard.press("x")
    expect(page.locator("#d-name")).to_have_text("d.png")
    expect(_card(page, "c.png")).to_have_attribute("data-decision", "reject")  # the last
    assert _on_disk(shoot) == {"a.png": ("pick", None), "a2.png": ("reject", None),
                               "b.png": ("pick", None), "c.png": ("reject", None)}
    page.keyboard.press("Escape")
    _card(page, "d.png").focus()  # the grid: the focus moves at once too
    page.keyboard.type("5x", delay=0)
    expect(_card(page, "e.png")).to_have_attribute("data-decision", "reject")
    assert _on_disk(shoot)["d.png"] == (None, 5) and _on_disk(shoot)["e.png"] == ("reject", None)
    page.locator("#advance").uncheck()
    page.unroute("**/api/marks")


def test_the_culling_selections_and_the_stars_filter(page, shoot):
    with Marks(shoot) as marks:
        marks.set_decision([b"a.png", b"c.png"], "pick")
        marks.set_rating([b"c.png"], 4)
        marks.set_rating([b"e.png"], 2)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.locator("#mark-selections a", has_text="picked").click()
    expect(page.locator("#grid .card")).to_have_count(2)
    page.select_option("#stars", "3")
    expect(page.locator("#grid .card")).to_have_count(1)
    assert "stars=3" in page.url
    page.locator("#mark-selections a", has_text="rated").click()
    expect(page.locator("#grid .card")).to_have_count(1)  # e.png has 2 stars only
    page.select_option("#stars", "0")
    page.select_option("#sort", "rating")
    expect(page.locator("#grid .card")).to_have_count(2)
    assert page.locator("#grid .card .name").all_inner_texts() == ["c.png", "e.png"]
    # a mark that takes a card out of a view chosen by marks: the count says it is old
    page.locator("#mark-selections a", has_text="picked").click()
    expect(page.locator("#count")).to_contain_text("picked: 2 files (showing 2)")
    _card(page, "a.png").focus()
    page.keyboard.press("u")
    expect(page.locator("#count")).to_contain_text("as loaded: marks changed since")
    page.reload()  # read again
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#grid .card")).to_have_count(1)
    expect(page.locator("#count")).not_to_contain_text("as loaded")


def test_ctrl_z_puts_the_last_marks_back_as_they_were(page, shoot):
    with Marks(shoot) as marks:  # marks made earlier, e.g. by boda mark
        marks.set_decision([b"c.png"], "reject")
        marks.set_rating([b"c.png"], 2)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    _card(page, "c.png").focus()
    page.keyboard.press("p")
    page.keyboard.press("5")
    expect(_card(page, "c.png")).to_have_attribute("data-rating", "5")
    _card(page, "d.png").focus()
    page.keyboard.press("x")
    expect(_card(page, "d.png")).to_have_attribute("data-decision", "reject")
    assert _on_disk(shoot) == {"c.png": ("pick", 5), "d.png": ("reject", None)}

    page.keyboard.press("Control+z")  # the reject of d.png
    expect(_card(page, "d.png")).to_have_attribute("data-decision", "")
    expect(page.locator("#toast")).to_contain_text("undone: d.png")
    assert _on_disk(shoot) == {"c.png": ("pick", 5)}
    page.keyboard.press("Control+z")  # the 5 stars of c.png
    expect(_card(page, "c.png")).to_have_attribute("data-rating", "2")
    expect(_card(page, "c.png")).to_have_attribute("data-decision", "pick")
    page.keyboard.press("Control+z")  # the pick of c.png: the reject it had comes back
    expect(_card(page, "c.png")).to_have_attribute("data-decision", "reject")
    expect(page.locator(".stat", has_text="rejected").locator("b")).to_have_text("1")
    assert _on_disk(shoot) == {"c.png": ("reject", 2)}
    page.keyboard.press("Control+z")
    expect(page.locator("#toast")).to_have_text("nothing to undo")
    assert _on_disk(shoot) == {"c.png": ("reject", 2)}
    # keys faster than the server: each waits for the one before, the undo too
    _card(page, "e.png").focus()
    for key in ("p", "4", "Control+z", "Control+z", "x"):
        page.keyboard.press(key)
    expect(_card(page, "e.png")).to_have_attribute("data-decision", "reject")
    expect(_card(page, "e.png")).to_have_attribute("data-rating", "0")
    page.keyboard.press("Control+z")
    expect(_card(page, "e.png")).to_have_attribute("data-decision", "")
    expect(page.locator("#toast")).to_contain_text("undone: e.png")
    assert _on_disk(shoot) == {"c.png": ("reject", 2)}


def test_several_cards_are_selected_and_marked_at_once(page, shoot):
    expect(page.locator("#grid .card")).to_have_count(6)
    _card(page, "a.png").focus()
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")  # a.png, a2.png, b.png
    expect(page.locator("#grid .card.selected")).to_have_count(3)
    expect(page.locator("#selection")).to_contain_text("3 of 6 selected")
    expect(page.locator('#grid .card[aria-selected="true"]')).to_have_count(3)
    # a listbox of options for assistive technology: what aria-selected belongs to
    expect(page.locator('#grid[role="listbox"][aria-multiselectable="true"] '
                        '.card[role="option"]')).to_have_count(6)
    page.keyboard.press("x")
    for name in ("a.png", "a2.png", "b.png"):
        expect(_card(page, name)).to_have_attribute("data-decision", "reject")
    expect(page.locator("#announce")).to_have_text("3 files: rejected")
    assert _on_disk(shoot) == {n: ("reject", None) for n in ("a.png", "a2.png", "b.png")}
    page.keyboard.press("Escape")
    expect(page.locator("#grid .card.selected")).to_have_count(0)
    expect(page.locator("#selection")).to_be_hidden()
    assert not page.locator("#detail").is_visible()

    _card(page, "c.png").click(modifiers=["Control"])  # one more, without opening it
    _card(page, "e.png").click(modifiers=["Control"])
    assert not page.locator("#detail").is_visible()
    expect(page.locator("#grid .card.selected")).to_have_count(2)
    page.keyboard.press("4")  # e.png is focused and selected: both get 4 stars
    expect(_card(page, "c.png")).to_have_attribute("data-rating", "4")
    expect(_card(page, "e.png")).to_have_attribute("data-rating", "4")
    expect(_card(page, "d.png")).to_have_attribute("data-rating", "0")
    page.keyboard.press("Control+z")  # one undo takes back the whole batch
    expect(_card(page, "c.png")).to_have_attribute("data-rating", "0")
    expect(_card(page, "e.png")).to_have_attribute("data-rating", "0")

    _card(page, "d.png").click(modifiers=["Shift"])  # a range from the focused e.png
    expect(page.locator("#grid .card.selected")).to_have_count(2)
    _card(page, "b.png").focus()  # a card outside the selection marks itself only
    page.keyboard.press("p")
    expect(_card(page, "b.png")).to_have_attribute("data-decision", "pick")
    expect(_card(page, "d.png")).to_have_attribute("data-decision", "")
    page.keyboard.press("Control+a")
    expect(page.locator("#grid .card.selected")).to_have_count(6)
    page.keyboard.press("u")
    for name in NAMES:
        expect(_card(page, name)).to_have_attribute("data-decision", "")
    assert _on_disk(shoot) == {}


def test_a_refused_write_is_said_not_swallowed(page, shoot):
    page.route(re.compile(r".*/api/marks$"), lambda route: route.fulfill(
        status=403, content_type="application/json",
        body='{"detail": "cannot write the marks file: its folder is read-only"}'))
    _card(page, "a.png").focus()
    page.keyboard.press("p")
    expect(page.locator("#toast")).to_contain_text("its folder is read-only")
    expect(page.locator("#toast")).to_have_class("error")
    expect(_card(page, "a.png")).to_have_attribute("data-decision", "")
    assert _on_disk(shoot) == {}


def test_a_read_only_page_hides_the_marking_controls(browser, shoot):
    clear_marks(shoot)
    with Marks(shoot) as marks:
        marks.set_decision([b"b.png"], "reject")
    with serving(create_app(shoot, read_only=True)) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#marks-note")).to_contain_text("read-only")
        expect(_card(page, "b.png").locator(".flag-reject")).to_be_visible()  # still shown
        _card(page, "b.png").click()
        assert page.locator("#d-mark .mark-controls").is_hidden()
        page.keyboard.press("p")
        expect(page.locator("#toast")).to_contain_text("read-only")
        page.close()
    assert _on_disk(shoot) == {"b.png": ("reject", None)}


def test_compare_shows_a_duplicate_set_side_by_side_to_pick_one(page, shoot):
    _card(page, "a2.png").click()
    expect(page.locator("#compare-open")).to_be_visible()
    page.keyboard.press("c")
    panes = page.locator("#panes .pane")
    expect(panes).to_have_count(2)
    expect(page.locator("#panes .pane-name")).to_have_text(["a2.png", "a.png"])
    expect(page.locator("#panes .pane .badge.keep")).to_have_count(1)
    expect(panes.nth(0).locator(".pane-facts")).to_contain_text("sharpness")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("p")
    expect(panes.nth(1)).to_have_attribute("data-decision", "pick")
    panes.nth(0).locator("button[data-decision='reject']").click()
    expect(panes.nth(0)).to_have_attribute("data-decision", "reject")
    page.keyboard.press("z")  # 1:1 in every pane at once
    expect(page.locator("#panes")).to_have_class(re.compile(r"\bfull\b"))
    expect(panes.nth(0).locator("img")).to_have_attribute("src", re.compile(r"max_side=48$"))
    page.keyboard.press("Escape")
    expect(page.locator("#compare")).to_be_hidden()
    assert _on_disk(shoot) == {"a.png": ("pick", None), "a2.png": ("reject", None)}
    expect(page.locator("#d-mark-text")).to_contain_text("rejected")  # the detail follows


def test_ctrl_z_puts_back_a_mark_made_by_boda_mark_after_the_page_loaded(page, shoot):
    """Undo restores what the file had just before the key, not what the page loaded."""
    with Marks(shoot) as marks:  # as `boda mark DIR b.png --reject --rating 3`, page open
        marks.set_decision([b"b.png"], "reject")
        marks.set_rating([b"b.png"], 3)
    _card(page, "b.png").focus()
    page.keyboard.press("p")
    expect(_card(page, "b.png")).to_have_attribute("data-decision", "pick")
    assert _on_disk(shoot) == {"b.png": ("pick", 3)}
    page.keyboard.press("Control+z")
    expect(_card(page, "b.png")).to_have_attribute("data-decision", "reject")
    expect(_card(page, "b.png")).to_have_attribute("data-rating", "3")
    assert _on_disk(shoot) == {"b.png": ("reject", 3)}


def test_ctrl_z_says_when_it_undoes_a_mark_made_elsewhere_since(page, shoot):
    _card(page, "c.png").focus()
    page.keyboard.press("p")
    expect(_card(page, "c.png")).to_have_attribute("data-decision", "pick")
    with Marks(shoot) as marks:  # another tab, or boda mark, after the page's key
        marks.set_rating([b"c.png"], 4)
    page.keyboard.press("Control+z")
    expect(page.locator("#toast")).to_contain_text(
        "c.png had been marked elsewhere since (pick ★4): Ctrl+Shift+Z puts that back")
    assert _on_disk(shoot) == {}
    page.keyboard.press("Control+Shift+z")
    expect(_card(page, "c.png")).to_have_attribute("data-rating", "4")
    assert _on_disk(shoot) == {"c.png": ("pick", 4)}


def test_ctrl_shift_z_redoes_what_ctrl_z_undid_until_a_new_mark(page, shoot):
    _card(page, "a.png").focus()
    page.keyboard.press("p")
    page.keyboard.press("3")
    expect(_card(page, "a.png")).to_have_attribute("data-rating", "3")
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    expect(_card(page, "a.png")).to_have_attribute("data-decision", "")
    assert _on_disk(shoot) == {}
    page.keyboard.press("Control+Shift+z")  # the pick again
    expect(_card(page, "a.png")).to_have_attribute("data-decision", "pick")
    expect(page.locator("#toast")).to_contain_text("redone: a.png")
    page.keyboard.press("Control+y")  # and the stars
    expect(_card(page, "a.png")).to_have_attribute("data-rating", "3")
    assert _on_disk(shoot) == {"a.png": ("pick", 3)}
    page.keyboard.press("Control+y")
    expect(page.locator("#toast")).to_have_text("nothing to redo")
    page.keyboard.press("Control+z")  # the stars go; the redone change undoes like any
    expect(_card(page, "a.png")).to_have_attribute("data-rating", "0")
    page.keyboard.press("x")  # a new mark: nothing left to redo
    expect(_card(page, "a.png")).to_have_attribute("data-decision", "reject")
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#toast")).to_have_text("nothing to redo")
    assert _on_disk(shoot) == {"a.png": ("reject", None)}


def test_another_tabs_marks_show_on_the_cards_at_the_next_refresh(browser, served, shoot):
    """Two tabs (or boda mark beside the page): the cards of the other catch up when
    its periodic refresh sees that the marks changed, not only its counts."""
    clear_marks(shoot)
    other = browser.new_page()
    other.clock.install()
    other.goto(served)
    other.wait_for_selector("body[data-ready='1']")
    expect(other.locator('#grid .card[title="c.png"]')).to_have_attribute("data-decision", "")
    this = browser.new_page()
    this.goto(served)
    this.wait_for_selector("body[data-ready='1']")
    _card(this, "c.png").focus()
    this.keyboard.press("x")
    this.keyboard.press("3")
    expect(_card(this, "c.png")).to_have_attribute("data-rating", "3")
    with Marks(shoot) as marks:  # and boda mark, for another file
        marks.set_decision([b"e.png"], "pick")
    other.clock.run_for(25_000)  # past the idle refresh (20 s)
    expect(other.locator('#grid .card[title="c.png"]')).to_have_attribute("data-decision",
                                                                           "reject")
    expect(other.locator('#grid .card[title="c.png"]')).to_have_attribute("data-rating", "3")
    expect(other.locator('#grid .card[title="e.png"]')).to_have_attribute("data-decision",
                                                                           "pick")
    this.close()
    other.close()


def test_marks_made_by_boda_mark_show_when_the_grid_is_read_again(page, shoot):
    _card(page, "d.png").focus()
    page.keyboard.press("p")
    expect(_card(page, "d.png")).to_have_attribute("data-decision", "pick")
    with Marks(shoot) as marks:  # as `boda mark DIR d.png --reject` beside the page
        marks.set_decision([b"d.png"], "reject")
    page.locator("#mark-selections a", has_text="rejected").click()
    expect(page.locator("#grid .card")).to_have_count(1)
    expect(_card(page, "d.png")).to_have_attribute("data-decision", "reject")


def test_c_on_a_grid_card_compares_it_with_the_next_ones(page, shoot):
    """A burst that is no duplicate set: sorted by capture time its frames are neighbours."""
    _card(page, "b.png").focus()
    page.keyboard.press("c")
    expect(page.locator("#panes .pane-name")).to_have_text(["b.png", "c.png", "d.png", "e.png"])
    expect(page.locator("#panes .badge.keep")).to_have_count(0)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("4")
    expect(page.locator("#panes .pane").nth(2)).to_have_attribute("data-rating", "4")
    page.keyboard.press("Escape")
    expect(_card(page, "d.png").locator(".stars")).to_have_text("★★★★")
    assert _on_disk(shoot) == {"d.png": (None, 4)}
    expect(_card(page, "b.png")).to_be_focused()  # the focus is back on the card: keys work on
    page.keyboard.press("x")
    expect(_card(page, "b.png")).to_have_attribute("data-decision", "reject")


def test_shift_click_selects_from_the_focused_card(page, shoot):
    _card(page, "b.png").click()  # opened, then closed: the card has the focus
    expect(page.locator("#d-name")).to_have_text("b.png")
    page.keyboard.press("Escape")
    expect(_card(page, "b.png")).to_be_focused()
    _card(page, "e.png").click(modifiers=["Shift"])
    expect(page.locator("#grid .card.selected")).to_have_count(4)  # b, c, d, e
    expect(page.locator("#selection")).to_contain_text("4 of 6 selected")
    page.keyboard.press("2")
    for name in ("b.png", "c.png", "d.png", "e.png"):
        expect(_card(page, name)).to_have_attribute("data-rating", "2")


def test_a_page_older_than_a_rescan_does_not_mark_the_file_that_took_an_id(browser, shoot,
                                                                             tmp_path):
    """After a rescan an id can name another file; the page's mark is refused, and said."""
    import json
    import urllib.request

    with _page_on_a_copy(browser, shoot, tmp_path) as (root, url, page):
        with urllib.request.urlopen(url + "api/images?limit=100") as answer:
            records = json.load(answer)["images"]
        last = max(records, key=lambda r: r["id"])
        (root / last["path"]).unlink()
        write_image(root / "new.png", read_image(root / "b.png")[::-1])
        scan(root, workers=1)
        with urllib.request.urlopen(f"{url}api/images/{last['id']}") as answer:
            assert json.load(answer)["path"] == "new.png"  # the id was given again

        _card(page, last["path"]).focus()  # the page still shows the deleted file
        page.keyboard.press("p")
        expect(page.locator("#toast")).to_contain_text("not marked")
        expect(page.locator("#toast")).to_contain_text("reload")
        expect(_card(page, last["path"])).to_have_attribute("data-decision", "")
        assert _on_disk(root) == {}
        # a later mark that goes through takes the refusal off the screen
        _card(page, "a.png").focus()
        page.keyboard.press("x")
        expect(_card(page, "a.png")).to_have_attribute("data-decision", "reject")
        expect(page.locator("#toast")).to_be_hidden()


def test_an_undo_the_server_refuses_stays_for_another_try(browser, shoot, tmp_path):
    with _page_on_a_copy(browser, shoot, tmp_path) as (root, _, page):
        _card(page, "e.png").focus()
        page.keyboard.press("p")
        expect(_card(page, "e.png")).to_have_attribute("data-decision", "pick")
        (root / "e.png").unlink()  # gone, and scanned: the page is stale for it
        scan(root, workers=1)
        page.keyboard.press("Control+z")
        expect(page.locator("#toast")).to_contain_text("not marked")
        page.keyboard.press("Control+z")  # still there to try again, refused again
        expect(page.locator("#toast")).to_contain_text("not marked")
        expect(page.locator("#toast")).not_to_contain_text("nothing to undo")


def test_tab_stays_inside_the_open_detail_view(page, shoot):
    _card(page, "b.png").click()
    expect(page.locator("#d-name")).to_have_text("b.png")
    inside = "() => document.getElementById('detail').contains(document.activeElement)"
    for key in ["Tab"] * 25 + ["Shift+Tab"] * 25:
        page.keyboard.press(key)
        assert page.evaluate(inside), key
    page.keyboard.press("Escape")
    expect(_card(page, "b.png")).to_be_focused()


def test_the_culling_selection_shown_is_the_highlighted_one(page, shoot):
    page.locator("#mark-selections a", has_text="undecided").click()
    expect(page.locator("#mark-selections a", has_text="undecided")).to_have_class(
        re.compile(r"\bactive\b"))
    expect(page.locator("aside a.active")).to_have_count(1)  # not "all files" any more
    _card(page, "a.png").focus()
    page.keyboard.press("p")  # the sidebar is drawn again with the new counts
    expect(page.locator("#mark-selections a", has_text="undecided")).to_have_class(
        re.compile(r"\bactive\b"))


def test_a_rescan_under_the_open_page_is_said_and_its_old_cards_do_not_open(browser, shoot,
                                                                             tmp_path):
    with _page_on_a_copy(browser, shoot, tmp_path) as (root, url, page):
        page.evaluate("POLL.idle = 200; POLL.busy = 200")
        (root / "e.png").unlink()
        write_image(root / "new.png", read_image(root / "b.png")[::-1])
        scan(root, workers=1)
        expect(page.locator("#rescanned")).to_contain_text("catalog changed", timeout=5000)
        _card(page, "e.png").click()  # its id is gone or names new.png now
        expect(page.locator("#toast")).to_contain_text("e.png is no longer in the catalog")
        expect(page.locator("#detail")).to_be_hidden()
        page.locator("#rescanned button").click()
        page.wait_for_selector("body[data-ready='1']")
        expect(_card(page, "new.png")).to_have_count(1)
        expect(page.locator("#rescanned")).to_have_count(0)


def test_a_selection_with_a_link_marks_the_files_and_a_link_alone_says_why(browser, shoot,
                                                                          tmp_path):
    """A link is in no selection, so the server refuses to mark one: a selection taking
    a link in (Ctrl+A) marks the other cards, and P on the link card says why."""
    root = tmp_path / "shoot"
    shutil.copytree(shoot, root)
    clear_marks(root)
    (root / "link.png").symlink_to("b.png")
    scan(root, workers=1)
    with serving(create_app(root)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#grid .card")).to_have_count(7)
        _card(page, "a.png").focus()
        page.keyboard.press("Control+a")
        page.keyboard.press("p")
        expect(page.locator("#announce")).to_have_text("6 files: picked")
        assert _on_disk(root) == {n: ("pick", None) for n in NAMES}
        _card(page, "link.png").focus()
        page.keyboard.press("Escape")
        page.keyboard.press("3")
        expect(page.locator("#toast")).to_contain_text("a link is in no selection")
        expect(_card(page, "link.png")).to_have_attribute("data-rating", "0")
        assert _on_disk(root) == {n: ("pick", None) for n in NAMES}
        _card(page, "link.png").click()  # its detail view: buttons off, the target named
        expect(page.locator("#d-mark-text")).to_have_text("a link: mark b.png")
        expect(page.locator("#d-mark button[data-decision='pick']")).to_be_disabled()
        page.keyboard.press("Escape")
        _card(page, "a.png").click()  # a file's buttons are on again
        expect(page.locator("#d-mark button[data-decision='pick']")).to_be_enabled()
        page.close()
