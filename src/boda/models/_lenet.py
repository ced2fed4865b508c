"""LeNet-5 (LeCun et al. 1998), the common 6-16-120-84 variant."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from boda.errors import InvalidParameterError
from boda.models._blocks import input_normalization
from boda.models._registry import register

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """LeNet-5 for ``32 x 32`` inputs: C1-S2-C3-S4-C5-F6-output.

    Layers: ``conv 5x5, 6`` (C1) -> ``avgpool 2`` (S2) -> ``conv 5x5, 16`` (C3)
    -> ``avgpool 2`` (S4) -> ``conv 5x5, 120`` (C5, 1x1 output) -> ``linear 84``
    (F6) -> ``linear num_classes``, with tanh activations.  With one input
    channel and 10 classes it has 61,706 parameters.

    Parameters
    ----------
    num_classes : int
        10 for digits.
    in_channels : int
        1 for MNIST (28x28 digits padded to 32x32, as in the paper).
    mean, std : sequence of float, optional
        Input normalisation stored as buffers (:class:`InputNormalization`).

    Shape
    -----
    ``(B, in_channels, 32, 32) -> (B, num_classes)`` logits.

    Notes
    -----
    This is the variant used in most textbooks and frameworks, not a literal
    copy of the paper: C3 is fully connected to S2 (the paper's Table I
    connects each C3 map to a subset of S2 maps, 1,516 parameters instead of
    2,416), S2/S4 are plain average pooling (the paper's subsampling layers
    have a trainable coefficient and bias per map), activations are plain
    ``tanh`` (not ``1.7159 tanh(2x/3)``) and the output is a linear layer
    (not Euclidean RBF units).  The paper's count is about 60,000 parameters.

    References
    ----------
    .. [1] Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning
       Applied to Document Recognition", Proc. IEEE 86(11), 1998, Sec. II.B
       (LeNet-5, Fig. 2) and Table I.

    Examples
    --------
    >>> import torch
    >>> LeNet5()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        self.normalize = input_normalization(mean, std)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5),  # C1: 28x28
            nn.Tanh(),
            nn.AvgPool2d(2),  # S2: 14x14
            nn.Conv2d(6, 16, 5),  # C3: 10x10
            nn.Tanh(),
            nn.AvgPool2d(2),  # S4: 5x5
            nn.Conv2d(16, 120, 5),  # C5: 1x1
            nn.Tanh(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (32, 32):
            raise InvalidParameterError(
                f"LeNet-5 takes (B, C, 32, 32) inputs, got {tuple(x.shape)}; "
                "pad 28x28 digits by 2 pixels on each side"
            )
        return self.classifier(self.features(self.normalize(x)))


@register("lenet5")
def lenet5(
    num_classes: int = 10,
    in_channels: int = 1,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998), 6-16-120-84 variant, 32x32 inputs; 61,706 params."""
    return LeNet5(num_classes, in_channels, mean, std)
