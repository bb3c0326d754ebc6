"""The quality checks fail on deliberately broken partitions."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._core.event_api import PartitionKeyFilter

from pipeline.defs.checks import _fetched_latest, check_specs, latest_materializations
from pipeline.defs.partitions import daily_partitions
from pipeline.quality import CHECKS, check_day
from pipeline.storage.layout import job_key
from pipeline.storage.raw import RawStore


def _outcomes(data_dir, day):
    return {(o.table, o.name): o for o in check_day(data_dir, day)}


def _segment_files(data_dir, day):
    return sorted(
        (data_dir / "tables" / "segment_entities" / f"created_date={day}").glob("*.parquet")
    )


def _busiest_day(dataset):
    return max(dataset.days(), key=lambda d: len(dataset.job_ids_for_day(d)))


def test_checks_pass_on_a_good_day_and_fail_on_duplicated_and_bad_rows(
    dataset, materialize_day, data_dir
):
    day = _busiest_day(dataset)
    assert materialize_day(day).success
    assert all(o.passed for o in _outcomes(data_dir, day).values())

    path = _segment_files(data_dir, day)[0]
    table = pq.read_table(path)
    assert table.num_rows > 1
    broken = pa.concat_tables([table, table.slice(0, 1)])
    start = broken.column("start_time").to_pylist()
    start[0] = -5.0
    broken = broken.set_column(
        broken.schema.get_field_index("start_time"), "start_time", pa.array(start, pa.float64())
    )
    pq.write_table(broken, path)

    outcomes = _outcomes(data_dir, day)
    # Each check is described once: the outcome says what the Dagster spec says.
    specs = {(s.asset_key.path[-1], s.name): s.description for s in check_specs(daily_partitions())}
    assert specs == {(c.table, c.name): c.description for c in CHECKS}
    assert {key: o.description for key, o in outcomes.items()} == specs
    assert not outcomes[("segment_entities", "job_segment_index_unique")].passed
    assert not outcomes[("segment_entities", "segment_count_matches_total")].passed
    assert not outcomes[("segment_entities", "time_range_valid")].passed
    assert outcomes[("segment_entities", "time_range_valid")].metadata["rows_invalid"] >= 1


def test_completed_job_without_landing_fails_the_completeness_check(
    dataset, materialize_day, data_dir
):
    day = _busiest_day(dataset)
    assert materialize_day(day).success
    store = RawStore(data_dir)
    completed = next(
        j for j in dataset.job_ids_for_day(day) if dataset.summary(j)["status"] == "completed"
    )
    store.store.delete(job_key(day, completed))
    outcome = _outcomes(data_dir, day)[("extract_jobs", "completed_jobs_have_rows")]
    assert not outcome.passed
    assert completed in outcome.metadata["not_landed"]


def test_an_unchanged_day_reuses_its_check_outcomes(
    dataset, materialize_day, data_dir, monkeypatch
):
    day = _busiest_day(dataset)
    assert materialize_day(day).success
    first = check_day(data_dir, day)

    def no_reading(*args):
        raise AssertionError("the landing was read again")

    monkeypatch.setattr(RawStore, "get_job", no_reading)
    assert check_day(data_dir, day) == first


def test_each_evaluation_targets_the_days_latest_materialization_as_dagster_finds_it(
    dataset, materialize_day, dagster_instance
):
    day = _busiest_day(dataset)
    assert materialize_day(day).success
    second = materialize_day(day)
    assert second.success
    keys = {dg.AssetKey(check.table) for check in CHECKS}
    targets = latest_materializations(dagster_instance, keys, day.isoformat())
    for key in keys:
        expected = _fetched_latest(dagster_instance, key, day.isoformat())
        assert targets[key].storage_id == expected.storage_id
        assert targets[key].run_id == expected.run_id == second.run_id
        assert targets[key].timestamp == pytest.approx(expected.timestamp, abs=1e-5)
    # The run's own evaluations name those materializations.
    check_keys = [dg.AssetCheckKey(dg.AssetKey(check.table), check.name) for check in CHECKS]
    executions = dagster_instance.event_log_storage.get_latest_asset_check_execution_by_key(
        check_keys, partition_filter=PartitionKeyFilter(key=day.isoformat())
    )
    assert executions.keys() == set(check_keys)
    for key, execution in executions.items():
        evaluation = execution.event.dagster_event.event_specific_data
        assert evaluation.target_materialization_data == targets[key.asset_key]
    never = day - dt.timedelta(days=400)
    assert latest_materializations(dagster_instance, keys, never.isoformat()) == dict.fromkeys(keys)
