"""Audit of the single-image commands ``boda quality`` and ``boda edges`` (and the
``boda color`` command line) as a demanding user runs them: odd files, verdicts
against ``boda scan``'s, strict JSON, outputs, help texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from boda.cli import app

runner = CliRunner()


def _strict_json(text: str):
    """``text`` parsed as strict JSON: NaN and Infinity are not JSON."""

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _scan_flags(folder) -> dict[str, set[str]]:
    """Per file name, the flags ``boda scan`` sets on it."""
    scanned = runner.invoke(app, ["scan", str(folder), "--no-report", "-q", "-w", "1"])
    assert scanned.exit_code in (0, 3), scanned.output
    records = json.loads(runner.invoke(app, ["report", str(folder), "--json"]).stdout)
    return {r["path"]: set(r.get("flags") or ()) for r in records}


# --- boda quality: one verdict with the scan -------------------------------------


def test_quality_flags_a_four_pixel_image_low_information_as_the_scan_does(tmp_path):
    """A 2x2 image of four gray levels has an entropy of exactly 2 bits, so ``entropy
    < 2`` does not hold; the scan flags it anyway (an image of at most 2**2 pixels can
    never hold more: README's flag table, docs/scan.md) while ``boda quality`` said
    "no": two verdicts for one file, where docs/quality.md promises one."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    levels = np.array([[0, 80], [160, 240]], np.uint8)
    Image.fromarray(levels).save(folder / "four.png")
    Image.fromarray(np.arange(0, 225, 25, dtype=np.uint8).reshape(3, 3)).save(folder / "nine.png")
    result = runner.invoke(app, ["quality", str(folder / "four.png"), "--json"])
    assert result.exit_code == 0, result.output
    data = _strict_json(result.stdout)
    assert data["scores"]["low_information"] == pytest.approx(2.0)  # log2(4): all it can hold
    assert data["flags"]["low_information"] is True
    assert "at most 4 pixels" in data["thresholds"]["low_information"]
    scanned = _scan_flags(folder)
    assert "low_information" in scanned["four.png"]
    # The rule stops at 4 pixels: a 3x3 image of enough levels is judged on its entropy.
    nine = _strict_json(runner.invoke(app, ["quality", str(folder / "nine.png"), "--json"]).stdout)
    assert nine["flags"]["low_information"] is False
    assert "low_information" not in scanned["nine.png"]
    table = runner.invoke(app, ["quality", str(folder / "four.png")])
    assert table.exit_code == 0 and "at most 4" in " ".join(table.stdout.split())


# --- boda edges ----------------------------------------------------------------------

METHODS = ["sobel", "prewitt", "scharr", "laplacian", "canny", "log", "hog", "orientation"]


@pytest.fixture(scope="module")
def deep_photo(tmp_path_factory, data_dir):
    """kodim23 at 96x72 as a 16-bit RGBA PNG, half transparent on the right."""
    from boda.io import read_image

    rgb = read_image(data_dir / "kodak" / "kodim23.png", max_side=96)
    alpha = np.ones(rgb.shape[:2], np.float32)
    alpha[:, rgb.shape[1] // 2 :] = 0.5
    rgba = np.round(np.dstack([rgb, alpha]) * 65535).astype(np.uint16)
    path = tmp_path_factory.mktemp("deep") / "deep.png"
    import cv2  # Pillow writes no 16-bit RGBA PNG; OpenCV does (BGRA order)

    assert cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]])
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    return path


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_what_the_library_draws(deep_photo, tmp_path, method):
    """The written picture is :func:`boda.edges.draw_edges` of the image as boda reads
    it (16 bits, laid over white), quantised to 8 bits: gray, RGB for orientation."""
    from boda.edges import draw_edges
    from boda.io import read_image

    out = tmp_path / "e.png"
    result = runner.invoke(app, ["edges", str(deep_photo), "-m", method, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    stats = _strict_json(result.stdout)
    expected = draw_edges(read_image(deep_photo), method)
    with Image.open(out) as written:
        assert written.mode == ("RGB" if method == "orientation" else "L")
        got = np.asarray(written, np.float64) / 255
    # one 8-bit level: write_image rounds, a float32 x.5 may go either way
    np.testing.assert_allclose(got, expected.picture, atol=1 / 255 + 1e-6)
    for key, value in expected.stats.items():
        assert stats[key] == pytest.approx(value), key


def test_canny_quantile_defaults_are_said_and_used(data_dir, tmp_path):
    """``--quantiles`` without --low/--high uses quantiles 0.8 and 0.9 (docs/edges.md);
    the help said only "default 0.1" and "0.2", values that as quantiles mark nearly
    every pixel."""
    from boda.edges import canny
    from boda.io import read_image

    photo = data_dir / "kodak" / "kodim23.png"
    out = tmp_path / "q.png"
    args = ["edges", str(photo), "--max-side", "128", "--quantiles", "-o", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = canny(read_image(photo, max_side=128), 1.0, 0.8, 0.9, use_quantiles=True)
    assert _strict_json(result.stdout)["edge_pixels"] == int(expected.sum())
    help_text = " ".join(runner.invoke(app, ["edges", "--help"]).stdout.split())
    assert "0.8 with --quantiles" in help_text and "0.9 with --quantiles" in help_text


def test_a_failed_edges_run_leaves_nothing_behind(data_dir, tmp_path):
    """A refusal found after the image is read (no HOG cell fits) writes no file, no
    temporary file and no folder that --output named."""
    photo = data_dir / "kodak" / "kodim23.png"
    out = tmp_path / "new" / "sub" / "h.png"
    args = ["edges", str(photo), "--max-side", "32", "-m", "hog", "--cell", "40", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert list(tmp_path.iterdir()) == []


# --- boda color ----------------------------------------------------------------------


def test_color_measure_gives_the_scans_grayscale_verdict(tmp_path, kodak_rgb):
    """A gray photo stored as RGB with 2 levels of chroma noise per channel: the scan
    flags it grayscale (score 1.6 on its thumbnail) while ``boda color measure`` read
    it at full size and said "not grayscale" (4.9): two verdicts for one file.  A
    light sepia tint (16 %, docs/color.md: not gray) stays colour in both."""
    folder = tmp_path / "photos"
    folder.mkdir()
    gray = kodak_rgb.mean(axis=2, keepdims=True)
    noisy = gray * 255 + np.random.default_rng(1).normal(0, 2, kodak_rgb.shape)
    Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)).save(folder / "gray.png")
    sepia = gray * (0.84 + 0.16 * np.array([1, 0.894, 0.695]))
    Image.fromarray(np.round(sepia * 255).astype(np.uint8)).save(folder / "sepia.png")
    flagged = _scan_flags(folder)
    records = json.loads(runner.invoke(app, ["report", str(folder), "--json"]).stdout)
    stored = {r["path"]: r["scores"]["grayscale"] for r in records}
    assert "grayscale" in flagged["gray.png"] and "grayscale" not in flagged["sepia.png"]
    for name in ("gray.png", "sepia.png"):
        result = runner.invoke(app, ["color", "measure", str(folder / name), "--json"])
        assert result.exit_code == 0, result.output
        measured = _strict_json(result.stdout)
        assert measured["grayscale"] is ("grayscale" in flagged[name]), name
        assert measured["grayscale_score"] == pytest.approx(stored[name], abs=1e-6), name


# --- an input given as a pipe: <(curl ...), /dev/stdin ----------------------------------


@pytest.fixture
def piped(tmp_path):
    """``piped(path)``: a ``/dev/fd/N`` path that reads the bytes of ``path`` once,
    as bash's ``<(cat path)`` gives (the writer closes its end after the bytes)."""
    import os
    import sys
    import threading

    if not sys.platform.startswith("linux"):
        pytest.skip("/dev/fd/N of a pipe is Linux's")
    opened: list[int] = []

    def make(path) -> str:
        read_end, write_end = os.pipe()
        opened.append(read_end)
        data = path.read_bytes()

        def feed():
            with os.fdopen(write_end, "wb") as out:
                out.write(data)

        threading.Thread(target=feed, daemon=True).start()
        return f"/dev/fd/{read_end}"

    yield make
    for fd in opened:
        os.close(fd)


def test_quality_reads_a_piped_image_with_a_reference(piped, tmp_path, kodak_rgb):
    """With --reference the image is decoded twice (at the scan's 640 px, then at full
    size): the second read found the pipe drained and failed as an "empty file (0
    bytes)", exit 1.  Now the same answer as for the file itself."""
    from boda.io import write_image

    photo = write_image(tmp_path / "photo.png", kodak_rgb[:64, :80])
    args = ["--reference", str(photo), "--json"]
    expected = _strict_json(runner.invoke(app, ["quality", str(photo), *args]).stdout)
    result = runner.invoke(app, ["quality", piped(photo), *args])
    assert result.exit_code == 0, result.output
    got = _strict_json(result.stdout)
    assert got["reference"] == expected["reference"] == {"mse": 0.0, "psnr": None, "ssim": 1.0}
    assert got["scores"] == expected["scores"] and got["flags"] == expected["flags"]


def test_a_piped_input_that_is_no_image_is_named_as_given(piped, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture\n")
    given = piped(text)
    result = runner.invoke(app, ["quality", given, "--reference", str(text)])
    assert result.exit_code == 1
    assert f"cannot read image {given!r}" in result.output and "boda-input" not in result.output


def test_color_measure_reads_a_piped_image(piped, tmp_path, kodak_rgb):
    from boda.io import write_image

    photo = write_image(tmp_path / "photo.png", kodak_rgb[:64, :80])
    expected = _strict_json(runner.invoke(app, ["color", "measure", str(photo), "--json"]).stdout)
    result = runner.invoke(app, ["color", "measure", piped(photo), "--json"])
    assert result.exit_code == 0, result.output
    got = _strict_json(result.stdout)
    assert {k: v for k, v in got.items() if k != "image"} == {
        k: v for k, v in expected.items() if k != "image"
    }


@pytest.mark.parametrize(
    "args, named",
    [(["convert", "--from", "srgb", "--to", "lab", "1e308", "0", "0"], "1e+308 0 0"),
     (["convert", "--to", "lab", "0.1", "0.2", "0.3", "1e308", "0", "0", "--json"], "1e+308"),
     (["diff", "1e300,0,0", "0,0,0", "--from", "srgb"], "1e+300 0 0"),
     (["diff", "1e200,0,0", "0,0,0", "--json"], "'1e200,0,0'")],
)  # fmt: skip
def test_color_values_that_overflow_are_refused(args, named):
    """Finite components whose conversion overflows (sRGB's 2.4 power of 1e308, a
    ΔE squaring 1e200) were printed as nan (null in --json) with exit status 0, under
    numpy's RuntimeWarning lines: a usage error now, naming the colour."""
    result = runner.invoke(app, ["color", *args])
    assert result.exit_code == 2, result.output
    assert "overflows" in result.output and named in result.output
    assert "RuntimeWarning" not in result.output and result.stdout == ""


def test_color_values_near_the_overflow_still_convert():
    """Large but convertible components are converted as before (no false refusal)."""
    result = runner.invoke(app, ["color", "convert", "--from", "srgb", "--to", "lab",
                                 "1e30", "0", "0", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert all(v is not None for v in _strict_json(result.stdout)["converted"][0])


def test_edges_takes_q_for_quiet_as_quality_and_scan_do(data_dir, tmp_path):
    """``-q`` is --quiet wherever it means nothing else (boda.cli._common.quiet_option):
    ``boda quality -q`` and ``boda scan -q`` took it, ``boda edges -q`` was "No such
    option"."""
    photo = data_dir / "kodak" / "kodim23.png"
    out = tmp_path / "e.png"
    result = runner.invoke(app, ["edges", str(photo), "--max-side", "32", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_a_reference_turned_by_its_orientation_tag_is_said_so(tmp_path, kodak_rgb):
    """A photo with EXIF orientation 6 (shown turned by 90 degrees) against a copy of
    its stored pixels without the tag: boda turns the first, so the sizes are swapped;
    the message said only "give a reference of the same size"."""
    pixels = np.round(kodak_rgb[:40, :80] * 255).astype(np.uint8)
    tagged = Image.fromarray(pixels)
    exif = tagged.getexif()
    exif[0x0112] = 6
    tagged.save(tmp_path / "tagged.jpg", exif=exif, quality=95)
    Image.fromarray(pixels).save(tmp_path / "plain.png")
    result = runner.invoke(
        app, ["quality", str(tmp_path / "tagged.jpg"), "-r", str(tmp_path / "plain.png")]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "--reference is 80x40 but the image is 40x80" in text and "orientation" in text
    other = runner.invoke(
        app, ["quality", str(tmp_path / "plain.png"), "-r", str(tmp_path / "tagged.jpg")]
    )
    assert other.exit_code == 2 and "orientation" in " ".join(other.output.split())
