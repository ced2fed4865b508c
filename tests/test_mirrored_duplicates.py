"""Left-right mirror images as near duplicates: ``phash_pair``, the mirrored clustering,
and ``boda scan --mirrored`` end to end (the record, the report, the keep plan)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from scan_helpers import edited_by_hand
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from typer.testing import CliRunner

import boda.duplicates._clusters as clusters
from boda.catalog import Catalog, default_catalog_path
from boda.cli import app
from boda.duplicates import (
    find_near_duplicates,
    find_near_duplicates_mirrored,
    hamming,
    phash,
    phash_pair,
)
from boda.duplicates._clusters import _popcount
from boda.duplicates._hashes import _MIRROR_SIGNS, _low_dct
from boda.errors import InvalidParameterError
from boda.io import read_image, write_image
from boda.report import catalog_records, duplicate_sets, render_html, select_records
from boda.scan import scan

runner = CliRunner()

#: (rows, columns) the Kodak photos are cut to: odd sizes, and strips near the
#: smallest size the hash takes.
CROPS = [(None, None), (331, 497), (123, 9), (13, 8), (101, 77)]


# -- the hash --------------------------------------------------------------------------


def test_the_dct_of_the_mirror_image_flips_the_odd_horizontal_frequencies(kodak_paths):
    for path in kodak_paths:
        img = read_image(path)
        for rows, cols in CROPS:
            part = img[:rows, :cols]
            flipped = _low_dct(np.ascontiguousarray(part[:, ::-1]))
            # equal up to the float32 rounding of the gray (1e-7 of a DC term near 500)
            np.testing.assert_allclose(flipped, _low_dct(part) * _MIRROR_SIGNS, atol=1e-5)


def test_the_mirrored_hash_is_the_hash_of_the_flipped_photo(kodak_paths):
    # Measured: identical (Hamming distance 0) on every Kodak photo and crop.
    for path in kodak_paths:
        img = read_image(path)
        for rows, cols in CROPS:
            part = img[:rows, :cols]
            direct, mirrored = phash_pair(part)
            assert direct == phash(part)
            assert mirrored == phash(np.ascontiguousarray(part[:, ::-1]))
            gray = part @ np.array([0.299, 0.587, 0.114], np.float32)
            assert phash_pair(gray)[1] == phash(gray[:, ::-1])


def test_a_photo_and_its_mirror_image_hash_far_apart_directly(kodak_paths):
    # Why --mirrored exists: a flip is as far as an unrelated photo (26-36 bits).
    for path in kodak_paths:
        direct, mirrored = phash_pair(read_image(path))
        assert hamming(direct, mirrored) >= 20


def test_a_flat_image_is_its_own_mirror_image():
    flat = np.full((40, 50, 3), 0.3, np.float32)
    assert phash_pair(flat) == (1 << 63, 1 << 63)


# -- the clustering --------------------------------------------------------------------


def _reference(hashes, mirrored, max_distance):
    """Brute force: direct within the distance, or mirrored within it both ways."""
    h = np.array(hashes, dtype=np.uint64)
    has = np.array([m is not None for m in mirrored])
    m = np.array([0 if v is None else v for v in mirrored], dtype=np.uint64)
    direct = _popcount(h[:, None] ^ h[None, :]).astype(int)
    one_way = _popcount(h[:, None] ^ m[None, :]).astype(int)
    flipped = np.where(has[:, None] & has[None, :], np.maximum(one_way, one_way.T), 99)
    np.fill_diagonal(direct, 99)
    np.fill_diagonal(flipped, 99)
    _, labels = connected_components(
        coo_matrix((direct <= max_distance) | (flipped <= max_distance)), directed=False
    )
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    groups = sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
    best_direct, best_flipped = direct.min(axis=1), flipped.min(axis=1)
    best = np.minimum(best_direct, best_flipped)
    nearest = np.where(best <= max_distance, best, -1)
    return groups, nearest, (best_flipped < best_direct) & (best_flipped <= max_distance)


def _planted(rng, n):
    """pHash-like hashes, mirrored hashes that invert the odd frequencies, planted mirror
    copies and direct copies a few bits off, exact copies, symmetric pictures, and
    images without a mirrored hash (an older record)."""
    odd = np.uint64(int("01" * 32, 2))
    h = rng.integers(0, 2**63, n, dtype=np.uint64) | np.uint64(1 << 63)
    m = h ^ odd
    order = rng.permutation(n)
    k = n // 5
    for a, b in zip(order[:k], order[k : 2 * k], strict=True):
        flips = np.bitwise_or.reduce(np.uint64(1) << rng.integers(0, 63, 3).astype(np.uint64))
        if rng.random() < 0.5:
            h[b], m[b] = m[a] ^ flips, h[a] ^ flips
        else:
            h[b], m[b] = h[a] ^ flips, m[a] ^ flips
    for a, b in zip(order[2 * k : 2 * k + k // 3], order[3 * k : 3 * k + k // 3], strict=True):
        h[b], m[b] = h[a], m[a]
    for i in order[-(n // 10) :]:
        m[i] = h[i] ^ (np.uint64(1) << np.uint64(rng.integers(0, 63)))  # near symmetric
    hashes = [int(v) for v in h]
    mirrored = [int(v) for v in m]
    for i in rng.integers(0, n, n // 20):
        mirrored[i] = None
    first: dict[int, int] = {}
    for i, value in enumerate(hashes):  # exact copies share their mirrored hash
        mirrored[i] = mirrored[first.setdefault(value, i)]
    return hashes, mirrored


@pytest.mark.parametrize("all_pairs", [False, True])
def test_the_mirrored_clustering_equals_brute_force(all_pairs, monkeypatch):
    if all_pairs:  # make the multi-index plan look dear: the all-pairs path runs
        monkeypatch.setattr(clusters, "_NS_CANDIDATE", 1e9)
    else:  # and the other way round, even for a few dozen hashes
        monkeypatch.setattr(clusters, "_NS_BRUTE", 1e6)
    rng = np.random.default_rng(3)
    for trial in range(40):
        n = int(rng.integers(2, 300))
        max_distance = int(rng.integers(0, 13))
        hashes, mirrored = _planted(rng, n)
        got = find_near_duplicates_mirrored(hashes, mirrored, max_distance, return_nearest=True)
        expected = _reference(hashes, mirrored, max_distance)
        assert got[0] == expected[0], (trial, n, max_distance)
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_array_equal(got[2], expected[2])


def test_without_mirrored_hashes_the_groups_are_the_direct_ones():
    rng = np.random.default_rng(5)
    hashes, _ = _planted(rng, 400)
    direct, nearest = find_near_duplicates(hashes, 10, return_nearest=True)
    groups, near, flipped = find_near_duplicates_mirrored(
        hashes, [None] * len(hashes), 10, return_nearest=True
    )
    assert groups == direct and not flipped.any()
    np.testing.assert_array_equal(near, nearest)
    # arrays (signed, as SQLite stores them) and hex strings are read as the hashes are
    signed = np.array(hashes, dtype=np.uint64).view(np.int64)
    assert find_near_duplicates_mirrored(signed, signed, 10) == find_near_duplicates_mirrored(
        [f"{h:016x}" for h in hashes], [f"{h:016x}" for h in hashes], 10
    )


def test_a_symmetric_picture_is_not_its_own_mirror_copy():
    h = 0x8F3C_5A5A_0FF0_33CC
    assert find_near_duplicates_mirrored([h], [h]) == []
    groups, nearest, flipped = find_near_duplicates_mirrored(
        [h, h ^ 0xFFFF_0000], [h ^ 1, h], return_nearest=True
    )
    assert groups == [] and nearest.tolist() == [-1, -1] and not flipped.any()


def test_a_mirrored_match_needs_both_ways():
    a, b = 0x8000_0000_FFFF_0000, 0x8000_FFFF_0000_00FF
    far = 0x8FFF_0F0F_0F0F_0F0F
    # a is b flipped, and a flipped is b: linked
    assert find_near_duplicates_mirrored([a, b], [b, a]) == [[0, 1]]
    # a looks like b flipped, but a flipped looks nothing like b: not linked
    assert find_near_duplicates_mirrored([a, b], [far, a]) == []


def test_copies_of_one_hash_with_different_mirrored_hashes_each_link():
    # A resized copy can keep the pHash and move its mirrored hash a bit: image 3 is a
    # mirror image of image 2 (0 and 1 bits), though the first images of their hashes
    # (0 and 1) are not; it used to be matched through those first images only.
    hashes, mirrored = [1, 6, 6, 1], [5, 7, 1, 2]
    assert find_near_duplicates_mirrored(hashes, mirrored, 1) == [[0, 1, 2, 3]]
    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(2, 8))
        max_distance = int(rng.integers(0, 3))
        hashes = rng.integers(0, 8, n).tolist()
        mirrored = [int(v) if rng.random() < 0.8 else None for v in rng.integers(0, 8, n)]
        got = find_near_duplicates_mirrored(hashes, mirrored, max_distance, return_nearest=True)
        expected = _reference(hashes, mirrored, max_distance)
        assert got[0] == expected[0], (trial, hashes, mirrored, max_distance)
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_array_equal(got[2], expected[2])


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidParameterError, match="one per image"):
        find_near_duplicates_mirrored([1, 2, 3], [1, 2])
    with pytest.raises(InvalidParameterError, match="between 0 and 64"):
        find_near_duplicates_mirrored([1, 2], [1, 2], max_distance=65)
    with pytest.raises(InvalidParameterError, match="not a 64-bit hash"):
        find_near_duplicates_mirrored([1, 2], [1.0, 2])


# -- the scan --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(kodak_paths) -> dict[str, np.ndarray]:
    return {p.stem: read_image(p) for p in kodak_paths}


@pytest.fixture
def mirror_folder(tmp_path, photos) -> Path:
    """``train/``: a photo and two unrelated ones; ``test/``: the photo flipped (JPEG)
    and another unrelated one."""
    root = tmp_path / "dataset"
    write_image(root / "train" / "parrots.png", photos["kodim23"])
    write_image(root / "train" / "k01.png", photos["kodim01"])
    write_image(root / "train" / "k13.png", photos["kodim13"])
    write_image(root / "test" / "parrots_flipped.jpg",
                np.ascontiguousarray(photos["kodim23"][:, ::-1]), quality=85)
    write_image(root / "test" / "k20.png", photos["kodim20"])
    return root


def _near(folder: Path) -> dict[str, dict]:
    return {r["path"]: r for r in catalog_records(default_catalog_path(folder))
            if "near_duplicate" in r["flags"]}


def test_scan_groups_a_mirror_image_only_when_asked(mirror_folder):
    plain = scan(mirror_folder, workers=1)
    assert plain.flag_counts["near_duplicate"] == 0 and not plain.mirrored
    records = catalog_records(default_catalog_path(mirror_folder))
    for record in records:  # every record keeps its mirrored hash anyway
        assert len(record["extra"]["phash_mirrored"]) == 16 and record["mirrored"] is False
    by_path = {r["path"]: r for r in records}
    original, flipped = by_path["train/parrots.png"], by_path["test/parrots_flipped.jpg"]
    assert hamming(original["phash"], flipped["phash"]) > 20
    # the scan's hash is of a box-averaged thumbnail: 0-4 bits on the Kodak photos
    assert hamming(original["phash"], flipped["extra"]["phash_mirrored"]) <= 4
    assert hamming(original["extra"]["phash_mirrored"], flipped["phash"]) <= 4

    mirrored = scan(mirror_folder, workers=1, mirrored=True)
    assert mirrored.analysed == 0  # no image decoded again
    assert mirrored.mirrored and not mirrored.remembered_mirrored
    assert mirrored.flag_counts["near_duplicate"] == 2 and mirrored.without_mirrored_hash == 0
    near = _near(mirror_folder)
    assert set(near) == {"train/parrots.png", "test/parrots_flipped.jpg"}
    assert {r["groups"]["near_duplicate"] for r in near.values()} == {1}
    assert all(r["mirrored"] is True and r["flag_scores"]["near_duplicate"] <= 4
               for r in near.values())
    page = render_html(default_catalog_path(mirror_folder))
    assert page.count(" · mirrored</span>") == 2
    assert "2 matched as a mirror image" in page and "left-right mirror image (--mirrored)" in page

    again = scan(mirror_folder, workers=1)  # remembered
    assert again.mirrored and again.remembered_mirrored
    assert again.flag_counts["near_duplicate"] == 2
    off = scan(mirror_folder, workers=1, mirrored=False)
    assert not off.mirrored and off.flag_counts["near_duplicate"] == 0
    assert _near(mirror_folder) == {}
    assert "mirrored</span>" not in render_html(default_catalog_path(mirror_folder))
    with pytest.raises(InvalidParameterError, match="mirrored must be"):
        scan(mirror_folder, workers=1, mirrored="yes")


def test_a_mirror_image_is_a_copy_for_the_keep_plan_and_leaks(mirror_folder):
    scan(mirror_folder, workers=1)
    assert duplicate_sets(mirror_folder) == []
    assert list(select_records(mirror_folder, under="test/", copy_under="train/")) == []
    scan(mirror_folder, workers=1, mirrored=True)
    (kept_set,) = duplicate_sets(mirror_folder)
    assert {kept_set.keep, *kept_set.redundant} == {
        "train/parrots.png", "test/parrots_flipped.jpg"
    }
    (leak,) = select_records(mirror_folder, under="test/", copy_under="train/")
    assert leak["path"] == "test/parrots_flipped.jpg"
    assert leak["copy_of"] == "train/parrots.png"


def test_the_cli_option_is_remembered_and_turned_off(mirror_folder):
    result = runner.invoke(app, ["scan", str(mirror_folder), "-w", "1", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "mirror" not in result.stdout
    result = runner.invoke(
        app, ["scan", str(mirror_folder), "-w", "1", "--mirrored", "--no-report", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mirrored"] is True and summary["remembered_mirrored"] is False
    assert summary["flag_counts"]["near_duplicate"] == 2
    assert summary["without_mirrored_hash"] == 0
    exported = runner.invoke(app, ["report", str(mirror_folder), "--json"])
    assert exported.exit_code == 0, exported.output
    flags = {r["path"]: r["mirrored"] for r in json.loads(exported.stdout)}
    assert flags == {"test/k20.png": False, "test/parrots_flipped.jpg": True,
                     "train/k01.png": False, "train/k13.png": False,
                     "train/parrots.png": True}
    result = runner.invoke(app, ["scan", str(mirror_folder), "-w", "1", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "near duplicates include left-right mirror images (--mirrored, remembered" in (
        " ".join(result.stdout.split())
    )
    leaks = runner.invoke(
        app, ["report", str(mirror_folder), "--under", "test/", "--copy-under", "train/"]
    )
    assert leaks.exit_code == 0 and leaks.stdout.split() == [
        str(mirror_folder / "test" / "parrots_flipped.jpg")
    ]
    result = runner.invoke(
        app, ["scan", str(mirror_folder), "-w", "1", "--no-mirrored", "--no-report", "--json"]
    )
    summary = json.loads(result.stdout)
    assert summary["mirrored"] is False and summary["flag_counts"]["near_duplicate"] == 0
    help_text = runner.invoke(app, ["scan", "--help"]).stdout
    assert "--mirrored" in help_text and "--no-mirrored" in help_text


def test_the_csv_and_parquet_tables_say_mirrored_as_the_json_does(mirror_folder, tmp_path):
    import csv

    pq = pytest.importorskip("pyarrow.parquet")
    from boda.report import write_csv, write_parquet

    def tables(**only) -> tuple[dict, dict, dict]:
        with open(write_csv(mirror_folder, tmp_path / "t.csv", **only), newline="") as fh:
            in_csv = {row["path"]: row["mirrored"] for row in csv.DictReader(fh)}
        data = pq.read_table(write_parquet(mirror_folder, tmp_path / "t.parquet", **only),
                             columns=["path", "mirrored"]).to_pydict()
        records = {r["path"]: r["mirrored"] for r in select_records(mirror_folder, **only)}
        return records, in_csv, dict(zip(data["path"], data["mirrored"], strict=True))

    scan(mirror_folder, workers=1)
    records, in_csv, in_parquet = tables()
    assert len(records) == 5 and not any(records.values())
    assert in_csv == dict.fromkeys(records, "false") and in_parquet == records
    scan(mirror_folder, workers=1, mirrored=True)
    records, in_csv, in_parquet = tables()
    assert {p for p, m in records.items() if m} == {
        "train/parrots.png", "test/parrots_flipped.jpg"
    }
    assert in_csv == {p: "true" if m else "false" for p, m in records.items()}
    assert in_parquet == records  # a bool column, never null
    _, in_csv, in_parquet = tables(only="near_duplicate")  # a selection: the same values
    assert in_csv == {"test/parrots_flipped.jpg": "true", "train/parrots.png": "true"}
    assert in_parquet == {"test/parrots_flipped.jpg": True, "train/parrots.png": True}
    exported = runner.invoke(app, ["report", str(mirror_folder), "--csv", "-"])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(exported.stdout.splitlines()))
    assert {r["path"] for r in rows if r["mirrored"] == "true"} == {
        "train/parrots.png", "test/parrots_flipped.jpg"
    }


def test_records_without_a_mirrored_hash_take_no_part(mirror_folder, photos):
    # A resized copy of k01 (a direct near duplicate) beside the mirror pair.
    write_image(mirror_folder / "test" / "k01_small.jpg", photos["kodim01"][::2, ::2],
                quality=90)
    scan(mirror_folder, workers=1)
    catalog_path = default_catalog_path(mirror_folder)
    # As a catalog made before boda kept the hash: no phash_mirrored in two records.
    with sqlite3.connect(catalog_path) as db:
        db.execute("UPDATE images SET extra = json_remove(extra, '$.phash_mirrored') "
                   "WHERE relpath IN (?, ?)", (b"test/parrots_flipped.jpg", b"train/k01.png"))
    with Catalog(catalog_path, readonly=True) as catalog:
        lacking = [r.path for r in catalog.records() if "phash_mirrored" not in r.extra]
    assert lacking == ["test/parrots_flipped.jpg", "train/k01.png"]
    summary = scan(mirror_folder, workers=1, mirrored=True)
    assert summary.analysed == 0 and summary.without_mirrored_hash == 2
    near = _near(mirror_folder)
    # the old record's mirror copy is not found; its direct copy still is
    assert set(near) == {"train/k01.png", "test/k01_small.jpg"}
    assert not any(r["mirrored"] for r in near.values())
    result = runner.invoke(app, ["scan", str(mirror_folder), "-w", "1"])
    assert result.exit_code == 0, result.output
    assert "2 files analysed by an older boda have no mirrored hash" in (
        " ".join(result.stdout.split())
    )
    assert runner.invoke(app, ["report", str(mirror_folder), "--json"]).exit_code == 0
    assert duplicate_sets(mirror_folder)[0].redundant  # the keep plan reads it too
    # A damaged value is no hash either.
    with sqlite3.connect(catalog_path) as db:
        db.execute("UPDATE images SET extra = json_set(extra, '$.phash_mirrored', '-1') "
                   "WHERE relpath = ?", (b"train/parrots.png",))
    edited_by_hand(catalog_path)
    assert scan(mirror_folder, workers=1).without_mirrored_hash == 3
    # A file that changes is analysed again and gets its mirrored hash.
    write_image(mirror_folder / "test" / "parrots_flipped.jpg",
                np.ascontiguousarray(photos["kodim23"][:, ::-1]), quality=80)
    write_image(mirror_folder / "train" / "parrots.png", photos["kodim23"])
    summary = scan(mirror_folder, workers=1)
    assert summary.analysed == 2 and summary.without_mirrored_hash == 1
    assert set(_near(mirror_folder)) == {
        "train/k01.png", "test/k01_small.jpg", "train/parrots.png", "test/parrots_flipped.jpg"
    }
    # --reanalyze gives every old record its mirrored hash.
    summary = scan(mirror_folder, workers=1, reanalyze=True)
    assert summary.unchanged == 0 and summary.without_mirrored_hash == 0
    with Catalog(catalog_path, readonly=True) as catalog:
        assert all("phash_mirrored" in r.extra for r in catalog.records())
