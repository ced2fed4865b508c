"""Building blocks: input normalisation, conv-BN-ReLU, squeeze-and-excitation,
depthwise-separable and atrous (dilated) convolutions, ASPP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from boda.errors import InvalidParameterError

__all__ = [
    "InputNormalization",
    "input_normalization",
    "ConvBNReLU",
    "SqueezeExcitation",
    "DepthwiseSeparableConv2d",
    "AtrousConv2d",
    "ASPP",
]


class InputNormalization(nn.Module):
    """``(x - mean) / std`` per channel, with ``mean`` and ``std`` kept as buffers.

    Buffers are saved in the model's state dict (so a checkpoint remembers how
    its inputs were normalised), move with ``.to(device)``, and are not
    trained.

    Parameters
    ----------
    mean, std : sequence of float
        One value per input channel, for inputs in ``[0, 1]``
        (e.g. :data:`boda.nn.IMAGENET_MEAN`, :data:`boda.nn.IMAGENET_STD`).

    Shape
    -----
    ``(B, C, H, W) -> (B, C, H, W)``.

    Examples
    --------
    >>> import torch
    >>> norm = InputNormalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    >>> sorted(norm.state_dict())
    ['mean', 'std']
    >>> norm(torch.full((1, 3, 2, 2), 0.75))[0, :, 0, 0].tolist()
    [1.0, 1.0, 1.0]
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        # On the CPU even under a torch.device("meta") context (used to count
        # parameters): the std > 0 check must read the values.
        m = torch.as_tensor(mean, dtype=torch.float32, device="cpu").flatten()
        s = torch.as_tensor(std, dtype=torch.float32, device="cpu").flatten()
        if m.numel() != s.numel() or m.numel() == 0:
            raise InvalidParameterError(
                f"mean and std need one value per channel each; got {m.numel()} and {s.numel()}"
            )
        if not bool((s > 0).all()):
            raise InvalidParameterError(f"std values must be > 0, got {s.tolist()}")
        # The buffers themselves follow the default device (meta, cuda...) like the
        # other parameters of the model being built.
        self.register_buffer("mean", torch.tensor(m.tolist()).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(s.tolist()).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.mean.shape[1]:
            raise InvalidParameterError(
                f"expected a (B, {self.mean.shape[1]}, H, W) tensor, got {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std


def input_normalization(
    mean: Sequence[float] | None, std: Sequence[float] | None
) -> nn.Module:
    """:class:`InputNormalization` when both are given, else a state-free identity."""
    if (mean is None) != (std is None):
        raise InvalidParameterError("give both mean and std, or neither")
    if mean is None or std is None:
        return nn.Identity()
    return InputNormalization(mean, std)


def check_min_size(x: torch.Tensor, min_size: int, model: str) -> None:
    """Raise :class:`InvalidParameterError` when ``x`` is smaller than ``min_size`` pixels.

    For networks whose poolings leave nothing of a too-small input (torch's own
    error names an inner layer's sizes, not the input's).
    """
    if x.ndim != 4:  # else a shape error in the first linear layer, far from the cause
        raise InvalidParameterError(
            f"{model} takes (B, C, H, W) batches, got shape {tuple(x.shape)}; add the "
            "batch dimension of a single image with x.unsqueeze(0)"
        )
    h, w = x.shape[-2], x.shape[-1]
    if h < min_size or w < min_size:
        raise InvalidParameterError(
            f"{model} takes inputs of at least {min_size}x{min_size} pixels, got {h}x{w}; "
            "upsample or pad smaller images"
        )


class ConvBNReLU(nn.Sequential):
    """``Conv2d(bias=False) -> BatchNorm2d -> ReLU`` with 'same' padding for odd kernels.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
    stride, dilation, groups : int
        As in :class:`torch.nn.Conv2d`; padding is ``dilation * (kernel_size - 1) // 2``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ):
        pad = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, pad, dilation, groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation block: re-weight channels by a learned gate.

    ``z = mean_{h,w} x`` (squeeze), ``s = sigmoid(W2 relu(W1 z))`` with
    ``W1 : C -> C / r`` and ``W2 : C / r -> C`` (excitation), output
    ``x * s`` broadcast over the spatial axes.

    Parameters
    ----------
    channels : int
        ``C``.
    reduction : int
        Reduction ratio ``r`` (16 in the paper's experiments).
    bias : bool
        Biases on the two fully connected layers (1x1 convolutions here).

    Shape
    -----
    ``(B, C, H, W) -> (B, C, H, W)``.

    Notes
    -----
    The two layers hold ``2 C^2 / r`` weights, the per-block term of the
    paper's parameter count ``(2/r) sum_s N_s C_s^2`` for a whole SE-ResNet
    (Sec. 4, "Model and Computational Complexity", Eq. 5 of the journal
    version).

    References
    ----------
    .. [1] J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018;
       extended in IEEE TPAMI 42(8), 2020 (arXiv:1709.01507): Sec. 3.1
       (Eq. 2, squeeze), Sec. 3.2 (Eq. 3-4, excitation and scaling), Fig. 3
       (SE-ResNet module).

    Examples
    --------
    >>> import torch
    >>> se = SqueezeExcitation(32, reduction=8)
    >>> se(torch.randn(2, 32, 5, 5)).shape
    torch.Size([2, 32, 5, 5])
    """

    def __init__(self, channels: int, reduction: int = 16, bias: bool = True):
        super().__init__()
        if reduction < 1 or channels < reduction:
            raise InvalidParameterError(
                f"reduction must be in [1, channels={channels}], got {reduction}"
            )
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(B, C, 1, 1)`` channel weights ``s`` in ``(0, 1)``."""
        z = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise ``k x k`` convolution then pointwise ``1 x 1``, each with BN and ReLU.

    A full ``k x k`` convolution from ``M`` to ``N`` channels has
    ``k^2 M N`` weights; the separable one has ``k^2 M + M N``, a ratio of
    ``1/N + 1/k^2`` (MobileNet Sec. 3.1: the cost of Eq. 5 over that of
    Eq. 2; the same ratio holds for the weights).

    Parameters
    ----------
    in_channels, out_channels : int
        ``M`` and ``N``.
    kernel_size, stride, dilation : int
        Of the depthwise convolution ('same' padding for stride 1).

    Shape
    -----
    ``(B, M, H, W) -> (B, N, H', W')`` with ``H' = ceil(H / stride)``.

    References
    ----------
    .. [1] A. G. Howard et al., "MobileNets: Efficient Convolutional Neural
       Networks for Mobile Vision Applications", arXiv:1704.04861, 2017,
       Sec. 3.1 (Eq. 1-5) and Fig. 3 (layer with BN and ReLU).

    Examples
    --------
    >>> import torch
    >>> conv = DepthwiseSeparableConv2d(8, 16, stride=2)
    >>> conv(torch.zeros(1, 8, 9, 9)).shape
    torch.Size([1, 16, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
    ):
        super().__init__()
        self.depthwise = ConvBNReLU(
            in_channels, in_channels, kernel_size, stride, dilation, groups=in_channels
        )
        self.pointwise = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class AtrousConv2d(nn.Conv2d):
    """Atrous (dilated) convolution with 'same' padding: ``y[i] = sum_k x[i + r k] w[k]``.

    A ``k x k`` kernel at rate ``r`` sees a ``(k - 1) r + 1`` square window
    with ``k^2`` weights; padding ``r (k - 1) / 2`` keeps the spatial size at
    stride 1.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Odd.
    rate : int
        Dilation rate ``r`` (1 is an ordinary convolution).
    bias : bool

    References
    ----------
    .. [1] L.-C. Chen, G. Papandreou, F. Schroff, H. Adam, "Rethinking Atrous
       Convolution for Semantic Image Segmentation", arXiv:1706.05587, 2017,
       Sec. 3.1 (Eq. 1).

    Examples
    --------
    >>> import torch
    >>> AtrousConv2d(1, 1, 3, rate=4)(torch.zeros(1, 1, 20, 17)).shape
    torch.Size([1, 1, 20, 17])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        rate: int = 1,
        bias: bool = True,
    ):
        if kernel_size % 2 != 1 or rate < 1:
            raise InvalidParameterError(
                f"kernel_size must be odd and rate >= 1, got {kernel_size} and {rate}"
            )
        pad = rate * (kernel_size - 1) // 2
        super().__init__(
            in_channels, out_channels, kernel_size, padding=pad, dilation=rate, bias=bias
        )


class _ImagePooling(nn.Module):
    # ASPP's image-level branch: global average, 1x1 conv, broadcast back.
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:  # torch's BN error names a 1x1 map, not this
            raise InvalidParameterError(
                "ASPP's image-pooling branch has one value per channel for a batch of one, "
                "which batch norm cannot normalise in training mode; train with batches of "
                "two or more, or call .eval() for inference"
            )
        y = F.relu(self.bn(self.conv(x.mean(dim=(2, 3), keepdim=True))))
        return y.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab v3): parallel rates plus image pooling.

    Branches: one ``1x1`` conv, one ``3x3`` atrous conv per rate, and an
    image-level branch (global average pooling, ``1x1`` conv, upsampling);
    each has ``out_channels`` filters with BN and ReLU.  Their concatenation
    is projected by a ``1x1`` conv (BN, ReLU) and dropout.

    Parameters
    ----------
    in_channels : int
    out_channels : int
        256 in the paper.
    rates : sequence of int
        ``(6, 12, 18)`` for output stride 16; double them for output stride 8.
    dropout : float
        After the projection (0.1 in the reference implementation).

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.

    Notes
    -----
    The image-pooling branch's BN sees one value per image and channel, so in
    training mode it needs a batch of two or more.

    References
    ----------
    .. [1] L.-C. Chen et al., "Rethinking Atrous Convolution for Semantic Image
       Segmentation", arXiv:1706.05587, 2017, Sec. 3.3 and Fig. 5.

    Examples
    --------
    >>> import torch
    >>> aspp = ASPP(64, 32, rates=(2, 4)).eval()
    >>> aspp(torch.zeros(1, 64, 7, 9)).shape
    torch.Size([1, 32, 7, 9])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        dropout: float = 0.1,
    ):
        super().__init__()
        branches: list[nn.Module] = [ConvBNReLU(in_channels, out_channels, 1)]
        branches += [ConvBNReLU(in_channels, out_channels, 3, dilation=r) for r in rates]
        branches.append(_ImagePooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(
            ConvBNReLU(out_channels * len(branches), out_channels, 1), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))
