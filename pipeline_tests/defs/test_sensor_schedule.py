"""The sensor requests one ranged run over the days whose completed jobs changed; the schedule,
yesterday."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from pipeline.cloudglue.client import CloudglueClient
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.defs.schedules import previous_day_schedule
from pipeline.defs.sensors import completed_jobs_sensor
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.sync import sync_range
from pipeline_tests.conftest import EMULATOR_API_KEY


@pytest.fixture
def recent_emulator(monkeypatch: pytest.MonkeyPatch):
    """The sensor watches days relative to today, so this dataset ends today."""
    dataset = Dataset(seed=11, jobs=40, days=5)
    monkeypatch.setenv("CLOUDGLUE_SENSOR_LOOKBACK_DAYS", "7")
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
        yield dataset, server


def _tick(server: EmulatorServer, cursor: str | None, data_dir: Path) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={
            "cloudglue": CloudglueResource(api_key=EMULATOR_API_KEY, base_url=server.base_url),
            "data_dir": DataDirResource(path=str(data_dir)),
        },
    )
    return completed_jobs_sensor()(context)


def _requested(result: dg.SensorResult) -> tuple[str, str]:
    """The first and last day of the sensor's one ranged run request."""
    (request,) = result.run_requests
    keys = request.partition_key_range
    return keys.start, keys.end


def test_sensor_requests_one_run_over_the_days_that_changed(recent_emulator, tmp_path):
    dataset, server = recent_emulator
    first = _tick(server, None, tmp_path)
    days_with_completed = {
        day.isoformat()
        for day in dataset.days()
        if any(dataset.summary(j)["status"] == "completed" for j in dataset.job_ids_for_day(day))
    }
    assert _requested(first) == (min(days_with_completed), max(days_with_completed))

    pending = [
        j for j in dataset.job_ids() if dataset.summary(j)["status"] in ("pending", "processing")
    ]
    changed = {pending[0], pending[-1]}
    for job_id in changed:
        dataset.set_status(job_id, "completed")
    changed_days = {
        dt.datetime.fromtimestamp(dataset.summary(j)["created_at"] / 1000, dt.UTC)
        .date()
        .isoformat()
        for j in changed
    }
    second = _tick(server, first.cursor, tmp_path)
    assert _requested(second) == (min(changed_days), max(changed_days))
    # The run key carries the fingerprint: a new state gets a new key.
    first_keys = {r.run_key for r in first.run_requests}
    assert not first_keys & {r.run_key for r in second.run_requests}

    third = _tick(server, second.cursor, tmp_path)
    assert third.run_requests == []


def test_first_tick_requests_only_the_days_that_differ_from_the_landed_ones(
    recent_emulator, tmp_path
):
    """Days synced already (what `sync` would call unchanged) get no run on the first tick."""
    dataset, server = recent_emulator
    with CloudglueClient(api_key=EMULATOR_API_KEY, base_url=server.base_url) as client:
        assert all(r.error is None for r in sync_range(client, tmp_path, dataset.days()))
    assert _tick(server, None, tmp_path).run_requests == []

    pending = next(
        j for j in dataset.job_ids() if dataset.summary(j)["status"] in ("pending", "processing")
    )
    dataset.set_status(pending, "completed")
    day = dt.datetime.fromtimestamp(dataset.summary(pending)["created_at"] / 1000, dt.UTC).date()
    assert _requested(_tick(server, None, tmp_path)) == (day.isoformat(), day.isoformat())


def test_schedule_runs_the_previous_utc_day():
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 2, 0, 30, tzinfo=dt.UTC)
    )
    request = previous_day_schedule(context)
    assert request.partition_key == "2026-03-01"
