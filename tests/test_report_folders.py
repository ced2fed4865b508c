"""Selections by folder in a dataset of splits and class folders: ``--under`` (a subtree),
``--copy-under`` (train/test leakage), ``label_conflict`` (one image, two class folders),
files deleted since the scan, and ``--relative`` paths for tools that keep the layout.

One real folder (``train/``, ``test/``, ``testing/``, class folders) is scanned once; each
selection is checked against what was put in it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from boda.catalog import Catalog, ImageRecord
from boda.cli import app
from boda.errors import InvalidParameterError
from boda.io import read_image, write_image
from boda.report import catalog_records, select_records, selected_paths, write_csv
from boda.scan import scan
from boda.scan._flags import FlagDeriver, default_thresholds

runner = CliRunner()

#: Every file of the folder (display paths), with what it is.
FILES = {
    "train/cat/k1.png": "Kodak photo 1 (of tests/data/kodak, in name order)",
    "train/cat/k2.png": "photo 2",
    "train/dog/k2 again.png": "exact copy of train/cat/k2.png: a label conflict",
    "train/dog/k3.png": "photo 3",
    "train/dog/k4.png": "photo 4",
    "test/cat/k1 leak.png": "exact copy of train/cat/k1.png",
    "test/dog/k3 near.png": "train/dog/k3.png, 4 % darker: a near copy",
    "test/dog/k5.png": "photo 5",
    "testing/dog/k4 copy.png": "exact copy of train/dog/k4.png ('testing' is not 'test')",
    "k5 top.png": "exact copy of test/dog/k5.png, in DIR itself: no label",
    "k6.png": "photo 6",
}
UNDER_TEST = {"test/cat/k1 leak.png", "test/dog/k3 near.png", "test/dog/k5.png"}
LEAKS = {"test/cat/k1 leak.png", "test/dog/k3 near.png"}
CONFLICTS = {"train/cat/k2.png", "train/dog/k2 again.png"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, kodak_paths) -> Path:
    root = tmp_path_factory.mktemp("folders") / "data"
    k = {f"k{n}": read_image(p, max_side=64) for n, p in enumerate(kodak_paths[:6], 1)}
    for folder in ("train/cat", "train/dog", "test/cat", "test/dog", "testing/dog"):
        (root / folder).mkdir(parents=True)
    for n in (1, 2):
        write_image(root / f"train/cat/k{n}.png", k[f"k{n}"])
    for n in (3, 4):
        write_image(root / f"train/dog/k{n}.png", k[f"k{n}"])
    write_image(root / "test/dog/k5.png", k["k5"])
    write_image(root / "k6.png", k["k6"])
    write_image(root / "test/dog/k3 near.png", k["k3"] * 0.96)
    for copy, original in [("train/dog/k2 again.png", "train/cat/k2.png"),
                           ("test/cat/k1 leak.png", "train/cat/k1.png"),
                           ("testing/dog/k4 copy.png", "train/dog/k4.png"),
                           ("k5 top.png", "test/dog/k5.png")]:
        shutil.copy(root / original, root / copy)
    scan(root, workers=1)
    return root


def _paths(records) -> set[str]:
    return {r["path"] for r in records}


def test_the_folder_is_what_the_tests_assume(dataset):
    records = {r["path"]: r for r in catalog_records(dataset)}
    assert set(records) == set(FILES)
    near = records["test/dog/k3 near.png"]
    assert "near_duplicate" in near["flags"] and "exact_duplicate" not in near["flags"]
    assert near["groups"]["near_duplicate"] == records["train/dog/k3.png"]["groups"][
        "near_duplicate"]


# -- under ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["test", "test/", "./test", "./test/", "test//", ["test"]])
def test_under_takes_a_folder_as_users_write_it(dataset, folder):
    assert _paths(select_records(dataset, under=folder)) == UNDER_TEST


def test_under_matches_whole_folder_names(dataset):
    assert _paths(select_records(dataset, under="testing")) == {"testing/dog/k4 copy.png"}
    assert _paths(select_records(dataset, under=["test", "testing"])) == UNDER_TEST | {
        "testing/dog/k4 copy.png"}
    assert _paths(select_records(dataset, under="train/dog")) == {
        "train/dog/k2 again.png", "train/dog/k3.png", "train/dog/k4.png"}


def test_under_with_only_is_the_intersection(dataset):
    got = _paths(select_records(dataset, only="exact_duplicate", under="test/"))
    assert got == {"test/cat/k1 leak.png", "test/dog/k5.png"}
    records = {r["path"]: r for r in catalog_records(dataset)}
    assert got == {p for p in UNDER_TEST if "exact_duplicate" in records[p]["flags"]}


def test_a_folder_holding_no_file_selects_nothing_and_warns(dataset):
    with pytest.warns(UserWarning, match="'tes/': no file of the catalog is under it"):
        assert list(select_records(dataset, under="tes")) == []
    with pytest.warns(UserWarning, match="copy_under 'val/'"):
        assert list(select_records(dataset, copy_under="val")) == []


@pytest.mark.parametrize("folder", ["", ".", "./", "/abs/test", "../data/test", "test/../x", 3])
def test_a_folder_outside_the_scanned_one_is_refused_at_once(dataset, folder):
    with pytest.raises(InvalidParameterError, match="under"):
        select_records(dataset, under=folder)  # not iterated: refused before any reading
    with pytest.raises(InvalidParameterError, match="copy_under"):
        select_records(dataset, copy_under=folder)


def test_the_exports_take_under(dataset, tmp_path):
    write_csv(dataset, tmp_path / "t.csv", under="test", only="exact_duplicate,near_duplicate")
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as fh:
        assert {row["path"] for row in csv.DictReader(fh)} == UNDER_TEST
    assert set(selected_paths(dataset, under="test/", root=dataset)) == {
        os.fsencode(dataset / p) for p in UNDER_TEST}


def test_parquet_takes_under_and_copy_under(dataset, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from boda.report import write_parquet

    write_parquet(dataset, tmp_path / "t.parquet", under="test", copy_under="train")
    assert set(pq.read_table(tmp_path / "t.parquet").column("path").to_pylist()) == LEAKS


# -- copy_under: leakage --------------------------------------------------------------------------


def test_copy_under_lists_the_leaked_test_files(dataset):
    assert _paths(select_records(dataset, under="test/", copy_under="train/")) == LEAKS


def test_each_leaked_record_names_its_copy(dataset):
    records = select_records(dataset, under="test/", copy_under="train/")
    assert {r["path"]: r["copy_of"] for r in records} == {
        "test/cat/k1 leak.png": "train/cat/k1.png", "test/dog/k3 near.png": "train/dog/k3.png"}
    # a file under the folder names another file there, never itself
    both = {r["path"]: r["copy_of"] for r in select_records(dataset, copy_under="train")}
    assert both["train/cat/k2.png"] == "train/dog/k2 again.png"
    assert both["train/dog/k2 again.png"] == "train/cat/k2.png"
    assert "copy_of" not in next(select_records(dataset, under="test"))


def test_copy_under_alone_lists_every_file_with_a_copy_there(dataset):
    # a file under train/ counts when another file under train/ is its copy (k2, twice);
    # train/cat/k1.png has a copy, but under test/
    assert _paths(select_records(dataset, copy_under="train")) == LEAKS | CONFLICTS | {
        "testing/dog/k4 copy.png"}
    assert _paths(select_records(dataset, under="train", copy_under="test")) == {
        "train/cat/k1.png", "train/dog/k3.png"}


def _synthetic_catalog(path: Path, files: dict[str, int], tolerance: int = 10) -> Path:
    """A catalog of readable files with these pHashes (distinct pixels), flagged as a scan
    flags them (the scan's own FlagDeriver, so the groups are the scan's)."""
    catalog_path = path / "catalog.db"
    thresholds = {**default_thresholds(), "near_duplicate": float(tolerance)}
    with Catalog(catalog_path) as catalog:
        records = [
            ImageRecord(relpath=name.encode(), size=1, mtime_ns=0, status="ok",
                        pixel_hash=f"{i:032x}", phash=phash)
            for i, (name, phash) in enumerate(sorted(files.items()))
        ]
        catalog.write_batch(records)
        deriver = FlagDeriver(thresholds)
        for r in records:
            deriver.add(r.id, {}, r.pixel_hash, r.phash)
        catalog.replace_flags(deriver.image_rows + deriver.duplicate_rows())
        catalog.set_setting("thresholds", thresholds)
    return catalog_path


def test_a_chain_of_near_copies_is_no_leak(tmp_path):
    # a ~ b ~ c within 8 bits each, a and c 16 bits apart: one single-linkage group
    a = 0x0F0F_0F0F_3C3C_0000
    files = {"train/a.png": a, "other/b.png": a ^ 0xFF, "test/c.png": a ^ 0xFFFF}
    catalog_path = _synthetic_catalog(tmp_path, files)
    groups = {r["path"]: r["groups"].get("near_duplicate") for r in catalog_records(catalog_path)}
    assert len(set(groups.values())) == 1 and None not in groups.values()  # one chained group
    assert _paths(select_records(catalog_path, under="test", copy_under="train")) == set()
    # b is within the tolerance of both
    assert _paths(select_records(catalog_path, copy_under="train")) == {"other/b.png"}
    assert [(r["path"], r["copy_of"]) for r in select_records(
        catalog_path, under="test", copy_under="other")] == [("test/c.png", "other/b.png")]


def test_copy_under_reads_the_tolerance_of_the_last_scan(tmp_path):
    a = 0x0F0F_0F0F_3C3C_0000
    files = {"train/a.png": a, "test/c.png": a ^ 0x3F}  # 6 bits apart
    assert _paths(select_records(_synthetic_catalog(tmp_path, files, 6),
                                 under="test", copy_under="train")) == {"test/c.png"}
    (tmp_path / "catalog.db").unlink()
    assert _paths(select_records(_synthetic_catalog(tmp_path, files, 5),
                                 under="test", copy_under="train")) == set()


# -- label_conflict -------------------------------------------------------------------------------


def test_label_conflicts_are_exact_copies_in_folders_of_other_names(dataset):
    # train/cat/k1.png and test/cat/k1 leak.png share the label "cat": a leak, no conflict;
    # k5 top.png is in DIR itself: no label
    assert _paths(select_records(dataset, only="label_conflict")) == CONFLICTS
    assert _paths(select_records(dataset, only="label_conflict", under="train/dog")) == {
        "train/dog/k2 again.png"}


# -- the command line -----------------------------------------------------------------------------


def _run(args, **kwargs):
    return runner.invoke(app, ["report", *map(str, args)], **kwargs)


def _lines(result) -> set[str]:
    return set(result.stdout_bytes.decode().splitlines())


def test_cli_under_alone_prints_the_paths(dataset, monkeypatch):
    monkeypatch.chdir(dataset.parent)
    result = _run(["data", "--under", "test/"])
    assert result.exit_code == 0, result.output
    assert _lines(result) == {f"data/{p}" for p in UNDER_TEST}
    assert result.stderr == ""
    leaks = _run(["data", "--under", "test", "--copy-under", "./train", "--print0"])
    assert set(leaks.stdout_bytes.split(b"\0")[:-1]) == {f"data/{p}".encode() for p in LEAKS}


def test_cli_relative_paths_are_relative_to_dir(dataset, monkeypatch):
    monkeypatch.chdir(dataset)
    result = _run([dataset, "--only", "label_conflict", "--relative"])
    assert result.exit_code == 0, result.output
    assert _lines(result) == CONFLICTS and all(os.path.isfile(p) for p in CONFLICTS)
    nul = _run([dataset, "--under", "test", "--copy-under", "train", "--relative", "--print0"])
    assert set(nul.stdout_bytes.split(b"\0")[:-1]) == {p.encode() for p in LEAKS}


def test_cli_filters_the_exports(dataset, tmp_path):
    result = _run([dataset, "--json", "--under", "test", "--copy-under", "train"])
    assert result.exit_code == 0, result.output
    assert {r["path"]: r["copy_of"] for r in json.loads(result.stdout)} == {
        "test/cat/k1 leak.png": "train/cat/k1.png", "test/dog/k3 near.png": "train/dog/k3.png"}
    result = _run([dataset, "--csv", "-", "--only", "label_conflict"])
    assert {row["path"] for row in csv.DictReader(result.stdout.splitlines())} == CONFLICTS
    result = _run([dataset, "--csv", tmp_path / "t.csv", "--under", "testing"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as fh:
        assert [row["path"] for row in csv.DictReader(fh)] == ["testing/dog/k4 copy.png"]


def test_cli_says_when_a_folder_holds_no_file(dataset):
    result = _run([dataset, "--under", "data/test", "--under", "test"])
    assert result.exit_code == 0, result.output
    assert _lines(result) == {str(dataset / p) for p in UNDER_TEST}
    assert "--under 'data/test/': no file of the catalog is under it" in result.stderr
    result = _run([dataset, "--json", "--copy-under", "val"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert "--copy-under 'val/'" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--under", "../x"], "inside the scanned one"),
        (["--copy-under", "/abs"], "inside the scanned one"),
        (["--under", "test", "-o", "r.html"], "always shows the whole folder"),
        (["--relative", "--json"], "cannot be combined"),
        (["--relative", "--csv", "x.csv"], "cannot be combined"),
    ],
)
def test_cli_usage_errors_exit_2_and_write_nothing(dataset, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    result = _run([dataset, *args])
    assert result.exit_code == 2, result.output
    assert says in result.stderr and result.stdout_bytes == b""
    assert list(tmp_path.iterdir()) == []


# -- files deleted since the scan ------------------------------------------------------------------


@pytest.fixture
def pruned(dataset, tmp_path) -> Path:
    """A copy of the scanned folder (catalog included) from which two test files were deleted."""
    root = tmp_path / "data"
    shutil.copytree(dataset, root)
    (root / "test/dog/k5.png").unlink()
    (root / "test/cat/k1 leak.png").unlink()
    return root


def test_paths_leave_out_the_files_gone_since_the_scan(pruned):
    result = _run([pruned, "--under", "test"])
    assert result.exit_code == 0, result.output
    assert _lines(result) == {str(pruned / "test/dog/k3 near.png")}
    text = " ".join(result.stderr.split())
    assert "2 files in the catalog are gone since the last scan (left out)" in text
    assert f"boda scan {pruned}" in text
    one = _run([pruned, "--only", "exact_duplicate", "--under", "test/cat", "--relative"])
    assert one.stdout == "" and "1 file in the catalog is gone" in " ".join(one.stderr.split())


def test_exports_keep_the_gone_files_and_say_so_for_a_selection(pruned, tmp_path):
    result = _run([pruned, "--json", "--under", "test"])
    assert {r["path"] for r in json.loads(result.stdout)} == UNDER_TEST  # the catalog
    assert "2 files in the catalog are gone" in " ".join(result.stderr.split())
    table = _run([pruned, "--csv", tmp_path / "t.csv", "--only", "exact_duplicate"])
    assert "2 files in the catalog are gone" in " ".join(table.stderr.split())
    stdout_table = _run([pruned, "--csv", "-", "--only", "exact_duplicate"])
    assert "2 files in the catalog are gone" in " ".join(stdout_table.stderr.split())
    pytest.importorskip("pyarrow")
    parquet = _run([pruned, "--parquet", tmp_path / "t.parquet", "--under", "test/cat"])
    assert "1 file in the catalog is gone" in " ".join(parquet.stderr.split())


def test_the_unfiltered_export_stats_nothing(pruned, monkeypatch):
    # the whole catalog as it is, quickly: no file is looked for on disk
    looked: list = []
    real = os.path.lexists
    monkeypatch.setattr(os.path, "lexists", lambda p: looked.append(p) or real(p))
    result = _run([pruned, "--json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == len(FILES)
    assert "gone" not in result.stderr and looked == []


# -- folder symlinks: a split the scan did not enter is named --------------------------------------


def test_the_scan_names_the_folder_links_it_did_not_follow(tmp_path, kodak_paths):
    real = tmp_path / "disk2" / "train"
    for n, cls in enumerate(("cat", "dog", "fox", "owl")):
        (real / cls).mkdir(parents=True)
        write_image(real / cls / "a.png", read_image(kodak_paths[n], max_side=48))
    root = tmp_path / "ds"
    (root / "test/cat").mkdir(parents=True)
    (root / "extra").mkdir()
    shutil.copy(real / "cat/a.png", root / "test/cat/leak.png")  # unseen: train is a link
    os.symlink("../disk2/train", root / "train")
    for cls in ("dog", "fox", "owl"):
        os.symlink(f"../../disk2/train/{cls}", root / "extra" / cls)
    summary = scan(root, workers=1)
    assert summary.total == 1 and summary.flag_counts["exact_duplicate"] == 0
    assert summary.folder_links == [
        ("extra/dog", "../../disk2/train/dog"), ("extra/fox", "../../disk2/train/fox"),
        ("extra/owl", "../../disk2/train/owl"), ("train", "../disk2/train"),
    ]
    result = runner.invoke(app, ["scan", str(root), "--no-report", "-q"])
    text = " ".join(result.output.split())
    assert "folder links not followed: 4 (extra/dog -> ../../disk2/train/dog," in text
    assert "extra/owl -> ../../disk2/train/owl …): their files are not scanned through" in text
    data = json.loads(runner.invoke(app, ["scan", str(root), "--no-report", "--json"]).stdout)
    assert data["folder_links"][-1] == {"path": "train", "target": "../disk2/train"}
    # scanning the real folders instead finds the leak
    assert scan(real, workers=1).folder_links == []


def test_a_scan_without_folder_links_says_nothing_of_them(dataset):
    result = runner.invoke(app, ["scan", str(dataset), "--no-report", "-q"])
    assert result.exit_code == 0 and "folder links" not in result.output


# -- counts per folder ----------------------------------------------------------------------------


def test_folder_counts_by_depth(dataset):
    from boda.report import folder_counts

    top = folder_counts(dataset)
    assert [(r["folder"], r["files"]) for r in top] == [
        (".", 2), ("test", 3), ("testing", 1), ("train", 5)]
    records = catalog_records(dataset)
    for row in top:
        inside = [r for r in records if (r["path"].split("/")[0] if "/" in r["path"] else ".")
                  == row["folder"]]
        assert row["flags"]["exact_duplicate"] == sum(
            "exact_duplicate" in r["flags"] for r in inside)
    two = {r["folder"]: r for r in folder_counts(dataset, 2, under="train")}
    assert {f: r["files"] for f, r in two.items()} == {"train/cat": 2, "train/dog": 3}
    assert two["train/dog"]["flags"]["exact_duplicate"] == 2  # k2 again, k4
    assert folder_counts(dataset, 5, only="label_conflict")[0]["folder"] == "train/cat"
    with pytest.raises(InvalidParameterError, match="depth"):
        folder_counts(dataset, 0)


def test_cli_by_folder_prints_a_table_and_json(dataset):
    result = runner.invoke(app, ["report", str(dataset), "--by-folder", "2"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.split("│")] for line in result.stdout.splitlines()[2:]]
    rows = {row[0]: row[1:] for row in cells}
    assert set(rows) == {".", "test/cat", "test/dog", "testing/dog", "train/cat", "train/dog"}
    assert rows["train/dog"][:2] == ["3", "0"] and "2 (67%)" in rows["train/dog"]
    data = json.loads(runner.invoke(app, ["report", str(dataset), "--by-folder", "1",
                                          "--json", "--under", "test"]).stdout)
    assert data == [{"folder": "test", "files": 3, "unreadable": 0,
                     "flags": data[0]["flags"]}]
    assert data[0]["flags"]["near_duplicate"] == 1
    refused = runner.invoke(app, ["report", str(dataset), "--by-folder", "1", "--paths"])
    assert refused.exit_code == 2 and "cannot be combined" in refused.stderr
