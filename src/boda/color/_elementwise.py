"""Per-colour conversions in cache-sized blocks, and the exact ``mod`` steps they need.

A conversion made of a dozen NumPy steps over a whole image streams a dozen
full-size temporaries through memory; a block's fit in a core's L2 cache.  Each
colour's result depends on that colour alone and every step is elementwise, so
the blocks give the floats of one whole-array pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["BLOCK_COLOURS", "blockwise", "wrap_at", "wrap_negative"]

#: Colours per block: a block's dozen scratch arrays (128 kB each in float32) stay in
#: a core's L2 cache.  The results do not depend on it.
BLOCK_COLOURS = 1 << 15


def blockwise(values: np.ndarray, convert: Callable[[np.ndarray, np.ndarray], None]) -> np.ndarray:
    """``convert(rows, out)`` on consecutive blocks of the ``(..., 3)`` array ``values``:
    ``rows`` is the block's ``(3, n)`` components (contiguous), ``out`` its ``(n, 3)``
    slice of the result, of ``values``' shape and dtype."""
    flat = values.reshape(-1, 3)
    out = np.empty(flat.shape, values.dtype)
    for start in range(0, flat.shape[0], BLOCK_COLOURS):
        stop = start + BLOCK_COLOURS
        # One transposed copy: the components' steps then run on contiguous rows.
        convert(np.ascontiguousarray(flat[start:stop].T), out[start:stop])
    return out.reshape(values.shape)


def wrap_negative(x: np.ndarray, period: float) -> None:
    """``x %= period`` in place, for ``x`` in ``(-period, period)`` (or NaN).

    ``np.remainder`` is a slow scalar loop; on that range it is ``x + period`` (rounded
    the same) for ``x < 0`` and ``x`` otherwise, ``-0`` becoming ``+0``: exactly
    ``x + period * (x < 0)``, since ``-0 + 0 = +0`` and ``NaN + 0`` is NaN.
    """
    x += np.multiply(x < 0, x.dtype.type(period))


def wrap_at(x: np.ndarray, period: float) -> None:
    """``x %= period`` in place, for ``x`` in ``[0, 2 period)`` (or NaN): ``x - period``
    where ``x >= period``, which is exact there (Sterbenz), as ``np.remainder``'s is."""
    x -= np.multiply(x >= period, x.dtype.type(period))
