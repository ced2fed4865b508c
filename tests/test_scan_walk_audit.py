"""Audit of how ``boda scan`` finds files and decides what to analyse again: the walk
(files and folders that vanish while it runs, symlinks), the exclude patterns against
git's own rules, and moves in a scan that analyses every file afresh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scan_helpers import catalog_paths, noise_photo

from boda.catalog import Catalog, Marks, default_catalog_path
from boda.scan import Excludes, scan
from boda.scan import _walk as walk_module
from boda.scan._exclude import read_ignore_file


@pytest.fixture
def four(tmp_path) -> Path:
    root = tmp_path / "lib"
    for seed, name in enumerate(["a.png", "b.png", "sub/c.png", "sub/d.png"]):
        noise_photo(root / name, seed)
    return root


def test_files_and_folders_deleted_while_the_walk_runs_are_gone_not_unreadable(
    four, monkeypatch
):
    """A file deleted between the listing of its folder and its stat was reported
    unreadable ("No such file or directory") and kept in the catalog; a folder deleted
    before the walk entered it was "cannot list folder", its catalogued files kept
    "until it can be listed again".  Both are gone: forgotten, as files deleted during
    the analysis are."""
    scan(four, workers=1)
    real = os.walk

    def racing(top, *args, **kwargs):
        for dirpath, dirnames, filenames in real(top, *args, **kwargs):
            if dirpath == os.fspath(four):  # listed: b.png and sub/ go now
                os.remove(four / "b.png")
                shutil.rmtree(four / "sub")
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(walk_module.os, "walk", racing)
    summary = scan(four, workers=1)
    assert summary.failed == []
    assert (summary.total, summary.removed) == (1, 3)
    assert catalog_paths(four) == ["a.png"]


def test_a_file_that_cannot_be_stated_is_still_unreadable(four, monkeypatch):
    """Only a name that no longer exists is dropped: a stat refused (a folder without
    search permission) still makes an unreadable record, never a silent skip."""
    real = os.lstat

    def refused(path, *args, **kwargs):
        if os.fspath(path).endswith("b.png"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(walk_module.os, "lstat", refused)
    found = {f.relpath: f.error for f in walk_module.walk_images(four)}
    assert found[b"b.png"] == "Permission denied" and len(found) == 4


def test_a_file_moved_in_a_scan_at_another_max_side_keeps_its_marks(four):
    """A change of --max-side cleared every stored time before the moves were looked
    for, so a photo moved (or renamed) in the meantime was a new file: its record
    started afresh and its pick stayed behind at the old path, applying to nothing."""
    scan(four, workers=1)
    with Catalog(four, readonly=True) as catalog:
        old_id = next(r.id for r in catalog.records() if r.path == "b.png")
    with Marks(default_catalog_path(four)) as marks:
        marks.set_decision([b"b.png"], "pick")
        marks.set_rating([b"b.png"], 5)
    (four / "trip").mkdir()
    os.rename(four / "b.png", four / "trip" / "Beach.png")
    summary = scan(four, workers=1, max_side=128)
    assert (summary.moved, summary.removed, summary.analysed, summary.unchanged) == (1, 0, 4, 0)
    with Marks(default_catalog_path(four), readonly=True) as marks:
        mark = marks.get(b"trip/Beach.png")
        assert (mark.decision, mark.rating) == ("pick", 5)
        assert marks.get(b"b.png") is None
    with Catalog(four, readonly=True) as catalog:
        records = {r.path: r for r in catalog.records()}
    assert "b.png" not in records and records["trip/Beach.png"].id == old_id
    # the moved record was analysed again, at the new side, like every other
    again = scan(four, workers=1, max_side=128)
    assert (again.analysed, again.unchanged, again.moved) == (0, 4, 0)


@pytest.mark.parametrize(
    ("pattern", "name", "skipped"),
    [
        ("[!]]x.png", "ax.png", True),  # ']' first in a negated set is one of its characters
        ("[!]]x.png", "]x.png", False),
        ("[\\]]x.png", "]x.png", True),  # '\' takes the next character as it is, in a set too
        ("[\\]]x.png", "\\]x.png", False),
        ("IMG[[:digit:]].png", "IMG7.png", True),  # POSIX classes, as git reads them
        ("IMG[[:digit:]].png", "IMGa.png", False),
        ("IMG[![:digit:]].png", "IMGa.png", True),
        ("[]-a]x.png", "^x.png", True),  # a range from ']' to 'a'
        ("a[&&b]c.png", "a&c.png", True),  # set operators of Python's re are plain characters
    ],
)
def test_sets_in_exclude_patterns_are_read_as_git_reads_them(pattern, name, skipped):
    """A set was cut at its first ']' after the opening one, so '[!]]' was no set at all
    and '[\\]]' a backslash then ']'; '[[:digit:]]' was a set of '[:digt' then ']'."""
    excludes = Excludes([pattern], default_excludes=False)
    assert (excludes.match(f"a/{name}", folder=False) == pattern) is skipped


#: Patterns of every kind the docs describe, each against a tree of names they do and do
#: not match; git is the reference ("the patterns are those of .gitignore").
_GIT_PATTERNS = [
    ["Export/", "*.tmp.png"],
    ["/top.png", "a/b/", "!a/b/keep.png"],
    ["Export/*", "!Export/keep/", "**/raw/"],
    ["a/**/p.png", "x/**", "!x/y.png"],
    ["*.png", "!*[0-9].png", "IMG_?.png"],
    ["[!ab]/", "\\#t.png", "\\!n.png", "p.png ", "b\\ "],
    ["[!]]", "[\\]]x.png", "[[:upper:]]*.png", "c/**/"],
    ["**/keep/p.png", "/**/q.png", "a//b/", "*", "!*/", "!*1.png"],
]
_GIT_TREE = [
    "top.png", "p.png", "q.png", "P1.png", "IMG_1.png", "IMG_12.png", "#t.png", "!n.png",
    "]x.png", "x.tmp.png", "b /p.png", "a/top.png", "a/p.png", "a/b/keep.png", "a/b/p.png",
    "a/c/b/p.png", "Export/p.png", "Export/keep/p.png", "Export/other/p.png", "x/y.png",
    "x/z/p.png", "raw/p.png", "c/raw/p1.png", "c/d/q.png", "c/p.png", "]/p.png",
    "d/keep/p.png", "d/e/keep/q.png", "A/B/c.png", "z/Export/p.png",
]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git as the reference")
@pytest.mark.parametrize("patterns", _GIT_PATTERNS)
def test_a_bodaignore_skips_what_the_same_gitignore_ignores(tmp_path, patterns):
    root = tmp_path / "tree"
    for name in _GIT_TREE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for name in (".gitignore", ".bodaignore"):
        (root / name).write_text("# the patterns\n" + "\n".join(patterns) + "\n")
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=root,
        capture_output=True, check=True,
    ).stdout.split(b"\0")
    by_git = {p for p in listed if p.endswith(b".png")}
    excludes = Excludes(ignore_file=read_ignore_file(root), default_excludes=False)
    by_boda = {f.relpath for f in walk_module.walk_images(root, excludes=excludes)}
    assert by_boda == by_git


def test_a_link_to_a_link_to_a_file_elsewhere_is_a_link_not_a_second_copy(tmp_path):
    """``b.png -> a.png -> /elsewhere/x.png``: a.png is scanned as a file (its target is
    outside the folder), and b.png, a link to it, was scanned as a second file: the two
    were exact duplicates, and deleting a.png as the copy left b.png dangling."""
    elsewhere = noise_photo(tmp_path / "elsewhere" / "x.png", 1)
    root = tmp_path / "lib"
    noise_photo(root / "c.png", 2)
    os.symlink(elsewhere, root / "a.png")
    os.symlink("a.png", root / "b.png")
    os.symlink("b.png", root / "d.png")  # a chain of two: the same file of the folder
    summary = scan(root, workers=1)
    assert (summary.total, summary.links, summary.analysed) == (4, 2, 2)
    assert summary.flag_counts["exact_duplicate"] == 0
    with Catalog(root, readonly=True) as catalog:
        records = {r.path: (r.status, r.link_to) for r in catalog.records()}
    assert records == {
        "a.png": ("ok", None), "b.png": ("link", b"a.png"), "c.png": ("ok", None),
        "d.png": ("link", b"a.png"),
    }


def test_links_inside_the_folder_still_name_the_file_they_reach(tmp_path):
    """The chain of links of a file inside the folder ends at that file, whatever
    folder links and '..' it passes through."""
    root = tmp_path / "lib"
    noise_photo(root / "real" / "x.png", 1)
    os.symlink("real", root / "alias")  # a folder link: not walked
    os.symlink("alias/../real/x.png", root / "l1.png")
    (root / "sub").mkdir()
    os.symlink(os.fspath(root / "l1.png"), root / "sub" / "l2.png")
    found = {f.relpath: f.link_to for f in walk_module.walk_images(root)}
    assert found == {b"real/x.png": None, b"l1.png": b"real/x.png", b"sub/l2.png": b"real/x.png"}


def test_many_files_of_one_size_renamed_are_paired_without_comparing_every_pair(monkeypatch):
    """Moves were looked for by comparing the time of every gone file with that of every
    new file of one size (and folder): 3 000 same-sized files (PGM, BMP, uncompressed
    RAW) renamed in one folder took 48 s before the scan analysed anything, a time
    that grows with the square of the count.  Equal times need no comparison, and
    unequal ones only within a step of a coarse clock."""
    from boda.catalog._catalog import FileState
    from boda.scan import _pipeline as pipeline

    n, base = 400, 1_700_000_000_123_456_789
    times = [base + 1_000_003 * i for i in range(n)]  # nanosecond times, none coarse
    known = {f"d/{i:04}.pgm".encode(): FileState(i, 799, t, "ok") for i, t in enumerate(times)}
    found = [walk_module.FoundFile(f"/r/d/img_{i:04}.pgm", f"d/img_{i:04}.pgm".encode(), 799, t)
             for i, t in enumerate(times)]
    calls = []
    real = pipeline.same_mtime
    monkeypatch.setattr(pipeline, "same_mtime", lambda a, b: (calls.append(1), real(a, b))[1])
    moves = pipeline._moves(list(known), known, found)
    assert sorted(moves) == [(f"d/{i:04}.pgm".encode(), f"d/img_{i:04}.pgm".encode())
                             for i in range(n)]
    assert len(calls) <= 2 * n  # was n * n: every gone file against every new one


def test_files_of_a_coarse_clock_still_pair_only_one_to_one():
    """The groups of agreeing times are those of comparing every pair: a FAT time (2 s)
    agrees with the nanosecond times less than 2 s from it, two of them with one gone
    file are not guessed, and one alone is a move."""
    from boda.scan._pipeline import _same_time_groups

    fat = 1_700_000_002_000_000_000
    groups = _same_time_groups(
        [(b"old1", fat), (b"old2", fat + 8_000_000_000)],
        [(b"new1", fat + 1_999_999_999), (b"new2", fat - 1_000_000),
         (b"new3", fat + 8_000_000_001), (b"new4", fat + 2_000_000_000)],
    )
    pairs = sorted((sorted(o), sorted(n)) for o, n in groups if o and n)
    assert pairs == [([b"old1"], [b"new1", b"new2"]), ([b"old2"], [b"new3"])]
