"""``cloudglue-pipeline demo``: sync a synthetic dataset served by the built-in emulator, then show
the row counts and a few example queries."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from pipeline import settings
from pipeline.cli.api_options import ApiOptions
from pipeline.cli.common import (
    check_days,
    check_writable,
    ensure_dagster_home,
    partition_start,
    utc_today,
)
from pipeline.cli.errors import CliError
from pipeline.cli.query import connect, format_rows
from pipeline.cli.sync_days import sync_days

DEMO_DATA_DIR = "data/demo"
DEMO_SEED = 42
DEMO_JOBS = 42
DEMO_DAYS = 10
DEMO_API_KEY = "emulator-key"
_DEMO_MARKER = ".cloudglue-demo"


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


def add_parser(subparsers: argparse._SubParsersAction) -> None:
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
    p.add_argument(
        "--webhooks",
        action="store_true",
        help="then complete a job in the emulator and show it reach the tables by its webhook",
    )
    p.set_defaults(func=_run)


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
    check_writable(data_dir)
    marker.touch()


def _run(args: argparse.Namespace) -> int:
    from pipeline.emulator import Dataset, EmulatorServer

    # Not CLOUDGLUE_DATA_DIR: that may hold real data, and the demo starts from an empty dir.
    data_dir = Path(args.data_dir or DEMO_DATA_DIR).absolute()
    dataset = Dataset(seed=DEMO_SEED, jobs=DEMO_JOBS, days=DEMO_DAYS)
    days = dataset.days()
    check_days(days[0], days[-1], utc_today(), partition_start())
    _prepare_demo_dir(data_dir)
    home = ensure_dagster_home()
    # Partitions from the demo's first day: the UI shows its 10 days, not the default's hundreds.
    os.environ[settings.START_DATE_ENV] = days[0].isoformat()
    # The emulator's key, not a secret; it still reaches Dagster only through EnvVar.
    os.environ[settings.API_KEY_ENV] = DEMO_API_KEY
    print(
        f"Emulator: {DEMO_JOBS} jobs over {days[0]}..{days[-1]} (seed {DEMO_SEED}); "
        f"writing {data_dir}",
        flush=True,
    )
    with EmulatorServer(dataset, api_key=DEMO_API_KEY) as server:
        options = ApiOptions(base_url=server.base_url, max_retries=1)
        ok = sync_days(days, data_dir, options).ok
        if ok and args.webhooks:
            from pipeline.cli.webhook_demo import show_webhooks

            ok = show_webhooks(server, data_dir, options)
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
    python, cli = pasteable_commands()
    read_chapters = f'import pipeline; print(pipeline.read_table("chapters", {json.dumps(rel)}))'
    print(
        f"""
Query it yourself:
  {cli} query --data-dir {shlex.quote(rel)} "SELECT * FROM segment_entities LIMIT 5"
  {python} -c {shlex.quote(read_chapters)}
Open the Dagster UI on the same runs and data (`{cli} dev` works too), then
http://127.0.0.1:3000:
  DAGSTER_HOME={home} CLOUDGLUE_DATA_DIR={data_dir} CLOUDGLUE_START_DATE={days[0]} make dev
To re-run days from the UI, serve the same data in another terminal first:
  {cli} emulator --seed {DEMO_SEED} --jobs {DEMO_JOBS} --days {DEMO_DAYS} --port 8765
and add CLOUDGLUE_API_KEY={DEMO_API_KEY} CLOUDGLUE_BASE_URL=http://127.0.0.1:8765/v1 to make dev."""
    )
    return 0


def pasteable_commands() -> tuple[str, str]:
    """The running interpreter and its ``cloudglue-pipeline``, as a shell in the current
    directory runs them without an activated venv: relative when they are under it
    (``.venv/bin/python``), else absolute. The interpreter's path is not resolved: a venv's
    ``python`` is a symlink to one that has none of the venv's packages."""
    python = Path(sys.executable)
    script = python.with_name("cloudglue-pipeline")

    def shown(path: Path) -> str:
        rel = os.path.relpath(path)
        return shlex.quote(path.as_posix() if rel.startswith("..") else rel)

    cli = shown(script) if script.exists() else f"{shown(python)} -m pipeline.cli"
    return shown(python), cli
