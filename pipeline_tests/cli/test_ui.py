"""What a person sees in the Dagster UI after `make demo`: the webserver started as the demo says,
asked through its GraphQL API (the same queries the UI's pages make)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import DEMO_DAYS, DEMO_JOBS, DEMO_SEED
from pipeline.emulator import Dataset
from pipeline.quality import CHECKS, check_day
from pipeline.storage.layout import job_key
from pipeline.storage.raw import RawStore
from pipeline.tables import TABLE_NAMES
from pipeline.tables.columns import COLUMN_DESCRIPTIONS
from pipeline_tests.cli.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli_ui")]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dev_env(stdout: str) -> dict[str, str]:
    """The variables of the `... make dev` line the demo prints."""
    (line,) = [line.strip() for line in stdout.splitlines() if line.endswith("make dev")]
    return dict(word.split("=", 1) for word in line.split()[:-2])


class GraphQL:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, **variables: object) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GraphQL, dict, dt.date]]:
    """The demo; then one day failing a check (a completed job's landed file removed, the day's
    six tables rebuilt by a run of the UI's kind); the webserver on what the demo printed."""
    cwd = tmp_path_factory.mktemp("ui")
    done = run_cli("demo", cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    env = _dev_env(done.stdout)
    data_dir = Path(env["CLOUDGLUE_DATA_DIR"])
    jobs = duckdb.sql(
        "SELECT created_date::VARCHAR AS day, job_id FROM read_parquet("
        f"'{data_dir}/tables/extract_jobs/**/*.parquet', hive_partitioning=true) "
        "WHERE status = 'completed' ORDER BY day, job_id"
    ).fetchall()
    day, job_id = jobs[0]
    failing_day = dt.date.fromisoformat(day)
    RawStore(data_dir).store.delete(job_key(failing_day, job_id))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDGLUE_", "DAGSTER_"))}
    rebuilt = subprocess.run(
        [
            *(str(BIN / "dagster"), "asset", "materialize", "-m", "pipeline.definitions"),
            *("--select", ",".join(TABLE_NAMES), "--partition", day),
        ],
        # A rebuild of tables calls no API; the resource still needs a key, and a dead address
        # makes sure nothing is called.
        env={
            **clean,
            **env,
            "CLOUDGLUE_API_KEY": "unused",
            "CLOUDGLUE_BASE_URL": f"http://127.0.0.1:{_free_port()}/v1",
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr

    port = _free_port()
    log = (cwd / "webserver.log").open("w")
    server = subprocess.Popen(
        [
            *(str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)),
            *("-w", str(REPO / "workspace.yaml")),
        ],
        env={**clean, **env},
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    graphql = GraphQL(port)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (cwd / "webserver.log").read_text()
            try:
                if graphql("{ assetNodes { id } }")["assetNodes"]:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, (cwd / "webserver.log").read_text()
            time.sleep(1)
        yield graphql, {"data_dir": data_dir, "start": env["CLOUDGLUE_START_DATE"]}, failing_day
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


_NODE = """
query Node($key: [String!]!, $partition: String!) {
  assetNodes(assetKeys: [{path: $key}]) {
    partitionStats { numPartitions numMaterialized }
    assetMaterializations(partitions: [$partition], limit: 1) {
      partition
      metadataEntries {
        label
        ... on IntMetadataEntry { intValue }
        ... on TableSchemaMetadataEntry { schema { columns { name description } } }
      }
    }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          partitionStatuses {
            ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } }
          }
        }
      }
    }
  }
}
"""


def _days() -> list[str]:
    return [day.isoformat() for day in Dataset(DEMO_SEED, DEMO_JOBS, DEMO_DAYS).days()]


def test_a_table_shows_its_days_rows_and_described_columns(ui):
    graphql, demo, _ = ui
    days = _days()
    assert days[0] == demo["start"]
    for day in days:
        (node,) = graphql(_NODE, key=["segment_entities"], partition=day)["assetNodes"]
        # "10 partitions, 100% filled", not every day since the default start.
        assert node["partitionStats"] == {"numPartitions": 10, "numMaterialized": 10}
        (materialization,) = node["assetMaterializations"]
        entries = {e["label"]: e for e in materialization["metadataEntries"]}
        ((rows,),) = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{demo['data_dir']}/tables/segment_entities/"
            f"**/*.parquet', hive_partitioning=true) WHERE created_date = '{day}'"
        ).fetchall()
        assert entries["dagster/row_count"]["intValue"] == rows
    columns = {
        c["name"]: c["description"] for c in entries["dagster/column_schema"]["schema"]["columns"]
    }
    for name, description in COLUMN_DESCRIPTIONS["segment_entities"].items():
        assert columns[name] == description
    assert columns["entities__scene__location"] == "JSON path: entities.scene.location"
    assert all(columns.values()), columns


def _statuses(ranges: list[dict]) -> dict[str, str]:
    out = {}
    for r in ranges:
        day = dt.date.fromisoformat(r["startKey"])
        while day <= dt.date.fromisoformat(r["endKey"]):
            out[day.isoformat()] = r["status"]
            day += dt.timedelta(days=1)
    return out


_EXECUTIONS = """
query Executions($key: [String!]!, $check: String!, $partition: String!) {
  assetCheckExecutions(
    assetKey: {path: $key}, checkName: $check, partition: $partition, limit: 5
  ) { status partition evaluation { partition success } }
}
"""


def test_each_days_check_results_are_on_that_day_and_a_failing_day_shows_failed(ui):
    graphql, demo, failing_day = ui
    outcomes = {
        (o.table, o.name, day): "SUCCEEDED" if o.passed else "FAILED"
        for day in _days()
        for o in check_day(demo["data_dir"], dt.date.fromisoformat(day))
    }
    assert outcomes[("extract_jobs", "completed_jobs_have_rows", failing_day.isoformat())] == (
        "FAILED"
    )
    for table in sorted({check.table for check in CHECKS}):
        (node,) = graphql(_NODE, key=[table], partition=_days()[0])["assetNodes"]
        for check in node["assetChecksOrError"]["checks"]:
            expected = {day: outcomes[(table, check["name"], day)] for day in _days()}
            assert _statuses(check["partitionStatuses"]["ranges"]) == expected, check["name"]
            for day in _days():
                latest, *_ = graphql(_EXECUTIONS, key=[table], check=check["name"], partition=day)[
                    "assetCheckExecutions"
                ]
                assert latest["status"] == expected[day]
                assert latest["partition"] == latest["evaluation"]["partition"] == day
