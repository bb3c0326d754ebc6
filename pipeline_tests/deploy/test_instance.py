"""The production instance (deploy/dagster.yaml) on a real PostgreSQL: it loads from env vars
alone, its storages are Postgres, its queue and pools are ours, and a run records on it."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

import pipeline
from pipeline.defs.assets import API_POOL, days_asset
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.emulator import Dataset, EmulatorServer
from pipeline_tests.conftest import EMULATOR_END_DATE
from pipeline_tests.postgres import Postgres

KEY = "deploy-instance-key"


@pytest.fixture
def instance(production_home: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch):
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(production_home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_the_production_instance_is_postgres_with_our_queue_and_pool(
    instance: dg.DagsterInstance, production_home: Path, postgres: Postgres
):
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 4
    assert queue.should_block_op_concurrency_limited_runs and queue.op_concurrency_slot_buffer == 1
    assert [(t["key"], t["limit"]) for t in queue.tag_concurrency_limits] == [
        ("dagster/partition", 1)
    ]
    assert instance.global_op_concurrency_default_limit == 2
    assert instance.run_monitoring_enabled
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    # Nothing secret in the file: the password is only in the environment.
    assert postgres.password not in (production_home / "dagster.yaml").read_text()


def test_a_ranged_run_records_each_day_on_postgres_and_claims_the_api_pool(
    instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CLOUDGLUE_API_KEY", KEY)
    dataset = Dataset(seed=4, jobs=20, days=3, end_date=EMULATOR_END_DATE)
    days = dataset.days()
    with EmulatorServer(dataset, api_key=KEY) as server:
        result = dg.materialize(
            [days_asset(retry_policy=None)],
            instance=instance,
            resources={
                "cloudglue": CloudglueResource(
                    api_key=dg.EnvVar("CLOUDGLUE_API_KEY"), base_url=server.base_url
                ),
                "data_dir": DataDirResource(path=str(tmp_path / "data")),
            },
            tags={
                ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: days[-1].isoformat(),
            },
        )
    assert result.success
    wanted = {d.isoformat() for d in days}
    for asset in ("raw_extract_jobs", "segment_entities", "entity_values"):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == wanted
    jobs = pipeline.read_table("extract_jobs", tmp_path / "data")
    assert len(jobs) == 20
    # The step took a slot of the pool, which now exists in Postgres with the default limit.
    pool = instance.event_log_storage.get_concurrency_info(API_POOL)
    assert pool.slot_count == 2 and not pool.claimed_slots
    assert os.environ["DAGSTER_PG_DB"] == instance.run_storage.postgres_url.rsplit("/", 1)[-1]
    assert dt.date.fromisoformat(min(wanted)) == days[0]
