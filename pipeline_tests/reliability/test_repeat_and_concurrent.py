"""Syncing the same days twice, or twice at once, gives the same tables and no duplicate row."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import pipeline
from pipeline.emulator import EmulatorServer
from pipeline_tests.reliability.conftest import (
    CLI,
    DAYS,
    KEY,
    assert_readers_see_only_complete_files,
    cli_env,
    small_dataset,
    snapshot,
    sync_in_process,
)


def _assert_unique_segments(data_dir: Path) -> None:
    segs = pipeline.read_table("segment_entities", data_dir)
    assert len(segs) > 0
    assert not segs.duplicated(["job_id", "segment_index"]).any()
    jobs = pipeline.read_table("extract_jobs", data_dir)
    assert not jobs.job_id.duplicated().any()


@pytest.mark.slow
def test_two_syncs_of_the_same_days_give_identical_tables(
    fault_free: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, tables = fault_free
    with EmulatorServer(small_dataset(), api_key=KEY) as server:
        assert sync_in_process(server.base_url, root, monkeypatch)
        assert server.stats.requests == len(DAYS)  # one listing a day: every job was landed
    assert snapshot(root / "data") == tables
    _assert_unique_segments(root / "data")


@pytest.mark.slow
def test_two_overlapping_syncs_at_once_finish_with_the_tables_of_one(
    fault_free: tuple[Path, dict], tmp_path: Path
) -> None:
    """Same data dir and DAGSTER_HOME, days 1-3 and 2-3 at once, the emulator slowed so the runs
    overlap: both succeed (per-day locks, SQLite run storage), tables equal a lone sync's."""
    with EmulatorServer(small_dataset(), api_key=KEY, latency_ms=20) as server:
        env = {**os.environ, **cli_env(tmp_path, server.base_url)}
        procs = [
            subprocess.Popen(
                [str(CLI), "sync", "--from", first, "--to", DAYS[-1], "--concurrency", "4"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for first in (DAYS[0], DAYS[1])
        ]
        outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, f"{out}\n{err}"
        assert "Traceback" not in err and "database is locked" not in err
    assert_readers_see_only_complete_files(tmp_path / "data")
    _assert_unique_segments(tmp_path / "data")
    assert snapshot(tmp_path / "data") == fault_free[1]
