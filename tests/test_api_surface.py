"""How the package looks from a bare ``import boda`` (a notebook's first line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boda


def test_every_subpackage_is_an_attribute_of_boda():
    root = Path(boda.__file__).parent
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in root.glob("[!_]*.py")}  # errors, io
    on_disk = packages | modules
    assert set(boda.SUBPACKAGES) == on_disk
    assert set(boda.SUBPACKAGES) <= set(dir(boda))
    assert "read_image" in dir(boda)


def test_subpackages_load_on_first_use_only():
    # import boda stays light (the CLI's Ctrl-C handler goes in before numpy);
    # boda.quality then works without its own import line.
    code = (
        "import sys, boda; assert 'numpy' not in sys.modules; "
        "print(boda.quality.sharpness.__module__, boda.edges.canny.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["boda.quality._sharpness", "boda.edges._canny"]


def test_result_reprs_are_one_short_line():
    # Typing `result` in a notebook printed 68-95 lines of arrays and layers.
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    from boda.explain import explain_image
    from boda.nn import load_model
    from boda.segment import grabcut

    model = load_model("resnet20-cifar10")
    img = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32)
    explanation = explain_image(img[:32, :32], model, methods=["gradcam"], target=3)
    cut = grabcut(img, rect=(5, 5, 30, 30), iterations=2)
    for obj, must_show in (
        (model, ["resnet20-cifar10", "10 (airplane", "0.27 M parameters"]),
        (explanation, ["target=3 (cat)", "maps=['gradcam']", "32x32"]),
        (cut, ["40x40", "foreground", "iterations="]),
    ):
        text = repr(obj)
        assert "\n" not in text and len(text) < 250, text
        for part in must_show:
            assert part in text, (part, text)
