"""``boda color``: convert and compare colours, draw chromaticity diagrams, measure images."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    check_input,
    check_output,
    console,
    err_console,
    examples,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
    overwrite_option,
    print_json,
    progress_bar,
    quiet_matplotlib_config,
    quiet_option,
    read_twice,
    refuse_overwriting_inputs,
    refuse_same_outputs,
    shown,
)

_Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
_ILLUMINANT_HELP = "White point of Lab/LCh: D65, D50, A, E, C, D55, D75, ..., x,y or X,Y,Z."
_Illuminant = Annotated[str, typer.Option(metavar="NAME|x,y|X,Y,Z", help=_ILLUMINANT_HELP)]
#: Negative components (Lab's a*, b*) are values, not options: ``50 -20 30``.
_VALUES_SETTINGS = {"ignore_unknown_options": True}


def _parse_numbers(tokens: list[str], what: str) -> list[float]:
    from boda.errors import InvalidParameterError

    out: list[float] = []
    for token in tokens:
        for part in token.replace(",", " ").split():
            if part.startswith("#"):
                out.extend(_hex(part, what))
                continue
            try:
                out.append(float(part))
            except ValueError:
                if part.startswith("-"):
                    raise InvalidParameterError(
                        f"no such option: {part} (the values are numbers; see --help)"
                    ) from None
                raise InvalidParameterError(
                    f"{what}: {part!r} is not a number (write e.g. 0.2 0.4 0.6, 0.2,0.4,0.6 "
                    "or #3366cc)"
                ) from None
            if not math.isfinite(out[-1]):  # float() reads nan, inf and 1e400 (inf)
                raise InvalidParameterError(
                    f"{what}: {part!r} is not a finite number; give the colour's components"
                )
    return out


def _hex(text: str, what: str) -> list[float]:
    from boda.errors import InvalidParameterError

    digits = text.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    try:
        if len(digits) != 6:
            raise ValueError
        return [int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4)]
    except ValueError:
        raise InvalidParameterError(f"{what}: {text!r} is not a hex colour like #3366cc") from None


def _two_colours(tokens: list[str]) -> tuple[str, str]:
    """The texts of ``color diff``'s two colours: two arguments (``50,2.7,-79.8``,
    ``#3366cc``), or six numbers in any grouping (``50 2.7 -79.8 50 0 -82.7``, the
    way ``color convert`` takes components), split three and three."""
    from boda.errors import InvalidParameterError

    if len(tokens) == 2:
        return tokens[0], tokens[1]
    numbers = _parse_numbers(tokens, "colours")
    if len(numbers) != 6:
        raise InvalidParameterError(
            "give two colours: COLOR1 COLOR2 such as 50,2.7,-79.8 50,0,-82.7 or two #hex, "
            f"or six numbers L1 a1 b1 L2 a2 b2; got {len(numbers)} number(s) in "
            f"{len(tokens)} argument(s)"
        )
    first, second = (",".join(repr(v) for v in part) for part in (numbers[:3], numbers[3:]))
    return first, second


def _triples(values: list[float], what: str):
    import numpy as np

    from boda.errors import InvalidParameterError

    if not values or len(values) % 3:
        raise InvalidParameterError(
            f"{what}: expected groups of three numbers, got {len(values)} value(s)"
        )
    return np.asarray(values, dtype=np.float64).reshape(-1, 3)


def _read_colour_file(path: Path) -> tuple[list[float], list[str]]:
    """Three numbers (or one #hex) per line; a first line without any number is a header.

    Each line is checked on its own, so a short or long row is an error naming
    its line, never numbers joined across lines.  Returns the numbers and the
    data lines they came from (for :func:`_check_components`).
    """
    from boda.errors import InvalidParameterError

    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: Excel's CSVs start with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"cannot read colour file {str(path)!r}: {exc}") from None
    values: list[float] = []
    rows: list[str] = []
    first = True
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or _is_comment(line):
            continue
        fields = line.replace(";", ",").replace("\t", ",")
        header = not line.startswith("#") and not any(
            _is_number(f) for f in fields.replace(",", " ").split()
        )
        if first and header:
            first = False
            continue  # a CSV header such as "r,g,b"
        first = False
        row = _parse_numbers([fields], f"{path.name} line {number}")
        if len(row) != 3:
            raise InvalidParameterError(
                f"{path.name} line {number}: expected three numbers or one #hex colour, "
                f"got {len(row)} value(s) in {line!r}"
            )
        values.extend(row)
        rows.append(line)
    if not values:
        raise InvalidParameterError(
            f"{path.name}: no colour found; write one per line: three numbers or a #hex"
        )
    return values, rows


def _is_comment(line: str) -> bool:
    """A '#' line whose first word is not '#' and hex digits ("# note", "#palette").
    A word of hex digits is a colour even if malformed (#ff000080, #12345): it is
    refused, not skipped."""
    word = line.replace(",", " ").replace(";", " ").split()[0]
    return word.startswith("#") and not (
        len(word) > 1 and all(c in "0123456789abcdefABCDEF" for c in word[1:])
    )


def _is_number(field: str) -> bool:
    try:
        float(field)
        return True
    except ValueError:
        return _looks_hex(field)


def _looks_hex(line: str) -> bool:
    d = line.split(",")[0].strip().lstrip("#")
    return len(d) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in d)


def _check_components(tokens: list[str], values: list[float], space: str, option: str) -> None:
    """Refuse the two commonest mistakes: a #hex colour given for a space other
    than sRGB, and sRGB written as 0-255 integers."""
    from boda.errors import InvalidParameterError

    space = space.lower()
    if space not in ("srgb", "rgb") and any("#" in t for t in tokens):
        raise InvalidParameterError(
            f"a #hex colour is sRGB, but {option} is {space!r}; add {option} srgb"
        )
    if (
        space in ("srgb", "rgb", "linear")
        and values
        and max(values) > 1.5
        and all(float(v).is_integer() and 0 <= v <= 255 for v in values)
    ):
        raise InvalidParameterError(
            f"{space} components are 0-1 values, these look like 0-255 ones "
            f"({', '.join(f'{v:g}' for v in values[:3])}); divide by 255 or write #hex"
        )


def _note_percent_scale(colours, space: str) -> None:
    """Say so when XYZ / xyY looks like the 0-100 scale: boda's white has Y = 1
    (as colour-science's), and Y = 100 converts without error into nonsense."""
    luminance = {"xyz": 1, "xyy": 2}.get(space.lower())
    if luminance is None or len(colours) == 0:
        return
    largest = float(max(c[luminance] for c in colours))
    if largest > 1.5:
        err_console.print(
            f"note: {space} here has white at Y = 1; Y up to {largest:g} looks like the "
            "0-100 scale: divide by 100 unless these are brighter than white",
            highlight=False,
        )


def _refuse_overflow(colours, result, what: str) -> None:
    """Refuse finite components whose conversion is not finite (``1e308 0 0`` in sRGB
    overflows the gamma curve): printed as nan, or null in JSON, with exit status 0
    and numpy's RuntimeWarning lines on stderr."""
    import numpy as np

    from boda.errors import InvalidParameterError

    bad = ~np.isfinite(np.asarray(result, dtype=np.float64)).all(axis=-1)
    if bad.any():
        colour = " ".join(f"{v:g}" for v in np.asarray(colours)[np.argmax(bad)])
        raise InvalidParameterError(
            f"converting {what}: the colour {colour} overflows (no finite result); give "
            "the components of a real colour (sRGB 0-1, Lab L* 0-100...)"
        )


def _illuminant(text: str):
    """A named white point, ``x,y`` chromaticity coordinates or an ``X,Y,Z`` white
    (what :func:`boda.color.whitepoint` takes); the library judges the numbers."""
    from boda.errors import InvalidParameterError

    if "," not in text:
        return text
    try:
        numbers = tuple(float(v) for v in text.split(","))
    except ValueError:
        numbers = ()
    if len(numbers) not in (2, 3):  # was read as a name: "unknown illuminant '0.3,x'"
        raise InvalidParameterError(
            f"--illuminant {text!r}: give a name (D65, D50, A, ...), x,y chromaticity "
            "coordinates (0.3127,0.329) or an X,Y,Z white (0.95047,1,1.08883)"
        )
    return numbers


def register(app: typer.Typer) -> None:
    """Add the ``color`` command group to the app."""
    color_app = typer.Typer(
        help="Colour science: convert, compare, chromaticity diagrams, image colour measures.",
        epilog=examples(
            "boda color convert --from srgb --to lab 0.2 0.4 0.6",
            "boda color diff '#ff0000' '#fe0000' --from srgb",
            "boda color chromaticity photo.jpg -o diagram.png",
            "boda color measure photo.jpg --json",
            notes="Run 'boda color COMMAND --help' for each command's options.",
        ),
        no_args_is_help=True,
    )
    app.add_typer(color_app, name="color")

    @color_app.command(
        "convert",
        context_settings=_VALUES_SETTINGS,
        epilog=examples(
            "boda color convert --from srgb --to lab 0.2 0.4 0.6",
            "boda color convert --from srgb --to lch '#3366cc' --json",
            "boda color convert --from lab --to srgb 50 -20 30",
            "boda color convert --from srgb --to xyy --file colours.csv",
            notes="Spaces: srgb, linear, xyz, xyy, lab, lch, hsv, hsl, cie_rgb.  A colour file "
            "has three numbers (or a #hex) per line, separated by commas or spaces.",
        ),
    )
    @handle_errors
    def convert_command(
        values: Annotated[
            list[str] | None,
            typer.Argument(metavar="VALUES", help="Colour components, three per colour."),
        ] = None,
        from_space: Annotated[
            str, typer.Option("--from", metavar="SPACE", help="Input space.")
        ] = "srgb",
        to_space: Annotated[
            str, typer.Option("--to", metavar="SPACE", help="Output space.")
        ] = "lab",
        file: Annotated[
            Path | None,
            typer.Option("--file", "-f", metavar="FILE", help="Text/CSV file of colours."),
        ] = None,
        illuminant: _Illuminant = "D65",
        clip: Annotated[bool, typer.Option(help="Clip sRGB/linear output to [0, 1].")] = False,
        precision: Annotated[
            int, typer.Option(min=0, max=15, metavar="N", help="Decimals shown.")
        ] = 4,
        json_out: _Json = False,
    ) -> None:
        """Convert colours between colour spaces."""
        import numpy as np

        from boda.color import convert
        from boda.errors import InvalidParameterError

        if not values and file is None:
            raise InvalidParameterError(
                "give colour components (e.g. 0.2 0.4 0.6, or '#3366cc') or --file FILE"
            )
        numbers = _parse_numbers(values or [], "values")
        tokens = list(values or [])
        if file is not None:
            from_file, rows = _read_colour_file(file)
            numbers += from_file
            tokens += rows
        _check_components(tokens, numbers, from_space, "--from")
        colours = _triples(numbers, "values")
        _note_percent_scale(colours, from_space)
        with np.errstate(all="ignore"):  # overflow is refused below, in one line
            result = convert(colours, from_space, to_space, illuminant=_illuminant(illuminant))
        _refuse_overflow(colours, result, f"{from_space} to {to_space}")
        if clip and to_space.lower() in ("srgb", "rgb", "linear"):
            result = np.clip(result, 0.0, 1.0)
        if json_out:
            print_json(
                {
                    "from": from_space,
                    "to": to_space,
                    "illuminant": illuminant,
                    "values": colours,
                    "converted": result,
                }
            )
            return
        for src, dst in zip(colours, result, strict=True):
            a = " ".join(f"{v:.{precision}f}" for v in src)
            b = " ".join(f"{v:.{precision}f}" for v in dst)
            console.print(f"{from_space} {a}  ->  {to_space} {b}", highlight=False)

    @color_app.command(
        "diff",
        context_settings=_VALUES_SETTINGS,
        epilog=examples(
            "boda color diff 50,2.6772,-79.7751 50,0,-82.7485 --method ciede2000",
            "boda color diff 50 2.6772 -79.7751 50 0 -82.7485",
            "boda color diff '#ff0000' '#fe0000' --from srgb --method cie1976 --json",
            notes="Methods: cie1976 (ΔE*ab), cie1994 (ΔE94, graphic arts), ciede2000 (ΔE00).",
        ),
    )
    @handle_errors
    def diff_command(
        colors: Annotated[
            list[str],
            typer.Argument(
                metavar="COLOR1 COLOR2",
                help="Two colours, each three numbers (50,2.7,-79.8) or a #hex; or six "
                "numbers L1 a1 b1 L2 a2 b2.",
            ),
        ],
        method: Annotated[
            str, typer.Option(metavar="METHOD", help="cie1976, cie1994 or ciede2000.")
        ] = "ciede2000",
        from_space: Annotated[
            str,
            typer.Option(
                "--from", metavar="SPACE", help="Space of the two colours (converted to Lab)."
            ),
        ] = "lab",
        illuminant: _Illuminant = "D65",
        json_out: _Json = False,
    ) -> None:
        """Colour difference ΔE between two colours."""
        import numpy as np

        from boda.color import convert, delta_e
        from boda.color._difference import method_name
        from boda.errors import InvalidParameterError

        method = method_name(method)  # "94" is said as cie1994, the method used
        given, labs = [], []
        color1, color2 = _two_colours(colors)
        for name, text in (("COLOR1", color1), ("COLOR2", color2)):
            numbers = _parse_numbers([text], name)
            _check_components([text], numbers, from_space, "--from")
            if len(numbers) != 3:  # the numbers past the first three were dropped
                raise InvalidParameterError(
                    f"{name}: one colour is three numbers (or one #hex), got {len(numbers)} "
                    f"in {text!r}"
                )
            colour = _triples(numbers, name)[0]
            given.append(colour)
            with np.errstate(all="ignore"):  # overflow is refused below, in one line
                lab = convert(colour, from_space, "lab", illuminant=_illuminant(illuminant))
            _refuse_overflow(colour[None], lab[None], f"{name} from {from_space} to lab")
            labs.append(lab)
        lab1, lab2 = labs
        with np.errstate(all="ignore"):
            value = float(delta_e(lab1, lab2, method=method))
        if not math.isfinite(value):  # Lab values near the float limit: squares overflow
            raise InvalidParameterError(
                f"the difference of {color1!r} and {color2!r} overflows (no finite ΔE); give "
                "the components of real colours (Lab L* 0-100, a* and b* about -128 to 127)"
            )
        if json_out:
            print_json(
                {
                    "method": method,
                    "from": from_space,
                    "illuminant": illuminant,
                    "color1": given[0],
                    "color2": given[1],
                    "lab1": lab1,
                    "lab2": lab2,
                    "delta_e": value,
                }
            )
            return
        console.print(f"ΔE ({method}) = {value:.4f}", highlight=False)

    @color_app.command(
        "chromaticity",
        epilog=examples(
            "boda color chromaticity photo.jpg -o diagram.png",
            "boda color chromaticity photo.jpg -o diagram.svg --no-planckian "
            "--hue-hist hue.png --json",
        ),
    )
    @handle_errors
    def chromaticity_command(
        image: Annotated[Path, typer.Argument(help="Image whose pixel chromaticities to plot.")],
        output: Annotated[
            Path, typer.Option("--output", "-o", help="Diagram file to write (.png or .svg).")
        ],
        planckian: Annotated[bool, typer.Option(help="Draw the Planckian locus.")] = True,
        hue_hist: Annotated[
            Path | None,
            typer.Option(
                "--hue-hist", metavar="FILE",
                help="Also write a hue-saturation histogram here (.png or .svg).",
            ),
        ] = None,
        max_side: Annotated[
            int, typer.Option(min=16, metavar="PX", help="Downscale the image to this side first.")
        ] = 1024,
        max_pixels: Annotated[str | None, max_pixels_option()] = None,
        overwrite: Annotated[bool, overwrite_option()] = False,
        json_out: _Json = False,
    ) -> None:
        """Draw the CIE 1931 xy diagram with an image's pixels overlaid as a density."""
        from boda.color import (
            check_figure_path,
            pixel_chromaticities,
            plot_chromaticity_diagram,
            plot_hue_saturation_histogram,
            save_figure,
        )
        from boda.io import read_image

        # Every output is checked before anything is written.
        refuse_same_outputs(**{"--output": output, "--hue-hist": hue_hist})
        for option, path in (("--output", output), ("--hue-hist", hue_hist)):
            if path is not None:
                refuse_overwriting_inputs(path, image)
                check_output(check_figure_path(path), overwrite=overwrite, option=option)
        check_input(image, "image")
        limit = max_pixels_limit(max_pixels)
        quiet_matplotlib_config()
        pixels = read_image(image, max_side=max_side, max_pixels=limit)
        fig = plot_chromaticity_diagram(pixels, planckian=planckian, title=image.name)
        with warnings.catch_warnings():  # the title (a Korean name, say) lacks glyphs:
            # two lines on stderr per missing character, and nothing the user can do
            warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
            save_figure(fig, output)
            written = [str(output)]
            if hue_hist is not None:
                save_figure(plot_hue_saturation_histogram(pixels, title=image.name), hue_hist)
                written.append(str(hue_hist))
        xy = pixel_chromaticities(pixels)
        info = {
            "image": str(image),
            "output": str(output),
            "hue_hist": None if hue_hist is None else str(hue_hist),
            "pixels_plotted": int(len(xy)),
            "mean_xy": xy.mean(axis=0) if len(xy) else None,
        }
        if json_out:
            print_json(info)
            return
        console.print(
            f"wrote {shown(', '.join(written))} ({len(xy)} pixels plotted)", highlight=False
        )

    @color_app.command(
        "measure",
        epilog=(
            "Examples:\n\n"
            "  boda color measure photo.jpg\n\n"
            "  boda color measure scan.jpg -k 3 --json"
        ),
    )
    @handle_errors
    def measure_command(
        image: Annotated[Path, typer.Argument(help="Image to measure.")],
        k: Annotated[
            int, typer.Option("-k", min=1, max=64, metavar="N", help="Dominant colours.")
        ] = 5,
        max_pixels: Annotated[str | None, max_pixels_option()] = None,
        quiet: Annotated[bool, quiet_option(short=True)] = False,
        json_out: _Json = False,
    ) -> None:
        """Colourfulness, L* statistics, dominant colours and the grayscale check."""
        from boda.color import color_summary, colorfulness_label
        from boda.io import read_image

        check_input(image, "image")
        limit = max_pixels_limit(max_pixels)
        # one pass over the whole photo (k-means included): a running bar, no steps
        bar = progress_bar("measuring colour", enabled=not (json_out or quiet))
        with bar, read_twice(image) as source:  # decoded at two sizes
            summary = color_summary(read_image(source, max_pixels=limit), k=k)
            # The grayscale verdict as `boda scan` flags it (decoded at 640 px with box
            # averaging, then measured on its 200 px thumbnail): at full size, chroma
            # noise of a gray photo (2 levels) scored 4.9 here and 1.6 in the scan, "not
            # grayscale" against the scan's grayscale flag for one file.
            from boda.color import GRAYSCALE_CHROMA_THRESHOLD
            from boda.quality import ANALYSIS_MAX_SIDE
            from boda.scan import analyze_pixels

            scanned = read_image(
                source, max_side=ANALYSIS_MAX_SIDE, resample="box", max_pixels=limit
            )
            score = analyze_pixels(scanned)[0]["grayscale"]
        gray = bool(score < GRAYSCALE_CHROMA_THRESHOLD)
        m, mean_l, std_l = summary.colorfulness, summary.mean_lightness, summary.std_lightness
        palette = summary.dominant_colors
        info = {
            "image": str(image),
            "colorfulness": m,
            "colorfulness_label": colorfulness_label(m),
            "lightness_mean": mean_l,
            "lightness_std": std_l,
            "grayscale": gray,
            "grayscale_score": score,
            "dominant_colors": [
                {"rgb": list(rgb), "hex": _to_hex(rgb), "fraction": f} for rgb, f in palette
            ],
        }
        if json_out:
            print_json(info)
            return
        console.print(f"colourfulness  {m:.1f} ({colorfulness_label(m)})", highlight=False)
        console.print(f"L* mean / std  {mean_l:.1f} / {std_l:.1f}", highlight=False)
        console.print(f"grayscale      {gray} (chroma score {score:.2f})", highlight=False)
        for entry in info["dominant_colors"]:
            hx = entry["hex"]
            console.print(f"  [on {hx}]      [/] {hx}  {entry['fraction']:.1%}", highlight=False)


def _to_hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)
