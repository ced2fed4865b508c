"""Dense prediction: FCN-32s/16s/8s (Long et al. 2015), U-Net (Ronneberger et al.
2015) and DeepLab v3+ (Chen et al. 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from boda.errors import InvalidParameterError
from boda.models._backbone import build_backbone, feature_at_stride, fit_to
from boda.models._blocks import ASPP, ConvBNReLU, input_normalization
from boda.models._registry import register

__all__ = ["FCN", "UNet", "DeepLabV3Plus", "bilinear_kernel"]


def bilinear_kernel(channels: int, kernel_size: int, device=None) -> Tensor:
    """``(C, C, k, k)`` weights making a transposed convolution bilinear upsampling.

    Channel ``c`` maps to channel ``c`` only, with the separable tent
    ``(1 - |i - center| / f)`` where ``f = ceil(k / 2)``; used to initialise
    FCN's learned upsampling (Long et al. 2015, Sec. 3.3).
    """
    f = (kernel_size + 1) // 2
    center = f - 1 if kernel_size % 2 == 1 else f - 0.5
    r = torch.arange(kernel_size, dtype=torch.float32, device=device)
    tent = 1 - (r - center).abs() / f
    w = torch.zeros(channels, channels, kernel_size, kernel_size, device=device)
    idx = torch.arange(channels, device=device)
    w[idx, idx] = tent[:, None] * tent[None, :]
    return w


class _Up2(nn.ConvTranspose2d):
    # Learned 2x upsampling, initialised to bilinear interpolation.
    def __init__(self, channels: int):
        super().__init__(channels, channels, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, 4, device=self.weight.device))


class FCN(nn.Module):
    """Fully convolutional network head (FCN-32s, -16s or -8s) over a backbone.

    The stride-32 features go through a ``3x3`` conv (BN, ReLU, dropout) and
    a ``1x1`` class scorer.  FCN-16s adds a ``1x1`` score of the stride-16
    features to the 2x-upsampled coarse scores; FCN-8s then does the same
    with the stride-8 features.  The 2x upsamplings are transposed
    convolutions initialised to bilinear interpolation and learned; the skip
    scorers start at zero so training begins from the coarser net (Sec. 4.2);
    the last upsampling to the input size is fixed bilinear interpolation.

    Parameters
    ----------
    num_classes : int
    variant : {"32s", "16s", "8s"}
    backbone : str or nn.Module
        A registry name (``"resnet18"``, ``"resnet50"``, ``"vgg16"`` as in the
        paper, ...) or a module with ``forward_features`` /
        ``feature_channels`` / ``feature_strides`` maps at strides 8, 16, 32.
    dropout : float
    mean, std : sequence of float, optional
        Input normalisation stored as buffers (applied before the backbone).

    Notes
    -----
    The paper turns VGG-16's ``fc6``/``fc7`` into ``7x7`` and ``1x1``
    convolutions with 4096 channels before the scorer; here the stride-32
    head is a light ``3x3`` convolution (``C/4`` channels) so any backbone
    fits, and ``fcn8s`` over ``"vgg16"`` is the paper's skip structure
    rather than its exact network.

    Shape
    -----
    ``(B, 3, H, W) -> (B, num_classes, H, W)`` for any ``H, W >= 32``: the
    upsampled coarse scores are cropped or edge-padded at the bottom/right to
    the finer map (sizes differ by a pixel for odd inputs), and the final
    interpolation targets ``(H, W)`` exactly (the paper pads and crops).

    References
    ----------
    .. [1] J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for
       Semantic Segmentation", CVPR 2015, Sec. 3.3 and 4.2, Fig. 3.

    Examples
    --------
    >>> import torch
    >>> net = FCN(5, "8s", backbone="resnet18").eval()
    >>> net(torch.zeros(1, 3, 65, 47)).shape
    torch.Size([1, 5, 65, 47])
    """

    def __init__(
        self,
        num_classes: int = 21,
        variant: str = "8s",
        backbone: str | nn.Module = "resnet18",
        dropout: float = 0.1,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if variant not in ("32s", "16s", "8s"):
            raise InvalidParameterError(f"variant must be '32s', '16s' or '8s', got {variant!r}")
        self.variant = variant
        self.normalize = input_normalization(mean, std)
        self.backbone = build_backbone(backbone)
        self._names = {s: feature_at_stride(self.backbone, s) for s in (8, 16, 32)}
        ch = self.backbone.feature_channels
        c32 = ch[self._names[32]]
        self.head = nn.Sequential(
            ConvBNReLU(c32, max(c32 // 4, num_classes), 3),
            nn.Dropout(dropout),
            nn.Conv2d(max(c32 // 4, num_classes), num_classes, 1),
        )
        skips = {"32s": (), "16s": (16,), "8s": (16, 8)}[variant]
        self.score = nn.ModuleDict()
        self.up = nn.ModuleDict()
        for s in skips:
            conv = nn.Conv2d(ch[self._names[s]], num_classes, 1)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.score[f"s{s}"] = conv
            self.up[f"s{s}"] = _Up2(num_classes)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        feats = self.backbone.forward_features(self.normalize(x))
        y = self.head(feats[self._names[32]])
        for key, score in self.score.items():
            skip = score(feats[self._names[int(key[1:])]])
            y = fit_to(self.up[key](y), skip.shape[-2:]) + skip
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, batch_norm: bool):
        layers: list[nn.Module] = []
        for c in (cin, cout):
            layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net: contracting path, expanding path, skip connections by concatenation.

    Each level has two ``3x3`` convolutions (ReLU, optional BN); going down
    halves the size with a ``2x2`` max pool and doubles the channels; going up
    uses a ``2x2`` up-convolution (transposed, stride 2) that halves the
    channels, concatenates the encoder map of that level, and applies two
    ``3x3`` convolutions.  A ``1x1`` convolution gives the class scores.
    With ``base_channels=64, depth=4`` this is the paper's Fig. 1 layout
    (64 to 1024 channels).

    Parameters
    ----------
    in_channels : int
    num_classes : int
    base_channels : int
        Channels of the first level.
    depth : int
        Number of 2x downsamplings.
    batch_norm : bool
        BN after each convolution (not in the paper).
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, num_classes, H, W)`` for any ``H, W``.

    Notes
    -----
    The paper uses unpadded convolutions, so its output is smaller than its
    input (572 -> 388) and large images are processed as overlapping tiles
    whose missing context is mirrored (Sec. 2, Fig. 2).  Here the
    convolutions are zero-padded ('same') and the size problem is solved once
    at the door: the input is padded at the bottom and right to the next
    multiple of ``2 ** depth`` by mirroring (reflect; edge replication when
    the image is too small to mirror), so every pooling divides evenly and
    every skip connection matches its decoder map exactly; the output is then
    cropped back to ``H x W``.  E.g. ``101 x 75`` with depth 4 runs at
    ``112 x 80``.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks
       for Biomedical Image Segmentation", MICCAI 2015, Sec. 2 and Fig. 1-2.

    Examples
    --------
    >>> import torch
    >>> net = UNet(1, 2, base_channels=8, depth=3).eval()
    >>> net(torch.zeros(1, 1, 101, 75)).shape
    torch.Size([1, 2, 101, 75])
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        batch_norm: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if depth < 1:
            raise InvalidParameterError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        self.normalize = input_normalization(mean, std)
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_DoubleConv(in_channels, widths[0], batch_norm)])
        self.down.extend(_DoubleConv(widths[i], widths[i + 1], batch_norm) for i in range(depth))
        self.upconv = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.up = nn.ModuleList(
            _DoubleConv(2 * widths[i], widths[i], batch_norm) for i in reversed(range(depth))
        )
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = -h % m, -w % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        x = self.normalize(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for upconv, block in zip(self.upconv, self.up, strict=True):
            x = block(torch.cat([skips.pop(), upconv(x)], dim=1))
        return self.classifier(x)[..., :h, :w]


class DeepLabV3Plus(nn.Module):
    """DeepLab v3+: ASPP encoder over a dilated backbone, decoder with a low-level skip.

    Encoder: backbone at output stride 16 (or 8), :class:`ASPP` with 256
    channels.  Decoder: the stride-4 features reduced to 48 channels by a
    ``1x1`` conv; the ASPP output bilinearly upsampled to their size and
    concatenated; two ``3x3`` convs with 256 channels; a ``1x1`` class scorer;
    bilinear upsampling to the input size.

    Parameters
    ----------
    num_classes : int
    backbone : str or nn.Module
        A ResNet registry name (built with its last stride(s) replaced by
        dilation) or a module with ``forward_features`` /
        ``feature_channels`` / ``feature_strides`` (then used as it is).
    output_stride : {16, 8}
        For a backbone given by name; the ASPP rates are ``(6, 12, 18)`` at
        16 and doubled at 8 (DeepLab v3, Sec. 3.3).
    low_level_channels : int
        48 in the paper (Sec. 4.1, Table 1).
    mean, std : sequence of float, optional
        Input normalisation stored as buffers.

    Shape
    -----
    ``(B, 3, H, W) -> (B, num_classes, H, W)``.  In training mode the ASPP
    image-pooling branch needs a batch of at least two.

    References
    ----------
    .. [1] L.-C. Chen, Y. Zhu, G. Papandreou, F. Schroff, H. Adam,
       "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
       Segmentation", ECCV 2018, Sec. 3.1 and Fig. 2.
    .. [2] L.-C. Chen, G. Papandreou, F. Schroff, H. Adam, "Rethinking Atrous
       Convolution for Semantic Image Segmentation", arXiv:1706.05587, 2017.

    Examples
    --------
    >>> import torch
    >>> net = DeepLabV3Plus(3, backbone="resnet18").eval()
    >>> net(torch.zeros(1, 3, 77, 61)).shape
    torch.Size([1, 3, 77, 61])
    """

    def __init__(
        self,
        num_classes: int = 21,
        backbone: str | nn.Module = "resnet50",
        output_stride: int = 16,
        low_level_channels: int = 48,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if output_stride not in (8, 16):
            raise InvalidParameterError(f"output_stride must be 8 or 16, got {output_stride}")
        self.normalize = input_normalization(mean, std)
        if isinstance(backbone, str):
            if not backbone.startswith(("resnet", "se-resnet")) or backbone.endswith("-fpn"):
                raise InvalidParameterError(
                    f"DeepLab v3+ needs a ResNet backbone (its last stages are dilated), "
                    f"got {backbone!r}; use e.g. backbone='resnet50', or pass a module"
                )
            dilate = (False, False, True) if output_stride == 16 else (False, True, True)
            self.backbone = build_backbone(backbone, replace_stride_with_dilation=dilate)
        else:
            self.backbone = build_backbone(backbone)
        strides = self.backbone.feature_strides
        self._low = feature_at_stride(self.backbone, 4, deepest=False)
        self._high = max(strides, key=lambda n: (strides[n], list(strides).index(n)))
        ch = self.backbone.feature_channels
        rates = (6, 12, 18) if strides[self._high] >= 16 else (12, 24, 36)
        self.aspp = ASPP(ch[self._high], 256, rates)
        self.reduce = ConvBNReLU(ch[self._low], low_level_channels, 1)
        self.decoder = nn.Sequential(
            ConvBNReLU(256 + low_level_channels, 256, 3),
            ConvBNReLU(256, 256, 3),
            nn.Conv2d(256, num_classes, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        feats = self.backbone.forward_features(self.normalize(x))
        low = self.reduce(feats[self._low])
        high = F.interpolate(
            self.aspp(feats[self._high]), size=low.shape[-2:], mode="bilinear", align_corners=False
        )
        y = self.decoder(torch.cat([high, low], dim=1))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


def _register_fcn(variant: str) -> None:
    def build(
        num_classes: int = 21,
        backbone: str | nn.Module = "resnet18",
        dropout: float = 0.1,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> FCN:
        return FCN(num_classes, variant, backbone, dropout, mean, std)

    build.__doc__ = f"FCN-{variant} head (Long et al. 2015) over a backbone (default resnet18)."
    build.__name__ = f"fcn{variant}"
    register(f"fcn{variant}", task="segmentation")(build)


for _variant in ("32s", "16s", "8s"):
    _register_fcn(_variant)


@register("unet", task="segmentation")
def unet(
    in_channels: int = 3,
    num_classes: int = 2,
    base_channels: int = 64,
    depth: int = 4,
    batch_norm: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> UNet:
    """U-Net (Ronneberger et al. 2015), same-size output for any input size."""
    return UNet(in_channels, num_classes, base_channels, depth, batch_norm, mean, std)


@register("deeplabv3plus", task="segmentation")
def deeplabv3plus(
    num_classes: int = 21,
    backbone: str | nn.Module = "resnet50",
    output_stride: int = 16,
    low_level_channels: int = 48,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> DeepLabV3Plus:
    """DeepLab v3+ (Chen et al. 2018): ASPP + decoder with a low-level skip."""
    return DeepLabV3Plus(num_classes, backbone, output_stride, low_level_channels, mean, std)
