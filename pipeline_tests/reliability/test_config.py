"""Bad configuration fails with one line saying what to do, before any request is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.emulator import EmulatorServer
from pipeline_tests.reliability.conftest import KEY, cli_env, run_cli, small_dataset


@pytest.fixture
def server() -> EmulatorServer:
    with EmulatorServer(small_dataset(jobs=5), api_key=KEY) as running:
        yield running


@pytest.mark.parametrize(
    ("args", "env_change", "code", "message"),
    [
        ([], {"CLOUDGLUE_START_DATE": "2999-01-01"}, 2, "CLOUDGLUE_START_DATE=2999-01-01 is in"),
        (["--base-url", "{base} x"], {}, 1, "--base-url='{base} x' is not a usable"),
        (["--base-url", "{base}/\nx"], {}, 1, "it contains whitespace"),
        (["--base-url", "http://127.0.0.1:0/v1"], {}, 1, "its port is not a number in 1..65535"),
        ([], {"CLOUDGLUE_BASE_URL": "127.0.0.1:80/v1"}, 1, "CLOUDGLUE_BASE_URL='127.0.0.1:80/v1'"),
        (["--base-url", "https://me:pw@h/v1"], {}, 1, "--base-url='https://…@h/v1' is not"),
    ],
    ids=["start-date-in-future", "space-in-url", "newline-in-url", "port-zero", "env", "creds"],
)
def test_bad_configuration_is_one_line_before_any_request(
    server: EmulatorServer, tmp_path: Path, args, env_change, code, message
) -> None:
    env = {**cli_env(tmp_path, server.base_url), **env_change}
    args = [a.replace("{base}", server.base_url) for a in args]
    message = message.replace("{base}", server.base_url)
    done = run_cli("sync", *args, env=env)
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert server.stats.requests == 0
    assert not (tmp_path / "home").exists()
