"""Helpers shared by the command modules: errors, JSON output, consoles."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from boda.errors import BodaError, InvalidParameterError

#: Human output goes to stdout; progress and errors go to stderr so that
#: ``--json`` output stays machine-readable.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

#: Exit status of a command that could not do its work: an unreadable input,
#: an unwritable output, a broken catalog, a model that does not load or run.
EXIT_FAILURE = 1
#: Exit status when the command was called wrongly (a bad option value, an
#: output path that is a folder or one of the inputs); Click's own usage errors
#: use it too.
EXIT_USAGE = 2

#: For every command's help and the README.
EXIT_STATUS_HELP = (
    "Exit status: 0 done; 1 failed (unreadable input, unwritable output, broken catalog "
    "or model); 2 bad usage (an option value, an output path); 3 scan: some files could "
    "not be read; 130 interrupted."
)

F = TypeVar("F", bound=Callable[..., Any])


def shown(value: object) -> str:
    """``value`` (a path or a message) as console text: Rich markup escaped, the
    undecodable bytes of a non-UTF-8 file name shown as U+FFFD instead of
    crashing the output, and control characters (a newline or an escape in a
    file name) shown as escapes, so one record stays one line."""
    from boda.core.text import visible

    return escape(visible(str(value)))


def refuse_overwriting_inputs(output: Path, *inputs: Path | None) -> None:
    """Raise if ``output`` is one of the command's input files (photo, mask, depth...).

    Nothing the user had may be lost: writing a result over the file it was
    computed from would destroy the original.
    """
    import os

    from boda.errors import InvalidParameterError

    for source in inputs:
        if source is None:
            continue
        same = output.resolve() == source.resolve() or (
            output.exists() and source.exists() and os.path.samefile(output, source)
        )
        if same:
            raise InvalidParameterError(
                f"refusing to overwrite the input {str(source)!r} with the output; "
                "choose another output path"
            )


def check_image_output(output: Path, *inputs: Path | None) -> None:
    """Before any work: ``output`` is not one of the inputs, is not a folder, has
    an image extension boda can write, and its folder can be made."""
    from boda.io import prepare_image_output

    refuse_overwriting_inputs(output, *inputs)
    prepare_image_output(output)


def refuse_same_outputs(**outputs: Path | None) -> None:
    """Raise if two of a command's outputs (given by option name) are one file,
    or one would be a folder holding the other: the second write would
    silently replace the first, or fail after it."""
    from boda.errors import InvalidParameterError

    seen: list[tuple[str, Path]] = []
    for option, path in outputs.items():
        if path is None:
            continue
        where = path.resolve()
        for other, other_where in seen:
            if where == other_where or where in other_where.parents or other_where in where.parents:
                raise InvalidParameterError(
                    f"{other} and {option} both write to {str(path)!r}; give each its own file"
                )
        seen.append((option, where))


def handle_errors(fn: F) -> F:
    """Turn :class:`boda.errors.BodaError` into a one-line message and an exit
    status: :data:`EXIT_USAGE` for a bad argument, else :data:`EXIT_FAILURE`."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BodaError as exc:
            # shown(): a file name such as "IMG_1 [edited].jpg" is not Rich markup.
            message = f"[bold red]error:[/] {shown(exc)}"
            err_console.print(message, highlight=False, soft_wrap=True)
            usage = isinstance(exc, InvalidParameterError)
            raise typer.Exit(EXIT_USAGE if usage else EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def progress_bar(label: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for long work, and the ``progress(done, total)``
    callback that moves it; removed when the work ends (``enabled=False``: none,
    e.g. with ``--json``)."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"[bold]{escape(label)}"), BarColumn(), TaskProgressColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
        console=err_console, disable=not enabled, transient=True,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (NaN/inf become null)."""
    sys.stdout.write(json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n")


def print_json_array(items: Iterable[Any]) -> None:
    """Write ``items`` as a JSON array to stdout, one item at a time: the same text
    as :func:`print_json` of the list, in constant memory."""
    first = True
    for item in items:
        text = json.dumps(_clean(item), indent=2, ensure_ascii=False)
        sys.stdout.write(("[\n" if first else ",\n") + "  " + text.replace("\n", "\n  "))
        first = False
    sys.stdout.write("[]\n" if first else "\n]\n")


def _clean(value: Any) -> Any:
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
