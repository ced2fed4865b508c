"""``boda class-model``, ``boda patches``, ``boda similar``: each gives what the Python API
gives for the same settings, skips unreadable files (exit 3), refuses to replace files
unasked and names the option at fault."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from typer.testing import CliRunner  # noqa: E402

from boda.cli import app  # noqa: E402
from boda.explain import FeatureIndex, class_model, top_activating_patches  # noqa: E402
from boda.io import read_image, write_image  # noqa: E402
from boda.nn import cpu_threads, load_model, tensor_to_image  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def lm():
    return load_model("resnet20-cifar10")


@pytest.fixture(scope="module")
def small(kodak_paths):
    """Six Kodak photos at 48 px (five in DIR, one in DIR/a: walked after the five)."""
    assert len(kodak_paths) == 6
    return [read_image(p, max_side=48) for p in kodak_paths]


@pytest.fixture
def images(tmp_path, small) -> Path:
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    for i, img in enumerate(small):
        write_image(root / ("a" if i == 5 else ".") / f"k{i}.png", img)
    return root


def _run(*args: object) -> tuple[int, dict | str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    data = result.stdout
    if "--json" in args and result.stdout.strip():
        data = json.loads(result.stdout)
    return result.exit_code, data, result.stderr


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# -- class-model ----------------------------------------------------------------------------


def test_class_model_says_one_step_in_the_singular(tmp_path):
    code, out, err = _run("class-model", "-t", "cat", "--steps", 1, "-o", tmp_path / "c.png")
    assert code == 0, err
    assert "after 1 step: logit" in out  # was "after 1 steps"
    code, out, _ = _run("class-model", "-t", "cat", "--steps", 2, "-o", tmp_path / "d.png")
    assert code == 0 and "after 2 steps: logit" in out


def test_class_model_is_the_api_result(tmp_path, lm):
    settings = dict(steps=6, lr=0.1, l2=0.01, jitter=1, blur_every=2, blur_sigma=0.5, seed=3)
    code, data, _ = _run(
        "class-model", "--target", "cat", "--steps", 6, "--lr", 0.1, "--l2", 0.01,
        "--jitter", 1, "--blur", 0.5, "--blur-every", 2, "--seed", 3, "--scale", 1,
        "-o", tmp_path / "cm.png", "--json",
    )  # fmt: skip
    assert code == 0, data
    ref = class_model(lm.model, 3, size=(32, 32), **settings)
    want = tensor_to_image(ref.image[0], mean=lm.mean, std=lm.std)
    got = read_image(tmp_path / "cm.png")
    assert got.shape == (32, 32, 3)
    np.testing.assert_allclose(got, want, atol=0.5 / 255 + 1e-6)
    with torch.no_grad():
        logits = lm.model(torch.cat([torch.zeros(1, 3, 32, 32), ref.image]))
    assert data["target"] == 3 and data["target_name"] == "cat" and data["steps"] == 6
    assert data["before"]["logit"] == pytest.approx(float(logits[0, 3]), abs=1e-4)
    assert data["after"]["logit"] == pytest.approx(float(logits[1, 3]), abs=1e-4)
    probs = logits.softmax(1)[:, 3]
    assert data["after"]["probability"] == pytest.approx(float(probs[1]), abs=1e-6)
    assert data["after"]["logit"] > data["before"]["logit"]
    assert (data["width"], data["height"], data["scale"]) == (32, 32, 1)


def test_class_model_without_jitter_reports_the_api_scores_and_enlarges(tmp_path, lm):
    code, data, _ = _run("class-model", "-t", 8, "--steps", 4, "--jitter", 0, "--blur", 0,
                         "-o", tmp_path / "ship.png", "--json")  # fmt: skip
    assert code == 0, data
    ref = class_model(lm.model, 8, steps=4, lr=0.1, l2=0.05, jitter=0, blur_every=0)
    assert data["before"]["logit"] == pytest.approx(ref.scores[0], abs=1e-4)
    assert data["after"]["logit"] == pytest.approx(ref.scores[-1], abs=1e-4)
    got = read_image(tmp_path / "ship.png")
    assert got.shape == (256, 256, 3) and data["scale"] == 8  # 32 px x 8, nearest neighbour
    want = tensor_to_image(ref.image[0], mean=lm.mean, std=lm.std)
    np.testing.assert_allclose(got[::8, ::8], want, atol=0.5 / 255 + 1e-6)
    np.testing.assert_array_equal(got[3::8, 5::8], got[::8, ::8])


def test_class_model_from_a_start_image_shows_both(tmp_path, small, lm):
    start = tmp_path / "start.png"
    write_image(start, small[0])
    code, data, _ = _run("class-model", "-t", 3, "--start", start, "--steps", 0, "--scale", 2,
                         "-o", tmp_path / "both.png", "--json")  # fmt: skip
    assert code == 0, data
    # no step: the result is the start, and the scores before and after are the same
    assert data["before"] == data["after"] and data["start"] == str(start)
    from boda.nn import image_to_tensor

    x = image_to_tensor(small[0], size=(32, 32), mean=lm.mean, std=lm.std)
    with torch.no_grad():
        assert data["before"]["logit"] == pytest.approx(float(lm.model(x)[0, 3]), abs=1e-4)
    both = read_image(tmp_path / "both.png")
    assert both.shape[1] > 2 * 64 and both.shape[0] >= 64  # two 64 px panels and labels
    left = both[4 : 4 + 64, 4 : 4 + 64]
    np.testing.assert_allclose(left[::2, ::2], tensor_to_image(x[0], mean=lm.mean, std=lm.std),
                               atol=0.5 / 255 + 1e-6)


def test_class_model_labels_the_result_with_the_class_name(tmp_path, small, monkeypatch):
    from boda.cli import probe_cmd

    start = tmp_path / "start.png"
    write_image(start, small[0])
    labels = []
    real = probe_cmd._grid

    def grid(tiles, names, **kwargs):
        labels.append(list(names))
        return real(tiles, names, **kwargs)

    monkeypatch.setattr(probe_cmd, "_grid", grid)
    code, out, _ = _run("class-model", "-t", "ship", "--start", start, "--steps", 0, "--scale", 1,
                        "-o", tmp_path / "ship.png")  # fmt: skip
    assert code == 0, out
    assert labels == [["start", "ship"]]  # was "class 8"


# -- patches --------------------------------------------------------------------------------


def _patch_rows(patches) -> list[tuple]:
    return [(Path(p.source), round(p.activation, 4), tuple(p.box), tuple(p.position))
            for p in patches]  # fmt: skip


def _cli_patch_rows(data) -> list[tuple]:
    return [(Path(p["path"]), round(p["activation"], 4), tuple(p["box"]), tuple(p["position"]))
            for p in data["patches"]]  # fmt: skip


@pytest.mark.parametrize("chunk_images", [None, 2])
def test_patches_are_the_api_result(images, tmp_path, lm, monkeypatch, chunk_images):
    import boda.cli.probe_cmd as probe

    if chunk_images:  # the folder fed to the model two images at a time: same answer
        monkeypatch.setattr(probe, "_CHUNK_BYTES", chunk_images * 32 * 32 * 3 * 4)
    out = tmp_path / "patches.png"
    code, data, _ = _run("patches", images, "--layer", "layer2", "--channel", 5, "-k", 4,
                         "-o", out, "--json")  # fmt: skip
    assert code == 0, data
    ref = top_activating_patches(lm.model, "layer2", 5, str(images), size=(32, 32),
                                 mean=lm.mean, std=lm.std, k=4)  # fmt: skip
    assert _cli_patch_rows(data) == _patch_rows(ref.patches)
    assert [p["rank"] for p in data["patches"]] == [1, 2, 3, 4]
    assert data["files"] == data["read"] == 6 and data["failed"] == []
    assert (data["layer"], data["channel"], data["output"]) == ("layer2", 5, str(out))
    # the montage: a 2 x 2 grid of 96 px tiles, the best crop first, enlarged
    montage = read_image(out)
    assert montage.shape == (2 * (96 + 14 + 4) + 4, 2 * 100 + 4, 3)
    crop = ref.patches[0].crop
    factor = 96 / max(crop.shape[:2])
    h, w = round(crop.shape[0] * factor), round(crop.shape[1] * factor)
    y0, x0 = 4 + (96 - h) // 2, 4 + (96 - w) // 2
    centre = montage[y0 + h // 2, x0 + w // 2]
    src = crop[int((h // 2) / factor), int((w // 2) / factor)]
    np.testing.assert_allclose(centre, src, atol=1 / 255 + 1e-6)


def test_patches_text_output_lists_them_best_first(images, lm):
    code, out, _ = _run("patches", images, "--layer", "layer1", "--channel", 2, "-k", 3)
    assert code == 0, out
    ref = top_activating_patches(lm.model, "layer1", 2, str(images), mean=lm.mean,
                                 std=lm.std, k=3)  # fmt: skip
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert [Path(r[3]) for r in rows] == [Path(p.source) for p in ref.patches]
    assert [float(r[1]) for r in rows] == pytest.approx([p.activation for p in ref.patches],
                                                        abs=1e-4)


def test_no_normalize_feeds_the_plain_pixels(images, lm):
    code, data, _ = _run("patches", images, "--layer", "layer1", "--channel", 0, "-k", 2,
                         "--no-normalize", "--json")  # fmt: skip
    assert code == 0, data
    ref = top_activating_patches(lm.model, "layer1", 0, str(images), k=2)
    assert _cli_patch_rows(data) == _patch_rows(ref.patches)



def _gray_scripted(path: Path) -> None:
    """A tiny gray-input TorchScript model (one input channel)."""
    import warnings

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(6, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3),
    ).eval()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; users still ship it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(net, torch.rand(1, 1, 24, 24)).save(str(path))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_gray_torchscript_model_gets_gray_inputs_with_mean_statistics(tmp_path, small):
    from boda.core.image import to_gray
    from boda.nn import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor

    scripted, start = tmp_path / "gray.pt", tmp_path / "start.png"
    _gray_scripted(scripted)
    write_image(start, small[2])
    args = ["class-model", "-t", 2, "--model", scripted, "--start", start, "--size", 24,
            "--steps", 0, "--scale", 1, "-o", tmp_path / "g.png", "--json"]  # fmt: skip
    refused = _run(*args)
    assert refused[0] == 1 and "--trust-model-code" in " ".join(refused[2].split())
    code, data, _ = _run(*args, "--trust-model-code")
    assert code == 0, data
    model = torch.jit.load(str(scripted))
    mean, std = (float(np.mean(IMAGENET_MEAN)),), (float(np.mean(IMAGENET_STD)),)
    x = image_to_tensor(to_gray(read_image(start)), size=(24, 24), mean=mean, std=std)
    with torch.no_grad():
        assert data["before"]["logit"] == pytest.approx(float(model(x)[0, 2]), abs=1e-4)
    assert data["target_name"] == "class 2" and (data["width"], data["height"]) == (24, 24)
    picture = read_image(tmp_path / "g.png")
    np.testing.assert_array_equal(picture[..., 0], picture[..., 2])  # gray, shown as RGB
    # --arch is for state dicts: with a TorchScript file it was silently ignored
    code, _, err = _run(*args, "--trust-model-code", "--arch", "resnet20", "--overwrite")
    assert code == 2 and "is a TorchScript file, which holds its own architecture (drop " \
        "--arch)" in " ".join(err.split())
    # a layer of a TorchScript model cannot be hooked: said, not a torch traceback
    code, _, err = _run("patches", start.parent, "--channel", 0, "--model", scripted,
                        "--size", 24, "--trust-model-code")  # fmt: skip
    assert code == 1 and "TorchScript models do not allow" in " ".join(err.split())


# -- similar --------------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "chunk_images"), [("cosine", None), ("euclidean", 2)])
def test_similar_is_the_api_result_without_the_query(images, tmp_path, lm, monkeypatch,
                                                     metric, chunk_images):  # fmt: skip
    import boda.cli.probe_cmd as probe

    if chunk_images:
        monkeypatch.setattr(probe, "_CHUNK_BYTES", chunk_images * 32 * 32 * 3 * 4)
    query = images / "k2.png"  # inside DIR: left out of the search
    out = tmp_path / "similar.png"
    code, data, _ = _run("similar", query, images, "-k", 3, "--metric", metric, "-o", out,
                         "--json")  # fmt: skip
    assert code == 0, data
    others = sorted(p for p in images.rglob("*.png") if p != query)
    index = FeatureIndex(lm.model, "layer3", mean=lm.mean, std=lm.std, metric=metric)
    want = index.add([str(p) for p in others]).query([str(query)], k=3)[0]
    got = [(p["path"], p["similarity"]) for p in data["neighbours"]]
    assert [Path(p) for p, _ in got] == [Path(p) for p, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    assert str(query) not in {p for p, _ in got}
    assert data["read"] == 5 and data["metric"] == metric and data["layer"] == "layer3"
    # the montage: the query, then the 3 neighbours, in a 2 x 2 grid of 128 px tiles
    assert read_image(out).shape == (2 * (128 + 14 + 4) + 4, 2 * 132 + 4, 3)


def test_similar_prints_a_ranked_table(images, tmp_path, small, lm):
    query = tmp_path / "query.png"
    write_image(query, small[4][:, ::-1])  # a mirrored copy of k4: k4 comes first
    code, out, _ = _run("similar", query, images, "-k", 2, "--layer", "layer2")
    assert code == 0, out
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2"] and Path(rows[0][2]).name == "k4.png"
    assert 0.9 < float(rows[0][1]) <= 1.0 and float(rows[1][1]) <= float(rows[0][1])


def test_a_state_dict_with_arch_and_size_gives_the_built_in_answer(images, tmp_path, lm):
    weights = tmp_path / "w.pt"
    torch.save(lm.model.state_dict(), weights)  # the built-in uses ImageNet's mean/std too
    query = images / "k0.png"
    base = _run("similar", query, images, "-k", 2, "--json")
    user = _run("similar", query, images, "-k", 2, "--json", "--model", weights, "--arch",
                "resnet20", "--size", 32, "--layer", "layer3")  # fmt: skip
    assert base[0] == user[0] == 0, user
    assert user[1]["neighbours"] == base[1]["neighbours"]
    assert user[1]["model"] == "w.pt"


# -- unreadable files -----------------------------------------------------------------------


def test_unreadable_files_are_skipped_and_the_exit_status_is_3(images, tmp_path, lm):
    clean = _run("patches", images, "--channel", 1, "-k", 3, "--json")
    (images / "broken.png").write_bytes(b"not a png")
    (images / "a" / "empty.jpg").write_bytes(b"")
    code, data, _ = _run("patches", images, "--channel", 1, "-k", 3, "--json")
    assert code == 3
    assert sorted(Path(f["path"]).name for f in data["failed"]) == ["broken.png", "empty.jpg"]
    assert all(f["reason"] for f in data["failed"])
    assert data["patches"] == clean[1]["patches"] and (data["files"], data["read"]) == (8, 6)
    code, out, err = _run("similar", images / "k0.png", images, "-k", 2, "-o",
                          tmp_path / "s.png")  # fmt: skip
    assert code == 3 and (tmp_path / "s.png").is_file()
    assert "warning: skipped" in err and "broken.png" in err
    assert "2 of 7 files could not be read" in " ".join(err.split())
    assert out.count("\n") == 4  # the heading, two neighbours, the montage line


def test_the_folder_is_walked_as_a_scan_walks_it(images):
    # the default excludes (a Synology @eaDir/, macOS ._* AppleDouble files) and
    # DIR/.bodaignore were read too: thumbnails among the results, and ._* files
    # "unreadable" (exit 3), unlike the Python functions on the same folder
    (images / "@eaDir").mkdir()
    shutil.copy(images / "k1.png", images / "@eaDir" / "k1.png")
    (images / "._k1.png").write_bytes(b"\0\5\26\7 AppleDouble")
    (images / "copies").mkdir()
    shutil.copy(images / "k2.png", images / "copies" / "k2.png")
    (images / ".bodaignore").write_text("copies/\n")
    kept = sorted(str(p) for p in images.rglob("k*.png")
                  if p.parent.name not in ("@eaDir", "copies"))
    code, data, err = _run("patches", images, "--channel", 1, "-k", 10, "--json")
    assert code == 0, err
    assert sorted(p["path"] for p in data["patches"]) == kept and data["failed"] == []
    code, data, err = _run("similar", images / "k0.png", images, "-k", 10, "--json")
    assert code == 0, err
    assert sorted(n["path"] for n in data["neighbours"]) == [
        p for p in kept if p != str(images / "k0.png")]


def test_a_folder_where_nothing_can_be_read_is_a_failure(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a.png").write_bytes(b"junk")
    code, _, err = _run("patches", root, "--channel", 0, "-o", tmp_path / "p.png")
    assert code == 1 and "none of the 1 image files" in " ".join(err.split())
    assert not (tmp_path / "p.png").exists()


# -- outputs and usage errors ---------------------------------------------------------------


def _writers(images: Path, out: Path) -> dict[str, list]:
    return {
        "class-model": ["class-model", "-t", 1, "--steps", 1, "-o", out],
        "patches": ["patches", images, "--channel", 0, "-o", out],
        "similar": ["similar", images / "k0.png", images, "-o", out],
    }


@pytest.mark.parametrize("name", ["class-model", "patches", "similar"])
def test_an_existing_output_is_refused_before_any_work(images, tmp_path, monkeypatch, name):
    import boda.io

    keep = tmp_path / "keep.png"
    write_image(keep, np.zeros((4, 4, 3), np.float32))
    before = _md5(keep)

    def no_reading(*args, **kwargs):
        raise AssertionError("an image was read before the output was checked")

    with monkeypatch.context() as m:
        m.setattr(boda.io, "read_image", no_reading)
        code, out, err = _run(*_writers(images, keep)[name])
    assert code == 2, out
    assert f"'{keep}' already exists; add --overwrite" in " ".join(err.split())
    assert _md5(keep) == before
    code, out, _ = _run(*_writers(images, keep)[name], "--overwrite")
    assert code == 0, out
    assert _md5(keep) != before


def test_an_image_of_dir_is_never_the_output_even_with_overwrite(images):
    before = _md5(images / "k1.png")
    for args in (["patches", images, "--channel", 0, "-o", images / "k1.png"],
                 ["similar", images / "k0.png", images, "-o", images / "k1.png"],
                 ["similar", images / "k0.png", images, "--index", images / "k1.png"]):
        code, _, err = _run(*args, "--overwrite")
        assert code == 2 and "refusing to overwrite the input" in " ".join(err.split()), args
    assert _md5(images / "k1.png") == before


@pytest.mark.parametrize(
    ("args", "words"),
    [(["patches", "{d}", "--channel", "0", "--layer", "layr2"], ["--layer", "'layer2'"]),
     (["patches", "{d}", "--channel", "16", "--layer", "layer1"],
      ["--channel 16 is out of range", "16 channels, 0 to 15"]),
     (["patches", "{d}", "--channel", "0", "--layer", "linear"], ["--layer linear", "(1, 10)"]),
     (["class-model", "-t", "10", "-o", "{t}/x.png"], ["--target 10 is out of range", "0 to 9"]),
     (["class-model", "-t", "unicorn", "-o", "{t}/x.png"], ["--target 'unicorn'", "airplane"]),
     (["class-model", "-t", "1", "--lr", "0", "-o", "{t}/x.png"], ["--lr must be above 0"]),
     # infinity passed the range checks: a NaN picture (exit 0), or a traceback for --blur
     (["class-model", "-t", "1", "--lr", "inf", "-o", "{t}/x.png"], ["--lr must be a finite"]),
     (["class-model", "-t", "1", "--l2", "inf", "-o", "{t}/x.png"], ["--l2 must be a finite"]),
     (["class-model", "-t", "1", "--blur", "inf", "-o", "{t}/x.png"],
      ["--blur must be a finite"]),
     # a picture of 3 200 000 px a side was a MemoryError traceback after the ascent
     (["class-model", "-t", "1", "--scale", "100000", "-o", "{t}/x.png"],
      ["--scale 100000 would make a picture 3200000 px wide", "at most --scale 256"]),
     (["patches", "{t}/empty", "--channel", "0"], ["holds no image files"]),
     (["patches", "{d}/k0.png", "--channel", "0"], ["is a file; give a folder"]),
     (["patches", "{t}/gone", "--channel", "0"], ["'{t}/gone': no such folder"]),
     (["similar", "{t}/gone.png", "{d}"], ["QUERY '{t}/gone.png': no such file"]),
     (["similar", "{d}/k0.png", "{d}", "--metric", "manhattan"], ["--metric must be"]),
     (["similar", "{d}/k0.png", "{d}", "--size", "64"], ["--size 64", "takes 32x32"]),
     (["similar", "{d}/k0.png", "{d}", "--model", "{t}/w.pt", "--arch", "resnet20"],
      ["give --size PX"]),
     (["similar", "{d}/k0.png", "{d}", "--arch", "resnet20"], ["drop --arch"]),
     # silently ignored before: the default layer, and a flag a built-in model has no use for
     (["similar", "{d}/k0.png", "{d}", "--layer", ""], ["--layer '' is empty"]),
     (["patches", "{d}", "--channel", "0", "--layer", ""], ["--layer '' is empty"]),
     (["similar", "{d}/k0.png", "{d}", "--trust-model-code"],
      ["resnet20-cifar10 is a built-in model", "(drop --trust-model-code)"]),
     (["class-model", "-t", "1", "--trust-model-code", "-o", "{t}/x.png"],
      ["(drop --trust-model-code)"]),
     (["similar", "{d}/k0.png", "{d}", "--model", "{t}/w.pt", "--arch", "resnet18"],
      ["--arch 'resnet18' is not an architecture", "resnet20, resnet32"]),  # was exit 1
     (["similar", "{d}/k0.png", "{d}", "--model", "{t}/none.pt"], ["--model", "no such file"])],
)  # fmt: skip
def test_bad_arguments_are_usage_errors_that_name_the_fix(images, tmp_path, lm, args, words):
    (tmp_path / "empty").mkdir()
    torch.save(lm.model.state_dict(), tmp_path / "w.pt")
    before = sorted(tmp_path.rglob("*"))
    argv = [a.format(d=images, t=tmp_path) for a in args]
    code, out, err = _run(*argv)
    assert code == 2, (out, err)
    flat = " ".join(err.split())
    assert flat.startswith("error:")
    for word in words:
        assert word.format(t=tmp_path) in flat, flat
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_the_query_alone_in_its_folder_is_said(tmp_path, small):
    root = tmp_path / "one"
    root.mkdir()
    write_image(root / "q.png", small[0])
    code, _, err = _run("similar", root / "q.png", root)
    assert code == 2 and "holds no image files besides QUERY" in " ".join(err.split())
    # a hidden folder is not searched, as boda scan does not enter it
    (root / ".cache").mkdir()
    shutil.copy(root / "q.png", root / ".cache" / "thumb.png")
    assert _run("similar", root / "q.png", root)[0] == 2


# -- similar --index ------------------------------------------------------------------------


def test_an_index_file_reuses_unchanged_files_and_gives_the_same_answer(
    images, tmp_path, small, monkeypatch
):
    import os

    import boda.io

    index = tmp_path / "feat.npz"
    query = images / "k0.png"
    fresh = _run("similar", query, images, "-k", 5, "--json")[1]["neighbours"]
    code, first, _ = _run("similar", query, images, "-k", 5, "--json", "--index", index)
    assert code == 0 and first["neighbours"] == fresh
    assert first["index"] == {"path": str(index), "reused": 0, "embedded": 5}
    reads = []
    real = boda.io.read_image
    monkeypatch.setattr(boda.io, "read_image", lambda p, *a, **kw: reads.append(p) or
                        real(p, *a, **kw))  # fmt: skip
    code, second, _ = _run("similar", query, images, "-k", 5, "--json", "--index", index)
    assert code == 0 and second["index"]["reused"] == 5 and second["index"]["embedded"] == 0
    assert [Path(p) for p in reads] == [query]  # the folder was not read again
    for a, b in zip(second["neighbours"], fresh, strict=True):
        assert a["path"] == b["path"] and a["similarity"] == pytest.approx(b["similarity"],
                                                                           abs=1e-6)
    # a changed file (size and time) is read again; a removed one leaves the index
    write_image(images / "k3.png", small[3][::-1])
    os.utime(images / "k3.png", ns=(1, 1))
    (images / "k4.png").unlink()
    reads.clear()
    code, third, _ = _run("similar", query, images, "-k", 5, "--json", "--index", index)
    assert code == 0 and (third["index"]["reused"], third["index"]["embedded"]) == (3, 1)
    assert [Path(p).name for p in reads] == ["k0.png", "k3.png"]
    monkeypatch.undo()
    now = _run("similar", query, images, "-k", 5, "--json")[1]["neighbours"]
    assert [p["path"] for p in third["neighbours"]] == [p["path"] for p in now]
    assert [p["similarity"] for p in third["neighbours"]] == pytest.approx(
        [p["similarity"] for p in now], abs=1e-6)
    # another query of the folder: k0, the query before, was kept in the index too, and
    # k1, the query now, keeps its features
    code, other, _ = _run("similar", images / "k1.png", images, "--json", "--index", index)
    assert code == 0 and (other["index"]["reused"], other["index"]["embedded"]) == (4, 0)
    plain = _run("similar", images / "k1.png", images, "--json")[1]["neighbours"]
    assert [p["path"] for p in other["neighbours"]] == [p["path"] for p in plain]
    assert [p["similarity"] for p in other["neighbours"]] == pytest.approx(
        [p["similarity"] for p in plain], abs=1e-6)  # k0's kept features are the folder's
    code, again, _ = _run("similar", query, images, "--json", "--index", index)
    assert code == 0 and (again["index"]["reused"], again["index"]["embedded"]) == (4, 0)


def test_an_index_used_for_another_folder_keeps_the_first_folders_features(
    images, tmp_path, small
):
    index = tmp_path / "feat.npz"
    query = images / "k0.png"
    assert _run("similar", query, images, "--index", index)[0] == 0
    other = tmp_path / "trip2"
    other.mkdir()
    for k in range(3):
        write_image(other / f"t{k}.png", small[k][:, ::-1])
    code, data, _ = _run("similar", query, other, "--index", index, "--json")
    assert code == 0 and (data["index"]["reused"], data["index"]["embedded"]) == (0, 3)
    assert [Path(n["path"]).parent for n in data["neighbours"]] == [other] * 3
    code, data, _ = _run("similar", query, images, "--index", index, "--json")
    assert code == 0 and (data["index"]["reused"], data["index"]["embedded"]) == (5, 0)
    code, data, _ = _run("similar", query, other, "--index", index, "--json")
    assert code == 0 and (data["index"]["reused"], data["index"]["embedded"]) == (3, 0)


def test_an_index_of_other_settings_or_another_file_is_not_replaced_unasked(images, tmp_path):
    index = tmp_path / "feat.npz"
    query = images / "k0.png"
    assert _run("similar", query, images, "--index", index)[0] == 0
    before = _md5(index)
    code, _, err = _run("similar", query, images, "--index", index, "--layer", "layer2")
    assert code == 2 and "holds features of another layer" in " ".join(err.split())
    assert _md5(index) == before
    code, data, _ = _run("similar", query, images, "--index", index, "--layer", "layer2",
                         "--overwrite", "--json")  # fmt: skip
    assert code == 0 and data["index"]["embedded"] == 5 and _md5(index) != before
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes")
    code, _, err = _run("similar", query, images, "--index", notes)
    assert code == 2 and "is not a feature index boda wrote" in " ".join(err.split())
    assert notes.read_text() == "my notes"
    code, _, err = _run("similar", query, images, "--index", query)
    assert code == 2 and "refusing to overwrite the input" in " ".join(err.split())


def test_without_pytorch_each_command_says_how_to_get_it(images, tmp_path):
    import subprocess
    import sys

    block = (
        "import importlib.abc, sys\n"
        "class _Missing(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, _Missing())\n"
        "from boda.cli import app\n"
    )
    runs = [["class-model", "-t", "1", "-o", str(tmp_path / "c.png")],
            ["patches", str(images), "--channel", "0"],
            ["similar", str(images / "k0.png"), str(images)]]  # fmt: skip
    for argv in runs:
        done = subprocess.run([sys.executable, "-c", block + f"app({argv!r})"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 1, (argv, done.stderr)
        assert "pip install 'boda[torch]'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "c.png").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_model_that_fails_on_the_size_is_a_one_line_failure(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 14 * 14, 2)).eval()  # 16 px inputs only
    scripted = tmp_path / "fixed.pt"
    torch.jit.trace(net, torch.rand(1, 3, 16, 16)).save(str(scripted))
    args = ["class-model", "-t", 0, "--model", scripted, "--trust-model-code", "--steps", 1,
            "-o", tmp_path / "x.png"]  # fmt: skip
    assert _run(*args, "--size", 16)[0] == 0
    code, _, err = _run(*args, "--size", 24, "--overwrite")
    assert code == 1 and err.startswith("error: fixed.pt failed:") and "Traceback" not in err


def test_max_side_decodes_smaller_and_feeds_what_the_api_gets_from_those_arrays(images, lm):
    code, data, _ = _run("patches", images, "--channel", 3, "--layer", "layer1", "-k", 3,
                         "--max-side", 40, "--json")  # fmt: skip
    assert code == 0, data
    paths = [str(p) for p in sorted(images.glob("*.png"))] + [str(images / "a" / "k5.png")]
    arrays = [read_image(p, 40) for p in paths]
    ref = top_activating_patches(lm.model, "layer1", 3, arrays, mean=lm.mean, std=lm.std, k=3)
    want = [(Path(paths[int(p.source[6:-1])]), round(p.activation, 4), tuple(p.box),
             tuple(p.position)) for p in ref.patches]  # fmt: skip
    assert _cli_patch_rows(data) == want
    full = _run("patches", images, "--channel", 3, "--layer", "layer1", "-k", 3, "--json")[1]
    assert [p["activation"] for p in full["patches"]] != [p["activation"] for p in
                                                          data["patches"]]  # fmt: skip
    code, _, err = _run("similar", images / "k0.png", images, "--max-side", 16)
    assert code == 2 and "--max-side 16 is below the model's input size (32x32)" in err


def test_an_exact_copy_is_at_distance_zero_not_minus_zero(images):
    import shutil

    shutil.copy(images / "k0.png", images / "copy.png")
    code, out, _ = _run("similar", images / "k0.png", images, "--metric", "euclidean", "-k", 1)
    assert code == 0
    line = [s for s in out.splitlines() if s.strip().startswith("1 ")][0]
    assert line.split()[1] == "0.0000" and line.split()[2].endswith("copy.png")


def test_a_wrong_layer_is_said_alike_by_every_command(images):
    lines = set()
    for args in (["similar", images / "k0.png", images], ["patches", images, "-c", 0],
                 ["explain", images / "k0.png"]):
        code, _, err = _run(*args, "--layer", "layr3")
        assert code == 2
        lines.add(" ".join(err.split()))
    assert lines == {"error: --layer 'layr3' is not a module of the model; did you mean "
                     "'layer3', 'layer3.2' or 'layer3.1'? (model.named_modules() lists the names)"}
