"""Audit of the model-probing features: receptive fields against a brute-force search of
the input pixels a unit depends on, the ranking of maximally activating patches, nearest
neighbours against a NumPy reference, and the ``patches`` / ``similar`` commands."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from boda.cli import app  # noqa: E402
from boda.errors import InvalidParameterError, ModelError  # noqa: E402
from boda.explain import FeatureIndex, receptive_field, top_activating_patches  # noqa: E402
from boda.io import write_image  # noqa: E402
from boda.nn import load_model  # noqa: E402

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dependence_box(model, layer, inputs, y, x):
    """Brute force: the bounding box of the input pixels whose change alters any channel
    of unit ``(y, x)`` of ``layer`` in the real network (ReLUs, max pooling and all), at
    each of ``inputs``: one gradient per channel, so no two channels can cancel."""
    seen = torch.zeros(inputs[0].shape[-2:], dtype=torch.bool)
    store = {}
    for x0 in inputs:
        handle = layer.register_forward_hook(lambda _m, _i, o: store.__setitem__("a", o))
        xi = x0.clone().requires_grad_(True)
        try:
            model(xi)
        finally:
            handle.remove()
        a = store["a"]
        for c in range(a.shape[1]):
            (g,) = torch.autograd.grad(a[0, c, y, x], xi, retain_graph=True)
            seen |= g[0].abs().sum(0) > 0
    nz = seen.nonzero()
    assert nz.numel(), "the brute force found no dependence: a useless test input"
    return (*nz.min(0).values.tolist(), *(nz.max(0).values + 1).tolist())


def _inside(box, inner):
    return box[0] <= inner[0] and box[1] <= inner[1] and box[2] >= inner[2] and box[3] >= inner[3]


def _random_inputs(n, size, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 3, *size, generator=gen) * scale for _ in range(n)]


# -- receptive fields ------------------------------------------------------------------------


class _CReLU(nn.Module):
    """Concatenated ReLU (Shang et al., ICML 2016): relu([h, -h])."""

    def forward(self, h):
        return torch.relu(torch.cat([h, -h], 1))


def test_the_receptive_field_of_a_concatenated_relu_layer_is_its_3x3_window():
    # The box came from the gradient of the channels' sum; with ReLUs made linear the
    # channels h and -h cancel exactly, and the unit was said to depend on nothing.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _CReLU()).eval()
    box = receptive_field(net, net[1], (9, 9), [(4, 4)])[0]
    assert box == (3, 3, 6, 6)
    assert _inside(box, _dependence_box(net, net[1], _random_inputs(3, (9, 9)), 4, 4))


def test_dilated_max_pooling_keeps_every_pixel_of_its_window_in_the_box():
    # Max pooling passes its gradient to one pixel of each window; it was replaced by
    # average pooling, except when dilated (average pooling has no dilation): then the
    # boxes shrank.  Closed form r = 1 + sum_l (k_l - 1) d_l prod_{m<l} s_m (Araujo et
    # al., Distill 2019, Eq. 2): conv 3x3, then a 3x3 max with dilation 2: 1 + 2 + 4 = 7.
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=1, dilation=2)
    ).eval()
    size = (17, 19)
    h, w = 13, 15
    boxes = receptive_field(net, net[2], size, [(y, x) for y in range(h) for x in range(w)])
    inputs = _random_inputs(2, size)
    for (y, x), box in zip([(y, x) for y in range(h) for x in range(w)], boxes, strict=True):
        assert box[2] - box[0] == 7 - (y == 0) - (y == h - 1)  # the padding of conv1 only
        assert box[3] - box[1] == 7 - (x == 0) - (x == w - 1)
        if (y + x) % 5 == 0:  # brute force on a sample of the units
            assert _inside(box, _dependence_box(net, net[2], inputs, y, x))


def test_a_saturated_relu6_unit_still_sees_its_whole_field():
    # ReLU6 (MobileNetV2) clips at 6 too: at receptive_field's random input these units
    # are saturated (zero gradient), at a dark image they are not, and the unit depends on
    # its 5x5 field there.  Only ReLUs were made linear: "does not depend on the input".
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU6(), nn.Conv2d(4, 2, 3, padding=1))
    with torch.no_grad():
        net[0].weight.fill_(0.1)
        net[0].bias.fill_(5.0)  # 5 + 0.1 * 27 * mean: saturated from a mean of 0.37 up
    net.eval()
    dark = [torch.zeros(1, 3, 11, 11), torch.full((1, 3, 11, 11), 0.1)]
    want = _dependence_box(net, net[2], dark, 5, 5)
    assert want == (3, 3, 8, 8)
    box = receptive_field(net, net[2], (11, 11), [(5, 5)])[0]
    assert _inside(box, want) and box == (3, 3, 8, 8)


@pytest.mark.parametrize("name", ["resnet20-cifar10", "shapes-cnn"])
def test_shipped_models_boxes_hold_every_pixel_a_unit_depends_on(name):
    lm = load_model(name)
    net = lm.model.eval()
    inputs = _random_inputs(2, (32, 32), seed=1)
    layers = dict(net.named_modules())
    store = {}
    for layer_name in (["layer1", "layer2.0", "layer3"] if name.startswith("resnet")
                       else ["features.3", "features.7", "features.11"]):  # fmt: skip
        layer = layers[layer_name]
        handle = layer.register_forward_hook(lambda _m, _i, o: store.__setitem__("a", o))
        with torch.no_grad():
            net(inputs[0])
        handle.remove()
        h, w = store["a"].shape[2:]
        units = [(0, 0), (h - 1, w - 1), (h // 2, w // 3)]
        for unit, box in zip(units, receptive_field(net, layer, (32, 32), units), strict=True):
            assert _inside(box, _dependence_box(net, layer, inputs, *unit)), (layer_name, unit)


# -- top activating patches ------------------------------------------------------------------


class _NaNOnBright(nn.Module):
    """A conv layer whose output is NaN for images brighter than 0.6 on average."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.out = nn.Identity()

    def forward(self, x):
        bright = x.mean((1, 2, 3), keepdim=True) > 0.6
        return self.out(self.conv(x) + torch.where(bright, torch.nan, 0.0))


def test_patches_refuse_activations_that_are_not_finite_naming_the_image():
    # A NaN activation compares False with everything: it was ranked first (k=2 gave the
    # NaN image and dropped a stronger one) and scrambled the order of the rest.
    rng = np.random.default_rng(0)
    images = [rng.random((8, 8, 3)).astype(np.float32) * 0.5 for _ in range(5)]
    images.insert(2, np.full((8, 8, 3), 0.9, np.float32))
    model = _NaNOnBright().eval()
    with pytest.raises(ModelError, match=r"not finite.*'image\[2\]'"):
        top_activating_patches(model, "out", 0, images, size=(8, 8), k=2)
    # without the bright image: the ranking is that of a brute-force maximum
    del images[2]
    found = top_activating_patches(model, "out", 0, images, size=(8, 8), k=5)
    with torch.no_grad():
        best = [float(model.conv(torch.from_numpy(i).permute(2, 0, 1)[None])[0, 0].max())
                for i in images]  # fmt: skip
    order = sorted(range(5), key=lambda i: -best[i])
    assert [p.source for p in found.patches] == [f"image[{i}]" for i in order]
    assert [p.activation for p in found.patches] == pytest.approx([best[i] for i in order])


@pytest.mark.parametrize("channel", [1.5, True, "3", None])
def test_patches_refuse_a_channel_that_is_not_a_whole_number(channel):
    # 1.5 was taken as channel 1, True as 1 and "3" as 3, where k=2.0 was refused.
    lm = load_model("shapes-cnn")
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(InvalidParameterError, match="channel must be a whole number"):
        top_activating_patches(lm.model, "features.3", channel, [image], k=1)


def test_patches_take_numpy_integers_for_channel_and_k():
    lm = load_model("shapes-cnn")
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    want = top_activating_patches(lm.model, "features.3", 2, [image], k=1).patches[0]
    got = top_activating_patches(lm.model, "features.3", np.int64(2), [image],
                                 k=np.int64(1)).patches[0]  # fmt: skip
    assert (got.activation, got.box) == (want.activation, want.box)


def test_patches_of_a_layer_without_maps_say_so():
    lm = load_model("resnet20-cifar10")
    with pytest.raises(InvalidParameterError, match=r"gives \(1, 10\) outputs, not .*maps"):
        top_activating_patches(lm.model, "linear", 0, [np.zeros((32, 32, 3), np.float32)])


# -- nearest neighbours ----------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_neighbours_are_those_of_a_numpy_brute_force(metric):
    rng = np.random.default_rng(1)
    vectors = (rng.standard_normal((300, 16)) * 100 + 1000).astype(np.float32)
    queries = vectors[:5] + rng.standard_normal((5, 16)).astype(np.float32) * 0.01
    index = FeatureIndex(nn.Identity(), "", metric=metric, search="exact")
    index.add_vectors([f"n{i}" for i in range(300)], torch.from_numpy(vectors))
    for q, found in zip(queries, index.query(torch.from_numpy(queries), k=7), strict=True):
        v, q = vectors.astype(np.float64), q.astype(np.float64)
        if metric == "cosine":
            want = v @ q / np.linalg.norm(v, axis=1) / np.linalg.norm(q)
        else:
            want = -np.linalg.norm(v - q, axis=1)
        order = np.argsort(-want, kind="stable")[:7]
        assert [name for name, _ in found] == [f"n{i}" for i in order]
        assert [s for _, s in found] == pytest.approx(want[order], abs=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_equal_similarities_come_in_index_order_even_at_the_cut(metric):
    # Six exact copies of the query among other vectors: topk gave them as rows 53, 50,
    # 51, 52, 54, 55, and with k=3 any three of them.
    rng = np.random.default_rng(2)
    copy = rng.standard_normal((1, 8)).astype(np.float32)
    vectors = np.concatenate([rng.standard_normal((50, 8)), np.repeat(copy, 6, 0),
                              rng.standard_normal((50, 8))]).astype(np.float32)  # fmt: skip
    index = FeatureIndex(nn.Identity(), "", metric=metric, search="exact")
    index.add_vectors([f"n{i}" for i in range(len(vectors))], torch.from_numpy(vectors))
    best = 1.0 if metric == "cosine" else 0.0
    for k in (6, 3, 1):
        found = index.query(torch.from_numpy(copy), k=k)[0]
        assert found == [(f"n{i}", best) for i in range(50, 50 + k)]
    found = index.query(torch.from_numpy(copy), k=8)[0]
    assert [n for n, _ in found[:6]] == [f"n{i}" for i in range(50, 56)]
    assert all(s < best for _, s in found[6:])


@pytest.mark.parametrize("search", ["faiss", "hnsw"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_faiss_lists_equal_similarities_in_index_order_too(metric, search):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(2)
    copy = rng.standard_normal((1, 8)).astype(np.float32)
    vectors = np.concatenate([rng.standard_normal((50, 8)), np.repeat(copy, 6, 0),
                              rng.standard_normal((50, 8))]).astype(np.float32)  # fmt: skip
    index = FeatureIndex(nn.Identity(), "", metric=metric, search=search)
    index.add_vectors([f"n{i}" for i in range(len(vectors))], torch.from_numpy(vectors))
    found = index.query(torch.from_numpy(copy), k=6)[0]
    assert index.last_search == search
    assert [n for n, _ in found] == [f"n{i}" for i in range(50, 56)]
    assert [s for _, s in found] == pytest.approx([1.0 if metric == "cosine" else 0.0] * 6)


def test_a_query_that_is_an_indexed_file_ranks_first(kodak_paths):
    lm = load_model("resnet20-cifar10")
    index = FeatureIndex(lm.model, "layer3", mean=lm.mean, std=lm.std).add(kodak_paths)
    for path in kodak_paths[:3]:
        (name, similarity), *_ = index.query([path], k=2)[0]
        assert name == str(path) and similarity == pytest.approx(1.0, abs=1e-5)


# -- the commands ----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path, kodak_paths):
    from boda.io import read_image

    root = tmp_path / "imgs"
    root.mkdir()
    for i, path in enumerate(kodak_paths[:4]):
        write_image(root / f"k{i}.png", read_image(path, max_side=48))
    return root


@pytest.fixture
def nan_model(tmp_path):
    """A resnet20 state dict with one NaN weight: every feature is NaN."""
    state = load_model("resnet20-cifar10").model.state_dict()
    state["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save(state, path)
    return path


def test_patches_of_a_model_giving_nan_fail_naming_the_files(folder, nan_model, tmp_path):
    # They were ranked (first) and printed with "activation": null.
    out = tmp_path / "montage.png"
    result = runner.invoke(app, ["patches", str(folder), "-c", "0", "--model", str(nan_model),
                                 "--arch", "resnet20", "--size", "32", "--json", "-o",
                                 str(out)])  # fmt: skip
    assert result.exit_code == 1 and result.stdout == ""
    assert "not finite" in result.stderr and str(folder / "k0.png") in result.stderr
    assert "image[" not in result.stderr and not out.exists()


def test_similar_with_a_model_giving_nan_names_the_files(folder, nan_model):
    result = runner.invoke(app, ["similar", str(folder / "k0.png"), str(folder), "--model",
                                 str(nan_model), "--arch", "resnet20", "--size", "32"])  # fmt: skip
    assert result.exit_code == 1
    assert str(folder / "k1.png") in result.stderr and "image[" not in result.stderr


def test_map_with_a_model_giving_nan_names_the_files(folder, nan_model, tmp_path):
    # Said as "image[0]", "image[1]" ... (positions within a batch) before.
    result = runner.invoke(app, ["map", str(folder), "--model", str(nan_model), "--arch",
                                 "resnet20", "--size", "32", "-o", str(tmp_path / "m.html")])
    assert result.exit_code == 1, result.output
    assert str(folder / "k0.png") in result.stderr and "image[" not in result.stderr


def test_query_vectors_of_another_width_or_dtype_are_said_or_converted():
    # A (1, 10) query of a 64-float index was torch's "mat1 and mat2 shapes cannot be
    # multiplied"; float64 vectors (numpy's default) "expected m1 and m2 to have the same
    # dtype".
    rng = np.random.default_rng(3)
    vectors = torch.from_numpy(rng.standard_normal((5, 64)).astype(np.float32))
    for metric in ("cosine", "euclidean"):
        index = FeatureIndex(nn.Identity(), "", metric=metric, search="exact")
        index.add_vectors([f"n{i}" for i in range(5)], vectors)
        with pytest.raises(InvalidParameterError, match="64-float features, not 10"):
            index.query(torch.zeros(1, 10), k=1)
        found = index.query(vectors[2:3].double(), k=2)[0]
        assert found == index.query(vectors[2:3], k=2)[0] and found[0][0] == "n2"


def test_an_index_file_with_rows_that_do_not_match_its_names_is_refused_by_name(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 1))
    index = FeatureIndex(net, "0", search="exact")
    index.add_vectors(["a", "b"], torch.ones(2, 4))
    path = tmp_path / "i.npz"
    index.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    for broken in ({"vectors": arrays["vectors"][:1]},  # a row lost
                   {"header": np.array(str(arrays["header"]).replace(
                       '"metadata": {}', '"metadata": [1]'))}):  # fmt: skip
        np.savez(tmp_path / "j.npz", **(arrays | broken))
        with pytest.raises(InvalidParameterError, match="'.*j.npz' is not a feature index"):
            FeatureIndex.load(tmp_path / "j.npz", net, "0")


@pytest.mark.parametrize(
    ("args", "option"),
    [(["class-model", "-t", "3", "--seed", str(2**64)], "--seed"),
     (["class-model", "-t", "3", "--jitter", str(2**64)], "--jitter"),
     (["class-model", "-t", "3", "--threads", str(2**64)], "--threads"),
     (["patches", "DIR", "-c", "0", "--threads", str(2**64)], "--threads")],
)  # fmt: skip
def test_numbers_beyond_what_torch_takes_are_usage_errors(tmp_path, folder, args, option):
    # torch's "Overflow when unpacking long long" came as a traceback (exit 1).
    args = [str(folder) if a == "DIR" else a for a in args]
    out = tmp_path / "c.png"
    result = runner.invoke(app, [*args, "--steps", "1", "-o", str(out)] if args[0] ==
                           "class-model" else [*args, "-o", str(out)])  # fmt: skip
    assert result.exit_code == 2 and option in result.stderr, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_thread_count_no_machine_has_is_a_usage_error(tmp_path):
    # 2**31 - 1 threads aborted the process in libgomp ("Out of memory allocating
    # 463856469096 bytes"): in a subprocess, so that abort cannot take pytest with it.
    import subprocess
    import sys

    out = tmp_path / "c.png"
    result = subprocess.run(
        [sys.executable, "-m", "boda.cli", "class-model", "-t", "3", "--steps", "1",
         "--threads", str(2**31 - 1), "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "--threads" in result.stderr, result.stderr
    assert not out.exists()


def test_class_model_takes_a_negative_seed_and_the_largest_one(tmp_path):
    for seed in (-1, 2**64 - 1):
        result = runner.invoke(app, ["class-model", "-t", "3", "--steps", "1", "--seed",
                                     str(seed), "-o", str(tmp_path / f"{seed}.png")])  # fmt: skip
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_a_batch_size_that_is_not_a_count_is_refused(batch_size):
    # 0 was "no readable images were given" (an empty first chunk), -1 islice's or
    # torch.cat's ValueError, 2.5 taken as 2.
    from boda.explain import layer_features

    lm = load_model("shapes-cnn")
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(InvalidParameterError, match="batch_size must be a whole number"):
        top_activating_patches(lm.model, "features.3", 0, [image], batch_size=batch_size)
    with pytest.raises(InvalidParameterError, match="batch_size must be a whole number"):
        layer_features(lm.model, "features.3", torch.zeros(2, 3, 32, 32), batch_size=batch_size)


def test_adding_a_folder_again_refreshes_its_files_instead_of_listing_them_twice(folder):
    # Each file came back twice (ranks 1 and 2 the same file), the changed one once with
    # its old features and once with its new ones.
    from boda.io import read_image

    lm = load_model("resnet20-cifar10")
    index = FeatureIndex(lm.model, "layer3", mean=lm.mean, std=lm.std).add(folder)
    index.add([np.zeros((32, 32, 3), np.float32)])  # an array: image[4]
    names = list(index.names)
    write_image(folder / "k1.png", read_image(folder / "k2.png")[:, ::-1])  # k1 changed
    index.add(folder)
    assert index.names == names and index.vectors.shape[0] == 5
    fresh = FeatureIndex(lm.model, "layer3", mean=lm.mean, std=lm.std).add(folder)
    torch.testing.assert_close(index.vectors[:4], fresh.vectors)
    found = [n for n, _ in index.query([folder / "k1.png"], k=5)[0]]
    assert found[0] == str(folder / "k1.png") and len(set(found)) == 5
    index.add([np.ones((32, 32, 3), np.float32)])  # numbered after every row: image[5]
    assert index.names[-1] == "image[5]"


def test_class_model_of_a_model_giving_nan_says_so(tmp_path, nan_model):
    # It ended in write_image's "image holds NaN ...; replace them first, e.g.
    # np.nan_to_num(image)", advice for a caller of write_image, not for this command.
    out = tmp_path / "c.png"
    result = runner.invoke(app, ["class-model", "-t", "3", "--steps", "2", "--model",
                                 str(nan_model), "--arch", "resnet20", "--size", "32",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 1 and not out.exists()
    assert "not finite" in result.stderr and "start image" in result.stderr
    assert "nan_to_num" not in result.stderr


def test_class_model_whose_ascent_diverges_names_lr(tmp_path):
    out = tmp_path / "c.png"
    result = runner.invoke(app, ["class-model", "-t", "3", "--steps", "3", "--lr", "1e30",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 2 and not out.exists()
    assert "diverged" in result.stderr and "--lr" in result.stderr
