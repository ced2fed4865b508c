"""The scan's worker processes: starting them warm, and getting every file's record
back even when a worker dies.

A worker can die without a Python exception: the kernel's out-of-memory killer
sends SIGKILL, a decoder library can crash.  ``multiprocessing.Pool`` then waits
forever for the lost task, so the scan hangs and the file is never recorded.
:func:`_iter_results` runs on a ``concurrent.futures.ProcessPoolExecutor``,
which reports a dead worker (``BrokenProcessPool``); the files it held are run
again in a fresh pool, then one at a time, and the file that kills a worker on
its own is recorded as unreadable with the reason, so the scan carries on (the
next scan tries it again, as it does every unreadable file).
"""

from __future__ import annotations

import collections
import concurrent.futures
import gc
import importlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool

from boda.catalog import ImageRecord
from boda.scan._walk import FoundFile

_log = logging.getLogger("boda.scan._pipeline")

#: Seconds without a finished file after which the results yield None, so the
#: caller can commit what it has (a file that takes minutes must not hold back
#: the records of the files before it).
HEARTBEAT_SECONDS = 1.0

Job = tuple[FoundFile, int, "int | None", bool]


def _worker_init(forked: bool, pillow_limit: int | None) -> None:
    # Ctrl-C (and a hang-up, which reaches the whole process group) is the parent's
    # to handle: it stops the pool and keeps what was committed.  SIGTERM is how the
    # pool stops its workers: a handler the parent installed must not outlive fork.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    # Parallelism comes from the processes; BLAS threads inside them only contend.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # every BLAS/OpenMP pool loaded so far, OpenCV's own OpenBLAS included
    # ...and the OpenMP runtime LibRaw (rawpy) loads on the worker's first RAW file,
    # which reads this variable when it loads: one demosaic thread per worker.
    os.environ["OMP_NUM_THREADS"] = "1"
    # rawpy warns, in every worker of a pool whose default start method is 'fork', that
    # fork and OpenMP may deadlock.  They do when the parent had an OpenMP thread pool
    # when it forked (GNU libgomp's pool does not survive fork).  _start_pool forks
    # only while no OpenMP runtime is loaded in the parent at all (rawpy is never
    # imported there by a scan), and uses a forkserver for RAW files otherwise: the
    # runtime a worker uses is always one it loaded itself, after the fork.  rawpy
    # cannot tell (it looks at the default start method's name, which a forkserver
    # worker inherits too), so its warning would only alarm.
    warnings.filterwarnings(
        "ignore", message="rawpy is being used in a process created by multiprocessing",
        category=RuntimeWarning,
    )
    from PIL import Image

    # Pillow's own pixel limit as the scanning process has it (lifted for a trusted
    # folder, see scan()): a spawned worker would start from Pillow's default.
    Image.MAX_IMAGE_PIXELS = pillow_limit
    if not forked:
        # A forked worker inherits OpenCV single-threaded from _start_pool; calling
        # setNumThreads there would wait forever for the parent's pool threads.
        import cv2

        cv2.setNumThreads(1)
    _keep_freed_memory()


def _glibc_function(name: str):
    """A function of glibc by name, or None off glibc (both worker tweaks are no-ops there)."""
    import ctypes

    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the scan process dies (``kill -9``): an
    orphaned worker would finish its batch for nobody and print a broken-pipe
    traceback into the user's terminal.  No-op elsewhere."""
    prctl = _glibc_function("prctl")
    if prctl is not None:
        pr_set_pdeathsig = 1
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))


def _keep_freed_memory() -> None:
    """Let glibc reuse freed image buffers instead of unmapping them after every image.

    Arrays over 128 kB are mmap-ed fresh and unmapped when freed by default, so
    each image's buffers page-fault in again: ~10 % of a worker's time on small
    images, ~15 % on camera photos (measured with ``benchmarks/scan_throughput.py``).
    Raising the mmap and trim thresholds keeps them in the heap.  No-op off glibc.
    """
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 256 << 20)
    mallopt(m_trim_threshold, 512 << 20)
    mallopt(m_top_pad, 64 << 20)


#: What a worker needs; imported before forking so workers start warm (and so
#: that the thread limits of ``_worker_init`` reach the libraries they load).
_WORKER_MODULES = (
    "boda.quality", "boda.duplicates", "boda.color", "boda.edges", "cv2", "threadpoolctl",
    # loaded lazily on a worker's first image otherwise (~30 ms in each worker):
    # numpy's percentile needs numpy.ma, the palette numpy.random, and
    # Image.open's first call the plugins of Pillow's preinit.
    "numpy.ma", "numpy.random",
    "PIL.JpegImagePlugin", "PIL.PngImagePlugin", "PIL.BmpImagePlugin", "PIL.GifImagePlugin",
    "PIL.PpmImagePlugin",
)


#: Held while a pool is forked (see _start_pool).
_FORK_LOCK = threading.Lock()


def _openmp_loaded() -> bool:
    """Whether an OpenMP runtime is loaded in this process (by rawpy, torch,
    scikit-learn...): it may hold a thread pool that a forked child cannot use."""
    from threadpoolctl import threadpool_info

    return any(info.get("user_api") == "openmp" for info in threadpool_info())


def _start_pool(
    processes: int, raw: bool = False
) -> concurrent.futures.ProcessPoolExecutor | None:
    """A process pool whose workers have boda's analysers imported already, or
    None (with a warning) where this system cannot start one.

    On Linux the workers are forked from this process after the imports
    (milliseconds, instead of ~0.5 s to import numpy/scipy in each); elsewhere
    a forkserver or spawn context imports them once per worker.  When ``raw``
    (camera RAW files are to be read: LibRaw runs on OpenMP) and an OpenMP
    runtime is loaded in this process (a caller read a RAW file here, or
    imported torch), the workers come from a forkserver: a pool of OpenMP
    threads does not survive fork (GNU libgomp's children hang in their first
    parallel region), and the forkserver never ran one.  A pool needs
    POSIX semaphores, which live in ``/dev/shm``: where that is missing or
    read-only (AWS Lambda, some containers) the scan runs in this process.
    """
    had_kmp = "KMP_DUPLICATE_LIB_OK" in os.environ
    for name in _WORKER_MODULES:
        importlib.import_module(name)
    if not had_kmp:  # threadpoolctl sets it on import: the caller's environment is theirs
        os.environ.pop("KMP_DUPLICATE_LIB_OK", None)
    methods = mp.get_all_start_methods()
    fork = sys.platform == "linux" and "fork" in methods and not (raw and _openmp_loaded())
    method = "fork" if fork else ("forkserver" if "forkserver" in methods else "spawn")
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(list(_WORKER_MODULES))
    import cv2

    # OpenCV's thread pool does not survive fork(): stop it before forking so the
    # workers run OpenCV single-threaded, then give this process its setting back.
    # The lock: two scans started at once from two threads would otherwise save
    # each other's 1 and leave it behind.
    with _FORK_LOCK:
        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        # Objects the workers inherit stay out of their garbage collector, so it does
        # not write to (and copy) every inherited page (Python docs, gc.freeze).
        gc.freeze()
        try:
            from PIL import Image

            initargs = (method == "fork", Image.MAX_IMAGE_PIXELS)
            pool = concurrent.futures.ProcessPoolExecutor(
                processes, mp_context=ctx, initializer=_worker_init, initargs=initargs
            )
            try:
                # The first task forks every worker (under "fork"), here, inside this
                # lock and before the caller's progress display starts a thread.
                pool.submit(os.getpid).result()
            except BaseException:  # Ctrl-C while they start: no pool left running
                _stop(pool)
                raise
            return pool
        except (OSError, ImportError, BrokenProcessPool) as exc:  # no usable /dev/shm...
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            _log.warning(
                "note: cannot start worker processes (%s: no usable /dev/shm?); "
                "scanning in this process", reason,
            )
            return None
        finally:
            gc.unfreeze()
            cv2.setNumThreads(previous)


def _analyze_chunk(analyze: Callable[[Job], ImageRecord], jobs: list[Job]) -> list[ImageRecord]:
    return [analyze(job) for job in jobs]


def _workers(pool: concurrent.futures.ProcessPoolExecutor) -> list[mp.process.BaseProcess]:
    """The worker processes of ``pool`` (a private attribute: empty if it is gone)."""
    return list((getattr(pool, "_processes", None) or {}).values())


#: Seconds :func:`_died_reason` waits at most for a dead worker's exit status.
_STATUS_WAIT = 5.0


def _died_reason(workers: list[mp.process.BaseProcess]) -> str:
    """Why one of ``workers`` died, in words, from its exit status where it is known."""
    # The broken pool is stopping them: let their status settle.  On a loaded machine
    # the dead one's status can take longer than a moment (a fixed 0.5 s wait called a
    # segfault "died" under the test suite's load), so wait until one is known, up to
    # _STATUS_WAIT seconds.
    # SIGTERM is how the broken pool stops the workers that did not die: the status of
    # one of those, known first, said "died" of a worker killed by SIGKILL.
    deadline = time.monotonic() + _STATUS_WAIT
    codes: set[int | None] = set()
    while not codes - {-signal.SIGTERM}:
        for process in workers:
            process.join(timeout=0.05)
        codes = {p.exitcode for p in workers if p.exitcode not in (None, 0)}
        if time.monotonic() > deadline or all(p.exitcode is not None for p in workers):
            break
    if -signal.SIGKILL in codes:
        how = "was killed (SIGKILL: most often the system running out of memory)"
    elif -signal.SIGSEGV in codes or -signal.SIGABRT in codes or -signal.SIGBUS in codes:
        how = "crashed (a decoder library failed on it)"
    else:
        how = "died"
    return f"the process analysing this file {how}; it did so again with the file alone"


#: Seconds :func:`_stop` waits for the pool's manager thread to end after its workers.
_STOP_WAIT = 2.0


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: kill its workers (a worker busy with a large image would
    finish it first), drop what is queued, and let the pool's manager thread end.

    That thread notices the dead workers within milliseconds; waiting for it (a few
    seconds at most) matters at exit: Python (3.11) wakes every pool's manager thread
    without a lock as it ends, and one closing its pipe at that moment makes it print
    an ``OSError: [Errno 9] Bad file descriptor`` traceback after a Ctrl-C."""
    manager = getattr(pool, "_executor_manager_thread", None)  # private; shutdown drops it
    for process in _workers(pool):
        if process.exitcode is None:
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    if isinstance(manager, threading.Thread) and manager is not threading.current_thread():
        manager.join(timeout=_STOP_WAIT)


def _iter_results(
    jobs: Sequence[Job],
    pool: concurrent.futures.ProcessPoolExecutor | None,
    processes: int,
    analyze: Callable[[Job], ImageRecord],
    restart: Callable[[], concurrent.futures.ProcessPoolExecutor | None] | None = None,
) -> Iterator[ImageRecord | None]:
    """Yield a record for every job as it finishes, and None after each
    :data:`HEARTBEAT_SECONDS` in which none did.

    In this process without a pool.  With one, files go in chunks, a few chunks
    per worker at a time.  When a worker dies, the files of every chunk in flight
    are run again in a pool from ``restart`` one per task, no more than there
    are workers at a time; if one dies again, each of those few files is run
    alone, and the one that kills its worker alone gets an error record
    (:func:`_died_reason`).  The pool is stopped when the caller stops iterating.
    """
    if pool is None:
        for job in jobs:
            yield analyze(job)
        return
    # Up to 8 files per message halves the parent's CPU on folders of small
    # images; at least 4 chunks per worker keep the tail of the scan balanced.
    size = max(1, min(8, len(jobs) // (4 * processes)))
    normal = collections.deque(
        range(s, min(s + size, len(jobs))) for s in range(0, len(jobs), size)
    )
    careful: collections.deque[range] = collections.deque()  # after a death: a file a task
    suspects: collections.deque[range] = collections.deque()  # after a second: each alone
    in_flight: dict[concurrent.futures.Future, tuple[range, str]] = {}
    workers = _workers(pool)  # kept: a broken pool forgets its processes
    try:
        while normal or careful or suspects or in_flight:
            if suspects:  # a suspect runs with nothing beside it
                if not in_flight:
                    chunk = suspects.popleft()
                    in_flight[pool.submit(_analyze_chunk, analyze, [jobs[chunk[0]]])] = (
                        chunk, "alone")
            else:
                queue, kind = (careful, "careful") if careful else (normal, "normal")
                window = processes if careful else 4 * processes
                while queue and len(in_flight) < window:
                    chunk = queue.popleft()
                    future = pool.submit(_analyze_chunk, analyze, [jobs[i] for i in chunk])
                    in_flight[future] = (chunk, kind)
            done, _ = concurrent.futures.wait(
                in_flight, timeout=HEARTBEAT_SECONDS,
                return_when=concurrent.futures.FIRST_COMPLETED,
            )
            if not done:
                yield None
                continue
            broken = False
            for future in done:
                try:
                    records = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                del in_flight[future]
                yield from records
            if not broken:
                continue
            # A worker died: every task in flight is lost with it.
            kinds = {kind for _, kind in in_flight.values()}
            singles = [range(i, i + 1) for chunk, _ in in_flight.values() for i in chunk]
            in_flight.clear()
            reason = _died_reason(workers + _workers(pool))
            _stop(pool)
            if len(singles) == 1 and "normal" not in kinds:  # it died with this file alone
                found = jobs[singles[0][0]][0]
                yield ImageRecord(
                    relpath=found.relpath, size=found.size, mtime_ns=found.mtime_ns,
                    status="error", error=reason,
                )
            elif "normal" in kinds:
                careful.extendleft(reversed(singles))
            else:
                suspects.extend(singles)
            pool = restart() if restart is not None else None
            workers = [] if pool is None else _workers(pool)
            if pool is None:  # no pool to be had: the rest in this process
                for chunk in [*suspects, *careful, *normal]:
                    for i in chunk:
                        yield analyze(jobs[i])
                return
    finally:
        if pool is not None:
            _stop(pool)
