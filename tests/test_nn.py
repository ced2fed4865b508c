"""Tests for boda.nn: conversions, threads, model loading, the CIFAR ResNets."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from boda.errors import InvalidImageError, InvalidParameterError, ModelError  # noqa: E402
from boda.io import read_image  # noqa: E402
from boda.nn import (  # noqa: E402
    CIFAR10_CLASSES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    cpu_threads,
    denormalize,
    image_to_tensor,
    list_models,
    load_model,
    load_state_dict,
    normalize,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    set_cpu_threads,
    tensor_to_image,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def r20():
    return load_model("resnet20-cifar10")


def _probe(n: int = 2) -> torch.Tensor:
    return torch.linspace(-2, 2, n * 3 * 32 * 32).reshape(n, 3, 32, 32)


# -- conversions ---------------------------------------------------------------------
def test_image_to_tensor_layout_and_roundtrip(rng):
    img = rng.random((5, 7, 3)).astype(np.float32)
    x = image_to_tensor(img)
    assert x.shape == (1, 3, 5, 7) and x.dtype == torch.float32
    np.testing.assert_array_equal(x[0, 1].numpy(), img[:, :, 1])
    xn = image_to_tensor(img, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    expected = (img - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(xn[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    back = tensor_to_image(xn, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert back.shape == (1, 5, 7, 3)
    np.testing.assert_allclose(back[0], img, atol=1e-6)
    np.testing.assert_allclose(tensor_to_image(xn[0], mean=IMAGENET_MEAN, std=IMAGENET_STD), img,
                               atol=1e-6)


def test_image_to_tensor_dtypes_batches_and_gray():
    u8 = np.full((4, 4, 3), 255, np.uint8)
    assert float(image_to_tensor(u8).max()) == 1.0
    gray = np.zeros((4, 6), np.float32)
    assert image_to_tensor(gray).shape == (1, 1, 4, 6)
    assert tensor_to_image(image_to_tensor(gray)).shape == (1, 4, 6)
    batch = image_to_tensor([u8, u8 // 2])
    assert batch.shape == (2, 3, 4, 4)
    assert image_to_tensor(np.zeros((3, 4, 4, 3))).shape == (3, 3, 4, 4)
    assert image_to_tensor(u8, size=(2, 3)).shape == (1, 3, 2, 3)
    with pytest.raises(InvalidImageError, match="one shape"):
        image_to_tensor([u8, np.zeros((5, 5, 3))])
    with pytest.raises(InvalidImageError):
        image_to_tensor(np.zeros((3, 4, 4)))
    with pytest.raises(InvalidParameterError):
        image_to_tensor(u8, mean=IMAGENET_MEAN)


def test_normalize_matches_formula_and_inverts():
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    y = normalize(x, (0.1, 0.2, 0.3), (0.5, 0.25, 2.0))
    torch.testing.assert_close(y[:, 1], (x[:, 1] - 0.2) / 0.25)
    torch.testing.assert_close(denormalize(y, (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)), x)
    with pytest.raises(InvalidParameterError):
        normalize(x, (0, 0), (1, 1))
    with pytest.raises(InvalidParameterError):
        normalize(x, (0, 0, 0), (1, 0, 1))
    # None used to be an AttributeError from inside the conversion
    for args in ((None, (1, 1, 1)), ((0, 0, 0), None)):
        for fn in (normalize, denormalize):
            with pytest.raises(InvalidParameterError, match="is None"):
                fn(x, *args)


def test_thread_settings_restore():
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    prev = set_cpu_threads(1)
    assert set_cpu_threads(prev) == 1
    with pytest.raises(InvalidParameterError):
        set_cpu_threads(0)


# -- the CIFAR ResNet family ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("builder", "millions"),
    [(resnet20, 0.27), (resnet32, 0.46), (resnet44, 0.66), (resnet56, 0.85)],
)
def test_resnet_parameter_counts_match_the_paper(builder, millions):
    # He et al. 2016, Table 6: 0.27M / 0.46M / 0.66M / 0.85M parameters.
    n = sum(p.numel() for p in builder().parameters())
    assert round(n / 1e6, 2) == millions


@pytest.mark.parametrize("name", ["resnet20-cifar10", "resnet56-cifar10"])
def test_builtin_weights_match_architecture_exactly(name):
    from importlib import resources

    res = resources.files("boda") / "data" / "models" / name.replace("-cifar10", "-cifar10.th")
    with res.open("rb") as f:
        raw = torch.load(f, weights_only=True, map_location="cpu")
    assert set(raw) == {"best_prec1", "state_dict"}
    ckpt = {k.removeprefix("module."): v for k, v in raw["state_dict"].items()}
    model = load_model(name).model
    # The checkpoint predates BatchNorm's num_batches_tracked buffer; all else matches 1:1.
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(own) == set(ckpt)
    for k, v in ckpt.items():
        assert torch.equal(own[k], v.float()), k
    fresh = resnet20() if "20" in name else resnet56()
    fresh.load_state_dict(ckpt, strict=True)  # raises on any missing/unexpected key


def test_resnet20_logits_are_stable(r20):
    # Regression values for a deterministic input (computed once, akamaster weights).
    expected = torch.tensor(
        [3.0456, -2.9405, 1.2936, -0.0637, 0.5864, 0.0630, -2.4508, -2.5343, 5.2140, -2.2911]
    )
    with torch.no_grad():
        out = r20.model(_probe(2))
    torch.testing.assert_close(out[0], expected, atol=2e-3, rtol=0)


def test_resnet_batch_results_do_not_depend_on_chunking(r20):
    x = _probe(5)
    with torch.no_grad():
        full = r20.model(x)
        parts = torch.cat([r20.model(x[i : i + 2]) for i in range(0, 5, 2)])
    torch.testing.assert_close(full, parts, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["resnet20-cifar10", "resnet56-cifar10"])
def test_resnets_recognise_real_photos(kodak_paths, name):
    # Kodak 20 is a propeller aeroplane, Kodak 23 two parrots.
    lm = load_model(name)
    assert lm.classes == CIFAR10_CLASSES and lm.input_size == (32, 32)
    by_name = {p.stem: p for p in kodak_paths}
    images = [read_image(by_name["kodim20"]), read_image(by_name["kodim23"])]
    x = image_to_tensor(images, size=(32, 32), mean=lm.mean, std=lm.std)
    with torch.no_grad():
        pred = lm.model(x).argmax(1).tolist()
    assert [lm.classes[i] for i in pred] == ["airplane", "bird"]


# -- loading user models ---------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_load_state_dict_and_torchscript_files(tmp_path, r20):
    sd_path = tmp_path / "w.pt"
    torch.save({"state_dict": r20.model.state_dict(), "epoch": torch.tensor(3)}, sd_path)
    with pytest.raises(ModelError, match="arch"):
        load_model(sd_path)
    lm = load_model(sd_path, arch="resnet20", classes=CIFAR10_CLASSES)
    x = _probe(1)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x), r20.model(x))
    assert lm.class_name(3) == "cat" and not lm.model.training
    with pytest.raises(ModelError, match="do not fit"):
        load_model(sd_path, arch="resnet32")

    # DataParallel prefixes are stripped.
    dp = tmp_path / "dp.pt"
    torch.save({"module." + k: v for k, v in r20.model.state_dict().items()}, dp)
    assert set(load_state_dict(dp)) == set(r20.model.state_dict())

    ts_path = tmp_path / "m.ts"
    torch.jit.save(torch.jit.trace(r20.model, x), str(ts_path))
    with pytest.raises(ModelError, match="trust_code=True"):
        load_model(ts_path)  # a TorchScript archive runs code from the file
    ts = load_model(ts_path, trust_code=True)
    with torch.no_grad():
        torch.testing.assert_close(ts.model(x), r20.model(x))
    assert ts.classes is None and ts.class_name(4) == "class 4"


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_untrusted_pickles_are_refused(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": _Evil()}, p)
    with pytest.raises(ModelError, match="weights_only"):
        load_model(p, arch="resnet20")


def test_unknown_models_give_clear_errors(tmp_path):
    assert list_models() == ["resnet20-cifar10", "resnet56-cifar10", "shapes-cnn"]
    with pytest.raises(ModelError, match="built-in"):
        load_model("resnet18-imagenet")
    with pytest.raises(ModelError, match="unknown architecture"):
        p = tmp_path / "w.pt"
        torch.save(resnet20().state_dict(), p)
        load_model(p, arch="vgg")


def test_checkpoints_in_every_torch_save_layout_load(tmp_path):
    from boda.nn import resnet20

    want = resnet20().state_dict()
    legacy = tmp_path / "legacy.pt"  # PyTorch < 1.6 format: a bare pickle
    torch.save(want, legacy, _use_new_zipfile_serialization=False)
    compiled = tmp_path / "compiled.pt"  # torch.compile(model).state_dict()
    torch.save({f"_orig_mod.{k}": v for k, v in want.items()}, compiled)
    both = tmp_path / "both.pt"  # DataParallel around a compiled model
    torch.save({f"module._orig_mod.{k}": v for k, v in want.items()}, both)
    for path in (legacy, compiled, both):
        got = load_state_dict(path)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
        load_model(path, arch="resnet20")


def test_a_pickled_model_is_refused_without_advice_to_unpickle_it(tmp_path):
    from boda.nn import resnet20

    path = tmp_path / "whole.pt"
    torch.save(resnet20(), path)
    with pytest.raises(ModelError) as info:
        load_model(path, arch="resnet20")
    text = str(info.value)
    assert "state_dict()" in text and "torch.jit.save" in text
    assert "weights_only=False" not in text and "`False`" not in text and "\x1b" not in text


def test_loading_and_training_leave_the_global_random_stream_alone():
    from boda.explain import train_shapes_cnn

    torch.manual_seed(123)
    before = torch.get_rng_state()
    load_model("resnet20-cifar10")
    train_shapes_cnn(epochs=1, per_epoch=20, batch_size=10, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    # ... and training is still reproducible from its own seed.
    a = train_shapes_cnn(epochs=1, per_epoch=20, batch_size=10, seed=3)
    b = train_shapes_cnn(epochs=1, per_epoch=20, batch_size=10, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_damaged_checkpoints_are_refused_with_one_line(tmp_path):
    """A broken zip directory (was a raw BadZipFile) and flipped bytes inside a tensor
    record (torch.load checks no CRC: they loaded as wrong weights)."""
    import zipfile

    from boda.nn import load_model, resnet20

    good = tmp_path / "ok.pt"
    torch.save(resnet20().state_dict(), good)
    data = bytearray(good.read_bytes())
    at = bytes(data).rfind(b"PK\x01\x02")
    broken = bytearray(data)
    broken[at:at + 4] = b"XXXX"
    (tmp_path / "directory.pt").write_bytes(bytes(broken))
    largest = max(zipfile.ZipFile(good).infolist(), key=lambda i: i.file_size)
    start = largest.header_offset + 30 + len(largest.filename) + len(largest.extra) + 100
    flipped = bytearray(data)
    for i in range(start, start + 64):
        flipped[i] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(flipped))
    with pytest.raises(ModelError, match="damaged zip archive"):
        load_model(tmp_path / "directory.pt", arch="resnet20")
    with pytest.raises(ModelError, match="fails its CRC check"):
        load_model(tmp_path / "flipped.pt", arch="resnet20")
    assert load_model(good, arch="resnet20").model is not None


# -- bad inputs of the conversions and of load_model (each was wrong or unclear) ------------
def test_normalize_refuses_integer_tensors_and_bad_statistics():
    """The statistics were cast to the tensor's dtype: an int64 tensor gave
    ``(x - 0) / 2`` for mean 0.5, a uint8 one "std contains a zero"; a NaN, infinite
    or negative std normalised silently."""
    for dtype in (torch.uint8, torch.int64):
        x = torch.ones(1, 3, 2, 2, dtype=dtype)
        for fn in (normalize, denormalize):
            with pytest.raises(InvalidImageError, match="floating-point"):
                fn(x, (0.5, 0.5, 0.5), (2.0, 2.0, 2.0))
    x = torch.rand(1, 3, 2, 2)
    for std in ((float("nan"), 1, 1), (float("inf"), 1, 1), (-1, 1, 1), (0, 1, 1)):
        for fn in (normalize, denormalize):
            with pytest.raises(InvalidParameterError, match="std must be finite and > 0"):
                fn(x, (0, 0, 0), std)
    with pytest.raises(InvalidParameterError, match="mean must be finite"):
        normalize(x, (float("nan"), 0, 0), (1, 1, 1))
    with pytest.raises(InvalidParameterError, match="must be numbers"):
        normalize(x, "abc", (1, 1, 1))
    y = normalize(x.bfloat16(), IMAGENET_MEAN, IMAGENET_STD)
    assert y.dtype == torch.bfloat16


def test_tensor_to_image_refuses_half_of_a_normalisation():
    """mean without std (or the reverse) was ignored: the image came back still normalised."""
    x = image_to_tensor(np.full((2, 2, 3), 0.5, np.float32), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    with pytest.raises(InvalidParameterError, match="both mean and std"):
        tensor_to_image(x, mean=IMAGENET_MEAN)
    with pytest.raises(InvalidParameterError, match="both mean and std"):
        tensor_to_image(x, std=IMAGENET_STD)


def test_image_to_tensor_resizes_images_of_different_sizes_as_its_error_advises(rng):
    """The error for images of different sizes says "pass size=(H, W)", which failed too."""
    a = rng.random((5, 7, 3)).astype(np.float32)
    b = rng.random((9, 4, 3)).astype(np.float32)
    with pytest.raises(InvalidImageError, match="size=") as info:
        image_to_tensor([a, b])
    assert "one shape" in str(info.value)
    x = image_to_tensor([a, b], size=(6, 6))
    assert x.shape == (2, 3, 6, 6)
    torch.testing.assert_close(x[1:], image_to_tensor(b, size=(6, 6)))
    with pytest.raises(InvalidImageError, match="all be gray or all be RGB"):
        image_to_tensor([a, a[:, :, 0]], size=(6, 6))


def test_resize_tensor_checks_size_and_takes_half_precision():
    """(2.7, 3) was truncated to (2, 3) and (True, True) read as (1, 1); float16 and
    bfloat16 tensors ended in torch's NotImplementedError (no antialiased half kernel)."""
    from boda.nn import resize_tensor

    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for size in ((2.7, 3), (True, True), (0, 3), 3, (2,), None, (float("nan"), 2)):
        with pytest.raises(InvalidParameterError, match="two positive integers"):
            resize_tensor(x, size)
    want = resize_tensor(x, (3, 5))
    for dtype in (torch.float16, torch.bfloat16):
        got = resize_tensor(x.to(dtype), (3, 5))
        assert got.dtype == dtype
        torch.testing.assert_close(got.float(), want, atol=1e-2, rtol=1e-2)
    assert resize_tensor((x * 255).to(torch.uint8), (3, 5)).dtype == torch.uint8
    with pytest.raises(InvalidImageError, match="floating-point or uint8"):
        resize_tensor(x.long(), (3, 5))


def test_set_cpu_threads_takes_whole_numbers_only():
    before = torch.get_num_threads()
    for n in (1.5, True, "2", None, float("nan")):
        with pytest.raises(InvalidParameterError, match="whole number"):
            set_cpu_threads(n)
    assert torch.get_num_threads() == before
    assert set_cpu_threads(np.int64(1)) == before
    set_cpu_threads(before)


def test_load_model_checks_num_classes_and_class_names(tmp_path):
    """Ten outputs named by two classes loaded; num_classes=2.5 reached the builder."""
    path = tmp_path / "w.pt"
    torch.save(resnet20().state_dict(), path)
    with pytest.raises(InvalidParameterError, match="2 class names for num_classes=10"):
        load_model(path, arch="resnet20", num_classes=10, classes=["a", "b"])
    for n in (2.5, 0, True):
        with pytest.raises(InvalidParameterError, match="num_classes must be a whole number"):
            load_model(path, arch="resnet20", num_classes=n)
    lm = load_model(path, arch="resnet20", num_classes=10, classes=CIFAR10_CLASSES)
    assert lm.classes == CIFAR10_CLASSES


def test_strict_false_refuses_a_checkpoint_of_which_nothing_fits(tmp_path):
    """strict=False with the wrong arch loaded no tensor at all: random weights, no word."""
    path = tmp_path / "w.pt"
    torch.save(resnet20().state_dict(), path)
    with pytest.raises(ModelError, match="none of the .* tensors") as info:
        load_model(path, arch="shapes-cnn", num_classes=10, strict=False)
    assert "w.pt" in str(info.value) and "arch" in str(info.value)
    partial = {k: v for k, v in resnet20().state_dict().items() if not k.startswith("layer3")}
    torch.save(partial, path)
    assert load_model(path, arch="resnet20", strict=False).model is not None
