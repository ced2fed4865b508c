"""Tests for boda.nn's inference copies: BatchNorm folding, the frozen path, the cache."""

from __future__ import annotations

import gc
import weakref

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from boda.errors import InvalidParameterError, ModelError  # noqa: E402
from boda.nn import (  # noqa: E402
    InferenceCache,
    PointwiseConv2d,
    cpu_threads,
    fold_batchnorm,
    fuse_conv_pointwise,
    inference_copy,
    load_model,
    pointwise_available,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


class ConvBN(nn.Module):
    """conv-BN-ReLU, a conv whose output is also used elsewhere, BN1d after Conv1d."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6))
        self.shared = nn.Conv2d(6, 6, 3, padding=1)  # feeds the BN and the residual sum
        self.bn = nn.BatchNorm2d(6)
        self.line = nn.Conv1d(6, 4, 1)
        self.bn1d = nn.BatchNorm1d(4, affine=False)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = torch.relu(self.stem(x))
        s = self.shared(y)
        y = torch.relu(self.bn(s) + s)
        z = self.bn1d(self.line(y.mean(dim=2)))
        return self.fc(z.mean(dim=2))


def convbn(seed: int = 0) -> ConvBN:
    torch.manual_seed(seed)
    model = ConvBN().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
    return model


def _state(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [id(m) for m in model.modules()],
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
    )


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _same_state(model: nn.Module, before) -> bool:
    sd, ids, flags, grads = _state(model)
    return (
        sd.keys() == before[0].keys()
        and all(torch.equal(sd[k], before[0][k]) for k in sd)
        and ids == before[1]
        and flags == before[2]
        and grads == before[3]
    )


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5) -> bool:
    return bool((a - b).abs().max() <= rtol * b.abs().max())


def test_fold_matches_the_model_and_leaves_it_alone():
    model = convbn()
    before = _state(model)
    folded = fold_batchnorm(model)
    kinds = [type(m) for m in folded.modules()]
    # The stem's BN is folded; the shared conv's is not (its output is used twice);
    # BN1d after Conv1d is folded even without affine parameters.
    assert kinds.count(nn.BatchNorm2d) == 1 and nn.BatchNorm1d not in kinds
    x = torch.randn(4, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert _close(folded(x), model(x))
    assert _same_state(model, before)
    assert not any(isinstance(m, nn.Module) and m is folded for m in model.modules())


def test_fold_leaves_a_float64_model_alone():
    # The fold computes in float64: a float64 weight must be copied, not scaled in place.
    model = convbn().double()
    before = _state(model)
    folded = fold_batchnorm(model)
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), rtol=1e-10, atol=1e-12)
    assert _same_state(model, before)


def test_fold_is_the_batchnorm_formula():
    """Ioffe & Szegedy, Alg. 2: y = gamma (x - mu) / sqrt(var + eps) + beta, per channel."""
    torch.manual_seed(3)
    conv, bn = nn.Conv2d(2, 3, 1, bias=True), nn.BatchNorm2d(3, eps=0.1).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
        bn.weight.copy_(torch.tensor([2.0, 1.0, -1.0]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, 3.0]))
    folded = fold_batchnorm(nn.Sequential(conv, bn))
    (new,) = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
    s = bn.weight / torch.sqrt(bn.running_var + 0.1)
    torch.testing.assert_close(new.weight, conv.weight * s.view(-1, 1, 1, 1))
    torch.testing.assert_close(new.bias, (conv.bias - bn.running_mean) * s + bn.bias)
    assert new is not conv and not new.weight.requires_grad


def test_training_mode_batchnorm_is_not_folded():
    model = convbn().train()
    folded = fold_batchnorm(model)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == 2


@pytest.mark.parametrize("name", ["resnet20-cifar10", "resnet56-cifar10"])
@pytest.mark.parametrize("freeze", [False, True])
def test_shipped_models(name, freeze):
    model = load_model(name).model.eval()
    before = _state(model)
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    one = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        fast = inference_copy(model, x, freeze=freeze)
        assert fast is not model
        if torch.backends.mkldnn.is_available():  # frozen + oneDNN Graph where it exists
            assert isinstance(fast, torch.fx.GraphModule) != freeze
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
        for inp in (x, one, x[:3]):  # the trace example, another batch size, contiguous
            assert _close(fast(inp), model(inp), 1e-4)
    assert _same_state(model, before) and _hooks(model) == 0


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if y.mean() > 0:  # torch.fx cannot trace this; torch.jit.trace would bake one branch
            y = -y
        return self.fc(y.mean(dim=(2, 3)))


def test_untraceable_models_are_refused_and_the_cache_falls_back():
    model = DataDependent().eval()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ModelError, match="cannot trace"):
        fold_batchnorm(model)
    cache = InferenceCache(model, min_forwards=1)
    assert cache.get(x) is model and cache.get(x) is model
    with pytest.raises(InvalidParameterError):
        InferenceCache(model, min_forwards=0)


def test_a_copy_that_disagrees_is_refused():
    model = convbn()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        wrong = model(x) + 1.0
    with pytest.raises(ModelError, match="disagrees"):
        inference_copy(model, x, freeze=False, check=(x, wrong))


def test_cache_counts_forwards_and_rebuilds_after_changes():
    model = convbn()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    cache = InferenceCache(model, min_forwards=5)
    assert cache.get(x, forwards=2, freeze=False) is model  # 2 < 5: rent
    first = cache.get(x, forwards=3, freeze=False)  # 5: buy
    assert first is not model and cache.build_seconds is not None
    assert cache.get(x, freeze=False) is first
    # An optimizer-like in-place step bumps the tensor versions: the copy is stale.
    with torch.no_grad():
        model.stem[0].weight.mul_(1.5)
        model.bn.running_mean.add_(0.2)
    assert cache.get(x, forwards=4, freeze=False) is model  # counting restarts
    second = cache.get(x, forwards=1, freeze=False)
    assert second is not first
    with torch.no_grad():
        assert _close(second(x), model(x)) and not _close(first(x), model(x))
    # Training flags are part of the key too.
    model.train()
    assert cache.get(x, forwards=100, freeze=False) is not second
    model.eval()


def test_models_with_hooks_are_not_copied():
    model = convbn()
    x = torch.randn(2, 3, 8, 8)
    handle = model.stem.register_forward_hook(lambda m, i, o: None)
    cache = InferenceCache(model, min_forwards=1)
    assert cache.get(x, freeze=False) is model
    handle.remove()
    assert cache.get(x, freeze=False) is not model


def test_structured_outputs():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = convbn()

        def forward(self, x):
            y = self.net(x)
            return {"logits": y, "aux": y * 2}

    model = Pair().eval()
    x = torch.randn(2, 3, 8, 8)
    fast = inference_copy(model, x)  # TorchScript refuses dicts: the fx copy is kept
    assert isinstance(fast, torch.fx.GraphModule)
    with torch.no_grad():
        assert _close(fast(x)["aux"], model(x)["aux"])


@pytest.mark.parametrize("freeze", [False, True])
def test_bfloat16_copy(freeze):
    model = load_model("resnet20-cifar10").model.eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        fast = inference_copy(model, x, freeze=freeze, dtype=torch.bfloat16)
        out, ref = fast(x), model(x)
    assert out.dtype == torch.bfloat16  # it casts by itself, no autocast needed around it
    assert _close(out.float(), ref, 5e-2) and not _close(out.float(), ref, 1e-6)


def test_a_conv_called_twice_before_two_batchnorms():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.bn_a, self.bn_b = nn.BatchNorm2d(3), nn.BatchNorm2d(3)

        def forward(self, x):
            return self.bn_a(self.conv(x)) + self.bn_b(self.conv(x))

    torch.manual_seed(5)
    model = Twice().eval()
    with torch.no_grad():
        model.bn_a.running_mean.fill_(1.0)
        model.bn_b.running_var.fill_(4.0)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert _close(folded(x), model(x))


# --------------------------------------------------------------- pointwise fusion
class Residual(nn.Module):
    """conv-ReLU, conv + shortcut -> ReLU, a conv with two users, conv + shortcut without ReLU."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.c = nn.Conv2d(8, 8, 3, padding=1)  # output also read by the head
        self.d = nn.Conv2d(8, 8, 3, stride=2, padding=1)  # added without a ReLU after
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        y = torch.relu(self.a(x))
        y = nn.functional.relu(self.b(y) + y)  # fused with the residual
        c = self.c(y)
        y = torch.relu(c) + c.mean(dim=(1, 2, 3), keepdim=True)
        y = self.d(y) + y[:, :, ::2, ::2]
        return self.head(y.mean(dim=(2, 3)))


def _agrees_and_leaves_input_alone(fused: nn.Module, model: nn.Module, x: torch.Tensor) -> bool:
    """The fused graph gives the model's output on ``x`` and never writes into ``x``."""
    before = x.clone()
    agrees = _close(fused(x), model(x), 1e-5)
    return agrees and torch.equal(x, before)


def _fused_count(module: nn.Module) -> int:
    return sum(isinstance(m, PointwiseConv2d) for m in module.modules())


def _every_conv_fused(copy: nn.Module, model: nn.Module) -> bool:
    return _fused_count(copy) == sum(isinstance(m, nn.Conv2d) for m in model.modules())


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_pointwise_fusion_matches_the_model_and_leaves_other_convs():
    model = Residual().eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(model))
    assert _fused_count(fused) == 2  # a (ReLU), b (+ residual, ReLU); c and d stay
    assert sum(type(m) is nn.Conv2d for m in fused.modules()) == 2
    x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model(x)
        for inp in (x, x.contiguous(memory_format=torch.channels_last), x[:1]):
            assert _close(fused(inp), want[: inp.shape[0]], 1e-5)
    # With gradients on, the fused kernel (no backward) is skipped: same values.
    assert _close(fused(x), want, 1e-5)


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_pointwise_conv_falls_back_when_the_kernel_does_not_apply():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    fused = PointwiseConv2d(conv, relu=True, residual=True)
    x = torch.rand(2, 4, 6, 6)
    with torch.inference_mode():
        for other in (torch.rand(2, 4, 6, 6), torch.rand(1, 4, 1, 1)):  # the second broadcasts
            assert _close(fused(x, other), torch.relu(conv(x) + other), 1e-5)
        x64 = x.double()
        conv64 = nn.Conv2d(4, 4, 3, padding=1).double()
        assert _close(PointwiseConv2d(conv64, relu=True, residual=False)(x64),
                      torch.relu(conv64(x64)), 1e-12)


@pytest.mark.parametrize("name", ["resnet20-cifar10", "resnet56-cifar10"])
def test_pointwise_copy_of_shipped_models(name):
    model = load_model(name).model.eval()
    before = _state(model)
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fast = inference_copy(model, x, freeze=False, pointwise=True)
        if pointwise_available():  # every convolution is followed by a ReLU
            assert _every_conv_fused(fast, model)
        for inp in (x, x[:1].contiguous()):
            assert _close(fast(inp), model(inp), 1e-4)
        slow = inference_copy(model, x, pointwise=True, dtype=torch.bfloat16)
        assert _fused_count(slow) == 0  # reduced precision: the folded copy under autocast
    assert _same_state(model, before) and _hooks(model) == 0


class Chain(nn.Module):
    """Two residual blocks; the second block's shortcut is read again at the end."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1)
                                    for i in range(5)])

    def forward(self, x):
        c = self.convs
        h = torch.relu(c[0](x))
        y = torch.relu(c[2](torch.relu(c[1](h))) + h)  # h is dead after: overwritten
        z = torch.relu(c[4](torch.relu(c[3](y))) + y)  # y is read below: kept
        return (z + y).mean(dim=(2, 3))


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_pointwise_overwrites_only_residuals_nobody_reads_later():
    model = Chain().eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(model))
    blocks = [m for m in fused.modules() if isinstance(m, PointwiseConv2d) and m.residual]
    assert [m.overwrite_residual for m in blocks] == [True, False]
    x = torch.rand(3, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            assert _agrees_and_leaves_input_alone(fused, model, inp)


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_pointwise_grouped_dilated_and_strided_convolutions():
    net = nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4), nn.ReLU(inplace=True),
        nn.Conv2d(8, 16, 5, stride=2, padding=1, groups=8, bias=False), nn.ReLU(),
        nn.Conv2d(16, 16, 1),  # no ReLU after it: left as it is
    ).eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(net))
    assert _fused_count(fused) == 2
    x = torch.rand(3, 8, 17, 13, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            assert _close(fused(inp), net(x), 1e-5)


class Recycle(nn.Module):
    """Unary convolutions that may write into dead outputs of earlier ones.

    ``t`` (c1's output) is read only by c2, so c3 may write into it; c3's output
    ``u`` is also read by the head, so nothing may reuse it; c5 is strided, so
    the dead tensor it is handed (c4's output) has the wrong shape at run time.
    """

    def __init__(self, read_t_again: bool = False):
        super().__init__()
        self.read_t_again = read_t_again
        self.c = nn.ModuleList([nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1,
                                          stride=2 if i == 5 else 1) for i in range(7)])

    def forward(self, x):
        c = self.c
        h = torch.relu(c[0](x))
        t = torch.relu(c[1](h))
        y = torch.relu(c[2](t) + h)
        u = torch.relu(c[3](y))
        v = torch.relu(c[4](u))
        w = torch.relu(c[5](v))  # strided: 8 channels at half the size
        z = torch.relu(c[6](w))
        out = z.mean(dim=(2, 3)) + u.mean(dim=(2, 3))
        return out + t.mean(dim=(2, 3)) if self.read_t_again else out


def _scratch_of(fused: torch.fx.GraphModule) -> dict[str, str]:
    """fused conv node -> the node whose tensor it is handed to write into."""
    return {n.name: n.kwargs["scratch"].name for n in fused.graph.nodes if "scratch" in n.kwargs}


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
@pytest.mark.parametrize("read_t_again", [False, True])
def test_pointwise_writes_into_dead_outputs_only(read_t_again):
    model = Recycle(read_t_again).eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(model))
    names = [n.name for n in fused.graph.nodes if n.op == "call_module"]
    c1, c2, c3, c4, _, c6 = names[1:7]  # names[0] is c0; c2 is the residual block
    # c4 may take y (read only by c3); c6 is handed c4's output, which does not fit
    # at run time (c5 halves the size); u (read by the head) is never handed on.
    want = {c4: c2, c6: c4} if read_t_again else {c3: c1, c4: c2, c6: c4}
    assert _scratch_of(fused) == want
    x = torch.rand(3, 3, 10, 10, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        for inp in (x, x.contiguous(memory_format=torch.channels_last), x[:1]):
            assert _agrees_and_leaves_input_alone(fused, model, inp)
    assert _close(fused(x), model(x), 1e-5)  # gradients on: the plain operators


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_packed_weights_give_the_same_results_for_any_input():
    model = Recycle().eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(model), pack_weights=True)
    convs = [m for m in fused.modules() if isinstance(m, PointwiseConv2d)]
    x = torch.rand(4, 3, 10, 10, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        want = model(x)
        assert _close(fused(x), want, 1e-5)
        assert all(m.weight.is_mkldnn for m in convs)  # packed on the first fused call
        # other batch sizes, the other layout, another spatial size
        for inp in (x[:1], x.contiguous(memory_format=torch.channels_last), x[:2, :, :7, :9]):
            assert _close(fused(inp), model(inp), 1e-5)
    assert _close(fused(x), want, 1e-5)  # gradients on: the plain weight is unpacked


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_kept_outputs_only_where_a_convolution_had_to_allocate():
    model = Recycle().eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(model), keep_outputs=True)
    modules = {n.name: fused.get_submodule(n.target)
               for n in fused.graph.nodes if n.op == "call_module"}
    handed = set(_scratch_of(fused))  # these write into dead tensors
    residual = {n.name for n in fused.graph.nodes if n.op == "call_module" and len(n.args) == 2}
    assert {k for k, m in modules.items() if m.keep_output} == set(modules) - residual
    x = torch.rand(4, 3, 10, 10, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        for inp in (x, x[:2], x, x.contiguous(memory_format=torch.channels_last), x[:1, :, :7]):
            assert _agrees_and_leaves_input_alone(fused, model, inp)
    # Every dead tensor handed on here holds the output: none of them allocated.
    held = {k for k, m in modules.items() if m._held is not None}
    assert held == set(modules) - residual - handed != set()


class Narrowing(nn.Module):
    """Activations that die before narrower or smaller ones, and one too small.

    ``down`` (32 channels at half the size) fits into the start of ``h`` (16 at
    full size), ``b`` into ``t``; ``wide`` (48 channels) is handed ``d`` (32 at
    the same size, itself the start of ``h``), which is too small for it even
    though ``h``'s memory would not be.
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.a = nn.Conv2d(16, 16, 3, padding=1)
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.b = nn.Conv2d(32, 16, 1)
        self.wide = nn.Conv2d(16, 48, 1)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        t = torch.relu(self.a(h))  # h dies here
        d = torch.relu(self.down(t))  # t dies here: d (half the elements) fits into h or t
        u = torch.relu(self.b(d))
        w = torch.relu(self.wide(u))  # d is dead, but too small: allocates
        return w.mean(dim=(2, 3))


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_a_smaller_output_is_written_into_the_start_of_a_larger_dead_tensor():
    model = Narrowing().eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(model), keep_outputs=True)
    nodes = {n.name: n for n in fused.graph.nodes if n.op == "call_module"}
    stem, a, down, b, wide = nodes.values()
    handed = _scratch_of(fused)
    assert handed == {down.name: stem.name, b.name: a.name, wide.name: down.name}
    starts = {}
    for node in nodes.values():
        fused.get_submodule(node.target).register_forward_hook(
            lambda m, i, o, name=node.name: starts.__setitem__(name, o.data_ptr()))
    x = torch.rand(3, 3, 12, 10, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        for inp in (x, x.contiguous(memory_format=torch.channels_last), x[:1]):
            assert _agrees_and_leaves_input_alone(fused, model, inp)
            assert starts[down.name] == starts[stem.name]  # the start of the dead one
            assert starts[b.name] == starts[a.name]
            assert starts[wide.name] not in (starts[stem.name], starts[a.name])
    held = {name for name, n in nodes.items() if fused.get_submodule(n.target)._held is not None}
    assert held == {stem.name, a.name, wide.name}  # the ones that had to allocate


class PadShortcut(nn.Module):
    """A ResNet block with an option-A shortcut (``F.pad`` of the subsampled input)."""

    def __init__(self, read_pad_again: bool = False):
        super().__init__()
        self.read_pad_again = read_pad_again
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        p = F.pad(h[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2))
        y = torch.relu(self.b(torch.relu(self.a(h))) + p)
        out = y.mean(dim=(2, 3))
        return out + p.mean(dim=(2, 3)) if self.read_pad_again else out


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
@pytest.mark.parametrize("read_pad_again", [False, True])
def test_a_padded_shortcut_is_overwritten_only_when_nothing_reads_it_later(read_pad_again):
    model = PadShortcut(read_pad_again).eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(model))
    (block,) = [m for m in fused.modules() if isinstance(m, PointwiseConv2d) and m.residual]
    assert block.overwrite_residual is not read_pad_again
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            assert _agrees_and_leaves_input_alone(fused, model, inp)


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_packing_at_fusion_frees_each_folded_weight(monkeypatch):
    model = load_model("resnet20-cifar10").model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    plain = [weakref.ref(m.weight) for m in folded.modules() if isinstance(m, nn.Conv2d)]
    assert len(plain) == 19  # every convolution of ResNet-20 was folded (a new weight)
    alive_at_each_pack = []
    pack = PointwiseConv2d.pack

    def counting_pack(self, *args, **kwargs):
        alive_at_each_pack.append(sum(ref() is not None for ref in plain))
        return pack(self, *args, **kwargs)

    monkeypatch.setattr(PointwiseConv2d, "pack", counting_pack)
    fused = fuse_conv_pointwise(folded, pack_weights=True)
    # One by one: each plain weight is gone before the next one is packed.
    assert alive_at_each_pack == list(range(19, 0, -1))
    gc.collect()
    assert all(ref() is None for ref in plain)
    convs = [m for m in fused.modules() if isinstance(m, PointwiseConv2d)]
    assert len(convs) == 19 and all(m.weight.is_mkldnn for m in convs)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    with torch.inference_mode():
        for inp in (x, x[:1], x.contiguous(memory_format=torch.channels_last)):
            assert _close(fused(inp), model(inp), 1e-4)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.skipif(not pointwise_available(), reason="no oneDNN in this PyTorch build")
def test_a_kept_output_is_reused_only_when_nothing_else_holds_it():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    fused = fuse_conv_pointwise(torch.fx.symbolic_trace(net), keep_outputs=True)
    (conv,) = [m for m in fused.modules() if isinstance(m, PointwiseConv2d)]
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(4, 3, 9, 9, generator=g), torch.rand(4, 3, 9, 9, generator=g)
    with torch.inference_mode():
        first = fused(x)  # the graph's output is the kept tensor itself
        second = fused(y)  # so this call must not write into it
        assert first.data_ptr() != second.data_ptr()
        assert _close(first, net(x), 1e-6) and _close(second, net(y), 1e-6)
        view, second_start = second[1:], second.data_ptr()  # a view keeps it in use too
        del first, second
        third = fused(x)
        assert third.data_ptr() != second_start
        assert _close(view, net(y)[1:], 1e-6)
        start = third.data_ptr()
        del view, third
        smaller = fused(x[:2])  # free now: the batch prefix of the kept tensor is reused
        assert smaller.data_ptr() == start and _close(smaller, net(x[:2]), 1e-6)
        del smaller
        larger = fused(torch.cat([x, y]))  # does not fit: a new tensor, kept from now on
        assert _close(larger, net(torch.cat([x, y])), 1e-6)
        assert conv._held is larger
        del larger
        conv.release()
        assert conv._held is None and _close(fused(y), net(y), 1e-6)
    # Kept under inference_mode, it cannot be written outside it: a new tensor then.
    with torch.no_grad():
        assert _close(fused(x), net(x), 1e-6)
        assert not conv._held.is_inference()
    with torch.inference_mode():  # a normal tensor may be written in inference mode
        start = conv._held.data_ptr()
        assert fused(y).data_ptr() == start


def _hooked(model: nn.Module, layer: nn.Module, x: torch.Tensor):
    """The model's output and ``layer``'s output (read by a forward hook) on ``x``."""
    seen = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o))
    try:
        out = model(x)
    finally:
        handle.remove()
    return out, seen["out"]


def test_fold_with_a_tap_returns_the_layer_as_a_hook_sees_it():
    model = convbn()
    x = torch.randn(3, 3, 9, 9, generator=torch.Generator().manual_seed(7))
    for layer in (model.stem, model.stem[0], model.stem[1], model.shared, model.fc):
        folded = fold_batchnorm(model, tap=layer)
        with torch.no_grad():
            (out, tapped), (want, act) = folded(x), _hooked(model, layer, x)
        assert _close(out, want) and _close(tapped, act)
    # A tapped convolution keeps its own output: its BatchNorm is not folded into it.
    kinds = [type(m) for m in fold_batchnorm(model, tap=model.stem[0]).modules()]
    assert kinds.count(nn.BatchNorm2d) == 2
    with pytest.raises(ModelError, match="tapped layer"):
        fold_batchnorm(model, tap=nn.ReLU())  # not part of the model


def test_a_tapped_copy_keeps_the_layer_out_of_in_place_writes():
    # layer1[0]'s output is the next block's residual, which the fused copy would
    # write its own result into: tapped, the tensor must survive to the end.
    model = load_model("resnet20-cifar10").model.eval()
    before = _state(model)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for layer in (model.layer1[0], model.layer2, model.layer3):
            fast = inference_copy(model, x, freeze=False, pointwise=True, tap=layer)
            if pointwise_available():  # the fused copy passed its check (not the fallback)
                assert _every_conv_fused(fast, model)
            want, act = _hooked(model, layer, x)
            for inp, ref, ref_act in ((x, want, act), (x[:1], *_hooked(model, layer, x[:1]))):
                out, tapped = fast.tapped(inp)
                assert _close(out, ref, 1e-4) and _close(tapped, ref_act, 1e-4)
                assert _close(fast(inp), ref, 1e-4)  # a plain call gives the output only
        if pointwise_available():
            untapped = inference_copy(model, x, freeze=False, pointwise=True)
            assert any(m.overwrite_residual for m in untapped.modules()
                       if isinstance(m, PointwiseConv2d))
        with pytest.raises(InvalidParameterError, match="tapped layer's output"):
            inference_copy(model, x, freeze=False, tap=model.layer3, check=(x, want))
    assert _same_state(model, before) and _hooks(model) == 0


def test_a_copy_that_disagrees_on_the_tapped_layer_is_refused():
    model = convbn()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want, act = _hooked(model, model.shared, x)
        with pytest.raises(ModelError, match="disagrees"):
            inference_copy(model, x, freeze=False, tap=model.shared, check=(x, want, act + 1))


def test_cache_built_returns_only_a_copy_that_exists_for_an_unchanged_model():
    model = convbn()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    cache = InferenceCache(model, min_forwards=2)
    assert cache.built(x, freeze=False, tap=model.shared) is None
    assert cache.get(x, forwards=1, freeze=False, tap=model.shared) is model
    assert cache.built(x, freeze=False, tap=model.shared) is None  # nothing is built by it
    copy = cache.get(x, forwards=1, freeze=False, tap=model.shared)
    assert cache.built(x, freeze=False, tap=model.shared) is copy
    # Another variant is another copy; the untapped one was never built.
    assert cache.built(x, freeze=False) is None
    # A layer the copy cannot give (here: not part of the model) leaves a copy without it.
    stray = nn.ReLU()
    plain = cache.get(x, forwards=2, freeze=False, tap=stray)
    assert plain is not model and not hasattr(plain, "tapped") and hasattr(copy, "tapped")
    with torch.no_grad():
        assert _close(plain(x), model(x))
    with torch.no_grad():
        model.shared.weight.mul_(1.1)
    assert cache.built(x, freeze=False, tap=model.shared) is None


def test_the_key_sees_data_writes_to_one_of_many_tensors_of_one_shape():
    """The fingerprint reduces small same-shaped tensors together (one stacked matrix
    per shape) and large ones alone; a write through ``.data`` to one of them, even
    one that keeps every norm and sum of the group (two weights swapped, a sign
    flipped), changes the key."""
    from boda.nn import resnet20
    from boda.nn._inference import _STACK_LIMIT, _same_key

    model = resnet20().eval()
    cache = InferenceCache(model)
    x = torch.rand(1, 3, 32, 32)
    small = (model.layer1[0].conv1.weight, model.layer1[1].conv2.weight)
    large = (model.layer3[0].conv2.weight, model.layer3[1].conv1.weight)
    assert small[0].numel() <= _STACK_LIMIT < large[0].numel()
    key = cache.key(x)
    assert _same_key(cache.key(x), key)  # deterministic
    for a, b in (small, large):
        assert a.shape == b.shape
        versions = (a._version, b._version)
        saved = a.detach().clone()
        a.data.copy_(b.data)
        b.data.copy_(saved)  # swapped in place: same storages, same versions
        assert (a._version, b._version) == versions
        swapped = cache.key(x)
        assert not _same_key(swapped, key)
        key = swapped
    model.layer2[1].bn1.running_var.data.mul_(-1)  # keeps the norm, flips the sum
    assert not _same_key(cache.key(x), key)
