"""End-to-end tests of ``boda edges`` on a Kodak photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from boda.cli import app
from boda.edges import canny, edge_density, log_edges
from boda.io import read_image

runner = CliRunner()

METHODS = ["sobel", "prewitt", "scharr", "laplacian", "canny", "log", "hog", "orientation"]


@pytest.fixture(scope="module")
def photo(data_dir):
    return data_dir / "kodak" / "kodim23.png"


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_a_picture_and_json(photo, tmp_path, method):
    out = tmp_path / f"{method}.png"
    result = runner.invoke(
        app,
        ["edges", str(photo), "--method", method, "-o", str(out), "--json", "--max-side", "200"],
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["method"] == method and stats["output"] == str(out)
    assert (stats["width"], stats["height"]) == (200, 200)
    written = read_image(out)
    assert written.shape[:2] == (200, 200)
    assert written.max() > 0.5  # something bright was drawn
    assert 0 < stats["edge_density"] < 1


def test_canny_output_equals_the_library_call(photo, tmp_path):
    out = tmp_path / "c.png"
    args = ["edges", str(photo), "-o", str(out), "--sigma", "2", "--low", "0.05", "--high", "0.15"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    expected = canny(read_image(photo), 2.0, 0.05, 0.15)
    written = read_image(out, gray=True) > 0.5
    np.testing.assert_array_equal(written, expected)
    stats = json.loads(result.stdout)
    assert stats["edge_pixels"] == int(expected.sum())
    assert stats["edge_fraction"] == pytest.approx(expected.mean())
    assert stats["edge_density"] == pytest.approx(edge_density(read_image(photo)))


def test_quantiles_and_log_options(photo, tmp_path):
    q = runner.invoke(
        app,
        [
            "edges",
            str(photo),
            "-o",
            str(tmp_path / "q.png"),
            "--quantiles",
            "--low",
            "0.9",
            "--high",
            "0.97",
            "--json",
        ],
    )
    assert q.exit_code == 0, q.output
    frac = json.loads(q.stdout)["edge_fraction"]
    assert 0.005 < frac < 0.1  # at most the top 10 % of magnitudes can survive
    log = runner.invoke(
        app,
        [
            "edges",
            str(photo),
            "-m",
            "log",
            "--sigma",
            "3",
            "--threshold",
            "0.02",
            "-o",
            str(tmp_path / "l.png"),
            "--json",
        ],
    )
    assert log.exit_code == 0, log.output
    expected = log_edges(read_image(photo), 3.0, 0.02)
    assert json.loads(log.stdout)["edge_pixels"] == int(expected.sum())


def test_human_output_and_errors(photo, tmp_path):
    ok = runner.invoke(app, ["edges", str(photo), "-m", "sobel", "-o", str(tmp_path / "s.png")])
    assert ok.exit_code == 0 and "sobel" in ok.stdout
    bad = runner.invoke(
        app, ["edges", str(photo), "-o", str(tmp_path / "x.png"), "--low", "0.5", "--high", "0.1"]
    )
    assert bad.exit_code == 2 and "must not exceed" in bad.output
    missing = runner.invoke(
        app, ["edges", str(tmp_path / "nope.png"), "-o", str(tmp_path / "y.png")]
    )
    assert missing.exit_code == 2  # a missing input is a usage error
    assert runner.invoke(app, ["edges", str(photo), "-m", "roberts", "-o", "z.png"]).exit_code == 2
    lap = runner.invoke(
        app,
        [
            "edges",
            str(photo),
            "-m",
            "laplacian",
            "--neighbours",
            "6",
            "-o",
            str(tmp_path / "l.png"),
        ],
    )
    assert lap.exit_code == 2 and "neighbours" in lap.output
    assert "Example" in runner.invoke(app, ["edges", "--help"]).stdout


@pytest.mark.parametrize(
    "args, option",
    [(["--sigma", "inf"], "--sigma"), (["--sigma", "nan"], "--sigma"),
     (["-m", "log", "--sigma", "nan"], "--sigma"), (["-m", "log", "--sigma", "inf"], "--sigma"),
     (["--low", "nan"], "--low"), (["--high", "inf"], "--high"),
     (["-m", "log", "--threshold", "nan"], "--threshold")],
)  # fmt: skip
def test_non_finite_option_values_are_refused(photo, tmp_path, args, option):
    """nan and inf are floats to the parser: once a traceback (--sigma inf) or a
    silently empty or unsmoothed picture; now a usage error naming the option."""
    out = tmp_path / "e.png"
    result = runner.invoke(app, ["edges", str(photo), "-o", str(out), "--max-side", "64", *args])
    assert result.exit_code == 2, result.output
    assert option in result.output and "finite" in result.output
    assert not out.exists()


def test_hog_cell_larger_than_the_image_is_refused(photo, tmp_path):
    """Once a blank picture, exit 0 and ``"cells": [0, 0]``."""
    out = tmp_path / "h.png"
    args = ["edges", str(photo), "-o", str(out), "--max-side", "64", "-m", "hog"]
    result = runner.invoke(app, [*args, "--cell", "65"])
    assert result.exit_code == 2, result.output
    assert "--cell 65 px is larger than the image" in result.output and not out.exists()
    fits = runner.invoke(app, [*args, "--cell", "32", "--json"])
    assert fits.exit_code == 0 and json.loads(fits.stdout)["cells"][0] >= 1
