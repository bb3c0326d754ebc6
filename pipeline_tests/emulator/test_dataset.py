"""The synthetic dataset: deterministic, covers what real extraction output looks like, scales
lazily, and keeps ground truth for hostile jobs."""

from __future__ import annotations

import datetime as dt
import itertools
import time
import tracemalloc
from typing import Any

from pipeline.emulator import Dataset
from pipeline.emulator.hostile import DEEP_NESTING_LEVELS, HUGE_STRING_BYTES
from pipeline_tests.conftest import EMULATOR_END_DATE


def _walk(value: Any) -> Any:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = Dataset(seed=5, jobs=40, days=3, end_date=EMULATOR_END_DATE)
    b = Dataset(seed=5, jobs=40, days=3, end_date=EMULATOR_END_DATE)
    c = Dataset(seed=6, jobs=40, days=3, end_date=EMULATOR_END_DATE)
    assert a.job_ids() == b.job_ids() != c.job_ids()
    assert [a.complete_job(j) for j in a.job_ids()] == [b.complete_job(j) for j in b.job_ids()]


def test_coverage_of_statuses_strategies_sizes_and_configs(dataset) -> None:
    jobs = [dataset.complete_job(j) for j in dataset.job_ids()]
    assert {j["status"] for j in jobs} == {
        "pending",
        "processing",
        "completed",
        "failed",
        "not_applicable",
    }
    strategies = {
        dataset.segmentation_body(j["segmentation_id"])["segmentation_config"]["strategy"]
        for j in jobs
    }
    assert strategies == {"uniform", "shot-detector", "manual", "narrative"}
    totals = {j["total"] for j in jobs if "total" in j}
    assert {0, 1, 50, 100, 101} <= totals and max(totals) >= 300
    configs = [j["extract_config"] for j in jobs]
    assert any("prompt" in c for c in configs) and any("schema" in c for c in configs)
    legacy = [j for j in jobs if "entities" in j.get("data", {})]
    assert legacy and all(j["data"]["segment_entities"] for j in legacy if j["total"])
    assert all("error" in j for j in jobs if j["status"] == "failed")
    assert all(dataset.summary(j["job_id"]) == j for j in jobs if j["status"] != "completed")


def test_entities_look_like_real_extraction_output(dataset) -> None:
    segments = [
        s
        for j in dataset.job_ids()
        for s in dataset.complete_job(j).get("data", {}).get("segment_entities", [])
    ]
    entities = [s["entities"] for s in segments]
    assert all(isinstance(e, dict) for e in entities)
    assert any(isinstance(e["scene"], dict) for e in entities)
    assert any(e["people"] and isinstance(e["people"][0], dict) for e in entities)
    assert any(e["objects"] and isinstance(e["objects"][0], str) for e in entities)
    assert {type(e["speaker_count"]) for e in entities} == {int, str}
    assert any("on_screen_text" in e for e in entities)
    assert any("on_screen_text" not in e for e in entities)
    assert any(v is None for e in entities for v in _walk(e))
    assert any(isinstance(v, str) and not v.isascii() for e in entities for v in _walk(e))
    assert any("segment_id" in s for s in segments)


def test_chapters_and_shots_fit_the_segment_timeline(dataset) -> None:
    checked = set()
    for job_id in dataset.job_ids():
        job = dataset.complete_job(job_id)
        segs = job.get("data", {}).get("segment_entities", [])
        if not segs:
            continue
        lo, hi = segs[0]["start_time"], max(s["end_time"] for s in segs)
        assert all(0 <= s["start_time"] < s["end_time"] for s in segs)
        for key in ("chapters", "shots"):
            if key in job:
                checked.add(key)
                items = job[key]
                assert job[f"total_{key}"] == len(items)
                assert [c["index"] for c in items] == list(range(len(items)))
                assert items[0]["start_time"] == lo and items[-1]["end_time"] == hi
                assert all(a["end_time"] == b["start_time"] for a, b in itertools.pairwise(items))
    assert checked == {"chapters", "shots"}


def test_days_default_to_today_and_partition_the_jobs() -> None:
    today = dt.datetime.now(dt.UTC).date()
    assert Dataset(jobs=3, days=2).days() == [today - dt.timedelta(days=1), today]
    ds = Dataset(seed=2, jobs=80, days=6, end_date=EMULATOR_END_DATE)
    assert ds.days()[-1] == EMULATOR_END_DATE and len(ds.days()) == 6
    per_day = [j for d in reversed(ds.days()) for j in ds.job_ids_for_day(d)]
    assert per_day == ds.job_ids()
    created = [ds.summary(j)["created_at"] for j in ds.job_ids()]
    assert created == sorted(created, reverse=True)


def test_mean_segments_scales_lazily_and_keeps_special_sizes() -> None:
    started = time.perf_counter()
    ds = Dataset(seed=1, jobs=1000, days=1, end_date=EMULATOR_END_DATE, mean_segments=1000)
    assert time.perf_counter() - started < 1.0  # nothing but job records is generated up front
    assert 900_000 < ds.segment_entity_count() < 1_100_000
    small = Dataset(seed=1, jobs=1000, days=1, end_date=EMULATOR_END_DATE, mean_segments=200)
    assert 180_000 < small.segment_entity_count() < 220_000
    totals = {
        small.detail_body(j, limit=1)["total"]
        for j in small.job_ids()
        if small.status(j) == "completed"
    }
    assert {0, 1, 50, 100, 101, 350} <= totals
    page = ds.detail_body(ds.job_ids()[0], limit=100, offset=0)
    assert page["total"] == len(ds.complete_job(ds.job_ids()[0])["data"]["segment_entities"])


def test_a_million_segment_entities_cost_only_their_job_records() -> None:
    tracemalloc.start()
    try:
        ds = Dataset(seed=1, jobs=1000, days=1, end_date=EMULATOR_END_DATE, mean_segments=1000)
        for job_id in ds.job_ids()[:20]:
            ds.detail_body(job_id, limit=100, offset=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ds.segment_entity_count() > 900_000
    assert peak < 20 * 1024 * 1024


def test_hostile_jobs_and_their_ground_truth() -> None:
    ds = Dataset(seed=4, jobs=20, days=2, end_date=EMULATOR_END_DATE, hostile=True)
    hostile = {j: ds.complete_job(j) for j in ds.hostile_job_ids()}
    assert len(ds.job_ids()) == 20 + len(hostile)
    ids = set(hostile)
    assert any("/" in j for j in ids) and ".." in ids and any("%" in j for j in ids)
    assert any(not j.isascii() for j in ids) and any(len(j) == 500 for j in ids)
    statuses = {j["status"] for j in hostile.values()}
    assert "archived" in statuses
    segs = [s for j in hostile.values() for s in j.get("data", {}).get("segment_entities", [])]
    assert any(s is None for s in segs) and any(isinstance(s, str | list) for s in segs)
    ents = [s.get("entities") for s in segs if isinstance(s, dict)]
    assert {list, str, int, type(None)} <= {type(e) for e in ents}
    times = [(s.get("start_time"), s.get("end_time")) for s in segs if isinstance(s, dict)]
    assert any(isinstance(a, float) and isinstance(b, float) and b < a for a, b in times)
    assert any(isinstance(a, float) and a < 0 for a, _ in times)
    assert any(isinstance(a, str) for a, _ in times)
    assert any(isinstance(v, str) and len(v) >= HUGE_STRING_BYTES for e in ents for v in _walk(e))
    deep = next(e for e in ents if isinstance(e, dict) and "level" in e)
    depth = 0
    while isinstance(deep, dict):
        deep, depth = deep["level"], depth + 1
    assert depth == DEEP_NESTING_LEVELS
    dup = next(j for j in hostile.values() if j.get("total", 0) > 6)
    entries = dup["data"]["segment_entities"]
    assert len(entries) == dup["total"] and any(a == b for a, b in itertools.pairwise(entries))
    extra = next(j for j in hostile.values() if "priority" in j)
    assert "model_version" in extra["data"] and "segment_id" in extra["data"]["segment_entities"][0]
    assert "mood" in extra["chapters"][0]
    assert "enable_time_travel" in extra["extract_config"]
