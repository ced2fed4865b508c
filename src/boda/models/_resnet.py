"""ResNet (He et al. 2016) with basic and bottleneck blocks, optional SE and dilation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from boda.errors import InvalidParameterError
from boda.models._blocks import SqueezeExcitation, input_normalization
from boda.models._registry import register

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet"]


def _downsample(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    # Projection shortcut (option B of the paper) where shape changes.
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
    )


class BasicBlock(nn.Module):
    """Two ``3x3`` convolutions with an identity (or projection) shortcut.

    ``y = relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``; an optional
    squeeze-and-excitation gate scales the residual branch before the
    addition (Hu et al. 2018, Fig. 3).

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
       Recognition", CVPR 2016, Sec. 3.3 and Fig. 5 (left).
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        se_reduction: int | None = None,
    ):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcitation(out, se_reduction) if se_reduction else None
        self.downsample = _downsample(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.se is not None:
            y = self.se(y)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(y + identity)


class Bottleneck(nn.Module):
    """``1x1`` reduce, ``3x3``, ``1x1`` expand (x4), with a shortcut.

    The stride sits on the ``3x3`` convolution (the "ResNet v1.5" placement
    of torchvision and most reimplementations; the paper strides the first
    ``1x1``).  The parameter count is the same either way.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
       Recognition", CVPR 2016, Sec. 4.1 ("Deeper Bottleneck Architectures")
       and Fig. 5 (right).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        se_reduction: int | None = None,
    ):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcitation(out, se_reduction) if se_reduction else None
        self.downsample = _downsample(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.se is not None:
            y = self.se(y)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(y + identity)


_LAYOUTS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """ImageNet ResNet: ``7x7/2`` stem, max pool, four stages, global pool, linear.

    Parameter counts with a 1000-class head: ResNet-18 11,689,512;
    ResNet-34 21,797,672; ResNet-50 25,557,032; ResNet-101 44,549,160;
    ResNet-152 60,192,808 (the paper's Table 1 layouts; torchvision's counts).

    Parameters
    ----------
    depth : {18, 34, 50, 101, 152}
        Table 1 of the paper.
    num_classes : int
    in_channels : int
    se_reduction : int, optional
        Add a squeeze-and-excitation gate with this reduction ``r`` to every
        block (SE-ResNet, Hu et al. 2018).
    replace_stride_with_dilation : (bool, bool, bool)
        For ``layer2..layer4``: keep resolution and dilate instead of
        striding (DeepLab's output stride 16 is ``(False, False, True)``).
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, num_classes)``.  :meth:`forward_features`
    returns ``layer1..layer4`` (strides 4, 8, 16, 32 without dilation;
    channels in :attr:`feature_channels`).

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
       Recognition", CVPR 2016, Sec. 3.4 and Table 1.

    Examples
    --------
    >>> import torch
    >>> net = ResNet(18, num_classes=7).eval()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 7])
    >>> {k: tuple(v.shape[1:]) for k, v in net.forward_features(torch.zeros(1, 3, 64, 64)).items()}
    {'layer1': (64, 16, 16), 'layer2': (128, 8, 8), 'layer3': (256, 4, 4), 'layer4': (512, 2, 2)}
    """

    def __init__(
        self,
        depth: int = 50,
        num_classes: int = 1000,
        in_channels: int = 3,
        se_reduction: int | None = None,
        replace_stride_with_dilation: Sequence[bool] = (False, False, False),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if depth not in _LAYOUTS:
            raise InvalidParameterError(
                f"ResNet depth must be one of {sorted(_LAYOUTS)}, got {depth}"
            )
        try:
            dilate = tuple(bool(d) for d in replace_stride_with_dilation)
        except TypeError:  # a single bool
            dilate = ()
        if len(dilate) != 3:
            raise InvalidParameterError(
                "replace_stride_with_dilation needs 3 booleans (layer2, layer3, layer4), got "
                f"{replace_stride_with_dilation!r}; e.g. (False, False, True) for output stride 16"
            )
        block, counts = _LAYOUTS[depth]
        self.normalize = input_normalization(mean, std)
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._in = 64
        self._dilation = 1
        stride_total = 4
        self.feature_channels: dict[str, int] = {}
        self.feature_strides: dict[str, int] = {}
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            stride = 1 if i == 0 else 2
            prev_dilation = self._dilation
            if i > 0 and dilate[i - 1]:
                self._dilation *= stride
                stride = 1
            stride_total *= stride
            name = f"layer{i + 1}"
            stage = self._stage(block, planes, n, stride, prev_dilation, se_reduction)
            setattr(self, name, stage)
            self.feature_channels[name] = planes * block.expansion
            self.feature_strides[name] = stride_total
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _stage(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        n: int,
        stride: int,
        first_dilation: int,
        se_reduction: int | None,
    ) -> nn.Sequential:
        # Like DeepLab: a dilated stage's first block keeps the previous dilation.
        layers = [block(self._in, planes, stride, first_dilation, se_reduction)]
        self._in = planes * block.expansion
        layers += [
            block(self._in, planes, 1, self._dilation, se_reduction) for _ in range(n - 1)
        ]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs of ``layer1..layer4`` as a dict (see :attr:`feature_strides`)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.normalize(x)))))
        out: dict[str, torch.Tensor] = {}
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            out[name] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)["layer4"]
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(depth: int = 50, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet of any depth in (18, 34, 50, 101, 152); keywords as :class:`ResNet`."""
    return ResNet(depth, num_classes, **kwargs)


def _register(name: str, depth: int, se_reduction: int | None, doc: str) -> None:
    def build(
        num_classes: int = 1000,
        in_channels: int = 3,
        replace_stride_with_dilation: Sequence[bool] = (False, False, False),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> ResNet:
        return ResNet(
            depth, num_classes, in_channels, se_reduction, replace_stride_with_dilation, mean, std
        )

    build.__doc__ = doc
    build.__name__ = name.replace("-", "_")
    register(name)(build)


_register("resnet18", 18, None, "ResNet-18 (He et al. 2016, Table 1); 11,689,512 params.")
_register("resnet34", 34, None, "ResNet-34 (He et al. 2016, Table 1); 21,797,672 params.")
_register("resnet50", 50, None, "ResNet-50 (He et al. 2016, Table 1); 25,557,032 params.")
_register("resnet101", 101, None, "ResNet-101 (He et al. 2016, Table 1); 44,549,160 params.")
_register("resnet152", 152, None, "ResNet-152 (He et al. 2016, Table 1); 60,192,808 params.")
_register(
    "se-resnet50", 50, 16, "SE-ResNet-50 (Hu et al. 2018, Table 1), r = 16; 28,088,024 params."
)
