"""Torch foundation of boda: tensor conversions, thread settings, model loading.

Everything that imports torch lives in :mod:`boda.nn` or in modules built on it
(:mod:`boda.explain`, ...); numpy-only parts of boda never import it.

- Conversions: :func:`image_to_tensor`, :func:`tensor_to_image`,
  :func:`normalize`, :func:`denormalize`, :func:`resize_tensor`.
- CPU threads: :func:`set_cpu_threads`, :func:`cpu_threads`.
- Models: :func:`load_model` (built-in names, TorchScript with ``trust_code=True``, state dicts with
  ``weights_only=True``), :func:`list_models`, the CIFAR ResNet family
  (:class:`CifarResNet`, :func:`resnet20` ... :func:`resnet56`) and the small
  :class:`ShapesCNN` of the synthetic explanation benchmark.
- Inference copies: :func:`fold_batchnorm`, :func:`fuse_conv_pointwise`,
  :func:`inference_copy`, :class:`InferenceCache` (BatchNorm folded; then
  convolutions fused with their ReLU and residual addition, or frozen TorchScript).
"""

import boda._torch  # noqa: F401, I001  (first: a clear error when PyTorch is missing)

from boda.nn._convert import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    cpu_threads,
    denormalize,
    image_to_tensor,
    normalize,
    resize_tensor,
    set_cpu_threads,
    tensor_to_image,
)
from boda.nn._inference import InferenceCache, fold_batchnorm, inference_copy
from boda.nn._models import (
    ARCHITECTURES,
    CIFAR10_CLASSES,
    LoadedModel,
    ModelInfo,
    input_spec,
    list_models,
    load_model,
    load_state_dict,
    model_info,
    register_architecture,
    register_model,
)
from boda.nn._pointwise import PointwiseConv2d, fuse_conv_pointwise, pointwise_available
from boda.nn._resnet_cifar import CifarResNet, resnet20, resnet32, resnet44, resnet56
from boda.nn._shapes_cnn import SHAPE_CLASSES, ShapesCNN, shapes_cnn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "cpu_threads",
    "denormalize",
    "image_to_tensor",
    "normalize",
    "resize_tensor",
    "set_cpu_threads",
    "tensor_to_image",
    "InferenceCache",
    "fold_batchnorm",
    "inference_copy",
    "input_spec",
    "PointwiseConv2d",
    "fuse_conv_pointwise",
    "pointwise_available",
    "ARCHITECTURES",
    "CIFAR10_CLASSES",
    "LoadedModel",
    "ModelInfo",
    "list_models",
    "load_model",
    "load_state_dict",
    "model_info",
    "register_architecture",
    "register_model",
    "CifarResNet",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "SHAPE_CLASSES",
    "ShapesCNN",
    "shapes_cnn",
]
