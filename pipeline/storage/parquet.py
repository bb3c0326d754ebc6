"""``write_day``: stream one day's jobs into every table's partition, replacing it atomically.

Each table's rows are flushed to a new zstd Parquet file every chunk (see
``pipeline.tables.catalog.DEFAULT_MAX_ROWS``, 64 MiB of JSON text at most), so peak memory does
not grow with the size of the day. Files go to a local staging dir (the store's); when every
table is complete, each partition is committed whole (``Store.commit_partition``: a directory
swap on a local disk, one PUT in a bucket). A failure (or a kill) before the commit leaves the
previous partitions untouched; the next write removes the leftovers. Two writers of the same day
serialize on the day's lock (fcntl on a local disk, a lease in a bucket).

Each partition also holds ``_build.json`` (not a Parquet file, so readers' globs skip it): the
caller's fingerprint of the input, the row and file counts. :func:`built_day` reads it back so an
unchanged day is not rebuilt.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.storage.layout import (
    BUILD_RECORD,
    as_date,
    day_lock_name,
    is_parquet,
    partition_prefix,
)
from pipeline.storage.results import DayWriteResult, TableWriteResult
from pipeline.storage.schema_store import ensure_stored, persistent_register
from pipeline.storage.shards import (
    Shard,
    finish_worker,
    shard_prefixes,
    start_worker,
    write_shard,
)
from pipeline.storage.store import FileInfo, Store, open_store
from pipeline.tables.catalog import FIXED_COLUMNS, TABLES, new_schema

# A day's staged bytes up to which its tables are committed at once: a bucket holds each object
# in memory while it PUTs it, so a big day's go one after another.
PARALLEL_COMMIT_BYTES = 32 * 2**20


class DayBuild:
    """One day's build in progress: the day's lock (unless the caller holds it: ``locked``), a
    staging dir, the shards' writers, and the final swap. Leaving the block without
    :meth:`finish` kills the workers and drops the staging dir, so the live partitions stay as
    they were.

    Shards are contiguous ``job_id`` runs, in order: each writes its own part files, so rows stay
    sorted by ``job_id`` in file-name order.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | Store,
        day: dt.date | str,
        *,
        fetched_at: dt.datetime | int | None,
        max_rows: Mapping[str, int] | None = None,
        locked: bool = False,
    ) -> None:
        self.root = open_store(data_dir)
        self.locked = locked
        self.day = as_date(day)
        self.fetched_at = fetched_at
        self.max_rows = max_rows
        self._stack = contextlib.ExitStack()
        self._stage: Path | None = None
        self._workers: list[subprocess.Popen[bytes]] = []
        self._written: list[Shard | None] = []

    def __enter__(self) -> DayBuild:
        with self._stack as stack:
            if not self.locked:  # else the caller holds the day's lock (a second would wait)
                stack.enter_context(self.root.lock(day_lock_name(self.day)))
            self._stage = stack.enter_context(self.root.staging())
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._stack.close()

    def _args(
        self, prefix: str, shard: Iterable[Mapping[str, Any]], shards: int
    ) -> tuple[Any, ...]:
        stage, rows = self._stage, self.max_rows
        return (self.root, self.day, stage, prefix, shard, self.fetched_at, rows, shards)

    def start(
        self, shards: Sequence[Iterable[Mapping[str, Any]]], *, local_first: bool = True
    ) -> None:
        """Flatten ``shards``: the first here (unless ``local_first`` is false), each other one in
        a worker process (``python -m pipeline.storage._build_worker``; so shards must pickle,
        and load lazily: a shard is a recipe for its jobs, not the jobs)."""
        prefixes = shard_prefixes(len(shards))
        remote = list(zip(prefixes, shards, strict=True))[1 if local_first else 0 :]
        self._written = [None] * len(shards)
        assert self._stage is not None
        self._workers = [
            start_worker(
                self._args(prefix, shard, len(shards)),
                self._stage / f"worker-{prefix}args.pickle",
                follows_landing=not local_first,
            )
            for prefix, shard in remote
        ]
        if local_first:
            self._written[0] = write_shard(*self._args(prefixes[0], shards[0], len(shards)))

    def scratch(self, name: str) -> Path:
        """A directory of the build's staging, gone with it."""
        assert self._stage is not None
        path = self._stage / name
        path.mkdir(exist_ok=True)
        return path

    def landing_done(self) -> None:
        """Tell shards waiting for landed jobs that the landing is over (see ``_build_worker``)."""
        for proc in self._workers:
            if proc.stdin is not None and not proc.stdin.closed:
                try:
                    proc.stdin.write(b"done\n")
                    proc.stdin.close()
                except BrokenPipeError:  # the worker died: finish() says how
                    pass

    def finish(self, fingerprint: str | None) -> DayWriteResult:
        """Wait for the shards, record ``fingerprint`` in each partition and swap them all in."""
        self.landing_done()
        outcomes = [finish_worker(w) for w in self._workers]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        remote = iter(outcomes)
        written = [w if w is not None else next(remote) for w in self._written]
        return _commit(self.root, self.day, written, fingerprint)


def _commit(
    root: Store, day: dt.date, written: list[Shard], fingerprint: str | None
) -> DayWriteResult:
    ids = [(w.first, w.last) for w in written if w.first is not None]
    for (_, last), (first, _) in itertools.pairwise(ids):
        if first <= last:
            raise ValueError(f"shards not in increasing job_id order: {first!r}")
    files = written[0].files
    for w in written[1:]:
        for t in TABLES:
            files[t].merge(w.files[t])
    count = sum(w.count for w in written)
    root.assert_locked(day_lock_name(day))
    register = persistent_register(root)
    empty: dict[str, pa.Schema] = {}
    for t in TABLES:
        schema = new_schema(t)
        empty[t] = schema.arrow_schema([name for name, _ in FIXED_COLUMNS[t]])
        if not files[t].files:
            files[t].write(empty[t].empty_table())
        ensure_stored(root, schema, register)

    def commit(t: str) -> TableWriteResult:
        f = files[t]
        prefix = partition_prefix(t, day)
        record = {"fingerprint": fingerprint, "jobs": count, "rows": f.rows}
        live = root.commit_partition(f.directory, prefix, record)
        schema = f.schema if f.schema is not None else empty[t]
        result = TableWriteResult(t, f.rows, len(live), root, prefix, schema, f.preview)
        result.live_files = live
        return result

    staged = sum(p.stat().st_size for t in TABLES for p in files[t].directory.iterdir())
    if staged <= PARALLEL_COMMIT_BYTES:
        committed = root.map(commit, list(TABLES))
    else:
        committed = [commit(t) for t in TABLES]
    results = dict(zip(TABLES, committed, strict=True))
    return DayWriteResult(day=day, jobs=count, tables=results)


def write_day(
    data_dir: str | os.PathLike[str] | Store,
    day: dt.date | str,
    jobs: Iterable[Mapping[str, Any]],
    *,
    fetched_at: dt.datetime | int | None,
    max_rows: Mapping[str, int] | None = None,
    fingerprint: str | None = None,
    locked: bool = False,
) -> DayWriteResult:
    """Replace the ``created_date=day`` partition of all six tables with ``jobs``.

    ``jobs`` (complete job dicts or listing summaries) must come in strictly increasing
    ``job_id`` order; anything else raises ``ValueError`` before the partitions are touched.
    ``max_rows`` overrides the per-table chunk size (rows per Parquet file). ``fingerprint``
    (of whatever ``jobs`` came from) is recorded with each partition for :func:`built_day`.
    ``locked``: the caller holds the day's lock.
    """
    return write_day_shards(
        data_dir,
        day,
        [jobs],
        fetched_at=fetched_at,
        max_rows=max_rows,
        fingerprint=fingerprint,
        locked=locked,
    )


def write_day_shards(
    data_dir: str | os.PathLike[str] | Store,
    day: dt.date | str,
    shards: Sequence[Iterable[Mapping[str, Any]]],
    *,
    fetched_at: dt.datetime | int | None,
    max_rows: Mapping[str, int] | None = None,
    fingerprint: str | None = None,
    locked: bool = False,
) -> DayWriteResult:
    """:func:`write_day` of the concatenation of ``shards``, flattened in parallel (see
    :meth:`DayBuild.start`); memory grows with the shards."""
    with DayBuild(data_dir, day, fetched_at=fetched_at, max_rows=max_rows, locked=locked) as build:
        build.start(shards)
        return build.finish(fingerprint)


def built_day(
    data_dir: str | os.PathLike[str] | Store,
    day: dt.date | str,
    fingerprint: str,
    *,
    locked: bool = False,
) -> DayWriteResult | None:
    """The day's partitions as :func:`write_day` reported them, if every table was last built
    with ``fingerprint`` (and its files are all there); else None: the day needs a build.
    ``locked``: the caller holds the day's lock."""
    store = open_store(data_dir)
    day = as_date(day)
    lock = contextlib.nullcontext() if locked else store.lock(day_lock_name(day))

    def read(t: str) -> tuple[str, dict[str, Any] | None, dict[str, FileInfo]]:
        prefix = partition_prefix(t, day)
        files = store.list_files(prefix)
        parts = {name: info for name, info in files.items() if is_parquet(name)}
        if BUILD_RECORD not in files:
            return prefix, None, parts
        try:
            record = json.loads(store.read_bytes(f"{prefix}/{BUILD_RECORD}"))
        except (OSError, ValueError):
            return prefix, None, parts
        matches = record.get("fingerprint") == fingerprint and store.record_matches(record, files)
        return prefix, record if matches else None, parts

    with lock:
        records = store.map(read, list(TABLES))
    results = {}
    jobs = None
    for t, (prefix, record, parts) in zip(TABLES, records, strict=True):
        if record is None or (jobs is not None and record.get("jobs") != jobs):
            return None
        jobs = record.get("jobs")
        results[t] = TableWriteResult(t, record["rows"], record["files"], store, prefix)
        results[t].live_files = parts
    return DayWriteResult(day=day, jobs=int(jobs or 0), tables=results, written=False)
