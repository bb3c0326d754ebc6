"""Building a day's partitions of the six tables from its landing (``build_day``), and the
fingerprint each build records of what it was built from."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

from pipeline.storage import DayWriteResult, write_day
from pipeline.storage.parquet import built_day, write_day_shards
from pipeline.storage.raw import Listing, RawStore
from pipeline.storage.store import FileInfo, Store

# A data dir: a local path, a bucket URL (s3://bucket/prefix) or an open Store.
DataDir = str | os.PathLike[str] | Store

# Landed (zstd) bytes per build worker at least: enough rows to pay back a worker's start.
SHARD_MIN_BYTES = 2 * 2**20
# Part of every build fingerprint: bump it when the tables built from the same landing change.
BUILD_VERSION = "3"


def build_fingerprint(
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
    fingerprint = build_fingerprint(store, day, listing, landed)
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
    # A worker process's start (a Python with pyarrow) is paid back by big days only.
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
