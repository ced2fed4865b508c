"""``boda refocus`` and ``boda inpaint``: edits that write a new file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    check_image_output,
    check_input,
    check_same_size,
    console,
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
    warnings_as_notes,
)


def _pair(text: str | None, option: str, cast: type) -> tuple | None:
    from boda.errors import InvalidParameterError

    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return cast(parts[0]), cast(parts[1])
    except ValueError:
        example = "120,80" if cast is int else "0.2,0.4"
        kind = "whole numbers (pixels)" if cast is int else "numbers"
        raise InvalidParameterError(
            f"{option} expects two comma-separated {kind} (e.g. {example}), got {text!r}"
        ) from None


def _read_depth(path: Path, limit: int | None):
    """:func:`boda.edit.read_depth` of ``path``, an image under the command's pixel
    ``limit`` (``--max-pixels``) as the photo is, and the top level of its stored
    integers (255, 65535; None for ``.npy`` and float maps, which keep their units)."""
    from boda.edit import read_depth
    from boda.io import open_gray_map

    if path.suffix.lower() == ".npy":
        return read_depth(path), None
    decoded = open_gray_map(path, "--depth", max_pixels=limit, keep_float_values=True)
    levels = {8: 255, 16: 65535}.get(decoded.bit_depth)
    return decoded.pixels, levels


#: The options of ``boda inpaint`` each method reads (a registered learned method
#: is not listed and is left to the library).
_INPAINT_READS = {
    "telea": ("--radius",), "telea-opencv": ("--radius",), "ns": ("--radius",),
    "exemplar": ("--patch-size", "--search-radius"), "biharmonic": (),
}
#: ``boda refocus --method threshold`` blends one blur: no circle of confusion, no
#: highlight boost.
_REFOCUS_READS = {"lens": ("--coc-model", "--highlight-gain"), "threshold": ()}


def _refuse_unread_options(method: str, reads: dict, changed: dict[str, bool]) -> None:
    """An option changed from its default that ``method`` does not read would be
    dropped in silence (the library refuses it; ``boda edges`` does too): say so."""
    from boda.errors import InvalidParameterError

    if method not in reads:
        return  # an unknown method gets the library's own message
    unread = [name for name, given in changed.items() if given and name not in reads[method]]
    if unread:
        read = reads[method]
        takes = f"reads only {', '.join(read)}" if read else "takes no such option"
        raise InvalidParameterError(
            f"{', '.join(unread)} {'does' if len(unread) == 1 else 'do'} not apply to "
            f"--method {method}, which {takes}; leave "
            f"{'it' if len(unread) == 1 else 'them'} out or choose another method"
        )


def _check_focus_levels(levels: int | None, focus_depth, focus_range) -> None:
    """A focus given in the file's stored levels (--focus-depth 128 for an 8-bit PNG)
    lies beyond every depth of the 0-1 map it is read as: the whole photo was blurred."""
    import math

    from boda.errors import InvalidParameterError

    given = [focus_depth] if focus_depth is not None else list(focus_range or ())
    option = "--focus-depth" if focus_depth is not None else "--focus-range"
    if not all(math.isfinite(v) for v in given):
        # NaN and inf were read as "stored levels" ("... give nan").
        raise InvalidParameterError(
            f"{option} must be finite depth values, got {','.join(f'{v:g}' for v in given)}"
        )
    if levels is None or all(0.0 <= v <= 1.0 for v in given):
        return
    raise InvalidParameterError(
        f"{option} {','.join(f'{v:g}' for v in given)} looks like the depth file's stored "
        f"levels, but it is read as level / {levels} (0 to 1): give "
        f"{','.join(f'{v / levels:.4g}' for v in given)}"
    )


def turned_map_hint(photo, found_wh: tuple[int, int]) -> str | None:
    """What to say of a ``--mask`` / ``--depth`` of ``found_wh`` (width, height) that has
    the shape of ``photo`` (a :class:`boda.io.DecodedImage`) as stored, before its EXIF
    orientation turned it upright; None for any other map.

    A phone photo stored sideways is edited as displayed, so a map made from its
    stored pixels (numpy on an unrotated read) is sideways too: resizing it would
    stretch it, and "resize it" sent the user the wrong way.
    """
    import math

    tags = photo.exif_tags
    orientation = tags.get(0x0112) if tags is not None else None
    w, h = photo.original_size
    fw, fh = found_wh
    if orientation not in (5, 6, 7, 8) or w == h or min(fw, fh) < 1:
        return None
    aspect = math.log(fw / fh)
    # Within 5 % of the stored shape and not of the upright one (a network's depth
    # map may round its sides a little); a nearly square photo is never flagged.
    if abs(aspect - math.log(h / w)) > 0.05 or abs(aspect - math.log(w / h)) <= 0.05:
        return None
    return (
        f"it is shaped like the photo as stored, before its EXIF orientation ({orientation}) "
        f"turns it upright to {w}x{h}, which is how boda edits it: turn the map the same "
        "way, or make it from the upright photo"
    )


def check_lossless(output: Path, lossless: bool) -> None:
    """Before any work: ``--lossless`` is refused for an output format that cannot be
    lossless (JPEG, AVIF, HEIC, GIF), as :func:`boda.io.write_image` would refuse it."""
    from boda._io_write import _check_lossless, _image_format

    _check_lossless(output, _image_format(output), lossless)


def write_edit(output: Path, pixels, photo, *, quality: int, lossless: bool) -> Path:
    """Write the edited ``pixels`` of ``photo`` (the :class:`boda.io.DecodedImage`
    they came from) to ``output`` with what the photo carried besides its pixels: its
    colour profile, EXIF, XMP and print resolution (for the pixels' size: a cut-out
    shrunk by --max-side prints at the original's size).  16 bits per channel when
    the photo had more than 8 (a 16-bit PNG or TIFF) and ``output`` can hold them
    (PNG, TIFF), so an edit keeps its precision; else 8.  Metadata the format cannot
    hold is said in a note."""
    from boda.io import MetadataDroppedWarning, can_write_16_bit, write_image

    with warnings_as_notes(MetadataDroppedWarning):
        return write_image(
            output, pixels, quality=quality, icc_profile=photo.icc_profile, exif=photo.exif,
            xmp=photo.xmp, dpi=photo.dpi_at(pixels.shape[1], pixels.shape[0]),
            bit_depth=16 if photo.bit_depth > 8 and can_write_16_bit(output) else None,
            lossless=lossless,
        )


_Output = Annotated[Path, typer.Option("--output", "-o", help="File to write (a new file).")]
_Quality = Annotated[
    int,
    typer.Option(
        "--quality", "-q", min=1, max=100, metavar="1-100",
        help="Quality of a lossy output (JPEG, WebP, AVIF, HEIC).",
    ),
]
#: ``--lossless`` of the commands that write an edited photo (cutout's too).
Lossless = Annotated[
    bool, typer.Option("--lossless", help="Keep every pixel: a lossless WebP (PNG and TIFF "
                       "always are; refused for JPEG, AVIF, HEIC, GIF).")
]
_Overwrite = Annotated[bool, overwrite_option()]
_MaxPixels = Annotated[str | None, max_pixels_option()]
_Quiet = Annotated[bool, quiet_option()]  # -q is --quality here
_Json = Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")]
_DEPTH_HELP = "Depth map: 8/16-bit PNG, TIFF or .npy, the image's size."
_FOCUS_HELP = "Depth value to focus on (the map's units: 0-1 for PNG/TIFF)."
_RANGE_HELP = "DMIN,DMAX: every depth in between is sharp."
_APERTURE_HELP = "Blur strength in pixels (bigger = shallower depth of field)."
_NEAR_HELP = "dark: small values are near (depth map); bright: large are near (disparity)."
_RESIZE_HELP = "Resize a depth map of another size to the image (bilinear)."
_METHOD_HELP = "telea, telea-opencv, ns (OpenCV Navier-Stokes), biharmonic or exemplar."
_SEARCH_HELP = "Look for patches this many pixels around (exemplar); 0 = whole image."
_RADIUS_HELP = "Neighbourhood radius in pixels (telea, telea-opencv, ns)."


def register(app: typer.Typer) -> None:
    """Add ``refocus`` and ``inpaint`` to the app."""

    @app.command(
        "refocus",
        epilog=examples(
            "boda refocus photo.jpg --depth depth.png --focus-at 420,310 --aperture 8 -o out.jpg",
            "boda refocus photo.jpg --depth midas.png --near bright --focus-depth 0.7 -o out.jpg",
            "boda refocus photo.jpg --depth d.npy --focus-range 1.5,2.5 --coc-model thin_lens "
            "--kernel hexagon -o out.png",
            notes="The output keeps the input's ICC colour profile, EXIF, XMP and DPI; "
            "transparent inputs are composited over white; the output is 16-bit when the "
            "photo is (a 16-bit PNG or TIFF) and the output is a PNG or TIFF, else 8-bit.",
        ),
    )
    @handle_errors
    def refocus_command(
        image: Annotated[Path, typer.Argument(help="Photo to refocus.")],
        depth: Annotated[Path, typer.Option("--depth", "-d", help=_DEPTH_HELP)],
        output: _Output,
        focus_depth: Annotated[float | None, typer.Option(metavar="D", help=_FOCUS_HELP)] = None,
        focus_at: Annotated[
            str | None, typer.Option(metavar="X,Y", help="Pixel X,Y to focus on.")
        ] = None,
        focus_range: Annotated[
            str | None, typer.Option(metavar="DMIN,DMAX", help=_RANGE_HELP)
        ] = None,
        aperture: Annotated[
            float, typer.Option("--aperture", "-a", metavar="PX", help=_APERTURE_HELP)
        ] = 8.0,
        method: Annotated[
            str, typer.Option(metavar="lens|threshold", help="lens or threshold.")
        ] = "lens",
        near: Annotated[str, typer.Option(metavar="dark|bright", help=_NEAR_HELP)] = "dark",
        coc_model: Annotated[
            str, typer.Option(metavar="MODEL", help="lens: disparity or thin_lens.")
        ] = "disparity",
        kernel: Annotated[
            str, typer.Option(metavar="disk|hexagon", help="Bokeh shape: disk or hexagon.")
        ] = "disk",
        highlight_gain: Annotated[
            float, typer.Option(metavar="GAIN", help="lens: highlight boost (0 = off).")
        ] = 2.0,
        resize_depth: Annotated[bool, typer.Option("--resize-depth", help=_RESIZE_HELP)] = False,
        quality: _Quality = 95,
        lossless: Lossless = False,
        max_pixels: _MaxPixels = None,
        overwrite: _Overwrite = False,
        quiet: _Quiet = False,
        as_json: _Json = False,
    ) -> None:
        """Refocus a photo from its depth map (synthetic depth of field)."""
        from boda.edit import refocus, resolve_focus
        from boda.edit import resize_depth as resize
        from boda.errors import InvalidParameterError
        from boda.io import open_image

        _refuse_unread_options(method, _REFOCUS_READS, {
            "--coc-model": coc_model != "disparity", "--highlight-gain": highlight_gain != 2.0,
        })
        if sum(v is not None for v in (focus_depth, focus_at, focus_range)) != 1:
            raise InvalidParameterError(
                "give exactly one of --focus-depth D, --focus-at X,Y or --focus-range DMIN,DMAX"
            )
        at = _pair(focus_at, "--focus-at", int)
        rng = _pair(focus_range, "--focus-range", float)
        check_image_output(output, image, depth, overwrite=overwrite)
        check_lossless(output, lossless)
        check_input(image, "image")
        check_input(depth, "--depth")
        limit = max_pixels_limit(max_pixels)
        # lens: a bar over the depth layers; threshold (one blur): a running bar
        with progress_bar("refocusing", enabled=not (as_json or quiet)) as update:
            decoded = open_image(image, color="keep", max_pixels=limit)  # a P3 photo stays P3
            with naming_input("--depth"):
                depth_map, levels = _read_depth(depth, limit)
            _check_focus_levels(levels, focus_depth, rng)
            turned = turned_map_hint(decoded, depth_map.shape[::-1])
            if resize_depth and turned is None:  # a sideways map is refused, not stretched
                depth_map = resize(depth_map, decoded.pixels.shape[:2])
            check_same_size(
                "--depth", depth_map.shape, decoded.pixels.shape,
                turned or "add --resize-depth to resize it (bilinear), or give the map of "
                "this photo",
            )
            with options_for(
                "focus_depth", "focus_at", "focus_range", "aperture", "near", "highlight_gain",
                "method", "kernel",
            ):
                result = refocus(
                    decoded.pixels, depth_map, focus_depth=focus_depth, focus_at=at,
                    focus_range=rng, aperture=aperture, method=method, near=near,
                    coc_model=coc_model, kernel=kernel, highlight_gain=highlight_gain,
                    progress=update,
                )
        write_edit(output, result, decoded, quality=quality, lossless=lossless)
        lo, hi = resolve_focus(depth_map, focus_depth=focus_depth, focus_at=at, focus_range=rng)
        if as_json:
            print_json({
                "image": str(image), "output": str(output), "method": method,
                "focus_range": [round(lo, 6), round(hi, 6)], "aperture": aperture, "kernel": kernel,
                "icc_profile": decoded.icc_profile is not None,
            })
        else:
            console.print(
                f"wrote {shown(output)} (focus {lo:g}..{hi:g}, aperture {aperture:g})"
            )

    @app.command(
        "inpaint",
        epilog=examples(
            "boda inpaint photo.png --mask hole.png --method telea -o filled.png",
            "boda inpaint photo.jpg --mask hole.png --method biharmonic -o out.jpg -q 90",
            "boda inpaint wall.png --mask graffiti.png --method exemplar -o clean.png",
            "# a WebP that changes no pixel outside the hole",
            "boda inpaint photo.png --mask hole.png -o filled.webp --lossless",
            notes="Mask: white (255) = fill, black = keep; same size as the image.  The output "
            "keeps the input's ICC colour profile, EXIF, XMP and DPI; transparent inputs are "
            "composited over white; the output is 16-bit when the photo is (a 16-bit PNG or "
            "TIFF) and the output is a PNG or TIFF, else 8-bit.",
        ),
    )
    @handle_errors
    def inpaint_command(
        image: Annotated[Path, typer.Argument(help="Photo with something to remove.")],
        mask: Annotated[
            Path, typer.Option("--mask", "-m", metavar="MASK", help="Mask image: white = fill.")
        ],
        output: _Output,
        method: Annotated[str, typer.Option(metavar="METHOD", help=_METHOD_HELP)] = "telea",
        radius: Annotated[
            float, typer.Option("--radius", "-r", metavar="PX", help=_RADIUS_HELP)
        ] = 5.0,
        patch_size: Annotated[
            int, typer.Option(metavar="PX", help="Patch side, odd (exemplar).")
        ] = 9,
        search_radius: Annotated[int, typer.Option(metavar="PX", help=_SEARCH_HELP)] = 48,
        quality: _Quality = 95,
        lossless: Lossless = False,
        max_pixels: _MaxPixels = None,
        overwrite: _Overwrite = False,
        quiet: _Quiet = False,
        as_json: _Json = False,
    ) -> None:
        """Fill a masked region of a photo from its surroundings."""
        from boda.edit import inpaint, to_hole_mask
        from boda.errors import InvalidParameterError
        from boda.io import open_gray_map, open_image

        _refuse_unread_options(method, _INPAINT_READS, {
            "--radius": radius != 5.0, "--patch-size": patch_size != 9,
            "--search-radius": search_radius != 48,
        })
        check_image_output(output, image, mask, overwrite=overwrite)
        check_lossless(output, lossless)
        check_input(image, "image")
        check_input(mask, "--mask")
        limit = max_pixels_limit(max_pixels)
        decoded = open_image(image, color="keep", max_pixels=limit)  # a P3 photo stays P3
        with naming_input("--mask"):
            marks = open_gray_map(mask, "--mask", max_pixels=limit).pixels
        check_same_size(
            "--mask", marks.shape, decoded.pixels.shape,
            turned_map_hint(decoded, marks.shape[::-1])
            or "resize the mask to the image size (nearest-neighbour, so it stays binary)",
        )
        brightest = float(marks.max())
        if 0 < brightest < 0.5:  # a 0/1 mask saved as 8 bits, a mask drawn in dark gray
            raise InvalidParameterError(
                f"--mask {str(mask)!r} has no pixel of at least half brightness (its "
                f"brightest is {brightest * 255:.3g} of 255), so it marks nothing to fill; "
                "draw the pixels to fill in white (255), e.g. save a 0/1 mask times 255"
            )
        holes = to_hole_mask(marks, decoded.pixels.shape[:2], name="--mask")
        options: dict = {}
        if method in ("telea", "telea-opencv", "ns"):
            options = {"radius": radius}
        elif method == "exemplar":
            options = {"patch_size": patch_size, "search_radius": search_radius or None}
        with progress_bar("inpainting", enabled=not (as_json or quiet)) as update:
            if method == "exemplar":  # patch by patch: minutes for a big hole in a big photo
                options["progress"] = update
            with options_for("method", "radius", "patch_size", "search_radius"):
                result = inpaint(decoded.pixels, holes, method=method, **options)
        write_edit(output, result, decoded, quality=quality, lossless=lossless)
        if as_json:
            print_json({
                "image": str(image), "output": str(output), "method": method,
                "hole_fraction": float(holes.mean()),
                "icc_profile": decoded.icc_profile is not None,
            })
        else:
            filled = f"{holes.mean():.1%} of the pixels filled, {method}"
            console.print(f"wrote {shown(output)} ({filled})")
