"""A sensor that runs the recent days whose set of completed jobs changed, in one ranged run.

Jobs complete hours or days after they are created, so the daily schedule alone would miss them.
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
from pipeline.defs.resources import CloudglueResource
from pipeline.settings import (
    DEFAULT_LOOKBACK_DAYS,
    LOOKBACK_DAYS_ENV,
    WEBHOOKS_ENV,
    lookback_days,
    poll_seconds,
)
from pipeline.sync import completed_fingerprints


@dg.sensor(
    job=cloudglue_daily_job,
    # With webhooks on, webhook_events_sensor drives the runs and this one is the safety net.
    minimum_interval_seconds=poll_seconds(),
    description=(
        f"Every {poll_seconds() // 60} minutes (hourly when {WEBHOOKS_ENV}=on: webhooks drive "
        f"the runs), lists the jobs created in the last {LOOKBACK_DAYS_ENV} days "
        f"(default {DEFAULT_LOOKBACK_DAYS}) and requests a run for each day whose set of completed "
        "jobs changed."
    ),
)
def completed_jobs_sensor(
    context: dg.SensorEvaluationContext, cloudglue: CloudglueResource
) -> dg.SensorResult:
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(lookback_days())]
    with cloudglue.get_client() as client:
        jobs = client.list_jobs(min(days), today)
    fingerprints = completed_fingerprints(jobs, days)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    empty = completed_fingerprints([], [today])[today.isoformat()]
    changed = sorted(
        day
        for day, fingerprint in fingerprints.items()
        # A day never seen with no completed jobs has nothing to land yet.
        if seen.get(day, empty) != fingerprint
    )
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
