"""``boda explain``: what did a classifier look at?"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import typer

from boda.cli._common import (
    check_image_output,
    check_input,
    console,
    err_console,
    examples,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
    options_for,
    overwrite_option,
    print_json,
    progress_bar,
    quiet_matplotlib_config,
    quiet_option,
    shown,
)
from boda.cli._torch_options import (
    arch_option,
    layer_option,
    model_option,
    normalize_option,
    size_option,
    threads_option,
    trust_model_code_option,
)


def register(app: typer.Typer) -> None:
    """Add the ``explain`` command to ``app``."""

    @app.command(
        "explain",
        epilog=examples(
            "boda explain photo.jpg --model resnet20-cifar10 --method gradcam,scorecam "
            "--target 3 -o out.png",
            "boda explain photo.jpg --model weights.pt --arch resnet20 --layer layer3 "
            "--size 32 --json",
            "# a folder: one montage each, which map to trust",
            "boda explain photos/ --method gradcam,saliency "
            "--metrics -o montages/",
            "boda explain photo.jpg photos/ --metrics --json",
            notes='Needs PyTorch: pip install "boda[torch]".  With several images or a '
            "folder (walked recursively), -o names a folder that receives one montage per "
            "image, --json prints a list (with --metrics: {\"images\": [...], \"summary\": "
            "{...}}), and an image that cannot be read or explained is listed and skipped: "
            "the command then exits 3.",
        ),
    )
    @handle_errors
    def explain_command(
        image: list[Path] = typer.Argument(  # noqa: B008
            ...,
            metavar="IMAGE_OR_DIR",
            help="Image files, or folders walked recursively for images (hidden folders "
            "such as .boda skipped).",
        ),
        model: str = model_option(),
        method: list[str] = typer.Option(  # noqa: B008
            ["gradcam"],
            "--method",
            metavar="NAME[,NAME...]",
            help="Methods (repeatable or comma-separated; all are shown): cam, gradcam, "
            "gradcam++, scorecam, saliency, smoothgrad, guided, guided-gradcam, occlusion.",
        ),
        target: int = typer.Option(
            None, "--target", "-t", metavar="CLASS",
            help="Class index to explain (default: the predicted class).",
        ),
        arch: str = arch_option(),
        trust_model_code: bool = trust_model_code_option(),
        layer: str = layer_option("Target layer name (default: the model's last conv stage)."),
        size: int = size_option(
            "Resize the image to SIZE x SIZE for a user model (built-in models take their "
            "own size)."
        ),
        normalize: bool = normalize_option(),
        output: Path = typer.Option(  # noqa: B008
            None,
            "--output",
            "-o",
            help="Write a montage (image + one overlay per method); with several images or a "
            "folder, a folder of montages, one per image.",
        ),
        alpha: float = typer.Option(
            0.5, "--alpha", metavar="0-1", help="Heat map opacity in the montage."
        ),
        cmap: str = typer.Option(
            "jet", "--cmap", metavar="NAME", help="Matplotlib colormap of the overlays."
        ),
        threads: int = threads_option(),
        max_pixels: str = max_pixels_option(annotated=False),
        overwrite: bool = overwrite_option(annotated=False),
        as_json: bool = typer.Option(
            False, "--json", help="Print predictions and map statistics as JSON."
        ),
        metrics: bool = typer.Option(
            False,
            "--metrics",
            help="Score each map's faithfulness: deletion and insertion AUC (Petsiuk et al. "
            "2018), Average Drop and Increase in Confidence (Chattopadhay et al. 2018); "
            "with several images, a table of their means per method.",
        ),
        quiet: bool = quiet_option(short=True, annotated=False),
    ) -> None:
        """Explain a classifier's decision on images with heat maps and save montages."""
        _explain(
            image, model, arch, method, target, layer, size, normalize, output, alpha, cmap,
            threads, as_json, trust_model_code=trust_model_code, overwrite=overwrite,
            max_pixels=max_pixels, metrics=metrics, quiet=quiet,
        )  # fmt: skip


def _explain(
    image: list[Path],
    model: str,
    arch: str | None,
    method: list[str],
    target: int | None,
    layer: str | None,
    size: int | None,
    normalize: bool,
    output: Path | None,
    alpha: float,
    cmap: str,
    threads: int | None,
    as_json: bool,
    *,
    trust_model_code: bool = False,
    overwrite: bool = False,
    max_pixels: str | None = None,
    metrics: bool = False,
    quiet: bool = False,
) -> None:
    from boda.errors import InvalidParameterError

    quiet_matplotlib_config()  # the montage's colour maps come from matplotlib
    # --method a,b --method c: every method named, in order, each once.
    methods = list(dict.fromkeys(m.strip() for text in method for m in text.split(",")))
    methods = [m for m in methods if m]
    if not 0.0 <= alpha <= 1.0:  # checked with or without -o: a typo is said at once
        raise InvalidParameterError(f"--alpha must be between 0 and 1, got {alpha}")
    settings = _Settings(
        model, arch, trust_model_code, methods, target, layer, size, normalize, threads,
        metrics,
    )  # fmt: skip
    if len(image) == 1 and not image[0].is_dir():
        _explain_single(image[0], settings, output, alpha, cmap, as_json, overwrite, max_pixels)
    else:
        _explain_many(image, settings, output, alpha, cmap, as_json, overwrite, max_pixels, quiet)


@dataclasses.dataclass
class _Settings:
    """What every image is explained with: the model options and the methods."""

    model: str
    arch: str | None
    trust_model_code: bool
    methods: list[str]
    target: int | None
    layer: str | None
    size: int | None
    normalize: bool
    threads: int | None
    metrics: bool

    def check_model(self) -> None:
        """Before any work: ``--model`` names a built-in model or a file, and ``--arch``
        goes with a file."""
        from boda.cli._torch_options import check_cli_model

        check_cli_model(self.model, self.arch)

    def load(self):
        from boda.cli._torch_options import load_cli_model

        return load_cli_model(self.model, self.arch, self.trust_model_code)

    def explain(self, img, lm):
        """``(result, metrics or None)`` for one image (inside :meth:`running`)."""
        from boda.cli._explain_batch import explain_one

        return explain_one(
            img, lm, self.methods, target=self.target, layer=self.layer, size=self.size,
            normalize=self.normalize, metrics=self.metrics,
        )  # fmt: skip

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The context of the work: torch's threads, and the library's parameter names
        said as the command's options in its messages."""
        from boda.nn import cpu_threads

        with cpu_threads(self.threads), options_for("target", "layer", "size", "arch"):
            yield


def _explain_single(
    image: Path,
    settings: _Settings,
    output: Path | None,
    alpha: float,
    cmap: str,
    as_json: bool,
    overwrite: bool,
    max_pixels: str | None,
) -> None:
    from boda.explain import montage
    from boda.io import read_image, write_image

    if output is not None:
        check_image_output(output, image, overwrite=overwrite)
    check_input(image, "image")
    settings.check_model()
    img = read_image(image, max_pixels=max_pixels_limit(max_pixels))
    with settings.running():
        lm = settings.load()
        res, scores = settings.explain(img, lm)
    if output is not None:
        write_image(output, montage(res.image, res.maps, cmap=cmap, alpha=alpha))
    if as_json:
        print_json(_record(image, res, scores, output))
        return
    _print_explanation(image, res, scores, output, single=True)
    if scores:
        from boda.cli._explain_batch import METRICS_LEGEND

        console.print(f"({METRICS_LEGEND})", highlight=False)


def _record(image: Path | str, res, scores, output: Path | None) -> dict:
    """The JSON object of one explained image (``metrics`` only with --metrics)."""
    record = {
        "image": str(image),
        "model": res.model,
        "layer": res.layer,
        "target": res.target,
        "target_name": res.target_name,
        "predictions": res.top,
        "maps": res.stats,
        "output": None if output is None else str(output),
    }
    if scores is not None:
        record["metrics"] = scores
    return record


def _print_explanation(image, res, scores, output: Path | None, *, single: bool) -> None:
    from boda.cli._explain_batch import metrics_line

    best = res.top[0]
    console.print(
        f"{shown(image)}: predicted [bold]{best['name']}[/] ({best['probability']:.1%}); "
        f"explained class {res.target} ({res.target_name}) with {', '.join(res.maps)}"
        + (f" at layer {res.layer}" if res.layer else "")
    )
    for name, st in res.stats.items():
        console.print(
            f"  {name:15s} peak at (x={st['peak_xy'][0]}, y={st['peak_xy'][1]}), "
            f"mean {st['mean']:.3f}, area > 0.5: {st['area_above_half']:.1%}"
        )
        if scores is not None:
            console.print(f"  {'':15s} {metrics_line(scores[name], single=single)}")
    if output is not None:
        console.print(f"montage written to {shown(output)}")


def _explain_many(
    inputs: list[Path],
    settings: _Settings,
    output: Path | None,
    alpha: float,
    cmap: str,
    as_json: bool,
    overwrite: bool,
    max_pixels: str | None,
    quiet: bool,
) -> None:
    """Several files and folders: the model loaded once, every image explained with
    the same settings, a failure recorded and the batch carried on (exit 3)."""
    from boda.cli import _explain_batch as batch
    from boda.cli.scan_cmd import EXIT_FILES_FAILED
    from boda.errors import BodaError, InvalidParameterError, OutputError
    from boda.explain import montage
    from boda.io import read_image, write_image

    for source in inputs:  # a missing input is a usage error, found before any work
        if not source.is_dir():
            check_input(source, "image")
    items, raw_files = batch.collect(inputs)
    if not items:
        raise InvalidParameterError(
            f"no image files under {', '.join(repr(str(p)) for p in inputs)}; boda reads "
            "JPEG, PNG, TIFF, WebP, HEIC and more (hidden folders are skipped)"
        )
    if output is not None:
        batch.assign_outputs(items, output)
        batch.check_outputs(items, output, overwrite=overwrite)
    settings.check_model()
    limit = max_pixels_limit(max_pixels)
    records: list[dict] = []
    scores: list[dict] = []
    failed = 0
    with settings.running(), progress_bar(
        "explaining", enabled=not (quiet or as_json)
    ) as progress:
        lm = settings.load()
        progress(0, len(items))
        for done, item in enumerate(items, 1):
            error = item.error
            if error is None:
                try:
                    img = read_image(item.path, max_pixels=limit)
                    res, values = settings.explain(img, lm)
                    if item.output is not None:
                        write_image(
                            item.output, montage(res.image, res.maps, cmap=cmap, alpha=alpha)
                        )
                except (InvalidParameterError, OutputError):
                    raise  # the command line or the output folder: the same for every image
                except BodaError as exc:
                    error = str(exc)
            if error is not None:
                failed += 1
                records.append({"image": item.path, "error": error})
                if not as_json:
                    console.print(
                        f"[red]failed[/] {shown(item.path)}: {shown(error)}", highlight=False
                    )
            else:
                records.append(_record(item.path, res, values, item.output))
                if values is not None:
                    scores.append(values)
                if not as_json:
                    _print_explanation(item.path, res, values, item.output, single=False)
            progress(done, len(items))
    means = batch.summary(scores)
    if as_json:
        if settings.metrics:
            print_json({
                "images": records,
                "summary": {"explained": len(records) - failed, "failed": failed,
                            "metrics": means},
            })  # fmt: skip
        else:
            print_json(records)
    else:
        if means:
            console.print(batch.metrics_table(means, len(scores)))
            console.print(f"({batch.TABLE_LEGEND})", highlight=False)
        where = f"; montages in {shown(output)}" if output is not None else ""
        console.print(f"{len(records) - failed} of {len(records)} images explained{where}")
    if raw_files:
        from boda.scan._walk import describe_raw_files

        err_console.print(
            f"[yellow]not explained[/]: {shown(describe_raw_files(raw_files))}", highlight=False
        )
    if failed:
        err_console.print(
            f"[bold red]error:[/] {failed} of {len(records)} images could not be read or "
            "explained" + (" (listed with their error)" if as_json else " (marked failed)"),
            highlight=False,
        )
        raise typer.Exit(EXIT_FILES_FAILED)
