"""Defects found by an audit of how boda writes images (``write_image`` and the
commands that write a photo), each pinned by a test that failed before its fix.

The promise checked: an edited photo keeps what the user had (capture data, colour
profile, colour resolution, transparency, every pixel where asked), and an output
boda cannot write is refused before any work.
"""

from __future__ import annotations

import io

import cv2
import icc_profiles as ip
import numpy as np
import pytest
from PIL import Image, ImageCms, features
from typer.testing import CliRunner

from boda.cli import app
from boda.errors import InvalidParameterError
from boda.io import (
    can_write_alpha,
    heif_available,
    open_image,
    prepare_image_output,
    read_image,
    write_image,
)

needs_avif = pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
needs_heif = pytest.mark.skipif(not heif_available(), reason="pillow-heif not installed")
AVIF = pytest.param(".avif", marks=needs_avif)
HEIC = pytest.param(".heic", marks=needs_heif)

P3 = ip.rgb_profile("p3", ip.SRGB_CURVE, "Display P3 (boda test)")


def _camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "TestCam", "Model X", orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal
    exif.get_ifd(0x8825)[0x0002] = (35.0, 12.0, 1.5)  # GPSLatitude
    return exif


def _check_exif(path) -> None:
    """The camera, capture time and GPS of :func:`_camera_exif` are in ``path``, and it
    says the pixels are upright (Orientation 1, or none: the same)."""
    with Image.open(path) as img:  # open: a TIFF's sub-directories are read from the file
        written = img.getexif()
        assert written.get(0x010F) == "TestCam" and written.get(0x0110) == "Model X"
        assert written.get(0x0112, 1) == 1
        assert written.get_ifd(0x8769).get(0x9003) == "2024:01:02 03:04:05"
        assert written.get_ifd(0x8825).get(0x0002) == (35.0, 12.0, 1.5)


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def sideways_photo(tmp_path):
    """A JPEG stored 60x40 with EXIF Orientation 6 (upright 40x60) and a hole mask."""
    rng = np.random.default_rng(3)
    photo = tmp_path / "photo.jpg"
    pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo, exif=_camera_exif(6).tobytes(), quality=95)
    hole = np.zeros((60, 40), np.uint8)
    hole[20:30, 10:20] = 255
    mask = tmp_path / "hole.png"
    Image.fromarray(hole).save(mask)
    return photo, mask


# ------------------------------------------------------------------ EXIF in AVIF and HEIC
@pytest.mark.parametrize("suffix", [AVIF, HEIC, ".mpo"])
def test_avif_heic_and_mpo_keep_the_exif(tmp_path, suffix):
    # write_image passed ``exif`` only to JPEG, PNG, WebP and TIFF: an AVIF, HEIC or
    # MPO edit lost the capture time, camera and GPS position.
    path = write_image(tmp_path / f"out{suffix}", np.full((16, 24, 3), 0.5, np.float32),
                       exif=_camera_exif().tobytes())
    _check_exif(path)
    assert open_image(path).exif_tags.get(0x010F) == "TestCam"


@pytest.mark.parametrize("suffix", [AVIF, HEIC])
def test_an_edit_saved_as_avif_or_heic_keeps_the_exif_and_stays_upright(
    tmp_path, sideways_photo, suffix
):
    photo, mask = sideways_photo
    out = tmp_path / f"out{suffix}"
    result = _run("inpaint", photo, "-m", mask, "-o", out)
    assert result.exit_code == 0, result.output
    _check_exif(out)
    assert open_image(out).pixels.shape == (60, 40, 3)  # not turned a second time


# ------------------------------------------------------------------ 16-bit TIFF and EXIF
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_16bit_tiffs_keep_the_exif(tmp_path, channels):
    # "16-bit TIFF files are written without it": the edit of a 16-bit scan or raw
    # developer's TIFF saved as TIFF lost its EXIF, where a 16-bit PNG kept it.
    shape = (8, 10, channels) if channels else (8, 10)
    ramp = np.linspace(0, 65535, np.prod(shape)).astype(np.uint16).reshape(shape)
    path = write_image(tmp_path / "deep.tif", ramp, exif=_camera_exif().tobytes(),
                       icc_profile=P3 if channels else None)
    _check_exif(path)
    assert open_image(path).bit_depth == 16
    with Image.open(path) as img:  # the profile, and the alpha marked as such, kept
        assert img.info.get("icc_profile") == (P3 if channels else None)
        assert img.mode == {0: "I;16", 3: "RGB", 4: "RGBA"}[channels]
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # the 16-bit values, exactly
    if channels:
        back = back[:, :, [2, 1, 0, 3][:channels]]
    assert np.array_equal(back, ramp)
    try:  # a second, independent TIFF parser reads the same tags
        import tifffile
    except ImportError:
        return
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        assert tags["Make"].value == "TestCam"
        assert tags["ExifTag"].value["DateTimeOriginal"] == "2024:01:02 03:04:05"
        assert tags["GPSTag"].value["GPSLatitude"] == (35, 1, 12, 1, 3, 2)


@pytest.mark.parametrize("suffix", [".tif", ".jpg", ".png"])
def test_an_exif_that_is_no_exif_block_is_refused_by_name(tmp_path, suffix):
    # A TIFF write failed with Pillow's bare SyntaxError ("not a TIFF file"), and a
    # JPEG or PNG carried the bytes as a damaged EXIF block.
    for bad in (b"garbage", "Exif text"):
        with pytest.raises(InvalidParameterError, match="exif must be an EXIF block"):
            write_image(tmp_path / f"out{suffix}", np.zeros((4, 4, 3), np.float32), exif=bad)
        assert not (tmp_path / f"out{suffix}").exists()
    no_prefix = _camera_exif().tobytes().removeprefix(b"Exif\x00\x00")  # as PNG eXIf holds it
    _check_exif(write_image(tmp_path / f"ok{suffix}", np.zeros((4, 4, 3)), exif=no_prefix))


# ------------------------------------------------------------------ lossless WebP
def test_webp_is_written_lossless_when_asked(tmp_path):
    # There was no way to write a lossless WebP: every .webp was lossy (quality 95),
    # so an edit of a PNG saved as WebP changed pixels nobody touched.
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    path = write_image(tmp_path / "exact.webp", rgb, lossless=True, exif=_camera_exif().tobytes(),
                       icc_profile=P3)
    with Image.open(path) as img:
        assert np.array_equal(np.asarray(img.convert("RGB")), rgb)
        assert img.info.get("icc_profile") == P3
    _check_exif(path)
    # Transparent pixels keep their colour too (libwebp would clear them otherwise).
    rgba = np.dstack([rgb, np.where(rng.random((24, 32)) < 0.3, 0, 255).astype(np.uint8)])
    with Image.open(write_image(tmp_path / "cut.webp", rgba, lossless=True)) as img:
        assert np.array_equal(np.asarray(img), rgba)
    lossy = write_image(tmp_path / "lossy.webp", rgb)  # the default is unchanged
    assert not np.array_equal(np.asarray(Image.open(lossy).convert("RGB")), rgb)


def test_lossless_is_refused_where_the_format_cannot_be_and_free_where_it_always_is(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for name in ("a.jpg", "a.JPEG", "a.gif") + (("a.avif",) if features.check("avif") else ()):
        with pytest.raises(InvalidParameterError, match=r"lossless.*\.webp"):
            write_image(tmp_path / name, rgb, lossless=True)
        assert not (tmp_path / name).exists()
    for name in ("a.png", "a.tif", "a.bmp"):  # lossless anyway
        assert np.array_equal(np.asarray(Image.open(write_image(tmp_path / name, rgb,
                                                                 lossless=True))), rgb)
    with pytest.raises(InvalidParameterError, match="lossless"):
        write_image(tmp_path / "b.webp", rgb, lossless="yes")


@pytest.mark.parametrize("command", ["inpaint", "refocus", "cutout"])
def test_the_edits_write_a_lossless_webp_with_lossless(tmp_path, sideways_photo, command):
    photo, mask = sideways_photo
    source = tmp_path / "source.png"  # a lossless original
    upright = (open_image(photo).pixels * 255).round().astype(np.uint8)
    Image.fromarray(upright).save(source)
    depth = tmp_path / "depth.png"
    Image.fromarray(np.full((60, 40), 128, np.uint8)).save(depth)
    args = {
        "inpaint": ["-m", mask],
        "refocus": ["--depth", depth, "--focus-depth", "0.5", "--aperture", "0"],
        "cutout": ["--rect", "5,5,30,50", "--iterations", "1"],
    }[command]
    out = tmp_path / "out.webp"
    result = _run(command, source, *args, "-o", out, "--lossless")
    assert result.exit_code == 0, result.output
    got = np.asarray(Image.open(out).convert("RGBA"))
    if command == "inpaint":  # outside the hole, every pixel is the original's
        keep = np.asarray(Image.open(mask)) == 0
        assert np.array_equal(got[..., :3][keep], upright[keep])
    elif command == "refocus":  # aperture 0: nothing blurred, nothing changed
        assert np.abs(got[..., :3].astype(int) - upright).max() <= 1
    else:  # the cut-out keeps the photo's colours, also under its transparent pixels
        assert np.array_equal(got[..., :3], upright)
    # Asked for a format that cannot be lossless: refused before any work.
    result = _run(command, source, *args, "-o", tmp_path / "out.jpg", "--lossless")
    assert result.exit_code == 2 and "lossless" in result.output
    assert not (tmp_path / "out.jpg").exists()


# ------------------------------------------------------------------ colour resolution
@pytest.mark.parametrize("suffix", [AVIF, HEIC])
def test_high_quality_avif_and_heic_keep_full_colour_resolution(tmp_path, suffix):
    # JPEG gets 4:4:4 chroma from quality 90 on; AVIF and HEIC stayed at 4:2:0 at
    # every quality, so red one-pixel stripes (red text, a flower's edge) lost 70 %
    # of their contrast at quality 95.
    image = np.zeros((32, 32, 3), np.float32)
    image[:, ::2, 0] = 1.0
    for quality, sharp in ((95, True), (90, True), (60, False)):
        stripes = read_image(write_image(tmp_path / f"q{quality}{suffix}", image,
                                         quality=quality))[:, :, 0]
        contrast = stripes[:, ::2].mean() - stripes[:, 1::2].mean()
        assert (contrast > 0.9) == sharp, (quality, contrast)


# ------------------------------------------------------------------ transparency in HEIC
@needs_heif
def test_heic_keeps_transparency(tmp_path):
    # HEIC holds an alpha plane (pillow-heif writes and reads it) but was not in the
    # formats that keep alpha: a cut-out saved as .heic was laid over white.
    assert can_write_alpha("cut.heic") and can_write_alpha("cut.HEIF")
    rgba = np.ones((16, 16, 4), np.float32)
    rgba[:8, :, 3] = 0.0
    with Image.open(write_image(tmp_path / "cut.heic", rgba)) as img:
        alpha = np.asarray(img.convert("RGBA"))[:, :, 3]
    assert alpha[:8].max() == 0 and alpha[8:].min() == 255


# ------------------------------------------------------------------ formats Pillow lists
@pytest.mark.parametrize("suffix", [
    ".h5", ".hdf", ".grib", ".bufr", ".wmf", ".emf",  # Pillow has no encoder for these
    ".xbm", ".msp", ".palm", ".blp",  # 1-bit or palette-only formats: not a photo
])
def test_extensions_write_image_cannot_write_are_refused_up_front(tmp_path, suffix,
                                                                   sideways_photo):
    # Pillow lists a save handler for these, so the path was accepted and the
    # command failed only after its work, with Pillow's words ("HDF5 save handler
    # not installed", "cannot write mode RGB as XBM").
    with pytest.raises(InvalidParameterError, match=r"\.png"):
        prepare_image_output(tmp_path / f"out{suffix}")
    photo, mask = sideways_photo
    result = _run("inpaint", photo, "-m", mask, "-o", tmp_path / f"out{suffix}",
                  "--method", "exemplar")
    assert result.exit_code == 2 and "cannot write" in result.output
    assert "inpainting" not in result.output  # no progress bar: no work was done


def test_gray_images_can_be_written_as_qoi(tmp_path):
    # QOI holds only RGB and RGBA; a gray image (an edge map) was refused after the work.
    gray = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    back = read_image(write_image(tmp_path / "edges.qoi", gray), gray=True)
    assert np.abs(back - gray).max() <= 0.5 / 255 + 1e-6


# ------------------------------------------------------------------ colours per format
@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg", ".webp", AVIF, HEIC])
def test_a_p3_photo_looks_the_same_in_every_format(tmp_path, suffix):
    # Coverage (this held already): the profile is embedded, and boda reads the file
    # as a colour-managed viewer shows it (LittleCMS from the profile to sRGB); flat
    # patches keep their P3 values within what the compression changes.
    patches = np.array([[200, 40, 90], [30, 180, 60], [20, 60, 220], [240, 230, 20]], np.uint8)
    image = np.repeat(np.repeat(patches.reshape(2, 2, 3), 16, 0), 16, 1)
    path = write_image(tmp_path / f"p3{suffix}", image, icc_profile=P3, quality=95)
    with Image.open(path) as img:
        assert img.info.get("icc_profile") == P3
        stored = img.convert("RGB")
    centres = np.asarray(stored, np.int16)[8::16, 8::16].reshape(4, 3)
    assert np.abs(centres - patches).max() <= 3
    shown = np.asarray(ImageCms.profileToProfile(
        stored, ImageCms.ImageCmsProfile(io.BytesIO(P3)), ImageCms.createProfile("sRGB"),
        outputMode="RGB"), np.float64)
    assert np.abs(read_image(path) * 255 - shown).max() <= 1.5
