"""`cloudglue-pipeline demo` end to end, and `query` over what it wrote."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import dagster as dg
import duckdb
import pyarrow.dataset as pads
import pytest

import pipeline
from pipeline.cli import DEMO_DAYS, DEMO_JOBS, DEMO_SEED, connect, main
from pipeline.emulator import Dataset
from pipeline.tables import TABLE_NAMES, build_frames
from pipeline_tests.cli.conftest import run_cli
from pipeline_tests.cli.test_sync import run_days
from pipeline_tests.conftest import open_instance

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


def test_demo_opens_the_ui_with_partitions_from_its_first_day(demo_run):
    """The printed `make dev` line starts the partitions at the demo's first day, so the UI
    counts the demo's days rather than every day since the default start."""
    _, done = demo_run
    first = Dataset(seed=DEMO_SEED, jobs=DEMO_JOBS, days=DEMO_DAYS).days()[0]
    (dev_line,) = [line for line in done.stdout.splitlines() if line.endswith("make dev")]
    assert f"CLOUDGLUE_START_DATE={first.isoformat()}" in dev_line.split()


def test_demo_is_one_ranged_run_on_the_default_dagster_home_with_each_day_recorded(demo_run):
    cwd, _ = demo_run
    home = cwd / ".dagster_home"
    assert (home / "dagster.yaml").read_text().startswith("# Dagster instance settings")
    with open_instance(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        days = [
            d.isoformat() for d in Dataset(seed=DEMO_SEED, jobs=DEMO_JOBS, days=DEMO_DAYS).days()
        ]
        assert run_days(run) == days
        # Each day is materialized on its own partition, as a one-day run would record it.
        for asset in ("raw_extract_jobs", *TABLE_NAMES):
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(days)


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


def test_query_without_sql_opens_the_duckdb_shell_with_the_views(demo_run, tmp_path, monkeypatch):
    cwd, _ = demo_run
    data_dir = cwd / "data" / "demo"
    record = tmp_path / "argv.json"
    fake = tmp_path / "bin" / "duckdb"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))\nsys.exit(3)\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert main(["query", "--data-dir", str(data_dir)]) == 3  # the shell's own exit status
    flag, views = json.loads(record.read_text())
    assert flag == "-cmd"
    con = duckdb.connect()
    con.execute(views)
    assert {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()} >= set(
        TABLE_NAMES
    )


def test_query_without_sql_or_duckdb_prints_the_views_to_paste(demo_run, monkeypatch, capsys):
    cwd, _ = demo_run
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["query", "--data-dir", str(cwd / "data" / "demo")]) == 0
    out, err = capsys.readouterr()
    assert "duckdb CLI is not on PATH" in err and "error" not in err
    con = duckdb.connect()
    for statement in out.strip().splitlines():
        con.execute(statement)
    ((rows,),) = con.execute("SELECT count(*) FROM extract_jobs").fetchall()
    assert rows == DEMO_JOBS


def test_the_demo_hints_run_when_pasted_outside_the_venv(demo_run):
    cwd, done = demo_run
    hints = done.stdout.split("Query it yourself:\n", 1)[1].splitlines()[:2]
    # A new user's shell: no venv activated, nothing of ours on PATH.
    shell_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    outputs = []
    for hint in hints:
        pasted = subprocess.run(
            ["sh", "-c", hint], cwd=cwd, env=shell_env, capture_output=True, text=True, timeout=120
        )
        assert pasted.returncode == 0, (hint, pasted.stderr)
        outputs.append(pasted.stdout)
    assert outputs[0].splitlines()[-1] == "(5 rows)"
    chapters = pipeline.read_table("chapters", cwd / "data" / "demo")
    assert outputs[1].splitlines()[-1] == f"[{len(chapters)} rows x {chapters.shape[1]} columns]"


def test_query_prints_at_most_max_rows_and_says_how_many_there_are(demo_run, capsys):
    data_dir = str(demo_run[0] / "data" / "demo")
    ((total,),) = connect(data_dir).execute("SELECT count(*) FROM entity_values").fetchall()
    assert total > 1_000
    sql = "SELECT job_id, path FROM entity_values ORDER BY job_id, path"
    assert main(["query", "--data-dir", data_dir, sql]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 1_000 + 1
    assert lines[-1] == f"(1,000 of {total:,} rows shown; --max-rows N for more, 0 for all)"

    assert main(["query", "--data-dir", data_dir, "--format", "jsonl", "--max-rows", "7", sql]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 7 and set(records[0]) == {"job_id", "path"}
    assert err == f"note: 7 of {total:,} rows written (--max-rows N for more, 0 for all)\n"

    assert main(["query", "--data-dir", data_dir, "--format", "jsonl", "--max-rows", "0", sql]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == total and not err


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_query_json_never_has_a_bare_nan(demo_run, capsys, fmt):
    data_dir = str(demo_run[0] / "data" / "demo")
    sql = (
        "SELECT 'nan'::DOUBLE AS nan, '-inf'::DOUBLE AS inf, ['inf'::DOUBLE, 1.5] AS list, "
        "{'x': 'nan'::DOUBLE} AS struct"
    )
    assert main(["query", "--data-dir", data_dir, "--format", fmt, sql]) == 0
    out = capsys.readouterr().out
    parsed = json.loads(out) if fmt == "json" else [json.loads(line) for line in out.splitlines()]
    assert parsed == [{"nan": None, "inf": None, "list": [None, 1.5], "struct": {"x": None}}]
    json.loads(out if fmt == "json" else out.splitlines()[0], parse_constant=pytest.fail)
