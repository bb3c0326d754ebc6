"""Real Dagster materializations against the emulator over HTTP, checked against ground truth."""

from __future__ import annotations

import json

import duckdb
import pyarrow.dataset as pads

import pipeline
import pipeline.sync.ranged
from pipeline.emulator import Dataset, EmulatorServer


def _ground_truth_segments(dataset: Dataset, day) -> dict[str, list]:
    truth = {}
    for job_id in dataset.job_ids_for_day(day):
        if dataset.summary(job_id)["status"] == "completed":
            job = dataset.complete_job(job_id)
            truth[job_id] = [s.get("entities") for s in job["data"].get("segment_entities", [])]
    return truth


def test_materialized_days_match_the_ground_truth(dataset, materialize_day, data_dir):
    days = dataset.days()
    for day in days:
        result = materialize_day(day)
        assert result.success
        assert all(check.passed for check in result.get_asset_check_evaluations())

    jobs = pipeline.read_table("extract_jobs", data_dir)
    assert sorted(jobs["job_id"]) == sorted(dataset.job_ids())

    segments = pipeline.read_table("segment_entities", data_dir)
    for day in days:
        for job_id, entities in _ground_truth_segments(dataset, day).items():
            rows = segments[segments["job_id"] == job_id].sort_values("segment_index")
            assert list(rows["segment_index"]) == list(range(len(entities)))
            assert [json.loads(e) if e is not None else None for e in rows["entities_json"]] == (
                entities
            )

    glob = str(data_dir / "tables" / "segment_entities" / "**" / "*.parquet")
    (duck_rows,) = duckdb.sql(
        f"SELECT count(*), count(DISTINCT created_date) FROM read_parquet('{glob}', "
        "hive_partitioning=true, union_by_name=true)"
    ).fetchall()
    assert duck_rows == (len(segments), len({d.isoformat() for d in days}))
    arrow_rows = pads.dataset(
        data_dir / "tables" / "segment_entities", format="parquet", partitioning="hive"
    ).count_rows()
    assert arrow_rows == len(segments)


def test_materialization_metadata_tells_what_landed(dataset, materialize_day):
    day = dataset.days()[-1]
    result = materialize_day(day)
    by_key = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    raw = by_key["raw_extract_jobs"]
    assert raw["jobs_listed"].value == len(dataset.job_ids_for_day(day))
    completed = [j for j in dataset.job_ids_for_day(day) if dataset.status(j) == "completed"]
    assert raw["jobs_fetched"].value == len(completed)
    assert raw["requests"].value >= len(completed)
    assert sum(raw["jobs_by_status"].data.values()) == raw["jobs_listed"].value
    segments = by_key["segment_entities"]
    expected_rows = sum(len(v) for v in _ground_truth_segments(dataset, day).values())
    assert segments["dagster/row_count"].value == expected_rows
    columns = {c.name for c in segments["dagster/column_schema"].schema.columns}
    assert {"job_id", "segment_index", "start_time", "end_time", "entities_json"} <= columns
    assert segments["preview"].value.startswith("| ")


def test_rematerializing_a_day_follows_upstream_and_never_refetches(
    dataset: Dataset, emulator: EmulatorServer, materialize_day, data_dir
):
    day = next(
        d
        for d in dataset.days()
        if any(dataset.summary(j)["status"] == "processing" for j in dataset.job_ids_for_day(d))
        and sum(dataset.summary(j)["status"] == "completed" for j in dataset.job_ids_for_day(d)) > 1
    )
    ids = dataset.job_ids_for_day(day)
    assert materialize_day(day).success
    deleted = next(j for j in ids if dataset.summary(j)["status"] == "completed")
    finished = next(j for j in ids if dataset.summary(j)["status"] == "processing")
    dataset.delete_job(deleted)
    dataset.set_status(finished, "completed")
    emulator.stats.reset()

    assert materialize_day(day).success
    job_ids = set(pipeline.read_table("extract_jobs", data_dir)["job_id"])
    assert deleted not in job_ids and finished in job_ids
    segments = pipeline.read_table("segment_entities", data_dir)
    assert deleted not in set(segments["job_id"])
    assert (segments["job_id"] == finished).sum() == dataset.complete_job(finished)["total"]
    pages = -(-max(dataset.complete_job(finished)["total"], 1) // 100)
    # One listing page for the day (plus the widened window) and the new job's pages only.
    assert emulator.stats.requests <= 3 + pages


def test_a_wrong_key_fails_at_once_with_a_clear_cause(emulator, data_dir, dagster_instance):
    import dagster as dg

    from pipeline.defs.assets import days_asset
    from pipeline.defs.resources import CloudglueResource, DataDirResource

    result = dg.materialize(
        [days_asset()],
        partition_key="2026-01-15",
        instance=dagster_instance,
        resources={
            "cloudglue": CloudglueResource(api_key="wrong-key", base_url=emulator.base_url),
            "data_dir": DataDirResource(path=str(data_dir)),
        },
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "CLOUDGLUE_API_KEY" in failure.step_failure_data.user_failure_data.description
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert "wrong-key" not in str([e.message for e in result.all_events])


def test_a_run_of_both_steps_builds_the_tables_while_landing(
    dataset, materialize_day, data_dir, monkeypatch
):
    # This day is small: force the build to run beside the landing, in two workers.
    monkeypatch.setattr(pipeline.sync.ranged, "OVERLAP_MIN_JOBS", 1)
    monkeypatch.setattr(pipeline.sync.ranged, "build_workers", lambda: 2)
    day = max(dataset.days(), key=lambda d: len(_ground_truth_segments(dataset, d)))
    result = materialize_day(day)
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    # Built by the landing step as two shards; the tables step reported what was there.
    tables = data_dir / "tables"
    part_files = sorted(p.name for p in (tables / "segment_entities").rglob("*.parquet"))
    assert part_files == ["part-00-00000.parquet", "part-01-00000.parquet"]
    segments = pipeline.read_table("segment_entities", data_dir)
    for job_id, entities in _ground_truth_segments(dataset, day).items():
        rows = segments[segments["job_id"] == job_id].sort_values("segment_index")
        assert [json.loads(e) if e is not None else None for e in rows["entities_json"]] == (
            entities
        )


def test_selecting_one_table_records_all_six_with_their_rows_and_checks(
    dataset, resources, dagster_instance, data_dir
):
    """A day's six tables are rebuilt together: a run selecting one of them records a
    materialization of each of the six on the day, with the rows its partition holds, and
    evaluates every check on them against those materializations."""
    import dagster as dg

    from pipeline.defs.assets import days_asset
    from pipeline.quality import CHECKS
    from pipeline.tables import TABLE_NAMES

    day = max(dataset.days(), key=lambda d: len(_ground_truth_segments(dataset, d)))
    partition = day.isoformat()

    def materialize(selection: list[str]) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [days_asset(retry_policy=None)],
            selection=selection,
            partition_key=partition,
            instance=dagster_instance,
            resources=resources,
        )

    assert materialize(["raw_extract_jobs"]).success  # landed, no table built yet
    result = materialize(["segment_entities"])
    assert result.success

    events = {
        event.asset_key.to_user_string(): event
        for event in result.get_asset_materialization_events()
    }
    assert set(events) == set(TABLE_NAMES)
    for name in TABLE_NAMES:
        rows = len(pipeline.read_table(name, data_dir, days=[day]))
        assert events[name].partition == partition
        assert events[name].materialization.metadata["dagster/row_count"].value == rows
        latest = dagster_instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[partition]),
            limit=1,
        ).records[0]
        assert latest.run_id == result.run_id
    segments = sum(len(v) for v in _ground_truth_segments(dataset, day).values())
    assert events["segment_entities"].materialization.metadata["dagster/row_count"].value == (
        segments
    )
    evaluations = result.get_asset_check_evaluations()
    assert {(e.asset_key.to_user_string(), e.check_name) for e in evaluations} == {
        (check.table, check.name) for check in CHECKS
    }
    assert all(e.passed and e.partition == partition for e in evaluations)
    assert all(e.target_materialization_data.run_id == result.run_id for e in evaluations)
