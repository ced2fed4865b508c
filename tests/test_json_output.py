"""The fast JSON writer of ``--json`` outputs (``boda.cli._json``) and the catalog's
export pass: the same text, byte for byte, as ``json.dumps(clean(x), indent=2)``."""

from __future__ import annotations

import collections
import enum
import io
import json
import math
import sqlite3
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boda.catalog import Catalog, ImageRecord
from boda.cli import _json
from boda.cli._common import _json_text, print_json, print_json_array
from boda.report import catalog_records, iter_catalog_records
from boda.report._export import real_scores

# float32 arrays of huge floats: numpy says inf, as it should.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def reference_clean(value):
    """What ``--json`` printed before the fast writer: the generic checks only."""
    if isinstance(value, dict):
        return {str(k): reference_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [reference_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return reference_clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reference_text(value, ensure_ascii=False, level=0):
    text = json.dumps(reference_clean(value), indent=2, ensure_ascii=ensure_ascii)
    return text.replace("\n", "\n" + "  " * level)


class Label(str):
    def __str__(self):  # str() of a key differs from its characters
        return "label:" + super().__str__()


class Count(int):
    pass


class Ratio(float):
    def __repr__(self):  # json uses float.__repr__, never this
        return "Ratio!"


class Colour(enum.IntEnum):
    RED = 1


class Items(list):
    pass


_SPECIAL_FLOATS = [
    0.0, -0.0, 1e-300, -1e-300, 5e-324, 1.7976931348623157e308, 1e16, 1e-5, 0.1,
    math.nan, math.inf, -math.inf,
]
_SPECIAL_TEXT = [
    "", "é", "中文", "\U0001f600", "\x00\x1f\x7f", '"\\/', "\ud800", "a\udfffb", "\u2028",
    "[1, 2]", "{}", "NaN", ": ,",
]

floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(_SPECIAL_FLOATS)
texts = st.text(st.characters(codec=None), max_size=8) | st.sampled_from(_SPECIAL_TEXT)
ints = st.integers() | st.integers(min_value=-(10**60), max_value=10**60)
numpy_scalars = (
    floats.map(np.float64)
    | floats.map(np.float32)
    | st.integers(-(2**63), 2**63 - 1).map(np.int64)
    | st.integers(0, 255).map(np.uint8)
    | st.booleans().map(np.bool_)
    | texts.map(np.str_)
)
arrays = (
    st.lists(floats, max_size=4).map(lambda v: np.array(v, dtype=np.float64))
    | st.lists(floats, max_size=4).map(lambda v: np.array(v, dtype=np.float32))
    | st.lists(st.lists(st.integers(-9, 9), min_size=2, max_size=2), max_size=3).map(np.array)
)
subclassed = (
    texts.map(Label) | st.integers(-5, 5).map(Count) | floats.map(Ratio)
    | st.just(Colour.RED)
)
scalars = st.none() | st.booleans() | ints | floats | texts | numpy_scalars | subclassed
keys = texts | st.integers(-3, 3) | st.booleans() | st.none() | floats | st.just(Label("k"))


def _containers(children):
    return (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=3).map(tuple)
        | st.lists(children, max_size=3).map(Items)
        | st.dictionaries(keys, children, max_size=5)
        | st.dictionaries(texts, children, max_size=5)
        | st.dictionaries(texts, children, max_size=3).map(collections.OrderedDict)
    )


values = st.recursive(scalars | arrays, _containers, max_leaves=25)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, ensure_ascii=st.booleans(), level=st.integers(0, 3))
def test_the_text_is_json_dumps_of_the_cleaned_value(value, ensure_ascii, level):
    expected = reference_text(value, ensure_ascii, level)
    assert _json.dumps(value, ensure_ascii=ensure_ascii, level=level) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, ensure_ascii=st.booleans(), level=st.integers(0, 2))
def test_the_writer_without_the_c_encoder_too(value, ensure_ascii, level):
    write = _json._plain_writer(ensure_ascii)
    assert write(value, "\n" + "  " * level) == reference_text(value, ensure_ascii, level)


@settings(max_examples=150, deadline=None)
@given(value=values)
def test_clean_gives_the_reference_values(value):
    assert json.dumps(_json.clean(value)) == json.dumps(reference_clean(value))


@pytest.mark.parametrize(
    "value",
    [
        {"flat": [1.5, math.nan, 2]},  # a NaN in a flat list: its C encoding is refused
        {"scores": {"a": 0.1, "b": -math.inf, "c": None}},
        {1: "one", "1": "uno", False: "no", None: "none", 2.5: "x"},  # str() of keys
        {"deep": [[[[{"x": [[]]}]]], {}, [], ()]},
        [np.arange(6).reshape(2, 3), np.float32(0.1), np.int64(-3), np.bool_(True)],
        {"rgb": np.array([np.nan, 0.5, np.inf], dtype=np.float32)},
        "\ud800 lone surrogate",
        10**50,
        -0.0,
        [],
        {},
    ],
)
def test_chosen_values(value):
    for ensure_ascii in (False, True):
        for level in (0, 1, 2):
            expected = reference_text(value, ensure_ascii, level)
            assert _json.dumps(value, ensure_ascii=ensure_ascii, level=level) == expected


def test_values_json_has_no_form_for_are_refused_as_json_dumps_does():
    for value in ({"a": b"bytes"}, [{1, 2}], {"when": object()}, {"a": [1, np.datetime64(1, "D")]}):
        with pytest.raises(TypeError) as expected:
            json.dumps(reference_clean(value), indent=2)
        with pytest.raises(TypeError) as got:
            _json.dumps(value)
        assert str(got.value) == str(expected.value)


def test_the_writer_caches_stay_small():
    write = _json._WRITERS[0]
    for n in range(25_000):
        value = {f"key {n}": [n, {"x": 1}]}
        assert write(value, "\n") == reference_text(value)
    keys, encoders = write.caches
    assert 0 < len(keys) <= 10_001 and "\n      " in encoders


def _old_json_text(data, encoding):
    """``_json_text`` before the fast writer."""
    text = json.dumps(reference_clean(data), indent=2, ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            text = json.dumps(reference_clean(data), indent=2, ensure_ascii=True)
    return text


def _old_array(items, encoding):
    """``print_json_array`` before the fast writer: ``_json_text`` of each item."""
    out = ""
    for n, item in enumerate(items):
        text = _old_json_text(item, encoding)
        out += ("[\n" if n == 0 else ",\n") + "  " + text.replace("\n", "\n  ")
    return out + ("\n]\n" if items else "[]\n")


def _printed(print_function, value, encoding="utf-8"):
    """What ``print_function(value)`` writes to a stdout of this encoding."""
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding=encoding, newline="\n")
    saved, sys.stdout = sys.stdout, stream
    try:
        print_function(value)
        stream.flush()
    finally:
        sys.stdout = saved
    return buffer.getvalue().decode(encoding, "surrogatepass")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(values, max_size=4))
def test_the_streamed_array_is_the_old_layout(items):
    assert _printed(print_json_array, iter(items)) == _old_array(items, "utf-8")
    assert _printed(print_json, items) == _old_json_text(items, "utf-8") + "\n"


def _latin1_stdout(monkeypatch):
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="latin-1", errors="strict", newline="\n")
    monkeypatch.setattr(sys, "stdout", stream)
    return buffer, stream


def test_characters_stdout_cannot_hold_are_escaped_item_by_item(monkeypatch):
    items = [{"name": "café"}, {"name": "中文"}, {"name": "plain"}, {"x": "\ud800", "y": "é"}]
    buffer, stream = _latin1_stdout(monkeypatch)
    print_json_array(iter(items))
    stream.flush()
    text = buffer.getvalue().decode("latin-1")
    assert text == _old_array(items, "latin-1")
    assert '"café"' in text and '"\\u4e2d\\u6587"' in text and '"\\u00e9"' in text
    assert json.loads(text) == [{"name": "café"}, {"name": "中文"}, {"name": "plain"},
                                {"x": "\ud800", "y": "é"}]
    assert _json_text({"a": "é"}) == '{\n  "a": "é"\n}'  # latin-1 holds it: kept
    assert _json_text({"a": "€"}, level=1) == '{\n    "a": "\\u20ac"\n  }'


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(values, min_size=1, max_size=3))
def test_the_ascii_fallback_is_the_old_one_for_any_value(items):
    assert _printed(print_json_array, iter(items), "latin-1") == _old_array(items, "latin-1")


# -- the catalog's export pass ---------------------------------------------------------------


def _records():
    return [
        ImageRecord(b"b.png", 10, 1, "ok", width=4, height=3, format="PNG", pixel_hash="ab",
                    phash=2**64 - 2, scores={"blurry": 0.25, "dark": math.nan},
                    extra={"dominant_colors": [{"rgb": [0.1, 0.2, 0.3], "fraction": 1.0}]}),
        ImageRecord(b"a\xff.png", 11, 2, "error", error="cannot identify image"),
        ImageRecord(b"c\xc3\xa9.png", 12, 3, "link", link_to=b"a\xff.png"),
        ImageRecord(b"d.png", 13, 4, "ok", width=1, height=1, format="PNG", phash=5,
                    scores={"blurry": math.inf}),
    ]


def test_record_dicts_are_to_dict_of_the_records(tmp_path):
    with Catalog(tmp_path / "catalog.db") as catalog:
        records = _records()
        catalog.write_batch(records)
        catalog.replace_flags([
            (records[0].id, "near_duplicate", 0.5, 3), (records[0].id, "blurry", 0.25, None),
            (records[0].id, "exact_duplicate", None, 1), (records[3].id, "blurry", None, None),
        ])
    with Catalog(tmp_path / "catalog.db", readonly=True) as catalog:
        expected = [r.to_dict() for r in catalog.records()]
        got = list(catalog.record_dicts())
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN: compared as text
    assert [d["path"] for d in got] == ["a\\xff.png", "b.png", "cé.png", "d.png"]
    first = got[1]
    assert first["flags"] == ["blurry", "exact_duplicate", "near_duplicate"]
    assert first["groups"] == {"exact_duplicate": 1, "near_duplicate": 3}
    assert first["phash"] == "fffffffffffffffe" and got[0]["path_bytes_hex"] == "61ff2e706e67"
    assert got[2]["link_to"] == "a\\xff.png" and got[2]["path_bytes_hex"] is None
    assert got[3]["flag_scores"] == {"blurry": None} and got[3]["groups"] == {}
    # the export adds the person's marks (none here) to each record, and gives a score
    # that is no finite number as None (as --json always printed it: null)
    unmarked = [real_scores({**r, "decision": None, "rating": None}) for r in expected]
    assert json.dumps(catalog_records(tmp_path / "catalog.db")) == json.dumps(unmarked)


def test_record_dicts_of_a_version_1_catalog(tmp_path):
    db = tmp_path / "catalog.db"
    with sqlite3.connect(db) as con:  # the images table before link_to
        con.executescript("""
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1);
            CREATE TABLE images (id INTEGER PRIMARY KEY, relpath BLOB NOT NULL UNIQUE,
                display_path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                status TEXT NOT NULL, error TEXT, width INTEGER, height INTEGER, format TEXT,
                pixel_hash TEXT, phash INTEGER, scores TEXT NOT NULL DEFAULT '{}',
                extra TEXT NOT NULL DEFAULT '{}', scanned_at REAL NOT NULL);
            CREATE TABLE flags (image_id INTEGER NOT NULL, name TEXT NOT NULL, score REAL,
                group_id INTEGER, PRIMARY KEY (image_id, name));
            INSERT INTO images VALUES (7, X'612E706E67', 'a.png', 10, 5, 'ok', NULL, 4, 3,
                'PNG', 'ab', -2, '{"blurry": 0.1}', '{}', 1.0);
            INSERT INTO flags VALUES (7, 'blurry', 0.1, NULL);
        """)
    with Catalog(db, readonly=True) as catalog:
        (got,) = catalog.record_dicts()
        assert got == next(catalog.records()).to_dict()
    assert got["link_to"] is None and got["phash"] == "fffffffffffffffe"
    assert got["flags"] == ["blurry"] and got["scores"] == {"blurry": 0.1}


def test_the_export_text_is_the_old_one(tmp_path, capsys):
    with Catalog(tmp_path / "catalog.db") as catalog:
        catalog.write_batch(_records())
    records = catalog_records(tmp_path / "catalog.db")
    print_json_array(iter_catalog_records(tmp_path / "catalog.db"))
    assert capsys.readouterr().out == reference_text(records) + "\n"


def test_record_dicts_read_damaged_cells_as_records_does(tmp_path):
    db = tmp_path / "catalog.db"
    with Catalog(db) as catalog:
        catalog.write_batch(_records())
    with sqlite3.connect(db) as con:  # hand-edited cells: a list, not JSON, a number
        con.execute("UPDATE images SET scores = '[1, 2]' WHERE relpath = X'622E706E67'")
        con.execute("UPDATE images SET extra = 'not json' WHERE relpath = X'642E706E67'")
        con.execute("UPDATE images SET scores = '7' WHERE relpath = X'61FF2E706E67'")
    with Catalog(db, readonly=True) as catalog:
        expected = [r.to_dict() for r in catalog.records()]
        got = list(catalog.record_dicts())
    assert json.dumps(got) == json.dumps(expected)
    assert [(d["scores"], d["extra"]) for d in got][:2] == [({}, {}), ({}, {
        "dominant_colors": [{"rgb": [0.1, 0.2, 0.3], "fraction": 1.0}]})]
    assert got[3]["scores"] == {"blurry": math.inf} and got[3]["extra"] == {}
