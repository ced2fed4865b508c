"""Whole-image arithmetic in cache-sized blocks, shared among the cores.

NumPy and OpenCV stream a whole array through memory at every step, so a
conversion of a 12 MP image made of twenty steps reads and writes ~200 bytes a
pixel; done a block at a time, each block's steps run in the CPU's cache.  Their
loops also release the GIL, so blocks can go to threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["run_in_blocks", "usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_in_blocks(
    n: int,
    block: int,
    make_worker: Callable[[], Callable[[int, int], None]],
    *,
    min_per_thread: int,
) -> None:
    """Call a worker on ``(start, stop)`` for consecutive blocks covering ``range(n)``.

    Up to :func:`usable_cores` threads, each with at least ``min_per_thread`` of
    the ``n`` items (fewer items: one thread, the caller's), take one contiguous run
    of whole blocks each; every thread first calls ``make_worker()`` for its own
    worker (scratch arrays made once a thread, say).  The partition into blocks
    depends on ``n`` and ``block`` only, never on the threads.  Every thread runs
    under the caller's NumPy error handling (``np.errstate``), as the caller's own
    thread would: a new thread starts with NumPy's defaults.
    """
    blocks = -(-n // block)
    workers = max(1, min(usable_cores(), n // max(min_per_thread, 1), blocks))

    def run(part: int) -> None:
        work = make_worker()
        first, last = blocks * part // workers, blocks * (part + 1) // workers
        for k in range(first, last):
            work(k * block, min((k + 1) * block, n))

    if workers == 1:
        run(0)
        return
    settings, callback = np.geterr(), np.geterrcall()

    def run_as_caller(part: int) -> None:
        with np.errstate(call=callback, **settings):
            run(part)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        # list(): a worker's exception is raised here
        list(pool.map(run_as_caller, range(workers)))
