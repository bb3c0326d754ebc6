"""``cloudglue-pipeline status``: per day, what the data dir holds (jobs landed, tables built and
their rows) and, from one listing, which days are stale upstream; reads, never writes."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline import settings
from pipeline.cli.api_options import add_api_flags, api_options, check_api_config, client_for
from pipeline.cli.common import day_span, iso_day
from pipeline.cli.errors import CliError
from pipeline.cli.logs import add_log_flags, configure_logging, say
from pipeline.progress import by_status_text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "status",
        help="days landed and built, jobs and rows per day, and what is stale upstream",
        description=(
            "One row per day: the jobs landed (by status), whether the tables are built from "
            "that landing, each table's rows, and whether the API now lists something the day "
            "lacks (one listing of the range, the test `sync` uses for `(unchanged)`; needs "
            "CLOUDGLUE_API_KEY, or pass --offline). Default days: every day landed in the data "
            "dir. Writes nothing."
        ),
    )
    p.add_argument("--from", dest="first", type=iso_day, metavar="DATE", help="first day")
    p.add_argument("--to", dest="last", type=iso_day, metavar="DATE", help="last day")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a directory or s3://bucket/prefix (CLOUDGLUE_DATA_DIR, else ./data)",
    )
    p.add_argument(
        "--offline", action="store_true", help="no listing: what the data dir holds only"
    )
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_api_flags(p)
    add_log_flags(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pipeline.cli.query import format_rows
    from pipeline.storage.raw import RawStore
    from pipeline.storage.store import redacted
    from pipeline.sync import day_states

    configure_logging(args)
    data_dir = settings.data_dir(args.data_dir)
    landed = sorted(RawStore(data_dir).landed_days())
    first = args.first or (landed[0] if landed else None)
    last = args.last or (landed[-1] if landed else None)
    if first is None or last is None:
        say(f"no days landed in {redacted(data_dir)}")
        return 0
    days = day_span(first, last)
    if args.offline:
        states = day_states(data_dir, days)
    else:
        options = api_options(args)
        try:
            check_api_config(options)
        except CliError as exc:
            raise CliError(f"{exc}; or pass --offline to skip the upstream comparison") from None
        from pipeline.cloudglue.errors import CloudglueError

        try:
            with client_for(options) as client:
                states = day_states(data_dir, days, client)
        except CloudglueError as exc:
            raise CliError(
                f"listing {first}..{last} failed: {exc}; pass --offline to skip it"
            ) from None
    columns, rows = status_rows(states)
    sys.stdout.write(format_rows(columns, rows, args.format, null=NOT_BUILT))
    return 0


# A table's rows on a day not built, in the text table (CSV leaves the cell empty, JSON has null).
NOT_BUILT = "-"


def status_rows(states: list[Any]) -> tuple[list[str], list[list[Any]]]:
    """The status table: a row per day, the tables' rows in TABLE_NAMES order (None: not built)."""
    from pipeline.tables import TABLE_NAMES

    columns = ["day", "jobs", "by status", "landed", "built", *TABLE_NAMES, "upstream"]
    rows = []
    for s in states:
        built = s.built
        rows.append(
            [
                str(s.day),
                sum(s.landed_by_status.values()),
                by_status_text(s.landed_by_status),
                s.landed_jobs,
                "yes" if built else "no",
                *(built.tables[name].rows if built else None for name in TABLE_NAMES),
                _upstream(s),
            ]
        )
    return columns, rows


def _upstream(state: Any) -> str:
    if state.stale is None:
        return "not checked"
    if not state.stale:
        return "unchanged"
    listed = sum((state.upstream_by_status or {}).values())
    return f"stale: {listed} listed, {state.to_fetch} to fetch"
