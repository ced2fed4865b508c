"""File names as text a person can read, whatever their bytes."""

from __future__ import annotations

import os

__all__ = ["printable"]


def printable(name: str | bytes | os.PathLike) -> str:
    """``name`` with the bytes that are not UTF-8 shown as U+FFFD.

    A file name on Linux is bytes; Python keeps undecodable ones as surrogate
    escapes, which no terminal, HTML page or JSON text can hold.

    Examples
    --------
    >>> printable(b"trip\\xff.jpg")
    'trip\\ufffd.jpg'
    """
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    return raw.decode("utf-8", errors="replace")
