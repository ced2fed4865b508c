"""``boda explain`` on several files and folders, and ``--metrics``.

The shipped ``resnet20-cifar10`` on tiny images made here and the Kodak
fixtures.  References: a single-image run of the same file (the batch explains
each image as the one-image command does) and :mod:`boda.explain.metrics`
called directly on maps made by the explainer classes at the model's input size.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import boda.nn
from boda.cli import app
from boda.errors import ModelError
from boda.explain import GradCAM, GuidedBackprop, Saliency
from boda.explain.metrics import average_drop_increase, deletion_curve, insertion_curve
from boda.io import read_image, write_image
from boda.nn import image_to_tensor, load_model

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny(path: Path, seed: int, side: int = 32) -> Path:
    """A ``side`` px crop of a Kodak photo (``seed`` picks it): a CIFAR-sized image."""
    kodak = Path(__file__).parent / "data" / "kodak"
    names = sorted(p.name for p in kodak.glob("*.png"))
    img = read_image(kodak / names[seed % len(names)], max_side=side + 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, img[:side, :side])
    return path


def _json(result) -> object:
    return json.loads(result.stdout)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def loads(monkeypatch):
    """How many times the command loaded a model."""
    calls = []
    real = boda.nn.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(boda.nn, "load_model", counting)
    return calls


def test_several_files_one_model_each_as_the_single_command_explains_it(tmp_path, loads,
                                                                        kodak_paths):  # fmt: skip
    a = _tiny(tmp_path / "a.png", 0)
    b = _tiny(tmp_path / "b.png", 1, side=20)  # smaller than the model's 32 px input
    kodak = kodak_paths[2]
    out = tmp_path / "montages"
    args = ["--method", "gradcam,saliency"]
    result = runner.invoke(app, ["explain", str(a), str(b), str(kodak), *args, "-o", str(out),
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(loads) == 1  # the model is loaded once for the batch
    records = _json(result)
    assert [r["image"] for r in records] == [str(a), str(b), str(kodak)]
    assert [r["output"] for r in records] == [
        str(out / "a.png"), str(out / "b.png"), str(out / f"{kodak.stem}.png")
    ]
    for i, (record, source) in enumerate(zip(records, (a, b, kodak), strict=True)):
        own = tmp_path / f"single{i}.png"
        single = runner.invoke(app, ["explain", str(source), *args, "--json", "-o", str(own)])
        assert single.exit_code == 0, single.output
        alone = _json(single)
        assert set(record) == set(alone) and "metrics" not in record
        assert {**record, "output": str(own)} == alone
        assert np.array_equal(read_image(record["output"]), read_image(own))


def test_a_folder_is_walked_a_broken_file_is_listed_and_the_rest_explained(tmp_path):
    data = tmp_path / "val"
    _tiny(data / "cat.png", 0)
    _tiny(data / "sub" / "deeper" / "dog.png", 1)
    _tiny(data / ".boda" / "thumb.png", 2)  # hidden folders are not walked
    (data / "broken.png").write_bytes(b"not a png at all")
    (data / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    result = runner.invoke(app, ["explain", str(data), "--method", "cam", "-o", str(out),
                                 "--json"])  # fmt: skip
    assert result.exit_code == 3, result.output
    records = _json(result)
    by_name = {Path(r["image"]).relative_to(data).as_posix(): r for r in records}
    assert set(by_name) == {"broken.png", "cat.png", "sub/deeper/dog.png"}
    broken = by_name["broken.png"]
    assert set(broken) == {"image", "error"} and "broken.png" in broken["error"]
    assert by_name["cat.png"]["output"] == str(out / "cat.png")
    assert by_name["sub/deeper/dog.png"]["output"] == str(out / "sub" / "deeper" / "dog.png")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["cat.png", "index.html", "sub/deeper/dog.png"]
    assert "1 of 3 images could not be read or explained" in " ".join(result.stderr.split())

    # The console: the good ones explained, the broken one marked, the summary on stderr.
    shown = runner.invoke(app, ["explain", str(data), "--method", "cam"])
    assert shown.exit_code == 3
    text = " ".join(shown.stdout.split())
    assert f"failed {data / 'broken.png'}: cannot read image" in text
    assert f"{data / 'cat.png'}: predicted" in text and "dog.png: predicted" in text
    assert "2 of 3 images explained" in text
    assert "could not be read or explained" in shown.stderr and "broken" not in shown.stderr


def test_clashing_names_get_their_own_montages(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _tiny(first / "x.png", 0)
    write_image(first / "x.jpg", read_image(_tiny(tmp_path / "t.png", 1)))  # x.png's name
    _tiny(first / "x-2.png", 2)  # the name a clash would take
    _tiny(second / "X.png", 3)  # x.png on a case-insensitive disk
    loose = _tiny(tmp_path / "elsewhere" / "x.png", 4)
    out = tmp_path / "out"
    result = runner.invoke(app, ["explain", str(first), str(second), str(loose), "--method",
                                 "cam", "-o", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    records = _json(result)
    outputs = [r["output"] for r in records]
    assert len(records) == 5 and len({o.casefold() for o in outputs}) == 5
    assert [Path(o).name for o in outputs] == ["x-2.png", "x.png", "x-3.png", "X-4.png",
                                               "x-5.png"]  # fmt: skip
    assert [Path(r["image"]).name for r in records] == ["x-2.png", "x.jpg", "x.png", "X.png",
                                                        "x.png"]  # fmt: skip
    # each montage is its own image's: the one the single-image command writes
    for i, record in enumerate(records):
        own = tmp_path / f"own{i}.png"
        single = runner.invoke(app, ["explain", record["image"], "--method", "cam", "-o",
                                     str(own)])  # fmt: skip
        assert single.exit_code == 0, single.output
        assert np.array_equal(read_image(record["output"]), read_image(own)), record


def test_existing_montages_are_refused_before_any_work(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _tiny(data / "a.png", 0)
    _tiny(data / "sub" / "b.png", 1)
    out = tmp_path / "out"
    keep = out / "sub" / "b.png"
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"the user's file")

    def no_work(*args, **kwargs):
        raise AssertionError("a model was loaded before the outputs were checked")

    with monkeypatch.context() as patch:
        patch.setattr(boda.nn, "load_model", no_work)
        result = runner.invoke(app, ["explain", str(data), "-o", str(out)])
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert f"1 of its files (montages, index.html) already exists ('{keep}')" in text
        assert "add --overwrite" in text
        assert keep.read_bytes() == b"the user's file" and not (out / "a.png").exists()
        # -o is the folder of one of the inputs: a montage would replace it, refused
        # even with --overwrite (as is any input folder: test_explain_cli_audit.py)
        result = runner.invoke(app, ["explain", str(data), "-o", str(data), "--overwrite"])
        assert result.exit_code == 2 and "is the input folder" in result.output
        # a loose file's montage that would replace another input, the same
        result = runner.invoke(app, ["explain", str(data / "a.png"), str(data / "sub" / "b.png"),
                                     "-o", str(data), "--overwrite"])
        assert result.exit_code == 2 and "refusing to overwrite the input" in result.output
        # -o an existing file, or an image file name, while several images are explained
        for bad in (data / "a.png", tmp_path / "montage.png"):
            result = runner.invoke(app, ["explain", str(data), "-o", str(bad)])
            assert result.exit_code == 2 and "names a folder" in result.output, result.output
        # an input that does not exist is a usage error, found before the work
        gone = str(tmp_path / "gone.png")
        result = runner.invoke(app, ["explain", str(data), gone, "-o", str(tmp_path / "new")])
        assert result.exit_code == 2 and "gone.png" in result.output
        empty = tmp_path / "empty"
        empty.mkdir()
        result = runner.invoke(app, ["explain", str(empty)])
        assert result.exit_code == 2 and "no image files" in result.output
    assert not (tmp_path / "new").exists() and not (tmp_path / "montage.png").exists()
    assert sorted(p.name for p in data.rglob("*")) == ["a.png", "b.png", "sub"]

    result = runner.invoke(app, ["explain", str(data), "-o", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert read_image(keep).shape[1] > 32 and (out / "a.png").is_file()


def test_an_interrupt_leaves_no_partial_montage(tmp_path, monkeypatch):
    import boda._io_write

    data = tmp_path / "data"
    for i in range(3):
        _tiny(data / f"{i}.png", i)
    out = tmp_path / "out"
    written = []
    real = os.fsync

    def interrupt_the_second(fd):
        written.append(fd)
        if len(written) == 2:  # the second montage's bytes are in its temporary file
            raise KeyboardInterrupt
        return real(fd)

    monkeypatch.setattr(boda._io_write.os, "fsync", interrupt_the_second)
    result = runner.invoke(app, ["explain", str(data), "--method", "cam", "-o", str(out)])
    assert result.exit_code != 0
    assert sorted(p.name for p in out.iterdir()) == ["0.png"]  # complete, nothing partial
    assert read_image(out / "0.png").shape[0] >= 32


def test_progress_bar_follows_scan_conventions(tmp_path, monkeypatch):
    import boda.cli._common as common
    import boda.cli.explain_cmd

    shown: list[bool] = []

    def spy(label, *, enabled=True):
        shown.append(enabled)
        return common.progress_bar(label, enabled=enabled)

    monkeypatch.setattr(boda.cli.explain_cmd, "progress_bar", spy)
    a, b = _tiny(tmp_path / "a.png", 0), _tiny(tmp_path / "b.png", 1)
    for extra in ([], ["--quiet"], ["-q"], ["--json"]):
        result = runner.invoke(app, ["explain", str(a), str(b), "--method", "cam", *extra])
        assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["explain", str(a), "--method", "cam"]).exit_code == 0
    assert shown == [True, False, False, False]  # none for a single image


# -- --metrics -------------------------------------------------------------------------------


def _reference(image: np.ndarray, target: int) -> dict[str, dict[str, float]]:
    """The metrics of Grad-CAM and saliency maps made at the model's input size by the
    explainer classes, on the model's normalised input: boda.explain.metrics directly."""
    lm = load_model("resnet20-cifar10")
    x = image_to_tensor(image, size=lm.input_size, mean=lm.mean, std=lm.std)
    out = {}
    for name, make in (("gradcam", lambda: GradCAM(lm.model, "layer3")),
                       ("saliency", lambda: Saliency(lm.model))):  # fmt: skip
        with make() as explainer:
            maps = explainer(x, target)
        drop = average_drop_increase(lm.model, x, maps, target)
        out[name] = {
            "deletion_auc": float(deletion_curve(lm.model, x, maps, target).auc[0]),
            "insertion_auc": float(insertion_curve(lm.model, x, maps, target).auc[0]),
            "average_drop": drop["average_drop"],
            "average_increase": drop["average_increase"],
        }
    return out


def _close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for method in want:
        assert set(got[method]) == set(want[method])
        for key, value in want[method].items():
            assert got[method][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (method, key)


@pytest.mark.parametrize("which", ["cifar-sized", "kodak-500px"])
def test_metrics_are_those_of_boda_explain_metrics_on_the_same_map(tmp_path, kodak_paths,
                                                                   which):  # fmt: skip
    path = _tiny(tmp_path / "a.png", 3) if which == "cifar-sized" else kodak_paths[0]
    target = 3  # not the predicted class: the metrics follow the class explained
    args = ["explain", str(path), "--method", "gradcam,saliency", "--target", str(target)]
    result = runner.invoke(app, [*args, "--metrics", "--json"])
    assert result.exit_code == 0, result.output
    data = _json(result)
    _close(data["metrics"], _reference(read_image(path), target))
    assert data["target"] == target
    # and the maps, predictions and stats are those of the run without --metrics
    plain = _json(runner.invoke(app, [*args, "--json"]))
    assert {k: v for k, v in data.items() if k != "metrics"} == plain


def test_several_images_end_with_the_mean_of_each_metric_per_method(tmp_path):
    paths = [_tiny(tmp_path / f"{i}.png", i) for i in range(3)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG nothing more")
    args = ["explain", *map(str, paths), str(broken), "--method", "gradcam,saliency",
            "--metrics"]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 3, result.output
    data = _json(result)
    assert set(data) == {"images", "summary"}
    records = data["images"]
    assert records[-1]["image"] == str(broken) and "error" in records[-1]
    good = records[:3]
    for record, path in zip(good, paths, strict=True):
        _close(record["metrics"], _reference(read_image(path), record["target"]))
    summary = data["summary"]
    assert (summary["explained"], summary["failed"]) == (3, 1)
    # Average Drop and Increase over a data set (the papers' definition) on the stacked
    # batch, and the mean AUCs, from the library
    lm = load_model("resnet20-cifar10")
    x = torch.cat([image_to_tensor(read_image(p), mean=lm.mean, std=lm.std) for p in paths])
    targets = [r["target"] for r in good]
    with GradCAM(lm.model, "layer3") as cam:
        maps = cam(x, targets)
    want = average_drop_increase(lm.model, x, maps, targets)
    got = summary["metrics"]["gradcam"]
    assert got["average_drop"] == pytest.approx(want["average_drop"], rel=1e-5)
    assert got["average_increase"] == pytest.approx(want["average_increase"], rel=1e-6)
    # the mean AUC is the mean of the images' AUCs (each checked against the library
    # above, image by image: a batched forward changes the maps' last bits, which can
    # reorder near-equal pixels of a deletion curve)
    per_image = [r["metrics"]["gradcam"]["deletion_auc"] for r in good]
    assert got["deletion_auc"] == pytest.approx(sum(per_image) / 3, rel=1e-6)
    auc = deletion_curve(lm.model, x, maps, targets).auc.mean()
    assert got["deletion_auc"] == pytest.approx(float(auc), rel=1e-2)
    assert set(summary["metrics"]) == {"gradcam", "saliency"}

    # The console: a metrics line under each map, then the table of means.
    shown = runner.invoke(app, args)
    assert shown.exit_code == 3
    text = shown.stdout
    assert text.count("deletion AUC") == 2 * 3 + 1  # one per map, and the table's column
    assert "faithfulness over 3 images (mean)" in text
    table = text[text.index("faithfulness over 3 images"):]
    row = next(line for line in table.splitlines() if line.strip().startswith("saliency "))
    means = summary["metrics"]["saliency"]
    for key, digits in (("deletion_auc", 3), ("insertion_auc", 3), ("average_drop", 1),
                        ("average_increase", 1)):  # fmt: skip
        assert f"{means[key]:.{digits}f}" in row, (key, row)


def test_one_image_is_shown_as_before(tmp_path):
    path = _tiny(tmp_path / "photo.png", 0)
    out = tmp_path / "m.png"
    result = runner.invoke(app, ["explain", str(path), "--method", "cam,saliency",
                                 "-o", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = _json(result)
    assert list(data) == ["image", "model", "layer", "target", "target_name", "predictions",
                          "maps", "output"]  # fmt: skip
    assert data["output"] == str(out) and out.is_file()
    shown = runner.invoke(app, ["explain", str(path), "--method", "cam,saliency"])
    lines = shown.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"{path}: predicted ")
    assert lines[1].startswith("  cam             peak at (x=")
    assert lines[2].startswith("  saliency        peak at (x=")
    # -o is a file here, not a folder; an existing one is refused as before
    again = runner.invoke(app, ["explain", str(path), "-o", str(out)])
    assert again.exit_code == 2 and "already exists; add --overwrite" in again.output
    # with --metrics: one more line per map and what the numbers mean
    shown = runner.invoke(app, ["explain", str(path), "--method", "cam,saliency", "--metrics"])
    lines = shown.stdout.splitlines()
    assert len(lines) == 6 and lines[2].strip().startswith("deletion AUC ")
    assert "confidence up: " in lines[2] and "lower is better" in lines[5]


def test_an_image_the_model_fails_on_or_over_the_pixel_limit_is_listed(tmp_path):
    # A user model with no fixed input size whose 7 px kernel fails on a 4 px image.
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 7), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 3),
    ).eval()  # fmt: skip
    model = tmp_path / "net.ts"
    with warnings.catch_warnings():  # torch 2.13 calls tracing deprecated; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(net, torch.rand(1, 3, 16, 16)).save(str(model))
    data = tmp_path / "data"
    good = _tiny(data / "good.png", 0, side=16)
    small = _tiny(data / "small.png", 1, side=4)
    big = _tiny(data / "big.png", 2, side=24)
    args = ["explain", str(data), "--model", str(model), "--trust-model-code", "--method",
            "saliency", "--max-pixels", "400", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    records = {Path(r["image"]).name: r for r in _json(result)}
    assert records["good.png"]["image"] == str(good) and "maps" in records["good.png"]
    assert "failed on a (1, 3, 4, 4) float32 input" in records["small.png"]["error"]
    assert records["small.png"]["image"] == str(small)
    assert records["big.png"]["image"] == str(big)  # 576 pixels, over the limit of 400
    assert "decompression-bomb" in records["big.png"]["error"]


def test_a_layer_that_gives_no_map_is_a_usage_error_once_not_a_failure_per_image(tmp_path):
    data = tmp_path / "val"
    for i in range(3):
        _tiny(data / f"{i}.png", i)
    state = tmp_path / "w.pt"
    torch.save(load_model("resnet20-cifar10").model.state_dict(), state)
    user = ["--model", str(state), "--arch", "resnet20"]  # no --size: each image's own
    cases = [([str(data)], "linear", "no (B, C, H, W) maps"),  # was: 3 images failed, exit 3
             ([str(data / "0.png")], "linear", "no (B, C, H, W) maps"),  # was: exit 1
             ([str(data)], "pool", "1x1 maps"),  # was: rounding noise shown as a heat map
             ([str(data), *user], "linear", "no (B, C, H, W) maps")]
    for inputs, layer, kind in cases:
        result = runner.invoke(app, ["explain", *inputs, "--layer", layer, "-q"])
        assert result.exit_code == 2, (inputs, result.output)
        said = " ".join(result.stderr.split())
        assert said.startswith(f"error: --layer {layer} gives") and kind in said, said
        assert "failed" not in result.stdout
    assert runner.invoke(app, ["explain", str(data), "--layer", "layer2", "-q"]).exit_code == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace
def test_layer_methods_on_a_torchscript_model_are_refused_once_for_a_folder(tmp_path):
    data = tmp_path / "val"
    for i in range(2):
        _tiny(data / f"{i}.png", i)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 3)).eval()  # fmt: skip
    ts = tmp_path / "net.ts"
    torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, 16, 16)), str(ts))
    model = ["--model", str(ts), "--trust-model-code", "--size", "16"]
    result = runner.invoke(app, ["explain", str(data), *model, "--method", "saliency,gradcam"])
    assert result.exit_code == 1, result.output  # was: every image failed, exit 3
    said = " ".join(result.stderr.split())
    assert "TorchScript models do not allow" in said and "saliency, smoothgrad or occlusion" in said
    assert "failed" not in result.stdout
    assert runner.invoke(app, ["explain", str(data), *model, "--method", "saliency"]).exit_code == 0
    # guided backpropagation cannot reroute TorchScript's ReLUs: the same refusal, once (it
    # was exit 2, a usage error, with no word of what to do instead)
    for inputs in ([str(data)], [str(data / "0.png")]):
        result = runner.invoke(app, ["explain", *inputs, *model, "--method", "saliency,guided"])
        assert result.exit_code == 1, result.output
        said = " ".join(result.stderr.split())
        assert "TorchScript models do not allow" in said and "--arch ARCH" in said, said
        assert "failed" not in result.stdout
    with pytest.raises(ModelError, match="saliency, smoothgrad or occlusion"):
        GuidedBackprop(torch.jit.load(str(ts)))
    # a class past the model's outputs: said as the built-in models say it
    result = runner.invoke(app, ["explain", str(data / "0.png"), *model, "--method", "saliency",
                                 "--target", "5"])  # fmt: skip
    assert result.exit_code == 2
    assert "--target 5 is out of range: the model has 3 outputs, 0 to 2" in " ".join(
        result.stderr.split())  # was "--target class [5] out of range ..."


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace
def test_model_options_that_would_be_ignored_and_an_empty_layer_are_usage_errors(tmp_path):
    image = _tiny(tmp_path / "cat.png", 0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()  # fmt: skip
    ts = tmp_path / "net.ts"
    torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, 16, 16)), str(ts))
    scripted = ["--model", str(ts), "--trust-model-code", "--size", "16", "--method", "saliency"]
    state = tmp_path / "w.pt"
    torch.save(load_model("resnet20-cifar10").model.state_dict(), state)
    cases = [  # each was silently ignored: the default layer, no arch, no code
        (["--layer", ""], "--layer '' is empty; give a layer name"),
        (["--trust-model-code"], "built-in model, which runs no code from a file (drop "
         "--trust-model-code)"),
        ([*scripted, "--arch", "resnet20"], "is a TorchScript file, which holds its own "
         "architecture (drop --arch)"),
        (["--model", str(state), "--arch", "resnet20", "--trust-model-code"],
         "is not one (a state dict runs no code: give its architecture with --arch, and drop "
         "--trust-model-code)"),
    ]
    for extra, words in cases:
        for inputs in ([str(image)], [str(tmp_path)]):  # one image, and a folder
            result = runner.invoke(app, ["explain", *inputs, *extra, "-q"])
            assert result.exit_code == 2, (extra, result.output)
            said = " ".join(result.stderr.split())
            assert said.startswith("error:") and words in said, said
    # the options where they belong still work
    assert runner.invoke(app, ["explain", str(image), *scripted, "-q"]).exit_code == 0
    result = runner.invoke(app, ["explain", str(image), "--model", str(state), "--arch",
                                 "resnet20", "--size", "32", "--layer", "layer2", "-q"])
    assert result.exit_code == 0, result.output


def test_one_image_with_a_folder_as_output_is_told_the_file_name_to_give(tmp_path):
    image = _tiny(tmp_path / "in" / "photo.jpg", 0)
    (tmp_path / "exists").mkdir()
    for out, said in (("exists", "it is a folder"), ("newdir/", "no image file extension")):
        output = str(tmp_path / out)
        result = runner.invoke(app, ["explain", str(image), "-o", output])
        assert result.exit_code == 2, result.output
        text = " ".join(result.stderr.split())
        assert said in text and "one image writes one montage" in text, text
        # the name a folder of images would give its montage
        assert repr(str(Path(output) / "photo.png")) in text, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists", "in"]  # nothing made
    # a folder of images still takes -o DIR
    result = runner.invoke(app, ["explain", str(tmp_path / "in"), "-o", str(tmp_path / "new"),
                                 "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "photo.png").is_file()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace
def test_a_user_model_fed_photos_at_their_own_size_is_told_once(tmp_path):
    """Without --size a user model takes each image as it is: a 12 MP photo through a
    CIFAR network took minutes and 4.4 GB without a word."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(2, 3)).eval()  # fmt: skip
    ts = tmp_path / "net.ts"
    torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, 16, 16)), str(ts))
    photos = tmp_path / "photos"
    big = np.random.default_rng(0).random((1020, 1030, 3)).astype(np.float32)  # > 1 MP
    for name in ("a.png", "b.png"):
        write_image(photos / name, big)
    _tiny(tmp_path / "small" / "s.png", 0, side=64)
    model = ["--model", str(ts), "--trust-model-code", "--method", "saliency", "-q"]
    said = "does not say what input size it takes, so each image goes in at its own size " \
        "(1030x1020 here)"
    result = runner.invoke(app, ["explain", str(photos), *model])
    assert result.exit_code == 0, result.output
    assert " ".join(result.stderr.split()).count(said) == 1  # once for the folder
    assert "--size 32 for a CIFAR network" in " ".join(result.stderr.split())
    for args in ([str(photos / "a.png"), "--size", "16"], [str(tmp_path / "small")]):
        result = runner.invoke(app, ["explain", *args, *model])
        assert result.exit_code == 0, result.output
        assert "own size" not in result.stderr  # resized, or small enough to go as it is


def test_an_unknown_cmap_is_a_usage_error_before_any_image_is_explained(tmp_path, loads):
    # As --alpha: it was said only when the first montage was drawn (after that image's
    # explanation, and its metrics), and never without -o.
    image = _tiny(tmp_path / "in" / "cat.png", 0)
    _tiny(tmp_path / "in" / "dog.png", 1)
    for args in ([str(image)], [str(image), "-o", str(tmp_path / "one.png")],
                 [str(tmp_path / "in"), "-o", str(tmp_path / "out")]):  # fmt: skip
        result = runner.invoke(app, ["explain", *args, "--cmap", "Jet", "--metrics", "-q"])
        assert result.exit_code == 2, result.output
        assert "--cmap 'Jet' is not a matplotlib colormap" in " ".join(result.stderr.split())
    assert not loads and not (tmp_path / "one.png").exists() and not (tmp_path / "out").exists()
    result = runner.invoke(app, ["explain", str(image), "--cmap", "viridis_r", "-o",
                                 str(tmp_path / "one.png"), "-q"])
    assert result.exit_code == 0 and (tmp_path / "one.png").exists(), result.output
