"""A sensor that runs the recent days whose set of completed jobs changed, in one ranged run.

Jobs complete hours or days after they are created, so the daily schedule alone would miss them.
A tick compares each day's completed jobs with the previous tick's (its cursor); a day the cursor
does not know (every day, on the first tick) is compared with what is landed, by the test
``sync`` uses to report a day ``(unchanged)``.
"""

import datetime as dt
import hashlib
import json

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipeline.defs.jobs import cloudglue_daily_job
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.settings import (
    DEFAULT_LOOKBACK_DAYS,
    LOOKBACK_DAYS_ENV,
    WEBHOOKS_ENV,
    lookback_days,
    poll_seconds,
)
from pipeline.storage.raw import RawStore
from pipeline.sync import completed_fingerprints, list_range, unchanged_build


def completed_jobs_sensor() -> dg.SensorDefinition:
    """The polling sensor, with its interval (CLOUDGLUE_WEBHOOKS) and its window
    (CLOUDGLUE_SENSOR_LOOKBACK_DAYS) as set now: the definitions call this when Dagster loads
    them."""
    interval = poll_seconds()
    window = lookback_days()

    @dg.sensor(
        name="completed_jobs_sensor",
        job=cloudglue_daily_job,
        # With webhooks on, webhook_events_sensor drives the runs and this one is the safety net.
        minimum_interval_seconds=interval,
        description=(
            f"Every {interval // 60} minutes (hourly when {WEBHOOKS_ENV}=on: webhooks drive "
            f"the runs), lists the jobs created in the last {LOOKBACK_DAYS_ENV} days "
            f"(default {DEFAULT_LOOKBACK_DAYS}) and requests a run for each day whose set of "
            "completed jobs changed."
        ),
    )
    def _sensor(
        context: dg.SensorEvaluationContext, cloudglue: CloudglueResource, data_dir: DataDirResource
    ) -> dg.SensorResult:
        return _tick(context, cloudglue, data_dir, window)

    return _sensor


def _tick(
    context: dg.SensorEvaluationContext,
    cloudglue: CloudglueResource,
    data_dir: DataDirResource,
    window: int,
) -> dg.SensorResult:
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(window)]
    with cloudglue.get_client() as client:
        by_day, _ = list_range(client, days)
    fingerprints = completed_fingerprints(by_day)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    store = RawStore(data_dir.root)

    def needs_run(day: dt.date) -> bool:
        fingerprint = fingerprints[day.isoformat()]
        if day.isoformat() in seen:
            return seen[day.isoformat()] != fingerprint
        # A day with no completed jobs has nothing to land yet.
        completed = any(job.is_completed for job in by_day[day])
        return completed and unchanged_build(store, day, by_day[day]) is None

    changed = sorted(day.isoformat() for day in days if needs_run(day))
    run_requests = []
    if changed:
        key = ",".join(f"{day}:{fingerprints[day]}" for day in changed)
        run_requests.append(
            dg.RunRequest(
                run_key=hashlib.sha256(key.encode()).hexdigest()[:32],
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: changed[0],
                    ASSET_PARTITION_RANGE_END_TAG: changed[-1],
                },
            )
        )
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(fingerprints))
