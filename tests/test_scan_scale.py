"""The scan at scale, on small catalogs: flags come from a light pass over the catalog
(the same flags as from the full records), every long step reports progress, a stopped
scan of a large catalog ends at once with its flags marked stale, and the exports stream
the same bytes as before."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import time

import pytest
import scan_helpers
from typer.testing import CliRunner

import boda.scan._pipeline as pipeline
from boda.catalog import Catalog, ImageRecord, default_catalog_path
from boda.cli import app
from boda.report import iter_catalog_records, render_html, write_csv
from boda.scan import default_thresholds, derive_flags, scan
from boda.scan._flags import _rules

runner = CliRunner()

SCORE_KEYS = ("blurry", "dark", "light", "low_information", "grayscale", "aspect_ratio")


def _reference_flags(records, thresholds):
    """derive_flags as it was written before the light pass: the full records."""
    from boda.duplicates import (
        FLAT_PHASHES,
        find_exact_duplicates,
        find_near_duplicates,
        nearest_distances,
    )

    ok = [r for r in records if r.status == "ok" and r.id is not None]
    rows = []
    for rec in ok:
        for rule in _rules():
            value = rec.scores.get(rule.score_key)
            if value is not None and rule.compare(value, thresholds[rule.name]):
                rows.append((rec.id, rule.name, float(value), None))
    hashed = [r for r in ok if r.pixel_hash is not None]
    for group_id, group in enumerate(find_exact_duplicates([r.pixel_hash for r in hashed]), 1):
        for i in group:
            rows.append((hashed[i].id, "exact_duplicate", float(len(group)), group_id))
    phashed = [r for r in ok if r.phash is not None and r.phash not in FLAT_PHASHES]
    groups = find_near_duplicates(
        [r.phash for r in phashed], max_distance=int(thresholds["near_duplicate"])
    )
    group_id = 0
    for group in groups:
        if len({phashed[i].pixel_hash for i in group}) < 2:
            continue
        group_id += 1
        nearest = nearest_distances([phashed[i].phash for i in group])
        for i, distance in zip(group, nearest.tolist(), strict=True):
            rows.append((phashed[i].id, "near_duplicate", float(distance), group_id))
    return rows


def _synthetic_catalog(path, n=3000, seed=0):
    """A catalog of every kind of record: ok (scores missing, NaN, at the thresholds),
    errors, links, exact duplicates, near-duplicate clusters (one of a single pixel
    hash), flat images, records without hashes, names that are not UTF-8."""
    rng = random.Random(seed)
    records = []
    base = [rng.getrandbits(64) for _ in range(n // 20)]
    for i in range(n):
        name = f"d{i % 7}/img_{rng.getrandbits(20):06x}_{i}.jpg".encode()
        if i % 97 == 0:
            name = b"odd/caf\xe9_" + str(i).encode() + b".jpg"
        kind = i % 50
        if kind == 1:
            records.append(ImageRecord(name, 10, 1, "error", error="cannot identify image"))
            continue
        if kind == 2:
            records.append(ImageRecord(name, 10, 1, "link", link_to=records[-1].relpath))
            continue
        scores = {key: rng.choice([rng.random() * 3, 0.44, 0.8, 2.0]) for key in SCORE_KEYS}
        scores["mean_L"] = rng.random() * 100
        if i % 13 == 0:
            scores["blurry"] = math.nan
        if i % 17 == 0:
            del scores["dark"]
        phash = rng.getrandbits(64)
        pixel = f"{rng.getrandbits(128):032x}"
        if kind < 10:  # near duplicates: a few bits from a shared base
            phash = base[i % len(base)]
            for _ in range(rng.randrange(0, 12)):
                phash ^= 1 << rng.randrange(64)
        elif kind < 14 and records:  # exact duplicates of an earlier ok record
            earlier = next((r for r in reversed(records) if r.status == "ok"), None)
            if earlier is not None:
                phash, pixel = earlier.phash, earlier.pixel_hash
        elif kind == 14:
            phash = rng.choice([0, 1 << 63])  # flat
        elif kind == 15:
            pixel = None
        elif kind == 16:
            phash = None
        elif kind == 17:
            pixel = "f" * 32  # one pixel hash for many images, some of them look-alikes
        records.append(
            ImageRecord(name, 10, 1, "ok", width=4, height=3, format="JPEG",
                        pixel_hash=pixel, phash=phash, scores=scores,
                        extra={"dominant_colors": []}, thumbnail=b"\xff\xd8")
        )
    with Catalog(path) as catalog:
        for start in range(0, len(records), 500):
            catalog.write_batch(records[start : start + 500])
    return path


def _stored_flags(catalog):
    return [
        tuple(r) for r in catalog._db.execute(
            "SELECT image_id, name, score, group_id FROM flags ORDER BY rowid"
        )
    ]


@pytest.mark.parametrize("near", [0, 6, 10])
def test_the_light_pass_derives_the_flags_of_the_full_records(tmp_path, near):
    thresholds = {**default_thresholds(), "near_duplicate": float(near)}
    with Catalog(_synthetic_catalog(tmp_path / "catalog.db")) as catalog:
        records = list(catalog.records())
        statuses = {r.status for r in records}
        expected = _reference_flags(records, thresholds)
        names = {name for _, name, _, _ in expected}
        assert statuses == {"ok", "error", "link"}
        assert {"exact_duplicate", "blurry", "dark"} <= names
        assert near == 0 or "near_duplicate" in names
        assert derive_flags(records, thresholds) == expected
        steps = []
        failed, counts = pipeline._derive_flags(
            catalog, thresholds, lambda *args: steps.append(args)
        )
        assert _stored_flags(catalog) == expected
        assert failed == [(r.path, r.error) for r in records if r.status == "error"]
        assert counts == {n: sum(row[1] == n for row in expected) for n in names}
        assert {"flags", "duplicates", "save"} <= {name for name, _, _ in steps}
        assert near == 0 or ("distances" in {name for name, _, _ in steps})
        assert ("flags", len(records), len(records)) in steps
        assert not catalog.flags_stale()


def test_flag_inputs_are_the_records_in_path_order(tmp_path):
    with Catalog(_synthetic_catalog(tmp_path / "catalog.db", n=600)) as catalog:
        records = list(catalog.records())
        light = list(catalog.flag_inputs())
        assert [r.id for r in light] == [r.id for r in records]
        for row, rec in zip(light, records, strict=True):
            assert (row.relpath, row.status, row.error) == (rec.relpath, rec.status, rec.error)
            assert (row.pixel_hash, row.phash) == (rec.pixel_hash, rec.phash)
            assert json.dumps(row.scores) == json.dumps(rec.scores if rec.status == "ok" else {})


def _old_csv(catalog_path) -> bytes:
    """write_csv as it was: the whole table in memory."""
    from boda.report._export import CSV_COLUMNS

    names = sorted({n for r in iter_catalog_records(catalog_path) for n in r["scores"]})
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow([*CSV_COLUMNS, *names])
    for r in iter_catalog_records(catalog_path):
        groups, extra = r["groups"], r["extra"]
        alpha = extra.get("has_alpha")
        writer.writerow(
            [r["path"], r["status"], r["error"] or "", r["width"], r["height"],
             r["format"] or "", extra.get("mode", ""), extra.get("channels", ""),
             extra.get("bit_depth", ""), "" if alpha is None else str(alpha).lower(),
             extra.get("taken", ""), extra.get("camera", ""), ";".join(r["flags"]),
             groups.get("exact_duplicate", ""), groups.get("near_duplicate", ""),
             r["size"], r["pixel_hash"] or "", r["phash"] or "", r["link_to"] or "",
             r["path_bytes_hex"] or "", r["decision"] or "", r["rating"] or "",
             str(r["mirrored"]).lower()]
            + [r["scores"].get(name, "") for name in names]
        )
    return table.getvalue().encode("utf-8")


def test_the_streamed_csv_has_the_bytes_of_the_table_in_memory(tmp_path):
    path = _synthetic_catalog(tmp_path / "catalog.db", n=800)
    with Catalog(path) as catalog:
        pipeline._derive_flags(catalog, default_thresholds(), None)
    seen = []
    out = write_csv(path, tmp_path / "out.csv", progress=lambda *a: seen.append(a))
    assert out.read_bytes() == _old_csv(path)
    assert seen[-1] == (800, 800)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    write_csv(path, os.devnull)  # a special file is written into, not replaced


def test_an_interrupted_csv_leaves_no_partial_file(tmp_path, monkeypatch):
    path = _synthetic_catalog(tmp_path / "catalog.db", n=200)
    (tmp_path / "out.csv").write_text("before")
    import boda.catalog._catalog as catalog_module

    real, calls = catalog_module._record_dict, []

    def record_dict(*args, **kwargs):  # every exported row is made here
        calls.append(1)
        if len(calls) == 50:  # Ctrl-C in the middle of the rows
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(catalog_module, "_record_dict", record_dict)
    with pytest.raises(KeyboardInterrupt):
        write_csv(path, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "before"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


# -- a scan on a folder ---------------------------------------------------------------------


def test_every_long_step_reports_progress(folder):
    steps, files = [], []
    summary = scan(
        folder, workers=1, step=lambda *a: steps.append(a), progress=lambda *a: files.append(a)
    )
    names = [name for name, _, _ in steps]
    assert [n for n in dict.fromkeys(names) if n != "distances"] == [
        "walk", "compare", "flags", "duplicates", "save"
    ]
    assert ("walk", 5, 5) in steps and ("compare", 5, 5) in steps and ("flags", 5, 5) in steps
    assert files[0] == (0, 5, None) and files[-1][:2] == (5, 5)
    assert 0 < summary.analysis_seconds <= summary.seconds and not summary.flags_stale
    rescan = runner.invoke(app, ["scan", str(folder), "--no-report", "-w", "1"])
    assert rescan.exit_code == 0, rescan.output
    assert "0 analysed in this run · 5 unchanged" in rescan.output


def test_a_stopped_scan_of_a_large_catalog_marks_its_flags_stale(folder, monkeypatch):
    first = scan(folder, workers=1)
    assert first.flag_counts["exact_duplicate"] == 2
    os.remove(folder / "copies" / "a copy.png")
    later = time.time_ns() + 10**9
    for name in "bcd":
        os.utime(folder / f"{name}.png", ns=(later, later))
    monkeypatch.setattr(pipeline, "DERIVE_ON_STOP_LIMIT", 0)  # every catalog is "large"
    monkeypatch.setattr(pipeline, "_iter_results", scan_helpers.interrupt_after(1))
    derived = []
    monkeypatch.setattr(pipeline, "_derive_flags", lambda *a: derived.append(a))
    summary = scan(folder, workers=1)
    assert not derived  # no derivation on the way out
    assert summary.interrupted and summary.flags_stale and summary.pending == 2
    # a.png's group lost its other member: no longer a duplicate
    assert summary.flag_counts["exact_duplicate"] == 0
    catalog_path = default_catalog_path(folder)
    page = render_html(catalog_path)
    assert "The flags are out of date" in page and "The last scan did not finish" in page
    exported = runner.invoke(app, ["report", str(folder), "--json"])
    assert "flags are out of date" in exported.stderr
    assert [r["path"] for r in json.loads(exported.stdout)] == [
        "a.png", "b.png", "c.png", "d.png"
    ]
    monkeypatch.undo()
    again = scan(folder, workers=1)
    assert not again.flags_stale and not again.interrupted
    assert "out of date" not in render_html(catalog_path)
    with Catalog(catalog_path) as catalog:
        assert not catalog.flags_stale()
        stored = _stored_flags(catalog)
        assert stored == _reference_flags(list(catalog.records()), again.thresholds)


def test_a_stop_while_deriving_the_flags_is_prompt_too(folder, monkeypatch):
    scan(folder, workers=1)

    def stop(self, step=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.FlagDeriver, "duplicate_rows", stop)
    summary = scan(folder, workers=1, thresholds={"blurry": 5})
    assert summary.interrupted and summary.flags_stale and summary.pending == 0
    assert summary.flag_counts["exact_duplicate"] == 2  # the flags stored before
    assert summary.flag_counts["blurry"] == 0
    monkeypatch.undo()
    summary = scan(folder, workers=1)
    assert not summary.flags_stale and summary.flag_counts["blurry"] == 5


def test_a_stopped_scan_of_a_small_catalog_still_derives_its_flags(folder, monkeypatch):
    scan(folder, workers=1)
    os.remove(folder / "copies" / "a copy.png")
    later = time.time_ns() + 10**9
    os.utime(folder / "b.png", ns=(later, later))
    os.utime(folder / "c.png", ns=(later, later))
    monkeypatch.setattr(pipeline, "_iter_results", scan_helpers.interrupt_after(1))
    summary = scan(folder, workers=1)
    assert summary.interrupted and not summary.flags_stale
    with Catalog(default_catalog_path(folder)) as catalog:
        assert not catalog.flags_stale()


def _ctrl_c() -> None:
    """Ctrl-C, as the terminal sends it: SIGINT to this process (handled right away)."""
    import signal

    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_pressed_again_while_the_scan_stops_cannot_cut_the_stop_short(
    folder, monkeypatch
):
    """People press Ctrl-C two or three times: the presses after the first must not
    interrupt the stop itself (the pool's, the last batch's commit, the settings)."""
    import signal

    real_write = pipeline._write
    writes = []

    def write(catalog, batch):  # Ctrl-C again, twice, as the last batch commits
        if writes:
            _ctrl_c()
            _ctrl_c()
        writes.append(len(batch))
        real_write(catalog, batch)

    monkeypatch.setattr(pipeline, "BATCH_SIZE", 2)
    monkeypatch.setattr(pipeline, "_write", write)
    before = signal.getsignal(signal.SIGINT)
    stopped = []

    def progress(done, total, record):
        if done == 3 and not stopped:  # the first Ctrl-C, during the analysis
            stopped.append(done)
            _ctrl_c()

    try:
        summary = scan(folder, workers=1, progress=progress)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C pressed again cut the scan's stop short")
    assert summary.interrupted and summary.pending == 2
    assert writes == [2, 1]  # the last batch was committed all the same
    assert summary.flags_stale  # stopped again: no deriving on the way out
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C raises again after the scan
    with Catalog(default_catalog_path(folder), readonly=True) as catalog:
        assert catalog.integrity_check() == "ok" and catalog.count_all() == 3
    with pytest.raises(KeyboardInterrupt):
        _ctrl_c()
        time.sleep(1)


def test_a_scan_stopped_by_its_only_ctrl_c_still_derives_small_flags(folder):
    stopped = []

    def progress(done, total, record):
        if done == 1 and not stopped:
            stopped.append(done)
            _ctrl_c()

    summary = scan(folder, workers=1, progress=progress)
    assert summary.interrupted and not summary.flags_stale and summary.pending == 4
