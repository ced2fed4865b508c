"""Audit of the blocked, threaded arithmetic (boda.core.blocks, the float32 sRGB -> Lab
path, CIEDE2000 in blocks) the way callers use it: their NumPy error handling holds in
the worker threads, overflow and byte order come out as the float32 contract says, a
worker's error reaches the caller, and threads calling at once share nothing."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import boda.color as bc
from boda.color import _difference, _lab_fast
from boda.core import blocks


@pytest.fixture
def many_threads(monkeypatch):
    """Small blocks and thresholds, three threads: the threaded path on small arrays."""
    monkeypatch.setattr(_lab_fast, "BLOCK_PIXELS", 1000)
    monkeypatch.setattr(_lab_fast, "_THREADED_PIXELS", 2000)
    monkeypatch.setattr(_difference, "_BLOCK_PAIRS", 1000)
    monkeypatch.setattr(_difference, "_PAIRS_PER_THREAD", 2000)
    monkeypatch.setattr(blocks, "usable_cores", lambda: 3)


def test_worker_threads_run_under_the_callers_numpy_error_state(monkeypatch):
    """np.errstate is per thread: a fresh thread has NumPy's defaults, not the caller's."""
    monkeypatch.setattr(blocks, "usable_cores", lambda: 3)
    seen, lock = [], threading.Lock()
    together = threading.Barrier(3, timeout=5)  # three threads at once, none reused

    def make_worker():
        def work(start: int, stop: int) -> None:
            together.wait()
            with lock:
                seen.append((threading.get_ident(), np.geterr()))

        return work

    with np.errstate(all="ignore", under="raise"):
        expected = np.geterr()
        blocks.run_in_blocks(30, 10, make_worker, min_per_thread=10)
    assert len({ident for ident, _ in seen}) == 3  # three threads did run
    assert all(state == expected for _, state in seen)


def test_srgb_to_lab_on_threads_keeps_the_callers_errstate(many_threads):
    rgb = np.random.default_rng(0).random((100, 100, 3), dtype=np.float32)
    rgb[::7, ::5, 0] = np.inf  # inf - inf in a*: "invalid value" in every thread
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(invalid="ignore"):
            bc.srgb_to_lab(rgb)
    assert [str(w.message) for w in caught] == []
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        bc.srgb_to_lab(rgb)


def test_ciede2000_on_threads_keeps_the_callers_errstate(many_threads):
    rng = np.random.default_rng(1)
    lab1 = rng.uniform(0, 100, (100, 100, 3))
    lab2 = lab1 + 1.0
    lab1[::3, ::3] = np.nan
    lab2[1::5, 1::5, 1] = np.inf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            de = bc.delta_e_ciede2000(lab1, lab2)
    assert [str(w.message) for w in caught] == []
    assert np.isnan(de[0, 0]) and np.isfinite(de[0, 1])


def test_a_finite_colour_whose_power_overflows_float32_is_an_infinite_one():
    """1e20 decodes to ~1e48, past float32: L* = +inf as for an infinite input (and as
    the whole-array float32 path gave), not NaN from the matrix's products by 0."""
    with np.errstate(all="ignore"):
        for rgb in ([1e20, 1e20, 1e20], [1e30, 0.5, 0.5], [np.inf, 0.5, 0.5]):
            assert bc.srgb_to_lab(np.array(rgb, np.float32))[0] == np.inf


def test_big_endian_float32_is_converted_as_float32():
    """float32 in, float32 out, whatever the byte order (FITS files are big-endian)."""
    rgb = np.random.default_rng(2).random((20, 30, 3), dtype=np.float32)
    lab = bc.srgb_to_lab(rgb.astype(">f4"))
    assert lab.dtype == np.float32
    np.testing.assert_array_equal(lab, bc.srgb_to_lab(rgb))
    assert bc.delta_e_ciede2000(lab.astype(">f4"), lab).dtype == np.float32
    assert bc.srgb_to_lab(rgb.astype(">f8")).dtype == np.float64


def test_an_error_in_a_worker_thread_reaches_the_caller_and_no_thread_is_left(
    many_threads, monkeypatch
):
    rgb = np.random.default_rng(3).random((100, 100, 3), dtype=np.float32)
    convert = _lab_fast._Block.convert

    def failing(self, pixels, start, stop, out, matrix):
        if start >= 6000:
            raise MemoryError(f"block at {start}")
        convert(self, pixels, start, stop, out, matrix)

    before = threading.active_count()
    monkeypatch.setattr(_lab_fast._Block, "convert", failing)
    with pytest.raises(MemoryError, match="block at"):
        bc.srgb_to_lab(rgb)
    assert threading.active_count() == before


def test_callers_on_several_threads_share_no_scratch(many_threads):
    rng = np.random.default_rng(4)
    images = [rng.random((60, 70, 3), dtype=np.float32) for _ in range(4)]
    expected = [bc.srgb_to_lab(img, "D50" if k % 2 else "D65") for k, img in enumerate(images)]
    results = [None] * 4

    def convert(k: int) -> None:
        results[k] = bc.srgb_to_lab(images[k], "D50" if k % 2 else "D65")

    threads = [threading.Thread(target=convert, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_read_only_fortran_and_reversed_inputs_convert_alike(many_threads):
    rgb = np.random.default_rng(5).random((50, 80, 3), dtype=np.float32)
    whole = bc.srgb_to_lab(rgb)
    frozen = rgb.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(bc.srgb_to_lab(frozen), whole)
    np.testing.assert_array_equal(bc.srgb_to_lab(np.asfortranarray(rgb)), whole)
    np.testing.assert_array_equal(bc.srgb_to_lab(rgb[::-1, ::-1]), whole[::-1, ::-1])
