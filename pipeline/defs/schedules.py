"""A daily run for the previous UTC day, once it is over."""

import datetime as dt

import dagster as dg

from pipeline.defs.jobs import cloudglue_daily_job


@dg.schedule(
    job=cloudglue_daily_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    description="At 00:30 UTC, land and rebuild the previous UTC day.",
)
def previous_day_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return dg.RunRequest(run_key=f"schedule:{day.isoformat()}", partition_key=day.isoformat())
