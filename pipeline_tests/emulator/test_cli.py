"""``cloudglue-pipeline emulator`` runs in the foreground and prints a working base URL."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.emulator.hostile import HOSTILE_JOBS
from pipeline_tests.emulator.util import session


def test_help_documents_the_fault_syntax(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["emulator", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--port", "--jobs", "--days", "--seed", "--end-date", "--latency-ms", "--fault"):
        assert flag in out
    assert "429=R" in out and "burst=N" in out


def test_bad_fault_spec_is_a_usage_error(capsys) -> None:
    assert main(["emulator", "--port", "0", "--fault", "bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["0", "-5", "nan"])
def test_complete_after_must_be_positive_seconds(capsys, seconds) -> None:
    assert main(["emulator", "--port", "0", "--complete-after", seconds]) == 2
    assert "--complete-after must be a number of seconds > 0" in capsys.readouterr().err


def test_emulator_command_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "emulator",
            "--port=0",
            "--jobs=5",
            "--days=2",
            "--seed=3",
            "--end-date=2026-01-15",
            "--api-key=k",
            "--hostile",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        body = session("k").get(f"{base_url}/extract", params={"limit": 100}, timeout=10).json()
        assert body["total"] == 5 + len(HOSTILE_JOBS)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    assert "GET /v1/extract" in proc.stderr.read()
