"""``boda cutout``: cut the foreground out of a photo with GrabCut."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    check_image_output,
    check_input,
    check_same_size,
    console,
    err_console,
    examples,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
    naming_input,
    options_for,
    overwrite_option,
    print_json,
    progress_bar,
    quiet_option,
    shown,
)
from boda.cli.edit_cmd import Lossless


def _parse_rect(text: str) -> tuple[int, int, int, int]:
    from boda.errors import InvalidParameterError

    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InvalidParameterError(
            f"--rect must be X,Y,W,H (four integers in pixels), got {text!r}; "
            "e.g. --rect 40,30,200,260"
        )
    return values  # type: ignore[return-value]


#: Peak resident memory of ``boda cutout`` per pixel of the photo, plus per pixel of
#: the photo inside --rect (GrabCut's graph covers the box): a box over the whole
#: photo needs 900 bytes a pixel (10.9 GB for a 4000x3000 photo), one over 36 % of it
#: 510 (5.9 GB for 11.6 MP); peak RSS measured, see docs/grabcut.md, Memory.
_BYTES_PER_PIXEL, _BYTES_PER_BOX_PIXEL = 450, 450


def _available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (Linux), else None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _check_memory(pixels: int, box_fraction: float = 1.0) -> None:
    """Refuse a photo GrabCut could not cut out in the free memory (it would be killed);
    ``box_fraction`` is the part of the photo inside --rect (1 without one)."""
    from boda.errors import InvalidParameterError

    available = _available_memory()
    per_pixel = _BYTES_PER_PIXEL + _BYTES_PER_BOX_PIXEL * box_fraction
    need = pixels * per_pixel
    if available is not None and need > 0.8 * available:
        side = int((0.8 * available / per_pixel) ** 0.5)
        raise InvalidParameterError(
            f"GrabCut on {pixels / 1e6:.1f} MP needs about {need / 2**30:.1f} GB, but only "
            f"{available / 2**30:.1f} GB is free; add --max-side {side} (or less)"
        )


def _box_fraction(box: tuple[int, int, int, int] | None, width: int, height: int) -> float:
    """The part of a ``width`` x ``height`` photo inside ``box`` (X, Y, W, H); 1 without one."""
    if box is None or width <= 0 or height <= 0:
        return 1.0
    x, y, w, h = box
    inside_w = max(0, min(x + w, width) - max(x, 0))
    inside_h = max(0, min(y + h, height) - max(y, 0))
    return inside_w * inside_h / (width * height)


def _header_pixels(
    image: Path, max_side: int | None, box: tuple[int, int, int, int] | None
) -> tuple[int, float]:
    """The pixel count GrabCut will get and the part of it inside ``box``, from the
    file's header (0 pixels if unreadable: the decoder then says why)."""
    from boda.errors import ImageReadError
    from boda.io import image_size

    try:
        width, height = image_size(image)
    except ImageReadError:
        return 0, 1.0
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    return round(width * scale) * round(height * scale), _box_fraction(box, width, height)


def _scaled_box(
    corners: tuple[int, int, int, int], size: tuple[int, int], shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """The box with ``corners`` (x0, y0, x1, y1) in a photo of ``size`` (W, H), as
    X, Y, W, H in the pixels of its downscaled copy of ``shape`` (H', W').

    A side that had a margin keeps at least one pixel of it: rounding took a 1 px
    margin away, and GrabCut then refused a box "covering the whole image".
    """
    (x0, y0, x1, y1), (width, height) = corners, size
    h2, w2 = shape[0], shape[1]
    sx, sy = w2 / width, h2 / height

    def side(lo: int, hi: int, full: int, scale: float, n: int) -> tuple[int, int]:
        a, b = round(lo * scale), round(hi * scale)
        if lo > 0 and n > 2:
            a = max(a, 1)
        if hi < full and n > 2:
            b = min(b, n - 1)
        a = min(a, n - 1)
        return a, max(b, a + 1)

    a, b = side(x0, x1, width, sx, w2)
    c, d = side(y0, y1, height, sy, h2)
    return a, c, b - a, d - c


def _with_alpha(decoded, image: Path, max_side: int | None, limit: int | None):
    """The photo for GrabCut: ``decoded.pixels``, or RGBA when the file has transparency.

    :func:`boda.io.open_image` lays transparency over white, and a transparent
    pixel read as white could join a white object and come out opaque.  Over
    white a pixel reads ``a c + (1 - a)``, over black ``a c`` (the *over* operator,
    Porter & Duff 1984), so a second read over black gives ``1 - a`` (their
    difference) and the stored colour ``c``; GrabCut then keeps transparent pixels
    as background and multiplies the alpha into the cut-out (docs/grabcut.md).
    """
    import numpy as np

    from boda.io import open_image

    if not decoded.has_alpha:
        return decoded.pixels
    over_white = decoded.pixels
    over_black = open_image(
        image, max_side=max_side, color="keep", max_pixels=limit, background=0.0
    ).pixels
    gap = over_white - over_black
    alpha = np.clip(1.0 - (gap.mean(axis=-1) if gap.ndim == 3 else gap), 0.0, 1.0)
    a = alpha[..., None] if over_black.ndim == 3 else alpha
    colour = np.where(a > 0, over_black / np.maximum(a, 1e-6), over_white)
    rgb = colour if colour.ndim == 3 else np.repeat(colour[..., None], 3, axis=-1)
    return np.dstack([np.clip(rgb, 0.0, 1.0), alpha]).astype(np.float32)


def register(app: typer.Typer) -> None:
    """Add the ``cutout`` command to ``app``."""

    @app.command(
        "cutout",
        epilog=examples(
            "boda cutout photo.jpg --rect 40,30,200,260 -o cut.png",
            "# marks: black = background, white = foreground",
            "boda cutout photo.jpg --mask trimap.png -o cut.png",
            "# a large photo: work on a copy 1200 px long",
            "boda cutout big.jpg --rect 400,300,2000,2600 --max-side 1200 -o cut.png",
            "# a lossless WebP instead of a PNG",
            "boda cutout photo.jpg --rect 40,30,200,260 -o cut.webp --lossless",
            notes="A format without transparency (.jpg, .bmp, .ppm) gets the cut-out laid "
            "over white, with a note on stderr.  With --max-side, --rect stays in the "
            "original's pixels.  A photo's transparent pixels are background and stay "
            "transparent.  --rect and --mask are in the photo as displayed (after its "
            "EXIF orientation).",
        ),
    )
    @handle_errors
    def cutout(
        image: Annotated[Path, typer.Argument(help="The photo to cut the object out of.")],
        output: Annotated[
            Path,
            typer.Option(
                "--output", "-o",
                help="RGBA PNG to write (WebP, TIFF, AVIF, HEIC too; a JPEG, BMP, PPM is laid "
                "over white).",
            ),
        ],
        rect: Annotated[
            str | None,
            typer.Option(
                "--rect", metavar="X,Y,W,H",
                help="Box around the object: left, top, width, height in pixels.",
            ),
        ] = None,
        mask: Annotated[
            Path | None,
            typer.Option(
                "--mask", metavar="TRIMAP",
                help="Trimap image of the same size: black = surely background, "
                "white = surely foreground, gray = let GrabCut decide.",
            ),
        ] = None,
        iterations: Annotated[
            int, typer.Option(min=1, metavar="N", help="Maximum GrabCut iterations.")
        ] = 5,
        quality: Annotated[
            int,
            typer.Option(
                min=1, max=100, metavar="1-100",
                help="Quality of a lossy output (JPEG, WebP, AVIF, HEIC).",
            ),
        ] = 95,
        lossless: Lossless = False,
        max_side: Annotated[
            int | None,
            typer.Option(
                "--max-side", min=1, metavar="PX",
                help="Work on (and write) a copy downscaled to this longer side; "
                "--rect stays in the original's pixels.",
            ),
        ] = None,
        hard: Annotated[
            bool, typer.Option("--hard", help="Hard-edged alpha instead of the feathered one.")
        ] = False,
        max_pixels: Annotated[str | None, max_pixels_option()] = None,
        overwrite: Annotated[bool, overwrite_option()] = False,
        quiet: Annotated[bool, quiet_option()] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Cut the object inside --rect (or marked by --mask) out of IMAGE (GrabCut).

        Writes an RGBA PNG whose background is transparent, keeping the photo's
        colour profile, EXIF, XMP and DPI.  With --mask, a gray PNG of the photo's size: black
        pixels are background, white ones foreground, gray ones are decided by
        GrabCut (outside --rect, when given too, is background).  GrabCut needs
        up to about 0.9 kB of memory per pixel (11 GB for 12 MP when --rect spans
        the photo, about half that for a small box): use --max-side for large
        photos (a photo that would not fit in the free memory is refused).
        """

        from boda.cli.edit_cmd import check_lossless, turned_map_hint, write_edit
        from boda.errors import InvalidParameterError
        from boda.io import can_write_alpha, open_gray_map, open_image
        from boda.segment import grabcut, trimap_from_marks
        from boda.segment._grabcut import _clip_rect

        if rect is None and mask is None:
            raise InvalidParameterError(
                "give --rect X,Y,W,H around the object, or --mask with a trimap image"
            )
        box = _parse_rect(rect) if rect is not None else None
        check_image_output(output, image, mask, overwrite=overwrite)
        check_lossless(output, lossless)
        check_input(image, "image")
        if mask is not None:
            check_input(mask, "--mask")
        limit = max_pixels_limit(max_pixels)
        _check_memory(*_header_pixels(image, max_side, box))  # before decoding: seconds, GBs
        decoded = open_image(image, max_side=max_side, color="keep", max_pixels=limit)
        width, height = decoded.original_size
        _check_memory(decoded.pixels.shape[0] * decoded.pixels.shape[1],
                      _box_fraction(box, width, height))
        pixels = _with_alpha(decoded, image, max_side, limit)
        if box is not None and pixels.shape[:2] != (height, width):
            # Judged in the original's pixels, the ones the user gave (--max-side).
            with options_for("rect"):
                corners = _clip_rect(box, (height, width))
            box = _scaled_box(corners, (width, height), pixels.shape)
        trimap = None
        if mask is not None:
            with naming_input("--mask"):
                # Transparent pixels would read as white, "surely foreground": refused.
                decoded_marks = open_gray_map(mask, "--mask", max_side, max_pixels=limit)
            marks = decoded_marks.pixels
            # Before --max-side shrinks both: a mask of another size is refused with it too.
            found = decoded_marks.original_size
            advice = turned_map_hint(decoded, found) or "draw the trimap at the image's size"
            check_same_size("--mask", found[::-1], (height, width), advice)
            check_same_size("--mask", marks.shape, pixels.shape, advice)
            trimap = trimap_from_marks(marks)
        with progress_bar("cutting out", enabled=not (as_json or quiet)) as update:
            with options_for("rect", "iterations"):
                result = grabcut(pixels, box, trimap, iterations=iterations, progress=update)
        rgba = result.cutout(feathered=not hard)
        if not can_write_alpha(output):
            err_console.print(
                f"[yellow]note:[/] {shown(output.suffix or output.name)} holds no transparency: "
                "the cut-out is laid over white; write a .png to keep it transparent",
                highlight=False,
            )
        written = write_edit(output, rgba, decoded, quality=quality, lossless=lossless)
        summary = {
            "image": str(image),
            "output": str(written),
            "rect": list(box) if box else None,
            "width": pixels.shape[1],
            "height": pixels.shape[0],
            "foreground_fraction": float(result.mask.mean()),
            "iterations": len(result.energies),
            "converged": result.converged,
            "energies": result.energies,
            "icc_profile": decoded.icc_profile is not None,
        }
        if as_json:
            print_json(summary)
            return
        console.print(
            f"cut out {100 * summary['foreground_fraction']:.1f}% of {shown(image.name)} "
            f"in {summary['iterations']} iterations -> {shown(written)}"
        )
