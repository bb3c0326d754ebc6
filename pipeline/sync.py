"""Syncing a range of UTC days: the one engine that the CLI, the Dagster assets and the sensor call.

``sync_range`` lists the whole range once, compares each day with its landing, fetches every
missing completed job of the range through the client's one in-flight limit, and builds and
commits each day as soon as its jobs are landed, yielding a :class:`DayResult` per day. A day that
fails (its jobs could not be landed, its build failed) is reported and does not stop the others.
``land_day``, ``sync_day`` and ``build_day`` are the one-day forms. Nothing here knows Dagster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.errors import AuthError, CloudglueError, ConfigError, NotFoundError
from pipeline.cloudglue.models import Job
from pipeline.day_builders import DayBuilders
from pipeline.errors import LandingError
from pipeline.progress import ProgressCallback
from pipeline.quality import CheckOutcome, check_day, check_days
from pipeline.storage import DayWriteResult, write_day
from pipeline.storage.layout import job_file_name
from pipeline.storage.parquet import DayBuild, built_day, write_day_shards
from pipeline.storage.raw import Listing, RawStore, arriving_shards
from pipeline.storage.store import FileInfo, Store

# A data dir: a local path, a bucket URL (s3://bucket/prefix) or an open Store.
DataDir = str | os.PathLike[str] | Store


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


# Jobs to fetch at least for a day's build to run beside its landing: its worker processes cost
# about half a second of CPU each to start, which a small day does not pay back.
OVERLAP_MIN_JOBS = 100
# Landed (zstd) bytes per build worker at least: about 40,000 segment entities.
SHARD_MIN_BYTES = 2 * 2**20
# Part of every build fingerprint: bump it when the tables built from the same landing change.
BUILD_VERSION = "3"
# Jobs failing one after another with no success between them: the API is down or refusing us,
# and the rest of the range is not attempted (each job would spend its whole retry budget).
MAX_FAILURES_IN_A_ROW = 16


@dataclass
class _Day:
    """A day's plan: what the range listing showed for it and what is missing from its landing."""

    day: dt.date
    jobs: list[Job]
    missing: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    listed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    requests: int = 0
    failures: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(job.is_completed for job in self.jobs)


def list_range(
    client: CloudglueClient, days: Sequence[dt.date]
) -> tuple[dict[dt.date, list[Job]], list[tuple[str, str]]]:
    """The jobs of each of ``days`` from one listing of ``min(days)..max(days)``, and the listed
    items no day can hold (``(job_id, reason)``: no usable ``created_at``, or no job)."""
    wanted = set(days)
    skipped_before = len(client.stats.snapshot()["skipped"])
    jobs = client.list_jobs(min(days), max(days))
    by_day: dict[dt.date, list[Job]] = {day: [] for day in sorted(wanted)}
    for job in jobs:
        created = job.created_date
        if created in wanted:
            by_day[created].append(job)
    return by_day, [tuple(s) for s in client.stats.snapshot()["skipped"][skipped_before:]]


def unchanged_build(store: RawStore, day: dt.date, jobs: Sequence[Job]) -> DayWriteResult | None:
    """The day's partitions when the landing matches ``jobs`` as listed now (same objects, every
    completed one landed) and the partitions were built from that landing; else None."""
    listing = store.read_listing(day)
    if listing is None or len(listing.jobs) != len(jobs):
        return None
    if {job.job_id: job.raw for job in jobs} != {job["job_id"]: job for job in listing.jobs}:
        return None
    landed = store.landed(day)
    if any(job.is_completed and job_file_name(job.job_id) not in landed for job in jobs):
        return None
    fingerprint = _build_fingerprint(store, day, listing, landed)
    built = built_day(store.store, day, fingerprint, locked=True)
    return None if built is None else dataclasses.replace(built, source=(listing, landed))


def _unchanged_in_range(
    store: RawStore,
    day: dt.date,
    jobs: Sequence[Job],
    unplaced: Sequence[tuple[str, str]],
    first: dt.date,
) -> DayWriteResult | None:
    """``unchanged_build`` for a day of a listed range, except that the range's ``first`` day
    counts as changed while the listing holds items no day can hold: a sync reports them."""
    return None if unplaced and day == first else unchanged_build(store, day, jobs)


def changed_days(
    client: CloudglueClient, data_dir: DataDir, days: Sequence[dt.date]
) -> tuple[list[dt.date], dict[dt.date, DayWriteResult]]:
    """Which of ``days`` need a sync, from one listing: those whose jobs changed upstream since
    they were built (or that were never built), and the partitions of the others. The first day
    counts as changed while the listing holds items no day can hold: a sync reports them. Days
    never landed need no listing to know."""
    store = RawStore(data_dir)
    if not any(store.has_listing(day) for day in store.landed_days() & set(days)):
        return sorted(days), {}
    by_day, unplaced = list_range(client, days)

    def built(day: dt.date) -> DayWriteResult | None:
        return _unchanged_in_range(store, day, by_day[day], unplaced, min(days))

    changed: list[dt.date] = []
    unchanged: dict[dt.date, DayWriteResult] = {}
    for day, result in zip(by_day, store.store.map(built, list(by_day)), strict=True):
        if result is None:
            changed.append(day)
        else:
            unchanged[day] = result
    return changed, unchanged


@dataclass
class DayState:
    """A day as the data dir holds it and, when listed, as the API lists it now: what
    ``cloudglue-pipeline status`` shows and ``sync --dry-run`` plans from. Reading it writes
    nothing."""

    day: dt.date
    landed_by_status: dict[str, int]  # the landed listing's jobs ({} when never landed)
    landed_jobs: int  # completed jobs' files landed
    built: DayWriteResult | None  # the partitions, if built from the landing as it is now
    upstream_by_status: dict[str, int] | None = None  # None: not listed
    to_fetch: int = 0  # completed upstream, not landed
    # A sync would run the day: ``changed_days``' test, behind the summary's "(unchanged)".
    stale: bool | None = None


def day_states(
    data_dir: DataDir, days: Sequence[dt.date], client: CloudglueClient | None = None
) -> list[DayState]:
    """Each of ``days`` (ascending) from the data dir and, with a ``client``, from one listing
    of the range compared with what is landed."""
    store = RawStore(data_dir)
    days = sorted(days)
    upstream: dict[dt.date, list[Job]] | None = None
    unplaced: list[tuple[str, str]] = []
    if client is not None and days:
        upstream, unplaced = list_range(client, days)

    def state(day: dt.date) -> DayState:
        listing = store.read_listing(day)
        landed = store.landed(day)
        by_status = Counter(job.get("status") for job in listing.jobs) if listing else Counter()
        result = DayState(day, dict(by_status), len(landed), None)
        if upstream is not None:
            jobs = upstream[day]
            result.upstream_by_status = dict(Counter(job.status for job in jobs))
            result.to_fetch = sum(
                job.is_completed and job_file_name(job.job_id) not in landed for job in jobs
            )
            # An unchanged day's partitions are those built from its landing: found once.
            result.built = _unchanged_in_range(store, day, jobs, unplaced, days[0])
            result.stale = result.built is None
        if result.built is None and listing is not None:
            fingerprint = _build_fingerprint(store, day, listing, landed)
            result.built = built_day(store.store, day, fingerprint, locked=True)
        return result

    return list(store.store.map(state, days))


def sync_range(
    client: CloudglueClient,
    data_dir: DataDir,
    days: Iterable[dt.date],
    *,
    build: bool = True,
    progress: ProgressCallback | None = None,
    stats: RangeStats | None = None,
) -> Iterator[DayResult]:
    """Land (and with ``build``, build, commit and check) each of ``days``; yields each day's
    result as it is done, not in day order.

    Every day's lock is held from before the listing until the day is committed, so two syncs
    whose listings differ cannot prune each other's just-landed jobs. The listing of a day is
    written once all its jobs are landed: a run killed while fetching leaves the previous
    listing, and the next run reuses every job already landed.
    """
    ordered = sorted(set(days))
    if not ordered:
        return
    store = RawStore(data_dir)
    stats = stats if stats is not None else RangeStats()
    with contextlib.ExitStack() as locks:
        for day in ordered:
            locks.enter_context(store.day_lock(day))
        requests_before = client.stats.requests
        by_day, unplaced = list_range(client, ordered)
        stats.listing_requests = client.stats.requests - requests_before
        plans = {
            day: _Day(day, jobs, [j.job_id for j in jobs if j.is_completed])
            for day, jobs in by_day.items()
        }
        plans[ordered[0]].skipped += unplaced
        landed = dict(
            zip(
                plans,
                store.store.map(lambda day: store.landed_ids(day, plans[day].missing), list(plans)),
                strict=True,
            )
        )
        for plan in plans.values():
            plan.missing = [j for j in plan.missing if j not in landed[plan.day]]
            if progress:
                progress(
                    "listed",
                    {"day": plan.day, "listed": len(plan.jobs), "to_fetch": len(plan.missing)},
                )
        yield from _Range(client, store, plans, build, progress).run()
        stats.client = client.stats.snapshot()


class _Range:
    """The work of one ``sync_range`` call once it is listed (the caller holds the days' locks)."""

    def __init__(
        self,
        client: CloudglueClient,
        store: RawStore,
        plans: dict[dt.date, _Day],
        build: bool,
        progress: ProgressCallback | None,
    ) -> None:
        self.client = client
        self.store = store
        self.data_dir = store.store
        self.plans = plans
        self.build = build
        self.progress = progress
        # Per day, a local directory its landing also puts each job in (a big day in a bucket).
        self._copies: dict[dt.date, Path | None] = {}

    def run(self) -> Iterator[DayResult]:
        # Unchanged days first: they need nothing (their checks are read in one pass).
        pending: list[_Day] = []
        unchanged: dict[dt.date, DayWriteResult] = {}

        def built(plan: _Day) -> DayWriteResult | None:
            if self.build and not plan.missing and not plan.skipped:
                return unchanged_build(self.store, plan.day, plan.jobs)
            return None

        plans = list(self.plans.values())
        for plan, result in zip(plans, self.data_dir.map(built, plans), strict=True):
            if result is None:
                pending.append(plan)
            else:
                unchanged[plan.day] = result
        checks = check_days(self.data_dir, list(unchanged), built=unchanged) if unchanged else {}
        for day, built in unchanged.items():
            yield DayResult(
                day,
                landing=self._landing(self.plans[day], fetched=0, pruned=0),
                built=built,
                checks=checks[day],
                unchanged=True,
            )
        # The one day to fetch, when it is big, is built while its jobs land; with more days to
        # fetch, each is built as soon as it is landed, beside the fetching of the next ones.
        fetching = [p for p in pending if p.missing]
        big = len(fetching) == 1 and len(fetching[0].missing) >= OVERLAP_MIN_JOBS
        if self.build and big:
            yield from self._small_days([p for p in pending if p is not fetching[0]])
            yield self._big_day(fetching[0])
        else:
            yield from self._small_days(pending)

    # ---- the common parts --------------------------------------------------------------

    def _landing(self, plan: _Day, *, fetched: int, pruned: int) -> LandingResult:
        return LandingResult(
            day=plan.day,
            jobs_by_status=dict(Counter(job.status for job in plan.jobs)),
            fetched=fetched,
            already_landed=plan.completed - len(plan.missing),
            skipped=list(plan.skipped),
            pruned=pruned,
            requests=plan.requests,
        )

    def _finish_landing(self, plan: _Day) -> LandingResult:
        """Write the day's listing (its jobs as landed: deleted ones left out) and prune landed
        jobs no longer listed; raises if a completed job could not be landed."""
        gone = {job_id for job_id, _ in plan.skipped}
        landed = self.store.landed(plan.day)
        unlanded = [j for j in plan.missing if j not in gone and job_file_name(j) not in landed]
        if unlanded:
            local = [exc for _, exc in plan.failures if _is_local(exc)]
            if local:
                raise local[0]  # the data dir's own error (a full disk) says more as it is
            job_id, first = plan.failures[0] if plan.failures else (unlanded[0], None)
            cause = f"; first error: {_describe(first)}" if first else ""
            raise LandingError(
                f"{len(unlanded)} completed job(s) could not be landed, e.g. {job_id!r}{cause}",
                day=plan.day,
                job_id=job_id,
            ) from first
        plan.jobs = [job for job in plan.jobs if job.job_id not in gone]
        self.store.write_listing(plan.day, [job.raw for job in plan.jobs], plan.listed_at)
        pruned = self.store.prune(plan.day, [job.job_id for job in plan.jobs], landed)
        return self._landing(
            plan, fetched=len(plan.missing) - len(gone & set(plan.missing)), pruned=len(pruned)
        )

    # ---- many small days: one pool of requests, days built as they land ------------------

    def _small_days(self, plans: list[_Day]) -> Iterator[DayResult]:
        if not plans:
            return
        day_of = {job_id: plan for plan in plans for job_id in plan.missing}
        left = {plan.day: len(plan.missing) for plan in plans}
        landings: dict[dt.date, LandingResult] = {}
        builders = DayBuilders(self.data_dir, build_workers()) if self.build else None
        scratch = contextlib.ExitStack()
        if builders is not None and not self.data_dir.is_local:
            # A bucket's builds read the jobs this run lands from local copies, not the bucket.
            copies = scratch.enter_context(self.data_dir.staging())
            for plan in plans:
                if plan.missing:
                    self._copies[plan.day] = copies / plan.day.isoformat()
                    self._copies[plan.day].mkdir()

        def landed(plan: _Day) -> Iterator[DayResult]:
            try:
                landing = self._finish_landing(plan)
            except Exception as exc:
                yield DayResult(plan.day, error=exc)
                return
            if builders is None:
                yield DayResult(plan.day, landing=landing)
            else:
                landings[plan.day] = landing
                copies = self._copies.get(plan.day)
                builders.submit(plan.day, fresh=landing.fetched > 0, copies=copies)

        def built(*, wait: bool) -> Iterator[DayResult]:
            for day in builders.done(wait=wait) if builders else ():
                copies = self._copies.pop(day.day, None)
                if copies is not None:
                    shutil.rmtree(copies, ignore_errors=True)
                yield DayResult(
                    day.day,
                    landing=landings.pop(day.day),
                    built=day.built,
                    checks=day.checks,
                    error=day.error,
                    seconds=day.seconds,
                )

        try:
            for plan in plans:
                if not plan.missing:
                    yield from landed(plan)
            for job_id, outcome in self._fetch_all(list(day_of)):
                plan = day_of[job_id]
                if isinstance(outcome, NotFoundError):
                    plan.skipped.append((job_id, "not found (HTTP 404): deleted since listing?"))
                elif isinstance(outcome, BaseException):
                    plan.failures.append((job_id, outcome))
                left[plan.day] -= 1
                if left[plan.day] == 0:
                    yield from landed(plan)
                yield from built(wait=False)
            yield from built(wait=True)
        finally:
            if builders is not None:
                builders.close()
            scratch.close()

    def _fetch_all(self, job_ids: list[str]) -> Iterator[tuple[str, Any]]:
        """``(job_id, landed JobJson or the exception)`` per job, as each finishes; at most the
        client's concurrency in flight. Stops fetching (the rest fail with the last cause) after
        ``MAX_FAILURES_IN_A_ROW`` failures in a row, or at once on an auth or config error or an
        error of the data dir."""
        failures_in_a_row = 0
        stop: BaseException | None = None
        lock = threading.Lock()
        plans = {job_id: plan for plan in self.plans.values() for job_id in plan.missing}
        taken = 0

        def fetch(job_id: str) -> Any:
            plan = plans[job_id]
            job = self.client.fetch_job_json(job_id)
            self.store.put_job_json(
                plan.day, job.job_id, job.body, copy_to=self._copies.get(plan.day)
            )
            with lock:
                plan.requests += max(1, -(-job.segments // self.client.page_size))
            if self.progress:
                self.progress(
                    "fetched", {"day": plan.day, "job_id": job.job_id, "segments": job.segments}
                )
            return job

        def until_stopped() -> Iterator[str]:
            nonlocal taken
            for job_id in job_ids:
                if stop is not None:
                    return
                taken += 1
                yield job_id

        for job_id, outcome in self.client.fetch_each(fetch, until_stopped()):
            if not isinstance(outcome, Exception) or isinstance(outcome, NotFoundError):
                failures_in_a_row = 0
            else:
                failures_in_a_row += 1
                if (
                    isinstance(outcome, AuthError | ConfigError)
                    or _is_local(outcome)
                    or failures_in_a_row >= MAX_FAILURES_IN_A_ROW
                ):
                    stop = outcome
            yield job_id, outcome
        for job_id in job_ids[taken:]:  # not attempted once stopped
            yield job_id, stop

    # ---- a big day: its build runs beside its landing ----------------------------------

    def _big_day(self, plan: _Day) -> DayResult:
        """Build workers (one per CPU, each a run of job ids) start with the day's landing and
        flatten each job as soon as it is landed; the tables equal ``build_day``'s."""
        started = time.monotonic()
        try:
            with DayBuild(self.data_dir, plan.day, fetched_at=plan.listed_at, locked=True) as b:
                # In a bucket, the workers follow local copies of the jobs as they land.
                copies = None if self.data_dir.is_local else b.scratch("arriving")
                self._copies[plan.day] = copies
                shards = arriving_shards(
                    self.data_dir,
                    plan.day,
                    [job.raw for job in plan.jobs],
                    plan.missing,
                    build_workers(),
                    copies,
                )
                to_fetch = set(plan.missing)
                # The shards' jobs in turn, so that every worker soon has its next job.
                order = [
                    job["job_id"]
                    for run in itertools.zip_longest(*(shard.summaries for shard in shards))
                    for job in run
                    if job is not None and job["job_id"] in to_fetch
                ]
                b.start(shards, local_first=False)
                for job_id, outcome in self._fetch_all(order):
                    if isinstance(outcome, NotFoundError):
                        plan.skipped.append(
                            (job_id, "not found (HTTP 404): deleted since listing?")
                        )
                    elif isinstance(outcome, BaseException):
                        plan.failures.append((job_id, outcome))
                landing = self._finish_landing(plan)
                listing = self.store.read_listing(plan.day)
                built = b.finish(_build_fingerprint(self.store, plan.day, listing))
            result = DayResult(plan.day, landing, built, check_day(self.data_dir, plan.day))
        except Exception as exc:
            result = DayResult(plan.day, error=exc)
        result.seconds = time.monotonic() - started
        return result


def _is_local(exc: BaseException) -> bool:
    """An error of the data dir (full disk, permissions), not of the API: no job would land."""
    return isinstance(exc, OSError) and not isinstance(exc, CloudglueError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---- one day ---------------------------------------------------------------------------------


def _one_day(
    client: CloudglueClient,
    data_dir: DataDir,
    day: dt.date,
    *,
    build: bool,
    progress: ProgressCallback | None,
) -> DayResult:
    (result,) = sync_range(client, data_dir, [day], build=build, progress=progress)
    if result.error is not None:
        raise result.error
    return result


def land_day(
    client: CloudglueClient,
    store: RawStore,
    day: dt.date,
    *,
    progress: ProgressCallback | None = None,
) -> LandingResult:
    """Land one day: list it, fetch the completed jobs not landed yet, write the listing."""
    result = _one_day(client, store.store, day, build=False, progress=progress)
    assert result.landing is not None
    return result.landing


def sync_day(
    client: CloudglueClient,
    data_dir: DataDir,
    day: dt.date,
    *,
    progress: ProgressCallback | None = None,
) -> tuple[LandingResult, DayWriteResult]:
    """``sync_range`` of one day: its landing and its committed partitions (raises if it failed)."""
    result = _one_day(client, data_dir, day, build=True, progress=progress)
    assert result.landing is not None and result.built is not None
    return result.landing, result.built


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


def _build_fingerprint(
    store: RawStore,
    day: dt.date,
    listing: Listing | None,
    landed: dict[str, FileInfo] | None = None,
) -> str:
    """What a day's partitions record they were built from: the landing and the build version."""
    return f"{BUILD_VERSION}:{store.fingerprint(day, listing, landed)}"


def build_day(
    data_dir: DataDir,
    day: dt.date,
    *,
    locked: bool = False,
    fresh: bool = False,
    copies: Path | None = None,
) -> DayWriteResult:
    """Rebuild the day's partitions of all six tables from its landing (bounded memory).

    A day whose landing has not changed since its last build (same listed jobs, same landed
    files) is not rebuilt: the result describes the partitions already there, which keep the
    ``fetched_at`` of the build that wrote them. ``fresh``: the caller just landed new jobs, so
    the day is built without looking (in a bucket, that look is a dozen requests). ``copies``:
    a local directory holding the jobs just landed (read there, not from a bucket).
    ``locked``: the caller holds the day's lock.
    """
    store = RawStore(data_dir)
    data_dir = store.store
    listing = store.read_listing(day)
    landed = store.landed(day)
    fingerprint = _build_fingerprint(store, day, listing, landed)
    built = None if fresh else built_day(data_dir, day, fingerprint, locked=locked)
    if built is not None:
        return built
    if listing is None:
        return write_day(
            data_dir,
            day,
            [],
            fetched_at=dt.datetime.now(dt.UTC),
            fingerprint=fingerprint,
            locked=locked,
        )
    # A worker process costs about half a second to start: worth it for big days only.
    landed_bytes = sum(info.size for info in landed.values())
    workers = min(build_workers(), 1 + landed_bytes // SHARD_MIN_BYTES)
    shards = store.day_shards(day, listing, workers, landed, copies)
    result = write_day_shards(
        data_dir,
        day,
        shards,
        fetched_at=listing.listed_at,
        fingerprint=fingerprint,
        locked=locked,
    )
    return dataclasses.replace(result, source=(listing, landed))


def build_workers() -> int:
    """Processes a day's build may use: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
