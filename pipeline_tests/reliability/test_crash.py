"""SIGKILL ``cloudglue-pipeline sync`` while it lists, fetches and writes Parquet: readers never
see a partial file, earlier partitions stay as they were, and the next run completes, exact,
without downloading again the jobs the killed run had landed. On a local disk and in a bucket
(where no multipart upload is left open either, and the killed run's leases expire).

The test watches the emulator's request counter and the data dir, and kills the moment the
run is in the wanted phase; the emulator's latency keeps each phase long enough to hit it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cloudglue.client import CloudglueClient, job_path
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.storage.layout import raw_day_prefix
from pipeline.storage.store import is_bucket_url, open_store
from pipeline.sync import sync_day
from pipeline_tests.conftest import EMULATOR_END_DATE, emulator_access_log
from pipeline_tests.reliability.conftest import (
    CLI,
    DAYS,
    assert_readers_see_only_complete_files,
    cli_env,
    completed_result,
    landed_job_ids,
    partition_files,
    snapshot,
    sync,
)
from pipeline_tests.stores import bucket_prefix, multipart_uploads, walk


def _kill_when(
    env: dict[str, str], condition: Callable[[], bool], days: tuple[str, str], bucket: bool
) -> None:
    """Start a sync of ``days`` and SIGKILL its process group as soon as ``condition`` holds
    (looked at every millisecond; every 5 ms when it lists a bucket)."""
    proc = subprocess.Popen(
        [str(CLI), "sync", "--from", days[0], "--to", days[1], "--concurrency", "4", "--quiet"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while not condition():
            assert proc.poll() is None, "the sync ended before reaching the kill point"
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.005 if bucket else 0.001)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _staged_parquet(staging: Path) -> bool:
    """A Parquet file is being written in a staging dir (which may vanish while we look)."""
    try:
        return staging.is_dir() and any(
            p.suffix == ".parquet" for d in staging.iterdir() if d.is_dir() for p in d.rglob("*")
        )
    except FileNotFoundError:
        return False


def _new_raw_jobs(data_dir: str) -> int:
    """Files landed for the days after ``DAYS[0]`` (their listing is written last)."""
    store = open_store(data_dir)
    return sum(len(store.list_files(raw_day_prefix(dt.date.fromisoformat(d)))) for d in DAYS[1:])


def _committed_new_day(data_dir: str) -> bool:
    """A partition of a day after ``DAYS[0]`` is live in ``segment_entities``."""
    names = open_store(data_dir).list_dirs("tables/segment_entities")
    return any(f"created_date={day}" in names for day in DAYS[1:])


# (phase, emulator latency ms, kill condition on (server, data dir, staging dir))
PHASES: dict[str, tuple[float, Callable[[EmulatorServer, str, Path], bool]]] = {
    "listing": (3000.0, lambda server, data, staging: server.stats.requests >= 1),
    "fetching": (150.0, lambda server, data, staging: _new_raw_jobs(data) >= 3),
    "writing-parquet": (0.0, lambda server, data, staging: _staged_parquet(staging)),
    # Right after a new day's first partition went live (its other tables, or the next day,
    # still to come): the next run must rebuild what the killed one left half done.
    "committing": (0.0, lambda server, data, staging: _committed_new_day(data)),
}


def _dataset() -> Dataset:
    # Big enough days that writing their Parquet takes a while to catch.
    return Dataset(seed=11, jobs=24, days=3, end_date=EMULATOR_END_DATE, mean_segments=400)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """The tables of an uninterrupted local sync of ``DAYS``."""
    root = tmp_path_factory.mktemp("reference")
    with (
        EmulatorServer(_dataset(), api_key="k") as server,
        CloudglueClient("k", server.base_url, max_concurrency=4) as client,
    ):
        for day in DAYS:
            sync_day(client, root, dt.date.fromisoformat(day))
    return snapshot(root)


@pytest.mark.slow
@pytest.mark.parametrize("phase", list(PHASES))
def test_a_killed_sync_leaves_no_partial_file_and_the_next_run_resumes(
    phase: str,
    local_or_bucket: str,
    reference: dict[str, list[tuple]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    dataset = _dataset()
    data = local_or_bucket
    bucket = is_bucket_url(data)
    # A bucket's partitions are staged in TMPDIR (the run's own), a local one's in the data dir.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    staging = tmp / "cloudglue-pipeline-staging" if bucket else Path(data) / ".staging"
    latency, condition = PHASES[phase]
    with EmulatorServer(dataset, api_key="k") as server:
        env = {**cli_env(tmp_path, server.base_url, key="k", data_dir=data), "TMPDIR": str(tmp)}
        done = sync(env, "--quiet", days=(DAYS[0], DAYS[0]))
        assert done.returncode == 0, completed_result(done)
        earlier = partition_files(data)

        server.latency_ms = latency
        server.stats.reset()
        _kill_when(
            env, lambda: condition(server, data, staging), days=(DAYS[1], DAYS[2]), bucket=bucket
        )
        server.latency_ms = 0.0

        assert_readers_see_only_complete_files(data)
        if bucket:  # the design never starts one (one PUT per object): none is left open
            object_store = request.getfixturevalue("object_store")
            assert multipart_uploads(object_store, bucket_prefix(data)) == []
        after = partition_files(data)
        schemas = {k for k in earlier if k.endswith("/_schema.json")}
        assert {k: v for k, v in after.items() if k in earlier and k not in schemas} == {
            k: v for k, v in earlier.items() if k not in schemas
        }
        for key in schemas:  # append-only: a new day's build may have added columns
            old, new = (json.loads(files[key])["columns"] for files in (earlier, after))
            assert new[: len(old)] == old, key
        if phase == "listing":
            assert after == earlier  # nothing of the new days yet
        landed = landed_job_ids(data) - set(dataset.job_ids_for_day(dt.date.fromisoformat(DAYS[0])))
        if phase != "listing":
            assert landed, "the kill came before any job was landed"

        with emulator_access_log() as log:
            again = sync(env, days=(DAYS[1], DAYS[2]))
        assert again.returncode == 0, completed_result(again)
        assert "warning" not in again.stdout, again.stdout  # every check passed
        fetched_again = {p for p in log.paths if p != "/v1/extract"}
        assert not fetched_again & {"/v1" + job_path(j) for j in landed}
        assert_readers_see_only_complete_files(data)
    assert snapshot(data) == reference
    if bucket:
        # The killed run's leases were taken over and released, except where it had committed
        # the day before it died: the next run finds that day unchanged and takes no lease, so
        # its lease stays, expired, for any later writer to take over.
        store = open_store(data)
        for key in walk(data, ".locks"):
            lease = json.loads(store.read_bytes(key))
            assert lease["expires_at"] < time.time(), (key, lease)
