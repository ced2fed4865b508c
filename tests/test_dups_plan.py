"""The keep plan of duplicate sets (``redundant``, :func:`boda.report.duplicate_sets`):
every redundant file is a direct copy of the file kept in its set, never a copy
through a chain; ``keep_under``; the ``kept`` field; transparency and tiny images in
the hashes.
"""

from __future__ import annotations

import json
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from boda.catalog import Catalog, ImageRecord
from boda.cli import app
from boda.duplicates import DEFAULT_MAX_DISTANCE, MIN_PHASH_SIDE, hamming, pixel_hash
from boda.errors import InvalidParameterError
from boda.io import open_image
from boda.report import _keep as export
from boda.report import catalog_records, duplicate_sets, select_records, selected_paths
from boda.scan import _pipeline as pipeline
from boda.scan import default_thresholds, scan
from boda.scan._analyze import ANALYSIS_VERSION, analyze_file

runner = CliRunner()


# -- synthetic catalogs: chosen hashes, flags derived as a scan derives them ----------------------


def _catalog(path: Path, files: list[tuple[str, int | None, str | None]], near=None) -> Path:
    """A catalog of ``(name, phash, pixel_hash)`` records (same size and scores), with the
    flags a scan at ``near_duplicate=near`` derives."""
    thresholds = default_thresholds()
    if near is not None:
        thresholds["near_duplicate"] = float(near)
    records = [
        ImageRecord(name.encode(), 10, 1, "ok", width=64, height=64, format="PNG",
                    pixel_hash=pixel or f"{i:032x}", phash=ph, scores={"blurry": 1.0},
                    extra={"dominant_colors": []}, thumbnail=b"\xff\xd8")
        for i, (name, ph, pixel) in enumerate(files)
    ]
    with Catalog(path) as catalog:
        catalog.write_batch(records)
        pipeline._derive_flags(catalog, thresholds, None)
        catalog.set_setting("thresholds", thresholds)
    return path


def _flip(value: int, bits) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


A = 0x8F3C_5A5A_0FF0_33CC
B = _flip(A, range(0, 6))  # 6 bits from A
C = _flip(B, range(10, 16))  # 6 bits from B, 12 from A


def test_a_chain_keeps_its_two_ends(tmp_path):
    path = _catalog(tmp_path / "c.db", [("a.png", A, None), ("b.png", B, None),
                                        ("c.png", C, None)])
    records = {r["path"]: r for r in catalog_records(path)}
    # single linkage: one near-duplicate group of three ...
    assert {r["groups"]["near_duplicate"] for r in records.values()} == {1}
    assert hamming(A, C) > DEFAULT_MAX_DISTANCE
    # ... but c is no copy of a: it is kept too (alone: it is in no set)
    sets = duplicate_sets(path)
    assert [(s.keep, s.redundant) for s in sets] == [("a.png", ("b.png",))]
    assert sets[0].near_groups == (1,)
    assert [(r["path"], r["kept"]) for r in select_records(path, "redundant")] == [
        ("b.png", "a.png")
    ]


def test_the_tolerance_is_the_catalogs(tmp_path):
    # flagged at 12 bits, a and c are within the tolerance of each other: one set
    path = _catalog(tmp_path / "c.db", [("a.png", A, None), ("b.png", B, None),
                                        ("c.png", C, None)], near=12)
    assert [(s.keep, s.redundant) for s in duplicate_sets(path)] == [
        ("a.png", ("b.png", "c.png"))
    ]


def test_exact_copies_go_with_their_original(tmp_path):
    # a copy of c (identical pixels) is redundant to c, not to a; a flat image's exact
    # copy is redundant although flat hashes never match as near duplicates
    files = [("a.png", A, None), ("b.png", B, None), ("c.png", C, "cc"), ("c2.png", C, "cc"),
             ("f.png", 1 << 63, "ff"), ("f2.png", 1 << 63, "ff"), ("g.png", 1 << 63, None)]
    path = _catalog(tmp_path / "c.db", files)
    assert [(s.keep, s.redundant, s.exact_groups) for s in duplicate_sets(path)] == [
        ("a.png", ("b.png",), ()),
        ("c.png", ("c2.png",), (1,)),
        ("f.png", ("f2.png",), (2,)),
    ]


def test_every_redundant_file_is_a_direct_copy_of_the_file_kept(tmp_path, monkeypatch):
    # clusters of random flips around a few centres, and chains between them
    rng = random.Random(3)
    files, hashes = [], []
    for centre in range(12):
        base = rng.getrandbits(63) | 1 << 63
        for k in range(rng.randrange(2, 9)):
            value = base
            for _ in range(k * 3):  # a walk away from the centre: a chain
                value = _flip(value, [rng.randrange(63)])
            pixel = f"{len(files):032x}" if rng.random() > 0.2 else f"{centre:032x}"
            files.append((f"d{centre}/{k}.png", value, pixel))
            hashes.append(value)
    path = _catalog(tmp_path / "c.db", files, near=8)
    records = {r["path"]: r for r in catalog_records(path)}
    sets = duplicate_sets(path)
    seen = [p for s in sets for p in (s.keep, *s.redundant)]
    assert len(seen) == len(set(seen))  # a file is in one set at most
    grouped = {p for p, r in records.items() if r["groups"]}
    assert set(seen) <= grouped
    redundant = 0
    for s in sets:
        keep = records[s.keep]
        for p in s.redundant:
            redundant += 1
            same = records[p]["pixel_hash"] == keep["pixel_hash"]
            assert same or hamming(records[p]["phash"], keep["phash"]) <= 8
    chained = sum(len(m) - 1 for m in _components(records).values())
    assert 0 < redundant < chained  # the chains are cut
    # large sets are cut with numpy, small ones in Python: the same sets
    monkeypatch.setattr(export, "_SMALL_SET", 0)
    assert duplicate_sets(path) == sets


def _components(records) -> dict:
    """Files of the groups sharing a file (the sets of the former rule)."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for p, r in records.items():
        for group in r["groups"].items():
            parent[find(p)] = find(group)
    out: dict = {}
    for p, r in records.items():
        if r["groups"]:
            out.setdefault(find(p), []).append(p)
    return out


# -- keep_under and the kept field ----------------------------------------------------------------


@pytest.fixture
def leak(tmp_path) -> Path:
    """A train/test leak: one picture in test/ and train/ (test/ sorts first)."""
    root = tmp_path / "ds"
    for folder in ("test/cat", "train/cat", "training/cat"):
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(root / "test/cat/x.png")
    shutil.copy(root / "test/cat/x.png", root / "train/cat/x.png")
    shutil.copy(root / "test/cat/x.png", root / "training/cat/x.png")
    scan(root, workers=1)
    return root


def test_keep_under_keeps_the_copy_in_that_folder(leak):
    assert [(s.keep, s.redundant) for s in duplicate_sets(leak)] == [
        ("test/cat/x.png", ("train/cat/x.png", "training/cat/x.png"))
    ]
    # whole folder names: training/ is not under train/
    for prefix in ("train", "train/", "./train/", ["train/cat/"]):
        assert [(s.keep, s.redundant) for s in duplicate_sets(leak, keep_under=prefix)] == [
            ("train/cat/x.png", ("test/cat/x.png", "training/cat/x.png"))
        ]
    got = [(r["path"], r["kept"]) for r in select_records(leak, "redundant", keep_under="train")]
    assert got == [("test/cat/x.png", "train/cat/x.png"),
                   ("training/cat/x.png", "train/cat/x.png")]
    assert list(selected_paths(leak, "redundant", keep_under="train")) == [
        b"test/cat/x.png", b"training/cat/x.png"
    ]
    # records of other selections get kept=None when redundant is asked for too
    assert all(r["kept"] is None for r in select_records(leak, "exact_duplicate,redundant")
               if r["path"] == "test/cat/x.png")


@pytest.mark.parametrize("bad", ["", "/", ".", [3]])
def test_keep_under_refuses_what_names_no_folder(leak, bad):
    with pytest.raises(InvalidParameterError, match="keep_under"):
        duplicate_sets(leak, keep_under=bad)


def test_cli_keep_under(leak, monkeypatch):
    monkeypatch.chdir(leak.parent)
    result = runner.invoke(app, ["report", "ds", "--only", "redundant", "--keep-under",
                                 "train/", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [(r["path"], r["kept"]) for r in records] == [
        ("test/cat/x.png", "train/cat/x.png"), ("training/cat/x.png", "train/cat/x.png")
    ]
    # repeatable: a file under any of them is preferred
    result = runner.invoke(app, ["report", "ds", "--only", "redundant", "--keep-under",
                                 "elsewhere", "--keep-under", "training"])
    assert result.exit_code == 0
    assert result.stdout.split() == ["ds/test/cat/x.png", "ds/train/cat/x.png"]
    result = runner.invoke(app, ["report", "ds", "--only", "blurry", "--keep-under", "train"])
    assert result.exit_code == 2 and "--only redundant" in result.output


# -- a chaining folder: shifted patterns (MNIST-like) ---------------------------------------------


@pytest.fixture(scope="module")
def shifted(tmp_path_factory) -> Path:
    """28x28 bars and crosses, each shifted a pixel at a time across the frame: neighbours
    hash within the tolerance, so single linkage makes one group of each kind."""
    root = tmp_path_factory.mktemp("shifted") / "digits"
    root.mkdir()
    for x in range(22):
        bar = np.zeros((28, 28), np.uint8)
        bar[6:22, x : x + 4] = 255
        Image.fromarray(bar).save(root / f"bar_{x:02d}.png")
        cross = np.zeros((28, 28), np.uint8)
        cross[12:16, 2:26] = 255
        cross[4:24, x + 1 : x + 4] = 255
        Image.fromarray(cross).save(root / f"cross_{x:02d}.png")
    scan(root, workers=1)
    return root


def test_shifted_patterns_are_not_all_redundant(shifted):
    records = {r["path"]: r for r in catalog_records(shifted)}
    chained = sum(len(m) - 1 for m in _components(records).values())
    assert chained >= 40  # the former rule: all but one or two of the 44 files
    sets = duplicate_sets(shifted)
    redundant = [(s.keep, p) for s in sets for p in s.redundant]
    assert len(redundant) <= chained - 8  # several kept files per group
    assert len({s.keep for s in sets}) >= 6
    for keep, p in redundant:
        assert hamming(records[keep]["phash"], records[p]["phash"]) <= DEFAULT_MAX_DISTANCE


# -- what the hashes see: transparency, tiny images -----------------------------------------------


def _glyph(path: Path, shape: str, fill=(255, 255, 255, 255), size=64) -> Path:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    box = (10, 12, 54, 50)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(10, 50), (32, 8), (54, 50)], fill=fill)
    img.save(path)
    return path


def test_open_image_background_tells_the_alpha(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    white = open_image(tmp_path / "a.png")
    black = open_image(tmp_path / "a.png", background=0.0)
    alpha = np.repeat(rgba[..., 3:] / 255.0, 3, axis=2)
    np.testing.assert_allclose(white.pixels - black.pixels, 1 - alpha, atol=1 / 255)
    np.testing.assert_allclose(black.pixels, 200 / 255 * alpha, atol=1 / 255)
    assert white.pixels.max() == 1.0  # the default is unchanged: white
    with pytest.raises(InvalidParameterError, match="background"):
        open_image(tmp_path / "a.png", background=2)


def test_open_image_background_of_a_16_bit_file(tmp_path):
    import cv2

    bgra = np.zeros((8, 8, 4), np.uint16)
    bgra[..., :3] = 40000
    bgra[..., 3] = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    white = open_image(tmp_path / "a.png")
    black = open_image(tmp_path / "a.png", background=0.0)
    assert white.bit_depth == 16 and white.has_alpha
    alpha = np.repeat(bgra[..., 3:] / 65535.0, 3, axis=2)
    np.testing.assert_allclose(white.pixels - black.pixels, 1 - alpha, atol=1e-4)


@pytest.mark.parametrize("sixteen", [False, True])
def test_open_image_background_of_a_huge_file(tmp_path, monkeypatch, sixteen):
    # files over EARLY_REDUCE_PIXELS are shrunk before compositing: the same background
    import cv2

    import boda._io_reduce

    monkeypatch.setattr(boda._io_reduce, "EARLY_REDUCE_PIXELS", 100)
    alpha = np.tile(np.repeat(np.linspace(0, 1, 8), 8), (64, 1))  # 8-px steps across
    top = 65535 if sixteen else 255
    bgra = np.zeros((64, 64, 4), np.uint16 if sixteen else np.uint8)
    bgra[..., :3] = top // 2
    bgra[..., 3] = np.round(alpha * top)
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    white = open_image(tmp_path / "a.png", max_side=8, resample="box")
    black = open_image(tmp_path / "a.png", max_side=8, resample="box", background=0.0)
    want = 1 - np.repeat(np.linspace(0, 1, 8)[None, :, None], 8, axis=0)
    np.testing.assert_allclose(white.pixels - black.pixels, np.repeat(want, 3, axis=2),
                               atol=2 / 255)


def test_pixel_hash_over_black():
    white = np.ones((4, 5, 3), np.float32)
    black = np.zeros_like(white)
    assert pixel_hash(white, over_black=black) == pixel_hash(white, over_black=black.copy())
    assert pixel_hash(white, over_black=black) != pixel_hash(white)
    assert pixel_hash(white, over_black=black) != pixel_hash(white, over_black=white)
    with pytest.raises(InvalidParameterError, match="over_black"):
        pixel_hash(white, over_black=black[:2])


def test_transparent_glyphs_are_not_exact_duplicates(tmp_path):
    root = tmp_path / "icons"
    root.mkdir()
    for shape in ("circle", "square", "triangle"):
        _glyph(root / f"{shape}.png", shape)
    shutil.copy(root / "circle.png", root / "circle copy.png")
    # an opaque RGBA file is the same picture as its RGB save
    opaque = Image.open(root / "square.png").convert("RGB")
    opaque.save(root / "opaque.png")
    opaque.convert("RGBA").save(root / "opaque rgba.png")
    scan(root, workers=1)
    records = {r["path"]: r for r in catalog_records(root)}
    exact = {p for p, r in records.items() if "exact_duplicate" in r["flags"]}
    assert exact == {"circle.png", "circle copy.png", "opaque.png", "opaque rgba.png"}
    assert records["circle.png"]["phash"] != records["square.png"]["phash"]
    # the transparent square looks like the opaque one (white on black) over grey
    assert [(s.keep, s.redundant) for s in duplicate_sets(root)] == [
        ("circle.png", ("circle copy.png",)), ("opaque rgba.png", ("opaque.png", "square.png"))
    ]


def test_a_dark_logo_still_matches_its_flattened_jpeg(tmp_path):
    logo = _glyph(tmp_path / "logo.png", "triangle", fill=(30, 30, 90, 255), size=128)
    flat = Image.alpha_composite(Image.new("RGBA", (128, 128), "white"), Image.open(logo))
    flat.convert("RGB").save(tmp_path / "logo.jpg", quality=90)
    a, b = analyze_file(logo), analyze_file(tmp_path / "logo.jpg")
    assert a.pixel_hash != b.pixel_hash  # one is transparent: not the same pixels
    assert hamming(a.phash, b.phash) <= DEFAULT_MAX_DISTANCE


def test_images_too_small_to_hash_have_no_phash(tmp_path):
    root = tmp_path / "tiny"
    root.mkdir()
    rng = np.random.default_rng(1)
    for w, h in [(1, 64), (64, 1), (2, 2), (7, 30)]:
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(
            root / f"{w}x{h}.png"
        )
    shutil.copy(root / "2x2.png", root / "2x2 copy.png")
    side = MIN_PHASH_SIDE
    Image.fromarray((rng.random((side, side, 3)) * 255).astype(np.uint8)).save(root / "ok.png")
    scan(root, workers=1)
    records = {r["path"]: r for r in catalog_records(root)}
    assert {p for p, r in records.items() if r["phash"] is None} == {
        "1x64.png", "64x1.png", "2x2.png", "2x2 copy.png", "7x30.png"
    }
    assert records["ok.png"]["phash"] is not None
    assert not any("near_duplicate" in r["flags"] for r in records.values())
    assert {p for p, r in records.items() if "exact_duplicate" in r["flags"]} == {
        "2x2.png", "2x2 copy.png"
    }


def test_a_catalog_of_the_former_analysis_is_analysed_again(tmp_path):
    root = tmp_path / "icons"
    root.mkdir()
    for shape in ("circle", "square"):
        _glyph(root / f"{shape}.png", shape)
    scan(root, workers=1)
    with Catalog(root) as catalog:  # as the former boda left it
        stored = catalog.get_setting("analysis")
        catalog.set_setting("analysis", {**stored, "version": 4})
    assert ANALYSIS_VERSION > 4
    summary = scan(root, workers=1)
    assert summary.analysed == 2



def test_keep_under_is_checked_like_under(folder):
    """A --keep-under folder outside DIR is refused; one that holds no duplicate (a path
    typed from the current folder) is named, instead of the default rule deciding silently."""
    scan(folder, workers=1)
    for bad in ("/abs/train", "../x", "copies/../.."):
        with pytest.raises(InvalidParameterError, match="inside the scanned one"):
            duplicate_sets(folder, keep_under=bad)
        result = runner.invoke(app, ["report", str(folder), "--only", "redundant",
                                     "--keep-under", bad])
        assert result.exit_code == 2 and "--keep-under" in result.output
    with pytest.warns(UserWarning, match="'photos/copies': no duplicate of the catalog"):
        sets = duplicate_sets(folder, keep_under="photos/copies")
    assert sets[0].keep == "a.png"  # the default rule decided
    result = runner.invoke(app, ["report", str(folder), "--only", "redundant",
                                 "--keep-under", "photos/copies"])
    assert result.exit_code == 0
    assert "note: --keep-under 'photos/copies': no duplicate" in result.output
    with warnings.catch_warnings():  # the right folder: no note
        warnings.simplefilter("error")
        assert duplicate_sets(folder, keep_under="copies")[0].keep == "copies/a copy.png"



def test_report_names_a_catalog_an_older_boda_analysed(folder):
    scan(folder, workers=1)
    with Catalog(folder) as catalog:  # as a scan by the previous version left it
        analysis = catalog.get_setting("analysis")
        catalog.set_setting("analysis", {**analysis, "version": ANALYSIS_VERSION - 1})
    result = runner.invoke(app, ["report", str(folder), "--only", "exact_duplicate"])
    assert result.exit_code == 0
    assert f"analysis version {ANALYSIS_VERSION - 1}; this one has {ANALYSIS_VERSION}" in (
        result.output)
    assert scan(folder, workers=1).analysed == 5  # analysed afresh once
    result = runner.invoke(app, ["report", str(folder), "--only", "exact_duplicate"])
    assert "older boda" not in result.output
