"""``write_day``: stream one day's jobs into every table's partition, replacing it atomically.

Each table's rows are flushed to a new zstd Parquet file every chunk (see
``pipeline.tables.frames.DEFAULT_MAX_ROWS``, 64 MiB of JSON text at most), so peak memory does
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
import gc
import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

from pipeline.storage.atomic import fsync_file, naming_full_device
from pipeline.storage.layout import (
    BUILD_RECORD,
    PARTITION_KEY,
    as_date,
    day_lock_name,
    is_parquet,
    partition_prefix,
)
from pipeline.storage.schema_store import ensure_stored, persistent_register, writer_schema
from pipeline.storage.store import FileInfo, Store, open_store
from pipeline.tables.frames import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    FIXED_COLUMNS,
    TABLES,
    JobRows,
    make_accumulator,
    new_schema,
    to_pandas,
)

ROW_GROUP_SIZE = 128 * 1024
# A day's staged bytes up to which its tables are committed at once: a bucket holds each object
# in memory while it PUTs it, so a big day's go one after another.
PARALLEL_COMMIT_BYTES = 32 * 2**20
PREVIEW_ROWS = 5
_PREVIEW_CHARS = 200


class TableWriteResult:
    """What one table's partition now holds.

    ``schema`` and ``preview_rows`` of a partition found already built (``built_day``) are read
    from its files on first use: a re-sync that only reports row counts opens no Parquet file.
    ``path`` says where the partition lives (a directory or an ``s3://`` prefix).
    """

    def __init__(
        self,
        table: str,
        rows: int,
        files: int,
        store: Store,
        prefix: str,
        schema: pa.Schema | None = None,
        preview_rows: list[dict[str, Any]] | None = None,
    ) -> None:
        self.table = table
        self.rows = rows
        self.files = files
        self.store = store
        self.prefix = prefix
        self.path = store.describe(prefix)
        self._schema = schema
        self._preview_rows = preview_rows
        # The partition's Parquet files (as ``Store.list_files`` gives them) when this result
        # was made: the ones a write made live, or those found built; None when not known.
        self.live_files: dict[str, FileInfo] | None = None

    def __repr__(self) -> str:
        return f"TableWriteResult({self.table!r}, rows={self.rows}, files={self.files})"

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._describe()
        assert self._schema is not None
        return self._schema

    @property
    def preview_rows(self) -> list[dict[str, Any]]:
        if self._preview_rows is None:
            self._describe()
        assert self._preview_rows is not None
        return self._preview_rows

    def _describe(self) -> None:
        """The schema and first rows, read back from the partition's files."""
        fs, root = self.store.parquet_source(self.prefix)
        names = sorted(n for n in self.store.list_files(self.prefix) if is_parquet(n))
        files = [pq.ParquetFile(fs.open_input_file(f"{root}/{n}")) for n in names]
        self._schema = pa.unify_schemas([f.schema_arrow for f in files])
        preview: list[dict[str, Any]] = []
        for f in files:
            if len(preview) >= PREVIEW_ROWS:
                break
            head = f.iter_batches(batch_size=PREVIEW_ROWS - len(preview))
            batch = next(head, None)
            if batch is not None:
                preview += [{k: _short(v) for k, v in row.items()} for row in _python_rows(batch)]
        self._preview_rows = preview

    @property
    def preview(self) -> pd.DataFrame:
        """The first rows (long strings cut) as pandas, made on demand: reporting a day, even
        an unchanged one, never needs pandas (0.15 s to import)."""
        return to_pandas(pa.Table.from_pylist(self.preview_rows, schema=self.schema))

    @property
    def preview_markdown(self) -> str:
        """The preview as a Markdown table (JSON-ish cells, long values cut)."""
        cols = self.schema.names
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in self.preview_rows:
            cells = [_md_cell(row.get(c)) for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


@dataclass(frozen=True)
class DayWriteResult:
    """The outcome of :func:`write_day`, for logs and Dagster metadata."""

    day: dt.date
    jobs: int
    tables: dict[str, TableWriteResult]
    # What the partitions were built from, when the caller knows: its listing and landed files.
    source: tuple[Any, dict[str, FileInfo]] | None = None
    # False for partitions found already built (``built_day``), True for a write.
    written: bool = True

    @property
    def rows(self) -> dict[str, int]:
        return {t: r.rows for t, r in self.tables.items()}

    @property
    def paths(self) -> dict[str, str]:
        return {t: r.path for t, r in self.tables.items()}

    @property
    def schemas(self) -> dict[str, pa.Schema]:
        return {t: r.schema for t, r in self.tables.items()}


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _PREVIEW_CHARS:
        return value[:_PREVIEW_CHARS] + "…"
    return value


_UTC_MS = pa.timestamp("ms", tz="UTC")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _python_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """``table.to_pylist()``, except that UTC timestamps are made here: pyarrow imports pandas
    (0.15 s) to convert them, and reporting an unchanged day needs nothing else from it."""
    columns = {}
    for column_field, column in zip(table.schema, table.columns, strict=True):
        if column_field.type == _UTC_MS:
            ms = column.cast(pa.int64()).to_pylist()
            columns[column_field.name] = [
                None if v is None else _EPOCH + dt.timedelta(milliseconds=v) for v in ms
            ]
        else:
            columns[column_field.name] = column.to_pylist()
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _md_cell(value: Any) -> str:
    text = "" if value is None or value != value else str(value)
    text = text if len(text) <= 60 else text[:60] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


class _PartitionFiles:
    """Writes a table's chunks as ``<prefix>NNNNN.parquet`` into a staged partition directory.
    ``durable``: each file is synced (a local store renames the directory into place; a bucket's
    commit uploads the files, so a crash only loses the staging)."""

    def __init__(
        self, table: str, directory: Path, prefix: str = "part-", *, durable: bool = True
    ) -> None:
        self.table = table
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
        self._add_preview(_python_rows(chunk.slice(0, PREVIEW_ROWS)))

    def _add_schema(self, schema: pa.Schema | None) -> None:
        if schema is not None:
            self.schema = schema if self.schema is None else pa.unify_schemas([self.schema, schema])

    def _add_preview(self, rows: list[dict[str, Any]]) -> None:
        rows = rows[: PREVIEW_ROWS - len(self.preview)]
        self.preview += [{k: _short(v) for k, v in row.items()} for row in rows]

    def merge(self, other: _PartitionFiles) -> None:
        """Add a later shard's files (written by another process into the same directory)."""
        self.files += other.files
        self.rows += other.rows
        self._add_schema(other.schema)
        self._add_preview(other.preview)


@dataclass
class _Shard:
    """What one writer (process) wrote: per-table files, and its jobs' count and id range."""

    files: dict[str, _PartitionFiles]
    count: int
    first: str | None
    last: str | None


@contextlib.contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Flattening allocates millions of small objects and keeps many alive in the accumulators,
    so the default thresholds run the cyclic GC over them thousands of times: about a tenth of a
    build's CPU. The rows hold no cycles; collect far less often while building."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _write_shard(
    root: Store | Path,
    day: dt.date,
    stage: Path,
    prefix: str,
    jobs: Iterable[Mapping[str, Any]],
    fetched_at: dt.datetime | int | None,
    max_rows: Mapping[str, int] | None,
    memory_share: int = 1,
) -> _Shard:
    """Flatten ``jobs`` into each table's staged partition, as files named ``<prefix>NNNNN``.

    With ``memory_share`` n, the chunks are n times smaller than one writer's (unless
    ``max_rows`` sets them): n shards building at once stay within one writer's memory.
    """
    root = open_store(root)
    register = persistent_register(root)
    files = {
        t: _PartitionFiles(t, stage / t / f"{PARTITION_KEY}={day}", prefix, durable=root.is_local)
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
    with _fewer_gc_passes():
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
    return _Shard(files, count, first, previous)


def _start_worker(
    args: tuple[Any, ...], args_path: Path, *, follows_landing: bool
) -> subprocess.Popen[bytes]:
    """A build worker flattening one shard, its arguments pickled to ``args_path``. When it
    ``follows_landing``, its stdin stays open for :meth:`DayBuild.landing_done`."""
    args_path.write_bytes(pickle.dumps(args))
    cmd = [sys.executable, "-m", "pipeline.storage._build_worker", str(args_path)]
    stdin = subprocess.PIPE if follows_landing else subprocess.DEVNULL
    # numpy's import starts a BLAS thread per CPU, which a worker never uses: ~0.1 CPU s each.
    env = {"OPENBLAS_NUM_THREADS": "1", **os.environ}
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, env=env)


def _finish_worker(proc: subprocess.Popen[bytes]) -> _Shard | BaseException:
    """The worker's shard, or the exception it failed with (raised once all have finished)."""
    assert proc.stdout is not None
    out = proc.stdout.read()
    code = proc.wait()
    if code != 0 or not out:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return RuntimeError(f"a build worker process failed ({how})")
    status, value = pickle.loads(out)
    return value if status == "ok" or isinstance(value, BaseException) else RuntimeError(value)


def _prefixes(shards: int) -> list[str]:
    return ["part-"] if shards == 1 else [f"part-{i:02d}-" for i in range(shards)]


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
        self._written: list[_Shard | None] = []

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
        prefixes = _prefixes(len(shards))
        remote = list(zip(prefixes, shards, strict=True))[1 if local_first else 0 :]
        self._written = [None] * len(shards)
        assert self._stage is not None
        self._workers = [
            _start_worker(
                self._args(prefix, shard, len(shards)),
                self._stage / f"worker-{prefix}args.pickle",
                follows_landing=not local_first,
            )
            for prefix, shard in remote
        ]
        if local_first:
            self._written[0] = _write_shard(*self._args(prefixes[0], shards[0], len(shards)))

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
        outcomes = [_finish_worker(w) for w in self._workers]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        remote = iter(outcomes)
        written = [w if w is not None else next(remote) for w in self._written]
        return _commit(self.root, self.day, written, fingerprint)


def _commit(
    root: Store, day: dt.date, written: list[_Shard], fingerprint: str | None
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
