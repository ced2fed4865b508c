"""Second conformance audit of issue 5 (explain vision models): what the issue names and
no earlier test pinned down, plus one defect (frozen copies of every new model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from boda.explain import (  # noqa: E402
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    Occlusion,
    Saliency,
    ScoreCAM,
    _base,
    explain_image,
    montage,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ConvNet(nn.Module):
    """conv-ReLU-conv-ReLU ("body") -> global average pooling -> linear ("fc")."""

    def __init__(self, seed: int = 0, classes: int = 4):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
            nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(self.body(x).mean(dim=(2, 3)))


def _batch(n: int = 3, side: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


# -- the defect: "auto" froze a TorchScript copy of every new model -----------------------
def test_a_new_model_per_call_freezes_only_a_few_copies_per_process(monkeypatch):
    """Each TorchScript freeze keeps 12-18 MB of native memory for good, and ``"auto"``
    allowed one per model *object*: a loop that loads a new model each time (a
    checkpoint per epoch) at more than 128 x 128 px froze every one, and the process
    grew by that much per model (measured: +1.4 MB per model on a two-convolution net,
    flat with ``inference_copy="pointwise"``).  After a few frozen copies in a process,
    new models get the eager copy, with the same maps."""
    monkeypatch.setattr(_base, "_FUSED_TOTAL", 0, raising=False)  # this test's own budget
    limit = getattr(_base, "AUTO_FUSED_LIMIT", 4)
    x = _batch(1, 136)  # above 128 x 128: "auto" means "fused"
    frozen = []
    for seed in range(limit + 3):
        model = ConvNet(seed).eval()  # a new object each time, as load_model gives
        explainer = ScoreCAM(model, "body")
        explainer.inference_min_forwards = 1
        maps = explainer(x, 1, normalize=False)
        frozen.append(any(variant[0] for variant in explainer._inference._copies))
        eager = ScoreCAM(model, "body")
        eager.inference_copy = False
        ref = eager(x, 1, normalize=False)
        torch.testing.assert_close(maps, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    assert frozen == [True] * limit + [False] * 3


# -- Score-CAM: top-k channels, masked forwards under inference_mode ---------------------
def _layer_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.body(x)


def _scorecam_of_channels(model, x, c, chosen):
    """Score-CAM (Wang et al. Eq. 5-6, softmax score) over the channels ``chosen[b]``."""
    acts = _layer_output(model, x)
    out = torch.zeros(acts.shape[0], *acts.shape[2:])
    with torch.no_grad():
        for b, channels in enumerate(chosen):
            for k in channels:
                up = nn.functional.interpolate(
                    acts[b, k][None, None], x.shape[-2:], mode="bilinear", align_corners=False
                )[0, 0]
                mask = (up - up.min()) / (up.max() - up.min())
                out[b] += model(x[b : b + 1] * mask).softmax(1)[0, c] * acts[b, k]
    return out.relu()


def test_scorecam_top_k_scores_the_k_varying_channels_of_largest_mean_activation():
    # The issue's "keep only the top-k channels": only "differs from all channels" was
    # checked, so ranking by the smallest mean, or letting a constant channel take a
    # place, went unnoticed.  Channel 0 is made constant and the largest (bias 5).
    model, x = ConvNet().eval(), _batch()
    with torch.no_grad():
        model.body[2].weight[0] = 0
        model.body[2].bias[0] = 5.0
    acts = _layer_output(model, x)
    assert (acts[:, 0] == 5.0).all()
    for k in (1, 3):
        means = acts.mean(dim=(2, 3))
        means[:, 0] = -np.inf  # constant: never scored
        chosen = means.topk(k, dim=1).indices.tolist()
        ref = _scorecam_of_channels(model, x, 2, chosen)
        got = ScoreCAM(model, "body", top_k=k)(x, 2, normalize=False, upsample=False)
        torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)


def test_masked_and_occluded_forwards_run_under_inference_mode():
    # "batched masked forwards under torch.inference_mode": no autograd records kept for
    # the dozens of masked inputs.  A forward hook sees the mode of every forward.
    model, x = ConvNet().eval(), _batch(2)
    modes: list[tuple[int, bool]] = []
    handle = model.register_forward_pre_hook(
        lambda _m, inp: modes.append((inp[0].shape[0], torch.is_inference_mode_enabled()))
    )
    try:
        for explainer in (ScoreCAM(model, "body", batch_size=2),
                          Occlusion(model, window=4, stride=4, batch_size=5)):  # fmt: skip
            modes.clear()
            explainer(x, 1)
            assert len(modes) > 3  # the batched forwards ran, through the model itself
            assert all(inference for _, inference in modes), modes
    finally:
        handle.remove()


# -- transformer token layers behind a class token, for every layer method ---------------
class TokenNet(nn.Module):
    """``ConvNet`` with its feature map turned into tokens ``(B, 1 + h w, C)`` behind a
    class token: ``tokens`` (the token layer) sees them, the head pools the patch tokens.
    Its decisions are ConvNet's, so every layer method must give ConvNet's maps."""

    def __init__(self, conv: ConvNet):
        super().__init__()
        self.conv = conv
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.tokens = nn.Identity()

    def forward(self, x):
        grid = self.conv.body(x)
        patches = grid.flatten(2).transpose(1, 2)
        t = self.tokens(torch.cat([self.cls.expand(x.shape[0], -1, -1), patches], dim=1))
        return self.conv.fc(t[:, 1:].mean(dim=1))


def _tokens_to_grid(t: torch.Tensor) -> torch.Tensor:
    """The issue's reshape_transform: drop the class token, (B, N, C) -> (B, C, h, w)."""
    b, n, c = t.shape
    side = int(round((n - 1) ** 0.5))
    return t[:, 1:].reshape(b, side, side, c).permute(0, 3, 1, 2)


@pytest.mark.parametrize("method", [CAM, GradCAM, GradCAMPlusPlus, ScoreCAM, GuidedGradCAM])
def test_a_token_layer_with_a_class_token_gives_the_maps_of_the_same_conv_layer(method):
    conv = ConvNet(seed=3).eval()
    tokens = TokenNet(conv).eval()
    x, targets = _batch(), [2, 0, 3]
    want = method(conv, "body")(x, targets, normalize=False)
    explainer = method(tokens, "tokens", reshape_transform=_tokens_to_grid)
    explainer.inference_min_forwards = 1  # Score-CAM: later calls read the layer from a copy
    for _ in range(3):
        got = explainer(x, targets, normalize=False)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


# -- SmoothGrad's noise level ---------------------------------------------------------
class HalfSquare(nn.Module):
    """One logit, ``sum(x^2) / 2``: its input gradient is ``x`` itself."""

    def forward(self, x):
        return 0.5 * x.pow(2).flatten(1).sum(dim=1, keepdim=True)


def test_smoothgrad_noise_is_its_level_times_each_images_value_range():
    # SmoothGrad (Smilkov et al. Eq. 3) with sigma = noise * (max - min) of each image.
    # Here the gradient at x + eps is x + eps, so where x = 0 the squared map averages
    # eps^2: sigma^2.  Two images of ranges 2 and 0.5; a noise not scaled by the range,
    # or scaled by the batch's, would give 0.01 for both.
    x = torch.zeros(2, 3, 16, 16)
    x[0, :, 0, 0], x[0, :, 0, 1] = -1.0, 1.0  # range 2
    x[1, :, 0, 0], x[1, :, 0, 1] = -0.25, 0.25  # range 0.5
    maps = Saliency(HalfSquare(), samples=64, noise=0.1, squared=True, reduce="mean", seed=3)(
        x, 0, normalize=False
    )
    for i, value_range in enumerate((2.0, 0.5)):
        sigma2 = float(maps[i].flatten()[2:].mean())  # the zero pixels
        assert sigma2 == pytest.approx((0.1 * value_range) ** 2, rel=0.05)


# -- the issue's own command line -------------------------------------------------------
def test_the_issues_command_line_explains_class_3_with_gradcam_and_scorecam(tmp_path, kodak_paths):
    from typer.testing import CliRunner

    from boda.cli import app
    from boda.io import read_image

    photo = next(p for p in kodak_paths if p.stem == "kodim23")
    out = tmp_path / "out.png"
    args = ["explain", str(photo), "--model", "resnet20-cifar10",
            "--method", "gradcam,scorecam", "--target", "3", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "explained cat (class 3) with gradcam, scorecam" in " ".join(result.output.split())
    assert out.is_file()
    result = CliRunner().invoke(app, [*args, "--json", "--overwrite", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["model"], data["layer"], data["target"], data["target_name"]) == (
        "resnet20-cifar10", "layer3", 3, "cat")  # fmt: skip
    # the predicted classes, best first; the map statistics of the library's maps
    probs = [p["probability"] for p in data["predictions"]]
    assert probs == sorted(probs, reverse=True) and data["predictions"][0]["name"] == "bird"
    lib = explain_image(read_image(photo), "resnet20-cifar10", ["gradcam", "scorecam"], target=3)
    assert list(data["maps"]) == ["gradcam", "scorecam"]
    for method, stats in data["maps"].items():
        assert set(stats) == {"mean", "max", "peak_xy", "area_above_half"}
        assert stats["peak_xy"] == lib.stats[method]["peak_xy"]
        assert stats["mean"] == pytest.approx(lib.stats[method]["mean"], abs=1e-5)
    # the montage: the photo and one overlay per method side by side
    bare = montage(read_image(photo), {m: np.zeros((4, 4), np.float32) for m in data["maps"]})
    assert read_image(out).shape[1] == bare.shape[1]


# -- "done when": every method on every shipped model, from the command line -------------
@pytest.mark.parametrize("name", ["resnet20-cifar10", "resnet56-cifar10", "shapes-cnn"])
def test_every_method_explains_every_shipped_model_from_the_command_line(
    name, tmp_path, kodak_paths
):
    # No explain test ran resnet56-cifar10 at all, and shapes-cnn only with Grad-CAM.
    from typer.testing import CliRunner

    from boda.cli import app
    from boda.explain import METHODS, make_shapes
    from boda.io import write_image

    if name == "shapes-cnn":
        photo = tmp_path / "circle.png"
        write_image(photo, make_shapes(1, seed=3).images[0])
        expected = "circle"
    else:
        photo = next(p for p in kodak_paths if p.stem == "kodim20")
        expected = "airplane"
    methods = ",".join(METHODS)
    result = CliRunner().invoke(app, ["explain", str(photo), "--model", name, "--method", methods,
                                      "--json", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["predictions"][0]["name"] == data["target_name"] == expected
    assert list(data["maps"]) == list(METHODS)
    for method, stats in data["maps"].items():
        assert stats["max"] > 0.5 and stats["mean"] < stats["max"], (method, stats)  # no blank
