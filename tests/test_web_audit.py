"""An audit of ``boda serve`` as a demanding user and a reviewer of a local web server: what
the folder may have become since the scan (a folder swapped for a link, a file for a pipe
or a device) and how a page of another site may reach the app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from boda.io import read_image, write_image  # noqa: E402
from boda.scan import scan  # noqa: E402
from boda.web import create_app  # noqa: E402

BASE = "http://127.0.0.1"


@pytest.fixture
def folder(tmp_path, kodak_paths) -> Path:
    """A scanned folder: two photos at the top, one in ``sub/``."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for name, source in zip(("a.png", "b.png", "sub/c.png"), kodak_paths, strict=False):
        write_image(root / name, read_image(source, max_side=64))
    scan(root, workers=1)
    return root


def _ids(client: TestClient) -> dict[str, int]:
    page = client.get("/api/images", params={"limit": 500}).json()
    return {r["path"]: r["id"] for r in page["images"]}


# -- previews: only files of the folder, only regular files ---------------------------------


def test_a_preview_does_not_follow_a_folder_swapped_for_a_link_out_of_the_folder(
        folder, tmp_path):
    """The scan never follows a link to a folder (README), and the app never serves a
    file outside the scanned folder (docs/serve.md, Safety).  A folder of the scan that
    is replaced by a link to another place afterwards must not turn the preview of its
    files into a way to read that place's images."""
    client = TestClient(create_app(folder), base_url=BASE)
    image_id = _ids(client)["sub/c.png"]
    assert client.get(f"/api/preview/{image_id}").status_code == 200
    outside = tmp_path / "private"
    outside.mkdir()
    write_image(outside / "c.png", read_image(folder / "a.png"))  # another photo, elsewhere
    (folder / "sub" / "c.png").unlink()
    (folder / "sub").rmdir()
    os.symlink(outside, folder / "sub")
    refused = client.get(f"/api/preview/{image_id}")
    assert refused.status_code == 404, refused.headers.get("content-type")
    detail = refused.json()["detail"]
    assert "sub/c.png" in detail and "outside the scanned folder" in detail


def test_a_file_linked_to_outside_at_scan_time_is_still_previewed(folder, tmp_path):
    """What the scan reads (a link to a file elsewhere is scanned as a file: README) the
    preview shows: only folders on the way are checked."""
    elsewhere = tmp_path / "elsewhere.png"
    write_image(elsewhere, read_image(folder / "a.png")[::-1])
    os.symlink(elsewhere, folder / "linked.png")
    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url=BASE)
    assert client.get(f"/api/preview/{_ids(client)['linked.png']}").status_code == 200


def test_the_folder_reached_through_a_link_is_still_previewed(folder, tmp_path):
    """``boda serve LINK`` where LINK names the scanned folder: its files are inside."""
    link = tmp_path / "link to photos"
    os.symlink(folder, link)
    client = TestClient(create_app(link), base_url=BASE)
    for image_id in _ids(client).values():
        assert client.get(f"/api/preview/{image_id}").status_code == 200


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_file_replaced_by_a_pipe_or_a_device_is_not_read(folder, monkeypatch, kind):
    """The scan refuses FIFOs and devices ("would block or stream forever when opened");
    a preview of a file swapped for one since must refuse it too, not open it (a FIFO
    holds one of the two preview slots until a writer comes; ``/dev/zero`` is read until
    memory runs out).  ``read_image`` is replaced so that the test itself never blocks:
    it must not be called."""
    import boda.io

    client = TestClient(create_app(folder), base_url=BASE)
    image_id = _ids(client)["b.png"]
    (folder / "b.png").unlink()
    if kind == "fifo":
        os.mkfifo(folder / "b.png")
    else:
        os.symlink("/dev/zero", folder / "b.png")
    opened: list[str] = []

    def fake_read_image(path, **kwargs):
        opened.append(path)
        return read_image(folder / "a.png")

    monkeypatch.setattr(boda.io, "read_image", fake_read_image)
    refused = client.get(f"/api/preview/{image_id}")
    assert opened == []
    assert refused.status_code == 422
    assert "b.png" in refused.json()["detail"]
    assert "not a regular file" in refused.json()["detail"]


# -- a link of another page to the app ----------------------------------------------------


#: What a browser sends when a person follows a link on a page of another site (another
#: port of localhost, a web page) to the app: a top-level navigation.
NAVIGATION = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
              "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_link_from_another_page_opens_the_page(folder, site):
    """A bookmark page, a wiki or a dashboard at ``http://localhost:3000`` that links to
    ``http://127.0.0.1:8765/`` must open the page (its HTML holds no data: the data comes
    from its own same-origin requests), not a JSON 403."""
    client = TestClient(create_app(folder), base_url=BASE)
    opened = client.get("/", headers={**NAVIGATION, "Sec-Fetch-Site": site})
    assert opened.status_code == 200
    assert opened.headers["content-type"].startswith("text/html")
    assert opened.headers["x-frame-options"] == "DENY"  # still never framed


@pytest.mark.parametrize("url", ["/api/summary", "/api/paths?download=1", "/api/preview/1",
                                 "/static/app.js"])
def test_a_navigation_from_another_page_reaches_nothing_but_the_page(folder, url):
    """Only ``/`` itself: a link of another site to the API (a download of the paths, a
    preview that decodes a large file) is still refused."""
    client = TestClient(create_app(folder), base_url=BASE)
    assert client.get(url, headers=NAVIGATION).status_code == 403


@pytest.mark.parametrize("fetch", [{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},
                                   {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
                                   {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}])
def test_the_page_framed_or_fetched_by_another_site_is_refused(folder, fetch):
    client = TestClient(create_app(folder), base_url=BASE)
    assert client.get("/", headers={**NAVIGATION, **fetch}).status_code == 403
    post = client.post("/api/marks", json={"ids": [1], "decision": "pick"},
                       headers={**NAVIGATION, **fetch})
    assert post.status_code == 403


# -- a mark request that says two things -------------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"ids": [1], "decision": "pick", "ids": [2]}',
    b'{"ids": [1], "decision": "pick", "decision": "reject"}',
])
def test_a_field_given_twice_is_refused_and_nothing_is_written(folder, body):
    """JSON leaves a name given twice to the parser (RFC 8259, 4: "the names within an
    object SHOULD be unique"; Python keeps the last, others the first): the app cannot know
    which file or which mark was meant, so it marks none."""
    from boda.catalog import marks_path

    client = TestClient(create_app(folder), base_url=BASE)
    refused = client.post("/api/marks", content=body,
                          headers={"Content-Type": "application/json"})
    assert refused.status_code == 400
    assert "given twice" in refused.json()["detail"]
    assert not marks_path(folder / ".boda" / "catalog.db").exists()


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def chromium(request):
    """The ``browser`` fixture of conftest.py, or a skip where Playwright or Debian's
    chromium is missing (as the browser test modules, for this test alone)."""
    from serve_helpers import CHROMIUM

    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM}")
    return request.getfixturevalue("browser")


def test_a_link_on_a_page_of_another_port_opens_the_app_in_chromium(folder, tmp_path, chromium):
    """A person's start page at ``http://localhost:PORT/`` links to the app: a click opens
    the page with its cards (before: the browser showed the JSON of a 403)."""
    import functools
    import http.server
    import threading

    from serve_helpers import serving

    with serving(create_app(folder)) as url:
        start = tmp_path / "start"
        start.mkdir()
        (start / "index.html").write_text(f'<a id="boda" href="{url}">my photos</a>')
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=start)
        handler.log_message = lambda *args: None
        with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as other:
            threading.Thread(target=other.serve_forever, daemon=True).start()
            page = chromium.new_page()
            try:
                page.goto(f"http://localhost:{other.server_address[1]}/")
                page.click("#boda")
                page.wait_for_selector("body[data-ready='1']", timeout=10_000)
                assert page.locator(".card").count() == 3
            finally:
                page.close()
                other.shutdown()
