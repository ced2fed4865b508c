"""Helpers shared by the scan tests (imported as ``import scan_helpers``)."""

from __future__ import annotations

import boda.scan._pipeline as pipeline


def interrupt_after(n: int):
    """An ``_iter_results`` that yields ``n`` records, then is stopped by Ctrl-C.

    Use as ``monkeypatch.setattr(pipeline, "_iter_results", interrupt_after(1))``.
    """
    real = pipeline._iter_results

    def stopped(jobs, pool, processes=1):
        results = real(jobs, pool, processes)
        try:
            for _ in range(n):
                yield next(results)
            raise KeyboardInterrupt
        finally:
            results.close()

    return stopped
