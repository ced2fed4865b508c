"""The keep rule on a photographer's library (:func:`boda.report.duplicate_sets`):
RAW+JPEG pairs, the names of copies and edits, trash and cache folders, and the
sharpness tolerance.

A small library is scanned once (Kodak crops, a DNG made as in test_io_raw); the name
and folder patterns are checked on catalogs of chosen records, as in test_keep_exposure.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from scan_helpers import PHASH, chosen_catalog

from boda._io_raw import raw_available
from boda.catalog import ImageRecord
from boda.report import _keep as keep
from boda.report import catalog_records, duplicate_sets, select_records
from boda.scan import scan

# -- a scanned library ----------------------------------------------------------------------------


def _photo(src: Path, size=(160, 112)) -> Image.Image:
    return Image.open(src).convert("RGB").resize(size, Image.LANCZOS)


@pytest.fixture(scope="module")
def library(tmp_path_factory, kodak_paths) -> dict:
    """A library with a copy, a copy in a trash folder, a RAW+JPEG pair with an export
    and a backup, an edit, a re-encoded copy and a blurred one; scanned."""
    root = tmp_path_factory.mktemp("library") / "lib"
    photos = root / "Photos"
    for folder in ("Photos", "Downloads", "Trash", "Export", "Backup"):
        (root / folder).mkdir(parents=True)
    a, b, c, d, e, f = (_photo(p) for p in kodak_paths[:6])
    # a byte copy named the Windows way, in another folder (it sorts first: "D" < "P")
    a.save(photos / "IMG_0001.JPG", quality=92)
    shutil.copy(photos / "IMG_0001.JPG", root / "Downloads" / "IMG_0001 (1).JPG")
    # the photo and its copy in a trash folder ("T" sorts first in Photos' folder)
    b.save(photos / "IMG_0002.JPG", quality=92)
    shutil.copy(photos / "IMG_0002.JPG", root / "Trash" / "IMG_0002.JPG")
    # an edit (Google Photos' name) and an exact copy of the edit
    d.save(photos / "IMG_0004.JPG", quality=92)
    edit = ImageEnhance.Contrast(ImageEnhance.Brightness(d).enhance(1.1)).enhance(1.15)
    edit.save(photos / "IMG_0004-edited.jpg", quality=92)
    shutil.copy(photos / "IMG_0004-edited.jpg", photos / "IMG_0004-edited (1).jpg")
    # the same photo saved again at the same quality (other pixels, the same sharpness)
    e.save(photos / "IMG_0005.JPG", quality=92)
    Image.open(photos / "IMG_0005.JPG").save(photos / "IMG_0005-2.JPG", quality=92)
    # a blurred copy: the copy's name does not make the sharper file lose
    f.filter(ImageFilter.GaussianBlur(0.8)).save(photos / "IMG_0006.JPG", quality=92)
    f.save(photos / "IMG_0006-2.JPG", quality=92)
    if raw_available():
        from test_io_raw import make_dng

        # the camera's pair, its small export and a backup of its JPEG
        make_dng(photos / "IMG_0003.DNG", np.asarray(c, dtype=np.float64) / 255)
        c.save(photos / "IMG_0003.JPG", quality=95)
        c.resize((80, 56), Image.LANCZOS).save(root / "Export" / "IMG_0003.jpg", quality=80)
        shutil.copy(photos / "IMG_0003.JPG", root / "Backup" / "IMG_0003.JPG")
    scan(root, workers=1)
    sets = duplicate_sets(root)
    return {"root": root, "sets": {s.keep: s for s in sets},
            "records": {r["path"]: r for r in catalog_records(root)},
            "redundant": {r["path"]: r["kept"] for r in select_records(root, only="redundant")}}


def test_the_original_name_is_kept_over_a_copy_name(library):
    found = library["sets"]["Photos/IMG_0001.JPG"]
    assert found.redundant == ("Downloads/IMG_0001 (1).JPG",)


def test_a_copy_in_a_trash_folder_is_not_kept(library):
    assert library["sets"]["Photos/IMG_0002.JPG"].redundant == ("Trash/IMG_0002.JPG",)


def test_an_edit_is_not_listed_but_its_exact_copy_is(library):
    records, redundant = library["records"], library["redundant"]
    # the edit is a near duplicate of its original, and 0.3 EV brighter at most
    assert "near_duplicate" in records["Photos/IMG_0004-edited.jpg"]["flags"]
    assert "Photos/IMG_0004.JPG" not in redundant
    assert "Photos/IMG_0004-edited.jpg" not in redundant
    assert redundant["Photos/IMG_0004-edited (1).jpg"] == "Photos/IMG_0004-edited.jpg"


def test_a_copy_as_sharp_within_the_tolerance_keeps_the_original_name(library):
    records = library["records"]
    sharp = [records[f"Photos/{n}"]["scores"]["blurry"] for n in ("IMG_0005.JPG",
                                                                 "IMG_0005-2.JPG")]
    assert sharp[0] != sharp[1] and abs(sharp[0] - sharp[1]) < keep._SHARPNESS_TOLERANCE
    assert library["redundant"]["Photos/IMG_0005-2.JPG"] == "Photos/IMG_0005.JPG"


def test_a_sharper_copy_is_kept_whatever_its_name(library):
    records = library["records"]
    blurred, sharp = (records[f"Photos/{n}"]["scores"]["blurry"] for n in ("IMG_0006.JPG",
                                                                          "IMG_0006-2.JPG"))
    assert sharp - blurred > 5 * keep._SHARPNESS_TOLERANCE
    assert library["redundant"]["Photos/IMG_0006.JPG"] == "Photos/IMG_0006-2.JPG"


@pytest.mark.skipif(not raw_available(), reason="needs the raw extra (rawpy)")
def test_a_raw_pair_keeps_its_raw_and_lists_the_other_copies(library):
    redundant = library["redundant"]
    assert "Photos/IMG_0003.DNG" not in redundant
    assert "Photos/IMG_0003.JPG" not in redundant
    assert redundant["Export/IMG_0003.jpg"] == "Photos/IMG_0003.DNG"
    # the backup is an exact copy of the JPEG half, a near one of the RAW: it goes with
    # whichever keeps first, never with the pair's JPEG listed
    assert redundant["Backup/IMG_0003.JPG"] in ("Photos/IMG_0003.DNG", "Photos/IMG_0003.JPG")
    records = library["records"]
    assert records["Photos/IMG_0003.DNG"]["format"].startswith("RAW")


# -- chosen records -------------------------------------------------------------------------------

def _catalog(path: Path, files: list[dict]) -> Path:
    return chosen_catalog(path, files)


def _sets(tmp_path, *files: dict) -> list[tuple[str, tuple[str, ...]]]:
    """The sets of a new catalog of ``files``: (kept, redundant) each."""
    path = _catalog(tmp_path / f"c{len(list(tmp_path.glob('c*.db')))}.db", list(files))
    return [(s.keep, s.redundant) for s in duplicate_sets(path)]


@pytest.mark.parametrize("copy", [
    "IMG_0001 (1).JPG", "IMG_0001(2).jpg", "IMG_0001 copy.JPG", "IMG_0001 copy 2.JPG",
    "IMG_0001-2.JPG", "IMG_0001_1.JPG", "IMG_0001-edited.JPG", "Copy of IMG_0001.JPG",
    "IMG_0001 - Copy.JPG", "IMG_0001 - Copy (2).JPG", "img_0001 COPY.jpeg",
    "IMG_0001 copy (1).JPG", "sub/IMG_0001 (1).png",
])
def test_every_copy_name_loses_to_the_original_name(tmp_path, copy):
    # exact copies: every measure ties, and the copy's name sorts first in path order
    # (space, '(', '-', '_' and 'C' sort before '.'; 'sub/' before 'z/')
    files = [{"name": "z/IMG_0001.JPG", "pixels": "same"}, {"name": copy, "pixels": "same"}]
    assert _sets(tmp_path, *files) == [("z/IMG_0001.JPG", (copy,))]


@pytest.mark.parametrize("pair", [
    ("a (1).jpg", "b.jpg"),  # "a" is not in the set: path order decides
    ("IMG_0001 (1).JPG", "IMG_0001a.JPG"),
    ("DSC-01.jpg", "DSC_0001.jpg"),
    ("IMG-0001.jpg", "IMG.jpg"),  # a camera's number is no copy number
])
def test_a_copy_name_counts_only_beside_its_original(tmp_path, pair):
    first, second = pair
    files = [{"name": second, "pixels": "same"}, {"name": first, "pixels": "same"}]
    assert _sets(tmp_path, *files) == [(first, (second,))]


@pytest.mark.parametrize("folder", [
    "#recycle", "@Recycle", "$RECYCLE.BIN/S-1-5-21", "RECYCLER", ".Trash-1000/files",
    ".Trashes/501", "Trash", "@eaDir/IMG_0001.JPG", ".@__thumb", ".thumbnails",
    "Photos Library.photoslibrary/resources/derivatives", "Previews.lrdata/A/A1",
    "iPhoto Library/Thumbnails", "#snapshot/daily", "__MACOSX",
])
def test_a_file_in_a_trash_or_cache_folder_is_never_kept(tmp_path, folder):
    # it is exact, sharper, bigger, and sorts first: the junk folder still loses
    files = [{"name": "Photos/IMG_0001.JPG", "pixels": "same"},
             {"name": f"{folder}/IMG_0001.JPG", "pixels": "same", "sharp": 0.95, "size": 80}]
    assert _sets(tmp_path, *files) == [("Photos/IMG_0001.JPG", (f"{folder}/IMG_0001.JPG",))]


@pytest.mark.parametrize("folder", ["Backup", "Backups 2021", "Old", "old/2019", "Duplicates"])
def test_a_file_in_a_folder_of_copies_keeps_only_over_junk(tmp_path, folder):
    files = [{"name": f"{folder}/IMG_0001.JPG", "pixels": "same"},
             {"name": "Pictures/IMG_0001.JPG", "pixels": "same"},
             {"name": "#recycle/IMG_0001.JPG", "pixels": "same"}]
    assert _sets(tmp_path, *files) == [
        ("Pictures/IMG_0001.JPG", ("#recycle/IMG_0001.JPG", f"{folder}/IMG_0001.JPG"))
    ]
    assert _sets(tmp_path, files[0], files[2]) == [
        (f"{folder}/IMG_0001.JPG", ("#recycle/IMG_0001.JPG",))
    ]


def test_folder_names_that_only_look_like_junk_are_not(tmp_path):
    for folder in ("Trash talk", "oldies", "recycled paper", "thumbnails"):
        assert keep._junk_rank(f"{folder}/a.jpg") == 0, folder
    # the keep_under folders come first, junk or not (an explicit choice)
    path = _catalog(tmp_path / "k.db", [{"name": "Photos/a.jpg", "pixels": "same"},
                                        {"name": "Trash/a.jpg", "pixels": "same"}])
    assert duplicate_sets(path, keep_under="Trash")[0].keep == "Trash/a.jpg"


def test_a_photo_librarys_original_is_never_listed(tmp_path):
    inside = "Photos Library.photoslibrary/originals/3/0003-UUID.jpeg"
    derivative = "Photos Library.photoslibrary/resources/derivatives/3/0003-UUID_1_105_c.jpeg"
    files = [{"name": inside, "pixels": "same"}, {"name": "Pictures/IMG_3.JPG", "pixels": "same"},
             {"name": derivative, "sharp": 0.9, "size": 32}]
    # your own file keeps; the library's original stays where it is (in no set)
    assert _sets(tmp_path, *files) == [("Pictures/IMG_3.JPG", (derivative,))]
    # alone with its derivative, it keeps
    assert _sets(tmp_path, files[0], files[2]) == [(inside, (derivative,))]


@pytest.mark.parametrize(("raw", "other"), [
    ("IMG_0001.NEF", "IMG_0001.JPG"), ("IMG_0001.RAF", "IMG_0001.JPG"),
    ("IMG_0001.ORF", "IMG_0001.jpeg"), ("IMG_0001.rw2", "IMG_0001.JPG"),
    ("IMG_0001.PEF", "img_0001.jpg"), ("IMG_0001.CR3", "IMG_0001.HIF"),
    ("IMG_0001.dng", "IMG_0001.HEIC"), ("IMG_0001.ARW", "IMG_0001.TIF"),
])
def test_a_raw_pair_is_one_photo(tmp_path, raw, other):
    # exact copies (the RAW read from its preview), the JPEG sharper and the RAW flagged
    # blurry: neither half is listed because of the other, whatever the extension
    files = [{"name": f"d/{raw}", "pixels": "same", "sharp": 0.3},
             {"name": f"d/{other}", "pixels": "same", "sharp": 0.9}]
    assert _sets(tmp_path, *files) == []
    # with a copy elsewhere: the RAW keeps, the copy is listed, the JPEG is not
    files.append({"name": f"Backup/{other}", "pixels": "same", "sharp": 0.9})
    files.append({"name": "Export/IMG_0001.jpg", "sharp": 0.99, "size": 32})
    assert _sets(tmp_path, *files) == [
        (f"d/{raw}", ("Backup/" + other, "Export/IMG_0001.jpg"))
    ]


def test_the_jpeg_of_a_pair_keeps_over_a_lone_copy(tmp_path):
    # the RAW is in no set (its pixels are far from the JPEG's): the camera's JPEG is
    # still the pair's and keeps over an exact copy elsewhere that sorts first
    files = [{"name": "d/IMG_1.NEF", "phash": ~PHASH & (1 << 64) - 1},
             {"name": "d/IMG_1.JPG", "pixels": "same"},
             {"name": "A/IMG_1.JPG", "pixels": "same", "sharp": 0.9}]
    assert _sets(tmp_path, *files) == [("d/IMG_1.JPG", ("A/IMG_1.JPG",))]


def test_a_raw_is_kept_over_a_lone_jpeg_and_halves_elsewhere_are_no_pair(tmp_path):
    # other folders, or other stems: no pair; the RAW is the original and keeps
    files = [{"name": "a/IMG_0001.JPG", "pixels": "same", "sharp": 0.95},
             {"name": "b/IMG_0001.NEF", "pixels": "same", "sharp": 0.3},
             {"name": "b/IMG_0002.JPG", "pixels": "same", "sharp": 0.95}]
    assert _sets(tmp_path, *files) == [("b/IMG_0001.NEF", ("a/IMG_0001.JPG", "b/IMG_0002.JPG"))]


def test_a_pair_copied_whole_goes_with_its_raw(tmp_path):
    # a backup of the pair: one pair keeps; the other's two halves are listed together
    files = [{"name": f"{folder}/IMG_1.{ext}", "pixels": ext}
             for folder in ("Backup", "Photos") for ext in ("NEF", "JPG")]
    assert _sets(tmp_path, *files) == [("Photos/IMG_1.NEF", ("Backup/IMG_1.JPG",
                                                             "Backup/IMG_1.NEF"))]


def test_an_edit_joins_only_as_an_exact_copy(tmp_path):
    # the edit is sharper: it would keep and list its original; it is neither
    files = [{"name": "IMG_1.JPG", "sharp": 0.6}, {"name": "IMG_1-edited.JPG", "sharp": 0.9}]
    assert _sets(tmp_path, *files) == []
    # its own copies are listed: an exact one, and a small export of it
    files += [{"name": "IMG_1-edited (1).JPG", "pixels": "edit", "sharp": 0.9},
              {"name": "Export/IMG_1.jpg", "sharp": 0.95, "size": 32}]
    files[1]["pixels"] = "edit"
    assert _sets(tmp_path, *files) == [("IMG_1-edited.JPG", ("IMG_1-edited (1).JPG",)),
                                       ("IMG_1.JPG", ("Export/IMG_1.jpg",))]


@pytest.mark.parametrize(("gap", "kept"), [(0.004, "z/IMG_1.JPG"), (0.012, "z/IMG_1.JPG"),
                                           (0.02, "IMG_1 (1).JPG"), (0.1, "IMG_1 (1).JPG")])
def test_sharpness_decides_beyond_the_tolerance(tmp_path, gap, kept):
    files = [{"name": "z/IMG_1.JPG", "sharp": 0.8}, {"name": "IMG_1 (1).JPG", "sharp": 0.8 + gap}]
    assert _sets(tmp_path, *files)[0][0] == kept


def test_the_tolerance_groups_from_the_sharpest(tmp_path):
    # 0.900, 0.889, 0.876: the first two tie (the name decides); the third is within the
    # tolerance of the second but not of the sharpest: softer (no chain of ties)
    files = [{"name": "a (1).jpg", "sharp": 0.90}, {"name": "a.jpg", "sharp": 0.889},
             {"name": "0.jpg", "sharp": 0.876}]
    keys = keep._keep_keys([ImageRecord(f["name"].encode(), 1, 1, "ok", width=8, height=8,
                                        scores={"blurry": f["sharp"]}) for f in files])
    assert [k[7] for k in keys] == [0, 0, 1]  # after picked and the six heads
    assert _sets(tmp_path, *files)[0][0] == "a.jpg"


def test_the_numpy_split_gives_the_same_sets(tmp_path, monkeypatch):
    files = [
        {"name": "d/IMG_1.NEF", "pixels": "p"}, {"name": "d/IMG_1.JPG", "pixels": "p"},
        {"name": "Backup/IMG_1.JPG", "pixels": "p"}, {"name": "d/IMG_1-edited.JPG"},
        {"name": "#recycle/IMG_1.JPG", "pixels": "p", "sharp": 0.99},
        {"name": "X.photoslibrary/originals/1.jpeg", "pixels": "p"},
        {"name": "d/IMG_1 (1).JPG", "sharp": 0.805},
    ]
    small = _sets(tmp_path, *files)
    assert small[0] == ("d/IMG_1.NEF", ("#recycle/IMG_1.JPG", "Backup/IMG_1.JPG",
                                        "d/IMG_1 (1).JPG"))
    monkeypatch.setattr(keep, "_SMALL_SET", 0)
    path = tmp_path / "c0.db"
    assert [(s.keep, s.redundant) for s in duplicate_sets(path)] == small


@pytest.mark.parametrize("small_set", [32, 0])
def test_two_raws_of_one_name_are_copies_not_a_pair(tmp_path, monkeypatch, small_set):
    # a NEF and the DNG converted from it: both RAW, so no pair: one is a copy of the
    # other (path order); the JPEG beside them is the pair's and not listed
    monkeypatch.setattr(keep, "_SMALL_SET", small_set)
    files = [{"name": f"d/IMG_1.{ext}", "pixels": "same"} for ext in ("NEF", "DNG", "JPG")]
    assert _sets(tmp_path, *files) == [("d/IMG_1.DNG", ("d/IMG_1.NEF",))]
