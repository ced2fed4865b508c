"""Audit of boda.nn's foundation: conversions, CPU threads, checkpoint loading, the
CIFAR ResNets, and the CLI's --model checks.  Each test names what was wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from boda.errors import InvalidImageError, InvalidParameterError, ModelError  # noqa: E402
from boda.nn import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    CifarResNet,
    image_to_tensor,
    load_model,
    resnet20,
    set_cpu_threads,
    tensor_to_image,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- conversions ----------------------------------------------------------------------------
def test_tensor_to_image_refuses_integer_tensors():
    """A uint8 (0-255) tensor was cast to float and clipped to [0, 1]: an all-white image,
    without a word (normalize() already refuses integer tensors)."""
    x = torch.full((1, 3, 2, 2), 128, dtype=torch.uint8)
    for t in (x, x[0], x.long()):
        with pytest.raises(InvalidImageError, match="floating-point"):
            tensor_to_image(t)
    np.testing.assert_allclose(tensor_to_image(x.float() / 255)[0, 0, 0], 128 / 255, rtol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1, 4, 5), (1, 4, 5), (2, 3, 1, 1)])
def test_tensor_to_image_never_returns_a_view_of_the_tensor(shape):
    """With clip=False a gray (or 1 x 1) float32 tensor came back as a numpy view of its
    memory: writing to the "converted" image changed the caller's tensor."""
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    out = tensor_to_image(x, clip=False)
    assert not np.shares_memory(out, x.numpy())
    out += 1.0
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool, "float32"])
def test_image_to_tensor_refuses_a_dtype_that_is_not_floating_point(dtype):
    """dtype=torch.uint8 truncated the [0, 1] values: an all-zero tensor."""
    img = np.full((2, 2, 3), 0.7, np.float32)
    with pytest.raises(InvalidParameterError, match="dtype"):
        image_to_tensor(img, dtype=dtype)
    assert image_to_tensor(img, dtype=torch.float64).dtype == torch.float64


def test_image_to_tensor_follows_torchvision_to_tensor_and_normalize(rng):
    """Reference: torchvision's documented ToTensor (HWC uint8 -> CHW float / 255) then
    Normalize ((x - mean) / std per channel), written out in numpy; views with negative or
    Fortran strides give the same result and are left unchanged."""
    u8 = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    want = (u8.transpose(2, 0, 1) / 255.0 - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(
        IMAGENET_STD
    )[:, None, None]
    got = image_to_tensor(u8, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    np.testing.assert_allclose(got[0].numpy(), want, atol=1e-6)
    for view in (u8[:, ::-1], u8[..., ::-1], np.asfortranarray(u8)):
        copy = view.copy()
        got = image_to_tensor(view, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        ref = (copy.transpose(2, 0, 1) / 255.0 - np.array(IMAGENET_MEAN)[:, None, None]) / (
            np.array(IMAGENET_STD)[:, None, None]
        )
        np.testing.assert_allclose(got[0].numpy(), ref, atol=1e-6)
        np.testing.assert_array_equal(view, copy)


# -- threads ---------------------------------------------------------------------------------
def test_set_cpu_threads_refuses_counts_past_any_machine():
    """2**63 ended in torch's ValueError (a traceback) and 10**6 killed the process with a
    segmentation fault; the CLI's --threads stops at 1024, the library did not."""
    before = torch.get_num_threads()
    with pytest.raises(InvalidParameterError, match="at most 1024"):
        set_cpu_threads(2**63)
    assert torch.get_num_threads() == before
    # In a child process: before the fix this one crashed the interpreter.
    code = (
        "from boda.errors import InvalidParameterError\n"
        "from boda.nn import set_cpu_threads\n"
        "try:\n    set_cpu_threads(10**6)\nexcept InvalidParameterError:\n    print('refused')\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "refused", done.stderr[-500:]
    assert set_cpu_threads(1024) == before
    set_cpu_threads(before)


# -- loading checkpoints ---------------------------------------------------------------------
def _probe_arch(monkeypatch):
    from boda.nn import _models

    builds: list[int] = []

    def probe(num_classes: int) -> nn.Module:
        if torch.empty(0).device.type != "meta":
            builds.append(num_classes)
        return nn.Sequential(nn.Flatten(), nn.Linear(4, num_classes))

    monkeypatch.setitem(_models.ARCHITECTURES, "probe", probe)
    return builds


def test_the_size_guard_counts_the_bytes_a_checkpoint_really_holds(tmp_path, monkeypatch):
    """A stride-0 expanded tensor counted as numel x itemsize bytes: a file of a few hundred
    bytes (or resnet20's 1.1 MB with 10**7 classes) passed the "model at most 4 x its
    checkpoint" guard and was built (2.7 GB, 25 s; 10**8 classes: 25.6 GB), contrary to
    docs/security.md."""
    from boda.nn import _models

    builds = _probe_arch(monkeypatch)
    monkeypatch.setattr(_models, "_MIN_BUILD_BYTES", 1000)
    path = tmp_path / "claims.pt"
    n = 10**5  # a 2 MB layer from 20 bytes of storage
    torch.save({"1.weight": torch.zeros(1, 4).expand(n, 4), "1.bias": torch.zeros(1).expand(n)},
               path)
    assert path.stat().st_size < 10_000
    with pytest.raises(ModelError, match="would take"):
        load_model(path, arch="probe")
    assert builds == []
    # Tied weights (one storage under two names) count once, and a real file still loads.
    good = nn.Sequential(nn.Flatten(), nn.Linear(4, 300))
    torch.save(good.state_dict(), path)
    assert load_model(path, arch="probe").model[1].weight.shape == (300, 4)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda v: v.to(torch.complex64), "complex"),
        (lambda v: (v * 100).long(), "int64"),
        (lambda v: v > 0, "bool"),
    ],
)
def test_weights_of_another_kind_of_number_are_refused(tmp_path, change, match):
    """Complex weights lost their imaginary part and integer weights loaded as whole
    numbers, each as a model of wrong weights (torch's copy_ casts without a word, or a
    UserWarning at most)."""
    state = resnet20().state_dict()
    state["conv1.weight"] = change(state["conv1.weight"])
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(ModelError, match=rf"conv1\.weight.*{match}"):
        load_model(path, arch="resnet20")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["meta", "sparse", "quantized"])
def test_tensors_without_plain_cpu_data_are_refused_in_one_line(tmp_path, kind):
    """A meta, sparse or quantized tensor gave "do not fit the architecture" followed by
    torch's multi-line traceback text (errors are one line)."""
    state = resnet20().state_dict()
    w = state["conv1.weight"]
    state["conv1.weight"] = {
        "meta": lambda: w.to("meta"),
        "sparse": lambda: w.to_sparse(),
        "quantized": lambda: torch.quantize_per_tensor(w, 0.1, 0, torch.qint8),
    }[kind]()
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"conv1\.weight") as info:
        load_model(path, arch="resnet20")
    assert "\n" not in str(info.value)


def test_half_precision_non_contiguous_and_shared_tensors_load(tmp_path):
    """What must keep working: float16/bfloat16 weights (cast to the model's float32),
    a transposed (non-contiguous) tensor, two names sharing one storage."""
    ref = resnet20().eval()
    state = ref.state_dict()
    for dtype in (torch.float16, torch.bfloat16):
        path = tmp_path / f"{dtype}.pt"
        torch.save({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()},
                   path)
        got = load_model(path, arch="resnet20").model
        torch.testing.assert_close(got.conv1.weight, state["conv1.weight"].to(dtype).float())
    odd = dict(state)
    odd["linear.weight"] = state["linear.weight"].t().contiguous().t()
    assert not odd["linear.weight"].is_contiguous()
    path = tmp_path / "odd.pt"
    torch.save(odd, path)
    got = load_model(path, arch="resnet20").model
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(got(x), ref(x))


def test_a_builtin_name_does_not_silently_drop_arch_and_classes():
    """load_model("resnet20-cifar10", arch="resnet56") returned ResNet-20, and classes= or
    num_classes= for a built-in model were ignored."""
    for kwargs in ({"arch": "resnet56"}, {"num_classes": 4}, {"classes": ["a", "b"]}):
        with pytest.raises(InvalidParameterError, match="built-in"):
            load_model("resnet20-cifar10", **kwargs)
    lm = load_model("resnet20-cifar10", arch="resnet20", num_classes=10)
    assert lm.name == "resnet20-cifar10"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_model_path_that_is_not_a_regular_file_is_refused(tmp_path):
    """--model on a named pipe hung for ever (the TorchScript check opened it and waited
    for a writer); /dev/null was "neither a built-in model nor an existing file"."""
    from boda.cli._torch_options import check_cli_model

    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    code = (
        "import sys\nfrom boda.errors import InvalidParameterError\n"
        "from boda.cli._torch_options import check_cli_model\n"
        "try:\n    check_cli_model(sys.argv[1], 'resnet20')\n"
        "except InvalidParameterError as e:\n    print(e)\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("check_cli_model hung on a named pipe")
    assert "not a regular file" in done.stdout, done.stderr[-500:]
    if os.path.exists("/dev/null"):
        with pytest.raises(InvalidParameterError, match="not a regular file"):
            check_cli_model("/dev/null", "resnet20")
        with pytest.raises(ModelError, match="not a regular file"):
            load_model("/dev/null", arch="resnet20")


def test_a_compressed_checkpoint_cannot_expand_far_past_its_size(tmp_path):
    """A zip bomb: torch.save stores records uncompressed, but torch.load inflates deflated
    ones too, so a 390 kB file loaded 400 MB (and 1 MB would load 1 GB); the CRC check
    inflated it all first as well."""
    import zipfile

    src = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2 * 10**7)}, src)  # 80 MB of zeros
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename),
                          compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ModelError, match="expand"):
        load_model(bomb, arch="resnet20")
    # A checkpoint recompressed by hand (weights compress little) still loads.
    state = resnet20().state_dict()
    torch.save(state, src)
    zipped = tmp_path / "zipped.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(zipped, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename),
                          compress_type=zipfile.ZIP_DEFLATED)
    got = load_model(zipped, arch="resnet20").model
    assert torch.equal(got.conv1.weight, state["conv1.weight"])


# -- the CIFAR ResNets ----------------------------------------------------------------------
def test_option_a_shortcut_is_the_zero_padded_strided_identity():
    """He et al. 2016, Sec. 4.2 / option A: where a stage doubles the filters and halves
    the map, the shortcut is x subsampled with stride 2, with the new channels zero (no
    parameters).  Checked on each stage's first block against that definition."""
    net = CifarResNet(3).eval()
    x = torch.randn(2, 16, 32, 32, generator=torch.Generator().manual_seed(0))
    block = net.layer2[0]
    short = block.shortcut(x)
    want = torch.zeros(2, 32, 16, 16)
    want[:, 8:24] = x[:, :, ::2, ::2]  # 16 -> 32 channels: 8 zero channels each side
    assert torch.equal(short, want)
    assert sum(p.numel() for p in block.shortcut.parameters()) == 0
    # A whole block: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut).
    with torch.no_grad():
        inner = F.relu(block.bn1(block.conv1(x)))
        torch.testing.assert_close(block(x), F.relu(block.bn2(block.conv2(inner)) + want))
    assert isinstance(net.layer1[0].shortcut, nn.Identity)
    assert net.layer3[0].shortcut(torch.zeros(1, 32, 16, 16)).shape == (1, 64, 8, 8)


@pytest.mark.parametrize("bad", [{"num_blocks": 2.5}, {"num_blocks": "3"}, {"num_classes": 2.9},
                                 {"num_classes": True}])
def test_resnet_and_shapes_cnn_sizes_are_whole_numbers(bad):
    """int() truncated CifarResNet(2.5) to a ResNet-14 and ShapesCNN(2.9) to 2 classes,
    and took the string "3"."""
    from boda.nn import ShapesCNN

    args = {"num_blocks": 3, "num_classes": 10, **bad}
    with pytest.raises(InvalidParameterError, match="whole number"):
        CifarResNet(**args)
    if "num_classes" in bad:
        with pytest.raises(InvalidParameterError, match="whole number"):
            ShapesCNN(bad["num_classes"])
    assert CifarResNet(np.int64(3), np.int64(10)).depth == 20


def test_a_path_named_like_a_built_in_model_is_that_file(tmp_path, monkeypatch):
    """A Path always names a file: one called "resnet20-cifar10" in the working folder
    was ignored for the built-in model of that name."""
    monkeypatch.chdir(tmp_path)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).eval()
    torch.jit.save(torch.jit.trace(model, torch.rand(1, 3, 4, 4)), tmp_path / "resnet20-cifar10")
    loaded = load_model(Path("resnet20-cifar10"), trust_code=True)
    assert loaded.model(torch.rand(1, 3, 4, 4)).shape == (1, 2)
    assert len(load_model("resnet20-cifar10").classes) == 10  # the name: the built-in model
