"""``boda class-model``, ``boda patches``, ``boda similar``: what a model looks at,
and what it takes an image to look like.

Thin wrappers over :func:`boda.explain.class_model`,
:func:`boda.explain.top_activating_patches` and :class:`boda.explain.FeatureIndex`.
The folder commands walk DIR as ``boda scan`` does (hidden folders skipped),
read one file at a time at the model's input size (the library functions leave
an image of that size as it is, so the results are theirs) and feed the model
in chunks; an unreadable file is recorded, skipped and reported, and the
command exits 3 when any was.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    quiet_option,
    shown,
)
from boda.cli._torch_options import (
    arch_option,
    layer_option,
    max_side_option,
    model_option,
    normalize_option,
    size_option,
    threads_option,
    trust_model_code_option,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from boda.cli._torch_options import ModelFeed

#: Exit status when some files of DIR could not be read (as ``boda scan``).
EXIT_FILES_FAILED = 3

#: Bytes of model-sized images held at once before the model runs on them.
_CHUNK_BYTES = 256 << 20

#: Longest side of a ``class-model`` picture (``--scale`` enlarges the model's input).
_MAX_PICTURE_SIDE = 8192

_TORCH_NOTE = 'Needs PyTorch: pip install "boda[torch]".'

_FOLDER_NOTE = (
    "DIR is walked recursively as 'boda scan' walks it (folders whose names start with "
    "'.' are skipped). A file that cannot be read is skipped with a warning (with --json: "
    "listed under \"failed\") and the command exits 3 once the rest is done."
)


def register(app: typer.Typer) -> None:
    """Add ``class-model``, ``patches`` and ``similar`` to ``app``."""

    @app.command(
        "class-model",
        epilog=examples(
            "boda class-model --target cat --steps 50 -o cat.png",
            "# push a photo towards a class; a montage of both",
            "boda class-model -t 3 --start photo.jpg -o cat2.png --json",
            notes="Gradient ascent on the class's logit minus an L2 penalty (Simonyan et "
            "al. 2014); --jitter and --blur regularise it (Yosinski et al. 2015). --lr, --l2, "
            "--jitter, --blur and --blur-every default to those of boda.explain.class_model: "
            "a regularised ascent that gives a recognisable picture (the paper's plain "
            "ascent, --jitter 0 --blur 0 with a small --l2, gives saturated noise). The "
            "picture is shown enlarged by a whole factor (nearest neighbour, so the model's "
            "pixels stay visible) to at least 256 px unless --scale says otherwise; with "
            "--start it is the start image and the result side by side. " + _TORCH_NOTE,
        ),
    )
    @handle_errors
    def class_model_command(
        target: str = typer.Option(
            ..., "--target", "-t", metavar="CLASS",
            help="Class to synthesise: an index, or a name of a built-in model's class "
            "(cat, ship...).",
        ),
        output: Path = typer.Option(  # noqa: B008
            ..., "--output", "-o", help="Picture to write (PNG, JPEG...)."
        ),
        start: Path = typer.Option(  # noqa: B008
            None, "--start", metavar="IMAGE",
            help="Start from this image instead of the mean image (zeros after normalising).",
        ),
        steps: int = typer.Option(100, "--steps", min=0, metavar="N", help="Ascent steps."),
        lr: float = typer.Option(
            None, "--lr", metavar="X", help="Step size, in input units (the gradient is "
            "divided by its mean absolute value). Default: class_model's.",
            show_default=False,
        ),
        l2: float = typer.Option(
            None, "--l2", min=0.0, metavar="X",
            help="Weight of the L2 penalty on the image. Default: class_model's.",
            show_default=False,
        ),
        jitter: int = typer.Option(  # a max: 2**64 overflowed torch.randint (a traceback)
            None, "--jitter", min=0, max=2**31 - 1, metavar="PX",
            help="Shift the image by up to PX pixels at random before each step (0: off). "
            "Default: class_model's.",
            show_default=False,
        ),
        blur: float = typer.Option(
            None, "--blur", min=0.0, metavar="SIGMA",
            help="Gaussian blur of this sigma every --blur-every steps (0: off). Default: "
            "class_model's.",
            show_default=False,
        ),
        blur_every: int = typer.Option(
            None, "--blur-every", min=1, metavar="N",
            help="Steps between blurs (with --blur). Default: class_model's.",
            show_default=False,
        ),
        seed: int = typer.Option(  # torch.Generator.manual_seed's range (an overflow traceback)
            0, "--seed", min=-(2**63), max=2**64 - 1, metavar="N", help="Seed of the jitter."
        ),
        scale: int = typer.Option(
            None, "--scale", min=1, metavar="N",
            help="Enlarge the picture N times (default: enough for 256 px; 1: as computed).",
        ),
        model: str = model_option(),
        arch: str = arch_option(),
        trust_model_code: bool = trust_model_code_option(),
        size: int = size_option(
            "Image size PX x PX for a user model (default: the --start image's size; "
            "built-in models take their own size)."
        ),
        normalize: bool = normalize_option(),
        threads: int = threads_option(),
        max_pixels: str = max_pixels_option(annotated=False),
        overwrite: bool = overwrite_option(annotated=False),
        quiet: bool = quiet_option(short=True, annotated=False),
        as_json: bool = typer.Option(
            False, "--json", help="Print the class's logit and probability before and after "
            "as JSON."
        ),
    ) -> None:
        """Synthesise an image a classifier takes for a class (class-model visualisation)."""
        _class_model(
            target, output, start, steps, lr, l2, jitter, blur, blur_every, seed, scale, model,
            arch, trust_model_code, size, normalize, threads, max_pixels, overwrite, quiet,
            as_json,
        )  # fmt: skip

    @app.command(
        "patches",
        epilog=examples(
            "boda patches photos --layer layer3 --channel 7 -k 4 -o patches.png",
            "boda patches photos --layer layer2 --channel 0 --json",
            notes="For each image the unit of the channel that responds most is found; the "
            "k strongest over the folder are shown as the crops of the model's input that "
            "those units see (their receptive fields; Zeiler & Fergus 2014), best first, "
            "labelled with rank and activation. Images are resized to the model's input "
            "size first. " + _FOLDER_NOTE + " " + _TORCH_NOTE,
        ),
    )
    @handle_errors
    def patches_command(
        directory: Path = typer.Argument(  # noqa: B008
            ..., metavar="DIR", help="Folder of images (searched recursively)."
        ),
        channel: int = typer.Option(
            ..., "--channel", "-c", min=0, metavar="C", help="Channel of the layer."
        ),
        k: int = typer.Option(16, "-k", "--top", min=1, metavar="K", help="Patches to find."),
        output: Path = typer.Option(  # noqa: B008
            None, "--output", "-o", help="Write a montage of the patches, best first."
        ),
        layer: str = layer_option(),
        model: str = model_option(),
        arch: str = arch_option(),
        trust_model_code: bool = trust_model_code_option(),
        size: int = size_option(),
        normalize: bool = normalize_option(),
        max_side: int = max_side_option(),
        threads: int = threads_option(),
        max_pixels: str = max_pixels_option(annotated=False),
        overwrite: bool = overwrite_option(annotated=False),
        quiet: bool = quiet_option(short=True, annotated=False),
        as_json: bool = typer.Option(
            False, "--json", help="Print the patches (file, box, activation) as JSON."
        ),
    ) -> None:
        """Find the image patches in DIR that excite one channel of a layer most."""
        _patches(
            directory, channel, k, output, layer, model, arch, trust_model_code, size,
            normalize, threads, max_pixels, overwrite, quiet, as_json, max_side,
        )  # fmt: skip

    @app.command(
        "similar",
        epilog=examples(
            "boda similar photo.jpg photos --layer layer3 -k 3",
            "boda similar photo.jpg photos -k 4 -o similar.png --json",
            "# keep the folder's features for the next query",
            "boda similar photo.jpg photos --index photos.npz",
            "# search with FAISS (pip install 'boda[faiss]'): exact, faster on large folders",
            "boda similar photo.jpg photos --search faiss --json",
            notes="Images are compared by the layer's output averaged over space, by cosine "
            "similarity (1: same direction) or --metric euclidean (minus the distance). "
            "QUERY itself is left out when it lies in DIR. --search auto is exact search in "
            "PyTorch below 50 000 images and FAISS flat search (the same neighbours, faster) "
            "from there when FAISS is installed; --search hnsw (approximate) runs only when "
            "asked for. "
            + _FOLDER_NOTE + " " + _TORCH_NOTE,
        ),
    )
    @handle_errors
    def similar_command(
        query: Path = typer.Argument(  # noqa: B008
            ..., metavar="QUERY", help="Image to find neighbours of."
        ),
        directory: Path = typer.Argument(  # noqa: B008
            ..., metavar="DIR", help="Folder of images to search (recursively)."
        ),
        k: int = typer.Option(8, "-k", "--top", min=1, metavar="K", help="Neighbours to list."),
        output: Path = typer.Option(  # noqa: B008
            None, "--output", "-o", help="Write a montage: the query, then its neighbours."
        ),
        metric: str = typer.Option(
            "cosine", "--metric", metavar="cosine|euclidean", help="Similarity measure."
        ),
        index_file: Path = typer.Option(  # noqa: B008
            None, "--index", metavar="FILE",
            help="Keep the folder's features in FILE (.npz) and reuse them next time for the "
            "files whose path, size and modification time are unchanged.",
        ),
        search: str = typer.Option(
            None, "--search", metavar="auto|exact|faiss|hnsw",
            help="Nearest-neighbour search: exact (PyTorch), faiss (FAISS flat, exact), hnsw "
            "(FAISS HNSW graph, approximate), auto (exact; faiss from 50 000 images). "
            "Default: auto, or the search saved in the --index file.",
        ),
        layer: str = layer_option(),
        model: str = model_option(),
        arch: str = arch_option(),
        trust_model_code: bool = trust_model_code_option(),
        size: int = size_option(),
        normalize: bool = normalize_option(),
        max_side: int = max_side_option(),
        threads: int = threads_option(),
        max_pixels: str = max_pixels_option(annotated=False),
        overwrite: bool = overwrite_option(annotated=False),
        quiet: bool = quiet_option(short=True, annotated=False),
        as_json: bool = typer.Option(
            False, "--json", help="Print the neighbours (path, similarity) as JSON."
        ),
    ) -> None:
        """List the images of DIR nearest to QUERY by a layer's features."""
        _similar(
            query, directory, k, output, metric, layer, model, arch, trust_model_code, size,
            normalize, threads, max_pixels, overwrite, quiet, as_json, index_file, max_side,
            search,
        )  # fmt: skip


# -- class-model ------------------------------------------------------------------------------


def _class_model(
    target: str, output: Path, start: Path | None, steps: int, lr: float | None,
    l2: float | None, jitter: int | None, blur: float | None, blur_every: int | None,
    seed: int, scale: int | None, model: str,
    arch: str | None, trust_model_code: bool, size: int | None, normalize: bool,
    threads: int | None, max_pixels: str | None, overwrite: bool, quiet: bool, as_json: bool,
) -> None:  # fmt: skip
    import math

    from boda.errors import InvalidParameterError

    if lr is not None and not lr > 0:
        raise InvalidParameterError(f"--lr must be above 0, got {lr}")
    # inf passes the checks above and Typer's min=0: NaN pictures, or a blur that fails.
    for option, value in (("--lr", lr), ("--l2", l2), ("--blur", blur)):
        if value is not None and not math.isfinite(value):
            raise InvalidParameterError(f"{option} must be a finite number, got {value}")
    check_image_output(output, start, overwrite=overwrite)
    if start is not None:
        check_input(start, "--start")
    import boda._torch  # noqa: F401, I001  (first: a clear error when PyTorch is missing)

    import numpy as np
    import torch

    from boda.cli._torch_options import (
        class_index,
        load_cli_model,
        model_failures,
        model_feed,
        to_model_input,
    )
    from boda.explain import class_model, model_logits
    from boda.explain._base import class_probabilities
    from boda.io import read_image, write_image
    from boda.nn import cpu_threads, tensor_to_image

    limit = max_pixels_limit(max_pixels)
    with cpu_threads(threads):
        lm = load_cli_model(model, arch, trust_model_code)
        index = class_index(target, lm)
        start_image = None if start is None else read_image(start, max_pixels=limit)
        fallback = None if start_image is None else start_image.shape[:2]
        feed = model_feed(lm, size, normalize, fallback=fallback)
        longest = max(feed.size)
        factor = scale or max(1, -(-256 // longest))
        if factor > 1 and longest * factor > _MAX_PICTURE_SIDE:  # not a MemoryError at the end
            raise InvalidParameterError(
                f"--scale {factor} would make a picture {longest * factor} px wide; give at "
                f"most --scale {max(1, _MAX_PICTURE_SIDE // longest)} for this "
                f"{feed.size[1]}x{feed.size[0]} image (pictures up to {_MAX_PICTURE_SIDE} px)"
            )
        x0 = None if start_image is None else to_model_input(start_image, feed)
        # The options given; the others take class_model's defaults (one set of numbers).
        given = {"lr": lr, "l2": l2, "jitter": jitter, "blur_every": blur_every,
                 "blur_sigma": blur}  # fmt: skip
        regularise = {name: value for name, value in given.items() if value is not None}
        if blur == 0:  # --blur 0: no blur, whatever --blur-every says
            regularise.pop("blur_sigma")
            regularise["blur_every"] = 0
        with (
            options_for("target", "steps", "lr", "l2", "jitter"),
            model_failures(lm.name),
            progress_bar("ascent", enabled=not (as_json or quiet)) as update,
        ):
            res = class_model(
                lm.model, index, start=x0, size=feed.size, steps=steps, seed=seed,
                progress=update, **regularise,
            )
        begin = res.image.new_zeros(res.image.shape) if x0 is None else x0.to(res.image)
        with torch.no_grad(), model_failures(lm.name):
            logits = model_logits(lm.model(torch.cat([begin, res.image])))
        probs = class_probabilities(logits.float())
        # NaN scores or pixels were only seen by write_image, whose advice (np.nan_to_num)
        # is for its own callers: say what went wrong here, and what to change.
        if not torch.isfinite(logits[0]).all():
            from boda.errors import ModelError

            raise ModelError(
                f"{lm.name} gives scores that are not finite (NaN or infinity) for the start "
                "image; check the model's weights"
            )
        if not (torch.isfinite(res.image).all() and torch.isfinite(logits[1]).all()):
            raise InvalidParameterError(
                f"the ascent diverged: the image holds NaN or infinity after {steps} steps; "
                f"give a smaller --lr{'' if lr is None else f' than {lr:g}'} (or a larger --l2)"
            )

    def picture(x: torch.Tensor) -> np.ndarray:
        img = tensor_to_image(x[0], mean=feed.mean, std=feed.std)
        return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img

    result = picture(res.image)
    h, w = result.shape[:2]
    if x0 is None:
        shown_image = result.repeat(factor, axis=0).repeat(factor, axis=1)
    else:
        shown_image = _grid(
            [picture(x0), result], ["start", lm.class_name(index)], tile=max(h, w) * factor
        )
    write_image(output, shown_image)
    before, after = (
        {"logit": float(logits[i, index]), "probability": float(probs[i, index])} for i in (0, 1)
    )
    if as_json:
        print_json({
            "model": lm.name, "target": index, "target_name": lm.class_name(index),
            "steps": steps, "start": None if start is None else str(start),
            "width": w, "height": h, "scale": factor, "before": before, "after": after,
            "output": str(output),
        })  # fmt: skip
        return
    console.print(
        f"{shown(class_text(index, lm.class_name(index)))} after {steps} "
        f"step{'' if steps == 1 else 's'}: logit "
        f"{before['logit']:.3f} -> {after['logit']:.3f}, probability "
        f"{before['probability']:.1%} -> {after['probability']:.1%}"
    )
    console.print(f"{w}x{h} image, shown x{factor}, written to {shown(output)}")


# -- folders ----------------------------------------------------------------------------------


@dataclass
class _Folder:
    """The image files found under DIR and what became of them."""

    directory: Path
    paths: list[str]
    failed: list[tuple[str, str]] = field(default_factory=list)
    read: int = 0
    #: ``(size, mtime_ns)`` of each path when it was found (for ``--index``).
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Files of DIR left out of the search (QUERY itself): an index keeps their features.
    excluded: list[str] = field(default_factory=list)
    #: ``(link, target)`` paths of the file links to files of DIR (their targets are read).
    links: list[tuple[str, str]] = field(default_factory=list)


def _find_images(directory: Path, exclude: Path | None = None) -> _Folder:
    """The image files under ``directory`` (walked as ``boda scan`` walks it): a
    missing folder, a file, or a folder without images is a usage error."""
    import os

    from boda.errors import InvalidParameterError
    from boda.scan._walk import walk_as_scanned

    if not directory.exists():
        raise InvalidParameterError(f"DIR {str(directory)!r}: no such folder; check the path")
    if not directory.is_dir():
        raise InvalidParameterError(f"DIR {str(directory)!r} is a file; give a folder of images")
    folder = _Folder(directory, [])
    # what a scan skips by default too: @eaDir/, ._* (AppleDouble files, no images) and
    # DIR/.bodaignore's patterns, as the Python functions walk a folder
    for found in walk_as_scanned(directory):
        if found.error is not None:
            folder.failed.append((found.path, found.error))
        elif found.link_to is not None:  # a link to a file of DIR: that file is read anyway
            folder.links.append((found.path, os.path.join(directory, os.fsdecode(found.link_to))))
        else:
            folder.stats[found.path] = (found.size, found.mtime_ns)
            if exclude is not None and _same_file(found.path, exclude):
                folder.excluded.append(found.path)
                continue
            folder.paths.append(found.path)
    if not folder.paths and not folder.failed:
        raise InvalidParameterError(
            f"DIR {str(directory)!r} holds no image files"
            + (" besides QUERY" if exclude is not None else "")
            + " (JPEG, PNG, TIFF, WebP, HEIC...); give a folder of images"
        )
    return folder


def _refuse_writing_over_inputs(folder: _Folder, *outputs: Path | None) -> None:
    """An output that is one of DIR's images (even with --overwrite) is refused:
    the result would replace a file it was computed from."""
    from boda.cli._common import refuse_overwriting_inputs

    root = folder.directory.resolve()
    for output in outputs:
        if output is None or not output.exists() or not output.resolve().is_relative_to(root):
            continue
        same = [Path(p) for p in folder.paths if _same_file(p, output)]
        refuse_overwriting_inputs(output, *same)


def _same_file(path: str, other: Path) -> bool:
    import os

    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def _model_sized(
    folder: _Folder, paths: list[str], feed: ModelFeed, limit: int | None, *, quiet: bool,
    max_side: int | None = None,
) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Chunks of ``(path, image at the model's size)`` of the readable files among
    ``paths`` (of ``folder``), read one at a time under a progress bar (none when
    ``quiet``); unreadable ones go to ``folder.failed``."""
    from boda.cli._torch_options import to_model_size
    from boda.errors import BodaError
    from boda.io import read_image

    per_image = feed.size[0] * feed.size[1] * 3 * 4
    chunk_size = max(1, _CHUNK_BYTES // per_image)
    total = len(paths)
    chunk: list[tuple[str, np.ndarray]] = []
    with progress_bar("reading images", enabled=not quiet) as update:
        update(0, total)
        for done, path in enumerate(paths, 1):
            try:
                image = read_image(path, max_side, max_pixels=limit)
                chunk.append((path, to_model_size(image, feed)))
                folder.read += 1
            except BodaError as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                folder.failed.append((path, reason))
            update(done, total)
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _report_failures(folder: _Folder, as_json: bool) -> None:
    """Warn about each unreadable file (not with --json: its "failed" list says it),
    and raise when none could be read."""
    from boda.errors import BodaError

    if not as_json:
        for path, reason in folder.failed:
            err_console.print(
                f"[yellow]warning:[/] skipped {shown(path)}: {shown(reason)}", highlight=False
            )
    if folder.read == 0:
        raise BodaError(
            f"none of the {len(folder.failed)} image files under {str(folder.directory)!r} "
            "could be read"
        )


def _end(folder: _Folder, as_json: bool) -> None:
    """Exit 3 when some files could not be read (said once more at the end)."""
    if folder.failed:
        if not as_json:
            n = len(folder.failed)
            err_console.print(
                f"{n} of {n + folder.read} files could not be read (listed above)",
                highlight=False,
            )
        raise typer.Exit(EXIT_FILES_FAILED)


def _failed_json(folder: _Folder) -> list[dict]:
    return [{"path": path, "reason": reason} for path, reason in folder.failed]


_IMAGE_NAME = re.compile(r"image\[(\d+)\]")


def _position(name: str) -> int:
    """The place of an array among those given, from its name ``image[i]``."""
    return int(_IMAGE_NAME.fullmatch(name).group(1))  # type: ignore[union-attr]


@contextlib.contextmanager
def _files_named(chunk: list[tuple[str, np.ndarray]]) -> Iterator[None]:
    """A :class:`boda.errors.ModelError` of the library about the chunk's arrays (NaN
    features of 'image[3]') names their files instead: the user gave files."""
    from boda.errors import ModelError

    try:
        yield
    except ModelError as exc:
        def path(m: re.Match) -> str:
            i = int(m.group(1))
            return shown(chunk[i][0]) if i < len(chunk) else m.group(0)

        said = _IMAGE_NAME.sub(path, str(exc))
        raise ModelError(said) from exc


def _load_for_folder(
    model: str, arch: str | None, trust_model_code: bool, size: int | None, normalize: bool,
    layer: str | None, max_side: int | None,
) -> tuple[Any, ModelFeed, str, tuple]:  # fmt: skip
    from boda.cli._torch_options import (
        check_layer_name,
        load_cli_model,
        model_feed,
        probe_layer,
    )
    from boda.errors import InvalidParameterError

    check_layer_name(layer)
    lm = load_cli_model(model, arch, trust_model_code)
    feed = model_feed(lm, size, normalize)
    if max_side is not None and max_side < max(feed.size):
        raise InvalidParameterError(
            f"--max-side {max_side} is below the model's input size "
            f"({feed.size[1]}x{feed.size[0]}); give at least {max(feed.size)}"
        )
    name, shape = probe_layer(lm.model, layer or lm.target_layer, feed)
    return lm, feed, name, shape


# -- patches ----------------------------------------------------------------------------------


def _patches(
    directory: Path, channel: int, k: int, output: Path | None, layer: str | None, model: str,
    arch: str | None, trust_model_code: bool, size: int | None, normalize: bool,
    threads: int | None, max_pixels: str | None, overwrite: bool, quiet: bool, as_json: bool,
    max_side: int | None = None,
) -> None:  # fmt: skip
    from boda.errors import InvalidParameterError

    if output is not None:
        check_image_output(output, overwrite=overwrite)
    limit = max_pixels_limit(max_pixels)
    folder = _find_images(directory)
    _refuse_writing_over_inputs(folder, output)
    from boda.cli._torch_options import model_failures
    from boda.explain import Patch, top_activating_patches
    from boda.io import write_image
    from boda.nn import cpu_threads

    with cpu_threads(threads):
        lm, feed, layer_name, shape = _load_for_folder(
            model, arch, trust_model_code, size, normalize, layer, max_side
        )
        if len(shape) != 4:
            raise InvalidParameterError(
                f"--layer {layer_name} gives {tuple(shape)} outputs, not (B, C, H, W) maps; "
                "choose a convolutional layer"
            )
        if channel >= shape[1]:
            raise InvalidParameterError(
                f"--channel {channel} is out of range: {layer_name} has {shape[1]} channels, "
                f"0 to {shape[1] - 1}"
            )
        best: list[Patch] = []
        chunks = _model_sized(
            folder, folder.paths, feed, limit, quiet=quiet or as_json, max_side=max_side
        )
        for chunk in chunks:
            with model_failures(lm.name), _files_named(chunk):
                found = top_activating_patches(
                    lm.model, layer_name, channel, [a for _, a in chunk], size=feed.size,
                    mean=feed.mean, std=feed.std, k=k,
                )
            for patch in found.patches:
                patch.source = chunk[_position(patch.source)][0]
            # Earlier files first among equal activations, as in one call over all files.
            best = sorted(best + found.patches, key=lambda p: -p.activation)[:k]
    _report_failures(folder, as_json)
    if output is not None:
        write_image(
            output,
            _grid([p.crop for p in best],
                  [f"{i}: {p.activation:.3g}" for i, p in enumerate(best, 1)], tile=96),
        )  # fmt: skip
    if as_json:
        print_json({
            "folder": str(directory), "model": lm.name, "layer": layer_name,
            "channel": channel, "k": k, "width": feed.size[1], "height": feed.size[0],
            "patches": [
                {"rank": i, "path": p.source, "activation": p.activation,
                 "position": list(p.position), "box": list(p.box)}
                for i, p in enumerate(best, 1)
            ],
            "files": folder.read + len(folder.failed), "read": folder.read,
            "failed": _failed_json(folder), "output": None if output is None else str(output),
        })  # fmt: skip
    else:
        console.print(
            f"channel {channel} of {layer_name}: the {len(best)} strongest of {folder.read} "
            f"images (boxes as top,left,bottom,right in the {feed.size[1]}x{feed.size[0]} "
            "model input)"
        )
        for i, p in enumerate(best, 1):
            box = ",".join(str(v) for v in p.box)
            console.print(f"{i:4d}  {p.activation:10.4f}  {box:>13s}  {shown(p.source)}")
        if output is not None:
            console.print(f"montage written to {shown(output)}")
    _end(folder, as_json)


# -- similar ----------------------------------------------------------------------------------


def _similar(
    query: Path, directory: Path, k: int, output: Path | None, metric: str, layer: str | None,
    model: str, arch: str | None, trust_model_code: bool, size: int | None, normalize: bool,
    threads: int | None, max_pixels: str | None, overwrite: bool, quiet: bool, as_json: bool,
    index_file: Path | None = None, max_side: int | None = None, search: str | None = None,
) -> None:  # fmt: skip
    from boda.errors import InvalidParameterError
    from boda.explain._vector_search import SEARCHES, check_search

    if metric not in ("cosine", "euclidean"):
        raise InvalidParameterError(f"--metric must be cosine or euclidean, got {metric!r}")
    if search is not None and search not in SEARCHES:
        raise InvalidParameterError(f"--search must be {', '.join(SEARCHES)}, got {search!r}")
    check_search(search or "auto")  # faiss or hnsw without FAISS: said before any work
    if output is not None:
        check_image_output(output, query, overwrite=overwrite)
    check_input(query, "QUERY")
    if index_file is not None:
        _check_index_file(index_file, output, query)
    limit = max_pixels_limit(max_pixels)
    folder = _find_images(directory, exclude=query)
    _refuse_writing_over_inputs(folder, output, index_file)
    import boda._torch  # noqa: F401, I001  (first: a clear error when PyTorch is missing)

    import torch

    from boda.cli._torch_options import model_failures, to_model_size
    from boda.explain import FeatureIndex
    from boda.io import read_image, write_image
    from boda.nn import cpu_threads

    with cpu_threads(threads):
        lm, feed, layer_name, _ = _load_for_folder(
            model, arch, trust_model_code, size, normalize, layer, max_side
        )
        settings = {"size": feed.size, "mean": feed.mean, "std": feed.std, "metric": metric,
                    "search": search}  # fmt: skip
        stored = None
        if index_file is not None:
            stored = _stored_index(index_file, lm.model, layer_name, settings, max_side,
                                   overwrite)  # fmt: skip
        # no --search: the index file's own (an hnsw index stays hnsw), else auto
        settings["search"] = search or (stored.search if stored is not None else "auto")
        query_image = to_model_size(read_image(query, max_side, max_pixels=limit), feed)
        embedder = FeatureIndex(lm.model, layer_name, **settings)
        cached = None if index_file is None else _IndexFile(stored, folder)
        todo = folder.paths if cached is None else cached.missing
        chunks = _model_sized(folder, todo, feed, limit, quiet=quiet or as_json, max_side=max_side)
        fresh: dict[str, torch.Tensor] = {}
        for chunk in chunks:
            with model_failures(lm.name), _files_named(chunk):
                _, vectors = embedder.embed([a for _, a in chunk])
            fresh.update(zip((p for p, _ in chunk), vectors, strict=True))
        # The folder's readable files in walk order, with their features: fresh or kept.
        reused = set() if cached is None else set(cached.reused)
        paths = [p for p in folder.paths if p in fresh or p in reused]
        index = FeatureIndex(lm.model, layer_name, **settings)
        if paths:
            index.add_vectors(paths, torch.stack([
                fresh[p] if p in fresh else cached.vector(p) for p in paths  # type: ignore
            ]))  # fmt: skip
        with model_failures(lm.name), _files_named([(str(query), query_image)]):
            _, query_vector = embedder.embed([query_image])
        if cached is not None:
            folder.read += len(cached.reused)
            # the query, when it is a file of the folder: its features are kept too, so the
            # next query from the folder finds every file in the index
            query_vectors = {}
            if folder.excluded and not cached.is_current(folder.excluded[0]):
                query_vectors[folder.excluded[0]] = query_vector[0]
            if paths:  # a folder where nothing can be read keeps its index as it was
                cached.save(index, index_file, max_side, query_vectors)
        _report_failures(folder, as_json)
        with model_failures(lm.name):
            found = index.query(query_vector, k=k)[0]
    if output is not None:
        tiles = [read_image(query, 128, max_pixels=limit)]
        tiles += [_thumbnail(p, limit) for p, _ in found]
        labels = ["query"] + [f"{i}: {s:.3f}" for i, (_, s) in enumerate(found, 1)]
        write_image(output, _grid(tiles, labels, tile=128))
    if as_json:
        print_json({
            "query": str(query), "folder": str(directory), "model": lm.name,
            "layer": layer_name, "metric": metric, "k": k, "search": index.last_search,
            "neighbours": [{"rank": i, "path": p, "similarity": s}
                           for i, (p, s) in enumerate(found, 1)],
            "files": folder.read + len(folder.failed), "read": folder.read,
            "failed": _failed_json(folder), "output": None if output is None else str(output),
            "index": None if cached is None else {
                "path": str(index_file), "reused": len(cached.reused),
                "embedded": len(paths) - len(cached.reused),
            },
        })  # fmt: skip
    else:
        what = "cosine similarity" if metric == "cosine" else "minus the Euclidean distance"
        console.print(
            f"{shown(query)}: the {len(found)} nearest of {folder.read} images by {layer_name} "
            f"features ({what})"
        )
        for i, (p, s) in enumerate(found, 1):
            console.print(f"{i:4d}  {round(s, 4) + 0.0:8.4f}  {shown(p)}")  # no "-0.0000"
        if cached is not None:
            console.print(
                f"index {shown(index_file)}: {len(cached.reused)} images reused, "
                f"{len(paths) - len(cached.reused)} embedded"
            )
        if output is not None:
            console.print(f"montage written to {shown(output)}")
    _end(folder, as_json)


def _thumbnail(path: str, limit: int | None) -> np.ndarray:
    """``path`` at 128 px for the montage; a gray tile if it cannot be read now."""
    import numpy as np

    from boda.errors import BodaError
    from boda.io import read_image

    try:
        return read_image(path, 128, max_pixels=limit)
    except BodaError:  # changed or removed since it was indexed
        return np.full((128, 128, 3), 0.5, np.float32)


# -- pictures ---------------------------------------------------------------------------------


def _grid(
    tiles: list[np.ndarray], labels: list[str], *, tile: int, columns: int | None = None
) -> np.ndarray:
    """The tiles in rows, each fitted into a ``tile`` square (enlarged by nearest
    neighbour so small crops keep their pixels, reduced smoothly), its label under it."""
    import math

    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    if not tiles:  # nothing found: a small blank picture still says so
        tiles, labels = [np.ones((8, 8, 3), np.float32)], ["none"]
    columns = columns or max(1, min(len(tiles), math.ceil(math.sqrt(len(tiles)))))
    rows = math.ceil(len(tiles) / columns)
    pad, label_h = 4, 14
    cell_w, cell_h = tile + pad, tile + label_h + pad
    canvas = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, (img, label) in enumerate(zip(tiles, labels, strict=True)):
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        pil = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
        factor = tile / max(pil.size)
        if factor != 1:
            new = (max(1, round(pil.width * factor)), max(1, round(pil.height * factor)))
            pil = pil.resize(new, Image.NEAREST if factor > 1 else Image.LANCZOS)
        x0 = pad + (i % columns) * cell_w
        y0 = pad + (i // columns) * cell_h
        canvas.paste(pil, (x0 + (tile - pil.width) // 2, y0 + (tile - pil.height) // 2))
        draw.text((x0, y0 + tile + 1), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0



# -- similar --index ----------------------------------------------------------------------------


def _stored_index(
    path: Path, model: Any, layer: str, settings: dict, max_side: int | None, overwrite: bool
) -> Any:
    """The index saved in ``path`` (:meth:`boda.explain.FeatureIndex.load`), or None
    when there is none.  One made for another model, layer or input, or a file that
    is no index, is a usage error unless ``--overwrite`` (then it is replaced)."""
    from boda.errors import InvalidParameterError
    from boda.explain import FeatureIndex

    if not path.exists():
        return None
    try:
        index = FeatureIndex.load(path, model, layer, **settings)
        if index.metadata.get("max_side") != max_side:
            raise InvalidParameterError(
                f"{str(path)!r} holds features of another max_side "
                f"({index.metadata.get('max_side')} there, {max_side} here)"
            )
    except InvalidParameterError as exc:
        if overwrite:
            return None
        # The library's sentence says what differs; the fix here is the command's.  Its
        # fix is the last clause: what differs can itself hold "; " (mean and std).
        said = str(exc).rsplit("; ", 1)[0]
        raise InvalidParameterError(
            f"--index {said}; choose another file, or add --overwrite to replace it"
        ) from None
    return index


def _check_index_file(path: Path, output: Path | None, query: Path) -> None:
    """Before any work: the ``--index`` file is not the query or the montage, and can
    be written where it is to go."""
    from boda.cli._common import check_output, refuse_overwriting_inputs, refuse_same_outputs

    refuse_overwriting_inputs(path, query)
    refuse_same_outputs(**{"--output": output, "--index": path})
    if not path.exists():
        check_output(path, option="--index")
    else:
        check_output(path, overwrite=True, option="--index")


class _IndexFile:
    """The features of an ``--index`` file (a saved :class:`boda.explain.FeatureIndex`,
    named by absolute paths, with each file's size and modification time in its
    metadata): which files of the folder they still describe and which must be read."""

    def __init__(self, stored: Any, folder: _Folder):
        import os

        self.folder = folder
        #: absolute path -> ((size, mtime_ns), row of the stored index)
        self.stored: dict[str, tuple[tuple[int, ...], int]] = {}
        self.vectors = None if stored is None else stored.vectors
        if stored is not None:
            files = stored.metadata.get("files", {})
            for row, name in enumerate(stored.names):
                if name in files:
                    self.stored[name] = (tuple(int(v) for v in files[name]), row)
        self.reused: list[str] = []
        self.missing: list[str] = []
        for p in folder.paths:
            entry = self.stored.get(os.path.abspath(p))
            if entry is not None and entry[0] == folder.stats[p]:
                self.reused.append(p)
            else:
                self.missing.append(p)

    def vector(self, path: str) -> torch.Tensor:
        """The stored features of ``path`` (one of :attr:`reused`)."""
        import os

        return self.vectors[self.stored[os.path.abspath(path)][1]]

    def is_current(self, path: str) -> bool:
        """Whether the stored features of ``path`` (a file of the folder) are of the file
        as it is now."""
        import os

        entry = self.stored.get(os.path.abspath(path))
        return entry is not None and entry[0] == self.folder.stats[path]

    def save(self, index: Any, path: Path, max_side: int | None,
             query_vectors: dict[str, torch.Tensor] | None = None) -> None:
        """Write ``index`` (the folder's files) to ``path`` under absolute paths, with
        the features of the query when it lies in the folder: stored ones when the file
        is unchanged, else ``query_vectors``'s."""
        import os

        from boda.explain import FeatureIndex

        kept = FeatureIndex(index.model, index.layer, size=index.size, mean=index.mean,
                            std=index.std, metric=index.metric, search=index.search)  # fmt: skip
        names = [os.path.abspath(p) for p in index.names]
        files = {os.path.abspath(p): list(self.folder.stats[p]) for p in index.names}
        kept.add_vectors(names, index.vectors)
        for p in self.folder.excluded:
            entry = self.stored.get(os.path.abspath(p))
            if self.is_current(p):
                kept.add_vectors([os.path.abspath(p)], self.vectors[entry[1]][None])
            elif query_vectors and p in query_vectors:
                kept.add_vectors([os.path.abspath(p)], query_vectors[p][None])
            else:
                continue
            files[os.path.abspath(p)] = list(self.folder.stats[p])
        # The features of files outside this folder (one index for several folders)
        # stay as they were: only this folder's are brought up to date.
        inside = os.path.join(os.path.abspath(self.folder.directory), "")
        others = [(name, stats, row) for name, (stats, row) in self.stored.items()
                  if not name.startswith(inside) and name not in files]
        if others:
            kept.add_vectors([n for n, _, _ in others], self.vectors[[r for _, _, r in others]])
            files.update({n: list(stats) for n, stats, _ in others})
        kept.metadata = {"max_side": max_side, "files": files}
        kept.save(path)
