"""`cloudglue-pipeline demo` end to end, and `query` over what it wrote."""

from __future__ import annotations

import csv
import io
import json

import dagster as dg
import duckdb
import pyarrow.dataset as pads
import pytest

import pipeline
from pipeline.cli import DEMO_DAYS, DEMO_JOBS, DEMO_SEED
from pipeline.emulator import Dataset
from pipeline.tables import TABLE_NAMES, build_frames
from pipeline_tests.cli.conftest import run_cli

pytestmark = pytest.mark.xdist_group("cli_demo")


def _ground_truth_rows() -> dict[str, int]:
    dataset = Dataset(seed=DEMO_SEED, jobs=DEMO_JOBS, days=DEMO_DAYS)
    jobs = [
        dataset.complete_job(j) if dataset.status(j) == "completed" else dataset.summary(j)
        for j in sorted(dataset.job_ids())
    ]
    return {name: len(frame) for name, frame in build_frames(jobs).items()}


def test_demo_writes_every_table_as_the_emulator_ground_truth(demo_run):
    cwd, done = demo_run
    data_dir = cwd / "data" / "demo"
    truth = _ground_truth_rows()
    assert truth["segment_entities"] > 500 and truth["chapters"] > 0 and truth["shots"] > 0
    for name in TABLE_NAMES:
        table_dir = data_dir / "tables" / name
        arrow_rows = pads.dataset(table_dir, format="parquet", partitioning="hive").count_rows()
        glob = str(table_dir / "**" / "*.parquet")
        ((duck_rows,),) = (
            duckdb.connect()
            .execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)")
            .fetchall()
        )
        assert arrow_rows == duck_rows == truth[name], name
        # The demo prints the same counts.
        assert any(line.split() == [name, str(truth[name])] for line in done.stdout.splitlines())
    assert len(pipeline.read_table("extract_jobs", data_dir)) == DEMO_JOBS
    assert "make dev" in done.stdout and "segment_entities" in done.stdout


def test_demo_runs_are_on_the_default_dagster_home_one_per_day(demo_run):
    cwd, _ = demo_run
    home = cwd / ".dagster_home"
    assert (home / "dagster.yaml").read_text().startswith("# Dagster instance settings")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == DEMO_DAYS
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert sorted(run.tags["dagster/partition"] for run in runs) == [
            d.isoformat() for d in Dataset(seed=DEMO_SEED, jobs=DEMO_JOBS, days=DEMO_DAYS).days()
        ]


def test_query_formats_csv_and_json(demo_run):
    cwd, _ = demo_run
    sql = (
        "SELECT status, count(*) AS jobs, min(created_date) AS first_day "
        "FROM extract_jobs GROUP BY status ORDER BY status"
    )
    expected = (
        pipeline.read_table("extract_jobs", cwd / "data" / "demo")
        .groupby("status")
        .agg(jobs=("job_id", "size"), first_day=("created_date", "min"))
    )
    as_csv = run_cli("query", "--format", "csv", "--data-dir", "data/demo", sql, cwd=cwd)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["status"], int(r["jobs"]), r["first_day"]) for r in rows] == [
        (status, int(row.jobs), str(row.first_day)) for status, row in expected.iterrows()
    ]

    env = {"CLOUDGLUE_DATA_DIR": str(cwd / "data" / "demo")}
    as_json = run_cli("query", sql, "--format", "json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"status": r["status"], "jobs": int(r["jobs"]), "first_day": r["first_day"]} for r in rows
    ]

    table = run_cli("query", "SELECT count(*) AS n FROM segment_entities", env=env)
    assert table.returncode == 0 and table.stdout.splitlines()[-1] == "(1 row)"

    bad = run_cli("query", "SELECT nope FROM extract_jobs", env=env)
    assert bad.returncode == 1 and "nope" in bad.stderr
