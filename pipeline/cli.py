"""The ``cloudglue-pipeline`` command line: ``sync``, ``demo``, ``query``, ``dev``, ``emulator``.

``sync`` and ``demo`` run the Dagster assets in-process on the instance at DAGSTER_HOME, so the
UI that ``dev`` starts shows their runs; ``query`` needs only DuckDB. Each subcommand registers
itself through an ``_add_<name>(subparsers)`` function that sets ``func``; ``main`` dispatches to
it and turns a :class:`CliError` into its one-line message and exit status."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as dt
import gc
import importlib.resources
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import settings
from pipeline.progress import DaySummary, ProgressReporter, render_summary, reporting

if TYPE_CHECKING:
    from pipeline.cloudglue.client import CloudglueClient

# ---- shared helpers ----------------------------------------------------------------------

DEMO_DATA_DIR = "data/demo"
DEMO_SEED = 42
DEMO_JOBS = 42
DEMO_DAYS = 10
DEMO_API_KEY = "emulator-key"
_DEMO_MARKER = ".cloudglue-demo"
_REPO_ROOT = Path(__file__).resolve().parent.parent


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status (2 usage, 1 anything else)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to ./.dagster_home, created with the packaged dagster.yaml.

    Set in ``os.environ`` too, so in-process runs and ``dagster dev`` share one instance and the
    UI shows the CLI's runs.
    """
    home = settings.dagster_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        initialized = home / ".cloudglue-initialized"
        if not initialized.exists():
            # Imported only here: pipeline.storage brings pyarrow and numpy, which sync_days
            # imports with the garbage collector paused (see _long_lived_objects).
            from pipeline.storage.atomic import file_lock

            # Two commands starting together on a new home would both write dagster.yaml and
            # both create the instance's SQLite tables ("table runs already exists"): once, locked.
            with file_lock(home / ".cloudglue-init.lock"):
                _init_dagster_home(home, initialized)
    except OSError as exc:
        raise CliError(
            f"cannot set up DAGSTER_HOME {home}: {exc.strerror or exc}; "
            "set DAGSTER_HOME to a writable directory"
        ) from None
    os.environ[settings.DAGSTER_HOME_ENV] = str(home)
    return home


def _init_dagster_home(home: Path, marker: Path) -> None:
    """Write the packaged dagster.yaml (unless the user has one) and create the instance's
    storage, then leave ``marker``; the caller holds the home's init lock."""
    import dagster as dg

    from pipeline.storage.atomic import atomic_write_bytes

    if marker.exists():
        return
    config = home / "dagster.yaml"
    if not config.exists():
        packaged = importlib.resources.files("pipeline").joinpath("dagster.yaml")
        atomic_write_bytes(config, packaged.read_bytes(), home / ".tmp")

    with dg.DagsterInstance.from_config(str(home)):
        pass
    marker.touch()


def _check_writable(data_dir: Path) -> None:
    """Fail before any network call when the tables could not be written."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise CliError(
            f"data dir {data_dir} is not writable ({exc.strerror or exc}): "
            f"pass --data-dir or set {settings.DATA_DIR_ENV} to a writable directory"
        ) from None


def _iso_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _positive_number(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def _retries(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _partition_start() -> dt.date:
    """The first day of the daily partitions (CLOUDGLUE_START_DATE, read by the definitions).

    A plain YYYY-MM-DD (what the definitions parse first) is read without importing Dagster, so
    a sync of unchanged days needs no Dagster at all; anything else is left to the definitions.
    """
    text = settings.start_date_text()
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        pass
    try:
        from pipeline.defs.partitions import daily_partitions
    except Exception:
        raise CliError(
            f"{settings.START_DATE_ENV}={text!r} is not a date: set it as YYYY-MM-DD",
            code=2,
        ) from None
    return daily_partitions.start.date()


def check_days(first: dt.date, last: dt.date, today: dt.date, start: dt.date) -> list[dt.date]:
    """The days ``first..last`` (inclusive), or a usage error saying how to fix the range."""
    if start > today:
        # Checked first: the default --from derives from it, and no day could be synced.
        raise CliError(
            f"CLOUDGLUE_START_DATE={start} is in the future (today is {today} UTC): "
            f"set it to {today} or earlier",
            code=2,
        )
    if first > today:
        raise CliError(
            f"--from {first} is in the future (today is {today} UTC): pass a day up to {today}",
            code=2,
        )
    if last > today:
        raise CliError(
            f"--to {last} is in the future (today is {today} UTC): pass --to {today} or omit it",
            code=2,
        )
    if first > last:
        raise CliError(f"--from {first} is after --to {last}: swap them", code=2)
    if first < start:
        raise CliError(
            f"--from {first} is before the first partition {start} (CLOUDGLUE_START_DATE): "
            f"pass --from {start} or later, or set CLOUDGLUE_START_DATE={first}",
            code=2,
        )
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass
class ApiOptions:
    """The flags that configure CloudglueResource; None keeps the resource's default."""

    base_url: str | None = None
    max_concurrency: int | None = None
    timeout_seconds: float | None = None
    max_retries: int | None = None
    max_requests_per_second: float | None = None
    backoff_seconds: float | None = None

    def resource_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def _client(options: ApiOptions) -> CloudglueClient:
    """A client configured as the runs' CloudglueResource is; the key from the environment."""
    from pipeline.cloudglue.client import CloudglueClient

    values = {**settings.CLIENT_DEFAULTS, **options.resource_kwargs()}
    return CloudglueClient(
        base_url=values["base_url"],
        timeout=values["timeout_seconds"],
        max_retries=values["max_retries"],
        max_concurrency=values["max_concurrency"],
        max_requests_per_second=values["max_requests_per_second"],
        backoff_base=values["backoff_seconds"],
    )


def _check_api_config(options: ApiOptions) -> None:
    """Key present and well-formed, base URL and limits valid: all without a network call."""
    from pipeline.cloudglue.errors import ConfigError

    key_env = settings.API_KEY_ENV
    if not os.environ.get(key_env, "").strip():
        raise CliError(
            f"{key_env} is not set: export {key_env}=<your Cloudglue API key> "
            "(`cloudglue-pipeline demo` needs none)"
        )
    try:
        _client(options).close()
    except ConfigError as exc:
        raise CliError(str(exc)) from None


# ---- sync ----------------------------------------------------------------------------------


def _add_sync(subparsers: argparse._SubParsersAction) -> None:
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
    _add_api_flags(p)
    p.add_argument("--quiet", action="store_true", help="print errors only")
    p.add_argument(
        "--force",
        action="store_true",
        help="run every day, also those with nothing new upstream since they were built",
    )
    p.set_defaults(func=_run_sync)


def _add_api_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--base-url",
        metavar="URL",
        help=f"API base URL ({settings.BASE_URL_ENV}, else {settings.DEFAULT_BASE_URL})",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_number(int),
        metavar="N",
        help=f"HTTP requests in flight at most (default {settings.DEFAULT_MAX_CONCURRENCY})",
    )
    p.add_argument(
        "--timeout",
        type=_positive_number(float),
        metavar="SECONDS",
        help=f"seconds per request (default {settings.DEFAULT_TIMEOUT_SECONDS:g})",
    )
    p.add_argument(
        "--max-retries",
        type=_retries,
        metavar="N",
        help=f"retries per request after the first (default {settings.DEFAULT_MAX_RETRIES})",
    )
    p.add_argument(
        "--max-rps",
        type=_positive_number(float),
        metavar="RPS",
        help="cap on requests per second (default: no cap)",
    )


def _api_options(args: argparse.Namespace) -> ApiOptions:
    return ApiOptions(
        base_url=args.base_url,
        max_concurrency=args.concurrency,
        timeout_seconds=args.timeout,
        max_retries=args.max_retries,
        max_requests_per_second=args.max_rps,
    )


def _run_sync(args: argparse.Namespace) -> int:
    today = _utc_today()
    start = _partition_start()
    first = args.first or max(today - dt.timedelta(days=1), start)
    last = args.last or today
    days = check_days(first, last, today, start)
    options = _api_options(args)
    _check_api_config(options)
    data_dir = settings.data_dir(args.data_dir)
    _check_writable(data_dir)
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
    return _client(dataclasses.replace(options, max_retries=0))


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


# ---- query ---------------------------------------------------------------------------------


def view_statements(data_dir: Path) -> list[str]:
    """``CREATE VIEW`` per table that has Parquet files (hive ``created_date``, all columns)."""
    from pipeline.tables import TABLE_NAMES

    statements = []
    for table in TABLE_NAMES:
        root = data_dir / "tables" / table
        if not root.is_dir() or next(root.glob("*/*.parquet"), None) is None:
            continue
        pattern = str(root / "**" / "*.parquet").replace("'", "''")
        statements.append(
            f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
            "hive_partitioning=true, union_by_name=true);"
        )
    return statements


def connect(data_dir: Path) -> Any:
    """An in-memory DuckDB connection with one view per table of ``data_dir``."""
    import duckdb

    statements = view_statements(data_dir)
    if not statements:
        raise CliError(
            f"no tables under {data_dir}: run `cloudglue-pipeline sync` (or `demo`) first, "
            "or pass --data-dir / set CLOUDGLUE_DATA_DIR"
        )
    con = duckdb.connect()
    for statement in statements:
        con.execute(statement)
    return con


def _add_query(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "query",
        help="run SQL over the tables with DuckDB (no SQL: an interactive duckdb shell)",
        description=(
            "Run one SQL statement with DuckDB over views named after the tables (extract_jobs, "
            "video_entities, segment_entities, chapters, shots, entity_values; each has a "
            "created_date column). Without SQL, open the duckdb CLI with the views defined."
        ),
    )
    p.add_argument("sql", nargs="?", help="the SQL to run")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument(
        "--data-dir", metavar="DIR", help="data directory (CLOUDGLUE_DATA_DIR, else ./data)"
    )
    p.set_defaults(func=_run_query)


def _run_query(args: argparse.Namespace) -> int:
    data_dir = settings.data_dir(args.data_dir)
    if args.sql is None:
        return _interactive(data_dir)
    import duckdb

    con = connect(data_dir)
    try:
        cursor = con.execute(args.sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall() if columns else []
    except duckdb.Error as exc:
        raise CliError(f"{type(exc).__name__}: {exc}") from None
    sys.stdout.write(format_rows(columns, rows, args.format))
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _cell(value: Any, width: int = 60) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Rows as an aligned text table (long cells cut), CSV, or a JSON array of objects."""
    if fmt == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        return json.dumps(records, default=_json_default, ensure_ascii=False, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else _csv_value(v) for v in row])
        return out.getvalue()
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    lines = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return value


def _interactive(data_dir: Path) -> int:
    statements = view_statements(data_dir)
    if not statements:
        connect(data_dir)  # raises the "no tables" error
    duckdb_cli = shutil.which("duckdb")
    if duckdb_cli:
        return subprocess.call([duckdb_cli, "-cmd", " ".join(statements)])
    print(
        "error: the duckdb CLI is not on PATH. Install it (https://duckdb.org/docs/installation), "
        'or run SQL with `cloudglue-pipeline query "SELECT ..."`. The views, to paste into any '
        "DuckDB client:",
        file=sys.stderr,
    )
    print("\n".join(statements))
    return 1


# ---- demo ----------------------------------------------------------------------------------

DEMO_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Jobs and segment entities by job status",
        "SELECT j.status, count(DISTINCT j.job_id) AS jobs, count(s.job_id) AS segment_entities\n"
        "FROM extract_jobs j LEFT JOIN segment_entities s USING (job_id)\n"
        "GROUP BY j.status ORDER BY jobs DESC, j.status",
    ),
    (
        "Most common entity paths (array indices collapsed)",
        "SELECT regexp_replace(path, '\\[[0-9]+\\]', '[]', 'g') AS path_pattern,\n"
        "       count(*) AS leaves, count(DISTINCT job_id) AS jobs\n"
        "FROM entity_values GROUP BY path_pattern ORDER BY leaves DESC, path_pattern LIMIT 8",
    ),
    (
        "Chapters per narrative job",
        "SELECT job_id, count(*) AS chapters, round(max(end_time) / 60, 1) AS minutes\n"
        "FROM chapters GROUP BY job_id ORDER BY chapters DESC, job_id LIMIT 5",
    ),
)


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="sync a synthetic dataset from the built-in emulator (no key, no network)",
        description=(
            f"Serve {DEMO_JOBS} synthetic jobs over the {DEMO_DAYS} days ending today (seed "
            f"{DEMO_SEED}) from the emulator on a free loopback port, sync every day into "
            "--data-dir, then print the row counts and a few example DuckDB queries."
        ),
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help=f"output directory (default ./{DEMO_DATA_DIR})"
    )
    p.set_defaults(func=_run_demo)


def _prepare_demo_dir(data_dir: Path) -> None:
    """Start from an empty demo dir; never wipe a directory the demo did not create."""
    marker = data_dir / _DEMO_MARKER
    if data_dir.exists() and any(data_dir.iterdir()) and not marker.exists():
        raise CliError(
            f"{data_dir} is not empty and was not made by the demo: "
            "pass an empty or new --data-dir",
            code=2,
        )
    for sub in ("tables", "raw"):
        shutil.rmtree(data_dir / sub, ignore_errors=True)
    _check_writable(data_dir)
    marker.touch()


def _run_demo(args: argparse.Namespace) -> int:
    from pipeline.emulator import Dataset, EmulatorServer

    # Not CLOUDGLUE_DATA_DIR: that may hold real data, and the demo starts from an empty dir.
    data_dir = Path(args.data_dir or DEMO_DATA_DIR).absolute()
    dataset = Dataset(seed=DEMO_SEED, jobs=DEMO_JOBS, days=DEMO_DAYS)
    days = dataset.days()
    check_days(days[0], days[-1], _utc_today(), _partition_start())
    _prepare_demo_dir(data_dir)
    home = ensure_dagster_home()
    # The emulator's key, not a secret; it still reaches Dagster only through EnvVar.
    os.environ[settings.API_KEY_ENV] = DEMO_API_KEY
    print(
        f"Emulator: {DEMO_JOBS} jobs over {days[0]}..{days[-1]} (seed {DEMO_SEED}); "
        f"writing {data_dir}",
        flush=True,
    )
    with EmulatorServer(dataset, api_key=DEMO_API_KEY) as server:
        ok, _ = sync_days(days, data_dir, ApiOptions(base_url=server.base_url, max_retries=1))
    if not ok:
        return 1
    con = connect(data_dir)
    from pipeline.tables import TABLE_NAMES

    present = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    counts = [
        (t, con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] if t in present else 0)
        for t in TABLE_NAMES
    ]
    print("\nRows per table:")
    print(format_rows(["table", "rows"], counts, "table"), end="")
    for title, sql in DEMO_QUERIES:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description]
        print(f"\n{title}:\n{sql};\n")
        print(format_rows(columns, cursor.fetchall(), "table"), end="")
    rel = os.path.relpath(data_dir)
    print(
        f"""
Query it yourself:
  cloudglue-pipeline query --data-dir {rel} "SELECT * FROM segment_entities LIMIT 5"
  python -c "import pipeline; print(pipeline.read_table('chapters', '{rel}'))"
Open the Dagster UI on the same runs and data (`cloudglue-pipeline dev` works too), then
http://127.0.0.1:3000:
  DAGSTER_HOME={home} CLOUDGLUE_DATA_DIR={data_dir} make dev
To re-run days from the UI, serve the same data in another terminal first:
  cloudglue-pipeline emulator --seed {DEMO_SEED} --jobs {DEMO_JOBS} --days {DEMO_DAYS} --port 8765
and add CLOUDGLUE_API_KEY={DEMO_API_KEY} CLOUDGLUE_BASE_URL=http://127.0.0.1:8765/v1 to make dev."""
    )
    return 0


# ---- dev -----------------------------------------------------------------------------------


def _add_dev(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dev",
        help="run the Dagster UI and daemon (`dagster dev`) on DAGSTER_HOME",
        description=(
            "Run `dagster dev -w workspace.yaml` with DAGSTER_HOME defaulting to ./.dagster_home "
            "(the instance `sync` and `demo` use). Arguments after `--` go to `dagster dev`."
        ),
    )
    p.add_argument("dagster_args", nargs=argparse.REMAINDER, help="e.g. -- --port 3001")
    p.set_defaults(func=_run_dev)


def dev_command(extra: Sequence[str] = ()) -> list[str]:
    """The ``dagster dev`` command line: the repo's workspace.yaml (cwd first), else the module."""
    dagster = Path(sys.executable).with_name("dagster")
    exe = str(dagster) if dagster.exists() else shutil.which("dagster") or "dagster"
    for candidate in (Path.cwd() / "workspace.yaml", _REPO_ROOT / "workspace.yaml"):
        if candidate.is_file():
            target = ["-w", str(candidate)]
            break
    else:
        target = ["-m", "pipeline.definitions"]
    extra = list(extra)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return [exe, "dev", *target, *extra]


def _run_dev(args: argparse.Namespace) -> int:
    home = ensure_dagster_home()
    command = dev_command(args.dagster_args)
    print(f"DAGSTER_HOME={home}\n$ {' '.join(command)}", file=sys.stderr, flush=True)
    try:
        os.execv(command[0], command)
    except OSError as exc:
        raise CliError(
            f"cannot run {command[0]} ({exc.strerror or exc}): reinstall with `make dev`"
        ) from None


# ---- emulator ------------------------------------------------------------------------------

_FAULT_HELP = """\
--fault NAME=VALUE (repeatable) configures FaultConfig; every rate is the share (0..1) of
distinct request URLs hit, and a hit URL fails for its first `burst` attempts, then succeeds:
  429=R / rate_limit=R        answer 429 {"error": ...}
  5xx=R / server_error=R      answer 500, 502 (HTML body) or 503
  drop=R                      close the connection without a response
  slow=R                      answer after slow-seconds (default 2)
  truncate=R                  broken body (see truncate-style)
  total=R / changing_total=R  pages with offset>0 report a larger `total`
  burst=N                     failing attempts per hit URL (default 1)
  retry-after=seconds|none|http-date   Retry-After header style of 429s (default seconds)
  retry-after-seconds=N       delay announced by Retry-After (default 1)
  slow-seconds=S              delay of slow answers
  truncate-style=content-length|invalid-json|mixed (default mixed)
  seed=N                      which URLs are hit (default 0)
example: --fault 429=0.1 --fault 5xx=0.05 --fault burst=2 --fault retry-after=http-date
"""


def _add_emulator(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "emulator",
        help="serve a synthetic Cloudglue API in the foreground",
        description="Serve a deterministic synthetic Cloudglue API until interrupted.",
        epilog=_FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port, 0 for any free (default 8765)")
    p.add_argument("--jobs", type=int, default=200, help="number of extract jobs (default 200)")
    p.add_argument("--days", type=int, default=14, help="UTC days the jobs span (default 14)")
    p.add_argument("--seed", type=int, default=7, help="dataset seed (default 7)")
    p.add_argument(
        "--end-date",
        type=dt.date.fromisoformat,
        default=None,
        help="last day YYYY-MM-DD (default today, UTC)",
    )
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every response")
    p.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE", help="see below")
    p.add_argument("--api-key", default="emulator-key", help="accepted bearer key")
    p.add_argument(
        "--mean-segments",
        type=float,
        default=None,
        help="mean segment entities per job (total is about jobs * mean)",
    )
    p.add_argument("--hostile", action="store_true", help="add jobs that break the spec")
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="INFO logs one line per request (default); WARNING keeps benchmarks quiet",
    )
    p.set_defaults(func=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    """Why foreground: the demo and manual testing point a client at the printed URL."""
    from pipeline.emulator import Dataset, EmulatorServer, FaultConfig

    try:
        faults = FaultConfig.from_specs(args.fault)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dataset = Dataset(
        seed=args.seed,
        jobs=args.jobs,
        days=args.days,
        end_date=args.end_date,
        mean_segments=args.mean_segments,
        hostile=args.hostile,
    )
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    server = EmulatorServer(
        dataset,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        faults=faults,
        latency_ms=args.latency_ms,
    )
    print(server.base_url, flush=True)
    try:
        server.start()
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudglue-pipeline",
        description="Land Cloudglue extraction results as partitioned Parquet.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_sync(subparsers)
    _add_demo(subparsers)
    _add_query(subparsers)
    _add_dev(subparsers)
    _add_emulator(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cloudglue-pipeline``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
