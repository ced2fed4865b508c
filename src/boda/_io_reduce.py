"""Early reduction: huge images read with ``max_side`` shrunk in their own sample type.

Part of the reader (:func:`boda.io.open_image`).  A ``max_side`` read of an image
with more than :data:`EARLY_REDUCE_PIXELS` pixels is shrunk by an integer factor
``k`` (a box average) right after decoding, a stripe at a time, before
transparency, colour conversion and floats, then resized to ``max_side`` and
oriented.  Private: :mod:`boda.io` re-exports :data:`EARLY_REDUCE_PIXELS`.
"""

from __future__ import annotations

from contextvars import ContextVar

import numpy as np
from PIL import Image

#: The grey level (0 black, 1 white) that transparency is composited over in the
#: current :func:`boda.io.open_image` call (its ``background``); white by default.
BACKGROUND: ContextVar[float] = ContextVar("boda_background", default=1.0)

#: A ``max_side`` read of an image with more pixels than this shrinks it by an
#: integer factor in its own sample type (uint8, 16-bit...) right after decoding,
#: before transparency, colour conversion and floats: memory stays near the
#: decoded size instead of 5-7 times it (a 140 kB PNG can hold 100 MP).  Smaller
#: images take the exact path (results unchanged); above it, results differ from
#: that path by rounding only (a box average taken before, not after, compositing).
EARLY_REDUCE_PIXELS = 64_000_000
#: As Pillow's ``reducing_gap``: the final filter still sees >= 3 input pixels per output pixel.
_REDUCING_GAP = 3.0
#: Pixels per stripe of the early reduction (each stripe is copied and converted alone).
_STRIPE_PIXELS = 1 << 22
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _early_factor(size: tuple[int, int], max_side: int | None) -> int:
    """Integer factor by which to shrink a decoded image of ``size`` first (1: none)."""
    from boda.io import _target_size  # boda.io imports this module: not at the top

    target = _target_size(size, max_side)
    if target is None or size[0] * size[1] <= EARLY_REDUCE_PIXELS:
        return 1
    return max(1, min(int(size[i] / target[i] / _REDUCING_GAP) for i in (0, 1)))


def _stripe_rows(width: int, k: int) -> int:
    """Rows per stripe: a multiple of ``k`` (blocks never straddle two stripes)."""
    return k * max(1, _STRIPE_PIXELS // (width * k))


def _reducible(part: Image.Image) -> Image.Image:
    """``part`` in a mode :meth:`PIL.Image.Image.reduce` averages correctly: alpha
    premultiplied (``RGBa``/``La``), palettes expanded, 16-bit gray as 32-bit."""
    mode = part.mode
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in part.info
        part = part.convert("RGBA" if alpha else "RGB")
    elif mode == "1":
        part = part.convert("L")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        part = part.convert("I")
    elif mode in ("L", "RGB") and "transparency" in part.info:
        part = part.convert("LA" if mode == "L" else "RGBA")
    if part.mode in ("RGBA", "LA"):
        part = part.convert({"RGBA": "RGBa", "LA": "La"}[part.mode])
    return part


def _reduce_pil(img: Image.Image, k: int) -> tuple[Image.Image, bool]:
    """``img`` (decoded) shrunk by ``k`` (box average, partial blocks at the right and
    bottom edges averaged over their pixels, as :meth:`PIL.Image.Image.reduce`), a
    stripe at a time; transparency composited over white.  Returns ``(image, had_alpha)``."""
    from boda.io import _flatten_transparency

    width, height = img.size
    rows = _stripe_rows(width, k)
    out: Image.Image | None = None
    for top in range(0, height, rows):
        part = _reducible(img.crop((0, top, width, min(height, top + rows)))).reduce(k)
        if out is None:
            out = Image.new(part.mode, (-(-width // k), -(-height // k)))
        out.paste(part, (0, top // k))
    assert out is not None
    if out.mode in ("RGBa", "La"):
        out = out.convert({"RGBa": "RGBA", "La": "LA"}[out.mode])
    return _flatten_transparency(out)


def _reduce_array(raw: np.ndarray, k: int, scale: float, alpha: bool) -> np.ndarray:
    """float32 RGB ``(ceil(H/k), ceil(W/k), 3)``: ``k x k`` block means of the BGR(A)
    integer array ``raw`` divided by ``scale`` (255 or 65535), composited over white
    when ``alpha``, a stripe at a time.  Blocks are averaged by OpenCV's area filter
    at an integer scale (exact means, rounded to the input's integer type); the
    partial blocks at the right and bottom edges repeat the edge pixels."""
    import cv2

    height, width = raw.shape[:2]
    cols = -(-width // k)
    out = np.empty((-(-height // k), cols, 3), np.float32)
    full = int(scale)
    wide = np.uint32 if raw.dtype == np.uint16 else np.uint16  # holds full * full
    for top in range(0, height, _stripe_rows(width, k)):
        part = raw[top : top + _stripe_rows(width, k)]
        if alpha:  # over the background, like _flatten_transparency: c * a + bg * (1 - a)
            a = part[:, :, 3:4].astype(wide)
            bg = round(full * BACKGROUND.get())
            mixed = part[:, :, :3].astype(wide) * a + bg * (full - a) + full // 2
            part = (mixed // full).astype(raw.dtype)
        else:
            part = part[:, :, :3]
        rows = -(-part.shape[0] // k)
        pad = ((0, rows * k - part.shape[0]), (0, cols * k - width), (0, 0))
        if pad[0][1] or pad[1][1]:
            part = np.pad(part, pad, mode="edge")
        small = cv2.resize(np.ascontiguousarray(part), (cols, rows), interpolation=cv2.INTER_AREA)
        out[top // k : top // k + rows] = small[:, :, ::-1]  # BGR -> RGB
    out /= np.float32(scale)
    return out


def _finish_reduced_float(
    pixels: np.ndarray,
    k: int,
    stored_size: tuple[int, int],
    orientation: int,
    max_side: int | None,
    resample: Image.Resampling,
) -> np.ndarray:
    """Early-reduced float pixels (stored orientation) resized to ``max_side``, then oriented."""
    from boda.io import _orient, _resize_float, _target_size

    target = _target_size(stored_size, max_side)
    if target is not None:
        box = (0.0, 0.0, stored_size[0] / k, stored_size[1] / k)
        pixels = _resize_float(pixels, target, resample, box)
    return _orient(pixels, orientation)


def _finish_reduced_pil(
    img: Image.Image,
    k: int,
    stored_size: tuple[int, int],
    orientation: int,
    max_side: int | None,
    resample: Image.Resampling,
) -> Image.Image:
    """An early-reduced image (:func:`_reduce_pil`, stored orientation) resized to
    ``max_side`` (16-bit gray as floats, like :func:`boda.io._resized_pixels`), then oriented."""
    from boda.io import _target_size

    target = _target_size(stored_size, max_side)
    if target is not None:
        if img.mode == "I":
            img = img.convert("F").point(lambda v: v / 65535.0)
        box = (0.0, 0.0, stored_size[0] / k, stored_size[1] / k)
        img = img.resize(target, resample, box=box, reducing_gap=_REDUCING_GAP)
    method = _TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)


def _decode_webp_reduced(
    img: Image.Image, k: int
) -> tuple[np.ndarray, bool] | None:
    """A large WebP decoded by OpenCV (Pillow's WebP decoder holds about four copies
    of the frame) and reduced by ``k`` (see :func:`_reduce_array`); None: let Pillow."""
    import cv2

    from boda.io import _SILENT_OPENCV, _file_bytes

    data = _file_bytes(img)
    if data is None:
        return None
    with _SILENT_OPENCV:
        try:
            raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            raw = None
    del data
    if (
        raw is None
        or raw.dtype != np.uint8
        or raw.ndim != 3
        or raw.shape[2] not in (3, 4)
        or raw.shape[:2] != img.size[::-1]
    ):
        return None
    alpha = raw.shape[2] == 4
    return _reduce_array(raw, k, 255.0, alpha), alpha
