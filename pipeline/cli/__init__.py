"""The ``cloudglue-pipeline`` command line: ``sync``, ``status``, ``demo``, ``query``, ``dev``,
``emulator``, ``webhooks``.

``sync`` and ``demo`` run the Dagster assets in-process on the instance at DAGSTER_HOME, so the
UI that ``dev`` starts shows their runs; ``query`` needs only DuckDB. Each command's module
registers its subparser through ``add_parser(subparsers)``, which sets ``func``; ``main``
dispatches to it and turns a :class:`CliError` into its one-line message and exit status."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from pipeline.cli import demo, dev, emulator, query, status, sync, webhooks
from pipeline.cli.api_options import ApiOptions
from pipeline.cli.common import check_days, ensure_dagster_home
from pipeline.cli.demo import DEMO_DAYS, DEMO_JOBS, DEMO_SEED
from pipeline.cli.dev import dev_command
from pipeline.cli.errors import CliError
from pipeline.cli.logs import say
from pipeline.cli.query import connect, format_rows, view_statements
from pipeline.cli.span_runs import RUN_CONFIG, failure_causes
from pipeline.cli.sync_days import sync_days

__all__ = [
    "DEMO_DAYS",
    "DEMO_JOBS",
    "DEMO_SEED",
    "RUN_CONFIG",
    "ApiOptions",
    "CliError",
    "build_parser",
    "check_days",
    "connect",
    "dev_command",
    "ensure_dagster_home",
    "failure_causes",
    "format_rows",
    "main",
    "sync_days",
    "view_statements",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudglue-pipeline",
        description="Land Cloudglue extraction results as partitioned Parquet.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in (sync, status, demo, query, dev, emulator, webhooks):
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cloudglue-pipeline``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        say(str(exc), logging.ERROR)
        return exc.code
    except KeyboardInterrupt:
        say("interrupted")
        return 130
