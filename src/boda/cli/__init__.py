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
SIGTERM and SIGHUP (``timeout``, ``docker stop``, a closed ssh session) are
handled like Ctrl-C, with status 143 and 129.

A reader that goes away (``boda report DIR --json | head -1``) ends the command
quietly with status 141, 128 + SIGPIPE: no traceback, no "Exception ignored"
line.  Python ignores SIGPIPE, so a write into a closed pipe raises
``BrokenPipeError`` where cat, ls or git are killed by SIGPIPE, which the shell
reports as 141; boda exits with that same status, the one scripts already
expect of a producer cut short (``set -o pipefail`` treats it as they do).  Not
0: the output was not all written, and a caller that checks the status should
know it; not 1: nothing failed, a reader chose to stop.  It follows Python's
recipe (https://docs.python.org/3/library/signal.html#note-on-sigpipe): the
null device is put over the broken stream (``os.dup2``) so that what is still
buffered is dropped at exit instead of failing again.  The command stops as for
Ctrl-C (an exception through its clean-ups): the output folders it created are
removed and temporary files go, as when it fails.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

__all__ = ["app", "main"]

#: Exit status of an interrupted command (what shells use for SIGINT); a
#: command stopped by SIGTERM or SIGHUP exits with 128 + that signal's number.
EXIT_INTERRUPTED = 130

#: Exit status when the reader of stdout (or stderr) went away (``| head``):
#: 128 + SIGPIPE, what a process killed by SIGPIPE reports (see the module).
EXIT_BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)

#: Signals handled like Ctrl-C: partial outputs are removed and committed work
#: is kept, instead of the process dying in the middle of a write.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)

#: The signal of :data:`_STOP_SIGNALS` that stopped the command, if one did.
_stopped_by: int | None = None

#: Set by a command that reported its own interruption (the scan's summary says
#: what was kept): :func:`main` then adds no "interrupted" line.
interruption_reported = False


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived.  A KeyboardInterrupt, so every clean-up written
    for Ctrl-C (temporary files, the scan's last batch) runs for them too."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def interrupted_status() -> int:
    """Exit status of an interrupted command: 128 + the signal that stopped it."""
    return 128 + (_stopped_by or signal.SIGINT)


def _stop(signum: int, frame: object) -> None:
    global _stopped_by
    _stopped_by = signum
    raise Stopped(signum)


class StdoutError(Exception):
    """Standard output cannot be written (a full disk, a closed stream): :func:`main`
    says so in one line instead of a traceback."""


class GuardedStdout:
    """``sys.stdout`` whose write errors raise :class:`StdoutError`, whoever writes
    (Rich, Click, :func:`boda.cli._common.print_json`)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise StdoutError(exc) from None

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise StdoutError(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """Console entry point: runs the command, then ends the process (``sys.exit``).

    Once a command was interrupted, Ctrl-C, SIGTERM and SIGHUP are ignored until the
    process is gone (see :func:`_ignore_further_stops`).
    """
    global _stopped_by, interruption_reported
    _stopped_by = None
    interruption_reported = False
    previous = {}
    try:
        try:
            _tolerant_streams()
            for signum in _STOP_SIGNALS:
                # An ignored signal stays ignored (nohup ignores SIGHUP).
                if signal.getsignal(signum) == signal.SIG_DFL:
                    previous[signum] = signal.signal(signum, _stop)
            from boda.cli._app import app

            app()
        except BaseException as exc:
            if _interrupted(exc):
                _ignore_further_stops()
                previous.clear()  # ignored now: not given back to SIG_DFL
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if sys.stdout is not None:
                sys.stdout.flush()  # a full disk shows here, not in a traceback at exit
    except KeyboardInterrupt:  # while starting, or outside any command's own handling
        sys.stderr.write("interrupted\n")
        sys.exit(interrupted_status())
    except SystemExit as exc:
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            # Click's answer to a BrokenPipeError that reached it (a pipe on stderr,
            # or a write that bypassed GuardedStdout): exit 1 behind a wrapper.
            _broken_pipe()
        # Typer ends a command that a KeyboardInterrupt (Ctrl-C, or SIGTERM/SIGHUP
        # through _stop) stopped with 130, whatever the signal was: say so in one
        # line and exit 128 + the signal.  The scan reports its own interruption.
        if exc.code == EXIT_INTERRUPTED and not interruption_reported:
            if sys.stderr is not None:
                sys.stderr.write("interrupted\n")
            sys.exit(interrupted_status())
        raise
    except StdoutError as exc:
        _stdout_failed(exc)
    except BrokenPipeError:  # stderr's reader went away while Click reported an error
        _broken_pipe()


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc``, leaving the command, ends it as interrupted (Ctrl-C, SIGTERM,
    SIGHUP): a ``KeyboardInterrupt``, or the exit with the status of one."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    return isinstance(exc, SystemExit) and exc.code in (EXIT_INTERRUPTED, interrupted_status())


def _ignore_further_stops() -> None:
    """Ignore Ctrl-C, SIGTERM and SIGHUP from now on: the command was stopped and the
    process is on its way out, with the status of that stop.

    People press Ctrl-C two or three times.  One that came while Python ends (it joins
    the threads of the scan's worker pool, then runs its exit functions) would print a
    ``KeyboardInterrupt`` traceback ("Exception ignored in: <module 'threading'>"), and
    one that came after Python put the default handlers back (its last ~0.2 s, freeing
    modules) would kill the process by SIGINT, exit status -2 instead of 130.  A stop
    signal can only repeat the stop under way, so it is ignored; ``kill -9`` still ends
    a process that would not.  Only from the main thread (where signals are handled).
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, *_STOP_SIGNALS):
        signal.signal(signum, signal.SIG_IGN)


def _tolerant_streams() -> None:
    """Make stdout and stderr unable to crash on a character they cannot encode
    (an ISO-8859-1 locale, ``PYTHONIOENCODING=ascii``): it is written as a
    backslash escape.  Then guard stdout's write errors (:class:`GuardedStdout`)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (OSError, ValueError):  # already broken: it fails where written
                pass
    if sys.stdout is not None and not isinstance(sys.stdout, GuardedStdout):
        sys.stdout = GuardedStdout(sys.stdout)


def _stdout_failed(exc: StdoutError) -> None:
    """Say in one line that stdout could not be written, and exit 1."""
    import errno
    import os

    cause = exc.args[0] if exc.args else exc
    # What is still buffered would fail again when Python exits: send it to the
    # null device (what Python's documentation advises for a broken pipe).
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
    if isinstance(cause, OSError) and cause.errno == errno.EPIPE:
        _broken_pipe()  # the reader went away (``| head``): nothing to tell
    if sys.stdout is None:
        message = "standard output is closed; redirect it to a file (boda ... > out.txt)"
    else:
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else cause
        message = (
            f"cannot write to standard output ({reason}); redirect it to a file on a disk "
            "with free space (boda ... > out.txt)"
        )
    if sys.stderr is not None:
        sys.stderr.write(f"error: {message}\n")
    sys.exit(1)


def _broken_pipe() -> NoReturn:
    """End quietly with :data:`EXIT_BROKEN_PIPE` after a broken pipe: each standard
    stream whose reader went away gets the null device over its file descriptor
    (Python's recipe), so what is still buffered in it is dropped at exit instead
    of failing again ("Exception ignored ... BrokenPipeError", status 120); a stream
    whose reader is still there (stdout redirected to a file) keeps its data."""
    import os

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        stream = getattr(stream, "wrapped", stream)  # Click's PacifyFlushWrapper
        if stream is None:
            continue
        setattr(sys, name, stream)
        try:
            fd = stream.fileno()
            if _reader_gone(fd):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
        except (OSError, ValueError, AttributeError):
            pass
    sys.exit(EXIT_BROKEN_PIPE)


def _reader_gone(fd: int) -> bool:
    """Whether ``fd`` is a pipe or socket that nobody reads any more (poll reports
    an error or a hang-up on it); False for a file, a terminal, or where unknown."""
    import os
    import select
    import stat

    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)) or not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def __getattr__(name: str) -> Any:
    if name == "app":  # the Typer app, loaded on first use
        from boda.cli._app import app

        return app
    raise AttributeError(f"module 'boda.cli' has no attribute {name!r}")
