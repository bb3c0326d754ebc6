"""Client errors say what is wrong: a malformed base URL names its source, echoes the value
(without credentials) and the one thing wrong with it; a dead port, a wrong path and a body that
is not JSON are named as such; every error of a response carries its status, request id, method,
path and a short sanitized body snippet. Real HTTP: the emulator, or a tiny loopback server
answering what the emulator never would."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cloudglue.base_url import resolve_base_url
from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.errors import (
    SNIPPET_CHARS,
    ApiError,
    AuthError,
    ConfigError,
    NotFoundError,
    TransportError,
    body_snippet,
)
from pipeline.emulator import EmulatorServer
from pipeline.settings import BASE_URL_ENV
from pipeline_tests.conftest import EMULATOR_API_KEY, EMULATOR_END_DATE
from pipeline_tests.loopback import Answer, serving

KEY = "sk-live-errors-5Rt8Qw2Zx"
FAST = {"backoff_base": 0.01, "backoff_max": 0.02, "timeout": 5.0}
DAY = EMULATOR_END_DATE

# ------------------------------------------------------------------------- the base URL


@pytest.mark.parametrize(
    ("url", "shown", "problem"),
    [
        ("", "''", "it is empty"),
        ("api.cloudglue.dev/v1", "'api.cloudglue.dev/v1'", "no scheme"),
        ("ftp://api.cloudglue.dev/v1", "'ftp://api.cloudglue.dev/v1'", "scheme is 'ftp'"),
        ("https://", "'https://'", "no host"),
        ("https://h:notaport/v1", "'https://h:notaport/v1'", "port is not a number"),
        ("https://h:70000/v1", "'https://h:70000/v1'", "port is not a number"),
        ("http://h:0/v1", "'http://h:0/v1'", "port is not a number"),
        ("https://u:hunter2@h/v1", "'https://…@h/v1'", "credentials"),
        ("https://u:hun?ter2@h/v1", "'https://…@h/v1'", "credentials"),
        ("https://h/v1?token=hunter2", "'https://h/v1?…'", "a query"),
        ("https://h/v1#hunter2", "'https://h/v1#…'", "a fragment"),
        ("https://h/v 1", "'https://h/v 1'", "whitespace"),
        ("https://h/\x1b[0m", "'https://h/\\x1b[0m'", "non-printable"),
        ("http://[::1/v1", "'http://[::1/v1'", "does not parse"),
    ],
)
def test_a_malformed_base_url_says_what_is_wrong_with_it_and_where_it_was_set(
    url: str, shown: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as given_:
        CloudglueClient(KEY, url, base_url_source="--base-url")
    message = str(given_.value)
    assert message.startswith(f"--base-url={shown} is not a usable Cloudglue base URL: ")
    assert problem in message and "hunter2" not in message and "\n" not in message
    if url:  # an empty CLOUDGLUE_BASE_URL means the default
        monkeypatch.setenv(BASE_URL_ENV, url)
        with pytest.raises(ConfigError) as from_env:
            CloudglueClient(KEY, base_url_source="--base-url")
        assert str(from_env.value) == message.replace("--base-url=", f"{BASE_URL_ENV}=", 1)


def test_a_base_url_holding_the_key_is_echoed_without_it() -> None:
    with pytest.raises(ConfigError) as info:
        CloudglueClient(KEY, f"ftp://h/{KEY}/v1")
    assert KEY not in str(info.value) and "'ftp://h/<redacted>/v1'" in str(info.value)


@given(
    url=st.text(st.characters(blacklist_characters="S"), max_size=60),
    password=st.text(st.characters(blacklist_characters="@"), max_size=20).map("S3cr3t".__add__),
)
def test_no_credentials_or_key_are_echoed_from_any_base_url(url: str, password: str) -> None:
    for candidate in (f"https://user:{password}@{url}", f"{url}://u:{password}@h/v1", url + KEY):
        try:
            resolve_base_url(candidate, "base_url", (KEY,))
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message and password not in message and KEY not in message
        else:
            assert "@" not in candidate and KEY in candidate


# ------------------------------------------------------------------ body snippets


@given(st.binary(max_size=2000), st.sampled_from(["", KEY]))
def test_a_body_snippet_is_one_bounded_printable_line_without_the_key(
    content: bytes, prefix: str
) -> None:
    snippet = body_snippet(prefix.encode() + content, (KEY,))
    assert len(snippet) <= SNIPPET_CHARS and snippet.isprintable()
    assert KEY not in snippet and snippet == snippet.strip()


# ---------------------------------------------------------------- answers over HTTP


class Canned:
    """What the loopback server answers every GET with."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body = b""
        self.base_url = ""

    def __call__(self, request: BaseHTTPRequestHandler) -> Answer:
        return self.status, self.headers, self.body


@pytest.fixture
def canned() -> Iterator[Canned]:
    answers = Canned()
    with serving(answers) as answers.base_url:
        yield answers


HOSTILE_PAGE = (
    b"<!doctype html>\n<html><head><title>Welcome</title></head>\r\n<body>\x1b[31m"
    + f"debug: Authorization: Bearer {KEY}\x00\u202e".encode()
    + b"x" * 5000
    + b"</body></html>"
)


def test_a_body_that_is_not_json_is_named_by_its_type_and_a_sanitized_snippet(
    canned: Canned,
) -> None:
    canned.headers = {"Content-Type": "text/html; charset=utf-8"}
    canned.body = HOSTILE_PAGE
    client = CloudglueClient(KEY, canned.base_url, max_retries=1, **FAST)
    with client, pytest.raises(TransportError) as info:
        client.list_jobs(DAY, DAY)
    error, message = info.value, str(info.value)
    assert f"body is not valid JSON (text/html; charset=utf-8, {len(HOSTILE_PAGE)} bytes: " in (
        message
    )
    assert "'<!doctype html> <html><head><title>Welcome</title></head> <body> [31mdebug" in message
    assert KEY not in message and message.isprintable() and len(message) < 600
    assert (error.status, error.method, error.request_id) == (200, "GET", None)
    assert error.path.startswith("/v1/extract?limit=100&") and error.url.startswith(canned.base_url)
    assert len(error.body) <= SNIPPET_CHARS and KEY not in error.body


def test_a_gateway_error_carries_status_request_id_and_snippet(canned: Canned) -> None:
    canned.status = 502
    canned.headers = {"Content-Type": "text/html", "X-Request-Id": "req_7Hq2"}
    canned.body = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
    client = CloudglueClient(KEY, canned.base_url, max_retries=1, **FAST)
    with client, pytest.raises(ApiError) as info:
        client.fetch_job_json("job-1")
    error = info.value
    assert (error.status, error.request_id, error.method) == (502, "req_7Hq2", "GET")
    assert error.path.startswith("/v1/extract/job-1?limit=100&offset=0")
    assert error.body == "<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert str(error).endswith(
        "HTTP 502 (text/html, 51 bytes: '<html><body><h1>502 Bad Gateway</h1></body></html>')"
        " [request id req_7Hq2]"
    )
    assert repr(error).startswith('ApiError("GET http') and "request_id='req_7Hq2'" in repr(error)


def test_an_auth_error_carries_status_path_and_the_servers_message(dataset) -> None:
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
        client = CloudglueClient(KEY, server.base_url, **FAST)
        with client, pytest.raises(AuthError) as info:
            client.list_jobs(DAY, DAY)
    error = info.value
    assert (error.status, error.method) == (401, "GET")
    assert error.path.startswith("/v1/extract?") and KEY not in repr(error) + str(error)
    assert error.body and error.body.startswith('{"error":')


def test_a_404_on_the_job_list_suggests_checking_the_base_urls_path(dataset) -> None:
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
        wrong = server.base_url.removesuffix("/v1")  # the emulator serves /v1/extract
        client = CloudglueClient(EMULATOR_API_KEY, wrong, base_url_source="--base-url")
        with client, pytest.raises(NotFoundError) as listing:
            client.list_jobs(DAY, DAY)
        client = CloudglueClient(EMULATOR_API_KEY, server.base_url, **FAST)
        with client, pytest.raises(NotFoundError) as job:
            client.fetch_job_json("no-such-job")
    assert listing.value.status == 404 and listing.value.path.startswith("/extract?")
    assert str(listing.value).endswith(
        f"check the base URL's path (--base-url is {wrong}; the API's is"
        " https://api.cloudglue.dev/v1)"
    )
    assert "base URL" not in str(job.value)  # a job's 404 is the job's


@pytest.fixture
def dead_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_nothing_listening_is_connection_refused_at_host_and_port_every_retry_logged(
    dead_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipeline.cloudglue")
    base_url = f"http://127.0.0.1:{dead_port}/v1"
    client = CloudglueClient(KEY, base_url, max_retries=2, **FAST)
    with client, pytest.raises(TransportError) as info:
        client.list_jobs(DAY, DAY)
    refused = f"connection refused at 127.0.0.1:{dead_port} (nothing listening there? check "
    refused += "base_url)"
    assert str(info.value).endswith(f"failed after 3 attempt(s): {refused}")
    assert info.value.status is None and info.value.method == "GET"
    retries = [r.getMessage() for r in caplog.records if "; retry " in r.getMessage()]
    assert len(retries) == 2 and all(refused in line for line in retries)
    assert "retry 1/2" in retries[0]
