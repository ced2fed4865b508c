"""Numbers given by users: what a value stands for, when it is one."""

from __future__ import annotations

import math
import numbers

__all__ = ["finite_float", "finite_real", "real_number", "whole_number"]


def finite_float(value: object) -> float | None:
    """``value`` as a float, or None when it is not a finite number.

    Strings such as ``"0.3"`` (command-line values) and numpy scalars count;
    NaN, infinities and things ``float()`` refuses do not.

    Examples
    --------
    >>> finite_float("0.3"), finite_float(float("nan")), finite_float("x")
    (0.3, None, None)
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def finite_real(value: object) -> float | None:
    """``value`` as a float when it is a finite real number (:func:`real_number`:
    not a bool or a string), else None; an integer beyond float's range is None too.

    For stored values that may have been edited by hand (a score stored as text).

    Examples
    --------
    >>> finite_real(0.5), finite_real("0.5"), finite_real(True), finite_real(10**400)
    (0.5, None, None, None)
    """
    if not real_number(value):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def whole_number(value: object) -> bool:
    """Whether ``value`` is a Python or numpy integer: not a bool (``True == 1``), a
    float (``1.0 == 1``) or a string.

    Examples
    --------
    >>> import numpy as np
    >>> whole_number(3), whole_number(np.int64(3)), whole_number(True), whole_number(3.0)
    (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def real_number(value: object) -> bool:
    """Whether ``value`` is a Python or numpy real number (NaN and infinities
    included): not a bool (``True == 1``) or a string (``"0.5"``).

    Examples
    --------
    >>> import numpy as np
    >>> real_number(0.5), real_number(np.float32(2)), real_number(True), real_number("0.5")
    (True, True, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
