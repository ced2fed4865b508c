"""AlexNet (Krizhevsky et al. 2012) and VGG (Simonyan & Zisserman 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from boda.errors import InvalidParameterError
from boda.models._blocks import check_min_size, input_normalization
from boda.models._registry import register

__all__ = ["AlexNet", "VGG", "VGG_CONFIGS", "alexnet", "vgg"]


def _init_classifier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class AlexNet(nn.Module):
    """AlexNet, single-tower layout (64-192-384-256-256 filters).

    Five convolutions (``11x11/4, 64`` -> max pool -> ``5x5, 192`` -> max pool
    -> ``3x3, 384`` -> ``3x3, 256`` -> ``3x3, 256`` -> max pool), adaptive
    average pooling to ``6x6``, and three fully connected layers
    (4096, 4096, ``num_classes``) with dropout.  With 1000 classes it has
    61,100,840 parameters.

    Parameters
    ----------
    num_classes : int
    dropout : float
        Before the first two fully connected layers (0.5 in the paper).
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Shape
    -----
    ``(B, 3, H, W) -> (B, num_classes)`` for ``H, W >= 63``.

    Notes
    -----
    The paper's network is split over two GPUs (48+48, 128+128, 192+192, ...
    filters, some layers seeing only their own GPU's half) and uses local
    response normalisation; it has "60 million parameters" (abstract, Sec. 4).  This is
    the one-GPU re-layout of Krizhevsky's "One weird trick" paper
    (arXiv:1404.5997) as popularised by torchvision, without LRN; its count is
    61,100,840.

    References
    ----------
    .. [1] A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification
       with Deep Convolutional Neural Networks", NeurIPS 2012, Sec. 3.5 and Fig. 2.

    Examples
    --------
    >>> import torch
    >>> with torch.device("meta"):  # shapes only, no 244 MB of weights
    ...     AlexNet(num_classes=5).eval()(torch.zeros(1, 3, 96, 96)).shape
    torch.Size([1, 5])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.5,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        self.normalize = input_normalization(mean, std)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        _init_classifier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_min_size(x, 63, "AlexNet")
        x = self.avgpool(self.features(self.normalize(x)))
        return self.classifier(torch.flatten(x, 1))


#: VGG configurations of Simonyan & Zisserman, Table 1 (columns A, B, D, E):
#: numbers are 3x3 conv widths, "M" a 2x2 max pool.
VGG_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}  # fmt: skip


class VGG(nn.Module):
    """VGG with 11, 13, 16 or 19 weight layers, optionally with batch norm.

    Stacks of ``3x3`` convolutions (stride 1, padding 1) separated by ``2x2``
    max pools (:data:`VGG_CONFIGS`), adaptive average pooling to ``7x7``, and
    three fully connected layers (4096, 4096, ``num_classes``).  Parameter
    counts with 1000 classes: VGG-11 132,863,336; VGG-13 133,047,848; VGG-16
    138,357,544; VGG-19 143,667,240 (Table 2 of the paper rounds them to
    133, 133, 138 and 144 million).

    Parameters
    ----------
    depth : {11, 13, 16, 19}
        Configurations A, B, D, E of Table 1.
    num_classes : int
    batch_norm : bool
        Batch norm after every convolution (not in the paper; adds
        ``4 x width`` values per layer, half of them trainable).
    dropout : float
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Shape
    -----
    ``(B, 3, H, W) -> (B, num_classes)`` for ``H, W >= 32``.
    :meth:`forward_features` returns the outputs of the pools of stride 8, 16
    and 32 (``"pool3"``, ``"pool4"``, ``"pool5"``), the features FCN uses.

    References
    ----------
    .. [1] K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for
       Large-Scale Image Recognition", ICLR 2015, Sec. 2.1-2.2, Tables 1-2.

    Examples
    --------
    >>> import torch
    >>> with torch.device("meta"):  # shapes only, no 530 MB of weights
    ...     VGG(11, num_classes=4).eval()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 4])
    """

    def __init__(
        self,
        depth: int = 16,
        num_classes: int = 1000,
        batch_norm: bool = False,
        dropout: float = 0.5,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if depth not in VGG_CONFIGS:
            raise InvalidParameterError(
                f"VGG depth must be one of {sorted(VGG_CONFIGS)}, got {depth}"
            )
        self.normalize = input_normalization(mean, std)
        layers: list[nn.Module] = []
        in_ch = 3
        self._pool_ends: dict[str, int] = {}  # feature name -> index after its max pool
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                self._pool_ends[f"pool{len(self._pool_ends) + 1}"] = len(layers)
                continue
            assert isinstance(item, int)
            layers.append(nn.Conv2d(in_ch, item, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU(inplace=True))
            in_ch = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        #: Channels and strides of :meth:`forward_features`.
        self.feature_channels = {"pool3": 256, "pool4": 512, "pool5": 512}
        self.feature_strides = {"pool3": 8, "pool4": 16, "pool5": 32}
        _init_classifier(self)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"pool3": stride 8, "pool4": stride 16, "pool5": stride 32}`` feature maps."""
        check_min_size(x, 32, "VGG")
        x = self.normalize(x)
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name in ("pool3", "pool4", "pool5"):
            end = self._pool_ends[name]
            x = self.features[start:end](x)
            out[name] = x
            start = end
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_min_size(x, 32, "VGG")
        x = self.avgpool(self.features(self.normalize(x)))
        return self.classifier(torch.flatten(x, 1))


@register("alexnet")
def alexnet(
    num_classes: int = 1000,
    dropout: float = 0.5,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> AlexNet:
    """AlexNet (Krizhevsky et al. 2012), one-GPU layout; 61,100,840 params at 1000 classes."""
    return AlexNet(num_classes, dropout, mean, std)


def vgg(
    depth: int = 16,
    num_classes: int = 1000,
    batch_norm: bool = False,
    dropout: float = 0.5,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> VGG:
    """VGG of any configured depth (same as the :class:`VGG` constructor)."""
    return VGG(depth, num_classes, batch_norm, dropout, mean, std)


def _register_vgg(depth: int, batch_norm: bool) -> None:
    name = f"vgg{depth}" + ("-bn" if batch_norm else "")

    def build(
        num_classes: int = 1000,
        dropout: float = 0.5,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> VGG:
        return VGG(depth, num_classes, batch_norm, dropout, mean, std)

    bn = " with batch norm" if batch_norm else ""
    build.__doc__ = f"VGG-{depth}{bn} (Simonyan & Zisserman 2015, Table 1)."
    build.__name__ = name.replace("-", "_")
    register(name)(build)


for _depth in VGG_CONFIGS:
    for _bn in (False, True):
        _register_vgg(_depth, _bn)
