"""What a sync reports: per day (``DayResult``, with its ``LandingResult``) and for a whole range
(``RangeStats``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pipeline.quality import CheckOutcome
from pipeline.storage import DayWriteResult


@dataclass
class LandingResult:
    """What landing one day did, for logs and Dagster metadata.

    ``skipped``: ``(job_id, reason)`` of every job the API showed but the day cannot hold: deleted
    (404) between listing and fetching, and, on the first day of a range, listed items that no day
    can hold (no usable ``created_at``, or no job at all). ``requests``: the HTTP requests made
    for this day's jobs (the range's listing requests are the range's, see ``RangeStats``).
    """

    day: dt.date
    jobs_by_status: dict[str, int]
    fetched: int
    already_landed: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    pruned: int = 0
    requests: int = 0

    @property
    def listed(self) -> int:
        return sum(self.jobs_by_status.values())


@dataclass
class DayResult:
    """One day of a range: its landing, its committed partitions and check outcomes, or why it
    failed. ``unchanged``: nothing changed upstream since the day was built, so nothing was done."""

    day: dt.date
    landing: LandingResult | None = None
    built: DayWriteResult | None = None
    checks: list[CheckOutcome] = field(default_factory=list)
    error: BaseException | None = None
    unchanged: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RangeStats:
    """What the whole range cost: filled in while ``sync_range`` runs."""

    listing_requests: int = 0
    client: dict[str, Any] = field(default_factory=dict)
