"""``boda quality``: every quality measure of one image, with the verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import console, handle_errors, print_json, shown


def register(app: typer.Typer) -> None:
    """Add the ``quality`` command to ``app``."""

    @app.command("quality")
    @handle_errors
    def quality(
        image: Annotated[Path, typer.Argument(help="The image file to measure.")],
        reference: Annotated[
            Path | None,
            typer.Option(
                "--reference", "-r", help="A reference image: also report MSE, PSNR and SSIM."
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
    ) -> None:
        """Measure blur, exposure and information content of IMAGE.

        Example: [bold]boda quality photo.jpg[/] or
        [bold]boda quality edited.png --reference original.png --json[/]
        """
        from boda.io import read_image
        from boda.quality import ANALYSIS_MAX_SIDE, analyze, mse, psnr, sharpness, ssim

        pixels = read_image(image, max_side=ANALYSIS_MAX_SIDE)
        report = analyze(pixels)
        extra = sharpness(pixels, all_measures=True).measures
        scores = {**extra, **report.scores}
        rules = report.thresholds.describe()
        ref_scores: dict[str, float] = {}
        if reference is not None:
            full = read_image(image)
            ref = read_image(reference)
            ref_scores = {"mse": mse(full, ref), "psnr": psnr(full, ref), "ssim": ssim(full, ref)}
        if as_json:
            print_json(
                {
                    "image": str(image),
                    "flags": report.flags,
                    "scores": scores,
                    "thresholds": rules,
                    "reference": ref_scores or None,
                }
            )
            return
        from rich.table import Table

        table = Table(title=f"quality of {shown(image.name)}")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_column("verdict / rule")
        for name, rule in rules.items():
            verdict = "[bold red]yes[/]" if report.flags[name] else "no"
            table.add_row(f"[bold]{name}[/]", f"{scores[name]:.4g}", f"{verdict}  ({rule})")
        for name, value in scores.items():
            if name not in rules:
                table.add_row(name, f"{value:.4g}", "")
        for name, value in ref_scores.items():
            table.add_row(f"{name} (vs reference)", f"{value:.4g}", "")
        console.print(table)
