"""Syncing a range of UTC days: the one engine that the CLI, the Dagster assets and the sensor call.

``sync_range`` lists the whole range once, compares each day with its landing, fetches every
missing completed job of the range through the client's one in-flight limit, and builds and
commits each day as soon as its jobs are landed, yielding a :class:`DayResult` per day. A day that
fails (its jobs could not be landed, its build failed) is reported and does not stop the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.errors import AuthError, CloudglueError, ConfigError, NotFoundError
from pipeline.cloudglue.models import Job
from pipeline.progress import ProgressCallback
from pipeline.quality import check_day, check_days
from pipeline.storage import DayWriteResult
from pipeline.storage.layout import job_file_name
from pipeline.storage.parquet import DayBuild
from pipeline.storage.raw import RawStore, arriving_shards
from pipeline.sync.build import DataDir, build_fingerprint, build_workers
from pipeline.sync.day_builders import DayBuilders
from pipeline.sync.errors import LandingError
from pipeline.sync.plan import list_range, unchanged_build
from pipeline.sync.results import DayResult, LandingResult, RangeStats

# Jobs to fetch at least for a day's build to run beside its landing: a small day does not pay
# back its worker processes' start.
OVERLAP_MIN_JOBS = 100
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

    def record(self, job_id: str, outcome: Any) -> None:
        """A fetch's outcome: a job gone since the listing is skipped, any other error kept."""
        if isinstance(outcome, NotFoundError):
            self.skipped.append((job_id, "not found (HTTP 404): deleted since listing?"))
        elif isinstance(outcome, BaseException):
            self.failures.append((job_id, outcome))


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
                plan.record(job_id, outcome)
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
                    plan.record(job_id, outcome)
                landing = self._finish_landing(plan)
                listing = self.store.read_listing(plan.day)
                built = b.finish(build_fingerprint(self.store, plan.day, listing))
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
