"""The ``boda`` Typer app: every command registered (see :mod:`boda.cli`).

The CLI holds no algorithms: each command module in this package parses its
arguments, calls one public library function and presents the result.  A
command module exposes ``register(app: typer.Typer) -> None``; add its name to
``_COMMAND_MODULES`` to make it part of ``boda``.  Heavy imports (torch,
matplotlib) belong inside the command functions so ``boda --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from boda import __version__
from boda.cli._common import EXIT_STATUS_HELP

_COMMAND_MODULES = [
    "boda.cli.color_cmd",
    "boda.cli.scan_cmd",
    "boda.cli.explain_cmd",
    "boda.cli.edit_cmd",
    "boda.cli.quality_cmd",
    "boda.cli.edges_cmd",
    "boda.cli.cutout_cmd",
    "boda.cli.serve_cmd",
    "boda.cli.probe_cmd",
    "boda.cli.mark_cmd",
    "boda.cli.map_cmd",
]

def fit_examples(text: str, width: int) -> str:
    """``text`` (an epilog) with each line of its ``\\b`` blocks (the examples, kept
    as written) that is wider than ``width`` broken between words into shell
    continuation lines (`` \\``), so a narrow terminal never wraps a command in
    the middle and every piece still pastes as one command."""
    paragraphs = text.split("\n\n")
    for i, paragraph in enumerate(paragraphs):
        lines = paragraph.split("\n")
        if lines[0].strip() != "\b":
            continue
        fitted = [lines[0]]
        for line in lines[1:]:
            fitted.extend(_fit_line(line, width))
        paragraphs[i] = "\n".join(fitted)
    return "\n\n".join(paragraphs)


def _fit_line(line: str, width: int) -> list[str]:
    if len(line) <= width or not line.strip():
        return [line]
    lead = line[: len(line) - len(line.lstrip())]
    words = line.split()
    comment = words[0] == "#"
    if not comment:  # an option stays on the line of its value: "--focus-at 420,310"
        units: list[str] = []
        for word in words:
            if units and units[-1].startswith("-") and " " not in units[-1] and (
                not word.startswith("-")
            ):
                units[-1] += " " + word
            else:
                units.append(word)
        words = units
    more, end = (lead + "# ", "") if comment else (lead + "    ", " \\")
    out: list[str] = []
    current = lead + words[0]
    for k, word in enumerate(words[1:], 2):
        room = 0 if k == len(words) else len(end)
        if len(current) + 1 + len(word) + room > width and current.strip() not in ("", "#"):
            out.append(current + end)
            current = more + word
        else:
            current += " " + word
    return [*out, current]


_Context = TyperCommand.context_class  # Click's (Typer's own copy of it in Typer >= 0.20)
_TEXTWRAP = importlib.import_module(
    _Context.formatter_class.__module__.rsplit(".", 1)[0] + "._textwrap"
)


@contextlib.contextmanager
def _whole_words() -> Iterator[None]:
    """Click's text wrapping without breaking a word: not at a hyphen (``no-clip``,
    ``8-neighbour``) and not a long word (a path) in the middle."""
    original = _TEXTWRAP.TextWrapper

    class Wrapper(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.break_on_hyphens = self.break_long_words = False

    _TEXTWRAP.TextWrapper = Wrapper
    try:
        yield
    finally:
        _TEXTWRAP.TextWrapper = original


class _Formatter(_Context.formatter_class):  # type: ignore[misc, valid-type]
    def write_text(self, text: str) -> None:
        with _whole_words():
            super().write_text(text)

    def write_dl(self, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
        with _whole_words():
            super().write_dl(rows, col_max, col_spacing)


class _BodaContext(_Context):  # type: ignore[misc, valid-type]
    formatter_class = _Formatter


def _argument_name(param: Any) -> str:
    """An argument as the help writes it: its metavar (``IMAGE``, ``DIR``) or its
    name in capitals, never a Python type (``<str>``, ``<list[str]>``)."""
    name = param.metavar or param.name.upper()
    return name + ("..." if param.nargs != 1 else "")


class _PlainHelp:
    """Help as Click's formatter writes it: words never broken, arguments by name,
    and the examples fitted to the width (:func:`fit_examples`)."""

    epilog: str | None
    context_class = _BodaContext

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        if self.epilog:
            # The epilog is indented by 2 under the formatter's current indent.
            width = formatter.width - formatter.current_indent - 2
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(fit_examples(inspect.cleandoc(self.epilog), width))


class BodaCommand(_PlainHelp, TyperCommand):
    """Every boda command (see :class:`_PlainHelp`)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((_argument_name(param), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class BodaGroup(_PlainHelp, TyperGroup):
    """``boda`` and ``boda color`` (see :class:`_PlainHelp`)."""


#: Options every command and group takes: ``-h`` as well as ``--help``.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

# Help is Click's plain formatter (rich_markup_mode=None), not Rich's panels: its
# definition lists never cut an option name or split a word at any width, a
# pipe or ``less`` gets plain text, and no markup can show literally.  Examples
# are kept as written and fitted to the width (:func:`fit_examples`).
app = typer.Typer(
    name="boda",
    help="boda (보다, 'to see'): look into images. Run 'boda COMMAND --help' for examples.",
    epilog=EXIT_STATUS_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
    cls=BodaGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"boda {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """boda: look into images."""


def _with_exit_status(info) -> None:
    """Add the exit-status table to a command's (or group's) epilog."""
    info.epilog = (info.epilog + "\n\n" if info.epilog else "") + EXIT_STATUS_HELP


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)
for _command in app.registered_commands:  # one exit-status table, in every command's help
    _with_exit_status(_command)
    _command.cls = BodaCommand if _command.cls in (None, TyperCommand) else _command.cls
for _group in app.registered_groups:  # and in every group's (boda color) and its commands'
    _with_exit_status(_group.typer_instance.info)
    _group.typer_instance.info.cls = BodaGroup
    for _command in _group.typer_instance.registered_commands:
        _with_exit_status(_command)
        _command.cls = BodaCommand if _command.cls in (None, TyperCommand) else _command.cls
