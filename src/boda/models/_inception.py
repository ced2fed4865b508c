"""Inception module and GoogLeNet with auxiliary heads (Szegedy et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from boda.errors import InvalidParameterError
from boda.models._blocks import check_min_size, input_normalization
from boda.models._registry import register

__all__ = ["Inception", "InceptionAux", "GoogLeNet", "GoogLeNetOutputs", "googlenet"]


class _Conv(nn.Module):
    # conv -> [BN] -> ReLU; without BN the conv carries a bias, as in the paper.
    # Attribute names (conv, bn) as in torchvision's BasicConv2d.
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, bn: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3) if bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Inception module: four parallel branches concatenated along channels.

    Branches: ``1x1`` (``c1``); ``1x1`` reduce (``c3r``) then ``3x3`` (``c3``);
    ``1x1`` reduce (``c5r``) then ``5x5`` (``c5``); ``3x3`` max pool (stride 1)
    then ``1x1`` projection (``pool_proj``).  Output channels
    ``c1 + c3 + c5 + pool_proj``; spatial size unchanged.

    Parameters
    ----------
    in_channels, c1, c3r, c3, c5r, c5, pool_proj : int
        Column values of the paper's Table 1.
    branch5_kernel : int
        Kernel of the "5x5" branch: 5 as in the paper, 3 as in torchvision's
        GoogLeNet (which kept that deviation for weight compatibility).
    batch_norm : bool
        BN after each convolution (not in the 2015 paper).

    References
    ----------
    .. [1] C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
       Sec. 4 and Fig. 2(b).

    Examples
    --------
    >>> import torch
    >>> m = Inception(192, 64, 96, 128, 16, 32, 32)  # inception (3a)
    >>> m(torch.zeros(2, 192, 28, 28)).shape
    torch.Size([2, 256, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c3r: int,
        c3: int,
        c5r: int,
        c5: int,
        pool_proj: int,
        branch5_kernel: int = 5,
        batch_norm: bool = True,
    ):
        super().__init__()
        bn = batch_norm
        self.branch1 = _Conv(in_channels, c1, 1, bn=bn)
        self.branch2 = nn.Sequential(_Conv(in_channels, c3r, 1, bn=bn), _Conv(c3r, c3, 3, bn=bn))
        self.branch3 = nn.Sequential(
            _Conv(in_channels, c5r, 1, bn=bn), _Conv(c5r, c5, branch5_kernel, bn=bn)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            _Conv(in_channels, pool_proj, 1, bn=bn),
        )
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1
        )


class InceptionAux(nn.Module):
    """Auxiliary classifier: avg pool to ``4x4``, ``1x1`` conv 128, FC 1024, dropout, FC.

    The paper pools ``5x5`` with stride 3, which is ``4x4`` for its ``14x14``
    maps; adaptive pooling gives ``4x4`` for any input size.

    References
    ----------
    .. [1] C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, Sec. 5.
    """

    def __init__(
        self, in_channels: int, num_classes: int, dropout: float = 0.7, batch_norm: bool = True
    ):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = _Conv(in_channels, 128, 1, bn=batch_norm)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output of :class:`GoogLeNet` with auxiliary heads.

    The paper adds the auxiliary losses to the total loss with weight 0.3.
    """

    logits: torch.Tensor
    aux1: torch.Tensor  # on inception (4a)
    aux2: torch.Tensor  # on inception (4d)


#: (in, c1, c3r, c3, c5r, c5, pool_proj) of Table 1, in order 3a..5b.
_TABLE1: dict[str, tuple[int, ...]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1): stem, nine Inception modules, two auxiliary heads.

    Stem ``7x7/2, 64`` -> max pool -> ``1x1, 64`` -> ``3x3, 192`` -> max pool,
    then inception 3a, 3b, pool, 4a-4e, pool, 5a, 5b, global average pooling,
    dropout and a linear classifier (Table 1).  Auxiliary classifiers sit on
    the outputs of 4a and 4d.

    Parameter counts (1000 classes, without the auxiliary heads):

    - ``branch5_kernel=3, batch_norm=True`` (torchvision's layout):
      6,624,904 exactly; 13,004,888 with both auxiliary heads;
    - the defaults ``branch5_kernel=5, batch_norm=True``: 7,005,832;
    - the paper's layers as written (``5x5``, no BN, conv biases):
      6,998,552, within 3 % of the 6,797.7K one gets by summing the params
      column of Table 1 (that column is approximate; e.g. it lists 2.7K for
      the first ``7x7x3x64`` convolution, which has 9.4K weights).

    Parameters
    ----------
    num_classes : int
    aux_logits : bool
        Build the two auxiliary heads.  They run in training mode only.
    branch5_kernel : {5, 3}
        Kernel of the Inception modules' "5x5" branch.
    batch_norm : bool
        BN after every convolution (the paper predates BN; torchvision uses it).
    dropout : float
        Before the classifier (0.4 in the paper).
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Returns
    -------
    In eval mode, or without auxiliary heads: the ``(B, num_classes)``
    logits of ``(B, 3, H, W)`` inputs with ``H, W >= 15``.  In training mode
    with auxiliary heads: a :class:`GoogLeNetOutputs` ``(logits, aux1, aux2)``.

    Notes
    -----
    Local response normalisation after the first pool and the third
    convolution (Table 1 / Fig. 3 of the paper) is omitted, as in most
    reimplementations; it has no parameters.

    References
    ----------
    .. [1] C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
       Sec. 5, Table 1 and Fig. 3.

    Examples
    --------
    >>> import torch
    >>> net = GoogLeNet(num_classes=10)
    >>> out = net.train()(torch.zeros(2, 3, 96, 96))
    >>> out.logits.shape, out.aux1.shape
    (torch.Size([2, 10]), torch.Size([2, 10]))
    >>> net.eval()(torch.zeros(1, 3, 96, 96)).shape
    torch.Size([1, 10])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        aux_logits: bool = True,
        branch5_kernel: int = 5,
        batch_norm: bool = True,
        dropout: float = 0.4,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if branch5_kernel not in (3, 5):
            raise InvalidParameterError(f"branch5_kernel must be 3 or 5, got {branch5_kernel}")
        bn = batch_norm
        self.normalize = input_normalization(mean, std)
        self.conv1 = _Conv(3, 64, 7, stride=2, bn=bn)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = _Conv(64, 64, 1, bn=bn)
        self.conv3 = _Conv(64, 192, 3, bn=bn)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        for name, cfg in _TABLE1.items():
            setattr(self, name, Inception(*cfg, branch5_kernel=branch5_kernel, batch_norm=bn))
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.aux1 = InceptionAux(512, num_classes, batch_norm=bn) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, batch_norm=bn) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        check_min_size(x, 15, "GoogLeNet")
        x = self.maxpool1(self.conv1(self.normalize(x)))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        want_aux = self.training and self.aux1 is not None and self.aux2 is not None
        aux1 = self.aux1(x) if want_aux and self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if want_aux and self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux1, aux2)
        return logits


@register("googlenet")
def googlenet(
    num_classes: int = 1000,
    aux_logits: bool = True,
    branch5_kernel: int = 5,
    batch_norm: bool = True,
    dropout: float = 0.4,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> GoogLeNet:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015, Table 1) with auxiliary heads."""
    return GoogLeNet(num_classes, aux_logits, branch5_kernel, batch_norm, dropout, mean, std)
