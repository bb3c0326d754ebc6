"""Webhooks drive the runs: a job completed in the emulator reaches the tables through its
delivery, the receiver's log and the event sensor's run of its day, with no polling; the
sensor's cursor processes each event once and loses none when a tick fails."""

from __future__ import annotations

import datetime as dt
import itertools
import socket

import dagster as dg
import orjson
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from hypothesis import given
from hypothesis import strategies as st

import pipeline
from pipeline.cloudglue.client import CloudglueClient
from pipeline.defs.assets import days_asset
from pipeline.defs.resources import CloudglueResource
from pipeline.defs.webhook_sensor import day_ranges, webhook_events_sensor
from pipeline.webhooks import EventLog, WebhookReceiver, parse_event
from pipeline_tests.conftest import EMULATOR_API_KEY
from pipeline_tests.webhooks.util import event, wait_for_events


def _tick(resources: dict[str, object], cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    return webhook_events_sensor()(context)


def _run(resources, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [days_asset(retry_policy=None)],
        instance=instance,
        resources=resources,
        tags=request.tags,
    )


def _requested_days(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [(r.partition_key_range.start, r.partition_key_range.end) for r in result.run_requests]


def _day(dataset, job_id: str) -> dt.date:
    created = dataset.summary(job_id)["created_at"]
    return dt.datetime.fromtimestamp(created / 1000, dt.UTC).date()


def test_a_job_completed_in_the_emulator_is_in_the_tables_after_its_day_is_rerun(
    emulator, dataset, resources, data_dir, dagster_instance
) -> None:
    days = dataset.days()
    first = dg.RunRequest(
        tags={
            ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: days[-1].isoformat(),
        }
    )
    assert _run(resources, dagster_instance, first).success
    job_id = next(j for j in dataset.job_ids() if dataset.status(j) == "pending")
    segments_before = pipeline.read_table("segment_entities", data_dir)
    assert job_id not in set(segments_before["job_id"])

    with CloudglueClient(api_key=EMULATOR_API_KEY, base_url=emulator.base_url) as client:
        hook = client.create_webhook("http://127.0.0.1:9/", ["extract.job.completed"])
        with WebhookReceiver(data_dir, hook["webhook_secret"], port=0) as receiver:
            client.update_webhook(hook["id"], endpoint=receiver.url)
            dataset.set_status(job_id, "completed")
            wait_for_events(data_dir, 1)

    tick = _tick(resources, None)
    day = _day(dataset, job_id).isoformat()
    assert _requested_days(tick) == [(day, day)]
    assert _run(resources, dagster_instance, tick.run_requests[0]).success
    segments = pipeline.read_table("segment_entities", data_dir)
    mine = segments[segments["job_id"] == job_id]
    expected = dataset.complete_job(job_id)["data"]["segment_entities"]
    assert len(mine) == len(expected) > 0
    jobs = pipeline.read_table("extract_jobs", data_dir)
    assert jobs.loc[jobs["job_id"] == job_id, "status"].tolist() == ["completed"]
    # The event is processed once: the next tick has nothing to run.
    assert _tick(resources, tick.cursor).run_requests == []


def test_events_without_created_at_are_mapped_through_the_job_summary(
    dataset, resources, data_dir
) -> None:
    jobs = dataset.job_ids()
    log = EventLog(str(data_dir))
    for body in (
        event(job_id=jobs[0], created_at=None),
        event(job_id=jobs[-1], created_at=None),
        event(job_id="deleted-long-ago", created_at=None),
        event(job_id=jobs[1], event_type="file.job.completed"),
    ):
        assert log.record(parse_event(orjson.dumps(body)))
    tick = _tick(resources, None)
    days = sorted({_day(dataset, jobs[0]), _day(dataset, jobs[-1])})
    assert _requested_days(tick) == [(days[0].isoformat(), days[-1].isoformat())]
    assert _tick(resources, tick.cursor).run_requests == []


def test_a_failed_tick_keeps_its_events_for_the_next(dataset, resources, data_dir) -> None:
    job_id = dataset.job_ids()[2]
    EventLog(str(data_dir)).record(parse_event(orjson.dumps(event(job_id, created_at=None))))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = {
        **resources,
        "cloudglue": CloudglueResource(
            api_key=EMULATOR_API_KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        ),
    }
    with pytest.raises(Exception, match="connection"):
        _tick(down, None)
    # The daemon keeps the cursor of the last tick that succeeded (here: none).
    day = _day(dataset, job_id).isoformat()
    assert _requested_days(_tick(resources, None)) == [(day, day)]


def test_days_before_the_first_partition_are_not_requested(resources, data_dir) -> None:
    log = EventLog(str(data_dir))
    log.record(parse_event(orjson.dumps(event("old", created_at=0))))  # 1970-01-01
    tick = _tick(resources, None)
    assert tick.run_requests == [] and tick.cursor


@given(
    days=st.sets(st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)), max_size=40),
    per_run=st.integers(1, 120),
)
def test_day_ranges_cover_exactly_the_days_in_runs_of_bounded_span(days, per_run) -> None:
    ranges = day_ranges(days, per_run)
    covered = [d for d in sorted(days) if any(a <= d <= b for a, b in ranges)]
    assert covered == sorted(days)
    assert all(a in days and b in days and (b - a).days < per_run for a, b in ranges)
    assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(ranges))
