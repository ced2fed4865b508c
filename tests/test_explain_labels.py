"""``boda explain DIR --labels-from-folders``, ``--target label|NAME`` and the
``index.html`` gallery written beside the montages.

A labelled folder in torchvision's ImageFolder layout is made from the synthetic
shapes benchmark (its true classes are known) and explained with the shipped
``shapes-cnn``.  References: the model's own predictions, computed here directly
(:func:`boda.explain.explain_image`), for what is right and wrong; the files on
disk for the gallery's links.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from typer.testing import CliRunner

from boda.cli import app
from boda.explain import SHAPE_CLASSES, explain_image, make_shapes
from boda.io import read_image, write_image
from boda.nn import load_model

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    """16 shapes in class folders (two of them in the wrong folder), one in a
    folder that names no class, one at the top and an unreadable file."""
    root = tmp_path_factory.mktemp("labels") / "val"
    data = make_shapes(16, seed=11)
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        write_image(root / SHAPE_CLASSES[label] / f"{i:02d}.png", image)
    # two images filed under another class (label noise)
    for i in (0, 1):
        true = SHAPE_CLASSES[data.labels[i]]
        other = SHAPE_CLASSES[(data.labels[i] + 1) % 4]
        shutil.move(root / true / f"{i:02d}.png", root / other / f"{i:02d}.png")
    (root / "Misc").mkdir()
    write_image(root / "Misc" / "m.png", data.images[2])
    write_image(root / "top.png", data.images[3])
    (root / "circle" / "broken.png").write_bytes(b"not a png")
    return root


def _expected(root: Path) -> dict[str, tuple[str | None, str]]:
    """Relative path -> (the class its folder names, the class the model predicts)."""
    lm = load_model("shapes-cnn")
    out = {}
    for path in sorted(root.rglob("*.png")):
        rel = path.relative_to(root).as_posix()
        if path.name == "broken.png":
            continue
        res = explain_image(read_image(path), lm, ["gradcam"])
        folder = rel.split("/")[0] if "/" in rel else None
        label = folder.lower() if folder and folder.lower() in SHAPE_CLASSES else None
        out[rel] = (label, res.top[0]["name"])
    return out


def test_each_image_is_right_or_wrong_against_its_folder_and_the_accuracy_adds_up(val):
    result = runner.invoke(app, ["explain", str(val), "--model", "shapes-cnn",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 3, result.output  # the broken file
    data = json.loads(result.stdout)
    records = {Path(r["image"]).relative_to(val).as_posix(): r for r in data["images"]}
    expected = _expected(val)
    assert set(records) == {*expected, "circle/broken.png"}
    for rel, (label, predicted) in expected.items():
        r = records[rel]
        assert r["predictions"][0]["name"] == predicted
        if label is None:
            assert r["label"] is None and r["correct"] is None, rel
        else:
            assert r["label"] == {"index": SHAPE_CLASSES.index(label), "name": label}
            assert r["correct"] is (predicted == label), rel
            assert r["target"] == SHAPE_CLASSES.index(predicted)  # explained: the prediction
    labelled = [(lab, pred) for lab, pred in expected.values() if lab is not None]
    right = sum(lab == pred for lab, pred in labelled)
    accuracy = data["summary"]["accuracy"]
    assert accuracy["labelled"] == len(labelled) == 16
    assert accuracy["correct"] == right and accuracy["top1"] == pytest.approx(right / 16)
    assert accuracy["unlabelled"] == 2  # Misc/m.png, top.png
    assert right <= 14  # the two filed under another class
    pairs: dict = {}
    for lab, pred in labelled:
        if lab != pred:
            pairs[(lab, pred)] = pairs.get((lab, pred), 0) + 1
    assert {(c["label"], c["predicted"]): c["count"] for c in accuracy["confusions"]} == pairs
    counts = [c["count"] for c in accuracy["confusions"]]
    assert counts == sorted(counts, reverse=True)
    assert data["summary"]["explained"] == 18 and data["summary"]["failed"] == 1

    text = runner.invoke(app, ["explain", str(val), "--model", "shapes-cnn",
                               "--labels-from-folders"])
    flat = " ".join(text.stdout.split())
    assert f"accuracy: {right} of 16 labelled images right" in flat
    assert "most confused:" in flat and "taken for" in flat
    assert "2 images are in folders that name no class" in " ".join(text.stderr.split())
    assert "'Misc' (1)" in " ".join(text.stderr.split())


def test_target_label_explains_the_class_of_the_folder(val):
    result = runner.invoke(app, ["explain", str(val), "--model", "shapes-cnn",
                                 "--target", "label", "--json"])
    data = json.loads(result.stdout)  # --target label implies the labels
    for r in data["images"]:
        if "error" in r:
            continue
        if r["label"] is None:  # no class for its folder: the prediction, as without
            assert r["target"] == r["predictions"][0]["index"]
        else:
            assert r["target"] == r["label"]["index"] and r["target_name"] == r["label"]["name"]
    wrong = [r for r in data["images"] if r.get("correct") is False]
    assert wrong and all(r["target"] != r["predictions"][0]["index"] for r in wrong)


def test_target_by_class_name_and_a_clear_error_for_an_unknown_one(tmp_path, val):
    image = val / "top.png"
    by_name = runner.invoke(app, ["explain", str(image), "--model", "shapes-cnn",
                                  "--target", "Cross", "--json"])
    by_index = runner.invoke(app, ["explain", str(image), "--model", "shapes-cnn",
                                   "--target", "3", "--json"])
    assert by_name.exit_code == 0, by_name.output
    a, b = json.loads(by_name.stdout), json.loads(by_index.stdout)
    assert a["target"] == b["target"] == 3 and a["maps"] == b["maps"]
    bad = runner.invoke(app, ["explain", str(image), "--model", "shapes-cnn", "--target", "dog"])
    assert bad.exit_code == 2
    flat = " ".join(bad.output.split())
    assert "--target 'dog' is not a class of shapes-cnn" in flat and "circle, square" in flat
    out = runner.invoke(app, ["explain", str(image), "--model", "shapes-cnn", "--target", "4"])
    assert out.exit_code == 2 and "out of range" in out.output


def test_one_image_with_labels_uses_its_own_folder(val):
    image = val / "square" / "00.png"  # a circle or so, filed under square
    result = runner.invoke(app, ["explain", str(image), "--model", "shapes-cnn",
                                 "--labels-from-folders", "--json"])
    record = json.loads(result.stdout)
    assert record["label"] == {"index": 1, "name": "square"} and record["folder"] == "square"
    assert record["correct"] is (record["predictions"][0]["name"] == "square")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs: list[str] = []
        self.items: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        if tag == "div" and "item" in (attrs.get("class") or "").split():
            self.items.append(attrs["class"])

    def handle_data(self, data):
        self.text.append(data)


def test_the_gallery_links_every_montage_and_marks_what_was_wrong(tmp_path, val):
    data = tmp_path / "val"
    shutil.copytree(val, data)
    write_image(data / "circle" / "<b>&x.png", read_image(val / "top.png"))  # escaped
    out = tmp_path / "out"
    result = runner.invoke(app, ["explain", str(data), "--model", "shapes-cnn",
                                 "--labels-from-folders", "--method", "gradcam,saliency",
                                 "--metrics", "-o", str(out), "--json"])
    assert result.exit_code == 3
    records = json.loads(result.stdout)["images"]
    page = (out / "index.html").read_text()
    links = _Links()
    links.feed(page)
    montages = sorted(str(r["output"]) for r in records if r.get("output"))
    assert sorted(str(out / unquote_to_bytes(s).decode()) for s in links.srcs) == montages
    assert all(Path(m).is_file() for m in montages)
    kinds = [c.split()[1] if len(c.split()) > 1 else "" for c in links.items]
    assert kinds.count("wrong") == sum(r.get("correct") is False for r in records) >= 1
    assert kinds.count("right") == sum(r.get("correct") is True for r in records)
    assert kinds.count("failed") == 1
    text = " ".join("".join(links.text).split())
    assert "<b>&x.png" in text and "<b>&x" not in page  # shown as text, never as markup
    right = sum(r.get("correct") is True for r in records)
    assert re.search(rf"{right} of 17 labelled images right", text)
    assert "Faithfulness" in text and "deletion AUC" in text
    assert "look through them" not in result.stdout  # --json: the JSON only

    again = runner.invoke(app, ["explain", str(data), "--model", "shapes-cnn", "-o", str(out)])
    assert again.exit_code == 2 and "index.html" in again.output  # refused: it exists
    assert (out / "index.html").read_text() == page


def test_a_class_folder_given_by_itself_labels_its_images_with_its_name(val):
    result = runner.invoke(app, ["explain", str(val / "circle"), "--model", "shapes-cnn",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 3  # broken.png
    data = json.loads(result.stdout)
    explained = [r for r in data["images"] if "predictions" in r]
    assert len(explained) == len(list((val / "circle").glob("[0-9]*.png"))) >= 2
    assert all(r["label"] == {"index": SHAPE_CLASSES.index("circle"), "name": "circle"}
               for r in explained)
    assert data["summary"]["accuracy"]["labelled"] == len(explained)
    assert data["summary"]["accuracy"]["unlabelled"] == 0


def test_an_output_folder_inside_the_input_is_not_explained_on_the_next_run(tmp_path, val):
    data = tmp_path / "val"
    shutil.copytree(val / "square", data / "square")
    out = data / "explained"
    first = runner.invoke(app, ["explain", str(data), "--model", "shapes-cnn", "-o", str(out),
                                "--json"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["explain", str(data), "--model", "shapes-cnn", "-o", str(out),
                                "--json", "--overwrite"])
    assert again.exit_code == 0, again.output
    paths = [r["image"] for r in json.loads(again.stdout)]
    assert paths == [r["image"] for r in json.loads(first.stdout)]
    assert not any(str(out) in str(p) for p in paths)
    assert sorted(p.name for p in out.rglob("*.png")) == sorted(
        p.name for p in (data / "square").glob("*.png"))


def test_the_gallery_fits_a_narrow_window_and_shows_montages_at_their_size(tmp_path):
    """At 400 px the tables scrolled the whole page sideways; at 1600 px a montage of six
    maps (about 1150 px) was shrunk to 900 px and drawn pixelated, its titles unreadable."""
    import os

    import numpy as np

    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no browser at /usr/bin/chromium")
    from boda.cli._explain_gallery import write_gallery

    methods = ["gradcam", "gradcam++", "scorecam", "smoothgrad", "guided-gradcam", "occlusion"]
    write_image(tmp_path / "m.png", np.full((172, 1152, 3), 0.5, np.float32))
    record = {
        "image": str(tmp_path / "photos" / "a_rather_long_file_name_of_a_photo.png"),
        "model": "resnet20-cifar10", "layer": "layer3", "output": str(tmp_path / "m.png"),
        "predictions": [{"name": "cat", "probability": 0.9}, {"name": "dog", "probability": 0.1}],
        "target": 3, "target_name": "cat",
        "maps": {m: {"peak_xy": [414, 335], "area_above_half": 0.25} for m in methods},
        "metrics": {m: {"deletion_auc": 0.1, "insertion_auc": 0.9} for m in methods},
    }
    means = {m: {"deletion_auc": 0.1, "insertion_auc": 0.9, "average_drop": 40.0,
                 "average_increase": 10.0} for m in methods}
    page_file = write_gallery([record, record], {"metrics": means}, tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        for width in (400, 1600):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(page_file.as_uri())
            page.locator(".item img").first.evaluate("i => i.decode()")
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, (width, overflow)  # no sideways scrolling
            img = page.locator(".item img").first
            assert img.evaluate("i => getComputedStyle(i).imageRendering") != "pixelated"
            if width == 1600:
                assert img.bounding_box()["width"] == 1152
        browser.close()
