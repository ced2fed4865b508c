"""Editing, colour and detection tools with inputs a user gets wrong.

Each case here once overwrote a user's file, gave a wrong number silently or
ended in a raw traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import boda.color as bc
from boda.augment import random_resized_crop_params
from boda.cli import app
from boda.detect import encode_boxes, match_anchors, nms
from boda.edit import inpaint, random_irregular_mask, refocus
from boda.errors import InvalidParameterError
from boda.io import read_image, write_image

runner = CliRunner()


@pytest.fixture
def photo_and_masks(tmp_path, kodak_paths) -> dict[str, Path]:
    photo = tmp_path / "photo.png"
    shutil.copy(kodak_paths[0], photo)
    h, w = read_image(photo).shape[:2]
    hole = np.zeros((h, w), np.float32)
    hole[100:140, 100:160] = 1
    write_image(tmp_path / "hole.png", hole)
    depth = np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))
    write_image(tmp_path / "depth.png", depth)
    return {"photo": photo, "hole": tmp_path / "hole.png", "depth": tmp_path / "depth.png"}


def _commands(f: dict[str, Path], output: Path) -> list[list[str]]:
    photo, hole, depth = str(f["photo"]), str(f["hole"]), str(f["depth"])
    return [
        ["cutout", photo, "--rect", "50,50,300,300", "--iterations", "1", "-o", str(output)],
        ["cutout", photo, "--mask", hole, "--iterations", "1", "-o", str(output)],
        ["refocus", photo, "-d", depth, "--focus-depth", "0.2", "-o", str(output)],
        ["inpaint", photo, "-m", hole, "-o", str(output)],
        ["color", "chromaticity", photo, "-o", str(output)],
        ["edges", photo, "-o", str(output)],
        ["explain", photo, "-o", str(output)],
    ]


@pytest.mark.parametrize("which", ["photo", "hole", "depth"])
def test_no_command_writes_over_one_of_its_inputs(photo_and_masks, which):
    before = {name: path.read_bytes() for name, path in photo_and_masks.items()}
    target = photo_and_masks[which]
    for command in _commands(photo_and_masks, target):
        if str(target) not in command[1:-2]:
            continue  # this command does not read that file
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "refusing to overwrite the input" in result.output, command
    assert {name: path.read_bytes() for name, path in photo_and_masks.items()} == before


def test_chromaticity_checks_every_output_before_writing_any(photo_and_masks, tmp_path):
    svg, bad = tmp_path / "new" / "d.svg", tmp_path / "h.bmp"
    result = runner.invoke(
        app, ["color", "chromaticity", str(photo_and_masks["photo"]), "-o", str(svg),
              "--hue-hist", str(bad)],
    )
    assert result.exit_code == 2 and ".png or .svg" in result.output
    assert not svg.exists()
    result = runner.invoke(app, ["color", "chromaticity", str(photo_and_masks["photo"]),
                                 "-o", str(svg)])
    assert result.exit_code == 0, result.output  # a missing folder is created
    assert svg.read_bytes().lstrip().startswith(b"<?xml")


def test_colour_files_are_read_line_by_line(tmp_path):
    def convert(text: str, *args: str):
        path = tmp_path / "colours.csv"
        path.write_bytes(text.encode("utf-8"))
        return runner.invoke(app, ["color", "convert", "--file", str(path), "--json", *args])

    result = convert("\ufeffr;g;b\n0.2;0.4;0.6\n#3366cc\n")  # BOM, header, ';' and hex
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.output)["values"],
                               [[0.2, 0.4, 0.6], [0.2, 0.4, 0.8]])  # fmt: skip
    result = convert("0.1 0.2\n0.3 0.4 0.5 0.6\n")  # 2 + 4 numbers are not two colours
    assert result.exit_code == 2 and "line 1" in result.output
    result = convert("0.2,0.4,0.6x\n0.1,0.2,0.3\n")  # a typo is not a header
    assert result.exit_code == 2 and "0.6x" in result.output


def test_hex_colours_are_srgb_and_0_255_values_are_caught():
    result = runner.invoke(app, ["color", "convert", "--from", "lab", "#3366cc"])
    assert result.exit_code == 2 and "--from srgb" in result.output
    result = runner.invoke(app, ["color", "diff", "#ff0000", "#fe0000"])
    assert result.exit_code == 2 and "--from srgb" in result.output
    result = runner.invoke(app, ["color", "diff", "#ff0000", "#fe0000", "--from", "srgb",
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0 and json.loads(result.output)["delta_e"] > 0.2
    result = runner.invoke(app, ["color", "convert", "255", "0", "0"])
    assert result.exit_code == 2 and "0-255" in result.output
    result = runner.invoke(app, ["color", "convert", "--json", "--from", "lab", "--to", "srgb",
                                 "--", "50", "-20", "30"])  # fmt: skip
    assert result.exit_code == 0, result.output  # Lab values above 1 are fine


def test_an_illuminant_can_be_given_as_xy():
    by_name = runner.invoke(app, ["color", "convert", "--illuminant", "D50", "--json",
                                  "0.2", "0.4", "0.6"])  # fmt: skip
    by_xy = runner.invoke(app, ["color", "convert", "--illuminant", "0.3457,0.3585", "--json",
                                "0.2", "0.4", "0.6"])  # fmt: skip
    assert by_xy.exit_code == 0, by_xy.output
    np.testing.assert_allclose(json.loads(by_xy.output)["converted"],
                               json.loads(by_name.output)["converted"], atol=0.05)  # fmt: skip


def test_one_dominant_colour_is_the_mean_not_a_random_pixel(kodak_rgb):
    (rgb, fraction), = bc.dominant_colors(kodak_rgb, k=1, seed=0, max_samples=10**7)
    mean_lab = bc.srgb_to_lab(kodak_rgb.reshape(-1, 3).astype(np.float64)).mean(axis=0)
    expected = bc.lab_to_srgb(mean_lab, clip=True)
    np.testing.assert_allclose(rgb, expected, atol=2e-3)
    assert fraction == 1.0


def test_ciede2000_keeps_float32():
    lab = np.random.default_rng(0).random((6, 3)).astype(np.float32) * 60
    for method in ("cie1976", "cie1994", "ciede2000"):
        out = bc.delta_e(lab, lab[::-1], method=method)
        assert out.dtype == np.float32, method
        np.testing.assert_allclose(out, bc.delta_e(lab.astype(np.float64), lab[::-1].astype(
            np.float64), method=method), rtol=1e-4)  # fmt: skip


def test_refocus_refuses_a_focus_that_is_not_finite(kodak_rgb):
    depth = np.tile(np.linspace(0, 1, kodak_rgb.shape[1], dtype=np.float32),
                    (kodak_rgb.shape[0], 1))  # fmt: skip
    for kwargs in ({"focus_depth": np.nan}, {"focus_depth": np.inf},
                   {"focus_range": (np.nan, 0.5)}):  # fmt: skip
        for method in ("lens", "threshold"):
            with pytest.raises(InvalidParameterError, match="finite"):
                refocus(kodak_rgb, depth, method=method, **kwargs)


def test_inpaint_names_options_a_method_does_not_take(kodak_rgb):
    hole = np.zeros(kodak_rgb.shape[:2], bool)
    hole[10:20, 10:20] = True
    with pytest.raises(InvalidParameterError, match="no option 'radius'"):
        inpaint(kodak_rgb, hole, method="biharmonic", radius=3)
    with pytest.raises(InvalidParameterError, match="larger than"):
        inpaint(kodak_rgb, hole, method="exemplar", patch_size=999)
    with pytest.raises(InvalidParameterError, match="longer side"):
        inpaint(kodak_rgb, hole, method="telea", radius=10_000)


def test_mask_kinds_and_crop_ranges_are_checked():
    one_kind = random_irregular_mask((64, 64), 0.2, kinds="lines", seed=0)
    assert one_kind.any()
    with pytest.raises(InvalidParameterError, match="low <= high"):
        random_resized_crop_params((32, 32), scale=(0.9, 0.1))


def test_nms_refuses_nan_scores_and_matching_handles_no_anchors():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 15, 15]])
    with pytest.raises(InvalidParameterError, match="NaN"):
        nms(boxes, torch.tensor([0.9, float("nan"), 0.7]), 0.5)
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
    empty = match_anchors(torch.zeros((0, 4)), torch.tensor([[0.0, 0, 10, 10]]))
    assert empty.shape == (0,)
    with pytest.raises(InvalidParameterError, match="positive width"):
        encode_boxes(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[5.0, 5, 5, 9]]))


def test_colour_measures_of_one_pixel_and_out_of_range_values():
    (rgb, fraction), = bc.dominant_colors(np.array([[[1.0, 0.0, 0.0]]]))
    assert fraction == 1.0 and np.allclose(rgb, (1, 0, 0), atol=1e-4)
    assert bc.color_summary(np.array([[[0.2, 0.4, 0.6]]])).dominant_colors
    over = np.array([[[2.0, 0, 0]], [[0, 0, 0]]])
    assert bc.colorfulness(over) == pytest.approx(bc.colorfulness(np.clip(over, 0, 1)))
    assert bc.lightness_stats(np.full((2, 2), 2.0)) == pytest.approx((100.0, 0.0))


def test_models_check_sizes_and_count_parameters_on_meta():
    from boda import models

    for bad in (0, -1, "ten", 2.5):
        with pytest.raises(InvalidParameterError, match="num_classes"):
            models.create("resnet18", num_classes=bad)
    with torch.device("meta"):
        net = models.create("resnet18", mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    assert {b.device.type for b in net.buffers()} == {"meta"}
    assert sum(p.numel() for p in net.parameters()) == 11_689_512


def test_cutout_refuses_a_transparent_mask_and_deeplab_names_its_backbone(photo_and_masks,
                                                                          tmp_path):
    from PIL import Image

    from boda import models

    h, w = read_image(photo_and_masks["photo"]).shape[:2]
    strokes = np.zeros((h, w, 4), np.uint8)
    strokes[100:140, 100:160] = (255, 255, 255, 255)  # white strokes on a transparent layer
    Image.fromarray(strokes, "RGBA").save(tmp_path / "strokes.png")
    result = runner.invoke(app, ["cutout", str(photo_and_masks["photo"]), "--mask",
                                 str(tmp_path / "strokes.png"), "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "transparent pixels" in result.output
    with pytest.raises(InvalidParameterError, match="ResNet backbone"):
        models.create("deeplabv3plus", backbone="vgg16")


def test_cutout_refuses_a_photo_that_would_not_fit_in_free_memory(photo_and_masks, tmp_path,
                                                                  monkeypatch):
    import boda.cli.cutout_cmd as cutout_cmd

    out = tmp_path / "cut.png"
    monkeypatch.setattr(cutout_cmd, "_available_memory", lambda: 50 * 2**20)  # 50 MB free
    result = runner.invoke(app, ["cutout", str(photo_and_masks["photo"]), "--rect",
                                 "50,50,300,300", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 2 and "--max-side" in result.output and not out.exists()
    side = int(result.output.split("--max-side ")[1].split()[0])
    result = runner.invoke(app, ["cutout", str(photo_and_masks["photo"]), "--rect",
                                 "50,50,300,300", "--max-side", str(side), "--iterations", "1",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output  # the suggested size fits


@pytest.mark.parametrize(
    "args",
    [
        ["cutout", "{img}", "--rect", "1,1,5,5"],
        ["inpaint", "{img}", "--mask", "{img}"],
        ["refocus", "{img}", "--depth", "{img}", "--focus-depth", "0.5"],
        ["edges", "{img}"],
        ["explain", "{img}", "--method", "saliency"],
    ],
)
def test_a_bad_output_path_fails_before_any_work(args, tmp_path):
    # The input does not even exist: the output is checked first, in a moment.
    img = str(tmp_path / "not-read.png")
    argv = [a.format(img=img) for a in args]
    for out, reason in ((tmp_path / "out.xyz", "unknown image file extension"),
                        (tmp_path, "it is a folder"),
                        (tmp_path / "no_extension", "no image file extension")):
        result = runner.invoke(app, [*argv, "-o", str(out)])
        assert result.exit_code == 2 and reason in result.output, (args, out, result.output)
    if args[0] == "explain":
        result = runner.invoke(app, [*argv, "--alpha", "2", "-o", str(tmp_path / "m.png")])
        assert result.exit_code == 2 and "--alpha" in result.output


def test_cutout_and_exemplar_inpaint_show_a_progress_bar(tmp_path, monkeypatch):
    import boda.cli._common as common
    import boda.cli.cutout_cmd
    import boda.cli.edit_cmd

    shown: list[str] = []

    def spy(label, *, enabled=True):
        shown.append(f"{label}:{enabled}")
        return common.progress_bar(label, enabled=enabled)

    for module in (boda.cli.cutout_cmd, boda.cli.edit_cmd):
        monkeypatch.setattr(module, "progress_bar", spy)
    photo = tmp_path / "p.png"
    write_image(photo, np.random.default_rng(0).random((30, 40, 3)).astype(np.float32))
    hole = tmp_path / "h.png"
    mask = np.zeros((30, 40), np.float32)
    mask[10:18, 12:22] = 1.0
    write_image(hole, mask)
    out = str(tmp_path / "o.png")
    cut = ["cutout", str(photo), "--rect", "5,5,25,20", "-o", out]
    assert runner.invoke(app, cut).exit_code == 0
    args = ["inpaint", str(photo), "-m", str(hole), "--method", "exemplar", "-o", out, "--json",
            "--overwrite"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    assert shown == ["cutting out:True", "inpainting:False"]  # none under --json


def test_maps_with_transparent_pixels_are_refused_and_opaque_rgba_ones_read(photo_and_masks,
                                                                           tmp_path):
    """White strokes on a transparent layer used to read as 'fill everything' (inpaint)
    or depth 1 (refocus); an RGBA map opaque throughout (what editors export) is gray."""
    from PIL import Image

    photo = str(photo_and_masks["photo"])
    h, w = read_image(photo).shape[:2]
    strokes = np.zeros((h, w, 4), np.uint8)
    strokes[100:140, 100:160] = 255  # opaque white strokes; the rest transparent
    Image.fromarray(strokes, "RGBA").save(tmp_path / "strokes.png")
    opaque = strokes.copy()
    opaque[..., 3] = 255  # the same mask, opaque: black with a white hole
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    for args in (["inpaint", photo, "--mask"], ["cutout", photo, "--mask"],
                 ["refocus", photo, "--focus-depth", "0.5", "--depth"]):
        out = tmp_path / f"{args[0]}.png"
        result = runner.invoke(app, [*args, str(tmp_path / "strokes.png"), "-o", str(out)])
        assert result.exit_code == 2, result.output
        assert "transparent pixels" in " ".join(result.output.split()) and not out.exists()
    result = runner.invoke(app, ["inpaint", photo, "--mask", str(tmp_path / "opaque.png"),
                                 "-o", str(tmp_path / "filled.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hole_fraction"] == pytest.approx(40 * 60 / (h * w))
    with pytest.raises(InvalidParameterError, match="transparent"):
        from boda.edit import read_depth

        read_depth(tmp_path / "strokes.png")


@pytest.mark.parametrize("white", [(0.3, 0.0), (1.2, 0.5), (-0.3, 0.3), (float("nan"), 0.3),
                                   (0.95, -1.0, 1.0)])
def test_an_impossible_white_point_is_refused(white):
    with pytest.raises(InvalidParameterError, match="white point"):
        bc.whitepoint(white)
    if len(white) == 2 and white[1] == 0.0:
        text = ",".join(map(str, white))
        result = runner.invoke(app, ["color", "convert", "--illuminant", text, "0.5", "0.5",
                                     "0.5"])
        assert result.exit_code == 2 and "not a colour" in " ".join(result.output.split())


@pytest.fixture
def small_photo(tmp_path) -> Path:
    """A 40x30 photo with a bright square on a dark ground: GrabCut cuts it in a moment."""
    pixels = np.full((30, 40, 3), 0.15, np.float32)
    pixels[8:22, 12:28] = (0.9, 0.6, 0.2)
    path = tmp_path / "small.png"
    write_image(path, pixels)
    return path


@pytest.mark.parametrize(
    ("suffix", "keeps_alpha"),
    [(".png", True), (".tif", True), (".webp", True), (".tga", True), (".bmp", False),
     (".ppm", False), (".jpg", False)],
)  # fmt: skip
def test_a_cutout_keeps_its_transparency_or_is_laid_over_white_with_a_note(
    small_photo, tmp_path, suffix, keeps_alpha
):
    """A .bmp or .ppm cut-out used to be the photo itself: Pillow dropped the alpha."""
    from PIL import Image

    out = tmp_path / f"cut{suffix}"
    result = runner.invoke(app, ["cutout", str(small_photo), "--rect", "8,4,24,22",
                                 "--iterations", "2", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with Image.open(out) as written:
        rgba = np.asarray(written.convert("RGBA"))
    corner = rgba[0, 0]  # background, outside the rect
    if keeps_alpha:
        assert corner[3] == 0 and "note" not in result.stderr
    else:
        assert corner[3] == 255 and corner[:3].min() > 240  # over white, not the dark ground
        note = " ".join(result.stderr.split())
        assert f"{suffix} holds no transparency" in note and ".png" in note


def test_write_image_keeps_alpha_where_the_format_can_and_says_which():
    from boda.io import can_write_alpha

    assert [can_write_alpha(f"a.{e}") for e in ("png", "TIFF", "webp", "gif", "ico")] == [
        True, True, True, True, True
    ]  # fmt: skip
    assert [can_write_alpha(f"a.{e}") for e in ("jpg", "bmp", "ppm", "pgm", "xyz")] == [
        False, False, False, False, False
    ]  # fmt: skip


def test_an_ico_keeps_its_size_or_is_refused_naming_the_limit(small_photo, tmp_path):
    """Pillow shrank every ICO to a standard icon size (a 40x30 image to 16x12, a 300 px
    one to 256) without a word."""
    from PIL import Image

    icon = tmp_path / "small.ico"
    write_image(icon, read_image(small_photo))
    with Image.open(icon) as written:
        assert written.size == (40, 30)
    with pytest.raises(InvalidParameterError, match=r"at most 256x256 .* 300x257; write a \.png"):
        write_image(tmp_path / "big.ico", np.zeros((257, 300, 3), np.float32))
    assert not (tmp_path / "big.ico").exists()


def test_an_icns_is_refused_unless_the_image_is_1024_square(tmp_path):
    """Pillow wrote every ICNS at 1024x1024, stretching a 200x100 image to a square
    and enlarging a 64x64 one, without a word."""
    from PIL import Image

    for shape, word in (((100, 200, 3), "stretched"), ((64, 64), "resized")):
        out = tmp_path / f"{shape[0]}x{shape[1]}.icns"
        size = f"{shape[1]}x{shape[0]}"
        wanted = rf"square 1024x1024 .* is {size} \(it would be {word}\); write a \.png"
        with pytest.raises(InvalidParameterError, match=wanted):
            write_image(out, np.zeros(shape, np.float32))
        assert not out.exists()
    icon = write_image(tmp_path / "ok.icns", np.full((1024, 1024, 3), 0.25, np.float32))
    with Image.open(icon) as written:
        assert written.size == (1024, 1024)


def test_a_cutout_too_large_for_an_ico_is_refused(photo_and_masks, tmp_path):
    out = tmp_path / "cut.ico"
    result = runner.invoke(app, ["cutout", str(photo_and_masks["photo"]), "--rect",
                                 "50,50,300,300", "--iterations", "1", "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert "256x256" in result.output and ".png" in result.output


def test_the_pixel_limit_suggests_max_side_only_where_the_command_has_it(tmp_path):
    """The reader suggested --max-side for a JPEG over the limit on every command,
    inpaint and refocus too, which have no such option."""
    photo = tmp_path / "photo.jpg"
    write_image(photo, np.full((40, 60, 3), 0.5, np.float32))
    hole = tmp_path / "hole.png"
    write_image(hole, np.pad(np.ones((10, 10), np.float32), ((15, 15), (25, 25))))
    limit = ["--max-pixels", "1000"]  # 60 x 40 = 2400 pixels
    cut = runner.invoke(app, ["cutout", str(photo), "--rect", "5,5,40,30", *limit,
                              "-o", str(tmp_path / "c.png")])  # fmt: skip
    assert cut.exit_code == 2, cut.output
    assert "--max-side" in cut.output and "--max-pixels none" in cut.output
    filled = runner.invoke(app, ["inpaint", str(photo), "--mask", str(hole), *limit,
                                 "-o", str(tmp_path / "i.png")])  # fmt: skip
    assert filled.exit_code == 2, filled.output
    assert "exceeds the limit of 1000" in filled.output and "--max-pixels none" in filled.output
    assert "max-side" not in filled.output and "max_side" not in filled.output


def test_a_reduced_jpeg_read_over_the_limit_names_only_the_commands_options(
    kodak_paths, tmp_path
):
    """After a reduced JPEG decode the reader advised "a smaller max_side", Python
    wording, even on `boda quality`, which reads at 640 px by itself and has no
    --max-side."""
    photo = tmp_path / "big.jpg"
    write_image(photo, np.tile(read_image(kodak_paths[0]), (3, 3, 1)))  # 1500x1500
    limit = ["--max-pixels", "1000"]
    edges = runner.invoke(app, ["edges", str(photo), "--max-side", "200", *limit,
                                "-o", str(tmp_path / "e.png")])  # fmt: skip
    text = " ".join(edges.output.split())
    assert edges.exit_code == 2, text
    assert "1500x1500 JPEG decodes to 375x375 = 140625 pixels at this max_side" in text
    assert "a smaller max_side (--max-side) decodes a JPEG smaller" in text, text
    assert "(--max-pixels none)" in text
    quality = runner.invoke(app, ["quality", str(photo), *limit])
    text = " ".join(quality.output.split())
    assert quality.exit_code == 2, text
    assert "1500x1500 JPEG decodes to 750x750 = 562500 pixels as this command reads it" in text
    assert "(decompression-bomb guard); pass max_pixels=None (--max-pixels none)" in text
    assert "max-side" not in text and "max_side" not in text, text
    png = write_image(tmp_path / "big.png", np.zeros((40, 40), np.float32))
    text = " ".join(runner.invoke(app, ["quality", str(png), *limit]).output.split())
    assert "guard); pass max_pixels=None" in text and "max_side" not in text, text


def test_a_map_of_another_size_is_a_usage_error_in_every_edit(photo_and_masks, tmp_path):
    """cutout exited 2 for a --mask of the wrong size, inpaint and refocus 1."""
    photo = str(photo_and_masks["photo"])
    small = tmp_path / "small.png"
    write_image(small, np.zeros((20, 30), np.float32))
    for args, advice in ((["cutout", photo, "--mask"], "trimap"),
                         (["inpaint", photo, "--mask"], "resize the mask"),
                         (["refocus", photo, "--focus-depth", "0.5", "--depth"], "--resize-depth")):
        out = tmp_path / f"{args[0]}.png"
        result = runner.invoke(app, [*args, str(small), "-o", str(out)])
        assert result.exit_code == 2, (args, result.output)
        text = " ".join(result.output.split())
        assert "is 30x20 but the image is 500x500" in text and advice in text, text
        assert not out.exists()


def test_cutout_help_and_docs_give_the_measured_memory_per_pixel():
    import boda.cli.cutout_cmd as cutout_cmd

    whole = cutout_cmd._BYTES_PER_PIXEL + cutout_cmd._BYTES_PER_BOX_PIXEL
    kb = f"{whole / 1000:g} kB"
    help_text = " ".join(runner.invoke(app, ["cutout", "--help"]).output.split())
    assert f"about {kb} of memory per pixel" in help_text
    docs = (Path(__file__).parents[1] / "docs" / "grabcut.md").read_text(encoding="utf-8")
    memory = " ".join(docs.split("Memory:")[1].split("## ")[0].split())
    assert f"about {kb} per pixel" in memory
    assert f"{cutout_cmd._BYTES_PER_PIXEL / 1000:g} kB per pixel of the photo plus " \
        f"{cutout_cmd._BYTES_PER_BOX_PIXEL / 1000:g} kB per pixel inside" in memory


def test_the_cutout_memory_check_counts_the_box(monkeypatch):
    import boda.cli.cutout_cmd as cutout_cmd
    from boda.errors import InvalidParameterError

    # 12 MP with 8 GB free: a box over the whole photo (10.1 GB) is refused, naming a
    # --max-side that fits; one around a small object (a tenth of the photo) is not.
    monkeypatch.setattr(cutout_cmd, "_available_memory", lambda: 8 * 2**30)
    assert cutout_cmd._box_fraction((0, 0, 4000, 3000), 4000, 3000) == 1.0
    assert cutout_cmd._box_fraction((-50, 2900, 400, 300), 4000, 3000) == 350 * 100 / 12e6
    with pytest.raises(InvalidParameterError, match=r"needs about 10\.1 GB.*--max-side 2763"):
        cutout_cmd._check_memory(12_000_000, 1.0)
    cutout_cmd._check_memory(12_000_000, cutout_cmd._box_fraction((0, 0, 1000, 1200), 4000, 3000))
    with pytest.raises(InvalidParameterError):  # no box (a --mask alone): the whole photo
        cutout_cmd._check_memory(12_000_000)
