"""Re-audit of the resolved issues 3 (colour, edges), 4 (editing) and 6 (training
blocks): what a demanding user ran on today's code and found wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from boda.cli import app
from boda.edges import hog_image

runner = CliRunner()


# --- issue 3: edges ----------------------------------------------------------------------


@pytest.mark.parametrize("cell", [(1, 1), (1, 8), (8, 1)])
def test_hog_picture_of_cells_too_small_for_a_line_draws_dots(cell):
    # A 1 px side left a line radius of -1: segments ran past the image border
    # (IndexError; scikit-image's visualize=True fails the same way).
    image = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    picture = hog_image(image, 9, cell)
    assert picture.shape == (24, 24)
    assert np.isfinite(picture).all() and picture.max() == pytest.approx(1.0)


def test_edges_cli_hog_takes_the_one_pixel_cell_it_offers(tmp_path):
    # "--cell 8 px is larger than the image (1 x 1 px): give at most 1", then
    # "--cell 1" ended in a traceback.
    photo = tmp_path / "one.png"
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(photo)
    out = tmp_path / "hog.png"
    args = ["edges", str(photo), "-m", "hog", "--cell", "1", "-o", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cells"] == [1, 1]
    assert out.exists()


# --- issue 3: colour differences on the command line -------------------------------------


def test_color_diff_takes_two_colours_as_six_numbers():
    # Sharma et al.'s first pair written L1 a1 b1 L2 a2 b2, as `color convert` takes
    # components: was "Got unexpected extra argument(s)".
    args = ["color", "diff", "50", "2.6772", "-79.7751", "50", "0", "-82.7485", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["delta_e"] == pytest.approx(2.0425, abs=1e-4)
    assert report["color1"] == [50.0, 2.6772, -79.7751]
    assert report["color2"] == [50.0, 0.0, -82.7485]


def test_color_diff_with_a_wrong_count_of_numbers_says_how_to_give_two_colours():
    result = runner.invoke(app, ["color", "diff", "50", "2.6772", "-79.7751", "50", "0"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "two colours" in message and "got 5" in message


# --- issue 4: options an edit method does not read ---------------------------------------


@pytest.fixture
def edit_inputs(tmp_path):
    rng = np.random.default_rng(1)
    photo = tmp_path / "photo.png"
    Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(photo)
    hole = np.zeros((24, 32), np.uint8)
    hole[8:14, 10:18] = 255
    mask = tmp_path / "hole.png"
    Image.fromarray(hole).save(mask)
    depth = tmp_path / "depth.png"
    Image.fromarray(np.where(hole > 0, 50, 200).astype(np.uint8)).save(depth)
    return photo, mask, depth


@pytest.mark.parametrize(
    ("method", "option", "value"),
    [
        ("biharmonic", "--radius", "3"),
        ("exemplar", "--radius", "3"),
        ("telea", "--patch-size", "7"),
        ("ns", "--search-radius", "0"),
    ],
)
def test_inpaint_cli_refuses_an_option_the_method_does_not_read(
    edit_inputs, tmp_path, method, option, value
):
    # The library refuses these (inpaint(..., "biharmonic", radius=3)); the CLI
    # dropped them silently, so "-r 3" seemed to matter.
    photo, mask, _ = edit_inputs
    out = tmp_path / "out.png"
    args = ["inpaint", str(photo), "-m", str(mask), "--method", method, option, value]
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert option in message and method in message
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--coc-model", "thin_lens"), ("--highlight-gain", "5")]
)
def test_refocus_cli_threshold_refuses_lens_only_options(edit_inputs, tmp_path, option, value):
    photo, _, depth = edit_inputs
    out = tmp_path / "out.png"
    args = ["refocus", str(photo), "-d", str(depth), "--focus-depth", "0.2",
            "--method", "threshold", option, value, "-o", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert option in message and "threshold" in message
    assert not out.exists()


def test_edit_cli_options_that_apply_still_work(edit_inputs, tmp_path):
    photo, mask, depth = edit_inputs
    inpaint = ["inpaint", str(photo), "-m", str(mask), "--method", "ns", "-r", "3"]
    filled = runner.invoke(app, [*inpaint, "-o", str(tmp_path / "i.png"), "--quiet"])
    assert filled.exit_code == 0, filled.output
    refocus = ["refocus", str(photo), "-d", str(depth), "--focus-depth", "0.2"]
    threshold_with_kernel = ["--method", "threshold", "--kernel", "hexagon"]
    refocused = runner.invoke(
        app, [*refocus, *threshold_with_kernel, "-o", str(tmp_path / "r.png"), "--quiet"]
    )
    assert refocused.exit_code == 0, refocused.output
