"""A photographer culling a shoot in the page of ``boda serve`` for a while (headless
Chromium, Playwright): what shows only past the first page of cards, after a reload, in the
duplicate sets after marks, while the summary is polled, and with a photo larger than the
window.  Skipped where Playwright or Debian's ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import pytest
from PIL import Image
from serve_helpers import browser_expect, clear_marks, open_ready_page, serving

expect = browser_expect()

from boda.catalog import Marks  # noqa: E402
from boda.io import read_image, write_image  # noqa: E402
from boda.scan import scan  # noqa: E402
from boda.web import create_app  # noqa: E402

SMALL = 123  # with the 5 files before them: more than the page's 120 cards a request
BURST = ["a_burst_0.jpg", "a_burst_1.jpg", "a_burst_2.jpg"]
FIRST = [*BURST, "b_wide.jpg", "c_broken_in_the_middle_of_a_copy.jpg"]


@pytest.fixture(scope="module")
def shoot(tmp_path_factory, kodak_paths):
    """A burst of three near-identical frames, a photo wider than the window, a file cut
    short, then 123 small crops (``thumbs/t000.png``...): 128 files, two pages of cards."""
    root = tmp_path_factory.mktemp("journey") / "shoot"
    (root / "thumbs").mkdir(parents=True)
    photo = read_image(kodak_paths[2], max_side=256)
    for k, name in enumerate(BURST):  # the frame moved by a pixel or two each time
        write_image(root / name, photo[k : 250 + k, 2 * k : 250 + 2 * k])
    with Image.open(kodak_paths[0]) as wide:  # upscaled: wider than the window
        wide.convert("RGB").resize((1600, 1000)).save(root / "b_wide.jpg", quality=85)
    (root / FIRST[4]).write_bytes((root / "b_wide.jpg").read_bytes()[:3000])
    for j in range(SMALL):
        image = read_image(kodak_paths[j % len(kodak_paths)], max_side=160)
        at = (j // len(kodak_paths)) * 4  # 0 to 60: each crop of a photo is another
        write_image(root / "thumbs" / f"t{j:03d}.png", image[at : at + 40, at : at + 40])
    scan(root, workers=1)
    return root


@pytest.fixture(scope="module")
def served(shoot):
    with serving(create_app(shoot)) as url:
        yield url


def _decisions(root) -> dict[str, str]:
    with Marks(root, readonly=True) as marks:
        return {p.decode(): m.decision for p, m in marks.all().items() if m.decision}


@pytest.fixture
def open_page(browser, served, shoot):
    """``open_page(hash, advance=False, width=1280)``: a page of the served shoot without
    marks, ready; no error may reach its console."""
    clear_marks(shoot)
    pages, errors = [], []

    def open_(hash_: str = "", *, advance: bool = False, width: int = 1280):
        page = open_ready_page(
            browser, served + hash_, errors, width=width, console=True,
            init_script=f"localStorage.setItem('boda.advance', '{int(advance)}')",
        )
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
    assert errors == []


def _name(index: int) -> str:
    """The name of the card at ``index`` of the grid sorted by name."""
    return FIRST[index] if index < len(FIRST) else f"thumbs/t{index - len(FIRST):03d}.png"


def _focused(page) -> str:
    return page.evaluate("document.activeElement.title || document.activeElement.tagName")


def test_keys_pressed_while_the_next_page_loads_mark_the_next_cards(open_page, shoot):
    """Auto-advance past the last card loaded: each key waits for the card the one before
    moved to (they were lost, or marked the last card loaded again)."""
    page = open_page(advance=True)
    expect(page.locator("#grid .card")).to_have_count(120)
    page.locator("#grid .card").nth(116).focus()
    for _ in range(6):
        page.keyboard.press("x")
    expect(page.locator("#grid .card")).to_have_count(len(FIRST) + SMALL)
    expect(page.locator("#grid .card[data-decision=reject]")).to_have_count(6)
    assert _settled(lambda: _focused(page), _name(122)) == _name(122)
    assert _decisions(shoot) == {_name(i): "reject" for i in range(116, 122)}


def test_the_detail_s_auto_advance_past_the_page_marks_one_file_each(open_page, shoot):
    page = open_page(advance=True)
    page.locator("#grid .card").nth(116).press("Enter")
    expect(page.locator("#position")).to_have_text(f"117 of {len(FIRST) + SMALL}")
    for _ in range(6):
        page.keyboard.press("p")
    expect(page.locator("#position")).to_have_text(f"123 of {len(FIRST) + SMALL}")
    expect(page.locator("#d-name")).to_have_text(_name(122))
    expect(page.locator("#grid .card[data-decision=pick]")).to_have_count(6)
    assert _decisions(shoot) == {_name(i): "pick" for i in range(116, 122)}


def test_a_detail_reloaded_past_the_first_page_still_steps_and_gives_back_its_card(open_page):
    page = open_page()
    page.locator("#grid .card").nth(119).focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#grid .card").nth(120)).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#grid .card").nth(121)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#position")).to_have_text(f"122 of {len(FIRST) + SMALL}")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    # the pages up to the file are read again: "n of N" and → work, not "off"
    expect(page.locator("#position")).to_have_text(f"122 of {len(FIRST) + SMALL}")
    expect(page.locator("#next")).to_be_enabled()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#d-name")).to_have_text(_name(122))
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    # a keyboard user goes on from its card
    assert _settled(lambda: _focused(page), _name(122)) == _name(122)


def test_enter_pressed_while_the_next_page_loads_opens_the_card_moved_to(open_page):
    page = open_page()
    page.locator("#grid .card").nth(119).focus()
    page.keyboard.press("ArrowRight")  # the last card loaded: the next page is asked for
    page.keyboard.press("Enter")  # before it is there
    expect(page.locator("#position")).to_have_text(f"121 of {len(FIRST) + SMALL}")
    expect(page.locator("#d-name")).to_have_text(_name(120))


def _settled(read, want, timeout: float = 10.0):
    """``read()`` once it equals ``want`` (the page rebuilds a view in steps; on a loaded
    machine a read right after the first step's sign can see the step before), else the
    last value read, for the assertion to show."""
    import time

    deadline = time.monotonic() + timeout
    while (got := read()) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


def _set_cards(page) -> list[tuple[str, str, str]]:
    """(name, badge, decision) of each card of the first duplicate set shown."""
    rows = page.evaluate("""() => [...document.querySelector('#dup-sets .group')
        .querySelectorAll('.card')].map((c) => [c.title,
          c.querySelector('.badge').textContent, c.dataset.decision])""")
    return [tuple(row) for row in rows]


def test_the_duplicate_sets_show_the_marks_and_why_a_copy_is_kept_too(open_page, shoot):
    with Marks(shoot) as marks:  # as `boda mark DIR a_burst_1.jpg a_burst_2.jpg --pick`
        marks.set_decision([n.encode() for n in BURST[1:]], "pick")
    page = open_page("#view=duplicates")
    expect(page.locator("#dup-sets .group").first.locator(".card")).to_have_count(3)
    shown = _set_cards(page)
    assert [(badge, decision) for _, badge, decision in shown] == [
        ("kept", "pick"),
        ("kept: picked", "pick"),  # not "kept: a link points to it"
        ("redundant", ""),
    ]
    assert shown[2][0] == BURST[0]


def test_the_duplicate_sets_follow_the_marks_and_show_them_after_a_reload(open_page):
    page = open_page("#view=duplicates")
    expect(page.locator("#dup-sets .group").first.locator(".card")).to_have_count(3)
    kept = _set_cards(page)[0]
    assert kept[1] == "kept"
    page.locator("#dup-sets .card").first.click()
    expect(page.locator("#d-name")).to_have_text(kept[0])
    page.keyboard.press("x")  # the kept frame rejected; the two others picked
    page.keyboard.press("ArrowRight")
    page.keyboard.press("p")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("p")
    expect(page.locator("#d-mark-text")).to_have_text("✓ picked · no stars")
    page.keyboard.press("Escape")
    others = sorted(n for n in BURST if n != kept[0])
    # the keep rule reads the marks: a picked frame keeps, the other is kept for its pick
    expect(page.locator("#dup-sets .card").first).not_to_have_attribute("title", kept[0])
    roles = [("kept", "pick"), ("kept: picked", "pick"), ("redundant", "reject")]
    assert _settled(lambda: [(b, d) for _, b, d in _set_cards(page)], roles) == roles
    shown = _set_cards(page)
    assert sorted(name for name, _, _ in shown[:2]) == others
    assert shown[2][0] == kept[0]
    # the card of the file last viewed, built again
    assert _settled(lambda: _focused(page), others[1]) == others[1]
    page.reload()
    page.wait_for_selector("#dup-sets .card")
    # the marks are on the cards, read from the answer
    assert _settled(lambda: _set_cards(page), shown) == shown


def test_a_group_sort_shows_the_kept_file_the_marks_chose(open_page, served):
    page = open_page("#sort=near_duplicate")
    first = page.locator("#grid .card").first
    expect(first.locator(".badge.role")).to_have_text("kept")
    name = first.get_attribute("title")
    first.focus()
    page.keyboard.press("x")
    expect(first).to_have_attribute("data-decision", "reject")
    assert page.request.get(served + "api/duplicates").ok  # as the sets view reads them
    page.reload()
    page.wait_for_selector("#grid .card")
    card = page.locator(f'#grid .card[title="{name}"]')
    expect(card.locator(".badge.role")).to_have_text("redundant")
    expect(page.locator("#grid .card").first.locator(".badge.role")).to_have_text("kept")


def test_the_summary_built_again_keeps_the_focus_of_a_keyboard_user(open_page):
    page = open_page()
    link = page.locator("#selections a[data-only=near_duplicate]")
    link.focus()
    page.evaluate("renderSummary()")  # what each poll of the summary does
    assert page.evaluate("document.activeElement.dataset.only") == "near_duplicate"
    page.locator("#summary .stat").nth(1).focus()  # "readable": data-only "" as "files"
    page.evaluate("renderSummary()")
    assert (
        page.evaluate(
            "[...document.querySelectorAll('#summary .stat')].indexOf(document.activeElement)"
        )
        == 1
    )


@pytest.mark.parametrize("width", [1280, 700])
def test_a_photo_at_1_1_scrolls_inside_the_dialog_which_stays_in_the_window(open_page, width):
    page = open_page("#q=b_wide", width=width)
    page.locator("#grid .card").first.click()
    expect(page.locator("#preview")).to_have_js_property("naturalWidth", 1024)  # fitted
    page.keyboard.press("z")
    expect(page.locator("#preview")).to_have_js_property("naturalWidth", 1600)
    box = page.locator("#detail .panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    assert page.locator("#close").bounding_box()["x"] + 20 < width


def test_an_unreadable_file_s_name_is_not_broken_inside_a_word(open_page):
    page = open_page("#view=failures")
    name = page.locator("#failures td code").first
    expect(name).to_have_text(FIRST[4])
    assert len(name.evaluate("(n) => [...n.getClientRects()]")) == 1


#: Holds the answers of GET api/images/<id> for 600 ms after they arrive: the detail's
#: record is slow, as while the server computes the duplicate sets again after a mark.
SLOW_RECORDS = """{
  const fetch_ = window.fetch;
  window.fetch = async (...args) => {
    const answer = await fetch_(...args);
    if (/api\\/images\\/\\d+$/.test(String(args[0]))) await new Promise((r) => setTimeout(r, 600));
    return answer;
  };
}"""


def test_a_mark_made_while_the_detail_loads_is_not_undone_by_its_record(open_page, shoot):
    page = open_page("#q=b_wide")
    page.add_init_script(SLOW_RECORDS)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.locator("#grid .card").first.click()
    expect(page.locator("#detail")).to_be_visible()
    page.keyboard.press("p")  # before the record (read before the pick) arrives
    expect(page.locator("#grid .card").first).to_have_attribute("data-decision", "pick")
    expect(page.locator("#d-name")).to_have_text("b_wide.jpg")  # the record is there now
    expect(page.locator("#d-mark-text")).to_have_text("✓ picked · no stars")
    expect(page.locator("#grid .card").first).to_have_attribute("data-decision", "pick")
    assert _decisions(shoot) == {"b_wide.jpg": "pick"}


def _contrast(foreground: str, background: str) -> float:
    """WCAG 2.1 contrast ratio of two CSS ``rgb(r, g, b)`` colours."""

    def luminance(css: str) -> float:
        rgb = [int(v) / 255 for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _colours(locator) -> tuple[str, str]:
    """The text colour of ``locator`` and the first background behind it that is opaque."""
    return tuple(
        locator.evaluate("""(n) => {
        let box = n;
        const clear = (b) => getComputedStyle(b).backgroundColor === 'rgba(0, 0, 0, 0)';
        while (box && clear(box)) box = box.parentElement;
        return [getComputedStyle(n).color, getComputedStyle(box || document.body).backgroundColor];
    }""")
    )


def test_dimmed_text_and_the_lit_stars_are_readable(open_page):
    """WCAG AA: text 4.5:1 (the name of a selection with no file, "unreadable" on a card),
    the state of a button 3:1 (the stars given, in the detail)."""
    page = open_page()
    zero = page.locator("#selections a.zero").first
    assert _contrast(*_colours(zero)) >= 4.5
    assert _contrast(*_colours(page.locator(f'#grid .card[title="{FIRST[4]}"] .noimg'))) >= 4.5
    page.locator("#grid .card").first.click()
    expect(page.locator("#d-name")).to_have_text(FIRST[0])
    page.keyboard.press("3")
    expect(page.locator("#d-mark .star.on")).to_have_count(3)
    assert _contrast(*_colours(page.locator("#d-mark .star.on").first)) >= 3


def test_the_set_of_a_file_comes_from_the_plan_its_index_was_made_from(shoot):
    """``GET /api/images/{id}`` looks the file up in the cached index of the duplicate
    sets; a mark saved meanwhile (auto-advance: the mark of the file before, in another
    thread) makes the plan read again differ: the set must come from the same plan."""
    from boda.web._data import CatalogView

    view = CatalogView(shoot)
    with view.open() as catalog:
        image_id = catalog.ids_of_paths([BURST[0]])[BURST[0]]
    found = view.set_of(image_id)
    members = (found["keep"], *found["redundant"], *found["linked"])
    assert BURST[0] in {m["path"] for m in members}
    view.duplicate_plan = lambda: []  # the plan as read again after that mark
    assert view.set_of(image_id) == found
