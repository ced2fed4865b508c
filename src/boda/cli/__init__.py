"""The ``boda`` command line (Typer + Rich).

The CLI holds no algorithms: each command module in this package parses its
arguments, calls one public library function and presents the result.  A
command module exposes ``register(app: typer.Typer) -> None``; add its name to
``_COMMAND_MODULES`` in :mod:`boda.cli._app` to make it part of ``boda``.
Heavy imports (torch, matplotlib) belong inside the command functions so
``boda --help`` stays fast.

This module imports nothing heavy itself: :func:`main` loads the app (numpy,
Pillow, Typer, Rich: about 0.3 s) inside its Ctrl-C handler, so an interrupt
during start-up ends quietly with status 130 like one during the work.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]

#: Exit status of an interrupted command (what shells use for SIGINT).
EXIT_INTERRUPTED = 130


def main() -> None:
    """Console entry point."""
    try:
        from boda.cli._app import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)


def __getattr__(name: str) -> Any:
    if name == "app":  # the Typer app, loaded on first use
        from boda.cli._app import app

        return app
    raise AttributeError(f"module 'boda.cli' has no attribute {name!r}")
