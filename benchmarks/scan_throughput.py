"""Scan throughput: boda scan vs cleanvision vs merely decoding, side by side.

Builds a folder of real photos (the 24 Kodak images at 1x, 1x mirrored, 2x and
6x, as JPEG q90: 96 files of 0.25 to 9 MP, a quarter of them camera-sized) and
measures, with 2 workers each:

- decode only: ``boda.io.read_image(path, max_side=ANALYSIS_MAX_SIDE)`` for every
  file in a 2-process pool (the floor a scan cannot beat);
- ``boda.scan.scan`` (all checks, fresh catalog) and the HTML report;
- cleanvision ``Imagelab(data_path).find_issues(n_jobs=2)`` with its default
  checks, run in the separate virtual environment ``.bench-venv`` (made with
  ``python3 -m venv .bench-venv && .bench-venv/bin/pip install cleanvision``).

Run:  .venv/bin/python benchmarks/scan_throughput.py  [--copies N]
Reads ../shared/data/kodak24 (override with BODA_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BODA_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCH_PYTHON = REPO / ".bench-venv" / "bin" / "python"

CLEANVISION_SNIPPET = """
import sys, time, json, logging
logging.disable(logging.WARNING)
from cleanvision import Imagelab
t0 = time.perf_counter()
lab = Imagelab(data_path=sys.argv[1])
lab.find_issues(n_jobs=2, verbose=False)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def build_folder(root: Path, copies: int) -> list[Path]:
    """Write the benchmark photos (JPEG q90) and return their paths."""
    from boda.io import read_image, write_image

    paths = []
    kodak = sorted((SHARED / "kodak24").glob("*.png"))
    if not kodak:
        sys.exit(f"no Kodak photos under {SHARED / 'kodak24'}; set BODA_SHARED_DATA")
    for src in kodak:
        img = read_image(src)
        pil = Image.fromarray((img * 255).round().astype(np.uint8))
        big2, big6 = (
            np.asarray(pil.resize((img.shape[1] * k, img.shape[0] * k), Image.Resampling.LANCZOS))
            for k in (2, 6)
        )
        # 0.25 MP, 0.25 MP mirrored, 1 MP, 9 MP (a camera-sized file)
        variants = [img, img[:, ::-1], big2, big6[::-1]]
        for copy in range(copies):
            for k, variant in enumerate(variants):
                path = root / f"{src.stem}_{k}_{copy}.jpg"
                shade = 1.0 - 0.02 * copy  # copies differ slightly: no exact duplicates
                arr = variant if variant.dtype != np.uint8 else variant / 255.0
                write_image(path, arr * shade, quality=90)
                paths.append(path)
    return paths


def _decode(path: Path) -> tuple[int, ...]:
    from boda.io import read_image
    from boda.quality import ANALYSIS_MAX_SIDE

    return read_image(path, max_side=ANALYSIS_MAX_SIDE).shape


def time_decode(paths: list[Path]) -> float:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["boda.io", "boda.quality"])
    with ctx.Pool(2) as pool:
        pool.map(_decode, paths[:2])  # start the workers before timing
        t0 = time.perf_counter()
        pool.map(_decode, paths, chunksize=2)
        return time.perf_counter() - t0


def time_boda(root: Path) -> tuple[float, float]:
    from boda.report import write_html_report
    from boda.scan import scan

    catalog = root.parent / "bench-catalog.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = scan(root, workers=2, catalog_path=catalog)
    t_scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_html_report(catalog, root.parent / "bench-report.html")
    t_report = time.perf_counter() - t0
    assert summary.analysed == summary.total and not summary.failed
    return t_scan, t_report


def time_cleanvision(root: Path) -> float | None:
    if not BENCH_PYTHON.exists():
        print(f"(cleanvision skipped: {BENCH_PYTHON} not found)", file=sys.stderr)
        return None
    import json

    out = subprocess.run(
        [str(BENCH_PYTHON), "-c", CLEANVISION_SNIPPET, str(root)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1, help="copies of each variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        root.mkdir()
        paths = build_folder(root, args.copies)
        n = len(paths)
        t_decode = time_decode(paths)
        t_scan, t_report = time_boda(root)
        t_clean = time_cleanvision(root)
    rows = [("decode only (boda.io, 2 procs)", t_decode), ("boda scan (2 workers)", t_scan),
            ("boda scan + HTML report", t_scan + t_report)]
    if t_clean is not None:
        rows.append(("cleanvision find_issues (n_jobs=2)", t_clean))
    print(f"\n{n} JPEG photos (Kodak24 at 1x, 2x and 6x: 0.25 to 9 MP), 2 workers\n")
    print("| run | seconds | images/s | × cleanvision speed | time / decode-only |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in rows:
        speed = f"{t_clean / seconds:.2f}" if t_clean else "n/a"
        ratio = seconds / t_decode
        print(f"| {name} | {seconds:.2f} | {n / seconds:.1f} | {speed} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
