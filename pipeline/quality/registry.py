"""Every data-quality check, once: the Dagster check specs and the outcomes both come from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    table: str
    name: str
    description: str
    # Time ranges and inconsistent jobs come from the API as they are, landed as far as they go:
    # worth a warning, not a red run.
    warn_only: bool = False


# The tables the checks read (their partitions' files are the checks' inputs), and those whose
# rows carry a time range.
CHECKED_TABLES = ("extract_jobs", "segment_entities", "chapters", "shots")
TIME_TABLES = ("segment_entities", "chapters", "shots")

CHECKS: tuple[Check, ...] = (
    Check(
        "segment_entities",
        "segment_count_matches_total",
        "Every completed job has exactly `total` segment entity rows.",
    ),
    Check(
        "segment_entities",
        "job_segment_index_unique",
        "(job_id, segment_index) identifies one row.",
    ),
    *(
        Check(
            table,
            "time_range_valid",
            "0 <= start_time <= end_time on every row (rows that break it are kept as sent).",
            warn_only=True,
        )
        for table in TIME_TABLES
    ),
    Check(
        "extract_jobs",
        "jobs_described_consistently",
        "No completed job contradicts itself (data, total, segment entities).",
        warn_only=True,
    ),
    Check(
        "extract_jobs",
        "completed_jobs_have_rows",
        "Every completed job listed for the day is in extract_jobs and was landed.",
    ),
)

_BY_KEY = {(check.table, check.name): check for check in CHECKS}


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result on one day."""

    table: str
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def check(self) -> Check:
        return _BY_KEY[(self.table, self.name)]


def outcome(table: str, name: str, passed: bool, metadata: dict[str, Any]) -> CheckOutcome:
    """The outcome of the registered check ``table``/``name``, described as registered."""
    return CheckOutcome(table, name, passed, _BY_KEY[(table, name)].description, metadata)
