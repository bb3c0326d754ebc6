"""In-process pieces of the command line: defaults, paths, formats, the demo's directory."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import (
    ApiOptions,
    CliError,
    build_parser,
    check_days,
    dev_command,
    ensure_dagster_home,
    format_rows,
    main,
    view_statements,
)
from pipeline.cli.api_options import client_for
from pipeline.cli.demo import _prepare_demo_dir
from pipeline.defs.resources import CloudglueResource

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 1, 15)
START = dt.date(2025, 1, 1)


def test_sync_help_states_the_resource_defaults():
    sync = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices).choices[
        "sync"
    ]
    helps = {a.dest: a.help for a in sync._actions}
    fields = CloudglueResource.model_fields
    for dest, field in (
        ("concurrency", "max_concurrency"),
        ("timeout", "timeout_seconds"),
        ("max_retries", "max_retries"),
    ):
        stated = re.search(r"\(default ([0-9.]+)\)", helps[dest]).group(1)
        assert float(stated) == fields[field].default, dest
    assert fields["max_requests_per_second"].default is None and "no cap" in helps["max_rps"]


def test_the_cli_and_the_resource_default_to_the_client_defaults(monkeypatch):
    from pipeline.cloudglue.client import CloudglueClient
    from pipeline.settings import API_KEY_ENV, BASE_URL_ENV

    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.setenv(API_KEY_ENV, "k")
    with (
        CloudglueClient() as plain,
        CloudglueResource(api_key="k").get_client() as resource,
        client_for(ApiOptions()) as cli,
    ):
        assert plain.max_concurrency == 16
        for name in ("base_url", "timeout", "max_concurrency", "retry_policy"):
            assert getattr(plain, name) == getattr(resource, name) == getattr(cli, name), name


def _partition_start_in(value: str | None) -> subprocess.CompletedProcess[str]:
    """``partition_start()`` in a fresh process (the definitions read CLOUDGLUE_START_DATE once,
    on import) with CLOUDGLUE_START_DATE set to ``value``: prints the date or the CliError."""
    env = {k: v for k, v in os.environ.items() if k != "CLOUDGLUE_START_DATE"}
    if value is not None:
        env["CLOUDGLUE_START_DATE"] = value
    code = (
        "from pipeline.cli.common import partition_start\n"
        "from pipeline.cli.errors import CliError\n"
        "try:\n    print(partition_start())\n"
        "except CliError as exc:\n    print(exc.code, exc)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )


@pytest.mark.parametrize("value", [None, "2025-01-01", "2026-1-5", "2026-01-15+0000"])
def test_partition_start_is_the_first_partition_of_the_definitions(value):
    # The CLI reads a plain date without Dagster; it must agree with the definitions' parsing.
    import dagster as dg

    from pipeline.settings import DEFAULT_START_DATE

    expected = dg.DailyPartitionsDefinition(
        start_date=value or DEFAULT_START_DATE, timezone="UTC", end_offset=1
    )
    assert _partition_start_in(value).stdout.strip() == expected.start.date().isoformat()


@pytest.mark.parametrize("value", ["nope", "2026-02-30", "15/01/2026", "2026-01-15 "])
def test_a_start_date_the_definitions_reject_is_a_usage_error(value):
    out = _partition_start_in(value).stdout.strip()
    assert out == f"2 CLOUDGLUE_START_DATE={value!r} is not a date: set it as YYYY-MM-DD"


def test_check_days_is_inclusive_and_says_how_to_fix_a_range():
    assert check_days(TODAY - dt.timedelta(days=2), TODAY, TODAY, START) == [
        TODAY - dt.timedelta(days=2),
        TODAY - dt.timedelta(days=1),
        TODAY,
    ]
    cases = [
        (TODAY, TODAY - dt.timedelta(days=1), "swap them"),
        (TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=1), "is in the future"),
        (TODAY, TODAY + dt.timedelta(days=1), f"pass --to {TODAY}"),
        (dt.date(2024, 12, 31), TODAY, "set CLOUDGLUE_START_DATE=2024-12-31"),
    ]
    for first, last, message in cases:
        with pytest.raises(CliError, match=re.escape(message)) as info:
            check_days(first, last, TODAY, START)
        assert info.value.code == 2


def test_dagster_home_defaults_to_the_working_dir_and_gets_the_packaged_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_dagster_home()
    assert home == tmp_path / ".dagster_home"
    assert (home / "dagster.yaml").read_text() == (REPO / "pipeline" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_commands_starting_together_on_a_new_dagster_home_all_get_a_working_instance(tmp_path):
    home = tmp_path / "home"
    script = (
        "import dagster as dg\n"
        "from pipeline.cli import ensure_dagster_home\n"
        "ensure_dagster_home()\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    assert instance.get_runs() == []\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(errors)
    assert (home / "dagster.yaml").read_text() == (REPO / "pipeline" / "dagster.yaml").read_text()


def test_dev_runs_dagster_dev_on_the_repo_workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no workspace.yaml here: the repo's is found
    command = dev_command(["--", "--port", "3001"])
    assert Path(command[0]).name == "dagster" and Path(command[0]).exists()
    assert command[1:] == ["dev", "-w", str(REPO / "workspace.yaml"), "--port", "3001"]


def test_the_demo_only_empties_a_directory_it_made(tmp_path):
    mine = tmp_path / "demo"
    _prepare_demo_dir(mine)
    (mine / "tables" / "extract_jobs").mkdir(parents=True)
    (mine / "raw").mkdir()
    _prepare_demo_dir(mine)
    assert sorted(p.name for p in mine.iterdir()) == [".cloudglue-demo"]

    theirs = tmp_path / "real"
    (theirs / "tables").mkdir(parents=True)
    with pytest.raises(CliError, match="was not made by the demo") as info:
        _prepare_demo_dir(theirs)
    assert info.value.code == 2 and (theirs / "tables").is_dir()


def test_formats_render_nulls_dates_and_nested_values():
    columns = ["day", "n", "name", "tags"]
    rows = [(dt.date(2026, 1, 15), 3, None, ["a", "b"]), (dt.date(2026, 1, 16), None, "x,y", [])]
    assert json.loads(format_rows(columns, rows, "json")) == [
        {"day": "2026-01-15", "n": 3, "name": None, "tags": ["a", "b"]},
        {"day": "2026-01-16", "n": None, "name": "x,y", "tags": []},
    ]
    assert format_rows(columns, rows, "csv").splitlines() == [
        "day,n,name,tags",
        '2026-01-15,3,,"[""a"", ""b""]"',
        '2026-01-16,,"x,y",[]',
    ]
    table = format_rows(columns, rows, "table").splitlines()
    assert table[0].split() == columns and table[-1] == "(2 rows)"
    assert table[2].split() == ["2026-01-15", "3", "NULL", "['a',", "'b']"]


def test_query_without_tables_says_what_to_run(tmp_path, capsys):
    assert view_statements(tmp_path) == []
    assert main(["query", "--data-dir", str(tmp_path), "SELECT 1"]) == 1
    assert "run `cloudglue-pipeline sync` (or `demo`) first" in capsys.readouterr().err
