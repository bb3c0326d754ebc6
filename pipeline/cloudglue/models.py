"""The listed extract job, and the fields the API documents for a job.

Complete jobs are never modelled: the client joins their pages as JSON bytes (``pages.py``), the
landing stores those, and the tables read the dicts; nothing the API sends is dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The fields the API documents for each object; the tables keep any other as JSON (extra_json).
JOB_FIELDS = frozenset(
    {
        "job_id",
        "status",
        "url",
        "created_at",
        "segmentation_id",
        "extract_config",
        "error",
        "data",
        "chapters",
        "shots",
        "total",
        "limit",
        "offset",
        "total_chapters",
        "total_shots",
    }
)


DATA_FIELDS = frozenset({"entities", "segment_entities", "thumbnail_url"})
SEGMENT_FIELDS = frozenset({"start_time", "end_time", "entities", "thumbnail_url"})
CHAPTER_FIELDS = frozenset({"index", "start_time", "end_time", "description"})
SHOT_FIELDS = frozenset({"index", "start_time", "end_time"})


def created_at_ms(value: Any) -> int | None:
    """Epoch milliseconds as an int; floats are truncated, anything else is None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class Job:
    """An extract job as ``GET /extract`` lists it: what the sync decides by (its status and UTC
    day), and ``raw``, the listing object exactly as the API sent it (landed as the summary of a
    job that is not completed)."""

    job_id: str
    status: str
    created_at: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def created_date(self) -> dt.date | None:
        """The job's UTC creation day, which is its partition."""
        if self.created_at is None:
            return None
        return dt.datetime.fromtimestamp(self.created_at / 1000, tz=dt.UTC).date()

    @property
    def is_completed(self) -> bool:
        return self.status == "completed"

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Job:
        """Build a Job from an API object, tolerating anything but a missing ``job_id`` (a
        status that is not a string is kept as its text; ``created_at`` that is not a number
        is None, and the client skips the job)."""
        job_id = obj.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"extract job without a string job_id: {str(obj)[:200]}")
        status = obj.get("status")
        return cls(
            job_id=job_id,
            status=status if isinstance(status, str) else str(status),
            created_at=created_at_ms(obj.get("created_at")),
            raw=obj,
        )
