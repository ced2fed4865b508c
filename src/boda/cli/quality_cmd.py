"""``boda quality``: every quality measure of one image, with the verdicts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    check_input,
    check_same_size,
    console,
    examples,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
    naming_input,
    print_json,
    progress_bar,
    quiet_option,
    read_twice,
    shown,
)


def register(app: typer.Typer) -> None:
    """Add the ``quality`` command to ``app``."""

    @app.command(
        "quality",
        epilog=examples(
            "boda quality photo.jpg",
            "boda quality edited.png --reference original.png --json",
            notes="The flags are those boda scan sets with its default thresholds (the "
            "image decoded as the scan decodes it, at 640 px).  In --json a score that "
            "cannot be measured is null, and so is the PSNR of identical images (infinite).",
        ),
    )
    @handle_errors
    def quality(
        image: Annotated[Path, typer.Argument(help="The image file to measure.")],
        reference: Annotated[
            Path | None,
            typer.Option(
                "--reference", "-r", metavar="REF",
                help="A reference image of the same size: also report MSE, PSNR and SSIM "
                "(at full size).",
            ),
        ] = None,
        max_pixels: Annotated[str | None, max_pixels_option()] = None,
        quiet: Annotated[bool, quiet_option(short=True)] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
    ) -> None:
        """Measure blur, exposure and information content of IMAGE."""
        check_input(image, "image")
        if reference is not None:
            check_input(reference, "--reference")
        limit = max_pixels_limit(max_pixels)
        with read_twice(image) as source:  # decoded at two sizes with --reference
            flags, scores, rules, ref_scores = _measure(
                source, reference, limit, progress=not (as_json or quiet)
            )
        if as_json:
            print_json(
                {
                    "image": str(image),
                    "flags": flags,
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
            verdict = "[bold red]yes[/]" if flags[name] else "no"
            if not math.isfinite(scores[name]):  # too small or flat to measure: no verdict
                verdict = "not measured"
            table.add_row(f"[bold]{name}[/]", f"{scores[name]:.4g}", f"{verdict}  ({rule})")
        for name, value in scores.items():
            if name not in rules:
                table.add_row(name, f"{value:.4g}", "")
        for name, value in ref_scores.items():
            table.add_row(f"{name} (vs reference)", f"{value:.4g}", "")
        console.print(table)


def _measure(
    image: Path, reference: Path | None, limit: int | None, *, progress: bool
) -> tuple[dict[str, bool], dict[str, float], dict[str, str], dict[str, float]]:
    """The flags, scores and rules of ``image``, and its scores against ``reference``."""
    from boda.io import read_image
    from boda.quality import ANALYSIS_MAX_SIDE, analyze, compare, mse, psnr, sharpness
    from boda.scan._flags import _tiny_pixels

    # Decoded as `boda scan` decodes (draft, then box/area averaging): the blur
    # threshold is calibrated on that path, and one file gets one verdict.
    pixels = read_image(image, max_side=ANALYSIS_MAX_SIDE, resample="box", max_pixels=limit)
    report = analyze(pixels)
    extra = sharpness(pixels, all_measures=True).measures
    scores = {**extra, **report.scores}
    rules = report.thresholds.describe()
    flags = dict(report.flags)
    # The scan also flags low_information on an image of at most 2**t pixels, whose
    # entropy can never exceed the threshold t (a 2x2 image of four levels has exactly
    # 2 bits): the same rule here, or the two gave such a file two verdicts.
    tiny = _tiny_pixels(report.thresholds.low_information)
    rules["low_information"] += f", or at most {tiny:g} pixels"
    if pixels.shape[0] * pixels.shape[1] <= tiny:  # never resized: under 640 px a side
        flags["low_information"] = True
    ref_scores: dict[str, float] = {}
    if reference is None:
        return flags, scores, rules, ref_scores
    # full-resolution work: a bar by steps (reading both, MSE/PSNR, SSIM)
    with progress_bar("comparing with the reference", enabled=progress) as update:
        full = read_image(image, max_pixels=limit)
        with naming_input("--reference"):
            ref = read_image(reference, max_pixels=limit)
        update(1, 3)
        check_same_size("--reference", ref.shape, full.shape, "give a reference of the same size")
        if min(full.shape[:2]) < 11:  # under SSIM's window: not measured, as blur
            ref_scores = {"mse": mse(full, ref), "psnr": psnr(full, ref), "ssim": math.nan}
        else:  # one squared-error pass for MSE and PSNR, then SSIM
            ref_scores = compare(full, ref, progress=lambda done, _: update(1 + done, 3))
    return flags, scores, rules, ref_scores
