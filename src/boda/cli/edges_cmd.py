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
        import numpy as np

        from boda import edges as E
        from boda import filters
        from boda.errors import InvalidParameterError
        from boda.io import read_image, write_image

        check_image_output(output, image)
        pixels = read_image(image, max_side=max_side)
        stats: dict[str, object] = {"image": str(image), "method": method.value}
        m = method.value
        if m in ("sobel", "prewitt", "scharr"):
            from boda.core.image import to_gray

            magnitude = filters.gradient_magnitude(to_gray(pixels), m)  # type: ignore[arg-type]
            peak = float(magnitude.max())
            picture = magnitude / peak if peak > 0 else magnitude
            stats.update(mean_magnitude=float(magnitude.mean()), max_magnitude=peak)
        elif m == "laplacian":
            from boda.core.image import to_gray

            if neighbours not in (4, 8):
                raise InvalidParameterError(f"--neighbours must be 4 or 8, got {neighbours}")
            response = np.abs(filters.laplacian(to_gray(pixels), neighbours))  # type: ignore[arg-type]
            peak = float(response.max())
            picture = response / peak if peak > 0 else response
            stats.update(mean_abs_laplacian=float(response.mean()))
        elif m == "canny":
            edge_map = E.canny(
                pixels, 1.0 if sigma is None else sigma, low, high, use_quantiles=quantiles
            )
            picture = edge_map.astype(np.float32)
            stats.update(edge_fraction=float(edge_map.mean()), edge_pixels=int(edge_map.sum()))
        elif m == "log":
            edge_map = E.log_edges(pixels, 2.0 if sigma is None else sigma, threshold)
            picture = edge_map.astype(np.float32)
            stats.update(edge_fraction=float(edge_map.mean()), edge_pixels=int(edge_map.sum()))
        elif m == "hog":
            picture = E.hog_image(pixels, orientations, (cell, cell))
            # Brighten so the 99th percentile of the drawn lines is white.
            lines = picture[picture > 0]
            if lines.size:
                picture = np.clip(picture / np.quantile(lines, 0.99), 0, 1)
            stats.update(cells=[pixels.shape[0] // cell, pixels.shape[1] // cell])
        else:
            picture = E.orientation_image(pixels)
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
