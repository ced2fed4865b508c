"""Tests of boda.augment against numpy/OpenCV/PIL references and geometric properties."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

from boda import augment as A  # noqa: E402
from boda.errors import InvalidParameterError  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def img():
    return np.random.default_rng(0).random((24, 32, 3)).astype(np.float32)


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]


def _n(t):
    return t[0].permute(1, 2, 0).numpy()


# ----------------------------------------------------------------- geometric


def test_flips_exact_and_points_follow(img):
    out, t = A.hflip(img)
    np.testing.assert_array_equal(out, img[:, ::-1])
    np.testing.assert_array_equal(_n(A.hflip(_t(img))[0]), out)
    # the centre of pixel (row 5, col 2) lands on the centre of pixel (5, 29)
    np.testing.assert_allclose(t.points([[2.5, 5.5]]), [[29.5, 5.5]])
    out, t = A.vflip(img)
    np.testing.assert_array_equal(out, img[::-1])
    np.testing.assert_allclose(t.boxes([[0, 0, 4, 6]]), [[0, 18, 4, 24]])


def test_rotate_90_equals_rot90():
    sq = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    out, t = A.rotate(sq, 90.0)
    np.testing.assert_allclose(out, np.rot90(sq), atol=1e-5)
    # top-left pixel centre goes to bottom-left (counter-clockwise)
    np.testing.assert_allclose(t.points([[0.5, 0.5]]), [[0.5, 15.5]], atol=1e-9)


def test_numpy_and_torch_warps_agree(img):
    np_out, t = A.affine(img, angle=17, translate=(2, -3), scale=1.2, shear=(10, 5))
    th_out, t2 = A.affine(_t(img), angle=17, translate=(2, -3), scale=1.2, shear=(10, 5))
    np.testing.assert_allclose(_n(th_out), np_out, atol=1e-5)
    np.testing.assert_array_equal(t.matrix, t2.matrix)
    np_rc, _ = A.resized_crop(img, 3, 4, 10, 12, (20, 18))
    th_rc, _ = A.resized_crop(_t(img), 3, 4, 10, 12, (20, 18))
    np.testing.assert_allclose(_n(th_rc), np_rc, atol=1e-5)


def test_resized_crop_matches_cv2_interior(img):
    out, t = A.resized_crop(img, 2, 3, 12, 16, (30, 40))
    ref = cv2.resize(img[2:14, 3:19], (40, 30), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out[2:-2, 2:-2], ref[2:-2, 2:-2], atol=1e-5)
    np.testing.assert_allclose(t.points([[3.0, 2.0], [19.0, 14.0]]), [[0, 0], [40, 30]])
    c, tc = A.crop(img, 2, 3, 12, 16)
    np.testing.assert_array_equal(c, img[2:14, 3:19])
    np.testing.assert_allclose(tc.points([[3.5, 2.5]]), [[0.5, 0.5]])
    with pytest.raises(InvalidParameterError, match="does not fit"):
        A.crop(img, 20, 0, 10, 10)


def test_boxes_masks_and_keypoints_follow_an_affine_warp():
    h, w = 64, 64
    image = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.uint8)
    mask[20:36, 12:40] = 1
    image[mask == 1] = 1.0
    box = np.array([[12, 20, 40, 36]], float)
    out, t = A.affine(image, angle=25, translate=(3, 2), scale=0.9, shear=(8, 0))
    warped = t.mask(mask)
    ys, xs = np.nonzero(warped)
    tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    np.testing.assert_allclose(t.boxes(box)[0], tight, atol=1.5)
    # the image and the mask moved together
    assert np.mean((out[..., 0] > 0.5) == (warped == 1)) > 0.98
    # a keypoint: a bright pixel's new location is the mapped point
    dot = np.zeros((h, w, 3), np.float32)
    dot[40, 22] = 1.0
    moved, t = A.rotate(dot, -33.0)
    peak = np.unravel_index(np.argmax(moved[..., 0]), (h, w))
    np.testing.assert_allclose(t.points([[22.5, 40.5]])[0], [peak[1] + 0.5, peak[0] + 0.5],
                               atol=0.75)


def test_random_resized_crop_is_seeded(img):
    a, ta = A.random_resized_crop(img, (16, 16), seed=3)
    b, tb = A.random_resized_crop(img, (16, 16), seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ta.matrix, tb.matrix)
    for s in range(20):
        top, left, ch, cw = A.random_resized_crop_params((24, 32), (0.2, 1.0), seed=s)
        assert 0 <= top and top + ch <= 24 and 0 <= left and left + cw <= 32


# ----------------------------------------------------------------- photometric


@pytest.mark.parametrize(
    "op",
    [
        lambda x: A.adjust_brightness(x, 1.3),
        lambda x: A.adjust_contrast(x, 0.6),
        lambda x: A.adjust_saturation(x, 1.7),
        lambda x: A.adjust_hue(x, 0.2),
        lambda x: A.grayscale(x),
        lambda x: A.solarize(x, 0.4),
        lambda x: A.posterize(x, 3),
        lambda x: A.equalize(x),
        lambda x: A.gaussian_blur(x, 1.3),
        lambda x: A.autocontrast(x),
        lambda x: A.adjust_sharpness(x, 1.8),
    ],
)
def test_numpy_and_torch_photometric_agree(img, op):
    np.testing.assert_allclose(_n(op(_t(img))), op(img), atol=1e-5)



@pytest.mark.parametrize("shape", [(2, 2, 3), (1, 6, 3), (5, 2, 3)])
def test_sharpness_of_images_narrower_than_its_kernel(shape):
    # PIL keeps border pixels, so an image under 3 px high or wide is all border;
    # the torch form used to fail in conv2d ("Kernel size can't be greater ...")
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    np.testing.assert_allclose(A.adjust_sharpness(x, 2.0), x, atol=1e-6)
    np.testing.assert_allclose(_n(A.adjust_sharpness(_t(x), 2.0)), x, atol=1e-6)

def test_colour_adjustments_properties(img):
    np.testing.assert_allclose(A.adjust_saturation(img, 0.0), A.grayscale(img), atol=1e-6)
    flat = A.adjust_contrast(img, 0.0)
    assert np.ptp(flat) < 1e-6
    assert A.adjust_brightness(img, 3.0).max() <= 1.0  # clipped
    np.testing.assert_allclose(A.adjust_hue(img, 0.0), img, atol=1e-5)
    shifted = A.adjust_hue(img, 0.25)
    for y, x in [(0, 0), (5, 7), (20, 30)]:
        hh, ss, vv = colorsys.rgb_to_hsv(*img[y, x])
        expected = colorsys.hsv_to_rgb((hh + 0.25) % 1.0, ss, vv)
        np.testing.assert_allclose(shifted[y, x], expected, atol=1e-5)
    a, pa = A.color_jitter(img, seed=5)
    b, pb = A.color_jitter(img, seed=5)
    np.testing.assert_array_equal(a, b)
    assert pa == pb and 0.6 <= pa["brightness"] <= 1.4


def _u8(x):
    return np.round(x * 255).astype(np.uint8)


def test_solarize_posterize_equalize_match_pil(img):
    pil = Image.fromarray(_u8(img))
    q = _u8(img) / 255.0
    np.testing.assert_array_equal(_u8(A.solarize(q, 128 / 255)),
                                  np.asarray(ImageOps.solarize(pil, 128)))
    np.testing.assert_array_equal(_u8(A.posterize(q, 3)), np.asarray(ImageOps.posterize(pil, 3)))
    np.testing.assert_array_equal(_u8(A.equalize(q)), np.asarray(ImageOps.equalize(pil)))
    low = Image.fromarray(_u8(0.2 + 0.5 * img))
    q_low = np.asarray(low) / 255.0
    np.testing.assert_allclose(A.autocontrast(q_low) * 255,
                               np.asarray(ImageOps.autocontrast(low)), atol=1.0)
    sharp = np.asarray(ImageEnhance.Sharpness(pil).enhance(1.8)).astype(float)
    # PIL rounds twice (the smoothed copy and the blend) on 8-bit values
    np.testing.assert_allclose(A.adjust_sharpness(q, 1.8) * 255, sharp, atol=1.5)


def test_gaussian_blur_matches_cv2(img):
    k = len(A.gaussian_kernel1d(1.3))
    ref = cv2.GaussianBlur(img, (k, k), 1.3, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(A.gaussian_blur(img, 1.3), ref, atol=1e-5)


# ----------------------------------------------------------------- mixing


def test_mixup_and_cutmix_mix_labels():
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 10, 3)).astype(np.float32)
    y = np.eye(4)[[0, 1, 2, 3]]
    xm, ym, info = A.mixup(x, y, alpha=0.4, seed=1)
    lam, perm = info["lam"], info["perm"]
    np.testing.assert_allclose(xm, lam * x + (1 - lam) * x[perm], rtol=1e-6)
    np.testing.assert_allclose(ym.sum(1), 1.0)
    xc, yc, info = A.cutmix(x, y, alpha=1.0, seed=2)
    x1, y1, x2, y2 = info["box"]
    inside = np.zeros((8, 10), bool)
    inside[y1:y2, x1:x2] = True
    np.testing.assert_array_equal(xc[:, inside], x[info["perm"]][:, inside])
    np.testing.assert_array_equal(xc[:, ~inside], x[:, ~inside])
    assert info["lam"] == pytest.approx(1 - inside.mean())
    np.testing.assert_allclose(yc, info["lam"] * y + (1 - info["lam"]) * y[info["perm"]])
    # torch form, same seed, same result
    xt, yt, _ = A.cutmix(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y), seed=2)
    np.testing.assert_allclose(xt.permute(0, 2, 3, 1).numpy(), xc)
    out, boxes = A.cutout(x, 4, seed=0)
    for i, (bx1, by1, bx2, by2) in enumerate(boxes):
        assert np.all(out[i, by1:by2, bx1:bx2] == 0)
        assert (bx2 - bx1) * (by2 - by1) > 0


# ----------------------------------------------------------------- policies


def test_rand_augment_and_two_view_recipes(img):
    a, ops_a = A.rand_augment(img, n=3, m=12, seed=7)
    b, ops_b = A.rand_augment(img, n=3, m=12, seed=7)
    assert ops_a == ops_b and len(ops_a) == 3
    np.testing.assert_array_equal(a, b)
    assert a.shape == img.shape and a.min() >= 0 and a.max() <= 1
    t, _ = A.rand_augment(_t(img), n=2, m=9, seed=0)
    assert t.shape == (1, 3, 24, 32)
    v1, v2 = A.simclr_views(img, size=(16, 16), seed=0)
    assert v1.shape == v2.shape == (16, 16, 3) and not np.allclose(v1, v2)
    w1, _ = A.simclr_views(img, size=(16, 16), seed=0)
    np.testing.assert_array_equal(v1, w1)
    m1, m2 = A.moco_v2_views(_t(img), size=(16, 16), seed=1)
    assert m1.shape == (1, 3, 16, 16) and float(m1.min()) >= 0 and float(m1.max()) <= 1
    with pytest.raises(InvalidParameterError, match="magnitude"):
        A.rand_augment(img, m=31)


def test_warp_affine_takes_opencv_2x3_matrices_and_refuses_singular_ones():
    import cv2

    from boda.errors import InvalidParameterError

    image = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    m = cv2.getRotationMatrix2D((15, 10), 20, 1.0)
    np.testing.assert_array_equal(
        A.warp_affine(image, m, (20, 30)), A.warp_affine(image, np.vstack([m, [0, 0, 1]]), (20, 30))
    )
    for bad in (np.zeros((3, 3)), np.eye(4)):
        with pytest.raises(InvalidParameterError, match="matrix"):
            A.warp_affine(image, bad, (20, 30))
