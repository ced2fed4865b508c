"""Heavy or optional modules imported on first use, so that `boda scan` (which
never needs them) does not pay for them at start-up (SciPy's ndimage alone is
~0.15 s), and a missing optional one gives a clear error."""

from __future__ import annotations

from types import ModuleType

from boda.errors import MissingDependencyError

__all__ = ["require_torch", "scipy_ndimage"]


def scipy_ndimage() -> ModuleType:
    """``scipy.ndimage``, imported on the first call."""
    from scipy import ndimage

    return ndimage


def require_torch(feature: str) -> ModuleType:
    """``torch``, or :class:`~boda.errors.MissingDependencyError` naming ``feature``
    and the ``boda[torch]`` extra when PyTorch is not installed."""
    try:
        import torch
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise MissingDependencyError("PyTorch", "torch", feature) from None
    return torch
