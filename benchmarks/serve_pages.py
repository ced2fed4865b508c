"""Request times of ``boda serve`` on a large catalog.

Protocol
--------
The app of :func:`boda.web.create_app` is called in-process through
``fastapi.testclient.TestClient`` (the time of the request's work: SQLite
queries, JSON, JPEG encoding; no network).  Each URL is requested once cold
(right after the app was made: the first request that needs a pass over every
record, such as the duplicate sets, pays for it), then ``--repeat`` times;
the table gives the cold time and the median of the warm ones.  The summary
answers at once and counts what needs a pass over every record in the
background (``pending``): its first row is the time until every count is in.  The anchor is
the same page of records read the way the exports read it: a full pass of
``Catalog.record_dicts()`` (what ``boda report --json`` costs), measured in the
same run.

Run: ``.venv/bin/python benchmarks/serve_pages.py [CATALOG]`` (default: the
100 000-record catalog of the scale hunt, ``/tmp/hunt/scale/c100k/imgs``, or
``$BODA_SERVE_CATALOG``).  Nothing is written to the catalog's folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

URLS = [
    "/api/summary",
    "/api/images?limit=100",
    "/api/images?limit=100&offset=50000",
    "/api/images?limit=500&offset=99500",
    "/api/images?only=blurry&sort=blurry&limit=100",
    "/api/images?sort=blurry&limit=100",
    "/api/images?sort=colorfulness&order=asc&limit=100&offset=60000",
    "/api/images?sort=size&limit=100",
    "/api/images?only=unflagged&limit=100&offset=20000",
    "/api/images?only=redundant&limit=100&offset=20000",
    "/api/images?only=exact_duplicate,near_duplicate&sort=near_duplicate&limit=100",
    "/api/images?q=img_00421&limit=100",
    "/api/images/5",
    "/api/thumbnails/5",
    "/api/preview/5?max_side=1024",
    "/api/duplicates?kind=near&limit=20",
    "/api/failures",
    "/api/paths?only=blurry",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "catalog", nargs="?",
        default=os.environ.get("BODA_SERVE_CATALOG", "/tmp/hunt/scale/c100k/imgs"),
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

    from boda.catalog import Catalog
    from boda.errors import CatalogError
    from boda.web import create_app

    try:
        catalog = Catalog(args.catalog, readonly=True)
    except CatalogError as err:  # the default is a scratch folder that may be gone
        parser.error(f"{err} (give a scanned folder as CATALOG or set BODA_SERVE_CATALOG)")
    with catalog:
        n = catalog.count_all()
        start = time.perf_counter()
        for _ in catalog.record_dicts():
            pass
        anchor = time.perf_counter() - start
    client = TestClient(create_app(args.catalog), base_url="http://127.0.0.1")
    print(f"catalog: {args.catalog} ({n} records)\n")
    print("| request | cold (s) | warm median (s) | bytes | vs. full pass |")
    print("|---|---:|---:|---:|---:|")
    print(f"| anchor: `Catalog.record_dicts()` full pass | {anchor:.3f} | | | 1 |")
    start = time.perf_counter()
    while client.get("/api/summary").json()["pending"]:  # counted in the background
        time.sleep(0.05)
    print(f"| `/api/summary` until every count is in (background passes) | "
          f"{time.perf_counter() - start:.3f} | | | |")
    client = TestClient(create_app(args.catalog), base_url="http://127.0.0.1")  # cold again
    for url in URLS:
        start = time.perf_counter()
        response = client.get(url)
        cold = time.perf_counter() - start
        assert response.status_code == 200, (url, response.text[:300])
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - start)
        warm = statistics.median(times)
        print(f"| `{url}` | {cold:.3f} | {warm:.3f} | {len(response.content)} | "
              f"{warm / anchor:.3f} |")


if __name__ == "__main__":
    main()
