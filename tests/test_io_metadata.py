"""An edited photo keeps its XMP packet and print resolution (``DecodedImage.xmp`` and
``dpi``, ``write_image(..., xmp=, dpi=)``, and the edit commands that write them).

XMP is where Lightroom, darktable and digiKam keep a photo's rating, labels,
keywords and copyright; losing it in an edit loses the photographer's work.  Each
file written is read back by Pillow's own parsers (``info["xmp"]``, TIFF tag 700,
``info["dpi"]``), the reference for where each format keeps them.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, features
from typer.testing import CliRunner

from boda.cli import app
from boda.errors import InvalidParameterError
from boda.io import MetadataDroppedWarning, heif_available, open_image, write_image

runner = CliRunner()

needs_avif = pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
needs_heif = pytest.mark.skipif(not heif_available(), reason="pillow-heif not installed")


def _xmp(rating: int = 4, orientation: str = "", extra: str = "") -> bytes:
    """An XMP packet as Lightroom writes one: a rating, keywords, optional tiff tags."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmp:Rating="{rating}" {orientation}>'
        "<dc:subject><rdf:Bag><rdf:li>Seoul</rdf:li><rdf:li>보다</rdf:li></rdf:Bag></dc:subject>"
        f"{extra}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _pillow_xmp(path) -> bytes | None:
    with Image.open(path) as img:
        packet = img.info.get("xmp")
        if packet is None and img.format == "TIFF":
            packet = img.tag_v2.get(700)
    return packet.encode() if isinstance(packet, str) else packet


def _photo(h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(0).random((h, w, 3)).astype(np.float32)


FORMATS = [
    (".jpg", None), (".png", None), (".png", 16), (".tif", None), (".tif", 16), (".webp", None),
    pytest.param(".avif", None, marks=needs_avif), pytest.param(".heic", None, marks=needs_heif),
]


@pytest.mark.parametrize(("suffix", "bits"), FORMATS)
@pytest.mark.parametrize("channels", [3, 1])
def test_xmp_is_written_where_each_format_keeps_it(tmp_path, suffix, bits, channels):
    pixels = _photo() if channels == 3 else _photo()[..., 0]
    packet = _xmp()
    path = write_image(tmp_path / f"out{suffix}", pixels, xmp=packet, bit_depth=bits)
    assert _pillow_xmp(path) == packet
    assert open_image(path).xmp == packet
    if bits == 16:
        assert open_image(path).bit_depth == 16


@pytest.mark.parametrize(("suffix", "bits"), [(".jpg", None), (".png", None), (".png", 16),
                                              (".tif", None), (".tif", 16)])
def test_dpi_is_written_in_jpeg_png_and_tiff(tmp_path, suffix, bits):
    path = write_image(tmp_path / f"out{suffix}", _photo(), dpi=(300, 240), bit_depth=bits)
    with Image.open(path) as img:
        x, y = img.info["dpi"]
    # PNG keeps pixels per metre: 300 dpi is 11811 px/m, 299.9994 dpi read back
    assert x == pytest.approx(300, abs=0.01) and y == pytest.approx(240, abs=0.01)
    assert open_image(path).dpi == pytest.approx((x, y))


def test_formats_without_a_place_for_them_are_written_without(tmp_path):
    for suffix in (".bmp", ".gif"):
        path = write_image(tmp_path / f"out{suffix}", _photo(), xmp=_xmp(), dpi=(300, 300))
        assert open_image(path).xmp is None


def test_the_xmp_orientation_follows_the_exif_orientation(tmp_path):
    """Pixels turned by the EXIF Orientation are written upright with Orientation 1;
    an XMP tiff:Orientation left at 6 would turn them again in a viewer that reads it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = (np.arange(4 * 6 * 3).reshape(4, 6, 3) * 3).astype(np.uint8)
    for name, orientation, extra in [
        ("attribute", 'tiff:Orientation="6"', ""),
        ("element", "", "<tiff:Orientation>6</tiff:Orientation>"),
    ]:
        path = tmp_path / f"{name}.jpg"
        Image.fromarray(stored).save(path, exif=exif, xmp=_xmp(3, orientation, extra))
        decoded = open_image(path)
        assert decoded.pixels.shape[:2] == (6, 4)  # turned
        assert b'tiff:Orientation="1"' in decoded.xmp or (
            b"<tiff:Orientation>1</tiff:Orientation>" in decoded.xmp
        )
        assert b"6" not in decoded.xmp.split(b"Orientation")[1][:4]
        assert b'xmp:Rating="3"' in decoded.xmp
        assert _pillow_xmp(path) == _xmp(3, orientation, extra)  # the file is untouched


def test_an_xmp_only_orientation_turns_the_pixels_and_is_reset(tmp_path):
    """Without an EXIF Orientation, Pillow (and so boda) takes the XMP's: the pixels
    come upright, and the packet written back says so."""
    path = tmp_path / "sideways.jpg"
    packet = _xmp(2, 'tiff:Orientation="6"')
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path, xmp=packet)
    decoded = open_image(path)
    assert decoded.pixels.shape[:2] == (6, 4)
    assert decoded.xmp == packet.replace(b'Orientation="6"', b'Orientation="1"')
    out = write_image(tmp_path / "out.jpg", decoded.pixels, exif=decoded.exif, xmp=decoded.xmp)
    assert open_image(out).pixels.shape[:2] == (6, 4)  # not turned a second time


def test_a_packet_without_orientation_is_kept_byte_for_byte(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "turned.jpg"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path, exif=exif, xmp=_xmp(1))
    assert open_image(path).xmp == _xmp(1)


def test_a_placeholder_resolution_is_no_resolution(tmp_path):
    path = tmp_path / "one.tif"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path, dpi=(1, 1))
    assert open_image(path).dpi is None
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(plain)
    assert open_image(plain).dpi is None and open_image(plain).xmp is None


def test_dpi_at_keeps_the_print_size(tmp_path):
    path = tmp_path / "print.jpg"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(path, dpi=(300, 300))
    decoded = open_image(path, max_side=30)
    assert decoded.dpi == (300, 300)
    assert decoded.dpi_at(30, 20) == pytest.approx((150, 150))


def test_a_jpeg_cannot_hold_a_huge_packet_and_says_so(tmp_path):
    big = _xmp(extra="<dc:description>" + "x" * 70_000 + "</dc:description>")
    with pytest.warns(MetadataDroppedWarning, match="longer than a JPEG holds"):
        path = write_image(tmp_path / "big.jpg", _photo(), xmp=big)
    assert _pillow_xmp(path) is None
    assert _pillow_xmp(write_image(tmp_path / "big.png", _photo(), xmp=big)) == big


@pytest.mark.parametrize("bad", [(0, 300), (300,), (300, float("nan")), ("300", "300"),
                                 300, (True, 300), (300, -1)])
def test_bad_dpi_is_refused(tmp_path, bad):
    with pytest.raises(InvalidParameterError, match="dpi must be two numbers"):
        write_image(tmp_path / "out.webp", _photo(), dpi=bad)  # checked for any format


def test_xmp_must_be_bytes(tmp_path):
    with pytest.raises(InvalidParameterError, match="xmp must be an XMP packet"):
        write_image(tmp_path / "out.jpg", _photo(), xmp=_xmp().decode())


def _tagged_photo(tmp_path, name="photo.jpg"):
    path = tmp_path / name
    rng = np.random.default_rng(1)
    img = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(path, xmp=_xmp(5), dpi=(300, 300), quality=95)
    return path


def test_inpaint_and_refocus_keep_xmp_and_dpi(tmp_path):
    photo = _tagged_photo(tmp_path)
    mask = np.zeros((48, 64), np.uint8)
    mask[20:28, 30:40] = 255
    Image.fromarray(mask).save(tmp_path / "hole.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))).save(
        tmp_path / "depth.png"
    )
    commands = {
        "filled.jpg": ["inpaint", str(photo), "--mask", str(tmp_path / "hole.png")],
        "focused.png": ["refocus", str(photo), "--depth", str(tmp_path / "depth.png"),
                        "--focus-depth", "0.5"],
    }
    for name, args in commands.items():
        result = runner.invoke(app, [*args, "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert _pillow_xmp(tmp_path / name) == _xmp(5)
        assert open_image(tmp_path / name).dpi == pytest.approx((300, 300), abs=0.01)


def test_cutout_shrunk_by_max_side_prints_at_the_same_size(tmp_path):
    photo = _tagged_photo(tmp_path)
    out = tmp_path / "cut.png"
    result = runner.invoke(app, ["cutout", str(photo), "--rect", "10,8,40,30", "--max-side",
                                 "32", "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = open_image(out)
    assert written.original_size == (32, 24)
    assert written.dpi == pytest.approx((150, 150), abs=0.013)  # PNG: whole px per metre
    assert written.xmp == _xmp(5)


def test_a_dropped_packet_is_a_note_not_a_traceback(tmp_path):
    path = tmp_path / "long.webp"
    big = _xmp(extra="<dc:description>" + "y" * 70_000 + "</dc:description>")
    Image.fromarray((_photo(48, 64) * 255).astype(np.uint8)).save(path, xmp=big, lossless=True)
    mask = np.zeros((48, 64), np.uint8)
    mask[4:8, 4:8] = 255
    Image.fromarray(mask).save(tmp_path / "hole.png")
    out = tmp_path / "filled.jpg"
    result = runner.invoke(app, ["inpaint", str(path), "--mask", str(tmp_path / "hole.png"),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "note: " in result.output and "longer than a JPEG holds" in result.output
    assert "MetadataDroppedWarning" not in result.output
    assert out.exists() and _pillow_xmp(out) is None
