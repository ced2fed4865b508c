"""A photo's descriptive metadata beyond EXIF: its XMP packet and its print resolution.

Edits write both back (:func:`boda.io.write_image`'s ``xmp`` and ``dpi``), so a
retouched photo keeps what a cataloguing program put in it: the rating, labels,
keywords, title and copyright that Lightroom, darktable or digiKam keep in XMP
(Adobe, *XMP Specification Part 3*, 2020: where each format embeds the packet),
and the size it prints at.
"""

from __future__ import annotations

import re

from PIL import Image

__all__ = ["file_dpi", "file_xmp", "scaled_dpi"]

# tiff:Orientation as an attribute or as an element (XMP Specification Part 1, 7.9.2.2
# and 7.9.2.1): both serialisations occur in the wild.
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation\s*=\s*["\']|<tiff:Orientation>\s*)[1-8]')

#: Below this many dots per inch a resolution is a placeholder, not a print size: JFIF
#: and TIFF writers that know none put 1 (a 1 x 1 inch pixel).
_MIN_DPI = 2.0


def file_xmp(img: Image.Image, turned: bool) -> bytes | None:
    """The XMP packet of ``img`` as Pillow found it (JPEG APP1, PNG ``iTXt``
    ``XML:com.adobe.xmp``, TIFF tag 700, WebP/AVIF/HEIC ``XMP`` chunk or item), or None.

    ``turned``: the pixels were turned by the EXIF orientation, so a
    ``tiff:Orientation`` in the packet is set to 1 too (as the EXIF block's is);
    otherwise a viewer that reads XMP would turn the pixels a second time.
    """
    packet = img.info.get("xmp")
    if packet is None and img.format == "TIFF":
        packet = getattr(img, "tag_v2", {}).get(700)
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    elif isinstance(packet, tuple):  # a TIFF tag of BYTE values read as numbers
        packet = bytes(packet)
    if not isinstance(packet, bytes | bytearray) or not bytes(packet).strip(b"\0 \t\r\n"):
        return None
    packet = bytes(packet)
    return _XMP_ORIENTATION.sub(rb"\g<1>1", packet) if turned else packet


def file_dpi(img: Image.Image) -> tuple[float, float] | None:
    """The print resolution of ``img`` in dots per inch (JPEG JFIF density, PNG
    ``pHYs``, TIFF X/YResolution as Pillow reads them), or None when the file gives
    none, gives no unit, or gives a placeholder below 2 dpi."""
    dpi = img.info.get("dpi")
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    if not (_MIN_DPI <= x < 1e6 and _MIN_DPI <= y < 1e6):  # also NaN
        return None
    return x, y


def scaled_dpi(
    dpi: tuple[float, float] | None, original_size: tuple[int, int], size: tuple[int, int]
) -> tuple[float, float] | None:
    """``dpi`` of an image of ``original_size`` (width, height) for the same picture
    at ``size``: a copy shrunk to half the pixels prints at the same size at half
    the resolution."""
    if dpi is None or min(original_size) <= 0:
        return dpi
    return (dpi[0] * size[0] / original_size[0], dpi[1] * size[1] / original_size[1])
