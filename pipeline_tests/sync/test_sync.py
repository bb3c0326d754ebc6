"""sync_day: the build running beside the landing gives exactly the tables of land_day + build_day,
and a failed landing leaves nothing behind."""

import datetime as dt
import os
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

import pipeline.sync as sync
import pipeline.sync.ranged as ranged
from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.errors import ApiError
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.emulator.faults import FaultConfig
from pipeline.storage.errors import LandingAborted
from pipeline.storage.layout import raw_day_prefix
from pipeline.storage.raw import ArrivingJobs, RawStore
from pipeline.sync.errors import LandingError
from pipeline.tables import TABLE_NAMES

KEY = "sync-key"


@pytest.fixture
def overlapped(monkeypatch):
    """Overlap from the first job, with two build workers even on a one-CPU runner."""
    monkeypatch.setattr(ranged, "OVERLAP_MIN_JOBS", 1)
    monkeypatch.setattr(ranged, "build_workers", lambda: 2)


def _busiest_day(dataset: Dataset) -> dt.date:
    return max(
        dataset.days(),
        key=lambda d: sum(dataset.status(j) == "completed" for j in dataset.job_ids_for_day(d)),
    )


def _client(server: EmulatorServer, **kwargs) -> CloudglueClient:
    return CloudglueClient(KEY, server.base_url, max_concurrency=4, **kwargs)


def _tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    """Every table as read back (columns in their fixed order, even though the shards registered
    them concurrently), without ``fetched_at``."""
    import pipeline

    return {
        name: pipeline.read_table(name, data_dir).drop(columns=["fetched_at"], errors="ignore")
        for name in TABLE_NAMES
    }


def _mtimes(data_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (data_dir / "tables").rglob("*.parquet")}


def test_the_overlapped_build_equals_landing_then_building(tmp_path, overlapped):
    dataset = Dataset(seed=11, jobs=40, days=2, end_date=dt.date(2026, 1, 15), hostile=True)
    day = _busiest_day(dataset)
    with EmulatorServer(dataset, api_key=KEY) as server, _client(server) as client:
        landing, built = sync.sync_day(client, tmp_path / "a", day)
        sync.land_day(client, RawStore(tmp_path / "b"), day)
    reference = sync.build_day(tmp_path / "b", day)

    assert landing.fetched == landing.jobs_by_status["completed"] >= 2
    assert built.rows == reference.rows and built.jobs == reference.jobs
    # Two shards, each writing its own part files.
    assert {p.name for p in Path(built.paths["segment_entities"]).glob("*.parquet")} == {
        "part-00-00000.parquet",
        "part-01-00000.parquet",
    }
    ours, theirs = _tables(tmp_path / "a"), _tables(tmp_path / "b")
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(ours[name], theirs[name])  # column order included
    # It recorded the landing's fingerprint: building again is a no-op.
    files = _mtimes(tmp_path / "a")
    assert sync.build_day(tmp_path / "a", day).rows == built.rows
    assert _mtimes(tmp_path / "a") == files


def test_a_job_deleted_while_landing_is_left_out_as_build_day_leaves_it_out(tmp_path, overlapped):
    dataset = Dataset(seed=12, jobs=30, days=1, end_date=dt.date(2026, 1, 15))
    day = _busiest_day(dataset)
    completed = sorted(j for j in dataset.job_ids_for_day(day) if dataset.status(j) == "completed")
    deleted = completed[len(completed) // 2]
    with_segments = {j for j in completed if dataset.complete_job(j)["total"] > 0} - {deleted}
    listed = len(dataset.job_ids_for_day(day)) - 1

    def delete_after_listing(event: str, _info: dict) -> None:
        if event == "listed":
            dataset.delete_job(deleted)

    with EmulatorServer(dataset, api_key=KEY) as server, _client(server) as client:
        landing, built = sync.sync_day(client, tmp_path, day, progress=delete_after_listing)
    assert [job_id for job_id, _ in landing.skipped] == [deleted]
    assert built.jobs == listed
    assert set(_tables(tmp_path)["segment_entities"]["job_id"]) == with_segments
    assert sync.build_day(tmp_path, day).rows == built.rows  # same fingerprint as a rebuild


def _children() -> list[psutil.Process]:
    """This process's running children but the session's object store (``weed``, started by a
    bucket test that ran earlier in this process)."""
    return [c for c in psutil.Process().children() if c.is_running() and c.name() != "weed"]


def test_a_failed_landing_leaves_the_partitions_and_no_worker_behind(tmp_path, overlapped):
    dataset = Dataset(seed=13, jobs=30, days=1, end_date=dt.date(2026, 1, 15))
    day = _busiest_day(dataset)
    victim = sorted(j for j in dataset.job_ids_for_day(day) if dataset.status(j) == "completed")[0]
    with EmulatorServer(dataset, api_key=KEY) as server:
        with _client(server) as client:
            sync.sync_day(client, tmp_path, day)
        before = _mtimes(tmp_path)
        shutil.rmtree(tmp_path / raw_day_prefix(day))  # everything must be fetched again

        def outage_after_listing(event: str, _info: dict) -> None:
            if event == "listed":
                server.faults = FaultConfig(server_error=1.0, burst=100)

        with (
            _client(server, max_retries=1, backoff_base=0.01) as client,
            pytest.raises(LandingError, match="HTTP 50") as failed,
        ):
            sync.sync_day(client, tmp_path, day, progress=outage_after_listing)
        assert server.stats.faults["server_error"] > 0
    # The error names the day and a job, and chains that job's error with its HTTP details.
    cause = failed.value.__cause__
    assert failed.value.day == day and failed.value.job_id in dataset.job_ids_for_day(day)
    assert isinstance(cause, ApiError) and cause.status in (500, 502, 503)
    assert cause.path.startswith(f"/v1/extract/{failed.value.job_id}?")
    assert victim  # the day had completed jobs to fetch
    assert _mtimes(tmp_path) == before
    assert not any((tmp_path / ".staging").glob("*/tables")), "a staged build was left behind"
    assert _children() == []


def test_a_build_worker_killed_while_landing_fails_the_sync_clearly(tmp_path, overlapped):
    """The landing still completes (so the next sync only builds); the sync then fails naming
    the dead worker, swaps nothing in and leaves no worker behind."""
    dataset = Dataset(seed=16, jobs=30, days=1, end_date=dt.date(2026, 1, 15))
    day = _busiest_day(dataset)
    killed: list[int] = []

    def kill_a_worker(event: str, _info: dict) -> None:
        if event == "fetched" and not killed:
            worker = next(
                p for p in psutil.Process().children() if "_build_worker" in " ".join(p.cmdline())
            )
            worker.kill()  # not reaped here: the build must see how it ended
            deadline = time.monotonic() + 10
            while worker.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
                time.sleep(0.005)
            killed.append(worker.pid)

    with EmulatorServer(dataset, api_key=KEY) as server, _client(server) as client:
        with pytest.raises(RuntimeError, match=r"build worker process failed \(killed by SIG"):
            sync.sync_day(client, tmp_path, day, progress=kill_a_worker)
        assert killed
        assert not (tmp_path / "tables").exists() or _mtimes(tmp_path) == {}
        assert _children() == []
        landing, built = sync.sync_day(client, tmp_path, day)
    assert landing.fetched == 0
    assert built.rows["extract_jobs"] == len(dataset.job_ids_for_day(day))


def _arrivals(tmp_path: Path, jobs: list[dict], expected: set[str]):
    """An ArrivingJobs over ``jobs`` whose signals come through a pipe we hold the end of."""
    read_fd, write_fd = os.pipe()
    shard = ArrivingJobs(tmp_path, DAY, tuple(jobs), frozenset(expected), signal_fd=read_fd)
    return shard, write_fd


DAY = dt.date(2026, 3, 1)


def _summary(job_id: str, status: str = "completed") -> dict:
    return {"job_id": job_id, "status": status}


def _complete(job_id: str) -> dict:
    return {**_summary(job_id), "total": 0, "data": {"segment_entities": []}}


def test_arriving_jobs_waits_for_each_landing_in_order(tmp_path):
    store = RawStore(tmp_path)
    store.put_job(DAY, _complete("a"))  # landed by an earlier run
    listing = [_summary("a"), _summary("b"), _summary("c", "pending"), _summary("d")]
    shard, write_fd = _arrivals(tmp_path, listing, {"b", "d"})

    def land_later() -> None:
        time.sleep(0.05)
        store.put_job(DAY, _complete("b"))
        time.sleep(0.05)
        os.write(write_fd, b"done\n")  # d was deleted upstream: never landed
        os.close(write_fd)

    threading.Thread(target=land_later).start()
    got = list(shard)
    assert [job["job_id"] for job in got] == ["a", "b", "c"]
    assert [("data" in job) for job in got] == [True, True, False]


def test_arriving_jobs_raises_when_the_landing_stops_without_done(tmp_path):
    shard, write_fd = _arrivals(tmp_path, [_summary("a")], {"a"})
    os.close(write_fd)
    with pytest.raises(LandingAborted, match=f"^{DAY}: the landing stopped") as aborted:
        list(shard)
    assert aborted.value.day == DAY


def test_build_workers_exit_when_the_landing_process_is_killed(tmp_path):
    """SIGKILL the landing's process alone: its workers see their stdin close and exit, nothing
    is swapped in, and the next sync completes from what was landed."""
    import subprocess
    import sys

    dataset = Dataset(seed=14, jobs=40, days=1, end_date=dt.date(2026, 1, 15))
    day = _busiest_day(dataset)
    store = RawStore(tmp_path)
    with EmulatorServer(dataset, api_key=KEY, latency_ms=40) as server:
        script = (
            "import datetime as dt, pathlib, pipeline.sync as s, pipeline.sync.ranged as r\n"
            "from pipeline.cloudglue.client import CloudglueClient\n"
            "r.OVERLAP_MIN_JOBS = 1\n"
            "r.build_workers = lambda: 2\n"
            f"with CloudglueClient({KEY!r}, {server.base_url!r}, max_concurrency=2) as c:\n"
            f"    s.sync_day(c, pathlib.Path({str(tmp_path)!r}), dt.date({day:%Y, %-m, %-d}))\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", script])
        landing = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while len(landing.children()) < 2 or not store.landed(day):
            assert proc.poll() is None, "the sync ended before the kill point"
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.005)
        workers = landing.children()
        proc.kill()
        proc.wait()
        _gone, alive = psutil.wait_procs(workers, timeout=20)
        assert alive == [], "build workers outlived the landing"
        assert not (tmp_path / "tables").exists() or _mtimes(tmp_path) == {}
        with _client(server) as client:
            landing_result, built = sync.sync_day(client, tmp_path, day)
    assert landing_result.already_landed >= 1
    assert built.rows["extract_jobs"] == len(dataset.job_ids_for_day(day))


def test_landings_of_one_day_take_turns(tmp_path):
    """A second landing of the day waits for the first (whose listing it would otherwise race:
    each prunes the landed jobs its own listing lacks), then finds everything landed."""
    dataset = Dataset(seed=15, jobs=12, days=1, end_date=dt.date(2026, 1, 15))
    day = _busiest_day(dataset)
    events: list[str] = []
    release = threading.Event()
    results = {}

    def first_progress(event: str, _info: dict) -> None:
        if event == "listed":
            events.append("first listed")
            release.wait(10)
        elif event == "fetched":
            events.append("first fetched")

    def second_progress(event: str, _info: dict) -> None:
        if event == "listed":
            events.append("second listed")

    def land(name: str, client: CloudglueClient, progress) -> None:
        results[name] = sync.land_day(client, RawStore(tmp_path), day, progress=progress)
        events.append(f"{name} done")

    with EmulatorServer(dataset, api_key=KEY) as server, _client(server) as a, _client(server) as b:
        first = threading.Thread(target=land, args=("first", a, first_progress))
        first.start()
        deadline = time.monotonic() + 10
        while "first listed" not in events:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        second = threading.Thread(target=land, args=("second", b, second_progress))
        second.start()
        time.sleep(0.3)
        assert "second listed" not in events, "the second landing did not wait"
        release.set()
        first.join(10)
        second.join(10)
    # The second listed only after the first had fetched everything. ("first done" may come
    # either side of the second's listing: the lock is released just before land_day returns.)
    listed = events.index("second listed")
    assert events[0] == "first listed"
    assert "first fetched" in events[:listed] and "first fetched" not in events[listed:]
    assert {"first done", "second done"} <= set(events)
    assert results["first"].fetched > 0 and results["second"].fetched == 0
