"""Geometric augmentations as affine maps that boxes, masks and keypoints can follow.

Coordinates are continuous pixels: ``(x, y)``, the image spanning ``[0, W] x [0, H]``
and pixel ``(i, j)`` centred at ``(j + 0.5, i + 0.5)``. Every geometric op returns
the warped image and a :class:`Transform` whose 3x3 ``matrix`` maps input
coordinates to output coordinates.

These ops only move pixels, so they keep the dtype and its scale: a uint8
image stays uint8 in 0..255 (bilinear samples rounded to the nearest integer),
a float32 one stays float32; masks and label maps can go through them too.
Lists and PIL images go through :func:`numpy.asarray` first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from boda.augment import _input  # output_size(): the parameter of the warps shadows it
from boda.augment._input import as_array, is_tensor, output_size, real_pair
from boda.augment._input import rng as _rng
from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError


@dataclass(frozen=True)
class Transform:
    """An applied geometric transform.

    Attributes
    ----------
    matrix : numpy.ndarray
        ``(3, 3)`` float64 affine map from input to output pixel coordinates.
    input_size, output_size : (H, W)
    """

    matrix: np.ndarray
    input_size: tuple[int, int]
    output_size: tuple[int, int]

    def points(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` ``(x, y)`` points (or one ``(2,)`` point) to the output image.

        For COCO keypoints ``(x, y, visibility)`` move ``kp[:, :2]`` and keep the
        visibility column."""
        p = _rows(points, 2, "points", "(x, y)", "kp[:, :2]")
        return p @ self.matrix[:2, :2].T + self.matrix[:2, 2]

    def boxes(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """Map ``(N, 4)`` ``(x1, y1, x2, y2)`` boxes (or one ``(4,)`` box): bounds of
        the four moved corners."""
        b = _rows(boxes, 4, "boxes", "(x1, y1, x2, y2)", "b[:, :4]")
        corners = np.stack(
            [b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1
        ).reshape(-1, 2)
        c = self.points(corners).reshape(-1, 4, 2)
        out = np.concatenate([c.min(axis=1), c.max(axis=1)], axis=1)
        if clip:
            h, w = self.output_size
            out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
            out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
        return out

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """Warp an ``(H, W)`` label mask with nearest-neighbour sampling (0 outside).

        The mask must have the input image's ``(H, W)``."""
        mask = np.asarray(mask)
        if mask.shape[:2] != tuple(self.input_size):  # another size was warped as if it fit
            raise InvalidParameterError(
                f"mask must have the input image's (H, W) = {tuple(self.input_size)}, got "
                f"shape {mask.shape}; resize it to the image first (nearest neighbour)."
            )
        return warp_affine(mask, self.matrix, self.output_size, order=0)


def _rows(values, k: int, name: str, form: str, fix: str) -> np.ndarray:
    """``values`` as ``(N, k)`` float64 rows; one ``(k,)`` row is ``(1, k)``. Another
    width was refused nowhere: reshape(-1, k) cut COCO ``(x, y, v)`` keypoints or
    boxes with a label column into garbage rows."""
    a = np.asarray(values, dtype=np.float64)
    if not (a.shape == (k,) or (a.ndim == 2 and a.shape[1] == k)):
        raise InvalidParameterError(
            f"{name} must be (N, {k}) rows {form}, got shape {a.shape}; pass the "
            f"coordinate columns only (e.g. {fix}) and keep the others aside."
        )
    return a.reshape(-1, k)


def _check_image(image) -> np.ndarray:
    if is_tensor(image):
        raise InvalidParameterError(
            "warp_affine takes a numpy (H, W[, C]) image; "
            "for (B, C, H, W) tensors use warp_affine_torch."
        )
    return as_array(image)


def _check_border(border: str, order: int = 1) -> None:
    if border not in ("zeros", "edge"):
        raise InvalidParameterError(f"border must be 'zeros' or 'edge', got {border!r}.")
    if isinstance(order, bool) or order not in (0, 1):  # 3 (bicubic, say) was bilinear
        raise InvalidParameterError(
            f"order must be 0 (nearest) or 1 (bilinear), got {order!r}."
        )


def _as_3x3(matrix, batch: int | None = None) -> np.ndarray:
    """``matrix`` as an invertible ``(3, 3)`` float64 map, or with ``batch`` also a
    ``(batch, 3, 3)`` stack; OpenCV's ``(2, 3)`` form gets its ``[0, 0, 1]`` row."""
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):  # text, ragged lists
        m = None
    # A (B, 3, 3) stack in numpy, or one of the wrong length in torch, failed deep in
    # the sampling with a raw error; NaN was reported as "singular".
    ok = m is not None and np.isfinite(m).all() and (
        m.ndim == 2 or (batch is not None and m.ndim == 3 and len(m) == batch)
    )
    if not ok:
        shapes = "(3, 3) or OpenCV's (2, 3)"
        if batch is not None:
            shapes += f", or ({batch}, 3, 3): one per image"
        got = type(matrix).__name__ if m is None else f"shape {m.shape}"
        raise InvalidParameterError(
            f"matrix must be a finite affine map of shape {shapes}; got {got}"
            f"{'' if m is None or np.isfinite(m).all() else ' with NaN or inf'}."
        )
    if m.shape[-2:] == (2, 3):
        last = np.broadcast_to([0.0, 0.0, 1.0], (*m.shape[:-2], 1, 3))
        m = np.concatenate([m, last], axis=-2)
    if m.shape[-2:] != (3, 3):
        raise InvalidParameterError(
            f"matrix must be (3, 3) or OpenCV's (2, 3) affine map, got shape {m.shape}."
        )
    if not np.all(np.abs(np.linalg.det(m)) > 1e-12):
        raise InvalidParameterError("matrix is singular (it maps the image onto a line).")
    return m


def warp_affine(
    image: np.ndarray,
    matrix: np.ndarray,
    output_size: tuple[int, int],
    order: int = 1,
    border: str = "zeros",
) -> np.ndarray:
    """Warp ``image`` by the input-to-output ``matrix`` (bilinear or nearest).

    ``matrix`` is ``(3, 3)``, or OpenCV's ``(2, 3)`` form of the same map.

    Each output pixel centre is mapped back through the inverse matrix and
    sampled from the input; the torch form is :func:`warp_affine_torch`.
    Samples outside the input are 0 (``border="zeros"``) or the nearest edge
    pixel (``border="edge"``, OpenCV's replicate border).

    The dtype is kept: integer and bool images get bilinear samples rounded to
    the nearest value (as ``cv2.warpAffine``), not truncated.
    """
    image = _check_image(image)
    _check_border(border, order)
    h_out, w_out = _input.output_size(output_size, "warp_affine")  # (0, 5) gave an empty image
    inv = np.linalg.inv(_as_3x3(matrix))
    ys, xs = np.mgrid[0:h_out, 0:w_out].astype(np.float64) + 0.5
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2] - 0.5  # input pixel index space
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2] - 0.5
    h, w = image.shape[:2]
    img = image if image.ndim == 3 else image[..., None]
    edge = border == "edge"
    if order == 0:
        ix, iy = np.floor(sx + 0.5).astype(int), np.floor(sy + 0.5).astype(int)
        inside = edge | ((ix >= 0) & (ix < w) & (iy >= 0) & (iy < h))
        out = img[iy.clip(0, h - 1), ix.clip(0, w - 1)] * inside[..., None]
    else:
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
        out = np.zeros((h_out, w_out, img.shape[2]), dtype=np.float64)
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                xx, yy = x0 + dx, y0 + dy
                inside = (edge | ((xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)))[..., None]
                out += wx * wy * inside * img[yy.clip(0, h - 1), xx.clip(0, w - 1)]
    if order != 0 and image.dtype.kind in "biu":  # round, as cv2 does, instead of truncating
        info = np.iinfo(image.dtype) if image.dtype.kind != "b" else None
        lo, hi = (info.min, info.max) if info else (0, 1)
        out = np.clip(np.rint(out), lo, hi)
    out = out.astype(image.dtype, copy=False)
    return out if image.ndim == 3 else out[..., 0]


def warp_affine_torch(
    images, matrix: np.ndarray, output_size: tuple[int, int], order: int = 1,
    border: str = "zeros",
):
    """Torch form of :func:`warp_affine` for ``(B, C, H, W)`` tensors.

    ``matrix`` is one ``(3, 3)`` map for the whole batch or ``(B, 3, 3)``, one
    per image (the same result as warping each image with its own matrix).
    The dtype is kept as in :func:`warp_affine`: integer and bool tensors are
    sampled in float32 and rounded back; float16 / bfloat16 are sampled in
    float32 (with a float32 sampling grid) and cast back.
    """
    from boda.core.lazy import require_torch

    torch = require_torch("warp_affine_torch")
    import torch.nn.functional as F

    _check_border(border, order)
    if not is_tensor(images):
        raise InvalidParameterError(
            "warp_affine_torch takes a (B, C, H, W) tensor; for numpy images use warp_affine."
        )
    images = as_array(images, "images")
    b, _, h, w = images.shape
    h_out, w_out = _input.output_size(output_size, "warp_affine_torch")
    inv = np.linalg.inv(_as_3x3(matrix, batch=b))
    ys, xs = np.mgrid[0:h_out, 0:w_out].astype(np.float64) + 0.5
    inv = inv[..., None, None]  # broadcast each inverse over the pixel grid
    sx = inv[..., 0, 0, :, :] * xs + inv[..., 0, 1, :, :] * ys + inv[..., 0, 2, :, :]
    sy = inv[..., 1, 0, :, :] * xs + inv[..., 1, 1, :, :] * ys + inv[..., 1, 2, :, :]
    if order == 0:
        # Snap to the centre of the pixel the numpy form picks (floor(x + 0.5) in
        # index space): grid_sample's nearest rounds halves to even instead.
        sx, sy = np.floor(sx) + 0.5, np.floor(sy) + 0.5
    # align_corners=False: normalised -1 and 1 are the outer pixel edges
    grid = np.stack([2 * sx / w - 1, 2 * sy / h - 1], axis=-1)
    # grid_sample has no integer kernels: sample in float32, round back below.
    # float16 / bfloat16 too: the grid takes the image's dtype, and in bfloat16 (8-bit
    # mantissa) the samples of a 256 px wide image land up to a pixel off (an identity
    # warp changed values by up to 1.0); in float16 from 2048 px on.
    wide = images.dtype in (torch.float32, torch.float64)
    x = images if wide else images.float()
    grid_t = torch.as_tensor(grid, dtype=x.dtype, device=images.device)
    if grid_t.ndim == 3:
        grid_t = grid_t.expand(b, -1, -1, -1)
    mode = "nearest" if order == 0 else "bilinear"
    out = F.grid_sample(
        x, grid_t, mode=mode,
        padding_mode="border" if border == "edge" else "zeros",
        align_corners=False,
    )
    if images.is_floating_point():
        return out if wide else out.to(images.dtype)
    if images.dtype == torch.bool:
        return out.round() > 0
    info = torch.iinfo(images.dtype)
    return out.round().clamp(info.min, info.max).to(images.dtype)


def affine_matrix(
    size: tuple[int, int],
    angle: float = 0.0,
    translate: tuple[float, float] = (0.0, 0.0),
    scale: float = 1.0,
    shear: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Input-to-output matrix of a rotation / scale / shear about the image centre.

    ``angle`` in degrees, counter-clockwise on screen; ``shear`` ``(sx, sy)`` in
    degrees, each within ``(-90, 90)``; ``translate`` in pixels; ``scale`` > 0.
    """
    translate = real_pair(translate, "translate (dx, dy)", "affine")  # 1 gave a raw TypeError
    shear = real_pair(shear, "shear (sx, sy)", "affine")
    values = [angle, scale, *translate, *shear]
    if not all(real_number(v) and math.isfinite(v) for v in values):
        raise InvalidParameterError(
            "angle, scale, translate (dx, dy) and shear (sx, sy) must be finite numbers, got "
            f"{angle!r}, {scale!r}, {translate!r}, {shear!r}."
        )
    if not scale > 0:  # 0 collapses the image; a negative one turns it half round
        raise InvalidParameterError(f"scale must be > 0, got {scale!r}.")
    if not all(abs(s) < 90 for s in shear):  # tan(90°): the image leaves the frame
        raise InvalidParameterError(f"shear angles must lie within (-90, 90), got {shear!r}.")
    h, w = size
    cx, cy = w / 2, h / 2
    a = math.radians(angle)
    rot = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    shx, shy = (math.tan(math.radians(s)) for s in shear)
    sh = np.array([[1, shx, 0], [shy, 1, 0], [0, 0, 1]])
    sc = np.diag([scale, scale, 1.0])
    to_c = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    back = np.array([[1, 0, cx + translate[0]], [0, 1, cy + translate[1]], [0, 0, 1]])
    return back @ rot @ sh @ sc @ to_c


def _apply(image, matrix, out_size, order=1, border="zeros"):
    if isinstance(image, np.ndarray):
        size = image.shape[:2]
        out = warp_affine(image, matrix, out_size, order, border)
        return out, Transform(matrix, size, out_size)
    size = tuple(image.shape[-2:])
    out = warp_affine_torch(image, matrix, out_size, order, border)
    return out, Transform(matrix, size, out_size)


def _size(image) -> tuple[int, int]:
    return tuple(image.shape[:2]) if isinstance(image, np.ndarray) else tuple(image.shape[-2:])


def hflip(image):
    """Mirror left-right. numpy ``(H, W[, C])`` or torch ``(B, C, H, W)``.

    Returns
    -------
    (image, Transform)
    """
    image = as_array(image)
    h, w = _size(image)
    m = np.array([[-1.0, 0, w], [0, 1, 0], [0, 0, 1]])
    return _flip(image, m, axis="x"), Transform(m, (h, w), (h, w))


def vflip(image):
    """Mirror top-bottom; returns ``(image, Transform)``."""
    image = as_array(image)
    h, w = _size(image)
    m = np.array([[1.0, 0, 0], [0, -1, h], [0, 0, 1]])
    return _flip(image, m, axis="y"), Transform(m, (h, w), (h, w))


def _flip(image, m, axis):
    # exact flips, no resampling; .copy(), not np.ascontiguousarray: a flipped single
    # row or column is already contiguous, so that returned a view of the caller's image
    if isinstance(image, np.ndarray):
        return (image[:, ::-1] if axis == "x" else image[::-1]).copy()
    return image.flip(-1 if axis == "x" else -2)


def rotate(image, angle: float, order: int = 1):
    """Rotate about the centre by ``angle`` degrees (counter-clockwise), same size.

    Returns ``(image, Transform)``; corners leaving the frame are cut, new
    areas are 0.
    """
    image = as_array(image)
    size = _size(image)
    return _apply(image, affine_matrix(size, angle=angle), size, order)


def affine(image, angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0), order=1):
    """Rotation, translation, scale and shear about the centre; ``(image, Transform)``."""
    image = as_array(image)
    size = _size(image)
    return _apply(image, affine_matrix(size, angle, translate, scale, shear), size, order)


def crop(image, top: int, left: int, height: int, width: int):
    """Crop ``[top:top+height, left:left+width]``; ``(image, Transform)``."""
    image = as_array(image)
    h, w = _size(image)
    if not all(whole_number(v) for v in (top, left, height, width)):
        # slices need whole pixels (numpy said "slice indices must be integers");
        # resized_crop takes a fractional box
        raise InvalidParameterError(
            f"crop takes whole pixels (top, left, height, width), got "
            f"{(top, left, height, width)!r}; use resized_crop for a sub-pixel box."
        )
    if not (0 <= top and 0 <= left and height > 0 and width > 0
            and top + height <= h and left + width <= w):
        raise InvalidParameterError(
            f"crop ({top}, {left}, {height}, {width}) does not fit an image of size {(h, w)}."
        )
    m = np.array([[1.0, 0, -left], [0, 1, -top], [0, 0, 1]])
    if isinstance(image, np.ndarray):
        out = image[top : top + height, left : left + width].copy()
    else:  # a copy as in numpy: a view let in-place edits of the crop reach the caller
        out = image[..., top : top + height, left : left + width].clone()
    return out, Transform(m, (h, w), (height, width))


def resized_crop(image, top, left, height, width, size: tuple[int, int], order: int = 1):
    """Crop a box and resize it to ``size`` (bilinear); ``(image, Transform)``.

    ``size`` is ``(height, width)``, or one int for a square (as torchvision).
    Samples that fall outside the image (within half an input pixel of its
    border) take the edge pixel, as in ``cv2.resize``, so a crop touching
    the border does not fade to black there.

    Bilinear without antialiasing (``cv2.resize``'s ``INTER_LINEAR``, kornia's
    and torchvision's ``antialias=False``): shrinking a crop by more than 2x
    aliases fine texture. torchvision's ``RandomResizedCrop`` antialiases by
    default; to match it on large photos, shrink them first (``cv2.INTER_AREA``).
    ``order=0`` takes the nearest pixel (label maps).
    """
    image = as_array(image)
    h, w = _size(image)
    size = output_size(size, "resized_crop")
    if not all(real_number(v) for v in (top, left, height, width)):  # "0" was a TypeError
        raise InvalidParameterError(
            f"resized_crop: the box (top, left, height, width) must be numbers in pixels, "
            f"got {(top, left, height, width)!r}."
        )
    if height < 1 or width < 1:
        raise InvalidParameterError(
            f"crop size ({height}, {width}) must be positive."
        )
    m = _resized_crop_matrix(top, left, height, width, size)
    if not (0 <= top and 0 <= left and top + height <= h and left + width <= w):
        raise InvalidParameterError(f"crop box does not fit an image of size {(h, w)}.")
    return _apply(image, m, size, order, border="edge")


def _resized_crop_matrix(top, left, height, width, size) -> np.ndarray:
    sy, sx = size[0] / height, size[1] / width
    return np.array([[sx, 0, -left * sx], [0, sy, -top * sy], [0, 0, 1]])


def check_crop_ranges(scale, ratio) -> tuple[tuple[float, float], tuple[float, float]]:
    """The ``scale`` and ``ratio`` ranges of a random-resized crop, checked."""
    scale = real_pair(scale, "scale", "random_resized_crop")
    ratio = real_pair(ratio, "ratio", "random_resized_crop")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise InvalidParameterError(
            f"scale must be (low, high) area fractions with 0 < low <= high <= 1, got {scale}."
        )
    if not 0 < ratio[0] <= ratio[1] < math.inf:
        raise InvalidParameterError(
            f"ratio must be (low, high) aspect ratios with 0 < low <= high, got {ratio}."
        )
    return scale, ratio


def random_resized_crop_params(
    size: tuple[int, int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    seed: int | np.random.Generator | None = None,
) -> tuple[int, int, int, int]:
    """Sample ``(top, left, height, width)`` as Inception / torchvision do.

    ``size`` is the input image's ``(height, width)``. Area fraction uniform in
    ``scale`` (within ``(0, 1]``), log-aspect (``width / height``) uniform in
    ``ratio`` (> 0); 10 tries, then the centre crop at the clamped ratio
    (Szegedy et al. 2015; torchvision's ``RandomResizedCrop.get_params``), with
    sides of at least one pixel.
    """
    if not (isinstance(size, (tuple, list)) and len(size) == 2
            and all(whole_number(v) for v in size)):  # (10, 10, 3) was a raw ValueError
        raise InvalidParameterError(
            "random_resized_crop_params: size is the image's (height, width) in whole "
            f"pixels, got {size!r}."
        )
    if min(size) < 1:
        raise InvalidParameterError(f"size must be positive, got {tuple(size)}.")
    scale, ratio = check_crop_ranges(scale, ratio)
    rng = _rng(seed)
    h, w = size
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        r = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * r)), round(math.sqrt(target / r))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    r = w / h
    # At least one pixel: on a tiny image with a far ratio, torchvision's rounding
    # gives a side of 0 ((1, 1) with ratio (10, 20): height round(0.1) = 0).
    if r < ratio[0]:
        cw, ch = w, max(1, round(w / ratio[0]))
    elif r > ratio[1]:
        ch, cw = h, max(1, round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def random_resized_crop(image, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), seed=None):
    """Random crop of random area and aspect, resized to ``size`` (``(h, w)`` or one
    int for a square); ``(image, Transform)``.

    The box is :func:`random_resized_crop_params` (``ratio`` is width / height), the
    resize is :func:`resized_crop`'s (bilinear, no antialiasing)."""
    image = as_array(image)
    size = output_size(size, "random_resized_crop")  # before the draw, whatever the seed
    top, left, ch, cw = random_resized_crop_params(_size(image), scale, ratio, seed)
    return resized_crop(image, top, left, ch, cw, size)
