"""Audit of ``boda explain`` as a command: its output folder, its option checks, the
gallery's file names, and the montage's colours and alignment.

References: a TorchScript model whose class-0 logit reads only the red channel of a
known block of the image (its saliency map is exactly that block), matplotlib's
colormaps, and :func:`boda.core.text.visible` (how the console and boda's other pages
show a file name).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from boda.cli import app
from boda.io import read_image, write_image

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KODAK = Path(__file__).parent / "data" / "kodak"


def _photos(folder: Path, n: int = 2, ext: str = ".jpg") -> list[Path]:
    """``n`` CIFAR-sized (32 px) crops of Kodak photos in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, src in enumerate(sorted(KODAK.glob("*.png"))[:n]):
        paths.append(write_image(folder / f"p{i}{ext}", read_image(src, max_side=40)[:32, :32]))
    return paths


def _block_model(path: Path) -> Path:
    """A TorchScript model of two classes: class 0's logit is 10 x the mean red value of
    rows 0-7, columns 0-15 of its input, class 1's is 0.  Its saliency map for class 0
    is 1 on that block and 0 elsewhere (the gradient is the same on every pixel of the
    block, and none elsewhere), so where the map lands is known."""
    import torch

    class Block(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = x[:, 0, 0:8, 0:16].mean(dim=(1, 2))
            return torch.stack([a * 10, torch.zeros_like(a)], 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation warning
        torch.jit.save(torch.jit.script(Block()), str(path))
    return path


def test_an_output_folder_that_is_an_input_folder_is_refused(tmp_path):
    """``boda explain photos -o photos`` wrote ``p0.png`` beside ``p0.jpg`` and an
    index.html among the photos; the next run explained those montages as images (or,
    with --overwrite, refused to overwrite an 'input').  The docstring of
    ``output_inside`` said it was refused; it was not."""
    folder = tmp_path / "photos"
    _photos(folder)
    before = sorted(os.listdir(folder))
    for out in (folder, tmp_path / "photos" / ".." / "photos"):
        r = runner.invoke(app, ["explain", str(folder), "-o", str(out), "-q"])
        assert r.exit_code == 2, r.output
        assert "is the input folder" in r.output and "explained" in r.output
    assert sorted(os.listdir(folder)) == before
    # a folder inside the input folder is still taken (and left out of the walk)
    r = runner.invoke(app, ["explain", str(folder), "-o", str(folder / "explained"),
                            "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 2


def test_a_bad_method_or_a_lone_layer_is_said_before_any_image(tmp_path):
    """An unknown --method, or --layer with only layer-free methods, was said by the
    library when it explained the first readable image: after the broken files were
    listed as failed, or never when no image could be read (exit 3 and an index.html,
    for a typo in an option)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    cases = [
        (["--method", "gradcam,bogus"], "unknown method 'bogus'"),
        (["--method", "saliency", "--layer", "layer2"], "read no layer"),
    ]
    for options, said in cases:
        r = runner.invoke(app, ["explain", str(folder), "-o", str(out), "-q", *options])
        assert r.exit_code == 2, r.output
        assert said in " ".join(r.output.split()) and "failed" not in r.output
        assert not out.exists()
    # one image: the same, before the image is read
    r = runner.invoke(app, ["explain", str(folder / "a_broken.png"), "--method", "magic"])
    assert r.exit_code == 2 and "unknown method 'magic'" in r.output
    # names still match in any case, with spaces around them
    _photos(folder, 1, ".png")
    r = runner.invoke(app, ["explain", str(folder / "p0.png"), "--method", " GradCAM , saliency",
                            "--json"])
    assert r.exit_code == 0, r.output
    assert [m.lower() for m in json.loads(r.stdout)["maps"]] == ["gradcam", "saliency"]


def test_size_beyond_any_model_input_is_a_usage_error(tmp_path, monkeypatch):
    """``--size 100000`` tried to allocate a 120 GB input tensor: a RuntimeError
    traceback where the allocation was refused, swapping where it was not."""
    import boda.cli._explain_batch as batch

    def never(*args, **kwargs):
        raise RuntimeError("the image was explained")

    monkeypatch.setattr(batch, "explain_one", never)  # the old code must not allocate
    (image,) = _photos(tmp_path, 1, ".png")
    model = _block_model(tmp_path / "m.ts")
    r = runner.invoke(app, ["explain", str(image), "--model", str(model), "--trust-model-code",
                            "--method", "saliency", "--size", "100000"])
    assert r.exit_code == 2, r.output
    assert "--size" in r.output and "4096" in r.output


def _gallery_names(html: str) -> list[str]:
    from html.parser import HTMLParser  # converts character references itself

    names: list[str] = []

    class Names(HTMLParser):
        inside = False

        def handle_starttag(self, tag, attrs):
            self.inside = ("class", "name") in attrs

        def handle_data(self, data):
            if self.inside:
                names.append(data)
                self.inside = False

    Names().feed(html)
    return names


def test_the_gallery_shows_control_and_bidi_characters_in_names_as_escapes(tmp_path):
    """The gallery showed file names raw: ``new\\nline.png`` read as ``new line.png``,
    and U+202E (right-to-left override) reversed the rest of a name on the page, where
    the console and boda's other pages show them as escapes (``visible``)."""
    from boda.cli._explain_gallery import gallery_html
    from boda.core.text import visible

    names = ["new\nline.png", "rtl\u202egnp.png", "tab\there.png", "<b>&amp;.png"]
    records = [{"image": str(tmp_path / n), "error": f"cannot read image {str(tmp_path / n)!r}"}
               for n in names]
    html = gallery_html(records, {"explained": 0, "failed": len(names)}, tmp_path)
    assert "\u202e" not in html and "\t" not in html
    assert _gallery_names(html) == [visible(tmp_path / n) for n in names]
    assert "rtl\\u202egnp.png" in html and "new\\nline.png" in html
    assert "&lt;b&gt;&amp;amp;.png" in html


#: File names a gallery must show as text and link byte for byte.
HOSTILE = ['<img src=x onerror="document.title=`pwned`" class=injected>.png', 'a"b.png',
           "a'b.png", "#frag.png", "q?x=1.png", "100%25.png", "sp ace.png", "new\nline.png",
           "rtl\u202egnp.png", "é.png"]


def test_the_gallery_of_hostile_names_in_a_browser(tmp_path):
    """Every montage of a folder of hostile names loads from the gallery in Chromium,
    no name becomes an element, the page logs no error, and each name reads as the
    console shows it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no browser at /usr/bin/chromium")
    from boda.core.text import visible

    folder = tmp_path / "in"
    (src,) = _photos(tmp_path / "src", 1, ".png")
    folder.mkdir()
    for name in HOSTILE:
        (folder / name).write_bytes(src.read_bytes())
    (folder / "<broken>.png").write_bytes(b"junk")
    out = tmp_path / "out"
    r = runner.invoke(app, ["explain", str(folder), "-o", str(out), "--json"])
    assert r.exit_code == 3, r.output  # the broken file
    records = json.loads(r.stdout)
    assert sum("error" in rec for rec in records) == 1 and len(records) == len(HOSTILE) + 1
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda req: errors.append(req.url))
        page.goto((out / "index.html").as_uri())
        widths = page.evaluate(
            "Promise.all([...document.images].map(i => (i.loading = 'eager',"
            " i.decode().then(() => i.naturalWidth, () => -1))))")
        assert len(widths) == len(HOSTILE) and min(widths) > 0, widths
        assert page.locator(".injected").count() == 0 and page.title() != "pwned"
        shown = page.locator(".name").all_inner_texts()
        assert sorted(shown) == sorted(visible(rec["image"]) for rec in records)
        browser.close()
    assert errors == []


def test_the_overlay_is_matplotlibs_colormap_blended_over_the_image_where_the_map_is(tmp_path):
    """The montage of a non-square photo stored sideways (EXIF orientation 6): the
    saliency panel is ``(1 - alpha) * image + alpha * cmap(map)`` with matplotlib's
    colours, and the map's block lies at the top left of the image as shown (not of
    the pixels as stored, not transposed or flipped)."""
    import matplotlib
    from PIL import Image

    shown = np.random.default_rng(0).random((40, 100, 3)).astype(np.float32) * 0.5
    stored = Image.fromarray((np.rot90(shown, 1) * 255 + 0.5).astype(np.uint8))
    exif = stored.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo = tmp_path / "sideways.jpg"
    stored.save(photo, exif=exif.tobytes(), quality=95)
    assert read_image(photo).shape == (40, 100, 3)
    model = _block_model(tmp_path / "m.ts")
    out = tmp_path / "m.png"
    alpha = 0.3
    r = runner.invoke(app, ["explain", str(photo), "--model", str(model), "--trust-model-code",
                            "--method", "saliency", "--target", "0", "--cmap", "viridis",
                            "--alpha", str(alpha), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout)["maps"]["saliency"]
    assert stats["peak_xy"] == [0, 0] and stats["area_above_half"] == pytest.approx(
        8 * 16 / (40 * 100))
    picture = read_image(out)
    # panels of 64 x 160 (the longer side is the tile, 160), 4 px padding, 14 px titles
    top, first, second = 4 + 14, 4, 4 + 160 + 4
    image = picture[top:top + 64, first:first + 160]
    panel = picture[top:top + 64, second:second + 160]
    viridis = matplotlib.colormaps["viridis"]
    # the block is rows 0-7, columns 0-15 of the image: 12.8 x 25.6 panel pixels
    for (y0, y1, x0, x1), value in (((0, 10, 0, 22), 1.0), ((20, 64, 0, 160), 0.0),
                                    ((0, 64, 32, 160), 0.0)):
        expected = (1 - alpha) * image[y0:y1, x0:x1] + alpha * np.float32(viridis(value)[:3])
        np.testing.assert_allclose(panel[y0:y1, x0:x1], expected, atol=2.5 / 255)
