"""Work that must not grow with the whole catalog or folder (scale audit, session 28).

No timings: the query plans SQLite chooses, and the calls the walk makes, per record.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from boda.catalog import Catalog, ImageRecord


def _catalog(tmp_path) -> Catalog:
    """A catalog of readable images, one unreadable file and one link, opened read-only
    (as ``boda serve`` and ``boda report`` open it)."""
    path = tmp_path / "catalog.db"
    records = [ImageRecord(f"img_{i:03d}.jpg".encode(), 100 + i, 1, "ok") for i in range(40)]
    records.append(ImageRecord(b"broken.jpg", 5, 1, "error", error="truncated"))
    records.append(ImageRecord(b"alias.jpg", 100, 1, "link", link_to=b"img_000.jpg"))
    with Catalog(path) as catalog:
        catalog.write_batch(records)
    return Catalog(path, readonly=True)


def _plans(catalog: Catalog, call: Callable[[], object]) -> list[str]:
    """The query plan of every SELECT ``call`` runs, one line per statement."""
    statements: list[str] = []
    db = catalog._db
    db.set_trace_callback(statements.append)
    try:
        call()
    finally:
        db.set_trace_callback(None)
    return [
        " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql))
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.ids_with_status("link"),  # every mark set in boda serve
        lambda c: c.failures(),
        lambda c: c.failure_reasons(),
        lambda c: c.count(),  # every summary the page polls
        lambda c: c.select_ids(failed=True, limit=10),  # the failures view
    ],
    ids=["ids_with_status", "failures", "failure_reasons", "count", "select_failed"],
)
def test_status_reads_use_the_status_index_not_every_row(tmp_path, call):
    # Without an index on status each of these read every row of the images table:
    # 0.1 s per call at 100 000 records (a mark clicked in the page), 1 s at a million.
    with _catalog(tmp_path) as catalog:
        plans = _plans(catalog, lambda: call(catalog))
    assert plans
    for plan in plans:
        assert "images_by_status" in plan, plan


def test_unflagged_page_still_reads_the_path_index(tmp_path):
    # Most records are 'ok': the status index would make SQLite sort all of them for a
    # page of 100; the path index gives the order and stops at the page.
    with _catalog(tmp_path) as catalog:
        plans = _plans(catalog, lambda: catalog.select_ids(unflagged=True, limit=5))
        ids, total = catalog.select_ids(unflagged=True, limit=5)
    page = plans[-1]
    assert "images_by_path" in page and "TEMP B-TREE" not in page, page
    assert total == 40 and len(ids) == 5


def test_walk_makes_relative_paths_per_folder_not_per_file(tmp_path, monkeypatch):
    # os.path.relpath per file (abspath and getcwd twice each) was 1.1 s of the 1.5 s a
    # rescan of 100 000 unchanged files spent walking.
    import boda.scan._walk as walk

    names = {"a": 6, "a/b": 6, "c": 6, "": 3}
    odd = os.fsdecode(b"caf\xe9.png")  # not UTF-8: a surrogate escape, kept as its bytes
    for folder, count in names.items():
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (tmp_path / folder / f"img_{i}.png").write_bytes(b"x")
    (tmp_path / "c" / odd).write_bytes(b"x")
    calls = []
    real = walk.relpath_bytes

    def counted(path, root):
        calls.append(path)
        return real(path, root)

    monkeypatch.setattr(walk, "relpath_bytes", counted)
    found = {f.relpath for f in walk.walk_images(str(tmp_path) + os.sep)}
    expected = {
        os.fsencode(os.path.join(folder, f"img_{i}.png")).replace(os.sep.encode(), b"/")
        for folder, count in names.items()
        for i in range(count)
    } | {b"c/caf\xe9.png"}
    assert found == expected
    assert len(calls) <= len(names)  # at most once per folder, not once per file


def _dataset(tmp_path):
    """The catalog of a class-folder dataset with flags: an exact copy across two labels
    (a label conflict), one within a label, a near-duplicate pair and unrelated images."""
    from boda.scan._flags import resolve_thresholds
    from boda.scan._pipeline import _derive_flags

    def ok(path: str, pixels: str, phash: int) -> ImageRecord:
        return ImageRecord(
            path.encode(),
            100,
            1,
            "ok",
            width=64,
            height=64,
            pixel_hash=pixels,
            phash=phash,
            scores={"blurry": 0.9},
        )

    records = [
        ok("train/cat/a.png", "p1", 0x0F0F_1234_5678_9ABC),
        ok("train/dog/a.png", "p1", 0x0F0F_1234_5678_9ABC),
        ok("train/cat/b.png", "p2", 0x7777_0000_FFFF_1111),
        ok("test/cat/b.png", "p2", 0x7777_0000_FFFF_1111),
        ok("train/cat/n1.png", "p3", 0x5A5A_5A5A_0101_0101),
        ok("train/cat/n2.png", "p4", 0x5A5A_5A5A_0101_0103),
        *(
            ok(f"train/dog/u{i}.png", f"u{i}", (0x9E37_79B9_7F4A_7C15 * (i + 3)) % (1 << 64))
            for i in range(6)
        ),
    ]
    path = tmp_path / "data" / ".boda" / "catalog.db"
    with Catalog(path) as catalog:
        catalog.write_batch(records)
        _derive_flags(catalog, resolve_thresholds({}), None)
    return path


def _count_passes(monkeypatch) -> list[str]:
    """Record each pass over every record of a catalog (``records``, ``record_dicts``)."""
    passes: list[str] = []
    for name in ("records", "record_dicts"):
        real = getattr(Catalog, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            passes.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Catalog, name, counted)
    return passes


def test_serve_redundant_and_label_conflict_need_no_pass_over_every_record(tmp_path, monkeypatch):
    # Each was a pass or two over every record (the duplicate plan again, then every
    # record's scores): the summary's counts of a 100 000-record catalog waited 11 s.
    pytest.importorskip("fastapi")
    from boda.report import select_records
    from boda.web._data import CatalogView

    path = _dataset(tmp_path)
    expected = {}
    with Catalog(path, readonly=True) as catalog:
        for name in ("redundant", "label_conflict"):
            paths = [record["path"] for record in select_records(path, name)]
            expected[name] = sorted(catalog.ids_of_paths(paths).values())
    assert len(expected["redundant"]) == 3 and len(expected["label_conflict"]) == 2
    view = CatalogView(path)
    view.duplicate_plan()  # the page holds it (boda serve computes it first)
    passes = _count_passes(monkeypatch)
    assert {name: view.selection_ids(name) for name in expected} == expected
    assert passes == []


def test_label_conflicts_read_the_groups_not_every_record(tmp_path, monkeypatch):
    from boda.report import select_records

    path = _dataset(tmp_path)
    passes = _count_passes(monkeypatch)
    found = sorted(record["path"] for record in select_records(path, "label_conflict"))
    assert found == ["train/cat/a.png", "train/dog/a.png"]
    assert passes == ["record_dicts"]  # the selection's own pass only (was two)


def test_relpaths_of_reads_a_path_stored_as_text(tmp_path):
    # a hand-edited catalog ("UPDATE images SET relpath = 'x.png'"): the path's UTF-8
    # bytes, as every record reader takes it (bytes(str) raised TypeError)
    import sqlite3

    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.write_batch([ImageRecord(b"a.png", 1, 1, "ok")])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE images SET relpath = 'é.png'")
    with Catalog(path, readonly=True) as catalog:
        assert catalog.relpaths_of([1]) == {1: "é.png".encode()}


class _CountedPath(bytes):
    """A folder's path that counts the comparisons made with it (equality, joining)."""

    ops = 0

    def __eq__(self, other):
        _CountedPath.ops += 1
        return bytes.__eq__(self, other)

    def __add__(self, other):
        _CountedPath.ops += 1
        return bytes.__add__(self, other)

    __hash__ = bytes.__hash__


def test_files_under_unlisted_folders_are_matched_by_their_folder_not_every_folder():
    # Every catalogued file not found was compared with every folder that could not be
    # listed: 1 000 unreadable folders over 100 000 files took 7 s before any analysis.
    from boda.scan._pipeline import _gone_and_kept
    from boda.scan._walk import FoundFile

    folders = [_CountedPath(b"d%03d" % f) for f in range(200)]
    known = {b"d%03d/img_%d.png" % (f, i): None for f in range(200) for i in range(10)}
    known[b"elsewhere/gone.png"] = None
    found = [
        FoundFile(os.fsdecode(f), f, 0, 0, "cannot list folder", unlisted_folder=True)
        for f in folders
    ]
    _CountedPath.ops = 0
    gone, kept = _gone_and_kept(known, set(folders), found)
    assert gone == [b"elsewhere/gone.png"]
    assert kept == {f: 10 for f in folders}
    assert _CountedPath.ops <= 4 * len(known)  # was ~ files x folders / 2 (400 000)
