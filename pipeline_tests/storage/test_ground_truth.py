"""The emulator's whole ground truth (hostile jobs included) through write_day and back."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import pipeline
from pipeline.emulator import Dataset
from pipeline.jsonio import to_json
from pipeline.storage import write_day
from pipeline.tables import rebuild_entities
from pipeline_tests.conftest import EMULATOR_END_DATE


def _truth(ds: Dataset, day: dt.date) -> list[dict]:
    jobs = []
    for job_id in sorted(ds.job_ids_for_day(day)):
        summary = ds.summary(job_id)
        jobs.append(ds.complete_job(job_id) if summary["status"] == "completed" else summary)
    return jobs


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    ds = Dataset(seed=7, jobs=60, days=5, end_date=EMULATOR_END_DATE, hostile=True)
    root = tmp_path_factory.mktemp("truth")
    jobs: dict[str, dict] = {}
    for day in ds.days():
        truth = _truth(ds, day)
        jobs.update((j["job_id"], j) for j in truth)
        result = write_day(root, day, iter(truth), fetched_at=dt.datetime.now(dt.UTC))
        assert result.rows["extract_jobs"] == len(truth)
    return root, jobs


def _segments(job: dict) -> list:
    data = job.get("data")
    return data.get("segment_entities", []) if isinstance(data, dict) else []


def test_every_job_and_segment_is_in_the_tables(written):
    root, jobs = written
    frame = pipeline.read_table("extract_jobs", root)
    assert sorted(frame.job_id) == sorted(jobs)
    assert {"archived", "completed", "failed", "pending"} <= set(frame.status)
    segs = pipeline.read_table("segment_entities", root)
    assert len(segs) == sum(len(_segments(j)) for j in jobs.values())
    by_key = {(r.job_id, r.segment_index): r for r in segs.itertuples(index=False)}
    for job_id, job in jobs.items():
        for i, seg in enumerate(_segments(job)):
            row = by_key[(job_id, i)]
            ents = seg.get("entities") if isinstance(seg, dict) else None
            if ents is None:
                assert pd.isna(row.entities_json)
            else:
                assert row.entities_json == to_json(ents)
                assert to_json(json.loads(row.entities_json)) == to_json(ents)


def test_entity_values_rebuild_every_entity_exactly(written):
    root, jobs = written
    values = pipeline.read_table("entity_values", root)
    groups: dict[tuple, list] = defaultdict(list)
    for row in values.to_dict("records"):
        index = None if row["scope"] == "video" else row["segment_index"]
        groups[(row["job_id"], row["scope"], index)].append(row)
    expected = {}
    for job_id, job in jobs.items():
        data = job.get("data") if isinstance(job.get("data"), dict) else {}
        if data.get("entities") is not None:
            expected[(job_id, "video", None)] = data["entities"]
        for i, seg in enumerate(_segments(job)):
            if isinstance(seg, dict) and seg.get("entities") is not None:
                expected[(job_id, "segment", i)] = seg["entities"]
    assert set(groups) == set(expected)
    for key, original in expected.items():
        assert to_json(rebuild_entities(groups[key])) == to_json(original), key


def test_duckdb_reads_every_table(written):
    root, _ = written
    con = duckdb.connect()
    for table in ("extract_jobs", "segment_entities", "chapters", "shots", "entity_values"):
        glob = str(root / "tables" / table / "**" / "*.parquet")
        n, days = con.execute(
            "SELECT count(*), count(DISTINCT created_date) FROM read_parquet(?, "
            "hive_partitioning=true, union_by_name=true)",
            [glob],
        ).fetchone()
        assert n == len(pipeline.read_table(table, root)) and n > 0 and days >= 1
