"""GrabCut: iterated graph cuts with colour mixture models (Rother et al. 2004)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from boda.core.image import as_float_image
from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidImageError, InvalidParameterError
from boda.segment._gmm import (
    ColorGMM,
    kmeans_labels,
    orchard_bouman_labels,
    quadratic_features,
)
from boda.segment._guided import guided_filter

__all__ = [
    "BGD", "FGD", "PR_BGD", "PR_FGD", "GrabCutResult", "grabcut", "refine", "trimap_from_marks",
]

#: Trimap codes, the same numbers as OpenCV's ``GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD``.
#: ``BGD``/``FGD`` are hard constraints (the user said so); ``PR_*`` are the
#: algorithm's current guess and may change.
BGD, FGD, PR_BGD, PR_FGD = 0, 1, 2, 3

#: Ways to start the colour mixtures (see :func:`grabcut`'s ``init``).
_INITS = ("orchard-bouman", "kmeans")

#: Neighbour offsets ``(dy, dx)`` that visit every 8-neighbour pair once.
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass
class GrabCutResult:
    """What :func:`grabcut` found.

    Attributes
    ----------
    mask : numpy.ndarray
        bool ``(H, W)``, True on the foreground.
    trimap : numpy.ndarray
        uint8 ``(H, W)`` with codes :data:`BGD`, :data:`FGD` (hard constraints,
        kept as given) and :data:`PR_BGD`, :data:`PR_FGD` (the segmentation of
        the free pixels).  Pass it back as ``mask=`` to continue.
    energies : list of float
        The GrabCut energy E (Eq. 7 of the paper) after each graph cut kept; it
        never increases (a cut that would raise it ends the loop and is
        dropped).  Its length is the number of iterations kept.
    alpha : numpy.ndarray
        float32 ``(H, W)`` in ``[0, 1]``: the hard mask feathered by a guided
        filter with the image as guide (1 on FGD, 0 on BGD pixels).
    image : numpy.ndarray
        The float32 colour (or gray) image that was segmented.
    converged : bool
        True when the energy stopped falling before the iteration limit.
    params : dict
        The keyword arguments used, so :func:`refine` can continue alike.
    """

    mask: np.ndarray
    trimap: np.ndarray
    energies: list[float]
    alpha: np.ndarray
    image: np.ndarray
    converged: bool
    params: dict[str, Any] = field(default_factory=dict)
    source_alpha: np.ndarray | None = None

    def __repr__(self) -> str:
        # The arrays would print as walls of numbers: a notebook shows this instead.
        height, width = self.mask.shape
        energy = f"{self.energies[-1]:.4g}" if self.energies else "none"
        return (
            f"GrabCutResult({width}x{height}, foreground {self.mask.mean():.1%}, "
            f"iterations={len(self.energies)}, converged={self.converged}, energy={energy})"
        )

    def cutout(self, feathered: bool = True) -> np.ndarray:
        """The image with the background made transparent.

        Parameters
        ----------
        feathered : bool
            Use the guided-filter alpha (soft edges) instead of the hard mask.

        Returns
        -------
        numpy.ndarray
            float32 ``(H, W, 4)`` RGBA in ``[0, 1]`` (a gray image is repeated
            into RGB); an RGBA input's own alpha is multiplied in.
        """
        rgb = self.image if self.image.ndim == 3 else np.repeat(self.image[..., None], 3, -1)
        a = self.alpha if feathered else self.mask.astype(np.float32)
        if self.source_alpha is not None:
            a = a * self.source_alpha
        return np.concatenate([np.clip(rgb, 0, 1), a[..., None]], axis=-1).astype(np.float32)

    def trimap_with_strokes(
        self, fg_strokes: np.ndarray | None = None, bg_strokes: np.ndarray | None = None
    ) -> np.ndarray:
        """This result's trimap with stroked pixels made hard :data:`FGD` / :data:`BGD`.

        Raises
        ------
        InvalidParameterError
            A stroke mask of another size, or a pixel in both stroke masks.
        """
        trimap = self.trimap.copy()
        fg = _stroke(fg_strokes, trimap.shape, "fg_strokes")
        bg = _stroke(bg_strokes, trimap.shape, "bg_strokes")
        if (fg & bg).any():
            raise InvalidParameterError(
                f"{int((fg & bg).sum())} pixels are in both fg_strokes and bg_strokes; "
                "a pixel can only be marked one way"
            )
        trimap[fg] = FGD
        trimap[bg] = BGD
        return trimap


def trimap_from_marks(
    marks: np.ndarray, *, background_below: float = 0.25, foreground_above: float = 0.75
) -> np.ndarray:
    """A GrabCut trimap from a gray marks image: black = background, white =
    foreground, gray = let GrabCut decide.

    The ``boda cutout --mask`` convention, so a mask painted in any editor (with
    soft brushes and JPEG noise) gives hard constraints only where it is clearly
    dark or light.

    Parameters
    ----------
    marks : numpy.ndarray
        ``(H, W)`` gray image (any dtype :func:`boda.core.image.as_float_image` takes).
    background_below, foreground_above : float
        Values below the first are sure background (:data:`BGD`), above the
        second sure foreground (:data:`FGD`); the rest probably foreground
        (:data:`PR_FGD`), free for GrabCut to label.

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W)`` trimap for :func:`grabcut`'s ``mask``.

    Raises
    ------
    InvalidImageError
        ``marks`` is not a gray image.
    InvalidParameterError
        The thresholds are not ``0 <= background_below <= foreground_above <= 1``.

    Examples
    --------
    >>> trimap_from_marks(np.array([[0.0, 0.5, 1.0]])).tolist() == [[BGD, PR_FGD, FGD]]
    True
    """
    values = as_float_image(marks, name="marks")
    if values.ndim != 2:
        raise InvalidImageError(
            f"marks must be a gray (H, W) image, got shape {values.shape}; "
            "black = background, white = foreground, gray = unknown"
        )
    if not 0.0 <= background_below <= foreground_above <= 1.0:
        raise InvalidParameterError(
            "need 0 <= background_below <= foreground_above <= 1, got "
            f"{background_below} and {foreground_above}"
        )
    trimap = np.full(values.shape, PR_FGD, np.uint8)
    trimap[values < background_below] = BGD
    trimap[values > foreground_above] = FGD
    return trimap


def _whole(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; a boda error for anything else."""
    if not (whole_number(value) and value >= minimum):
        raise InvalidParameterError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _real(name: str, value: Any, *, positive: bool) -> float:
    """``value`` as a finite float, > 0 (``positive``) or >= 0."""
    usable = real_number(value) and math.isfinite(value)
    if not (usable and (value > 0 if positive else value >= 0)):
        raise InvalidParameterError(
            f"{name} must be a finite number {'>' if positive else '>='} 0, got {value!r}"
        )
    return float(value)


def _stroke(strokes: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    if strokes is None:
        return np.zeros(shape, bool)
    arr = np.asarray(strokes)
    if arr.shape != shape:
        raise InvalidParameterError(
            f"{name} has shape {arr.shape} but the image is {shape}; draw strokes at image size"
        )
    return arr.astype(bool)


def _prepare_image(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated float32 colour/gray image and the RGBA alpha (None without one)."""
    arr = as_float_image(image, allow_alpha=True)
    if not np.isfinite(arr).all():
        raise InvalidImageError("image contains NaN or infinite values; replace them first")
    if arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
        raise InvalidImageError(
            f"float image values must be in [0, 1], got [{arr.min():.3g}, {arr.max():.3g}]; "
            "pass np.clip(image, 0, 1) or divide by the maximum"
        )
    arr = np.clip(arr, 0.0, 1.0)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3])
    return arr, None


def _clip_rect(rect: Any, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``rect`` (x, y, width, height) clipped to an image of ``shape`` (H, W), as
    corners ``(x0, y0, x1, y1)``.

    Raises
    ------
    InvalidParameterError
        Not four whole numbers (an infinity raised a bare OverflowError), a width
        or height <= 0, or a box outside the image.
    """
    try:
        x, y, w, h = (int(v) for v in rect)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise InvalidParameterError(
            f"rect must be four integers (x, y, width, height), got {rect!r}"
        ) from None
    height, width = shape
    if w <= 0 or h <= 0:
        raise InvalidParameterError(f"rect width and height must be > 0, got w={w}, h={h}")
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x0 >= x1 or y0 >= y1:
        raise InvalidParameterError(
            f"rect {(x, y, w, h)} lies outside the {width}x{height} image; "
            "give x, y, width, height in pixels of this image"
        )
    return x0, y0, x1, y1


def _rect_trimap(rect: Any, shape: tuple[int, int]) -> np.ndarray:
    """PR_FGD inside the rectangle (clipped to the image), BGD outside."""
    x0, y0, x1, y1 = _clip_rect(rect, shape)
    trimap = np.full(shape, BGD, np.uint8)
    trimap[y0:y1, x0:x1] = PR_FGD
    return trimap


def _check_trimap(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise InvalidParameterError(
            f"mask has shape {arr.shape} but the image is {shape}; give one code per pixel"
        )
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidParameterError(
            f"mask must hold integer trimap codes BGD=0, FGD=1, PR_BGD=2, PR_FGD=3, "
            f"got dtype {arr.dtype}; for a bool foreground guess use np.where(m, PR_FGD, PR_BGD)"
        )
    bad = np.setdiff1d(np.unique(arr), [BGD, FGD, PR_BGD, PR_FGD])
    if bad.size:
        raise InvalidParameterError(
            f"mask holds values {bad[:5].tolist()}; "
            "only BGD=0, FGD=1, PR_BGD=2, PR_FGD=3 are allowed"
        )
    return arr.astype(np.uint8)


def _nlinks(z: np.ndarray, gamma: float) -> list[np.ndarray]:
    """Smoothness weights gamma/dist * exp(-beta |z_m - z_n|^2) per direction (Eq. 11).

    Entry ``[y, x]`` of the array for offset ``(dy, dx)`` weights the pair
    ``(y, x)``-``(y + dy, x + dx)``; it is 0 where that neighbour is outside.
    beta = 1 / (2 <|z_m - z_n|^2>) over all 8-neighbour pairs (Eq. 5).
    """
    h, w = z.shape[:2]
    sq = []
    total, count = 0.0, 0
    for dy, dx in _DIRECTIONS:
        d2 = np.zeros((h, w))
        ys, yd = slice(0, h - dy), slice(dy, h)
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(1, w), slice(0, w - 1))
        diff = z[ys, xs] - z[yd, xd]
        d2[ys, xs] = (diff * diff).sum(-1)
        total += d2[ys, xs].sum()
        count += d2[ys, xs].size
        valid = np.zeros((h, w), bool)
        valid[ys, xs] = True
        sq.append((d2, valid))
    mean = total / max(count, 1)
    beta = 1.0 / (2.0 * mean) if mean > 0 else 0.0
    out = []
    for (d2, valid), (dy, dx) in zip(sq, _DIRECTIONS, strict=True):
        dist = np.hypot(dy, dx)
        out.append(np.where(valid, gamma / dist * np.exp(-beta * d2), 0.0))
    return out


def _mixture_cost(costs: np.ndarray) -> np.ndarray:
    """``-log sum_k exp(-costs[k])`` per column: the mixture's cost from its components'.

    ``costs`` ``(K, N)`` holds ``-log pi_k N(z | mu_k, Sigma_k)``; shifting by the
    smallest cost keeps the exponentials in range (log-sum-exp).
    """
    low = costs.min(0)
    return low - np.log(np.exp(low - costs).sum(0))


def _smoothness(alpha: np.ndarray, weights: list[np.ndarray]) -> float:
    """Sum of the n-link weights over neighbour pairs with different labels."""
    h, w = alpha.shape
    total = 0.0
    for (dy, dx), wt in zip(_DIRECTIONS, weights, strict=True):
        ys, yd = slice(0, h - dy), slice(dy, h)
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(1, w), slice(0, w - 1))
        total += float(wt[ys, xs][alpha[ys, xs] != alpha[yd, xd]].sum())
    return total


class _CutGraph:
    """The s-t graph over the box, kept across iterations.

    Only the t-links change between GrabCut iterations, so the graph is built
    once and later cuts add the change of each t-link and reuse the search
    trees of the previous cut (Kohli & Torr 2005, "dynamic graph cuts"), which
    gives the same cut as a fresh graph in a fraction of the time.
    """

    def __init__(
        self, trimap: np.ndarray, weights: list[np.ndarray], box: tuple[slice, slice], hard: float
    ):
        import maxflow

        self.box = box
        t = trimap[box]
        self.graph = maxflow.Graph[float]()
        self.ids = self.graph.add_grid_nodes(t.shape)
        for (dy, dx), wt in zip(_DIRECTIONS, weights, strict=True):
            structure = np.zeros((3, 3))
            structure[1 + dy, 1 + dx] = 1
            self.graph.add_grid_edges(
                self.ids, weights=wt[box], structure=structure, symmetric=True
            )
        self.free = (t == PR_BGD) | (t == PR_FGD)
        # Hard constraints: a t-link dearer than all n-links of a pixel together.
        self.source = np.where(t == FGD, hard, 0.0)
        self.sink = np.where(t == BGD, hard, 0.0)
        self.graph.add_grid_tedges(self.ids, self.source, self.sink)
        self.solved = False

    def cut(self, d_fg: np.ndarray, d_bg: np.ndarray) -> np.ndarray:
        """Minimum cut for these data terms: True where a pixel is foreground.

        A cut that puts a pixel on the sink (background) side severs its source
        link, so the source capacity is the cost of "background" and vice versa.
        """
        source = np.where(self.free, d_bg[self.box], self.source)
        sink = np.where(self.free, d_fg[self.box], self.sink)
        changed = (source != self.source) | (sink != self.sink)
        self.graph.add_grid_tedges(self.ids, source - self.source, sink - self.sink)
        self.source, self.sink = source, sink
        if self.solved and changed.any():
            self.graph.mark_grid_nodes(self.ids[changed])
        self.graph.maxflow(reuse_trees=self.solved)
        self.solved = True
        return ~self.graph.get_grid_segments(self.ids)


def _free_box(free: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of the free pixels grown by one pixel (their neighbours)."""
    ys, xs = np.nonzero(free)
    h, w = free.shape
    return (
        slice(max(ys.min() - 1, 0), min(ys.max() + 2, h)),
        slice(max(xs.min() - 1, 0), min(xs.max() + 2, w)),
    )


def _feather(img: np.ndarray, mask: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Guided-filter alpha of a hard mask, computed only near the mask's border.

    Where the mask is constant over every window touching a pixel, the
    filter's slope is 0 and its output equals the mask, so filtering the
    border's bounding box grown by 2r + 1 pixels gives the full result.
    """
    soft = mask.astype(np.float32)
    if radius == 0:
        return soft
    edge = np.zeros_like(mask)
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    if not edge.any():
        return soft
    ys, xs = np.nonzero(edge)
    h, w = mask.shape
    m = 2 * radius + 1
    box = (
        slice(max(ys.min() - m, 0), min(ys.max() + m + 1, h)),
        slice(max(xs.min() - m, 0), min(xs.max() + m + 1, w)),
    )
    soft[box] = np.clip(guided_filter(img[box], soft[box], radius, eps), 0.0, 1.0)
    return soft


def grabcut(
    image: np.ndarray,
    rect: tuple[int, int, int, int] | None = None,
    mask: np.ndarray | None = None,
    *,
    iterations: int = 5,
    n_components: int = 5,
    gamma: float = 50.0,
    tol: float = 1e-4,
    feather_radius: int = 2,
    feather_eps: float = 1e-3,
    init: str = "orchard-bouman",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> GrabCutResult:
    """Cut the foreground out of an image from a rectangle or a trimap (GrabCut).

    The foreground and background colours are each modelled by a Gaussian
    mixture with ``n_components`` full-covariance components, started by
    Orchard & Bouman's binary splitting (deterministic; ``init="kmeans"``:
    seeded k-means++ and Lloyd steps).  Each iteration (Sec. 3 and Fig. 3 of
    the paper) (1) gives every pixel its most likely component
    ``argmin_k -log pi_k N(z_n | mu_k, Sigma_k)`` of its current label's
    mixture (Eq. 9), (2) re-estimates both mixtures from these assignments,
    and (3) relabels the free pixels by a minimum s-t cut (PyMaxflow) of the
    energy ``E = sum_n D(alpha_n) + V`` (Eq. 7): data term
    ``D = -log sum_k pi_k N(z_n | mu_k, Sigma_k)``, the mixture's negative
    log-likelihood (the paper's Eq. 8-9 keep only the best component, a
    lower bound of the likelihood; OpenCV uses the full mixture, and it cut
    better on the GrabCut photos), smoothness
    ``V = gamma * sum [alpha_m != alpha_n] exp(-beta |z_m - z_n|^2) / dist(m, n)``
    over the 8-neighbourhood (Eq. 11), ``beta = 1 / (2 <|z_m - z_n|^2>)``.
    The loop stops when E falls by less than ``tol`` (relative), when it
    would rise (the previous cut is kept), or after ``iterations`` cuts.
    Pixels the user fixed (:data:`BGD`, :data:`FGD`) are hard constraints
    (t-links of capacity ``9 * gamma``, more than all n-links of a pixel
    together).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB, ``(H, W)`` gray, or ``(H, W, 4)`` RGBA; uint8,
        uint16 or float in ``[0, 1]``.  Of an RGBA image the colour is
        segmented; fully transparent pixels are fixed background and the
        cut-out keeps the input's alpha.
    rect : (x, y, width, height), optional
        A box around the object, in pixels: outside is hard background,
        inside is probably foreground.  A box reaching past the image border is
        clipped; one outside the image is an error, and so is one covering all
        of it unless the image's transparent pixels or ``mask`` give background.
    mask : numpy.ndarray, optional
        ``(H, W)`` integer trimap with codes ``BGD=0, FGD=1, PR_BGD=2,
        PR_FGD=3`` (OpenCV's).  To continue after a result, pass
        ``result.trimap_with_strokes(fg, bg)`` (or use :func:`refine`).  With
        ``rect`` too, pixels outside the rectangle become BGD.
    iterations : int
        Maximum number of graph cuts (>= 1).
    n_components : int
        Components per colour mixture (the paper's K = 5).
    gamma : float
        Weight of the smoothness term (the paper's 50, for 0..255 colours).
    tol : float
        Stop when the energy falls by less than this fraction.
    feather_radius, feather_eps : int, float
        Guided-filter window radius and regularisation for ``alpha``
        (``feather_radius=0``: alpha is the hard mask).
    init : {"orchard-bouman", "kmeans"}
        How the mixtures start.  ``"orchard-bouman"`` (default): each label's
        colours are split into ``n_components`` clusters by repeatedly cutting
        the cluster of largest spread through its mean, across its principal
        axis (Orchard & Bouman 1991), as in Bayesian matting and Talbot & Xu's
        GrabCut; deterministic.  ``"kmeans"``: k-means++ seeds and Lloyd steps,
        as in OpenCV; the result depends on ``seed``.
    seed : int
        Seed of the k-means initialisation (``init="kmeans"`` only).
    progress : callable, optional
        Called as ``progress(done, iterations)`` after each iteration (a 12 MP
        photo takes seconds per iteration); a cut that converges early reports
        ``(iterations, iterations)`` last.

    Returns
    -------
    GrabCutResult

    Raises
    ------
    InvalidImageError
        The image is not ``(H, W[, 3|4])``, holds NaN, or floats outside ``[0, 1]``.
    InvalidParameterError
        Neither ``rect`` nor ``mask``; a bad rectangle; a mask of another size
        or with other codes; a trimap without any (probable) background or
        foreground pixel; ``iterations``/``n_components`` not whole numbers
        >= 1, ``gamma``/``feather_eps`` not finite and > 0, ``tol`` not finite
        and >= 0, ``feather_radius``/``seed`` not whole numbers >= 0; an
        unknown ``init``.

    References
    ----------
    C. Rother, V. Kolmogorov, A. Blake, "GrabCut: interactive foreground
    extraction using iterated graph cuts", ACM SIGGRAPH 2004, Eq. 7-11.
    doi:10.1145/1015706.1015720

    M. T. Orchard, C. A. Bouman, "Color quantization of images", IEEE Trans.
    Signal Processing 39(12), 1991 (the default ``init``).

    J. F. Talbot, X. Xu, "Implementing GrabCut", Brigham Young University, 2006.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((60, 80, 3), 0.2, np.float32); img[20:40, 30:50] = (0.9, 0.3, 0.1)
    >>> res = grabcut(img, rect=(20, 10, 40, 40))
    >>> bool(res.mask[30, 40]), bool(res.mask[5, 5]), res.cutout().shape
    (True, False, (60, 80, 4))
    """
    iterations = _whole("iterations", iterations, 1)
    if init not in _INITS:
        raise InvalidParameterError(
            f"init must be one of {', '.join(map(repr, _INITS))}, got {init!r}"
        )
    # Checked here, not where first used: an infinite gamma gave inf capacities
    # and energies, a bad feather_eps failed in the guided filter after the cut
    # under another name, a NaN count or a seed of None raised a bare
    # ValueError/TypeError.
    params = dict(
        n_components=_whole("n_components", n_components, 1),
        gamma=_real("gamma", gamma, positive=True),
        tol=_real("tol", tol, positive=False),
        feather_radius=_whole("feather_radius", feather_radius, 0),
        feather_eps=_real("feather_eps", feather_eps, positive=True),
        init=init,
        seed=_whole("seed", seed, 0),
    )
    n_components, gamma, seed = params["n_components"], params["gamma"], params["seed"]
    feather_radius, feather_eps, tol = (
        params["feather_radius"], params["feather_eps"], params["tol"])
    img, src_alpha = _prepare_image(image)
    shape = img.shape[:2]
    if rect is None and mask is None:
        raise InvalidParameterError(
            "give rect=(x, y, width, height) around the object or a trimap mask"
        )
    if mask is not None:
        trimap = _check_trimap(mask, shape).copy()
        if rect is not None:
            trimap[_rect_trimap(rect, shape) == BGD] = BGD
    else:
        trimap = _rect_trimap(rect, shape)
    # Fully transparent pixels: fixed background, but their stored colour means
    # nothing (black, white, or the object's own colour, as the editor left it).
    colourless = (src_alpha < 1.0 / 512) if src_alpha is not None else np.zeros(shape, bool)
    trimap[colourless] = BGD
    is_fg = (trimap == FGD) | (trimap == PR_FGD)
    if not (~is_fg).any() and mask is None:
        # Only now: a box over the whole image is fine where the image's own alpha
        # (or a trimap) gives background (a sticker on a transparent canvas).
        box = tuple(int(v) for v in rect)
        raise InvalidParameterError(
            f"rect {box} covers the whole {shape[1]}x{shape[0]} image, leaving no background "
            "to learn from; leave a margin around the object or pass a trimap mask"
        )
    if not (~is_fg).any():
        raise InvalidParameterError(
            "the trimap has no background pixel (BGD=0 or PR_BGD=2) to learn colours from; "
            "mark some background or use a rect with a margin"
        )
    if not is_fg.any():
        raise InvalidParameterError(
            "the trimap has no foreground pixel (FGD=1 or PR_FGD=3); mark the object"
        )
    if not (~is_fg & ~colourless).any():
        raise InvalidParameterError(
            "every background pixel is fully transparent, so there is no background "
            "colour to learn from; leave some opaque background outside the rect or mark "
            "some in the trimap (the image's alpha alone already separates the rest)"
        )

    z = (img.reshape(-1, 1) if img.ndim == 2 else img.reshape(-1, img.shape[2])).astype(
        np.float64
    ) * 255.0
    z_grid = z.reshape(*shape, -1)
    weights = _nlinks(z_grid, float(gamma))
    hard = 9.0 * float(gamma)
    free = (trimap == PR_BGD) | (trimap == PR_FGD)
    box = _free_box(free) if free.any() else None
    graph = _CutGraph(trimap, weights, box, hard) if box is not None else None
    rng = np.random.default_rng(seed)
    k = int(n_components)

    alpha = is_fg.ravel()
    # Pixels that can be foreground (or background) need that model's cost.
    can_fg = (trimap != BGD).ravel()
    # Transparent pixels stay out of the background model: they taught it colours
    # (often the object's) that are nowhere in the picture.
    can_bg = ((trimap != FGD) & ~colourless).ravel()
    fixed_fg, fixed_bg = trimap == FGD, trimap == BGD
    feats = quadratic_features(z)
    feats_fg = feats if can_fg.all() else feats[:, can_fg]
    feats_bg = feats if can_bg.all() else feats[:, can_bg]
    del feats  # keep at most the copies in use (peak memory is ~0.4 kB per pixel)
    # Component of each candidate pixel; k marks "not in this label's set".
    labels_fg = np.full(feats_fg.shape[1], k)
    labels_bg = np.full(feats_bg.shape[1], k)
    if init == "kmeans":
        labels_fg[alpha[can_fg]] = kmeans_labels(z[alpha], k, rng)
        labels_bg[~alpha[can_bg]] = kmeans_labels(z[~alpha & can_bg], k, rng)
    else:
        labels_fg[alpha[can_fg]] = orchard_bouman_labels(z[alpha], k)
        labels_bg[~alpha[can_bg]] = orchard_bouman_labels(z[~alpha & can_bg], k)
    d_fg = np.full(z.shape[0], np.inf)
    d_bg = np.full(z.shape[0], np.inf)
    d_bg[colourless.ravel()] = 0.0  # fixed background without colour: no data cost
    energies: list[float] = []
    converged = False
    for it in range(int(iterations)):
        fg_model = ColorGMM.from_features(feats_fg, labels_fg, k)
        bg_model = ColorGMM.from_features(feats_bg, labels_bg, k)
        cost_fg = fg_model.component_costs(feats_fg)
        cost_bg = bg_model.component_costs(feats_bg)
        d_fg[can_fg] = _mixture_cost(cost_fg)
        d_bg[can_bg] = _mixture_cost(cost_bg)
        previous = alpha
        if graph is not None:
            grid = alpha.reshape(shape).copy()
            grid[box] = graph.cut(d_fg.reshape(shape), d_bg.reshape(shape))
            grid[fixed_fg] = True
            grid[fixed_bg] = False
            alpha = grid.ravel()
        energy = float(np.where(alpha, d_fg, d_bg).sum()) + _smoothness(
            alpha.reshape(shape), weights
        )
        if energies and energy > energies[-1]:
            # Re-fitting by hard assignment need not lower the mixture's cost, so
            # E can rise; then the previous cut is the best one and we stop there.
            alpha = previous
            converged = True
            break
        energies.append(energy)
        if graph is None or not alpha.any() or not (~alpha & can_bg).any():
            break  # nothing left to decide, or one mixture has no samples
        if it > 0 and energies[-2] - energy <= tol * abs(energies[-2]):
            converged = True
            break
        if progress is not None:
            progress(it + 1, int(iterations))
        # Step 1 of the next iteration: most likely component under the current model.
        labels_fg = np.where(alpha[can_fg], np.argmin(cost_fg, 0), k)
        labels_bg = np.where(alpha[can_bg], k, np.argmin(cost_bg, 0))

    if progress is not None:
        progress(int(iterations), int(iterations))
    hard_mask = alpha.reshape(shape)
    out_trimap = trimap.copy()
    out_trimap[free & hard_mask] = PR_FGD
    out_trimap[free & ~hard_mask] = PR_BGD
    soft = _feather(img, hard_mask, feather_radius, feather_eps)
    soft[trimap == FGD] = 1.0
    soft[trimap == BGD] = 0.0
    return GrabCutResult(
        mask=hard_mask,
        trimap=out_trimap,
        energies=energies,
        alpha=soft.astype(np.float32),
        image=img,
        converged=converged,
        params=params,
        source_alpha=src_alpha,
    )


def refine(
    result: GrabCutResult,
    fg_strokes: np.ndarray | None = None,
    bg_strokes: np.ndarray | None = None,
    *,
    iterations: int = 5,
) -> GrabCutResult:
    """Continue a GrabCut result after the user drew foreground/background strokes.

    The stroked pixels become hard constraints (:data:`FGD` / :data:`BGD`, the
    paper's "user editing", Sec. 3.2), the previous segmentation is the start,
    and :func:`grabcut` runs again with the same parameters.

    Parameters
    ----------
    result : GrabCutResult
        A previous result (its image and trimap are reused).
    fg_strokes, bg_strokes : numpy.ndarray, optional
        bool ``(H, W)``: pixels that surely belong to the object / background.
    iterations : int
        Maximum number of further graph cuts.

    Returns
    -------
    GrabCutResult

    Raises
    ------
    InvalidParameterError
        Strokes of another size, or a pixel in both.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((40, 40, 3), 0.2, np.float32); img[10:30, 10:30] = 0.8
    >>> first = grabcut(img, rect=(5, 5, 30, 30))
    >>> bg = np.zeros((40, 40), bool); bg[15:25, 15:25] = True
    >>> bool(refine(first, bg_strokes=bg).mask[20, 20])
    False
    """
    trimap = result.trimap_with_strokes(fg_strokes, bg_strokes)
    image = result.image
    if result.source_alpha is not None:
        image = np.concatenate([image, result.source_alpha[..., None]], axis=-1)
    return grabcut(image, mask=trimap, iterations=iterations, **result.params)
