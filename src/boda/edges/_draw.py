"""One picture of an image's edges by any method: what ``boda edges`` writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from boda.errors import InvalidParameterError

__all__ = ["EDGE_METHODS", "EdgeDrawing", "draw_edges"]

#: The methods :func:`draw_edges` knows, in the order ``boda edges --help`` lists them.
EDGE_METHODS = ("sobel", "prewitt", "scharr", "laplacian", "canny", "log", "hog", "orientation")

#: The options each method reads; giving another one is refused, not ignored.
_METHOD_OPTIONS = {
    "laplacian": {"neighbours"},
    "canny": {"sigma", "low", "high", "quantiles"},
    "log": {"sigma", "threshold"},
    "hog": {"cell", "orientations"},
}
_OPTION_DEFAULTS = {
    "sigma": None, "low": None, "high": None, "quantiles": False, "threshold": None,
    "neighbours": 4, "cell": 8, "orientations": 9,
}


def _refuse_unused_options(method: str, given: dict[str, object]) -> None:
    """An option the method does not read would be silently ignored: say so instead."""
    used = _METHOD_OPTIONS.get(method, set())
    unused = sorted(
        name for name, value in given.items()
        if name not in used and value != _OPTION_DEFAULTS[name]
    )
    if unused:
        reads = f"reads only {', '.join(sorted(used))}" if used else "takes no options"
        raise InvalidParameterError(
            f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to "
            f"method {method!r}, which {reads}"
        )


@dataclass
class EdgeDrawing:
    """A picture of an image's edges and numbers that summarise them.

    Attributes
    ----------
    picture : numpy.ndarray
        float32 in ``[0, 1]``: ``(H, W)`` for every method but
        ``"orientation"``, which is ``(H, W, 3)`` RGB.
    stats : dict
        The method's summary numbers (e.g. ``edge_fraction`` for Canny,
        ``mean_magnitude`` for Sobel).
    """

    picture: np.ndarray
    stats: dict[str, object] = field(default_factory=dict)


def _peak_scaled(response: np.ndarray) -> np.ndarray:
    """``response`` divided by its maximum, so the strongest edge is white."""
    peak = float(response.max())
    return response / peak if peak > 0 else response


def draw_edges(
    image: np.ndarray,
    method: str = "canny",
    *,
    sigma: float | None = None,
    low: float | None = None,
    high: float | None = None,
    quantiles: bool = False,
    threshold: float | None = None,
    neighbours: int = 4,
    cell: int = 8,
    orientations: int = 9,
    progress: Callable[[int, int], None] | None = None,
) -> EdgeDrawing:
    """Draw the edges of ``image`` with one method, as a picture to look at.

    - ``"sobel"``, ``"prewitt"``, ``"scharr"``: the gradient magnitude of
      :func:`boda.filters.gradient_magnitude`, divided by its maximum;
    - ``"laplacian"``: ``|`` :func:`boda.filters.laplacian` ``|``, divided by its maximum;
    - ``"canny"``: the edge map of :func:`boda.edges.canny` (white edges);
    - ``"log"``: the zero crossings of :func:`boda.edges.log_edges`;
    - ``"hog"``: :func:`boda.edges.hog_image`, brightened so the 99th
      percentile of its drawn lines is white (the raw picture is dim: each
      cell's strengths are spread over its orientation bins);
    - ``"orientation"``: :func:`boda.edges.orientation_image` (hue = direction).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)`` in boda's image convention.
    method : str
        One of :data:`EDGE_METHODS`.
    sigma : float, optional
        Gaussian scale in pixels for ``"canny"`` (default 1.0) and ``"log"`` (2.0).
    low, high : float, optional
        ``"canny"``: hysteresis thresholds (defaults as :func:`boda.edges.canny`).
    quantiles : bool
        ``"canny"``: ``low`` and ``high`` are quantiles of the gradient magnitude.
    threshold : float, optional
        ``"log"``: the least jump across a zero crossing (default automatic).
    neighbours : {4, 8}
        ``"laplacian"``: the kernel.
    cell, orientations : int
        ``"hog"``: cell side in pixels and orientation bins.
    progress : callable, optional
        ``progress(done, total)``, called as ``"hog"`` and ``"orientation"`` draw
        their pictures (the slow methods on big photos: see
        :func:`boda.edges.hog_image`, :func:`boda.edges.orientation_image`); the
        other methods run in one step and do not call it.

    Returns
    -------
    EdgeDrawing

    Raises
    ------
    InvalidParameterError
        An unknown ``method`` or ``neighbours``, a bad parameter of the method,
        or an option the method does not read (given a value other than its
        default), which would otherwise be silently ignored.

    Examples
    --------
    >>> import numpy as np
    >>> step = np.zeros((16, 16), np.float32); step[:, 8:] = 1.0
    >>> drawing = draw_edges(step, "sobel")
    >>> float(drawing.picture.max()), drawing.picture.shape
    (1.0, (16, 16))
    >>> draw_edges(step, "canny").stats["edge_pixels"] > 0
    True
    """
    from boda import edges as E
    from boda import filters
    from boda.core.image import as_float_image, to_gray

    if method not in EDGE_METHODS:
        raise InvalidParameterError(
            f"unknown edge method {method!r}; choose one of {', '.join(EDGE_METHODS)}"
        )
    _refuse_unused_options(
        method,
        {
            "sigma": sigma, "low": low, "high": high, "quantiles": quantiles,
            "threshold": threshold, "neighbours": neighbours, "cell": cell,
            "orientations": orientations,
        },
    )
    pixels = as_float_image(image)
    stats: dict[str, object] = {}
    if method in ("sobel", "prewitt", "scharr"):
        magnitude = filters.gradient_magnitude(to_gray(pixels), method)  # type: ignore[arg-type]
        picture = _peak_scaled(magnitude)
        stats.update(mean_magnitude=float(magnitude.mean()), max_magnitude=float(magnitude.max()))
    elif method == "laplacian":
        if neighbours not in (4, 8):
            raise InvalidParameterError(f"neighbours must be 4 or 8, got {neighbours}")
        response = np.abs(filters.laplacian(to_gray(pixels), neighbours))  # type: ignore[arg-type]
        picture = _peak_scaled(response)
        stats.update(mean_abs_laplacian=float(response.mean()))
    elif method in ("canny", "log"):
        if method == "canny":
            edge_map = E.canny(
                pixels, 1.0 if sigma is None else sigma, low, high, use_quantiles=quantiles
            )
        else:
            edge_map = E.log_edges(pixels, 2.0 if sigma is None else sigma, threshold)
        picture = edge_map.astype(np.float32)
        stats.update(edge_fraction=float(edge_map.mean()), edge_pixels=int(edge_map.sum()))
    elif method == "hog":
        if cell > min(pixels.shape[:2]):  # no whole cell fits: a blank picture
            raise InvalidParameterError(
                f"cell {cell} px is larger than the image ({pixels.shape[1]} x "
                f"{pixels.shape[0]} px): give at most {min(pixels.shape[:2])}"
            )
        picture = E.hog_image(pixels, orientations, (cell, cell), progress=progress)
        lines = picture[picture > 0]
        if lines.size:
            picture = np.clip(picture / np.quantile(lines, 0.99), 0, 1).astype(np.float32)
        stats.update(cells=[pixels.shape[0] // cell, pixels.shape[1] // cell])
    else:
        picture = E.orientation_image(pixels, progress=progress)
    return EdgeDrawing(picture.astype(np.float32, copy=False), stats)
