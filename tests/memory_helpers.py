"""Peak memory of one call, shared by the big-image tests (imported as ``import memory_helpers``).

tracemalloc counts allocations, not time: numpy reports its buffers to it, so a bound
on the peak is a property of the code, not of the machine's load.
"""

from __future__ import annotations

import tracemalloc


def peak_bytes(fn, *args, **kwargs) -> int:
    """Peak traced allocation of ``fn(*args, **kwargs)`` above what was held before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
