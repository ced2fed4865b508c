"""Fixes to boda.explain found by the CLI helpers: TorchScript models in the feature
functions, folders walked as the scan walks them (streamed, top k in a heap), a saved
FeatureIndex, class_model's defaults, and the model input of an ImageExplanation."""

from __future__ import annotations

import shutil
import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import boda  # noqa: E402
from boda.errors import InvalidParameterError, ModelError  # noqa: E402
from boda.explain import (  # noqa: E402
    FeatureIndex,
    class_model,
    explain_image,
    layer_features,
    model_logits,
    receptive_field,
    top_activating_patches,
)
from boda.io import read_image, write_image  # noqa: E402
from boda.nn import cpu_threads, image_to_tensor, load_model, normalize, resnet20  # noqa: E402

MEAN, STD = (0.5, 0.4, 0.45), (0.25, 0.2, 0.3)


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, stride=2, padding=1),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).eval()  # fmt: skip


# -- 1. TorchScript models: a ModelError that says what to do -------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace
def test_feature_functions_refuse_a_torchscript_model_with_a_clear_error():
    scripted = torch.jit.trace(_net(), torch.rand(1, 3, 16, 16))
    arrays = [np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)]
    calls = [
        lambda: FeatureIndex(scripted, "2"),
        lambda: top_activating_patches(scripted, "2", 0, arrays, size=(16, 16)),
        lambda: layer_features(scripted, "2", torch.rand(1, 3, 16, 16)),
        lambda: receptive_field(scripted, "2", (16, 16), [(1, 1)]),
    ]
    for call in calls:
        with pytest.raises(ModelError, match="TorchScript models do not allow") as info:
            call()
        assert "arch" in str(info.value)


# -- 2. folders: the scan's walker, boda's reader, top k kept while streaming ---------------


def _reference_patches(model, layer, channel, paths, size, k):
    """The straightforward search: every image in memory at once, one stable sort."""
    got = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: got.__setitem__("a", out))
    arrays, acts = [], []
    with torch.no_grad():
        for p in paths:
            t = image_to_tensor(read_image(p), size=size)
            arrays.append(t[0].permute(1, 2, 0).clamp(0, 1).numpy())
            model(normalize(t, MEAN, STD))
            m = got["a"][0, channel].flatten()
            acts.append((float(m.max()), int(m.argmax()), got["a"].shape[3]))
    handle.remove()
    order = sorted(range(len(paths)), key=lambda i: -acts[i][0])[:k]
    out = []
    for i in order:
        v, p, w = acts[i]
        box = receptive_field(model, layer, size, [(p // w, p % w)])[0]
        out.append((str(paths[i]), v, (p // w, p % w), box,
                    arrays[i][box[0]:box[2], box[1]:box[3]]))  # fmt: skip
    return out


@pytest.fixture
def photo_folder(tmp_path, kodak_paths):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for i, p in enumerate(kodak_paths):
        small = read_image(p, 48)
        write_image((root if i % 2 else root / "sub") / f"k{i}.png", small)
    # the same picture twice: equal activations, the earlier path must come first
    shutil.copy(root / "k1.png", root / "sub" / "z-copy.png")
    return root


def test_top_patches_of_a_folder_equal_the_straightforward_search(photo_folder):
    net = _net(1)
    files = sorted(p for p in photo_folder.rglob("*.png"))
    want = _reference_patches(net, net[2], 2, files, (40, 40), k=4)
    for batch_size in (2, 64):  # streaming in chunks of 2, or one chunk
        got = top_activating_patches(net, "2", 2, photo_folder, size=(40, 40), mean=MEAN,
                                     std=STD, k=4, batch_size=batch_size).patches  # fmt: skip
        assert [(p.source, p.position, p.box) for p in got] == [w[0:1] + w[2:4] for w in want]
        np.testing.assert_allclose([p.activation for p in got], [w[1] for w in want], rtol=1e-5)
        for p, w in zip(got, want, strict=True):
            np.testing.assert_allclose(p.crop, w[4], atol=1e-6)
    # the duplicate: equal activations, the earlier of the sorted paths first
    everything = top_activating_patches(net, "2", 2, photo_folder, size=(40, 40), mean=MEAN,
                                        std=STD, k=len(files), batch_size=3).patches  # fmt: skip
    names = [p.source.rsplit("/", 1)[-1] for p in everything]
    first = names.index("k1.png")
    assert first + 1 == names.index("z-copy.png")
    # ... also when only one of the two is kept: the earlier one
    cut = top_activating_patches(net, "2", 2, photo_folder, size=(40, 40), mean=MEAN, std=STD,
                                 k=first + 1, batch_size=1).patches  # fmt: skip
    assert cut[-1].source.endswith("/k1.png") and len(cut) == first + 1


def test_a_folder_is_walked_as_the_scan_walks_it(photo_folder):
    from boda.io import heif_available

    net = _net(1)
    for hidden in (".boda", ".git"):
        (photo_folder / hidden).mkdir()
        write_image(photo_folder / hidden / "thumb.png", np.ones((40, 40, 3), np.float32))
    extra = []
    if heif_available():  # a format boda reads that the old suffix list missed
        write_image(photo_folder / "sub" / "phone.heic", read_image(photo_folder / "k1.png"))
        extra.append("phone.heic")
    found = top_activating_patches(net, "2", 2, photo_folder, size=(40, 40), k=100).patches
    names = sorted(p.source.rsplit("/", 1)[-1] for p in found)
    assert names == sorted(["k1.png", "k3.png", "k5.png", "k0.png", "k2.png", "k4.png",
                            "z-copy.png", *extra])  # fmt: skip
    index = FeatureIndex(net, "2", size=(40, 40)).add(photo_folder)
    assert not any("/." in n for n in index.names) and len(index.names) == len(names)
    # boda's reader with its decompression-bomb guard: 64 x 64 px is over 3000 pixels
    write_image(photo_folder / "big.png", np.ones((64, 64, 3), np.float32))
    search = top_activating_patches(net, "2", 2, photo_folder, size=(40, 40), max_pixels=3000)
    assert [(s.rsplit("/", 1)[-1], "max_pixels" in why) for s, why in search.skipped] == [
        ("big.png", True)
    ]
    skipped = FeatureIndex(net, "2", size=(40, 40), max_pixels=3000).add(photo_folder)
    assert [s.rsplit("/", 1)[-1] for s, _ in skipped.skipped] == ["big.png"]


def test_top_patches_keep_only_the_top_k_in_memory():
    net = _net(2)

    def images(n):  # made one at a time: the search must not hold them all
        rng = np.random.default_rng(n)
        for _ in range(n):
            yield rng.random((64, 64, 3), dtype=np.float32)

    peaks = []
    for n in (30, 150):
        tracemalloc.start()
        top_activating_patches(net, "2", 0, images(n), size=(64, 64), k=3, batch_size=10)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 120 more images of 48 kB each would be 5.9 MB more if they were kept
    assert peaks[1] < peaks[0] + (1 << 20), peaks


# -- 3. FeatureIndex.save / load -------------------------------------------------------------


def test_a_saved_index_loads_as_it_was_and_answers_the_same(tmp_path):
    rng = np.random.default_rng(4)
    arrays = [rng.random((32, 32, 3), dtype=np.float32) for _ in range(6)]
    net = resnet20()
    index = FeatureIndex(net, "layer2", mean=MEAN, std=STD, metric="euclidean").add(arrays)
    index.metadata = {"files": {"a.png": [1, 2]}, "note": "ünïcode"}
    path = tmp_path / "feat"  # no suffix: written where asked, no ".npz" added
    index.save(path)
    assert path.exists() and not (tmp_path / "feat.npz").exists()
    back = FeatureIndex.load(path, net, "layer2", mean=MEAN, std=STD)
    assert back.names == index.names and back.metadata == index.metadata
    assert back.metric == "euclidean"
    torch.testing.assert_close(back.vectors, index.vectors, rtol=0, atol=0)
    assert back.query(arrays[2:4], k=3) == index.query(arrays[2:4], k=3)
    assert FeatureIndex.load(path, net, "layer2", mean=MEAN, std=STD, metric="cosine").metric \
        == "cosine"
    # another layer, other weights, another size or statistics: refused, saying which
    refusals = [
        (dict(model=net, layer="layer3", mean=MEAN, std=STD), "another layer"),
        (dict(model=_other(net), layer="layer2", mean=MEAN, std=STD), "another model"),
        (dict(model=net, layer="layer2", mean=MEAN, std=STD, size=(40, 40)), "another size"),
        (dict(model=net, layer="layer2"), "another mean, std"),
    ]
    for kwargs, said in refusals:
        with pytest.raises(InvalidParameterError, match=said):
            FeatureIndex.load(path, **kwargs)


def _other(net: nn.Module) -> nn.Module:
    """``net`` with one weight changed a little."""
    other = resnet20()
    other.load_state_dict(net.state_dict())
    with torch.no_grad():
        other.conv1.weight[0, 0, 0, 0] += 1e-3
    return other


class _Trap:
    """Unpickling it runs code: np.load must never do that."""

    def __reduce__(self):
        return (exec, ("import boda; boda._unpickled_by_test = True",))


def test_loading_refuses_files_that_are_no_index_and_never_unpickles(tmp_path):
    net = _net()
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes")
    with pytest.raises(InvalidParameterError, match="is not a feature index boda wrote"):
        FeatureIndex.load(notes, net, "2")
    header = FeatureIndex(net, "2")
    trap = tmp_path / "trap.npz"
    good = tmp_path / "good.npz"
    header.add_vectors(["a"], torch.ones(1, 4)).save(good)
    with np.load(good, allow_pickle=False) as data:
        head = data["header"]
    np.savez(trap, header=head, names=np.array([_Trap()], dtype=object),
             vectors=np.ones((1, 4), np.float32))  # fmt: skip
    with pytest.raises(InvalidParameterError, match="is not a feature index boda wrote"):
        FeatureIndex.load(trap, net, "2")
    assert not hasattr(boda, "_unpickled_by_test")
    assert FeatureIndex.load(good, net, "2").names == ["a"]


# -- 4. class_model's defaults: a recognisable picture, not saturated noise -----------------


def _picture_properties(image: torch.Tensor, lm) -> tuple[float, float]:
    """Share of pixels outside [0, 1] once unnormalised, and share of the energy above a
    quarter of the sampling frequency (white noise: 3/4)."""
    mean = torch.tensor(lm.mean).view(1, 3, 1, 1)
    std = torch.tensor(lm.std).view(1, 3, 1, 1)
    pixels = image * std + mean
    outside = float(((pixels < 0) | (pixels > 1)).float().mean())
    p = pixels.clamp(0, 1)
    energy = torch.fft.fft2(p - p.mean(dim=(2, 3), keepdim=True)).abs().pow(2)
    fy = torch.fft.fftfreq(p.shape[2]).abs().view(-1, 1)
    fx = torch.fft.fftfreq(p.shape[3]).abs().view(1, -1)
    high = torch.maximum(fy, fx) > 0.25
    return outside, float(energy[..., high].sum() / energy.sum())


def test_class_model_defaults_give_a_smooth_picture_the_model_takes_for_the_class():
    lm = load_model("resnet20-cifar10")
    regularised = class_model(lm.model, 3, steps=60).image
    plain = class_model(lm.model, 3, steps=60, lr=0.5, l2=1e-3, jitter=0, blur_every=0).image
    outside, high = _picture_properties(regularised, lm)
    assert outside < 0.01 and high < 0.1, (outside, high)
    plain_outside, plain_high = _picture_properties(plain, lm)
    assert plain_outside > 0.3 and plain_high > 0.4, (plain_outside, plain_high)
    with torch.no_grad():
        probability = model_logits(lm.model(regularised)).softmax(1)[0, 3]
    assert float(probability) > 0.5


# -- 6. the model input and the maps at its size, public on ImageExplanation -----------------


def test_an_explanation_carries_its_model_input_and_the_maps_at_that_size(kodak_rgb):
    from boda.explain.metrics import deletion_curve

    lm = load_model("resnet20-cifar10")
    image = kodak_rgb[:120, :90]
    res = explain_image(image, lm, ["gradcam", "saliency"])
    want = image_to_tensor(image, size=(32, 32), mean=lm.mean, std=lm.std)
    torch.testing.assert_close(res.model_input, want)
    for method, small in res.input_maps.items():
        assert small.shape == (32, 32) and 0 <= small.min() and small.max() <= 1
        full = F.interpolate(torch.from_numpy(small)[None, None], size=image.shape[:2],
                             mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)  # fmt: skip
        np.testing.assert_allclose(res.maps[method], full.numpy(), atol=1e-6)
    # what the metrics take: the explained input and its map
    heat = torch.from_numpy(res.input_maps["gradcam"])[None]
    curve = deletion_curve(lm.model, res.model_input, heat, res.target)
    assert curve.auc.shape == (1,)


# -- 5. boda explain loads its model with the shared helpers ------------------------------


def test_explain_says_a_folder_given_as_model_is_a_folder(tmp_path, kodak_paths):
    from typer.testing import CliRunner

    from boda.cli import app

    result = CliRunner().invoke(app, ["explain", str(kodak_paths[0]), "--model", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a folder; give a model file" in " ".join(result.output.split())


# -- 7. found by the session-22 walk through the model commands ----------------------------


def test_a_saved_index_has_the_permissions_of_any_new_file_and_says_why_it_failed(tmp_path):
    import os
    import stat

    index = FeatureIndex(_net(), "2").add_vectors(["a"], torch.ones(1, 4))
    old = os.umask(0o022)
    try:
        index.save(tmp_path / "new.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o644  # not mkstemp's 0600
    kept = tmp_path / "shared.npz"
    index.save(kept)
    kept.chmod(0o664)
    index.save(kept)  # a file replaced keeps its permissions
    assert stat.S_IMODE(kept.stat().st_mode) == 0o664
    (tmp_path / "folder").mkdir()
    with pytest.raises(boda.errors.OutputError) as info:
        index.save(tmp_path / "folder")
    said = str(info.value)
    assert ".boda-index-" not in said and "Is a directory" in said  # not the temporary name


def test_a_zip_that_is_no_index_names_the_missing_array_plainly(tmp_path):
    other = tmp_path / "weights.pt"
    torch.save(_net().state_dict(), other)  # a zip archive, as an .npz is
    with pytest.raises(InvalidParameterError) as info:
        FeatureIndex.load(other, _net(), "2")
    assert "(no 'header' array)" in str(info.value), str(info.value)


@pytest.mark.parametrize("bad", [dict(lr=float("inf")), dict(lr=float("nan")),
                                 dict(l2=float("inf")), dict(l2=float("nan")),
                                 dict(blur_sigma=float("inf")), dict(blur_sigma=-1.0)])
def test_class_model_refuses_settings_that_give_a_nan_picture_or_fail(bad):
    with pytest.raises(InvalidParameterError, match="finite"):
        class_model(_net(), 1, size=(8, 8), steps=2, **bad)


def test_class_model_with_sigma_zero_does_not_blur():
    net = _net()
    off = class_model(net, 1, size=(8, 8), steps=3, blur_sigma=0.0)
    assert torch.isfinite(off.image).all()
    torch.testing.assert_close(off.image, class_model(net, 1, size=(8, 8), steps=3,
                                                      blur_every=0).image)  # fmt: skip


def test_a_target_out_of_range_is_said_as_given():
    x = torch.rand(1, 3, 16, 16)
    from boda.explain import Saliency

    with pytest.raises(InvalidParameterError,
                       match=r"^target 5 is out of range: the model has 3 outputs, 0 to 2$"):
        Saliency(_net())(x, 5)
    with pytest.raises(InvalidParameterError, match=r"^target 7 is out of range: the model"):
        class_model(_net(), 7, size=(8, 8), steps=1)


def test_a_one_pixel_layer_gives_a_flat_map_not_rounding_noise():
    from boda.explain import GradCAM

    lm = load_model("resnet20-cifar10")
    x = image_to_tensor(np.random.default_rng(0).random((32, 32, 3), dtype=np.float32),
                        mean=lm.mean, std=lm.std)  # fmt: skip
    with GradCAM(lm.model, "pool") as cam:  # (1, 64, 1, 1): one value per map
        maps = cam(x)
        raw = cam(x, normalize=False)
    assert maps.shape == (1, 32, 32) and not maps.any()  # flat: 0, as documented
    assert raw.is_contiguous() and (raw == raw[0, 0, 0]).all()
