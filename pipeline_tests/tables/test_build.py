"""build_frames: the six tables' rows, columns, names, kinds and variants."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pytest

from pipeline.tables import FIXED_COLUMNS, TABLES, build_frames, build_tables
from pipeline.tables.accumulators import TableAccumulator
from pipeline.tables.catalog import new_schema
from pipeline.tables.flatten import MAX_FLATTEN_DEPTH
from pipeline_tests.tables.jobs import DAY1_MS, completed_job, nested, segment, summary

FETCHED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _jobs():
    return [
        completed_job(
            "job-a",
            [
                segment(5.0, 9.0, {"people": [{"name": "Ana"}], "scene": {"place": "café"}}),
                segment(0.0, 5.0, {"people": [], "scene": {"place": "studio", "lit": True}}),
            ],
            chapters=[{"index": 0, "start_time": 0, "end_time": 9.0, "description": "intro"}],
        ),
        completed_job(
            "job-b",
            [segment(0, 2.5, {"count": 3})],
            video_entities={"title": "T", "tags": ["x", 1]},
            shots=[
                {"index": 1, "start_time": 1.0, "end_time": 2.5},
                {"index": 0, "start_time": 0, "end_time": 1.0},
            ],
        ),
        summary("job-c", "failed", error="boom"),
        summary("job-d", "pending"),
    ]


def test_every_table_has_its_rows_and_columns():
    f = build_frames(_jobs(), fetched_at=FETCHED)
    assert set(f) == set(TABLES)
    jobs = f["extract_jobs"].set_index("job_id")
    assert list(jobs.index) == ["job-a", "job-b", "job-c", "job-d"]
    assert jobs.loc["job-a", "created_at"] == pd.Timestamp(DAY1_MS, unit="ms", tz="UTC")
    assert str(jobs["created_at"].dtype) == "datetime64[ms, UTC]"
    assert (jobs["fetched_at"] == pd.Timestamp(FETCHED)).all()
    assert jobs.loc["job-a", "segment_entity_count"] == 2
    assert jobs.loc["job-a", "chapter_count"] == 1 and jobs.loc["job-b", "shot_count"] == 2
    assert pd.isna(jobs.loc["job-c", "segment_entity_count"])
    assert jobs.loc["job-c", "error"] == "boom" and jobs.loc["job-c", "status"] == "failed"
    assert json.loads(jobs.loc["job-d", "schema_json"]) == {"people": [{"name": "string"}]}
    assert jobs.loc["job-b", "enable_video_level_entities"]
    assert jobs.loc["job-a", "prompt"] == "List people and objects."

    segs = f["segment_entities"]
    assert list(zip(segs.job_id, segs.segment_index, segs.start_time, strict=True)) == [
        ("job-a", 1, 0.0),
        ("job-a", 0, 5.0),
        ("job-b", 0, 0.0),
    ]
    assert segs["end_time"].dtype == "float64" and segs["start_time"].dtype == "float64"
    assert segs.loc[1, "entities__scene__place"] == "café"
    assert segs.loc[0, "entities__scene__lit"]
    assert json.loads(segs.loc[1, "entities__people"]) == [{"name": "Ana"}]
    assert segs.loc[2, "entities__count"] == 3

    video = f["video_entities"]
    assert list(video.job_id) == ["job-b"]
    assert video.loc[0, "entities__title"] == "T"
    assert json.loads(video.loc[0, "entities_json"]) == {"title": "T", "tags": ["x", 1]}

    assert list(f["chapters"].description) == ["intro"]
    shots = f["shots"]
    assert list(shots.shot_index) == [0, 1] and list(shots.start_time) == [0.0, 1.0]

    values = f["entity_values"]
    video_rows = values[values.scope == "video"]
    assert list(video_rows.path) == ["title", "tags[0]", "tags[1]"]
    assert video_rows.segment_index.isna().all() and video_rows.start_time.isna().all()
    empty = values[(values.job_id == "job-a") & (values.path == "people")]
    assert list(empty.value_type) == ["array"] and list(empty.value_json) == ["[]"]
    tag = values[values.path == "tags[1]"].iloc[0]
    assert (tag.value_type, tag.value_json, tag.value_number) == ("integer", "1", 1.0)
    assert tag.value_integer == 1 and values.value_integer.dtype == "Int64"
    assert values[values.value_type != "integer"].value_integer.isna().all()


def test_integer_entity_values_are_exact_in_value_integer():
    ids = [2**53 + 1, -(2**63), 2**63 - 1, 7]
    job = completed_job("job-i", [segment(0, 1, {"ids": ids, "big": 2**64, "ratio": 0.5})])
    values = build_frames([job])["entity_values"].set_index("path")
    assert [values.loc[f"ids[{i}]", "value_integer"] for i in range(4)] == ids
    assert values.loc["ids[0]", "value_number"] == float(2**53)  # the double rounds it
    assert pd.isna(values.loc["big", "value_integer"]) and values.loc["big", "value_json"] == str(
        2**64
    )
    assert pd.isna(values.loc["ratio", "value_integer"])


def test_empty_input_gives_empty_frames_with_fixed_columns():
    f = build_frames([])
    assert all(len(df) == 0 for df in f.values())
    assert "segment_index" in f["segment_entities"].columns
    assert list(f["entity_values"].columns)[:3] == ["job_id", "scope", "segment_index"]


def test_type_change_goes_to_a_variant_column_never_dropped():
    segs = [
        segment(0, 1, {"n": 1, "x": "a"}),
        segment(1, 2, {"n": "two", "x": 5}),
        segment(2, 3, {"n": 2**70, "x": {"deep": 1}}),
        segment(3, 4, {"n": 1.5, "x": [1]}),
    ]
    f = build_frames([completed_job("j", segs)])["segment_entities"]
    assert list(f["entities__n"].astype(object)) == [1, pd.NA, pd.NA, pd.NA]
    assert f.loc[1, "entities__n__v_text"] == "two"
    assert f.loc[2, "entities__n__v_json"] == str(2**70)
    assert f.loc[3, "entities__n__v_double"] == 1.5
    assert f.loc[1, "entities__x__v_bigint"] == 5
    assert f.loc[2, "entities__x__deep"] == 1
    assert f.loc[3, "entities__x__v_json"] == "[1]"


def test_mixed_ints_and_floats_in_a_new_column_make_it_double():
    segs = [segment(0, 1, {"score": 1}), segment(1, 2, {"score": 0.5})]
    f = build_frames([completed_job("j", segs)])["segment_entities"]
    assert f["entities__score"].dtype == "float64"
    assert list(f["entities__score"]) == [1.0, 0.5]


def test_column_names_are_snake_case_and_collisions_get_a_stable_hash():
    ents = {"Scene Place": 1, "scene_place": 2, "scenePlace": 3, "名前": "x", "a.b": 4, "9lives": 5}
    tables = build_tables([completed_job("j", [segment(0, 1, ents, start_time_x=1)])])
    schema = tables["segment_entities"].schema
    paths = {f.name: (f.metadata or {}).get(b"json_path", b"").decode() for f in schema}
    by_path = {path: name for name, path in paths.items() if path}
    names = [n for n in schema.names if n.startswith("entities__")]
    assert names == sorted(names)  # flattened columns by name, whatever the registration order
    # The first path registered gets the plain name, the others a stable hash of their path.
    assert by_path['entities["Scene Place"]'] == "entities__scene_place"
    hashed = [by_path["entities.scene_place"], by_path["entities.scenePlace"]]
    assert all(n.startswith("entities__scene_place_") and len(n) == 30 for n in hashed)
    assert hashed[0] != hashed[1]
    assert "entities__a_b" in names and "entities___9lives" in names
    assert all(n.isascii() and n.replace("_", "a").isalnum() for n in schema.names)
    assert paths["entities__a_b"] == 'entities["a.b"]'
    again = build_tables([completed_job("j", [segment(0, 1, ents)])])["segment_entities"]
    assert [n for n in again.schema.names if n.startswith("entities__")] == names


def test_unknown_segment_fields_are_kept_and_fixed_names_are_not_shadowed():
    segs = [segment(0, 1, {"a": 1}, shot_index=4, job_id="evil", confidence={"model": 0.9})]
    f = build_frames([completed_job("j", segs)])["segment_entities"]
    assert f.loc[0, "shot_index"] == 4
    assert f.loc[0, "confidence__model"] == 0.9
    assert f.loc[0, "job_id"] == "j"
    evil = [c for c in f.columns if c.startswith("job_id_")]
    assert len(evil) == 1 and f.loc[0, evil[0]] == "evil"


def test_flattening_depth_is_capped_and_deeper_objects_stay_json():
    ents = nested(200)
    f = build_frames([completed_job("j", [segment(0, 1, ents)])])["segment_entities"]
    flat = [c for c in f.columns if c.startswith("entities__")]
    assert flat == ["entities" + "__level" * MAX_FLATTEN_DEPTH]
    assert json.loads(f.loc[0, flat[0]]) == nested(200 - MAX_FLATTEN_DEPTH)


def test_hostile_segments_times_and_entities_never_crash():
    segs = [
        segment("00:01:05", True, "just a string"),
        segment(-5.5, None, [1, 2]),
        segment(2**80, 3, 42),
        ["a segment that is a list"],
        None,
        {"start_time": 1.0},
        segment(0.5, 1.5, None),
    ]
    job = completed_job("j", segs, chapters=["not an object"], created_at=1.5e12)
    f = build_frames([job])
    s = f["segment_entities"]
    assert len(s) == len(segs)
    by_index = s.set_index("segment_index")
    assert by_index.loc[0, "start_time__v_text"] == "00:01:05"
    assert by_index.loc[0, "end_time__v_bool"]
    assert by_index.loc[1, "start_time"] == -5.5
    assert by_index.loc[2, "start_time__v_json"] == str(2**80)
    assert by_index.loc[0, "entities"] == '"just a string"'  # a json-kind column
    assert json.loads(by_index.loc[3, "item_json"]) == ["a segment that is a list"]
    assert by_index.loc[4, "item_json"] == "null"
    assert pd.isna(by_index.loc[6, "entities_json"])
    assert list(s.segment_index) == [1, 6, 5, 2, 0, 3, 4]
    values = f["entity_values"]
    assert set(values.segment_index) == {0, 1, 2}
    assert json.loads(f["chapters"].loc[0, "item_json"]) == "not an object"
    assert f["extract_jobs"].loc[0, "created_at"] == pd.Timestamp(1.5e12, unit="ms", tz="UTC")


def test_huge_strings_are_kept_whole():
    text = "ab" * (5 * 2**20)
    f = build_frames([completed_job("j", [segment(0, 1, {"transcript": text})])])
    assert f["segment_entities"].loc[0, "entities__transcript"] == text
    assert f["entity_values"].loc[0, "value_string"] == text


def test_accumulator_flushes_in_chunks_with_stable_types():
    chunks: list[pa.Table] = []
    acc = TableAccumulator(new_schema("segment_entities"), chunks.append, max_rows=2)
    for i, value in enumerate([1, 2, "three", 4, 5.5]):
        acc.fixed["job_id"].append("j")
        acc.fixed["segment_index"].append(i)
        for name in ("start_time", "end_time", "thumbnail_url", "entities_json", "item_json"):
            acc.fixed[name].append(None)
        acc.emit(("entities", "v"), value)
        acc.row_done()
    acc.flush()
    assert [c.num_rows for c in chunks] == [2, 2, 1]
    assert [c.schema.field("entities__v").type for c in chunks[:2]] == [pa.int64()] * 2
    assert "entities__v" not in chunks[2].column_names  # only a misfit in that chunk
    assert chunks[1].column("entities__v__v_text").to_pylist() == ["three", None]
    assert chunks[2].column("entities__v__v_double").to_pylist() == [5.5]


@pytest.mark.parametrize("bad", [{"status": "completed"}, {"job_id": ""}, {"job_id": 7}])
def test_a_job_without_a_string_id_is_rejected(bad):
    with pytest.raises(ValueError, match="job_id"):
        build_frames([bad])


def test_entity_values_keep_a_fixed_schema_even_for_lone_surrogates():
    ents = {"k\ud800": "v\udfff", "big": 2**70, "nan": float("nan"), "ok": "fine"}
    f = build_tables([completed_job("j", [segment(0, 1, ents)])])["entity_values"]
    assert f.schema.names == [n for n, _ in FIXED_COLUMNS["entity_values"]]
    rows = f.to_pylist()
    assert [r["value_string"] for r in rows] == [None, None, None, "fine"]
    assert [r["value_json"] for r in rows] == ['"v\\udfff"', str(2**70), "NaN", '"fine"']
    assert rows[0]["path"] == '["k\\ud800"]'


@pytest.mark.parametrize("job_id", ["j", "j\ud800"])  # the second takes the routed (slow) path
def test_entity_values_per_value_columns_repeat_for_each_leaf(job_id):
    segs = [segment(0, 1, {"a": 1, "b": [1, 2]}), segment(1.5, 2, "x")]
    values = build_frames([completed_job(job_id, segs, video_entities={"v": True})])[
        "entity_values"
    ]
    if job_id == "j":  # a lone surrogate cannot be UTF-8 text: it goes to a variant column
        assert values["job_id"].tolist() == [job_id] * 5
    assert values["scope"].tolist() == ["video", "segment", "segment", "segment", "segment"]
    assert values["leaf_index"].tolist() == [0, 0, 1, 2, 0]
    assert values["segment_index"].tolist()[1:] == [0, 0, 0, 1]
    assert values["segment_index"].isna().tolist() == [True, False, False, False, False]
    assert values["start_time"].tolist()[1:] == [0, 0, 0, 1.5]
    assert values["end_time"].tolist()[1:] == [1, 1, 1, 2]
