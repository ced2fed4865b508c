"""Helpers shared by the command modules: errors, JSON output, consoles."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from boda.errors import BodaError, InvalidParameterError


def _ignore_bad_columns() -> None:
    """Forget a ``COLUMNS`` that is not a positive number of columns: Rich would
    take ``COLUMNS=0`` as a width of 0 and print nothing, error messages included."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and not (columns.strip().isdigit() and int(columns) > 0):
        del os.environ["COLUMNS"]


_ignore_bad_columns()

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
    "not be read; 130 interrupted (Ctrl-C); 143, 129 stopped by SIGTERM, SIGHUP (handled "
    "like Ctrl-C: no partial files, committed scan results kept)."
)

F = TypeVar("F", bound=Callable[..., Any])


def shown(value: object) -> str:
    """``value`` (a path or a message) as console text: Rich markup escaped, the
    undecodable bytes of a non-UTF-8 file name shown as U+FFFD instead of
    crashing the output, and control characters (a newline or an escape in a
    file name) shown as escapes, so one record stays one line."""
    from boda.core.text import visible

    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:  # an ASCII file-system encoding (LC_ALL=C, PYTHONUTF8=0)
        raw = text.encode("utf-8", "surrogateescape")
    return escape(visible(raw))


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
    an image extension boda can write, and its folder can be made and written to."""
    from boda.io import prepare_image_output

    refuse_overwriting_inputs(output, *inputs)
    prepare_image_output(output)
    check_writable_folder(output)


def check_output(output: Path) -> Path:
    """Before any work: ``output`` is not a folder, and its folder can be made and
    written to (a report, a CSV table, a figure)."""
    from boda.io import prepare_output

    path = prepare_output(output)
    check_writable_folder(path)
    return path


def check_writable_folder(output: Path) -> None:
    """Raise :class:`boda.errors.OutputError` if the folder of ``output`` may not
    be written to: found before minutes of work, not after."""
    from boda.errors import OutputError

    folder = output.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {str(output)!r}: its folder {str(folder) or '.'!r} is not writable "
            "(Permission denied or a read-only disk); choose another output path"
        )


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


def quiet_matplotlib_config() -> None:
    """Give matplotlib a temporary config folder when its own cannot be written (a
    read-only or missing HOME): it would otherwise warn about it in two lines on
    every run.  Call before matplotlib is imported; a set ``MPLCONFIGDIR`` wins."""
    if "MPLCONFIGDIR" in os.environ or "matplotlib" in sys.modules:
        return
    home = os.path.expanduser("~")
    bases = (
        os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
        os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"),
    )
    for base in bases:  # where matplotlib keeps its settings and its font cache
        folder = os.path.join(base, "matplotlib")
        with contextlib.suppress(OSError):
            os.makedirs(folder, exist_ok=True)
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
            import atexit
            import shutil
            import tempfile

            temporary = tempfile.mkdtemp(prefix="boda-matplotlib-")
            atexit.register(shutil.rmtree, temporary, True)
            os.environ["MPLCONFIGDIR"] = temporary
            return


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

    # Off when stderr is not a terminal: a bar that clears itself shows nothing
    # in a log file, but would leave an empty line there.
    bar = Progress(
        TextColumn(f"[bold]{escape(label)}"), BarColumn(), TaskProgressColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
        console=err_console, disable=not (enabled and err_console.is_terminal), transient=True,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (NaN/inf become null)."""
    _stdout().write(_json_text(data) + "\n")


def print_json_array(items: Iterable[Any]) -> None:
    """Write ``items`` as a JSON array to stdout, one item at a time: the same text
    as :func:`print_json` of the list, in constant memory."""
    out = _stdout()
    first = True
    for item in items:
        text = _json_text(item)
        out.write(("[\n" if first else ",\n") + "  " + text.replace("\n", "\n  "))
        first = False
    out.write("[]\n" if first else "\n]\n")


def _stdout() -> Any:
    if sys.stdout is None:  # started with stdout closed (``>&-``)
        from boda.cli import StdoutError

        raise StdoutError(OSError("standard output is closed"))
    return sys.stdout


def _json_text(data: Any) -> str:
    """``data`` as JSON text; non-ASCII characters as ``\\u`` escapes where stdout's
    encoding (an ISO-8859-1 locale, ``PYTHONIOENCODING=ascii``) cannot hold them,
    so the output is valid JSON either way."""
    text = json.dumps(_clean(data), indent=2, ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
        except (UnicodeEncodeError, LookupError):
            text = json.dumps(_clean(data), indent=2, ensure_ascii=True)
    return text


def _clean(value: Any) -> Any:
    """``value`` ready for JSON: NaN and infinities as None, numpy values as Python ones.

    Exact built-in types are tested first: a million catalog records pass
    through here, and the generic checks below cost most of the export's time.
    """
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): _clean(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_clean(v) for v in value]
    return _clean_other(value)


def _clean_other(value: Any) -> Any:
    """:func:`_clean` for subclasses of the built-in types and numpy values."""
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
