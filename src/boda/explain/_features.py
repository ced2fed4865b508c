"""Looking at a layer's features: receptive fields, maximally activating patches, neighbours."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from boda.core.numbers import whole_number
from boda.errors import BodaError, InvalidParameterError, ModelError, OutputError
from boda.explain import _vector_search
from boda.explain._base import _as_model_input, _frozen, resolve_layer
from boda.io import DEFAULT_MAX_PIXELS, open_output
from boda.nn import image_to_tensor, input_spec

__all__ = [
    "receptive_field",
    "layer_features",
    "Patch",
    "PatchSearch",
    "top_activating_patches",
    "FeatureIndex",
]


class _LinearReLU(TorchFunctionMode):
    """ReLUs (and the clipped ReLU6 / Hardtanh) act as identities and max pooling as
    average pooling (a dilated one as a sum over its windows): gradients then reach
    the whole theoretical receptive field (a max passes its gradient to one pixel of
    each window, which shrank the boxes of every network with max pooling; a ReLU6
    saturated at the random input passed none, and its unit was said to depend on
    nothing)."""

    _RELUS = {torch.relu, torch.nn.functional.relu, torch.Tensor.relu,
              torch.nn.functional.relu6, torch.nn.functional.hardtanh}  # fmt: skip
    _INPLACE = {torch.relu_, torch.nn.functional.relu_, torch.Tensor.relu_}
    _POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._RELUS or func in self._INPLACE:
            return args[0] if args else kwargs["input"]
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
            kernel = given["kernel_size"]
            if given.get("dilation", 1) not in (1, (1,) * int(dims)):
                out = self._dilated_window_sum(int(dims), given)
            else:
                out = getattr(F, f"avg_pool{dims}d")(
                    given["input"], kernel, given.get("stride") or kernel,
                    given.get("padding", 0), given.get("ceil_mode", False), True,
                )  # fmt: skip
        return (out, torch.zeros_like(out, dtype=torch.long)) if with_indices else out

    @staticmethod
    def _dilated_window_sum(dims: int, given: dict) -> torch.Tensor:
        """The sum over each window of a dilated max pooling, which average pooling
        cannot do (it has no dilation; keeping the max shrank the boxes): a depthwise
        convolution with a kernel of ones, the same stride, padding and dilation,
        cropped to the max's own output size (``ceil_mode`` adds windows on the far
        side, so the input is padded there by one more stride)."""
        import torch.nn.functional as F
        from torch.nn.modules.utils import _ntuple

        x, tup = given["input"], _ntuple(dims)
        unbatched = x.ndim == dims + 1
        x = x[None] if unbatched else x
        kernel, padding = tup(given["kernel_size"]), tup(given.get("padding", 0))
        stride = tup(given.get("stride") or given["kernel_size"])
        # The real max for its output size (inside __torch_function__ this mode is off).
        size = getattr(F, f"max_pool{dims}d")(
            x.detach(), kernel, stride, padding, given.get("dilation", 1),
            given.get("ceil_mode", False),
        ).shape[2:]  # fmt: skip
        pads = [v for p, s in zip(reversed(padding), reversed(stride), strict=True)
                for v in (p, p + s)]  # fmt: skip
        ones = x.new_ones(x.shape[1], 1, *kernel)
        out = getattr(F, f"conv{dims}d")(
            F.pad(x, pads), ones, None, stride, 0, given.get("dilation", 1), x.shape[1]
        )
        out = out[(..., *(slice(0, n) for n in size))]
        return out[0] if unbatched else out


def _refuse_script(model: nn.Module, layer: nn.Module | None = None) -> None:
    """A TorchScript model (or layer) as a :class:`ModelError` that says what to do:
    its submodules' outputs cannot be hooked, and every function here reads one."""
    if isinstance(model, torch.jit.ScriptModule) or isinstance(layer, torch.jit.ScriptModule):
        raise ModelError(
            "reading a layer's output needs a hook on the layer, which TorchScript models do "
            "not allow; load a state dict with its architecture instead "
            "(load_model(path, arch=...), --arch on the command line)"
        )


def _layer_output(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    _refuse_script(model, layer)
    store: dict[str, torch.Tensor] = {}

    def hook(_m, _i, out):
        first = out[0] if isinstance(out, (tuple, list)) else out
        # A copy: a later in-place op would rewrite the layer's output (see _capture_layer).
        store["a"] = first.clone() if isinstance(first, torch.Tensor) else first

    handle = layer.register_forward_hook(hook)
    try:
        model(_as_model_input(model, x))
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
    value depends on, found by back-propagating from that unit (a random
    positive mix of its channels) with ReLUs made linear (so no unit is
    switched off) on a random input.  Boxes are clipped to the image (padding
    shrinks them at the borders).  Away from the borders they have the size of
    the closed form ``r = 1 + sum_l (k_l - 1) d_l prod_{m<l} s_m`` [1]_ (kernel
    ``k``, dilation ``d``, stride ``s``; the tests check it), found from the
    network itself, so branches and unusual layers need no table.

    References
    ----------
    .. [1] A. Araujo, W. Norris and J. Sim, "Computing Receptive Fields of
       Convolutional Neural Networks", Distill, 2019 (Eq. 2).

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
            # A random mix of the channels, not their sum: with ReLUs made linear, the
            # sum of a concatenated ReLU's channels h and -h (Shang et al. 2016) is 0.
            mix = torch.rand(out.shape[1], generator=gen).add_(0.5).to(out)
            (g,) = torch.autograd.grad(out[0, :, int(y), int(x)] @ mix, xi)
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
    Runs under :func:`torch.inference_mode` in eval mode; state restored.  The
    vectors come back on the device ``x`` was on.
    """
    if pool not in ("avg", "max", "flatten"):
        raise InvalidParameterError(f"pool must be 'avg', 'max' or 'flatten', got {pool!r}")
    _check_batch_size(batch_size)
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.numel() == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidParameterError(f"x must be a non-empty (B, C, H, W) batch, got {shape}")
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
    return torch.cat(parts).float().to(x.device)


def _check_batch_size(batch_size: object) -> None:
    """0 read no chunk at all ("no readable images"), -1 was a raw ValueError."""
    if not whole_number(batch_size) or batch_size < 1:
        raise InvalidParameterError(f"batch_size must be a whole number >= 1, got {batch_size!r}")


def _iter_images(
    images: str | Path | np.ndarray | Sequence[str | Path | np.ndarray],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
    """Yield ``(name, image or None, error or None)``, one image decoded at a time;
    unreadable files are reported, not raised.  One ``(H, W)`` or ``(H, W, C)``
    array (``C`` 1, 3 or 4) or one image file is one image; a ``(B, H, W, C)`` or
    ``(B, H, W)`` array is ``B`` images.

    A folder is walked as ``boda scan`` walks it by default
    (:func:`boda.scan._walk.walk_as_scanned`: every format :func:`boda.io.read_image`
    reads, hidden folders such as ``.boda`` and ``.git``, the default excludes
    (``@eaDir/``, ``._*``...) and ``.bodaignore``'s patterns skipped, folder links
    not followed), in sorted path
    order.  Files are read with ``max_pixels`` as the decompression-bomb guard.
    Arrays have no name (None): :func:`_load_chunk` numbers them.
    """
    from boda.io import read_image

    if isinstance(images, np.ndarray) and (
        images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4))
    ):
        # One (H, W[, C]) image, not a sequence of its rows: iterating it gave H
        # "images" of one row each, so query(image) answered H queries.  An (N, H, W)
        # stack of gray images (MNIST-like arrays) is still N images.
        images = [images]
    if isinstance(images, (str, Path)) and Path(images).is_file():
        images = [images]  # one image file, as a query photo is usually given
    if isinstance(images, (str, Path)):
        from boda.scan._walk import walk_as_scanned

        root = Path(images)
        if not root.is_dir():
            raise InvalidParameterError(
                f"{str(root)!r} is neither a folder nor an image file; give a folder, "
                "an image file, or a list of paths or arrays"
            )
        # Paths only (a few hundred bytes each), sorted as Paths: the order of the results.
        found = sorted((Path(f.path), f.error) for f in walk_as_scanned(root))
        items: Iterable = found
    else:
        items = ((item, None) for item in images)
    for item, error in items:
        if isinstance(item, np.ndarray):
            yield None, item, None
        elif error is not None:
            yield str(item), None, error
        else:
            try:
                yield str(item), read_image(item, max_pixels=max_pixels), None
            except BodaError as exc:
                yield str(item), None, str(exc)


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
    """The model inputs of ``items`` (from :func:`_iter_images`), unreadable ones skipped.

    Array ``k`` of the chunk is named ``image[first_index + k]``.  ``channels=1``
    (a gray model) turns colour images to gray (Rec. 601 luma); otherwise gray
    images are repeated to RGB.  The arrays kept for crops (``keep_arrays``) are
    always RGB.
    """
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
    images: str | Path | np.ndarray | Sequence[str | Path | np.ndarray],
    *,
    size: tuple[int, int] = (32, 32),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    k: int = 9,
    batch_size: int = 64,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> PatchSearch:
    """Scan images for the receptive-field crops that excite one channel most.

    For every image (resized to ``size``, normalised with ``mean``/``std``)
    the position of the channel's largest activation is found; the ``k``
    strongest over all images are returned with the crop of the input that
    unit sees (Zeiler & Fergus 2014, Sec. 2.1; Girshick et al. 2014, Sec. 3.1).
    Unreadable files are skipped and listed.  Images are read ``batch_size``
    at a time and only the ``k`` best candidates are kept (a heap), so memory
    does not grow with the number of images.

    Parameters
    ----------
    model, layer
        The network and the layer (name or module).
    channel : int
        Channel of the layer.
    images : folder, image file, array, or sequence of paths / arrays
        What to scan (one ``(H, W[, C])`` array or file is one image).  A folder
        is walked as ``boda scan`` walks it
        (:func:`boda.scan._walk.walk_as_scanned`: every format boda reads, hidden
        folders such as ``.boda``, the default excludes and ``.bodaignore``'s
        patterns skipped), in sorted path order.
    size, mean, std
        Preprocessing for the model.
    k : int
        Patches to return (one per image at most).
    batch_size : int
        Images per forward pass (memory against speed; results do not depend on it).
    max_pixels : int or None
        Files with more pixels are skipped as decompression bombs (see
        :func:`boda.io.read_image`); None: no limit.

    Returns
    -------
    PatchSearch
        Among equal activations, earlier images come first.

    Raises
    ------
    InvalidParameterError
        Bad ``k`` or ``channel``, a layer without ``(B, C, H, W)`` maps, no
        readable image.
    ModelError
        A TorchScript model (its layers cannot be hooked), or an image whose
        activations in the channel are not finite (NaN or infinity: they cannot
        be ranked).
    """
    if not whole_number(k) or k < 1:
        raise InvalidParameterError(f"k must be a whole number >= 1, got {k!r}")
    if not whole_number(channel):  # 1.5 was taken as channel 1, True as 1, "3" as 3
        raise InvalidParameterError(f"channel must be a whole number >= 0, got {channel!r}")
    k, channel = int(k), int(channel)
    _check_batch_size(batch_size)
    _refuse_script(model)
    _, mod = resolve_layer(model, layer)
    channels = input_spec(model)[0]
    # A min-heap of the k best (activation, -image number, y, x, name, array): the
    # weakest on top; an image number breaks ties in favour of the earlier image.
    heap: list[tuple[float, int, int, int, str, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    seen = 0
    in_channels = 3
    items = _iter_images(images, max_pixels)
    with torch.inference_mode(), _frozen(model):
        while chunk := list(itertools.islice(items, int(batch_size))):
            names, x, arrays, bad = _load_chunk(
                chunk, size, mean, std, seen, channels, keep_arrays=True
            )
            skipped.extend(bad)
            if not names:
                continue
            in_channels = x.shape[1]
            a = _layer_output(model, mod, x)
            if a.ndim != 4:
                raise InvalidParameterError(
                    f"the layer gives {tuple(a.shape)} outputs, not (B, C, H, W) maps; "
                    "choose a convolutional layer"
                )
            if not 0 <= channel < a.shape[1]:
                raise InvalidParameterError(
                    f"channel {channel} is not in the layer output of shape {tuple(a.shape)}; "
                    f"give 0 to {a.shape[1] - 1}"
                )
            vals, idx = a[:, channel].flatten(1).max(dim=1)
            # NaN compares False with everything: it was ranked first and scrambled the heap.
            _refuse_non_finite(vals[:, None], names, ModelError, "the channel's activations")
            w = a.shape[3]
            for j, (v, p) in enumerate(zip(vals.tolist(), idx.tolist(), strict=True)):
                entry = (float(v), -(seen + j), p // w, p % w, names[j], arrays[j])
                if len(heap) < k:
                    heapq.heappush(heap, entry)
                elif entry[:2] > heap[0][:2]:
                    heapq.heapreplace(heap, entry)
            seen += len(names)
    if not seen:
        raise InvalidParameterError("no readable images were given")
    best = sorted(heap, key=lambda e: (-e[0], -e[1]))
    boxes = receptive_field(
        model, mod, size, [(y, xx) for _, _, y, xx, _, _ in best], channels=in_channels
    )
    patches = [
        Patch(
            source=name,
            activation=v,
            position=(y, xx),
            box=box,
            crop=array[box[0] : box[2], box[1] : box[3]].copy(),
        )
        for (v, _, y, xx, name, array), box in zip(best, boxes, strict=True)
    ]
    return PatchSearch(patches=patches, skipped=skipped)


#: Format of :meth:`FeatureIndex.save` files; another value is refused on loading.
_INDEX_FORMAT = "boda-feature-index/2"


def _fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's weights and buffers (names, shapes, dtypes, values)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: Images decoded and fed to the model at a time by :meth:`FeatureIndex.embed`.
_EMBED_CHUNK = 64

#: Entries of the query x index similarity matrix held at once by
#: :meth:`FeatureIndex.query` (float32: 128 MB).
_SIMILARITY_BUDGET = 1 << 25


def _top_in_index_order(sim: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``sim.topk(k, dim=1)`` with equal similarities in index order: ``topk`` leaves
    their order, and which of them make the cut, unspecified (six exact copies of
    an image came back as rows 53, 50, 51, 52, 54, 55).  Rows with more ties at the
    cut than places take the earliest; one stable sort of ``k`` entries orders them."""
    vals, idx = sim.topk(k, dim=1)
    last = vals[:, -1:]
    cut = ((sim == last).sum(1) > (vals == last).sum(1)).nonzero().flatten().tolist()
    for r in cut:  # rare: ties straddling the k-th place
        places = (vals[r] == last[r]).nonzero().flatten()
        idx[r, places] = (sim[r] == last[r]).nonzero().flatten()[: len(places)]
    order = idx.argsort(dim=1, stable=True)  # by index, then (stably) by similarity
    vals, idx = vals.gather(1, order), idx.gather(1, order)
    order = vals.argsort(dim=1, descending=True, stable=True)
    return vals.gather(1, order), idx.gather(1, order)


def _refuse_non_finite(vectors: torch.Tensor, names: Sequence[str], error: type, said: str) -> None:
    """Raise ``error`` naming the rows of ``vectors`` that hold NaN or infinity: a NaN
    similarity would rank first in an exact search (``topk`` takes NaN for the
    largest value) and nowhere in a FAISS one."""
    rows = (~torch.isfinite(vectors.detach()).all(dim=1)).nonzero().flatten().tolist()
    if rows:
        which = ", ".join(repr(names[i]) for i in rows[:3]) + (" ..." if len(rows) > 3 else "")
        raise error(f"{said} of {len(rows)} image(s) are not finite (NaN or infinity): {which}")


class FeatureIndex:
    """Nearest-neighbour search of images by a layer's (pooled) features.

    Exact cosine (default) or Euclidean search in torch, or with FAISS at
    scale (``search``).  Memory: the index holds one ``D``-float vector per
    image (ResNet-20's ``layer3``: 64 floats); adding images decodes them 64 at
    a time, and an exact torch query holds at most 128 MB of similarities at
    once, so 100 000 images against 100 000 queries is exact, just slow (a
    brute-force product).  The vectors stay the source of truth: a FAISS
    search builds its index from them on the first query after they change
    (one more copy of the vectors; HNSW adds ``2 M`` links per vector).

    Parameters
    ----------
    model, layer
        Feature extractor (see :func:`layer_features`).
    size, mean, std
        Preprocessing for images given as files or arrays.
    metric : {"cosine", "euclidean"}
        Similarity used by :meth:`query`.
    max_pixels : int or None
        Files with more pixels are skipped as decompression bombs (see
        :func:`boda.io.read_image`); None: no limit.
    search : {"auto", "exact", "faiss", "hnsw"}
        How :meth:`query` searches: ``"exact"`` by a chunked torch product and
        top-k; ``"faiss"`` by FAISS brute force (``IndexFlatIP``/``IndexFlatL2``
        [1]_: the same neighbours up to ties; 4-19x faster for a query at a
        time, no faster for batches); ``"hnsw"`` by a FAISS HNSW graph [2]_
        (approximate: recall@10 0.97-1 measured; from 50 000 vectors, queries
        3-1700x faster, after a build of seconds to minutes);
        ``"auto"``: FAISS flat for fewer than 20 queries at once on 50 000
        vectors or more when faiss is installed, else exact (both exact;
        ``boda.explain._vector_search.AUTO_FAISS_MIN``, ``AUTO_FAISS_MAX_QUERIES``).
        Approximate search runs only when asked for.  FAISS runs with torch's
        CPU thread count (:func:`boda.nn.cpu_threads`).
    hnsw_m, hnsw_ef_search : int
        HNSW graph degree ``M`` and search breadth ``efSearch`` (see
        :class:`boda.explain._vector_search.HNSWSearch`).

    Attributes
    ----------
    names : list of str
        One per indexed image: its path, or ``image[i]`` for an array.
    vectors : torch.Tensor
        ``(N, D)`` float32 features, row ``i`` of ``names[i]``.
    last_search : str or None
        The search the last :meth:`query` ran: ``"exact"``, ``"faiss"`` or
        ``"hnsw"`` (None before any).
    metadata : dict
        Free JSON-serialisable information kept with the index by :meth:`save`
        (e.g. the size and modification time of each file, to tell later
        which files changed).

    Raises
    ------
    ModelError
        A TorchScript model (its layers cannot be hooked), or features of an
        image that are not finite (NaN or infinity: they would rank first in
        an exact search); vectors given to :meth:`add_vectors` or
        :meth:`query` that are not finite are an :class:`InvalidParameterError`.
    MissingDependencyError
        ``search="faiss"`` or ``"hnsw"`` without faiss installed (``pip install
        'boda[faiss]'``).

    References
    ----------
    .. [1] J. Johnson, M. Douze and H. Jégou, "Billion-scale similarity search
       with GPUs", IEEE Transactions on Big Data 7(3), 2019 (FAISS).
    .. [2] Y. A. Malkov and D. A. Yashunin, "Efficient and robust approximate
       nearest neighbor search using Hierarchical Navigable Small World graphs",
       IEEE Transactions on Pattern Analysis and Machine Intelligence 42(4), 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from boda.nn import resnet20
    >>> rng = np.random.default_rng(0)
    >>> idx = FeatureIndex(resnet20(), "layer3").add([rng.random((32, 32, 3)) for _ in range(3)])
    >>> idx.query(idx.vectors[1:2], k=1)[0][0][0]
    'image[1]'
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "features.npz")
    >>> idx.save(path)
    >>> FeatureIndex.load(path, idx.model, "layer3").names == idx.names
    True
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
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        search: str = "auto",
        hnsw_m: int = _vector_search.HNSW_M,
        hnsw_ef_search: int = _vector_search.HNSW_EF_SEARCH,
    ):
        if metric not in ("cosine", "euclidean"):
            raise InvalidParameterError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
        _refuse_script(model)
        self.model, self.layer = model, layer
        self.size, self.mean, self.std, self.metric = size, mean, std, metric
        self.max_pixels = max_pixels
        self.search = _vector_search.check_search(search)
        self.hnsw_m, self.hnsw_ef_search = _vector_search.check_hnsw(hnsw_m, hnsw_ef_search)
        self.names: list[str] = []
        self.vectors = torch.zeros(0, 0)
        self.skipped: list[tuple[str, str]] = []
        self.metadata: dict[str, Any] = {}
        self.last_search: str | None = None
        self._faiss: tuple[tuple, Any, torch.Tensor] | None = None  # (settings, index, vectors)

    def embed(self, images, *, first_index: int = 0) -> tuple[list[str], torch.Tensor]:
        """Feature vectors of images (a folder, an image file or array, a sequence of
        paths or arrays) or of a ``(B, C, H, W)`` tensor.

        Files keep their paths as names; arrays and tensor rows are called
        ``image[first_index + k]``, ``k`` their place among the embedded images.
        """
        if isinstance(images, torch.Tensor):
            if images.numel() == 0:
                raise InvalidParameterError(
                    f"images is an empty batch (shape {tuple(images.shape)}); give at least one"
                )
            names = [f"image[{first_index + i}]" for i in range(images.shape[0])]
            features = layer_features(self.model, self.layer, images)
            _refuse_non_finite(features, names, ModelError, "the model's features")
            return names, features
        # A chunk of images at a time: the decoded images and model inputs of a
        # whole folder would take ~2 MB per 224 px image (20 000 images: 39 GB).
        channels = input_spec(self.model)[0]
        names: list[str] = []
        parts: list[torch.Tensor] = []
        items = _iter_images(images, self.max_pixels)
        while chunk := list(itertools.islice(items, _EMBED_CHUNK)):
            chunk_names, x, _, skipped = _load_chunk(
                chunk, self.size, self.mean, self.std, first_index + len(names), channels,
                keep_arrays=False,
            )
            self.skipped.extend(skipped)
            if chunk_names:
                features = layer_features(self.model, self.layer, x)
                _refuse_non_finite(features, chunk_names, ModelError, "the model's features")
                names.extend(chunk_names)
                parts.append(features)
        if not names:
            raise InvalidParameterError("no readable images were given")
        return names, torch.cat(parts)

    def add(self, images) -> FeatureIndex:
        """Add images to the index; returns the index.

        A file already in the index (the same path) gets its new features in its
        row: adding a folder again brings its changed files up to date.
        """
        # Arrays are named by their place in the index: image[len(names) + k].
        names, vec = self.embed(images, first_index=len(self.names))
        self._put(names, vec)
        return self

    def _put(self, names: list[str], vectors: torch.Tensor) -> None:
        """Rows of names already indexed are replaced in place (each file came back
        twice, once with its old features, after adding its folder again); the
        others are appended, so the index never shrinks and ``image[i]`` stays new."""
        row = {name: i for i, name in enumerate(self.names)}
        old = [j for j, name in enumerate(names) if name in row]
        new = [j for j, name in enumerate(names) if name not in row]
        if old:  # out of place: the tensor may be the caller's (add_vectors)
            at = torch.tensor([row[names[j]] for j in old])
            self.vectors = self.vectors.index_copy(0, at, vectors[old].to(self.vectors))
        if new:
            self.names.extend(names[j] for j in new)
            added = vectors[new] if old else vectors
            self.vectors = added if self.vectors.numel() == 0 else torch.cat(
                [self.vectors, added])  # fmt: skip
        self._faiss = None

    def add_vectors(self, names: Sequence[str], vectors: torch.Tensor) -> FeatureIndex:
        """Add features computed before (e.g. kept from a saved index) under ``names``.

        ``vectors`` is ``(len(names), D)``, ``D`` the index's feature size; a
        name already in the index gets these features in its row.  Returns the
        index.
        """
        names = [str(n) for n in names]
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(names):
            raise InvalidParameterError(
                f"need one feature row per name: {len(names)} names, vectors of shape "
                f"{tuple(vectors.shape)}"
            )
        if self.vectors.numel() and vectors.shape[0] and vectors.shape[1] != self.vectors.shape[1]:
            raise InvalidParameterError(
                f"the index holds {self.vectors.shape[1]}-float features, not {vectors.shape[1]}"
            )
        if not names:
            return self
        _refuse_non_finite(vectors, names, InvalidParameterError, "the vectors")
        self._put(names, vectors)
        return self

    def _settings(self) -> dict[str, Any]:
        """What the features depend on: the model's weights, the layer, the preprocessing."""
        layer_name, _ = resolve_layer(self.model, self.layer)
        return {
            "model": _fingerprint(self.model),
            "layer": layer_name,
            "size": [int(v) for v in self.size],
            "mean": None if self.mean is None else [float(v) for v in self.mean],
            "std": None if self.std is None else [float(v) for v in self.std],
        }

    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` (a NumPy ``.npz`` file; no pickled objects).

        The file holds the names, the features, :attr:`metadata` and what the
        features depend on (a SHA-256 of the model's weights, the layer, the
        input size and statistics), so :meth:`load` refuses it for another
        model.  It is written to a temporary file first, then put in place.

        Raises
        ------
        OutputError
            ``path`` cannot be written.
        """
        header = {"format": _INDEX_FORMAT, "settings": self._settings(),
                  "metric": self.metric, "metadata": self.metadata, "search": self.search,
                  "hnsw": {"m": self.hnsw_m, "ef_search": self.hnsw_ef_search}}  # fmt: skip
        vectors = self.vectors if self.names else torch.zeros(0, 0)
        try:
            header_text = json.dumps(header)
        except (TypeError, ValueError) as exc:  # metadata not JSON
            raise OutputError(f"cannot write the feature index {str(path)!r}: {exc}") from exc
        folder = os.path.dirname(os.path.abspath(path)) or "."
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot write the feature index {str(path)!r}: {exc.strerror or exc}"
            ) from None
        # A temporary file put in place with the permissions of any output boda writes.
        with open_output(path) as f:  # a file object: np.savez adds no ".npz"
            np.savez(
                f, header=np.array(header_text), names=np.array(self.names, dtype=str),
                vectors=vectors.detach().cpu().float().numpy(),
            )  # fmt: skip

    @classmethod
    def load(
        cls,
        path: str | Path,
        model: nn.Module,
        layer: str | nn.Module,
        *,
        size: tuple[int, int] = (32, 32),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        metric: str | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        search: str | None = None,
        hnsw_m: int | None = None,
        hnsw_ef_search: int | None = None,
    ) -> FeatureIndex:
        """The index :meth:`save` wrote, for ``model`` and ``layer`` with these settings.

        The arguments are those of the constructor, and must be those the index
        was built with: features of another model (other weights), layer, size
        or statistics would be compared with the new queries' as if alike.
        ``metric``, ``search``, ``hnsw_m`` and ``hnsw_ef_search`` (default: the
        saved ones; ``"auto"`` for files saved before ``search`` existed) only
        change :meth:`query`.  The file is read without unpickling anything
        (``allow_pickle=False``).

        Raises
        ------
        InvalidParameterError
            ``path`` is not an index :meth:`save` wrote ("... is not a feature
            index boda wrote"), or was made with another model, layer or settings
            ("... holds features of another layer ...").
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                names = [str(n) for n in data["names"]]
                vectors = torch.from_numpy(np.asarray(data["vectors"], dtype=np.float32))
            if not isinstance(header, dict) or header.get("format") != _INDEX_FORMAT:
                raise ValueError("an index of another format")
        except (OSError, ValueError, KeyError, EOFError, TypeError, AttributeError) as exc:
            # numpy's own words for a file that is no .npz suggest unpickling it: not said.
            reason = str(exc) if str(exc) == "an index of another format" else (
                # numpy's KeyError says "header is not a file in the archive": the name
                f"no {str(exc.args[0]).split(' is not a file')[0]!r} array"
                if isinstance(exc, KeyError) and exc.args else "not a NumPy .npz archive"
            )
            raise InvalidParameterError(
                f"{str(path)!r} is not a feature index boda wrote ({reason}); build the index "
                "again (FeatureIndex(...).add(...).save(path))"
            ) from None
        hnsw = header.get("hnsw") or {}
        index = cls(
            model, layer, size=size, mean=mean, std=std,
            metric=metric or header.get("metric", "cosine"), max_pixels=max_pixels,
            search=search or header.get("search", "auto"),
            hnsw_m=hnsw_m or hnsw.get("m", _vector_search.HNSW_M),
            hnsw_ef_search=hnsw_ef_search or hnsw.get("ef_search", _vector_search.HNSW_EF_SEARCH),
        )  # fmt: skip
        stored, now = header.get("settings", {}), index._settings()
        differ = [name for name in now if stored.get(name) != now[name]]
        if differ:
            said = {"model": "model (other weights)"}
            details = "; ".join(
                f"{name}: {stored.get(name)!r} there, {now[name]!r} here"
                for name in differ if name != "model"
            )  # fmt: skip
            raise InvalidParameterError(
                f"{str(path)!r} holds features of another "
                f"{', '.join(said.get(n, n) for n in differ)}"
                + (f" ({details})" if details else "")
                + "; load it with the model and settings it was built with, or build a new index"
            )
        metadata = header.get("metadata") or {}
        try:
            if not isinstance(metadata, dict):  # boda.cli's --index reads it as one
                raise InvalidParameterError("its metadata is not a JSON object")
            if names:
                index.add_vectors(names, vectors)
        except InvalidParameterError as exc:  # a damaged file: said as one, by its name
            raise InvalidParameterError(
                f"{str(path)!r} is not a feature index boda wrote ({exc}); build the index "
                "again (FeatureIndex(...).add(...).save(path))"
            ) from None
        index.metadata = metadata
        return index

    def _faiss_search(self, kind: str) -> Any:
        """The FAISS index of :attr:`vectors`, built on first use after they changed."""
        # Built from this very tensor (add() makes a new one) with these settings.
        key = (kind, self.metric, self.hnsw_m, id(self.vectors))
        if self._faiss is None or self._faiss[0] != key or self._faiss[2] is not self.vectors:
            vectors = self.vectors.detach().cpu().float().numpy()
            threads = torch.get_num_threads()
            self._faiss = None  # the old index freed before the new one is built
            if kind == "hnsw":
                built = _vector_search.HNSWSearch(
                    vectors, self.metric, m=self.hnsw_m, ef_search=self.hnsw_ef_search,
                    threads=threads,
                )  # fmt: skip
            else:
                built = _vector_search.FlatSearch(vectors, self.metric, threads=threads)
            self._faiss = (key, built, self.vectors)
        searcher = self._faiss[1]
        searcher.threads = torch.get_num_threads()  # cpu_threads() may differ from build time
        if kind == "hnsw":
            searcher.ef_search = self.hnsw_ef_search
        return searcher

    def _similarity(self, value: Any) -> float:
        """A similarity as reported: a cosine kept within [-1, 1] (float32 products of
        unit vectors reached 1.0000004), a distance of 0 as 0.0, not -0.0."""
        v = float(value)
        if self.metric == "cosine":
            v = min(1.0, max(-1.0, v))
        return v + 0.0

    def query(self, images, k: int = 5) -> list[list[tuple[str, float]]]:
        """For each query, the ``k`` nearest indexed images as ``(name, similarity)``.

        Similarity is the cosine (``1`` = same direction) or the negative
        Euclidean distance, best first; :attr:`last_search` tells which
        search found them (``"auto"`` resolved).
        """
        if not self.names:
            raise InvalidParameterError("the index is empty; add images first")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidParameterError(f"k must be a whole number >= 1, got {k!r}")
        if isinstance(images, torch.Tensor) and images.ndim == 2:
            # float32 as the index (float64 rows were torch's dtype error); one width.
            q = images.float()
            if q.shape[1] != self.vectors.shape[1]:
                raise InvalidParameterError(
                    f"the index holds {self.vectors.shape[1]}-float features, not "
                    f"{q.shape[1]}: give query vectors of the index's layer"
                )
            _refuse_non_finite(q, [f"query[{i}]" for i in range(len(q))],
                               InvalidParameterError, "the query vectors")  # fmt: skip
        else:
            q = self.embed(images)[1]
        kk = min(int(k), len(self.names))
        kind = _vector_search.resolve_search(self.search, len(self.names), q.shape[0])
        self.last_search = kind
        if kind != "exact":
            sims, rows = self._faiss_search(kind).search(q.detach().cpu().float().numpy(), kk)
            return [
                [(self.names[int(j)], self._similarity(v)) for v, j in zip(vr, ir, strict=True)
                 if j >= 0]
                for vr, ir in zip(sims, rows, strict=True)
            ]
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
            vals, idx = _top_in_index_order(sim, kk)
            results.extend(
                [(self.names[int(j)], self._similarity(v)) for v, j in zip(vr, ir, strict=True)]
                for vr, ir in zip(vals, idx, strict=True)
            )
        return results
