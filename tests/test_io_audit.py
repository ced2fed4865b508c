"""Defects found by an audit of the image I/O internals (writing, colour profiles, RAW
file names, failure reasons), each pinned by a test that failed before its fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import icc_profiles as ip
import numpy as np
import pytest
from PIL import Image, features

from boda import _icc
from boda.errors import ImageReadError
from boda.io import heif_available, open_image, read_image, write_image, write_output

P3 = ip.rgb_profile("p3", ip.SRGB_CURVE, "Display P3 (boda test)")
GRAY18 = ip.gray_profile(ip.curve_gamma(1.8), "Gray 1.8 (boda test)")
LUT_P3 = ip.lut_profile("rgb-p3", "P3 as a table (boda test)")


def _saturated(size: int = 32) -> np.ndarray:
    """Float RGB with saturated colours, where P3 and sRGB values differ most."""
    rng = np.random.default_rng(7)
    pixels = rng.random((size, size, 3)).astype(np.float32)
    pixels[: size // 2, :, 1:] *= 0.2  # reds
    return pixels


@pytest.mark.parametrize("suffix", [".bmp", ".tga", ".ppm", ".qoi"])
def test_formats_without_a_profile_get_the_pixels_in_srgb(tmp_path, suffix):
    # Pillow drops an icc_profile in these formats without a word: an edit of a P3
    # photo (read with color="keep") written as BMP showed its P3 values as sRGB.
    pixels = _saturated()
    path = write_image(tmp_path / f"p3{suffix}", pixels, icc_profile=P3)
    with Image.open(path) as img:
        assert "icc_profile" not in img.info
    expected = _icc.color_plan(P3, "RGB").apply(pixels)
    assert np.abs(read_image(path) - expected).max() <= 0.5 / 255 + 1e-6


def test_gray_table_and_rgba_pixels_are_converted_too(tmp_path):
    gray = _saturated()[:, :, 0]
    got = read_image(write_image(tmp_path / "gray.bmp", gray, icc_profile=GRAY18), gray=True)
    expected = _icc.color_plan(GRAY18, "L").apply(gray)
    assert np.abs(got - expected).max() <= 0.5 / 255 + 1e-6

    pixels = _saturated()
    table = read_image(write_image(tmp_path / "table.bmp", pixels, icc_profile=LUT_P3))
    matrix = _icc.color_plan(P3, "RGB").apply(pixels)
    # LittleCMS's 8-bit pass through a 17-point table, against the exact conversion
    assert np.abs(table - matrix).mean() <= 1 / 255 and np.abs(table - matrix).max() <= 6 / 255
    assert np.abs(pixels - matrix).mean() > 10 / 255  # what was written before

    rgba = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 1.0, np.float32)], 2)
    rgba[0, 0, 3] = 0.0
    path = write_image(tmp_path / "rgba.tga", rgba, icc_profile=P3)
    with Image.open(path) as img:
        assert img.mode == "RGBA" and np.asarray(img)[0, 0, 3] == 0  # alpha kept, aligned
    assert np.abs(read_image(path)[1:] - matrix[1:]).max() <= 0.5 / 255 + 1e-6


def test_srgb_profiles_leave_pixels_alone_where_they_cannot_be_kept(tmp_path):
    pixels = (_saturated() * 255).round().astype(np.uint8)
    srgb = ip.rgb_profile("srgb", ip.SRGB_CURVE)
    with Image.open(write_image(tmp_path / "s.bmp", pixels, icc_profile=srgb)) as img:
        assert np.array_equal(np.asarray(img), pixels)


def _photo() -> np.ndarray:
    from conftest import DATA

    return read_image(DATA / "kodak" / "kodim23.png", max_side=160)


@pytest.mark.parametrize("suffix", [
    ".webp", ".mpo",
    pytest.param(".avif", marks=pytest.mark.skipif(
        not features.check("avif"), reason="Pillow built without AVIF")),
    pytest.param(".heic", marks=pytest.mark.skipif(
        not heif_available(), reason="pillow-heif not installed")),
])
def test_quality_reaches_every_lossy_format(tmp_path, suffix):
    # Only JPEG got ``quality``: WebP was written at Pillow's 80, AVIF at 75, whatever
    # was asked.
    photo = _photo()
    low = write_image(tmp_path / f"low{suffix}", photo, quality=10).stat().st_size
    high = write_image(tmp_path / f"high{suffix}", photo, quality=95).stat().st_size
    assert high > 2 * low


def test_names_near_the_file_system_limit_can_be_written(tmp_path):
    # The temporary file (".NAME.xxxxxxxx.part") was longer than 255 bytes.
    for name in ("a" * 251 + ".png", "é" * 123 + ".png"):
        assert len(os.fsencode(name)) <= 255
        path = write_image(tmp_path / name, np.zeros((4, 4, 3), np.float32))
        assert path.name == name and read_image(path).shape == (4, 4, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ("a" * 251 + ".png", "é" * 123 + ".png")
    )


def test_writers_take_bytes_paths_like_the_readers(tmp_path):
    name = os.fsencode(tmp_path) + b"/caf\xe9.png"  # not UTF-8: an old card's Latin-1 name
    written = write_image(name, np.zeros((4, 4), np.float32))
    assert written == Path(os.fsdecode(name)) and read_image(name).shape == (4, 4, 3)
    write_output(os.fsencode(tmp_path) + b"/notes.txt", "hello")
    assert (tmp_path / "notes.txt").read_text() == "hello"


def test_raw_files_with_names_that_are_not_utf8_are_read(tmp_path):
    pytest.importorskip("rawpy")
    from test_io_raw import make_dng  # the DNG writer of the RAW tests

    upright = np.full((32, 48, 3), 0.5)
    plain = open_image(make_dng(tmp_path / "plain.dng", upright)).pixels
    latin1 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.dng"))
    os.replace(tmp_path / "plain.dng", latin1)
    decoded = open_image(latin1)
    assert decoded.format == "RAW (DNG)" and np.array_equal(decoded.pixels, plain)


@pytest.mark.parametrize("suffix", [
    pytest.param(".avif", marks=pytest.mark.skipif(
        not features.check("avif"), reason="Pillow built without AVIF")),
    pytest.param(".heic", marks=pytest.mark.skipif(
        not heif_available(), reason="pillow-heif not installed")),
])
@pytest.mark.parametrize("kept", [0.05, 0.5, 0.95])
def test_avif_and_heic_files_cut_short_are_said_to_be(tmp_path, suffix, kept):
    # They were "damaged AVIF file: ... header cannot be read" or libheif's own words.
    data = write_image(tmp_path / f"whole{suffix}", _photo()).read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(ImageReadError) as info:
        open_image(cut)
    assert info.value.reason == ImageReadError.TRUNCATED


def test_a_damaged_gif_that_ends_whole_is_not_called_truncated(tmp_path):
    # Pillow says "image file is truncated" when the image data stop early, also when
    # a zeroed block stopped them in a file that ends with its trailer.
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    data = bytearray(write_image(tmp_path / "whole.gif", noise).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # a zero sub-block length ends the image data
    assert data.endswith(b";")
    damaged = tmp_path / "damaged.gif"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as info:
        open_image(damaged)
    assert info.value.reason.startswith("damaged GIF data")
    cut = tmp_path / "cut.gif"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ImageReadError) as info:
        open_image(cut)
    assert info.value.reason == ImageReadError.TRUNCATED


def test_high_quality_jpegs_keep_full_colour_resolution(tmp_path):
    """At quality 95 (the edits' default) colour was still halved both ways (4:2:0)."""
    from PIL import JpegImagePlugin

    image = np.zeros((32, 32, 3), np.float32)
    image[:, ::2, 0] = 1.0  # one-pixel red stripes: gone at half colour resolution
    for quality, sampling in ((95, 0), (90, 0), (80, 2)):
        path = tmp_path / f"q{quality}.jpg"
        write_image(path, image, quality=quality)
        with Image.open(path) as im:
            assert JpegImagePlugin.get_sampling(im) == sampling
    stripes = read_image(tmp_path / "q95.jpg")[:, :, 0]
    assert stripes[:, ::2].mean() - stripes[:, 1::2].mean() > 0.8
