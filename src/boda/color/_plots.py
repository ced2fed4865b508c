"""Chromaticity diagram and hue–saturation histogram (matplotlib, no pyplot state).

Figures are built with :class:`matplotlib.figure.Figure` directly, so nothing
depends on an interactive backend and figures are freed when dropped.
matplotlib is imported inside the functions so ``import boda.color`` stays light.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from boda.color._cie import whitepoint
from boda.color._hsv import rgb_to_hsv
from boda.color._illuminants import SRGB_PRIMARIES_XY
from boda.color._spectral import planckian_xy, spectral_locus
from boda.color._srgb import XYZ_TO_SRGB, linear_to_srgb, srgb_to_xyz
from boda.core.image import as_float_image
from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "check_figure_path",
    "pixel_chromaticities",
    "plot_chromaticity_diagram",
    "hue_saturation_histogram",
    "plot_hue_saturation_histogram",
    "save_figure",
]


#: Fonts with Hangul, kana and CJK ideographs that systems often have, in order of
#: preference: a title (an image's file name) falls back to the first installed one
#: for the characters matplotlib's default font lacks, which it drew as empty boxes.
_FALLBACK_FAMILIES = (
    "Noto Sans CJK KR", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans KR",
    "Source Han Sans K", "Source Han Sans", "NanumGothic", "NanumBarunGothic",
    "Malgun Gothic", "Apple SD Gothic Neo", "AppleGothic", "Microsoft YaHei", "Yu Gothic",
    "Hiragino Sans", "PingFang SC", "WenQuanYi Zen Hei", "Droid Sans Fallback",
    "Arial Unicode MS",
)


def _set_title(ax: Axes, title: str, *, pad: float | None = None) -> None:
    """``ax.set_title(title, pad=pad)``, with the installed fallback fonts after the
    default one."""
    from matplotlib import font_manager, rcParams

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    fallback = [name for name in _FALLBACK_FAMILIES if name in installed]
    if fallback and not title.isascii():
        ax.set_title(title, pad=pad, fontfamily=[*rcParams["font.family"], *fallback])
    else:
        ax.set_title(title, pad=pad)


def _label_beside(
    ax: Axes, text: str, xy, normal, *, fontsize: float, offset: float = 4.0
) -> None:
    """Annotate ``xy`` with ``text`` ``offset`` points away along ``normal`` (data
    units, equal aspect), anchored by its near side so it grows away from the point."""
    nx, ny = np.asarray(normal, dtype=float) / np.hypot(*normal)
    ha = "left" if nx > 0.4 else "right" if nx < -0.4 else "center"
    va = "bottom" if ny > 0.4 else "top" if ny < -0.4 else "center"
    ax.annotate(text, tuple(xy), fontsize=fontsize, xytext=(offset * nx, offset * ny),
                textcoords="offset points", ha=ha, va=va)  # fmt: skip


def pixel_chromaticities(
    image: np.ndarray, *, min_luminance: float = 0.01, max_pixels: int = 250_000
) -> np.ndarray:
    """CIE 1931 xy chromaticities of an sRGB image's pixels.

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` sRGB (values clipped to [0, 1] first).
    min_luminance : float
        Pixels with Y below this (near black, where chromaticity is noise) are dropped.
    max_pixels : int
        Larger images are subsampled with a fixed stride.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float64 xy.

    Raises
    ------
    InvalidParameterError
        ``max_pixels`` is not a positive integer.
    """
    if not (whole_number(max_pixels) and max_pixels >= 1):
        raise InvalidParameterError(
            f"max_pixels must be a positive integer, got {max_pixels!r}"
        )
    img = as_float_image(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    px = img.reshape(-1, 3)
    if px.shape[0] > max_pixels:
        px = px[:: px.shape[0] // max_pixels + 1]
    xyz = srgb_to_xyz(np.clip(px, 0.0, 1.0).astype(np.float64))
    xyz = xyz[xyz[:, 1] >= min_luminance]
    return xyz[:, :2] / xyz.sum(axis=1, keepdims=True)


def _locus_fill(resolution: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """RGBA image of approximate colours inside the horseshoe, and its outline."""
    from matplotlib.path import Path as MplPath

    _, locus = spectral_locus(380.0, 700.0, 1.0)
    outline = np.vstack([locus, locus[:1]])
    xs = np.linspace(0.0, 0.8, resolution)
    ys = np.linspace(0.0, 0.9, resolution)
    gx, gy = np.meshgrid(xs, ys)
    gy_safe = np.maximum(gy, 1e-6)
    xyz = np.stack([gx / gy_safe, np.ones_like(gx), (1 - gx - gy) / gy_safe], axis=-1)
    lin = xyz @ XYZ_TO_SRGB.T
    # Out of gamut: drop the negative part and scale so the brightest channel is 1.
    lin = np.clip(lin, 0, None)
    lin /= np.maximum(lin.max(axis=-1, keepdims=True), 1e-12)
    rgb = linear_to_srgb(lin, clip=True)
    inside = MplPath(outline).contains_points(np.column_stack([gx.ravel(), gy.ravel()]))
    rgba = np.concatenate([rgb, inside.reshape(gx.shape)[..., None].astype(float)], axis=-1)
    return rgba, outline


def plot_chromaticity_diagram(
    image: np.ndarray | None = None,
    *,
    ax: Axes | None = None,
    planckian: bool = True,
    gamut: bool = True,
    white: bool = True,
    bins: int = 150,
    title: str | None = "CIE 1931 chromaticity diagram",
) -> Figure:
    """Draw the CIE 1931 xy chromaticity diagram, optionally with an image's pixels.

    The spectral locus (380–700 nm, labelled) is filled with approximate
    colours (each xy shown at the brightest in-gamut sRGB of that
    chromaticity, clipped where outside the sRGB gamut), with the sRGB gamut
    triangle, the D65 white point and the Planckian locus (1500–25000 K).
    The image's pixel chromaticities are overlaid as a density: darker means
    more pixels (logarithmic).

    Parameters
    ----------
    image : array_like, optional
        ``(H, W, 3)`` sRGB image whose chromaticities to overlay.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes; by default a new 6x6-inch figure is created.
    planckian, gamut, white : bool
        Draw the Planckian locus, the sRGB triangle, the D65 point.
    bins : int
        Histogram bins per axis for the density.
    title : str or None
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        Save it with :func:`save_figure` (PNG or SVG by file suffix).

    References
    ----------
    CIE 015:2018, section 7.3 (chromaticity diagram).
    """
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6, 6), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    rgba, outline = _locus_fill()
    ax.imshow(rgba, origin="lower", extent=(0.0, 0.8, 0.0, 0.9), interpolation="bilinear")
    ax.plot(outline[:, 0], outline[:, 1], color="black", linewidth=1.0)
    w, locus = spectral_locus(380.0, 700.0, 1.0)
    for nm in (460, 470, 480, 490, 500, 510, 520, 540, 560, 580, 600, 620):
        i = int(nm - w[0])
        # Outside the horseshoe, along its normal (wavelength rises clockwise, so the
        # outward normal is the tangent turned left): clear of the fill, the sRGB
        # triangle inside it and the neighbouring labels where the locus bends.
        # Where the locus nearly touches x = 0 (490–510 nm) there is no room
        # outside within the plotted range: those go just inside.
        tangent = locus[i + 3] - locus[i - 3]
        normal = np.array([-tangent[1], tangent[0]]) * (-1 if locus[i][0] < 0.05 else 1)
        _label_beside(ax, f"{nm}", locus[i], normal, fontsize=7)
    if gamut:
        tri = np.array(SRGB_PRIMARIES_XY + SRGB_PRIMARIES_XY[:1])
        ax.plot(tri[:, 0], tri[:, 1], color="black", linewidth=1.0, linestyle="--", label="sRGB")
    if planckian:
        temps = np.geomspace(1500.0, 25000.0, 60)
        pl = planckian_xy(temps)
        ax.plot(pl[:, 0], pl[:, 1], color="0.2", linewidth=1.0, label="Planckian locus")
        for t in (2000, 3000, 4000, 6500, 10000):
            x, y = planckian_xy(float(t))
            ax.plot([x], [y], marker="|", color="0.2")
            # Below the locus, along its normal: the D65 dot lies just above 6500 K.
            dx, dy = planckian_xy(t * 1.05) - planckian_xy(t / 1.05)
            normal = (dy, -dx) if dx > 0 else (-dy, dx)
            _label_beside(ax, f"{t} K", (x, y), normal, fontsize=6, offset=6.0)
    if white:
        wp = whitepoint("D65")
        ax.plot([wp[0] / wp.sum()], [wp[1] / wp.sum()], marker="o", markersize=4,
                color="black", linestyle="none", label="D65")  # fmt: skip
    if image is not None:
        xy = pixel_chromaticities(image)
        if len(xy):
            counts, xe, ye = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins,
                                            range=[[0.0, 0.8], [0.0, 0.9]])  # fmt: skip
            alpha = np.log1p(counts.T) / np.log1p(counts.max())
            dens = np.zeros((*alpha.shape, 4))
            dens[..., 3] = np.where(counts.T > 0, 0.25 + 0.7 * alpha, 0.0)
            ax.imshow(dens, origin="lower", extent=(xe[0], xe[-1], ye[0], ye[-1]),
                      interpolation="nearest")  # fmt: skip
    ax.set_xlim(0.0, 0.8)
    ax.set_ylim(0.0, 0.9)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.25)
    if gamut or planckian or white:
        ax.legend(loc="upper right", fontsize=8)
    if title:
        _set_title(ax, title)
    return fig


def hue_saturation_histogram(
    image: np.ndarray, *, bins: tuple[int, int] = (36, 8), min_value: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D histogram of HSV hue (degrees) and saturation over an image's pixels.

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` sRGB.
    bins : (int, int)
        Number of hue bins over [0, 360) and saturation bins over [0, 1].
    min_value : float
        Pixels with HSV value below this are left out (near black, hue is noise).

    Returns
    -------
    counts : numpy.ndarray
        ``(hue_bins, sat_bins)`` int64 pixel counts.
    hue_edges, sat_edges : numpy.ndarray
        Bin edges.

    Examples
    --------
    >>> img = np.zeros((2, 2, 3)); img[..., 0] = 1.0
    >>> counts, _, _ = hue_saturation_histogram(img)
    >>> int(counts[0, -1])
    4
    """
    if not (
        isinstance(bins, tuple | list) and len(bins) == 2
        and all(whole_number(b) and b >= 1 for b in bins)
    ):  # fmt: skip
        raise InvalidParameterError(
            f"bins must be two positive integers (hue bins, saturation bins), got {bins!r}"
        )
    if not (isinstance(min_value, int | float | np.integer | np.floating)
            and not isinstance(min_value, bool) and 0.0 <= min_value <= 1.0):  # fmt: skip
        raise InvalidParameterError(
            f"min_value must be an HSV value from 0 to 1 (default 0.05), got {min_value!r}"
        )
    nh, ns = bins
    img = as_float_image(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    hsv = rgb_to_hsv(np.clip(img.reshape(-1, 3), 0.0, 1.0))
    hsv = hsv[hsv[:, 2] >= min_value]
    counts, he, se = np.histogram2d(hsv[:, 0], hsv[:, 1], bins=(nh, ns),
                                    range=[[0.0, 360.0], [0.0, 1.0]])  # fmt: skip
    return counts.astype(np.int64), he, se


def plot_hue_saturation_histogram(
    image: np.ndarray,
    *,
    bins: tuple[int, int] = (36, 8),
    ax: Axes | None = None,
    title: str | None = "Hue–saturation histogram",
) -> Figure:
    """Draw :func:`hue_saturation_histogram` as a polar plot.

    Angle is hue (0° = red, counter-clockwise), radius is saturation; each
    cell is filled with its own colour (HSV with value 1), its opacity growing
    with the logarithm of the pixel count.
    """
    from matplotlib.figure import Figure

    counts, he, se = hue_saturation_histogram(image, bins=bins)
    if ax is None:
        fig = Figure(figsize=(5, 5), dpi=100)
        ax = fig.add_subplot(1, 1, 1, projection="polar")
    else:
        fig = ax.figure
    from boda.color._hsv import hsv_to_rgb

    peak = np.log1p(counts.max()) if counts.max() > 0 else 1.0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j] == 0:
                continue
            hue = (he[i] + he[i + 1]) / 2
            sat = (se[j] + se[j + 1]) / 2
            color = hsv_to_rgb([hue, sat, 1.0]).tolist()
            alpha = 0.15 + 0.85 * np.log1p(counts[i, j]) / peak
            ax.bar(np.radians(he[i]), se[j + 1] - se[j], width=np.radians(he[i + 1] - he[i]),
                   bottom=se[j], color=color, alpha=float(alpha), align="edge",
                   edgecolor="none")  # fmt: skip
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels(["0.25", "0.5", "0.75", "1"], fontsize=7)
    if title:
        # A polar axes' title is placed from the circle, not from the "90°" label
        # above it, which it touched: lift it past that label.
        _set_title(ax, title, pad=18)
    return fig


def check_figure_path(path: str | Path) -> Path:
    """``path`` if a figure can be written there (a ``.png`` or ``.svg`` file name).

    Raises
    ------
    InvalidParameterError
        Another suffix, or an existing folder.
    """
    from boda.io import prepare_output

    path = Path(path)
    if path.is_dir():  # first: a folder's name has no suffix to complain of
        prepare_output(path)  # raises: it is a folder
    if path.suffix.lower() not in (".png", ".svg"):
        raise InvalidParameterError(f"cannot write {str(path)!r}: use a .png or .svg file name")
    return path


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path``; the format comes from the suffix (``.png`` or ``.svg``).

    Parent folders are created.

    Raises
    ------
    InvalidParameterError
        Another suffix, or a path that cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from boda.io import write_output

    path = check_figure_path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
    return write_output(path, buffer.getvalue())
