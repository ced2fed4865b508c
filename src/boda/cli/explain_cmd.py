"""``boda explain``: what did a classifier look at?"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from boda.cli._common import (
    check_image_output,
    check_input,
    class_text,
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
            "# a labelled dataset (val/cat/*.png, val/dog/*.png...): where was it wrong?",
            "boda explain val/ --model shapes-cnn --labels-from-folders -o explained/",
            "boda explain val/ --model shapes-cnn --target label --method gradcam",
            notes='Needs PyTorch: pip install "boda[torch]".  With several images or a '
            "folder (walked recursively), -o names a folder that receives one montage per "
            "image, --json prints a list (with --metrics: {\"images\": [...], \"summary\": "
            "{...}}; so with --labels-from-folders), -o writes an index.html there to look "
            "through them (filters: misclassified, right, failed), and an image that cannot "
            "be read or explained is listed and skipped: the command then exits 3.",
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
        target: str = typer.Option(
            None, "--target", "-t", metavar="CLASS",
            help="Class to explain: an index, a class name (cat), or label: the class of "
            "the image's folder (implies --labels-from-folders). Default: the predicted "
            "class.",
        ),
        labels_from_folders: bool = typer.Option(
            False, "--labels-from-folders",
            help="The folder directly under each folder given names the class of its "
            "images (torchvision's ImageFolder layout: val/cat/1.png is a cat): say for "
            "each image whether the model was right, and print the accuracy and the most "
            "frequent confusions.",
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
            labels_from_folders=labels_from_folders,
        )  # fmt: skip


def _explain(
    image: list[Path],
    model: str,
    arch: str | None,
    method: list[str],
    target: str | int | None,
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
    labels_from_folders: bool = False,
) -> None:
    from boda.errors import InvalidParameterError

    quiet_matplotlib_config()  # the montage's colour maps come from matplotlib
    # --method a,b --method c: every method named, in order, each once (names match
    # in any case: gradcam,GradCAM is one method, explained once).
    first: dict[str, str] = {}
    for name in (m.strip() for text in method for m in text.split(",")):
        if name:
            first.setdefault(name.lower(), name)
    methods = list(first.values())
    if not 0.0 <= alpha <= 1.0:  # checked with or without -o: a typo is said at once
        raise InvalidParameterError(f"--alpha must be between 0 and 1, got {alpha}")
    import matplotlib

    if cmap not in matplotlib.colormaps:  # so is --cmap: not after the first image's work
        raise InvalidParameterError(
            f"--cmap {cmap!r} is not a matplotlib colormap; give a name such as 'jet', "
            "'viridis' or 'inferno'"
        )
    target = None if target is None else str(target).strip()
    settings = _Settings(
        model, arch, trust_model_code, methods, target, layer, size, normalize, threads,
        metrics, labels=labels_from_folders or (target or "").lower() == "label",
    )  # fmt: skip
    if len(image) == 1 and not image[0].is_dir():
        _explain_single(image[0], settings, output, alpha, cmap, as_json, overwrite, max_pixels)
    else:
        _explain_many(image, settings, output, alpha, cmap, as_json, overwrite, max_pixels, quiet)


#: Above this many pixels a user model fed at each image's own size is told of.
_OWN_SIZE_NOTE_PIXELS = 1 << 20


@dataclasses.dataclass
class _Settings:
    """What every image is explained with: the model options and the methods."""

    model: str
    arch: str | None
    trust_model_code: bool
    methods: list[str]
    target: str | None  # as given: an index, a class name, "label" or None (predicted)
    layer: str | None
    size: int | None
    normalize: bool
    threads: int | None
    metrics: bool
    labels: bool = False  # the class of each image from its folder
    target_index: int | None = None  # ``target`` resolved by :meth:`load`
    layer_checked: bool = False  # ``--layer`` probed by :meth:`check_layer`
    size_noted: bool = False  # the note of :meth:`note_own_size` said (once a run)
    outputs: int | None = None  # the model's outputs, probed by :meth:`model_outputs`

    @property
    def by_label(self) -> bool:
        return (self.target or "").lower() == "label"

    def check_model(self) -> None:
        """Before any work: ``--model`` names a built-in model or a file, ``--arch`` and
        ``--trust-model-code`` go with the file they load, ``--layer`` is not empty,
        and ``--method`` names methods (with a layer method when ``--layer`` is given).
        The library says the last two only when it explains an image: in a folder, after
        the images that could not be read, or never when none could (exit 3, not 2)."""
        from boda.cli._torch_options import check_cli_model, check_layer_name
        from boda.errors import InvalidParameterError
        from boda.explain._api import LAYER_FREE_METHODS, METHODS

        choose = f"choose from {', '.join(sorted(METHODS))}"
        if not self.methods:
            raise InvalidParameterError(f"--method: no method given; {choose}")
        for name in self.methods:
            if name.lower() not in METHODS:
                raise InvalidParameterError(f"--method: unknown method {name!r}; {choose}")
        if self.layer is not None and {m.lower() for m in self.methods} <= LAYER_FREE_METHODS:
            raise InvalidParameterError(
                f"--layer was given, but {', '.join(self.methods)} read no layer; drop it, or "
                f"add a layer method ({', '.join(sorted(set(METHODS) - LAYER_FREE_METHODS))})"
            )
        check_cli_model(self.model, self.arch, self.trust_model_code)
        check_layer_name(self.layer)

    def load(self):
        """The model, with ``--target`` checked against its classes."""
        from boda.cli._torch_options import class_index, load_cli_model

        lm = load_cli_model(self.model, self.arch, self.trust_model_code)
        if self.target is not None and not self.by_label:
            self.target_index = class_index(self.target, lm)
        self.check_layer(lm)
        return lm

    def check_layer(self, lm, image_size: tuple[int, int] | None = None) -> None:
        """Before any image: layer methods or guided backpropagation on a TorchScript
        model, or a ``--layer`` that gives no map of more than one pixel (``linear``, a
        global pooling), are said once, not as the failure of every image of a folder
        (or a flat map taken for one).
        A user model without ``--size`` takes each image's size: its ``--layer`` is
        checked on the first image (``image_size``)."""
        import torch

        from boda.cli._torch_options import ModelFeed, probe_layer
        from boda.errors import InvalidParameterError, ModelError
        from boda.explain._api import LAYER_FREE_METHODS, METHODS
        from boda.nn import input_spec

        layer_methods = [m for m in self.methods
                         if m.lower() in METHODS and m.lower() not in LAYER_FREE_METHODS]
        if isinstance(lm.model, torch.jit.ScriptModule):
            fix = ("TorchScript models do not allow; load the state dict with its architecture "
                   "instead (--model FILE --arch ARCH), or use saliency, smoothgrad or occlusion")
            if layer_methods:
                raise ModelError(
                    f"a layer method ({', '.join(layer_methods)}) hooks a layer, which {fix}"
                )
            if any(m.lower() == "guided" for m in self.methods):
                raise ModelError(f"guided backpropagation reroutes the model's ReLUs, which {fix}")
        if not layer_methods:
            return  # no layer to check (unknown methods and a lone --layer: check_model)
        given = None if self.size is None else (self.size, self.size)
        fixed = given or lm.input_size  # None: each image's own size
        size = fixed or image_size
        if self.layer is None or size is None or (given and lm.input_size
                                                  and tuple(lm.input_size) != given):
            return  # no --layer, no size yet, or a --size the library refuses
        self.layer_checked = True
        feed = ModelFeed(tuple(size), None, None, input_spec(lm.model)[0] or 3)
        name, shape = probe_layer(lm.model, self.layer, feed)
        # 1x1 at the model's own size: always; at one image's size, that image may be tiny.
        if len(shape) != 4 or (fixed and shape[2] * shape[3] == 1):
            kind = "1x1 maps" if len(shape) == 4 else "no (B, C, H, W) maps"
            raise InvalidParameterError(
                f"--layer {name} gives {tuple(shape)} outputs, {kind}: a heat map needs a "
                "layer that keeps the image's layout; choose an earlier (convolutional) layer"
            )

    def label(self, lm, folder: str | None, img=None) -> int | None:
        """The class ``folder`` names for ``lm`` (None: no labels asked, or no match).

        For a model without class names a folder names a class by its index, one of
        the model's outputs (counted on ``img``, once): ``12/`` is no class of a
        10-output model, as it is none of a named one (it was labelled class 12,
        and ``--target label`` stopped the run: "--target 12 is out of range")."""
        from boda.cli._explain_batch import folder_class

        index = folder_class(folder, lm.classes) if self.labels else None
        if index is not None and lm.classes is None:
            outputs = self.model_outputs(lm, img)
            if outputs is not None and index >= outputs:
                return None
        return index

    def model_outputs(self, lm, img) -> int | None:
        """How many outputs (classes) the model gives, from one forward of ``img`` as
        it is fed for the explanation; None before any image (or if it fails: the
        explanation then says why)."""
        if self.outputs is None and img is not None:
            import torch

            from boda.errors import BodaError
            from boda.explain._api import _model_input
            from boda.explain._base import model_logits

            size = (self.size, self.size) if self.size else lm.input_size or img.shape[:2]
            try:
                with torch.inference_mode():
                    x = _model_input(img, lm, size, self.normalize)
                    self.outputs = int(model_logits(lm.model(x)).reshape(1, -1).shape[1])
            except (BodaError, RuntimeError):
                return None
        return self.outputs

    def explain(self, img, lm, label: int | None = None):
        """``(result, metrics or None)`` for one image (inside :meth:`running`);
        ``label``: its class from its folder, explained with ``--target label``
        (the predicted class when it has none)."""
        from boda.cli._explain_batch import explain_one

        if not self.layer_checked:
            self.check_layer(lm, img.shape[:2])
        self.note_own_size(lm, img.shape[:2])
        target = label if self.by_label else self.target_index
        return explain_one(
            img, lm, self.methods, target=target, layer=self.layer, size=self.size,
            normalize=self.normalize, metrics=self.metrics,
        )  # fmt: skip

    def note_own_size(self, lm, shape: tuple[int, int]) -> None:
        """A user model without ``--size`` takes each image at its own size: said on
        stderr, once, for an image over a megapixel, where that costs minutes and
        gigabytes (a 12 MP photo through ResNet-20: 4.4 GB, two minutes for Grad-CAM)
        and a network trained on small inputs sees nothing it knows."""
        if self.size is not None or lm.input_size is not None or self.size_noted:
            return
        height, width = shape
        if height * width <= _OWN_SIZE_NOTE_PIXELS:
            return
        self.size_noted = True
        err_console.print(
            f"[yellow]note:[/] {lm.name} does not say what input size it takes, so each "
            f"image goes in at its own size ({width}x{height} here): slow and memory-hungry "
            "on photos; --size PX resizes to the size the model was trained on "
            "(e.g. --size 32 for a CIFAR network, 224 for an ImageNet one)",
            highlight=False,
        )

    def record(self, image, res, scores, output, lm, folder: str | None) -> dict:
        """The JSON object of one explained image, with its label when asked."""
        record = _record(image, res, scores, output)
        if self.labels:
            index = self.label(lm, folder)
            record["folder"] = folder
            record["label"] = None if index is None else {"index": index,
                                                          "name": lm.class_name(index)}
            record["correct"] = None if index is None else res.top[0]["index"] == index
        return record

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The context of the work: torch's threads, and the library's parameter names
        said as the command's options in its messages."""
        from boda.nn import cpu_threads

        with cpu_threads(self.threads), options_for("target", "layer", "size", "arch"):
            yield


def _check_single_output(output: Path, image: Path) -> None:
    """``-o`` of one image names its montage file: a folder there (one that exists, or
    a name with no extension, as ``-o newdir/`` arrives) is said with the file name to
    give, as a folder of images names its montages (``<name>.png``)."""
    from boda.errors import InvalidParameterError

    inside = str(output / f"{image.stem}.png")
    batch = "-o names a folder of montages only with several images or a folder"
    if output.is_dir():
        raise InvalidParameterError(
            f"--output {str(output)!r}: it is a folder, and one image writes one montage; "
            f"give a file name such as {inside!r} ({batch})"
        )
    if not output.suffix and not output.exists():
        raise InvalidParameterError(
            f"--output {str(output)!r}: no image file extension, and one image writes one "
            f"montage; give a file name such as {str(output) + '.png'!r}, or {inside!r} "
            f"in a folder ({batch})"
        )


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
        _check_single_output(output, image)
        check_image_output(output, image, overwrite=overwrite)
    check_input(image, "image")
    settings.check_model()
    img = read_image(image, max_pixels=max_pixels_limit(max_pixels))
    folder = Path(os.path.abspath(image)).parent.name
    with settings.running():
        lm = settings.load()
        res, scores = settings.explain(img, lm, settings.label(lm, folder, img))
    if output is not None:
        write_image(output, montage(res.image, res.maps, cmap=cmap, alpha=alpha,
                                    colorbar=True, caption=montage_caption(res)))
    record = settings.record(image, res, scores, output, lm, folder)
    if as_json:
        print_json(record)
        return
    _print_explanation(image, res, scores, output, single=True, record=record)
    if scores:
        from boda.cli._explain_batch import METRICS_LEGEND

        console.print(f"({METRICS_LEGEND})", highlight=False)


def montage_caption(res) -> str:
    """The line under a montage that says which class its maps explain, with its
    probability (when among the top predictions), and the predicted class when that
    is another: ``explained: bird (class 2), p = 0.99``."""
    def probability(index) -> str:
        p = next((t["probability"] for t in res.top if t["index"] == index), None)
        return "" if p is None else f", p = {p:.2f}"

    if res.target is None:
        explained = "explained: a custom target"
    else:
        explained = f"explained: {class_text(res.target, res.target_name)}"
        explained += probability(res.target)
    best = res.top[0] if res.top else None
    if best is not None and best["index"] != res.target:
        explained += f"; predicted: {best['name']}{probability(best['index'])}"
    return explained


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


def _print_explanation(image, res, scores, output: Path | None, *, single: bool,
                       record: dict | None = None) -> None:
    from boda.cli._explain_batch import metrics_line

    best = res.top[0]
    verdict = ""
    if record is not None and "label" in record:
        label = record["label"]
        verdict = (" (no class for its folder)" if label is None
                   else " [green]right[/]" if record["correct"]
                   else f" [red]wrong: labelled {shown(label['name'])}[/]")
    console.print(
        f"{shown(image)}: predicted [bold]{best['name']}[/] ({best['probability']:.1%})"
        f"{verdict}; explained {shown(class_text(res.target, res.target_name))} with "
        f"{', '.join(res.maps)}" + (f" at layer {res.layer}" if res.layer else "")
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


def _print_accuracy(accuracy: dict, records: list[dict]) -> None:
    """The accuracy line, the most frequent confusions and the folders of no class."""
    if accuracy["labelled"]:
        console.print(
            f"accuracy: [bold]{accuracy['correct']} of {accuracy['labelled']}[/] labelled "
            f"images right ({accuracy['top1']:.1%})", highlight=False)
    if accuracy["confusions"]:
        pairs = ", ".join(f"{shown(c['label'])} taken for {shown(c['predicted'])} ({c['count']})"
                          for c in accuracy["confusions"][:5])
        console.print(f"most confused: {pairs}", highlight=False)
    if accuracy["unlabelled"]:
        folders: dict[str, int] = {}
        for r in records:
            if "predictions" in r and r.get("label") is None:
                folders[r.get("folder") or ""] = folders.get(r.get("folder") or "", 0) + 1
        named = ", ".join(f"{shown(repr(f)) if f else 'the top folder'} ({n})"
                          for f, n in sorted(folders.items(), key=lambda kv: -kv[1])[:5])
        from boda.cli._explain_batch import split_hint

        hint = split_hint(list(folders)) or "; name each class folder as a class or its index"
        err_console.print(
            f"[yellow]note:[/] {accuracy['unlabelled']} image"
            f"{' is' if accuracy['unlabelled'] == 1 else 's are'} in folders that name no "
            f"class of the model: {named}{shown(hint)}",
            highlight=False)


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
    items, raw_files = batch.collect(inputs, leave_out=batch.output_inside(output, inputs))
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
                    res, values = settings.explain(
                        img, lm, settings.label(lm, item.folder, img))
                    if item.output is not None:
                        write_image(item.output, montage(
                            res.image, res.maps, cmap=cmap, alpha=alpha, colorbar=True,
                            caption=montage_caption(res)))
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
                record = settings.record(item.path, res, values, item.output, lm, item.folder)
                records.append(record)
                if values is not None:
                    scores.append(values)
                if not as_json:
                    _print_explanation(item.path, res, values, item.output, single=False,
                                       record=record)
            progress(done, len(items))
    means = batch.summary(scores)
    summary: dict = {"explained": len(records) - failed, "failed": failed}
    if settings.metrics:
        summary["metrics"] = means
    if settings.labels:
        summary["accuracy"] = batch.accuracy(records)
    gallery = None
    if output is not None:
        from boda.cli._explain_gallery import write_gallery

        gallery = write_gallery(records, summary, output)
    if as_json:
        if settings.metrics or settings.labels:
            print_json({"images": records, "summary": summary})
        else:
            print_json(records)
    else:
        if means:
            console.print(batch.metrics_table(means, len(scores)))
            console.print(f"({batch.TABLE_LEGEND})", highlight=False)
        if settings.labels:
            _print_accuracy(summary["accuracy"], records)
        where = f"; montages in {shown(output)}" if output is not None else ""
        console.print(f"{len(records) - failed} of {len(records)} images explained{where}")
        if gallery is not None:
            console.print(f"look through them: {shown(gallery)}")
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
