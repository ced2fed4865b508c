"""``boda.embed``: PCA and t-SNE maps, and the neighbour vote on labels.

References: scikit-learn's PCA and its trustworthiness score (Venna & Kaski
2001) for the maps; a plain double loop over every pair for the vote.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from boda.embed import neighbour_votes, pca, project, tsne
from boda.errors import InvalidParameterError, MissingDependencyError

sklearn = pytest.importorskip("sklearn")
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402


def _clusters(rng, n_per=40, k=3, d=20, spread=0.3):
    centres = rng.normal(size=(k, d)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centres])
    return x, np.repeat(np.arange(k), n_per)


def test_pca_is_sklearns_up_to_the_sign_of_each_axis(rng):
    x = rng.normal(size=(60, 7)) @ rng.normal(size=(7, 7))
    ours = pca(x, 3)
    theirs = PCA(3, svd_solver="full").fit_transform(x)
    signs = np.sign((ours * theirs).sum(0))
    np.testing.assert_allclose(ours, theirs * signs, rtol=1e-7, atol=1e-9)
    # the sign rule: each axis's largest loading is positive, whatever the rows' order
    np.testing.assert_allclose(pca(x[::-1], 3)[::-1], ours, atol=1e-9)
    shifted = pca(x + 5.0, 3)  # centring: a shift changes nothing
    np.testing.assert_allclose(shifted, ours, atol=1e-8)


def test_tsne_keeps_neighbours_and_clusters_and_is_seeded(rng):
    x, labels = _clusters(rng)
    mapped = tsne(x, perplexity=15, seed=3)
    assert mapped.shape == (120, 2) and np.isfinite(mapped).all()
    assert trustworthiness(x, mapped, n_neighbors=5) > 0.9
    # every point's nearest point on the map is of its own cluster
    d = ((mapped[:, None] - mapped[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() == 1.0
    np.testing.assert_array_equal(tsne(x, perplexity=15, seed=3), mapped)
    # PCA keeps fewer neighbours than t-SNE on clusters in 20-D: the map earns its cost
    assert trustworthiness(x, mapped, n_neighbors=5) >= trustworthiness(x, pca(x), n_neighbors=5)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
def test_a_tsne_seed_out_of_range_is_refused(rng, seed):
    # was scikit-learn's own InvalidParameterError, with its random_state's name
    with pytest.raises(InvalidParameterError, match="seed must be a whole number from 0"):
        tsne(rng.normal(size=(10, 3)), seed=seed)


def test_tsne_of_rows_all_the_same_is_one_spot():
    # scikit-learn's PCA start divided by their zero spread and its optimisation then
    # crashed the process (a segmentation fault): run in a child process
    code = ("import numpy as np; from boda.embed import tsne; "
            "print(np.abs(tsne(np.ones((6, 3)))).max())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "0.0", done.stderr[-2000:]


def test_tsne_on_few_points_lowers_the_perplexity(rng):
    assert tsne(rng.normal(size=(6, 4)), perplexity=30).shape == (6, 2)


def test_a_missing_scikit_learn_is_said(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(MissingDependencyError, match=r"boda\[map\]"):
        tsne(rng.normal(size=(10, 3)))
    assert project(rng.normal(size=(10, 3)), "pca").shape == (10, 2)  # PCA needs nothing


@pytest.mark.parametrize("bad, match", [
    (np.zeros(5), "2-D"), (np.zeros((1, 3)), "at least"), (np.full((5, 2), np.nan), "NaN"),
])
def test_bad_vectors_are_refused(bad, match):
    with pytest.raises(InvalidParameterError, match=match):
        project(bad, "pca")
    with pytest.raises(InvalidParameterError, match="method"):
        project(np.zeros((5, 2)), "umap")


def _reference_votes(x, labels, k, metric):
    """Every pair, one at a time."""
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    out = []
    voters = [j for j, lab in enumerate(labels) if lab is not None]
    for i in range(len(x)):
        others = [j for j in voters if j != i]
        if metric == "cosine":
            score = {j: float(x[i] @ x[j]) for j in others}
        else:
            score = {j: -float(((x[i] - x[j]) ** 2).sum()) for j in others}
        near = sorted(others, key=lambda j: -score[j])[: min(k, len(voters) - 1)]
        got = [labels[j] for j in near]
        counts = {lab: got.count(lab) for lab in got}
        best = max(counts.values())
        majority = next(lab for lab in got if counts[lab] == best)
        own = labels[i]
        same = got.count(own) if own is not None else 0
        out.append((same / len(got) if own is not None else None, majority,
                    own is not None and same < best))
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_votes_equal_a_plain_loop_over_every_pair(rng, metric, monkeypatch):
    import boda.embed._labels as labels_module

    x = rng.normal(size=(70, 5)).astype(np.float32)
    labels = [int(v) if v < 3 else None for v in rng.integers(0, 4, 70)]
    monkeypatch.setattr(labels_module, "_CHUNK_ENTRIES", 300)  # several chunks
    votes = neighbour_votes(x, labels, k=5, metric=metric)
    for vote, (agreement, majority, suspect) in zip(votes, _reference_votes(x, labels, 5, metric),
                                                    strict=True):
        if agreement is None:
            assert np.isnan(vote.agreement)
        else:
            assert vote.agreement == pytest.approx(agreement)
        assert (vote.majority, vote.suspect) == (majority, suspect)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_votes_are_exact_for_features_far_from_the_origin(rng, metric):
    # features that share a large common part (as all-positive ReLU features do): their
    # similarities differ by less than float32 can tell apart
    x = 100.0 + 0.1 * rng.normal(size=(70, 5))
    labels = [int(v) for v in rng.integers(0, 3, 70)]
    votes = neighbour_votes(x, labels, k=5, metric=metric)
    expected = _reference_votes(x, labels, 5, metric)
    assert [(v.agreement, v.majority, v.suspect) for v in votes] == expected


def test_flipped_labels_are_the_suspects(rng):
    x, labels = _clusters(rng, n_per=50, k=4, d=16, spread=0.5)
    noisy = labels.copy()
    flipped = rng.choice(len(x), 12, replace=False)
    noisy[flipped] = (noisy[flipped] + 1) % 4
    votes = neighbour_votes(x, noisy.tolist(), k=10)
    suspects = {i for i, v in enumerate(votes) if v.suspect}
    assert suspects == set(flipped.tolist())
    assert all(votes[i].majority == labels[i] for i in flipped)


def test_vote_arguments_are_checked(rng):
    x = rng.normal(size=(4, 2))
    for kwargs, match in [({"k": 0}, "k must"), ({"metric": "l1"}, "metric")]:
        with pytest.raises(InvalidParameterError, match=match):
            neighbour_votes(x, [0, 1, 0, 1], **kwargs)
    with pytest.raises(InvalidParameterError, match="one label per row"):
        neighbour_votes(x, [0, 1])
    with pytest.raises(InvalidParameterError, match="at least 2 labelled"):
        neighbour_votes(x, [0, None, None, None])
