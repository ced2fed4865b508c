"""Acting on a scan: selections of files (``--only``), the duplicate copies boda would
remove (``redundant``, the keep rule) and their paths for xargs (``--paths``, ``--print0``).

One real folder is scanned once; every selection is checked against what was put in it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from scipy import ndimage
from typer.testing import CliRunner

from boda.cli import app
from boda.errors import InvalidParameterError
from boda.io import read_image, write_image
from boda.report import (
    DuplicateSet,
    catalog_records,
    duplicate_sets,
    record_relpath,
    select_records,
    selected_paths,
    selections,
    write_csv,
)
from boda.scan import flag_descriptions, scan

runner = CliRunner()

NON_UTF8 = b"c\xff.png"
NEWLINE = "new\nline.png"

#: What each selection must hold, by construction of the folder (display paths).
EXPECTED = {
    "blurry": {"blurry.png", NEWLINE},
    "dark": {"dark.png"},
    "light": set(),
    "low_information": set(),
    "grayscale": set(),
    "odd_aspect_ratio": set(),
    "odd_size": set(),
    "exact_duplicate": {"a.png", "copies/a copy.png", "c.png", "c\\xff.png", "d.png",
                        "d copy.png", "z sharp.png", "zz copy.png"},
    "near_duplicate": {"b half.png", "big/b.png", "dark.png", "e soft.png", "z sharp.png",
                       "zz copy.png"},
    "failed": {"broken.png"},
    "unflagged": {"plain.png"},
    # "d copy.png" is not listed: "d link.png" points to it.
    "redundant": {"copies/a copy.png", "c\\xff.png", "b half.png", "dark.png", "e soft.png",
                  "zz copy.png"},
    # one folder name at most per exact group (a file in DIR itself has no label)
    "label_conflict": set(),
    # nobody has marked anything: every readable file is undecided (links are not)
    "picked": set(),
    "rejected": set(),
    "rated": set(),
    "undecided": {"a.png", "copies/a copy.png", "big/b.png", "b half.png", "dark.png", "c.png",
                  "c\\xff.png", "d.png", "d copy.png", "z sharp.png", "e soft.png",
                  "zz copy.png", "plain.png", "blurry.png", NEWLINE},
}

#: The sets and the file the keep rule keeps in each (see duplicate_sets).
EXPECTED_SETS = [
    # exact copies: same pixels, same sharpness: the first path
    DuplicateSet("a.png", ("copies/a copy.png",), (), (1,), ()),
    DuplicateSet("big/b.png", ("b half.png", "dark.png"), (), (), (1,)),
    DuplicateSet("c.png", ("c\\xff.png",), (), (2,), ()),
    # the original name is kept over its copy's ("d copy.png" sorts first)
    DuplicateSet("d.png", (), ("d copy.png",), (3,), ()),
    # an exact group inside a near one: one set
    DuplicateSet("z sharp.png", ("e soft.png", "zz copy.png"), (), (4,), (2,)),
]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, kodak_paths) -> Path:
    """A scanned folder with every kind of file a selection picks (and links, which none do)."""
    root = tmp_path_factory.mktemp("select") / "photos"
    (root / "copies").mkdir(parents=True)
    (root / "big").mkdir()
    a, b, c, d, e, f = (read_image(p, max_side=96) for p in kodak_paths[:6])
    write_image(root / "a.png", a)
    shutil.copy(root / "a.png", root / "copies" / "a copy.png")
    # b at full size and halved (sharper, fewer pixels); a darkened copy with the most
    # pixels of the three, flagged dark: the good full-size one is kept.
    write_image(root / "big" / "b.png", b)
    write_image(root / "b half.png", b[::2, ::2])
    write_image(root / "dark.png", read_image(kodak_paths[1], max_side=120) ** 2.2 * 0.08)
    write_image(root / "c.png", c)
    shutil.copy(root / "c.png", os.path.join(os.fsencode(root), NON_UTF8))
    write_image(root / "d.png", d)
    shutil.copy(root / "d.png", root / "d copy.png")
    os.symlink("d copy.png", root / "d link.png")  # it must stay: the link would dangle
    os.symlink("a.png", root / "a link.png")
    # the same size, slightly softened (not flagged): the sharper one is kept although
    # its name sorts last
    write_image(root / "z sharp.png", e)
    write_image(root / "e soft.png", ndimage.gaussian_filter(e, (0.4, 0.4, 0)))
    shutil.copy(root / "z sharp.png", root / "zz copy.png")
    write_image(root / "plain.png", f)  # nothing wrong with it
    write_image(root / "blurry.png", ndimage.gaussian_filter(f[::-1, ::-1], (4, 4, 0))[:90])
    big = read_image(kodak_paths[0], max_side=200)[:100, :150]
    write_image(root / NEWLINE, ndimage.gaussian_filter(big, (5, 5, 0)))
    (root / "broken.png").write_bytes(b"not a png")
    summary = scan(root, workers=1)
    assert summary.links == 2 and len(summary.failed) == 1
    return root


def _paths(records) -> list[str]:
    return [r["path"] for r in records]


# -- the Python API -------------------------------------------------------------------------------


def test_the_names_are_every_flag_plus_the_others(scanned):
    # read from the flag rules, not a second list: a new flag is selectable at once
    assert list(selections()) == [*flag_descriptions(), "failed", "unflagged", "redundant",
                                  "label_conflict", "picked", "rejected", "undecided", "rated"]
    assert set(EXPECTED) == set(selections())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_selection_holds_what_was_put_in_the_folder(scanned, name):
    got = _paths(select_records(scanned, only=name))
    assert set(got) == EXPECTED[name]
    assert got == [p for p in _paths(catalog_records(scanned)) if p in EXPECTED[name]]


def test_links_are_in_no_selection(scanned):
    every = set(_paths(select_records(scanned, only=list(selections()))))
    everything = set(_paths(catalog_records(scanned)))
    assert everything - every == {"a link.png", "d link.png"}


def test_several_names_select_the_union_in_record_order(scanned):
    union = EXPECTED["blurry"] | EXPECTED["dark"] | EXPECTED["failed"]
    order = [p for p in _paths(catalog_records(scanned)) if p in union]
    assert _paths(select_records(scanned, only=("blurry", "dark", "failed"))) == order
    assert _paths(select_records(scanned, only="blurry, dark,failed")) == order
    assert _paths(select_records(scanned, only=["blurry,dark", "failed"])) == order
    # the records themselves are those of the full export
    full = {r["path"]: r for r in catalog_records(scanned)}
    assert all(r == full[r["path"]] for r in select_records(scanned, only="failed,dark"))
    assert _paths(select_records(scanned)) == list(full)  # None: everything


def test_the_keep_rule(scanned):
    # fewest other flags (dark.png has the most pixels but is dark), then the most pixels
    # (b half.png is sharper), then the sharpest (e soft.png sorts first), then the first
    # path; a member a link points to is kept too
    assert duplicate_sets(scanned) == EXPECTED_SETS
    records = {r["path"]: r for r in catalog_records(scanned)}
    assert records["b half.png"]["scores"]["blurry"] > records["big/b.png"]["scores"]["blurry"]
    assert records["dark.png"]["width"] > records["big/b.png"]["width"]
    assert records["e soft.png"]["scores"]["blurry"] < records["z sharp.png"]["scores"]["blurry"]
    assert records["d link.png"]["link_to"] == "d copy.png"


def test_every_set_keeps_a_file_and_redundant_is_the_rest(scanned):
    records = {r["path"]: r for r in catalog_records(scanned)}
    for found in duplicate_sets(scanned):
        members = {found.keep, *found.redundant, *found.linked}
        assert len(members) == 1 + len(found.redundant) + len(found.linked)
        groups = {(f, records[p]["groups"][f]) for p in members for f in records[p]["groups"]}
        in_groups = {p for p, r in records.items()
                     if any((f, g) in groups for f, g in r["groups"].items())}
        assert in_groups == members
    listed = {p for found in duplicate_sets(scanned) for p in found.redundant}
    assert listed == EXPECTED["redundant"]


def test_each_redundant_record_names_the_file_kept(scanned):
    kept = {p: found.keep for found in duplicate_sets(scanned) for p in found.redundant}
    records = list(select_records(scanned, "redundant,blurry"))
    assert {r["path"]: r["kept"] for r in records} == {
        **{p: None for p in EXPECTED["blurry"]}, **kept
    }
    assert all("kept" not in r for r in select_records(scanned, "blurry"))


def test_selected_paths_are_exact_bytes(scanned):
    rel = set(selected_paths(scanned, "redundant,blurry"))
    assert NON_UTF8 in rel and NEWLINE.encode() in rel
    assert rel == {record_relpath(r) for r in select_records(scanned, "redundant,blurry")}
    rooted = set(selected_paths(scanned, "redundant,blurry", root=scanned))
    assert rooted == {os.path.join(os.fsencode(scanned), p) for p in rel}
    assert all(os.path.isfile(p) for p in rooted)


def test_csv_keeps_the_selected_rows_and_every_column(scanned, tmp_path):
    write_csv(scanned, tmp_path / "all.csv")
    write_csv(scanned, tmp_path / "some.csv", only=["near_duplicate"])
    with open(tmp_path / "all.csv", newline="", encoding="utf-8") as fh:
        full = list(csv.reader(fh))
    with open(tmp_path / "some.csv", newline="", encoding="utf-8") as fh:
        some = list(csv.reader(fh))
    assert some[0] == full[0]
    assert some[1:] == [row for row in full[1:] if row[0] in EXPECTED["near_duplicate"]]


@pytest.mark.parametrize("only", ["blurr", ("blurry", "links"), "", (), [3], 3])
def test_bad_names_are_refused_at_once_with_the_valid_ones(scanned, only):
    with pytest.raises(InvalidParameterError) as info:
        select_records(scanned, only=only)  # not iterated: refused before any reading
    assert all(name in str(info.value) for name in selections()) or "strings" in str(info.value)
    with pytest.raises(InvalidParameterError):
        write_csv(scanned, scanned.parent / "never.csv", only=only)
    assert not (scanned.parent / "never.csv").exists()


# -- the command line -----------------------------------------------------------------------------


def _run(args, **kwargs):
    return runner.invoke(app, ["report", *map(str, args)], **kwargs)


def test_print0_paths_round_trip_to_the_files(scanned, monkeypatch):
    monkeypatch.chdir(scanned.parent)
    result = _run(["photos", "--only", "redundant,failed", "--only", "blurry", "--print0"])
    assert result.exit_code == 0, result.output
    raw = result.stdout_bytes
    assert raw.endswith(b"\0")
    names = raw[:-1].split(b"\0")
    want = EXPECTED["redundant"] | EXPECTED["failed"] | EXPECTED["blurry"]
    assert {os.fsencode(os.path.relpath(os.fsdecode(n), "photos")) for n in names} == {
        record_relpath({"path": p, "path_bytes_hex": NON_UTF8.hex() if "\\xff" in p else None})
        for p in want
    }
    assert all(n.startswith(b"photos/") and os.path.isfile(n) for n in names)
    assert b"photos/" + NON_UTF8 in names and b"photos/" + NEWLINE.encode() in names


def test_paths_one_a_line_leave_out_a_name_with_a_newline(scanned, monkeypatch):
    monkeypatch.chdir(scanned.parent)
    result = _run(["photos", "--only", "redundant", "--paths"])
    assert result.exit_code == 0, result.output
    lines = result.stdout_bytes.split(b"\n")
    assert lines[-1] == b"" and all(os.path.isfile(line) for line in lines[:-1])
    assert {line.decode("utf-8", "backslashreplace") for line in lines[:-1]} == {
        f"photos/{p}" for p in EXPECTED["redundant"]
    }
    assert result.stderr == ""
    blurry = _run(["photos", "--only", "blurry", "--paths"])
    assert blurry.exit_code == 1
    assert blurry.stdout_bytes == b"photos/blurry.png\n"  # stdout: the data only
    assert "new\\nline.png" in blurry.stderr and "--print0" in blurry.stderr


def test_only_alone_lists_the_paths_and_writes_no_report(scanned, tmp_path):
    result = _run([scanned, "--only", "dark,failed"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.decode().splitlines() == [
        str(scanned / "broken.png"), str(scanned / "dark.png")
    ]
    assert not (scanned / ".boda" / "report.html").exists()


def test_only_filters_json_and_csv(scanned, tmp_path):
    result = _run([scanned, "--json", "--only", "near_duplicate,unflagged"])
    assert result.exit_code == 0, result.output
    want = EXPECTED["near_duplicate"] | EXPECTED["unflagged"]
    records = json.loads(result.stdout)
    assert {r["path"] for r in records} == want
    full = {r["path"]: r for r in json.loads(_run([scanned, "--json"]).stdout)}
    assert all(r == full[r["path"]] for r in records)
    out = tmp_path / "dups.csv"
    result = _run([scanned, "--csv", out, "--only", "exact_duplicate"])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["path"] for r in rows} == EXPECTED["exact_duplicate"]
    assert {r["path"]: r["exact_duplicate_group"] for r in rows}["c\\xff.png"] == "2"
    assert result.stdout == ""  # the CSV's message goes to stderr
    assert not (scanned / ".boda" / "report.html").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--only", "blurry,sharp"], "unknown selection 'sharp'"),
        (["--only", ","], "no selection"),
        (["--paths", "--json"], "cannot be combined"),
        (["--print0", "--csv", "x.csv"], "cannot be combined"),
        (["--paths", "-o", "r.html"], "cannot be combined"),
        (["--only", "dark", "-o", "r.html"], "always shows the whole folder"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(scanned, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    result = _run([scanned, *args])
    assert result.exit_code == 2, result.output
    assert says in result.stderr and result.stdout_bytes == b""
    if "selection" in says:
        assert all(name in result.stderr for name in selections())
    assert list(tmp_path.iterdir()) == []


def test_the_report_is_unchanged_without_only(scanned, tmp_path):
    result = _run([scanned, "-o", tmp_path / "r.html"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "dark.png" in page and "broken.png" in page and "c\\xff.png" in page


def test_help_names_every_selection_and_an_example():
    result = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name in selections():
        assert name in text, name
    assert "--print0 | xargs -0" in text and "--only blurry,dark" in text


def test_a_folder_that_could_not_be_listed_is_no_path_to_act_on(tmp_path):
    """Its record is an unreadable entry of the catalog, but ``--only failed --paths``
    feeds ``mv``/``rm``: the folder (and every photo in it) is left out, with a note."""
    from boda.catalog import Catalog, ImageRecord

    root = tmp_path / "shoot"
    (root / "locked").mkdir(parents=True)
    photo = Path(__file__).parent / "data" / "kodak" / "kodim23.png"
    write_image(root / "ok.png", read_image(photo, max_side=32))
    scan(root, workers=1)
    with Catalog(root) as catalog:
        catalog.write_batch([
            ImageRecord(relpath=b"locked", size=0, mtime_ns=0, status="error",
                        error="cannot list folder: Permission denied"),
            ImageRecord(relpath=b"bad.jpg", size=3, mtime_ns=0, status="error",
                        error="not a recognised image format"),
        ])  # fmt: skip
    with pytest.warns(UserWarning, match="left out 1 folder that could not be listed"):
        assert list(selected_paths(root, "failed")) == [b"bad.jpg"]
    (root / "bad.jpg").write_bytes(b"abc")
    out = runner.invoke(app, ["report", str(root), "--only", "failed", "--paths"])
    assert out.exit_code == 0
    assert out.stdout.splitlines() == [os.path.join(str(root), "bad.jpg")]
    assert "note: left out 1 folder that could not be listed" in " ".join(out.stderr.split())
