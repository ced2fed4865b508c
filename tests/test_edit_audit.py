"""Audit of the photo edits (cut-out, refocus, inpainting) as a user meets them.

Each test once failed: a cut-out that made a transparent input opaque, a raw
OverflowError, a mask of the wrong size taken silently, a misleading message.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from boda.cli import app
from boda.edit import refocus
from boda.errors import InvalidParameterError
from boda.segment import BGD, PR_FGD, grabcut

runner = CliRunner()


def _sticker(tmp_path):
    """An RGBA PNG: a white disc on an opaque blue-gray ground, with a transparent
    hole beside the disc inside the box; under transparency the file stores the
    ground's colour, so over white it reads as white, the disc's colour."""
    rng = np.random.default_rng(0)
    h, w = 120, 160
    rgb = np.full((h, w, 3), (40, 60, 90), np.uint8) + rng.integers(0, 20, (h, w, 3), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 60) ** 2 + (xx - 70) ** 2 < 30**2
    rgb[disc] = 255
    alpha = np.full((h, w), 255, np.uint8)
    alpha[15:105, 105:150] = 0
    path = tmp_path / "sticker.png"
    Image.fromarray(np.dstack([rgb, alpha])).save(path)
    return path, disc, alpha


def test_cutout_keeps_the_transparent_pixels_of_an_rgba_photo_transparent(tmp_path):
    # The library takes RGBA (transparent = fixed background, alpha multiplied in,
    # docs/grabcut.md); the command composited the file over white first, so the
    # transparent hole read as white like the disc and came out opaque white.
    path, disc, alpha = _sticker(tmp_path)
    out = tmp_path / "cut.png"
    result = runner.invoke(app, ["cutout", str(path), "--rect", "20,10,135,100", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cut = np.asarray(Image.open(out))
    assert cut.shape[2] == 4
    assert cut[alpha == 0, 3].max() == 0  # transparent in, transparent out
    assert cut[disc, 3].mean() > 250  # the object is still cut out


def test_cutout_of_a_half_transparent_photo_keeps_its_colour_and_alpha(tmp_path):
    # A semi-transparent object: the cut-out's colour is the stored one (not
    # washed towards white) and its alpha the input's (times GrabCut's).
    h, w = 80, 100
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = (30, 30, 30)
    rgba[..., 3] = 255
    rgba[25:55, 30:70] = (200, 40, 40, 128)
    path = tmp_path / "half.png"
    Image.fromarray(rgba).save(path)
    out = tmp_path / "cut.png"
    result = runner.invoke(
        app, ["cutout", str(path), "--rect", "20,15,60,50", "--hard", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cut = np.asarray(Image.open(out)).astype(int)
    inner = cut[30:50, 35:65]
    assert np.abs(inner[..., :3] - (200, 40, 40)).max() <= 2
    assert np.abs(inner[..., 3] - 128).max() <= 2


@pytest.mark.parametrize("stored", [(0.0, 0.0, 0.0), (0.9, 0.1, 0.1)])
def test_transparent_pixels_teach_the_background_model_no_colour(stored):
    # Under full transparency a file stores any colour: black (0, 0, 0, 0) most
    # often, or the object's own. As fixed background those pixels taught the
    # background model that colour alone, so the opaque gray ground inside the box
    # was cut out with the object (the whole box came out).
    rng = np.random.default_rng(1)
    h, w = 80, 100
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = 0.3 + 0.05 * rng.random((h, w, 3))
    rgba[25:55, 25:55, :3] = (0.9, 0.1, 0.1) + 0.05 * rng.random((30, 30, 3))
    clear = np.ones((h, w), bool)
    clear[15:65, 15:90] = False
    clear[:4] = False  # a strip of opaque ground outside the box
    rgba[clear] = (*stored, 0.0)
    res = grabcut(rgba, rect=(15, 15, 75, 50))
    obj = np.zeros((h, w), bool)
    obj[25:55, 25:55] = True
    assert np.array_equal(res.mask, obj)
    assert res.cutout()[clear, 3].max() == 0


def test_a_whole_image_box_is_refused_only_when_nothing_gives_background():
    img = np.zeros((60, 80, 3), np.float32)
    img[20:40, 25:55] = (0.9, 0.3, 0.1)
    with pytest.raises(InvalidParameterError, match="covers the whole"):
        grabcut(img, rect=(0, 0, 80, 60))
    # a trimap with background: the box adds nothing and is no error ("pass a trimap
    # mask" was said to a caller who had passed one)
    trimap = np.full((60, 80), PR_FGD, np.uint8)
    trimap[:3] = BGD
    assert grabcut(img, rect=(0, 0, 80, 60), mask=trimap).mask[30, 40]
    # only transparent background: no colour to learn from, said as such
    rgba = np.zeros((60, 80, 4), np.float32)
    rgba[20:40, 25:55] = (0.9, 0.3, 0.1, 1.0)
    with pytest.raises(InvalidParameterError, match="fully transparent"):
        grabcut(rgba, rect=(0, 0, 80, 60))


@pytest.mark.parametrize("rect", [
    (0, 0, float("inf"), 10), (float("-inf"), 0, 10, 10), (0, 0, 10**30, float("inf")),
])
def test_a_rect_with_an_infinity_is_a_boda_error(rect):
    img = np.zeros((40, 50, 3), np.float32)
    with pytest.raises(InvalidParameterError, match="rect"):
        grabcut(img, rect=rect)


def test_cutout_max_side_refuses_a_mask_of_another_size(tmp_path, kodak_paths):
    # Without --max-side a half-size trimap is refused; with it both were shrunk to
    # the same size and the mismatch went unnoticed.
    photo = tmp_path / "photo.png"
    Image.open(kodak_paths[0]).crop((0, 0, 500, 300)).save(photo)
    marks = np.full((150, 250), 128, np.uint8)
    marks[:5] = 0
    marks[60:80, 100:120] = 255
    Image.fromarray(marks).save(tmp_path / "half.png")
    out = tmp_path / "cut.png"
    result = runner.invoke(app, ["cutout", str(photo), "--mask", str(tmp_path / "half.png"),
                                 "--max-side", "100", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "250x150" in result.output and "500x300" in result.output
    assert not out.exists()


def test_cutout_max_side_judges_the_rect_in_the_originals_pixels(tmp_path, kodak_paths):
    # --rect is given in the original's pixels; an error about it must name those,
    # not the downscaled numbers the user never typed.
    photo = tmp_path / "photo.png"
    Image.open(kodak_paths[0]).crop((0, 0, 500, 300)).save(photo)
    out = tmp_path / "cut.png"
    result = runner.invoke(app, ["cutout", str(photo), "--rect", "600,400,50,50",
                                 "--max-side", "100", "-o", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "(600, 400, 50, 50)" in text and "500x300" in text
    # a box with a margin in the original keeps one after downscaling
    result = runner.invoke(app, ["cutout", str(photo), "--rect", "1,1,498,298",
                                 "--max-side", "100", "--iterations", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("option", [["--focus-depth", "nan"], ["--focus-range", "0.2,nan"],
                                    ["--focus-depth", "inf"]])
def test_refocus_names_a_focus_that_is_not_a_number(tmp_path, option):
    # "--focus-depth nan looks like the depth file's stored levels ... give nan"
    photo, depth = tmp_path / "p.png", tmp_path / "d.png"
    Image.fromarray(np.full((20, 30, 3), 100, np.uint8)).save(photo)
    Image.fromarray(np.full((20, 30), 100, np.uint8)).save(depth)
    out = tmp_path / "o.png"
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(depth), *option,
                                 "-o", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "stored levels" not in text
    assert "finite" in text and option[0] in text
    assert not out.exists()


@pytest.mark.parametrize("command", ["inpaint", "refocus", "cutout"])
def test_a_map_in_the_photos_stored_orientation_is_named_as_such(tmp_path, kodak_paths, command):
    # A phone photo stored sideways with EXIF Orientation 6 is edited upright; a mask
    # or depth map made from its stored pixels has the size turned: say so.
    upright = Image.open(kodak_paths[0]).crop((0, 0, 500, 300)).resize((100, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = tmp_path / "rot.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(photo, exif=exif.tobytes())
    stored = np.zeros((100, 60), np.uint8)  # the stored (sideways) size
    stored[40:60, 20:40] = 255
    Image.fromarray(stored).save(tmp_path / "map.png")
    out = tmp_path / "o.png"
    option = {"inpaint": ["-m"], "refocus": ["--focus-depth", "0.5", "-d"],
              "cutout": ["--mask"]}[command]
    result = runner.invoke(app, [command, str(photo), *option, str(tmp_path / "map.png"),
                                 "-o", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "EXIF" in text and "orientation" in text.lower()
    assert not out.exists()


@pytest.mark.parametrize("depth_range", [(1.0, float("inf")), ("a", 2.0), (1.0, 2.0, 3.0)])
def test_refocus_thin_lens_refuses_a_depth_range_that_is_not_two_finite_numbers(depth_range):
    # (1, inf) gave NaN radii and "cannot convert float NaN to integer"; strings and a
    # third value a raw ValueError.
    img = np.zeros((20, 30, 3), np.float32)
    depth = np.tile(np.linspace(0, 1, 30, dtype=np.float32), (20, 1))
    with pytest.raises(InvalidParameterError, match="depth_range"):
        refocus(img, depth, focus_depth=0.5, coc_model="thin_lens", depth_range=depth_range)


def test_refocus_resize_depth_does_not_stretch_a_sideways_map(tmp_path, kodak_paths):
    # --resize-depth bilinearly stretched a half-size map of the stored (sideways)
    # photo to the upright one: a wrong depth for every pixel, silently.
    upright = Image.open(kodak_paths[0]).crop((0, 0, 500, 300)).resize((100, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = tmp_path / "rot.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(photo, exif=exif.tobytes())
    Image.fromarray(np.zeros((50, 30), np.uint8)).save(tmp_path / "small.png")  # 30x50
    out = tmp_path / "o.png"
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(tmp_path / "small.png"),
                                 "--resize-depth", "--focus-depth", "0.5", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "EXIF orientation" in " ".join(result.output.split())
    # a half-size map of the upright photo is resized as before
    Image.fromarray(np.zeros((30, 50), np.uint8)).save(tmp_path / "good.png")
    result = runner.invoke(app, ["refocus", str(photo), "-d", str(tmp_path / "good.png"),
                                 "--resize-depth", "--focus-depth", "0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
