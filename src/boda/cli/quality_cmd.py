"""``boda quality``: every quality measure of one image, with the verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    check_input,
    console,
    examples,
    handle_errors,
    naming_input,
    print_json,
    progress_bar,
    shown,
)


def register(app: typer.Typer) -> None:
    """Add the ``quality`` command to ``app``."""

    @app.command(
        "quality",
        epilog=examples(
            "boda quality photo.jpg",
            "boda quality edited.png --reference original.png --json",
        ),
    )
    @handle_errors
    def quality(
        image: Annotated[Path, typer.Argument(help="The image file to measure.")],
        reference: Annotated[
            Path | None,
            typer.Option(
                "--reference", "-r", metavar="REF",
                help="A reference image: also report MSE, PSNR and SSIM.",
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
    ) -> None:
        """Measure blur, exposure and information content of IMAGE."""
        from boda.io import read_image
        from boda.quality import ANALYSIS_MAX_SIDE, analyze, mse, psnr, sharpness, ssim

        check_input(image, "image")
        if reference is not None:
            check_input(reference, "--reference")
        pixels = read_image(image, max_side=ANALYSIS_MAX_SIDE)
        report = analyze(pixels)
        extra = sharpness(pixels, all_measures=True).measures
        scores = {**extra, **report.scores}
        rules = report.thresholds.describe()
        ref_scores: dict[str, float] = {}
        if reference is not None:
            # full-resolution work: a bar by steps (reading both, MSE/PSNR, SSIM)
            with progress_bar("comparing with the reference", enabled=not as_json) as update:
                full = read_image(image)
                with naming_input("--reference"):
                    ref = read_image(reference)
                update(1, 3)
                ref_scores = {"mse": mse(full, ref), "psnr": psnr(full, ref)}
                update(2, 3)
                ref_scores["ssim"] = ssim(full, ref)
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
