"""Embedded colour profiles: parse them, and convert pixels to sRGB on read.

:func:`boda.io.open_image` asks :func:`color_plan` what to do with a file's
profile and then applies the answer:

- **matrix/TRC RGB profiles** (Display P3, Adobe RGB (1998), ProPhoto RGB...:
  the spec's three-component matrix-based model) and **gray TRC profiles**
  (its monochrome model) are converted in
  numpy, in float, so 16-bit files keep their precision: the tone curves
  (``rTRC``/``gTRC``/``bTRC`` or ``kTRC``) decode to linear light, the
  colourant matrix (``rXYZ``/``gXYZ``/``bXYZ``) goes to the D50 profile
  connection space, the inverse of sRGB's own D50 matrix (its primaries
  Bradford-adapted from D65, as LittleCMS's built-in sRGB profile has them)
  comes back to linear sRGB, which is clipped to ``[0, 1]`` and encoded with
  the IEC 61966-2-1 curve.  This is what LittleCMS computes between two
  matrix-shaper profiles with the relative colorimetric intent (no white-point
  scaling: the PCS is already relative to the media white, so ``wtpt`` and
  ``chad`` are parsed but not used);
- **LUT-based profiles** (CMYK, and RGB or gray profiles with an ``A2B0`` or
  ``A2B1`` table, which take precedence over a matrix as in LittleCMS) are
  converted by LittleCMS through :mod:`PIL.ImageCms`, with 8-bit precision;
- a profile that maps every colour within one 8-bit level of itself is sRGB
  (the usual ``sRGB IEC61966-2.1`` profile, LittleCMS's own...): its pixels
  are left as they are (two levels, and 0.25 on average, for table-based
  profiles, whose interpolation alone moves dark colours by that much).

Verdicts and transforms are cached per profile bytes (a scan worker sees the
same camera profile over and over).  A profile that cannot be parsed never
makes a file unreadable: its pixels are taken as sRGB and the plan carries a
warning.

References
----------
.. [1] International Color Consortium, *ICC.1:2022 (Profile version 4.4.0.0)*,
   and *ICC.1:2004-10 (Profile version 4.2.0.0)*: the profile header and tag
   table (clause 7), the tag types curveType, parametricCurveType, XYZType,
   s15Fixed16ArrayType and multiLocalizedUnicodeType (clause 10), and the
   matrix-based and monochrome computational models; textDescriptionType:
   ICC.1:2001-04 (version 2 profiles).
.. [2] IEC 61966-2-1:1999, *Default RGB colour space - sRGB*.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import io as _io
import struct
import threading

import numpy as np

from boda.core.colorimetry import (
    D65_XY,
    SRGB_PRIMARIES_XY,
    chromatic_adaptation_matrix,
    normalised_primary_matrix,
    srgb_encode,
    xy_to_xyz,
)

__all__ = ["IccProfile", "ColorPlan", "Curve", "parse_profile", "color_plan", "png_gamma_plan"]

#: The PCS illuminant of every ICC profile (the header's PCS illuminant field), as
#: LittleCMS stores it.
D50 = np.array([0.9642, 1.0, 0.8249])
#: A profile whose conversion moves no colour of a test grid by more than this
#: (in ``[0, 1]`` units) is taken as sRGB and its pixels are left untouched.
SRGB_TOLERANCE = 1.0 / 255.0
#: The same for table-based profiles, in 8-bit levels (their interpolation alone moves
#: dark colours by a level or two); the mean move must also stay under 0.25 level.
LUT_SRGB_LEVELS = 2


def _rgb_to_pcs_matrix(primaries, white_xy) -> np.ndarray:
    """RGB (linear) -> XYZ D50 matrix of a space given by chromaticities, Bradford-adapted
    from its white to D50: what an ICC profile's ``rXYZ``/``gXYZ``/``bXYZ`` columns hold."""
    white = xy_to_xyz(white_xy)
    return chromatic_adaptation_matrix(white, D50) @ normalised_primary_matrix(primaries, white)


#: sRGB's linear RGB -> XYZ D50 matrix and its inverse (PCS -> linear sRGB).
SRGB_TO_PCS = _rgb_to_pcs_matrix(SRGB_PRIMARIES_XY, D65_XY)
PCS_TO_SRGB = np.linalg.inv(SRGB_TO_PCS)


#: A ``curv`` table with more samples than this is resampled to this many (linear
#: interpolation between the file's samples, read one by one): real profiles use 256
#: to 4096 samples, which stay exact, and a 16-bit input needs no more, while a
#: crafted table can hold 2^32 - 1 of them.
MAX_CURVE_SAMPLES = 4096
#: Profile caches (:func:`color_plan`, LittleCMS transforms) keep at most this many
#: entries and this many bytes (profile bytes and curve samples); a larger entry is
#: not kept.  Keys are digests of the profile, so a cache never holds a profile's bytes
#: for its key.
PROFILE_CACHE_ENTRIES = 64
PROFILE_CACHE_BYTES = 32 << 20


#: Pixels per strip in :meth:`ColorPlan.apply` (float32 temporaries of ~3 MB each).
_STRIP_PIXELS = 1 << 18


class ProfileError(ValueError):
    """An ICC profile that cannot be parsed (truncated, a tag out of range...)."""


@dataclasses.dataclass(frozen=True)
class Curve:
    """A tone reproduction curve: encoded value in ``[0, 1]`` -> linear light.

    Attributes
    ----------
    kind : {"gamma", "table", "parametric"}
        ``curv`` with one entry (a u8Fixed8 gamma), ``curv`` with a table of
        uint16 samples (curveType), or ``para`` (parametricCurveType).
    params : tuple of float
        The gamma; the table values divided by 65535; or the function type
        followed by ``g, a, b, c, d, e, f``.

    Examples
    --------
    >>> Curve("gamma", (2.0,))(np.array([0.5], np.float32)).tolist()
    [0.25]
    """

    kind: str
    params: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate on float32 ``x`` (clipped to ``[0, 1]`` first, as LittleCMS's integer
        input is); returns float32.

        Parametric functions (parametricCurveType's function table): type 0 ``Y = X^g``; 1
        ``(aX+b)^g`` for ``X >= -b/a``, else 0; 2 the same ``+ c``, else ``c``;
        3 ``(aX+b)^g`` for ``X >= d``, else ``cX``; 4 ``(aX+b)^g + e`` for
        ``X >= d``, else ``cX + f``.  A table is interpolated linearly between
        its equally spaced samples.
        """
        x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
        if self.kind == "gamma":
            return np.power(x, np.float32(self.params[0])).astype(np.float32)
        if self.kind == "table":
            table = np.asarray(self.params, dtype=np.float64)
            if table.size == 0:
                return x
            grid = np.linspace(0.0, 1.0, table.size)
            return np.interp(x, grid, table).astype(np.float32)
        function, g, a, b, c, d, e, f = (*self.params, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)[:8]
        f32 = np.float32
        powered = np.power(np.maximum(x * f32(a) + f32(b), f32(0.0)), f32(g))
        if function == 0:
            return np.power(x, f32(g)).astype(np.float32)
        if function in (1, 2):
            threshold = -b / a if a else 0.0
            offset = c if function == 2 else 0.0
            return np.where(x >= threshold, powered + f32(offset), f32(offset)).astype(np.float32)
        if function == 3:
            return np.where(x >= d, powered, x * f32(c)).astype(np.float32)
        return np.where(x >= d, powered + f32(e), x * f32(c) + f32(f)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class IccProfile:
    """What boda reads from an ICC profile (ICC.1:2022 clause 7: header and tag table).

    Attributes
    ----------
    color_space : str
        The data colour space of the header, bytes 16-19 (``"RGB "``,
        ``"GRAY"``, ``"CMYK"``...; the header's data colour space field).
    pcs : str
        The profile connection space, bytes 20-23 (``"XYZ "`` or ``"Lab "``).
    version : int
        Major version (2 or 4).
    description : str
        The ``desc`` tag (``textDescriptionType`` or ``multiLocalizedUnicodeType``),
        ``""`` when absent.
    tags : frozenset of str
        The signatures in the tag table.
    matrix : numpy.ndarray or None
        ``(3, 3)``, columns ``rXYZ``, ``gXYZ``, ``bXYZ`` (linear RGB -> XYZ D50).
    curves : tuple of Curve
        ``(rTRC, gTRC, bTRC)`` or ``(kTRC,)``; empty when absent.
    white : numpy.ndarray or None
        ``wtpt`` (media white point), informative.
    chad : numpy.ndarray or None
        ``(3, 3)`` chromatic adaptation matrix, informative.
    """

    color_space: str
    pcs: str
    version: int
    description: str
    tags: frozenset
    matrix: np.ndarray | None
    curves: tuple
    white: np.ndarray | None
    chad: np.ndarray | None

    @property
    def has_lut(self) -> bool:
        """Whether a device-to-PCS table is present (``A2B0``/``A2B1``/``D2B0``), which
        LittleCMS uses in preference to the matrix and tone curves."""
        return bool(self.tags & {"A2B0", "A2B1", "D2B0"})


def _s15(data: bytes, count: int) -> np.ndarray:
    """``count`` s15Fixed16Number values (the spec's basic number type) from ``data``."""
    return np.array(struct.unpack(f">{count}i", data[: 4 * count]), dtype=np.float64) / 65536.0


def _parse_xyz(data: bytes) -> np.ndarray:
    """An ``XYZ `` tag (XYZType): type, 4 reserved bytes, 3 s15Fixed16."""
    if data[:4] != b"XYZ " or len(data) < 20:
        raise ProfileError(f"expected an XYZ tag, found {data[:4]!r}")
    return _s15(data[8:], 3)


def _parse_curve(data: bytes) -> Curve:
    """A ``curv`` (curveType) or ``para`` (parametricCurveType) tag.

    ``curv``: uint32 count after the reserved bytes; 0 is the identity, 1 a
    u8Fixed8Number gamma, more a table of uint16 samples over ``[0, 1]``.
    ``para``: uint16 function type (0-4), 2 reserved bytes, then 1, 3, 4, 5 or
    7 s15Fixed16 parameters ``g, a, b, c, d, e, f``; the exponent ``g`` must be
    positive (a power of 0 or below sends black to infinity or flattens the curve).
    A table of more than :data:`MAX_CURVE_SAMPLES` samples is resampled to that many.
    """
    kind = data[:4]
    if kind == b"curv":
        (count,) = struct.unpack(">I", data[8:12])
        if count == 0:
            return Curve("gamma", (1.0,))
        if count == 1:
            return Curve("gamma", (struct.unpack(">H", data[12:14])[0] / 256.0,))
        if len(data) < 12 + 2 * count:
            raise ProfileError("curv table is truncated")
        table = np.frombuffer(data, dtype=">u2", count=count, offset=12)
        if count > MAX_CURVE_SAMPLES:  # sample the table where the resampled one needs it
            at = np.linspace(0.0, count - 1, MAX_CURVE_SAMPLES)
            below = np.floor(at).astype(np.int64)
            above = np.minimum(below + 1, count - 1)
            weight = at - below
            values = table[below] * (1.0 - weight) + table[above] * weight
        else:
            values = table.astype(np.float64)
        return Curve("table", tuple((values / 65535.0).tolist()))
    if kind == b"para":
        (function,) = struct.unpack(">H", data[8:10])
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(function)
        if count is None or len(data) < 12 + 4 * count:
            raise ProfileError(f"unknown or truncated parametric curve (type {function})")
        params = _s15(data[12:], count)
        if not params[0] > 0.0:
            raise ProfileError(f"parametric curve with exponent g = {params[0]:g} (must be > 0)")
        return Curve("parametric", (float(function), *(float(v) for v in params)))
    raise ProfileError(f"unsupported tone curve type {kind!r}")


def _parse_description(data: bytes) -> str:
    """The text of a ``desc`` tag: v2 textDescriptionType (ICC.1:2001-04 6.5.17, an ASCII
    count and string) or v4 multiLocalizedUnicodeType (the first record,
    UTF-16BE)."""
    kind = data[:4]
    if kind == b"desc" and len(data) >= 12:
        (count,) = struct.unpack(">I", data[8:12])
        return data[12 : 12 + count].split(b"\0", 1)[0].decode("latin-1").strip()
    if kind == b"mluc" and len(data) >= 28:
        length, offset = struct.unpack(">II", data[20:28])
        return data[offset : offset + length].decode("utf-16-be", "replace").strip("\0 ")
    if kind == b"text":
        return data[8:].split(b"\0", 1)[0].decode("latin-1").strip()
    return ""


def parse_profile(data: bytes) -> IccProfile:
    """Parse the header, tag table and the matrix/TRC tags of an ICC profile.

    Parameters
    ----------
    data : bytes
        The profile as embedded in the file.

    Returns
    -------
    IccProfile

    Raises
    ------
    ProfileError
        The data are not an ICC profile (no ``acsp`` signature at byte 36), are
        truncated, or a tag boda needs has an unexpected type.

    Notes
    -----
    Header (ICC.1:2022 clause 7): size (bytes 0-3), version (8), data colour space
    (16-19), PCS (20-23), ``acsp`` (36-39).  Tag table (7.3): a uint32 count at
    byte 128, then ``(signature, offset, size)`` triples of uint32.

    Examples
    --------
    >>> parse_profile(b"not a profile")
    Traceback (most recent call last):
    ...
    boda._icc.ProfileError: too short for an ICC profile (13 bytes)
    """
    if len(data) < 132:
        raise ProfileError(f"too short for an ICC profile ({len(data)} bytes)")
    if data[36:40] != b"acsp":
        raise ProfileError("no 'acsp' signature: not an ICC profile")
    (count,) = struct.unpack(">I", data[128:132])
    if count > 1000 or 132 + 12 * count > len(data):
        raise ProfileError("the tag table is truncated")
    tags: dict[str, bytes] = {}
    spans: dict[tuple[int, int], bytes] = {}  # tags may share their data (one TRC for three)
    for at in range(132, 132 + 12 * count, 12):
        signature, offset, size = struct.unpack(">4sII", data[at : at + 12])
        if offset + size > len(data) or size < 8:
            raise ProfileError(f"tag {signature!r} lies outside the profile")
        span = spans.get((offset, size))
        if span is None:
            span = spans[(offset, size)] = data[offset : offset + size]
        tags[signature.decode("latin-1")] = span
    matrix = None
    if {"rXYZ", "gXYZ", "bXYZ"} <= tags.keys():
        matrix = np.stack([_parse_xyz(tags[t]) for t in ("rXYZ", "gXYZ", "bXYZ")], axis=1)
    names = ("rTRC", "gTRC", "bTRC") if "kTRC" not in tags else ("kTRC",)
    curves: tuple = ()
    if set(names) <= tags.keys():
        parsed: dict[int, Curve] = {}  # by the id of the (shared) tag data: each parsed once
        for t in names:
            if id(tags[t]) not in parsed:
                parsed[id(tags[t])] = _parse_curve(tags[t])
        curves = tuple(parsed[id(tags[t])] for t in names)
    white = _parse_xyz(tags["wtpt"]) if "wtpt" in tags else None
    chad = None
    if "chad" in tags and tags["chad"][:4] == b"sf32" and len(tags["chad"]) >= 44:
        chad = _s15(tags["chad"][8:], 9).reshape(3, 3)  # s15Fixed16ArrayType
    return IccProfile(
        color_space=data[16:20].decode("latin-1"),
        pcs=data[20:24].decode("latin-1"),
        version=data[8],
        description=_parse_description(tags.get("desc", b"")),
        tags=frozenset(tags),
        matrix=matrix,
        curves=curves,
        white=white,
        chad=chad,
    )


@dataclasses.dataclass(frozen=True)
class ColorPlan:
    """What :func:`boda.io.open_image` does with a file's colour information.

    Attributes
    ----------
    kind : {"none", "matrix", "gray", "lut"}
        ``"none"``: pixels are sRGB already (or taken as such); ``"matrix"``
        and ``"gray"``: converted in numpy by :meth:`apply`; ``"lut"``: the
        Pillow image is converted by LittleCMS (:meth:`apply_pil`, 8 bits).
    description : str
        What the pixels were converted from (the profile's ``desc``).
    is_rgb_profile : bool
        The profile describes RGB pixels of an RGB file, so ``color="keep"``
        may return it (and edits write it back).
    warning : str or None
        Why the profile was ignored, when it was.
    """

    kind: str = "none"
    description: str = ""
    is_rgb_profile: bool = False
    warning: str | None = None
    matrix: np.ndarray | None = None
    curves: tuple = ()
    profile: bytes | None = dataclasses.field(default=None, repr=False)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Convert float32 ``(H, W, 3)`` (``"matrix"``) or ``(H, W)`` (``"gray"``) pixels to
        sRGB-encoded float32, out-of-gamut colours clipped (the spec's monochrome and
        matrix-based models).

        ``pixels`` may also be the uint8 levels of an 8-bit file: the tone curves are
        then 256-entry tables of the float curve at ``level / 255`` (the float32 values
        :func:`boda.core.image.as_float_image` gives), so the result is the same as for
        the float pixels, without a power per sample.  Either way the work goes in
        strips of rows, so the temporaries take a few MB whatever the image size.

        Examples
        --------
        >>> plan = ColorPlan("gray", curves=(Curve("gamma", (2.2,)),))
        >>> plan.apply(np.array([0.0, 1.0], np.float32)).tolist()
        [0.0, 1.0]
        >>> plan.apply(np.array([0, 255], np.uint8)).tolist()
        [0.0, 1.0]
        """
        pixels = np.asarray(pixels)
        if pixels.ndim == 0:
            return self.apply(pixels.reshape(1)).reshape(())
        curves = self.curves[:1] if self.kind == "gray" else self.curves
        tables = None
        if pixels.dtype == np.uint8:
            levels = np.arange(256, dtype=np.float32) / np.float32(255)
            tables = [curve(levels) for curve in curves]
            curves = tuple(functools.partial(np.take, table) for table in tables)
        matrix = None if self.kind == "gray" else self.matrix.T.astype(np.float32)
        if tables is not None and matrix is not None and pixels.ndim == 3:
            import cv2  # one pass for the three tables, 4x faster than numpy's strided take

            lut = np.stack(tables, -1)[None]
            curves = ()
        out = np.empty(pixels.shape, np.float32)
        row_pixels = int(np.prod(pixels.shape[1:-1] if matrix is not None else pixels.shape[1:]))
        step = max(1, _STRIP_PIXELS // max(1, row_pixels))
        for start in range(0, pixels.shape[0], step):
            strip = pixels[start:start + step]
            if matrix is None:
                out[start:start + step] = srgb_encode(curves[0](strip))
                continue
            linear = (
                np.empty(strip.shape, np.float32) if curves
                else cv2.LUT(np.ascontiguousarray(strip), lut)
            )
            for c, curve in enumerate(curves):
                linear[..., c] = curve(strip[..., c])
            out[start:start + step] = srgb_encode(linear @ matrix)
        return out

    def apply_pil(self, img):
        """The Pillow image ``img`` (mode ``RGB``, ``L`` or ``CMYK``) converted to ``RGB``
        sRGB by LittleCMS, relative colorimetric (8 bits per channel)."""
        from PIL import ImageCms

        return ImageCms.applyTransform(img, _lut_transform(self.profile, img.mode))


_SRGB_PROFILE_LOCK = threading.Lock()


class _ProfileCache:
    """An LRU cache of ``func(profile, mode)`` keyed by a digest of ``profile``.

    :func:`functools.lru_cache` keyed by the bytes would keep every profile
    (up to 16 MB in a JPEG) for its key, and entries of any size: this one keeps
    at most :data:`PROFILE_CACHE_ENTRIES` entries and :data:`PROFILE_CACHE_BYTES`
    bytes as ``size(value, profile)`` counts them, and does not keep a value
    larger than a quarter of that.  ``cache_info()`` and ``cache_clear()`` as
    :func:`functools.lru_cache` has them.
    """

    def __init__(self, func, size):
        functools.update_wrapper(self, func)
        self._func, self._size = func, size
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._bytes = self._hits = self._misses = 0
        self._lock = threading.Lock()

    def __call__(self, profile: bytes, mode: str):
        key = (hashlib.blake2b(profile, digest_size=20).digest(), mode)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return entry[0]
            self._misses += 1
        value = self._func(profile, mode)
        size = self._size(value, profile)
        if size <= PROFILE_CACHE_BYTES // 4:
            with self._lock:
                if key not in self._entries:
                    self._entries[key] = (value, size)
                    self._bytes += size
                while self._entries and (
                    len(self._entries) > PROFILE_CACHE_ENTRIES
                    or self._bytes > PROFILE_CACHE_BYTES
                ):
                    self._bytes -= self._entries.popitem(last=False)[1][1]
        return value

    def cache_info(self):
        """Hits, misses, maximum entries and entries now (:func:`functools.lru_cache`'s)."""
        with self._lock:
            return functools._CacheInfo(
                self._hits, self._misses, PROFILE_CACHE_ENTRIES, len(self._entries)
            )

    def cache_clear(self) -> None:
        """Forget every entry and the statistics."""
        with self._lock:
            self._entries.clear()
            self._bytes = self._hits = self._misses = 0


def _plan_bytes(plan: ColorPlan, profile: bytes) -> int:
    """Memory a cached plan holds: its profile (LUT plans) and its curves' samples."""
    samples = sum(len(curve.params) for curve in plan.curves)
    return 1024 + len(plan.profile or b"") + 40 * samples


@functools.partial(_ProfileCache, size=lambda transform, profile: 1024 + 2 * len(profile))
def _lut_transform(profile: bytes, mode: str):
    """A cached LittleCMS transform from ``profile`` (pixels of Pillow ``mode``) to sRGB."""
    from PIL import ImageCms

    with _SRGB_PROFILE_LOCK:
        source = ImageCms.ImageCmsProfile(_io.BytesIO(profile))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.buildTransform(
            source, srgb, mode, "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
        )


def _grid(levels: int = 18) -> np.ndarray:
    """A float32 ``(N, 3)`` grid of RGB values with ``levels`` steps per channel."""
    axis = np.linspace(0.0, 1.0, levels, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


#: The Pillow mode LittleCMS converts from, by ICC data colour space.
LUT_MODES = {"RGB ": "RGB", "GRAY": "L", "CMYK": "CMYK"}


def family(mode: str) -> str:
    """The ICC data colour space (``"RGB "``, ``"GRAY"``, ``"CMYK"``) of the pixels of a
    Pillow ``mode``.

    Examples
    --------
    >>> family("I;16"), family("P"), family("CMYK")
    ('GRAY', 'RGB ', 'CMYK')
    """
    if mode in ("L", "LA", "La", "1", "F") or mode.startswith("I"):
        return "GRAY"
    if mode == "CMYK":
        return "CMYK"
    if mode in ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "YCbCr"):
        return "RGB "
    return mode


#: Where :func:`_curves_usable` evaluates a tone curve: a fine ramp and the 8-bit levels.
_CURVE_PROBE = np.concatenate(
    [np.linspace(0.0, 1.0, 4097, dtype=np.float32), np.arange(256, dtype=np.float32) / 255]
)
#: Linear values a usable tone curve stays within (a colourant matrix then keeps them
#: finite; an overflowing power, ``(aX + b)^32768``, goes far beyond).
_CURVE_LIMIT = 1e6


def _curves_usable(curves: tuple) -> bool:
    """Whether every curve gives finite, bounded values on ``[0, 1]``.

    Each curve is a gamma, a table of finite samples, or a parametric power of a
    linear function per segment, so its extremes lie at the probed points (the
    ends of ``[0, 1]`` among them)."""
    with np.errstate(all="ignore"):
        for curve in curves:
            values = curve(_CURVE_PROBE)
            if not (np.isfinite(values).all() and np.abs(values).max() <= _CURVE_LIMIT):
                return False
    return True


def _unusable_curves(description: str, is_rgb: bool) -> ColorPlan:
    return ColorPlan(
        is_rgb_profile=is_rgb,
        warning=f"profile {description!r} has tone curves that give infinite or "
        "undefined values; pixels read as sRGB",
    )


def _matrix_plan(description: str, matrix: np.ndarray, curves: tuple, profile=None) -> ColorPlan:
    """The ``"matrix"`` plan of a matrix/TRC space, or ``"none"`` when it is sRGB (or when
    it cannot be used: then with a warning)."""
    combined = PCS_TO_SRGB @ matrix
    if not np.all(np.isfinite(combined)) or abs(np.linalg.det(matrix)) < 1e-6:
        return ColorPlan(warning=f"profile {description!r} has a singular colourant matrix; "
                         "pixels read as sRGB", is_rgb_profile=True)
    if not _curves_usable(curves):
        return _unusable_curves(description, True)
    plan = ColorPlan("matrix", description, True, None, combined, curves, profile)
    grid = _grid()
    with np.errstate(all="ignore"):
        converted = plan.apply(grid)
    if not np.isfinite(converted).all():
        return _unusable_curves(description, True)
    if np.abs(converted - grid).max() <= SRGB_TOLERANCE:
        return ColorPlan(description=description, is_rgb_profile=True)
    return plan


@functools.partial(_ProfileCache, size=_plan_bytes)
def color_plan(profile: bytes, mode: str) -> ColorPlan:
    """Decide how pixels of Pillow ``mode`` tagged with ``profile`` become sRGB (cached).

    Parameters
    ----------
    profile : bytes
        The embedded ICC profile.
    mode : str
        Pillow's mode of the file (``"RGB"``, ``"L"``, ``"CMYK"``, ``"I;16"``...).

    Returns
    -------
    ColorPlan
        ``"none"`` for sRGB profiles and for profiles that cannot be used
        (unparseable, or describing other pixels than the file's: then with a
        ``warning``); ``"matrix"``/``"gray"`` for matrix/TRC profiles;
        ``"lut"`` for CMYK and table-based profiles.

    Examples
    --------
    >>> plan = color_plan(b"junk", "RGB")
    >>> plan.kind, plan.warning
    ('none', 'embedded ICC profile cannot be used (too short ... (4 bytes)); pixels read as sRGB')
    """
    space = family(mode)
    header_space = profile[16:20].decode("latin-1") if len(profile) >= 20 else ""
    try:
        parsed = parse_profile(profile)
    except (ProfileError, struct.error, ValueError) as exc:
        return ColorPlan(
            is_rgb_profile=header_space == "RGB " == space,
            warning=f"embedded ICC profile cannot be used ({exc}); pixels read as sRGB",
        )
    name = parsed.description or f"ICC profile ({parsed.color_space.strip()})"
    if parsed.color_space != space:
        return ColorPlan(warning=f"embedded {parsed.color_space.strip()} profile {name!r} does "
                         f"not describe {mode} pixels; ignored, pixels read as sRGB")
    is_rgb = space == "RGB "
    try:
        if not parsed.has_lut and parsed.pcs == "XYZ ":
            if is_rgb and parsed.matrix is not None and len(parsed.curves) == 3:
                return _matrix_plan(name, parsed.matrix, parsed.curves)
            if space == "GRAY" and len(parsed.curves) == 1:
                if not _curves_usable(parsed.curves):
                    return _unusable_curves(name, False)
                plan = ColorPlan("gray", name, False, None, None, parsed.curves)
                ramp = np.linspace(0.0, 1.0, 1024, dtype=np.float32)
                identical = np.abs(plan.apply(ramp) - ramp).max() <= SRGB_TOLERANCE
                return ColorPlan(description=name) if identical else plan
        pil_mode = LUT_MODES.get(space)
        if pil_mode is None:
            raise ProfileError(f"boda converts RGB, gray and CMYK pixels, not {space!r}")
        plan = ColorPlan("lut", name, is_rgb, None, None, (), profile)
        if is_rgb:
            from PIL import Image

            grid = np.round(_grid(16) * 255).astype(np.uint8).reshape(64, 64, 3)
            moved = np.abs(np.asarray(plan.apply_pil(Image.fromarray(grid)), np.int16) - grid)
            if moved.max() <= LUT_SRGB_LEVELS and moved.mean() <= 0.25:
                return ColorPlan(description=name, is_rgb_profile=True)
        else:
            _lut_transform(profile, pil_mode)  # fails here, not on the pixels, if unusable
        return plan
    except Exception as exc:  # noqa: BLE001 - LittleCMS (PyCMSError) or a malformed tag
        return ColorPlan(is_rgb_profile=is_rgb,
                         warning=f"embedded ICC profile {name!r} cannot be used ({exc}); "
                         "pixels read as sRGB")


@functools.lru_cache(maxsize=16)
def png_gamma_plan(gamma: float, chromaticity: tuple | None, mode: str) -> ColorPlan:
    """The plan of a PNG with ``gAMA`` (and maybe ``cHRM``) but no ``iCCP`` or ``sRGB`` chunk.

    Parameters
    ----------
    gamma : float
        The file gamma of ``gAMA`` (e.g. 0.45455): ``linear = value ** (1 / gamma)``
        (PNG specification, 3rd edition, 11.3.3.2 and 12.2).
    chromaticity : tuple of 8 float or None
        ``cHRM``: white x, y, then red, green and blue x, y.  None: sRGB's.
    mode : str
        Pillow's mode of the file.

    Returns
    -------
    ColorPlan
        ``"none"`` when the chunks describe sRGB (gamma within 1 % of 1/2.2,
        as libpng and browsers take it, and sRGB or no chromaticities);
        otherwise a ``"matrix"`` (RGB) or ``"gray"`` plan with a pure power
        curve.

    Examples
    --------
    >>> png_gamma_plan(0.45455, None, "RGB").kind, png_gamma_plan(1 / 1.8, None, "RGB").kind
    ('none', 'matrix')
    """
    if not gamma or gamma <= 0 or not np.isfinite(gamma):
        return ColorPlan(warning=f"PNG gAMA {gamma!r} is not a gamma; ignored")
    srgb_chrm = np.ravel((D65_XY, *SRGB_PRIMARIES_XY))
    near_srgb = chromaticity is None or np.allclose(chromaticity, srgb_chrm, atol=2e-3)
    if near_srgb and abs(gamma * 2.2 - 1.0) <= 0.01:
        return ColorPlan()
    curve = Curve("gamma", (1.0 / gamma,))
    name = f"PNG gAMA {gamma:.5f}" + ("" if chromaticity is None else " + cHRM")
    space = family(mode)
    if space == "GRAY":
        return ColorPlan("gray", name, False, None, None, (curve,))
    if space != "RGB ":
        return ColorPlan()
    if chromaticity is None:
        matrix = SRGB_TO_PCS
    else:
        wx, wy, rx, ry, gx, gy, bx, by = chromaticity
        degenerate = ColorPlan(warning="PNG cHRM chromaticities are degenerate; ignored")
        if 0 in (wy, ry, gy, by):  # y = 0: no luminance ratio, XYZ would be infinite
            return degenerate
        try:
            matrix = _rgb_to_pcs_matrix(((rx, ry), (gx, gy), (bx, by)), (wx, wy))
        except np.linalg.LinAlgError:
            return degenerate
    plan = _matrix_plan(name, matrix, (curve, curve, curve))
    return dataclasses.replace(plan, is_rgb_profile=False)
