"""The ``boda`` Typer app: every command registered (see :mod:`boda.cli`).

The CLI holds no algorithms: each command module in this package parses its
arguments, calls one public library function and presents the result.  A
command module exposes ``register(app: typer.Typer) -> None``; add its name to
``_COMMAND_MODULES`` to make it part of ``boda``.  Heavy imports (torch,
matplotlib) belong inside the command functions so ``boda --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

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
]

app = typer.Typer(
    name="boda",
    help="boda (보다, 'to see'): look into images. Run 'boda COMMAND --help' for examples.",
    epilog=EXIT_STATUS_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
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


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)
for _command in app.registered_commands:  # one exit-status table, in every command's help
    _command.epilog = (_command.epilog + "\n\n" if _command.epilog else "") + EXIT_STATUS_HELP
