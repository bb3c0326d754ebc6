"""Data-quality checks of one day's written partitions, read back from disk with DuckDB.

They check what readers will see (the Parquet files and the raw landing), not the frames the
writer held in memory. The Dagster layer turns each ``CheckOutcome`` into an asset check result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.storage.atomic import atomic_write_bytes
from pipeline.storage.layout import staging_root
from pipeline.storage.raw import Listing, RawStore

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class CheckOutcome:
    table: str
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _partition_glob(data_dir: Path, table: str, day: dt.date) -> str | None:
    part = data_dir / "tables" / table / f"created_date={day.isoformat()}"
    return str(part / "*.parquet") if any(part.glob("*.parquet")) else None


def _rows(con: duckdb.DuckDBPyConnection, glob: str | None, sql: str) -> list[tuple]:
    """Run ``sql`` with ``t`` bound to the partition's files (no files: no rows)."""
    if glob is None:
        return []
    literal = glob.replace("'", "''")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW t AS SELECT * FROM read_parquet('{literal}', "
        "union_by_name=true)"
    )
    return con.execute(sql).fetchall()


def _sample(items: Iterable[Any], n: int = 5) -> list[str]:
    return [str(item) for item in list(items)[:n]]


_CHECKED_TABLES = ("extract_jobs", "segment_entities", "chapters", "shots")
_CACHE_VERSION = "2"


def _cache_key(data_dir: Path, day: dt.date, store: RawStore, listing: Listing | None) -> str:
    """A digest of every input of the checks: the landing (listing and job files) and each
    checked partition's files (name, size, mtime)."""
    digest = hashlib.sha256(f"{_CACHE_VERSION}:{store.fingerprint(day, listing)}".encode())
    for table in _CHECKED_TABLES:
        part = data_dir / "tables" / table / f"created_date={day.isoformat()}"
        for path in sorted(part.glob("*.parquet")):
            st = path.stat()
            digest.update(f"\n{table}/{path.name} {st.st_size} {st.st_mtime_ns}".encode())
    return digest.hexdigest()


def check_day(data_dir: Path, day: dt.date) -> list[CheckOutcome]:
    """Every check for one day's partitions.

    The outcomes are kept under ``<data_dir>/.cache/checks/`` with a digest of their inputs: a
    day whose landing and partitions did not change (a re-sync with nothing new) is not read
    again, which matters as the count check reads every landed job.
    """
    store = RawStore(data_dir)
    listing = store.read_listing(day)
    key = _cache_key(data_dir, day, store, listing)
    cache = data_dir / ".cache" / "checks" / f"created_date={day.isoformat()}.json"
    try:
        cached = json.loads(cache.read_bytes())
        if cached.get("key") == key:
            return [CheckOutcome(**outcome) for outcome in cached["outcomes"]]
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    outcomes = _check_day(data_dir, day, store, listing)
    body = {"key": key, "outcomes": [dataclasses.asdict(o) for o in outcomes]}
    atomic_write_bytes(cache, json.dumps(body).encode(), staging_root(data_dir))
    return outcomes


def _check_day(
    data_dir: Path, day: dt.date, store: RawStore, listing: Listing | None
) -> list[CheckOutcome]:
    listed = listing.jobs if listing else ()
    completed_ids = [job["job_id"] for job in listed if job.get("status") == "completed"]
    # Imported here: a day whose outcomes are cached (a re-sync) needs no DuckDB.
    import duckdb

    con = duckdb.connect()
    try:
        segments = _partition_glob(data_dir, "segment_entities", day)
        counts = dict(_rows(con, segments, "SELECT job_id, count(*) FROM t GROUP BY job_id"))
        # Each job's `total` as landed, from its extract_jobs row: reading it back from the
        # landing parsed every landed job again (~1 s for 1,000 jobs).
        jobs = _partition_glob(data_dir, "extract_jobs", day)
        landed_totals = dict(_rows(con, jobs, "SELECT job_id, total FROM t"))
        totals = {}
        missing_landing = []
        for job_id in completed_ids:
            if store.has_job(day, job_id):
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
            )
        ]
        duplicates = _rows(
            con,
            segments,
            "SELECT job_id, segment_index FROM t GROUP BY ALL HAVING count(*) > 1 LIMIT 5",
        )
        outcomes.append(
            CheckOutcome(
                "segment_entities",
                "job_segment_index_unique",
                not duplicates,
                "(job_id, segment_index) identifies one row.",
                {"duplicate_examples": _sample(duplicates)},
            )
        )
        for table in ("segment_entities", "chapters", "shots"):
            bad = _rows(
                con,
                _partition_glob(data_dir, table, day),
                "SELECT count(*), any_value(job_id) FROM t WHERE start_time IS NULL "
                "OR end_time IS NULL OR NOT (0 <= start_time AND start_time <= end_time)",
            )
            n_bad, example = bad[0] if bad else (0, None)
            outcomes.append(
                CheckOutcome(
                    table,
                    "time_range_valid",
                    n_bad == 0,
                    "0 <= start_time <= end_time on every row (the API sent otherwise).",
                    {"rows_invalid": int(n_bad), "example_job": str(example)},
                )
            )
        problems = _rows(
            con, jobs, "SELECT job_id, problem FROM t WHERE problem IS NOT NULL ORDER BY job_id"
        )
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
        job_ids = dict(_rows(con, jobs, "SELECT job_id, status FROM t"))
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
    finally:
        con.close()
