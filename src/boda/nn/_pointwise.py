"""Convolutions fused with the ReLU and residual addition after them, in eager PyTorch.

After BatchNorm folding (:func:`boda.nn.fold_batchnorm`) a ResNet block is
``relu(conv(x))`` and ``relu(conv(y) + shortcut)``.  Run op by op, every
convolution writes its output, then the addition and the ReLU read and write
it again, and oneDNN reorders the weights on every call.  oneDNN's *post-ops*
(oneDNN developer guide, "Primitive Attributes: Post-ops") apply the addition
and the ReLU inside the convolution kernel while the output is still in
registers; PyTorch exposes that kernel as ``torch.ops.mkldnn._convolution_pointwise``
(the operator its Inductor compiler emits for CPU convolutions).  Calling it
from an eager module gives most of the speed of a frozen TorchScript graph
with oneDNN Graph fusion, without TorchScript's profiling executor and its
compiled-partition caches, i.e. at the folded model's memory
(measured in docs/explain.md).

:func:`fuse_conv_pointwise` rewrites a folded ``torch.fx.GraphModule``: every
``Conv2d`` whose output goes only to a ReLU, or only to an addition whose
output goes only to a ReLU, becomes one :class:`PointwiseConv2d`.  Each call
checks that the fused kernel applies (a float32 CPU input, a residual of the
convolution's output shape) and otherwise computes the same function with
ordinary operators, so the module is correct for any input.  Where the
residual is a tensor this graph made itself and nothing reads it afterwards
(a ResNet's identity shortcut), the block writes its result into it
(``torch.ops.mkldnn._convolution_pointwise_``): one activation fewer to allocate per
block, which on a CPU means fewer fresh pages to fault in.  A convolution without a
residual likewise writes into the output of an earlier fused convolution that nothing
reads any more, or into the start of it where that one is larger (zeroed, then used as
the sum's operand: ``relu(conv(x) + 0)``), the reuse of dead buffers a compiler's memory
planner does.  The inference copy also keeps each weight in oneDNN's blocked layout
(``torch.ops.mkldnn._reorder_convolution_weight``, as Inductor's freezing does) instead
of having it copied and reordered on every call, and the convolutions that still
allocate keep their output between calls (written into again once nothing else refers to
it).  Together these make ResNet-56's Score-CAM at 32 px ~13 % faster (measured in
docs/explain.md).
"""

from __future__ import annotations

import math
import operator
import sys
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PointwiseConv2d", "fuse_conv_pointwise", "pointwise_available"]

_RELUS_FUNCTIONS = (F.relu, torch.relu, torch.relu_)
_ADDS = (operator.add, torch.add, operator.iadd)


def pointwise_available() -> bool:
    """Whether this PyTorch build has oneDNN's fused convolution operator."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return hasattr(torch.ops.mkldnn, "_convolution_pointwise") and bool(
            torch.ops.mkldnn._convolution_pointwise.overloads()
        )
    except (AttributeError, RuntimeError):
        return False


class PointwiseConv2d(nn.Module):
    """``relu(conv(x))`` or ``relu(conv(x) + residual)`` in one oneDNN call.

    Shares the convolution's weight and bias tensors (detached, read-only; with
    :attr:`pack_weight` the weight is replaced by a reordered oneDNN tensor, by
    :func:`fuse_conv_pointwise` or else on the first fused call).  The fused kernel runs
    for float32 CPU inputs without autograd; anything else (another dtype or device,
    gradients on, a residual that would broadcast) takes ``F.conv2d`` and the ordinary
    operators, which compute the same function.
    """

    def __init__(
        self, conv: nn.Conv2d, *, relu: bool, residual: bool, overwrite_residual: bool = False
    ):
        super().__init__()
        self.register_buffer("weight", conv.weight.detach())
        bias = conv.bias.detach() if conv.bias is not None else None
        self.register_buffer("bias", bias)
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.out_channels = conv.out_channels
        self._spatial: dict[torch.Size, tuple[int, ...]] = {}
        self.relu = relu
        self.residual = residual
        #: Write the result into the residual tensor instead of a new one (set by
        #: :func:`fuse_conv_pointwise` only where nothing reads that tensor later).
        self.overwrite_residual = overwrite_residual
        #: Reorder the weight for oneDNN on the first fused call (see
        #: :meth:`_fused_weight`); the inference copy sets it.
        self.pack_weight = False
        #: Keep an output this module had to allocate and write later outputs
        #: into it once nothing else holds it (see :meth:`_held_scratch`); the
        #: inference copy sets it on every fused convolution without a residual
        #: (one handed a dead tensor that holds its output never allocates).
        self.keep_output = False
        self._held: torch.Tensor | None = None

    def _output_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        size = x.shape[-2:]
        spatial = self._spatial.get(size)
        if spatial is None:  # computed once per input size: this runs on every call
            kernel = self.weight.shape[-2:]
            spatial = self._spatial[size] = tuple(
                (n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, p, d, k, s in zip(
                    size, self.padding, self.dilation, kernel, self.stride, strict=True
                )
            )
        return (x.shape[0], self.out_channels, *spatial)

    def _fused_applies(self, x: torch.Tensor, other: torch.Tensor | None) -> bool:
        if not x.is_cpu or x.dtype != torch.float32 or x.ndim != 4:
            return False
        if self.weight.dtype != torch.float32 or torch.is_grad_enabled():
            return False  # the fused operator has no backward
        if other is None:
            return True
        return (
            other.is_cpu
            and other.dtype == torch.float32
            and other.shape == self._output_shape(x)
        )

    def forward(
        self, x: torch.Tensor, other: torch.Tensor | None = None, *,
        scratch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``relu(conv(x) [+ other])``.

        ``scratch`` (set by :func:`fuse_conv_pointwise`) is a tensor of this graph
        that nothing reads any more; where it has the output's shape and layout,
        the result is written into it instead of a new tensor.
        """
        if not self._fused_applies(x, other):
            y = F.conv2d(x, self._plain_weight(), self.bias, self.stride, self.padding,
                         self.dilation, self.groups)
            if other is not None:
                y = y + other
            return torch.relu(y) if self.relu else y
        weight = self._fused_weight(x)
        target = self._dead_output(x, scratch) if other is None else None
        if target is not None:
            # relu(conv(x) + 0) is relu(conv(x)): a zeroed dead tensor as the sum's
            # operand and output costs a memset instead of a fresh allocation.
            other, in_place = target.zero_(), True
        elif other is None:
            out = torch.ops.mkldnn._convolution_pointwise(
                x, weight, self.bias, self.padding, self.stride, self.dilation,
                self.groups, "relu" if self.relu else "none", [], "",
            )
            if self.keep_output:
                self._held = out
            return out
        else:
            # The kernel reads the residual in the output's layout.
            other = other.contiguous(memory_format=_layout(x))
            # In place: one 1 MB activation fewer per block (fresh pages cost a fault each).
            in_place = self.overwrite_residual
        if in_place:
            op, first, second = torch.ops.mkldnn._convolution_pointwise_.binary, other, x
        else:
            op, first, second = torch.ops.mkldnn._convolution_pointwise.binary, x, other
        return op(
            first, second, weight, self.bias, self.padding, self.stride, self.dilation,
            self.groups, "add", None, "relu" if self.relu else None, [], "",
        )

    def _fused_weight(self, x: torch.Tensor) -> torch.Tensor:
        """The weight for the fused kernel, reordered into oneDNN's blocked layout once.

        Given a plain tensor, PyTorch copies the weight into the input's layout
        and oneDNN reorders it again on every call (~5 % of a ResNet-56 forward at
        batch 16).  With :attr:`pack_weight` the reordered tensor replaces the
        plain one (the same memory), made for the first input's shape unless
        :meth:`pack` ran before; another input shape still works (oneDNN
        reorders where its kernel wants another layout).
        """
        if self.pack_weight and not self.weight.is_mkldnn:
            self.pack(list(x.shape))
        return self.weight

    def pack(self, input_size: list[int] | None = None) -> None:
        """Replace :attr:`weight` by a copy in oneDNN's blocked layout.

        ``input_size``, the input's shape, lets oneDNN pick the layout for
        exactly that problem; without it, its default layout for the
        convolution (the one this module's kernels take at any batch size).
        """
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            self.weight, self.padding, self.stride, self.dilation, self.groups, input_size,
        )

    def _dead_output(
        self, x: torch.Tensor, scratch: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Where this call's output can go without allocating: into ``scratch``,
        else into the kept output; None where neither holds it."""
        if scratch is not None and (view := self._scratch_view(scratch, x)) is not None:
            return view
        held = self._held_scratch(x) if self.keep_output else None
        return None if held is None else self._scratch_view(held, x)

    def _held_scratch(self, x: torch.Tensor) -> torch.Tensor | None:
        """The kept output's first ``len(x)`` images, if nothing else refers to it.

        Whether they hold this call's output is :meth:`_scratch_view`'s to say,
        as for any scratch tensor.

        Nothing refers to it once the graph's locals from the call that made it
        are gone and neither the caller nor a view kept it.  A fresh allocation instead costs a page
        fault per 4 KiB on a CPU (glibc returns large blocks to the system), as
        much as the convolution itself for few channels.
        """
        if self._held is None or not self._held_is_free():
            return None
        if self._held.is_inference() and not torch.is_inference_mode_enabled():
            return None  # made under inference_mode: not writable outside it
        # A batch prefix of a contiguous or channels-last tensor is one block of it.
        return self._held[: x.shape[0]]

    def _held_is_free(self) -> bool:
        """Whether nothing but this module refers to :attr:`_held` or its memory.

        Two counts: Python references to the tensor object (this attribute and
        ``getrefcount``'s own argument), and tensors sharing its storage (itself,
        plus the storage object made here to ask).  A private PyTorch function
        gives the second; without it nothing is reused.
        """
        if not hasattr(torch._C, "_storage_Use_Count"):
            return False
        return sys.getrefcount(self._held) <= 2 and (
            torch._C._storage_Use_Count(self._held.untyped_storage()._cdata) <= 2
        )

    def release(self) -> None:
        """Drop the kept output (:attr:`keep_output`); the next call allocates anew."""
        self._held = None

    def _plain_weight(self) -> torch.Tensor:
        return self.weight.to_dense() if self.weight.is_mkldnn else self.weight

    def _scratch_view(self, scratch: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        """The output for input ``x`` as a view of the start of ``scratch``'s memory.

        ``scratch`` qualifies when it is a dense float32 CPU tensor (contiguous or
        channels-last) with at least as many elements as the output: a dead
        tensor of another shape (a wider or larger earlier activation) holds a
        later, smaller one, as a compiler's buffer planning would reuse it.
        None where it does not qualify.
        """
        shape = self._output_shape(x)
        layout = _layout(x)
        if not (scratch.is_cpu and scratch.dtype == torch.float32):
            return None
        if scratch.shape == shape and scratch.is_contiguous(memory_format=layout):
            return scratch
        dense = scratch.is_contiguous() or scratch.is_contiguous(
            memory_format=torch.channels_last)
        if not dense or scratch.numel() < math.prod(shape):
            return None
        return scratch.as_strided(shape, _dense_strides(shape, layout), scratch.storage_offset())

    def extra_repr(self) -> str:
        after = " + residual" if self.residual else ""
        after += ", relu" if self.relu else ""
        return f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, " \
               f"kernel={tuple(self.weight.shape[-2:])}, stride={tuple(self.stride)}{after}"


def _can_pack() -> bool:
    return hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")


def _can_write_in_place() -> bool:
    return hasattr(torch.ops.mkldnn, "_convolution_pointwise_")


def _dense_strides(shape: tuple[int, ...], layout: torch.memory_format) -> tuple[int, ...]:
    """Strides of a dense tensor of ``shape`` (4-D for channels-last) in ``layout``."""
    if layout == torch.channels_last:
        n, c, h, w = shape
        return (h * w * c, 1, w * c, c)
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _layout(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _is_relu(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return type(modules.get(node.target)) is nn.ReLU and len(node.args) == 1
    if node.op == "call_function":
        # F.relu is traced with its ``inplace`` flag; in place or not, the result is the same.
        return (
            node.target in _RELUS_FUNCTIONS
            and len(node.args) == 1
            and set(node.kwargs) <= {"inplace"}
        )
    if node.op == "call_method":
        return node.target in ("relu", "relu_") and len(node.args) == 1
    return False


def _residual_of(add: torch.fx.Node, conv: torch.fx.Node) -> torch.fx.Node | None:
    """The other operand of ``conv + other`` (either order), if ``add`` is such a sum."""
    is_add = (add.op == "call_function" and add.target in _ADDS) or (
        add.op == "call_method" and add.target in ("add", "add_")
    )
    if not is_add or add.kwargs or len(add.args) != 2:
        return None
    a, b = add.args
    other = b if a is conv else a if b is conv else None
    if not isinstance(other, torch.fx.Node) or other is conv:
        return None
    return other


def _fusable(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and conv.weight.dtype == torch.float32
    )


def fuse_conv_pointwise(
    gm: torch.fx.GraphModule, *, pack_weights: bool = False, keep_outputs: bool = False
) -> torch.fx.GraphModule:
    """Replace ``Conv2d -> ReLU`` and ``Conv2d -> + residual -> ReLU`` by :class:`PointwiseConv2d`.

    ``gm`` is changed in place and returned (call it on a copy such as
    :func:`boda.nn.fold_batchnorm`'s result, never on a user's model): the new
    modules are added to its own hierarchy, the replaced convolutions are
    deleted from it when unused.  A convolution whose output has other users
    (or no ReLU after it) is left as it is.

    The fused graph also reuses memory, as a compiler's buffer planning would:
    a block writes into its residual (made by another fused convolution or by
    ``F.pad``) where nothing reads that tensor later, and a convolution
    without a residual writes into a tensor of an earlier fused convolution
    that is dead by then (into the start of it where that one is larger: a
    wider or higher-resolution activation).  With ``pack_weights`` every fused
    convolution keeps its weight in oneDNN's own layout
    (:attr:`PointwiseConv2d.pack_weight`), packed here, one convolution at a
    time, with the convolution it replaces dropped at once, so that a folded
    copy's plain weights are freed as the packed ones are made: faster, but
    the module's ``weight`` buffers are then oneDNN tensors (an inference
    copy's, not for saving or moving to another device).  With
    ``keep_outputs`` every fused convolution without a residual keeps the
    output it had to allocate (having no dead tensor to write into, or one
    too small) and writes the next call's output into it when nothing else
    refers to it (:attr:`PointwiseConv2d.keep_output`): no fresh pages to
    fault in per call, for memory held between calls
    (:meth:`PointwiseConv2d.release` frees it).
    Such a module must not run in two threads at once (the check that nothing
    else refers to a kept output and the write into it are not one step).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    >>> fused = fuse_conv_pointwise(torch.fx.symbolic_trace(net))
    >>> [type(m).__name__ for m in fused.children()]
    ['PointwiseConv2d']
    >>> x = torch.rand(2, 3, 8, 8)
    >>> with torch.inference_mode():
    ...     torch.allclose(fused(x), net(x), atol=1e-6)
    True
    """
    modules = dict(gm.named_modules())
    graph = gm.graph
    count = 0
    for node in list(graph.nodes):
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        conv = modules.get(node.target)
        if not _fusable(conv) or len(node.users) != 1:
            continue
        (user,) = node.users
        residual = None
        if _is_relu(user, modules):
            last = user
        else:
            residual = _residual_of(user, node)
            if residual is None or len(user.users) != 1:
                continue
            (last,) = user.users
            if not _is_relu(last, modules):
                continue
        count += 1
        name = f"pointwise_conv{count}"
        while hasattr(gm, name):  # a graph fused before keeps its names
            count += 1
            name = f"pointwise_conv{count}"
        fused_conv = PointwiseConv2d(conv, relu=True, residual=residual is not None)
        fused_conv.pack_weight = pack_weights and _can_pack()
        gm.add_module(name, fused_conv)
        args = (node.args[0],) if residual is None else (node.args[0], residual)
        with graph.inserting_after(last):
            fused = graph.call_module(name, args)
        last.replace_all_uses_with(fused)
        # Erase the chain from its end: each node has no users left when erased.
        for dead in (last, user, node) if residual is not None else (last, node):
            graph.erase_node(dead)
        if fused_conv.pack_weight:
            # Packed now, the replaced convolution dropped at once: a copy's own
            # (folded) weight is freed before the next one is packed, so the packed
            # weights take the memory of the plain ones instead of adding to it.
            fused_conv.pack()
            if not any(n.op == "call_module" and n.target == node.target for n in graph.nodes):
                modules.pop(node.target, None)
                gm.delete_submodule(node.target)
    _overwrite_dead_residuals(gm)
    _recycle_dead_outputs(gm)
    if keep_outputs:
        for node in graph.nodes:
            if _made_by_pointwise(gm, node) and len(node.args) == 1:
                gm.get_submodule(node.target).keep_output = True
    graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def _made_by_pointwise(gm: torch.fx.GraphModule, node: Any) -> bool:
    return (
        isinstance(node, torch.fx.Node)
        and node.op == "call_module"
        and isinstance(gm.get_submodule(node.target), PointwiseConv2d)
    )


def _is_identity(gm: torch.fx.GraphModule, node: Any) -> bool:
    return (
        isinstance(node, torch.fx.Node)
        and node.op == "call_module"
        and type(gm.get_submodule(node.target)) is nn.Identity
        and len(node.args) == 1
        and not node.kwargs
    )


def _is_padding(node: Any) -> bool:
    """Whether ``node`` is ``F.pad(...)``, which always returns a new tensor.

    (A ResNet's option-A shortcut: ``F.pad(x[:, :, ::2, ::2], ...)``.)
    """
    return (
        isinstance(node, torch.fx.Node)
        and node.op == "call_function"
        and node.target in (F.pad, torch.constant_pad_nd)
    )


def _overwrite_dead_residuals(gm: torch.fx.GraphModule) -> None:
    """Let a fused block write into its residual where that tensor is never read again.

    Only residuals made by another :class:`PointwiseConv2d` or by ``F.pad``
    qualify: a fresh tensor of this graph's own, never a graph input, a
    parameter or a view of something else.  The convolution's own input must come from a third one
    (the kernel must not write into what it is still reading).
    """
    if not _can_write_in_place():
        return
    order = {node: i for i, node in enumerate(gm.graph.nodes)}
    for node in gm.graph.nodes:
        if node.op != "call_module" or len(node.args) != 2:
            continue
        fused = gm.get_submodule(node.target)
        if not isinstance(fused, PointwiseConv2d):
            continue
        # An identity shortcut (nn.Identity) hands on the same tensor: look through it.
        chain = [node.args[1]]
        while _is_identity(gm, chain[-1]):
            chain.append(chain[-1].args[0])
        source = chain[-1]
        if (
            source is node.args[0]
            or not _made_by_pointwise(gm, node.args[0])
            or not (_made_by_pointwise(gm, source) or _is_padding(source))
        ):
            continue
        readers = {u for n in chain for u in n.users} - set(chain) - {node}
        if all(order[u] < order[node] for u in readers):
            fused.overwrite_residual = True


def _recycle_dead_outputs(gm: torch.fx.GraphModule) -> None:
    """Hand each fused convolution without a residual a dead tensor to write into.

    A candidate is the output of an earlier :class:`PointwiseConv2d` that is
    read only as the input of other fused convolutions, all of them earlier
    in the graph: a tensor of this graph's own that nobody reads again (never
    a graph input, a parameter, a view or the output).  Each candidate is
    handed on once: the one with the same number of output channels that died
    last, else the one that died last (whether it holds the output is checked
    at every call: :meth:`PointwiseConv2d._scratch_view`).
    """
    if not _can_write_in_place():
        return
    nodes = [n for n in gm.graph.nodes if _made_by_pointwise(gm, n)]
    order = {node: i for i, node in enumerate(gm.graph.nodes)}

    def last_read(node: torch.fx.Node) -> int | None:
        """Where ``node``'s output is read for the last time; None if it cannot be reused."""
        users = list(node.users)
        if not users or any(
            not _made_by_pointwise(gm, u) or u.args[0] is not node or node in u.args[1:]
            or node in u.kwargs.values()
            for u in users
        ):
            return None
        return max(order[u] for u in users)

    # Candidates in the order they die; the dead ones in the order they died.
    dying = sorted((i, c) for c in nodes if (i := last_read(c)) is not None)
    dead: list[torch.fx.Node] = []
    next_dying = 0
    for node in nodes:
        while next_dying < len(dying) and dying[next_dying][0] < order[node]:
            dead.append(dying[next_dying][1])
            next_dying += 1
        if len(node.args) != 1 or node.kwargs or not dead:
            continue
        # The one that died last with as many channels (the same shape, unless
        # strided), else the one that died last (large enough when an earlier,
        # wider or larger activation).
        channels = _out_channels(gm, node)
        same = [d for d in dead if _out_channels(gm, d) == channels]
        chosen = same[-1] if same else dead[-1]
        dead.remove(chosen)
        node.kwargs = {"scratch": chosen}


def _out_channels(gm: torch.fx.GraphModule, node: torch.fx.Node) -> int:
    return gm.get_submodule(node.target).out_channels
