"""Ranged runs: one run over many days equals day-by-day runs, a failing day commits the others,
and the Dagster instance ends up recording each day as a one-day run would."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

import pipeline
from pipeline.cloudglue.client import CloudglueClient
from pipeline.defs.assets import days_asset
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.emulator.faults import FaultConfig
from pipeline.quality import CHECKS
from pipeline.sync import sync_day, sync_range
from pipeline.sync.ranged import MAX_FAILURES_IN_A_ROW
from pipeline.tables import TABLE_NAMES
from pipeline_tests.conftest import emulator_access_log

KEY = "ranged-key"
END = dt.date(2026, 1, 15)


def _tables(data_dir: Path | str) -> dict[str, pd.DataFrame]:
    """Every table as read back, in a stable row order, without ``fetched_at``."""
    out = {}
    for name in TABLE_NAMES:
        frame = pipeline.read_table(name, data_dir).drop(columns=["fetched_at"], errors="ignore")
        keys = [c for c in ("job_id", "segment_index", "path", "start_time") if c in frame]
        out[name] = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    return out


def _assert_same_tables(a: Path | str, b: Path | str) -> None:
    ours, theirs = _tables(a), _tables(b)
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(ours[name], theirs[name], check_like=True)


def _ranged_run(
    server: EmulatorServer,
    data_dir: Path | str,
    instance: dg.DagsterInstance,
    first: dt.date,
    last: dt.date,
    **client: object,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [days_asset(retry_policy=None)],
        instance=instance,
        resources={
            "cloudglue": CloudglueResource(
                api_key=dg.EnvVar("CLOUDGLUE_API_KEY"),
                base_url=server.base_url,
                max_concurrency=4,
                **client,
            ),
            "data_dir": DataDirResource(path=str(data_dir)),
        },
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        raise_on_error=False,
    )


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLOUDGLUE_API_KEY", KEY)
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        yield instance


def test_a_ranged_run_equals_day_by_day_and_records_each_day_on_its_partition(
    tmp_path: Path, instance: dg.DagsterInstance, local_or_bucket: str
):
    dataset = Dataset(seed=21, jobs=45, days=6, end_date=END, hostile=True)
    days = dataset.days()
    ranged = local_or_bucket  # a local data dir, then a bucket; the day-by-day one is local
    with EmulatorServer(dataset, api_key=KEY) as server:
        result = _ranged_run(server, ranged, instance, days[0], days[-1])
        assert result.success
        with CloudglueClient(KEY, server.base_url, max_concurrency=4) as client:
            for day in days:
                sync_day(client, tmp_path / "daily", day)
    _assert_same_tables(ranged, tmp_path / "daily")

    # The instance holds each day as a one-day run would: every asset's partition materialized
    # with the day's own row count, and every check evaluated on that partition.
    segments = pipeline.read_table("segment_entities", ranged)
    for asset in ("raw_extract_jobs", *TABLE_NAMES):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == {
            d.isoformat() for d in days
        }
    for day in days:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("segment_entities"), asset_partitions=[day.isoformat()]
            ),
            limit=1,
        ).records
        rows = records[0].asset_materialization.metadata["dagster/row_count"].value
        assert rows == (segments["created_date"].astype(str) == day.isoformat()).sum()
        raw = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("raw_extract_jobs"), asset_partitions=[day.isoformat()]
            ),
            limit=1,
        ).records[0]
        jobs = pipeline.read_table("extract_jobs", ranged)
        assert raw.asset_materialization.metadata["jobs_listed"].value == (
            (jobs["created_date"].astype(str) == day.isoformat()).sum()
        )
    for check in CHECKS:
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(check.table), check.name), limit=100
        )
        assert sorted(r.partition for r in history) == [d.isoformat() for d in days]
    # Each evaluation targets its day's materialization: the UI counts it as that day's result
    # (passed or failed) only then, and shows the day's check as missing otherwise.
    check_keys = [dg.AssetCheckKey(dg.AssetKey(c.table), c.name) for c in CHECKS]
    infos = instance.event_log_storage.get_asset_check_partition_info(check_keys)
    assert {(info.check_key, info.partition_key) for info in infos if info.is_current} == {
        (key, day.isoformat()) for key in check_keys for day in days
    }


def test_a_failing_day_commits_the_others_is_named_and_a_rerun_fetches_only_it(
    tmp_path: Path, instance: dg.DagsterInstance
):
    # Jobs with more than one page of segment entities keep changing their total between pages
    # (the client gives up on them): their days fail, the days of one-page jobs do not.
    dataset = Dataset(seed=5, jobs=30, days=6, end_date=END, mean_segments=40)
    days = dataset.days()

    def multi_page(day: dt.date) -> bool:
        return any(
            dataset.status(j) == "completed" and dataset.complete_job(j)["total"] > 100
            for j in dataset.job_ids_for_day(day)
        )

    failing = {d.isoformat() for d in days if multi_page(d)}
    assert failing and len(failing) < len(days)
    data_dir = tmp_path / "data"
    faults = FaultConfig(changing_total=1.0, burst=1000)
    with EmulatorServer(dataset, api_key=KEY, faults=faults) as server:
        result = _ranged_run(server, data_dir, instance, days[0], days[-1], max_retries=0)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        named = failure.step_failure_data.user_failure_data.metadata["failed_days"].value
        assert set(named) == failing

        # The other days are committed and recorded; the failing ones are marked failed.
        done = {d.isoformat() for d in days} - failing
        assert instance.get_materialized_partitions(dg.AssetKey("segment_entities")) == done
        jobs = pipeline.read_table("extract_jobs", data_dir)
        assert set(jobs["created_date"].astype(str)) == done

        # Once the server behaves, a re-run fetches the failing days' jobs, nothing else.
        server.faults = FaultConfig()
        server.stats.reset()
        again = _ranged_run(server, data_dir, instance, days[0], days[-1])
        assert again.success
        fetched = {
            e.partition: e.materialization.metadata["jobs_fetched"].value
            for e in again.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey("raw_extract_jobs")
        }
        assert {day for day, n in fetched.items() if n} <= failing
        with CloudglueClient(KEY, server.base_url) as client:
            for day in days:
                sync_day(client, tmp_path / "reference", day)
    _assert_same_tables(data_dir, tmp_path / "reference")


def test_a_ranged_sync_and_a_one_day_sync_of_an_overlapping_day_at_once_stay_exact(
    tmp_path: Path,
):
    dataset = Dataset(seed=8, jobs=60, days=5, end_date=END)
    days = dataset.days()
    data_dir = tmp_path / "data"
    errors: list[BaseException] = []
    with EmulatorServer(dataset, api_key=KEY, latency_ms=20) as server:

        def ranged() -> None:
            try:
                with CloudglueClient(KEY, server.base_url, max_concurrency=4) as client:
                    assert all(r.ok for r in sync_range(client, data_dir, days))
            except BaseException as exc:
                errors.append(exc)

        def one_day() -> None:
            try:
                with CloudglueClient(KEY, server.base_url, max_concurrency=4) as client:
                    sync_day(client, data_dir, days[2])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ranged), threading.Thread(target=one_day)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        with CloudglueClient(KEY, server.base_url) as client:
            for day in days:
                sync_day(client, tmp_path / "reference", day)
    _assert_same_tables(data_dir, tmp_path / "reference")
    segments = pipeline.read_table("segment_entities", data_dir)
    assert not segments.duplicated(["job_id", "segment_index"]).any()


def test_jobs_failing_in_a_row_stop_the_range_instead_of_each_spending_its_retries(
    tmp_path: Path,
):
    dataset = Dataset(seed=9, jobs=80, days=3, end_date=END)
    completed = [j for j in dataset.job_ids() if dataset.status(j) == "completed"]
    assert len(completed) > 2 * MAX_FAILURES_IN_A_ROW
    with (
        emulator_access_log() as answered,
        EmulatorServer(dataset, api_key=KEY) as server,
        CloudglueClient(KEY, server.base_url, max_concurrency=4, max_retries=0) as client,
    ):

        def outage_after_listing(event: str, _info: dict) -> None:
            if event == "listed":
                server.faults = FaultConfig(server_error=1.0, burst=1000)

        results = list(
            sync_range(client, tmp_path / "data", dataset.days(), progress=outage_after_listing)
        )
    assert results and not any(r.ok for r in results)
    assert all("HTTP 50" in str(r.error) for r in results)
    # Jobs are started only until MAX_FAILURES_IN_A_ROW have failed (plus those in flight).
    attempted = {p.split("/extract/")[1] for p in answered.paths if "/extract/" in p}
    assert MAX_FAILURES_IN_A_ROW <= len(attempted) <= MAX_FAILURES_IN_A_ROW + 4 < len(completed)
