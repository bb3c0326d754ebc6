"""The quality checks fail on deliberately broken partitions."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.defs.checks import check_specs
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
