"""A sensor that runs exactly the recent days whose set of completed jobs changed.

Jobs complete hours or days after they are created, so the daily schedule alone would miss them.
"""

import datetime as dt
import json
import os

import dagster as dg

from pipeline.defs.jobs import cloudglue_daily_job
from pipeline.defs.resources import CloudglueResource
from pipeline.sync import completed_fingerprints

DEFAULT_LOOKBACK_DAYS = 7


def lookback_days() -> int:
    """How many recent UTC days the sensor watches (CLOUDGLUE_SENSOR_LOOKBACK_DAYS)."""
    return max(1, int(os.environ.get("CLOUDGLUE_SENSOR_LOOKBACK_DAYS", DEFAULT_LOOKBACK_DAYS)))


@dg.sensor(
    job=cloudglue_daily_job,
    minimum_interval_seconds=300,
    description=(
        "Every 5 minutes, lists the jobs created in the last CLOUDGLUE_SENSOR_LOOKBACK_DAYS days "
        "(default 7) and requests a run for each day whose set of completed jobs changed."
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
    run_requests = [
        dg.RunRequest(run_key=f"{day}:{fingerprint}", partition_key=day)
        for day, fingerprint in sorted(fingerprints.items())
        # A day never seen with no completed jobs has nothing to land yet.
        if seen.get(day, empty) != fingerprint
    ]
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(fingerprints))
