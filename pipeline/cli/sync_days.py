"""``sync_days``: the days of a ``sync`` that need a run (one probe listing), run in spans of
consecutive days through Dagster, with the progress, the summary, each failed day's cause and the
command that re-runs or resumes them."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import settings
from pipeline.cli.api_options import ApiOptions, client_for
from pipeline.cli.common import command_line
from pipeline.cli.logs import LogProgress, json_logs, say
from pipeline.cli.span_runs import (
    failure_causes,
    long_lived_objects,
    span_runner,
    span_summaries,
)
from pipeline.progress import DaySummary, ProgressReporter, render_summary, reporting, span_text

if TYPE_CHECKING:
    from pipeline.cloudglue.client import CloudglueClient


@dataclasses.dataclass
class SyncOutcome:
    """What ``sync_days`` did: every day's summary (in day order), whether each day it ran
    committed (``ok``), and whether Ctrl-C stopped it (``interrupted``)."""

    ok: bool
    days: list[DaySummary]
    interrupted: bool = False


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
    from pipeline.sync import changed_days

    try:
        changed, unchanged = changed_days(probe, data_dir, days)
    except CloudglueError:
        return list(days), {}
    checks = quality.check_days(data_dir, list(unchanged), built=unchanged) if unchanged else {}
    summaries = {}
    for day, built in unchanged.items():
        listing, _ = built.source
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
    with long_lived_objects():
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
            # Dagster (costly to import, and its instance to open) only once a day needs a run.
            run_span = span_runner(stack, data_dir, options) if to_run else None
            for span in run_spans(to_run, settings.days_per_run()):
                assert run_span is not None
                if reporter:
                    reporter.start_span(span[0], span[-1])
                result, interrupted = run_span(span)
                outcome = span_summaries(span, result)
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
            + (f" ({span_text(left)})" if left else ""),
            logging.WARNING if json_logs() else logging.INFO,
            not_synced=[str(day) for day in left],
        )
        if left:
            command = _sync_command(left, rerun_flags)
            say(f"resume (landed jobs are not fetched again): {command}", resume=command)
    return SyncOutcome(not causes and not interrupted, ordered, interrupted)


def _sync_command(days: Sequence[dt.date], flags: Sequence[str]) -> str:
    """The ``sync`` of ``min(days)..max(days)`` with the user's other flags, to paste."""
    return command_line(["sync", "--from", str(days[0]), "--to", str(days[-1]), *flags])
