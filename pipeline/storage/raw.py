"""The raw landing: each completed job's complete JSON, and each day's listing, on disk.

Layout under ``<data_dir>/raw/created_date=YYYY-MM-DD/``:
- ``<job file>.json.zst``: one completed job, the "complete job" dict (docs/architecture.md),
  zstd-compressed. A completed job does not change upstream, so a landed job is never fetched again.
- ``_listing.json.zst``: what ``GET /extract`` listed for that day at the last landing (every
  status), with the time it was listed. The tables are built from the listing plus the landed
  jobs, so jobs deleted upstream disappear and jobs completed since appear.

Job ids are free text (they may hold ``/``, ``..``, ``%`` or be 500 characters long), so file names
are a reversible-looking but safe encoding plus a hash; the id itself lives inside the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import re
import select
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import jsonio
from pipeline.storage.atomic import atomic_write_bytes, file_lock
from pipeline.storage.layout import day_lock_path

_LISTING = "_listing.json.zst"
_SUFFIX = ".json.zst"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def job_file_stem(job_id: str) -> str:
    """A file-name-safe, collision-free stem for a job id (no separators, no dots, bounded)."""
    readable = _UNSAFE.sub("_", job_id)[:64]
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{readable}-{digest}"


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def _read_zstd_json(path: Path) -> Any:
    with pa.input_stream(str(path), compression="zstd") as stream:
        return jsonio.loads(stream.read())


@dataclass(frozen=True)
class Listing:
    """A day's listing as landed: every job object ``GET /extract`` returned, and when."""

    day: dt.date
    listed_at: dt.datetime
    jobs: tuple[Mapping[str, Any], ...]


class RawStore:
    """File access for the raw landing under ``<data_dir>/raw``."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir) / "raw"
        # Temp files live outside the day directories, so readers never see them.
        self._tmp = Path(data_dir) / ".staging" / "raw-tmp"

    def day_dir(self, day: dt.date) -> Path:
        return self.root / f"created_date={day.isoformat()}"

    def day_lock(self, day: dt.date) -> contextlib.AbstractContextManager[None]:
        """The day's exclusive lock, the one its table builds take too (not reentrant)."""
        return file_lock(day_lock_path(self.root.parent, day))

    def job_path(self, day: dt.date, job_id: str) -> Path:
        return self.day_dir(day) / f"{job_file_stem(job_id)}{_SUFFIX}"

    def has_job(self, day: dt.date, job_id: str) -> bool:
        return self.job_path(day, job_id).is_file()

    def put_job(self, day: dt.date, job: Mapping[str, Any]) -> Path:
        return self.put_job_json(day, job["job_id"], jsonio.dumps(job))

    def put_job_json(self, day: dt.date, job_id: str, body: bytes) -> Path:
        """Land a job given as its JSON document (bytes, as the client joined them).

        The day directory is not synced per job: the listing, written last into it, syncs it
        (a crash before that may lose landed jobs, which the next run fetches again)."""
        path = self.job_path(day, job_id)
        atomic_write_bytes(path, _zstd(body), self._tmp, sync_dir=False)
        return path

    def get_job(self, day: dt.date, job_id: str) -> dict[str, Any]:
        return _read_zstd_json(self.job_path(day, job_id))

    def write_listing(
        self, day: dt.date, jobs: Iterable[Mapping[str, Any]], listed_at: dt.datetime
    ) -> Path:
        path = self.day_dir(day) / _LISTING
        body = {"day": day.isoformat(), "listed_at": listed_at.isoformat(), "jobs": list(jobs)}
        atomic_write_bytes(path, _zstd(jsonio.dumps(body)), self._tmp)
        return path

    def has_listing(self, day: dt.date) -> bool:
        """Whether the day was ever landed (its listing is written last)."""
        return (self.day_dir(day) / _LISTING).is_file()

    def read_listing(self, day: dt.date) -> Listing | None:
        path = self.day_dir(day) / _LISTING
        if not path.is_file():
            return None
        body = _read_zstd_json(path)
        return Listing(
            day=day,
            listed_at=dt.datetime.fromisoformat(body["listed_at"]),
            jobs=tuple(body["jobs"]),
        )

    def prune(self, day: dt.date, keep_job_ids: Iterable[str]) -> list[Path]:
        """Delete landed jobs that are no longer listed (deleted upstream); return what went."""
        day_dir = self.day_dir(day)
        if not day_dir.is_dir():
            return []
        keep = {f"{job_file_stem(job_id)}{_SUFFIX}" for job_id in keep_job_ids}
        removed = []
        for path in day_dir.iterdir():
            unlisted = path.name.endswith(_SUFFIX) and path.name != _LISTING
            if unlisted and path.name not in keep:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def fingerprint(self, day: dt.date, listing: Listing | None) -> str:
        """A digest of what the day's tables are built from: the listed jobs (not when they were
        listed) and each landed job file's name, size and mtime. Landing anything new, a status
        change or a deletion upstream changes it."""
        if listing is None:
            return "no-listing"
        digest = hashlib.sha256()
        jobs = sorted(listing.jobs, key=lambda job: job["job_id"])
        digest.update(jsonio.dumps(jobs))
        for job in jobs:
            path = self.job_path(day, job["job_id"])
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            digest.update(f"\n{path.name} {st.st_size} {st.st_mtime_ns}".encode())
        return digest.hexdigest()

    def iter_day_jobs(self, day: dt.date) -> Iterator[Mapping[str, Any]]:
        """The day's jobs sorted by ``job_id``: complete dicts for landed completed jobs, the
        listing object for every other job. Reads one job file at a time (bounded memory)."""
        listing = self.read_listing(day)
        if listing is None:
            return
        yield from LandedJobs(self.root.parent, day, _sorted_jobs(listing))

    def day_shards(self, day: dt.date, listing: Listing, max_shards: int) -> list[LandedJobs]:
        """The day's jobs (as :meth:`iter_day_jobs`) cut into at most ``max_shards`` runs of
        consecutive job ids with about the same landed bytes each, one per build worker."""
        jobs = _sorted_jobs(listing)
        sizes = []
        for job in jobs:
            size = 1
            if job.get("status") == "completed":
                with contextlib.suppress(FileNotFoundError):
                    size += self.job_path(day, job["job_id"]).stat().st_size
            sizes.append(size)
        total = sum(sizes)
        shards, start, acc = [], 0, 0
        for i, size in enumerate(sizes):
            acc += size
            if acc * max_shards >= total * (len(shards) + 1) and len(shards) < max_shards - 1:
                shards.append(LandedJobs(self.root.parent, day, jobs[start : i + 1]))
                start = i + 1
        shards.append(LandedJobs(self.root.parent, day, jobs[start:]))
        return shards

    def landed_bytes(self, day: dt.date) -> int:
        """Total size of the day's landed job files (how much work building the day is)."""
        day_dir = self.day_dir(day)
        if not day_dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in day_dir.iterdir() if p.name.endswith(_SUFFIX))


def _sorted_jobs(listing: Listing) -> tuple[Mapping[str, Any], ...]:
    return tuple(sorted(listing.jobs, key=lambda job: job["job_id"]))


@dataclass(frozen=True)
class LandedJobs:
    """Some of a day's jobs in ``job_id`` order, read lazily; small and picklable, so a build
    worker process can be handed it: complete dicts for landed completed jobs, else the
    listing object."""

    data_dir: Path
    day: dt.date
    summaries: tuple[Mapping[str, Any], ...]

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        store = RawStore(self.data_dir)
        for summary in self.summaries:
            yield _landed_or_summary(store, self.day, summary)


def _landed_or_summary(
    store: RawStore, day: dt.date, summary: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The landed complete job of a listed completed job, else its listing object."""
    if summary.get("status") == "completed" and store.has_job(day, summary["job_id"]):
        return store.get_job(day, summary["job_id"])
    return summary


# How often a build worker looks for the next job while the landing is still running.
_POLL_SECONDS = 0.005


class LandingAborted(RuntimeError):
    """The landing a build worker was following ended without landing all its jobs."""


def _landing_done(fd: int, timeout: float) -> bool:
    """Whether ``done`` arrived on ``fd`` within ``timeout``; raises if the writer went away."""
    readable, _, _ = select.select([fd], [], [], timeout)
    if not readable:
        return False
    if os.read(fd, 16).startswith(b"done"):
        return True
    raise LandingAborted("the landing stopped before all jobs were landed")


@dataclass(frozen=True)
class ArrivingJobs:
    """:class:`LandedJobs` of a day whose ``expected`` jobs are being landed right now, for a
    build worker that runs beside the landing: it waits for each expected job's file in turn.
    ``done`` on ``signal_fd`` (the worker's stdin) ends the landing: an expected job still not
    landed then was deleted upstream and is left out, as the day's new listing leaves it out.
    End-of-file without ``done`` means the landing failed: the shard raises."""

    data_dir: Path
    day: dt.date
    summaries: tuple[Mapping[str, Any], ...]
    expected: frozenset[str]
    signal_fd: int = 0

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        store = RawStore(self.data_dir)
        done = False
        for summary in self.summaries:
            job_id = summary["job_id"]
            if summary.get("status") != "completed" or job_id not in self.expected:
                yield _landed_or_summary(store, self.day, summary)
                continue
            while not (landed := store.has_job(self.day, job_id)) and not done:
                done = _landing_done(self.signal_fd, _POLL_SECONDS)
            if landed or store.has_job(self.day, job_id):
                yield store.get_job(self.day, job_id)


def arriving_shards(
    data_dir: Path, day: dt.date, jobs: Iterable[Mapping[str, Any]], expected: Iterable[str], n: int
) -> list[ArrivingJobs]:
    """The day's listed ``jobs`` in ``job_id`` order, cut into at most ``n`` contiguous runs with
    about the same number of ``expected`` (to be landed) jobs each."""
    ordered = tuple(sorted(jobs, key=lambda job: job["job_id"]))
    wanted = frozenset(expected)
    marks = [i for i, job in enumerate(ordered) if job["job_id"] in wanted]
    n = max(1, min(n, len(marks)))
    cuts = [0] + [marks[len(marks) * k // n] for k in range(1, n)] + [len(ordered)]
    return [
        ArrivingJobs(data_dir, day, ordered[a:b], wanted & {j["job_id"] for j in ordered[a:b]})
        for a, b in itertools.pairwise(cuts)
    ]
