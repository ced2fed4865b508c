"""Occlusion sensitivity maps (Zeiler & Fergus 2014)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from boda.core.numbers import real_number, whole_number
from boda.errors import InvalidParameterError
from boda.explain._base import Explainer, Target

__all__ = ["Occlusion"]


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    # numpy integers count; 0.5 or (8,) gave a raw TypeError / IndexError, True a 1.
    pair = (v, v) if whole_number(v) else tuple(v) if isinstance(v, (tuple, list)) else ()
    if len(pair) != 2 or not all(whole_number(n) and n >= 1 for n in pair):
        raise InvalidParameterError(
            f"{name} must be a whole number >= 1 or a pair of them (height, width), got {v!r}"
        )
    return int(pair[0]), int(pair[1])


def _starts(size: int, window: int, stride: int) -> list[int]:
    last = max(size - window, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:  # make the last window reach the border
        starts.append(last)
    return starts


def _check_baseline(baseline: float | str, blur_sigma: float) -> None:
    """A baseline is ``"blur"`` (with a finite ``blur_sigma`` > 0) or a finite number:
    NaN or infinity would fill every occluded or deleted pixel with it and give
    blank maps and curves instead of an error."""
    if isinstance(baseline, str) and baseline == "blur":
        if not (real_number(blur_sigma) and 0 < blur_sigma < math.inf):
            raise InvalidParameterError(f"blur_sigma must be > 0 and finite, got {blur_sigma!r}")
        return
    if not real_number(baseline) or not math.isfinite(baseline):
        raise InvalidParameterError(
            f"baseline must be 'blur' or a finite number, got {baseline!r}"
        )


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(pad, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class _MaskedBatches:
    """Occluded copies of the input in one reused buffer.

    Copying the whole input for every occluded sample (and again into the
    channels-last layout of the forward) took most of the time of small models
    at 224 px.  Each buffer row keeps a copy of one image; a batch writes the
    baseline into one window per row, and the next batch first writes the
    input back into those windows (rows that move to another image get the
    whole image instead).  The buffer is allocated in the layout
    :meth:`Explainer._forward_fast` gives the model, so no copy is made there
    either: the model sees the same values, in the same layout, as with fresh
    copies.  A model that writes into its input is detected by the buffer's
    version counter, and the buffer is then rebuilt.
    """

    def __init__(
        self, explainer: Explainer, x: torch.Tensor, fill: torch.Tensor,
        window: tuple[int, int], rows: int,
    ):
        self.explainer, self.x, self.fill, self.rows = explainer, x, fill, rows
        self.wh, self.ww = window
        self.buf: torch.Tensor | None = None
        self.owner: list[int] = []  # the image each row holds
        self.dirty: list[tuple[int, int] | None] = []  # its occluded window (y, x), if any
        self.version = -1
        self.channels = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
        self.dy = torch.arange(self.wh, device=x.device).view(1, 1, -1, 1)
        self.dx = torch.arange(self.ww, device=x.device).view(1, 1, 1, -1)

    def _layout(self) -> torch.memory_format | None:
        """The buffer layout; None until the first forward settled the model's layout."""
        e = self.explainer
        if e.channels_last and e._channels_last_ok is None and self.x.ndim == 4:
            return None  # the first batch goes in contiguous and is converted there, as before
        if e._channels_last_wanted(self.x):
            return torch.channels_last
        return torch.contiguous_format

    def _windows(self, src: torch.Tensor, jobs: list[tuple[int, int, int, int]]) -> None:
        """Copy each job's window ``(row, image, y, x)`` of image ``src[image]`` into ``row``."""
        if not jobs:
            return
        buf, wh, ww = self.buf, self.wh, self.ww
        assert buf is not None
        if wh * ww > 1024:  # big windows: plain slice copies beat gathering
            for n, i, y, xx in jobs:
                buf[n, :, y : y + wh, xx : xx + ww] = src[i, :, y : y + wh, xx : xx + ww]
            return
        t = torch.tensor(jobs, device=buf.device)
        rows, imgs = t[:, 0].view(-1, 1, 1, 1), t[:, 1].view(-1, 1, 1, 1)
        ys, xs = t[:, 2].view(-1, 1, 1, 1) + self.dy, t[:, 3].view(-1, 1, 1, 1) + self.dx
        buf[rows, self.channels, ys, xs] = src[imgs, self.channels, ys, xs]

    def occlude(self, chunk: list[tuple[int, int, int]]) -> torch.Tensor:
        """The occluded inputs of ``chunk`` (``(image, y, x)`` jobs), a view of the buffer.

        Use it before the next call: that call restores the windows in place.
        """
        x = self.x
        layout = self._layout() or torch.contiguous_format
        buf = self.buf
        if (
            buf is None
            or not buf.is_contiguous(memory_format=layout)
            or buf._version != self.version  # the model wrote into its input
        ):
            # A normal tensor (not an inference one), so in-place writes bump its version.
            with torch.inference_mode(False):
                shape = (max(len(chunk), self.rows), *x.shape[1:])
                buf = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=layout)
            self.buf, self.owner, self.dirty = buf, [-1] * shape[0], [None] * shape[0]
        restore, moved = [], []
        for n, (i, _, _) in enumerate(chunk):
            if self.owner[n] != i:
                moved.append(n)
            elif (d := self.dirty[n]) is not None:
                restore.append((n, i, *d))
        self._windows(x, restore)
        if moved:
            imgs = [chunk[n][0] for n in moved]
            if imgs[0] == imgs[-1]:  # one image (jobs come image by image): no gathered copy
                src = x[imgs[0] : imgs[0] + 1].expand(len(moved), *x.shape[1:])
            else:
                src = x.index_select(0, torch.tensor(imgs, device=x.device))
            if moved[-1] - moved[0] == len(moved) - 1:  # a run of rows: one copy
                buf[moved[0] : moved[-1] + 1].copy_(src)
            else:
                buf.index_copy_(0, torch.tensor(moved, device=x.device), src)
            for n in moved:
                self.owner[n] = chunk[n][0]
        self._windows(self.fill, [(n, i, y, xx) for n, (i, y, xx) in enumerate(chunk)])
        for n, (_, y, xx) in enumerate(chunk):
            self.dirty[n] = (y, xx)
        self.version = buf._version
        return buf[: len(chunk)]


class Occlusion(Explainer):
    r"""Occlusion sensitivity: how much the score drops when a window is hidden.

    A ``window`` slides over the input with ``stride``; inside it the input is
    replaced by a baseline (a constant in the model's input space, or a
    Gaussian-blurred copy of the input).  Each pixel's value is the mean of
    :math:`s^c(x) - s^c(x_{\text{occluded}})` over the windows covering it
    (Zeiler & Fergus 2014, Sec. 4.2 [1]_).  Positive values mark evidence for
    the class.  The last window of each row/column is shifted to reach the
    border, so every pixel is covered.

    Parameters
    ----------
    model, output_key
        See :class:`boda.explain.Explainer` (no layer is used).
    window : int or (int, int)
        Window height and width in input pixels.
    stride : int or (int, int)
        Step between windows, at most the window size (a larger one would leave
        pixels between the windows without a value).
    baseline : float or "blur"
        Value of occluded pixels (0 is the mean colour for inputs normalised
        by mean/std), or ``"blur"`` for a blurred copy of the input.
    blur_sigma : float
        Standard deviation of the blur baseline, in pixels.
    batch_size : int
        Occluded inputs per forward pass; results do not depend on it.
    softmax : bool
        Score with class probabilities instead of logits.
    precision : {"float32", "bfloat16"}
        Arithmetic of the occluded forwards (see :class:`boda.explain.ScoreCAM`);
        with ``"bfloat16"`` the clean score is computed the same way, so the
        differences compare like with like.

    Notes
    -----
    Occluded inputs run through the model without hooks, channels-last where
    the model accepts it, and on an inference copy once enough forwards ran
    (see :attr:`Explainer.inference_copy`); same values up to float rounding.
    The occluded inputs of a batch are a view of one buffer reused by the next
    batch (only the occluded windows are written and written back), so a model
    that keeps its input past the forward sees it change; one that writes into
    its input in place is detected and gets a rebuilt buffer.

    References
    ----------
    .. [1] M. D. Zeiler, R. Fergus, "Visualizing and Understanding
       Convolutional Networks", ECCV 2014.

    Examples
    --------
    >>> import torch
    >>> from boda.nn import resnet20
    >>> Occlusion(resnet20(), window=8, stride=4)(torch.rand(1, 3, 32, 32)).shape
    torch.Size([1, 32, 32])
    """

    uses_layer = False

    def __init__(
        self,
        model: nn.Module,
        *,
        window: int | tuple[int, int] = 8,
        stride: int | tuple[int, int] = 4,
        baseline: float | str = 0.0,
        blur_sigma: float = 4.0,
        batch_size: int = 64,
        softmax: bool = False,
        precision: str = "float32",
        output_key: str | int | None = None,
    ):
        super().__init__(model, output_key=output_key)
        self.precision = self._check_precision(precision)
        self.window = _pair(window, "window")
        self.stride = _pair(stride, "stride")
        if self.stride[0] > self.window[0] or self.stride[1] > self.window[1]:
            # Windows with gaps between them leave pixels no window covers; their 0 was
            # drawn as a measured "no effect" (captum's Occlusion refuses this too).
            raise InvalidParameterError(
                f"stride {self.stride} is larger than window {self.window}: pixels between "
                "the windows would get no value; give a stride at most the window size"
            )
        _check_baseline("blur", blur_sigma)  # blur_sigma: > 0 and finite, whatever the baseline
        _check_baseline(baseline, blur_sigma)
        if not (whole_number(batch_size) and batch_size >= 1):
            raise InvalidParameterError(
                f"batch_size must be a whole number >= 1, got {batch_size!r}"
            )
        self.baseline = baseline
        self.blur_sigma = float(blur_sigma)
        self.batch_size = int(batch_size)
        self.softmax = bool(softmax)

    def _explain(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        b, _, h, w = x.shape
        wh, ww = min(self.window[0], h), min(self.window[1], w)
        boxes = [
            (y, xx) for y in _starts(h, wh, self.stride[0]) for xx in _starts(w, ww, self.stride[1])
        ]
        with torch.inference_mode():
            logits = self._forward(x)
            classes = self._resolve_target(logits, target)
            self._remember(logits, classes)
            jobs = [(i, y, xx) for i in range(b) for (y, xx) in boxes]
            self._begin_batched(x, logits, -(-len(jobs) // self.batch_size))
            if self.precision != "float32":  # compare like with like
                logits = self._forward_fast(x)
            # Scores stay in the model dtype until subtracted (float64 models keep their digits).
            clean = self._scores(logits, classes, target, softmax=self.softmax)
            if self.baseline == "blur":
                fill = _gaussian_blur(x, self.blur_sigma)
            else:
                fill = torch.full_like(x, float(self.baseline))
            total = x.new_zeros(b, h, w, dtype=torch.float32)
            count = x.new_zeros(b, h, w, dtype=torch.float32)
            batches = _MaskedBatches(self, x, fill, (wh, ww), min(self.batch_size, len(jobs)))
            for start in range(0, len(jobs), self.batch_size):
                chunk = jobs[start : start + self.batch_size]
                idx = torch.tensor([j[0] for j in chunk], device=x.device)
                out = self._forward_fast(batches.occlude(chunk))
                sub = None if classes is None else classes[idx]
                drop = (clean[idx] - self._scores(out, sub, target, softmax=self.softmax)).float()
                for n, (i, y, xx) in enumerate(chunk):
                    total[i, y : y + wh, xx : xx + ww] += drop[n]
                    count[i, y : y + wh, xx : xx + ww] += 1
            return total / count.clamp_min(1)

    def __repr__(self) -> str:
        return (
            f"Occlusion(window={self.window}, stride={self.stride}, "
            f"baseline={self.baseline!r}, precision={self.precision!r})"
        )
