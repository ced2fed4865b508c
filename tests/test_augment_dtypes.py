"""boda.augment with torch integer / bfloat16 batches, empty batches, index
labels, and inside DataLoader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from boda import augment as A  # noqa: E402
from boda.errors import InvalidImageError, InvalidParameterError  # noqa: E402

torch.set_num_threads(1)


def _u8(b=2, h=16, w=16):
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (b, 3, h, w), generator=gen, dtype=torch.uint8)


# ----------------------------------------------------------------- torch uint8


@pytest.mark.parametrize(
    "op",
    [
        lambda x: A.adjust_brightness(x, 1.3),
        lambda x: A.adjust_contrast(x, 0.7),
        lambda x: A.adjust_saturation(x, 1.5),
        lambda x: A.adjust_hue(x, 0.1),
        lambda x: A.color_jitter(x, seed=0)[0],
        lambda x: A.gaussian_blur(x, 1.0),
        lambda x: A.equalize(x),
        lambda x: A.autocontrast(x),
        lambda x: A.posterize(x, 3),
        lambda x: A.rand_augment(x, 3, 9, seed=1)[0],
        lambda x: A.simclr_views(x, (8, 8), seed=0)[0],
        lambda x: A.random_view(x, (8, 8), seed=0),
    ],
)
def test_uint8_tensor_equals_the_same_image_as_float(op):
    u8 = _u8()
    out, ref = op(u8), op(u8.float() / 255)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


def test_uint8_tensor_matches_the_numpy_uint8_path():
    u8 = _u8(b=1)
    ours = A.adjust_brightness(u8, 0.8)[0].permute(1, 2, 0).numpy()
    ref = A.adjust_brightness(u8[0].permute(1, 2, 0).numpy(), 0.8)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_bool_tensor_converts_and_other_integers_are_refused():
    mask = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    mask[..., 1:3, 1:3] = True
    torch.testing.assert_close(A.adjust_brightness(mask, 1.0), mask.float())
    with pytest.raises(InvalidImageError, match=r"x.float\(\) / 255"):
        A.adjust_brightness(torch.zeros(1, 3, 4, 4, dtype=torch.int32), 1.0)


def test_geometric_ops_keep_the_dtype_of_integer_tensors():
    u8 = _u8()
    out, _ = A.rotate(u8, 30)
    assert out.dtype == torch.uint8
    ref, _ = A.rotate(u8.float(), 30)
    assert (out.float() - ref.round()).abs().max() <= 0  # bilinear samples rounded
    np_out, _ = A.rotate(u8[0].permute(1, 2, 0).numpy(), 30)
    diff = np.abs(out[0].permute(1, 2, 0).numpy().astype(int) - np_out.astype(int))
    assert diff.max() <= 1  # float32 vs float64 sampling, then rounding


def test_equalize_accepts_bfloat16():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = A.equalize(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), A.equalize(x.bfloat16().float()).bfloat16().float())


def test_mixup_converts_uint8_tensors():
    u8 = _u8(b=4)
    y = torch.eye(4)
    out, _, info = A.mixup(u8, y, seed=0)
    ref, _, _ = A.mixup(u8.float() / 255, y, seed=0)
    assert out.dtype == torch.float32 and float(out.max()) <= 1
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize(("dtype", "width"), [(torch.bfloat16, 256), (torch.float16, 2048)])
def test_half_precision_warps_sample_the_right_pixels(dtype, width):
    # the sampling grid used to take the image's dtype: an identity warp of a bfloat16
    # batch 256 px wide (float16: 2048 px) moved samples by up to a pixel
    x = torch.rand(1, 3, 4, width, generator=torch.Generator().manual_seed(0)).to(dtype)
    for out, _ in (A.rotate(x, 0.0), A.resized_crop(x, 0, 0, 4, width, (4, width))):
        assert out.dtype == dtype
        torch.testing.assert_close(out, x, atol=0, rtol=0)
    half, _ = A.rotate(x, 30.0)
    ref, _ = A.rotate(x.float(), 30.0)
    torch.testing.assert_close(half.float(), ref.to(dtype).float())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_hue_and_posterize_match_float32(dtype):
    # posterize rounded x * 255 in float16 (held to 1/8): pixels landed a level (1/8) off;
    # hue worked on h * 6 in bfloat16 (held to 1/32): pixels moved by ~0.02
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dtype)
    for op in (lambda v: A.posterize(v, 3), lambda v: A.adjust_hue(v, 0.3)):
        out = op(x)
        assert out.dtype == dtype
        torch.testing.assert_close(out, op(x.float()).to(dtype), atol=0, rtol=0)


def test_per_image_views_keep_the_factors_on_the_batch_device():
    # the per-image jitter factors were built on the CPU, which a CUDA batch refuses
    # ("expected all tensors to be on the same device"); the meta device shows it
    x = torch.rand(4, 3, 12, 12, device="meta")
    for seed in range(3):
        assert A.random_view(x, (8, 8), seed=seed).device == x.device
        v1, v2 = A.simclr_views(x, (8, 8), seed=seed, per_image=True)
        assert v1.device == v2.device == x.device


# ----------------------------------------------------------------- empty batches


@pytest.mark.parametrize(
    "op",
    [
        lambda x: A.random_view(x, (8, 8), seed=0),
        lambda x: A.simclr_views(x, (8, 8), seed=0, per_image=True)[0],
        lambda x: A.moco_v2_views(x, (8, 8), seed=0, per_image=True)[1],
        lambda x: A.equalize(x),
    ],
)
def test_empty_batches_give_empty_batches(op):
    out = op(torch.rand(0, 3, 12, 12))
    assert out.shape[0] == 0 and out.shape[1] == 3


# ----------------------------------------------------------------- mixing labels


@pytest.mark.parametrize("mix", [A.mixup, A.cutmix])
@pytest.mark.parametrize("as_tensor", [True, False])
def test_mixing_refuses_class_indices(mix, as_tensor):
    images = torch.rand(4, 3, 8, 8)
    labels = torch.tensor([0, 3, 7, 9]) if as_tensor else np.array([0, 3, 7, 9])
    with pytest.raises(InvalidParameterError, match="one_hot"):
        mix(images, labels, seed=0)
    # one-hot rows of the same classes mix fine
    _, mixed, _ = mix(images, torch.nn.functional.one_hot(torch.tensor([0, 3, 7, 9]), 10).float(),
                      seed=0)
    torch.testing.assert_close(mixed.sum(1), torch.ones(4))


# ----------------------------------------------------------------- DataLoader workers


def test_randaugment_op_table_pickles():
    ops = pickle.loads(pickle.dumps(A.RANDAUGMENT_OPS))
    assert list(ops) == list(A.RANDAUGMENT_OPS)
    x = np.random.default_rng(0).random((12, 12, 3)).astype(np.float32)
    for name, op in ops.items():
        a = op(x, 0.5, np.random.default_rng(1))
        b = A.RANDAUGMENT_OPS[name](x, 0.5, np.random.default_rng(1))
        np.testing.assert_array_equal(a, b)


IMG = np.random.default_rng(0).random((24, 24, 3)).astype(np.float32)


class _Views(torch.utils.data.Dataset):
    """The dataset of docs/training.md: a generator per worker from torch's seed."""

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.from_numpy(A.simclr_views(IMG, (8, 8), seed=self.rng)[0])


def _seed_worker(worker_id):
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed)


def _run(seed):
    loader = torch.utils.data.DataLoader(
        _Views(), batch_size=1, num_workers=2, worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )
    return [b[0] for b in loader]


def test_documented_worker_seeding_is_distinct_and_reproducible():
    first, again, other = _run(0), _run(0), _run(1)
    # items 0, 2 come from worker 0 and 1, 3 from worker 1
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
