"""Failure reasons of image reading in words a photographer can act on.

Decoders say "broken data stream when reading image file", "cannot identify image
file <_io.BytesIO object at 0x7f...>" or "decoder error -2"; :mod:`boda.io` turns
each failure into an :class:`~boda.errors.ImageReadError` whose reason names what
is wrong (empty, cut short, damaged, another kind of file) and, where there is one,
the fix.  The sentences shared with other modules live on ``ImageReadError``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from PIL import Image

from boda.errors import ImageReadError

__all__ = ["pillow_refused", "undecodable", "unidentified"]


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


def _cut_short(path: Path, fmt: str | None) -> bool:
    """Whether ``path`` visibly ends before its format's end does: no JPEG end-of-image
    marker, PNG ``IEND`` or GIF trailer in its last bytes, fewer bytes than a WebP's
    RIFF header announces.  False where the format has no such end (TIFF)."""
    head, tail, length = _head_and_tail(path)
    fmt = (fmt or _format_of(head) or "").upper()
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


def undecodable(path: Path, exc: BaseException, fmt: str | None) -> ImageReadError:
    """The error for a decoder that stopped on ``path`` (Pillow recognised it as ``fmt``,
    or nothing), in words a photographer can act on; see :class:`ImageReadError`."""
    if isinstance(exc, MemoryError):
        return ImageReadError(path, ImageReadError.OUT_OF_MEMORY)
    if isinstance(exc, OSError) and exc.errno is not None:  # the system's, not a decoder's
        return ImageReadError(
            path, f"the file could not be read ({exc.strerror or exc}: a failing disk, or a "
            "share or card that went away?)",
        )
    text = _plain(str(exc))
    damaged = not text or bool(_DAMAGED_WORDS.search(text))
    if isinstance(exc, EOFError) or _CUT_SHORT_WORDS.search(text) or (
        damaged and _cut_short(path, fmt)
    ):
        return ImageReadError(path, ImageReadError.TRUNCATED)
    fmt = fmt or _format_of(_head_and_tail(path)[0]) or "image"
    if damaged:
        return ImageReadError(
            path,
            f"damaged {fmt} data: the decoder stopped at a corrupt part of the file (a disk "
            "or transfer error?); the original or a backup may be intact",
        )
    return ImageReadError(path, f"cannot decode this {fmt} file ({text})")


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
    what = f"this is {other}" if other else (
        "its content is no image format boda reads (a file of another kind renamed?)"
    )
    return ImageReadError(path, f"not a recognised image format: {what}")
