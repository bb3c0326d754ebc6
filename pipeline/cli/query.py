"""``cloudglue-pipeline query``: SQL with DuckDB over one view per table (needs no Dagster)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import settings
from pipeline.cli.errors import CliError

# Rows `query` prints unless told otherwise (a result may have millions), and how to get more.
DEFAULT_MAX_ROWS = 1_000
_MORE_ROWS = "--max-rows N for more, 0 for all"


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
    p.add_argument(
        "--format",
        choices=["table", "csv", "json", "jsonl"],
        default="table",
        help="table (default), csv, a JSON array, or JSON lines (one object per row); in JSON "
        "a NaN or infinite number is null",
    )
    p.add_argument(
        "--max-rows",
        type=_row_limit,
        default=DEFAULT_MAX_ROWS,
        metavar="N",
        help=f"print at most N rows and how many there are (default {DEFAULT_MAX_ROWS:,}; 0: all)",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="data dir: a directory or s3://bucket/prefix (CLOUDGLUE_DATA_DIR, else ./data)",
    )
    p.set_defaults(func=_run)


def _row_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row count (0 or more; 0: all)")
    return value


def run_sql(con: Any, sql: str, max_rows: int) -> tuple[list[str], list[tuple], int]:
    """``sql``'s columns, its first ``max_rows`` rows (0: all) and how many rows it has. Only a
    result longer than ``max_rows`` is counted, by a ``count(*)`` over it."""
    relation = con.sql(sql)  # a statement that returns no rows is run here, and is None
    if relation is None:
        return [], [], 0
    columns = list(relation.columns)
    if not max_rows:
        rows = relation.fetchall()
        return columns, rows, len(rows)
    rows = relation.limit(max_rows + 1).fetchall()
    if len(rows) <= max_rows:
        return columns, rows, len(rows)
    ((total,),) = relation.aggregate("count(*)").fetchall()
    return columns, rows[:max_rows], total


def _run(args: argparse.Namespace) -> int:
    data_dir = settings.data_dir(args.data_dir)
    if args.sql is None:
        return _interactive(data_dir)
    import duckdb

    con = connect(data_dir)
    try:
        columns, rows, total = run_sql(con, args.sql, args.max_rows)
    except duckdb.Error as exc:
        raise CliError(f"{type(exc).__name__}: {exc}") from None
    sys.stdout.write(format_rows(columns, rows, args.format, total=total))
    if total > len(rows) and args.format != "table":  # the table says it in its last line
        print(f"note: {len(rows):,} of {total:,} rows written ({_MORE_ROWS})", file=sys.stderr)
    return 0


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (JSON has none) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _cell(value: Any, width: int = 60, null: str = "NULL") -> str:
    text = null if value is None else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(
        _finite(value), default=_json_default, ensure_ascii=False, allow_nan=False, indent=indent
    )


def format_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    *,
    total: int | None = None,
    null: str = "NULL",
) -> str:
    """Rows as an aligned text table (long cells cut, None shown as ``null``; its last line
    counts them, and says when they are the first of ``total``), CSV (None empty), a JSON array
    of objects, or JSON lines (None null)."""
    if fmt in ("json", "jsonl"):
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        if fmt == "jsonl":
            return "".join(_json(record) + "\n" for record in records)
        return _json(records, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else _csv_value(v) for v in row])
        return out.getvalue()
    cells = [[_cell(v, null=null) for v in row] for row in rows]
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
    if total is not None and total > len(rows):
        lines.append(f"({len(rows):,} of {total:,} rows shown; {_MORE_ROWS})")
    else:
        lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


def _csv_value(value: Any) -> Any:
    return _json(value) if isinstance(value, dict | list) else value


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
        "The duckdb CLI is not on PATH (https://duckdb.org/docs/installation); run SQL with "
        '`cloudglue-pipeline query "SELECT ..."`, or paste these views into any DuckDB client:',
        file=sys.stderr,
    )
    print("\n".join(statements))
    return 0
