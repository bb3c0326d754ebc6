"""Dagster fixtures: a temp DAGSTER_HOME and data dir, resources pointed at the emulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipeline.defs.assets import days_asset
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.emulator import EmulatorServer
from pipeline_tests.conftest import EMULATOR_API_KEY


@pytest.fixture
def dagster_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def resources(
    emulator: EmulatorServer, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    monkeypatch.setenv("CLOUDGLUE_API_KEY", EMULATOR_API_KEY)
    return {
        "cloudglue": CloudglueResource(
            api_key=dg.EnvVar("CLOUDGLUE_API_KEY"), base_url=emulator.base_url, max_concurrency=4
        ),
        "data_dir": DataDirResource(path=str(data_dir)),
    }


@pytest.fixture
def materialize_day(
    resources: dict[str, object], dagster_instance: dg.DagsterInstance
) -> Callable[[dt.date], dg.ExecuteInProcessResult]:
    def run(day: dt.date) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [days_asset()],
            partition_key=day.isoformat(),
            instance=dagster_instance,
            resources=resources,
        )

    return run
