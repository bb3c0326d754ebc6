"""``cloudglue-pipeline sync``: materialize UTC days through the Dagster assets, in-process on the
DAGSTER_HOME instance, in as few ranged runs as the backfill policy allows, skipping days with
nothing new upstream."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

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
    given_flags,
    iso_day,
    partition_start,
    say_if_new_in_working_dir,
    utc_today,
)
from pipeline.cli.logs import add_log_flags, configure_logging, say
from pipeline.cli.sync_days import sync_days
from pipeline.progress import by_status_text, span_text


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
        say(f"listing {span_text(days)} failed: {exc}", logging.ERROR)
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
