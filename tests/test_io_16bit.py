"""16 bits per channel: reading 16-bit PNG and TIFF files, writing them, and edits
of 16-bit photos that stay 16-bit.

The 16-bit files read here are written by OpenCV and Pillow directly, not by
boda, so reading and writing are tested apart; round trips test both.
"""

from __future__ import annotations

import functools
import json
import struct
import zlib

import cv2
import icc_profiles
import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from boda import io as boda_io
from boda.cli import app
from boda.errors import ImageReadError, InvalidParameterError
from boda.io import open_image, read_image, write_image

H, W = 120, 160  # 19200 pixels: room for more than 16000 distinct values per channel
LEVELS = 16000


def _deep(channels: int, seed: int = 0) -> np.ndarray:
    """uint16 ``(H, W)`` or ``(H, W, channels)`` with ~19000 distinct values per channel."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 65535, H * W).round().astype(np.uint16)
    planes = [rng.permutation(ramp).reshape(H, W) for _ in range(max(channels, 1))]
    if channels == 4:  # alpha: opaque, transparent and everything between
        planes[3] = np.linspace(0, 65535, W).round().astype(np.uint16)[None].repeat(H, 0)
    return planes[0] if channels == 0 else np.stack(planes, axis=2)


def _smooth8(channels: int) -> np.ndarray:
    """A uint8 photo-like image (smooth, so resizes compare closely), RGB or RGBA."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = [128 + 100 * np.sin(x / 17 + k) * np.cos(y / 23 - k) for k in range(3)]
    if channels == 4:
        rgb.append(255 * x / (W - 1))
    return np.stack(rgb, axis=2).round().clip(0, 255).astype(np.uint8)


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return rgb[:, :, [2, 1, 0, 3][: rgb.shape[2]]]


def _save16(path, pixels: np.ndarray) -> None:
    """Write uint16 gray/RGB/RGBA ``pixels`` as a 16-bit PNG or TIFF without boda."""
    if pixels.ndim == 2:
        Image.fromarray(pixels).save(path)
    else:
        assert cv2.imwrite(str(path), _bgr(pixels))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _with_png_exif(data: bytes, orientation: int, after_image: bool) -> bytes:
    """PNG ``data`` with an eXIf chunk (EXIF orientation) before or after the image data."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    chunk = _chunk(b"eXIf", exif.tobytes())
    if after_image:
        return data[:-12] + chunk + data[-12:]  # just before IEND
    end_of_ihdr = 8 + 12 + int.from_bytes(data[8:12], "big")
    return data[:end_of_ihdr] + chunk + data[end_of_ihdr:]


def _with_tiff_orientation(data: bytes, orientation: int) -> bytes:
    """OpenCV's TIFF ``data`` (which has no Orientation tag) with one: a copy of its
    first directory, with the tag, appended and pointed at by the header."""
    order = "<" if data[:2] == b"II" else ">"
    first = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[first : first + 2])[0]
    entries = [data[first + 2 + 12 * i : first + 14 + 12 * i] for i in range(count)]
    entries.append(struct.pack(order + "HHIHH", 274, 3, 1, orientation, 0))
    entries.sort(key=lambda entry: struct.unpack(order + "H", entry[:2])[0])
    out = data + b"\0" * (len(data) % 2)
    directory = len(out)
    out += struct.pack(order + "H", len(entries)) + b"".join(entries) + b"\0\0\0\0"
    return out[:4] + struct.pack(order + "I", directory) + out[8:]


def _raw(path) -> np.ndarray:
    """The samples of a written file as stored, RGB(A) order."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return pixels if pixels.ndim == 2 else _bgr(pixels)


def _over_white(rgba16: np.ndarray) -> np.ndarray:
    rgba = rgba16.astype(np.float64) / 65535
    return rgba[:, :, :3] * rgba[:, :, 3:] + (1 - rgba[:, :, 3:])


#: A gray profile with the sRGB tone curve (parametricCurveType 3), made by hand.
_GRAY_SRGB_ICC = icc_profiles.gray_profile(icc_profiles.SRGB_CURVE, "gray sRGB curve (boda test)")


@functools.cache
def _srgb_icc() -> bytes:
    # Cached: a new profile holds its creation time, so two calls can differ.
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _levels(pixels: np.ndarray) -> int:
    return min(len(np.unique(pixels[..., c])) for c in range(pixels.shape[2]))


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [3, 4])
def test_read_16bit_colour_keeps_precision(tmp_path, suffix, channels):
    data = _deep(channels)
    path = tmp_path / f"deep{suffix}"
    _save16(path, data)
    decoded = open_image(path)
    assert decoded.pixels.dtype == np.float32 and decoded.pixels.shape == (H, W, 3)
    assert decoded.pixels_uint8 is None
    assert decoded.has_alpha is (channels == 4)
    expected = data / 65535.0 if channels == 3 else _over_white(data)
    assert np.abs(decoded.pixels - expected).max() <= 1 / 65535
    opaque = decoded.pixels if channels == 3 else decoded.pixels[:, -W // 4 :]
    assert _levels(opaque) >= LEVELS * (1 if channels == 3 else 0.2)
    assert np.array_equal(read_image(path), decoded.pixels)


def test_read_16bit_gray_alpha_and_transparent_colour_png(tmp_path):
    # 16-bit gray + alpha (colour type 4) and RGB with a tRNS colour: Pillow reads both as
    # 8-bit RGBA/RGB; boda composites them over white at 16 bits.
    gray_alpha = np.stack([_deep(0), _deep(4)[:, :, 3]], axis=2)
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in gray_alpha)
    header = struct.pack(">IIBBBBB", W, H, 16, 4, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows))
    (tmp_path / "la.png").write_bytes(png + _chunk(b"IEND", b""))
    decoded = open_image(tmp_path / "la.png")
    assert decoded.bit_depth == 16 and decoded.has_alpha
    expected = _over_white(np.dstack([gray_alpha[:, :, :1].repeat(3, 2), gray_alpha[:, :, 1:]]))
    assert np.abs(decoded.pixels - expected).max() <= 1 / 65535

    rgb = _deep(3)
    rgb[5, 7] = (1000, 2000, 3000)
    data = cv2.imencode(".png", _bgr(rgb))[1].tobytes()
    end_of_ihdr = 8 + 25
    trns = _chunk(b"tRNS", struct.pack(">HHH", 1000, 2000, 3000))
    (tmp_path / "trns.png").write_bytes(data[:end_of_ihdr] + trns + data[end_of_ihdr:])
    decoded = open_image(tmp_path / "trns.png")
    assert decoded.bit_depth == 16 and decoded.has_alpha
    assert np.array_equal(decoded.pixels[5, 7], [1, 1, 1])
    others = np.ones((H, W), bool)
    others[5, 7] = False
    assert np.abs(decoded.pixels[others] - rgb[others] / 65535.0).max() <= 1 / 65535


#: EXIF orientations 2-8 as numpy turns (checked against Pillow's on 8-bit files below).
TURN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _deepen(small: np.ndarray) -> np.ndarray:
    """The uint8 ``small`` at 16 bits, with low bits 8-bit files cannot hold (< 0.5 level)."""
    low = (np.arange(small.size) * 37 % 128).reshape(small.shape)
    return np.minimum(small.astype(np.int32) * 257 + low, 65535).astype(np.uint16)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("after_image", [False, True])
def test_16bit_exif_orientation_applied_like_8bit(tmp_path, orientation, after_image):
    small = _smooth8(3)
    deep = _deepen(small)  # the same picture at 16 bits
    for name, pixels in (("a8.png", small), ("a16.png", deep)):
        data = cv2.imencode(".png", _bgr(pixels))[1].tobytes()
        (tmp_path / name).write_bytes(_with_png_exif(data, orientation, after_image))
    eight, sixteen = open_image(tmp_path / "a8.png"), open_image(tmp_path / "a16.png")
    assert sixteen.original_size == eight.original_size
    assert sixteen.pixels.shape == eight.pixels.shape
    np.testing.assert_allclose(eight.pixels, TURN[orientation](small) / 255.0, atol=1e-6)
    np.testing.assert_allclose(sixteen.pixels, TURN[orientation](deep) / 65535.0, atol=1e-6)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_16bit_exif_orientation_in_tiff(tmp_path, orientation):
    small = _smooth8(3)
    deep = _deepen(small)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(small).save(tmp_path / "o8.tif", exif=exif)
    data = cv2.imencode(".tiff", _bgr(deep))[1].tobytes()
    (tmp_path / "o16.tif").write_bytes(_with_tiff_orientation(data, orientation))
    for options in ({}, {"max_side": 80}):
        eight = open_image(tmp_path / "o8.tif", **options)
        sixteen = open_image(tmp_path / "o16.tif", **options)
        assert sixteen.pixels.shape == eight.pixels.shape
        assert sixteen.original_size == eight.original_size
        width, height = sixteen.original_size  # the oriented size, as the pixels are
        assert width * sixteen.pixels.shape[0] == height * sixteen.pixels.shape[1]
        # Pillow resizes 8-bit pixels in fixed point, rounded to whole levels.
        assert np.abs(sixteen.pixels - eight.pixels).max() <= 1.5 / 255
    expected = TURN[orientation](deep) / 65535.0
    np.testing.assert_allclose(read_image(tmp_path / "o16.tif"), expected, atol=1e-6)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_alpha_composited_like_8bit(tmp_path, suffix):
    small = _smooth8(4)
    deep = _deepen(small)
    Image.fromarray(small).save(tmp_path / f"a8{suffix}")
    _save16(tmp_path / f"a16{suffix}", deep)
    eight, sixteen = open_image(tmp_path / f"a8{suffix}"), open_image(tmp_path / f"a16{suffix}")
    assert eight.has_alpha and sixteen.has_alpha
    # Pillow composites in 8-bit integers; the 16-bit composite is exact.
    assert np.abs(sixteen.pixels - eight.pixels).max() <= 1.5 / 255
    np.testing.assert_allclose(sixteen.pixels, _over_white(deep), atol=1e-6)
    assert sixteen.pixels[:, 0].min() > 0.99  # (nearly) transparent: white


def _float_resize(pixels: np.ndarray, size: tuple[int, int], resample: str) -> np.ndarray:
    """Pillow's filter applied to each channel in float (mode F), as a reference."""
    filters = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX,
               "bilinear": Image.Resampling.BILINEAR}
    return np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[:, :, c], np.float32)).resize(
            size, filters[resample], reducing_gap=3.0))
        for c in range(pixels.shape[2])
    ], axis=2).clip(0, 1)


@pytest.mark.parametrize("resample", ["lanczos", "box", "bilinear"])
@pytest.mark.parametrize("gray", [False, True])
def test_16bit_max_side_and_gray_like_8bit(tmp_path, resample, gray):
    small = _smooth8(3)
    deep = _deepen(small)
    Image.fromarray(small).save(tmp_path / "a8.png")
    _save16(tmp_path / "a16.png", deep)
    options = {"max_side": 64, "gray": gray, "resample": resample}
    eight = open_image(tmp_path / "a8.png", **options)
    sixteen = open_image(tmp_path / "a16.png", **options)
    assert sixteen.pixels_uint8 is None
    assert sixteen.pixels.shape == eight.pixels.shape == ((48, 64) if gray else (48, 64, 3))
    assert sixteen.pixels.dtype == np.float32
    assert 0.0 <= sixteen.pixels.min() and sixteen.pixels.max() <= 1.0
    # Pillow resizes 8-bit pixels in fixed point, rounded to whole levels; the 16-bit
    # ones are resized in float.
    assert np.abs(sixteen.pixels - eight.pixels).max() <= 1.5 / 255
    expected = _float_resize(deep / 65535.0, (64, 48), resample)
    if gray:
        expected = expected @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(sixteen.pixels, expected, atol=1e-5)


def test_decoded_bit_depth(tmp_path, kodak_paths):
    for channels in (0, 3, 4):
        for suffix in (".png", ".tif"):
            _save16(tmp_path / f"deep{suffix}", _deep(channels))
            assert open_image(tmp_path / f"deep{suffix}").bit_depth == 16
    Image.fromarray(_smooth8(4)).save(tmp_path / "rgba8.png")
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "float.tif")
    assert open_image(tmp_path / "rgba8.png").bit_depth == 8
    assert open_image(kodak_paths[0]).bit_depth == 8
    assert open_image(tmp_path / "float.tif").bit_depth == 32


def test_16bit_max_side_keeps_precision(tmp_path):
    y, x = np.mgrid[0:H, 0:W]
    ramp = ((x * H + y) * (65535 / (H * W))).astype(np.uint16)
    _save16(tmp_path / "ramp.tif", np.stack([ramp, ramp[::-1], ramp[:, ::-1]], axis=2))
    small = read_image(tmp_path / "ramp.tif", max_side=140)
    assert small.shape == (105, 140, 3)
    assert _levels(small) > 5 * 256


def test_16bit_gray_option(tmp_path):
    data = _deep(3)
    _save16(tmp_path / "deep.png", data)
    gray = read_image(tmp_path / "deep.png", gray=True)
    luma = data.astype(np.float64) @ [0.299, 0.587, 0.114] / 65535
    assert gray.shape == (H, W) and np.abs(gray - luma).max() <= 1 / 65535
    assert len(np.unique(gray)) >= LEVELS


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_broken_16bit_file_is_an_image_read_error(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    _save16(path, _deep(3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert err.value.path == path
    with pytest.raises(ImageReadError, match="limit"):
        _save16(path, _deep(3))
        read_image(path, max_pixels=H * W - 1)


def _damaged_pngs(tmp_path, pixels: np.ndarray) -> dict[str, object]:
    """PNGs of ``pixels`` that make libpng talk, with what open_image should give:
    the pixels (read as the whole file is) or an ImageReadError."""
    data = cv2.imencode(".png", _bgr(pixels))[1].tobytes()
    header_end = 8 + 25
    at = data.find(b"IDAT") - 4
    length = int.from_bytes(data[at : at + 4], "big")
    body = bytearray(data[at + 8 : at + 8 + length])
    flipped = bytearray(data)
    flipped[at + 8 + length // 2] ^= 0xFF  # a disk error: the chunk's CRC no longer matches
    body[20:60] = bytes(40)  # the same damage with the CRC recomputed (a crafted file)
    crafted = data[:at] + _chunk(b"IDAT", bytes(body)) + data[at + 12 + length :]
    junk = (  # libpng: "iCCP: too short"
        _chunk(b"iCCP", b"bad\0\0" + zlib.compress(b"x" * 200))
        + _chunk(b"tEXt", b"Comment\0made by hand")
    )
    files = {
        "iccp.png": data[:header_end] + junk + data[header_end:],
        "truncated.png": data[: len(data) // 2],
        "crc.png": bytes(flipped),
        "crafted.png": crafted,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return {"iccp.png": pixels, "truncated.png": ImageReadError, "crc.png": ImageReadError,
            "crafted.png": ImageReadError}


@pytest.mark.parametrize("deep", [True, False], ids=["16-bit", "8-bit"])
@pytest.mark.parametrize("threads", [False, True], ids=["alone", "other threads"])
def test_damaged_pngs_put_no_libpng_line_on_stderr(tmp_path, monkeypatch, capfd, deep,
                                                   threads):
    """libpng (inside OpenCV, which decodes 16-bit PNGs) prints its warnings and errors
    to descriptor 2, through a scan's progress bar, whatever OpenCV's log level: a bad
    colour profile is told in color_warning, a damaged file in the ImageReadError."""
    pixels = _deep(3) if deep else _smooth8(3)
    expected = _damaged_pngs(tmp_path, pixels)
    # With other threads alive descriptor 2 is not caught: nothing may reach libpng then
    # that would make it talk (but the crafted file, which a scan worker catches).
    monkeypatch.setattr(boda_io._QUIET, "available", lambda: not threads)
    capfd.readouterr()
    for name, outcome in expected.items():
        if threads and name == "crafted.png":
            continue
        if outcome is ImageReadError:
            with pytest.raises(ImageReadError):
                open_image(tmp_path / name)
            continue
        decoded = open_image(tmp_path / name)
        assert decoded.bit_depth == (16 if deep else 8)
        scale = 65535.0 if deep else 255.0
        assert np.abs(decoded.pixels - outcome / scale).max() <= 0.5 / scale
        assert "ICC profile cannot be used" in decoded.color_warning
    assert "libpng" not in capfd.readouterr().err


def test_8bit_reads_unchanged(kodak_paths):
    # The 8-bit paths equal Pillow's own decode (and resize), as before 16-bit support.
    for path in kodak_paths[:3]:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            expected = np.asarray(rgb)
            small = np.asarray(rgb.resize((200, 200), Image.Resampling.LANCZOS, reducing_gap=3.0))
        decoded = open_image(path)
        assert np.array_equal(decoded.pixels_uint8, expected)
        assert np.array_equal(decoded.pixels, expected.astype(np.float32) / np.float32(255))
        assert np.array_equal(read_image(path, max_side=200), small / np.float32(255))
        luma = (expected / np.float32(255)) @ np.array([0.299, 0.587, 0.114], np.float32)
        assert np.array_equal(read_image(path, gray=True), luma)


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_uint16_round_trip_keeps_16_bits(tmp_path, suffix, channels):
    data = _deep(channels)
    path = write_image(tmp_path / f"deep{suffix}", data)  # uint16: 16 bits by default
    assert np.array_equal(_raw(path), data)
    pixels = read_image(path)
    if channels == 0:
        expected = np.repeat(data[:, :, None] / 65535.0, 3, axis=2)
    else:
        expected = data / 65535.0 if channels == 3 else _over_white(data)
    assert np.abs(pixels - expected).max() <= 1 / 65535
    columns = slice(None) if channels != 4 else slice(-W // 4, None)
    assert _levels(pixels[:, columns]) >= LEVELS * (1 if channels != 4 else 0.2)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_bit_depth_16_from_float_and_uint8(tmp_path, suffix, channels):
    values = _deep(channels).astype(np.float32) / 65535 + np.float32(0.3 / 65535)
    path = write_image(tmp_path / f"f{suffix}", values, bit_depth=16)
    assert _raw(path).dtype == np.uint16
    assert np.array_equal(_raw(path), np.round(values.astype(np.float64) * 65535))
    small = _smooth8(4)[:, :, : channels or 1].squeeze()
    path = write_image(tmp_path / f"u8{suffix}", small, bit_depth=16)
    assert np.array_equal(_raw(path), small.astype(np.uint16) * 257)


def test_default_bit_depth_is_8_for_float_and_8bit_formats(tmp_path):
    values = _deep(3).astype(np.float32) / 65535
    with Image.open(write_image(tmp_path / "f.png", values)) as img:
        assert img.mode == "RGB" and img.tile[0][3] == "RGB"  # 8 bits per channel
    with Image.open(write_image(tmp_path / "u16.png", _deep(3), bit_depth=8)) as img:
        assert img.tile[0][3] == "RGB"
    with Image.open(write_image(tmp_path / "u16.jpg", _deep(3))) as img:
        assert img.format == "JPEG" and img.mode == "RGB"
    can = boda_io.can_write_16_bit
    assert can("a.PNG") and can("a.tif") and can("a.tiff")
    assert not can("a.jpg") and not can("a.webp") and not can("no_extension")


@pytest.mark.parametrize("name", ["out.jpg", "out.webp", "out.bmp"])
def test_bit_depth_16_refused_for_8bit_formats(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(InvalidParameterError) as err:
        write_image(path, _deep(3), bit_depth=16)
    message = str(err.value)
    assert str(path) in message and "PNG" in message and "TIFF" in message
    assert not path.exists()
    with pytest.raises(InvalidParameterError, match="bit_depth"):
        write_image(tmp_path / "a.png", _deep(3), bit_depth=12)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_16bit_files_keep_icc_profile(tmp_path, suffix, channels):
    # Gray files get a gray profile: write_image drops an RGB one from them (test_io_icc).
    icc = _srgb_icc() if channels else _GRAY_SRGB_ICC
    data = _deep(channels)
    path = write_image(tmp_path / f"icc{suffix}", data, icc_profile=icc)
    with Image.open(path) as img:
        assert img.info.get("icc_profile") == icc
        img.load()  # the file stays valid for Pillow
    assert np.array_equal(_raw(path), data)
    decoded = open_image(path)
    assert decoded.bit_depth == 16
    # An RGB profile comes back; a gray one never does (gray profiles are converted,
    # here with the sRGB curve: the pixels stay as they are).
    assert decoded.icc_profile == (icc if channels else None)


def test_16bit_rgba_tiff_marks_its_alpha(tmp_path):
    path = write_image(tmp_path / "a.tif", _deep(4))
    assert _raw(path).dtype == np.uint16
    with Image.open(path) as img:
        assert img.mode == "RGBA" and img.tag_v2.get(338) == (2,)  # unassociated alpha


# --------------------------------------------------------------------------- edits


@pytest.fixture
def photo16(tmp_path):
    """A smooth 16-bit RGB PNG with an sRGB profile, and a mask with a hole."""
    y, x = np.mgrid[0:H, 0:W]
    smooth = np.stack([x * 409 + y, y * 546 + x, (W - 1 - x) * 409 + (H - 1 - y)], axis=2)
    data = np.clip(smooth, 0, 65535).astype(np.uint16)
    path = write_image(tmp_path / "photo16.png", data, icc_profile=_srgb_icc())
    hole = np.zeros((H, W), np.uint8)
    hole[40:60, 50:80] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    return path, tmp_path / "mask.png", data


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_cli_inpaint_16bit_png_writes_16bit(tmp_path, photo16, suffix):
    path, mask, data = photo16
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(
        app, ["inpaint", str(path), "-m", str(mask), "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["icc_profile"] is True
    written = _raw(out)
    assert written.dtype == np.uint16 and written.shape == data.shape
    keep = np.asarray(Image.open(mask)) == 0
    assert np.abs(written[keep].astype(int) - data[keep]).max() <= 1
    assert _levels(written / 65535.0) >= 10000
    with Image.open(out) as img:
        assert img.info.get("icc_profile") == _srgb_icc()


def test_cli_inpaint_8bit_and_jpeg_outputs_stay_8bit(tmp_path, photo16):
    path, mask, _ = photo16
    out = tmp_path / "out.jpg"
    result = CliRunner().invoke(app, ["inpaint", str(path), "-m", str(mask), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert _raw(out).dtype == np.uint8
    Image.fromarray(_smooth8(3)).save(tmp_path / "photo8.png")
    out = tmp_path / "out8.png"
    args = ["inpaint", str(tmp_path / "photo8.png"), "-m", str(mask), "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _raw(out).dtype == np.uint8


def test_cli_cutout_16bit_png_writes_16bit_rgba(tmp_path, photo16):
    path, _, _ = photo16
    out = tmp_path / "cut.png"
    result = CliRunner().invoke(
        app, ["cutout", str(path), "--rect", "30,20,100,80", "-o", str(out), "--iterations", "2"]
    )
    assert result.exit_code == 0, result.output
    written = _raw(out)
    assert written.dtype == np.uint16 and written.shape == (H, W, 4)


def test_cli_refocus_16bit_png_writes_16bit(tmp_path, photo16):
    path, _, data = photo16
    depth = np.linspace(0, 255, W, dtype=np.float32)[None].repeat(H, 0).astype(np.uint8)
    Image.fromarray(depth).save(tmp_path / "depth.png")
    out = tmp_path / "refocused.png"
    args = ["refocus", str(path), "--depth", str(tmp_path / "depth.png"), "--focus-depth",
            "0.5", "--aperture", "3", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = _raw(out)
    assert written.dtype == np.uint16 and written.shape == data.shape



def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "TestCam", 6
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"
    return exif


def _check_exif(path) -> None:
    written = Image.open(path).getexif()
    assert written.get(0x0112) == 1 and written.get(0x010F) == "TestCam"
    assert written.get_ifd(0x8769).get(0x9003) == "2024:01:02 03:04:05"


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_edits_keep_the_photos_exif_with_orientation_reset(tmp_path, suffix):
    from boda.cli import app

    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(
        photo, exif=_camera_exif().tobytes()
    )
    decoded = open_image(photo)
    assert decoded.pixels.shape == (60, 40, 3)  # turned by the orientation
    back = Image.Exif()
    back.load(decoded.exif)
    assert back[0x0112] == 1 and back[0x010F] == "TestCam"
    mask = tmp_path / "hole.png"
    hole = np.zeros((60, 40), np.float32)
    hole[20:30, 10:20] = 1.0
    write_image(mask, hole)
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(app, ["inpaint", str(photo), "-m", str(mask), "-o", str(out)])
    assert result.exit_code == 0, result.output
    _check_exif(out)
    assert Image.open(out).size == (40, 60)  # not turned a second time by a viewer


def test_16bit_png_keeps_exif(tmp_path):
    exif = _camera_exif()
    exif[0x0112] = 1  # as DecodedImage.exif gives it
    out = write_image(tmp_path / "deep.png", np.zeros((8, 8, 3), np.uint16), exif=exif.tobytes())
    _check_exif(out)
    assert open_image(out).bit_depth == 16
