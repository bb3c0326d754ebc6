"""The raw landing: each completed job's complete JSON, and each day's listing, in the data dir.

Layout under ``raw/created_date=YYYY-MM-DD/`` (see :mod:`pipeline.storage.layout`):
- ``<job file>.json.zst``: one completed job, the "complete job" dict (docs/architecture.md),
  zstd-compressed. A completed job does not change upstream, so a landed job is never fetched again.
- ``_listing.json.zst``: what ``GET /extract`` listed for that day at the last landing (every
  status), with the time it was listed. The tables are built from the listing plus the landed
  jobs, so jobs deleted upstream disappear and jobs completed since appear.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import select
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import jsonio
from pipeline.storage.atomic import scratch_write
from pipeline.storage.errors import LandingAborted
from pipeline.storage.layout import (
    JOB_SUFFIX,
    LISTING_FILE,
    RAW,
    day_lock_name,
    job_file_name,
    job_key,
    listing_key,
    parse_partition_name,
    raw_day_prefix,
)
from pipeline.storage.store import FileInfo, Store, open_store


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def _unzstd_json(data: bytes) -> Any:
    with pa.input_stream(pa.py_buffer(data), compression="zstd") as stream:
        return jsonio.loads(stream.read())


@dataclass(frozen=True)
class Listing:
    """A day's listing as landed: every job object ``GET /extract`` returned, and when."""

    day: dt.date
    listed_at: dt.datetime
    jobs: tuple[Mapping[str, Any], ...]


class RawStore:
    """The raw landing of a data dir (a path, a bucket URL or a :class:`Store`)."""

    def __init__(self, data_dir: str | os.PathLike[str] | Store) -> None:
        self.store = open_store(data_dir)

    def describe_day(self, day: dt.date) -> str:
        """Where the day's landing lives, for people."""
        return self.store.describe(raw_day_prefix(day))

    def day_lock(self, day: dt.date) -> contextlib.AbstractContextManager[None]:
        """The day's exclusive lock, the one its table builds take too (not reentrant)."""
        return self.store.lock(day_lock_name(day))

    def landed(self, day: dt.date) -> dict[str, FileInfo]:
        """The day's landed job files by name (one listing of the day)."""
        files = self.store.list_files(raw_day_prefix(day))
        return {n: f for n, f in files.items() if n.endswith(JOB_SUFFIX) and n != LISTING_FILE}

    def landed_ids(self, day: dt.date, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` are landed for the day (one listing of the day)."""
        names = self.landed(day)
        return {job_id for job_id in job_ids if job_file_name(job_id) in names}

    def has_job(self, day: dt.date, job_id: str) -> bool:
        return self.store.exists(job_key(day, job_id))

    def put_job(self, day: dt.date, job: Mapping[str, Any]) -> None:
        self.put_job_json(day, job["job_id"], jsonio.dumps(job))

    def put_job_json(
        self, day: dt.date, job_id: str, body: bytes, *, copy_to: Path | None = None
    ) -> None:
        """Land a job given as its JSON document (bytes, as the client joined them); with
        ``copy_to``, also put the landed file there (a local directory build workers follow).

        Not durable one by one: the listing, written last into the day, is (a crash before
        that may lose landed jobs, which the next run fetches again)."""
        data = _zstd(body)
        self.store.write_bytes(job_key(day, job_id), data, durable=False)
        if copy_to is not None:
            scratch_write(copy_to / job_file_name(job_id), data)

    def get_job(self, day: dt.date, job_id: str) -> dict[str, Any]:
        """The landed job; ``FileNotFoundError`` when it is not landed."""
        return _unzstd_json(self.store.read_bytes(job_key(day, job_id)))

    def write_listing(
        self, day: dt.date, jobs: Iterable[Mapping[str, Any]], listed_at: dt.datetime
    ) -> None:
        body = {"day": day.isoformat(), "listed_at": listed_at.isoformat(), "jobs": list(jobs)}
        self.store.write_bytes(listing_key(day), _zstd(jsonio.dumps(body)))

    def landed_days(self) -> set[dt.date]:
        """The days the landing has anything for (one listing of ``raw/``)."""
        names = self.store.list_dirs(RAW)
        return {day for day in map(parse_partition_name, names) if day is not None}

    def has_listing(self, day: dt.date) -> bool:
        """Whether the day was ever landed (its listing is written last)."""
        return self.store.exists(listing_key(day))

    def read_listing(self, day: dt.date) -> Listing | None:
        try:
            body = _unzstd_json(self.store.read_bytes(listing_key(day)))
        except FileNotFoundError:
            return None
        return Listing(
            day=day,
            listed_at=dt.datetime.fromisoformat(body["listed_at"]),
            jobs=tuple(body["jobs"]),
        )

    def prune(
        self,
        day: dt.date,
        keep_job_ids: Iterable[str],
        landed: dict[str, FileInfo] | None = None,
    ) -> list[str]:
        """Delete landed jobs that are no longer listed (deleted upstream); return their file
        names. ``landed``: the day's ``landed()``, when the caller has it."""
        keep = {job_file_name(job_id) for job_id in keep_job_ids}
        landed = self.landed(day) if landed is None else landed
        removed = [name for name in landed if name not in keep]
        for name in removed:
            self.store.delete(f"{raw_day_prefix(day)}/{name}")
        return removed

    def fingerprint(
        self, day: dt.date, listing: Listing | None, landed: dict[str, FileInfo] | None = None
    ) -> str:
        """A digest of what the day's tables are built from: the listed jobs (not when they were
        listed) and each landed job file's name, size and version. Landing anything new, a
        status change or a deletion upstream changes it. ``landed``: the day's ``landed()``, when
        the caller has it."""
        if listing is None:
            return "no-listing"
        digest = hashlib.sha256()
        jobs = sorted(listing.jobs, key=lambda job: job["job_id"])
        digest.update(jsonio.dumps(jobs))
        landed = self.landed(day) if landed is None else landed
        for job in jobs:
            name = job_file_name(job["job_id"])
            info = landed.get(name)
            if info is not None:
                digest.update(f"\n{name} {info.size} {info.version}".encode())
        return digest.hexdigest()

    def iter_day_jobs(self, day: dt.date) -> Iterator[Mapping[str, Any]]:
        """The day's jobs sorted by ``job_id``: complete dicts for landed completed jobs, the
        listing object for every other job. Reads one job file at a time (bounded memory)."""
        listing = self.read_listing(day)
        if listing is None:
            return
        yield from LandedJobs(self.store, day, _sorted_jobs(listing))

    def day_shards(
        self,
        day: dt.date,
        listing: Listing,
        max_shards: int,
        landed: dict[str, FileInfo] | None = None,
        copies: Path | None = None,
    ) -> list[LandedJobs]:
        """The day's jobs (as :meth:`iter_day_jobs`) cut into at most ``max_shards`` runs of
        consecutive job ids with about the same landed bytes each, one per build worker.
        ``landed``: the day's ``landed()``, when the caller has it; ``copies``: a local directory
        holding some landed jobs' files too (read there first)."""
        jobs = _sorted_jobs(listing)
        landed = self.landed(day) if landed is None else landed
        sizes = []
        for job in jobs:
            size = 1
            if job.get("status") == "completed":
                info = landed.get(job_file_name(job["job_id"]))
                size += info.size if info is not None else 0
            sizes.append(size)
        total = sum(sizes)
        shards, start, acc = [], 0, 0
        for i, size in enumerate(sizes):
            acc += size
            if acc * max_shards >= total * (len(shards) + 1) and len(shards) < max_shards - 1:
                shards.append(LandedJobs(self.store, day, jobs[start : i + 1], copies))
                start = i + 1
        shards.append(LandedJobs(self.store, day, jobs[start:], copies))
        return shards


def _sorted_jobs(listing: Listing) -> tuple[Mapping[str, Any], ...]:
    return tuple(sorted(listing.jobs, key=lambda job: job["job_id"]))


@dataclass(frozen=True)
class LandedJobs:
    """Some of a day's jobs in ``job_id`` order, read lazily; small and picklable, so a build
    worker process can be handed it: complete dicts for landed completed jobs, else the
    listing object."""

    data_dir: Store
    day: dt.date
    summaries: tuple[Mapping[str, Any], ...]
    copies: Path | None = None

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        store = RawStore(self.data_dir)
        for summary in self.summaries:
            yield _landed_or_summary(store, self.day, summary, self.copies)


def _landed_or_summary(
    store: RawStore, day: dt.date, summary: Mapping[str, Any], copies: Path | None = None
) -> Mapping[str, Any]:
    """The landed complete job of a listed completed job (its local copy in ``copies`` if
    there is one), else its listing object."""
    if summary.get("status") == "completed":
        job_id = summary["job_id"]
        with contextlib.suppress(FileNotFoundError):
            if copies is not None:
                with contextlib.suppress(FileNotFoundError):
                    return _unzstd_json((copies / job_file_name(job_id)).read_bytes())
            return store.get_job(day, job_id)
    return summary


# How often a build worker looks for the next job while the landing is still running.
_POLL_SECONDS = 0.005


def _landing_done(fd: int, timeout: float, day: dt.date) -> bool:
    """Whether ``done`` arrived on ``fd`` within ``timeout``; raises if the writer went away."""
    readable, _, _ = select.select([fd], [], [], timeout)
    if not readable:
        return False
    if os.read(fd, 16).startswith(b"done"):
        return True
    raise LandingAborted(day)


@dataclass(frozen=True)
class ArrivingJobs:
    """:class:`LandedJobs` of a day whose ``expected`` jobs are being landed right now, for a
    build worker that runs beside the landing: it waits for each expected job's file in turn.
    ``done`` on ``signal_fd`` (the worker's stdin) ends the landing: an expected job still not
    landed then was deleted upstream and is left out, as the day's new listing leaves it out.
    End-of-file without ``done`` means the landing failed: the shard raises."""

    data_dir: Store
    day: dt.date
    summaries: tuple[Mapping[str, Any], ...]
    expected: frozenset[str]
    copies: Path | None = None
    signal_fd: int = 0

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        store = RawStore(self.data_dir)
        if self.copies is not None:  # a bucket's landing: the copies are local files

            def landed(job_id: str) -> bool:
                return (self.copies / job_file_name(job_id)).is_file()

            def read(job_id: str) -> Any:
                return _unzstd_json((self.copies / job_file_name(job_id)).read_bytes())

        else:

            def landed(job_id: str) -> bool:
                return store.has_job(self.day, job_id)

            def read(job_id: str) -> Any:
                return store.get_job(self.day, job_id)

        done = False
        for summary in self.summaries:
            job_id = summary["job_id"]
            if summary.get("status") != "completed" or job_id not in self.expected:
                yield _landed_or_summary(store, self.day, summary)
                continue
            while not (found := landed(job_id)) and not done:
                done = _landing_done(self.signal_fd, _POLL_SECONDS, self.day)
            if found or landed(job_id):
                yield read(job_id)


def arriving_shards(
    data_dir: Store,
    day: dt.date,
    jobs: Iterable[Mapping[str, Any]],
    expected: Iterable[str],
    n: int,
    copies: Path | None = None,
) -> list[ArrivingJobs]:
    """The day's listed ``jobs`` in ``job_id`` order, cut into at most ``n`` contiguous runs with
    about the same number of ``expected`` (to be landed) jobs each. ``copies``: the local
    directory the landing also puts each job in (see :class:`ArrivingJobs`)."""
    ordered = tuple(sorted(jobs, key=lambda job: job["job_id"]))
    wanted = frozenset(expected)
    marks = [i for i, job in enumerate(ordered) if job["job_id"] in wanted]
    n = max(1, min(n, len(marks)))
    cuts = [0] + [marks[len(marks) * k // n] for k in range(1, n)] + [len(ordered)]
    return [
        ArrivingJobs(
            data_dir, day, ordered[a:b], wanted & {j["job_id"] for j in ordered[a:b]}, copies
        )
        for a, b in itertools.pairwise(cuts)
    ]
