"""Syncing the same days twice, or twice at once, gives the same tables and no duplicate row."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

import pipeline
from pipeline.emulator import EmulatorServer
from pipeline_tests.conftest import emulator_access_log
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
        assert server.stats.requests == 1  # one listing of the range: every job was landed
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


@pytest.mark.slow
def test_the_api_pool_limits_the_landings_of_cli_syncs_sharing_an_instance(tmp_path: Path) -> None:
    """Two `sync`s of different days on one DAGSTER_HOME whose `cloudglue_api` pool allows one
    landing step at a time: the CLI's in-process runs respect it, so the days' requests do
    not interleave."""
    dataset = small_dataset()
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n"
    )
    sync = [str(CLI), "sync", "--concurrency", "2", "--quiet"]
    with (
        emulator_access_log() as answered,
        EmulatorServer(dataset, api_key=KEY, latency_ms=300) as server,
    ):
        procs = []
        for day in DAYS[:2]:
            env = {**os.environ, **cli_env(tmp_path / day, server.base_url)}
            env["DAGSTER_HOME"] = str(home)
            cmd = [*sync, "--from", day, "--to", day]
            procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
        errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    day_of = {
        job_id: day.isoformat() for day in dataset.days() for job_id in dataset.job_ids_for_day(day)
    }
    spans: dict[str, list[float]] = {}
    for at, target, _status in answered.rows:
        path, _, query = target.partition("?")
        if path.endswith("/extract"):  # a listing: the day is the middle of its window
            after = dict(p.split("=") for p in query.split("&"))["created_after"]
            day = (dt.date.fromisoformat(after) + dt.timedelta(days=1)).isoformat()
        else:
            day = day_of[unquote(path.rsplit("/", 1)[1])]
        spans.setdefault(day, []).append(at)
    first, second = sorted(spans.values(), key=min)
    assert len(spans) == 2 and len(first) > 3 and len(second) > 3
    assert max(first) < min(second), "the two days' landings ran at once"
