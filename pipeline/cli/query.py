"""``cloudglue-pipeline query``: SQL with DuckDB over one view per table (needs no Dagster)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import settings
from pipeline.cli.errors import CliError


def view_statements(data_dir: Path | str) -> list[str]:
    """``CREATE VIEW`` per table that has Parquet files (hive ``created_date``, all columns), for
    a local data dir (the duckdb shell reads the files itself)."""
    from pipeline.storage.duck import local_view_sql
    from pipeline.storage.store import open_store
    from pipeline.tables import TABLE_NAMES

    store = open_store(data_dir)
    statements = [local_view_sql(store, table, table, kind="VIEW") for table in TABLE_NAMES]
    return [sql for sql in statements if sql is not None]


def connect(data_dir: Path | str) -> Any:
    """An in-memory DuckDB connection with one view per table of ``data_dir`` (a directory or
    a bucket)."""
    import duckdb

    from pipeline.storage.duck import create_view
    from pipeline.storage.store import open_store, redacted
    from pipeline.tables import TABLE_NAMES

    con = duckdb.connect()
    try:
        store = open_store(data_dir)
        made = [create_view(con, table, store, table, temporary=False) for table in TABLE_NAMES]
    except OSError as exc:
        con.close()
        raise CliError(f"cannot read {redacted(data_dir)}: {exc.strerror or exc}") from None
    if not any(made):
        con.close()
        raise CliError(
            f"no tables under {store.describe()}: run `cloudglue-pipeline sync` (or `demo`) "
            "first, or pass --data-dir / set CLOUDGLUE_DATA_DIR"
        )
    return con


def add_parser(subparsers: argparse._SubParsersAction) -> None:
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
        "--data-dir",
        metavar="DIR",
        help="data dir: a directory or s3://bucket/prefix (CLOUDGLUE_DATA_DIR, else ./data)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
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


def _interactive(data_dir: Path | str) -> int:
    if not isinstance(data_dir, Path):
        raise CliError(
            f"the duckdb shell cannot read {data_dir} without its httpfs extension: pass the SQL "
            '(`cloudglue-pipeline query "SELECT ..."`), or see "Writing to S3" in the README '
            "for the statements to type into DuckDB",
            code=2,
        )
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
