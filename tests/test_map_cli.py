"""``boda map DIR``: a folder as a map of a model's features, and the labels its
neighbourhoods disagree with.

The shapes benchmark in class folders (a few filed under the wrong class) with
the shipped ``shapes-cnn``.  References: :class:`boda.explain.FeatureIndex`,
:func:`boda.embed.pca` and :func:`boda.embed.neighbour_votes` called directly on
the same files; the files on disk for the page's links.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

import numpy as np
import pytest
from typer.testing import CliRunner

from boda.cli import app
from boda.embed import neighbour_votes, pca
from boda.explain import SHAPE_CLASSES, FeatureIndex, make_shapes
from boda.io import write_image
from boda.nn import load_model

pytest.importorskip("sklearn")
runner = CliRunner()
FLIPPED = ("square/x00.png", "triangle/x01.png", "cross/x02.png")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    """120 shapes in class folders, three filed under another class; one unreadable file
    and one image at the top (no class)."""
    root = tmp_path_factory.mktemp("map") / "val"
    data = make_shapes(120, seed=21)
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        name = SHAPE_CLASSES[label]
        if i < 3:  # filed under the next class
            name = SHAPE_CLASSES[(label + 1) % 4]
            path = root / name / f"x{i:02d}.png"
        else:
            path = root / name / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, image)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("x*.png")) == sorted(FLIPPED)
    write_image(root / "top.png", data.images[5])
    (root / "cross" / "broken.png").write_bytes(b"not a png")
    return root


def _features(root: Path) -> tuple[list[str], np.ndarray]:
    lm = load_model("shapes-cnn")
    index = FeatureIndex(lm.model, "features", size=(32, 32), mean=lm.mean, std=lm.std)
    paths = sorted(str(p) for p in root.rglob("*.png") if p.name != "broken.png")
    names, vectors = index.embed(paths)
    return names, vectors.numpy()


def test_pca_points_and_votes_are_the_librarys_on_the_same_features(val):
    result = runner.invoke(app, ["map", str(val), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 3, result.output  # the broken file
    data = json.loads(result.stdout)
    assert data["failed"] == [{"path": str(val / "cross" / "broken.png"),
                               "reason": data["failed"][0]["reason"]}]
    points = {p["path"]: p for p in data["points"]}
    names, vectors = _features(val)
    assert sorted(points) == names and data["images"] == 121
    order = [names.index(p["path"]) for p in data["points"]]
    xy = pca(vectors[order])
    np.testing.assert_allclose([[p["x"], p["y"]] for p in data["points"]], xy, atol=1e-4)

    labels = [SHAPE_CLASSES.index(p["folder"]) if p["folder"] in SHAPE_CLASSES else None
              for p in data["points"]]
    votes = neighbour_votes(vectors[order], labels, k=10)
    for p, vote, label in zip(data["points"], votes, labels, strict=True):
        assert p["label"] == (None if label is None else SHAPE_CLASSES[label])
        assert p["suspect"] is vote.suspect and p["majority"] == SHAPE_CLASSES[vote.majority]
    suspects = {Path(p["path"]).relative_to(val).as_posix() for p in data["points"]
                if p["suspect"]}
    # the three filed under another class, and at most a few the model itself confuses
    assert set(FLIPPED) <= suspects and len(suspects) == data["suspects"] <= 5
    assert points[str(val / "top.png")]["label"] is None
    assert points[str(val / "top.png")]["folder"] == "val"  # its folder's name: no class
    assert data["labelled"] == 120 and data["k"] == 10 and data["small_classes"] == []
    # the note on stderr names the image beside the class folders, in none
    assert f"1 image is at the top of {val}, in no class folder" in " ".join(
        result.stderr.split())


def test_a_class_folder_given_as_dir_labels_its_images_and_small_classes_are_named(val):
    result = runner.invoke(app, ["map", str(val / "circle"), "--model", "shapes-cnn",
                                 "--method", "pca", "--labels-from-folders", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {p["label"] for p in data["points"]} == {"circle"}
    assert data["suspects"] == 0 and data["labelled"] == data["images"]
    # a --k larger than the labelled images: every other one votes, and no class of ~30
    # images can fill half of 119 neighbours
    result = runner.invoke(app, ["map", str(val), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json", "--k", "200"])
    data = json.loads(result.stdout)
    assert data["k"] == 119  # the other labelled images: all of them voted
    assert data["small_classes"] == sorted(SHAPE_CLASSES)  # none fills half of 119
    assert "a smaller --k suits them" in " ".join(result.stderr.split())


def test_the_page_stays_a_page_with_hostile_names_and_many_suspects(tmp_path):
    from boda.cli._map_page import MAX_ROWS, map_html

    n = MAX_ROWS + 30
    points = [{"path": str(tmp_path / f"<!--<script>{i}.png"), "x": float(i), "y": float(i % 7),
               "folder": "a", "label": "cat", "agreement": 0.1, "majority": "dog",
               "suspect": True} for i in range(n)]
    result = {"folder": str(tmp_path), "model": "m", "layer": "l", "method": "pca", "k": 10,
              "points": points}
    page = map_html(result, [None] * n, tmp_path / "map.html")
    script = page.split("<script>", 1)[1].rsplit("</script>", 1)[0]
    assert "<" not in script.split(";", 1)[0]  # "<!--<script" would keep the element open
    data = json.loads(script[len("var POINTS = "):script.index(";\nvar tip")])
    assert data[0]["name"].endswith("<!--<script>0.png")
    assert page.count("<tr>") == 1 + MAX_ROWS + 1  # header, rows, "… and 30 more"
    assert "… and 30 more" in page


def test_the_page_shows_every_point_and_the_suspects(tmp_path, val):
    root = tmp_path / "val"
    shutil.copytree(val, root)
    (root / "cross" / "broken.png").unlink()
    odd = root / "square<" / "script>&.png"  # "</script>" and markup in a path
    odd.parent.mkdir()
    shutil.copy(root / "square" / "10.png" if (root / "square" / "10.png").exists()
                else next((root / "square").glob("*.png")), odd)
    page = tmp_path / "out" / "map.html"
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn",
                                 "--labels-from-folders", "-o", str(page)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "likely label errors:" in text and f"map written to {page}" in text
    html = page.read_text()
    assert html.count("<circle ") == 122
    assert html.count("class='suspect'") == int(re.search(r"likely label errors: (\d+)",
                                                          text).group(1))
    assert "</script>&" not in html and "<script>&" not in html  # escaped everywhere

    class Links(HTMLParser):
        hrefs: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag == "a":
                self.hrefs.append(dict(attrs)["href"])

    links = Links()
    links.feed(html)
    targets = {(page.parent / unquote_to_bytes(h).decode()).resolve() for h in links.hrefs}
    assert targets == {p.resolve() for p in root.rglob("*.png")}
    script = html.split("<script>", 1)[1].split("</script>", 1)[0]
    shown = json.loads(script[len("var POINTS = "):script.index(";\nvar tip")])
    assert len(shown) == 122 and all(p["thumb"].startswith("data:image/jpeg;base64,")
                                    for p in shown)

    again = runner.invoke(app, ["map", str(root), "--method", "pca", "-o", str(page)])
    assert again.exit_code == 2 and "--overwrite" in again.output, again.output


def test_the_folder_is_walked_as_a_scan_walks_it(tmp_path, val):
    # a Synology @eaDir/ (thumbnails: a class folder of no class), macOS ._* files
    # ("unreadable", exit 3) and DIR/.bodaignore's folders were mapped
    root = tmp_path / "val"
    shutil.copytree(val / "circle", root / "circle")
    kept = sorted(str(p) for p in root.rglob("*.png"))
    (root / "@eaDir").mkdir()
    shutil.copy(kept[0], root / "@eaDir" / "thumb.png")
    (root / "circle" / "._01.png").write_bytes(b"\0\5\26\7 AppleDouble")
    shutil.copytree(root / "circle", root / "copies", ignore=shutil.ignore_patterns("._*"))
    (root / ".bodaignore").write_text("copies/\n")
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(p["path"] for p in data["points"]) == kept and data["failed"] == []
    assert data["labelled"] == len(kept)


def test_a_tsne_map_of_identical_images_is_one_spot(tmp_path, val):
    # every feature vector the same crashed the process in scikit-learn's t-SNE (exit 139,
    # no output): run in a child process
    one = next((val / "circle").glob("[0-9]*.png"))
    for i in range(4):
        shutil.copy(one, tmp_path / f"{i}.png")
    done = subprocess.run([sys.executable, "-m", "boda.cli", "map", str(tmp_path), "--model",
                           "shapes-cnn", "--threads", "1", "--json", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    points = json.loads(done.stdout)["points"]
    assert len(points) == 4 and {(p["x"], p["y"]) for p in points} == {(0.0, 0.0)}


def test_bad_options_are_said_before_any_work(tmp_path, val, monkeypatch):
    for args, words in [
        (["--method", "umap"], "--method must be one of pca, tsne"),
        (["-o", str(tmp_path / "map.png")], "end the name with .html"),
        # scikit-learn's traceback (exit 1) after the model had run over the folder
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["--seed", str(2**32)], "Invalid value for '--seed'"),
        # PCA has neither: both were silently ignored
        (["--method", "pca", "--seed", "3"], "--seed only applies to --method tsne"),
        (["--method", "pca", "--perplexity", "5", "--seed", "1"],
         "--perplexity and --seed only apply to --method tsne"),
    ]:
        result = runner.invoke(app, ["map", str(val), "--model", "shapes-cnn", *args])
        assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    result = runner.invoke(app, ["map", str(val), "--model", "shapes-cnn"])
    assert result.exit_code != 0 and "boda[map]" in result.output
    missing = runner.invoke(app, ["map", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such folder" in missing.output


def test_the_page_escapes_every_name(tmp_path):
    from boda.cli._map_page import map_html

    evil = str(tmp_path / "a<b>" / "</script><img src=x onerror=alert(1)>.png")
    result = {"folder": str(tmp_path), "model": "m<i>", "layer": "l&", "method": "pca", "k": 3,
              "points": [
                  {"path": evil, "x": 0.0, "y": 0.0, "folder": "a<b>", "label": "c<at>",
                   "agreement": 0.0, "majority": "d&og", "suspect": True},
                  {"path": str(tmp_path / "ok.png"), "x": 1.0, "y": 2.0, "folder": None,
                   "label": None, "agreement": None, "majority": "d&og", "suspect": False},
              ]}
    page = map_html(result, [None, "data:image/jpeg;base64,AAAA"], tmp_path / "map.html")
    assert page.count("<script>") == 1 and page.count("</script>") == 1
    markup, script = page.split("<script>")
    assert "<img src=x" not in markup and "a<b>" not in markup  # shown as text
    assert "c&lt;at&gt;" in markup and "d&amp;og" in markup and "m&lt;i&gt;" in markup
    assert "</" not in script[: script.index("</script>")]  # the names cannot end the script
    assert page.count("class='suspect'") == 1


def test_suspects_are_drawn_over_the_points_on_their_spot(tmp_path):
    from boda.cli._map_page import map_html

    # the same image filed under two classes: one spot, and the suspect's red ring was
    # hidden (and its tooltip out of reach) under the point drawn after it
    points = [{"path": str(tmp_path / f"{name}.png"), "x": 0.0, "y": 0.0, "folder": name,
               "label": name, "agreement": agreement, "majority": "ship", "suspect": suspect}
              for name, agreement, suspect in [("cat", 0.0, True), ("ship", 1.0, False)]]
    points.append({**points[1], "path": str(tmp_path / "far.png"), "x": 5.0, "y": 5.0})
    page = map_html({"folder": str(tmp_path), "model": "m", "layer": "l", "method": "pca",
                     "k": 2, "points": points}, [None] * 3, tmp_path / "map.html")
    drawn = re.findall(r"<circle data-i='(\d+)'[^>]*?(class='suspect')?/>", page)
    assert drawn[-1] == ("0", "class='suspect'") and sorted(i for i, _ in drawn) == ["0", "1", "2"]


def test_the_map_is_in_view_beside_a_long_table_of_suspects(tmp_path):
    """The map keeps its size (it was stretched to the side column's height, the points
    thousands of pixels down) and stays in view while the table scrolls."""
    import os

    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no browser at /usr/bin/chromium")
    from boda.cli._map_page import write_map

    n = 150
    points = [{"path": str(tmp_path / f"{i}.png"), "x": float(i), "y": float(i % 7),
               "folder": "a", "label": "cat", "agreement": 0.1, "majority": "dog",
               "suspect": True} for i in range(n)]
    page_file = write_map({"folder": str(tmp_path), "model": "m", "layer": "l",
                           "method": "pca", "k": 10, "points": points}, [None] * n,
                          tmp_path / "map.html")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(page_file.as_uri())
        box = page.locator("svg").bounding_box()
        assert box["height"] <= 720 and box["y"] < 200
        assert page.evaluate("document.body.scrollHeight") > 2000  # the long table
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(200)
        assert -1 < page.locator("svg").bounding_box()["y"] < 100  # still in view
        overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0  # no sideways scrolling
        browser.close()


def test_max_side_decodes_smaller_and_k_has_its_short_name(val, monkeypatch):
    import boda.io

    sides = []
    real = boda.io.read_image
    monkeypatch.setattr(boda.io, "read_image", lambda p, side=None, **kw: sides.append(side)
                        or real(p, side, **kw))  # fmt: skip
    result = runner.invoke(app, ["map", str(val / "circle"), "--model", "shapes-cnn",
                                 "--method", "pca", "--max-side", "16", "-k", "3",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 0, result.output
    assert sides and set(sides) == {16}
    assert json.loads(result.stdout)["k"] == 3


def test_a_link_into_another_class_folder_is_named_as_two_labels(tmp_path, val):
    root = tmp_path / "val"
    for name in ("circle", "square"):
        shutil.copytree(val / name, root / name)
    target = sorted((root / "circle").glob("[0-9]*.png"))[0]
    os.symlink(os.path.relpath(target, root / "square"), root / "square" / "alias.png")
    os.symlink(target.name, root / "circle" / "same.png")  # in its own class: no conflict
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["linked_across_classes"] == [
        {"path": str(root / "square" / "alias.png"), "target": str(target)}]
    assert "1 link in one class folder to an image of another" in " ".join(
        result.stderr.split())
    assert str(root / "square" / "alias.png") not in {p["path"] for p in data["points"]}


def test_without_labels_the_json_has_no_label_check_fields(val):
    result = runner.invoke(app, ["map", str(val / "circle"), "--model", "shapes-cnn",
                                 "--method", "pca", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # were printed as nulls that meant nothing without --labels-from-folders
    for key in ("k", "suspects", "labelled", "small_classes", "linked_across_classes"):
        assert key not in data, key
    assert {"folder", "model", "layer", "method", "images", "points", "failed"} <= set(data)
    assert all(set(p) == {"path", "x", "y", "folder", "label"} for p in data["points"])
    assert "likely label errors" not in runner.invoke(
        app, ["map", str(val / "circle"), "--model", "shapes-cnn", "--method", "pca"]).stdout


def test_without_a_vote_every_point_still_has_the_vote_fields(tmp_path, val):
    # one labelled image: no vote; the points had no agreement, majority or suspect at
    # all (p["suspect"] failed) while the result's k and suspects were null
    root = tmp_path / "val"
    shutil.copytree(val / "circle", root)  # at the top, beside a class folder: no label
    (root / "circle").mkdir()
    shutil.move(next(root.glob("*.png")), root / "circle")
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labelled"] == 1 and data["k"] is None and data["suspects"] is None
    for p in data["points"]:
        assert (p["agreement"], p["majority"], p["suspect"]) == (None, None, None)


def test_an_empty_layer_is_a_usage_error_not_the_default_layer(val):
    result = runner.invoke(app, ["map", str(val / "circle"), "--model", "shapes-cnn",
                                 "--method", "pca", "--layer", "", "--json"])
    assert result.exit_code == 2, result.output
    assert " ".join(result.stderr.split()).startswith("error: --layer '' is empty")
    assert result.stdout == ""


def test_the_table_and_tooltip_name_files_from_the_mapped_folder_on(tmp_path):
    """The header names the folder once; each row repeated its whole absolute path,
    which took a narrow window's width and hid the label columns."""
    from boda.cli._map_page import map_html

    root = tmp_path / "사진들"
    points = [{"path": str(root / "cat" / "고양이.png"), "x": 0.0, "y": 0.0, "folder": "cat",
               "label": "cat", "agreement": 0.0, "majority": "dog", "suspect": True},
              {"path": str(root / "dog" / "b.png"), "x": 1.0, "y": 1.0, "folder": "dog",
               "label": "dog", "agreement": 1.0, "majority": "dog", "suspect": False}]
    page = map_html({"folder": str(root), "model": "m", "layer": "l", "method": "pca",
                     "k": 1, "points": points}, [None, None], tmp_path / "map.html")
    assert f">{os.path.join('cat', '고양이.png')}</a></td>" in page
    assert f"images of {root}" in page  # the header keeps the folder
    script = page.split("<script>", 1)[1]
    data = json.loads(script[len("var POINTS = "):script.index(";\nvar tip")])
    assert [d["name"] for d in data] == [os.path.join("cat", "고양이.png"),
                                         os.path.join("dog", "b.png")]


def test_the_tooltip_stays_in_a_narrow_window(tmp_path):
    """Hovering a point near the right edge of a 400 px window put the tooltip half
    outside it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no browser at /usr/bin/chromium")
    from boda.cli._map_page import write_map

    points = [{"path": str(tmp_path / f"{i}.png"), "x": float(i), "y": float(i), "folder": "a",
               "label": "cat", "agreement": 1.0, "majority": "cat", "suspect": False}
              for i in range(3)]
    page_file = write_map({"folder": str(tmp_path), "model": "m", "layer": "l", "method": "pca",
                           "k": 2, "points": points}, [None] * 3, tmp_path / "map.html")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 400, "height": 700})
        page.goto(page_file.as_uri())
        for i in range(3):  # bottom left, middle, top right
            box = page.locator(f"circle[data-i='{i}']").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            tip = page.locator("#tip").bounding_box()
            assert tip["x"] >= 0 and tip["x"] + tip["width"] <= 400, (i, tip)
            assert tip["y"] >= 0 and tip["y"] + tip["height"] <= 700, (i, tip)
        browser.close()


#: Made-up names of the shape classes: folders that name no class of ``shapes-cnn``.
MADE_UP = {"circle": "round", "square": "boxy", "triangle": "pointy", "cross": "plus"}


def test_folders_of_any_name_are_the_labels_and_the_misfiled_images_are_found(tmp_path, val):
    # a dataset's own class folders (defect/, ok/) named no class of the model: every
    # image was unlabelled, grey, and no vote was made
    root = tmp_path / "own"
    for name, made_up in MADE_UP.items():
        shutil.copytree(val / name, root / made_up, ignore=shutil.ignore_patterns("broken*"))
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labelled"] == data["images"] == 120 and data["k"] == 10
    assert {p["label"] for p in data["points"]} == set(MADE_UP.values())
    assert all(p["label"] == p["folder"] for p in data["points"])
    # the vote is the library's over the folder names
    names, vectors = _features(root)
    order = [names.index(p["path"]) for p in data["points"]]
    labels = sorted(MADE_UP.values())
    votes = neighbour_votes(vectors[order], [labels.index(p["folder"]) for p in data["points"]])
    for p, vote in zip(data["points"], votes, strict=True):
        assert p["suspect"] is vote.suspect and p["majority"] == labels[vote.majority]
        assert p["agreement"] == pytest.approx(vote.agreement)
    suspects = {Path(p["path"]).relative_to(root).as_posix() for p in data["points"]
                if p["suspect"]}
    flipped = {f"{MADE_UP[f.split('/')[0]]}/{f.split('/')[1]}" for f in FLIPPED}
    assert flipped <= suspects and len(suspects) == data["suspects"] <= 5
    assert result.stderr.strip() == ""  # no note: every image has its label


def test_folders_naming_one_model_class_are_one_class_and_others_their_own(tmp_path, val):
    root = tmp_path / "val"
    circles = sorted((val / "circle").glob("[0-9]*.png"))
    for folder, part in (("Circle", circles[:8]), ("0", circles[8:16]),  # 0: circle's index
                         ("round_things", circles[16:24])):
        (root / folder).mkdir(parents=True)
        for p in part:
            shutil.copy(p, root / folder / p.name)
    shutil.copytree(val / "square", root / "square", ignore=shutil.ignore_patterns("x*"))
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json", "-k", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    label = {p["folder"]: p["label"] for p in data["points"]}
    assert label == {"Circle": "circle", "0": "circle", "round_things": "round_things",
                     "square": "square"}
    images = data["images"]
    assert data["labelled"] == images and data["k"] == 5
    assert {p["majority"] for p in data["points"]} <= {"circle", "round_things", "square"}
    assert "folders that name the same class of the model are one class: '0', 'Circle' " \
           "as circle" in " ".join(result.stderr.split())
    # a link from one of them into the other is no image under two labels
    os.symlink(os.path.relpath(root / "Circle" / circles[0].name, root / "0"),
               root / "0" / "same.png")
    data = json.loads(runner.invoke(app, ["map", str(root), "--model", "shapes-cnn",
                                          "--method", "pca", "--labels-from-folders",
                                          "--json", "-k", "5"]).stdout)
    assert data["linked_across_classes"] == [] and data["images"] == images  # mapped once


def test_a_class_folder_of_any_name_given_as_dir_labels_its_images_with_it(tmp_path, val):
    root = tmp_path / "round"
    shutil.copytree(val / "circle", root, ignore=shutil.ignore_patterns("broken*"))
    result = runner.invoke(app, ["map", str(root), "--model", "shapes-cnn", "--method", "pca",
                                 "--labels-from-folders", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {p["label"] for p in data["points"]} == {"round"}
    assert data["labelled"] == data["images"] and data["suspects"] == 0


def test_a_model_without_class_names_labels_by_the_folders_as_they_are(tmp_path):
    from boda.cli.map_cmd import _labeller

    root = tmp_path / "val"
    paths = [str(root / f / "a.png") for f in ("3", "03", "class 3", "ok")]
    label = _labeller(root, paths, None, lambda i: f"class {i}")
    # "3" and "03" were both class 3, and "3" the same label as a folder "class 3"
    assert [label(p) for p in paths] == ["3", "03", "class 3", "ok"]
    assert label(str(root / "top.png")) is None  # beside the class folders: none
    alone = tmp_path / "husky"
    assert _labeller(alone, [str(alone / "a.png")], None, str)(str(alone / "a.png")) == "husky"


def test_every_class_of_many_has_its_own_colour(tmp_path):
    from boda.cli._map_page import PALETTE, UNLABELLED, class_colours, map_html

    colours = class_colours([f"c{i}" for i in range(60)])
    # every class past the tenth was #666666
    assert len(set(colours.values())) == 60 and UNLABELLED not in colours.values()
    assert list(colours.values())[:len(PALETTE)] == list(PALETTE)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours.values())
    points = [{"path": str(tmp_path / f"{i}.png"), "x": float(i), "y": 0.0, "folder": f"c{i}",
               "label": f"c{i}", "agreement": 1.0, "majority": f"c{i}", "suspect": False}
              for i in range(14)]
    page = map_html({"folder": str(tmp_path), "model": "m", "layer": "l", "method": "pca",
                     "k": 1, "points": points}, [None] * 14, tmp_path / "map.html")
    assert len(set(re.findall(r"<circle [^>]*fill='(#[0-9a-f]{6})'", page))) == 14
