"""Reference CNN architectures on plain PyTorch, built by name.

No pretrained weights are implied or shipped: :func:`create` always returns
freshly initialised networks.  (Pretrained, explainable models shipped with
boda are loaded by :func:`boda.nn.load_model`; see :func:`register_nn_architectures`
for loading your own checkpoints of these architectures through it.)

- Registry: :func:`create`, :func:`available`, :func:`describe`, :func:`register`,
  :func:`unregister`, :func:`register_nn_architectures`.
- Classification: :class:`LeNet5`, :class:`AlexNet`, :class:`VGG`,
  :class:`GoogLeNet` (:class:`Inception` modules, auxiliary heads),
  :class:`ResNet` (:class:`BasicBlock`, :class:`Bottleneck`, SE option),
  :class:`DenseNet` (:class:`DenseBlock`), :class:`MobileNetV1`.
- Blocks: :class:`SqueezeExcitation`, :class:`DepthwiseSeparableConv2d`,
  :class:`AtrousConv2d`, :class:`ASPP`, :class:`InputNormalization`.
- Dense prediction: :class:`FCN` (32s/16s/8s), :class:`UNet`,
  :class:`DeepLabV3Plus`, :class:`FeaturePyramidNetwork`,
  :class:`BackboneWithFPN`.

Examples
--------
>>> import torch
>>> from boda import models
>>> net = models.create("resnet18", num_classes=10).eval()
>>> net(torch.zeros(1, 3, 64, 64)).shape
torch.Size([1, 10])
>>> with torch.device("meta"):
...     n = sum(p.numel() for p in models.create("vgg16").parameters())
>>> n
138357544
"""

import boda._torch  # noqa: F401, I001  (first: a clear error when PyTorch is missing)

from boda.models._alexnet_vgg import VGG, VGG_CONFIGS, AlexNet, alexnet, vgg
from boda.models._blocks import (
    ASPP,
    AtrousConv2d,
    ConvBNReLU,
    DepthwiseSeparableConv2d,
    InputNormalization,
    SqueezeExcitation,
    input_normalization,
)
from boda.models._densenet import DenseBlock, DenseLayer, DenseNet, Transition
from boda.models._fpn import BackboneWithFPN, FeaturePyramidNetwork
from boda.models._inception import (
    GoogLeNet,
    GoogLeNetOutputs,
    Inception,
    InceptionAux,
    googlenet,
)
from boda.models._lenet import LeNet5, lenet5
from boda.models._mobilenet import MobileNetV1
from boda.models._registry import (
    TASKS,
    ModelSpec,
    available,
    create,
    describe,
    register,
    register_nn_architectures,
    unregister,
)
from boda.models._resnet import BasicBlock, Bottleneck, ResNet, resnet
from boda.models._segmentation import FCN, DeepLabV3Plus, UNet, bilinear_kernel

__all__ = [
    "TASKS",
    "ModelSpec",
    "available",
    "create",
    "describe",
    "register",
    "register_nn_architectures",
    "unregister",
    "ASPP",
    "AtrousConv2d",
    "ConvBNReLU",
    "DepthwiseSeparableConv2d",
    "InputNormalization",
    "SqueezeExcitation",
    "input_normalization",
    "LeNet5",
    "lenet5",
    "AlexNet",
    "alexnet",
    "VGG",
    "VGG_CONFIGS",
    "vgg",
    "Inception",
    "InceptionAux",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "googlenet",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet",
    "DenseLayer",
    "DenseBlock",
    "Transition",
    "DenseNet",
    "MobileNetV1",
    "FCN",
    "UNet",
    "DeepLabV3Plus",
    "bilinear_kernel",
    "FeaturePyramidNetwork",
    "BackboneWithFPN",
]
