"""boda.io.read_image: modes, orientation, draft decoding, limits and failures."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageCms

from boda.core.image import as_float_image, to_gray
from boda.errors import ImageReadError, InvalidImageError, OutputError
from boda.io import encode_jpeg, open_image, read_image, write_image


@pytest.fixture
def gradient_rgb() -> np.ndarray:
    """A 60x90 uint8 image whose every pixel is distinct enough to track rotations."""
    y, x = np.mgrid[0:60, 0:90]
    return np.stack([x * 2, y * 4, (x + y) % 256], axis=2).astype(np.uint8)


def test_png_rgb_round_trip(tmp_path, gradient_rgb):
    path = tmp_path / "a.png"
    Image.fromarray(gradient_rgb).save(path)
    img = read_image(path)
    assert img.dtype == np.float32 and img.shape == (60, 90, 3)
    np.testing.assert_allclose(img, gradient_rgb / 255.0, atol=1e-7)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_applied(tmp_path, gradient_rgb, orientation):
    path = tmp_path / "o.png"
    pil = Image.fromarray(gradient_rgb)
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.save(path, exif=exif)
    decoded = open_image(path)
    # Orientation 3 = rotate 180, 6 = rotate 90 CW to display, 8 = 90 CCW.
    expected = {
        1: gradient_rgb,
        3: np.rot90(gradient_rgb, 2),
        6: np.rot90(gradient_rgb, -1),
        8: np.rot90(gradient_rgb, 1),
    }[orientation]
    np.testing.assert_allclose(decoded.pixels, expected / 255.0, atol=1e-7)
    assert decoded.original_size == (expected.shape[1], expected.shape[0])


def test_rgba_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 0  # top half fully transparent
    rgba[2:, :, 3] = 255
    rgba[3, 3, 3] = 128  # half-transparent red over white -> (1, ~0.5, ~0.5)
    path = tmp_path / "t.png"
    Image.fromarray(rgba, "RGBA").save(path)
    decoded = open_image(path)
    assert decoded.has_alpha
    np.testing.assert_allclose(decoded.pixels[0, 0], [1, 1, 1])
    np.testing.assert_allclose(decoded.pixels[2, 0], [1, 0, 0])
    np.testing.assert_allclose(decoded.pixels[3, 3], [1, 127 / 255, 127 / 255], atol=1 / 255)


def test_palette_and_palette_transparency(tmp_path, gradient_rgb):
    pal = Image.fromarray(gradient_rgb).quantize(16)
    path = tmp_path / "p.png"
    pal.save(path)
    img = read_image(path)
    np.testing.assert_allclose(img, np.asarray(pal.convert("RGB")) / 255.0, atol=1e-7)
    pal.save(path, transparency=0)
    transparent = np.asarray(pal) == 0
    img = read_image(path)
    assert transparent.any()
    np.testing.assert_allclose(img[transparent], 1.0)


def test_gray_modes_and_la(tmp_path):
    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).astype(np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    img = read_image(tmp_path / "l.png")
    assert img.shape == (8, 8, 3)
    np.testing.assert_allclose(img[..., 1], gray / 255.0, atol=1e-7)
    assert read_image(tmp_path / "l.png", gray=True).shape == (8, 8)
    la = Image.merge("LA", [Image.fromarray(gray), Image.fromarray(np.zeros_like(gray))])
    la.save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image(tmp_path / "la.png"), 1.0)
    Image.fromarray(gray > 100).save(tmp_path / "one.png")
    np.testing.assert_array_equal(read_image(tmp_path / "one.png", gray=True), gray > 100)


def test_16bit_gray_keeps_precision(tmp_path):
    values = np.arange(0, 65536, 257 * 3 + 1, dtype=np.uint16)[:64].reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "g16.png")
    decoded = open_image(tmp_path / "g16.png", gray=True)
    assert decoded.mode.startswith("I")
    np.testing.assert_allclose(decoded.pixels, values / 65535.0, atol=1e-6)


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (10, 10), (0, 255, 255, 0))  # pure red in naive CMYK
    cmyk.save(tmp_path / "c.jpg", quality=100)
    img = read_image(tmp_path / "c.jpg")
    assert img.shape == (10, 10, 3)
    assert img[..., 0].mean() > 0.9 and img[..., 1].mean() < 0.1


def test_max_side_with_jpeg_draft(tmp_path, kodak_rgb):
    path = tmp_path / "k.jpg"
    write_image(path, kodak_rgb, quality=95)
    full = read_image(path)
    small = open_image(path, max_side=125)
    assert max(small.pixels.shape[:2]) == 125
    assert small.original_size == (full.shape[1], full.shape[0])
    reference = np.asarray(
        Image.fromarray((full * 255).round().astype(np.uint8)).resize(
            small.pixels.shape[1::-1], Image.Resampling.LANCZOS
        )
    ) / 255.0
    # DCT-domain draft scaling then Lanczos differs a little from a full decode + Lanczos.
    assert np.abs(small.pixels - reference).mean() < 0.02
    # never upscaled
    assert read_image(path, max_side=4000).shape == full.shape


def test_decompression_bomb_guard(tmp_path):
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(tmp_path / "big.png", max_pixels=10_000)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (os.urandom(2048), "not a recognised image"),
    ],
)
def test_bad_bytes(tmp_path, content, match):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(path)
    assert info.value.path == path
    assert "bad.jpg" in str(info.value)


def test_truncated_jpeg(tmp_path, kodak_rgb):
    path = tmp_path / "trunc.jpg"
    write_image(path, kodak_rgb)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)


def test_files_cut_at_different_lengths_share_one_reason(tmp_path, kodak_rgb):
    """The reason is what the report, serve and the scan console group by: Pillow's
    count of the bytes it did not process is left out of it."""
    path = tmp_path / "whole.jpg"
    write_image(path, kodak_rgb)
    data = path.read_bytes()
    reasons = set()
    for k, cut in enumerate((len(data) // 3, len(data) // 2, len(data) - 100)):
        cut_path = tmp_path / f"cut{k}.jpg"
        cut_path.write_bytes(data[:cut])
        with pytest.raises(ImageReadError) as info:
            read_image(cut_path)
        reasons.add(info.value.reason)
    assert reasons == {ImageReadError.TRUNCATED}


def _unreadable_files(root, kodak_rgb) -> dict[str, str]:
    """Files no decoder can read, each with the start of the reason it must give."""
    import struct
    import zlib

    rng = np.random.default_rng(0)
    photo = Image.fromarray((kodak_rgb * 255).round().astype(np.uint8))

    def encoded(fmt, **options):
        import io

        buffer = io.BytesIO()
        photo.save(buffer, fmt, **options)
        return buffer.getvalue()

    def garbled(data, at, n=400):
        data = bytearray(data)
        data[at : at + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        return bytes(data)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    jpeg, png, gif = encoded("JPEG", quality=90), encoded("PNG"), encoded("GIF")
    webp, lzw = encoded("WEBP"), encoded("TIFF", compression="tiff_lzw")
    idat = png.find(b"IDAT")
    bomb = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    files = {
        "zero.jpg": (b"", ImageReadError.EMPTY),
        "random.jpg": (rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
                       "not a recognised image format: its content is no image format"),
        "notes.png": (b"shopping list\n" * 20,
                      "not a recognised image format: this is a text file, not a picture"),
        "page.jpg": (b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
                     "not a recognised image format: this is a web page (HTML)"),
        "invoice.jpg": (b"%PDF-1.7\n" + bytes(300),
                        "not a recognised image format: this is a PDF document"),
        "cut.jpg": (jpeg[: len(jpeg) // 2], ImageReadError.TRUNCATED),
        "cut header.jpg": (jpeg[:300], ImageReadError.TRUNCATED),
        "cut.png": (png[: len(png) // 2], ImageReadError.TRUNCATED),
        "cut header.png": (png[:20], ImageReadError.TRUNCATED),
        "cut.gif": (gif[: len(gif) // 2], ImageReadError.TRUNCATED),
        "cut.webp": (webp[: len(webp) // 2], ImageReadError.TRUNCATED),
        "cut.tif": (lzw[: len(lzw) // 2], "damaged TIFF file: it begins as one, but its header"),
        "crc.png": (garbled(png, idat + 100, 40), "damaged PNG data: the decoder stopped"),
        "garbage.gif": (garbled(gif, len(gif) // 3), "damaged GIF data: the decoder stopped"),
        "garbage.tif": (garbled(lzw, len(lzw) // 3), "damaged TIFF data: the decoder stopped"),
        "bomb.png": (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bomb)
                     + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b""),
                     "too many pixels to open safely: 400000000 pixels exceeds the limit"),
    }
    for name, (content, _) in files.items():
        (root / name).write_bytes(content)
    return {name: reason for name, (_, reason) in files.items()}


def test_unreadable_files_say_why_in_plain_words(tmp_path, kodak_rgb, monkeypatch, capfd):
    """The reason of a file that cannot be read is what the report, serve and the scan
    show: a sentence naming what is wrong and the way out, never a decoder's raw words
    ("broken data stream when reading image file", "decoder error -2") or a Python
    object ("cannot identify image file <_io.BytesIO object at 0x7f...>").  Nor does a
    decoder print its own words into the terminal meanwhile (as in a scan's workers)."""
    import boda.io as bio
    from boda.scan import analyze_file

    monkeypatch.setattr(bio._QUIET, "available", lambda: True)  # one thread, as a worker
    expected = _unreadable_files(tmp_path, kodak_rgb)
    capfd.readouterr()
    for name, start in expected.items():
        with pytest.raises(ImageReadError) as info:
            read_image(tmp_path / name)
        reason = info.value.reason
        assert reason.startswith(start), (name, reason)
        for raw in ("0x", "object at", "not processed", "broken data stream",
                    "decoder error", "cannot identify", "could not create decoder"):
            assert raw not in reason, (name, reason)
        record = analyze_file(tmp_path / name)  # what a scan stores
        assert record.status == "error" and record.error == reason, name
    assert capfd.readouterr().err == ""  # libtiff: "tempfile.tif: Using code not yet in table"


def test_the_reason_drops_python_reprs_and_byte_counts():
    from pathlib import Path

    from boda._io_reasons import undecodable

    path = Path("x.jpg")
    reason = undecodable(
        path, OSError("cannot read <_io.BytesIO object at 0x7f3a2c1d9e50> (12 bytes not "
                      "processed)"), "JPEG").reason
    assert reason == "cannot decode this JPEG file (cannot read)"
    failing_disk = undecodable(path, OSError(5, "Input/output error"), "JPEG").reason
    assert failing_disk.startswith("the file could not be read (Input/output error")


def test_missing_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_write_image_keeps_icc_and_quality(tmp_path, kodak_rgb):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    high = write_image(tmp_path / "h.jpg", kodak_rgb, quality=95, icc_profile=icc)
    low = write_image(tmp_path / "l.jpg", kodak_rgb, quality=30)
    assert open_image(high).icc_profile == icc
    assert low.stat().st_size < high.stat().st_size
    rgba = np.concatenate([kodak_rgb, np.zeros_like(kodak_rgb[..., :1])], axis=2)
    np.testing.assert_allclose(read_image(write_image(tmp_path / "w.jpg", rgba)), 1.0, atol=0.02)


def test_encode_jpeg_thumbnail(kodak_rgb):
    import io

    data = encode_jpeg(kodak_rgb, max_side=100)
    assert data[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(data)).size == (100, 100)
    # Full size, high quality: the pixels come back, in RGB order (not OpenCV's BGR).
    back = np.asarray(Image.open(io.BytesIO(encode_jpeg(kodak_rgb, quality=95)))) / 255.0
    assert back.shape == kodak_rgb.shape
    assert np.abs(back - kodak_rgb).mean() < 0.01
    np.testing.assert_allclose(back.mean(axis=(0, 1)), kodak_rgb.mean(axis=(0, 1)), atol=0.005)
    gray = np.asarray(Image.open(io.BytesIO(encode_jpeg(kodak_rgb[..., 1], quality=95))))
    assert gray.ndim == 2 and np.abs(gray / 255.0 - kodak_rgb[..., 1]).mean() < 0.01
    rgba = np.zeros((8, 8, 4), np.float32)
    rgba[..., 0] = 1.0  # transparent red: white once composited
    white = np.asarray(Image.open(io.BytesIO(encode_jpeg(rgba))))
    assert white.min() >= 250


def test_as_float_image_contract():
    np.testing.assert_allclose(as_float_image(np.array([[0, 255]], np.uint8)), [[0, 1]])
    np.testing.assert_allclose(as_float_image(np.array([[0, 65535]], np.uint16)), [[0, 1]])
    assert as_float_image(np.zeros((2, 2, 1))).shape == (2, 2)
    for bad in (np.zeros((2, 2, 5)), np.zeros(3), np.zeros((0, 4)), np.zeros((2, 2), np.int64)):
        with pytest.raises(InvalidImageError):
            as_float_image(bad)
    gray = to_gray(np.ones((2, 2, 3), np.float32))
    np.testing.assert_allclose(gray, 1.0, rtol=1e-6)


def test_to_gray_is_rec601_luma_on_every_layout(kodak_rgb):
    """The OpenCV path (contiguous RGB) equals the weighted sum, as does the strided one."""
    want = kodak_rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    for view, ref in ((kodak_rgb, want), (kodak_rgb[:, ::-1], want[:, ::-1]),
                      (kodak_rgb[::3, 1::2], want[::3, 1::2])):  # fmt: skip
        gray = to_gray(view)
        assert gray.dtype == np.float32 and gray.shape == ref.shape
        np.testing.assert_allclose(gray, ref, atol=2e-7)
    u8 = (kodak_rgb * 255).round().astype(np.uint8)
    np.testing.assert_allclose(to_gray(u8), u8.astype(np.float64) / 255 @ [0.299, 0.587, 0.114],
                               atol=2e-7)  # fmt: skip


def test_heic_with_the_optional_extra(tmp_path, kodak_rgb):
    pillow_heif = pytest.importorskip("pillow_heif")
    from boda.io import SUPPORTED_EXTENSIONS, heif_available

    assert heif_available() and ".heic" in SUPPORTED_EXTENSIONS
    pillow_heif.register_heif_opener()
    path = tmp_path / "photo.heic"
    Image.fromarray((kodak_rgb * 255).round().astype(np.uint8)).save(path, quality=95)
    img = read_image(path)
    assert img.shape == kodak_rgb.shape
    assert np.abs(img - kodak_rgb).mean() < 0.03  # lossy, but the same picture


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path, kodak_rgb):
    path = write_image(tmp_path / "locked.png", kodak_rgb)
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_pixels_uint8_are_the_decoded_values(tmp_path, kodak_rgb):
    from boda.duplicates import pixel_hash

    u8 = (kodak_rgb * 255).round().astype(np.uint8)
    Image.fromarray(u8).save(tmp_path / "rgb.jpg", quality=90)
    Image.fromarray(u8[:, :, 1]).save(tmp_path / "gray.png")
    Image.fromarray(u8).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(u8).convert("RGBA").save(tmp_path / "rgba.png")
    for name, max_side in [("rgb.jpg", None), ("rgb.jpg", 200), ("gray.png", None)]:
        decoded = open_image(tmp_path / name, max_side=max_side)
        assert decoded.pixels_uint8 is not None
        expected = decoded.pixels if decoded.pixels_uint8.ndim == 3 else decoded.pixels[:, :, 0]
        np.testing.assert_array_equal(decoded.pixels_uint8 / np.float32(255), expected)
        assert pixel_hash(decoded.pixels_uint8) == pixel_hash(decoded.pixels)
    # converted, composited or reduced to gray: no decoded 8-bit pixels to offer
    assert open_image(tmp_path / "cmyk.jpg").pixels_uint8 is None
    assert open_image(tmp_path / "rgba.png").pixels_uint8 is None
    assert open_image(tmp_path / "rgb.jpg", gray=True).pixels_uint8 is None


# --------------------------------------------------------------------------- JPEG via OpenCV
def _both_decoders(monkeypatch, path, **kwargs):
    """open_image through OpenCV's decoder (forced on) and through Pillow's alone."""
    import boda.io as bio

    monkeypatch.setattr(bio._QUIET, "available", lambda: True)
    before = bio._QUIET.decoded
    fast = open_image(path, **kwargs)
    used = bio._QUIET.decoded - before
    monkeypatch.setattr(bio._QUIET, "available", lambda: False)
    return fast, open_image(path, **kwargs), used


def _assert_same_decode(a, b):
    assert a.pixels.shape == b.pixels.shape
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert (a.original_size, a.mode, a.format) == (b.original_size, b.mode, b.format)
    assert (a.pixels_uint8 is None) == (b.pixels_uint8 is None)
    if a.pixels_uint8 is not None:
        np.testing.assert_array_equal(a.pixels_uint8, b.pixels_uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_opencv_jpeg_equals_pillow_every_orientation(tmp_path, monkeypatch, kodak_rgb,
                                                     orientation):
    pil = Image.fromarray((kodak_rgb[:217, :333] * 255).round().astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    pil.save(path, exif=exif, quality=90)
    for kwargs in ({}, {"gray": True}):
        fast, slow, used = _both_decoders(monkeypatch, path, **kwargs)
        assert used == 1  # OpenCV decoded it: the comparison means something
        _assert_same_decode(fast, slow)


@pytest.mark.parametrize("variant", ["gray", "progressive", "444", "draft"])
def test_opencv_jpeg_equals_pillow_variants(tmp_path, monkeypatch, kodak_rgb, variant):
    pil = Image.fromarray((kodak_rgb * 255).round().astype(np.uint8))
    path = tmp_path / f"{variant}.jpg"
    kwargs = {}
    if variant == "gray":
        pil.convert("L").save(path)
    elif variant == "progressive":
        pil.save(path, progressive=True)
    elif variant == "444":
        pil.save(path, subsampling=0)
    else:  # 1600 px at max_side 400: DCT scale 1/4 gives 400 px, no resize left
        pil.resize((1600, 1600)).save(path)
        kwargs = {"max_side": 400, "resample": "box"}
    fast, slow, used = _both_decoders(monkeypatch, path, **kwargs)
    assert used == 1
    _assert_same_decode(fast, slow)
    if variant == "draft":
        assert fast.pixels.shape == (400, 400, 3) and fast.original_size == (1600, 1600)


def test_opencv_jpeg_leaves_corrupt_files_to_pillow(tmp_path, monkeypatch, kodak_rgb, capfd):
    """libjpeg warns about corrupt data where Pillow stops: such files get Pillow's verdict
    (an image or an ImageReadError), and no libjpeg message reaches the terminal."""
    good = tmp_path / "good.jpg"
    Image.fromarray((kodak_rgb * 255).round().astype(np.uint8)).save(good, quality=90)
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    outcomes = set()
    for i in range(10):  # with this seed, Pillow decodes 7 and rejects 3
        broken = bytearray(data)
        for pos in rng.integers(2000, len(data) - 100, size=60):
            broken[pos] = rng.integers(0, 256)
        path = tmp_path / f"corrupt{i}.jpg"
        path.write_bytes(bytes(broken))
        results = []
        for forced in (True, False):
            import boda.io as bio

            monkeypatch.setattr(bio._QUIET, "available", lambda forced=forced: forced)
            try:
                results.append(open_image(path).pixels)
            except ImageReadError as exc:
                results.append(exc.reason)
        if isinstance(results[0], str):
            assert results[0] == results[1]
            outcomes.add("error")
        else:
            np.testing.assert_array_equal(results[0], results[1])
            outcomes.add("image")
    assert outcomes == {"error", "image"}  # both kinds of corrupt file were exercised
    assert "Corrupt JPEG" not in capfd.readouterr().err


def test_opencv_jpeg_not_used_while_other_threads_run(tmp_path, kodak_rgb):
    import threading

    import boda.io as bio

    path = tmp_path / "a.jpg"
    Image.fromarray((kodak_rgb * 255).round().astype(np.uint8)).save(path)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        before = bio._QUIET.decoded
        open_image(path)
        assert bio._QUIET.decoded == before  # descriptor 2 left alone: Pillow decoded
    finally:
        stop.set()
        thread.join()


def test_opencv_jpeg_sink_is_per_process(tmp_path, monkeypatch, kodak_rgb):
    """A worker forked after the parent decoded must not share the parent's message sink
    (two processes truncating one file could hide a libjpeg warning)."""
    import multiprocessing as mp

    import boda.io as bio

    path = tmp_path / "a.jpg"
    Image.fromarray((kodak_rgb * 255).round().astype(np.uint8)).save(path)
    monkeypatch.setattr(bio._QUIET, "available", lambda: True)
    open_image(path)
    parent_sink = os.fstat(bio._QUIET.sink).st_ino
    with mp.get_context("fork").Pool(1) as pool:
        child_sink = pool.apply(_sink_inode_after_decode, (str(path),))
    assert child_sink != parent_sink


def _sink_inode_after_decode(path: str) -> int:
    import boda.io as bio

    bio._QUIET.available = lambda: True
    open_image(path)
    return os.fstat(bio._QUIET.sink).st_ino


def test_transparent_images_are_composited_before_the_resize(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    index = rng.integers(0, 4, (300, 400)).astype(np.uint8)
    index[100:200, 150:250] = 3  # a transparent block
    palette = Image.fromarray(index, mode="P")
    palette.putpalette([255, 0, 0, 0, 128, 255, 20, 200, 40, 0, 0, 0] + [0] * 756)
    palette.info["transparency"] = 3
    path = tmp_path / "palette.png"
    palette.save(path, transparency=3)
    full = read_image(path)
    assert np.all(full[150, 200] == 1.0)  # transparent -> white
    for resample in ("lanczos", "box"):
        small = read_image(path, max_side=100, resample=resample)
        reference = np.asarray(
            Image.fromarray((full * 255).round().astype(np.uint8)).resize(
                (100, 75), {"lanczos": Image.LANCZOS, "box": Image.BOX}[resample],
                reducing_gap=3.0,
            )
        ) / 255.0
        assert np.abs(small - reference).max() <= 1.5 / 255, resample


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path, monkeypatch):
    import errno

    from boda.io import write_output

    out = tmp_path / "result.png"
    write_image(out, np.full((8, 8, 3), 0.5, np.float32))
    good = out.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OutputError, match="No space left"):
        write_image(out, np.zeros((64, 64, 3), np.float32))
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt))
        write_output(out, b"half")
    monkeypatch.undo()
    assert out.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]  # no .part files


def test_rewrites_keep_permissions_and_write_through_links(tmp_path):
    from boda.io import write_output

    real = tmp_path / "real.csv"
    write_output(real, "a\n")
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_output(link, "b\n")
    assert link.is_symlink() and real.read_text() == "b\n"
    assert real.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.txt"
    write_output(fresh, "x")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("name", ["photo.png", "shot.dng", "depth.npy"])
def test_every_reader_names_file_system_errors_alike(tmp_path, name):
    from boda.edit._depth import read_depth
    from boda.io import image_size

    readers = [open_image, image_size] if name != "depth.npy" else [read_depth]
    folder = tmp_path / name
    folder.mkdir()
    for read in readers:
        with pytest.raises(ImageReadError, match="no such file"):
            read(tmp_path / ("missing-" + name))
        with pytest.raises(ImageReadError, match="is a directory, not a file"):
            read(folder)


def _zlib_levels(png: bytes) -> set[int]:
    """The FLEVEL field (RFC 1950: 0 fastest, 1 fast, 2 default, 3 maximum) of the
    zlib stream in a PNG's first IDAT chunk."""
    import struct

    pos, levels = 8, set()
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            levels.add(png[pos + 9] >> 6)  # the stream's second byte (FLG)
            break
        pos += 12 + length
    return levels


@pytest.mark.parametrize(
    "image, bit_depth",
    [(np.full((40, 50, 3), 0.3, np.float32), None),
     (np.full((40, 50), 0.3, np.float32), 16),
     (np.full((40, 50, 3), 0.3, np.float32), 16)],
    ids=["8-bit RGB", "16-bit gray", "16-bit RGB"],
)
def test_png_files_are_written_at_a_fast_zlib_level(tmp_path, image, bit_depth):
    # level 3 (RFC 1950 FLEVEL 1, "fast"): a third of Pillow's default level 6 CPU
    path = write_image(tmp_path / "x.png", image, bit_depth=bit_depth)
    assert _zlib_levels(path.read_bytes()) == {1}
    back = read_image(path, gray=image.ndim == 2)
    assert np.abs(back - image).max() <= (0.5 / 255 if bit_depth is None else 0.5 / 65535)


def test_a_damaged_exif_block_is_said_not_printed(tmp_path, recwarn):
    """An EXIF IFD that claims 65 535 entries: Pillow warns "Corrupt EXIF data" and
    reads what it can; the read says so in ``exif_warning`` and warns nothing."""
    import io as bytes_io
    import struct

    from PIL import Image

    from boda.io import open_image

    buffer = bytes_io.BytesIO()
    Image.fromarray(np.full((16, 24, 3), 120, np.uint8)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + bytes(6000)
    segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    path = tmp_path / "damaged_exif.jpg"
    path.write_bytes(jpeg[:2] + segment + jpeg[2:])
    decoded = open_image(path)
    assert decoded.pixels.shape == (16, 24, 3)
    assert decoded.exif_warning.startswith("damaged EXIF data partly read (Corrupt EXIF data")
    assert [str(w.message) for w in recwarn] == []
