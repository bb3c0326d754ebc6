"""workspace.yaml loads the way `dagster dev` loads it, and the definitions validate."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_in_repo(tool: str, *args: str, tmp_path: Path) -> str:
    """``tool`` (next to this Python) run from the repository root; its output, once it passed."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "CLOUDGLUE_API_KEY": "unused",
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name(tool)), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
def test_dagster_definitions_validate_through_the_workspace(tmp_path):
    output = _run_in_repo(
        "dagster", "definitions", "validate", "-w", "workspace.yaml", tmp_path=tmp_path
    )
    assert "cloudglue_pipeline" in output


@pytest.mark.slow
def test_dg_check_defs_loads_the_project(tmp_path):
    """The dg project of pyproject's ``[tool.dg]`` loads (as ``dg check defs`` does)."""
    output = _run_in_repo("dg", "check", "defs", tmp_path=tmp_path)
    assert "All definitions loaded successfully" in output


def test_loading_the_definitions_warns_nothing():
    """`dagster dev` logs each warning of every process that loads the definitions (webserver,
    daemon, each run): loading them warns nothing."""
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", "from pipeline.definitions import defs; defs()"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_definitions_hold_the_assets_checks_sensor_and_schedule():
    from pipeline.definitions import defs

    repo = defs().get_repository_def()
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
    assert len(repo.asset_graph.asset_check_keys) == 7
    assert {s.name for s in repo.sensor_defs} == {"completed_jobs_sensor", "webhook_events_sensor"}
    assert {s.name for s in repo.schedule_defs} == {"previous_day_schedule"}


@pytest.mark.parametrize(
    "env, intervals",
    [
        ({}, (300, 30)),
        ({"CLOUDGLUE_WEBHOOKS": "on", "CLOUDGLUE_WEBHOOK_SENSOR_SECONDS": "5"}, (3600, 5)),
    ],
)
def test_with_webhooks_on_polling_is_hourly_and_the_event_sensor_interval_is_set(env, intervals):
    """Both intervals are read when the definitions load: in a fresh process."""
    code = (
        "from pipeline.definitions import defs\n"
        "sensors = {s.name: s for s in defs().sensors}\n"
        "print(sensors['completed_jobs_sensor'].minimum_interval_seconds,"
        " sensors['webhook_events_sensor'].minimum_interval_seconds)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDGLUE_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert tuple(map(int, done.stdout.split())) == intervals


def test_the_readme_launchpad_config_runs_the_daily_job(
    dataset, emulator, dagster_instance, tmp_path, monkeypatch
):
    """The resource config the README gives for UI runs is accepted and takes effect."""
    import re
    import textwrap

    import yaml

    from pipeline.definitions import defs
    from pipeline_tests.conftest import EMULATOR_API_KEY

    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "the README lost its Launchpad example"
    run_config = yaml.safe_load(textwrap.dedent(block.group(1)))
    settings = run_config["resources"]["cloudglue"]["config"]
    assert settings["api_key"] == {"env": "CLOUDGLUE_API_KEY"}
    monkeypatch.setenv("CLOUDGLUE_API_KEY", EMULATOR_API_KEY)
    monkeypatch.setenv("CLOUDGLUE_BASE_URL", emulator.base_url)
    monkeypatch.setenv("CLOUDGLUE_DATA_DIR", str(tmp_path / "data"))
    day = dataset.days()[-1]
    started = time.monotonic()
    result = (
        defs()
        .resolve_job_def("cloudglue_daily_job")
        .execute_in_process(
            partition_key=day.isoformat(), instance=dagster_instance, run_config=run_config
        )
    )
    elapsed = time.monotonic() - started
    assert result.success
    assert 1 <= emulator.stats.max_in_flight <= settings["max_concurrency"]
    # The rate cap took effect: a burst of one request per slot, then the configured rate.
    requests, rate = emulator.stats.requests, settings["max_requests_per_second"]
    assert requests > settings["max_concurrency"] + rate
    assert elapsed >= (requests - settings["max_concurrency"]) / rate
    assert any((tmp_path / "data" / "tables" / "segment_entities").glob("*/*.parquet"))


def test_settings_are_read_when_the_definitions_load_not_at_import(monkeypatch):
    """CLOUDGLUE_START_DATE and CLOUDGLUE_DAYS_PER_RUN set after the import still take effect:
    Dagster calls ``defs`` when it loads the code location."""
    from pipeline.definitions import defs

    monkeypatch.setenv("CLOUDGLUE_START_DATE", "2026-03-01")
    monkeypatch.setenv("CLOUDGLUE_DAYS_PER_RUN", "7")
    graph = defs().resolve_asset_graph()
    node = graph.get(dg.AssetKey("segment_entities"))
    assert node.partitions_def.get_first_partition_key() == "2026-03-01"
    assert node.backfill_policy.max_partitions_per_run == 7
    monkeypatch.setenv("CLOUDGLUE_START_DATE", "2026-04-01")
    later = defs().resolve_asset_graph().get(dg.AssetKey("segment_entities"))
    assert later.partitions_def.get_first_partition_key() == "2026-04-01"


def test_sensor_intervals_are_read_when_the_definitions_load_not_at_import(monkeypatch):
    """CLOUDGLUE_WEBHOOKS and CLOUDGLUE_WEBHOOK_SENSOR_SECONDS set after the import still take
    effect, and follow each later load."""
    from pipeline.definitions import defs

    def intervals() -> tuple[int | None, int | None]:
        sensors = {s.name: s for s in defs().sensors}
        return (
            sensors["completed_jobs_sensor"].minimum_interval_seconds,
            sensors["webhook_events_sensor"].minimum_interval_seconds,
        )

    monkeypatch.delenv("CLOUDGLUE_WEBHOOKS", raising=False)
    monkeypatch.delenv("CLOUDGLUE_WEBHOOK_SENSOR_SECONDS", raising=False)
    assert intervals() == (300, 30)
    monkeypatch.setenv("CLOUDGLUE_WEBHOOKS", "on")
    monkeypatch.setenv("CLOUDGLUE_WEBHOOK_SENSOR_SECONDS", "5")
    assert intervals() == (3600, 5)
    monkeypatch.setenv("CLOUDGLUE_WEBHOOKS", "off")
    monkeypatch.setenv("CLOUDGLUE_WEBHOOK_SENSOR_SECONDS", "45")
    assert intervals() == (300, 45)
