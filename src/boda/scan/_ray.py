"""The Ray engine of ``scan`` (``--engine ray``): the analysis as Ray tasks.

The scan itself (walking, comparing with the catalog, committing batches,
deriving flags) stays in the calling process, as with the local engine; only
the analysis of each file (:func:`boda.scan._pipeline._analyze_job`) runs as Ray
tasks, a few files per task, on a local Ray runtime or on a cluster.  Workers on
other nodes open the files by the paths this process found: the folder must be
mounted at the same path on every node (a shared file system).  A file a node
cannot read is recorded as unreadable, like any other.

Ray is imported only when the engine is used (``pip install 'boda[ray]'``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from boda.catalog import ImageRecord
from boda.errors import BodaError, MissingDependencyError
from boda.scan._walk import FoundFile

__all__ = ["ENGINES", "check_ray", "ray_results"]

#: The engines ``scan(engine=...)`` and ``boda scan --engine`` take.
ENGINES = ("local", "ray")
#: Files per task, at most: Ray's cost per task is paid once for several files,
#: as the local pool's chunks of up to 8 files do.
MAX_FILES_PER_TASK = 8
#: Tasks in flight per CPU of the cluster: one running and one queued keep every
#: CPU busy, and memory stays flat whatever the number of files.
TASKS_PER_CPU = 2
#: Seconds to reach a cluster's port before saying it cannot be reached (Ray
#: itself retries for 30 s to minutes).
CONNECT_TIMEOUT = 5.0
#: A local runtime's object store: records are a few kB (Ray's minimum is 75 MB;
#: its default, 30 % of the memory, would reserve /dev/shm for nothing).
OBJECT_STORE_BYTES = 100 << 20

Job = tuple[FoundFile, int, int | None, bool]
_worker_ready = False


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "the Ray engine (--engine ray)") from None
    return ray


def check_ray(address: str | None) -> None:
    """Raise now, before any work, if the Ray engine cannot run.

    Parameters
    ----------
    address : str or None
        The cluster to connect to (``"auto"``, ``"HOST:PORT"`` or
        ``"ray://HOST:PORT"``), or None for a local runtime.

    Raises
    ------
    MissingDependencyError
        Ray (or, for a ``ray://`` address, Ray's client) is not installed.
    BodaError
        ``address`` names a host and port that cannot be reached.
    """
    _import_ray()
    address = _address(address)
    if address is None or address == "auto":
        return  # Ray looks for a running cluster itself, and says at once if there is none
    url = urlsplit(address if "://" in address else f"tcp://{address}")
    if url.scheme == "ray":
        try:
            import grpc  # noqa: F401  # what Ray's client needs beyond plain ray
        except ImportError:
            raise MissingDependencyError(
                "ray[client]", "ray", f"connecting to {address!r}"
            ) from None
    try:
        host, port = url.hostname, url.port
    except ValueError:  # a port that is no number
        host = port = None
    if not host or not port:
        raise BodaError(
            f"cannot read the Ray address {address!r}: give HOST:PORT (the head node's GCS, "
            "port 6379 by default), ray://HOST:PORT (Ray's client, port 10001) or auto"
        )
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise BodaError(_cannot_connect(address, exc.strerror or str(exc))) from None


def _address(address: str | None) -> str | None:
    """``address``, or the cluster ``RAY_ADDRESS`` names when none is given (as Ray has it)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def _cannot_connect(address: str, reason: str) -> str:
    return (
        f"cannot connect to the Ray cluster at {address!r} ({reason}); check that the "
        "cluster is running ('ray status' on its head node), that this machine can reach "
        "that host and port, that both run the same Ray and Python versions, and, if the "
        "cluster uses token authentication, RAY_AUTH_MODE=token and its token here"
    )


def _start_ray(ray: Any, address: str | None, workers: int) -> bool:
    """Connect to ``address`` or start a local runtime of ``workers`` CPUs; whether we
    started (and so must shut down) a connection.  One the caller made is used as is."""
    if ray.is_initialized():
        return False
    address = _address(address)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    # ray.init replaces the SIGTERM handler of the main thread with its own exit: the
    # caller's (boda's CLI stops a scan cleanly on SIGTERM) is given back.
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        if address is None:
            ray.init(
                num_cpus=workers, include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES, **quiet,
            )
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        if address is None:
            raise BodaError(f"cannot start a local Ray runtime: {exc}") from None
        raise BodaError(_cannot_connect(address, str(exc).splitlines()[0])) from None
    except SystemExit as exc:
        if not (main and exc.code == signal.SIGTERM and sigterm not in (None, signal.SIG_IGN)):
            raise
        # SIGTERM arrived while Ray started, and Ray's handler took it: stop what it
        # started and give the signal to the caller's handler (the CLI's stops cleanly).
        with contextlib.suppress(Exception):
            ray.shutdown()
        signal.signal(signal.SIGTERM, sigterm)
        signal.raise_signal(signal.SIGTERM)
        raise
    except BaseException:  # Ctrl-C while Ray started: no half-started runtime is left
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise
    finally:
        if main and sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    return True


def _prepare_worker(pillow_limit: int | None) -> None:
    """What ``_worker_init`` does for a pool worker that matters in a Ray worker."""
    global _worker_ready
    from PIL import Image

    # Pillow's pixel limit as the scanning process has it (None for a trusted
    # folder): set for every task, as a worker may serve scans with other limits.
    Image.MAX_IMAGE_PIXELS = pillow_limit
    if _worker_ready:
        return
    import cv2
    from threadpoolctl import threadpool_limits

    from boda.scan._pool import _keep_freed_memory

    # Parallelism comes from the tasks; threads inside each only contend.
    cv2.setNumThreads(1)
    threadpool_limits(1)
    _keep_freed_memory()
    _worker_ready = True


def _analyse_batch(jobs: list[Job], pillow_limit: int | None) -> list[ImageRecord]:
    """One Ray task: analyse a few files (a bad file is a record, never an exception)."""
    from boda.scan._pipeline import _analyze_job

    _prepare_worker(pillow_limit)
    return [_analyze_job(job) for job in jobs]


def ray_results(
    jobs: list[Job], workers: int, address: str | None = None
) -> Iterator[ImageRecord]:
    """Yield the records of ``jobs`` as Ray tasks finish them (in no set order).

    The counterpart of :func:`boda.scan._pipeline._iter_results`.  Nothing is
    started until the first record is asked for; at most :data:`TASKS_PER_CPU`
    tasks per CPU of the cluster are in flight, each of up to
    :data:`MAX_FILES_PER_TASK` files.  Closing the generator (the scan was
    interrupted) cancels the tasks in flight, and shuts Ray down if it started it.

    Parameters
    ----------
    jobs : list of tuple
        ``(FoundFile, max_side, max_pixels, describe)`` for each file to analyse.
    workers : int
        CPUs of a local runtime (not used with ``address``, or when the caller
        has initialised Ray already: its runtime is used as it is).
    address : str, optional
        The Ray cluster to run on: ``"auto"``, ``"HOST:PORT"`` or
        ``"ray://HOST:PORT"``.  None starts a local runtime (unless the
        ``RAY_ADDRESS`` environment variable names a cluster, as Ray has it).

    Yields
    ------
    ImageRecord

    Raises
    ------
    BodaError
        Ray cannot connect to ``address``, or the cluster failed during the
        scan (the records yielded so far are the caller's to keep).
    """
    if not jobs:
        return
    ray = _import_ray()
    started = _start_ray(ray, address, workers)
    from PIL import Image

    pillow_limit = Image.MAX_IMAGE_PIXELS
    pending: list[Any] = []
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        # As the local pool's chunks: at least 4 tasks per CPU keep the tail balanced.
        per_task = max(1, min(MAX_FILES_PER_TASK, len(jobs) // (4 * cpus)))
        batches = (jobs[i : i + per_task] for i in range(0, len(jobs), per_task))
        task = ray.remote(num_cpus=1)(_analyse_batch)
        pending = [task.remote(b, pillow_limit) for b in itertools.islice(
            batches, TASKS_PER_CPU * cpus)]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            records = _get(ray, ready[0])
            following = next(batches, None)
            if following is not None:  # before yielding: the cluster works while we write
                pending.append(task.remote(following, pillow_limit))
            yield from records
    finally:
        for ref in pending:  # queued tasks never start; running ones are interrupted
            with contextlib.suppress(Exception):  # the cluster may be gone already
                ray.cancel(ref)
        if started:
            ray.shutdown()


def _get(ray: Any, ref: Any) -> list[ImageRecord]:
    """A finished task's records; a failure of the cluster (not of the analysis,
    which raises as it does in the local engine) as a :class:`BodaError`."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError:
        raise
    except ray.exceptions.RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BodaError(
            f"the Ray cluster failed during the scan ({type(exc).__name__}: {first}); the "
            "results committed so far are kept: run the scan again to finish"
        ) from exc
