"""``demo --webhooks``: a job completed in the emulator after the sync arrives in the tables
through its webhook event and the event sensor's run, with no sync run for it."""

from __future__ import annotations

import pytest

import pipeline
from pipeline_tests.cli.conftest import run_cli

pytestmark = pytest.mark.xdist_group("cli_demo")


def test_demo_with_webhooks_lands_the_completed_job(tmp_path) -> None:
    data_dir = tmp_path / "demo"
    done = run_cli(
        "demo",
        "--webhooks",
        "--data-dir",
        str(data_dir),
        env={"DAGSTER_HOME": str(tmp_path / "home")},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("The emulator completed job")]
    job_id = line.split()[4]
    assert "webhook_events_sensor requested a run of" in done.stdout
    segments = pipeline.read_table("segment_entities", data_dir)
    jobs = pipeline.read_table("extract_jobs", data_dir)
    assert jobs.loc[jobs["job_id"] == job_id, "status"].tolist() == ["completed"]
    rows = int((segments["job_id"] == job_id).sum())
    assert rows > 0 and f"holds {rows} rows of job {job_id}" in done.stdout
