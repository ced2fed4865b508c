"""Audit of boda.color against colour-science and its own documented contracts (session 26).

Each test here failed on the code before its fix; the conversions themselves
(sRGB, XYZ, xyY, Lab, LCh, chromatic adaptation, ΔE) agreed with colour-science
to 1e-12 on random, out-of-gamut and boundary inputs, so what is left are the
edges the docstrings promise and colour-science leaves undefined.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import boda.color as bc
from boda.cli import app
from boda.errors import InvalidParameterError

colour = pytest.importorskip("colour")
runner = CliRunner()


# ---------------------------------------------------------------- hue conventions


def test_lab_to_lch_neutral_with_signed_zeros_has_hue_zero_and_hues_stay_below_360():
    # lab_to_lch promises hue 0 for a* = b* = 0 and hues in [0, 360); atan2 of
    # signed zeros gave 180 (-0.0 == 0, so these are the neutral colour), and
    # a hue of -5.7e-19 degrees wrapped to 360.0 (colour-science does both).
    lab = np.array([[50, -0.0, -0.0], [50, -0.0, 0.0], [50, 0.0, -0.0], [0, 0, 0],
                    [50, 1.0, -1e-20]])  # fmt: skip
    for dtype in (np.float64, np.float32):
        lch = bc.lab_to_lch(lab.astype(dtype))
        assert lch[:4, 2].tolist() == [0.0, 0.0, 0.0, 0.0]
        assert ((lch[:, 2] >= 0) & (lch[:, 2] < 360)).all()
    # Away from those points: colour-science's LCHab, exactly as before.
    rng = np.random.default_rng(3)
    labs = np.c_[rng.uniform(0, 100, 2000), rng.uniform(-150, 150, (2000, 2))]
    np.testing.assert_allclose(bc.lab_to_lch(labs), colour.Lab_to_LCHab(labs), atol=1e-12)


def test_cli_lch_of_a_neutral_typed_with_minus_zero_has_hue_zero():
    result = runner.invoke(app, ["color", "convert", "--from", "lab", "--to", "lch", "--json",
                                 "--", "50", "-0", "-0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["converted"] == [[50.0, 0.0, 0.0]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rgb_to_hsv_and_hsl_hue_stays_below_360(dtype):
    # (g - b) / chroma = -1e-17 gave (-1e-17) % 6 = 6.0, a hue of 360.0 where the
    # docstring promises [0, 360).
    rgb = np.array([[1.0, 0.0, 1e-17], [1.0, 0.0, 1e-9], [0.5, 0.2, 0.2 + 1e-12]], dtype)
    for f in (bc.rgb_to_hsv, bc.rgb_to_hsl):
        hue = f(rgb)[:, 0]
        assert ((hue >= 0) & (hue < 360)).all(), (f.__name__, hue)
        np.testing.assert_allclose(bc.hsv_to_rgb(bc.rgb_to_hsv(rgb)), rgb, atol=1e-6)


def test_ciede2000_intermediate_hue_of_a_neutral_is_zero_with_signed_zeros():
    # Sharma et al.'s convention, as the docstring says: h' = 0 where a' = b' = 0.
    # -0.0 components gave h' = 180 (ΔE was unaffected: ΔH' is 0 there).
    lab1 = np.array([[50, -0.0, -0.0], [50, 0.0, 0.0]])
    lab2 = np.array([60, 10, 10.0])
    de, inter = bc.delta_e_ciede2000(lab1, lab2, return_intermediates=True)
    assert inter["h1_prime"].tolist() == [0.0, 0.0]
    assert inter["h_bar_prime"][0] == inter["h_bar_prime"][1]
    assert de[0] == de[1]
    np.testing.assert_allclose(de, colour.difference.delta_E_CIE2000(lab1, lab2), atol=1e-12)
    # the published pairs are untouched
    data = bc.ciede2000_test_data()
    np.testing.assert_allclose(
        bc.delta_e_ciede2000(data["lab1"], data["lab2"]), data["delta_e"], atol=1e-4
    )


# ---------------------------------------------------------------- ΔE parameters


@pytest.mark.parametrize("f", [bc.delta_e_ciede2000, bc.delta_e_cie1994])
@pytest.mark.parametrize(
    "kwargs", [{"k_l": 0}, {"k_c": -1.0}, {"k_h": float("nan")}, {"k_l": "2"},
               {"k_c": None}, {"k_h": float("inf")}, {"k_l": True}],
)  # fmt: skip
def test_delta_e_parametric_factors_must_be_positive_numbers(f, kwargs):
    # k_L = 0 gave a silent NaN (with numpy's divide warning), a string numpy's TypeError.
    name = next(iter(kwargs))
    with pytest.raises(InvalidParameterError, match=name):
        f([50, 1, 2], [50, 2, 3], **kwargs)


def test_delta_e_parametric_factors_still_accept_numbers_of_any_kind():
    # the check lets ints and numpy scalars through: equal to scikit-image's kL, kC, kH
    skcolor = pytest.importorskip("skimage.color")
    rng = np.random.default_rng(11)
    lab1 = np.c_[rng.uniform(0, 100, 500), rng.uniform(-100, 100, (500, 2))]
    lab2 = lab1 + rng.normal(0, 5, lab1.shape)
    for kl, kc, kh in [(2, 1, 1), (1, 2.5, 0.5), (np.float32(1.5), np.int64(1), 2.0)]:
        np.testing.assert_allclose(
            bc.delta_e_ciede2000(lab1, lab2, k_l=kl, k_c=kc, k_h=kh),
            skcolor.deltaE_ciede2000(lab1, lab2, kL=kl, kC=kc, kH=kh),
            atol=1e-10,
        )
        np.testing.assert_allclose(
            bc.delta_e_cie1994(lab1, lab2, k_l=kl, k_c=kc, k_h=kh),
            skcolor.deltaE_ciede94(lab1, lab2, kL=kl, kC=kc, kH=kh),
            atol=1e-10,
        )


# ---------------------------------------------------------------- image measures


@pytest.mark.parametrize("value", ["99", None])
def test_grayscale_percentile_of_the_wrong_kind_is_a_boda_error(value):
    # a string was a raw TypeError from the comparison
    img = np.full((4, 4, 3), 0.5)
    with pytest.raises(InvalidParameterError, match="percentile"):
        bc.is_grayscale(img, percentile=value)
    with pytest.raises(InvalidParameterError, match="grayscale_percentile"):
        bc.color_summary(img, grayscale_percentile=value)


# ---------------------------------------------------------------- command line


def test_cli_diff_refuses_more_than_one_colour_per_argument():
    # "50,0,0,60,1,1" was read as its first three numbers, the rest dropped silently
    result = runner.invoke(app, ["color", "diff", "50,0,0,60,1,1", "50,1,1"])
    assert result.exit_code == 2
    assert "COLOR1" in result.output and "6" in result.output


def test_cli_diff_json_says_what_was_compared():
    # The JSON gave only Lab: not the colours as given, their space or the white,
    # and the method as typed ("94") rather than the one used.
    result = runner.invoke(app, ["color", "diff", "#ff0000", "#fe0000", "--from", "srgb",
                                 "--method", "94", "--illuminant", "D50", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["method"] == "cie1994"
    assert data["from"] == "srgb" and data["illuminant"] == "D50"
    assert np.allclose(data["color1"], [1, 0, 0]) and np.allclose(data["color2"], [254 / 255, 0, 0])
    lab = bc.srgb_to_lab([[1, 0, 0], [254 / 255, 0, 0]], "D50")
    assert np.allclose([data["lab1"], data["lab2"]], lab, atol=1e-12)
    assert data["delta_e"] == pytest.approx(float(bc.delta_e_cie1994(lab[0], lab[1])))
    text = runner.invoke(app, ["color", "diff", "50,0,0", "50,1,1", "--method", "94"])
    assert "ΔE (cie1994)" in text.stdout


def test_cli_illuminant_takes_xyz_and_names_a_malformed_one():
    # The library takes an (X, Y, Z) white; the CLI read "X,Y,Z" as an unknown name.
    white = bc.whitepoint("D50")
    arg = ",".join(repr(float(v)) for v in white)
    result = runner.invoke(app, ["color", "convert", "--to", "lab", "--illuminant", arg,
                                 "--json", "0.2", "0.4", "0.6"])  # fmt: skip
    assert result.exit_code == 0, result.output
    want = bc.srgb_to_lab([0.2, 0.4, 0.6], "D50")
    assert np.allclose(json.loads(result.stdout)["converted"][0], want, atol=1e-12)
    for bad in ("0.3,0.3,0.3,0.1", "0.3,x"):
        result = runner.invoke(app, ["color", "convert", "--illuminant", bad, "0.2", "0.4", "0.6"])
        assert result.exit_code == 2
        assert "--illuminant" in result.output and "x,y" in result.output
