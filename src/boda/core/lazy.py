"""Heavy modules imported on first use, so that `boda scan` (which never needs
them) does not pay for them at start-up (SciPy's ndimage alone is ~0.15 s)."""

from __future__ import annotations

from types import ModuleType

__all__ = ["scipy_ndimage"]


def scipy_ndimage() -> ModuleType:
    """``scipy.ndimage``, imported on the first call."""
    from scipy import ndimage

    return ndimage
