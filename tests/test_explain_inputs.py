"""boda.explain with inputs a user gets wrong or changes under it.

Each case here was once a stale result, a raw torch error or a silently
ignored option.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from boda.cli import app  # noqa: E402
from boda.errors import InvalidParameterError, ModelError  # noqa: E402
from boda.explain import (  # noqa: E402
    CAM,
    FeatureIndex,
    GradCAM,
    class_model,
    explain_image,
    make_explainer,
    receptive_field,
)
from boda.explain.metrics import average_drop_increase, deletion_curve  # noqa: E402
from boda.nn import cpu_threads, list_models, load_model  # noqa: E402
from boda.nn._inference import InferenceCache, _same_key  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


class Scaled(nn.Module):
    """conv -> act -> GAP -> linear, logits divided by a plain attribute."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 4)
        self.temperature = 1.0

    def forward(self, x):
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1)) / self.temperature


def _x(n: int = 2, size: int = 10) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("method", ["scorecam", "occlusion"])
def test_the_inference_copy_follows_swapped_modules_and_changed_attributes(method):
    # torch.fx bakes parameter-free modules and attribute values into the copy;
    # a copy keyed on tensors alone kept explaining the old model.
    model, x = Scaled().eval(), _x()

    def fresh():
        ex = make_explainer(method, model, "conv")
        ex.inference_copy = False
        return ex(x, target=1)

    ex = make_explainer(method, model, "conv")
    ex.inference_min_forwards = 1
    for _ in range(3):
        ex(x, target=1)
    assert ex._inference is not None and ex._inference._copies  # a copy exists
    for change in (
        lambda: setattr(model, "act", nn.Identity()),
        lambda: setattr(model, "pool", nn.AdaptiveMaxPool2d(1)),
        lambda: setattr(model, "temperature", 0.05),
    ):
        change()
        torch.testing.assert_close(ex(x, target=1), fresh(), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ex.logits, model(x), atol=1e-4, rtol=1e-4)


def test_the_cache_key_ignores_nothing_forward_can_read():
    model, x = Scaled().eval(), _x()
    cache = InferenceCache(model)
    key = cache.key(x)
    assert _same_key(cache.key(x), key)
    model.temperature = 1.0  # the same value again: nothing changed
    assert _same_key(cache.key(x), key)
    model.temperature = 2.0
    assert not _same_key(cache.key(x), key)
    model.temperature = 1.0
    model.act = nn.ReLU()  # a new module object, same type
    assert not _same_key(cache.key(x), key)
    key = cache.key(x)
    with torch.no_grad():
        model.conv.weight = nn.Parameter(model.conv.weight.clone())  # same values, new tensor
    assert not _same_key(cache.key(x), key)
    model.eval()  # the new ReLU above was made in training mode
    key = cache.key(x)
    model.train()
    assert not _same_key(cache.key(x), key)
    model.eval()
    assert _same_key(cache.key(x), key)
    assert not _same_key(cache.key(x.double()), key)


def test_cam_refuses_an_fc_module_that_is_not_linear():
    # A Conv2d passed as fc used to fail later as "the classifier takes 3 features".
    model = Scaled().eval()
    with pytest.raises(InvalidParameterError, match="final nn.Linear"):
        CAM(model, "conv", fc=nn.Conv2d(3, 6, 3))


def test_a_layer_the_forward_never_uses_is_a_clear_error():
    class Unused(Scaled):
        def __init__(self):
            super().__init__()
            self.spare = nn.Conv2d(3, 6, 3)

    model = Unused().eval()
    for explainer in (CAM(model, "spare"), GradCAM(model, "spare")):
        with pytest.raises(ModelError, match="not used in the forward pass"), explainer:
            explainer(_x())
    ex = GradCAM(model, "conv")
    model.conv = nn.Conv2d(3, 6, 3, padding=1)
    with pytest.raises(ModelError, match="was replaced"), ex:
        ex(_x())


def test_explain_image_reports_the_class_it_explained():
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    for target in (3, np.int64(3), torch.tensor(3), [3]):
        res = explain_image(image, methods=["gradcam"], target=target)
        assert res.target == 3 and res.target_name == "cat", target
    assert explain_image(image, methods="gradcam,saliency").target is not None
    for bad in (True, 2.7):
        with pytest.raises(InvalidParameterError, match="target must be"):
            explain_image(image, methods=["gradcam"], target=bad)


def test_explain_image_refuses_what_it_would_ignore():
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    with pytest.raises(InvalidParameterError, match="takes 32x32 inputs"):
        explain_image(image, size=(64, 64))
    with pytest.raises(InvalidParameterError, match="no method given"):
        explain_image(image, methods=[])
    with pytest.raises(InvalidParameterError, match="read no layer"):
        explain_image(image, methods="saliency,occlusion", layer="layer3")
    assert explain_image(image, methods="saliency,gradcam", layer="layer2").layer == "layer2"
    with pytest.raises(InvalidParameterError, match="scorcam"):
        explain_image(image, methods=["scorecam"], options={"scorcam": {"top_k": 4}})
    for bad in (-1, 2.5, True):  # -1 was a raw RuntimeError from torch.topk
        with pytest.raises(InvalidParameterError, match="top must be a whole number"):
            explain_image(image, top=bad)
    assert explain_image(image, top=0).top == [] and len(explain_image(image, top=50).top) == 10
    user = load_model("resnet20-cifar10")
    user.input_size = None  # as for a user's TorchScript file
    assert explain_image(image, user, size=16).maps["gradcam"].shape == (32, 32)


def test_explain_image_applies_options_whatever_the_case_of_the_method_names():
    # Method names are matched in any case; an option keyed "ScoreCAM" for the method
    # "scorecam" (or the reverse) passed the unknown-options check and was then dropped.
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    top1 = explain_image(image, methods=["scorecam"], options={"scorecam": {"top_k": 1}})
    plain = explain_image(image, methods=["scorecam"])
    assert not np.allclose(top1.maps["scorecam"], plain.maps["scorecam"])
    for methods, key in ((["ScoreCAM"], "scorecam"), (["scorecam"], "ScoreCAM")):
        res = explain_image(image, methods=methods, options={key: {"top_k": 1}})
        np.testing.assert_array_equal(res.maps[methods[0]], top1.maps["scorecam"])


def test_cli_refuses_size_and_arch_for_built_in_models_and_lists_them(tmp_path, kodak_paths):
    image = str(kodak_paths[0])
    result = runner.invoke(app, ["explain", image, "--size", "64"])
    assert result.exit_code == 2 and "32x32" in result.output
    result = runner.invoke(app, ["explain", image, "--arch", "resnet20"])
    assert result.exit_code == 2 and "--arch" in result.output
    result = runner.invoke(app, ["explain", image, "--method", ","])
    assert result.exit_code == 2 and "no method given" in result.output
    help_text = " ".join(runner.invoke(app, ["explain", "--help"]).output.split())
    assert all(name in help_text for name in list_models())
    junk = tmp_path / "notamodel.pt"
    junk.write_bytes(b"\x00" * 64)
    result = runner.invoke(app, ["explain", image, "--model", str(junk), "--arch", "resnet20"])
    assert result.exit_code == 1 and "is not a PyTorch checkpoint" in result.output


def test_feature_index_keeps_file_names_and_numbers_arrays_by_their_place(tmp_path, kodak_paths):
    model = load_model("resnet20-cifar10").model
    rng = np.random.default_rng(0)
    index = FeatureIndex(model, "layer3").add([str(kodak_paths[0])])
    index.add([rng.random((32, 32, 3)), str(kodak_paths[1]), rng.random((32, 32, 3))])
    assert index.names == [str(kodak_paths[0]), "image[1]", str(kodak_paths[1]), "image[3]"]
    assert index.query([str(kodak_paths[1])], k=1)[0][0][0] == str(kodak_paths[1])


def test_class_model_follows_a_float64_model():
    model = Scaled().double().eval()
    result = class_model(model, 2, size=(8, 8), steps=3, jitter=1, blur_every=2)
    assert result.image.dtype == torch.float64 and len(result.scores) == 4
    start = torch.zeros(1, 3, 8, 8)  # float32 start, float64 model
    assert class_model(model, 2, steps=1, start=start).image.dtype == torch.float64


def test_an_input_goes_to_the_device_and_dtype_of_the_model():
    from boda.explain._base import _as_model_input

    # The "meta" device stands for a GPU: a CPU tensor moved there reports it.
    x = torch.rand(2, 3, 8, 8)
    on_meta = _as_model_input(nn.Conv2d(3, 4, 3).double().to("meta"), x)
    assert (on_meta.device.type, on_meta.dtype) == ("meta", torch.float64)
    # no parameter: the first buffer says where the model is (the dtype stays)
    buffers_only = nn.BatchNorm2d(3, affine=False).to("meta")
    assert not list(buffers_only.parameters())
    moved = _as_model_input(buffers_only, x)
    assert (moved.device.type, moved.dtype) == ("meta", torch.float32)
    labels = torch.ones(2, dtype=torch.long)  # only floating-point inputs change type
    assert _as_model_input(nn.Conv2d(3, 4, 3).half().to("meta"), labels).dtype == torch.long
    # already there, or a model with neither: the tensor itself, no copy
    assert _as_model_input(nn.Conv2d(3, 4, 3), x) is x and _as_model_input(nn.ReLU(), x) is x


def test_every_entry_point_gives_the_model_its_input_through_the_one_helper(monkeypatch):
    import sys

    import boda.explain._base as base
    from boda.explain import GuidedGradCAM, Saliency, ScoreCAM, layer_features
    from boda.explain import top_activating_patches as patches
    from boda.explain.metrics import insertion_curve
    from boda.nn import LoadedModel

    real, seen = base._as_model_input, []

    def spy(model, x):
        seen.append(model)
        return real(model, x)

    for name, module in list(sys.modules.items()):
        if name.startswith("boda.explain") and getattr(module, "_as_model_input", None) is real:
            monkeypatch.setattr(module, "_as_model_input", spy)
    model, x = _conv_net(False), _x(2, 12)
    maps = GradCAM(model, "3")(x, 1)
    image = np.random.default_rng(0).random((12, 12, 3))
    calls = {
        "gradcam": lambda: GradCAM(model, "3")(x, 1),
        "scorecam": lambda: ScoreCAM(model, "3", batch_size=4)(x, 1),
        "occlusion": lambda: make_explainer("occlusion", model, window=4, stride=4)(x, 1),
        "saliency gradients": lambda: Saliency(model, samples=2).gradients(x, 1),
        "guided gradcam": lambda: GuidedGradCAM(model, "3")(x, 1),
        "layer_features": lambda: layer_features(model, "3", x),
        "receptive_field": lambda: receptive_field(model, "3", (12, 12), [(4, 4)]),
        "top_activating_patches": lambda: patches(model, "3", 0, [image], size=(12, 12), k=1),
        "FeatureIndex": lambda: FeatureIndex(model, "3", size=(12, 12)).add([image]),
        "class_model": lambda: class_model(model, 1, size=(12, 12), steps=1),
        "deletion_curve": lambda: deletion_curve(model, x, maps, 1, steps=2),
        "insertion_curve": lambda: insertion_curve(model, x, maps, 1, steps=2),
        "average_drop_increase": lambda: average_drop_increase(model, x, maps, 1),
        "explain_image": lambda: explain_image(image, LoadedModel(model, "net"), ["cam"]),
    }
    for name, call in calls.items():
        seen.clear()
        call()
        assert any(m is model for m in seen), name
    assert maps.device == x.device


def test_metrics_check_targets_and_baselines():
    model, x = Scaled().eval(), _x()
    maps = torch.rand(2, 10, 10)
    for bad in (4, -1, [0, 9]):
        with pytest.raises(InvalidParameterError, match="out of range"):
            deletion_curve(model, x, maps, target=bad)
        with pytest.raises(InvalidParameterError, match="out of range"):
            average_drop_increase(model, x, maps, target=bad)
    with pytest.raises(InvalidParameterError, match="baseline"):
        deletion_curve(model, x, maps, target=1, baseline="mean")
    assert deletion_curve(model, x, maps, target=[1, 3], steps=4).auc.shape == (2,)


def test_receptive_field_refuses_units_outside_the_map():
    model = Scaled().eval()
    assert receptive_field(model, "conv", (10, 10), [(0, 0)]) == [(0, 0, 2, 2)]
    for position in ((-1, 0), (10, 3)):
        with pytest.raises(InvalidParameterError, match="outside the layer"):
            receptive_field(model, "conv", (10, 10), [position])


def test_receptive_fields_pass_through_max_pooling():
    # A max passes its gradient to one pixel per window; the field is the window.
    net = nn.Sequential(nn.MaxPool2d(4), nn.Conv2d(3, 2, 1)).eval()
    assert receptive_field(net, net[1], (16, 16), [(1, 1)]) == [(4, 4, 8, 8)]
    deeper = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.AdaptiveMaxPool2d(1),
    ).eval()  # fmt: skip
    assert receptive_field(deeper, deeper[3], (16, 16), [(3, 3)]) == [(3, 3, 11, 11)]


def test_metrics_refuse_nan_maps_numpy_maps_and_bad_baselines():
    model, x = Scaled().eval(), _x()
    maps = torch.rand(2, 10, 10)
    with pytest.raises(InvalidParameterError, match="NaN"):
        deletion_curve(model, x, torch.where(maps > 0.9, float("nan"), maps), target=1)
    with pytest.raises(InvalidParameterError, match="numpy"):
        average_drop_increase(model, x, maps.numpy(), target=1)
    for kwargs in ({"baseline": float("nan")}, {"baseline": None},
                   {"baseline": "blur", "blur_sigma": 0}):  # fmt: skip
        with pytest.raises(InvalidParameterError, match="baseline|blur_sigma"):
            deletion_curve(model, x, maps, target=1, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_occlusion_and_smoothgrad_refuse_values_that_give_blank_maps(bad):
    # A NaN or infinite baseline filled every window with it (a blank map), a NaN or
    # infinite noise every noisy copy: refused as the metrics refuse such a baseline.
    model = Scaled().eval()
    for kwargs in ({"baseline": bad}, {"baseline": "blur", "blur_sigma": bad},
                   {"baseline": True}, {"baseline": "zero"}):  # fmt: skip
        with pytest.raises(InvalidParameterError, match="baseline|blur_sigma"):
            make_explainer("occlusion", model, **kwargs)
    with pytest.raises(InvalidParameterError, match="noise"):
        make_explainer("smoothgrad", model, noise=bad)
    with pytest.raises(InvalidParameterError, match="blur_sigma"):
        deletion_curve(model, _x(), torch.rand(2, 10, 10), 1, baseline="blur", blur_sigma=bad)
    assert make_explainer("occlusion", model, baseline=np.float32(0.5))(_x(), 1).any()


def test_occlusion_windows_are_whole_numbers_or_pairs_of_them():
    # A numpy integer (a window computed from an array shape) was a raw TypeError, as were
    # 0.5 and (8,); True was taken for a 1-pixel window.
    model = Scaled().eval()
    ref = make_explainer("occlusion", model, window=3, stride=2)(_x(), 1)
    for window, stride in ((np.int64(3), np.int32(2)), ((3, 3), [2, 2])):
        ex = make_explainer("occlusion", model, window=window, stride=stride)
        assert ex.window == (3, 3) and ex.stride == (2, 2)
        torch.testing.assert_close(ex(_x(), 1), ref)
    for bad in (0, 0.5, True, (8,), (8, 0), (8, 4, 2), "8"):
        with pytest.raises(InvalidParameterError, match="window must be a whole number"):
            make_explainer("occlusion", model, window=bad)



def test_chunk_sizes_are_whole_numbers_and_eps_finite():
    # 2.5 chunks were taken as 2, "a" failed in int(); an infinite eps zeroed every weight
    model = Scaled().eval()
    for method, option in (("scorecam", "batch_size"), ("scorecam", "top_k"),
                           ("occlusion", "batch_size")):  # fmt: skip
        for bad in (2.5, "a", 0, True):
            with pytest.raises(InvalidParameterError, match=f"{option} must be a whole number"):
                make_explainer(method, model, **{option: bad})
        assert getattr(make_explainer(method, model, **{option: np.int64(2)}), option) == 2
    for bad in (float("inf"), float("nan"), -1.0, "a"):
        with pytest.raises(InvalidParameterError, match="eps must be a finite number"):
            make_explainer("gradcam++", model, eps=bad)


def test_feature_search_checks_k_and_measures_exact_distances(tmp_path):
    model = Scaled().eval()
    index = FeatureIndex(model, "conv", metric="euclidean")
    # Far from the origin and close together: the matrix-product shortcut of
    # cdist loses these distances; every row must find itself at distance 0.
    vectors = 1000.0 + torch.randn(60, 6, generator=torch.Generator().manual_seed(0)) * 1e-2
    index.names, index.vectors = [f"v{i}" for i in range(60)], vectors
    hits = index.query(vectors, k=1)
    assert [h[0][0] for h in hits] == index.names
    assert all(abs(h[0][1]) < 1e-9 for h in hits)
    for bad in (0, -1, 2.5):
        with pytest.raises(InvalidParameterError, match="k must be"):
            index.query(vectors, k=bad)


def test_overlay_takes_colormap_objects_and_refuses_nan_maps():
    import matplotlib

    from boda.errors import InvalidImageError
    from boda.explain import overlay

    image, heat = np.zeros((8, 8, 3), np.float32), np.linspace(0, 1, 16).reshape(4, 4)
    by_name = overlay(image, heat, cmap="viridis")
    np.testing.assert_array_equal(overlay(image, heat, cmap=matplotlib.colormaps["viridis"]),
                                  by_name)  # fmt: skip
    with pytest.raises(InvalidParameterError, match="colormap"):
        overlay(image, heat, cmap=3)
    heat[1, 1] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        overlay(image, heat)


def _conv_net(inplace: bool, seed: int = 0, batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    norm = (lambda: nn.BatchNorm2d(8)) if batchnorm else nn.Identity
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), norm(), nn.ReLU(inplace=inplace),
        nn.Conv2d(8, 8, 3, padding=1), norm(), nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    ).eval()


class AddInPlace(nn.Module):
    """A residual block that adds in place, as torchvision's BasicBlock does."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))

    def forward(self, x):
        out = self.conv(x)
        out += x
        return self.head(torch.relu(out))


def _without_copy(explainer):
    explainer.inference_copy = False  # the model itself, every call
    return explainer


def test_layers_followed_by_in_place_ops_are_read_before_them():
    from boda.explain import ScoreCAM, layer_features

    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    a, b = _conv_net(inplace=True), _conv_net(inplace=False)
    assert layer_features(a, "3", x).min() < 0  # the convolution's own output
    torch.testing.assert_close(layer_features(a, "3", x), layer_features(b, "3", x))
    torch.testing.assert_close(CAM(a, "3")(x, 1), CAM(b, "3")(x, 1))
    scorecam = ScoreCAM(a, "3")
    scorecam.inference_min_forwards = 1  # the copies' tapped reads are checked too
    want = _without_copy(ScoreCAM(b, "3"))(x, 1)
    on_copy = []
    first_forward = scorecam._first_forward_on_copy
    scorecam._first_forward_on_copy = lambda x: on_copy.append(first_forward(x)) or on_copy[-1]
    for _ in range(3):
        torch.testing.assert_close(scorecam(x, 1), want, atol=1e-5, rtol=1e-4)
    assert on_copy[-1] is not None  # the fast copy reads the layer too, before the ReLU
    block = AddInPlace().eval()
    conv = layer_features(block, "conv", x)
    torch.testing.assert_close(conv, block.conv(x).mean(dim=(2, 3)))  # pooled


def test_weights_written_through_data_rebuild_the_inference_copy():
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    from boda.explain import Occlusion, ScoreCAM

    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    model, other = _conv_net(False, 0, True), _conv_net(False, 7, True)
    scorecam, occlusion = ScoreCAM(model, "3"), Occlusion(model, window=4, stride=4)
    for explainer in (scorecam, occlusion):
        explainer.inference_min_forwards = 1
        explainer(x, 1), explainer(x, 1)  # the copy is built and in use

    def fresh():
        return (_without_copy(ScoreCAM(model, "3"))(x, 1),
                _without_copy(Occlusion(model, window=4, stride=4))(x, 1))

    updates = [
        lambda: model[0].weight.data.copy_(other[0].weight),  # an EMA step writes like this
        lambda: setattr(model[3].weight, "data", other[3].weight.detach().clone()),
        lambda: vector_to_parameters(parameters_to_vector(other.parameters()), model.parameters()),
        lambda: model[1].running_mean.data.add_(0.5),
    ]
    for update in updates:
        update()
        want_scorecam, want_occlusion = fresh()
        torch.testing.assert_close(scorecam(x, 1), want_scorecam, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(occlusion(x, 1), want_occlusion, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(scorecam.logits, model(x), atol=1e-5, rtol=1e-4)


def test_one_model_explained_from_several_threads_gives_the_serial_results():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from boda.explain import ScoreCAM

    model = _conv_net(False, 0, True).train()  # train mode: BatchNorm would update
    state = {k: v.clone() for k, v in model.state_dict().items()}
    xs = torch.rand(4, 1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    gradcam, scorecam = GradCAM(model, "3"), ScoreCAM(model, "3")  # shared by the threads
    serial = [(gradcam(x, 1), scorecam(x, 1)) for x in xs]
    barrier = threading.Barrier(4)

    def job(i):
        barrier.wait()
        return [(gradcam(xs[i], 1), scorecam(xs[i], 1)) for _ in range(3)]

    with cpu_threads(1), ThreadPoolExecutor(4) as pool:
        results = list(pool.map(job, range(4)))
    for i, runs in enumerate(results):
        for g, s in runs:
            torch.testing.assert_close(g, serial[i][0])
            torch.testing.assert_close(s, serial[i][1], atol=1e-5, rtol=1e-4)
    assert model.training and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def _gray_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 2),
    ).eval()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit
def test_one_channel_models_are_explained_from_images_and_files(tmp_path):
    from boda.explain import top_activating_patches
    from boda.io import write_image
    from boda.nn import LoadedModel

    model = _gray_net()
    rng = np.random.default_rng(0)
    rgb = rng.random((20, 24, 3)).astype(np.float32)
    write_image(tmp_path / "a.png", rgb)
    res = explain_image(rgb, LoadedModel(model, name="gray"), ["gradcam", "saliency"], size=16)
    assert res.maps["gradcam"].shape == (20, 24) and res.image.shape == (20, 24, 3)
    patches = top_activating_patches(model, "0", 0, tmp_path, size=(16, 16), k=1)
    assert patches.patches[0].crop.ndim == 3 and patches.patches[0].crop.shape[2] == 3
    index = FeatureIndex(model, "0", size=(16, 16)).add(tmp_path)
    assert index.vectors.shape == (1, 4)
    assert class_model(model, 1, size=(16, 16), steps=2).image.shape[1] == 1
    jit = tmp_path / "gray.pt"
    torch.jit.save(torch.jit.script(model), jit)
    result = runner.invoke(
        app, ["explain", str(tmp_path / "a.png"), "--model", str(jit), "--method", "saliency",
              "--size", "16", "--json", "--trust-model-code"],
    )
    assert result.exit_code == 0, result.output


def test_reduced_precision_models_get_inputs_of_their_type(tmp_path):
    from boda.nn import LoadedModel

    torch.manual_seed(0)
    half = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 2),
    ).eval().to(torch.bfloat16)
    img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    res = explain_image(img, LoadedModel(half, name="bf16"), ["gradcam", "occlusion"])
    assert np.isfinite(res.maps["gradcam"]).all()
    x = torch.rand(2, 3, 16, 16).to(torch.bfloat16)
    scores = average_drop_increase(half, x, GradCAM(half, "0")(x))
    assert set(scores) == {"average_drop", "average_increase"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit
def test_a_model_that_fails_on_the_input_is_a_one_line_error(tmp_path):
    from boda.io import write_image

    class FlattensTooMuch(nn.Module):  # its head fits no input size
        def __init__(self):
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 4, 3), nn.Linear(36, 2)

        def forward(self, x):
            return self.head(self.conv(x).flatten(1))

    torch.manual_seed(0)
    path = tmp_path / "bad.pt"
    torch.jit.save(torch.jit.trace(FlattensTooMuch().eval(), torch.rand(1, 3, 5, 5)), path)
    write_image(tmp_path / "a.png", np.full((16, 16, 3), 0.5, np.float32))
    result = runner.invoke(
        app,
        ["explain", str(tmp_path / "a.png"), "--model", str(path), "--method", "saliency",
         "--trust-model-code"],
    )
    assert result.exit_code == 1 and "failed on a (1, 3, 16, 16) float32 input" in result.output
    assert not isinstance(result.exception, RuntimeError)


def test_the_default_layer_looks_through_wrappers():
    model = _conv_net(False)
    wrapped = nn.DataParallel(model)
    assert GradCAM(wrapped).layer_name == "module.3"
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(GradCAM(wrapped)(x, 1), GradCAM(model)(x, 1))


# -- models a review found explained wrongly or refused with a raw torch error ---------------


class _Head(nn.Module):
    """conv features -> GAP -> head; ``head="aux"``: the classifier, then a projection
    head of the same shape registered after it and never run; ``head="mlp"``: an MLP
    head (Linear-ReLU-Linear, its hidden width the channel count), for which CAM is
    not defined."""

    def __init__(self, head: str):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        if head == "aux":
            self.fc, self.proj = nn.Linear(8, 5), nn.Linear(8, 5)
        else:
            self.fc = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 5))

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def test_cam_takes_the_linear_layer_that_follows_the_pooled_layer():
    # The default used to be the model's last nn.Linear: the unused projection head
    # here (a wrong map, silently), the MLP's last layer there (CAM is not defined).
    x = _x(2, 12)
    model = _Head("aux").eval()
    cam = CAM(model, "features")
    got = cam(x, 1, normalize=False, upsample=False)
    assert cam.fc is model.fc
    acts = model.features(x)
    want = torch.einsum("c,bchw->bhw", model.fc.weight[1], acts)
    torch.testing.assert_close(got, want)
    # As the paper says: the map's mean plus the bias is the logit.
    torch.testing.assert_close(got.mean((1, 2)) + model.fc.bias[1], model(x)[:, 1])
    mlp = _Head("mlp").eval()
    with pytest.raises(InvalidParameterError, match=r"'fc\.0'.*8 features to 8.*pass fc="):
        CAM(mlp, "features")(x)
    with pytest.raises(InvalidParameterError, match="5 logits"):  # an fc given: checked too
        CAM(model, "features", fc=nn.Linear(8, 7))(x)


def test_a_module_under_two_names_is_found_by_either():
    class Aliased(Scaled):
        def __init__(self):
            super().__init__()
            self.body = self.conv  # one module, two attribute paths

        def forward(self, x):
            return self.fc(self.pool(self.act(self.body(x))).flatten(1))

    from boda.explain import layer_features, resolve_layer

    model, x = Aliased().eval(), _x()
    # named_modules() lists the module once, as "conv": "body" used to be "not a module".
    assert resolve_layer(model, "body") == ("conv", model.conv)
    assert resolve_layer(model, model.body)[0] == resolve_layer(model, None)[0] == "conv"
    want = GradCAM(model, "conv")(x, 1, normalize=False)
    ex = GradCAM(model, "body")
    seen = []
    model.fc.register_forward_pre_hook(
        lambda *_: seen.append(len(model.conv._forward_hooks))
    )  # fmt: skip
    torch.testing.assert_close(ex(x, 1, normalize=False), want)  # not doubled
    assert seen == [1] and ex.layer_name == "conv"  # one hook during the call
    torch.testing.assert_close(CAM(model, "body")(x, 1), CAM(model, "conv")(x, 1))
    torch.testing.assert_close(layer_features(model, "body", x), layer_features(model, "conv", x))
    with pytest.raises(InvalidParameterError, match="did you mean 'body'"):
        resolve_layer(model, "bodyy")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_feature_functions_give_float16_and_float64_models_inputs_of_their_type(dtype, tmp_path):
    from boda.explain import layer_features, top_activating_patches
    from boda.io import write_image

    model = _conv_net(False).to(dtype)
    x = _x(2, 16)  # float32, as image_to_tensor and torch.rand give
    images = [np.random.default_rng(i).random((16, 16, 3)).astype(np.float32) for i in range(3)]
    write_image(tmp_path / "a.png", images[0])
    assert layer_features(model, "3", x).shape == (2, 8)
    assert receptive_field(model, "3", (16, 16), [(8, 8)]) == [(6, 6, 11, 11)]
    assert len(top_activating_patches(model, "3", 0, images, size=(16, 16), k=2).patches) == 2
    index = FeatureIndex(model, "3", size=(16, 16)).add(images).add(tmp_path).add(x)
    assert index.query(images[:1], k=1)[0][0][0] == "image[0]"
    maps = GradCAM(model, "3")(x, 1)  # the explainers, and the metrics, cast the same way
    assert torch.isfinite(maps).all()
    assert deletion_curve(model, x, maps, 1, steps=2).scores.shape == (2, 3)


def test_the_default_layer_keeps_a_spatial_map():
    from boda.explain import resolve_layer

    class Squeeze(nn.Module):  # torchvision's SqueezeNet layout
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Conv2d(8, 5, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
            )

        def forward(self, x):
            return self.classifier(self.features(x)).flatten(1)

    class OneSequential(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _conv_net(False)

        def forward(self, x):
            return self.net(x)

    squeeze = Squeeze().eval()
    # It used to be "classifier", pooled to 1x1: every map flat, normalised to 0.
    assert resolve_layer(squeeze, None)[0] == "classifier.1"
    maps = GradCAM(squeeze)(_x(2, 12), 1, upsample=False)
    assert maps.shape == (2, 12, 12) and (maps.amax((1, 2)) == 1).all()
    assert resolve_layer(OneSequential(), None)[0] == "net.3"  # was "net": (B, 5) logits
    assert resolve_layer(_conv_net(False), None)[0] == "3"  # unchanged where it was right


@pytest.mark.parametrize("method", sorted(
    ["cam", "gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad", "guided",
     "guided-gradcam", "occlusion"]
))  # fmt: skip
def test_an_empty_batch_is_refused_by_name(method):
    model = Scaled().eval()
    layer = None if method in ("saliency", "smoothgrad", "guided", "occlusion") else "conv"
    with pytest.raises(InvalidParameterError, match=r"x is empty \(shape \(0, 3, 10, 10\)\)"):
        make_explainer(method, model, layer)(torch.zeros(0, 3, 10, 10))
    with pytest.raises(InvalidParameterError, match="x is empty"):
        make_explainer(method, model, layer)(torch.zeros(1, 3, 0, 10))


def test_metrics_and_feature_functions_refuse_empty_batches():
    from boda.explain import layer_features
    from boda.explain.metrics import insertion_curve, pointing_game

    model, empty = Scaled().eval(), torch.zeros(0, 3, 10, 10)
    for metric in (deletion_curve, insertion_curve, average_drop_increase):
        with pytest.raises(InvalidParameterError, match="x is empty"):
            metric(model, empty, torch.zeros(0, 10, 10))
    with pytest.raises(InvalidParameterError, match="maps and masks are empty"):
        pointing_game(np.zeros((0, 4, 4)), np.zeros((0, 4, 4), bool))
    with pytest.raises(InvalidParameterError, match="non-empty"):
        layer_features(model, "conv", empty)
    index = FeatureIndex(model, "conv", size=(10, 10))
    with pytest.raises(InvalidParameterError, match="no readable images"):
        index.add([])
    with pytest.raises(InvalidParameterError, match="images is an empty batch"):
        index.add(empty)
    with pytest.raises(InvalidParameterError, match="images is an empty batch"):
        index.add(_x()).query(empty)
