"""Classical inpainting behind one API, with a registry of methods.

The mask convention, stated once for all of boda: **true (or 255, or any value
at least half of full scale) marks a pixel to fill**; every other pixel is
known and is returned unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import linalg as sparse_linalg

from boda.core.image import as_float_image
from boda.core.numbers import real_number
from boda.edit._exemplar import inpaint_exemplar
from boda.edit._telea import inpaint_telea
from boda.errors import InvalidImageError, InvalidParameterError

__all__ = [
    "InpaintMethod",
    "available_inpaint_methods",
    "inpaint",
    "inpaint_biharmonic",
    "register_inpaint_method",
    "to_hole_mask",
]


class InpaintMethod(Protocol):
    """What a registered method is called with.

    ``image`` is float32 ``(H, W, C)`` (C = 1, 3 or 4), ``mask`` bool ``(H, W)``
    with at least one hole and one known pixel; options come from
    :func:`inpaint`'s keyword arguments.  It returns an array of the same shape;
    only its values at holes are used.
    """

    def __call__(self, image: np.ndarray, mask: np.ndarray, **options: object) -> np.ndarray: ...


_REGISTRY: dict[str, Callable[..., np.ndarray]] = {}


def register_inpaint_method(
    name: str, fn: Callable[..., np.ndarray], *, overwrite: bool = False
) -> None:
    """Make ``fn`` available as ``inpaint(..., method=name)``.

    A learned model plugs in here: wrap it in a function with the
    :class:`InpaintMethod` signature and register it.

    Raises
    ------
    InvalidParameterError
        If ``name`` is not a non-empty string, ``fn`` is not callable, or
        ``name`` is taken and ``overwrite`` is false.
    """
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(
            f"an inpainting method's name must be a non-empty string, got {name!r}"
        )
    if not callable(fn):
        raise InvalidParameterError(
            f"register_inpaint_method({name!r}, ...) needs a function "
            f"fn(image, mask, **options) -> filled image, got {type(fn).__name__} {fn!r}"
        )
    if name in _REGISTRY and not overwrite:
        raise InvalidParameterError(
            f"an inpainting method called {name!r} is already registered; "
            "pass overwrite=True to replace it"
        )
    _REGISTRY[name] = fn


def available_inpaint_methods() -> list[str]:
    """Names accepted by :func:`inpaint`'s ``method`` argument."""
    return sorted(_REGISTRY)


def _finite_image(image: np.ndarray) -> np.ndarray:
    """``image`` as float32 (``as_float_image``, alpha allowed); an error if not finite.

    One NaN or infinity among the known pixels spreads through every method's
    weighted sums (and the clip to the known range) into the whole hole.
    """
    arr = as_float_image(image, name="image", allow_alpha=True)
    if not np.isfinite(arr).all():
        raise InvalidImageError(
            "image holds NaN or infinite values; replace them first, e.g. "
            "np.nan_to_num(image) (to fill such pixels, set them to 0 and mark them in the mask)"
        )
    return arr


def _check_some_known(holes: np.ndarray) -> None:
    if holes.all():
        raise InvalidParameterError(
            "the mask marks every pixel as a hole, so there is nothing to fill from; "
            "mark only the region to remove (true / 255 = fill)"
        )


def fill_inputs(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The checks and conversions of :func:`inpaint`, for the public fill methods.

    Returns the image as float32 ``(H, W, C)`` (a gray image gets C = 1) and
    the mask as bool ``(H, W)``, true = hole.  Use :func:`fill_result` to give
    the result back in the caller's shape.

    Raises
    ------
    InvalidImageError
        Bad image shape/dtype, NaN or infinite values, or a mask of another size.
    InvalidParameterError
        A mask that marks every pixel as a hole.
    """
    arr = _finite_image(image)
    holes = to_hole_mask(mask, arr.shape[:2])
    if holes.any():
        _check_some_known(holes)
    work = arr[:, :, None] if arr.ndim == 2 else arr
    return np.ascontiguousarray(work), holes


def fill_result(out: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``out`` (``(H, W, C)``) in the shape ``image`` was given in: ``(H, W)`` for gray."""
    # Only a one-channel result can have lost an axis: a Pillow palette or CMYK
    # image is 2-D as an object but decodes to colour (only red came back).
    if out.shape[2] != 1 or np.ndim(image) == 3:
        return out
    return out[:, :, 0]


def to_hole_mask(mask: np.ndarray, shape: tuple[int, int], *, name: str = "mask") -> np.ndarray:
    """Validate a mask and return it as bool ``(H, W)``, true = hole.

    bool masks are used as they are; integer and float masks are scaled to
    ``[0, 1]`` (uint8 by 255, uint16 by 65535) and thresholded at 0.5; a colour
    mask counts a pixel as a hole when any channel does.

    Raises
    ------
    InvalidImageError
        A mask of another size or dtype, one holding NaN or infinite values,
        or an integer mask with marks but none at half of its dtype's maximum
        (0/1, or 0/255 in uint16: read as the convention says, no hole at all;
        pass ``mask > 0``).
    """
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr = arr[:, :, :3].max(axis=2) if arr.shape[2] > 1 else arr[:, :, 0]
    if arr.ndim != 2:
        raise InvalidImageError(f"{name} must have shape (H, W), got {arr.shape}")
    if arr.shape != tuple(shape):
        raise InvalidImageError(
            f"{name} is {arr.shape[1]}x{arr.shape[0]} (WxH) but the image is "
            f"{shape[1]}x{shape[0]}; resize the mask to the image size "
            "(nearest-neighbour, so it stays binary)"
        )
    if arr.dtype == np.bool_:
        return arr.copy()
    values = as_float_image(arr, name=name, unit_range=False)
    if not np.isfinite(values).all():
        # NaN >= 0.5 is false: such pixels would silently count as known.
        raise InvalidImageError(
            f"{name} holds NaN or infinite values; replace them first "
            "(true / 255 = fill, anything else is kept)"
        )
    holes = values >= 0.5  # 0/255 masks too
    if np.issubdtype(arr.dtype, np.integer) and not holes.any() and arr.max() > 0:
        full = np.iinfo(arr.dtype).max
        if arr.max() == 1:
            # A 0/1 uint8 mask (what mask.astype(np.uint8) gives) is 1/255 at most:
            # read as the convention says, it marks no hole and nothing is filled.
            raise InvalidImageError(
                f"{name} is {arr.dtype} holding only 0 and 1, which reads as no hole "
                f"({arr.dtype} masks are scaled by {full}); "
                f"pass {name}.astype(bool) or {name} * {full} (true / 255 = fill)"
            )
        # Marks drawn, none at half of full scale: a 0/255 mask stored as uint16,
        # or one drawn in dark gray, filled nothing (the CLI refuses such files too).
        raise InvalidImageError(
            f"{name} is {arr.dtype} with marks up to {arr.max()} but none at half of "
            f"{full} or more, so it marks no hole; pass {name} > 0 (a bool mask) or "
            f"draw the marks at {full} (true / 255 = fill)"
        )
    return holes


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    method: str = "telea",
    **options: object,
) -> np.ndarray:
    """Fill the masked pixels of an image from their surroundings.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha is inpainted like any
        other channel); uint8, uint16 or float in ``[0, 1]``.
    mask : numpy.ndarray
        ``(H, W)`` with **true / 255 = fill** (see :func:`to_hole_mask`).
    method : str
        ``"telea"`` (fast marching, Telea 2004; boda's implementation, see
        :func:`inpaint_telea`), ``"telea-opencv"`` and ``"ns"`` (OpenCV's
        Telea and Navier-Stokes, Bertalmio et al. 2001), ``"biharmonic"``
        (smooth fill solving Δ²u = 0), ``"exemplar"`` (patch copying,
        Criminisi et al. 2004, see :func:`inpaint_exemplar`), or any name
        added with :func:`register_inpaint_method`.
    **options
        Passed to the method: ``radius`` (pixels, default 5) for ``telea``,
        ``telea-opencv`` and ``ns``; ``gradient`` (default false) for
        ``telea``; ``patch_size`` (9) and ``search_radius`` for ``exemplar``.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``image``.  Known pixels are bit-for-bit the
        (float-converted) input; a mask without holes returns a copy.

    Raises
    ------
    InvalidImageError
        Bad image shape/dtype, NaN or infinite values, or a mask of another size.
    InvalidParameterError
        Unknown method, or a mask that marks every pixel as a hole.

    References
    ----------
    .. [1] A. Telea, "An Image Inpainting Technique Based on the Fast Marching
           Method", Journal of Graphics Tools 9(1), 2004.
    .. [2] M. Bertalmio, A. L. Bertozzi, G. Sapiro, "Navier-Stokes, Fluid
           Dynamics, and Image and Video Inpainting", CVPR 2001.
    .. [3] S. B. Damelin, N. S. Hoang, "On Surface Completion and Image
           Inpainting by Biharmonic Functions", Int. J. Math. Math. Sci., 2018.
    .. [4] A. Criminisi, P. Pérez, K. Toyama, "Region Filling and Object
           Removal by Exemplar-Based Image Inpainting", IEEE TIP 13(9), 2004.

    Examples
    --------
    >>> img = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    >>> hole = np.zeros((32, 32), bool); hole[10:20, 12:18] = True
    >>> out = inpaint(img, hole, method="biharmonic")
    >>> bool(np.abs(out - img).max() < 1e-4)
    True
    """
    if method not in _REGISTRY:
        raise InvalidParameterError(
            f"unknown inpainting method {method!r}; choose from {available_inpaint_methods()}"
        )
    work, holes = fill_inputs(image, mask)
    if not holes.any():
        return fill_result(work.copy(), image)
    fill = _REGISTRY[method]
    _check_options(method, fill, options)
    filled = np.asarray(fill(np.ascontiguousarray(work), holes, **options))
    if filled.shape != work.shape:
        raise InvalidImageError(
            f"inpainting method {method!r} returned shape {filled.shape}, expected {work.shape}"
        )
    # One copy of the photo (np.where plus astype made two).
    out = work.copy()
    np.copyto(out, filled, casting="unsafe", where=holes[:, :, None])
    # An (H, W, 1) image comes back (H, W, 1), as from the methods themselves.
    return fill_result(out, image)


def _opencv(flag_name: str) -> Callable[..., np.ndarray]:
    def method(image: np.ndarray, mask: np.ndarray, *, radius: float = 5.0) -> np.ndarray:
        import cv2

        if not (real_number(radius) and 0 < radius < math.inf):  # NaN was taken
            raise InvalidParameterError(f"radius must be a positive number, got {radius!r}")
        flag = getattr(cv2, flag_name)
        mask8 = mask.astype(np.uint8) * 255
        # OpenCV's float32 Telea overshoots far outside the data range, so run on
        # 16-bit channels (1-channel 16-bit is supported; 1/65535 steps are finer than
        # any photo).  The fill order depends on the mask alone, so per-channel calls
        # equal a joint multi-channel call.
        channels = []
        for c in range(image.shape[2]):
            chan16 = np.round(np.clip(image[:, :, c], 0.0, 1.0) * 65535.0).astype(np.uint16)
            filled = cv2.inpaint(chan16, mask8, float(radius), flag)
            channels.append(filled.astype(np.float32) / np.float32(65535.0))
        return np.stack(channels, axis=2)

    return method


def _laplacian_matrix(
    index: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sparse.csr_matrix:
    """Graph Laplacian rows for pixels ``(rows, cols)`` over the columns ``index``.

    Neighbours outside the image are dropped (a Neumann-like border), so the
    5-point stencil is exact wherever all four neighbours exist.
    """
    h, w = shape
    n = rows.size
    data, ri, ci = [], [], []
    centre = np.zeros(n)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yy, xx = rows + dy, cols + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        ri.append(np.nonzero(ok)[0])
        ci.append(index[yy[ok], xx[ok]])
        data.append(np.ones(int(ok.sum())))
        centre -= ok
    ri.append(np.arange(n))
    ci.append(index[rows, cols])
    data.append(centre)
    return sparse.csr_matrix(
        (np.concatenate(data), (np.concatenate(ri), np.concatenate(ci))),
        shape=(n, int(index.max()) + 1),
    )


def inpaint_biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill holes with the smooth solution of the biharmonic equation.

    Solves Δ²u = 0 at every hole pixel, with the known pixels as boundary
    values; Δ is the 5-point Laplacian, so the 13-point biharmonic stencil is
    Δ applied twice (Damelin & Hoang 2018, eq. 2.1 discretised).  The sparse
    system is factorised once (SuperLU) and solved for all channels.  Smooth
    fields are reproduced exactly: any image whose Laplacian vanishes near the
    hole (a linear ramp, for one) is returned unchanged.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8, uint16 or float
        in ``[0, 1]`` (as for :func:`inpaint`).
    mask : numpy.ndarray
        ``(H, W)``, true / 255 = hole (see :func:`to_hole_mask`).

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``image``.

    Raises
    ------
    InvalidImageError, InvalidParameterError
        As :func:`inpaint`.

    References
    ----------
    .. [1] S. B. Damelin, N. S. Hoang, "On Surface Completion and Image
           Inpainting by Biharmonic Functions", Int. J. Math. Math. Sci., 2018.
    """
    given = image
    image, mask = fill_inputs(image, mask)
    if not mask.any():
        return fill_result(image.copy(), given)
    h, w = mask.shape
    # Pixels the two Laplacians touch: the holes, one ring (rows of L), two rings (columns).
    ring1 = ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(2, 1))
    ring2 = ndimage.binary_dilation(ring1, structure=ndimage.generate_binary_structure(2, 1))
    index = -np.ones((h, w), dtype=np.int64)
    r2, c2 = np.nonzero(ring2)
    index[r2, c2] = np.arange(r2.size)
    r1, c1 = np.nonzero(ring1)
    lap2 = _laplacian_matrix(index, r1, c1, (h, w))  # ring1 rows -> ring2 columns
    index1 = -np.ones((h, w), dtype=np.int64)
    index1[r1, c1] = np.arange(r1.size)
    rh, ch = np.nonzero(mask)
    lap1 = _laplacian_matrix(index1, rh, ch, (h, w))  # hole rows -> ring1 columns
    bilap = (lap1 @ lap2).tocsc()
    unknown = mask[r2, c2]
    a = bilap[:, np.nonzero(unknown)[0]]
    b = bilap[:, np.nonzero(~unknown)[0]]
    known_values = image[r2[~unknown], c2[~unknown]].astype(np.float64)
    rhs = -(b @ known_values)
    solution = sparse_linalg.splu(a.tocsc()).solve(np.ascontiguousarray(rhs))
    # Like scikit-image, keep the fill inside the known values' range per channel:
    # the smooth extension can overshoot next to sharp edges.
    known = image[~mask]
    solution = np.clip(solution.reshape(-1, image.shape[2]), known.min(axis=0), known.max(axis=0))
    out = image.astype(np.float32, copy=True)
    out[r2[unknown], c2[unknown]] = solution
    return fill_result(out, given)


register_inpaint_method("telea", inpaint_telea)
register_inpaint_method("telea-opencv", _opencv("INPAINT_TELEA"))
register_inpaint_method("ns", _opencv("INPAINT_NS"))
register_inpaint_method("biharmonic", inpaint_biharmonic)
register_inpaint_method("exemplar", inpaint_exemplar)


def _check_options(method: str, fill: Callable, options: dict) -> None:
    """Name the options ``method`` does not take (a TypeError from deep inside otherwise)."""
    import inspect

    parameters = inspect.signature(fill).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # a registered method that takes anything decides for itself
    accepted = list(parameters)[2:]  # after (image, mask)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidParameterError(
            f"inpainting method {method!r} takes no option {', '.join(map(repr, unknown))}; "
            f"its options: {accepted or 'none'}"
        )
