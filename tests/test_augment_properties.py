"""Property tests: boxes, masks and keypoints stay aligned with the augmented image.

For every geometric op (flips, arbitrary rotations, affine with shear, crops,
resized and random-resized crops) we draw something into an image, transform the
image and the annotation with the same returned :class:`Transform`, and check
they still agree:

- keypoints: a Gaussian blob (sigma 1.5 px) drawn at a sub-pixel point; the
  intensity centroid of the warped image is the mapped point within
  ``KEYPOINT_TOL`` px (bilinear resampling of a smooth blob moves its centroid
  by a few hundredths of a pixel; an off-by-half-pixel convention error would
  be 0.5 px);
- boxes: a bright rectangle with pixel-aligned edges; the bounding box of the
  warped pixels above 0.5 matches ``Transform.boxes`` within ``BOX_TOL`` px for
  resampling warps and exactly for flips and crops;
- masks: ``Transform.mask`` equals the image warped with nearest-neighbour
  sampling (order 0), i.e. the op and its transform use one geometry;
- the numpy ``(H, W, C)`` and torch ``(B, C, H, W)`` forms agree for the same
  parameters, and seeded ops are reproducible.

Hypothesis runs derandomized (see ``conftest.py``) with few examples per test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from boda import augment as A  # noqa: E402

torch.set_num_threads(1)

KEYPOINT_TOL = 0.1  # px, centroid of a warped Gaussian blob vs the mapped point
BOX_TOL = 1.0  # px, thresholded warped rectangle vs the mapped box (one pixel of quantisation)
SIGMA = 1.5
H, W = 48, 64
FEW = settings(max_examples=25)


def _blob(x: float, y: float, size=(H, W)) -> np.ndarray:
    """(H, W, 3) image with a Gaussian blob centred on the continuous point (x, y)."""
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]] + 0.5
    g = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * SIGMA**2)).astype(np.float32)
    return np.repeat(g[..., None], 3, axis=2)


def _centroid(image: np.ndarray) -> np.ndarray:
    g = image[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0 : g.shape[0], 0 : g.shape[1]] + 0.5
    return np.array([(g * xs).sum(), (g * ys).sum()]) / g.sum()


def _inside(point, size, margin) -> bool:
    x, y = point
    return margin <= x <= size[1] - margin and margin <= y <= size[0] - margin


def _rect(x0, y0, x1, y1, size=(H, W)):
    mask = np.zeros(size, np.uint8)
    mask[y0:y1, x0:x1] = 1
    image = np.repeat(mask[..., None], 3, axis=2).astype(np.float32)
    return image, mask, np.array([[x0, y0, x1, y1]], float)


def _tight(binary: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(binary)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]


def _n(t):
    return t[0].permute(1, 2, 0).numpy()


# ------------------------------------------------------------ strategies

points = st.tuples(st.floats(W / 2 - 8, W / 2 + 8), st.floats(H / 2 - 8, H / 2 + 8))
angles = st.floats(-180.0, 180.0)
affines = st.fixed_dictionaries(
    {
        "angle": angles,
        "translate": st.tuples(st.floats(-5, 5), st.floats(-5, 5)),
        "scale": st.floats(0.75, 1.3),
        "shear": st.tuples(st.floats(-20, 20), st.floats(-20, 20)),
    }
)


@st.composite
def crops(draw, size=(H, W), min_side=14):
    ch = draw(st.integers(min_side, size[0]))
    cw = draw(st.integers(min_side, size[1]))
    top = draw(st.integers(0, size[0] - ch))
    left = draw(st.integers(0, size[1] - cw))
    return top, left, ch, cw


def _geometric_ops():
    """(name, strategy of kwargs, op(image, **kw, order=...)) for every resampling warp."""
    return {
        "rotate": (st.fixed_dictionaries({"angle": angles}),
                   lambda x, order=1, **k: A.rotate(x, k["angle"], order=order)),
        "affine": (affines, lambda x, order=1, **k: A.affine(x, **k, order=order)),
        "resized_crop": (
            st.tuples(crops(), st.tuples(st.integers(20, 60), st.integers(20, 60))).map(
                lambda c: {"box": c[0], "size": c[1]}),
            lambda x, order=1, **k: A.resized_crop(x, *k["box"], k["size"], order=order),
        ),
    }


OPS = _geometric_ops()


# ------------------------------------------------------------ keypoints


def _blob_fits(t, q, size) -> bool:
    """The warped blob lies 4.5 of its (stretched) sigmas inside the output."""
    stretch = np.linalg.norm(t.matrix[:2, :2], 2)
    return _inside(q, size, 4.5 * SIGMA * stretch)


def _point_in_crop(top, left, ch, cw, u):
    # 30 % of the crop side from its edges: at least 4.8 sigma for crops >= 24 px
    return (left + cw * (0.3 + 0.4 * u[0]), top + ch * (0.3 + 0.4 * u[1]))


@pytest.mark.parametrize("name", list(OPS))
@FEW
@given(data=st.data(), p=points, u=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_keypoint_follows_resampling_warps(name, data, p, u):
    strategy, op = OPS[name]
    kw = data.draw(strategy)
    if name == "resized_crop":  # the point must lie well inside the crop
        kw["box"] = data.draw(crops(min_side=24))
        p = _point_in_crop(*kw["box"], u)
    out, t = op(_blob(*p), **kw)
    q = t.points([p])[0]
    assume(_blob_fits(t, q, out.shape[:2]))
    np.testing.assert_allclose(_centroid(out), q, atol=KEYPOINT_TOL)


@FEW
@given(p=st.tuples(st.floats(5, W - 5), st.floats(5, H - 5)), which=st.sampled_from("hv"))
def test_keypoint_follows_flips(p, which):
    image = _blob(*p)  # cut by the border: compare with the input's own centroid
    out, t = (A.hflip if which == "h" else A.vflip)(image)
    np.testing.assert_allclose(_centroid(out), t.points([_centroid(image)])[0], atol=1e-9)


@FEW
@given(seed=st.integers(0, 2**32 - 1), u=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_keypoint_follows_random_resized_crop(seed, u):
    box = A.random_resized_crop_params((H, W), scale=(0.3, 1.0), seed=seed)
    assume(min(box[2:]) >= 24)
    p = _point_in_crop(*box, u)
    out, t = A.random_resized_crop(_blob(*p), (40, 40), scale=(0.3, 1.0), seed=seed)
    np.testing.assert_array_equal(t.matrix, A.resized_crop(_blob(*p), *box, (40, 40))[1].matrix)
    # the crop's corners are the output's corners
    top, left, ch, cw = box
    corners = t.points([[left, top], [left + cw, top + ch]])
    np.testing.assert_allclose(corners, [[0, 0], [40, 40]], atol=1e-9)
    q = t.points([p])[0]
    assert _blob_fits(t, q, (40, 40))
    np.testing.assert_allclose(_centroid(out), q, atol=KEYPOINT_TOL)


# ------------------------------------------------------------ boxes and masks


rects = st.tuples(st.integers(16, 28), st.integers(12, 20), st.integers(6, 20),
                  st.integers(6, 16)).map(lambda r: (r[0], r[1], r[0] + r[2], r[1] + r[3]))


@pytest.mark.parametrize("name", list(OPS))
@FEW
@given(data=st.data(), r=rects)
def test_box_and_mask_follow_resampling_warps(name, data, r):
    strategy, op = OPS[name]
    kw = data.draw(strategy)
    image, mask, box = _rect(*r)
    out, t = op(image, **kw)
    mapped = t.boxes(box, clip=False)[0]
    assume(_inside(mapped[:2], out.shape[:2], 1) and _inside(mapped[2:], out.shape[:2], 1))
    bright = out[..., 0] > 0.5
    assume(bright.sum() >= 4)
    if name == "resized_crop":  # axis-aligned: the box is the thresholded region
        np.testing.assert_allclose(_tight(bright), mapped, atol=BOX_TOL)
    else:  # a rotated rectangle lies inside the box of its moved corners
        tight = _tight(bright)
        assert np.all(tight[:2] >= mapped[:2] - BOX_TOL)
        assert np.all(tight[2:] <= mapped[2:] + BOX_TOL)
    # every pixel centre of the warped region maps back into the original rectangle
    ys, xs = np.nonzero(t.mask(mask))
    back = np.linalg.inv(t.matrix)
    src = np.c_[xs + 0.5, ys + 0.5] @ back[:2, :2].T + back[:2, 2]
    assert np.all((src >= box[0, :2] - 1e-6) & (src <= box[0, 2:] + 1e-6))
    # the op and Transform.mask share one geometry: nearest warps agree exactly
    nearest, t0 = op(image, order=0, **kw)
    np.testing.assert_array_equal(t0.matrix, t.matrix)
    np.testing.assert_array_equal(nearest[..., 0].astype(np.uint8), t.mask(mask))
    # and the mask moved with the bilinear image: they differ only along the edge
    assert np.mean(bright != (t.mask(mask) == 1)) < 0.05


@FEW
@given(r=rects, which=st.sampled_from("hv"), crop=crops(min_side=8))
def test_box_and_mask_follow_flips_and_crops_exactly(r, which, crop):
    image, mask, box = _rect(*r)
    out, t = (A.hflip if which == "h" else A.vflip)(image)
    np.testing.assert_array_equal(_tight(out[..., 0] > 0.5), t.boxes(box)[0])
    np.testing.assert_array_equal(t.mask(mask), out[..., 0].astype(np.uint8))
    out, t = A.crop(image, *crop)
    np.testing.assert_array_equal(t.mask(mask), out[..., 0].astype(np.uint8))
    clipped = t.boxes(box)[0]
    if out[..., 0].any():
        np.testing.assert_array_equal(_tight(out[..., 0] > 0.5), clipped)
    else:  # the rectangle fell outside the crop: its clipped box is empty
        assert clipped[0] == clipped[2] or clipped[1] == clipped[3]


@FEW
@given(kw=affines, pts=st.lists(st.tuples(st.floats(0, W), st.floats(0, H)), min_size=1,
                                max_size=8), r=rects)
def test_points_inside_a_box_stay_inside_its_mapped_box(kw, pts, r):
    _, t = A.affine(np.zeros((H, W, 3), np.float32), **kw)
    box = np.array([r], float)
    x0, y0, x1, y1 = r
    inner = np.array([[x0 + (x1 - x0) * (px / W), y0 + (y1 - y0) * (py / H)] for px, py in pts])
    mapped, moved = t.boxes(box, clip=False)[0], t.points(inner)
    assert np.all(moved >= mapped[:2] - 1e-9) and np.all(moved <= mapped[2:] + 1e-9)
    # composing with the inverse brings the points back
    back = np.linalg.inv(t.matrix)
    np.testing.assert_allclose(moved @ back[:2, :2].T + back[:2, 2], inner, atol=1e-9)


# ------------------------------------------------------------ numpy vs torch, seeds


@pytest.mark.parametrize("name", list(OPS))
@FEW
@given(data=st.data())
def test_numpy_and_torch_forms_agree(name, data):
    strategy, op = OPS[name]
    kw = data.draw(strategy)
    image = np.random.default_rng(0).random((H, W, 3)).astype(np.float32)
    a, ta = op(image, **kw)
    b, tb = op(_t(image), **kw)
    np.testing.assert_array_equal(ta.matrix, tb.matrix)
    assert ta.output_size == tb.output_size
    np.testing.assert_allclose(_n(b), a, atol=1e-4)


@FEW
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(["rrc", "jitter", "simclr"]))
def test_seeded_ops_reproducible_and_forms_agree(seed, which):
    image = np.random.default_rng(1).random((H, W, 3)).astype(np.float32)
    if which == "rrc":
        a, ta = A.random_resized_crop(image, (32, 32), seed=seed)
        a2, ta2 = A.random_resized_crop(image, (32, 32), seed=seed)
        b, tb = A.random_resized_crop(_t(image), (32, 32), seed=seed)
        np.testing.assert_array_equal(ta.matrix, ta2.matrix)
        np.testing.assert_array_equal(ta.matrix, tb.matrix)
    elif which == "jitter":
        a, pa = A.color_jitter(image, 0.4, 0.4, 0.4, 0.1, seed=seed)
        a2, pa2 = A.color_jitter(image, 0.4, 0.4, 0.4, 0.1, seed=seed)
        b, pb = A.color_jitter(_t(image), 0.4, 0.4, 0.4, 0.1, seed=seed)
        assert pa == pa2 == pb
    else:  # the SimCLR two-view recipe, numpy and torch
        a, v = A.simclr_views(image, size=(24, 24), seed=seed)
        a2, v2 = A.simclr_views(image, size=(24, 24), seed=seed)
        b, w = A.simclr_views(_t(image), size=(24, 24), seed=seed)
        np.testing.assert_array_equal(v, v2)
        np.testing.assert_allclose(_n(w), v, atol=1e-4)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_allclose(_n(b), a, atol=1e-4)


@FEW
@given(box=crops(min_side=4), size=st.tuples(st.integers(8, 80), st.integers(8, 80)),
       value=st.floats(0.05, 1.0), seed=st.integers(0, 2**32 - 1))
def test_crops_of_a_constant_image_are_constant(box, size, value, seed):
    """No fade to black where a magnified crop touches the image border."""
    image = np.full((H, W, 3), value, np.float32)
    for x in (image, _t(image)):
        out, _ = A.resized_crop(x, *box, size)
        np.testing.assert_allclose(np.asarray(out), value, rtol=1e-6)
        out, _ = A.random_resized_crop(x, size, seed=seed)
        np.testing.assert_allclose(np.asarray(out), value, rtol=1e-6)


# ------------------------------------------------------------ per-image draws on a batch


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.0, 0.5, 1.0]))
def test_random_view_equals_a_loop_over_single_images(seed, p):
    batch = torch.from_numpy(np.random.default_rng(2).random((6, 3, 20, 24), dtype=np.float32))
    kw = {"size": (16, 18), "p_jitter": p, "p_gray": p, "p_blur": p}
    out = A.random_view(batch, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    ref = torch.cat([A.random_view(batch[i : i + 1], seed=rng, **kw) for i in range(6)])
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    # and a batch of one is the single-image recipe (numpy form too)
    from boda.augment._recipes import _view

    args = ((16, 18), (0.08, 1.0), (0.8, 0.8, 0.8, 0.2), p, p, p, (0.1, 2.0))
    one = A.random_view(batch[:1], seed=seed, **kw)
    torch.testing.assert_close(one, _view(batch[:1], *args, np.random.default_rng(seed)),
                               atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        _n(one), _view(_n(batch[:1]).copy(), *args, np.random.default_rng(seed)), atol=1e-5)


@settings(max_examples=5)
@given(seed=st.integers(0, 2**32 - 1))
def test_two_view_recipes_per_image(seed):
    batch = torch.from_numpy(np.random.default_rng(3).random((4, 3, 20, 20), dtype=np.float32))
    for recipe in (A.simclr_views, A.moco_v2_views):
        v1, v2 = recipe(batch, size=(12, 12), seed=seed, per_image=True)
        rng = np.random.default_rng(seed)
        singles = [recipe(batch[i : i + 1], size=(12, 12), seed=rng) for i in range(4)]
        torch.testing.assert_close(v1, torch.cat([s[0] for s in singles]), atol=1e-6, rtol=0)
        torch.testing.assert_close(v2, torch.cat([s[1] for s in singles]), atol=1e-6, rtol=0)
    same = batch[:1].expand(4, -1, -1, -1)  # one image four times: four different views
    v1, _ = A.simclr_views(same, size=(12, 12), seed=seed, per_image=True)
    assert all(not torch.allclose(v1[0], v1[i]) for i in range(1, 4))
    w1, _ = A.simclr_views(same, size=(12, 12), seed=seed)  # one draw for the batch
    assert all(torch.equal(w1[0], w1[i]) for i in range(1, 4))
