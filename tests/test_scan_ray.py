"""``scan(engine="ray")`` / ``boda scan --engine ray``: the same records, catalog and
guarantees as the local engine, on one local Ray runtime shared by the module."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import socket
import sys
import time

import pytest
from typer.testing import CliRunner

from boda.catalog import Catalog
from boda.cli import app
from boda.errors import BodaError, InvalidParameterError, MissingDependencyError
from boda.io import write_image
from boda.scan import scan

ray = pytest.importorskip("ray")
runner = CliRunner()


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime of 2 CPUs for the whole module (a start costs seconds).
    Scans find it initialised and use it as the caller's own."""
    sigterm = signal.getsignal(signal.SIGTERM)
    ray.init(
        num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
        log_to_driver=False, object_store_memory=100 << 20,
    )
    signal.signal(signal.SIGTERM, sigterm)  # ray.init takes SIGTERM over: pytest's again
    yield ray
    ray.shutdown()


@pytest.fixture
def mixed(folder):
    """``folder`` (four photos and an exact copy) plus two files no decoder reads."""
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "random.jpg").write_bytes(bytes(range(256)) * 40)
    return folder


def _records(catalog_path) -> dict[bytes, object]:
    """Every record of a catalog by path, without its row id (insertion order)."""
    with Catalog(catalog_path, readonly=True) as catalog:
        records = catalog.records(with_thumbnails=True)
        return {r.relpath: dataclasses.replace(r, id=None) for r in records}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there


def test_ray_records_equal_local_records(ray_runtime, mixed, tmp_path):
    local = scan(mixed, workers=2, catalog_path=tmp_path / "local.db")
    on_ray = scan(mixed, workers=2, catalog_path=tmp_path / "ray.db", engine="ray")
    assert (local.engine, on_ray.engine) == ("local", "ray")
    assert on_ray.analysed == local.analysed == 7
    assert sorted(on_ray.failed) == sorted(local.failed)
    assert {p for p, _ in on_ray.failed} == {"zero.jpg", "random.jpg"}
    assert on_ray.flag_counts == local.flag_counts and on_ray.flag_counts["exact_duplicate"] == 2
    a, b = _records(local.catalog_path), _records(on_ray.catalog_path)
    assert a.keys() == b.keys() and len(a) == 7
    for path in a:  # every score, hash, flag, size and error alike
        assert b[path] == a[path], path
    assert ray.is_initialized(), "the caller's runtime is left running"


def test_rescan_on_ray_analyses_only_changed_files(ray_runtime, folder, small_photos):
    first = scan(folder, workers=2, engine="ray")
    assert first.analysed == 5
    write_image(folder / "b.png", small_photos[0][::-1])  # changed
    write_image(folder / "new.png", small_photos[1][:, ::-1])  # new
    (folder / "c.png").unlink()  # gone
    again = scan(folder, workers=2, engine="ray")
    assert (again.analysed, again.unchanged, again.removed) == (2, 3, 1)
    assert scan(folder, workers=2, engine="ray").analysed == 0
    paths = {b"a.png", b"b.png", b"d.png", b"new.png", b"copies/a copy.png"}
    assert set(_records(again.catalog_path)) == paths


def test_interrupted_ray_scan_keeps_committed_records(ray_runtime, tmp_path, small_photos):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(16):
        write_image(root / f"img{i:02d}.png", small_photos[i % 4] * (0.5 + i / 40))

    def stop_after_three(done, total, record):
        if done == 3:
            raise KeyboardInterrupt

    stopped = scan(root, workers=2, engine="ray", progress=stop_after_three)
    assert stopped.interrupted and stopped.analysed == 3 and stopped.pending == 13
    assert len(_records(stopped.catalog_path)) == 3
    rest = scan(root, workers=2, engine="ray")
    assert not rest.interrupted and (rest.analysed, rest.unchanged) == (13, 3)
    assert len(_records(rest.catalog_path)) == 16


def test_a_runtime_boda_starts_is_shut_down(ray_runtime, folder, monkeypatch):
    """Without a caller's runtime, scan starts one of ``workers`` CPUs (quiet, no
    dashboard), gives SIGTERM's handler back, and shuts it down at the end.  Ray's
    own start is replaced here by a recorder: the module's runtime runs the tasks."""
    calls, up = [], [False]  # as seen by scan: no runtime until it starts one

    def fake_init(**kwargs):
        calls.append(("init", kwargs))
        up[0] = True
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(15))  # as ray.init does

    def fake_shutdown():
        calls.append(("shutdown", {}))
        up[0] = False

    monkeypatch.setattr(ray, "is_initialized", lambda: up[0])
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "shutdown", fake_shutdown)
    before = signal.getsignal(signal.SIGTERM)
    summary = scan(folder, workers=2, engine="ray")
    assert summary.analysed == 5
    assert [name for name, _ in calls] == ["init", "shutdown"]
    kwargs = calls[0][1]
    assert kwargs["num_cpus"] == 2 and kwargs["include_dashboard"] is False
    assert "address" not in kwargs and kwargs["logging_level"] == logging.ERROR
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_while_ray_starts_goes_to_the_callers_handler(ray_runtime, folder, monkeypatch):
    """Ray's own SIGTERM handler (an exit) is in force while it starts: the signal is
    handed to the caller's handler (the CLI's stops the scan cleanly), what Ray started
    is shut down, and nothing is lost."""
    calls = []

    def init_stopped_by_sigterm(**kwargs):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(15))  # as ray.init does...
        raise SystemExit(15)  # ...and a SIGTERM arrived

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init_stopped_by_sigterm)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))

    def stop(signum, frame):
        calls.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        summary = scan(folder, workers=2, engine="ray")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert summary.interrupted and summary.pending == 5
    assert calls == ["shutdown", signal.SIGTERM]


def test_nothing_to_analyse_starts_nothing(ray_runtime, folder, monkeypatch):
    scan(folder, workers=2, engine="ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **_: pytest.fail("Ray started for no file"))
    assert scan(folder, workers=2, engine="ray").unchanged == 5


def test_bad_engine_and_address_are_refused(folder):
    with pytest.raises(InvalidParameterError, match="'local', 'ray'.*'spark'"):
        scan(folder, engine="spark")
    with pytest.raises(InvalidParameterError, match="needs engine='ray'"):
        scan(folder, address="auto")
    with pytest.raises(BodaError, match="cannot read the Ray address 'head'"):
        scan(folder, engine="ray", address="head")
    assert not (folder / ".boda").exists(), "refused before any work"


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_unreachable_cluster_fails_fast_with_the_address(folder, scheme):
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(BodaError, match=f"cannot connect to the Ray cluster at '{address}'"):
        scan(folder, engine="ray", address=address)
    assert time.monotonic() - started < 15
    assert not (folder / ".boda").exists(), "refused before any work"


def test_no_cluster_found_by_ray_is_one_clear_error(ray_runtime, folder, monkeypatch):
    """``auto`` is Ray's to resolve: its ConnectionError becomes a BodaError."""
    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance.\nmore detail")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(BodaError, match=r"at 'auto' \(Could not find any running Ray instance"):
        scan(folder, engine="ray", address="auto")


def test_ray_missing_names_the_extra(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'boda\[ray\]'"):
        scan(folder, engine="ray")


def test_a_cluster_failure_keeps_committed_records(ray_runtime, folder, monkeypatch):
    real_get = ray.get
    calls = []

    def failing_get(ref, *args, **kwargs):
        calls.append(ref)
        if len(calls) > 2:
            raise ray.exceptions.RaySystemError("the head node is gone")
        return real_get(ref, *args, **kwargs)

    monkeypatch.setattr(ray, "get", failing_get)
    with pytest.raises(BodaError, match="RaySystemError.*run the scan again"):
        scan(folder, workers=2, engine="ray")
    monkeypatch.setattr(ray, "get", real_get)
    kept = len(_records(folder / ".boda" / "catalog.db"))
    assert kept == 2  # the two records yielded before the failure
    assert scan(folder, workers=2, engine="ray").analysed == 5 - kept


def test_cli_scan_on_ray(ray_runtime, mixed):
    result = runner.invoke(app, ["scan", str(mixed), "--engine", "ray", "--json", "--no-report"])
    assert result.exit_code == 3, result.output  # two unreadable files
    summary = json.loads(result.stdout)
    assert summary["engine"] == "ray" and summary["analysed"] == 7
    assert len(summary["failed"]) == 2


def test_cli_refuses_address_without_ray(folder):
    result = runner.invoke(app, ["scan", str(folder), "--address", "auto", "-q"])
    assert result.exit_code == 2 and "--engine ray" in result.output
