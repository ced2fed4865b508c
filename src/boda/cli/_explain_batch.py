"""``boda explain`` on several images, and the faithfulness metrics of its maps.

The command's plumbing, no algorithm: which files a list of files and folders
names (the scan's walker), where each montage goes, the faithfulness of each
map (:mod:`boda.explain.metrics`), and the per-method summary that
says which map to trust on a set of images.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from boda.explain import ImageExplanation
    from boda.nn import LoadedModel

#: The per-map metrics, in the order they are shown: (JSON key, column title,
#: whether higher is better).
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("deletion_auc", "deletion AUC", False),
    ("insertion_auc", "insertion AUC", True),
    ("average_drop", "average drop %", False),
    ("average_increase", "increase %", True),
)


@dataclasses.dataclass
class Item:
    """One image of a batch: where it is, how it is shown, where its montage goes,
    and why it failed (set by the walk, for a file that could not even be listed)."""

    path: str
    name: str  # relative to the folder it came from; a loose file's own name
    output: Path | None = None
    error: str | None = None
    # The folder that names its class, as torchvision's ImageFolder reads a dataset:
    # the one directly under the folder given (``val/cat/x/1.png``: ``cat``); for a
    # file at the top of a folder given (``val/cat`` itself), or a loose file, its
    # own folder.
    folder: str | None = None


def collect(inputs: Sequence[Path], *,
            leave_out: Path | None = None) -> tuple[list[Item], dict[str, int]]:
    """The images that ``inputs`` (files and folders) name, in order, each once.

    Folders are walked recursively as ``boda scan`` walks them by default
    (:func:`boda.scan._walk.walk_as_scanned`: hidden folders such as ``.boda``, the
    default excludes and ``.bodaignore``'s patterns skipped, folder links not
    followed; a file that
    cannot be stat'ed comes with its error).  Files under ``leave_out`` (the output
    folder, when it lies inside an input folder: the montages of an earlier run) are
    left out.  Returns the items and the camera RAW files passed over (extension ->
    count; read only with ``boda[raw]``)."""
    from boda.scan._walk import walk_as_scanned

    items: list[Item] = []
    raw_files: dict[str, int] = {}
    seen: set[str] = set()
    skip = None if leave_out is None else os.path.join(os.path.realpath(leave_out), "")

    def add(item: Item) -> None:
        key = os.path.normcase(os.path.abspath(item.path))
        if key in seen:  # "dir dir/a.png": a.png once
            return
        if skip is not None and os.path.realpath(item.path).startswith(skip):
            return
        seen.add(key)
        items.append(item)

    for source in inputs:
        if not source.is_dir():
            add(Item(str(source), source.name, folder=Path(os.path.abspath(source)).parent.name))
            continue
        for found in walk_as_scanned(source, raw_files=raw_files):
            name = os.fsdecode(found.relpath)
            add(Item(found.path, name, error=found.error, folder=class_folder(name, source)))
    return items, raw_files


def class_folder(relative: str, top: Path) -> str | None:
    """The folder that names the class of the file at ``relative`` under the folder
    ``top`` given, as torchvision's ImageFolder reads a dataset: the one directly under
    ``top`` (``cat/x/1.png``: ``cat``); for a file at the top, ``top``'s own name
    (``boda explain val/cat``: a ``cat``)."""
    parts = Path(relative).parts
    return parts[0] if len(parts) > 1 else (Path(os.path.abspath(top)).name or None)


def output_inside(output: Path | None, inputs: Sequence[Path]) -> Path | None:
    """``output`` when it lies strictly inside one of the input folders (``val -o
    val/explained``): its montages are then no input of a rerun.  None otherwise.

    Raises
    ------
    InvalidParameterError
        ``output`` *is* an input folder: its montages would lie among the photos
        (``a.jpg`` beside its montage ``a.png``) and be explained on the next run."""
    from boda.errors import InvalidParameterError

    if output is None:
        return None
    out = os.path.realpath(output)
    for source in inputs:
        if source.is_dir():
            top = os.path.realpath(source)
            if out == top:
                raise InvalidParameterError(
                    f"--output {str(output)!r} is the input folder {str(source)!r}: its "
                    "montages would be mixed with the images and explained on the next run; "
                    f"choose another folder, such as {str(Path(source) / 'explained')!r} "
                    "(left out of the walk)"
                )
            if out.startswith(os.path.join(top, "")):
                return output
    return None


#: Folder names that say a dataset split, not a class (any case).
SPLIT_NAMES = frozenset(
    "train training test testing val valid validation dev eval holdout".split()
)


def split_hint(folders: Sequence[str | None], parent: str = "DIR") -> str:
    """A hint when class folders are split names (``dataset/train``, ``dataset/test``):
    the folder given was the dataset above its splits, so every split was taken for a
    class (``boda scan dataset`` is right there; labels want the split).  Empty
    otherwise."""
    splits = sorted({f for f in folders if f and f.casefold() in SPLIT_NAMES})
    if not splits:
        return ""
    named = ", ".join(repr(f) for f in splits)
    return (
        f"; {named} {'is a dataset split' if len(splits) == 1 else 'are dataset splits'}, "
        f"not {'a class' if len(splits) == 1 else 'classes'}: give each split's folder "
        f"({os.path.join(parent, splits[0])}), whose folders are the classes"
    )


def folder_class(folder: str | None, classes: Sequence[str] | None) -> int | None:
    """The class a folder name stands for: one of ``classes`` (any case, ``_`` or
    ``-`` for a space: ``sports-car`` is ``sports car``), else a whole number in
    range (folders named ``0`` to ``9``); None when it matches none."""
    if not folder:
        return None

    def key(text: str) -> str:
        return " ".join(text.replace("_", " ").replace("-", " ").casefold().split())

    if classes:
        keys = [key(c) for c in classes]
        if key(folder) in keys:
            return keys.index(key(folder))
    if folder.isascii() and folder.isdigit() and (classes is None or int(folder) < len(classes)):
        return int(folder)
    return None


def accuracy(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Top-1 accuracy over the records with a ``label``, and the confusions: each
    (label, predicted) pair that differs, with its count, most frequent first."""
    labelled = [r for r in records if r.get("label") is not None and "predictions" in r]
    right = sum(r["correct"] for r in labelled)
    pairs: dict[tuple[str, str], int] = {}
    for r in labelled:
        if not r["correct"]:
            pair = (r["label"]["name"], r["predictions"][0]["name"])
            pairs[pair] = pairs.get(pair, 0) + 1
    confusions = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "labelled": len(labelled),
        "correct": right,
        "top1": right / len(labelled) if labelled else None,
        "unlabelled": sum(1 for r in records if "predictions" in r and r.get("label") is None),
        "confusions": [{"label": a, "predicted": b, "count": n} for (a, b), n in confusions],
    }


def assign_outputs(items: list[Item], folder: Path) -> None:
    """Give each item its montage: ``folder/<name without extension>.png``.

    Names that would clash (``a.jpg`` and ``a.png``; ``x/1.png`` from two
    folders; ``A.png`` and ``a.png`` on a case-insensitive disk) get ``-2``,
    ``-3``... in input order, so no montage replaces another one."""
    taken: set[str] = set()
    for item in items:
        if item.error is not None:
            continue
        stem = Path(item.name).with_suffix("")
        candidate, n = stem.with_name(stem.name + ".png"), 1
        while candidate.as_posix().casefold() in taken:
            n += 1
            candidate = stem.with_name(f"{stem.name}-{n}.png")
        taken.add(candidate.as_posix().casefold())
        item.output = folder / candidate


def check_outputs(items: list[Item], folder: Path, *, overwrite: bool) -> None:
    """Before any work: ``folder`` can be a folder of montages, no montage would
    replace an input, and none exists unless ``overwrite``.

    Raises
    ------
    InvalidParameterError
        Any of these; the message names the files (the first few) and the fix.
    """
    from boda.cli._common import check_output
    from boda.errors import InvalidParameterError
    from boda.io import SUPPORTED_EXTENSIONS

    if folder.exists() and not folder.is_dir():
        raise InvalidParameterError(
            f"--output {str(folder)!r} is a file; with several images (or a folder) -o "
            "names a folder that receives one montage per image"
        )
    if not folder.exists() and folder.suffix.lower() in SUPPORTED_EXTENSIONS:
        raise InvalidParameterError(
            f"--output {str(folder)!r} looks like an image file, but with several images "
            "(or a folder) -o names a folder that receives one montage per image"
        )
    targets = [item.output for item in items if item.output is not None]
    inputs = {os.path.realpath(item.path) for item in items}
    clobbered = [t for t in targets if os.path.realpath(t) in inputs]
    if clobbered:
        raise InvalidParameterError(
            f"refusing to overwrite the input {str(clobbered[0])!r} with its montage; "
            "choose another --output folder"
        )
    if not overwrite:
        from boda.cli._explain_gallery import GALLERY_NAME

        existing = [t for t in [*targets, folder / GALLERY_NAME] if t.exists()]
        if existing:
            named = ", ".join(repr(str(t)) for t in existing[:3])
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            raise InvalidParameterError(
                f"--output: {len(existing)} of its files (montages, index.html) already "
                f"exist{'s' * (len(existing) == 1)} ({named}{more}); add --overwrite to "
                "replace them, or choose another output folder"
            )
    if targets:
        # The nearest existing folder is writable; the folders made are removed
        # again (when empty) if the command fails.
        check_output(targets[0], overwrite=True)


def explain_one(
    img: np.ndarray,
    lm: LoadedModel,
    methods: list[str],
    *,
    target: int | None,
    layer: str | None,
    size: int | None,
    normalize: bool,
    metrics: bool,
) -> tuple[ImageExplanation, dict[str, dict[str, float]] | None]:
    """:func:`boda.explain.explain_image` of ``img``, and with ``metrics`` the
    faithfulness of each method's map (:func:`faithfulness`), measured on the
    model input the explanation used and its maps at that size
    (``ImageExplanation.model_input`` and ``.input_maps``)."""
    from boda.explain import explain_image

    res = explain_image(
        img, lm, methods, target=target, layer=layer, size=(size, size) if size else None,
        normalize_input=normalize,
    )  # fmt: skip
    if not metrics:
        return res, None
    scores = {
        method: faithfulness(lm.model, res.model_input, heat, res.target)
        for method, heat in res.input_maps.items()
    }
    return res, scores


def faithfulness(model: Any, x: Any, heat: np.ndarray, target: int | None) -> dict[str, float]:
    """The metrics of one map (at the input size of ``x``), from :mod:`boda.explain.metrics`
    with its defaults: deletion and insertion AUC (Petsiuk et al. 2018; 32 steps,
    deleted pixels set to 0 in the model's input space, inserted into a blurred
    copy), Average Drop % and Increase in Confidence % (Chattopadhay et al. 2018;
    for one image: its drop, and 100 or 0)."""
    import numpy as np
    import torch

    from boda.explain.metrics import average_drop_increase, deletion_curve, insertion_curve

    maps = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float32))[None]
    drop = average_drop_increase(model, x, maps, target)
    return {
        "deletion_auc": float(deletion_curve(model, x, maps, target).auc[0]),
        "insertion_auc": float(insertion_curve(model, x, maps, target).auc[0]),
        "average_drop": drop["average_drop"],
        "average_increase": drop["average_increase"],
    }


def summary(scores: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Method -> the mean of each metric over the explained images (the papers'
    averages over a data set: Average Drop and Increase are means by definition)."""
    if not scores:
        return {}
    return {
        method: {
            key: sum(s[method][key] for s in scores) / len(scores) for key, _, _ in METRICS
        }
        for method in scores[0]
    }


def metrics_line(values: dict[str, float], *, single: bool) -> str:
    """One map's metrics as console text (one image: "increase: yes/no")."""
    text = (
        f"deletion AUC {values['deletion_auc']:.3f}, insertion AUC "
        f"{values['insertion_auc']:.3f}, average drop {values['average_drop']:.1f}%"
    )
    if single:
        return text + f", confidence up: {'yes' if values['average_increase'] > 0 else 'no'}"
    return text + f", increase {values['average_increase']:.1f}%"


#: What the numbers mean, under the lines of one image...
METRICS_LEGEND = (
    "deletion AUC and average drop: lower is better; insertion AUC: higher is better; "
    "confidence up: on the image times its map"
)
#: ... and under the table of several.
TABLE_LEGEND = (
    "↓ lower is better, ↑ higher is better; increase: share of images whose class "
    "probability rose on the image times its map"
)


def metrics_table(means: dict[str, dict[str, float]], images: int) -> Any:
    """A Rich table of :func:`summary`, the best value of each column in bold."""
    from rich.table import Table

    table = Table(title=f"faithfulness over {images} image{'s' * (images != 1)} (mean)",
                  show_edge=False)  # fmt: skip
    table.add_column("method")
    for _, title, higher in METRICS:
        table.add_column(f"{title} {'↑' if higher else '↓'}", justify="right")
    best = {
        key: (max if higher else min)(m[key] for m in means.values())
        for key, _, higher in METRICS
    }
    for method, values in means.items():
        cells = []
        for key, _, _ in METRICS:
            digits = 3 if key.endswith("auc") else 1
            cell = f"{values[key]:.{digits}f}"
            cells.append(f"[bold]{cell}[/]" if values[key] == best[key] and len(means) > 1
                         else cell)  # fmt: skip
        table.add_row(method, *cells)
    return table
