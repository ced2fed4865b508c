"""``boda edges``: draw an edge map, gradient picture or HOG picture of one image."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    check_image_output,
    console,
    handle_errors,
    print_json,
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

    @app.command("edges")
    @handle_errors
    def edges(
        image: Annotated[Path, typer.Argument(help="The image file to analyse.")],
        output: Annotated[
            Path, typer.Option("--output", "-o", help="Where to write the picture (PNG, JPEG...).")
        ],
        method: Annotated[
            Method, typer.Option("--method", "-m", help="Edge detector or gradient picture.")
        ] = Method.canny,
        sigma: Annotated[
            float | None,
            typer.Option(help="Gaussian scale in pixels (canny: 1.0, log: 2.0 by default)."),
        ] = None,
        low: Annotated[
            float | None, typer.Option(help="canny: low hysteresis threshold (default 0.1).")
        ] = None,
        high: Annotated[
            float | None, typer.Option(help="canny: high hysteresis threshold (default 0.2).")
        ] = None,
        quantiles: Annotated[
            bool,
            typer.Option("--quantiles", help="canny: --low/--high are quantiles of the magnitude."),
        ] = False,
        threshold: Annotated[
            float | None,
            typer.Option(help="log: minimum LoG jump across a zero crossing (default: auto)."),
        ] = None,
        neighbours: Annotated[int, typer.Option(help="laplacian: 4- or 8-neighbour kernel.")] = 4,
        cell: Annotated[int, typer.Option(min=1, help="hog: cell size in pixels.")] = 8,
        orientations: Annotated[int, typer.Option(min=1, help="hog: orientation bins.")] = 9,
        max_side: Annotated[
            int | None, typer.Option("--max-side", help="Downscale so the longer side fits.")
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print summary statistics as JSON.")
        ] = False,
    ) -> None:
        """Draw an edge map of IMAGE into --output (Canny, LoG, Sobel..., HOG, orientation colours).

        Example: [bold]boda edges photo.jpg -o edges.png[/] or
        [bold]boda edges photo.jpg --method log --sigma 3 -o log.png --json[/] or
        [bold]boda edges photo.jpg -m canny --quantiles --low 0.8 --high 0.95 -o c.png[/]
        """
        from boda import edges as E
        from boda.io import read_image, write_image

        check_image_output(output, image)
        pixels = read_image(image, max_side=max_side)
        m = method.value
        drawing = E.draw_edges(
            pixels, m, sigma=sigma, low=low, high=high, quantiles=quantiles,
            threshold=threshold, neighbours=neighbours, cell=cell, orientations=orientations,
        )
        picture = drawing.picture
        stats: dict[str, object] = {"image": str(image), "method": m, **drawing.stats}
        stats["edge_density"] = E.edge_density(pixels)
        stats["shape"] = list(pixels.shape[:2])
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
