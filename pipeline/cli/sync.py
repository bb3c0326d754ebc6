"""``cloudglue-pipeline sync``: materialize UTC days through the Dagster assets, in-process on the
DAGSTER_HOME instance, skipping days with nothing new upstream."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import sys
import time
import warnings
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
    ensure_dagster_home,
    partition_start,
    utc_today,
)
from pipeline.progress import DaySummary, ProgressReporter, render_summary, reporting

if TYPE_CHECKING:
    from pipeline.cloudglue.client import CloudglueClient


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sync",
        help="land UTC days of Cloudglue extract jobs as Parquet (default: yesterday and today)",
        description=(
            "Materialize the day partitions --from..--to (inclusive, UTC) through the Dagster "
            "assets, one run per day, on the Dagster instance at DAGSTER_HOME (default "
            "./.dagster_home), so `make dev` shows the runs. Needs CLOUDGLUE_API_KEY. "
            "Exit status: 0 done, 1 failed (the cause is printed), 2 usage error."
        ),
    )
    p.add_argument(
        "--from", dest="first", type=_iso_day, metavar="DATE", help="first day (default yesterday)"
    )
    p.add_argument(
        "--to", dest="last", type=_iso_day, metavar="DATE", help="last day (default today, UTC)"
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help="output directory (CLOUDGLUE_DATA_DIR, else ./data)"
    )
    add_api_flags(p)
    p.add_argument("--quiet", action="store_true", help="print errors only")
    p.add_argument(
        "--force",
        action="store_true",
        help="run every day, also those with nothing new upstream since they were built",
    )
    p.set_defaults(func=_run)


def _iso_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _run(args: argparse.Namespace) -> int:
    today = utc_today()
    start = partition_start()
    first = args.first or max(today - dt.timedelta(days=1), start)
    last = args.last or today
    days = check_days(first, last, today, start)
    options = api_options(args)
    check_api_config(options)
    data_dir = settings.data_dir(args.data_dir)
    check_writable(data_dir)
    ensure_dagster_home()
    ok, _ = sync_days(days, data_dir, options, quiet=args.quiet, force=args.force)
    return 0 if ok else 1


def _metadata_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _day_summary(day: dt.date, result: Any, seconds: float) -> DaySummary:
    summary = DaySummary(day=day, seconds=seconds, ok=result.success)
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string()
        md = {k: _metadata_value(v) for k, v in event.materialization.metadata.items()}
        if key == "raw_extract_jobs":
            summary.listed = int(md.get("jobs_listed", 0))
            summary.by_status = dict(md.get("jobs_by_status") or {})
            summary.fetched = int(md.get("jobs_fetched", 0))
            summary.already_landed = int(md.get("jobs_already_landed", 0))
            summary.skipped_jobs = list(md.get("skipped_jobs") or [])
        elif key == "segment_entities":
            summary.segment_rows = int(md.get("dagster/row_count", 0))
    summary.failed_checks = sorted(
        f"{e.asset_key.to_user_string()}.{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    )
    return summary


def _probe_client(options: ApiOptions) -> CloudglueClient:
    """A client for the unchanged-day probe: one attempt per request, since a failing probe only
    means the day gets its run, and the run does the retrying (and reports the cause)."""
    return client_for(dataclasses.replace(options, max_retries=0))


def _unchanged_summary(probe: CloudglueClient, data_dir: Path, day: dt.date) -> DaySummary | None:
    """The summary of a day that needs no run, or None (also when the probe itself fails: the
    run then reports the cause)."""
    from pipeline.cloudglue.errors import CloudglueError
    from pipeline.quality import check_day
    from pipeline.storage.raw import RawStore
    from pipeline.sync import unchanged_day

    try:
        built = unchanged_day(probe, data_dir, day)
    except CloudglueError:
        return None
    if built is None:
        return None
    listing = RawStore(data_dir).read_listing(day)
    by_status: dict[str, int] = {}
    for job in listing.jobs if listing else ():
        by_status[job.get("status")] = by_status.get(job.get("status"), 0) + 1
    return DaySummary(
        day=day,
        seconds=0.0,
        listed=sum(by_status.values()),
        by_status=by_status,
        already_landed=by_status.get("completed", 0),
        segment_rows=built.tables["segment_entities"].rows,
        failed_checks=sorted(
            f"{o.table}.{o.name}" for o in check_day(data_dir, day) if not o.passed
        ),
        unchanged=True,
    )


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def failure_cause(day: dt.date, result: Any) -> str:
    """One line saying why a day's run failed, from its step failure event."""
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return _first_line(data.user_failure_data.description)
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
            return f"{day}: {error.cls_name}: {message}"
    return f"{day}: the run failed; open it in the Dagster UI (`make dev`) for the details"


# Dagster's console logs would drown the progress line; the CLI prints the cause itself.
RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@contextlib.contextmanager
def _long_lived_objects() -> Iterator[None]:
    """For a block that makes objects living as long as the process (imports, the instance).

    Importing Dagster and opening the instance make some 300,000 such objects. The cyclic GC
    would walk them on every full collection: while they are made (about a fifth of the CPU time
    of that block) and for the rest of the process (landing a 1,000-job day cost ~2 CPU s more
    with Dagster loaded). So no collection runs inside the block, and what it made is frozen
    (``gc.freeze``: never walked again). The few thousand objects of import-time garbage this
    also freezes are never freed: well under a megabyte.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _day_runner(
    stack: contextlib.ExitStack, data_dir: Path, options: ApiOptions
) -> Callable[[dt.date], Any]:
    """A function running one day's partition of the assets in-process on the DAGSTER_HOME
    instance (opened on ``stack``); returns the run's result."""
    with _long_lived_objects():
        import dagster as dg

        # Beta/preview notes about our own definitions are for their authors, not this output.
        for category in (dg.BetaWarning, dg.PreviewWarning):
            warnings.simplefilter("ignore", category)

        from pipeline.defs.assets import RETRIES_TAG, cloudglue_tables, raw_extract_jobs
        from pipeline.defs.resources import CloudglueResource, DataDirResource

        resources = {
            "cloudglue": CloudglueResource(
                api_key=dg.EnvVar(settings.API_KEY_ENV), **options.resource_kwargs()
            ),
            "data_dir": DataDirResource(path=str(data_dir)),
        }
        instance = stack.enter_context(dg.DagsterInstance.get())

    def run(day: dt.date) -> Any:
        return dg.materialize(
            [raw_extract_jobs, cloudglue_tables],
            partition_key=day.isoformat(),
            instance=instance,
            resources=resources,
            run_config=RUN_CONFIG,
            tags={RETRIES_TAG: "off"},
            raise_on_error=False,
        )

    return run


def sync_days(
    days: Sequence[dt.date],
    data_dir: Path,
    options: ApiOptions,
    *,
    quiet: bool = False,
    force: bool = False,
) -> tuple[bool, list[DaySummary]]:
    """Materialize each day through the Dagster assets, one in-process run per day.

    A day with nothing new upstream since it was built needs no run (a run costs ~1 s of Dagster
    bookkeeping even then): it is listed, found unchanged and reported so, unless ``force``.

    Stops at the first failed day (its cause is printed) and prints the summary of the days run.
    Expects DAGSTER_HOME set and the key in CLOUDGLUE_API_KEY: it reaches Dagster only as an
    EnvVar, never in the run config or the event log.
    """
    with _long_lived_objects():
        # What the probe and the runs import besides Dagster (pyarrow, numpy, ...).
        import pipeline.quality
        import pipeline.sync  # noqa: F401

    reporter = None if quiet else ProgressReporter(sys.stderr)
    summaries: list[DaySummary] = []
    started = time.monotonic()
    cause: str | None = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(reporting(reporter))
        probe = stack.enter_context(_probe_client(options))
        # Dagster (about a second to import and open the instance) only once a day needs a run:
        # a sync of days with nothing new upstream needs none.
        run_day: Callable[[dt.date], Any] | None = None
        if reporter:
            reporter.start(len(days))
        for day in days:
            if reporter:
                reporter.start_day(day)
            day_started = time.monotonic()
            summary = None if force else _unchanged_summary(probe, data_dir, day)
            if summary is not None:
                summary.seconds = time.monotonic() - day_started
                summaries.append(summary)
                if reporter:
                    reporter.finish_day(summary)
                continue
            if run_day is None:
                setup_started = time.monotonic()
                run_day = _day_runner(stack, data_dir, options)
                # A day's seconds leave out Dagster's start-up (the total includes it).
                day_started += time.monotonic() - setup_started
            result = run_day(day)
            summary = _day_summary(day, result, time.monotonic() - day_started)
            summaries.append(summary)
            if reporter:
                reporter.finish_day(summary)
            if not result.success:
                cause = failure_cause(day, result)
                break
    if reporter:
        reporter.close()
    if not quiet:
        print(render_summary(summaries, time.monotonic() - started), flush=True)
    if cause is not None:
        print(f"error: {cause}", file=sys.stderr)
        print(
            f"re-run from the failed day: cloudglue-pipeline sync --from {summaries[-1].day} "
            f"--to {days[-1]}",
            file=sys.stderr,
        )
    return cause is None, summaries
