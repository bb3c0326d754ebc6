"""Property tests: flattened columns (base or variant) hold every value exactly, never dropped."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.tables import build_tables
from pipeline.tables.flatten import MAX_FLATTEN_DEPTH, leaf_columns
from pipeline.tables.leaf_arrays import LEAF_COLUMN_TYPES, _unencodable, typed_leaf_arrays
from pipeline.tables.paths import parse_path, path_string
from pipeline_tests.tables.jobs import completed_job, json_objects, json_values, keys, segment


def _expected(obj: dict, prefix: tuple = (), depth: int = 0) -> dict[str, Any]:
    """An independent statement of the flattening rule: path -> value for every stored value."""
    out = {}
    for key, value in obj.items():
        path = (*prefix, key)
        if value is None or value == {}:
            continue
        if isinstance(value, dict) and depth < MAX_FLATTEN_DEPTH:
            out.update(_expected(value, path, depth + 1))
        else:
            out[path_string(path)] = value
    return out


def _same(kind: str, cell: Any, original: Any) -> bool:
    if kind == "json":
        return json.dumps(json.loads(cell)) == json.dumps(original)
    if kind == "double":
        return cell == original or (math.isnan(cell) and math.isnan(original))
    return type(cell) is type(original) and cell == original


segments = st.lists(
    st.fixed_dictionaries(
        {"start_time": st.floats(0, 1e4), "end_time": st.floats(0, 1e4), "entities": json_objects},
        optional={"extra": json_values, "thumbnail_url": st.text(max_size=5)},
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=80, deadline=None)
@given(segments)
def test_every_flattened_value_is_in_exactly_one_column(segs):
    table = build_tables([completed_job("j", segs)])["segment_entities"]
    fields = {f.name: f for f in table.schema}
    rows = table.to_pylist()
    for row in rows:
        seg = segs[row["segment_index"]]
        expected = _expected({"entities": seg["entities"]}) | _expected(
            {k: v for k, v in seg.items() if k == "extra"}
        )
        got: dict[str, Any] = {}
        for name, cell in row.items():
            meta = fields[name].metadata or {}
            if cell is None or b"json_path" not in meta:
                continue
            path = meta[b"json_path"].decode()
            assert path not in got, f"{path} stored twice"
            got[path] = (meta[b"kind"].decode(), cell)
        assert set(got) == set(expected)
        for path, (kind, cell) in got.items():
            assert _same(kind, cell, expected[path]), (path, kind, cell, expected[path])
            assert path_string(parse_path(path)) == path


@settings(max_examples=60, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=5), keys)
def test_entities_of_any_json_type_never_crash_and_round_trip(values, key):
    segs = [segment(i, i + 1, {key: v}) for i, v in enumerate(values)]
    segs.append(segment(9, 10, values[0]))
    frames = build_tables([completed_job("j", segs, video_entities=values[-1])])
    text = frames["segment_entities"].column("entities_json").to_pylist()
    order = frames["segment_entities"].column("segment_index").to_pylist()
    for i, cell in zip(order, text, strict=True):
        original = segs[i]["entities"]
        if original is None:
            assert cell is None
        else:
            assert json.dumps(json.loads(cell)) == json.dumps(original)
    assert pd.notna(frames["extract_jobs"].column("job_id")[0].as_py())


leaves = st.one_of(
    st.text(),  # any code point, lone surrogates included
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from([{}, [], (), 2**63, -(2**63), 2**53 + 1, 1e16, -0.0, 'a"\\\n\x7f\u2028']),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(leaves, max_size=40))
def test_typed_leaf_arrays_equal_leaf_columns_row_by_row(values):
    """The grouped Arrow conversion is the per-leaf definition, whatever the mix of types."""
    arrays = typed_leaf_arrays(values)
    assert all(len(a) == len(values) for a in arrays.values())
    for i, value in enumerate(values):
        expected = list(leaf_columns(value))
        if expected[2] is not None and _unencodable(expected[2]):
            expected[2] = None  # stored escaped in value_json only
        got = [arrays[name][i].as_py() for name in LEAF_COLUMN_TYPES]
        assert got[:3] + got[4:] == expected[:3] + expected[4:], value
        number, want = got[3], expected[3]
        assert number == want or (math.isnan(number) and math.isnan(want)), value
