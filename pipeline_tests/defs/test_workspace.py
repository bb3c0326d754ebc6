"""workspace.yaml loads the way `dagster dev` loads it, and the definitions validate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dagster_definitions_validate_through_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CLOUDGLUE_API_KEY": "unused"}
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cloudglue_pipeline" in done.stdout + done.stderr


def test_definitions_hold_the_assets_checks_sensor_and_schedule():
    from pipeline.definitions import defs

    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert keys == {
        "raw_extract_jobs",
        "extract_jobs",
        "video_entities",
        "segment_entities",
        "chapters",
        "shots",
        "entity_values",
    }
    assert len(repo.asset_graph.asset_check_keys) == 6
    assert {s.name for s in repo.sensor_defs} == {"completed_jobs_sensor"}
    assert {s.name for s in repo.schedule_defs} == {"previous_day_schedule"}
