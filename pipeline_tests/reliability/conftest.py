"""Helpers for the end-to-end reliability tests: table snapshots, layout checks, CLI runs.

Every test here drives the real CLI (a subprocess, or ``sync_days`` in-process) against the
emulator over loopback HTTP, with a real Dagster instance in a temp DAGSTER_HOME.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline import jsonio
from pipeline.cli import ApiOptions, ensure_dagster_home, sync_days
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.settings import LEASE_SECONDS_ENV
from pipeline.storage.layout import BUILD_RECORD, job_file_name
from pipeline.storage.raw import RawStore
from pipeline.storage.store import is_bucket_url, open_store
from pipeline.tables import TABLE_NAMES
from pipeline_tests.cli.conftest import CLI, run_cli
from pipeline_tests.conftest import EMULATOR_END_DATE
from pipeline_tests.stores import read_tree, walk

__all__ = ["CLI", "run_cli"]

KEY = "sk-reliability-3c7e1f0b9d"
DAYS = ("2026-01-13", "2026-01-14", "2026-01-15")


def small_dataset(*, hostile: bool = False, jobs: int = 30) -> Dataset:
    """30 jobs over the three days of ``DAYS`` (every status and the paging sizes)."""
    return Dataset(seed=11, jobs=jobs, days=3, end_date=EMULATOR_END_DATE, hostile=hostile)


def cli_env(
    tmp_path: Path, base_url: str, key: str = KEY, data_dir: str | None = None
) -> dict[str, str]:
    """The CLI's settings: data in ``data_dir`` (default ``tmp_path/data``; an ``s3://`` one
    also gets short leases, so a killed run's expire quickly, and every AWS_* of this process).
    """
    env = {
        "CLOUDGLUE_API_KEY": key,
        "CLOUDGLUE_BASE_URL": base_url,
        "CLOUDGLUE_DATA_DIR": data_dir or str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    if data_dir and is_bucket_url(data_dir):
        env[LEASE_SECONDS_ENV] = "2"
        env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    return env


def sync(env: Mapping[str, str], *args: str, days: tuple[str, str] = (DAYS[0], DAYS[-1])) -> Any:
    """``cloudglue-pipeline sync`` over ``days`` with tiny concurrency and retries."""
    return run_cli(
        "sync",
        "--from",
        days[0],
        "--to",
        days[1],
        "--concurrency",
        "4",
        "--timeout",
        "5",
        *args,
        env=env,
    )


def sync_in_process(
    base_url: str,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    data_dir: str | None = None,
    **options: float,
) -> bool:
    """What ``cloudglue-pipeline sync`` runs over ``DAYS``, in this process: faster than a
    subprocess, same Dagster runs (DAGSTER_HOME ``root/home``, data in ``data_dir``, by
    default ``root/data``)."""
    monkeypatch.setenv("DAGSTER_HOME", str(root / "home"))
    monkeypatch.setenv("CLOUDGLUE_API_KEY", KEY)
    ensure_dagster_home()
    days = [dt.date.fromisoformat(d) for d in DAYS]
    api = ApiOptions(base_url=base_url, max_concurrency=4, **options)
    synced = sync_days(days, data_dir or root / "data", api, quiet=True)
    assert [s.day for s in synced.days] == days[: len(synced.days)]
    return synced.ok


@pytest.fixture(scope="session")
def fault_free(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[tuple]]]:
    """``small_dataset()`` synced without faults: the root and its table snapshot."""
    root = tmp_path_factory.mktemp("fault-free")
    with EmulatorServer(small_dataset(), api_key=KEY) as server, pytest.MonkeyPatch.context() as mp:
        assert sync_in_process(server.base_url, root, mp)
    tables = snapshot(root / "data")
    assert len(tables["segment_entities"]) > 500 and len(tables["chapters"]) > 0
    return root, tables


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "tolist"):
        return repr(value.tolist())
    if isinstance(value, list | dict):
        return repr(value)
    return value


def snapshot(data_dir: Path | str) -> dict[str, list[tuple]]:
    """Every table as sorted rows of (column, value) pairs, ``fetched_at`` left out."""
    out = {}
    for table in TABLE_NAMES:
        frame = pipeline.read_table(table, data_dir)
        cols = sorted(c for c in frame.columns if c != "fetched_at")
        rows = [
            tuple((c, _cell(v)) for c, v in zip(cols, row, strict=True))
            for row in frame[cols].itertuples(index=False)
        ]
        out[table] = sorted(rows, key=repr)
    return out


def assert_readers_see_only_complete_files(data_dir: Path | str) -> None:
    """Nothing under ``tables/`` but Parquet files in partitions, their build records and
    ``_schema.json``; nothing under ``raw/created_date=*/`` but landed jobs and listings; every
    file parses whole (every Parquet file read to the end). A local data dir or a bucket: every
    key is listed through the store."""
    store = open_store(data_dir)
    if store.is_local:  # no stray directory either (a bucket has no directories)
        tables = Path(data_dir) / "tables"
        for path in tables.rglob("*") if tables.exists() else ():
            rel = path.relative_to(tables).parts
            if path.is_dir():
                assert len(rel) == 1 or (len(rel) == 2 and rel[1].startswith("created_date=")), path
    for key in walk(store, "tables"):
        rel = key.split("/")[1:]
        if len(rel) == 2:
            assert rel[1] == "_schema.json", key
            json.loads(store.read_bytes(key))
        elif len(rel) == 3 and rel[1].startswith("created_date=") and rel[2] == BUILD_RECORD:
            json.loads(store.read_bytes(key))  # the partition's build record
        else:
            assert len(rel) == 3 and rel[1].startswith("created_date="), key
            assert rel[2].endswith(".parquet"), key
            pq.read_table(pa.BufferReader(store.read_bytes(key)))  # a complete file
    raw = RawStore(store)
    for key in walk(store, "raw"):
        rel = key.split("/")[1:]
        assert len(rel) == 2 and rel[0].startswith("created_date="), key
        assert rel[1].endswith(".json.zst"), key
        day = dt.date.fromisoformat(rel[0].split("=", 1)[1])
        if rel[1] == "_listing.json.zst":
            assert raw.read_listing(day) is not None
        else:
            job = jsonio.loads(unzstd(store.read_bytes(key)))
            assert rel[1] == job_file_name(job["job_id"])


def unzstd(data: Path | bytes) -> bytes:
    """A zstd file's (or zstd bytes') content."""
    source = str(data) if isinstance(data, Path) else pa.BufferReader(data)
    with pa.input_stream(source, compression="zstd") as stream:
        return stream.read()


def landed_job_ids(data_dir: Path | str) -> set[str]:
    """Ids of the jobs whose complete JSON is in the raw landing."""
    store = open_store(data_dir)
    return {
        jsonio.loads(unzstd(store.read_bytes(key)))["job_id"]
        for key in walk(store, "raw")
        if not key.endswith("/_listing.json.zst")
    }


def partition_files(data_dir: Path | str) -> dict[str, bytes]:
    """Every file under ``tables/`` and ``raw/`` with its bytes, to prove nothing changed."""
    return read_tree(data_dir)


def completed_result(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
