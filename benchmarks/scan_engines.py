"""Scan engines: ``scan()`` with the local process pool vs Ray, side by side.

On one folder (default: 96 JPEGs made from the 24 Kodak photos: each as it is,
mirrored, flipped and both; or the folder given as an argument), every round
times, in this order and each into a fresh catalog, with the same workers:

- ``local``: ``scan(DIR, workers=W)`` (the process pool, forked inside the clock);
- ``ray, start-up included``: ``scan(DIR, workers=W, engine="ray")`` with no Ray
  running, so the scan starts a local runtime of W CPUs and shuts it down;
- ``ray, runtime running``: the same with a runtime the caller started (outside
  the clock, warmed by one untimed scan), as on a cluster that is up already.

Rounds are interleaved so that the machine's state is shared; the table gives
the median of each and its ratio to ``local``.

Run:  .venv/bin/python benchmarks/scan_engines.py [DIR] [--rounds 3] [--workers 2] [--copies 1]
Reads ../shared/data/kodak24 (override with BODA_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BODA_SHARED_DATA", REPO.parent / "shared" / "data"))


def build_folder(base: Path, copies: int = 1) -> Path:
    """96 distinct JPEGs (q90, 768x512) from the Kodak photos, ``copies`` times each
    (the copies are hard links where the file system allows)."""
    from boda.io import read_image, write_image

    kodak = sorted((SHARED / "kodak24").glob("*.png"))
    if not kodak:
        sys.exit(f"no Kodak photos under {SHARED / 'kodak24'}; set BODA_SHARED_DATA")
    folder = base / "kodak96"
    folder.mkdir(parents=True)
    for src in kodak:
        img = read_image(src)
        variants = [img, img[:, ::-1], img[::-1], img[::-1, ::-1]]
        for k, variant in enumerate(variants):
            first = folder / f"{src.stem}_{k}.jpg"
            write_image(first, variant, quality=90)
            for c in range(1, copies):
                copy = folder / f"{src.stem}_{k}_copy{c}.jpg"
                try:
                    os.link(first, copy)
                except OSError:
                    shutil.copyfile(first, copy)
    return folder


def timed_scan(folder: Path, catalog: Path, workers: int, engine: str) -> tuple[float, int]:
    from boda.scan import scan

    started = time.perf_counter()
    summary = scan(folder, catalog_path=catalog, workers=workers, engine=engine)
    return time.perf_counter() - started, summary.analysed


def start_runtime(workers: int) -> None:
    import ray

    ray.init(
        num_cpus=workers, include_dashboard=False, logging_level=logging.ERROR,
        log_to_driver=False, object_store_memory=100 << 20,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="folder to scan (default: Kodak x4)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--copies", type=int, default=1,
                        help="files per Kodak variant in the default folder (5: 480 files)")
    args = parser.parse_args()
    import ray

    import boda.scan  # noqa: F401  # imported outside the clock, for every engine

    names = ["local", "ray, start-up included", "ray, runtime running"]
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="boda-engines-") as tmp:
        base = Path(tmp)
        folder = args.folder or build_folder(base, args.copies)
        analysed: set[int] = set()
        for r in range(args.rounds):
            for name in names:
                engine = "local" if name == "local" else "ray"
                if name == "ray, runtime running":
                    start_runtime(args.workers)
                    timed_scan(folder, base / f"warmup{r}.db", args.workers, "ray")
                seconds, files = timed_scan(folder, base / f"{r}{name}.db", args.workers, engine)
                times[name].append(seconds)
                analysed.add(files)
            ray.shutdown()
            print(f"round {r + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()),
                  file=sys.stderr)

    if len(analysed) != 1:
        sys.exit(f"the engines analysed different numbers of files: {sorted(analysed)}")
    local = statistics.median(times["local"])
    print(f"\n{files} files, {args.workers} workers, {os.cpu_count()} cores, Ray "
          f"{ray.__version__}, median of {args.rounds} interleaved rounds\n")
    print("| engine | seconds | images/s | time vs local |")
    print("|---|---:|---:|---:|")
    for name in names:
        median = statistics.median(times[name])
        print(f"| {name} | {median:.2f} | {files / median:.1f} | {median / local:.2f}x |")


if __name__ == "__main__":
    main()
