"""File names as text a person can read, whatever their bytes."""

from __future__ import annotations

import os
import unicodedata

__all__ = ["is_utf8", "printable", "visible"]

#: Bidirectional controls: they reorder the text after them, so a name can
#: pose as another (``photo\u202egnp.exe`` reads as ``photoexe.png``).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


def is_utf8(name: bytes) -> bool:
    """Whether the file name ``name`` (bytes) is UTF-8 text, so its ``str`` is exact.

    >>> is_utf8("été.jpg".encode()), is_utf8(b"\\xe9t\\xe9.jpg")
    (True, False)
    """
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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


def visible(name: str | bytes | os.PathLike) -> str:
    """:func:`printable` ``name`` with control and bidi characters shown as escapes.

    A newline, tab or escape in a file name would otherwise print as a line
    break, a space or a terminal command, and a right-to-left override would
    silently reorder the rest of the name; each is shown as its Python escape
    (``\\n``, ``\\t``, ``\\x1b``, ``\\u202e``) so the name on screen is the name on disk.

    Examples
    --------
    >>> print(visible("new\\nline.png"), visible(b"rtl\\xe2\\x80\\xaegnp.exe"))
    new\\nline.png rtl\\u202egnp.exe
    """
    text = printable(name)
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) == "Cc"
        else ch
        for ch in text
    )


def html_text(value: object) -> str:
    """``value`` as HTML-escaped text for a page boda writes; a file name that is not
    UTF-8 (surrogate escapes) shows its bytes as ``\\xNN`` instead of failing."""
    import html

    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return html.escape(text)


def relative_href(target: str | os.PathLike, folder: str | os.PathLike) -> str:
    """A link from a page in ``folder`` to the file ``target``: the relative path,
    percent-encoded byte for byte (``#``, ``%``, ``?`` and non-UTF-8 names resolve), so
    the page keeps working when the two are moved together."""
    from urllib.parse import quote

    relative = os.path.relpath(os.path.abspath(target), os.path.abspath(folder))
    return quote(os.fsencode(relative.replace(os.sep, "/")))
