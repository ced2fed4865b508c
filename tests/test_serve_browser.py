"""The page of ``boda serve`` in a real browser (headless Chromium through Playwright).

Skipped where Playwright or Debian's ``/usr/bin/chromium`` is missing (no browser is
downloaded).  One server and one browser for the module: a few seconds in all.
"""

from __future__ import annotations

import re
import shutil
import threading
import time

import pytest
from serve_helpers import browser_expect, photo_folder, serving

expect = browser_expect()

from boda.io import read_image, write_image  # noqa: E402
from boda.scan import scan  # noqa: E402
from boda.web import create_app  # noqa: E402

#: A file name that is HTML: the page must show it as text, never make an element of it.
EVIL = '<img src=x onerror="document.title=`pwned`" class=injected>.png'


@pytest.fixture(scope="module")
def served(tmp_path_factory, kodak_paths):
    """A scanned folder served on a free port: (base URL, folder)."""
    root, images = photo_folder(tmp_path_factory, kodak_paths, [f"{n}.png" for n in "abcd"],
                                max_side=64, prefix="browse")
    shutil.copy(root / "a.png", root / "a copy.png")
    write_image(root / "dark.png", images[1] ** 2.2 * 0.08)
    write_image(root / EVIL, images[2][::-1])
    (root / "broken.png").write_bytes(b"not an image")
    scan(root, workers=1)
    with serving(create_app(root)) as url:
        yield url, root


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(served[0])
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    yield page
    assert errors == []
    page.close()


def _stat(page, label: str) -> str:
    return page.locator(".stat", has_text=label).first.locator("b").inner_text()


def test_summary_counts_and_every_card(page):
    assert _stat(page, "files") == "8" and _stat(page, "unreadable") == "1"
    assert _stat(page, "exact_duplicate") == "2" and _stat(page, "dark") == "1"
    assert page.locator(".card").count() == 8
    assert "boda — photos" in page.title()


def test_a_flag_shows_its_cards_and_its_url(page, served):
    page.locator("#selections a", has_text="exact_duplicate").click()
    expect(page.locator(".card")).to_have_count(2)
    names = page.locator(".card .name").all_inner_texts()
    assert names == ["a copy.png", "a.png"]
    assert "only=exact_duplicate" in page.url
    page.reload()  # the view is in the URL: a bookmark opens it again
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".card")).to_have_count(2)
    assert page.locator("#selections a.active").inner_text().startswith("exact_duplicate")


def test_a_card_opens_its_detail_with_scores_and_keys_move(page):
    page.locator(".card", has_text="dark.png").click()
    detail = page.locator("#detail")
    detail.wait_for(state="visible")
    expect(page.locator("#d-name")).to_have_text("dark.png")
    assert page.locator("#d-path").inner_text().endswith("/photos/dark.png")
    scores = page.locator("#d-scores tr.flagged").all_inner_texts()
    assert any(row.startswith("dark") and "dark >" in row for row in scores)
    expect(page.locator("#preview")).to_have_attribute("src", re.compile(r"api/preview/\d+"))
    page.wait_for_load_state("networkidle")
    assert page.locator("#preview").evaluate("img => img.naturalWidth") == 64
    expect(page.locator("#position")).to_have_text("8 of 8")  # the last in path order
    for key, name in (("k", "d.png"), ("ArrowRight", "dark.png"), ("ArrowLeft", "d.png"),
                      ("j", "dark.png")):
        page.keyboard.press(key)
        expect(page.locator("#d-name")).to_have_text(name)
    page.keyboard.press("Escape")
    detail.wait_for(state="hidden")
    assert "open=" not in page.url


def test_a_name_that_is_html_is_shown_as_text(page):
    card = page.locator(".card .name", has_text="onerror")
    assert card.inner_text() == EVIL
    assert page.locator("img.injected, .injected").count() == 0
    assert "pwned" not in page.title()
    card.click()
    expect(page.locator("#d-name")).to_have_text(EVIL)
    assert page.locator(".injected").count() == 0 and "pwned" not in page.title()


def test_the_duplicates_view_shows_a_set_with_its_keeper(page):
    page.locator("#nav-duplicates").click()
    # the exact copies of a.png, and dark.png that looks like b.png
    expect(page.locator("#dup-sets .group")).to_have_count(2)
    group = page.locator("#dup-sets .group", has_text="exact group")
    assert group.locator(".badge.keep").count() == 1
    assert group.locator(".card").count() == 2 and "1 redundant" in group.inner_text()
    assert sorted(group.locator(".card .name").all_inner_texts()) == ["a copy.png", "a.png"]


def test_the_failures_table_names_the_file(page):
    page.locator("#nav-failures").click()
    page.wait_for_selector("#failures td")
    assert "broken.png" in page.locator("#failures").inner_text()
    assert page.locator("#failure-reasons").is_hidden()  # one failure: nothing to group
    assert page.locator("#not-scanned-view").is_hidden()  # the walk passed nothing over


def test_shared_failure_reasons_are_grouped(browser, tmp_path):
    root = tmp_path / "card"
    root.mkdir()
    for k in range(4):
        (root / f"empty{k}.jpg").write_bytes(b"")
    (root / "noise.png").write_bytes(b"not a png")
    (root / ".IMG_9.JPG.icloud").write_bytes(b"bplist00")
    scan(root, workers=1)
    with serving(create_app(root)) as url:
        page = browser.new_page()
        page.goto(url + "#view=failures")
        page.wait_for_selector("#failure-reasons td")
        rows = page.locator("#failure-reasons tr").all_inner_texts()
        assert len(rows) == 3 and "4" in rows[1] and "empty0.jpg" in rows[1]
        assert page.locator("#failures tr").count() == 1 + 5
        assert page.locator("#not-scanned li").all_inner_texts() == [
            "1 file is an iCloud placeholder, not downloaded: IMG_9.JPG (download it, e.g. turn "
            'off "Optimise Mac Storage", and scan again)']
        page.close()


def test_mirror_images_say_so_in_the_duplicates_the_grid_and_the_detail(browser, tmp_path,
                                                                       kodak_paths):
    root = tmp_path / "mirror"
    root.mkdir()
    a, b = (read_image(p, max_side=64) for p in kodak_paths[:2])
    write_image(root / "a.png", a)
    write_image(root / "a flipped.png", a[:, ::-1].copy())
    write_image(root / "b.png", b)
    (root / "b copy.png").write_bytes((root / "b.png").read_bytes())
    scan(root, workers=1, mirrored=True)
    with serving(create_app(root)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "#view=duplicates")
        expect(page.locator("#dup-sets .group")).to_have_count(2)
        flipped = page.locator("#dup-sets .group", has_text="near group")
        expect(flipped).to_contain_text("2 matched as a mirror image")
        expect(flipped.locator(".badge.mirrored")).to_have_count(2)
        copies = page.locator("#dup-sets .group", has_text="exact group")
        assert copies.locator(".badge.mirrored").count() == 0
        assert "mirror image" not in copies.inner_text()
        page.goto(url + "#view=grid&only=near_duplicate")
        expect(page.locator("#grid .card")).to_have_count(2)
        expect(page.locator("#grid .card .badge.mirrored")).to_have_count(2)
        page.locator("#grid .card", has_text="a.png").first.click()
        groups = page.locator("#d-groups")
        expect(groups.locator(".card")).to_have_count(2)
        expect(groups.locator(".badge.mirrored")).to_have_count(2)
        page.close()


def test_an_unreadable_file_says_why_in_its_detail(page):
    # The first grid's thumbnails may still be on their way (a busy machine): only the
    # requests made once they are in count.
    page.wait_for_load_state("networkidle")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/thumbnails/" in r.url else None)
    page.locator(".stat", has_text="unreadable").click()
    expect(page.locator(".card")).to_have_count(1)
    # no thumbnail is asked for (a 404 in the console), the card says why
    expect(page.locator(".card .noimg")).to_have_text("unreadable")
    assert page.locator(".card img").count() == 0 and asked == []
    page.locator(".card").click()
    expect(page.locator("#preview-error")).to_contain_text("broken.png could not be read")
    assert page.locator("#preview").is_hidden()


def test_copy_and_download_paths_keep_the_search(page):
    """F2: with a search, the buttons give the paths the grid shows, and say so."""
    page.fill("#search", "dark")
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator("#download-paths")).to_have_attribute("href", re.compile(r"q=dark"))
    with page.expect_response(re.compile(r"api/paths\?.*q=dark")) as answer:
        page.locator("#copy-paths").click()
    assert answer.value.body().decode().endswith("/photos/dark.png\n")
    assert answer.value.body().count(b"\n") == 1
    expect(page.locator("#toast")).to_contain_text("1 path (all files, matching “dark”)")


def test_a_running_scan_is_shown_and_the_page_follows_it(browser, served, scan_lock_held):
    """F3: a scan that holds the catalog's lock is "running", not "interrupted"; the open
    page asks the summary again by itself."""
    from boda.catalog import Catalog

    page = browser.new_page()
    page.goto(served[0])
    page.wait_for_selector("body[data-ready='1']")
    page.evaluate("POLL.idle = 200; POLL.busy = 200")
    with Catalog(served[1]) as catalog:
        before = catalog.get_setting("last_scan")
        catalog.set_setting("last_scan", {"complete": False, "started": time.time() + 60,
                                          "to_analyse": 5})
        catalog.note_content_changed()  # as a scan with files to analyse does
    try:
        with scan_lock_held(served[1]):
            expect(page.locator("#warnings")).to_contain_text(
                "A scan is running: 0 of 5 files", timeout=5000
            )
            assert "interrupted" not in page.locator("#warnings").inner_text()
    finally:
        with Catalog(served[1]) as catalog:
            catalog.set_setting("last_scan", before)
    expect(page.locator("#warnings")).not_to_contain_text("A scan is running", timeout=5000)
    # the scan changed the records meanwhile: the page says it may be behind
    expect(page.locator("#rescanned")).to_contain_text("catalog changed")
    page.close()


def test_cards_show_sharpness_and_a_group_sort_the_kept_file_first(page):
    """F7: every card says its sharpness; sorted by group, the kept file comes first."""
    first = page.locator(".card").first
    expect(first.locator(".sharp")).to_contain_text(re.compile(r"sharpness \d"))
    page.select_option("#sort", "exact_duplicate")
    expect(page.locator(".card .badge.role")).to_have_count(2)
    roles = page.locator(".card .badge.role").all_inner_texts()
    assert roles == ["kept", "redundant"]
    page.select_option("#sort", "blurry")
    expect(page.locator(".card .score").first).to_contain_text("sharpness")


def test_z_or_a_click_shows_the_file_at_full_size_and_esc_fits_it(page):
    """F6: 1:1 in the detail; Esc first fits it again, then closes; focus goes back to
    the card (F12)."""
    page.locator(".card", has_text="dark.png").click()
    preview = page.locator("#preview")
    expect(preview).to_have_attribute("src", re.compile(r"max_side=1024"))
    preview.click()
    expect(page.locator(".preview")).to_have_class(re.compile(r"\bfull\b"))
    expect(preview).to_have_attribute("src", re.compile(r"max_side=64$"))  # its full size
    page.keyboard.press("Escape")
    expect(page.locator(".preview")).not_to_have_class(re.compile(r"\bfull\b"))
    assert page.locator("#detail").is_visible()
    page.keyboard.press("z")
    expect(page.locator(".preview")).to_have_class(re.compile(r"\bfull\b"))
    page.keyboard.press("z")
    expect(preview).to_have_attribute("src", re.compile(r"max_side=1024"))
    page.keyboard.press("Escape")
    page.locator("#detail").wait_for(state="hidden")
    focused = page.evaluate("document.activeElement.title")
    assert focused == "dark.png"


def test_dataset_selections_are_apart_and_names_keep_their_spaces(page):
    """F10: label_conflict under "Datasets", not among the flags nor as a summary card;
    F12: names keep runs of spaces."""
    assert page.locator("#dataset-selections a", has_text="label_conflict").count() == 1
    assert page.locator("#selections a", has_text="label_conflict").count() == 0
    assert page.locator(".stat", has_text="label_conflict").count() == 0
    assert page.locator("#datasets-heading").is_visible()
    space = page.locator(".card .name").first.evaluate("n => getComputedStyle(n).whiteSpace")
    assert space == "pre-wrap"


def test_a_page_of_another_site_cannot_load_the_images(browser, served):
    """F5: Chromium marks an ``<img>`` of another site's page (here ``localhost`` on another
    port, as the hunt's) as ``cross-site``; the app refuses it, so the page cannot read
    the images' sizes or make the app decode them."""
    import http.server
    import json
    import urllib.request

    images = json.load(urllib.request.urlopen(served[0] + "api/images?limit=1"))["images"]
    target = f"{served[0]}api/preview/{images[0]['id']}?max_side=64"
    body = f'<img id=i src="{target}">'.encode()

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    page = browser.new_page()
    try:
        seen: list[str] = []  # the 403 (JSON) is then blocked by the browser's ORB
        page.on("response", lambda r: seen.append(str(r.status)) if r.url == target else None)
        page.on("requestfailed", lambda r: seen.append("failed") if r.url == target else None)
        page.goto(f"http://localhost:{other.server_address[1]}/", wait_until="load")
        assert page.locator("#i").evaluate("img => img.complete && img.naturalWidth") == 0
        assert seen and "200" not in seen  # before: 200, and naturalWidth 43
    finally:
        page.close()
        other.shutdown()


def test_copy_paths_warns_of_names_that_are_not_utf8(page):
    """F9: the clipboard holds text: a name that is not UTF-8 is not copied exactly, and
    the message says so (the app's header counts them; faked here, the folder has none)."""
    page.route(re.compile(r".*/api/paths\?.*"), lambda route: route.fulfill(
        body=b"/x/a.png\n/x/b\xff.png\n", headers={"X-Boda-Not-UTF8": "1",
                                                   "X-Boda-Left-Out": "0"}))
    page.locator("#copy-paths").click()
    expect(page.locator("#toast")).to_contain_text("1 name is not UTF-8")
    expect(page.locator("#toast")).to_contain_text("use download paths")


def test_an_unreadable_file_opened_after_another_shows_no_broken_image(page):
    """Its preview stays hidden (not a broken-image icon and its alt text), and nothing
    is asked for that can only fail (a 422 in the console)."""
    page.locator(".card", has_text="b.png").click()
    expect(page.locator("#preview")).to_be_visible()
    page.keyboard.press("Escape")
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.locator(".card", has_text="broken.png").click()
    expect(page.locator("#preview-error")).to_contain_text("broken.png could not be read")
    expect(page.locator("#preview")).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert failed == []


def test_a_phone_wide_page_is_no_wider_than_the_screen(browser, served):
    """At 400 px the selections go above the grid and the cards fit: no sideways scroll."""
    page = browser.new_page(viewport={"width": 400, "height": 800})
    page.goto(served[0])
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    box = page.locator("#grid .card").first.bounding_box()
    image = page.locator("#grid .card img").first.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 400
    assert image["width"] <= box["width"]  # the thumbnail is not cut off by the card
    page.close()
