"""A deterministic synthetic set of Cloudglue extract jobs, generated per job on demand.

Only a small record per job (``jobs.Job``: id, created_at, status, strategy, segment count) is
held in memory; what a job holds is generated when a page asks for it (``content.JobContent``)
and shaped into API bodies by ``bodies``.

The first jobs follow a coverage plan so every dataset of at least ``len(COVERAGE_PLAN)`` jobs
holds all five statuses, all four segmentation strategies, prompt- and schema-based configs,
a metadata-mode job (file-level entities only), legacy jobs with both video- and segment-level
entities, and jobs with 0, 1, 50, 100, 101 and 350 segment entities. ``hostile=True`` appends
jobs that break the spec on purpose (see ``hostile.HOSTILE_JOBS``); they are served and have
ground truth like any other job.
"""

from __future__ import annotations

import datetime as dt
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.emulator import bodies
from pipeline.emulator.content import JobContent
from pipeline.emulator.hostile import HOSTILE_JOBS, make_hostile
from pipeline.emulator.jobs import COMPLETED_SHARE, DAY_MS, Job, day_ms, make_job


class Dataset:
    """Synthetic extract jobs plus their ground truth.

    ``jobs`` jobs are spread over ``days`` UTC days ending at ``end_date`` (default: today, UTC).
    ``mean_segments`` sets the mean number of segment entities per job across the dataset (so
    the total is about ``jobs * mean_segments``); without it completed jobs have 0-40. The
    coverage plan's sizes (0, 1, 50, 100, 101, 350) stay either way.
    """

    def __init__(
        self,
        seed: int = 7,
        jobs: int = 200,
        days: int = 14,
        end_date: dt.date | None = None,
        mean_segments: float | None = None,
        hostile: bool = False,
    ) -> None:
        if jobs < 0 or days < 1:
            raise ValueError("jobs must be >= 0 and days >= 1")
        self.seed = seed
        self.end_date = end_date or dt.datetime.now(dt.UTC).date()
        self._days = [self.end_date - dt.timedelta(days=days - 1 - i) for i in range(days)]
        self._start_ms = day_ms(self._days[0])
        self._span_ms = days * DAY_MS
        self._mean = None if mean_segments is None else mean_segments / COMPLETED_SHARE
        self._lock = threading.Lock()
        self._status_listeners: list[Callable[[str, str, str], None]] = []
        self._content = JobContent(seed)
        made = [self._make_job(i) for i in range(jobs)]
        if hostile:
            made += [
                make_hostile(self._make_job(10_000_000 + k), f"{seed}:hostile:{k}", jid, kind)
                for k, (jid, kind) in enumerate(HOSTILE_JOBS)
            ]
        made.sort(key=lambda j: (-j.created_at, j.job_id))
        self._order = made
        self._neg_created = [-j.created_at for j in made]
        self._by_id = {j.job_id: j for j in made}
        self._by_segmentation = {j.segmentation_id: j for j in made}

    # ---- job records ---------------------------------------------------------------------

    def _make_job(self, index: int) -> Job:
        return make_job(self.seed, index, self._start_ms, self._span_ms, self._mean)

    def _get(self, job_id: str) -> Job:
        job = self._by_id.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def _range(self, lo_ms: int | None, hi_ms: int | None) -> list[Job]:
        """Jobs with lo <= created_at < hi, newest first (bisect on the sorted order)."""
        start = 0 if hi_ms is None else bisect_left(self._neg_created, -hi_ms + 1)
        stop = len(self._order) if lo_ms is None else bisect_right(self._neg_created, -lo_ms)
        return self._order[start:stop]

    # ---- public read API -----------------------------------------------------------------

    def job_ids(self) -> list[str]:
        """Every live job id, newest first (the list endpoint's order)."""
        return [j.job_id for j in self._order if j.job_id in self._by_id]

    def hostile_job_ids(self) -> list[str]:
        """The ids of the jobs added by ``hostile=True``, newest first."""
        return [j.job_id for j in self._order if j.hostile and j.job_id in self._by_id]

    def days(self) -> list[dt.date]:
        """The UTC days the jobs are spread over, oldest first."""
        return list(self._days)

    def job_ids_for_day(self, day: dt.date) -> list[str]:
        """Live job ids created on the UTC ``day``, newest first."""
        lo = day_ms(day)
        return [j.job_id for j in self._range(lo, lo + DAY_MS) if j.job_id in self._by_id]

    def status(self, job_id: str) -> str:
        return self._get(job_id).status

    def segment_entity_count(self) -> int:
        """Segment entities served by all live completed jobs (benchmark sizing)."""
        return sum(
            len(self._content.segments(j)) if j.hostile else j.n_segments
            for j in self._order
            if j.status == "completed" and j.job_id in self._by_id
        )

    def summary(self, job_id: str) -> dict[str, Any]:
        """The listing object of a job (``GET /extract?include_data=false``), a private copy."""
        return orjson.loads(orjson.dumps(bodies.summary(self._get(job_id))))

    def complete_job(self, job_id: str, include_thumbnails: bool = False) -> dict[str, Any]:
        """Ground truth: the job with every segment entity, chapters and shots (see docs)."""
        job = self._get(job_id)
        body = bodies.detail(self._content, job, None, 0, include_thumbnails, True, True)
        body.pop("limit", None)
        body.pop("offset", None)
        return orjson.loads(orjson.dumps(body))

    # ---- live changes --------------------------------------------------------------------

    def set_status(self, job_id: str, status: str) -> None:
        """Change a job's status while serving (pending -> processing -> completed, for sensor
        tests); any string is accepted, so an unknown status such as "archived" can be set.
        A change is told to every ``on_status_change`` listener (the server's webhooks)."""
        with self._lock:
            job = self._get(job_id)
            old, job.status = job.status, status
            listeners = list(self._status_listeners)
        if old != status:
            for listener in listeners:
                listener(job_id, old, status)

    def on_status_change(self, listener: Callable[[str, str, str], None]) -> None:
        """Call ``listener(job_id, old_status, new_status)`` after each status change."""
        with self._lock:
            self._status_listeners.append(listener)

    def delete_job(self, job_id: str) -> None:
        """Remove a job: it leaves every listing and its detail answers 404."""
        with self._lock:
            self._by_id.pop(job_id)

    # ---- API bodies (used by the server; they share objects, serialize, do not mutate) ---

    def list_body(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        status: str | None = None,
        created_after: dt.date | None = None,
        created_before: dt.date | None = None,
        url: str | None = None,
        include_data: bool = True,
    ) -> dict[str, Any]:
        """``GET /extract``. Date bounds are exclusive whole days: ``created_after=D`` keeps jobs
        created from D+1 00:00 UTC on, ``created_before=D`` those created before D 00:00 UTC."""
        lo = day_ms(created_after + dt.timedelta(days=1)) if created_after else None
        hi = day_ms(created_before) if created_before else None
        matches = [
            j
            for j in self._range(lo, hi)
            if j.job_id in self._by_id
            and (status is None or j.status == status)
            and (url is None or j.url == url)
        ]
        return bodies.list_page(self._content, matches, limit, offset, include_data)

    def detail_body(
        self,
        job_id: str,
        *,
        limit: int = 50,
        offset: int = 0,
        include_thumbnails: bool = False,
        include_chapters: bool = False,
        include_shots: bool = False,
    ) -> dict[str, Any]:
        """``GET /extract/{job_id}``; raises KeyError for an unknown job."""
        job = self._get(job_id)
        return bodies.detail(
            self._content,
            job,
            limit,
            offset,
            include_thumbnails,
            include_chapters,
            include_shots,
        )

    def segmentation_body(
        self, segmentation_id: str, *, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """``GET /segmentations/{id}``; raises KeyError for an unknown segmentation."""
        job = self._by_segmentation.get(segmentation_id)
        if job is None or job.job_id not in self._by_id:
            raise KeyError(segmentation_id)
        return bodies.segmentation(self._content, job, limit, offset)
