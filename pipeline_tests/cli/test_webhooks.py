"""``cloudglue-pipeline webhooks``: register (create, then update the same URL's webhook), list
(no secrets), delete, against the emulator; serve in its own process, receiving a delivery."""

from __future__ import annotations

import os
import signal
import stat
import subprocess

import pytest

from pipeline.cli import main
from pipeline_tests.cli.conftest import _CONFIG_ENV, CLI, run_cli
from pipeline_tests.conftest import EMULATOR_API_KEY
from pipeline_tests.webhooks.util import SECRET, deliver, event, logged


@pytest.fixture
def api_env(emulator, monkeypatch):
    monkeypatch.setenv("CLOUDGLUE_API_KEY", EMULATOR_API_KEY)
    monkeypatch.setenv("CLOUDGLUE_BASE_URL", emulator.base_url)
    return emulator


def test_register_list_delete(api_env, tmp_path, capsys) -> None:
    url = "http://127.0.0.1:8766/"
    secret_file = tmp_path / "secret"
    assert main(["webhooks", "register", "--url", url, "--secret-file", str(secret_file)]) == 0
    out, err = capsys.readouterr()
    hook_id = out.strip()
    (hook,) = api_env.webhooks.list_body(limit=10, offset=0, descending=True)["data"]
    assert hook["id"] == hook_id and hook["endpoint"] == url
    assert hook["subscribed_events"] == ["extract.job.completed", "extract.job.failed"]
    assert secret_file.read_text().strip() == hook["webhook_secret"]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert hook["webhook_secret"] not in out + err

    # Registering the same URL again re-activates the same webhook; the secret stays unshown.
    api_env.webhooks.update(hook_id, {"active": False, "subscribed_events": []})
    assert main(["webhooks", "register", "--url", url]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == hook_id and "--secret-file" in err
    assert hook["webhook_secret"] not in out + err
    (again,) = api_env.webhooks.list_body(limit=10, offset=0, descending=True)["data"]
    assert again["active"] is True and len(again["subscribed_events"]) == 2

    assert main(["webhooks", "list"]) == 0
    out, _ = capsys.readouterr()
    assert hook_id in out and url in out and hook["webhook_secret"] not in out

    assert main(["webhooks", "delete", hook_id]) == 0
    assert capsys.readouterr().out.strip() == f"deleted {hook_id}"
    assert api_env.webhooks.list_body(limit=10, offset=0, descending=True)["total"] == 0
    assert main(["webhooks", "delete", hook_id]) == 1
    assert "404" in capsys.readouterr().err


def test_register_errors_are_one_line(emulator) -> None:
    done = run_cli("webhooks", "register", "--url", "ftp://x", "--base-url", emulator.base_url)
    assert (
        done.returncode == 2
        and done.stderr.count("\n") == 1
        and "not an http(s) URL" in done.stderr
    )
    done = run_cli("webhooks", "list", "--base-url", emulator.base_url)
    assert done.returncode == 1 and "CLOUDGLUE_API_KEY is not set" in done.stderr
    done = run_cli(
        "webhooks", "list", "--base-url", emulator.base_url, env={"CLOUDGLUE_API_KEY": "wrong"}
    )
    assert done.returncode == 1 and "rejected the API key" in done.stderr
    assert "wrong" not in done.stderr


def test_serve_needs_the_secret(tmp_path) -> None:
    done = run_cli("webhooks", "serve", "--port", "0", "--data-dir", str(tmp_path))
    assert done.returncode == 1 and "CLOUDGLUE_WEBHOOK_SECRET is not set" in done.stderr


def test_serve_logs_deliveries_in_the_data_dir_until_interrupted(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
    env["CLOUDGLUE_WEBHOOK_SECRET"] = SECRET
    data_dir = tmp_path / "data"
    server = subprocess.Popen(
        [str(CLI), "webhooks", "serve", "--port", "0", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        url = line.split()[4]
        body = event()
        assert deliver(url, body).status_code == 200
        assert deliver(url, body, secret="nope").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0
    assert logged(data_dir) == [body]
    assert SECRET not in err and "nope" not in err and "refused: wrong webhook secret" in err
