"""A sensor that turns the webhook events the receiver logged into runs of the jobs' days.

Each tick reads the events logged since its cursor (``pipeline.webhooks.EventLog``), maps every
extract event to the UTC day its job was created (from the payload's ``created_at``, else from
the job's summary, one small request), and requests one ranged run over the days touched (more
when they span more than a run's days). The cursor moves only with a tick that succeeded, so no
event is processed twice and none is lost when the daemon restarts or a lookup fails.
"""

import datetime as dt
import hashlib

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipeline import settings
from pipeline.cloudglue.errors import NotFoundError
from pipeline.defs.jobs import cloudglue_daily_job
from pipeline.defs.partitions import daily_partitions
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.webhooks import EventLog, WebhookEvent
from pipeline.webhooks.events import created_day


def _days_of(
    events: list[WebhookEvent], cloudglue: CloudglueResource, log: dg.DagsterLogManager
) -> set[dt.date]:
    """The UTC creation days of the extract events' jobs."""
    days: set[dt.date] = set()
    lookups: list[str] = []
    for event in events:
        if not event.event_type.startswith("extract.job.") or event.job_id is None:
            log.info(f"event {event.event_id} ({event.event_type}) names no extract job; skipped")
        elif event.created_day is not None:
            days.add(event.created_day)
        else:
            lookups.append(event.job_id)
    if lookups:
        with cloudglue.get_client() as client:
            for job_id in dict.fromkeys(lookups):
                try:
                    day = created_day(client.job_summary(job_id).get("created_at"))
                except NotFoundError:
                    day = None
                if day is None:
                    log.warning(f"job {job_id}: no usable created_at (deleted?); left to polling")
                else:
                    days.add(day)
    return days


def day_ranges(days: set[dt.date], days_per_run: int) -> list[tuple[dt.date, dt.date]]:
    """The sorted ``days`` cut into ranges of at most ``days_per_run`` calendar days."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if ranges and (day - ranges[-1][0]).days < days_per_run:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def webhook_events_sensor(
    partitions_def: dg.DailyPartitionsDefinition | None = None,
) -> dg.SensorDefinition:
    """The event sensor over ``partitions_def`` (else the daily partitions as CLOUDGLUE_START_DATE
    says now), with its interval (CLOUDGLUE_WEBHOOK_SENSOR_SECONDS) and days per run
    (CLOUDGLUE_DAYS_PER_RUN) as set now: the definitions call this when Dagster loads them."""
    first = (partitions_def or daily_partitions()).start.date()
    days_per_run = settings.days_per_run()

    @dg.sensor(
        name="webhook_events_sensor",
        job=cloudglue_daily_job,
        minimum_interval_seconds=settings.webhook_sensor_seconds(),
        description=(
            "Requests a run of the days of the jobs whose webhook events (`cloudglue-pipeline "
            "webhooks serve`) were logged since the last tick; every "
            f"{settings.WEBHOOK_SENSOR_SECONDS_ENV} seconds "
            f"(default {settings.DEFAULT_WEBHOOK_SENSOR_SECONDS})."
        ),
    )
    def _sensor(
        context: dg.SensorEvaluationContext, cloudglue: CloudglueResource, data_dir: DataDirResource
    ) -> dg.SensorResult:
        return _tick(context, cloudglue, data_dir, first, days_per_run)

    return _sensor


def _tick(
    context: dg.SensorEvaluationContext,
    cloudglue: CloudglueResource,
    data_dir: DataDirResource,
    first: dt.date,
    days_per_run: int,
) -> dg.SensorResult:
    events, cursor = EventLog(data_dir.root).read_new(context.cursor)
    if not events:
        return dg.SensorResult(run_requests=[], cursor=cursor)
    today = dt.datetime.now(dt.UTC).date()
    days = {d for d in _days_of(events, cloudglue, context.log) if first <= d <= today}
    batch = hashlib.sha256("\n".join(sorted(e.event_id for e in events)).encode()).hexdigest()
    run_requests = [
        dg.RunRequest(
            run_key=f"{batch[:24]}-{start}",
            tags={
                ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
            },
        )
        for start, end in day_ranges(days, days_per_run)
    ]
    context.log.info(f"{len(events)} new event(s): {len(days)} day(s) to run")
    return dg.SensorResult(run_requests=run_requests, cursor=cursor)
