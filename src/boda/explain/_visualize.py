"""Pictures of explanation maps: colormap overlays and a montage comparing methods (numpy only)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from boda.core.image import as_float_image
from boda.errors import InvalidImageError, InvalidParameterError

__all__ = ["overlay", "montage", "resize_map"]


def resize_map(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float map to ``size = (H, W)``."""
    m = np.asarray(heatmap, dtype=np.float32)
    if m.ndim != 2 or m.size == 0:
        raise InvalidImageError(f"heatmap must be a non-empty 2-D (H, W) map, got shape {m.shape}")
    if not np.isfinite(m).all():
        # One NaN would spread over its whole neighbourhood in the resize.
        raise InvalidImageError("heatmap holds NaN or infinite values; fix the map first")
    if m.shape == tuple(size):
        return m
    img = Image.fromarray(m, mode="F").resize((int(size[1]), int(size[0])), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def _colormap(name):
    """A matplotlib colormap from its name, or the colormap object itself."""
    import matplotlib

    if isinstance(name, matplotlib.colors.Colormap):
        return name
    try:
        return matplotlib.colormaps[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            f"unknown matplotlib colormap {name!r}; give a name such as 'jet' or a Colormap"
        ) from None


def overlay(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    cmap: str = "jet",
    alpha: float = 0.5,
) -> np.ndarray:
    """Blend a colour-mapped heat map over an image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` or ``(H, W)`` image (any dtype boda accepts).
    heatmap : numpy.ndarray
        ``(h, w)`` map in ``[0, 1]`` (values are clipped); resized bilinearly
        to the image size.
    cmap : str or matplotlib.colors.Colormap
        A matplotlib colormap or its name.
    alpha : float
        Weight of the heat map, in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W, 3)`` in ``[0, 1]``: ``(1 - alpha) * image + alpha * cmap(heatmap)``.

    Examples
    --------
    >>> import numpy as np
    >>> overlay(np.zeros((4, 4, 3)), np.ones((2, 2)), alpha=1.0).shape
    (4, 4, 3)
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidParameterError(f"alpha must be in [0, 1], got {alpha}")
    img = as_float_image(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    m = np.clip(resize_map(heatmap, img.shape[:2]), 0.0, 1.0)
    colour = _colormap(cmap)(m)[..., :3].astype(np.float32)
    return np.clip((1.0 - alpha) * img + alpha * colour, 0.0, 1.0).astype(np.float32)


def _upscale(img: np.ndarray, tile: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = tile / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    pil = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.asarray(pil.resize(size, Image.BICUBIC), dtype=np.float32) / 255.0


def montage(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    cmap: str = "jet",
    alpha: float = 0.5,
    tile: int = 160,
    titles: bool = True,
) -> np.ndarray:
    """Side-by-side picture: the image, then one overlay per method.

    Parameters
    ----------
    image : numpy.ndarray
        The explained image ``(H, W, 3)``.
    maps : mapping of str to numpy.ndarray
        Method name -> ``(h, w)`` map in ``[0, 1]``.
    cmap, alpha
        See :func:`overlay`.
    tile : int
        Longest side of each panel in pixels (small inputs are upscaled).
    titles : bool
        Write the method names above the panels.

    Returns
    -------
    numpy.ndarray
        float32 ``(H', W', 3)`` picture, ready for :func:`boda.io.write_image`.
    """
    if tile < 8:
        raise InvalidParameterError(f"tile must be >= 8 pixels, got {tile}")
    base = as_float_image(image)
    if base.ndim == 2:
        base = np.repeat(base[:, :, None], 3, axis=2)
    panels = [("image", _upscale(base, tile))]
    for name, m in maps.items():
        panels.append((name, overlay(panels[0][1], m, cmap=cmap, alpha=alpha)))
    ph, pw = panels[0][1].shape[:2]
    pad, head = 4, (14 if titles else 0)
    font = ImageFont.load_default() if titles else None
    # A column is as wide as its panel or its title: the titles of a tall, narrow
    # image's panels would otherwise run into one another.
    widths = [max(pw, int(np.ceil(font.getlength(name))) if font else 0) for name, _ in panels]
    starts = [pad + sum(widths[:i]) + i * pad for i in range(len(panels))]
    out = np.ones((ph + head + 2 * pad, starts[-1] + widths[-1] + pad, 3), np.float32)
    for (_, p), x0, w in zip(panels, starts, widths, strict=True):
        x0 += (w - pw) // 2
        out[pad + head : pad + head + ph, x0 : x0 + pw] = p
    if titles:
        pil = Image.fromarray((out * 255 + 0.5).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        for (name, _), x0 in zip(panels, starts, strict=True):
            draw.text((x0, pad), name, fill=(0, 0, 0), font=font)
        out = np.asarray(pil, dtype=np.float32) / 255.0
    return out
