"""A day built by several worker processes holds exactly what one writer would write."""

import datetime as dt

import pandas as pd
import pytest

import pipeline.sync.build
from pipeline.emulator import Dataset
from pipeline.storage import read_table
from pipeline.storage.parquet import write_day_shards
from pipeline.storage.raw import RawStore
from pipeline.sync import build_day
from pipeline.tables import TABLES

DAY = dt.date(2026, 1, 15)
LISTED_AT = dt.datetime(2026, 1, 16, tzinfo=dt.UTC)


def _land(data_dir, dataset: Dataset) -> None:
    store = RawStore(data_dir)
    ids = dataset.job_ids_for_day(DAY)
    for job_id in ids:
        if dataset.status(job_id) == "completed":
            store.put_job(DAY, dataset.complete_job(job_id))
    store.write_listing(DAY, [dataset.summary(j) for j in ids], LISTED_AT)


def _tables(data_dir) -> dict[str, pd.DataFrame]:
    return {t: read_table(t, data_dir) for t in TABLES}


def test_sharded_build_equals_a_single_writer(tmp_path, monkeypatch):
    dataset = Dataset(seed=3, jobs=40, days=1, end_date=DAY, hostile=True)
    one, many = tmp_path / "one", tmp_path / "many"
    _land(one, dataset)
    _land(many, dataset)
    monkeypatch.setattr(pipeline.sync.build, "SHARD_MIN_BYTES", 1)
    monkeypatch.setattr(pipeline.sync.build, "build_workers", lambda: 1)
    single = build_day(one, DAY)
    monkeypatch.setattr(pipeline.sync.build, "build_workers", lambda: 3)
    sharded = build_day(many, DAY)
    assert any(p.name.startswith("part-02-") for p in (many / "tables").rglob("*.parquet"))
    assert sharded.rows == single.rows and sharded.jobs == single.jobs
    expected, got = _tables(one), _tables(many)
    for t in TABLES:
        pd.testing.assert_frame_equal(got[t], expected[t], check_like=True)


def test_a_failing_worker_fails_the_build_and_leaves_the_partitions(tmp_path):
    shards = [[{"job_id": "b", "status": "pending"}], [{"job_id": "a", "status": "pending"}]]
    with pytest.raises(ValueError, match="increasing job_id"):
        write_day_shards(tmp_path, DAY, shards, fetched_at=LISTED_AT)
    shards = [[{"job_id": "a", "status": "pending"}], [{"status": "no id"}]]
    with pytest.raises(ValueError, match="without a string job_id"):
        write_day_shards(tmp_path, DAY, shards, fetched_at=LISTED_AT)
    assert not list((tmp_path / "tables").rglob("*.parquet"))


def test_a_build_worker_builds_its_shard_without_importing_pandas(tmp_path):
    """A worker starts per shard and per day: pandas (which pyarrow imports on its first list
    conversion unless it is absent) would add 0.2 s of CPU to each."""
    import pickle
    import subprocess
    import sys

    dataset = Dataset(seed=5, jobs=6, days=1, end_date=DAY)
    jobs = [dataset.complete_job(j) for j in sorted(dataset.job_ids_for_day(DAY))]
    args = (tmp_path, DAY, tmp_path / "stage", "part-00-", jobs, LISTED_AT, None, 1)
    (tmp_path / "args.pickle").write_bytes(pickle.dumps(args))
    code = (
        "import sys; from pipeline.storage import _build_worker as w; w.main(); "
        "print('pandas' in sys.modules, file=sys.stderr)"
    )
    cmd = [sys.executable, "-c", code, str(tmp_path / "args.pickle")]
    out = subprocess.run(cmd, capture_output=True, check=True)
    status, shard = pickle.loads(out.stdout)
    assert status == "ok", shard
    assert shard.count == len(jobs)
    assert out.stderr.decode().strip().splitlines()[-1] == "False"
