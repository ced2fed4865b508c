"""Inference copies of a model: BatchNorm folded into convolutions, optionally frozen TorchScript.

Methods that run a model many times on batches without hooks or gradients
(Score-CAM's masked inputs, occlusion's occluded inputs) spend nearly all
their time in the forward pass.  An *inference copy* computes the same
function as the eval-mode model, up to float rounding, with fewer and cheaper
operations:

1. the model is traced with :func:`torch.fx.symbolic_trace` and every eval-mode
   ``BatchNorm`` whose input is a convolution used nowhere else is folded into
   that convolution's weights and bias (:func:`fold_batchnorm`);
2. optionally the folded graph is traced with :func:`torch.jit.trace`, frozen
   (:func:`torch.jit.freeze`) and run with oneDNN Graph fusion
   (:func:`torch.jit.enable_onednn_fusion`, switched on for the copy's calls
   only), which fuses each convolution with the additions and ReLUs after it
   into one oneDNN kernel.  In boda's Score-CAM benchmark (CPU, one thread)
   this made the calls 1.4x (ResNet-18-like, 224 px) to 1.7x (ResNet-56,
   32 px) faster than the eager model; folding alone 1.02-1.1x (see
   docs/explain.md).

The user's model is never changed: the copy has its own folded convolutions;
the modules it leaves as they are (ReLU, pooling, the classifier) are shared,
read-only.  A copy is checked against the model's own output before it is
returned.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from boda.errors import InvalidParameterError, ModelError
from boda.nn._pointwise import fuse_conv_pointwise, pointwise_available

__all__ = ["fold_batchnorm", "inference_copy", "InferenceCache"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}


def _fold(conv: nn.Module, bn: nn.Module) -> nn.Module:
    r"""A new convolution computing ``bn(conv(x))`` for an eval-mode ``bn``.

    With :math:`s = \gamma / \sqrt{\sigma^2 + \epsilon}` (per output channel),
    :math:`W' = s\,W` and :math:`b' = s\,(b - \mu) + \beta` (Ioffe & Szegedy
    2015, Alg. 2, step 11: at inference the normalisation is a fixed affine
    map, which composes with the convolution's).  Computed in float64.
    """
    weight = conv.weight.detach()
    b = torch.zeros(weight.shape[0], dtype=torch.float64, device=weight.device)
    if conv.bias is not None:
        b = conv.bias.detach().double()
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(var)
    s = gamma / torch.sqrt(var + bn.eps)
    new = copy.copy(conv)  # same hyper-parameters (stride, padding mode, groups ...)
    new._parameters = {}
    new._buffers = {}
    for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                  "_backward_pre_hooks"):
        if hasattr(conv, hooks):
            setattr(new, hooks, type(getattr(conv, hooks))())
    # A float64 copy scaled in place: one temporary per weight (fewer heap holes).
    w = weight.to(torch.float64, copy=True).mul_(s.view(-1, *([1] * (weight.ndim - 1))))
    new.weight = nn.Parameter(w.to(weight.dtype), requires_grad=False)
    new.bias = nn.Parameter(((b - mean) * s + beta).to(conv.weight.dtype), requires_grad=False)
    return new


def _foldable(conv: Any, bn: Any) -> bool:
    # Exact types only: a subclass may override forward (weight standardisation ...).
    return (
        type(conv) in _CONVS
        and type(bn) is _BNS[type(conv)]
        and not bn.training
        and bn.running_mean is not None
        and bn.running_var is not None
        and conv.weight.shape[0] == bn.running_mean.shape[0]
        and conv.weight.dtype == bn.running_mean.dtype
    )


class _TapTracer(torch.fx.Tracer):
    """torch.fx's default tracer that also notes which node gives ``tap``'s output.

    A module called more than once is noted at its last call, as a forward hook
    sees it last.  A module returning a tuple or list is noted by its first item.
    """

    def __init__(self, tap: nn.Module):
        super().__init__()
        self.tap = tap
        self.node: torch.fx.Node | None = None

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple,
                    kwargs: dict) -> Any:
        out = super().call_module(m, forward, args, kwargs)
        if m is self.tap:
            first = out[0] if isinstance(out, (tuple, list)) and out else out
            self.node = first.node if isinstance(first, torch.fx.Proxy) else None
        return out


@contextlib.contextmanager
def _attributes_kept(model: nn.Module) -> Iterator[None]:
    """Put every module's attributes back as they were: tracing runs the user's
    ``forward`` on the live model, and one that stores a value
    (``self.last_features = f``, ``self.calls += 1``) would keep a ``torch.fx.Proxy``."""
    saved = [(m, dict(m.__dict__)) for m in model.modules()]
    try:
        yield
    finally:
        for module, attributes in saved:
            now = module.__dict__
            # By identity: a tensor attribute would compare element-wise.
            written = {
                name for name, value in now.items() if attributes.get(name, now) is not value
            }
            if written or len(now) != len(attributes):
                now.clear()
                now.update(attributes)
            if written:  # outputs of forward, not settings: left out of the cache key
                _WRITTEN_BY_FORWARD[module] = frozenset(written) | _WRITTEN_BY_FORWARD.get(
                    module, frozenset()
                )


#: Per module, the attributes its ``forward`` assigns (seen while tracing): they
#: hold what a call computed (``self.last_features``), not what the copy bakes in.
_WRITTEN_BY_FORWARD: weakref.WeakKeyDictionary[nn.Module, frozenset[str]] = (
    weakref.WeakKeyDictionary()
)


def _trace(model: nn.Module, tap: nn.Module | None) -> torch.fx.GraphModule:
    """``torch.fx.symbolic_trace(model)``; with ``tap`` the graph returns ``(out, tap out)``.
    The model's attributes are left as they were (:func:`_attributes_kept`)."""
    with _attributes_kept(model):
        return _trace_live(model, tap)


def _trace_live(model: nn.Module, tap: nn.Module | None) -> torch.fx.GraphModule:
    try:
        if tap is None:
            return torch.fx.symbolic_trace(model)
        tracer = _TapTracer(tap)
        graph = tracer.trace(model)
        traced = torch.fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as exc:  # noqa: BLE001 - fx raises many kinds on untraceable code
        raise ModelError(f"torch.fx cannot trace {type(model).__name__}: {exc}") from exc
    if tracer.node is None:
        raise ModelError(
            f"the tapped layer of {type(model).__name__} does not appear in its traced graph"
        )
    (output,) = (node for node in graph.nodes if node.op == "output")
    # The copy returns a clone of the tapped value, taken right after the layer:
    # a later in-place op (ReLU(inplace=True), ``out += identity``) rewrites the
    # tensor itself, and the model's hook-read value is the one before it.
    with graph.inserting_after(tracer.node):
        clone = graph.call_method("clone", (tracer.node,))
    output.args = ((output.args[0], clone),)
    traced.recompile()
    return traced


def fold_batchnorm(model: nn.Module, *, tap: nn.Module | None = None) -> torch.fx.GraphModule:
    r"""Trace ``model`` with torch.fx and fold each eval-mode BatchNorm into the conv before it.

    A ``BatchNorm{1,2,3}d`` module in eval mode (running statistics) is an
    affine map per channel (Ioffe & Szegedy 2015 [1]_, Alg. 2, step 11).  When its
    only input is a ``Conv{1,2,3}d`` module whose output is used nowhere else,
    both are replaced by one convolution with weights :math:`s\,W` and bias
    :math:`s\,(b-\mu)+\beta`, :math:`s=\gamma/\sqrt{\sigma^2+\epsilon}`.  The fold
    is algebraic: the copy computes the same function up to float rounding.
    BatchNorm in training mode (batch statistics) is left as it is.

    Parameters
    ----------
    model : torch.nn.Module
        Any module torch.fx can trace (no data-dependent Python control flow).
    tap : torch.nn.Module, optional
        A submodule of ``model`` whose output the copy returns as well: the
        result is then ``(output, tap's output)`` (the first item where the
        submodule returns a tuple; its last call where it runs more than once,
        as a forward hook would see it).  A convolution whose output is tapped
        is not folded (its output must stay what the model computes).

    Returns
    -------
    torch.fx.GraphModule
        A new module with the folded graph.  The input model is unchanged;
        modules that are not folded are shared with it (not copied).

    Raises
    ------
    ModelError
        torch.fx cannot trace the model, or ``tap`` is not in its traced graph.

    References
    ----------
    .. [1] S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network
       Training by Reducing Internal Covariate Shift", ICML 2015.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> folded = fold_batchnorm(net)
    >>> any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    False
    >>> x = torch.rand(2, 3, 8, 8)
    >>> torch.allclose(folded(x), net(x), atol=1e-6)
    True
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch.nn.Module, got {type(model)}")
    traced = _trace(model, tap)
    # The GraphModule holds new parent modules and the original leaves by reference;
    # folded convolutions are set on its own hierarchy, so the model keeps its modules.
    modules = dict(traced.named_modules())
    originals = {id(m) for m in model.modules()}
    graph = traced.graph
    folds = 0
    for node in list(graph.nodes):
        if node.op != "call_module" or len(node.args) != 1:
            continue
        prev = node.args[0]
        if not isinstance(prev, torch.fx.Node) or prev.op != "call_module":
            continue
        if len(prev.users) != 1 or node.kwargs or prev.kwargs:
            continue
        conv, bn = modules.get(prev.target), modules.get(node.target)
        if not _foldable(conv, bn):
            continue
        parent, _, name = prev.target.rpartition(".")
        folds += 1  # unique names: a conv called twice may meet two different BNs
        new_name = f"{name}_bnfold{folds}"
        owner = traced.get_submodule(parent) if parent else traced
        if id(owner) in originals:  # never add modules to the user's model
            continue
        owner.add_module(new_name, _fold(conv, bn))
        prev.target = f"{parent}.{new_name}" if parent else new_name
        node.replace_all_uses_with(prev)
        graph.erase_node(node)
    graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced


def _leaves(out: Any) -> list[torch.Tensor]:
    """The tensors of a model output (tensor, tuple/list, mapping), in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _leaves(o)]
    if isinstance(out, Mapping):
        return [t for k in out for t in _leaves(out[k])]
    raise ModelError(f"cannot compare model outputs of type {type(out).__name__}")


def _agrees(got: Any, want: Any, rtol: float) -> bool:
    a, b = _leaves(got), _leaves(want)
    if len(a) != len(b):
        return False
    for u, v in zip(a, b, strict=True):
        if u.is_floating_point() and v.is_floating_point():
            u = u.to(v.dtype)  # a reduced-precision copy is compared in the model's dtype
        if u.shape != v.shape or u.dtype != v.dtype:
            return False
        if u.is_floating_point():
            # Relative to the output's scale: logits near 0 must not need 1e-4 exactly.
            scale = v.detach().abs().max().clamp_min(torch.finfo(v.dtype).tiny)
            if not bool(((u - v).abs().max() <= rtol * scale).item()) or not u.isfinite().all():
                return False
        elif not torch.equal(u, v):
            return False
    return True


class _OneDNNGraph(nn.Module):
    """A frozen TorchScript module run with oneDNN Graph fusion switched on.

    The switch (:func:`torch.jit.enable_onednn_fusion`) is global; it is set for
    the call only and put back after, so other TorchScript models are not affected
    (unless they run in another thread at the same moment).
    """

    def __init__(self, scripted: torch.jit.ScriptModule, name: str):
        super().__init__()
        self.scripted = scripted
        self.name = name

    def forward(self, x: torch.Tensor) -> Any:
        before = torch.jit.onednn_fusion_enabled()
        torch.jit.enable_onednn_fusion(True)
        try:
            return self.scripted(x)
        finally:
            torch.jit.enable_onednn_fusion(before)

    def extra_repr(self) -> str:
        return f"frozen TorchScript + oneDNN Graph copy of {self.name}"


class _Autocast(nn.Module):
    """Runs a module under :func:`torch.autocast` to ``dtype``."""

    def __init__(self, module: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.module = module
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> Any:
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.module(x)


def _freeze(
    module: nn.Module, example: torch.Tensor, name: str, dtype: torch.dtype | None
) -> nn.Module:
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.compile (whose CPU compile takes
        # far longer than freezing); if it goes away, the caller keeps the fx copy.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        # A TracerWarning means the trace may be specialised to this input: refuse it.
        warnings.simplefilter("error", torch.jit.TracerWarning)
        # Traced under autocast, the casts are part of the graph (the copy then runs
        # without autocast); no cast cache, or cast weights would become inputs.
        with torch.autocast(example.device.type, dtype=dtype or torch.bfloat16,
                            enabled=dtype is not None, cache_enabled=False):
            # One sample is enough to record the graph (fx already removed any Python
            # control flow) and keeps the tracer's copies of every activation small.
            traced = torch.jit.trace(module, example[:1], check_trace=False, strict=True)
        fused = _OneDNNGraph(torch.jit.freeze(traced.eval()), name)
        # The profiling executor fuses on the first runs: warm up so that the
        # agreement check sees the fused graph, not the profiling one.
        for _ in range(2):
            fused(example)
        return fused


def inference_copy(
    model: nn.Module,
    example: torch.Tensor,
    *,
    freeze: bool = True,
    pointwise: bool = False,
    dtype: torch.dtype | None = None,
    check: tuple[torch.Tensor, Any] | None = None,
    rtol: float | None = None,
    select: Callable[[Any], Any] | None = None,
    tap: nn.Module | None = None,
) -> nn.Module:
    """An inference-optimised copy of an eval-mode model, checked against it.

    BatchNorm is folded into the convolutions (:func:`fold_batchnorm`); with
    ``freeze`` the result is also traced on ``example``, frozen by TorchScript
    and run with oneDNN Graph fusion, kept only if tracing raises no
    ``TracerWarning`` and the fused module agrees with the model on both the
    check input and ``example`` (otherwise the folded module is returned).

    Parameters
    ----------
    model : torch.nn.Module
        The model, in eval mode (a module in training mode keeps its batch
        statistics and is not folded).  It is not changed.
    example : torch.Tensor
        An input like the ones the copy will run on, e.g. ``(B, C, H, W)``
        in the memory format that will be used (TorchScript traces on it).
    freeze : bool
        Also try the frozen TorchScript path.
    pointwise : bool
        Instead of freezing, fuse each folded convolution with the ReLU (and
        residual addition) after it into one oneDNN call, in eager PyTorch
        (:func:`boda.nn.fuse_conv_pointwise`): nearly the frozen path's speed
        at the folded copy's memory.  Float32 only (with a reduced ``dtype``,
        or where the operator is missing, the folded copy is returned); kept
        only if it agrees with the model like the frozen copy.
    dtype : torch.dtype, optional
        Reduced precision (``torch.bfloat16``) for the copy: the folded module
        runs under :func:`torch.autocast`, the frozen one is traced under it.
        Default: the model's own arithmetic.
    check : (input, output), optional
        An input and the model's own output on it, for the agreement check.
        Default: ``(example, model(example))`` (one extra forward).
    rtol : float, optional
        Largest accepted ``max|copy - model|``, relative to ``max|model|`` of
        each output tensor (after ``select``).  Default ``1e-4``, or ``5e-2``
        with a reduced ``dtype`` (bfloat16 keeps 8 bits of mantissa: a check
        against gross errors such as a wrong traced branch, not of rounding).
    select : callable, optional
        Applied to both outputs before comparing (e.g. pick the logits).
    tap : torch.nn.Module, optional
        A submodule whose output the copy computes as well (see
        :func:`fold_batchnorm`), e.g. the layer an explanation reads: calling
        the copy still gives the model's output, and its ``tapped(x)`` method
        gives ``(output, the submodule's output)`` from the same forward pass.
        ``check`` then takes a third item, the submodule's output on the check
        input (by default it is taken with a forward hook), and the copy must
        agree with that too.

    Returns
    -------
    torch.nn.Module
        The copy: a ``torch.fx.GraphModule``, or a module wrapping the frozen
        TorchScript graph (it switches oneDNN Graph fusion on for its calls),
        or with ``tap`` a module wrapping either that has ``tapped``.

    Raises
    ------
    ModelError
        The model cannot be traced by torch.fx, ``tap`` is not in its graph,
        or the copy disagrees with it.
    InvalidParameterError
        ``tap`` is given with a ``check`` of fewer than three items.

    Examples
    --------
    >>> import torch
    >>> from boda.nn import resnet20
    >>> model = resnet20().eval()
    >>> x = torch.rand(4, 3, 32, 32)
    >>> fast = inference_copy(model, x, freeze=False)
    >>> torch.allclose(fast(x), model(x), rtol=1e-4, atol=1e-5)
    True
    """
    pick = select or (lambda out: out)
    reduced = dtype is not None and dtype != torch.float32
    tol = rtol if rtol is not None else (5e-2 if reduced else 1e-4)
    with torch.inference_mode(False), torch.no_grad():
        example = example.detach().clone()
        if check is None:
            check = (example, *_output_and_tap(model, example, tap))
        check_in = check[0].detach().clone()
        want = pick(check[1])
        if tap is not None:
            if len(check) < 3:
                raise InvalidParameterError(
                    "with tap, check must be (input, output, the tapped layer's output)"
                )
            want = (want, _first(check[2]))
            pick = _with_tap(pick)
        folded = fold_batchnorm(model, tap=tap)
        if pointwise and not reduced and pointwise_available():
            fused = _pointwise_copy(folded, check_in, want, pick, tol)
            if fused is not None:
                return _tapped(fused, tap)
            folded = fold_batchnorm(model, tap=tap)  # the fusion rewrote the graph in place
        base = _Autocast(folded, dtype) if reduced else folded
        if not _agrees(pick(base(check_in)), want, tol):
            raise ModelError(f"the folded copy of {type(model).__name__} disagrees with it")
        if not freeze:
            return _tapped(base, tap)
        try:
            frozen = _freeze(folded, example, type(model).__name__, dtype if reduced else None)
            # Checked on the example only (the fx copy was checked against the model):
            # every new input shape costs the fused graph a compilation and memory.
            if _agrees(pick(frozen(example)), pick(base(example)), tol):
                return _tapped(frozen, tap)
        except Exception:  # noqa: BLE001 - any trace/freeze failure: keep the fx copy
            pass
        return _tapped(base, tap)


def _first(out: Any) -> Any:
    """A layer's output as a forward hook reads it: the first item of a tuple or list."""
    return out[0] if isinstance(out, (tuple, list)) and out else out


def _with_tap(pick: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``pick`` for a tapped graph's ``(output, tap)``: applied to the output, tap kept."""
    return lambda out: (pick(out[0]), _first(out[1]))


def _output_and_tap(model: nn.Module, x: torch.Tensor, tap: nn.Module | None) -> tuple:
    """``(model(x),)``, or with ``tap`` ``(model(x), tap's output)`` read by a forward hook."""
    if tap is None:
        return (model(x),)
    seen: dict[str, Any] = {}
    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        # A copy: a later in-place op in the model would rewrite the tapped value.
        first = _first(out)
        seen["out"] = first.detach().clone() if isinstance(first, torch.Tensor) else out

    handle = tap.register_forward_hook(hook)
    try:
        out = model(x)
    finally:
        handle.remove()
    if "out" not in seen:
        raise ModelError(f"the tapped layer of {type(model).__name__} did not run")
    return out, seen["out"]


class _Tapped(nn.Module):
    """A copy built with a tap: calls give the model's output, :meth:`tapped` the tap too."""

    def __init__(self, copy: nn.Module):
        super().__init__()
        self.copy = copy

    def forward(self, x: torch.Tensor) -> Any:
        return self.copy(x)[0]

    def tapped(self, x: torch.Tensor) -> tuple[Any, Any]:
        """``(output, the tapped layer's output)`` from one forward pass."""
        out, tap = self.copy(x)
        return out, _first(tap)


def _tapped(copy: nn.Module, tap: nn.Module | None) -> nn.Module:
    return copy if tap is None else _Tapped(copy)


def _pointwise_copy(
    folded: torch.fx.GraphModule, check_in: torch.Tensor, want: Any,
    pick: Callable[[Any], Any], tol: float,
) -> nn.Module | None:
    """``folded`` with its convolutions fused (in place), if it agrees with the model.

    Checked against the model's own output directly: running the folded graph
    as well would make oneDNN build (and keep) a second set of kernels.
    PointwiseConv2d computes the same function for every input shape, so one
    input is enough (a shape its kernel refuses raises at the call, and the
    caller drops the copy).
    """
    try:
        fused = fuse_conv_pointwise(folded, pack_weights=True, keep_outputs=True)
        if _agrees(pick(fused(check_in)), want, tol):
            return fused
    except Exception:  # noqa: BLE001 - an operator refusing a shape: use the folded copy
        pass
    return None


def _has_hooks(model: nn.Module) -> bool:
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
        or getattr(m, "_backward_pre_hooks", None)
        for m in model.modules()
    )


def _attribute_state(modules: list[nn.Module]) -> tuple:
    """Every module and its attribute names and values, for :meth:`InferenceCache.key`.

    torch.fx copies the graph with the attribute values ``forward`` read (a
    temperature, a stride, a flag) baked in, so the copy is stale once a
    submodule is swapped (e.g. a ReLU for an Identity) or an attribute
    reassigned.  The values themselves are kept: comparing two states takes
    each unchanged value by identity (C-level, fast), compares plain values by
    value and other objects (modules) by identity; and the old values stay
    alive, so a new object cannot reuse an old one's address.  ~0.1 ms for
    ResNet-56's 226 modules.
    """
    state: list = []
    for module in modules:
        attributes = module.__dict__
        written = _WRITTEN_BY_FORWARD.get(module) if _WRITTEN_BY_FORWARD else None
        if written:  # what forward stores (see _attributes_kept) changes every call
            attributes = {k: v for k, v in attributes.items() if k not in written}
        state += (module, tuple(attributes), tuple(attributes.values()))
    return tuple(state)


def _fingerprint(tensors: list[torch.Tensor]) -> tuple[float, ...]:
    """The norm and a position-weighted sum of every floating-point tensor: what
    changes when values do.

    Writes through ``.data`` (``ema.data.mul_(m).add_(...)``, ``p.data = t``,
    ``torch.nn.utils.vector_to_parameters``) bump no ``_version``; the norms
    see them, and the sums weighted by a fixed ramp ``1 + i/n`` see the changes
    that keep a norm (a flipped sign, permuted channels: an ablation).  Small
    tensors (up to ``_STACK_LIMIT`` elements) of one shape, dtype and device are
    stacked into a matrix and reduced together (a row norm and a matrix-vector
    product per group), larger ones one by one: the same per-tensor values in
    ~80 ops instead of ~550 small ones for ResNet-56's 277 tensors.
    """
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        if t.is_floating_point():
            # A large tensor is its own group: stacking it would copy it for no
            # saving (its reductions dwarf the per-op cost), and those copies
            # (2.6 MB for ResNet-56's layer3) added 1.2 MB to Score-CAM's peak
            # memory, likely as freed mmap chunks raise glibc's mmap threshold.
            alone = (id(t),) if t.numel() > _STACK_LIMIT else ()
            groups.setdefault((t.shape, t.dtype, t.device, *alone), []).append(t)
    if not groups:
        return ()
    values = []
    with torch.inference_mode():
        for (shape, dtype, device, *_), group in groups.items():
            n = shape.numel()
            # row i: group[i] flattened (a view when the group is one contiguous tensor)
            rows = (group[0] if len(group) == 1 else torch.stack(group)).reshape(len(group), n)
            values.append(torch.linalg.vector_norm(rows, dim=1).to("cpu", torch.float32))
            values.append(torch.mv(rows, _ramp(n, dtype, device)).to("cpu", torch.float32))
        return tuple(torch.cat(values).tolist())


#: Tensors of more elements than this are reduced one by one in :func:`_fingerprint`.
_STACK_LIMIT = 4096

_RAMPS: dict[tuple, torch.Tensor] = {}


def _ramp(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``1 + i / n`` for ``i < n`` (cached: the same few sizes come back every call)."""
    key = (n, dtype, device)
    ramp = _RAMPS.get(key)
    if ramp is None:
        if len(_RAMPS) > 4096:  # many models of many shapes: start afresh
            _RAMPS.clear()
        ramp = _RAMPS[key] = 1 + torch.arange(n, device=device, dtype=torch.float64).div_(
            max(n, 1)
        ).to(dtype)
    return ramp


def _same_key(a: tuple | None, b: tuple | None) -> bool:
    """``a == b``, False where a value refuses to compare (a tensor attribute that
    was replaced compares element-wise)."""
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):
        return False


class InferenceCache:
    """One :func:`inference_copy` of a model, rebuilt when the model changes.

    The copy is keyed on the identity and ``._version`` (bumped by every in-place
    change, e.g. an optimizer step or ``load_state_dict``) and the norm (which
    also sees writes through ``.data``, as EMA updates make) of every parameter
    and buffer, on every module's identity and attributes (training flags included,
    see :func:`_attribute_state`), on the input's dtype and device, and on
    ``freeze``.  A model carrying hooks is never copied (a copy would not
    call them).  A model that cannot be copied is remembered and then always
    run as it is.

    Building is not free (folding: one or two batched forwards' time; the
    TorchScript freeze: about ten), and the copy saves a part of every forward
    (in boda's Score-CAM benchmark: folding 2-10 %, fusing 30-45 %).  So the
    copy is built only once ``min_forwards`` batched forwards
    (counting the ones the caller announces for the current use) have run on
    an unchanged model: the rent-or-buy rule, never more than about twice the
    cost of the better choice made with hindsight.

    Parameters
    ----------
    model : torch.nn.Module
        The model; it is never changed.
    min_forwards : int
        See above; 1 builds on the first :meth:`get`.
    rtol : float
        Tolerance of the agreement check (see :func:`inference_copy`).

    Examples
    --------
    >>> import torch
    >>> from boda.nn import resnet20
    >>> model = resnet20().eval()
    >>> cache = InferenceCache(model, min_forwards=1)
    >>> x = torch.rand(2, 3, 32, 32)
    >>> fast = cache.get(x, freeze=False)
    >>> fast is not model and cache.get(x, freeze=False) is fast
    True
    """

    def __init__(self, model: nn.Module, *, min_forwards: int = 32, rtol: float = 1e-4):
        if int(min_forwards) < 1:
            raise InvalidParameterError(f"min_forwards must be >= 1, got {min_forwards}")
        self.model = model
        self.min_forwards = int(min_forwards)
        self.rtol = float(rtol)
        self._key: tuple | None = None
        self._seen = 0
        self._copies: dict[tuple, nn.Module] = {}
        self._failed = False
        #: Seconds the last build took (``None`` before the first build).
        self.build_seconds: float | None = None
        #: Copies built so far (each variant, each change of the model).
        self.builds = 0

    def key(self, example: torch.Tensor) -> tuple:
        """What the copy depends on: tensors (identity, version), modules and their
        attributes, flags, input type.  Compare keys with :func:`_same_key`."""
        # One walk over the modules (this runs on every call; parameters() and
        # buffers() would walk twice more and deduplicate).
        modules = list(self.model.modules())
        tensors = [
            t for m in modules for d in (m._parameters, m._buffers)
            for t in d.values() if t is not None
        ]
        # The tensors themselves, not their id(): kept alive by the key, a replaced
        # tensor cannot share an address with a new one (an unchanged one compares
        # by identity; a replaced one element-wise, which _same_key treats as new).
        return (
            tuple((t, t._version) for t in tensors),
            _fingerprint(tensors),
            _attribute_state(modules),
            example.dtype,
            example.device,
        )

    @staticmethod
    def _variant(
        freeze: bool, pointwise: bool, dtype: torch.dtype | None, tap: nn.Module | None
    ) -> tuple:
        return bool(freeze), bool(pointwise), dtype, None if tap is None else id(tap)

    def built(
        self,
        example: torch.Tensor,
        *,
        freeze: bool = True,
        pointwise: bool = False,
        dtype: torch.dtype | None = None,
        tap: nn.Module | None = None,
        key: tuple | None = None,
    ) -> nn.Module | None:
        """The copy :meth:`get` would return, if it is built and the model unchanged; else None.

        Builds nothing and counts no forwards: for a caller that can use a copy
        only once it exists (e.g. to read a layer through ``tap`` instead of a hook).
        ``key``: :meth:`key` of ``example`` if the caller already has it (one
        walk over the model per call instead of two, ~2 ms for ResNet-56).
        """
        if self._failed or not self._copies or _has_hooks(self.model):
            return None
        if not _same_key(self.key(example) if key is None else key, self._key):
            return None
        return self._copies.get(self._variant(freeze, pointwise, dtype, tap))

    def reject(self) -> None:
        """Never copy this model again (e.g. the copy failed on a later input)."""
        self._failed = True
        self._copies.clear()

    def get(
        self,
        example: torch.Tensor,
        *,
        forwards: int = 1,
        freeze: bool = True,
        pointwise: bool = False,
        dtype: torch.dtype | None = None,
        check: tuple[torch.Tensor, Any] | tuple[torch.Tensor, Any, Any] | None = None,
        select: Callable[[Any], Any] | None = None,
        tap: nn.Module | None = None,
        key: tuple | None = None,
    ) -> nn.Module:
        """The copy for inputs like ``example``, or the model itself (see ``min_forwards``).

        Call it once per use (e.g. once per explanation) with ``forwards`` the
        number of batched forwards that use will run.  ``freeze``, ``pointwise``, ``dtype``,
        ``check``, ``select`` and ``tap`` are passed to :func:`inference_copy`; a copy
        with a reduced ``dtype`` runs in it by itself (no autocast needed).  Each
        combination of ``freeze``, ``pointwise``, ``dtype`` and ``tap`` is its own copy.
        Where the copy cannot give the tapped layer (e.g. the layer sits inside a
        module torch.fx keeps whole, or disagrees), the copy is built without it
        (it then has no ``tapped`` method).  ``key`` as in :meth:`built`.
        """
        if self._failed or _has_hooks(self.model):
            return self.model
        key = self.key(example) if key is None else key
        if not _same_key(key, self._key):
            self._key, self._seen = key, 0
            self._copies.clear()
        self._seen += max(int(forwards), 0)
        variant = self._variant(freeze, pointwise, dtype, tap)
        if variant in self._copies:
            return self._copies[variant]
        if self._seen < self.min_forwards:
            return self.model
        start = time.perf_counter()
        built = None
        for layer in (tap, None) if tap is not None else (None,):
            try:
                built = inference_copy(
                    self.model, example, freeze=freeze, pointwise=pointwise, dtype=dtype,
                    check=check, rtol=self.rtol if dtype in (None, torch.float32) else None,
                    select=select, tap=layer,
                )
                break
            except Exception:  # noqa: BLE001 - a layer the copy cannot give: try without it
                continue
        if built is None:  # the model itself, for good
            self.reject()
            return self.model
        self.build_seconds = time.perf_counter() - start
        self.builds += 1
        self._copies[variant] = built
        # The trace may have learnt attributes that forward writes (left out of keys
        # from now on): the key this copy answers to is taken again.
        self._key = self.key(example)
        return built
