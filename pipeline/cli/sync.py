"""``cloudglue-pipeline sync``: materialize UTC days through the Dagster assets, in-process on the
DAGSTER_HOME instance, in as few ranged runs as the backfill policy allows, skipping days with
nothing new upstream."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import logging
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import settings
from pipeline.cli.api_options import (
    ApiOptions,
    add_api_flags,
    api_options,
    check_api_config,
    client_for,
)
from pipeline.cli.common import (
    check_days,
    check_writable,
    command_line,
    ensure_dagster_home,
    given_flags,
    iso_day,
    partition_start,
    say_if_new_in_working_dir,
    utc_today,
)
from pipeline.cli.logs import (
    RUN_LOGGER,
    LogProgress,
    add_log_flags,
    configure_logging,
    json_logs,
    say,
)
from pipeline.progress import (
    DaySummary,
    ProgressReporter,
    by_status_text,
    render_summary,
    reporting,
)

if TYPE_CHECKING:
    from pipeline.cloudglue.client import CloudglueClient


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sync",
        help="land UTC days of Cloudglue extract jobs as Parquet (default: yesterday and today)",
        description=(
            "Materialize the day partitions --from..--to (inclusive, UTC) through the Dagster "
            f"assets, one run per {settings.days_per_run()} days at most (days with nothing new "
            "upstream need none), on the Dagster instance at DAGSTER_HOME (default "
            "./.dagster_home), so `make dev` shows the runs. Needs CLOUDGLUE_API_KEY. "
            "A day that fails does not stop the others. "
            "Exit status: 0 done, 1 a day failed (each cause is printed), 2 usage error."
        ),
    )
    p.add_argument(
        "--from", dest="first", type=iso_day, metavar="DATE", help="first day (default yesterday)"
    )
    p.add_argument(
        "--to", dest="last", type=iso_day, metavar="DATE", help="last day (default today, UTC)"
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where to write: a directory or s3://bucket/prefix (CLOUDGLUE_DATA_DIR, else ./data)",
    )
    add_api_flags(p)
    add_log_flags(p)
    p.add_argument("--quiet", action="store_true", help="print errors and warnings only")
    p.add_argument(
        "--force",
        action="store_true",
        help="run every day, also those with nothing new upstream since they were built",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list the days and say what a sync would fetch and build; write nothing",
    )
    p.set_defaults(func=functools.partial(_run, parser=p))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    configure_logging(args)
    today = utc_today()
    start = partition_start()
    first = args.first or max(today - dt.timedelta(days=1), start)
    last = args.last or today
    first_default = None if args.first else "yesterday, UTC" if first < today else "today, UTC"
    days = check_days(first, last, today, start, first_default=first_default)
    options = api_options(args)
    check_api_config(options)
    data_dir = settings.data_dir(args.data_dir)
    if args.dry_run:
        return _dry_run(days, data_dir, options, force=args.force)
    say_if_new_in_working_dir(args.data_dir)
    check_writable(data_dir)
    ensure_dagster_home()
    outcome = sync_days(
        days,
        data_dir,
        options,
        quiet=args.quiet,
        force=args.force,
        rerun_flags=given_flags(parser, args, skip={"first", "last"}),
    )
    return 130 if outcome.interrupted else 0 if outcome.ok else 1


def _dry_run(
    days: Sequence[dt.date], data_dir: Path | str, options: ApiOptions, *, force: bool
) -> int:
    """One listing of ``days`` compared with the data dir: per day, what ``sync`` would fetch
    and whether it would build; nothing is written (no Dagster run, no lock, no file)."""
    from pipeline.cli.query import format_rows
    from pipeline.cloudglue.errors import CloudglueError
    from pipeline.sync import day_states

    try:
        with client_for(options) as client:
            states = day_states(data_dir, days, client)
    except CloudglueError as exc:
        say(f"listing {_span_text(days)} failed: {exc}", logging.ERROR)
        return 1
    rows = []
    for s in states:
        run = force or s.stale
        rows.append(
            [
                str(s.day),
                sum((s.upstream_by_status or {}).values()),
                by_status_text(s.upstream_by_status or {}),
                s.to_fetch,
                "fetch and build" if run and s.to_fetch else "build" if run else "(unchanged)",
            ]
        )
    columns = ["day", "listed", "by status", "to fetch", "would"]
    sys.stdout.write(format_rows(columns, rows, "table"))
    runs = sum(1 for row in rows if row[-1] != "(unchanged)")
    print(
        f"dry run: {runs} of {len(rows)} day(s) would run, "
        f"{sum(s.to_fetch for s in states)} job(s) would be fetched; nothing was written"
    )
    return 0


def _metadata_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _span_summaries(days: Sequence[dt.date], result: Any) -> dict[dt.date, DaySummary]:
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


def _probe_client(options: ApiOptions) -> CloudglueClient:
    """A client for the unchanged-day probe: one attempt per request, since a failing probe only
    means the days get their runs, and the runs do the retrying (and report the cause)."""
    return client_for(dataclasses.replace(options, max_retries=0))


def _probe(
    probe: CloudglueClient, data_dir: Path | str, days: Sequence[dt.date]
) -> tuple[list[dt.date], dict[dt.date, DaySummary]]:
    """One listing of ``days``: the days that need a run, and the summaries of the others (none
    when the probe itself fails: the runs then report the cause)."""
    from pipeline import quality
    from pipeline.cloudglue.errors import CloudglueError
    from pipeline.storage.raw import RawStore
    from pipeline.sync import changed_days

    try:
        changed, unchanged = changed_days(probe, data_dir, days)
    except CloudglueError:
        return list(days), {}
    store = RawStore(data_dir)
    checks = quality.check_days(data_dir, list(unchanged), built=unchanged) if unchanged else {}
    summaries = {}
    for day, built in unchanged.items():
        listing = store.read_listing(day)
        by_status = dict(Counter(job.get("status") for job in (listing.jobs if listing else ())))
        summaries[day] = DaySummary(
            day=day,
            seconds=0.0,
            listed=sum(by_status.values()),
            by_status=by_status,
            already_landed=by_status.get("completed", 0),
            segment_rows=built.tables["segment_entities"].rows,
            failed_checks=sorted(f"{o.table}.{o.name}" for o in checks[day] if not o.passed),
            unchanged=True,
        )
    return changed, summaries


def run_spans(days: Sequence[dt.date], per_run: int) -> list[list[dt.date]]:
    """``days`` cut into runs: runs of consecutive days, at most ``per_run`` days each."""
    spans: list[list[dt.date]] = []
    for day in sorted(days):
        span = spans[-1] if spans else None
        if span and day - span[-1] == dt.timedelta(days=1) and len(span) < per_run:
            span.append(day)
        else:
            spans.append([day])
    return spans


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


# Dagster's console logs would drown the progress line; the CLI prints the cause itself.
RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@contextlib.contextmanager
def _long_lived_objects() -> Iterator[None]:
    """For a block that makes objects living as long as the process (imports, the instance).

    Importing Dagster and opening the instance make some 300,000 such objects. The cyclic GC
    would walk them on every full collection, while they are made and for the rest of the
    process (bench/README.md has the cost). So no collection runs inside the block, and what
    it made is frozen (``gc.freeze``: never walked again). The few thousand objects of
    import-time garbage this also freezes are never freed: well under a megabyte.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@dataclasses.dataclass
class SyncOutcome:
    """What ``sync_days`` did: every day's summary (in day order), whether each day it ran
    committed (``ok``), and whether Ctrl-C stopped it (``interrupted``)."""

    ok: bool
    days: list[DaySummary]
    interrupted: bool = False


def _span_runner(
    stack: contextlib.ExitStack, data_dir: Path | str, options: ApiOptions
) -> Callable[[list[dt.date]], tuple[Any, bool]]:
    """A function running one span of days of ``cloudglue_daily_job`` in-process on the
    DAGSTER_HOME instance (opened on ``stack``) as one ranged run tagged as launched from the
    CLI; returns the run's result and whether it was canceled (Ctrl-C: the run is marked
    canceled, not failed)."""
    with _long_lived_objects():
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
        from pipeline.defs.resources import CloudglueResource, DataDirResource

        resources = {
            "cloudglue": CloudglueResource(
                api_key=dg.EnvVar(settings.API_KEY_ENV), **options.resource_kwargs()
            ),
            "data_dir": DataDirResource(path=str(data_dir)),
        }
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


def sync_days(
    days: Sequence[dt.date],
    data_dir: Path | str,
    options: ApiOptions,
    *,
    quiet: bool = False,
    force: bool = False,
    rerun_flags: Sequence[str] = (),
) -> SyncOutcome:
    """Materialize ``days`` through the Dagster assets in ranged in-process runs.

    One listing of all the days first finds those with nothing new upstream since they were
    built: they need no run (a run costs Dagster's bookkeeping even then) and are reported
    unchanged, unless ``force``. The other days run in spans of consecutive days, at most
    CLOUDGLUE_DAYS_PER_RUN days per run. A failed day does not stop the others; every failed
    day's cause is printed at the end, with the command that re-runs them (``rerun_flags``
    kept). Ctrl-C stops at once: the days committed stay, the run is canceled, and the command
    that resumes is printed. Expects DAGSTER_HOME set and the key in CLOUDGLUE_API_KEY: it
    reaches Dagster only as an EnvVar, never in the run config or the event log.
    """
    with _long_lived_objects():
        # What the probe and the runs import besides Dagster (pyarrow, numpy, ...).
        import pipeline.quality
        import pipeline.sync  # noqa: F401

    reporter = None if quiet else LogProgress() if json_logs() else ProgressReporter(sys.stderr)
    summaries: dict[dt.date, DaySummary] = {}
    causes: dict[dt.date, str] = {}
    interrupted = False
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        stack.enter_context(reporting(reporter))
        if reporter:
            reporter.start(len(days))
        try:
            if force:
                to_run = list(days)
            else:
                with _probe_client(options) as probe:
                    to_run, summaries = _probe(probe, data_dir, days)
                if reporter:
                    for day in sorted(summaries):
                        reporter.finish_day(summaries[day])
            # Dagster (about a second to import and open the instance) only once a day needs a run.
            run_span = _span_runner(stack, data_dir, options) if to_run else None
            for span in run_spans(to_run, settings.days_per_run()):
                assert run_span is not None
                if reporter:
                    reporter.start_span(span[0], span[-1])
                result, interrupted = run_span(span)
                outcome = _span_summaries(span, result)
                if not result.success and not interrupted:
                    named = failure_causes(span, result)
                    for day, summary in outcome.items():
                        if not summary.ok:
                            causes[day] = named.get(day) or f"{day}: failed (see the run's log)"
                for day in span:
                    if interrupted and not outcome[day].ok:
                        continue
                    summaries[day] = outcome[day]
                    if reporter:
                        reporter.finish_day(outcome[day])
                if interrupted:
                    break
        except KeyboardInterrupt:
            interrupted = True
    if reporter:
        reporter.close()
    ordered = [summaries[day] for day in sorted(summaries)]
    if not quiet and ordered:
        seconds = time.monotonic() - started
        if json_logs():
            say(
                f"{len(ordered)} day(s) in {seconds:.1f} s",
                days=len(ordered),
                jobs_fetched=sum(s.fetched for s in ordered),
                segment_entities=sum(s.segment_rows for s in ordered),
                seconds=round(seconds, 3),
            )
        else:
            print(render_summary(ordered, seconds), flush=True)
    # A run that failed as a whole (a wrong key) gives each of its days the same line: once.
    for cause, day in {causes[day]: day for day in sorted(causes, reverse=True)}.items():
        say(cause, logging.ERROR, day=str(day))
    if causes:
        failed = sorted(causes)
        command = _sync_command(failed, rerun_flags)
        say(
            f"{len(failed)} day(s) failed; the other days are committed. Re-run them (landed "
            f"jobs are not fetched again): {command}",
            failed_days=[str(day) for day in failed],
            rerun=command,
        )
    if interrupted:
        left = sorted(set(days) - set(summaries))
        say(
            f"interrupted: {len(summaries)} day(s) committed, {len(left)} not synced"
            + (f" ({_span_text(left)})" if left else ""),
            logging.WARNING if json_logs() else logging.INFO,
            not_synced=[str(day) for day in left],
        )
        if left:
            command = _sync_command(left, rerun_flags)
            say(f"resume (landed jobs are not fetched again): {command}", resume=command)
    return SyncOutcome(not causes and not interrupted, ordered, interrupted)


def _span_text(days: Sequence[dt.date]) -> str:
    return str(days[0]) if days[0] == days[-1] else f"{days[0]}..{days[-1]}"


def _sync_command(days: Sequence[dt.date], flags: Sequence[str]) -> str:
    """The ``sync`` of ``min(days)..max(days)`` with the user's other flags, to paste."""
    return command_line(["sync", "--from", str(days[0]), "--to", str(days[-1]), *flags])
