"""Landmark heatmaps: rendering, sub-pixel decoding, PCK / NME, CenterNet centres.

Coordinates are ``(x, y)`` in heatmap pixels, pixel ``(i, j)`` having its centre
at ``x = j``, ``y = i``.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F
from torch import Tensor

from boda.core.numbers import whole_number
from boda.detect._boxes import _positive
from boda.errors import InvalidParameterError


def _check_points(points: Tensor) -> Tensor:
    if not isinstance(points, Tensor) or points.ndim < 2 or points.shape[-1] != 2:
        shape = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
        raise InvalidParameterError(f"points must be (..., K, 2) (x, y) tensors, got {shape}.")
    return points.to(_float_dtype(points))


def _float_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64 (so ``gradcheck`` works); everything else is float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _check_size(size) -> tuple[int, int]:
    try:
        h, w = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        h = w = 0
    if h < 1 or w < 1:
        raise InvalidParameterError(f"size must be (H, W), two ints >= 1, got {size!r}.")
    return h, w


def render_heatmaps(
    points: Tensor, size: tuple[int, int], sigma: float = 2.0, kind: str = "gaussian"
) -> Tensor:
    r"""One heatmap per landmark, value 1 at the (sub-pixel) landmark.

    .. math::

        \text{gaussian: } h(p) = \exp\!\left(-\frac{\|p - c\|^2}{2\sigma^2}\right),
        \qquad \text{cauchy: } h(p) = \frac{1}{1 + \|p - c\|^2/\sigma^2}

    The Cauchy (Lorentzian) has heavier tails, which keeps a gradient far from
    the landmark.

    Parameters
    ----------
    points : Tensor
        ``(..., K, 2)`` landmark coordinates ``(x, y)``.
    size : (H, W)
    sigma : float
        Width in pixels.
    kind : {"gaussian", "cauchy"}

    Returns
    -------
    Tensor
        ``(..., K, H, W)``, float64 for float64 points, float32 otherwise.

    References
    ----------
    J. Tompson, A. Jain, Y. LeCun, C. Bregler, "Joint Training of a Convolutional
    Network and a Graphical Model for Human Pose Estimation", NeurIPS 2014.

    Examples
    --------
    >>> h = render_heatmaps(torch.tensor([[2.0, 1.0]]), (3, 5))
    >>> float(h[0, 1, 2])
    1.0
    """
    pts = _check_points(points)
    sigma = _positive(sigma, "sigma")
    if bool(torch.isnan(pts).any()):
        raise InvalidParameterError(
            "points hold NaN coordinates, which render NaN heatmaps; give missing "
            "landmarks a point far outside the map (or inf), whose heatmap is all zero."
        )
    h, w = _check_size(size)
    ys = torch.arange(h, dtype=pts.dtype, device=pts.device).view(h, 1)
    xs = torch.arange(w, dtype=pts.dtype, device=pts.device).view(1, w)
    dx = xs - pts[..., 0, None, None]
    dy = ys - pts[..., 1, None, None]
    d2 = dx * dx + dy * dy
    if kind == "gaussian":
        return torch.exp(-d2 / (2 * sigma * sigma))
    if kind == "cauchy":
        return 1.0 / (1.0 + d2 / (sigma * sigma))
    raise InvalidParameterError(f"kind must be 'gaussian' or 'cauchy', got {kind!r}.")


def _check_heatmaps(heatmaps: Tensor) -> None:
    if not isinstance(heatmaps, Tensor) or heatmaps.ndim < 2 or 0 in heatmaps.shape[-2:]:
        shape = tuple(heatmaps.shape) if isinstance(heatmaps, Tensor) else type(heatmaps).__name__
        raise InvalidParameterError(
            f"heatmaps must be (..., H, W) tensors, H, W >= 1, got {shape}."
        )


def decode_heatmaps(heatmaps: Tensor, method: str = "quadratic", beta: float = 1.0) -> Tensor:
    r"""Landmark coordinates from heatmaps, with sub-pixel refinement.

    - ``"argmax"``: the integer peak.
    - ``"quadratic"``: fit a parabola through the peak and its two neighbours
      along each axis, on the *log* heatmap (exact for a Gaussian, as in DARK,
      Zhang et al. 2020): :math:`\delta = \frac{f_{-1} - f_{+1}}{2(f_{-1} - 2f_0 + f_{+1})}`.
    - ``"soft_argmax"``: the expectation of the coordinates under
      :math:`\operatorname{softmax}(\beta h)` (integral regression, Sun et al.
      2018); differentiable. The input is treated as logits: pass a network's
      raw output, or ``log`` of a rendered map (a softmax over ``[0, 1]`` values
      is nearly flat and biased towards the image centre).

    Parameters
    ----------
    heatmaps : Tensor
        ``(..., H, W)``.
    method : {"quadratic", "argmax", "soft_argmax"}
    beta : float
        Softmax sharpness for ``"soft_argmax"``.

    Returns
    -------
    Tensor
        ``(..., 2)`` coordinates ``(x, y)``, float64 for float64 heatmaps,
        float32 otherwise.

    Raises
    ------
    InvalidParameterError
        NaN values with ``"argmax"`` / ``"quadratic"`` (``argmax`` would pick
        the NaN pixel).

    Notes
    -----
    A map without a peak (all equal, e.g. all zero for a landmark rendered far
    outside the image) decodes to its first pixel ``(0, 0)``, as HRNet's
    decoder does. Use the peak value ``heatmaps.amax((-2, -1))`` as the
    confidence to tell such maps apart.

    References
    ----------
    F. Zhang, X. Zhu, H. Dai, M. Ye, C. Zhu, "Distribution-Aware Coordinate
    Representation for Human Pose Estimation", CVPR 2020.
    X. Sun, B. Xiao, F. Wei, S. Liang, Y. Wei, "Integral Human Pose Regression",
    ECCV 2018.

    Examples
    --------
    >>> h = render_heatmaps(torch.tensor([[2.3, 1.6]]), (5, 6))
    >>> [round(v, 3) for v in decode_heatmaps(h)[0].tolist()]
    [2.3, 1.6]
    """
    _check_heatmaps(heatmaps)
    h, w = heatmaps.shape[-2:]
    dtype = _float_dtype(heatmaps)
    flat = heatmaps.reshape(-1, h * w).to(dtype)
    if method == "soft_argmax":
        beta = _positive(beta, "beta")
        p = torch.softmax(beta * flat, dim=1)
        xs = torch.arange(w, dtype=dtype, device=flat.device).repeat(h)
        ys = torch.arange(h, dtype=dtype, device=flat.device).repeat_interleave(w)
        out = torch.stack([(p * xs).sum(1), (p * ys).sum(1)], dim=1)
        return out.reshape(*heatmaps.shape[:-2], 2)
    if method not in ("argmax", "quadratic"):
        raise InvalidParameterError(
            f"method must be 'quadratic', 'argmax' or 'soft_argmax', got {method!r}."
        )
    if bool(torch.isnan(flat).any()):
        raise InvalidParameterError(
            "heatmaps hold NaN values; argmax would return the NaN pixel. Fix the "
            "network output (or use method='soft_argmax', which propagates the NaN)."
        )
    idx = flat.argmax(dim=1)
    py, px = idx // w, idx % w
    coords = torch.stack([px, py], dim=1).to(dtype)
    if method == "quadratic":
        # float64 logs: a sharp peak's neighbours can be float32 subnormals (8e-42 at
        # sigma 0.1), and a clamp at any larger value would flatten the parabola.
        flat64 = heatmaps.reshape(-1, h * w).double()
        logh = torch.log(flat64.clamp(min=torch.finfo(torch.float64).tiny)).reshape(-1, h, w)
        n = torch.arange(flat.shape[0])
        for axis, (pos, size) in enumerate(((px, w), (py, h))):
            if size < 3:
                continue
            # The parabola through three samples centred on the peak, or on its
            # neighbour when the peak is on the first or last row/column.
            c = pos.clamp(1, size - 2)
            if axis == 0:
                f0, fm, fp = logh[n, py, c], logh[n, py, c - 1], logh[n, py, c + 1]
            else:
                f0, fm, fp = logh[n, c, px], logh[n, c - 1, px], logh[n, c + 1, px]
            denom = fm - 2 * f0 + fp
            ok = denom < 0
            vertex = c + torch.where(ok, (fm - fp) / (2 * torch.where(ok, denom, -1.0)), 0.0)
            delta = torch.where(ok, vertex - pos, 0.0)
            coords[:, axis] += delta.clamp(-0.5, 0.5).to(dtype)
    return coords.reshape(*heatmaps.shape[:-2], 2)


def _distances(pred: Tensor, target: Tensor) -> Tensor:
    pred, target = _check_points(pred), _check_points(target)
    if pred.shape != target.shape:
        raise InvalidParameterError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}."
        )
    return torch.linalg.vector_norm(pred - target, dim=-1)


def _per_sample(normalizer: Tensor | float, d: Tensor, counted: Tensor | None = None) -> Tensor:
    """``normalizer`` (one number or ``(N,)``) shaped to broadcast over ``d`` ``(N, K)``.

    Each size must be finite and > 0: a zero one (two coincident eye corners, an
    empty box) made NME infinite or NaN and PCK count only exact hits, and a
    negative one a negative error. ``counted`` ``(N,)``: the samples that are
    scored (with a visible landmark); the others may have any size.
    """
    if d.numel() == 0:
        raise InvalidParameterError(
            f"no landmarks to score (pred has shape {tuple(d.shape) + (2,)})."
        )
    try:
        norm = torch.as_tensor(normalizer, dtype=d.dtype, device=d.device)
    except (TypeError, ValueError, RuntimeError):
        norm = None
    if norm is None or (norm.ndim != 0 and norm.shape != d.shape[:1]):
        shape = tuple(norm.shape) if norm is not None else type(normalizer).__name__
        raise InvalidParameterError(
            f"normalizer must be one number or ({d.shape[0]},), one size per sample, "
            f"got {shape}."
        )
    bad = ~(torch.isfinite(norm) & (norm > 0))
    if counted is not None and norm.ndim == 1:
        norm = torch.where(bad & ~counted, torch.ones_like(norm), norm)
        bad = bad & counted
    if bool(bad.any()):
        where = "" if norm.ndim == 0 else f" (sample {int(bad.nonzero()[0, 0])})"
        raise InvalidParameterError(
            f"normalizer sizes must be finite and > 0, got {norm[bad].flatten()[0].item()}"
            f"{where}; leave out samples without a valid size."
        )
    return norm if norm.ndim == 0 else norm.reshape(-1, *([1] * (d.ndim - 1)))


def pck(
    pred: Tensor,
    target: Tensor,
    normalizer: Tensor | float,
    alpha: float = 0.2,
    visible: Tensor | None = None,
) -> float:
    r"""Percentage of Correct Keypoints: share of landmarks within :math:`\alpha d`.

    A landmark is correct when :math:`\|\hat p - p\| \le \alpha\,d` with :math:`d`
    a per-sample size (torso or bounding-box size for PCK, head size for PCKh).

    Parameters
    ----------
    pred, target : Tensor
        ``(N, K, 2)``.
    normalizer : Tensor or float
        ``(N,)`` per-sample sizes, or one number.
    alpha : float
    visible : Tensor, optional
        ``(N, K)`` bool; invisible landmarks are not counted.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    InvalidParameterError
        Shapes that differ, a normalizer that is not one number or ``(N,)``
        or is not finite and > 0, no landmark, or no visible landmark at all.

    References
    ----------
    Y. Yang, D. Ramanan, "Articulated Human Detection with Flexible Mixtures of
    Parts", TPAMI 2013.

    Examples
    --------
    >>> t = torch.zeros(1, 2, 2)
    >>> pck(t + torch.tensor([[[1.0, 0], [5, 0]]]), t, normalizer=10.0, alpha=0.2)
    0.5
    """
    d = _distances(pred, target)
    alpha = _positive(alpha, "alpha")
    if visible is None:
        return float((d <= alpha * _per_sample(normalizer, d)).float().mean())
    if not isinstance(visible, Tensor) or visible.shape != d.shape:
        shape = tuple(visible.shape) if isinstance(visible, Tensor) else type(visible).__name__
        raise InvalidParameterError(
            f"visible must be a {tuple(d.shape)} bool tensor, got {shape}."
        )
    visible = visible.bool()
    if not bool(visible.any()):
        raise InvalidParameterError(
            "no landmark is visible, so PCK is undefined; leave such samples out."
        )
    # a sample without a visible landmark needs no size (e.g. no head box for PCKh)
    counted = visible.reshape(visible.shape[0], -1).any(dim=1)
    correct = (d <= alpha * _per_sample(normalizer, d, counted)).float()
    return float(correct[visible].mean())


def nme(pred: Tensor, target: Tensor, normalizer: Tensor | float) -> float:
    r"""Normalised mean error: :math:`\frac{1}{NK}\sum \|\hat p - p\| / d_n`.

    ``d`` is usually the inter-ocular distance (300-W) or the box size.

    Parameters
    ----------
    pred, target : Tensor
        ``(N, K, 2)``.
    normalizer : Tensor or float
        ``(N,)`` per-sample distances, or one number; finite and > 0.

    Returns
    -------
    float

    Raises
    ------
    InvalidParameterError
        Shapes that differ, no landmark, or a normalizer that is not one
        number or ``(N,)``, or is zero, negative or not finite.

    References
    ----------
    C. Sagonas et al., "300 Faces In-The-Wild Challenge", ICCV Workshops 2013.

    Examples
    --------
    >>> t = torch.zeros(1, 2, 2)
    >>> nme(t + torch.tensor([[[3.0, 4], [0, 0]]]), t, 10.0)
    0.25
    """
    d = _distances(pred, target)
    return float((d / _per_sample(normalizer, d)).mean())


def render_centernet_targets(
    boxes: Tensor,
    labels: Tensor,
    num_classes: int,
    size: tuple[int, int],
    stride: int = 4,
    sigma_scale: float = 1 / 6,
) -> tuple[Tensor, Tensor, Tensor]:
    """CenterNet training targets for one image.

    Each box puts a Gaussian peak (value 1) at its centre on its class's heatmap,
    with :math:`\\sigma_x = \\text{sigma\\_scale}\\cdot w` and likewise for ``y``
    (the box-shaped Gaussian of TTFNet; CenterNet's radius rule gives similar
    widths), overlapping peaks combined by maximum. The size map holds ``(w, h)``
    in image pixels and the offset map the sub-cell centre offset, at the centre
    cell.

    Parameters
    ----------
    boxes : Tensor
        ``(N, 4)`` in image pixels.
    labels : Tensor
        ``(N,)`` integer class indices in ``[0, num_classes)``. Drop ignored or
        crowd boxes (e.g. label -1) before rendering: they are refused, not
        drawn into a class.
    num_classes : int
    size : (H, W)
        Output (feature-map) size.
    stride : int
        Image pixels per output cell.
    sigma_scale : float

    Returns
    -------
    heatmap : Tensor
        ``(num_classes, H, W)``. Boxes whose centre falls outside the map are
        left out.
    wh : Tensor
        ``(2, H, W)``.
    offset : Tensor
        ``(2, H, W)``.

    References
    ----------
    X. Zhou, D. Wang, P. Krähenbühl, "Objects as Points", arXiv:1904.07850, 2019.
    Z. Liu et al., "Training-Time-Friendly Network for Real-Time Object
    Detection", AAAI 2020.
    """
    h, w = _check_size(size)
    _check_centernet_boxes(boxes, labels, num_classes, stride)
    sigma_scale = _positive(sigma_scale, "sigma_scale")
    heat = torch.zeros(num_classes, h, w)
    wh = torch.zeros(2, h, w)
    off = torch.zeros(2, h, w)
    ys = torch.arange(h, dtype=torch.float32).view(h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, w)
    for box, c in zip(boxes.float(), labels.tolist(), strict=True):
        bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
        cx, cy = float(box[0] + box[2]) / 2 / stride, float(box[1] + box[3]) / 2 / stride
        # floor, not int(): a centre at -0.25 cells is outside, not in cell 0
        # with an offset of -0.25 (offsets lie in [0, 1))
        ix, iy = math.floor(cx), math.floor(cy)
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        sx = max(sigma_scale * bw / stride, 0.5)
        sy = max(sigma_scale * bh / stride, 0.5)
        g = torch.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        heat[c] = torch.maximum(heat[c], g)
        wh[:, iy, ix] = torch.tensor([bw, bh])
        off[:, iy, ix] = torch.tensor([cx - ix, cy - iy])
    return heat, wh, off


def _check_centernet_boxes(boxes: Tensor, labels: Tensor, num_classes: int, stride) -> None:
    if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise InvalidParameterError(
            f"boxes must be an (N, 4) tensor (x1, y1, x2, y2), got {shape}."
        )
    if not isinstance(labels, Tensor) or labels.shape != boxes.shape[:1]:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise InvalidParameterError(
            f"labels must be a ({boxes.shape[0]},) tensor, one class per box, got {shape}."
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise InvalidParameterError(f"labels must be integer class indices, got {labels.dtype}.")
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise InvalidParameterError(f"num_classes must be an int >= 1, got {num_classes!r}.")
    if not stride > 0:
        raise InvalidParameterError(f"stride must be > 0, got {stride!r}.")
    # math.floor of a NaN / infinite centre raised a bare ValueError / OverflowError,
    # and an inverted box wrote a negative size into the wh target
    if boxes.is_floating_point() and not bool(torch.isfinite(boxes).all()):
        raise InvalidParameterError("boxes hold NaN or infinite coordinates; drop or fix them.")
    if bool((boxes[:, 2:] < boxes[:, :2]).any()):
        raise InvalidParameterError(
            "boxes need x2 >= x1 and y2 >= y1 (x1, y1, x2, y2); convert (x, y, w, h) boxes "
            "or reorder swapped corners first."
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InvalidParameterError(
            f"labels must lie in [0, {num_classes - 1}], got range "
            f"[{int(labels.min())}, {int(labels.max())}]; drop ignored boxes "
            "(e.g. label -1: boxes[labels >= 0]) before rendering."
        )


def decode_centernet(
    heatmap: Tensor,
    wh: Tensor,
    offset: Tensor | None = None,
    stride: int = 4,
    k: int = 100,
    score_threshold: float = 0.1,
) -> list[dict[str, Tensor]]:
    """Boxes from CenterNet outputs: 3x3 max-pool peaks, top-k, size regression.

    Parameters
    ----------
    heatmap : Tensor
        ``(B, C, H, W)`` class heatmaps in ``[0, 1]`` (after the sigmoid).
    wh : Tensor
        ``(B, 2, H, W)`` box width and height in image pixels.
    offset : Tensor, optional
        ``(B, 2, H, W)`` sub-cell centre offsets.
    stride : int
    k : int
        Peaks kept per image before the threshold.
    score_threshold : float

    Returns
    -------
    list of dict
        Per image: ``boxes`` ``(n, 4)``, ``scores`` ``(n,)``, ``labels`` ``(n,)``.

    References
    ----------
    X. Zhou, D. Wang, P. Krähenbühl, "Objects as Points", 2019, Sec. 4.
    """
    for name, t in (("heatmap", heatmap), ("wh", wh), ("offset", offset)):
        if not (isinstance(t, Tensor) or (name == "offset" and t is None)):
            raise InvalidParameterError(f"{name} must be a tensor, got {type(t).__name__}.")
    if not (whole_number(k) and k >= 1):
        raise InvalidParameterError(f"k (peaks kept per image) must be an int >= 1, got {k!r}.")
    _positive(stride, "stride")
    if heatmap.ndim != 4 or wh.shape != (heatmap.shape[0], 2, *heatmap.shape[2:]):
        raise InvalidParameterError(
            f"heatmap must be (B, C, H, W) and wh (B, 2, H, W), got {tuple(heatmap.shape)} "
            f"and {tuple(wh.shape)}."
        )
    if offset is not None and offset.shape != wh.shape:
        raise InvalidParameterError(
            f"offset must be (B, 2, H, W) like wh, {tuple(wh.shape)}, got "
            f"{tuple(offset.shape)}."
        )
    if heatmap.is_floating_point() and bool(torch.isnan(heatmap).any()):
        raise InvalidParameterError(
            "heatmap holds NaN values (a diverged network?); they would silently give no "
            "detections."
        )
    b, c, h, w = heatmap.shape
    k = int(k)
    peaks = heatmap * (F.max_pool2d(heatmap, 3, stride=1, padding=1) == heatmap)
    scores, idx = peaks.reshape(b, c * h * w).topk(min(k, c * h * w), dim=1)
    out = []
    for i in range(b):
        keep = scores[i] >= score_threshold
        s, ind = scores[i][keep], idx[i][keep]
        cls, pix = ind // (h * w), ind % (h * w)
        ys, xs = (pix // w).float(), (pix % w).float()
        if offset is not None:
            xs = xs + offset[i, 0].reshape(-1)[pix]
            ys = ys + offset[i, 1].reshape(-1)[pix]
        bw, bh = wh[i, 0].reshape(-1)[pix], wh[i, 1].reshape(-1)[pix]
        cx, cy = xs * stride, ys * stride
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
        out.append({"boxes": boxes, "scores": s, "labels": cls})
    return out
