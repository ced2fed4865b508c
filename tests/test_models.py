"""Tests for boda.models: shapes, published parameter counts, blocks against their
formulas, the registry, and state-dict round trips."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from boda import models  # noqa: E402
from boda.errors import InvalidParameterError  # noqa: E402
from boda.models import _registry  # noqa: E402
from boda.nn import (  # noqa: E402
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    cpu_threads,
    load_model,
)
from boda.nn import normalize as nn_normalize  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded_one_thread():
    torch.manual_seed(0)
    with cpu_threads(1):  # small tensors: threads cost more than they give
        yield


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def meta_params(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return n_params(models.create(name, **kwargs))


# --- parameter counts: published / torchvision numbers, exact -----------------------

EXACT_COUNTS = {
    # LeNet-5, 6-16-120-84-10 variant with a fully connected C3 (see LeNet5 docstring).
    "lenet5": 61_706,
    # torchvision's published num_params for the same layouts.
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11-bn": 132_868_840,
    "vgg13-bn": 133_053_736,
    "vgg16-bn": 138_365_992,
    "vgg19-bn": 143_678_248,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "mobilenet-v1": 4_231_976,
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXACT_COUNTS.items()))
def test_parameter_counts_match_published(name, expected):
    assert meta_params(name) == expected


def test_parameter_counts_round_to_paper_values():
    # The papers' own (rounded) numbers.
    assert abs(meta_params("alexnet") / 60e6 - 1) < 0.02  # "60 million" (2-GPU net, Sec. 3)
    assert round(meta_params("resnet50") / 1e5) / 10 == 25.6  # He et al. / issue text
    assert round(meta_params("mobilenet-v1") / 1e5) / 10 == 4.2  # Howard et al. Table 8
    # Simonyan & Zisserman Table 2: 133, 133, 138, 144 million.
    assert [round(meta_params(f"vgg{d}") / 1e6) for d in (11, 13, 16, 19)] == [133, 133, 138, 144]


def test_googlenet_parameter_counts():
    # torchvision layout (3x3 in the "5x5" branch, BN): its published numbers.
    assert meta_params("googlenet", aux_logits=False, branch5_kernel=3) == 6_624_904
    assert meta_params("googlenet", aux_logits=True, branch5_kernel=3) == 13_004_888
    # The paper's layers as written (5x5, no BN): Table 1's params column sums to
    # 6797.7K (it is approximate), we are within 3 %.
    table1_k = [2.7, 112, 159, 380, 364, 437, 463, 580, 840, 1072, 1388, 1000]
    paper = meta_params("googlenet", aux_logits=False, batch_norm=False)
    assert paper == 6_998_552
    assert abs(paper / (sum(table1_k) * 1e3) - 1) < 0.03


def test_inception_3a_matches_table1_column_sums():
    # Inception (3a) of Table 1: 64 + 128 + 32 + 32 = 256 output channels, 28x28.
    m = models.Inception(192, 64, 96, 128, 16, 32, 32, batch_norm=False)
    assert m(torch.zeros(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    weights = sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight"))
    assert weights == 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32


def test_se_resnet_extra_parameters_follow_hu_formula():
    # Hu et al. (Sec. 4, Eq. 5 of the journal version): SE adds (2/r) sum_s N_s C_s^2
    # weights; stages of ResNet-50 have N = (3, 4, 6, 3) blocks of C = 256..2048 channels.
    r = 16
    with torch.device("meta"):
        se = models.create("se-resnet50")
    se_weights = sum(
        p.numel() for n, p in se.named_parameters() if ".se." in n and n.endswith("weight")
    )
    blocks, widths = (3, 4, 6, 3), (256, 512, 1024, 2048)
    assert se_weights == 2 * sum(n * c * c for n, c in zip(blocks, widths, strict=True)) // r
    se_biases = sum(n * (c + c // r) for n, c in zip(blocks, widths, strict=True))
    assert meta_params("se-resnet50") == EXACT_COUNTS["resnet50"] + se_weights + se_biases


# --- every registered model forwards the documented shapes ------------------------


def _input_for(name: str) -> tuple[int, ...]:
    return (2, 1, 32, 32) if name == "lenet5" else (2, 3, 97, 81)


@pytest.mark.parametrize("name", models.available())
def test_every_registered_model_has_documented_output_shape(name):
    # Shape propagation on the meta device: no memory, no arithmetic.
    spec = models.describe(name)
    with torch.device("meta"):
        m = models.create(name).eval()
        shape = _input_for(name)
        y = m(torch.empty(shape))
    if spec.task == "classification":
        assert y.shape == (2, 10 if name == "lenet5" else 1000)
    elif spec.task == "segmentation":
        assert y.shape[0] == 2 and y.shape[2:] == shape[2:]
    else:
        assert isinstance(y, dict) and all(v.shape[1] == 256 for v in y.values())


@pytest.mark.parametrize(
    ("build", "shape", "expected"),
    [
        (lambda: models.LeNet5(), (2, 1, 32, 32), (2, 10)),
        (lambda: models.ResNet(18, num_classes=7), (2, 3, 64, 48), (2, 7)),
        (lambda: models.ResNet(50, num_classes=7), (2, 3, 64, 64), (2, 7)),
        (lambda: models.ResNet(18, 4, se_reduction=8), (2, 3, 40, 40), (2, 4)),
        (lambda: models.DenseNet((2, 3, 2, 2), 5, growth_rate=8), (2, 3, 64, 64), (2, 5)),
        (lambda: models.GoogLeNet(6, aux_logits=False), (2, 3, 64, 64), (2, 6)),
        (lambda: models.MobileNetV1(5, width_mult=0.25), (2, 3, 64, 64), (2, 5)),
    ],
)
def test_small_models_forward_real_numbers(build, shape, expected):
    net = build().eval()
    with torch.no_grad():
        y = net(torch.rand(shape))
    assert y.shape == expected
    assert torch.isfinite(y).all()


def test_vgg_and_alexnet_shapes_and_features():
    with torch.device("meta"):
        for depth in (11, 13, 16, 19):
            net = models.VGG(depth, num_classes=3, batch_norm=depth == 16).eval()
            assert net(torch.empty(1, 3, 224, 224)).shape == (1, 3)
            feats = net.forward_features(torch.empty(1, 3, 224, 224))
            assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
                "pool3": (256, 28, 28),
                "pool4": (512, 14, 14),
                "pool5": (512, 7, 7),
            }
        assert models.AlexNet(num_classes=3).eval()(torch.empty(1, 3, 224, 224)).shape == (1, 3)
        conv_shapes = [
            tuple(m.weight.shape) for m in models.AlexNet().features if isinstance(m, nn.Conv2d)
        ]
    assert conv_shapes == [
        (64, 3, 11, 11), (192, 64, 5, 5), (384, 192, 3, 3), (256, 384, 3, 3), (256, 256, 3, 3)
    ]  # fmt: skip
    with pytest.raises(InvalidParameterError, match="11, 13, 16, 19"):
        models.VGG(17)


def test_resnet_features_and_dilation():
    x = torch.empty(1, 3, 224, 224)
    with torch.device("meta"):
        net = models.ResNet(50)
        feats = net.forward_features(x.to("meta"))
        dil = models.ResNet(50, replace_stride_with_dilation=(False, False, True))
        dfeats = dil.forward_features(x.to("meta"))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "layer1": (256, 56, 56),
        "layer2": (512, 28, 28),
        "layer3": (1024, 14, 14),
        "layer4": (2048, 7, 7),
    }
    assert net.feature_strides == {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
    # Output stride 16: layer4 keeps 14x14, dilation 2 in its 3x3 convs, same weights.
    assert tuple(dfeats["layer4"].shape[-2:]) == (14, 14)
    assert dil.feature_strides["layer4"] == 16
    assert dil.layer4[0].conv2.dilation == (1, 1) and dil.layer4[1].conv2.dilation == (2, 2)
    assert n_params(dil) == EXACT_COUNTS["resnet50"]


def test_lenet_rejects_other_sizes():
    with pytest.raises(InvalidParameterError, match="32, 32"):
        models.LeNet5()(torch.zeros(1, 1, 28, 28))


@pytest.mark.parametrize(
    ("name", "smallest"), [("alexnet", 63), ("vgg11", 32), ("googlenet", 15), ("densenet121", 29)]
)
def test_too_small_inputs_raise_a_boda_error_naming_the_minimum(name, smallest):
    # Below the smallest size a pooling leaves nothing: torch's error named an inner
    # layer's sizes ("Given input size: (256x1x1)...").
    with torch.device("meta"):
        net = models.create(name).eval()
        assert net(torch.empty(1, 3, smallest, smallest)).shape == (1, 1000)
        for shape in ((1, 3, smallest - 1, 200), (1, 3, 200, smallest - 1)):
            with pytest.raises(InvalidParameterError, match=f"at least {smallest}x{smallest}"):
                net(torch.empty(shape))
    with torch.device("meta"):
        fcn = models.create("fcn8s", backbone="vgg11").eval()
        with pytest.raises(InvalidParameterError, match="at least 32x32"):
            fcn(torch.empty(1, 3, 31, 64))


def test_densenet_smallest_input_follows_its_number_of_transitions():
    for blocks, smallest in (((1,), 1), ((1, 1), 5), ((1, 1, 1), 13), ((1, 1, 1, 1, 1), 61)):
        with torch.device("meta"):
            net = models.DenseNet(blocks, num_classes=2, growth_rate=4).eval()
            assert net.min_size == smallest
            assert net(torch.empty(1, 3, smallest, smallest)).shape == (1, 2)
            if smallest > 1:
                with pytest.raises(InvalidParameterError, match="at least"):
                    net(torch.empty(1, 3, smallest - 1, smallest))


# --- GoogLeNet auxiliary heads ----------------------------------------------------


def test_googlenet_aux_logits_in_train_mode_only():
    net = models.GoogLeNet(num_classes=4)
    out = net.train()(torch.rand(2, 3, 64, 64))
    assert isinstance(out, models.GoogLeNetOutputs)
    assert out.logits.shape == out.aux1.shape == out.aux2.shape == (2, 4)
    with torch.no_grad():
        y = net.eval()(torch.rand(2, 3, 64, 64))
    assert isinstance(y, torch.Tensor) and y.shape == (2, 4)
    plain = models.GoogLeNet(num_classes=4, aux_logits=False).train()
    assert isinstance(plain(torch.rand(2, 3, 64, 64)), torch.Tensor)
    assert plain.aux1 is None and plain.aux2 is None


# --- blocks against their formulas ---------------------------------------------------


@pytest.mark.parametrize(("m", "n", "k"), [(32, 64, 3), (16, 48, 5)])
def test_depthwise_separable_weight_count(m, n, k):
    sep = models.DepthwiseSeparableConv2d(m, n, k)
    full = nn.Conv2d(m, n, k, padding=k // 2, bias=False)
    conv_weights = sum(c.weight.numel() for c in sep.modules() if isinstance(c, nn.Conv2d))
    # Howard et al. Sec. 3.1: D_K^2 M + M N against D_K^2 M N.
    assert conv_weights == k * k * m + m * n
    assert full.weight.numel() == k * k * m * n
    assert conv_weights / full.weight.numel() == pytest.approx(1 / n + 1 / k**2)
    assert sep(torch.rand(2, m, 9, 7)).shape == (2, n, 9, 7)
    assert sep.depthwise[0].groups == m


def test_depthwise_separable_is_depthwise_then_pointwise():
    sep = models.DepthwiseSeparableConv2d(3, 4, 3).eval()
    x = torch.rand(1, 3, 6, 6)
    dw, pw = sep.depthwise[0], sep.pointwise[0]
    with torch.no_grad():
        # Depthwise = each channel convolved with its own kernel.
        per_channel = torch.cat(
            [F.conv2d(x[:, c : c + 1], dw.weight[c : c + 1], padding=1) for c in range(3)], 1
        )
        mid = sep.depthwise[2](sep.depthwise[1](per_channel))
        expected = sep.pointwise[2](sep.pointwise[1](F.conv2d(mid, pw.weight)))
        assert torch.allclose(sep(x), expected, atol=1e-6)


def test_squeeze_excitation_matches_hand_computation():
    se = models.SqueezeExcitation(8, reduction=4)
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64)
    se = se.double()
    w1 = se.fc1.weight.detach().numpy()[:, :, 0, 0]  # (2, 8)
    b1 = se.fc1.bias.detach().numpy()
    w2 = se.fc2.weight.detach().numpy()[:, :, 0, 0]  # (8, 2)
    b2 = se.fc2.bias.detach().numpy()
    xn = x.numpy()
    expected = np.empty_like(xn)
    for b in range(2):
        z = xn[b].mean(axis=(1, 2))  # squeeze, Eq. 2
        s = 1 / (1 + np.exp(-(w2 @ np.maximum(w1 @ z + b1, 0) + b2)))  # excitation, Eq. 3
        expected[b] = xn[b] * s[:, None, None]  # scale, Eq. 4
    with torch.no_grad():
        out = se(x).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert se.fc1.out_channels == 2
    with pytest.raises(InvalidParameterError):
        models.SqueezeExcitation(8, reduction=16)


def _impulse_support(net: nn.Module, size: int = 41) -> np.ndarray:
    x = torch.zeros(1, 1, size, size)
    x[0, 0, size // 2, size // 2] = 1.0
    with torch.no_grad():
        y = net(x)[0, 0].numpy()
    return np.argwhere(y != 0) - size // 2


@pytest.mark.parametrize("rate", [1, 2, 5])
def test_atrous_conv_impulse_response(rate):
    conv = models.AtrousConv2d(1, 1, 3, rate=rate, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    support = _impulse_support(conv)
    # Nonzero exactly at the 3x3 grid of offsets {-r, 0, r}^2: 9 taps spanning 2r + 1.
    expected = {(i * rate, j * rate) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    assert {tuple(p) for p in support} == expected
    assert support.max() - support.min() + 1 == (3 - 1) * rate + 1
    assert conv(torch.zeros(1, 1, 13, 10)).shape == (1, 1, 13, 10)


def test_stacked_dilations_grow_receptive_field_exponentially():
    # Yu & Koltun 2016 / Chen et al.: 3x3 layers at rates 1, 2, 4 see a dense 15x15 field.
    stack = nn.Sequential(*[models.AtrousConv2d(1, 1, 3, rate=r, bias=False) for r in (1, 2, 4)])
    for conv in stack:
        nn.init.constant_(conv.weight, 1.0)
    support = _impulse_support(stack)
    assert len(support) == 15 * 15
    assert support.min() == -7 and support.max() == 7


def test_input_normalization_buffers():
    norm = models.InputNormalization(IMAGENET_MEAN, IMAGENET_STD)
    x = torch.rand(2, 3, 4, 5)
    assert torch.allclose(norm(x), nn_normalize(x, IMAGENET_MEAN, IMAGENET_STD))
    assert list(norm.parameters()) == []
    assert set(norm.state_dict()) == {"mean", "std"}
    assert norm.double().mean.dtype == torch.float64  # buffers follow .to()
    with pytest.raises(InvalidParameterError, match="one value per channel"):
        models.InputNormalization((0.5, 0.5), (0.2,))
    with pytest.raises(InvalidParameterError, match="both"):
        models.ResNet(18, mean=IMAGENET_MEAN)


# --- dense heads -------------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 64), (65, 47), (33, 91)])
def test_aspp_keeps_size(size):
    aspp = models.ASPP(16, 8, rates=(2, 3)).eval()
    with torch.no_grad():
        assert aspp(torch.rand(1, 16, *size)).shape == (1, 8, *size)
    assert len(aspp.branches) == 4  # 1x1, two atrous, image pooling


@pytest.fixture(scope="module")
def small_backbone():
    torch.manual_seed(0)
    return models.ResNet(18, num_classes=1)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("size", [(64, 64), (65, 47)])
def test_fcn_output_equals_input_size(variant, size, small_backbone):
    net = models.FCN(3, variant, backbone=small_backbone).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, *size)).shape == (1, 3, *size)
    assert len(net.score) == {"32s": 0, "16s": 1, "8s": 2}[variant]


def test_fcn_over_vgg_pool_features_odd_size():
    # VGG pools floor odd sizes (the upsampled map is then too small and gets padded).
    net = models.create("fcn8s", num_classes=2, backbone="vgg11").eval()
    assert not any(isinstance(m, nn.Linear) for m in net.modules())  # head dropped
    with torch.no_grad():
        assert net(torch.rand(1, 3, 75, 53)).shape == (1, 2, 75, 53)


def test_fcn_upsampling_starts_as_bilinear_interpolation():
    # A transposed conv with bilinear_kernel(k=4, stride 2, pad 1) equals torch's
    # bilinear 2x upsampling (align_corners=False) away from the border.
    up = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        up.weight.copy_(models.bilinear_kernel(2, 4))
        x = torch.rand(1, 2, 6, 7)
        a = up(x)
        b = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert a.shape == b.shape
    assert torch.allclose(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1], atol=1e-6)


def test_fcn_skip_scores_start_at_zero(small_backbone):
    # Long et al. Sec. 4.2: the added skip scorers are zero-initialised.
    net = models.FCN(3, "8s", backbone=small_backbone)
    assert all(not p.detach().any() for p in net.score.parameters())


@pytest.mark.parametrize("size", [(64, 64), (77, 61)])
def test_deeplabv3plus_output_equals_input_size(size):
    net = models.DeepLabV3Plus(4, backbone="resnet18").eval()
    assert net.backbone.feature_strides["layer4"] == 16
    assert net.reduce[0].out_channels == 48
    with torch.no_grad():
        assert net(torch.rand(1, 3, *size)).shape == (1, 4, *size)
    os8 = models.DeepLabV3Plus(4, backbone="resnet18", output_stride=8)
    assert os8.backbone.feature_strides["layer3"] == 8
    assert [b[0].dilation for b in os8.aspp.branches[1:4]] == [(12, 12), (24, 24), (36, 36)]


@pytest.mark.parametrize("size", [(101, 75), (64, 48), (5, 3), (17, 1)])
def test_unet_odd_sizes(size):
    net = models.UNet(1, 3, base_channels=4, depth=4).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, *size)).shape == (2, 3, *size)


@pytest.fixture(scope="module")
def tiny_unet():
    torch.manual_seed(0)
    return models.UNet(2, 3, base_channels=2, depth=3).eval()


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40))
def test_unet_any_size_property(tiny_unet, h, w):
    with torch.no_grad():
        y = tiny_unet(torch.rand(1, 2, h, w))
    assert y.shape == (1, 3, h, w)
    assert torch.isfinite(y).all()


@settings(max_examples=8, deadline=None)
@given(h=st.integers(32, 70), w=st.integers(32, 70), variant=st.sampled_from(["16s", "8s"]))
def test_fcn_and_deeplab_any_size_property(small_backbone, h, w, variant):
    fcn = models.FCN(2, variant, backbone=small_backbone).eval()
    lab = models.DeepLabV3Plus(2, backbone=small_backbone).eval()
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        assert fcn(x).shape == lab(x).shape == (1, 2, h, w)


def test_unet_pads_by_mirroring_and_crops():
    net = models.UNet(1, 2, base_channels=4, depth=3).eval()
    x = torch.rand(1, 1, 101, 75)
    with torch.no_grad():
        padded = F.pad(x, (0, 5, 0, 3), mode="reflect")  # to 104 x 80, multiples of 8
        assert torch.allclose(net(x), net(padded)[..., :101, :75], atol=1e-6)


def test_unet_paper_layout():
    net = models.UNet(1, 2, base_channels=64, depth=4, batch_norm=False)
    widths = [blk[2].out_channels for blk in net.down]
    assert widths == [64, 128, 256, 512, 1024]
    assert [u.out_channels for u in net.upconv] == [512, 256, 128, 64]


def test_fpn_levels_strides_and_channels():
    net = models.BackboneWithFPN("resnet18", out_channels=32).eval()
    h, w = 97, 81
    with torch.no_grad():
        out = net(torch.rand(1, 3, h, w))
    assert net.strides == {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}
    for name, y in out.items():
        s = net.strides[name]
        assert y.shape == (1, 32, -(-h // s), -(-w // s)), name


def test_fpn_top_down_pathway():
    fpn = models.FeaturePyramidNetwork([4, 8, 16], out_channels=6, extra_pool=False)
    feats = [torch.rand(1, c, s, s, requires_grad=True) for c, s in ((4, 15), (8, 8), (16, 4))]
    p2, p3, p4 = fpn(feats)
    assert [tuple(p.shape) for p in (p2, p3, p4)] == [(1, 6, 15, 15), (1, 6, 8, 8), (1, 6, 4, 4)]
    # The finest level sees the coarsest map (top-down), not the other way round.
    (g_coarse,) = torch.autograd.grad(p2.sum(), feats[2], retain_graph=True)
    assert g_coarse.abs().sum() > 0
    assert torch.autograd.grad(p4.sum(), feats[0], allow_unused=True)[0] is None


# --- registry ----------------------------------------------------------------------


def test_registry_unknown_name_lists_available():
    with pytest.raises(InvalidParameterError) as err:
        models.create("resnet999")
    msg = str(err.value)
    assert "resnet999" in msg and "resnet50" in msg and "vgg16-bn" in msg and "unet" in msg


def test_registry_points_to_boda_nn_names():
    with pytest.raises(InvalidParameterError, match="boda.nn"):
        models.create("resnet20")
    assert "resnet20" not in models.available()  # no duplicate of the CIFAR family


def test_registry_takes_numpy_integers_for_counts():
    # e.g. num_classes=labels.max() + 1; the error said "must be a whole number, got 3"
    net = models.create("lenet5", num_classes=np.int64(3), in_channels=np.int32(2))
    assert net.classifier[-1].out_features == 3 and net.features[0].in_channels == 2
    assert type(net.classifier[-1].out_features) is int
    for bad in (True, 2.0, np.float64(3), 0, np.int64(0)):
        with pytest.raises(InvalidParameterError, match="whole number"):
            models.create("lenet5", num_classes=bad)


def test_registry_none_count_means_the_default():
    # num_classes=None (e.g. a config's unset field) was a torch TypeError
    net = models.create("resnet18", num_classes=None, in_channels=None)
    default = models.create("resnet18")
    assert net.fc.out_features == default.fc.out_features
    assert net.conv1.in_channels == default.conv1.in_channels


def test_registry_bad_keyword_and_task():
    with pytest.raises(InvalidParameterError, match="does not take"):
        models.create("resnet18", num_clases=3)
    with pytest.raises(InvalidParameterError, match="task"):
        models.available("detection")
    assert set(models.available("segmentation")) == {
        "fcn8s", "fcn16s", "fcn32s", "unet", "deeplabv3plus"
    }  # fmt: skip
    assert models.describe("resnet50").summary.startswith("ResNet-50")


def test_register_decorator(monkeypatch):
    monkeypatch.setattr(_registry, "_SPECS", dict(_registry._SPECS))

    @models.register("tiny-test-net")
    def tiny(num_classes: int = 2) -> nn.Module:
        """A one-layer test net."""
        return nn.Linear(3, num_classes)

    assert "tiny-test-net" in models.available("classification")
    assert models.create("tiny-test-net", num_classes=5).out_features == 5
    assert models.describe("tiny-test-net").summary == "A one-layer test net."
    with pytest.raises(InvalidParameterError, match="already registered"):
        models.register("tiny-test-net")(tiny)
    with pytest.raises(InvalidParameterError, match="task"):
        models.register("other-net", task="detection")
    models.unregister("tiny-test-net")
    assert "tiny-test-net" not in models.available()
    with pytest.raises(InvalidParameterError, match="unknown model"):
        models.unregister("tiny-test-net")


def test_register_nn_architectures_loads_checkpoints(tmp_path, monkeypatch):
    # not registered yet, whatever ran before in this process (docs/models.md's example
    # registers it); put back as it was afterwards
    monkeypatch.delitem(ARCHITECTURES, "resnet18", raising=False)
    net = models.create("resnet18", num_classes=3).eval()
    path = tmp_path / "r18.pt"
    torch.save(net.state_dict(), path)
    try:
        added = models.register_nn_architectures(["resnet18"])
        assert added == ["resnet18"]
        assert models.register_nn_architectures(["resnet18"]) == []  # idempotent
        loaded = load_model(path, arch="resnet18")
        x = torch.rand(1, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(loaded.model(x), net(x))
    finally:
        ARCHITECTURES.pop("resnet18", None)
    with pytest.raises(InvalidParameterError, match="segmentation"):
        models.register_nn_architectures(["unet"])


def test_register_nn_architectures_takes_one_name_as_a_string(monkeypatch):
    # A string is iterable: it was read letter by letter ("unknown model 'r'").
    monkeypatch.delitem(ARCHITECTURES, "alexnet", raising=False)
    try:
        assert models.register_nn_architectures("alexnet") == ["alexnet"]
    finally:
        ARCHITECTURES.pop("alexnet", None)


# --- state dicts and buffers --------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: models.ResNet(18, 3, se_reduction=8, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        lambda: models.DenseNet((2, 2, 2, 2), 3, growth_rate=8, mean=(0.5,) * 3, std=(0.2,) * 3),
        lambda: models.GoogLeNet(3),
        lambda: models.UNet(3, 2, base_channels=4, depth=2, mean=(0.5,) * 3, std=(0.2,) * 3),
        lambda: models.DeepLabV3Plus(2, backbone=models.ResNet(18, 1)),
        lambda: models.FCN(2, "8s", backbone=models.ResNet(18, 1)),
        lambda: models.LeNet5(mean=(0.1307,), std=(0.3081,)),
    ],
)
def test_state_dict_round_trip(build):
    torch.manual_seed(1)
    net = build()
    shape = (2, 1 if isinstance(net, models.LeNet5) else 3, 32, 32)
    net.train()
    with torch.no_grad():
        for _ in range(2):  # move the BN running statistics away from their init
            net(torch.rand(shape))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(2)
    fresh = build()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    x = torch.rand(shape)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), fresh.eval()(x))


def test_buffers_are_in_state_dict_not_parameters():
    net = models.create("resnet18", num_classes=2, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    state = net.state_dict()
    params = dict(net.named_parameters())
    for key in ("normalize.mean", "normalize.std", "bn1.running_mean", "bn1.running_var",
                "bn1.num_batches_tracked"):  # fmt: skip
        assert key in state and key not in params
    assert torch.allclose(state["normalize.mean"].flatten(), torch.tensor(IMAGENET_MEAN))
    # Without mean/std nothing is added: layouts stay torchvision-like.
    plain = models.create("resnet18").state_dict()
    assert not any(k.startswith("normalize") for k in plain)
    assert len(state) == len(plain) + 2
    # The buffers are used: an input at the mean maps to the same output as zeros unnormalised.
    net.eval()
    ref = models.create("resnet18", num_classes=2).eval()
    ref.load_state_dict({k: v for k, v in state.items() if not k.startswith("normalize")})
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = ref(nn_normalize(x, IMAGENET_MEAN, IMAGENET_STD))
        assert torch.allclose(net(x), expected, atol=1e-5)
