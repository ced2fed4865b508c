"""A scan worker that dies (out-of-memory kill, decoder crash) costs one file, not the scan.

The analysis is replaced (``pipeline.analyze_file``, which forked workers inherit) by
one that kills its own process on chosen files, as the kernel's OOM killer or a
crashing decoder would.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from boda.catalog import Catalog
from boda.io import write_image
from boda.scan import _pipeline as pipeline
from boda.scan import _pool, scan

pytestmark = pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods(),
    reason="the replaced analysis reaches the workers by fork",
)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    root.mkdir()
    for n in range(12):
        write_image(root / f"p{n:02d}.png", rng.random((24, 32, 3)).astype(np.float32))
    return root


def _dying_on(names: set[str], sig: int):
    real = pipeline.analyze_file
    scanning = os.getpid()

    def analyze(found, *args):
        if os.path.basename(found.path) in names:
            assert os.getpid() != scanning, "analysed in the scan's own process"
            os.kill(os.getpid(), sig)
        return real(found, *args)

    return analyze


@pytest.mark.parametrize(
    ("sig", "words"), [(signal.SIGKILL, "out of memory"), (signal.SIGSEGV, "crashed")]
)
def test_a_file_that_kills_its_worker_is_recorded_and_the_scan_goes_on(
    photos, monkeypatch, sig, words
):
    monkeypatch.setattr(pipeline, "analyze_file", _dying_on({"p05.png"}, sig))
    summary = scan(photos, workers=2)
    assert [path for path, _ in summary.failed] == ["p05.png"]
    reason = summary.failed[0][1]
    assert words in reason and "again with the file alone" in reason
    with Catalog(photos, readonly=True) as catalog:
        records = {r.path: r for r in catalog.records()}
    assert len(records) == 12
    assert records["p05.png"].status == "error"
    assert all(r.status == "ok" for name, r in records.items() if name != "p05.png")
    # The next scan tries the failed file again (it may have been short of memory
    # only beside other large files) and records it the same way.
    again = scan(photos, workers=2)
    assert again.analysed == 1 and again.failed == summary.failed


def test_two_killers_in_flight_together_are_told_apart(photos, monkeypatch):
    monkeypatch.setattr(
        pipeline, "analyze_file", _dying_on({"p02.png", "p03.png"}, signal.SIGKILL)
    )
    summary = scan(photos, workers=2)
    assert sorted(path for path, _ in summary.failed) == ["p02.png", "p03.png"]
    assert summary.analysed == 12


def test_results_stay_the_same_as_without_a_pool(photos):
    one = scan(photos, workers=1)
    with Catalog(photos, readonly=True) as catalog:
        alone = {r.path: r.scores for r in catalog.records()}
    os.remove(photos / ".boda" / "catalog.db")
    two = scan(photos, workers=2)
    with Catalog(photos, readonly=True) as catalog:
        pooled = {r.path: r.scores for r in catalog.records()}
    assert one.analysed == two.analysed == 12 and pooled == alone


def _slow_on_last(job):
    if job[0].path.endswith("p11.png"):
        time.sleep(2.5 * _pool.HEARTBEAT_SECONDS)
    return pipeline._analyze_job(job)


def test_the_results_say_so_while_a_slow_file_holds_them_up(photos):
    """A None now and then, so the scan commits what is done while one file takes
    minutes (a ``kill -9`` then loses none of the files before it)."""
    from boda.scan._walk import walk_images

    jobs = [(f, 64, None) for f in walk_images(photos)]
    jobs.sort(key=lambda job: job[0].path)
    pool = _pool._start_pool(2)
    assert pool is not None
    seen = list(_pool._iter_results(jobs, pool, 2, _slow_on_last))
    records = [r for r in seen if r is not None]
    assert len(records) == 12 and len({r.relpath for r in records}) == 12
    first_none = seen.index(None)
    assert sum(r is not None for r in seen[:first_none]) >= 8  # the others came first


def test_a_file_deleted_during_the_scan_is_forgotten_not_unreadable(photos, monkeypatch):
    """No output shows a file that is gone: one deleted after the listing, before its
    turn, is dropped (counted in ``removed``), not reported as unreadable."""
    real = pipeline.analyze_file
    scan(photos, workers=1)
    for n in range(12):  # every file changed: all analysed again
        os.utime(photos / f"p{n:02d}.png", ns=(1, 10**18 + n))

    def deleting(found, *args):
        if found.path.endswith("p00.png"):
            os.remove(photos / "p03.png")
        return real(found, *args)

    monkeypatch.setattr(pipeline, "analyze_file", deleting)
    summary = scan(photos, workers=1)
    assert summary.failed == [] and summary.removed == 1 and summary.analysed == 11
    assert summary.pending == 0
    with Catalog(photos, readonly=True) as catalog:
        assert "p03.png" not in {r.path for r in catalog.records()}


def test_a_stopped_pool_leaves_no_thread_for_python_to_wake_at_exit():
    """Python 3.11 wakes every pool's manager thread without a lock as it exits: one
    still closing its pipe then prints an ``OSError: [Errno 9]`` traceback after a
    Ctrl-C.  _stop waits for it."""
    pool = _pool._start_pool(2)
    assert pool is not None
    manager, workers = pool._executor_manager_thread, _pool._workers(pool)
    pool.submit(time.sleep, 30)
    started = time.monotonic()
    _pool._stop(pool)
    assert not manager.is_alive()
    assert all(process.exitcode is not None for process in workers)
    assert time.monotonic() - started < _pool._STOP_WAIT  # the busy worker was not awaited


class _Worker:
    """A stand-in for a pool process whose exit status is known after ``polls`` joins."""

    def __init__(self, code, polls=0):
        self._code, self._polls = code, polls

    def join(self, timeout=None):
        self._polls -= 1

    @property
    def exitcode(self):
        return self._code if self._polls < 0 else None


@pytest.mark.parametrize(("code", "words"), [(-signal.SIGKILL, "was killed (SIGKILL"),
                                             (-signal.SIGSEGV, "crashed")])
def test_the_dead_workers_status_is_awaited_past_the_others_sigterm(code, words):
    # The broken pool sends SIGTERM to the workers that did not die; when one of those
    # statuses was known first, a worker killed by SIGKILL was said to have "died".
    from boda.scan._pool import _died_reason

    reason = _died_reason([_Worker(-signal.SIGTERM), _Worker(code, polls=3)])
    assert words in reason
    assert "died" in _died_reason([_Worker(-signal.SIGTERM), _Worker(-signal.SIGTERM)])
