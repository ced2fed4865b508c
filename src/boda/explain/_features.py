"""Looking at a layer's features: receptive fields, maximally activating patches, neighbours."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from boda.errors import BodaError, InvalidParameterError, ModelError
from boda.explain._base import _frozen, resolve_layer
from boda.nn import image_to_tensor, input_spec

__all__ = [
    "IMAGE_SUFFIXES",
    "receptive_field",
    "layer_features",
    "Patch",
    "PatchSearch",
    "top_activating_patches",
    "FeatureIndex",
]

#: File suffixes scanned in folders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class _LinearReLU(TorchFunctionMode):
    """ReLUs act as identities and max pooling as average pooling: gradients then
    reach the whole theoretical receptive field (a max passes its gradient to one
    pixel of each window, which shrank the boxes of every network with max
    pooling)."""

    _RELUS = {torch.relu, torch.nn.functional.relu, torch.Tensor.relu}
    _INPLACE = {torch.relu_, torch.nn.functional.relu_, torch.Tensor.relu_}
    _POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._RELUS or func in self._INPLACE:
            return args[0]
        name = getattr(func, "__name__", "").lstrip("_")
        if name.startswith(("max_pool", "adaptive_max_pool")):
            out = self._average_instead(name, args, kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)

    def _average_instead(self, name: str, args: tuple, kwargs: dict):
        """The average pooling with the same windows, or None where there is none."""
        import torch.nn.functional as F

        dims = next((c for c in name if c.isdigit()), "2")
        with_indices = name.endswith("with_indices") or kwargs.get("return_indices", False)
        if name.startswith("adaptive"):
            out = getattr(F, f"adaptive_avg_pool{dims}d")(args[0], kwargs.get("output_size",
                                                                              *args[1:2]))
        else:
            given = dict(zip(self._POOL, args, strict=False)) | kwargs
            dilation = given.get("dilation", 1)
            if dilation not in (1, (1,) * int(dims)):
                return None  # average pooling has no dilation: keep the max
            kernel = given["kernel_size"]
            out = getattr(F, f"avg_pool{dims}d")(
                given["input"], kernel, given.get("stride") or kernel, given.get("padding", 0),
                given.get("ceil_mode", False), True,
            )
        return (out, torch.zeros_like(out, dtype=torch.long)) if with_indices else out


def _layer_output(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    store: dict[str, torch.Tensor] = {}

    def hook(_m, _i, out):
        first = out[0] if isinstance(out, (tuple, list)) else out
        # A copy: a later in-place op would rewrite the layer's output (see _capture_layer).
        store["a"] = first.clone() if isinstance(first, torch.Tensor) else first

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    if "a" not in store:
        raise ModelError("the layer was not used in the forward pass")
    return store["a"]


def receptive_field(
    model: nn.Module,
    layer: str | nn.Module,
    input_size: tuple[int, int],
    positions: Sequence[tuple[int, int]],
    *,
    channels: int = 3,
) -> list[tuple[int, int, int, int]]:
    """Input boxes ``(top, left, bottom, right)`` (exclusive ends) seen by layer units.

    The box of unit ``(y, x)`` is the bounding box of the input pixels its
    value depends on, found by back-propagating from that unit with ReLUs made
    linear (so no unit is switched off) on a random input.  Boxes are clipped
    to the image (padding shrinks them at the borders).

    Examples
    --------
    >>> from boda.nn import resnet20
    >>> receptive_field(resnet20(), "conv1", (32, 32), [(10, 10)])
    [(9, 9, 12, 12)]
    """
    _, mod = resolve_layer(model, layer)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, channels, int(input_size[0]), int(input_size[1]), generator=gen)
    boxes = []
    with torch.inference_mode(False), torch.enable_grad(), _frozen(model), _LinearReLU():
        for y, x in positions:
            xi = x0.clone().requires_grad_(True)
            out = _layer_output(model, mod, xi)
            if out.ndim != 4:
                raise ModelError(
                    f"layer output has shape {tuple(out.shape)}, expected (B, C, h, w)"
                )
            h, w = out.shape[2:]
            if not (0 <= int(y) < h and 0 <= int(x) < w):
                raise InvalidParameterError(
                    f"unit ({y}, {x}) is outside the layer's {h}x{w} map; "
                    f"give 0 <= y < {h} and 0 <= x < {w}"
                )
            (g,) = torch.autograd.grad(out[0, :, int(y), int(x)].sum(), xi)
            nz = g[0].abs().sum(0).nonzero()
            if nz.numel() == 0:
                raise ModelError(f"unit ({y}, {x}) does not depend on the input")
            top, left = nz.min(0).values.tolist()
            bottom, right = (nz.max(0).values + 1).tolist()
            boxes.append((top, left, bottom, right))
    return boxes


def layer_features(
    model: nn.Module,
    layer: str | nn.Module,
    x: torch.Tensor,
    *,
    pool: str = "avg",
    batch_size: int = 64,
) -> torch.Tensor:
    """Feature vectors ``(B, D)`` of a layer: its output pooled over space.

    ``pool`` is ``"avg"`` (global average), ``"max"`` or ``"flatten"``.
    Runs under :func:`torch.inference_mode` in eval mode; state restored.
    """
    if pool not in ("avg", "max", "flatten"):
        raise InvalidParameterError(f"pool must be 'avg', 'max' or 'flatten', got {pool!r}")
    _, mod = resolve_layer(model, layer)
    parts = []
    with torch.inference_mode(), _frozen(model):
        for s in range(0, x.shape[0], int(batch_size)):
            a = _layer_output(model, mod, x[s : s + int(batch_size)])
            if pool == "flatten" or a.ndim == 2:
                parts.append(a.flatten(1))
            elif pool == "avg":
                parts.append(a.flatten(2).mean(-1))
            else:
                parts.append(a.flatten(2).amax(-1))
    return torch.cat(parts).float()


def _iter_images(
    images: str | Path | Sequence[str | Path | np.ndarray],
) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
    """Yield ``(name, image or None, error or None)``; unreadable files are reported, not raised.

    Arrays have no name (None): :func:`_load_batch` numbers them.
    """
    from boda.io import read_image

    if isinstance(images, (str, Path)):
        root = Path(images)
        if not root.is_dir():
            raise InvalidParameterError(f"{str(root)!r} is not a folder")
        items: list = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        items = list(images)
    for item in items:
        if isinstance(item, np.ndarray):
            yield None, item, None
            continue
        try:
            yield str(item), read_image(item), None
        except BodaError as exc:
            yield str(item), None, str(exc)


def _load_batch(
    images, size: tuple[int, int], mean, std, first_index: int = 0, channels: int | None = None
) -> tuple[list[str], torch.Tensor, list[np.ndarray], list[tuple[str, str]]]:
    """Load ``images``; array ``k`` of the batch is named ``image[first_index + k]``.

    ``channels=1`` (a gray model) turns colour images to gray (Rec. 601 luma);
    otherwise gray images are repeated to RGB.  The arrays kept for crops are
    always RGB.
    """
    names, x, arrays, skipped = _load_chunk(
        _iter_images(images), size, mean, std, first_index, channels, keep_arrays=True
    )
    if not names:
        raise InvalidParameterError("no readable images were given")
    return names, x, arrays, skipped


def _load_chunk(
    items: Iterable[tuple[str | None, np.ndarray | None, str | None]],
    size: tuple[int, int],
    mean,
    std,
    first_index: int,
    channels: int | None,
    *,
    keep_arrays: bool,
) -> tuple[list[str], torch.Tensor, list[np.ndarray], list[tuple[str, str]]]:
    """The model inputs of ``items`` (from :func:`_iter_images`); see :func:`_load_batch`."""
    from boda.core.image import to_gray

    names, tensors, arrays, skipped = [], [], [], []
    for name, img, err in items:
        if img is None:
            skipped.append((name, err or "unreadable"))
            continue
        rgb = image_to_tensor(img, size=size)
        if rgb.shape[1] == 1:
            rgb = rgb.expand(-1, 3, -1, -1)
        t = image_to_tensor(to_gray(img), size=size) if channels == 1 else rgb
        names.append(name if name is not None else f"image[{first_index + len(names)}]")
        if keep_arrays:
            arrays.append(np.ascontiguousarray(rgb[0].permute(1, 2, 0).clamp(0, 1).numpy()))
        tensors.append(t)
    if not tensors:
        return names, torch.zeros(0), arrays, skipped
    x = torch.cat(tensors)
    if mean is not None and std is not None:
        from boda.nn import normalize

        x = normalize(x, mean, std)
    return names, x, arrays, skipped


@dataclass
class Patch:
    """One maximally activating patch.

    Attributes
    ----------
    source : str
        File (or ``image[i]``) it comes from.
    activation : float
        The unit's activation.
    position : (int, int)
        ``(y, x)`` of the unit in the layer's map.
    box : (int, int, int, int)
        ``(top, left, bottom, right)`` in the resized input.
    crop : numpy.ndarray
        The receptive-field crop of the resized image, float32 ``(h, w, 3)``.
    """

    source: str
    activation: float
    position: tuple[int, int]
    box: tuple[int, int, int, int]
    crop: np.ndarray


@dataclass
class PatchSearch:
    """Result of :func:`top_activating_patches`: the patches, best first, and skipped files."""

    patches: list[Patch]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def top_activating_patches(
    model: nn.Module,
    layer: str | nn.Module,
    channel: int,
    images: str | Path | Sequence[str | Path | np.ndarray],
    *,
    size: tuple[int, int] = (32, 32),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    k: int = 9,
    batch_size: int = 64,
) -> PatchSearch:
    """Scan images for the receptive-field crops that excite one channel most.

    For every image (resized to ``size``, normalised with ``mean``/``std``)
    the position of the channel's largest activation is found; the ``k``
    strongest over all images are returned with the crop of the input that
    unit sees (Zeiler & Fergus 2014, Sec. 2.1; Girshick et al. 2014, Sec. 3.1).
    Unreadable files are skipped and listed.

    Parameters
    ----------
    model, layer
        The network and the layer (name or module).
    channel : int
        Channel of the layer.
    images : folder, or sequence of paths / arrays
        What to scan (folders recursively, by suffix).
    size, mean, std
        Preprocessing for the model.
    k : int
        Patches to return (one per image at most).
    batch_size : int
        Images per forward pass (memory against speed; results do not depend on it).

    Returns
    -------
    PatchSearch
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be a whole number >= 1, got {k!r}")
    names, x, arrays, skipped = _load_batch(
        images, size, mean, std, channels=input_spec(model)[0]
    )
    _, mod = resolve_layer(model, layer)
    best: list[tuple[float, int, int, int]] = []
    with torch.inference_mode(), _frozen(model):
        for s in range(0, x.shape[0], int(batch_size)):
            a = _layer_output(model, mod, x[s : s + int(batch_size)])
            if a.ndim != 4 or not 0 <= int(channel) < a.shape[1]:
                raise InvalidParameterError(
                    f"channel {channel} is not in the layer output of shape {tuple(a.shape)}"
                )
            m = a[:, int(channel)].flatten(1)
            vals, idx = m.max(dim=1)
            w = a.shape[3]
            for j in range(m.shape[0]):
                p = int(idx[j])
                best.append((float(vals[j]), s + j, p // w, p % w))
    best.sort(key=lambda t: -t[0])
    best = best[: int(k)]
    boxes = receptive_field(
        model, mod, size, [(y, xx) for _, _, y, xx in best], channels=x.shape[1]
    )
    patches = [
        Patch(
            source=names[i],
            activation=v,
            position=(y, xx),
            box=box,
            crop=arrays[i][box[0] : box[2], box[1] : box[3]].copy(),
        )
        for (v, i, y, xx), box in zip(best, boxes, strict=True)
    ]
    return PatchSearch(patches=patches, skipped=skipped)


#: Images decoded and fed to the model at a time by :meth:`FeatureIndex.embed`.
_EMBED_CHUNK = 64

#: Entries of the query x index similarity matrix held at once by
#: :meth:`FeatureIndex.query` (float32: 128 MB).
_SIMILARITY_BUDGET = 1 << 25


class FeatureIndex:
    """Nearest-neighbour search of images by a layer's (pooled) features.

    Exact cosine (default) or Euclidean search in numpy-free torch.  Memory:
    the index holds one ``D``-float vector per image (ResNet-20's ``layer3``:
    64 floats); adding images decodes them 64 at a time, and a query holds at
    most 128 MB of similarities at once, so 100 000 images against 100 000
    queries is exact, just slow (a brute-force product: at this scale an
    approximate index such as FAISS is the better tool).

    Parameters
    ----------
    model, layer
        Feature extractor (see :func:`layer_features`).
    size, mean, std
        Preprocessing for images given as files or arrays.
    metric : {"cosine", "euclidean"}
        Similarity used by :meth:`query`.

    Examples
    --------
    >>> import numpy as np
    >>> from boda.nn import resnet20
    >>> rng = np.random.default_rng(0)
    >>> idx = FeatureIndex(resnet20(), "layer3").add([rng.random((32, 32, 3)) for _ in range(3)])
    >>> idx.query(idx.vectors[1:2], k=1)[0][0][0]
    'image[1]'
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module,
        *,
        size: tuple[int, int] = (32, 32),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        metric: str = "cosine",
    ):
        if metric not in ("cosine", "euclidean"):
            raise InvalidParameterError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
        self.model, self.layer = model, layer
        self.size, self.mean, self.std, self.metric = size, mean, std, metric
        self.names: list[str] = []
        self.vectors = torch.zeros(0, 0)
        self.skipped: list[tuple[str, str]] = []

    def embed(self, images, *, first_index: int = 0) -> tuple[list[str], torch.Tensor]:
        """Feature vectors of images (folder, paths or arrays) or of a ``(B, C, H, W)`` tensor.

        Files keep their paths as names; arrays and tensor rows are called
        ``image[first_index + k]``, ``k`` their place among the embedded images.
        """
        if isinstance(images, torch.Tensor):
            return [f"image[{first_index + i}]" for i in range(images.shape[0])], layer_features(
                self.model, self.layer, images
            )
        # A chunk of images at a time: the decoded images and model inputs of a
        # whole folder would take ~2 MB per 224 px image (20 000 images: 39 GB).
        channels = input_spec(self.model)[0]
        names: list[str] = []
        parts: list[torch.Tensor] = []
        items = _iter_images(images)
        while chunk := list(itertools.islice(items, _EMBED_CHUNK)):
            chunk_names, x, _, skipped = _load_chunk(
                chunk, self.size, self.mean, self.std, first_index + len(names), channels,
                keep_arrays=False,
            )
            self.skipped.extend(skipped)
            if chunk_names:
                names.extend(chunk_names)
                parts.append(layer_features(self.model, self.layer, x))
        if not names:
            raise InvalidParameterError("no readable images were given")
        return names, torch.cat(parts)

    def add(self, images) -> FeatureIndex:
        """Add images to the index; returns the index."""
        # Arrays are named by their place in the index: image[len(names) + k].
        names, vec = self.embed(images, first_index=len(self.names))
        self.names.extend(names)
        self.vectors = vec if self.vectors.numel() == 0 else torch.cat([self.vectors, vec])
        return self

    def query(self, images, k: int = 5) -> list[list[tuple[str, float]]]:
        """For each query, the ``k`` nearest indexed images as ``(name, similarity)``.

        Similarity is the cosine (``1`` = same direction) or the negative
        Euclidean distance, best first.
        """
        if not self.names:
            raise InvalidParameterError("the index is empty; add images first")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidParameterError(f"k must be a whole number >= 1, got {k!r}")
        q = images if isinstance(images, torch.Tensor) and images.ndim == 2 else self.embed(
            images
        )[1]
        kk = min(int(k), len(self.names))
        index = self.vectors
        if self.metric == "cosine":
            q = torch.nn.functional.normalize(q, dim=1)
            index = torch.nn.functional.normalize(index, dim=1)
        # Queries in chunks, so the similarity matrix in memory stays near
        # _SIMILARITY_BUDGET entries (10 000 queries x 100 000 images was 5 GB).
        step = max(1, _SIMILARITY_BUDGET // len(self.names))
        results: list[list[tuple[str, float]]] = []
        for start in range(0, q.shape[0], step):
            rows = q[start : start + step]
            if self.metric == "cosine":
                sim = rows @ index.T
            else:
                # Exact distances: above 25 rows cdist's default uses |a|^2 + |b|^2 - 2ab,
                # which cancels badly for nearby vectors far from the origin.
                sim = -torch.cdist(rows, index, compute_mode="donot_use_mm_for_euclid_dist")
            vals, idx = sim.topk(kk, dim=1)
            results.extend(
                [(self.names[int(j)], float(v)) for v, j in zip(vr, ir, strict=True)]
                for vr, ir in zip(vals, idx, strict=True)
            )
        return results
