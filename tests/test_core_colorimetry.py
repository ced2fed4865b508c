"""boda.core.colorimetry: the colour primitives shared by the image reader and boda.color.

References: colour-science (its own implementations of the same formulas) and
published values (B. Lindbloom's sRGB and Bradford matrices, IEC 61966-2-1's
printed sRGB matrix, 8-bit mid-gray as 21.586 % linear light, the Rec. 709 luma
weights).  Also: the layers stay as
ARCHITECTURE.md draws them (core imports no analyzer and no torch), and the
reader and boda.color share the arithmetic bit for bit.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import boda.core
from boda.core import colorimetry as cm

colour = pytest.importorskip("colour")

# B. Lindbloom, "RGB/XYZ Matrices" and "Chromatic Adaptation"
# (http://www.brucelindbloom.com), computed with his whites below.
LINDBLOOM_D65 = [0.95047, 1.0, 1.08883]
LINDBLOOM_D50 = [0.96422, 1.0, 0.82521]
LINDBLOOM_SRGB = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
]
#: The sRGB matrix as IEC 61966-2-1 prints it, to four decimals.
IEC_SRGB_PRINTED = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
LINDBLOOM_BRADFORD_D65_D50 = [
    [1.0478112, 0.0228866, -0.0501270],
    [0.0295424, 0.9904844, -0.0170491],
    [-0.0092345, 0.0150436, 0.7521316],
]
SPACES = ["sRGB", "Display P3", "Adobe RGB (1998)", "ProPhoto RGB", "ITU-R BT.2020"]


def test_constants_are_the_standard_ones():
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    assert np.array_equal(cm.SRGB_PRIMARIES_XY, srgb.primaries)
    assert np.array_equal(cm.D65_XY, srgb.whitepoint)
    assert np.array_equal(cm.BRADFORD, colour.adaptation.CAT_BRADFORD)


def test_xy_to_xyz_matches_colour_science(rng):
    xy = rng.uniform([0.05, 0.05], [0.7, 0.8], (200, 2))
    assert np.allclose(cm.xy_to_xyz(xy), colour.xy_to_XYZ(xy), rtol=1e-14, atol=1e-15)
    assert cm.xy_to_xyz((1 / 3, 1 / 3)).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-15)
    assert cm.xy_to_xyz(np.zeros((4, 5, 2)) + 0.3).shape == (4, 5, 3)
    # Y = 1 and the chromaticity comes back: x = X / (X + Y + Z)
    xyz = cm.xy_to_xyz(xy)
    assert np.all(xyz[:, 1] == 1.0)
    assert np.allclose(xyz[:, :2] / xyz.sum(-1, keepdims=True), xy, atol=1e-15)


@pytest.mark.parametrize("space", SPACES)
def test_normalised_primary_matrix_matches_colour_science(space):
    cs = colour.RGB_COLOURSPACES[space]
    ours = cm.normalised_primary_matrix(cs.primaries, cm.xy_to_xyz(cs.whitepoint))
    assert np.allclose(
        ours, colour.normalised_primary_matrix(cs.primaries, cs.whitepoint), rtol=1e-14, atol=1e-15
    )
    # RGB white maps to the white
    assert np.allclose(ours @ np.ones(3), cm.xy_to_xyz(cs.whitepoint), rtol=0, atol=1e-15)


def test_normalised_primary_matrix_published_values():
    srgb = cm.normalised_primary_matrix(cm.SRGB_PRIMARIES_XY, LINDBLOOM_D65)
    assert np.abs(srgb - LINDBLOOM_SRGB).max() < 1e-7
    # the Y row is the Rec. 709 luma; IEC 61966-2-1's printed matrix agrees to its rounding
    d65 = cm.normalised_primary_matrix(cm.SRGB_PRIMARIES_XY, cm.xy_to_xyz(cm.D65_XY))
    assert np.abs(d65[1] - [0.2126, 0.7152, 0.0722]).max() < 5e-5
    assert np.abs(d65 - IEC_SRGB_PRINTED).max() < 1e-4
    with pytest.raises(np.linalg.LinAlgError):  # collinear primaries: no RGB space
        cm.normalised_primary_matrix(((0.2, 0.2), (0.3, 0.3), (0.4, 0.4)), LINDBLOOM_D65)


@pytest.mark.parametrize(
    "transform, cone",
    [
        ("Bradford", cm.BRADFORD),
        ("Von Kries", colour.adaptation.CAT_VON_KRIES),
        ("XYZ Scaling", np.eye(3)),
    ],
)
def test_chromatic_adaptation_matrix_matches_colour_science(transform, cone, rng):
    for _ in range(20):
        source, target = cm.xy_to_xyz(rng.uniform(0.28, 0.45, (2, 2)))
        ours = cm.chromatic_adaptation_matrix(source, target, cone)
        ref = colour.adaptation.matrix_chromatic_adaptation_VonKries(source, target, transform)
        assert np.allclose(ours, ref, rtol=1e-13, atol=1e-14)
        # the source white goes to the target white, and the way back is the inverse
        assert np.allclose(ours @ source, target, atol=1e-14)
        back = cm.chromatic_adaptation_matrix(target, source, cone)
        assert np.allclose(back @ ours, np.eye(3), atol=1e-14)


def test_bradford_published_values():
    ours = cm.chromatic_adaptation_matrix(LINDBLOOM_D65, LINDBLOOM_D50)
    assert np.abs(ours - LINDBLOOM_BRADFORD_D65_D50).max() < 1e-7
    same = cm.chromatic_adaptation_matrix(LINDBLOOM_D65, LINDBLOOM_D65)
    assert np.allclose(same, np.eye(3), atol=1e-15)


def test_srgb_curves_match_colour_science():
    v = np.linspace(0.0, 1.0, 10_001)
    assert np.allclose(cm.srgb_to_linear(v), colour.models.eotf_sRGB(v), rtol=1e-14, atol=1e-16)
    assert np.allclose(
        cm.linear_to_srgb(v), colour.models.eotf_inverse_sRGB(v), rtol=1e-14, atol=1e-16
    )


def test_srgb_curves_published_values():
    # 8-bit mid-gray 128 is 21.586 % linear light; code 10 is still on the linear segment
    codes = np.array([0, 10, 128, 255]) / 255
    assert np.abs(cm.srgb_to_linear(codes) - [0.0, 10 / 255 / 12.92, 0.2158605, 1.0]).max() < 5e-8
    assert float(cm.srgb_to_linear(np.array(0.5))) == pytest.approx(0.21404114048, abs=1e-11)
    # the two segments meet at the thresholds (to the precision of the published constants)
    assert cm.linear_to_srgb(np.array([0.0031308]))[0] == pytest.approx(0.04045, abs=1e-7)
    assert cm.srgb_to_linear(np.array([0.04045]))[0] == pytest.approx(0.0031308, abs=1e-7)


def test_srgb_curves_extend_keep_dtype_and_round_trip():
    v = np.linspace(-0.5, 1.5, 2001)
    assert np.allclose(cm.linear_to_srgb(cm.srgb_to_linear(v)), v, atol=1e-12)
    neg = cm.srgb_to_linear(np.array([-0.5]))[0]
    assert neg == pytest.approx(-0.5 / 12.92)  # the linear segment continues below 0
    assert cm.srgb_to_linear(np.array([1.5]))[0] == pytest.approx(((1.5 + 0.055) / 1.055) ** 2.4)
    assert np.isnan(cm.srgb_to_linear(np.array([np.nan]))[0])
    clipped = cm.linear_to_srgb(v, clip=True)
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    assert np.array_equal(clipped, np.clip(cm.linear_to_srgb(v), 0, 1))
    for dtype in (np.float32, np.float64):
        x = v.astype(dtype)
        assert cm.srgb_to_linear(x).dtype == dtype and cm.linear_to_srgb(x).dtype == dtype
    assert np.ndim(cm.srgb_to_linear(np.array(0.5))) == 0


def test_srgb_encode_is_the_clipped_curve_with_an_exact_white():
    x = np.linspace(-0.25, 1.25, 30_001, dtype=np.float32)
    out = cm.srgb_encode(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    ref = colour.models.eotf_inverse_sRGB(np.clip(x.astype(np.float64), 0, 1))
    assert np.abs(out - ref).max() < 2.5e-7  # float32 arithmetic
    assert np.abs(out - cm.linear_to_srgb(np.clip(x, 0, 1))).max() <= np.spacing(np.float32(1))
    assert out[x <= 0].max() == 0.0 and out[x >= 1].min() == 1.0  # exactly, in float32
    assert cm.linear_to_srgb(np.float32([1.0]))[0] < 1.0  # what the rewritten form avoids
    low = x[(x > 0) & (x < 0.003)]
    assert np.array_equal(cm.srgb_encode(low), low * np.float32(12.92))
    assert cm.srgb_encode(np.array([0.25, 0.5])).dtype == np.float32  # whatever comes in


def test_reader_and_colour_package_share_the_arithmetic():
    from boda import _icc
    from boda import color as bc

    assert _icc.srgb_encode is cm.srgb_encode
    # sRGB -> ICC D50 PCS computed by the reader and by boda.color: the same bits
    via_color = bc.adaptation_matrix("D65", _icc.D50) @ bc.SRGB_TO_XYZ
    assert np.array_equal(_icc.SRGB_TO_PCS, via_color)
    v = np.linspace(-0.2, 1.2, 999)
    assert np.array_equal(bc.srgb_to_linear(v), cm.srgb_to_linear(v))
    assert np.array_equal(bc.linear_to_srgb(v, clip=True), cm.linear_to_srgb(v, clip=True))


CORE = Path(boda.core.__file__).parent


def _imports(path: Path, *, top_level: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_higher_layer_and_no_torch(path):
    # ARCHITECTURE.md: core sits under every analyzer; torch only in nn and above
    # (core.lazy may hand torch out from inside a function, on demand).
    boda_modules = {n for n in _imports(path, top_level=False) if n.split(".")[0] == "boda"}
    assert all(n == "boda.errors" or n.startswith("boda.core") for n in boda_modules), boda_modules
    assert not {n for n in _imports(path, top_level=True) if n.split(".")[0] == "torch"}


def test_reading_images_loads_neither_boda_color_nor_torch():
    code = (
        "import sys, boda.io, boda.core.colorimetry; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('boda.color')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
