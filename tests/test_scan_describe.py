"""``describe``: the measures that decide no flag (swatches, colourfulness, edge density)
are measured only when asked, remembered in the catalog, and change nothing else."""

import json
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from boda.catalog import Catalog
from boda.cli import app
from boda.errors import InvalidParameterError
from boda.io import read_image
from boda.report import write_html_report
from boda.scan import DESCRIPTIVE_MEASURES, analyze_file, analyze_pixels, scan

runner = CliRunner()


def _records(root):
    with Catalog(root / ".boda" / "catalog.db", readonly=True) as catalog:
        return {r.path: r for r in catalog.records()}


def _stored_analysis(root):
    with sqlite3.connect(root / ".boda" / "catalog.db") as db:
        (value,) = db.execute("SELECT value FROM settings WHERE key = 'analysis'").fetchone()
    return json.loads(value)


def _has_descriptive(record) -> set[str]:
    return {name for name in DESCRIPTIVE_MEASURES if name in record.scores or name in record.extra}


def test_the_checks_are_the_same_with_or_without_the_descriptive_measures(kodak_paths):
    for path in kodak_paths[:3]:
        pixels = read_image(path, max_side=320, resample="box")
        full, full_extra = analyze_pixels(pixels)
        lean, lean_extra = analyze_pixels(pixels, describe=False)
        assert set(full) - set(lean) == {"colorfulness", "edge_density"}
        assert set(full_extra) - set(lean_extra) == {"dominant_colors"}
        for name, value in lean.items():  # grayscale, mean_L, std_L from the same code
            assert full[name] == value, name
        assert full_extra["pixel_hash"] == lean_extra["pixel_hash"]
        assert full_extra["phash"] == lean_extra["phash"]
        assert np.array_equal(full_extra["thumbnail"], lean_extra["thumbnail"])
        assert len(full_extra["dominant_colors"]) == 5


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_describe_must_be_a_bool(tmp_path, kodak_paths, bad):
    pixels = read_image(kodak_paths[0], max_side=64)
    with pytest.raises(InvalidParameterError, match="describe must be True or False"):
        analyze_pixels(pixels, describe=bad)
    with pytest.raises(InvalidParameterError, match="describe must be True or False"):
        analyze_file(kodak_paths[0], describe=bad)  # raised, not an error record
    if bad is not None:  # None is the scan's "as the last scan"
        with pytest.raises(InvalidParameterError, match="describe must be True, False or None"):
            scan(tmp_path, workers=1, describe=bad)


def test_a_new_catalog_is_not_described_and_a_described_one_is_remembered(folder):
    summary = scan(folder, workers=1)
    assert summary.describe is False and summary.remembered_describe is False
    assert _stored_analysis(folder)["describe"] is False
    records = _records(folder)
    assert len(records) == 5 and not any(_has_descriptive(r) for r in records.values())
    lean_scores = {path: dict(r.scores) for path, r in records.items()}
    lean_flags = {path: sorted(r.flags) for path, r in records.items()}

    # Turning it on analyses every file again, and adds exactly the descriptive measures.
    summary = scan(folder, workers=1, describe=True)
    assert summary.describe is True and summary.analysed == 5 and summary.unchanged == 0
    assert "describe" not in _stored_analysis(folder)  # as every catalog before the option
    records = _records(folder)
    for path, record in records.items():
        assert _has_descriptive(record) == set(DESCRIPTIVE_MEASURES)
        extra = set(record.scores) - set(lean_scores[path])
        assert extra == {"colorfulness", "edge_density"}
        assert {k: record.scores[k] for k in lean_scores[path]} == pytest.approx(
            lean_scores[path], rel=1e-12
        )
        assert sorted(record.flags) == lean_flags[path]

    # Remembered: the next scan analyses nothing and says where the setting came from.
    summary = scan(folder, workers=1)
    assert summary.describe is True and summary.remembered_describe is True
    assert summary.analysed == 0 and summary.unchanged == 5

    # Off again: every file again, the descriptive measures gone.
    summary = scan(folder, workers=1, describe=False)
    assert summary.describe is False and summary.analysed == 5
    assert not any(_has_descriptive(r) for r in _records(folder).values())


def test_a_catalog_from_before_the_option_stays_described(folder):
    scan(folder, workers=1, describe=True)
    # What a boda from before the option stored: no "describe" key.
    analysis = _stored_analysis(folder)
    assert set(analysis) == {"version", "max_side"}
    summary = scan(folder, workers=1)
    assert summary.describe is True and summary.analysed == 0


def test_the_report_of_an_undescribed_scan_has_no_swatches_and_still_renders(folder, tmp_path):
    scan(folder, workers=1)
    out = tmp_path / "lean.html"
    write_html_report(folder / ".boda" / "catalog.db", out)
    lean = out.read_text(encoding="utf-8")
    assert "data:image/jpeg;base64," in lean and 'class="swatches"' not in lean
    hint = "edge density and colour swatches are measured by <code>boda scan DIR --describe"
    assert hint in lean
    scan(folder, workers=1, describe=True)
    write_html_report(folder / ".boda" / "catalog.db", out)
    described = out.read_text(encoding="utf-8")
    assert 'class="swatches"' in described and hint not in described


def test_the_cli_option_and_its_remembered_line(folder):
    result = runner.invoke(app, ["scan", str(folder), "-w", "1", "--no-report", "--describe"])
    assert result.exit_code == 0, result.output
    assert "remembered from an earlier scan; --no-describe" not in result.output
    result = runner.invoke(app, ["scan", str(folder), "-w", "1", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "(--describe, remembered from an earlier scan; --no-describe turns it off)" in (
        " ".join(result.output.split())
    )
    result = runner.invoke(app, ["scan", str(folder), "-w", "1", "--no-report", "--json",
                                 "--no-describe"])
    summary = json.loads(result.stdout)
    assert summary["describe"] is False and summary["analysed"] == 5
