"""`cloudglue-pipeline sync` as a person meets it: the commands it prints paste and work, Ctrl-C
stops it cleanly, and its runs say in the Dagster UI where they came from."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg

import pipeline
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.emulator.faults import FaultConfig
from pipeline.tables import TABLE_NAMES
from pipeline_tests.cli.conftest import CLI, clean_env, run_cli
from pipeline_tests.conftest import EMULATOR_END_DATE, open_instance

KEY = "sk-test-runs-NOT-TO-BE-PRINTED"


def _line(stderr: str, start: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith(start))


def test_a_failed_days_rerun_command_keeps_every_flag_and_works_when_pasted(tmp_path: Path):
    # Jobs with more than one page keep changing their total (the client gives up on them with
    # no retries): their days fail, the others commit.
    dataset = Dataset(seed=5, jobs=30, days=6, end_date=EMULATOR_END_DATE, mean_segments=40)
    days = dataset.days()
    data_dir = tmp_path / "my data"  # a space: the printed command must quote it
    home = tmp_path / "home"
    env = {"CLOUDGLUE_API_KEY": KEY, "DAGSTER_HOME": str(home)}
    faults = FaultConfig(changing_total=1.0, burst=1000)
    with EmulatorServer(dataset, api_key=KEY, faults=faults) as server:
        flags = ["--data-dir", str(data_dir), "--base-url", server.base_url]
        flags += ["--concurrency", "3", "--max-retries", "0"]
        done = run_cli("sync", "--from", str(days[0]), "--to", str(days[-1]), *flags, env=env)
        assert done.returncode == 1, done.stderr
        hint = next(line for line in done.stderr.splitlines() if "Re-run them" in line)
        command = shlex.split(hint.split("): ", 1)[1])
        assert Path(command[0]).name == "cloudglue-pipeline" and command[1] == "sync"
        assert command[6:] == flags  # every flag the user gave, in the parser's order
        assert KEY not in done.stdout + done.stderr

        # Pasted (from another directory) once the server behaves, it completes the same data dir.
        server.faults = FaultConfig()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        pasted = run_cli(*command[1:], env=env, cwd=elsewhere)
        assert pasted.returncode == 0, pasted.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written where it was pasted
    jobs = pipeline.read_table("extract_jobs", data_dir)
    assert set(jobs["job_id"]) == set(dataset.job_ids())

    # The runs are the daily job's, say they were launched from the CLI, and no more.
    with open_instance(home) as instance:
        runs = instance.get_runs()
    assert {run.job_name for run in runs} == {"cloudglue_daily_job"}
    for run in runs:
        assert run.tags["cloudglue/launched_by"] == "cli"
        assert not any(tag.startswith("cloudglue/") for tag in run.tags if "launched_by" not in tag)


def test_to_alone_says_what_the_default_from_was(tmp_path: Path):
    done = run_cli(
        "sync",
        "--to",
        "2026-01-05",
        env={"CLOUDGLUE_API_KEY": KEY, "CLOUDGLUE_START_DATE": "2025-01-01"},
        cwd=tmp_path,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert line == (
        f"error: --to 2026-01-05 is before the default --from {yesterday} (yesterday, UTC): "
        "pass --from too, e.g. --from 2026-01-05 --to 2026-01-05"
    )


def test_ctrl_c_cancels_the_run_keeps_whole_days_and_says_how_to_resume(tmp_path: Path):
    dataset = Dataset(seed=11, jobs=120, days=8, end_date=EMULATOR_END_DATE)
    days = dataset.days()
    data_dir = tmp_path / "data"
    home = tmp_path / "home"
    env = {"CLOUDGLUE_API_KEY": KEY, "DAGSTER_HOME": str(home)}
    with EmulatorServer(dataset, api_key=KEY, latency_ms=150) as server:
        args = ["sync", "--from", str(days[0]), "--to", str(days[-1])]
        args += ["--data-dir", str(data_dir), "--base-url", server.base_url, "--concurrency", "2"]
        # Its own process group, as a shell runs a foreground job: Ctrl-C signals the group.
        proc = subprocess.Popen(
            [str(CLI), *args],
            env=clean_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        committed = data_dir / "tables" / "extract_jobs"
        deadline = time.monotonic() + 120
        while not (committed.is_dir() and any(committed.glob("created_date=*"))):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, stderr

        with open_instance(home) as instance:
            (run,) = instance.get_runs()
            logs = instance.all_logs(run.run_id)
        assert run.status == dg.DagsterRunStatus.CANCELED
        assert not any(e.is_dagster_event and e.dagster_event.is_run_failure for e in logs)
        assert "DagsterExecutionInterruptedError" not in stderr

        # Each committed partition is whole; nothing half-written is left.
        assert not any((data_dir / ".staging").glob("*/**/*.parquet"))
        committed = {p.name for p in (data_dir / "tables" / "extract_jobs").glob("created_date=*")}
        whole = {dt.date.fromisoformat(name.split("=")[1]) for name in committed}
        assert whole and whole < set(days)
        for table in TABLE_NAMES:  # every file of every table reads back
            pipeline.read_table(table, data_dir)
        jobs = pipeline.read_table("extract_jobs", data_dir)
        for day in whole:
            on_day = jobs.loc[jobs["created_date"].astype(str) == str(day), "job_id"]
            assert set(on_day) == set(dataset.job_ids_for_day(day))

        # The summary says what was committed, and the resume command (flags kept) covers the
        # rest.
        said = re.fullmatch(
            r"interrupted: (\d+) day\(s\) committed, (\d+) not synced.*",
            _line(stderr, "interrupted: "),
        )
        assert said and int(said[1]) + int(said[2]) == len(days)
        resume = shlex.split(_line(stderr, "resume ").split("): ", 1)[1])
        assert resume[6:] == args[5:]
        first, last = dt.date.fromisoformat(resume[3]), dt.date.fromisoformat(resume[5])
        summarized = {day for day in days if str(day) in stdout}
        assert len(summarized) == int(said[1])
        assert all(first <= day <= last for day in set(days) - summarized)
        again = run_cli(*resume[1:], env=env)
        assert again.returncode == 0, again.stderr
    jobs = pipeline.read_table("extract_jobs", data_dir)
    assert set(jobs["job_id"]) == set(dataset.job_ids())


def test_json_logs_for_cron_and_a_note_when_the_working_dir_gets_a_new_home(tmp_path: Path):
    dataset = Dataset(seed=7, jobs=20, days=2, end_date=EMULATOR_END_DATE)
    days = [str(day) for day in dataset.days()]
    cwd = tmp_path / "cron-home"
    cwd.mkdir()
    with EmulatorServer(dataset, api_key=KEY) as server:
        env = {"CLOUDGLUE_API_KEY": KEY, "CLOUDGLUE_BASE_URL": server.base_url}
        args = ["sync", "--from", days[0], "--to", days[1], "--log-format", "json"]
        first = run_cli(*args, "--verbose", env=env, cwd=cwd)
        assert first.returncode == 0, first.stderr
        assert first.stdout == ""  # the summary is logged, not printed as a table
        records = [json.loads(line) for line in first.stderr.splitlines()]
        # Run from a directory with neither set, it says it makes a home and a data dir there.
        warned = {
            r.get("dagster_home") or r.get("data_dir") for r in records if r["level"] == "warning"
        }
        assert warned == {str(cwd / ".dagster_home"), str(cwd / "data")}
        finished = {r["day"]: r for r in records if r.get("state")}
        assert set(finished) == set(days)
        for day in days:
            listed = len(dataset.job_ids_for_day(dt.date.fromisoformat(day)))
            assert finished[day]["state"] == "done" and finished[day]["jobs_listed"] == listed
        assert any(r["logger"] == "dagster.run" and r.get("run_id") for r in records)
        assert all(set(r) >= {"time", "level", "logger", "message"} for r in records)

        # The next run from there says nothing of the kind; without --verbose, no run log.
        dataset.set_status(
            next(j for j in dataset.job_ids() if dataset.status(j) != "completed"), "completed"
        )
        second = run_cli(*args, env=env, cwd=cwd)
        assert second.returncode == 0, second.stderr
        records = [json.loads(line) for line in second.stderr.splitlines()]
        assert not any(r["level"] == "warning" for r in records)
        assert not any(r["logger"] == "dagster.run" for r in records)
        assert {r["day"] for r in records if r.get("state")} == set(days)

        # Paths given explicitly are the user's choice: no warning even when new.
        explicit = {
            **env,
            "DAGSTER_HOME": str(tmp_path / "h"),
            "CLOUDGLUE_DATA_DIR": str(tmp_path / "d"),
        }
        third = run_cli(
            "sync", "--from", days[1], "--to", days[1], "--quiet", env=explicit, cwd=cwd
        )
        assert (third.returncode, third.stderr) == (0, "")
