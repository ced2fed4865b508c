"""Shared fixtures: real sample photos and small synthetic images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests explore the same examples on every run, so CI cannot flake.
settings.register_profile("boda", derandomize=True, deadline=None)
settings.load_profile("boda")

DATA = Path(__file__).parent / "data"
KODAK = sorted((DATA / "kodak").glob("*.png"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the test data shipped in the repository."""
    return DATA


@pytest.fixture(scope="session")
def kodak_paths() -> list[Path]:
    """Paths of the Kodak sample photos (500x500 PNG)."""
    return KODAK


@pytest.fixture
def two_photos(tmp_path, kodak_paths) -> Path:
    """A folder ``photos`` with copies of two Kodak photos (a tiny scan)."""
    root = tmp_path / "photos"
    root.mkdir()
    for p in kodak_paths[:2]:
        shutil.copy(p, root / p.name)
    return root


@pytest.fixture(scope="session")
def small_photos(kodak_paths) -> list:
    """Four small Kodak photos (96 px): fast to scan, none flagged."""
    from boda.io import read_image

    return [read_image(p, max_side=96) for p in kodak_paths[:4]]


@pytest.fixture
def folder(tmp_path, small_photos) -> Path:
    """A scan folder: a, b, c, d (PNG) plus ``copies/a copy.png`` (a's exact duplicate)."""
    from boda.io import write_image

    root = tmp_path / "photos"
    (root / "copies").mkdir(parents=True)
    for name, image in zip("abcd", small_photos, strict=True):
        write_image(root / f"{name}.png", image)
    (root / "copies" / "a copy.png").write_bytes((root / "a.png").read_bytes())
    return root


@pytest.fixture(scope="session")
def kodak_rgb() -> np.ndarray:
    """One Kodak photo (kodim23, parrots) as float32 (500, 500, 3) in [0, 1]."""
    from boda.io import read_image

    return read_image(DATA / "kodak" / "kodim23.png")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(12345)


@pytest.fixture
def scan_lock_held():
    """``with scan_lock_held(folder):`` another process holds the catalog's lock of
    ``folder``, as a running ``boda scan`` does, until the block ends."""
    import contextlib
    import subprocess
    import sys

    from boda.catalog import default_catalog_path

    @contextlib.contextmanager
    def held(folder):
        lock = str(default_catalog_path(folder)) + ".lock"
        holder = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'a+'); "
             "fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
             lock],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "held"
            yield
        finally:
            holder.communicate("", timeout=10)

    return held


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures(...)``):
    on a busy 2-core machine its second thread spins and makes a small model's forward
    ~15x slower.  Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium through Playwright, for a test module's pages (the
    modules that use it skip themselves where either is missing)."""
    from playwright import sync_api
    from serve_helpers import CHROMIUM

    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def _fresh_frozen_copy_budget(monkeypatch):
    """Each test starts with the process's budget of frozen inference copies unspent
    (``boda.explain._base.AUTO_FUSED_LIMIT``), so no test depends on how many copies the
    tests before it built."""
    import sys

    base = sys.modules.get("boda.explain._base")  # not imported: nothing to reset
    if base is not None:
        monkeypatch.setattr(base, "_FUSED_TOTAL", 0)
