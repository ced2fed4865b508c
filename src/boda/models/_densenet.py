"""DenseNet (Huang et al. 2017): dense blocks, transitions, DenseNet-121/169/201."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from boda.models._blocks import check_min_size, input_normalization
from boda.models._registry import register

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNet"]


class DenseLayer(nn.Module):
    """Bottleneck layer ``BN-ReLU-Conv(1x1, bn_size k)-BN-ReLU-Conv(3x3, k)`` (DenseNet-B).

    Takes the concatenation of all earlier feature maps in the block and
    returns ``k`` (the growth rate) new ones.

    References
    ----------
    .. [1] G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely
       Connected Convolutional Networks", CVPR 2017, Sec. 3 ("Composite
       function", "Bottleneck layers").
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, dropout: float = 0.0):
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.norm1(x)))
        y = self.conv2(F.relu(self.norm2(y)))
        return F.dropout(y, self.dropout, self.training) if self.dropout else y


class DenseBlock(nn.Module):
    """``n`` dense layers, layer ``l`` seeing ``x_0, ..., x_{l-1}`` concatenated.

    Output channels ``in_channels + n * growth_rate`` (Eq. 2 of the paper:
    ``x_l = H_l([x_0, x_1, ..., x_{l-1}])``).

    Examples
    --------
    >>> import torch
    >>> DenseBlock(4, 16, growth_rate=8)(torch.zeros(1, 16, 5, 5)).shape
    torch.Size([1, 48, 5, 5])
    """

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int = 32,
        bn_size: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, dropout)
            self.add_module(f"denselayer{i + 1}", layer)
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.children():
            feats.append(layer(torch.cat(feats, dim=1)))
        return torch.cat(feats, dim=1)


class Transition(nn.Sequential):
    """``BN-ReLU-Conv(1x1)-AvgPool(2)`` between dense blocks (compression ``theta``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet(nn.Module):
    """DenseNet-BC for ImageNet: ``7x7/2`` stem, max pool, four dense blocks.

    With growth rate 32, 64 stem filters, ``bn_size=4`` and compression 0.5
    the parameter counts at 1000 classes are DenseNet-121 7,978,856,
    DenseNet-169 14,149,480 and DenseNet-201 20,013,928 (Table 1 layouts).

    Parameters
    ----------
    block_config : sequence of int
        Layers per dense block, ``(6, 12, 24, 16)`` for DenseNet-121.
    num_classes : int
    growth_rate : int
        ``k``.
    num_init_features : int
        Stem filters (``2k`` in the paper).
    bn_size : int
        Bottleneck width factor (``4k`` channels before each ``3x3``).
    compression : float
        ``theta`` of the transitions.
    dropout : float
        After each dense layer (0 for ImageNet).
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Shape
    -----
    ``(B, 3, H, W) -> (B, num_classes)`` for ``H, W >=`` :attr:`min_size`
    (29 with four dense blocks).

    References
    ----------
    .. [1] G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely
       Connected Convolutional Networks", CVPR 2017, Sec. 3 and Table 1.

    Examples
    --------
    >>> import torch
    >>> net = DenseNet((2, 2, 2, 2), num_classes=3, growth_rate=8).eval()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 3])
    """

    def __init__(
        self,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_classes: int = 1000,
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        dropout: float = 0.0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        self.normalize = input_normalization(mean, std)
        layers: dict[str, nn.Module] = {
            "conv0": nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False),
            "norm0": nn.BatchNorm2d(num_init_features),
            "relu0": nn.ReLU(inplace=True),
            "pool0": nn.MaxPool2d(3, 2, 1),
        }
        ch = num_init_features
        for i, n in enumerate(block_config):
            block = DenseBlock(n, ch, growth_rate, bn_size, dropout)
            layers[f"denseblock{i + 1}"] = block
            ch = block.out_channels
            if i != len(block_config) - 1:
                out = int(ch * compression)
                layers[f"transition{i + 1}"] = Transition(ch, out)
                ch = out
        layers["norm5"] = nn.BatchNorm2d(ch)
        self.features = nn.Sequential()
        for name, module in layers.items():
            self.features.add_module(name, module)
        self.classifier = nn.Linear(ch, num_classes)
        # The stem divides by 4 (rounding up), each transition by 2 (rounding down).
        self.min_size = 4 * 2 ** max(len(block_config) - 1, 0) - 3
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_min_size(x, self.min_size, "DenseNet")
        x = F.relu(self.features(self.normalize(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _register(depth: int, blocks: tuple[int, ...], params: str) -> None:
    name = f"densenet{depth}"

    def build(
        num_classes: int = 1000,
        dropout: float = 0.0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> DenseNet:
        return DenseNet(blocks, num_classes, dropout=dropout, mean=mean, std=std)

    build.__doc__ = f"DenseNet-{depth} (Huang et al. 2017, Table 1), k = 32; {params} params."
    build.__name__ = name
    register(name)(build)


_register(121, (6, 12, 24, 16), "7,978,856")
_register(169, (6, 12, 32, 32), "14,149,480")
_register(201, (6, 12, 48, 32), "20,013,928")
