"""Exact torch search against FAISS flat and HNSW for :class:`boda.explain.FeatureIndex`.

Measures, side by side in one run, through ``FeatureIndex.query`` (cosine, k=10,
1 000 queries that are not in the index):

1. build time (the FAISS index is built on the first query after the vectors
   change; exact search builds nothing), the time of one query asked alone (as
   ``boda similar`` asks) and of 1 000 queries at once, speed-ups against exact
   torch search (the anchor) and recall@10 against it, on seeded
   clustered Gaussian vectors of 64 and 512 floats (ResNet-20/56's ``layer3``
   pooled: 64; ResNet-18's ``layer4``: 512), 10 000 to 1 000 000 of them;
2. HNSW recall/speed for graph degrees ``M`` and search breadths ``efSearch``
   at 100 000 vectors: how the defaults were chosen;
3. the same three searches on real features: ``layer3`` of the shipped
   ``resnet56-cifar10`` on 32 px crops (stride 16) of the 24 Kodak photos
   (``../shared/data/kodak24``, override with ``BODA_SHARED_DATA``), skipped
   when the photos are not there.

The data: ``N / 100`` cluster centres drawn from N(0, 1), each vector a centre
plus N(0, 0.5^2) noise (queries drawn the same way).  Thread count: torch's,
or ``--threads`` (FAISS is given the same; on a shared machine one thread gives
steadier numbers: OpenMP threads spin while they wait).  Run from the repository
root (~7 min on 2 cores)::

    .venv/bin/python benchmarks/feature_search.py --threads 1
    .venv/bin/python benchmarks/feature_search.py --no-1m --no-kodak    # ~2 min
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from boda.explain import FeatureIndex
from boda.explain._vector_search import faiss_available
from boda.nn import resnet20

DATA = Path(os.environ.get("BODA_SHARED_DATA", Path(__file__).parent / "../../shared/data"))
QUERIES, K = 1000, 10


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """``n`` vectors: a random centre each, plus N(0, 0.5^2) noise."""
    picks = rng.integers(0, len(centres), n)
    return (centres[picks] + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)).astype(
        np.float32
    )


def recall(found: list[list[tuple[str, float]]], truth: list[list[tuple[str, float]]]) -> float:
    """Mean share of the exact top-k names found."""
    return float(np.mean([len({n for n, _ in f} & {n for n, _ in t}) / len(t)
                          for f, t in zip(found, truth, strict=True)]))  # fmt: skip


def best_time(fn, repeat: int = 3) -> float:
    """Shortest of ``repeat`` runs, in seconds (the machine may be shared)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(index: FeatureIndex, queries: torch.Tensor, search: str, *, singles: int = 20,
            **hnsw) -> tuple:  # fmt: skip
    """(build s, one query s, batch s, batch results) of ``index`` searched as ``search``:
    the build is what the first query after a change pays (``boda similar`` pays it on
    each run); one query is the best mean of ``singles`` queries asked one at a time."""
    index.search = search
    for name, value in hnsw.items():
        setattr(index, name, value)
    start = time.perf_counter()
    if search != "exact":
        index._faiss_search(search)
    build = time.perf_counter() - start
    one = best_time(lambda: [index.query(queries[i : i + 1], k=K) for i in range(singles)])
    found: list = []
    batch = best_time(lambda: found.__setitem__(slice(None), index.query(queries, k=K)))
    return build, one / singles, batch, found


def compare(vectors: np.ndarray, queries: np.ndarray, model: torch.nn.Module) -> list[tuple]:
    """Rows (search, build s, one query s, batch s, speed-ups, recall) for the three."""
    index = FeatureIndex(model, "layer3").add_vectors(
        [str(i) for i in range(len(vectors))], torch.from_numpy(vectors)
    )
    q = torch.from_numpy(queries)
    _, exact_one, exact_batch, truth = measure(index, q, "exact")
    rows = [("exact torch", 0.0, exact_one, exact_batch, 1.0, 1.0, 1.0)]
    for search in ("faiss", "hnsw"):
        build, one, batch, found = measure(index, q, search)
        name = "faiss flat" if search == "faiss" else (
            f"hnsw M={index.hnsw_m} ef={index.hnsw_ef_search}")  # fmt: skip
        rows.append((name, build, one, batch, exact_one / one, exact_batch / batch,
                     recall(found, truth)))  # fmt: skip
        index._faiss = None  # free the FAISS copy before the next
    return rows


HEADER = ("| search | build s | 1 query ms | 1000 queries s | speed-up, 1 query | "
          "speed-up, 1000 | recall@10 |")  # fmt: skip


def print_rows(prefix: str, rows: list[tuple]) -> None:
    for search, build, one, batch, r_one, r_batch, rec in rows:
        print(f"| {prefix}{search} | {build:.2f} | {one * 1000:.2f} | {batch:.3f} | "
              f"{r_one:.1f}x | {r_batch:.1f}x | {rec:.3f} |")  # fmt: skip


def scale_table(sizes: list[tuple[int, int]], model: torch.nn.Module) -> None:
    print("| dim | vectors " + HEADER)
    print("|---|---|---|---|---|---|---|---|---|")
    for dim, n in sizes:
        rng = np.random.default_rng(dim * 1_000_003 + n)
        centres = rng.standard_normal((max(10, n // 100), dim), dtype=np.float32)
        vectors, queries = clustered(n, dim, rng, centres), clustered(QUERIES, dim, rng, centres)
        print_rows(f"{dim} | {n:,} | ", compare(vectors, queries, model))
        del vectors


def hnsw_table(dims: list[int], model: torch.nn.Module, n: int = 100_000) -> None:
    print(f"\nHNSW at {n:,} vectors (cosine, k={K}, {QUERIES} queries):\n")
    print("| dim | M | build s | efSearch | query s / 1000 | speed-up vs exact | recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for dim in dims:
        rng = np.random.default_rng(dim * 1_000_003 + n)
        centres = rng.standard_normal((n // 100, dim), dtype=np.float32)
        vectors, queries = clustered(n, dim, rng, centres), clustered(QUERIES, dim, rng, centres)
        index = FeatureIndex(model, "layer3").add_vectors(
            [str(i) for i in range(n)], torch.from_numpy(vectors)
        )
        q = torch.from_numpy(queries)
        _, _, exact_s, truth = measure(index, q, "exact", singles=1)
        for m in (16, 32, 48):
            built = None
            for ef in (16, 32, 64, 128):  # one graph per M: efSearch only changes queries
                build, _, query_s, found = measure(index, q, "hnsw", singles=1, hnsw_m=m,
                                                   hnsw_ef_search=ef)  # fmt: skip
                built = build if built is None else built
                print(f"| {dim} | {m} | {built:.2f} | {ef} | {query_s:.3f} | "
                      f"{exact_s / query_s:.1f}x | {recall(found, truth):.3f} |")  # fmt: skip
            index._faiss = None


def kodak_features() -> np.ndarray | None:
    """Pooled ``layer3`` features of resnet56-cifar10 on 32 px crops of the Kodak photos."""
    from boda.explain import layer_features
    from boda.io import read_image
    from boda.nn import image_to_tensor, load_model

    paths = sorted((DATA / "kodak24").glob("*.png"))
    if not paths:
        return None
    lm = load_model("resnet56-cifar10")
    parts = []
    for path in paths:
        img = read_image(path)
        crops = [img[y : y + 32, x : x + 32]
                 for y in range(0, img.shape[0] - 31, 16)
                 for x in range(0, img.shape[1] - 31, 16)]  # fmt: skip
        x = image_to_tensor(crops, mean=lm.mean, std=lm.std)
        with torch.inference_mode():
            parts.append(layer_features(lm.model, "layer3", x))
    return torch.cat(parts).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-1m", action="store_true", help="leave out the 1 000 000 rows")
    parser.add_argument("--no-kodak", action="store_true", help="leave out the real features")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch's)")
    args = parser.parse_args()
    if not faiss_available():
        raise SystemExit("needs faiss: pip install 'boda[faiss]'")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = resnet20()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cosine, k={K}, "
          f"{QUERIES} queries\n")  # fmt: skip
    sizes = [(64, n) for n in (10_000, 50_000, 100_000)]
    sizes += [] if args.no_1m else [(64, 1_000_000)]
    sizes += [(512, n) for n in (10_000, 50_000, 100_000)]
    scale_table(sizes, model)
    hnsw_table([64, 512], model)
    if not args.no_kodak:
        start = time.perf_counter()
        features = kodak_features()
        if features is None:
            print(f"\n(no Kodak photos in {DATA / 'kodak24'}: real features skipped)")
            return
        rng = np.random.default_rng(0)
        order = rng.permutation(len(features))
        queries, vectors = features[order[:QUERIES]], features[order[QUERIES:]]
        print(f"\nReal features: resnet56-cifar10 layer3 (64 floats) of {len(features):,} Kodak "
              f"crops of 32 px (embedded in {time.perf_counter() - start:.0f} s); "
              f"{QUERIES} of them are the queries:\n")  # fmt: skip
        print("| vectors " + HEADER)
        print("|---|---|---|---|---|---|---|---|")
        print_rows(f"{len(vectors):,} | ", compare(vectors, queries, model))


if __name__ == "__main__":
    main()
