"""Run ``cloudglue-pipeline`` in a subprocess, and the demo once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

CLI = Path(sys.executable).with_name("cloudglue-pipeline")
# Variables that would leak the caller's configuration into a subprocess under test.
_CONFIG_ENV = (
    "CLOUDGLUE_API_KEY",
    "CLOUDGLUE_BASE_URL",
    "CLOUDGLUE_DATA_DIR",
    "CLOUDGLUE_START_DATE",
    "DAGSTER_HOME",
)


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its Cloudglue and Dagster configuration, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
    return {**base, **(env or {})}


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``cloudglue-pipeline *args`` with a clean configuration plus ``env``."""
    return subprocess.run(
        [str(CLI), *args],
        env=clean_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """``cloudglue-pipeline demo`` run once in a temp working dir with the default paths
    (./data/demo, ./.dagster_home); returns that dir and the finished process."""
    cwd = tmp_path_factory.mktemp("demo")
    done = run_cli("demo", cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return cwd, done
