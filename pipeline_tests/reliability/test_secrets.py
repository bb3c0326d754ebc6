"""The API key and the bucket's AWS secret stay secret: no file a sync produces (tables, raw
landing, a bucket's every object, DAGSTER_HOME with its SQLite storage and logs, TMPDIR) and no
output holds them, plain or base64, not even when a server echoes the key back in a body, an
error message or a request id; a data dir or base URL with credentials in it is refused without
echoing them; TLS is verified; the emulator listens on loopback only."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from pipeline.cli import build_parser
from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.errors import TransportError
from pipeline.emulator import EmulatorServer, FaultConfig
from pipeline.storage.store import is_bucket_url
from pipeline_tests.conftest import EMULATOR_END_DATE
from pipeline_tests.loopback import Answer, serving
from pipeline_tests.reliability.conftest import (
    cli_env,
    completed_result,
    run_cli,
    small_dataset,
    sync,
)
from pipeline_tests.stores import read_tree

SECRET = "sk-live-Zq8vN3xR7pLm2Wt9Kd4Hs6Yb1Fc5Gj0A"
AWS_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def secret_forms(secret: str) -> list[bytes]:
    """The key as bytes, UTF-16 and every base64 alignment of it (standard and URL-safe)."""
    raw = secret.encode()
    forms = [raw, secret.encode("utf-16-le"), f"Bearer {secret}".encode()]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for pad in range(3):
            text = encode(b"\0" * pad + raw)
            start = 4 if pad else 0  # the first group mixes in the padding bytes
            forms.append(text[start:-4])  # the last group may hold '=' padding
    return forms


def _leaks(data: bytes, secrets: tuple[str, ...] = (SECRET,)) -> list[bytes]:
    return [form for secret in secrets for form in secret_forms(secret) if form in data]


@pytest.mark.slow
def test_no_file_or_output_of_a_failing_and_a_succeeding_sync_holds_the_key(
    local_or_bucket: str, tmp_path: Path
) -> None:
    secrets = (SECRET, *(os.environ[n] for n in AWS_SECRETS if n in os.environ))
    if is_bucket_url(local_or_bucket):
        assert len(secrets) == 3  # the API key, the AWS key id and secret are searched
    dataset = small_dataset(jobs=20)
    outputs: list[subprocess.CompletedProcess] = []
    outage = FaultConfig(server_error=1.0, burst=100)
    (tmp_path / "tmp").mkdir()

    def env(base_url: str) -> dict[str, str]:
        return {
            **cli_env(tmp_path, base_url, SECRET, data_dir=local_or_bucket),
            "TMPDIR": str(tmp_path / "tmp"),
        }

    with EmulatorServer(dataset, api_key=SECRET, faults=outage) as server:
        failed = sync(env(server.base_url), "--max-retries", "1")
        assert failed.returncode == 1, completed_result(failed)
        outputs.append(failed)
    with EmulatorServer(dataset, api_key=SECRET + "-other") as server:
        rejected = sync(env(server.base_url))
        assert rejected.returncode == 1 and "CLOUDGLUE_API_KEY" in rejected.stderr
        outputs.append(rejected)
    with EmulatorServer(dataset, api_key=SECRET) as server:
        ok = sync(env(server.base_url))
        assert ok.returncode == 0, completed_result(ok)
        outputs.append(ok)

    files = {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert any(p.endswith(".db") for p in files)  # Dagster's SQLite storage is searched
    stored = read_tree(local_or_bucket, ("tables", "raw", ".cache", ".locks"))
    assert any(k.endswith(".parquet") for k in stored)
    for where, data in [*files.items(), *stored.items()]:
        assert not _leaks(data, secrets), where
    for done in outputs:
        assert not _leaks((done.stdout + done.stderr).encode(), secrets), done.stderr


def test_the_cli_refuses_a_data_dir_url_with_credentials_without_echoing_them(
    tmp_path: Path,
) -> None:
    url = "s3://AKIDINURL:pass-in-url-Xy7Qw@cloudglue-test/prefix"
    done = sync(cli_env(tmp_path, "http://127.0.0.1:9/v1", SECRET, data_dir=url))
    assert done.returncode == 1, completed_result(done)
    assert "never the URL" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    output = done.stdout + done.stderr
    assert "pass-in-url-Xy7Qw" not in output and "AKIDINURL" not in output, output
    env = cli_env(tmp_path, "http://127.0.0.1:9/v1", SECRET, data_dir=url)
    done = run_cli("query", "SELECT 1", env=env)
    assert done.returncode == 1, completed_result(done)
    assert "never the URL" in done.stderr and "Traceback" not in done.stderr, done.stderr
    output = done.stdout + done.stderr
    assert "pass-in-url-Xy7Qw" not in output and "AKIDINURL" not in output, output


# What a server that echoes the request's Authorization header ({auth}) might answer: a web page
# instead of JSON, a gateway error naming the request by it, an auth error quoting the key.
ECHOING_ANSWERS = {
    "html-page": (200, {"Content-Type": "text/html"}, "<html>\n<pre>\x1b[1m{auth}</pre></html>"),
    "gateway": (
        502,
        {"Content-Type": "text/plain", "X-Request-Id": "{auth}"},
        "bad gateway {auth}",
    ),
    "auth": (401, {"Content-Type": "application/json"}, '{{"error": "bad key: {auth}"}}'),
    "not-found": (404, {"Content-Type": "text/plain"}, "no route\r\n{auth}"),
}


@pytest.fixture
def echoing_server() -> Iterator[tuple[str, dict[str, str]]]:
    """A loopback server answering ``ECHOING_ANSWERS[mode["answer"]]`` with the key it was sent
    filled in; yields its base URL and ``mode``."""
    mode = {"answer": "html-page"}

    def answer(request: BaseHTTPRequestHandler) -> Answer:
        status, headers, body = ECHOING_ANSWERS[mode["answer"]]
        auth = request.headers.get("Authorization", "")
        echoed = {name: value.format(auth=auth) for name, value in headers.items()}
        return status, echoed, body.format(auth=auth).encode()

    with serving(answer) as base_url:
        yield base_url, mode


@pytest.mark.parametrize("answer", list(ECHOING_ANSWERS))
def test_no_error_log_or_file_holds_the_key_a_server_echoes_back(
    answer: str, echoing_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base_url, mode = echoing_server
    mode["answer"] = answer
    done = sync(cli_env(tmp_path, base_url, SECRET), "--max-retries", "1")
    assert done.returncode == 1, completed_result(done)
    assert "error: " in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "<redacted>" in done.stderr, done.stderr  # the echo reached the messages, redacted
    assert not _leaks((done.stdout + done.stderr).encode()), done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not _leaks(path.read_bytes()), path


@pytest.mark.parametrize(
    ("flag", "env"),
    [
        ("https://me:{key}@api.example/v1", None),
        ("https://api.example/v1?api_key={key}", None),
        (None, "https://api.example/{key} /v1"),
        (None, "api.example/v1/{key}"),
    ],
    ids=["credentials", "query", "path-with-space", "no-scheme"],
)
def test_a_malformed_base_url_holding_the_key_is_refused_without_echoing_it(
    flag: str | None, env: str | None, tmp_path: Path
) -> None:
    config = cli_env(tmp_path, (env or "").format(key=SECRET), SECRET)
    args = ["--base-url", flag.format(key=SECRET)] if flag else []
    done = sync(config, *args)
    assert done.returncode == 1, completed_result(done)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a usable Cloudglue base URL" in lines[0], lines
    assert lines[0].startswith("error: --base-url=" if flag else "error: CLOUDGLUE_BASE_URL=")
    assert not _leaks((done.stdout + done.stderr).encode()), done.stderr


def test_the_secret_forms_find_the_key_where_it_is() -> None:
    """The search above can fail: every form is found in text that embeds the key."""
    for form in secret_forms(SECRET):
        assert len(form) >= 20
    for pad in range(3):
        blob = b"prefix" + base64.b64encode(b"x" * pad + SECRET.encode()) + b"suffix"
        assert _leaks(blob)


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server on loopback with a self-signed certificate; yields its base URL and the
    Authorization headers it received."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    seen: list[str] = []

    def answer(request: BaseHTTPRequestHandler) -> Answer:
        seen.append(request.headers.get("Authorization", ""))
        return 200, {}, b'{"object": "list", "data": [], "total": 0}'

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(answer, tls=context) as base_url:
        yield base_url, seen


def test_the_client_verifies_tls_and_sends_no_key_to_an_unverified_server(
    self_signed_https: tuple[str, list[str]],
) -> None:
    base_url, seen = self_signed_https
    with CloudglueClient(SECRET, base_url, max_retries=0, timeout=5) as client:
        assert client._transport.verify is True
        with pytest.raises(TransportError, match="TLS verification failed") as failure:
            client.list_jobs(EMULATOR_END_DATE, EMULATOR_END_DATE)
    assert SECRET not in str(failure.value) and seen == []


def test_the_emulator_binds_loopback_by_default() -> None:
    with EmulatorServer(small_dataset(jobs=1)) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server._httpd.server_address[0] == "127.0.0.1"
    assert build_parser().parse_args(["emulator"]).host == "127.0.0.1"
