"""A small CNN for the synthetic shapes benchmark (:func:`boda.explain.make_shapes`)."""

from __future__ import annotations

import torch
from torch import nn

from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

__all__ = ["SHAPE_CLASSES", "ShapesCNN", "shapes_cnn"]

#: Class names of the synthetic shapes benchmark, in label order.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class ShapesCNN(nn.Module):
    """Four conv-BN-ReLU layers (32x32 -> 8x8), global average pooling, linear.

    ``features`` is the natural target layer (64 channels, 8x8 for a 32x32
    input) and the head is GAP + linear, so every CAM method applies.

    Examples
    --------
    >>> import torch
    >>> ShapesCNN().eval()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 4])
    """

    def __init__(self, num_classes: int = 4):
        super().__init__()
        if not whole_number(num_classes) or num_classes < 1:  # int() truncated 2.9 to 2
            raise InvalidParameterError(
                f"num_classes must be a whole number >= 1, got {num_classes!r}"
            )
        self.features = nn.Sequential(
            *_block(3, 16, 1), *_block(16, 32, 2), *_block(32, 64, 2), *_block(64, 64, 1)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(64, int(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for inputs ``(B, 3, H, W)``."""
        return self.fc(self.flatten(self.pool(self.features(x))))


def shapes_cnn(num_classes: int = 4) -> ShapesCNN:
    """Randomly initialised :class:`ShapesCNN`."""
    return ShapesCNN(num_classes)
