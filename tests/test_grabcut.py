"""GrabCut (boda.segment) against OpenCV, ground truth, brute force and its own guarantees."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms
from scipy import ndimage
from typer.testing import CliRunner

from boda.cli import app
from boda.errors import InvalidImageError, InvalidParameterError
from boda.segment import BGD, FGD, PR_BGD, PR_FGD, grabcut, guided_filter, refine
from boda.segment._grabcut import _CutGraph, _nlinks, _smoothness

SIDE = 200  # test images are downscaled so that the longer side is this


def _load(data_dir, name: str) -> tuple[np.ndarray, np.ndarray]:
    img = Image.open(data_dir / "grabcut" / "images" / f"{name}.png").convert("RGB")
    gt = Image.open(data_dir / "grabcut" / "masks" / f"{name}.png").convert("L")
    s = SIDE / max(img.size)
    size = (round(img.size[0] * s), round(img.size[1] * s))
    return np.asarray(img.resize(size, Image.BILINEAR)), np.asarray(gt.resize(size, Image.NEAREST))


def _rect(gt: np.ndarray, margin: int = 4) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(gt == 255)
    h, w = gt.shape
    x0, y0 = max(xs.min() - margin, 0), max(ys.min() - margin, 0)
    x1, y1 = min(xs.max() + 1 + margin, w), min(ys.max() + 1 + margin, h)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _error(mask: np.ndarray, gt: np.ndarray) -> float:
    known = gt != 128
    return float((mask[known] != (gt == 255)[known]).mean())


@pytest.fixture(scope="module")
def teddy(data_dir):
    return _load(data_dir, "teddy")


@pytest.fixture(scope="module")
def banana(data_dir):
    return _load(data_dir, "banana1")


@pytest.fixture(scope="module")
def teddy_result(teddy):
    rgb, gt = teddy
    return grabcut(rgb, _rect(gt))


def test_agrees_with_opencv(teddy, teddy_result):
    rgb, gt = teddy
    mask = np.zeros(gt.shape, np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.grabCut(bgr, mask, _rect(gt), bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    ref = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    ours = teddy_result.mask
    iou = (ref & ours).sum() / (ref | ours).sum()
    assert iou > 0.9


@pytest.mark.parametrize(("name", "bound"), [("teddy", 0.012), ("banana1", 0.015)])
def test_pixel_error_against_ground_truth(data_dir, name, bound):
    # Measured at 200 px, 4 px margin: teddy 0.49 %, banana1 0.70 % (deterministic start).
    rgb, gt = _load(data_dir, name)
    assert _error(grabcut(rgb, _rect(gt)).mask, gt) < bound


def test_energy_never_increases(banana):
    rgb, gt = banana
    res = grabcut(rgb, _rect(gt), iterations=8, tol=0.0)
    e = np.array(res.energies)
    assert len(e) >= 3
    assert np.all(np.diff(e) <= 1e-9 * np.abs(e[:-1]))
    assert e[-1] < e[0]


def test_smoothness_term_matches_pairwise_loop(teddy_result, teddy):
    # Recompute the smoothness term pair by pair with plain loops on a crop.
    rgb, _ = teddy
    z = rgb[40:60, 50:75].astype(np.float64)
    alpha = teddy_result.mask[40:60, 50:75]
    weights = _nlinks(z * 255.0, 50.0)
    pairs = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    d2 = [
        ((z[1:] - z[:-1]) ** 2).sum(-1),
        ((z[:, 1:] - z[:, :-1]) ** 2).sum(-1),
        ((z[1:, 1:] - z[:-1, :-1]) ** 2).sum(-1),
        ((z[1:, :-1] - z[:-1, 1:]) ** 2).sum(-1),
    ]
    beta = 1 / (2 * (255.0**2) * np.concatenate([d.ravel() for d in d2]).mean())
    total = 0.0
    h, w = alpha.shape
    for y, x in itertools.product(range(h), range(w)):
        for dy, dx in pairs:
            yy, xx = y + dy, x + dx
            if 0 <= yy < h and 0 <= xx < w and alpha[y, x] != alpha[yy, xx]:
                diff2 = (255.0**2) * ((z[y, x] - z[yy, xx]) ** 2).sum()
                total += 50.0 / np.hypot(dy, dx) * np.exp(-beta * diff2)
    assert total > 0  # the crop holds part of the object's border
    assert _smoothness(alpha, weights) == pytest.approx(total / 2, rel=1e-9)


def test_graph_cut_is_the_exact_minimum(rng):
    # 3x4 grid: compare the min cut with all 2^12 labellings (two pixels fixed).
    h, w = 3, 4
    weights = _nlinks(rng.random((h, w, 3)) * 255, 50.0)
    trimap = np.full((h, w), PR_FGD, np.uint8)
    trimap[0, 0], trimap[2, 3] = FGD, BGD
    graph = _CutGraph(trimap, weights, (slice(0, h), slice(0, w)), 450.0)
    labellings = [
        np.array(bits, bool).reshape(h, w)
        for bits in itertools.product((0, 1), repeat=h * w)
        if bits[0] == 1 and bits[-1] == 0
    ]

    def energy(a, d_fg, d_bg):
        return np.where(a, d_fg, d_bg).sum() + _smoothness(a, weights)

    # The second and third cuts reuse the search trees of the previous one.
    for _ in range(3):
        d_fg, d_bg = rng.random((h, w)) * 60, rng.random((h, w)) * 60
        cut = graph.cut(d_fg, d_bg)
        best = min(energy(a, d_fg, d_bg) for a in labellings)
        assert cut[0, 0] and not cut[2, 3]
        assert energy(cut, d_fg, d_bg) == pytest.approx(best, rel=1e-12)


def test_hard_constraints_are_respected(teddy):
    rgb, gt = teddy
    trimap = np.full(gt.shape, PR_BGD, np.uint8)
    trimap[gt == 255] = PR_FGD
    trimap[:10] = BGD
    # Contradict the colours: mark background as sure foreground and vice versa.
    trimap[:25, :25] = FGD
    obj = ndimage.binary_erosion(gt == 255, iterations=10)
    ys, xs = np.nonzero(obj)
    trimap[ys[0] : ys[0] + 5, xs[0] : xs[0] + 5] = BGD
    res = grabcut(rgb, mask=trimap)
    assert res.mask[trimap == FGD].all()
    assert not res.mask[trimap == BGD].any()
    assert (res.trimap[trimap == FGD] == FGD).all() and (res.trimap[trimap == BGD] == BGD).all()
    assert set(np.unique(res.trimap)) <= {BGD, FGD, PR_BGD, PR_FGD}
    assert (res.alpha[trimap == FGD] == 1).all() and (res.alpha[trimap == BGD] == 0).all()


def test_strokes_change_the_result_where_drawn(teddy, teddy_result):
    rgb, gt = teddy
    first = teddy_result
    fg_now = ndimage.binary_erosion(first.mask, iterations=6)
    ys, xs = np.nonzero(fg_now)
    bg_strokes = np.zeros(gt.shape, bool)
    bg_strokes[ys[len(ys) // 2] - 3 : ys[len(ys) // 2] + 3, xs.min() : xs.max() + 1] = True
    bg_strokes &= fg_now
    x, y, w, h = _rect(gt)
    fg_strokes = np.zeros(gt.shape, bool)
    fg_strokes[y + 1 : y + 4, x + 1 : x + 4] = True  # a corner of the box, now background
    assert not first.mask[fg_strokes].any()
    second = refine(first, fg_strokes, bg_strokes)
    assert not second.mask[bg_strokes].any()
    assert second.mask[fg_strokes].all()
    # The same through the trimap route.
    third = grabcut(rgb, mask=first.trimap_with_strokes(fg_strokes, bg_strokes))
    assert np.array_equal(third.mask, second.mask)
    with pytest.raises(InvalidParameterError, match="both"):
        first.trimap_with_strokes(bg_strokes, bg_strokes)
    with pytest.raises(InvalidParameterError, match="image size"):
        refine(first, fg_strokes[:10])


def test_cutout_and_alpha(teddy_result, teddy):
    rgb, _ = teddy
    rgba = teddy_result.cutout()
    assert rgba.shape == (*rgb.shape[:2], 4) and rgba.dtype == np.float32
    np.testing.assert_allclose(rgba[..., :3], rgb / 255.0, atol=1e-6)
    a = teddy_result.alpha
    assert a.min() >= 0 and a.max() <= 1
    # Feathering only touches the border band; inside and far outside it is the mask.
    # (Each output pixel depends on pixels up to 2 * radius = 4 away.)
    square = np.ones((3, 3), bool)
    inner = ndimage.binary_erosion(teddy_result.mask, square, iterations=5)
    outer = ~ndimage.binary_dilation(teddy_result.mask, square, iterations=5)
    np.testing.assert_allclose(a[inner], 1, atol=1e-5)
    np.testing.assert_allclose(a[outer], 0, atol=1e-5)
    band = ~inner & ~outer
    assert 0 < ((a[band] > 0.02) & (a[band] < 0.98)).mean() < 0.8
    hard = teddy_result.cutout(feathered=False)[..., 3]
    assert set(np.unique(hard)) == {0.0, 1.0}


def _naive_guided(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Guided filter by a ridge regression in every window (symmetric borders)."""
    h, w = p.shape
    gp = np.pad(guide, ((r, r), (r, r), (0, 0)), mode="symmetric")
    pp = np.pad(p, r, mode="symmetric")
    a = np.zeros((h, w, 3))
    b = np.zeros((h, w))
    for y, x in itertools.product(range(h), range(w)):
        gi = gp[y : y + 2 * r + 1, x : x + 2 * r + 1].reshape(-1, 3)
        pi = pp[y : y + 2 * r + 1, x : x + 2 * r + 1].ravel()
        mu = gi.mean(0)
        cov = (gi - mu).T @ (gi - mu) / len(pi)
        a[y, x] = np.linalg.solve(cov + eps * np.eye(3), (gi - mu).T @ (pi - pi.mean()) / len(pi))
        b[y, x] = pi.mean() - a[y, x] @ mu
    ap = np.pad(a, ((r, r), (r, r), (0, 0)), mode="symmetric")
    bp = np.pad(b, r, mode="symmetric")
    q = np.zeros((h, w))
    for y, x in itertools.product(range(h), range(w)):
        ma = ap[y : y + 2 * r + 1, x : x + 2 * r + 1].reshape(-1, 3).mean(0)
        q[y, x] = ma @ guide[y, x] + bp[y : y + 2 * r + 1, x : x + 2 * r + 1].mean()
    return q


def test_guided_filter_matches_window_regression(rng):
    guide = rng.random((9, 11, 3))
    p = (rng.random((9, 11)) > 0.5).astype(np.float64)
    ours = guided_filter(guide, p, radius=2, eps=1e-2)
    np.testing.assert_allclose(ours, _naive_guided(guide, p, 2, 1e-2), atol=1e-5)
    gray = guided_filter(guide[..., 0], p, radius=1, eps=1e-2)
    assert gray.shape == p.shape and np.isfinite(gray).all()
    with pytest.raises(InvalidParameterError):
        guided_filter(guide, p, radius=0)
    with pytest.raises(InvalidImageError):
        guided_filter(guide, p[:5])


def _toy() -> np.ndarray:
    img = np.full((48, 64, 3), 0.15, np.float32)
    img[12:36, 20:44] = (0.9, 0.4, 0.1)
    noise = np.random.default_rng(1).normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img + noise, 0, 1)


def test_input_kinds():
    img = np.clip(_toy(), 0, 1)
    base = grabcut(img, (10, 5, 44, 38))
    assert base.mask[24, 32] and not base.mask[2, 2]
    # uint16 and uint8 give the same cut as float.
    assert np.array_equal(
        grabcut((img * 65535).round().astype(np.uint16), (10, 5, 44, 38)).mask, base.mask
    )
    # Gray images work on one channel.
    assert grabcut(img.mean(-1), (10, 5, 44, 38)).mask[24, 32]
    # RGBA: transparent pixels are background, and the cut-out keeps the input alpha.
    rgba = np.concatenate([img, np.ones((48, 64, 1), np.float32)], -1)
    rgba[5:12, 10:54, 3] = 0.0  # transparent inside the box
    rgba[20:22, 0:5, 3] = 0.5  # half transparent outside it
    res = grabcut(rgba, (10, 5, 44, 38))
    assert (res.trimap[5:12, 10:54] == BGD).all() and res.mask[14:34, 22:42].all()
    assert np.all(res.cutout()[5:12, 10:54, 3] == 0)
    assert np.all(res.cutout()[17:31, 25:39, 3] == 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(rect=(100, 100, 10, 10)), InvalidParameterError, "outside"),
        (dict(rect=(5, 5, 0, 10)), InvalidParameterError, "> 0"),
        (dict(rect=(-5, -5, 80, 60)), InvalidParameterError, "whole"),
        (dict(rect=(1, 2, 3)), InvalidParameterError, "four integers"),
        (dict(), InvalidParameterError, "rect"),
        (dict(mask=np.full((10, 10), PR_FGD, np.uint8)), InvalidParameterError, "shape"),
        (dict(mask=np.full((48, 64), PR_FGD, np.uint8)), InvalidParameterError, "no background"),
        (dict(mask=np.full((48, 64), PR_BGD, np.uint8)), InvalidParameterError, "no foreground"),
        (dict(mask=np.ones((48, 64), bool)), InvalidParameterError, "integer trimap"),
        (dict(mask=np.full((48, 64), 7, np.uint8)), InvalidParameterError, "only BGD"),
        (dict(rect=(10, 5, 44, 38), iterations=0), InvalidParameterError, "iterations"),
        # Once a bare ValueError/TypeError, inf energies, or (tol) taken silently:
        (dict(rect=(10, 5, 44, 38), iterations=np.nan), InvalidParameterError, "iterations"),
        (dict(rect=(10, 5, 44, 38), iterations=2.5), InvalidParameterError, "iterations"),
        (dict(rect=(10, 5, 44, 38), gamma=np.inf), InvalidParameterError, "gamma"),
        (dict(rect=(10, 5, 44, 38), tol=np.nan), InvalidParameterError, "tol"),
        (dict(rect=(10, 5, 44, 38), feather_radius=np.nan), InvalidParameterError, "feather_r"),
        (dict(rect=(10, 5, 44, 38), feather_eps=0), InvalidParameterError, "feather_eps"),
        (dict(rect=(10, 5, 44, 38), feather_eps=np.nan), InvalidParameterError, "feather_eps"),
        (dict(rect=(10, 5, 44, 38), seed=None), InvalidParameterError, "seed"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        grabcut(np.clip(_toy(), 0, 1), **kwargs)


def test_bad_images():
    img = np.clip(_toy(), 0, 1)
    with pytest.raises(InvalidImageError, match=r"\[0, 1\]"):
        grabcut(img * 255, (10, 5, 44, 38))
    nan = img.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        grabcut(nan, (10, 5, 44, 38))
    with pytest.raises(InvalidImageError):
        grabcut(np.zeros((4, 5, 2)), (1, 1, 2, 2))


def test_rect_is_clipped_to_the_image():
    img = np.clip(_toy(), 0, 1)
    res = grabcut(img, (10, 5, 44, 100))
    assert (res.trimap[:5] == BGD).all() and (res.trimap[5:, 10:54] != BGD).all()


@pytest.fixture(scope="module")
def teddy_file(tmp_path_factory, data_dir):
    img = Image.open(data_dir / "grabcut" / "images" / "teddy.png").convert("RGB")
    img = img.resize((100, 140), Image.BILINEAR)
    path = tmp_path_factory.mktemp("cutout") / "teddy.png"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img.save(path, icc_profile=icc)
    return path, icc


def test_cli_cutout_png_and_jpeg(teddy_file, tmp_path):
    path, icc = teddy_file
    runner = CliRunner()
    out = tmp_path / "cut.png"
    result = runner.invoke(
        app, ["cutout", str(path), "--rect", "12,12,76,116", "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert 0.2 < data["foreground_fraction"] < 0.9 and data["icc_profile"] is True
    with Image.open(out) as written:
        assert written.mode == "RGBA"
        assert written.info.get("icc_profile") == icc
        alpha = np.asarray(written)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255 and alpha[0, 0] == 0
    jpg = tmp_path / "cut.jpg"
    result = runner.invoke(
        app, ["cutout", str(path), "--rect", "12,12,76,116", "-o", str(jpg), "--quality", "80"]
    )
    assert result.exit_code == 0, result.output
    with Image.open(jpg) as written:
        assert written.mode == "RGB" and written.info.get("icc_profile") == icc
        assert np.asarray(written)[0, 0].min() > 240  # background composited on white
    small = tmp_path / "small.png"
    args = ["cutout", str(path), "--rect", "12,12,76,116", "--max-side", "70", "-o", str(small)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["width"], data["height"]) == (50, 70)
    with Image.open(small) as written:
        assert written.size == (50, 70)
        half = np.asarray(written)[..., 3] > 127
    with Image.open(out) as full:
        full_half = np.asarray(full.resize((50, 70), Image.BILINEAR))[..., 3] > 127
    assert (half == full_half).mean() > 0.9


def test_cli_cutout_with_trimap_file(teddy_file, tmp_path):
    path, _ = teddy_file
    marks = np.full((140, 100), 128, np.uint8)
    marks[:8] = 0
    marks[60:70, 45:55] = 0  # force a hole in the middle of the bear
    trimap = tmp_path / "marks.png"
    Image.fromarray(marks).save(trimap)
    out = tmp_path / "cut.png"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "cutout",
            str(path),
            "--rect",
            "12,12,76,116",
            "--mask",
            str(trimap),
            "-o",
            str(out),
            "--hard",
        ],
    )
    assert result.exit_code == 0, result.output
    alpha = np.asarray(Image.open(out))[..., 3]
    assert (alpha[60:70, 45:55] == 0).all()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--rect", "1,2,3"], "X,Y,W,H"),
        (["--rect", "500,500,10,10"], "outside"),
        ([], "--rect"),
    ],
)
def test_cli_cutout_errors(teddy_file, tmp_path, args, match):
    path, _ = teddy_file
    result = CliRunner().invoke(app, ["cutout", str(path), *args, "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert match in result.output


def test_stops_when_the_energy_stops_falling():
    res = grabcut(_toy(), (10, 5, 44, 38), iterations=20, tol=1e-3)
    assert res.converged and len(res.energies) < 20
    assert grabcut(_toy(), (10, 5, 44, 38), iterations=1).energies == res.energies[:1]


def test_trimap_from_marks_is_the_cli_mask_convention():
    from boda.segment import BGD, FGD, PR_FGD, trimap_from_marks

    marks = np.array([[0, 63, 64, 128, 191, 192, 255]], np.uint8)  # 0.25 = 63.75
    assert trimap_from_marks(marks).tolist() == [[BGD, BGD, PR_FGD, PR_FGD, PR_FGD, FGD, FGD]]
    soft = trimap_from_marks(marks, background_below=0.6, foreground_above=0.6)
    assert soft.tolist() == [[BGD] * 4 + [FGD] * 3]
    with pytest.raises(InvalidImageError, match="gray"):
        trimap_from_marks(np.zeros((4, 4, 3)))
    with pytest.raises(InvalidParameterError, match="background_below <= foreground_above"):
        trimap_from_marks(marks, background_below=0.8, foreground_above=0.2)
