"""Data-quality checks of one day's written partitions, read back from the data dir with DuckDB.

They check what readers will see (the Parquet files and the raw landing), not the frames the
writer held in memory. The Dagster layer turns each ``CheckOutcome`` into an asset check result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.storage.duck import create_view
from pipeline.storage.layout import (
    check_cache_key,
    is_parquet,
    job_file_name,
    partition_name,
    partition_prefix,
    table_prefix,
)
from pipeline.storage.raw import Listing, RawStore
from pipeline.storage.store import FileInfo, Store, open_store

if TYPE_CHECKING:
    import duckdb

    from pipeline.storage.results import DayWriteResult


@dataclass(frozen=True)
class CheckOutcome:
    table: str
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


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


_CHECKED_TABLES = ("extract_jobs", "segment_entities", "chapters", "shots")
_CACHE_VERSION = "2"


@dataclass(frozen=True)
class _DayInputs:
    """What a day's checks read, listed once: its landing and its checked partitions' files."""

    listing: Listing | None
    landed: dict[str, FileInfo]
    parts: dict[str, dict[str, FileInfo]]

    def cache_key(self, store: RawStore, day: dt.date) -> str:
        """A digest of every input of the checks: the landing (listing and job files) and each
        checked partition's files (name, size, version)."""
        fingerprint = store.fingerprint(day, self.listing, self.landed)
        digest = hashlib.sha256(f"{_CACHE_VERSION}:{fingerprint}".encode())
        for table in _CHECKED_TABLES:
            for name, info in sorted(self.parts[table].items()):
                digest.update(f"\n{table}/{name} {info.size} {info.version}".encode())
        return digest.hexdigest()


def _inputs(store: RawStore, day: dt.date) -> _DayInputs:
    parts = {
        table: {
            name: info
            for name, info in store.store.list_files(partition_prefix(table, day)).items()
            if is_parquet(name)
        }
        for table in _CHECKED_TABLES
    }
    return _DayInputs(store.read_listing(day), store.landed(day), parts)


def check_day(data_dir: str | os.PathLike[str] | Store, day: dt.date) -> list[CheckOutcome]:
    """Every check for one day's partitions (see :func:`check_days`)."""
    return check_days(data_dir, [day])[day]


def _known_inputs(result: DayWriteResult | None) -> _DayInputs | None:
    """A day's inputs as the result of its build (or of finding it built) knew them."""
    if result is None or result.source is None:
        return None
    parts = {table: result.tables[table].live_files for table in _CHECKED_TABLES}
    if any(files is None for files in parts.values()):
        return None
    listing, landed = result.source
    return _DayInputs(listing, landed, parts)  # type: ignore[arg-type]


def check_days(
    data_dir: str | os.PathLike[str] | Store,
    days: Iterable[dt.date],
    *,
    built: Mapping[dt.date, DayWriteResult] | None = None,
) -> dict[dt.date, list[CheckOutcome]]:
    """Every check for each day's partitions, read back in one DuckDB pass over the days.

    The outcomes are kept under ``.cache/checks/`` in the data dir with a digest of their inputs:
    a day whose landing and partitions did not change (a re-sync with nothing new) is not read
    again. ``built``: the days' build results that know their inputs (``build_day``'s writes,
    ``unchanged_build``'s finds): nothing is listed again for them, and a day just written has
    no outcomes kept yet.
    """
    built = built or {}
    files = open_store(data_dir)
    store = RawStore(files)
    outcomes: dict[dt.date, list[CheckOutcome]] = {}
    todo: dict[dt.date, tuple[_DayInputs, str]] = {}

    def cached(day: dt.date) -> tuple[dt.date, _DayInputs, str, list[CheckOutcome] | None]:
        result = built.get(day)
        known = _known_inputs(result)
        inputs = known or _inputs(store, day)
        key = inputs.cache_key(store, day)
        if known is not None and result is not None and result.written:
            return day, inputs, key, None
        try:
            body = json.loads(files.read_bytes(check_cache_key(day)))
            if body.get("key") == key:
                return day, inputs, key, [CheckOutcome(**o) for o in body["outcomes"]]
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        return day, inputs, key, None

    for day, inputs, key, found in files.map(cached, list(days)):
        if found is not None:
            outcomes[day] = found
        else:
            todo[day] = (inputs, key)
    if todo:
        checked = _check_days(store, {day: inputs for day, (inputs, _) in todo.items()})

        def keep(day: dt.date) -> None:
            body = {"key": todo[day][1], "outcomes": [dataclasses.asdict(o) for o in checked[day]]}
            files.write_bytes(check_cache_key(day), json.dumps(body).encode())

        files.map(keep, list(todo))
        outcomes.update(checked)
    return outcomes


_TIME_TABLES = ("segment_entities", "chapters", "shots")
_BAD_TIME = (
    "start_time IS NULL OR end_time IS NULL OR NOT (0 <= start_time AND start_time <= end_time)"
)


def _check_days(
    store: RawStore, inputs: dict[dt.date, _DayInputs]
) -> dict[dt.date, list[CheckOutcome]]:
    # Imported here: days whose outcomes are cached (a re-sync) need no DuckDB.
    import duckdb

    days = list(inputs)
    con = duckdb.connect()
    try:
        have = {
            table: _view(con, store.store, table, {d: inputs[d].parts[table] for d in days})
            for table in _CHECKED_TABLES
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
        jobs = rows(
            "extract_jobs", "SELECT created_date, job_id, total, status, problem FROM extract_jobs"
        )
        bad_times = {
            table: rows(
                table,
                f"SELECT created_date, count(*), any_value(job_id) FROM {table} "
                f"WHERE {_BAD_TIME} GROUP BY ALL",
            )
            for table in _TIME_TABLES
        }
        return {
            day: _outcomes(
                day,
                inputs[day],
                counts.get(day.isoformat(), []),
                duplicates.get(day.isoformat(), []),
                jobs.get(day.isoformat(), []),
                {t: bad_times[t].get(day.isoformat(), []) for t in _TIME_TABLES},
            )
            for day in days
        }
    finally:
        con.close()


def _outcomes(
    day: dt.date,
    inputs: _DayInputs,
    counts_rows: list[tuple],
    duplicates: list[tuple],
    job_rows: list[tuple],
    bad_times: dict[str, list[tuple]],
) -> list[CheckOutcome]:
    """One day's outcomes from its rows of the batch queries and its landing."""
    listed = inputs.listing.jobs if inputs.listing else ()
    completed_ids = [job["job_id"] for job in listed if job.get("status") == "completed"]
    counts = dict(counts_rows)
    # Each job's `total` as landed, from its extract_jobs row: reading it back from the landing
    # parsed every landed job again (~1 s for 1,000 jobs).
    landed_totals = {job_id: total for job_id, total, _status, _problem in job_rows}
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
        CheckOutcome(
            "segment_entities",
            "segment_count_matches_total",
            not mismatched,
            "Every completed job has exactly `total` segment entity rows.",
            {
                "jobs_checked": len(totals),
                "jobs_mismatched": len(mismatched),
                "examples (job: total, rows)": _sample(mismatched.items()),
            },
        ),
        CheckOutcome(
            "segment_entities",
            "job_segment_index_unique",
            not duplicates,
            "(job_id, segment_index) identifies one row.",
            {"duplicate_examples": _sample(sorted(duplicates))},
        ),
    ]
    for table in _TIME_TABLES:
        n_bad, example = bad_times[table][0] if bad_times[table] else (0, None)
        outcomes.append(
            CheckOutcome(
                table,
                "time_range_valid",
                n_bad == 0,
                "0 <= start_time <= end_time on every row (the API sent otherwise).",
                {"rows_invalid": int(n_bad), "example_job": str(example)},
            )
        )
    problems = sorted((j, p) for j, _total, _status, p in job_rows if p is not None)
    outcomes.append(
        CheckOutcome(
            "extract_jobs",
            "jobs_described_consistently",
            not problems,
            "No completed job contradicts itself (data, total, segment entities).",
            {
                "jobs_with_problems": len(problems),
                "examples (job: problem)": _sample(f"{j}: {p}" for j, p in problems),
            },
        )
    )
    job_ids = {job_id for job_id, _total, _status, _problem in job_rows}
    absent = [j for j in completed_ids if j not in job_ids]
    without_rows = [j for j in completed_ids if j in job_ids and j not in totals]
    outcomes.append(
        CheckOutcome(
            "extract_jobs",
            "completed_jobs_have_rows",
            not absent and not without_rows and not missing_landing,
            "Every completed job listed for the day is in extract_jobs and was landed.",
            {
                "completed_jobs": len(completed_ids),
                "absent_from_extract_jobs": _sample(absent),
                "not_landed": _sample(missing_landing + without_rows),
            },
        )
    )
    return outcomes
