"""boda as installed without its extras: no PyTorch, no pillow-heif.

Each case runs a fresh interpreter in which importing the extra fails, as it
would in an environment made with ``pip install boda``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BLOCK = """
import importlib.abc, sys

class _Missing(importlib.abc.MetaPathFinder):
    # As if these packages were not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Missing())
"""


def _run(code: str, blocked: set[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    script = BLOCK.format(blocked=blocked) + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=cwd
    )


def test_model_features_without_pytorch_say_which_extra_to_install(kodak_paths):
    result = _run(
        """
import json
from boda.errors import MissingDependencyError
out = {}
for name in ("boda.explain", "boda.nn", "boda.detect", "boda.models", "boda.nn.losses"):
    try:
        __import__(name)
        out[name] = "imported"
    except MissingDependencyError as exc:
        out[name] = str(exc)
import boda, boda.scan, boda.quality, boda.color, boda.edit, boda.augment, boda.report
out["torch loaded"] = "torch" in sys.modules
print(json.dumps(out))
""",
        {"torch"},
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out.pop("torch loaded") is False
    for name, message in out.items():
        assert "pip install 'boda[torch]'" in message, (name, message)
    cli = _run(
        f"from boda.cli import app\napp(['explain', {str(kodak_paths[0])!r}])", {"torch"}
    )
    assert cli.returncode == 1, cli.stderr
    assert "pip install 'boda[torch]'" in cli.stderr and "Traceback" not in cli.stderr


def test_heic_photos_without_the_extra_are_listed_with_the_fix(tmp_path, kodak_rgb):
    pillow_heif = pytest.importorskip("pillow_heif")
    import numpy as np
    from PIL import Image

    pillow_heif.register_heif_opener()
    folder = tmp_path / "phone"
    folder.mkdir()
    Image.fromarray((kodak_rgb * 255).round().astype(np.uint8)).save(folder / "IMG_1.heic")
    Image.fromarray((kodak_rgb * 255).round().astype(np.uint8)).save(folder / "IMG_2.png")
    result = _run(
        f"""
from boda.cli import app
app(['scan', {str(folder)!r}, '--json', '--no-report', '-w', '1'])
""",
        {"pillow_heif"},
    )
    assert result.returncode == 3, result.stderr  # some files could not be read
    summary = json.loads(result.stdout)
    reasons = {f["path"]: f["reason"] for f in summary["failed"]}
    assert list(reasons) == ["IMG_1.heic"]
    assert "pip install 'boda[heif]'" in reasons["IMG_1.heic"]


def test_photo_tools_start_without_scipy_signal():
    # scipy.signal pulls in scipy.stats (~1 s); refocus and inpaint import it only
    # where they use it.
    result = _run("import boda.edit\nprint('scipy.signal' in sys.modules)", set())
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr
