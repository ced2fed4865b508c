"""Tests of ``boda color`` (convert, diff, chromaticity, measure)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import boda.color as bc
from boda.cli import app

runner = CliRunner()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_convert_srgb_to_lab_text_and_json():
    result = runner.invoke(app, ["color", "convert", "--from", "srgb", "--to", "lab",
                                 "0.2", "0.4", "0.6"])  # fmt: skip
    assert result.exit_code == 0, result.output
    want = bc.srgb_to_lab([0.2, 0.4, 0.6])
    assert " ".join(f"{v:.4f}" for v in want) in result.stdout
    data = _json(runner.invoke(app, ["color", "convert", "--to", "lch", "#3366cc", "--json"]))
    assert np.allclose(data["values"], [[0.2, 0.4, 0.8]])
    assert np.allclose(data["converted"], bc.convert([0.2, 0.4, 0.8], "srgb", "lch"))


def test_convert_negative_values_file_and_illuminant(tmp_path):
    data = _json(runner.invoke(app, ["color", "convert", "--from", "lab", "--to", "srgb",
                                     "--json", "--", "50", "-20", "30"]))  # fmt: skip
    assert np.allclose(data["converted"], bc.lab_to_srgb([[50.0, -20.0, 30.0]]))
    path = tmp_path / "colours.csv"
    path.write_text("r,g,b\n0.1,0.2,0.3\n# a comment\n1 1 1\n#ff0000\n")
    data = _json(runner.invoke(app, ["color", "convert", "--file", str(path), "--to", "lab",
                                     "--illuminant", "D50", "--json"]))  # fmt: skip
    want = bc.srgb_to_lab([[0.1, 0.2, 0.3], [1, 1, 1], [1, 0, 0]], "D50")
    assert np.allclose(data["converted"], want)
    assert np.allclose(data["converted"][1], [100, 0, 0], atol=1e-9)


@pytest.mark.parametrize(
    "args, message",
    [(["0.2", "0.4"], "groups of three"), (["0.2", "x", "0.4"], "not a number"),
     (["--to", "cmyk", "0.2", "0.4", "0.6"], "unknown colour space")],
)  # fmt: skip
def test_convert_errors_exit_2(args, message):
    result = runner.invoke(app, ["color", "convert", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_diff_ciede2000_sharma_pair():
    result = runner.invoke(app, ["color", "diff", "50,2.6772,-79.7751", "50,0,-82.7485",
                                 "--method", "ciede2000"])  # fmt: skip
    assert result.exit_code == 0 and "2.0425" in result.stdout
    data = _json(runner.invoke(app, ["color", "diff", "#ff0000", "#fe0000", "--from", "srgb",
                                     "--method", "cie1976", "--json"]))  # fmt: skip
    lab = bc.srgb_to_lab([[1, 0, 0], [254 / 255, 0, 0]])
    assert data["delta_e"] == pytest.approx(float(bc.delta_e_cie1976(lab[0], lab[1])))
    bad = runner.invoke(app, ["color", "diff", "50,0,0", "50,1,1", "--method", "cmc"])
    assert bad.exit_code == 2 and "method" in bad.output


def test_chromaticity_writes_png_and_svg(tmp_path, kodak_paths):
    out = tmp_path / "diagram.png"
    hist = tmp_path / "hue.svg"
    data = _json(runner.invoke(app, ["color", "chromaticity", str(kodak_paths[0]), "-o",
                                     str(out), "--hue-hist", str(hist), "--max-side", "128",
                                     "--json"]))  # fmt: skip
    assert (data["output"], data["hue_hist"]) == (str(out), str(hist))
    assert data["pixels_plotted"] > 1000
    with Image.open(out) as im:
        assert im.format == "PNG"
    assert "<svg" in hist.read_text()
    bad = runner.invoke(app, ["color", "chromaticity", str(tmp_path / "missing.jpg"), "-o",
                              str(tmp_path / "other.png")])  # fmt: skip
    assert bad.exit_code == 2 and "missing.jpg" in bad.output  # a missing input: usage
    # -o a folder: said as a folder (was "use a .png or .svg file name" with its last part)
    bad = runner.invoke(app, ["color", "chromaticity", str(kodak_paths[0]), "-o", str(tmp_path)])
    said = " ".join(bad.output.split())
    assert bad.exit_code == 2 and "it is a folder; give a file name inside it" in said, said
    bad = runner.invoke(app, ["color", "chromaticity", str(kodak_paths[0]), "-o",
                              str(tmp_path / "sub" / "d.jpg")])  # fmt: skip
    assert bad.exit_code == 2 and f"{tmp_path / 'sub' / 'd.jpg'}': use a .png or .svg" in " ".join(
        bad.output.split())


def test_measure_json(kodak_paths, kodak_rgb):
    path = next(p for p in kodak_paths if p.name == "kodim23.png")
    data = _json(runner.invoke(app, ["color", "measure", str(path), "-k", "3", "--json"]))
    # measured on every 3rd pixel of the 500x500 photo (color_summary's 100 000-pixel cap)
    assert data["colorfulness"] == pytest.approx(bc.colorfulness(kodak_rgb), rel=1e-3)
    assert data["grayscale"] is False
    assert len(data["dominant_colors"]) == 3
    assert sum(d["fraction"] for d in data["dominant_colors"]) == pytest.approx(1.0)
    assert all(d["hex"].startswith("#") and len(d["hex"]) == 7 for d in data["dominant_colors"])
    text = runner.invoke(app, ["color", "measure", str(path), "-k", "2"])
    assert text.exit_code == 0 and "colourfulness" in text.stdout


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_non_finite_components_are_refused(value, tmp_path):
    """float() reads nan and inf: they once gave nan output and numpy warnings."""
    result = runner.invoke(app, ["color", "convert", "--from", "lab", "--", "50", value, "0"])
    assert result.exit_code == 2 and "finite" in result.output
    assert "Warning" not in result.output
    diff = runner.invoke(app, ["color", "diff", f"50,{value},0", "50,0,0"])
    assert diff.exit_code == 2 and "COLOR1" in diff.output
    path = tmp_path / "colours.csv"
    path.write_text(f"0.1,0.2,0.3\n0.1,{value},0.3\n")
    from_file = runner.invoke(app, ["color", "convert", "--file", str(path)])
    assert from_file.exit_code == 2 and "line 2" in from_file.output


def test_colour_file_keeps_no_malformed_hex_line_and_names_an_empty_file(tmp_path):
    """A '#' line of hex digits is a colour, even a malformed one (8 digits with
    alpha, a typo of 5): it was once skipped as a comment, silently dropping the
    colour.  A file with no colour at all says so, instead of 'values: 0 value(s)'."""
    path = tmp_path / "colours.csv"
    path.write_text("# my palette\n0.1,0.2,0.3\n#ff000080\n#00ff00\n")
    result = runner.invoke(app, ["color", "convert", "--file", str(path)])
    assert result.exit_code == 2 and "line 3: '#ff000080'" in result.output
    path.write_text("#ff000080\n")  # not a header either
    assert "line 1: '#ff000080'" in runner.invoke(app, ["color", "convert", "-f", str(path)]).output
    path.write_text("0.1,0.2,0.3\n#12345\n")
    assert runner.invoke(app, ["color", "convert", "--file", str(path)]).exit_code == 2
    path.write_text("# comment\n#abc\n")  # a comment, then a short hex colour
    data = _json(runner.invoke(app, ["color", "convert", "--file", str(path), "--json"]))
    assert np.allclose(data["values"], [[0xAA / 255, 0xBB / 255, 0xCC / 255]])
    for text in ("", "r,g,b\n"):
        path.write_text(text)
        empty = runner.invoke(app, ["color", "convert", "--file", str(path)])
        assert empty.exit_code == 2 and "colours.csv" in empty.output
        assert "no colour" in empty.output


def test_chromaticity_of_a_korean_file_name_warns_nothing(tmp_path, kodak_paths, recwarn):
    """The title is the file name: fonts without Hangul made matplotlib warn
    twice per missing glyph on stderr."""
    photo = tmp_path / "사진 일기.png"
    photo.write_bytes(kodak_paths[0].read_bytes())
    result = runner.invoke(app, ["color", "chromaticity", str(photo), "-o",
                                 str(tmp_path / "d.png"), "--hue-hist", str(tmp_path / "h.png"),
                                 "--max-side", "64"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not [w for w in recwarn if "Glyph" in str(w.message)]


def test_xyz_on_the_percent_scale_gets_a_note_and_still_converts():
    """XYZ / xyY with Y = 100 for white converted silently into sRGB 7.1."""
    percent = runner.invoke(app, ["color", "convert", "--from", "xyz", "--to", "srgb",
                                  "95.047", "100", "108.883", "--json"])
    assert percent.exit_code == 0
    assert "0-100 scale" in percent.stderr and "divide by 100" in percent.stderr
    assert json.loads(percent.stdout)["converted"][0][1] > 7  # converted as given
    xyy = runner.invoke(app, ["color", "convert", "--from", "xyy", "0.31", "0.33", "100"])
    assert xyy.exit_code == 0 and "0-100 scale" in xyy.stderr
    unit = runner.invoke(app, ["color", "convert", "--from", "xyz", "--to", "srgb",
                               "0.95047", "1", "1.08883"])
    assert unit.exit_code == 0 and unit.stderr == ""
