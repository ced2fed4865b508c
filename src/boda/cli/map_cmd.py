"""``boda map``: a folder of images as a map of a model's features, and the labels its
neighbourhoods disagree with.

Thin: the folder walk, model loading and embedding of ``boda similar``
(:mod:`boda.cli.probe_cmd`), the projection and the neighbour vote of
:mod:`boda.embed`, the page of :mod:`boda.cli._map_page`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from boda.cli._common import (
    check_output,
    console,
    err_console,
    examples,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
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

_TORCH_NOTE = 'Needs PyTorch (pip install "boda[torch]"); t-SNE needs scikit-learn (boda[map]).'


def register(app: typer.Typer) -> None:
    """Add the ``map`` command to ``app``."""

    @app.command(
        "map",
        epilog=examples(
            "boda map val/ --model shapes-cnn --labels-from-folders -o map.html",
            "# PCA instead of t-SNE; the points as JSON",
            "boda map photos/ --method pca --json",
            notes="Every image of DIR (walked as boda scan walks it) is embedded by a layer's "
            "features (the layer boda similar uses) and placed on a two-dimensional map: "
            "t-SNE (van der Maaten & Hinton 2008; neighbours stay neighbours) or PCA (the "
            "two directions of most variance). With --labels-from-folders each folder "
            "directly under DIR is a class, as torchvision's ImageFolder reads them (any "
            "names: defect/ and ok/; folders named as one of the model's classes, or by its "
            "index, are that class under its name), the points are coloured by class, and an "
            "image whose --k nearest labelled neighbours mostly carry another label is listed "
            "as a likely label error (Deep k-NN, Bahri et al. 2020). -o writes one "
            "self-contained page: hover a point to "
            "see the image, click to open it. " + _TORCH_NOTE,
        ),
    )
    @handle_errors
    def map_command(
        directory: Path = typer.Argument(..., metavar="DIR", help="A folder of images."),  # noqa: B008
        output: Path = typer.Option(  # noqa: B008
            None, "--output", "-o", metavar="PAGE.html", help="Write the map as an HTML page."
        ),
        method: str = typer.Option(
            "tsne", "--method", metavar="tsne|pca", help="How to lay the features out in 2-D."
        ),
        labels_from_folders: bool = typer.Option(
            False, "--labels-from-folders",
            help="Label each image by its class folder (the folder directly under DIR), "
            "colour the map by label and list likely label errors.",
        ),
        k: int = typer.Option(
            10, "--k", "-k", min=1, metavar="K",
            help="Neighbours that vote on each image's label (with --labels-from-folders).",
        ),
        perplexity: float = typer.Option(
            30.0, "--perplexity", min=1.0, metavar="P",
            help="t-SNE's effective number of neighbours."
        ),
        seed: int = typer.Option(  # the range of boda.embed's tsne (MAX_SEED)
            0, "--seed", min=0, max=2**32 - 1, metavar="N", help="Seed of the t-SNE layout."
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
            False, "--json", help="Print every point (path, x, y, label, vote) as JSON."
        ),
    ) -> None:
        """Map the images of DIR by a model's features; with labels, find likely label
        errors."""
        _map(directory, output, method, labels_from_folders, k, perplexity, seed, layer, model,
             arch, trust_model_code, size, normalize, threads, max_pixels, overwrite, quiet,
             as_json, max_side)  # fmt: skip


def _map(
    directory: Path, output: Path | None, method: str, labels_from_folders: bool, k: int,
    perplexity: float, seed: int, layer: str | None, model: str, arch: str | None,
    trust_model_code: bool, size: int | None, normalize: bool, threads: int | None,
    max_pixels: str | None, overwrite: bool, quiet: bool, as_json: bool,
    max_side: int | None = None,
) -> None:  # fmt: skip
    from boda.cli.probe_cmd import (
        _end,
        _failed_json,
        _files_named,
        _find_images,
        _load_for_folder,
        _model_sized,
        _refuse_writing_over_inputs,
        _report_failures,
    )
    from boda.embed import METHODS
    from boda.errors import InvalidParameterError

    if method not in METHODS:
        raise InvalidParameterError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    ignored = [name for name, value, default in
               (("--perplexity", perplexity, 30.0), ("--seed", seed, 0)) if value != default]
    if method != "tsne" and ignored:  # PCA has neither: said, not silently ignored
        raise InvalidParameterError(
            f"{' and '.join(ignored)} only appl{'y' if len(ignored) > 1 else 'ies'} to "
            f"--method tsne; drop {'them' if len(ignored) > 1 else 'it'} for {method}")
    if k != 10 and not labels_from_folders:  # nor is --k without labels
        raise InvalidParameterError(
            f"--k {k} only applies to the label check; add --labels-from-folders or drop --k")
    if output is not None:
        if output.suffix.lower() not in (".html", ".htm"):
            raise InvalidParameterError(
                f"--output {str(output)!r}: the map is an HTML page; end the name with .html")
        check_output(output, overwrite=overwrite)
    limit = max_pixels_limit(max_pixels)
    folder = _find_images(directory)
    _refuse_writing_over_inputs(folder, output)
    if method == "tsne":
        from boda.embed._project import tsne_available

        tsne_available()  # said before the model runs over the whole folder
    import boda._torch  # noqa: F401, I001  (first: a clear error when PyTorch is missing)

    import torch

    from boda.cli._torch_options import model_failures
    from boda.explain import FeatureIndex
    from boda.nn import cpu_threads

    with cpu_threads(threads):
        lm, feed, layer_name, _ = _load_for_folder(
            model, arch, trust_model_code, size, normalize, layer, None
        )
        embedder = FeatureIndex(lm.model, layer_name, size=feed.size, mean=feed.mean,
                                std=feed.std)  # fmt: skip
        paths: list[str] = []
        parts: list[torch.Tensor] = []
        for chunk in _model_sized(folder, folder.paths, feed, limit, quiet=quiet or as_json,
                                  max_side=max_side):
            with model_failures(lm.name), _files_named(chunk):  # NaN features: the files
                _, vectors = embedder.embed([a for _, a in chunk])
            paths += [p for p, _ in chunk]
            parts.append(vectors)
        _report_failures(folder, as_json)
    vectors = torch.cat(parts).numpy()
    result = _layout(directory, paths, vectors, lm, layer_name, method, labels_from_folders, k,
                     perplexity, seed, threads, quiet or as_json)  # fmt: skip
    result["failed"] = _failed_json(folder)
    # a link in one class folder to a file of another: the same image under two labels
    # (mapped once, as its target)
    if labels_from_folders:
        label = _labeller(directory, paths, lm.classes, lm.class_name)
        result["linked_across_classes"] = [
            {"path": link, "target": target} for link, target in folder.links
            if label(link) != label(target)]
    if output is not None:
        from boda.cli._map_page import write_map

        result["output"] = str(output)
        thumbs = []
        with progress_bar("making thumbnails", enabled=not (quiet or as_json)) as update:
            for done, p in enumerate(paths, 1):  # each file read again: long for many
                thumbs.append(_thumb(p, limit))
                update(done, len(paths))
        write_map(result, thumbs, output)
    if as_json:
        print_json(result)
    else:
        _print(result, output)
    _label_notes(result)
    _end(folder, as_json)


#: The result's fields of the label check, only with ``--labels-from-folders``.
_LABEL_KEYS = ("k", "suspects", "labelled", "small_classes")


def _layout(directory: Path, paths: list[str], vectors: Any, lm: Any, layer: str, method: str,
            labels_from_folders: bool, k: int, perplexity: float, seed: int,
            threads: int | None, quiet: bool = True) -> dict[str, Any]:
    """The command's result: the map's points, with labels and votes when asked."""
    from boda.embed import neighbour_votes, project
    from boda.errors import InvalidParameterError

    least = 4 if method == "tsne" else 2
    if len(paths) < least:
        hint = "; --method pca maps 2 or more" if method == "tsne" else ""
        raise InvalidParameterError(
            f"{'t-SNE' if method == 'tsne' else 'a map'} needs at least {least} images, "
            f"{len(paths)} could be read from DIR {str(directory)!r}{hint}")
    # t-SNE of thousands of images takes minutes (5 000: 67 s on one thread): said
    with progress_bar(f"laying out the map ({method})", enabled=not quiet):
        xy = project(vectors, method, seed=seed, perplexity=perplexity, threads=threads)
    folders = [_class_folder(directory, p) for p in paths]
    labels: list[str | None] = [None] * len(paths)
    if labels_from_folders:
        label = _labeller(directory, paths, lm.classes, lm.class_name)
        labels = [label(p) for p in paths]
    names = sorted({name for name in labels if name is not None})  # the vote's label ids
    number = {name: i for i, name in enumerate(names)}
    ids = [None if name is None else number[name] for name in labels]
    votes = None
    labelled = sum(i is not None for i in ids)
    if labels_from_folders and labelled >= 2:
        votes = neighbour_votes(vectors, ids, k=k)
    points = []
    for n, path in enumerate(paths):
        point: dict[str, Any] = {
            "path": path, "x": float(xy[n, 0]), "y": float(xy[n, 1]), "folder": folders[n],
            "label": labels[n],
        }
        if votes is not None:
            vote = votes[n]
            point["agreement"] = None if labels[n] is None else vote.agreement
            point["majority"] = names[vote.majority]
            point["suspect"] = vote.suspect
        elif labels_from_folders:  # no vote was made: null, as the result's k and suspects
            point.update(agreement=None, majority=None, suspect=None)
        points.append(point)
    # neighbours that voted: fewer than asked when fewer other images are labelled
    k_used = min(k, labelled - 1) if votes is not None else None
    sizes: dict[str, int] = {}
    for p in points:
        if p["label"] is not None:
            sizes[p["label"]] = sizes.get(p["label"], 0) + 1
    result: dict[str, Any] = {
        "folder": str(directory), "model": lm.name, "layer": layer, "method": method,
        "k": k_used, "images": len(points),
        "suspects": None if votes is None else sum(v.suspect for v in votes),
        "labelled": labelled,
        # classes too small to fill half of an image's k neighbours: most of their
        # images are suspects whatever their label
        "small_classes": None if votes is None else sorted(
            name for name, n in sizes.items() if 2 * (n - 1) < k_used),
        "points": points,
    }
    if not labels_from_folders:  # the label check's fields mean nothing without labels
        for key in _LABEL_KEYS:
            del result[key]
    return result


def _labeller(directory: Path, paths: list[str], classes: Sequence[str] | None,
              class_name: Callable[[int], str]) -> Callable[[str], str | None]:
    """The label of each file under ``directory`` with ``--labels-from-folders``.

    Each folder directly under ``directory`` is a class (the dataset's own labels:
    the vote needs only which images share one, not the model's classes), named
    by the folder; folders that name one of the model's ``classes`` as ``boda
    explain`` matches them (any case, ``_`` or ``-`` for a space, or its index) are
    that class, under its name, so ``Cat/``, ``cat/`` and CIFAR's ``3/`` are one.
    A file at the top takes ``directory``'s own name when that names a model class
    (as ``boda explain`` reads it) or when no file of ``paths`` lies in a folder
    below (``directory`` is itself one class folder); else, a stray file beside the
    class folders, it has no label (None).
    """
    from boda.cli._explain_batch import folder_class

    one_class = all(os.path.dirname(os.path.relpath(p, directory)) == "" for p in paths)

    def label(path: str) -> str | None:
        folder = _class_folder(directory, path)
        # a model without class names has none to share: every folder is its own class
        index = folder_class(folder, classes) if classes else None
        if index is not None:
            return class_name(index)
        at_top = os.path.dirname(os.path.relpath(path, directory)) == ""
        return folder if folder and (one_class or not at_top) else None

    return label


def _class_folder(directory: Path, path: str) -> str | None:
    """The class folder of ``path``, a file under ``directory``, as ``boda explain``
    reads it (:func:`boda.cli._explain_batch.class_folder`)."""
    from boda.cli._explain_batch import class_folder

    return class_folder(os.path.relpath(path, directory), directory)


def _thumb(path: str, limit: int | None) -> str | None:
    """A 64 px JPEG of ``path`` as a data URI (None if it cannot be read now)."""
    import base64
    import io

    from PIL import Image

    from boda.core.image import to_uint8
    from boda.errors import BodaError
    from boda.io import read_image

    try:
        image = read_image(path, 64, max_pixels=limit)
    except BodaError:
        return None
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _print(result: dict[str, Any], output: Path | None) -> None:
    console.print(
        f"{result['images']} images of {shown(result['folder'])} mapped by the features of "
        f"layer {result['layer']} of {result['model']} ({result['method']})", highlight=False)
    if result.get("suspects") is not None:
        suspects = [p for p in result["points"] if p.get("suspect")]
        console.print(
            f"likely label errors: {len(suspects)} (their {result['k']} nearest neighbours "
            "mostly carry another label)", highlight=False)
        for p in sorted(suspects, key=lambda p: p["agreement"])[:20]:
            console.print(f"  {shown(p['path'])}: labelled {shown(p['label'])}, neighbours say "
                          f"{shown(p['majority'])} ({p['agreement']:.0%} agree)", highlight=False)
        if len(suspects) > 20:
            console.print(f"  … and {len(suspects) - 20} more (--json lists them all)")
    if output is not None:
        console.print(f"map written to {shown(output)}")


def _label_notes(result: dict[str, Any]) -> None:
    """On stderr: images at the top of DIR that carry no label, folders taken as one
    class by the model's class names, a vote that could not run, classes too small
    for the vote's k."""
    if result.get("labelled") is None:
        return
    from boda.cli._explain_batch import split_hint

    # labels named after the splits (DIR is the dataset above train/ and test/): the
    # vote compares splits, not classes, and its "label errors" mean nothing
    hint = split_hint([p["label"] for p in result["points"] if p["label"] == p["folder"]],
                      result["folder"])
    if hint:
        err_console.print(
            f"[yellow]note:[/] the labels are the folders under {shown(result['folder'])}"
            f"{shown(hint)}", highlight=False)
    n = sum(p["label"] is None for p in result["points"])
    if n:  # only files beside the class folders have none
        err_console.print(
            f"[yellow]note:[/] {n} image{' is' if n == 1 else 's are'} at the top of "
            f"{shown(result['folder'])}, in no class folder: no label and no part in the "
            f"vote; file {'it' if n == 1 else 'them'} in a class folder", highlight=False)
    shared: dict[str, set[str]] = {}
    for p in result["points"]:
        if p["label"] is not None and p["folder"] is not None:
            shared.setdefault(p["label"], set()).add(p["folder"])
    merged = {name: sorted(f) for name, f in shared.items() if len(f) > 1}
    if merged:
        said = "; ".join(f"{', '.join(shown(repr(f)) for f in folders)} as {shown(name)}"
                         for name, folders in sorted(merged.items())[:5])
        err_console.print(
            f"[yellow]note:[/] folders that name the same class of the model are one class: "
            f"{said}{' …' if len(merged) > 5 else ''}", highlight=False)
    crossed = result.get("linked_across_classes") or []
    if crossed:
        first = ", ".join(f"{shown(c['path'])} -> {shown(c['target'])}" for c in crossed[:3])
        err_console.print(
            f"[yellow]note:[/] {len(crossed)} link{'s' * (len(crossed) != 1)} in one class "
            f"folder to an image of another ({first}{' …' if len(crossed) > 3 else ''}): "
            "the same image under two labels, mapped once as its target", highlight=False)
    if result["k"] is None:
        err_console.print(
            f"[yellow]note:[/] {result['labelled']} labelled image"
            f"{'s' * (result['labelled'] != 1)}: the label check needs at least 2, so none "
            "was made", highlight=False)
    elif result["small_classes"]:
        err_console.print(
            f"[yellow]note:[/] classes of {(result['k'] + 1) // 2} images or fewer cannot fill "
            f"half of an image's {result['k']} neighbours, so most of their images are listed: "
            f"{shown(', '.join(result['small_classes']))}; a smaller --k suits them",
            highlight=False)
