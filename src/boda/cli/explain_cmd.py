"""``boda explain``: what did a classifier look at?"""

from __future__ import annotations

from pathlib import Path

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
    quiet_matplotlib_config,
    shown,
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
            notes='Needs PyTorch: pip install "boda[torch]".',
        ),
    )
    @handle_errors
    def explain_command(
        image: Path = typer.Argument(..., help="Image file to explain."),  # noqa: B008
        model: str = typer.Option(
            "resnet20-cifar10",
            "--model",
            "-m",
            metavar="NAME|FILE",
            help="Built-in model (resnet20-cifar10, resnet56-cifar10, shapes-cnn), a "
            "TorchScript file (with --trust-model-code), or a state dict with --arch.",
        ),
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
        arch: str = typer.Option(
            None, "--arch", metavar="ARCH",
            help="Architecture of a state-dict file (resnet20, resnet32, resnet44, resnet56, "
            "shapes-cnn).",
        ),
        trust_model_code: bool = typer.Option(
            False,
            "--trust-model-code",
            help="Load a TorchScript --model file. Loading one runs code stored in it (it can "
            "read and write your files): use only files whose origin you trust.",
        ),
        layer: str = typer.Option(
            None, "--layer", metavar="NAME",
            help="Target layer name (default: the model's last conv stage).",
        ),
        size: int = typer.Option(
            None, "--size", min=1, metavar="PX",
            help="Resize the image to SIZE x SIZE for a user model (built-in models "
            "take their own size).",
        ),
        normalize: bool = typer.Option(
            True,
            "--normalize/--no-normalize",
            help="Normalise inputs with the model's mean/std (ImageNet's for user models).",
        ),
        output: Path = typer.Option(  # noqa: B008
            None, "--output", "-o", help="Write a montage (image + one overlay per method)."
        ),
        alpha: float = typer.Option(
            0.5, "--alpha", metavar="0-1", help="Heat map opacity in the montage."
        ),
        cmap: str = typer.Option(
            "jet", "--cmap", metavar="NAME", help="Matplotlib colormap of the overlays."
        ),
        threads: int = typer.Option(
            None, "--threads", min=1, metavar="N", help="Torch CPU threads."
        ),
        max_pixels: str = max_pixels_option(annotated=False),
        overwrite: bool = overwrite_option(annotated=False),
        as_json: bool = typer.Option(
            False, "--json", help="Print predictions and map statistics as JSON."
        ),
    ) -> None:
        """Explain a classifier's decision on IMAGE with heat maps and save a montage."""
        _explain(
            image, model, arch, method, target, layer, size, normalize, output, alpha, cmap,
            threads, as_json, trust_model_code=trust_model_code, overwrite=overwrite,
            max_pixels=max_pixels,
        )  # fmt: skip


def _explain(
    image: Path,
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
) -> None:
    from boda.errors import InvalidParameterError
    from boda.explain import explain_image, montage
    from boda.io import read_image, write_image
    from boda.nn import cpu_threads, list_models, load_model

    quiet_matplotlib_config()  # the montage's colour maps come from matplotlib
    # --method a,b --method c: every method named, in order, each once.
    methods = list(dict.fromkeys(m.strip() for text in method for m in text.split(",")))
    methods = [m for m in methods if m]
    if not 0.0 <= alpha <= 1.0:  # checked with or without -o: a typo is said at once
        raise InvalidParameterError(f"--alpha must be between 0 and 1, got {alpha}")
    if output is not None:
        check_image_output(output, image, overwrite=overwrite)
    check_input(image, "image")
    built_in = model in list_models()
    if not built_in and not Path(model).exists():
        raise InvalidParameterError(
            f"--model {model!r}: no such file, and not a built-in model "
            f"({', '.join(list_models())})"
        )
    if built_in and arch is not None:
        raise InvalidParameterError(
            f"--arch is for state-dict files; {model} is a built-in model (drop --arch)"
        )
    img = read_image(image, max_pixels=max_pixels_limit(max_pixels))
    with cpu_threads(threads), options_for("target", "layer", "size", "arch"):
        lm = (
            load_model(model)
            if built_in
            else load_model(model, arch=arch, trust_code=trust_model_code)
        )
        res = explain_image(
            img,
            lm,
            methods,
            target=target,
            layer=layer,
            size=(size, size) if size else None,
            normalize_input=normalize,
        )
    if output is not None:
        write_image(output, montage(res.image, res.maps, cmap=cmap, alpha=alpha))
    if as_json:
        print_json(
            {
                "image": str(image),
                "model": res.model,
                "layer": res.layer,
                "target": res.target,
                "target_name": res.target_name,
                "predictions": res.top,
                "maps": res.stats,
                "output": None if output is None else str(output),
            }
        )
        return
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
    if output is not None:
        console.print(f"montage written to {shown(output)}")
