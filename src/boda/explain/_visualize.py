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


def _colour_bar(cmap, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` strip of ``cmap`` from 0 (left) to 1 (right), outlined."""
    bar = np.full((height, width, 3), 0.35, np.float32)  # a grey outline: pale ends show
    ramp = np.linspace(0.0, 1.0, width - 2, dtype=np.float32)
    bar[1:-1, 1:-1] = cmap(ramp)[None, :, :3]
    return bar


def montage(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    cmap: str = "jet",
    alpha: float = 0.5,
    tile: int = 160,
    titles: bool = True,
    colorbar: bool = False,
    caption: str | None = None,
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
    colorbar : bool
        Draw a small horizontal colour scale under the overlays: ``low``, the
        colormap from 0 to 1, ``high`` and the colormap's name (nothing when
        ``maps`` is empty).  Off by default.
    caption : str or None
        A line of text under the panels (and the colour bar), such as
        ``"explained: bird (class 2), p = 0.99"``.  The picture widens to hold
        a caption or colour bar wider than the panels.

    Returns
    -------
    numpy.ndarray
        float32 ``(H', W', 3)`` picture, ready for :func:`boda.io.write_image`.
    """
    if tile < 8:
        raise InvalidParameterError(f"tile must be >= 8 pixels, got {tile}")
    if caption is not None and not isinstance(caption, str):
        raise InvalidParameterError(f"caption must be a string or None, got {caption!r}")
    base = as_float_image(image)
    if base.ndim == 2:
        base = np.repeat(base[:, :, None], 3, axis=2)
    colours = _colormap(cmap) if len(maps) else cmap  # no maps: never looked up, as before
    panels = [("image", _upscale(base, tile))]
    for name, m in maps.items():
        panels.append((name, overlay(panels[0][1], m, cmap=colours, alpha=alpha)))
    ph, pw = panels[0][1].shape[:2]
    pad, head, line = 4, (14 if titles else 0), 14
    caption = caption or None
    colorbar = colorbar and len(panels) > 1
    font = ImageFont.load_default() if titles or colorbar or caption else None

    def text_width(text: str) -> int:
        return int(np.ceil(font.getlength(text)))

    # A column is as wide as its panel or its title: the titles of a tall, narrow
    # image's panels would otherwise run into one another.
    widths = [max(pw, text_width(name) if titles else 0) for name, _ in panels]
    starts = [pad + sum(widths[:i]) + i * pad for i in range(len(panels))]
    width = starts[-1] + widths[-1] + pad
    footer_y = pad + head + ph + pad  # the rows under the panels
    height = footer_y
    if colorbar:
        # low [bar] high (name), under the overlays, the bar up to 160 px long
        words = ["low", "high", f"({getattr(colours, 'name', cmap)})"]
        word_w = [text_width(w) for w in words]
        bar_x = starts[1] + word_w[0] + 4
        bar_w = int(np.clip(width - pad - bar_x - word_w[1] - word_w[2] - 8, 48, 160))
        width = max(width, bar_x + bar_w + 4 + word_w[1] + 4 + word_w[2] + pad)
        height += line
    if caption:
        width = max(width, pad + text_width(caption) + pad)
        height += line
    out = np.ones((height, width, 3), np.float32)
    for (_, p), x0, w in zip(panels, starts, widths, strict=True):
        x0 += (w - pw) // 2
        out[pad + head : pad + head + ph, x0 : x0 + pw] = p
    texts: list[tuple[int, int, str]] = []
    if titles:
        texts += [(x0, pad, name) for (name, _), x0 in zip(panels, starts, strict=True)]
    row = footer_y
    if colorbar:
        out[row + 3 : row + 11, bar_x : bar_x + bar_w] = _colour_bar(colours, bar_w, 8)
        texts += [(starts[1], row, words[0]), (bar_x + bar_w + 4, row, words[1]),
                  (bar_x + bar_w + 4 + word_w[1] + 4, row, words[2])]  # fmt: skip
        row += line
    if caption:
        texts.append((pad, row, caption))
    if texts:
        pil = Image.fromarray((out * 255 + 0.5).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        for x, y, text in texts:
            draw.text((x, y), text, fill=(0, 0, 0), font=font)
        out = np.asarray(pil, dtype=np.float32) / 255.0
    return out
