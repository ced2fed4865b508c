"""``--max-pixels``: every command that reads images takes the decompression-bomb
guard of :func:`boda.io.read_image`, so a trusted image above the default limit
can be used from the command line; an image over the limit exits 2 with a message
naming the option, and ``boda scan`` records it as unreadable and goes on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from boda.catalog import Catalog, default_catalog_path
from boda.cli import app
from boda.cli._common import max_pixels_limit
from boda.errors import InvalidParameterError
from boda.io import DEFAULT_MAX_PIXELS, write_image
from boda.scan import scan

runner = CliRunner()

#: The "big" image: 120 x 100 = 12 000 pixels; the small ones 30 x 20 = 600.
BIG = 12_000


@pytest.fixture(autouse=True)
def _pillow_limit_kept(monkeypatch):
    """Whatever a test does, Pillow's limit is what it was afterwards (and each
    command must put it back itself: checked where it matters)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture
def work(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    write_image(tmp_path / "big.png", rng.random((100, 120, 3)).astype(np.float32))
    hole = np.zeros((100, 120), np.float32)
    hole[40:60, 50:70] = 1.0
    write_image(tmp_path / "hole.png", hole)
    write_image(tmp_path / "depth.png", np.tile(np.linspace(0, 1, 120, dtype=np.float32), (100, 1)))
    return tmp_path


@pytest.mark.parametrize(
    ("text", "limit"),
    [(None, DEFAULT_MAX_PIXELS), ("none", None), ("None", None), ("250M", 250_000_000),
     ("0.5MP", 500_000), ("1_000", 1000), ("300000000", 300_000_000), (" 12000 ", 12_000)],
)  # fmt: skip
def test_the_option_reads_numbers_millions_and_none(text, limit):
    assert max_pixels_limit(text) == limit


@pytest.mark.parametrize("text", ["0", "-5", "0.1", "abc", "nan", "inf", "", "M"])
def test_zero_and_nonsense_are_refused_naming_none(text):
    with pytest.raises(InvalidParameterError, match="--max-pixels .*or none for no limit"):
        max_pixels_limit(text)


def _commands(work: Path, out: Path) -> dict[str, list[str]]:
    big = str(work / "big.png")
    return {
        "quality": ["quality", big],
        "edges": ["edges", big, "-o", str(out / "e.png")],
        "color chromaticity": ["color", "chromaticity", big, "-o", str(out / "c.png")],
        "color measure": ["color", "measure", big, "-k", "2"],
        "cutout": ["cutout", big, "--rect", "20,20,60,50", "--iterations", "1",
                   "-o", str(out / "cut.png")],
        "refocus": ["refocus", big, "--depth", str(work / "depth.png"), "--focus-depth", "0.5",
                    "-o", str(out / "r.png")],
        "inpaint": ["inpaint", big, "--mask", str(work / "hole.png"), "-o", str(out / "i.png")],
    }  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["quality", "edges", "color chromaticity", "color measure",
     "cutout", "refocus", "inpaint"],
)  # fmt: skip
def test_every_image_command_takes_the_limit(work, tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    args = _commands(work, out)[name]
    refused = runner.invoke(app, [*args, "--max-pixels", str(BIG - 1)])
    assert refused.exit_code == 2, refused.output
    assert "exceeds the limit of 11999" in refused.output
    assert "--max-pixels" in refused.output
    assert not any(out.iterdir())  # nothing written
    passed = runner.invoke(app, [*args, "--max-pixels", str(BIG)])
    assert passed.exit_code == 0, passed.output


def test_explain_takes_the_limit(work):
    pytest.importorskip("torch")
    refused = runner.invoke(app, ["explain", str(work / "big.png"), "--max-pixels", "100"])
    assert refused.exit_code == 2 and "--max-pixels" in refused.output


def test_a_mask_or_depth_over_the_limit_is_named(work, tmp_path):
    small = tmp_path / "small.png"
    write_image(small, np.full((10, 12, 3), 0.5, np.float32))
    result = runner.invoke(app, [
        "inpaint", str(small), "--mask", str(work / "hole.png"), "-o", str(tmp_path / "i.png"),
        "--max-pixels", "1000",
    ])  # fmt: skip
    assert result.exit_code == 2 and "(the --mask file)" in result.output
    result = runner.invoke(app, [
        "refocus", str(small), "--depth", str(work / "depth.png"), "--focus-depth", "0.5",
        "--resize-depth", "-o", str(tmp_path / "r.png"), "--max-pixels", "1000",
    ])  # fmt: skip
    assert result.exit_code == 2 and "(the --depth file)" in result.output


def test_none_lifts_pillows_own_limit_for_the_command_only(work, monkeypatch):
    # Pillow refuses more than 2 x MAX_IMAGE_PIXELS pixels (its DecompressionBombError,
    # before boda looks at the file): lowered here so a small PNG stands for a 200 MP one.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", BIG // 4)
    big = str(work / "big.png")
    refused = runner.invoke(app, ["quality", big, "--json"])
    assert refused.exit_code == 2, refused.output
    assert "Pillow's decompression-bomb guard" in refused.output
    assert "--max-pixels none" in refused.output
    for given in ("none", str(BIG)):
        result = runner.invoke(app, ["quality", big, "--json", "--max-pixels", given])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["image"] == big
        assert Image.MAX_IMAGE_PIXELS == BIG // 4  # put back when the command ends
    refused = runner.invoke(app, ["quality", big, "--max-pixels", str(BIG - 1)])
    assert refused.exit_code == 2 and "exceeds the limit of 11999" in refused.output
    assert Image.MAX_IMAGE_PIXELS == BIG // 4


def _statuses(root: Path) -> dict[str, tuple[str, str | None]]:
    with Catalog(default_catalog_path(root), readonly=True) as catalog:
        return {
            r["path"]: (r["status"], r["error"]) for r in catalog.record_dicts()
        }


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png"):
        write_image(root / name, rng.random((20, 30, 3)).astype(np.float32))
    write_image(root / "big.png", rng.random((100, 120, 3)).astype(np.float32))
    return root


def test_scan_records_an_image_over_the_limit_and_goes_on(photos):
    args = ["scan", str(photos), "-w", "1", "--no-report", "--json", "-q"]
    result = runner.invoke(app, [*args, "--max-pixels", "5000"])
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)
    assert [f["path"] for f in summary["failed"]] == ["big.png"]
    assert "exceeds the limit of 5000" in summary["failed"][0]["reason"]
    assert "--max-pixels" in summary["failed"][0]["reason"]
    assert summary["analysed"] == 3
    statuses = _statuses(photos)
    assert statuses["a.png"][0] == statuses["b.png"][0] == "ok"
    assert statuses["big.png"][0] == "error" and "--max-pixels" in statuses["big.png"][1]
    # The limit is no analysis setting: a rerun with a higher one reads the refused
    # file only; the others are unchanged, not analysed afresh.
    result = runner.invoke(app, [*args, "--max-pixels", "20000"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["analysed"], summary["unchanged"], summary["failed"]) == (1, 2, [])
    assert {status for status, _ in _statuses(photos).values()} == {"ok"}


def test_scan_workers_read_past_pillows_limit_with_none(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", BIG // 4)
    # Three files to analyse, two workers: the reads happen in worker processes.
    args = ["scan", str(photos), "-w", "2", "--no-report", "--json", "-q"]
    result = runner.invoke(app, [*args, "--max-pixels", "none"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed"] == []
    assert Image.MAX_IMAGE_PIXELS == BIG // 4
    result = runner.invoke(app, [*args, "--catalog", str(tmp_path / "other.db")])
    assert result.exit_code == 3
    assert "Pillow's decompression-bomb guard" in json.loads(result.stdout)["failed"][0]["reason"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_the_scan_refuses_a_bad_limit_before_any_work(photos, bad):
    with pytest.raises(InvalidParameterError, match="max_pixels must be a positive"):
        scan(photos, max_pixels=bad)
    assert not default_catalog_path(photos).exists()
