"""build_day skips an unchanged day and still reports what its partitions hold."""

import datetime as dt

from pipeline.storage.layout import BUILD_RECORD
from pipeline.storage.raw import RawStore
from pipeline.sync import build_day

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


def _mtimes(data_dir) -> dict:
    return {p: p.stat().st_mtime_ns for p in (data_dir / "tables").rglob("*.parquet")}


def test_an_unchanged_day_is_not_rebuilt_and_reports_the_same(tmp_path):
    store = RawStore(tmp_path)
    _land(store, [_job("a", 3), _job("b", 2)])
    first = build_day(tmp_path, DAY)
    files = _mtimes(tmp_path)
    # A new listing of the same jobs (only listed_at differs) changes nothing.
    store.write_listing(
        DAY, [{"job_id": j, "status": "completed"} for j in "ab"], LISTED_AT + dt.timedelta(1)
    )
    again = build_day(tmp_path, DAY)
    assert _mtimes(tmp_path) == files
    assert again.jobs == first.jobs == 2
    assert again.rows == first.rows
    assert again.rows["segment_entities"] == 5
    assert again.paths == first.paths
    for t, result in first.tables.items():
        assert again.tables[t].files == result.files
        assert again.tables[t].schema.names == result.schema.names
        assert again.tables[t].schema.types == result.schema.types
        assert again.tables[t].preview_markdown == result.preview_markdown


def test_a_changed_landing_is_rebuilt(tmp_path):
    store = RawStore(tmp_path)
    _land(store, [_job("a", 3)])
    assert build_day(tmp_path, DAY).rows["segment_entities"] == 3
    _land(store, [_job("a", 3), _job("b", 4)])  # a job completed and was landed
    assert build_day(tmp_path, DAY).rows["segment_entities"] == 7
    _land(store, [_job("a", 3), _job("b", 4)], [{"job_id": "c", "status": "pending"}])
    assert build_day(tmp_path, DAY).rows["extract_jobs"] == 3
    store.prune(DAY, ["a"])
    _land(store, [_job("a", 3)])  # b deleted upstream
    assert build_day(tmp_path, DAY).rows["segment_entities"] == 3


def test_a_damaged_partition_is_rebuilt(tmp_path):
    store = RawStore(tmp_path)
    _land(store, [_job("a", 3)])
    result = build_day(tmp_path, DAY)
    part = next(iter((tmp_path / "tables" / "segment_entities").glob("*/part-*.parquet")))
    part.unlink()
    again = build_day(tmp_path, DAY)
    assert again.rows == result.rows
    assert part.exists()
    record = part.parent / BUILD_RECORD
    assert record.exists()
