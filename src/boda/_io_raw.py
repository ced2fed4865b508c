"""Camera RAW files, read through LibRaw (the optional ``rawpy`` package).

:func:`boda.io.open_image` hands a file with a RAW extension (:data:`RAW_EXTENSIONS`)
to :func:`open_raw`.  Two ways to pixels:

- the camera's embedded preview (``LibRaw::unpack_thumb``), when a ``max_side``
  is asked for and the preview has at least that many pixels on its longer side:
  a JPEG preview goes through boda's JPEG path (draft mode, the same resize), a
  bitmap one is converted as is.  This is what a scan (640 pixels) uses: a
  full-size preview decodes ten to fifty times faster than the sensor data.  A
  preview that cannot be decoded (cut short, damaged) is passed over;
- otherwise the sensor data itself, demosaiced by LibRaw with the camera's white
  balance into 16-bit sRGB (``postprocess``; ``half_size`` when half the
  resolution still covers ``max_side``).

Both come out upright: LibRaw turns the demosaiced image by the file's
orientation; a preview is stored the way the sensor was, so it is turned the same
way, unless its own EXIF block says how to turn it (then that is obeyed instead).

A file whose structure points past its end is cut short before LibRaw is asked
(:func:`boda._io_reasons.raw_cut_short`); LibRaw's failures are told in the words
of other formats' (:func:`boda._io_reasons.raw_unreadable`), and what it prints to
descriptor 2 is dropped where it may be (:class:`boda.io._QuietDecoder`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import struct
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from boda._io_reasons import raw_cut_short, raw_unreadable
from boda.core.image import as_float_image, to_gray
from boda.errors import ImageReadError

if TYPE_CHECKING:  # boda.io imports this module: its names are imported where used
    from boda.io import DecodedImage

__all__ = ["RAW_EXTENSIONS", "open_raw", "raw_available"]

#: Camera RAW formats (lower case, with the dot): read with the ``boda[raw]`` extra,
#: otherwise a scan counts them and says how to read them.
RAW_EXTENSIONS = frozenset({
    ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".k25",
    ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw",
    ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
})  # fmt: skip

MISSING_EXTRA = "camera RAW needs the raw extra: pip install 'boda[raw]'"

#: LibRaw's ``flip`` (bit 0: mirror left-right, bit 1: upside down, bit 2: transpose
#: first) as the EXIF orientation it was read from (LibRaw's ``"50132467"[tag & 7]``).
_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

#: A preview is used only if it shows the whole frame: aspect ratio within 3 %.
_ASPECT_TOLERANCE = 0.03

#: What a RAW container's first IFD holds that is worth keeping with the pixels (camera,
#: date, author, orientation, EXIF and GPS blocks), not its tags that describe the RAW
#: data itself (strip offsets, CFA layout, DNG colour matrices).
_KEPT_TAGS = (271, 272, 274, 305, 306, 315, 33432)
_EXIF_IFD, _GPS_IFD, _MAKER_NOTE = 0x8769, 0x8825, 0x927C

#: sRGB's tone curve for LibRaw (power 2.4, toe slope 12.92; IEC 61966-2-1),
#: instead of its default BT.709 curve.
_SRGB_GAMMA = (2.4, 12.92)


def raw_available() -> bool:
    """Whether camera RAW files can be read (the ``boda[raw]`` extra, ``rawpy``, is installed).

    Looked up without importing ``rawpy`` (a fifth of a second), which happens
    on the first RAW file read.
    """
    try:
        return importlib.util.find_spec("rawpy") is not None
    except (ImportError, ValueError):
        return False


def _rawpy(path: Path) -> ModuleType:
    try:
        import rawpy  # type: ignore[import-not-found]
    except ImportError:
        raise ImageReadError(path, MISSING_EXTRA) from None
    return rawpy


def _rawpy_source(path: Path) -> str | io.BytesIO:
    """What ``rawpy.imread`` opens ``path`` from: the path, which rawpy encodes as
    UTF-8, or the file's bytes when its name is no UTF-8 (``café`` written in
    Latin-1 on an old card or share): rawpy would fail on encoding the name."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        with open(path, "rb") as f:
            return io.BytesIO(f.read())
    return name


def open_raw(
    path: Path,
    max_side: int | None,
    *,
    gray: bool,
    max_pixels: int | None,
    resample: Image.Resampling,
    color: str,
) -> DecodedImage:
    """Read the camera RAW file ``path`` as :func:`boda.io.open_image` does (see the module).

    Raises
    ------
    ImageReadError
        ``rawpy`` is not installed, the file is too large (``max_pixels``), or
        cannot be read: its reason says why in plain words (cut short, damaged data,
        not a RAW file, a camera LibRaw does not know...), whatever LibRaw's words.
    """
    from boda.io import _QUIET

    rawpy = _rawpy(path)
    kind = path.suffix.lower().lstrip(".").upper()
    try:
        # LibRaw reports a missing file, a folder or a permission as "I/O error".
        with open(path, "rb") as f:
            if not f.read(1):
                raise ImageReadError(path, ImageReadError.EMPTY)
        # A file that ends before its sensor data is cut short even where LibRaw says
        # otherwise, or nothing: it reads a preview before the cut, and may demosaic
        # compressed data it ran out of as black.
        if raw_cut_short(path):
            raise ImageReadError(path, ImageReadError.TRUNCATED)
        # LibRaw prints what it meets ("Unexpected end of file", libjpeg's "Corrupt JPEG
        # data" about a damaged preview) to descriptor 2: dropped where it may be (a
        # scan's worker); its errors say as much.
        with _QUIET.silenced():
            raw = rawpy.imread(_rawpy_source(path))
        with raw:
            sizes = raw.sizes
            if max_pixels is not None and sizes.raw_width * sizes.raw_height > max_pixels:
                raise ImageReadError(
                    path,
                    f"{sizes.raw_width}x{sizes.raw_height} = {sizes.raw_width * sizes.raw_height}"
                    f" sensor pixels exceeds the limit of {max_pixels} (decompression-bomb "
                    "guard); raise max_pixels (--max-pixels N|none) if the file is trusted",
                )
            orientation = _FLIP_TO_EXIF.get(sizes.flip, 1)
            swapped = orientation in (5, 6, 7, 8)
            size = (sizes.height, sizes.width) if swapped else (sizes.width, sizes.height)
            decoded = None
            if max_side is not None:
                decoded = _from_preview(
                    raw, rawpy, path, size, orientation, max_side, gray, max_pixels, resample,
                    color,
                )
            if decoded is None:
                half = max_side is not None and max(size) // 2 >= max_side
                with _QUIET.silenced():
                    rgb16 = raw.postprocess(
                        use_camera_wb=True, output_bps=16, half_size=half, gamma=_SRGB_GAMMA
                    )
                decoded = _from_sensor(rgb16, size, max_side, gray, resample)
    except ImageReadError:
        raise
    except ImageReadError.FILE_ERRORS as exc:
        raise ImageReadError.from_file_error(path, exc) from None
    except (rawpy.LibRawError, OSError, ValueError, MemoryError) as exc:
        raise raw_unreadable(path, exc, kind) from None
    container = _container_exif(path)
    return dataclasses.replace(
        decoded, format=f"RAW ({kind})", original_size=size,
        exif_tags=container or decoded.exif_tags,
        # The preview's own EXIF, when it was read, is not the file's.
        exif_warning=decoded.exif_warning if container is None else None,
    )


def _container_exif(path: Path) -> Image.Exif | None:
    """The capture data of a TIFF-based RAW file (DNG, NEF, CR2, ARW...), so an edit
    written as JPEG keeps it; the maker note is left out (its offsets point into the
    RAW file).  None when there is none or the file is not TIFF-based (CR3, RAF...).

    Pillow's TIFF directory reader reads the tags only: Pillow cannot open most RAW
    files as images (CFA data), and need not."""
    try:
        with warnings.catch_warnings(), open(path, "rb") as f:
            warnings.simplefilter("ignore")  # odd or truncated tags: what can be read is kept
            tags = Image.Exif()
            tags.load_from_fp(f)
            exif_ifd = dict(tags.get_ifd(_EXIF_IFD))
            gps_ifd = dict(tags.get_ifd(_GPS_IFD))
        kept = Image.Exif()
        for tag in _KEPT_TAGS:
            if tag in tags:
                kept[tag] = tags[tag]
        exif_ifd.pop(_MAKER_NOTE, None)
        if exif_ifd:
            kept[_EXIF_IFD] = exif_ifd
        if gps_ifd:
            kept[_GPS_IFD] = gps_ifd
        if not len(kept):
            return None
        kept.tobytes()  # what DecodedImage.exif will do: fail here, not in an edit
        return kept
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, KeyError, struct.error):
        return None


def _from_preview(
    raw, rawpy: ModuleType, path: Path, size: tuple[int, int], orientation: int,
    max_side: int, gray: bool, max_pixels: int | None, resample: Image.Resampling, color: str,
) -> DecodedImage | None:
    """The embedded preview decoded and turned upright, or None when there is none
    big enough (or it does not show the whole frame), or it cannot be decoded: a
    damaged preview leaves the file to its sensor data, whose failure, if it fails
    too, is the file's."""
    from boda.io import (
        _QUIET,
        DecodedImage,
        _decode,
        _orient,
        _quiet_about_exif,
        _resize_float,
        _target_size,
    )

    try:
        # LibRaw reads a JPEG preview's header with libjpeg, which prints its
        # warnings about a damaged one ("Corrupt JPEG data: ...") to descriptor 2.
        with _QUIET.silenced():
            thumb = raw.extract_thumb()
    except (rawpy.LibRawError, ValueError):  # none, or one LibRaw cannot hand over
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = _quiet_about_exif(lambda: Image.open(io.BytesIO(thumb.data)))
            except (OSError, SyntaxError, ValueError, EOFError):
                return None
            with img:
                if not _covers(img.size, size, max_side):
                    return None
                try:
                    decoded = _decode(
                        img, path, max_side, gray, max_pixels, resample, False, color
                    )
                except (OSError, SyntaxError, ValueError, EOFError):  # ImageReadError too
                    return None  # cut short, damaged, too many pixels: the sensor data
        own = decoded.exif_tags.get(0x0112, 1) if decoded.exif_tags is not None else 1
        if own in (2, 3, 4, 5, 6, 7, 8):
            return decoded  # turned by its own EXIF orientation already
        uint8 = decoded.pixels_uint8
        return dataclasses.replace(
            decoded,
            pixels=_orient(decoded.pixels, orientation),
            pixels_uint8=None if uint8 is None else _orient(uint8, orientation),
        )
    if thumb.format != rawpy.ThumbFormat.BITMAP:
        return None
    bitmap = np.asarray(thumb.data)
    if bitmap.ndim != 3 or bitmap.shape[2] != 3 or bitmap.dtype != np.uint8:
        return None
    if not _covers((bitmap.shape[1], bitmap.shape[0]), size, max_side):
        return None
    pixels = as_float_image(_orient(bitmap, orientation))
    new_size = _target_size((pixels.shape[1], pixels.shape[0]), max_side)
    uint8 = None
    if new_size is not None:
        pixels = _resize_float(pixels, new_size, resample)
    else:
        uint8 = _orient(bitmap, orientation)
    if gray:
        pixels, uint8 = to_gray(pixels), None
    return DecodedImage(pixels, size, "RAW", "RGB", None, False, pixels_uint8=uint8)


def _covers(preview: tuple[int, int], size: tuple[int, int], max_side: int) -> bool:
    """Whether a preview of ``preview`` (stored, unturned) pixels stands in for an
    image of ``size`` (turned) at ``max_side``: big enough, and the same frame."""
    if max(preview) < min(max_side, max(size)):
        return False
    ratio = max(preview) / min(preview)
    return abs(ratio / (max(size) / min(size)) - 1.0) <= _ASPECT_TOLERANCE


def _from_sensor(
    rgb16: np.ndarray, size: tuple[int, int], max_side: int | None, gray: bool,
    resample: Image.Resampling,
) -> DecodedImage:
    """LibRaw's demosaiced, turned 16-bit sRGB as a :class:`~boda.io.DecodedImage`."""
    from boda.io import DecodedImage, _resize_float, _target_size

    pixels = as_float_image(np.ascontiguousarray(rgb16), name="LibRaw's output")
    new_size = _target_size((pixels.shape[1], pixels.shape[0]), max_side)
    if new_size is not None:
        pixels = _resize_float(pixels, new_size, resample)
    if gray:
        pixels = to_gray(pixels)
    return DecodedImage(pixels, size, "RAW", "RGB;16", None, False, bit_depth=16)
