"""Landing and building one day: the plain orchestration that the Dagster assets call.

``land_day`` lists a UTC creation day, fetches every completed job not landed yet, and records the
listing; ``build_day`` turns the landing into the six tables' partitions for that day. Neither
knows about Dagster, so both are tested and benchmarked on their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
from collections import Counter, deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.errors import CloudglueError
from pipeline.cloudglue.models import Job
from pipeline.cloudglue.pages import JobJson
from pipeline.progress import ProgressCallback
from pipeline.storage import DayWriteResult, write_day
from pipeline.storage.parquet import DayBuild, built_day, write_day_shards
from pipeline.storage.raw import Listing, RawStore, arriving_shards

# Threads writing landed jobs while the client fetches the next ones.
WRITERS = 4


class LandingError(CloudglueError):
    """Some completed jobs of the day could not be landed; the day's tables are not rebuilt."""


@dataclass
class LandingResult:
    """What ``land_day`` did, for logs and Dagster metadata.

    ``skipped``: ``(job_id, reason)`` of every job the API showed but the day cannot hold: listed
    without a usable ``created_at``, or deleted (404) between listing and fetching.
    """

    day: dt.date
    jobs_by_status: dict[str, int]
    fetched: int
    already_landed: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    pruned: int = 0
    client_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def listed(self) -> int:
        return sum(self.jobs_by_status.values())


def land_day(
    client: CloudglueClient,
    store: RawStore,
    day: dt.date,
    *,
    progress: ProgressCallback | None = None,
) -> LandingResult:
    """Land one day: list it, fetch the completed jobs not landed yet, write the listing.

    The listing is written last, so a run killed while fetching leaves the previous listing in
    place, and the next run reuses every job it had already landed.
    """
    with store.day_lock(day):
        return _land(client, store, day, progress, build=False)[0]


def sync_day(
    client: CloudglueClient,
    data_dir: Path,
    day: dt.date,
    *,
    progress: ProgressCallback | None = None,
) -> tuple[LandingResult, DayWriteResult]:
    """``land_day`` then ``build_day``, overlapped when the day has many jobs to fetch.

    The landing waits on the network and holds the GIL for parsing; the build needs CPU. So with
    ``OVERLAP_MIN_JOBS`` or more jobs to fetch, build workers (one per CPU, each a run of job ids)
    start with the landing and flatten each job as soon as it is landed. The tables are the same
    as ``build_day``'s afterwards (same jobs, same order, same fingerprint); a failed landing
    leaves the live partitions untouched.
    """
    store = RawStore(data_dir)
    with store.day_lock(day):
        landing, built = _land(client, store, day, progress, build=True)
    return landing, built if built is not None else build_day(data_dir, day)


# Jobs to fetch at least for the build to run beside the landing: its worker processes cost
# about half a second of CPU each to start, which a small day does not pay back.
OVERLAP_MIN_JOBS = 100


def _land(
    client: CloudglueClient,
    store: RawStore,
    day: dt.date,
    progress: ProgressCallback | None,
    *,
    build: bool,
) -> tuple[LandingResult, DayWriteResult | None]:
    """The landing (and with ``build``, the overlapped build) of ``land_day``/``sync_day``. The
    caller holds the day's lock from listing to pruning: two runs with different listings would
    otherwise prune each other's just-landed jobs."""
    listed_at = dt.datetime.now(dt.UTC)
    # Counted from before the listing: jobs it cannot place on a day are skipped there.
    skipped_before = len(client.stats.snapshot()["skipped"])
    jobs = client.list_jobs(day, day)
    completed = [job.job_id for job in jobs if job.is_completed]
    missing = [job_id for job_id in completed if not store.has_job(day, job_id)]
    if progress:
        progress("listed", {"day": day, "listed": len(jobs), "to_fetch": len(missing)})

    def land(order: list[str]) -> LandingResult:
        fetched = _fetch(client, store, day, order, progress)
        skipped = [tuple(s) for s in client.stats.snapshot()["skipped"][skipped_before:]]
        gone = {job_id for job_id, _reason in skipped}
        unlanded = [j for j in missing if j not in gone and not store.has_job(day, j)]
        if unlanded:
            raise LandingError(
                f"{day}: {len(unlanded)} completed job(s) could not be landed, e.g. {unlanded[0]!r}"
            )
        kept = [job for job in jobs if job.job_id not in gone]
        store.write_listing(day, [job.raw for job in kept], listed_at)
        pruned = store.prune(day, [job.job_id for job in kept])
        return LandingResult(
            day=day,
            jobs_by_status=dict(Counter(job.status for job in kept)),
            fetched=fetched,
            already_landed=len(completed) - len(missing),
            skipped=skipped,
            pruned=len(pruned),
            client_stats=client.stats.snapshot(),
        )

    if not build or len(missing) < OVERLAP_MIN_JOBS:
        return land(missing), None
    data_dir = store.root.parent
    shards = arriving_shards(data_dir, day, [job.raw for job in jobs], missing, build_workers())
    # The shards' jobs in turn, so that every worker soon has its next job.
    to_fetch = set(missing)
    order = [
        job["job_id"]
        for run in itertools.zip_longest(*(shard.summaries for shard in shards))
        for job in run
        if job is not None and job["job_id"] in to_fetch
    ]
    with DayBuild(data_dir, day, fetched_at=listed_at, locked=True) as builder:
        builder.start(shards, local_first=False)
        landing = land(order)
        listing = store.read_listing(day)
        return landing, builder.finish(_build_fingerprint(store, day, listing))


def _fetch(
    client: CloudglueClient,
    store: RawStore,
    day: dt.date,
    job_ids: list[str],
    progress: ProgressCallback | None,
) -> int:
    """Fetch and land ``job_ids``; returns how many were landed (404s are skipped)."""
    fetched = 0

    def landed(write: Future[Any], job: JobJson) -> None:
        nonlocal fetched
        write.result()
        fetched += 1
        if progress:
            progress("fetched", {"day": day, "job_id": job.job_id, "segments": job.segments})

    # Writes (compress, fsync) run beside the fetching: done inline they held up taking the
    # next finished job, so fewer requests were in flight. A few at most wait.
    pending: deque[tuple[Future[Any], JobJson]] = deque()
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="land-write") as writers:
        for job in client.fetch_jobs_json(job_ids):
            pending.append((writers.submit(store.put_job_json, day, job.job_id, job.body), job))
            while len(pending) > 2 * WRITERS or (pending and pending[0][0].done()):
                landed(*pending.popleft())
        while pending:
            landed(*pending.popleft())
    return fetched


def completed_fingerprints(jobs: Iterable[Job], days: Iterable[dt.date]) -> dict[str, str]:
    """Per day (ISO date), a fingerprint of the set of completed job ids created that day.

    A day whose set changed (a job completed, or was deleted) gets a new fingerprint, so a sensor
    can request exactly the days that need a run.
    """
    by_day: dict[str, list[str]] = {day.isoformat(): [] for day in days}
    for job in jobs:
        created = job.created_date
        if job.is_completed and created is not None and created.isoformat() in by_day:
            by_day[created.isoformat()].append(job.job_id)
    return {
        day: hashlib.sha256("\n".join(sorted(ids)).encode("utf-8", "surrogatepass")).hexdigest()[
            :16
        ]
        for day, ids in by_day.items()
    }


# Landed (zstd) bytes per build worker at least: about 40,000 segment entities.
SHARD_MIN_BYTES = 2 * 2**20
# Part of every build fingerprint: bump it when the tables built from the same landing change.
BUILD_VERSION = "2"


def _build_fingerprint(store: RawStore, day: dt.date, listing: Listing | None) -> str:
    """What a day's partitions record they were built from: the landing and the build version."""
    return f"{BUILD_VERSION}:{store.fingerprint(day, listing)}"


def build_day(data_dir: Path, day: dt.date) -> DayWriteResult:
    """Rebuild the day's partitions of all six tables from its landing (bounded memory).

    A day whose landing has not changed since its last build (same listed jobs, same landed
    files) is not rebuilt: the result describes the partitions already there, which keep the
    ``fetched_at`` of the build that wrote them.
    """
    store = RawStore(data_dir)
    listing = store.read_listing(day)
    fingerprint = _build_fingerprint(store, day, listing)
    built = built_day(data_dir, day, fingerprint)
    if built is not None:
        return built
    if listing is None:
        return write_day(
            data_dir, day, [], fetched_at=dt.datetime.now(dt.UTC), fingerprint=fingerprint
        )
    # A worker process costs about half a second to start: worth it for big days only.
    workers = min(build_workers(), 1 + store.landed_bytes(day) // SHARD_MIN_BYTES)
    shards = store.day_shards(day, listing, workers)
    return write_day_shards(
        data_dir, day, shards, fetched_at=listing.listed_at, fingerprint=fingerprint
    )


def unchanged_day(client: CloudglueClient, data_dir: Path, day: dt.date) -> DayWriteResult | None:
    """The day's partitions when nothing changed upstream since they were built, else None.

    Unchanged means: the API lists exactly the jobs of the landing (same objects), every completed
    one is landed, nothing was skipped, and the partitions were built from that landing. Costs the
    listing requests only, so a re-sync of quiet days needs no run at all.
    """
    store = RawStore(data_dir)
    listing = store.read_listing(day)
    if listing is None:
        return None
    skipped_before = len(client.stats.snapshot()["skipped"])
    jobs = client.list_jobs(day, day)
    if len(client.stats.snapshot()["skipped"]) != skipped_before:
        return None  # a run reports the skipped jobs again
    listed = {job.job_id: job.raw for job in jobs}
    if listed != {job["job_id"]: job for job in listing.jobs}:
        return None
    if any(job.is_completed and not store.has_job(day, job.job_id) for job in jobs):
        return None
    return built_day(data_dir, day, _build_fingerprint(store, day, listing))


def build_workers() -> int:
    """Processes a day's build may use: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
