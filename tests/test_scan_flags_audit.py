"""Audit of ``boda scan``'s flags and thresholds: stored scores that are no number,
threshold edge cases, re-flagging, duplicates across changes and the summary counts."""

from __future__ import annotations

import json
import sqlite3

import pytest
from scan_helpers import edited_by_hand
from typer.testing import CliRunner

from boda.catalog import ImageRecord, default_catalog_path
from boda.cli import app
from boda.report import catalog_records
from boda.report._export import real_scores
from boda.scan import derive_flags, resolve_thresholds, scan
from boda.scan._flags import _rules

runner = CliRunner()


def _flags(root) -> dict[str, set[str]]:
    return {r["path"]: set(r["flags"]) for r in catalog_records(default_catalog_path(root))}


# -- a score stored as no number is missing, as the report and exports take it -------------------

#: What a hand-edited (or damaged) catalog may hold where a score goes.
NOT_NUMBERS = {"text": "high", "numeral": "0.1", "true": True, "false": False,
               "list": [0.1], "object": {"v": 0.1}, "nan": float("nan"), "inf": float("inf"),
               "-inf": float("-inf"), "past float": 10**400}


@pytest.mark.parametrize("bad", NOT_NUMBERS.values(), ids=NOT_NUMBERS.keys())
def test_a_score_that_is_no_number_gives_no_flag_as_exports_miss_it(bad):
    """Every per-image flag of a record whose every score is ``bad`` equals the flags of
    the same record with its scores as the exports read them (``real_scores``: missing),
    with thresholds that would flag any real score; a 2x2 image, which low_information
    flags for its size whatever its entropy, included."""
    keys = {rule.score_key for rule in _rules()}
    everything = resolve_thresholds({"blurry": 1e9, "dark": -1e9, "light": -1e9,
                                     "low_information": 1e9, "grayscale": 1e9,
                                     "odd_aspect_ratio": 1})
    for size in (2, 64):
        record = ImageRecord(b"a.png", 1, 0, "ok", id=1, width=size, height=size,
                             scores=dict.fromkeys(keys, bad))
        got = derive_flags([record], everything)
        cleaned = real_scores({"scores": dict(record.scores), "flag_scores": {}})["scores"]
        record.scores = {k: v for k, v in cleaned.items() if v is not None}
        assert got == derive_flags([record], everything) == []


def test_a_rescan_of_a_catalog_with_a_score_stored_as_text(folder):
    """``UPDATE images SET scores = json_set(scores, '$.blurry', 'high')``: the re-scan
    used to stop with a TypeError in the flag derivation; the file now gets no flag from
    that score and the others are flagged as before."""
    scan(folder, workers=1)
    db = sqlite3.connect(default_catalog_path(folder))
    db.execute("UPDATE images SET scores = json_set(scores, '$.mean_L', 'high')")
    db.execute("UPDATE images SET scores = json_set(scores, '$.blurry', 'high', "
               "'$.dark', 'very') WHERE relpath = CAST('b.png' AS BLOB)")
    db.commit()
    db.close()
    summary = scan(folder, workers=1, thresholds={"blurry": 5, "dark": -1})
    assert summary.analysed == 0
    flags = _flags(folder)
    assert "blurry" not in flags["b.png"] and "dark" not in flags["b.png"]
    assert all({"blurry", "dark"} <= f for p, f in flags.items() if p != "b.png")
    assert summary.flag_counts["blurry"] == summary.flag_counts["dark"] == 4
    result = runner.invoke(app, ["scan", str(folder), "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["flag_counts"]["blurry"] == 4


# -- hashes of another type in a hand-edited catalog are missing, as the report reads them -------


@pytest.mark.parametrize("stored", ["1.5", "99999999999999999999999"])
def test_a_phash_stored_as_no_64_bit_hash_takes_no_part(folder, small_photos, stored):
    """A pHash cell holding a real number (SQLite keeps 1.5 and an integer past 2**63 as
    REAL): the re-scan stopped with the clustering's error about "hashes[0]"; the report
    reads the cell as missing, and the scan now leaves the file out of near duplicates."""
    from boda.io import write_image

    write_image(folder / "b small.jpg", small_photos[1][::2, ::2], quality=90)  # near b
    assert scan(folder, workers=1).flag_counts["near_duplicate"] == 2
    db = sqlite3.connect(default_catalog_path(folder))
    db.execute(f"UPDATE images SET phash = {stored} WHERE relpath = CAST('b.png' AS BLOB)")
    db.commit()
    db.close()
    edited_by_hand(default_catalog_path(folder))
    summary = scan(folder, workers=1)
    assert summary.flag_counts["near_duplicate"] == 0
    assert summary.flag_counts["exact_duplicate"] == 2  # a and its copy, as before
    records = {r["path"]: r for r in catalog_records(default_catalog_path(folder))}
    assert records["b.png"]["phash"] is None and records["b.png"]["flags"] == []


def test_look_alikes_without_pixel_hashes_are_still_near_duplicates():
    """A group "all of one pixel hash" is left to exact_duplicate; records without a
    pixel hash (a library caller's records, a damaged row) are no exact copies, and
    their near-duplicate group used to vanish: the flags are those of distinct hashes."""
    def records(pixel_hashes):
        return [ImageRecord(f"{i}.png".encode(), 1, 0, "ok", id=i + 1, width=64, height=64,
                            pixel_hash=h, phash=0x8F3C_5A5A_0FF0_33CC ^ (1 << i))
                for i, h in enumerate(pixel_hashes)]

    thresholds = resolve_thresholds(None)
    distinct = derive_flags(records(["a" * 32, "b" * 32, "c" * 32]), thresholds)
    assert [row[1] for row in distinct] == ["near_duplicate"] * 3
    assert derive_flags(records([None, None, None]), thresholds) == distinct
    assert derive_flags(records(["a" * 32, None, None]), thresholds) == distinct
    # one shared pixel hash: exact copies, left to exact_duplicate as documented
    same = derive_flags(records(["a" * 32] * 3), thresholds)
    assert {row[1] for row in same} == {"exact_duplicate"}


# -- thresholds ----------------------------------------------------------------------------------


def test_a_threshold_given_as_true_or_false_is_refused(two_photos):
    """True was taken as the threshold 1 (near_duplicate=True: 1 bit) and False as 0, where
    QualityThresholds, which scan() also takes, refuses bools."""
    from boda.errors import InvalidParameterError

    for name in ("blurry", "near_duplicate", "odd_size"):
        with pytest.raises(InvalidParameterError, match=f"threshold {name}=True"):
            resolve_thresholds({name: True})
    with pytest.raises(InvalidParameterError, match="threshold dark=False"):
        scan(two_photos, workers=1, thresholds={"dark": False})
    assert not (two_photos / ".boda").exists()


def test_exact_duplicate_is_named_a_flag_without_a_threshold(two_photos):
    """``-t exact_duplicate=1`` said "unknown flag 'exact_duplicate'", a flag every scan
    lists: it has no threshold, and near_duplicate is the one to set."""
    result = runner.invoke(app, ["scan", str(two_photos), "-t", "exact_duplicate=1", "-q"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "exact_duplicate has no threshold" in said and "near_duplicate" in said
    assert "unknown flag" not in said
    assert not (two_photos / ".boda").exists()


def test_one_threshold_given_twice_with_two_values_is_refused(two_photos):
    """``-t blurry=5 -t blurry=0.1`` kept 0.1 and dropped 5 without a word (and
    remembered 0.1 for later scans); the same value twice is one value."""
    result = runner.invoke(
        app, ["scan", str(two_photos), "-t", "blurry=5", "-t", "blurry=0.1", "-q"]
    )
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "--threshold blurry is given twice (blurry=5 and blurry=0.1)" in said
    assert not (two_photos / ".boda").exists()
    result = runner.invoke(app, ["scan", str(two_photos), "-t", "blurry=5", "-t", "blurry=5.0",
                                 "--json", "--no-report"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["flag_counts"]["blurry"] == 2
def test_a_phash_stored_as_text_takes_no_part(folder, small_photos):
    """``UPDATE images SET phash = 'abc'``: the re-scan stopped with a TypeError in
    Catalog.flag_inputs (``phash < 0``); the report reads the cell as missing."""
    from boda.io import write_image

    write_image(folder / "b small.jpg", small_photos[1][::2, ::2], quality=90)  # near b
    scan(folder, workers=1)
    db = sqlite3.connect(default_catalog_path(folder))
    db.execute("UPDATE images SET phash = 'abc' WHERE relpath = CAST('b.png' AS BLOB)")
    db.commit()
    db.close()
    edited_by_hand(default_catalog_path(folder))
    summary = scan(folder, workers=1)
    assert summary.flag_counts["near_duplicate"] == 0
    records = {r["path"]: r for r in catalog_records(default_catalog_path(folder))}
    assert records["b.png"]["phash"] is None and records["b.png"]["flags"] == []
