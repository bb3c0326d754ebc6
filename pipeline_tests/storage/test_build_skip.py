"""build_day skips an unchanged day and still reports what its partitions hold (a local data dir
and a bucket: a file's version is its mtime or its ETag)."""

import datetime as dt
import time

import obstore

from pipeline.storage.layout import BUILD_RECORD, partition_prefix
from pipeline.storage.raw import RawStore
from pipeline.storage.store import open_store
from pipeline.sync import build_day
from pipeline_tests.stores import walk

DAY = dt.date(2026, 11, 1)
LISTED_AT = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def _job(job_id: str, n: int) -> dict:
    segs = [{"start_time": i, "end_time": i + 1, "entities": {"k": i, "s": "x"}} for i in range(n)]
    return {"job_id": job_id, "status": "completed", "data": {"segment_entities": segs}, "total": n}


def _land(store: RawStore, jobs: list[dict], extra: list[dict] = ()) -> None:
    for job in jobs:
        store.put_job(DAY, job)
    summaries = [{"job_id": j["job_id"], "status": "completed"} for j in jobs] + list(extra)
    store.write_listing(DAY, summaries, LISTED_AT)


def _versions(data_dir) -> dict:
    """When each Parquet file was written: a local file's mtime (ns); an object's ETag and
    Last-Modified (an ETag is the content's MD5, the same for a rewrite of the same bytes;
    Last-Modified has whole seconds, so a bucket's test waits a second between builds)."""
    store = open_store(data_dir)
    out = {}
    for key in walk(store, "tables"):
        head, _, name = key.rpartition("/")
        if name.endswith(".parquet"):
            out[key] = store.list_files(head)[name].version
            if not store.is_local:
                out[key] = (out[key], obstore.head(store._store, key)["last_modified"])
    if not store.is_local:
        time.sleep(1.05)
    return out


def test_an_unchanged_day_is_not_rebuilt_and_reports_the_same(local_or_bucket):
    store = RawStore(local_or_bucket)
    _land(store, [_job("a", 3), _job("b", 2)])
    first = build_day(local_or_bucket, DAY)
    files = _versions(local_or_bucket)
    # A new listing of the same jobs (only listed_at differs) changes nothing.
    store.write_listing(
        DAY, [{"job_id": j, "status": "completed"} for j in "ab"], LISTED_AT + dt.timedelta(1)
    )
    again = build_day(local_or_bucket, DAY)
    assert _versions(local_or_bucket) == files
    assert again.jobs == first.jobs == 2
    assert again.rows == first.rows
    assert again.rows["segment_entities"] == 5
    assert again.paths == first.paths
    for t, result in first.tables.items():
        assert again.tables[t].files == result.files
        assert again.tables[t].schema.names == result.schema.names
        assert again.tables[t].schema.types == result.schema.types
        assert again.tables[t].preview_markdown == result.preview_markdown
    # The versions compared do tell a rebuild: one forced (its records gone) changes them all.
    for t in first.tables:
        store.store.delete(f"{partition_prefix(t, DAY)}/{BUILD_RECORD}")
    build_day(local_or_bucket, DAY)
    rebuilt = _versions(local_or_bucket)
    assert rebuilt.keys() == files.keys()
    assert all(rebuilt[k] != v for k, v in files.items())


def test_a_changed_landing_is_rebuilt(local_or_bucket):
    store = RawStore(local_or_bucket)
    _land(store, [_job("a", 3)])
    assert build_day(local_or_bucket, DAY).rows["segment_entities"] == 3
    _land(store, [_job("a", 3), _job("b", 4)])  # a job completed and was landed
    assert build_day(local_or_bucket, DAY).rows["segment_entities"] == 7
    _land(store, [_job("a", 3), _job("b", 4)], [{"job_id": "c", "status": "pending"}])
    assert build_day(local_or_bucket, DAY).rows["extract_jobs"] == 3
    store.prune(DAY, ["a"])
    _land(store, [_job("a", 3)])  # b deleted upstream
    assert build_day(local_or_bucket, DAY).rows["segment_entities"] == 3


def test_a_damaged_partition_is_rebuilt(local_or_bucket):
    store = RawStore(local_or_bucket)
    _land(store, [_job("a", 3)])
    result = build_day(local_or_bucket, DAY)
    prefix = partition_prefix("segment_entities", DAY)
    [part] = [n for n in store.store.list_files(prefix) if n.startswith("part-")]
    store.store.delete(f"{prefix}/{part}")
    again = build_day(local_or_bucket, DAY)
    assert again.rows == result.rows
    assert store.store.exists(f"{prefix}/{part}")
    assert store.store.exists(f"{prefix}/{BUILD_RECORD}")
