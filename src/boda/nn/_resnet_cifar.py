"""ResNets for CIFAR (He et al. 2016, section 4.2), with option-A shortcuts.

The layout and parameter names follow akamaster/pytorch_resnet_cifar10 so its
published checkpoints (shipped in ``boda/data/models``) load with
``strict=True``: a 3x3 stem with 16 filters, three stages of ``n`` basic blocks
with 16, 32 and 64 filters (depth ``6n + 2``), global average pooling and a
linear classifier.  Where a block changes width or resolution its shortcut is
the parameter-free "option A": subsample by 2 and zero-pad the new channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from boda.core.numbers import whole_number
from boda.errors import InvalidParameterError

__all__ = ["CifarResNet", "resnet20", "resnet32", "resnet44", "resnet56"]


class _PadShortcut(nn.Module):
    """Option-A shortcut: take every second pixel, zero-pad ``pad`` channels each side."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = _PadShortcut(planes // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs with ``6n + 2`` layers (He et al. 2016, Sec. 4.2).

    Parameters
    ----------
    num_blocks : int
        Blocks per stage ``n`` (3 -> ResNet-20, 9 -> ResNet-56).
    num_classes : int
        Outputs of the final linear layer.

    Notes
    -----
    Modules: ``conv1 -> bn1 -> relu -> layer1 -> layer2 -> layer3 -> pool ->
    flatten -> linear``.  ``layer3`` is the last convolutional stage (8x8 for a
    32x32 input), the natural target layer for CAM-style explanations; ``pool``
    is a global average pooling, so :class:`boda.explain.CAM` applies.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
       Recognition", CVPR 2016, Sec. 4.2 (CIFAR-10 architecture, option A).

    Examples
    --------
    >>> import torch
    >>> net = CifarResNet(3).eval()
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_blocks: int, num_classes: int = 10):
        super().__init__()
        # int() truncated 2.5 blocks to 2 (a ResNet-14 asked for as 2.5) and took "3".
        if not all(whole_number(v) and v >= 1 for v in (num_blocks, num_classes)):
            raise InvalidParameterError(
                "num_blocks and num_classes must be whole numbers >= 1, got "
                f"{num_blocks!r}, {num_classes!r}"
            )
        self.depth = 6 * int(num_blocks) + 2
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        in_planes = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(int(num_blocks)):
                blocks.append(_BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.linear = nn.Linear(64, int(num_classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``layer3`` feature map ``(B, 64, H/4, W/4)``."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits ``(B, num_classes)`` for inputs ``(B, 3, H, W)``."""
        return self.linear(self.flatten(self.pool(self.forward_features(x))))


def resnet20(num_classes: int = 10) -> CifarResNet:
    """ResNet-20 for CIFAR (``n = 3``), randomly initialised."""
    return CifarResNet(3, num_classes)


def resnet32(num_classes: int = 10) -> CifarResNet:
    """ResNet-32 for CIFAR (``n = 5``), randomly initialised."""
    return CifarResNet(5, num_classes)


def resnet44(num_classes: int = 10) -> CifarResNet:
    """ResNet-44 for CIFAR (``n = 7``), randomly initialised."""
    return CifarResNet(7, num_classes)


def resnet56(num_classes: int = 10) -> CifarResNet:
    """ResNet-56 for CIFAR (``n = 9``), randomly initialised."""
    return CifarResNet(9, num_classes)
