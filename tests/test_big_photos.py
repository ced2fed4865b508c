"""Work and memory that follow the hole (or a strip), not the photo.

The fills and measures below were written for big photos (12-50 MP): a small
hole must not cost a pass over the whole image, and full-reference quality
must not hold ~20 full-size float64 copies.  The tests count pixels touched
and trace memory on moderate images; they never time anything.
"""

from __future__ import annotations

import numpy as np
import pytest
from memory_helpers import peak_bytes
from scipy import ndimage, signal

import boda.edit._exemplar as exemplar_module
import boda.edit._telea as telea_module
import boda.quality._reference as reference_module
from boda.edit import inpaint, inpaint_exemplar, inpaint_telea
from boda.quality import mse, psnr, ssim


def _texture(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth random texture (so patch matches are not all ties), float32 RGB."""
    rng = np.random.default_rng(seed)
    noise = rng.random((*shape, 3))
    return ndimage.gaussian_filter(noise, (2, 2, 0)).astype(np.float32)


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius * radius


@pytest.fixture
def searched(monkeypatch):
    """Record the size of every region the exemplar search correlates."""
    sizes: list[int] = []
    real = signal.correlate

    def spy(in1, in2, *args, **kwargs):
        sizes.append(int(np.asarray(in1).size))
        return real(in1, in2, *args, **kwargs)

    monkeypatch.setattr(signal, "correlate", spy)
    return sizes


# --- exemplar -------------------------------------------------------------------------


def test_exemplar_search_work_follows_the_hole_not_the_photo(searched):
    # A hole wider than the search window: its inner patches find no source
    # nearby.  The search used to fall back to the whole photo for each of them.
    small = _texture((160, 160))
    big = np.tile(small, (2, 2, 1))  # the same photo, 4x the pixels
    hole_small = _disc(small.shape[:2], (80, 80), 14)
    hole_big = _disc(big.shape[:2], (80, 80), 14)
    out_small = inpaint_exemplar(small, hole_small, patch_size=7, search_radius=4)
    work_small, largest = sum(searched), max(searched)
    searched.clear()
    out_big = inpaint_exemplar(big, hole_big, patch_size=7, search_radius=4)
    assert sum(searched) == work_small  # not 4x: the photo grew, the hole did not
    assert largest < small[:, :, 0].size // 4
    # The working crop lies inside both photos, so the fills are the same.
    assert np.array_equal(out_big[:160, :160], out_small)
    assert np.array_equal(out_big[~hole_big], big[~hole_big])


def test_exemplar_widened_search_copies_known_pixels_only():
    img = _texture((90, 100), seed=3)
    hole = _disc(img.shape[:2], (45, 50), 18)
    out = inpaint_exemplar(img, hole, patch_size=5, search_radius=2)
    assert np.array_equal(out[~hole], img[~hole])
    # Every filled pixel is a copy of a known pixel (patches copy, never blend).
    known_colours = {tuple(v) for v in img[~hole].tolist()}
    assert all(tuple(v) in known_colours for v in out[hole].tolist())


def _whole_image_groups(mask, margin):
    """hole_groups' stand-in: one group, the whole image (what the fills did before)."""
    return [((slice(0, mask.shape[0]), slice(0, mask.shape[1])), mask)]


def test_exemplar_crops_keep_the_whole_image_fill(monkeypatch):
    # Holes near each other, far apart and at the border: worked on in crops,
    # the fill must be the whole image's bit for bit (no window widens here).
    img = _texture((150, 170), seed=1)
    holes = _disc(img.shape[:2], (40, 50), 6) | _disc(img.shape[:2], (46, 66), 3)
    holes[140:143, 150:153] = True
    holes[0:4, 100:106] = True
    cropped = inpaint_exemplar(img, holes, patch_size=7, search_radius=12)
    monkeypatch.setattr(telea_module, "hole_groups", _whole_image_groups)
    whole = inpaint_exemplar(img, holes, patch_size=7, search_radius=12)
    assert np.array_equal(cropped, whole)


def test_exemplar_far_apart_holes_cost_their_own_crops(searched):
    img = _texture((400, 400), seed=6)
    holes = np.zeros(img.shape[:2], bool)
    holes[10:16, 10:16] = True
    holes[380:386, 384:390] = True
    inpaint_exemplar(img, holes, patch_size=7, search_radius=8)
    # Every search stays in its window (radius 8 + half a patch)...
    assert max(searched) <= (2 * (8 + 3) + 1) ** 2
    # ...and the working arrays cover each hole's surroundings, not a box
    # spanning both (float64 confidences and priorities of the whole photo).
    peak = peak_bytes(inpaint_exemplar, img, holes, patch_size=7, search_radius=8)
    assert peak < 1.5 * img.nbytes


def test_exemplar_progress_tracks_the_search_work(searched):
    # Patches at the hole's edge find a source within 6 px; deeper ones need
    # wider windows (they used to search the whole photo).
    img = _texture((240, 240), seed=2)
    hole = _disc(img.shape[:2], (60, 60), 16)
    seen: list[tuple[int, int, int, int]] = []  # (done, total, pixels searched, patches)

    def progress(done: int, total: int) -> None:
        seen.append((done, total, sum(searched), len(seen) + 1))

    inpaint_exemplar(img, hole, patch_size=7, search_radius=6, progress=progress)
    done = np.array([s[0] for s in seen], dtype=np.float64)
    total = seen[-1][1]
    assert seen[-1][0] == total == int(hole.sum())
    assert np.all(np.diff(done) >= 0)
    # Work = pixels searched plus the fixed per-patch part (the module's own
    # measured constant); the bar's fraction must follow it, not the pixel count.
    work = np.array([s[2] / 4 + s[3] * exemplar_module._FIXED_COST for s in seen])
    assert np.abs(done / total - work / work[-1]).max() < 0.15


# --- Telea --------------------------------------------------------------------------


@pytest.mark.parametrize(("radius", "gradient"), [(5.0, False), (3.5, True), (7.2, True)])
def test_telea_crops_give_the_whole_image_fill(monkeypatch, radius, gradient):
    # Holes worked on in crops (one per group of nearby holes) must get the
    # whole image's fill bit for bit: the crops' margins hold all the march reads.
    img = _texture((140, 160), seed=4)
    holes = np.zeros(img.shape[:2], bool)
    holes[30:44, 40:50] = True
    holes[50, 20:70] = True  # a scratch near the first hole
    holes[136:139, 155:158] = True  # far away, at the border
    holes[60:63, 0:2] = True
    cropped = inpaint_telea(img, holes, radius=radius, gradient=gradient)
    monkeypatch.setattr(telea_module, "hole_groups", _whole_image_groups)
    whole = inpaint_telea(img, holes, radius=radius, gradient=gradient)
    assert np.array_equal(cropped, whole)
    assert np.array_equal(cropped[~holes], img[~holes])


def test_hole_groups_split_only_far_apart_holes():
    holes = np.zeros((60, 80), bool)
    holes[10, 10] = holes[10, 20] = True  # 10 px apart: one group at margin 5
    holes[50, 70] = True
    groups = telea_module.hole_groups(holes, 5)
    assert len(groups) == 2
    (box, inside), (box2, inside2) = groups
    assert box == (slice(5, 16), slice(5, 26)) and inside.sum() == 2
    assert box2 == (slice(45, 56), slice(65, 76)) and inside2.sum() == 1
    assert len(telea_module.hole_groups(holes, 4)) == 3


def test_telea_keeps_the_known_range_clip_of_the_whole_image():
    # Known values outside [0, 1] widen the clip range; they may lie far from the hole.
    img = _texture((80, 80), seed=5) * 0.5 + 0.25
    img[0, 0] = (1.4, 1.4, 1.4)
    img[79, 79] = (-0.3, -0.3, -0.3)
    img[20:40, 20:40, 0] = 1.0  # a sharp edge the first-order term overshoots
    hole = np.zeros((80, 80), bool)
    hole[35:45, 35:45] = True
    out = inpaint_telea(img, hole, radius=5, gradient=True)
    assert out[hole].max() <= 1.4 and out[hole].min() >= -0.3
    assert np.isfinite(out).all()


def test_telea_memory_follows_the_holes_not_the_photo():
    img = _texture((600, 600))
    hole = _disc(img.shape[:2], (300, 300), 12)
    hole[590:595, 2:8] = True  # a far dust spot: its own crop, not a photo-wide box
    inpaint_telea(img, hole)  # imports and caches outside the measurement
    peak = peak_bytes(inpaint_telea, img, hole)
    # The result is one float32 copy; the march used to pad a float64 copy of
    # the photo plus full-size distance maps (> 3x the image).
    assert peak < 1.5 * img.nbytes


def test_inpaint_dispatch_makes_one_copy():
    img = _texture((600, 600))
    hole = _disc(img.shape[:2], (300, 300), 12)
    inpaint(img, hole, method="telea")
    peak = peak_bytes(inpaint, img, hole, method="telea")
    # The method's result plus the returned image (np.where and astype made more).
    assert peak < 2.4 * img.nbytes


# --- full-reference quality --------------------------------------------------------


def _ssim_whole_image(a, b, sigma=1.5, k1=0.01, k2=0.03):
    """The whole-image float64 computation the strips must reproduce."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    truncate, radius = 3.5, int(3.5 * sigma + 0.5)
    sig = (sigma, sigma, 0) if a.ndim == 3 else sigma

    def blur(x):
        return ndimage.gaussian_filter(x, sig, mode="reflect", truncate=truncate)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = k1**2, k2**2
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    smap = smap.mean(axis=2) if smap.ndim == 3 else smap
    rows, cols = smap.shape
    return float(smap[radius : rows - radius, radius : cols - radius].mean()), smap


@pytest.mark.parametrize(("shape", "sigma"), [((97, 61, 3), 1.5), ((64, 50), 0.7), ((40, 33), 0.1)])
def test_ssim_strips_give_the_whole_image_map(monkeypatch, shape, sigma):
    # Strips of a few rows (not the 1 M values of real use), so many strip
    # borders and both image ends are crossed.
    monkeypatch.setattr(reference_module, "_STRIP_VALUES", 150, raising=False)
    rng = np.random.default_rng(7)
    ref = rng.random(shape).astype(np.float32)
    img = np.clip(ref + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    value, smap = ssim(img, ref, sigma=sigma, full=True)
    expected_value, expected_map = _ssim_whole_image(img, ref, sigma=sigma)
    assert np.array_equal(smap, expected_map)
    assert value == pytest.approx(expected_value, rel=1e-12, abs=0)
    err = float(np.mean((img.astype(np.float64) - ref) ** 2))
    assert mse(img, ref) == pytest.approx(err, rel=1e-12, abs=0)
    assert psnr(img, ref) == pytest.approx(10 * np.log10(1 / err), rel=1e-12, abs=0)


def test_reference_measures_memory_is_a_few_strips(monkeypatch):
    # A tall image and small strips: a strip of 40 rows is a sliver of it.
    monkeypatch.setattr(reference_module, "_STRIP_VALUES", 1 << 12, raising=False)
    rng = np.random.default_rng(8)
    ref = rng.random((3000, 60, 3)).astype(np.float32)
    img = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    ssim(img, ref)
    # The whole-image version held two float64 copies of each input and ~10
    # float64 temporaries (> 20x one float32 image).
    assert peak_bytes(ssim, img, ref) < 1.0 * img.nbytes
    assert peak_bytes(mse, img, ref) < 0.25 * img.nbytes
    assert peak_bytes(psnr, img, ref) < 0.25 * img.nbytes
