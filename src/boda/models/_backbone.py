"""Backbones for dense heads: a classifier's multi-scale features by name or stride.

A backbone here is any module with ``forward_features(x) -> dict[str, Tensor]``
and the dicts ``feature_channels`` and ``feature_strides`` keyed like it
(:class:`boda.models.ResNet` and :class:`boda.models.VGG` have them).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from boda.errors import InvalidParameterError

__all__ = ["build_backbone", "check_backbone", "feature_at_stride", "fit_to"]


def check_backbone(backbone: nn.Module) -> nn.Module:
    """Raise :class:`InvalidParameterError` unless ``backbone`` has the protocol above."""
    missing = [
        a
        for a in ("forward_features", "feature_channels", "feature_strides")
        if not hasattr(backbone, a)
    ]
    if missing:
        raise InvalidParameterError(
            f"backbone {type(backbone).__name__} lacks {missing}; pass a registry name such as "
            "'resnet18' or 'vgg16', or a module with forward_features(x) -> dict and "
            "feature_channels / feature_strides dicts"
        )
    return backbone


def build_backbone(backbone: str | nn.Module, **kwargs: Any) -> nn.Module:
    """A backbone from a registry name (classifier head removed) or a module as given."""
    if isinstance(backbone, nn.Module):
        return check_backbone(backbone)
    from boda.models._registry import create

    model = check_backbone(create(backbone, **kwargs))
    # The classifier head is not used by dense heads; drop its parameters.
    for head in ("fc", "classifier", "avgpool"):
        if hasattr(model, head):
            setattr(model, head, nn.Identity())
    return model


def feature_at_stride(backbone: nn.Module, stride: int, *, deepest: bool = True) -> str:
    """Name of the (deepest, or shallowest) feature map of ``backbone`` at ``stride``."""
    names = [n for n, s in backbone.feature_strides.items() if s == stride]
    if not names:
        raise InvalidParameterError(
            f"backbone has no feature map of stride {stride}; it has {backbone.feature_strides}"
        )
    return names[-1] if deepest else names[0]


def fit_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the bottom/right excess of ``x`` or replicate-pad what is missing to ``size``.

    Feature maps of odd-sized inputs differ from twice the next coarser map by
    at most a pixel or two (``ceil`` in strided convolutions, ``floor`` in
    pooling); both maps start at the top-left corner of the input, so the
    excess or the shortfall is at the bottom/right.
    """
    h, w = size
    x = x[..., :h, :w]
    dh, dw = h - x.shape[-2], w - x.shape[-1]
    if dh > 0 or dw > 0:
        x = F.pad(x, (0, dw, 0, dh), mode="replicate")
    return x
