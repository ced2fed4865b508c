"""boda.models audit (session 25): registry messages, FPN level names and input
normalisation, and inputs that gave deep torch errors instead of boda's."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from boda import models  # noqa: E402
from boda.errors import InvalidParameterError  # noqa: E402

torch.set_num_threads(1)


# ----------------------------------------------------------------- registry


@pytest.mark.parametrize(
    "typed, meant",
    [("ResNet50", "resnet50"), ("vgg16_bn", "vgg16-bn"), ("mobilenet_v1", "mobilenet-v1"),
     ("deeplabv3+", "deeplabv3plus"), ("resnt50", "resnet50")],
)
def test_unknown_name_suggests_the_registered_spelling(typed, meant):
    with pytest.raises(InvalidParameterError, match=f"did you mean '{meant}'"):
        models.create(typed)


def test_boda_nn_names_get_no_misleading_suggestion():
    # 'resnet20' is a boda.nn CIFAR model, not a misspelt 'resnet50'
    with pytest.raises(InvalidParameterError) as err:
        models.create("resnet20")
    assert "did you mean" not in str(err.value) and "boda.nn" in str(err.value)


@pytest.mark.parametrize("kwarg", ["pretrained", "weights"])
def test_pretrained_keyword_says_how_to_load_weights(kwarg):
    with pytest.raises(InvalidParameterError, match="load_state_dict"):
        models.create("resnet18", **{kwarg: True})


def test_resnet_dilation_as_one_bool_is_a_clear_error():
    # was TypeError: 'bool' object is not iterable
    with pytest.raises(InvalidParameterError, match="3 booleans"):
        models.create("resnet18", replace_stride_with_dilation=True)


def test_mobilenet_refuses_a_nan_width():
    with pytest.raises(InvalidParameterError, match="width_mult"):  # was ValueError in int()
        models.MobileNetV1(width_mult=float("nan"))


def test_deeplab_refuses_an_fpn_name_as_backbone():
    # the message spoke of 'replace_stride_with_dilation', a keyword the user never gave
    with pytest.raises(InvalidParameterError, match="needs a ResNet backbone"):
        models.DeepLabV3Plus(3, backbone="resnet18-fpn")


# ----------------------------------------------------------------- FPN


def test_fpn_levels_are_named_by_stride_over_any_backbone():
    # P_l has stride 2**l (Lin et al. 2017, Sec. 4.1); over VGG (strides 8..32) the
    # levels were called p2..p5, so "p2" was a stride-8 map
    net = models.BackboneWithFPN("vgg11", out_channels=4).eval()
    assert net.strides == {"p3": 8, "p4": 16, "p5": 32, "p6": 64}
    out = net(torch.zeros(1, 3, 64, 64))
    assert {k: 64 // v.shape[-1] for k, v in out.items()} == net.strides
    # ResNet keeps p2..p6
    assert list(models.create("resnet18-fpn", out_channels=4).strides) == [
        "p2", "p3", "p4", "p5", "p6"
    ]


def test_fpn_builders_take_mean_and_std_like_every_model():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    net = models.create("resnet18-fpn", out_channels=4, mean=mean, std=std).eval()
    assert {"normalize.mean", "normalize.std"} <= set(net.state_dict())
    plain = models.BackboneWithFPN("resnet18", out_channels=4).eval()
    missing, unexpected = plain.load_state_dict(net.state_dict(), strict=False)
    assert missing == [] and sorted(unexpected) == ["normalize.mean", "normalize.std"]
    x = torch.rand(1, 3, 40, 40)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    for k, v in net(x).items():
        torch.testing.assert_close(v, plain((x - m) / s)[k])


# ----------------------------------------------------------------- bad inputs


def test_deeplab_training_with_a_batch_of_one_is_a_clear_error():
    # torch's BN error named a (1, 256, 1, 1) tensor the user never made
    net = models.DeepLabV3Plus(3, backbone="resnet18").train()
    with pytest.raises(InvalidParameterError, match="batches of two or more"):
        net(torch.rand(1, 3, 48, 48))
    assert net.eval()(torch.rand(1, 3, 48, 48)).shape == (1, 3, 48, 48)


@pytest.mark.parametrize(
    "build",
    [lambda: models.VGG(11, num_classes=3),
     lambda: models.DenseNet((1, 1, 1, 1), num_classes=3, growth_rate=4),
     lambda: models.GoogLeNet(num_classes=3, aux_logits=False)],
    ids=["vgg", "densenet", "googlenet"],
)
def test_classifiers_refuse_an_unbatched_image(build):
    # VGG failed in its first linear layer ("mat1 and mat2 shapes cannot be multiplied")
    with torch.device("meta"):
        net = build().eval()
        with pytest.raises(InvalidParameterError, match="unsqueeze"):
            net(torch.zeros(3, 32, 32))
