"""JPEG panoramas above the pixel limit: judged by the pixels a ``max_side`` read decodes.

Pillow's limit is lowered here (``Image.MAX_IMAGE_PIXELS`` = 1 MP, so 2 MP refused
at open) so that a 2000 x 1500 (3 MP) file counts as "huge" and the tests stay small.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

import boda.io as bio
from boda.errors import ImageReadError
from boda.io import image_size, open_image, read_image

LOW = 1_000_000  # Pillow refuses above 2 * LOW = 2 MP


@pytest.fixture(scope="module")
def big_files(tmp_path_factory, kodak_paths):
    """A 2000 x 1500 JPEG and the same pixels as a PNG."""
    folder = tmp_path_factory.mktemp("big")
    with Image.open(kodak_paths[0]) as photo:
        pixels = photo.convert("RGB").resize((2000, 1500), Image.Resampling.BILINEAR)
    pixels.save(folder / "pano.jpg", quality=90)
    pixels.save(folder / "pano.png", compress_level=1)
    return folder / "pano.jpg", folder / "pano.png"


@pytest.fixture
def low_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LOW)
    monkeypatch.setattr(bio, "DEFAULT_MAX_PIXELS", 2 * LOW)


def test_jpeg_over_the_limit_reads_at_reduced_size_as_it_would_under_it(big_files, monkeypatch):
    jpeg, _ = big_files
    expected = open_image(jpeg, max_side=100)  # under Pillow's real limit
    seen = []
    decode = bio._decode

    def spy(*args, **kwargs):  # Pillow's global limit while boda decodes
        seen.append(Image.MAX_IMAGE_PIXELS)
        return decode(*args, **kwargs)

    monkeypatch.setattr(bio, "_decode", spy)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LOW)
    with pytest.raises(Image.DecompressionBombError):  # Pillow alone refuses it
        Image.open(jpeg)
    got = open_image(jpeg, max_side=100)
    assert got.pixels.shape == (75, 100, 3) and got.original_size == (2000, 1500)
    np.testing.assert_array_equal(got.pixels, expected.pixels)
    assert seen == [LOW] and Image.MAX_IMAGE_PIXELS == LOW  # never lifted, not even briefly
    assert read_image(jpeg, 500, gray=True).shape == (375, 500)  # draft 1/2: 0.75 MP
    assert image_size(jpeg) == (2000, 1500)  # the header alone, whatever the size


def test_the_limit_applies_to_the_decoded_size(big_files, low_limit):
    jpeg, _ = big_files
    # max_side 100: draft decodes 1/8 per side, 250 x 188 = 47 000 pixels
    assert open_image(jpeg, 100, max_pixels=47_000).pixels.shape == (75, 100, 3)
    with pytest.raises(ImageReadError, match=r"decodes to 250x188 = 47000 pixels") as err:
        open_image(jpeg, 100, max_pixels=46_999)
    assert "smaller max_side" in err.value.reason and "max_pixels=None" in err.value.reason
    # max_side 1000: no reduction possible (1500 // 1000 = 1), 3 MP decoded > 2 MP
    with pytest.raises(ImageReadError, match=r"decodes to 2000x1500 = 3000000 pixels"):
        open_image(jpeg, 1000)
    assert Image.MAX_IMAGE_PIXELS == LOW


def test_without_max_side_a_huge_jpeg_is_refused_with_the_way_out(big_files, low_limit):
    jpeg, _ = big_files
    with pytest.raises(ImageReadError) as err:
        read_image(jpeg)
    reason = err.value.reason
    assert "2000x1500 = 3000000 pixels exceeds the limit of 2000000" in reason
    assert "--max-side" in reason and "max_pixels=None" in reason
    assert Image.MAX_IMAGE_PIXELS == LOW  # after an exception too
    # the way out for a trusted file: the whole image
    assert read_image(jpeg, max_pixels=None).shape == (1500, 2000, 3)
    assert Image.MAX_IMAGE_PIXELS == LOW


def test_a_png_of_the_same_size_is_still_refused(big_files, low_limit):
    _, png = big_files
    for max_side in (None, 100):
        with pytest.raises(ImageReadError, match="limit of 2000000 pixels .Pillow's") as err:
            open_image(png, max_side)
        assert "only a JPEG" in err.value.reason
    with pytest.raises(ImageReadError, match="decompression-bomb limit"):
        image_size(png)
    assert Image.MAX_IMAGE_PIXELS == LOW


def test_boda_limit_below_pillows_refuses_a_png_by_its_header(big_files):
    _, png = big_files
    with pytest.raises(ImageReadError, match="cannot decode a PNG at reduced size"):
        open_image(png, 100, max_pixels=2_999_999)
    assert open_image(png, 100, max_pixels=3_000_000).pixels.shape == (75, 100, 3)


def test_pillows_lower_limit_still_bounds_a_jpeg_read(big_files, monkeypatch):
    jpeg, _ = big_files
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 40 000 < 47 000 at 1/8
    with pytest.raises(ImageReadError, match="limit of 40000"):
        open_image(jpeg, 100)  # the default max_pixels is larger: Pillow's limit wins


def test_concurrent_reads_keep_the_guard(big_files, low_limit):
    jpeg, png = big_files
    errors, shapes = [], []

    def read(path):
        try:
            shapes.append(read_image(path, 100).shape)
        except ImageReadError as exc:
            errors.append(exc.reason)

    threads = [threading.Thread(target=read, args=(p,)) for p in (jpeg, png) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shapes == [(75, 100, 3)] * 4 and len(errors) == 4
    assert all("only a JPEG" in e for e in errors)
    assert Image.MAX_IMAGE_PIXELS == LOW


def test_scan_records_a_huge_jpeg(tmp_path, big_files, low_limit):
    from boda.scan import scan

    jpeg, png = big_files
    root = tmp_path / "photos"
    root.mkdir()
    (root / "pano.jpg").write_bytes(jpeg.read_bytes())
    (root / "pano.png").write_bytes(png.read_bytes())
    summary = scan(root, workers=1)
    assert summary.total == summary.analysed == 2
    assert [p for p, _ in summary.failed] == ["pano.png"], summary.failed  # the JPEG is in
    assert "only a JPEG" in summary.failed[0][1]
