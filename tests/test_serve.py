"""``boda serve`` and :func:`boda.web.create_app`: the JSON API over a real scanned folder.

Every answer is checked against the library it must agree with (``Catalog``,
``select_records``, ``selected_paths``, ``boda report --paths``), and the app must leave
the folder and its catalog exactly as it found them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from scipy import ndimage
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from boda.catalog import Catalog  # noqa: E402
from boda.cli import app as cli  # noqa: E402
from boda.core.text import visible  # noqa: E402
from boda.io import read_image, write_image  # noqa: E402
from boda.report import duplicate_sets, select_records, selected_paths, selections  # noqa: E402
from boda.scan import scan  # noqa: E402
from boda.web import create_app  # noqa: E402

runner = CliRunner()

NON_UTF8 = b"c\xff.png"
SCRIPT = "<img src=x onerror=alert(1)>.png"
NEWLINE = "new\nline.png"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, kodak_paths) -> Path:
    """A scanned folder with flags, duplicates, a failed file, a link, odd names."""
    root = tmp_path_factory.mktemp("serve") / "photos"
    (root / "copies").mkdir(parents=True)
    a, b, c, d = (read_image(p, max_side=96) for p in kodak_paths[:4])
    write_image(root / "a.png", a)
    shutil.copy(root / "a.png", root / "copies" / "A copy.png")
    write_image(root / "big b.png", b)
    write_image(root / "b half.png", b[::2, ::2])
    write_image(root / "dark.png", read_image(kodak_paths[1], max_side=120) ** 2.2 * 0.08)
    write_image(root / "c.png", c)
    os.rename(root / "c.png", os.path.join(os.fsencode(root), NON_UTF8))
    write_image(root / SCRIPT, d)
    write_image(root / "blurry_50%.png", ndimage.gaussian_filter(d[::-1], (4, 4, 0)))
    write_image(root / NEWLINE, ndimage.gaussian_filter(c, (5, 5, 0)))
    write_image(root / "wide.png", a[:20])  # 96 x 20: odd aspect ratio
    os.symlink("a.png", root / "a link.png")
    (root / "broken.png").write_bytes(b"not a png")
    summary = scan(root, workers=1, describe=True)  # colourfulness etc. to sort by
    assert summary.links == 1 and len(summary.failed) == 1
    return root


@pytest.fixture(scope="module")
def client(scanned) -> TestClient:
    return TestClient(create_app(scanned), base_url="http://127.0.0.1")


def _all_pages(client, limit: int, **params) -> list[dict]:
    records, offset = [], 0
    while True:
        page = client.get("/api/images", params={**params, "offset": offset, "limit": limit})
        assert page.status_code == 200, page.text
        data = page.json()
        assert len(data["images"]) <= limit
        records += data["images"]
        offset += limit
        if offset >= data["total"]:
            assert len(records) == data["total"]
            return records


def _snapshot(root: Path) -> dict[bytes, tuple[bytes, int]]:
    """Every file under ``root`` (``.boda`` included): its bytes and mtime."""
    out = {}
    for folder, _, files in os.walk(os.fsencode(root)):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                out[path] = (os.readlink(path), 0)
            else:
                with open(path, "rb") as fh:
                    out[path] = (fh.read(), os.stat(path).st_mtime_ns)
    return out


# -- the summary -------------------------------------------------------------------------


def _summary(client) -> dict:
    """The summary once every count is in (those that need a pass over the catalog are
    read in the background: the first answer has None for them)."""
    deadline = time.monotonic() + 20
    while (data := client.get("/api/summary").json())["pending"]:
        assert time.monotonic() < deadline, data["pending"]
        time.sleep(0.02)
    return data


def test_summary_answers_at_once_and_counts_the_rest_in_the_background(scanned):
    client = TestClient(create_app(scanned), base_url="http://127.0.0.1")
    first = client.get("/api/summary").json()
    counts = {s["name"]: s["count"] for s in first["selections"]}
    assert {"redundant", "scores"} <= set(first["pending"]) <= {"scores", *counts}
    assert all(counts[name] is None for name in first["pending"] if name != "scores")
    assert counts["blurry"] is not None and counts["failed"] == 1
    assert _summary(client)["pending"] == []


def test_summary_counts_are_the_catalogs(client, scanned):
    data = _summary(client)
    with Catalog(scanned, readonly=True) as catalog:
        assert data["counts"] == catalog.count()
        assert data["flag_counts"] == catalog.flag_counts()
        assert data["total"] == catalog.count_all()
    counts = {s["name"]: s["count"] for s in data["selections"]}
    assert list(counts) == list(selections())
    for name, n in counts.items():
        assert n == len(list(select_records(scanned, name))), name
    assert counts["failed"] == 1 and counts["redundant"] >= 2 and counts["dark"] == 1
    assert data["rules"]["blurry"].startswith("blurry < ")
    assert data["flags_stale"] is False and data["warnings"] == []
    assert data["folder"] == str(scanned)


# -- pages of records ---------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 500])
@pytest.mark.parametrize("sort", ["path", "size", "blurry", "exact_duplicate"])
def test_paging_visits_each_record_once(client, scanned, limit, sort):
    records = _all_pages(client, limit, sort=sort)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    with Catalog(scanned, readonly=True) as catalog:
        assert len(ids) == catalog.count_all()


def test_limit_is_capped(client):
    data = client.get("/api/images", params={"limit": 100_000}).json()
    assert data["limit"] == 500


ONLY = [[name] for name in selections()]
ONLY += [["blurry", "failed", "redundant"], ["unflagged", "dark"]]


@pytest.mark.parametrize("only", ONLY, ids=",".join)
def test_each_selection_is_select_records(client, scanned, only):
    got = _all_pages(client, 3, only=",".join(only))
    want = list(select_records(scanned, only))
    assert [r["path"] for r in got] == [visible(r["path"]) for r in want]
    for g, w in zip(got, want, strict=True):
        fields = set(g) - {"id", "path", "absolute_path", "absolute_path_exact",
                           "duplicate_role", "file_identity"}  # the catalog's fields
        assert {k: g[k] for k in fields} == {k: w[k] for k in fields}
        assert g["absolute_path"] == visible(os.path.join(os.fsencode(scanned),
                                                          bytes.fromhex(w["path_bytes_hex"])
                                                          if w["path_bytes_hex"]
                                                          else w["path"].encode()))


def test_no_selection_is_every_record_in_path_order(client, scanned):
    got = [r["path"] for r in _all_pages(client, 4)]
    assert got == [visible(r["path"]) for r in select_records(scanned)]
    assert SCRIPT in got and "c\\xff.png" in got and "new\\nline.png" in got


def _value(record, key):
    value = record["scores"].get(key)
    return value if isinstance(value, (int, float)) else None


@pytest.mark.parametrize(
    "sort, key, default_desc",
    [("blurry", "blurry", False), ("dark", "dark", True),
     ("odd_aspect_ratio", "aspect_ratio", True), ("colorfulness", "colorfulness", True),
     ("size", None, True)],
)
def test_sorting_orders_like_the_report(client, sort, key, default_desc):
    for order, desc in ((None, default_desc), ("asc", False), ("desc", True)):
        params = {"sort": sort} | ({"order": order} if order else {})
        records = _all_pages(client, 4, **params)
        values = [r["size"] if key is None else _value(r, key) for r in records]
        present = [v for v in values if v is not None]
        assert present == sorted(present, reverse=desc), (sort, order)
        # records without the score (the unreadable file, the link) come last
        assert values[len(present):] == [None] * (len(values) - len(present))
        data = client.get("/api/images", params=params).json()
        assert data["order"] == ("desc" if desc else "asc") and data["sort"] == sort


@pytest.mark.parametrize("sort, spec", [("blurry", "score:blurry"), ("size", "size"),
                                        ("exact_duplicate", "group:exact_duplicate"),
                                        ("colorfulness", "score:colorfulness")])
def test_the_kept_orders_are_those_sql_gives(client, scanned, sort, spec):
    with Catalog(scanned, readonly=True) as catalog:
        for desc in (False, True):
            for only, q in ((None, None), ("blurry,failed,unflagged", None), (None, "b"),
                            ("exact_duplicate,dark", "a")):
                params = {"sort": sort, "order": "desc" if desc else "asc"}
                params |= {"only": only} if only else {}
                params |= {"q": q} if q else {}
                got = [r["id"] for r in _all_pages(client, 3, **params)]
                names = (only or "").split(",")
                want, total = catalog.select_ids(
                    flags=[n for n in names if n not in ("", "failed", "unflagged")],
                    failed="failed" in names, unflagged="unflagged" in names,
                    path_contains=q, sort=spec, descending=desc,
                )
                if spec.startswith("group:"):  # the kept file first in each group
                    want = client.app.state.view.keep_first(catalog, sort, want)
                assert got == want and total == len(want), params


def test_sorting_by_a_duplicate_flag_puts_each_group_together(client):
    records = _all_pages(client, 5, sort="exact_duplicate")
    groups = [r["groups"].get("exact_duplicate") for r in records]
    present = [g for g in groups if g is not None]
    assert present and present == sorted(present) and groups[: len(present)] == present


@pytest.mark.parametrize("flag", ["exact_duplicate", "near_duplicate"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_group_sort_puts_the_kept_file_first_in_each_group(client, scanned, flag, order):
    """Sorted by a duplicate group, each group starts with the file boda keeps, and every
    card says whether it is kept or redundant (as the duplicate sets)."""
    _summary(client)  # the duplicate sets are read
    records = _all_pages(client, 3, sort=flag, order=order)
    sets = duplicate_sets(scanned)
    kept = {visible(s.keep) for s in sets}
    redundant = {visible(p) for s in sets for p in s.redundant}
    groups: dict[int, list[dict]] = {}
    for r in records:
        if flag in r["groups"]:
            groups.setdefault(r["groups"][flag], []).append(r)
        want = "kept" if r["path"] in kept else "redundant" if r["path"] in redundant else None
        assert r["duplicate_role"] == want, r["path"]
    assert groups
    starts = [g for g in groups.values() if any(r["duplicate_role"] == "kept" for r in g)]
    assert starts and all(g[0]["duplicate_role"] == "kept" for g in starts)
    # within a group, the rest in path order; groups contiguous
    assert sum(len(g) for g in groups.values()) == sum(flag in r["groups"] for r in records)
    for g in groups.values():
        rest = [r["path"] for r in g if r["duplicate_role"] != "kept"]
        assert rest == sorted(rest, key=lambda p: p.encode(), reverse=order == "desc")
    if flag == "near_duplicate" and order == "asc":  # kept (most pixels) is not first by path
        assert any(g[0]["path"] > g[1]["path"] for g in starts)


def test_search_filters_names_case_insensitively_and_literally(client):
    names = [r["path"] for r in _all_pages(client, 50, q="COPY")]
    assert names == ["copies/A copy.png"]
    assert [r["path"] for r in _all_pages(client, 50, q="_50%")] == ["blurry_50%.png"]
    assert _all_pages(client, 50, q="%") == _all_pages(client, 50, q="50%")
    assert client.get("/api/images", params={"q": "nothing like it"}).json()["total"] == 0
    both = _all_pages(client, 50, q="png", only="blurry")
    assert [r["path"] for r in both] == [visible(r["path"]) for r in
                                         select_records(client.app.state.view.path, "blurry")]


def test_bad_parameters_are_400_with_the_choices(client):
    bad = client.get("/api/images", params={"only": "blury"})
    assert bad.status_code == 400 and "'blury'" in bad.json()["detail"]
    assert "redundant" in bad.json()["detail"]
    bad = client.get("/api/images", params={"sort": "nope"})
    assert bad.status_code == 400 and "colorfulness" in bad.json()["detail"]
    assert client.get("/api/images", params={"order": "up"}).status_code == 400
    assert client.get("/api/duplicates", params={"kind": "fuzzy"}).status_code == 400


@pytest.mark.parametrize("url", [
    "/api/images?offset=-1", "/api/images?limit=0", "/api/images?offset=9223372036854775808",
    "/api/images?offset=99999999999999999999999", "/api/images/9223372036854775808",
    "/api/thumbnails/9223372036854775808", "/api/preview/9223372036854775808",
    "/api/images?q=" + "a" * 60_000, "/api/images?q=a%00b", "/api/paths?q=%00",
    "/api/paths?q=" + "a" * 60_000, "/api/images/abc", "/api/preview/1?max_side=0",
    "/api/paths?print0=2", "/api/failures?offset=9223372036854775808",
])
def test_every_bad_parameter_is_400_with_a_sentence(client, url):
    """As docs/serve.md says: 400 for a bad parameter, its detail one sentence (not a
    traceback and a 500 from SQLite, not FastAPI's 422 list)."""
    response = client.get(url)
    assert response.status_code == 400, (url, response.text[:200])
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def test_head_is_answered_as_get(client):
    for url in ("/", "/api/summary", "/api/images?limit=2", "/static/app.js"):
        head = client.head(url)
        assert head.status_code == 200 and head.content == b"", url
        assert head.headers["content-type"] == client.get(url).headers["content-type"]


# -- one record, thumbnails, previews -----------------------------------------------------


def _id_of(client, path: str) -> int:
    records = _all_pages(client, 500)
    return next(r["id"] for r in records if r["path"] == path)


def test_one_record_with_its_duplicate_group(client, scanned):
    data = client.get(f"/api/images/{_id_of(client, 'a.png')}").json()
    assert data["path"] == "a.png" and data["flags"] == ["exact_duplicate"]
    group = data["group_members"]["exact_duplicate"]
    assert [m["path"] for m in group["members"]] == ["a.png", "copies/A copy.png"]
    kept = next(s for s in duplicate_sets(scanned) if s.keep == "a.png")
    assert data["duplicate_set"]["keep"]["path"] == kept.keep
    assert [m["path"] for m in data["duplicate_set"]["redundant"]] == list(kept.redundant)


def test_unknown_ids_are_404_json(client):
    for url in ("/api/images/99999", "/api/thumbnails/99999", "/api/preview/99999"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "99999" in response.json()["detail"]


def test_thumbnails_are_the_stored_jpegs(client, scanned):
    image_id = _id_of(client, "a.png")
    response = client.get(f"/api/thumbnails/{image_id}")
    assert response.headers["content-type"] == "image/jpeg"
    with Catalog(scanned, readonly=True) as catalog:
        assert response.content == catalog.thumbnails([image_id])[image_id]
    assert response.content[:2] == b"\xff\xd8"
    again = client.get(f"/api/thumbnails/{image_id}",
                       headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    failed = _id_of(client, "broken.png")
    assert client.get(f"/api/thumbnails/{failed}").status_code == 404


@pytest.mark.parametrize("max_side", [40, 64, 1024])
def test_preview_keeps_the_aspect_ratio_within_max_side(client, max_side):
    from PIL import Image

    record = client.get(f"/api/images/{_id_of(client, 'wide.png')}").json()
    response = client.get(f"/api/preview/{record['id']}", params={"max_side": max_side})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(response.content))
    assert shown.format == "JPEG"
    w, h = shown.size
    assert max(w, h) == min(max_side, max(record["width"], record["height"]))
    assert abs(h - w * record["height"] / record["width"]) <= 1  # the aspect ratio, rounded


def test_preview_of_a_file_gone_or_unreadable_is_a_clear_error(folder):
    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1")
    image_id = _id_of(client, "b.png")
    assert client.get(f"/api/preview/{image_id}").status_code == 200
    (folder / "b.png").unlink()
    gone = client.get(f"/api/preview/{image_id}")
    assert gone.status_code == 404
    assert "b.png" in gone.json()["detail"] and "gone" in gone.json()["detail"]
    (folder / "c.png").write_bytes(b"broken since the scan")
    broken = client.get(f"/api/preview/{_id_of(client, 'c.png')}")
    assert broken.status_code == 422 and "c.png" in broken.json()["detail"]


def test_previews_follow_max_pixels_as_the_scan_does(folder, tmp_path):
    scan(folder, workers=1)
    tight = TestClient(create_app(folder, max_pixels=1000), base_url="http://127.0.0.1")
    refused = tight.get(f"/api/preview/{_id_of(tight, 'b.png')}")
    assert refused.status_code == 422 and "decompression-bomb" in refused.json()["detail"]
    free = TestClient(create_app(folder, max_pixels=None), base_url="http://127.0.0.1")
    assert free.get(f"/api/preview/{_id_of(free, 'b.png')}").status_code == 200
    result = runner.invoke(cli, ["serve", str(folder), "--max-pixels", "lots"])
    assert result.exit_code == 2 and "--max-pixels" in result.output


# -- duplicates, failures, paths ----------------------------------------------------------


def test_duplicates_are_the_sets_with_their_keeper(client, scanned):
    data = client.get("/api/duplicates").json()
    sets = duplicate_sets(scanned)
    assert data["total"] == len(sets)
    assert [s["keep"]["path"] for s in data["sets"]] == [s.keep for s in sets]
    assert all(isinstance(m["id"], int) for s in data["sets"] for m in [s["keep"], *s["redundant"]])
    exact = client.get("/api/duplicates", params={"kind": "exact"}).json()
    assert exact["total"] == sum(bool(s.exact_groups) for s in sets) >= 1
    near = client.get("/api/duplicates", params={"kind": "near", "limit": 1}).json()
    assert near["total"] == sum(bool(s.near_groups) for s in sets) and len(near["sets"]) <= 1


def test_mirror_images_are_marked_where_the_duplicates_are_shown(tmp_path, kodak_paths):
    root = tmp_path / "photos"
    root.mkdir()
    a, b = (read_image(p, max_side=96) for p in kodak_paths[:2])
    write_image(root / "a.png", a)
    write_image(root / "a flipped.png", a[:, ::-1].copy())  # a mirror image of a.png
    write_image(root / "b.png", b)
    write_image(root / "b half.png", b[::2, ::2])  # a direct near duplicate of b.png
    (root / "b copy.png").write_bytes((root / "b.png").read_bytes())  # an exact one
    scan(root, workers=1, mirrored=True)
    client = TestClient(create_app(root), base_url="http://127.0.0.1")
    want = {"a flipped.png": True, "a.png": True, "b copy.png": False, "b half.png": False,
            "b.png": False}
    # the records (the grid): as boda report --json says
    records = {r["path"]: r for r in _all_pages(client, 500)}
    assert {p: r["mirrored"] for p, r in records.items()} == want == {
        r["path"]: r["mirrored"] for r in select_records(root)
    }
    # the duplicates view: each member, and a count per set
    sets = client.get("/api/duplicates").json()["sets"]
    members = {m["path"]: m["mirrored"] for s in sets for m in (s["keep"], *s["redundant"])}
    assert members == want
    assert {s["keep"]["path"][0]: s["mirrored_count"] for s in sets} == {"a": 2, "b": 0}
    # a record's groups (the detail view)
    detail = client.get(f"/api/images/{records['a.png']['id']}").json()
    near = detail["group_members"]["near_duplicate"]["members"]
    assert {m["path"]: m["mirrored"] for m in near} == {"a.png": True, "a flipped.png": True}
    detail = client.get(f"/api/images/{records['b.png']['id']}").json()
    assert not any(m["mirrored"] for g in detail["group_members"].values() for m in g["members"])
    # a scan without --mirrored: nothing is marked, and the page sees it at once
    scan(root, workers=1, mirrored=False)
    assert not any(r["mirrored"] for r in _all_pages(client, 500))
    sets = client.get("/api/duplicates").json()["sets"]
    assert [s["keep"]["path"][0] for s in sets] == ["b"] and sets[0]["mirrored_count"] == 0
    assert not any(m["mirrored"] for m in (sets[0]["keep"], *sets[0]["redundant"]))


def test_failures_name_the_file_and_the_reason(client, scanned):
    data = client.get("/api/failures").json()
    assert data["total"] == 1
    (row,) = data["failures"]
    with Catalog(scanned, readonly=True) as catalog:
        ((relpath, error),) = catalog.failures()
    assert row["path"] == relpath.decode() and row["error"] == error and error


def test_failure_reasons_count_every_failure_not_only_the_page(tmp_path):
    root = tmp_path / "card"
    root.mkdir()
    for k in range(7):
        (root / f"empty{k}.jpg").write_bytes(b"")
    (root / "noise.png").write_bytes(b"not a png")
    scan(root, workers=1)
    client = TestClient(create_app(root), base_url="http://127.0.0.1")
    data = client.get("/api/failures", params={"limit": 2}).json()
    assert data["total"] == 8 and len(data["failures"]) == 2
    with Catalog(root, readonly=True) as catalog:
        failures = catalog.failures()
    counts: dict[str, int] = {}
    for _, error in failures:
        counts[error] = counts.get(error, 0) + 1
    assert [(r["reason"], r["count"]) for r in data["reasons"]] == sorted(
        counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [r["example"] for r in data["reasons"]] == ["empty0.jpg", "noise.png"]
    assert data["not_scanned"] == []  # the walk passed nothing over


def test_failures_say_what_the_scan_passed_over_as_the_report(tmp_path):
    from boda.report._html import not_scanned_lines

    root = tmp_path / "card"
    root.mkdir()
    (root / "noise.png").write_bytes(b"not a png")
    (root / ".IMG_7.HEIC.icloud").write_bytes(b"bplist00")
    (root / "._noise.png").write_bytes(b"AppleDouble")
    scan(root, workers=1)
    data = TestClient(create_app(root), base_url="http://127.0.0.1").get("/api/failures").json()
    with Catalog(root, readonly=True) as catalog:
        assert data["not_scanned"] == not_scanned_lines(catalog)
    assert len(data["not_scanned"]) == 2 and "IMG_7.HEIC" in data["not_scanned"][0]
    assert data["not_scanned"][1].startswith("skipped by default: ._* ×1")


@pytest.mark.parametrize("only", [None, "redundant", "blurry", "failed,dark", "unflagged"])
def test_paths_are_those_of_boda_report_paths(client, scanned, only):
    for print0 in (0, 1):
        params = {"print0": print0} | ({"only": only} if only else {})
        response = client.get("/api/paths", params=params)
        assert response.status_code == 200
        end = b"\0" if print0 else b"\n"
        want = [p for p in selected_paths(scanned, only, root=scanned) if print0 or end not in p]
        assert response.content == b"".join(p + end for p in want)
        assert all(os.path.isabs(p) for p in want)
        args = ["report", str(scanned), *(["--only", only] if only else []),
                "--print0" if print0 else "--paths"]
        result = runner.invoke(cli, args)
        assert result.stdout_bytes == response.content, args
        left_out = int(response.headers["x-boda-left-out"])
        assert result.exit_code == (1 if left_out else 0)


def test_paths_keep_the_search_as_the_grid(client, scanned):
    """``copy paths`` / ``download paths`` of a grid narrowed by a search: the paths of
    the files the grid shows, not of the whole selection."""
    shown = [r["absolute_path"] for r in _all_pages(client, 50, q="B")]
    response = client.get("/api/paths", params={"q": "B"})
    lines = response.content.decode("utf-8").splitlines()
    assert lines == shown and 2 < len(lines) < len(client.get("/api/paths").content.splitlines())
    download = client.get("/api/paths", params={"q": "B", "download": 1})
    assert download.content == response.content
    assert 'filename="paths-all-search.txt"' in download.headers["content-disposition"]


def test_paths_leave_out_files_deleted_since_the_scan_as_report_does(folder):
    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1")
    (folder / "copies" / "a copy.png").unlink()  # the redundant copy, deleted by hand
    (folder / "b.png").unlink()
    response = client.get("/api/paths")
    assert response.headers["x-boda-gone"] == "2"
    result = runner.invoke(cli, ["report", str(folder), "--only", "unflagged,redundant,"
                                 "exact_duplicate", "--paths"])
    assert response.content == result.stdout_bytes
    assert b"b.png" not in response.content and response.content.count(b"\n") == 3
    assert client.get("/api/paths", params={"only": "redundant"}).content == b""


def test_paths_count_the_names_that_are_not_utf8(client):
    response = client.get("/api/paths")
    assert response.headers["x-boda-not-utf8"] == "1"
    assert os.path.basename(NON_UTF8) in response.content.split(b"\n")[-2] or any(
        line.endswith(NON_UTF8) for line in response.content.split(b"\n"))
    assert client.get("/api/paths", params={"q": "a.png"}).headers["x-boda-not-utf8"] == "0"


def test_a_record_says_whether_its_path_shown_is_the_name_on_disk(client):
    """"copy path" copies the text shown: the page warns when it is not the name (a name
    that is not UTF-8, or that holds a newline shown as an escape)."""
    exact = {r["path"]: r["absolute_path_exact"] for r in _all_pages(client, 500)}
    assert exact["a.png"] is True and exact[SCRIPT] is True
    inexact = sorted(path for path, ok in exact.items() if not ok)
    assert inexact == sorted([r["path"] for r in _all_pages(client, 500)
                              if r["path"].startswith("c\\x") or "line" in r["path"]])
    assert len(inexact) == 2 and visible(NEWLINE) in inexact


def test_paths_download_names_the_selection(client):
    response = client.get("/api/paths", params={"only": "blurry", "download": 1})
    assert 'filename="paths-blurry.txt"' in response.headers["content-disposition"]


# -- safety ---------------------------------------------------------------------------------


def test_a_foreign_host_header_is_refused(scanned):
    for host in ("evil.example", "127.0.0.1.evil.example"):
        client = TestClient(create_app(scanned), base_url=f"http://{host}")
        assert client.get("/api/summary").status_code == 400
    assert TestClient(create_app(scanned), base_url="http://localhost:9").get(
        "/api/summary").status_code == 200
    other = TestClient(create_app(scanned, hosts=["192.168.1.5"]), base_url="http://192.168.1.5")
    assert other.get("/api/summary").status_code == 200
    ipv6 = TestClient(create_app(scanned), base_url="http://[::1]:8765")
    assert ipv6.get("/api/summary").status_code == 200
    refused = TestClient(create_app(scanned), base_url="http://[::2]:8765").get("/api/summary")
    assert refused.status_code == 400 and "::2" in refused.json()["detail"]


def test_a_request_from_another_site_is_refused(client):
    """A page elsewhere may put ``<img src=http://127.0.0.1:8765/api/preview/1>`` in it:
    the browser says so in ``Sec-Fetch-Site``, and every route refuses it."""
    image_id = _id_of(client, "a.png")
    for url in ("/", "/api/summary", f"/api/preview/{image_id}", f"/api/thumbnails/{image_id}",
                "/api/paths", "/static/app.js"):
        for site in ("cross-site", "same-site"):
            refused = client.get(url, headers={"Sec-Fetch-Site": site})
            assert refused.status_code == 403 and "another site" in refused.json()["detail"]
        for site in ("same-origin", "none"):
            assert client.get(url, headers={"Sec-Fetch-Site": site}).status_code == 200, url
        assert client.get(url).status_code == 200  # curl sends none


def test_previews_are_decoded_two_at_a_time_and_capped(client, monkeypatch):
    import threading

    from boda.web import _app

    view = client.app.state.view
    running, most, lock, sides = [0], [0], threading.Lock(), []
    real = type(view).preview

    def slow(self, image_id, max_side):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            sides.append(max_side)
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return real(self, image_id, 32)

    monkeypatch.setattr(type(view), "preview", slow)
    image_id = _id_of(client, "a.png")
    threads = [threading.Thread(target=client.get, args=(f"/api/preview/{image_id}",),
                                kwargs={"params": {"max_side": 9000}}) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == _app.PREVIEW_SLOTS == 2
    assert sides == [_app.MAX_PREVIEW_SIDE] * 8


def test_only_get_is_allowed(client):
    for url in ("/api/summary", "/api/images", "/api/paths", "/"):
        assert client.post(url).status_code == 405, url
        assert client.delete(url).status_code == 405, url


def test_names_are_data_and_the_page_holds_none(client):
    record = next(r for r in _all_pages(client, 500) if r["path"] == SCRIPT)
    assert client.get(f"/api/images/{record['id']}").json()["path"] == SCRIPT
    page = client.get("/")
    assert page.status_code == 200 and "onerror" not in page.text and "<script src" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    js = client.get("/static/app.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js  # names go in as text


def test_nothing_in_the_folder_or_the_catalog_changes(scanned, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(scanned, root, symlinks=True)
    before = _snapshot(root)
    client = TestClient(create_app(root), base_url="http://127.0.0.1")
    for url in ("/", "/api/summary", "/api/images?sort=blurry", "/api/images?only=redundant",
                "/api/duplicates", "/api/failures", "/api/paths?only=blurry",
                "/static/app.js", "/api/images/99999"):
        assert client.get(url).status_code in (200, 404), url
    for record in _all_pages(client, 100):
        client.get(f"/api/images/{record['id']}")
        client.get(f"/api/thumbnails/{record['id']}")
        client.get(f"/api/preview/{record['id']}?max_side=64")
    # writes refused (read-only app, a form's content type) leave no marks file either
    some = _all_pages(client, 100)[0]["id"]
    read_only = TestClient(create_app(root, read_only=True), base_url="http://127.0.0.1")
    assert read_only.post("/api/marks", json={"ids": [some], "decision": "pick"}
                          ).status_code == 403
    assert client.post("/api/marks", data={"ids": str(some), "decision": "pick"}
                       ).status_code == 403
    assert _snapshot(root) == before


def test_a_new_scan_is_seen_by_the_next_request(folder):
    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1")
    first = _summary(client)
    redundant = {s["name"]: s["count"] for s in first["selections"]}["redundant"]
    shutil.copy(folder / "b.png", folder / "b again.png")
    scan(folder, workers=1)
    second = _summary(client)
    assert second["total"] == first["total"] + 1
    assert {s["name"]: s["count"] for s in second["selections"]}["redundant"] == redundant + 1
    assert client.get("/api/images", params={"only": "redundant"}).json()["total"] == redundant + 1


def test_the_page_reads_while_a_scan_writes(folder):
    """WAL: a writer with an open transaction does not block the app, which sees each
    committed batch at the next request."""
    from boda.catalog import ImageRecord

    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1")
    before = client.get("/api/images").json()["total"]
    with Catalog(folder) as writer:  # as a running scan holds it
        writer.write_batch([ImageRecord(b"new.png", 10, 1, "error", error="test")])
        assert client.get("/api/images").json()["total"] == before + 1
        assert client.get("/api/summary").json()["counts"]["error"] == 1
        writer._db.execute("BEGIN IMMEDIATE")  # a batch in flight
        writer._db.execute("DELETE FROM images WHERE relpath = ?", (b"new.png",))
        assert client.get("/api/images", params={"only": "failed"}).json()["total"] == 1
        writer._db.rollback()
    assert client.get("/api/failures").json()["failures"][0]["path"] == "new.png"


def test_while_a_scan_writes_a_cached_value_is_answered_and_refreshed(folder):
    """A pass over every record is not made to wait for while the catalog is being
    written: the last value is answered, the new one computed in the background;
    once the writer is done, the next answer is computed again first."""
    from boda.catalog import ImageRecord

    scan(folder, workers=1)
    view = create_app(folder).state.view
    calls = []

    def count() -> int:
        calls.append(1)
        with view.open() as catalog:
            return catalog.count_all()

    first = view.cached("n", count)
    with Catalog(folder) as writer:
        writer.write_batch([ImageRecord(b"new.png", 10, 1, "error", error="test")])
        assert view.cached("n", count) == first  # at once, the value before the batch
        deadline = time.monotonic() + 10
        while view.cached("n", count) != first + 1:
            assert time.monotonic() < deadline, "no refresh in the background"
            time.sleep(0.01)
        writer.write_batch([ImageRecord(b"newer.png", 10, 1, "error", error="test")])
    assert view.cached("n", count) == first + 2  # the writer is gone: computed first
    assert len(calls) == 3


def test_a_running_scan_is_said_to_run_not_to_be_interrupted(folder, scan_lock_held):
    """While ``boda scan`` holds the catalog's lock (another process), the summary says
    that a scan runs and how far it got, not that the last one was interrupted."""
    from boda.catalog import ImageRecord

    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1")
    with Catalog(folder) as writer:  # what a scan writes when it starts analysing
        started = time.time()
        writer.set_setting("last_scan", {"complete": False, "started": started,
                                         "to_analyse": 10})
        writer.write_batch([ImageRecord(b"new.png", 10, 1, "error", error="test")])
    idle = client.get("/api/summary").json()  # no scan holds the lock: it was interrupted
    assert idle["scan"]["running"] is False and "interrupted" in idle["warnings"][0]
    with scan_lock_held(folder):
        data = client.get("/api/summary").json()
    assert data["scan"] == {"running": True, "analysed": 1, "to_analyse": 10}
    assert data["unfinished"] is False
    assert data["warnings"][0].startswith("A scan is running: 1 of 10 files analysed")
    assert not any("interrupted" in w for w in data["warnings"])
    assert client.get("/api/summary").json()["scan"]["running"] is False  # let go


# -- the Catalog queries -------------------------------------------------------------------


def test_select_ids_sorts_and_refuses_unknown_sorts(scanned):
    from boda.errors import CatalogError

    with Catalog(scanned, readonly=True) as catalog:
        ids, total = catalog.select_ids(sort="score:blurry", descending=True, limit=3)
        records = catalog.records_by_id(ids)
        values = [records[i].scores["blurry"] for i in ids]
        assert values == sorted(values, reverse=True) and total == catalog.count_all()
        assert catalog.select_ids(limit=0) == ([], total)
        assert len(catalog.select_ids(offset=2)[0]) == total - 2
        with pytest.raises(CatalogError, match="unknown sort"):
            catalog.select_ids(sort="colour")


# -- the command ---------------------------------------------------------------------------


def test_help_has_examples():
    result = runner.invoke(cli, ["serve", "-h"])
    assert result.exit_code == 0 and "boda serve" in result.output and "--port" in result.output


def test_no_catalog_is_a_usage_error(tmp_path):
    result = runner.invoke(cli, ["serve", str(tmp_path)])
    assert result.exit_code == 2
    assert f"no catalog in {tmp_path}: run `boda scan {tmp_path}` first" in " ".join(
        result.output.split())


def test_without_the_web_extra_it_says_what_to_install(scanned, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn: ImportError
    result = runner.invoke(cli, ["serve", str(scanned)])
    assert result.exit_code == 1
    assert "pip install 'boda[web]'" in " ".join(result.output.split())


def test_a_port_in_use_is_a_usage_error_naming_it(scanned):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(cli, ["serve", str(scanned), "--port", str(port)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"port {port}" in text and "in use" in text and "--port 0" in text


@pytest.fixture
def no_server(monkeypatch):
    """``uvicorn.Server.run`` returns at once; the ports of the sockets it got are kept."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn.Server, "run",
                        lambda self, sockets=None: calls.append(
                            [s.getsockname()[1] for s in sockets]))
    return calls


def test_serve_binds_prints_the_url_and_stops(scanned, no_server, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    result = runner.invoke(cli, ["serve", str(scanned), "--port", "0", "--open"])
    assert result.exit_code == 0, result.output
    url = re.search(r"http://127\.0\.0\.1:(\d+)/", result.stdout)
    assert url and int(url.group(1)) > 0 and opened == [url.group(0)]
    assert result.stdout.strip().endswith("stopped") and "warning" not in result.output
    assert no_server == [[int(url.group(1))]]


def test_a_host_other_machines_reach_is_warned_about(scanned, no_server):
    result = runner.invoke(cli, ["serve", str(scanned), "--port", "0", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "anyone" in result.stderr


def _lan_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = udp.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_wildcard_host_answers_to_the_machines_own_names_only(scanned, monkeypatch):
    """``--host 0.0.0.0``: a phone on the network sends ``Host: <this machine's address>``
    or its name, and gets the page; any other name is still refused (DNS rebinding)."""
    from boda.cli import serve_cmd

    monkeypatch.setattr(socket, "gethostname", lambda: "studio")
    monkeypatch.setattr(socket, "getfqdn", lambda name="": "studio.lan")
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in ("studio", "studio.lan"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 0)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.1.1", 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    names = serve_cmd._names_of("0.0.0.0")
    assert {"studio", "studio.lan", "10.1.2.3"} <= set(names)
    assert "0.0.0.0" not in names and "127.0.1.1" not in names
    lan = _lan_address()  # the address of the default route, found without DNS
    assert lan is None or lan in names
    app = create_app(scanned, hosts=names)
    for host in ("10.1.2.3:8765", "studio:8765", "studio.lan", "127.0.0.1:8765", lan):
        if host:
            assert TestClient(app, base_url=f"http://{host}").get(
                "/api/summary").status_code == 200, host
    for host in ("evil.example", "10.1.2.4", "0.0.0.0:8765", "studio.evil.example"):
        assert TestClient(app, base_url=f"http://{host}").get(
            "/api/summary").status_code == 400, host
    urls = serve_cmd._urls("0.0.0.0", 8765)
    assert urls[0] == "http://127.0.0.1:8765/" and "http://10.1.2.3:8765/" in urls
    assert "http://studio:8765/" in urls and not any("0.0.0.0" in u for u in urls)
    assert serve_cmd._names_of("192.168.7.7") == ["192.168.7.7"]


def test_a_wildcard_host_prints_reachable_urls(scanned, no_server):
    result = runner.invoke(cli, ["serve", str(scanned), "--port", "0", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "http://127.0.0.1:" in text and "0.0.0.0:" not in text
    lan = _lan_address()
    assert lan is None or f"http://{lan}:" in text


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_directory_that_is_not_a_folder_says_so(tmp_path, kind):
    target = tmp_path / "nope"
    if kind == "file":
        target.write_bytes(b"x")
    result = runner.invoke(cli, ["serve", str(target)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2
    assert ("no such folder" if kind == "missing" else "is not a folder") in text
    assert "boda scan" not in text


def _documented_lines() -> list[str]:
    """Every ``boda serve`` line of the help, docs/serve.md and README.md (left out of
    test_docs_examples.py, which would wait for them forever: run here instead)."""
    import typer.main

    command = typer.main.get_command(cli).commands["serve"]
    lines = [line.strip() for line in command.epilog.splitlines()]
    repo = Path(__file__).resolve().parents[1]
    for doc in (repo / "docs" / "serve.md", repo / "README.md"):
        if doc.exists():
            text = doc.read_text(encoding="utf-8")
            lines += [" ".join(s.split()) for s in re.findall(r"`(boda serve [^`]+)`", text)]
            lines += [line.strip() for line in text.splitlines()
                      if line.strip().startswith("boda serve")]
    return sorted({re.sub(r"\s+#.*", "", line) for line in lines if line.startswith("boda serve")})


@pytest.mark.parametrize("line", _documented_lines())
def test_documented_lines_start_the_server(line, scanned, no_server, monkeypatch):
    import webbrowser

    monkeypatch.setattr(webbrowser, "open", lambda url: None)
    argv = [{"~/Pictures/trip": str(scanned), "data/": str(scanned), "DIR": str(scanned),
             "photos/": str(scanned), "photos": str(scanned),
             "examples/images": str(scanned)}.get(w, w) for w in line.split()[1:]]
    if "--port" not in argv:
        argv += ["--port", "0"]  # 8765 may be taken on a test machine
    result = runner.invoke(cli, argv)
    assert result.exit_code == 0, (line, result.output)
    assert "http://" in result.stdout


def test_ctrl_c_stops_the_real_server(scanned):
    command = [sys.executable, "-m", "boda", "serve", str(scanned), "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/", line).group(0)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "api/summary", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert out.strip() == "stopped", (out, err)
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" not in err



def test_the_summary_names_a_catalog_an_older_boda_analysed(folder):
    from boda.scan import ANALYSIS_VERSION

    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1")
    assert not client.get("/api/summary").json()["warnings"]
    with Catalog(folder) as catalog:
        analysis = catalog.get_setting("analysis")
        catalog.set_setting("analysis", {**analysis, "version": ANALYSIS_VERSION - 1})
    (warning,) = client.get("/api/summary").json()["warnings"]
    assert f"analysis version {ANALYSIS_VERSION - 1}; this one has {ANALYSIS_VERSION}" in warning


def test_the_summary_version_of_the_catalog_changes_with_a_rescan_only(folder):
    """The page compares it to say that the folder was scanned again since it loaded."""
    scan(folder, workers=1)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1")
    first = client.get("/api/summary").json()["catalog_version"]
    client.get("/api/images")  # reading changes nothing
    client.post("/api/marks", json={"ids": [1], "decision": "pick"})  # nor does a mark
    assert client.get("/api/summary").json()["catalog_version"] == first
    scan(folder, workers=1)  # a rescan that finds nothing new: the page is up to date
    assert client.get("/api/summary").json()["catalog_version"] == first
    (folder / "b.png").unlink()
    scan(folder, workers=1)
    second = client.get("/api/summary").json()["catalog_version"]
    assert second != first
    scan(folder, workers=1, thresholds={"dark": 0.1})  # other flags
    assert client.get("/api/summary").json()["catalog_version"] != second
