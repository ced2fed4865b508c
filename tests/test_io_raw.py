"""Camera RAW files (the ``boda[raw]`` extra, LibRaw through rawpy).

The DNG files are real ones, written here byte by byte (TIFF structure, DNG tags):
a Kodak photo turned back into linear light and mosaiced through an RGGB Bayer
filter at 12 bits with a black level, an XYZ-to-camera matrix that makes the
camera's primaries sRGB's, and optionally an embedded preview (an 8-bit bitmap
or a JPEG, with or without its own EXIF orientation).  LibRaw demosaics them;
what boda reads must be the source photo again, the right way up.
"""

from __future__ import annotations

import io
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from boda import io as boda_io
from boda._io_raw import RAW_EXTENSIONS, raw_available
from boda._io_reasons import raw_cut_short, raw_unreadable
from boda.core.image import to_gray
from boda.errors import ImageReadError
from boda.io import open_image, read_image
from boda.report import catalog_records
from boda.scan import scan
from boda.scan._walk import describe_raw_files, walk_images

#: XYZ (D65) to linear sRGB (IEC 61966-2-1): the DNG's ColorMatrix1, so the
#: "camera" sees sRGB primaries and LibRaw's sRGB output is the source again.
_XYZ_TO_SRGB = [
    [3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570],
]
_BLACK, _WHITE = 64, 4095

#: What EXIF orientation ``o`` asks a viewer to do to the stored pixels.
_UPRIGHT = {
    1: lambda a: a,
    3: lambda a: a[::-1, ::-1],
    6: lambda a: np.rot90(a, -1),
    8: lambda a: np.rot90(a, 1),
}
#: Stored pixels that come out as ``a`` once turned by orientation ``o``.
_STORED = {1: lambda a: a, 3: lambda a: a[::-1, ::-1], 6: lambda a: np.rot90(a, 1),
           8: lambda a: np.rot90(a, -1)}


class _Tiff:
    """A little-endian TIFF written by hand: data blocks first, IFDs after them; a block
    written ``last`` goes after everything else, at ``tail_at`` (known from a first
    pass: the IFDs' sizes do not depend on the offsets they hold)."""

    _FORMATS = {1: "B", 3: "H", 4: "I", 7: "B"}

    def __init__(self, tail_at: int = 0) -> None:
        self.buf = bytearray(b"II*\x00\x00\x00\x00\x00")
        self.tail, self.tail_at = b"", tail_at

    def blob(self, data: bytes, last: bool = False) -> int:
        if last:
            self.tail += data
            return self.tail_at + len(self.tail) - len(data)
        if len(self.buf) % 2:
            self.buf += b"\0"  # TIFF offsets are even
        offset = len(self.buf)
        self.buf += data
        return offset

    def ifd(self, entries: dict[int, tuple[int, object]]) -> int:
        packed = []
        for tag in sorted(entries):  # TIFF wants entries in tag order
            kind, values = entries[tag]
            if kind == 2:  # ASCII
                raw = str(values).encode() + b"\0"
                count = len(raw)
            elif kind in (5, 10):  # (S)RATIONAL pairs
                flat = [int(v) for pair in values for v in pair]
                raw = struct.pack(f"<{len(flat)}{'I' if kind == 5 else 'i'}", *flat)
                count = len(values)
            else:
                raw = struct.pack(f"<{len(values)}{self._FORMATS[kind]}", *values)
                count = len(values)
            field = raw.ljust(4, b"\0") if len(raw) <= 4 else struct.pack("<I", self.blob(raw))
            packed.append(struct.pack("<HHI", tag, kind, count) + field)
        return self.blob(struct.pack("<H", len(packed)) + b"".join(packed) + b"\0\0\0\0")

    def finish(self, first_ifd: int) -> tuple[bytes, int]:
        """The file, and where its ``last`` blocks begin."""
        self.buf[4:8] = struct.pack("<I", first_ifd)
        if len(self.buf) % 2:
            self.buf += b"\0"
        return bytes(self.buf) + self.tail, len(self.buf)


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def make_dng(
    path: Path,
    upright: np.ndarray,
    orientation: int = 1,
    preview: str | None = None,
    preview_exif: bool = False,
    preview_scale: int = 1,
    sensor_last: bool = False,
    spoil_preview: Callable[[bytes], bytes] | None = None,
) -> Path:
    """Write ``upright`` (float sRGB, even sides) as a DNG whose pixels are stored
    the sensor's way round for ``orientation``; ``preview``: None, "bitmap", "jpeg"
    (``preview_exif``: the JPEG carries the orientation too, ``preview_scale``: it is
    that many times smaller, ``spoil_preview``: what becomes of its bytes).
    ``sensor_last``: the sensor data at the file's end, after the IFDs and the
    preview, as cameras write them (a file cut short loses sensor data, not its
    structure); otherwise first."""
    rgb = np.ascontiguousarray(_STORED[orientation](upright)).astype(np.float64)
    h, w, _ = rgb.shape
    linear = _srgb_to_linear(rgb)
    cfa = np.empty((h, w))
    cfa[0::2, 0::2] = linear[0::2, 0::2, 0]  # R G
    cfa[0::2, 1::2] = linear[0::2, 1::2, 1]  # G B
    cfa[1::2, 0::2] = linear[1::2, 0::2, 1]
    cfa[1::2, 1::2] = linear[1::2, 1::2, 2]
    data = np.round(_BLACK + cfa * (_WHITE - _BLACK)).astype("<u2")
    strip, compression, photometric = b"", 1, 2
    if preview is not None:
        small = rgb[::preview_scale, ::preview_scale]
        pixels = np.round(np.clip(small, 0, 1) * 255).astype(np.uint8)
        ph, pw = pixels.shape[:2]
        if preview == "jpeg":
            buffer = io.BytesIO()
            exif = Image.Exif()
            if preview_exif:
                exif[0x0112] = orientation
            Image.fromarray(pixels).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
            strip, compression, photometric = buffer.getvalue(), 7, 6
        else:
            strip = pixels.tobytes()
        if spoil_preview is not None:
            strip = spoil_preview(strip)

    def layout(tiff: _Tiff) -> tuple[bytes, int]:
        offset = tiff.blob(data.tobytes(), last=sensor_last)
        sensor = {
            254: (4, [0]), 256: (4, [w]), 257: (4, [h]), 258: (3, [16]), 259: (3, [1]),
            262: (3, [32803]),  # PhotometricInterpretation: CFA
            273: (4, [offset]), 277: (3, [1]), 278: (4, [h]), 279: (4, [data.nbytes]),
            284: (3, [1]),
            33421: (3, [2, 2]), 33422: (1, [0, 1, 1, 2]),  # CFARepeatPatternDim, RGGB
            50714: (4, [_BLACK]), 50717: (4, [_WHITE]),  # BlackLevel, WhiteLevel
        }
        exif_ifd = tiff.ifd({
            36867: (2, "2024:05:06 07:08:09"),  # DateTimeOriginal
            37500: (7, list(b"maker note with offsets into the file")),  # MakerNote
        })
        camera = {
            34665: (4, [exif_ifd]),  # the EXIF IFD
            271: (2, "boda"), 272: (2, "test camera"), 274: (3, [orientation]),
            306: (2, "2024:05:06 07:08:09"),  # DateTime
            50706: (1, [1, 4, 0, 0]), 50707: (1, [1, 1, 0, 0]),  # DNGVersion, BackwardVersion
            50708: (2, "boda test camera"),  # UniqueCameraModel
            50721: (10, [(round(v * 10000), 10000) for row in _XYZ_TO_SRGB for v in row]),
            50728: (5, [(1, 1)] * 3),  # AsShotNeutral: the camera's white is (1, 1, 1)
            50778: (3, [21]),  # CalibrationIlluminant1: D65
        }
        if preview is None:
            return tiff.finish(tiff.ifd({**sensor, **camera}))
        sub = tiff.ifd(sensor)
        offset = tiff.blob(strip)
        first = tiff.ifd({
            254: (4, [1]), 256: (4, [pw]), 257: (4, [ph]), 258: (3, [8, 8, 8]),
            259: (3, [compression]), 262: (3, [photometric]), 273: (4, [offset]),
            277: (3, [3]), 278: (4, [ph]), 279: (4, [len(strip)]), 284: (3, [1]),
            330: (4, [sub]),  # SubIFDs: the sensor data
            **camera,
        })
        return tiff.finish(first)

    content, tail_at = layout(_Tiff())
    if sensor_last:  # again, now that the sensor data's offset is known
        content, _ = layout(_Tiff(tail_at))
    return _write(path, content)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def source(kodak_rgb) -> np.ndarray:
    """A landscape crop (256 x 384): every turn of it is told apart by its shape or content."""
    return np.ascontiguousarray(kodak_rgb[100:356, 50:434])


@pytest.fixture
def no_rawpy(monkeypatch):
    """As if the ``boda[raw]`` extra were not installed."""
    monkeypatch.setitem(sys.modules, "rawpy", None)  # import rawpy -> ImportError


# -- without rawpy (always run) ---------------------------------------------------------


def test_without_rawpy_a_raw_file_says_which_extra_reads_it(tmp_path, no_rawpy):
    path = tmp_path / "IMG_0001.CR2"
    path.write_bytes(b"II*\x00 not really a raw file")
    assert not raw_available()
    with pytest.raises(ImageReadError, match=r"camera RAW needs the raw extra: pip install "
                                             r"'boda\[raw\]'") as info:
        read_image(path)
    assert info.value.path == path


def test_without_rawpy_a_scan_passes_raw_files_over_and_says_so(two_photos, no_rawpy):
    for name in ("a.dng", "b.NEF", "notes.txt"):
        (two_photos / name).write_bytes(b"raw sensor data")
    found = [Path(f.path).name for f in walk_images(two_photos)]
    assert "a.dng" not in found and "b.NEF" not in found and len(found) == 2
    summary = scan(two_photos, workers=1)
    assert summary.raw_files == {".dng": 1, ".nef": 1} and summary.total == 2
    text = describe_raw_files(summary.raw_files)
    assert text.startswith("2 camera RAW files (1 .dng, 1 .nef): boda reads JPEG")
    assert "pip install 'boda[raw]'" in text


def test_raw_extensions_are_supported_exactly_when_rawpy_is_installed():
    has_rawpy = raw_available()
    assert (".dng" in boda_io.SUPPORTED_EXTENSIONS) == has_rawpy
    assert (".nef" in boda_io.SUPPORTED_EXTENSIONS) == has_rawpy
    assert {".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".rw2"} <= RAW_EXTENSIONS
    assert ".tif" not in RAW_EXTENSIONS and ".jpg" not in RAW_EXTENSIONS


# -- with rawpy ----------------------------------------------------------------------------

rawpy_tests = pytest.mark.skipif(not raw_available(), reason="needs the boda[raw] extra")


@rawpy_tests
def test_librraw_decodes_the_handmade_dng(tmp_path, source):
    import rawpy

    path = make_dng(tmp_path / "plain.dng", source)
    with rawpy.imread(str(path)) as raw:
        assert (raw.sizes.width, raw.sizes.height) == (384, 256)
        assert raw.raw_pattern.tolist() == [[0, 1], [3, 2]]  # RGGB (second G is 3)
        assert list(raw.black_level_per_channel) == [_BLACK] * 4
        assert raw.white_level == _WHITE
        rgb = raw.postprocess(use_camera_wb=True, output_bps=16)
    assert rgb.shape == (256, 384, 3) and rgb.dtype == np.uint16
    assert _corr(rgb / 65535.0, source) > 0.98


@rawpy_tests
def test_a_raw_read_is_the_source_photo(tmp_path, source):
    path = make_dng(tmp_path / "IMG_0001.DNG", source)
    decoded = open_image(path)
    assert decoded.pixels.dtype == np.float32 and decoded.pixels.shape == (256, 384, 3)
    assert decoded.format == "RAW (DNG)" and decoded.bit_depth == 16
    assert decoded.original_size == (384, 256)
    assert 0.0 <= decoded.pixels.min() and decoded.pixels.max() <= 1.0
    assert _corr(decoded.pixels, source) > 0.99
    # Demosaicing blurs the finest detail a little; colours and tones are the source's.
    assert np.abs(decoded.pixels - source).mean() < 0.02
    assert np.abs(decoded.pixels.mean(axis=(0, 1)) - source.mean(axis=(0, 1))).max() < 0.02
    gray = read_image(path, gray=True)
    assert gray.shape == (256, 384)


@rawpy_tests
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("preview", [None, "bitmap", "jpeg", "jpeg+exif"])
def test_every_orientation_comes_out_upright_with_and_without_a_preview(
    tmp_path, source, orientation, preview
):
    kind = None if preview is None else preview.split("+")[0]
    path = make_dng(
        tmp_path / "turned.dng", source, orientation, kind, preview_exif="exif" in (preview or "")
    )
    reference = tmp_path / "upright.png"
    Image.fromarray(np.round(source * 255).astype(np.uint8)).save(reference)
    expected = read_image(reference, max_side=200)
    decoded = open_image(path, max_side=200)
    # A preview of at least max_side stands in for the sensor data (8 bits), else LibRaw.
    assert decoded.bit_depth == (16 if preview is None else 8)
    assert decoded.format == "RAW (DNG)" and decoded.original_size == (384, 256)
    assert decoded.pixels.shape == expected.shape == (133, 200, 3)
    assert _corr(decoded.pixels, expected) > 0.97
    # ... and the same way round as a full decode of the sensor data.
    full = read_image(path)
    assert full.shape == source.shape and _corr(full, source) > 0.98
    # The wrong way round would not pass: 180 degrees off correlates far less.
    assert _corr(decoded.pixels[::-1, ::-1], expected) < 0.9
    gray = read_image(path, max_side=200, gray=True)
    assert gray.shape == (133, 200) and _corr(gray, to_gray(expected)) > 0.97


@rawpy_tests
@pytest.mark.parametrize("orientation", [6, 8])
def test_a_portrait_raw_is_read_upright_at_full_size(tmp_path, source, orientation):
    upright = np.ascontiguousarray(np.rot90(source, -1))  # a portrait photo
    path = make_dng(tmp_path / "portrait.dng", upright, orientation)
    decoded = open_image(path)
    assert decoded.original_size == (256, 384) and decoded.pixels.shape == (384, 256, 3)
    assert _corr(decoded.pixels, upright) > 0.99


@rawpy_tests
@pytest.mark.parametrize("preview", [None, "bitmap", "jpeg"])
@pytest.mark.parametrize("max_side", [64, 150, 384, 1000])
def test_max_side_is_respected(tmp_path, source, preview, max_side):
    path = make_dng(tmp_path / "a.dng", source, 1, preview)
    pixels = read_image(path, max_side=max_side)
    assert max(pixels.shape[:2]) == min(max_side, 384)
    assert abs(pixels.shape[1] / pixels.shape[0] - 1.5) < 0.02


@rawpy_tests
def test_a_preview_smaller_than_max_side_is_passed_over_for_the_sensor_data(tmp_path, source):
    path = make_dng(tmp_path / "a.dng", source, 6, "jpeg", preview_scale=4)  # 96 x 64
    small = open_image(path, max_side=64)
    assert small.bit_depth == 8 and small.pixels.shape == (43, 64, 3)  # the preview
    big = open_image(path, max_side=150)
    assert big.bit_depth == 16 and big.pixels.shape == (100, 150, 3)  # LibRaw (half size)
    assert big.original_size == small.original_size == (384, 256)
    reference = tmp_path / "upright.png"
    Image.fromarray(np.round(source * 255).astype(np.uint8)).save(reference)
    assert _corr(big.pixels, read_image(reference, max_side=150)) > 0.97
    assert _corr(small.pixels, read_image(reference, max_side=64)) > 0.97


@rawpy_tests
@pytest.mark.parametrize("preview", [None, "jpeg"])
def test_the_capture_data_is_kept_for_edits(tmp_path, source, preview):
    path = make_dng(tmp_path / "a.dng", source, 6, preview)
    decoded = open_image(path, max_side=200)
    assert decoded.exif_tags[272] == "test camera" and decoded.exif_tags[274] == 6
    out = tmp_path / "edited.jpg"
    boda_io.write_image(out, decoded.pixels, exif=decoded.exif)
    with Image.open(out) as img:
        tags = img.getexif()
    assert tags[271] == "boda" and tags[306] == "2024:05:06 07:08:09"
    assert tags[274] == 1  # the pixels are upright already
    assert 273 not in tags and 50721 not in tags  # nothing that describes the RAW data
    assert tags.get_ifd(0x8769) == {36867: "2024:05:06 07:08:09"}  # no maker note
    assert read_image(out).shape == decoded.pixels.shape


@rawpy_tests
def test_the_decompression_bomb_guard_counts_the_sensor_pixels(tmp_path, source):
    path = make_dng(tmp_path / "a.dng", source, 1, "jpeg")
    with pytest.raises(ImageReadError, match="decompression-bomb"):
        read_image(path, max_pixels=384 * 256 - 1)
    with pytest.raises(ImageReadError, match="decompression-bomb"):
        read_image(path, max_side=100, max_pixels=384 * 256 - 1)  # the preview path too
    assert read_image(path, max_pixels=384 * 256).shape == (256, 384, 3)


@rawpy_tests
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("broken.nef", b"", ImageReadError.EMPTY),
        ("broken.nef", b"garbage that is no camera's file" * 10,
         "not a recognised image format: this is a text file, not a picture"),
        ("broken.cr2", b"<!DOCTYPE html><html><body>Not found</body></html>",
         "not a recognised image format: this is a web page (HTML)"),
        ("broken.arw", b"%PDF-1.7\n" + bytes(300), "not a recognised image format: this is a PDF"),
        ("broken.dng", "truncated", ImageReadError.TRUNCATED),
        ("broken.nef", "jpeg", "not a camera RAW file: this is a JPEG image under a .nef name; "
                               "renamed .jpg it can be read"),
        ("broken.nef", bytes(range(256)) * 4,
         "unsupported NEF file: LibRaw, the RAW decoder, does not know its camera or format"),
    ],
    ids=["empty", "text", "html", "pdf", "truncated", "jpeg", "unknown"],
)
def test_a_file_libraw_cannot_read_says_why_in_plain_words(
    tmp_path, source, name, content, expected
):
    path = tmp_path / name
    if content == "truncated":
        data = make_dng(tmp_path / "whole.dng", source).read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif content == "jpeg":
        Image.fromarray(np.round(source * 255).astype(np.uint8)).save(path, "JPEG")
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.path == path
    assert info.value.reason.startswith(expected), info.value.reason
    assert "LibRaw cannot read" not in info.value.reason  # LibRaw's words: not here
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.cr2")
    folder = tmp_path / "folder.nef"
    folder.mkdir()
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(folder)


@rawpy_tests
@pytest.mark.parametrize("sensor_last", [True, False], ids=["camera-layout", "ifds-last"])
@pytest.mark.parametrize("preview", [None, "jpeg", "bitmap"])
def test_a_raw_file_cut_short_anywhere_is_truncated(tmp_path, source, sensor_last, preview):
    """A partial copy: LibRaw says "Unsupported file format" of a DNG cut before its IFDs,
    "Input/output error" of one cut in its sensor data, and reads the preview of one
    whose preview is whole: it is cut short all the same, with or without max_side."""
    whole = make_dng(tmp_path / "whole.dng", source, 6, preview, sensor_last=sensor_last)
    data = whole.read_bytes()
    cuts = [1, 7, 8, 100, len(data) // 3, len(data) // 2, len(data) - 4096, len(data) - 2]
    for cut in cuts:
        path = tmp_path / f"cut_{cut}.dng"
        path.write_bytes(data[:cut])
        for max_side in (None, 64):
            with pytest.raises(ImageReadError) as info:
                read_image(path, max_side=max_side)
            assert info.value.reason == ImageReadError.TRUNCATED, (cut, max_side)
    assert read_image(whole, max_side=64).shape == (43, 64, 3)  # whole, it reads


def _make_tiff_raw(path: Path, make: str, model: str, cfa: np.ndarray) -> Path:
    """A plain TIFF-based RAW file of ``make`` (one IFD: uncompressed 16-bit RGGB sensor
    data at the end, as cameras write it), which LibRaw reads as that camera's."""
    h, w = cfa.shape

    def layout(tiff: _Tiff) -> tuple[bytes, int]:
        offset = tiff.blob(cfa.astype("<u2").tobytes(), last=True)
        return tiff.finish(tiff.ifd({
            254: (4, [0]), 256: (4, [w]), 257: (4, [h]), 258: (3, [16]), 259: (3, [1]),
            262: (3, [32803]), 271: (2, make), 272: (2, model), 273: (4, [offset]),
            277: (3, [1]), 278: (4, [h]), 279: (4, [cfa.size * 2]),
            33421: (3, [2, 2]), 33422: (1, [0, 1, 1, 2]),
        }))

    _, tail_at = layout(_Tiff())
    return _write(path, layout(_Tiff(tail_at))[0])


@rawpy_tests
@pytest.mark.parametrize(
    ("name", "make", "model"),
    [
        ("DSC_0001.NEF", "NIKON CORPORATION", "NIKON D70"),
        ("IMGP0001.PEF", "PENTAX Corporation", "PENTAX K10D"),
        ("IMG_0001.CR2", "Canon", "Canon EOS 350D DIGITAL"),
    ],
)
def test_other_cameras_raw_files_cut_short_are_truncated(tmp_path, name, make, model):
    cfa = np.random.default_rng(0).integers(64, 4000, (128, 192))
    whole = _make_tiff_raw(tmp_path / name, make, model, cfa)
    assert read_image(whole, max_side=96).shape == (64, 96, 3)  # LibRaw reads it whole
    data = whole.read_bytes()
    for cut in (6, 100, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}_{name}"
        path.write_bytes(data[:cut])
        with pytest.raises(ImageReadError) as info:
            read_image(path, max_side=96)
        assert info.value.reason == ImageReadError.TRUNCATED, cut


def test_raw_cut_short_reads_the_structure_of_tiff_cr3_and_raf_files(tmp_path):
    path = tmp_path / "a.raw"

    def cut_short(data: bytes) -> bool | None:
        path.write_bytes(data)
        return raw_cut_short(path)

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    cr3 = box(b"ftyp", b"crx " + bytes(8)) + box(b"moov", bytes(100)) + box(b"mdat", bytes(5000))
    assert cut_short(cr3) is False
    assert cut_short(cr3[:-1]) is True and cut_short(cr3[:30]) is True
    raf = bytearray(b"FUJIFILMCCD-RAW 0201FF383501".ljust(200, b"\0"))
    raf[84:92] = struct.pack(">II", 200, 1000)  # the JPEG preview
    raf[100:108] = struct.pack(">II", 1200, 6000)  # the sensor data
    raf = bytes(raf) + bytes(7000)
    assert cut_short(raf) is False
    assert cut_short(raf[:-1]) is True and cut_short(raf[:1100]) is True
    tiff = _Tiff()
    strip = tiff.blob(bytes(4000))
    ifd = tiff.ifd({262: (3, [32803]), 273: (4, [strip]), 279: (4, [4000])})
    data, _ = tiff.finish(ifd)
    assert cut_short(data) is False and cut_short(data[:-1]) is True
    assert cut_short(b"II*\x00") is True  # not even the first IFD's offset
    assert cut_short(b"FOVb" + bytes(100)) is None  # a format not read (Sigma X3F)


@rawpy_tests
def test_libraw_errors_are_told_apart_by_kind_not_by_words(tmp_path, source):
    import rawpy

    whole = make_dng(tmp_path / "whole.dng", source)  # its structure is whole
    unknown = tmp_path / "a.x3f"
    unknown.write_bytes(b"FOVb" + bytes(1000))  # a structure not read here
    io_error = rawpy.LibRawIOError(b"Input/output error")
    assert raw_unreadable(whole, io_error, "DNG").reason.startswith(
        "damaged DNG data: the decoder stopped at a corrupt part of the file"
    )  # read past the end of a block: bad data, not a short file
    assert raw_unreadable(unknown, io_error, "X3F").reason == ImageReadError.TRUNCATED
    assert raw_unreadable(whole, rawpy.LibRawDataError(b"Corrupted data"), "DNG").reason.startswith(
        "damaged DNG data"
    )
    for error in (rawpy.LibRawUnsufficientMemoryError(b"x"), MemoryError()):
        assert raw_unreadable(whole, error, "DNG").reason == ImageReadError.OUT_OF_MEMORY
    other = raw_unreadable(whole, rawpy.LibRawTooBigError(b"Image too big for processing"), "DNG")
    assert other.reason == "cannot decode this DNG file (LibRaw: Image too big for processing)"


class _FailingSensor:
    """A RawPy whose sensor data cannot be decoded (LibRaw's error), the rest as it is."""

    def __init__(self, raw, error) -> None:
        self.raw, self.error = raw, error

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.raw.close()

    def postprocess(self, **kwargs):
        raise self.error


def _spoil_cut(jpeg: bytes) -> bytes:  # Pillow: "image file is truncated"
    return jpeg[: len(jpeg) // 2]


def _spoil_tables(jpeg: bytes) -> bytes:  # libjpeg in LibRaw: "Corrupt JPEG data: ..."
    return jpeg[:600] + bytes(300) + jpeg[900:]


def _spoil_all(jpeg: bytes) -> bytes:  # libjpeg in LibRaw: "Premature end of JPEG file"
    return b"junk" * 100


@rawpy_tests
@pytest.mark.parametrize(
    "spoil", [_spoil_cut, _spoil_tables, _spoil_all], ids=["cut", "tables", "junk"]
)
def test_a_damaged_jpeg_preview_leaves_the_file_to_its_sensor_data(
    tmp_path, source, spoil, monkeypatch, capfd
):
    """The preview is the camera's copy: when it cannot be decoded, the sensor data is
    (quietly: LibRaw's libjpeg prints its warnings), and only its failure is the file's."""
    import rawpy

    monkeypatch.setattr(boda_io._QUIET, "available", lambda: True)  # one thread: a worker
    path = make_dng(tmp_path / "a.dng", source, 6, "jpeg", spoil_preview=spoil)
    reference = tmp_path / "upright.png"
    Image.fromarray(np.round(source * 255).astype(np.uint8)).save(reference)
    capfd.readouterr()
    for max_side, shape in ((64, (43, 64, 3)), (150, (100, 150, 3)), (384, (256, 384, 3))):
        decoded = open_image(path, max_side=max_side)
        assert decoded.bit_depth == 16 and decoded.pixels.shape == shape  # LibRaw's
        assert decoded.original_size == (384, 256) and decoded.format == "RAW (DNG)"
        assert _corr(decoded.pixels, read_image(reference, max_side=max_side)) > 0.97
    assert read_image(path, max_side=100, gray=True).shape == (67, 100)
    with pytest.raises(ImageReadError, match="decompression-bomb"):
        read_image(path, max_side=100, max_pixels=384 * 256 - 1)  # the sensor's pixels
    assert capfd.readouterr().err == ""  # "Corrupt JPEG data: 65918 extraneous bytes..."

    imread = rawpy.imread
    monkeypatch.setattr(
        rawpy, "imread", lambda p: _FailingSensor(imread(p), rawpy.LibRawDataError(b"x"))
    )
    with pytest.raises(ImageReadError) as info:
        read_image(path, max_side=100)  # neither: the sensor data's reason, in words
    assert info.value.reason.startswith("damaged DNG data"), info.value.reason
    good = make_dng(tmp_path / "good.dng", source, 6, "jpeg")
    assert read_image(good, max_side=100).shape == (67, 100, 3)  # a whole preview still reads


@rawpy_tests
def test_a_scan_reads_raw_files_like_any_photo(two_photos, source):
    make_dng(two_photos / "IMG_0003.DNG", source, orientation=6, preview="jpeg")
    make_dng(two_photos / "IMG_0004.dng", source)
    summary = scan(two_photos, workers=1)
    assert summary.raw_files == {} and summary.total == 4 and not summary.failed
    records = {r["path"]: r for r in catalog_records(summary.catalog_path)}
    for name in ("IMG_0003.DNG", "IMG_0004.dng"):
        record = records[name]
        assert record["status"] == "ok" and record["format"] == "RAW (DNG)"
        assert (record["width"], record["height"]) == (384, 256)  # upright, both
        assert record["scores"]["blurry"] > 0 and 0 < record["scores"]["mean_lightness"] < 1


def test_a_fresh_interpreter_without_rawpy_leaves_raw_out_and_never_imports_it(tmp_path):
    raw = tmp_path / "IMG_1.dng"
    raw.write_bytes(b"II*\x00 sensor data")
    code = f"""
import importlib.abc, sys

class _Missing(importlib.abc.MetaPathFinder):  # as if rawpy were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "rawpy":
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

if sys.argv[1] == "blocked":
    sys.meta_path.insert(0, _Missing())
from boda.errors import ImageReadError
from boda.io import SUPPORTED_EXTENSIONS
import boda.scan
print(".dng" in SUPPORTED_EXTENSIONS, "rawpy" in sys.modules)
try:
    from boda.io import read_image
    read_image({str(raw)!r})
except ImageReadError as exc:
    print(exc.reason)
"""
    import subprocess

    blocked = subprocess.run(
        [sys.executable, "-c", code, "blocked"], capture_output=True, text=True, timeout=120
    )
    assert blocked.returncode == 0, blocked.stderr
    lines = blocked.stdout.splitlines()
    assert lines == ["False False", "camera RAW needs the raw extra: pip install 'boda[raw]'"]
    if raw_available():
        free = subprocess.run(
            [sys.executable, "-c", code, "free"], capture_output=True, text=True, timeout=120
        )
        assert free.returncode == 0, free.stderr
        # Listed, yet not imported until a RAW file is read (a fifth of a second).
        assert free.stdout.splitlines()[0] == "True False"
