"""Issue 2 audit, third pass: the items of "boda scan" that no test checked against an
independent reference, or whose regression no test would have caught.

- every EXIF orientation, the mirrored ones too, against Pillow's ``exif_transpose``;
- a file without read permission in a scan (the read-permission test is skipped as root);
- the FFT high-frequency fraction against a full-spectrum computation and known gratings;
- Tong et al.'s edge maxima and counts against the paper's algorithm written out afresh;
- one transaction per batch, the default worker count, the progress bar's rate and ETA;
- every per-image flag's threshold override, and ``boda edges`` against OpenCV.
"""

from __future__ import annotations

import io
import json
import operator
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import pywt
from PIL import Image, ImageOps
from scipy import ndimage
from typer.testing import CliRunner

import boda.scan._pipeline as pipeline
from boda.catalog import Catalog, ImageRecord, default_catalog_path
from boda.cli import app
from boda.core.image import to_gray
from boda.errors import ImageReadError
from boda.io import image_size, open_image, read_image, write_image
from boda.quality import fft_high_frequency, tong_blur
from boda.quality._tong import edge_maxima
from boda.report import render_html
from boda.scan import default_workers, scan

runner = CliRunner()


# -- read_image: EXIF orientation -------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_equals_pillows_exif_transpose(tmp_path, kodak_rgb, orientation):
    # 2, 4, 5 and 7 mirror the picture: the other tests compare them with a copy of
    # boda's own table or with boda's other decoder, never with an outside reference.
    pil = Image.fromarray((kodak_rgb[:150, :260] * 255).round().astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "camera.jpg"
    pil.save(path, exif=exif, quality=95)
    with Image.open(path) as stored:
        shown = ImageOps.exif_transpose(stored).convert("RGB")
    expected = np.asarray(shown, np.float32) / 255
    decoded = open_image(path)
    assert decoded.pixels.shape == expected.shape
    assert decoded.original_size == shown.size == image_size(path)
    np.testing.assert_allclose(decoded.pixels, expected, atol=1 / 255 + 1e-6)
    # A reduced read (JPEG draft, then resampling) is oriented the same way.
    small = read_image(path, max_side=130)
    reference = np.asarray(shown.resize(small.shape[1::-1], Image.Resampling.LANCZOS)) / 255
    assert np.abs(small - reference).mean() < 0.02


# -- bad input: a file the user may not read ---------------------------------------------


def _as_a_user_permissions_apply_to(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")  # root reads any file unless it drops these
    if setpriv is None:
        pytest.skip("needs setpriv to drop root's permission override")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]


def test_a_file_without_read_permission_is_recorded_and_the_scan_goes_on(tmp_path, kodak_paths):
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(kodak_paths[0], root / "fine.png")
    locked = root / "locked.png"
    shutil.copy(kodak_paths[1], locked)
    before = locked.read_bytes()
    locked.chmod(0)
    try:
        command = [sys.executable, "-m", "boda", "scan", str(root), "-q", "-w", "1", "--no-report"]
        result = subprocess.run(
            _as_a_user_permissions_apply_to(command), capture_output=True, text=True, timeout=120
        )
    finally:
        locked.chmod(0o644)
    assert result.returncode == 3, result.stderr  # some files could not be read
    assert "unreadable locked.png: permission denied" in result.stdout + result.stderr
    records = json.loads(runner.invoke(app, ["report", str(root), "--json"]).stdout)
    by_path = {r["path"]: r for r in records}
    assert by_path["fine.png"]["status"] == "ok"
    assert by_path["locked.png"]["status"] == "error"
    assert by_path["locked.png"]["error"].startswith("permission denied")
    assert locked.read_bytes() == before


# -- quality measures against a reference ----------------------------------------------------


def _fft_fraction_reference(gray: np.ndarray, cutoff: float) -> float:
    """The docstring's formula on the full (complex) spectrum: no half-spectrum weights."""
    gray = gray.astype(np.float64)
    h, w = gray.shape
    spectrum = np.abs(np.fft.fft2((gray - gray.mean()) * np.outer(np.hanning(h), np.hanning(w))))
    power = spectrum**2
    power[0, 0] = 0.0
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    return float(power[radius > cutoff].sum() / power.sum())


@pytest.mark.parametrize("shape", [(64, 64), (63, 65), (100, 37)])
def test_fft_high_frequency_equals_the_full_spectrum_formula(rng, shape):
    # Odd and even widths: the half spectrum rfft2 stores counts its columns twice,
    # except the ones that have no mirror (0 and, for even widths, W/2).
    noise = rng.random(shape).astype(np.float32)
    for image in (noise, ndimage.gaussian_filter(noise, 1.0)):
        for cutoff in (0.1, 0.25, 0.4):
            ours = fft_high_frequency(image, cutoff=cutoff, reference_side=None)
            assert ours == pytest.approx(_fft_fraction_reference(image, cutoff), abs=1e-6)


def test_fft_high_frequency_of_gratings_is_known():
    x = np.arange(128, dtype=np.float32)[None, :].repeat(128, axis=0)
    for frequency, expected in ((0.05, 0.0), (0.2, 0.0), (0.3, 1.0), (0.45, 1.0)):
        grating = 0.5 + 0.4 * np.sin(2 * np.pi * frequency * x)
        assert fft_high_frequency(grating, reference_side=None) == pytest.approx(
            expected, abs=1e-4
        ), frequency


def _window_maxima(emap: np.ndarray, window: int) -> np.ndarray:
    """The largest value of each ``window`` x ``window`` block, one block at a time."""
    rows, cols = emap.shape[0] // window, emap.shape[1] // window
    out = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            out[r, c] = emap[r * window : (r + 1) * window, c * window : (c + 1) * window].max()
    return out


def _tong_reference(gray255: np.ndarray, threshold: float = 35.0):
    """Tong et al. 2004, algorithm 1 and 2, level by level with ``pywt.dwt2``: each
    level's own LH, HL and HH, scaled by ``2^-(i-1)`` (boda's documented normalisation
    for PyWavelets' orthonormal Haar), block maxima over 8, 4 and 2 coefficients."""
    h, w = gray255.shape[0] // 16 * 16, gray255.shape[1] // 16 * 16
    approximation = gray255[:h, :w]
    maxima = []
    for level, window in ((1, 8), (2, 4), (3, 2)):
        approximation, (lh, hl, hh) = pywt.dwt2(approximation, "haar")
        emap = np.sqrt(lh**2 + hl**2 + hh**2) / 2.0 ** (level - 1)
        maxima.append(_window_maxima(emap, window))
    n_edge = n_da = n_rg = n_brg = 0
    for e1, e2, e3 in zip(*(m.ravel() for m in maxima), strict=True):
        if not (e1 > threshold or e2 > threshold or e3 > threshold):  # rule 1
            continue
        n_edge += 1
        if e1 > e2 > e3:  # rule 2: Dirac or Astep
            n_da += 1
        if e1 < e2 < e3 or (e2 > e1 and e2 > e3):  # rules 3 and 4: Roof or Gstep
            n_rg += 1
            if e1 < threshold:  # rule 5: lost its sharpness
                n_brg += 1
    return maxima, (n_edge, n_da, n_rg, n_brg)


def test_tong_equals_the_papers_algorithm_level_by_level(kodak_rgb):
    gray = to_gray(kodak_rgb)
    for image in (gray, ndimage.gaussian_filter(gray, 1.5)):
        gray255 = image.astype(np.float64) * 255
        maxima, (n_edge, n_da, n_rg, n_brg) = _tong_reference(gray255)
        for ours, theirs in zip(edge_maxima(gray255), maxima, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-9)
        result = tong_blur(image, reference_side=None)
        counts = (result.n_edge, result.n_da, result.n_rg, result.n_brg)
        assert counts == (n_edge, n_da, n_rg, n_brg)
        assert result.per == pytest.approx(n_da / n_edge)
        assert result.blur_extent == pytest.approx(n_brg / n_rg)
        assert n_edge > 100 and n_rg > 0  # the comparison counted something


# -- the catalog: one transaction per batch ---------------------------------------------------


def test_a_batch_is_one_transaction(tmp_path):
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.write_batch([ImageRecord(b"kept.jpg", 1, 1, "ok", scores={"x": 1.0})])
        failing = [
            ImageRecord(b"a.jpg", 1, 1, "ok", scores={"x": 1.0}),
            ImageRecord(b"b.jpg", 1, 1, "ok", scores={"x": object()}),  # cannot be stored
        ]
        with pytest.raises(TypeError):
            catalog.write_batch(failing)
        # Nothing of the failed batch stays, the batch committed before it does.
        assert [r.relpath for r in catalog.records()] == [b"kept.jpg"]
        assert catalog.integrity_check() == "ok"


def _distinct_photos(root: Path, small_photos, n: int) -> None:
    root.mkdir()
    for i in range(n):
        write_image(root / f"p{i}.png", small_photos[i % 4] * (0.55 + 0.05 * i))


def test_a_scan_commits_its_records_batch_by_batch(tmp_path, small_photos, monkeypatch):
    root = tmp_path / "photos"
    _distinct_photos(root, small_photos, 7)
    commits = []
    real_write = pipeline._write

    def write(catalog, batch):
        real_write(catalog, batch)
        with Catalog(catalog.path, readonly=True) as reader:  # what another reader sees
            commits.append((len(batch), reader.count()["ok"]))

    monkeypatch.setattr(pipeline, "BATCH_SIZE", 3)
    monkeypatch.setattr(pipeline, "BATCH_SECONDS", 1e9)  # batches by size only
    monkeypatch.setattr(pipeline, "_write", write)
    summary = scan(root, workers=1)
    assert summary.analysed == 7
    assert commits == [(3, 3), (3, 6), (1, 7)]


# -- the scan's workers and progress -----------------------------------------------------------


def test_without_workers_the_scan_uses_every_core_it_may(folder, monkeypatch):
    assert default_workers() == len(os.sched_getaffinity(0))
    started = []
    real_start = pipeline._start_pool

    def start(processes, raw=False):
        started.append(processes)
        return real_start(processes, raw)

    monkeypatch.setattr(pipeline, "default_workers", lambda: 3)
    monkeypatch.setattr(pipeline, "_start_pool", start)
    result = runner.invoke(app, ["scan", str(folder), "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    assert started == [3]  # 5 files, 3 "cores": a pool of 3


def test_the_progress_bar_shows_the_rate_and_the_time_left(folder):
    result = runner.invoke(app, ["scan", str(folder), "--no-report", "-w", "1"])
    assert result.exit_code == 0, result.output
    bar = next(line for line in result.output.splitlines() if line.startswith("scanning"))
    clock = r"\d+:\d\d:\d\d"
    assert re.search(rf"5/5 +100% +\d+\.\d img/s +{clock} +({clock}|-:--:--)$", bar), bar


# -- every flag's threshold can be overridden -----------------------------------------------------


@pytest.fixture
def varied(tmp_path, small_photos) -> Path:
    """Nine images whose scores spread: photos, a dark and a light one, a blurred one,
    a gray one, a strip (aspect 2.7) and a thumbnail (4 times fewer pixels)."""
    root = tmp_path / "varied"
    root.mkdir()
    for name, image in zip("abcd", small_photos, strict=True):
        write_image(root / f"{name}.png", image)
    a, b, c, _ = small_photos
    write_image(root / "dark.png", a**2.2 * 0.1)
    write_image(root / "light.png", 1 - (1 - b) * 0.1)
    write_image(root / "soft.png", ndimage.gaussian_filter(c, (2, 2, 0)))
    write_image(root / "gray.png", np.repeat(to_gray(b)[..., None], 3, axis=2))
    write_image(root / "strip.png", a[30:66])
    write_image(root / "thumb.png", cv2.resize(b, (48, 48), interpolation=cv2.INTER_AREA))
    return root


_PER_IMAGE = {  # flag -> (stored score, comparison that sets it)
    "blurry": ("blurry", operator.lt),
    "dark": ("dark", operator.gt),
    "light": ("light", operator.gt),
    "low_information": ("low_information", operator.lt),
    "grayscale": ("grayscale", operator.lt),
    "odd_aspect_ratio": ("aspect_ratio", operator.gt),
}


def _records(root: Path) -> dict[str, dict]:
    exported = runner.invoke(app, ["report", str(root), "--json"]).stdout
    return {r["path"]: r for r in json.loads(exported)}


def _rescan(root: Path, *options: str):
    """Scan ``root`` again with ``options``, the thresholds of earlier runs forgotten."""
    return runner.invoke(
        app, ["scan", str(root), "-q", "--no-report", "--reset-thresholds", *options]
    )


def test_every_per_image_flag_follows_its_threshold_override(varied):
    assert runner.invoke(app, ["scan", str(varied), "-q", "--no-report", "-w", "1"]).exit_code == 0
    scores = {p: r["scores"] for p, r in _records(varied).items()}
    for flag, (key, compare) in _PER_IMAGE.items():
        values = sorted({s[key] for s in scores.values()})
        assert len(values) >= 2, (flag, values)
        middle = len(values) // 2
        threshold = round((values[middle - 1] + values[middle]) / 2, 6)  # both sides hold some
        result = _rescan(varied, "--json", "-t", f"{flag}={threshold}")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["analysed"] == 0  # re-flagged, not re-analysed
        records = _records(varied)
        flagged = {p for p, r in records.items() if flag in r["flags"]}
        assert flagged == {p for p, s in scores.items() if compare(s[key], threshold)}, flag
        assert 0 < len(flagged) < len(records), (flag, threshold)
        for path in flagged:  # the flag carries the score it was set by
            assert records[path]["flag_scores"][flag] == pytest.approx(scores[path][key])
    # odd_size: the thumbnail has 4 times fewer pixels than most, the strip 2.7 times.
    odd_sizes = {2: {"thumb.png", "strip.png"}, 3.5: {"thumb.png"}, 4.5: set()}
    for threshold, expected in odd_sizes.items():
        result = _rescan(varied, "-t", f"odd_size={threshold}")
        assert result.exit_code == 0, result.output
        records = _records(varied)
        assert {p for p, r in records.items() if "odd_size" in r["flags"]} == expected


def test_a_flag_set_above_its_threshold_lists_the_highest_score_first(varied):
    # "dark" and "light" are worst when highest: the report sorts them downwards.
    scan(varied, workers=1, thresholds={"dark": 0.3})
    with Catalog(default_catalog_path(varied), readonly=True) as catalog:
        dark = {r.path: r.flags["dark"][0] for r in catalog.records() if "dark" in r.flags}
    assert len(dark) >= 3
    page = render_html(default_catalog_path(varied))
    start = page.index('id="flag-dark"')
    section = page[start : page.index("<h2", start)]
    shown = sorted(dark, key=section.index)
    assert shown == sorted(dark, key=lambda p: -dark[p])


# -- boda edges against OpenCV -------------------------------------------------------------------


def _opencv_edges(gray: np.ndarray, method: str) -> np.ndarray:
    """The picture each method draws, by OpenCV (reflect-101 borders, its default)."""
    if method == "laplacian":
        response = np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=1))
    else:
        if method == "prewitt":
            kx = np.array([[-1, 0, 1]] * 3, np.float32)
            gx, gy = cv2.filter2D(gray, cv2.CV_32F, kx), cv2.filter2D(gray, cv2.CV_32F, kx.T)
        elif method == "scharr":
            gx, gy = cv2.Scharr(gray, cv2.CV_32F, 1, 0), cv2.Scharr(gray, cv2.CV_32F, 0, 1)
        else:
            gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        response = cv2.magnitude(gx, gy)
    return response / response.max()


@pytest.mark.parametrize("method", ["sobel", "prewitt", "scharr", "laplacian"])
def test_edges_cli_draws_what_opencv_computes(tmp_path, kodak_paths, method):
    out = tmp_path / f"{method}.png"
    result = runner.invoke(app, ["edges", str(kodak_paths[0]), "--method", method, "-o", str(out)])
    assert result.exit_code == 0, result.output
    expected = _opencv_edges(to_gray(read_image(kodak_paths[0])), method)
    written = np.asarray(Image.open(out), np.float32) / 255
    assert written.shape == expected.shape
    np.testing.assert_allclose(written, expected, atol=0.5 / 255 + 1e-4)


# -- read_image: PNG metadata larger than Pillow's text limit -----------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with(pixels: np.ndarray, *, before: bytes = b"", after: bytes = b"") -> bytes:
    """A PNG of ``pixels`` with the chunks ``before`` inserted ahead of the image data and
    ``after`` behind it (where a program that adds metadata on saving puts them)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    idat, iend = data.index(b"IDAT") - 4, data.index(b"IEND") - 4
    return data[:idat] + before + data[idat:iend] + after + data[iend:]


def _big_profile() -> bytes:
    """A Display P3 profile carrying a 2 MB private tag (LittleCMS skips tags it does not
    know): over 1 MB inflated, as press and camera profiles with large tables are."""
    import icc_profiles as ip

    small = ip.rgb_profile("p3", ip.SRGB_CURVE)
    count = struct.unpack(">I", small[128:132])[0]
    tags = []
    for k in range(count):
        signature, offset, size = struct.unpack(">4sII", small[132 + 12 * k : 144 + 12 * k])
        tags.append((signature, small[offset : offset + size]))
    return ip.assemble([*tags, (b"bodz", b"bodz" + bytes(4) + bytes(2 << 20))], b"RGB ")


_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    b'xmp:Rating="4"/></rdf:RDF></x:xmpmeta>'
)


@pytest.mark.parametrize(
    "where", ["text before the pixels", "xmp after the pixels", "colour profile"]
)
def test_a_png_whose_metadata_inflates_past_pillows_text_limit_is_read(tmp_path, kodak_rgb, where):
    # Pillow refuses a PNG as soon as one compressed text chunk or colour profile inflates
    # past 1 MB (PngImagePlugin.MAX_TEXT_CHUNK, its guard against text bombs), although
    # the pixels are fine and browsers, GIMP and OpenCV show them: a scan listed such
    # photos as unreadable ("Decompressed data too large for PngImagePlugin...").
    pixels = (kodak_rgb[:64, :96] * 255).round().astype(np.uint8)
    pixels[:8, :8] = (128, 200, 90)  # a P3 green: sRGB (103, 202, 71) after conversion
    padding = b" " * (2 << 20)  # XMP packets carry whitespace padding; this much inflates
    if where == "text before the pixels":
        data = _png_with(
            pixels, before=_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * (2 << 20)))
        )
    elif where == "xmp after the pixels":
        body = b"XML:com.adobe.xmp\0\1\0\0\0" + zlib.compress(_XMP + padding)
        data = _png_with(pixels, after=_chunk(b"iTXt", body))
    else:
        data = _png_with(
            pixels, before=_chunk(b"iCCP", b"big P3\0\0" + zlib.compress(_big_profile()))
        )
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    decoded = open_image(path)
    assert image_size(path) == (96, 64)
    if where == "colour profile":  # the profile is honoured, not dropped
        import icc_profiles as ip

        reference = tmp_path / "small profile.png"
        Image.fromarray(pixels).save(reference, icc_profile=ip.rgb_profile("p3", ip.SRGB_CURVE))
        np.testing.assert_array_equal(decoded.pixels, read_image(reference))
        assert decoded.converted_from is not None
        assert np.abs(decoded.pixels[:8, :8] - pixels[:8, :8] / 255).max() > 0.05
    else:
        np.testing.assert_array_equal(decoded.pixels, pixels / np.float32(255))
    if where == "xmp after the pixels":
        assert decoded.xmp == _XMP + padding
    from boda.scan import analyze_file

    assert analyze_file(path).status == "ok"
    assert path.read_bytes() == data  # read, never rewritten


def test_png_metadata_past_boda_own_budget_is_refused_in_plain_words(tmp_path):
    # 65 MB of text in a 64 kB chunk: boda inflates at most 64 MB of a file's metadata.
    bomb = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(65 << 20), 9))
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_with(np.zeros((8, 8, 3), np.uint8), before=bomb))
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    reason = info.value.reason
    assert "metadata" in reason and "64 MB" in reason and "bomb" in reason, reason
    assert "PngImagePlugin" not in reason and "MAX_TEXT_CHUNK" not in reason
