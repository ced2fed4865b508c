"""Why did the model decide that?  Explanation methods for image classifiers.

Every method is a small class over :class:`Explainer`, which owns the hooks
and restores the model's state; call an instance on a ``(B, C, H, W)`` batch
to get ``(B, H, W)`` maps in ``[0, 1]`` at the input size::

    from boda.explain import GradCAM
    with GradCAM(model, "layer3") as cam:
        maps = cam(x, target=3)

- Class activation maps: :class:`CAM`, :class:`GradCAM`,
  :class:`GradCAMPlusPlus`, :class:`ScoreCAM`.
- Input gradients: :class:`Saliency` (vanilla, squared, SmoothGrad),
  :class:`GuidedBackprop`, :class:`GuidedGradCAM`.
- Perturbation: :class:`Occlusion`.
- What a unit or class "looks like": :func:`class_model` (gradient ascent),
  :func:`top_activating_patches` (receptive-field crops from a folder),
  :class:`FeatureIndex` (nearest neighbours by a layer's features),
  :func:`receptive_field`.
- Faithfulness metrics: :mod:`boda.explain.metrics`; a seeded synthetic
  benchmark with known object masks (:func:`make_shapes`) and the shipped
  ``"shapes-cnn"`` trained on it (:func:`train_shapes_cnn`).
- Pictures: :func:`overlay`, :func:`montage`; one call for an image and a
  built-in model: :func:`explain_image`.
"""

import boda._torch  # noqa: F401, I001  (first: a clear error when PyTorch is missing)

from boda.explain._api import METHODS, ImageExplanation, explain_image, make_explainer, map_stats
from boda.explain._base import Explainer, Target, model_logits, normalize_maps, resolve_layer
from boda.explain._cam import CAM, GradCAM, GradCAMPlusPlus, ScoreCAM
from boda.explain._class_model import ClassModel, class_model
from boda.explain._features import (
    FeatureIndex,
    Patch,
    PatchSearch,
    layer_features,
    receptive_field,
    top_activating_patches,
)
from boda.explain._gradients import GuidedBackprop, GuidedGradCAM, Saliency, guided_relu
from boda.explain._occlusion import Occlusion
from boda.explain._synthetic import SHAPE_CLASSES, ShapesDataset, make_shapes
from boda.explain._train_shapes import SHAPES_MEAN, SHAPES_STD, shapes_tensors, train_shapes_cnn
from boda.explain._visualize import montage, overlay, resize_map

__all__ = [
    "Explainer",
    "Target",
    "model_logits",
    "normalize_maps",
    "resolve_layer",
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
    "Saliency",
    "GuidedBackprop",
    "GuidedGradCAM",
    "guided_relu",
    "Occlusion",
    "SHAPE_CLASSES",
    "ShapesDataset",
    "make_shapes",
    "SHAPES_MEAN",
    "SHAPES_STD",
    "shapes_tensors",
    "train_shapes_cnn",
    "ClassModel",
    "class_model",
    "FeatureIndex",
    "Patch",
    "PatchSearch",
    "layer_features",
    "receptive_field",
    "top_activating_patches",
    "montage",
    "overlay",
    "resize_map",
    "METHODS",
    "ImageExplanation",
    "explain_image",
    "make_explainer",
    "map_stats",
]
