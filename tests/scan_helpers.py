"""Helpers shared by the scan tests (imported as ``import scan_helpers``)."""

from __future__ import annotations

import boda.scan._pipeline as pipeline


def interrupt_after(n: int):
    """An ``_iter_results`` that yields ``n`` records, then is stopped by Ctrl-C.

    Use as ``monkeypatch.setattr(pipeline, "_iter_results", interrupt_after(1))``.
    """
    real = pipeline._iter_results

    def stopped(jobs, pool, processes=1, *args, **kwargs):
        results = real(jobs, pool, processes, *args, **kwargs)
        try:
            given = 0
            while given < n:
                record = next(results)
                given += record is not None  # None: a heartbeat, no file
                yield record
            raise KeyboardInterrupt
        finally:
            results.close()

    return stopped


#: One pHash for every chosen record: they form one near-duplicate group unless a
#: record gives its own.
PHASH = 0x8F3C_5A5A_0FF0_33CC


def chosen_catalog(path, files: list[dict]):
    """A catalog at ``path`` of chosen records and the flags a scan derives from them.

    Each file is a dict: ``name``; optional ``scores`` (default: ``{"blurry": sharp}``),
    ``sharp`` (0.8), ``pixels`` (the pixel hash: equal ones are exact copies; default:
    each its own), ``size`` (pixels a side, 64) and ``phash`` (:data:`PHASH`).
    """
    from boda.catalog import Catalog, ImageRecord
    from boda.scan import default_thresholds

    records = [
        ImageRecord(f["name"].encode(), 10, 1, "ok", width=f.get("size", 64),
                    height=f.get("size", 64), format="JPEG",
                    pixel_hash=f.get("pixels", f"{i:032x}"), phash=f.get("phash", PHASH),
                    scores=f.get("scores", {"blurry": f.get("sharp", 0.8)}),
                    extra={"dominant_colors": []}, thumbnail=b"\xff\xd8")
        for i, f in enumerate(files)
    ]
    thresholds = default_thresholds()
    with Catalog(path) as catalog:
        catalog.write_batch(records)
        pipeline._derive_flags(catalog, thresholds, None)
        catalog.set_setting("thresholds", thresholds)
    return path


def burst_of_copies(root, kodak_path):
    """``root`` holding three identical frames a.png, b.png, c.png (a.png kept by
    path), scanned."""
    from boda.io import read_image, write_image
    from boda.scan import scan

    root.mkdir()
    image = read_image(kodak_path, max_side=64)
    for name in ("a.png", "b.png", "c.png"):
        write_image(root / name, image)
    scan(root, workers=1)
    return root


def noise_photo(path, seed: int):
    """A small random picture written at ``path`` (its folders made), its size and
    pixels different for every seed; returns ``path``."""
    import numpy as np

    from boda.io import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.random.default_rng(seed).random((30, 40 + seed, 3)).astype(np.float32))
    return path


def catalog_paths(root) -> list[str]:
    """The paths of the catalog's records of the scanned folder ``root``, sorted."""
    from boda.catalog import Catalog

    with Catalog(root, readonly=True) as catalog:
        return sorted(r.path for r in catalog.records())


def edited_by_hand(catalog_path) -> None:
    """Say that the catalog's records were changed behind the scans' back (an SQL
    ``UPDATE`` in a test): a rescan that finds no file changed keeps the stored flags
    (nothing it knows of changed), so the flags are marked stale, as a stopped scan
    leaves them, and the next scan derives them from the edited records."""
    from boda.catalog import Catalog

    with Catalog(catalog_path) as catalog:
        catalog.mark_flags_stale()
