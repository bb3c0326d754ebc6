"""Property test: arbitrary entities survive write_day -> Parquet -> read_table exactly."""

from __future__ import annotations

import datetime as dt
import json
import tempfile

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline
from pipeline.storage import write_day
from pipeline.tables import rebuild_entities
from pipeline_tests.tables.jobs import completed_job, json_objects, json_values, segment

DAY = dt.date(2026, 1, 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(json_objects, json_values), min_size=1, max_size=4))
def test_entities_round_trip_through_parquet(entities):
    segs = [segment(float(i), float(i + 1), e) for i, e in enumerate(entities)]
    with tempfile.TemporaryDirectory() as data_dir:
        write_day(data_dir, DAY, [completed_job("j", segs)], fetched_at=None)
        seg_frame = pipeline.read_table("segment_entities", data_dir)
        values = pipeline.read_table("entity_values", data_dir)
    assert list(seg_frame.segment_index) == list(range(len(entities)))
    for i, original in enumerate(entities):
        rows = values[values.segment_index == i].to_dict("records")
        text = seg_frame.loc[i, "entities_json"]
        if original is None:
            assert rows == [] and pd.isna(text)  # null entities: no leaves, no entities_json
            continue
        assert json.dumps(rebuild_entities(rows)) == json.dumps(original)
        assert json.dumps(json.loads(text)) == json.dumps(original)
