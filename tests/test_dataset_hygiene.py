"""Dataset hygiene in the scan: each record's image layout (mode, channels, bit depth,
transparency) in the records, CSV and Parquet; the ``odd_size`` flag (a size far from
the folder's usual); ``low_information`` for images too small to hold more.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from boda.catalog import ImageRecord
from boda.cli import app
from boda.errors import InvalidParameterError
from boda.io import open_image
from boda.report import catalog_records, is_boda_csv, write_csv
from boda.report._export import CSV_COLUMNS
from boda.scan import derive_flags, flag_descriptions, resolve_thresholds, scan
from boda.scan._analyze import image_layout
from boda.scan._flags import ODD_SIZE_MIN_IMAGES, FlagDeriver, describe_rules

runner = CliRunner()


def _noise(rng, shape, dtype=np.uint8):
    top = np.iinfo(dtype).max
    return rng.integers(0, top, shape, dtype=dtype, endpoint=True)


def _layout_files(folder: Path, rng) -> dict[str, tuple[str, int, int, bool]]:
    """Files of every common layout, with the (mode, channels, bit_depth, has_alpha)
    each must get."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = _noise(rng, (24, 32, 3))
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(rgb).save(folder / "rgb.jpg", quality=90)
    Image.fromarray(rgb[:, :, 0]).save(folder / "l.png")
    Image.fromarray(rgb[:, :, 0]).save(folder / "l_trns.png", transparency=7)
    Image.fromarray(_noise(rng, (24, 32, 2)), "LA").save(folder / "la.png")
    Image.fromarray(_noise(rng, (24, 32, 4)), "RGBA").save(folder / "rgba.png")
    palette = Image.fromarray(rgb).quantize(16)
    palette.save(folder / "p.png", bits=4)
    palette.save(folder / "p_trns.png", transparency=0)
    Image.fromarray(rgb[:, :, 0]).convert("1").save(folder / "bilevel.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    cv2.imwrite(str(folder / "gray16.png"), _noise(rng, (24, 32), np.uint16))
    cv2.imwrite(str(folder / "rgb16.png"), _noise(rng, (24, 32, 3), np.uint16))
    cv2.imwrite(str(folder / "rgba16.png"), _noise(rng, (24, 32, 4), np.uint16))
    cv2.imwrite(str(folder / "rgb16.tif"), _noise(rng, (24, 32, 3), np.uint16))
    Image.fromarray(rng.integers(0, 2**31, (24, 32), dtype=np.int32), "I").save(
        folder / "int32.tif"
    )
    Image.fromarray(rng.random((24, 32), dtype=np.float32), "F").save(folder / "float.tif")
    return {
        "rgb.png": ("RGB", 3, 8, False),
        "rgb.jpg": ("RGB", 3, 8, False),
        "l.png": ("L", 1, 8, False),
        "l_trns.png": ("L", 2, 8, True),  # a transparent gray level: gray + alpha
        "la.png": ("LA", 2, 8, True),
        "rgba.png": ("RGBA", 4, 8, True),
        "p.png": ("P", 3, 8, False),  # 4-bit indices into 8-bit RGB colours
        "p_trns.png": ("P", 4, 8, True),
        "bilevel.png": ("1", 1, 1, False),
        "cmyk.jpg": ("CMYK", 4, 8, False),
        "gray16.png": ("I;16", 1, 16, False),
        "rgb16.png": ("RGB", 3, 16, False),
        "rgba16.png": ("RGBA", 4, 16, True),
        "rgb16.tif": ("RGB", 3, 16, False),
        "int32.tif": ("I", 1, 32, False),
        "float.tif": ("F", 1, 32, False),
    }


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("layouts") / "mixed"
    expected = _layout_files(folder, np.random.default_rng(3))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    scan(folder, workers=1)
    return folder, expected


# -- the layout ------------------------------------------------------------------------------


def test_every_layout_is_recorded(layouts):
    folder, expected = layouts
    records = {r["path"]: r for r in catalog_records(folder)}
    for name, (mode, channels, depth, alpha) in expected.items():
        extra = records[name]["extra"]
        got = (extra["mode"], extra["channels"], extra["bit_depth"], extra["has_alpha"])
        assert got == (mode, channels, depth, alpha), name
    assert records["broken.png"]["status"] == "error"
    assert records["broken.png"]["extra"] == {}


def test_channels_and_depth_agree_with_opencv(layouts):
    """OpenCV's unchanged read of a PNG is an independent count of what the file holds
    (palettes and transparent colours expanded, as libpng gives them)."""
    folder, expected = layouts
    for name in ("rgb.png", "l.png", "la.png", "rgba.png", "p.png", "p_trns.png",
                 "gray16.png", "rgb16.png", "rgba16.png"):
        pixels = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        if name == "la.png":  # OpenCV has no gray + alpha: it gives BGRA
            channels = 2
        depth = pixels.dtype.itemsize * 8
        assert expected[name][1:3] == (channels, depth), name


def test_file_bit_depth_is_the_files_not_the_pixels(tmp_path, rng):
    """A 32-bit integer TIFF is read as 16-bit pixels (``bit_depth``), but holds 32
    bits; the RAW reader's own mode name is kept as it is."""
    path = tmp_path / "i32.tif"
    Image.fromarray(rng.integers(0, 2**31, (8, 8), dtype=np.int32), "I").save(path)
    decoded = open_image(path)
    assert (decoded.bit_depth, decoded.file_bit_depth) == (16, 32)
    assert image_layout(decoded)["bit_depth"] == 32
    from boda.io import DecodedImage

    raw_like = DecodedImage(np.zeros((4, 4, 3), np.float32), (4, 4), "RAW", "RGB;16", None,
                            False, bit_depth=16)
    assert image_layout(raw_like) == {
        "mode": "RGB;16", "channels": 3, "bit_depth": 16, "has_alpha": False
    }


def test_csv_has_the_layout_columns_after_format(layouts, tmp_path):
    folder, expected = layouts
    assert CSV_COLUMNS[CSV_COLUMNS.index("format") + 1:][:4] == (
        "mode", "channels", "bit_depth", "has_alpha"
    )
    out = write_csv(folder, tmp_path / "t.csv")
    rows = {r["path"]: r for r in csv.DictReader(out.open(newline=""))}
    for name, (mode, channels, depth, alpha) in expected.items():
        row = rows[name]
        assert (row["mode"], row["channels"], row["bit_depth"], row["has_alpha"]) == (
            mode, str(channels), str(depth), "true" if alpha else "false"
        )
    broken = rows["broken.png"]
    assert (broken["mode"], broken["channels"], broken["bit_depth"], broken["has_alpha"]) == (
        "", "", "", ""
    )


def test_parquet_has_typed_layout_columns(layouts, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from boda.report import write_parquet

    folder, expected = layouts
    table = pq.read_table(write_parquet(folder, tmp_path / "t.parquet"))
    names = table.schema.names
    assert names[names.index("format") + 1:][:4] == ["mode", "channels", "bit_depth", "has_alpha"]
    schema = table.schema
    assert pa.types.is_dictionary(schema.field("mode").type)
    assert schema.field("channels").type == pa.int8()
    assert schema.field("bit_depth").type == pa.int8()
    assert schema.field("has_alpha").type == pa.bool_()
    rows = {r["path"]: r for r in table.to_pylist()}
    for name, layout in expected.items():
        row = rows[name]
        assert (row["mode"], row["channels"], row["bit_depth"], row["has_alpha"]) == layout
    assert rows["broken.png"]["mode"] is None and rows["broken.png"]["has_alpha"] is None


def test_a_catalog_without_layout_still_exports(layouts, tmp_path):
    """A catalog written before the layout was kept (same analysis version) exports
    empty cells and nulls, and is not analysed again."""
    folder, _ = layouts
    old = tmp_path / "old"
    _layout_files(old, np.random.default_rng(3))
    scan(old, workers=1)
    db = old / ".boda" / "catalog.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE images SET extra = json_remove(extra, '$.mode', '$.channels', "
            "'$.bit_depth', '$.has_alpha')"
        )
    rows = list(csv.DictReader(write_csv(old, tmp_path / "old.csv").open(newline="")))
    assert rows and all(r["mode"] == r["channels"] == r["has_alpha"] == "" for r in rows)
    summary = scan(old, workers=1)
    assert summary.analysed == 0  # nothing decoded again: the cells stay empty
    assert all("mode" not in r["extra"] for r in catalog_records(old))
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from boda.report import write_parquet

    table = pq.read_table(write_parquet(old, tmp_path / "old.parquet"))
    assert table.column("channels").null_count == table.num_rows


def test_an_export_with_the_earlier_columns_is_boda_s(layouts, tmp_path):
    folder, _ = layouts
    earlier = [c for c in CSV_COLUMNS
               if c not in ("mode", "channels", "bit_depth", "has_alpha", "taken", "camera")]
    table = tmp_path / "earlier.csv"
    table.write_text(",".join([*earlier, "blurry"]) + "\nx.png,ok\n")
    assert is_boda_csv(table)
    assert not is_boda_csv(_write(tmp_path / "other.csv", "path,status,error\n"))
    result = runner.invoke(app, ["report", str(folder), "--csv", str(table), "-q"])
    assert result.exit_code == 0, result.output
    assert table.read_text().startswith(",".join(CSV_COLUMNS) + ",")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- odd_size ----------------------------------------------------------------------------------


def _records(sizes: list[tuple[int, int]]) -> list[ImageRecord]:
    return [
        ImageRecord(relpath=f"{i:03d}.png".encode(), size=1, mtime_ns=0, status="ok", id=i + 1,
                    width=w, height=h, scores={"low_information": 5.0})
        for i, (w, h) in enumerate(sizes)
    ]


def _odd(sizes, **thresholds) -> dict[int, float]:
    rows = derive_flags(_records(sizes), resolve_thresholds(thresholds))
    return {image_id: score for image_id, name, score, _ in rows if name == "odd_size"}


def test_odd_size_flags_a_size_far_from_the_folders():
    sizes = [(32, 32)] * 20 + [(4000, 3000), (2, 2), (8, 8), (128, 128), (129, 128)]
    odd = _odd(sizes)
    # 4000x3000 has 11 718.75 times the pixels of a 32x32; 2x2 has 256 times fewer;
    # 8x8 and 128x128 are exactly 16 times off (not above); 129x128 just above.
    assert odd == {21: 4000 * 3000 / 1024, 22: 256.0, 25: 129 * 128 / 1024}
    assert _odd(sizes, odd_size=300) == {21: 4000 * 3000 / 1024}
    assert _odd(sizes, odd_size=1) == {21: pytest.approx(11718.75), 22: 256.0, 23: 16.0,
                                       24: 16.0, 25: pytest.approx(16.125)}


def test_odd_size_needs_a_typical_size():
    assert _odd([(32, 32)] * 50) == {}  # equally sized: nothing odd
    assert _odd([(32, 32)] * 50, odd_size=1) == {}
    few = [(32, 32)] * (ODD_SIZE_MIN_IMAGES - 2) + [(4000, 3000)]
    assert _odd(few) == {}
    assert _odd([*few, (32, 32)]) == {ODD_SIZE_MIN_IMAGES - 1: pytest.approx(11718.75)}


def test_odd_size_leaves_a_quarter_of_the_folder_alone():
    """Two sizes in one folder (a quarter of the files or more each) are two usual
    sizes, not outliers; fewer than a quarter are."""
    assert _odd([(32, 32)] * 15 + [(1024, 1024)] * 5) == {}
    odd = _odd([(32, 32)] * 16 + [(1024, 1024)] * 4)
    assert sorted(odd) == [17, 18, 19, 20] and set(odd.values()) == {1024.0}


def test_odd_size_against_the_median_rule_on_random_sizes(rng):
    """On one usual size with scattered outliers the rule is |log2(pixels / median)| > 4
    (the median and both quartiles are the usual size)."""
    usual = 48 * 48
    sizes = [(48, 48)] * 60 + [(int(w), int(h)) for w, h in rng.integers(1, 3000, (19, 2))]
    odd = _odd(sizes)
    expected = {i + 1 for i, (w, h) in enumerate(sizes) if abs(math.log2(w * h / usual)) > 4}
    assert set(odd) == expected


def test_odd_size_threshold_checks_and_words():
    with pytest.raises(InvalidParameterError, match="odd_size"):
        resolve_thresholds({"odd_size": 0.5})
    assert "odd_size" in flag_descriptions()
    assert describe_rules(resolve_thresholds({"odd_size": 8})).get("odd_size").startswith(
        "size_ratio > 8"
    )


def test_unknown_sizes_are_never_odd():
    deriver = FlagDeriver(resolve_thresholds(None))
    for i in range(10):
        deriver.add(i, {}, None, None, size=(32, 32))
    deriver.add(10, {}, None, None)  # no size given: as before odd_size existed
    deriver.add(11, {}, None, None, size=(None, None))
    deriver.add(12, {}, None, None, size=(4000, 3000))
    assert [row[0] for row in deriver.size_rows()] == [12]


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """Twelve 32 px crops, a 4000x3000 photo and a 2x2 image with four levels."""
    folder = tmp_path_factory.mktemp("odd") / "crops"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(12):
        Image.fromarray(_noise(rng, (32, 32, 3))).save(folder / f"crop{i:02d}.png")
    big = cv2.resize(_noise(rng, (30, 40, 3)), (4000, 3000), interpolation=cv2.INTER_LINEAR)
    Image.fromarray(big).save(folder / "photo.jpg", quality=80)
    Image.fromarray(np.array([[0, 80], [160, 240]], np.uint8)).save(folder / "tiny.png")
    scan(folder, workers=1)
    return folder


def test_a_scan_flags_odd_sizes_and_the_tiny_image(crops):
    records = {r["path"]: r for r in catalog_records(crops)}
    odd = {p for p, r in records.items() if "odd_size" in r["flags"]}
    assert odd == {"photo.jpg", "tiny.png"}
    assert records["tiny.png"]["flag_scores"]["odd_size"] == 256.0
    # four distinct levels: exactly 2 bits, all a 4-pixel image can hold
    assert records["tiny.png"]["scores"]["low_information"] == pytest.approx(2.0)
    assert "low_information" in records["tiny.png"]["flags"]
    assert not any("low_information" in records[f"crop{i:02d}.png"]["flags"] for i in range(12))


def test_report_only_odd_size_and_the_html_section(crops, tmp_path):
    result = runner.invoke(app, ["report", str(crops), "--only", "odd_size", "--relative"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["photo.jpg", "tiny.png"]
    page = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(crops), "-o", str(page), "-q"])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert 'id="flag-odd_size"' in html and "size_ratio 256" in html


def test_rescan_with_odd_size_threshold(crops, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(crops, folder)
    summary = scan(folder, workers=1, thresholds={"odd_size": 1e6})
    assert summary.analysed == 0 and summary.flag_counts["odd_size"] == 0
    summary = scan(folder, workers=1, thresholds={"odd_size": 100, "low_information": 1.5})
    assert summary.flag_counts["odd_size"] == 2  # 11 719 and 256 times off
    tiny = {r["path"]: r for r in catalog_records(folder)}["tiny.png"]
    assert "low_information" not in tiny["flags"]  # 4 pixels > 2**1.5


def test_serve_lists_odd_size(crops):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from boda.web import create_app

    client = TestClient(create_app(crops), base_url="http://127.0.0.1")
    counts = {s["name"]: s["count"] for s in client.get("/api/summary").json()["selections"]}
    assert counts["odd_size"] == 2
    page = client.get("/api/images", params={"only": "odd_size"}).json()
    assert sorted(r["path"] for r in page["images"]) == ["photo.jpg", "tiny.png"]
    # sorted by the flag's own score (the size ratio lives with the flag, not the scores):
    # the farthest first, then the unflagged files (in reverse path order, as "desc" says)
    page = client.get("/api/images", params={"sort": "odd_size"}).json()
    assert [r["path"] for r in page["images"]][:3] == ["photo.jpg", "tiny.png", "crop11.png"]
    page = client.get("/api/images", params={"sort": "odd_size", "order": "asc"}).json()
    assert [r["path"] for r in page["images"]][:2] == ["tiny.png", "photo.jpg"]


def test_low_information_for_too_few_pixels_only():
    """An image of at most 2**t pixels cannot hold more than t bits; a bigger one with
    the same entropy is judged by its entropy."""
    def flagged(width, height, entropy, threshold=2.0):
        rows = derive_flags(
            [ImageRecord(relpath=b"a.png", size=1, mtime_ns=0, status="ok", id=1, width=width,
                         height=height, scores={"low_information": entropy})],
            resolve_thresholds({"low_information": threshold}),
        )
        return [name for _, name, _, _ in rows] == ["low_information"]

    assert flagged(2, 2, 2.0) and flagged(4, 1, 2.0) and flagged(1, 1, 0.0)
    assert not flagged(3, 2, 2.0) and not flagged(5, 1, 2.32)
    assert flagged(3, 3, 3.17, threshold=4.0) and not flagged(5, 5, 4.5, threshold=4.0)
    assert not flagged(2, 2, 2.0, threshold=1.0)
    assert "at most 4 pixels" in describe_rules(resolve_thresholds(None))["low_information"]


def test_json_records_carry_the_layout(layouts):
    folder, expected = layouts
    result = runner.invoke(app, ["report", str(folder), "--json", "-q"])
    assert result.exit_code == 0
    records = {r["path"]: r for r in json.loads(result.stdout)}
    assert {n: records[n]["extra"]["channels"] for n in expected} == {
        n: v[1] for n, v in expected.items()
    }


def test_open_image_keeps_its_other_fields(tmp_path, rng):
    """The reader change adds a field: what other callers read is as before."""
    path = tmp_path / "x.png"
    Image.fromarray(_noise(rng, (8, 8, 4)), "RGBA").save(path)
    decoded = open_image(path)
    assert (decoded.mode, decoded.has_alpha, decoded.bit_depth, decoded.file_bit_depth) == (
        "RGBA", True, 8, 8
    )


def test_flag_inputs_carry_the_sizes(crops):
    """The light pass that derives flags reads the stored widths and heights (a re-flag
    with ``-t odd_size=...`` decodes nothing)."""
    from boda.catalog import Catalog

    with Catalog(crops, readonly=True) as catalog:
        sizes = {row.relpath: (row.width, row.height) for row in catalog.flag_inputs()}
    assert sizes[b"photo.jpg"] == (4000, 3000) and sizes[b"tiny.png"] == (2, 2)
