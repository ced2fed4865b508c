"""A rescan that changes nothing the flags come from keeps them instead of deriving them
again (half of an unchanged rescan of a large folder), and derives them whenever
anything they come from changed."""

from __future__ import annotations

import pytest
from scan_helpers import noise_photo

import boda.scan._pipeline as pipeline
from boda.catalog import Catalog
from boda.scan import scan


@pytest.fixture
def derivations(monkeypatch):
    calls = []
    derive = pipeline._derive_flags

    def counting(*args, **kwargs):
        calls.append(1)
        return derive(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_derive_flags", counting)
    return calls


def _folder(tmp_path):
    root = tmp_path / "shoot"
    for i in range(3):
        noise_photo(root / f"p{i}.png", i)
    (root / "copy.png").write_bytes((root / "p0.png").read_bytes())  # exact duplicates
    return root


def test_an_unchanged_rescan_keeps_the_flags(tmp_path, derivations):
    root = _folder(tmp_path)
    first = scan(root, workers=1)
    with Catalog(root, readonly=True) as catalog:
        flags = sorted(catalog.flag_counts().items())
    second = scan(root, workers=1)
    assert len(derivations) == 1  # the first scan only
    assert second.flag_counts == first.flag_counts and first.flag_counts["exact_duplicate"] == 2
    with Catalog(root, readonly=True) as catalog:
        assert sorted(catalog.flag_counts().items()) == flags
        assert not catalog.flags_stale()


@pytest.mark.parametrize("change", ["new file", "threshold", "mirrored", "stale", "code"])
def test_anything_the_flags_come_from_derives_them_again(tmp_path, derivations, change):
    root = _folder(tmp_path)
    scan(root, workers=1)
    options = {}
    if change == "new file":
        (root / "copy2.png").write_bytes((root / "p1.png").read_bytes())
    elif change == "threshold":
        options["thresholds"] = {"blurry": 0.5}
    elif change == "mirrored":
        options["mirrored"] = True
    elif change == "stale":  # a scan stopped before it derived them
        with Catalog(root) as catalog:
            catalog.mark_flags_stale()
    else:  # another boda's rules: the stored code signature differs
        with Catalog(root) as catalog:
            stored = catalog.get_setting(pipeline.FLAGS_FROM_KEY)
            stored["inputs"]["code"] = "another boda"
            catalog.set_setting(pipeline.FLAGS_FROM_KEY, stored)
    summary = scan(root, workers=1, **options)
    assert len(derivations) == 2
    if change == "new file":
        assert summary.flag_counts["exact_duplicate"] == 4


def test_flags_changed_behind_the_scans_back_are_derived_again(tmp_path, derivations):
    root = _folder(tmp_path)
    scan(root, workers=1)
    with Catalog(root) as catalog:  # as an older boda's scan could leave them
        catalog.replace_flags([])
    summary = scan(root, workers=1)
    assert len(derivations) == 2 and summary.flag_counts["exact_duplicate"] == 2
