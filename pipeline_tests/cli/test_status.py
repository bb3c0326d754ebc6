"""`cloudglue-pipeline status` and `sync --dry-run` against the emulator, on a directory and in a
bucket: what they say matches what `sync` then does, and they write nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pipeline
from pipeline.cloudglue.client import CloudglueClient
from pipeline.emulator import Dataset, EmulatorServer, FaultConfig
from pipeline.sync import sync_range
from pipeline.tables import TABLE_NAMES
from pipeline_tests.cli.conftest import run_cli
from pipeline_tests.conftest import EMULATOR_END_DATE

KEY = "sk-test-status-NOT-TO-BE-PRINTED"


def _tree(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``roots``: (size, mtime in ns)."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for root in roots
        if root.exists()
        for path in [root, *root.rglob("*")]
    }


def _status(env: dict[str, str], *args: str) -> list[dict]:
    done = run_cli("status", "--format", "json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_shows_days_built_rows_and_what_is_stale_upstream(local_or_bucket, tmp_path):
    dataset = Dataset(seed=7, jobs=40, days=4, end_date=EMULATOR_END_DATE)
    days = [str(day) for day in dataset.days()]
    env = {
        "CLOUDGLUE_API_KEY": KEY,
        "CLOUDGLUE_DATA_DIR": local_or_bucket,
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    with EmulatorServer(dataset, api_key=KEY) as server:
        env["CLOUDGLUE_BASE_URL"] = server.base_url
        synced = run_cli("sync", "--from", days[0], "--to", days[1], "--quiet", env=env)
        assert synced.returncode == 0, synced.stderr

        rows = _status(env)
        assert [row["day"] for row in rows] == days[:2]  # default: the days landed
        for row in rows:
            assert row["built"] == "yes" and row["upstream"] == "unchanged"
            for table in TABLE_NAMES:
                frame = pipeline.read_table(table, local_or_bucket)
                assert row[table] == int((frame["created_date"].astype(str) == row["day"]).sum())
            day = dt.date.fromisoformat(row["day"])
            assert row["jobs"] == len(dataset.job_ids_for_day(day))

        # A job completes upstream: its day is stale, with one job to fetch; a day never
        # landed is stale with all of its completed jobs to fetch.
        waiting = next(
            j
            for j in dataset.job_ids_for_day(dt.date.fromisoformat(days[0]))
            if dataset.status(j) != "completed"
        )
        dataset.set_status(waiting, "completed")
        rows = {row["day"]: row for row in _status(env, "--from", days[0], "--to", days[2])}
        assert rows[days[0]]["upstream"].startswith("stale:")
        assert rows[days[0]]["upstream"].endswith(", 1 to fetch")
        assert rows[days[1]]["upstream"] == "unchanged"
        assert rows[days[2]]["built"] == "no" and rows[days[2]]["jobs"] == 0
        completed = [
            j
            for j in dataset.job_ids_for_day(dt.date.fromisoformat(days[2]))
            if dataset.status(j) == "completed"
        ]
        assert rows[days[2]]["upstream"].endswith(f", {len(completed)} to fetch")

        # Offline: no request at all.
        server.stats.reset()
        offline = _status(env, "--offline")
        assert {row["upstream"] for row in offline} == {"not checked"}
        assert server.stats.requests == 0

        # What status called stale is what sync runs; the rest it reports (unchanged).
        again = run_cli("sync", "--from", days[0], "--to", days[1], env=env)
        assert again.returncode == 0, again.stderr
        unchanged = {line.split()[0] for line in again.stdout.splitlines() if "(unchanged)" in line}
        assert unchanged == {days[1]}


def test_status_without_a_key_says_to_pass_offline(tmp_path):
    done = run_cli("status", "--from", "2026-01-01", "--to", "2026-01-02", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("or pass --offline to skip the upstream comparison")


def test_dry_run_says_what_it_would_fetch_and_build_and_writes_nothing(tmp_path: Path):
    dataset = Dataset(seed=7, jobs=40, days=4, end_date=EMULATOR_END_DATE)
    days = [str(day) for day in dataset.days()]
    data_dir, home = tmp_path / "data", tmp_path / "home"
    env = {"CLOUDGLUE_API_KEY": KEY, "DAGSTER_HOME": str(home)}
    with EmulatorServer(dataset, api_key=KEY) as server:
        flags = ["--data-dir", str(data_dir), "--base-url", server.base_url]
        # On a first run, the data dir and DAGSTER_HOME are not even created.
        dry = run_cli("sync", "--from", days[0], "--to", days[-1], "--dry-run", *flags, env=env)
        assert dry.returncode == 0, dry.stderr
        assert not data_dir.exists() and not home.exists()

        synced = run_cli("sync", "--from", days[0], "--to", days[1], "--quiet", *flags, env=env)
        assert synced.returncode == 0, synced.stderr
        before = _tree(data_dir, home)
        server.stats.reset()
        dry = run_cli("sync", "--from", days[0], "--to", days[-1], "--dry-run", *flags, env=env)
        assert dry.returncode == 0, dry.stderr
        assert _tree(data_dir, home) == before
        assert server.stats.requests == 1  # the range's listing, no job

    would = {line.split()[0]: line for line in dry.stdout.splitlines() if line[:4] == days[0][:4]}
    assert would[days[0]].endswith("(unchanged)") and would[days[1]].endswith("(unchanged)")
    for day in days[2:]:
        completed = [
            j
            for j in dataset.job_ids_for_day(dt.date.fromisoformat(day))
            if dataset.status(j) == "completed"
        ]
        assert would[day].split()[-4:] == [str(len(completed)), "fetch", "and", "build"]
    assert "nothing was written" in dry.stdout.splitlines()[-1]


def _text_table(text: str) -> list[dict[str, str]]:
    """The rows of a text table, each cell cut at its column's rule (the header's dashes)."""
    header, rule, *rows = text.splitlines()[:-1]  # the last line counts the rows
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    cells = [[line.ljust(len(rule))[a:b].strip() for a, b in spans] for line in [header, *rows]]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[1:]]


def test_status_shows_a_dash_for_the_rows_of_a_day_not_built(tmp_path):
    """In the text table a day not built shows `-` in each table's cell, never NULL; CSV leaves
    the cell empty and JSON has null."""
    dataset = Dataset(seed=7, jobs=20, days=2, end_date=EMULATOR_END_DATE)
    built, not_built = (str(day) for day in dataset.days())
    data_dir = tmp_path / "data"
    with (
        EmulatorServer(dataset, api_key=KEY) as server,
        CloudglueClient(api_key=KEY, base_url=server.base_url) as client,
    ):
        (result,) = sync_range(client, data_dir, [dt.date.fromisoformat(built)])
        assert result.ok
    args = ("--from", built, "--to", not_built, "--offline", "--data-dir", str(data_dir))

    def status(fmt: str) -> str:
        done = run_cli("status", *args, "--format", fmt)
        assert done.returncode == 0, done.stderr
        return done.stdout

    table = status("table")
    assert "NULL" not in table
    rows = {row["day"]: row for row in _text_table(table)}
    assert [rows[not_built][name] for name in TABLE_NAMES] == ["-"] * len(TABLE_NAMES)
    assert rows[not_built]["built"] == "no"
    counts = {name: len(pipeline.read_table(name, data_dir, days=[built])) for name in TABLE_NAMES}
    assert {name: int(rows[built][name]) for name in TABLE_NAMES} == counts

    by_day = {row["day"]: row for row in csv.DictReader(io.StringIO(status("csv")))}
    assert [by_day[not_built][name] for name in TABLE_NAMES] == [""] * len(TABLE_NAMES)
    assert {name: int(by_day[built][name]) for name in TABLE_NAMES} == counts

    by_day = {row["day"]: row for row in json.loads(status("json"))}
    assert [by_day[not_built][name] for name in TABLE_NAMES] == [None] * len(TABLE_NAMES)
    assert {name: by_day[built][name] for name in TABLE_NAMES} == counts


def test_status_and_its_errors_log_one_json_object_per_stderr_line(tmp_path):
    """`--log-format json` (for cron and journald): the client's retries and a usage error are
    records on stderr, the rows stay on stdout."""
    dataset = Dataset(seed=7, jobs=20, days=2, end_date=EMULATOR_END_DATE)
    first, last = (str(day) for day in dataset.days())
    data_dir = str(tmp_path / "data")
    faults = FaultConfig(server_error=1.0, burst=2)
    with EmulatorServer(dataset, api_key=KEY, faults=faults) as server:
        env = {"CLOUDGLUE_API_KEY": KEY, "CLOUDGLUE_BASE_URL": server.base_url}
        done = run_cli(
            "status", "--from", first, "--to", last, "--data-dir", data_dir,
            "--format", "json", "--log-format", "json", "--verbose", env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stderr + done.stdout
    records = [json.loads(line) for line in done.stderr.splitlines()]
    retries = [r for r in records if r["logger"] == "pipeline.cloudglue"]
    assert retries and all(r["level"] in ("info", "warning") for r in retries)
    assert [row["day"] for row in json.loads(done.stdout)] == [first, last]

    swapped = run_cli(
        "status", "--from", last, "--to", first, "--data-dir", data_dir, "--offline",
        "--log-format", "json",
    )  # fmt: skip
    assert swapped.returncode == 2
    (record,) = [json.loads(line) for line in swapped.stderr.splitlines()]
    assert record["level"] == "error" and record["message"].endswith("swap them")
