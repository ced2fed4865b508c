"""Failure reasons of image reading in words a photographer can act on.

Decoders say "broken data stream when reading image file", "cannot identify image
file <_io.BytesIO object at 0x7f...>" or "decoder error -2"; :mod:`boda.io` turns
each failure into an :class:`~boda.errors.ImageReadError` whose reason names what
is wrong (empty, cut short, damaged, another kind of file) and, where there is one,
the fix.  LibRaw's failures on camera RAW files get the same sentences
(:func:`raw_unreadable`), told by the kind of its error and the file's own structure
(:func:`raw_cut_short`), not by its words.  The sentences shared with other modules
live on ``ImageReadError``.
"""

from __future__ import annotations

import errno
import os
import re
import struct
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from boda.errors import ImageReadError

__all__ = ["pillow_refused", "raw_cut_short", "raw_unreadable", "undecodable", "unidentified"]


def pillow_refused(path: Path, exc: Image.DecompressionBombError) -> ImageReadError:
    """The refusal of a file by Pillow's own decompression-bomb guard, before boda saw it."""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    found = re.search(r"\((\d+) pixels\)", str(exc))  # "Image size (400000000 pixels)..."
    what = f"{found[1]} pixels exceeds" if found else "the image size exceeds"
    return ImageReadError(
        path,
        f"too many pixels to open safely: {what} the limit of {limit} pixels (Pillow's "
        "decompression-bomb guard); max_side decodes only a JPEG at reduced size; if the "
        "file is trusted: --max-pixels none (in Python: PIL.Image.MAX_IMAGE_PIXELS = None "
        "and max_pixels=None)",
    )


#: First bytes of the image formats boda reads, to name the format of a file Pillow
#: could not open (its header is damaged) or that it stopped decoding.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)

#: What files that are not images, met under an image's name, are (their first bytes).
_OTHER_KINDS = (
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"),
    (b"8BPS", "a Photoshop document (PSD); export it as TIFF, PNG or JPEG"),
    (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
)

#: Decoders' words for a file that ends before its image does.
_CUT_SHORT_WORDS = re.compile(r"image file is truncated|truncated file read", re.IGNORECASE)
#: Decoders' words for image data they cannot go on with (nothing a user can act on).
_DAMAGED_WORDS = re.compile(
    r"broken data stream|decoder error|could not create decoder object|broken png file"
    r"|unknown (compression|filter) method|tile cannot extend outside image"
    r"|buffer is not large enough|incorrect (header|data) check|invalid (code|distance|block)"
    r"|truncated \w+ chunk|bad (header )?checksum|crc",
    re.IGNORECASE,
)


def _head_and_tail(path: Path, size: int = 64) -> tuple[bytes, bytes, int]:
    """The first 4096 and last ``size`` bytes of ``path`` and its length (empty, 0: unreadable)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            length = f.seek(0, os.SEEK_END)
            f.seek(max(0, length - size))
            return head, f.read(), length
    except OSError:
        return b"", b"", 0


def _format_of(head: bytes) -> str | None:
    """The image format that ``head``, a file's first bytes, begins (see :data:`_SIGNATURES`)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"avif", b"avis"):
        return "AVIF" if head[8:11] == b"avi" else "HEIF"
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


#: Formats whose files show where they end (an end marker, sizes in their header or
#: boxes): :func:`_cut_short` tells for sure whether such a file is whole.
_ENDED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "WEBP", "AVIF", "HEIF"})


def _cut_short(path: Path, fmt: str | None) -> bool:
    """Whether ``path`` visibly ends before its format's end does: no JPEG end-of-image
    marker, PNG ``IEND`` or GIF trailer in its last bytes, fewer bytes than a WebP's
    RIFF header announces, an AVIF or HEIC box reaching past the end.  False where the
    format has no such end (TIFF)."""
    head, tail, length = _head_and_tail(path)
    fmt = (fmt or _format_of(head) or "").upper()
    if fmt in ("AVIF", "HEIF"):
        try:
            with open(path, "rb") as f:
                return bool(_bmff_cut_short(f, length))
        except (OSError, struct.error):
            return False
    if fmt == "JPEG" or fmt == "MPO":
        return b"\xff\xd9" not in tail
    if fmt == "PNG":
        return b"IEND\xaeB`\x82" not in tail
    if fmt == "GIF":
        return not tail.rstrip(b"\x00").endswith(b";")
    if fmt == "WEBP" and head[:4] == b"RIFF":
        return length < int.from_bytes(head[4:8], "little") + 8
    return False


def _plain(text: str) -> str:
    """A decoder's message without what differs from file to file or means nothing to a
    user: Python object reprs (``<_io.BytesIO object at 0x7f...>``), Pillow's count of
    bytes not processed (files cut at different lengths share one reason)."""
    text = re.sub(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>", "", text)
    text = re.sub(r" \(\d+ bytes? not processed\)", "", text)
    return " ".join(text.split()).rstrip(" .:;")


#: System errors that say what is wrong with the path itself, where "a failing disk"
#: would send the user looking at the hardware.
_PATH_ERRORS = {
    errno.ENOTDIR: "a folder in the path is a file, not a folder",
    errno.ELOOP: "the path goes round a loop of symbolic links",
    errno.ENAMETOOLONG: "the path (or a name in it) is longer than the system allows",
}


def undecodable(path: Path, exc: BaseException, fmt: str | None) -> ImageReadError:
    """The error for a decoder that stopped on ``path`` (Pillow recognised it as ``fmt``,
    or nothing), in words a photographer can act on; see :class:`ImageReadError`."""
    if isinstance(exc, MemoryError):
        return ImageReadError(path, ImageReadError.OUT_OF_MEMORY)
    if isinstance(exc, OSError) and exc.errno in _PATH_ERRORS:  # the path, not the disk
        return ImageReadError(path, _PATH_ERRORS[exc.errno])
    if isinstance(exc, OSError) and exc.errno is not None:  # the system's, not a decoder's
        return ImageReadError(
            path, f"the file could not be read ({exc.strerror or exc}: a failing disk, or a "
            "share or card that went away?)",
        )
    text = _plain(str(exc))
    damaged = not text or bool(_DAMAGED_WORDS.search(text))
    fmt = fmt or _format_of(_head_and_tail(path)[0])
    ended = (fmt or "").upper() in _ENDED_FORMATS
    if isinstance(exc, EOFError) or _CUT_SHORT_WORDS.search(text):
        # A decoder that ran out of image data in a file that ends where its format
        # says it should met a damaged (zeroed, overwritten) part, not the file's end.
        cut = not ended or _cut_short(path, fmt)
        return ImageReadError(path, ImageReadError.TRUNCATED) if cut else _damaged(path, fmt)
    # Where the boxes tell it for sure (AVIF, HEIC), whatever words the decoder used.
    boxes = (fmt or "").upper() in ("AVIF", "HEIF")
    if (damaged or boxes) and _cut_short(path, fmt):
        return ImageReadError(path, ImageReadError.TRUNCATED)
    fmt = fmt or "image"
    if damaged:
        return _damaged(path, fmt)
    return ImageReadError(path, f"cannot decode this {fmt} file ({text})")


def _damaged(path: Path, fmt: str) -> ImageReadError:
    return ImageReadError(
        path,
        f"damaged {fmt} data: the decoder stopped at a corrupt part of the file (a disk "
        "or transfer error?); the original or a backup may be intact",
    )


def unidentified(path: Path, heif_missing: bool = False) -> ImageReadError:
    """The error for a file Pillow recognises as no image format: empty, one whose image
    header is damaged, HEIC/AVIF without its plug-in (``heif_missing``), text, a web
    page, a document or an archive, or something else."""
    head, _, length = _head_and_tail(path)
    if length == 0:
        return ImageReadError(path, ImageReadError.EMPTY)
    if heif_missing:
        return ImageReadError(
            path, "HEIC/HEIF support is not installed; pip install 'boda[heif]'"
        )
    fmt = _format_of(head)
    if fmt is not None:
        cut = _cut_short(path, fmt)
        return ImageReadError(
            path,
            ImageReadError.TRUNCATED if cut else (
                f"damaged {fmt} file: it begins as one, but its header cannot be read "
                "(cut short or overwritten?)"
            ),
        )
    other = _other_kind(head)
    what = f"this is {other}" if other else (
        "its content is no image format boda reads (a file of another kind renamed?)"
    )
    return ImageReadError(path, f"not a recognised image format: {what}")


def _other_kind(head: bytes) -> str | None:
    """What a file that is no image is, by ``head``, its first bytes: a document, an
    archive, a web page, text...; None when it is none of those."""
    other = next((kind for magic, kind in _OTHER_KINDS if head.startswith(magic)), None)
    if other is None and head and b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:  # a multi-byte character cut at 4096 bytes
            text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else None
        if text is not None:
            lowered = text.lstrip("\ufeff \t\r\n").lower()
            if lowered.startswith(("<!doctype html", "<html")) or "<html" in lowered[:512]:
                other = "a web page (HTML), not a picture: often what a failed download saves"
            elif lowered.startswith("<svg") or "<svg" in lowered[:512]:
                other = "an SVG drawing, which boda does not read"
            else:
                other = "a text file, not a picture"
    return other


#: How far past a RAW file's end a block other than its sensor data (a preview) may
#: reach before the file counts as cut short: LibRaw itself reads a preview up to 16 KiB
#: past the end (THUMB_READ_BEYOND), as some cameras write them so.
_RAW_OVERSHOOT = 16384
#: IFDs walked at most (a loop of IFD pointers, or garbage, ends there), and the most
#: entries an IFD has (LibRaw's limit: more is no IFD).
_MAX_IFDS, _MAX_ENTRIES = 64, 512
#: The TIFF magic numbers of TIFF-based RAW files: TIFF (DNG, NEF, CR2, ARW, PEF...),
#: Olympus ORF ("RO", "SR"), Panasonic RW2 (0x55).
_TIFF_MAGICS = frozenset({42, 0x4F52, 0x5352, 0x55})
#: Tags that give a block of image data, as (offsets, byte counts): strips, tiles and a
#: JPEG preview (JPEGInterchangeFormat); 330 lists more IFDs (SubIFDs); 262 tells sensor
#: data (PhotometricInterpretation CFA or LinearRaw) from a preview.
_DATA_TAGS = ((273, 279), (324, 325), (513, 514))
_SUB_IFDS, _PHOTOMETRIC, _SENSOR_PHOTOMETRICS = 330, 262, (32803, 34892)
_INT_TYPES = {3: "H", 4: "I", 13: "I"}  # SHORT, LONG, IFD
#: How the RAW files read here begin: TIFF-based ones (little and big endian, ORF, RW2), RAF.
_RAW_MAGICS = (
    b"II*\x00", b"MM\x00*", b"IIRO", b"MMOR", b"IISR", b"IIU\x00", b"FUJIFILMCCD-RAW ",
)


def raw_cut_short(path: Path) -> bool | None:
    """Whether the camera RAW file ``path`` ends before the data its own structure points
    at: the IFDs and image data blocks of a TIFF-based file (DNG, NEF, CR2, ARW, ORF,
    RW2...), the boxes of a CR3, the preview and sensor data of a RAF.  True: cut short;
    False: all its image data lie inside the file; None: a format not read here, or
    no image data found (LibRaw's error then decides)."""
    try:
        with open(path, "rb") as f:
            length = f.seek(0, os.SEEK_END)
            f.seek(0)
            head = f.read(128)
            if len(head) < 16 and any(magic.startswith(head) for magic in _RAW_MAGICS):
                return True  # the first bytes of a RAW file's header, no more
            if head.startswith(b"FUJIFILMCCD-RAW"):
                return _raf_cut_short(head, length)
            if head[4:8] == b"ftyp":
                return _bmff_cut_short(f, length)
            if head[:2] in (b"II", b"MM"):
                return _tiff_cut_short(f, head, length)
    except (OSError, struct.error):
        return None
    return None


def _tiff_cut_short(f: BinaryIO, head: bytes, length: int) -> bool | None:
    if length < 8:
        return True
    order = "<" if head[:2] == b"II" else ">"
    magic, first = struct.unpack(order + "HI", head[2:8])
    if magic not in _TIFF_MAGICS:
        return None
    blocks = []  # (end, bytes, sensor data?) of each IFD's image data
    todo, seen = [(first, True)], set()
    while todo and len(seen) < _MAX_IFDS:
        offset, pointed = todo.pop()  # pointed: by the header or a SubIFDs tag, not "next"
        if offset == 0 or offset in seen:
            continue
        seen.add(offset)
        if offset + 2 > length:
            if pointed:
                return True
            continue  # a garbage "next IFD" pointer, which LibRaw passes over too
        f.seek(offset)
        (count,) = struct.unpack(order + "H", f.read(2))
        if count > _MAX_ENTRIES:
            continue  # no IFD (LibRaw stops there too)
        if offset + 2 + 12 * count + 4 > length:
            if pointed:
                return True
            continue
        table = f.read(12 * count + 4)
        values: dict[int, tuple[int, ...]] = {}
        for i in range(count):
            tag, kind, n = struct.unpack_from(order + "HHI", table, 12 * i)
            code = _INT_TYPES.get(kind)
            wanted = tag in (_SUB_IFDS, _PHOTOMETRIC) or any(tag in t for t in _DATA_TAGS)
            if code is None or not wanted:
                continue
            size = n * struct.calcsize(code)
            if size <= 4:
                data = table[12 * i + 8 : 12 * i + 8 + size]
            else:
                (at,) = struct.unpack_from(order + "I", table, 12 * i + 8)
                if at + size > length:
                    return True
                f.seek(at)
                data = f.read(size)
            values[tag] = struct.unpack(f"{order}{n}{code}", data)
        (following,) = struct.unpack_from(order + "I", table, 12 * count)
        todo.append((following, False))
        todo.extend((sub, True) for sub in values.get(_SUB_IFDS, ()))
        for offsets_tag, counts_tag in _DATA_TAGS:
            offsets, counts = values.get(offsets_tag, ()), values.get(counts_tag, ())
            pairs = [(at, n) for at, n in zip(offsets, counts, strict=False) if at > 0 and n > 0]
            if pairs:
                sensor = values.get(_PHOTOMETRIC, (0,))[0] in _SENSOR_PHOTOMETRICS
                blocks.append((max(at + n for at, n in pairs), sum(n for _, n in pairs), sensor))
    return _blocks_cut_short(blocks, length)


def _blocks_cut_short(blocks: list[tuple[int, int, bool]], length: int) -> bool | None:
    """Whether image data blocks ``(end, bytes, sensor data?)`` reach past ``length``: the
    sensor data (where none is told, the biggest block) at all, another by more than
    :data:`_RAW_OVERSHOOT`."""
    if not blocks:
        return None
    sensor = [end for end, _, is_sensor in blocks if is_sensor] or [
        max(blocks, key=lambda block: block[1])[0]
    ]
    return max(sensor) > length or any(end > length + _RAW_OVERSHOOT for end, _, _ in blocks)


def _bmff_cut_short(f: BinaryIO, length: int) -> bool | None:
    """A CR3 (ISO base media file): whether its top-level boxes reach past its end."""
    at = 0
    for _ in range(1000):
        if at >= length:
            return at > length
        f.seek(at)
        header = f.read(16)
        if len(header) < 8:
            return False  # a few bytes after the last box
        (size,) = struct.unpack(">I", header[:4])
        if size == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                return True
            (size,) = struct.unpack(">Q", header[8:16])
        elif size == 0:  # to the end of the file
            return False
        if size < 8:
            return None  # no box structure
        at += size
    return None


def _raf_cut_short(head: bytes, length: int) -> bool | None:
    """A Fujifilm RAF: whether its JPEG preview or its sensor data (offsets and lengths
    at bytes 84 and 100 of its header) reach past its end."""
    if len(head) < 108:
        return True
    jpeg_at, jpeg_bytes = struct.unpack(">II", head[84:92])
    cfa_at, cfa_bytes = struct.unpack(">II", head[100:108])
    blocks = [
        (at + n, n, sensor)
        for at, n, sensor in ((jpeg_at, jpeg_bytes, False), (cfa_at, cfa_bytes, True))
        if at and n
    ]
    return _blocks_cut_short(blocks, length)


#: Extensions of image files that, named as RAW files, LibRaw refuses.
_RENAMED = {
    "JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WebP": ".webp", "HEIF": ".heic",
    "AVIF": ".avif",
}


def raw_unreadable(path: Path, exc: BaseException, kind: str) -> ImageReadError:
    """The error for LibRaw (through rawpy) failing on the camera RAW file ``path`` of
    ``kind`` (``"DNG"``, ``"NEF"``...).  Told by LibRaw's error class and the file's own
    structure, not LibRaw's words: it says "Unsupported file format or not RAW file" of
    a DNG cut short before its IFDs, "Input/output error" of one cut in its sensor data."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, MemoryError) or names & {
        "LibRawUnsufficientMemoryError", "LibRawMemPoolOverflowError",
    }:
        return ImageReadError(path, ImageReadError.OUT_OF_MEMORY)
    if "LibRawError" not in names:  # the system's, Pillow's, numpy's
        return undecodable(path, exc, kind)
    cut_short = raw_cut_short(path)
    if cut_short:
        return ImageReadError(path, ImageReadError.TRUNCATED)
    head = _head_and_tail(path)[0]
    fmt = _format_of(head)
    if fmt in _RENAMED:
        return ImageReadError(
            path,
            f"not a camera RAW file: this is a {fmt} image under a {path.suffix} name; "
            f"renamed {_RENAMED[fmt]} it can be read",
        )
    other = _other_kind(head)
    if other is not None:
        return ImageReadError(path, f"not a recognised image format: this is {other}")
    # LibRaw's I/O error is its reading past the end of the file (or of a block in it):
    # where the file's structure is not read here, the file most likely ends too soon.
    if cut_short is None and "LibRawIOError" in names:
        return ImageReadError(path, ImageReadError.TRUNCATED)
    if names & {"LibRawIOError", "LibRawDataError"}:
        return _damaged(path, kind)
    if names & {"LibRawFileUnsupportedError", "LibRawNotImplementedError"}:
        return ImageReadError(
            path,
            f"unsupported {kind} file: LibRaw, the RAW decoder, does not know its camera or "
            "format (a newer one may: pip install -U rawpy), or its header is damaged",
        )
    words = exc.args[0] if exc.args else type(exc).__name__
    words = words.decode(errors="replace") if isinstance(words, bytes) else str(words)
    return ImageReadError(path, f"cannot decode this {kind} file (LibRaw: {_plain(words)})")
