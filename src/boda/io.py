"""Reading and writing image files: the one place boda opens them.

:func:`read_image` is the function every other module (and the scan) uses.  It

- decodes with Pillow (plus HEIC/HEIF when the optional ``pillow-heif`` extra
  is installed); plain RGB and gray JPEGs that need no resize go through
  OpenCV's decoder instead (the same libjpeg-turbo and the same pixels, faster,
  see :class:`_QuietDecoder`),
- applies the EXIF orientation tag, so pixels are the way a viewer shows them,
- converts every mode to RGB or gray float32 in ``[0, 1]``: palette (``P``,
  ``PA``), ``1``, ``L``, ``LA``, ``RGBA`` (alpha is composited over **white**,
  the way a browser shows a transparent PNG on a page), ``CMYK``, ``YCbCr``,
  16-bit gray (``I;16``/``I``, divided by 65535) and float (``F``); values
  outside ``[0, 1]`` are clipped, and a float image with NaN or infinite
  values is refused,
- keeps the full precision of 16-bit-per-channel RGB and RGBA PNG and TIFF
  files (Pillow decodes those to 8 bits): they are recognised from Pillow's
  raw mode (``RGB;16B``...) before any decoding, and decoded by OpenCV instead,
  divided by 65535, then oriented, composited, resized and converted to gray
  exactly as 8-bit files are (:attr:`DecodedImage.bit_depth` is then 16),
- uses JPEG draft mode (DCT-domain downscaling, 2-8x faster decoding) when the
  caller only needs ``max_side`` pixels, then resizes with an antialiasing
  filter,
- refuses images above ``max_pixels`` before decoding them (decompression
  bombs); a JPEG read with ``max_side`` counts the pixels its draft decode
  holds, so panoramas above the limit can be read at reduced size,
- reads PNGs whose compressed text or colour profile Pillow refuses to inflate
  (over 1 MB) from a copy with that metadata inflated by boda, within a budget
  (:mod:`boda._io_png`),
- raises :class:`boda.errors.ImageReadError` naming the path and the reason for
  any failure: missing file, permission, truncated data, unknown format...
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from boda import _icc
from boda._io_meta import file_dpi, file_xmp, scaled_dpi
from boda._io_png import inflated_metadata, refused_for_size
from boda._io_raw import RAW_EXTENSIONS, open_raw, raw_available
from boda._io_reasons import pillow_refused, undecodable, unidentified
from boda._io_reduce import (
    BACKGROUND,
    EARLY_REDUCE_PIXELS,  # noqa: F401 - re-exported (documented here; patch it there)
    _decode_webp_reduced,
    _early_factor,
    _finish_reduced_float,
    _finish_reduced_pil,
    _reduce_array,
    _reduce_pil,
)
from boda._io_write import (
    _FORMATS_16,
    MetadataDroppedWarning,
    _tiff_with_tags,
    can_write_16_bit,
    can_write_alpha,
    encode_jpeg,
    open_output,
    prepare_image_output,
    prepare_output,
    write_image,
    write_output,
)
from boda.core.image import as_float_image
from boda.core.numbers import real_number, whole_number
from boda.errors import ImageReadError, InvalidParameterError

__all__ = [
    "DecodedImage",
    "open_image",
    "open_gray_map",
    "image_size",
    "read_image",
    "write_image",
    "MetadataDroppedWarning",
    "can_write_16_bit",
    "can_write_alpha",
    "prepare_image_output",
    "open_output",
    "prepare_output",
    "write_output",
    "encode_jpeg",
    "SUPPORTED_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "heif_available",
]

#: Refuse to decode anything larger than this many pixels (about 180 MP, twice
#: Pillow's own warning level); big enough for any camera, small enough that a
#: crafted file cannot exhaust memory.
DEFAULT_MAX_PIXELS = 178_956_970

_BASE_EXTENSIONS = {
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff",
    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico",
}
_HEIF_EXTENSIONS = {".heic", ".heif"}
#: Read by Pillow itself where it was built with libavif (Pillow >= 11.3 wheels
#: are), else by pillow-heif.
_AVIF_EXTENSIONS = {".avif"}


def _register_heif() -> bool:
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


_HEIF = _register_heif()


def _heif_missing(path: Path) -> bool:
    """Whether ``path`` is named as HEIC/HEIF/AVIF and the plug-in to read it is not installed."""
    return path.suffix.lower() in _HEIF_EXTENSIONS | _AVIF_EXTENSIONS and not _HEIF


def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read (the ``boda[heif]`` extra is installed)."""
    return _HEIF


#: Pillow's raw modes of 16-bit-per-channel colour PNG and TIFF data, which it
#: decodes to 8-bit ``RGB``/``RGBA`` (``LA;16B``: 16-bit gray with alpha, PNG).
#: Premultiplied alpha (``RGBa;16``) is left to Pillow.
_RAWMODES_16 = frozenset(
    f"{channels};16{order}" for channels in ("RGB", "RGBA", "RGBX") for order in "BLN"
) | {"LA;16B"}
_GRAY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

#: File name extensions a folder scan picks up (lower case, with the dot).  HEIC
#: files are picked up without the ``boda[heif]`` extra too: they are then listed
#: as unreadable with the command that installs it, instead of silently skipped.
#: Camera RAW files only with the ``boda[raw]`` extra (``rawpy``; a scan counts them otherwise).
SUPPORTED_EXTENSIONS = frozenset(
    _BASE_EXTENSIONS | _HEIF_EXTENSIONS | _AVIF_EXTENSIONS
    | (RAW_EXTENSIONS if raw_available() else set())
)


_RESAMPLE = {
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
}


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """An image as read from a file, with what the pixels alone do not say.

    Attributes
    ----------
    pixels : numpy.ndarray
        float32 ``(H, W, 3)`` RGB or ``(H, W)`` gray in ``[0, 1]``, already
        EXIF-oriented and resized to ``max_side`` if one was asked for.
    original_size : tuple of int
        ``(width, height)`` of the full image after EXIF orientation.
    format : str
        Pillow's format name (``"JPEG"``, ``"PNG"``...), or ``"RAW (NEF)"`` and the
        like for camera RAW files (read through LibRaw).
    mode : str
        Pillow's mode of the file before conversion (``"P"``, ``"I;16"``...).
    icc_profile : bytes or None
        The colour profile that ``pixels`` are in, so edits can write it back:
        with ``color="srgb"`` (the default) only an sRGB profile (the pixels
        are untouched then), since any other profile was converted away; with
        ``color="keep"`` the file's RGB profile as it is.  None when the file
        has none, and always None for gray and CMYK profiles (converted).
    has_alpha : bool
        Whether the file had transparency (composited over white in ``pixels``,
        or over :func:`open_image`'s ``background``).
    pixels_uint8 : numpy.ndarray or None
        The same pixels as decoded, uint8, when the file decoded straight to
        8-bit RGB or gray (``pixels == pixels_uint8 / 255``); None otherwise
        (always None for 16-bit files).
        Lets 8-bit consumers (hashes, thumbnails) skip a round trip through float.
    bit_depth : int
        Bits per channel that ``pixels`` carry from the file: 16 for 16-bit
        gray, RGB and RGBA PNG and TIFF files (and 32-bit integer TIFFs, read
        as 16-bit), 32 for float TIFFs (mode ``F``), 8 for everything else.
        Edits write 16-bit output when it is more than 8 (see
        :func:`write_image`'s ``bit_depth``).
    converted_from : str or None
        What ``pixels`` were converted to sRGB from (the profile's description),
        or None (see :func:`open_image`'s ``color``).
    color_warning : str or None
        Why the file's colour information was ignored, or None.
    exif_warning : str or None
        Why the file's EXIF block was ignored (garbage that is not a TIFF
        structure, say): the pixels are then read as stored, not turned, and
        :attr:`exif` is None; or why it was only partly read (a damaged entry,
        Pillow's "Corrupt EXIF data").  None when the EXIF block was read or absent.
    exif : bytes or None
        The file's EXIF block (camera, date, exposure, GPS...) with its
        Orientation set to 1, since ``pixels`` are already turned; None when
        the file has none.  Edits pass it to :func:`write_image` so a retouched
        photo keeps its capture data.
    xmp : bytes or None
        The file's XMP packet (rating, labels, keywords, title, copyright...), its
        ``tiff:Orientation`` set to 1 where the pixels were turned; None when the
        file has none.  Edits write it back as they do :attr:`exif`.
    dpi : tuple of float or None
        The file's print resolution ``(x, y)`` in dots per inch (JPEG, PNG, TIFF),
        or None when it gives none.  For the full-size pixels: see
        :meth:`dpi_at` for a read with ``max_side``.
    """

    pixels: np.ndarray
    original_size: tuple[int, int]
    format: str
    mode: str
    icc_profile: bytes | None
    has_alpha: bool
    pixels_uint8: np.ndarray | None = None
    bit_depth: int = 8
    #: The file's parsed EXIF tags (None when it has none); :attr:`exif` gives
    #: the block to write back.  Serialised only when asked: a scan never is.
    exif_tags: Image.Exif | None = dataclasses.field(default=None, repr=False, compare=False)
    #: The description of the colour profile (or ``"PNG gAMA ..."``) that ``pixels``
    #: were converted to sRGB from; None when they were not converted.
    converted_from: str | None = None
    #: Why an embedded profile (or PNG gAMA/cHRM) was ignored and the pixels read
    #: as sRGB: unparseable, not made for the file's pixels...; None when all was well.
    color_warning: str | None = None
    #: Why the file's EXIF block was ignored (it could not be parsed: the pixels are
    #: read without EXIF orientation and :attr:`exif` is None); None when all was well.
    exif_warning: str | None = None
    #: Bits per channel the *file* stores, whatever ``pixels`` carry (:attr:`bit_depth`
    #: is 8 for a 16-bit file read through an 8-bit colour profile, 16 for a 32-bit
    #: integer TIFF): 1 (mode ``1``), 16 (16-bit PNG, TIFF, PNM...), 32 (32-bit
    #: integer and float TIFFs), 8 for everything else, palette files included (their
    #: colours are 8-bit; 2- and 4-bit gray and palette indices count as 8 too).  None
    #: for camera RAW files (the reader says only what it decoded: :attr:`bit_depth`).
    file_bit_depth: int | None = None
    xmp: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
    dpi: tuple[float, float] | None = None

    def dpi_at(self, width: int, height: int) -> tuple[float, float] | None:
        """:attr:`dpi` for the picture at ``width`` x ``height`` pixels (the same print
        size: a half-size read prints at half the resolution), or None."""
        return scaled_dpi(self.dpi, self.original_size, (width, height))

    @property
    def exif(self) -> bytes | None:
        """The EXIF block with Orientation 1 (see the class docstring), or None."""
        tags = self.exif_tags
        if tags is None:
            return None
        orientation = tags.get(0x0112)
        if orientation is None:
            return tags.tobytes()
        tags[0x0112] = 1
        try:
            return tags.tobytes()
        finally:
            tags[0x0112] = orientation  # the file's own tags: leave them as they were


def _flatten_transparency(img: Image.Image) -> tuple[Image.Image, bool]:
    """``img`` composited over white if it has alpha or a transparent colour
    (what a viewer shows), as RGB or L; palette images become RGB.  Returns
    ``(image, had_alpha)``."""
    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if (mode == "PA" or "transparency" in img.info) else "RGB")
        mode = img.mode
    elif mode == "L" and "transparency" in img.info:
        img = img.convert("LA")
        mode = "LA"
    elif mode == "RGB" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode not in ("RGBA", "LA", "RGBa", "La"):
        return img, False
    rgba = img.convert("RGBA")
    level = round(255 * BACKGROUND.get())  # white unless open_image(background=...)
    white = Image.new("RGBA", rgba.size, (level, level, level, 255))
    composited = Image.alpha_composite(white, rgba)
    return composited.convert("L" if mode in ("LA", "La") else "RGB"), True


def _to_rgb_or_gray(
    img: Image.Image, keep_float_values: bool = False, levels_for: str | None = None
) -> tuple[np.ndarray | None, bool, np.ndarray | None]:
    """Convert any Pillow mode to a float32 array.

    Returns ``(array, had_alpha, uint8)``; ``uint8`` holds the pixels as decoded
    when they were plain 8-bit RGB or gray (None otherwise).  When they are 8-bit
    pixels of mode ``levels_for`` (:func:`_levels_mode`), ``array`` is None: a colour
    plan converts the levels themselves, and a float copy would only add an image.
    """
    img, had_alpha = _flatten_transparency(img)
    if had_alpha:
        return as_float_image(np.asarray(img)), True, None
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img.convert("I") if mode != "I" else img).astype(np.float32)
        return np.clip(arr / 65535.0, 0.0, 1.0).astype(np.float32), False, None
    if mode == "F":  # float TIFFs, and 32-bit integer ones after a resize
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("float image holds NaN or infinite values")
        return (arr if keep_float_values else np.clip(arr, 0.0, 1.0)), False, None
    if mode == "1":
        return as_float_image(np.asarray(img.convert("L"))), False, None
    if mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    decoded = np.asarray(img)
    if mode == levels_for:
        return None, False, decoded
    return as_float_image(decoded), False, (decoded if mode in ("L", "RGB") else None)


def open_image(
    path: str | Path,
    max_side: int | None = None,
    *,
    gray: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    resample: str = "lanczos",
    keep_float_values: bool = False,
    color: str = "srgb",
    background: float = 1.0,
) -> DecodedImage:
    """Read an image file with its metadata.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to read.
    max_side : int, optional
        If given, the longer side of the returned pixels is at most this many
        pixels (never upscaled).  JPEGs are then decoded in draft mode; other
        images of more than :data:`EARLY_REDUCE_PIXELS` are shrunk by an
        integer factor (a box average) in their own sample type right after
        decoding, so a small file that decodes huge costs about its decoded
        size, not five times it.
    gray : bool
        Return ``(H, W)`` Rec. 601 gray instead of ``(H, W, 3)`` RGB.
    max_pixels : int or None
        Refuse images with more pixels than this, or than Pillow's own limit
        (``2 * PIL.Image.MAX_IMAGE_PIXELS``, the same by default) if that is
        lower, before decoding them.  A JPEG read with ``max_side`` is judged by
        the pixels it decodes (draft mode: 1/2 to 1/8 per side), so a 500 MP
        panorama can be read at 640 px.  ``None`` (a trusted file) disables the
        check; a file other than a JPEG above Pillow's limit also needs
        ``PIL.Image.MAX_IMAGE_PIXELS = None``.
    resample : {"lanczos", "box", "bilinear"}
        Filter of the ``max_side`` resize.  ``"box"`` is the exact area
        average (fastest; what the scan and the blur calibration use).
    keep_float_values : bool
        A float image (TIFF mode ``F``) keeps its values instead of being
        clipped to ``[0, 1]`` (depth maps in metres); NaN is refused either way.
        Its colour profile, if any, is then ignored.
    color : {"srgb", "keep"}
        What to do with an embedded ICC profile.  ``"srgb"`` (the default):
        pixels in any other space (Display P3, Adobe RGB, ProPhoto, gray
        profiles, CMYK...) are converted to sRGB, relative colorimetric as
        browsers do, out-of-gamut colours clipped; :attr:`DecodedImage.icc_profile`
        is then None and :attr:`DecodedImage.converted_from` names the profile.
        Files without a profile, or with an sRGB one, are untouched.
        ``"keep"``: RGB values are returned as stored, with their RGB profile
        in ``icc_profile`` (what edits use to write a P3 photo back as P3);
        gray and CMYK profiles are still converted to sRGB and not returned,
        so an RGB result never carries them.  See :func:`read_image`, Notes.
    background : float
        The grey level, 0 (black) to 1 (white, the default), that transparent
        pixels are composited over.  Two reads over two levels tell the alpha
        apart (white minus black is ``1 - alpha``): the scan's pixel hash does.

    Returns
    -------
    DecodedImage
        16-bit-per-channel PNG and TIFF files (gray, RGB, RGBA) keep their
        precision (``pixels`` hold 65536 levels, ``bit_depth`` is 16); colour
        ones are decoded by OpenCV, with the same orientation, compositing,
        resize and gray conversion as 8-bit files.  If OpenCV cannot decode
        such a file, Pillow reads it (as 8 bits) or reports why it cannot.

    Raises
    ------
    ImageReadError
        For any reason the file cannot be read; ``.path`` and ``.reason`` say
        which file and why.
    InvalidParameterError
        ``path`` is not a path (an array, say), or a bad option value.
    """
    path = _as_path(path, "read_image")
    if max_side is not None and not (whole_number(max_side) and max_side >= 1):
        raise InvalidParameterError(
            f"max_side must be a positive whole number of pixels (or None), got {max_side!r}"
        )
    if max_pixels is not None and not (
        real_number(max_pixels) and 1 <= max_pixels < float("inf")
    ):
        raise InvalidParameterError(
            f"max_pixels must be a positive number of pixels, or None for no limit (a trusted "
            f"file), got {max_pixels!r}"
        )
    if not isinstance(resample, str) or resample not in _RESAMPLE:
        raise InvalidParameterError(
            f"unknown resample filter {resample!r}; choose one of {sorted(_RESAMPLE)}"
        )
    if color not in _COLOR_MODES:
        raise InvalidParameterError(
            f"unknown color handling {color!r}; choose one of {sorted(_COLOR_MODES)}"
        )
    if not (isinstance(background, int | float) and 0.0 <= background <= 1.0):
        raise InvalidParameterError(
            f"background must be a grey level from 0 (black) to 1 (white), got {background!r}"
        )
    if path.suffix.lower() in RAW_EXTENSIONS:  # LibRaw, not Pillow (see boda._io_raw)
        return open_raw(
            path, max_side, gray=gray, max_pixels=max_pixels, resample=_RESAMPLE[resample],
            color=color,
        )
    fmt = None  # the format Pillow recognised, for the reason of a failure
    inflate_png = False  # PNG metadata inflated by boda (see boda._io_png)
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with _open_pillow(path, inflate_png=inflate_png) as img:  # a huge JPEG too
                    fmt = img.format
                    file_bit_depth = _file_bit_depth(img)  # from the tiles, before decoding
                    token = BACKGROUND.set(float(background))
                    try:
                        decoded = _decode(
                            img, path, max_side, gray, max_pixels, _RESAMPLE[resample],
                            keep_float_values, color,
                        )
                    finally:
                        BACKGROUND.reset(token)
                    return dataclasses.replace(decoded, file_bit_depth=file_bit_depth)
        except ImageReadError:
            raise
        except ImageReadError.FILE_ERRORS as exc:
            raise ImageReadError.from_file_error(path, exc) from None
        except UnidentifiedImageError:
            raise unidentified(path, _heif_missing(path)) from None
        except Image.DecompressionBombError as exc:
            # Pillow's own guard (2 x Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS) refused
            # a file that is not a JPEG, before boda could look at it (see _open_pillow).
            raise pillow_refused(path, exc) from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            if refused_for_size(exc) and not inflate_png:
                # A text chunk after the image data, met as it loaded: read it again.
                inflate_png = True
                continue
            raise undecodable(path, exc, fmt) from None


def _as_path(path: object, caller: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or InvalidParameterError naming ``caller``
    when it is not a path (an array, a Pillow image, a number)."""
    if not isinstance(path, str | bytes | os.PathLike):
        hint = (
            "; it already holds pixels: boda.core.as_float_image(x) converts an array"
            if hasattr(path, "shape") or type(path).__module__.startswith("PIL.")
            else ""
        )
        raise InvalidParameterError(
            f"{caller} needs a file path (str or pathlib.Path), got {type(path).__name__}{hint}"
        )
    return Path(os.fsdecode(path))


def open_gray_map(
    path: str | Path,
    what: str,
    max_side: int | None = None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    keep_float_values: bool = False,
) -> DecodedImage:
    """Read a one-channel map (a mask, a trimap, a depth map) as :func:`open_image`
    with ``gray=True`` does, refusing one with transparent pixels.

    A transparent pixel holds no value: over white (how :func:`open_image` lays
    transparency) a mask drawn as white strokes on a transparent layer would read
    as "everything marked".  So the map is read over white and over black and
    refused where the two differ; an alpha channel that is opaque throughout (what
    many editors export) is read as the gray it holds.  ``what`` names the input in
    the error (``"--mask"``).

    Raises
    ------
    ImageReadError
        The file cannot be read.
    InvalidParameterError
        Some pixel of the map is (partly) transparent.
    """
    options = dict(gray=True, max_pixels=max_pixels, keep_float_values=keep_float_values)
    decoded = open_image(path, max_side, **options)
    if decoded.has_alpha:
        over_black = open_image(path, max_side, background=0.0, **options).pixels
        if not np.array_equal(over_black, decoded.pixels):
            raise InvalidParameterError(
                f"{what} {str(path)!r} has transparent pixels, which hold no value; flatten "
                "it onto black (or save it without transparency) and give that gray image"
            )
    return decoded


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as displayed, from its header only.

    Nothing is decoded (a 50 MP JPEG costs a millisecond), EXIF orientations 5-8
    swap width and height: the result is the :attr:`DecodedImage.original_size`
    that :func:`open_image` would report.  Commands that must refuse an image too
    large for the free memory check this before decoding it.

    Parameters
    ----------
    path : str or pathlib.Path
        The image file.

    Returns
    -------
    tuple of int
        ``(width, height)``.

    Raises
    ------
    ImageReadError
        The file is missing, is not an image, or is larger than Pillow's
        decompression-bomb limit and not a JPEG (a JPEG's size is always given).
    InvalidParameterError
        ``path`` is not a path (an array, a number).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "wide.png")
    >>> _ = write_image(path, np.zeros((20, 30, 3), np.float32))
    >>> image_size(path)
    (30, 20)
    """
    path = _as_path(path, "image_size")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open_pillow(path) as img:
                if img.format == "PNG" and "exif" not in img.info:
                    # getexif() would decode a PNG to look for an eXIf chunk after the data
                    img.info["exif"] = _png_chunk(_file_bytes(img) or b"", b"eXIf") or b""
                orientation = _read_exif(img)[0].get(0x0112, 1)
                width, height = _stored_size(img)
    except Image.DecompressionBombError:  # the size is all that is asked for
        raise ImageReadError(
            path, "too many pixels to open safely (over Pillow's decompression-bomb limit of "
            f"{2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels); if the file is trusted: "
            "--max-pixels none (in Python: PIL.Image.MAX_IMAGE_PIXELS = None)",
        ) from None
    except ImageReadError.FILE_ERRORS as exc:
        raise ImageReadError.from_file_error(path, exc) from None
    except UnidentifiedImageError:
        raise unidentified(path, _heif_missing(path)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise undecodable(path, exc, None) from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


#: numpy equivalents of ``ImageOps.exif_transpose`` for EXIF orientations 2-8.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    turn = _ORIENT.get(orientation)
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))


class _QuietDecoder:
    """OpenCV's JPEG decoder (and PNG decoder, :func:`_decode_16bit_colour`), used only
    when libjpeg (libpng) has nothing to say.

    Pillow and OpenCV both decode with libjpeg-turbo (the same pixels, tested),
    but OpenCV decodes straight into a numpy buffer: 25-30 % less time than
    Pillow's decode plus its RGBX-to-RGB copy.  libjpeg reports corrupt data as
    *warnings* printed to file descriptor 2, where Pillow stops instead; so
    descriptor 2 points at an in-memory file during the decode, and any message
    sends the file back to Pillow (which decides, silently, as it always did).
    Redirecting a descriptor is process-wide, so this runs only while one
    thread is alive (scan workers are single-threaded); otherwise Pillow decodes.
    """

    def __init__(self) -> None:
        self.sink: int | None = None
        self.stderr_copy: int | None = None
        self.owner = 0  # pid that made ``sink``: a forked child makes its own
        self.failed = not hasattr(os, "memfd_create")
        self.decoded = 0  # files decoded here (the rest went to Pillow)

    def available(self) -> bool:
        """Whether descriptor 2 may be redirected now: no other thread could write to it."""
        return not self.failed and threading.active_count() == 1

    def _catch(self) -> bool:
        """Point descriptor 2 at the (emptied) sink; False where it may not be done now."""
        if not self.available():
            return False
        try:
            if self.owner != os.getpid():  # forked workers must not share one sink
                for inherited in (self.sink, self.stderr_copy):
                    if inherited is not None:  # the parent's: close this process's copy
                        os.close(inherited)
                self.sink = os.memfd_create("boda-decoder-messages")
                self.stderr_copy = os.dup(2)
                self.owner = os.getpid()
            os.ftruncate(self.sink, 0)
            os.dup2(self.sink, 2)
        except OSError:
            self.failed = True
            return False
        return True

    def _release(self) -> bool:
        """Give descriptor 2 back; whether anything was written to it meanwhile."""
        os.dup2(self.stderr_copy, 2)
        return os.fstat(self.sink).st_size > 0

    def decode(self, data: bytes, flags: int, *, anyway: bool = False) -> np.ndarray | None:
        """``cv2.imdecode(data, flags)``, or None when the decoder said anything or failed.

        ``anyway``: where descriptor 2 may not be redirected now, decode all the same,
        without catching what the decoder says (the caller made sure it has nothing to
        say); otherwise None then."""
        import cv2

        caught = self._catch()
        if not caught and not anyway:
            return None
        try:
            out = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error:
            out = None
        finally:
            said = self._release() if caught else False
        if out is None or said:
            return None
        self.decoded += caught
        return out

    @contextlib.contextmanager
    def silenced(self) -> Iterator[None]:
        """What C libraries write to descriptor 2 inside the block is dropped, where it may
        be caught now (see :meth:`available`); elsewhere the block runs as it is.  For
        libtiff inside Pillow, which prints its warnings and errors there ("Unknown field
        with tag ...", "Using code not yet in table"): a failure is Pillow's exception."""
        caught = self._catch()
        try:
            yield
        finally:
            if caught:
                self._release()


_QUIET = _QuietDecoder()


def _decode_jpeg_quietly(img: Image.Image) -> np.ndarray | None:
    """Decode a plain RGB or gray JPEG (after ``draft``) with OpenCV, or return None.

    None means "let Pillow decode": another mode (CMYK...), data not ending in
    an end-of-image marker (truncated, or trailing bytes), a libjpeg warning, or
    any mismatch with what Pillow would return.  The result equals Pillow's
    decode bit for bit (tests compare them).
    """
    import cv2

    scale = img.decoderconfig[0] if img.decoderconfig else 1
    reduced = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
               8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
    if img.mode not in ("RGB", "L") or scale not in reduced or img.fp is None:
        return None
    img.fp.seek(0)
    data = img.fp.read()
    if not data.endswith(b"\xff\xd9"):
        return None
    color = cv2.IMREAD_COLOR_RGB if img.mode == "RGB" else 0
    out = _QUIET.decode(data, reduced[scale] | color | cv2.IMREAD_IGNORE_ORIENTATION)
    if out is None or out.shape[:2] != (img.size[1], img.size[0]):
        return None
    return out


def _rawmode(tile: tuple) -> object:
    """The raw mode of one of Pillow's tiles (``args`` is a string or a tuple)."""
    args = tile[3]
    return args[0] if isinstance(args, tuple) and args else args


def _file_bit_depth(img: Image.Image) -> int:
    """Bits per channel of the samples the file ``img`` (opened, not decoded) stores
    (see :attr:`DecodedImage.file_bit_depth`); looks at the mode and tile list only."""
    mode = img.mode
    if mode == "1":
        return 1
    if img.format in _FORMATS_16:  # the tiles' raw modes say it: "RGB;16B", "I;32S", "F;64F"
        widths = {_rawmode_bits(_rawmode(tile)) for tile in img.tile}
        if len(widths) == 1 and None not in widths:
            return widths.pop()
    if mode in _GRAY16_MODES:
        return 32 if mode == "I" else 16
    return 32 if mode == "F" else 8


def _rawmode_bits(rawmode: object) -> int | None:
    """16, 32 or 64 for a raw mode of that many bits a sample (``"RGBA;16B"``), else None
    (8-bit, packed or unknown).  Only for PNG and TIFF, whose raw modes mean that: BMP's
    ``"BGR;16"`` is 5-6-5 bits, not 16 a channel."""
    _, _, layout = str(rawmode).partition(";")
    digits = "".join(c for c in layout[:2] if c.isdigit())
    return int(digits) if digits in ("16", "32", "64") else None


def _is_16bit_colour(img: Image.Image) -> bool:
    """Whether ``img`` (opened, not decoded) is a 16-bit-per-channel colour PNG or
    TIFF that Pillow would decode to 8 bits; looks at the tile list only."""
    return (
        img.mode in ("RGB", "RGBA")
        and bool(img.tile)
        and all(_rawmode(tile) in _RAWMODES_16 for tile in img.tile)
    )


class _SilentOpenCV:
    """OpenCV's log muted while a decode runs (a broken file is then reported by
    Pillow, in an :class:`ImageReadError`, instead of OpenCV warnings on stderr).
    Counted, so overlapping decodes in threads restore the level once, at the end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.saved = 0

    def __enter__(self) -> None:
        import cv2

        with self.lock:
            if self.active == 0:
                self.saved = cv2.utils.logging.getLogLevel()
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            self.active += 1

    def __exit__(self, *exc: object) -> None:
        import cv2

        with self.lock:
            self.active -= 1
            if self.active == 0:
                cv2.utils.logging.setLogLevel(self.saved)


_SILENT_OPENCV = _SilentOpenCV()


def _file_bytes(img: Image.Image) -> bytes | None:
    """All the bytes of the file ``img`` was opened from (None without a file)."""
    if img.fp is None:
        return None
    position = img.fp.tell()
    img.fp.seek(0)
    data = img.fp.read()
    img.fp.seek(position)
    return data


def _png_chunk(data: bytes, kind: bytes) -> bytes | None:
    """The body of the first ``kind`` chunk (``b"eXIf"``...) of the PNG ``data``, or None.
    Walks the chunk headers only (the image data are skipped, not decompressed)."""
    at = 8  # after the signature
    while at + 8 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        name = data[at + 4 : at + 8]
        if name == kind:
            return data[at + 8 : at + 8 + length]
        if name == b"IEND":
            return None
        at += 12 + length
    return None


#: The chunks libpng needs to decode a PNG's pixels as OpenCV asks for them: the
#: critical ones, and ``tRNS`` (a transparent colour becomes alpha).
_PNG_PIXEL_CHUNKS = frozenset((b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"))


def _png_for_libpng(data: bytes) -> bytes | None:
    """The PNG ``data`` with only the chunks its pixels need, or None when they do not
    add up to a whole, undamaged PNG (Pillow then decodes the file or says why not).

    libpng, inside OpenCV, prints its warnings and errors straight to file descriptor
    2 ("libpng warning: iCCP: known incorrect sRGB profile", "libpng error: IDAT: CRC
    error"), through a scan's progress bar, and OpenCV's log level does not reach them.
    What it would warn about is ancillary chunks (profiles, text, gamma, APNG frames)
    that boda reads through Pillow anyway (a bad profile is told in
    :attr:`DecodedImage.color_warning`): they are left out.  What it would fail on is
    seen here first: a file cut short (no ``IEND``), a chunk whose CRC does not match,
    an invalid ``tRNS`` (libpng ignores it: so is it here), a critical chunk it does
    not know.  What is left, a damaged compressed stream under good CRCs (a
    crafted file, not a disk error), sends the file to Pillow as any message from
    libpng does when descriptor 2 can be caught (:class:`_QuietDecoder`: in the
    scan's workers).  Costs a CRC pass over the file (well under the decode).
    """
    view = memoryview(data)
    if bytes(view[:8]) != b"\x89PNG\r\n\x1a\n":
        return None
    kept = [view[:8]]
    at, colour_type, dropped = 8, None, False
    while at + 12 <= len(view):
        length = int.from_bytes(view[at : at + 4], "big")
        kind = bytes(view[at + 4 : at + 8])
        end = at + 12 + length
        if end > len(view) or (at == 8 and kind != b"IHDR"):
            return None  # cut short, or no header
        if kind[0] & 0x20 == 0 and kind not in _PNG_PIXEL_CHUNKS:
            return None  # a critical chunk libpng does not know
        if kind in _PNG_PIXEL_CHUNKS:
            crc = int.from_bytes(view[end - 4 : end], "big")
            if zlib.crc32(view[at + 4 : end - 4]) != crc:
                return None
            if kind == b"IHDR" and length == 13:
                colour_type = view[at + 17]
            valid_trns = colour_type in (0, 3) or (colour_type == 2 and length == 6)
            if kind != b"tRNS" or valid_trns:
                kept.append(view[at:end])
            else:
                dropped = True
            if kind == b"IEND":
                # A copy only when something was left out: a large file's bytes are
                # held once more at most while it decodes.
                return b"".join(kept) if dropped or end < len(view) else data
        else:
            dropped = True
        at = end
    return None  # no IEND: cut short


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """``(width, height)`` of the pixels as the file stores them, before EXIF orientation.

    Pillow reports a TIFF whose Orientation tag is 5-8 at its oriented size (and
    orients it while loading), so a TIFF's size comes from its own tags.
    """
    if img.format == "TIFF":
        tags = getattr(img, "tag_v2", {})
        width, height = tags.get(256), tags.get(257)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return img.size


def _decode_16bit_colour(
    img: Image.Image, data: bytes, orientation: int, reduce: int = 1
) -> tuple[np.ndarray, bool] | None:
    """Decode ``data``, a 16-bit colour PNG or TIFF (see :func:`_is_16bit_colour`
    of its Pillow image ``img``), with OpenCV.

    Returns ``(rgb, had_alpha)``: float32 ``(H, W, 3)`` in ``[0, 1]`` (the
    16-bit values divided by 65535), composited over white when the file has
    alpha (an alpha channel, or a ``tRNS`` colour), not yet oriented.  None
    when OpenCV cannot decode the data, or decodes something other than what
    Pillow announced: Pillow then decodes the file (or says why it cannot).
    ``reduce`` > 1 shrinks the pixels by that factor (:func:`_reduce_array`) before
    they become floats.
    """
    import cv2

    if img.format == "TIFF" and orientation != 1:
        # OpenCV's TIFF decoder applies the Orientation tag whatever the flags say: it
        # gets the file with the tag set to 1 (the image data do not move), and the
        # pixels are oriented by the caller, like those of every other file.
        order = "<" if data[:2] == b"II" else ">"
        try:
            data = _tiff_with_tags(Path(), data, {274: (3, struct.pack(order + "H", 1))})
        except (InvalidParameterError, struct.error):  # BigTIFF, or a broken header
            return None
    flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    with _SILENT_OPENCV:
        if img.format == "PNG":
            # libpng prints its warnings and errors to stderr, whatever OpenCV's log
            # level: it gets only what it cannot complain about (see _png_for_libpng).
            data = _png_for_libpng(data)
            out = None if data is None else _QUIET.decode(data, flags, anyway=True)
        else:  # libtiff's messages go through OpenCV's log, silenced here
            try:
                out = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
            except cv2.error:
                out = None
    if (
        out is None
        or out.dtype != np.uint16
        or out.ndim != 3
        or out.shape[2] not in (3, 4)
        or out.shape[:2] != _stored_size(img)[::-1]
    ):
        return None
    # A fourth channel is alpha, unless TIFF calls it an unspecified extra sample.
    had_alpha = out.shape[2] == 4 and not str(_rawmode(img.tile[0])).startswith("RGBX")
    if reduce > 1:
        return _reduce_array(out, reduce, 65535.0, had_alpha), had_alpha
    rgb = out[:, :, 2::-1].astype(np.float32)  # BGR(A) -> RGB
    rgb /= np.float32(65535.0)
    if had_alpha:  # over white, like _flatten_transparency: c * a + 1 * (1 - a)
        alpha = out[:, :, 3].astype(np.float32)
        alpha /= np.float32(65535.0)
        alpha = alpha[:, :, None]
        rgb *= alpha
        rgb += np.float32(BACKGROUND.get()) * (1.0 - alpha)
        np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb, had_alpha


def _target_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int] | None:
    """``(width, height)`` that brings the longer side of ``size`` to ``max_side``,
    or None when no resize is needed."""
    if max_side is None or max(size) <= max_side:
        return None
    scale = max_side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _resize_float(
    pixels: np.ndarray,
    size: tuple[int, int],
    resample: Image.Resampling,
    box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """Resize float32 ``(H, W, C)`` pixels to ``size`` channel by channel, with Pillow's
    filter in float (mode ``F``, as 16-bit gray files are resized), clipped to ``[0, 1]``.
    ``box``: the region of ``pixels`` to resize (Pillow's ``box``), default all of it."""
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[:, :, c])).resize(
                size, resample, box=box, reducing_gap=3.0
            )
        )
        for c in range(pixels.shape[2])
    ]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32, copy=False)


def _resized_pixels(
    img: Image.Image,
    max_side: int | None,
    resample: Image.Resampling,
    keep_float_values: bool = False,
    levels_for: str | None = None,
) -> tuple[np.ndarray | None, bool, np.ndarray | None]:
    """:func:`_to_rgb_or_gray` of ``img`` shrunk so its longer side is <= ``max_side``."""
    had_alpha = False
    new_size = _target_size(img.size, max_side)
    if new_size is not None:
        # Composited before the resize: a filter's ringing in the alpha channel
        # would otherwise tint the edges of transparent regions.
        img, had_alpha = _flatten_transparency(img)
        if img.mode == "1":
            img = img.convert("L")
        if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            img = img.convert("I").convert("F")
            img = img.point(lambda v: v / 65535.0)
        img = img.resize(new_size, resample, reducing_gap=3.0)
    pixels, alpha_left, pixels_uint8 = _to_rgb_or_gray(img, keep_float_values, levels_for)
    drop_levels = had_alpha and pixels is not None  # None: the levels are the pixels
    return pixels, had_alpha or alpha_left, None if drop_levels else pixels_uint8


def _read_exif(img: Image.Image) -> tuple[Image.Exif, str | None]:
    """The EXIF tags of ``img`` (empty when it has none), and why they were ignored.

    A PNG or WebP can carry an ``eXIf`` chunk that is not a TIFF structure;
    browsers show such a file, so its pixels are read, without orientation.
    """
    try:
        # Pillow warns of a damaged IFD ("Corrupt EXIF data") and reads what it can:
        # said in exif_warning, not printed into the user's terminal (or a scan's).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exif = img.getexif()
        damaged = img.info.get(_EXIF_DAMAGE) or next(
            (str(w.message).strip() for w in caught if "EXIF" in str(w.message)), None
        )
        if damaged is not None:
            return exif, f"damaged EXIF data partly read ({damaged[:120]})"
        return exif, None
    except (SyntaxError, ValueError, struct.error, OSError, EOFError, KeyError, TypeError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        return Image.Exif(), f"unreadable EXIF data ignored ({reason[:120]}); not oriented"


def _pixel_limit(max_pixels: int | None) -> int | None:
    """The decompression-bomb limit of a read: ``max_pixels``, or Pillow's own limit
    (``2 * Image.MAX_IMAGE_PIXELS``, the same by default) where that is smaller, so a
    caller who lowered Pillow's limit keeps it; None (a trusted file): no limit."""
    pillow = Image.MAX_IMAGE_PIXELS
    if max_pixels is None or pillow is None:
        return max_pixels
    return min(max_pixels, 2 * int(pillow))


def _open_pillow(path: Path, *, inflate_png: bool = False) -> Image.Image:
    """``Image.open(path)``, except that a JPEG over Pillow's decompression-bomb limit is
    opened all the same (its header only): :func:`_decode` then checks the pixels it
    will decode, which for a ``max_side`` read are those of the reduced (draft) size;
    and that a PNG whose compressed metadata Pillow refuses to inflate (more than 1 MB)
    is opened from a copy with that metadata inflated by boda (:func:`_open_png_inflated`),
    at once with ``inflate_png`` (the refusal came from a chunk after the image data).

    Pillow's guard is skipped by calling the JPEG plugin's factory directly instead of
    raising ``Image.MAX_IMAGE_PIXELS`` under a lock: that global is read by every
    ``Image.open`` in the process (the scan's other threads, other libraries) for as
    long as it is raised, and a lock only orders boda's own threads.  The JPEG plugin
    never checks sizes itself (only ``Image.open`` does, after the factory), so this
    lifts the guard for this one file and changes no state anyone else sees.  An MPO
    (a JPEG with more frames) still checks its size, and is refused, as other formats.
    """
    if inflate_png:
        return _open_png_inflated(path)
    try:
        return _quiet_about_exif(lambda: Image.open(path))
    except Image.DecompressionBombError:
        with open(path, "rb") as fp:
            if fp.read(3) != b"\xff\xd8\xff":  # not a JPEG: Pillow's refusal stands
                raise
    except ValueError as exc:
        if not refused_for_size(exc):
            raise
        return _open_png_inflated(path)
    from PIL import JpegImagePlugin

    return _quiet_about_exif(lambda: JpegImagePlugin.jpeg_factory(os.fspath(path)))


def _open_png_inflated(path: Path) -> Image.Image:
    """The PNG ``path`` opened from a copy of its bytes whose compressed text and colour
    profile boda inflated (:func:`boda._io_png.inflated_metadata`: Pillow refuses any
    such chunk over 1 MB, the lift of its limit being process-wide), the profile put
    where Pillow puts it.  A bomb is refused with :class:`boda._io_png.PngMetadataTooLarge`.
    """
    with open(path, "rb") as fp:
        plain, profile = inflated_metadata(fp.read())
    img = _quiet_about_exif(lambda: Image.open(BytesIO(plain), formats=["PNG"]))
    if profile is not None:
        img.info["icc_profile"] = profile
    return img


#: Where :func:`_quiet_about_exif` leaves Pillow's warning for :func:`_read_exif`.
_EXIF_DAMAGE = "boda_exif_damage"


def _quiet_about_exif(opener: Callable[[], Image.Image]) -> Image.Image:
    """``opener()``, with Pillow's "Corrupt EXIF data" warning (a JPEG's EXIF is
    parsed as it opens) kept in the image's ``info`` for :func:`_read_exif`
    instead of printed; other warnings pass on as they were."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = opener()
    for warning in caught:
        if "EXIF" in str(warning.message):
            img.info.setdefault(_EXIF_DAMAGE, str(warning.message).strip())
        else:
            warnings.warn(warning.message, warning.category, stacklevel=3)
    return img


#: The parts of :func:`_too_many_pixels`'s message that
#: :func:`boda.cli._common.handle_errors` finds to fit it to a command without
#: ``--max-side`` (inpaint, quality...): the advice between the guard and the way out
#: names that option, and is left out there.
_PIXEL_LIMIT_GUARD = "(decompression-bomb guard); "
_AT_THIS_MAX_SIDE = " at this max_side"
_PIXEL_LIMIT_WAY_OUT = "pass max_pixels=None (--max-pixels none) if the file is trusted"


def _too_many_pixels(
    path: Path,
    size: tuple[int, int],
    limit: int,
    fmt: str,
    decoded: tuple[int, int] | None = None,
) -> ImageReadError:
    """The refusal of an image of ``size`` (``decoded``: its reduced JPEG decode) over ``limit``."""
    width, height = decoded or size
    what = f"{width}x{height} = {width * height} pixels"
    if decoded is not None:
        what = f"{size[0]}x{size[1]} JPEG decodes to {what}{_AT_THIS_MAX_SIDE}"
        how = "a smaller max_side (--max-side) decodes a JPEG smaller (down to 1/8 per side)"
    elif fmt == "JPEG":
        how = "read it with max_side (--max-side) to decode the JPEG at reduced size"
    else:
        how = f"max_side (--max-side) cannot decode a {fmt} at reduced size (only JPEGs)"
    return ImageReadError(
        path,
        f"too many pixels to open safely: {what} exceeds the limit of {limit} "
        f"{_PIXEL_LIMIT_GUARD}{how}, or {_PIXEL_LIMIT_WAY_OUT}",
    )


def _decode(
    img: Image.Image,
    path: Path,
    max_side: int | None,
    gray: bool,
    max_pixels: int | None,
    resample: Image.Resampling,
    keep_float_values: bool = False,
    color: str = "srgb",
) -> DecodedImage:
    width, height = img.size
    fmt = img.format or "unknown"
    limit = _pixel_limit(max_pixels)
    # A JPEG read with max_side is judged by the pixels it decodes: after draft(), below.
    drafted = fmt == "JPEG" and max_side is not None
    if limit is not None and width * height > limit and not drafted:
        raise _too_many_pixels(path, (width, height), limit, fmt)
    mode = img.mode
    icc = img.info.get("icc_profile") or None
    colour = _colour_handling(img, fmt, mode, icc, color, keep_float_values)
    icc = colour.icc
    lut = colour.plan if colour.plan is not None and colour.plan.kind == "lut" else None
    # Only the tile list is looked at here: 8-bit files are not read or decoded twice.
    deep_colour = fmt in _FORMATS_16 and lut is None and _is_16bit_colour(img)
    data16 = _file_bytes(img) if deep_colour else None
    if data16 is not None and fmt == "PNG" and "exif" not in img.info:
        # Pillow's PNG getexif() decodes the whole image (to 8 bits) to look for an
        # eXIf chunk after the image data: find it here instead, without decoding.
        img.info["exif"] = _png_chunk(data16, b"eXIf") or b""
    elif fmt == "PNG" and "exif" not in img.info:
        # What getexif() would do, here: damaged image data (a CRC error, a broken
        # stream) fail as such, not as unreadable EXIF over a half-decoded image.
        img.load()
    exif, exif_warning = _read_exif(img)
    orientation = exif.get(0x0112, 1)
    metadata = {"xmp": file_xmp(img, turned=orientation != 1), "dpi": file_dpi(img)}
    swapped = orientation in (5, 6, 7, 8)
    stored_width, stored_height = _stored_size(img)
    original_size = (stored_height, stored_width) if swapped else (stored_width, stored_height)
    early = _early_factor((stored_width, stored_height), max_side)
    deep = (
        _decode_16bit_colour(img, data16, orientation, early) if data16 is not None else None
    )
    if deep is None and early > 1 and fmt == "WEBP" and lut is None:
        deep = _decode_webp_reduced(img, early)
        bit_depth_deep = 8
    else:
        bit_depth_deep = 16
    if deep is not None:
        pixels, had_alpha = deep
        if early > 1:
            pixels = _finish_reduced_float(
                pixels, early, (stored_width, stored_height), orientation, max_side, resample
            )
        else:
            pixels = _orient(pixels, orientation)
            new_size = _target_size(original_size, max_side)
            if new_size is not None:
                pixels = _resize_float(pixels, new_size, resample)
        return _finish(
            pixels, None, gray, original_size, fmt, mode, icc, had_alpha, bit_depth_deep,
            exif or None, colour, exif_warning, **metadata,
        )
    bit_depth = 16 if mode in _GRAY16_MODES else 32 if mode == "F" else 8
    if max_side is not None and fmt == "JPEG" and max(width, height) > max_side:
        # draft() picks the largest DCT scale (1/2, 1/4, 1/8) still >= the request.
        # Gray straight from the JPEG's luma only when no colour conversion comes first.
        img.draft("L" if gray and colour.plan is None else "RGB", (max_side, max_side))
    if drafted and limit is not None and img.size[0] * img.size[1] > limit:
        raise _too_many_pixels(path, (width, height), limit, fmt, img.size)
    # Pillow resizes its own decoded buffer faster than a numpy copy of it: OpenCV
    # only decodes JPEGs that need no resize.
    final_size = max_side is None or max(img.size) <= max_side
    quiet = fmt == "JPEG" and final_size and lut is None
    decoded = _decode_jpeg_quietly(img) if quiet else None
    levels_for = _levels_mode(colour)
    if decoded is not None:
        decoded = _orient(decoded, orientation)
        levels_only = levels_for == ("RGB" if decoded.ndim == 3 else "L")
        pixels = None if levels_only else as_float_image(decoded)
        had_alpha, pixels_uint8 = False, decoded
    else:
        stored = img.size  # as decoded (after draft), before any orientation
        with _QUIET.silenced() if fmt == "TIFF" else contextlib.nullcontext():
            img.load()
        early = _early_factor(stored, max_side) if img.mode not in ("LAB", "HSV") else 1
        lut_alpha = False
        if early > 1:  # a huge image: shrunk in its own sample type first
            img, lut_alpha = _reduce_pil(img, early)
        else:
            img = ImageOps.exif_transpose(img) if orientation != 1 else img
        if lut is not None:  # LittleCMS converts 8-bit pixels, transparency flattened first
            img, alpha = _flatten_transparency(img)
            lut_alpha = lut_alpha or alpha
            img = lut.apply_pil(_eight_bit(img, _icc.LUT_MODES[_icc.family(mode)]))
            bit_depth = 8
        if early > 1:
            # Pillow orients a TIFF itself while loading it (and reports it at that size).
            left = 1 if fmt == "TIFF" else orientation
            img = _finish_reduced_pil(img, early, stored, left, max_side, resample)
        pixels, had_alpha, pixels_uint8 = _resized_pixels(
            img, None if early > 1 else max_side, resample, keep_float_values, levels_for
        )
        had_alpha = had_alpha or lut_alpha
        pixels_uint8 = None if lut_alpha and pixels is not None else pixels_uint8
    return _finish(
        pixels, pixels_uint8, gray, original_size, fmt, mode, icc, had_alpha, bit_depth,
        exif or None, colour, exif_warning, **metadata,
    )


_COLOR_MODES = ("srgb", "keep")


@dataclasses.dataclass(frozen=True)
class _Colour:
    """The colour handling of one file: the plan to apply (None: none), the profile to
    return in :attr:`DecodedImage.icc_profile`, and what to report."""

    plan: _icc.ColorPlan | None = None
    icc: bytes | None = None
    converted_from: str | None = None
    warning: str | None = None


_UNTOUCHED = _Colour()


def _colour_handling(
    img: Image.Image,
    fmt: str,
    mode: str,
    icc: bytes | None,
    color: str,
    keep_float_values: bool,
) -> _Colour:
    """What :func:`open_image` does with the colour information of ``img`` (see its
    ``color``).  Files without a profile cost one dictionary look-up; verdicts on
    profiles are cached per profile bytes (:func:`boda._icc.color_plan`)."""
    if keep_float_values and mode == "F":
        return _Colour(icc=icc)
    if icc is not None:
        plan = _icc.color_plan(bytes(icc), mode)
    elif fmt == "PNG" and "gamma" in img.info and "srgb" not in img.info:
        chrm = img.info.get("chromaticity")
        plan = _icc.png_gamma_plan(
            float(img.info["gamma"]), tuple(float(v) for v in chrm) if chrm else None, mode
        )
    else:
        return _UNTOUCHED
    if color == "keep" and plan.is_rgb_profile:  # as stored, with the profile
        return _Colour(icc=icc, warning=plan.warning)
    if plan.kind == "none":  # sRGB already, or a profile that cannot be used
        keep = plan.is_rgb_profile and plan.warning is None
        return _Colour(icc=icc if keep else None, warning=plan.warning)
    return _Colour(plan, None, plan.description, plan.warning)


def _levels_mode(colour: _Colour) -> str | None:
    """The Pillow mode (``"RGB"`` or ``"L"``) whose 8-bit levels ``colour``'s matrix or gray
    plan converts directly (:meth:`boda._icc.ColorPlan.apply`); None: no such plan."""
    return {"matrix": "RGB", "gray": "L"}.get(colour.plan.kind) if colour.plan else None


def _eight_bit(img: Image.Image, target: str) -> Image.Image:
    """``img`` in Pillow mode ``target`` (``RGB``, ``L`` or ``CMYK``) for a LittleCMS
    transform; 16-bit gray is scaled to 8 bits (Pillow's own conversion would clip)."""
    if img.mode == target:
        return img
    if target == "L" and img.mode in _GRAY16_MODES:
        levels = np.asarray(img.convert("I"), dtype=np.float32) / np.float32(257.0)
        return Image.fromarray(np.clip(np.round(levels), 0, 255).astype(np.uint8))
    return img.convert(target)


def _finish(
    pixels: np.ndarray | None,
    pixels_uint8: np.ndarray | None,
    gray: bool,
    original_size: tuple[int, int],
    fmt: str,
    mode: str,
    icc: bytes | None,
    had_alpha: bool,
    bit_depth: int,
    exif: Image.Exif | None = None,
    colour: _Colour = _UNTOUCHED,
    exif_warning: str | None = None,
    xmp: bytes | None = None,
    dpi: tuple[float, float] | None = None,
) -> DecodedImage:
    """The :class:`DecodedImage` of decoded ``pixels``, converted to sRGB (``colour``'s
    matrix or gray plan, in float: 16-bit files keep their precision), then to gray or RGB.

    ``pixels`` is None when only the 8-bit levels ``pixels_uint8`` were made (in the
    mode :func:`_levels_mode` names): the plan converts them in strips, so no float copy
    of the decoded image is ever made."""
    plan = colour.plan
    if plan is not None and plan.kind in ("matrix", "gray"):
        source = pixels
        if pixels is not None and pixels.ndim == 2 and plan.kind == "matrix":
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        elif pixels is not None and pixels.ndim == 3 and plan.kind == "gray":  # pragma: no cover
            pixels = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        # 8-bit levels when they are at hand: the tone curves become 256-entry tables
        eight_bit = pixels_uint8 is not None and (
            pixels is None or pixels_uint8.shape == pixels.shape
        )
        with np.errstate(all="ignore"):  # a curve that overflows is caught below
            converted = plan.apply(pixels_uint8 if eight_bit else pixels)
        # min and max carry any NaN or inf, without a boolean image beside the result
        if converted.size == 0 or np.isfinite([converted.min(), converted.max()]).all():
            pixels, pixels_uint8 = converted, None
        else:  # color_plan's checks should rule this out: never return NaN or inf
            pixels = source if source is not None else as_float_image(pixels_uint8)
            colour = _Colour(
                warning=f"embedded colour profile {plan.description!r} gives infinite or "
                "undefined values for these pixels; ignored, pixels read as sRGB"
            )
    if gray and pixels.ndim == 3:
        pixels_uint8 = None  # the gray pixels below are computed, not decoded
        pixels = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    elif not gray and pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    return DecodedImage(
        pixels, original_size, fmt, mode, icc, had_alpha, pixels_uint8, bit_depth, exif,
        converted_from=colour.converted_from, color_warning=colour.warning,
        exif_warning=exif_warning, xmp=xmp, dpi=dpi,
    )


def read_image(
    path: str | Path,
    max_side: int | None = None,
    *,
    gray: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    resample: str = "lanczos",
    color: str = "srgb",
) -> np.ndarray:
    """Read an image file as a float32 array in ``[0, 1]``.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to read.
    max_side : int, optional
        Cap on the longer side of the result (JPEG draft decoding + Lanczos
        resize); the image is never upscaled.
    gray : bool
        Return ``(H, W)`` gray (Rec. 601 luma) instead of ``(H, W, 3)`` RGB.
    max_pixels : int or None
        Decompression-bomb guard, see :data:`DEFAULT_MAX_PIXELS`.
    resample : {"lanczos", "box", "bilinear"}
        Filter of the ``max_side`` resize.
    color : {"srgb", "keep"}
        ``"srgb"`` (the default): pixels of a file with an embedded non-sRGB
        colour profile are converted to sRGB; ``"keep"``: RGB values as
        stored (see :func:`open_image`).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W, 3)`` or ``(H, W)``, EXIF-oriented, sRGB-encoded (with
        the default ``color``).  Transparent pixels are composited over white.

    Notes
    -----
    Colour management, as a browser does it (relative colorimetric intent,
    colours outside sRGB clipped to ``[0, 1]``):

    - matrix/TRC RGB profiles (Display P3, Adobe RGB, ProPhoto...) and gray
      profiles are converted in float by :mod:`boda._icc`, so 16-bit files
      keep 16-bit precision (within an 8-bit level of LittleCMS);
    - CMYK profiles and table-based (``A2B0``) RGB or gray profiles are
      converted by LittleCMS (:mod:`PIL.ImageCms`) with 8 bits per channel,
      so a 16-bit file with such a profile comes back with ``bit_depth`` 8;
      a CMYK file without a profile uses Pillow's naive formula;
    - sRGB profiles (any profile that moves no colour by more than an 8-bit
      level) and files without a profile are left untouched, bit for bit;
    - a PNG without ``iCCP`` or ``sRGB`` chunk but with ``gAMA`` is decoded
      with that gamma (and the ``cHRM`` primaries when present), in both
      modes, since no profile could carry them into an edit's output; a
      ``gAMA`` of 1/2.2 means sRGB, and ``cHRM`` without ``gAMA`` is ignored;
    - a profile that cannot be parsed, or that describes other pixels than
      the file's (an RGB profile in a gray PNG), is ignored: the pixels are
      read as sRGB and :attr:`DecodedImage.color_warning` says why;
    - EXIF's ColorSpace tag (Adobe RGB cameras without an ICC profile) is
      not looked at; conversion happens after the ``max_side`` resize and
      after transparency is composited over white (white stays white).

    Raises
    ------
    ImageReadError
        Naming the path and the reason when the file cannot be read.

    Examples
    --------
    >>> img = read_image("examples/images/kodim23.png", max_side=256)  # doctest: +SKIP
    >>> img.shape, img.dtype  # doctest: +SKIP
    ((171, 256, 3), dtype('float32'))
    """
    return open_image(
        path, max_side, gray=gray, max_pixels=max_pixels, resample=resample, color=color
    ).pixels
