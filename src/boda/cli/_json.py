"""Indented JSON text written several times faster than ``json.dumps(..., indent=2)``.

``json.dumps`` cannot use its C encoder when it indents (Python 3.11), and a
catalog of a million records spent most of its ``--json`` export in the
pure-Python one.  :func:`dumps` lays out dicts and lists itself, hands each
container holding only scalars to the C encoder in one call (with the
separators of its indentation level), and cleans values on the way (NaN and
infinities as null, numpy values as Python ones), so every value is visited
once.  Its text is byte for byte that of ``json.dumps(clean(value), indent=2,
ensure_ascii=...)``; ``tests/test_json_output.py`` checks it on random values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

__all__ = ["clean", "dumps"]

_c_make_encoder = getattr(_encoder, "c_make_encoder", None)
_SCALARS = frozenset({str, int, float, bool, type(None)})
_STR = frozenset({str})


def clean(value: Any) -> Any:
    """``value`` ready for JSON: NaN and infinities as None, numpy values as Python ones.

    Exact built-in types are tested first: a million catalog records may pass
    through here, and the generic checks below cost most of the time.
    """
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): clean(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [clean(v) for v in value]
    return _clean_other(value)


def _clean_other(value: Any) -> Any:
    """:func:`clean` for subclasses of the built-in types and numpy values."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _refuse(value: Any) -> Any:
    # The C encoder met a value that is not a plain scalar: lay it out in Python.
    raise TypeError(type(value).__name__)


def _writer(ensure_ascii: bool) -> Callable[[Any, str], str]:
    """``write(value, newline)``: ``value`` as indented JSON text, ``newline`` being
    the line break and indentation of the line it starts on ("\\n" at the top)."""
    string = _encoder.encode_basestring_ascii if ensure_ascii else _encoder.encode_basestring
    float_repr = float.__repr__
    int_repr = int.__repr__
    isfinite = math.isfinite
    scalars = _SCALARS
    str_only = _STR
    flat_encoders: dict[str, Any] = {}
    keys: dict[str, str] = {}  # a key as JSON text, with its ': '

    def flat(value: Any, inner: str) -> str | None:
        """A dict or list of plain scalars as one C encoder call, or None (a NaN)."""
        encode = flat_encoders.get(inner)
        if encode is None:
            # markers None: no cycle check (no containers); allow_nan False: a NaN
            # or an infinity raises, and is written as null by the Python path.
            encode = _c_make_encoder(
                None, _refuse, string, None, ": ", "," + inner, False, False, False
            )
            flat_encoders[inner] = encode
        try:
            return "".join(encode(value, 0))
        except ValueError:
            return None

    def write_dict(value: dict[Any, Any], newline: str) -> str:
        if not value:
            return "{}"
        inner = newline + "  "
        if str_only.issuperset(map(type, value)):
            if scalars.issuperset(map(type, value.values())):
                text = flat(value, inner)
                if text is not None:
                    return "{" + inner + text[1:-1] + newline + "}"
        else:  # as clean() does: keys as str(), a later duplicate's value wins
            value = {str(k): v for k, v in value.items()}
        items = []
        for k, v in value.items():
            key = keys.get(k)
            if key is None:
                if len(keys) > 10_000:  # constant memory, whatever the keys
                    keys.clear()
                key = keys[k] = string(k) + ": "
            kind = type(v)
            if kind is str:
                items.append(key + string(v))
            elif kind is float and isfinite(v):
                items.append(key + float_repr(v))
            elif kind is int:
                items.append(key + int_repr(v))
            else:
                items.append(key + write(v, inner))
        return "{" + inner + ("," + inner).join(items) + newline + "}"

    def write_list(value: list[Any] | tuple[Any, ...], newline: str) -> str:
        if not value:
            return "[]"
        inner = newline + "  "
        if scalars.issuperset(map(type, value)):
            text = flat(value, inner)
            if text is not None:
                return "[" + inner + text[1:-1] + newline + "]"
        items = [write(v, inner) for v in value]
        return "[" + inner + ("," + inner).join(items) + newline + "]"

    def write_other(value: Any, newline: str) -> str:
        value = _clean_other(value)
        kind = type(value)
        if kind is dict or kind is list:
            return write(value, newline)
        # What json's encoder does with the rest, in its order.
        if isinstance(value, str):
            return string(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int):
            return int_repr(value)
        if isinstance(value, float):
            return float_repr(value)
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")

    def write(value: Any, newline: str) -> str:
        kind = type(value)
        if kind is str:
            return string(value)
        if kind is float:
            return float_repr(value) if isfinite(value) else "null"
        if kind is int:
            return int_repr(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if kind is dict:
            return write_dict(value, newline)
        if kind is list or kind is tuple:
            return write_list(value, newline)
        return write_other(value, newline)

    write.caches = (keys, flat_encoders)  # type: ignore[attr-defined]  (for the tests)
    return write


def _plain_writer(ensure_ascii: bool) -> Callable[[Any, str], str]:
    """:func:`_writer` for a Python without json's C accelerator."""

    def write(value: Any, newline: str) -> str:
        text = json.dumps(clean(value), indent=2, ensure_ascii=ensure_ascii)
        return text.replace("\n", newline) if newline != "\n" else text

    return write


_make = _writer if _c_make_encoder is not None else _plain_writer
_WRITERS = (_make(False), _make(True))


def dumps(value: Any, *, ensure_ascii: bool = False, level: int = 0) -> str:
    """``json.dumps(clean(value), indent=2, ensure_ascii=ensure_ascii)``, faster.

    ``level`` indents the text as an element of a container nested ``level``
    deep (its first line not indented), as in an array written one item at a
    time.

    Raises
    ------
    TypeError
        A value JSON has no form for (``bytes``, a ``set``...), as ``json.dumps``.
    """
    return _WRITERS[ensure_ascii](value, "\n" + "  " * level)
