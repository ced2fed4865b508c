"""A ``boda serve`` app running for real on a free local port, for the browser tests."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

#: Debian's chromium, the browser Playwright drives (its own download is not available).
CHROMIUM = "/usr/bin/chromium"


def browser_expect():
    """Playwright's ``expect``; skips the calling test module (call it at import) where
    FastAPI, Playwright or :data:`CHROMIUM` is missing."""
    pytest.importorskip("fastapi")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM}", allow_module_level=True)
    return sync_api.expect


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; yields its base
    URL and stops the server afterwards."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)



def photo_folder(tmp_path_factory, kodak_paths, names, *, max_side: int, prefix: str,
                 folder: str = "photos"):
    """``(root, images)``: a new folder ``<tmp>/<prefix>N/<folder>`` holding the first
    Kodak photos at ``max_side``, one under each of ``names`` (the browser tests' folders)."""
    from boda.io import read_image, write_image

    root = tmp_path_factory.mktemp(prefix) / folder
    root.mkdir()
    names = list(names)
    images = [read_image(p, max_side=max_side) for p in kodak_paths[: len(names)]]
    for name, image in zip(names, images, strict=True):
        write_image(root / name, image)
    return root, images


def clear_marks(root) -> None:
    """Take every culling mark of the scanned folder ``root`` away (decisions and stars),
    so that each browser test starts from an undecided shoot."""
    from boda.catalog import Marks

    with Marks(root) as marks:
        every = list(marks.all())
        marks.set_decision(every, None)
        marks.set_rating(every, 0)


def open_ready_page(browser, url: str, errors: list[str], *, width: int = 1280,
                    console: bool = False, init_script: str | None = None):
    """A new page of ``width`` x 900 px on ``url``, once the app says it is ready
    (``body[data-ready='1']``); the page's script errors go into ``errors``, and with
    ``console`` its console errors and server errors (5xx answers) too."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if console:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on(
            "response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None
        )
    if init_script is not None:
        page.add_init_script(init_script)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page
