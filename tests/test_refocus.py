"""boda.edit.refocus: circle of confusion, layered lens blur, threshold recipe, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageCms
from scipy import ndimage
from typer.testing import CliRunner

from boda.cli import app
from boda.edit import (
    check_depth,
    circle_of_confusion,
    disk_kernel,
    hexagon_kernel,
    linear_to_srgb,
    read_depth,
    refocus,
    resize_depth,
    resolve_focus,
    srgb_to_linear,
)
from boda.errors import ImageReadError, InvalidImageError, InvalidParameterError


def _texture(shape, seed=0, channels=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random(shape + (channels,))
    return np.clip(ndimage.gaussian_filter(noise, (0.7, 0.7, 0)) * 1.6 - 0.3, 0, 1).astype(
        np.float32
    )


def _hf_energy(image: np.ndarray) -> float:
    """Detail measure: standard deviation of the Laplacian of the gray image."""
    gray = image.mean(axis=2) if image.ndim == 3 else image
    return float(ndimage.laplace(gray.astype(np.float64)).std())


@pytest.fixture(scope="module")
def square_scene():
    """Sharp pure-red foreground square (near) on a green/blue texture (far)."""
    img = _texture((96, 96), seed=1)
    img[:, :, 0] = 0.0
    depth = np.ones((96, 96), np.float32)
    fg = np.zeros((96, 96), bool)
    fg[32:64, 32:64] = True
    img[fg] = (1.0, 0.0, 0.0)
    depth[fg] = 0.2
    return img, depth, fg


# --- kernels and transfer functions -------------------------------------------------------


@pytest.mark.parametrize("radius", [0.0, 0.3, 1.0, 2.5, 7.0])
def test_kernels_are_normalised_symmetric_with_the_right_area(radius):
    for fn, area in ((disk_kernel, np.pi), (hexagon_kernel, 1.5 * np.sqrt(3))):
        k = fn(radius)
        assert k.shape[0] == k.shape[1] == 2 * int(np.ceil(radius)) + 1
        assert abs(k.sum() - 1) < 1e-6
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)
        if radius >= 2.5:  # support ~ area * r^2 pixels
            support = 1.0 / k.max()
            assert abs(support - area * radius**2) < 0.1 * area * radius**2


def test_srgb_round_trip_and_known_values():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)
    assert abs(float(srgb_to_linear(np.float32(0.5))) - 0.21404) < 1e-4  # IEC 61966-2-1


# --- circle of confusion ------------------------------------------------------------------


def test_coc_disparity_is_linear_and_signed():
    d = np.linspace(0, 1, 11, dtype=np.float32)[None, :]
    coc = circle_of_confusion(d, focus_depth=0.3, aperture=10)
    np.testing.assert_allclose(coc[0], 10 * (d[0] - 0.3), atol=1e-5)
    bright = circle_of_confusion(1 - d, focus_depth=0.7, aperture=10, near="bright")
    np.testing.assert_allclose(bright, coc, atol=1e-5)


def test_coc_thin_lens_formula_and_clip():
    d = np.linspace(0, 1, 11, dtype=np.float32)[None, :]
    coc = circle_of_confusion(
        d, focus_depth=0.5, aperture=6, model="thin_lens", depth_range=(1, 11), max_radius=None
    )
    z = 1 + 10 * d[0]
    np.testing.assert_allclose(coc[0], 6 * (1 - 6 / z), rtol=1e-5, atol=1e-5)
    clipped = circle_of_confusion(
        d, focus_depth=0.5, aperture=6, model="thin_lens", depth_range=(1, 11), max_radius=4
    )
    assert clipped.min() == -4 and clipped.max() <= 4


def test_coc_focus_range_and_focus_at():
    d = np.linspace(0, 1, 11, dtype=np.float32)[None, :]
    coc = circle_of_confusion(d, focus_range=(0.6, 0.3), aperture=10)
    inside = (d[0] >= 0.3 - 1e-6) & (d[0] <= 0.6 + 1e-6)
    assert np.abs(coc[0][inside]).max() < 1e-5
    np.testing.assert_allclose(coc[0][d[0] < 0.3], 10 * (d[0][d[0] < 0.3] - 0.3), atol=1e-5)
    np.testing.assert_allclose(coc[0][d[0] > 0.6], 10 * (d[0][d[0] > 0.6] - 0.6), atol=1e-5)
    depth = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    assert resolve_focus(depth, focus_at=(7, 13)) == (depth[13, 7], depth[13, 7])
    at = circle_of_confusion(depth, focus_at=(7, 13))
    assert at[13, 7] == 0
    np.testing.assert_array_equal(at, circle_of_confusion(depth, focus_depth=float(depth[13, 7])))


def test_metric_float_depth_uses_its_own_units():
    metres = np.array([[1.0, 2.0, 3.0, 5.0]], np.float32)
    coc = circle_of_confusion(metres, focus_depth=2.0, aperture=8)
    np.testing.assert_allclose(coc[0], 8 * (metres[0] - 2.0) / 4.0, atol=1e-5)


# --- lens renderer ------------------------------------------------------------------------


def test_flat_depth_is_a_disk_blur_in_linear_light():
    img = _texture((64, 80), seed=2)
    depth = np.full((64, 80), 1.0, np.float32)
    out = refocus(img, depth, focus_depth=0.0, aperture=5, highlight_gain=0)
    lin = srgb_to_linear(img)
    k = disk_kernel(5.0)
    ref = np.stack([ndimage.correlate(lin[:, :, c], k, mode="mirror") for c in range(3)], 2)
    np.testing.assert_allclose(out, linear_to_srgb(ref), atol=2e-4)
    # energy: the mean linear intensity is conserved
    assert abs(srgb_to_linear(out).mean() - lin.mean()) < 0.005 * lin.mean()
    assert _hf_energy(out) < 0.3 * _hf_energy(img)


def test_in_focus_region_is_unchanged(kodak_rgb):
    img = kodak_rgb[:128, :160]
    depth = np.zeros((128, 160), np.float32)
    depth[:, 80:] = 1.0  # right half far
    out = refocus(img, depth, focus_at=(10, 10), aperture=6)
    assert np.array_equal(out[:, :80], img[:, :80])  # near half in focus, even at the edge
    assert _hf_energy(out[:, 90:]) < 0.5 * _hf_energy(img[:, 90:])


def test_no_halo_around_a_sharp_foreground(square_scene):
    img, depth, fg = square_scene
    out = refocus(img, depth, focus_at=(48, 48), aperture=10)
    assert np.array_equal(out[fg], img[fg])  # the subject, edge pixels included, stays exact
    ring = ndimage.binary_dilation(fg, iterations=4) & ~fg
    assert out[ring][:, 0].max() < 0.02  # no red bled into the blurred background
    far = ~ndimage.binary_dilation(fg, iterations=12)
    assert _hf_energy(np.where(far[:, :, None], out, 0)) < 0.6 * _hf_energy(
        np.where(far[:, :, None], img, 0)
    )
    # The background next to the subject is the background, not a dark rim.
    bg_mean = srgb_to_linear(img[ring][:, 1:]).mean()
    assert abs(srgb_to_linear(out[ring][:, 1:]).mean() - bg_mean) < 0.1 * bg_mean


def test_blurred_foreground_spreads_over_sharp_background(square_scene):
    img, depth, fg = square_scene
    out = refocus(img, depth, focus_depth=1.0, aperture=10, highlight_gain=0)
    ring = ndimage.binary_dilation(fg, iterations=3) & ~fg
    assert out[ring][:, 0].mean() > 0.2  # the near field's dilated CoC covers the ring
    far = ~ndimage.binary_dilation(fg, iterations=12)
    assert np.array_equal(out[far], img[far])  # the rest of the background stays sharp


def test_blur_grows_with_depth_distance_and_aperture():
    img = _texture((60, 250), seed=3)
    depth = np.repeat(np.repeat(np.linspace(0, 1, 5, dtype=np.float32), 50)[None, :], 60, 0)
    energies = []
    out = refocus(img, depth, focus_depth=0.0, aperture=8, highlight_gain=0)
    for band in range(5):
        energies.append(_hf_energy(out[10:50, band * 50 + 10 : band * 50 + 40]))
    assert all(a > b for a, b in zip(energies, energies[1:], strict=False))
    far = [
        _hf_energy(refocus(img, depth, focus_depth=0.0, aperture=a, highlight_gain=0)[:, 210:240])
        for a in (1, 3, 6, 12)
    ]
    assert all(a > b for a, b in zip(far, far[1:], strict=False))
    assert np.array_equal(refocus(img, depth, focus_depth=0.0, aperture=0), img)


def test_highlight_boost_makes_brighter_bokeh():
    img = np.full((48, 48, 3), 0.05, np.float32)
    img[24, 24] = 1.0
    depth = np.ones((48, 48), np.float32)
    plain = refocus(img, depth, focus_depth=0.0, aperture=4, highlight_gain=0)
    boosted = refocus(img, depth, focus_depth=0.0, aperture=4, highlight_gain=4)
    assert boosted[24, 24].mean() > plain[24, 24].mean() + 0.02
    assert abs(boosted[5, 5].mean() - plain[5, 5].mean()) < 1e-6  # dark areas untouched


def test_hexagon_kernel_and_gray_and_uint_inputs(square_scene):
    img, depth, _ = square_scene
    hexed = refocus(img, depth, focus_depth=0.2, aperture=6, kernel="hexagon")
    disk = refocus(img, depth, focus_depth=0.2, aperture=6)
    assert hexed.shape == img.shape and not np.array_equal(hexed, disk)
    gray = refocus(img.mean(axis=2), depth, focus_depth=0.2, aperture=6)
    assert gray.shape == depth.shape
    as8 = refocus((img * 255).round().astype(np.uint8), (depth * 65535).astype(np.uint16),
                  focus_depth=0.2, aperture=6)
    assert as8.dtype == np.float32 and np.abs(as8 - disk).max() < 0.01


# --- threshold recipe ---------------------------------------------------------------------


def test_threshold_method_blends_as_documented():
    img = _texture((64, 64), seed=4)
    depth = np.zeros((64, 64), np.float32)
    depth[:, 32:] = 0.8
    depth[20:40, 40:50] = 0.52
    out = refocus(img, depth, focus_depth=0.5, aperture=3, method="threshold",
                  tolerance=0.05, feather=0)
    mask = (np.abs(depth - 0.5) <= 0.05).astype(np.float32)[:, :, None]
    lin = srgb_to_linear(img)
    k = disk_kernel(3.0)
    blurred = np.stack([ndimage.correlate(lin[:, :, c], k, mode="mirror") for c in range(3)], 2)
    ref = linear_to_srgb(mask * lin + (1 - mask) * blurred)
    np.testing.assert_allclose(out, ref, atol=2e-4)
    assert np.array_equal(out[20:40, 40:50], img[20:40, 40:50])
    feathered = refocus(img, depth, focus_depth=0.5, aperture=3, method="threshold", feather=2)
    assert not np.array_equal(feathered, out)


# --- bad input ----------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(square_scene):
    img, depth, _ = square_scene
    with pytest.raises(InvalidImageError, match="resize_depth"):
        refocus(img, depth[:-4], focus_depth=0.5)
    with pytest.raises(InvalidImageError, match="RGBA"):
        refocus(np.dstack([img, np.ones(depth.shape, np.float32)]), depth, focus_depth=0.5)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        refocus(img, depth)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        refocus(img, depth, focus_depth=0.1, focus_at=(1, 1))
    with pytest.raises(InvalidParameterError, match="outside"):
        refocus(img, depth, focus_at=(96, 0))
    with pytest.raises(InvalidParameterError, match="choose from"):
        refocus(img, depth, focus_depth=0.5, method="magic")
    with pytest.raises(InvalidParameterError, match="choose from"):
        refocus(img, depth, focus_depth=0.5, kernel="star")
    with pytest.raises(InvalidParameterError, match="near"):
        refocus(img, depth, focus_depth=0.5, near="up")
    with pytest.raises(InvalidParameterError, match="aperture"):
        refocus(img, depth, focus_depth=0.5, aperture=-1)
    nan = depth.copy()
    nan[0, 0] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        refocus(img, nan, focus_depth=0.5)


@pytest.mark.parametrize(("kwargs", "match"), [
    # Each once raised a bare ValueError, TypeError or OverflowError from deep inside.
    ({"focus_at": (np.nan, 2)}, "focus_at must be a pixel"),
    ({"focus_at": (1, 2, 3)}, "focus_at must be a pixel"),
    ({"focus_range": (0.5,)}, "focus_range must be"),
    ({"focus_range": "ab"}, "focus_range must be"),
    ({"focus_depth": "x"}, "focus_depth must be"),
    ({"focus_depth": 0.5, "method": "threshold", "aperture": np.nan}, "aperture"),
    ({"focus_depth": 0.5, "method": "threshold", "aperture": np.inf}, "aperture"),
    ({"focus_depth": 0.5, "max_radius": np.nan}, "max_radius"),
    # These were taken silently: a negative max_radius clipped every CoC to -|limit|
    # (the whole picture blurred as near field), a NaN tolerance made nothing in
    # focus, a NaN highlight gain turned the boost off.
    ({"focus_depth": 0.5, "max_radius": -5}, "max_radius"),
    ({"focus_depth": 0.5, "method": "threshold", "tolerance": np.nan}, "tolerance"),
    ({"focus_depth": 0.5, "method": "threshold", "feather": np.nan}, "feather"),
    ({"focus_depth": 0.5, "highlight_gain": np.nan}, "highlight_gain"),
    ({"focus_depth": 0.5, "max_layers": np.nan}, "max_layers"),
])  # fmt: skip
def test_bad_numbers_are_refused_naming_the_argument(square_scene, kwargs, match):
    img, depth, _ = square_scene
    with pytest.raises(InvalidParameterError, match=match):
        refocus(img, depth, **kwargs)


def test_resize_depth_matches_shape():
    small = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    big = resize_depth(small, (30, 40))
    assert big.shape == (30, 40) and big.min() >= 0 and big.max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_resize_depth_keeps_the_units_refocus_reads_an_integer_map_in(dtype):
    # refocus reads a uint16 map as [0, 1]; resize_depth used to keep 0..65535, so the
    # same focus_depth then pointed at another depth (the whole picture changed).
    ramp = np.tile(np.linspace(0, 1, 40), (30, 1))
    depth = np.round(ramp * np.iinfo(dtype).max).astype(dtype)
    np.testing.assert_array_equal(resize_depth(depth, depth.shape), check_depth(depth, depth.shape))
    assert resize_depth(depth, (15, 20)).max() <= 1.0
    img = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        refocus(img, resize_depth(depth, depth.shape), focus_depth=0.3, aperture=4),
        refocus(img, depth, focus_depth=0.3, aperture=4),
    )


@pytest.mark.parametrize("method", ["lens", "threshold"])
def test_a_focus_on_an_integer_maps_stored_scale_is_refused(method):
    """focus_depth=128 for a uint8 map (read as value / 255) blurred the whole picture."""
    depth = np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))
    img = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    with pytest.raises(InvalidParameterError, match=r"focus_depth 128 .* give 0\.502"):
        refocus(img, depth, focus_depth=128, method=method)
    with pytest.raises(InvalidParameterError, match="focus_range 60, 120"):
        refocus(img, depth, focus_range=(60, 120), method=method)
    with pytest.raises(InvalidParameterError, match="focus_depth 300"):
        circle_of_confusion(depth.astype(np.uint16), focus_depth=300, aperture=4)
    # on the 0-1 scale it is read in, and for float maps in any unit, it is taken
    assert refocus(img, depth, focus_depth=0.5, method=method).shape == img.shape
    assert refocus(img, depth * 10.0, focus_depth=128, method=method).shape == img.shape


# --- reading depth maps -------------------------------------------------------------------


def test_read_depth_formats(tmp_path):
    values = np.random.default_rng(5).integers(0, 65536, (20, 30)).astype(np.uint16)
    png16 = tmp_path / "d16.png"
    Image.fromarray(values).save(png16)
    np.testing.assert_allclose(read_depth(png16), values / 65535.0, atol=1e-6)
    png8 = tmp_path / "d8.png"
    Image.fromarray((values >> 8).astype(np.uint8)).save(png8)
    np.testing.assert_allclose(read_depth(png8), (values >> 8) / 255.0, atol=1e-6)
    metres = (values / 1000.0).astype(np.float32)
    tif = tmp_path / "d.tif"
    Image.fromarray(metres, mode="F").save(tif)
    np.testing.assert_allclose(read_depth(tif), metres, atol=1e-6)
    npy = tmp_path / "d.npy"
    np.save(npy, metres.astype(np.float64))
    np.testing.assert_allclose(read_depth(npy), metres, atol=1e-6)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError):
        read_depth(bad)
    with pytest.raises(ImageReadError, match="2-D"):
        np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
        read_depth(tmp_path / "cube.npy")


# --- CLI ----------------------------------------------------------------------------------


_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _srgb_icc() -> bytes:
    return _ICC  # made once: the profile records its creation time


@pytest.fixture
def files(tmp_path, square_scene):
    img, depth, _ = square_scene
    photo = tmp_path / "photo.png"
    Image.fromarray((img * 255).round().astype(np.uint8)).save(photo, icc_profile=_srgb_icc())
    depth_png = tmp_path / "depth.png"
    Image.fromarray((depth * 65535).round().astype(np.uint16)).save(depth_png)
    return photo, depth_png


def test_cli_refocus_jpeg_keeps_profile(tmp_path, files, square_scene):
    photo, depth_png = files
    img, depth, fg = square_scene
    out = tmp_path / "out.jpg"
    result = CliRunner().invoke(app, [
        "refocus", str(photo), "--depth", str(depth_png), "--focus-at", "40,40",
        "--aperture", "8", "-o", str(out), "-q", "90", "--json",
    ])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["focus_range"] == pytest.approx([0.2, 0.2], abs=1e-4)
    assert info["icc_profile"] is True
    with Image.open(out) as written:
        assert written.format == "JPEG"
        assert written.info.get("icc_profile") == _srgb_icc()
        pixels = np.asarray(written.convert("RGB")) / 255.0
    lib = refocus(np.asarray(Image.open(photo)), depth, focus_depth=0.2, aperture=8)
    assert np.abs(pixels - lib).mean() < 0.02  # JPEG at q=90


def test_cli_refocus_png_threshold_and_focus_depth(tmp_path, files):
    photo, depth_png = files
    out = tmp_path / "out.png"
    result = CliRunner().invoke(app, [
        "refocus", str(photo), "-d", str(depth_png), "--focus-depth", "1.0",
        "--method", "threshold", "--kernel", "hexagon", "-o", str(out),
    ])
    assert result.exit_code == 0, result.output
    with Image.open(out) as written:
        assert written.info.get("icc_profile") == _srgb_icc()


def test_cli_refocus_bad_input(tmp_path, files):
    photo, _ = files
    small = tmp_path / "small.npy"
    np.save(small, np.zeros((10, 12), np.float32))
    runner = CliRunner()
    out = str(tmp_path / "o.png")
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(small), "--focus-depth", "0",
                                 "-o", out])
    assert result.exit_code == 2 and "--resize-depth" in result.output  # usage, as in cutout
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(small), "--focus-depth", "0",
                                 "--resize-depth", "-o", out])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(small), "-o", out])
    assert result.exit_code == 2 and "exactly one" in result.output
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(small), "--focus-at", "3",
                                 "-o", out])
    assert result.exit_code == 2 and "--focus-at" in result.output
    # a 16-bit PNG's levels given as the focus: the whole photo was blurred, exit 0
    _, depth_png = files
    for option, value, words in (("--focus-depth", "13107", "give 0.2"),
                                 ("--focus-range", "0,13107", "give 0,0.2")):
        result = runner.invoke(app, ["refocus", str(photo), "-d", str(depth_png), option,
                                     value, "-o", out, "--overwrite"])
        assert result.exit_code == 2, result.output
        assert words in " ".join(result.output.split())
    # a .npy map keeps its own units: any value is a depth
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(small), "--focus-depth",
                                 "13107", "--resize-depth", "-o", out, "--overwrite"])
    assert result.exit_code == 0, result.output


def test_cli_refocus_rgba_and_16bit_inputs(tmp_path, square_scene):
    img, depth, fg = square_scene
    depth_npy = tmp_path / "depth.npy"
    np.save(depth_npy, depth)
    rgba = np.dstack([(img * 255).round().astype(np.uint8), np.full(depth.shape, 255, np.uint8)])
    rgba_path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(rgba_path)
    gray16_path = tmp_path / "gray16.png"
    Image.fromarray((img.mean(axis=2) * 65535).round().astype(np.uint16)).save(gray16_path)
    for src in (rgba_path, gray16_path):
        out = tmp_path / f"out_{src.stem}.png"
        result = CliRunner().invoke(app, ["refocus", str(src), "-d", str(depth_npy),
                                          "--focus-depth", "0.2", "-o", str(out)])
        assert result.exit_code == 0, result.output
        with Image.open(out) as written:
            pixels = np.asarray(written.convert("RGB"))
        # opaque RGBA: the sharp subject comes back exactly
        if src == rgba_path:
            assert np.array_equal(pixels[fg], rgba[:, :, :3][fg])


def test_defocused_pale_areas_keep_their_colour_while_highlights_still_bloom():
    pale = [(250, 235, 220), (240, 250, 255), (255, 220, 180), (246, 230, 200), (252, 252, 252)]
    img = np.zeros((60, 5 * 40, 3), np.float32)
    for i, colour in enumerate(pale):
        img[:, 40 * i : 40 * (i + 1)] = np.array(colour, np.float32) / 255
    depth = np.ones(img.shape[:2], np.float32)
    out = refocus(img, depth, focus_depth=0.0, aperture=6)  # everything defocused, default boost
    centres = out[25:35, [20 + 40 * i for i in range(5)]]
    np.testing.assert_allclose(centres, np.broadcast_to(img[25:35, [20 + 40 * i for i in range(5)]],
                                                        centres.shape), atol=2e-3)
    spot = np.full((48, 48, 3), 0.05, np.float32)
    spot[24, 24] = 1.0
    depth = np.ones((48, 48), np.float32)
    plain = refocus(spot, depth, focus_depth=0.0, aperture=4, highlight_gain=0)
    boosted = refocus(spot, depth, focus_depth=0.0, aperture=4)
    assert boosted[24, 24].mean() > plain[24, 24].mean() + 0.02
