"""A photographer's culling journey across commands: scan, mark, rescan, report, edit.

Each test follows one path a user takes through several steps (a mark given, the
folder changed, scanned again; an edit of a keeper written as a TIFF) and checks
what only shows across them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import scan_helpers
from PIL import Image
from typer.testing import CliRunner

import boda.scan._pipeline as pipeline
from boda.catalog import Catalog, marks_path
from boda.cli import app
from boda.io import read_image, write_image
from boda.scan import scan

runner = CliRunner()

XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3"/></rdf:RDF></x:xmpmeta>'
    b'<?xpacket end="w"?>'
)


def _camera_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "FUJIFILM", "X-T4", orientation
    exif.get_ifd(0x8769)[0x9003] = "2023:07:01 10:05:00"  # DateTimeOriginal
    return exif.tobytes()


def _selected(root, name: str) -> list[str]:
    result = runner.invoke(app, ["report", str(root), "--only", name, "--relative"])
    assert result.exit_code == 0, result.output
    return result.stdout.split("\n")[:-1]


@pytest.fixture
def card(tmp_path, small_photos):
    """A card copied with two failures: an empty file and a cut-off JPEG, scanned."""
    root = tmp_path / "card"
    root.mkdir()
    write_image(root / "DSCF0001.png", small_photos[0])
    (root / "DSCF0002.jpg").write_bytes(b"")
    write_image(root / "DSCF0003.jpg", small_photos[1])
    data = (root / "DSCF0003.jpg").read_bytes()
    (root / "DSCF0003.jpg").write_bytes(data[: len(data) // 3])
    scan(root, workers=1)
    return root


def test_a_reject_of_an_unreadable_file_stays_with_it_not_a_good_copy_put_there(card, small_photos):
    """Reject the failed copies, copy the photos from the card again: the good photos
    now at those paths are undecided (an `--only rejected --paths | xargs rm` would
    delete them), while a failed file left as it was stays rejected."""
    for name in ("DSCF0002.jpg", "DSCF0003.jpg"):
        result = runner.invoke(app, ["mark", str(card), str(card / name), "--reject"])
        assert result.exit_code == 0, result.output
    assert _selected(card, "rejected") == ["DSCF0002.jpg", "DSCF0003.jpg"]
    write_image(card / "DSCF0002.jpg", small_photos[2])  # copied again: a good photo
    scan(card, workers=1)
    assert _selected(card, "failed") == ["DSCF0003.jpg"]
    assert _selected(card, "rejected") == ["DSCF0003.jpg"]  # still that broken file
    assert "DSCF0002.jpg" in _selected(card, "undecided")
    with Catalog(card, readonly=True) as catalog:  # what boda serve shows
        ids = [row[0] for row in catalog.mark_rows(marks_path(card))]
        assert list(catalog.relpaths_of(ids).values()) == [b"DSCF0003.jpg"]


def test_a_mark_of_a_file_unreadable_then_read_at_a_higher_limit_is_kept(tmp_path, kodak_paths):
    """The very file, refused over --max-pixels and read by a rescan with a higher
    limit, keeps the mark given to it while it could not be read."""
    root = tmp_path / "shoot"
    root.mkdir()
    write_image(root / "big.png", read_image(kodak_paths[0], max_side=64))
    scan(root, workers=1, max_pixels=100)
    assert _selected(root, "failed") == ["big.png"]
    assert runner.invoke(app, ["mark", str(root), "big.png", "--pick"]).exit_code == 0
    scan(root, workers=1)
    assert _selected(root, "failed") == []
    assert _selected(root, "picked") == ["big.png"]


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_a_keeper_edited_into_a_tiff_keeps_its_exif_beside_its_xmp(tmp_path, bit_depth):
    """A camera JPEG with EXIF and XMP (Lightroom's rating), inpainted into a .tif:
    the TIFF keeps the camera, the capture time and the XMP (Pillow's TIFF writer
    dropped the EXIF whenever XMP was written too)."""
    rng = np.random.default_rng(0)
    photo = tmp_path / "keeper.jpg"
    pixels = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(photo, exif=_camera_exif(), xmp=XMP, quality=95)
    mask = np.zeros((48, 64), np.uint8)
    mask[20:28, 30:40] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "filled.tif"
    result = runner.invoke(
        app, ["inpaint", str(photo), "-m", str(tmp_path / "mask.png"), "-o", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    if bit_depth == 16:  # the same metadata through the 16-bit gray writer
        write_image(out, read_image(out, gray=True), bit_depth=16, exif=_camera_exif(), xmp=XMP)
    with Image.open(out) as written:
        exif = written.getexif()
        assert (exif.get(0x010F), exif.get(0x0110)) == ("FUJIFILM", "X-T4")
        assert exif.get_ifd(0x8769).get(0x9003) == "2023:07:01 10:05:00"
        assert b'xmp:Rating="3"' in written.info.get("xmp", b"")
    assert os.path.getsize(photo) > 0 and photo.read_bytes()[:2] == b"\xff\xd8"  # untouched


def test_a_folder_scanned_into_another_catalog_says_to_give_it(tmp_path, two_photos):
    """`boda scan DIR --catalog FILE`: the report lies beside the catalog, as --help says
    (it said DIR/.boda/report.html, a folder such a scan never makes); then `boda report
    DIR` says how to reach that catalog, not only to scan again (a second catalog
    without the marks)."""
    catalog = tmp_path / "catalogs" / "trip.db"
    result = runner.invoke(
        app, ["scan", str(two_photos), "--catalog", str(catalog), "-q", "-w", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (catalog.parent / "report.html").is_file() and not (two_photos / ".boda").exists()
    helped = " ".join(runner.invoke(app, ["scan", "--help"]).output.split())
    assert "(default: report.html beside the catalog" in helped
    result = runner.invoke(app, ["report", str(two_photos), "--json"])
    assert result.exit_code == 1
    assert "--catalog" in result.output


def test_a_hidden_folder_left_out_by_a_later_scan_is_excluded_not_removed(tmp_path, small_photos):
    """`boda scan --include-hidden`, a pick in `.edits/`, then a plain `boda scan`: the
    file is still on the disk, so it is counted as excluded, not as removed (gone from
    the disk), and the next `--include-hidden` scan shows its pick again."""
    root = tmp_path / "shoot"
    (root / ".edits").mkdir(parents=True)
    write_image(root / "a.png", small_photos[0])
    write_image(root / ".edits" / "a-bw.png", small_photos[1])
    assert scan(root, workers=1, include_hidden=True).total == 2
    assert runner.invoke(app, ["mark", str(root), ".edits/a-bw.png", "--pick"]).exit_code == 0
    plain = scan(root, workers=1)
    assert (plain.removed, plain.excluded) == (0, 1)
    scan(root, workers=1, include_hidden=True)
    assert _selected(root, "picked") == [".edits/a-bw.png"]
    os.rename(root / ".edits" / "a-bw.png", root / "a-bw.png")  # out of the hidden folder
    moved = scan(root, workers=1)
    assert (moved.moved, moved.removed, moved.excluded) == (1, 0, 0)
    assert _selected(root, "picked") == ["a-bw.png"]


def test_marks_given_while_a_new_analysis_is_unfinished_survive_it(
    tmp_path, small_photos, monkeypatch
):
    """A scan at another --max-side (or by a newer boda) stopped after one file, then
    culling (boda mark, boda serve) before the scan is run again: the picks of the files
    still to analyse kept only their old pixel hash, which the analysis changes, and
    were lost when the next scan analysed them."""
    root = tmp_path / "shoot"
    root.mkdir()
    for i, image in enumerate(small_photos[:3]):
        write_image(root / f"k{i}.png", image)
    scan(root, workers=1)
    monkeypatch.setattr(pipeline, "_iter_results", scan_helpers.interrupt_after(1))
    assert scan(root, workers=1, max_side=48).interrupted
    monkeypatch.undo()
    result = runner.invoke(app, ["mark", str(root), "k0.png", "k1.png", "k2.png", "--pick"])
    assert result.exit_code == 0, result.output
    scan(root, workers=1, max_side=48)  # finishes the analysis
    assert _selected(root, "picked") == ["k0.png", "k1.png", "k2.png"]
