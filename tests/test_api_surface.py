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
