"""Analysing one file: the work a scan worker does.

:func:`analyze_file` never raises for a bad file: it returns an
:class:`~boda.catalog.ImageRecord` with ``status="error"`` and the reason, so
one broken file cannot abort a batch.
"""

from __future__ import annotations

import traceback

import numpy as np

from boda.catalog import ImageRecord
from boda.errors import ImageReadError
from boda.io import encode_jpeg, open_image
from boda.scan._walk import FoundFile

__all__ = ["analyze_file", "analyze_pixels", "THUMBNAIL_SIDE"]

#: Longer side of the JPEG thumbnails stored in the catalog for the report.
THUMBNAIL_SIDE = 200


def analyze_pixels(pixels: np.ndarray) -> tuple[dict[str, float], dict]:
    """Every per-image measure of the scan on decoded pixels.

    Returns ``(scores, extra)``: scalar scores by name and non-scalar results.
    """
    from boda import color, duplicates, quality

    scores: dict[str, float] = {}
    extra: dict = {}
    report = quality.analyze(pixels)
    scores.update({k: float(v) for k, v in report.scores.items()})
    scores["colorfulness"] = color.colorfulness(pixels)
    scores["mean_L"], scores["std_L"] = color.lightness_stats(pixels)
    scores["grayscale"] = color.is_grayscale(pixels)[1]
    extra["dominant_colors"] = [
        {"rgb": [round(c, 4) for c in rgb], "fraction": round(fraction, 4)}
        for rgb, fraction in color.dominant_colors(pixels, k=5, seed=0)
    ]
    extra["pixel_hash"] = duplicates.pixel_hash(pixels)
    extra["phash"] = int(duplicates.phash(pixels))
    return scores, extra


def analyze_file(found: FoundFile, max_side: int) -> ImageRecord:
    """Decode ``found`` at ``max_side`` and measure it; failures become error records."""
    record = ImageRecord(
        relpath=found.relpath, size=found.size, mtime_ns=found.mtime_ns, status="error"
    )
    if found.error is not None:
        record.error = found.error
        return record
    if found.size == 0:
        record.error = "empty file (0 bytes)"
        return record
    try:
        decoded = open_image(found.path, max_side=max_side)
        scores, extra = analyze_pixels(decoded.pixels)
        width, height = decoded.original_size
        scores["aspect_ratio"] = max(width, height) / min(width, height)
        record.pixel_hash = extra.pop("pixel_hash")
        record.phash = extra.pop("phash")
        record.thumbnail = encode_jpeg(decoded.pixels, max_side=THUMBNAIL_SIDE, quality=80)
    except ImageReadError as exc:
        record.error = exc.reason
        return record
    except MemoryError:
        record.error = "out of memory while decoding; lower --max-side or the worker count"
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
    record.extra = extra
    return record
