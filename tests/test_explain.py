"""Tests for boda.explain: the CAM family, gradients, occlusion, pictures and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from boda.errors import InvalidParameterError  # noqa: E402
from boda.explain import (  # noqa: E402
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    GuidedBackprop,
    GuidedGradCAM,
    Occlusion,
    Saliency,
    ScoreCAM,
    explain_image,
    montage,
    normalize_maps,
    overlay,
)
from boda.nn import cpu_threads, image_to_tensor, load_model  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


class TinyNet(nn.Module):
    """conv-ReLU-conv-ReLU ("features") -> global average pooling -> linear."""

    def __init__(self, inplace: bool = False, functional: bool = False, classes: int = 5):
        super().__init__()
        self.functional = functional
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=inplace)
        self.features = nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(inplace))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = F.relu(self.conv1(x)) if self.functional else self.relu1(self.conv1(x))
        return self.fc(self.pool(self.features(x)).flatten(1))


def tiny(seed: int = 0, **kw) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(**kw).eval()


def batch(n: int = 3, size: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


ALL = [
    lambda m: CAM(m, "features"),
    lambda m: GradCAM(m, "features"),
    lambda m: GradCAMPlusPlus(m, "features"),
    lambda m: ScoreCAM(m, "features", batch_size=5),
    lambda m: Saliency(m),
    lambda m: Saliency(m, samples=2, squared=True),
    lambda m: GuidedBackprop(m),
    lambda m: GuidedGradCAM(m, "features"),
    lambda m: Occlusion(m, window=4, stride=4),
]


# -- the base: hooks, state, grad modes ---------------------------------------------------
@pytest.mark.parametrize("make", ALL)
def test_state_restored_and_hooks_removed(make):
    model = tiny()
    model.train()
    model.conv1.weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    x = batch()
    with make(model) as ex:
        maps = ex(x)
    assert maps.shape == (3, 12, 12)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert _hooks(model) == 0
    assert not x.requires_grad


@pytest.mark.parametrize("make", ALL)
def test_hooks_removed_after_an_exception(make):
    model = tiny()
    with pytest.raises(InvalidParameterError, match="out of range"):
        make(model)(batch(), target=7)  # the model has 5 classes
    assert _hooks(model) == 0
    assert all(not m.training for m in model.modules())


@pytest.mark.parametrize("make", ALL)
def test_works_under_no_grad_and_inference_mode(make):
    model, x = tiny(), batch()
    ref = make(model)(x, target=1)
    with torch.no_grad():
        torch.testing.assert_close(make(model)(x, target=1), ref)
    with torch.inference_mode():
        x_inf = x.clone()
        torch.testing.assert_close(make(model)(x_inf, target=1), ref)


def test_targets_per_sample_callable_and_structured_outputs():
    model, x = tiny(), batch()
    cam = GradCAM(model, "features")
    per = cam(x, target=[0, 3, 1])
    for i, c in enumerate([0, 3, 1]):
        torch.testing.assert_close(per[i], cam(x[i : i + 1], target=c)[0])
    torch.testing.assert_close(cam(x, target=lambda logits: logits[:, 3]), cam(x, target=3))
    pred = cam(x)
    assert cam.classes.tolist() == model(x).argmax(1).tolist()
    torch.testing.assert_close(pred, cam(x, target=cam.classes))

    class TupleOut(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x), "aux"

    class DictOut(TupleOut):
        def forward(self, x):
            return {"logits": self.inner(x), "other": 0}

    for wrapper in (TupleOut, DictOut):
        wrapped = wrapper(model)
        torch.testing.assert_close(GradCAM(wrapped, "inner.features")(x, 3), cam(x, 3))
    with pytest.raises(InvalidParameterError, match="3 targets|one per sample"):
        cam(x, target=[0, 1])
    with pytest.raises(InvalidParameterError, match="did you mean"):
        GradCAM(model, "featurs")


# -- CAM family ------------------------------------------------------------------------------
def test_cam_equals_gradcam_for_gap_linear():
    # For GAP + linear, dy_c/dA_k = w_ck / (h w): Grad-CAM's weights are CAM's up to a scale.
    model, x = tiny(), batch()
    raw_cam = CAM(model, "features")(x, 2, normalize=False, upsample=False)
    raw_grad = GradCAM(model, "features")(x, 2, normalize=False, upsample=False)
    assert (raw_cam < 0).any()  # CAM keeps negative evidence, Grad-CAM clips it
    torch.testing.assert_close(raw_grad * 36, raw_cam.relu())  # 6x6 feature map
    cam = CAM(model, "features")(x, 2, normalize=False, upsample=False).relu()
    grad = GradCAM(model, "features")(x, 2, upsample=False)
    torch.testing.assert_close(normalize_maps(cam), grad)


def test_cam_and_gradcam_match_torchcam():
    torchcam = pytest.importorskip("torchcam.methods")
    model, x = tiny(), batch()
    classes = [0, 4, 2]
    for ours, theirs in ((GradCAM, torchcam.GradCAM), (CAM, torchcam.CAM)):
        with theirs(model, "features") as ref:
            scores = model(x)
            expected = ref(class_idx=classes, scores=scores)[0]
        got = ours(model, "features")(x, classes, upsample=False)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_gradcam_matches_torchcam_on_resnet20():
    torchcam = pytest.importorskip("torchcam.methods")
    model = load_model("resnet20-cifar10").model
    x = batch(2, 32, seed=3)
    with torchcam.GradCAM(model, "layer3") as ref:
        expected = ref(class_idx=[3, 8], scores=model(x))[0]
    got = GradCAM(model, "layer3")(x, [3, 8], upsample=False)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    cam = CAM(model, "layer3")(x, [3, 8], normalize=False, upsample=False).relu()
    grad = GradCAM(model, "layer3")(x, [3, 8], upsample=False)
    torch.testing.assert_close(normalize_maps(cam), grad, atol=1e-5, rtol=1e-4)


def test_gradcam_plus_plus_matches_the_formula():
    # Independent numpy evaluation of Eq. 19 of Chattopadhay et al. from full-model gradients.
    model, x = tiny(), batch()
    acts = {}
    h = model.features.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    out = model(x)
    h.remove()
    (g,) = torch.autograd.grad(out[:, 1].sum(), acts["a"])
    a, g = acts["a"].detach().numpy().astype(np.float64), g.numpy().astype(np.float64)
    expected = np.zeros(a.shape[:1] + a.shape[2:])
    for b in range(a.shape[0]):
        for k in range(a.shape[1]):
            num = g[b, k] ** 2
            den = 2 * num + a[b, k].sum() * g[b, k] ** 3
            alpha = np.where(den != 0, num / np.where(den != 0, den, 1), 0)
            expected[b] += (alpha * np.maximum(g[b, k], 0)).sum() * a[b, k]
    expected = np.maximum(expected, 0)
    got = GradCAMPlusPlus(model, "features")(x, 1, normalize=False, upsample=False)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-6)
    model.zero_grad(set_to_none=True)


def test_gradcam_plus_plus_grad_squared_matches_torchcam():
    # torchcam 0.5's Grad-CAM++ loses its alpha division (it divides a copy): the
    # "grad-squared" option reproduces its maps; the default (Eq. 19) differs from them.
    torchcam = pytest.importorskip("torchcam.methods")
    model = load_model("resnet20-cifar10").model
    x = batch(2, 32, seed=5)
    with torchcam.GradCAMpp(model, "layer3") as ref:
        expected = ref(class_idx=[2, 7], scores=model(x))[0]
    got = GradCAMPlusPlus(model, "layer3", alpha="grad-squared")(x, [2, 7], upsample=False)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    paper = GradCAMPlusPlus(model, "layer3")(x, [2, 7], upsample=False)
    assert (paper - expected).abs().max() > 1e-3
    with pytest.raises(InvalidParameterError, match="alpha"):
        GradCAMPlusPlus(model, "layer3", alpha="torchcam")


def _layer_output(model, x, layer):
    """``layer``'s output on ``x`` (detached), through a hook removed at once."""
    acts = {}
    h = layer.register_forward_hook(lambda m, i, o: acts.setdefault("a", o.detach()))
    with torch.no_grad():
        model(x)
    h.remove()
    return acts["a"]


def _scorecam_reference(model, x, layer, c, *, align_corners=False):
    """Score-CAM by the paper, one masked forward at a time; ``align_corners=True``
    upsamples as pytorch-grad-cam's ``nn.UpsamplingBilinear2d`` does."""
    a = _layer_output(model, x, layer)
    with torch.no_grad():
        out = torch.zeros(a.shape[0], *a.shape[2:])
        for b in range(a.shape[0]):
            for k in range(a.shape[1]):
                m = a[b, k]
                if m.max() == m.min():
                    continue
                up = F.interpolate(
                    m[None, None], x.shape[-2:], mode="bilinear", align_corners=align_corners
                )[0, 0]
                mask = (up - up.min()) / (up.max() - up.min())
                w = model(x[b : b + 1] * mask).softmax(1)[0, c]
                out[b] += w * m
    return out.relu()


def test_scorecam_matches_reference_and_is_chunk_invariant():
    model, x = tiny(), batch()
    # Make channel 0 of the layer constant (all-zero weights, positive bias): it must be skipped.
    with torch.no_grad():
        model.features[0].weight[0] = 0
        model.features[0].bias[0] = 0.5
    ref = _scorecam_reference(model, x, model.features, 2)
    maps = [
        ScoreCAM(model, "features", batch_size=bs)(x, 2, normalize=False, upsample=False)
        for bs in (1, 7, 1000)
    ]
    for m in maps:
        torch.testing.assert_close(m, ref, atol=1e-5, rtol=1e-4)
        assert torch.isfinite(m).all()
    full = ScoreCAM(model, "features", top_k=8)(x, 2, normalize=False, upsample=False)
    torch.testing.assert_close(full, maps[0], atol=1e-5, rtol=1e-4)
    top2 = ScoreCAM(model, "features", top_k=2)(x, 2, normalize=False, upsample=False)
    assert not torch.allclose(top2, maps[0])


def _scorecam_convention_reference(model, x, layer, c, *, scale_first, align_corners):
    """Score-CAM as pytorch-grad-cam (``scale_first=False``, upsampling with
    ``align_corners=True``) or torchcam (``scale_first=True``: min-max at the layer's
    resolution, then upsampled) compute it with a logit target: every channel's
    masked input scored (a constant channel's mask is empty), a softmax over
    channels, one forward at a time, written from the two libraries' formulas."""
    a = _layer_output(model, x, layer)
    with torch.no_grad():
        out = torch.zeros(a.shape[0], *a.shape[2:])
        for b in range(a.shape[0]):
            scores = []
            for k in range(a.shape[1]):
                m = a[b, k][None, None]
                if scale_first:
                    m = (m - m.min()) / (m.max() - m.min() + 1e-8)
                up = F.interpolate(m, x.shape[-2:], mode="bilinear", align_corners=align_corners)
                mask = up if scale_first else (up - up.min()) / (up.max() - up.min() + 1e-8)
                scores.append(model(x[b : b + 1] * mask)[0, c])
            w = torch.softmax(torch.stack(scores), 0)
            out[b] = (w[:, None, None] * a[b]).sum(0)
    return out.relu()


@pytest.mark.parametrize(
    "kw, scale_first",
    [
        ({"align_corners": True}, False),  # pytorch-grad-cam's convention
        ({"mask_scaling": "activation"}, True),  # torchcam's
    ],
)
def test_scorecam_library_conventions_match_their_formulas(kw, scale_first):
    model, x = tiny(), batch()
    with torch.no_grad():  # a dead (all-zero) channel: scored with an empty mask, as they do
        model.features[0].weight[0] = 0
        model.features[0].bias[0] = -0.5
    ref = _scorecam_convention_reference(
        model, x, model.features, 2, scale_first=scale_first,
        align_corners=kw.get("align_corners", False),
    )
    for bs in (1, 7, 1000):
        ours = ScoreCAM(
            model, "features", batch_size=bs, softmax=False, weighting="channel-softmax", **kw
        )(x, 2, normalize=False, upsample=False)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
    top = ScoreCAM(model, "features", softmax=False, weighting="channel-softmax", top_k=3)
    assert torch.isfinite(top(x, 2)).all()
    with pytest.raises(InvalidParameterError, match="weighting"):
        ScoreCAM(model, "features", weighting="softmax")
    with pytest.raises(InvalidParameterError, match="mask_scaling"):
        ScoreCAM(model, "features", mask_scaling="before")


def test_reshape_transform_for_token_layers():
    class Tokens(nn.Module):
        """Patch embedding -> tokens (B, N, C) -> token MLP -> mean over tokens -> head."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Conv2d(3, 8, 4, stride=4)
            self.block = nn.Sequential(nn.Linear(8, 8), nn.GELU())
            self.head = nn.Linear(8, 4)

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)
            return self.head(self.block(t).mean(1))

    torch.manual_seed(0)
    model = Tokens().eval()
    x = batch(2, 16)

    def to_grid(t):
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], 4, 4)

    assert CAM(model, "block", reshape_transform=to_grid)(x, 1).shape == (2, 16, 16)
    cam = CAM(model, "block", reshape_transform=to_grid)(x, 1, normalize=False, upsample=False)
    grad = GradCAM(model, "block", reshape_transform=to_grid)(x, 1, upsample=False)
    torch.testing.assert_close(normalize_maps(cam.relu()), grad)


# -- gradients --------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::UserWarning")  # captum's notes on hooks
def test_saliency_matches_captum():
    captum = pytest.importorskip("captum.attr")
    model, x = tiny(), batch()
    expected = captum.Saliency(model).attribute(x, target=[1, 0, 3], abs=True).amax(1)
    got = Saliency(model)(x, [1, 0, 3], normalize=False)
    torch.testing.assert_close(got, expected)


def test_smoothgrad_is_seeded_and_averages():
    model, x = tiny(), batch()
    a = Saliency(model, samples=4, seed=5)(x, 2)
    torch.testing.assert_close(a, Saliency(model, samples=4, seed=5)(x, 2))
    assert not torch.allclose(a, Saliency(model, samples=4, seed=6)(x, 2))
    # Zero noise: the average of identical gradients is the plain gradient.
    g0 = Saliency(model, samples=3, noise=0.0).gradients(x, 2)
    torch.testing.assert_close(g0, Saliency(model).gradients(x, 2))
    sq = Saliency(model, squared=True, reduce="sum")(x, 2, normalize=False)
    torch.testing.assert_close(sq, Saliency(model).gradients(x, 2).pow(2).sum(1))


@pytest.mark.filterwarnings("ignore::UserWarning")  # captum's notes on hooks
def test_guided_backprop_matches_captum_batch_and_inplace():
    captum = pytest.importorskip("captum.attr")
    model, x = tiny(), batch()
    expected = captum.GuidedBackprop(model).attribute(x, target=[1, 2, 0])
    got = GuidedBackprop(model).gradients(x, [1, 2, 0])
    torch.testing.assert_close(got, expected)
    # The whole batch equals sample-by-sample results.
    for i, c in enumerate([1, 2, 0]):
        torch.testing.assert_close(got[i], GuidedBackprop(model).gradients(x[i : i + 1], c)[0])
    # In-place nn.ReLU and functional F.relu give the same result (same weights).
    for kw in ({"inplace": True}, {"functional": True}):
        other = tiny(**kw)
        torch.testing.assert_close(GuidedBackprop(other).gradients(x, [1, 2, 0]), got)
    # Guided gradients differ from plain ones (the guidance does something).
    assert not torch.allclose(got, Saliency(model).gradients(x, [1, 2, 0]))


def test_guided_gradcam_is_the_product():
    model, x = tiny(), batch()
    cam = GradCAM(model, "features")(x, 3, normalize=False)
    guided = GuidedBackprop(model).gradients(x, 3)
    torch.testing.assert_close(
        GuidedGradCAM(model, "features").gradients(x, 3), guided * cam[:, None]
    )


# -- occlusion --------------------------------------------------------------------------------
def test_occlusion_matches_captum_and_batching():
    captum = pytest.importorskip("captum.attr")
    model, x = tiny(), batch()
    expected = captum.Occlusion(model).attribute(
        x, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=[0, 1, 2], baselines=0.0
    )[:, 0]
    maps = [
        Occlusion(model, window=4, stride=2, batch_size=bs)(x, [0, 1, 2], normalize=False)
        for bs in (1, 5, 500)
    ]
    for m in maps:
        torch.testing.assert_close(m, expected, atol=1e-5, rtol=1e-4)
    blur = Occlusion(model, window=4, stride=3, baseline="blur", blur_sigma=2.0)(x, 0)
    assert blur.shape == (3, 12, 12) and torch.isfinite(blur).all()
    # Border coverage: with stride 4 the last window (from 4) is moved to touch the border.
    edge = Occlusion(model, window=5, stride=4)(x, 0, normalize=False)
    assert (edge[:, -1, -1] != 0).all()


# -- pictures, one-call API, CLI ----------------------------------------------------------
def test_normalize_overlay_and_montage(rng):
    m = normalize_maps(torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]]))
    torch.testing.assert_close(m[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert float(m[1].abs().max()) == 0.0
    img = rng.random((6, 8, 3)).astype(np.float32)
    heat = rng.random((3, 4)).astype(np.float32)
    np.testing.assert_allclose(overlay(img, heat, alpha=0.0), img, atol=1e-6)
    import matplotlib

    top = overlay(img, np.ones((3, 4), np.float32), alpha=1.0, cmap="viridis")
    np.testing.assert_allclose(top[0, 0], matplotlib.colormaps["viridis"](1.0)[:3], atol=1e-6)
    pic = montage(img, {"a": heat, "b": heat}, tile=40)
    assert pic.ndim == 3 and pic.shape[1] > 3 * 40 and pic.dtype == np.float32


def test_explain_image_on_resnet20(kodak_rgb):
    res = explain_image(kodak_rgb, "resnet20-cifar10", ["gradcam", "cam", "scorecam"])
    assert res.top[0]["name"] == "bird" and res.target == 2 and res.layer == "layer3"
    assert res.maps["gradcam"].shape == kodak_rgb.shape[:2]
    # The map of "bird" puts its peak on the red parrot (right half of Kodak 23).
    assert res.stats["gradcam"]["peak_xy"][0] > kodak_rgb.shape[1] // 2


def test_cli_explain(kodak_paths, tmp_path):
    from typer.testing import CliRunner

    from boda.cli import app

    src = next(p for p in kodak_paths if p.stem == "kodim20")
    out = tmp_path / "m.png"
    r = CliRunner().invoke(
        app, ["explain", str(src), "--method", "gradcam,occlusion", "-o", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["predictions"][0]["name"] == "airplane"
    assert set(data["maps"]) == {"gradcam", "occlusion"} and out.is_file()
    assert data["target"] == 0 and data["target_name"] == "airplane"
    # the montage has its colour bar and the caption of the class explained under the
    # panels: two rows more than the bare montage, text in the last one
    from boda.io import read_image

    flat = np.zeros((4, 4), np.float32)
    bare = montage(read_image(src), {"gradcam": flat, "occlusion": flat})
    written = read_image(out)
    assert written.shape[0] == bare.shape[0] + 2 * 14 and written.shape[1] == bare.shape[1]
    assert (written[-14:] < 0.3).all(axis=2).sum() > 50
    # one method named twice in two spellings is explained once (it ran twice)
    r = CliRunner().invoke(app, ["explain", str(src), "--method", "gradcam,occlusion",
                                 "--method", "GradCAM", "--json"])
    assert r.exit_code == 0 and list(json.loads(r.stdout)["maps"]) == ["gradcam", "occlusion"]
    r = CliRunner().invoke(app, ["explain", str(src), "--method", "magic"])
    assert r.exit_code == 2 and "unknown method" in r.output
    r = CliRunner().invoke(app, ["explain", str(src), "--target", "3"])
    assert r.exit_code == 0 and "explained cat (class 3)" in " ".join(r.output.split())


def test_montage_colour_bar_and_caption(rng):
    # The montage said neither what its colours mean nor which class was explained:
    # colorbar=True adds a low -> high scale of the colormap under the overlays,
    # caption a line of text; both are off by default (the picture is as before).
    import matplotlib

    img = rng.random((30, 40, 3)).astype(np.float32)
    heat = rng.random((3, 4)).astype(np.float32)
    maps = {"gradcam": heat, "scorecam": heat}
    plain = montage(img, maps, tile=80, cmap="viridis")
    assert plain.shape == (4 + 14 + 60 + 4, 4 + 3 * (80 + 4), 3)
    bar = montage(img, maps, tile=80, colorbar=True, cmap="viridis")
    assert bar.shape == (plain.shape[0] + 14, plain.shape[1], 3)
    np.testing.assert_array_equal(bar[: plain.shape[0]], plain)
    row = bar[plain.shape[0] + 3 + 4]  # the bar's middle line, under the overlays only
    viridis = matplotlib.colormaps["viridis"]
    for value in (0.0, 0.5, 1.0):
        near = np.abs(row - viridis(value)[:3]).max(axis=1) < 0.02
        assert near.any(), value
        assert np.flatnonzero(near).min() >= 4 + 80 + 4  # not under the image panel
    # the colours run low to high from left to right
    assert np.abs(row - viridis(0.1)[:3]).max(axis=1).argmin() < np.abs(
        row - viridis(0.9)[:3]).max(axis=1).argmin()
    text = "explained: bird (class 2), p = 0.99"
    both = montage(img, maps, tile=80, colorbar=True, caption=text)
    assert both.shape[0] == plain.shape[0] + 2 * 14
    caption_row = both[-14:]
    assert (caption_row < 0.3).all(axis=2).sum() > 50  # the caption's letters
    assert not (montage(img, maps, tile=80, caption="")[-4:] < 0.99).any()  # no line at all
    # a caption wider than the panels widens the picture rather than being cut
    from PIL import ImageFont

    long = "explained: " + "a very long class name " * 3
    wide = montage(img, {"gradcam": heat}, tile=40, caption=long)
    assert wide.shape[1] >= ImageFont.load_default().getlength(long) + 8
    # no maps: no colour bar (nothing to scale)
    assert montage(img, {}, tile=40, colorbar=True).shape == montage(img, {}, tile=40).shape
    with pytest.raises(InvalidParameterError, match="caption"):
        montage(img, maps, caption=3)


def test_montage_caption_says_the_class_explained():
    from boda.cli.explain_cmd import montage_caption
    from boda.explain import ImageExplanation

    top = [{"index": 2, "name": "bird", "probability": 0.987},
           {"index": 3, "name": "cat", "probability": 0.01}]
    res = ImageExplanation(image=np.zeros((2, 2, 3)), maps={}, target=2, top=top,
                           model="m", target_name="bird")
    assert montage_caption(res) == "explained: bird (class 2), p = 0.99"
    res.target, res.target_name = 3, "cat"
    assert montage_caption(res) == "explained: cat (class 3), p = 0.01; predicted: bird, p = 0.99"
    res.target, res.target_name = 7, None  # not among the top predictions, no name
    assert montage_caption(res) == "explained: class 7; predicted: bird, p = 0.99"


def test_user_models_by_path(tmp_path):
    model = tiny()
    img = np.random.default_rng(0).random((12, 12, 3)).astype(np.float32)
    x = image_to_tensor(img, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    ts = tmp_path / "tiny.ts"
    with pytest.warns(DeprecationWarning):
        torch.jit.save(torch.jit.script(model), str(ts))
    lm = load_model(ts, trust_code=True)
    res = explain_image(img, lm, ["saliency", "occlusion"], target=1)
    np.testing.assert_allclose(res.maps["saliency"], Saliency(model)(x, 1)[0].numpy(), atol=1e-5)
    from boda.errors import ModelError

    with pytest.raises(ModelError, match="TorchScript"):
        explain_image(img, lm, ["gradcam"], layer="features")
    assert _hooks(model) == 0


def test_cli_with_a_state_dict(tmp_path, kodak_paths):
    from typer.testing import CliRunner

    from boda.cli import app

    p = tmp_path / "r20.pt"
    torch.save(load_model("resnet20-cifar10").model.state_dict(), p)
    src = next(p for p in kodak_paths if p.stem == "kodim23")
    r = CliRunner().invoke(
        app,
        ["explain", str(src), "--model", str(p), "--arch", "resnet20", "--layer", "layer3",
         "--size", "32", "--method", "gradcam", "--json"],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["predictions"][0]["index"] == 2 and data["layer"] == "layer3"


def test_user_hooks_survive_and_attribute_outputs_work():
    model, x = tiny(), batch()
    seen = []
    handle = model.features.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    GradCAM(model, "features")(x, 1)
    ScoreCAM(model, "features")(x, 1)
    assert _hooks(model) == 1 and seen  # ours are gone, the user's is still there
    handle.remove()

    class Out:
        def __init__(self, logits):
            self.logits = logits

    class AttrOut(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return Out(self.inner(x))

    torch.testing.assert_close(
        Occlusion(AttrOut(model), window=4, stride=4)(x, 2),
        Occlusion(model, window=4, stride=4)(x, 2),
    )


class _NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("backward reached the stem")


def test_layer_gradients_stop_at_the_target_layer():
    model, x = tiny(), batch()

    class Guarded(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            h = _NoBackward.apply(self.net.relu1(self.net.conv1(x)))
            return self.net.fc(self.net.pool(self.net.features(h)).flatten(1))

    guarded = Guarded().eval()
    for cls in (GradCAM, GradCAMPlusPlus):
        torch.testing.assert_close(cls(guarded, "net.features")(x, 1), cls(model, "features")(x, 1))
    with pytest.raises(RuntimeError, match="reached the stem"):
        Saliency(guarded)(x, 1)  # input gradients do need the stem
    assert _hooks(guarded) == 0


# -- the inference copy of the batched forwards, and bfloat16 ------------------------------
class BNNet(nn.Module):
    """conv-BN-ReLU -> "features" (conv-BN-ReLU) -> GAP -> linear."""

    def __init__(self, branch: bool = False):
        super().__init__()
        self.branch = branch
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.features = nn.Sequential(
            nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        f = self.features(self.stem(x))
        if self.branch and f.mean() > 0:  # data-dependent: neither fx nor a trace may take it
            f = f * 0.5
        return self.fc(f.mean(dim=(2, 3)))


def bnnet(seed: int = 0, **kw) -> BNNet:
    torch.manual_seed(seed)
    model = BNNet(**kw).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _copy_now(ex):
    ex.inference_min_forwards = 1  # build on the first call (the default waits for 32)
    return ex


def _eager(ex):
    ex.inference_copy = False
    return ex


def _r(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().double().numpy(), b.flatten().double().numpy())[0, 1])


@pytest.mark.parametrize("mode", ["fold", "fused", "pointwise"])
def test_scorecam_with_the_inference_copy_equals_eager(mode):
    model = load_model("resnet20-cifar10").model.eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modules = [id(m) for m in model.modules()]
    fast = _copy_now(ScoreCAM(model, "layer3"))
    fast.inference_copy = mode
    got = fast(x, 3, normalize=False)
    assert fast._inference is not None and fast._inference._copies  # the copy was used
    # Eager copies also return the target layer (a frozen graph would recompile per shape).
    tap = None if mode == "fused" else id(fast.layer)
    assert set(fast._inference._copies) == {(mode == "fused", mode == "pointwise", None, tap)}
    ref = _eager(ScoreCAM(model, "layer3"))(x, 3, normalize=False)
    # The second call takes the layer and the logits from the copy too (where tapped).
    again = fast(x, 3, normalize=False)
    for out in (got, again):
        assert _r(out, ref) > 0.99999
        torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-4 * float(ref.abs().max()))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert [id(m) for m in model.modules()] == modules and _hooks(model) == 0


def test_copy_on_a_model_in_train_mode_restores_it():
    model, x = bnnet().train(), batch()
    stats = model.stem[1].running_mean.clone()
    flags = [p.requires_grad for p in model.parameters()]
    got = _copy_now(ScoreCAM(model, "features", batch_size=4))(x, 2, normalize=False)
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert torch.equal(model.stem[1].running_mean, stats) and _hooks(model) == 0
    ref = _eager(ScoreCAM(model.eval(), "features", batch_size=4))(x, 2, normalize=False)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def test_copy_follows_parameter_changes_between_calls():
    model, x = bnnet(), batch()
    for make in (lambda m: ScoreCAM(m, "features", batch_size=4),
                 lambda m: Occlusion(m, window=4, stride=4, batch_size=4)):
        ex = _copy_now(make(model))
        first = ex(x, 1, normalize=False)
        built = ex._inference._copies.copy()
        with torch.no_grad():  # an optimizer step between two explanations
            model.stem[0].weight.mul_(-1.0)
            model.features[1].running_var.mul_(2.0)
        second = ex(x, 1, normalize=False)
        assert ex._inference._copies and ex._inference._copies != built  # rebuilt
        ref = _eager(make(model))(x, 1, normalize=False)
        torch.testing.assert_close(second, ref, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(first, second, atol=1e-3)
        with torch.no_grad():
            model.stem[0].weight.mul_(-1.0)
            model.features[1].running_var.div_(2.0)


def test_untraceable_model_still_works():
    model, x = bnnet(branch=True), batch()
    for make in (lambda m: ScoreCAM(m, "features", batch_size=4),
                 lambda m: Occlusion(m, window=4, stride=4)):
        ex = _copy_now(make(model))
        got = ex(x, 2, normalize=False)
        assert ex._inference._failed  # fx refused it: the model itself ran
        torch.testing.assert_close(got, _eager(make(model))(x, 2, normalize=False))


def test_occlusion_with_the_copy_equals_eager():
    model, x = bnnet(), batch()
    got = _copy_now(Occlusion(model, window=4, stride=2, batch_size=16))(x, 3, normalize=False)
    ref = _eager(Occlusion(model, window=4, stride=2, batch_size=16))(x, 3, normalize=False)
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-5)


def test_bfloat16_precision():
    model = load_model("resnet20-cifar10").model.eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ref = ScoreCAM(model, "layer3")(x, 5)
    low = ScoreCAM(model, "layer3", precision="bfloat16")
    assert "bfloat16" in repr(low)
    assert _r(low(x, 5), ref) > 0.999  # measured 0.9998-0.99996 on random inputs
    fast = _copy_now(ScoreCAM(model, "layer3", precision="bfloat16"))
    assert _r(fast(x, 5), ref) > 0.999 and fast._inference._copies  # the bfloat16 copy
    occ = Occlusion(model, window=8, stride=8, precision="bfloat16")(x, 5)
    assert _r(occ, Occlusion(model, window=8, stride=8)(x, 5)) > 0.99
    for cls, kw in ((ScoreCAM, {"layer": "layer3"}), (Occlusion, {})):
        for bad in ("float16", "bf16", None):
            with pytest.raises(InvalidParameterError, match="precision"):
                cls(model, precision=bad, **kw)
    odd = ScoreCAM(model, "layer3")
    odd.inference_copy = "jit"
    with pytest.raises(InvalidParameterError, match="inference_copy"):
        odd(x)


def test_auto_copy_is_fused_above_128_px_and_pointwise_below():
    model = bnnet()
    for size, fused in ((12, False), (136, True)):
        ex = _copy_now(ScoreCAM(model, "features"))
        x = batch(1, size)
        got = ex(x, 1, normalize=False)
        tap = None if fused else id(ex.layer)
        assert set(ex._inference._copies) == {(fused, not fused, None, tap)}
        ref = _eager(ScoreCAM(model, "features"))(x, 1, normalize=False)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_scorecam_reads_the_layer_from_the_copy_once_it_exists():
    model = load_model("resnet20-cifar10").model.eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    eager_calls = []
    forward = model.forward  # fx traces the class's forward, so copies do not count here

    def counted(inp):
        eager_calls.append(inp.shape[0])
        return forward(inp)

    model.forward = counted
    try:
        ex = _copy_now(ScoreCAM(model, "layer2"))
        first = ex(x, 4, normalize=False)
        logits = ex.logits.clone()
        assert eager_calls == [1]  # the hooked forward; the masked ones ran on the copy
        again = ex(x, 4, normalize=False)
        assert eager_calls == [1]  # layer and logits came from the copy as well
        torch.testing.assert_close(ex.logits, logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(again, first, rtol=1e-3, atol=1e-4 * float(first.abs().max()))
        # A changed model is read eagerly again (and a new copy built and checked).
        with torch.no_grad():
            model.layer1[0].conv1.weight.mul_(1.01)
        ex(x, 4, normalize=False)
        assert eager_calls == [1, 1]
        # bfloat16 copies would change the layer's values: the layer is read eagerly.
        half = _copy_now(ScoreCAM(model, "layer2", precision="bfloat16"))
        eager_calls.clear()
        half(x, 4)
        half(x, 4)
        assert eager_calls == [1, 1]
    finally:
        del model.forward
    assert _hooks(model) == 0


class _Opaque(nn.Module):
    """A block torch.fx keeps whole (it treats modules of torch.nn as leaves)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


_Opaque.__module__ = "torch.nn.boda_test"


def test_scorecam_on_a_layer_the_copy_cannot_tap_keeps_the_copy_for_masked_forwards():
    torch.manual_seed(0)
    model = nn.Sequential(
        _Opaque(), nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    ).eval()
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    ex = _copy_now(ScoreCAM(model, "0.conv"))
    first, again = ex(x, 2, normalize=False), ex(x, 2, normalize=False)
    (copy,) = ex._inference._copies.values()  # built (BatchNorm folded), without the layer
    assert not hasattr(copy, "tapped") and ex._inference._copies
    ref = _eager(ScoreCAM(model, "0.conv"))(x, 2, normalize=False)
    for out in (first, again):
        torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-4 * float(ref.abs().max()))
    assert _hooks(model) == 0


def test_montage_titles_of_narrow_panels_do_not_overlap(rng):
    # A tall strip gives panels a few pixels wide: each method's title ran into the
    # next panel's ("gradcamgradcam++scorecam...").  Every column now holds its title.
    from PIL import ImageFont

    tall = rng.random((100, 10, 3)).astype(np.float32)
    heat = rng.random((10, 1)).astype(np.float32)
    names = ["gradcam", "gradcam++", "guided-gradcam", "occlusion"]
    pic = montage(tall, dict.fromkeys(names, heat), tile=40)
    font = ImageFont.load_default()
    needed = sum(font.getlength(n) for n in ["image", *names]) + 4 * (len(names) + 2)
    assert pic.shape[1] >= needed
    # the image panels keep their aspect ratio (4 px wide at 40 px tall), centred in
    # their columns, on white
    untitled = montage(tall, dict.fromkeys(names, heat), tile=40, titles=False)
    assert untitled.shape[1] == 4 + 5 * (4 + 4)
