"""A ``.bodaignore`` in a folder under the scanned one, read as git reads a
``.gitignore`` there: its patterns are relative to its folder, the deepest file
decides, and ``--exclude`` still comes last."""

import numpy as np
import pytest

from boda.errors import InvalidParameterError
from boda.io import write_image
from boda.scan import Excludes, scan
from boda.scan._walk import walk_as_scanned, walk_images


def _tree(root, names):
    rng = np.random.default_rng(0)
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, rng.random((24, 32, 3)).astype(np.float32))


def _scanned(root, **options):
    return sorted(f.relpath.decode() for f in walk_images(root, excludes=Excludes(), **options))


NAMES = [
    "a.tmp.png", "top.png", "Photos/b.tmp.png", "Photos/keep.tmp.png", "Photos/c.png",
    "Photos/Export/d.png", "Photos/deep/e.tmp.png", "Photos/deep/Export/f.png",
    "Photos/only-here.png", "Photos/deep/only-here.png", "Other/g.tmp.png", "Other/Export/h.png",
]


def test_patterns_are_relative_to_their_folder(tmp_path):
    _tree(tmp_path, NAMES)
    (tmp_path / "Photos" / ".bodaignore").write_text(
        "# under Photos only\n*.tmp.png\nExport/\n/only-here.png\n!keep.tmp.png\n"
    )
    assert _scanned(tmp_path) == [
        "Other/Export/h.png", "Other/g.tmp.png", "Photos/c.png",
        "Photos/deep/only-here.png", "Photos/keep.tmp.png", "a.tmp.png", "top.png",
    ]


def test_the_deepest_file_decides_and_exclude_comes_last(tmp_path):
    _tree(tmp_path, NAMES)
    (tmp_path / ".bodaignore").write_text("*.tmp.png\n")
    (tmp_path / "Photos" / ".bodaignore").write_text("!*.tmp.png\n")
    (tmp_path / "Photos" / "deep" / ".bodaignore").write_text("*.tmp.png\n")
    excludes = Excludes(["keep.tmp.png"], ignore_file=["*.tmp.png"])
    found = sorted(f.relpath.decode() for f in walk_images(tmp_path, excludes=excludes))
    tmp = [name for name in found if name.endswith(".tmp.png")]
    # The top file skips them all, Photos/ brings its own back, Photos/deep/ skips again,
    # and --exclude keep.tmp.png wins over Photos/'s negation.
    assert tmp == ["Photos/b.tmp.png"]
    assert excludes.nested_patterns == [
        "!Photos/**/*.tmp.png", "Photos/deep/**/*.tmp.png",
    ]


def test_a_folder_whose_name_holds_glob_characters(tmp_path):
    _tree(tmp_path, ["we[ird]*/x.png", "weird/y.png", "we[ird]*/sub/z.png"])
    (tmp_path / "we[ird]*" / ".bodaignore").write_text("x.png\n")
    assert _scanned(tmp_path) == ["we[ird]*/sub/z.png", "weird/y.png"]


def test_a_bad_pattern_names_its_file(tmp_path):
    _tree(tmp_path, ["Photos/a.png"])
    (tmp_path / "Photos" / ".bodaignore").write_text("[z-a].png\n")
    with pytest.raises(InvalidParameterError, match=r"Photos/\.bodaignore: '\[z-a\]\.png'"):
        _scanned(tmp_path)


def test_walk_as_scanned_reads_them(tmp_path):
    _tree(tmp_path, ["Photos/a.png", "Photos/b.tmp.png"])
    (tmp_path / "Photos" / ".bodaignore").write_text("*.tmp.png\n")
    assert [f.relpath for f in walk_as_scanned(tmp_path)] == [b"Photos/a.png"]


def test_a_scan_counts_them_and_forgets_what_they_skip_now_as_excluded(tmp_path):
    _tree(tmp_path, ["Photos/a.png", "Photos/b.tmp.png", "c.tmp.png"])
    first = scan(tmp_path, workers=1)
    assert first.analysed == 3
    (tmp_path / "Photos" / ".bodaignore").write_text("*.tmp.png\n")
    again = scan(tmp_path, workers=1)
    assert again.excluded == 1 and again.removed == 0
    assert again.skipped == {"Photos/**/*.tmp.png": 1}
    assert again.ignore_file == ["Photos/**/*.tmp.png"]
    assert again.total == 2  # Photos/a.png and c.tmp.png (outside Photos/)
