"""Running a span of days through the Dagster assets: ``span_runner`` runs one in-process on the
DAGSTER_HOME instance; ``span_summaries`` and ``failure_causes`` read each day's outcome back from
the run's events."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline import settings
from pipeline.cli.api_options import ApiOptions
from pipeline.cli.logs import RUN_LOGGER
from pipeline.progress import DaySummary

# Dagster's console logs would drown the progress line; the CLI prints the cause itself.
RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@contextlib.contextmanager
def long_lived_objects() -> Iterator[None]:
    """For a block that makes objects living as long as the process (imports, the instance).

    Importing Dagster and opening the instance make hundreds of thousands of them. The cyclic GC
    would walk them on every full collection, while they are made and for the rest of the
    process (bench/README.md has the cost). So no collection runs inside the block, and what
    it made is frozen (``gc.freeze``: never walked again). The import-time garbage this also
    freezes is never freed; it is small.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def cli_resources(data_dir: Path | str, options: ApiOptions) -> dict[str, Any]:
    """The assets' and sensors' resources as the command line's flags set them."""
    import dagster as dg

    from pipeline.defs.resources import CloudglueResource, DataDirResource

    return {
        "cloudglue": CloudglueResource(
            api_key=dg.EnvVar(settings.API_KEY_ENV), **options.resource_kwargs()
        ),
        "data_dir": DataDirResource(path=str(data_dir)),
    }


def span_runner(
    stack: contextlib.ExitStack, data_dir: Path | str, options: ApiOptions
) -> Callable[[list[dt.date]], tuple[Any, bool]]:
    """A function running one span of days of ``cloudglue_daily_job`` in-process on the
    DAGSTER_HOME instance (opened on ``stack``) as one ranged run tagged as launched from the
    CLI; returns the run's result and whether it was canceled (Ctrl-C: the run is marked
    canceled, not failed)."""
    with long_lived_objects():
        import dagster as dg
        from dagster._core.events import DagsterEventType
        from dagster._core.execution.plan.objects import ErrorSource
        from dagster._core.storage.tags import (
            ASSET_PARTITION_RANGE_END_TAG,
            ASSET_PARTITION_RANGE_START_TAG,
        )
        from dagster._core.utils import make_new_run_id

        # Beta/preview notes about our own definitions are for their authors, not this output.
        for category in (dg.BetaWarning, dg.PreviewWarning):
            warnings.simplefilter("ignore", category)

        from pipeline.defs.assets import LAUNCHED_BY_CLI, LAUNCHED_BY_TAG, days_asset
        from pipeline.defs.jobs import cloudglue_daily_job

        resources = cli_resources(data_dir, options)
        # The job the UI, the schedule and the sensor run, so the CLI's runs show under it; its
        # step is not retried (see days_asset).
        job = dg.Definitions(
            assets=[days_asset(retry_policy=None)], jobs=[cloudglue_daily_job], resources=resources
        ).resolve_job_def(cloudglue_daily_job.name)
        instance = stack.enter_context(dg.DagsterInstance.get())

    run_log = logging.getLogger(RUN_LOGGER)

    def run(span: list[dt.date]) -> tuple[Any, bool]:
        run_id = make_new_run_id()

        def on_event(entry: Any) -> None:
            event = entry.dagster_event
            if run_log.isEnabledFor(entry.level):
                fields = {"run_id": run_id, "step": entry.step_key}
                if event is not None:
                    fields["event"] = event.event_type_value
                run_log.log(entry.level, entry.message, extra={"fields": fields})
            # Ctrl-C interrupts the step: the person stopped the run. Marked canceling before
            # the step's failure ends the run, Dagster ends it canceled rather than failed.
            if (
                event is not None
                and event.event_type == DagsterEventType.STEP_FAILURE
                and event.step_failure_data.error_source == ErrorSource.INTERRUPT
            ):
                stopped = instance.get_run_by_id(run_id)
                if stopped is not None:
                    instance.report_run_canceling(stopped, message=_STOPPED)

        instance.add_event_listener(run_id, on_event)
        result = job.execute_in_process(
            instance=instance,
            run_config=RUN_CONFIG,
            run_id=run_id,
            tags={
                LAUNCHED_BY_TAG: LAUNCHED_BY_CLI,
                ASSET_PARTITION_RANGE_START_TAG: span[0].isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: span[-1].isoformat(),
            },
            raise_on_error=False,
        )
        finished = instance.get_run_by_id(run_id)
        return result, finished is not None and finished.status == dg.DagsterRunStatus.CANCELED

    return run


_STOPPED = "Stopped from the command line (Ctrl-C); the days committed before stay."


def _metadata_value(value: Any) -> Any:
    return getattr(value, "value", value)


def span_summaries(days: Sequence[dt.date], result: Any) -> dict[dt.date, DaySummary]:
    """Each day's summary from a ranged run's events: its materializations and check
    evaluations carry the day's partition; a day without them failed."""
    from pipeline.defs import metadata as md
    from pipeline.defs.assets import RAW_ASSET

    summaries = {day: DaySummary(day=day, seconds=0.0, ok=False) for day in days}
    for event in result.get_asset_materialization_events():
        summary = summaries.get(dt.date.fromisoformat(event.partition))
        if summary is None:
            continue
        key = event.asset_key.to_user_string()
        values = {k: _metadata_value(v) for k, v in event.materialization.metadata.items()}
        if key == RAW_ASSET:
            summary.ok = True
            summary.listed = int(values.get(md.JOBS_LISTED, 0))
            summary.by_status = dict(values.get(md.JOBS_BY_STATUS) or {})
            summary.fetched = int(values.get(md.JOBS_FETCHED, 0))
            summary.already_landed = int(values.get(md.JOBS_ALREADY_LANDED, 0))
            summary.skipped_jobs = list(values.get(md.SKIPPED_JOBS) or [])
            summary.seconds = float(values.get(md.SECONDS, 0.0))
            summary.unchanged = bool(values.get(md.UNCHANGED, False))
        elif key == "segment_entities":
            summary.segment_rows = int(values.get(md.ROW_COUNT, 0))
    for evaluation in result.get_asset_check_evaluations():
        summary = summaries.get(dt.date.fromisoformat(evaluation.partition))
        if summary is not None and not evaluation.passed:
            summary.failed_checks.append(
                f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name}"
            )
    for summary in summaries.values():
        summary.failed_checks.sort()
    return summaries


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def failure_causes(days: Sequence[dt.date], result: Any) -> dict[dt.date, str]:
    """One line per failed day of a run saying why, from its step failure event: the days the
    assets named (each with its cause), or every day of the run with the step's error."""
    from pipeline.defs import metadata as md

    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.step_failure_data
        user = data.user_failure_data
        if user is not None:
            named = _metadata_value(user.metadata.get(md.FAILED_DAYS)) if user.metadata else None
            if isinstance(named, dict) and named:
                return {dt.date.fromisoformat(day): cause for day, cause in named.items()}
            if user.description:
                return dict.fromkeys(days, _first_line(user.description))
        error = data.error
        while (
            error is not None and error.cause is not None and error.cls_name.startswith("Dagster")
        ):
            error = error.cause
        if error is not None:
            # The message starts "module.Class: " (traceback style); keep what follows.
            first = _first_line(error.message)
            head, sep, rest = first.partition(": ")
            message = rest if sep and head.rsplit(".", 1)[-1] == error.cls_name else first
            return {day: f"{day}: {error.cls_name}: {message}" for day in days}
    return {
        day: f"{day}: the run failed; open it in the Dagster UI (`make dev`) for the details"
        for day in days
    }
