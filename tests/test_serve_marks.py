"""Culling in ``boda serve``: ``POST /api/marks``, the mark selections and the guards.

Every answer is checked against the library it must agree with (``boda.catalog.Marks``,
``select_records``, ``boda report --only picked --paths``); a write that is refused
must leave no trace, and no write may touch a file of the folder or the catalog.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from boda.catalog import Marks, marks_path  # noqa: E402
from boda.cli import app as cli  # noqa: E402
from boda.core.text import visible  # noqa: E402
from boda.io import read_image, write_image  # noqa: E402
from boda.report import select_records  # noqa: E402
from boda.scan import scan  # noqa: E402
from boda.web import create_app  # noqa: E402

runner = CliRunner()
BASE = "http://127.0.0.1"
MARK_SELECTIONS = ("picked", "rejected", "undecided", "rated")


@pytest.fixture(scope="module")
def scanned_once(tmp_path_factory, kodak_paths) -> Path:
    """A scanned folder: five photos, an exact copy, a link, an unreadable file."""
    root = tmp_path_factory.mktemp("marks") / "shoot"
    root.mkdir()
    for k, path in enumerate(kodak_paths[:5]):
        write_image(root / f"IMG_{k:04d}.png", read_image(path, max_side=48))
    shutil.copy(root / "IMG_0000.png", root / "IMG_0000 copy.png")
    os.symlink("IMG_0001.png", root / "link.png")
    (root / "broken.png").write_bytes(b"not a png")
    scan(root, workers=1)
    return root


@pytest.fixture
def shoot(scanned_once, tmp_path) -> Path:
    """A fresh copy of the scanned folder (no marks yet) for each test."""
    root = tmp_path / "shoot"
    shutil.copytree(scanned_once, root, symlinks=True)
    return root


@pytest.fixture
def client(shoot) -> TestClient:
    return TestClient(create_app(shoot), base_url=BASE)


def _ids(client) -> dict[str, int]:
    page = client.get("/api/images", params={"limit": 500}).json()
    return {r["path"]: r["id"] for r in page["images"]}


def _all(client, **params) -> list[dict]:
    out, offset = [], 0
    while True:
        page = client.get("/api/images", params={**params, "offset": offset, "limit": 2})
        assert page.status_code == 200, page.text
        data = page.json()
        out += data["images"]
        offset += 2
        if offset >= data["total"]:
            assert len(out) == data["total"]
            return out


def _mark(client, ids, **change):
    return client.post("/api/marks", json={"ids": ids, **change})


def _marks_on_disk(root: Path) -> dict[bytes, tuple]:
    with Marks(root, readonly=True) as marks:
        return {path: (m.decision, m.rating) for path, m in marks.all().items()}


def _cull(client) -> dict[str, int]:
    """A mix of marks, the unreadable file included (a link cannot be marked)."""
    ids = _ids(client)
    assert _mark(client, [ids["IMG_0000.png"], ids["IMG_0002.png"]],
                 decision="pick").status_code == 200
    assert _mark(client, [ids["IMG_0001.png"], ids["broken.png"]],
                 decision="reject").status_code == 200
    for name, stars in (("IMG_0000.png", 5), ("IMG_0001.png", 2), ("IMG_0003.png", 3),
                        ("broken.png", 1)):
        assert _mark(client, [ids[name]], rating=stars).status_code == 200
    return ids


# -- writing and reading back ------------------------------------------------------------


def test_a_mark_is_written_to_the_marks_file_and_shown_in_every_record(client, shoot):
    ids = _ids(client)
    a, b = ids["IMG_0000.png"], ids["IMG_0002.png"]
    answer = _mark(client, [a, b], decision="pick", rating=4)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["changed"] == 4  # two decisions, two ratings
    assert data["marks"] == [{"id": a, "decision": "pick", "rating": 4},
                             {"id": b, "decision": "pick", "rating": 4}]
    assert data["counts"]["picked"] == 2 and data["counts"]["rated"] == 2
    assert _marks_on_disk(shoot) == {b"IMG_0000.png": ("pick", 4), b"IMG_0002.png": ("pick", 4)}
    assert marks_path(shoot) == shoot / ".boda" / "catalog.marks.db"
    record = client.get(f"/api/images/{a}").json()
    assert (record["decision"], record["rating"]) == ("pick", 4)
    page = {r["id"]: r for r in client.get("/api/images").json()["images"]}
    assert (page[a]["decision"], page[a]["rating"]) == ("pick", 4)
    assert (page[ids["IMG_0001.png"]]["decision"], page[ids["IMG_0001.png"]]["rating"]) == (
        None, None)
    # a new app (a reload, a restart) reads them from the file
    again = TestClient(create_app(shoot), base_url=BASE).get(f"/api/images/{b}").json()
    assert (again["decision"], again["rating"]) == ("pick", 4)


def test_marks_change_and_clear_independently(client, shoot):
    a = _ids(client)["IMG_0003.png"]
    assert _mark(client, [a], decision="reject").json()["changed"] == 1
    assert _mark(client, [a], decision="reject").json()["changed"] == 0  # already so
    assert _mark(client, [a], rating=2).json()["marks"] == [
        {"id": a, "decision": "reject", "rating": 2}]
    assert _mark(client, [a], decision=None).json()["marks"] == [
        {"id": a, "decision": None, "rating": 2}]  # the stars stay
    assert _marks_on_disk(shoot) == {b"IMG_0003.png": (None, 2)}
    assert _mark(client, [a], rating=0).json()["marks"] == [
        {"id": a, "decision": None, "rating": None}]
    assert _marks_on_disk(shoot) == {}


def test_the_answer_says_the_marks_just_before_the_change_those_of_boda_mark_included(
        client, shoot):
    """``previous`` is what Ctrl+Z puts back: the marks the files had just before this
    change, a mark set by ``boda mark`` after the page loaded included."""
    ids = _ids(client)
    a, b = ids["IMG_0000.png"], ids["IMG_0001.png"]
    client.get("/api/images")  # the page has loaded: none marked
    result = runner.invoke(cli, ["mark", str(shoot), str(shoot / "IMG_0000.png"), "--reject",
                                 "--rating", "2"])
    assert result.exit_code == 0, result.output
    data = _mark(client, [a, b], decision="pick").json()
    assert data["previous"] == [{"id": a, "decision": "reject", "rating": 2},
                                {"id": b, "decision": None, "rating": None}]
    assert data["marks"] == [{"id": a, "decision": "pick", "rating": 2},
                             {"id": b, "decision": "pick", "rating": None}]
    # putting ``previous`` back (what the page's undo does) restores boda mark's marks
    assert _mark(client, [a], decision="reject", rating=2).json()["previous"] == [
        {"id": a, "decision": "pick", "rating": 2}]
    assert _marks_on_disk(shoot)[b"IMG_0000.png"] == ("reject", 2)


def test_the_marks_are_those_of_boda_report_and_boda_mark(client, shoot):
    """The round trip: marks set in the page are what ``boda report --only picked
    --paths`` lists, and marks set by ``boda mark`` show in the page at once."""
    ids = _cull(client)
    for name in ("picked", "rejected", "rated", "undecided"):
        result = runner.invoke(cli, ["report", str(shoot), "--only", name, "--paths"])
        assert result.exit_code == 0, result.output
        served = client.get("/api/paths", params={"only": name})
        assert served.status_code == 200
        assert served.text == result.stdout, name
    picked = client.get("/api/paths", params={"only": "picked"}).text.splitlines()
    assert picked == [str(shoot / "IMG_0000.png"), str(shoot / "IMG_0002.png")]  # no link
    result = runner.invoke(cli, ["mark", str(shoot), str(shoot / "IMG_0004.png"), "--pick"])
    assert result.exit_code == 0, result.output
    record = client.get(f"/api/images/{ids['IMG_0004.png']}").json()
    assert record["decision"] == "pick"
    summary = client.get("/api/summary").json()
    assert summary["marks"]["counts"]["picked"] == 3


def test_the_mark_selections_and_min_rating_are_select_records(client, shoot):
    _cull(client)
    onlys = [[name] for name in MARK_SELECTIONS] + [["picked", "blurry"], ["rejected", "failed"]]
    for only in [*onlys, None]:
        for stars in (None, 1, 3, 5):
            params = ({"only": ",".join(only)} if only else {}) | (
                {"min_rating": stars} if stars else {})
            got = [r["path"] for r in _all(client, **params)]
            want = [visible(r["path"]) for r in select_records(shoot, only, min_rating=stars)]
            assert got == want, params
            paths = client.get("/api/paths", params=params).text.splitlines()
            assert paths == [str(shoot / p) for p in want], params
    counts = {s["name"]: s["count"] for s in client.get("/api/summary").json()["selections"]}
    for name in MARK_SELECTIONS:
        assert counts[name] == len(list(select_records(shoot, name))), name
    assert counts["picked"] == 2 and counts["rejected"] == 2 and counts["rated"] == 4
    assert counts["undecided"] == 3  # IMG_0003, IMG_0004, the copy: neither picked nor rejected


def test_sorting_by_rating_puts_the_most_stars_first(client, shoot):
    _cull(client)
    desc = [(r["path"], r["rating"]) for r in _all(client, sort="rating")]
    assert desc[:4] == [("IMG_0000.png", 5), ("IMG_0003.png", 3), ("IMG_0001.png", 2),
                        ("broken.png", 1)]
    unrated = [path for path, stars in desc[4:]]
    assert all(stars is None for _, stars in desc[4:]) and unrated == sorted(unrated)
    asc = [(r["path"], r["rating"]) for r in _all(client, sort="rating", order="asc")]
    assert [s for _, s in asc[:4]] == [1, 2, 3, 5] and asc[4:] == desc[4:]  # A to Z, last
    among = [r["path"] for r in _all(client, sort="rating", only="picked")]
    assert among == ["IMG_0000.png", "IMG_0002.png"]
    assert "rating" in client.get("/api/summary").json()["sorts"]


def test_a_mark_is_seen_by_the_next_page_even_when_the_file_looks_unchanged(client, monkeypatch):
    """The marks are kept between requests until the marks file changes; this app's own
    writes are seen at once even where its size and mtime do not change (a coarse clock)."""
    from boda.web import _data

    class SameStat:  # os, but every file keeps the size and mtime it had
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def stat(path, *args, **kwargs):
            return os.stat("/", *args, **kwargs)

    monkeypatch.setattr(_data, "os", SameStat())
    ids = _ids(client)
    assert client.get("/api/images", params={"only": "picked"}).json()["total"] == 0
    assert _mark(client, [ids["IMG_0002.png"]], decision="pick").status_code == 200
    page = client.get("/api/images", params={"only": "picked"}).json()
    assert [r["path"] for r in page["images"]] == ["IMG_0002.png"]


# -- refused writes: nothing written -----------------------------------------------------


def _nothing_written(root: Path) -> bool:
    return not marks_path(root).exists() or _marks_on_disk(root) == {}


@pytest.mark.parametrize("headers, content, why", [
    ({"Content-Type": "text/plain"}, None, "Content-Type"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"ids=1&decision=pick",
     "Content-Type"),
    ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--", "Content-Type"),
    ({"Content-Type": ""}, None, "Content-Type"),
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, None, "another site"),
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, None, "another site"),
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "none"}, None, "this app only"),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, None, "origin"),
    ({"Content-Type": "application/json", "Origin": "null"}, None, "origin"),
    ({"Content-Type": "application/json", "Origin": "http://127.0.0.1:9999"}, None, "origin"),
    ({"Content-Type": "application/json", "Origin": "https://127.0.0.1"}, None, "origin"),
])
def test_a_write_from_elsewhere_is_refused_and_nothing_is_written(client, shoot, headers,
                                                                  content, why):
    image_id = _ids(client)["IMG_0000.png"]
    body = content if content is not None else json.dumps(
        {"ids": [image_id], "decision": "pick"}).encode()
    refused = client.post("/api/marks", content=body, headers=headers)
    assert refused.status_code == 403, refused.text
    assert why.lower() in refused.json()["detail"].lower()
    assert _nothing_written(shoot)
    assert client.get(f"/api/images/{image_id}").json()["decision"] is None


def test_a_write_of_the_page_itself_is_taken(client, shoot):
    """What the browser sends for the page's own ``fetch``: same-origin, its own Origin."""
    image_id = _ids(client)["IMG_0000.png"]
    answer = client.post("/api/marks", json={"ids": [image_id], "decision": "pick"},
                         headers={"Sec-Fetch-Site": "same-origin", "Origin": BASE})
    assert answer.status_code == 200, answer.text
    other = TestClient(client.app, base_url="http://localhost:8765")
    assert other.post("/api/marks", json={"ids": [image_id], "rating": 1},
                      headers={"Origin": "http://localhost:8765"}).status_code == 200
    assert _marks_on_disk(shoot) == {b"IMG_0000.png": ("pick", 1)}


def test_a_foreign_host_cannot_write(shoot):
    evil = TestClient(create_app(shoot), base_url="http://evil.example")
    assert evil.post("/api/marks", json={"ids": [1], "decision": "pick"}).status_code == 400
    assert _nothing_written(shoot)


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'{"ids": [], "decision": "pick"}', b'{"ids": ["1"], "rating": 2}',
    b'{"ids": [true], "rating": 2}', b'{"ids": [1.5], "rating": 2}', b'{"ids": [-1], "rating": 2}',
    b'{"ids": [1], "rating": 6}', b'{"ids": [1], "rating": 2.0}', b'{"ids": [1], "rating": true}',
    b'{"ids": [1], "decision": "maybe"}', b'{"ids": [1]}', b'{"ids": 1, "rating": 1}',
    b'{"ids": [1], "rating": 1, "path": "/etc/passwd"}', b'\xff\xfe',
    b'{"ids": [1, 2], "rating": 1, "paths": ["a.png"]}', b'{"ids": [1], "rating": 1, "paths": "a"}',
    b'{"ids": [1], "rating": 1, "paths": [1]}',
    b'{"ids": [1, 1], "rating": 1, "paths": ["a.png", "b.png"]}',
    b"[" * 100_000 + b"]" * 100_000,  # nested past Python's recursion limit (was a 500)
])
def test_a_bad_request_is_400_with_a_sentence_and_nothing_is_written(client, shoot, body):
    answer = client.post("/api/marks", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 20
    assert _nothing_written(shoot)


def test_too_many_ids_are_refused(client, shoot):
    from boda.web._app import MAX_MARK_IDS

    answer = _mark(client, list(range(1, MAX_MARK_IDS + 2)), decision="pick")
    assert answer.status_code == 400 and str(MAX_MARK_IDS) in answer.json()["detail"]
    assert _nothing_written(shoot)


def test_ids_the_catalog_lacks_are_404_and_nothing_is_written(client, shoot):
    good = _ids(client)["IMG_0000.png"]
    for ids in ([99999], [good, 99999], [2**63 - 1]):
        answer = _mark(client, ids, decision="pick", rating=3)
        assert answer.status_code == 404, answer.text
        assert "99999" in answer.json()["detail"] or "9223372036854775807" in answer.json()[
            "detail"]
        assert _nothing_written(shoot)


def test_a_page_older_than_a_rescan_cannot_mark_the_file_that_took_its_id(client, shoot):
    """Ids of deleted records are reused: a page loaded before a rescan would mark
    another file by id alone.  The page sends the path it shows with each id."""
    records = {r["id"]: r["path"] for r in _all(client)}
    last = max(records)
    old_path = records[last]
    (shoot / old_path).unlink()
    write_image(shoot / "IMG_9999.png", read_image(shoot / "IMG_0003.png")[::-1])
    scan(shoot, workers=1)
    now = {r["id"]: r["path"] for r in _all(client)}
    assert now[last] == "IMG_9999.png"  # the id went to the new file

    stale = client.post("/api/marks", json={"ids": [last], "paths": [old_path], "rating": 4})
    assert stale.status_code == 409, stale.text
    detail = stale.json()["detail"]
    assert "IMG_9999.png" in detail and "reload" in detail
    assert _nothing_written(shoot)

    first = min(records)  # one stale id refuses the whole request
    both = client.post("/api/marks", json={"ids": [first, last],
                                           "paths": [records[first], old_path], "rating": 4})
    assert both.status_code == 409 and _nothing_written(shoot)

    fresh = client.post("/api/marks", json={"ids": [last], "paths": ["IMG_9999.png"],
                                            "decision": "pick"})
    assert fresh.status_code == 200, fresh.text
    assert _marks_on_disk(shoot) == {b"IMG_9999.png": ("pick", None)}


def test_a_page_older_than_a_rescan_that_removed_its_file_is_told_to_reload(client, shoot):
    records = {r["path"]: r["id"] for r in _all(client)}
    (shoot / "IMG_0004.png").unlink()
    scan(shoot, workers=1)
    gone = records["IMG_0004.png"]
    stale = client.post("/api/marks", json={"ids": [gone], "paths": ["IMG_0004.png"],
                                            "decision": "pick"})
    assert stale.status_code == 409, stale.text
    assert "IMG_0004.png" in stale.json()["detail"] and "reload" in stale.json()["detail"]
    assert _nothing_written(shoot)
    # without paths (a script), an unknown id is still 404
    assert _mark(client, [gone], decision="pick").status_code == 404


def test_a_page_older_than_a_photo_copied_over_its_file_is_told_to_reload(client, shoot):
    """A re-imported card can put another photo at an old path: the path still matches,
    the pixels do not, and the mark would go to a picture the person never saw."""
    shown = {r["path"]: r for r in _all(client)}
    old = shown["IMG_0001.png"]
    shutil.copy(shoot / "IMG_0003.png", shoot / "IMG_0001.png")
    os.utime(shoot / "IMG_0001.png", ns=(1, 1))
    scan(shoot, workers=1)
    stale = client.post("/api/marks", json={"ids": [old["id"]], "paths": [old["path"]],
                                            "pixels": [old["pixel_hash"]], "decision": "reject"})
    assert stale.status_code == 409, stale.text
    assert "holds another picture" in stale.json()["detail"]
    assert _nothing_written(shoot)
    now = client.get(f"/api/images/{old['id']}").json()
    assert now["path"] == "IMG_0001.png" and now["pixel_hash"] != old["pixel_hash"]
    fresh = client.post("/api/marks", json={"ids": [now["id"]], "paths": [now["path"]],
                                            "pixels": [now["pixel_hash"]], "decision": "pick"})
    assert fresh.status_code == 200, fresh.text
    # the unreadable file's pixels are null on both sides
    broken = shown["broken.png"]
    assert client.post("/api/marks", json={"ids": [broken["id"]], "pixels": [None],
                                           "rating": 1}).status_code == 200


def test_only_post_writes(client, shoot):
    for method in ("get", "put", "delete", "patch"):
        assert getattr(client, method)("/api/marks").status_code == 405, method
    assert _nothing_written(shoot)


# -- read-only --------------------------------------------------------------------------------


def test_read_only_shows_the_marks_and_refuses_to_change_them(shoot):
    with Marks(shoot) as marks:
        marks.set_decision([b"IMG_0001.png"], "reject")
    before = _marks_on_disk(shoot)
    client = TestClient(create_app(shoot, read_only=True), base_url=BASE)
    ids = _ids(client)
    assert client.get(f"/api/images/{ids['IMG_0001.png']}").json()["decision"] == "reject"
    summary = client.get("/api/summary").json()["marks"]
    assert summary["writable"] is False and summary["read_only"] is True
    assert "--read-only" in summary["reason"]
    refused = _mark(client, [ids["IMG_0000.png"]], decision="pick")
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert _marks_on_disk(shoot) == before


def test_the_read_only_option_of_boda_serve(shoot, monkeypatch):
    import uvicorn

    apps = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: apps.append(
        self.config.app))
    for args, read_only in (([], False), (["--read-only"], True)):
        result = runner.invoke(cli, ["serve", str(shoot), "--port", "0", *args])
        assert result.exit_code == 0, result.output
        assert apps[-1].state.read_only is read_only
    assert "--read-only" in " ".join(runner.invoke(cli, ["serve", "-h"]).output.split())


def test_boda_serve_says_when_marks_cannot_be_written(shoot, monkeypatch):
    import uvicorn

    from boda.web._data import CatalogView

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    monkeypatch.setattr(CatalogView, "marks_writable", lambda self: "the folder is read-only")
    result = runner.invoke(cli, ["serve", str(shoot), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert "the folder is read-only; the page is read-only" in " ".join(result.stderr.split())
    quiet = runner.invoke(cli, ["serve", str(shoot), "--port", "0", "--read-only"])
    assert quiet.exit_code == 0 and "note" not in quiet.stderr


def _as_unprivileged(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python as a user file permissions apply to."""
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root writes anywhere unless it drops this capability
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv to drop root's permission override")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    src = str(Path(__file__).resolve().parents[1] / "src")
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": src})


def test_a_read_only_folder_makes_a_read_only_page_not_an_error(shoot):
    boda_dir = shoot / ".boda"
    for path in (shoot, boda_dir, *boda_dir.iterdir()):
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        code = f"""
import json, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from boda.web import create_app
client = TestClient(create_app({str(shoot)!r}), base_url="http://127.0.0.1")
summary = client.get("/api/summary").json()
images = client.get("/api/images", params={{"only": "undecided"}})
first = images.json()["images"][0]["id"]
refused = client.post("/api/marks", json={{"ids": [first], "decision": "pick"}})
print(json.dumps([summary["marks"], images.status_code, refused.status_code,
                  refused.json()["detail"]]))
"""
        done = _as_unprivileged(code)
        assert done.returncode == 0, done.stderr
        marks, pages, status, detail = json.loads(done.stdout)
    finally:
        for path in (shoot, boda_dir, *boda_dir.iterdir()):
            path.chmod(path.stat().st_mode | 0o200)
    assert marks["writable"] is False and "read-only" in marks["reason"]
    assert pages == 200 and status == 403 and "read-only" in detail
    assert not marks_path(shoot).exists()


def test_a_damaged_marks_file_leaves_the_page_browsing_and_refuses_writes(shoot):
    marks_path(shoot).write_bytes(b"not a marks file" * 100)
    client = TestClient(create_app(shoot), base_url=BASE)
    ids = _ids(client)
    assert len(ids) == 8
    assert client.get(f"/api/images/{ids['IMG_0000.png']}").json()["decision"] is None
    marks = client.get("/api/summary").json()["marks"]
    assert marks["writable"] is False and "marks file" in marks["reason"]
    refused = _mark(client, [ids["IMG_0000.png"]], decision="pick")
    assert refused.status_code == 403 and "move it away" in refused.json()["detail"]
    assert marks_path(shoot).read_bytes() == b"not a marks file" * 100


def test_a_catalog_gone_while_serving_is_said_for_a_mark_too(client, shoot):
    """The catalog moved away (a disk unmounted) while the page is open: the mark is
    refused with the sentence the other routes give, not a bare 500 and a traceback."""
    ids = _ids(client)
    os.rename(shoot / ".boda", shoot / ".boda-away")
    answer = _mark(client, [ids["IMG_0000.png"]], decision="pick")
    assert answer.status_code == 500 and "no catalog" in answer.json()["detail"]
    assert not (shoot / ".boda").exists()  # nothing made in its place


# -- the folder and the catalog are left alone ---------------------------------------------


def _snapshot(root: Path) -> dict[bytes, tuple[bytes, int]]:
    """Every file under ``root`` (``.boda`` included) but the marks file and SQLite's
    transient ``-wal`` and ``-shm`` files: its bytes and mtime."""
    out = {}
    for folder, _, files in os.walk(os.fsencode(root)):
        for name in files:
            path = os.path.join(folder, name)
            # the marks file, and what SQLite makes beside the catalog while a reader
            # has it open (a background count may still be at work)
            if name.startswith(b"catalog.marks.db") or name.endswith((b".db-wal", b".db-shm")):
                continue
            if os.path.islink(path):
                out[path] = (os.readlink(path), 0)
            else:
                with open(path, "rb") as fh:
                    out[path] = (fh.read(), os.stat(path).st_mtime_ns)
    return out


def test_marking_writes_the_marks_file_and_nothing_else(client, shoot):
    before = _snapshot(shoot)
    _cull(client)
    for name in MARK_SELECTIONS:
        client.get("/api/images", params={"only": name, "sort": "rating"})
        client.get("/api/paths", params={"only": name})
    client.get("/api/summary")
    assert _snapshot(shoot) == before
    assert marks_path(shoot).is_file()
    assert os.fsencode(shoot / ".boda" / "catalog.db") in before


def test_the_kept_copy_follows_a_pick_or_reject_made_in_the_page(client):
    """The keep rule reads the marks (a picked copy keeps, a rejected one keeps only
    where every copy is rejected): the duplicate plan, the kept/redundant roles and the
    redundant selection were cached until the catalog changed, so the page kept showing
    the rejected file as the one kept."""
    ids = _ids(client)
    original, copy = ids["IMG_0000.png"], ids["IMG_0000 copy.png"]

    def kept() -> tuple[int, list[int]]:
        (only,) = client.get("/api/duplicates").json()["sets"]
        return only["keep"]["id"], [m["id"] for m in only["redundant"]]

    def redundant() -> list[int]:
        page = client.get("/api/images", params={"only": "redundant", "limit": 50}).json()
        return [r["id"] for r in page["images"]]

    assert kept() == (original, [copy]) and redundant() == [copy]
    assert _mark(client, [original], decision="reject").status_code == 200
    assert kept() == (copy, [original]) and redundant() == [original]
    assert _mark(client, [original], decision="pick").status_code == 200
    assert kept() == (original, [copy]) and redundant() == [copy]


def test_a_link_cannot_be_marked_as_boda_mark_refuses_it(client, shoot):
    """A link is in no selection or count: its card showed "pick" while every export
    and --only picked left it out.  Clearing passes (it only takes a stale mark away)."""
    ids = _ids(client)
    for change in ({"decision": "pick"}, {"rating": 3}, {"decision": "reject", "rating": 0}):
        answer = _mark(client, [ids["IMG_0002.png"], ids["link.png"]], **change)
        assert answer.status_code == 400, answer.text
        assert "'link.png' is a link to 'IMG_0001.png'" in answer.json()["detail"]
    assert _nothing_written(shoot)
    assert _mark(client, [ids["link.png"]], decision=None, rating=0).status_code == 200
