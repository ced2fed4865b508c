"""Helpers shared by the command modules: errors, JSON output, consoles."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from boda.cli._json import clean as _clean  # noqa: F401  (the name tests and callers use)
from boda.cli._json import dumps
from boda.errors import BodaError, InvalidParameterError


def _ignore_bad_columns() -> None:
    """Forget a ``COLUMNS`` that is not a positive number of columns: Rich would
    take ``COLUMNS=0`` as a width of 0 and print nothing, error messages included."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and not (columns.strip().isdigit() and int(columns) > 0):
        del os.environ["COLUMNS"]


_ignore_bad_columns()


class _LiveStdout:
    """``sys.stdout`` as it is at each write, for :data:`console`: a closed stdout
    (``>&-``) raises :class:`boda.cli.StdoutError` as :func:`print_json` does,
    where Rich would drop the text and the command would exit 0 having shown nothing."""

    def write(self, text: str) -> int:
        return _stdout().write(text)

    def flush(self) -> None:
        if sys.stdout is not None:
            sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout is not None and sys.stdout.isatty()

    def fileno(self) -> int:
        return _stdout().fileno()

    @property
    def encoding(self) -> str:
        return getattr(sys.stdout, "encoding", None) or "utf-8"


class _Console(Console):
    """Rich's console, ending the command like any other broken pipe when its
    reader went away (:func:`boda.cli._broken_pipe`: status 141, quietly); Rich's
    own answer puts the null device over stdout, whichever stream broke, and exits 1."""

    def on_broken_pipe(self) -> None:
        from boda.cli import _broken_pipe

        self.quiet = True
        _broken_pipe()


#: Human output goes to stdout; progress and errors go to stderr so that
#: ``--json`` output stays machine-readable.
console = _Console(file=_LiveStdout(), soft_wrap=True)  # type: ignore[arg-type]
err_console = _Console(stderr=True, soft_wrap=True)

#: Exit status of a command that could not do its work: an unreadable input,
#: an unwritable output, a broken catalog, a model that does not load or run.
EXIT_FAILURE = 1
#: Exit status when the command was called wrongly (a bad option value, an
#: output path that is a folder or one of the inputs, an image over the pixel
#: limit that an option lifts); Click's own usage errors use it too.
EXIT_USAGE = 2

#: For every command's help and the README.
EXIT_STATUS_HELP = (
    "Exit status: 0 done; 1 failed (unreadable input, unwritable output, broken catalog "
    "or model); 2 bad usage (a missing input, an option value, an output path; an "
    "existing output file needs --overwrite); 3 scan, explain, patches, similar, map on "
    "several files: some could not be read (the others are done); "
    "130 interrupted (Ctrl-C); 143, 129 stopped by SIGTERM, SIGHUP (handled like Ctrl-C: "
    "no partial files, committed scan results kept); 141 output cut short: its reader "
    "went away (a pipe into head), ended quietly as cat does."
)

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def warnings_as_notes(
    *categories: type[Warning], reword: Callable[[Warning], str] = str
) -> Iterator[None]:
    """Warnings of ``categories`` raised inside printed as ``note: ...`` lines on
    stderr (they are advice to the user, not Python's file-and-line report), each
    as ``reword`` puts it (a library's parameter name as the command's option, say);
    any other warning is shown as Python shows it, under the filters in force."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        for category in categories:
            warnings.simplefilter("always", category)
        try:
            yield
        finally:
            for warning in caught:
                if issubclass(warning.category, categories):
                    err_console.print(f"[yellow]note[/]: {shown(reword(warning.message))}",
                                      highlight=False)
                else:
                    warnings.showwarning(warning.message, warning.category,
                                         warning.filename, warning.lineno)


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


# A '[' and the backslashes before it.  Rich reads an odd run of backslashes before a
# tag-like '[...]' as an escape and an even one as backslashes, and drops one backslash
# before any other '[': rich.markup.escape covers only the first case, so a file name
# such as "a\[x.png" was shown as "a[x.png".
_BRACKET = re.compile(r"(\\*)\[(?=([a-z#/@][^[]*?])?)")


def class_text(index: int, name: str | None) -> str:
    """A class as the model commands say it: ``bird (class 2)``, or ``class 2`` for a
    model without class names (whose name is ``class 2`` already: it was said twice).

    >>> class_text(2, "bird"), class_text(2, "class 2"), class_text(2, None)
    ('bird (class 2)', 'class 2', 'class 2')
    """
    plain = f"class {index}"
    return plain if not name or name == plain else f"{name} ({plain})"


def escape(text: str) -> str:
    """``text`` as Rich markup that shows exactly ``text`` (checked against
    ``rich.markup.render`` on every string of up to 7 of ``\\[]a/#``), but for an odd
    run of backslashes at its end, which gets one more, as rich.markup.escape does:
    a tag after it (``[/]``) stays a tag."""
    markup = _BRACKET.sub(lambda m: (m.group(1) * 2 if m.group(2) else m.group(1)) + "\\[", text)
    if (len(markup) - len(markup.rstrip("\\"))) % 2:
        markup += "\\"
    return markup


def refuse_overwriting_inputs(output: Path, *inputs: Path | None) -> None:
    """Raise if ``output`` is one of the command's input files (photo, mask, depth...).

    Nothing the user had may be lost: writing a result over the file it was
    computed from would destroy the original.
    """
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


def overwrite_option(*, annotated: bool = True) -> Any:
    """The ``--overwrite`` option of every command that writes a file the user names
    (for ``Annotated[bool, ...] = False``, or with ``annotated=False`` as a default)."""
    text = "Replace output files that already exist (without it: refuse, exit 2)."
    if annotated:
        return typer.Option("--overwrite", help=text)
    return typer.Option(False, "--overwrite", help=text)


def given_path(text: str) -> Path:
    """A folder or output path as given.  An empty one (``boda scan "$PHOTOS"`` with
    the variable unset) is refused: as a Path it is ``.``, and the scan would catalog
    the current folder, or the report land in it."""
    if not text:
        raise typer.BadParameter("is empty (an unset shell variable?); give a path")
    return Path(text)


def _given_catalog(text: str) -> Path:
    """A ``--catalog`` as given: not empty (:func:`given_path`), and a path ending in
    ``/`` only where that folder exists (the slash, which Path drops, says "a folder":
    a new catalog was made as a file of that name)."""
    from boda.catalog._catalog import _SEPARATORS, folder_without_catalog

    path = given_path(text)
    if text.endswith(_SEPARATORS) and not path.is_dir():
        raise typer.BadParameter(folder_without_catalog(text))
    return path


def catalog_option(help: str = "Catalog file if not DIR/.boda.") -> Any:
    """The ``--catalog FILE`` option of the commands that read or write a folder's
    catalog (``catalog: Annotated[Path | None, catalog_option()] = None``)."""
    return typer.Option("--catalog", metavar="FILE", help=help, parser=_given_catalog)


_MAX_PIXELS_HELP = (
    "Refuse images of more pixels than this before decoding them (decompression-bomb "
    "guard; default 178956970, about 179 MP): N, NM for millions (250M), or none for "
    "no limit, for trusted files only.  An image given alone over it is refused (exit "
    "status 2); one in a folder is listed as unreadable and the rest go on (exit 3)."
)


def max_pixels_option(*, annotated: bool = True, help: str = _MAX_PIXELS_HELP) -> Any:
    """The ``--max-pixels`` option of every command that reads images (for
    ``Annotated[str | None, ...] = None``, or with ``annotated=False`` as a default);
    :func:`max_pixels_limit` turns its text into the readers' ``max_pixels``."""
    if annotated:
        return typer.Option("--max-pixels", metavar="N|none", help=help)
    return typer.Option(None, "--max-pixels", metavar="N|none", help=help)


#: Pillow's own pixel limit as it was before :func:`max_pixels_limit` lifted it;
#: put back when the command ends (:func:`handle_errors`).
_pillow_limits: list[int | None] = []


def max_pixels_limit(text: str | None) -> int | None:
    """The ``max_pixels`` of :func:`boda.io.read_image` for ``--max-pixels TEXT``:
    :data:`boda.io.DEFAULT_MAX_PIXELS` when not given, None for ``none``, else a
    positive whole number of pixels (``250M``: millions).  ``0`` is refused rather
    than read as "no limit": ``none`` says that without doubt.

    A limit above Pillow's own refusal (``2 * PIL.Image.MAX_IMAGE_PIXELS``, the same
    179 MP by default), or none, lifts Pillow's for the rest of the command (so a
    trusted PNG or TIFF above it can be read; boda's check then applies the limit
    to every format), and :func:`handle_errors` puts it back when the command ends."""
    from boda.io import DEFAULT_MAX_PIXELS

    if text is None:
        return DEFAULT_MAX_PIXELS
    word = text.strip().lower().replace("_", "")
    limit: int | None = None
    if word != "none":
        scale = 1
        for suffix in ("mp", "m"):
            if word.endswith(suffix):
                word, scale = word[: -len(suffix)], 1_000_000
                break
        try:
            number = float(word) * scale
        except ValueError:
            number = 0.0
        if not 1 <= number < float("inf"):  # NaN too
            raise InvalidParameterError(
                f"--max-pixels must be a positive number of pixels (e.g. 250000000 or 250M), "
                f"or none for no limit; got {text!r}"
            )
        limit = int(number)
    from PIL import Image

    pillow = Image.MAX_IMAGE_PIXELS
    if pillow is not None and (limit is None or limit > 2 * pillow):
        _pillow_limits.append(pillow)
        Image.MAX_IMAGE_PIXELS = None
    return limit


def _restore_pillow_limit() -> None:
    if _pillow_limits:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = _pillow_limits[0]
        _pillow_limits.clear()


def over_pixel_limit(exc: BaseException) -> bool:
    """Whether ``exc`` is a reader's refusal of an image over its pixel limit (every
    such message names the decompression-bomb guard): the way out is an option
    (``--max-pixels``, ``--max-side``), so the command exits as for a usage error."""
    from boda.errors import ImageReadError

    return isinstance(exc, ImageReadError) and "decompression-bomb" in exc.reason


def _fit_to_command(exc: BodaError, has_max_side: bool) -> BodaError:
    """``exc`` without the reader's advice about ``--max-side`` when the command has no
    such option (inpaint, refocus, quality...): only the way out of ``--max-pixels`` is
    left, and a JPEG the command reads at reduced size itself (quality) is
    said to be so instead of "at this max_side"."""
    from boda.errors import ImageReadError

    if has_max_side or not (isinstance(exc, ImageReadError) and over_pixel_limit(exc)):
        return exc
    from boda.io import _AT_THIS_MAX_SIDE, _PIXEL_LIMIT_GUARD, _PIXEL_LIMIT_WAY_OUT

    reason = exc.reason
    start, end = reason.find(_PIXEL_LIMIT_GUARD), reason.rfind(_PIXEL_LIMIT_WAY_OUT)
    if start >= 0 and end > start:  # every advice before "pass max_pixels=None" names max_side
        reason = reason[: start + len(_PIXEL_LIMIT_GUARD)] + reason[end:]
    reason = reason.replace(f"{_AT_THIS_MAX_SIDE} exceeds", " as this command reads it exceeds")
    return ImageReadError(exc.path, reason)


def quiet_option(*, short: bool = False, annotated: bool = True) -> Any:
    """The ``--quiet`` option of a command with a progress bar: no bar (errors and
    the result still show).  ``-q`` too where it means nothing else: not on the
    commands that write photos, where ``-q`` is ``--quality`` (refocus, inpaint)."""
    names = ("--quiet", "-q") if short else ("--quiet",)
    text = "No progress bar on stderr (errors and the result still show)."
    if annotated:
        return typer.Option(*names, help=text)
    return typer.Option(False, *names, help=text)


def check_input(path: Path, what: str) -> Path:
    """Before any work: the input ``path`` (given as ``what``: ``"image"``,
    ``"--mask"``...) exists and is not a folder.  Either mistake is in the
    command line, so it is a usage error (exit 2); a file that exists but cannot
    be decoded is a failure (exit 1) found when it is read."""
    if not path.exists():
        raise InvalidParameterError(
            f"{what} {str(path)!r}: no such file; check the path"
            + (" (a link to a missing file)" if path.is_symlink() else "")
        )
    if path.is_dir():
        raise InvalidParameterError(f"{what} {str(path)!r} is a folder; give a file")
    return path


@contextlib.contextmanager
def read_twice(path: Path) -> Iterator[Path]:
    """``path``, or where it is not a regular file (``<(curl ...)``, ``/dev/stdin``) a
    temporary copy of what it holds, for a command that decodes its input twice (at the
    scan's analysis size and at full size): the second read found the pipe drained and
    failed as an "empty file (0 bytes)".  Errors reading the copy name ``path``."""
    import shutil
    import stat
    import tempfile

    from boda.errors import ImageReadError

    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        regular = True  # missing or unreadable: the reader says so, naming the path
    if regular:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="boda-input-") as folder:
        copy = Path(folder) / (path.name or "input")
        try:
            with open(path, "rb") as source, open(copy, "wb") as target:
                shutil.copyfileobj(source, target)
        except OSError as exc:
            raise ImageReadError(path, exc.strerror or str(exc)) from None
        try:
            yield copy
        except ImageReadError as exc:
            raise ImageReadError(path, exc.reason) from None


@contextlib.contextmanager
def naming_input(what: str) -> Iterator[None]:
    """Prefix the :class:`boda.errors.ImageReadError` of a second input (``--mask``,
    ``--reference``) with the option that named it."""
    from boda.errors import ImageReadError

    try:
        yield
    except ImageReadError as exc:
        raise ImageReadError(exc.path, f"{exc.reason} (the {what} file)") from None


def check_same_size(what: str, found: tuple, image: tuple, advice: str) -> None:
    """Refuse a ``what`` map (``--mask``, ``--depth``) of ``found`` shape for an image of
    ``image`` shape: the command line paired files that do not belong together, a usage
    error (exit 2), not a failure to read them."""
    from boda.errors import InvalidParameterError

    if tuple(found[:2]) != tuple(image[:2]):
        # Sides swapped: most often one file's EXIF orientation tag was dropped (or its
        # pixels turned without it) by the program that wrote it; boda applies the tag.
        turned = (
            " (the same picture turned by 90 degrees? boda turns each file by its EXIF "
            "orientation tag, which one of them may have lost)"
            if (found[0], found[1]) == (image[1], image[0])
            else ""
        )
        raise InvalidParameterError(
            f"{what} is {found[1]}x{found[0]} but the image is {image[1]}x{image[0]}{turned}; "
            f"{advice}"
        )


def check_image_output(
    output: Path, *inputs: Path | None, overwrite: bool = False, option: str = "--output"
) -> None:
    """Before any work: ``output`` is not one of the inputs, is not a folder, has
    an image extension boda can write, does not exist (unless ``overwrite``),
    and its folder can be made and written to."""
    from boda._io_write import _image_format

    refuse_overwriting_inputs(output, *inputs)
    _not_a_folder(output)
    _image_format(output)
    check_output(output, overwrite=overwrite, option=option)


def check_output(output: Path, *, overwrite: bool = False, option: str = "--output") -> Path:
    """Before any work: ``output`` (a report, a CSV table, a figure, an image) is
    not a folder, does not exist unless ``overwrite`` is given, and the nearest
    existing folder on its path may be written to.  Nothing is created here: the
    missing folders are made when the file is written, and removed again (if still
    empty) when the command fails (:func:`handle_errors`).  A special file
    (``/dev/null``, a FIFO, ``/dev/stdout``) is written into as it is, never refused."""
    import stat

    output = _not_a_folder(output)
    try:
        special = not stat.S_ISREG(os.stat(output).st_mode)
    except OSError:  # missing, or a dangling link: a new file
        special = False
    if output.exists() and not special and not overwrite:
        raise InvalidParameterError(
            f"{option} {str(output)!r} already exists; add --overwrite to replace it, "
            "or choose another output path"
        )
    folder = Path(os.path.abspath(output)).parent
    missing = []
    while not folder.exists() and not folder.is_symlink():
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise InvalidParameterError(
            f"cannot write {str(output)!r}: {str(folder)!r} is a file, not a folder; "
            "choose another output path"
        )
    check_writable_folder(output, folder)
    _created_folders.extend(reversed(missing))  # outermost first
    return output


def _not_a_folder(output: Path) -> Path:
    from boda._io_write import _not_a_folder as refuse_folders  # one message for both layers

    return refuse_folders(output)


#: Folders that did not exist when an output was checked: the write creates them,
#: and a command that fails removes them again (when empty; never anything else).
_created_folders: list[Path] = []


def _remove_created_folders() -> None:
    for folder in reversed(_created_folders):  # innermost first
        with contextlib.suppress(OSError):
            folder.rmdir()  # only an empty folder goes
    _created_folders.clear()


def check_writable_folder(output: Path, folder: Path | None = None) -> None:
    """Raise :class:`boda.errors.OutputError` if ``folder`` (by default the folder
    of ``output``) may not be written to: found before minutes of work, not after."""
    from boda.errors import OutputError

    folder = output.parent if folder is None else folder
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {str(output)!r}: its folder {str(folder) or '.'!r} is not writable "
            "(Permission denied or a read-only disk); choose another output path"
        )


@contextlib.contextmanager
def options_for(*names: str, **renamed: str) -> Iterator[None]:
    """Name the command's options, not the library's parameters, in the
    :class:`boda.errors.InvalidParameterError` of a library call.

    A message that begins with one of the parameter ``names`` (``focus_at=...``,
    ``aperture must be...``, ``low, sigma do not apply...``) gets every such name
    written as its option (``--focus-at``, ``--aperture``...); ``renamed`` maps a
    parameter to an option of another name (``low_threshold="--low"``).
    """
    import re

    options = {name: "--" + name.replace("_", "-") for name in names} | renamed
    try:
        yield
    except InvalidParameterError as exc:
        text = str(exc)
        words = "|".join(re.escape(name) for name in sorted(options, key=len, reverse=True))
        pattern = rf"(?<![\w-])({words})(?![\w-])"
        if not re.match(pattern, text):
            raise
        text = re.sub(pattern, lambda m: options[m.group(1)], text)
        text = re.sub(r"^(--[\w-]+)=", r"\1 ", text)  # "focus_at=(1, 2)" -> "--focus-at (1, 2)"
        raise InvalidParameterError(text) from None


def examples(*lines: str, notes: str = "") -> str:
    """A command's epilog: ``Examples:`` and ``lines`` shown exactly as written (a
    Click ``\\b`` block: never rewrapped, so a command is never cut in two), then
    ``notes`` as a wrapped paragraph.  Keep each line within 56 characters, so the
    help fits 60 columns; a line starting with ``#`` is a comment for the next."""
    block = "\n".join(f"  {line}" for line in lines)
    return f"Examples:\n\n\b\n{block}" + (f"\n\n{notes}" if notes else "")


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


def scanned_ancestor(directory: Path) -> Path | None:
    """The nearest folder above ``directory`` that holds a scan's catalog, or None."""
    from boda.catalog import default_catalog_path

    for parent in directory.resolve().parents:
        if default_catalog_path(parent).is_file():
            return parent
    return None


def refuse_other_folders_catalog(catalog, directory: Path, command: str, outcome: str) -> None:
    """Refuse a ``--catalog`` that a scan made for another folder, which still exists:
    its paths name files there, not in ``directory`` (``boda scan`` refuses it too).

    A catalog inside ``directory`` is its own, wherever the disk is mounted; one whose
    folder is gone was most likely made before the folder moved, and is used.
    ``command`` (``mark``, ``report``) and ``outcome`` ("Nothing was marked") finish
    the message.
    """
    from boda.errors import InvalidParameterError

    stored = catalog.get_setting("root")
    here = str(directory.resolve())
    if not isinstance(stored, str) or stored == here or not Path(stored).is_dir():
        return
    if catalog.path.resolve().is_relative_to(here):
        return
    raise InvalidParameterError(
        f"the catalog {str(catalog.path)!r} was made for the folder {stored!r}, not {here!r}: "
        f"its paths name files there; give that folder ('boda {command} {shown(stored)} ... "
        f"--catalog {shown(str(catalog.path))}'). {outcome}"
    )


def refuse_sub_folder(directory: Path, command: str) -> None:
    """A folder without a catalog inside a scanned folder: say how ``command``
    (report, mark or serve) works on it from the scanned folder's catalog,
    rather than scanning it again (a second catalog whose marks the scanned
    folder's never sees)."""
    import shlex

    from boda.catalog import default_catalog_path
    from boda.errors import CatalogError

    if not directory.is_dir() or default_catalog_path(directory).is_file():
        return
    ancestor = scanned_ancestor(directory)
    if ancestor is None:
        return
    under = directory.resolve().relative_to(ancestor).as_posix()
    # the scanned folder as the user would type it: relative to the current folder if below it
    try:
        shown_ancestor = ancestor.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        shown_ancestor = str(ancestor)
    where = shlex.quote(shown_ancestor)
    how = {
        "report": f"report it from that folder's catalog with 'boda report {where} --under "
        f"{shlex.quote(under + '/')}' (and your other options)",
        "mark": f"mark its files in that folder's catalog with 'boda mark {where} PATH...' "
        "(the same paths)",
        "serve": f"browse that folder's catalog with 'boda serve {where}' (its files are "
        f"under {under}/)",
    }[command]
    raise CatalogError(
        f"no catalog at {str(default_catalog_path(directory))!r}: {str(directory)!r} is a "
        f"folder of the scanned folder {shown_ancestor!r}; {how}"
    )


def handle_errors(fn: F) -> F:
    """Turn :class:`boda.errors.BodaError` into a one-line message and an exit
    status: :data:`EXIT_USAGE` for a bad argument or an image over the pixel limit
    (:func:`over_pixel_limit`), else :data:`EXIT_FAILURE`.
    A command that fails (an error, an interrupt) removes the output folders it
    created (:func:`check_output`)."""
    has_max_side = "max_side" in inspect.signature(fn).parameters  # the option --max-side

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _created_folders.clear()
        failed = True
        try:
            result = fn(*args, **kwargs)
            failed = False
            return result
        except BodaError as exc:
            exc = _fit_to_command(exc, has_max_side)
            # shown(): a file name such as "IMG_1 [edited].jpg" is not Rich markup.
            message = f"[bold red]error:[/] {shown(exc)}"
            err_console.print(message, highlight=False, soft_wrap=True)
            usage = isinstance(exc, InvalidParameterError) or over_pixel_limit(exc)
            raise typer.Exit(EXIT_USAGE if usage else EXIT_FAILURE) from None
        except typer.Exit as exc:
            failed = exc.exit_code not in (0, None)
            raise
        except Exception as exc:
            import sqlite3

            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            # A catalog damaged after it was opened (one bad page): the commands that
            # read catalogs name the file in their own errors; this is the rest.
            err_console.print(
                f"[bold red]error:[/] a catalog could not be read or written ({shown(exc)}); "
                "if it is damaged, move it (DIR/.boda/catalog.db) away and scan again",
                highlight=False, soft_wrap=True,
            )
            raise typer.Exit(EXIT_FAILURE) from None
        finally:
            if failed:
                _remove_created_folders()
            _created_folders.clear()
            _restore_pillow_limit()

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
        out.write(("[\n  " if first else ",\n  ") + _json_text(item, level=1))
        first = False
    out.write("[]\n" if first else "\n]\n")


def _stdout() -> Any:
    if sys.stdout is None:  # started with stdout closed (``>&-``)
        from boda.cli import StdoutError

        raise StdoutError(OSError("standard output is closed"))
    return sys.stdout


def _json_text(data: Any, level: int = 0) -> str:
    """``data`` as JSON text (indented as an item ``level`` deep); non-ASCII characters
    as ``\\u`` escapes where stdout's encoding (an ISO-8859-1 locale,
    ``PYTHONIOENCODING=ascii``) cannot hold them, so the output is valid JSON either way."""
    text = dumps(data, level=level)
    if not text.isascii():
        try:
            text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
        except (UnicodeEncodeError, LookupError):
            text = dumps(data, ensure_ascii=True, level=level)
    return text
