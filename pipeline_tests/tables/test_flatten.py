"""Leaf paths, exact JSON text and their inverses, on arbitrary and hostile JSON."""

from __future__ import annotations

import json
import sys

import orjson
import pytest
from hypothesis import given, settings

from pipeline.jsonio import int_text, to_json
from pipeline.tables import build_frames, rebuild_entities
from pipeline.tables.flatten import iter_leaves, leaf_columns
from pipeline.tables.paths import parse_path, path_string
from pipeline_tests.tables.jobs import completed_job, json_objects, json_values, nested, segment


def _rows(value):
    return [
        dict(zip(("value_type", "value_json"), leaf_columns(leaf)[:2], strict=True), path=path)
        for path, leaf in iter_leaves(value)
    ]


def _exact(value) -> str:
    """A type-exact fingerprint (1 and 1.0 differ, key order counts)."""
    return json.dumps(value, separators=(",", ":"))


@given(json_values)
def test_leaves_rebuild_any_json_value_exactly(value):
    assert _exact(rebuild_entities(_rows(value))) == _exact(value)


@given(json_values)
def test_to_json_round_trips_exactly(value):
    assert _exact(json.loads(to_json(value))) == _exact(value)


@settings(max_examples=60, deadline=None)
@given(json_objects, json_objects)
def test_entity_values_of_a_frame_rebuild_every_entity(video, seg_entities):
    job = completed_job("j1", [segment(0.0, 1.0, seg_entities)], video_entities=video)
    frames = build_frames([job])
    values = frames["entity_values"]
    for scope, original in (("video", video), ("segment", seg_entities)):
        rows = values[values["scope"] == scope].to_dict("records")
        assert _exact(rebuild_entities(rows)) == _exact(original)
    for table, original in (("video_entities", video), ("segment_entities", seg_entities)):
        text = frames[table]["entities_json"].iloc[0]
        assert _exact(json.loads(text)) == _exact(original)


def test_paths_quote_ambiguous_keys():
    value = {"objects": [{"name": "x"}], "a.b": {"c d": 1}, "名前": True, "": None, "[0]": []}
    assert [p for p, _ in iter_leaves(value)] == [
        "objects[0].name",
        '["a.b"]["c d"]',
        '["名前"]',
        '[""]',
        '["[0]"]',
    ]
    assert parse_path('["a.b"]["c d"]') == ["a.b", "c d"]
    assert path_string(["x", 0, "y.z", 2]) == 'x[0]["y.z"][2]'


def test_root_scalars_and_empty_containers_are_leaves():
    assert iter_leaves({}) == [("", {})]
    assert iter_leaves([]) == [("", [])]
    assert iter_leaves(42) == [("", 42)]
    assert rebuild_entities(_rows({"a": {}, "b": [[], {}]})) == {"a": {}, "b": [[], {}]}
    assert rebuild_entities([]) is None


def test_big_integers_are_exact_and_keep_their_type():
    big = 2**64 + 1
    vtype, vjson, _, number, integer, _ = leaf_columns(big)
    assert (vtype, vjson, number, integer) == ("integer", str(big), float(big), None)
    assert leaf_columns(-(2**63))[3:5] == (float(-(2**63)), -(2**63))  # int64 still fits
    assert leaf_columns(2**63)[4] is None
    huge = 10**400
    assert leaf_columns(huge)[3] is None  # beyond float: no number, the text stays exact
    assert json.loads(to_json({"n": huge}))["n"] == huge
    beyond_str_limit = -(7**20_000)
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        expected = str(beyond_str_limit)
    finally:
        sys.set_int_max_str_digits(limit)
    assert int_text(beyond_str_limit) == expected
    assert to_json({"x": beyond_str_limit}) == '{"x":' + expected + "}"


def test_deep_nesting_and_lone_surrogates_do_not_crash():
    deep = nested(5000)
    rows = _rows(deep)
    assert rows[0]["path"].count(".level") == 4999
    assert to_json(rebuild_entities(rows)) == to_json(deep)
    text = to_json(deep)
    assert text.count("{") == 5000
    weird = {"k\ud800": "v\udfff"}
    assert json.loads(to_json(weird)) == weird
    assert rebuild_entities(_rows(weird)) == weird


def test_to_json_keeps_key_order_unlike_sorted_dumps():
    value = {"b": 1, "a": {"z": 2, "y": 3}}
    assert to_json(value) == '{"b":1,"a":{"z":2,"y":3}}'
    assert to_json(value) != orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.0, 1e300, 5e-324])
def test_special_floats_keep_their_value(value):
    vtype, vjson, *_ = leaf_columns(value)
    assert vtype == "number"
    got = rebuild_entities([{"path": "", "value_type": vtype, "value_json": vjson}])
    assert repr(got) == repr(value)
