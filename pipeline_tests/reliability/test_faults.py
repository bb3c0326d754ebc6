"""Fault matrix: every emulator fault, absorbed by the retries, gives the fault-free tables; a
fault that outlasts them fails the run with its cause and changes no partition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.emulator import Dataset, EmulatorServer, FaultConfig
from pipeline_tests.reliability.conftest import (
    DAYS,
    KEY,
    cli_env,
    completed_result,
    partition_files,
    small_dataset,
    snapshot,
    sync,
    sync_in_process,
)

FAULTS = {
    "429-retry-after-seconds": (
        FaultConfig(seed=1, rate_limit=0.3, retry_after_seconds=0),
        "rate_limit",
    ),
    "429-retry-after-date": (
        FaultConfig(seed=2, rate_limit=0.3, retry_after="http-date", retry_after_seconds=0),
        "rate_limit",
    ),
    "429-no-retry-after": (FaultConfig(seed=3, rate_limit=0.3, retry_after="none"), "rate_limit"),
    "5xx-burst": (FaultConfig(seed=4, server_error=0.3, burst=3), "server_error"),
    "dropped-connection": (FaultConfig(seed=5, drop=0.3, burst=2), "drop"),
    "read-timeout": (FaultConfig(seed=6, slow=0.15, slow_seconds=2.0), "slow"),
    "total-changes-mid-paging": (
        FaultConfig(seed=7, changing_total=1.0, burst=2),
        "changing_total",
    ),
    "truncated-content-length": (
        FaultConfig(seed=8, truncate=0.3, truncate_style="content-length"),
        "truncate",
    ),
    "truncated-json": (
        FaultConfig(seed=9, truncate=0.3, truncate_style="invalid-json"),
        "truncate",
    ),
}


# The API's faults reach the data dir the same way whatever they are: a bucket gets one of each
# family (a status code, a broken connection, a broken body); a local data dir gets them all.
IN_A_BUCKET = ("5xx-burst", "dropped-connection", "truncated-json")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "local_or_bucket"),
    [(name, "local") for name in FAULTS] + [(name, "bucket") for name in IN_A_BUCKET],
    indirect=["local_or_bucket"],
)
def test_a_fault_within_the_retries_gives_the_fault_free_tables(
    name: str,
    fault_free: tuple[Path, dict],
    local_or_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faults, kind = FAULTS[name]
    with EmulatorServer(small_dataset(), api_key=KEY, faults=faults) as server:
        ok = sync_in_process(
            server.base_url,
            tmp_path,
            monkeypatch,
            data_dir=local_or_bucket,
            timeout_seconds=0.5,
            backoff_seconds=0.01,
        )
        injected = server.stats.faults.get(kind, 0)
    assert ok
    assert injected > 0, "the fault never fired: the test proves nothing"
    assert snapshot(local_or_bucket) == fault_free[1]


def _files(env: dict[str, str]) -> dict[str, bytes]:
    """``partition_files`` of the CLI environment's data dir (a bucket's, with its AWS_*)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            if name.startswith("AWS_"):
                mp.setenv(name, value)
        return partition_files(env["CLOUDGLUE_DATA_DIR"])


@pytest.fixture(scope="module", params=["local", "bucket"])
def synced(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Dataset, str, dict[str, str]]]:
    """Three days synced fault-free into a local data dir or a bucket, with the biggest job
    (350 segment entities, 4 pages) still processing; yields the dataset, that job's id and the
    CLI environment. The tests using it must leave the data dir as they found it (what they
    assert) and the dataset too."""
    dataset = small_dataset()
    big = max(
        (j for j in dataset.job_ids() if dataset.status(j) == "completed"),
        key=lambda j: dataset.complete_job(j)["total"],
    )
    assert dataset.complete_job(big)["total"] > 200
    dataset.set_status(big, "processing")
    root = tmp_path_factory.mktemp("synced")
    data_dir, aws = None, {}
    if request.param == "bucket":
        object_store = request.getfixturevalue("object_store")
        data_dir, aws = object_store.fresh_prefix(), object_store.env()
    with EmulatorServer(dataset, api_key=KEY) as server:
        env = {**cli_env(root, server.base_url, data_dir=data_dir), **aws}
        done = sync(env, "--quiet")
        assert done.returncode == 0, completed_result(done)
    yield dataset, big, env


@pytest.mark.slow
def test_total_changing_on_every_attempt_fails_the_day_and_changes_no_partition(synced) -> None:
    """The one fault that hits while fetching (listing pages have offset 0 here)."""
    dataset, big, env = synced
    day = next(d for d in DAYS if big in dataset.job_ids_for_day(dt.date.fromisoformat(d)))
    before = _files(env)
    faults = FaultConfig(changing_total=1.0, burst=100)
    dataset.set_status(big, "completed")
    try:
        with EmulatorServer(dataset, api_key=KEY, faults=faults) as server:
            done = sync({**env, "CLOUDGLUE_BASE_URL": server.base_url}, days=(day, day))
            assert server.stats.faults["changing_total"] > 0
    finally:
        dataset.set_status(big, "processing")
    assert done.returncode == 1, completed_result(done)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"error: {day}: LandingError: 1 completed job(s) could not be")
    assert f"first error: InconsistentPagingError: job {big}: " in errors[0]
    assert "total changed from 350" in errors[0]
    assert "Traceback" not in done.stderr
    assert _files(env) == before


OUTLASTING = {
    "5xx": (
        FaultConfig(server_error=1.0, burst=100),
        "ApiError: ",
        "failed after 2 attempt(s): HTTP 50",
    ),
    "429-no-retry-after": (
        FaultConfig(rate_limit=1.0, retry_after="none", burst=100),
        "ApiError: ",
        "failed after 2 attempt(s): HTTP 429 (Too many requests)",
    ),
    "dropped-connection": (
        FaultConfig(drop=1.0, burst=100),
        "TransportError: ",
        "failed after 2 attempt(s): connection failed",
    ),
    "read-timeout": (
        FaultConfig(slow=1.0, slow_seconds=2.0, burst=100),
        "TransportError: ",
        "failed after 2 attempt(s): timed out after 0.5s",
    ),
    "truncated-json": (
        FaultConfig(truncate=1.0, truncate_style="invalid-json", burst=100),
        "TransportError: ",
        "failed after 2 attempt(s): body is not valid JSON",
    ),
    "truncated-content-length": (
        FaultConfig(truncate=1.0, truncate_style="content-length", burst=100),
        "TransportError: ",
        "failed after 2 attempt(s): body cut short",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OUTLASTING))
def test_a_fault_outlasting_the_retries_fails_with_its_cause_and_changes_no_partition(
    name: str, synced
) -> None:
    dataset, _big, env = synced
    faults, error_class, cause = OUTLASTING[name]
    before = _files(env)
    with EmulatorServer(dataset, api_key=KEY, faults=faults) as server:
        done = sync(
            {**env, "CLOUDGLUE_BASE_URL": server.base_url}, "--max-retries", "1", "--timeout", "0.5"
        )
        # The probe's single listing attempt, then the ranged run's listing, retried once.
        assert server.stats.requests == 3
    assert done.returncode == 1, completed_result(done)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    span = f"{DAYS[0]}..{DAYS[-1]}"
    assert len(errors) == 1 and errors[0].startswith(f"error: {span}: {error_class}GET ")
    assert cause in errors[0], errors[0]
    assert "Traceback" not in done.stderr
    assert f"cloudglue-pipeline sync --from {DAYS[0]} --to {DAYS[-1]}" in done.stderr
    assert _files(env) == before
