"""Audit of the embedding features (``boda.embed``, ``FeatureIndex``, ``boda map``,
``boda similar``): the defects found, each pinned.

References: a plain loop over every pair on the rows' differences (exact Euclidean
distances); the definition of the cosine (within [-1, 1]); the Kodak photos with the
shipped ``resnet20-cifar10`` for the commands.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from boda.cli import app
from boda.embed import neighbour_votes, pca, tsne
from boda.errors import InvalidParameterError
from boda.explain import FeatureIndex
from boda.explain._vector_search import faiss_available
from boda.nn import resnet20

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _exact_agreements(x: np.ndarray, labels: list[int], k: int) -> list[float]:
    """The share of each row's k nearest other rows (exact distances of the
    differences, ties by index) that carry its label."""
    out = []
    for i in range(len(x)):
        d = np.sqrt(((x - x[i]) ** 2).sum(axis=1))
        d[i] = np.inf
        near = np.argsort(d, kind="stable")[:k]
        out.append(float(np.mean([labels[j] == labels[i] for j in near])))
    return out


def test_euclidean_votes_are_exact_for_features_far_from_the_origin(rng):
    # a large part every row shares (1e4) and small differences (1e-3): expanded
    # uncentred, |a|^2 - 2ab + |b|^2 cancelled and 56 of 300 votes were wrong
    x = rng.normal(size=(1, 16)) * 1e4 + rng.normal(size=(300, 16)) * 1e-3
    labels = [int(v) for v in rng.integers(0, 3, 300)]
    votes = neighbour_votes(x, labels, k=5, metric="euclidean")
    assert [v.agreement for v in votes] == pytest.approx(_exact_agreements(x, labels, 5))


SEARCHES = ["exact"] + (["faiss", "hnsw"] if faiss_available() else [])


@pytest.mark.parametrize("search", SEARCHES)
def test_cosine_similarities_stay_within_minus_one_and_one(rng, search):
    # float32 products of unit vectors gave 1.0000004 for a vector and itself
    x = torch.tensor(rng.random((200, 64)), dtype=torch.float32)
    index = FeatureIndex(resnet20(), "layer3", search=search)
    index.add_vectors([str(i) for i in range(200)], x)
    found = index.query(torch.cat([x, -x[:5]]), k=3)
    sims = [s for row in found for _, s in row]
    assert max(sims) <= 1.0 and min(sims) >= -1.0
    assert [row[0][0] for row in found[:200]] == [str(i) for i in range(200)]
    assert [row[0][1] for row in found[:200]] == pytest.approx([1.0] * 200, abs=1e-6)


@pytest.mark.parametrize("search", SEARCHES)
def test_a_euclidean_distance_of_zero_is_not_minus_zero(rng, search):
    x = torch.tensor(rng.random((50, 8)), dtype=torch.float32)
    index = FeatureIndex(resnet20(), "layer3", metric="euclidean", search=search)
    index.add_vectors([str(i) for i in range(50)], x)
    best = [row[0][1] for row in index.query(x, k=1)]
    assert all(s == 0.0 and math.copysign(1.0, s) == 1.0 for s in best)  # JSON "0.0"


@pytest.mark.parametrize("call", [
    lambda x: pca(x, 1.5), lambda x: pca(x, True), lambda x: pca(x, "2"),
    lambda x: tsne(x, perplexity="5"), lambda x: tsne(x, perplexity=True),
])
def test_arguments_of_the_wrong_kind_are_said(rng, call):
    # were a TypeError from numpy (1.5, "5") or a 1-component map (True)
    with pytest.raises(InvalidParameterError, match="components|perplexity"):
        call(rng.normal(size=(12, 4)))


def test_k_without_labels_is_refused_not_ignored(tmp_path):
    result = runner.invoke(app, ["map", str(tmp_path), "--method", "pca", "-k", "3"])
    assert result.exit_code == 2
    assert "--k 3" in result.output and "--labels-from-folders" in result.output


@pytest.fixture(scope="module")
def photos(tmp_path_factory, kodak_paths):
    """Kodak photos in two class folders of CIFAR-10 (one copied into both), and a
    broken file."""
    root = tmp_path_factory.mktemp("audit") / "photos"
    for name, part in (("ship", kodak_paths[:3]), ("bird", kodak_paths[3:6])):
        (root / name).mkdir(parents=True)
        for p in part:
            shutil.copy(p, root / name / p.name)
    shutil.copy(kodak_paths[0], root / "bird" / "copy.png")
    (root / "bird" / "broken.png").write_bytes(b"not a png")
    return root


def test_map_shows_progress_on_the_layout_and_the_thumbnails(photos, tmp_path, monkeypatch):
    import contextlib

    import boda.cli.map_cmd as map_cmd

    bars: dict[str, list] = {}

    @contextlib.contextmanager
    def recorded(label, *, enabled=True):
        bars[label] = []
        yield lambda done, total: bars[label].append((done, total))

    # raising=False: the old command had no bar after the reading, and nothing is recorded
    monkeypatch.setattr(map_cmd, "progress_bar", recorded, raising=False)
    result = runner.invoke(app, ["map", str(photos), "--model", "resnet20-cifar10",
                                 "--method", "pca", "-o", str(tmp_path / "map.html")])
    assert result.exit_code == 3, result.output  # the broken file: listed, the rest mapped
    assert "laying out the map (pca)" in bars
    assert bars["making thumbnails"][-1] == (7, 7)


def test_similar_of_a_photo_with_its_copy_in_the_folder_is_at_most_one(photos):
    query = photos / "ship" / sorted(p.name for p in (photos / "ship").iterdir())[0]
    result = runner.invoke(app, ["similar", str(query), str(photos), "--model",
                                 "resnet20-cifar10", "-k", "20", "--json"])
    assert result.exit_code == 3, result.output
    out = json.loads(result.stdout)
    assert [n["path"] for n in out["neighbours"]][0] == str(photos / "bird" / "copy.png")
    assert len(out["neighbours"]) == 6 and out["read"] == 6  # k above the folder: all
    assert all(-1.0 <= n["similarity"] <= 1.0 for n in out["neighbours"])
    assert out["neighbours"][0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert [f["path"] for f in out["failed"]] == [str(photos / "bird" / "broken.png")]


def test_map_labels_a_dataset_by_its_own_folder_names(tmp_path, kodak_paths):
    # photos in made-up class folders, with a model whose classes are CIFAR-10's: the
    # folders named no class of it, so every image was unlabelled and no vote was made
    from boda.nn import load_model

    root = tmp_path / "photos"
    for name, part in (("outdoors", kodak_paths[:2]), ("people", kodak_paths[2:])):
        (root / name).mkdir(parents=True)
        for p in part:
            shutil.copy(p, root / name / p.name)
    result = runner.invoke(app, ["map", str(root), "--model", "resnet20-cifar10",
                                 "--method", "pca", "--labels-from-folders", "-k", "3",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labelled"] == data["images"] == len(kodak_paths) and data["k"] == 3
    assert [p["label"] for p in data["points"]] == [p["folder"] for p in data["points"]]
    assert {p["label"] for p in data["points"]} == {"outdoors", "people"}
    # the vote is the library's on the same features, over the folder names
    lm = load_model("resnet20-cifar10")
    index = FeatureIndex(lm.model, data["layer"], size=(32, 32), mean=lm.mean, std=lm.std)
    names, vectors = index.embed([p["path"] for p in data["points"]])
    assert names == [p["path"] for p in data["points"]]
    votes = neighbour_votes(vectors.numpy(), [["outdoors", "people"].index(p["label"])
                                              for p in data["points"]], k=3)
    for p, vote in zip(data["points"], votes, strict=True):
        assert p["majority"] == ["outdoors", "people"][vote.majority]
        assert p["suspect"] is vote.suspect and p["agreement"] == pytest.approx(vote.agreement)
    assert data["suspects"] == sum(v.suspect for v in votes)
    assert "no class" not in result.stderr  # every photo has its label
