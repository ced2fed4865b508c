"""Defects found by following an ML engineer's journey across boda's steps: curate a
CIFAR-like folder, explain a model, search and map by features, train an encoder and
load it back.  Each test names what went wrong between two steps."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from boda.explain import FeatureIndex  # noqa: E402
from boda.io import write_image  # noqa: E402
from boda.nn import resnet20  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return resnet20().eval()


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((32, 32, 3), dtype=np.float32) for _ in range(n)]


def test_feature_index_takes_one_array_as_one_image(net):
    """``index.query(read_image(path))``: one (H, W, 3) image was iterated row by
    row, so the index answered 32 queries of one-row "images" (and ``add(image)``
    added 32 rows)."""
    images = _images(3)
    index = FeatureIndex(net, "layer3").add(images)
    found = index.query(images[1], k=1)
    assert len(found) == 1
    assert found[0][0][0] == "image[1]"
    assert FeatureIndex(net, "layer3").add(images[0]).names == ["image[0]"]
    gray = FeatureIndex(net, "layer3").add(images[0][:, :, 0])
    assert gray.names == ["image[0]"] and gray.vectors.shape[0] == 1
    # a stack of gray images (N, H, W), as MNIST-like arrays come, stays N images
    stack = np.stack([image[:, :, 0] for image in images])
    assert len(FeatureIndex(net, "layer3").add(stack).names) == 3


def test_feature_index_takes_one_image_file_as_a_query(net, tmp_path):
    """``index.query("photo.png")`` was "'photo.png' is not a folder"; the file is the
    query, as in ``boda similar QUERY DIR``."""
    images = _images(3)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        write_image(paths[-1], image)
    index = FeatureIndex(net, "layer3").add(tmp_path)
    found = index.query(paths[2], k=1)
    assert len(found) == 1 and found[0][0][0] == paths[2]


@pytest.fixture
def lenet_arch():
    """``lenet5`` loadable by ``boda.nn.load_model`` for one test, as models.md shows."""
    from boda import models
    from boda.nn import ARCHITECTURES

    added = models.register_nn_architectures(["lenet5"])
    yield "lenet5"
    for name in added:
        ARCHITECTURES.pop(name, None)


def _normalizing_lenet():
    from boda import models

    torch.manual_seed(0)
    return models.create("lenet5", num_classes=4, mean=(0.5,), std=(0.25,)).eval()


def _predicted(lm, image: np.ndarray) -> np.ndarray:
    from boda.explain import explain_image

    res = explain_image(image, lm, ["saliency"], top=4)
    out = np.zeros(4)
    for t in res.top:
        out[t["index"]] = t["probability"]
    return out


def test_models_checkpoint_with_its_normalization_loads_and_is_fed_once(tmp_path, lenet_arch):
    """models.md: every model takes ``mean=``/``std=`` (saved in its state dict), and a
    ``boda.models`` checkpoint loads with ``load_model(path, arch=...)`` after
    ``register_nn_architectures``.  Such a checkpoint was refused ("unexpected keys
    ['normalize.mean', 'normalize.std']"), and its LoadedModel would have been fed
    ImageNet-normalised input on top of the model's own normalisation."""
    from boda.core.image import to_gray
    from boda.nn import load_model

    net = _normalizing_lenet()
    path = tmp_path / "lenet.pt"
    torch.save(net.state_dict(), path)
    lm = load_model(path, arch=lenet_arch)
    assert lm.mean == (0.0,) and lm.std == (1.0,)
    for key, value in net.state_dict().items():
        assert torch.equal(lm.model.state_dict()[key], value)
    image = np.random.default_rng(1).random((32, 32, 3), dtype=np.float32)
    raw = torch.from_numpy(to_gray(image))[None, None]
    expected = net(raw).softmax(1)[0].detach().numpy()
    np.testing.assert_allclose(_predicted(lm, image), expected, atol=1e-5)


def test_scripted_model_with_its_normalization_is_fed_once(tmp_path):
    """The same network saved with ``torch.jit.save`` (the CLI's way for a boda.models
    net): its input was normalised twice (ImageNet's statistics, then its own)."""
    import warnings

    from boda.core.image import to_gray
    from boda.nn import load_model

    net = _normalizing_lenet()
    path = tmp_path / "lenet-script.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation, the tracer's notes
        torch.jit.save(torch.jit.trace(net, torch.rand(1, 1, 32, 32)), str(path))
    lm = load_model(path, trust_code=True)
    assert lm.mean == (0.0,) and lm.std == (1.0,)
    image = np.random.default_rng(2).random((32, 32, 3), dtype=np.float32)
    raw = torch.from_numpy(to_gray(image))[None, None]
    expected = net(raw).softmax(1)[0].detach().numpy()
    np.testing.assert_allclose(_predicted(lm, image), expected, atol=1e-5)


def test_plain_checkpoints_keep_unknown_statistics(tmp_path):
    """A checkpoint without a normalize module is fed as before (statistics unknown)."""
    from boda.nn import load_model

    path = tmp_path / "r20.pt"
    torch.save(resnet20(num_classes=3).state_dict(), path)
    lm = load_model(path, arch="resnet20")
    assert lm.mean is None and lm.std is None


def test_metrics_say_which_maps_to_give_after_explain_image(net):
    """``explain_image`` gives ``.maps`` at the image's size and ``.input_maps`` at the
    model's; passing the former to a metric said "use the explainers' default
    upsample=True", which is what made them too large."""
    from boda.errors import InvalidParameterError
    from boda.explain import explain_image
    from boda.explain.metrics import deletion_curve
    from boda.nn import LoadedModel

    lm = LoadedModel(model=net, name="net", input_size=(32, 32))
    image = np.random.default_rng(3).random((48, 40, 3), dtype=np.float32)
    res = explain_image(image, lm, ["gradcam"])
    with pytest.raises(InvalidParameterError, match=r"input_maps"):
        deletion_curve(net, res.model_input, torch.from_numpy(res.maps["gradcam"])[None])
    with pytest.raises(InvalidParameterError, match=r"maps\[None\]"):
        deletion_curve(net, res.model_input, torch.from_numpy(res.input_maps["gradcam"]))
    curve = deletion_curve(net, res.model_input, torch.from_numpy(res.input_maps["gradcam"])[None])
    assert curve.auc.shape == (1,)


@pytest.fixture
def split_dataset(tmp_path):
    """dataset/train/{cat,dog} and dataset/test/{cat,dog}: 3 tiny images a class."""
    rng = np.random.default_rng(4)
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = tmp_path / "dataset" / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                write_image(folder / f"{i}.png", rng.random((32, 32, 3), dtype=np.float32))
    return tmp_path / "dataset"


def test_map_of_the_dataset_root_says_the_labels_are_splits(split_dataset):
    """``boda scan dataset`` is how the docs scan a dataset; ``boda map dataset
    --labels-from-folders`` then took 'train' and 'test' for the classes without a word,
    and listed "likely label errors" between splits."""
    from typer.testing import CliRunner

    from boda.cli import app

    result = CliRunner().invoke(app, ["map", str(split_dataset), "--labels-from-folders",
                                      "--method", "pca", "-q", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    note = " ".join(result.stderr.split())
    assert "'test', 'train' are dataset splits" in note
    assert str(split_dataset / "test") in note
    clean = CliRunner().invoke(app, ["map", str(split_dataset / "train"), "--labels-from-folders",
                                     "--method", "pca", "-q", "--json"])  # fmt: skip
    assert clean.exit_code == 0 and "split" not in clean.stderr


def test_explain_of_the_dataset_root_says_the_folders_are_splits(split_dataset):
    """The same with ``boda explain --labels-from-folders``: the note told to rename the
    class folders, where the fix is to give the split."""
    from typer.testing import CliRunner

    from boda.cli import app

    result = CliRunner().invoke(app, ["explain", str(split_dataset), "--labels-from-folders", "-q"])
    assert result.exit_code == 0, result.output
    note = " ".join(result.stderr.split())
    assert "'test', 'train' are dataset splits, not classes" in note
    # the train split given first takes its images (cat, dog: classes of the model);
    # the root adds the test split's, whose folder is a split too
    both = [str(split_dataset / "train"), str(split_dataset)]
    result = CliRunner().invoke(app, ["explain", *both, "--labels-from-folders", "-q"])
    assert "'test' is a dataset split, not a class" in " ".join(result.stderr.split())


def test_index_folder_beyond_an_unnamed_models_outputs_is_no_class(tmp_path):
    """A state dict has no class names, so its class folders are indices; a folder
    ``5/`` under a 3-output model was labelled "class 5" (always wrong), and with
    ``--target label`` the run stopped on it: "--target 5 is out of range" (exit 2),
    an option the user never typed.  A named model calls such a folder no class."""
    import json

    from typer.testing import CliRunner

    from boda.cli import app

    torch.manual_seed(0)
    weights = tmp_path / "tiny.pt"
    torch.save(resnet20(num_classes=3).state_dict(), weights)
    rng = np.random.default_rng(5)
    for label in ("1", "5"):
        (tmp_path / "val" / label).mkdir(parents=True)
        write_image(tmp_path / "val" / label / "a.png", rng.random((32, 32, 3), dtype=np.float32))
    model = ["--model", str(weights), "--arch", "resnet20", "--size", "32"]
    val = str(tmp_path / "val")
    result = CliRunner().invoke(app, ["explain", val, *model, "--target", "label", "--json"])
    assert result.exit_code == 0, result.output
    records = {r["folder"]: r for r in json.loads(result.stdout)["images"]}
    assert records["5"]["label"] is None and records["5"]["correct"] is None
    assert records["1"]["label"] == {"index": 1, "name": "class 1"}
    assert records["1"]["target"] == 1
    alone = CliRunner().invoke(app, ["explain", f"{val}/5/a.png", *model, "--target", "label"])
    assert alone.exit_code == 0, alone.output


def test_a_headless_backbone_is_said_as_one_with_a_way_to_load_it(tmp_path):
    """A contrastive encoder saved without its projection head has no 2-D weight; the
    error said only "pass num_classes=", which the command line has no option for."""
    from boda.errors import ModelError
    from boda.nn import load_model

    state = {k: v for k, v in resnet20().state_dict().items() if not k.startswith("linear")}
    path = tmp_path / "backbone.pt"
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"without its head.*strict=False") as info:
        load_model(path, arch="resnet20")
    assert "backbone.pt" in str(info.value)
    loaded = load_model(path, arch="resnet20", num_classes=10, strict=False)
    assert torch.equal(loaded.model.state_dict()["conv1.weight"], state["conv1.weight"])


def test_similar_index_of_other_statistics_says_both(tmp_path):
    """``boda similar --index`` with another ``--normalize``: the message was cut at the
    first "; " inside the library's details ("(mean: [...] there, None here; choose
    another file"), losing std and the closing bracket."""
    from typer.testing import CliRunner

    from boda.cli import app

    rng = np.random.default_rng(6)
    for i in range(3):
        write_image(tmp_path / f"{i}.png", rng.random((32, 32, 3), dtype=np.float32))
    query, index = str(tmp_path / "0.png"), str(tmp_path / "features.npz")
    first = CliRunner().invoke(app, ["similar", query, str(tmp_path), "--index", index, "-q"])
    assert first.exit_code == 0, first.output
    again = [query, str(tmp_path), "--index", index, "--no-normalize", "-q"]
    result = CliRunner().invoke(app, ["similar", *again])
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())
    assert "None here; std: [0.229, 0.224, 0.225] there, None here); choose another" in said
