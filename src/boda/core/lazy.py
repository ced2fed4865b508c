"""Heavy or optional modules imported on first use, so that `boda scan` (which
never needs them) does not pay for them at start-up (SciPy's ndimage alone is
~0.15 s), and a missing optional one gives a clear error."""

from __future__ import annotations

from types import ModuleType

from boda.errors import MissingDependencyError

__all__ = ["MAX_CPU_THREADS", "require_torch", "scipy_ndimage"]


def scipy_ndimage() -> ModuleType:
    """``scipy.ndimage``, imported on the first call."""
    from scipy import ndimage

    return ndimage


#: Most torch CPU threads boda sets (:func:`boda.nn.set_cpu_threads`, the CLI's
#: ``--threads``), here where the CLI reads it without importing torch: above every
#: machine's core count, and far below the counts that crash the process (10**6: a
#: segmentation fault in the OpenMP runtime; 2**31 - 1: libgomp's "Out of memory
#: allocating 463856469096 bytes"; 2**63: torch's overflow error).
MAX_CPU_THREADS = 1024


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
