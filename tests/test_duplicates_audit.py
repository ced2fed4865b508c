"""Audit of boda.duplicates and the keep plan against references computed here.

- pHash against ``imagehash.phash`` on transformed copies of the Kodak photos (the
  originals are checked in test_duplicates.py), and the mirrored pHash against
  ``imagehash.phash`` of the flipped photo;
- the clustering against a brute-force graph (scipy's connected components) on hashes
  whose bits are mostly constant (the bits the block search drops), at every tolerance
  0..12;
- the keep plan: a rejected file is never kept over a copy that is not rejected, and an
  edit that keeps takes no near copy (its original) into its set.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from scan_helpers import burst_of_copies, chosen_catalog
from test_duplicate_clusters import _brute as brute_force_groups

from boda.catalog import Marks
from boda.duplicates import find_near_duplicates, hamming, phash, phash_pair
from boda.report import _keep as keep
from boda.report import duplicate_sets, select_records
from boda.scan import scan

# -- pHash against imagehash ----------------------------------------------------------------------


def _jpeg(pil: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


_EDITS = {
    "resize 0.5x": lambda p: p.resize((p.width // 2, p.height // 2), Image.LANCZOS),
    "JPEG q=70": lambda p: _jpeg(p, 70),
    "crop 2% per side": lambda p: p.crop(
        (p.width // 50, p.height // 50, p.width - p.width // 50, p.height - p.height // 50)
    ),
    "brightness +8%": lambda p: ImageEnhance.Brightness(p).enhance(1.08),
}


@pytest.mark.parametrize("edit", list(_EDITS))
def test_phash_of_edited_copies_matches_imagehash(kodak_paths, edit):
    """boda's pHash of an edited Kodak copy is imagehash's up to the bits whose DCT
    coefficient sits at the median: imagehash resizes a uint8 gray image (Pillow's
    rounded "L" conversion and fixed-point Lanczos), boda the float one, so a coefficient
    within rounding of the median can fall either side; each swap moves 2 bits (exactly
    32 bits are set).  Measured on the 24 Kodak photos: at most 2 bits after resizing,
    JPEG and brightness, 4 after the crop (one photo), mean under 0.2; here, on the 6 of
    tests/data, the mirrored hash too is within 2 bits."""
    imagehash = pytest.importorskip("imagehash")
    distances, mirrored = [], []
    for path in kodak_paths:
        copy = _EDITS[edit](Image.open(path).convert("RGB"))
        pixels = np.asarray(copy, dtype=np.float32) / 255
        reference = int(str(imagehash.phash(copy)), 16)
        flipped = int(str(imagehash.phash(copy.transpose(Image.FLIP_LEFT_RIGHT))), 16)
        direct, mirror = phash_pair(pixels)
        assert direct == phash(pixels)
        distances.append(hamming(direct, reference))
        mirrored.append(hamming(mirror, flipped))
    assert max(distances) <= 4 and np.mean(distances) <= 1, distances
    assert max(mirrored) <= 4 and np.mean(mirrored) <= 1, mirrored


# -- clustering against brute force ---------------------------------------------------------------


@pytest.mark.parametrize("varying", [3, 11, 24, 40])
def test_clusters_of_hashes_with_mostly_constant_bits_equal_brute_force(rng, varying):
    """Hashes that differ only in a few scattered bits (the rest constant, dropped before
    the blocks are cut), with repeats and chains one or two bits apart: the groups are
    the connected components of the all-pairs graph at every tolerance 0..12."""
    positions = rng.choice(64, varying, replace=False).astype(np.uint64)
    base = rng.integers(0, 2**64, dtype=np.uint64)
    bits = rng.integers(0, 2, (400, varying)).astype(np.uint64)
    values = base ^ (bits << positions).sum(axis=1, dtype=np.uint64)
    for i in range(300, 400):  # chains and repeats of earlier hashes
        flips = rng.integers(0, 3)
        values[i] = values[rng.integers(0, i)]
        for p in rng.choice(positions, flips, replace=False):
            values[i] ^= np.uint64(1) << p
    for d in range(13):
        assert find_near_duplicates(values, d) == brute_force_groups(values, d)[0], d


# -- the keep plan --------------------------------------------------------------------------------


@pytest.fixture
def frames(tmp_path, kodak_paths) -> Path:
    return burst_of_copies(tmp_path / "burst", kodak_paths[0])


def _paths(records) -> list[str]:
    return sorted(r["path"] for r in records)


def test_a_rejected_file_is_not_kept_over_a_copy_not_rejected(frames):
    # Rejecting the file boda keeps used to leave it kept and list the other copies as
    # redundant: `--only redundant` and `--only rejected` then held every copy, and the
    # documented culling (reject the redundant copies, move the rejected away) removed
    # the picture altogether.
    with Marks(frames) as marks:
        marks.set_decision([b"a.png"], "reject")
    (found,) = duplicate_sets(frames)
    assert found.keep == "b.png" and found.redundant == ("a.png", "c.png")
    gone = set(_paths(select_records(frames, "redundant"))) | set(
        _paths(select_records(frames, "rejected"))
    )
    assert gone == {"a.png", "c.png"}
    # rejecting every copy leaves the keep rule to decide among them
    with Marks(frames) as marks:
        marks.set_decision([b"b.png", b"c.png"], "reject")
    assert duplicate_sets(frames)[0].keep == "a.png"
    # a pick still comes first
    with Marks(frames) as marks:
        marks.set_decision([b"c.png"], "pick")
    assert duplicate_sets(frames)[0].keep == "c.png"


@pytest.mark.parametrize("small_set", [32, 0])
def test_an_edit_kept_first_takes_no_near_copy(tmp_path, monkeypatch, small_set):
    # An edit joins only as an exact copy (it is no near copy of its original), but when
    # the edit kept first (--keep-under its folder, a pick, its original in the trash)
    # its original joined the edit's set and was listed for removal.
    monkeypatch.setattr(keep, "_SMALL_SET", small_set)
    files = [{"name": "orig/IMG_1.JPG"}, {"name": "edits/IMG_1-edited.JPG"},
             {"name": "edits/IMG_1-edited (1).JPG", "pixels": "edit"}]
    files[1]["pixels"] = "edit"
    path = chosen_catalog(tmp_path / "c.db", files)
    expected = [("edits/IMG_1-edited.JPG", ("edits/IMG_1-edited (1).JPG",))]
    assert [(s.keep, s.redundant) for s in duplicate_sets(path)] == expected
    kept = [(s.keep, s.redundant) for s in duplicate_sets(path, keep_under="edits")]
    assert kept == expected
    trash = chosen_catalog(tmp_path / "t.db", [{"name": "Trash/IMG_1.JPG"},
                                                {"name": "IMG_1-edited.JPG"}])
    assert duplicate_sets(trash) == []


def test_a_soft_photo_is_kept_over_its_thumbnail(tmp_path, kodak_paths):
    # The sharpness score is measured at each file's own size, and shrinking hides blur:
    # a 1/4-size export of a slightly soft photo (Gaussian sigma 1.2, flagged blurry)
    # scores 0.54-0.93 against the photo's 0.14-0.27 (24 Kodak photos), so the blurry
    # flag, counted among the "other flags" before the pixels, kept the thumbnail and
    # listed the full-resolution original for removal, every time.
    from PIL import ImageFilter

    root = tmp_path / "shoot"
    (root / "web").mkdir(parents=True)
    for i, path in enumerate(kodak_paths[:2]):
        photo = Image.open(path).convert("RGB").filter(ImageFilter.GaussianBlur(1.2))
        photo.save(root / f"IMG_{i}.jpg", quality=92)
        small = photo.resize((photo.width // 4, photo.height // 4), Image.LANCZOS)
        small.save(root / "web" / f"IMG_{i}.jpg", quality=92)
    scan(root, workers=1)
    records = {r["path"]: r for r in select_records(root, "blurry")}
    assert set(records) == {"IMG_0.jpg", "IMG_1.jpg"}  # the thumbnails are not flagged
    assert [(s.keep, s.redundant) for s in duplicate_sets(root)] == [
        ("IMG_0.jpg", ("web/IMG_0.jpg",)), ("IMG_1.jpg", ("web/IMG_1.jpg",))
    ]


def test_the_blurry_flag_decides_between_copies_of_one_size(tmp_path):
    # Chosen records: of two files of one size, the one flagged blurry still loses, even
    # to a brighter one (test_keep_exposure); of two sizes, the larger keeps.
    files = [{"name": "a.jpg", "sharp": 0.2}, {"name": "b.jpg", "sharp": 0.9}]
    path = chosen_catalog(tmp_path / "same.db", files)
    assert [s.keep for s in duplicate_sets(path)] == ["b.jpg"]
    files = [{"name": "a.jpg", "sharp": 0.2}, {"name": "b.jpg", "sharp": 0.9, "size": 16}]
    path = chosen_catalog(tmp_path / "sizes.db", files)
    assert [s.keep for s in duplicate_sets(path)] == ["a.jpg"]
