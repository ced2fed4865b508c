"""Telea's fast-marching inpainting, written out (numpy + a heap)."""

from __future__ import annotations

import heapq
import math

import numpy as np
from scipy import ndimage

from boda.core.numbers import real_number
from boda.errors import InvalidParameterError

__all__ = ["inpaint_telea"]

_KNOWN, _BAND, _INSIDE, _OUTSIDE = 0, 1, 2, 3
_FAR = 1.0e6
#: inpaint_telea's default radius, in pixels.
_DEFAULT_RADIUS = 5.0


def _solve(t: np.ndarray, f: np.ndarray, y1: int, x1: int, y2: int, x2: int) -> float:
    """Upwind solution of |grad T| = 1 from two neighbours (Telea 2004, Sec. 2.3)."""
    ok1 = f[y1, x1] < _INSIDE
    ok2 = f[y2, x2] < _INSIDE
    if ok1 and ok2:
        t1, t2 = t[y1, x1], t[y2, x2]
        disc = 2.0 - (t1 - t2) ** 2
        if disc < 0:
            return _FAR
        r = math.sqrt(disc)
        s = (t1 + t2 - r) / 2.0
        if s >= t1 and s >= t2:
            return s
        s += r
        return s if (s >= t1 and s >= t2) else _FAR
    if ok1:
        return 1.0 + t[y1, x1]
    if ok2:
        return 1.0 + t[y2, x2]
    return _FAR


def _diff(values: tuple, usable: tuple, centre: float) -> float:
    """Central difference where both neighbours are usable, else one-sided, else 0."""
    lo_ok, hi_ok = usable
    lo, hi = values
    if lo_ok and hi_ok:
        return (hi - lo) * 0.5
    if hi_ok:
        return hi - centre
    if lo_ok:
        return centre - lo
    return 0.0


def inpaint_telea(
    image: np.ndarray, mask: np.ndarray, *, radius: float = _DEFAULT_RADIUS,
    gradient: bool = False,
) -> np.ndarray:
    """Fill holes by Telea's fast marching method.

    Hole pixels are visited in order of their distance T to the hole's
    boundary (the fast marching method solving |∇T| = 1, Telea 2004, Sec. 3).
    Each one gets a weighted average of its already-known neighbours q within
    ``radius`` (Telea 2004, eq. 3 and 4)::

        I(p) = sum_q w(p, q) [I(q) + ∇I(q) . (p - q)] / sum_q w(p, q)
        w = dir * dst * lev,  dir = |(p - q) . N(p)| / |p - q|,
        dst = 1 / |p - q|^2,  lev = 1 / (1 + |T(q) - T(p)|)

    with N = ∇T / |∇T| the normal of the advancing boundary.  As in OpenCV,
    ``dir`` is floored at 1e-6 so neighbours along the boundary still count,
    the march starts on the known pixels next to the hole, and known pixels
    carry minus their distance to the hole in T.

    ``gradient=False`` (default) drops the first-order term ∇I(q) . (p - q),
    as OpenCV's ``INPAINT_TELEA`` effectively does (it replaces the term by a
    normalised one worth at most ~1.4 grey levels, which is also why its
    float32 path overshoots); the fill then follows OpenCV's closely.
    ``gradient=True`` keeps the paper's term, with each filled pixel's
    gradient taken as the weighted mean of its sources' gradients (never from
    differences of filled values, which feed back and blow up).  It
    reproduces linear ramps exactly and suits thin scratches in smooth areas,
    but drifts inside wide holes on textured photos (see docs/editing.md).
    The result is clipped to ``[0, 1]`` (or to the known values' range where
    that is wider).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8, uint16 or float
        in ``[0, 1]`` (as for :func:`boda.edit.inpaint`).
    mask : numpy.ndarray
        ``(H, W)``, true / 255 = hole (see :func:`boda.edit.to_hole_mask`).
    radius : float
        Radius of the neighbourhood averaged for each pixel, in pixels; under
        1 it counts as 1 (the four neighbours), as in OpenCV.
    gradient : bool
        Use the first-order extrapolation ``I(q) + ∇I(q) . (p - q)``.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``image``.

    Raises
    ------
    InvalidImageError
        Bad image shape/dtype, NaN or infinite values, or a mask of another size.
    InvalidParameterError
        A bad ``radius``, or a mask that marks every pixel as a hole.

    References
    ----------
    .. [1] A. Telea, "An Image Inpainting Technique Based on the Fast Marching
           Method", Journal of Graphics Tools 9(1):23-34, 2004.
    """
    # Imported here: boda.edit._inpaint imports this module to register the method.
    from boda.edit._inpaint import fill_inputs, fill_result

    given = image
    image, mask = fill_inputs(image, mask)
    h, w, c = image.shape
    # Beyond the image's size a larger neighbourhood adds no pixels, only time;
    # the default 5 px stays allowed on images smaller than that (it refused them).
    if not (real_number(radius) and 0 < radius <= max(h, w, _DEFAULT_RADIUS)):
        raise InvalidParameterError(
            f"radius must be positive and at most the image's longer side ({max(h, w)}), "
            f"got {radius!r}; 3-15 px is usual"
        )
    # Under 1 px the disc held no neighbour and every hole pixel kept what was
    # under the mask; like OpenCV (range = max(round(radius), 1)), always read
    # at least the four neighbours.
    radius = max(float(radius), 1.0)
    if not mask.any():
        return fill_result(image.copy(), given)
    # Work on each group of holes' bounding box plus what the march reads
    # around it: the neighbours within ``radius`` of a hole pixel and one more
    # pixel for their gradients.  Groups lie too far apart to read each other's
    # surroundings, so the fill is the same as on the whole image, at a cost
    # that follows the holes, not the photo.
    fills = [(crop, hole, _march(image[crop], hole, radius, gradient))
             for crop, hole in hole_groups(mask, int(math.ceil(radius)) + 2)]
    # The first-order term can overshoot next to a sharp edge: keep values in the
    # image range ([0, 1], or the known values' range where that is wider).
    lo, hi = _known_range(image, mask)
    out = image.copy()
    for crop, hole, values in fills:
        out[crop][hole] = np.clip(values, lo, hi)
    return fill_result(out, given)


def hole_groups(mask: np.ndarray, margin: int) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """The holes of ``mask`` in groups, each with its working crop.

    Holes closer than ``2 * margin + 1`` pixels (chessboard distance) share a
    group.  Returns, per group, the group's bounding box widened by ``margin``
    and clipped to the image, and the group's holes inside it (bool, the
    crop's shape).  Any pixel within ``margin`` of a group's holes is in its
    crop, and no other group's hole is that close.
    """
    size = 2 * margin + 1
    grown = ndimage.maximum_filter1d(mask.view(np.uint8), size, axis=0, mode="constant")
    grown = ndimage.maximum_filter1d(grown, size, axis=1, mode="constant")
    labels, _ = ndimage.label(grown, structure=np.ones((3, 3), bool))
    del grown
    return [(box, mask[box] & (labels[box] == i))
            for i, box in enumerate(ndimage.find_objects(labels), start=1)]


def _march(image: np.ndarray, mask: np.ndarray, radius: float, gradient: bool) -> np.ndarray:
    """Telea's fill of the holes ``mask`` (all of them inside ``image``, a crop
    holding every pixel the fill reads): their values, in ``mask`` order."""
    ch, cw = mask.shape
    pad = int(math.ceil(radius)) + 1
    img = np.pad(image.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)))
    flags = np.full((ch + 2 * pad, cw + 2 * pad), _OUTSIDE, dtype=np.int8)
    inner = (slice(pad, pad + ch), slice(pad, pad + cw))
    band0 = ndimage.binary_dilation(mask) & ~mask
    flags[inner] = np.where(mask, _INSIDE, np.where(band0, _BAND, _KNOWN))
    t = np.zeros(flags.shape, dtype=np.float64)
    # Known pixels carry minus their distance to the hole, as in OpenCV (which
    # marches outwards first): lev then favours the pixels right at the boundary.
    # (Another group's holes in the crop count as known: the fill reads neither
    # them nor any pixel nearer to them than to its own holes.)
    outside = ndimage.distance_transform_edt(~mask) - 1.0
    t[inner] = np.where(mask, _FAR, -outside)
    t[flags == _OUTSIDE] = _FAR

    span = int(math.floor(radius))
    dy, dx = np.mgrid[-span : span + 1, -span : span + 1]
    keep = (dy * dy + dx * dx <= radius * radius) & ((dy != 0) | (dx != 0))
    dy, dx = dy[keep], dx[keep]
    rr = (dy * dy + dx * dx).astype(np.float64)  # |p - q|^2 with q = p + (dy, dx)
    rlen = np.sqrt(rr)

    # Image gradients (gy, gx, gy known, gx known) of the known pixels, from
    # known neighbours only; filled pixels get theirs in _fill.
    grads = None
    if gradient:
        yy, xx = np.nonzero(~mask)
        yy, xx = yy + pad, xx + pad
        grads = (np.zeros_like(img), np.zeros_like(img),
                 np.zeros(flags.shape, bool), np.zeros(flags.shape, bool))
        grads[0][yy, xx], grads[2][yy, xx] = _grad(img, flags, yy, xx, 1, 0)
        grads[1][yy, xx], grads[3][yy, xx] = _grad(img, flags, yy, xx, 0, 1)

    heap = [(0.0, int(y), int(x)) for y, x in zip(*np.nonzero(flags == _BAND), strict=True)]
    heapq.heapify(heap)
    while heap:
        _, y, x = heapq.heappop(heap)
        if flags[y, x] == _KNOWN:
            continue
        flags[y, x] = _KNOWN
        for ny, nx in ((y - 1, x), (y, x - 1), (y + 1, x), (y, x + 1)):
            if flags[ny, nx] != _INSIDE:
                continue
            tn = min(
                _solve(t, flags, ny - 1, nx, ny, nx - 1),
                _solve(t, flags, ny + 1, nx, ny, nx - 1),
                _solve(t, flags, ny - 1, nx, ny, nx + 1),
                _solve(t, flags, ny + 1, nx, ny, nx + 1),
            )
            t[ny, nx] = tn
            _fill(img, flags, t, ny, nx, dy, dx, rr, rlen, grads)
            flags[ny, nx] = _BAND
            heapq.heappush(heap, (tn, ny, nx))

    return img[inner][mask].astype(np.float32)




def _known_range(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, [0, 1] widened to the known pixels' min and max (no copy of them)."""
    known = ~mask[:, :, None]
    lo = np.min(image, axis=(0, 1), where=known, initial=0.0)
    hi = np.max(image, axis=(0, 1), where=known, initial=1.0)
    return lo, hi


def _fill(img, flags, t, y, x, dy, dx, rr, rlen, grads) -> None:
    """Telea's eq. 3 at pixel (y, x) from its usable neighbours."""
    tc = t[y, x]
    up, down = flags[y - 1, x] < _INSIDE, flags[y + 1, x] < _INSIDE
    left, right = flags[y, x - 1] < _INSIDE, flags[y, x + 1] < _INSIDE
    grad_t_y = _diff((t[y - 1, x], t[y + 1, x]), (up, down), tc)
    grad_t_x = _diff((t[y, x - 1], t[y, x + 1]), (left, right), tc)
    norm = math.hypot(grad_t_y, grad_t_x)
    qy, qx = y + dy, x + dx
    sel = flags[qy, qx] < _INSIDE
    if not sel.any():
        return
    qy, qx = qy[sel], qx[sel]
    ry, rx = -dy[sel].astype(np.float64), -dx[sel].astype(np.float64)  # p - q
    if norm > 0:
        direction = np.abs(ry * grad_t_y + rx * grad_t_x) / (rlen[sel] * norm)
        direction = np.maximum(direction, 1e-6)
    else:
        direction = np.full(qy.size, 1e-6)
    weight = direction / rr[sel] / (1.0 + np.abs(t[qy, qx] - tc))
    estimate = img[qy, qx]
    if grads is not None:
        gy, gx = grads[0][qy, qx], grads[1][qy, qx]
        y_ok, x_ok = grads[2][qy, qx], grads[3][qy, qx]
        estimate = estimate + gy * ry[:, None] + gx * rx[:, None]
        # A q whose gradient is unknown along its offset to p would extrapolate
        # flat; leave it out unless nothing else is there.
        complete = (y_ok | (ry == 0)) & (x_ok | (rx == 0))
        # The filled pixel's own gradient is the weighted mean of its sources'
        # (a convex combination of measured gradients): feeding back
        # differences of filled values instead makes the first-order term
        # amplify its own errors.
        for g, ok, slot in ((gy, y_ok, 0), (gx, x_ok, 1)):
            wk = weight[ok]
            if wk.size:
                grads[slot][y, x] = (wk[:, None] * g[ok]).sum(axis=0) / wk.sum()
                grads[slot + 2][y, x] = True
        if complete.any():
            weight = np.where(complete, weight, 0.0)
    img[y, x] = (weight[:, None] * estimate).sum(axis=0) / weight.sum()


def _grad(img, flags, qy, qx, sy, sx) -> tuple[np.ndarray, np.ndarray]:
    """Derivative along (sy, sx) at each q, and whether it could be estimated."""
    lo_ok, hi_ok = flags[qy - sy, qx - sx] < _INSIDE, flags[qy + sy, qx + sx] < _INSIDE
    lo, mid, hi = img[qy - sy, qx - sx], img[qy, qx], img[qy + sy, qx + sx]
    both = (lo_ok & hi_ok)[:, None]
    grad = np.where(
        both, (hi - lo) * 0.5,
        np.where(hi_ok[:, None], hi - mid, np.where(lo_ok[:, None], mid - lo, 0.0)),
    )
    return grad, lo_ok | hi_ok
