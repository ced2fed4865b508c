"""Audit of boda.augment's geometric ops, mixing and view recipes against references:
kornia (rotation), torchvision's RandomResizedCrop algorithm, the SimCLR paper and
code (Chen et al. 2020, App. A; google-research/simclr ``data_util.py``), and
AutoAugment / RandAugment's published magnitudes."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from boda import augment as A
from boda.errors import InvalidParameterError

torch = pytest.importorskip("torch")


@pytest.fixture
def rgb():
    return np.random.default_rng(0).random((40, 52, 3)).astype(np.float32)


# ------------------------------------------------------------- random resized crop


def _crop_fits(params, h, w):
    top, left, ch, cw = params
    return ch >= 1 and cw >= 1 and top >= 0 and left >= 0 and top + ch <= h and left + cw <= w


@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (3, 1), (2, 9), (9, 2), (3, 3)])
@pytest.mark.parametrize("ratio", [(10.0, 20.0), (0.01, 0.02), (3 / 4, 4 / 3)])
def test_random_resized_crop_never_returns_an_empty_crop(shape, ratio):
    # The central-crop fallback rounded a side to 0 on tiny images with a far ratio
    # ((1, 1) with ratio (10, 20) gave height round(1 / 10) = 0), and
    # random_resized_crop then failed with "crop size (0, 1) must be positive".
    h, w = shape
    for seed in range(5):
        params = A.random_resized_crop_params(shape, ratio=ratio, seed=seed)
        assert _crop_fits(params, h, w), params
        image = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
        out, t = A.random_resized_crop(image, (6, 4), ratio=ratio, seed=seed)
        assert out.shape == (6, 4, 3) and t.output_size == (6, 4)


def test_random_resized_crop_fallback_is_torchvisions_central_crop():
    # A tall strip where no crop of area >= 0.9 fits the ratio in 10 tries:
    # torchvision's get_params then takes the central crop at the clamped ratio,
    # width 10, height round(10 / (3/4)) = 13, top (100 - 13) // 2 = 43.
    params = A.random_resized_crop_params((100, 10), scale=(0.9, 1.0), seed=0)
    assert params == (43, 0, 13, 10)
    params = A.random_resized_crop_params((10, 100), scale=(0.9, 1.0), seed=0)
    assert params == (0, 43, 10, 13)


def test_random_resized_crop_ratio_is_width_over_height_on_non_square_images():
    # ratio is w / h (torchvision), size is (h, w): a (2, 2) ratio on a tall image
    # gives crops twice as wide as high, inside the image.
    h, w = 300, 120
    for seed in range(50):
        top, left, ch, cw = A.random_resized_crop_params(
            (h, w), scale=(0.1, 0.2), ratio=(2.0, 2.0), seed=seed
        )
        assert _crop_fits((top, left, ch, cw), h, w)
        assert abs(cw / ch - 2) < 0.1
        assert 0.1 * h * w * 0.95 <= ch * cw <= 0.2 * h * w * 1.05
    out, t = A.random_resized_crop(np.zeros((h, w, 3), np.float32), (30, 20), seed=1)
    assert out.shape == (30, 20, 3) and t.input_size == (h, w)


@pytest.mark.parametrize(
    "kw",
    [{"size": (10.5, 10)}, {"size": (10, 10, 3)}, {"size": (0, 10)}, {"scale": (0.5,)},
     {"scale": 0.5}, {"ratio": (1.0,)}, {"scale": ("0.1", 1)}],
)
def test_random_resized_crop_params_refuses_malformed_arguments(kw):
    # size (10, 10, 3) and scale (0.5,) raised raw ValueError / IndexError, a
    # fractional size was taken
    args = {"size": (20, 20), **kw}
    with pytest.raises(InvalidParameterError):
        A.random_resized_crop_params(args.pop("size"), seed=0, **args)


# ------------------------------------------------------------- warps and crops


@pytest.mark.parametrize("shape", [(17, 23), (9, 40)])
@pytest.mark.parametrize("angle", [10.0, -37.5, 90.0])
def test_rotate_equals_kornia(shape, angle):
    kornia = pytest.importorskip("kornia")
    x = torch.rand(2, 3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours, _ = A.rotate(x, angle)
    ref = kornia.geometry.transform.rotate(x, torch.full((2,), angle, dtype=torch.float64))
    torch.testing.assert_close(ours, ref, atol=1e-9, rtol=0)
    ours_np, _ = A.rotate(x[0].permute(1, 2, 0).numpy(), angle)
    np.testing.assert_allclose(ours_np, ref[0].permute(1, 2, 0).numpy(), atol=1e-9)


@pytest.mark.parametrize("size", [(0, 5), (5, 0), (5.5, 5), (5, 5, 1), "5"])
@pytest.mark.parametrize("form", ["numpy", "torch"])
def test_warp_output_size_must_be_whole_pixels(rgb, size, form):
    # (0, 5) gave an empty image, (5.5, 5) a raw TypeError from np.mgrid
    with pytest.raises(InvalidParameterError, match="size"):
        if form == "numpy":
            A.warp_affine(rgb, np.eye(3), size)
        else:
            A.warp_affine_torch(torch.rand(1, 3, 8, 8), np.eye(3), size)


@pytest.mark.parametrize("box", [(1.5, 0, 4, 4), (0, 0, 4.0, 4), (True, 0, 4, 4)])
def test_crop_takes_whole_pixel_offsets(rgb, box):
    # a float offset raised numpy's "slice indices must be integers"
    with pytest.raises(InvalidParameterError, match="crop"):
        A.crop(rgb, *box)


@pytest.mark.parametrize("kw", [{"translate": 1}, {"shear": 5.0}, {"translate": "ab"}])
def test_affine_pairs_must_be_pairs(rgb, kw):
    # translate=1 raised "Value after * must be an iterable"
    with pytest.raises(InvalidParameterError, match="translate|shear"):
        A.affine(rgb, **kw)


# ------------------------------------------------------------- mixing


@pytest.mark.parametrize("alpha", ["1", None, [1.0]])
@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_mixing_alpha_must_be_a_number(alpha, mix):
    # "1" and None raised "'<' not supported between 'int' and 'str'"
    x = np.random.default_rng(0).random((3, 6, 6, 3)).astype(np.float32)
    with pytest.raises(InvalidParameterError, match="alpha"):
        getattr(A, mix)(x, np.eye(3), alpha=alpha, seed=0)


@pytest.mark.parametrize(
    "labels",
    [[["a", "b"], ["c", "d"]], [[np.nan, 1.0], [0.0, 1.0]], [[np.inf, 0.0], [0.0, 1.0]],
     [[1.0, 0.0], [0.0]]],
    ids=["text", "nan", "inf", "ragged"],
)
@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
@pytest.mark.parametrize("form", ["numpy", "torch"])
def test_mixing_labels_must_be_finite_numbers(labels, mix, form):
    # text and ragged rows raised numpy's UFuncTypeError / ValueError; a NaN or inf
    # label was mixed into its partner's row, whose loss then became NaN
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    if form == "torch":
        if not all(isinstance(v, float) for row in labels for v in row) or len(labels[1]) != 2:
            pytest.skip("torch.tensor refuses text and ragged rows itself")
        x, labels = torch.from_numpy(x).permute(0, 3, 1, 2), torch.tensor(labels)
    with pytest.raises(InvalidParameterError, match="labels"):
        getattr(A, mix)(x, labels, seed=0)


@pytest.mark.parametrize("form", ["numpy", "torch"])
def test_cutmix_label_weight_is_the_pasted_area(form):
    # Yun et al. 2019, Eq. 1-2: after clipping at the border the label weight is
    # 1 - (pixels really pasted) / (H W); count the changed pixels.
    rng = np.random.default_rng(3)
    x = rng.random((4, 11, 14, 3)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)
    for seed in range(60):
        if form == "numpy":
            out, labels, info = A.cutmix(x, y, alpha=0.7, seed=seed)
        else:
            xt = torch.from_numpy(x).permute(0, 3, 1, 2)
            out, labels, info = A.cutmix(xt, torch.from_numpy(y), alpha=0.7, seed=seed)
            out, labels = out.permute(0, 2, 3, 1).numpy(), labels.numpy()
        perm = info["perm"]
        for i in np.flatnonzero(perm != np.arange(4)):
            pasted = (out[i] != x[i]).any(axis=-1).sum()
            lam = 1 - pasted / (11 * 14)
            np.testing.assert_allclose(labels[i], lam * y[i] + (1 - lam) * y[perm[i]], atol=1e-6)
        assert out.dtype == np.float32 and labels.dtype == np.float32


# ------------------------------------------------------------- recipes


def _simclr_reference_view(image, size, rng):
    """One SimCLR view written from the paper (App. A) and google-research/simclr's
    data_util.py: crop (0.08, 1), flip, jitter (0.8, 0.8, 0.8, 0.2) with p = 0.8,
    grayscale p = 0.2, blur p = 0.5 with sigma ~ U(0.1, 2) and a kernel of 10 % of
    the view's height (``radius = (height // 10) // 2``, ``2 radius + 1`` taps)."""
    x, _ = A.random_resized_crop(image, size, scale=(0.08, 1.0), seed=rng)
    if rng.random() < 0.5:
        x, _ = A.hflip(x)
    if rng.random() < 0.8:
        x, _ = A.color_jitter(x, 0.8, 0.8, 0.8, 0.2, seed=rng)
    if rng.random() < 0.2:
        x = A.grayscale(x)
    if rng.random() < 0.5:
        sigma = float(rng.uniform(0.1, 2.0))
        radius = (size[0] // 10) // 2
        t = np.arange(-radius, radius + 1, dtype=np.float64)
        k = np.exp(-(t**2) / (2 * sigma**2))
        k /= k.sum()
        x = cv2.sepFilter2D(x.astype(np.float64), -1, k, k, borderType=cv2.BORDER_REFLECT_101)
        x = np.clip(x, 0, 1).astype(np.float32)
    return x


@pytest.mark.parametrize("size", [(64, 48), (32, 32), (100, 60)])
def test_simclr_blur_kernel_is_ten_percent_of_the_view(size):
    # The blur used radius ceil(3 sigma) whatever the view size: on a 64 px view
    # with sigma 2 that is 13 taps where SimCLR uses 64 // 10 = 6 -> 7 taps, on a
    # 32 px view 13 taps instead of 3 (a much stronger blur).
    image = np.random.default_rng(1).random((80, 90, 3)).astype(np.float32)
    for seed in range(12):  # about half the 24 views are blurred
        rng = np.random.default_rng(seed)
        ref = [_simclr_reference_view(image, size, rng) for _ in range(2)]
        got = A.simclr_views(image, size, seed=seed)
        for r, g in zip(ref, got, strict=True):
            np.testing.assert_allclose(g, r, atol=2e-5)


def test_simclr_per_image_views_use_the_same_kernel():
    images = np.random.default_rng(2).random((3, 70, 60, 3)).astype(np.float32)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    size = (64, 64)
    for seed in range(4):
        v1, v2 = A.simclr_views(batch, size, seed=seed, per_image=True)
        rng = np.random.default_rng(seed)
        for i in range(3):  # image by image, first view then second
            for got in (v1, v2):
                ref = _simclr_reference_view(images[i], size, rng)
                np.testing.assert_allclose(got[i].permute(1, 2, 0).numpy(), ref, atol=1e-4)


def test_moco_v2_blur_stays_a_full_gaussian():
    # MoCo v2 blurs with PIL's GaussianBlur(radius=sigma), a full Gaussian: its
    # kernel is not tied to the image size, so it keeps radius ceil(3 sigma).
    image = np.random.default_rng(4).random((50, 50, 3)).astype(np.float32)
    size = (32, 32)
    for seed in range(8):
        rng = np.random.default_rng(seed)
        got = A.moco_v2_views(image, size, seed=seed)
        for g in got:
            x, _ = A.random_resized_crop(image, size, scale=(0.2, 1.0), seed=rng)
            if rng.random() < 0.5:
                x, _ = A.hflip(x)
            if rng.random() < 0.8:
                x, _ = A.color_jitter(x, 0.4, 0.4, 0.4, 0.1, seed=rng)
            if rng.random() < 0.2:
                x = A.grayscale(x)
            if rng.random() < 0.5:
                x = A.gaussian_blur(x, float(rng.uniform(0.1, 2.0)))
            np.testing.assert_allclose(g, x, atol=1e-6)


@pytest.mark.parametrize("op, axis", [("shear_x", 0), ("shear_y", 1)])
def test_rand_augment_shear_reaches_the_published_0_3(rgb, op, axis):
    # AutoAugment / RandAugment shear by a factor up to 0.3 (torchvision and timm:
    # degrees(atan(0.3)) = 16.70 deg); 17 deg is a factor of 0.306.
    for seed in range(4):
        sign = 1 if np.random.default_rng(seed).random() < 0.5 else -1
        got = A.RANDAUGMENT_OPS[op](rgb, 0.5, np.random.default_rng(seed))
        shear = [0.0, 0.0]
        shear[axis] = sign * math.degrees(math.atan(0.3 * 0.5))
        np.testing.assert_allclose(got, A.affine(rgb, shear=tuple(shear))[0], atol=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: A.simclr_views(x, 8, strength="1", seed=0),
        lambda x: A.rand_augment(x, m="9", seed=0),
        lambda x: A.random_view(x, 8, p_gray="0.5", seed=0),
        lambda x: A.random_view(x, 8, blur_sigma=(0.1, 1.0, 2.0), seed=0),
        lambda x: A.random_view(x[:0], 8, crop_scale=(2, 3), seed=0),
        lambda x: A.random_view(x.tolist(), 8, seed=0),
    ],
    ids=["strength", "m", "p_gray", "blur_sigma", "crop_scale", "list"],
)
def test_recipe_parameters_of_the_wrong_kind_get_a_boda_error(call):
    # each raised a raw TypeError / ValueError / AttributeError, or (an empty batch)
    # took a crop scale of (2, 3) silently
    with pytest.raises(InvalidParameterError):
        call(torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize(
    "matrix, form",
    [
        (np.stack([np.eye(3)] * 3), "numpy"),  # a stack: raw broadcasting ValueError
        (np.stack([np.eye(3)] * 3), "torch"),  # 3 maps for 2 images: grid_sample error
        (np.full((3, 3), np.nan), "numpy"),  # was called "singular"
        ("abc", "numpy"),  # could not convert string to float
    ],
    ids=["numpy-stack", "torch-wrong-length", "nan", "text"],
)
def test_warp_matrices_are_checked(matrix, form):
    with pytest.raises(InvalidParameterError, match="matrix must be a finite affine map"):
        if form == "numpy":
            A.warp_affine(np.zeros((8, 8, 3), np.float32), matrix, (8, 8))
        else:
            A.warp_affine_torch(torch.rand(2, 3, 8, 8), matrix, (8, 8))
    # one map per image still works, and equals warping each image alone
    x = torch.rand(2, 3, 8, 8)
    mats = np.stack([A.affine_matrix((8, 8), angle=a) for a in (10.0, -20.0)])
    out = A.warp_affine_torch(x, mats, (8, 8))
    for i in range(2):
        alone = A.warp_affine_torch(x[i : i + 1], mats[i], (8, 8))
        torch.testing.assert_close(out[i : i + 1], alone)


@pytest.mark.parametrize("box", [("0", 0, 4, 4), (None, 0, 4, 4), (0, 0, [4], 4)])
def test_resized_crop_box_must_be_numbers(box):
    # "0" and None raised "bad operand type for unary -"
    with pytest.raises(InvalidParameterError, match="resized_crop"):
        A.resized_crop(torch.rand(1, 3, 8, 8), *box, (6, 6))


@pytest.mark.parametrize(
    "angle, translate, scale, shear",
    [(20.0, (3.0, -2.0), 1.3, (0.0, 0.0)), (-15.0, (1.0, 2.0), 0.8, (7.0, 0.0)),
     (40.0, (0.0, 0.0), 1.0, (0.0, -12.0))],
)
def test_affine_matrix_equals_kornias_up_to_its_sign_conventions(angle, translate, scale, shear):
    # kornia's get_affine_matrix2d works in pixel-index coordinates (centre (w-1)/2,
    # boda's is w/2 with pixel centres at +1/2) and turns and shears the other way;
    # a single-axis shear is the same map (kornia composes two as a product).
    kornia = pytest.importorskip("kornia")
    h, w = 17, 23
    to_index = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1.0]])
    ours = to_index @ A.affine_matrix((h, w), angle, translate, scale, shear) @ np.linalg.inv(
        to_index
    )

    def t(*values):
        return torch.tensor([values] if len(values) > 1 else values, dtype=torch.float64)

    ref = kornia.geometry.transform.get_affine_matrix2d(
        t(*translate), t((w - 1) / 2, (h - 1) / 2), t(scale, scale), t(-angle),
        t(-math.radians(shear[0])), t(-math.radians(shear[1])),
    )[0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-9)


@pytest.mark.parametrize("form", ["numpy", "torch"])
def test_no_op_edits_the_callers_images_or_labels(form):
    rng = np.random.default_rng(5)
    one = rng.random((12, 14, 3)).astype(np.float32)
    batch = rng.random((3, 12, 14, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)
    if form == "torch":
        one = torch.from_numpy(batch[:1]).permute(0, 3, 1, 2).contiguous()
        batch = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
        labels = torch.from_numpy(labels)
    saved = [v.copy() if isinstance(v, np.ndarray) else v.clone() for v in (one, batch, labels)]
    outputs = [
        A.hflip(one)[0], A.vflip(one)[0], A.rotate(one, 20)[0], A.crop(one, 1, 2, 5, 6)[0],
        A.affine(one, 10, (1, 2), 1.2, (5, 0))[0], A.resized_crop(one, 0, 0, 12, 14, 8)[0],
        A.random_resized_crop(one, 8, seed=0)[0], *A.simclr_views(one, 8, seed=0),
        *A.moco_v2_views(one, 8, seed=1), A.rand_augment(one, 3, 20, seed=2)[0],
        A.cutout(batch, 4, seed=0)[0], *A.mixup(batch, labels, seed=0)[:2],
        *A.cutmix(batch, labels, seed=0)[:2],
    ]
    if form == "torch":
        outputs.append(A.random_view(batch, 8, seed=0))
    for out in outputs:  # edit every result in place: nothing may reach the inputs
        out[...] = 0
    for before, after in zip(saved, (one, batch, labels), strict=True):
        assert (before == after).all()


@pytest.mark.parametrize("shape, flip", [((5, 1, 3), "hflip"), ((1, 5, 3), "vflip"),
                                         ((5, 1), "hflip"), ((1, 1, 3), "vflip")])
def test_flips_of_a_one_pixel_wide_image_are_copies(shape, flip):
    # np.ascontiguousarray(image[:, ::-1]) of a single column is already contiguous,
    # so it returned a view: editing the flipped image edited the caller's
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    before = x.copy()
    out, _ = getattr(A, flip)(x)
    out[...] = 0
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("form", ["numpy", "torch"])
def test_rand_augment_never_returns_the_callers_image(form):
    # with n=0, or when every drawn op is "identity" (1 call in 196 at n=2), the
    # caller's own array came back: normalising it in place (out -= mean) edited
    # the dataset's image
    x = np.random.default_rng(0).random((6, 7, 3)).astype(np.float32)
    if form == "torch":
        x = torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()
    before = x.copy() if form == "numpy" else x.clone()
    seed = next(s for s in range(1000) if A.rand_augment(x, 1, seed=s)[1] == ["identity"])
    for out, _ in (A.rand_augment(x, 0, seed=0), A.rand_augment(x, 1, seed=seed)):
        out[...] = 0
        assert (x == before).all()


# ------------------------------------------------------------- annotations


def test_transform_refuses_annotations_of_the_wrong_shape():
    # points were reshape(-1, 2) and boxes reshape(-1, 4): COCO keypoints
    # (x, y, visibility) or boxes with a label column came back as garbage rows
    # without an error, and a mask of another size was warped as if it fitted
    _, t = A.hflip(np.zeros((10, 20, 3), np.float32))
    with pytest.raises(InvalidParameterError, match="points"):
        t.points(np.array([[1.0, 2, 2], [3, 4, 1]]))
    with pytest.raises(InvalidParameterError, match="boxes"):
        t.boxes(np.array([[1.0, 2, 5, 6, 7]] * 4))
    with pytest.raises(InvalidParameterError, match="mask"):
        t.mask(np.zeros((3, 3)))
    with pytest.raises(InvalidParameterError, match="mask"):
        t.mask(np.zeros((20, 10)))  # (W, H): transposed
    # what they take: (N, 2) / (2,) points, (N, 4) / (4,) boxes, (H, W[, C]) masks
    np.testing.assert_array_equal(t.points([[1.0, 2.0]]), [[19.0, 2.0]])
    np.testing.assert_array_equal(t.points([1.0, 2.0]), [[19.0, 2.0]])
    np.testing.assert_array_equal(t.boxes([1.0, 2, 3, 4]), [[17.0, 2, 19, 4]])
    assert t.points(np.zeros((0, 2))).shape == (0, 2)
    assert t.boxes(np.zeros((0, 4))).shape == (0, 4)
    assert t.mask(np.zeros((10, 20), np.uint8)).shape == (10, 20)
    assert t.mask(np.zeros((10, 20, 2), np.uint8)).shape == (10, 20, 2)

