"""Frozen dataclasses for Cloudglue API objects.

Every model keeps the fields it does not know in ``extra`` (the official SDK drops them; we must
not), and records what it had to tolerate (unknown status, float timestamps, missing fields) in
``issues`` instead of raising. ``Job.raw`` is the complete JSON object as the API sent it, with
every page of segment entities merged, so it can be landed byte-for-byte-equivalent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KNOWN_STATUSES = frozenset({"pending", "processing", "completed", "failed", "not_applicable"})
TERMINAL_STATUSES = frozenset({"completed", "failed", "not_applicable"})
# The fields the API documents; everything else an object carries is kept as "extra".
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


def _number(value: Any) -> float | None:
    """A time in seconds, or None when the API sent something that is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _extra(obj: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


@dataclass(frozen=True, slots=True)
class SegmentEntity:
    """One entry of ``data.segment_entities``; ``index`` is its 0-based position in the job."""

    index: int
    start_time: float | None
    end_time: float | None
    entities: Any
    thumbnail_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, index: int, obj: Any) -> SegmentEntity:
        if not isinstance(obj, Mapping):
            return cls(index, None, None, None, None, {"_value": obj})
        thumb = obj.get("thumbnail_url")
        return cls(
            index=index,
            start_time=_number(obj.get("start_time")),
            end_time=_number(obj.get("end_time")),
            entities=obj.get("entities"),
            thumbnail_url=thumb if isinstance(thumb, str) else None,
            extra=_extra(obj, SEGMENT_FIELDS),
        )


@dataclass(frozen=True, slots=True)
class Chapter:
    index: int
    start_time: float | None
    end_time: float | None
    description: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, position: int, obj: Any) -> Chapter:
        if not isinstance(obj, Mapping):
            return cls(position, None, None, None, {"_value": obj})
        index = obj.get("index")
        desc = obj.get("description")
        return cls(
            index=index if isinstance(index, int) and not isinstance(index, bool) else position,
            start_time=_number(obj.get("start_time")),
            end_time=_number(obj.get("end_time")),
            description=desc if isinstance(desc, str) else None,
            extra=_extra(obj, CHAPTER_FIELDS),
        )


@dataclass(frozen=True, slots=True)
class Shot:
    index: int
    start_time: float | None
    end_time: float | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, position: int, obj: Any) -> Shot:
        if not isinstance(obj, Mapping):
            return cls(position, None, None, {"_value": obj})
        index = obj.get("index")
        return cls(
            index=index if isinstance(index, int) and not isinstance(index, bool) else position,
            start_time=_number(obj.get("start_time")),
            end_time=_number(obj.get("end_time")),
            extra=_extra(obj, SHOT_FIELDS),
        )


def created_at_ms(value: Any) -> int | None:
    """Epoch milliseconds as an int; floats are truncated, anything else is None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class Job:
    """An extract job. From ``GET /extract`` it carries no data; from the client's complete fetch
    it carries every segment entity, chapter and shot."""

    job_id: str
    status: str
    url: str | None
    created_at: int | None
    segmentation_id: str | None
    extract_config: Mapping[str, Any]
    error: str | None
    entities: Any = None
    segment_entities: tuple[SegmentEntity, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    shots: tuple[Shot, ...] = ()
    total: int | None = None
    thumbnail_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    issues: tuple[str, ...] = ()
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
        """Build a Job from an API object, tolerating anything but a missing ``job_id``."""
        issues: list[str] = []
        job_id = obj.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"extract job without a string job_id: {str(obj)[:200]}")
        status = obj.get("status")
        if not isinstance(status, str):
            issues.append(f"status is not a string: {status!r}")
            status = str(status)
        elif status not in KNOWN_STATUSES:
            issues.append(f"unknown status {status!r}")
        raw_created = obj.get("created_at")
        created = created_at_ms(raw_created)
        if created is None:
            issues.append(f"created_at missing or not a number: {raw_created!r}")
        elif not isinstance(raw_created, int):
            issues.append(f"created_at is a float: {raw_created!r}")
        config = obj.get("extract_config")
        if not isinstance(config, Mapping):
            if config is not None:
                issues.append("extract_config is not an object")
            config = {}
        data = obj.get("data")
        if data is not None and not isinstance(data, Mapping):
            issues.append("data is not an object")
            data = None
        data = data or {}
        raw_segments = data.get("segment_entities") or []
        if not isinstance(raw_segments, list):
            issues.append("data.segment_entities is not an array")
            raw_segments = []
        chapters = obj.get("chapters") or []
        chapters = chapters if isinstance(chapters, list) else []
        shots = obj.get("shots") or []
        shots = shots if isinstance(shots, list) else []
        total = obj.get("total")
        url, seg_id, error, thumb = (
            obj.get("url"),
            obj.get("segmentation_id"),
            obj.get("error"),
            data.get("thumbnail_url"),
        )
        return cls(
            job_id=job_id,
            status=status,
            url=url if isinstance(url, str) else None,
            created_at=created,
            segmentation_id=seg_id if isinstance(seg_id, str) else None,
            extract_config=config,
            error=error if isinstance(error, str) else None,
            entities=data.get("entities"),
            segment_entities=tuple(
                SegmentEntity.from_api(i, s) for i, s in enumerate(raw_segments)
            ),
            chapters=tuple(
                Chapter.from_api(i, c)
                for i, c in enumerate(chapters if isinstance(chapters, list) else [])
            ),
            shots=tuple(Shot.from_api(i, s) for i, s in enumerate(shots)),
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
            thumbnail_url=thumb if isinstance(thumb, str) else None,
            extra=_extra(obj, JOB_FIELDS),
            issues=tuple(issues),
            raw=obj,
        )
