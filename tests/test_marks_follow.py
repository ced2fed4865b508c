"""Culling marks follow their photo by its pixels when the scan cannot pair the paths.

A rename alone keeps the file's size and time, and the scan carries the mark along
(``test_marks.py``).  A rename together with a metadata edit (a catalog program
writing keywords or a rating into the file) changes both, and two names swapped
leave no path gone: the marks were lost.  The pixels are the same, though.
"""

from __future__ import annotations

import os

from PIL import Image, PngImagePlugin
from scan_helpers import noise_photo

from boda.catalog import Mark, Marks
from boda.catalog._marks import moves_by_pixels
from boda.report import select_records
from boda.scan import scan


def _retag(path, new_path, note: str) -> None:
    """Write ``path``'s pixels to ``new_path`` with a text chunk added (other bytes,
    other size and time, the same pixels), and remove ``path``."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", note)
    with Image.open(path) as im:
        im.load()
        im.save(new_path, pnginfo=info)
    if os.fspath(path) != os.fspath(new_path):
        os.remove(path)


def _selected(root, name: str) -> list[str]:
    return sorted(r["path"] for r in select_records(root, name))


def test_a_photo_renamed_and_edited_keeps_its_pick_and_stars(tmp_path):
    root = tmp_path / "shoot"
    for i in range(3):
        noise_photo(root / f"IMG_{i}.png", i)
    scan(root, workers=1)
    with Marks(root) as marks:
        marks.set_decision([b"IMG_1.png"], "pick")
        marks.set_rating([b"IMG_1.png"], 4)
    _retag(root / "IMG_1.png", root / "2026-trip-01.png", "keywords: harbour")
    summary = scan(root, workers=1)
    assert (summary.moved, summary.analysed, summary.marks_followed) == (0, 1, 1)
    assert _selected(root, "picked") == ["2026-trip-01.png"]
    assert _selected(root, "rated") == ["2026-trip-01.png"]
    with Marks(root, readonly=True) as marks:
        assert set(marks.all()) == {b"2026-trip-01.png"}


def test_two_swapped_names_swap_their_marks(tmp_path):
    root = tmp_path / "shoot"
    a, b = noise_photo(root / "a.png", 1), noise_photo(root / "b.png", 2)
    scan(root, workers=1)
    with Marks(root) as marks:
        marks.set_decision([b"a.png"], "pick")
        marks.set_decision([b"b.png"], "reject")
    os.rename(a, root / "t.png")
    os.rename(b, a)
    os.rename(root / "t.png", b)
    summary = scan(root, workers=1)
    assert summary.marks_followed == 2
    assert _selected(root, "picked") == ["b.png"]  # a's photo, now named b
    assert _selected(root, "rejected") == ["a.png"]


def test_ambiguous_pixels_and_old_deletions_move_no_mark(tmp_path):
    root = tmp_path / "shoot"
    noise_photo(root / "keep.png", 1)
    noise_photo(root / "gone.png", 2)
    scan(root, workers=1)
    with Marks(root) as marks:
        marks.set_decision([b"gone.png"], "reject")
    kept_bytes = (root / "gone.png").read_bytes()
    os.remove(root / "gone.png")
    scan(root, workers=1)  # deleted in this scan, the reject stays behind, unseen
    (root / "again.png").write_bytes(kept_bytes)  # imported again, a scan later
    summary = scan(root, workers=1)
    assert summary.marks_followed == 0
    assert _selected(root, "rejected") == []  # not rejected in its new place


def test_a_mark_moves_only_to_a_file_no_mark_holds():
    pick = Mark("pick", None, 0.0, "h1", 10, 1)
    reject = Mark("reject", None, 0.0, "h2", 20, 2)
    # old.png's photo is now new.png (other size and time), whose own mark holds
    marks = {b"old.png": pick, b"new.png": Mark("reject", None, 0.0, "h1", 30, 3)}
    analysed = {b"new.png": ("h1", 30, 3)}
    assert moves_by_pixels(marks, [b"old.png", b"new.png"], analysed) == []
    # two displaced marks with the same pixels: which one is it? neither moves
    marks = {b"x.png": pick, b"y.png": pick._replace(decision="reject")}
    assert moves_by_pixels(marks, [b"x.png", b"y.png"], {b"z.png": ("h1", 5, 5)}) == []
    # two files with the pixels of one displaced mark: neither gets it
    marks = {b"x.png": pick}
    two = {b"z1.png": ("h1", 5, 5), b"z2.png": ("h1", 6, 6)}
    assert moves_by_pixels(marks, [b"x.png"], two) == []
    # a stale mark at the new path that does not move on is not overwritten
    marks = {b"x.png": pick, b"z.png": reject}
    assert moves_by_pixels(marks, [b"x.png", b"z.png"], {b"z.png": ("h1", 5, 5)}) == []
    assert moves_by_pixels({b"x.png": pick}, [b"x.png"], {b"z.png": ("h1", 5, 5)}) == [
        (b"x.png", b"z.png")
    ]


def test_a_blocked_move_blocks_the_chain_behind_it():
    def mark(pixel_hash):
        return Mark("pick", None, 0.0, pixel_hash, 1, 1)

    # a -> b -> c -> d by pixels, where d holds a mark that stays: nothing can move
    marks = {b"a": mark("h1"), b"b": mark("h2"), b"c": mark("h3"), b"d": mark("own")}
    analysed = {b"b": ("h1", 5, 5), b"c": ("h2", 5, 5), b"d": ("h3", 5, 5)}
    assert moves_by_pixels(marks, [b"a", b"b", b"c"], analysed) == []
    # without d's mark the whole chain moves on
    del marks[b"d"]
    assert moves_by_pixels(marks, [b"a", b"b", b"c"], analysed) == [
        (b"a", b"b"),
        (b"b", b"c"),
        (b"c", b"d"),
    ]


def test_a_mark_set_while_the_moves_were_chosen_is_not_overwritten(tmp_path):
    root = tmp_path / "shoot"
    noise_photo(root / "a.png", 1)
    scan(root, workers=1)
    with Marks(root) as marks:
        marks.set_decision([b"a.png"], "pick")
        chosen_from = marks.all()
    with Marks(root) as page:  # boda serve, marking the new path meanwhile
        page.set_decision([b"b.png"], "reject")
    with Marks(root) as marks:
        expected = {b"a.png": chosen_from[b"a.png"], b"b.png": None}
        assert marks.move([(b"a.png", b"b.png")], expected=expected) == 0
        assert (marks.get(b"a.png").decision, marks.get(b"b.png").decision) == ("pick", "reject")
        expected[b"b.png"] = marks.get(b"b.png")  # chosen from what is there now
        assert marks.move([(b"a.png", b"b.png")], expected=expected) == 1
        assert marks.get(b"a.png") is None and marks.get(b"b.png").decision == "pick"
