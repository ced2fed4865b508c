"""FAISS backends of :class:`boda.explain.FeatureIndex`: exact flat search and HNSW graphs.

:class:`FeatureIndex` keeps its vectors (the source of truth, saved in its
``.npz``) and asks :func:`resolve_search` which backend answers a query: its
own exact torch product, :class:`FlatSearch` (FAISS brute force: the same
neighbours, faster at scale thanks to BLAS and a heap top-k) or
:class:`HNSWSearch` (approximate, only when asked for).  The FAISS index is a
cache built from the vectors on the first query after they change.

References
----------
.. [1] J. Johnson, M. Douze and H. Jégou, "Billion-scale similarity search with
   GPUs", IEEE Transactions on Big Data 7(3), 2019 (FAISS).
.. [2] Y. A. Malkov and D. A. Yashunin, "Efficient and robust approximate nearest
   neighbor search using Hierarchical Navigable Small World graphs", IEEE
   Transactions on Pattern Analysis and Machine Intelligence 42(4), 2018 (HNSW).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from boda.errors import InvalidParameterError, MissingDependencyError

#: The values of ``FeatureIndex(search=...)``.
SEARCHES = ("auto", "exact", "faiss", "hnsw")

#: ``search="auto"`` runs FAISS flat search from this many indexed vectors on
#: (when faiss is installed), exact torch search below: measured by
#: ``benchmarks/feature_search.py`` (docs/explain.md, "Searching at scale").
AUTO_FAISS_MIN = 50_000

#: ... and for fewer queries than this at once.  Below it FAISS scans the vectors
#: with SIMD code and a heap (its ``distance_compute_blas_threshold``: 5-20x
#: faster than the torch product, which also normalises the whole index per
#: call); from it both are one BLAS product, and torch's was as fast or faster.
AUTO_FAISS_MAX_QUERIES = 20

#: HNSW graph degree (``M``, neighbours per node and layer; memory ~ ``2 M`` ids
#: per vector) and search breadth (``efSearch``): the benchmark's
#: recall/speed table chose them (recall@10 >= 0.985 at 100 000 vectors).
HNSW_M = 32
HNSW_EF_SEARCH = 64
#: Build breadth (``efConstruction``): FAISS's default.
HNSW_EF_CONSTRUCTION = 40


def import_faiss(search: str = "faiss") -> Any:
    """The ``faiss`` module, or a :class:`MissingDependencyError` naming the extra."""
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss-cpu", "faiss", f"search={search!r}") from None
    return faiss


def faiss_available() -> bool:
    """Whether ``faiss`` can be imported."""
    try:
        import_faiss()
    except MissingDependencyError:
        return False
    return True


def check_search(search: str) -> str:
    """``search`` if it is one of :data:`SEARCHES`; FAISS must be installed for
    ``"faiss"`` and ``"hnsw"`` (asked for explicitly: never silently replaced)."""
    if search not in SEARCHES:
        raise InvalidParameterError(
            f"search must be one of {', '.join(SEARCHES)}; got {search!r}"
        )
    if search in ("faiss", "hnsw"):
        import_faiss(search)
    return search


def check_hnsw(m: int, ef_search: int) -> tuple[int, int]:
    """``(m, ef_search)`` if both are whole numbers >= 1."""
    for name, value in (("hnsw_m", m), ("hnsw_ef_search", ef_search)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameterError(f"{name} must be a whole number >= 1, got {value!r}")
    return m, ef_search


def resolve_search(search: str, n: int, queries: int = 1) -> str:
    """The backend that answers ``queries`` queries of ``n`` indexed vectors:
    ``"exact"``, ``"faiss"`` or ``"hnsw"``.  ``"auto"`` is FAISS flat (exact too)
    from :data:`AUTO_FAISS_MIN` vectors for fewer than :data:`AUTO_FAISS_MAX_QUERIES`
    queries when faiss is installed, else exact torch; never the approximate HNSW."""
    if search != "auto":
        return search
    few = queries < AUTO_FAISS_MAX_QUERIES
    return "faiss" if n >= AUTO_FAISS_MIN and few and faiss_available() else "exact"


@contextlib.contextmanager
def _omp_threads(faiss: Any, threads: int | None) -> Iterator[None]:
    """FAISS's OpenMP (and BLAS) threads set to ``threads`` for the block."""
    if threads is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _prepare(faiss: Any, vectors: np.ndarray, metric: str) -> np.ndarray:
    """Contiguous float32 rows (``vectors`` itself when it is so); for cosine an
    L2-normalised copy (as ``torch.nn.functional.normalize``: a zero vector stays
    zero, so its similarity to anything is 0)."""
    if metric != "cosine":
        return np.ascontiguousarray(vectors, dtype=np.float32)
    x = np.array(vectors, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)  # in place, in parallel: one pass over a copy
    return x


class _FaissSearch:
    """A FAISS index over ``vectors`` answering ``(similarity, row)`` top-k queries."""

    kind = ""

    def __init__(self, vectors: np.ndarray, metric: str, *, threads: int | None = None):
        self.faiss = import_faiss(self.kind)
        self.metric = metric
        self.threads = threads
        with _omp_threads(self.faiss, threads):
            x = _prepare(self.faiss, vectors, metric)
            self.index = self._build(x.shape[1])
            self.index.add(x)
        # Euclidean similarities are recomputed from the vectors (the caller's array,
        # not copied); cosine ones are FAISS's own, and the normalised copy is freed.
        self.vectors = x if metric == "euclidean" else None

    def _build(self, dim: int) -> Any:
        raise NotImplementedError

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for each query, best first: ``(similarity, row)``,
        both ``(Q, k)``; a row of ``-1`` (similarity ``-inf``) where fewer were found.

        Similarity is the cosine, or minus the Euclidean distance recomputed
        from the vectors' differences (FAISS gives squared distances from
        ``|a|^2 + |b|^2 - 2ab``, which cancels for nearby vectors far from the
        origin), the candidates sorted again by it.
        """
        k = min(int(k), self.index.ntotal)
        with _omp_threads(self.faiss, self.threads):
            q = _prepare(self.faiss, queries, self.metric)
            scores, rows = self.index.search(q, k)
        found = rows >= 0
        if self.metric == "cosine":
            sims = scores.astype(np.float32)
        else:
            sims = np.empty(rows.shape, np.float32)
            for start in range(0, len(q), 1024):  # (1024, k, D) differences at a time
                part = slice(start, start + 1024)
                diff = self.vectors[np.where(found[part], rows[part], 0)] - q[part, None, :]
                sims[part] = -np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
        # Best first, equal similarities in row order as in the exact torch search
        # (FAISS's heap gave six copies of the query as rows 53, 52, 51, 50...).
        order = np.lexsort((np.where(found, rows, np.iinfo(rows.dtype).max),
                            np.where(found, -sims, np.inf)), axis=1)  # fmt: skip
        sims, rows = np.take_along_axis(sims, order, 1), np.take_along_axis(rows, order, 1)
        found = rows >= 0
        return np.where(found, sims, -np.inf).astype(np.float32), rows


class FlatSearch(_FaissSearch):
    """Exact nearest neighbours by FAISS brute force (``IndexFlatIP`` / ``IndexFlatL2``) [1]_.

    The neighbours of exact torch search (up to ties between equal
    similarities), no approximation.  Fewer than 20 queries at once are
    answered by a SIMD scan with a heap top-k (4-19x faster than the torch
    product on 10 000 to 1 000 000 vectors); more by blocked BLAS products,
    about as fast as torch's.  Cosine is the inner product of L2-normalised
    float32 vectors.

    Parameters
    ----------
    vectors : numpy.ndarray
        ``(N, D)`` vectors to index (copied into FAISS, as float32; for
        Euclidean similarities the array is also kept, not copied).
    metric : {"cosine", "euclidean"}
    threads : int or None
        OpenMP threads of FAISS while building and searching (None: FAISS's).

    References
    ----------
    .. [1] J. Johnson, M. Douze and H. Jégou, "Billion-scale similarity search
       with GPUs", IEEE Transactions on Big Data 7(3), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.eye(3, dtype=np.float32)
    >>> sims, rows = FlatSearch(x, "cosine").search(x[1:2] + 0.1, k=1)
    >>> int(rows[0, 0])
    1
    """

    kind = "faiss"

    def _build(self, dim: int) -> Any:
        return (self.faiss.IndexFlatIP if self.metric == "cosine" else self.faiss.IndexFlatL2)(dim)


class HNSWSearch(_FaissSearch):
    """Approximate nearest neighbours in a FAISS ``IndexHNSWFlat`` graph [1]_ [2]_.

    A Hierarchical Navigable Small World graph: each vector is linked to
    ``m`` neighbours per layer (``2 m`` on the bottom layer), and a query walks
    the graph greedily from the top layer, keeping the ``ef_search`` best
    candidates on the bottom one.  Recall grows with both; so do the build
    time (``m``), memory (``m``) and the query time (``ef_search``).  The
    defaults gave recall@10 0.97-1 on clustered and real features, 10 000 to
    1 000 000 vectors (docs/explain.md, "Searching at scale").  Similarities
    are exact for the neighbours found.

    Parameters
    ----------
    vectors : numpy.ndarray
        ``(N, D)`` vectors to index (as for :class:`FlatSearch`).
    metric : {"cosine", "euclidean"}
    m : int
        Graph degree ``M`` (:data:`HNSW_M`).
    ef_search : int
        Candidates kept while searching, ``efSearch`` (:data:`HNSW_EF_SEARCH`);
        at least ``k`` is used.
    threads : int or None
        OpenMP threads of FAISS while building and searching (None: FAISS's).

    References
    ----------
    .. [1] Y. A. Malkov and D. A. Yashunin, "Efficient and robust approximate
       nearest neighbor search using Hierarchical Navigable Small World graphs",
       IEEE Transactions on Pattern Analysis and Machine Intelligence 42(4), 2018.
    .. [2] J. Johnson, M. Douze and H. Jégou, "Billion-scale similarity search
       with GPUs", IEEE Transactions on Big Data 7(3), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
    >>> sims, rows = HNSWSearch(x, "euclidean").search(x[7:8], k=1)
    >>> int(rows[0, 0]), float(sims[0, 0])
    (7, -0.0)
    """

    kind = "hnsw"

    def __init__(
        self, vectors: np.ndarray, metric: str, *, m: int = HNSW_M,
        ef_search: int = HNSW_EF_SEARCH, threads: int | None = None,
    ):  # fmt: skip
        self.m, self.ef_search = check_hnsw(m, ef_search)
        super().__init__(vectors, metric, threads=threads)

    def _build(self, dim: int) -> Any:
        kind = self.faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else self.faiss.METRIC_L2
        index = self.faiss.IndexHNSWFlat(dim, self.m, kind)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.index.hnsw.efSearch = max(self.ef_search, int(k))
        return super().search(queries, k)
