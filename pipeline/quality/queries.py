"""The checks of a batch of days, in one DuckDB pass over their partitions: they check what
readers will see (the Parquet files and the raw landing), not what the writer held in memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pipeline.quality.cache import DayInputs
from pipeline.quality.registry import CHECKED_TABLES, TIME_TABLES, CheckOutcome, outcome
from pipeline.storage.duck import create_view
from pipeline.storage.layout import job_file_name, partition_name, table_prefix
from pipeline.storage.raw import RawStore
from pipeline.storage.store import FileInfo, Store

if TYPE_CHECKING:
    import duckdb


def _view(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    table: str,
    files: dict[dt.date, dict[str, FileInfo]],
) -> bool:
    """Bind ``table`` to the days' partition ``files`` (``created_date`` as text); False when
    there are none."""
    _, root = store.parquet_source(table_prefix(table))
    paths = [f"{root}/{partition_name(d)}/{name}" for d, names in files.items() for name in names]
    if not create_view(con, f"{table}_files", store, table, paths=sorted(paths)):
        return False
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * REPLACE "
        f"(CAST(created_date AS VARCHAR) AS created_date) FROM {table}_files"
    )
    return True


def _by_day(rows: Iterable[tuple]) -> dict[str, list[tuple]]:
    """Rows whose first value is the day, grouped by it (the day dropped)."""
    out: dict[str, list[tuple]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row[1:])
    return out


def _sample(items: Iterable[Any], n: int = 5) -> list[str]:
    return [str(item) for item in list(items)[:n]]


_BAD_TIME = (
    "start_time IS NULL OR end_time IS NULL OR NOT (0 <= start_time AND start_time <= end_time)"
)


def run_checks(
    store: RawStore, inputs: dict[dt.date, DayInputs]
) -> dict[dt.date, list[CheckOutcome]]:
    # Imported here: days whose outcomes are cached (a re-sync) need no DuckDB.
    import duckdb

    days = list(inputs)
    con = duckdb.connect()
    try:
        have = {
            table: _view(con, store.store, table, {d: inputs[d].parts[table] for d in days})
            for table in CHECKED_TABLES
        }

        def rows(table: str, sql: str) -> dict[str, list[tuple]]:
            return _by_day(con.execute(sql).fetchall()) if have[table] else {}

        counts = rows(
            "segment_entities",
            "SELECT created_date, job_id, count(*) FROM segment_entities GROUP BY ALL",
        )
        duplicates = rows(
            "segment_entities",
            "SELECT created_date, job_id, segment_index FROM segment_entities GROUP BY ALL "
            "HAVING count(*) > 1",
        )
        jobs = rows("extract_jobs", "SELECT created_date, job_id, total, problem FROM extract_jobs")
        bad_times = {
            table: rows(
                table,
                f"SELECT created_date, count(*), any_value(job_id) FROM {table} "
                f"WHERE {_BAD_TIME} GROUP BY ALL",
            )
            for table in TIME_TABLES
        }
        return {
            day: _outcomes(
                day,
                inputs[day],
                counts.get(day.isoformat(), []),
                duplicates.get(day.isoformat(), []),
                jobs.get(day.isoformat(), []),
                {t: bad_times[t].get(day.isoformat(), []) for t in TIME_TABLES},
            )
            for day in days
        }
    finally:
        con.close()


def _outcomes(
    day: dt.date,
    inputs: DayInputs,
    counts_rows: list[tuple],
    duplicates: list[tuple],
    job_rows: list[tuple],
    bad_times: dict[str, list[tuple]],
) -> list[CheckOutcome]:
    """One day's outcomes from its rows of the batch queries and its landing."""
    listed = inputs.listing.jobs if inputs.listing else ()
    completed_ids = [job["job_id"] for job in listed if job.get("status") == "completed"]
    counts = dict(counts_rows)
    # Each job's `total` as landed, from its extract_jobs row (the landing would be parsed again).
    landed_totals = {job_id: total for job_id, total, _problem in job_rows}
    totals = {}
    missing_landing = []
    for job_id in completed_ids:
        if job_file_name(job_id) in inputs.landed:
            totals[job_id] = landed_totals.get(job_id)
        else:
            missing_landing.append(job_id)
    mismatched = {
        job_id: (total, counts.get(job_id, 0))
        for job_id, total in totals.items()
        if total != counts.get(job_id, 0)
    }
    outcomes = [
        outcome(
            "segment_entities",
            "segment_count_matches_total",
            not mismatched,
            {
                "jobs_checked": len(totals),
                "jobs_mismatched": len(mismatched),
                "examples (job: total, rows)": _sample(mismatched.items()),
            },
        ),
        outcome(
            "segment_entities",
            "job_segment_index_unique",
            not duplicates,
            {"duplicate_examples": _sample(sorted(duplicates))},
        ),
    ]
    for table in TIME_TABLES:
        n_bad, example = bad_times[table][0] if bad_times[table] else (0, None)
        outcomes.append(
            outcome(
                table,
                "time_range_valid",
                n_bad == 0,
                {"rows_invalid": int(n_bad), "example_job": str(example)},
            )
        )
    problems = sorted((j, p) for j, _total, p in job_rows if p is not None)
    outcomes.append(
        outcome(
            "extract_jobs",
            "jobs_described_consistently",
            not problems,
            {
                "jobs_with_problems": len(problems),
                "examples (job: problem)": _sample(f"{j}: {p}" for j, p in problems),
            },
        )
    )
    job_ids = {job_id for job_id, _total, _problem in job_rows}
    absent = [j for j in completed_ids if j not in job_ids]
    without_rows = [j for j in completed_ids if j in job_ids and j not in totals]
    outcomes.append(
        outcome(
            "extract_jobs",
            "completed_jobs_have_rows",
            not absent and not without_rows and not missing_landing,
            {
                "completed_jobs": len(completed_ids),
                "absent_from_extract_jobs": _sample(absent),
                "not_landed": _sample(missing_landing + without_rows),
            },
        )
    )
    return outcomes
