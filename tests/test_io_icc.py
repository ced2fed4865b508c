"""Embedded colour profiles: read_image converts them to sRGB (or keeps RGB ones on
request), write_image embeds only profiles that fit, and the edits and the scan use
the right reading.

The profiles are made in ``icc_profiles.py``; references are LittleCMS
(``PIL.ImageCms``, relative colorimetric) and colour-science.
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import colour
import cv2
import icc_profiles as ip
import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from boda import _icc
from boda.cli import app
from boda.errors import InvalidParameterError
from boda.io import open_image, read_image, write_image
from boda.scan._analyze import ANALYSIS_VERSION, analyze_file
from boda.scan._walk import FoundFile

P3 = ip.rgb_profile("p3", ip.SRGB_CURVE, "Display P3 (boda test)")
ADOBE = ip.rgb_profile("adobe", ip.ADOBE_CURVE, "Adobe RGB (boda test)")
PROPHOTO = ip.rgb_profile("prophoto", ip.PROPHOTO_CURVE, "ProPhoto (boda test)")
GRAY22 = ip.gray_profile(ip.curve_gamma(2.2), "Gray 2.2 (boda test)")
CMYK = ip.lut_profile("cmyk", "Toy press (boda test)")
LUT_P3 = ip.lut_profile("rgb-p3", "P3 as a table (boda test)")
LCMS_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
SRGB_TABLE = ip.rgb_profile("srgb", ip.curve_table(ip.srgb_decode(np.linspace(0, 1, 1024))))
SRGB_LUT = ip.lut_profile("rgb-srgb")
SPACE_NAMES = {"p3": "Display P3", "adobe": "Adobe RGB (1998)", "prophoto": "ProPhoto RGB"}
MATRIX_PROFILES = {"p3": P3, "adobe": ADOBE, "prophoto": PROPHOTO}


def _photo(seed: int = 0, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """uint8 RGB: smooth gradients plus every corner of the cube (saturated colours)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    rgb = np.stack([128 + 120 * np.sin(x / 9 + k) * np.cos(y / 7 - 2 * k) for k in range(3)], 2)
    rgb += rng.normal(0, 6, rgb.shape)
    corners = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]) * 255
    rgb[0, :8] = corners
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _lcms(img: Image.Image, profile: bytes) -> np.ndarray:
    """LittleCMS's sRGB (float, 0-255) of ``img`` through ``profile``, relative colorimetric."""
    out = ImageCms.profileToProfile(
        img, ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB",
    )
    return np.asarray(out, dtype=np.float64)


def _save(path, pixels: np.ndarray, profile: bytes | None = None, **params):
    if profile is not None:
        params["icc_profile"] = profile
    Image.fromarray(pixels).save(path, **params)
    return path


_SRGB = colour.RGB_COLOURSPACES["sRGB"]
#: sRGB with the matrix derived from its primaries, as ICC profiles and boda have it
#: (colour-science's default is the matrix printed, rounded, in IEC 61966-2-1).
_DERIVED_SRGB = colour.RGB_Colourspace(
    "sRGB (derived)", _SRGB.primaries, _SRGB.whitepoint, cctf_encoding=_SRGB.cctf_encoding,
    cctf_decoding=_SRGB.cctf_decoding, use_derived_matrix_RGB_to_XYZ=True,
    use_derived_matrix_XYZ_to_RGB=True,
)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(rgb, dtype=np.float64)))


# ------------------------------------------------------------------ the profiles themselves
@pytest.mark.parametrize("name", ["p3", "adobe", "prophoto"])
def test_test_profiles_match_colour_science(name):
    # The hand-made profiles are what they claim: LittleCMS through them agrees with
    # colour-science's RGB_to_RGB (Bradford) within an 8-bit level.
    u8 = _photo()
    ref = colour.RGB_to_RGB(u8 / 255.0, SPACE_NAMES[name], "sRGB", "Bradford",
                            apply_cctf_decoding=True, apply_cctf_encoding=True)
    lcms = _lcms(Image.fromarray(u8), MATRIX_PROFILES[name]) / 255
    assert np.abs(np.clip(ref, 0, 1) - lcms).max() < 1.0 / 255


def test_parse_profile_reads_matrix_curves_and_description():
    parsed = _icc.parse_profile(PROPHOTO)
    assert (parsed.color_space, parsed.pcs, parsed.version) == ("RGB ", "XYZ ", 2)
    assert parsed.description == "ProPhoto (boda test)" and not parsed.has_lut
    assert np.abs(parsed.matrix - ip.colourant_matrix("prophoto")).max() < 1e-4
    assert np.allclose(parsed.white, ip.PCS_WHITE, atol=1e-4) and parsed.chad.shape == (3, 3)
    x = np.linspace(0, 1, 101, dtype=np.float32)
    romm = np.where(x < 1 / 32, x / 16, x**1.8)
    assert np.abs(parsed.curves[0](x) - romm).max() < 1e-4
    assert _icc.parse_profile(GRAY22).curves[0].params == (563 / 256,)
    table = _icc.parse_profile(SRGB_TABLE).curves[0]
    assert table.kind == "table" and len(table.params) == 1024
    assert np.abs(table(x) - ip.srgb_decode(x)).max() < 1e-4
    assert _icc.parse_profile(CMYK).has_lut


@pytest.mark.parametrize("function, params", [
    (0, (2.2,)), (1, (2.4, 1.1, -0.1)), (2, (2.2, 1.04086, -0.05, 0.02)),
    (3, (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)),
    (4, (2.4, 0.945821, 0.05, 0.1464, 0.1, 0.01, 0.005)),
])
def test_parametric_curves_match_littlecms(function, params):
    # Each para function type (ICC.1:2022 10.18) against LittleCMS's evaluation of a
    # gray profile with that curve.  The curves take 1 to 1: LittleCMS bends any other
    # curve's top so that white stays white ("white misalignment" fix), boda does not.
    profile = ip.gray_profile(ip.curve_parametric(function, *params))
    curve = _icc.parse_profile(profile).curves[0]
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ours = _icc.srgb_encode(curve(ramp / np.float32(255))) * 255
    lcms = _lcms(Image.fromarray(ramp), profile)[..., 0]
    assert np.abs(ours - lcms).max() <= 1.1


# ------------------------------------------------------------------ reading: conversion
@pytest.mark.parametrize("name", ["p3", "adobe", "prophoto"])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_matrix_profiles_are_converted_like_littlecms(tmp_path, name, suffix):
    u8 = _photo()
    path = _save(tmp_path / f"{name}{suffix}", u8, MATRIX_PROFILES[name])
    decoded = open_image(path)
    lcms = _lcms(Image.fromarray(u8), MATRIX_PROFILES[name])
    assert np.abs(decoded.pixels * 255 - lcms).max() < 1.0  # within an 8-bit level
    assert decoded.icc_profile is None and decoded.converted_from.endswith("(boda test)")
    assert decoded.pixels_uint8 is None and decoded.color_warning is None
    de = colour.delta_E(_lab(decoded.pixels), _lab(lcms / 255), method="CIE 2000")
    assert de.mean() < 0.3
    assert np.array_equal(read_image(path), decoded.pixels)


def test_jpeg_with_profile_is_converted(tmp_path):
    u8 = _photo()
    path = _save(tmp_path / "p3.jpg", u8, P3, quality=95)
    stored = open_image(path, color="keep").pixels
    decoded = open_image(path)
    lcms = _lcms(Image.fromarray(np.round(stored * 255).astype(np.uint8)), P3)
    assert np.abs(decoded.pixels * 255 - lcms).max() < 1.0
    gray = open_image(path, gray=True, max_side=32)  # luma of the converted colours
    small = open_image(path, max_side=32).pixels
    assert np.abs(gray.pixels - small @ np.array([0.299, 0.587, 0.114])).max() < 1e-5


@pytest.mark.parametrize("name", ["p3", "prophoto"])
def test_16bit_files_convert_in_float_like_colour_science(tmp_path, name):
    # 16-bit in, 16-bit precision out: the numpy conversion matches colour-science's
    # float maths far below an 8-bit level, and keeps thousands of levels.
    ramp = np.linspace(0, 65535, 120 * 160).round().astype(np.uint16)
    rng = np.random.default_rng(3)
    data = np.stack([rng.permutation(ramp).reshape(120, 160) for _ in range(3)], 2)
    path = tmp_path / "deep.png"
    write_image(path, data, icc_profile=MATRIX_PROFILES[name])
    decoded = open_image(path)
    assert decoded.bit_depth == 16 and decoded.converted_from is not None
    ref = colour.RGB_to_RGB(data / 65535.0, SPACE_NAMES[name], _DERIVED_SRGB, "Bradford",
                            apply_cctf_decoding=True, apply_cctf_encoding=True)
    ref = np.clip(ref, 0, 1)
    # measured: 0.07 (P3) and 0.50 (ProPhoto, its dark greens) of an 8-bit level at most
    assert np.abs(decoded.pixels - ref).max() < 0.6 / 255
    assert len(np.unique(decoded.pixels[..., 1])) > 8000


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("color", ["srgb", "keep"])
def test_gray_profile_is_converted_in_both_modes(tmp_path, bits, color):
    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    data = (ramp * 255).round().astype(np.uint8) if bits == 8 else (ramp * 65535).round().astype(
        np.uint16)
    path = _save(tmp_path / "gray.png", data, GRAY22)
    decoded = open_image(path, gray=True, color=color)
    expected = _icc.srgb_encode((data / (2**bits - 1)).astype(np.float32) ** np.float32(563 / 256))
    assert np.abs(decoded.pixels - expected).max() < 1e-5
    assert decoded.icc_profile is None and decoded.converted_from == "Gray 2.2 (boda test)"
    if bits == 8:
        lcms = _lcms(Image.fromarray(data), GRAY22)[..., 0]
        assert np.abs(decoded.pixels * 255 - lcms).max() <= 1.1
    else:
        assert decoded.bit_depth == 16 and len(np.unique(decoded.pixels)) > 3000
    rgb = open_image(path, color=color).pixels
    assert rgb.shape == (64, 64, 3) and np.array_equal(rgb[..., 1], decoded.pixels)


@pytest.mark.parametrize("color", ["srgb", "keep"])
def test_cmyk_profile_is_converted_through_littlecms(tmp_path, color):
    rgb = _photo()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    with_profile = tmp_path / "cmyk.jpg"
    cmyk.save(with_profile, quality=95, icc_profile=CMYK)
    cmyk.save(tmp_path / "plain.jpg", quality=95)
    decoded = open_image(with_profile, color=color)
    with Image.open(with_profile) as img:
        assert img.mode == "CMYK"
        lcms = _lcms(img, CMYK)
    assert np.array_equal(decoded.pixels_uint8, lcms.astype(np.uint8))
    assert decoded.icc_profile is None and decoded.converted_from == "Toy press (boda test)"
    plain = open_image(tmp_path / "plain.jpg", color=color)  # no profile: the naive formula
    assert plain.converted_from is None and not np.array_equal(plain.pixels, decoded.pixels)
    # The toy press darkens mid-tones (dot gain): the profile's reading is darker.
    assert decoded.pixels.mean() < plain.pixels.mean() - 0.02


def test_lut_rgb_profiles_use_littlecms(tmp_path):
    u8 = _photo()
    path = _save(tmp_path / "lut.png", u8, LUT_P3)
    decoded = open_image(path)
    assert decoded.converted_from == "P3 as a table (boda test)" and decoded.icc_profile is None
    assert np.array_equal(decoded.pixels_uint8, _lcms(Image.fromarray(u8), LUT_P3).astype(np.uint8))
    kept = open_image(path, color="keep")
    assert kept.icc_profile == LUT_P3 and np.array_equal(kept.pixels_uint8, u8)


@pytest.mark.parametrize("profile", [None, LCMS_SRGB, SRGB_TABLE, SRGB_LUT],
                         ids=["none", "lcms-srgb", "srgb-table", "srgb-lut"])
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_untagged_and_srgb_files_are_untouched(tmp_path, profile, suffix):
    u8 = _photo()
    plain = _save(tmp_path / f"plain{suffix}", u8)
    tagged = _save(tmp_path / f"tagged{suffix}", u8, profile)
    for color in ("srgb", "keep"):
        decoded = open_image(tagged, color=color)
        assert np.array_equal(decoded.pixels, open_image(plain).pixels)
        assert decoded.pixels_uint8 is not None
        assert decoded.icc_profile == profile and decoded.converted_from is None
        assert decoded.color_warning is None


def test_keep_returns_rgb_values_as_stored_with_their_profile(tmp_path):
    u8 = _photo()
    path = _save(tmp_path / "p3.png", u8, P3)
    kept = open_image(path, color="keep")
    assert np.array_equal(kept.pixels_uint8, u8) and kept.icc_profile == P3
    assert kept.converted_from is None
    deep = tmp_path / "p3_16.tif"
    write_image(deep, u8.astype(np.uint16) * 257, icc_profile=P3)
    kept16 = open_image(deep, color="keep")
    assert kept16.bit_depth == 16 and kept16.icc_profile == P3
    assert np.abs(kept16.pixels * 255 - u8).max() < 1e-3


def test_saturated_p3_colours_come_back_brighter_than_raw(tmp_path):
    # (1, 0.15, 0.2) in P3 is a red sRGB cannot show: converted, it clips to the edge.
    raw = np.array([[[255, 38, 51], [26, 204, 51]]], dtype=np.uint8)
    path = _save(tmp_path / "red.png", raw, P3)
    truth = colour.RGB_to_RGB(raw / 255.0, "Display P3", "sRGB", "Bradford",
                              apply_cctf_decoding=True, apply_cctf_encoding=False)
    truth = colour.cctf_encoding(np.clip(truth, 0, 1), "sRGB")
    assert np.abs(open_image(path).pixels - truth).max() < 1e-3
    assert (truth[0, 0, 1:] < raw[0, 0, 1:] / 255).all()


# ------------------------------------------------------------------ reading: bad profiles
def test_broken_profiles_fall_back_to_srgb_with_a_warning(tmp_path):
    u8 = _photo()
    plain = open_image(_save(tmp_path / "plain.png", u8)).pixels
    truncated = P3[:200]  # header says RGB, the tags lie outside
    junk = b"\x00" * 40 + b"not a profile"
    for profile, kept in ((truncated, truncated), (junk, None)):
        path = _save(tmp_path / "broken.png", u8, profile)
        decoded = open_image(path)
        assert np.array_equal(decoded.pixels, plain) and decoded.icc_profile is None
        assert "cannot be used" in decoded.color_warning and decoded.converted_from is None
        # keep: an RGB profile is handed back as it was (the edits wrote it back before)
        assert open_image(path, color="keep").icc_profile == kept


def test_profile_of_other_pixels_is_ignored(tmp_path):
    gray = _photo()[..., 0]
    path = _save(tmp_path / "gray_with_rgb.png", gray, P3)
    for color in ("srgb", "keep"):
        decoded = open_image(path, color=color)
        assert np.array_equal(decoded.pixels_uint8, gray) and decoded.icc_profile is None
        assert "does not describe" in decoded.color_warning


def test_unknown_color_is_refused(tmp_path):
    path = _save(tmp_path / "a.png", _photo())
    with pytest.raises(InvalidParameterError, match="color"):
        open_image(path, color="p3")
    with pytest.raises(InvalidParameterError, match="color"):
        read_image(path, color="raw")


def test_profile_verdicts_are_cached(tmp_path):
    path = _save(tmp_path / "p3.png", _photo(), P3)
    open_image(path)
    before = _icc.color_plan.cache_info()
    for _ in range(3):
        open_image(path)
    after = _icc.color_plan.cache_info()
    assert after.hits == before.hits + 3 and after.misses == before.misses


# ------------------------------------------------------------------ PNG gAMA / cHRM
def _png_with_chunks(path, u8: np.ndarray, chunks: list[tuple[bytes, bytes]]):
    buffer = io.BytesIO()
    Image.fromarray(u8).save(buffer, format="PNG")
    data = buffer.getvalue()
    end = 8 + 12 + int.from_bytes(data[8:12], "big")
    extra = b"".join(struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b))
                     for k, b in chunks)
    path.write_bytes(data[:end] + extra + data[end:])
    return path


def test_png_gamma_is_decoded_with_the_file_gamma(tmp_path):
    u8 = _photo()
    mac = _png_with_chunks(tmp_path / "mac.png", u8, [(b"gAMA", struct.pack(">I", 55556))])
    decoded = open_image(mac)
    expected = _icc.srgb_encode((u8 / np.float32(255)) ** np.float32(1 / 0.55556))
    assert np.abs(decoded.pixels - expected).max() < 1e-5
    assert decoded.converted_from.startswith("PNG gAMA 0.5555")
    # 1/2.2 is how sRGB files are tagged: untouched, like an sRGB chunk beside any gAMA
    usual = _png_with_chunks(tmp_path / "usual.png", u8, [(b"gAMA", struct.pack(">I", 45455))])
    assert np.array_equal(open_image(usual).pixels_uint8, u8)
    srgb = _png_with_chunks(tmp_path / "srgb.png", u8,
                            [(b"sRGB", b"\0"), (b"gAMA", struct.pack(">I", 55556))])
    assert np.array_equal(open_image(srgb).pixels_uint8, u8)


def test_png_chrm_with_gamma_converts_primaries(tmp_path):
    u8 = _photo()
    (primaries, white) = ip.SPACES["p3"]
    chrm = struct.pack(">8I", *(round(v * 100000) for v in (*white, *sum(primaries, ()))))
    gamma = struct.pack(">I", 45455)  # a pure 2.2 power with P3 primaries
    path = _png_with_chunks(tmp_path / "chrm.png", u8, [(b"gAMA", gamma), (b"cHRM", chrm)])
    linear = (u8 / 255.0) ** (1 / 0.45455)
    ref = colour.RGB_to_RGB(linear, "Display P3", "sRGB", "Bradford", apply_cctf_encoding=True)
    decoded = open_image(path, color="keep")  # gAMA cannot be written back: converted anyway
    assert np.abs(decoded.pixels - np.clip(ref, 0, 1)).max() < 0.5 / 255
    assert decoded.converted_from.endswith("+ cHRM")


# ------------------------------------------------------------------ writing
@pytest.mark.parametrize("suffix, bit_depth", [
    (".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".jpg", 8),
])
def test_write_image_embeds_only_profiles_of_the_output_space(tmp_path, suffix, bit_depth):
    rgb, gray = _photo(), _photo()[..., 1]
    cases = [(rgb, P3, P3), (rgb, GRAY22, None), (rgb, CMYK, None), (gray, GRAY22, GRAY22),
             (gray, P3, None), (np.dstack([rgb, rgb[..., :1]]), P3, P3)]
    for image, profile, embedded in cases:
        path = tmp_path / f"out{suffix}"
        write_image(path, image, icc_profile=profile, bit_depth=bit_depth)
        with Image.open(path) as img:
            assert img.info.get("icc_profile") == embedded, (image.shape, profile[16:20])


# ------------------------------------------------------------------ the edits
def _invoke(args):
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def hole(tmp_path):
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[20:28, 30:40] = 255
    path = tmp_path / "hole.png"
    Image.fromarray(mask).save(path)
    return path, mask > 0


def test_inpaint_keeps_a_p3_photo_in_p3(tmp_path, hole):
    u8 = _photo()
    path = _save(tmp_path / "p3.png", u8, P3)
    out = tmp_path / "out.png"
    info = _invoke(["inpaint", str(path), "--mask", str(hole[0]), "-o", str(out)])
    assert info["icc_profile"] is True
    with Image.open(out) as written:
        assert written.info.get("icc_profile") == P3
        pixels = np.asarray(written)
    assert np.array_equal(pixels[~hole[1]], u8[~hole[1]])  # values as stored: still P3


@pytest.mark.parametrize("command", ["inpaint", "cutout", "refocus"])
def test_edits_of_cmyk_and_gray_files_write_srgb_without_their_profile(tmp_path, hole, command):
    rgb = _photo()
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(cmyk, quality=95, icc_profile=CMYK)
    gray = _save(tmp_path / "gray.png", rgb[..., 0], GRAY22)
    depth = tmp_path / "depth.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))).save(depth)
    for source in (cmyk, gray):
        out = tmp_path / f"{command}_{source.stem}.png"
        extra = {"inpaint": ["--mask", str(hole[0])], "cutout": ["--rect", "8,8,40,30"],
                 "refocus": ["--depth", str(depth), "--focus-depth", "0.5"]}[command]
        info = _invoke([command, str(source), *extra, "-o", str(out)])
        assert info["icc_profile"] is False
        with Image.open(out) as written:
            assert written.info.get("icc_profile") is None
        if command == "inpaint":
            expected = open_image(source).pixels_uint8
            if expected is None:
                expected = np.round(open_image(source).pixels * 255).astype(np.uint8)
            written_pixels = np.asarray(Image.open(out).convert("RGB"))
            assert np.abs(written_pixels[~hole[1]].astype(int) - expected[~hole[1]]).max() <= 1


def test_cutout_keeps_a_p3_profile(tmp_path):
    path = _save(tmp_path / "p3.png", _photo(), P3)
    out = tmp_path / "cut.png"
    info = _invoke(["cutout", str(path), "--rect", "8,8,40,30", "-o", str(out)])
    assert info["icc_profile"] is True
    with Image.open(out) as written:
        assert written.mode == "RGBA" and written.info.get("icc_profile") == P3


def test_refocus_keeps_a_p3_photo_in_p3(tmp_path):
    u8 = _photo()
    path = _save(tmp_path / "p3.png", u8, P3)
    depth = tmp_path / "depth.png"
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(depth)  # all in focus
    out = tmp_path / "out.png"
    info = _invoke(["refocus", str(path), "--depth", str(depth), "--focus-depth", "0",
                    "-o", str(out)])
    assert info["icc_profile"] is True
    with Image.open(out) as written:
        assert written.info.get("icc_profile") == P3
        assert np.abs(np.asarray(written).astype(int) - u8).max() <= 1  # P3 values kept


# ------------------------------------------------------------------ the scan
def _found(path):
    return FoundFile(path=str(path), relpath=path.name.encode(), size=path.stat().st_size,
                     mtime_ns=0)


def test_scan_sees_profiles(tmp_path):
    assert ANALYSIS_VERSION >= 5
    u8 = _photo(size=(96, 128))
    srgb = analyze_file(_found(_save(tmp_path / "srgb.png", u8, LCMS_SRGB)), 640)
    plain = analyze_file(_found(_save(tmp_path / "plain.png", u8)), 640)
    pro = analyze_file(_found(_save(tmp_path / "pro.png", u8, PROPHOTO)), 640)
    assert srgb.pixel_hash == plain.pixel_hash  # same colours: still exact duplicates
    assert pro.pixel_hash != srgb.pixel_hash  # same numbers, other colours: not duplicates
    assert pro.scores["colorfulness"] > srgb.scores["colorfulness"] * 1.1
    thumb = cv2.imdecode(np.frombuffer(pro.thumbnail, np.uint8), cv2.IMREAD_COLOR_RGB)
    converted = open_image(tmp_path / "pro.png", resample="box").pixels
    assert abs(thumb.mean() / 255 - converted.mean()) < 0.02
