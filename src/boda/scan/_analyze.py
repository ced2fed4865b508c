"""Analysing one file: the work a scan worker does.

:func:`analyze_file` never raises for a bad file: it returns an
:class:`~boda.catalog.ImageRecord` with ``status="error"`` and the reason, so
one broken file cannot abort a batch.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import traceback
import warnings

import numpy as np
from PIL import Image

from boda.catalog import ImageRecord
from boda.core.image import trusted_pixels
from boda.errors import ImageReadError, InvalidParameterError
from boda.io import DEFAULT_MAX_PIXELS, DecodedImage, encode_jpeg, open_image
from boda.scan._walk import FoundFile

__all__ = [
    "ANALYSIS_VERSION", "analyze_file", "analyze_pixels", "capture_data", "image_layout",
    "shrink", "THUMBNAIL_SIDE",
]

#: Longer side of the JPEG thumbnails stored in the catalog for the report.
THUMBNAIL_SIDE = 200

#: Thumbnail pixels the colour measures look at (every 2nd-4th of them): the same
#: grayscale verdicts as all of them (see color_summary) at half the cost.
_COLOUR_PIXELS = 10_000
#: The chroma percentile of the grayscale verdict (color_summary's default).
_GRAYSCALE_PERCENTILE = 99.0

#: What only a described analysis (``describe=True``, ``boda scan --describe``) adds:
#: scores and ``extra`` fields that decide no flag.
DESCRIPTIVE_MEASURES = ("dominant_colors", "colorfulness", "edge_density")

#: Raised whenever a stored score or hash would come out differently for the
#: same file; a catalog made by another version is then analysed afresh.
#: 2: the pixel hash moved from BLAKE2b to XXH3-128; the colour measures look
#: at 10 000 of the thumbnail's pixels; edge density halves large images first.
#: 3: the blur verdict's anisotropy leaves out directions lost in the noise (very
#: low-contrast photos); mean lightness and contrast are exact, not from the
#: 256-bin histogram; transparent images are composited before the resize.
#: 4: files with a non-sRGB colour profile (Display P3, Adobe RGB, gray, CMYK...)
#: or a PNG gAMA are converted to sRGB on read, so their scores, pixel hashes,
#: thumbnails and swatches change.
#: 5: the pixel hash of a transparent image covers its alpha, and its pHash sees
#: it over mid-grey; images under 8 pixels a side get no pHash.  The blur
#: verdict's anisotropy fades out under 96 px, images of 33-65 px are measured
#: whole, and images too small or flat to measure get no sharpness score.  Records
#: keep the file's mode, channels, bit depth and transparency in ``extra``
#: (:func:`image_layout`; a record of a catalog from before has none: null in exports),
#: and its EXIF capture time and camera (:func:`capture_data`).
#: 6: the blur verdict subtracts noise as a function of brightness (camera noise
#: is stronger in the shadows) and leaves out tiles whose detail does not stand
#: clear of it: blurred low-light photos were called sharp, and frames of pure
#: noise now get no verdict.
#: (Not raised for ``extra["phash_mirrored"]``, the pHash of the mirror image: no
#: stored value changes; records analysed before it simply have none.)
ANALYSIS_VERSION = 6


def shrink(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Area-average ``pixels`` by an integer factor so the longer side is <= ``max_side``.

    Box averaging is the exact mean of each block, so global colour statistics
    (means, chroma) are preserved; edge rows/columns that do not fill a block
    are dropped.
    """
    import cv2

    height, width = pixels.shape[:2]
    factor = -(-max(height, width) // max_side)  # ceil
    if factor <= 1:
        return pixels
    h, w = height // factor, width // factor
    if h == 0 or w == 0:  # a thin strip: plain subsampling keeps at least one row
        return np.ascontiguousarray(pixels[::factor, ::factor])
    if pixels.dtype != np.float32 or not pixels.flags.c_contiguous:
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    # INTER_AREA with an integer factor is exactly the block mean (tested), and
    # several times faster than numpy reductions over the block axes.  The crop
    # is a view: OpenCV reads rows at any stride, so it needs no copy (2x faster).
    return cv2.resize(pixels[: h * factor, : w * factor], (w, h), interpolation=cv2.INTER_AREA)


def analyze_pixels(
    pixels: np.ndarray,
    *,
    pixels_uint8: np.ndarray | None = None,
    over_black: np.ndarray | None = None,
    describe: bool = True,
) -> tuple[dict[str, float], dict]:
    """Every per-image measure of the scan on decoded pixels.

    Returns ``(scores, extra)``: scalar scores by name and non-scalar results;
    ``extra["thumbnail"]`` is the small image the colour measures used.
    ``pixels_uint8``, the same pixels as decoded 8-bit values
    (:attr:`boda.io.DecodedImage.pixels_uint8`), makes the pixel hash cheaper
    (same value).  ``over_black``, for an image with transparency, is the same
    read composited over black (``pixels`` being over white): the pixel hash
    then covers the alpha, and the pHash sees the image over mid-grey.
    ``extra["phash"]`` is None for an image under
    :data:`boda.duplicates.MIN_PHASH_SIDE` pixels a side (too small to hash), and
    so is ``extra["phash_mirrored"]``, the pHash of the left-right mirror image
    (:func:`boda.duplicates.phash_pair`).

    ``describe`` adds the measures that decide no flag (:data:`DESCRIPTIVE_MEASURES`):
    the dominant colours (``extra["dominant_colors"]``), ``colorfulness`` and
    ``edge_density``, about 1.2 ms of an image's ~5-8 ms at 0.1-0.4 MP.  ``boda
    scan`` leaves them out unless asked (``--describe``).
    """
    from boda.core.image import as_float_image, finite_pixels, trusted_pixels

    # Checked once here; the gray, the thumbnail and every measure below would
    # each check them again (five full passes per image).
    pixels = finite_pixels(as_float_image(pixels, name="pixels"), "pixels")
    if over_black is not None:
        over_black = finite_pixels(as_float_image(over_black, name="over_black"), "over_black")
    if not isinstance(describe, bool):
        raise InvalidParameterError(f"describe must be True or False, got {describe!r}")
    with trusted_pixels():
        return _measure_pixels(pixels, pixels_uint8, over_black, describe)


def _measure_pixels(
    pixels: np.ndarray,
    pixels_uint8: np.ndarray | None,
    over_black: np.ndarray | None,
    describe: bool,
) -> tuple[dict[str, float], dict]:
    from boda import duplicates, edges, quality
    from boda.color._measures import _tone
    from boda.core.image import to_gray

    scores: dict[str, float] = {}
    extra: dict = {}
    gray = to_gray(pixels)  # once, for the blur, exposure and edge measures
    # The classic blur measures decide no flag and would double the cost.
    report = quality.analyze(gray, classic_measures=False)
    # A measure an image is too small or too flat for is NaN: left out (the
    # catalog's JSON stays strict, and a missing score flags nothing).
    scores.update({k: float(v) for k, v in report.scores.items() if math.isfinite(v)})
    # Colour statistics are global: a THUMBNAIL_SIDE version answers them at a
    # fraction of the cost, and doubles as the report's thumbnail.
    small = shrink(pixels, THUMBNAIL_SIDE)
    if describe:
        scores["edge_density"] = edges.edge_density(gray)
        _describe_colours(small, scores, extra)
    else:  # the grayscale verdict and L*, the same values as color_summary's
        tone = _tone(small, _COLOUR_PIXELS, _GRAYSCALE_PERCENTILE)
        scores["mean_L"], scores["std_L"] = tone.mean_lightness, tone.std_lightness
        scores["grayscale"] = tone.grayscale_score
    extra["thumbnail"] = small
    extra["pixel_hash"] = duplicates.pixel_hash(
        pixels if pixels_uint8 is None else pixels_uint8, over_black=over_black
    )
    extra["phash"], extra["phash_mirrored"] = _perceptual_hash(pixels, small, over_black)
    return scores, extra


def _describe_colours(small: np.ndarray, scores: dict[str, float], extra: dict) -> None:
    """The colour measures of ``small`` (the thumbnail), swatches and colourfulness
    included, into ``scores`` and ``extra``."""
    from boda import color

    # Swatches for the report: 1000 samples and 10 Lloyd steps give the same
    # colours as 10 000 samples run to convergence, up to k-means' own local
    # optima (measured on the 24 Kodak thumbnails against that reference: mean
    # error of the top fraction 0.055 with 1000 samples, 0.053 with 2000; mean
    # palette ΔE*ab 4.1 and 5.5).
    summary = color.color_summary(
        small, k=5, seed=0, max_samples=1000, max_iter=10, max_pixels=_COLOUR_PIXELS
    )
    scores["colorfulness"] = summary.colorfulness
    scores["mean_L"], scores["std_L"] = summary.mean_lightness, summary.std_lightness
    scores["grayscale"] = summary.grayscale_score
    extra["dominant_colors"] = [
        {"rgb": [round(c, 4) for c in rgb], "fraction": round(fraction, 4)}
        for rgb, fraction in summary.dominant_colors
    ]


def _perceptual_hash(
    pixels: np.ndarray, small: np.ndarray, over_black: np.ndarray | None
) -> tuple[int, int] | tuple[None, None]:
    """The pHash the scan stores and the pHash of the left-right mirror image
    (:func:`boda.duplicates.phash_pair`): of the thumbnail, None if too small to
    mean anything.

    A transparent image is hashed over mid-grey, the mean of its reads over white
    and over black: over white, white glyphs on transparency would all be blank
    cards (and over black, black ones), while over grey both light and dark
    shapes keep their outline.
    """
    from boda import duplicates

    if min(pixels.shape[:2]) < duplicates.MIN_PHASH_SIDE:
        return None, None
    if over_black is not None:
        pixels = 0.5 * (pixels + over_black)
        small = 0.5 * (small + shrink(over_black, THUMBNAIL_SIDE))  # a box mean is linear
    # pHash shrinks to 32x32 anyway; starting from the box-averaged thumbnail is
    # ~10x cheaper and moves hashes by at most a few bits (within the tolerance);
    # a thumbnail thinner than the hash needs (a long strip) hashes the pixels.
    source = small if min(small.shape[:2]) >= duplicates.MIN_PHASH_SIDE else pixels
    phash, mirrored = duplicates.phash_pair(source)
    return int(phash), int(mirrored)


def _found_at(path: str | os.PathLike) -> FoundFile:
    """A :class:`FoundFile` for a path given by hand (stat errors recorded, not raised)."""
    path = os.fspath(path)
    name = os.fsencode(os.path.basename(path))
    try:
        info = os.stat(path)
    except OSError as exc:
        return FoundFile(path=path, relpath=name, size=0, mtime_ns=0, error=str(exc.strerror))
    return FoundFile(path=path, relpath=name, size=info.st_size, mtime_ns=info.st_mtime_ns)


def analyze_file(
    found: FoundFile | str | os.PathLike,
    max_side: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    describe: bool = True,
) -> ImageRecord:
    """Decode one file at ``max_side`` and measure it, as a scan does; failures
    become error records (``status="error"`` with the reason), never exceptions.

    Parameters
    ----------
    found : FoundFile or path
        What the scan's walk found, or simply a file path (its ``relpath`` is
        then the file's name).
    max_side : int, optional
        Analysis resolution; default :data:`boda.quality.ANALYSIS_MAX_SIDE`,
        what ``boda scan`` uses.
    max_pixels : int or None
        Decompression-bomb guard of the read (see :func:`boda.io.open_image`):
        a file over it becomes an error record saying so.
    describe : bool
        Also the measures that decide no flag (:data:`DESCRIPTIVE_MEASURES`; see
        :func:`analyze_pixels`).

    Returns
    -------
    ImageRecord
        Scores in ``.scores``; flags are decided across files by the scan.
    """
    if not isinstance(describe, bool):  # a caller's mistake, not a file's: raised
        raise InvalidParameterError(f"describe must be True or False, got {describe!r}")
    if not isinstance(found, FoundFile):
        found = _found_at(found)
    if max_side is None:
        from boda.quality import ANALYSIS_MAX_SIDE

        max_side = ANALYSIS_MAX_SIDE
    record = ImageRecord(
        relpath=found.relpath, size=found.size, mtime_ns=found.mtime_ns, status="error"
    )
    if found.error is not None:
        record.error = found.error
        return record
    if found.size == 0:
        record.error = ImageReadError.EMPTY
        return record
    try:
        # Box (area-average) resizing: fastest, and what the blur calibration assumes.
        # Read as sRGB (color="srgb", the default): every measure assumes sRGB pixels.
        decoded = open_image(
            found.path, max_side=max_side, resample="box", max_pixels=max_pixels
        )
        over_black = None
        if decoded.has_alpha:  # a second read tells the transparency (pixel hash, pHash)
            over_black = open_image(
                found.path, max_side=max_side, resample="box", max_pixels=max_pixels,
                background=0.0,
            ).pixels
            if np.array_equal(over_black, decoded.pixels):
                over_black = None  # an alpha channel that is opaque throughout: as RGB
        # open_image's pixels are finite and in [0, 1] by construction (it refuses a
        # float file holding NaN or infinity): a full pass checking them is saved.
        with trusted_pixels():
            scores, extra = analyze_pixels(
                decoded.pixels, pixels_uint8=decoded.pixels_uint8, over_black=over_black,
                describe=describe,
            )
        width, height = decoded.original_size
        scores["aspect_ratio"] = max(width, height) / min(width, height)
        record.pixel_hash = extra.pop("pixel_hash")
        record.phash = extra.pop("phash")
        mirrored = extra.pop("phash_mirrored")
        if mirrored is not None:  # 16 hex digits, as the exports write phash
            extra["phash_mirrored"] = f"{mirrored:016x}"
        with trusted_pixels():  # a box mean of pixels analyze_pixels checked: finite
            record.thumbnail = encode_jpeg(
                extra.pop("thumbnail"), max_side=THUMBNAIL_SIDE, quality=80
            )
    except ImageReadError as exc:
        record.error = exc.reason
        return record
    except MemoryError:
        record.error = ImageReadError.OUT_OF_MEMORY
        return record
    except Exception as exc:  # noqa: BLE001 - one file must never abort the batch
        last = traceback.extract_tb(exc.__traceback__)[-1]
        record.error = (
            f"internal error {type(exc).__name__}: {exc} (at {last.filename}:{last.lineno}); "
            "please report this file"
        )
        return record
    record.status = "ok"
    record.width, record.height = width, height
    record.format = decoded.format
    record.scores = scores
    record.extra = {**extra, **image_layout(decoded), **capture_data(decoded)}
    return record


def image_layout(decoded: DecodedImage) -> dict[str, object]:
    """What the file holds, as a record's ``extra`` keeps it: ``mode`` (Pillow's mode
    name, or the RAW reader's), ``channels`` (alpha included), ``bit_depth`` (bits a
    channel) and ``has_alpha`` (an alpha channel or a transparent colour).

    Decoded pixels are always RGB, so these say what a data loader that reads the file
    as it is (``np.asarray(PIL.Image.open(path))``, ``torchvision.io.decode_image``)
    gets: mixed 1-, 3- and 4-channel files do not stack into one batch.  A palette
    file (``P``) holds its palette's colours: 3 channels of 8 bits (4 with a transparent
    colour), whatever the index width, as decoders that expand it give them (OpenCV,
    libpng; ``np.asarray`` of Pillow's ``P`` image gives the indices instead); a
    transparent colour (PNG ``tRNS``) in a gray or RGB file counts as an alpha channel.

    Examples
    --------
    >>> from boda.io import open_image                       # doctest: +SKIP
    >>> image_layout(open_image("logo.png"))                 # doctest: +SKIP
    {'mode': 'RGBA', 'channels': 4, 'bit_depth': 8, 'has_alpha': True}
    """
    mode = decoded.mode
    base = mode.split(";")[0]  # "I;16B" -> "I"; the RAW reader's "RGB;16" -> "RGB"
    try:
        bands = Image.getmodebands(base)
    except (KeyError, ValueError):  # a mode Pillow does not know: no count
        channels = None
    else:
        channels = bands + (2 if base in ("P", "PA") else 0)  # an index -> 3 colours
        if decoded.has_alpha and base not in ("LA", "La", "PA", "RGBA", "RGBa"):
            channels += 1  # a transparent colour, not a channel
    depth = decoded.file_bit_depth if decoded.file_bit_depth is not None else decoded.bit_depth
    return {"mode": mode, "channels": channels, "bit_depth": depth,
            "has_alpha": bool(decoded.has_alpha)}


# EXIF tags (EXIF 2.32 / CIPA DC-008): IFD0's, then the Exif IFD's.
_MAKE, _MODEL, _DATE_TIME, _EXIF_IFD = 0x010F, 0x0110, 0x0132, 0x8769
_ORIGINAL = (0x9003, 0x9291, 0x9011)  # DateTimeOriginal, SubSecTimeOriginal, OffsetTimeOriginal
_MODIFIED = (0x0132, 0x9290, 0x9010)  # DateTime, SubSecTime, OffsetTime
_EXIF_TIME = re.compile(r"(\d{4})[:-](\d\d)[:-](\d\d)[ T](\d\d):(\d\d):(\d\d)")
_EXIF_OFFSET = re.compile(r"[+-](\d\d):(\d\d)")


def capture_data(decoded: DecodedImage) -> dict[str, str]:
    """The capture time and camera of the file's EXIF data, as a record's ``extra``
    keeps them: ``taken`` and ``camera``, each left out when the file does not say.

    ``taken`` is the time the photo was taken as ISO 8601 text,
    ``"2026-11-18T14:03:07.25+09:00"``: EXIF DateTimeOriginal with its
    SubSecTimeOriginal and OffsetTimeOriginal when present, else DateTime (the time the
    file was written, by the camera for most photos) with SubSecTime and OffsetTime.
    Without an offset it is the camera's clock time, zone unknown.  Never the file's
    modification time (copies change it).  ``camera`` is ``"Make Model"``, the make left
    out when the model already starts with it (``"Canon EOS R5"``, ``"NIKON D850"``).

    Garbage is ignored, never an error: a value of the wrong type, a blank date
    (``"0000:00:00 00:00:00"``), an impossible one (month 13) or one before 1800 or
    after 2200, an offset that is not ``+HH:MM``, control characters in names.  Reads
    the tags :func:`boda.io.open_image` already parsed (JPEG, PNG, WebP, TIFF, HEIC,
    AVIF, TIFF-based RAW files): the file is not opened again.

    Examples
    --------
    >>> from boda.io import open_image                       # doctest: +SKIP
    >>> capture_data(open_image("IMG_0001.JPG"))             # doctest: +SKIP
    {'taken': '2026-11-18T14:03:07.25+09:00', 'camera': 'Canon EOS R5'}
    """
    tags = decoded.exif_tags
    if not tags:
        return {}
    try:
        exif_ifd = tags.get(_EXIF_IFD)
        if not isinstance(exif_ifd, dict):  # a RAW file's tags hold the IFD itself
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "possibly corrupt": what is read is kept
                exif_ifd = tags.get_ifd(_EXIF_IFD) if exif_ifd is not None else {}
    except Exception:  # noqa: BLE001 - a damaged Exif IFD: only IFD0 is used
        exif_ifd = {}
    out: dict[str, str] = {}
    for date, subsec, offset in (_ORIGINAL, _MODIFIED):
        source = tags if date == _DATE_TIME else exif_ifd
        taken = _exif_time(source.get(date), exif_ifd.get(subsec), exif_ifd.get(offset))
        if taken is not None:
            out["taken"] = taken
            break
    make, model = _exif_text(tags.get(_MAKE)), _exif_text(tags.get(_MODEL))
    if make and model and model.split()[0].casefold() == make.split()[0].casefold():
        make = None  # "Canon" "Canon EOS R5"; "NIKON CORPORATION" "NIKON D850"
    camera = " ".join(part for part in (make, model) if part)
    if camera:
        out["camera"] = camera
    return out


def _exif_text(value: object) -> str | None:
    """An EXIF ASCII value as text, whitespace collapsed; None when it is not text."""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.split("\x00", 1)[0]  # a fixed-size field padded with NULs
    if not value.isprintable():
        return None
    return " ".join(value.split())[:100] or None


def _exif_time(date: object, subsec: object, offset: object) -> str | None:
    """The ISO 8601 text of an EXIF date, sub-second digits and offset; None when the
    date is missing or garbage (a bad sub-second or offset is left out alone)."""
    text = _exif_text(date)
    match = _EXIF_TIME.fullmatch(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(v) for v in match.groups())
    if not 1800 <= year <= 2200:
        return None
    try:
        taken = datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00", month 13, 25 o'clock...
        return None
    out = taken.isoformat()
    digits = _exif_text(subsec)
    if digits and digits.isascii() and digits.isdigit():
        out += "." + digits[:9]
    zone = _exif_text(offset)
    match = _EXIF_OFFSET.fullmatch(zone) if zone else None
    if match and int(match[1]) <= 14 and int(match[2]) < 60:
        out += zone
    return out
