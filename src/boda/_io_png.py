"""PNG metadata that Pillow refuses to inflate, inflated here within a budget.

Pillow stops reading a PNG as soon as one compressed text chunk (``zTXt``, a
compressed ``iTXt``) or colour profile (``iCCP``) inflates past
``PngImagePlugin.MAX_TEXT_CHUNK`` (1 MB): its guard against text bombs, a few
kilobytes that inflate to gigabytes.  Real files cross it (XMP packets with long
edit histories or generous padding, large press or camera profiles; python-pillow
issues 2445 and 8363), and browsers, GIMP and OpenCV show them.  Lifting Pillow's
limit would change a global every thread of the process reads, so the file is
read again from a copy of its bytes in which those chunks are inflated here,
against one budget for the whole file (Pillow's own for all the text of an image,
``MAX_TEXT_MEMORY``, 64 MB): a bomb is still refused, in words that say so.

The copy holds ``zTXt`` as ``tEXt`` and compressed ``iTXt`` as uncompressed
``iTXt`` (the same text, which Pillow reads without its limit); the colour
profile is left out of it and handed back, for the caller to put where Pillow
would have (``info["icc_profile"]``).  Every other chunk is copied as it is, CRC
included, so damage is still found and told by Pillow.

References
----------
.. [1] W3C, "Portable Network Graphics (PNG) Specification (Third Edition)",
       2025, sec. 11.3.2.3 (iCCP), 11.3.3.3-11.3.3.5 (tEXt, zTXt, iTXt).
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["PNG_METADATA_BUDGET", "PngMetadataTooLarge", "inflated_metadata", "refused_for_size"]

#: Most bytes inflated from one PNG's compressed metadata chunks together: Pillow's
#: budget for all the text of one image (``PngImagePlugin.MAX_TEXT_MEMORY``).
PNG_METADATA_BUDGET = 64 << 20


class PngMetadataTooLarge(ValueError):
    """The compressed metadata of a PNG inflates past :data:`PNG_METADATA_BUDGET`."""


def refused_for_size(exc: BaseException) -> bool:
    """Whether ``exc`` is Pillow refusing a PNG chunk that inflates past its limit
    ("Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK"; older Pillows
    said "Decompressed Data Too Large")."""
    return isinstance(exc, ValueError) and "decompressed data too large" in str(exc).lower()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


class _Inflater:
    """zlib inflation against one budget shared by every chunk of a file."""

    def __init__(self, budget: int):
        self.budget = budget
        self.left = budget

    def __call__(self, compressed: bytes) -> bytes | None:
        """The inflated bytes, or None for a stream zlib cannot read (the chunk is then
        copied as it is, for Pillow to deal with as it always does)."""
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(compressed, self.left + 1)
        except zlib.error:
            return None
        if len(out) > self.left or inflater.unconsumed_tail:
            raise PngMetadataTooLarge(
                f"its metadata, text or colour profile, inflates to more than "
                f"{self.budget >> 20} MB, far beyond any photo's: a decompression bomb? "
                "If the file is trusted, save it again without its metadata"
            )
        self.left -= len(out)
        return out


def _plain_chunk(kind: bytes, body: bytes, inflate: _Inflater) -> bytes | None:
    """``kind``/``body`` rewritten uncompressed, or None to keep the chunk as it is."""
    keyword, zero, rest = body.partition(b"\0")
    if not zero:
        return None
    if kind == b"zTXt" and rest[:1] == b"\0":  # method 0 (deflate), then the text
        text = inflate(rest[1:])
        return None if text is None else _chunk(b"tEXt", keyword + b"\0" + text)
    if kind == b"iTXt" and rest[:2] == b"\1\0":  # compressed, with deflate
        language, zero1, tail = rest[2:].partition(b"\0")
        translated, zero2, compressed = tail.partition(b"\0")
        if not (zero1 and zero2):
            return None
        text = inflate(compressed)
        if text is None:
            return None
        header = keyword + b"\0\0\0" + language + b"\0" + translated + b"\0"
        return _chunk(b"iTXt", header + text)
    return None


def inflated_metadata(data: bytes, budget: int | None = None) -> tuple[bytes, bytes | None]:
    """The PNG ``data`` with its compressed metadata inflated, and its colour profile.

    Parameters
    ----------
    data : bytes
        A whole PNG file.
    budget : int, optional
        Most bytes to inflate, all chunks together (default
        :data:`PNG_METADATA_BUDGET`).

    Returns
    -------
    (bytes, bytes or None)
        The file to give Pillow instead (see the module's notes) and the inflated
        ICC profile of its ``iCCP`` chunk, if it has one.

    Raises
    ------
    PngMetadataTooLarge
        The chunks inflate to more than ``budget`` bytes.
    """
    inflate = _Inflater(PNG_METADATA_BUDGET if budget is None else budget)
    out, profile, at = [data[:8]], None, 8
    while at + 12 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, end = data[at + 4 : at + 8], at + 12 + length
        if end > len(data):
            break  # cut short: Pillow says so, from what is copied below
        body = data[at + 8 : end - 4]
        if kind == b"iCCP":
            if profile is None:
                _name, zero, rest = body.partition(b"\0")
                profile = inflate(rest[1:]) if zero and rest[:1] == b"\0" else None
            if profile is not None:  # handed back, not copied; a second one (the
                at = end  # format allows one) is left out with it
                continue
        replaced = _plain_chunk(kind, body, inflate) if kind in (b"zTXt", b"iTXt") else None
        out.append(data[at:end] if replaced is None else replaced)
        at = end
        if kind == b"IEND":
            break
    out.append(data[at:])
    return b"".join(out), profile
