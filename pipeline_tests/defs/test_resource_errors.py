"""A run whose CloudglueResource has a malformed base URL fails at once, naming where it was set
(the resource's config or CLOUDGLUE_BASE_URL) and what is wrong with it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipeline.defs.assets import days_asset
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.settings import BASE_URL_ENV


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        (
            "ftp://api.example/v1",
            None,
            "CloudglueResource.base_url='ftp://api.example/v1' is not a usable Cloudglue base"
            " URL: its scheme is 'ftp', not http or https",
        ),
        (
            None,
            "localhost:3000/v1",
            f"{BASE_URL_ENV}='localhost:3000/v1' is not a usable Cloudglue base URL: it has no"
            " scheme",
        ),
    ],
    ids=["resource-config", "env-var"],
)
def test_a_malformed_base_url_fails_the_run_naming_where_it_was_set(
    config: str | None,
    env: str | None,
    message: str,
    tmp_path: Path,
    dagster_instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if env is not None:
        monkeypatch.setenv(BASE_URL_ENV, env)
    result = dg.materialize(
        [days_asset()],
        partition_key="2026-01-15",
        instance=dagster_instance,
        resources={
            "cloudglue": CloudglueResource(api_key="sk-resource-key", base_url=config),
            "data_dir": DataDirResource(path=str(tmp_path / "data")),
        },
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(f"2026-01-15: {message}"), description
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
