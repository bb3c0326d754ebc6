"""Atomic days without rename: while a day is rewritten again and again, a reader polling the
table as analysts read it (``tables/segment_entities/**/*.parquet`` with hive partitioning)
sees exactly one complete version of the day each time: never half of one, never two at once.

The emulator's dataset changes between syncs (a different completed job goes back to
``processing`` each time), so every rewrite gives the day new content. The readers: DuckDB over
a plain pyarrow hive dataset discovered afresh on each read (in a bucket through pyarrow's
S3FileSystem, as ``pipeline/storage/duck.py`` does; on a local disk DuckDB's own glob), and
``pipeline.read_table``.

A plain reader racing a rewrite may fail: in a bucket it sized the object before the PUT and read
its bytes after (pyarrow then finds no footer, or pages that do not add up); on a local disk
DuckDB has been seen to fail once ("Out of buffer") reading a partition swapped meanwhile. Such a
read fails loudly and the same read right after succeeds; it never returns rows of a mix, which
is what is asserted. ``pipeline.read_table`` itself reads a replaced object again.
"""

from __future__ import annotations

import datetime as dt
import threading

import duckdb
import pyarrow.dataset as ds
import pytest

import pipeline
from pipeline.cloudglue.client import CloudglueClient
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.storage.layout import table_prefix
from pipeline.storage.store import open_store
from pipeline.sync import sync_range

KEY = "atomic-key"
END = dt.date(2026, 1, 15)
REWRITES = 6

Version = frozenset[tuple[str, int]]


def _plain_read(data_dir: str) -> list[tuple[str, int]]:
    """``(job_id, segment_index)`` of every row, read the way an analyst's DuckDB would."""
    store = open_store(data_dir)
    fs, root = store.parquet_source(table_prefix("segment_entities"))
    con = duckdb.connect()
    try:
        if store.is_local:
            source = f"read_parquet('{root}/**/*.parquet', hive_partitioning = true)"
        else:
            dataset = ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive")
            con.register("segments", dataset)
            source = "segments"
        return con.execute(f"SELECT job_id, segment_index FROM {source}").fetchall()
    finally:
        con.close()


def _project_read(data_dir: str) -> list[tuple[str, int]]:
    frame = pipeline.read_table("segment_entities", data_dir)
    return list(zip(frame["job_id"], frame["segment_index"].astype(int), strict=True))


@pytest.mark.slow
def test_a_reader_polling_during_rewrites_sees_one_whole_version_of_the_day(
    local_or_bucket: str,
) -> None:
    dataset = Dataset(seed=3, jobs=14, days=1, end_date=END)
    [day] = dataset.days()
    completed = [
        j
        for j in dataset.job_ids()
        if dataset.status(j) == "completed" and dataset.complete_job(j)["total"] > 0
    ]
    assert len(completed) >= REWRITES
    versions: set[Version] = set()
    seen: list[tuple[str, Version]] = []
    problems: list[str] = []
    failed: list[tuple[str, str]] = []
    stop = threading.Event()
    ready = threading.Event()

    def reader() -> None:
        n = 0
        while not stop.is_set():
            how, read = ("plain", _plain_read) if n % 2 == 0 else ("read_table", _project_read)
            n += 1
            for _ in range(3):  # a read that fails is tried again at once, twice
                try:
                    rows = read(local_or_bucket)
                    break
                except Exception as exc:
                    failed.append((how, f"{type(exc).__name__}: {exc}"))
            else:
                problems.append(f"{how} failed three times in a row: {failed[-3:]}")
                continue
            keys = frozenset(rows)
            if len(keys) != len(rows):
                problems.append(f"{how}: {len(rows) - len(keys)} duplicate rows")
            seen.append((how, keys))
            ready.set()

    with (
        EmulatorServer(dataset, api_key=KEY) as server,
        CloudglueClient(KEY, server.base_url, max_concurrency=4) as client,
    ):

        def sync() -> Version:
            [result] = sync_range(client, local_or_bucket, [day])
            assert result.error is None, result.error
            version = frozenset(_project_read(local_or_bucket))
            versions.add(version)
            return version

        sync()
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            assert ready.wait(60)
            previous = None
            for job in completed[:REWRITES]:
                if previous is not None:
                    dataset.set_status(previous, "completed")
                dataset.set_status(job, "processing")
                previous = job
                before = len(seen)
                version = sync()
                assert not any(j == job for j, _ in version)
                while len(seen) < before + 2 and thread.is_alive():  # reads between rewrites
                    stop.wait(0.01)
        finally:
            stop.set()
            thread.join(60)

    assert len(versions) == REWRITES + 1  # every rewrite gave the day new content
    assert not problems, problems[:5]
    assert len(seen) >= 2 * REWRITES
    # A plain reader that sized the day's object before a rewrite and read it after fails,
    # loudly (the price of replacing one object in place, the only way a reader's listing
    # cannot see two versions at once); ``read_table`` reads such a file again.
    assert all(how == "plain" for how, _ in failed), failed
    assert len(failed) <= len(seen) // 10, failed
    for how, keys in seen:
        assert keys in versions, (
            f"{how} saw {len(keys)} rows, no version of the day "
            f"(versions: {sorted(len(v) for v in versions)})"
        )
