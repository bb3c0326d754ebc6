"""Fixtures for the production deployment: a real PostgreSQL for the session, a fresh database
per test, the production ``deploy/dagster.yaml`` in a temp DAGSTER_HOME, and the data dir.

PostgreSQL comes from the machine (Debian's ``postgresql``; ``.ci/run`` installs it). Without
it the tests skip on a developer's machine and fail under CI (``CI`` set), so CI never goes
green by skipping them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_tests.postgres import Postgres, PostgresUnavailable, running_postgres

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the deployment tests: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def postgres(postgres_server: Postgres) -> Postgres:
    """A new, empty database on the session's server (Dagster creates its tables in it)."""
    import psycopg2

    name = "t_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(
        host=postgres_server.host,
        port=postgres_server.port,
        user=postgres_server.user,
        password=postgres_server.password,
        dbname=postgres_server.db,
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
    finally:
        conn.close()
    return Postgres(
        postgres_server.host,
        postgres_server.port,
        postgres_server.user,
        postgres_server.password,
        name,
    )


@pytest.fixture
def production_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME holding the production dagster.yaml, unchanged."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    return home


@pytest.fixture
def data_dir(s3_env: str) -> str:
    """Where the deployment's runs read and write (CLOUDGLUE_DATA_DIR): the production shape,
    an ``s3://`` prefix in the test bucket (the AWS_* variables are set in this process, and
    the services inherit them), shared by runs that share nothing else."""
    return s3_env
