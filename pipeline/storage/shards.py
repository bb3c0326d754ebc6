"""One writer's share of a day's build: the jobs it flattens into each table's staged partition
files (:func:`write_shard`), in this process or in a worker process (``_build_worker``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage.atomic import fsync_file, naming_full_device
from pipeline.storage.layout import PARTITION_KEY
from pipeline.storage.results import PREVIEW_ROWS, preview_rows, short_values
from pipeline.storage.schema_store import persistent_register, writer_schema
from pipeline.storage.store import Store, open_store
from pipeline.tables.accumulators import make_accumulator
from pipeline.tables.catalog import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, TABLES
from pipeline.tables.rows import JobRows

ROW_GROUP_SIZE = 128 * 1024


class PartitionFiles:
    """Writes a table's chunks as ``<prefix>NNNNN.parquet`` into a staged partition directory.
    ``durable``: each file is synced (a local store renames the directory into place; a bucket's
    commit uploads the files, so a crash only loses the staging)."""

    def __init__(self, directory: Path, prefix: str = "part-", *, durable: bool = True) -> None:
        self.directory = directory
        self.prefix = prefix
        self.durable = durable
        self.files = 0
        self.rows = 0
        self.schema: pa.Schema | None = None
        self.preview: list[dict[str, Any]] = []

    def write(self, chunk: pa.Table) -> None:
        path = self.directory / f"{self.prefix}{self.files:05d}.parquet"
        with naming_full_device(path):
            self.directory.mkdir(parents=True, exist_ok=True)
            pq.write_table(chunk, path, compression="zstd", row_group_size=ROW_GROUP_SIZE)
            if self.durable:
                fsync_file(path)
        self.files += 1
        self.rows += chunk.num_rows
        self._add_schema(chunk.schema)
        if len(self.preview) < PREVIEW_ROWS:
            self._add_preview(preview_rows(chunk.slice(0, PREVIEW_ROWS)))

    def _add_schema(self, schema: pa.Schema | None) -> None:
        if schema is not None:
            self.schema = schema if self.schema is None else pa.unify_schemas([self.schema, schema])

    def _add_preview(self, rows: list[dict[str, Any]]) -> None:
        rows = rows[: PREVIEW_ROWS - len(self.preview)]
        self.preview += [short_values(row) for row in rows]

    def merge(self, other: PartitionFiles) -> None:
        """Add a later shard's files (written by another process into the same directory)."""
        self.files += other.files
        self.rows += other.rows
        self._add_schema(other.schema)
        self._add_preview(other.preview)


@dataclass
class Shard:
    """What one writer (process) wrote: per-table files, and its jobs' count and id range."""

    files: dict[str, PartitionFiles]
    count: int
    first: str | None
    last: str | None


@contextlib.contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Flattening allocates millions of small objects and keeps many alive in the accumulators,
    so the default thresholds run the cyclic GC over them thousands of times for nothing: the
    rows hold no cycles. Collect far less often while building."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def write_shard(
    root: Store | Path,
    day: dt.date,
    stage: Path,
    prefix: str,
    jobs: Iterable[Mapping[str, Any]],
    fetched_at: dt.datetime | int | None,
    max_rows: Mapping[str, int] | None,
    memory_share: int = 1,
) -> Shard:
    """Flatten ``jobs`` into each table's staged partition, as files named ``<prefix>NNNNN``.

    With ``memory_share`` n, the chunks are n times smaller than one writer's (unless
    ``max_rows`` sets them): n shards building at once stay within one writer's memory.
    """
    root = open_store(root)
    register = persistent_register(root)
    files = {
        t: PartitionFiles(stage / t / f"{PARTITION_KEY}={day}", prefix, durable=root.is_local)
        for t in TABLES
    }
    accs = {
        t: make_accumulator(
            writer_schema(root, t),
            files[t].write,
            register=register,
            max_rows=(max_rows or {}).get(t) or DEFAULT_MAX_ROWS[t] // memory_share,
            max_bytes=DEFAULT_MAX_BYTES // memory_share,
        )
        for t in TABLES
    }
    rows = JobRows(accs, fetched_at)
    first: str | None = None
    previous: str | None = None
    count = 0
    with fewer_gc_passes():
        for job in jobs:
            job_id = job.get("job_id")
            if previous is not None and isinstance(job_id, str) and job_id <= previous:
                raise ValueError(
                    f"jobs not in increasing job_id order: {job_id!r} after {previous!r}"
                )
            previous = rows.add(job)
            first = first or previous
            count += 1
        for acc in accs.values():
            acc.flush()
    return Shard(files, count, first, previous)


def start_worker(
    args: tuple[Any, ...], args_path: Path, *, follows_landing: bool
) -> subprocess.Popen[bytes]:
    """A build worker flattening one shard, its arguments pickled to ``args_path``. When it
    ``follows_landing``, its stdin stays open for :meth:`DayBuild.landing_done`."""
    args_path.write_bytes(pickle.dumps(args))
    cmd = [sys.executable, "-m", "pipeline.storage._build_worker", str(args_path)]
    stdin = subprocess.PIPE if follows_landing else subprocess.DEVNULL
    # numpy's import starts a BLAS thread per CPU, which a worker never uses.
    env = {"OPENBLAS_NUM_THREADS": "1", **os.environ}
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, env=env)


def finish_worker(proc: subprocess.Popen[bytes]) -> Shard | BaseException:
    """The worker's shard, or the exception it failed with (raised once all have finished)."""
    assert proc.stdout is not None
    out = proc.stdout.read()
    code = proc.wait()
    if code != 0 or not out:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return RuntimeError(f"a build worker process failed ({how})")
    status, value = pickle.loads(out)
    return value if status == "ok" or isinstance(value, BaseException) else RuntimeError(value)


def shard_prefixes(shards: int) -> list[str]:
    return ["part-"] if shards == 1 else [f"part-{i:02d}-" for i in range(shards)]
