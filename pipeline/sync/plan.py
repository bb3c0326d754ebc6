"""Planning a range from one listing: which of its days changed upstream since they were built
(``changed_days``), what the data dir holds of each (``day_states``), and the per-day
fingerprints the sensor compares (``completed_fingerprints``). Reading writes nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.models import Job
from pipeline.storage import DayWriteResult
from pipeline.storage.layout import job_file_name
from pipeline.storage.parquet import built_day
from pipeline.storage.raw import Listing, RawStore
from pipeline.storage.store import FileInfo
from pipeline.sync.build import DataDir, build_fingerprint


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
    if not _listing_matches(listing, jobs):
        return None
    landed = store.landed(day)
    if not _all_landed(jobs, landed):
        return None
    return _built_from(store, day, listing, landed)


def _listing_matches(listing: Listing | None, jobs: Sequence[Job]) -> bool:
    """Whether the landed listing holds ``jobs`` as listed now, object for object."""
    if listing is None or len(listing.jobs) != len(jobs):
        return False
    return {job.job_id: job.raw for job in jobs} == {job["job_id"]: job for job in listing.jobs}


def _all_landed(jobs: Sequence[Job], landed: Mapping[str, FileInfo]) -> bool:
    return not any(job.is_completed and job_file_name(job.job_id) not in landed for job in jobs)


def _built_from(
    store: RawStore, day: dt.date, listing: Listing, landed: dict[str, FileInfo]
) -> DayWriteResult | None:
    """The day's partitions if they were built from this landing, knowing it as their source."""
    built = built_day(store.store, day, build_fingerprint(store, day, listing, landed), locked=True)
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
        built = None if listing is None else _built_from(store, day, listing, landed)
        result = DayState(day, dict(by_status), len(landed), built)
        if upstream is not None:
            jobs = upstream[day]
            result.upstream_by_status = dict(Counter(job.status for job in jobs))
            result.to_fetch = sum(
                job.is_completed and job_file_name(job.job_id) not in landed for job in jobs
            )
            # changed_days' test (_unchanged_in_range), on what was read once here.
            result.stale = (
                built is None
                or bool(unplaced and day == days[0])
                or not (_listing_matches(listing, jobs) and _all_landed(jobs, landed))
            )
        return result

    return list(store.store.map(state, days))


def completed_fingerprints(by_day: Mapping[dt.date, Sequence[Job]]) -> dict[str, str]:
    """Per day (ISO date), a fingerprint of the set of completed job ids among its jobs (as
    ``list_range`` groups them).

    A day whose set changed (a job completed, or was deleted) gets a new fingerprint, so a sensor
    can request exactly the days that need a run.
    """
    return {
        day.isoformat(): hashlib.sha256(
            "\n".join(sorted(job.job_id for job in jobs if job.is_completed)).encode(
                "utf-8", "surrogatepass"
            )
        ).hexdigest()[:16]
        for day, jobs in by_day.items()
    }
