"""``boda edges``: draw an edge map, gradient picture or HOG picture of one image."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    check_image_output,
    check_input,
    console,
    examples,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
    options_for,
    overwrite_option,
    print_json,
    progress_bar,
    quiet_option,
    shown,
)


class Method(StrEnum):
    sobel = "sobel"
    prewitt = "prewitt"
    scharr = "scharr"
    laplacian = "laplacian"
    canny = "canny"
    log = "log"
    hog = "hog"
    orientation = "orientation"


def register(app: typer.Typer) -> None:
    """Add the ``edges`` command to ``app``."""

    @app.command(
        "edges",
        epilog=examples(
            "boda edges photo.jpg -o edges.png",
            "boda edges photo.jpg --method log --sigma 3 -o log.png",
            "boda edges photo.jpg -m hog --cell 16 -o hog.png --json",
            notes="--quantiles makes canny's --low/--high quantiles of the gradient "
            "magnitude: --quantiles --low 0.8 --high 0.95 keeps the strongest 20% of edges.",
        ),
    )
    @handle_errors
    def edges(
        image: Annotated[Path, typer.Argument(help="The image file to analyse.")],
        output: Annotated[
            Path,
            typer.Option(
                "--output", "-o",
                help="Where to write the picture (PNG, JPEG...): 8-bit gray, RGB for "
                "orientation, whatever the input's depth.",
            ),
        ],
        method: Annotated[
            Method,
            typer.Option(
                "--method", "-m", metavar="METHOD", case_sensitive=False,
                help="Edge detector or gradient picture: sobel, prewitt, scharr, laplacian, "
                "canny, log, hog or orientation.",
            ),
        ] = Method.canny,
        sigma: Annotated[
            float | None,
            typer.Option(help="Gaussian scale in pixels (canny: 1.0, log: 2.0 by default)."),
        ] = None,
        low: Annotated[
            float | None,
            typer.Option(
                help="canny: low hysteresis threshold (default 0.1; 0.8 with --quantiles)."
            ),
        ] = None,
        high: Annotated[
            float | None,
            typer.Option(
                help="canny: high hysteresis threshold (default 0.2; 0.9 with --quantiles)."
            ),
        ] = None,
        quantiles: Annotated[
            bool,
            typer.Option("--quantiles", help="canny: --low/--high are quantiles of the magnitude."),
        ] = False,
        threshold: Annotated[
            float | None,
            typer.Option(help="log: minimum LoG jump across a zero crossing (default: auto)."),
        ] = None,
        neighbours: Annotated[
            int, typer.Option(metavar="4|8", help="laplacian: 4- or 8-neighbour kernel.")
        ] = 4,
        cell: Annotated[
            int, typer.Option(min=1, metavar="PX", help="hog: cell size in pixels.")
        ] = 8,
        orientations: Annotated[
            int, typer.Option(min=1, metavar="N", help="hog: orientation bins.")
        ] = 9,
        max_side: Annotated[
            int | None,
            typer.Option(
                "--max-side", min=1, metavar="PX",
                help="Downscale so the longer side fits (default: the full size).",
            ),
        ] = None,
        max_pixels: Annotated[str | None, max_pixels_option()] = None,
        overwrite: Annotated[bool, overwrite_option()] = False,
        quiet: Annotated[bool, quiet_option(short=True)] = False,  # -q means nothing else here
        as_json: Annotated[
            bool, typer.Option("--json", help="Print summary statistics as JSON.")
        ] = False,
    ) -> None:
        """Draw an edge map of IMAGE into --output (Canny, LoG, Sobel..., HOG,
        orientation colours)."""
        from boda import edges as E
        from boda.io import read_image, write_image

        check_image_output(output, image, overwrite=overwrite)
        check_input(image, "image")
        limit = max_pixels_limit(max_pixels)
        m = method.value
        # hog and orientation report their progress; the others show a running bar
        with progress_bar(f"{m} edges", enabled=not (as_json or quiet)) as update:
            pixels = read_image(image, max_side=max_side, max_pixels=limit)
            if m != "hog":  # only HOG looks at colour (each pixel's strongest channel)
                from boda.core.image import to_gray

                pixels = to_gray(pixels)  # the luma draw_edges takes; the RGB array is freed
            with options_for(
                "sigma", "low", "high", "threshold", "neighbours", "quantiles", "cell",
                "orientations", low_threshold="--low", high_threshold="--high",
            ):
                drawing = E.draw_edges(
                    pixels, m, sigma=sigma, low=low, high=high, quantiles=quantiles,
                    threshold=threshold, neighbours=neighbours, cell=cell,
                    orientations=orientations, progress=update,
                )
            picture = drawing.picture
            stats: dict[str, object] = {"image": str(image), "method": m, **drawing.stats}
            stats["edge_density"] = E.edge_density(pixels)
            stats["width"], stats["height"] = pixels.shape[1], pixels.shape[0]
            stats["output"] = str(write_image(output, picture))
        if as_json:
            print_json(stats)
            return
        details = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in stats.items()
            if k not in ("image", "output", "method")
        )
        console.print(
            f"[bold]{m}[/] edges of {shown(image.name)} -> {shown(stats['output'])}  ({details})"
        )
