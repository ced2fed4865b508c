"""The capture time and camera of EXIF data: ``extra["taken"]``/``extra["camera"]`` of a
scan, the CSV and Parquet columns, and ``boda serve``'s sort by capture time.

The photos are JPEGs written by Pillow with the EXIF tags a camera writes
(EXIF 2.32: DateTimeOriginal 0x9003, SubSecTimeOriginal 0x9291, OffsetTimeOriginal
0x9011 in the Exif IFD; DateTime 0x0132, Make 0x010F, Model 0x0110 in IFD0).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from boda.cli import app
from boda.io import open_image
from boda.report import catalog_records, write_csv
from boda.scan import scan
from boda.scan._analyze import capture_data

runner = CliRunner()

# name -> (IFD0 tags, Exif IFD tags, expected taken, expected camera).  Path order
# (a..h) is not capture order; g's offset would put it last in UTC, but by the
# cameras' clocks (what serve sorts by) it is 14:03:06.5.
PHOTOS = {
    "a.jpg": ({0x010F: "Canon", 0x0110: "Canon EOS R5"},
              {0x9003: "2026:11:18 14:03:07", 0x9291: "25", 0x9011: "+09:00"},
              "2026-11-18T14:03:07.25+09:00", "Canon EOS R5"),
    "b.jpg": ({0x010F: "NIKON CORPORATION", 0x0110: "NIKON D850 "},
              {0x9003: "2026:11:18 14:03:05"}, "2026-11-18T14:03:05", "NIKON D850"),
    "c.jpg": ({0x010F: "Apple", 0x0110: "iPhone 15 Pro", 0x0132: "2026:11:18 14:03:06"}, {},
              "2026-11-18T14:03:06", "Apple iPhone 15 Pro"),
    # blank and impossible dates, a name with a control character: all ignored
    "d.jpg": ({0x010F: "bad\x07make", 0x0132: "2026:13:40 25:00:00"},
              {0x9003: "0000:00:00 00:00:00"}, None, None),
    # a garbage sub-second and offset are dropped, the date kept
    "e.jpg": ({0x0110: "X-T5"}, {0x9003: "2026:11:18 14:03:07", 0x9291: "x1", 0x9011: "+99:00"},
              "2026-11-18T14:03:07", "X-T5"),
    "f.jpg": (None, None, None, None),  # no EXIF at all
    "g.jpg": ({0x010F: "SONY", 0x0110: "ILCE-7M4", 0x0132: "2020:01:01 00:00:00"},
              {0x9003: "2026:11:18 14:03:06", 0x9291: "5", 0x9011: "-05:00"},
              "2026-11-18T14:03:06.5-05:00", "SONY ILCE-7M4"),
}
TIME_ORDER = ["b.jpg", "c.jpg", "g.jpg", "e.jpg", "a.jpg"]  # then d and f (none)


def _exif(ifd0: dict | None, exif_ifd: dict | None) -> Image.Exif:
    tags = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        tags[tag] = value
    if exif_ifd:
        tags[0x8769] = exif_ifd
    return tags


def _write(path: Path, seed: int, tags: Image.Exif | None) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    extra = {} if tags is None else {"exif": tags.tobytes()}
    Image.fromarray(pixels).save(path, quality=90, **extra)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("capture") / "photos"
    folder.mkdir()
    for seed, (name, (ifd0, exif_ifd, _, _)) in enumerate(PHOTOS.items()):
        _write(folder / name, seed, None if ifd0 is None else _exif(ifd0, exif_ifd))
    scan(folder, workers=1)
    return folder


def test_scan_keeps_taken_and_camera_in_extra(photos):
    records = {r["path"]: r for r in catalog_records(photos)}
    assert set(records) == set(PHOTOS)
    for name, (_, _, taken, camera) in PHOTOS.items():
        extra = records[name]["extra"]
        assert records[name]["status"] == "ok"
        assert extra.get("taken") == taken, name
        assert extra.get("camera") == camera, name
        assert ("taken" in extra) == (taken is not None)  # absent, not null


def test_json_report_has_them(photos):
    result = runner.invoke(app, ["report", str(photos), "--json"])
    assert result.exit_code == 0, result.output
    records = {r["path"]: r for r in json.loads(result.output)}
    assert records["a.jpg"]["extra"]["taken"] == "2026-11-18T14:03:07.25+09:00"
    assert "taken" not in records["f.jpg"]["extra"]


def test_csv_columns_follow_has_alpha(photos, tmp_path):
    out = write_csv(photos, tmp_path / "t.csv")
    with open(out, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        rows = {row["path"]: row for row in reader}
    assert header[header.index("has_alpha") + 1:][:2] == ["taken", "camera"]
    for name, (_, _, taken, camera) in PHOTOS.items():
        assert (rows[name]["taken"], rows[name]["camera"]) == (taken or "", camera or "")


def test_parquet_columns(photos, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from boda.report import write_parquet

    table = pq.read_table(write_parquet(photos, tmp_path / "t.parquet"))
    assert table.schema.field("taken").type == pa.string()
    assert pa.types.is_dictionary(table.schema.field("camera").type)
    names = table.schema.names
    assert names[names.index("has_alpha") + 1:][:2] == ["taken", "camera"]
    rows = {row["path"]: row for row in table.to_pylist()}
    for name, (_, _, taken, camera) in PHOTOS.items():
        assert (rows[name]["taken"], rows[name]["camera"]) == (taken, camera)


def test_serve_sorts_by_capture_time_clock_order_files_without_last(photos):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from boda.web import create_app

    client = TestClient(create_app(photos), base_url="http://127.0.0.1")
    data = client.get("/api/images", params={"sort": "taken", "limit": 100}).json()
    assert data["order"] == "asc"
    assert [r["path"] for r in data["images"]] == [*TIME_ORDER, "d.jpg", "f.jpg"]
    assert data["images"][0]["extra"]["camera"] == "NIKON D850"
    down = client.get("/api/images", params={"sort": "taken", "order": "desc"}).json()
    paths = [r["path"] for r in down["images"]]
    assert paths[:5] == TIME_ORDER[::-1] and set(paths[5:]) == {"d.jpg", "f.jpg"}
    # a page of a selection keeps the order
    page = client.get("/api/images", params={"sort": "taken", "q": "e.", "limit": 5}).json()
    assert [r["path"] for r in page["images"]] == ["e.jpg"]
    summary = client.get("/api/summary").json()
    assert "taken" in summary["sorts"]


def test_catalog_time_sort_ignores_offsets_and_non_text(tmp_path):
    from boda.catalog import Catalog, ImageRecord

    values = {b"1.jpg": "2026-01-01T10:00:00+09:00", b"2.jpg": "2026-01-01T09:00:00.5",
              b"3.jpg": "2026-01-01T09:00:00-11:30", b"4.jpg": 5, b"5.jpg": None,
              b"6.jpg": "2026-01-01T09:00:00.25"}
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.write_batch(
            ImageRecord(relpath=relpath, size=1, mtime_ns=1, status="ok",
                        extra={} if value is None else {"taken": value})
            for relpath, value in values.items()
        )
    with Catalog(tmp_path / "c.db", readonly=True) as catalog:
        ids, _ = catalog.select_ids(sort="time:taken")
        by_id = catalog.relpaths_of(ids)
        assert [by_id[i] for i in ids] == [b"3.jpg", b"6.jpg", b"2.jpg", b"1.jpg",
                                          b"4.jpg", b"5.jpg"]
        order, with_value = catalog.sort_order("time:taken")
        assert order == ids and with_value == 4


def test_wrong_types_and_raw_style_tags(tmp_path):
    """Values that are not text are ignored; a RAW file's tags hold the Exif IFD as a dict
    (``boda._io_raw._container_exif``)."""
    path = tmp_path / "x.jpg"
    _write(path, 0, None)
    plain = open_image(path)
    assert plain.exif_tags is None and capture_data(plain) == {}
    garbage = Image.Exif()
    garbage[0x010F], garbage[0x0110] = 5, (1, 2)
    garbage[0x0132] = b"2026:11:18 14:03:07"  # bytes: read as ASCII
    garbage[0x8769] = {0x9003: 20261118, 0x9011: 9}
    got = capture_data(dataclasses.replace(plain, exif_tags=garbage))
    assert got == {"taken": "2026-11-18T14:03:07"}
    raw_like = Image.Exif()
    raw_like[0x010F], raw_like[0x0110] = "Canon", "Canon EOS 5D Mark IV"
    raw_like[0x8769] = {0x9003: "2019:06:01 08:00:00", 0x9291: "04"}
    got = capture_data(dataclasses.replace(plain, exif_tags=raw_like))
    assert got == {"taken": "2019-06-01T08:00:00.04", "camera": "Canon EOS 5D Mark IV"}
    for year in ("1799", "2201"):
        tags = _exif({0x0132: f"{year}:01:01 00:00:00"}, None)
        assert capture_data(dataclasses.replace(plain, exif_tags=tags)) == {}


def test_garbage_exif_block_is_no_capture_time(tmp_path):
    """A PNG whose eXIf chunk is not a TIFF structure reads (``exif_warning``), with no
    capture time."""
    path = tmp_path / "g.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(path, exif=b"not a tiff block")
    decoded = open_image(path)
    assert decoded.exif_warning is not None
    assert capture_data(decoded) == {}


def test_tiff_heic_and_raw_files_have_them_too(tmp_path):
    """The tags every reader already exposes: TIFF and HEIC (pillow-heif) carry the EXIF
    block; a TIFF-based RAW file (DNG) its IFD0 and Exif IFD."""
    tags = _exif(*PHOTOS["a.jpg"][:2]).tobytes()
    pixels = np.zeros((16, 24, 3), np.uint8)
    want = {"taken": "2026-11-18T14:03:07.25+09:00", "camera": "Canon EOS R5"}
    Image.fromarray(pixels).save(tmp_path / "x.tif", exif=tags)
    assert capture_data(open_image(tmp_path / "x.tif")) == want
    from boda.io import heif_available

    if heif_available():
        Image.fromarray(pixels).save(tmp_path / "x.heic", exif=tags)
        assert capture_data(open_image(tmp_path / "x.heic")) == want
    pytest.importorskip("rawpy")
    from test_io_raw import make_dng  # the DNG writer of the RAW tests

    upright = np.random.default_rng(0).random((64, 96, 3))
    for preview in (None, "jpeg"):  # the sensor data, or the embedded preview
        dng = make_dng(tmp_path / f"{preview}.dng", upright, 6, preview=preview)
        assert capture_data(open_image(dng, max_side=640)) == {
            "taken": "2024-05-06T07:08:09", "camera": "boda test camera"
        }


def test_tables_of_the_two_earlier_headers_are_boda_s(tmp_path):
    from boda.report import is_boda_csv
    from boda.report._export import CSV_COLUMNS

    capture, layout = ("taken", "camera"), ("mode", "channels", "bit_depth", "has_alpha")
    for left_out in (capture, capture + layout):
        table = tmp_path / "t.csv"
        table.write_text(",".join(c for c in CSV_COLUMNS if c not in left_out) + ",blurry\n")
        assert is_boda_csv(table)
    table.write_text(",".join(CSV_COLUMNS) + ",blurry\n")
    assert is_boda_csv(table)
