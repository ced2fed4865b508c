"""Histograms of oriented gradients (Dalal & Triggs 2005).

References
----------
.. [1] N. Dalal and B. Triggs, "Histograms of oriented gradients for human
       detection", CVPR 2005, pp. 886-893. DOI:10.1109/CVPR.2005.177
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from boda.core.image import as_float_image
from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

__all__ = ["hog", "hog_image"]

BlockNorm = Literal["L1", "L1-sqrt", "L2", "L2-Hys"]
_EPS = 1e-5


def _size_pair(value: object, name: str) -> tuple[int, int]:
    """``(rows, columns)`` from an int (a square) or a pair of ints."""
    pair: tuple[int, ...] = ()
    if whole_number(value):
        pair = (int(value), int(value))
    elif not isinstance(value, str | bytes):
        try:
            pair = tuple(int(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            pass
    if len(pair) != 2 or min(pair) < 1:
        raise InvalidParameterError(
            f"{name} must be a positive int or a (rows, columns) pair of them, got {value!r}"
        )
    return pair  # type: ignore[return-value]


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred ``[-1, 0, 1]`` derivatives, 0 on the outer ring (Dalal-Triggs sec. 6.2).

    For colour, each pixel takes the channel with the largest gradient norm.
    """
    # Differences in the image's own precision (float32), like scikit-image, so
    # the per-pixel channel choice agrees bit for bit.
    img = image
    if img.ndim == 2:
        img = img[:, :, None]
    g_row = np.zeros_like(img)
    g_col = np.zeros_like(img)
    g_row[1:-1] = img[2:] - img[:-2]
    g_col[:, 1:-1] = img[:, 2:] - img[:, :-2]
    best = np.hypot(g_row, g_col).argmax(axis=2)[:, :, None]
    return (
        np.take_along_axis(g_row, best, axis=2)[:, :, 0].astype(np.float64),
        np.take_along_axis(g_col, best, axis=2)[:, :, 0].astype(np.float64),
    )


def _cell_histograms(
    g_row: np.ndarray, g_col: np.ndarray, orientations: int, cell: tuple[int, int], binning: str
) -> np.ndarray:
    """Mean magnitude per (cell, unsigned orientation bin); bins of ``180 / n`` degrees."""
    c_row, c_col = cell
    n_row, n_col = g_row.shape[0] // c_row, g_row.shape[1] // c_col
    g_row = g_row[: n_row * c_row, : n_col * c_col]
    g_col = g_col[: n_row * c_row, : n_col * c_col]
    magnitude = np.hypot(g_row, g_col)
    angle = np.rad2deg(np.arctan2(g_row, g_col)) % 180.0
    width = 180.0 / orientations
    flat_cells = (np.arange(n_row * c_row)[:, None] // c_row) * n_col + (
        np.arange(n_col * c_col)[None, :] // c_col
    )
    n_cells = n_row * n_col
    hist = np.zeros(n_cells * orientations)
    if binning == "hard":
        # Bin i holds angles in [i*w, (i+1)*w); the edges are rounded to float32
        # like scikit-image's loop, so boundary angles land in the same bin.
        edges = (np.arange(1, orientations, dtype=np.float32) * np.float32(width)).astype(float)
        bins = np.searchsorted(edges, angle, side="right")
        np.add.at(hist, (flat_cells * orientations + bins).ravel(), magnitude.ravel())
    else:
        # Dalal-Triggs: vote bilinearly between the two nearest bin centres.
        pos = angle / width - 0.5
        lower = np.floor(pos)
        frac = pos - lower
        b0 = lower.astype(int) % orientations
        b1 = (b0 + 1) % orientations
        base = flat_cells * orientations
        np.add.at(hist, (base + b0).ravel(), (magnitude * (1 - frac)).ravel())
        np.add.at(hist, (base + b1).ravel(), (magnitude * frac).ravel())
    return hist.reshape(n_row, n_col, orientations) / (c_row * c_col)


#: Pixels per band of :func:`_banded_histograms`.
_BAND_PIXELS = 1 << 20


def _banded_histograms(
    img: np.ndarray,
    orientations: int,
    cell: tuple[int, int],
    binning: str,
    progress: Callable[[int, int], None] | None = None,
    total: int = 1,
) -> np.ndarray:
    """:func:`_cell_histograms` of :func:`_gradients` of ``img``, in bands of whole cell rows.

    A cell's histogram needs only its own pixels' gradients, and a pixel's gradient
    only its neighbours: each band is computed from its rows plus one row on either
    side, with the same operations in the same order, so the histograms are the ones
    of the whole image at once (bit for bit), and the float64 temporaries take a
    band's size.  ``progress(done, total)`` is called after each band (``done``
    counts bands, ``total`` the caller's total steps, of which the bands are the first).
    """
    c_row = cell[0]
    height = img.shape[0]
    n_row, n_col = height // c_row, img.shape[1] // cell[1]
    hist = np.empty((n_row, n_col, orientations))
    step = max(1, _BAND_PIXELS // max(1, img.shape[1] * c_row))  # cell rows per band
    for done, top in enumerate(range(0, n_row, step), 1):
        bottom = min(n_row, top + step)
        r0, r1 = top * c_row, bottom * c_row
        s0, s1 = max(r0 - 1, 0), min(r1 + 1, height)  # one row of context each side
        g_row, g_col = _gradients(img[s0:s1])
        # _gradients zeroes the slab's outer rows; kept rows are interior unless they
        # are the image's own first/last row, which the whole-image pass zeroes too.
        rows = slice(r0 - s0, r1 - s0)
        hist[top:bottom] = _cell_histograms(
            g_row[rows], g_col[rows], orientations, cell, binning
        )
        if progress is not None:
            progress(done, total)
    return hist


def _normalize(block: np.ndarray, method: str) -> np.ndarray:
    """Block normalisation schemes of Dalal-Triggs sec. 6.4 (``eps`` = 1e-5)."""
    axes = tuple(range(2, block.ndim))
    if method == "L1":
        return block / (np.abs(block).sum(axis=axes, keepdims=True) + _EPS)
    if method == "L1-sqrt":
        return np.sqrt(block / (np.abs(block).sum(axis=axes, keepdims=True) + _EPS))
    out = block / np.sqrt((block**2).sum(axis=axes, keepdims=True) + _EPS**2)
    if method == "L2-Hys":
        # Clip at 0.2 and renormalise (Lowe's SIFT rule, adopted by Dalal-Triggs).
        out = np.minimum(out, 0.2)
        out = out / np.sqrt((out**2).sum(axis=axes, keepdims=True) + _EPS**2)
    return out


def hog(
    image: np.ndarray,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (3, 3),
    block_norm: BlockNorm = "L2-Hys",
    *,
    binning: Literal["hard", "bilinear"] = "hard",
    transform_sqrt: bool = False,
    feature_vector: bool = True,
) -> np.ndarray:
    """Histogram-of-oriented-gradients descriptor.

    Dalal & Triggs [1]_: centred ``[-1, 0, 1]`` gradients (sec. 6.2; per pixel
    the colour channel with the largest norm), unsigned orientation
    histograms over 0-180 degrees in cells weighted by gradient magnitude
    (sec. 6.3), overlapping blocks of cells normalised with ``block_norm``
    (sec. 6.4; L2-Hys is ``v / sqrt(|v|^2 + eps^2)``, clipped at 0.2, then
    renormalised).  Cell histograms are magnitude *means* over the cell, as in
    scikit-image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)``; uint8/uint16 are scaled to ``[0, 1]``.
    orientations : int
        Number of orientation bins over 180 degrees.
    pixels_per_cell, cells_per_block : tuple of int, or int
        Cell size in pixels and block size in cells (rows, columns); one int
        means a square.  Pixels past the last full cell are ignored.
    block_norm : {"L1", "L1-sqrt", "L2", "L2-Hys"}
        Block normalisation.
    binning : {"hard", "bilinear"}
        ``"hard"`` puts each vote in its bin, exactly as
        ``skimage.feature.hog``; ``"bilinear"`` splits it between the two
        nearest bin centres, the orientation interpolation of Dalal-Triggs
        sec. 6.3 (which reduces aliasing).
    transform_sqrt : bool
        Square-root gamma compression first (sec. 6.1).
    feature_vector : bool
        Return a flat vector instead of the
        ``(blocks_row, blocks_col, cells_row, cells_col, orientations)`` array.

    Returns
    -------
    numpy.ndarray
        float64 descriptor.

    Raises
    ------
    InvalidParameterError
        If a size is not positive or the image is smaller than one block.

    References
    ----------
    .. [1] N. Dalal and B. Triggs, "Histograms of oriented gradients for human
           detection", CVPR 2005 (sec. 6.1-6.4).

    Examples
    --------
    >>> import numpy as np
    >>> hog(np.zeros((32, 32), np.float32), pixels_per_cell=(8, 8),
    ...     cells_per_block=(2, 2)).shape
    (324,)
    """
    img = as_float_image(image)
    cell = _size_pair(pixels_per_cell, "pixels_per_cell")
    block = _size_pair(cells_per_block, "cells_per_block")
    if orientations < 1:
        raise InvalidParameterError(
            "orientations, pixels_per_cell and cells_per_block must be positive "
            f"(got {orientations}, {pixels_per_cell}, {cells_per_block})"
        )
    if block_norm not in ("L1", "L1-sqrt", "L2", "L2-Hys"):
        raise InvalidParameterError(
            f"unknown block_norm {block_norm!r}; choose L1, L1-sqrt, L2 or L2-Hys"
        )
    if binning not in ("hard", "bilinear"):
        raise InvalidParameterError(f"binning must be 'hard' or 'bilinear', got {binning!r}")
    n_row, n_col = img.shape[0] // cell[0], img.shape[1] // cell[1]
    if n_row < block[0] or n_col < block[1]:
        raise InvalidParameterError(
            f"image {img.shape[:2]} is smaller than one block; it needs at least "
            f"{block[0] * cell[0]} rows and {block[1] * cell[1]} columns"
        )
    if transform_sqrt:
        img = np.sqrt(np.clip(img, 0, None))
    hist = _banded_histograms(img, orientations, cell, binning)
    # Sliding window view -> (blocks_row, blocks_col, orient, cells_row, cells_col).
    windows = np.lib.stride_tricks.sliding_window_view(hist, block, axis=(0, 1))
    blocks = np.moveaxis(windows, 2, 4)
    out = _normalize(blocks, block_norm)
    return out.ravel() if feature_vector else out


def hog_image(
    image: np.ndarray,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    *,
    binning: Literal["hard", "bilinear"] = "hard",
    transform_sqrt: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Picture of the cell histograms: per cell, one line per orientation bin.

    Each line goes through the cell centre, perpendicular to its bin's mid
    angle (so it runs along the edge), with brightness equal to the bin's
    value — scikit-image's ``hog(..., visualize=True)`` picture, drawn here
    with the same segment end points and a rounded-line raster.  A cell with a
    side under 4 px has room for no line: it draws a dot of its bins' sum.

    ``progress(done, total)``, if given, is called after each band of cell
    rows is histogrammed and after each orientation's lines are drawn.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``, scaled so the largest value is 1 (all 0 if flat).

    Raises
    ------
    InvalidParameterError
        A size that is not positive, or a cell larger than the image.
    """
    img = as_float_image(image)
    if transform_sqrt:
        img = np.sqrt(np.clip(img, 0, None))
    cell = _size_pair(pixels_per_cell, "pixels_per_cell")
    if orientations < 1:
        raise InvalidParameterError(
            f"orientations and pixels_per_cell must be positive, got {orientations} and {cell}"
        )
    if binning not in ("hard", "bilinear"):
        raise InvalidParameterError(f"binning must be 'hard' or 'bilinear', got {binning!r}")
    if img.shape[0] < cell[0] or img.shape[1] < cell[1]:
        raise InvalidParameterError(
            f"pixels_per_cell {cell} is larger than the image {img.shape[:2]}: "
            "no whole cell fits"
        )
    n_bands = len(range(0, img.shape[0] // cell[0], max(1, _BAND_PIXELS // max(
        1, img.shape[1] * cell[0]))))
    total = n_bands + orientations
    hist = _banded_histograms(img, orientations, cell, binning, progress, total)
    out = np.zeros(img.shape[:2], np.float64)
    # scikit-image's radius; a cell under 4 px has room for no line, and at 1 px
    # its -1 drew past the border: such a cell draws a dot (its bins' sum).
    radius = max(min(cell) // 2 - 1, 0)
    mid = np.pi * (np.arange(orientations) + 0.5) / orientations
    # A segment through the cell centre, perpendicular to the bin's mid angle
    # (along the edge): from (-dc, +dr) to (+dc, -dr), endpoints truncated to int.
    dr, dc = radius * np.sin(mid), radius * np.cos(mid)
    centre_r = (np.arange(hist.shape[0]) * cell[0] + cell[0] // 2)[:, None]
    centre_c = (np.arange(hist.shape[1]) * cell[1] + cell[1] // 2)[None, :]
    for o in range(orientations):  # all cells at once; a pixel still sums bins in order o
        r0, c0 = (centre_r - dc[o]).astype(int), (centre_c + dr[o]).astype(int)
        r1, c1 = (centre_r + dc[o]).astype(int), (centre_c - dr[o]).astype(int)
        r0, r1, c0, c1 = (np.broadcast_to(a, hist.shape[:2]).ravel() for a in (r0, r1, c0, c1))
        n = np.maximum(np.abs(r1 - r0), np.abs(c1 - c0)) + 1
        values = hist[..., o].ravel()
        for length in np.unique(n):  # cells whose segment has `length` pixels
            which = n == length
            rr = _segment_points(r0[which], r1[which], int(length))
            cols = _segment_points(c0[which], c1[which], int(length))
            # cells' segments never share a pixel: no index repeats in one call
            out[rr, cols] += values[which][:, None]
        if progress is not None:
            progress(n_bands + o + 1, total)
    peak = out.max()
    return (out / peak if peak > 0 else out).astype(np.float32)


def _segment_points(start: np.ndarray, stop: np.ndarray, length: int) -> np.ndarray:
    """``np.rint(np.linspace(start[i], stop[i], length)).astype(int)`` for every ``i``,
    as rows: numpy's own arithmetic (``k * step + start``, the last point ``stop``),
    element by element, so the points are the same as one call per segment."""
    if length == 1:
        return start[:, None].copy()
    first, last = start.astype(np.float64), stop.astype(np.float64)
    step = (last - first) / (length - 1)
    points = np.arange(length, dtype=np.float64)[None, :] * step[:, None]
    points += first[:, None]
    points[:, -1] = last
    return np.rint(points).astype(int)
