"""A sensor that runs exactly the recent days whose set of completed jobs changed.

Jobs complete hours or days after they are created, so the daily schedule alone would miss them.
"""

import datetime as dt
import json

import dagster as dg

from pipeline.defs.jobs import cloudglue_daily_job
from pipeline.defs.resources import CloudglueResource
from pipeline.settings import DEFAULT_LOOKBACK_DAYS, LOOKBACK_DAYS_ENV, lookback_days
from pipeline.sync import completed_fingerprints


@dg.sensor(
    job=cloudglue_daily_job,
    minimum_interval_seconds=300,
    description=(
        f"Every 5 minutes, lists the jobs created in the last {LOOKBACK_DAYS_ENV} days "
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
    run_requests = [
        dg.RunRequest(run_key=f"{day}:{fingerprint}", partition_key=day)
        for day, fingerprint in sorted(fingerprints.items())
        # A day never seen with no completed jobs has nothing to land yet.
        if seen.get(day, empty) != fingerprint
    ]
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(fingerprints))
