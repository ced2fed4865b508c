"""MobileNet v1 (Howard et al. 2017), built from depthwise-separable convolutions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from boda.core.numbers import finite_float
from boda.errors import InvalidParameterError
from boda.models._blocks import ConvBNReLU, DepthwiseSeparableConv2d, input_normalization
from boda.models._registry import register

__all__ = ["MobileNetV1"]

#: (output channels, stride) of the 13 depthwise-separable layers of Table 1.
_TABLE1: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip


class MobileNetV1(nn.Module):
    """MobileNet: a ``3x3/2`` convolution then 13 depthwise-separable layers.

    With width multiplier 1 and 1000 classes it has 4,231,976 parameters
    (Table 8 of the paper: "4.2 million").

    Parameters
    ----------
    num_classes : int
    width_mult : float
        ``alpha`` of Sec. 3.3: every layer's width is scaled by it.
    dropout : float
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Shape
    -----
    ``(B, 3, H, W) -> (B, num_classes)``.

    References
    ----------
    .. [1] A. G. Howard et al., "MobileNets: Efficient Convolutional Neural
       Networks for Mobile Vision Applications", arXiv:1704.04861, 2017,
       Sec. 3.2 and Table 1.

    Examples
    --------
    >>> import torch
    >>> MobileNetV1(num_classes=5, width_mult=0.25).eval()(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 5])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if (finite_float(width_mult) or 0.0) <= 0:  # NaN: a bare ValueError in int()
            raise InvalidParameterError(f"width_mult must be a finite number > 0, got {width_mult}")
        width_mult = float(width_mult)

        def w(c: int) -> int:
            return max(8, int(c * width_mult))

        self.normalize = input_normalization(mean, std)
        layers: list[nn.Module] = [ConvBNReLU(3, w(32), 3, stride=2)]
        ch = w(32)
        for out, stride in _TABLE1:
            layers.append(DepthwiseSeparableConv2d(ch, w(out), 3, stride))
            ch = w(out)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(self.normalize(x)))
        return self.fc(self.dropout(torch.flatten(x, 1)))


@register("mobilenet-v1")
def mobilenet_v1(
    num_classes: int = 1000,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> MobileNetV1:
    """MobileNet v1 (Howard et al. 2017, Table 1), depthwise-separable; 4,231,976 params."""
    return MobileNetV1(num_classes, width_mult, dropout, mean, std)
