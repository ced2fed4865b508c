"""Tests for class-model visualisation, receptive fields, top patches and feature search."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from boda.errors import InvalidParameterError  # noqa: E402
from boda.explain import (  # noqa: E402
    FeatureIndex,
    class_model,
    layer_features,
    receptive_field,
    top_activating_patches,
)
from boda.nn import cpu_threads, load_model, resnet20  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


def _stack(k: int, stride: int = 1, dilation: int = 1) -> nn.Module:
    layers = []
    for i in range(3):
        layers += [nn.Conv2d(3 if i == 0 else 4, 4, k, stride=stride, dilation=dilation,
                             padding=dilation * (k // 2)), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize(("k", "stride", "dilation"), [(3, 1, 1), (3, 2, 1), (5, 1, 2)])
def test_receptive_field_matches_the_closed_form(k, stride, dilation):
    # r_L = 1 + sum_l (k_l - 1) d_l prod_{m<l} s_m (Araujo et al. 2019, Eq. 2).
    torch.manual_seed(0)
    net = _stack(k, stride, dilation)
    size = 1 + sum((k - 1) * dilation * stride**i for i in range(3))
    jump = stride**3
    y = x = 2
    top, left, bottom, right = receptive_field(net, net[4], (64, 64), [(y, x)])[0]
    assert bottom - top == size or top == 0  # clipped at the border only
    center = y * jump  # first unit centred on pixel 0 (padding = half the kernel)
    assert (top + bottom - 1) / 2 == pytest.approx(center) or top == 0
    inner = receptive_field(net, net[4], (96, 96), [(40 // jump + 4, 40 // jump + 4)])[0]
    assert inner[2] - inner[0] == size and inner[3] - inner[1] == size


def test_resnet20_receptive_fields():
    net = resnet20()
    assert receptive_field(net, "layer1", (32, 32), [(16, 16)]) == [(9, 9, 24, 24)]
    assert receptive_field(net, "conv1", (32, 32), [(0, 0)]) == [(0, 0, 2, 2)]


def test_class_model_ascends_and_is_reproducible():
    lm = load_model("resnet20-cifar10")
    lm.model.train()
    res = class_model(lm.model, 3, steps=15, lr=0.1, jitter=1, blur_every=5, seed=1)
    assert res.image.shape == (1, 3, 32, 32) and len(res.scores) == 16
    assert res.scores[-1] > res.scores[0] + 5
    # The last score is the returned picture's (it was a randomly shifted copy's: the jitter).
    with torch.no_grad():
        final = lm.model.eval()(res.image)[0, 3].item()
    lm.model.train()
    assert res.scores[-1] == pytest.approx(final, rel=1e-5)
    calls = []
    again = class_model(lm.model, 3, steps=15, lr=0.1, jitter=1, blur_every=5, seed=1,
                        progress=lambda done, total: calls.append((done, total)))
    torch.testing.assert_close(res.image, again.image)  # a progress callback changes nothing
    assert calls == [(i, 15) for i in range(16)]
    assert lm.model.training and all(p.grad is None for p in lm.model.parameters())
    start = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(class_model(lm.model, 3, start=start, steps=0).image, start)
    # Stronger L2 keeps the image smaller.
    big = class_model(lm.model, 3, steps=10, lr=0.1, l2=0.0).image.norm()
    small = class_model(lm.model, 3, steps=10, lr=0.1, l2=5.0).image.norm()
    assert small < big
    with pytest.raises(InvalidParameterError):
        class_model(lm.model, 10, steps=1)


def test_top_activating_patches_scan_a_folder(tmp_path, kodak_paths):
    from PIL import Image

    for p in kodak_paths:
        Image.open(p).resize((64, 64)).save(tmp_path / p.name)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    lm = load_model("resnet20-cifar10")
    res = top_activating_patches(
        lm.model, "layer2", 7, tmp_path, mean=lm.mean, std=lm.std, k=3
    )
    assert [s for s, _ in res.skipped] == [str(tmp_path / "broken.png")]
    acts = [p.activation for p in res.patches]
    assert len(acts) == 3 and acts == sorted(acts, reverse=True)
    # Each reported activation is the channel's maximum over that image, and the crop
    # is the receptive field box of the resized image.
    from boda.io import read_image
    from boda.nn import image_to_tensor

    for p in res.patches:
        x = image_to_tensor(read_image(p.source), size=(32, 32), mean=lm.mean, std=lm.std)
        feats = {}
        h = lm.model.layer2.register_forward_hook(lambda m, i, o, d=feats: d.setdefault("a", o))
        with torch.no_grad():
            lm.model(x)
        h.remove()
        a = feats["a"][0, 7]
        assert p.activation == pytest.approx(float(a.max()), rel=1e-5)
        assert float(a[p.position]) == pytest.approx(p.activation, rel=1e-5)
        t, left, b, r = p.box
        assert p.crop.shape == (b - t, r - left, 3)


def test_feature_index_finds_the_same_image_first(kodak_paths):
    lm = load_model("resnet20-cifar10")
    index = FeatureIndex(lm.model, "layer3", mean=lm.mean, std=lm.std).add(kodak_paths)
    hits = index.query(list(kodak_paths[:2]), k=3)
    for p, row in zip(kodak_paths[:2], hits, strict=True):
        assert row[0][0] == str(p) and row[0][1] == pytest.approx(1.0, abs=1e-5)
        assert row[1][1] <= row[0][1]
    assert index.vectors.shape == (len(kodak_paths), 64)
    euclid = FeatureIndex(lm.model, "layer3", metric="euclidean").add(kodak_paths)
    name, dist = euclid.query([kodak_paths[3]], k=1)[0][0]
    assert name == str(kodak_paths[3]) and dist == pytest.approx(0.0, abs=1e-4)
    x = torch.rand(4, 3, 32, 32)
    f = layer_features(lm.model, "layer3", x, batch_size=3)
    torch.testing.assert_close(f, layer_features(lm.model, "layer3", x))
    assert layer_features(lm.model, "layer3", x, pool="flatten").shape == (4, 64 * 8 * 8)
    rng = np.random.default_rng(0)
    arrays = FeatureIndex(lm.model, "layer3").add([rng.random((40, 40, 3)) for _ in range(2)])
    assert arrays.names == ["image[0]", "image[1]"]


def test_feature_index_works_in_chunks_with_the_same_answers(monkeypatch, tmp_path):
    # Whole folders were decoded into one batch (~2 MB per 224 px image) and a
    # query built the whole query x index similarity matrix (10k x 100k: 5 GB).
    import boda.explain._features as features
    from boda.explain import FeatureIndex
    from boda.nn import resnet20

    rng = np.random.default_rng(0)
    images = [rng.random((32, 32, 3)).astype(np.float32) for _ in range(7)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    items = images[:3] + [broken] + images[3:]
    model = resnet20().eval()
    whole = FeatureIndex(model, "layer3").add(items)
    batches = []
    real_layer_features = features.layer_features

    def recording(model, layer, x, **kwargs):
        batches.append(x.shape[0])
        return real_layer_features(model, layer, x, **kwargs)

    monkeypatch.setattr(features, "layer_features", recording)
    monkeypatch.setattr(features, "_EMBED_CHUNK", 2)
    monkeypatch.setattr(features, "_SIMILARITY_BUDGET", 10)  # one query row at a time
    for metric in ("cosine", "euclidean"):
        chunked = FeatureIndex(model, "layer3", metric=metric).add(items)
        assert chunked.names == whole.names == [f"image[{i}]" for i in range(7)]
        assert [name for name, _ in chunked.skipped] == [str(broken)]
        torch.testing.assert_close(chunked.vectors, whole.vectors)
        found = chunked.query(chunked.vectors, k=3)
        # the same as one brute-force product
        if metric == "cosine":
            unit = torch.nn.functional.normalize(whole.vectors, dim=1)
            sim = unit @ unit.T
        else:
            sim = -torch.cdist(whole.vectors, whole.vectors)
        best = sim.topk(3, dim=1).indices
        assert [[chunked.names.index(n) for n, _ in row] for row in found] == best.tolist()
    assert max(batches) <= 2  # never the whole list at once


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_feature_index_refuses_features_that_are_not_finite(metric):
    # A NaN row ranked first for every query of an exact search (topk takes NaN for the
    # largest value; FAISS left it out), and a NaN query listed NaN similarities.
    from boda.errors import ModelError

    model = resnet20().eval()
    vectors = torch.eye(4, 8)
    vectors[2, 3] = float("nan")
    index = FeatureIndex(model, "layer3", metric=metric, search="exact")
    with pytest.raises(InvalidParameterError, match=r"not finite .*'b'"):
        index.add_vectors(["a", "b", "c", "d"], torch.roll(vectors, -1, 0))
    assert index.names == []
    index.add_vectors(["a", "b"], vectors[:2])
    with pytest.raises(InvalidParameterError, match="not finite"):
        index.query(vectors[1:3], k=1)
    assert index.query(vectors[1:2], k=1)[0][0][0] == "b"
    # a model whose features are NaN for an image: said, not indexed
    broken = resnet20().eval()
    with torch.no_grad():
        broken.layer3[-1].bn2.weight[0] = float("nan")  # layer2's features stay finite
    with pytest.raises(ModelError, match=r"model's features .* not finite"):
        FeatureIndex(broken, "layer3", metric=metric).add([np.full((32, 32, 3), 0.5)])
    assert FeatureIndex(broken, "layer2", metric=metric).add([np.full((32, 32, 3), 0.5)]).names
