"""`cloudglue-pipeline sync` in a subprocess against the emulator: exit codes and messages."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

import pipeline
from pipeline.emulator import Dataset, EmulatorServer
from pipeline_tests.cli.conftest import run_cli
from pipeline_tests.conftest import open_instance

SECRET = "sk-test-NOT-TO-BE-PRINTED-4f2a9c"
DAYS = ("2026-01-14", "2026-01-15")


@pytest.fixture
def server(dataset: Dataset) -> Iterator[EmulatorServer]:
    """The emulator with a key that must never show up in any output."""
    with EmulatorServer(dataset, api_key=SECRET) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: EmulatorServer) -> dict[str, str]:
    return {
        "CLOUDGLUE_API_KEY": SECRET,
        "CLOUDGLUE_BASE_URL": server.base_url,
        "CLOUDGLUE_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }


def run_days(run: dg.DagsterRun) -> list[str]:
    """The days a run covered: its partition, or every day of its partition range."""
    if "dagster/partition" in run.tags:
        return [run.tags["dagster/partition"]]
    first = dt.date.fromisoformat(run.tags["dagster/asset_partition_range_start"])
    last = dt.date.fromisoformat(run.tags["dagster/asset_partition_range_end"])
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _summary_row(stdout: str, day: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith(day))
    return line.split()


def test_sync_lands_the_days_and_a_rerun_fetches_nothing(dataset, server, env, tmp_path):
    assert {dt.date.fromisoformat(d) for d in DAYS} <= set(dataset.days())
    done = run_cli("sync", "--from", DAYS[0], "--to", DAYS[1], "--concurrency", "4", env=env)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    for day in DAYS:
        ids = dataset.job_ids_for_day(dt.date.fromisoformat(day))
        completed = [j for j in ids if dataset.status(j) == "completed"]
        segments = sum(dataset.complete_job(j)["total"] for j in completed)
        row = _summary_row(done.stdout, day)
        assert (row[1], row[-4], row[-3], row[-2]) == (
            str(len(ids)),
            str(len(completed)),
            "0",
            str(segments),
        )
        assert f"{day} done: {len(ids)} jobs listed" in done.stderr
    assert "total" in done.stdout and "jobs/s" in done.stdout
    jobs = pipeline.read_table("extract_jobs", tmp_path / "data")
    assert set(jobs["job_id"]) == {
        j for day in DAYS for j in dataset.job_ids_for_day(dt.date.fromisoformat(day))
    }

    # The runs are on DAGSTER_HOME for `dagster dev`, and the key is in no run config or event.
    with open_instance(env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and run_days(runs[0]) == list(DAYS)  # one ranged run
        for run in runs:
            assert SECRET not in repr(run.run_config)
            assert SECRET not in repr(instance.all_logs(run.run_id))

    server.stats.reset()
    again = run_cli("sync", "--from", DAYS[1], "--to", DAYS[1], "--quiet", env=env)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    assert server.stats.requests <= 2  # the listing only: every completed job was landed

    # Nothing changed upstream: no run is needed, and the summary says so.
    quiet_day = run_cli("sync", "--from", DAYS[1], "--to", DAYS[1], env=env)
    assert quiet_day.returncode == 0, quiet_day.stderr
    assert _summary_row(quiet_day.stdout, DAYS[1])[1] == "(unchanged)"
    # ... nor Dagster at all (a second of start-up), DuckDB or pandas: the sync imports none.
    code = (
        "import sys\nfrom pipeline.cli import main\n"
        f"rc = main(['sync', '--from', '{DAYS[1]}', '--to', '{DAYS[1]}', '--quiet'])\n"
        "heavy = {'dagster', 'duckdb', 'pandas'}\n"
        "print(rc, sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDGLUE_", "DAGSTER_"))}
    no_dagster = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True
    )
    assert (no_dagster.stdout, no_dagster.stderr) == ("0 []\n", "")
    forced = run_cli("sync", "--from", DAYS[1], "--to", DAYS[1], "--force", "--quiet", env=env)
    assert forced.returncode == 0, forced.stderr
    with open_instance(env["DAGSTER_HOME"]) as instance:
        partitions = sorted(day for r in instance.get_runs() for day in run_days(r))
    assert partitions == [DAYS[0], DAYS[1], DAYS[1]]


def test_a_wrong_key_fails_with_the_cause_and_never_prints_the_key(server, env):
    done = run_cli(
        "sync", "--from", DAYS[0], "--to", DAYS[1], env={**env, "CLOUDGLUE_API_KEY": SECRET + "x"}
    )
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert error[0].startswith(f"error: {DAYS[0]}") and "CLOUDGLUE_API_KEY" in error[0]
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    # The range's one run fails as a whole, at once: each day says so, the cause is one line.
    assert f"{DAYS[0]} FAILED" in done.stdout and f"{DAYS[1]} FAILED" in done.stdout


def test_an_unreachable_api_fails_fast_with_the_network_cause(env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_cli(
        "sync",
        "--from",
        DAYS[1],
        "--to",
        DAYS[1],
        "--max-retries",
        "0",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        env=env,
    )
    assert done.returncode == 1
    assert f"error: {DAYS[1]}: TransportError: " in done.stderr
    refused = f"connection refused at 127.0.0.1:{port} (nothing listening there? check --base-url)"
    assert refused in done.stderr


@pytest.mark.parametrize(
    ("args", "env_change", "code", "message"),
    [
        (["--from", "2026-02-30"], {}, 2, "is not a date: use YYYY-MM-DD"),
        (["--from", DAYS[1], "--to", DAYS[0]], {}, 2, "is after --to"),
        (["--from", "2999-01-01"], {}, 2, "is in the future"),
        (["--from", DAYS[0]], {"CLOUDGLUE_START_DATE": DAYS[1]}, 2, "CLOUDGLUE_START_DATE"),
        (["--from", DAYS[0]], {"CLOUDGLUE_API_KEY": ""}, 1, "CLOUDGLUE_API_KEY is not set"),
        (["--from", DAYS[0]], {"CLOUDGLUE_BASE_URL": "ftp://x"}, 1, "CLOUDGLUE_BASE_URL"),
        (["--from", DAYS[0], "--data-dir", "/proc/no/such"], {}, 1, "CLOUDGLUE_DATA_DIR"),
    ],
    ids=["bad-date", "from-after-to", "future", "before-start", "no-key", "bad-url", "no-dir"],
)
def test_preflight_errors_exit_before_any_request(server, env, args, env_change, code, message):
    done = run_cli("sync", *args, env={**env, **env_change})
    assert done.returncode == code, done.stderr
    assert message in done.stderr.strip().splitlines()[-1]  # one line says it
    assert server.stats.requests == 0
    assert done.stdout == ""
