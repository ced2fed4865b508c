"""FAISS search of :class:`boda.explain.FeatureIndex` (``search=``) and ``boda similar --search``:
flat FAISS finds exact search's neighbours with its similarities, HNSW finds most of them,
``auto`` never picks the approximate one, the choice is saved, and a missing FAISS is said."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
faiss = pytest.importorskip("faiss")
from typer.testing import CliRunner  # noqa: E402

import boda.explain._vector_search as vs  # noqa: E402
from boda.cli import app  # noqa: E402
from boda.errors import InvalidParameterError, MissingDependencyError  # noqa: E402
from boda.explain import FeatureIndex  # noqa: E402
from boda.io import read_image, write_image  # noqa: E402
from boda.nn import cpu_threads, resnet20  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    # OpenMP threads spin while they wait: on a busy machine 2 threads can be 10x slower
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def model():
    return resnet20().eval()


def _index(model, vectors, metric="cosine", search="faiss", **kw) -> FeatureIndex:
    index = FeatureIndex(model, "layer3", metric=metric, search=search, **kw)
    return index.add_vectors([f"v{i}" for i in range(len(vectors))], torch.as_tensor(vectors))


def _data(kind: str, n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors and 40 queries: Gaussian, or clustered (n / 50 centres, noise 0.3)."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.standard_normal((n, dim), np.float32), rng.standard_normal((40, dim), np.float32)
    centres = 3 * rng.standard_normal((max(1, n // 50), dim))
    draw = lambda m: centres[rng.integers(0, len(centres), m)] + 0.3 * rng.standard_normal(  # noqa: E731
        (m, dim)
    )
    return draw(n).astype(np.float32), draw(40).astype(np.float32)


def _true_similarity(vectors, queries, metric) -> np.ndarray:
    """The (Q, N) similarity matrix in float64: the reference both searches must meet."""
    x, q = np.asarray(vectors, np.float64), np.asarray(queries, np.float64)
    if metric == "cosine":
        unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # noqa: E731
        return unit(q) @ unit(x).T
    # float64: |a|^2 + |b|^2 - 2ab keeps ~1e-12 of the distances here
    squared = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * q @ x.T
    return -np.sqrt(np.maximum(squared, 0))


def _check_nearest(found, sim, k, tol=1e-5):
    """Each list holds min(k, N) distinct names, best first, each with its true similarity,
    none worse than the true k-th best (ties at the boundary may pick either)."""
    for row, truth in zip(found, sim, strict=True):
        assert len(row) == min(k, sim.shape[1]) and len({n for n, _ in row}) == len(row)
        got = np.array([s for _, s in row])
        assert np.all(np.diff(got) <= tol)
        true = truth[[int(n[1:]) for n, _ in row]]
        np.testing.assert_allclose(got, true, atol=tol)
        assert true.min() >= np.sort(truth)[::-1][len(row) - 1] - tol


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_faiss_flat_finds_the_exact_neighbours(model, metric, kind):
    vectors, queries = _data(kind, 3000, 32, seed=1)
    if metric == "euclidean":
        vectors += 20  # far from the origin: float32 |a|^2 + |b|^2 - 2ab would cancel
        queries += 20
    exact = _index(model, vectors, metric, search="exact").query(torch.as_tensor(queries), k=10)
    index = _index(model, vectors, metric)
    found = index.query(torch.as_tensor(queries), k=10)
    assert index.last_search == "faiss" and index._faiss is not None
    sim = _true_similarity(vectors, queries, metric)
    _check_nearest(exact, sim, 10)
    _check_nearest(found, sim, 10)
    # the same numbers; the same lists, up to the order of near ties in clusters
    names = [[n for n, _ in r] for r in found], [[n for n, _ in r] for r in exact]
    if kind == "random":
        assert names[0] == names[1]
    else:
        assert [set(r) for r in names[0]] == [set(r) for r in names[1]]
    np.testing.assert_allclose([[s for _, s in r] for r in found],
                               [[s for _, s in r] for r in exact], atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_k_larger_than_the_index_duplicates_and_zero_vectors(model, metric):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((4, 8)).astype(np.float32)
    vectors = np.concatenate([base, base[1:3], np.zeros((2, 8), np.float32)])  # 2 dups, 2 zeros
    queries = np.concatenate([base[1:2] + 0.01, np.zeros((1, 8), np.float32)])
    exact = _index(model, vectors, metric, search="exact").query(torch.as_tensor(queries), k=50)
    found = _index(model, vectors, metric).query(torch.as_tensor(queries), k=50)
    sim = _true_similarity(vectors, queries, metric)
    for result in (exact, found):
        _check_nearest(result, sim, 50)  # all 8, the duplicates side by side
        assert {result[0][0][0], result[0][1][0]} == {"v1", "v4"}
    np.testing.assert_allclose([[s for _, s in r] for r in found],
                               [[s for _, s in r] for r in exact], atol=1e-5)  # fmt: skip
    if metric == "cosine":
        # A zero vector has no direction: normalised, it stays zero, so its cosine with
        # anything is 0 -- a zero query ties with every image, zero images rank after
        # any image at a positive cosine.  Both searches say so.
        for result in (exact, found):
            assert [s for _, s in result[1]] == [0.0] * 8
            assert [s for n, s in result[0] if n in ("v6", "v7")] == [0.0, 0.0]


def test_many_euclidean_queries_are_answered_in_chunks_alike(model):
    rng = np.random.default_rng(10)
    vectors = rng.standard_normal((300, 16), np.float32) + 20
    queries = torch.as_tensor(rng.standard_normal((1100, 16), np.float32) + 20)  # 2 chunks
    exact = _index(model, vectors, "euclidean", search="exact").query(queries, k=4)
    found = _index(model, vectors, "euclidean").query(queries, k=4)
    assert [[n for n, _ in r] for r in found] == [[n for n, _ in r] for r in exact]
    np.testing.assert_allclose([[s for _, s in r] for r in found],
                               [[s for _, s in r] for r in exact], atol=1e-5)  # fmt: skip


def test_hnsw_recall_on_clustered_vectors(model):
    vectors, _ = _data("clustered", 5000, 64, seed=3)
    rng = np.random.default_rng(4)
    queries = vectors[rng.choice(5000, 200, replace=False)] + rng.normal(0, 0.1, (200, 64))
    q = torch.as_tensor(queries, dtype=torch.float32)
    for metric in ("cosine", "euclidean"):
        exact = _index(model, vectors, metric, search="exact").query(q, k=10)
        index = _index(model, vectors, metric, search="hnsw")
        assert (index.hnsw_m, index.hnsw_ef_search) == (vs.HNSW_M, vs.HNSW_EF_SEARCH)
        found = index.query(q, k=10)
        recall = np.mean([len({n for n, _ in f} & {n for n, _ in e}) / 10
                          for f, e in zip(found, exact, strict=True)])  # fmt: skip
        assert recall >= 0.95, (metric, recall)
        # what it finds carries the true similarity, best first
        sim = _true_similarity(vectors, queries, metric)
        for row, truth in zip(found, sim, strict=True):
            got = [s for _, s in row]
            assert got == sorted(got, reverse=True)
            np.testing.assert_allclose(got, truth[[int(n[1:]) for n, _ in row]], atol=1e-4)


def test_hnsw_parameters_are_checked_and_used(model):
    vectors, queries = _data("random", 300, 16, seed=5)
    with pytest.raises(InvalidParameterError, match="hnsw_m must be"):
        _index(model, vectors, search="hnsw", hnsw_m=0)
    index = _index(model, vectors, search="hnsw", hnsw_m=8, hnsw_ef_search=4)
    index.query(torch.as_tensor(queries[:1]), k=20)  # efSearch raised to k: 20 found
    graph = index._faiss[1]
    assert graph.index.hnsw.efSearch == 20 and len(index.query(torch.as_tensor(queries[:1]),
                                                                k=20)[0]) == 20  # fmt: skip


def test_auto_is_exact_below_the_threshold_and_faiss_from_it(model, monkeypatch):
    monkeypatch.setattr(vs, "AUTO_FAISS_MIN", 100)
    vectors, queries = _data("random", 100, 8, seed=6)
    index = _index(model, vectors[:99], search="auto")
    assert FeatureIndex(model, "layer3").search == "auto"  # the default
    few = torch.as_tensor(queries[: vs.AUTO_FAISS_MAX_QUERIES - 1])
    index.query(few, k=3)
    assert index.last_search == "exact" and index._faiss is None
    index.add_vectors(["v99"], torch.as_tensor(vectors[99:]))
    found = index.query(few, k=3)
    assert index.last_search == "faiss" and index._faiss is not None  # never "hnsw"
    _check_nearest(found, _true_similarity(vectors, queries[: len(few)], "cosine"), 3)
    # a batch of queries: one BLAS product either way, torch's
    index.query(torch.as_tensor(queries[: vs.AUTO_FAISS_MAX_QUERIES]), k=3)
    assert index.last_search == "exact"
    # without FAISS installed, auto stays exact at any size
    monkeypatch.setitem(sys.modules, "faiss", None)
    index.query(few, k=3)
    assert index.last_search == "exact"


def test_missing_faiss_is_a_clear_error_when_asked_for(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss raises ImportError
    for search in ("faiss", "hnsw"):
        with pytest.raises(MissingDependencyError, match=r"pip install 'boda\[faiss\]'"):
            FeatureIndex(model, "layer3", search=search)
    with pytest.raises(InvalidParameterError, match="search must be one of auto, exact"):
        FeatureIndex(model, "layer3", search="annoy")


def test_save_and_load_keep_the_search(model, tmp_path):
    vectors, queries = _data("random", 50, 8, seed=7)
    index = _index(model, vectors, search="hnsw", hnsw_m=12, hnsw_ef_search=40)
    path = tmp_path / "features.npz"
    index.save(path)
    back = FeatureIndex.load(path, model, "layer3")
    assert (back.search, back.hnsw_m, back.hnsw_ef_search) == ("hnsw", 12, 40)
    assert back.query(torch.as_tensor(queries), k=5) == index.query(torch.as_tensor(queries), k=5)
    assert FeatureIndex.load(path, model, "layer3", search="exact").search == "exact"
    # a file written before `search` existed loads as "auto"
    with np.load(path, allow_pickle=False) as data:
        arrays = dict(data)
    header = json.loads(str(arrays["header"]))
    del header["search"], header["hnsw"]
    arrays["header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "old.npz", **arrays)
    old = FeatureIndex.load(tmp_path / "old.npz", model, "layer3")
    assert (old.search, old.hnsw_m) == ("auto", vs.HNSW_M)


@pytest.mark.parametrize("search", ["faiss", "hnsw"])
def test_adding_vectors_after_a_query_rebuilds_the_index(model, search):
    vectors, queries = _data("random", 200, 16, seed=8)
    index = _index(model, vectors, search=search)
    q = torch.as_tensor(queries[:1], dtype=torch.float32)
    assert index.query(q, k=1)[0][0][0] != "new"
    built = index._faiss[1]
    index.add_vectors(["new"], 2 * q)
    assert index._faiss is None  # dropped: rebuilt on the next query
    assert index.query(q, k=1)[0][0] == ("new", pytest.approx(1.0))
    assert index._faiss[1] is not built
    assert index.query(q, k=2)[0][0][0] == "new" and index._faiss[1] is not built
    # vectors replaced by assignment are seen too
    index.vectors = index.vectors.clone()
    index.vectors[0] = q[0]
    assert index.query(q, k=1)[0][0][0] in ("v0", "new")


def test_faiss_runs_with_torchs_thread_count(model, monkeypatch):
    vectors, queries = _data("random", 100, 8, seed=9)
    index = _index(model, vectors)
    calls = []
    real = faiss.omp_set_num_threads
    monkeypatch.setattr(faiss, "omp_set_num_threads", lambda n: calls.append(n) or real(n))
    with cpu_threads(1):
        index.query(torch.as_tensor(queries), k=3)
    assert calls[::2] == [1, 1]  # torch's count while building, then while searching
    # (torch and FAISS may share one OpenMP runtime, as here: set and restored anyway)
    before = faiss.omp_get_max_threads()
    with vs._omp_threads(faiss, 1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before


# -- boda similar --search ---------------------------------------------------------------------


@pytest.fixture
def images(tmp_path, kodak_paths):
    root = tmp_path / "imgs"
    root.mkdir()
    for i, path in enumerate(kodak_paths):
        write_image(root / f"k{i}.png", read_image(path, max_side=48))
    return root


def _similar(*args):
    result = CliRunner().invoke(app, ["similar", *[str(a) for a in args]])
    return result.exit_code, result.stdout, result.stderr


def test_cli_similar_search_faiss_is_the_exact_answer(images):
    query = images / "k2.png"
    code, out, err = _similar(query, images, "-k", 3, "--search", "faiss", "--json", "--threads", 1)
    assert code == 0, err
    faiss_run = json.loads(out)
    code, out, _ = _similar(query, images, "-k", 3, "--json", "--threads", 1)
    exact_run = json.loads(out)
    assert faiss_run["search"] == "faiss" and exact_run["search"] == "exact"  # auto: 5 images
    assert [p["path"] for p in faiss_run["neighbours"]] == [p["path"] for p in exact_run[
        "neighbours"]]  # fmt: skip
    np.testing.assert_allclose([p["similarity"] for p in faiss_run["neighbours"]],
                               [p["similarity"] for p in exact_run["neighbours"]], atol=1e-5)
    code, _, err = _similar(query, images, "--search", "annoy")
    assert code == 2 and "--search must be auto, exact, faiss, hnsw" in err


def test_cli_similar_without_faiss_names_the_extra(images, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    code, _, err = _similar(images / "k0.png", images, "--search", "hnsw")
    assert code != 0 and "pip install 'boda[faiss]'" in " ".join(err.split())


def test_cli_similar_keeps_the_search_of_its_index_file_unless_told(images, tmp_path):
    index = tmp_path / "feat.npz"
    query = images / "k2.png"
    code, out, err = _similar(query, images, "--search", "hnsw", "--index", index, "--json")
    assert code == 0 and json.loads(out)["search"] == "hnsw", err
    code, out, err = _similar(query, images, "--index", index, "--json")  # no --search
    assert code == 0 and json.loads(out)["search"] == "hnsw", err
    code, out, err = _similar(query, images, "--index", index, "--search", "exact", "--json")
    assert code == 0 and json.loads(out)["search"] == "exact", err
    code, out, _ = _similar(query, images, "--json")  # no index: auto
    assert json.loads(out)["search"] == "exact"
