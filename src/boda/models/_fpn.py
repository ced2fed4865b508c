"""Feature pyramid network neck (Lin et al. 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from boda.errors import InvalidParameterError
from boda.models._backbone import build_backbone
from boda.models._blocks import input_normalization
from boda.models._registry import register

__all__ = ["FeaturePyramidNetwork", "BackboneWithFPN"]


class FeaturePyramidNetwork(nn.Module):
    """Top-down pathway with lateral connections over a backbone's feature maps.

    For maps ``C_2 .. C_L`` (fine to coarse): ``M_L = lateral(C_L)``,
    ``M_l = lateral(C_l) + upsample_nearest(M_{l+1})``, ``P_l = conv3x3(M_l)``;
    every lateral is a ``1x1`` convolution to ``out_channels`` (``d = 256`` in
    the paper).  With ``extra_pool`` a ``P_{L+1}`` is added by subsampling
    ``P_L`` with stride 2 (the paper's ``P_6`` for the RPN, Sec. 4.1).

    Parameters
    ----------
    in_channels : sequence of int
        Channels of the input maps, fine to coarse.
    out_channels : int
    extra_pool : bool

    Shape
    -----
    A list of ``(B, in_channels[i], H_i, W_i)`` tensors with ``H_i`` about
    ``H_{i-1} / 2`` -> a list of ``(B, out_channels, H_i, W_i)`` tensors (plus
    one of size ``ceil(H_L / 2)`` with ``extra_pool``).  The upsampling goes to
    the exact size of the finer map, so odd sizes need no care.

    References
    ----------
    .. [1] T.-Y. Lin, P. Dollár, R. Girshick, K. He, B. Hariharan, S. Belongie,
       "Feature Pyramid Networks for Object Detection", CVPR 2017, Sec. 3
       (Fig. 3) and Sec. 4.1.

    Examples
    --------
    >>> import torch
    >>> fpn = FeaturePyramidNetwork([16, 32], out_channels=8)
    >>> [tuple(p.shape) for p in fpn([torch.zeros(1, 16, 9, 9), torch.zeros(1, 32, 5, 5)])]
    [(1, 8, 9, 9), (1, 8, 5, 5), (1, 8, 3, 3)]
    """

    def __init__(
        self, in_channels: Sequence[int], out_channels: int = 256, extra_pool: bool = True
    ):
        super().__init__()
        if len(in_channels) == 0:
            raise InvalidParameterError("in_channels must list at least one feature map")
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels
        )
        self.extra_pool = extra_pool
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        if len(features) != len(self.lateral):
            raise InvalidParameterError(
                f"expected {len(self.lateral)} feature maps, got {len(features)}"
            )
        merged = self.lateral[-1](features[-1])
        outs = [self.output[-1](merged)]
        for i in range(len(features) - 2, -1, -1):
            lat = self.lateral[i](features[i])
            merged = lat + F.interpolate(merged, size=lat.shape[-2:], mode="nearest")
            outs.insert(0, self.output[i](merged))
        if self.extra_pool:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs


def _level_names(strides: list[int]) -> list[str]:
    """``p<l>`` for a map of stride ``2**l``, the paper's naming (``P_l`` has
    stride ``2^l``, Sec. 4.1), so ``"p3"`` is the stride-8 map whatever the
    backbone; strides that are not distinct powers of two are numbered from 2."""
    logs = [s.bit_length() - 1 if s > 0 and s & (s - 1) == 0 else -1 for s in strides]
    if min(logs) >= 0 and len(set(logs)) == len(logs):
        return [f"p{lv}" for lv in logs]
    return [f"p{i + 2}" for i in range(len(strides))]


class BackboneWithFPN(nn.Module):
    """A backbone's feature maps (C2-C5 of a ResNet) through a :class:`FeaturePyramidNetwork`.

    Returns ``{"p2": stride 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}`` for a
    ResNet, each with ``out_channels`` channels; :attr:`strides` maps names to
    strides. Level ``p<l>`` has stride ``2**l`` (Lin et al. 2017, Sec. 4.1):
    over VGG (``pool3`` .. ``pool5``) the levels are ``p3`` .. ``p6``.

    Parameters
    ----------
    backbone : str or nn.Module
        A registry name (``"resnet50"``, ``"vgg16"``) or a module with
        ``forward_features`` and ``feature_channels`` / ``feature_strides``
        (see :class:`boda.models.ResNet`).
    out_channels : int
    mean, std : sequence of float, optional
        Input normalisation stored as buffers (applied before the backbone).

    Examples
    --------
    >>> import torch
    >>> net = BackboneWithFPN("resnet18", out_channels=32).eval()
    >>> {k: tuple(v.shape[1:]) for k, v in net(torch.zeros(1, 3, 64, 96)).items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'p2': (32, 16, 24), 'p3': (32, 8, 12), 'p4': (32, 4, 6), 'p5': (32, 2, 3),
     'p6': (32, 1, 2)}
    """

    def __init__(
        self,
        backbone: str | nn.Module = "resnet50",
        out_channels: int = 256,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        self.normalize = input_normalization(mean, std)
        self.backbone = build_backbone(backbone)
        names = list(self.backbone.feature_channels)
        self._in_names = names
        self.fpn = FeaturePyramidNetwork(
            [self.backbone.feature_channels[n] for n in names], out_channels
        )
        strides = [self.backbone.feature_strides[n] for n in names]
        strides.append(strides[-1] * 2)  # the extra level (P6 of a ResNet)
        #: Output name -> stride with respect to the input.
        self.strides = dict(zip(_level_names(strides), strides, strict=True))
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        feats = self.backbone.forward_features(self.normalize(x))
        outs = self.fpn([feats[n] for n in self._in_names])
        return dict(zip(self.strides, outs, strict=True))


def _register(depth: int) -> None:
    name = f"resnet{depth}-fpn"

    def build(
        out_channels: int = 256,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> BackboneWithFPN:
        return BackboneWithFPN(f"resnet{depth}", out_channels, mean, std)

    build.__doc__ = f"ResNet-{depth} with an FPN neck (Lin et al. 2017): P2-P6 feature maps."
    build.__name__ = name.replace("-", "_")
    register(name, task="features")(build)


for _depth in (18, 34, 50):
    _register(_depth)
