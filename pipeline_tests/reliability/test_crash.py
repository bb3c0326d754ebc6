"""SIGKILL ``cloudglue-pipeline sync`` while it lists, fetches and writes Parquet: readers never
see a partial file, earlier partitions stay as they were, and the next run completes without
downloading again the jobs the killed run had landed.

The test watches the emulator's request counter and the data dir, and kills the moment the
run is in the wanted phase; the emulator's latency keeps each phase long enough to hit it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import jsonio
from pipeline.cloudglue.client import job_path
from pipeline.emulator import Dataset, EmulatorServer
from pipeline_tests.conftest import EMULATOR_END_DATE, emulator_access_log
from pipeline_tests.reliability.conftest import (
    CLI,
    DAYS,
    assert_readers_see_only_complete_files,
    cli_env,
    completed_result,
    partition_files,
    sync,
    unzstd,
)


def _kill_when(env: dict[str, str], condition: Callable[[], bool], days: tuple[str, str]) -> None:
    """Start a sync of ``days`` and SIGKILL its process group as soon as ``condition`` holds."""
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
            time.sleep(0.001)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _staged_parquet(data_dir: Path) -> bool:
    """A Parquet file is being written in a staging dir (which may vanish while we look)."""
    staging = data_dir / ".staging"
    try:
        return staging.is_dir() and any(
            p.suffix == ".parquet" for d in staging.iterdir() if d.is_dir() for p in d.rglob("*")
        )
    except FileNotFoundError:
        return False


def _landed(data_dir: Path) -> set[str]:
    """Ids of the jobs whose complete JSON is in the raw landing."""
    return {
        jsonio.loads(unzstd(p))["job_id"]
        for p in (data_dir / "raw").glob("created_date=*/*.json.zst")
        if p.name != "_listing.json.zst"
    }


def _new_raw_jobs(data_dir: Path) -> int:
    """Jobs landed for the days after ``DAYS[0]`` (their listing is written last)."""
    return sum(1 for day in DAYS[1:] for p in (data_dir / "raw").glob(f"created_date={day}/*"))


# (phase, emulator latency ms, kill condition on (server, data dir))
PHASES: dict[str, tuple[float, Callable[[EmulatorServer, Path], bool]]] = {
    "listing": (3000.0, lambda server, data: server.stats.requests >= 1),
    "fetching": (150.0, lambda server, data: _new_raw_jobs(data) >= 3),
    "writing-parquet": (0.0, lambda server, data: _staged_parquet(data)),
}


@pytest.mark.slow
@pytest.mark.parametrize("phase", list(PHASES))
def test_a_killed_sync_leaves_no_partial_file_and_the_next_run_resumes(
    phase: str, tmp_path: Path
) -> None:
    # Big enough days that writing their Parquet takes a while to catch.
    dataset = Dataset(seed=11, jobs=24, days=3, end_date=EMULATOR_END_DATE, mean_segments=400)
    data = tmp_path / "data"
    latency, condition = PHASES[phase]
    with EmulatorServer(dataset, api_key="k") as server:
        env = cli_env(tmp_path, server.base_url, key="k")
        done = sync(env, "--quiet", days=(DAYS[0], DAYS[0]))
        assert done.returncode == 0, completed_result(done)
        earlier = partition_files(data)

        server.latency_ms = latency
        server.stats.reset()
        _kill_when(env, lambda: condition(server, data), days=(DAYS[1], DAYS[2]))
        server.latency_ms = 0.0

        assert_readers_see_only_complete_files(data)
        after = partition_files(data)
        assert {k: v for k, v in after.items() if k in earlier} == earlier
        if phase == "listing":
            assert after == earlier  # nothing of the new days yet
        landed = _landed(data) - set(dataset.job_ids_for_day(dt.date.fromisoformat(DAYS[0])))
        if phase != "listing":
            assert landed, "the kill came before any job was landed"

        with emulator_access_log() as log:
            again = sync(env, days=(DAYS[1], DAYS[2]))
        assert again.returncode == 0, completed_result(again)
        assert "warning" not in again.stdout, again.stdout  # every check passed
        fetched_again = {p for p in log.paths if p != "/v1/extract"}
        assert not fetched_again & {"/v1" + job_path(j) for j in landed}
        assert_readers_see_only_complete_files(data)
